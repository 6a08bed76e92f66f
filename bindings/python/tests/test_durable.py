"""Durable, quiet channels: event masks, channel statistics, reconnect policy, bounded queue, suspend.

The reconnect tests use an in-process `websockets` peer that is stopped (connections aborted
without a close frame, like a killed server) and restarted on the same port (restart_peer.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Iterator, List

import pytest

from conftest import collect, open_channel, wait_event
from ctrlchan import (
    ChannelStatistics,
    ControlChannelTrigger,
    ControlChannelTriggerResetReason,
    Event,
    EventKind,
    EventMask,
    InvalidArgumentError,
    MessageWebSocket,
    ReconnectPolicy,
    ResultCode,
    Runtime,
    WebSocketKeepAlive,
    WebSocketState,
)
from restart_peer import RestartablePeer

FAST = ReconnectPolicy(initial_delay=0.1, max_delay=0.5, multiplier=1.6, jitter=0.2)


@pytest.fixture
def peer() -> Iterator[RestartablePeer]:
    srv = RestartablePeer()
    try:
        yield srv
    finally:
        srv.close()


def quiet_for(rt: Runtime, seconds: float) -> List[Event]:
    return list(rt.events(timeout=seconds))


# --- enums and values ---------------------------------------------------------------------------


def test_event_mask_members() -> None:
    for kind in EventKind:
        assert EventMask[kind.name] == 1 << kind
    assert EventMask.ALL == 0xFFFF_FFFF
    assert EventMask.KEEPALIVE not in EventMask.DEFAULT
    assert all(EventMask[k.name] in EventMask.DEFAULT for k in EventKind if k is not EventKind.KEEPALIVE)
    assert EventMask.of(EventKind.PUSH_NOTIFICATION, EventKind.RESET) == EventMask.PUSH_NOTIFICATION | EventMask.RESET


def test_new_enum_values() -> None:
    assert EventKind.RECONNECTING == 7 and EventKind.INTERVAL_CHANGED == 8
    assert ResultCode.PROXY_FAILED == 14 and ResultCode.QUEUE_FULL == 15
    r = ControlChannelTriggerResetReason
    assert [(m.name, m.value) for m in r] == [
        ("FAST_USER_SWITCHED", 0),
        ("LOW_POWER_EXIT", 1),
        ("QUIET_HOURS_EXIT", 2),
        ("APPLICATION_RESTART", 3),
        ("NEW_TRANSPORT", 16),
        ("RECONNECTED", 17),
        ("NETWORK_CHANGED", 18),
    ]


def test_reconnect_policy_values(rt: Runtime) -> None:
    assert ReconnectPolicy.default() == ReconnectPolicy() == ReconnectPolicy(1.0, 60.0, 1.6, 0.2, 0)
    ch = ControlChannelTrigger(rt, "policy")
    assert ch.reconnect_policy is None  # off by default
    p = ReconnectPolicy(initial_delay=0.25, max_delay=5.0, multiplier=2.0, jitter=0.0, max_attempts=7)
    ch.reconnect_policy = p
    assert ch.reconnect_policy == p
    ch.reconnect_policy = None
    assert ch.reconnect_policy is None
    for bad in (
        dict(jitter=1.5),
        dict(jitter=-0.1),
        dict(multiplier=0.5),
        dict(multiplier=11.0),
        dict(initial_delay=2.0, max_delay=1.0),
        dict(max_delay=0.0),
        dict(max_attempts=-1),
        dict(initial_delay=float("nan")),
    ):
        with pytest.raises(InvalidArgumentError):
            ReconnectPolicy(**bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ReconnectPolicy(multiplier="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ch.reconnect_policy = 5  # type: ignore[assignment]
    with pytest.raises(AttributeError):
        p.jitter = 0.5  # type: ignore[misc]  # frozen


def test_event_mask_properties(rt: Runtime) -> None:
    ch = ControlChannelTrigger(rt, "masks")
    ws = MessageWebSocket(rt)
    assert ch.event_mask == EventMask.DEFAULT and isinstance(ch.event_mask, EventMask)
    assert ws.event_mask == EventMask.DEFAULT
    ch.event_mask = EventMask.ALL
    assert ch.event_mask == EventMask.ALL
    ws.event_mask = 1 << EventKind.CLOSED  # a plain int is fine
    assert ws.event_mask == EventMask.CLOSED
    ch.event_mask = 0
    assert ch.event_mask == 0
    for bad in (-1, 1 << 32):
        with pytest.raises(InvalidArgumentError):
            ch.event_mask = bad
        with pytest.raises(InvalidArgumentError):
            ws.event_mask = bad
    with pytest.raises(TypeError):
        ch.event_mask = "ALL"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        ws.event_mask = True
    assert ch.event_mask == 0 and ws.event_mask == EventMask.CLOSED


def test_runtime_event_queue_limit(rt: Runtime) -> None:
    assert rt.event_queue_limit == 65536
    rt.event_queue_limit = 100
    assert rt.event_queue_limit == 100
    with pytest.raises(InvalidArgumentError):
        rt.event_queue_limit = 0
    with pytest.raises(InvalidArgumentError):
        rt.event_queue_limit = -5
    assert rt.event_queue_limit == 100


# --- masks on the wire ----------------------------------------------------------------------------


def test_default_mask_has_no_keepalive_events_but_stats_count_them(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/echo"), interval=0.3)
    assert ch.statistics.keepalives_sent <= 1  # just connected
    events = quiet_for(rt, 1.5)
    assert [e for e in events if e.kind is EventKind.KEEPALIVE] == []
    stats = ch.statistics
    assert isinstance(stats, ChannelStatistics)
    assert stats.keepalives_sent >= 3 and stats.keepalives_acked >= 3, stats
    assert stats.keepalives_acked <= stats.keepalives_sent
    assert 0.0 < stats.last_rtt < 0.5 and 0.0 < stats.srtt < 0.5 and stats.rttvar >= 0.0, stats
    assert stats.reconnects == 0
    assert stats.current_interval == pytest.approx(0.3)
    later = ch.statistics
    time.sleep(0.7)
    assert ch.statistics.keepalives_acked > later.keepalives_acked  # still growing


def test_mask_all_delivers_keepalives(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/echo"), interval=0.3, event_mask=EventMask.ALL)
    ev = wait_event(rt, [EventKind.KEEPALIVE], timeout=3.0)
    assert ev.channel is ch and ev.rtt > 0
    # switched off again at run time: no more
    ch.event_mask = EventMask.DEFAULT
    quiet_for(rt, 0.1)  # one may have been queued just before
    assert [e for e in quiet_for(rt, 1.0) if e.kind is EventKind.KEEPALIVE] == []


def test_masked_out_push_is_not_delivered(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/echo"), interval=60.0, event_mask=EventMask.DEFAULT & ~EventMask.PUSH_NOTIFICATION)
    ws.send("invisible")
    assert quiet_for(rt, 0.8) == []
    assert ws.statistics.messages_received == 1  # it did arrive; no event was made
    ch.event_mask = EventMask.DEFAULT
    ws.send("visible")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0)
    assert ev.text == "visible"
    assert rt.next_event(timeout=0.3) is None  # "invisible" was never created


def test_websocket_mask_applies_when_not_bound(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    ws.event_mask = EventMask.DEFAULT & ~EventMask.PUSH_NOTIFICATION
    ws.connect(server.url("/echo"), timeout=5.0)
    ws.send("invisible")
    assert quiet_for(rt, 0.8) == []
    ws.event_mask = EventMask.DEFAULT
    ws.send("visible")
    assert wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0).text == "visible"
    assert rt.next_event(timeout=0.3) is None


def test_websocket_mask_is_ignored_while_bound_to_a_channel(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    ws.event_mask = 0
    ch = ControlChannelTrigger(rt, "bound", server_keepalive_interval=60.0)
    ch.using_transport(ws)
    ws.connect(server.url("/echo"), timeout=5.0)
    ch.wait_for_push_enabled()
    ws.send("through the channel's mask")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0)
    assert ev.channel is ch and ev.text == "through the channel's mask"


# --- reconnect ------------------------------------------------------------------------------------


def _reconnecting_then_reset(rt: Runtime, ch: ControlChannelTrigger, timeout: float) -> List[Event]:
    """Events of `ch` up to and including its RESET (fails on anything that ends the channel)."""
    out: List[Event] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no RESET within {timeout} s; saw {out}"
        ev = rt.next_event(timeout=left)
        if ev is None:
            continue
        out.append(ev)
        assert ev.kind not in (EventKind.TRANSPORT_DISCONNECTED, EventKind.CLOSED), out
        if ev.kind is EventKind.RESET:
            return out


def test_server_restart_reconnects_on_the_same_websocket(rt: Runtime, peer: RestartablePeer) -> None:
    ch, ws = open_channel(rt, peer.url(), interval=0.5)
    ch.reconnect_policy = FAST
    assert wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0).text == "hello 1"
    peer.stop()
    first = wait_event(rt, [EventKind.RECONNECTING], timeout=3.0)
    assert first.attempt == 1 and first.channel is ch and first.websocket is ws
    assert 0.0 <= first.delay <= FAST.initial_delay + 0.001, first  # [0, initial] (RFC 6455 7.2.3)
    assert first.result is not ResultCode.OK and first.reason, first
    assert ws.state in (WebSocketState.CONNECTING, WebSocketState.OPEN)
    time.sleep(1.0)  # several refused attempts
    peer.start()
    seen = [first] + _reconnecting_then_reset(rt, ch, timeout=5.0)
    attempts = [e for e in seen if e.kind is EventKind.RECONNECTING]
    assert len(attempts) >= 2, seen
    assert [e.attempt for e in attempts] == list(range(1, len(attempts) + 1))
    assert all(e.result is not ResultCode.OK for e in attempts)
    cap = FAST.max_delay * (1 + FAST.jitter) + 0.001
    assert all(0.0 <= e.delay <= cap for e in attempts), [e.delay for e in attempts]
    reset = seen[-1]
    assert reset.kind is EventKind.RESET and reset.reset_reason is ControlChannelTriggerResetReason.RECONNECTED
    assert reset.channel is ch and reset.websocket is ws  # the same objects
    assert ws.state is WebSocketState.OPEN and ch.transport is ws
    assert wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0).text == "hello 2"
    ws.send("after")
    assert wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0).text == "ack after"
    stats = ch.statistics
    assert stats.reconnects == 1, stats
    # keep-alives resume on their own (no second wait_for_push_enabled)
    acked = stats.keepalives_acked
    time.sleep(1.2)
    assert ch.statistics.keepalives_acked > acked


def test_messages_sent_while_reconnecting_are_delivered_once(rt: Runtime, peer: RestartablePeer) -> None:
    ch, ws = open_channel(rt, peer.url(), interval=60.0)
    ch.reconnect_policy = FAST
    wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0)
    ws.send("before")
    peer.wait_received(1, 3.0)
    peer.stop()
    wait_event(rt, [EventKind.RECONNECTING], timeout=3.0)
    queued = [f"queued {i}" for i in range(20)]
    for text in queued:
        ws.send(text)
    time.sleep(0.5)
    peer.start()
    _reconnecting_then_reset(rt, ch, timeout=5.0)
    got = peer.wait_received(1 + len(queued), 5.0)
    time.sleep(0.5)  # would a duplicate follow?
    assert peer.received == ["before"] + queued, peer.received  # once each, in order
    assert peer.connections == 2
    assert ch.statistics.reconnects == 1
    del got


def test_max_attempts_then_transport_disconnected(rt: Runtime, peer: RestartablePeer) -> None:
    ch, ws = open_channel(rt, peer.url(), interval=60.0)
    ch.reconnect_policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, multiplier=1.6, jitter=0.0, max_attempts=3)
    wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0)
    peer.stop()  # and it stays down
    seen: List[Event] = [wait_event(rt, [EventKind.RECONNECTING], timeout=3.0)]
    ws.send("never sent 1")  # queued while reconnecting
    ws.send("never sent 2")
    final = wait_event(rt, [EventKind.TRANSPORT_DISCONNECTED, EventKind.CLOSED], timeout=10.0, skipped=seen)
    attempts = [e.attempt for e in seen if e.kind is EventKind.RECONNECTING]
    assert attempts == [1, 2, 3], seen
    assert final.kind is EventKind.TRANSPORT_DISCONNECTED and final.channel is ch
    assert final.result is not ResultCode.OK and final.reason, final
    # what the policy never sent is counted in the final event's reason
    assert re.search(r"\b2 queued messages? (were|was) never sent", final.reason), final.reason
    assert ws.state is WebSocketState.CLOSED
    assert not [e for e in seen if e.kind is EventKind.RESET]
    assert quiet_for(rt, 1.0) == []  # no fourth attempt
    assert ch.statistics.reconnects == 0


def test_aevents_deliver_reconnecting_and_reset(rt: Runtime, peer: RestartablePeer) -> None:
    ch, ws = open_channel(rt, peer.url(), interval=60.0)
    ch.reconnect_policy = FAST

    async def main() -> List[Event]:
        loop = asyncio.get_running_loop()
        kinds: List[Event] = []
        stopped = restarted = False
        async for ev in rt.aevents(timeout=10.0):
            kinds.append(ev)
            if ev.kind is EventKind.PUSH_NOTIFICATION and not stopped:
                stopped = True
                await loop.run_in_executor(None, peer.stop)
            elif ev.kind is EventKind.RECONNECTING and not restarted:
                restarted = True
                await loop.run_in_executor(None, peer.start)
            elif ev.kind is EventKind.RESET:
                break
        return kinds

    events = asyncio.run(main())
    kinds = [e.kind for e in events]
    assert kinds[0] is EventKind.PUSH_NOTIFICATION and EventKind.RECONNECTING in kinds, events
    assert kinds[-1] is EventKind.RESET and events[-1].reset_reason is ControlChannelTriggerResetReason.RECONNECTED
    assert events[-1].websocket is ws


# --- bounded queue ----------------------------------------------------------------------------------


def test_queue_back_pressure_loses_nothing(rt: Runtime, server) -> None:
    rt.event_queue_limit = 100
    ws = MessageWebSocket(rt)
    n = 2000
    ws.connect(server.url(f"/push?n={n}&size=64&interval_ms=0&type=text"), timeout=5.0)
    time.sleep(2.0)  # the app does not read
    # back-pressure: the runtime stopped reading the socket at the limit (measured: exactly 100)
    assert ws.statistics.messages_received <= 2 * rt.event_queue_limit, ws.statistics
    events = collect(rt, EventKind.PUSH_NOTIFICATION, n, timeout=30.0)
    texts = [e.text or "" for e in events]
    assert [t.rstrip(".") for t in texts] == [f"msg {i}" for i in range(n)]
    assert rt.next_event(timeout=0.3) is None


# --- suspend ------------------------------------------------------------------------------------------


def test_simulate_suspend_probes_a_healthy_channel_without_an_event(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/echo"), interval=3600.0)
    before = ch.statistics
    rt.simulate_suspend(600.0)  # "the machine slept for 10 minutes"
    deadline = time.monotonic() + 3.0
    while ch.statistics.keepalives_acked <= before.keepalives_acked and time.monotonic() < deadline:
        time.sleep(0.05)
    after = ch.statistics
    assert after.keepalives_sent == before.keepalives_sent + 1, (before, after)
    assert after.keepalives_acked == before.keepalives_acked + 1 and after.last_rtt > 0
    assert rt.next_event(timeout=0.5) is None  # healthy: nothing to report
    assert ws.state is WebSocketState.OPEN


def test_simulate_suspend_finds_a_dead_transport_and_reconnects(rt: Runtime, server) -> None:
    # /nopong never answers: the probe's pong times out and the policy reconnects at once.
    ka = WebSocketKeepAlive(pong_timeout=0.5)
    ch, ws = open_channel(rt, server.url("/nopong"), interval=3600.0, keepalive=ka)
    ch.reconnect_policy = ReconnectPolicy(initial_delay=5.0, max_delay=30.0)
    t0 = time.monotonic()
    rt.simulate_suspend(600.0)
    seen = _reconnecting_then_reset(rt, ch, timeout=5.0)
    assert seen[-1].reset_reason is ControlChannelTriggerResetReason.LOW_POWER_EXIT, seen
    assert time.monotonic() - t0 < 3.0  # no backoff wait for a probe-found loss
    assert seen[-1].websocket is ws and ws.state is WebSocketState.OPEN
    assert ch.statistics.reconnects == 1


def test_sends_from_the_reset_callback_go_before_the_backlog(rt: Runtime, peer: RestartablePeer) -> None:
    ch, ws = open_channel(rt, peer.url(), interval=60.0)
    ch.reconnect_policy = FAST
    seen: List[Event] = []

    def on_event(ev: Event) -> None:
        seen.append(ev)
        if ev.kind is EventKind.RESET:
            ws.send("resubscribe")  # re-authenticate / re-subscribe first

    ch.on_event = on_event
    deadline = time.monotonic() + 3.0
    while not any(e.kind is EventKind.PUSH_NOTIFICATION for e in seen) and time.monotonic() < deadline:
        time.sleep(0.02)
    peer.stop()
    while not any(e.kind is EventKind.RECONNECTING for e in seen) and time.monotonic() < deadline + 3.0:
        time.sleep(0.02)
    assert any(e.kind is EventKind.RECONNECTING for e in seen), seen
    ws.send("backlog 1")
    ws.send("backlog 2")
    peer.start()
    got = peer.wait_received(3, 5.0)
    time.sleep(0.3)
    assert got == ["resubscribe", "backlog 1", "backlog 2"] == peer.received, (got, seen)
    resets = [e for e in seen if e.kind is EventKind.RESET]
    assert len(resets) == 1 and resets[0].reset_reason is ControlChannelTriggerResetReason.RECONNECTED
    rt.check_callback_errors()
