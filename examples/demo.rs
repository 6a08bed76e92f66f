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
    rtts_us: Mutex<Vec<u64>>,
    lost_reasons: Mutex<Vec<String>>,
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
            if let Ok(mut r) = c.rtts_us.lock() {
                r.push(ev.rtt_us);
            }
        }
        EventKind::TransportDisconnected | EventKind::Closed => {
            c.lost.fetch_add(1, Ordering::Relaxed);
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

fn embedded(channels: usize, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
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
    for t in 1..=seconds {
        std::thread::sleep(Duration::from_secs(1));
        if t == blackhole_at {
            if let Ok(mut b) = server.blackholed.lock() {
                b.extend((0..victims).map(|i| i * 7 % channels));
            }
            println!("      -- blackholing {victims} connections: the server stops answering them --");
        }
        let s = rt.stats();
        let mut rtts = counters.rtts_us.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
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
    server.stop.store(true, Ordering::Relaxed);
    drop(pairs);
    rt.shutdown()?;
    Ok(())
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
            "-h" | "--help" => {
                println!(
                    "usage: demo [ws://host/path | wss://host/path] [--interval-ms N] [--seconds N] [--channels N]"
                );
                return;
            }
            other => url = Some(other.to_string()),
        }
        i += 1;
    }
    let r = match url {
        Some(u) => remote(&u, interval_ms, seconds.unwrap_or(3600)),
        None => embedded(channels.max(1), seconds.unwrap_or(12).max(4)),
    };
    if let Err(e) = r {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}
