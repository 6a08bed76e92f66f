//! The C ABI: a thin skin over the safe API, built from three pieces used by every export:
//! - `boundary`: `ffi_fn!` runs each export body (no panic crosses into C; the result code, the
//!   failure default of the return type and `ctrlchan_last_error()` are decided in one place);
//! - `handles`: the registry of live handles, with typed lookups (`get::<Channel>(ch)`) and an
//!   atomic take on free;
//! - `args`: checks for strings, buffers, out-pointers and raw enum arguments.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]
// Exports take raw pointers by the C contract (documented per function in the header); they are
// not `unsafe fn` on the Rust side.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod adaptive;
mod args;
pub(crate) mod boundary;
pub mod channel;
pub mod durable;
pub mod event;
pub(crate) mod handles;
pub mod keepalive;
pub mod logging;
pub mod network;
pub mod runtime;
pub mod websocket;

use std::ffi::{c_char, CString};

use boundary::ffi_fn;

use crate::ResultCode;

pub use crate::error::ResultCode as ctrlchan_result;
pub use crate::types::{
    EventKind as ctrlchan_event_kind, KeepAliveMode as ctrlchan_keepalive_mode, MessageType as ctrlchan_message_type,
    ResourceType as ctrlchan_resource_type, RuntimeStats as ctrlchan_runtime_stats, Status as ctrlchan_status,
    WebSocketKind as ctrlchan_websocket_kind, WebSocketState as ctrlchan_websocket_state,
    WebSocketStats as ctrlchan_websocket_stats,
};
pub use args::{KeepAliveModeArg, MessageTypeArg, ResourceTypeArg, WebSocketKindArg};

/// Smallest server keep-alive interval accepted by `ctrlchan_channel_new` and
/// `ctrlchan_channel_set_server_keepalive_interval`, in ms.
pub const CTRLCHAN_MIN_INTERVAL_MS: u32 = 100;
/// Largest server keep-alive interval, in ms (24 h).
pub const CTRLCHAN_MAX_INTERVAL_MS: u32 = 86_400_000;
/// Longest channel id, in characters.
pub const CTRLCHAN_MAX_ID_LEN: u32 = 64;
/// Default time a PING keep-alive waits for its pong, in ms.
pub const CTRLCHAN_DEFAULT_PONG_TIMEOUT_MS: u32 = 5_000;
/// Smallest pong timeout accepted by `ctrlchan_keepalive_set_pong_timeout`, in ms.
pub const CTRLCHAN_MIN_PONG_TIMEOUT_MS: u32 = 10;
/// Largest pong timeout, in ms (24 h).
pub const CTRLCHAN_MAX_PONG_TIMEOUT_MS: u32 = 86_400_000;
/// Default channel limit of a runtime (`ctrlchan_runtime_set_max_channels`).
pub const CTRLCHAN_DEFAULT_MAX_CHANNELS: u32 = 65_536;
/// Default coalescing window of a runtime, in ms (`ctrlchan_runtime_set_coalescing_window`).
pub const CTRLCHAN_DEFAULT_COALESCING_MS: u32 = 3_000;
/// Default pong settle time of a runtime, in ms (`ctrlchan_runtime_set_pong_settle`).
pub const CTRLCHAN_DEFAULT_PONG_SETTLE_MS: u32 = 50;
/// Largest pong settle time, in ms.
pub const CTRLCHAN_MAX_PONG_SETTLE_MS: u32 = 1_000;
/// Default largest incoming message, in bytes (16 MiB).
pub const CTRLCHAN_DEFAULT_MAX_MESSAGE_SIZE: u32 = 16 << 20;
/// Default outbound queue limit, in bytes (16 MiB).
pub const CTRLCHAN_DEFAULT_OUTBOUND_LIMIT: u32 = 16 << 20;
/// Connect timeout used when 0 is passed, in ms (30 s).
pub const CTRLCHAN_DEFAULT_CONNECT_TIMEOUT_MS: u32 = 30_000;

// cbindgen prints only literal values, so the constants above repeat the core's; this keeps them equal.
const _: () = {
    use crate::runtime;
    use crate::state::{channel, keepalive, websocket};
    assert!(CTRLCHAN_MIN_INTERVAL_MS == channel::MIN_INTERVAL_MS);
    assert!(CTRLCHAN_MAX_INTERVAL_MS == channel::MAX_INTERVAL_MS);
    assert!(CTRLCHAN_MAX_ID_LEN as usize == channel::MAX_ID_LEN);
    assert!(CTRLCHAN_DEFAULT_PONG_TIMEOUT_MS == keepalive::DEFAULT_PONG_TIMEOUT_MS);
    assert!(CTRLCHAN_MIN_PONG_TIMEOUT_MS == keepalive::MIN_PONG_TIMEOUT_MS);
    assert!(CTRLCHAN_MAX_PONG_TIMEOUT_MS == keepalive::MAX_PONG_TIMEOUT_MS);
    assert!(CTRLCHAN_DEFAULT_MAX_CHANNELS == channel::DEFAULT_MAX_CHANNELS);
    assert!(CTRLCHAN_DEFAULT_COALESCING_MS == runtime::DEFAULT_COALESCING_MS);
    assert!(CTRLCHAN_DEFAULT_PONG_SETTLE_MS == runtime::DEFAULT_PONG_SETTLE_MS);
    assert!(CTRLCHAN_MAX_PONG_SETTLE_MS == runtime::MAX_PONG_SETTLE_MS);
    assert!(CTRLCHAN_DEFAULT_MAX_MESSAGE_SIZE == websocket::DEFAULT_MAX_MESSAGE_SIZE);
    assert!(CTRLCHAN_DEFAULT_OUTBOUND_LIMIT == websocket::DEFAULT_OUTBOUND_LIMIT);
    assert!(CTRLCHAN_DEFAULT_CONNECT_TIMEOUT_MS == websocket::DEFAULT_CONNECT_TIMEOUT_MS);
};

/// Detail text of the last failed ctrlchan call on the calling thread ("" if the last call
/// succeeded).
///
/// Thread rules: thread-local; any thread may call it at any time.
/// Ownership: the string is owned by the library and stays valid until this thread's next
/// ctrlchan call (other than `ctrlchan_last_error` itself). Never NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_last_error() -> *const c_char {
    ffi_fn! { keep_last_error: boundary::last_error() }
}

/// Stable upper-case name of a result code, such as "OK" or "INVALID_HANDLE"; "UNKNOWN" for a
/// value that is not a result code.
///
/// Ownership: static string, never freed. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_result_name(result: u32) -> *const c_char {
    ffi_fn! { keep_last_error:
        ResultCode::try_from(result).map_or(c"UNKNOWN", ResultCode::name_cstr).as_ptr()
    }
}

/// Library version, such as "0.1.0".
///
/// Ownership: static string, never freed. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_version() -> *const c_char {
    static V: once_cell::sync::Lazy<CString> =
        once_cell::sync::Lazy::new(|| CString::new(crate::VERSION).unwrap_or_default());
    ffi_fn! { keep_last_error: V.as_ptr() }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn result_names_match_codes() {
        for &code in ResultCode::VARIANTS {
            let got = unsafe { CStr::from_ptr(ctrlchan_result_name(code as u32)) };
            assert_eq!(got.to_str().ok(), Some(code.name()));
        }
        let name = |v: u32| unsafe { CStr::from_ptr(ctrlchan_result_name(v)) }.to_str().map(str::to_owned);
        assert_eq!(name(ResultCode::InvalidHandle as u32).as_deref(), Ok("INVALID_HANDLE"));
        assert_eq!(name(999).as_deref(), Ok("UNKNOWN"));
    }

    #[test]
    fn describing_an_error_keeps_the_error() {
        let r = runtime::ctrlchan_runtime_new(std::ptr::null_mut());
        assert_eq!(r, ResultCode::InvalidArgument);
        let _ = ctrlchan_result_name(r as u32);
        let _ = ctrlchan_version();
        let msg = unsafe { CStr::from_ptr(ctrlchan_last_error()) };
        assert_eq!(msg.to_str().ok(), Some("out must not be NULL"));
    }
}
