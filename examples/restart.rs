//! Restart scenario of the benchmark (run it with `bench/restart.sh`): N channels with the default
//! reconnect policy to bench-server (tokio-tungstenite, not the bottleneck), the server killed and
//! started again on the same port; prints the time until every channel is back (RESET), the peak
//! reconnects per second, and the application's wake-ups per keep-alive while idle.
//!
//!     cargo run --release --example restart -- --server bench/server/target/release/bench-server \
//!         [--channels 10000] [--interval-ms 30000] [--down-ms 500] [--idle-ms 10000]
//!
//! The application reads the runtime queue from one thread (queue mode): every event it sees is a
//! wake-up of the app.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrlchan::{Channel, EventKind, ReconnectPolicy, ResourceType, Runtime, WebSocket, WebSocketKind};

fn die(m: &str) -> ! {
    eprintln!("restart: {m}");
    std::process::exit(1)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn start_server(exe: &str, port: u16) -> (Child, u16) {
    let mut child = Command::new(exe)
        .args(["--threads", "2", "--ws-port", &port.to_string(), "--cert", "bench/certs/server.pem"])
        .args(["--key", "bench/certs/server.key"])
        .stdin(Stdio::piped()) // the server exits when its stdin closes: kept open by `Child`
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| die(&format!("{exe}: {e}")));
    let out = child.stdout.take().unwrap_or_else(|| die("no server stdout"));
    let mut line = String::new();
    let _ = BufReader::new(out).read_line(&mut line);
    let port = line.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or_else(|| die(&line));
    (child, port)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let exe = arg(&args, "--server").unwrap_or_else(|| "bench/server/target/release/bench-server".into());
    let n: usize = arg(&args, "--channels").and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let interval: u32 = arg(&args, "--interval-ms").and_then(|v| v.parse().ok()).unwrap_or(30_000);
    let down = Duration::from_millis(arg(&args, "--down-ms").and_then(|v| v.parse().ok()).unwrap_or(500));
    let idle = Duration::from_millis(arg(&args, "--idle-ms").and_then(|v| v.parse().ok()).unwrap_or(10_000));

    let (mut server, port) = start_server(&exe, 0);
    let rt = Runtime::new().unwrap_or_else(|e| die(&format!("runtime: {e:?}")));
    let url = format!("ws://127.0.0.1:{port}/");
    let policy = ReconnectPolicy::default();
    let t0 = Instant::now();
    let mut chans = Vec::with_capacity(n);
    let mut socks = Vec::with_capacity(n);
    for i in 0..n {
        let ws = WebSocket::new(&rt, WebSocketKind::Message).unwrap_or_else(|e| die(&format!("ws: {e:?}")));
        let ch = Channel::new(&rt, &format!("r{i}"), interval, ResourceType::RequestSoftwareSlot)
            .unwrap_or_else(|e| die(&format!("channel: {e:?}")));
        ch.set_reconnect_policy(Some(policy)).unwrap_or_else(|e| die(&format!("policy: {e:?}")));
        ch.using_transport(&ws).unwrap_or_else(|e| die(&format!("using_transport: {e:?}")));
        ws.connect_async(&url, 30_000).unwrap_or_else(|e| die(&format!("connect: {e:?}")));
        chans.push(ch);
        socks.push(ws);
    }
    let mut connected = 0;
    while connected < n {
        match rt.next_event(Duration::from_secs(30)) {
            Ok(ev) if ev.kind == EventKind::Connected => connected += 1,
            Ok(ev) if ev.kind == EventKind::ConnectFailed => die(&format!("connect failed: {}", ev.reason())),
            Ok(_) => {}
            Err(e) => die(&format!("connect: {e:?}")),
        }
    }
    for ch in &chans {
        let _ = ch.wait_for_push_enabled();
    }
    println!("connected {n} channels in {:.2} s", t0.elapsed().as_secs_f64());

    // The consumer thread: counts RESET per 100 ms bucket from the first RECONNECTING.
    let buckets: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; 6000]));
    let (resets, reconnecting, app_events) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_loss: Arc<Mutex<Option<Instant>>> = Arc::default();
    let last_reset: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicU64::new(0));
    let consumer = {
        let (rt, buckets, resets, reconnecting, app_events, first_loss, last_reset, stop) = (
            rt.clone(),
            buckets.clone(),
            resets.clone(),
            reconnecting.clone(),
            app_events.clone(),
            first_loss.clone(),
            last_reset.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while stop.load(Ordering::Relaxed) == 0 {
                let Ok(ev) = rt.next_event(Duration::from_millis(100)) else { continue };
                app_events.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                match ev.kind {
                    EventKind::Reconnecting => {
                        reconnecting.fetch_add(1, Ordering::Relaxed);
                        let mut f = first_loss.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert(now);
                    }
                    EventKind::Reset => {
                        resets.fetch_add(1, Ordering::Relaxed);
                        *last_reset.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                        let start = first_loss.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(now);
                        let b = (now.duration_since(start).as_millis() / 100) as usize;
                        if let Some(slot) = buckets.lock().unwrap_or_else(|p| p.into_inner()).get_mut(b) {
                            *slot += 1;
                        }
                    }
                    _ => {}
                }
            }
        })
    };

    // Idle first: app wake-ups per keep-alive while nothing happens.
    let ka0 = rt.stats().keepalives_acked;
    let ev0 = app_events.load(Ordering::Relaxed);
    let wk0 = rt.stats().wakeups;
    std::thread::sleep(idle);
    let acked = rt.stats().keepalives_acked - ka0;
    let app = app_events.load(Ordering::Relaxed) - ev0;
    let reactor = rt.stats().wakeups - wk0;
    println!(
        "idle {:.0} s: {acked} keep-alives acknowledged, {app} app wake-ups ({:.4} per keep-alive), {:.1} reactor wake-ups/s",
        idle.as_secs_f64(),
        app as f64 / acked.max(1) as f64,
        reactor as f64 / idle.as_secs_f64()
    );

    // The restart.
    let _ = server.kill();
    let _ = server.wait();
    std::thread::sleep(down);
    let (mut server, _) = start_server(&exe, port);
    let deadline = Instant::now() + Duration::from_secs(180);
    while resets.load(Ordering::Relaxed) < n as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(1, Ordering::Relaxed);
    let _ = consumer.join();
    let back = resets.load(Ordering::Relaxed);
    let span = match (*first_loss.lock().unwrap_or_else(|p| p.into_inner()), *last_reset.lock().unwrap_or_else(|p| p.into_inner())) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => f64::NAN,
    };
    let peak = buckets.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().max().unwrap_or(0) * 10;
    let reconnects: u64 = chans.iter().map(|c| c.statistics().reconnects).sum();
    println!(
        "restart (server down {} ms): {back}/{n} channels back in {span:.2} s from the first loss, \
         peak {peak} reconnects/s (100 ms buckets), {} RECONNECTING events, {reconnects} reconnects in the stats",
        down.as_millis(),
        reconnecting.load(Ordering::Relaxed)
    );
    for ws in &socks {
        ws.release();
    }
    let _ = server.kill();
    let _ = server.wait();
    if back < n as u64 {
        std::process::exit(1);
    }
}
