//! `ctrlchan_channel`: ControlChannelTrigger.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use super::args::{out_arg, str_arg, ResourceTypeArg};
use super::boundary::ffi_fn;
use super::event::{ctrlchan_event_callback, ctrlchan_finalizer, install_handler};
use super::handles::{self, get, get_opt};
use super::keepalive::ctrlchan_keepalive;
use super::runtime::ctrlchan_runtime;
use super::websocket::ctrlchan_websocket;
use crate::{Channel, KeepAlive, ResourceType, ResultCode, Runtime, Status, WebSocket};

/// A control channel (ControlChannelTrigger).
pub struct ctrlchan_channel {
    _private: [u8; 0],
}

/// Creates a control channel: `channel_id` (1 to 64 characters, UTF-8), the server keep-alive
/// interval in milliseconds (100 ... 86 400 000) and the resource type (SOFTWARE or HARDWARE slot).
/// Without a keep-alive task (`ctrlchan_channel_set_keepalive`) the channel uses a default PING
/// task with a 5 s pong timeout.
///
/// Ownership: the caller owns `*out` and must free it with `ctrlchan_channel_free`.
/// Thread rules: any thread.
/// Errors: `INVALID_ARGUMENT` (NULL/empty/over-long/non-UTF-8 id, interval out of range, bad
/// resource type, NULL out); `INVALID_HANDLE` (rt); `INVALID_STATE` (runtime shut down).
#[no_mangle]
pub extern "C" fn ctrlchan_channel_new(
    rt: *mut ctrlchan_runtime,
    channel_id: *const c_char,
    server_keepalive_interval_ms: u32,
    type_: ResourceTypeArg,
    out: *mut *mut ctrlchan_channel,
) -> ResultCode {
    ffi_fn! {
        let r = get::<Runtime>(rt)?;
        let id = unsafe { str_arg(channel_id, "channel_id") }?;
        let t = type_.get()?;
        let out = out_arg(out, "out")?;
        *out = handles::insert(Channel::new(&r, id, server_keepalive_interval_ms, t)?)?;
        Ok(())
    }
}

/// Closes the channel (see `ctrlchan_channel_close`) and frees the handle. The transport
/// websocket is not closed: it belongs to the caller.
///
/// Ownership: takes ownership of `ch`; it must not be used afterwards. NULL or an already-freed
/// handle is a no-op. Thread rules: any thread, including callbacks.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_free(ch: *mut ctrlchan_channel) {
    ffi_fn! {
        match handles::take::<Channel>(ch) {
            Some(c) => c.close(),
            None => Ok(()),
        }
    }
}

/// Makes `ws` the channel's transport (Windows `UsingTransport`). Call before connecting `ws`.
/// After the previous transport closed or was lost, call again with a new websocket: the
/// channel then delivers a `RESET` event and keeps its id, keep-alive task and handler.
///
/// Ownership: the channel keeps its own reference to `ws`; the caller still frees `ws`.
/// Thread rules: any thread.
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` (websocket of another runtime); `INVALID_STATE`
/// (websocket already connecting/connected, the current transport still active, the websocket
/// bound to another channel, channel closed).
#[no_mangle]
pub extern "C" fn ctrlchan_channel_using_transport(
    ch: *mut ctrlchan_channel,
    ws: *mut ctrlchan_websocket,
) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        let w = get::<WebSocket>(ws)?;
        c.using_transport(&w)
    }
}

/// Registers the connected channel for keep-alives and push delivery (Windows
/// `WaitForPushEnabled`); call after the transport connected. Writes the slot status:
/// `SOFTWARE_SLOT_ALLOCATED`; `HARDWARE_SLOT_ALLOCATED` (HARDWARE type and kernel TCP keep-alive
/// plus TCP_USER_TIMEOUT armed); `TRANSPORT_DISCONNECTED` (no transport or not connected);
/// `POLICY_ERROR` (the runtime's channel limit is reached); `SERVICE_UNAVAILABLE` (runtime
/// shutting down). Keep-alives start only after an allocated status. Returns immediately.
///
/// Thread rules: any thread.
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` (NULL out); `INVALID_STATE` (channel closed).
#[no_mangle]
pub extern "C" fn ctrlchan_channel_wait_for_push_enabled(ch: *mut ctrlchan_channel, out: *mut Status) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        let out = out_arg(out, "out")?;
        *out = c.wait_for_push_enabled()?;
        Ok(())
    }
}

/// Binds a keep-alive task to the channel's keep-alive trigger. `task == NULL` restores the
/// default PING task. Takes effect from the next keep-alive.
///
/// Ownership: the channel keeps its own reference; the caller still frees `task` (freeing it
/// does not affect the channel).
/// Thread rules: any thread.
/// Errors: `INVALID_HANDLE` (channel, or a non-NULL task that is not live); `INVALID_STATE`
/// (channel closed).
#[no_mangle]
pub extern "C" fn ctrlchan_channel_set_keepalive(
    ch: *mut ctrlchan_channel,
    task: *mut ctrlchan_keepalive,
) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        c.set_keepalive(get_opt::<KeepAlive>(task)?)
    }
}

/// Sets the channel's event callback (push notifications, keep-alives, close, disconnect,
/// connect results and reset of its transport). `cb == NULL` removes it: events then go to the
/// transport websocket's callback, else the runtime queue (`userdata`/`finalizer` are ignored).
///
/// Ownership: on success the library owns `userdata` and calls `finalizer(userdata)` exactly once
/// when it drops it (replaced, channel closed/freed, or runtime freed), after any call in progress
/// returned. On failure the caller keeps it.
/// Thread rules: any thread; `cb` runs on the runtime thread.
/// Errors: `INVALID_HANDLE`; `INVALID_STATE` (channel closed or runtime shut down).
#[no_mangle]
pub extern "C" fn ctrlchan_channel_set_event_handler(
    ch: *mut ctrlchan_channel,
    cb: ctrlchan_event_callback,
    userdata: *mut c_void,
    finalizer: ctrlchan_finalizer,
) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        install_handler(cb, userdata, finalizer, |h| c.set_handler(h))
    }
}

/// The interval keep-alives follow now, in ms: min(server interval, network interval).
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out_ms` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_current_keepalive_interval(
    ch: *const ctrlchan_channel,
    out_ms: *mut u32,
) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        *out_arg(out_ms, "out_ms")? = c.current_keepalive_interval_ms();
        Ok(())
    }
}

/// Halves the network keep-alive interval (not below 100 ms), for example after the app saw a
/// NAT or proxy drop idle connections. Rescheduling is immediate.
///
/// Errors: `INVALID_HANDLE`; `INVALID_STATE` (channel closed).
#[no_mangle]
pub extern "C" fn ctrlchan_channel_decrease_network_keepalive_interval(ch: *mut ctrlchan_channel) -> ResultCode {
    ffi_fn! { get::<Channel>(ch)?.decrease_network_keepalive_interval() }
}

/// Waits up to `timeout_ms` until every message queued on the transport reached the kernel.
///
/// Thread rules: any thread except a runtime thread (`INVALID_STATE` inside a callback).
/// Errors: `TIMEOUT`; `CLOSED` (transport closed); `INVALID_STATE` (no transport / not connected /
/// channel closed); `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_flush_transport(ch: *mut ctrlchan_channel, timeout_ms: u32) -> ResultCode {
    ffi_fn! { get::<Channel>(ch)?.flush_transport(Duration::from_millis(timeout_ms as u64)) }
}

/// Closes the channel: stops keep-alives, releases its slot, detaches the transport (which stays
/// open and now routes events to its own handler or the queue) and releases the event handler.
/// Idempotent. The handle stays valid until `ctrlchan_channel_free`.
///
/// Errors: `INVALID_HANDLE`. Thread rules: any thread, including callbacks.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_close(ch: *mut ctrlchan_channel) -> ResultCode {
    ffi_fn! { get::<Channel>(ch)?.close() }
}

/// The channel id given at creation.
///
/// Ownership: `*out` is owned by the channel and valid while it lives.
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_get_id(ch: *const ctrlchan_channel, out: *mut *const c_char) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        *out_arg(out, "out")? = c.id_cstr().as_ptr();
        Ok(())
    }
}

/// The server keep-alive interval, in ms.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out_ms` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_get_server_keepalive_interval(
    ch: *const ctrlchan_channel,
    out_ms: *mut u32,
) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        *out_arg(out_ms, "out_ms")? = c.server_keepalive_interval_ms();
        Ok(())
    }
}

/// Changes the server keep-alive interval, in ms (100 ... 86 400 000), like setting Windows
/// `ServerKeepAliveIntervalInMinutes`. The network interval restarts from the new value and the
/// next keep-alive is rescheduled at once.
///
/// Thread rules: any thread, including callbacks.
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` out of range; `INVALID_STATE` (channel closed).
#[no_mangle]
pub extern "C" fn ctrlchan_channel_set_server_keepalive_interval(ch: *mut ctrlchan_channel, ms: u32) -> ResultCode {
    ffi_fn! { get::<Channel>(ch)?.set_server_keepalive_interval_ms(ms) }
}

/// The resource type given at creation.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_channel_get_resource_type(
    ch: *const ctrlchan_channel,
    out: *mut ResourceType,
) -> ResultCode {
    ffi_fn! {
        let c = get::<Channel>(ch)?;
        *out_arg(out, "out")? = c.resource_type();
        Ok(())
    }
}
