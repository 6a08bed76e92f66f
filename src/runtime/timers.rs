//! The runtime's one timer structure: a min-heap of (deadline, connection slot, serial) entries
//! with lazy deletion (stale entries are skipped when they surface).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Timers {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, at: Instant, slot: usize, serial: u64) {
        self.heap.push(Reverse((at, slot, serial)));
    }
    pub fn peek(&self) -> Option<(Instant, usize, u64)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }
    /// Pops the earliest entry if it is at or before `horizon`.
    pub fn pop_until(&mut self, horizon: Instant) -> Option<(Instant, usize, u64)> {
        match self.heap.peek() {
            Some(Reverse((t, _, _))) if *t <= horizon => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::timing::{coalescing_window, keepalive_due, timer_at, GUARD};
    use std::time::Duration;

    #[test]
    fn heap_pops_in_deadline_order_up_to_horizon() {
        let base = Instant::now();
        let mut t = Timers::new();
        t.push(base + Duration::from_millis(30), 3, 0);
        t.push(base + Duration::from_millis(10), 1, 0);
        t.push(base + Duration::from_millis(20), 2, 0);
        assert_eq!(t.next(), Some(base + Duration::from_millis(10)));
        let h = base + Duration::from_millis(20);
        assert_eq!(t.pop_until(h).map(|e| e.1), Some(1));
        assert_eq!(t.pop_until(h).map(|e| e.1), Some(2));
        assert_eq!(t.pop_until(h), None);
        assert_eq!(t.len(), 1);
    }

    /// Simulates many channels with random intervals and last-traffic times through the exact
    /// scheduling rules the reactor uses, with wake-ups only when a timer says so, and checks
    /// that no keep-alive is ever late and that coalescing reduces wake-ups.
    #[test]
    fn coalescing_simulation_is_never_late_and_saves_wakeups() {
        let start = Instant::now();
        let n = 500usize;
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let run = |global: Duration, rnd: &mut dyn FnMut() -> u64| -> (u64, u64) {
            let intervals: Vec<Duration> = (0..n).map(|_| Duration::from_millis(1000 + rnd() % 4000)).collect();
            let mut last: Vec<Instant> = (0..n).map(|_| start + Duration::from_millis(rnd() % 1000)).collect();
            let mut timers = Timers::new();
            for i in 0..n {
                timers.push(timer_at(last[i] + intervals[i]), i, 0);
            }
            let end = start + Duration::from_secs(60);
            let mut now = start;
            let mut wakeups = 0u64;
            let mut sent = 0u64;
            // Bounded: each wake-up advances time or sends at least one keep-alive.
            for _ in 0..1_000_000 {
                let Some(next) = timers.next() else { break };
                if next > end {
                    break;
                }
                now = now.max(next);
                wakeups += 1;
                let horizon = now + global.max(GUARD);
                let mut repush = Vec::new();
                while let Some((_, i, _)) = timers.pop_until(horizon) {
                    let deadline = last[i] + intervals[i];
                    let w = coalescing_window(global, intervals[i]);
                    if keepalive_due(deadline, now, w) {
                        assert!(now <= deadline, "keep-alive late by {:?}", now - deadline);
                        last[i] = now;
                        sent += 1;
                        repush.push((timer_at(now + intervals[i]), i));
                    } else {
                        repush.push((timer_at(deadline), i));
                    }
                }
                for (t, i) in repush {
                    timers.push(t, i, 0);
                }
            }
            (wakeups, sent)
        };
        let (w_plain, s_plain) = run(Duration::ZERO, &mut rnd);
        let (w_coal, s_coal) = run(Duration::from_millis(1000), &mut rnd);
        assert!(s_plain > 0 && s_coal > 0);
        assert!(w_coal * 3 < w_plain, "coalescing should cut wake-ups: {w_coal} vs {w_plain}");
    }
}
