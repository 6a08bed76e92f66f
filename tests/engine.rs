//! End-to-end tests of the safe Rust API against an in-process tungstenite server on loopback.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrlchan::{
    Channel, EventKind, KeepAlive, MessageType, ResourceType, ResultCode, Runtime, Status, WebSocket, WebSocketKind,
};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::Message;

/// What the test server does with each accepted connection.
#[derive(Clone)]
enum Mode {
    /// Echo data; record ping arrival times.
    Echo,
    /// Send `n` numbered text messages then echo.
    Push(usize),
    /// Complete the handshake, then never read again (no pongs: a hung peer).
    Hang,
    /// Close with the code after the first message received.
    CloseOnMessage(u16),
    /// Drop TCP without a close frame after the handshake.
    Drop,
    /// Send one binary message of this size.
    Big(usize),
    /// Echo, but answer pings only after a delay: the n-th connection waits n × this.
    SlowPong(Duration),
}

struct Server {
    port: u16,
    pings: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn server(mode: Mode) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let pings = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (p2, s2) = (pings.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut accepted = 0;
        for stream in listener.incoming() {
            if s2.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let mode = match &mode {
                Mode::SlowPong(step) => Mode::SlowPong(*step * accepted),
                m => m.clone(),
            };
            accepted += 1;
            let pings = p2.clone();
            let stop = s2.clone();
            std::thread::spawn(move || serve(stream, mode, pings, stop));
        }
    });
    Server { port, pings, stop }
}

fn serve(stream: TcpStream, mode: Mode, pings: Arc<Mutex<Vec<Instant>>>, stop: Arc<AtomicBool>) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut ws) = tungstenite::accept(stream) else { return };
    match &mode {
        Mode::Push(n) => {
            for i in 0..*n {
                if ws.send(Message::text(format!("msg {i}"))).is_err() {
                    return;
                }
            }
        }
        Mode::Hang => {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        Mode::Drop => return,
        Mode::Big(n) => {
            let _ = ws.send(Message::binary(vec![7u8; *n]));
        }
        _ => {}
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Ping(_)) => {
                pings.lock().map(|mut p| p.push(Instant::now())).unwrap_or(());
                if let Mode::SlowPong(delay) = mode {
                    std::thread::sleep(delay); // the pong tungstenite queued goes out at the flush
                }
            }
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if let Mode::CloseOnMessage(code) = mode {
                    let _ = ws.close(Some(CloseFrame { code: CloseCode::from(code), reason: "bye".into() }));
                } else if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(Message::Close(_)) => {}
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(_) => return,
        }
        let _ = ws.flush();
    }
}

fn next(rt: &Runtime, kind: EventKind, within: Duration) -> ctrlchan::Event {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = rt.next_event(left).unwrap_or_else(|e| panic!("waiting for {kind:?}: {e}"));
        if ev.kind == kind {
            return ev;
        }
    }
}

fn connected(rt: &Arc<Runtime>, port: u16, path: &str, interval_ms: u32) -> (Arc<WebSocket>, Arc<Channel>) {
    let ws = WebSocket::new(rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(rt, "chan", interval_ms, ResourceType::RequestSoftwareSlot).expect("channel");
    // These tests observe keep-alive acknowledgements, which the default mask leaves out.
    ch.set_event_mask(0xFFFF_FFFF).expect("mask");
    ch.using_transport(&ws).expect("using_transport");
    ws.connect(&format!("ws://127.0.0.1:{port}{path}"), 5000).expect("connect");
    (ws, ch)
}

#[test]
fn echo_round_trip_in_order() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (ws, ch) = connected(&rt, srv.port, "/", 60_000);
    assert_eq!(ch.wait_for_push_enabled().expect("push"), Status::SoftwareSlotAllocated);
    ws.set_message_type(MessageType::Utf8).expect("the message type may change after connect");
    for i in 0..200 {
        ws.send_message(MessageType::Utf8, format!("m{i}").as_bytes()).expect("send");
    }
    for i in 0..200 {
        let ev = next(&rt, EventKind::PushNotification, Duration::from_secs(5));
        assert_eq!(ev.message_type, MessageType::Utf8);
        assert_eq!(&ev.data[..], format!("m{i}").as_bytes());
        assert_eq!(ev.channel_id_cstr().to_str().ok(), Some("chan"));
    }
    let st = ws.stats();
    assert_eq!(st.messages_sent, 200);
    assert_eq!(st.messages_received, 200);
}

#[test]
fn server_push_order_across_many_messages() {
    let srv = server(Mode::Push(2000));
    let rt = Runtime::new().expect("runtime");
    let (_ws, _ch) = connected(&rt, srv.port, "/", 60_000);
    for i in 0..2000 {
        let ev = next(&rt, EventKind::PushNotification, Duration::from_secs(5));
        assert_eq!(&ev.data[..], format!("msg {i}").as_bytes());
    }
}

#[test]
fn keepalives_follow_the_interval_with_rtt_and_are_never_late() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (_ws, ch) = connected(&rt, srv.port, "/", 300);
    let start = Instant::now();
    assert_eq!(ch.wait_for_push_enabled().expect("push"), Status::SoftwareSlotAllocated);
    let mut acks = 0;
    while acks < 5 {
        let ev = next(&rt, EventKind::Keepalive, Duration::from_secs(3));
        assert!(ev.rtt_us > 0 && ev.rtt_us < 1_000_000, "rtt {}", ev.rtt_us);
        acks += 1;
    }
    let pings = srv.pings.lock().expect("lock").clone();
    assert!(pings.len() >= 5);
    // Never late: consecutive pings are at most one interval (+ scheduling slack) apart.
    let mut prev = start;
    for p in &pings {
        let gap = p.duration_since(prev);
        assert!(gap <= Duration::from_millis(300 + 40), "keep-alive gap {gap:?} exceeds the interval");
        prev = *p;
    }
}

#[test]
fn outbound_data_counts_as_keepalive() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    // The echo of each message is the inbound evidence that makes a liveness ping unnecessary; the
    // 1 s interval leaves room for a loaded machine to deliver it late.
    let (ws, ch) = connected(&rt, srv.port, "/", 1000);
    ch.wait_for_push_enabled().expect("push");
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        ws.send(b"busy").expect("send");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(srv.pings.lock().expect("lock").len(), 0, "a busy channel needs no ping");
}

#[test]
fn hung_peer_is_detected_by_pong_timeout_exactly_once() {
    let srv = server(Mode::Hang);
    let rt = Runtime::new().expect("runtime");
    let (_ws, ch) = connected(&rt, srv.port, "/", 200);
    let ka = KeepAlive::new();
    ka.set_pong_timeout_ms(300).expect("timeout");
    ch.set_keepalive(Some(ka)).expect("set ka");
    let t0 = Instant::now();
    ch.wait_for_push_enabled().expect("push");
    let ev = next(&rt, EventKind::TransportDisconnected, Duration::from_secs(3));
    let took = t0.elapsed();
    assert!(ev.reason().contains("pong timeout"), "{}", ev.reason());
    assert_eq!(ev.result, ResultCode::Timeout);
    assert!(took <= Duration::from_millis(200 + 300 + 200), "detected after {took:?}");
    assert!(matches!(rt.next_event(Duration::from_millis(700)), Err(e) if e.code == ResultCode::Timeout));
}

#[test]
fn close_codes_and_eof_are_reported() {
    let srv = server(Mode::CloseOnMessage(4001));
    let rt = Runtime::new().expect("runtime");
    let (ws, _ch) = connected(&rt, srv.port, "/", 60_000);
    ws.send(b"x").expect("send");
    let ev = next(&rt, EventKind::Closed, Duration::from_secs(3));
    assert_eq!(ev.close_code, 4001);
    assert_eq!(ev.reason(), "bye");

    let srv2 = server(Mode::Drop);
    let (_ws2, _ch2) = connected(&rt, srv2.port, "/", 60_000);
    let ev = next(&rt, EventKind::TransportDisconnected, Duration::from_secs(3));
    assert!(ev.reason().contains("EOF") || ev.reason().contains("reset"), "{}", ev.reason());
}

#[test]
fn client_close_gets_closed_event() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (ws, _ch) = connected(&rt, srv.port, "/", 60_000);
    ws.close(1000, "done").expect("close");
    let ev = next(&rt, EventKind::Closed, Duration::from_secs(3));
    assert_eq!(ev.close_code, 1000);
    assert!(matches!(ws.send(b"late"), Err(e) if e.code == ResultCode::Closed));
}

#[test]
fn oversized_message_closes_with_1009() {
    let srv = server(Mode::Big(64 * 1024));
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws.set_max_message_size(1024).expect("max");
    ws.connect(&format!("ws://127.0.0.1:{}/", srv.port), 5000).expect("connect");
    let ev = next(&rt, EventKind::Closed, Duration::from_secs(3));
    assert_eq!(ev.close_code, 1009);
    assert_eq!(ev.result, ResultCode::MessageTooLarge);
}

#[test]
fn connect_failures_are_classified() {
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let e = ws.connect(&format!("ws://127.0.0.1:{port}/"), 2000).expect_err("refused");
    assert_eq!(e.code, ResultCode::ConnectFailed);
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    assert_eq!(ws.connect("http://127.0.0.1/", 100).expect_err("scheme").code, ResultCode::InvalidArgument);
    // A TCP server that never answers the handshake: timeout.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let sp = silent.local_addr().expect("addr").port();
    let e = ws.connect(&format!("ws://127.0.0.1:{sp}/"), 300).expect_err("timeout");
    assert_eq!(e.code, ResultCode::Timeout, "{e}");
}

#[test]
fn async_connect_reports_events() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Stream).expect("ws");
    ws.connect_async(&format!("ws://127.0.0.1:{}/", srv.port), 5000).expect("async");
    let ev = next(&rt, EventKind::Connected, Duration::from_secs(3));
    assert!(ev.websocket.is_some());
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let ws2 = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws2.connect_async(&format!("ws://127.0.0.1:{port}/"), 2000).expect("async");
    let ev = next(&rt, EventKind::ConnectFailed, Duration::from_secs(3));
    assert!(ev.reason().contains("CONNECT_FAILED"), "{}", ev.reason());
    assert_eq!(ev.result, ResultCode::ConnectFailed);
}

#[test]
fn channel_limit_gives_policy_error() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    rt.set_max_channels(1).expect("limit");
    let (_a, cha) = connected(&rt, srv.port, "/", 60_000);
    let (_b, chb) = connected(&rt, srv.port, "/", 60_000);
    assert_eq!(cha.wait_for_push_enabled().expect("a"), Status::SoftwareSlotAllocated);
    assert_eq!(chb.wait_for_push_enabled().expect("b"), Status::PolicyError);
    cha.close().expect("close");
    assert_eq!(chb.wait_for_push_enabled().expect("b"), Status::SoftwareSlotAllocated);
}

#[test]
fn hardware_slot_arms_kernel_keepalive() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(&rt, "hw", 30_000, ResourceType::RequestHardwareSlot).expect("ch");
    ch.using_transport(&ws).expect("bind");
    ws.connect(&format!("ws://127.0.0.1:{}/", srv.port), 5000).expect("connect");
    assert_eq!(ch.wait_for_push_enabled().expect("push"), Status::HardwareSlotAllocated);
}

#[test]
fn callbacks_receive_events_and_blocking_calls_fail_inside() {
    let srv = server(Mode::Push(10));
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(&rt, "cb", 60_000, ResourceType::RequestSoftwareSlot).expect("ch");
    let count = Arc::new(AtomicUsize::new(0));
    let blocked = Arc::new(AtomicUsize::new(0));
    let (c2, b2, rt2, ws2) = (count.clone(), blocked.clone(), rt.clone(), ws.clone());
    ch.set_handler(Some(Arc::new(move |ev: &ctrlchan::Event| {
        if ev.kind == EventKind::PushNotification {
            c2.fetch_add(1, Ordering::SeqCst);
            if matches!(rt2.next_event(Duration::from_millis(1)), Err(e) if e.code == ResultCode::InvalidState)
                && matches!(ws2.flush(Duration::from_millis(1)), Err(e) if e.code == ResultCode::InvalidState)
            {
                b2.fetch_add(1, Ordering::SeqCst);
            }
        }
    })))
    .expect("handler");
    ch.using_transport(&ws).expect("bind");
    ws.connect(&format!("ws://127.0.0.1:{}/", srv.port), 5000).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(3);
    while count.load(Ordering::SeqCst) < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(count.load(Ordering::SeqCst), 10);
    assert_eq!(blocked.load(Ordering::SeqCst), 10);
    assert_eq!(rt.queued_events(), 0);
}

/// The runtime's counters after `warmup` and again `window` later.
fn stats_over(rt: &Runtime, warmup: Duration, window: Duration) -> (ctrlchan::RuntimeStats, ctrlchan::RuntimeStats) {
    std::thread::sleep(warmup);
    let before = rt.stats();
    std::thread::sleep(window);
    (before, rt.stats())
}

/// `n` channels with 400 ms keep-alives on their own websockets to the server, enabled `gap` apart.
fn keepalive_channels(rt: &Arc<Runtime>, port: u16, n: usize, gap: Duration) -> Vec<(Arc<WebSocket>, Arc<Channel>)> {
    (0..n)
        .map(|i| {
            let ws = WebSocket::new(rt, WebSocketKind::Message).expect("ws");
            let ch = Channel::new(rt, &format!("c{i}"), 400, ResourceType::RequestSoftwareSlot).expect("ch");
            ch.using_transport(&ws).expect("bind");
            ws.connect(&format!("ws://127.0.0.1:{port}/"), 5000).expect("connect");
            ch.wait_for_push_enabled().expect("push");
            std::thread::sleep(gap);
            (ws, ch)
        })
        .collect()
}

#[test]
fn idle_runtime_makes_no_wakeups_and_keepalive_wakeups_are_shared() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    // Idle: connected sockets without keep-alives cost no wake-ups at all.
    let mut socks = Vec::new();
    for _ in 0..20 {
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        ws.connect(&format!("ws://127.0.0.1:{}/", srv.port), 5000).expect("connect");
        socks.push(ws);
    }
    std::thread::sleep(Duration::from_millis(200));
    let w0 = rt.stats().wakeups;
    std::thread::sleep(Duration::from_millis(1500));
    assert!(rt.stats().wakeups - w0 <= 1, "idle runtime woke {} times", rt.stats().wakeups - w0);

    // 20 channels with the same interval, enabled 5 ms apart: with coalescing their keep-alives
    // share wake-ups; with the window set to 0 each one costs its own. Same peer, same run.
    let measure = |window_ms: u32| -> (u64, u64) {
        let rt = Runtime::new().expect("runtime");
        rt.set_coalescing_window(window_ms).expect("window");
        // 15 ms apart: without coalescing each deadline is its own wake-up, even when a loaded
        // machine makes the reactor a few ms late.
        let _chans = keepalive_channels(&rt, srv.port, 20, Duration::from_millis(15));
        let (a, b) = stats_over(&rt, Duration::from_millis(450), Duration::from_millis(2000));
        (b.wakeups - a.wakeups, b.keepalives_sent - a.keepalives_sent)
    };
    let (w_coal, k_coal) = measure(1000);
    let (w_none, k_none) = measure(0);
    eprintln!("coalesced: {w_coal} wake-ups for {k_coal} keep-alives; uncoalesced: {w_none} for {k_none}");
    assert!(k_coal >= 80 && k_none >= 80, "about 5 rounds of 20 keep-alives each");
    assert!(w_coal * 3 < w_none * 2, "coalescing should save wake-ups: {w_coal} vs {w_none}");
}

#[test]
fn a_burst_of_pongs_spread_over_time_is_read_in_a_few_wakeups() {
    // 40 channels whose pongs come back 0.5 ms apart (20 ms per burst): without the settle each
    // pong is a wake-up; with it a burst costs a few. Same peer, same run.
    let srv = server(Mode::SlowPong(Duration::from_micros(500)));
    let measure = |settle_ms: u32| -> (u64, u64) {
        let rt = Runtime::new().expect("runtime");
        rt.set_pong_settle(settle_ms).expect("settle");
        let _chans = keepalive_channels(&rt, srv.port, 40, Duration::ZERO);
        let (a, b) = stats_over(&rt, Duration::from_millis(900), Duration::from_millis(2000));
        (b.wakeups - a.wakeups, b.keepalives_acked - a.keepalives_acked)
    };
    let (w_settle, a_settle) = measure(50);
    let (w_none, a_none) = measure(0);
    eprintln!("settle: {w_settle} wake-ups for {a_settle} pongs; none: {w_none} for {a_none}");
    assert!(a_settle >= 120 && a_none >= 120, "about 5 bursts of 40 pongs each");
    assert!(w_settle * 3 < w_none, "the settle should save wake-ups: {w_settle} vs {w_none}");
}

#[test]
fn changing_intervals_reschedules_keepalives_at_once() {
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let (_ws, ch) = connected(&rt, srv.port, "/", 60_000);
    ch.wait_for_push_enabled().expect("push");
    assert!(matches!(rt.next_event(Duration::from_millis(600)), Err(e) if e.code == ResultCode::Timeout));
    // The server now needs a keep-alive every 300 ms: the next one must not wait for the old 60 s.
    ch.set_server_keepalive_interval_ms(300).expect("set");
    assert_eq!(ch.server_keepalive_interval_ms(), 300);
    assert_eq!(ch.current_keepalive_interval_ms(), 300);
    let t0 = Instant::now();
    let _ = next(&rt, EventKind::Keepalive, Duration::from_secs(2));
    assert!(t0.elapsed() < Duration::from_millis(300 + 200), "first keep-alive after {:?}", t0.elapsed());
    ch.decrease_network_keepalive_interval().expect("decrease");
    assert_eq!(ch.current_keepalive_interval_ms(), 150);
    assert_eq!(ch.set_server_keepalive_interval_ms(99).expect_err("range").code, ResultCode::InvalidArgument);
    ch.set_server_keepalive_interval_ms(1000).expect("set");
    assert_eq!(ch.current_keepalive_interval_ms(), 1000, "the network interval restarts from the new value");
}

#[test]
fn pong_timeout_fires_even_when_it_spans_many_intervals() {
    // 100 ms interval, 2.5 s pong timeout: ~25 unanswered pings (more than the 16 tracked) are
    // sent before the deadline, which must not slide.
    let srv = server(Mode::Hang);
    let rt = Runtime::new().expect("runtime");
    let (_ws, ch) = connected(&rt, srv.port, "/", 100);
    let ka = KeepAlive::new();
    ka.set_pong_timeout_ms(2500).expect("timeout");
    ch.set_keepalive(Some(ka)).expect("set ka");
    let t0 = Instant::now();
    ch.wait_for_push_enabled().expect("push");
    let ev = next(&rt, EventKind::TransportDisconnected, Duration::from_secs(6));
    let took = t0.elapsed();
    assert_eq!(ev.result, ResultCode::Timeout, "{}", ev.reason());
    assert!(took >= Duration::from_millis(2500) && took <= Duration::from_millis(100 + 2500 + 300), "{took:?}");
}

#[test]
fn shutdown_from_a_callback_wakes_waiters_and_releases_handlers() {
    let srv = server(Mode::Push(1));
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(&rt, "cb-free", 60_000, ResourceType::RequestSoftwareSlot).expect("ch");
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let released = Arc::new(AtomicBool::new(false));
    let flag = Flag(released.clone());
    let rt2 = rt.clone();
    ch.set_handler(Some(Arc::new(move |ev: &ctrlchan::Event| {
        let _ = &flag;
        if ev.kind == EventKind::PushNotification {
            // Not joined (we are the runtime thread), but the shutdown must still complete.
            assert_eq!(rt2.shutdown().expect_err("from callback").code, ResultCode::InvalidState);
        }
    })))
    .expect("handler");
    ch.using_transport(&ws).expect("bind");
    let waiter = {
        let rt = rt.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let r = rt.next_event(Duration::from_secs(20));
            (r.map(|_| ()).map_err(|e| e.code), t0.elapsed())
        })
    };
    ws.connect(&format!("ws://127.0.0.1:{}/", srv.port), 5000).expect("connect");
    let (r, took) = waiter.join().expect("waiter");
    assert_eq!(r, Err(ResultCode::Closed));
    assert!(took < Duration::from_secs(5), "blocked waiter woke after {took:?}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !released.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(released.load(Ordering::SeqCst), "the handler (and its userdata) was released");
}

/// Freeing (releasing) an open websocket finishes a graceful close in the background: queued data
/// first, then a 1001 close frame; the peer's reply completes the handshake and TCP closes
/// cleanly. No event is delivered for the freed websocket.
#[test]
fn release_of_an_open_websocket_closes_gracefully_without_events() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<String>>();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Ok(mut ws) = tungstenite::accept(stream) else { return };
        let mut seen = Vec::new();
        for _ in 0..100 {
            match ws.read() {
                Ok(Message::Text(t)) => seen.push(format!("text {t}")),
                Ok(Message::Close(f)) => {
                    seen.push(format!("close {}", f.map(|f| u16::from(f.code)).unwrap_or(0)));
                    // Our reply goes out on the next read: is the client still waiting for it?
                    std::thread::sleep(Duration::from_millis(300));
                    let s = ws.get_mut();
                    let _ = s.set_nonblocking(true);
                    let mut b = [0u8; 1];
                    seen.push(match s.peek(&mut b) {
                        Ok(0) => "client gone before our reply".into(),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => "client waits for our reply".into(),
                        other => format!("peek {other:?}"),
                    });
                    let _ = s.set_nonblocking(false);
                }
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => {
                    seen.push("clean end".into());
                    break;
                }
                Err(e) => {
                    seen.push(format!("error {e}"));
                    break;
                }
            }
        }
        let _ = tx.send(seen);
    });
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws.set_message_type(MessageType::Utf8).expect("utf8");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 5000).expect("connect");
    ws.send(b"last words").expect("send");
    ws.release();
    assert_eq!(ws.state(), ctrlchan::WebSocketState::Closed);
    let seen = rx.recv_timeout(Duration::from_secs(10)).expect("server report");
    assert_eq!(
        seen,
        vec![
            "text last words".to_string(),
            "close 1001".into(),
            "client waits for our reply".into(),
            "clean end".into()
        ]
    );
    assert!(rt.next_event(Duration::from_millis(300)).is_err(), "no event after release");
    assert_eq!(rt.stats().connections_open, 0);
}

#[test]
fn connects_beyond_the_limit_wait_their_turn_per_destination_with_their_timeout_running() {
    // A runtime runs at most 64 connects at once per destination (ctrlchan_websocket_connect's
    // contract). 64 connects to a server that accepts TCP but never answers the upgrade hold every
    // turn to it for 1.5 s. Behind them, to the same server: a connect whose timeout is shorter
    // fails with TIMEOUT while still queued, and one with a longer timeout gets a turn after one
    // of them gave up (and then times out in the handshake, not in the queue). A connect to another
    // server is not held back at all.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let sp = silent.local_addr().expect("addr").port();
    let srv = server(Mode::Echo);
    let rt = Runtime::new().expect("runtime");
    let mut stuck = Vec::new();
    for _ in 0..64 {
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        ws.connect_async(&format!("ws://127.0.0.1:{sp}/"), 1500).expect("async");
        stuck.push(ws);
    }
    let short = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    short.connect_async(&format!("ws://127.0.0.1:{sp}/"), 200).expect("async");
    let late = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    late.connect_async(&format!("ws://127.0.0.1:{sp}/"), 3000).expect("async");
    let other = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    other.connect_async(&format!("ws://127.0.0.1:{}/", srv.port), 5000).expect("async");
    let is = |ev: &ctrlchan::Event, ws: &WebSocket| ev.websocket.as_ref().is_some_and(|w| Arc::ptr_eq(w, ws.shared()));
    let (mut stuck_failed, mut order) = (0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(15);
    while order.len() < 3 || stuck_failed < 64 {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev =
            rt.next_event(left).unwrap_or_else(|e| panic!("events so far {order:?}, {stuck_failed} stuck failed: {e}"));
        if is(&ev, &other) {
            assert_eq!(ev.kind, EventKind::Connected, "{}", ev.reason());
            order.push(("other", stuck_failed));
        } else if is(&ev, &short) {
            assert_eq!((ev.kind, ev.result), (EventKind::ConnectFailed, ResultCode::Timeout), "{}", ev.reason());
            assert!(ev.reason().contains("queued"), "{}", ev.reason());
            order.push(("short", stuck_failed));
        } else if is(&ev, &late) {
            assert_eq!((ev.kind, ev.result), (EventKind::ConnectFailed, ResultCode::Timeout), "{}", ev.reason());
            assert!(!ev.reason().contains("queued"), "it had its turn: {}", ev.reason());
            order.push(("late", stuck_failed));
        } else if ev.kind == EventKind::ConnectFailed {
            assert_eq!(ev.result, ResultCode::Timeout, "{}", ev.reason());
            stuck_failed += 1;
        }
    }
    let at = |name: &str| order.iter().find(|o| o.0 == name).map(|o| o.1);
    assert_eq!(at("other"), Some(0), "another server's connect was held back: {order:?}");
    assert_eq!(at("short"), Some(0), "the short timeout expired in the queue: {order:?}");
    assert_eq!(at("late"), Some(64), "the late connect had its turn after the stuck ones: {order:?}");
    other.send(b"open").expect("the other websocket is open");
    drop(silent);
}
