//! `ctrlchan_websocket` on real networks: proxies, client certificates, public-key pins, and
//! what the TLS session negotiated.

use std::ffi::c_char;

use super::args::{bytes_arg, get_into, out_arg, str_arg};
use super::boundary::ffi_fn;
use super::handles::get;
use super::websocket::ctrlchan_websocket;
use crate::{ResultCode, WebSocket};

/// The proxy for this websocket's connects and reconnects: `"http://[user:pass@]host:port"`
/// (HTTP CONNECT, Basic authentication from the user info), `"socks5://[user:pass@]host:port"`
/// (SOCKS5; the server's name is resolved locally), `"socks5h://…"` (the proxy resolves it), or
/// `""` for a direct connection whatever the environment says. Never called: the proxy comes
/// from the environment at each connect like curl and python-websockets (`wss_proxy`/`ws_proxy`,
/// `https_proxy`/`http_proxy`, `all_proxy`, upper case too, and `no_proxy`). TLS runs inside the
/// tunnel and verifies the server's name, not the proxy's. A refusal, wrong credentials or an
/// unreachable proxy fails the connect with `PROXY_FAILED` and the proxy's status line; the
/// credentials never appear in any message. Before connect only.
///
/// Errors: `INVALID_ARGUMENT` (NULL, not UTF-8, not a valid proxy URI; the message shows it
/// with its user info redacted); `INVALID_STATE` after connect; `INVALID_HANDLE`.
/// Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_proxy(ws: *mut ctrlchan_websocket, proxy_uri: *const c_char) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let uri = unsafe { str_arg(proxy_uri, "proxy_uri") }?;
        w.set_proxy(uri)
    }
}

/// The client certificate offered when a wss:// server asks for one (mutual TLS):
/// `cert_chain_pem` holds one or more CERTIFICATE blocks, the client's own first;
/// `private_key_pem` its key as PKCS#8 (`BEGIN PRIVATE KEY`), SEC1 (`BEGIN EC PRIVATE KEY`) or
/// PKCS#1 (`BEGIN RSA PRIVATE KEY`), unencrypted. The key is checked against the certificate
/// now. Replaces an earlier call's identity. Both buffers are copied. Before connect only.
///
/// Errors: `INVALID_ARGUMENT` (NULL, no certificate, malformed PEM, a key that does not belong to
/// the first certificate, an encrypted or unsupported key); `INVALID_STATE` after connect;
/// `INVALID_HANDLE`. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_client_certificate_pem(
    ws: *mut ctrlchan_websocket,
    cert_chain_pem: *const u8,
    cert_len: usize,
    private_key_pem: *const u8,
    key_len: usize,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let chain = unsafe { bytes_arg(cert_chain_pem, cert_len, "cert_chain_pem") }?;
        let key = unsafe { bytes_arg(private_key_pem, key_len, "private_key_pem") }?;
        w.set_client_certificate_pem(chain, key)
    }
}

/// Pins the server's public key, in curl's form `"sha256//<base64 of the SHA-256 of the
/// SubjectPublicKeyInfo>"` (several may be joined by `;`; call again to add more). With pins
/// set, the server's leaf key must match one of them in addition to the normal verification
/// (a mismatch fails the connect with `TLS_FAILED`). Before connect only.
///
/// Errors: `INVALID_ARGUMENT` (NULL, not `sha256//` followed by 32 bytes of base64);
/// `INVALID_STATE` after connect; `INVALID_HANDLE`. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_add_pinned_public_key(
    ws: *mut ctrlchan_websocket,
    pin: *const c_char,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let pin = unsafe { str_arg(pin, "pin") }?;
        w.add_pinned_public_key(pin)
    }
}

/// The server's leaf certificate (DER) of the latest wss:// connection: `*der` = NULL and
/// `*len` = 0 before a TLS connection opened (and for ws://).
///
/// Ownership: the bytes are owned by the websocket and stay valid while it lives (a reconnect
/// to a server with another certificate adds a new copy; the old one stays valid too).
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `der` or `len` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_peer_certificate(
    ws: *const ctrlchan_websocket,
    der: *mut *const u8,
    len: *mut usize,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let der = out_arg(der, "der")?;
        let len = out_arg(len, "len")?;
        let (p, n) = w.with_peer_tls(|t| t.map_or((std::ptr::null(), 0), |t| (t.certificate.as_ptr(), t.certificate.len())));
        *der = p;
        *len = n;
        Ok(())
    }
}

/// The TLS version the latest wss:// connection negotiated, as OpenSSL and Python name it
/// (`"TLSv1.3"`, `"TLSv1.2"`); `""` before a TLS connection opened (and for ws://).
///
/// Ownership: the string is owned by the websocket and stays valid while it lives.
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_tls_version(
    ws: *const ctrlchan_websocket,
    out: *mut *const c_char,
) -> ResultCode {
    ffi_fn! { get_into(ws, out, |w: &WebSocket| w.with_peer_tls(|t| t.map_or(c"".as_ptr(), |t| t.version.as_ptr()))) }
}

/// The cipher suite the latest wss:// connection negotiated, by its IANA name
/// (`"TLS_AES_128_GCM_SHA256"`, `"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"`); `""` before a
/// TLS connection opened (and for ws://).
///
/// Ownership: the string is owned by the websocket and stays valid while it lives.
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_tls_cipher_suite(
    ws: *const ctrlchan_websocket,
    out: *mut *const c_char,
) -> ResultCode {
    ffi_fn! { get_into(ws, out, |w: &WebSocket| w.with_peer_tls(|t| t.map_or(c"".as_ptr(), |t| t.cipher_suite.as_ptr()))) }
}
