//! Data-plane faults: numbered pushes, then the hostile bytes.

use super::*;

/// Accepts one connection, upgrades it, pushes text messages "1".."k", then runs `f`.
fn pusher(k: u32, f: impl FnOnce(TcpStream) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        let Ok(mut ws) = tungstenite::accept(s) else { return };
        for i in 1..=k {
            if ws.write(tungstenite::Message::Text(i.to_string().into())).is_err() {
                return;
            }
        }
        let _ = ws.flush();
        f(ws.into_inner());
    });
    port
}

/// Connects, expects "1".."k" exactly once in order, then the terminal event within `bound`.
fn pushes_then_end(k: u32, port: u16, setup: impl FnOnce(&WebSocket), bound: Duration) -> Event {
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    setup(&ws);
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    let mut got = 0u32;
    let end = Instant::now() + Duration::from_secs(10);
    let mut last_push = Instant::now();
    while Instant::now() < end {
        let Ok(ev) = rt.next_event(Duration::from_millis(5)) else { continue };
        match ev.kind {
            EventKind::PushNotification => {
                let seq: u32 = std::str::from_utf8(&ev.data).expect("utf8").parse().expect("number");
                got += 1;
                assert_eq!(seq, got, "out of order, lost or duplicated");
                last_push = Instant::now();
            }
            EventKind::Closed | EventKind::TransportDisconnected => {
                assert_eq!(got, k, "messages before the fault were lost");
                let took = last_push.elapsed();
                assert!(took <= bound, "the fault took {took:?} to detect (bound {bound:?}): {ev:?}");
                // The runtime lives on: another websocket still works.
                let srv = EchoServer::start();
                let ws2 = WebSocket::new(&rt, WebSocketKind::Message).expect("ws2");
                ws2.connect(&format!("ws://127.0.0.1:{}/", srv.port), 3000).expect("runtime still usable");
                return ev;
            }
            _ => {}
        }
    }
    panic!("no terminal event; {got} of {k} pushes");
}

#[test]
fn ping_flood() {
    let port = pusher(50, |mut s| {
        let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
        let mut frame = vec![0x89u8, 125];
        frame.extend_from_slice(&[b'p'; 125]);
        let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 64).collect();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end && s.write_all(&batch).is_ok() {}
    });
    let ev =
        pushes_then_end(50, port, |ws| ws.set_outbound_buffer_limit(64 << 10).expect("limit"), Duration::from_secs(5));
    assert_eq!((ev.kind, ev.result), (EventKind::TransportDisconnected, ResultCode::BufferFull), "{ev:?}");
}

#[test]
fn oversized_frame() {
    let port = pusher(50, |mut s| {
        let mut h = vec![0x82u8, 127];
        h.extend_from_slice(&(1u64 << 20).to_be_bytes());
        let _ = s.write_all(&h);
        std::thread::sleep(Duration::from_secs(3));
    });
    let ev =
        pushes_then_end(50, port, |ws| ws.set_max_message_size(64 << 10).expect("max"), Duration::from_millis(500));
    assert_eq!((ev.kind, ev.close_code, ev.result), (EventKind::Closed, 1009, ResultCode::MessageTooLarge), "{ev:?}");
}

#[test]
fn oversized_message_in_fragments() {
    let port = pusher(50, |mut s| {
        let mut frag = vec![0x02u8, 126, 0x40, 0x00];
        frag.extend_from_slice(&[7u8; 0x4000]);
        for _ in 0..8 {
            let _ = s.write_all(&frag);
            frag[0] = 0x00;
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let ev =
        pushes_then_end(50, port, |ws| ws.set_max_message_size(64 << 10).expect("max"), Duration::from_millis(500));
    assert_eq!((ev.kind, ev.close_code, ev.result), (EventKind::Closed, 1009, ResultCode::MessageTooLarge), "{ev:?}");
}

#[test]
fn malformed_frames() {
    // Reserved opcode, RSV bits, a masked server frame, a fragmented ping, a 126-byte ping.
    let cases: [&[u8]; 5] = [&[0x83, 0], &[0xc2, 0], &[0x82, 0x81, 1, 2, 3, 4, 5], &[0x09, 0], &[0x89, 126, 0, 126]];
    for bad in cases {
        let bytes = bad.to_vec();
        let port = pusher(20, move |mut s| {
            let _ = s.write_all(&bytes);
            let _ = s.write_all(&[0u8; 126]);
            std::thread::sleep(Duration::from_secs(3));
        });
        let ev = pushes_then_end(20, port, |_| {}, Duration::from_millis(500));
        assert_eq!((ev.kind, ev.result), (EventKind::TransportDisconnected, ResultCode::Io), "{bad:?}: {ev:?}");
        assert!(ev.reason().contains("protocol error"), "{bad:?}: {}", ev.reason());
    }
}

#[test]
fn slow_consumer_loses_nothing() {
    let n = 20_000u32;
    let port = pusher(n, |_s| std::thread::sleep(Duration::from_secs(30)));
    let rt = Runtime::new().expect("runtime");
    rt.set_event_queue_limit(64).expect("queue limit");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    let mut got = 0u32;
    let end = Instant::now() + Duration::from_secs(30);
    while got < n && Instant::now() < end {
        let Ok(ev) = rt.next_event(Duration::from_millis(50)) else { continue };
        assert_ne!(ev.kind, EventKind::TransportDisconnected, "{ev:?}");
        if ev.kind == EventKind::PushNotification {
            got += 1;
            let seq: u32 = std::str::from_utf8(&ev.data).expect("utf8").parse().expect("number");
            assert_eq!(seq, got, "out of order, lost or duplicated under back-pressure");
            if got % 500 == 0 {
                std::thread::sleep(Duration::from_millis(20)); // a slow consumer
            }
        }
    }
    assert_eq!(got, n);
}

/// A server that answers the upgrade request with `answer` (after reading the request).
fn answers(answer: Vec<u8>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(&answer);
        std::thread::sleep(Duration::from_secs(2));
    });
    port
}

#[test]
fn hostile_handshakes() {
    let ok_head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    let cases: Vec<(Vec<u8>, ResultCode)> = vec![
        (format!("{ok_head}Sec-WebSocket-Accept: wrong\r\n\r\n").into_bytes(), ResultCode::HandshakeFailed),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(), ResultCode::HandshakeFailed),
        (format!("{ok_head}X: {}\r\n", "a".repeat(20_000)).into_bytes(), ResultCode::HandshakeFailed),
        (vec![0xff; 300], ResultCode::HandshakeFailed),
        // An unfinished head: the connect timeout ends it.
        (b"HTTP/1.1 101\r\n".to_vec(), ResultCode::Timeout),
    ];
    let rt = Runtime::new().expect("runtime");
    for (answer, code) in cases {
        let port = answers(answer.clone());
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        let t = Instant::now();
        let err = ws.connect(&format!("ws://127.0.0.1:{port}/"), 1500).expect_err("must fail");
        assert_eq!(err.code, code, "{:?}: {err:?}", String::from_utf8_lossy(&answer[..answer.len().min(60)]));
        assert!(t.elapsed() < Duration::from_millis(1800), "took {:?}", t.elapsed());
    }
}

#[test]
fn tls_garbage() {
    let rt = Runtime::new().expect("runtime");
    for garbage in
        [vec![0x16u8, 0x03, 0x03, 0xff, 0xff, 1, 2, 3], b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(), vec![0x5a; 5000]]
    {
        let port = answers(garbage);
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        let err = ws.connect(&format!("wss://127.0.0.1:{port}/"), 1500).expect_err("must fail");
        assert_eq!(err.code, ResultCode::TlsFailed, "{err:?}");
    }
}
