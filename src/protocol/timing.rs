//! Keep-alive timing rules (pure functions, no I/O): never late, coalesced early.

use std::time::{Duration, Instant};

/// Keep-alive timers fire this much before the deadline so that wake-up latency never makes a
/// keep-alive late.
pub const GUARD: Duration = Duration::from_millis(2);

/// How early a channel's keep-alive may be sent so that it shares a wake-up with others:
/// the runtime's coalescing window, capped at a quarter of the channel's interval.
pub fn coalescing_window(global: Duration, interval: Duration) -> Duration {
    global.min(interval / 4)
}

/// A keep-alive whose deadline is `deadline` is sent at a wake-up at `now` when it is due within
/// its window (or the guard). Sending early is allowed; sending after `deadline` never happens
/// as long as a wake-up occurs at or after `timer_at(deadline)`.
pub fn keepalive_due(deadline: Instant, now: Instant, window: Duration) -> bool {
    deadline <= now + window.max(GUARD)
}

/// When to wake up for a keep-alive due at `deadline`.
pub fn timer_at(deadline: Instant) -> Instant {
    deadline.checked_sub(GUARD).unwrap_or(deadline)
}

/// When the next keep-alive is due. For the NAT's sake: never later than `interval` after the
/// last outbound traffic (outbound data counts as a keep-alive). For liveness (`last_inbound` is
/// `Some` while a PING-mode probe is not already outstanding): a probe is due `interval` after
/// the last inbound traffic (pong or data), whatever we send, so a dead peer is found within
/// interval + pong timeout of its last sign of life.
pub fn keepalive_deadline(last_outbound: Instant, last_inbound: Option<Instant>, interval: Duration) -> Instant {
    let nat = last_outbound + interval;
    match last_inbound {
        Some(t) => nat.min(t + interval),
        None => nat,
    }
}

/// Poll timeout for the next timer, rounded up to whole milliseconds (epoll's resolution).
pub fn poll_timeout(next: Option<Instant>, now: Instant) -> Option<Duration> {
    next.map(|t| {
        let d = t.saturating_duration_since(now);
        let ms = d.as_nanos().div_ceil(1_000_000);
        Duration::from_millis(ms.min(u64::MAX as u128) as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_capped_by_interval() {
        assert_eq!(coalescing_window(Duration::from_secs(1), Duration::from_secs(30)), Duration::from_secs(1));
        assert_eq!(coalescing_window(Duration::from_secs(1), Duration::from_millis(400)), Duration::from_millis(100));
        assert_eq!(coalescing_window(Duration::ZERO, Duration::from_secs(1)), Duration::ZERO);
    }

    #[test]
    fn due_only_within_window() {
        let now = Instant::now();
        let w = Duration::from_millis(100);
        assert!(keepalive_due(now + Duration::from_millis(100), now, w));
        assert!(!keepalive_due(now + Duration::from_millis(101), now, w));
        assert!(keepalive_due(now, now, Duration::ZERO));
        // The guard always applies so that a timer fired at timer_at() never misses.
        let d = now + GUARD;
        assert!(keepalive_due(d, timer_at(d), Duration::ZERO));
    }

    #[test]
    fn outbound_data_postpones_the_nat_keepalive_but_not_the_liveness_probe() {
        let t0 = Instant::now();
        let i = Duration::from_secs(1);
        // Idle: both rules agree (the pong came back rtt after the ping).
        let rtt = Duration::from_millis(5);
        assert_eq!(keepalive_deadline(t0, Some(t0 + rtt), i), t0 + i);
        // Busy sender, silent peer: the last inbound decides.
        let sent = t0 + Duration::from_millis(2700);
        assert_eq!(keepalive_deadline(sent, Some(t0), i), t0 + i);
        // A probe is outstanding (or UNSOLICITED_PONG mode): only outbound traffic counts.
        assert_eq!(keepalive_deadline(sent, None, i), sent + i);
        // Inbound data keeps the peer proven alive: no earlier probe than the NAT rule.
        assert_eq!(keepalive_deadline(t0, Some(sent), i), t0 + i);
    }

    #[test]
    fn poll_timeout_rounds_up() {
        let now = Instant::now();
        assert_eq!(poll_timeout(Some(now + Duration::from_micros(1500)), now), Some(Duration::from_millis(2)));
        assert_eq!(poll_timeout(Some(now), now), Some(Duration::ZERO));
        assert_eq!(poll_timeout(None, now), None);
    }
}
