//! Layer 4, API: the handles an application holds — [`Runtime`], [`WebSocket`], [`Channel`],
//! [`KeepAlive`]. A handle pairs an object's shared state (layer 2, which it derefs to for the
//! getters) with its runtime, and turns calls into state changes and runtime commands.

pub mod channel;
pub mod keepalive;
pub mod runtime;
pub mod websocket;

pub use crate::state::KeepAlive;
pub use channel::Channel;
pub use runtime::Runtime;
pub use websocket::WebSocket;
