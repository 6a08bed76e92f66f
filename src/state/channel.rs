//! The shared state of a control channel (Windows `ControlChannelTrigger`): id, keep-alive
//! intervals and task, event handler, transport and slot.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::event::{Handler, EVENT_MASK_DEFAULT};
use super::keepalive::KeepAlive;
use super::websocket::WsShared;
use crate::error::{Error, Result};
use crate::protocol::adaptive::tracker::Tracker;
use crate::types::{ChannelStats, ReconnectPolicy, ResourceType, Status};

/// Shortest server keep-alive interval, in ms.
pub const MIN_INTERVAL_MS: u32 = 100;
/// Longest server keep-alive interval, in ms (24 h).
pub const MAX_INTERVAL_MS: u32 = 86_400_000;
/// Longest channel id, in characters.
pub const MAX_ID_LEN: usize = 64;
/// Default maximum number of channels holding a slot in one runtime.
pub const DEFAULT_MAX_CHANNELS: u32 = 65_536;

/// A runtime's channel slots: how many channels may be push-enabled at once.
pub struct SlotPool {
    pub max: AtomicU32,
    pub active: AtomicU32,
}

impl Default for SlotPool {
    fn default() -> Self {
        SlotPool { max: AtomicU32::new(DEFAULT_MAX_CHANNELS), active: AtomicU32::new(0) }
    }
}

impl SlotPool {
    /// Takes a slot unless the limit is reached.
    pub fn try_take(&self) -> bool {
        let max = self.max.load(Ordering::Acquire);
        self.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
    }
    pub fn give_back(&self) {
        let _ = self.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// Checks a server keep-alive interval.
pub fn check_interval(ms: u32) -> Result<()> {
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
        return Err(Error::invalid_argument(format!(
            "server keep-alive interval {ms} ms is outside {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS} ms"
        )));
    }
    Ok(())
}

/// Checks an adaptive keep-alive range (`0, 0` = off is checked by the caller).
pub fn check_adaptive_range(min_ms: u32, max_ms: u32) -> Result<()> {
    if min_ms < MIN_INTERVAL_MS || min_ms > max_ms || max_ms > MAX_INTERVAL_MS {
        return Err(Error::invalid_argument(format!(
            "adaptive keep-alive range {min_ms}..{max_ms} ms: need {MIN_INTERVAL_MS} <= min <= max <= {MAX_INTERVAL_MS} ms (or 0, 0 = off)"
        )));
    }
    Ok(())
}

/// A channel's adaptive keep-alive: the range the app asked for and, once the runtime thread
/// built it, the learner filed under (network, server host). It lives with the channel, so it
/// survives reconnects of its transport.
#[derive(Default)]
pub(crate) struct Adaptive {
    /// `(min_ms, max_ms)` while on.
    pub range: Option<(u32, u32)>,
    /// Built by the runtime thread when the transport's server host is known.
    /// Boxed: most channels are not adaptive.
    pub tracker: Option<Box<Tracker>>,
    /// The bounds the learner was last given: `(min, min(max, server interval))`.
    pub bounds: (u32, u32),
    /// `decrease_network_keepalive_interval` calls not yet fed to the learner.
    pub pending_decreases: u32,
}

/// What a channel is, shared by its handle and the runtime thread.
pub struct ChannelShared {
    id: CString,
    server_interval_ms: AtomicU32,
    network_interval_ms: AtomicU32,
    resource_type: ResourceType,
    keepalive: Mutex<Option<Arc<KeepAlive>>>,
    default_keepalive: Arc<KeepAlive>,
    pub(crate) handler: Mutex<Option<Handler>>,
    pub(crate) transport: Mutex<Option<Arc<WsShared>>>,
    /// The slot status while push-enabled. Its lock also orders `close()` against
    /// `wait_for_push_enabled()`.
    pub(crate) slot: Mutex<Option<Status>>,
    closed: AtomicBool,
    pool: Arc<SlotPool>,
    /// Which event kinds are created at all (bit `1 << kind`).
    pub(crate) event_mask: AtomicU32,
    reconnect: Mutex<Option<ReconnectPolicy>>,
    pub(crate) stats: StatCounters,
    /// Adaptive keep-alive; the learner is only driven by the runtime thread.
    pub(crate) adaptive: Mutex<Adaptive>,
}

impl ChannelShared {
    pub(crate) fn new(
        id: &str,
        server_interval_ms: u32,
        resource_type: ResourceType,
        pool: Arc<SlotPool>,
    ) -> Result<Arc<ChannelShared>> {
        if id.is_empty() {
            return Err(Error::invalid_argument("channel id must not be empty"));
        }
        if id.chars().count() > MAX_ID_LEN {
            return Err(Error::invalid_argument(format!("channel id is longer than {MAX_ID_LEN} characters")));
        }
        check_interval(server_interval_ms)?;
        let id = CString::new(id).map_err(|_| Error::invalid_argument("channel id must not contain NUL"))?;
        Ok(Arc::new(ChannelShared {
            id,
            server_interval_ms: AtomicU32::new(server_interval_ms),
            network_interval_ms: AtomicU32::new(server_interval_ms),
            resource_type,
            keepalive: Mutex::new(None),
            default_keepalive: KeepAlive::new(),
            handler: Mutex::new(None),
            transport: Mutex::new(None),
            slot: Mutex::new(None),
            closed: AtomicBool::new(false),
            pool,
            event_mask: AtomicU32::new(EVENT_MASK_DEFAULT),
            reconnect: Mutex::new(None),
            stats: StatCounters::default(),
            adaptive: Mutex::new(Adaptive::default()),
        }))
    }

    pub fn id(&self) -> &str {
        self.id.to_str().unwrap_or("")
    }
    pub fn id_cstr(&self) -> &CStr {
        &self.id
    }
    pub fn server_keepalive_interval_ms(&self) -> u32 {
        self.server_interval_ms.load(Ordering::Acquire)
    }
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }
    /// min(server interval, network interval): the interval keep-alives follow.
    pub fn current_keepalive_interval_ms(&self) -> u32 {
        self.network_interval_ms.load(Ordering::Acquire).min(self.server_interval_ms.load(Ordering::Acquire))
    }
    pub(crate) fn effective_interval(&self) -> Duration {
        Duration::from_millis(self.current_keepalive_interval_ms() as u64)
    }
    /// Sets the server interval; the network interval restarts from it (with adaptive
    /// keep-alive on, the learned value stays and the runtime thread clamps it).
    pub(crate) fn store_server_interval(&self, ms: u32) {
        self.server_interval_ms.store(ms, Ordering::Release);
        if self.adaptive.lock().range.is_none() {
            self.network_interval_ms.store(ms, Ordering::Release);
        }
    }
    /// Sets the network interval (adaptive keep-alive; disabling restores the server interval).
    pub(crate) fn store_network_interval(&self, ms: u32) {
        self.network_interval_ms.store(ms.max(MIN_INTERVAL_MS), Ordering::Release);
    }
    /// The adaptive keep-alive range, `None` when off.
    pub fn adaptive_range(&self) -> Option<(u32, u32)> {
        self.adaptive.lock().range
    }
    /// Halves the network interval, not below the minimum.
    pub(crate) fn halve_network_interval(&self) {
        let _ = self
            .network_interval_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some((v / 2).max(MIN_INTERVAL_MS)));
    }
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
    /// Marks the channel closed; true the first time.
    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }
    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::invalid_state("the channel is closed"));
        }
        Ok(())
    }

    /// The keep-alive task in force: the one set, or a default PING task.
    pub fn keepalive_task(&self) -> Arc<KeepAlive> {
        self.keepalive.lock().clone().unwrap_or_else(|| self.default_keepalive.clone())
    }
    pub(crate) fn store_keepalive(&self, task: Option<Arc<KeepAlive>>) {
        *self.keepalive.lock() = task;
    }

    /// Replaces the handler; the old one (and its finalizer) is dropped outside the lock.
    pub(crate) fn replace_handler(&self, h: Option<Handler>) {
        let old = std::mem::replace(&mut *self.handler.lock(), h);
        drop(old);
    }

    pub fn transport(&self) -> Option<Arc<WsShared>> {
        self.transport.lock().clone()
    }

    pub(crate) fn pool(&self) -> &SlotPool {
        &self.pool
    }

    /// Gives the slot back (transport ended, channel closed). Idempotent.
    pub(crate) fn release_slot(&self) {
        if self.slot.lock().take().is_some() {
            self.pool.give_back();
        }
    }

    pub fn slot_status(&self) -> Option<Status> {
        *self.slot.lock()
    }

    pub fn event_mask(&self) -> u32 {
        self.event_mask.load(Ordering::Acquire)
    }
    pub(crate) fn set_event_mask(&self, mask: u32) {
        self.event_mask.store(mask, Ordering::Release);
    }

    pub fn reconnect_policy(&self) -> Option<ReconnectPolicy> {
        *self.reconnect.lock()
    }
    pub(crate) fn store_reconnect_policy(&self, p: Option<ReconnectPolicy>) {
        *self.reconnect.lock() = p;
    }

    pub fn stats(&self) -> ChannelStats {
        let s = &self.stats;
        ChannelStats {
            keepalives_sent: s.keepalives_sent.load(Ordering::Relaxed),
            keepalives_acked: s.keepalives_acked.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            last_rtt_us: s.last_rtt_us.load(Ordering::Relaxed),
            srtt_us: s.srtt_us.load(Ordering::Relaxed),
            rttvar_us: s.rttvar_us.load(Ordering::Relaxed),
            current_interval_ms: self.current_keepalive_interval_ms(),
        }
    }
}

/// Per-channel counters, written by the runtime thread.
#[derive(Default)]
pub(crate) struct StatCounters {
    pub keepalives_sent: AtomicU64,
    pub keepalives_acked: AtomicU64,
    pub reconnects: AtomicU64,
    /// Messages that were queued but never written when a reconnect policy gave up.
    pub unsent_dropped: AtomicU64,
    pub last_rtt_us: AtomicU32,
    pub srtt_us: AtomicU32,
    pub rttvar_us: AtomicU32,
}

impl StatCounters {
    /// Records a keep-alive round trip; smoothed like TCP (RFC 6298: alpha 1/8, beta 1/4).
    pub(crate) fn record_rtt(&self, rtt_us: u64) {
        let r = rtt_us.min(u32::MAX as u64) as u32;
        self.keepalives_acked.fetch_add(1, Ordering::Relaxed);
        self.last_rtt_us.store(r, Ordering::Relaxed);
        let srtt = self.srtt_us.load(Ordering::Relaxed);
        let (s, v) = smooth_rtt(srtt, self.rttvar_us.load(Ordering::Relaxed), r);
        self.srtt_us.store(s, Ordering::Relaxed);
        self.rttvar_us.store(v, Ordering::Relaxed);
    }
}

/// One RFC 6298 step: (srtt, rttvar) after a measurement `r` (srtt 0 = no measurement yet).
pub fn smooth_rtt(srtt: u32, rttvar: u32, r: u32) -> (u32, u32) {
    if srtt == 0 {
        return (r.max(1), r / 2);
    }
    let (s, v, r) = (srtt as i64, rttvar as i64, r as i64);
    let v = v - v / 4 + (s - r).abs() / 4;
    let s = s - s / 8 + r / 8;
    (s.clamp(1, u32::MAX as i64) as u32, v.clamp(0, u32::MAX as i64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_smoothing_follows_rfc6298() {
        assert_eq!(smooth_rtt(0, 0, 1000), (1000, 500));
        // rttvar = 3/4*500 + 1/4*|1000-2000| = 625; srtt = 7/8*1000 + 1/8*2000 = 1125
        assert_eq!(smooth_rtt(1000, 500, 2000), (1125, 625));
        let (mut s, mut v) = (0, 0);
        for _ in 0..200 {
            (s, v) = smooth_rtt(s, v, 300);
        }
        assert!((299..=301).contains(&s) && v < 5, "{s} {v}");
    }
}

impl Drop for ChannelShared {
    fn drop(&mut self) {
        if self.slot.get_mut().take().is_some() {
            self.pool.give_back();
        }
    }
}
