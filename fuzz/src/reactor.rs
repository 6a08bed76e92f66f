//! A whole connection through the real runtime (reactor thread, connect, lifecycle, keep-alive,
//! close and event paths), fed fuzzed server bytes over a loopback socket.
//!
//! One runtime and one listener serve every input (a runtime per input would cost a thread).
//! Per input: a websocket (optionally a channel's transport with keep-alives) connects to the
//! listener; the harness answers the upgrade (a correct 101, one naming a subprotocol, or a head
//! taken from the input with `ACCEPT` replaced by the right accept value), writes the rest of the
//! input in pieces while it polls events, optionally sends, closes, probes (a simulated resume
//! sends a keep-alive ping with a 10 ms pong timeout) or frees the websocket midway, and ends with
//! FIN or RST.
//!
//! Invariants: no panic on any thread (libFuzzer's hook aborts); the connect ends in CONNECTED or
//! CONNECT_FAILED; an open connection ends with exactly one CLOSED or TRANSPORT_DISCONNECTED within
//! 5 s of the server's FIN/RST, and nothing follows it; the PUSH events are the messages
//! tungstenite reads from the same bytes directly (a prefix of them when the run stopped early:
//! keep-alive, client close, free, RST).
//!
//! Input: `flags, seed, bytes...`. flags bits 0-1: head (0 plain 101, 1 subprotocol offered and
//! chosen, 2 raw head from the input, 3 a subprotocol chosen that was not offered); 2 channel with
//! keep-alive; 3 STREAM websocket; 4 send between pieces; 5 close midway; 6 resume probe midway;
//! 7 free midway. seed bits 0-5 piece sizes, 6 end with RST, 7 events through a handler.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ctrlchan::state::WsShared;
use ctrlchan::{Channel, Event, EventKind, KeepAlive, MessageType, ResourceType, Runtime, WebSocket, WebSocketKind};
use tungstenite::protocol::Role;

use crate::{engine_config, Peer, Splits};

const MAX_MESSAGE: u32 = 1 << 16;
/// How long the runtime may take to finish a connection after the server's FIN or RST.
const END_BOUND: Duration = Duration::from_secs(5);

struct Harness {
    rt: Arc<Runtime>,
    listener: TcpListener,
    uri: String,
}

fn harness() -> &'static Mutex<Option<Harness>> {
    static H: OnceLock<Mutex<Option<Harness>>> = OnceLock::new();
    H.get_or_init(|| {
        let make = || -> Option<Harness> {
            let rt = Runtime::new().ok()?;
            let listener = TcpListener::bind("127.0.0.1:0").ok()?;
            listener.set_nonblocking(true).ok()?;
            let port = listener.local_addr().ok()?.port();
            Some(Harness { rt, listener, uri: format!("ws://127.0.0.1:{port}/fuzz") })
        };
        Mutex::new(make())
    })
}

/// What the app saw of one websocket.
#[derive(Default)]
struct Seen {
    connected: bool,
    connect_failed: bool,
    terminal: u32,
    after_terminal: Vec<EventKind>,
    pushes: Vec<(MessageType, Vec<u8>)>,
}

impl Seen {
    fn record(&mut self, kind: EventKind, t: MessageType, data: &[u8]) {
        if self.terminal > 0 || self.connect_failed {
            self.after_terminal.push(kind);
        }
        match kind {
            EventKind::Connected => self.connected = true,
            EventKind::ConnectFailed => self.connect_failed = true,
            EventKind::Closed | EventKind::TransportDisconnected => self.terminal += 1,
            EventKind::PushNotification => self.pushes.push((t, data.to_vec())),
            _ => {}
        }
    }
    fn done(&self) -> bool {
        self.connect_failed || self.terminal > 0
    }
}

/// Events of one websocket, from the runtime queue or from a handler.
enum Source {
    Queue(Arc<Runtime>, Arc<WsShared>),
    Handler(mpsc::Receiver<(EventKind, MessageType, Vec<u8>)>),
}

impl Source {
    /// Records what is already there, then waits up to `wait` until the connection has ended.
    fn poll(&self, seen: &mut Seen, wait: Duration) {
        let end = Instant::now() + wait;
        for _ in 0..10_000 {
            let left = if seen.done() { Duration::ZERO } else { end.saturating_duration_since(Instant::now()) };
            match self {
                Source::Queue(rt, ws) => match rt.next_event(left) {
                    Ok(ev) => {
                        if ev.websocket.as_ref().is_some_and(|w| Arc::ptr_eq(w, ws)) {
                            seen.record(ev.kind, ev.message_type, &ev.data);
                        }
                    }
                    Err(_) => return,
                },
                Source::Handler(rx) => match rx.recv_timeout(left) {
                    Ok((k, t, d)) => seen.record(k, t, &d),
                    Err(_) => return,
                },
            }
        }
    }
}

/// The data messages tungstenite reads from `bytes` directly, until its first error.
fn expected_messages(bytes: &[u8]) -> Vec<(MessageType, Vec<u8>)> {
    let peer = Peer::new(bytes.to_vec(), 0);
    let mut ws = tungstenite::WebSocket::from_raw_socket(peer, Role::Client, Some(engine_config(MAX_MESSAGE as usize)));
    let mut out = Vec::new();
    for _ in 0..100_000 {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => out.push((MessageType::Utf8, t.as_bytes().to_vec())),
            Ok(tungstenite::Message::Binary(b)) => out.push((MessageType::Binary, b.to_vec())),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    out
}

/// Reads the upgrade request (up to 16 KiB) and returns its Sec-WebSocket-Key.
fn read_request(s: &mut TcpStream, deadline: Instant) -> Option<String> {
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        if Instant::now() > deadline || req.len() > 16 << 10 {
            return None;
        }
        match s.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_micros(50)),
            Err(_) => return None,
        }
    }
    let text = String::from_utf8_lossy(&req);
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_string())
    })
}

fn drain(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    for _ in 0..64 {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn set_rst_on_close(s: &TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket fd and a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

pub fn reactor(data: &[u8]) {
    let [flags, seed, rest @ ..] = data else { return };
    let (flags, seed) = (*flags, *seed);
    let Ok(guard) = harness().lock() else { return };
    let Some(h) = guard.as_ref() else { panic!("no runtime or loopback listener") };
    let head_mode = flags & 3;
    let kind = if flags & 8 != 0 { WebSocketKind::Stream } else { WebSocketKind::Message };
    let Ok(ws) = WebSocket::new(&h.rt, kind) else { panic!("websocket_new failed") };
    let _ = ws.set_max_message_size(MAX_MESSAGE);
    let _ = ws.set_event_mask(u32::MAX);
    if head_mode == 1 {
        let _ = ws.add_supported_protocol("chat");
        let _ = ws.add_supported_protocol("v2");
    }
    let channel = if flags & 4 != 0 {
        let ch = Channel::new(&h.rt, "fuzz", 100, ResourceType::RequestSoftwareSlot).ok();
        if let Some(ch) = &ch {
            let ka = KeepAlive::new();
            let _ = ka.set_pong_timeout_ms(10);
            let _ = ch.set_keepalive(Some(ka));
            let _ = ch.set_event_mask(u32::MAX);
            let _ = ch.using_transport(&ws);
        }
        ch
    } else {
        None
    };
    let source = if seed & 0x80 != 0 {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let handler: ctrlchan::Handler = Arc::new(move |ev: &Event| {
            if let Ok(tx) = tx.lock() {
                let _ = tx.send((ev.kind, ev.message_type, ev.data.to_vec()));
            }
        });
        let _ = ws.set_handler(Some(handler.clone()));
        if let Some(ch) = &channel {
            let _ = ch.set_handler(Some(handler));
        }
        Source::Handler(rx)
    } else {
        Source::Queue(h.rt.clone(), ws.shared().clone())
    };
    let mut seen = Seen::default();
    run(h, &ws, channel.as_deref(), &source, &mut seen, flags, seed, rest);
    if let Some(ch) = &channel {
        let _ = ch.close();
    }
    ws.release();
}

#[allow(clippy::too_many_arguments)]
fn run(
    h: &Harness,
    ws: &WebSocket,
    channel: Option<&Channel>,
    source: &Source,
    seen: &mut Seen,
    flags: u8,
    seed: u8,
    rest: &[u8],
) {
    let head_mode = flags & 3;
    let start = Instant::now();
    if ws.connect_async(&h.uri, 2_000).is_err() {
        panic!("connect_async to the loopback listener refused");
    }
    // Accept (bounded: the connect times out in 2 s).
    let mut sock = None;
    for _ in 0..200_000 {
        match h.listener.accept() {
            Ok((s, _)) => {
                sock = Some(s);
                break;
            }
            Err(_) if start.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_micros(20)),
            Err(e) => panic!("the runtime never connected to the listener: {e}"),
        }
    }
    let Some(mut s) = sock else { panic!("no connection accepted") };
    let _ = s.set_nonblocking(true);
    let _ = s.set_nodelay(true);
    let Some(key) = read_request(&mut s, start + Duration::from_secs(5)) else {
        panic!("no complete upgrade request from the runtime");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let (head, body): (Vec<u8>, &[u8]) = match head_mode {
        2 => {
            let end = rest.windows(4).position(|w| w == b"\r\n\r\n").map_or(rest.len(), |p| p + 4);
            let raw = String::from_utf8_lossy(&rest[..end]).replace("ACCEPT", &accept);
            (raw.into_bytes(), &rest[end..])
        }
        m => {
            let proto = if m == 0 { "" } else { "Sec-WebSocket-Protocol: chat\r\n" };
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\n{proto}\r\n"
            );
            (head.into_bytes(), rest)
        }
    };
    let mut splits = Splits(u32::from(seed & 0x3f));
    // Pieces of the body; the head goes out with the first one (its tail path in the parser).
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    while pos < body.len() && pieces.len() < 4096 {
        let n = splits.next().min(body.len() - pos);
        pieces.push(&body[pos..pos + n]);
        pos += n;
    }
    let midway = pieces.len() / 2;
    let mut first = head;
    let mut stopped_early = false;
    let mut released = false;
    for i in 0..=pieces.len() {
        let mut out = std::mem::take(&mut first);
        if let Some(p) = pieces.get(i) {
            out.extend_from_slice(p);
        }
        if !out.is_empty() && s.write_all(&out).is_err() {
            // The runtime closed on us (e.g. after a protocol error): nothing more to write.
            stopped_early = true;
            break;
        }
        if i == midway {
            if flags & 0x20 != 0 {
                let _ = ws.close(1000, "fuzz");
                stopped_early = true;
            }
            if flags & 0x40 != 0 {
                let _ = h.rt.simulate_suspend(1);
                stopped_early = true;
            }
            if flags & 0x80 != 0 {
                ws.release();
                released = true;
                stopped_early = true;
            }
        }
        if flags & 0x10 != 0 && i % 2 == 0 {
            let _ = ws.send(&[i as u8; 3]);
        }
        let _ = drain(&mut s);
        source.poll(seen, Duration::ZERO);
        if seen.done() || released {
            break;
        }
    }
    let rst = seed & 0x40 != 0;
    let mut s = if rst {
        set_rst_on_close(&s);
        drop(s);
        None
    } else {
        let _ = s.shutdown(Shutdown::Write);
        Some(s)
    };
    if released {
        return;
    }
    // The connection must end within the bound, with exactly one terminal event.
    let end = Instant::now() + END_BOUND;
    while !seen.done() && Instant::now() < end {
        source.poll(seen, Duration::from_millis(20));
        if let Some(s) = s.as_mut() {
            let _ = drain(s);
        }
    }
    // Anything queued after the end (there must be nothing).
    source.poll(seen, Duration::ZERO);
    check(seen, flags, channel.is_some(), stopped_early || rst, rest, head_mode);
}

fn check(seen: &Seen, flags: u8, with_channel: bool, early: bool, rest: &[u8], head_mode: u8) {
    assert!(seen.connected || seen.connect_failed, "neither CONNECTED nor CONNECT_FAILED");
    assert!(!(seen.connected && seen.connect_failed), "both CONNECTED and CONNECT_FAILED");
    assert!(seen.after_terminal.is_empty(), "events after the end: {:?}", seen.after_terminal);
    if head_mode == 3 {
        assert!(!seen.connected, "accepted a subprotocol it did not offer");
    }
    if head_mode <= 1 && flags & 0xe0 == 0 {
        assert!(seen.connected, "a correct 101 was refused");
    }
    if !seen.connected {
        assert!(seen.pushes.is_empty(), "messages without a connection");
        return;
    }
    assert_eq!(seen.terminal, 1, "an open connection must end with exactly one CLOSED/TRANSPORT_DISCONNECTED");
    if head_mode == 2 {
        return; // where the raw head ends is the parser's business: no reference to compare with
    }
    let expected = expected_messages(rest);
    let stream = flags & 8 != 0;
    let flat = |v: &[(MessageType, Vec<u8>)]| v.iter().flat_map(|(_, d)| d.iter().copied()).collect::<Vec<u8>>();
    if stream {
        let (got, want) = (flat(&seen.pushes), flat(&expected));
        assert!(want.starts_with(&got), "STREAM bytes are not a prefix of the messages sent");
        if !early && !with_channel {
            assert_eq!(got, want, "STREAM bytes lost");
        }
    } else {
        assert!(seen.pushes.len() <= expected.len(), "more messages than the server sent");
        assert_eq!(seen.pushes[..], expected[..seen.pushes.len()], "messages differ from what the server sent");
        if !early && !with_channel {
            assert_eq!(seen.pushes.len(), expected.len(), "messages lost");
        }
    }
}
