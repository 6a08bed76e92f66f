//! Adaptive keep-alive's memory across runs: the state file survives a runtime restart (the
//! new runtime starts at the learned value, no probe), a malformed file is ignored with a
//! warning, and the C-side argument checks. No NAT needed: on a path with no idle timeout the
//! learner ramps to `max` and settles there.

mod nat;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ctrlchan::{EventKind, ResultCode, Runtime};
use nat::{channel, echo_server, Recorder};

fn has_default_route() -> bool {
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    v4.lines().skip(1).any(|l| l.split_whitespace().nth(1) == Some("00000000"))
        || v6.lines().any(|l| l.starts_with("00000000000000000000000000000000 00"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ctrlchan-adaptive-state-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d.join(name)
}

#[test]
fn learned_interval_survives_a_runtime_restart() {
    if !has_default_route() {
        eprintln!("skipped: no default route, so no network key to file values under");
        return;
    }
    let path = tmp("restart.txt");
    let _ = std::fs::remove_file(&path);
    let server = echo_server();
    {
        let rt = Runtime::new().expect("runtime");
        rt.set_coalescing_window(0).expect("exact");
        rt.set_state_file(Some(&path)).expect("state file");
        assert_eq!(rt.state_file().as_deref(), Some(path.as_path()));
        let rec = Recorder::new();
        let (_ws, ch) = channel(&rt, server, "learn", 8_000, Some((300, 1_200)), &rec);
        // 0.3 → 0.6 → 1.2 (max): 3 acks each.
        let end = Instant::now() + Duration::from_secs(12);
        while ch.current_keepalive_interval_ms() < 1_200 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(ch.current_keepalive_interval_ms(), 1_200, "ramped to max:\n{}", rec.describe());
        assert_eq!(rec.intervals().iter().map(|m| m.1).collect::<Vec<_>>(), vec![600, 1_200]);
        // Only acknowledged gaps are filed: let three keep-alives at max be acknowledged.
        std::thread::sleep(Duration::from_millis(4_000));
        rt.shutdown().expect("shutdown saves");
    }
    let text = std::fs::read_to_string(&path).expect("the file was written");
    assert!(text.starts_with("ctrlchan-adaptive v1") && text.contains("127.0.0.1:"), "{text}");

    let rt = Runtime::new().expect("runtime 2");
    rt.set_state_file(Some(&path)).expect("state file");
    assert!(rt.adaptive_warnings().is_empty(), "{:?}", rt.adaptive_warnings());
    let rec = Recorder::new();
    let (_ws, ch) = channel(&rt, server, "restored", 8_000, Some((300, 1_200)), &rec);
    // What is filed is the longest acknowledged idle gap: the interval minus the pong's RTT.
    let remembered = 1_100..=1_200;
    let end = Instant::now() + Duration::from_secs(3);
    while !remembered.contains(&ch.current_keepalive_interval_ms()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let restored = ch.current_keepalive_interval_ms();
    assert!(remembered.contains(&restored), "starts at the remembered value, not {restored} ms");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rec.intervals().iter().map(|m| m.1).collect::<Vec<_>>(), vec![restored], "one move, no probe");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn malformed_state_file_is_ignored_with_a_warning_and_replaced() {
    let path = tmp("bad.txt");
    std::fs::write(&path, "garbage\x00\nmore garbage\n").expect("write");
    let rt = Runtime::new().expect("runtime");
    rt.set_state_file(Some(&path)).expect("a malformed file is not an error");
    let w = rt.adaptive_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("bad.txt") && w[0].contains("not a ctrlchan-adaptive v1 file"), "{w:?}");
    let rec = Recorder::new();
    let server = echo_server();
    let (_ws, ch) = channel(&rt, server, "fresh", 8_000, Some((500, 4_000)), &rec);
    assert_eq!(ch.current_keepalive_interval_ms(), 500, "learning starts from min");
    // None = memory only; the path is forgotten.
    rt.set_state_file(None).expect("off");
    assert_eq!(rt.state_file(), None);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn settings_are_checked_and_read_back_and_off_restores_the_server_interval() {
    let rt = Runtime::new().expect("runtime");
    let rec = Recorder::new();
    let server = echo_server();
    let (_ws, ch) = channel(&rt, server, "args", 8_000, None, &rec);
    assert_eq!(ch.adaptive_keepalive(), None);
    for (lo, hi) in [(99, 1_000), (2_000, 1_000), (0, 1_000), (100, 86_400_001)] {
        let e = ch.set_adaptive_keepalive(lo, hi).expect_err("invalid range");
        assert_eq!(e.code, ResultCode::InvalidArgument, "{lo}..{hi}");
    }
    ch.set_adaptive_keepalive(100, 100).expect("min = max is fine");
    ch.set_adaptive_keepalive(1_000, 60_000).expect("on");
    assert_eq!(ch.adaptive_keepalive(), Some((1_000, 60_000)));
    assert_eq!(ch.current_keepalive_interval_ms(), 1_000);
    std::thread::sleep(Duration::from_millis(200)); // the runtime thread builds the learner
                                                    // The app says it is too long: the learner halves (not below min) on the runtime thread.
    ch.set_adaptive_keepalive(500, 60_000).expect("wider");
    assert_eq!(ch.current_keepalive_interval_ms(), 1_000, "a running learner keeps its value");
    ch.decrease_network_keepalive_interval().expect("decrease");
    let end = Instant::now() + Duration::from_secs(2);
    while ch.current_keepalive_interval_ms() != 500 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(ch.current_keepalive_interval_ms(), 500, "{}", rec.describe());
    std::thread::sleep(Duration::from_millis(100));
    assert!(rec.all().iter().any(|e| e.1 == EventKind::IntervalChanged && e.2 == 500), "{}", rec.describe());
    // A server interval below the learned value caps it.
    ch.set_server_keepalive_interval_ms(300).expect("server");
    assert_eq!(ch.current_keepalive_interval_ms(), 300);
    ch.set_adaptive_keepalive(0, 0).expect("off");
    assert_eq!(ch.adaptive_keepalive(), None);
    assert_eq!(ch.current_keepalive_interval_ms(), 300, "off: the server interval again");
    drop(Arc::clone(&rt));
}
