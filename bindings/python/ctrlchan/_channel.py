"""``ControlChannelTrigger``: a registered control channel that the runtime keeps alive."""

from __future__ import annotations

from ctypes import byref, c_bool, c_char_p, c_uint32, c_void_p
from datetime import timedelta
from typing import Callable, NoReturn, Optional, Tuple, Union

from . import _ffi
from ._callbacks import forbid_in_callback, install_event_handler
from ._convert import U32_MAX, to_cstr, to_enum, to_ms
from ._durable import ChannelStatistics, ReconnectPolicy, to_mask
from ._enums import ControlChannelTriggerResourceType, ControlChannelTriggerStatus, EventMask
from ._errors import InvalidArgumentError, check
from ._event import Event
from ._managed import Handle
from ._keepalive import WebSocketKeepAlive
from ._runtime import ORDER_CHANNEL, Runtime
from ._websocket import MessageWebSocket, StreamWebSocket

__all__ = ["ControlChannelTrigger"]

EventHandler = Callable[[Event], object]
DEFAULT_SERVER_KEEPALIVE_INTERVAL = 900.0  # seconds: Windows apps commonly use 15 minutes
WebSocket = Union[MessageWebSocket, StreamWebSocket]


def _interval_ms(seconds: Union[float, timedelta, None], minutes: Optional[float]) -> int:
    """The constructor's keep-alive interval arguments -> milliseconds (default 15 minutes)."""
    if seconds is not None and minutes is not None:
        raise TypeError("give server_keepalive_interval (seconds) or server_keepalive_interval_in_minutes, not both")
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)):
            raise TypeError(f"server_keepalive_interval_in_minutes must be a number, not {type(minutes).__name__}")
        return to_ms(minutes * 60.0, "server_keepalive_interval_in_minutes")
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    return to_ms(DEFAULT_SERVER_KEEPALIVE_INTERVAL if seconds is None else seconds, "server_keepalive_interval")


def _free_channel(ptr: int) -> None:
    _ffi.lib.ctrlchan_channel_free(ptr)  # closes it first


class ControlChannelTrigger(Handle):
    """Windows ``ControlChannelTrigger``.

    The flow, as on Windows: create the websocket; create the channel; set
    ``keepalive`` (optional: a default PING task with a 5 s pong timeout is used);
    set ``on_event`` (optional: else events go to the runtime queue);
    ``using_transport(ws)`` **before** ``ws.connect``; then ``wait_for_push_enabled()``
    **after** connect. From then on the runtime sends keep-alives at
    ``current_keepalive_interval`` and delivers pushes, closes and disconnects as events.

    The handler does not keep the channel alive: keep a reference to the channel for as long
    as you want its events. A channel that becomes garbage is freed by the GC (its native
    handle, slot and handler registration with it), like every other object.
    """

    def __init__(
        self,
        runtime: Runtime,
        channel_id: str,
        *_positional: NoReturn,
        server_keepalive_interval: Union[float, timedelta, None] = None,
        server_keepalive_interval_in_minutes: Optional[float] = None,
        resource_type: ControlChannelTriggerResourceType = ControlChannelTriggerResourceType.REQUEST_SOFTWARE_SLOT,
    ) -> None:
        """The server keep-alive interval is keyword-only, because its unit differs between
        languages: ``server_keepalive_interval`` is seconds (a number or a ``timedelta``),
        ``server_keepalive_interval_in_minutes`` is Windows' unit (what the C# and Windows
        constructors take positionally). Give at most one; the default is 15 minutes. A third
        positional argument raises ``TypeError``, so ``ControlChannelTrigger(rt, "x", 15)``
        cannot silently mean 15 seconds to one reader and 15 minutes to another."""
        super().__init__()
        if _positional:
            raise TypeError(
                "ControlChannelTrigger(runtime, channel_id, ...): pass the keep-alive interval by keyword, "
                "server_keepalive_interval=<seconds or timedelta> or server_keepalive_interval_in_minutes=<minutes, "
                f"as on Windows>; resource_type= is keyword-only too (got positional {_positional!r})"
            )
        if not isinstance(runtime, Runtime):
            raise TypeError(f"runtime must be a Runtime, not {type(runtime).__name__}")
        cid = to_cstr(channel_id, "channel_id")
        # The id never changes: kept for repr() and error messages after close, and to match
        # events to this object.
        self._channel_id = channel_id
        ms = _interval_ms(server_keepalive_interval, server_keepalive_interval_in_minutes)
        rtype = to_enum(ControlChannelTriggerResourceType, resource_type, "resource_type")
        self._runtime = runtime
        self._transport: Optional[WebSocket] = None
        self._keepalive: Optional[WebSocketKeepAlive] = None
        self._on_event: Optional[EventHandler] = None
        out = c_void_p()
        check(
            _ffi.lib.ctrlchan_channel_new(runtime._handle(), cid, ms, int(rtype), byref(out)),
            "ctrlchan_channel_new",
        )
        ptr = self._own(out.value, live=True)
        runtime._adopt(ptr, ORDER_CHANNEL, _free_channel, self)

    def __repr__(self) -> str:
        return f"<ControlChannelTrigger {self._channel_id!r} {self._state_word()}>"

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    # --- properties ---------------------------------------------------------------------------

    @property
    def channel_id(self) -> str:
        out = c_char_p()
        check(_ffi.lib.ctrlchan_channel_get_id(self._handle(), byref(out)), "ctrlchan_channel_get_id")
        return _ffi.decode(out.value)

    @property
    def server_keepalive_interval(self) -> float:
        """Seconds: the keep-alive interval the server needs (0.1 s ... 24 h). Settable, like
        Windows' ``ServerKeepAliveIntervalInMinutes``: the network interval restarts from the new
        value and keep-alives are rescheduled at once."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_channel_get_server_keepalive_interval(self._handle(), byref(out)),
            "ctrlchan_channel_get_server_keepalive_interval",
        )
        return out.value / 1000.0

    @server_keepalive_interval.setter
    def server_keepalive_interval(self, seconds: float) -> None:
        ms = to_ms(seconds, "server_keepalive_interval")
        check(
            _ffi.lib.ctrlchan_channel_set_server_keepalive_interval(self._handle(), ms),
            "ctrlchan_channel_set_server_keepalive_interval",
        )

    @property
    def server_keepalive_interval_in_minutes(self) -> float:
        """The Windows unit of :attr:`server_keepalive_interval`."""
        return self.server_keepalive_interval / 60.0

    @server_keepalive_interval_in_minutes.setter
    def server_keepalive_interval_in_minutes(self, minutes: float) -> None:
        self.server_keepalive_interval = minutes * 60.0

    @property
    def current_keepalive_interval(self) -> float:
        """Seconds: the interval in effect, min(server interval, network interval)."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_channel_current_keepalive_interval(self._handle(), byref(out)),
            "ctrlchan_channel_current_keepalive_interval",
        )
        return out.value / 1000.0

    @property
    def resource_type(self) -> ControlChannelTriggerResourceType:
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_channel_get_resource_type(self._handle(), byref(out)),
            "ctrlchan_channel_get_resource_type",
        )
        return ControlChannelTriggerResourceType(out.value)

    @property
    def event_mask(self) -> EventMask:
        """Which :class:`EventKind` s the channel's transport produces (default
        ``EventMask.DEFAULT``: everything but KEEPALIVE). A masked-out event is never created;
        RTT and keep-alive counts stay in :attr:`statistics`. While a websocket is this channel's
        transport the channel's mask applies (not the websocket's). Settable any time, with an
        :class:`EventMask` or an int (bits ``1 << kind``); applies to later events."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_channel_get_event_mask(self._handle(), byref(out)),
            "ctrlchan_channel_get_event_mask",
        )
        return EventMask(out.value)

    @event_mask.setter
    def event_mask(self, mask: Union[EventMask, int]) -> None:
        value = to_mask(mask)
        check(_ffi.lib.ctrlchan_channel_set_event_mask(self._handle(), value), "ctrlchan_channel_set_event_mask")

    @property
    def adaptive_keepalive(self) -> Optional[Tuple[float, float]]:
        """Adaptive keep-alive (beyond Windows): ``(min, max)`` in seconds, or ``None`` (off,
        the default). When on, the runtime learns the longest network keep-alive interval the
        path (NATs, proxies, load balancers) tolerates between ``min`` and
        ``min(max, server_keepalive_interval)``, per network and server host:
        :attr:`current_keepalive_interval` and :attr:`statistics` report the learned value and
        each move is an ``INTERVAL_CHANGED`` event (``event.interval``, seconds; in the default
        event mask). Doubling while keep-alives succeed (3 in a row), geometric bisection below
        the first silent loss, settle 20 % below it, re-probe after 1 h (back-off to 48 h);
        :meth:`decrease_network_keepalive_interval` tells the learner the value is too long.
        ``0.1 <= min <= max <= 86400``. Read from the library."""
        lo, hi = c_uint32(), c_uint32()
        check(
            _ffi.lib.ctrlchan_channel_get_adaptive_keepalive(self._handle(), byref(lo), byref(hi)),
            "ctrlchan_channel_get_adaptive_keepalive",
        )
        if lo.value == 0 and hi.value == 0:
            return None
        return (lo.value / 1000.0, hi.value / 1000.0)

    @adaptive_keepalive.setter
    def adaptive_keepalive(self, value: Optional[Tuple[float, float]]) -> None:
        if value is None:
            lo = hi = 0
        else:
            try:
                low, high = value
            except (TypeError, ValueError):
                raise TypeError("adaptive_keepalive must be None or a (min, max) pair of seconds") from None
            lo = to_ms(low, "adaptive_keepalive min")
            hi = to_ms(high, "adaptive_keepalive max")
            if lo == 0 and hi == 0:
                raise InvalidArgumentError("adaptive_keepalive (0, 0): use None to turn it off")
        check(
            _ffi.lib.ctrlchan_channel_set_adaptive_keepalive(self._handle(), lo, hi),
            "ctrlchan_channel_set_adaptive_keepalive",
        )

    @property
    def reconnect_policy(self) -> Optional[ReconnectPolicy]:
        """How a lost transport is reconnected on the same websocket object (``None``: off, the
        default). See :class:`ReconnectPolicy`. Read from the library."""
        raw = _ffi.ReconnectPolicyC()
        enabled = c_bool(False)
        check(
            _ffi.lib.ctrlchan_channel_get_reconnect_policy(self._handle(), byref(raw), byref(enabled)),
            "ctrlchan_channel_get_reconnect_policy",
        )
        return ReconnectPolicy._from_c(raw) if enabled.value else None

    @reconnect_policy.setter
    def reconnect_policy(self, policy: Optional[ReconnectPolicy]) -> None:
        if policy is not None and not isinstance(policy, ReconnectPolicy):
            raise TypeError(f"reconnect_policy must be a ReconnectPolicy or None, not {type(policy).__name__}")
        ptr = self._handle()
        if policy is None:
            rc = _ffi.lib.ctrlchan_channel_set_reconnect_policy(ptr, None)
        else:
            raw = policy._to_c()
            rc = _ffi.lib.ctrlchan_channel_set_reconnect_policy(ptr, byref(raw))
        check(rc, "ctrlchan_channel_set_reconnect_policy")

    @property
    def statistics(self) -> ChannelStatistics:
        """A snapshot of the channel's keep-alive counters, reconnects and RTT (seconds)."""
        raw = _ffi.ChannelStatsC()
        check(_ffi.lib.ctrlchan_channel_get_stats(self._handle(), byref(raw)), "ctrlchan_channel_get_stats")
        return ChannelStatistics._from_c(raw)

    @property
    def transport(self) -> Optional[WebSocket]:
        """The websocket given to :meth:`using_transport`, if any."""
        self._handle()
        return self._transport

    @property
    def keepalive(self) -> Optional[WebSocketKeepAlive]:
        """The keep-alive task (Windows: bound to ``KeepAliveTrigger``); ``None`` = the default PING task."""
        self._handle()
        return self._keepalive

    @keepalive.setter
    def keepalive(self, task: Optional[WebSocketKeepAlive]) -> None:
        if task is not None and not isinstance(task, WebSocketKeepAlive):
            raise TypeError(f"keepalive must be a WebSocketKeepAlive or None, not {type(task).__name__}")
        ptr = self._handle()
        check(
            _ffi.lib.ctrlchan_channel_set_keepalive(ptr, None if task is None else task._handle()),
            "ctrlchan_channel_set_keepalive",
        )
        self._keepalive = task

    # --- the Windows flow ------------------------------------------------------------------------

    def using_transport(self, websocket: WebSocket) -> None:
        """Make ``websocket`` this channel's transport (before it connects)."""
        if not isinstance(websocket, (MessageWebSocket, StreamWebSocket)):
            raise TypeError(f"transport must be a MessageWebSocket or StreamWebSocket, not {type(websocket).__name__}")
        check(
            _ffi.lib.ctrlchan_channel_using_transport(self._handle(), websocket._handle()),
            "ctrlchan_channel_using_transport",
        )
        self._transport = websocket

    def wait_for_push_enabled(self) -> ControlChannelTriggerStatus:
        """Register the channel with the runtime (after connect); keep-alives start on an allocated slot."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_channel_wait_for_push_enabled(self._handle(), byref(out)),
            "ctrlchan_channel_wait_for_push_enabled",
        )
        return ControlChannelTriggerStatus(out.value)

    def decrease_network_keepalive_interval(self) -> None:
        """Tell the runtime the network dropped the connection: send keep-alives more often."""
        check(
            _ffi.lib.ctrlchan_channel_decrease_network_keepalive_interval(self._handle()),
            "ctrlchan_channel_decrease_network_keepalive_interval",
        )

    def flush_transport(self, timeout: Optional[float] = 30.0) -> None:
        """Block until queued outbound data reached the kernel (Windows ``FlushTransport``)."""
        ptr = self._handle()
        forbid_in_callback(self._runtime, "ControlChannelTrigger.flush_transport")
        ms = to_ms(timeout, "timeout", none_ms=U32_MAX)
        check(_ffi.lib.ctrlchan_channel_flush_transport(ptr, ms), "ctrlchan_channel_flush_transport")

    # --- events -----------------------------------------------------------------------------------

    @property
    def on_event(self) -> Optional[EventHandler]:
        """Handler for this channel's events (push notifications, keep-alives, close, loss).

        Called on the runtime thread with an :class:`Event`; keep it short. It is the first
        place an event of the channel's transport goes: while it is set, the websocket's own
        ``on_event`` and the runtime queue see none of them. ``None`` (default) installs no
        native handler: the events go to the websocket's handler if it has one, else the
        runtime queue. An exception it raises is logged and re-raised by the runtime's next
        ``next_event``/``events``/``aevents``/``check_callback_errors``.
        """
        self._handle()
        return self._on_event

    @on_event.setter
    def on_event(self, handler: Optional[EventHandler]) -> None:
        install_event_handler(
            _ffi.lib.ctrlchan_channel_set_event_handler,
            "ctrlchan_channel_set_event_handler",
            self._handle(),
            handler,
            self,
            self._runtime,
        )
        self._on_event = handler

    # --- closing ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop keep-alives, release the slot and free the channel (Windows ``Close``). Idempotent.

        The native handle is freed at once and the handler registration with it. The
        transport websocket is not closed: it stays open, and its later events go to its
        own ``on_event`` or the runtime queue. Close it yourself (or close the runtime).
        """
        super().close()
        self._on_event = None

    def _free_native(self, ptr: int) -> None:
        if self._runtime._disown(ptr):
            _free_channel(ptr)
