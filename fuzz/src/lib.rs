//! The fuzz targets' bodies, shared by `fuzz_targets/*.rs` (libFuzzer) and `tests/corpus.rs`
//! (every checked-in corpus file as a plain test). Each panics on a broken invariant.

use std::io::{self, Read, Write};

use ctrlchan::protocol::handshake::Handshake;
use ctrlchan::protocol::reframe::Reframer;
use ctrlchan::runtime::reframed::Reframed;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

mod ffi;
mod reactor;
pub use ffi::ffi_calls;
pub use reactor::reactor;

/// The websocket key whose accept value is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=` (RFC 6455 §1.3).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Split sizes derived from a seed byte: 1..=64 bytes, deterministic.
struct Splits(u32);
impl Splits {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        1 + ((self.0 >> 16) as usize % 64)
    }
}

fn handshake_request() -> Handshake {
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    Handshake::with_key(req, KEY.to_string(), vec!["chat".into(), "v2".into()])
}

/// `Ok(Some((protocol, tail)))`, `Ok(None)` (needs more) or the error code, feeding `input` in
/// pieces; the tail is completed with the bytes not fed yet.
fn feed_handshake(input: &[u8], splits: Option<&mut Splits>) -> Result<Option<(String, Vec<u8>)>, u32> {
    let mut hs = handshake_request();
    let mut pos = 0;
    let mut splits = splits;
    while pos < input.len() {
        let n = match splits.as_deref_mut() {
            Some(s) => s.next().min(input.len() - pos),
            None => input.len(),
        };
        let r = hs.feed(&input[pos..pos + n]);
        pos += n;
        match r {
            Ok(Some(a)) => {
                let mut tail = a.tail;
                tail.extend_from_slice(&input[pos..]);
                return Ok(Some((a.protocol, tail)));
            }
            Ok(None) => {}
            Err(e) => return Err(e.code as u32),
        }
    }
    Ok(None)
}

/// The upgrade parser: any split gives the answer of the one-shot feed.
pub fn handshake(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else { return };
    let whole = feed_handshake(input, None);
    let split = feed_handshake(input, Some(&mut Splits(u32::from(seed))));
    assert_eq!(whole, split, "the result depends on how the response was split");
}

/// URI parsing: no panic; an accepted URI has a host and a scheme-consistent shape.
pub fn uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(t) = ctrlchan::protocol::uri::parse_target(s) {
        assert!(!t.host.is_empty(), "accepted {s:?} with an empty host");
        let again = ctrlchan::protocol::uri::parse_target(s).expect("deterministic");
        assert_eq!((again.secure, again.host, again.port), (t.secure, t.host, t.port));
    }
}

/// Proxy handshakes (HTTP CONNECT, SOCKS5 with and without auth): any split of the proxy's answer
/// gives the one-shot outcome.
pub fn proxy(data: &[u8]) {
    use ctrlchan::protocol::proxy::{Proxy, ProxyHandshake, ProxyTarget, Status};
    let Some((&sel, input)) = data.split_first() else { return };
    let proxies = ["http://proxy:3128", "http://u:p@proxy:3128", "socks5://10.0.0.1:1080", "socks5h://u:p@proxy:1080"];
    let Ok(p) = Proxy::parse(proxies[(sel & 3) as usize]) else { return };
    let target = if sel & 4 == 0 {
        ProxyTarget::from_host("example.com", 443)
    } else {
        Ok(ProxyTarget::ip("192.0.2.7:8443".parse().expect("literal")))
    };
    let Ok(target) = target else { return };
    let run = |splits: Option<Splits>| -> Result<Option<Vec<u8>>, u32> {
        let Ok(mut hs) = ProxyHandshake::new(&p, &target) else { return Err(u32::MAX) };
        let mut splits = splits;
        let mut pos = 0;
        while pos < input.len() {
            let n = splits.as_mut().map_or(input.len() - pos, |s| s.next().min(input.len() - pos));
            let r = hs.feed(&input[pos..pos + n]);
            pos += n;
            match r {
                Ok(Status::Established { mut leftover }) => {
                    leftover.extend_from_slice(&input[pos..]);
                    return Ok(Some(leftover));
                }
                Ok(Status::NeedMore) => {}
                Err(e) => return Err(e.code as u32),
            }
        }
        Ok(None)
    };
    assert_eq!(run(None), run(Some(Splits(u32::from(sel)))), "the outcome depends on the split");
}

/// The adaptive keep-alive state file: parse what was written; the written form round-trips.
pub fn adaptive_store(data: &[u8]) {
    use ctrlchan::protocol::adaptive::store::Memory;
    let text = String::from_utf8_lossy(data);
    let (mem, _warnings) = Memory::parse(&text);
    let written = mem.to_text();
    let (again, warnings) = Memory::parse(&written);
    assert!(warnings.is_empty(), "our own output gives warnings: {warnings:?}\n{written}");
    assert_eq!(again.to_text(), written, "the state file does not round-trip");
}

/// An in-memory peer: reads `input` in pieces with a `WouldBlock` between them; writes vanish.
pub struct Peer {
    input: Vec<u8>,
    pos: usize,
    splits: Splits,
    blocked: bool,
}

impl Peer {
    pub fn new(input: Vec<u8>, seed: u8) -> Self {
        Peer { input, pos: 0, splits: Splits(u32::from(seed)), blocked: false }
    }
}
impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.input.len() {
            self.blocked = !self.blocked;
            if self.blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let n = self.splits.next().min(buf.len()).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The engine's websocket configuration (src/api/websocket.rs) with a small message limit.
pub fn engine_config(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(ctrlchan::state::websocket::READ_BUFFER_SIZE)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Every message read until the first error other than `WouldBlock` (compared as messages:
/// formatting them as debug strings cost more than the rest of the target).
fn read_messages<S: Read + Write>(ws: &mut WebSocket<S>) -> Vec<tungstenite::Message> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        match ws.read() {
            Ok(m) => out.push(m),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    out
}

/// The re-framer is transparent: tungstenite reads the same messages from a server's bytes with
/// and without it, whatever the splits and fragment size.
pub fn reframe(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else { return };
    let max = 1 << 16;
    let mut direct =
        WebSocket::from_raw_socket(Peer::new(input.to_vec(), seed), Role::Client, Some(engine_config(max)));
    let mut rf = Reframed::new(Peer::new(input.to_vec(), seed.wrapping_add(1)), Vec::new(), Some(max));
    let chunk = 126 + u64::from(seed) * 4;
    *rf.reframer_mut() = Reframer::new(chunk, Some(max));
    let mut via = WebSocket::from_raw_socket(rf, Role::Client, Some(engine_config(max)));
    assert_eq!(read_messages(&mut direct), read_messages(&mut via));
}

/// A whole connection as the reactor drives it: the upgrade parser, then the bytes after the
/// response (the tail first) through the re-framer into tungstenite with the engine's config,
/// sending a message now and then.
pub fn connection(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else { return };
    let Ok(Some((_protocol, tail))) = feed_handshake(input, Some(&mut Splits(u32::from(seed)))) else { return };
    let cut = tail.len().min(usize::from(seed));
    let (first, rest) = tail.split_at(cut);
    let stream = Reframed::new(Peer::new(rest.to_vec(), seed), first.to_vec(), Some(1 << 16));
    let mut ws = WebSocket::from_partially_read(stream, Vec::new(), Role::Client, Some(engine_config(1 << 16)));
    for i in 0..100_000u32 {
        match ws.read() {
            Ok(_) => {
                if i % 3 == 0 {
                    let _ = ws.send(tungstenite::Message::Binary(vec![1, 2, 3].into()));
                }
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
}
