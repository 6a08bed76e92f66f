//! ctrlchan demo.
//!
//!     cargo run --release --example demo                 # embedded loopback server, 300 channels
//!     cargo run --release --example demo -- ws://HOST/PATH [--interval-ms 30000] [--seconds 60]
//!
//! Without a URL it starts an embedded WebSocket server on 127.0.0.1, opens a few hundred control
//! channels on ONE runtime thread, and prints a line per second: channels up, keep-alives sent and
//! acknowledged, median RTT, push notifications received, reactor wake-ups per second. Halfway it
//! blackholes some connections (the server stops answering, like a dead NAT mapping) and you watch
//! the pong timeout detect every one of them.
//!
//! It also writes an SVG timeline of the run (channels up, keep-alives, pushes, reactor
//! wake-ups, and when each blackholed channel was detected) and says where (`--svg PATH`,
//! default `target/demo-timeline.svg`).
//!
//! With a URL it keeps that server's channel alive and prints every event.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrlchan::{
    Channel, Event, EventKind, KeepAlive, KeepAliveMode, ResourceType, Runtime, Status, WebSocket, WebSocketKind,
};
use tungstenite::Message;

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    pushes: AtomicU64,
    acked: AtomicU64,
    lost: AtomicU64,
    lost_reasons: Mutex<Vec<String>>,
    /// When each loss was detected.
    lost_at: Mutex<Vec<Instant>>,
}

/// One second of the run, for the timeline.
struct Sample {
    up: u64,
    acked: u64,
    pushes: u64,
    wakeups: u64,
}

/// The embedded server: one thread per connection (it is only a demo peer). Connections whose
/// index is in `blackholed` stop reading and writing: to the client, the network went dark.
struct DemoServer {
    port: u16,
    blackholed: Arc<Mutex<HashSet<usize>>>,
    stop: Arc<AtomicBool>,
}

fn start_server() -> std::io::Result<DemoServer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let blackholed = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (bh, st) = (blackholed.clone(), stop.clone());
    std::thread::spawn(move || {
        let next = AtomicUsize::new(0);
        for stream in listener.incoming() {
            if st.load(Ordering::Relaxed) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let idx = next.fetch_add(1, Ordering::Relaxed);
            let (bh, st) = (bh.clone(), st.clone());
            let _ = std::thread::Builder::new().stack_size(128 * 1024).spawn(move || serve(stream, idx, bh, st));
        }
    });
    Ok(DemoServer { port, blackholed, stop })
}

fn serve(stream: TcpStream, idx: usize, blackholed: Arc<Mutex<HashSet<usize>>>, stop: Arc<AtomicBool>) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let Ok(mut ws) = tungstenite::accept(stream) else { return };
    let mut last_push = Instant::now();
    let mut n = 0u64;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(3600) {
        if blackholed.lock().map(|b| b.contains(&idx)).unwrap_or(false) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        // A push notification every ~3 s per channel ("you have mail").
        if last_push.elapsed() >= Duration::from_millis(3000 + (idx as u64 % 7) * 100) {
            n += 1;
            if ws.send(Message::text(format!("news #{n} for channel {idx}"))).is_err() {
                return;
            }
            last_push = Instant::now();
        }
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        let _ = ws.flush();
    }
}

fn handler(c: Arc<Counters>) -> ctrlchan::Handler {
    Arc::new(move |ev: &Event| match ev.kind {
        EventKind::Connected => {
            c.connected.fetch_add(1, Ordering::Relaxed);
        }
        EventKind::PushNotification => {
            c.pushes.fetch_add(1, Ordering::Relaxed);
        }
        EventKind::Keepalive => {
            c.acked.fetch_add(1, Ordering::Relaxed);
        }
        EventKind::TransportDisconnected | EventKind::Closed => {
            c.lost.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut t) = c.lost_at.lock() {
                t.push(Instant::now());
            }
            if let Ok(mut r) = c.lost_reasons.lock() {
                r.push(format!("{}: {}", ev.channel_id_cstr().to_string_lossy(), ev.reason()));
            }
        }
        _ => {}
    })
}

fn median(v: &mut [u64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    v[v.len() / 2] as f64 / 1000.0
}

fn embedded(channels: usize, seconds: u64, svg: &str) -> Result<(), Box<dyn std::error::Error>> {
    let server = start_server()?;
    let rt = Runtime::new()?;
    let counters = Arc::new(Counters::default());
    let task = KeepAlive::new();
    task.set_mode(KeepAliveMode::Ping);
    task.set_pong_timeout_ms(1000)?;
    let interval_ms = 1000;
    let uri = format!("ws://127.0.0.1:{}/feed", server.port);
    println!("ctrlchan {} demo: {channels} channels to an embedded server at {uri}", ctrlchan::VERSION);
    println!("keep-alive: PING every {interval_ms} ms, pong timeout 1000 ms; all on one runtime thread\n");
    let mut pairs = Vec::with_capacity(channels);
    let t0 = Instant::now();
    for i in 0..channels {
        let ws = WebSocket::new(&rt, WebSocketKind::Message)?;
        let ch = Channel::new(&rt, &format!("channel-{i}"), interval_ms, ResourceType::RequestSoftwareSlot)?;
        ch.set_keepalive(Some(task.clone()))?;
        ch.set_handler(Some(handler(counters.clone())))?;
        ch.using_transport(&ws)?;
        ws.connect_async(&uri, 10_000)?;
        pairs.push((ws, ch));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while counters.connected.load(Ordering::Relaxed) < channels as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut enabled = 0;
    for (_, ch) in &pairs {
        if ch.wait_for_push_enabled()? == Status::SoftwareSlotAllocated {
            enabled += 1;
        }
    }
    println!("{enabled}/{channels} channels push-enabled in {:.0} ms\n", t0.elapsed().as_secs_f64() * 1000.0);
    println!(
        "{:>4}  {:>8}  {:>9}  {:>9}  {:>10}  {:>7}  {:>10}  {:>7}",
        "t/s", "up", "ka sent", "ka acked", "median RTT", "pushes", "wake-ups/s", "lost"
    );
    let blackhole_at = seconds / 2;
    let victims = (channels / 10).max(1);
    let mut last = rt.stats();
    let run_start = Instant::now();
    let mut blackholed_at = None;
    let mut samples = Vec::new();
    for t in 1..=seconds {
        std::thread::sleep(Duration::from_secs(1));
        if t == blackhole_at {
            if let Ok(mut b) = server.blackholed.lock() {
                b.extend((0..victims).map(|i| i * 7 % channels));
            }
            blackholed_at = Some(run_start.elapsed());
            println!("      -- blackholing {victims} connections: the server stops answering them --");
        }
        let s = rt.stats();
        // Acknowledged keep-alives are not events (quiet channels): RTTs come from the stats.
        let mut rtts: Vec<u64> =
            pairs.iter().map(|(_, ch)| ch.statistics().last_rtt_us as u64).filter(|r| *r > 0).collect();
        samples.push(Sample {
            up: s.connections_open,
            acked: s.keepalives_acked - last.keepalives_acked,
            pushes: counters.pushes.load(Ordering::Relaxed),
            wakeups: s.wakeups - last.wakeups,
        });
        println!(
            "{t:>4}  {:>8}  {:>9}  {:>9}  {:>7.2} ms  {:>7}  {:>10}  {:>7}",
            s.connections_open,
            s.keepalives_sent,
            s.keepalives_acked,
            median(&mut rtts),
            counters.pushes.load(Ordering::Relaxed),
            s.wakeups - last.wakeups,
            counters.lost.load(Ordering::Relaxed),
        );
        last = s;
    }
    let lost = counters.lost.load(Ordering::Relaxed);
    println!("\nblackholed {victims}, detected {lost} (each within interval + pong timeout):");
    if let Ok(r) = counters.lost_reasons.lock() {
        for line in r.iter().take(3) {
            println!("  {line}");
        }
        if r.len() > 3 {
            println!("  ... and {} more", r.len() - 3);
        }
    }
    let detected: Vec<f64> = counters
        .lost_at
        .lock()
        .map(|v| v.iter().map(|t| t.duration_since(run_start).as_secs_f64()).collect())
        .unwrap_or_default();
    match write_timeline(svg, channels, &samples, blackholed_at.map(|d| d.as_secs_f64()), &detected) {
        Ok(()) => println!("\ntimeline written to {svg}"),
        Err(e) => println!("\ncould not write the timeline to {svg}: {e}"),
    }
    server.stop.store(true, Ordering::Relaxed);
    drop(pairs);
    rt.shutdown()?;
    Ok(())
}

/// A hand-written SVG: three panels over the run's seconds (channels up with the detections as
/// dots; keep-alives acknowledged and pushes per second; reactor wake-ups per second) and a line
/// where the blackhole began.
fn write_timeline(
    path: &str,
    channels: usize,
    s: &[Sample],
    hole: Option<f64>,
    detected: &[f64],
) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let (w, left, right, panel, gap, top) = (900.0f64, 70.0, 20.0, 110.0, 40.0, 56.0);
    let n = s.len().max(1) as f64;
    let x = |t: f64| left + (w - left - right) * t / n;
    let mut out = String::new();
    let h = top + 3.0 * panel + 3.0 * gap;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        out,
        r##"<rect width="100%" height="100%" fill="#fff"/><text x="{left}" y="22" font-size="15">ctrlchan demo: {channels} channels on one runtime thread</text>"##
    );
    let pushes_per_s: Vec<u64> =
        s.iter().enumerate().map(|(i, v)| v.pushes - if i > 0 { s[i - 1].pushes } else { 0 }).collect();
    let rows: [(&str, Vec<f64>, &str); 3] = [
        ("channels up", s.iter().map(|v| v.up as f64).collect(), "#2b6cb0"),
        ("keep-alives acked/s (bars), pushes/s (line)", s.iter().map(|v| v.acked as f64).collect(), "#38a169"),
        ("reactor wake-ups/s", s.iter().map(|v| v.wakeups as f64).collect(), "#805ad5"),
    ];
    for (k, (label, vals, color)) in rows.iter().enumerate() {
        let y0 = top + k as f64 * (panel + gap);
        let max = vals.iter().cloned().fold(1.0, f64::max).max(if k == 0 { channels as f64 } else { 1.0 });
        let y = |v: f64| y0 + panel - panel * v / max;
        let _ = write!(out, r##"<text x="{left}" y="{}" fill="#333">{label}</text>"##, y0 - 6.0);
        let _ = write!(
            out,
            r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#999"/>"##,
            y0 + panel,
            w - right,
            y0 + panel
        );
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#666">{max:.0}</text>"##,
            left - 6.0,
            y0 + 10.0
        );
        if k == 1 {
            let bw = (w - left - right) / n * 0.6;
            for (i, v) in vals.iter().enumerate() {
                let _ = write!(
                    out,
                    r#"<rect x="{:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{color}" opacity="0.6"/>"#,
                    x(i as f64) + 2.0,
                    y(*v),
                    y0 + panel - y(*v)
                );
            }
            let pmax = pushes_per_s.iter().copied().max().unwrap_or(0).max(1) as f64;
            let pts: Vec<String> = pushes_per_s
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{:.1},{:.1}", x(i as f64 + 0.5), y0 + panel - panel * *p as f64 / pmax))
                .collect();
            let _ = write!(
                out,
                r##"<polyline points="{}" fill="none" stroke="#dd6b20" stroke-width="2"/>"##,
                pts.join(" ")
            );
        } else {
            let pts: Vec<String> =
                vals.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i as f64 + 1.0), y(*v))).collect();
            let _ =
                write!(out, r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#, pts.join(" "));
        }
        if k == 0 {
            for d in detected {
                let _ =
                    write!(out, r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#e53e3e"/>"##, x(*d), y0 + panel - 4.0);
            }
        }
    }
    if let Some(t) = hole {
        let _ = write!(
            out,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1:.1}" stroke="#e53e3e" stroke-dasharray="4 3"/>"##,
            x(t),
            top + 3.0 * panel + 2.0 * gap
        );
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#e53e3e">blackhole: {} detections (red dots)</text>"##,
            x(t) + 4.0,
            top + 12.0,
            detected.len()
        );
    }
    for i in 0..=s.len() {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">{i}</text>"##,
            x(i as f64),
            h - 14.0
        );
    }
    let _ = write!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">seconds</text></svg>"##,
        (w + left) / 2.0,
        h - 1.0
    );
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(path, out)
}

fn remote(url: &str, interval_ms: u32, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new()?;
    let ws = WebSocket::new(&rt, WebSocketKind::Message)?;
    let ch = Channel::new(&rt, "demo", interval_ms, ResourceType::RequestHardwareSlot)?;
    ch.using_transport(&ws)?;
    println!("connecting to {url} ...");
    ws.connect(url, 10_000)?;
    let status = ch.wait_for_push_enabled()?;
    println!("connected (subprotocol '{}'), status {status:?}; keep-alive every {interval_ms} ms", ws.protocol());
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        match rt.next_event(Duration::from_millis(500)) {
            Ok(ev) => match ev.kind {
                EventKind::PushNotification => {
                    println!(
                        "push: {} bytes: {}",
                        ev.data.len(),
                        String::from_utf8_lossy(&ev.data[..ev.data.len().min(120)])
                    )
                }
                EventKind::Keepalive => println!("keep-alive acknowledged, rtt {:.2} ms", ev.rtt_us as f64 / 1000.0),
                EventKind::Closed => {
                    println!("closed by server: {} {}", ev.close_code, ev.reason());
                    break;
                }
                EventKind::TransportDisconnected => {
                    println!("transport lost: {}", ev.reason());
                    break;
                }
                other => println!("{other:?}"),
            },
            Err(e) if e.code == ctrlchan::ResultCode::Timeout => {}
            Err(e) => return Err(e.into()),
        }
    }
    let _ = ws.close(1000, "demo done");
    std::thread::sleep(Duration::from_millis(300));
    println!("stats: {:?}", ws.stats());
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut url = None;
    let mut interval_ms = 30_000u32;
    let mut seconds = None;
    let mut channels = 300usize;
    let mut svg = "target/demo-timeline.svg".to_string();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--interval-ms" => {
                interval_ms = val.parse().unwrap_or(interval_ms);
                i += 1;
            }
            "--seconds" => {
                seconds = val.parse().ok();
                i += 1;
            }
            "--channels" => {
                channels = val.parse().unwrap_or(channels);
                i += 1;
            }
            "--svg" => {
                svg = val;
                i += 1;
            }
            "-h" | "--help" => {
                println!(
                    "usage: demo [ws://host/path | wss://host/path] [--interval-ms N] [--seconds N] [--channels N] [--svg PATH]"
                );
                return;
            }
            other => url = Some(other.to_string()),
        }
        i += 1;
    }
    let r = match url {
        Some(u) => remote(&u, interval_ms, seconds.unwrap_or(3600)),
        None => embedded(channels.max(1), seconds.unwrap_or(12).max(4), &svg),
    };
    if let Err(e) = r {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}
