//! ctrlchan: Windows `ControlChannelTrigger` + `WebSocketKeepAlive` for every platform.
//!
//! A [`Runtime`] owns one reactor thread that holds every websocket, sends keep-alives on
//! schedule (coalesced across channels, never late), detects dead peers and delivers incoming
//! data, close and loss as [`Event`]s. The C ABI in [`ffi`] is a thin skin over this safe API.

pub mod channel;
pub mod error;
pub mod event;
pub mod ffi;
pub mod keepalive;
pub mod protocol;
pub mod runtime;
pub mod types;
pub mod websocket;

pub use channel::Channel;
pub use error::{Error, Result, ResultCode};
pub use event::{Event, Handler};
pub use keepalive::KeepAlive;
pub use runtime::Runtime;
pub use types::*;
pub use websocket::WebSocket;

/// The crate version, also returned by `ctrlchan_version()`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
