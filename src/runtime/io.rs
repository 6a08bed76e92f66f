//! Small helpers for non-blocking I/O: "would block" is not an error, and a best-effort close.

use std::io;

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};

/// A tungstenite websocket over our stream.
use tungstenite::WebSocket as Codec;

/// (Aliased so that cbindgen, which resolves types by name, never confuses it with our WebSocket.)
pub(crate) type Sock = Codec<super::reframed::Reframed>;

/// True for "the socket is not ready": retry on the next readiness event.
pub(crate) fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

/// Treats "would block" as success (the data is queued and goes out on the next writable event).
pub(crate) fn ok_unless_fatal(r: Result<(), tungstenite::Error>) -> Result<(), tungstenite::Error> {
    match r {
        Err(e) if would_block(&e) => Ok(()),
        other => other,
    }
}

/// Same for plain `io::Result`s.
pub(crate) fn io_ok_unless_fatal<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// Queues a close frame and pushes it towards the kernel; errors are ignored (the connection is
/// being torn down anyway).
pub(crate) fn best_effort_close(sock: &mut Sock, code: CloseCode, reason: &'static str) {
    let _ = sock.close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }));
    let _ = sock.flush();
}
