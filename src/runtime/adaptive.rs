//! Adaptive keep-alive on the runtime thread: feeds each adaptive channel's learner
//! ([`crate::protocol::adaptive`]) with what its connection observed, applies the interval it
//! answers (network interval, timer, INTERVAL_CHANGED), and keeps the runtime's memory of learned
//! values with its state file (loaded on the caller's thread, saved by a writer thread).
//!
//! Test knob: the environment variable `CTRLCHAN_TEST_REPROBE_MS`, read when a channel's learner
//! is built, replaces the first re-probe delay (default 1 h) so that tests can watch a path's
//! timeout grow within a minute. Not for production use.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

use super::adaptive_io::{load_state_file, read_network_key, save_state_file};
use super::lifecycle::Conn;
use super::reactor::Reactor;
use super::schedule::IdleGap;
use crate::protocol::adaptive::netkey::host_key;
use crate::protocol::adaptive::store::Memory;
use crate::protocol::adaptive::tracker::Tracker;
use crate::protocol::adaptive::Outcome;
use crate::state::ChannelShared;
use crate::types::EventKind;

/// The state file is written at most this often (the last change is saved at runtime free).
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(10);
/// Warnings kept for [`AdaptiveShared::warnings`] (oldest dropped first).
const MAX_WARNINGS: usize = 64;
/// The test-only override of the first re-probe delay, in ms.
pub const REPROBE_ENV: &str = "CTRLCHAN_TEST_REPROBE_MS";

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The runtime's adaptive keep-alive memory and state file.
pub(crate) struct AdaptiveShared {
    memory: Mutex<Memory>,
    path: Mutex<Option<PathBuf>>,
    warnings: Mutex<Vec<String>>,
    /// The network key per address family (v4-first, v6-first), read once per network change.
    network: Mutex<[Option<Option<String>>; 2]>,
    epoch: Instant,
    mailbox: Arc<Mailbox>,
}

/// The one-slot mailbox of the writer thread.
#[derive(Default)]
struct Mailbox {
    state: Mutex<MailState>,
    cond: Condvar,
}

#[derive(Default)]
struct MailState {
    /// Memory changed since the last save.
    dirty: bool,
    stop: bool,
    writer: Option<JoinHandle<()>>,
}

impl AdaptiveShared {
    pub(crate) fn new() -> Arc<AdaptiveShared> {
        Arc::new(AdaptiveShared {
            memory: Mutex::new(Memory::new()),
            path: Mutex::new(None),
            warnings: Mutex::new(Vec::new()),
            network: Mutex::new([None, None]),
            epoch: Instant::now(),
            mailbox: Arc::new(Mailbox::default()),
        })
    }

    /// Records a warning (until the crate has a log facade, this is the log line: stderr plus
    /// the list `Runtime::adaptive_warnings` returns).
    pub(crate) fn warn(&self, w: String) {
        log::warn!(target: "ctrlchan", "adaptive keep-alive: {w}");
        let mut v = self.warnings.lock();
        if v.len() >= MAX_WARNINGS {
            v.remove(0);
        }
        v.push(w);
    }

    pub(crate) fn warnings(&self) -> Vec<String> {
        self.warnings.lock().clone()
    }

    /// Names the state file (None: memory only) and loads it at once. Entries already learned
    /// in this runtime win over the file's.
    pub(crate) fn set_state_file(&self, path: Option<PathBuf>) {
        if let Some(p) = &path {
            let (loaded, warnings) = load_state_file(p);
            for w in warnings {
                self.warn(format!("{w} (ignored; the file is rewritten on the next save)"));
            }
            let mut mem = self.memory.lock();
            for (net, host, e) in loaded.iter() {
                if mem.get(net, host).is_none() {
                    mem.put(net, host, e.remembered, e.updated_unix);
                }
            }
            if !mem.is_empty() {
                self.mailbox.state.lock().dirty = true;
            }
        }
        *self.path.lock() = path;
    }

    pub(crate) fn state_file(&self) -> Option<PathBuf> {
        self.path.lock().clone()
    }

    /// Milliseconds on the learner's monotonic clock.
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis().min(u64::MAX as u128) as u64
    }

    /// The current network key (cached until [`refresh_network`](Self::refresh_network)).
    fn network_key(&self, prefer_v6: bool) -> Option<String> {
        let mut cache = self.network.lock();
        cache[prefer_v6 as usize].get_or_insert_with(|| read_network_key(prefer_v6)).clone()
    }

    /// Reads the network key again (after a network change or resume); true if it changed.
    pub(crate) fn refresh_network(&self) -> bool {
        let mut cache = self.network.lock();
        let mut changed = false;
        for (i, slot) in cache.iter_mut().enumerate() {
            if let Some(old) = slot.as_ref() {
                let new = read_network_key(i == 1);
                changed |= *old != new;
                *slot = Some(new);
            }
        }
        changed
    }

    /// Files what `t` learned and schedules a save.
    pub(crate) fn remember(self: &Arc<Self>, t: &Tracker) {
        if !t.remember(&mut self.memory.lock(), unix_now()) {
            return;
        }
        if self.path.lock().is_none() {
            return;
        }
        let mut st = self.mailbox.state.lock();
        st.dirty = true;
        if st.writer.is_none() && !st.stop {
            let (weak, mailbox) = (Arc::downgrade(self), self.mailbox.clone());
            st.writer =
                std::thread::Builder::new().name("ctrlchan-state".into()).spawn(move || writer(weak, mailbox)).ok();
        }
        drop(st);
        self.mailbox.cond.notify_all();
    }

    /// Writes the file now if anything changed since the last save (on this thread).
    fn save_now(&self) {
        let Some(path) = self.path.lock().clone() else { return };
        {
            let mut st = self.mailbox.state.lock();
            if !st.dirty {
                return;
            }
            st.dirty = false;
        }
        let snapshot = self.memory.lock().clone();
        if let Err(e) = save_state_file(&path, &snapshot) {
            self.warn(format!("{}: cannot save: {e}", path.display()));
        }
    }

    /// Runtime free: stops the writer and saves the last changes synchronously.
    pub(crate) fn final_save(&self) {
        let writer = {
            let mut st = self.mailbox.state.lock();
            st.stop = true;
            st.writer.take()
        };
        self.mailbox.cond.notify_all();
        if let Some(w) = writer {
            let _ = w.join();
        }
        self.save_now();
    }
}

/// The writer thread: saves when the memory is dirty, at most every [`SAVE_EVERY`]; ends at
/// `stop` or when the runtime is gone.
fn writer(shared: Weak<AdaptiveShared>, mailbox: Arc<Mailbox>) {
    loop {
        {
            let mut st = mailbox.state.lock();
            while !st.dirty && !st.stop {
                if mailbox.cond.wait_for(&mut st, Duration::from_secs(1)).timed_out() && shared.strong_count() == 0 {
                    return;
                }
            }
            if st.stop {
                return;
            }
        }
        match shared.upgrade() {
            Some(s) => s.save_now(),
            None => return,
        }
        let until = Instant::now() + SAVE_EVERY;
        let mut st = mailbox.state.lock();
        while !st.stop && Instant::now() < until {
            let _ = mailbox.cond.wait_until(&mut st, until);
        }
    }
}

/// The first re-probe delay tests ask for (see the module doc).
fn reprobe_override() -> Option<u64> {
    std::env::var(REPROBE_ENV).ok()?.trim().parse().ok()
}

impl Reactor {
    /// Brings the learner of `c`'s channel up to date with the channel's settings (range,
    /// server interval, network, pending decreases), then feeds `input`. Every move is applied.
    fn adaptive_drive(&mut self, c: &mut Conn, input: impl FnOnce(&mut Tracker, u64) -> Outcome) {
        let Some(ch) = c.ws.channel() else { return };
        let Some(template) = c.template.as_ref() else { return };
        let mut a = ch.adaptive.lock();
        // Not adaptive: one lock and nothing else per pong.
        let Some((min, max)) = a.range else { return };
        let Ok(target) = crate::protocol::uri::parse_target(&template.uri) else { return };
        let host = host_key(&target.host, target.port);
        let prefer_v6 = target.host.parse::<std::net::Ipv6Addr>().is_ok();
        let shared = self.rt.adaptive.clone();
        let now_ms = shared.now_ms();
        let mut moves: Vec<u32> = Vec::new();
        let bounds = (min, max.min(ch.server_keepalive_interval_ms()).max(min));
        if a.tracker.as_ref().is_none_or(|t| t.host() != host) {
            let network = shared.network_key(prefer_v6);
            let mut t = Tracker::new(bounds.0, bounds.1, host, network, &shared.memory.lock());
            if let Some(ms) = reprobe_override() {
                t.learner.set_reprobe_first_ms(ms);
            }
            if t.learner.interval_ms() != ch.current_keepalive_interval_ms() {
                moves.push(t.learner.interval_ms());
            }
            a.tracker = Some(Box::new(t));
            a.bounds = bounds;
        }
        let pending = std::mem::take(&mut a.pending_decreases);
        let bounds_changed = a.bounds != bounds;
        a.bounds = bounds;
        let Some(t) = a.tracker.as_mut() else { return };
        let known = t.learner.remembered();
        let mut outs = Vec::new();
        if bounds_changed {
            outs.push(t.learner.set_bounds(bounds.0, bounds.1));
        }
        let network = shared.network_key(prefer_v6);
        outs.push(t.switch_network(network, &mut shared.memory.lock(), unix_now()));
        for _ in 0..pending.min(32) {
            outs.push(t.learner.on_decrease());
        }
        outs.push(input(t, now_ms));
        moves.extend(outs.iter().filter_map(Outcome::new_interval_ms));
        let interval = t.learner.interval_ms();
        // Acks can prove a longer gap without a move (settled at max): file that too.
        if !moves.is_empty() || t.learner.remembered() != known {
            shared.remember(t);
        }
        drop(a);
        ch.store_network_interval(interval);
        if moves.is_empty() {
            return;
        }
        c.rearm = true;
        self.announce(c, &ch, &moves);
    }

    /// INTERVAL_CHANGED for each move (outside every lock: a callback may call back in).
    fn announce(&mut self, c: &Conn, ch: &Arc<ChannelShared>, moves: &[u32]) {
        let server = ch.server_keepalive_interval_ms();
        for &ms in moves {
            self.rt.emit(&c.ws, EventKind::IntervalChanged, |ev| ev.interval_ms = ms.min(server));
        }
    }

    /// The channel's settings changed (or keep-alives start): apply them to the learner.
    pub(crate) fn adaptive_sync(&mut self, c: &mut Conn) {
        self.adaptive_drive(c, |_, _| Outcome::Unchanged);
    }

    /// A keep-alive ping was acknowledged.
    pub(crate) fn adaptive_ack(&mut self, c: &mut Conn, gap: IdleGap) {
        self.adaptive_drive(c, |t, now| t.learner.on_ack(gap.any_ms, now));
    }

    /// A keep-alive ping's pong timed out (before `finish`). Probes after a network change or
    /// resume prove nothing about the idle timeout and are not fed.
    pub(crate) fn adaptive_silent_death(&mut self, c: &mut Conn, gap: IdleGap) {
        if gap.probe {
            return;
        }
        self.adaptive_drive(c, |t, now| t.learner.on_silent_death(gap.out_ms, now));
    }
}
