//! Result codes and the error type shared by the safe API and the C ABI.

use std::fmt;

/// Outcome of every fallible ctrlchan call. Values are fixed once released and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// Success.
    Ok = 0,
    /// A NULL pointer, an out-of-range number, invalid UTF-8 or a malformed string was passed.
    InvalidArgument = 1,
    /// NULL, freed or foreign handle.
    InvalidHandle = 2,
    /// The object is not in a state that allows the call (for example an option set after connect,
    /// or a blocking call made from inside a callback).
    InvalidState = 3,
    /// The operation did not complete within its timeout (or no event arrived).
    Timeout = 4,
    /// TCP connection could not be established (refused, unreachable, name not resolved).
    ConnectFailed = 5,
    /// TLS handshake or certificate verification failed.
    TlsFailed = 6,
    /// The HTTP upgrade / WebSocket handshake was rejected or malformed.
    HandshakeFailed = 7,
    /// The websocket or channel is closed.
    Closed = 8,
    /// A message exceeds the configured maximum size.
    MessageTooLarge = 9,
    /// The outbound queue limit would be exceeded.
    BufferFull = 10,
    /// An operating-system I/O error.
    Io = 11,
    /// A policy limit (such as the runtime's channel limit) was hit.
    Policy = 12,
    /// An internal panic was caught at the C boundary (a bug in ctrlchan; please report it).
    Panic = 13,
    /// The proxy refused the tunnel, wants other credentials, answered badly or is unreachable.
    ProxyFailed = 14,
    /// Reserved for the event queue limit's diagnostics (events are never dropped).
    QueueFull = 15,
}

impl ResultCode {
    /// Stable, upper-case name of the code (`"OK"`, `"INVALID_ARGUMENT"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ResultCode::Ok => "OK",
            ResultCode::InvalidArgument => "INVALID_ARGUMENT",
            ResultCode::InvalidHandle => "INVALID_HANDLE",
            ResultCode::InvalidState => "INVALID_STATE",
            ResultCode::Timeout => "TIMEOUT",
            ResultCode::ConnectFailed => "CONNECT_FAILED",
            ResultCode::TlsFailed => "TLS_FAILED",
            ResultCode::HandshakeFailed => "HANDSHAKE_FAILED",
            ResultCode::Closed => "CLOSED",
            ResultCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ResultCode::BufferFull => "BUFFER_FULL",
            ResultCode::Io => "IO",
            ResultCode::Policy => "POLICY",
            ResultCode::Panic => "PANIC",
            ResultCode::ProxyFailed => "PROXY_FAILED",
            ResultCode::QueueFull => "QUEUE_FULL",
        }
    }
}

/// An error: a result code plus human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: ResultCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ResultCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ResultCode::InvalidArgument, message)
    }
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ResultCode::InvalidState, message)
    }
    pub fn closed(message: impl Into<String>) -> Self {
        Self::new(ResultCode::Closed, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
