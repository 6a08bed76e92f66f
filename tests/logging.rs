//! ctrlchan_set_log_handler: log lines reach the C callback, with levels, without credentials,
//! and the finalizer runs exactly once when the handler is replaced.

use std::ffi::{c_char, c_void, CStr};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ctrlchan::ffi::logging::{ctrlchan_set_log_handler, LogLevel};
use ctrlchan::{ResultCode, Runtime, WebSocket, WebSocketKind};

static LINES: Mutex<Vec<(u32, String, String)>> = Mutex::new(Vec::new());
static FINALIZED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_log(_: *mut c_void, level: LogLevel, target: *const c_char, message: *const c_char) {
    let t = unsafe { CStr::from_ptr(target) }.to_string_lossy().into_owned();
    let m = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    LINES.lock().map(|mut v| v.push((level as u32, t, m))).unwrap_or(());
}

unsafe extern "C" fn on_finalize(_: *mut c_void) {
    FINALIZED.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn connect_failures_are_logged_and_the_finalizer_runs_once() {
    assert_eq!(ctrlchan_set_log_handler(99, Some(on_log), std::ptr::null_mut(), None), ResultCode::InvalidArgument);
    assert_eq!(
        ctrlchan_set_log_handler(LogLevel::Info as u32, Some(on_log), std::ptr::null_mut(), Some(on_finalize)),
        ResultCode::Ok
    );
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    assert!(ws.connect(&format!("ws://127.0.0.1:{port}/"), 2000).is_err());
    std::thread::sleep(Duration::from_millis(100));
    let lines = LINES.lock().map(|v| v.clone()).unwrap_or_default();
    let hit =
        lines.iter().find(|(_, t, m)| t == "ctrlchan" && m.contains("connect to 127.0.0.1") && m.contains("failed"));
    let (level, _, msg) = hit.unwrap_or_else(|| panic!("no connect-failure line in {lines:?}"));
    assert_eq!(*level, LogLevel::Warn as u32, "{msg}");
    assert!(msg.contains("CONNECT_FAILED"), "{msg}");
    assert_eq!(FINALIZED.load(Ordering::SeqCst), 0);
    // Off: the finalizer runs once; nothing more is logged.
    assert_eq!(ctrlchan_set_log_handler(LogLevel::Info as u32, None, std::ptr::null_mut(), None), ResultCode::Ok);
    assert_eq!(FINALIZED.load(Ordering::SeqCst), 1);
    let before = LINES.lock().map(|v| v.len()).unwrap_or(0);
    let ws2 = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    assert!(ws2.connect(&format!("ws://127.0.0.1:{port}/"), 2000).is_err());
    assert_eq!(LINES.lock().map(|v| v.len()).unwrap_or(0), before);
}
