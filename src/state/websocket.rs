//! The shared state of a websocket (Windows `MessageWebSocket` / `StreamWebSocket`): options,
//! the outbound queue, the lifecycle state other threads may read, counters and the handler.
//! The socket itself lives on the runtime thread.

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use once_cell::sync::OnceCell;
use parking_lot::{Condvar, Mutex};
use tungstenite::http::HeaderValue;

use super::channel::ChannelShared;
use super::event::{mask_bit, to_cstring_lossy, Handler, EVENT_MASK_DEFAULT};
use super::protocols::Protocols;
use crate::error::{Error, Result, ResultCode};
use crate::protocol::proxy::ProxySetting;
use crate::protocol::tls::{parse_pem_certs, TlsOptions};
use crate::protocol::tls_identity::{ClientIdentity, PublicKeyPin};
use crate::types::{EventKind, MessageType, WebSocketKind, WebSocketState, WebSocketStats};

/// Default largest incoming message (16 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 16 << 20;
/// Default outbound queue limit (16 MiB).
pub const DEFAULT_OUTBOUND_LIMIT: u32 = 16 << 20;
/// Default connect timeout when 0 is passed (30 s).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 30_000;
/// Read buffer per connection: small on purpose (thousands of idle connections), grows per frame.
pub const READ_BUFFER_SIZE: usize = 256;

const RESERVED_HEADERS: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// The control options of a websocket (Windows `MessageWebSocketControl`).
#[derive(Clone)]
pub(crate) struct Options {
    pub headers: Vec<(String, String)>,
    /// Offered subprotocols (C strings that never move while the websocket lives; O(1) add).
    pub protocols: Protocols,
    pub max_message_size: u32,
    pub message_type: MessageType,
    pub tls: TlsOptions,
    pub outbound_limit: u32,
    /// Which proxy each connect uses; `None` = the environment (boxed: most websockets set none).
    pub proxy: Option<Box<ProxySetting>>,
}

/// What the TLS session of the latest connection negotiated (kept after connect, for getters).
pub struct PeerTls {
    /// The server's leaf certificate (DER); shared by every websocket that saw the same one.
    pub certificate: Arc<[u8]>,
    /// Static names (rustls' fixed set of versions and suites, each stored once per process).
    pub version: &'static CStr,
    pub cipher_suite: &'static CStr,
}

/// Everything behind the websocket's lock.
pub(crate) struct Inner {
    /// The lifecycle state the API reports. Written only by `runtime::lifecycle`.
    pub state: WebSocketState,
    /// The handshake completed at some point (the connection may have ended since).
    pub opened: bool,
    /// Why the last connect failed (read by a blocked `connect`).
    pub connect_error: Option<Error>,
    pub opts: Options,
    pub outbound: VecDeque<(MessageType, Bytes)>,
    /// Bytes queued or inside the codec, not yet accepted by the kernel.
    pub pending_bytes: usize,
    pub service_scheduled: bool,
    /// While a RESET callback runs: what it sends, to go ahead of the reconnect backlog.
    pub reset_front: Option<VecDeque<(MessageType, Bytes)>>,
    /// Reactor slot and serial while the socket exists.
    pub slot: Option<(usize, u64)>,
    /// The socket's fd while it exists (cleared under this lock before the socket closes).
    pub fd: i32,
    pub hardware_keepalive: bool,
}

/// What a websocket is, shared by its handle and the runtime thread.
pub struct WsShared {
    kind: WebSocketKind,
    pub(crate) inner: Mutex<Inner>,
    /// Signalled on every lifecycle change and when queued bytes reach the kernel.
    pub(crate) cond: Condvar,
    protocol: OnceCell<CString>,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) handler: Mutex<Option<Handler>>,
    pub(crate) channel: Mutex<Weak<ChannelShared>>,
    /// Which event kinds are created for this websocket when it is no channel's transport.
    pub(crate) event_mask: AtomicU32,
    /// The application freed its handle: no event is created for it any more.
    pub(crate) released: AtomicBool,
    /// TLS facts of each connection that differed from the one before (append-only: the bytes
    /// and strings live on the heap, so pointers handed to C stay valid while the websocket
    /// lives); the last is current.
    peer_tls: Mutex<Vec<PeerTls>>,
}

fn check_token(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid_argument(format!("{what} must not be empty")));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic() || "()<>@,;:\\\"/[]?={}".contains(*c)) {
        return Err(Error::invalid_argument(format!("{what} '{s}' contains the forbidden character {c:?}")));
    }
    Ok(())
}

impl WsShared {
    pub(crate) fn new(kind: WebSocketKind) -> Arc<WsShared> {
        Arc::new(WsShared {
            kind,
            inner: Mutex::new(Inner {
                state: WebSocketState::New,
                opened: false,
                connect_error: None,
                opts: Options {
                    headers: Vec::new(),
                    protocols: Protocols::default(),
                    max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                    message_type: MessageType::Binary,
                    tls: TlsOptions::default(),
                    outbound_limit: DEFAULT_OUTBOUND_LIMIT,
                    proxy: None,
                },
                outbound: VecDeque::new(),
                pending_bytes: 0,
                service_scheduled: false,
                reset_front: None,
                slot: None,
                fd: -1,
                hardware_keepalive: false,
            }),
            cond: Condvar::new(),
            protocol: OnceCell::new(),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            handler: Mutex::new(None),
            channel: Mutex::new(Weak::new()),
            event_mask: AtomicU32::new(EVENT_MASK_DEFAULT),
            released: AtomicBool::new(false),
            peer_tls: Mutex::new(Vec::new()),
        })
    }

    pub fn kind(&self) -> WebSocketKind {
        self.kind
    }

    pub fn state(&self) -> WebSocketState {
        self.inner.lock().state
    }

    /// The channel this websocket is the transport of, if any.
    pub fn channel(&self) -> Option<Arc<ChannelShared>> {
        self.channel.lock().upgrade()
    }

    fn with_options<T>(&self, f: impl FnOnce(&mut Options) -> Result<T>) -> Result<T> {
        let mut g = self.inner.lock();
        if g.state != WebSocketState::New {
            return Err(Error::invalid_state("control options can only be changed before connect"));
        }
        f(&mut g.opts)
    }

    /// Wakes every waiter so it re-checks its condition (no wake-up is lost: the lock is taken).
    pub(crate) fn wake_waiters(&self) {
        drop(self.inner.lock());
        self.cond.notify_all();
    }

    pub fn set_request_header(&self, name: &str, value: &str) -> Result<()> {
        check_token("header name", name)?;
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(Error::invalid_argument(format!("value of header '{name}' contains CR, LF or NUL")));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("sec-websocket-") {
            return Err(Error::invalid_argument(format!(
                "header '{name}' is managed by the websocket handshake and cannot be set"
            )));
        }
        HeaderValue::from_str(value)
            .map_err(|_| Error::invalid_argument(format!("value of header '{name}' is not a valid header value")))?;
        self.with_options(|o| {
            o.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            o.headers.push((name.to_string(), value.to_string()));
            Ok(())
        })
    }

    pub fn add_supported_protocol(&self, protocol: &str) -> Result<()> {
        check_token("protocol", protocol)?;
        self.with_options(|o| {
            o.protocols.insert(protocol);
            Ok(())
        })
    }

    /// The subprotocols offered so far, in preference order.
    pub fn supported_protocols(&self) -> Vec<String> {
        self.inner.lock().opts.protocols.iter().map(|p| p.to_string_lossy().into_owned()).collect()
    }

    /// Number of subprotocols offered.
    pub fn supported_protocol_count(&self) -> usize {
        self.inner.lock().opts.protocols.len()
    }

    /// Runs `f` on the `index`-th offered subprotocol as a C string (owned by the websocket: the
    /// pointer stays valid while it lives, since protocols are only ever appended).
    pub fn with_supported_protocol<T>(&self, index: usize, f: impl FnOnce(&CStr) -> T) -> Option<T> {
        let g = self.inner.lock();
        g.opts.protocols.get(index).map(f)
    }

    pub fn set_max_message_size(&self, bytes: u32) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid_argument("max message size must be at least 1 byte"));
        }
        self.with_options(|o| {
            o.max_message_size = bytes;
            Ok(())
        })
    }

    pub fn max_message_size(&self) -> u32 {
        self.inner.lock().opts.max_message_size
    }

    pub fn set_message_type(&self, t: MessageType) -> Result<()> {
        if self.kind == WebSocketKind::Stream && t != MessageType::Binary {
            return Err(Error::invalid_argument("a STREAM websocket always sends binary messages"));
        }
        // Allowed at any time (Windows allows it): it applies to later sends.
        self.inner.lock().opts.message_type = t;
        Ok(())
    }

    pub fn event_mask(&self) -> u32 {
        self.event_mask.load(Ordering::Acquire)
    }
    pub(crate) fn set_event_mask(&self, mask: u32) {
        self.event_mask.store(mask, Ordering::Release);
    }

    /// Whether an event of `kind` is wanted: the channel's mask if this websocket is a channel's
    /// transport, else its own. An unwanted event is never created.
    pub fn wants(&self, kind: EventKind) -> bool {
        if self.released.load(Ordering::Acquire) {
            return false;
        }
        let mask = match self.channel() {
            Some(ch) => ch.event_mask(),
            None => self.event_mask(),
        };
        mask & mask_bit(kind) != 0
    }

    pub fn message_type(&self) -> MessageType {
        self.inner.lock().opts.message_type
    }

    pub fn add_trusted_ca_pem(&self, pem: &[u8]) -> Result<()> {
        let certs = parse_pem_certs(pem)?;
        self.with_options(|o| {
            o.tls.extra_ca.extend(certs.iter().map(|c| crate::protocol::tls::intern_der(c.as_ref())));
            o.tls.extra_ca.shrink_to_fit();
            Ok(())
        })
    }

    pub fn set_ignore_certificate_errors(&self, ignore: bool) -> Result<()> {
        self.with_options(|o| {
            o.tls.ignore_certificate_errors = ignore;
            Ok(())
        })
    }

    pub fn ignore_certificate_errors(&self) -> bool {
        self.inner.lock().opts.tls.ignore_certificate_errors
    }

    /// `""` = direct, else a proxy URI (`http://`, `socks5://`, `socks5h://`); never called = the
    /// environment. Before connect only.
    pub fn set_proxy(&self, uri: &str) -> Result<()> {
        let setting = ProxySetting::parse(uri)?;
        self.with_options(|o| {
            o.proxy = Some(Box::new(setting));
            Ok(())
        })
    }

    /// The proxy option as text, credentials redacted: `""` direct, `None` from the environment.
    pub fn proxy(&self) -> Option<String> {
        match self.inner.lock().opts.proxy.as_deref() {
            None | Some(ProxySetting::Environment) => None,
            Some(ProxySetting::Direct) => Some(String::new()),
            Some(ProxySetting::Explicit(p)) => Some(p.to_string()),
        }
    }

    /// The client certificate chain (leaf first) and its private key, both PEM. The key must
    /// belong to the leaf (checked now). Before connect only.
    pub fn set_client_certificate_pem(&self, chain_pem: &[u8], key_pem: &[u8]) -> Result<()> {
        let id = ClientIdentity::from_pem(chain_pem, key_pem)?;
        self.with_options(|o| {
            o.tls.identity = Some(id);
            Ok(())
        })
    }

    /// Adds public-key pins (`sha256//<base64>`, several joined by `;`). Before connect only.
    pub fn add_pinned_public_key(&self, pin: &str) -> Result<()> {
        let pins = PublicKeyPin::parse_list(pin)?;
        self.with_options(|o| {
            for p in pins {
                if !o.tls.pins.contains(&p) {
                    o.tls.pins.push(p);
                }
            }
            Ok(())
        })
    }

    /// The pins set so far, in `sha256//<base64>` form.
    pub fn pinned_public_keys(&self) -> Vec<String> {
        self.inner.lock().opts.tls.pins.iter().map(|p| p.to_string()).collect()
    }

    pub fn has_client_certificate(&self) -> bool {
        self.inner.lock().opts.tls.identity.is_some()
    }

    /// Records what a TLS session negotiated (runtime thread, at open).
    pub(crate) fn set_peer_tls(&self, certificate: &[u8], version: &'static str, cipher_suite: &'static str) {
        let mut g = self.peer_tls.lock();
        if let Some(last) = g.last() {
            if &*last.certificate == certificate
                && last.version.to_bytes() == version.as_bytes()
                && last.cipher_suite.to_bytes() == cipher_suite.as_bytes()
            {
                return;
            }
        }
        g.reserve_exact(1); // usually the only entry: no spare slots
        g.push(PeerTls {
            certificate: intern_certificate(certificate),
            version: static_cstr(version),
            cipher_suite: static_cstr(cipher_suite),
        });
    }

    /// Runs `f` on the latest connection's TLS facts (`None`: not connected over TLS yet). What
    /// `f` sees stays at the same address while the websocket lives.
    pub fn with_peer_tls<T>(&self, f: impl FnOnce(Option<&PeerTls>) -> T) -> T {
        let g = self.peer_tls.lock();
        f(g.last())
    }

    pub fn set_outbound_buffer_limit(&self, bytes: u32) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid_argument("outbound buffer limit must be at least 1 byte"));
        }
        // Allowed at any time: it only bounds future sends.
        self.inner.lock().opts.outbound_limit = bytes;
        Ok(())
    }

    pub fn outbound_buffer_limit(&self) -> u32 {
        self.inner.lock().opts.outbound_limit
    }

    /// Negotiated subprotocol ("" if none or not yet connected).
    pub fn protocol_cstr(&self) -> &CStr {
        match self.protocol.get() {
            Some(p) => p.as_c_str(),
            None => c"",
        }
    }

    pub fn protocol(&self) -> &str {
        self.protocol_cstr().to_str().unwrap_or("")
    }

    pub(crate) fn set_protocol(&self, p: &str) {
        let _ = self.protocol.set(to_cstring_lossy(p));
    }

    pub fn stats(&self) -> WebSocketStats {
        WebSocketStats {
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
            messages_received: self.messages_received.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Replaces the handler; the old one (and its finalizer) is dropped outside the lock.
    pub(crate) fn replace_handler(&self, h: Option<Handler>) {
        let old = std::mem::replace(&mut *self.handler.lock(), h);
        drop(old);
    }

    /// Queues one whole message, or fails without queuing any of it. True when the runtime must
    /// be told (no service pass is pending yet).
    /// `from_runtime_thread`: sent from a callback; while a RESET callback runs such messages go
    /// ahead of the reconnect backlog (re-authenticate, re-subscribe), other threads' after it.
    pub(crate) fn enqueue(&self, t: MessageType, data: &[u8], from_runtime_thread: bool) -> Result<bool> {
        if self.kind == WebSocketKind::Stream && t != MessageType::Binary {
            return Err(Error::invalid_argument("a STREAM websocket only sends binary messages"));
        }
        if t == MessageType::Utf8 && std::str::from_utf8(data).is_err() {
            return Err(Error::invalid_argument("a UTF-8 message must be valid UTF-8"));
        }
        let mut g = self.inner.lock();
        match g.state {
            WebSocketState::Open => {}
            // Reconnecting (it was open before): queue for the new transport.
            WebSocketState::Connecting if g.opened => {}
            WebSocketState::New | WebSocketState::Connecting => {
                return Err(Error::invalid_state("the websocket is not connected yet"))
            }
            WebSocketState::Closing | WebSocketState::Closed => return Err(Error::closed("the websocket is closed")),
        }
        let limit = g.opts.outbound_limit as usize;
        if g.pending_bytes.saturating_add(data.len()) > limit && !(g.pending_bytes == 0 && data.len() <= limit) {
            return Err(Error::new(
                ResultCode::BufferFull,
                format!(
                    "outbound queue holds {} bytes; {} more would pass the {} byte limit",
                    g.pending_bytes,
                    data.len(),
                    limit
                ),
            ));
        }
        let msg = (t, Bytes::copy_from_slice(data));
        g.pending_bytes += data.len();
        match g.reset_front.as_mut() {
            Some(front) if from_runtime_thread => front.push_back(msg),
            _ => g.outbound.push_back(msg),
        }
        if g.state != WebSocketState::Open {
            return Ok(false); // the backlog goes out after the reconnect
        }
        let wake = !g.service_scheduled;
        g.service_scheduled = true;
        Ok(wake)
    }

    /// Waits until everything queued so far reached the kernel.
    pub(crate) fn wait_flushed(&self, timeout: Duration) -> Result<()> {
        self.wait_flushed_unless(timeout, &|| false)
    }

    /// `wait_flushed` that also ends (INVALID_STATE) once `gone()` — checked under the lock, so
    /// whoever makes it true must take the lock and then `notify_all` (see `wake_waiters`).
    pub(crate) fn wait_flushed_unless(&self, timeout: Duration, gone: &dyn Fn() -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut g = self.inner.lock();
        loop {
            if gone() {
                return Err(Error::invalid_state("the channel was closed or freed while flushing"));
            }
            match g.state {
                WebSocketState::Open | WebSocketState::Closing => {}
                WebSocketState::Closed => return Err(Error::closed("the transport is closed")),
                _ => return Err(Error::invalid_state("the transport is not connected")),
            }
            if g.pending_bytes == 0 {
                return Ok(());
            }
            if self.cond.wait_until(&mut g, deadline).timed_out() && g.pending_bytes != 0 {
                return Err(Error::new(
                    ResultCode::Timeout,
                    format!("{} bytes still queued after the timeout", g.pending_bytes),
                ));
            }
        }
    }
}

/// The C string of one of rustls' static names, made once per distinct name and kept for the
/// process's life (a handful: TLS versions and cipher suites).
fn static_cstr(name: &'static str) -> &'static CStr {
    static TABLE: Mutex<Vec<(&'static str, &'static CStr)>> = Mutex::new(Vec::new());
    let mut t = TABLE.lock();
    if let Some((_, c)) = t.iter().find(|(n, _)| *n == name) {
        return c;
    }
    let c: &'static CStr = Box::leak(to_cstring_lossy(name).into_boxed_c_str());
    t.push((name, c));
    c
}

/// One copy of each server certificate however many websockets saw it (thousands of channels
/// to one server would otherwise keep a kilobyte each).
fn intern_certificate(der: &[u8]) -> Arc<[u8]> {
    crate::protocol::tls::intern_der(der)
}
