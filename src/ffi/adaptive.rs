//! The C ABI of adaptive keep-alive (issue 10): the learned network interval per channel and
//! the runtime's state file. The algorithm lives in `crate::protocol::adaptive`.

use std::ffi::c_char;

use super::args::{opt_str_arg, out_arg};
use super::boundary::ffi_fn;
use super::channel::ctrlchan_channel;
use super::handles::get;
use super::runtime::ctrlchan_runtime;
use crate::{Channel, Runtime};

/// Adaptive keep-alive (beyond Windows): the runtime learns the longest network keep-alive
/// interval the path (NATs, proxies, load balancers) tolerates, between `min_ms` and
/// `min(max_ms, server interval)`, per network (default route's interface + gateway + local
/// prefix) and per server host, and keep-alives follow it. `0, 0` turns it off (the default):
/// the network interval is the server interval again, as on Windows.
///
/// Each move of the interval is a `CTRLCHAN_EVENT_KIND_INTERVAL_CHANGED` event
/// (`ctrlchan_event_get_interval_ms`); it is in `CTRLCHAN_EVENT_MASK_DEFAULT` (only channels that
/// opted in raise it, and rarely: a few times while learning, once per network switch, twice
/// per re-probe); mask it out for Windows' exact quiet. `ctrlchan_channel_get_current_keepalive_interval`
/// and `ctrlchan_channel_stats.current_interval_ms` report the learned value.
/// `ctrlchan_channel_decrease_network_keepalive_interval` tells the learner the current value is
/// too long. The learner lives with the channel (it survives reconnects); what it learned is
/// kept in the runtime and, with `ctrlchan_runtime_set_state_file`, across runs. Until the
/// transport connects and the channel is push-enabled, the interval is `min_ms`.
///
/// Algorithm:
///
/// The learner keeps the current interval `I`, `good` (the longest idle gap that was
/// acknowledged) and `bad` (the shortest idle gap after which a connection died silently).
///
/// 1. **Start** at `min` and search, or hold the remembered interval (with its remembered upper
///    bound) as settled: a restart or a return to a known network costs no probe.
/// 2. **Run of successes.** An ack whose idle gap was at least 75 % of `I` is a
///    success at `I` (shorter gaps, because the app sent data, say nothing about `I`). After
///    3 successes in a row a longer interval is probed:
///    - no failing gap known: `2 · I` (doubling: proportional, so 1 s and 30 min
///      scales both take `log2(T/min)` steps);
///    - a failing gap `bad` known: the geometric midpoint `sqrt(good · bad)`, but never more than
///      80 % of `bad` (binary search in log space between last good and first bad);
///    - always capped at `max`. A candidate less than 10 % above `I` is not worth
///      a possible loss: the learner is **settled**, at `min(I, good)` when a failing gap is
///      known (keep-alives sent early to coalesce may not have tested all of `I`).
/// 3. **Silent death after a gap `d` longer than `good`** marks `d` too long (`bad = min(bad, d)`)
///    and settles at `min(good, 0.8 · bad)`, never below `min` (half of `I` when no
///    gap was ever acknowledged). A search ends after 2 losses (the ramp's first
///    loss and at most one bisection loss), so learning costs at most two lost connections.
/// 4. **Silent death at a gap `d ≤ good`** is not evidence against the interval (a server or a
///    network may fail for other reasons). Only 2 such deaths with no success
///    between them mean the path's timeout got shorter: `good` is forgotten, `bad = d`, and the
///    search restarts from `min` (bisection towards `d` makes that cheap).
/// 5. **Re-probe rarely.** Once settled below a known `bad` (the remaining bisection room is
///    left to the re-probe), after a stable period of
///    1 h (and at least 10 intervals) the learner tries
///    `bad` itself once. If the path now tolerates it, `bad` is forgotten and the ramp resumes;
///    if not (one lost connection), it returns to the settled value and the next re-probe waits
///    twice as long, up to 48 h. An ack after a gap `≥ bad` (for whatever reason)
///    also forgets `bad`.
/// 6. **Decrease requested by the app**: `bad = I`, `good` forgotten, `I` halves (as on
///    Windows), and the search restarts below the new bound.
///
/// Bounds:
///
/// For a path that forgets connections idle for `T` (`min ≤ T/2`, `T ≤ max`), the ramp ends
/// with a proven interval in `[T/2, T)` and the bisection lifts it further (0.71–0.98·T over
/// the unit tests' sweep of `T` from 1 s to 30 min), within `ceil(log2(T/min)) + 2` probes and at
/// most two losses; with `min` = 0.5 s and `T` ≤ 30 min that is at most K = 14 probes.
/// Afterwards it holds with no loss until the first re-probe, and loses at most one connection
/// per re-probe (1 h, 2 h, 4 h, … 48 h apart).
///
/// Thread rules: any thread, any time; takes effect at the next keep-alive.
/// Errors: `INVALID_HANDLE`; `INVALID_STATE` if the channel is closed; `INVALID_ARGUMENT` unless
/// `min_ms = max_ms = 0` or `100 <= min_ms <= max_ms <= 86400000`.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_set_adaptive_keepalive(
    ch: *mut ctrlchan_channel,
    min_ms: u32,
    max_ms: u32,
) -> crate::ResultCode {
    ffi_fn! { get::<Channel>(ch)?.set_adaptive_keepalive(min_ms, max_ms) }
}

/// Extension (docs/ABI-EXTENSIONS.md): the adaptive keep-alive range set with
/// `ctrlchan_channel_set_adaptive_keepalive`; `0, 0` when off.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if an out-pointer is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_get_adaptive_keepalive(
    ch: *const ctrlchan_channel,
    min_ms: *mut u32,
    max_ms: *mut u32,
) -> crate::ResultCode {
    ffi_fn! {
        let o = get::<Channel>(ch)?;
        let (lo, hi) = o.adaptive_keepalive().unwrap_or((0, 0));
        let min_out = out_arg(min_ms, "min_ms")?;
        let max_out = out_arg(max_ms, "max_ms")?;
        *min_out = lo;
        *max_out = hi;
        Ok(())
    }
}

/// Names the file where learned adaptive keep-alive intervals are kept across runs, so that a
/// restart does not probe again from `min`. UTF-8 path; NULL or "" = in memory only (the
/// default). The file is loaded at once, on the calling thread (at most 1 MiB, 1024 entries);
/// values already learned in this runtime win. A missing file is created on the first save; a
/// malformed one is ignored with a warning (written to stderr as
/// `ctrlchan WARN adaptive keep-alive: ...` until a log handler exists) and replaced on the
/// next save. Saving happens off the runtime thread, at most every 10 s, atomically (temporary
/// file, fsync, rename; mode 0600), and a last time in `ctrlchan_runtime_free`. The runtime
/// never fails because of the file. Call before channels connect.
///
/// Thread rules: any thread (the file is read on the calling thread).
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `path` is not UTF-8.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_set_state_file(rt: *mut ctrlchan_runtime, path: *const c_char) -> crate::ResultCode {
    ffi_fn! {
        let o = get::<Runtime>(rt)?;
        let p = unsafe { opt_str_arg(path, "path") }?;
        o.set_state_file(p.map(std::path::Path::new))
    }
}
