use super::*;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConnection, ServerConfig, ServerConnection};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/", $name)).as_slice()
    };
}
const CA: &[u8] = fixture!("ca.pem");
const SERVER_CHAIN: &[u8] = fixture!("server-chain.pem");
const SERVER_KEY: &[u8] = fixture!("server-key.pem");
const CLIENT_EC_CHAIN: &[u8] = fixture!("client-ec-chain.pem");
const CLIENT_EC_PKCS8: &[u8] = fixture!("client-ec-pkcs8.pem");
const CLIENT_EC_SEC1: &[u8] = fixture!("client-ec-sec1.pem");
const CLIENT_RSA_CERT: &[u8] = fixture!("client-rsa-cert.pem");
const CLIENT_RSA_PKCS1: &[u8] = fixture!("client-rsa-pkcs1.pem");
const CLIENT_RSA_PKCS8: &[u8] = fixture!("client-rsa-pkcs8.pem");
const OTHER_KEY: &[u8] = fixture!("other-ec-pkcs8.pem");
/// Pins computed by the fixture script with Python's `cryptography` (independent of this code).
const PINS: &[u8] = fixture!("pins.txt");

fn fixture_pin(which: &str) -> String {
    let text = std::str::from_utf8(PINS).expect("utf-8");
    text.lines().find_map(|l| l.strip_prefix(which).and_then(|r| r.strip_prefix(' '))).expect("pin listed").to_string()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem).collect::<std::result::Result<_, _>>().expect("fixture PEM")
}

fn roots(pem: &[u8]) -> Arc<RootCertStore> {
    let mut r = RootCertStore::empty();
    for c in certs(pem) {
        r.add(c).expect("root");
    }
    Arc::new(r)
}

fn invalid(chain: &[u8], key: &[u8]) -> String {
    match ClientIdentity::from_pem(chain, key) {
        Ok(id) => panic!("accepted: {id:?}"),
        Err(e) => {
            assert_eq!(e.code, ResultCode::InvalidArgument, "{e}");
            e.message
        }
    }
}

// --- Client identity

#[test]
fn reads_every_key_form() {
    for (chain, key, n) in [
        (CLIENT_EC_CHAIN, CLIENT_EC_PKCS8, 2),
        (CLIENT_EC_CHAIN, CLIENT_EC_SEC1, 2),
        (CLIENT_RSA_CERT, CLIENT_RSA_PKCS1, 1),
        (CLIENT_RSA_CERT, CLIENT_RSA_PKCS8, 1),
    ] {
        let id = ClientIdentity::from_pem(chain, key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.chain().len(), n);
        let dbg = format!("{id:?}");
        assert!(dbg.contains("sha256//") && !dbg.contains("PRIVATE"), "{dbg}");
    }
    // Same chain, key in another form: same identity.
    let a = ClientIdentity::from_pem(CLIENT_EC_CHAIN, CLIENT_EC_PKCS8).expect("ok");
    let b = ClientIdentity::from_pem(CLIENT_EC_CHAIN, CLIENT_EC_SEC1).expect("ok");
    assert_eq!(a.fingerprint(), b.fingerprint());
    let c = ClientIdentity::from_pem(CLIENT_RSA_CERT, CLIENT_RSA_PKCS1).expect("ok");
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    for (chain, key) in [
        (CLIENT_EC_CHAIN, OTHER_KEY),
        (CLIENT_EC_CHAIN, CLIENT_RSA_PKCS8),
        (CLIENT_RSA_CERT, CLIENT_EC_SEC1),
        (SERVER_CHAIN, CLIENT_EC_PKCS8),
        (CA, SERVER_KEY),
    ] {
        let m = invalid(chain, key);
        assert!(m.contains("does not match the client certificate's public key"), "{m}");
    }
    // The chain in the wrong order (CA first) is the same mistake, said the same way.
    let reversed: Vec<u8> = {
        let c = certs(CLIENT_EC_CHAIN);
        let pem = |d: &CertificateDer<'_>| {
            format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", data_encoding::BASE64.encode(d))
        };
        format!("{}{}", pem(&c[1]), pem(&c[0])).into_bytes()
    };
    assert!(invalid(&reversed, CLIENT_EC_PKCS8).contains("does not match"));
}

#[test]
fn bad_pem_inputs_say_what_is_wrong() {
    assert!(invalid(b"", CLIENT_EC_PKCS8).contains("no 'BEGIN CERTIFICATE' block"));
    assert!(invalid(CLIENT_EC_PKCS8, CLIENT_EC_CHAIN).contains("looks like a private key"));
    assert!(invalid(CLIENT_EC_CHAIN, CLIENT_EC_CHAIN).contains("only certificates"));
    assert!(invalid(CLIENT_EC_CHAIN, b"hello").contains("no private key found"));
    let enc = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(invalid(CLIENT_EC_CHAIN, enc).contains("encrypted"));
    let garbage_cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(invalid(garbage_cert, CLIENT_EC_PKCS8).contains("cannot be parsed"));
    let garbage_key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(invalid(CLIENT_EC_CHAIN, garbage_key).contains("cannot be used for TLS"));
    let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(invalid(broken, CLIENT_EC_PKCS8).contains("invalid PEM"));
}

// --- Pins

#[test]
fn pins_of_certificates_match_an_independent_computation() {
    let server_leaf = &certs(SERVER_CHAIN)[0];
    let ca = &certs(CA)[0];
    assert_eq!(PublicKeyPin::of_certificate(server_leaf).expect("pin").to_string(), fixture_pin("server"));
    assert_eq!(PublicKeyPin::of_certificate(ca).expect("pin").to_string(), fixture_pin("ca"));
    let bad = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    assert_eq!(PublicKeyPin::of_certificate(&bad).map_err(|e| e.code), Err(ResultCode::TlsFailed));
}

#[test]
fn pin_lists_parse_like_curl() {
    let (s, c) = (fixture_pin("server"), fixture_pin("ca"));
    let one = PublicKeyPin::parse_list(&s).expect("valid");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].to_string(), s);
    assert_eq!(format!("{:?}", one[0]), format!("PublicKeyPin({s})"));
    let two = PublicKeyPin::parse_list(&format!(" {s} ;{c};")).expect("valid");
    assert_eq!(two.iter().map(|p| p.to_string()).collect::<Vec<_>>(), vec![s.clone(), c]);
    assert_eq!(two[0].digest(), one[0].digest());
}

#[test]
fn bad_pins_are_invalid_arguments() {
    let good = fixture_pin("server");
    let sixteen = format!("sha256//{}", data_encoding::BASE64.encode(&[7u8; 16]));
    let cases = [
        ("", "no public-key pin"),
        (" ; ", "no public-key pin"),
        ("xCPnDnFF5nnbbBbwIzzMGmCdZXpGDaHMkqPDLj4nTpQ=", "does not start with 'sha256//'"),
        ("SHA256//xCPnDnFF5nnbbBbwIzzMGmCdZXpGDaHMkqPDLj4nTpQ=", "does not start with 'sha256//'"),
        ("sha1//xCPnDnFF5nnbbBbwIzzMGmCdZXpGDaHMkqPDLj4nTpQ=", "does not start with 'sha256//'"),
        ("/etc/ssl/key.pem", "does not start with 'sha256//'"),
        ("sha256//", "decodes to 0 bytes"),
        ("sha256//abc", "not valid base64"),
        ("sha256//xCPnDnFF5nnbbBbwIzzMGmCdZXpGDaHMkqPDLj4nTpQ", "not valid base64"),
        ("sha256//xCPnDnFF5nnbbBbwIzzMGmCdZXpGDaHMkqPDLj4n*pQ=", "not valid base64"),
        (sixteen.as_str(), "decodes to 16 bytes"),
    ];
    for (text, want) in cases {
        let e = PublicKeyPin::parse_list(text).expect_err(text);
        assert_eq!(e.code, ResultCode::InvalidArgument);
        assert!(e.message.contains(want), "{text}: '{want}' not in: {}", e.message);
    }
    // One bad pin spoils the list, and is the one quoted.
    let e = PublicKeyPin::parse_list(&format!("{good};sha256//abc")).expect_err("bad second");
    assert!(e.message.contains("'sha256//abc'"), "{}", e.message);
}

// --- Handshakes in memory: a rustls server with the fixture certificates.

fn server_config(client_auth: bool, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions).expect("versions");
    let builder = if client_auth {
        let v = WebPkiClientVerifier::builder_with_provider(roots(CA), provider()).build().expect("verifier");
        builder.with_client_cert_verifier(v)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).expect("key");
    Arc::new(builder.with_single_cert(certs(SERVER_CHAIN), key).expect("server cert"))
}

/// Runs a handshake to completion or the first error; returns both ends.
fn handshake(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
) -> (ClientConnection, ServerConnection, std::result::Result<(), String>) {
    let name = ServerName::try_from("localhost").expect("name");
    let mut c = ClientConnection::new(client, name).expect("client");
    let mut s = ServerConnection::new(server).expect("server");
    let r = crate::protocol::tls_pump::pump(&mut c, &mut s);
    (c, s, r)
}

fn client(pins: &str, identity: Option<&ClientIdentity>, trust: &[u8]) -> Arc<ClientConfig> {
    let pins = if pins.is_empty() { Vec::new() } else { PublicKeyPin::parse_list(pins).expect("pins") };
    build_client_config(provider(), ServerVerification::Roots(roots(trust)), &pins, identity).expect("config")
}

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

#[test]
fn right_pin_connects_and_session_is_readable() {
    let (c, _s, r) = handshake(client(&fixture_pin("server"), None, CA), server_config(false, TLS13));
    assert_eq!(r, Ok(()));
    assert_eq!(negotiated_protocol(&c), Some("TLSv1.3"));
    let suite = negotiated_cipher_suite(&c).expect("suite");
    assert!(
        ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"].contains(&suite),
        "{suite}"
    );
    assert_eq!(peer_certificate(&c), Some(certs(SERVER_CHAIN)[0].as_ref()));
    assert_eq!(c.alpn_protocol(), None, "the fixture server speaks no ALPN");

    // Before a handshake there is nothing to read.
    let fresh = ClientConnection::new(client("", None, CA), ServerName::try_from("localhost").expect("n")).expect("c");
    assert_eq!(
        (negotiated_protocol(&fresh), negotiated_cipher_suite(&fresh), peer_certificate(&fresh)),
        (None, None, None)
    );
}

#[test]
fn tls12_session_names() {
    let (c, _s, r) = handshake(client("", None, CA), server_config(false, TLS12));
    assert_eq!(r, Ok(()));
    assert_eq!(negotiated_protocol(&c), Some("TLSv1.2"));
    let suite = negotiated_cipher_suite(&c).expect("suite");
    assert!(suite.starts_with("TLS_ECDHE_ECDSA_WITH_"), "{suite}");
}

#[test]
fn wrong_pins_fail_the_handshake() {
    let wrong_leaf = format!("sha256//{}", data_encoding::BASE64.encode(&[0u8; 32]));
    // The CA's pin does not do: the leaf's key is what is pinned (as curl does).
    for pins in [wrong_leaf.clone(), fixture_pin("ca"), format!("{wrong_leaf};{}", fixture_pin("ca"))] {
        let (_c, _s, r) = handshake(client(&pins, None, CA), server_config(false, TLS13));
        let e = r.expect_err("pin mismatch");
        assert!(e.contains(&format!("the server's public key {} matches none of the", fixture_pin("server"))), "{e}");
    }
    // One matching pin among several is enough.
    let (_c, _s, r) =
        handshake(client(&format!("{wrong_leaf};{}", fixture_pin("server")), None, CA), server_config(false, TLS13));
    assert_eq!(r, Ok(()));
}

#[test]
fn a_pin_never_replaces_verification() {
    // Right pin, but the server's CA is not trusted (only the server's own leaf, or an
    // unrelated certificate, is in the store): the chain check fails first.
    let leaf_only = {
        let leaf = &certs(SERVER_CHAIN)[0];
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", data_encoding::BASE64.encode(leaf))
    };
    let (_c, _s, r) =
        handshake(client(&fixture_pin("server"), None, leaf_only.as_bytes()), server_config(false, TLS13));
    let (_c2, _s2, r2) = handshake(client(&fixture_pin("server"), None, CLIENT_RSA_CERT), server_config(false, TLS13));
    for r in [r, r2] {
        let e = r.expect_err("unverified");
        assert!(e.contains("invalid peer certificate") && !e.contains("pinned"), "{e}");
    }
    // A custom verifier (say, "ignore certificate errors") still gets the pin applied.
    #[derive(Debug)]
    struct AcceptAny(Arc<CryptoProvider>);
    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> std::result::Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let custom = |pins: &str| {
        let pins = PublicKeyPin::parse_list(pins).expect("pins");
        let v = ServerVerification::Custom(Arc::new(AcceptAny(provider())));
        build_client_config(provider(), v, &pins, None).expect("config")
    };
    let (_c, _s, r) = handshake(custom(&fixture_pin("ca")), server_config(false, TLS13));
    assert!(r.expect_err("pin").contains("matches none"));
    let (_c, _s, r) = handshake(custom(&fixture_pin("server")), server_config(false, TLS13));
    assert_eq!(r, Ok(()));
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    for (chain, key, versions) in [
        (CLIENT_EC_CHAIN, CLIENT_EC_SEC1, TLS13),
        (CLIENT_RSA_CERT, CLIENT_RSA_PKCS1, TLS12),
        (CLIENT_RSA_CERT, CLIENT_RSA_PKCS8, TLS13),
    ] {
        let id = ClientIdentity::from_pem(chain, key).expect("identity");
        let (_c, s, r) = handshake(client("", Some(&id), CA), server_config(true, versions));
        assert_eq!(r, Ok(()));
        let seen = s.peer_certificates().and_then(|p| p.first()).map(|c| c.as_ref().to_vec());
        assert_eq!(seen.as_deref(), Some(certs(chain)[0].as_ref()));
    }
    // Without an identity the server that requires one refuses.
    let (_c, _s, r) = handshake(client("", None, CA), server_config(true, TLS13));
    assert!(r.expect_err("no client certificate").starts_with("server:"));
}

#[test]
fn empty_root_store_is_a_tls_configuration_error() {
    let e = build_client_config(provider(), ServerVerification::Roots(Arc::new(RootCertStore::empty())), &[], None)
        .expect_err("no roots");
    assert_eq!(e.code, ResultCode::TlsFailed);
    assert!(e.message.starts_with("TLS configuration:"), "{}", e.message);
}
