//! `ctrlchan_set_log_handler`: the core (and rustls) log through the `log` facade; this forwards
//! every record up to the chosen level to one process-wide C callback.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use parking_lot::Mutex;

use super::boundary::ffi_fn;
use crate::c_enum::c_enum;
use crate::error::{Error, ResultCode};
use macro_rules_attribute::macro_rules_derive;

/// Severity of a log message (the `log` crate's levels).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// Log callback: `target` is the module that logged ("ctrlchan", "rustls::..."), `message` one
/// line of text. Both strings are borrowed for the call. It runs on the thread that logged
/// (mostly the runtime thread), possibly on several threads at once; it must return normally
/// and must not call `ctrlchan_set_log_handler`.
pub type ctrlchan_log_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: LogLevel, target: *const c_char, message: *const c_char)>;

struct Sink {
    cb: unsafe extern "C" fn(*mut c_void, LogLevel, *const c_char, *const c_char),
    userdata: *mut c_void,
    finalizer: super::event::ctrlchan_finalizer,
}

// SAFETY: the C contract says the callback and finalizer may run on any thread.
unsafe impl Send for Sink {}
unsafe impl Sync for Sink {}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(f) = self.finalizer {
            // SAFETY: C function pointer supplied for exactly this purpose, called once.
            let _ = std::panic::catch_unwind(|| unsafe { f(self.userdata) });
        }
    }
}

static SINK: Mutex<Option<Arc<Sink>>> = Mutex::new(None);

struct Forwarder;

static FORWARDER: Forwarder = Forwarder;

impl log::Log for Forwarder {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Cloned out of the lock: the callback runs unlocked (it may log again).
        let Some(sink) = SINK.lock().clone() else { return };
        let level = match record.level() {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Trace => LogLevel::Trace,
        };
        let target = crate::state::event::to_cstring_lossy(record.target());
        let message = crate::state::event::to_cstring_lossy(&record.args().to_string());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: C function pointer supplied by the caller; the strings live for the call.
            unsafe { (sink.cb)(sink.userdata, level, target.as_ptr(), message.as_ptr()) }
        }));
    }

    fn flush(&self) {}
}

fn filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}

/// Sends the library's log messages up to `max_level` to `cb` (process-wide; `cb == NULL`
/// turns logging off). What is logged: connects and connect failures (refused upgrade with its
/// HTTP status, TLS failure, timeout), disconnects with their cause (EOF, reset, pong timeout,
/// close code), reconnect attempts and their outcome, network-change and resume probes, each
/// tunnel opened through a proxy (INFO: target and `scheme://[***@]host:port` of the proxy); at
/// DEBUG/TRACE also rustls' own messages. Credentials never appear.
///
/// Ownership: on success the library owns `userdata` and calls `finalizer(userdata)` exactly once
/// when the handler is replaced or removed (after calls in progress returned); on failure the
/// caller keeps it.
/// Thread rules: any thread, not from inside the log callback.
/// Errors: `INVALID_ARGUMENT` for a bad level; `INVALID_STATE` if another logger owns the
/// process's `log` facade (a Rust program embedding ctrlchan as a crate).
#[no_mangle]
pub extern "C" fn ctrlchan_set_log_handler(
    max_level: u32,
    cb: ctrlchan_log_callback,
    userdata: *mut c_void,
    finalizer: super::event::ctrlchan_finalizer,
) -> ResultCode {
    ffi_fn! {
        let level = LogLevel::try_from(max_level)
            .map_err(|_| Error::invalid_argument(format!("{max_level} is not a valid ctrlchan_log_level")))?;
        install()?;
        let new = cb.map(|cb| Arc::new(Sink { cb, userdata, finalizer }));
        log::set_max_level(if new.is_some() { filter(level) } else { log::LevelFilter::Off });
        let old = std::mem::replace(&mut *SINK.lock(), new);
        drop(old); // the old finalizer runs once no call holds it any more
        Ok(())
    }
}

fn install() -> Result<(), Error> {
    static INSTALLED: once_cell::sync::OnceCell<bool> = once_cell::sync::OnceCell::new();
    let ok = *INSTALLED.get_or_init(|| log::set_logger(&FORWARDER).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::new(ResultCode::InvalidState, "another logger already owns the log facade of this process"))
    }
}
