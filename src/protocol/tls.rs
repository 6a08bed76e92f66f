//! TLS client configuration (rustls): system roots, extra CAs, the explicit "ignore certificate
//! errors" option, and a cache so websockets with the same options share one config.

use std::sync::Arc;

use once_cell::sync::Lazy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ResultCode};

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
