//! The boundary every export goes through: `ffi_fn!` runs the body of an `extern "C"` function,
//! catches panics (none crosses into C), records the detail text for `ctrlchan_last_error()` and
//! turns a failure into the value the return type stands for ([`FfiReturn`]):
//!
//! | return type          | success                    | failure or panic                         |
//! |----------------------|----------------------------|------------------------------------------|
//! | `ctrlchan_result`    | `OK` (or the value)        | the error's code; a panic is `PANIC`     |
//! | `*mut T` (a handle)  | the value                  | NULL                                     |
//! | `const char *`       | the value                  | `""` (string getters never return NULL)  |
//! | `uint16_t`, `uint32_t`, `uint64_t` | the value    | 0                                        |
//! | `ctrlchan_event_kind`| the value                  | `TRANSPORT_DISCONNECTED`                 |
//! | `ctrlchan_message_type` | the value               | `BINARY`                                 |
//! | `void` (`*_free`)    | -                          | -                                        |
//!
//! The body is a block that yields `Result<T, Error>` (so `?` works); `T` is `()` for exports
//! that return `ctrlchan_result`, else the return type itself. The last error is cleared on
//! success and set on failure, once per call, here and nowhere else. The three exports that
//! describe errors (`ctrlchan_last_error`, `ctrlchan_result_name`, `ctrlchan_version`) use the
//! `keep_last_error:` form: its body yields the value directly and the last error is left alone.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::{Error, EventKind, MessageType, ResultCode};

/// Runs the body of an export; see the module documentation.
macro_rules! ffi_fn {
    (keep_last_error: $($body:tt)*) => {
        $crate::ffi::boundary::run_keeping_last_error(|| { $($body)* })
    };
    ($($body:tt)*) => {
        $crate::ffi::boundary::run(|| { $($body)* })
    };
}

pub(crate) use ffi_fn;

/// What an export returns when its body fails (or panics, as a `PANIC` error).
pub(crate) trait FfiReturn {
    fn on_failure(e: &Error) -> Self;
}

impl FfiReturn for ResultCode {
    fn on_failure(e: &Error) -> Self {
        e.code
    }
}

impl FfiReturn for () {
    fn on_failure(_: &Error) -> Self {}
}

impl<T> FfiReturn for *mut T {
    fn on_failure(_: &Error) -> Self {
        std::ptr::null_mut()
    }
}

impl FfiReturn for *const c_char {
    fn on_failure(_: &Error) -> Self {
        c"".as_ptr()
    }
}

macro_rules! zero_on_failure {
    ($($t:ty),*) => {$(
        impl FfiReturn for $t {
            fn on_failure(_: &Error) -> Self {
                0
            }
        }
    )*};
}

zero_on_failure!(u16, u32, u64);

impl FfiReturn for EventKind {
    fn on_failure(_: &Error) -> Self {
        EventKind::TransportDisconnected
    }
}

impl FfiReturn for crate::ResetReason {
    fn on_failure(_: &Error) -> Self {
        crate::ResetReason::NewTransport
    }
}

impl FfiReturn for MessageType {
    fn on_failure(_: &Error) -> Self {
        MessageType::Binary
    }
}

/// How a successful body's value becomes the export's return value `R`: itself, or `()` as `OK`.
pub(crate) trait IntoFfiReturn<R> {
    fn into_ffi_return(self) -> R;
}

impl<R: FfiReturn> IntoFfiReturn<R> for R {
    fn into_ffi_return(self) -> R {
        self
    }
}

impl IntoFfiReturn<ResultCode> for () {
    fn into_ffi_return(self) -> ResultCode {
        ResultCode::Ok
    }
}

fn panic_error() -> Error {
    Error::new(ResultCode::Panic, "internal panic caught at the C boundary (a ctrlchan bug)")
}

/// The `ffi_fn! { body }` form.
pub(crate) fn run<R, T>(body: impl FnOnce() -> Result<T, Error>) -> R
where
    R: FfiReturn,
    T: IntoFfiReturn<R>,
{
    match catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| Err(panic_error())) {
        Ok(value) => {
            clear_last_error();
            value.into_ffi_return()
        }
        Err(e) => {
            set_last_error(&e);
            R::on_failure(&e)
        }
    }
}

/// The `ffi_fn! { keep_last_error: body }` form.
pub(crate) fn run_keeping_last_error<R: FfiReturn>(body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| R::on_failure(&panic_error()))
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

// `try_with`: during thread teardown the slot may be gone; the text is then simply not kept.

fn set_last_error(e: &Error) {
    let text = crate::state::event::to_cstring_lossy(&e.message);
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = text);
}

fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|l| {
        let mut l = l.borrow_mut();
        if !l.as_bytes().is_empty() {
            *l = CString::default();
        }
    });
}

/// The calling thread's last error text, valid until its next call that goes through `run`.
pub(crate) fn last_error() -> *const c_char {
    LAST_ERROR.try_with(|l| l.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    fn last() -> String {
        unsafe { CStr::from_ptr(last_error()) }.to_string_lossy().into_owned()
    }

    fn fails<T>(code: ResultCode) -> Result<T, Error> {
        Err(Error::new(code, "detail"))
    }

    fn boom<T>() -> Result<T, Error> {
        panic!("boom")
    }

    #[test]
    fn result_code_exports_map_errors_and_panics() {
        let r: ResultCode = ffi_fn! { fails::<()>(ResultCode::Closed) };
        assert_eq!((r, last()), (ResultCode::Closed, "detail".to_string()));
        let r: ResultCode = ffi_fn! { Ok(()) };
        assert_eq!((r, last()), (ResultCode::Ok, String::new()));
        let r: ResultCode = ffi_fn! { boom::<()>() };
        assert_eq!(r, ResultCode::Panic);
        assert!(last().contains("panic"));
        // A body may yield a result code of its own (ctrlchan_event_get_result does).
        let r: ResultCode = ffi_fn! { Ok(ResultCode::Timeout) };
        assert_eq!((r, last()), (ResultCode::Timeout, String::new()));
    }

    #[test]
    fn value_exports_fall_back_to_their_documented_defaults() {
        let p: *mut u8 = ffi_fn! { fails::<*mut u8>(ResultCode::InvalidHandle) };
        assert!(p.is_null());
        let s: *const c_char = ffi_fn! { boom::<*const c_char>() };
        assert_eq!(unsafe { CStr::from_ptr(s) }, c"");
        let n: u64 = ffi_fn! { fails::<u64>(ResultCode::InvalidHandle) };
        assert_eq!(n, 0);
        let k: EventKind = ffi_fn! { fails::<EventKind>(ResultCode::InvalidHandle) };
        assert_eq!(k, EventKind::TransportDisconnected);
        let t: MessageType = ffi_fn! { fails::<MessageType>(ResultCode::InvalidHandle) };
        assert_eq!(t, MessageType::Binary);
        assert_eq!(last(), "detail");
        let n: u16 = ffi_fn! { Ok(1009u16) };
        assert_eq!((n, last()), (1009, String::new()));
        let () = ffi_fn! { boom::<()>() };
    }

    #[test]
    fn keep_last_error_form_leaves_the_text_alone() {
        let _: ResultCode = ffi_fn! { fails::<()>(ResultCode::Io) };
        let s: *const c_char = ffi_fn! { keep_last_error: c"x".as_ptr() };
        assert_eq!(unsafe { CStr::from_ptr(s) }, c"x");
        let s: *const c_char = ffi_fn! { keep_last_error: panic!("boom") };
        assert_eq!(unsafe { CStr::from_ptr(s) }, c"");
        assert_eq!(last(), "detail");
    }
}
