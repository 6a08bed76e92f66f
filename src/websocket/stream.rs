//! The byte stream under a websocket: plain TCP or TLS (rustls) over a non-blocking mio socket.
//!
//! Both variants follow the non-blocking contract tungstenite expects: `read`/`write`/`flush`
//! return `WouldBlock` when the socket is not ready, and never lose bytes handed to `write`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use once_cell::sync::Lazy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ResultCode};

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
    pub fn new(tcp: TcpStream, config: Arc<ClientConfig>, host: &str) -> Result<Self, Error> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| Error::invalid_argument(format!("'{host}' is not a valid TLS server name")))?;
        let tls = ClientConnection::new(config, name)
            .map_err(|e| Error::new(ResultCode::TlsFailed, format!("TLS setup failed: {e}")))?;
        Ok(TlsStream { tcp, tls })
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

// ---------------------------------------------------------------------------------------------
// TLS configuration

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn system_roots() -> (RootCertStore, usize) {
    let mut roots = RootCertStore::empty();
    let loaded = rustls_native_certs::load_native_certs();
    let mut n = 0;
    for cert in loaded.certs {
        if roots.add(cert).is_ok() {
            n += 1;
        }
    }
    (roots, n)
}

static SYSTEM_ROOTS: Lazy<(RootCertStore, usize)> = Lazy::new(system_roots);
static DEFAULT_CONFIG: Lazy<Result<Arc<ClientConfig>, String>> =
    Lazy::new(|| build_config(&[], false).map_err(|e| e.message));

/// TLS options of one websocket.
#[derive(Clone, Default)]
pub struct TlsOptions {
    pub extra_ca: Vec<CertificateDer<'static>>,
    pub ignore_certificate_errors: bool,
}

/// Parses PEM text into certificates; errors if none is found.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    use rustls::pki_types::pem::PemObject;
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        match item {
            Ok(c) => out.push(c),
            Err(e) => return Err(Error::invalid_argument(format!("invalid PEM certificate: {e}"))),
        }
    }
    if out.is_empty() {
        return Err(Error::invalid_argument("no 'BEGIN CERTIFICATE' block found in the PEM data"));
    }
    Ok(out)
}

/// Configs for non-default option sets, shared by every websocket with the same options (one
/// root store and one session-resumption cache each, not one per connection).
static CONFIG_CACHE: Lazy<parking_lot::Mutex<Vec<(Vec<Vec<u8>>, bool, std::sync::Weak<ClientConfig>)>>> =
    Lazy::new(|| parking_lot::Mutex::new(Vec::new()));

pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    if opts.extra_ca.is_empty() && !opts.ignore_certificate_errors {
        return match &*DEFAULT_CONFIG {
            Ok(c) => Ok(c.clone()),
            Err(m) => Err(Error::new(ResultCode::TlsFailed, m.clone())),
        };
    }
    let mut key: Vec<Vec<u8>> = opts.extra_ca.iter().map(|c| c.as_ref().to_vec()).collect();
    key.sort();
    key.dedup();
    let mut cache = CONFIG_CACHE.lock();
    cache.retain(|(_, _, w)| w.strong_count() > 0);
    if let Some(cfg) = cache
        .iter()
        .find(|(k, i, _)| *i == opts.ignore_certificate_errors && *k == key)
        .and_then(|(_, _, w)| w.upgrade())
    {
        return Ok(cfg);
    }
    let cfg = build_config(&opts.extra_ca, opts.ignore_certificate_errors)?;
    cache.push((key, opts.ignore_certificate_errors, Arc::downgrade(&cfg)));
    Ok(cfg)
}

fn build_config(extra: &[CertificateDer<'static>], insecure: bool) -> Result<Arc<ClientConfig>, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ResultCode::TlsFailed, format!("TLS configuration: {e}")))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = SYSTEM_ROOTS.0.clone();
        for c in extra {
            roots.add(c.clone()).map_err(|e| Error::invalid_argument(format!("CA certificate rejected: {e}")))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Verifier for the explicit, dangerous "ignore certificate errors" option: signatures are still
/// checked (the handshake stays well-formed), the certificate chain and name are not.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
