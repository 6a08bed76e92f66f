//! Adaptive keep-alive behind the NAT simulator (`tests/peer/proxy.py --nat-timeout-ms 2000`):
//! with a server interval of 8 s an adaptive channel converges into [0.4·T, T) and then holds
//! with no loss, while a fixed-interval channel through the same NAT loses its connection on
//! every keep-alive. Both channels reconnect (policy), and losses are counted. ~48 s.

mod nat;

use std::time::Duration;

use ctrlchan::{EventKind, Runtime};
use nat::{channel, echo_server, nat_or_skip, Recorder};

const T_MS: u32 = 2_000;
const RUN: Duration = Duration::from_secs(48);
/// The adaptive channel must have settled by then and hold without loss afterwards.
const SETTLED_BY_S: f64 = 30.0;

#[test]
fn adaptive_converges_below_the_nat_timeout_and_holds_while_fixed_loses_every_time() {
    let server = echo_server();
    let Some(_nat) = nat_or_skip(server, T_MS) else { return };
    let rt = Runtime::new().expect("runtime");
    rt.set_coalescing_window(0).expect("exact gaps");
    let (ra, rf) = (Recorder::new(), Recorder::new());
    // min 650 ms: the ramp (0.65, 1.3, 2.6 s) and the bisection (1.84, 2.08 s) keep >= 80 ms clear of T.
    let (_wa, ca) = channel(&rt, _nat.port, "adaptive", 8_000, Some((650, 8_000)), &ra);
    let (_wf, cf) = channel(&rt, _nat.port, "fixed", 8_000, None, &rf);
    assert_eq!(ca.current_keepalive_interval_ms(), 650, "the learner starts at min");
    std::thread::sleep(RUN);

    let learned = ca.current_keepalive_interval_ms();
    let sa = ca.statistics();
    let sf = cf.statistics();
    println!("NAT T = {T_MS} ms, server interval 8000 ms, run {} s", RUN.as_secs());
    println!("adaptive (650..8000 ms):\n{}", ra.describe());
    println!(
        "adaptive: learned {learned} ms = {:.2} T; keep-alives sent {} acked {}; losses {} (after {SETTLED_BY_S} s: {})",
        learned as f64 / T_MS as f64,
        sa.keepalives_sent,
        sa.keepalives_acked,
        ra.losses_since(0.0),
        ra.losses_since(SETTLED_BY_S)
    );
    println!(
        "fixed 8000 ms: keep-alives sent {} acked {}; losses {}",
        sf.keepalives_sent,
        sf.keepalives_acked,
        rf.losses_since(0.0)
    );

    let lo = T_MS as f64 * 0.4;
    assert!((lo..T_MS as f64).contains(&(learned as f64)), "learned {learned} ms is outside [0.4·T, T)");
    assert_eq!(sa.current_interval_ms, learned, "the stats report the learned value");
    let last_move = ra.intervals().last().map_or(0.0, |m| m.0);
    assert!(last_move < SETTLED_BY_S, "still moving at {last_move:.1} s:\n{}", ra.describe());
    assert_eq!(ra.losses_since(SETTLED_BY_S), 0, "lost a connection after settling:\n{}", ra.describe());
    assert!(ra.losses_since(0.0) <= 3, "learning cost more than 3 connections:\n{}", ra.describe());
    assert!(sa.keepalives_acked >= 15, "the adaptive channel kept acknowledging: {sa:?}");
    // Fixed: every keep-alive (8 s idle > T) finds the mapping gone.
    assert_eq!(sf.keepalives_acked, 0, "no fixed keep-alive can survive a 2 s NAT: {sf:?}");
    assert!(rf.losses_since(0.0) >= 4, "fixed lost only {} connections", rf.losses_since(0.0));
    assert!(rf.losses_since(0.0) as u64 >= sf.keepalives_sent.saturating_sub(1), "a loss per keep-alive: {sf:?}");
    assert!(ra.all().iter().all(|e| e.1 != EventKind::TransportDisconnected), "the policy never gave up");
}
