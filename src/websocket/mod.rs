//! `MessageWebSocket` / `StreamWebSocket`: options, connect, send, close and statistics.
//!
//! The socket itself lives on the reactor thread (see `runtime::reactor`); this object holds the
//! options, the outbound queue and the state other threads may read.

pub(crate) mod stream;

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use once_cell::sync::OnceCell;
use parking_lot::{Condvar, Mutex};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::{HeaderName, HeaderValue, Uri};
use tungstenite::protocol::WebSocketConfig;

use crate::channel::Channel;
use crate::error::{Error, Result, ResultCode};
use crate::event::Handler;
use crate::runtime::{ensure_may_block, Cmd, RtShared, Runtime};
use crate::types::{MessageType, WebSocketKind, WebSocketState, WebSocketStats};
use stream::TlsOptions;

/// Default largest incoming message (16 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 16 << 20;
/// Default outbound queue limit (16 MiB).
pub const DEFAULT_OUTBOUND_LIMIT: u32 = 16 << 20;
/// Default connect timeout when 0 is passed (30 s).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 30_000;
/// Read buffer per connection: small on purpose (thousands of idle connections), grows per frame.
pub const READ_BUFFER_SIZE: usize = 2048;

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

#[derive(Clone)]
pub(crate) struct Options {
    pub headers: Vec<(String, String)>,
    /// Boxed so that the C strings never move while the websocket lives.
    pub protocols: Vec<Box<CStr>>,
    /// Membership index for `protocols` (adding stays O(1)).
    pub protocol_set: std::collections::HashSet<String>,
    pub max_message_size: u32,
    pub message_type: MessageType,
    pub tls: TlsOptions,
    pub outbound_limit: u32,
}

pub(crate) struct Inner {
    pub state: WebSocketState,
    pub opts: Options,
    pub outbound: VecDeque<(MessageType, Bytes)>,
    /// Bytes queued or inside the codec, not yet accepted by the kernel.
    pub pending_bytes: usize,
    pub service_scheduled: bool,
    /// Reactor slot and serial while the socket exists.
    pub slot: Option<(usize, u64)>,
    pub fd: i32,
    pub connect_error: Option<Error>,
    pub hardware_keepalive: bool,
    /// The handshake completed at some point (the connection may have ended since).
    pub opened: bool,
}

/// A client websocket (Windows `MessageWebSocket` or `StreamWebSocket`).
///
/// The runtime keeps an open connection alive on its own: dropping your `Arc` does not close it.
/// Call [`WebSocket::close`] (close handshake) or [`WebSocket::abort`] (drop silently); the C ABI's
/// `ctrlchan_websocket_free` does the latter.
pub struct WebSocket {
    pub(crate) rt: Arc<RtShared>,
    kind: WebSocketKind,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) cond: Condvar,
    protocol: OnceCell<CString>,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) handler: Mutex<Option<Handler>>,
    pub(crate) channel: Mutex<Weak<Channel>>,
}

/// Everything the reactor needs to open the connection.
pub(crate) struct ConnectRequest {
    pub addrs: Vec<SocketAddr>,
    /// Set when name resolution failed: the reactor reports it as the connect failure.
    pub resolve_error: Option<Error>,
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub request: Request,
    pub config: WebSocketConfig,
    pub deadline: Instant,
    pub timeout_ms: u32,
    pub notify_events: bool,
}

impl ConnectRequest {
    /// Resolves the host name (blocking); fills `addrs` or `resolve_error`.
    pub(crate) fn resolve(&mut self) {
        match (self.host.as_str(), self.port).to_socket_addrs() {
            Ok(a) => self.addrs = a.collect(),
            Err(e) => {
                self.resolve_error =
                    Some(Error::new(ResultCode::ConnectFailed, format!("cannot resolve '{}': {e}", self.host)))
            }
        }
        if self.addrs.is_empty() && self.resolve_error.is_none() {
            self.resolve_error = Some(Error::new(ResultCode::ConnectFailed, format!("'{}' has no address", self.host)));
        }
    }
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

impl WebSocket {
    pub fn new(rt: &Runtime, kind: WebSocketKind) -> Result<Arc<WebSocket>> {
        let shared = rt.shared();
        if shared.is_shutting_down() {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        let ws = Arc::new(WebSocket {
            rt: shared.clone(),
            kind,
            inner: Mutex::new(Inner {
                state: WebSocketState::New,
                opts: Options {
                    headers: Vec::new(),
                    protocols: Vec::new(),
                    protocol_set: Default::default(),
                    max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                    message_type: MessageType::Binary,
                    tls: TlsOptions::default(),
                    outbound_limit: DEFAULT_OUTBOUND_LIMIT,
                },
                outbound: VecDeque::new(),
                pending_bytes: 0,
                service_scheduled: false,
                slot: None,
                fd: -1,
                connect_error: None,
                hardware_keepalive: false,
                opened: false,
            }),
            cond: Condvar::new(),
            protocol: OnceCell::new(),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            handler: Mutex::new(None),
            channel: Mutex::new(Weak::new()),
        });
        shared.track_websocket(&ws);
        Ok(ws)
    }

    pub fn kind(&self) -> WebSocketKind {
        self.kind
    }

    pub fn state(&self) -> WebSocketState {
        self.inner.lock().state
    }

    /// The channel this websocket is the transport of, if any.
    pub fn channel(&self) -> Option<Arc<Channel>> {
        self.channel.lock().upgrade()
    }

    fn with_options<T>(&self, f: impl FnOnce(&mut Options) -> Result<T>) -> Result<T> {
        let mut g = self.inner.lock();
        if g.state != WebSocketState::New {
            return Err(Error::invalid_state("control options can only be changed before connect"));
        }
        f(&mut g.opts)
    }

    pub fn set_request_header(&self, name: &str, value: &str) -> Result<()> {
        check_token("header name", name)?;
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(Error::invalid_argument(format!("value of header '{name}' contains CR, LF or NUL")));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
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
            if o.protocol_set.insert(protocol.to_string()) {
                o.protocols.push(crate::event::to_cstring_lossy(protocol).into_boxed_c_str());
            }
            Ok(())
        })
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

    pub fn outbound_buffer_limit(&self) -> u32 {
        self.inner.lock().opts.outbound_limit
    }

    pub fn ignore_certificate_errors(&self) -> bool {
        self.inner.lock().opts.tls.ignore_certificate_errors
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
        g.opts.protocols.get(index).map(|p| f(p))
    }

    pub fn set_message_type(&self, t: MessageType) -> Result<()> {
        if self.kind == WebSocketKind::Stream && t != MessageType::Binary {
            return Err(Error::invalid_argument("a STREAM websocket always sends binary messages"));
        }
        self.with_options(|o| {
            o.message_type = t;
            Ok(())
        })
    }

    pub fn message_type(&self) -> MessageType {
        self.inner.lock().opts.message_type
    }

    pub fn add_trusted_ca_pem(&self, pem: &[u8]) -> Result<()> {
        let certs = stream::parse_pem_certs(pem)?;
        self.with_options(|o| {
            o.tls.extra_ca.extend(certs);
            Ok(())
        })
    }

    pub fn set_ignore_certificate_errors(&self, ignore: bool) -> Result<()> {
        self.with_options(|o| {
            o.tls.ignore_certificate_errors = ignore;
            Ok(())
        })
    }

    pub fn set_outbound_buffer_limit(&self, bytes: u32) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid_argument("outbound buffer limit must be at least 1 byte"));
        }
        // Allowed at any time: it only bounds future sends.
        self.inner.lock().opts.outbound_limit = bytes;
        Ok(())
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
        let _ = self.protocol.set(crate::event::to_cstring_lossy(p));
    }

    pub fn stats(&self) -> WebSocketStats {
        WebSocketStats {
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
            messages_received: self.messages_received.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }

    pub fn set_handler(&self, h: Option<Handler>) -> Result<()> {
        if self.rt.is_shutting_down() && h.is_some() {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        let old = std::mem::replace(&mut *self.handler.lock(), h);
        drop(old); // finalizer runs outside the lock
        Ok(())
    }

    fn prepare(self: &Arc<Self>, uri: &str, timeout_ms: u32, notify_events: bool) -> Result<Box<ConnectRequest>> {
        if self.rt.is_shutting_down() {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        let parsed: Uri = uri.parse().map_err(|e| Error::invalid_argument(format!("invalid URI '{uri}': {e}")))?;
        let secure = match parsed.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(s) => return Err(Error::invalid_argument(format!("unsupported scheme '{s}': use ws:// or wss://"))),
            None => return Err(Error::invalid_argument(format!("URI '{uri}' has no scheme: use ws:// or wss://"))),
        };
        let host = parsed
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::invalid_argument(format!("URI '{uri}' has no host")))?;
        let bare_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        // `Uri::port()` hides an out-of-range port (None, as if absent): read it from the authority.
        let authority = parsed.authority().map(|a| a.as_str()).unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let port_text = if host_port.starts_with('[') {
            host_port.find("]:").map(|i| &host_port[i + 2..])
        } else {
            host_port.rfind(':').map(|i| &host_port[i + 1..])
        };
        let port = match port_text {
            None => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(t) => match t.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(Error::invalid_argument(format!("port '{t}' in URI '{uri}' is not in 1..=65535"))),
            },
        };
        let timeout_ms = if timeout_ms == 0 { DEFAULT_CONNECT_TIMEOUT_MS } else { timeout_ms };

        let opts = {
            let mut g = self.inner.lock();
            if g.state != WebSocketState::New {
                return Err(Error::invalid_state(match g.state {
                    WebSocketState::Connecting => "a connect is already in progress",
                    _ => "a websocket connects once; create a new one to reconnect",
                }));
            }
            g.state = WebSocketState::Connecting;
            g.opts.clone()
        };
        let revert = |e: Error| {
            self.inner.lock().state = WebSocketState::New;
            e
        };

        let mut request = uri
            .into_client_request()
            .map_err(|e| revert(Error::invalid_argument(format!("invalid URI '{uri}': {e}"))))?;
        for (n, v) in &opts.headers {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| revert(Error::invalid_argument(format!("invalid header name '{n}'"))))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| revert(Error::invalid_argument(format!("invalid header value for '{n}'"))))?;
            request.headers_mut().append(name, value);
        }
        if !opts.protocols.is_empty() {
            let joined =
                opts.protocols.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ");
            let value = HeaderValue::from_str(&joined)
                .map_err(|_| revert(Error::invalid_argument("invalid subprotocol list")))?;
            request.headers_mut().insert("Sec-WebSocket-Protocol", value);
        }
        let tls = if secure { Some(stream::client_config(&opts.tls).map_err(revert)?) } else { None };
        // IP literals need no resolution; names are resolved by connect() on the calling thread
        // and by connect_async() on a short-lived resolver thread (never on the runtime thread).
        let addrs: Vec<SocketAddr> = match bare_host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => Vec::new(),
        };
        let max = opts.max_message_size as usize;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_SIZE)
            .write_buffer_size(0)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        Ok(Box::new(ConnectRequest {
            addrs,
            resolve_error: None,
            host: bare_host,
            port,
            tls,
            request,
            config,
            deadline: Instant::now() + Duration::from_millis(timeout_ms as u64),
            timeout_ms,
            notify_events,
        }))
    }

    /// Connects and waits for the handshake. `timeout_ms == 0` means 30 s.
    pub fn connect(self: &Arc<Self>, uri: &str, timeout_ms: u32) -> Result<()> {
        ensure_may_block("ctrlchan_websocket_connect")?;
        let mut req = self.prepare(uri, timeout_ms, false)?;
        if req.addrs.is_empty() {
            req.resolve();
            if let Some(e) = req.resolve_error.take() {
                self.inner.lock().state = WebSocketState::New;
                return Err(e);
            }
        }
        let bound = req.deadline + Duration::from_secs(5);
        if let Err(e) = self.rt.send(Cmd::Connect(self.clone(), req)) {
            self.inner.lock().state = WebSocketState::New;
            return Err(e);
        }
        let mut g = self.inner.lock();
        while g.state == WebSocketState::Connecting {
            if self.cond.wait_until(&mut g, bound).timed_out() {
                break;
            }
        }
        match g.state {
            WebSocketState::Open | WebSocketState::Closing => Ok(()),
            // Opened, then already closed or lost: connect succeeded; the events tell the rest.
            WebSocketState::Closed if g.opened => Ok(()),
            WebSocketState::Connecting => Err(Error::new(ResultCode::Timeout, "connect did not complete")),
            _ => Err(g
                .connect_error
                .clone()
                .unwrap_or_else(|| Error::new(ResultCode::ConnectFailed, "connection failed"))),
        }
    }

    /// Starts connecting; a CONNECTED or CONNECT_FAILED event follows.
    pub fn connect_async(self: &Arc<Self>, uri: &str, timeout_ms: u32) -> Result<()> {
        let mut req = self.prepare(uri, timeout_ms, true)?;
        if !req.addrs.is_empty() {
            if let Err(e) = self.rt.send(Cmd::Connect(self.clone(), req)) {
                self.inner.lock().state = WebSocketState::New;
                return Err(e);
            }
            return Ok(());
        }
        let ws = self.clone();
        let spawned = std::thread::Builder::new().name("ctrlchan-resolve".into()).spawn(move || {
            req.resolve();
            if ws.rt.send(Cmd::Connect(ws.clone(), req)).is_err() {
                ws.force_closed("the runtime shut down while resolving the host name");
            }
        });
        if let Err(e) = spawned {
            self.inner.lock().state = WebSocketState::New;
            return Err(Error::new(ResultCode::Io, format!("cannot start the resolver thread: {e}")));
        }
        Ok(())
    }

    /// Sends with the websocket's message type.
    pub fn send(self: &Arc<Self>, data: &[u8]) -> Result<()> {
        let t = if self.kind == WebSocketKind::Stream { MessageType::Binary } else { self.message_type() };
        self.send_message(t, data)
    }

    /// Queues one whole message, or fails without queuing any of it.
    pub fn send_message(self: &Arc<Self>, t: MessageType, data: &[u8]) -> Result<()> {
        if self.kind == WebSocketKind::Stream && t != MessageType::Binary {
            return Err(Error::invalid_argument("a STREAM websocket only sends binary messages"));
        }
        if t == MessageType::Utf8 && std::str::from_utf8(data).is_err() {
            return Err(Error::invalid_argument("a UTF-8 message must be valid UTF-8"));
        }
        let mut g = self.inner.lock();
        match g.state {
            WebSocketState::Open => {}
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
        g.outbound.push_back((t, Bytes::copy_from_slice(data)));
        g.pending_bytes += data.len();
        let wake = !g.service_scheduled;
        g.service_scheduled = true;
        drop(g);
        if wake {
            self.rt.send(Cmd::Service(self.clone()))?;
        }
        Ok(())
    }

    /// Starts the close handshake. `reason` must be at most 123 bytes of UTF-8.
    pub fn close(self: &Arc<Self>, code: u16, reason: &str) -> Result<()> {
        let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
        if !valid {
            return Err(Error::invalid_argument(format!(
                "close code {code} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)"
            )));
        }
        if reason.len() > 123 {
            return Err(Error::invalid_argument("close reason must be at most 123 bytes"));
        }
        {
            let mut g = self.inner.lock();
            match g.state {
                WebSocketState::Open => g.state = WebSocketState::Closing,
                WebSocketState::Closing | WebSocketState::Closed => {
                    return Err(Error::closed("the websocket is already closing or closed"))
                }
                _ => return Err(Error::invalid_state("the websocket is not connected")),
            }
        }
        self.rt.send(Cmd::Close(self.clone(), code, reason.to_string()))
    }

    /// Waits until everything queued so far reached the kernel.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        ensure_may_block("ctrlchan_channel_flush_transport")?;
        let deadline = Instant::now() + timeout;
        let mut g = self.inner.lock();
        loop {
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

    pub(crate) fn force_closed(&self, why: &str) {
        let mut g = self.inner.lock();
        if g.state == WebSocketState::Connecting {
            g.connect_error = Some(Error::new(ResultCode::Io, why));
        }
        g.state = WebSocketState::Closed;
        g.pending_bytes = 0;
        g.outbound.clear();
        drop(g);
        self.cond.notify_all();
    }

    /// Drops the connection without events (used when the handle is freed).
    pub fn abort(self: &Arc<Self>) {
        let had_socket = {
            let mut g = self.inner.lock();
            let s = g.slot.is_some() || g.state == WebSocketState::Connecting;
            if g.state == WebSocketState::Connecting {
                g.connect_error = Some(Error::closed("the websocket was freed while connecting"));
            }
            g.state = WebSocketState::Closed;
            s
        };
        self.cond.notify_all();
        let old = self.handler.lock().take();
        drop(old);
        if had_socket {
            let _ = self.rt.send(Cmd::Abort(self.clone()));
        }
    }
}
