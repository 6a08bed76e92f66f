//! Layer 1, protocol: pure rules and sans-I/O state machines. Nothing here touches a socket,
//! a thread or the runtime; everything is unit-tested on values and byte slices.
//!
//! - [`handshake`]: the RFC 6455 opening handshake (request bytes out, response bytes in).
//! - [`uri`]: `ws://`/`wss://` URI parsing and close-code rules.
//! - [`timing`]: keep-alive timing rules (never late, coalesced early).
//! - [`tls`]: TLS client configuration (roots, extra CAs, the explicit insecure option).
//! - [`reframe`]: splits huge incoming frames into bounded fragments (no up-front reservation).
//! - [`reconnect`]: the retry table and the backoff schedule.
//! - [`proxy`]: proxy URIs, the environment rules, HTTP CONNECT and SOCKS5 (driven by `runtime::connect`).
//! - [`tls_identity`]: client certificates, public-key pins, session facts (used by `tls`).
//! - [`adaptive`]: the adaptive keep-alive learner, network key and state format.
//! - [`keepalive_frame`]: the fixed ping / empty pong frames, built without the generic encoder.
//! - [`settle`]: how long to wait after a ping burst so that its pongs are read together.

pub mod adaptive;
pub mod handshake;
pub mod keepalive_frame;
pub mod proxy;
pub mod reconnect;
pub mod reframe;
pub mod settle;
pub mod timing;
pub mod tls;
mod tls_aead;
pub mod tls_identity;
#[cfg(test)]
pub(crate) mod tls_pump;
pub mod uri;
