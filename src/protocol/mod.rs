//! Protocol layer: sans-I/O pieces that parse and produce bytes and never touch a socket.

pub mod proxy;
pub mod tls_identity;
