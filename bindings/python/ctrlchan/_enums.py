"""The C enums as ``IntEnum`` classes with the Windows.Networking.Sockets names.

Members print their names on every Python version (3.11 made ``str()`` of an ``IntEnum`` the
bare number): ``str(ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED)`` and an f-string
without a format spec give ``"ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED"``; ``repr()``
is ``<ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED: 1>``; a format spec (``f"{s:d}"``),
``int()``, ``==`` and ``%d`` still see the C value.
"""

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
    "EventMask",
    "ControlChannelTriggerResetReason",
]


class _NamedIntEnum(enum.IntEnum):
    """``IntEnum`` whose ``str()``/``format()`` show ``Class.MEMBER`` rather than the number."""

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else int.__format__(int(self), spec)


class ResultCode(_NamedIntEnum):
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
    PROXY_FAILED = 14
    QUEUE_FULL = 15


class WebSocketKind(_NamedIntEnum):
    """``ctrlchan_websocket_kind``."""

    MESSAGE = 0
    STREAM = 1


class WebSocketState(_NamedIntEnum):
    """``ctrlchan_websocket_state``: lifecycle of a websocket."""

    NEW = 0
    CONNECTING = 1
    OPEN = 2
    CLOSING = 3
    CLOSED = 4


class SocketMessageType(_NamedIntEnum):
    """Windows ``SocketMessageType`` (``ctrlchan_message_type``)."""

    BINARY = 0
    UTF8 = 1


class ControlChannelTriggerResourceType(_NamedIntEnum):
    """Windows ``ControlChannelTriggerResourceType`` (``ctrlchan_resource_type``)."""

    REQUEST_SOFTWARE_SLOT = 0
    REQUEST_HARDWARE_SLOT = 1


class ControlChannelTriggerStatus(_NamedIntEnum):
    """Windows ``ControlChannelTriggerStatus`` (``ctrlchan_status``)."""

    HARDWARE_SLOT_REQUESTED = 0
    SOFTWARE_SLOT_ALLOCATED = 1
    HARDWARE_SLOT_ALLOCATED = 2
    POLICY_ERROR = 3
    SYSTEM_ERROR = 4
    TRANSPORT_DISCONNECTED = 5
    SERVICE_UNAVAILABLE = 6


class KeepAliveMode(_NamedIntEnum):
    """How a ``WebSocketKeepAlive`` task keeps a connection alive (``ctrlchan_keepalive_mode``)."""

    PING = 0
    """Ping with a unique payload; no matching pong within the pong timeout = dead peer."""
    UNSOLICITED_PONG = 1
    """RFC 6455 section 5.5.3 one-way heartbeat; no liveness check."""


class EventKind(_NamedIntEnum):
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
    RECONNECTING = 7
    """The transport was lost (or a reconnect attempt failed) and the reconnect policy will try
    again after ``delay`` seconds; ``attempt`` counts from 1, ``result``/``reason`` give the cause."""
    INTERVAL_CHANGED = 8
    """Adaptive keep-alive moved the network interval (``interval``, seconds)."""


class EventMask(enum.IntFlag):
    """Which event kinds a channel or websocket produces (``ch.event_mask`` / ``ws.event_mask``).

    One bit per :class:`EventKind` (``1 << kind``). ``DEFAULT`` is everything but
    ``KEEPALIVE``: an acknowledged keep-alive wakes nobody unless asked for (its RTT is in
    ``ControlChannelTrigger.statistics``). A masked-out event is never created. ``ALL`` is
    the library's ``CTRLCHAN_EVENT_MASK_ALL`` (every bit, including kinds added later).
    """

    PUSH_NOTIFICATION = 1 << EventKind.PUSH_NOTIFICATION
    KEEPALIVE = 1 << EventKind.KEEPALIVE
    CLOSED = 1 << EventKind.CLOSED
    TRANSPORT_DISCONNECTED = 1 << EventKind.TRANSPORT_DISCONNECTED
    CONNECTED = 1 << EventKind.CONNECTED
    CONNECT_FAILED = 1 << EventKind.CONNECT_FAILED
    RESET = 1 << EventKind.RESET
    RECONNECTING = 1 << EventKind.RECONNECTING
    INTERVAL_CHANGED = 1 << EventKind.INTERVAL_CHANGED
    ALL = 0xFFFF_FFFF
    DEFAULT = 0xFFFF_FFFF & ~(1 << EventKind.KEEPALIVE)

    @classmethod
    def of(cls, *kinds: EventKind) -> "EventMask":
        """The mask with the bits of ``kinds`` set."""
        out = cls(0)
        for k in kinds:
            out |= cls(1 << int(EventKind(k)))
        return out


class ControlChannelTriggerResetReason(_NamedIntEnum):
    """Windows ``ControlChannelTriggerResetReason`` (``ctrlchan_reset_reason``) plus ours from 16.

    Why a channel has a fresh transport (the ``reset_reason`` of a RESET event).
    """

    FAST_USER_SWITCHED = 0
    """Windows only; never raised on Linux."""
    LOW_POWER_EXIT = 1
    """The loss was found by the probe after the machine resumed from suspend."""
    QUIET_HOURS_EXIT = 2
    """Windows only; never raised on Linux."""
    APPLICATION_RESTART = 3
    """Windows only; never raised on Linux."""
    NEW_TRANSPORT = 16
    """The application bound a new websocket with ``using_transport``."""
    RECONNECTED = 17
    """The reconnect policy reconnected after a loss."""
    NETWORK_CHANGED = 18
    """The loss was found by the probe after an address, link or route change."""
