//! Adaptive keep-alive: learn the longest idle period the path (NATs, proxies, load balancers)
//! tolerates, as a pure state machine. No clock, no socket: the runtime feeds it observations
//! with the current time in milliseconds and applies the interval it answers.
//!
//! # Inputs
//!
//! - [`Learner::on_ack`]`(idle_ms, now)`: a keep-alive was acknowledged; the connection had been
//!   idle (no byte in either direction) for `idle_ms` before it went out.
//! - [`Learner::on_silent_death`]`(idle_ms, now)`: a keep-alive sent after `idle_ms` of idleness
//!   was never answered (pong timeout, no RST/FIN): the path forgot the connection.
//! - [`Learner::on_decrease`]: the app called `decrease_network_keepalive_interval`.
//! - [`Learner::on_network_change`]: the default route changed; the learner starts over from what
//!   is remembered for the new network and server host ([`Remembered`]), or from `min`.
//! - [`Learner::set_bounds`]: `min`/`max` changed (`max` is already `min(max, server interval)`).
//!
//! Each returns an [`Outcome`]: unchanged, or the new interval and why.
//!
//! # Algorithm
//!
//! The learner keeps the current interval `I`, `good` (the longest idle gap that was
//! acknowledged) and `bad` (the shortest idle gap after which a connection died silently).
//!
//! 1. **Start** at `min` and search, or hold the remembered interval (with its remembered upper
//!    bound) as settled: a restart or a return to a known network costs no probe.
//! 2. **Run of successes.** An ack whose idle gap was at least [`ACCEPT_PERCENT`] of `I` is a
//!    success at `I` (shorter gaps, because the app sent data, say nothing about `I`). After
//!    [`SUCCESS_RUN`] successes in a row a longer interval is probed:
//!    - no failing gap known: `I × RAMP_FACTOR` (doubling: proportional, so 1 s and 30 min
//!      scales both take `log2(T/min)` steps);
//!    - a failing gap `bad` known: the geometric midpoint `sqrt(good · bad)`, but never more than
//!      [`MARGIN_PERCENT`] of `bad` (binary search in log space between last good and first bad);
//!    - always capped at `max`. A candidate less than [`MIN_GAIN_PERCENT`] above `I` is not worth
//!      a possible loss: the learner is **settled**, at `min(I, good)` when a failing gap is
//!      known (keep-alives sent early to coalesce may not have tested all of `I`).
//! 3. **Silent death after a gap `d` longer than `good`** marks `d` too long (`bad = min(bad, d)`)
//!    and settles at `min(good, MARGIN_PERCENT · bad)`, never below `min` (half of `I` when no
//!    gap was ever acknowledged). A search ends after [`SEARCH_LOSSES`] losses (the ramp's first
//!    loss and at most one bisection loss), so learning costs at most two lost connections.
//! 4. **Silent death at a gap `d ≤ good`** is not evidence against the interval (a server or a
//!    network may fail for other reasons). Only [`STALE_STRIKES`] such deaths with no success
//!    between them mean the path's timeout got shorter: `good` is forgotten, `bad = d`, and the
//!    search restarts from `min` (bisection towards `d` makes that cheap).
//! 5. **Re-probe rarely.** Once settled below a known `bad` (the remaining bisection room is
//!    left to the re-probe), after a stable period of
//!    [`REPROBE_FIRST_MS`] (and at least [`REPROBE_MIN_INTERVALS`] intervals) the learner tries
//!    `bad` itself once. If the path now tolerates it, `bad` is forgotten and the ramp resumes;
//!    if not (one lost connection), it returns to the settled value and the next re-probe waits
//!    twice as long, up to [`REPROBE_MAX_MS`]. An ack after a gap `≥ bad` (for whatever reason)
//!    also forgets `bad`.
//! 6. **Decrease requested by the app**: `bad = I`, `good` forgotten, `I` halves (as on
//!    Windows), and the search restarts below the new bound.
//!
//! # Bounds
//!
//! For a path that forgets connections idle for `T` (`min ≤ T/2`, `T ≤ max`), the ramp ends
//! with a proven interval in `[T/2, T)` and the bisection lifts it further (0.71–0.98·T over
//! the unit tests' sweep of `T` from 1 s to 30 min), within `ceil(log2(T/min)) + 2` probes and at
//! most two losses; with `min` = 0.5 s and `T` ≤ 30 min that is at most K = 14 probes.
//! Afterwards it holds with no loss until the first re-probe, and loses at most one connection
//! per re-probe (1 h, 2 h, 4 h, … 48 h apart).

pub mod netkey;
pub mod store;
pub mod tracker;

#[cfg(test)]
mod tests;

/// While no failing gap is known each probe multiplies the interval by this.
pub(crate) const RAMP_FACTOR: u64 = 2;
/// Successes in a row at the current interval before a longer one is probed. Three make a
/// lucky survival (a NAT that sweeps its table lazily) less likely to be taken for tolerance,
/// while costing only three intervals per step.
pub(crate) const SUCCESS_RUN: u32 = 3;
/// An ack counts as a success at the interval when the idle gap was at least this share of it
/// (the runtime may send a keep-alive up to a quarter early to coalesce wake-ups).
pub(crate) const ACCEPT_PERCENT: u64 = 75;
/// Never settle above this share of the shortest gap that failed.
pub(crate) const MARGIN_PERCENT: u64 = 80;
/// A probe must be at least this much longer than the current interval.
pub(crate) const MIN_GAIN_PERCENT: u64 = 10;
/// Losses after which one search stops and settles.
pub(crate) const SEARCH_LOSSES: u32 = 2;
/// Deaths at or below the longest acknowledged gap (no success between) that make it stale.
pub(crate) const STALE_STRIKES: u32 = 2;
/// Stable time before the first re-probe.
pub(crate) const REPROBE_FIRST_MS: u64 = 3_600_000;
/// The first re-probe also waits at least this many intervals.
pub(crate) const REPROBE_MIN_INTERVALS: u64 = 10;
/// Cap of the re-probe back-off.
pub(crate) const REPROBE_MAX_MS: u64 = 48 * 3_600_000;

/// `Phase::Settled::reprobe_at_ms` of a restored learner before its first run of successes.
pub(crate) const UNSCHEDULED: u64 = u64::MAX;

/// What is kept per (network, server host) between connections and runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remembered {
    /// An interval that was acknowledged on this path.
    pub interval_ms: u32,
    /// The shortest idle gap that was found to fail, if any.
    pub upper_bound_ms: Option<u32>,
}

/// Why the interval moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A longer interval is being tried after a run of successes.
    Probe,
    /// Nothing longer is worth a probe; holding at the longest acknowledged gap.
    Settle,
    /// After a stable period, the known-bad interval is tried again.
    Reprobe,
    /// A connection died silently after a gap longer than the last good one.
    Loss,
    /// The re-probe lost its connection; back to the settled value.
    ReprobeFailed,
    /// Repeated losses at a gap that used to work: the search restarts from `min`.
    Stale,
    /// The app asked for a shorter interval.
    Decrease,
    /// The network changed; the remembered value (or `min`) applies.
    Network,
    /// `min`/`max` changed and the interval was clamped.
    Bounds,
}

/// The result of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Changed { from_ms: u32, to_ms: u32, reason: Reason },
}

impl Outcome {
    /// The new interval if it changed.
    pub fn new_interval_ms(&self) -> Option<u32> {
        match *self {
            Outcome::Changed { to_ms, .. } => Some(to_ms),
            Outcome::Unchanged => None,
        }
    }
}

/// Where the learner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Looking for the longest tolerated interval; `losses` so far in this search.
    Searching { losses: u32 },
    /// Holding; a re-probe is due at `reprobe_at_ms` (if a failing gap is known; [`UNSCHEDULED`]
    /// right after a restore from a remembered value).
    Settled { reprobe_at_ms: u64 },
    /// Trying the known-bad interval again; `settled_ms` is where to return on a loss.
    Reprobing { settled_ms: u32 },
}

/// The adaptive keep-alive learner of one channel on its current network.
#[derive(Clone, Debug)]
pub struct Learner {
    min_ms: u32,
    max_ms: u32,
    cur_ms: u32,
    good_ms: Option<u32>,
    bad_ms: Option<u32>,
    streak: u32,
    strikes: u32,
    phase: Phase,
    backoff_ms: u64,
    reprobe_first_ms: u64,
    probes: u64,
}

fn pct(v: u64, percent: u64) -> u64 {
    v.saturating_mul(percent) / 100
}

impl Learner {
    /// A learner between `min_ms` and `max_ms`, starting from `remembered` (else from `min`).
    pub fn new(min_ms: u32, max_ms: u32, remembered: Option<Remembered>) -> Self {
        let mut l = Learner {
            min_ms: 1,
            max_ms: 1,
            cur_ms: 1,
            good_ms: None,
            bad_ms: None,
            streak: 0,
            strikes: 0,
            phase: Phase::Searching { losses: 0 },
            backoff_ms: REPROBE_FIRST_MS,
            reprobe_first_ms: REPROBE_FIRST_MS,
            probes: 0,
        };
        l.store_bounds(min_ms, max_ms);
        l.restart(remembered);
        l
    }

    /// The interval keep-alives should follow now.
    pub fn interval_ms(&self) -> u32 {
        self.cur_ms
    }
    pub fn min_ms(&self) -> u32 {
        self.min_ms
    }
    pub fn max_ms(&self) -> u32 {
        self.max_ms
    }
    /// The longest acknowledged idle gap, if any.
    pub fn good_ms(&self) -> Option<u32> {
        self.good_ms
    }
    /// The shortest idle gap known to fail, if any.
    pub fn upper_bound_ms(&self) -> Option<u32> {
        self.bad_ms
    }
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Longer intervals tried so far (probes and re-probes), for stats and tests.
    pub fn probes(&self) -> u64 {
        self.probes
    }

    /// What to remember for this (network, host): an acknowledged interval and the upper bound.
    pub fn remembered(&self) -> Remembered {
        let proven = self.good_ms.map_or(self.min_ms, |g| g.min(self.cur_ms));
        Remembered { interval_ms: self.clamp(proven as u64), upper_bound_ms: self.bad_ms }
    }

    /// Replaces [`REPROBE_FIRST_MS`] for this learner (integration tests that change the path's
    /// timeout within a minute); the back-off restarts from it and still caps at
    /// [`REPROBE_MAX_MS`]. Re-probes still wait [`REPROBE_MIN_INTERVALS`] intervals.
    pub fn set_reprobe_first_ms(&mut self, ms: u64) {
        self.reprobe_first_ms = ms.min(REPROBE_MAX_MS);
        self.backoff_ms = self.reprobe_first_ms;
    }

    /// New `min`/`max` (`max` already limited by the server interval); clamps the interval.
    pub fn set_bounds(&mut self, min_ms: u32, max_ms: u32) -> Outcome {
        self.store_bounds(min_ms, max_ms);
        let to = self.clamp(self.cur_ms as u64);
        self.move_to(to, Reason::Bounds)
    }

    /// The network changed: start over from what is remembered for it (or from `min`).
    pub fn on_network_change(&mut self, remembered: Option<Remembered>) -> Outcome {
        let from = self.cur_ms;
        self.restart(remembered);
        if self.cur_ms == from {
            Outcome::Unchanged
        } else {
            Outcome::Changed { from_ms: from, to_ms: self.cur_ms, reason: Reason::Network }
        }
    }

    /// A keep-alive sent after `idle_ms` of idleness was acknowledged at `now_ms`.
    pub fn on_ack(&mut self, idle_ms: u32, now_ms: u64) -> Outcome {
        if self.bad_ms.is_some_and(|b| idle_ms >= b) {
            self.bad_ms = None; // the path tolerates what once failed
        }
        if self.good_ms.is_none_or(|g| idle_ms > g) {
            self.good_ms = Some(idle_ms);
        }
        if (idle_ms as u64) * 100 < (self.cur_ms as u64) * ACCEPT_PERCENT {
            return Outcome::Unchanged; // the app's traffic kept the gap short
        }
        self.strikes = 0;
        self.streak = self.streak.saturating_add(1);
        if self.streak < SUCCESS_RUN {
            return Outcome::Unchanged;
        }
        match self.phase {
            Phase::Searching { .. } => {}
            Phase::Reprobing { .. } => {
                self.bad_ms = None;
                self.backoff_ms = self.reprobe_first_ms;
                self.phase = Phase::Searching { losses: 0 };
            }
            Phase::Settled { reprobe_at_ms } => {
                if self.bad_ms.is_none() && self.cur_ms < self.max_ms {
                    // Nothing failed (forgotten, or max was raised): the ramp goes on.
                    self.phase = Phase::Searching { losses: 0 };
                } else if reprobe_at_ms == UNSCHEDULED {
                    self.settle(now_ms, self.cur_ms); // restored: the stable period starts now
                    return Outcome::Unchanged;
                } else {
                    return self.maybe_reprobe(now_ms, reprobe_at_ms);
                }
            }
        }
        if self.has_room() {
            let to = self.clamp(self.candidate());
            self.probes += 1;
            self.move_to(to, Reason::Probe)
        } else {
            // Hold only what was acknowledged: keep-alives sent early (coalescing) may never
            // have tested the full interval below a known failure.
            let to = match (self.bad_ms, self.good_ms) {
                (Some(_), Some(g)) => self.clamp(g.min(self.cur_ms) as u64),
                _ => self.cur_ms,
            };
            self.settle(now_ms, to);
            self.move_to(to, Reason::Settle)
        }
    }

    /// A keep-alive sent after `idle_ms` of idleness was never answered (found at `now_ms`).
    pub fn on_silent_death(&mut self, idle_ms: u32, now_ms: u64) -> Outcome {
        let idle_ms = idle_ms.max(1);
        self.streak = 0;
        let reprobing = matches!(self.phase, Phase::Reprobing { .. });
        if !reprobing && self.good_ms.is_some_and(|g| idle_ms <= g) {
            self.strikes += 1;
            if self.strikes < STALE_STRIKES {
                return Outcome::Unchanged; // not evidence against the interval (yet)
            }
            self.strikes = 0;
            self.good_ms = None;
            self.bad_ms = Some(idle_ms);
            self.phase = Phase::Searching { losses: 0 };
            return self.move_to(self.min_ms, Reason::Stale);
        }
        self.strikes = 0;
        self.bad_ms = Some(self.bad_ms.map_or(idle_ms, |b| b.min(idle_ms)));
        let to = self.settle_value();
        match self.phase {
            Phase::Reprobing { settled_ms } => {
                self.backoff_ms = self.backoff_ms.saturating_mul(2).min(REPROBE_MAX_MS);
                let to = to.min(settled_ms);
                self.settle(now_ms, to);
                self.move_to(to, Reason::ReprobeFailed)
            }
            Phase::Searching { losses } => {
                let losses = losses + 1;
                self.phase = Phase::Searching { losses };
                let out = self.move_to(to, Reason::Loss);
                if losses >= SEARCH_LOSSES && self.good_ms.is_some() {
                    self.settle(now_ms, to);
                }
                out
            }
            Phase::Settled { .. } => self.move_to(to, Reason::Loss),
        }
    }

    /// The app says the current interval is too long.
    pub fn on_decrease(&mut self) -> Outcome {
        self.bad_ms = Some(self.bad_ms.map_or(self.cur_ms, |b| b.min(self.cur_ms)));
        self.good_ms = None;
        self.strikes = 0;
        self.phase = Phase::Searching { losses: 0 };
        let to = self.clamp(self.cur_ms as u64 / 2);
        self.streak = 0;
        self.move_to(to, Reason::Decrease)
    }

    // --- internals ---------------------------------------------------------------------------

    fn store_bounds(&mut self, min_ms: u32, max_ms: u32) {
        self.min_ms = min_ms.max(1);
        self.max_ms = max_ms.max(self.min_ms);
    }

    fn restart(&mut self, remembered: Option<Remembered>) {
        self.cur_ms = remembered.map_or(self.min_ms, |r| self.clamp(r.interval_ms as u64));
        self.good_ms = remembered.map(|_| self.cur_ms);
        self.bad_ms = remembered.and_then(|r| r.upper_bound_ms).filter(|&b| b > self.cur_ms);
        self.streak = 0;
        self.strikes = 0;
        // A remembered value was settled on: hold it (the re-probe clock starts with the
        // first run of successes) instead of searching again.
        self.phase = match remembered {
            Some(_) => Phase::Settled { reprobe_at_ms: UNSCHEDULED },
            None => Phase::Searching { losses: 0 },
        };
        self.backoff_ms = self.reprobe_first_ms;
    }

    fn clamp(&self, v: u64) -> u32 {
        v.clamp(self.min_ms as u64, self.max_ms as u64) as u32
    }

    /// The next interval worth trying (before clamping to `min`).
    fn candidate(&self) -> u64 {
        let cur = self.cur_ms as u64;
        let c = match self.bad_ms {
            None => cur.saturating_mul(RAMP_FACTOR),
            Some(b) => {
                let lo = self.good_ms.unwrap_or(self.cur_ms) as f64;
                let mid = (lo * b as f64).sqrt() as u64;
                mid.min(pct(b as u64, MARGIN_PERCENT))
            }
        };
        c.min(self.max_ms as u64)
    }

    fn has_room(&self) -> bool {
        let cur = self.cur_ms as u64;
        self.candidate() > cur + pct(cur, MIN_GAIN_PERCENT)
    }

    /// Where to stand after a loss: below the failing gap with a margin, never above `good`.
    fn settle_value(&self) -> u32 {
        let v = match (self.good_ms, self.bad_ms) {
            (Some(g), Some(b)) => (g as u64).min(pct(b as u64, MARGIN_PERCENT)),
            (None, Some(b)) => self.cur_ms.min(b) as u64 / 2,
            (g, None) => g.unwrap_or(self.cur_ms) as u64,
        };
        self.clamp(v)
    }

    /// Holds at `interval_ms` until the next re-probe.
    fn settle(&mut self, now_ms: u64, interval_ms: u32) {
        let delay = self.backoff_ms.max((interval_ms as u64).saturating_mul(REPROBE_MIN_INTERVALS));
        self.phase = Phase::Settled { reprobe_at_ms: now_ms.saturating_add(delay) };
    }

    fn maybe_reprobe(&mut self, now_ms: u64, reprobe_at_ms: u64) -> Outcome {
        let Some(b) = self.bad_ms else { return Outcome::Unchanged };
        if now_ms < reprobe_at_ms || b <= self.cur_ms || self.cur_ms >= self.max_ms {
            return Outcome::Unchanged;
        }
        self.phase = Phase::Reprobing { settled_ms: self.cur_ms };
        self.probes += 1;
        let to = self.clamp(b as u64);
        self.move_to(to, Reason::Reprobe)
    }

    fn move_to(&mut self, to_ms: u32, reason: Reason) -> Outcome {
        let from_ms = self.cur_ms;
        self.streak = 0;
        if to_ms == from_ms {
            return Outcome::Unchanged;
        }
        self.cur_ms = to_ms;
        Outcome::Changed { from_ms, to_ms, reason }
    }
}
