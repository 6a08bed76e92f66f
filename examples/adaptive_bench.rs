//! Benchmark: keep-alives per hour and connections lost per hour, fixed vs adaptive keep-alive,
//! behind the NAT simulator (`tests/peer/proxy.py --nat-timeout-ms T`: a connection idle longer
//! than T is silently forgotten). Shortened time scale: T is seconds, not the minutes of real
//! NATs; the learner's steps are proportional, so the shape carries over (hours of real time
//! become minutes here). Per T, three channels run side by side through the same NAT:
//!
//! - fixed, long: the server interval (30 s), what an app without adaptive keep-alive sends;
//! - fixed, safe: 0.25·T, what an app sends when it knows T and wants no loss (wasteful);
//! - adaptive: `set_adaptive_keepalive(650 ms, 30 s)`, which does not know T (650 ms keeps the
//!   ramp 0.65·2^k off the T values, whose exact multiples the simulator would accept).
//!
//! Every channel has a reconnect policy (at once, forever); a loss = a RECONNECTING event with
//! attempt 1. "probe resets" = losses found by a network-change/resume probe (should be 0).
//! Rates are extrapolated to one hour from the run; "steady" counts only the second half.
//!
//!     cargo run --release --example adaptive_bench -- [--seconds 180] [--t 2,5,10]
//!
//! Needs Python with the test peer's requirements: `$CTRLCHAN_PYTHON`, else `.venv/bin/python`.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrlchan::{
    Channel, Event, EventKind, KeepAlive, ReconnectPolicy, ResetReason, ResourceType, Runtime, WebSocket, WebSocketKind,
};

const SERVER_INTERVAL_MS: u32 = 30_000;

fn python() -> String {
    std::env::var("CTRLCHAN_PYTHON").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").into())
}

fn echo_server() -> u16 {
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
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut ws) = tungstenite::accept(stream) else { return };
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(_) => return,
        }
        let _ = ws.flush();
    }
}

struct Nat(Child, u16);
impl Drop for Nat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nat(target: u16, t_ms: u32) -> Nat {
    let mut child = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/proxy.py"))
        .args(["--target-port", &target.to_string(), "--nat-timeout-ms", &t_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tests/peer/proxy.py (set CTRLCHAN_PYTHON)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("PORT line");
    let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("PORT <n>");
    Nat(child, port)
}

#[derive(Default)]
struct Counts {
    lost: Mutex<Vec<Instant>>,
    moves: AtomicU64,
    /// RESETs found by a network-change or resume probe (not by the keep-alive schedule).
    probe_resets: AtomicU64,
}

struct Lane {
    name: &'static str,
    ch: Arc<Channel>,
    _ws: Arc<WebSocket>,
    counts: Arc<Counts>,
}

fn lane(rt: &Arc<Runtime>, port: u16, name: &'static str, fixed_ms: Option<u32>) -> Lane {
    let ws = WebSocket::new(rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(rt, name, SERVER_INTERVAL_MS, ResourceType::RequestSoftwareSlot).expect("channel");
    let ka = KeepAlive::new();
    ka.set_pong_timeout_ms(1_000).expect("pong timeout");
    ch.set_keepalive(Some(ka)).expect("keepalive");
    let policy = ReconnectPolicy {
        initial_delay_ms: 50,
        max_delay_ms: 200,
        multiplier_percent: 100,
        jitter_percent: 0,
        max_attempts: 0,
    };
    ch.set_reconnect_policy(Some(policy)).expect("policy");
    match fixed_ms {
        Some(ms) => ch.set_server_keepalive_interval_ms(ms).expect("interval"),
        None => ch.set_adaptive_keepalive(650, SERVER_INTERVAL_MS).expect("adaptive"),
    }
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    ch.set_handler(Some(Arc::new(move |ev: &Event| match ev.kind {
        // Each loss starts a reconnect at attempt 1 (a failed attempt is not another loss).
        EventKind::Reconnecting if ev.attempt == 1 => c.lost.lock().map(|mut v| v.push(Instant::now())).unwrap_or(()),
        EventKind::IntervalChanged => {
            c.moves.fetch_add(1, Ordering::Relaxed);
        }
        EventKind::Reset if ev.reset_reason != ResetReason::Reconnected => {
            c.probe_resets.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    })))
    .expect("handler");
    ch.using_transport(&ws).expect("using_transport");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 5_000).expect("connect");
    ch.wait_for_push_enabled().expect("push enabled");
    Lane { name, ch, _ws: ws, counts }
}

struct Row {
    t_ms: u32,
    name: &'static str,
    interval_ms: u32,
    ka_per_h: f64,
    lost_per_h: f64,
    steady_lost_per_h: f64,
    moves: u64,
    acked_per_h: f64,
    probe_resets: u64,
}

fn run_t(t_ms: u32, seconds: u64) -> Vec<Row> {
    let server = echo_server();
    let proxy = nat(server, t_ms);
    let rt = Runtime::new().expect("runtime");
    rt.set_coalescing_window(0).expect("exact gaps");
    let start = Instant::now();
    let lanes = [
        lane(&rt, proxy.1, "fixed, server 30 s", Some(SERVER_INTERVAL_MS)),
        lane(&rt, proxy.1, "fixed, safe 0.25 T", Some((t_ms / 4).max(100))),
        lane(&rt, proxy.1, "adaptive 0.65..30 s", None),
    ];
    std::thread::sleep(Duration::from_secs(seconds));
    let elapsed = start.elapsed().as_secs_f64();
    let half = start + Duration::from_secs_f64(elapsed / 2.0);
    let per_h = |n: f64, secs: f64| n * 3600.0 / secs;
    lanes
        .iter()
        .map(|l| {
            let s = l.ch.statistics();
            let lost = l.counts.lost.lock().map(|v| v.clone()).unwrap_or_default();
            let steady = lost.iter().filter(|t| **t >= half).count();
            Row {
                t_ms,
                name: l.name,
                interval_ms: l.ch.current_keepalive_interval_ms(),
                ka_per_h: per_h(s.keepalives_sent as f64, elapsed),
                lost_per_h: per_h(lost.len() as f64, elapsed),
                steady_lost_per_h: per_h(steady as f64, elapsed / 2.0),
                moves: l.counts.moves.load(Ordering::Relaxed),
                acked_per_h: per_h(s.keepalives_acked as f64, elapsed),
                probe_resets: l.counts.probe_resets.load(Ordering::Relaxed),
            }
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(180);
    let ts: Vec<u32> = arg("--t")
        .unwrap_or_else(|| "2,5,10".into())
        .split(',')
        .filter_map(|t| t.trim().parse::<f64>().ok())
        .map(|s| (s * 1000.0) as u32)
        .collect();
    println!("NAT simulator, {seconds} s per T (all T in parallel), rates extrapolated to 1 h;");
    println!("steady = second half of the run only. Server interval 30 s, pong timeout 1 s.\n");
    let handles: Vec<_> = ts.iter().map(|&t| std::thread::spawn(move || run_t(t, seconds))).collect();
    let rows: Vec<Row> = handles.into_iter().flat_map(|h| h.join().expect("bench thread")).collect();
    println!("| NAT T | channel | interval at end | keep-alives / h (acked) | lost / h | lost / h (steady) | INTERVAL_CHANGED | probe resets |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {:.0} s | {} | {:.2} s ({:.2} T) | {:.0} ({:.0}) | {:.0} | {:.0} | {} | {} |",
            r.t_ms as f64 / 1000.0,
            r.name,
            r.interval_ms as f64 / 1000.0,
            r.interval_ms as f64 / r.t_ms as f64,
            r.ka_per_h,
            r.acked_per_h,
            r.lost_per_h,
            r.steady_lost_per_h,
            r.moves,
            r.probe_resets
        );
    }
}
