//! `ControlChannelTrigger`: the handle. Getters come from the shared state ([`ChannelShared`],
//! via `Deref`); binding a transport, push enabling and keep-alive changes are done here.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::runtime::Runtime;
use super::websocket::WebSocket;
use crate::error::{Error, Result};
use crate::runtime::sockopt::arm_kernel_keepalive;
use crate::runtime::{Cmd, RtShared};
use crate::state::channel::{check_adaptive_range, check_interval};
use crate::state::{ChannelShared, Event, Handler, KeepAlive};
use crate::types::{ChannelStats, EventKind, KeepAliveMode, ReconnectPolicy, ResourceType, Status, WebSocketState};

pub use crate::state::channel::{MAX_ID_LEN, MAX_INTERVAL_MS, MIN_INTERVAL_MS};

/// A control channel (Windows `ControlChannelTrigger`).
pub struct Channel {
    st: Arc<ChannelShared>,
    rt: Arc<RtShared>,
}

impl Deref for Channel {
    type Target = ChannelShared;
    fn deref(&self) -> &ChannelShared {
        &self.st
    }
}

impl Channel {
    pub fn new(rt: &Runtime, id: &str, server_interval_ms: u32, resource_type: ResourceType) -> Result<Arc<Channel>> {
        let shared = rt.shared();
        if shared.is_shutting_down() {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        let st = ChannelShared::new(id, server_interval_ms, resource_type, shared.slots.clone())?;
        shared.track_channel(&st);
        Ok(Arc::new(Channel { st, rt: shared.clone() }))
    }

    /// The shared state (what events carry in `Event::channel`).
    pub fn shared(&self) -> &Arc<ChannelShared> {
        &self.st
    }

    /// Changes the server keep-alive interval (Windows `ServerKeepAliveIntervalInMinutes` is
    /// writable too). The network interval restarts from the new value; keep-alives are
    /// rescheduled at once.
    pub fn set_server_keepalive_interval_ms(&self, ms: u32) -> Result<()> {
        self.st.ensure_open()?;
        check_interval(ms)?;
        self.st.store_server_interval(ms);
        self.reschedule();
        Ok(())
    }

    fn reschedule(&self) {
        if let Some(ws) = self.st.transport() {
            if ws.state() == WebSocketState::Open {
                let _ = self.rt.send(Cmd::Reschedule(ws));
            }
        }
    }

    /// Which event kinds this channel's transport produces at all (bit `1 << kind`); default:
    /// everything but KEEPALIVE. Any time; applies to later events.
    pub fn set_event_mask(&self, mask: u32) -> Result<()> {
        self.st.set_event_mask(mask);
        Ok(())
    }

    /// Sets (Some) or removes (None) the reconnect policy. Any time; applies to later losses.
    pub fn set_reconnect_policy(&self, p: Option<ReconnectPolicy>) -> Result<()> {
        self.st.ensure_open()?;
        if let Some(p) = &p {
            crate::protocol::reconnect::validate(p)?;
        }
        self.st.store_reconnect_policy(p);
        Ok(())
    }

    pub fn statistics(&self) -> ChannelStats {
        self.st.stats()
    }

    pub fn set_keepalive(&self, task: Option<Arc<KeepAlive>>) -> Result<()> {
        self.st.ensure_open()?;
        self.st.store_keepalive(task);
        Ok(())
    }

    pub fn set_handler(&self, h: Option<Handler>) -> Result<()> {
        if h.is_some() {
            self.st.ensure_open()?;
            if self.rt.is_shutting_down() {
                return Err(Error::invalid_state("the runtime is shut down"));
            }
        }
        self.st.replace_handler(h);
        Ok(())
    }

    /// Binds `ws` as this channel's transport. Call before connecting it; after a transport
    /// closed or was lost, call again with a new websocket (a RESET event is delivered).
    pub fn using_transport(&self, ws: &WebSocket) -> Result<()> {
        self.st.ensure_open()?;
        if !Arc::ptr_eq(ws.runtime(), &self.rt) {
            return Err(Error::invalid_argument("the websocket belongs to another runtime"));
        }
        if ws.state() != WebSocketState::New {
            return Err(Error::invalid_state("using_transport must be called before the websocket connects"));
        }
        let ws = ws.shared();
        let mut t = self.st.transport.lock();
        let mut replaced = false;
        if let Some(old) = t.as_ref() {
            if Arc::ptr_eq(old, ws) {
                return Ok(());
            }
            match old.state() {
                WebSocketState::Closed => replaced = true,
                WebSocketState::New => {}
                _ => return Err(Error::invalid_state("the channel's current transport is still active")),
            }
        }
        {
            let mut bound = ws.channel.lock();
            if let Some(other) = bound.upgrade() {
                if !Arc::ptr_eq(&other, &self.st) {
                    return Err(Error::invalid_state("the websocket is already the transport of another channel"));
                }
            }
            *bound = Arc::downgrade(&self.st);
        }
        if let Some(old) = t.replace(ws.clone()) {
            let mut b = old.channel.lock();
            if b.upgrade().is_some_and(|c| Arc::ptr_eq(&c, &self.st)) {
                *b = std::sync::Weak::new();
            }
        }
        drop(t);
        self.st.release_slot();
        if replaced {
            let ev = Event::new(EventKind::Reset, Some(ws.clone()), Some(self.st.clone()))
                .with_reason("the channel is using a new transport");
            // Callbacks only ever run on the runtime thread, never inside the caller's call.
            let _ = self.rt.send(Cmd::Deliver(Box::new(ev)));
        }
        Ok(())
    }

    /// Registers the channel for keep-alives and push delivery; call after connect.
    pub fn wait_for_push_enabled(&self) -> Result<Status> {
        if self.rt.is_shutting_down() {
            return Ok(Status::ServiceUnavailable);
        }
        self.st.ensure_open()?;
        let ws = match self.st.transport() {
            Some(ws) => ws,
            None => return Ok(Status::TransportDisconnected),
        };
        let mut slot = self.st.slot.lock();
        // close() flips `closed` under this lock: a channel closed meanwhile gets no slot.
        self.st.ensure_open()?;
        if let Some(s) = *slot {
            if ws.state() == WebSocketState::Open {
                return Ok(s);
            }
        }
        if ws.state() != WebSocketState::Open {
            return Ok(Status::TransportDisconnected);
        }
        if slot.is_none() && !self.st.pool().try_take() {
            return Ok(Status::PolicyError);
        }
        let status = if self.st.resource_type() == ResourceType::RequestHardwareSlot {
            let ka = self.st.keepalive_task();
            // The fd is only valid while the websocket lock is held (the reactor clears it
            // under the same lock before closing the socket).
            let mut g = ws.inner.lock();
            match arm_kernel_keepalive(g.fd, self.st.current_keepalive_interval_ms(), ka.pong_timeout_ms()) {
                Ok(()) => {
                    g.hardware_keepalive = true;
                    Status::HardwareSlotAllocated
                }
                Err(_) => Status::SoftwareSlotAllocated,
            }
        } else {
            Status::SoftwareSlotAllocated
        };
        // Still under the slot lock, so a concurrent close() queues its DisableKeepalive after this.
        if let Err(e) = self.rt.send(Cmd::EnableKeepalive(ws, self.st.clone())) {
            if slot.is_none() {
                self.st.pool().give_back();
            }
            drop(slot);
            if self.rt.is_shutting_down() {
                return Ok(Status::ServiceUnavailable);
            }
            return Err(e);
        }
        *slot = Some(status);
        Ok(status)
    }

    /// Lowers the network keep-alive interval (halves it, not below 100 ms). With adaptive
    /// keep-alive on, the learner is told instead (the current value becomes its upper bound
    /// and the interval halves, not below `min`), on the runtime thread.
    pub fn decrease_network_keepalive_interval(&self) -> Result<()> {
        self.st.ensure_open()?;
        {
            let mut a = self.st.adaptive.lock();
            if a.range.is_some() {
                a.pending_decreases = a.pending_decreases.saturating_add(1);
            } else {
                drop(a);
                self.st.halve_network_interval();
            }
        }
        self.reschedule();
        Ok(())
    }

    /// Adaptive keep-alive (beyond Windows): learn the network interval between `min_ms` and
    /// `min(max_ms, server interval)` (see [`crate::protocol::adaptive`]); `0, 0` turns it off
    /// (the network interval is the server interval again). Any thread, any time.
    pub fn set_adaptive_keepalive(&self, min_ms: u32, max_ms: u32) -> Result<()> {
        self.st.ensure_open()?;
        if (min_ms, max_ms) == (0, 0) {
            let mut a = self.st.adaptive.lock();
            a.range = None;
            a.pending_decreases = 0;
            if let Some(t) = a.tracker.take() {
                self.rt.adaptive.remember(&t);
            }
            drop(a);
            self.st.store_network_interval(self.st.server_keepalive_interval_ms());
        } else {
            check_adaptive_range(min_ms, max_ms)?;
            let mut a = self.st.adaptive.lock();
            a.range = Some((min_ms, max_ms));
            let fresh = a.tracker.is_none();
            drop(a);
            // The learner starts at min (the runtime thread moves it to a remembered value);
            // a running one is clamped to the new range at once, and by the learner after.
            let now = self.st.current_keepalive_interval_ms();
            self.st.store_network_interval(if fresh { min_ms } else { now.clamp(min_ms, max_ms) });
        }
        self.reschedule();
        Ok(())
    }

    /// The adaptive keep-alive range, `None` when off.
    pub fn adaptive_keepalive(&self) -> Option<(u32, u32)> {
        self.st.adaptive_range()
    }

    pub fn flush_transport(&self, timeout: Duration) -> Result<()> {
        self.st.ensure_open()?;
        crate::runtime::ensure_may_block("ctrlchan_channel_flush_transport")?;
        match self.st.transport() {
            Some(ws) => ws.wait_flushed_unless(timeout, &|| self.st.is_closed()),
            None => Err(Error::invalid_state("the channel has no transport")),
        }
    }

    pub(crate) fn run_keepalive_now(&self, mode: KeepAliveMode, pong_timeout_ms: u32) -> Result<()> {
        self.st.ensure_open()?;
        let ws = self.st.transport().ok_or_else(|| Error::invalid_state("the channel has no transport"))?;
        match ws.state() {
            WebSocketState::Open => {}
            WebSocketState::Closing | WebSocketState::Closed => return Err(Error::closed("the transport is closed")),
            _ => return Err(Error::invalid_state("the transport is not connected")),
        }
        self.rt.send(Cmd::RunKeepalive(ws, mode, pong_timeout_ms))
    }

    /// Stops keep-alives and releases the slot. The transport stays open (the app owns it).
    pub fn close(&self) -> Result<()> {
        {
            let mut slot = self.st.slot.lock();
            if !self.st.mark_closed() {
                return Ok(());
            }
            if slot.take().is_some() {
                self.st.pool().give_back();
            }
        }
        if let Some(ws) = self.st.transport.lock().take() {
            {
                let mut b = ws.channel.lock();
                *b = std::sync::Weak::new();
            }
            // A flush_transport blocked on this channel returns INVALID_STATE now.
            ws.wake_waiters();
            let _ = self.rt.send(Cmd::DisableKeepalive(ws));
        }
        self.st.replace_handler(None);
        Ok(())
    }
}
