//! The C ABI: a thin skin over the safe API, built from three pieces used by every export:
//! - `boundary`: `ffi_fn!` runs each export body (no panic crosses into C; the result code, the
//!   failure default of the return type and `ctrlchan_last_error()` are decided in one place);
//! - `handles`: the registry of live handles, with typed lookups (`get::<Channel>(ch)`) and an
//!   atomic take on free;
//! - `args`: checks for strings, buffers, out-pointers and raw enum arguments.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod args;
pub(crate) mod boundary;
pub mod channel;
pub mod event;
pub(crate) mod handles;
pub mod keepalive;
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
