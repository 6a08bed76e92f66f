//! Keep-alive bookkeeping of one connection (outstanding pings, pong deadline, last outbound
//! traffic) and of the runtime (the multiset of coalescing windows in use).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::timing::{coalescing_window, keepalive_deadline, timer_at};
use crate::state::ChannelShared;
use crate::types::KeepAliveMode;

/// Outstanding keep-alive pings remembered per connection.
pub(crate) const MAX_OUTSTANDING: usize = 16;

/// One outstanding keep-alive ping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ping {
    seq: u64,
    sent: Instant,
    timeout_ms: u32,
    /// What it can prove for adaptive keep-alive (see [`IdleGap`]).
    pub gap: IdleGap,
}

/// How idle the connection was when a ping went out (adaptive keep-alive's evidence).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdleGap {
    /// Since the last byte in either direction: what an ack proves (the weakest claim, valid
    /// under a NAT that also refreshes its mapping on inbound traffic).
    pub any_ms: u32,
    /// Since the last byte we sent: what a silent death proves (RFC 4787 REQ-6).
    pub out_ms: u32,
    /// A network-change or resume probe (its death says nothing about the idle timeout).
    pub probe: bool,
}

fn ms_between(later: Instant, earlier: Instant) -> u32 {
    later.saturating_duration_since(earlier).as_millis().min(u32::MAX as u128) as u32
}

/// One connection's keep-alive state.
pub(crate) struct KeepAliveBook {
    /// The channel whose schedule this connection follows (None: keep-alives off).
    pub channel: Option<Arc<ChannelShared>>,
    /// Unanswered pings, oldest first.
    outstanding: VecDeque<Ping>,
    pub pong_deadline: Option<Instant>,
    pub last_outbound: Instant,
    /// When anything (data, pong, ping, close) last arrived: the peer's last sign of life.
    pub last_inbound: Instant,
}

impl KeepAliveBook {
    pub fn new(now: Instant) -> Self {
        KeepAliveBook {
            channel: None,
            outstanding: VecDeque::new(),
            pong_deadline: None,
            last_outbound: now,
            last_inbound: now,
        }
    }

    pub fn enable(&mut self, ch: Arc<ChannelShared>) {
        self.channel = Some(ch);
    }

    /// Keep-alives off and no liveness check pending.
    pub fn disable(&mut self) {
        self.channel = None;
        self.stop_liveness();
    }

    /// Forgets unanswered pings (the connection is closing: their pongs no longer matter).
    pub fn stop_liveness(&mut self) {
        self.outstanding.clear();
        self.pong_deadline = None;
    }

    /// A keep-alive ping went out. The oldest unanswered ping keeps its deadline: with the list
    /// full the newest is sent but not tracked, so the deadline never moves later.
    /// Call before `last_outbound` moves to `now`; `probe` marks network-change/resume probes.
    pub fn ping_sent(&mut self, seq: u64, now: Instant, pong_timeout_ms: u32, probe: bool) {
        if self.outstanding.len() < MAX_OUTSTANDING {
            let gap = IdleGap {
                any_ms: ms_between(now, self.last_outbound.max(self.last_inbound)),
                out_ms: ms_between(now, self.last_outbound),
                probe,
            };
            self.outstanding.push_back(Ping { seq, sent: now, timeout_ms: pong_timeout_ms, gap });
        }
        let due = now + Duration::from_millis(pong_timeout_ms as u64);
        self.pong_deadline = Some(self.pong_deadline.map_or(due, |d| d.min(due)));
    }

    /// A pong arrived. `Some((rtt, gap))` if it answers an outstanding ping (that ping and
    /// every older one are settled; `gap` is the answered ping's); `None` for unsolicited or
    /// unknown pongs.
    pub fn pong(&mut self, payload: &[u8]) -> Option<(Duration, IdleGap)> {
        let raw: [u8; 8] = payload.try_into().ok()?;
        let seq = u64::from_be_bytes(raw);
        let pos = self.outstanding.iter().position(|o| o.seq == seq)?;
        let ping = self.outstanding[pos];
        self.outstanding.drain(..=pos);
        self.pong_deadline = self.next_pong_deadline();
        Some((ping.sent.elapsed(), ping.gap))
    }

    fn next_pong_deadline(&self) -> Option<Instant> {
        self.outstanding.iter().map(|o| o.sent + Duration::from_millis(o.timeout_ms as u64)).min()
    }

    /// The idle gap of the oldest unanswered ping (the one whose pong timed out).
    pub fn oldest_gap(&self) -> Option<IdleGap> {
        self.outstanding.front().map(|o| o.gap)
    }

    /// Gives the outstanding pings a fresh deadline from `now` (after a pause in reading).
    pub fn restart_pong_deadline(&mut self, now: Instant) {
        for o in self.outstanding.iter_mut() {
            o.sent = now;
        }
        self.pong_deadline = self.next_pong_deadline();
    }

    /// Pong timeout of the oldest unanswered ping, in ms (0 if none).
    pub fn oldest_timeout_ms(&self) -> u32 {
        self.outstanding.front().map(|o| o.timeout_ms).unwrap_or(0)
    }

    /// The channel's interval while keep-alives run.
    pub fn interval(&self) -> Option<Duration> {
        self.channel.as_ref().map(|ch| ch.effective_interval())
    }

    /// When the next keep-alive is due, while keep-alives run: never later than an interval after
    /// the last outbound traffic, and in PING mode a probe an interval after the last inbound
    /// traffic unless one is already out (see `timing::keepalive_deadline`).
    pub fn keepalive_deadline(&self) -> Option<Instant> {
        self.interval().map(|i| keepalive_deadline(self.last_outbound, self.liveness_since(), i))
    }

    /// The last inbound traffic, when liveness needs a probe based on it: PING mode and no
    /// probe outstanding (its pong deadline already bounds detection).
    fn liveness_since(&self) -> Option<Instant> {
        let ch = self.channel.as_ref()?;
        let probing = self.pong_deadline.is_none() && ch.keepalive_task().mode() == KeepAliveMode::Ping;
        probing.then_some(self.last_inbound)
    }

    /// When to wake up for this connection's keep-alive work (pong deadline or next keep-alive).
    pub fn next_wakeup(&self) -> Option<Instant> {
        let ka = self.keepalive_deadline().map(timer_at);
        match (ka, self.pong_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The coalescing windows in use, as a multiset. A wake-up sweeps timers up to the smallest one,
/// so it never pops (and re-pushes) entries that cannot be sent early yet.
#[derive(Default)]
pub(crate) struct Windows {
    counts: BTreeMap<u64, usize>,
}

impl Windows {
    /// Moves one connection's entry from `*current` to the window its keep-alive state implies.
    pub fn sync(&mut self, current: &mut Option<u64>, book: Option<&KeepAliveBook>, global: Duration) {
        let want = book
            .and_then(KeepAliveBook::interval)
            .map(|i| coalescing_window(global, i).as_millis().min(u64::MAX as u128) as u64);
        if *current == want {
            return;
        }
        if let Some(old) = current.take() {
            if let Some(n) = self.counts.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&old);
                }
            }
        }
        if let Some(new) = want {
            *self.counts.entry(new).or_insert(0) += 1;
        }
        *current = want;
    }

    /// The smallest window in use (zero when none).
    pub fn smallest(&self) -> Duration {
        self.counts.keys().next().map_or(Duration::ZERO, |ms| Duration::from_millis(*ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pong_settles_its_ping_and_older_ones() {
        let now = Instant::now();
        let mut b = KeepAliveBook::new(now);
        b.ping_sent(1, now, 100, false);
        b.ping_sent(2, now + Duration::from_millis(50), 100, false);
        assert_eq!(b.pong_deadline, Some(now + Duration::from_millis(100)));
        assert!(b.pong(&9u64.to_be_bytes()).is_none());
        assert!(b.pong(b"short").is_none());
        assert!(b.pong(&2u64.to_be_bytes()).is_some());
        assert_eq!(b.pong_deadline, None);
        assert_eq!(b.oldest_timeout_ms(), 0);
    }

    #[test]
    fn deadline_never_moves_later_when_full() {
        let now = Instant::now();
        let mut b = KeepAliveBook::new(now);
        for i in 0..(MAX_OUTSTANDING as u64 + 5) {
            b.ping_sent(i, now + Duration::from_millis(i), 10, false);
        }
        assert_eq!(b.pong_deadline, Some(now + Duration::from_millis(10)));
    }

    #[test]
    fn liveness_probe_follows_inbound_while_no_ping_is_outstanding() {
        let now = Instant::now();
        let mut b = KeepAliveBook::new(now);
        assert_eq!(b.keepalive_deadline(), None, "keep-alives off");
        let pool = Arc::new(crate::state::channel::SlotPool {
            max: std::sync::atomic::AtomicU32::new(1),
            active: std::sync::atomic::AtomicU32::new(0),
        });
        let ch = ChannelShared::new("t", 1000, crate::types::ResourceType::RequestSoftwareSlot, pool);
        b.enable(ch.expect("channel"));
        let i = Duration::from_secs(1);
        b.last_outbound = now + Duration::from_millis(900);
        assert_eq!(b.keepalive_deadline(), Some(now + i), "silent peer: probe an interval after inbound");
        b.ping_sent(7, now + i, 500, false);
        b.last_outbound = now + i;
        assert_eq!(b.keepalive_deadline(), Some(now + i + i), "probe out: outbound rule only");
        b.last_inbound = now + Duration::from_millis(1200);
        assert!(b.pong(&7u64.to_be_bytes()).is_some());
        assert_eq!(b.keepalive_deadline(), Some(now + i + i));
    }

    #[test]
    fn pings_carry_their_idle_gaps() {
        let now = Instant::now();
        let mut b = KeepAliveBook::new(now);
        b.last_inbound = now + Duration::from_millis(300);
        let at = now + Duration::from_millis(1000);
        b.ping_sent(1, at, 100, false);
        b.last_outbound = at;
        b.ping_sent(2, at + Duration::from_millis(10), 100, true);
        assert_eq!(b.oldest_gap(), Some(IdleGap { any_ms: 700, out_ms: 1000, probe: false }));
        let (_, gap) = b.pong(&2u64.to_be_bytes()).expect("answers ping 2");
        assert_eq!(gap, IdleGap { any_ms: 10, out_ms: 10, probe: true });
        assert_eq!(b.oldest_gap(), None);
    }

    #[test]
    fn windows_multiset_tracks_smallest() {
        let mut w = Windows::default();
        assert_eq!(w.smallest(), Duration::ZERO);
        let mut a = None;
        let mut b = Some(400);
        w.counts.insert(400, 1);
        assert_eq!(w.smallest(), Duration::from_millis(400));
        w.sync(&mut b, None, Duration::from_secs(1));
        assert_eq!(b, None);
        assert_eq!(w.smallest(), Duration::ZERO);
        w.sync(&mut a, None, Duration::from_secs(1));
        assert_eq!(a, None);
    }
}
