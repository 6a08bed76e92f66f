"""The C enums as ``IntEnum`` classes with the Windows.Networking.Sockets names."""

from __future__ import annotations

import enum

__all__ = [
    "ResultCode",
    "WebSocketKind",
    "WebSocketState",
    "SocketMessageType",
    "ControlChannelTriggerResourceType",
    "ControlChannelTriggerStatus",
    "KeepAliveMode",
    "EventKind",
]


class ResultCode(enum.IntEnum):
    """``ctrlchan_result``: outcome of every fallible C call."""

    OK = 0
    INVALID_ARGUMENT = 1
    INVALID_HANDLE = 2
    INVALID_STATE = 3
    TIMEOUT = 4
    CONNECT_FAILED = 5
    TLS_FAILED = 6
    HANDSHAKE_FAILED = 7
    CLOSED = 8
    MESSAGE_TOO_LARGE = 9
    BUFFER_FULL = 10
    IO = 11
    POLICY = 12
    PANIC = 13


class WebSocketKind(enum.IntEnum):
    """``ctrlchan_websocket_kind``."""

    MESSAGE = 0
    STREAM = 1


class WebSocketState(enum.IntEnum):
    """``ctrlchan_websocket_state``: lifecycle of a websocket."""

    NEW = 0
    CONNECTING = 1
    OPEN = 2
    CLOSING = 3
    CLOSED = 4


class SocketMessageType(enum.IntEnum):
    """Windows ``SocketMessageType`` (``ctrlchan_message_type``)."""

    BINARY = 0
    UTF8 = 1


class ControlChannelTriggerResourceType(enum.IntEnum):
    """Windows ``ControlChannelTriggerResourceType`` (``ctrlchan_resource_type``)."""

    REQUEST_SOFTWARE_SLOT = 0
    REQUEST_HARDWARE_SLOT = 1


class ControlChannelTriggerStatus(enum.IntEnum):
    """Windows ``ControlChannelTriggerStatus`` (``ctrlchan_status``)."""

    HARDWARE_SLOT_REQUESTED = 0
    SOFTWARE_SLOT_ALLOCATED = 1
    HARDWARE_SLOT_ALLOCATED = 2
    POLICY_ERROR = 3
    SYSTEM_ERROR = 4
    TRANSPORT_DISCONNECTED = 5
    SERVICE_UNAVAILABLE = 6


class KeepAliveMode(enum.IntEnum):
    """How a ``WebSocketKeepAlive`` task keeps a connection alive (``ctrlchan_keepalive_mode``)."""

    PING = 0
    """Ping with a unique payload; no matching pong within the pong timeout = dead peer."""
    UNSOLICITED_PONG = 1
    """RFC 6455 section 5.5.3 one-way heartbeat; no liveness check."""


class EventKind(enum.IntEnum):
    """What an :class:`Event` reports (``ctrlchan_event_kind``)."""

    PUSH_NOTIFICATION = 0
    """A message arrived."""
    KEEPALIVE = 1
    """A keep-alive completed (PING mode: the pong arrived, ``rtt`` is set)."""
    CLOSED = 2
    """A close frame was received; ``close_code`` and ``reason`` are set."""
    TRANSPORT_DISCONNECTED = 3
    """The connection was lost without a close handshake (EOF, reset, I/O error, pong timeout)."""
    CONNECTED = 4
    """``connect_async`` succeeded."""
    CONNECT_FAILED = 5
    """``connect_async`` failed; ``reason`` says why."""
    RESET = 6
    """The channel was given a new transport after the previous one ended."""
