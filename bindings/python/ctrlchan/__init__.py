"""ctrlchan: Windows ``ControlChannelTrigger`` + ``WebSocketKeepAlive`` for Python.

Keep many WebSockets alive from one background thread: the runtime sends keep-alives
on schedule (coalesced across channels), detects dead peers through pong timeouts,
and delivers incoming messages ("push notifications"), closes and disconnects as
:class:`Event` objects, via a queue (``next_event``/``events``/``aevents``) or a
per-channel ``on_event`` callback.

    from ctrlchan import Runtime, MessageWebSocket, ControlChannelTrigger, WebSocketKeepAlive

    with Runtime() as rt:
        ws = MessageWebSocket(rt)
        ch = ControlChannelTrigger(rt, "channelOne", server_keepalive_interval=30.0)
        ch.keepalive = WebSocketKeepAlive(pong_timeout=5.0)
        ch.using_transport(ws)
        ws.connect("ws://127.0.0.1:8080/feed", timeout=5.0)
        print(ch.wait_for_push_enabled())
        for ev in rt.events(timeout=60.0):
            print(ev)

Durations are float seconds. Errors are :class:`CtrlChanError` subclasses carrying the
C result code and the library's error text. The native library is loaded with
ctypes; see :func:`library_path`.
"""

from __future__ import annotations

from . import _ffi
from ._channel import ControlChannelTrigger
from ._enums import (
    ControlChannelTriggerResetReason,
    ControlChannelTriggerResourceType,
    ControlChannelTriggerStatus,
    EventKind,
    EventMask,
    KeepAliveMode,
    ResultCode,
    SocketMessageType,
    WebSocketKind,
    WebSocketState,
)
from ._errors import (
    BufferFullError,
    ClosedError,
    ConnectFailedError,
    CtrlChanError,
    HandshakeFailedError,
    InvalidArgumentError,
    InvalidHandleError,
    InvalidStateError,
    IoError,
    MessageTooLargeError,
    PanicError,
    PolicyError,
    ProxyFailedError,
    QueueFullError,
    TimeoutError_,
    TlsFailedError,
)
from ._durable import ChannelStatistics, ReconnectPolicy
from ._event import Event
from ._ffi import LibraryNotFoundError
from ._keepalive import WebSocketKeepAlive
from ._logging import set_native_log_level
from ._runtime import Runtime, RuntimeStatistics
from ._websocket import (
    MessageWebSocket,
    MessageWebSocketControl,
    StreamWebSocket,
    StreamWebSocketControl,
    WebSocketInformation,
    WebSocketStatistics,
)

__version__ = "0.1.0"

__all__ = [
    "set_native_log_level",
    "Runtime",
    "RuntimeStatistics",
    "MessageWebSocket",
    "StreamWebSocket",
    "MessageWebSocketControl",
    "StreamWebSocketControl",
    "WebSocketInformation",
    "WebSocketStatistics",
    "ControlChannelTrigger",
    "ChannelStatistics",
    "ReconnectPolicy",
    "WebSocketKeepAlive",
    "Event",
    "EventKind",
    "EventMask",
    "ControlChannelTriggerResetReason",
    "ControlChannelTriggerStatus",
    "ControlChannelTriggerResourceType",
    "SocketMessageType",
    "KeepAliveMode",
    "WebSocketKind",
    "WebSocketState",
    "ResultCode",
    "CtrlChanError",
    "InvalidArgumentError",
    "InvalidHandleError",
    "InvalidStateError",
    "TimeoutError_",
    "ConnectFailedError",
    "TlsFailedError",
    "HandshakeFailedError",
    "ClosedError",
    "MessageTooLargeError",
    "BufferFullError",
    "IoError",
    "PolicyError",
    "PanicError",
    "ProxyFailedError",
    "QueueFullError",
    "LibraryNotFoundError",
    "library_path",
    "library_version",
    "result_name",
]


def library_path() -> str:
    """Path of the loaded native library."""
    return _ffi.library_path()


def library_version() -> str:
    """``ctrlchan_version()`` of the loaded native library."""
    return _ffi.decode(_ffi.lib.ctrlchan_version())


def result_name(code: int) -> str:
    """``ctrlchan_result_name()``: "OK", "INVALID_ARGUMENT", ... ("UNKNOWN" for other values)."""
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 0xFFFF_FFFF:
        raise InvalidArgumentError(f"result code must be an int in 0..{0xFFFF_FFFF}, got {code!r}")
    return _ffi.decode(_ffi.lib.ctrlchan_result_name(code))
