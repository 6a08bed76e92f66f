//! Opening a connection on the runtime thread: non-blocking TCP connect (trying each address),
//! TLS, and the opening handshake of `protocol::handshake` driven over the socket.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use mio::{Interest, Token};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;

use super::io::{io_ok_unless_fatal, Sock};
use super::lifecycle::{Conn, End, Life};
use super::reactor::Reactor;
use super::schedule::KeepAliveBook;
use super::stream::{is_tls_failure, Stream, TlsStream};
use crate::error::{Error, ResultCode};
use crate::protocol::handshake::Handshake;
use crate::state::websocket::Options;
use crate::state::WsShared;
use crate::types::WebSocketState;

/// Everything the reactor needs to open the connection.
pub struct ConnectRequest {
    pub(crate) addrs: Vec<SocketAddr>,
    /// Set when name resolution failed: the reactor reports it as the connect failure.
    pub(crate) resolve_error: Option<Error>,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) request: Request,
    pub(crate) config: WebSocketConfig,
    pub(crate) deadline: Instant,
    pub(crate) timeout_ms: u32,
    pub(crate) notify_events: bool,
    pub(crate) uri: Box<str>,
}

/// What a reconnect needs of the first connect, kept small (it lives as long as the connection):
/// the URI and the addresses it resolved to; the HTTP request, TLS config and codec settings are
/// rebuilt from the websocket's (frozen) options at each attempt.
pub(crate) struct Template {
    pub uri: Box<str>,
    pub addrs: Box<[SocketAddr]>,
    pub timeout_ms: u32,
}

impl Template {
    fn of(req: &ConnectRequest) -> Template {
        Template { uri: req.uri.clone(), addrs: req.addrs.clone().into_boxed_slice(), timeout_ms: req.timeout_ms }
    }

    /// "host:port" for log lines.
    pub(crate) fn peer(&self) -> String {
        crate::protocol::uri::parse_target(&self.uri).map(|t| format!("{}:{}", t.host, t.port)).unwrap_or_default()
    }

    /// A connect request for the next attempt.
    pub(crate) fn request(&self, opts: &Options) -> Result<Box<ConnectRequest>, Error> {
        let target = crate::protocol::uri::parse_target(&self.uri)?;
        let tls = if target.secure { Some(crate::protocol::tls::client_config(&opts.tls)?) } else { None };
        Ok(Box::new(ConnectRequest {
            addrs: self.addrs.to_vec(),
            resolve_error: None,
            host: target.host,
            port: target.port,
            tls,
            request: build_request(&self.uri, opts)?,
            config: codec_config(opts),
            deadline: Instant::now() + std::time::Duration::from_millis(self.timeout_ms as u64),
            timeout_ms: self.timeout_ms,
            notify_events: false,
            uri: self.uri.clone(),
        }))
    }
}

/// The codec settings for a websocket's options: the small read buffer, no write buffering,
/// the message and frame size limits.
pub(crate) fn codec_config(opts: &Options) -> WebSocketConfig {
    let max = opts.max_message_size as usize;
    WebSocketConfig::default()
        .read_buffer_size(crate::state::websocket::READ_BUFFER_SIZE)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// The upgrade request for `uri` with the websocket's extra headers and offered subprotocols.
pub(crate) fn build_request(uri: &str, opts: &Options) -> Result<Request, Error> {
    let mut request =
        uri.into_client_request().map_err(|e| Error::invalid_argument(format!("invalid URI '{uri}': {e}")))?;
    for (n, v) in &opts.headers {
        let name = HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| Error::invalid_argument(format!("invalid header name '{n}'")))?;
        let value =
            HeaderValue::from_str(v).map_err(|_| Error::invalid_argument(format!("invalid header value for '{n}'")))?;
        request.headers_mut().append(name, value);
    }
    if !opts.protocols.is_empty() {
        let joined = opts.protocols.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ");
        let value = HeaderValue::from_str(&joined).map_err(|_| Error::invalid_argument("invalid subprotocol list"))?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", value);
    }
    Ok(request)
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

/// EOF, RST or any other failure while the TLS handshake is still running (e.g. `wss://` to a
/// plain server that hangs up) is a failed TLS handshake: TLS_FAILED, not HANDSHAKE_FAILED.
fn during_tls_handshake(e: Error, tls_handshaking: bool) -> Error {
    match e.code {
        ResultCode::HandshakeFailed | ResultCode::ConnectFailed if tls_handshaking => {
            Error::new(ResultCode::TlsFailed, format!("TLS handshake failed: {}", e.message))
        }
        _ => e,
    }
}

/// Maps an I/O error during TLS or the upgrade to the result code the application sees.
fn io_connect_error(io: io::Error) -> Error {
    match is_tls_failure(&io) {
        Some(t) => Error::new(ResultCode::TlsFailed, format!("TLS handshake failed: {t}")),
        None => match io.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                Error::new(
                    ResultCode::HandshakeFailed,
                    format!("the server closed the connection during the handshake: {io}"),
                )
            }
            _ => Error::new(ResultCode::ConnectFailed, format!("I/O error during the handshake: {io}")),
        },
    }
}

impl Reactor {
    /// A `Cmd::Connect`: takes a slot and starts the TCP connect.
    pub(crate) fn start_connect(&mut self, ws: Arc<WsShared>, mut req: Box<ConnectRequest>) {
        if ws.state() != WebSocketState::Connecting {
            return; // freed before we got here
        }
        let idx = self.alloc();
        self.serial += 1;
        let mut c = Conn {
            ws,
            serial: self.serial,
            life: Life::Starting,
            notify: req.notify_events,
            ka: KeepAliveBook::new(Instant::now()),
            unflushed: 0,
            auto_reply: 0,
            scheduled: None,
            window_ms: None,
            rearm: false,
            template: None,
            backoff: Default::default(),
            retry: None,
            opened_at: None,
            probe: None,
            paused: false,
        };
        // Kept for reconnects (a policy may be set at any time); the connect itself uses `req`.
        c.template = Some(Template::of(&req));
        c.ws.inner.lock().slot = Some((idx, c.serial));
        let started = if self.shutdown {
            Err(Error::invalid_state("the runtime is shutting down"))
        } else if let Some(e) = req.resolve_error.take() {
            Err(e)
        } else {
            self.open_tcp(idx, req, 0)
        };
        match started {
            Ok(life) => c.life = life,
            Err(e) => self.finish(&mut c, End::ConnectFailed(e), None),
        }
        self.put_back(idx, c);
    }

    /// Starts a non-blocking TCP connect to the first address from `next` that takes one.
    pub(crate) fn open_tcp(&mut self, idx: usize, req: Box<ConnectRequest>, mut next: usize) -> Result<Life, Error> {
        let mut last = String::from("no address to connect to");
        while next < req.addrs.len() {
            let addr = req.addrs[next];
            next += 1;
            match mio::net::TcpStream::connect(addr) {
                Ok(mut s) => {
                    if let Err(e) =
                        self.poll.registry().register(&mut s, Token(idx), Interest::READABLE | Interest::WRITABLE)
                    {
                        last = format!("cannot register socket: {e}");
                        continue;
                    }
                    let deadline = req.deadline;
                    return Ok(Life::Connecting {
                        stream: Stream::Plain(s, Default::default()),
                        req,
                        next_addr: next,
                        deadline,
                    });
                }
                Err(e) => last = format!("connect to {addr} failed: {e}"),
            }
        }
        Err(Error::new(ResultCode::ConnectFailed, last))
    }

    /// Readiness while connecting: TCP result, then TLS + upgrade request.
    pub(crate) fn connect_ready(&mut self, c: &mut Conn, idx: usize) {
        let Life::Connecting { stream, .. } = &c.life else { return };
        let failure = match stream.tcp().take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match stream.tcp().peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        let Life::Connecting { stream, req, next_addr, .. } = std::mem::replace(&mut c.life, Life::Starting) else {
            return;
        };
        let Stream::Plain(mut tcp, _) = stream else { return };
        if let Some(e) = failure {
            let _ = self.poll.registry().deregister(&mut tcp);
            drop(tcp);
            let more = next_addr < req.addrs.len();
            let err = Error::new(ResultCode::ConnectFailed, format!("TCP connect failed: {e}"));
            match if more { self.open_tcp(idx, req, next_addr) } else { Err(err) } {
                Ok(life) => c.life = life,
                Err(e) => self.finish(c, End::ConnectFailed(e), None),
            }
            return;
        }
        let _ = tcp.set_nodelay(true);
        c.ws.inner.lock().fd = tcp.as_raw_fd();
        let mut req = req;
        let stream = match req.tls.clone() {
            Some(cfg) => match TlsStream::new(tcp, cfg, &req.host) {
                Ok(t) => Stream::Tls(Box::new(t)),
                Err((mut tcp, e)) => {
                    let _ = self.poll.registry().deregister(&mut tcp);
                    return self.finish(c, End::ConnectFailed(e), None);
                }
            },
            None => Stream::Plain(tcp, Default::default()),
        };
        let hs = match Handshake::new(std::mem::take(&mut req.request)) {
            Ok(h) => h,
            Err(e) => {
                let mut stream = stream;
                let _ = self.poll.registry().deregister(stream.tcp_mut());
                return self.finish(c, End::ConnectFailed(e), None);
            }
        };
        c.life = Life::Handshaking {
            stream,
            hs: Box::new(hs),
            config: req.config,
            deadline: req.deadline,
            timeout_ms: req.timeout_ms,
        };
        self.handshake_ready(c, idx);
    }

    /// Readiness during the upgrade: send the request, read the response head.
    pub(crate) fn handshake_ready(&mut self, c: &mut Conn, idx: usize) {
        match self.handshake_step(c) {
            Ok(None) => {}
            Ok(Some((sock, protocol))) => {
                self.opened(c, sock, &protocol);
                if matches!(c.life, Life::Open { .. }) {
                    // Bytes may have arrived together with the handshake response: read them now,
                    // since edge-triggered readiness will not report them again.
                    self.read(c, idx);
                }
            }
            Err(e) => self.finish(c, End::ConnectFailed(e), None),
        }
    }

    fn handshake_step(&mut self, c: &mut Conn) -> Result<Option<(Box<Sock>, String)>, Error> {
        let tls_handshaking = matches!(&c.life, Life::Handshaking { stream, .. } if stream.tls_handshaking());
        self.upgrade_step(c).map_err(|e| during_tls_handshake(e, tls_handshaking))
    }

    fn upgrade_step(&mut self, c: &mut Conn) -> Result<Option<(Box<Sock>, String)>, Error> {
        let Life::Handshaking { stream, hs, .. } = &mut c.life else { return Ok(None) };
        while !hs.request_sent() {
            match io_ok_unless_fatal(stream.write(hs.pending_output())).map_err(io_connect_error)? {
                Some(0) => return Err(Error::new(ResultCode::ConnectFailed, "the socket accepted no bytes")),
                Some(n) => hs.advance_output(n),
                None => return Ok(None),
            }
        }
        if io_ok_unless_fatal(stream.flush()).map_err(io_connect_error)?.is_none() {
            return Ok(None);
        }
        let mut chunk = [0u8; 1024];
        loop {
            let n = match io_ok_unless_fatal(stream.read(&mut chunk)).map_err(io_connect_error)? {
                Some(0) => {
                    return Err(Error::new(
                        ResultCode::HandshakeFailed,
                        "the server closed the connection during the handshake",
                    ))
                }
                Some(n) => n,
                None => return Ok(None),
            };
            if let Some(accepted) = hs.feed(&chunk[..n])? {
                let Life::Handshaking { stream, config, .. } = std::mem::replace(&mut c.life, Life::Starting) else {
                    return Ok(None);
                };
                let sock = tungstenite::WebSocket::from_partially_read(
                    super::reframed::Reframed::new(stream, accepted.tail, config.max_frame_size),
                    Vec::new(),
                    tungstenite::protocol::Role::Client,
                    Some(config),
                );
                return Ok(Some((Box::new(sock), accepted.protocol)));
            }
        }
    }
}
