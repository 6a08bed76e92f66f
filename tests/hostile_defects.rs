//! Regression tests for the defects an adversarial run found (issue 13), against hostile
//! in-process peers on loopback. Each test failed before its fix.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctrlchan::{Channel, EventKind, KeepAlive, ResourceType, ResultCode, Runtime, WebSocket, WebSocketKind};
use tungstenite::Message;

/// Accepts one connection, completes the upgrade with tungstenite, then hands the raw socket
/// to `f`. Returns the port.
fn one_peer(f: impl FnOnce(TcpStream) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        let Ok(ws) = tungstenite::accept(s) else { return };
        f(ws.into_inner());
    });
    port
}

/// The first event of `kind` from `ws`, or None within `within`.
fn wait_for(rt: &Runtime, ws: &Arc<WebSocket>, kind: EventKind, within: Duration) -> Option<ctrlchan::Event> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Ok(ev) = rt.next_event(Duration::from_millis(20)) {
            if ev.kind == kind && ev.is_from(ws) {
                return Some(ev);
            }
        }
    }
    None
}

// ---------------------------------------------------------------- defect 1: ping flood

/// A server that pings as fast as it can and never reads our pongs: the automatic replies count
/// against the outbound limit and the connection fails with BUFFER_FULL instead of growing.
#[test]
fn ping_flood_without_reading_fails_the_connection_instead_of_growing() {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let port = one_peer(move |mut s| {
        let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
        let mut frame = vec![0x89u8, 125];
        frame.extend_from_slice(&[b'p'; 125]);
        let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 64).collect();
        let end = Instant::now() + Duration::from_secs(15);
        while !stop2.load(Ordering::SeqCst) && Instant::now() < end {
            match s.write_all(&batch) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws.set_outbound_buffer_limit(64 * 1024).expect("limit");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    let ev = wait_for(&rt, &ws, EventKind::TransportDisconnected, Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    let ev = ev.expect("a peer that pings without reading must be failed, not buffered without bound");
    assert_eq!(ev.result, ResultCode::BufferFull, "{}", ev.reason());
    assert!(ev.reason().contains("does not read"), "{}", ev.reason());
}

// ---------------------------------------------------------------- defect 2: liveness

/// Interval 1 s, pong timeout 500 ms, the app sends every 300 ms: outbound data replaces the
/// NAT keep-alive, but liveness needs inbound evidence, so a blackholed peer is found within
/// interval + pong timeout (plus scheduling slack) of going silent.
#[test]
fn blackholed_peer_is_detected_while_the_app_sends() {
    let blackhole = Arc::new(AtomicBool::new(false));
    let b2 = blackhole.clone();
    let port = one_peer(move |s| {
        let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
        let mut ws = tungstenite::WebSocket::from_raw_socket(s, tungstenite::protocol::Role::Server, None);
        let end = Instant::now() + Duration::from_secs(12);
        while Instant::now() < end {
            if b2.load(Ordering::SeqCst) {
                // Blackholed: no pongs, no reads; TCP itself stays up.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            match ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
            let _ = ws.flush();
        }
    });
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(&rt, "live", 1000, ResourceType::RequestSoftwareSlot).expect("channel");
    let ka = KeepAlive::new();
    ka.set_pong_timeout_ms(500).expect("pong timeout");
    ch.set_keepalive(Some(ka)).expect("keepalive");
    ch.using_transport(&ws).expect("using_transport");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    ch.wait_for_push_enabled().expect("push");
    let start = Instant::now();
    let mut next_send = start;
    let mut silent_since: Option<Instant> = None;
    let mut seq = 0u32;
    let detected = loop {
        let now = Instant::now();
        if silent_since.is_none() && now >= start + Duration::from_millis(2500) {
            blackhole.store(true, Ordering::SeqCst);
            silent_since = Some(now);
        }
        if silent_since.is_some_and(|t| now > t + Duration::from_secs(5)) {
            break None;
        }
        if now >= next_send {
            seq += 1;
            let _ = ws.send(format!("msg {seq}").as_bytes());
            next_send += Duration::from_millis(300);
        }
        if let Ok(ev) = rt.next_event(Duration::from_millis(10)) {
            if ev.kind == EventKind::TransportDisconnected {
                break Some((Instant::now(), ev));
            }
        }
    };
    let (at, ev) = detected.expect("the blackholed peer must be detected while the app sends");
    let silent = silent_since.expect("blackholed before detection");
    assert!(at > silent, "lost before the blackhole: {}", ev.reason());
    let took = at - silent;
    assert!(ev.reason().contains("pong timeout"), "{}", ev.reason());
    assert!(took <= Duration::from_millis(1650), "detected {took:?} after the peer went silent");
}

/// A peer that completes the upgrade, writes `bytes` and then waits (reading nothing).
fn writes_then_waits(bytes: Vec<u8>) -> u16 {
    one_peer(move |mut s| {
        let _ = s.write_all(&bytes);
        std::thread::sleep(Duration::from_secs(2));
    })
}

fn connected(rt: &Runtime, port: u16) -> Arc<WebSocket> {
    let ws = WebSocket::new(rt, WebSocketKind::Message).expect("ws");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    ws
}

/// The terminal event of `ws` (CLOSED or TRANSPORT_DISCONNECTED).
fn terminal(rt: &Runtime, ws: &Arc<WebSocket>) -> ctrlchan::Event {
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if let Ok(ev) = rt.next_event(Duration::from_millis(20)) {
            if matches!(ev.kind, EventKind::Closed | EventKind::TransportDisconnected) && ev.is_from(ws) {
                return ev;
            }
        }
    }
    panic!("no terminal event");
}

// ---------------------------------------------------------------- defect 6: sends at shutdown

/// Shutdown requested from a callback: the runtime thread finishes the callback before it closes
/// the connections, so the websocket is still OPEN while the runtime shuts down.
#[test]
fn sends_during_shutdown_are_closed_and_queue_nothing() {
    let port = writes_then_waits(vec![0x82, 0x01, b'x']);
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (rt2, ws2, res2) = (rt.clone(), std::sync::Mutex::new(None::<Arc<WebSocket>>), results.clone());
    let slot = Arc::new(ws2);
    let slot2 = slot.clone();
    ws.set_handler(Some(Arc::new(move |ev: &ctrlchan::Event| {
        if ev.kind != EventKind::PushNotification {
            return;
        }
        let _ = rt2.shutdown();
        if let Some(w) = slot2.lock().ok().and_then(|g| g.clone()) {
            for _ in 0..3 {
                let r = w.send(b"late").map_err(|e| e.code);
                res2.lock().expect("lock").push(r);
            }
        }
    })))
    .expect("handler");
    *slot.lock().expect("lock") = Some(ws.clone());
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    let end = Instant::now() + Duration::from_secs(3);
    while results.lock().expect("lock").len() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    *slot.lock().expect("lock") = None;
    let got = results.lock().expect("lock").clone();
    assert_eq!(got, vec![Err(ResultCode::Closed); 3], "sends while the runtime shuts down");
    assert_eq!(ws.stats().bytes_sent, 0, "nothing was sent");
}

// ---------------------------------------------------------------- defect 7: invalid close codes

#[test]
fn invalid_close_codes_from_the_peer_are_protocol_errors() {
    let rt = Runtime::new().expect("runtime");
    for code in [1004u16, 1005, 1006, 1015, 999, 0, 5000, 65535, 2999, 1016] {
        let [hi, lo] = code.to_be_bytes();
        let ws = connected(&rt, writes_then_waits(vec![0x88, 0x02, hi, lo]));
        let ev = terminal(&rt, &ws);
        assert_eq!(ev.kind, EventKind::TransportDisconnected, "code {code}: {ev:?}");
        assert_eq!(ev.result, ResultCode::Io, "code {code}");
        assert!(ev.reason().contains("protocol error"), "code {code}: {}", ev.reason());
        ws.release();
    }
    // A valid code is still a CLOSED event carrying the peer's code.
    let ws = connected(&rt, writes_then_waits(vec![0x88, 0x04, 0x0f, 0xa1, b'o', b'k']));
    let ev = terminal(&rt, &ws);
    assert_eq!((ev.kind, ev.close_code, ev.result), (EventKind::Closed, 4001, ResultCode::Ok));
    assert_eq!(ev.reason(), "ok");
}

// ---------------------------------------------------------------- defect 8: 64-bit length MSB

#[test]
fn a_64_bit_length_with_the_top_bit_set_is_a_protocol_error() {
    let rt = Runtime::new().expect("runtime");
    let ws = connected(&rt, writes_then_waits(vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1]));
    let ev = terminal(&rt, &ws);
    assert_eq!(ev.kind, EventKind::TransportDisconnected, "{ev:?}");
    assert_eq!(ev.result, ResultCode::Io);
    assert!(ev.reason().contains("most significant bit"), "{}", ev.reason());
}

// ---------------------------------------------------------------- defect 10: TLS EOF / RST

#[test]
fn eof_or_reset_during_the_tls_handshake_is_tls_failed() {
    for rst in [false, true] {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut hello = [0u8; 64];
            let _ = s.read(&mut hello);
            if rst {
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            }
        });
        let rt = Runtime::new().expect("runtime");
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        let e = ws.connect(&format!("wss://127.0.0.1:{port}/"), 3000).expect_err("no TLS server");
        assert_eq!(e.code, ResultCode::TlsFailed, "rst={rst}: {e}");
    }
}

// ---------------------------------------------------------------- defect 11, 12: options

#[test]
fn every_sec_websocket_request_header_is_rejected() {
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    for name in ["Sec-WebSocket-Foo", "sec-websocket-x", "SEC-WEBSOCKET-KEY"] {
        let e = ws.set_request_header(name, "v").expect_err(name);
        assert_eq!(e.code, ResultCode::InvalidArgument, "{name}");
    }
    ws.set_request_header("X-Sec-WebSocket-Foo", "v").expect("other names are fine");
}

#[test]
fn a_pem_block_with_bad_der_is_an_invalid_argument() {
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let pem = b"-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";
    let e = ws.add_trusted_ca_pem(pem).expect_err("bad DER");
    assert_eq!(e.code, ResultCode::InvalidArgument, "{e}");
}

// ---------------------------------------------------------------- defect 13: flush vs close

#[test]
fn flush_transport_blocked_on_a_channel_closed_elsewhere_returns_invalid_state() {
    // The peer reads nothing, so queued data stays queued.
    let port = one_peer(|_s| std::thread::sleep(Duration::from_secs(6)));
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(&rt, "flush", 30_000, ResourceType::RequestSoftwareSlot).expect("channel");
    ch.using_transport(&ws).expect("using_transport");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..15 {
        let _ = ws.send(&chunk);
    }
    let ch2 = ch.clone();
    let waiter = std::thread::spawn(move || {
        let t0 = Instant::now();
        (ch2.flush_transport(Duration::from_secs(5)), t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    ch.close().expect("close");
    let (r, took) = waiter.join().expect("join");
    assert_eq!(r.map_err(|e| e.code), Err(ResultCode::InvalidState));
    assert!(took < Duration::from_secs(2), "woke after {took:?}");
}

#[allow(dead_code)]
fn _unused(mut s: TcpStream) {
    let _ = s.read(&mut []);
    let _ = Message::Ping(Default::default());
}
