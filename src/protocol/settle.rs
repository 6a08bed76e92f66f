//! The pong settle (sans-I/O): after a wake-up that sent a burst of keep-alive pings, how the
//! reactor waits before it listens to its sockets again, so that the burst's pongs are read in a
//! few passes instead of one wake-up per arriving pong.
//!
//! A peer (or a busy server behind many channels) answers a burst over some milliseconds; a
//! reactor that reads faster than the pongs arrive would wake once per pong. During a settle the
//! reactor sleeps, then reads whatever arrived without blocking, and repeats while most of the
//! burst is still out. No single wait is longer than the cap the runtime is configured with, so
//! data and commands that arrive meanwhile wait at most that long. The first wait is the learned
//! time the last bursts took to come back (`estimate`); the next ones are as long as the pongs
//! still out need at the rate the others came back at. The settle ends when only a few pongs are
//! out ([`STRAGGLERS`]: they wake the reactor one by one, as without a settle), after
//! [`MAX_WAITS`] waits or after [`MAX_TOTAL_CAPS`] × the cap asleep in total. After two waits in a row that brought no pong the path is stalled: the
//! reactor listens normally (pong timeouts deal with a dead path) and the settle resumes with the
//! next wake-up that reads a pong of the burst; the next burst starts a fresh settle (pings that
//! will never be acknowledged, e.g. of connections that ended, do not carry over).
//!
//! The estimate shrinks slowly while one wait suffices (1/32 per burst) and jumps to 1.25 × the
//! time the burst actually took when it did not, so it follows the path without overshooting for
//! long and needs a second wait only about once in eight bursts on a steady path. Round trips are
//! not used to learn it: the round trip a keep-alive reports includes the wait.

use std::time::Duration;

/// Shortest wait.
pub const MIN_WAIT: Duration = Duration::from_millis(1);
/// First estimate, before any burst was seen.
pub const INITIAL_ESTIMATE: Duration = Duration::from_millis(2);
/// Longest estimate.
pub const MAX_ESTIMATE: Duration = Duration::from_secs(1);
/// Waits per burst at most.
pub(crate) const MAX_WAITS: u8 = 32;
/// A settle sleeps at most this many times the cap in total (a peer trickling one pong per
/// wait cannot hold the reactor in sleep-and-poll mode for long).
pub(crate) const MAX_TOTAL_CAPS: u32 = 8;
/// This many pongs still out (or fewer) end the settle: another wait would cost as many wake-ups.
pub(crate) const STRAGGLERS: u32 = 2;

/// The settle state of one reactor.
#[derive(Debug, Clone)]
pub struct Settle {
    estimate: Duration,
    /// Pings of the current settle, and those not acknowledged yet.
    sent: u32,
    pending: u32,
    /// `pending` when the last wait began.
    pending_before: u32,
    /// Waits in a row that brought no pong.
    idle_waits: u8,
    /// Stalled (two idle waits): the reactor listens normally until a pong comes back.
    stalled: bool,
    /// This settle stalled at least once (its duration says nothing about the path).
    learned_stall: bool,
    /// Time waited in the current settle.
    waited: Duration,
    /// Waits done in the current settle (0: none yet).
    waits: u8,
    active: bool,
}

impl Default for Settle {
    fn default() -> Self {
        Settle {
            estimate: INITIAL_ESTIMATE,
            sent: 0,
            pending: 0,
            pending_before: 0,
            idle_waits: 0,
            stalled: false,
            learned_stall: false,
            waited: Duration::ZERO,
            waits: 0,
            active: false,
        }
    }
}

impl Settle {
    /// `pings` keep-alive pings went out in the wake-up that just ended. Two or more start a
    /// settle; while one runs, every ping sent joins it.
    pub fn burst(&mut self, pings: u32) {
        if self.active && self.stalled && pings >= 2 {
            // What a stalled settle still counts (pings whose connection ended, pongs that
            // settled several pings, pongs that never come) says nothing about the new burst.
            *self = Settle { estimate: self.estimate, sent: pings, pending: pings, active: true, ..Settle::default() };
        } else if self.active {
            if pings > 0 && self.stalled {
                // A new burst: wait for it too.
                self.stalled = false;
                self.idle_waits = 0;
            }
            self.pending = self.pending.saturating_add(pings);
            self.pending_before = self.pending_before.saturating_add(pings);
            self.sent = self.sent.saturating_add(pings);
        } else if pings >= 2 {
            *self = Settle { estimate: self.estimate, sent: pings, pending: pings, active: true, ..Settle::default() };
        }
    }

    /// A keep-alive was acknowledged (its pong was read).
    pub fn acked(&mut self) {
        if self.active {
            self.pending = self.pending.saturating_sub(1);
        }
    }

    /// Whether a settle is under way.
    pub fn active(&self) -> bool {
        self.active
    }

    /// The learned time a burst's pongs take to come back.
    pub fn estimate(&self) -> Duration {
        self.estimate
    }

    /// Called before the reactor listens: `Some(d)` means sleep `d`, then poll without blocking;
    /// `None` means listen normally. `cap` is the longest single wait (0 disables the settle).
    pub fn next_wait(&mut self, cap: Duration) -> Option<Duration> {
        if !self.active {
            return None;
        }
        if cap.is_zero() {
            self.active = false;
            return None;
        }
        if self.stalled {
            if self.pending >= self.pending_before {
                return None;
            }
            // Pongs flow again: settle the rest of the burst.
            self.stalled = false;
            self.idle_waits = 0;
        } else if self.waits > 0 {
            self.idle_waits = if self.pending < self.pending_before { 0 } else { self.idle_waits + 1 };
        }
        if self.waits > 0 {
            let done = self.pending <= STRAGGLERS;
            if done || self.waits >= MAX_WAITS || self.waited >= cap * MAX_TOTAL_CAPS {
                self.learn(done);
                self.active = false;
                return None;
            }
            if self.idle_waits >= 2 {
                self.stalled = true;
                self.learned_stall = true;
                self.pending_before = self.pending;
                return None;
            }
        }
        let back = self.sent.saturating_sub(self.pending);
        let d = if self.waits == 0 || back == 0 {
            self.estimate
        } else {
            // The pongs still out, at the rate the others came back at.
            self.waited.mul_f64(self.pending as f64 / back as f64)
        }
        .clamp(MIN_WAIT, cap.max(MIN_WAIT));
        self.waits += 1;
        self.waited += d;
        self.pending_before = self.pending;
        Some(d)
    }

    fn learn(&mut self, done: bool) {
        self.estimate = if done && self.waits == 1 {
            (self.estimate - self.estimate / 32).max(MIN_WAIT)
        } else if done && !self.learned_stall {
            (self.waited + self.waited / 4).clamp(MIN_WAIT, MAX_ESTIMATE)
        } else {
            // Stalled: says nothing about how long pongs take.
            self.estimate
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_millis(50);

    /// Runs one burst of `pings` whose pongs come back at the given times (ms after the burst);
    /// returns (waits, acks read during the settle).
    fn burst(s: &mut Settle, pings: u32, arrivals_ms: &[f64]) -> (u32, usize) {
        s.burst(pings);
        let (mut t, mut waits, mut read) = (0.0, 0, 0);
        while let Some(d) = s.next_wait(CAP) {
            t += d.as_secs_f64() * 1e3;
            waits += 1;
            assert!(waits <= MAX_WAITS as u32, "unbounded waits");
            let now_read = arrivals_ms.iter().filter(|&&a| a <= t).count();
            for _ in read..now_read {
                s.acked();
            }
            read = now_read;
        }
        (waits, read)
    }

    #[test]
    fn a_single_ping_or_a_zero_cap_never_waits() {
        let mut s = Settle::default();
        s.burst(1);
        assert_eq!(s.next_wait(CAP), None);
        s.burst(100);
        assert_eq!(s.next_wait(Duration::ZERO), None);
        assert!(!s.active());
    }

    #[test]
    fn learns_a_slow_burst_then_reads_it_in_one_wait() {
        let mut s = Settle::default();
        // 300 pongs spread evenly over 12 ms.
        let arrivals: Vec<f64> = (0..300).map(|i| i as f64 * 0.04).collect();
        let (w1, r1) = burst(&mut s, 300, &arrivals);
        assert!(w1 >= 2, "the first burst needs more than the initial estimate: {w1} waits");
        assert!(r1 < 300 || s.estimate() >= Duration::from_millis(12));
        // After a few bursts one wait takes almost all of it.
        let mut one_wait = 0;
        for _ in 0..20 {
            let (w, r) = burst(&mut s, 300, &arrivals);
            if w == 1 {
                one_wait += 1;
                assert!(r >= 298, "one wait but {r} read");
            }
        }
        assert!(one_wait >= 15, "one wait in only {one_wait} of 20 bursts (estimate {:?})", s.estimate());
        assert!(s.estimate() <= Duration::from_millis(20), "overshoots: {:?}", s.estimate());
    }

    #[test]
    fn shrinks_back_when_the_path_gets_fast() {
        let mut s = Settle::default();
        let slow: Vec<f64> = (0..200).map(|i| i as f64 * 0.15).collect(); // 30 ms
        for _ in 0..5 {
            burst(&mut s, 200, &slow);
        }
        assert!(s.estimate() >= Duration::from_millis(25), "{:?}", s.estimate());
        let fast: Vec<f64> = (0..200).map(|i| i as f64 * 0.01).collect(); // 2 ms
        for _ in 0..60 {
            burst(&mut s, 200, &fast);
        }
        assert!(s.estimate() <= Duration::from_millis(5), "did not shrink: {:?}", s.estimate());
    }

    #[test]
    fn pongs_that_never_come_cost_two_waits_and_teach_nothing() {
        let mut s = Settle::default();
        for _ in 0..10 {
            s.burst(500);
            let mut total = Duration::ZERO;
            let mut waits = 0;
            while let Some(d) = s.next_wait(CAP) {
                total += d;
                waits += 1;
            }
            assert!(waits <= 2, "{waits} waits for pongs that never come");
            assert!(total <= 2 * CAP, "waited {total:?}");
        }
        assert_eq!(s.estimate(), INITIAL_ESTIMATE, "a stalled path taught something");
    }

    #[test]
    fn a_burst_slower_than_the_cap_is_read_in_a_few_waits_none_longer_than_the_cap() {
        let mut s = Settle::default();
        // 1 000 pongs over 120 ms (a busy server): more than two caps.
        let arrivals: Vec<f64> = (0..1000).map(|i| i as f64 * 0.12).collect();
        for round in 0..10 {
            s.burst(1000);
            let (mut t, mut waits, mut read) = (0.0, 0, 0);
            while let Some(d) = s.next_wait(CAP) {
                assert!(d <= CAP, "a wait of {d:?}");
                t += d.as_secs_f64() * 1e3;
                waits += 1;
                let now_read = arrivals.iter().filter(|&&a| a <= t).count();
                for _ in read..now_read {
                    s.acked();
                }
                read = now_read;
            }
            assert!(read >= 998, "round {round}: {read} read in the settle");
            if round > 0 {
                assert!(waits <= 4, "round {round}: {waits} waits");
            }
        }
    }

    /// A peer that releases exactly one pong per wait holds the settle for a bounded time.
    #[test]
    fn trickled_pongs_hold_the_settle_for_a_bounded_time() {
        let mut s = Settle::default();
        s.burst(1000);
        let (mut total, mut waits) = (Duration::ZERO, 0);
        while let Some(d) = s.next_wait(CAP) {
            total += d;
            waits += 1;
            s.acked();
        }
        assert!(waits <= MAX_WAITS as u32);
        assert!(total <= CAP * (MAX_TOTAL_CAPS + 1), "asleep {total:?}");
    }

    /// Pings whose pongs never come (their connection ended, or one pong settled several
    /// pings) must not keep later settles sleeping longer and longer (found in review).
    #[test]
    fn pings_never_acknowledged_do_not_carry_over_to_later_bursts() {
        let mut s = Settle::default();
        let fast: Vec<f64> = (0..100).map(|i| i as f64 * 0.02).collect();
        for _ in 0..10 {
            burst(&mut s, 100, &fast);
        }
        let learned = s.estimate();
        // Now 10 of each burst's 100 pings are never acknowledged.
        let lossy: Vec<f64> = (0..90).map(|i| i as f64 * 0.02).collect();
        let mut asleep = Duration::ZERO;
        for _ in 0..10 {
            s.burst(100);
            let (mut t, mut read) = (0.0, 0);
            while let Some(d) = s.next_wait(CAP) {
                asleep += d;
                t += d.as_secs_f64() * 1e3;
                let now_read = lossy.iter().filter(|&&a| a <= t).count();
                for _ in read..now_read {
                    s.acked();
                }
                read = now_read;
            }
        }
        assert!(asleep <= (learned + MIN_WAIT * 2) * 10 * 2, "10 lossy bursts slept {asleep:?} (estimate {learned:?})");
    }

    #[test]
    fn pings_sent_during_a_settle_join_it() {
        let mut s = Settle::default();
        s.burst(10);
        assert!(s.next_wait(CAP).is_some());
        s.burst(1);
        for _ in 0..8 {
            s.acked();
        }
        // 3 of 11 still out: more than the stragglers, so wait again.
        assert!(s.next_wait(CAP).is_some());
        s.acked();
        assert_eq!(s.next_wait(CAP), None);
    }
}
