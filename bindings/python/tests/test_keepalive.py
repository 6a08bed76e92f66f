"""Keep-alive cadence, RTT, modes and the interval controls, measured by the peer (/count)."""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List

import pytest

from conftest import open_channel, wait_event
from ctrlchan import (
    ControlChannelTrigger,
    InvalidArgumentError,
    Event,
    EventKind,
    EventMask,
    KeepAliveMode,
    MessageWebSocket,
    Runtime,
    WebSocketKeepAlive,
)

SLACK = 0.15  # scheduling/loopback slack in seconds for timing bounds


def peer_stats(rt: Runtime, ws: MessageWebSocket, skipped: List[Event]) -> Dict[str, Any]:
    ws.send("stats")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=5.0, skipped=skipped)
    stats: Dict[str, Any] = json.loads(ev.text or "")
    return stats


def drain(rt: Runtime, seconds: float) -> List[Event]:
    return list(rt.events(timeout=seconds))


@pytest.mark.parametrize("coalescing", [None, 0.0])
def test_ping_cadence_and_rtt(rt: Runtime, server, coalescing) -> None:
    if coalescing is not None:
        rt.coalescing_window = coalescing
        assert rt.coalescing_window == coalescing
    interval = 0.5
    ch, ws = open_channel(rt, server.url("/count"), interval=interval, event_mask=EventMask.ALL)
    events = drain(rt, 3.0)
    stats = peer_stats(rt, ws, events)
    keepalives = [e for e in events if e.kind is EventKind.KEEPALIVE]

    times = [t / 1000.0 for t in stats["ping_times_ms"]]
    assert stats["pongs"] == 0
    # 3 s at one ping per <= 0.5 s (early by at most a quarter interval when coalescing).
    assert 5 <= stats["pings"] <= 10, stats
    assert times[0] <= interval + SLACK, times  # the first one is not late either
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) <= interval + SLACK, gaps
    low = interval * (0.75 if coalescing is None else 1.0)
    assert min(gaps) >= low - SLACK, gaps

    # Every ping was answered by the peer and reported with its round-trip time.
    assert abs(len(keepalives) - stats["pings"]) <= 1
    assert all(e.channel is ch and e.channel_id == "channelOne" for e in keepalives)
    assert all(0.0 < e.rtt < 0.5 for e in keepalives), [e.rtt for e in keepalives]
    rts = rt.statistics
    assert rts.keepalives_sent >= stats["pings"] and rts.keepalives_acked >= len(keepalives)


def test_unsolicited_pong_mode(rt: Runtime, server) -> None:
    ka = WebSocketKeepAlive(mode=KeepAliveMode.UNSOLICITED_PONG)
    assert ka.mode is KeepAliveMode.UNSOLICITED_PONG
    ch, ws = open_channel(rt, server.url("/count"), interval=0.3, keepalive=ka, event_mask=EventMask.ALL)
    events = drain(rt, 1.6)
    stats = peer_stats(rt, ws, events)
    assert stats["pings"] == 0
    assert 3 <= stats["pongs"] <= 9, stats
    keepalives = [e for e in events if e.kind is EventKind.KEEPALIVE]
    assert len(keepalives) >= 3
    assert all(e.channel is ch for e in keepalives)


def test_outbound_data_counts_as_keepalive(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/count"), interval=0.5)
    deadline = time.monotonic() + 2.0
    sent = 0
    while time.monotonic() < deadline and sent < 100:
        ws.send(f"busy {sent}")
        sent += 1
        time.sleep(0.1)
    events: List[Event] = []
    stats = peer_stats(rt, ws, events)
    assert stats["messages"] == sent
    # Outbound data replaces the NAT keep-alive, but this peer sends nothing back, so liveness
    # still needs a probe once per interval without inbound traffic (issue 13): never more.
    assert stats["pings"] <= 2.0 / 0.5 + 1, stats


def test_keepalive_run_sends_one_now(rt: Runtime, server) -> None:
    ka = WebSocketKeepAlive(pong_timeout=2.0)
    ch, ws = open_channel(rt, server.url("/count"), interval=3600.0, keepalive=ka, event_mask=EventMask.ALL)
    for _ in range(3):
        ka.run(ch)
    skipped: List[Event] = []
    keepalives = [wait_event(rt, [EventKind.KEEPALIVE], timeout=5.0, skipped=skipped) for _ in range(3)]
    assert all(e.rtt > 0 for e in keepalives)
    stats = peer_stats(rt, ws, skipped)
    assert stats["pings"] == 3


def test_decrease_network_keepalive_interval(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/count"), interval=60.0)
    assert ch.current_keepalive_interval == 60.0
    seen = [ch.current_keepalive_interval]
    for _ in range(20):
        ch.decrease_network_keepalive_interval()
        seen.append(ch.current_keepalive_interval)
    assert seen[1] < seen[0]
    assert all(b <= a for a, b in zip(seen, seen[1:])), seen
    assert seen[-1] == 0.1  # halved down to the 100 ms floor
    assert ch.server_keepalive_interval == 60.0  # the server's need is unchanged


def test_server_keepalive_interval_is_settable_and_reschedules(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/echo"), interval=60.0, event_mask=EventMask.ALL)
    assert rt.next_event(timeout=0.5) is None  # nothing due for a minute
    ch.server_keepalive_interval = 0.3
    assert ch.server_keepalive_interval == 0.3 and ch.current_keepalive_interval == 0.3
    t0 = time.monotonic()
    ev = wait_event(rt, [EventKind.KEEPALIVE], timeout=2.0)
    assert ev.rtt > 0
    assert time.monotonic() - t0 < 0.3 + 0.3, "rescheduled at once, not after the old 60 s"
    ch.server_keepalive_interval_in_minutes = 2
    assert ch.server_keepalive_interval == 120.0
    with pytest.raises(InvalidArgumentError):
        ch.server_keepalive_interval = 0.05
    with pytest.raises(TypeError):
        ch.server_keepalive_interval = "fast"  # type: ignore[assignment]
    assert ch.server_keepalive_interval == 120.0


def test_keepalive_task_properties() -> None:
    with WebSocketKeepAlive() as ka:
        assert ka.mode is KeepAliveMode.PING
        assert ka.pong_timeout == 5.0
        ka.pong_timeout = 0.25
        ka.mode = KeepAliveMode.UNSOLICITED_PONG
        assert (ka.mode, ka.pong_timeout) == (KeepAliveMode.UNSOLICITED_PONG, 0.25)
    assert ka.closed


def test_channel_keeps_its_own_keepalive_reference(rt: Runtime, server) -> None:
    ka = WebSocketKeepAlive(pong_timeout=2.0)
    ch = ControlChannelTrigger(rt, "own-ref", server_keepalive_interval=0.3)
    ch.event_mask = EventMask.ALL  # KEEPALIVE events are off by default
    ch.keepalive = ka
    ka.close()  # the channel's reference stays valid
    ws = MessageWebSocket(rt)
    ch.using_transport(ws)
    ws.connect(server.url("/echo"), timeout=5.0)
    ch.wait_for_push_enabled()
    ev = wait_event(rt, [EventKind.KEEPALIVE], timeout=3.0)
    assert ev.channel is ch and ev.rtt > 0
