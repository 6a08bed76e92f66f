//! Benchmark client: ctrlchan, driven by `bench/driver.py` (run everything with `bench/run.sh`).
//!
//!     cargo run --release --example bench -- --url ws://127.0.0.1:PORT/ --channels 1000 \
//!         [--mode callback|queue] [--interval-ms 1000] [--warmup-ms 1500] [--window-ms 10000] \
//!         [--ca bench/certs/ca.pem] [--spread-ms 0] [--inflight 1000] [--ack-events 0|1]
//!
//! N channels on one runtime, each with its own websocket, keep-alive (PING, pong awaited) every
//! interval. `callback` mode counts events in a per-channel handler (run on the reactor thread);
//! `queue` mode sets no handler and drains the runtime's queue from one application thread.
//!
//! The driver protocol (shared by every client in bench/): print `READY`, read one line from stdin,
//! connect (at most `--inflight` handshakes at once; `--spread-ms` starts connection i at a random
//! time in [0, spread) instead, which gives random keep-alive phases), print `CONNECTED secs ok
//! failed`; after `--warmup-ms` print `MARK acks rtt_sum_us rtt_n reactor_wakeups app_events`, after
//! `--window-ms` more print it again, then wait for stdin to close and exit. The driver reads the
//! process's RSS, CPU time and context switches from /proc at each line.
//!
//! `CTRLCHAN_BENCH_HEAP=1` also prints, to stderr before connecting and at each MARK, glibc's heap
//! figures (mallinfo2: arena = heap obtained from the kernel, in use, free) and smaps_rollup's
//! anonymous vs file-backed RSS, per channel: fragmentation shows as arena minus in-use.
//! `CTRLCHAN_BENCH_HEAP=2` adds glibc's per-arena `malloc_stats` (the application's thread vs the
//! runtime thread); `CTRLCHAN_BENCH_SMAPS_DIR=DIR` copies /proc/self/smaps there at the same points
//! (which mappings grew: heap arenas, code pages).

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctrlchan::{Channel, Event, EventKind, ResourceType, Runtime, WebSocket, WebSocketKind};

static CONNECTED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static ACKED: AtomicU64 = AtomicU64::new(0);
static RTT_SUM: AtomicU64 = AtomicU64::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);
/// Events the application saw (callback invocations, or events popped from the queue).
static APP_EVENTS: AtomicU64 = AtomicU64::new(0);

fn count(ev: &Event) {
    APP_EVENTS.fetch_add(1, Ordering::Relaxed);
    match ev.kind {
        EventKind::Connected => {
            CONNECTED.fetch_add(1, Ordering::Relaxed);
        }
        EventKind::ConnectFailed => {
            FAILED.fetch_add(1, Ordering::Relaxed);
        }
        EventKind::Keepalive => {
            ACKED.fetch_add(1, Ordering::Relaxed);
            RTT_SUM.fetch_add(ev.rtt_us, Ordering::Relaxed);
        }
        EventKind::TransportDisconnected | EventKind::Closed => {
            LOST.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

struct Args {
    url: String,
    channels: usize,
    queue: bool,
    interval_ms: u32,
    warmup_ms: u64,
    window_ms: u64,
    ca: Option<String>,
    spread_ms: u64,
    inflight: u64,
    coalescing_ms: Option<u32>,
    pong_settle_ms: Option<u32>,
    /// Make every acknowledged keep-alive an event (the mask ALL), as before quiet channels.
    ack_events: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: String::new(),
        channels: 1000,
        queue: false,
        interval_ms: 1000,
        warmup_ms: 1500,
        window_ms: 10_000,
        ca: None,
        spread_ms: 0,
        inflight: 1000,
        coalescing_ms: None,
        pong_settle_ms: None,
        ack_events: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let key = v[i].as_str();
        let val = v.get(i + 1).cloned().unwrap_or_default();
        let num = |s: &str| s.parse::<u64>().unwrap_or_else(|_| die(&format!("{key}: not a number: {s}")));
        match key {
            "--url" => a.url = val,
            "--channels" => a.channels = num(&val) as usize,
            "--mode" => a.queue = val == "queue",
            "--interval-ms" => a.interval_ms = num(&val) as u32,
            "--warmup-ms" => a.warmup_ms = num(&val),
            "--window-ms" => a.window_ms = num(&val),
            "--ca" => a.ca = Some(val),
            "--spread-ms" => a.spread_ms = num(&val),
            "--inflight" => a.inflight = num(&val).max(1),
            "--coalescing-ms" => a.coalescing_ms = Some(num(&val) as u32),
            "--pong-settle-ms" => a.pong_settle_ms = Some(num(&val) as u32),
            "--ack-events" => {
                a.ack_events = val != "0";
            }
            other => die(&format!("unknown argument {other}")),
        }
        i += 2;
    }
    if a.url.is_empty() {
        die("--url is required");
    }
    a
}

fn die(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(2)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A small xorshift generator: random connect times without a dependency.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The heap and RSS breakdown of this process (`CTRLCHAN_BENCH_HEAP=1`), per channel, to stderr.
fn heap_report(tag: &str, n: usize) {
    let n = n.max(1) as f64;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and only reads the allocator's counters.
        let m = unsafe { libc::mallinfo2() };
        let arena = (m.arena + m.hblkhd) as f64;
        let used = (m.uordblks + m.hblkhd) as f64;
        eprintln!(
            "HEAP {tag} arena {:.0} in-use {:.0} free {:.0} (top {:.0}) B/ch, mmapped {} B",
            arena / n,
            used / n,
            m.fordblks as f64 / n,
            m.keepcost as f64 / n,
            m.hblkhd
        );
        if std::env::var_os("CTRLCHAN_BENCH_HEAP").is_some_and(|v| v == "2") {
            // SAFETY: prints the per-arena figures to stderr; no arguments.
            unsafe { libc::malloc_stats() };
        }
    }
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (rss, anon) = (field("Rss:"), field("Anonymous:"));
    eprintln!("SMAPS {tag} rss {:.2} anon {:.2} file {:.2} KiB/ch", rss / n, anon / n, (rss - anon) / n);
    if let Some(dir) = std::env::var_os("CTRLCHAN_BENCH_SMAPS_DIR") {
        let to = std::path::Path::new(&dir).join(format!("smaps.{}.{tag}", std::process::id()));
        let _ = std::fs::copy("/proc/self/smaps", to);
    }
}

fn main() {
    let a = parse_args();
    let heap = std::env::var_os("CTRLCHAN_BENCH_HEAP").is_some_and(|v| v != "0");
    let rt = Runtime::new().unwrap_or_else(|e| die(&format!("runtime: {e:?}")));
    if let Some(ms) = a.pong_settle_ms {
        rt.set_pong_settle(ms).unwrap_or_else(|e| die(&format!("pong settle: {e:?}")));
    }
    if let Some(ms) = a.coalescing_ms {
        rt.set_coalescing_window(ms).unwrap_or_else(|e| die(&format!("coalescing window: {e:?}")));
    }
    let pem = a.ca.as_ref().map(|p| std::fs::read(p).unwrap_or_else(|e| die(&format!("{p}: {e}"))));
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = a.queue.then(|| {
        let (rt, stop) = (rt.clone(), stop.clone());
        std::thread::Builder::new()
            .name("bench-consumer".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(ev) = rt.next_event(Duration::from_millis(200)) {
                        count(&ev);
                    }
                }
            })
            .unwrap_or_else(|e| die(&format!("consumer thread: {e}")))
    });
    let handler: ctrlchan::Handler = Arc::new(count);

    if heap {
        heap_report("ready", a.channels);
    }
    say("READY");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);

    // Connect start times: all at once (bounded in-flight), or spread at random over spread_ms.
    let mut starts: Vec<u64> = Vec::new();
    if a.spread_ms > 0 {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        starts = (0..a.channels).map(|_| xorshift(&mut seed) % (a.spread_ms * 1000)).collect();
        starts.sort_unstable();
    }
    let t0 = Instant::now();
    let mut chans = Vec::with_capacity(a.channels);
    let mut socks = Vec::with_capacity(a.channels);
    let give_up = t0 + Duration::from_secs(120) + Duration::from_millis(a.spread_ms);
    for i in 0..a.channels {
        if let Some(&us) = starts.get(i) {
            let at = t0 + Duration::from_micros(us);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
        }
        while (i as u64) - CONNECTED.load(Ordering::Relaxed) - FAILED.load(Ordering::Relaxed) >= a.inflight {
            if Instant::now() > give_up {
                die("connect: timed out");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let ws = WebSocket::new(&rt, WebSocketKind::Message).unwrap_or_else(|e| die(&format!("websocket: {e:?}")));
        if let Some(pem) = &pem {
            ws.add_trusted_ca_pem(pem).unwrap_or_else(|e| die(&format!("ca: {e:?}")));
        }
        let ch = Channel::new(&rt, &format!("bench-{i}"), a.interval_ms, ResourceType::RequestSoftwareSlot)
            .unwrap_or_else(|e| die(&format!("channel: {e:?}")));
        if a.ack_events {
            ch.set_event_mask(0xFFFF_FFFF).unwrap_or_else(|e| die(&format!("mask: {e:?}")));
        }
        if !a.queue {
            ch.set_handler(Some(handler.clone())).unwrap_or_else(|e| die(&format!("handler: {e:?}")));
        }
        ch.using_transport(&ws).unwrap_or_else(|e| die(&format!("using_transport: {e:?}")));
        ws.connect_async(&a.url, 30_000).unwrap_or_else(|e| die(&format!("connect_async: {e:?}")));
        chans.push(ch);
        socks.push(ws);
    }
    while CONNECTED.load(Ordering::Relaxed) + FAILED.load(Ordering::Relaxed) < a.channels as u64 {
        if Instant::now() > give_up {
            die("connect: timed out");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let connect_s = t0.elapsed().as_secs_f64();
    for ch in &chans {
        let _ = ch.wait_for_push_enabled();
    }
    say(&format!("CONNECTED {connect_s:.4} {} {}", CONNECTED.load(Ordering::Relaxed), FAILED.load(Ordering::Relaxed)));

    // Acknowledged keep-alives are not events by default (quiet channels): count them from the
    // runtime's counters, and take the RTT as the mean of the channels' smoothed RTTs
    // (`--ack-events` makes every acknowledgement an event again, as before the masks).
    let marks = std::cell::Cell::new(0u32);
    let mark = || {
        let s = rt.stats();
        marks.set(marks.get() + 1);
        let (rtt_sum, rtt_n) = if a.ack_events {
            (RTT_SUM.load(Ordering::Relaxed), ACKED.load(Ordering::Relaxed))
        } else if marks.get() == 1 {
            // The driver takes the difference of the two MARKs: with per-channel smoothed RTTs
            // (acks masked, no events) the first is zero, so the result is their mean at the end.
            (0, 0)
        } else {
            chans
                .iter()
                .map(|c| c.statistics().srtt_us as u64)
                .filter(|r| *r > 0)
                .fold((0, 0), |(s, n), r| (s + r, n + 1))
        };
        say(&format!(
            "MARK {} {} {} {} {}",
            s.keepalives_acked,
            rtt_sum,
            rtt_n,
            s.wakeups,
            APP_EVENTS.load(Ordering::Relaxed)
        ));
    };
    std::thread::sleep(Duration::from_millis(a.warmup_ms));
    mark();
    if heap {
        heap_report("warm", a.channels);
    }
    std::thread::sleep(Duration::from_millis(a.window_ms));
    mark();
    if heap {
        heap_report("end", a.channels);
    }
    if LOST.load(Ordering::Relaxed) > 0 {
        eprintln!("bench: {} transports lost during the run", LOST.load(Ordering::Relaxed));
    }
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
    stop.store(true, Ordering::Relaxed);
    for ws in socks {
        ws.release();
    }
    drop(chans);
    let _ = rt.shutdown();
    if let Some(t) = consumer {
        let _ = t.join();
    }
}
