//! The byte stream under a websocket: plain TCP or TLS (rustls) over a non-blocking mio socket.
//!
//! Both variants follow the non-blocking contract tungstenite expects: `read`/`write`/`flush`
//! return `WouldBlock` when the socket is not ready, and never lose bytes handed to `write`.
//!
//! TLS uses rustls' unbuffered connection, so every buffer is ours: a partial incoming record,
//! decrypted data not yet read, encrypted data the socket has not taken. Each is dropped as soon
//! as it is empty, so an idle wss:// connection holds only rustls' session state (keys, the peer
//! certificate), not a record buffer. Writes during the TLS handshake drive the handshake and
//! answer `WouldBlock` until it completes.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ClientConfig;

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

/// TLS over a non-blocking socket with rustls' unbuffered connection: the buffers are ours and
/// are released as soon as they are empty, so an idle connection holds no record buffer at all
/// (the buffered `ClientConnection` keeps a 4 KiB deframer buffer per connection forever).
pub struct TlsStream {
    tcp: TcpStream,
    tls: UnbufferedClientConnection,
    /// TLS bytes from the socket not yet consumed (a partial record); no allocation when idle.
    incoming: Vec<u8>,
    /// Decrypted application data not yet handed to the reader (from `plain_pos`).
    plain: Vec<u8>,
    plain_pos: usize,
    /// Encrypted bytes not yet accepted by the socket (from `out_pos`).
    outgoing: Vec<u8>,
    out_pos: usize,
    /// The peer sent close_notify (or the connection is closed): reads give EOF.
    peer_closed: bool,
}

/// Encrypted bytes a writer may leave queued before `write` pushes back with `WouldBlock`.
const MAX_QUEUED_TLS: usize = 64 * 1024;
/// Largest plaintext encrypted per `write` call (one TLS record's worth).
const MAX_WRITE_CHUNK: usize = 16 * 1024;
/// Socket read size (a stack buffer).
const READ_CHUNK: usize = 4096;

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
        matches!(self, Stream::Tls(t) if t.is_handshaking())
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

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsFailure(e.to_string()))
}

/// Appends what `fill` writes to `out`, growing it to the size rustls asks for.
fn append_with<E>(
    out: &mut Vec<u8>,
    first_guess: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let start = out.len();
    out.resize(start + first_guess, 0);
    let n = match fill(&mut out[start..]) {
        Ok(n) => n,
        Err(e) => match required(&e) {
            Some(size) => {
                out.resize(start + size, 0);
                match fill(&mut out[start..]) {
                    Ok(n) => n,
                    Err(e) => {
                        out.truncate(start);
                        return Err(e);
                    }
                }
            }
            None => {
                out.truncate(start);
                return Err(e);
            }
        },
    };
    out.truncate(start + n);
    Ok(())
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
        let tls = match UnbufferedClientConnection::new(config, name) {
            Ok(tls) => tls,
            Err(e) => return Err((tcp, Error::new(ResultCode::TlsFailed, format!("TLS setup failed: {e}")))),
        };
        let mut t = TlsStream {
            tcp,
            tls,
            incoming: early.to_vec(),
            plain: Vec::new(),
            plain_pos: 0,
            outgoing: Vec::new(),
            out_pos: 0,
            peer_closed: false,
        };
        // The ClientHello goes into `outgoing` now; the first writable event sends it.
        if let Err(e) = t.process(&[]) {
            return Err((t.tcp, Error::new(ResultCode::TlsFailed, format!("TLS setup failed: {e}"))));
        }
        Ok(t)
    }

    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// What the session negotiated: the server's leaf certificate (DER), version, cipher suite.
    pub fn negotiated(&self) -> Option<(&[u8], &'static str, &'static str)> {
        let cert = peer_certificate(&self.tls)?;
        Some((cert, negotiated_protocol(&self.tls)?, negotiated_cipher_suite(&self.tls)?))
    }

    /// Runs the TLS state machine over `incoming` as far as it goes: handshake records out,
    /// application data into `plain`; once it may send data, encrypts (a prefix of) `app`.
    /// Returns how many bytes of `app` were encrypted (0 while handshaking).
    fn process(&mut self, app: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        let mut consumed = 0;
        loop {
            let UnbufferedStatus { discard, state } =
                self.tls.process_tls_records(self.incoming.get_mut(consumed..).unwrap_or(&mut []));
            let mut extra = 0;
            let state = match state {
                Ok(s) => s,
                Err(e) => return Err(tls_error(e)),
            };
            let done = match state {
                ConnectionState::ReadTraffic(mut r) => {
                    while let Some(rec) = r.next_record() {
                        let rec = rec.map_err(tls_error)?;
                        extra += rec.discard;
                        self.plain.extend_from_slice(rec.payload);
                    }
                    false
                }
                ConnectionState::EncodeTlsData(mut e) => {
                    append_with(
                        &mut self.outgoing,
                        512,
                        |b| e.encode(b),
                        |e| match e {
                            EncodeError::InsufficientSize(s) => Some(s.required_size),
                            _ => None,
                        },
                    )
                    .map_err(tls_error)?;
                    false
                }
                // Sent by `push_tls` (the bytes are in `outgoing`).
                ConnectionState::TransmitTlsData(t) => {
                    t.done();
                    false
                }
                ConnectionState::WriteTraffic(mut w) => {
                    let chunk = &app[..app.len().min(MAX_WRITE_CHUNK)];
                    if !chunk.is_empty() {
                        append_with(
                            &mut self.outgoing,
                            chunk.len() + 64,
                            |b| w.encrypt(chunk, b),
                            |e| match e {
                                EncryptError::InsufficientSize(s) => Some(s.required_size),
                                _ => None,
                            },
                        )
                        .map_err(tls_error)?;
                        written = chunk.len();
                    }
                    true
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.peer_closed = true;
                    true
                }
                // BlockedHandshake (more input needed) and anything newer.
                _ => true,
            };
            consumed += discard + extra;
            if done {
                break;
            }
        }
        if consumed >= self.incoming.len() {
            self.incoming = Vec::new(); // idle: hold nothing
        } else if consumed > 0 {
            self.incoming.drain(..consumed);
        }
        Ok(written)
    }

    /// Writes pending TLS records until done or the socket would block.
    fn push_tls(&mut self) -> io::Result<()> {
        while self.out_pos < self.outgoing.len() {
            match self.tcp.write(&self.outgoing[self.out_pos..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes")),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outgoing = Vec::new();
        self.out_pos = 0;
        Ok(())
    }

    /// `push_tls`, treating a full socket as fine (a writable event resumes it).
    fn push_tls_soft(&mut self) -> io::Result<()> {
        match self.push_tls() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r,
        }
    }

    /// Reads what the socket has into `incoming` and processes it. `Ok(false)`: TCP EOF.
    fn read_socket(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = loop {
            match self.tcp.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(false);
        }
        self.incoming.extend_from_slice(&chunk[..n]);
        self.process(&[])?;
        // Handshake replies (and alerts) go out as soon as possible.
        self.push_tls_soft()?;
        Ok(true)
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Bounded: each round either returns or consumes socket bytes; the socket is non-blocking.
        loop {
            if self.plain_pos < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.plain_pos);
                buf[..n].copy_from_slice(&self.plain[self.plain_pos..self.plain_pos + n]);
                self.plain_pos += n;
                if self.plain_pos == self.plain.len() {
                    self.plain = Vec::new();
                    self.plain_pos = 0;
                }
                return Ok(n);
            }
            if self.peer_closed {
                return Ok(0);
            }
            if !self.read_socket()? {
                // TCP EOF without close_notify: a truncation, as rustls' buffered reader reports it.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                ));
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push_tls_soft()?;
        if self.tls.is_handshaking() {
            // Nothing can be encrypted yet: drive the handshake with what the socket has.
            while self.tls.is_handshaking() {
                match self.read_socket() {
                    Ok(true) => {}
                    Ok(false) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Err(e) => return Err(e),
                }
            }
        }
        if self.outgoing.len() - self.out_pos >= MAX_QUEUED_TLS {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.process(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.push_tls_soft()?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.push_tls()
    }
}
