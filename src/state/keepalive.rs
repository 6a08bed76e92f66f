//! `WebSocketKeepAlive` settings: the keep-alive task bound to a channel's keep-alive trigger.
//! (`KeepAlive::run`, which needs the runtime, is added by the API layer.)

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::types::KeepAliveMode;

/// Default time a PING keep-alive waits for its pong.
pub const DEFAULT_PONG_TIMEOUT_MS: u32 = 5_000;
pub const MIN_PONG_TIMEOUT_MS: u32 = 10;
pub const MAX_PONG_TIMEOUT_MS: u32 = 86_400_000;

/// A keep-alive task. One task may serve many channels; changes apply to their next keep-alive.
pub struct KeepAlive {
    mode: AtomicU32,
    pong_timeout_ms: AtomicU32,
}

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive {
            mode: AtomicU32::new(KeepAliveMode::Ping as u32),
            pong_timeout_ms: AtomicU32::new(DEFAULT_PONG_TIMEOUT_MS),
        }
    }
}

impl KeepAlive {
    pub fn new() -> Arc<KeepAlive> {
        Arc::new(KeepAlive::default())
    }

    pub fn mode(&self) -> KeepAliveMode {
        if self.mode.load(Ordering::Acquire) == KeepAliveMode::UnsolicitedPong as u32 {
            KeepAliveMode::UnsolicitedPong
        } else {
            KeepAliveMode::Ping
        }
    }

    pub fn set_mode(&self, mode: KeepAliveMode) {
        self.mode.store(mode as u32, Ordering::Release);
    }

    pub fn pong_timeout_ms(&self) -> u32 {
        self.pong_timeout_ms.load(Ordering::Acquire)
    }

    pub fn set_pong_timeout_ms(&self, ms: u32) -> Result<()> {
        if !(MIN_PONG_TIMEOUT_MS..=MAX_PONG_TIMEOUT_MS).contains(&ms) {
            return Err(Error::invalid_argument(format!(
                "pong timeout {ms} ms is outside {MIN_PONG_TIMEOUT_MS}..={MAX_PONG_TIMEOUT_MS} ms"
            )));
        }
        self.pong_timeout_ms.store(ms, Ordering::Release);
        Ok(())
    }
}
