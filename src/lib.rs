//! ctrlchan: Windows `ControlChannelTrigger` + `WebSocketKeepAlive` for every platform.
//!
//! A [`Runtime`] owns one reactor thread that holds every websocket, sends keep-alives on
//! schedule (coalesced across channels, never late), detects dead peers and delivers incoming
//! data, close and loss as [`Event`]s. The C ABI in [`ffi`] is a thin skin over this safe API.
//!
//! # Layers
//!
//! The crate is layered bottom to top; a module only uses the layers below it:
//!
//! | layer | modules | what it is |
//! |---|---|---|
//! | 0 types | [`error`], [`types`] | result codes, the error type, plain enums and stats |
//! | 1 protocol | [`protocol`] | sans-I/O: opening handshake, URIs and close codes, timing rules, TLS config |
//! | 2 state | [`state`] | websocket / channel / keep-alive state shared across threads, [`Event`] |
//! | 3 runtime | [`runtime`] | the reactor thread: loop, lifecycle, connect, open-connection I/O, keep-alive bookkeeping, commands, queue, routing |
//! | 4 API | [`api`] | the handles: [`Runtime`], [`WebSocket`], [`Channel`], [`KeepAlive`] |
//! | 5 ffi | [`ffi`] | the C ABI |
//!
//! Where does a connection's state change? In `src/runtime/lifecycle.rs`, and nowhere else.

mod c_enum;
pub mod error;
pub mod types;

pub mod protocol;

pub mod state;

pub mod runtime;

pub mod api;

pub mod ffi;

pub use api::{Channel, KeepAlive, Runtime, WebSocket};
pub use c_enum::UnknownValue;
pub use error::{Error, Result, ResultCode};
pub use state::{Event, Handler};
pub use types::*;

/// The crate version, also returned by `ctrlchan_version()`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
