//! TLS client configuration (rustls): system roots, extra CAs, the explicit "ignore certificate
//! errors" option, public-key pins and a client certificate (`tls_identity`), and a cache so
//! websockets with the same options share one config.

use std::sync::Arc;

use once_cell::sync::Lazy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::tls_identity::{build_client_config, ClientIdentity, PublicKeyPin, ServerVerification};
use crate::error::{Error, ResultCode};

/// ring's provider, with TLS 1.3 record keys that keep ~64 bytes per direction instead of
/// ~560 (see `tls_aead`).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    super::tls_aead::provider()
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
    Lazy::new(|| build_config(&TlsOptions::default()).map_err(|e| e.message));

/// TLS options of one websocket.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Extra trust anchors (DER), interned: websockets given the same CA share one copy.
    pub extra_ca: Vec<Arc<[u8]>>,
    pub ignore_certificate_errors: bool,
    /// Public-key pins: with any set, the server's leaf key must match one (after verification).
    pub pins: Vec<PublicKeyPin>,
    /// The client certificate offered when the server asks for one.
    pub identity: Option<ClientIdentity>,
}

/// What makes two option sets need different configs: CAs (sorted DER), the insecure flag,
/// pins (sorted) and the client identity's fingerprint.
#[derive(PartialEq, Eq)]
struct CacheKey {
    extra_ca: Vec<Vec<u8>>,
    insecure: bool,
    pins: Vec<[u8; 32]>,
    identity: Option<[u8; 32]>,
}

impl CacheKey {
    fn of(opts: &TlsOptions) -> CacheKey {
        let mut extra_ca: Vec<Vec<u8>> = opts.extra_ca.iter().map(|c| c.to_vec()).collect();
        extra_ca.sort();
        extra_ca.dedup();
        let mut pins: Vec<[u8; 32]> = opts.pins.iter().map(|p| *p.digest()).collect();
        pins.sort();
        pins.dedup();
        CacheKey {
            extra_ca,
            insecure: opts.ignore_certificate_errors,
            pins,
            identity: opts.identity.as_ref().map(|i| i.fingerprint()),
        }
    }
}

/// Parses PEM text into certificates; errors if none is found.
/// A PEM block whose DER is not a certificate usable as a trust anchor is rejected now
/// (INVALID_ARGUMENT), not at connect time.
fn check_der(c: CertificateDer<'static>) -> Result<CertificateDer<'static>, Error> {
    let mut probe = rustls::RootCertStore::empty();
    match probe.add(c.clone()) {
        Ok(()) => Ok(c),
        Err(e) => Err(Error::invalid_argument(format!("invalid certificate in the PEM data: {e}"))),
    }
}

pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    use rustls::pki_types::pem::PemObject;
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        match item {
            Ok(c) => out.push(check_der(c)?),
            Err(e) => return Err(Error::invalid_argument(format!("invalid PEM certificate: {e}"))),
        }
    }
    if out.is_empty() {
        return Err(Error::invalid_argument("no 'BEGIN CERTIFICATE' block found in the PEM data"));
    }
    Ok(out)
}

/// One shared copy of `der` for everyone holding the same bytes (certificates: thousands of
/// websockets trusting the same CA or seeing the same server certificate keep one copy). The
/// table holds weak references only; dead entries are dropped on the next call.
pub fn intern_der(der: &[u8]) -> Arc<[u8]> {
    static TABLE: parking_lot::Mutex<Vec<std::sync::Weak<[u8]>>> = parking_lot::Mutex::new(Vec::new());
    let mut t = TABLE.lock();
    t.retain(|w| w.strong_count() > 0);
    if let Some(c) = t.iter().filter_map(|w| w.upgrade()).find(|c| &**c == der) {
        return c;
    }
    let c: Arc<[u8]> = Arc::from(der);
    t.push(Arc::downgrade(&c));
    c
}

/// Configs for non-default option sets, shared by every websocket with the same options (one
/// root store and one session-resumption cache each, not one per connection).
type ConfigCache = parking_lot::Mutex<Vec<(CacheKey, std::sync::Weak<ClientConfig>)>>;
static CONFIG_CACHE: Lazy<ConfigCache> = Lazy::new(|| parking_lot::Mutex::new(Vec::new()));

pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    let key = CacheKey::of(opts);
    if key == CacheKey::of(&TlsOptions::default()) {
        return match &*DEFAULT_CONFIG {
            Ok(c) => Ok(c.clone()),
            Err(m) => Err(Error::new(ResultCode::TlsFailed, m.clone())),
        };
    }
    let mut cache = CONFIG_CACHE.lock();
    cache.retain(|(_, w)| w.strong_count() > 0);
    if let Some(cfg) = cache.iter().find(|(k, _)| *k == key).and_then(|(_, w)| w.upgrade()) {
        return Ok(cfg);
    }
    let cfg = build_config(opts)?;
    cache.push((key, Arc::downgrade(&cfg)));
    Ok(cfg)
}

fn build_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    let verification = if opts.ignore_certificate_errors {
        ServerVerification::Custom(Arc::new(AcceptAnyCertificate(provider())))
    } else {
        let mut roots = SYSTEM_ROOTS.0.clone();
        for c in &opts.extra_ca {
            roots
                .add(CertificateDer::from(c.to_vec()))
                .map_err(|e| Error::invalid_argument(format!("CA certificate rejected: {e}")))?;
        }
        ServerVerification::Roots(Arc::new(roots))
    };
    build_client_config(provider(), verification, &opts.pins, opts.identity.as_ref())
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
