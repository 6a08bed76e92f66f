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
use crate::protocol::proxy::{unreachable, Proxy, ProxyHandshake, ProxyKind, ProxyTarget, Status};
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
    /// The upgrade request, already serialized (the `http::Request` it came from is dropped at
    /// once, on the thread that built it); an error here fails the connect when it starts.
    pub(crate) handshake: Result<Box<Handshake>, Error>,
    pub(crate) config: WebSocketConfig,
    pub(crate) deadline: Instant,
    pub(crate) timeout_ms: u32,
    pub(crate) notify_events: bool,
    /// Through this proxy (then `addrs` are the proxy's): chosen at connect, kept for reconnects.
    pub(crate) proxy: Option<Proxy>,
    /// What the proxy is asked to connect to (a name, or for `socks5://` a resolved address).
    pub(crate) proxy_target: Option<ProxyTarget>,
    pub(crate) uri: Box<str>,
}

/// What the application's thread hands the runtime thread for a connect (inline in the command,
/// no allocation of its own): the template, whose URI and addresses are the long-lived copies,
/// and when the connect times out. The upgrade request and TLS session are built on the runtime
/// thread when the attempt starts (`Template::request`), so nothing the application's thread
/// allocated for the connect outlives the call except what the connection keeps: a burst of
/// connects leaves no holes between the application's long-lived objects (the websockets and
/// channels it creates meanwhile) once the runtime thread has got to them.
pub struct ConnectStart {
    pub(crate) template: Template,
    pub(crate) deadline: Instant,
    pub(crate) notify_events: bool,
    /// Name resolution failed: the connect fails with this when it starts.
    pub(crate) resolve_error: Option<Error>,
}

impl ConnectRequest {
    /// What the runtime thread needs of a prepared request; the rest is freed here (on the
    /// calling thread, at once).
    pub(crate) fn into_start(self: Box<Self>) -> ConnectStart {
        let req = *self;
        ConnectStart {
            deadline: req.deadline,
            notify_events: req.notify_events,
            template: Template {
                uri: req.uri,
                addrs: req.addrs.into_boxed_slice(),
                timeout_ms: req.timeout_ms,
                route: req.proxy.map(|p| Box::new((p, req.proxy_target))),
            },
            resolve_error: req.resolve_error,
        }
    }
}

/// What a reconnect needs of the first connect, kept small (it lives as long as the connection):
/// the URI and the addresses it resolved to; the HTTP request, TLS config and codec settings are
/// rebuilt from the websocket's (frozen) options at each attempt.
pub(crate) struct Template {
    pub uri: Box<str>,
    /// The proxy's addresses when proxied.
    pub addrs: Box<[SocketAddr]>,
    pub timeout_ms: u32,
    /// The proxy route of the first connect: reconnects go through the same proxy (boxed: most
    /// connections have none, and the template lives as long as the connection).
    pub route: Option<Box<(Proxy, Option<ProxyTarget>)>>,
}

impl Template {
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
            handshake: upgrade_request(&self.uri, opts)?,
            config: codec_config(opts),
            deadline: Instant::now() + std::time::Duration::from_millis(self.timeout_ms as u64),
            timeout_ms: self.timeout_ms,
            notify_events: false,
            uri: self.uri.clone(),
            proxy: self.route.as_ref().map(|r| r.0.clone()),
            proxy_target: self.route.as_ref().and_then(|r| r.1.clone()),
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

/// The opening handshake for `uri`: `Err` (outer) for options that cannot make a request, `Ok(Err)`
/// when serializing it failed (reported as the connect's failure).
pub(crate) fn upgrade_request(uri: &str, opts: &Options) -> Result<Result<Box<Handshake>, Error>, Error> {
    let request = build_request(uri, opts)?;
    Ok(Handshake::new(request).map(Box::new))
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
    /// Fills what needs no DNS: the addresses of an IP literal (the proxy's when proxied) and the
    /// proxy target. `needs_dns()` says whether `resolve` must still run.
    pub(crate) fn plan(&mut self) -> Result<(), Error> {
        let literal = |host: &str, port: u16| host.parse::<std::net::IpAddr>().ok().map(|ip| SocketAddr::new(ip, port));
        match &self.proxy {
            None => self.addrs = literal(&self.host, self.port).into_iter().collect(),
            Some(p) => {
                self.addrs = literal(p.host(), p.port()).into_iter().collect();
                let target = ProxyTarget::from_host(&self.host, self.port)?;
                let need_address = p.kind() == ProxyKind::Socks5 && target.name().is_some();
                self.proxy_target = if need_address { None } else { Some(target) };
            }
        }
        Ok(())
    }

    pub(crate) fn needs_dns(&self) -> bool {
        self.addrs.is_empty() || (self.proxy.is_some() && self.proxy_target.is_none())
    }

    /// Resolves host names (blocking): the server's, or the proxy's and, for `socks5://`, the
    /// server's for the proxy. Fills `addrs` / `proxy_target` or `resolve_error`.
    pub(crate) fn resolve(&mut self) {
        if let Err(e) = self.try_resolve() {
            self.resolve_error = Some(e);
        }
    }

    fn try_resolve(&mut self) -> Result<(), Error> {
        let lookup = |host: &str, port: u16| -> Result<Vec<SocketAddr>, String> {
            match (host, port).to_socket_addrs() {
                Ok(a) => {
                    let a: Vec<SocketAddr> = a.collect();
                    if a.is_empty() {
                        Err(format!("'{host}' has no address"))
                    } else {
                        Ok(a)
                    }
                }
                Err(e) => Err(format!("cannot resolve '{host}': {e}")),
            }
        };
        let Some(proxy) = self.proxy.clone() else {
            if self.addrs.is_empty() {
                self.addrs = lookup(&self.host, self.port).map_err(|m| Error::new(ResultCode::ConnectFailed, m))?;
            }
            return Ok(());
        };
        if self.addrs.is_empty() {
            self.addrs = lookup(proxy.host(), proxy.port()).map_err(|m| unreachable(&proxy, &m))?;
        }
        if self.proxy_target.is_none() {
            // socks5://: the client resolves the server's name and hands the proxy an address.
            let a = lookup(&self.host, self.port).map_err(|m| Error::new(ResultCode::ConnectFailed, m))?;
            self.proxy_target = a.first().map(|a| ProxyTarget::ip(*a));
        }
        Ok(())
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
    /// A `Cmd::Connect`: takes a slot and starts the connect (or queues it, see `admission`).
    pub(crate) fn start_connect(&mut self, ws: Arc<WsShared>, start: ConnectStart) {
        if ws.state() != WebSocketState::Connecting {
            return; // freed before we got here
        }
        let idx = self.alloc();
        self.serial += 1;
        let mut c = Conn {
            ws,
            serial: self.serial,
            life: Life::Starting,
            notify: start.notify_events,
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
            ping_in_codec: false,
            permit: None,
        };
        // Every attempt (this one, and reconnects: a policy may be set at any time) is built from it.
        c.template = Some(start.template);
        c.ws.inner.lock().slot = Some((idx, c.serial));
        if self.shutdown {
            self.finish(&mut c, End::ConnectFailed(Error::invalid_state("the runtime is shutting down")), None);
        } else if let Some(e) = start.resolve_error {
            self.finish(&mut c, End::ConnectFailed(e), None);
        } else {
            self.begin_attempt(&mut c, idx, start.deadline);
        }
        self.put_back(idx, c);
    }

    /// Starts a connect attempt (the first or a reconnect) if a permit is free, else queues it
    /// until `deadline`.
    pub(crate) fn begin_attempt(&mut self, c: &mut Conn, idx: usize, deadline: Instant) {
        let dest = c.template.as_ref().and_then(|t| t.addrs.first().copied());
        match self.gate.try_take(dest) {
            Some(permit) => {
                c.permit = Some(permit);
                self.open_attempt(c, idx, deadline);
            }
            None => {
                self.gate.wait(dest, idx, c.serial);
                c.life = Life::Queued { deadline };
            }
        }
    }

    /// An attempt holding a permit: its request from the template (built on this thread), then TCP.
    fn open_attempt(&mut self, c: &mut Conn, idx: usize, deadline: Instant) {
        let req = match c.template.as_ref() {
            Some(t) => {
                let built = t.request(&c.ws.inner.lock().opts);
                built.map(|mut r| {
                    r.deadline = deadline;
                    r
                })
            }
            None => Err(Error::closed("nothing to connect to")),
        };
        match req.and_then(|req| self.open_tcp(idx, req, 0)) {
            Ok(life) => c.life = life,
            Err(e) => self.finish(c, End::ConnectFailed(e), None),
        }
    }

    /// Starts queued connects while permits are free (after each reactor round). Bounded by the
    /// queue's length: every entry is admitted once.
    pub(crate) fn admit_queued(&mut self) {
        for ((idx, serial), permit) in self.gate.admit() {
            self.with_slot(idx, |r, c, idx| {
                if c.serial != serial {
                    return; // gone (the permit goes back at once)
                }
                if let Life::Queued { deadline } = c.life {
                    c.permit = Some(permit);
                    r.open_attempt(c, idx, deadline);
                }
            });
        }
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
        Err(match &req.proxy {
            Some(p) => unreachable(p, &last),
            None => Error::new(ResultCode::ConnectFailed, last),
        })
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
            let err = match &req.proxy {
                Some(p) => unreachable(p, &format!("TCP connect failed: {e}")),
                None => Error::new(ResultCode::ConnectFailed, format!("TCP connect failed: {e}")),
            };
            match if more { self.open_tcp(idx, req, next_addr) } else { Err(err) } {
                Ok(life) => c.life = life,
                Err(e) => self.finish(c, End::ConnectFailed(e), None),
            }
            return;
        }
        let _ = tcp.set_nodelay(true);
        c.ws.inner.lock().fd = tcp.as_raw_fd();
        if let Some(proxy) = &req.proxy {
            log::debug!(target: "ctrlchan", "connected to the proxy {proxy}, opening the tunnel");
            let hs = match req.proxy_target.as_ref().map(|t| ProxyHandshake::new(proxy, t)) {
                Some(Ok(hs)) => hs,
                Some(Err(e)) => return self.abandon(c, tcp, e),
                None => return self.abandon(c, tcp, Error::new(ResultCode::ConnectFailed, "no proxy target")),
            };
            let deadline = req.deadline;
            c.life =
                Life::Tunneling { stream: Stream::Plain(tcp, Default::default()), hs: Box::new(hs), req, deadline };
            return self.tunnel_ready(c, idx);
        }
        self.start_upgrade(c, idx, tcp, req, &[]);
    }

    /// Deregisters a socket that never made it into a life, and ends the connect with `e`.
    fn abandon(&mut self, c: &mut Conn, mut tcp: mio::net::TcpStream, e: Error) {
        let _ = self.poll.registry().deregister(&mut tcp);
        self.finish(c, End::ConnectFailed(e), None)
    }

    /// Readiness while tunneling: write the proxy handshake, feed its answer; once the tunnel is
    /// up, TLS and the upgrade start inside it with the bytes that followed the answer.
    pub(crate) fn tunnel_ready(&mut self, c: &mut Conn, idx: usize) {
        match self.tunnel_step(c) {
            Ok(None) => {}
            Ok(Some(leftover)) => {
                let Life::Tunneling { stream: Stream::Plain(tcp, _), req, .. } =
                    std::mem::replace(&mut c.life, Life::Starting)
                else {
                    return;
                };
                // `Proxy`'s Display redacts credentials (`***@`).
                if let (Some(proxy), Some(target)) = (&req.proxy, &req.proxy_target) {
                    log::info!(target: "ctrlchan", "tunnel to {target} through the proxy {proxy} established");
                }
                self.start_upgrade(c, idx, tcp, req, &leftover);
            }
            Err(e) => self.finish(c, End::ConnectFailed(e), None),
        }
    }

    /// `Ok(Some(leftover))`: the tunnel is established.
    fn tunnel_step(&mut self, c: &mut Conn) -> Result<Option<Vec<u8>>, Error> {
        let Life::Tunneling { stream, hs, .. } = &mut c.life else { return Ok(None) };
        let lost = |hs: &ProxyHandshake, e: io::Error| {
            let closed = hs.closed_error();
            Error::new(closed.code, format!("{} ({e})", closed.message))
        };
        loop {
            while !hs.pending_output().is_empty() {
                match io_ok_unless_fatal(stream.write(hs.pending_output())).map_err(|e| lost(hs, e))? {
                    Some(0) => return Err(hs.closed_error()),
                    Some(n) => hs.consume_output(n),
                    None => return Ok(None),
                }
            }
            let mut chunk = [0u8; 512];
            let n = match io_ok_unless_fatal(stream.read(&mut chunk)).map_err(|e| lost(hs, e))? {
                Some(0) => return Err(hs.closed_error()),
                Some(n) => n,
                None => return Ok(None),
            };
            // Bytes past the proxy's answer are the server's: never more than one chunk.
            if let Status::Established { leftover } = hs.feed(&chunk[..n])? {
                return Ok(Some(leftover));
            }
        }
    }

    /// TCP (or the tunnel) is up: TLS if wss (with `early` server bytes first), then the upgrade.
    fn start_upgrade(
        &mut self,
        c: &mut Conn,
        idx: usize,
        tcp: mio::net::TcpStream,
        req: Box<ConnectRequest>,
        early: &[u8],
    ) {
        let stream = match req.tls.clone() {
            Some(cfg) => match TlsStream::new(tcp, cfg, &req.host, early) {
                Ok(t) => Stream::Tls(Box::new(t)),
                Err((tcp, e)) => return self.abandon(c, tcp, e),
            },
            None => Stream::Plain(tcp, Default::default()),
        };
        let req = *req;
        let plain = req.tls.is_none();
        let hs = req.handshake.and_then(|mut hs| {
            // Plain ws through a tunnel: bytes the server sent before our request (never valid).
            match plain && !early.is_empty() {
                true => match hs.feed(early)? {
                    Some(_) => Err(Error::new(ResultCode::HandshakeFailed, "the server answered before the request")),
                    None => Ok(hs),
                },
                false => Ok(hs),
            }
        });
        let hs = match hs {
            Ok(h) => h,
            Err(e) => {
                let mut stream = stream;
                let _ = self.poll.registry().deregister(stream.tcp_mut());
                return self.finish(c, End::ConnectFailed(e), None);
            }
        };
        c.life = Life::Handshaking {
            stream,
            hs,
            config: Box::new(req.config),
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
                if let Some((cert, version, suite)) = sock.get_ref().tls_negotiated() {
                    c.ws.set_peer_tls(cert, version, suite);
                }
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
                    Some(*config),
                );
                return Ok(Some((Box::new(sock), accepted.protocol)));
            }
        }
    }
}
