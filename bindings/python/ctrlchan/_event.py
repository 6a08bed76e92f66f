"""``Event``: an immutable copy of a ``ctrlchan_event``, with the channel as a Python object."""

from __future__ import annotations

import ctypes
from ctypes import byref, c_size_t, c_void_p
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

from . import _ffi
from ._enums import ControlChannelTriggerResetReason, EventKind, ResultCode, SocketMessageType
from ._errors import check
from ._managed import lookup

if TYPE_CHECKING:  # pragma: no cover
    from ._channel import ControlChannelTrigger
    from ._websocket import MessageWebSocket, StreamWebSocket

__all__ = ["Event"]


@dataclass(frozen=True, repr=False)
class Event:
    """One thing that happened on a channel or websocket (Windows: trigger / background-task details).

    ``channel`` is the :class:`ControlChannelTrigger` object whose transport produced the
    event (``None`` when the websocket is not bound to a channel, or the channel object
    is gone); ``websocket`` likewise. ``data`` is the payload of a PUSH_NOTIFICATION;
    ``text`` its decoded form for UTF-8 messages. ``rtt`` is the keep-alive round trip in
    seconds (KEEPALIVE in PING mode; 0.0 otherwise). ``close_code``/``reason`` describe a
    CLOSED event; ``reason`` also explains TRANSPORT_DISCONNECTED and CONNECT_FAILED, and
    ``result`` gives the same cause as a :class:`ResultCode` (``OK`` for ordinary events).

    RECONNECTING (the reconnect policy will try again): ``attempt`` (from 1), ``delay`` (the
    wait before this attempt, seconds), ``result``/``reason`` (the cause). RESET: ``reset_reason``
    (:class:`ControlChannelTriggerResetReason`; ``NEW_TRANSPORT`` for other kinds).
    INTERVAL_CHANGED: ``interval``, the new network keep-alive interval in seconds. These are
    0 / 0.0 for other kinds.
    """

    kind: EventKind
    channel: Optional["ControlChannelTrigger"]
    channel_id: str
    data: bytes
    message_type: SocketMessageType
    close_code: int
    reason: str
    rtt: float
    websocket: Optional[Union["MessageWebSocket", "StreamWebSocket"]] = None
    result: ResultCode = ResultCode.OK
    attempt: int = 0
    delay: float = 0.0
    interval: float = 0.0
    reset_reason: ControlChannelTriggerResetReason = ControlChannelTriggerResetReason.NEW_TRANSPORT

    @property
    def text(self) -> Optional[str]:
        """The payload decoded as UTF-8 for a UTF-8 message, else ``None``."""
        if self.message_type is not SocketMessageType.UTF8 or self.kind is not EventKind.PUSH_NOTIFICATION:
            return None
        return self.data.decode("utf-8", "replace")

    def __repr__(self) -> str:
        parts = [f"kind={self.kind.name}", f"channel_id={self.channel_id!r}"]
        if self.kind is EventKind.PUSH_NOTIFICATION:
            preview = self.data[:32]
            more = "..." if len(self.data) > 32 else ""
            parts.append(f"message_type={self.message_type.name}")
            parts.append(f"data={preview!r}{more} ({len(self.data)} bytes)")
        if self.kind is EventKind.KEEPALIVE:
            parts.append(f"rtt={self.rtt * 1000.0:.3f}ms")
        if self.kind is EventKind.RECONNECTING:
            parts.append(f"attempt={self.attempt}")
            parts.append(f"delay={self.delay:.3f}s")
        if self.kind is EventKind.RESET:
            parts.append(f"reset_reason={self.reset_reason.name}")
        if self.kind is EventKind.INTERVAL_CHANGED:
            parts.append(f"interval={self.interval:.3f}s")
        if self.result is not ResultCode.OK:
            parts.append(f"result={self.result.name}")
        if self.close_code:
            parts.append(f"close_code={self.close_code}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        return f"Event({', '.join(parts)})"


def event_from_native(ev: int) -> Event:
    """Copy everything out of a native event (owned or borrowed; not freed here)."""
    lib = _ffi.lib
    kind = EventKind(int(lib.ctrlchan_event_get_kind(ev)))
    channel_id = _ffi.decode(lib.ctrlchan_event_get_channel_id(ev))
    data_ptr = c_void_p()
    data_len = c_size_t()
    check(lib.ctrlchan_event_get_data(ev, byref(data_ptr), byref(data_len)), "ctrlchan_event_get_data")
    data = ctypes.string_at(data_ptr.value, data_len.value) if data_len.value and data_ptr.value else b""

    from ._channel import ControlChannelTrigger
    from ._websocket import MessageWebSocket, StreamWebSocket

    channel = lookup(lib.ctrlchan_event_get_channel(ev))
    if not isinstance(channel, ControlChannelTrigger) or channel._channel_id != channel_id:
        # Gone, or (after address reuse) not the channel this event belongs to.
        channel = None
    websocket = lookup(lib.ctrlchan_event_get_websocket(ev))
    if not isinstance(websocket, (MessageWebSocket, StreamWebSocket)):
        websocket = None
    return Event(
        kind=kind,
        channel=channel,
        channel_id=channel_id,
        data=data,
        message_type=SocketMessageType(int(lib.ctrlchan_event_get_message_type(ev))),
        close_code=int(lib.ctrlchan_event_get_close_code(ev)),
        reason=_ffi.decode(lib.ctrlchan_event_get_reason(ev)),
        rtt=int(lib.ctrlchan_event_get_rtt_us(ev)) / 1_000_000.0,
        websocket=websocket,
        result=ResultCode(int(lib.ctrlchan_event_get_result(ev))),
        attempt=int(lib.ctrlchan_event_get_attempt(ev)),
        delay=int(lib.ctrlchan_event_get_delay_ms(ev)) / 1000.0,
        interval=int(lib.ctrlchan_event_get_interval_ms(ev)) / 1000.0,
        reset_reason=_reset_reason(int(lib.ctrlchan_event_get_reset_reason(ev))),
    )


def _reset_reason(value: int) -> ControlChannelTriggerResetReason:
    try:
        return ControlChannelTriggerResetReason(value)
    except ValueError:  # a reason newer than this binding
        return ControlChannelTriggerResetReason.NEW_TRANSPORT

