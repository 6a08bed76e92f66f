//! Test helper (compiled for tests only): drives a rustls client and server against each other
//! in memory, for the TLS tests of `tls_identity` and `tls_aead`.

use rustls::{ClientConnection, ConnectionCommon, ServerConnection};

/// Moves bytes both ways until neither end is handshaking or has anything to send, or the first
/// error (named by the end that reported it).
pub(crate) fn pump(c: &mut ClientConnection, s: &mut ServerConnection) -> Result<(), String> {
    for _ in 0..20 {
        transfer(c, s).map_err(|e| format!("server: {e}"))?;
        transfer(s, c).map_err(|e| format!("client: {e}"))?;
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() && !s.wants_write() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

/// What `from` has to send, read and processed by `to`.
fn transfer<A, B>(from: &mut ConnectionCommon<A>, to: &mut ConnectionCommon<B>) -> Result<(), rustls::Error> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).map_err(|e| rustls::Error::General(e.to_string()))?;
    }
    let mut rd = buf.as_slice();
    while !rd.is_empty() {
        to.read_tls(&mut rd).map_err(|e| rustls::Error::General(e.to_string()))?;
    }
    to.process_new_packets().map(|_| ())
}
