//! The registry of live handles. A C handle is an opaque token (never dereferenced) that maps to
//! an `Arc` of the object; lookups clone the `Arc` so a concurrent free can never leave a
//! dangling reference. NULL, freed, double-freed, garbage and wrong-type values are all just
//! "not a live handle of this type" -> `CTRLCHAN_RESULT_INVALID_HANDLE`.
//!
//! - [`Castable`] says, per Rust type, which C handle type points to it and how it is stored; every
//!   lookup is typed: `get::<Channel>(ch)` takes a `*const ctrlchan_channel`.
//! - [`take`] removes a handle only if it is of the expected type, in one lock (a `_free` racing
//!   another `_free` or a lookup frees exactly once).
//! - Tokens come from a 64-bit counter and are never reused while values are left. Where the
//!   handle space can run out (32-bit targets: 2^28 values), values of freed handles are reused
//!   after that, but a live handle is never replaced; only when every value is live does
//!   [`insert`] fail.
//! - Channels and websockets can be found from the object ([`handle_of`]), for the event getters:
//!   the registry keeps object address -> token, removed with the handle.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::channel::ctrlchan_channel;
use super::keepalive::ctrlchan_keepalive;
use super::runtime::{ctrlchan_event, ctrlchan_runtime};
use super::websocket::ctrlchan_websocket;
use crate::{Channel, Error, Event, KeepAlive, ResultCode, Runtime, WebSocket};

/// What a token stands for.
pub(crate) enum Obj {
    Runtime(Arc<Runtime>),
    WebSocket(Arc<WebSocket>),
    Channel(Arc<Channel>),
    KeepAlive(Arc<KeepAlive>),
    /// An event the caller owns (`ctrlchan_runtime_next_event`).
    Event(Arc<Event>),
    /// An event lent to a callback for the duration of the call: readable, not freeable.
    LentEvent(Arc<Event>),
}

/// The one place that decides how a Rust object is handed to C: as a registry token of the
/// handle type `Handle`, stored as the `Obj` variant `wrap` builds.
pub(crate) trait Castable: Sized {
    /// The opaque C type (`ctrlchan_channel`, ...); pointers to it are tokens.
    type Handle;
    /// The noun in `INVALID_HANDLE` messages.
    const WHAT: &'static str;
    /// Whether [`handle_of`] can find the handle from the object.
    const FINDABLE: bool;
    fn wrap(obj: Arc<Self>) -> Obj;
    /// The key [`handle_of`] finds the handle by: the address of the state events carry.
    fn key(obj: &Arc<Self>) -> usize {
        address_of(obj)
    }
    /// The object, if `obj` is a live handle of this type.
    fn unwrap(obj: &Obj) -> Option<&Arc<Self>>;
    /// Whether the caller may free `obj` through this type's `_free`.
    fn freeable(obj: &Obj) -> bool {
        Self::unwrap(obj).is_some()
    }
}

macro_rules! castable {
    ($T:ident => $Handle:ident, $what:literal, findable: $findable:literal) => {
        impl Castable for $T {
            type Handle = $Handle;
            const WHAT: &'static str = $what;
            const FINDABLE: bool = $findable;
            fn wrap(obj: Arc<Self>) -> Obj {
                Obj::$T(obj)
            }
            fn unwrap(obj: &Obj) -> Option<&Arc<Self>> {
                match obj {
                    Obj::$T(o) => Some(o),
                    _ => None,
                }
            }
        }
    };
}

macro_rules! castable_by_state {
    ($T:ident => $Handle:ident, $what:literal) => {
        impl Castable for $T {
            type Handle = $Handle;
            const WHAT: &'static str = $what;
            const FINDABLE: bool = true;
            fn wrap(obj: Arc<Self>) -> Obj {
                Obj::$T(obj)
            }
            fn key(obj: &Arc<Self>) -> usize {
                address_of(obj.shared())
            }
            fn unwrap(obj: &Obj) -> Option<&Arc<Self>> {
                match obj {
                    Obj::$T(o) => Some(o),
                    _ => None,
                }
            }
        }
    };
}

castable!(Runtime => ctrlchan_runtime, "runtime", findable: false);
castable_by_state!(WebSocket => ctrlchan_websocket, "websocket");
castable_by_state!(Channel => ctrlchan_channel, "channel");
castable!(KeepAlive => ctrlchan_keepalive, "keep-alive", findable: false);

impl Castable for Event {
    type Handle = ctrlchan_event;
    const WHAT: &'static str = "event";
    const FINDABLE: bool = false;
    fn wrap(obj: Arc<Self>) -> Obj {
        Obj::Event(obj)
    }
    fn unwrap(obj: &Obj) -> Option<&Arc<Self>> {
        match obj {
            Obj::Event(e) | Obj::LentEvent(e) => Some(e),
            _ => None,
        }
    }
    fn freeable(obj: &Obj) -> bool {
        matches!(obj, Obj::Event(_))
    }
}

/// Tokens are unique multiples of 16: a multiplicative hash spreads them well and is much cheaper
/// than SipHash on the per-event path (callbacks register a lent event each time). Object
/// addresses (the reverse map) are at least 16 bytes apart, so they hash as well.
#[derive(Default, Clone, Copy)]
struct TokenHasher(u64);

impl std::hash::Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type TokenMap<K, V> = HashMap<K, V, BuildHasherDefault<TokenHasher>>;

/// Handle values are `BASE + i * STRIDE`: never 0, never a small integer.
const STRIDE: u64 = 16;
#[cfg(target_pointer_width = "64")]
const BASE: u64 = 0x7c7c_0000_0000;
#[cfg(not(target_pointer_width = "64"))]
const BASE: u64 = 0x4000_0000;

struct Registry {
    objects: TokenMap<u64, Obj>,
    /// `Arc::as_ptr` of a findable object -> its token.
    tokens_by_address: TokenMap<usize, u64>,
    /// How many values `BASE + i * STRIDE` fit in a pointer.
    capacity: u64,
    /// Values handed out for the first time so far (`i` of the next fresh one).
    issued: u64,
    /// Where the search for a freed value starts once `issued == capacity`.
    reuse_cursor: u64,
}

impl Registry {
    fn new(capacity: u64) -> Self {
        Registry {
            objects: TokenMap::default(),
            tokens_by_address: TokenMap::default(),
            capacity,
            issued: 0,
            reuse_cursor: 0,
        }
    }

    fn token(i: u64) -> u64 {
        BASE + i * STRIDE
    }

    /// A value no live handle has: a fresh one while there are any, else a freed one.
    fn next_token(&mut self) -> Result<u64, Error> {
        if self.issued < self.capacity {
            let token = Self::token(self.issued);
            self.issued += 1;
            return Ok(token);
        }
        if self.objects.len() as u64 >= self.capacity {
            return Err(Error::new(ResultCode::Io, "every handle value is in use"));
        }
        loop {
            let token = Self::token(self.reuse_cursor);
            self.reuse_cursor = (self.reuse_cursor + 1) % self.capacity;
            if !self.objects.contains_key(&token) {
                return Ok(token);
            }
        }
    }

    fn insert(&mut self, obj: Obj, address: Option<usize>) -> Result<u64, Error> {
        let token = self.next_token()?;
        let previous = self.objects.insert(token, obj);
        debug_assert!(previous.is_none(), "handle value {token:#x} handed out while live");
        if let Some(address) = address {
            let previous = self.tokens_by_address.insert(address, token);
            debug_assert!(previous.is_none(), "object {address:#x} registered twice");
        }
        Ok(token)
    }

    fn get<T: Castable>(&self, token: u64) -> Option<Arc<T>> {
        self.objects.get(&token).and_then(T::unwrap).cloned()
    }

    /// Removes the handle if it is a freeable handle of `T`; the caller drops the result after
    /// releasing the lock (dropping an object may run C finalizers that call back in).
    fn take<T: Castable>(&mut self, token: u64) -> Option<Obj> {
        let Entry::Occupied(entry) = self.objects.entry(token) else { return None };
        if !T::freeable(entry.get()) {
            return None;
        }
        let obj = entry.remove();
        if T::FINDABLE {
            if let Some(o) = T::unwrap(&obj) {
                self.tokens_by_address.remove(&T::key(o));
            }
        }
        Some(obj)
    }

    fn token_of<T: Castable>(&self, key: usize) -> Option<u64> {
        let token = *self.tokens_by_address.get(&key)?;
        let live = self.objects.get(&token).and_then(T::unwrap)?;
        (T::key(live) == key).then_some(token)
    }
}

fn address_of<T>(obj: &Arc<T>) -> usize {
    Arc::as_ptr(obj).addr()
}

fn token_of_handle<H>(handle: *const H) -> u64 {
    handle.addr() as u64
}

fn handle_of_token<H>(token: u64) -> *mut H {
    // Lossless: every token is below `capacity`'s bound, which fits in a pointer.
    std::ptr::without_provenance_mut(token as usize)
}

static REGISTRY: Lazy<Mutex<Registry>> =
    Lazy::new(|| Mutex::new(Registry::new((usize::MAX as u64 - BASE) / STRIDE + 1)));

fn invalid<T: Castable>(token: u64) -> Error {
    let what = T::WHAT;
    if token == 0 {
        Error::new(ResultCode::InvalidHandle, format!("{what} handle is NULL"))
    } else {
        Error::new(
            ResultCode::InvalidHandle,
            format!("{what} handle {token:#x} is not a live {what} (freed, or never created)"),
        )
    }
}

/// Registers `obj` and returns its new handle (the caller owns it).
pub(crate) fn insert<T: Castable>(obj: Arc<T>) -> Result<*mut T::Handle, Error> {
    let address = T::FINDABLE.then(|| T::key(&obj));
    let token = REGISTRY.lock().insert(T::wrap(obj), address)?;
    Ok(handle_of_token(token))
}

/// The object behind a live handle of type `T`, else `INVALID_HANDLE`.
pub(crate) fn get<T: Castable>(handle: *const T::Handle) -> Result<Arc<T>, Error> {
    let token = token_of_handle(handle);
    let found = REGISTRY.lock().get::<T>(token);
    found.ok_or_else(|| invalid::<T>(token))
}

/// Like [`get`] for an optional argument: NULL is `None`, anything else must be live.
pub(crate) fn get_opt<T: Castable>(handle: *const T::Handle) -> Result<Option<Arc<T>>, Error> {
    if handle.is_null() {
        Ok(None)
    } else {
        get(handle).map(Some)
    }
}

/// Unregisters a handle for `_free`: the object if `handle` was a live, freeable handle of type
/// `T` (else `None`, and nothing changes: NULL, freed, foreign and wrong-type handles are no-ops).
pub(crate) fn take<T: Castable>(handle: *const T::Handle) -> Option<Arc<T>> {
    let removed = REGISTRY.lock().take::<T>(token_of_handle(handle))?;
    T::unwrap(&removed).cloned()
}

/// The live handle whose object has `key` (see [`Castable::key`]: for channels and websockets
/// the address of the shared state that events carry), or NULL once it was freed.
pub(crate) fn handle_of<T: Castable>(key: usize) -> *mut T::Handle {
    const { assert!(T::FINDABLE, "only findable handle types are in the address map") };
    let token = REGISTRY.lock().token_of::<T>(key);
    token.map_or(std::ptr::null_mut(), handle_of_token)
}

/// The key of shared state carried by an event (see [`handle_of`]).
pub(crate) fn state_key<S>(st: &Arc<S>) -> usize {
    address_of(st)
}

/// An event lent to a callback: a live handle for as long as this value lives, which
/// `ctrlchan_event_free` ignores.
pub(crate) struct Loan {
    token: u64,
}

impl Loan {
    pub(crate) fn handle(&self) -> *const ctrlchan_event {
        handle_of_token(self.token)
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        let removed = REGISTRY.lock().objects.remove(&self.token);
        drop(removed);
    }
}

pub(crate) fn lend(event: Arc<Event>) -> Result<Loan, Error> {
    let token = REGISTRY.lock().insert(Obj::LentEvent(event), None)?;
    Ok(Loan { token })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::{EventKind, WebSocketKind};

    /// The error code of a lookup, `None` if it found the object.
    fn failure<T>(r: Result<T, Error>) -> Option<(ResultCode, String)> {
        r.err().map(|e| (e.code, e.message))
    }

    fn event() -> Arc<Event> {
        Arc::new(Event::new(EventKind::Closed, None, None))
    }

    #[test]
    fn typed_lookup_of_another_type_is_invalid_handle() {
        let ka = insert(KeepAlive::new()).expect("a handle"); // ok: test
        assert!(get::<KeepAlive>(ka).is_ok());
        let as_event: *const ctrlchan_event = ka.cast();
        let (code, message) = failure(get::<Event>(as_event)).expect("a keep-alive is no event"); // ok: test
        assert_eq!(code, ResultCode::InvalidHandle);
        assert!(message.contains("not a live event"), "{message}");
        // Freeing it through the wrong type leaves it alone.
        assert!(take::<Event>(as_event).is_none());
        assert!(get::<KeepAlive>(ka).is_ok());
        assert!(take::<KeepAlive>(ka).is_some());
    }

    #[test]
    fn null_and_garbage_handles_are_invalid() {
        let null = failure(get::<KeepAlive>(std::ptr::null()));
        assert_eq!(null, Some((ResultCode::InvalidHandle, "keep-alive handle is NULL".to_string())));
        let garbage: *const ctrlchan_keepalive = std::ptr::without_provenance(0x1234);
        assert_eq!(failure(get::<KeepAlive>(garbage)).map(|f| f.0), Some(ResultCode::InvalidHandle));
        assert!(take::<KeepAlive>(garbage).is_none());
        assert!(matches!(get_opt::<KeepAlive>(std::ptr::null()), Ok(None)));
        assert!(get_opt::<KeepAlive>(garbage).is_err());
    }

    #[test]
    fn double_free_is_a_no_op() {
        let ev = insert(event()).expect("a handle"); // ok: test
        assert!(take::<Event>(ev).is_some());
        assert!(take::<Event>(ev).is_none());
        assert_eq!(failure(get::<Event>(ev)).map(|f| f.0), Some(ResultCode::InvalidHandle));
    }

    #[test]
    fn lent_events_are_readable_not_freeable_and_end_with_the_loan() {
        let loan = lend(event()).expect("a loan"); // ok: test
        let h = loan.handle();
        assert!(get::<Event>(h).is_ok());
        assert!(take::<Event>(h).is_none(), "ctrlchan_event_free ignores a lent event");
        assert!(get::<Event>(h).is_ok());
        drop(loan);
        assert!(get::<Event>(h).is_err());
    }

    #[test]
    fn tokens_are_unique_and_not_reused() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let h = insert(KeepAlive::new()).expect("a handle"); // ok: test
            assert!(seen.insert(h.addr()), "token {:#x} handed out twice", h.addr());
            assert!(h.addr() % STRIDE as usize == 0 && h.addr() as u64 >= BASE);
            assert!(take::<KeepAlive>(h).is_some());
        }
    }

    #[test]
    fn a_full_token_space_reuses_only_freed_values() {
        let mut reg = Registry::new(4);
        let tokens: Vec<u64> = (0..4).map(|_| reg.insert(Obj::Event(event()), None).expect("room")).collect(); // ok: test
        assert_eq!(tokens, [BASE, BASE + 16, BASE + 32, BASE + 48]);
        assert_eq!(failure(reg.insert(Obj::Event(event()), None)).map(|f| f.0), Some(ResultCode::Io), "all live");
        assert!(reg.take::<Event>(tokens[2]).is_some());
        assert_eq!(reg.insert(Obj::Event(event()), None).ok(), Some(tokens[2]), "the one freed value");
        assert!(reg.insert(Obj::Event(event()), None).is_err());
        assert!(reg.take::<Event>(tokens[0]).is_some());
        assert!(reg.take::<Event>(tokens[3]).is_some());
        let again: HashSet<u64> = (0..2).filter_map(|_| reg.insert(Obj::Event(event()), None).ok()).collect();
        assert_eq!(again, HashSet::from([tokens[0], tokens[3]]));
    }

    #[test]
    fn objects_find_their_live_handle_until_it_is_freed() {
        let rt = Runtime::new().expect("a runtime"); // ok: test
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("a websocket"); // ok: test
        let h = insert(ws.clone()).expect("a handle"); // ok: test
        assert_eq!(handle_of::<WebSocket>(state_key(ws.shared())), h);
        let other = WebSocket::new(&rt, WebSocketKind::Stream).expect("a websocket"); // ok: test
        assert!(handle_of::<WebSocket>(state_key(other.shared())).is_null(), "never registered");
        assert!(take::<WebSocket>(h).is_some());
        assert!(handle_of::<WebSocket>(state_key(ws.shared())).is_null(), "freed");
        assert!(!REGISTRY.lock().tokens_by_address.contains_key(&<WebSocket as Castable>::key(&ws)), "entry removed");
        rt.shutdown().expect("shutdown"); // ok: test
    }
}
