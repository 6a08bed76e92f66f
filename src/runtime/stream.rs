//! The byte stream under a websocket: plain TCP or TLS (rustls) over a non-blocking mio socket.
//!
//! Both variants follow the non-blocking contract tungstenite expects: `read`/`write`/`flush`
//! return `WouldBlock` when the socket is not ready, and never lose bytes handed to `write`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::error::{Error, ResultCode};
use crate::protocol::tls_identity::{negotiated_cipher_suite, negotiated_protocol, peer_certificate};

/// Marker carried inside `io::Error` so that TLS failures map to `CTRLCHAN_RESULT_TLS_FAILED`.
#[derive(Debug)]
pub struct TlsFailure(pub String);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS failure: {}", self.0)
    }
}
impl std::error::Error for TlsFailure {}

pub fn is_tls_failure(e: &io::Error) -> Option<String> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<TlsFailure>()).map(|t| t.0.clone())
}

pub enum Stream {
    /// Plain TCP. `drained` is set when a read returned fewer bytes than asked: everything the
    /// kernel had was consumed, so (with edge-triggered epoll, which reports every new arrival)
    /// the next read can answer `WouldBlock` without a syscall until the next readable event.
    ///
    /// A pending EOF is not "data" for this purpose (a short read can leave the FIN unread), so the
    /// shortcut is off for good once the peer half-closed (EPOLLRDHUP) or an error was reported.
    Plain(TcpStream, ReadHint),
    Tls(Box<TlsStream>),
}

/// Read bookkeeping of a plain stream (see `Stream::Plain`).
#[derive(Clone, Copy, Default)]
pub struct ReadHint {
    pub drained: bool,
    pub no_shortcut: bool,
}

pub struct TlsStream {
    tcp: TcpStream,
    tls: ClientConnection,
}

impl Stream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s, _) => s,
            Stream::Tls(t) => &t.tcp,
        }
    }
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s, _) => s,
            Stream::Tls(t) => &mut t.tcp,
        }
    }
    /// TLS whose handshake has not completed yet (a failure now is a TLS failure).
    pub fn tls_handshaking(&self) -> bool {
        matches!(self, Stream::Tls(t) if t.tls.is_handshaking())
    }
    /// The TLS facts of the session, if this is TLS and its handshake is done.
    pub fn tls_negotiated(&self) -> Option<(&[u8], &'static str, &'static str)> {
        match self {
            Stream::Tls(t) => t.negotiated(),
            Stream::Plain(..) => None,
        }
    }
    /// A readable event arrived: the next read must ask the kernel. `closed`: the event also
    /// reported a half-close or error, after which every read asks the kernel.
    pub fn mark_readable(&mut self, closed: bool) {
        if let Stream::Plain(_, hint) = self {
            hint.drained = false;
            hint.no_shortcut |= closed;
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s, hint) => {
                if hint.drained && !hint.no_shortcut && !buf.is_empty() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = s.read(buf)?;
                hint.drained = n < buf.len();
                Ok(n)
            }
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s, _) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s, _) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

impl TlsStream {
    /// Starts TLS over a connected socket (or proxy tunnel: `early` holds bytes the server sent
    /// that were read with the proxy's answer; they go to TLS first). `host` is the server's
    /// name, for SNI and verification. On failure the socket is handed back.
    pub fn new(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        host: &str,
        early: &[u8],
    ) -> Result<Self, (TcpStream, Error)> {
        let name = match ServerName::try_from(host.to_string()) {
            Ok(n) => n,
            Err(_) => return Err((tcp, Error::invalid_argument(format!("'{host}' is not a valid TLS server name")))),
        };
        let mut tls = match ClientConnection::new(config, name) {
            Ok(tls) => tls,
            Err(e) => return Err((tcp, Error::new(ResultCode::TlsFailed, format!("TLS setup failed: {e}")))),
        };
        let mut rest = early;
        while !rest.is_empty() {
            match tls.read_tls(&mut rest) {
                Ok(n) if n > 0 => {}
                _ => {
                    let e =
                        Error::new(ResultCode::TlsFailed, "TLS handshake failed: too many early bytes from the server");
                    return Err((tcp, e));
                }
            }
        }
        Ok(TlsStream { tcp, tls })
    }

    /// What the session negotiated: the server's leaf certificate (DER), version, cipher suite.
    pub fn negotiated(&self) -> Option<(&[u8], &'static str, &'static str)> {
        let cert = peer_certificate(&self.tls)?;
        Some((cert, negotiated_protocol(&self.tls)?, negotiated_cipher_suite(&self.tls)?))
    }

    fn fail(&mut self, e: rustls::Error) -> io::Error {
        // Best effort: let the peer see our alert.
        let _ = self.tls.write_tls(&mut self.tcp);
        io::Error::new(io::ErrorKind::InvalidData, TlsFailure(e.to_string()))
    }

    /// Writes pending TLS records until done or the socket would block.
    fn push_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes")),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Bounded: each round either returns or consumes socket bytes; the socket is non-blocking.
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => {
                    // TCP EOF: let rustls decide between clean close_notify and truncation.
                    if let Err(e) = self.tls.process_new_packets() {
                        return Err(self.fail(e));
                    }
                    return match self.tls.reader().read(buf) {
                        Ok(n) => Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                        Err(e) => Err(e),
                    };
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                return Err(self.fail(e));
            }
            // Handshake replies (and buffered early data) go out as soon as possible.
            match self.push_tls() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut n = self.tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // rustls' outgoing buffer is full: make room by writing to the socket, then retry.
            // `Ok(0)` would read as "connection reset" to tungstenite, so a socket that cannot
            // take more is reported as WouldBlock (a writable event resumes via flush()).
            self.push_tls()?;
            n = self.tls.writer().write(buf)?;
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        match self.push_tls() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tls.writer().flush()?;
        self.push_tls()
    }
}
