//! The learner against a simulated NAT: a connection idle for `T` or longer is forgotten.

use super::*;

const MIN: u32 = 500;
const MAX: u32 = 3_600_000;
/// How long a lost keep-alive takes to notice (pong timeout) before the reconnect.
const PONG_TIMEOUT: u64 = 5_000;
const RTT: u64 = 20;
const HOUR: u64 = 3_600_000;
/// Probes to settle for every T in the sweep: ceil(log2(1 800 000 / 500)) = 12 ramp probes
/// (the last one lost) + at most 2 bisection probes.
const K: u64 = 14;

/// A learner driving one connection through a NAT with idle timeout `t_ms`.
struct Sim {
    l: Learner,
    now: u64,
    t_ms: u32,
    losses: u64,
    acks: u64,
    /// Share of the interval by which the runtime may send early (0 = exactly on time).
    jitter_percent: u64,
    rng: u64,
}

impl Sim {
    fn new(t_ms: u32) -> Self {
        Sim { l: Learner::new(MIN, MAX, None), now: 0, t_ms, losses: 0, acks: 0, jitter_percent: 0, rng: 0x9e37 }
    }

    fn gap(&mut self) -> u32 {
        let cur = self.l.interval_ms() as u64;
        if self.jitter_percent == 0 {
            return cur as u32;
        }
        self.rng = self.rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let early = (self.rng >> 33) % (cur * self.jitter_percent / 100 + 1);
        (cur - early) as u32
    }

    /// One keep-alive: acknowledged if the gap is shorter than T, else the connection is lost.
    fn step(&mut self) -> Outcome {
        let gap = self.gap();
        self.now += gap as u64;
        if gap >= self.t_ms {
            self.now += PONG_TIMEOUT;
            self.losses += 1;
            self.l.on_silent_death(gap, self.now)
        } else {
            self.now += RTT;
            self.acks += 1;
            self.l.on_ack(gap, self.now)
        }
    }

    /// Steps until settled (bounded); returns the steps taken.
    fn until_settled(&mut self, max_steps: u32) -> u32 {
        for n in 0..max_steps {
            if matches!(self.l.phase(), Phase::Settled { .. }) {
                return n;
            }
            self.step();
        }
        panic!("T={} not settled after {max_steps} steps: {:?}", self.t_ms, self.l);
    }

    fn reprobe_at(&self) -> u64 {
        match self.l.phase() {
            Phase::Settled { reprobe_at_ms } => reprobe_at_ms,
            p => panic!("not settled: {p:?}"),
        }
    }
}

fn in_band(v: u32, t: u32) -> bool {
    (v as u64) * 10 >= (t as u64) * 4 && v < t
}

/// 40 values of T, log-spaced from 1 s to 30 min.
fn sweep() -> Vec<u32> {
    (0..40).map(|i| (1000.0 * 1800f64.powf(i as f64 / 39.0)).round() as u32).collect()
}

#[test]
fn every_timescale_from_1s_to_30min_settles_in_band_within_k_probes_and_holds() {
    let mut table = Vec::new();
    for t in sweep() {
        let mut s = Sim::new(t);
        s.until_settled(10_000);
        let v = s.l.interval_ms();
        assert!(in_band(v, t), "T={t}: settled at {v}, outside [0.4T, T)");
        assert!(s.l.probes() <= K, "T={t}: {} probes > K={K}", s.l.probes());
        assert!(s.losses <= SEARCH_LOSSES as u64, "T={t}: {} losses while learning", s.losses);
        table.push(format!(
            "T={t}ms probes={} losses={} settled={v}ms ({:.2}T) after {:.1} min",
            s.l.probes(),
            s.losses,
            v as f64 / t as f64,
            s.now as f64 / 60_000.0
        ));

        // Holds, without loss, until the first re-probe (at least an hour later).
        let (losses, at, until) = (s.losses, s.now, s.reprobe_at());
        assert!(until >= at + HOUR);
        while s.now + s.l.interval_ms() as u64 + RTT < until {
            assert_eq!(s.step(), Outcome::Unchanged, "T={t}");
        }
        assert_eq!(s.losses, losses, "T={t}: lost a connection while settled");

        // Two days: each re-probe costs at most one connection, re-probes back off, and the
        // interval is back in the band whenever the learner is settled.
        let (acks0, losses0, probes0) = (s.acks, s.losses, s.l.probes());
        let end = s.now + 48 * HOUR;
        for _ in 0..400_000 {
            if s.now >= end {
                break;
            }
            s.step();
            if matches!(s.l.phase(), Phase::Settled { .. }) {
                assert!(in_band(s.l.interval_ms(), t), "T={t}: {:?}", s.l);
            }
        }
        assert!(s.now >= end, "T={t}: simulation bound hit");
        let (reprobes, lost) = (s.l.probes() - probes0, s.losses - losses0);
        assert!(lost <= reprobes && reprobes <= 6, "T={t}: {reprobes} re-probes, {lost} losses in 48 h");
        assert!(s.acks - acks0 > 0);
    }
    eprintln!("{}", table.join("\n"));
}

#[test]
fn early_keepalives_from_coalescing_still_settle_below_t() {
    for t in sweep().into_iter().step_by(3) {
        let mut s = Sim::new(t);
        s.jitter_percent = 25;
        s.until_settled(10_000);
        let v = s.l.interval_ms();
        assert!(v < t && (v as u64) * 10 >= (t as u64) * 3, "T={t}: settled at {v}");
        assert!(s.l.probes() <= K + 2 && s.losses <= SEARCH_LOSSES as u64, "T={t}: {:?}", s.l);
        let until = s.reprobe_at();
        let losses = s.losses;
        for _ in 0..100_000 {
            if s.now + s.l.interval_ms() as u64 + RTT >= until {
                break;
            }
            s.step();
        }
        assert_eq!(s.losses, losses, "T={t}");
    }
}

/// Runs `s` for `hours` simulated hours (bounded in steps).
fn run_hours(s: &mut Sim, hours: u64) {
    let end = s.now + hours * HOUR;
    for _ in 0..1_000_000 {
        if s.now >= end {
            return;
        }
        s.step();
    }
    panic!("step bound hit");
}

#[test]
fn a_longer_timeout_mid_run_is_found_by_a_reprobe() {
    for (t1, t2) in [(10_000, 100_000), (2_000, 1_500_000), (60_000, 61_000 * 3)] {
        let mut s = Sim::new(t1);
        s.until_settled(10_000);
        assert!(in_band(s.l.interval_ms(), t1));
        s.t_ms = t2;
        run_hours(&mut s, 12);
        let losses = s.losses;
        assert!(in_band(s.l.interval_ms(), t2), "{t1}->{t2}: {:?}", s.l);
        assert!(s.l.interval_ms() as u64 * 10 >= t2 as u64 * 6, "{t1}->{t2}: {:?}", s.l);
        // And it then holds for the next hour.
        run_hours(&mut s, 1);
        assert_eq!(s.losses, losses, "{t1}->{t2}");
    }
}

#[test]
fn a_shorter_timeout_mid_run_resettles_with_few_losses() {
    for (t1, t2) in [(100_000, 10_000), (1_800_000, 1_000), (30_000, 20_000), (5_000, 4_000)] {
        let mut s = Sim::new(t1);
        s.until_settled(10_000);
        s.t_ms = t2;
        let losses = s.losses;
        // The first loss at the old interval is not yet evidence; the second is.
        assert_eq!(s.step(), Outcome::Unchanged);
        let out = s.step();
        assert!(matches!(out, Outcome::Changed { reason: Reason::Stale, .. }), "{t1}->{t2}: {out:?}");
        s.until_settled(10_000);
        assert!(in_band(s.l.interval_ms(), t2), "{t1}->{t2}: {:?}", s.l);
        assert!(s.losses - losses <= 4, "{t1}->{t2}: {} losses to re-settle", s.losses - losses);
        let until = s.reprobe_at();
        let losses = s.losses;
        while s.now + s.l.interval_ms() as u64 + RTT < until {
            s.step();
        }
        assert_eq!(s.losses, losses, "{t1}->{t2}: holds afterwards");
    }
}

#[test]
fn one_unexplained_loss_at_a_proven_gap_changes_nothing() {
    let mut s = Sim::new(20_000);
    s.until_settled(10_000);
    let v = s.l.interval_ms();
    let n = s.now;
    assert_eq!(s.l.on_silent_death(v, n + 1), Outcome::Unchanged);
    // A success in between clears the strike.
    assert_eq!(s.l.on_ack(v, n + 2), Outcome::Unchanged);
    assert_eq!(s.l.on_silent_death(v, n + 3), Outcome::Unchanged);
    // A second one in a row means the path changed.
    let out = s.l.on_silent_death(v, n + 4);
    assert_eq!(out, Outcome::Changed { from_ms: v, to_ms: MIN, reason: Reason::Stale });
    assert_eq!(s.l.upper_bound_ms(), Some(v));
}

#[test]
fn short_gaps_from_app_traffic_neither_count_nor_reset_the_run() {
    let mut l = Learner::new(1_000, 60_000, None);
    assert_eq!(l.on_ack(1_000, 1), Outcome::Unchanged);
    assert_eq!(l.on_ack(1_000, 2), Outcome::Unchanged);
    for i in 0..10 {
        assert_eq!(l.on_ack(100, 3 + i), Outcome::Unchanged);
    }
    assert_eq!(l.on_ack(800, 20), Outcome::Changed { from_ms: 1_000, to_ms: 2_000, reason: Reason::Probe });
}

#[test]
fn decrease_marks_the_interval_bad_and_halves_it() {
    let mut l = Learner::new(1_000, 60_000, Some(Remembered { interval_ms: 40_000, upper_bound_ms: None }));
    assert_eq!(l.interval_ms(), 40_000);
    assert_eq!(l.on_decrease(), Outcome::Changed { from_ms: 40_000, to_ms: 20_000, reason: Reason::Decrease });
    assert_eq!((l.upper_bound_ms(), l.good_ms()), (Some(40_000), None));
    // It probes back up below the reported value, never to it.
    let mut now = 0;
    for _ in 0..30 {
        now += l.interval_ms() as u64;
        l.on_ack(l.interval_ms(), now);
        assert!(l.interval_ms() <= 32_000, "{l:?}");
    }
    assert!(matches!(l.phase(), Phase::Settled { .. }));
    assert_eq!(l.interval_ms(), 32_000);
    // At the minimum a decrease changes nothing but is remembered as a bound.
    let mut m = Learner::new(1_000, 60_000, None);
    assert_eq!(m.on_decrease(), Outcome::Unchanged);
    assert_eq!(m.upper_bound_ms(), Some(1_000));
}

#[test]
fn network_change_switches_to_the_remembered_value_or_min() {
    let mut s = Sim::new(30_000);
    s.until_settled(10_000);
    let home = s.l.remembered();
    assert!(in_band(home.interval_ms, 30_000) && home.upper_bound_ms.is_some_and(|b| b >= 30_000));
    let out = s.l.on_network_change(None);
    assert_eq!(out, Outcome::Changed { from_ms: home.interval_ms, to_ms: MIN, reason: Reason::Network });
    assert_eq!((s.l.good_ms(), s.l.upper_bound_ms()), (None, None));
    // Back home: the remembered value applies at once and no probing is needed.
    let out = s.l.on_network_change(Some(home));
    assert_eq!(out.new_interval_ms(), Some(home.interval_ms));
    assert_eq!(s.l.phase(), Phase::Settled { reprobe_at_ms: UNSCHEDULED });
    let (probes, losses, start) = (s.l.probes(), s.losses, s.now);
    for _ in 0..100 {
        assert_eq!(s.step(), Outcome::Unchanged);
    }
    assert_eq!((s.l.interval_ms(), s.l.probes(), s.losses), (home.interval_ms, probes, losses));
    assert!(s.reprobe_at() >= start + HOUR);
}

#[test]
fn bounds_clamp_everything() {
    // A remembered value outside the bounds is clamped; an upper bound below it is dropped.
    let l = Learner::new(2_000, 10_000, Some(Remembered { interval_ms: 50_000, upper_bound_ms: Some(9_000) }));
    assert_eq!((l.interval_ms(), l.upper_bound_ms()), (10_000, None));
    let l = Learner::new(5_000, 1_000, None); // max below min: max = min
    assert_eq!((l.min_ms(), l.max_ms(), l.interval_ms()), (5_000, 5_000, 5_000));
    let l = Learner::new(0, 0, None);
    assert_eq!((l.min_ms(), l.max_ms()), (1, 1));
    // The ramp stops at max, and a lower max (the server interval changed) clamps at once.
    let mut l = Learner::new(1_000, 5_000, None);
    let mut now = 0;
    for _ in 0..20 {
        now += l.interval_ms() as u64;
        l.on_ack(l.interval_ms(), now);
    }
    assert_eq!(l.interval_ms(), 5_000);
    assert!(matches!(l.phase(), Phase::Settled { .. }));
    assert_eq!(l.set_bounds(1_000, 3_000), Outcome::Changed { from_ms: 5_000, to_ms: 3_000, reason: Reason::Bounds });
    // A raised max lets it probe again after the next run of successes.
    assert_eq!(l.set_bounds(1_000, 60_000), Outcome::Unchanged);
    let mut moved = None;
    for _ in 0..3 {
        now += 3_000;
        moved = l.on_ack(3_000, now).new_interval_ms().or(moved);
    }
    assert_eq!(moved, Some(6_000));
}

#[test]
fn below_min_nothing_helps_but_nothing_breaks() {
    let mut s = Sim::new(300); // the path forgets faster than the app's minimum
    for _ in 0..50 {
        s.step();
        assert_eq!(s.l.interval_ms(), MIN);
    }
    assert_eq!(s.losses, 50);
}

#[test]
fn remembered_is_an_acknowledged_interval() {
    let mut l = Learner::new(1_000, 60_000, None);
    assert_eq!(l.remembered(), Remembered { interval_ms: 1_000, upper_bound_ms: None });
    let mut now = 0;
    for _ in 0..3 {
        now += 1_000;
        l.on_ack(1_000, now);
    }
    assert_eq!(l.interval_ms(), 2_000); // probing 2 s, not yet acknowledged
    assert_eq!(l.remembered().interval_ms, 1_000);
    l.on_silent_death(2_000, now + 2_000);
    assert_eq!(l.remembered(), Remembered { interval_ms: 1_000, upper_bound_ms: Some(2_000) });
}

#[test]
fn a_short_reprobe_period_finds_a_longer_timeout_within_minutes() {
    // What the 60 s integration test relies on: T = 2 s, server interval 8 s, then T = 4 s.
    let mut s = Sim::new(2_000);
    s.l = Learner::new(700, 8_000, None);
    s.l.set_reprobe_first_ms(5_000);
    s.until_settled(1_000);
    assert!(in_band(s.l.interval_ms(), 2_000), "{:?}", s.l);
    assert!(s.now < 40_000, "settled after {} ms", s.now); // two losses at a 5 s pong timeout included
    s.t_ms = 4_000;
    let end = s.now + 60_000;
    while s.now < end {
        s.step();
    }
    assert!(in_band(s.l.interval_ms(), 4_000), "{:?}", s.l);
}
