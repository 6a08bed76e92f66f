"""Durable channels: ``ReconnectPolicy``, ``ChannelStatistics`` and event masks (C structs <-> Python)."""

from __future__ import annotations

import math
from ctypes import byref
from dataclasses import dataclass
from typing import Union

from . import _ffi
from ._convert import U32_MAX, to_ms, to_uint
from ._enums import EventMask
from ._errors import InvalidArgumentError

__all__ = ["ReconnectPolicy", "ChannelStatistics", "to_mask"]


def _number(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if math.isnan(value) or math.isinf(value):
        raise InvalidArgumentError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a channel reconnects a lost transport (``ctrlchan_reconnect_policy``).

    Set it with ``channel.reconnect_policy = ReconnectPolicy(...)`` (``None``: off, the
    default). With a policy, a lost transport is reconnected **on the same websocket object**,
    to the same URI with the same options; keep-alives resume on their own. Each attempt is
    announced by a RECONNECTING event (``attempt``, ``delay``, ``result``/``reason`` = the cause),
    success by RESET with ``reset_reason`` RECONNECTED (or LOW_POWER_EXIT / NETWORK_CHANGED when a
    probe found the loss). After ``max_attempts`` failed attempts: TRANSPORT_DISCONNECTED with the
    last cause. See ``ctrlchan_channel_set_reconnect_policy`` in ``include/ctrlchan.h`` for which
    losses are retried (never: a close by the app, TLS failures, HTTP 401/403 and other 4xx).

    * ``initial_delay``: seconds; the first retry waits a random time in ``[0, initial_delay]``
      (RFC 6455 section 7.2.3);
    * ``max_delay``: seconds, cap on any delay (> 0, >= ``initial_delay``); a connection that
      stays open this long resets the schedule;
    * ``multiplier``: each further retry waits the previous delay times this (1.0 ... 10.0,
      e.g. 1.6); sent to the library in whole percent;
    * ``jitter``: each delay after the first is randomised by +/- this share (0.0 ... 1.0);
      whole percent;
    * ``max_attempts``: attempts before giving up; 0 = unlimited.

    Delays travel as whole milliseconds. The field defaults are the library's defaults
    (:meth:`default` reads them from the library).
    """

    initial_delay: float = 1.0
    max_delay: float = 60.0
    multiplier: float = 1.6
    jitter: float = 0.2
    max_attempts: int = 0

    def __post_init__(self) -> None:
        initial = to_ms(self.initial_delay, "initial_delay")
        maximum = to_ms(self.max_delay, "max_delay")
        if maximum == 0:
            raise InvalidArgumentError(f"max_delay must be > 0 seconds, got {self.max_delay!r}")
        if initial > maximum:
            raise InvalidArgumentError(
                f"initial_delay ({self.initial_delay!r} s) must not exceed max_delay ({self.max_delay!r} s)"
            )
        multiplier = _number(self.multiplier, "multiplier")
        if not 1.0 <= multiplier <= 10.0:
            raise InvalidArgumentError(f"multiplier must be in 1.0..10.0, got {self.multiplier!r}")
        jitter = _number(self.jitter, "jitter")
        if not 0.0 <= jitter <= 1.0:
            raise InvalidArgumentError(f"jitter must be in 0.0..1.0, got {self.jitter!r}")
        to_uint(self.max_attempts, "max_attempts")

    @classmethod
    def default(cls) -> "ReconnectPolicy":
        """The library's default policy (``ctrlchan_reconnect_policy_default``)."""
        raw = _ffi.ReconnectPolicyC()
        _ffi.lib.ctrlchan_reconnect_policy_default(byref(raw))
        return cls._from_c(raw)

    @classmethod
    def _from_c(cls, raw: _ffi.ReconnectPolicyC) -> "ReconnectPolicy":
        return cls(
            initial_delay=raw.initial_delay_ms / 1000.0,
            max_delay=raw.max_delay_ms / 1000.0,
            multiplier=raw.multiplier_percent / 100.0,
            jitter=raw.jitter_percent / 100.0,
            max_attempts=int(raw.max_attempts),
        )

    def _to_c(self) -> _ffi.ReconnectPolicyC:
        return _ffi.ReconnectPolicyC(
            initial_delay_ms=to_ms(self.initial_delay, "initial_delay"),
            max_delay_ms=to_ms(self.max_delay, "max_delay"),
            multiplier_percent=int(round(self.multiplier * 100.0)),
            jitter_percent=int(round(self.jitter * 100.0)),
            max_attempts=self.max_attempts,
        )


@dataclass(frozen=True)
class ChannelStatistics:
    """A snapshot of a channel's counters (``ctrlchan_channel_stats``); times in seconds.

    ``last_rtt``/``srtt``/``rttvar``: the last keep-alive round trip and its smoothed value and
    variation as TCP computes them (RFC 6298); 0.0 before the first pong. ``reconnects``:
    successful reconnects by the policy. ``current_interval``: the interval keep-alives follow now.
    """

    keepalives_sent: int
    keepalives_acked: int
    reconnects: int
    last_rtt: float
    srtt: float
    rttvar: float
    current_interval: float

    @classmethod
    def _from_c(cls, raw: _ffi.ChannelStatsC) -> "ChannelStatistics":
        return cls(
            keepalives_sent=int(raw.keepalives_sent),
            keepalives_acked=int(raw.keepalives_acked),
            reconnects=int(raw.reconnects),
            last_rtt=raw.last_rtt_us / 1_000_000.0,
            srtt=raw.srtt_us / 1_000_000.0,
            rttvar=raw.rttvar_us / 1_000_000.0,
            current_interval=raw.current_interval_ms / 1000.0,
        )


def to_mask(value: Union[EventMask, int], name: str = "event_mask") -> int:
    """An :class:`EventMask` or an int in 0..2**32-1 -> the C ``uint32_t`` mask."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an EventMask or int, not {type(value).__name__}")
    if not 0 <= int(value) <= U32_MAX:
        raise InvalidArgumentError(f"{name} must be in 0..{U32_MAX:#x}, got {int(value)}")
    return int(value)
