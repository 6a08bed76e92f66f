//! At most [`MAX_HANDSHAKES`] connects run at once per runtime and destination; the rest wait
//! their turn in arrival order (`Life::Queued`). Per destination, because a host that never
//! answers (black-holed, or a server stuck before the upgrade) would otherwise hold every turn
//! for a whole connect timeout and make connects to healthy servers fail in the queue.
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
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;

/// Connects (TCP + proxy tunnel + TLS + upgrade) in progress at once per runtime and destination.
pub(crate) const MAX_HANDSHAKES: usize = 64;

/// Where a connect goes first (the server, or the proxy when proxied): the unit the limit applies
/// to, so that connects stuck at one host (black-holed, or a server that never answers) do not
/// hold back connects to others. `None`: no address (such a connect fails at once).
pub(crate) type Dest = Option<SocketAddr>;

/// One connect in progress; dropping it lets the next queued connect start.
pub(crate) struct Permit(Rc<Cell<usize>>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

#[derive(Default)]
struct Line {
    in_flight: Rc<Cell<usize>>,
    waiting: VecDeque<(usize, u64)>,
}

/// The runtime's connect gate (reactor thread only): one line per destination.
pub(crate) struct Gate {
    limit: usize,
    lines: HashMap<Dest, Line>,
    /// Destinations whose line has waiting entries (each once).
    queued: Vec<Dest>,
    /// Idle lines are dropped when the map grows past this (amortized: it doubles).
    sweep_at: usize,
}

impl Gate {
    pub(crate) fn new(limit: usize) -> Gate {
        Gate { limit: limit.max(1), lines: HashMap::new(), queued: Vec::new(), sweep_at: 64 }
    }

    fn line(&mut self, dest: Dest) -> &mut Line {
        if self.lines.len() >= self.sweep_at && !self.lines.contains_key(&dest) {
            self.lines.retain(|_, l| l.in_flight.get() > 0 || !l.waiting.is_empty());
            self.sweep_at = (self.lines.len() * 2).max(64);
        }
        self.lines.entry(dest).or_default()
    }

    /// A permit if fewer than the limit are in flight to `dest` and nobody waits for it (first
    /// come, first served per destination: a new connect does not overtake queued ones).
    pub(crate) fn try_take(&mut self, dest: Dest) -> Option<Permit> {
        let limit = self.limit;
        let line = self.line(dest);
        (line.waiting.is_empty() && line.in_flight.get() < limit).then(|| take(line))
    }

    /// The connection in `slot` (with `serial`) waits for a permit to `dest`.
    pub(crate) fn wait(&mut self, dest: Dest, slot: usize, serial: u64) {
        let line = self.line(dest);
        line.waiting.push_back((slot, serial));
        if line.waiting.len() == 1 {
            self.queued.push(dest);
        }
    }

    /// The waiting connections that may start now, with their permits. Bounded by the entries
    /// waiting: each is returned once.
    pub(crate) fn admit(&mut self) -> Vec<((usize, u64), Permit)> {
        let mut out = Vec::new();
        if self.queued.is_empty() {
            return out;
        }
        let limit = self.limit;
        let lines = &mut self.lines;
        self.queued.retain(|dest| {
            let Some(line) = lines.get_mut(dest) else { return false };
            while line.in_flight.get() < limit {
                let Some(next) = line.waiting.pop_front() else { break };
                out.push((next, take(line)));
            }
            !line.waiting.is_empty()
        });
        out
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self, dest: Dest) -> usize {
        self.lines.get(&dest).map_or(0, |l| l.in_flight.get())
    }
}

fn take(line: &Line) -> Permit {
    line.in_flight.set(line.in_flight.get() + 1);
    Permit(line.in_flight.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Dest = Some(SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1));
    const B: Dest = Some(SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 2));

    #[test]
    fn permits_are_bounded_and_returned_on_drop() {
        let mut g = Gate::new(2);
        let a = g.try_take(A);
        let b = g.try_take(A);
        assert!(a.is_some() && b.is_some());
        assert!(g.try_take(A).is_none());
        g.wait(A, 7, 1);
        g.wait(A, 8, 2);
        assert!(g.admit().is_empty(), "no permit is free yet");
        drop(a);
        let mut now = g.admit();
        assert_eq!(now.len(), 1, "one permit was freed");
        let ((slot, serial), p) = now.remove(0);
        assert_eq!((slot, serial), (7, 1));
        drop(p);
        drop(b);
        let next: Vec<_> = g.admit().into_iter().map(|(w, _)| w).collect();
        assert_eq!(next, vec![(8, 2)]);
        assert_eq!(g.in_flight(A), 0, "the permit of the last entry was dropped at once");
        assert!(g.admit().is_empty(), "the queue is empty");
    }

    #[test]
    fn a_new_connect_does_not_overtake_the_queue() {
        let mut g = Gate::new(1);
        let held = g.try_take(A);
        g.wait(A, 1, 1);
        drop(held);
        assert!(g.try_take(A).is_none(), "slot 1 is first");
        assert_eq!(g.admit().len(), 1);
    }

    #[test]
    fn a_full_destination_does_not_hold_back_another() {
        let mut g = Gate::new(2);
        let _held: Vec<_> = (0..2).filter_map(|_| g.try_take(A)).collect();
        g.wait(A, 1, 1);
        assert!(g.try_take(B).is_some(), "B has its own line");
        assert!(g.admit().is_empty(), "A is still full");
    }

    #[test]
    fn idle_lines_are_dropped() {
        let mut g = Gate::new(4);
        for port in 0..10_000u16 {
            let d = Some(SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), port));
            drop(g.try_take(d));
        }
        assert!(g.lines.len() <= 128, "{} lines kept", g.lines.len());
    }
}
