//! `ctrlchan_event` accessors and the bridge from C callbacks to core handlers.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::args::out_arg;
use super::boundary::ffi_fn;
use super::channel::ctrlchan_channel;
use super::handles::{self, get};
use super::runtime::ctrlchan_event;
use super::websocket::ctrlchan_websocket;
use crate::{Channel, Error, Event, EventKind, Handler, MessageType, ResultCode, WebSocket};

/// Event callback. `ev` is borrowed for the duration of the call only: read what you need (or
/// copy it) before returning; do not free it. Runs on the runtime thread: keep it short, and do
/// not call blocking functions (`connect`, `flush_transport`, `next_event`, `runtime_free`) from it
/// (they return `INVALID_STATE`). It must return normally: no longjmp, C++ exception or
/// pthread_exit out of it (free your runtimes before the process or interpreter shuts down).
pub type ctrlchan_event_callback = Option<unsafe extern "C" fn(userdata: *mut c_void, ev: *const ctrlchan_event)>;

/// Called exactly once when the library drops a callback's userdata.
pub type ctrlchan_finalizer = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

struct CCallback {
    cb: unsafe extern "C" fn(*mut c_void, *const ctrlchan_event),
    userdata: *mut c_void,
    finalizer: ctrlchan_finalizer,
    armed: Arc<AtomicBool>,
}

// SAFETY: the C contract says callbacks and finalizers may run on any thread; the userdata
// pointer is only handed back to the caller's functions.
unsafe impl Send for CCallback {}
unsafe impl Sync for CCallback {}

impl CCallback {
    fn call(&self, ev: *const ctrlchan_event) {
        // SAFETY: C function pointer supplied by the caller; the event token stays valid until
        // the call returns.
        unsafe { (self.cb)(self.userdata, ev) };
    }
}

impl Drop for CCallback {
    fn drop(&mut self) {
        if self.armed.load(Ordering::Acquire) {
            if let Some(f) = self.finalizer {
                // SAFETY: C function pointer supplied by the caller for exactly this purpose.
                let _ = std::panic::catch_unwind(|| unsafe { f(self.userdata) });
            }
        }
    }
}

/// Wraps a C callback. The returned flag disarms the finalizer (used when installing fails, so
/// that the caller keeps ownership of the userdata).
fn make_handler(
    cb: unsafe extern "C" fn(*mut c_void, *const ctrlchan_event),
    userdata: *mut c_void,
    finalizer: ctrlchan_finalizer,
) -> (Handler, Arc<AtomicBool>) {
    let armed = Arc::new(AtomicBool::new(true));
    let c = CCallback { cb, userdata, finalizer, armed: armed.clone() };
    let h: Handler = Arc::new(move |ev: &Event| {
        // Lending fails only when every handle value is live, which memory does not allow.
        if let Ok(loan) = handles::lend(Arc::new(ev.clone())) {
            c.call(loan.handle());
        }
    });
    (h, armed)
}

/// Installs (cb != NULL) or removes (cb == NULL) a C callback through `set`. If `set` fails the
/// finalizer is disarmed: the caller keeps ownership of `userdata`.
pub(crate) fn install_handler(
    cb: ctrlchan_event_callback,
    userdata: *mut c_void,
    finalizer: ctrlchan_finalizer,
    set: impl FnOnce(Option<Handler>) -> Result<(), Error>,
) -> Result<(), Error> {
    let Some(cb) = cb else { return set(None) };
    let (h, armed) = make_handler(cb, userdata, finalizer);
    let r = set(Some(h.clone()));
    if r.is_err() {
        armed.store(false, Ordering::Release);
    }
    drop(h);
    r
}

/// Frees an event returned by `ctrlchan_runtime_next_event`.
///
/// Ownership: takes ownership of `ev`; it and every pointer obtained from it must not be used
/// afterwards. NULL, already-freed events and events borrowed by a callback are ignored.
/// Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_event_free(ev: *mut ctrlchan_event) {
    ffi_fn! {
        drop(handles::take::<Event>(ev));
        Ok(())
    }
}

/// The event's kind. An invalid event yields `CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED` and sets
/// `ctrlchan_last_error()` (check the handle first if unsure).
///
/// Thread rules: any thread while the event is alive.
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_kind(ev: *const ctrlchan_event) -> EventKind {
    ffi_fn! { Ok(get::<Event>(ev)?.kind) }
}

/// The channel the event belongs to, or NULL if the websocket is not a channel's transport (or
/// the channel handle was freed).
///
/// Ownership: borrowed; do not free it through this pointer. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_channel(ev: *const ctrlchan_event) -> *mut ctrlchan_channel {
    ffi_fn! { Ok(get::<Event>(ev)?.channel.as_ref().map_or(std::ptr::null_mut(), |c| handles::handle_of::<Channel>(handles::state_key(c)))) }
}

/// The websocket that produced the event, or NULL if its handle was freed.
///
/// Ownership: borrowed; do not free it through this pointer. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_websocket(ev: *const ctrlchan_event) -> *mut ctrlchan_websocket {
    ffi_fn! { Ok(get::<Event>(ev)?.websocket.as_ref().map_or(std::ptr::null_mut(), |w| handles::handle_of::<WebSocket>(handles::state_key(w)))) }
}

/// The channel id ("" if the event has no channel; also "" for an invalid event).
///
/// Ownership: owned by the event; valid while the event lives. Never NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_channel_id(ev: *const ctrlchan_event) -> *const c_char {
    ffi_fn! { Ok(get::<Event>(ev)?.channel_id_cstr().as_ptr()) }
}

/// Message type of a `PUSH_NOTIFICATION` (BINARY for other kinds).
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_message_type(ev: *const ctrlchan_event) -> MessageType {
    ffi_fn! { Ok(get::<Event>(ev)?.message_type) }
}

/// The payload of a `PUSH_NOTIFICATION` (empty for other kinds).
///
/// Ownership: `*data` is owned by the event and valid while it lives; it is not NUL-terminated
/// and may be NULL when `*len` is 0.
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `data` or `len` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_data(
    ev: *const ctrlchan_event,
    data: *mut *const u8,
    len: *mut usize,
) -> ResultCode {
    ffi_fn! {
        let e = get::<Event>(ev)?;
        let data = out_arg(data, "data")?;
        let len = out_arg(len, "len")?;
        // The payload lives inside the Arc'd event kept by the registry.
        *data = if e.data.is_empty() { std::ptr::null() } else { e.data.as_ptr() };
        *len = e.data.len();
        Ok(())
    }
}

/// Close code of a `CLOSED` event (1005 if the peer sent none; 0 for other kinds).
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_close_code(ev: *const ctrlchan_event) -> u16 {
    ffi_fn! { Ok(get::<Event>(ev)?.close_code) }
}

/// Close reason (`CLOSED`), failure detail (`TRANSPORT_DISCONNECTED`: EOF, reset, I/O error or
/// pong timeout; `CONNECT_FAILED`), or "" if none.
///
/// Ownership: owned by the event; valid while the event lives. Never NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_reason(ev: *const ctrlchan_event) -> *const c_char {
    ffi_fn! { Ok(get::<Event>(ev)?.reason_cstr().as_ptr()) }
}

/// Round-trip time in microseconds of a `KEEPALIVE` event in PING mode (0 otherwise).
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_rtt_us(ev: *const ctrlchan_event) -> u64 {
    ffi_fn! { Ok(get::<Event>(ev)?.rtt_us) }
}

/// The failure behind an event, as a result code: `CONNECT_FAILED` events carry the connect error
/// (`CONNECT_FAILED`, `TLS_FAILED`, `HANDSHAKE_FAILED`, `TIMEOUT`, ...); `TRANSPORT_DISCONNECTED`
/// carries `TIMEOUT` (pong or close-handshake timeout), `TLS_FAILED` or `IO` (EOF, reset, I/O or
/// protocol error); a `CLOSED` event caused by an oversized incoming message carries
/// `MESSAGE_TOO_LARGE`. `OK` for every other event; `INVALID_HANDLE` for an invalid event.
///
/// Thread rules: any thread while the event is alive.
#[no_mangle]
pub extern "C" fn ctrlchan_event_get_result(ev: *const ctrlchan_event) -> ResultCode {
    ffi_fn! { Ok(get::<Event>(ev)?.result) }
}
