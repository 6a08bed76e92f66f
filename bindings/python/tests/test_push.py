"""Push notifications: every message exactly once, in order, per channel."""

from __future__ import annotations

import struct
import threading
import time
from typing import List

from conftest import collect, open_channel, wait_event
from ctrlchan import Event, EventKind, MessageWebSocket, Runtime, SocketMessageType

N = 1000


def test_1000_text_pushes_in_order_from_the_queue(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url(f"/push?n={N}&size=64&type=text"))
    evs = collect(rt, EventKind.PUSH_NOTIFICATION, N, timeout=30.0)
    assert all(e.channel is ch and e.message_type is SocketMessageType.UTF8 for e in evs)
    got = [e.text for e in evs]
    want = [(f"msg {i}" + "." * 64)[:64] for i in range(N)]
    assert got == want
    extra = [e for e in rt.events(timeout=0.3) if e.kind is EventKind.PUSH_NOTIFICATION]
    assert extra == []
    assert ws.statistics.messages_received == N


def test_1000_binary_pushes_in_order_through_a_callback(rt: Runtime, server) -> None:
    got: List[Event] = []
    done = threading.Event()
    threads = set()

    def handler(ev: Event) -> None:
        threads.add(threading.get_ident())
        if ev.kind is EventKind.PUSH_NOTIFICATION:
            got.append(ev)
            if len(got) == N:
                done.set()

    ws = MessageWebSocket(rt)
    from ctrlchan import ControlChannelTrigger

    ch = ControlChannelTrigger(rt, "cb", server_keepalive_interval=30.0)
    ch.on_event = handler
    ch.using_transport(ws)
    ws.connect(server.url(f"/push?n={N}&size=16&type=binary"), timeout=5.0)
    ch.wait_for_push_enabled()
    assert done.wait(30.0), f"{len(got)} of {N} pushes"
    time.sleep(0.2)
    assert len(got) == N  # exactly once
    indices = [struct.unpack(">I", e.data[:4])[0] for e in got]
    assert indices == list(range(N))
    assert all(len(e.data) == 16 and e.message_type is SocketMessageType.BINARY for e in got)
    assert all(e.channel is ch for e in got)
    assert threading.get_ident() not in threads  # delivered on the runtime thread
    assert rt.next_event(timeout=0.1) is None  # nothing leaked into the queue


def test_two_channels_keep_their_own_order(rt: Runtime, server) -> None:
    a, _ = open_channel(rt, server.url("/push?n=300&type=text"), "a")
    b, _ = open_channel(rt, server.url("/push?n=300&type=text"), "b")
    evs = collect(rt, EventKind.PUSH_NOTIFICATION, 600, timeout=30.0)
    for ch in (a, b):
        mine = [e.text for e in evs if e.channel is ch]
        assert mine == [f"msg {i}" for i in range(300)]


def test_paced_pushes_arrive_promptly(rt: Runtime, server) -> None:
    ch, _ = open_channel(rt, server.url("/push?n=10&interval_ms=50&type=text"))
    start = time.monotonic()
    evs = collect(rt, EventKind.PUSH_NOTIFICATION, 10, timeout=5.0)
    assert [e.text for e in evs] == [f"msg {i}" for i in range(10)]
    assert time.monotonic() - start < 2.0


def test_event_fields_for_push(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/big?size=100&type=text"))
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION])
    assert ev.text == "x" * 100 and ev.close_code == 0 and ev.reason == "" and ev.rtt == 0.0
    assert "PUSH_NOTIFICATION" in repr(ev) and "100 bytes" in repr(ev)
