//! `ctrlchan_keepalive`: the WebSocketKeepAlive background task.

use super::args::{out_arg, KeepAliveModeArg};
use super::boundary::ffi_fn;
use super::channel::ctrlchan_channel;
use super::handles::{self, get};
use crate::{Channel, KeepAlive, KeepAliveMode, ResultCode};

/// A keep-alive task (WebSocketKeepAlive). One task may serve many channels.
pub struct ctrlchan_keepalive {
    _private: [u8; 0],
}

/// Creates an RFC 6455 keep-alive task: PING mode, pong timeout 5000 ms.
///
/// Ownership: the caller owns `*out` and must free it with `ctrlchan_keepalive_free`.
/// Thread rules: any thread. Errors: `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_keepalive_new(out: *mut *mut ctrlchan_keepalive) -> ResultCode {
    ffi_fn! {
        let out = out_arg(out, "out")?;
        *out = handles::insert(KeepAlive::new())?;
        Ok(())
    }
}

/// PING (default): a ping with a unique payload; only the matching pong acknowledges it (a
/// `KEEPALIVE` event with the RTT); no pong within the pong timeout tears the transport down with
/// one `TRANSPORT_DISCONNECTED`. UNSOLICITED_PONG: a one-way heartbeat (RFC 6455 5.5.3), a
/// `KEEPALIVE` event per pong sent, no liveness check.
///
/// Thread rules: any thread; applies from the next keep-alive.
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` for an unknown mode.
#[no_mangle]
pub extern "C" fn ctrlchan_keepalive_set_mode(ka: *mut ctrlchan_keepalive, mode: KeepAliveModeArg) -> ResultCode {
    ffi_fn! {
        let k = get::<KeepAlive>(ka)?;
        k.set_mode(mode.get()?);
        Ok(())
    }
}

/// How long a PING keep-alive waits for its pong, in ms (10 ... 86 400 000; default 5000).
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` out of range.
#[no_mangle]
pub extern "C" fn ctrlchan_keepalive_set_pong_timeout(ka: *mut ctrlchan_keepalive, ms: u32) -> ResultCode {
    ffi_fn! { get::<KeepAlive>(ka)?.set_pong_timeout_ms(ms) }
}

/// Sends one keep-alive on `ch`'s transport now, with this task's mode and pong timeout
/// (Windows `IBackgroundTask.Run`). The result arrives as a `KEEPALIVE` (or, on pong timeout,
/// `TRANSPORT_DISCONNECTED`) event.
///
/// Thread rules: any thread, including callbacks.
/// Errors: `INVALID_HANDLE`; `INVALID_STATE` (no transport, not connected, channel closed);
/// `CLOSED` (transport closed).
#[no_mangle]
pub extern "C" fn ctrlchan_keepalive_run(ka: *mut ctrlchan_keepalive, ch: *mut ctrlchan_channel) -> ResultCode {
    ffi_fn! {
        let k = get::<KeepAlive>(ka)?;
        let c = get::<Channel>(ch)?;
        k.run(&c)
    }
}

/// Frees the task handle. Channels using it keep their own reference.
///
/// Ownership: takes ownership of `ka`; it must not be used afterwards. NULL or an already-freed
/// handle is a no-op. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_keepalive_free(ka: *mut ctrlchan_keepalive) {
    ffi_fn! {
        drop(handles::take::<KeepAlive>(ka));
        Ok(())
    }
}

/// The task's mode.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_keepalive_get_mode(ka: *const ctrlchan_keepalive, out: *mut KeepAliveMode) -> ResultCode {
    ffi_fn! {
        let k = get::<KeepAlive>(ka)?;
        *out_arg(out, "out")? = k.mode();
        Ok(())
    }
}

/// The task's pong timeout in ms.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out_ms` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_keepalive_get_pong_timeout(ka: *const ctrlchan_keepalive, out_ms: *mut u32) -> ResultCode {
    ffi_fn! {
        let k = get::<KeepAlive>(ka)?;
        *out_arg(out_ms, "out_ms")? = k.pong_timeout_ms();
        Ok(())
    }
}
