//! The registry of live handles. A C handle is an opaque token (never dereferenced, never reused)
//! that maps to an `Arc` of the object; lookups clone the `Arc` so a concurrent free can never
//! leave a dangling reference. NULL, freed, double-freed and garbage values are all just "not in
//! the registry" -> `CTRLCHAN_RESULT_INVALID_HANDLE`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::error::{Error, ResultCode};
use crate::Channel;
use crate::Event;
use crate::KeepAlive;
use crate::Runtime;
use crate::WebSocket;

#[derive(Clone)]
pub(crate) enum Obj {
    Runtime(Arc<Runtime>),
    WebSocket(Arc<WebSocket>),
    Channel(Arc<Channel>),
    KeepAlive(Arc<KeepAlive>),
    /// An event; `owned == false` while it is lent to a callback.
    Event(Arc<Event>, bool),
}

/// Tokens are unique multiples of 16: a multiplicative hash spreads them well and is much cheaper
/// than SipHash on the per-event path (callbacks register a borrowed event each time).
#[derive(Default, Clone, Copy)]
pub(crate) struct TokenHasher(u64);

impl std::hash::Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = ((v as u64) >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Map = HashMap<usize, Obj, std::hash::BuildHasherDefault<TokenHasher>>;

static REGISTRY: Lazy<Mutex<Map>> = Lazy::new(|| Mutex::new(Map::default()));
static NEXT: AtomicUsize = AtomicUsize::new(1);

#[cfg(target_pointer_width = "64")]
const BASE: usize = 0x7c7c_0000_0000;
#[cfg(not(target_pointer_width = "64"))]
const BASE: usize = 0x4000_0000;

pub(crate) fn insert(obj: Obj) -> usize {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let token = BASE.wrapping_add(id.wrapping_mul(16));
    REGISTRY.lock().insert(token, obj);
    token
}

pub(crate) fn remove(token: usize) -> Option<Obj> {
    REGISTRY.lock().remove(&token)
}

pub(crate) fn get(token: usize) -> Option<Obj> {
    REGISTRY.lock().get(&token).cloned()
}

pub(crate) fn contains(token: usize) -> bool {
    token != 0 && REGISTRY.lock().contains_key(&token)
}

fn invalid(what: &str, token: usize) -> Error {
    if token == 0 {
        Error::new(ResultCode::InvalidHandle, format!("{what} handle is NULL"))
    } else {
        Error::new(
            ResultCode::InvalidHandle,
            format!("{what} handle {token:#x} is not a live {what} (freed, or never created)"),
        )
    }
}

pub(crate) fn runtime(token: usize) -> Result<Arc<Runtime>, Error> {
    match get(token) {
        Some(Obj::Runtime(r)) => Ok(r),
        _ => Err(invalid("runtime", token)),
    }
}

pub(crate) fn websocket(token: usize) -> Result<Arc<WebSocket>, Error> {
    match get(token) {
        Some(Obj::WebSocket(w)) => Ok(w),
        _ => Err(invalid("websocket", token)),
    }
}

pub(crate) fn channel(token: usize) -> Result<Arc<Channel>, Error> {
    match get(token) {
        Some(Obj::Channel(c)) => Ok(c),
        _ => Err(invalid("channel", token)),
    }
}

pub(crate) fn keepalive(token: usize) -> Result<Arc<KeepAlive>, Error> {
    match get(token) {
        Some(Obj::KeepAlive(k)) => Ok(k),
        _ => Err(invalid("keep-alive", token)),
    }
}

pub(crate) fn event(token: usize) -> Result<Arc<Event>, Error> {
    match get(token) {
        Some(Obj::Event(e, _)) => Ok(e),
        _ => Err(invalid("event", token)),
    }
}
