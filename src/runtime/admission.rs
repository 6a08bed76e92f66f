//! At most [`MAX_HANDSHAKES`] connects run at once per runtime; the rest wait their turn in
//! arrival order (`Life::Queued`).
//!
//! Why: a connect's temporaries (the HTTP upgrade, and for wss:// certificate parsing, path
//! building, key exchange and the transcript) are large next to what an open connection keeps.
//! When a thousand handshakes run at once, their temporaries interleave on the heap with the
//! long-lived state of the connections that finish first, and once the burst is over the
//! long-lived pieces sit scattered over pages whose rest is free. Measured with
//! `bench/run.sh --channels 1000` (glibc mallinfo2, free bytes in the arenas after the burst):
//! ~950 B per channel unbounded, ~150 B with 16–128 in flight, for ws:// and wss:// alike, with
//! the same connect time on loopback (the reactor is one thread: it never runs more than one
//! handshake step at a time anyway).
//!
//! A permit is held from the TCP connect until the connection is open or the attempt ended
//! (`Reactor::opened` / `Reactor::finish` drop it); dropping a connection drops its permit too,
//! so no path can leak one. The queue holds (slot, serial) pairs; an entry whose connection
//! has gone or moved on is skipped when it comes up.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Connects (TCP + proxy tunnel + TLS + upgrade) in progress at once per runtime.
pub(crate) const MAX_HANDSHAKES: usize = 64;

/// One connect in progress; dropping it lets the next queued connect start.
pub(crate) struct Permit(Rc<Cell<usize>>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// The runtime's connect gate (reactor thread only).
pub(crate) struct Gate {
    in_flight: Rc<Cell<usize>>,
    limit: usize,
    waiting: VecDeque<(usize, u64)>,
}

impl Gate {
    pub(crate) fn new(limit: usize) -> Gate {
        Gate { in_flight: Rc::new(Cell::new(0)), limit: limit.max(1), waiting: VecDeque::new() }
    }

    /// A permit if fewer than the limit are in flight and nobody is waiting (first come, first
    /// served: a new connect does not overtake queued ones).
    pub(crate) fn try_take(&self) -> Option<Permit> {
        (self.waiting.is_empty() && self.in_flight.get() < self.limit).then(|| self.take())
    }

    fn take(&self) -> Permit {
        self.in_flight.set(self.in_flight.get() + 1);
        Permit(self.in_flight.clone())
    }

    /// The connection in `slot` (with `serial`) waits for a permit.
    pub(crate) fn wait(&mut self, slot: usize, serial: u64) {
        self.waiting.push_back((slot, serial));
    }

    /// The next waiting connection and a permit for it, while permits are free.
    pub(crate) fn next(&mut self) -> Option<((usize, u64), Permit)> {
        if self.in_flight.get() >= self.limit {
            return None;
        }
        let next = self.waiting.pop_front()?;
        Some((next, self.take()))
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_and_returned_on_drop() {
        let mut g = Gate::new(2);
        let a = g.try_take();
        let b = g.try_take();
        assert!(a.is_some() && b.is_some());
        assert!(g.try_take().is_none());
        g.wait(7, 1);
        g.wait(8, 2);
        assert!(g.next().is_none(), "no permit is free yet");
        drop(a);
        let ((slot, serial), p) = g.next().expect("a permit was freed");
        assert_eq!((slot, serial), (7, 1));
        assert!(g.next().is_none());
        drop(p);
        drop(b);
        assert_eq!(g.next().map(|(w, _)| w), Some((8, 2)));
        assert_eq!(g.in_flight(), 0, "the permit of the last entry was dropped at once");
        assert!(g.next().is_none(), "the queue is empty");
    }

    #[test]
    fn a_new_connect_does_not_overtake_the_queue() {
        let mut g = Gate::new(1);
        let held = g.try_take();
        g.wait(1, 1);
        drop(held);
        assert!(g.try_take().is_none(), "slot 1 is first");
        assert!(g.next().is_some());
    }
}
