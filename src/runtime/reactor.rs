//! The reactor: one thread, one epoll (mio), one timer heap, every socket of the runtime.
//!
//! The shape of mio's `tcp_server` example: a readiness event's token is a slot in the
//! connection table; the slot's handler runs; if the connection is done (its life is `Closed`)
//! the slot is freed — in one place, [`Reactor::put_back`]. Other threads never touch sockets:
//! they queue [`Cmd`]s and wake us.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::lifecycle::{Conn, Life};
use super::netwatch::{sleep_offset, NetWatch, SUSPEND_THRESHOLD};
use super::schedule::Windows;
use super::timers::Timers;
use super::{Cmd, RtShared};
use crate::protocol::reconnect::Jitter;
use crate::protocol::settle::Settle;
use crate::protocol::timing::{poll_timeout, GUARD};
use crate::state::WsShared;
use crate::types::ResetReason;

pub(crate) const WAKER: Token = Token(usize::MAX);
const NETWATCH: Token = Token(usize::MAX - 1);
/// Network notifications come in bursts: probe once, shortly after the first.
const PROBE_DEBOUNCE: Duration = Duration::from_millis(100);

pub(crate) struct Reactor {
    pub(super) rt: Arc<RtShared>,
    pub(super) poll: Poll,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    pub(super) serial: u64,
    timers: Timers,
    /// Connections whose read budget ran out: read again before sleeping.
    pub(super) again: Vec<usize>,
    pub(super) shutdown: bool,
    windows: Windows,
    /// Randomness for reconnect jitter.
    pub(super) jitter: Jitter,
    /// Connections left unread because the queue was full: (slot, serial).
    pub(super) paused: Vec<(usize, u64)>,
    netwatch: Option<NetWatch>,
    /// A network change was seen: probe every channel at this time.
    probe_at: Option<Instant>,
    /// The last sleep offset (CLOCK_BOOTTIME - CLOCK_MONOTONIC, plus injected sleep).
    sleep_offset: Duration,
    /// Masking keys of keep-alive frames: ChaCha12 seeded from the OS, one block per 16 keys.
    pub(super) masks: rand::rngs::StdRng,
    /// Pings the timers sent in this wake-up (a keep-alive burst: settle before listening).
    pub(super) burst_pings: u32,
    /// The pong settle after such a burst.
    pub(super) settle: Settle,
    /// At most `MAX_HANDSHAKES` connects at once; the rest queue (see `admission`).
    pub(super) gate: super::admission::Gate,
}

pub(crate) fn run(rt: Arc<RtShared>, poll: Poll) {
    let mut r = Reactor {
        rt,
        poll,
        conns: Vec::new(),
        free: Vec::new(),
        serial: 0,
        timers: Timers::new(),
        again: Vec::new(),
        shutdown: false,
        windows: Windows::default(),
        jitter: Jitter::new(seed()),
        paused: Vec::new(),
        netwatch: NetWatch::open(),
        probe_at: None,
        sleep_offset: Duration::ZERO,
        masks: rand::SeedableRng::from_rng(&mut rand::rng()),
        burst_pings: 0,
        settle: Settle::default(),
        gate: super::admission::Gate::new(super::admission::MAX_HANDSHAKES),
    };
    r.sleep_offset = r.current_sleep_offset();
    if let Some(nw) = &r.netwatch {
        let fd = nw.fd();
        let registered =
            r.poll.registry().register(&mut mio::unix::SourceFd(&fd), NETWATCH, mio::Interest::READABLE).is_ok();
        if !registered {
            r.netwatch = None;
        }
    }
    let mut events = Events::with_capacity(1024);
    loop {
        r.prune_stale_timers();
        let next = match (r.timers.next(), r.probe_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = if !r.again.is_empty() {
            Some(Duration::ZERO)
        } else if let Some(settle) = r.settle() {
            // The burst's pongs arrive meanwhile; one non-blocking poll takes them all. A timer
            // due earlier ends the sleep (keep-alives are never late).
            let until_timer = poll_timeout(next, Instant::now()).unwrap_or(settle);
            std::thread::sleep(settle.min(until_timer));
            Some(Duration::ZERO)
        } else {
            poll_timeout(next, Instant::now())
        };
        if let Err(e) = r.poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                // Should not happen; avoid a hot loop if it does.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        r.rt.counters.wakeups.fetch_add(1, Ordering::Relaxed);
        for ev in events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            if ev.token() == NETWATCH {
                if r.netwatch.as_ref().is_some_and(NetWatch::drain) && r.probe_at.is_none() {
                    r.probe_at = Some(Instant::now() + PROBE_DEBOUNCE);
                }
                continue;
            }
            let closed = ev.is_read_closed() || ev.is_error();
            let readable = ev.is_readable() || closed;
            let writable = ev.is_writable() || ev.is_error();
            r.ready(ev.token().0, readable, writable, closed);
        }
        r.commands();
        for idx in std::mem::take(&mut r.again) {
            r.ready(idx, true, false, false);
        }
        if r.rt.queue.take_resume() {
            r.resume_paused();
        }
        r.check_clock();
        if r.probe_at.is_some_and(|t| t <= Instant::now()) {
            r.probe_at = None;
            r.probe_all(ResetReason::NetworkChanged);
        }
        r.fire_timers();
        r.admit_queued();
        if r.shutdown {
            r.close_all();
            // No callback can run any more: close the queue (waking blocked next_event callers)
            // and release every handler now, even when the runtime was freed from a callback.
            r.rt.release_all();
            break;
        }
    }
}

/// A seed for the jitter PRNG: time and address, different per runtime and per run.
fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64);
    let local = 0u8;
    t.unwrap_or(0) ^ ((&local as *const u8 as u64).rotate_left(32)) ^ std::process::id() as u64
}

impl Reactor {
    // ---------------------------------------------------------------- probes and back-pressure

    fn current_sleep_offset(&self) -> Duration {
        sleep_offset() + Duration::from_millis(self.rt.injected_sleep_ms.load(Ordering::Acquire))
    }

    /// A jump of the sleep offset means the machine slept: probe every channel.
    fn check_clock(&mut self) {
        let now = self.current_sleep_offset();
        let jumped = now.saturating_sub(self.sleep_offset) >= SUSPEND_THRESHOLD;
        self.sleep_offset = now;
        if jumped {
            self.probe_all(ResetReason::LowPowerExit);
        }
    }

    /// Sends every channel's transport a keep-alive now; dead ones reconnect at once.
    fn probe_all(&mut self, reason: ResetReason) {
        log::info!(target: "ctrlchan", "{reason:?}: probing every channel now");
        self.adaptive_network_changed();
        for idx in 0..self.conns.len() {
            let bound = matches!(&self.conns[idx], Some(c) if c.ws.channel().is_some());
            if bound {
                self.with_slot(idx, |r, c, _| r.probe(c, reason));
            }
        }
    }

    /// Network change or resume: read the network key once; if it changed, every adaptive
    /// channel switches to what is learned for the new network (before the probe goes out).
    fn adaptive_network_changed(&mut self) {
        if !self.rt.adaptive.refresh_network() {
            return;
        }
        for idx in 0..self.conns.len() {
            self.with_slot(idx, |r, c, _| r.adaptive_sync(c));
        }
    }

    /// The queue drained below half: read the connections that were left unread. A pong that
    /// was outstanding gets a fresh deadline (we could not have seen it while paused).
    fn resume_paused(&mut self) {
        for (idx, serial) in std::mem::take(&mut self.paused) {
            self.with_slot(idx, |r, c, idx| {
                if c.serial != serial {
                    return;
                }
                c.paused = false;
                c.ka.restart_pong_deadline(Instant::now());
                c.rearm = true;
                r.read(c, idx);
            });
        }
    }

    /// How long to wait before listening again (see `Runtime::set_pong_settle` and
    /// `protocol::settle`): only after a burst of at least two timer pings, while most of its
    /// pongs are out. Data and commands arriving meanwhile wait at most the settle time.
    fn settle(&mut self) -> Option<Duration> {
        let pings = std::mem::take(&mut self.burst_pings);
        let ms = self.rt.pong_settle_ms.load(Ordering::Relaxed).min(super::MAX_PONG_SETTLE_MS) as u64;
        self.settle.burst(pings);
        self.settle.next_wait(Duration::from_millis(ms))
    }

    /// A keep-alive was acknowledged (its pong was read).
    pub(super) fn note_keepalive_ack(&mut self) {
        self.settle.acked();
    }

    // ---------------------------------------------------------------- slot table

    pub(super) fn alloc(&mut self) -> usize {
        if let Some(i) = self.free.pop() {
            i
        } else {
            self.conns.push(None);
            self.conns.len() - 1
        }
    }

    fn find(&self, ws: &Arc<WsShared>) -> Option<usize> {
        let (idx, serial) = ws.inner.lock().slot?;
        match self.conns.get(idx) {
            Some(Some(c)) if c.serial == serial && Arc::ptr_eq(&c.ws, ws) => Some(idx),
            _ => None,
        }
    }

    /// Puts a connection back into its slot after a handler ran — or frees the slot if the
    /// connection is done. The only place a slot is freed.
    pub(super) fn put_back(&mut self, idx: usize, mut c: Conn) {
        if c.life.is_closed() {
            self.sync_window(&mut c);
            self.free.push(idx);
            return;
        }
        self.arm(&mut c, idx);
        if let Some(s) = self.conns.get_mut(idx) {
            *s = Some(c);
        }
    }

    /// Runs `f` on the connection of `ws`, if it has one.
    fn with_ws(&mut self, ws: &Arc<WsShared>, f: impl FnOnce(&mut Self, &mut Conn, usize)) {
        if let Some(idx) = self.find(ws) {
            self.with_slot(idx, f);
        }
    }

    pub(super) fn with_slot(&mut self, idx: usize, f: impl FnOnce(&mut Self, &mut Conn, usize)) {
        let Some(Some(mut c)) = self.conns.get_mut(idx).map(Option::take) else { return };
        f(self, &mut c, idx);
        self.put_back(idx, c);
    }

    fn ready(&mut self, idx: usize, readable: bool, writable: bool, closed: bool) {
        self.with_slot(idx, |r, c, idx| {
            if readable {
                if let Some(s) = c.life.stream_mut() {
                    s.mark_readable(closed);
                }
            }
            match c.life {
                Life::Connecting { .. } => r.connect_ready(c, idx),
                Life::Tunneling { .. } => r.tunnel_ready(c, idx),
                Life::Handshaking { .. } => r.handshake_ready(c, idx),
                Life::Open { .. } | Life::Closing { .. } | Life::Lingering { .. } => {
                    if writable {
                        r.flush(c);
                    }
                    if readable && !c.life.is_closed() {
                        r.read(c, idx);
                    }
                }
                Life::Starting | Life::Waiting { .. } | Life::Queued { .. } | Life::Closed => {}
            }
        });
    }

    // ---------------------------------------------------------------- timers

    pub(super) fn global_window(&self) -> Duration {
        Duration::from_millis(self.rt.coalescing_ms.load(Ordering::Relaxed) as u64)
    }

    /// Keeps the coalescing-window multiset in step with the connection's keep-alive state.
    pub(super) fn sync_window(&mut self, c: &mut Conn) {
        let global = self.global_window();
        let book = matches!(c.life, Life::Open { .. }).then_some(&c.ka);
        self.windows.sync(&mut c.window_ms, book, global);
    }

    fn next_timer(c: &Conn) -> Option<Instant> {
        let ka = if matches!(c.life, Life::Open { .. }) { c.ka.next_wakeup() } else { c.ka.pong_deadline };
        match (c.life.deadline(), ka) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn arm(&mut self, c: &mut Conn, idx: usize) {
        self.sync_window(c);
        let rearm = std::mem::take(&mut c.rearm);
        if let Some(n) = Self::next_timer(c) {
            if rearm || c.scheduled.is_none_or(|s| n < s) {
                self.timers.push(n, idx, c.serial);
                c.scheduled = Some(n);
            }
        }
    }

    /// Drops heap-top entries that no longer match their connection, so that they cause no
    /// wake-up. Bounded by the number of stale entries.
    fn prune_stale_timers(&mut self) {
        while let Some((t, idx, serial)) = self.timers.peek() {
            let live = matches!(self.conns.get(idx), Some(Some(c)) if c.serial == serial && c.scheduled == Some(t));
            if live {
                break;
            }
            self.timers.pop_until(t);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let global = self.global_window();
        let horizon = now + self.windows.smallest().max(GUARD);
        let mut repush = Vec::new();
        while let Some((t, idx, serial)) = self.timers.pop_until(horizon) {
            let Some(Some(mut c)) = self.conns.get_mut(idx).map(Option::take) else { continue };
            if c.serial != serial || c.scheduled != Some(t) {
                self.conns[idx] = Some(c);
                continue;
            }
            c.scheduled = None;
            self.on_timer(&mut c, idx, now, global);
            if c.life.is_closed() {
                self.put_back(idx, c);
                continue;
            }
            self.sync_window(&mut c);
            if let Some(n) = Self::next_timer(&c) {
                c.scheduled = Some(n);
                repush.push((n, idx, c.serial));
            }
            self.conns[idx] = Some(c);
        }
        for (n, idx, serial) in repush {
            self.timers.push(n, idx, serial);
        }
    }

    // ---------------------------------------------------------------- commands

    fn commands(&mut self) {
        for cmd in self.rt.take_cmds() {
            match cmd {
                Cmd::Connect(ws, start) => self.start_connect(ws, start),
                Cmd::Service(ws) => {
                    if self.find(&ws).is_some() {
                        self.with_ws(&ws, |r, c, _| r.service(c));
                    } else {
                        let mut g = ws.inner.lock();
                        g.service_scheduled = false;
                        g.outbound.clear();
                    }
                }
                Cmd::Close(ws, code, reason) => self.with_ws(&ws, |r, c, _| r.start_close(c, code, &reason)),
                Cmd::Release(ws) => self.with_ws(&ws, |r, c, _| r.release(c)),
                Cmd::EnableKeepalive(ws, ch) => {
                    let bound = ws.channel().is_some_and(|b| Arc::ptr_eq(&b, &ch));
                    if !ch.is_closed() && bound {
                        self.with_ws(&ws, |r, c, _| {
                            if matches!(c.life, Life::Open { .. }) {
                                c.ka.enable(ch);
                                r.adaptive_sync(c);
                            }
                        });
                    }
                }
                Cmd::DisableKeepalive(ws) => self.with_ws(&ws, |_, c, _| c.ka.disable()),
                Cmd::RunKeepalive(ws, mode, to) => self.with_ws(&ws, |r, c, _| r.send_keepalive(c, mode, to)),
                Cmd::Reschedule(ws) => self.with_ws(&ws, |r, c, _| {
                    c.rearm = true;
                    r.adaptive_sync(c);
                }),
                Cmd::Deliver(ev) => self.rt.deliver(*ev),
                Cmd::CheckClock => self.check_clock(),
                Cmd::Shutdown => self.shutdown = true,
            }
        }
    }

    fn close_all(&mut self) {
        // Commands that raced with shutdown: release anyone waiting on them.
        for cmd in self.rt.take_cmds() {
            if let Cmd::Connect(ws, _) = cmd {
                super::lifecycle::force_closed(&ws, crate::error::Error::invalid_state("the runtime shut down"));
            }
        }
        for i in 0..self.conns.len() {
            let Some(mut c) = self.conns[i].take() else { continue };
            self.shut_down(&mut c);
        }
        self.conns.clear();
        self.free.clear();
    }
}
