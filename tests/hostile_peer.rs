//! A hostile peer: valid or broken HTTP upgrades followed by garbage. ctrlchan must classify the
//! failure, deliver exactly one terminal event, and never crash or hang.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ctrlchan::{EventKind, ResultCode, Runtime, WebSocket, WebSocketKind};

fn accept_key(req: &str) -> String {
    let key = req
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ").or_else(|| l.strip_prefix("sec-websocket-key: ")))
        .unwrap_or("")
        .trim()
        .to_string();
    tungstenite::handshake::derive_accept_key(key.as_bytes())
}

/// Serves one connection: reads the request, answers with `head(accept)`, then writes `tail`.
fn one_shot(head: impl Fn(&str) -> Vec<u8> + Send + 'static, tail: Vec<u8>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let req = String::from_utf8_lossy(&got).to_string();
        let _ = s.write_all(&head(&accept_key(&req)));
        let _ = s.write_all(&tail);
        let _ = s.flush();
        std::thread::sleep(Duration::from_millis(1500));
    });
    port
}

fn ok_head(accept: &str) -> Vec<u8> {
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
        .into_bytes()
}

/// Terminal events of `ws` (events of earlier, aborted websockets are ignored).
fn terminal_events(rt: &Runtime, ws: &std::sync::Arc<WebSocket>, within: Duration) -> Vec<ctrlchan::Event> {
    let mut out = Vec::new();
    let end = Instant::now() + within;
    while Instant::now() < end {
        match rt.next_event(Duration::from_millis(50)) {
            Ok(ev) if matches!(ev.kind, EventKind::Closed | EventKind::TransportDisconnected) && ev.is_from(ws) => {
                out.push(ev)
            }
            _ => {}
        }
    }
    out
}

#[test]
fn garbage_frames_after_a_valid_upgrade_end_in_one_event() {
    let rt = Runtime::new().expect("runtime");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved opcode", vec![0x83, 0x00]),
        ("masked server frame", vec![0x81, 0x81, 1, 2, 3, 4, b'x']),
        ("invalid utf-8 text", vec![0x81, 0x02, 0xff, 0xfe]),
        ("oversized control frame", {
            let mut v = vec![0x89, 0x7e, 0x01, 0x00];
            v.extend_from_slice(&[0u8; 256]);
            v
        }),
        ("fragmented control frame", vec![0x09, 0x00]),
        ("continuation without start", vec![0x80, 0x01, b'a']),
        ("rsv bits set", vec![0xf1, 0x01, b'a']),
        ("64-bit length with top bit", vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1]),
    ];
    for (name, tail) in cases {
        let port = one_shot(ok_head, tail);
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).unwrap_or_else(|e| panic!("{name}: connect {e}"));
        let evs = terminal_events(&rt, &ws, Duration::from_millis(700));
        ws.release();
        assert_eq!(evs.len(), 1, "{name}: expected exactly one terminal event, got {evs:?}");
    }
}

#[test]
fn broken_upgrades_are_handshake_failures() {
    let rt = Runtime::new().expect("runtime");
    let heads: Vec<(&str, Box<dyn Fn(&str) -> Vec<u8> + Send>)> = vec![
        ("404", Box::new(|_: &str| b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec())),
        ("wrong accept", Box::new(|_: &str| ok_head("AAAAAAAAAAAAAAAAAAAAAAAAAAA="))),
        ("not http", Box::new(|_: &str| b"\x00\x01\x02 hello\r\n\r\n".to_vec())),
        (
            "no upgrade header",
            Box::new(|a: &str| format!("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {a}\r\n\r\n").into_bytes()),
        ),
        (
            "endless headers",
            Box::new(|_: &str| {
                let mut v = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
                for i in 0..2000 {
                    v.extend_from_slice(format!("X-Filler-{i}: yes\r\n").as_bytes());
                }
                v
            }),
        ),
    ];
    for (name, head) in heads {
        let port = one_shot(head, Vec::new());
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        let e = ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect_err(name);
        assert_eq!(e.code, ResultCode::HandshakeFailed, "{name}: {e}");
    }
}

#[test]
fn random_bytes_never_crash_the_runtime() {
    let rt = Runtime::new().expect("runtime");
    let mut seed = 0x9E3779B97F4A7C15u64;
    for round in 0..40 {
        let mut tail = Vec::new();
        let n = 1 + (seed % 300) as usize;
        for _ in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            tail.push(seed as u8);
        }
        let port = one_shot(ok_head, tail);
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        ws.set_max_message_size(4096).expect("max");
        ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).unwrap_or_else(|e| panic!("round {round}: {e}"));
        // Random bytes may also be a valid frame sequence; either way at most one terminal event.
        let evs = terminal_events(&rt, &ws, Duration::from_millis(150));
        assert!(evs.len() <= 1, "round {round}: {evs:?}");
        ws.release();
    }
    // Still fully functional afterwards.
    let port = one_shot(ok_head, vec![0x81, 0x02, b'o', b'k']);
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    let ev = loop {
        let ev = rt.next_event(Duration::from_secs(3)).expect("event");
        if ev.is_from(&ws) {
            break ev;
        }
    };
    assert_eq!(ev.kind, EventKind::PushNotification);
    assert_eq!(&ev.data[..], b"ok");
}

#[allow(dead_code)]
fn _unused(_: TcpStream) {}
