"""Event handlers: runtime thread, routing, exceptions never lost, no leaks, lifetime."""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from typing import List

import pytest

from conftest import open_channel, wait_event
from ctrlchan import (
    ControlChannelTrigger,
    Event,
    EventKind,
    InvalidStateError,
    MessageWebSocket,
    Runtime,
    _callbacks,
)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def connect_with_handler(rt: Runtime, url: str, handler, channel_id: str = "cb"):
    ws = MessageWebSocket(rt)
    ch = ControlChannelTrigger(rt, channel_id, server_keepalive_interval=30.0)
    ch.on_event = handler
    ch.using_transport(ws)
    ws.connect(url, timeout=5.0)
    ch.wait_for_push_enabled()
    return ch, ws


def test_handler_runs_on_the_runtime_thread_with_the_channel_object(rt: Runtime, server) -> None:
    got: List[Event] = []
    threads = []

    def handler(ev: Event) -> None:
        threads.append(threading.current_thread())
        got.append(ev)

    ch, ws = connect_with_handler(rt, server.url("/echo"), handler)
    assert ch.on_event is handler
    ws.send("ping me")
    assert wait_until(lambda: any(e.kind is EventKind.PUSH_NOTIFICATION for e in got))
    ev = next(e for e in got if e.kind is EventKind.PUSH_NOTIFICATION)
    assert ev.channel is ch and ev.text == "ping me"
    assert threads[0] is not threading.main_thread()
    assert rt.next_event(timeout=0.2) is None  # the handler took it, not the queue


def test_routing_channel_handler_beats_websocket_handler(rt: Runtime, server) -> None:
    by_channel: List[Event] = []
    by_ws: List[Event] = []
    ws = MessageWebSocket(rt)
    ws.on_event = by_ws.append
    ch = ControlChannelTrigger(rt, "route", server_keepalive_interval=30.0)
    ch.on_event = by_channel.append
    ch.using_transport(ws)
    ws.connect(server.url("/echo"), timeout=5.0)
    ch.wait_for_push_enabled()
    ws.send("one")
    assert wait_until(lambda: len(by_channel) >= 1)
    ch.on_event = None  # removed: the websocket's handler is next
    assert ch.on_event is None
    ws.send("two")
    assert wait_until(lambda: len(by_ws) >= 1)
    ws.on_event = None  # removed: the runtime queue is last
    ws.send("three")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION])
    assert [e.text for e in by_channel] == ["one"]
    assert [e.text for e in by_ws] == ["two"]
    assert ev.text == "three"


def test_raising_handler_is_logged_and_reraised_not_lost(rt: Runtime, server, caplog) -> None:
    calls: List[str] = []

    def handler(ev: Event) -> None:
        if ev.kind is EventKind.PUSH_NOTIFICATION:
            calls.append(ev.text or "")
            raise ZeroDivisionError(f"boom on {ev.text}")

    caplog.set_level(logging.ERROR, logger="ctrlchan")
    ch, ws = connect_with_handler(rt, server.url("/echo"), handler)
    ws.send("a")
    ws.send("b")
    assert wait_until(lambda: len(calls) == 2)  # the runtime survived the first exception
    assert wait_until(lambda: len(rt.pending_callback_errors) == 2)
    assert sum("exception in the ControlChannelTrigger.on_event handler" in r.getMessage() for r in caplog.records) == 2
    assert all(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)

    with pytest.raises(ZeroDivisionError, match="boom on a"):
        rt.next_event(timeout=0)
    with pytest.raises(ZeroDivisionError, match="boom on b"):
        rt.check_callback_errors()
    rt.check_callback_errors()  # each one is raised once
    assert rt.next_event(timeout=0) is None
    # The channel still works after its handler raised.
    ch.on_event = None
    ws.send("c")
    assert wait_event(rt, [EventKind.PUSH_NOTIFICATION]).text == "c"


def test_handler_exception_reraised_by_events_iterator(rt: Runtime, server) -> None:
    def handler(ev: Event) -> None:
        raise KeyError("in handler")

    ch, ws = connect_with_handler(rt, server.url("/echo"), handler)
    ws.send("x")
    with pytest.raises(KeyError):
        for _ in rt.events(timeout=5.0):
            pass
        # events() only ends by timeout if nothing was re-raised
        raise AssertionError("not re-raised")


def test_blocking_calls_inside_a_handler_are_invalid_state(rt: Runtime, server) -> None:
    outcomes: List[BaseException] = []
    done = threading.Event()

    def handler(ev: Event) -> None:
        if ev.kind is not EventKind.PUSH_NOTIFICATION or done.is_set():
            return
        calls = (
            lambda: rt.next_event(0.1),
            lambda: ev.channel.flush_transport(1.0),  # type: ignore[union-attr]
            lambda: MessageWebSocket(rt).connect(server.url("/echo"), timeout=1.0),  # refused by the library
            rt.close,
        )
        for call in calls:
            try:
                call()
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                outcomes.append(exc)
        done.set()

    ch, ws = connect_with_handler(rt, server.url("/echo"), handler)
    ws.send("x")
    assert done.wait(5.0)
    assert [type(e) for e in outcomes] == [InvalidStateError] * 4, outcomes
    assert not rt.closed


def test_handler_released_on_close_replace_and_runtime_close(rt: Runtime, server) -> None:
    base = _callbacks.live_slot_count()

    class Handler:
        def __call__(self, ev: Event) -> None:
            pass

    h1, h2, h3 = Handler(), Handler(), Handler()
    r1, r2, r3 = weakref.ref(h1), weakref.ref(h2), weakref.ref(h3)
    ch, ws = connect_with_handler(rt, server.url("/echo"), h1)
    ch.on_event = h2  # replacing finalizes the first registration
    ws.on_event = h3
    del h1, h2, h3
    assert wait_until(lambda: (gc.collect(), r1() is None)[1])
    assert r2() is not None and r3() is not None
    assert _callbacks.live_slot_count() == base + 2
    ch.close()
    ws.close()
    assert wait_until(lambda: (gc.collect(), r2() is None and r3() is None)[1])
    assert wait_until(lambda: _callbacks.live_slot_count() == base)


def test_channel_with_handler_is_collected_without_user_references(server) -> None:
    """The handler does not keep its channel alive (issue 13): a dropped channel is collected,
    and that frees the native channel and its handler registration."""
    got: List[bytes] = []
    rt = Runtime()
    base = _callbacks.live_slot_count()
    # The handler keeps the payloads only: an Event refers to its channel (by design), so keeping
    # events would keep the channel alive and test nothing about the handler.
    ch, ws = connect_with_handler(rt, server.url("/push?n=5&interval_ms=100&type=text"), lambda ev: got.append(ev.data))
    ch_ref = weakref.ref(ch)
    del ch
    assert wait_until(lambda: (gc.collect(), ch_ref() is None)[1])
    assert wait_until(lambda: _callbacks.live_slot_count() <= base)
    rt.close()
    del got, ws


def test_many_channels_with_handlers_from_one_runtime(rt: Runtime, server) -> None:
    counts = {}
    lock = threading.Lock()

    def make(i: int):
        def handler(ev: Event) -> None:
            if ev.kind is EventKind.PUSH_NOTIFICATION:
                with lock:
                    counts[ev.channel_id] = counts.get(ev.channel_id, 0) + 1
                assert ev.channel is not None and ev.channel.channel_id == f"ch{i}"

        return handler

    pairs = [connect_with_handler(rt, server.url("/push?n=20&type=text"), make(i), f"ch{i}") for i in range(50)]
    assert wait_until(lambda: sum(counts.values()) == 50 * 20, timeout=20.0)
    assert counts == {f"ch{i}": 20 for i in range(50)}
    rt.check_callback_errors()  # no handler assertion failed
    assert len(pairs) == 50


def test_concurrent_senders_with_a_handler_on_the_runtime_thread(rt: Runtime, server) -> None:
    """Python threads send while the runtime thread calls back into Python: GIL hand-offs."""
    got: List[str] = []
    lock = threading.Lock()

    def handler(ev: Event) -> None:
        if ev.kind is EventKind.PUSH_NOTIFICATION:
            with lock:
                got.append(ev.text or "")

    ch, ws = connect_with_handler(rt, server.url("/echo"), handler)

    def sender(t: int) -> None:
        for i in range(250):
            ws.send(f"{t}:{i}")

    threads = [threading.Thread(target=sender, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert wait_until(lambda: len(got) == 1000, timeout=20.0), len(got)
    for t in range(4):  # each thread's messages stay in order
        mine = [int(s.split(":")[1]) for s in got if s.startswith(f"{t}:")]
        assert mine == list(range(250))
    rt.check_callback_errors()
