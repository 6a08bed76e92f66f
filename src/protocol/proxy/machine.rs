//! HTTP CONNECT and SOCKS5 as sans-I/O state machines.

use super::*;

// ---------------------------------------------------------------------------------------------
// The tunnel's target

/// The server to reach through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyTarget {
    addr: TargetAddr,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TargetAddr {
    Ip(IpAddr),
    Name(String),
}

impl ProxyTarget {
    /// The host of a ws/wss URI (brackets allowed around IPv6) and its port. An IP literal becomes
    /// an address; anything else must be a plausible host name (no spaces, controls, `/`, `@`, at
    /// most 255 bytes).
    pub fn from_host(host: &str, port: u16) -> Result<ProxyTarget> {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(ProxyTarget { addr: TargetAddr::Ip(ip), port });
        }
        if bare.is_empty()
            || bare.len() > 255
            || bare.bytes().any(|b| b.is_ascii_control() || matches!(b, b' ' | b'/' | b'@' | b':' | b'[' | b']'))
        {
            return Err(Error::invalid_argument(format!(
                "'{}' is not a host name a proxy can be asked for",
                sanitize(host, 100)
            )));
        }
        Ok(ProxyTarget { addr: TargetAddr::Name(bare.to_string()), port })
    }
    /// An address resolved by the client (what `socks5://` needs).
    pub fn ip(addr: SocketAddr) -> ProxyTarget {
        ProxyTarget { addr: TargetAddr::Ip(addr.ip()), port: addr.port() }
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The host name, when the target is one (not an address).
    pub fn name(&self) -> Option<&str> {
        match &self.addr {
            TargetAddr::Name(n) => Some(n),
            TargetAddr::Ip(_) => None,
        }
    }
}

impl fmt::Display for ProxyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            TargetAddr::Ip(ip) => write!(f, "{}", SocketAddr::new(*ip, self.port)),
            TargetAddr::Name(n) => write!(f, "{n}:{}", self.port),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The handshakes

/// Result of feeding bytes to a [`ProxyHandshake`].
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// Write any [`ProxyHandshake::pending_output`], then read more.
    NeedMore,
    /// The tunnel is open. `leftover`: bytes that followed the proxy's answer; they came from the
    /// server through the tunnel and must be handed to the next layer (TLS or WebSocket) first.
    Established { leftover: Vec<u8> },
}

/// A proxy handshake in progress: HTTP CONNECT or SOCKS5, sans-I/O.
///
/// `Debug` shows the state only: the output buffer may hold credentials.
pub struct ProxyHandshake {
    /// The proxy, redacted, for messages.
    proxy: String,
    target: ProxyTarget,
    credentials: Option<Credentials>,
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Bytes received in all (for messages).
    received: usize,
    state: State,
    failure: Option<Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// HTTP: waiting for the response head; the first `scanned` bytes of `buf` hold no end of head.
    HttpHead {
        scanned: usize,
    },
    /// SOCKS5: greeting sent, waiting for the method choice.
    SocksMethod,
    /// SOCKS5: user/password sent (RFC 1929), waiting for its status.
    SocksAuth,
    /// SOCKS5: CONNECT sent, waiting for the reply.
    SocksReply,
    Established,
    Failed,
}

impl fmt::Debug for ProxyHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandshake")
            .field("proxy", &self.proxy)
            .field("target", &self.target)
            .field("state", &self.state)
            .field("pending_output", &self.pending_output().len())
            .field("received", &self.received)
            .finish()
    }
}

const SOCKS_NO_AUTH: u8 = 0x00;
const SOCKS_USER_PASS: u8 = 0x02;
const SOCKS_NO_ACCEPTABLE: u8 = 0xFF;
/// The `http_status` a SOCKS5 authentication failure carries: the same meaning as HTTP's 407
/// (other credentials are needed), so the reconnect rules treat both alike.
pub(crate) const SOCKS_AUTH_STATUS: u16 = 407;

impl ProxyHandshake {
    /// Starts the handshake with `proxy` for a tunnel to `target`; the first bytes to send are in
    /// [`pending_output`](Self::pending_output).
    ///
    /// `socks5://` needs an address target ([`ProxyTarget::ip`]): a name is `INVALID_ARGUMENT`
    /// (resolve it first, or use `socks5h://`).
    pub fn new(proxy: &Proxy, target: &ProxyTarget) -> Result<ProxyHandshake> {
        let (out, state) = match proxy.kind() {
            ProxyKind::HttpConnect => (http_connect_request(proxy, target), State::HttpHead { scanned: 0 }),
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                if let (ProxyKind::Socks5, Some(name)) = (proxy.kind(), target.name()) {
                    return Err(Error::invalid_argument(format!(
                        "socks5:// resolves names locally: resolve '{name}' first, or use socks5h://"
                    )));
                }
                // Greeting (RFC 1928 §3): version 5 and the methods offered: "no authentication"
                // always, "username/password" (RFC 1929) too when the URI has credentials.
                let greeting = if proxy.credentials().is_some() {
                    vec![5, 2, SOCKS_NO_AUTH, SOCKS_USER_PASS]
                } else {
                    vec![5, 1, SOCKS_NO_AUTH]
                };
                (greeting, State::SocksMethod)
            }
        };
        Ok(ProxyHandshake {
            proxy: proxy.to_string(),
            target: target.clone(),
            credentials: proxy.credentials().cloned(),
            out,
            out_pos: 0,
            buf: Vec::new(),
            received: 0,
            state,
            failure: None,
        })
    }

    /// Bytes to write to the proxy now; empty when the handshake waits for input (or is over).
    pub fn pending_output(&self) -> &[u8] {
        self.out.get(self.out_pos..).unwrap_or(&[])
    }

    /// Records that the first `n` bytes of [`pending_output`](Self::pending_output) were written
    /// (more than pending is clamped).
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// True once [`Status::Established`] was returned.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Feeds bytes read from the proxy (any split, down to one byte at a time).
    ///
    /// Errors are `PROXY_FAILED` (refusal, wrong credentials, a malformed or oversized answer),
    /// and the same error again on every later call; feeding after `Established` is
    /// `INVALID_STATE`.
    pub fn feed(&mut self, input: &[u8]) -> Result<Status> {
        match self.state {
            State::Failed => {
                return Err(self.failure.clone().unwrap_or_else(|| proxy_failed("the proxy handshake failed")))
            }
            State::Established => return Err(Error::invalid_state("the proxy tunnel is already established")),
            _ => {}
        }
        self.buf.extend_from_slice(input);
        self.received += input.len();
        match self.step() {
            Ok(status) => Ok(status),
            Err(e) => {
                self.state = State::Failed;
                self.buf = Vec::new();
                self.out = Vec::new();
                self.out_pos = 0;
                self.failure = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The error for an EOF from the proxy before the tunnel was established (`PROXY_FAILED`).
    pub fn closed_error(&self) -> Error {
        if let Some(e) = &self.failure {
            return e.clone();
        }
        proxy_failed(format!(
            "the proxy {} closed the connection during the {} handshake for {} (after {} bytes from it)",
            self.proxy,
            self.protocol_name(),
            self.target,
            self.received
        ))
    }

    /// The error for a proxy that did not finish its handshake within the connect timeout
    /// (`PROXY_FAILED`, retried by a reconnect policy like an unreachable proxy).
    pub fn timed_out_error(&self, timeout_ms: u32) -> Error {
        proxy_failed(format!(
            "the proxy {} did not complete the {} handshake for {} within {timeout_ms} ms (after {} bytes from it)",
            self.proxy,
            self.protocol_name(),
            self.target,
            self.received
        ))
    }

    fn protocol_name(&self) -> &'static str {
        match self.state {
            State::HttpHead { .. } => "HTTP CONNECT",
            _ => "SOCKS5",
        }
    }

    /// Advances over buffered input as far as it goes.
    fn step(&mut self) -> Result<Status> {
        loop {
            match self.state {
                State::HttpHead { scanned } => return self.step_http(scanned),
                State::SocksMethod => {
                    let [version, method] = match self.buf.get(..2) {
                        Some(&[v, m]) => [v, m],
                        _ => return Ok(Status::NeedMore),
                    };
                    self.check_socks_version(version)?;
                    self.buf.drain(..2);
                    match method {
                        SOCKS_NO_AUTH => self.send_socks_connect(),
                        SOCKS_USER_PASS => match &self.credentials {
                            Some(c) => {
                                let mut req = Vec::with_capacity(3 + c.username.len() + c.password.len());
                                req.push(1); // sub-negotiation version (RFC 1929)
                                req.push(c.username.len() as u8);
                                req.extend_from_slice(&c.username);
                                req.push(c.password.len() as u8);
                                req.extend_from_slice(&c.password);
                                self.out.extend_from_slice(&req);
                                self.state = State::SocksAuth;
                            }
                            None => {
                                return Err(proxy_failed(format!(
                                    "the SOCKS5 proxy {} chose username/password authentication, which was \
                                     not offered: put user:password in the proxy URI",
                                    self.proxy
                                )))
                            }
                        },
                        SOCKS_NO_ACCEPTABLE => {
                            return Err(proxy_failed(if self.credentials.is_some() {
                                format!(
                                    "the SOCKS5 proxy {} accepts none of the offered authentication methods \
                                     (no authentication, username/password)",
                                    self.proxy
                                )
                            } else {
                                format!(
                                    "the SOCKS5 proxy {} requires authentication: put user:password in the \
                                     proxy URI",
                                    self.proxy
                                )
                            })
                            .with_http_status(SOCKS_AUTH_STATUS))
                        }
                        m => {
                            return Err(proxy_failed(format!(
                                "the SOCKS5 proxy {} chose authentication method 0x{m:02x}, which was not offered",
                                self.proxy
                            )))
                        }
                    }
                }
                State::SocksAuth => {
                    // [version 1, status]. Some servers answer version 5 here: only the status counts.
                    let status = match self.buf.get(..2) {
                        Some(&[_, s]) => s,
                        _ => return Ok(Status::NeedMore),
                    };
                    self.buf.drain(..2);
                    if status != 0 {
                        return Err(proxy_failed(format!(
                            "the SOCKS5 proxy {} rejected the user name and password (status 0x{status:02x})",
                            self.proxy
                        ))
                        .with_http_status(SOCKS_AUTH_STATUS));
                    }
                    self.send_socks_connect();
                }
                State::SocksReply => {
                    // [5, REP, RSV, ATYP, BND.ADDR, BND.PORT] (RFC 1928 §6)
                    let Some(&version) = self.buf.first() else { return Ok(Status::NeedMore) };
                    self.check_socks_version(version)?;
                    let Some(&rep) = self.buf.get(1) else { return Ok(Status::NeedMore) };
                    if rep != 0 {
                        return Err(proxy_failed(format!(
                            "the SOCKS5 proxy {} could not open the tunnel to {}: {} (reply 0x{rep:02x})",
                            self.proxy,
                            self.target,
                            socks_reply_text(rep)
                        )));
                    }
                    let Some(&atyp) = self.buf.get(3) else { return Ok(Status::NeedMore) };
                    let total = match atyp {
                        1 => 4 + 4 + 2,
                        4 => 4 + 16 + 2,
                        3 => match self.buf.get(4) {
                            Some(&len) => 4 + 1 + usize::from(len) + 2,
                            None => return Ok(Status::NeedMore),
                        },
                        t => {
                            return Err(proxy_failed(format!(
                                "the SOCKS5 proxy {} answered with unknown address type 0x{t:02x}",
                                self.proxy
                            )))
                        }
                    };
                    if self.buf.len() < total {
                        return Ok(Status::NeedMore);
                    }
                    let leftover = self.buf.split_off(total);
                    self.buf = Vec::new();
                    self.state = State::Established;
                    return Ok(Status::Established { leftover });
                }
                State::Established | State::Failed => return Ok(Status::NeedMore),
            }
        }
    }

    fn check_socks_version(&self, version: u8) -> Result<()> {
        if version == 5 {
            return Ok(());
        }
        let hint = if version == b'H' { " (it looks like an HTTP proxy: use http://)" } else { "" };
        Err(proxy_failed(format!("{} is not a SOCKS5 proxy: its answer starts with 0x{version:02x}{hint}", self.proxy)))
    }

    /// Queues the CONNECT request (RFC 1928 §4) and waits for the reply.
    fn send_socks_connect(&mut self) {
        let mut req = vec![5, 1, 0];
        match &self.target.addr {
            TargetAddr::Ip(IpAddr::V4(a)) => {
                req.push(1);
                req.extend_from_slice(&a.octets());
            }
            TargetAddr::Ip(IpAddr::V6(a)) => {
                req.push(4);
                req.extend_from_slice(&a.octets());
            }
            TargetAddr::Name(n) => {
                // `ProxyTarget::from_host` bounds names to 255 bytes.
                req.push(3);
                req.push(n.len() as u8);
                req.extend_from_slice(n.as_bytes());
            }
        }
        req.extend_from_slice(&self.target.port.to_be_bytes());
        self.out.extend_from_slice(&req);
        self.state = State::SocksReply;
    }

    fn step_http(&mut self, mut scanned: usize) -> Result<Status> {
        loop {
            let from = scanned.min(self.buf.len()).saturating_sub(3);
            let Some(end) = find_head_end(&self.buf, from) else {
                if self.buf.len() > MAX_PROXY_RESPONSE_HEAD {
                    return Err(self.head_too_large());
                }
                self.state = State::HttpHead { scanned: self.buf.len() };
                return Ok(Status::NeedMore);
            };
            if end > MAX_PROXY_RESPONSE_HEAD {
                return Err(self.head_too_large());
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_PROXY_RESPONSE_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            let code = match response.parse(&self.buf[..end]) {
                Ok(httparse::Status::Complete(_)) => response.code.unwrap_or(0),
                Ok(httparse::Status::Partial) => {
                    return Err(proxy_failed(format!("the proxy {} sent a malformed response head", self.proxy)))
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(proxy_failed(format!(
                        "the proxy {} sent more than {MAX_PROXY_RESPONSE_HEADERS} header lines",
                        self.proxy
                    )))
                }
                Err(e) => {
                    return Err(proxy_failed(format!(
                        "the proxy {} sent a malformed response ({e}): {}",
                        self.proxy,
                        first_line(&self.buf)
                    )))
                }
            };
            let status_line = format!(
                "HTTP/1.{} {} {}",
                response.version.unwrap_or(1),
                code,
                sanitize(response.reason.unwrap_or(""), 200)
            );
            let status_line = status_line.trim_end();
            match code {
                // Interim answers (100 Continue, 102, 103) come before the real one: skip them.
                100..=199 if code != 101 => {
                    self.buf.drain(..end);
                    scanned = 0;
                    continue;
                }
                // A 2xx answer to CONNECT has no body whatever its headers say (RFC 9110 §9.3.6):
                // everything after the head is the server's.
                200..=299 => {
                    let leftover = self.buf.split_off(end);
                    self.buf = Vec::new();
                    self.state = State::Established;
                    return Ok(Status::Established { leftover });
                }
                401 | 407 => {
                    let (wants, hint) = if self.credentials.is_some() {
                        ("rejected the credentials", "")
                    } else {
                        ("wants credentials", " (put user:password in the proxy URI)")
                    };
                    return Err(proxy_failed(format!(
                        "the proxy {} {wants} for the tunnel to {}{hint}: {status_line}",
                        self.proxy, self.target
                    ))
                    .with_http_status(code));
                }
                _ => {
                    return Err(proxy_failed(format!(
                        "the proxy {} refused the tunnel to {}: {status_line}",
                        self.proxy, self.target
                    ))
                    .with_http_status(code))
                }
            }
        }
    }

    fn head_too_large(&self) -> Error {
        proxy_failed(format!(
            "the proxy {} sent a response head longer than {MAX_PROXY_RESPONSE_HEAD} bytes: {}",
            self.proxy,
            first_line(&self.buf)
        ))
    }
}

/// Index just past the blank line that ends an HTTP head (`\r\n\r\n`, or bare `\n\n`), searching
/// from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some(i + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// The first line of a response, printable and bounded, for messages.
fn first_line(buf: &[u8]) -> String {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = &line[..line.len().min(200)];
    let text = String::from_utf8_lossy(line);
    format!("'{}'", sanitize(text.trim_end_matches('\r'), 200))
}

fn socks_reply_text(rep: u8) -> &'static str {
    match rep {
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by the proxy's rules",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// `CONNECT host:port HTTP/1.1` with `Host` and, when the proxy URI has credentials,
/// `Proxy-Authorization: Basic` (RFC 7617).
fn http_connect_request(proxy: &Proxy, target: &ProxyTarget) -> Vec<u8> {
    let authority = match &target.addr {
        TargetAddr::Ip(ip) => SocketAddr::new(*ip, target.port).to_string(),
        TargetAddr::Name(n) => format!("{n}:{}", target.port),
    };
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    if let Some(c) = proxy.credentials() {
        let mut pair = Vec::with_capacity(c.username.len() + 1 + c.password.len());
        pair.extend_from_slice(&c.username);
        pair.push(b':');
        pair.extend_from_slice(&c.password);
        req.extend_from_slice(b"Proxy-Authorization: Basic ");
        req.extend_from_slice(data_encoding::BASE64.encode(&pair).as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}
