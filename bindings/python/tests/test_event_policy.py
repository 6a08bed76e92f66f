"""One event policy, exactly the library's: each event goes to exactly one place, first match —
the channel's handler, else the websocket's handler, else the runtime's (native) queue.
A native handler exists only while a Python handler is set; nothing is queued or dropped in Python."""

from __future__ import annotations

import threading
import time
from typing import Callable, List

from conftest import collect
from ctrlchan import (
    ControlChannelTrigger,
    Event,
    EventKind,
    MessageWebSocket,
    Runtime,
    _callbacks,
)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def quiesced(sink: "Sink", quiet: float = 0.2, timeout: float = 5.0) -> List[str]:
    """The sink's texts once no call reached it for `quiet` s: a removed handler may still be
    finishing the call in progress when the setter returns (the finalizer runs after it)."""
    deadline = time.monotonic() + timeout
    last = sink.texts()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = sink.texts()
        if now == last:
            return now
        last = now
    raise AssertionError("a removed handler kept receiving events")


def pushes(got: List[Event]) -> List[str]:
    return [e.text or "" for e in got if e.kind is EventKind.PUSH_NOTIFICATION]


def queued_pushes(rt: Runtime, timeout: float = 0.3) -> List[str]:
    return [e.text or "" for e in rt.events(timeout=timeout) if e.kind is EventKind.PUSH_NOTIFICATION]


class Sink:
    """A handler that records what it got (thread-safe)."""

    def __init__(self) -> None:
        self.events: List[Event] = []
        self.lock = threading.Lock()

    def __call__(self, ev: Event) -> None:
        with self.lock:
            self.events.append(ev)

    def texts(self) -> List[str]:
        with self.lock:
            return pushes(list(self.events))


def bound_pair(rt: Runtime, url: str, channel_sink: object = None, ws_sink: object = None):
    ws = MessageWebSocket(rt)
    ch = ControlChannelTrigger(rt, "policy", server_keepalive_interval=30.0)
    if channel_sink is not None:
        ch.on_event = channel_sink  # type: ignore[assignment]
    if ws_sink is not None:
        ws.on_event = ws_sink  # type: ignore[assignment]
    ch.using_transport(ws)
    ws.connect(url, timeout=5.0)
    ch.wait_for_push_enabled()
    return ch, ws


def expected(n: int) -> List[str]:
    return [f"msg {i}" for i in range(n)]


def test_channel_handler_is_first_and_takes_every_event(rt: Runtime, server) -> None:
    by_channel, by_ws = Sink(), Sink()
    ch, ws = bound_pair(rt, server.url("/push?n=300&type=text"), by_channel, by_ws)
    assert wait_until(lambda: len(by_channel.texts()) == 300, timeout=10.0)
    assert by_channel.texts() == expected(300)
    assert all(e.channel is ch and e.websocket is ws for e in by_channel.events)
    assert by_ws.events == []  # not a second delivery to the websocket's handler
    assert queued_pushes(rt) == []  # nor to the queue
    assert by_ws.events == []


def test_websocket_handler_is_second(rt: Runtime, server) -> None:
    by_ws = Sink()
    ch, ws = bound_pair(rt, server.url("/push?n=300&type=text"), None, by_ws)
    assert wait_until(lambda: len(by_ws.texts()) == 300, timeout=10.0)
    assert by_ws.texts() == expected(300)
    assert all(e.channel is ch and e.websocket is ws for e in by_ws.events)  # still the channel's event
    assert queued_pushes(rt) == []


def test_websocket_handler_without_a_channel(rt: Runtime, server) -> None:
    by_ws = Sink()
    ws = MessageWebSocket(rt)
    ws.on_event = by_ws
    ws.connect(server.url("/push?n=50&type=text"), timeout=5.0)
    assert wait_until(lambda: len(by_ws.texts()) == 50)
    assert by_ws.texts() == expected(50)
    assert all(e.channel is None and e.websocket is ws for e in by_ws.events)
    assert queued_pushes(rt) == []


def test_removing_handlers_moves_the_stream_to_the_next_place_exactly_once_in_order(rt: Runtime, server) -> None:
    """A paced stream of 1000 pushes: the channel's handler is removed after 100, the
    websocket's after 100 more; the queue gets the rest. Together: every message once, in order."""
    n = 1000
    by_channel, by_ws = Sink(), Sink()
    ch, ws = bound_pair(rt, server.url(f"/push?n={n}&interval_ms=1&type=text"), by_channel, by_ws)
    assert wait_until(lambda: len(by_channel.texts()) >= 100, timeout=10.0)
    ch.on_event = None
    assert wait_until(lambda: len(by_ws.texts()) >= 100, timeout=10.0)
    ws.on_event = None
    first, second = quiesced(by_channel), quiesced(by_ws)
    rest = [e.text or "" for e in collect(rt, EventKind.PUSH_NOTIFICATION, n - len(first) - len(second), timeout=30.0)]
    assert len(first) >= 100 and len(second) >= 100 and len(rest) > 0, (len(first), len(second), len(rest))
    assert first + second + rest == expected(n)
    # Removed means removed: nothing more reached the handlers, nothing extra in the queue.
    assert by_channel.texts() == first and by_ws.texts() == second
    assert queued_pushes(rt) == []


def test_closing_the_channel_reroutes_its_transport(rt: Runtime, server) -> None:
    by_channel, by_ws = Sink(), Sink()
    ch, ws = bound_pair(rt, server.url("/echo"), by_channel, by_ws)
    ws.send("one")
    assert wait_until(lambda: by_channel.texts() == ["one"])
    ch.close()  # the transport stays open; its handler is next
    ws.send("two")
    assert wait_until(lambda: by_ws.texts() == ["two"])
    assert by_channel.texts() == ["one"]
    assert all(e.channel is None for e in by_ws.events if e.kind is EventKind.PUSH_NOTIFICATION)


def test_no_native_handler_while_none_is_set(rt: Runtime, server) -> None:
    base = _callbacks.live_slot_count()
    ws = MessageWebSocket(rt)
    ch = ControlChannelTrigger(rt, "quiet", server_keepalive_interval=30.0)
    ch.on_event = None  # removing what was never set: still nothing installed
    ws.on_event = None
    assert _callbacks.live_slot_count() == base
    ch.using_transport(ws)
    ws.connect(server.url("/echo"), timeout=5.0)
    ch.wait_for_push_enabled()
    ws.send("a")
    assert [e.text for e in collect(rt, EventKind.PUSH_NOTIFICATION, 1, timeout=5.0)] == ["a"]

    sink = Sink()
    ch.on_event = sink
    assert _callbacks.live_slot_count() == base + 1
    ws.send("b")
    assert wait_until(lambda: sink.texts() == ["b"])
    ch.on_event = None  # the library finalizes the registration: the slot is freed
    assert wait_until(lambda: _callbacks.live_slot_count() == base)
    ws.send("c")
    assert [e.text for e in collect(rt, EventKind.PUSH_NOTIFICATION, 1, timeout=5.0)] == ["c"]
    assert sink.texts() == ["b"]
    assert ch.on_event is None and ws.on_event is None


def test_20000_unsubscribed_pushes_wait_in_the_native_queue_and_come_back_in_order(rt: Runtime, server) -> None:
    n = 20_000
    ch, ws = bound_pair(rt, server.url(f"/push?n={n}&size=24&type=text"))
    # Read nothing until all of them arrived: the library's queue holds them.
    assert wait_until(lambda: ws.statistics.messages_received == n, timeout=60.0), ws.statistics
    got = collect(rt, EventKind.PUSH_NOTIFICATION, n, timeout=60.0)
    assert [e.text for e in got] == [(f"msg {i}" + "." * 24)[:24] for i in range(n)]
    assert all(e.channel is ch for e in got)
    assert queued_pushes(rt) == []
    assert ws.statistics.messages_received == n
