//! Random C-ABI call sequences on random, freed and wrong-type handles (no network).

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::Mutex;

use arbitrary::{Arbitrary, Unstructured};
use ctrlchan::ffi::channel::*;
use ctrlchan::ffi::event::*;
use ctrlchan::ffi::keepalive::*;
use ctrlchan::ffi::runtime::*;
use ctrlchan::ffi::websocket::*;
use ctrlchan::ffi::{KeepAliveModeArg, MessageTypeArg, ResourceTypeArg, WebSocketKindArg};

#[derive(Arbitrary, Debug)]
enum Op {
    RuntimeNew,
    RuntimeFree(u8),
    RuntimeNextEvent(u8),
    RuntimeSetMaxChannels(u8, u32),
    WebSocketNew(u8, u32),
    WebSocketFree(u8),
    SetMaxMessageSize(u8, u32),
    SetMessageType(u8, u32),
    AddProtocol(u8, String),
    SetHeader(u8, String, String),
    AddCaPem(u8, Vec<u8>),
    Send(u8, Vec<u8>),
    Close(u8, u16, String),
    GetState(u8),
    ChannelNew(u8, String, u32, u32),
    ChannelFree(u8),
    UsingTransport(u8, u8),
    SetKeepAlive(u8, u8),
    ChannelClose(u8),
    SetServerInterval(u8, u32),
    KeepAliveNew,
    KeepAliveFree(u8),
    KeepAliveSetPongTimeout(u8, u32),
    KeepAliveSetMode(u8, u32),
    EventKind(u8),
    EventData(u8),
    EventFree(u8),
    Garbage(usize),
}

/// NUL-free strings become C strings; others become NULL (which every call must reject).
fn c(s: &str) -> Option<CString> {
    CString::new(s).ok()
}
fn p(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// A runtime handle kept from one input to the next: creating and joining a reactor thread per
/// input was most of the time of an exec (the join waits for the other thread to be scheduled).
/// Inputs do not free it (freeing live, freed and wrong-type runtimes is covered by the one
/// runtime an input may create, and by the end of every input); everything else an input made
/// is freed at its end, so nothing carries over but the runtime's settings, which are reset.
static SHARED_RUNTIME: Mutex<usize> = Mutex::new(0);

/// The shared runtime, reset to its defaults (what an input may change), or a new one.
fn shared_runtime() -> usize {
    let Ok(mut g) = SHARED_RUNTIME.lock() else { return 0 };
    let live = *g != 0
        && ctrlchan_runtime_set_max_channels(*g as *mut _, ctrlchan::state::channel::DEFAULT_MAX_CHANNELS)
            == ctrlchan::ResultCode::Ok;
    if !live {
        let mut rt = ptr::null_mut();
        ctrlchan_runtime_new(&mut rt);
        *g = rt as usize;
    }
    *g
}

pub fn ffi_calls(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let shared = shared_runtime();
    // Handle values of every type, live and freed, plus garbage; 0 is NULL. The shared runtime
    // is there from the start; an input may make one more of its own (freed like the rest).
    let mut pool: Vec<usize> = vec![0, shared];
    let mut runtimes = 0;
    let h = |pool: &Vec<usize>, i: u8| pool[usize::from(i) % pool.len()];
    for _ in 0..64 {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        match op {
            Op::RuntimeNew if runtimes < 1 => {
                runtimes += 1;
                let mut rt = ptr::null_mut();
                ctrlchan_runtime_new(&mut rt);
                pool.push(rt as usize);
            }
            Op::RuntimeNew => {}
            Op::RuntimeFree(i) => {
                let v = h(&pool, i);
                if v != shared {
                    ctrlchan_runtime_free(v as *mut _);
                }
            }
            Op::RuntimeNextEvent(i) => {
                let mut ev = ptr::null_mut();
                ctrlchan_runtime_next_event(h(&pool, i) as *mut _, 0, &mut ev);
                pool.push(ev as usize);
            }
            Op::RuntimeSetMaxChannels(i, n) => {
                ctrlchan_runtime_set_max_channels(h(&pool, i) as *mut _, n);
            }
            Op::WebSocketNew(i, kind) => {
                let mut ws = ptr::null_mut();
                ctrlchan_websocket_new(h(&pool, i) as *mut _, WebSocketKindArg(kind), &mut ws);
                pool.push(ws as usize);
            }
            Op::WebSocketFree(i) => ctrlchan_websocket_free(h(&pool, i) as *mut _),
            Op::SetMaxMessageSize(i, n) => {
                ctrlchan_websocket_set_max_message_size(h(&pool, i) as *mut _, n);
            }
            Op::SetMessageType(i, t) => {
                ctrlchan_websocket_set_message_type(h(&pool, i) as *mut _, MessageTypeArg(t));
            }
            Op::AddProtocol(i, s) => {
                let s = c(&s);
                ctrlchan_websocket_add_supported_protocol(h(&pool, i) as *mut _, p(&s));
            }
            Op::SetHeader(i, n, v) => {
                let (n, v) = (c(&n), c(&v));
                ctrlchan_websocket_set_request_header(h(&pool, i) as *mut _, p(&n), p(&v));
            }
            Op::AddCaPem(i, pem) => {
                ctrlchan_websocket_add_trusted_ca_pem(h(&pool, i) as *mut _, pem.as_ptr(), pem.len());
            }
            Op::Send(i, d) => {
                ctrlchan_websocket_send(h(&pool, i) as *mut _, d.as_ptr(), d.len());
            }
            Op::Close(i, code, r) => {
                let r = c(&r);
                ctrlchan_websocket_close(h(&pool, i) as *mut _, code, p(&r));
            }
            Op::GetState(i) => {
                let mut st = std::mem::MaybeUninit::uninit();
                ctrlchan_websocket_get_state(h(&pool, i) as *const _, st.as_mut_ptr());
            }
            Op::ChannelNew(i, id, ms, ty) => {
                let id = c(&id);
                let mut ch = ptr::null_mut();
                ctrlchan_channel_new(h(&pool, i) as *mut _, p(&id), ms, ResourceTypeArg(ty), &mut ch);
                pool.push(ch as usize);
            }
            Op::ChannelFree(i) => ctrlchan_channel_free(h(&pool, i) as *mut _),
            Op::UsingTransport(i, j) => {
                ctrlchan_channel_using_transport(h(&pool, i) as *mut _, h(&pool, j) as *mut _);
            }
            Op::SetKeepAlive(i, j) => {
                ctrlchan_channel_set_keepalive(h(&pool, i) as *mut _, h(&pool, j) as *mut _);
            }
            Op::ChannelClose(i) => {
                ctrlchan_channel_close(h(&pool, i) as *mut _);
            }
            Op::SetServerInterval(i, ms) => {
                ctrlchan_channel_set_server_keepalive_interval(h(&pool, i) as *mut _, ms);
            }
            Op::KeepAliveNew => {
                let mut ka = ptr::null_mut();
                ctrlchan_keepalive_new(&mut ka);
                pool.push(ka as usize);
            }
            Op::KeepAliveFree(i) => ctrlchan_keepalive_free(h(&pool, i) as *mut _),
            Op::KeepAliveSetPongTimeout(i, ms) => {
                ctrlchan_keepalive_set_pong_timeout(h(&pool, i) as *mut _, ms);
            }
            Op::KeepAliveSetMode(i, m) => {
                ctrlchan_keepalive_set_mode(h(&pool, i) as *mut _, KeepAliveModeArg(m));
            }
            Op::EventKind(i) => {
                ctrlchan_event_get_kind(h(&pool, i) as *const _);
            }
            Op::EventData(i) => {
                let (mut d, mut n) = (ptr::null(), 0usize);
                if ctrlchan_event_get_data(h(&pool, i) as *const _, &mut d, &mut n) == ctrlchan::ResultCode::Ok && n > 0
                {
                    // SAFETY: the library promises `n` readable bytes while the event lives.
                    let bytes = unsafe { std::slice::from_raw_parts(d, n) };
                    std::hint::black_box(bytes.iter().map(|&b| u64::from(b)).sum::<u64>());
                }
            }
            Op::EventFree(i) => ctrlchan_event_free(h(&pool, i) as *mut _),
            Op::Garbage(v) => pool.push(v),
        }
    }
    // Free every value as every type: the wrong types must be no-ops, the rest frees once.
    for &v in pool.iter().rev() {
        ctrlchan_event_free(v as *mut _);
        ctrlchan_keepalive_free(v as *mut _);
        ctrlchan_channel_free(v as *mut _);
        ctrlchan_websocket_free(v as *mut _);
    }
    for &v in pool.iter().filter(|&&v| v != shared) {
        ctrlchan_runtime_free(v as *mut _);
    }
}
