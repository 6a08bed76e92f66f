//! TLS 1.3 record protection that keeps only the traffic key per connection.
//!
//! rustls' ring provider keeps, for each direction of each connection, a ready ring key: for
//! AES-GCM that is the expanded AES key schedule and the GHASH table, 560 bytes per direction,
//! 1.1 KiB per idle wss:// connection — the largest single item an idle TLS connection holds.
//! These cipher suites are the ring ones with one change: the encrypter and decrypter keep the
//! raw key and IV (~64 bytes) and set up ring's key for each record (an AES key expansion and a
//! GHASH table: 150–220 ns per record measured with AES-NI/CLMUL; a keep-alive is two records). The
//! cryptography is ring's; what is done here is what every TLS 1.3 record needs (RFC 8446 §5.2):
//! the per-record nonce (IV xor sequence number), the record header as additional data, the
//! inner content type after the plaintext. Negotiation does not change: the same suites, in the
//! same order. TLS 1.2 suites stay rustls' own.

use std::sync::Arc;

use once_cell::sync::Lazy;
use ring::aead;
use rustls::crypto::cipher::{
    make_tls13_aad, AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, MessageDecrypter, MessageEncrypter, Nonce,
    OutboundOpaqueMessage, OutboundPlainMessage, PrefixedPayload, Tls13AeadAlgorithm, UnsupportedOperationError,
};
use rustls::crypto::CryptoProvider;
use rustls::{ConnectionTrafficSecrets, ContentType, Error, ProtocolVersion, SupportedCipherSuite, Tls13CipherSuite};

/// One TLS 1.3 AEAD: ring's algorithm, and how rustls names its secrets.
struct CompactAead {
    alg: &'static aead::Algorithm,
    secrets: fn(AeadKey, Iv) -> ConnectionTrafficSecrets,
}

static AES_128_GCM: CompactAead =
    CompactAead { alg: &aead::AES_128_GCM, secrets: |key, iv| ConnectionTrafficSecrets::Aes128Gcm { key, iv } };
static AES_256_GCM: CompactAead =
    CompactAead { alg: &aead::AES_256_GCM, secrets: |key, iv| ConnectionTrafficSecrets::Aes256Gcm { key, iv } };
static CHACHA20_POLY1305: CompactAead = CompactAead {
    alg: &aead::CHACHA20_POLY1305,
    secrets: |key, iv| ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv },
};

/// The raw traffic key and IV of one direction.
struct RecordKey {
    alg: &'static aead::Algorithm,
    key: AeadKey,
    iv: Iv,
}

impl RecordKey {
    /// ring's key for one record (a key of the wrong length cannot come from rustls' key
    /// schedule, which derives `key_len()` bytes; it would fail the record, not panic).
    fn ring_key(&self) -> Result<aead::LessSafeKey, ()> {
        aead::UnboundKey::new(self.alg, self.key.as_ref()).map(aead::LessSafeKey::new).map_err(|_| ())
    }

    fn nonce(&self, seq: u64) -> aead::Nonce {
        aead::Nonce::assume_unique_for_key(Nonce::new(&self.iv, seq).0)
    }
}

impl Tls13AeadAlgorithm for CompactAead {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(RecordKey { alg: self.alg, key, iv })
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(RecordKey { alg: self.alg, key, iv })
    }

    fn key_len(&self) -> usize {
        self.alg.key_len()
    }

    fn extract_keys(&self, key: AeadKey, iv: Iv) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Ok((self.secrets)(key, iv))
    }
}

impl MessageEncrypter for RecordKey {
    fn encrypt(&mut self, msg: OutboundPlainMessage<'_>, seq: u64) -> Result<OutboundOpaqueMessage, Error> {
        let key = self.ring_key().map_err(|_| Error::EncryptError)?;
        // TLSInnerPlaintext: content, then the real content type; the tag follows.
        let total = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total);
        payload.extend_from_chunks(&msg.payload);
        payload.extend_from_slice(&msg.typ.to_array());
        key.seal_in_place_append_tag(self.nonce(seq), aead::Aad::from(make_tls13_aad(total)), &mut payload)
            .map_err(|_| Error::EncryptError)?;
        // Every TLS 1.3 record says application data, version 1.2 (RFC 8446 §5.1).
        Ok(OutboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, payload))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + self.alg.tag_len()
    }
}

impl MessageDecrypter for RecordKey {
    fn decrypt<'a>(&mut self, mut msg: InboundOpaqueMessage<'a>, seq: u64) -> Result<InboundPlainMessage<'a>, Error> {
        let len = msg.payload.len();
        if len < self.alg.tag_len() {
            return Err(Error::DecryptError);
        }
        let key = self.ring_key().map_err(|_| Error::DecryptError)?;
        let aad = aead::Aad::from(make_tls13_aad(len));
        let plain = key.open_in_place(self.nonce(seq), aad, &mut msg.payload).map_err(|_| Error::DecryptError)?.len();
        msg.payload.truncate(plain);
        // Strips the padding and reads the inner content type.
        msg.into_tls13_unpadded_message()
    }
}

/// ring's TLS 1.3 suite `base` with its record protection replaced by `aead`.
fn compact(base: &'static Tls13CipherSuite, aead: &'static CompactAead) -> &'static Tls13CipherSuite {
    Box::leak(Box::new(Tls13CipherSuite {
        common: rustls::crypto::CipherSuiteCommon {
            suite: base.common.suite,
            hash_provider: base.common.hash_provider,
            confidentiality_limit: base.common.confidentiality_limit,
        },
        hkdf_provider: base.hkdf_provider,
        aead_alg: aead,
        quic: base.quic,
    }))
}

/// ring's cipher suites in ring's order, the TLS 1.3 ones with compact record keys (built once;
/// the three suite descriptions live for the process).
static SUITES: Lazy<Vec<SupportedCipherSuite>> = Lazy::new(|| {
    rustls::crypto::ring::default_provider()
        .cipher_suites
        .into_iter()
        .map(|s| {
            let Some(base) = s.tls13() else { return s };
            let aead = match base.common.suite {
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => &AES_128_GCM,
                rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => &AES_256_GCM,
                rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => &CHACHA20_POLY1305,
                _ => return s,
            };
            SupportedCipherSuite::Tls13(compact(base, aead))
        })
        .collect()
});

/// rustls' ring provider with the compact TLS 1.3 record keys.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider { cipher_suites: SUITES.clone(), ..rustls::crypto::ring::default_provider() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::cipher::OutboundChunks;

    /// A 32-byte key and an IV (AES-128's 16-byte keys come from rustls' key schedule only:
    /// a real handshake covers them, tests/tls.rs).
    fn key(byte: u8) -> (AeadKey, Iv) {
        let mut k = [byte; 32];
        k[0] ^= 0x5a;
        (AeadKey::from(k), Iv::from([byte; 12]))
    }

    fn roundtrip(alg: &'static CompactAead) {
        let (k1, iv1) = key(7);
        let (k2, iv2) = key(7);
        let mut enc = alg.encrypter(k1, iv1);
        let mut dec = alg.decrypter(k2, iv2);
        let body = b"keep-alive ping";
        for seq in [0u64, 1, 1 << 40] {
            let msg = OutboundPlainMessage {
                typ: ContentType::ApplicationData,
                version: ProtocolVersion::TLSv1_2,
                payload: OutboundChunks::Single(body),
            };
            let wire = enc.encrypt(msg, seq).expect("seal").encode();
            assert_eq!(wire.len(), 5 + enc.encrypted_payload_len(body.len()));
            assert_eq!(&wire[..3], &[23, 3, 3], "application data, TLS 1.2 on the wire");
            // Tampering fails, the right sequence number opens it.
            let mut bytes = wire.clone();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            assert!(open(&mut *dec, &mut bytes, seq).is_err(), "a flipped tag bit must fail");
            let mut bytes = wire.clone();
            assert!(open(&mut *dec, &mut bytes, seq + 1).is_err(), "a wrong sequence number must fail");
            let mut bytes = wire;
            let (typ, plain) = open(&mut *dec, &mut bytes, seq).expect("open");
            assert_eq!(typ, ContentType::ApplicationData);
            assert_eq!(plain, body);
        }
    }

    fn open(dec: &mut dyn MessageDecrypter, wire: &mut [u8], seq: u64) -> Result<(ContentType, Vec<u8>), Error> {
        let (head, body) = wire.split_at_mut(5);
        let msg = InboundOpaqueMessage::new(ContentType::from(head[0]), ProtocolVersion::TLSv1_2, body);
        let plain = dec.decrypt(msg, seq)?;
        Ok((plain.typ, plain.payload.to_vec()))
    }

    #[test]
    fn records_roundtrip_and_reject_tampering() {
        roundtrip(&AES_256_GCM);
        roundtrip(&CHACHA20_POLY1305);
    }

    /// Records sealed by rustls' own ring suites open with ours and the other way round.
    #[test]
    fn records_interoperate_with_rustls_ring_suites() {
        use rustls::crypto::ring::cipher_suite::{TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256};
        for (theirs, ours) in
            [(TLS13_AES_256_GCM_SHA384, &AES_256_GCM), (TLS13_CHACHA20_POLY1305_SHA256, &CHACHA20_POLY1305)]
        {
            let theirs = theirs.tls13().expect("a TLS 1.3 suite").aead_alg;
            let pairs: [(Box<dyn MessageEncrypter>, Box<dyn MessageDecrypter>); 2] = [
                (theirs.encrypter(key(9).0, key(9).1), ours.decrypter(key(9).0, key(9).1)),
                (ours.encrypter(key(9).0, key(9).1), theirs.decrypter(key(9).0, key(9).1)),
            ];
            for (mut enc, mut dec) in pairs {
                let msg = OutboundPlainMessage {
                    typ: ContentType::Handshake,
                    version: ProtocolVersion::TLSv1_2,
                    payload: OutboundChunks::Single(b"new session ticket"),
                };
                let mut wire = enc.encrypt(msg, 42).expect("seal").encode();
                let (typ, plain) = open(&mut *dec, &mut wire, 42).expect("open");
                assert_eq!((typ, plain.as_slice()), (ContentType::Handshake, &b"new session ticket"[..]));
            }
        }
    }

    /// A full handshake with a rustls server limited to each TLS 1.3 suite (AES-128 included,
    /// whose 16-byte keys only the key schedule makes), then data both ways and a key update.
    #[test]
    fn handshakes_and_data_with_a_rustls_server_in_every_suite() {
        use rustls::crypto::ring::cipher_suite as cs;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        use std::io::{Read, Write};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/");
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(format!("{dir}server-chain.pem"))
            .expect("chain")
            .collect::<Result<_, _>>()
            .expect("certs");
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(format!("{dir}ca.pem")).expect("ca") {
            roots.add(ca.expect("ca cert")).expect("root");
        }
        for suite in [cs::TLS13_AES_128_GCM_SHA256, cs::TLS13_AES_256_GCM_SHA384, cs::TLS13_CHACHA20_POLY1305_SHA256] {
            let server_provider =
                CryptoProvider { cipher_suites: vec![suite], ..rustls::crypto::ring::default_provider() };
            let key = PrivateKeyDer::from_pem_file(format!("{dir}server-key.pem")).expect("key");
            let server = rustls::ServerConfig::builder_with_provider(Arc::new(server_provider))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(certs.clone(), key)
                .expect("server config");
            let client = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            let name = ServerName::try_from("localhost").expect("name");
            let mut c = rustls::ClientConnection::new(Arc::new(client), name).expect("client");
            let mut s = rustls::ServerConnection::new(Arc::new(server)).expect("server");
            let pump = |c: &mut rustls::ClientConnection, s: &mut rustls::ServerConnection| {
                crate::protocol::tls_pump::pump(c, s).unwrap_or_else(|e| panic!("{:?}: {e}", suite.suite()))
            };
            pump(&mut c, &mut s);
            assert!(!c.is_handshaking(), "{:?}", suite.suite());
            assert_eq!(c.negotiated_cipher_suite().map(|n| n.suite()), Some(suite.suite()));
            c.writer().write_all(b"ping from the client").expect("write");
            s.writer().write_all(b"pong from the server").expect("write");
            c.refresh_traffic_keys().expect("key update");
            pump(&mut c, &mut s);
            c.writer().write_all(b" after the key update").expect("write");
            pump(&mut c, &mut s);
            let mut got = Vec::new();
            let _ = s.reader().read_to_end(&mut got);
            assert_eq!(got, b"ping from the client after the key update", "{:?}", suite.suite());
            let mut got = Vec::new();
            let _ = c.reader().read_to_end(&mut got);
            assert_eq!(got, b"pong from the server", "{:?}", suite.suite());
        }
    }

    #[test]
    fn a_key_of_the_wrong_length_fails_the_record_without_panicking() {
        let (k, iv) = key(1); // 32 bytes for AES-128
        let mut enc = AES_128_GCM.encrypter(k, iv);
        let msg = OutboundPlainMessage {
            typ: ContentType::ApplicationData,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(b"x"),
        };
        assert!(matches!(enc.encrypt(msg, 0), Err(Error::EncryptError)));
    }

    #[test]
    fn a_record_shorter_than_the_tag_is_rejected() {
        let (k, iv) = key(2);
        let mut dec = CHACHA20_POLY1305.decrypter(k, iv);
        let mut wire = [23u8, 3, 3, 0, 4, 1, 2, 3, 4];
        assert!(matches!(open(&mut *dec, &mut wire, 0), Err(Error::DecryptError)));
    }

    #[test]
    fn the_provider_offers_the_same_suites_in_the_same_order() {
        let ours: Vec<_> = provider().cipher_suites.iter().map(|s| s.suite()).collect();
        let ring: Vec<_> = rustls::crypto::ring::default_provider().cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(ours, ring);
        let compact = provider().cipher_suites.iter().filter(|s| s.tls13().is_some()).count();
        assert_eq!(compact, 3);
    }
}
