//! The C ABI: a thin skin over the safe API. Every export goes through `ffi_guard` (no panic
//! crosses the boundary, the result code and `ctrlchan_last_error()` are set in one place) and
//! every handle goes through the registry in `handles` (freed or foreign handles are detected).

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

pub mod channel;
pub mod event;
pub(crate) mod handles;
pub mod keepalive;
pub mod runtime;
pub mod websocket;

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ResultCode};

pub use crate::error::ResultCode as ctrlchan_result;
pub use crate::types::{
    EventKind as ctrlchan_event_kind, KeepAliveMode as ctrlchan_keepalive_mode, MessageType as ctrlchan_message_type,
    ResourceType as ctrlchan_resource_type, RuntimeStats as ctrlchan_runtime_stats, Status as ctrlchan_status,
    WebSocketKind as ctrlchan_websocket_kind, WebSocketState as ctrlchan_websocket_state,
    WebSocketStats as ctrlchan_websocket_stats,
};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(e: &Error) {
    let text = crate::event::to_cstring_lossy(&e.message);
    LAST_ERROR.with(|l| *l.borrow_mut() = text);
}

pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        if !l.as_bytes().is_empty() {
            *l = CString::default();
        }
    });
}

/// Runs an export body: maps `Err` and panics to result codes and records the detail text.
pub(crate) fn ffi_guard(f: impl FnOnce() -> Result<(), Error>) -> ResultCode {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            clear_last_error();
            ResultCode::Ok
        }
        Ok(Err(e)) => {
            set_last_error(&e);
            e.code
        }
        Err(_) => {
            set_last_error(&Error::new(ResultCode::Panic, "internal panic caught at the C boundary (a ctrlchan bug)"));
            ResultCode::Panic
        }
    }
}

/// Like `ffi_guard` for exports that return a value instead of a result code.
pub(crate) fn ffi_value<T>(default: T, f: impl FnOnce() -> Result<T, Error>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => {
            clear_last_error();
            v
        }
        Ok(Err(e)) => {
            set_last_error(&e);
            default
        }
        Err(_) => {
            set_last_error(&Error::new(ResultCode::Panic, "internal panic caught at the C boundary (a ctrlchan bug)"));
            default
        }
    }
}

/// The shape of every getter export: look the handle up, check the out-pointer, write `read(&h)`.
pub(crate) fn ffi_get<H, T>(
    lookup: impl FnOnce() -> Result<H, Error>,
    out: *mut T,
    name: &str,
    read: impl FnOnce(&H) -> T,
) -> ResultCode {
    ffi_guard(|| {
        let h = lookup()?;
        *out_arg(out, name)? = read(&h);
        Ok(())
    })
}

/// Borrows a required NUL-terminated UTF-8 string argument.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what} must not be NULL")));
    }
    // SAFETY: the caller promises a NUL-terminated string (documented in the header).
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| Error::invalid_argument(format!("{what} is not valid UTF-8")))
}

/// Borrows an optional string argument (NULL = None).
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    unsafe { str_arg(p, what) }.map(Some)
}

/// Borrows a byte buffer argument; NULL is allowed only with `len == 0`.
pub(crate) unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid_argument(format!("{what} length {len} is too large")));
    }
    // SAFETY: the caller promises `len` readable bytes at `p`.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Checks an out-pointer.
pub(crate) fn out_arg<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Error> {
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what} must not be NULL")));
    }
    // SAFETY: non-NULL, and the caller promises it points to writable storage for a T.
    Ok(unsafe { &mut *p })
}

/// Checks an enum argument given as a raw integer.
pub(crate) fn enum_arg<T>(v: u32, what: &str, map: impl FnOnce(u32) -> Option<T>) -> Result<T, Error> {
    map(v).ok_or_else(|| Error::invalid_argument(format!("{v} is not a valid {what}")))
}

/// Detail text of the last failed ctrlchan call on the calling thread ("" if the last call
/// succeeded).
///
/// Thread rules: thread-local; any thread may call it at any time.
/// Ownership: the string is owned by the library and stays valid until this thread's next
/// ctrlchan call (other than `ctrlchan_last_error` itself). Never NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_last_error() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

/// Stable upper-case name of a result code, such as "OK" or "INVALID_HANDLE"; "UNKNOWN" for a
/// value that is not a result code.
///
/// Ownership: static string, never freed. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_result_name(result: u32) -> *const c_char {
    let name: &'static CStr = match result {
        0 => c"OK",
        1 => c"INVALID_ARGUMENT",
        2 => c"INVALID_HANDLE",
        3 => c"INVALID_STATE",
        4 => c"TIMEOUT",
        5 => c"CONNECT_FAILED",
        6 => c"TLS_FAILED",
        7 => c"HANDSHAKE_FAILED",
        8 => c"CLOSED",
        9 => c"MESSAGE_TOO_LARGE",
        10 => c"BUFFER_FULL",
        11 => c"IO",
        12 => c"POLICY",
        13 => c"PANIC",
        14 => c"PROXY_FAILED",
        15 => c"QUEUE_FULL",
        _ => c"UNKNOWN",
    };
    name.as_ptr()
}

/// Library version, such as "0.1.0".
///
/// Ownership: static string, never freed. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_version() -> *const c_char {
    static V: once_cell::sync::Lazy<CString> =
        once_cell::sync::Lazy::new(|| CString::new(crate::VERSION).unwrap_or_default());
    V.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn result_names_match_codes() {
        for (code, name) in [
            (ResultCode::Ok, "OK"),
            (ResultCode::InvalidHandle, "INVALID_HANDLE"),
            (ResultCode::Panic, "PANIC"),
            (ResultCode::ProxyFailed, "PROXY_FAILED"),
            (ResultCode::QueueFull, "QUEUE_FULL"),
        ] {
            let got = unsafe { CStr::from_ptr(ctrlchan_result_name(code as u32)) };
            assert_eq!(got.to_str().ok(), Some(name));
            assert_eq!(code.name(), name);
        }
        let unknown = unsafe { CStr::from_ptr(ctrlchan_result_name(999)) };
        assert_eq!(unknown.to_str().ok(), Some("UNKNOWN"));
    }

    #[test]
    fn guard_turns_panics_into_result_codes() {
        let r = ffi_guard(|| panic!("boom"));
        assert_eq!(r, ResultCode::Panic);
        let msg = unsafe { CStr::from_ptr(ctrlchan_last_error()) };
        assert!(msg.to_str().is_ok_and(|m| m.contains("panic")));
        assert_eq!(ffi_guard(|| Ok(())), ResultCode::Ok);
        let msg = unsafe { CStr::from_ptr(ctrlchan_last_error()) };
        assert_eq!(msg.to_bytes(), b"");
    }
}

/// Enum arguments arrive as raw integers so that an out-of-range value from C is reported as
/// `INVALID_ARGUMENT` instead of being undefined behaviour. cbindgen prints them with the enum's
/// C type name (see cbindgen.toml).
macro_rules! raw_enum_arg {
    ($raw:ident, $enum:ty, $what:literal, { $($v:literal => $variant:expr),* $(,)? }) => {
        #[repr(transparent)]
        #[derive(Clone, Copy)]
        pub struct $raw(pub u32);
        impl $raw {
            pub(crate) fn get(self) -> Result<$enum, Error> {
                enum_arg(self.0, $what, |v| match v { $($v => Some($variant),)* _ => None })
            }
        }
    };
}

raw_enum_arg!(WebSocketKindArg, crate::types::WebSocketKind, "ctrlchan_websocket_kind", {
    0 => crate::types::WebSocketKind::Message, 1 => crate::types::WebSocketKind::Stream });
raw_enum_arg!(MessageTypeArg, crate::types::MessageType, "ctrlchan_message_type", {
    0 => crate::types::MessageType::Binary, 1 => crate::types::MessageType::Utf8 });
raw_enum_arg!(ResourceTypeArg, crate::types::ResourceType, "ctrlchan_resource_type", {
    0 => crate::types::ResourceType::RequestSoftwareSlot, 1 => crate::types::ResourceType::RequestHardwareSlot });
raw_enum_arg!(KeepAliveModeArg, crate::types::KeepAliveMode, "ctrlchan_keepalive_mode", {
    0 => crate::types::KeepAliveMode::Ping, 1 => crate::types::KeepAliveMode::UnsolicitedPong });
