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
    /// The channel was given a new transport after the previous one ended.
    Reset = 6,
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
