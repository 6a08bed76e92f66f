//! The C ABI of durable, quiet channels: event masks, the bounded queue, per-channel stats, the
//! reconnect policy, and the event getters of RECONNECTING / RESET / INTERVAL_CHANGED.

use super::args::out_arg;
use super::boundary::ffi_fn;
use super::channel::ctrlchan_channel;
use super::handles::get;
use super::runtime::{ctrlchan_event, ctrlchan_runtime};
use super::websocket::ctrlchan_websocket;
use crate::error::ResultCode;
use crate::types::{ChannelStats, ReconnectPolicy, ResetReason};
use crate::{Channel, Event, Runtime, WebSocket};

/// Every event kind (for `ctrlchan_channel_set_event_mask` / `ctrlchan_websocket_set_event_mask`).
pub const CTRLCHAN_EVENT_MASK_ALL: u32 = 0xFFFF_FFFF;
/// The default mask: every kind but KEEPALIVE acknowledgements (bit `1 << CTRLCHAN_EVENT_KIND_KEEPALIVE`).
pub const CTRLCHAN_EVENT_MASK_DEFAULT: u32 = 0xFFFF_FFFD;
const _: () = assert!(CTRLCHAN_EVENT_MASK_DEFAULT == crate::state::event::EVENT_MASK_DEFAULT);
/// Default limit of the runtime queue, in events.
pub const CTRLCHAN_DEFAULT_EVENT_QUEUE_LIMIT: u32 = 65_536;

/// Which event kinds the channel's transport produces, as bits `1u << kind`
/// (default `CTRLCHAN_EVENT_MASK_DEFAULT`: everything but KEEPALIVE). A masked-out event is never
/// created (no allocation, no wake-up); RTT and keep-alive counts stay available in
/// `ctrlchan_channel_get_stats`. While a websocket is a channel's transport the channel's mask
/// applies, else the websocket's own. Any time; applies to later events.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_set_event_mask(ch: *mut ctrlchan_channel, mask: u32) -> ResultCode {
    ffi_fn! { get::<Channel>(ch)?.set_event_mask(mask) }
}

/// The channel's event mask. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_get_event_mask(ch: *const ctrlchan_channel, out: *mut u32) -> ResultCode {
    ffi_fn! {
        let o = get::<Channel>(ch)?;
        *out_arg(out, "out")? = o.event_mask();
        Ok(())
    }
}

/// Which event kinds the websocket produces while it is no channel's transport (bits
/// `1u << kind`, default `CTRLCHAN_EVENT_MASK_DEFAULT`). Any time.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_event_mask(ws: *mut ctrlchan_websocket, mask: u32) -> ResultCode {
    ffi_fn! { get::<WebSocket>(ws)?.set_event_mask(mask) }
}

/// The websocket's own event mask. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_event_mask(ws: *const ctrlchan_websocket, out: *mut u32) -> ResultCode {
    ffi_fn! {
        let o = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = o.event_mask();
        Ok(())
    }
}

/// Bounds the runtime queue (default 65 536 events). When it is full the runtime stops reading
/// the sockets whose events would go there (TCP back-pressure to the server) and resumes once
/// the app has drained it below half. Nothing is ever dropped; callbacks need no limit.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if 0.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_set_event_queue_limit(rt: *mut ctrlchan_runtime, max_events: u32) -> ResultCode {
    ffi_fn! { get::<Runtime>(rt)?.set_event_queue_limit(max_events) }
}

/// The runtime queue's limit. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_get_event_queue_limit(rt: *const ctrlchan_runtime, out: *mut u32) -> ResultCode {
    ffi_fn! {
        let o = get::<Runtime>(rt)?;
        *out_arg(out, "out")? = o.event_queue_limit();
        Ok(())
    }
}

/// FOR TESTS: behaves as if the machine had just resumed from a suspend of `ms` milliseconds:
/// every channel is probed at once (pong timeout at most 5 s); a dead transport reconnects at
/// once (RESET reason LOW_POWER_EXIT) if its channel has a reconnect policy.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_STATE` if shut down.
#[no_mangle]
pub extern "C" fn ctrlchan_runtime_simulate_suspend(rt: *mut ctrlchan_runtime, ms: u32) -> ResultCode {
    ffi_fn! { get::<Runtime>(rt)?.simulate_suspend(ms) }
}

/// Reads the channel's counters: keep-alives sent and acknowledged, reconnects, the last and
/// smoothed round-trip times (RFC 6298 srtt/rttvar, in microseconds; 0 before the first pong)
/// and the interval keep-alives follow now.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_get_stats(ch: *const ctrlchan_channel, out: *mut ChannelStats) -> ResultCode {
    ffi_fn! {
        let o = get::<Channel>(ch)?;
        *out_arg(out, "out")? = o.statistics();
        Ok(())
    }
}

/// Fills `*out` with the default policy: initial 1 000 ms, cap 60 000 ms, x1.6, +/- 20 %
/// jitter, unlimited attempts. NULL is ignored.
#[no_mangle]
pub extern "C" fn ctrlchan_reconnect_policy_default(out: *mut ReconnectPolicy) {
    ffi_fn! {
        if !out.is_null() {
            *out_arg(out, "out")? = ReconnectPolicy::default();
        }
        Ok(())
    }
}

/// Sets the channel's reconnect policy (`p == NULL`: off, the default). The policy is copied.
///
/// With a policy, a lost transport is reconnected on the same websocket handle, to the same URI
/// with the same options (names are not resolved again: the addresses of the first connect are
/// reused); the websocket's state goes back to CONNECTING and then OPEN, and keep-alives resume
/// without another `wait_for_push_enabled`. Each attempt is announced by a RECONNECTING event
/// (`ctrlchan_event_get_attempt`, `_get_delay_ms`, `_get_result` = the cause); success by RESET
/// (`ctrlchan_event_get_reset_reason`: RECONNECTED, or NETWORK_CHANGED / LOW_POWER_EXIT when a
/// probe found the loss). The policy applies to transports that were open; a failed first
/// connect is reported as always.
///
/// Retried: every abrupt loss (EOF, RST, I/O error, pong timeout), connect failures (refused,
/// timeout), a refused upgrade with HTTP 408, 429 or 5xx, and the peer's close codes 1001, 1006,
/// 1011, 1012, 1013 and 1014. Never retried: a close or free by the app, TLS failures, other HTTP
/// 4xx (401 and 403 among them), a subprotocol mismatch, and the peer's close codes 1000, 1002,
/// 1003, 1007-1010 and 4000-4999 (the CLOSED event is delivered as without a policy).
/// Backoff: the first retry waits a random time in [0, initial] (RFC 6455 7.2.3); each further
/// one the previous delay times the multiplier, capped, +/- jitter; a probe-found loss retries at
/// once. A connection that stays open for max_delay_ms (1 s ... 60 s) resets the schedule.
/// After `max_attempts` failed attempts: TRANSPORT_DISCONNECTED with the last cause.
///
/// `ctrlchan_websocket_send` while reconnecting queues (bounded by the outbound limit:
/// BUFFER_FULL beyond). The backlog is sent after the RESET event was delivered (after its
/// callback returned), so what the app sends from that callback goes first. A message is never
/// sent twice; messages handed to a socket that then died are lost with it; what was still queued
/// when a policy gives up is counted in the final event's reason.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` (max_delay_ms 0,
/// initial above max, multiplier outside 100..=1000, jitter above 100); `INVALID_STATE` (closed).
#[no_mangle]
pub extern "C" fn ctrlchan_channel_set_reconnect_policy(
    ch: *mut ctrlchan_channel,
    p: *const ReconnectPolicy,
) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        // SAFETY: the caller promises a readable policy struct when non-NULL.
        let policy = if p.is_null() { None } else { Some(unsafe { *p }) };
        c.set_reconnect_policy(policy)
    }
}

/// The channel's reconnect policy: writes it to `*out` and `*enabled = true`, or `*enabled =
/// false` (and leaves `*out` alone) when none is set.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` or `enabled` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_get_reconnect_policy(
    ch: *const ctrlchan_channel,
    out: *mut ReconnectPolicy,
    enabled: *mut bool,
) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        let out = out_arg(out, "out")?;
        let enabled = out_arg(enabled, "enabled")?;
        match c.reconnect_policy() {
            Some(p) => {
                *out = p;
                *enabled = true;
            }
            None => *enabled = false,
        }
        Ok(())
    }
}

/// RECONNECTING: the attempt this event announces, from 1 (0 for other kinds or an invalid event).
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_attempt(ev: *const ctrlchan_event) -> u32 {
    ffi_fn! { Ok(get::<Event>(ev)?.attempt) }
}

/// RECONNECTING: the wait before this attempt, in ms (0 for other kinds or an invalid event).
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_delay_ms(ev: *const ctrlchan_event) -> u32 {
    ffi_fn! { Ok(get::<Event>(ev)?.delay_ms) }
}

/// INTERVAL_CHANGED: the new network keep-alive interval in ms (0 otherwise).
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_interval_ms(ev: *const ctrlchan_event) -> u32 {
    ffi_fn! { Ok(get::<Event>(ev)?.interval_ms) }
}

/// RESET: why the channel has a fresh transport (NEW_TRANSPORT for other kinds or an invalid
/// event).
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_reset_reason(ev: *const ctrlchan_event) -> ResetReason {
    ffi_fn! { Ok(get::<Event>(ev)?.reset_reason) }
}
