//! TLS identity: a client certificate with its private key, public-key pins, the client
//! configuration that uses them, and what a TLS session negotiated.
//!
//! - [`ClientIdentity::from_pem`] reads a certificate chain and a PKCS#8, SEC1 or RSA (PKCS#1) key
//!   and checks, before any connect, that the key belongs to the first certificate.
//! - [`PublicKeyPin::parse_list`] reads curl's `sha256//<base64>` pins (several joined by `;`).
//! - [`PinnedServerVerifier`] runs the normal verification first and then requires the leaf's
//!   SubjectPublicKeyInfo to match a pin: a pin narrows verification, it never replaces it.
//! - [`build_client_config`] puts these together into a rustls `ClientConfig`.
//! - [`negotiated_protocol`], [`negotiated_cipher_suite`] and [`peer_certificate`] read a session.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, ClientConfig, CommonState, DigitallySignedStruct, DistinguishedName, InconsistentKeys,
    OtherError, ProtocolVersion, RootCertStore, SignatureScheme,
};

use crate::error::{Error, Result, ResultCode};

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

// ---------------------------------------------------------------------------------------------
// Client certificate

/// A client certificate chain (leaf first) and its private key, known to belong together.
///
/// Cheap to clone (shared). `Debug` shows the leaf's public-key pin, never the key.
#[derive(Clone)]
pub struct ClientIdentity {
    certified: Arc<CertifiedKey>,
    fingerprint: [u8; 32],
}

impl ClientIdentity {
    /// Reads the chain (one or more `BEGIN CERTIFICATE` blocks, the client's own first) and the
    /// private key (`BEGIN PRIVATE KEY` (PKCS#8), `BEGIN EC PRIVATE KEY` (SEC1) or
    /// `BEGIN RSA PRIVATE KEY` (PKCS#1)), with the ring provider.
    ///
    /// Every failure is `INVALID_ARGUMENT`, including a key that does not match the first
    /// certificate's public key, an encrypted key, or a key type the provider cannot sign with.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<ClientIdentity> {
        Self::from_pem_with_provider(chain_pem, key_pem, &rustls::crypto::ring::default_provider())
    }

    /// [`from_pem`](Self::from_pem) with a given crypto provider (the one the config will use).
    pub fn from_pem_with_provider(
        chain_pem: &[u8],
        key_pem: &[u8],
        provider: &CryptoProvider,
    ) -> Result<ClientIdentity> {
        let mut chain = Vec::new();
        for item in CertificateDer::pem_slice_iter(chain_pem) {
            match item {
                Ok(c) => chain.push(c),
                Err(e) => return Err(Error::invalid_argument(format!("client certificate chain: invalid PEM: {e}"))),
            }
        }
        if chain.is_empty() {
            let hint = if contains(chain_pem, b"PRIVATE KEY-----") {
                " (this looks like a private key: the chain comes first, the key second)"
            } else {
                ""
            };
            return Err(Error::invalid_argument(format!(
                "client certificate chain: no 'BEGIN CERTIFICATE' block found{hint}"
            )));
        }
        ParsedCertificate::try_from(&chain[0]).map_err(|e| {
            Error::invalid_argument(format!("the client certificate (first in the chain) cannot be parsed: {e}"))
        })?;

        if contains(key_pem, b"BEGIN ENCRYPTED PRIVATE KEY") || contains(key_pem, b"Proc-Type: 4,ENCRYPTED") {
            return Err(Error::invalid_argument(
                "the private key is encrypted, which is not supported: decrypt it first \
                 (for example `openssl pkey -in key.pem -out plain-key.pem`)",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                Error::invalid_argument(if contains(key_pem, b"BEGIN CERTIFICATE") {
                    "no private key found, only certificates (the chain comes first, the key second)"
                } else {
                    "no private key found: expected 'BEGIN PRIVATE KEY', 'BEGIN EC PRIVATE KEY' or \
                     'BEGIN RSA PRIVATE KEY'"
                })
            }
            e => Error::invalid_argument(format!("invalid PEM private key: {e}")),
        })?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| Error::invalid_argument(format!("the private key cannot be used for TLS: {e}")))?;

        let fingerprint = {
            let mut all = Vec::new();
            for c in &chain {
                all.extend_from_slice(&(c.len() as u64).to_be_bytes());
                all.extend_from_slice(c);
            }
            sha256(&all)
        };
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) => {}
            // A provider that cannot derive the public key: rustls accepts it too (from_der).
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(Error::invalid_argument(
                    "the private key does not match the client certificate's public key \
                     (the first certificate of the chain must be the client's own)",
                ))
            }
            Err(e) => return Err(Error::invalid_argument(format!("client certificate: {e}"))),
        }
        Ok(ClientIdentity { certified: Arc::new(certified), fingerprint })
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.certified.cert
    }

    /// SHA-256 over the chain: equal for equal identities (the key is fixed by the leaf), so it
    /// can key a cache of client configs. Computed from public data only.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The rustls form, for a custom client-certificate resolver.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.certified.clone()
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leaf = self.chain().first().and_then(|c| PublicKeyPin::of_certificate(c).ok());
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain().len())
            .field("leaf_key", &leaf.map(|p| p.to_string()))
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}
impl Eq for ClientIdentity {}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Public-key pins

/// The SHA-256 of a SubjectPublicKeyInfo (DER), as curl's `--pinnedpubkey sha256//<base64>`.
///
/// `Display` gives the `sha256//<base64>` form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKeyPin([u8; 32]);

const PIN_PREFIX: &str = "sha256//";

impl PublicKeyPin {
    /// Parses one pin or several joined by `;` (curl's form): `sha256//` followed by the
    /// standard, padded base64 of 32 bytes. White space around each pin is ignored, and so are
    /// empty entries (a trailing `;`), but at least one pin must be there. Public-key files (curl's
    /// other form) are not accepted. Errors are `INVALID_ARGUMENT` and quote the faulty pin.
    pub fn parse_list(text: &str) -> Result<Vec<PublicKeyPin>> {
        let mut pins = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            pins.push(Self::parse_one(part)?);
        }
        if pins.is_empty() {
            return Err(Error::invalid_argument(
                "no public-key pin given: expected 'sha256//<base64 of the SubjectPublicKeyInfo's SHA-256>'",
            ));
        }
        Ok(pins)
    }

    fn parse_one(pin: &str) -> Result<PublicKeyPin> {
        let shown: String = pin.chars().take(80).map(|c| if c.is_control() { '?' } else { c }).collect();
        let Some(b64) = pin.strip_prefix(PIN_PREFIX) else {
            return Err(Error::invalid_argument(format!(
                "public-key pin '{shown}' does not start with 'sha256//': the form is \
                 'sha256//<base64 of the SHA-256 of the SubjectPublicKeyInfo>', several joined by ';'"
            )));
        };
        let bytes = data_encoding::BASE64
            .decode(b64.as_bytes())
            .map_err(|e| Error::invalid_argument(format!("public-key pin '{shown}' is not valid base64: {e}")))?;
        let digest: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::invalid_argument(format!(
                "public-key pin '{shown}' decodes to {} bytes; a SHA-256 digest has 32",
                bytes.len()
            ))
        })?;
        Ok(PublicKeyPin(digest))
    }

    /// The pin of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> PublicKeyPin {
        PublicKeyPin(sha256(spki_der))
    }

    /// The pin of a certificate's public key (`TLS_FAILED` if the certificate cannot be parsed).
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<PublicKeyPin> {
        let parsed = ParsedCertificate::try_from(cert)
            .map_err(|e| Error::new(ResultCode::TlsFailed, format!("certificate cannot be parsed: {e}")))?;
        Ok(Self::of_spki(parsed.subject_public_key_info().as_ref()))
    }

    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PublicKeyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PIN_PREFIX}{}", data_encoding::BASE64.encode(&self.0))
    }
}

impl fmt::Debug for PublicKeyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKeyPin({self})")
    }
}

/// The reason a pinned verification failed (inside `rustls::Error::InvalidCertificate`).
#[derive(Debug)]
struct PinMismatch(String);

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for PinMismatch {}

/// A server-certificate verifier that runs `inner` first and then requires the leaf's public
/// key to match one of `pins`.
#[derive(Debug)]
pub struct PinnedServerVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    pins: Vec<PublicKeyPin>,
}

impl PinnedServerVerifier {
    pub fn new(inner: Arc<dyn ServerCertVerifier>, pins: Vec<PublicKeyPin>) -> PinnedServerVerifier {
        PinnedServerVerifier { inner, pins }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let pin = ParsedCertificate::try_from(end_entity)
            .map(|c| PublicKeyPin::of_spki(c.subject_public_key_info().as_ref()))?;
        if self.pins.contains(&pin) {
            return Ok(verified);
        }
        let n = self.pins.len();
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(PinMismatch(format!(
            "the server's public key {pin} matches none of the {n} pinned key{}",
            if n == 1 { "" } else { "s" }
        )))))))
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

// ---------------------------------------------------------------------------------------------
// Client configuration

/// How the server's certificate is verified before any pin is checked.
pub enum ServerVerification {
    /// WebPKI verification (chain to one of these roots, name, validity) — the normal case.
    Roots(Arc<RootCertStore>),
    /// A verifier of the caller's (for example the "ignore certificate errors" one).
    Custom(Arc<dyn ServerCertVerifier>),
}

/// A client config with `provider`'s safe default protocol versions, ALPN `http/1.1`, the
/// given server verification narrowed by `pins` (none = no pinning), and `identity` offered when
/// the server asks for a client certificate.
///
/// Errors: `TLS_FAILED` for a provider or root store rustls refuses (for example an empty root
/// store: no system roots and no CA given).
pub fn build_client_config(
    provider: Arc<CryptoProvider>,
    verification: ServerVerification,
    pins: &[PublicKeyPin],
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>> {
    let tls_error = |e: &dyn fmt::Display| Error::new(ResultCode::TlsFailed, format!("TLS configuration: {e}"));
    let verifier: Arc<dyn ServerCertVerifier> = match verification {
        ServerVerification::Roots(roots) => {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build().map_err(|e| tls_error(&e))?
        }
        ServerVerification::Custom(v) => v,
    };
    let verifier: Arc<dyn ServerCertVerifier> =
        if pins.is_empty() { verifier } else { Arc::new(PinnedServerVerifier::new(verifier, pins.to_vec())) };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(id.certified_key()))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

// ---------------------------------------------------------------------------------------------
// What a session negotiated

/// The negotiated protocol version as OpenSSL and Python name it (`"TLSv1.3"`, `"TLSv1.2"`), or
/// `None` before the handshake has chosen one. Works for `ClientConnection` and the unbuffered
/// connection alike (both dereference to `CommonState`).
pub fn negotiated_protocol(state: &CommonState) -> Option<&'static str> {
    Some(match state.protocol_version()? {
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        ProtocolVersion::TLSv1_1 => "TLSv1.1",
        ProtocolVersion::TLSv1_0 => "TLSv1.0",
        other => other.as_str().unwrap_or("unknown"),
    })
}

/// The negotiated cipher suite's IANA name (`"TLS_AES_128_GCM_SHA256"`,
/// `"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"`, as .NET's `TlsCipherSuite` names them), or
/// `None` before the handshake has chosen one.
pub fn negotiated_cipher_suite(state: &CommonState) -> Option<&'static str> {
    let name = state.negotiated_cipher_suite()?.suite().as_str()?;
    // rustls spells the TLS 1.3 suites "TLS13_…"; IANA spells them "TLS_…".
    Some(match name {
        "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "TLS13_AES_128_CCM_SHA256" => "TLS_AES_128_CCM_SHA256",
        "TLS13_AES_128_CCM_8_SHA256" => "TLS_AES_128_CCM_8_SHA256",
        other => other,
    })
}

/// The server's leaf certificate (DER) as the session received it, borrowed from the
/// connection (rustls keeps it for the connection's life: no copy needed for a getter).
pub fn peer_certificate(state: &CommonState) -> Option<&[u8]> {
    state.peer_certificates()?.first().map(|c| c.as_ref())
}

#[cfg(test)]
mod tests;
