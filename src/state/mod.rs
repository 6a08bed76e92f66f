//! Layer 2, state: what a websocket, a channel and a keep-alive task are, shared between the
//! threads that call the API and the runtime thread that drives the sockets; and the [`Event`]s
//! they produce. Plain data behind locks and atomics: no I/O, no commands, no threads.
//! Transitions of a websocket's lifecycle state are made only by `runtime::lifecycle`.

pub mod channel;
pub mod event;
pub mod keepalive;
mod protocols;
pub mod websocket;

pub use channel::{ChannelShared, SlotPool};
pub use event::{Event, Handler};
pub use keepalive::KeepAlive;
pub use websocket::WsShared;
