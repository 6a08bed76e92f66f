//! The runtime's one timer structure: a few FIFO lanes of (deadline, connection slot, serial)
//! entries, each sorted by construction, with a min-heap for entries that fit no lane; lazy
//! deletion (stale entries are skipped when they surface).
//!
//! Why lanes: a steady-state keep-alive pushes `now + interval` (the next keep-alive) and
//! `now + pong timeout` (the pong deadline), and `now` only grows, so each kind of push forms a
//! non-decreasing sequence. A push goes to the lane whose last entry is the latest one not after
//! it (patience sorting, best fit), so those sequences land in their own lanes: push and pop are
//! O(number of lanes) = O(1) instead of a heap's O(log N), and the cost per keep-alive stays flat
//! as the number of connections grows. Anything out of order (a deadline computed from older
//! traffic) falls back to the heap once every lane is taken.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// At most this many lanes (each a sorted FIFO); further out-of-order entries use the heap.
const MAX_LANES: usize = 8;

type Entry = (Instant, usize, u64);

#[derive(Default)]
pub struct Timers {
    lanes: Vec<VecDeque<Entry>>,
    heap: BinaryHeap<Reverse<Entry>>,
    len: usize,
}

/// Where the earliest entry is.
#[derive(Clone, Copy)]
enum Src {
    Lane(usize),
    Heap,
}

impl Timers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, at: Instant, slot: usize, serial: u64) {
        let e = (at, slot, serial);
        self.len += 1;
        // Best fit: the non-empty lane with the latest last entry not after `at`; else an empty
        // lane; else a new lane; else the heap.
        let mut best: Option<(usize, Instant)> = None;
        let mut empty = None;
        for (i, lane) in self.lanes.iter().enumerate() {
            match lane.back() {
                Some(&(t, _, _)) if t <= at && best.is_none_or(|(_, b)| t > b) => best = Some((i, t)),
                None if empty.is_none() => empty = Some(i),
                _ => {}
            }
        }
        let lane = best.map(|(i, _)| i).or(empty);
        if let Some(i) = lane {
            self.lanes[i].push_back(e);
        } else if self.lanes.len() < MAX_LANES {
            self.lanes.push(VecDeque::from([e]));
        } else {
            self.heap.push(Reverse(e));
        }
    }

    fn earliest(&self) -> Option<(Src, Entry)> {
        let mut best: Option<(Src, Entry)> = self.heap.peek().map(|Reverse(e)| (Src::Heap, *e));
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(&e) = lane.front() {
                if best.is_none_or(|(_, b)| e < b) {
                    best = Some((Src::Lane(i), e));
                }
            }
        }
        best
    }

    pub fn peek(&self) -> Option<Entry> {
        self.earliest().map(|(_, e)| e)
    }

    pub fn next(&self) -> Option<Instant> {
        self.peek().map(|(t, _, _)| t)
    }

    /// Pops the earliest entry if it is at or before `horizon`.
    pub fn pop_until(&mut self, horizon: Instant) -> Option<Entry> {
        let (src, e) = self.earliest()?;
        if e.0 > horizon {
            return None;
        }
        let popped = match src {
            Src::Lane(i) => self.lanes.get_mut(i).and_then(VecDeque::pop_front),
            Src::Heap => self.heap.pop().map(|Reverse(e)| e),
        };
        if popped.is_some() {
            self.len -= 1;
        }
        popped
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many entries sit in the fallback heap (tests and diagnostics).
    pub fn in_heap(&self) -> usize {
        self.heap.len()
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

    /// Several interleaved non-decreasing sequences (keep-alive re-arms, pong deadlines) plus
    /// out-of-order entries: everything comes out in deadline order, none lost, and the
    /// sequences stay in lanes (no heap work in the steady state).
    #[test]
    fn lanes_pop_in_order_and_keep_sequences_out_of_the_heap() {
        let base = Instant::now();
        let ms = |m: u64| base + Duration::from_millis(m);
        let mut t = Timers::new();
        let mut seed = 0x9E3779B97F4A7C15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut want = Vec::new();
        for now in 0..2000u64 {
            for (k, d) in [(0usize, 30_000u64), (1, 5_000)] {
                t.push(ms(now + d), k, now);
                want.push((ms(now + d), k, now));
            }
        }
        assert_eq!(t.in_heap(), 0, "monotone sequences never need the heap");
        for i in 0..500u64 {
            let at = ms(rnd() % 40_000);
            t.push(at, 9, i);
            want.push((at, 9, i));
        }
        assert_eq!(t.len(), want.len());
        want.sort();
        let mut got = Vec::new();
        while let Some(e) = t.pop_until(ms(1_000_000)) {
            got.push(e);
        }
        let mut sorted = got.clone();
        sorted.sort_by_key(|e| e.0);
        assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), sorted.iter().map(|e| e.0).collect::<Vec<_>>());
        got.sort();
        assert_eq!(got, want);
        assert!(t.is_empty() && t.next().is_none());
        // Equal deadlines in one lane come out first in, first out.
        t.push(ms(5), 1, 0);
        t.push(ms(5), 2, 0);
        t.push(ms(5), 3, 0);
        let order: Vec<usize> = std::iter::from_fn(|| t.pop_until(ms(5)).map(|e| e.1)).collect();
        assert_eq!(order, vec![1, 2, 3]);
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
