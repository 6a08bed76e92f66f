//! Events delivered to the application: push notifications, keep-alive completions, close and loss.

use std::ffi::CString;
use std::sync::Arc;

use bytes::Bytes;

use super::channel::ChannelShared;
use super::websocket::WsShared;
use crate::types::{EventKind, MessageType, ResetReason};

/// One event. Cheap to create: the channel id is borrowed from the channel, the payload is shared.
#[derive(Clone)]
pub struct Event {
    pub kind: EventKind,
    /// The channel whose transport produced the event, if the websocket is bound to one.
    pub channel: Option<Arc<ChannelShared>>,
    /// The websocket that produced the event.
    pub websocket: Option<Arc<WsShared>>,
    pub message_type: MessageType,
    pub data: Bytes,
    pub close_code: u16,
    reason: Option<CString>,
    pub rtt_us: u64,
    /// Why a CONNECT_FAILED / TRANSPORT_DISCONNECTED / CLOSED / RECONNECTING event happened.
    pub result: crate::error::ResultCode,
    /// RESET: why the channel has a fresh transport.
    pub reset_reason: ResetReason,
    /// RECONNECTING: attempt number (from 1) and the wait before it.
    pub attempt: u32,
    pub delay_ms: u32,
    /// INTERVAL_CHANGED: the new network keep-alive interval.
    pub interval_ms: u32,
}

impl Event {
    pub(crate) fn new(kind: EventKind, websocket: Option<Arc<WsShared>>, channel: Option<Arc<ChannelShared>>) -> Self {
        Event {
            kind,
            channel,
            websocket,
            message_type: MessageType::Binary,
            data: Bytes::new(),
            close_code: 0,
            reason: None,
            rtt_us: 0,
            result: crate::error::ResultCode::Ok,
            reset_reason: ResetReason::NewTransport,
            attempt: 0,
            delay_ms: 0,
            interval_ms: 0,
        }
    }

    pub(crate) fn with_reason(mut self, reason: &str) -> Self {
        self.set_reason(reason);
        self
    }

    pub(crate) fn set_reason(&mut self, reason: &str) {
        self.reason = Some(to_cstring_lossy(reason));
    }

    /// Close reason or failure detail ("" if none), NUL-terminated.
    pub fn reason_cstr(&self) -> &std::ffi::CStr {
        match &self.reason {
            Some(r) => r.as_c_str(),
            None => c"",
        }
    }

    /// Close reason or failure detail ("" if none).
    pub fn reason(&self) -> &str {
        self.reason_cstr().to_str().unwrap_or("")
    }

    /// Whether the event was produced by `ws`.
    pub fn is_from(&self, ws: &WsShared) -> bool {
        self.websocket.as_ref().is_some_and(|w| std::ptr::eq(Arc::as_ptr(w), ws))
    }

    /// Channel id of the channel the event belongs to ("" if none), NUL-terminated.
    pub fn channel_id_cstr(&self) -> &std::ffi::CStr {
        match &self.channel {
            Some(ch) => ch.id_cstr(),
            None => c"",
        }
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("kind", &self.kind)
            .field("channel_id", &self.channel_id_cstr())
            .field("message_type", &self.message_type)
            .field("len", &self.data.len())
            .field("close_code", &self.close_code)
            .field("reason", &self.reason())
            .field("rtt_us", &self.rtt_us)
            .finish()
    }
}

/// Turns text into a C string, replacing interior NULs so that nothing is lost silently.
pub(crate) fn to_cstring_lossy(s: &str) -> CString {
    match CString::new(s) {
        Ok(c) => c,
        Err(_) => CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default(),
    }
}

/// Bit of an event kind in an event mask.
pub const fn mask_bit(kind: EventKind) -> u32 {
    1u32 << (kind as u32)
}

/// Every event kind.
pub(crate) const EVENT_MASK_ALL: u32 = 0xFFFF_FFFF;
/// Every kind but KEEPALIVE acknowledgements: the app is woken only for what matters.
pub(crate) const EVENT_MASK_DEFAULT: u32 = EVENT_MASK_ALL & !mask_bit(EventKind::Keepalive);

/// A per-channel or per-websocket event callback. Dropping the last reference releases the userdata.
pub type Handler = Arc<dyn Fn(&Event) + Send + Sync>;
