//! Plain enums and statistics structs shared by the safe API and the C ABI. Each enum gets
//! `TryFrom<u32>`, `VARIANTS` and `name()` from `c_enum!`.

use macro_rules_attribute::macro_rules_derive;

use crate::c_enum::c_enum;

/// The two Windows websocket flavours.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum WebSocketKind {
    /// `MessageWebSocket`: whole messages, UTF-8 or binary.
    Message = 0,
    /// `StreamWebSocket`: a byte stream carried in binary messages.
    Stream = 1,
}

/// Frame type of a message (Windows `SocketMessageType` order).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum MessageType {
    Binary = 0,
    Utf8 = 1,
}

/// Windows `ControlChannelTriggerResourceType`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum ResourceType {
    /// Keep-alives by the runtime.
    RequestSoftwareSlot = 0,
    /// Keep-alives by the runtime plus kernel TCP keep-alive and TCP_USER_TIMEOUT.
    RequestHardwareSlot = 1,
}

/// Windows `ControlChannelTriggerStatus`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum Status {
    HardwareSlotRequested = 0,
    SoftwareSlotAllocated = 1,
    HardwareSlotAllocated = 2,
    PolicyError = 3,
    SystemError = 4,
    TransportDisconnected = 5,
    ServiceUnavailable = 6,
}

/// How a keep-alive task keeps the connection alive.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum KeepAliveMode {
    /// Ping with a unique payload; the matching pong must arrive within the pong timeout.
    Ping = 0,
    /// RFC 6455 section 5.5.3 one-way heartbeat; no liveness check.
    UnsolicitedPong = 1,
}

/// What an event reports.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum EventKind {
    /// A message arrived (Windows push notification).
    PushNotification = 0,
    /// A keep-alive completed (PING: pong received, with RTT; UNSOLICITED_PONG: pong sent).
    Keepalive = 1,
    /// The peer sent (or answered) a close frame; close code and reason are set.
    Closed = 2,
    /// The transport was lost without a close handshake (EOF, reset, I/O error, pong timeout).
    TransportDisconnected = 3,
    /// `connect_async` succeeded.
    Connected = 4,
    /// `connect_async` failed; the reason says why.
    ConnectFailed = 5,
    /// The channel has a fresh transport: the app gave it a new websocket, or the reconnect
    /// policy reconnected it (see `ResetReason`).
    Reset = 6,
    /// The transport was lost (or a reconnect attempt failed) and the reconnect policy will try
    /// again after `delay_ms`; `attempt` counts from 1, `result`/`reason` give the cause.
    Reconnecting = 7,
    /// Adaptive keep-alive moved the network interval (`interval_ms`).
    IntervalChanged = 8,
}

/// Why a channel has a fresh transport (RESET events). Windows
/// `ControlChannelTriggerResetReason` values, plus ours from 16 on.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum ResetReason {
    /// Windows only; never raised on Linux.
    FastUserSwitched = 0,
    /// The loss was found by the probe after the machine resumed from suspend.
    LowPowerExit = 1,
    /// Windows only; never raised on Linux.
    QuietHoursExit = 2,
    /// Windows only; never raised on Linux.
    ApplicationRestart = 3,
    /// The application bound a new websocket with `using_transport`.
    NewTransport = 16,
    /// The reconnect policy reconnected after a loss.
    Reconnected = 17,
    /// The loss was found by the probe after an address, link or route change.
    NetworkChanged = 18,
}

/// How a channel reconnects a lost transport (off unless set).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The first retry waits a random time in [0, initial_delay_ms] (RFC 6455 section 7.2.3).
    pub initial_delay_ms: u32,
    /// Cap on any delay.
    pub max_delay_ms: u32,
    /// Each further retry waits the previous delay times this percentage (160 = x1.6), >= 100.
    pub multiplier_percent: u32,
    /// Each delay after the first is randomised by +/- this share, 0..=100.
    pub jitter_percent: u32,
    /// Attempts before giving up; 0 = unlimited.
    pub max_attempts: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay_ms: 1_000,
            max_delay_ms: 60_000,
            multiplier_percent: 160,
            jitter_percent: 20,
            max_attempts: 0,
        }
    }
}

/// Per-channel counters and keep-alive figures.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub keepalives_sent: u64,
    pub keepalives_acked: u64,
    /// Successful reconnects by the policy.
    pub reconnects: u64,
    /// Round-trip time of the last acknowledged keep-alive, in us (0 before the first pong).
    pub last_rtt_us: u32,
    /// Smoothed RTT and its variation as TCP computes them (RFC 6298), in us.
    pub srtt_us: u32,
    pub rttvar_us: u32,
    /// The interval keep-alives follow now, in ms.
    pub current_interval_ms: u32,
}

/// Lifecycle of a websocket.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[macro_rules_derive(c_enum!)]
pub enum WebSocketState {
    New = 0,
    Connecting = 1,
    Open = 2,
    Closing = 3,
    Closed = 4,
}

/// Per-websocket counters (payload bytes, not counting framing).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebSocketStats {
    pub messages_sent: u64,
    pub messages_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// Runtime-wide counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Reactor wake-ups since the runtime started.
    pub wakeups: u64,
    /// Keep-alive frames sent (ping or unsolicited pong).
    pub keepalives_sent: u64,
    /// Pongs that matched an outstanding keep-alive ping.
    pub keepalives_acked: u64,
    /// Messages received (push notifications produced).
    pub messages_received: u64,
    /// Websockets currently open.
    pub connections_open: u64,
    /// Channels currently holding a slot (push enabled).
    pub channels_active: u64,
}
