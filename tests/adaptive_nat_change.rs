//! Adaptive keep-alive when the NAT's timeout changes mid-run: T = 2 s, then 1 s (the learner
//! sees two deaths at a gap that used to work, restarts from min and re-settles below 1 s), then
//! 4 s (the next re-probe, shortened with `CTRLCHAN_TEST_REPROBE_MS`, finds the longer timeout
//! and the learner moves above the old bound). ~55 s.

mod nat;

use std::time::{Duration, Instant};

use ctrlchan::Runtime;
use nat::{channel, echo_server, nat_or_skip, Recorder};

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn the_learner_notices_a_shorter_then_longer_nat_timeout_and_resettles() {
    // Read when the learner is built: re-probe 4 s after settling (at least 10 intervals).
    std::env::set_var("CTRLCHAN_TEST_REPROBE_MS", "4000");
    let server = echo_server();
    let Some(mut nat) = nat_or_skip(server, 2_000) else { return };
    let rt = Runtime::new().expect("runtime");
    rt.set_coalescing_window(0).expect("exact gaps");
    let rec = Recorder::new();
    let (_ws, ch) = channel(&rt, nat.port, "adaptive", 8_000, Some((650, 8_000)), &rec);

    // Phase 1: T = 2 s. Settles in [0.8 s, 2 s).
    let settled = wait_until(Duration::from_secs(26), || {
        let i = ch.current_keepalive_interval_ms();
        rec.losses_since(0.0) >= 1 && (800..2_000).contains(&i) && i > 1_000
    });
    println!("T=2000 ms:\n{}", rec.describe());
    assert!(settled, "did not settle under T = 2 s: {} ms", ch.current_keepalive_interval_ms());
    let before = ch.current_keepalive_interval_ms();

    // Phase 2: T = 1 s. The learned value now dies; two strikes restart the search from min.
    nat.command("nat 1000");
    let t1 = rec.now();
    // Settled: below T and no move for 3 s (a bisection probe above T may still be under way).
    let resettled = wait_until(Duration::from_secs(25), || {
        let quiet = rec.intervals().last().is_none_or(|m| rec.now() - m.0 > 3.0);
        ch.current_keepalive_interval_ms() < 1_000 && quiet
    });
    let after = ch.current_keepalive_interval_ms();
    println!("T=1000 ms from {t1:.1} s:\n{}", rec.describe());
    println!("re-settled {before} ms -> {after} ms; losses since the change {}", rec.losses_since(t1));
    assert!(resettled && (400..1_000).contains(&after), "not re-settled below T = 1 s: {after} ms");

    // Phase 3: T = 4 s. The (shortened) re-probe finds that the old bound now works.
    nat.command("nat 4000");
    let t2 = rec.now();
    // Above 1.5 s: not just the re-probe of the old bound (~1 s), but the ramp that follows
    // once the re-probe was acknowledged.
    let grew = wait_until(Duration::from_secs(22), || ch.current_keepalive_interval_ms() > 1_500);
    println!("T=4000 ms from {t2:.1} s:\n{}", rec.describe());
    println!("interval now {} ms", ch.current_keepalive_interval_ms());
    assert!(grew, "the learner never moved beyond the old 1 s bound:\n{}", rec.describe());
}
