//! The fault matrix (issue 13): every fault with sequence-numbered traffic checked at both ends
//! (nothing lost, nothing duplicated) and the loss detected within its bound.
//!
//! Transport faults (a reconnect policy is on; the channel must come back): RST, blackhole, hung
//! peer, server restart, proxy death. Data-plane faults (the messages before the fault arrive
//! exactly once, in order, then the connection fails with the right event): ping flood,
//! oversized frame, malformed frame, slow consumer (no loss under back-pressure), hostile
//! handshakes and TLS garbage (the connect fails with the right code, the runtime lives on).

mod net;

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctrlchan::{
    Channel, Event, EventKind, KeepAlive, ReconnectPolicy, ResourceType, ResultCode, Runtime, WebSocket, WebSocketKind,
};
use net::{EchoServer, FaultProxy, BLACKHOLE, DIE, PASS, RESET};

const INTERVAL_MS: u32 = 1000;
const PONG_TIMEOUT_MS: u32 = 500;

fn channel(rt: &Runtime, port: u16) -> (Arc<WebSocket>, Arc<Channel>) {
    let ws = WebSocket::new(rt, WebSocketKind::Message).expect("ws");
    let ch = Channel::new(rt, "fault", INTERVAL_MS, ResourceType::RequestSoftwareSlot).expect("channel");
    let ka = KeepAlive::new();
    ka.set_pong_timeout_ms(PONG_TIMEOUT_MS).expect("pong timeout");
    ch.set_keepalive(Some(ka)).expect("keepalive");
    ch.using_transport(&ws).expect("transport");
    ch.set_reconnect_policy(Some(ReconnectPolicy {
        initial_delay_ms: 100,
        max_delay_ms: 300,
        multiplier_percent: 150,
        jitter_percent: 0,
        max_attempts: 0,
    }))
    .expect("policy");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    ch.wait_for_push_enabled().expect("push enabled");
    (ws, ch)
}

/// The client side of the numbered traffic.
#[derive(Default)]
struct Traffic {
    next: u32,
    /// Sent and not echoed yet.
    outstanding: BTreeSet<u32>,
    /// Echoes, in arrival order.
    echoes: Vec<u32>,
    /// Outstanding when the loss was reported: the app resends these after the reset.
    in_doubt: BTreeSet<u32>,
    /// Echoes of sequence numbers already echoed (or never sent): (seq, echoes before it).
    dups: Vec<(u32, usize)>,
    /// In-doubt messages echoed twice (the library's backlog copy and the app's resend).
    resent_twice: BTreeSet<u32>,
}

impl Traffic {
    fn send(&mut self, ws: &WebSocket, seq: u32) {
        ws.send(seq.to_string().as_bytes()).expect("send");
        self.outstanding.insert(seq);
    }
    fn on_event(&mut self, ev: &Event) {
        if ev.kind == EventKind::PushNotification {
            let seq: u32 = std::str::from_utf8(&ev.data).expect("utf8").parse().expect("number");
            if self.echoes.contains(&seq) {
                // Only the app's own resend of a message in doubt may come back twice: the
                // library queued it too if it was sent after the loss and before RECONNECTING.
                if !self.in_doubt.contains(&seq) || self.resent_twice.contains(&seq) {
                    self.dups.push((seq, self.echoes.len()));
                }
                self.resent_twice.insert(seq);
                return;
            }
            if !self.outstanding.remove(&seq) {
                self.dups.push((seq, self.echoes.len()));
                return;
            }
            self.echoes.push(seq);
        }
    }
}

/// Sends a message every 20 ms, injects the fault at 1 s, expects the loss (RECONNECTING) within
/// `bound`, heals, waits for the RESET, resends what was in doubt, sends up to `total` and checks
/// both ends.
fn transport_fault(bound: Duration, fault: impl FnOnce(), heal: impl FnOnce(), srv: &EchoServer, port: u16) {
    let total = 120;
    let rt = Runtime::new().expect("runtime");
    let (ws, _ch) = channel(&rt, port);
    let mut t = Traffic { next: 1, ..Traffic::default() };
    let start = Instant::now();
    let mut fault = Some(fault);
    let mut heal = Some(heal);
    let mut faulted_at = None;
    let mut detected = None;
    let mut next_send = start;
    let end = start + Duration::from_secs(20);
    while Instant::now() < end {
        let now = Instant::now();
        if faulted_at.is_none() && now >= start + Duration::from_secs(1) {
            (fault.take().expect("once"))();
            faulted_at = Some(Instant::now());
        }
        if now >= next_send && t.next <= total {
            let seq = t.next;
            t.next += 1;
            t.send(&ws, seq);
            next_send += Duration::from_millis(20);
        }
        let Ok(ev) = rt.next_event(Duration::from_millis(5)) else { continue };
        if !ev.is_from(&ws) {
            continue;
        }
        t.on_event(&ev);
        match ev.kind {
            EventKind::Reconnecting if detected.is_none() => {
                let at = faulted_at.expect("loss reported before the fault");
                detected = Some(at.elapsed());
                // What was sent before the loss and not echoed may be lost: the app resends it.
                t.in_doubt = t.outstanding.clone();
                (heal.take().expect("once"))();
            }
            EventKind::Reset => {
                for &seq in &t.in_doubt.clone() {
                    if t.outstanding.contains(&seq) {
                        t.send(&ws, seq);
                    }
                }
            }
            EventKind::Closed | EventKind::TransportDisconnected => panic!("the channel gave up: {ev:?}"),
            _ => {}
        }
        if t.next > total && t.outstanding.is_empty() {
            break;
        }
    }
    let log = srv.log.lock().expect("log").clone();
    if !t.dups.is_empty() {
        let (seq, _) = t.dups[0];
        let at: Vec<_> = log.iter().filter(|(_, s)| *s == seq).collect();
        panic!(
            "duplicate echoes {:?}; server got {seq} as {at:?}; in doubt {:?}; echoes tail {:?}",
            t.dups,
            t.in_doubt,
            &t.echoes[t.echoes.len().saturating_sub(8)..]
        );
    }
    let took = detected.expect("the loss was never reported");
    assert!(took <= bound, "loss detected after {took:?}, bound {bound:?}");
    // Client: everything echoed exactly once (on_event asserts no duplicates).
    let want: BTreeSet<u32> = (1..=total).collect();
    assert_eq!(t.echoes.iter().copied().collect::<BTreeSet<_>>(), want, "lost: {:?}", t.outstanding);
    // Server: per connection in order without duplicates; a seq arrives twice only if the app
    // resent it (it was in doubt), and every seq arrived.
    let mut per_conn: HashMap<u64, Vec<u32>> = HashMap::new();
    for (c, s) in &log {
        per_conn.entry(*c).or_default().push(*s);
    }
    let mut seen: HashMap<u32, u32> = HashMap::new();
    for (c, seqs) in &per_conn {
        let firsts: Vec<u32> = seqs.iter().copied().filter(|s| !t.in_doubt.contains(s)).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "connection {c}: out of order or duplicated: {seqs:?}");
        for s in seqs {
            *seen.entry(*s).or_default() += 1;
        }
    }
    for s in 1..=total {
        let n = seen.get(&s).copied().unwrap_or(0);
        assert!(n >= 1, "server never got {s}");
        assert!(
            n == 1 || (n == 2 && t.in_doubt.contains(&s)),
            "server got {s} {n} times ({} resent)",
            t.in_doubt.len()
        );
    }
    eprintln!(
        "detected after {took:?}; {} in doubt (resent), {} of them twice",
        t.in_doubt.len(),
        t.resent_twice.len()
    );
}

fn silent_bound() -> Duration {
    // No inbound for interval + pong timeout, then the probe's pong timeout; plus slack.
    Duration::from_millis(u64::from(INTERVAL_MS + 2 * PONG_TIMEOUT_MS) + 500)
}

#[test]
fn rst() {
    let srv = EchoServer::start();
    let proxy = FaultProxy::start(srv.port);
    let p = proxy.mode.clone();
    let p2 = proxy.mode.clone();
    transport_fault(
        Duration::from_millis(300),
        move || p.store(RESET, Ordering::SeqCst),
        move || p2.store(PASS, Ordering::SeqCst),
        &srv,
        proxy.port,
    );
}

#[test]
fn blackhole() {
    let srv = EchoServer::start();
    let proxy = FaultProxy::start(srv.port);
    let (p, p2) = (proxy.mode.clone(), proxy.mode.clone());
    transport_fault(
        silent_bound(),
        move || p.store(BLACKHOLE, Ordering::SeqCst),
        move || p2.store(PASS, Ordering::SeqCst),
        &srv,
        proxy.port,
    );
}

#[test]
fn hung_peer() {
    let srv = EchoServer::start();
    let (h, h2) = (srv.hung.clone(), srv.hung.clone());
    let port = srv.port;
    transport_fault(
        silent_bound(),
        move || h.store(true, Ordering::SeqCst),
        move || h2.store(false, Ordering::SeqCst),
        &srv,
        port,
    );
}

#[test]
fn server_restart() {
    let srv = Arc::new(EchoServer::start());
    let (s1, s2, port) = (srv.clone(), srv.clone(), srv.port);
    transport_fault(
        Duration::from_millis(300),
        move || s1.kill(),
        move || {
            std::thread::sleep(Duration::from_millis(300));
            s2.restart();
        },
        &srv,
        port,
    );
}

#[test]
fn proxy_death() {
    let srv = EchoServer::start();
    let proxy = FaultProxy::start(srv.port);
    let (p, port, up) = (proxy.mode.clone(), proxy.port, srv.port);
    transport_fault(
        Duration::from_millis(300),
        move || p.store(DIE, Ordering::SeqCst),
        move || {
            // A new proxy on the same port: the channel's retries find it.
            std::thread::sleep(Duration::from_millis(200));
            std::mem::forget(FaultProxy::start_on(port, up));
        },
        &srv,
        port,
    );
}

mod data_plane;
