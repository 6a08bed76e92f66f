//! Durable, quiet channels against an in-process tungstenite server on loopback that can be
//! stopped and restarted on the same port: reconnect policy, backlog, give-up, masks, the
//! bounded queue and the suspend probe.

use std::io::ErrorKind;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrlchan::{
    Channel, Event, EventKind, KeepAlive, MessageType, ReconnectPolicy, ResetReason, ResourceType, ResultCode, Runtime,
    WebSocket, WebSocketKind, WebSocketState,
};
use tungstenite::Message;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Echo text; record what arrived.
    Echo,
    /// Push `n` numbered messages, then echo.
    Push(usize),
    /// Handshake, then never read (no pongs).
    Hang,
    /// The first connection echoes; every later upgrade is refused with this HTTP status.
    RefuseLater(u16),
    /// Push `n` binary messages of `size` bytes (blocking writes: the client's pace), then echo.
    PushBig(usize, usize),
}

/// A server that can be killed (listener and every connection) and started again on its port.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    received: Arc<Mutex<Vec<String>>>,
    mode: Mode,
}

impl Server {
    fn start(mode: Mode) -> Server {
        let mut s = Server {
            port: 0,
            stop: Arc::new(AtomicBool::new(false)),
            conns: Arc::default(),
            received: Arc::default(),
            mode,
        };
        s.listen(TcpListener::bind("127.0.0.1:0").expect("bind"));
        s
    }

    fn listen(&mut self, listener: TcpListener) {
        self.port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let (conns, received, mode) = (self.conns.clone(), self.received.clone(), self.mode);
        let _ = listener.set_nonblocking(true);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        if let Ok(c) = s.try_clone() {
                            conns.lock().map(|mut v| v.push(c)).unwrap_or(());
                        }
                        let (received, stop) = (received.clone(), stop.clone());
                        std::thread::spawn(move || serve(s, mode, received, stop));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                    Err(_) => break,
                }
            }
        });
    }

    /// Like a crashed server: the listener goes and every connection is reset.
    fn kill(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.conns.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default() {
            let _ = c.shutdown(Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    fn restart(&mut self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).expect("rebind the same port");
        self.listen(l);
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(stream: TcpStream, mode: Mode, received: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let refuse = match mode {
        Mode::RefuseLater(status) => Some(status),
        _ => None,
    };
    let accepted =
        tungstenite::accept_hdr(stream, |_req: &tungstenite::handshake::server::Request, resp| match refuse {
            Some(status) if received.lock().map(|v| !v.is_empty()).unwrap_or(false) => {
                let mut r = tungstenite::handshake::server::ErrorResponse::new(Some("no".into()));
                *r.status_mut() = tungstenite::http::StatusCode::from_u16(status).unwrap_or_default();
                Err(r)
            }
            _ => Ok(resp),
        });
    let Ok(mut ws) = accepted else { return };
    if let Mode::RefuseLater(_) = mode {
        // Mark that the first connection happened: later upgrades are refused.
        received.lock().map(|mut v| v.push("first".into())).unwrap_or(());
    }
    if let Mode::PushBig(n, size) = mode {
        let _ = ws.get_ref().set_read_timeout(None);
        for i in 0..n {
            let mut payload = vec![0u8; size];
            payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
            if ws.send(Message::binary(payload)).is_err() {
                return;
            }
        }
        let _ = ws.get_ref().set_read_timeout(Some(Duration::from_millis(100)));
    }
    if let Mode::Push(n) = mode {
        for i in 0..n {
            if ws.send(Message::text(format!("msg {i}"))).is_err() {
                return;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        if mode == Mode::Hang {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                received.lock().map(|mut v| v.push(t.to_string())).unwrap_or(());
                if ws.send(Message::text(t.to_string())).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(_) => return,
        }
        let _ = ws.flush();
    }
}

fn next(rt: &Runtime, want: impl Fn(&Event) -> bool, within: Duration) -> Event {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = rt.next_event(left).unwrap_or_else(|e| panic!("no matching event within {within:?}: {e}"));
        if want(&ev) {
            return ev;
        }
    }
}

fn policy(initial_ms: u32, max_attempts: u32) -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay_ms: initial_ms,
        max_delay_ms: 1_000,
        multiplier_percent: 150,
        jitter_percent: 10,
        max_attempts,
    }
}

fn channel_to(rt: &Arc<Runtime>, port: u16, interval_ms: u32) -> (Arc<WebSocket>, Arc<Channel>) {
    let ws = WebSocket::new(rt, WebSocketKind::Message).expect("ws");
    ws.set_message_type(MessageType::Utf8).expect("utf8");
    let ch = Channel::new(rt, "durable", interval_ms, ResourceType::RequestSoftwareSlot).expect("channel");
    ch.using_transport(&ws).expect("using_transport");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 5000).expect("connect");
    ch.wait_for_push_enabled().expect("push enabled");
    (ws, ch)
}

#[test]
fn server_restart_reconnects_the_same_websocket_and_delivers_the_backlog_once_after_reset() {
    let mut srv = Server::start(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (ws, ch) = channel_to(&rt, srv.port, 60_000);
    ch.set_reconnect_policy(Some(policy(200, 0))).expect("policy");
    ws.send(b"before").expect("send");
    let echo = next(&rt, |e| e.kind == EventKind::PushNotification, Duration::from_secs(5));
    assert_eq!(&echo.data[..], b"before");

    srv.kill();
    let rec = next(&rt, |e| e.kind == EventKind::Reconnecting, Duration::from_secs(5));
    assert_eq!(rec.attempt, 1);
    assert!(rec.delay_ms <= 200, "first delay {} not in [0, initial]", rec.delay_ms);
    assert_ne!(rec.result, ResultCode::Ok);
    assert_eq!(ws.state(), WebSocketState::Connecting);
    // Queued while reconnecting: goes out after the RESET, once.
    for i in 0..5 {
        ws.send(format!("backlog {i}").as_bytes()).expect("send while reconnecting");
    }
    std::thread::sleep(Duration::from_millis(300));
    srv.restart();
    let reset = next(&rt, |e| e.kind == EventKind::Reset, Duration::from_secs(10));
    assert_eq!(reset.reset_reason, ResetReason::Reconnected);
    assert!(reset.is_from(&ws));
    assert_eq!(ws.state(), WebSocketState::Open);
    let mut echoes = Vec::new();
    while echoes.len() < 5 {
        let e = next(&rt, |e| e.kind == EventKind::PushNotification, Duration::from_secs(5));
        echoes.push(String::from_utf8_lossy(&e.data).into_owned());
    }
    assert_eq!(echoes, (0..5).map(|i| format!("backlog {i}")).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(200));
    let got = srv.received();
    assert_eq!(got.iter().filter(|m| m.starts_with("backlog")).count(), 5, "sent exactly once: {got:?}");
    assert_eq!(ch.statistics().reconnects, 1);
    // Keep-alives resumed on their own.
    ch.set_server_keepalive_interval_ms(200).expect("interval");
    let before = ch.statistics().keepalives_acked;
    std::thread::sleep(Duration::from_millis(700));
    assert!(ch.statistics().keepalives_acked > before, "keep-alives did not resume");
}

#[test]
fn messages_sent_from_the_reset_callback_go_before_the_backlog() {
    let mut srv = Server::start(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (ws, ch) = channel_to(&rt, srv.port, 60_000);
    ch.set_reconnect_policy(Some(policy(100, 0))).expect("policy");
    let events: Arc<Mutex<Vec<EventKind>>> = Arc::default();
    let (ev2, ws2) = (events.clone(), ws.clone());
    ch.set_handler(Some(Arc::new(move |e: &Event| {
        ev2.lock().map(|mut v| v.push(e.kind)).unwrap_or(());
        if e.kind == EventKind::Reset {
            let _ = ws2.send(b"resubscribe");
        }
    })))
    .expect("handler");
    srv.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !events.lock().map(|v| v.contains(&EventKind::Reconnecting)).unwrap_or(false) {
        assert!(Instant::now() < deadline, "no RECONNECTING");
        std::thread::sleep(Duration::from_millis(10));
    }
    ws.send(b"queued").expect("send while reconnecting");
    srv.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.received().len() < 2 {
        assert!(Instant::now() < deadline, "server got {:?}", srv.received());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(srv.received(), vec!["resubscribe".to_string(), "queued".into()]);
}

#[test]
fn max_attempts_is_honoured_and_the_final_event_says_what_was_never_sent() {
    let srv = Server::start(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (ws, ch) = channel_to(&rt, srv.port, 60_000);
    ch.set_reconnect_policy(Some(policy(50, 3))).expect("policy");
    srv.kill();
    let mut attempts = Vec::new();
    let end = loop {
        let e = next(
            &rt,
            |e| matches!(e.kind, EventKind::Reconnecting | EventKind::TransportDisconnected),
            Duration::from_secs(10),
        );
        if e.kind == EventKind::TransportDisconnected {
            break e;
        }
        attempts.push(e.attempt);
        if attempts.len() == 1 {
            ws.send(b"never sent").expect("queue while reconnecting");
        }
    };
    assert_eq!(attempts, vec![1, 2, 3]);
    assert!(end.reason().contains("gave up after 3 attempts"), "{}", end.reason());
    assert!(end.reason().contains("1 queued messages were never sent"), "{}", end.reason());
    assert_eq!(ws.state(), WebSocketState::Closed);
    assert_eq!(rt.stats().channels_active, 0);
}

#[test]
fn without_a_policy_a_loss_ends_the_websocket_as_before() {
    let srv = Server::start(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (ws, _ch) = channel_to(&rt, srv.port, 60_000);
    srv.kill();
    let e = next(
        &rt,
        |e| matches!(e.kind, EventKind::TransportDisconnected | EventKind::Closed | EventKind::Reconnecting),
        Duration::from_secs(5),
    );
    assert_ne!(e.kind, EventKind::Reconnecting);
    assert_eq!(ws.state(), WebSocketState::Closed);
}

#[test]
fn keepalive_acks_are_quiet_by_default_and_counted_in_the_stats() {
    let srv = Server::start(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (_ws, ch) = channel_to(&rt, srv.port, 100);
    std::thread::sleep(Duration::from_millis(600));
    let s = ch.statistics();
    assert!(s.keepalives_sent >= 3 && s.keepalives_acked >= 3, "{s:?}");
    assert!(s.srtt_us > 0 && s.last_rtt_us > 0, "{s:?}");
    assert_eq!(s.current_interval_ms, 100);
    assert_eq!(rt.queued_events(), 0, "an acknowledged keep-alive is not an event by default");
    ch.set_event_mask(0xFFFF_FFFF).expect("mask all");
    let ka = next(&rt, |e| e.kind == EventKind::Keepalive, Duration::from_secs(2));
    assert!(ka.rtt_us > 0);
}

#[test]
fn a_full_queue_pushes_back_on_the_server_and_loses_nothing() {
    let srv = Server::start(Mode::Push(5_000));
    let rt = Runtime::new().expect("runtime");
    rt.set_event_queue_limit(100).expect("limit");
    let (_ws, _ch) = channel_to(&rt, srv.port, 60_000);
    std::thread::sleep(Duration::from_millis(800));
    let queued = rt.queued_events();
    assert!((100..=110).contains(&queued), "queue holds {queued} events with a limit of 100");
    for i in 0..5_000 {
        let e = next(&rt, |e| e.kind == EventKind::PushNotification, Duration::from_secs(5));
        assert_eq!(String::from_utf8_lossy(&e.data), format!("msg {i}"));
    }
}

#[test]
fn a_simulated_suspend_probes_and_a_dead_transport_reconnects_at_once() {
    let srv = Server::start(Mode::Hang);
    let rt = Runtime::new().expect("runtime");
    let (ws, ch) = channel_to(&rt, srv.port, 60_000);
    let ka = KeepAlive::new();
    ka.set_pong_timeout_ms(300).expect("pong timeout");
    ch.set_keepalive(Some(ka)).expect("task");
    // Long first delay: only a probe-found loss skips it.
    ch.set_reconnect_policy(Some(ReconnectPolicy { initial_delay_ms: 1_000, max_delay_ms: 1_000, ..policy(0, 0) }))
        .expect("policy");
    let t0 = Instant::now();
    rt.simulate_suspend(600_000).expect("suspend");
    let rec = next(&rt, |e| e.kind == EventKind::Reconnecting, Duration::from_secs(3));
    assert_eq!(rec.delay_ms, 0, "a probe-found loss reconnects without backoff");
    let reset = next(&rt, |e| e.kind == EventKind::Reset, Duration::from_secs(3));
    assert_eq!(reset.reset_reason, ResetReason::LowPowerExit);
    assert!(t0.elapsed() < Duration::from_secs(2), "recovered after {:?}", t0.elapsed());
    assert_eq!(ws.state(), WebSocketState::Open);
}

#[test]
fn message_type_may_change_after_connect() {
    let srv = Server::start(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (ws, _ch) = channel_to(&rt, srv.port, 60_000);
    ws.set_message_type(MessageType::Binary).expect("binary after connect");
    ws.set_message_type(MessageType::Utf8).expect("utf8 again");
    ws.send(b"text").expect("send");
    let e = next(&rt, |e| e.kind == EventKind::PushNotification, Duration::from_secs(5));
    assert_eq!(e.message_type, MessageType::Utf8);
}

#[test]
fn a_refused_reconnect_with_401_is_not_retried() {
    let mut srv = Server::start(Mode::RefuseLater(401));
    let rt = Runtime::new().expect("runtime");
    let (ws, ch) = channel_to(&rt, srv.port, 60_000);
    ch.set_reconnect_policy(Some(policy(50, 0))).expect("policy");
    srv.kill();
    srv.restart();
    let mut attempts = 0;
    let end = loop {
        let e = next(
            &rt,
            |e| matches!(e.kind, EventKind::Reconnecting | EventKind::TransportDisconnected | EventKind::Reset),
            Duration::from_secs(10),
        );
        match e.kind {
            EventKind::Reconnecting => attempts += 1,
            EventKind::Reset => panic!("reconnected through a 401"),
            _ => break e,
        }
        assert!(attempts < 20, "still retrying after {attempts} attempts");
    };
    // Attempts while the server was down are retried; the 401 is final.
    assert!(end.reason().contains("401"), "{}", end.reason());
    assert_eq!(end.result, ResultCode::HandshakeFailed);
    assert_eq!(ws.state(), WebSocketState::Closed);
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

#[test]
fn fifty_megabytes_the_app_does_not_read_keep_rss_flat_and_all_arrive_in_order() {
    const N: usize = 12_800;
    const SIZE: usize = 4096; // 50 MiB in all
    let srv = Server::start(Mode::PushBig(N, SIZE));
    let rt = Runtime::new().expect("runtime");
    rt.set_event_queue_limit(256).expect("limit");
    let before = rss_bytes();
    let (_ws, _ch) = channel_to(&rt, srv.port, 60_000);
    std::thread::sleep(Duration::from_secs(2)); // the app does not read
    let during = rss_bytes();
    let queued = rt.queued_events();
    assert!(queued <= 256 + 8, "{queued} events queued with a limit of 256");
    assert!(
        during.saturating_sub(before) < 16 << 20,
        "RSS grew by {} KiB while 50 MiB were pushed",
        during.saturating_sub(before) >> 10
    );
    eprintln!(
        "50 MiB pushed, app not reading for 2 s: RSS +{} KiB, {queued} events queued",
        during.saturating_sub(before) >> 10
    );
    for i in 0..N {
        let e = next(&rt, |e| e.kind == EventKind::PushNotification, Duration::from_secs(10));
        assert_eq!(e.data.len(), SIZE);
        assert_eq!(u64::from_be_bytes(e.data[..8].try_into().unwrap_or([0; 8])), i as u64);
    }
}
