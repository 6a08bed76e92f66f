//! Benchmark: N channels on one runtime against a loopback server, keep-alive every interval.
//! Prints connect time, RSS per idle channel, CPU per keep-alive round trip and wake-ups per second,
//! then runs the same workload with a python-websockets client as the reference.
//!
//!     cargo run --release --example bench -- [--channels 1000,10000] [--interval-ms 1000]
//!                                            [--seconds 10] [--no-python] [--wss]
//!
//! `--wss`: each count runs over `ws://` and then `wss://` (a second server with a throw-away CA
//! from tests/peer/make_certs.py), so both RSS figures come from the same run. Each of the two
//! runs is a fresh process (`--only ws|wss` on this program), so neither reuses the other's
//! freed heap.
//!
//! Everything goes through the C ABI (the product), with a per-channel event callback.

use std::ffi::{c_void, CString};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ctrlchan::ffi::channel::*;
use ctrlchan::ffi::event::*;
use ctrlchan::ffi::runtime::*;
use ctrlchan::ffi::websocket::*;
use ctrlchan::ffi::{ResourceTypeArg, WebSocketKindArg};
use ctrlchan::{EventKind, ResultCode, RuntimeStats, Status};

static CONNECTED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static ACKED: AtomicU64 = AtomicU64::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn on_event(_ud: *mut c_void, ev: *const ctrlchan_event) {
    match ctrlchan_event_get_kind(ev) {
        EventKind::Connected => CONNECTED.fetch_add(1, Ordering::Relaxed),
        EventKind::ConnectFailed => FAILED.fetch_add(1, Ordering::Relaxed),
        EventKind::Keepalive => ACKED.fetch_add(1, Ordering::Relaxed),
        EventKind::TransportDisconnected | EventKind::Closed => LOST.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4
}

/// (user, system) CPU seconds of this process.
fn cpu_split() -> (f64, f64) {
    // SAFETY: getrusage writes into a zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

#[allow(dead_code)]
fn cpu_s() -> f64 {
    let (u, s) = cpu_split();
    u + s
}

fn raise_nofile() {
    // SAFETY: plain rlimit syscalls on a struct we own.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    if std::path::Path::new(venv).exists() {
        venv.to_string()
    } else {
        "python3".to_string()
    }
}

struct Server(Child, u16);

fn start_server(tls: Option<&std::path::Path>) -> Option<Server> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/server.py");
    let mut cmd = Command::new(python());
    cmd.arg(script);
    if let Some(dir) = tls {
        cmd.arg("--tls-cert").arg(dir.join("server-cert.pem")).arg("--tls-key").arg(dir.join("server-key.pem"));
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().ok()?;
    let out = child.stdout.take()?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).ok()?;
    let port = line.trim().strip_prefix("PORT ")?.parse().ok()?;
    Some(Server(child, port))
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn check(r: ResultCode, what: &str) {
    if r != ResultCode::Ok {
        let msg = unsafe { std::ffi::CStr::from_ptr(ctrlchan::ffi::ctrlchan_last_error()) };
        panic!("{what}: {r:?} {}", msg.to_string_lossy());
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("timed out waiting for {what}");
    false
}

/// A throw-away CA and localhost certificate for the wss:// server; returns the directory.
fn make_certs() -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("ctrlchan-bench-{}", std::process::id()));
    let st = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/make_certs.py"))
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    st.success().then_some(dir)
}

fn run(port: u16, n: usize, interval_ms: u32, seconds: u64, ca: Option<&[u8]>) {
    CONNECTED.store(0, Ordering::SeqCst);
    FAILED.store(0, Ordering::SeqCst);
    ACKED.store(0, Ordering::SeqCst);
    LOST.store(0, Ordering::SeqCst);
    let mut rt: *mut ctrlchan_runtime = std::ptr::null_mut();
    check(ctrlchan_runtime_new(&mut rt), "runtime_new");
    let scheme = if ca.is_some() { "wss://localhost" } else { "ws://127.0.0.1" };
    let uri = CString::new(format!("{scheme}:{port}/")).unwrap_or_default();
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let mut chans = Vec::with_capacity(n);
    let mut socks = Vec::with_capacity(n);
    for i in 0..n {
        let mut ws: *mut ctrlchan_websocket = std::ptr::null_mut();
        let mut ch: *mut ctrlchan_channel = std::ptr::null_mut();
        check(ctrlchan_websocket_new(rt, WebSocketKindArg(0), &mut ws), "websocket_new");
        if let Some(pem) = ca {
            check(ctrlchan_websocket_add_trusted_ca_pem(ws, pem.as_ptr(), pem.len()), "trusted_ca");
        }
        let id = CString::new(format!("bench-{i}")).unwrap_or_default();
        check(ctrlchan_channel_new(rt, id.as_ptr(), interval_ms, ResourceTypeArg(0), &mut ch), "channel_new");
        check(ctrlchan_channel_set_event_handler(ch, Some(on_event), std::ptr::null_mut(), None), "handler");
        check(ctrlchan_channel_using_transport(ch, ws), "using_transport");
        check(ctrlchan_websocket_connect_async(ws, uri.as_ptr(), 30_000), "connect_async");
        chans.push(ch);
        socks.push(ws);
        // Keep the server's accept backlog from overflowing.
        if i % 500 == 499 {
            let target = (i + 1) as u64;
            wait_until("connect batch", Duration::from_secs(60), || {
                CONNECTED.load(Ordering::Relaxed) + FAILED.load(Ordering::Relaxed) >= target
            });
        }
    }
    wait_until("connections", Duration::from_secs(120), || {
        CONNECTED.load(Ordering::Relaxed) + FAILED.load(Ordering::Relaxed) >= n as u64
    });
    let connect_s = t0.elapsed().as_secs_f64();
    let failed = FAILED.load(Ordering::Relaxed);
    let mut allocated = 0;
    for &ch in &chans {
        let mut st = Status::TransportDisconnected;
        if ctrlchan_channel_wait_for_push_enabled(ch, &mut st) == ResultCode::Ok && st == Status::SoftwareSlotAllocated
        {
            allocated += 1;
        }
    }
    // One full round of keep-alives so every buffer that steady state needs exists.
    std::thread::sleep(Duration::from_millis(interval_ms as u64 + 500));
    let rss = rss_kib().saturating_sub(rss0);

    let mut s0 = RuntimeStats::default();
    check(ctrlchan_runtime_get_stats(rt, &mut s0), "stats");
    let (u0, a0, w0) = (cpu_split(), ACKED.load(Ordering::Relaxed), Instant::now());
    let c0 = u0.0 + u0.1;
    std::thread::sleep(Duration::from_secs(seconds));
    let (u1, a1, wall) = (cpu_split(), ACKED.load(Ordering::Relaxed), w0.elapsed().as_secs_f64());
    let c1 = u1.0 + u1.1;
    let mut s1 = RuntimeStats::default();
    check(ctrlchan_runtime_get_stats(rt, &mut s1), "stats");
    // KEEPALIVE events are off by default (quiet acks): count the runtime's acks instead.
    let acked = (a1 - a0).max(s1.keepalives_acked - s0.keepalives_acked);
    println!(
        "ctrlchan {:<4}      channels={n} connect_s={connect_s:.3} failed={failed} push_enabled={allocated} \
         rss_per_channel_kib={:.2} keepalives_acked={acked} ({:.0}/s) cpu_us_per_keepalive={:.2} (user {:.2} + sys {:.2}) \
         wakeups_per_s={:.1} lost={}",
        if ca.is_some() { "wss:" } else { "ws:" },
        rss as f64 / n as f64,
        acked as f64 / wall,
        (c1 - c0) * 1e6 / acked.max(1) as f64,
        (u1.0 - u0.0) * 1e6 / acked.max(1) as f64,
        (u1.1 - u0.1) * 1e6 / acked.max(1) as f64,
        (s1.wakeups - s0.wakeups) as f64 / wall,
        LOST.load(Ordering::Relaxed),
    );
    let _ = std::io::stdout().flush();
    for ch in chans {
        ctrlchan_channel_free(ch);
    }
    for ws in socks {
        ctrlchan_websocket_free(ws);
    }
    ctrlchan_runtime_free(rt);
}

fn main() {
    let mut counts = vec![1000usize];
    let mut interval_ms = 1000u32;
    let mut seconds = 10u64;
    let mut with_python = true;
    let mut with_wss = false;
    let mut only: Option<String> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--channels" => {
                counts = val.split(',').filter_map(|v| v.trim().parse().ok()).collect();
                i += 1;
            }
            "--interval-ms" => {
                interval_ms = val.parse().unwrap_or(1000);
                i += 1;
            }
            "--seconds" => {
                seconds = val.parse().unwrap_or(10);
                i += 1;
            }
            "--no-python" => with_python = false,
            "--wss" => with_wss = true,
            "--only" => {
                only = Some(val.clone());
                i += 1;
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    raise_nofile();
    let Some(server) = start_server(None) else {
        eprintln!("could not start bench/server.py (run scripts/setup-venv.sh for the websockets package)");
        std::process::exit(1);
    };
    if only.is_none() {
        println!(
        "# loopback server: python-websockets on port {}; keep-alive every {interval_ms} ms; {seconds} s steady state",
        server.1
    );
    }
    let certs = if with_wss && only.as_deref() != Some("ws") { make_certs() } else { None };
    let tls_server = certs.as_deref().and_then(|d| start_server(Some(d)));
    let ca = certs.as_ref().and_then(|d| std::fs::read(d.join("ca.pem")).ok());
    if certs.is_some() && (tls_server.is_none() || ca.is_none()) {
        eprintln!("could not start the wss:// server (tests/peer/make_certs.py needs trustme)");
        std::process::exit(1);
    }
    for &n in &counts {
        match (&only, &tls_server, &ca) {
            (Some(o), Some(s), Some(ca)) if o == "wss" => run(s.1, n, interval_ms, seconds, Some(ca)),
            (Some(_), ..) | (None, None, _) => run(server.1, n, interval_ms, seconds, None),
            (None, Some(_), _) => {
                for scheme in ["ws", "wss"] {
                    let st = Command::new(std::env::current_exe().unwrap_or_default())
                        .args(["--channels", &n.to_string(), "--interval-ms", &interval_ms.to_string()])
                        .args(["--seconds", &seconds.to_string(), "--no-python", "--wss", "--only", scheme])
                        .status();
                    if !matches!(st, Ok(s) if s.success()) {
                        eprintln!("the {scheme} run failed: {st:?}");
                    }
                }
            }
        }
    }
    drop(tls_server);
    if let Some(d) = certs {
        let _ = std::fs::remove_dir_all(d);
    }
    if with_python {
        let n = counts.first().copied().unwrap_or(1000);
        let status = Command::new(python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/py_client.py"))
            .args(["--url", &format!("ws://127.0.0.1:{}/", server.1)])
            .args(["--channels", &n.to_string()])
            .args(["--interval", &format!("{}", interval_ms as f64 / 1000.0)])
            .args(["--seconds", &seconds.to_string()])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("python-websockets reference client failed: {status:?}");
        }
    }
    drop(server);
}
