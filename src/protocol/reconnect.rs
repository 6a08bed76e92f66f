//! Reconnect rules (pure): which losses are retried, and the backoff schedule.
//!
//! Retried: every abrupt loss (EOF, RST, I/O error, pong timeout, close-handshake timeout),
//! connect failures (refused, timeout, name resolution), a refused upgrade with HTTP 408, 429 or
//! 5xx, and close codes 1001, 1006, 1011, 1012, 1013 and 1014. Never retried: a close or free by
//! the application, TLS failures (certificate verification included), other HTTP 4xx (401 and
//! 403 among them), a subprotocol or extension mismatch, and the server's close codes 1000
//! (normal closure: the server meant it), 1008 (policy violation), 1002/1003/1007/1009/1010
//! (the same bytes would fail again) and 4000-4999 (application-defined: the app decides, e.g.
//! by binding a new transport).
//!
//! Backoff: the first retry waits a random time in [0, initial] (RFC 6455 section 7.2.3, so a
//! server restart does not bring every client back at once); each further retry waits the
//! previous delay times the multiplier, capped, randomised by +/- jitter. A connection that
//! stays open for [`stable_after`] resets the schedule.

use std::time::Duration;

use crate::error::{Error, ResultCode};
use crate::types::ReconnectPolicy;

/// Checks a policy's fields.
pub fn validate(p: &ReconnectPolicy) -> Result<(), Error> {
    if p.max_delay_ms == 0 || p.initial_delay_ms > p.max_delay_ms {
        return Err(Error::invalid_argument(format!(
            "reconnect policy: need 0 <= initial_delay_ms ({}) <= max_delay_ms ({}) and max_delay_ms > 0",
            p.initial_delay_ms, p.max_delay_ms
        )));
    }
    if !(100..=1_000).contains(&p.multiplier_percent) {
        return Err(Error::invalid_argument(format!(
            "reconnect policy: multiplier_percent {} is outside 100..=1000",
            p.multiplier_percent
        )));
    }
    if p.jitter_percent > 100 {
        return Err(Error::invalid_argument(format!(
            "reconnect policy: jitter_percent {} is outside 0..=100",
            p.jitter_percent
        )));
    }
    Ok(())
}

/// Whether a lost open connection is retried. `close_code`: the peer's close code if the loss
/// was a close frame.
pub fn loss_is_retried(result: ResultCode, close_code: Option<u16>) -> bool {
    match close_code {
        Some(code) => matches!(code, 1001 | 1006 | 1011..=1014),
        None => matches!(result, ResultCode::Io | ResultCode::Timeout | ResultCode::Ok),
    }
}

/// Whether a failed reconnect attempt is retried.
pub fn connect_error_is_retried(e: &Error) -> bool {
    match e.code {
        ResultCode::ConnectFailed | ResultCode::Timeout | ResultCode::Io => true,
        // An unreachable or vanished proxy (no answer, status 0) or a gateway error is retried;
        // a refusal or wrong credentials (401, 403, 407, SOCKS5 authentication) is not.
        ResultCode::ProxyFailed => match e.http_status {
            0 | 408 | 429 => true,
            s => (500..=599).contains(&s),
        },
        ResultCode::HandshakeFailed => match e.http_status {
            0 => e.message.contains("closed the connection"),
            408 | 429 => true,
            s => (500..=599).contains(&s),
        },
        _ => false,
    }
}

/// How long a connection must stay open for the backoff to start over.
pub fn stable_after(p: &ReconnectPolicy) -> Duration {
    Duration::from_millis(p.max_delay_ms.clamp(1_000, 60_000) as u64)
}

/// A small PRNG (xorshift64*) for jitter; not for secrets.
#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Jitter(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, n].
    pub fn upto(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % (n + 1)
        }
    }
}

/// Where a channel is in its backoff schedule.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    /// Attempts made since the schedule started (the next one is `attempt + 1`).
    pub attempt: u32,
    /// The un-jittered delay of the last attempt, in ms.
    base_ms: u64,
}

impl Backoff {
    /// The delay before the next attempt, and that attempt's number; `None` when the policy's
    /// attempts are used up. `immediate`: a probe found the loss (network change, resume): the
    /// first attempt goes at once.
    pub fn next(&mut self, p: &ReconnectPolicy, rng: &mut Jitter, immediate: bool) -> Option<(u32, u32)> {
        if p.max_attempts != 0 && self.attempt >= p.max_attempts {
            return None;
        }
        self.attempt += 1;
        let max = p.max_delay_ms as u64;
        let delay = if self.attempt == 1 {
            self.base_ms = (p.initial_delay_ms as u64).max(1);
            if immediate {
                0
            } else {
                rng.upto(p.initial_delay_ms as u64)
            }
        } else {
            self.base_ms = (self.base_ms * p.multiplier_percent as u64 / 100).clamp(1, max);
            let spread = self.base_ms * p.jitter_percent as u64 / 100;
            let low = self.base_ms.saturating_sub(spread);
            (low + rng.upto(2 * spread)).min(max)
        };
        Some((self.attempt, delay.min(u32::MAX as u64) as u32))
    }

    /// The connection was stable: start over.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_validation() {
        assert!(validate(&ReconnectPolicy::default()).is_ok());
        let bad = [
            ReconnectPolicy { max_delay_ms: 0, initial_delay_ms: 0, ..Default::default() },
            ReconnectPolicy { initial_delay_ms: 10, max_delay_ms: 5, ..Default::default() },
            ReconnectPolicy { multiplier_percent: 99, ..Default::default() },
            ReconnectPolicy { jitter_percent: 101, ..Default::default() },
        ];
        for p in bad {
            assert!(validate(&p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn retry_table() {
        for c in [1001, 1006, 1011, 1012, 1013, 1014] {
            assert!(loss_is_retried(ResultCode::Ok, Some(c)), "{c}");
        }
        for c in [1000, 1002, 1003, 1007, 1008, 1009, 1010, 4000, 4999] {
            assert!(!loss_is_retried(ResultCode::Ok, Some(c)), "{c}");
        }
        assert!(loss_is_retried(ResultCode::Io, None));
        assert!(loss_is_retried(ResultCode::Timeout, None));
        assert!(!loss_is_retried(ResultCode::TlsFailed, None));
        let refused = |s: u16| Error::new(ResultCode::HandshakeFailed, "refused").with_http_status(s);
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(connect_error_is_retried(&refused(s)), "{s}");
        }
        for s in [400, 401, 403, 404, 426] {
            assert!(!connect_error_is_retried(&refused(s)), "{s}");
        }
        assert!(connect_error_is_retried(&Error::new(ResultCode::ConnectFailed, "refused")));
        assert!(connect_error_is_retried(&Error::new(ResultCode::Timeout, "t")));
        assert!(!connect_error_is_retried(&Error::new(ResultCode::TlsFailed, "bad cert")));
        assert!(!connect_error_is_retried(&Error::new(ResultCode::HandshakeFailed, "subprotocol 'x' not offered")));
    }

    #[test]
    fn first_delay_is_within_initial_then_grows_to_the_cap() {
        let p = ReconnectPolicy {
            initial_delay_ms: 1000,
            max_delay_ms: 8000,
            multiplier_percent: 200,
            jitter_percent: 10,
            max_attempts: 6,
        };
        let mut rng = Jitter::new(7);
        let mut firsts = Vec::new();
        for _ in 0..200 {
            let mut b = Backoff::default();
            let (n, d) = b.next(&p, &mut rng, false).expect("first"); // ok: test
            assert_eq!(n, 1);
            assert!(d <= 1000);
            firsts.push(d);
        }
        // Spread: no thundering herd.
        let min = firsts.iter().min().copied().unwrap_or(0);
        let max = firsts.iter().max().copied().unwrap_or(0);
        assert!(max - min > 800, "first delays spread only {min}..{max}");
        let mut b = Backoff::default();
        let delays: Vec<u32> = std::iter::from_fn(|| b.next(&p, &mut rng, false).map(|x| x.1)).collect();
        assert_eq!(delays.len(), 6);
        // 2000, 4000, 8000 (cap), 8000, 8000 each +/- 10 %, never above the cap.
        for (d, base) in delays[1..].iter().zip([2000u32, 4000, 8000, 8000, 8000]) {
            assert!(*d >= base - base / 10 && *d <= (base + base / 10).min(8000), "{d} vs {base}");
        }
        let mut b = Backoff::default();
        assert_eq!(b.next(&p, &mut rng, true), Some((1, 0)));
        b.reset();
        assert_eq!(b.attempt, 0);
    }

    #[test]
    fn unlimited_attempts_keep_going() {
        let p = ReconnectPolicy { max_attempts: 0, ..Default::default() };
        let mut b = Backoff::default();
        let mut rng = Jitter::new(1);
        for _ in 0..1000 {
            assert!(b.next(&p, &mut rng, false).is_some());
        }
    }
}
