//! Result codes and the error type shared by the safe API and the C ABI.

use std::fmt;

use macro_rules_attribute::macro_rules_derive;

use crate::c_enum::c_enum;

/// Outcome of every fallible ctrlchan call. Values are fixed once released and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
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
    /// The proxy refused the tunnel, needs other credentials, or is unreachable.
    ProxyFailed = 14,
    /// Reserved for the event queue limit's diagnostics (events are never dropped).
    QueueFull = 15,
}

/// An error: a result code plus human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: ResultCode,
    pub message: String,
    /// The HTTP status of a refused upgrade or proxy tunnel (SOCKS5 authentication failures count
    /// as 407; 0 otherwise, e.g. an unreachable proxy): decides whether a reconnect retries.
    pub http_status: u16,
}

impl Error {
    pub fn new(code: ResultCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), http_status: 0 }
    }
    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = status;
        self
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
