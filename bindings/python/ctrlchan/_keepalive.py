"""``WebSocketKeepAlive``: the RFC 6455 keep-alive task bound to a channel's keep-alive trigger."""

from __future__ import annotations

from ctypes import byref, c_uint32, c_void_p
from typing import TYPE_CHECKING

from . import _ffi
from ._convert import to_enum, to_ms
from ._enums import KeepAliveMode
from ._errors import check
from ._managed import Handle

if TYPE_CHECKING:  # pragma: no cover
    from ._channel import ControlChannelTrigger

__all__ = ["WebSocketKeepAlive"]


class WebSocketKeepAlive(Handle):
    """Windows ``WebSocketKeepAlive``: what the runtime sends when a channel's keep-alive is due.

    ``mode`` PING (default) sends a ping with a unique payload and declares the peer
    dead (TRANSPORT_DISCONNECTED) when no matching pong arrives within
    ``pong_timeout`` seconds; UNSOLICITED_PONG sends a one-way heartbeat. A channel
    keeps its own reference: closing this object after ``channel.keepalive = ka`` does
    not affect the channel.
    """

    def __init__(self, mode: KeepAliveMode = KeepAliveMode.PING, pong_timeout: float = 5.0) -> None:
        super().__init__()
        m = to_enum(KeepAliveMode, mode, "mode")
        ms = to_ms(pong_timeout, "pong_timeout")
        out = c_void_p()
        check(_ffi.lib.ctrlchan_keepalive_new(byref(out)), "ctrlchan_keepalive_new")
        ptr = self._own(out.value)
        try:
            check(_ffi.lib.ctrlchan_keepalive_set_mode(ptr, int(m)), "ctrlchan_keepalive_set_mode")
            check(_ffi.lib.ctrlchan_keepalive_set_pong_timeout(ptr, ms), "ctrlchan_keepalive_set_pong_timeout")
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<WebSocketKeepAlive closed>"
        return f"<WebSocketKeepAlive mode={self.mode.name} pong_timeout={self.pong_timeout}>"

    @property
    def mode(self) -> KeepAliveMode:
        out = c_uint32()
        check(_ffi.lib.ctrlchan_keepalive_get_mode(self._handle(), byref(out)), "ctrlchan_keepalive_get_mode")
        return KeepAliveMode(out.value)

    @mode.setter
    def mode(self, value: KeepAliveMode) -> None:
        m = to_enum(KeepAliveMode, value, "mode")
        check(_ffi.lib.ctrlchan_keepalive_set_mode(self._handle(), int(m)), "ctrlchan_keepalive_set_mode")

    @property
    def pong_timeout(self) -> float:
        """Seconds to wait for the pong in PING mode (default 5.0; 0.01 .. 86400)."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_keepalive_get_pong_timeout(self._handle(), byref(out)),
            "ctrlchan_keepalive_get_pong_timeout",
        )
        return out.value / 1000.0

    @pong_timeout.setter
    def pong_timeout(self, seconds: float) -> None:
        ms = to_ms(seconds, "pong_timeout")
        check(
            _ffi.lib.ctrlchan_keepalive_set_pong_timeout(self._handle(), ms),
            "ctrlchan_keepalive_set_pong_timeout",
        )

    def run(self, channel: "ControlChannelTrigger") -> None:
        """Send one keep-alive on ``channel`` now (Windows ``IBackgroundTask.Run``)."""
        from ._channel import ControlChannelTrigger

        if not isinstance(channel, ControlChannelTrigger):
            raise TypeError(f"channel must be a ControlChannelTrigger, not {type(channel).__name__}")
        check(_ffi.lib.ctrlchan_keepalive_run(self._handle(), channel._handle()), "ctrlchan_keepalive_run")

    def _free_native(self, ptr: int) -> None:
        _ffi.lib.ctrlchan_keepalive_free(ptr)
