"""Dead peers and lost transports: pong timeout through a blackhole proxy, EOF, RST, reconnect."""

from __future__ import annotations

import time

import pytest

from conftest import open_channel, start_proxy, wait_event
from ctrlchan import (
    ClosedError,
    ControlChannelTriggerStatus,
    CtrlChanError,
    EventKind,
    EventMask,
    MessageWebSocket,
    ResultCode,
    Runtime,
    WebSocketKeepAlive,
    WebSocketState,
)

SLACK = 0.5
ENDINGS = [EventKind.TRANSPORT_DISCONNECTED, EventKind.CLOSED]


def assert_no_more_endings(rt: Runtime, seconds: float) -> None:
    later = [e for e in rt.events(timeout=seconds) if e.kind in ENDINGS]
    assert later == [], later


def test_blackholed_peer_is_detected_by_pong_timeout(rt: Runtime, server) -> None:
    interval, pong_timeout = 0.5, 0.5
    with start_proxy(server.port) as px:
        ka = WebSocketKeepAlive(pong_timeout=pong_timeout)
        ch, ws = open_channel(rt, px.url("/echo"), interval=interval, keepalive=ka, event_mask=EventMask.ALL)
        ok = wait_event(rt, [EventKind.KEEPALIVE], timeout=3.0)  # healthy first
        assert ok.rtt > 0
        px.blackhole()
        t0 = time.monotonic()
        ev = wait_event(rt, [EventKind.TRANSPORT_DISCONNECTED, EventKind.CLOSED], timeout=5.0)
        elapsed = time.monotonic() - t0
        assert ev.kind is EventKind.TRANSPORT_DISCONNECTED
        assert ev.channel is ch and ev.channel_id == "channelOne"
        assert "timeout" in ev.reason.lower() or "pong" in ev.reason.lower(), ev.reason
        assert ev.result is ResultCode.TIMEOUT
        assert elapsed <= interval + pong_timeout + SLACK, elapsed
        # Delivered exactly once, and keep-alives stop.
        sent = rt.statistics.keepalives_sent
        assert_no_more_endings(rt, 1.5)
        assert rt.statistics.keepalives_sent == sent
        assert ws.state is WebSocketState.CLOSED
        with pytest.raises(CtrlChanError):
            ws.send("into the void")


def test_nopong_peer(rt: Runtime, server) -> None:
    ka = WebSocketKeepAlive(pong_timeout=0.3)
    ch, _ = open_channel(rt, server.url("/nopong"), interval=0.3, keepalive=ka, event_mask=EventMask.ALL)
    t0 = time.monotonic()
    skipped = []
    ev = wait_event(rt, ENDINGS, timeout=5.0, skipped=skipped)
    assert ev.kind is EventKind.TRANSPORT_DISCONNECTED and ev.channel is ch
    assert time.monotonic() - t0 <= 0.6 + SLACK
    assert not [e for e in skipped if e.kind is EventKind.KEEPALIVE]  # no pong, no KEEPALIVE event
    assert_no_more_endings(rt, 1.0)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_dropped_connection(rt: Runtime, server, how: str) -> None:
    ch, ws = open_channel(rt, server.url(f"/drop?after_ms=100&how={how}"))
    ev = wait_event(rt, ENDINGS, timeout=5.0)
    assert ev.kind is EventKind.TRANSPORT_DISCONNECTED and ev.channel is ch
    assert ev.reason  # says EOF / reset
    assert_no_more_endings(rt, 0.5)
    assert ws.state is WebSocketState.CLOSED


def test_proxy_reset_and_reconnect_with_a_new_transport(rt: Runtime, server) -> None:
    with start_proxy(server.port) as px:
        ch, ws = open_channel(rt, px.url("/echo"))
        ws.send("before")
        assert wait_event(rt, [EventKind.PUSH_NOTIFICATION]).text == "before"
        px.reset()
        ev = wait_event(rt, ENDINGS, timeout=5.0)
        assert ev.kind is EventKind.TRANSPORT_DISCONNECTED and ev.channel is ch
        with pytest.raises(ClosedError):
            ws.send("lost")

        # Windows: a new socket, using_transport again, connect, wait_for_push_enabled.
        ws2 = MessageWebSocket(rt)
        ch.using_transport(ws2)
        ev = wait_event(rt, [EventKind.RESET], timeout=2.0)
        assert ev.channel is ch
        ws2.connect(px.url("/echo"), timeout=5.0)
        assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED
        assert ch.transport is ws2
        ws2.send("after")
        ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION])
        assert ev.text == "after" and ev.channel is ch and ev.websocket is ws2


def test_connect_through_a_blackhole_times_out(rt: Runtime, server) -> None:
    from ctrlchan import TimeoutError_

    with start_proxy(server.port) as px:
        px.blackhole()  # TCP connects, the handshake never answers
        ws = MessageWebSocket(rt)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError_) as info:
            ws.connect(px.url("/echo"), timeout=0.3)
        assert isinstance(info.value, TimeoutError)
        assert 0.25 <= time.monotonic() - t0 < 2.0
