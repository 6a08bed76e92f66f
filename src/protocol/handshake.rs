//! The client side of the RFC 6455 opening handshake as a sans-I/O state machine: it produces
//! the request bytes and consumes response bytes in whatever pieces they arrive, and never touches
//! a socket. Done here (not by tungstenite's handshake machine) so that the websocket starts with
//! exactly the small read buffer we configure and keeps no handshake buffer afterwards.

use tungstenite::handshake::client::Request;

use crate::error::{Error, ResultCode};

/// Largest HTTP response head accepted during the upgrade.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// A successful upgrade.
#[derive(Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol the server selected ("" if none).
    pub protocol: String,
    /// Bytes that followed the response head: the first websocket frames.
    pub tail: Vec<u8>,
}

/// One opening handshake.
pub struct Handshake {
    request: Vec<u8>,
    written: usize,
    key: String,
    offered: Vec<String>,
    response: Vec<u8>,
}

impl Handshake {
    /// Builds the upgrade request for `request` (URI and extra headers already set).
    pub fn new(request: Request) -> Result<Self, Error> {
        let offered: Vec<String> = request
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        let (mut bytes, key) = tungstenite::handshake::client::generate_request(request)
            .map_err(|e| Error::new(ResultCode::HandshakeFailed, format!("cannot build the upgrade request: {e}")))?;
        // Kept until the request is written: no spare capacity.
        bytes.shrink_to_fit();
        Ok(Self::with_key(bytes, key, offered))
    }

    /// A handshake with a given request and key (tests, and fuzzing of the response parser).
    pub fn with_key(request: Vec<u8>, key: String, offered: Vec<String>) -> Self {
        Handshake { request, written: 0, key, offered, response: Vec::new() }
    }

    /// Request bytes not yet written to the transport.
    pub fn pending_output(&self) -> &[u8] {
        &self.request[self.written.min(self.request.len())..]
    }

    /// The transport accepted `n` more request bytes.
    pub fn advance_output(&mut self, n: usize) {
        self.written = self.written.saturating_add(n).min(self.request.len());
    }

    /// Whether the whole request was handed to the transport.
    pub fn request_sent(&self) -> bool {
        self.written >= self.request.len()
    }

    /// Consumes response bytes. `Ok(None)`: the head is still incomplete; `Ok(Some(..))`: the
    /// server accepted the upgrade; `Err`: it refused, or the response is malformed or too large.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Accepted>, Error> {
        if self.response.is_empty() {
            self.response.reserve(bytes.len().clamp(256, 1024));
        }
        self.response.extend_from_slice(bytes);
        match parse_response(&self.response, &self.key, &self.offered)? {
            None if self.response.len() > MAX_RESPONSE_HEAD => {
                Err(Error::new(ResultCode::HandshakeFailed, "the upgrade response head is too large"))
            }
            None => Ok(None),
            Some((head_len, protocol)) => {
                let tail = self.response.get(head_len..).map(<[u8]>::to_vec).unwrap_or_default();
                self.response = Vec::new();
                Ok(Some(Accepted { protocol, tail }))
            }
        }
    }
}

/// Parses the HTTP upgrade response. `Ok(None)`: incomplete; `Ok(Some((head_len, protocol)))`:
/// a valid RFC 6455 acceptance.
fn parse_response(buf: &[u8], key: &str, offered: &[String]) -> Result<Option<(usize, String)>, Error> {
    let fail = |m: String| Error::new(ResultCode::HandshakeFailed, m);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(fail(format!("malformed HTTP response to the upgrade: {e}"))),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(fail(format!(
            "the server refused the websocket upgrade with HTTP {code} {}",
            resp.reason.unwrap_or("")
        ))
        .with_http_status(code));
    }
    // RFC 6455 section 4.1: the upgrade is an HTTP/1.1 mechanism.
    if resp.version != Some(1) {
        return Err(fail("the upgrade response is not HTTP/1.1".into()));
    }
    let header = |name: &str| -> Option<&str> {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    if !header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(fail("the upgrade response lacks 'Upgrade: websocket'".into()));
    }
    if !header("Connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))) {
        return Err(fail("the upgrade response lacks 'Connection: Upgrade'".into()));
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if header("Sec-WebSocket-Accept") != Some(expected.as_str()) {
        return Err(fail("the server's Sec-WebSocket-Accept does not match our key".into()));
    }
    let protocol = header("Sec-WebSocket-Protocol").unwrap_or("").to_string();
    if !protocol.is_empty() && !offered.iter().any(|p| p == &protocol) {
        return Err(fail(format!("the server selected subprotocol '{protocol}', which was not offered")));
    }
    if header("Sec-WebSocket-Extensions").is_some_and(|v| !v.is_empty()) {
        return Err(fail("the server enabled an extension that was not offered".into()));
    }
    Ok(Some((head_len, protocol)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6455 section 1.3 example key/accept pair.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn resp(accept: &str, extra: &str) -> String {
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\nTAIL")
    }

    fn hs(offered: &[&str]) -> Handshake {
        Handshake::with_key(
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            KEY.into(),
            offered.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn accepts_valid_upgrade_and_returns_the_tail() {
        let r = resp(ACCEPT, "Sec-WebSocket-Protocol: chat\r\n");
        let got = hs(&["chat"]).feed(r.as_bytes());
        assert_eq!(got.ok().flatten(), Some(Accepted { protocol: "chat".into(), tail: b"TAIL".to_vec() }));
    }

    #[test]
    fn one_byte_splits_give_the_same_result() {
        let r = resp(ACCEPT, "");
        let mut h = hs(&[]);
        let bytes = r.as_bytes();
        let mut done = None;
        for (i, b) in bytes.iter().enumerate() {
            match h.feed(std::slice::from_ref(b)) {
                Ok(None) => {}
                Ok(Some(a)) => {
                    done = Some((i, a));
                    break;
                }
                Err(e) => panic!("split at {i}: {e}"),
            }
        }
        let (i, a) = done.expect("complete"); // ok: test
                                              // The head ends at the blank line; the first tail byte completes nothing new.
        assert_eq!(i + 1, bytes.len() - 4);
        assert!(a.tail.is_empty());
    }

    #[test]
    fn request_bytes_are_handed_out_in_pieces() {
        let mut h = hs(&[]);
        let total = h.pending_output().len();
        h.advance_output(3);
        assert_eq!(h.pending_output().len(), total - 3);
        assert!(!h.request_sent());
        h.advance_output(usize::MAX);
        assert!(h.request_sent());
        assert!(h.pending_output().is_empty());
    }

    #[test]
    fn rejects_bad_accept_status_version_and_unoffered_protocol() {
        assert!(hs(&[]).feed(resp("wrong", "").as_bytes()).is_err());
        let r = resp(ACCEPT, "Sec-WebSocket-Protocol: evil\r\n");
        assert!(hs(&["chat"]).feed(r.as_bytes()).is_err());
        let e = hs(&[]).feed(b"HTTP/1.1 404 Not Found\r\n\r\n").expect_err("404"); // ok: test
        assert!(e.message.contains("404"));
        assert_eq!(e.code, ResultCode::HandshakeFailed);
        assert_eq!(hs(&[]).feed(b"HTTP/1.1 101 Swi").ok(), Some(None));
        assert!(hs(&[]).feed(b"\x00\x01garbage\r\n\r\n").is_err());
        let old = resp(ACCEPT, "").replacen("HTTP/1.1", "HTTP/1.0", 1);
        let e = hs(&[]).feed(old.as_bytes()).expect_err("HTTP/1.0"); // ok: test
        assert!(e.message.contains("HTTP/1.1"));
        let ext = resp(ACCEPT, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert!(hs(&[]).feed(ext.as_bytes()).is_err());
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut h = hs(&[]);
        assert_eq!(h.feed(b"HTTP/1.1 101 Switching Protocols\r\n").ok(), Some(None));
        let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
        let mut refused = false;
        for _ in 0..40 {
            match h.feed(filler.as_bytes()) {
                Ok(None) => {}
                Err(e) => {
                    assert!(e.message.contains("too large") || e.message.contains("malformed"), "{e}");
                    refused = true;
                    break;
                }
                Ok(Some(_)) => panic!("accepted an oversized head"),
            }
        }
        assert!(refused);
    }
}
