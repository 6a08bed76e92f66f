//! `WebSocketKeepAlive.Run`: the part of the keep-alive task that needs a runtime.

use super::channel::Channel;
use crate::error::Result;
use crate::state::KeepAlive;

impl KeepAlive {
    /// `IBackgroundTask.Run`: sends one keep-alive on the channel's transport now.
    pub fn run(&self, channel: &Channel) -> Result<()> {
        channel.run_keepalive_now(self.mode(), self.pong_timeout_ms())
    }
}
