//! Shared by the adaptive keep-alive tests: an in-process WebSocket server (tungstenite, answers
//! pings), the NAT simulator `tests/peer/proxy.py --nat-timeout-ms` in front of it (run with
//! `$CTRLCHAN_PYTHON`, else `<repo>/.venv/bin/python`), and a recorder of channel events.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrlchan::{
    Channel, Event, EventKind, KeepAlive, ReconnectPolicy, ResourceType, Runtime, WebSocket, WebSocketKind,
};

pub fn python() -> Option<String> {
    if let Ok(p) = std::env::var("CTRLCHAN_PYTHON") {
        return Some(p);
    }
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    std::path::Path::new(p).exists().then(|| p.to_string())
}

/// A WebSocket server on loopback that reads (so pings are answered) and never sends.
pub fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    port
}

fn serve(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let Ok(mut ws) = tungstenite::accept(stream) else { return };
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(_) => return,
        }
        let _ = ws.flush();
    }
}

/// `tests/peer/proxy.py` in NAT mode.
pub struct Nat {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub port: u16,
}

impl Nat {
    /// None when there is no Python (a failure under the test command, which sets CTRLCHAN_PYTHON).
    pub fn start(target_port: u16, nat_ms: u32) -> Option<Nat> {
        let py = python()?;
        let mut child = Command::new(py)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/proxy.py"))
            .args(["--target-port", &target_port.to_string(), "--nat-timeout-ms", &nat_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        let port = line.trim().strip_prefix("PORT ")?.parse().ok()?;
        Some(Nat { child, stdin, stdout, port })
    }

    /// Sends a command (`nat 1000`, `stats`) and returns the proxy's answer line.
    pub fn command(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").expect("proxy stdin");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("proxy answer");
        assert!(line.starts_with("OK"), "proxy answered {line:?} to {cmd:?}");
        line.trim().to_string()
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Skips (returns None) only outside the test command; under it a missing peer fails.
pub fn nat_or_skip(target_port: u16, nat_ms: u32) -> Option<Nat> {
    let nat = Nat::start(target_port, nat_ms);
    if nat.is_none() {
        assert!(std::env::var_os("CTRLCHAN_PYTHON").is_none(), "the NAT proxy did not start");
        eprintln!("skipped: no Python for tests/peer/proxy.py (set CTRLCHAN_PYTHON)");
    }
    nat
}

/// What a channel saw: (seconds since start, kind, interval_ms).
#[derive(Default)]
pub struct Recorder {
    pub start: Option<Instant>,
    pub events: Mutex<Vec<(f64, EventKind, u32)>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder { start: Some(Instant::now()), events: Mutex::new(Vec::new()) })
    }
    pub fn now(&self) -> f64 {
        self.start.map_or(0.0, |s| s.elapsed().as_secs_f64())
    }
    fn record(&self, ev: &Event) {
        let t = self.now();
        self.events.lock().map(|mut v| v.push((t, ev.kind, ev.interval_ms))).unwrap_or(());
    }
    pub fn all(&self) -> Vec<(f64, EventKind, u32)> {
        self.events.lock().map(|v| v.clone()).unwrap_or_default()
    }
    /// Lost connections: each loss starts a reconnect with attempt 1 (recorded as RECONNECTING).
    pub fn losses_since(&self, t0: f64) -> usize {
        self.all().iter().filter(|e| e.0 >= t0 && e.1 == EventKind::Reconnecting).count()
    }
    pub fn intervals(&self) -> Vec<(f64, u32)> {
        self.all().iter().filter(|e| e.1 == EventKind::IntervalChanged).map(|e| (e.0, e.2)).collect()
    }
    /// "t=1.2s 1400ms, …" for the test output.
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        for (t, k, ms) in self.all() {
            match k {
                EventKind::IntervalChanged => out.push(format!("{t:5.1}s interval {ms} ms")),
                EventKind::Reconnecting => out.push(format!("{t:5.1}s LOST (reconnecting)")),
                EventKind::TransportDisconnected => out.push(format!("{t:5.1}s DISCONNECTED")),
                _ => {}
            }
        }
        out.join("\n")
    }
}

/// The policy both channels use: reconnect at once, forever.
pub fn quick_policy() -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay_ms: 50,
        max_delay_ms: 200,
        multiplier_percent: 100,
        jitter_percent: 0,
        max_attempts: 0,
    }
}

/// A push-enabled channel through `port` with a 1 s pong timeout and the quick policy;
/// `adaptive` = (min, max) or None for a fixed interval.
pub fn channel(
    rt: &Arc<Runtime>,
    port: u16,
    id: &str,
    server_ms: u32,
    adaptive: Option<(u32, u32)>,
    rec: &Arc<Recorder>,
) -> (Arc<WebSocket>, Arc<Channel>) {
    let ws = WebSocket::new(rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(rt, id, server_ms, ResourceType::RequestSoftwareSlot).expect("channel");
    let ka = KeepAlive::new();
    ka.set_pong_timeout_ms(1_000).expect("pong timeout");
    ch.set_keepalive(Some(ka)).expect("keepalive");
    ch.set_reconnect_policy(Some(quick_policy())).expect("policy");
    if let Some((min, max)) = adaptive {
        ch.set_adaptive_keepalive(min, max).expect("adaptive");
    }
    let r = rec.clone();
    ch.set_handler(Some(Arc::new(move |ev: &Event| r.record(ev)))).expect("handler");
    ch.using_transport(&ws).expect("using_transport");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 5_000).expect("connect");
    ch.wait_for_push_enabled().expect("push enabled");
    (ws, ch)
}
