//! `ctrlchan_runtime`: the background broker that owns the reactor thread.

use std::ffi::c_int;
use std::time::Duration;

use std::sync::Arc;

use super::args::out_arg;
use super::boundary::ffi_fn;
use super::handles::{self, get};
use crate::{ResultCode, Runtime, RuntimeStats};

/// A runtime: one reactor thread owning every socket, timer and event queue of its objects.
pub struct ctrlchan_runtime {
    _private: [u8; 0],
}

/// An event: a push notification, keep-alive completion, close, disconnect, connect result or reset.
pub struct ctrlchan_event {
    _private: [u8; 0],
}

/// Creates a runtime and starts its reactor thread.
///
/// Ownership: on success `*out` receives a new runtime; the caller owns it and must free it with
/// `ctrlchan_runtime_free`. `*out` is written only on success.
/// Thread rules: any thread.
/// Errors: `INVALID_ARGUMENT` if `out` is NULL; `IO` if the OS refuses epoll/eventfd/thread.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_new(out: *mut *mut ctrlchan_runtime) -> ResultCode {
    ffi_fn! {
        let out = out_arg(out, "out")?;
        *out = handles::insert(Runtime::new()?)?;
        Ok(())
    }
}

/// Closes every websocket of the runtime (close code 1001), stops keep-alives, joins the reactor
/// thread, drops queued events and releases every event handler (their finalizers run now).
/// Websocket, channel and keep-alive handles of this runtime stay valid handles that report
/// `INVALID_STATE`/`CLOSED` until freed.
///
/// Ownership: takes ownership of `rt`; it must not be used afterwards. NULL or an already-freed
/// handle is a no-op.
/// Thread rules: any thread. Called from inside an event callback it cannot join its own thread:
/// the shutdown is started, the handle is released, and `ctrlchan_last_error()` says so
/// (`INVALID_STATE`).
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_free(rt: *mut ctrlchan_runtime) {
    ffi_fn! {
        match handles::take::<Runtime>(rt) {
            Some(r) => r.shutdown(),
            None => Ok(()),
        }
    }
}

/// Waits up to `timeout_ms` for the next queued event (events of channels and websockets that
/// have no handler). `timeout_ms == 0` polls without waiting.
///
/// Ownership: on success the caller owns `*out` and must free it with `ctrlchan_event_free`.
/// Thread rules: any thread except a runtime thread (inside a callback it returns `INVALID_STATE`).
/// Several threads may wait at once; each event goes to exactly one of them.
/// Errors: `TIMEOUT` if no event arrived in time; `CLOSED` once the runtime is shut down;
/// `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_next_event(
    rt: *mut ctrlchan_runtime,
    timeout_ms: u32,
    out: *mut *mut ctrlchan_event,
) -> ResultCode {
    ffi_fn! {
        let r = get::<Runtime>(rt)?;
        let out = out_arg(out, "out")?;
        let ev = r.next_event(Duration::from_millis(timeout_ms as u64))?;
        *out = handles::insert(Arc::new(ev))?;
        Ok(())
    }
}

/// A file descriptor that is readable (POLLIN) exactly while events are queued, for integrating
/// the runtime with poll/epoll/select or an asyncio/libuv loop. Do not read or close it: call
/// `ctrlchan_runtime_next_event` until it returns `TIMEOUT`.
///
/// Ownership: the fd belongs to the runtime and is closed by `ctrlchan_runtime_free`.
/// Thread rules: any thread.
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_event_fd(rt: *const ctrlchan_runtime, out: *mut c_int) -> ResultCode {
    ffi_fn! {
        let r = get::<Runtime>(rt)?;
        *out_arg(out, "out")? = r.event_fd();
        Ok(())
    }
}

/// Reads the runtime's counters (wake-ups, keep-alives sent/acknowledged, messages, open
/// connections, active channels).
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_get_stats(rt: *const ctrlchan_runtime, out: *mut RuntimeStats) -> ResultCode {
    ffi_fn! {
        let r = get::<Runtime>(rt)?;
        *out_arg(out, "out")? = r.stats();
        Ok(())
    }
}

/// Sets how many channels may hold a slot at once (default 65536). Beyond it
/// `ctrlchan_channel_wait_for_push_enabled` reports `CTRLCHAN_STATUS_POLICY_ERROR`.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `max` is 0.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_set_max_channels(rt: *mut ctrlchan_runtime, max: u32) -> ResultCode {
    ffi_fn! { get::<Runtime>(rt)?.set_max_channels(max) }
}

/// Sets the coalescing window (default 3000 ms; 0 disables): when the reactor wakes, every
/// keep-alive due within the window (capped at a quarter of that channel's interval) is sent in
/// the same wake-up. Keep-alives are only ever sent early, never late.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` above 3 600 000 ms.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_set_coalescing_window(rt: *mut ctrlchan_runtime, ms: u32) -> ResultCode {
    ffi_fn! { get::<Runtime>(rt)?.set_coalescing_window(ms) }
}

/// Sets the pong settle time (default 50 ms; 0 disables; at most 1000 ms): the longest single
/// wait of the runtime thread after a keep-alive burst. After a wake-up that sent two or more
/// keep-alive pings (a coalesced burst), the thread sleeps before it listens to its sockets again
/// and then reads everything that arrived in one pass, so that the burst's pongs cost a few
/// wake-ups instead of one per arriving pong (with 10 000 channels at a 30 s interval: under one
/// wake-up per second for the whole process, against one per pong without it). The first sleep
/// is what the runtime learned the last bursts' pongs take to come back; it sleeps again while
/// most of the burst is still out, for as long as the rest needs at the rate the first pongs came
/// back at; each sleep is at most `ms`. When two sleeps in a row bring no pong (a stalled path),
/// it listens normally until pongs flow again.
///
/// The price, only while a burst's pongs are coming back (with the default 3 s coalescing window
/// a burst every few seconds at most, for the runtime as a whole): data that arrives and commands
/// given by other threads (sends, closes) are handled up to `ms` later; a keep-alive's measured
/// round trip (statistics, KEEPALIVE events) includes the sleep; a pong timeout is detected at
/// most `ms` late. Keep-alives are never sent later because of it. Use 0 for the lowest latency.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` above 1000 ms.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_set_pong_settle(rt: *mut ctrlchan_runtime, ms: u32) -> ResultCode {
    ffi_fn! { get::<Runtime>(rt)?.set_pong_settle(ms) }
}

/// The pong settle time in ms set with `ctrlchan_runtime_set_pong_settle` (default 50).
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out_ms` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_get_pong_settle(rt: *const ctrlchan_runtime, out_ms: *mut u32) -> ResultCode {
    ffi_fn! {
        let r = get::<Runtime>(rt)?;
        *out_arg(out_ms, "out_ms")? = r.pong_settle_ms();
        Ok(())
    }
}

/// The channel limit set with `ctrlchan_runtime_set_max_channels` (default 65536).
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_get_max_channels(rt: *const ctrlchan_runtime, out: *mut u32) -> ResultCode {
    ffi_fn! {
        let r = get::<Runtime>(rt)?;
        *out_arg(out, "out")? = r.max_channels();
        Ok(())
    }
}

/// The coalescing window in ms set with `ctrlchan_runtime_set_coalescing_window` (default 3000).
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out_ms` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_get_coalescing_window(rt: *const ctrlchan_runtime, out_ms: *mut u32) -> ResultCode {
    ffi_fn! {
        let r = get::<Runtime>(rt)?;
        *out_arg(out_ms, "out_ms")? = r.coalescing_window_ms();
        Ok(())
    }
}
