"""Objects with an ``on_event`` handler are garbage-collected like every other object (issue 13,
defect 14): the handler registration never keeps its channel or websocket alive, even when the
handler refers back to it."""

from __future__ import annotations

import gc
import os
from typing import List

from conftest import PeerServer, open_channel

from ctrlchan import ControlChannelTrigger, Event, Runtime
from ctrlchan._callbacks import live_slot_count


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Listener:
    """A handler that refers back to its channel (the cycle that used to leak)."""

    def __init__(self, ch: ControlChannelTrigger) -> None:
        self.ch = ch
        self.seen: List[Event] = []

    def __call__(self, ev: Event) -> None:
        self.seen.append(ev)


def test_twenty_thousand_dropped_channels_with_handlers_are_freed(rt: Runtime) -> None:
    gc.collect()
    slots = live_slot_count()
    for i in range(20_000):
        ch = ControlChannelTrigger(rt, f"gc{i}", server_keepalive_interval=30.0)
        ch.on_event = _Listener(ch)
        del ch
        if i % 5000 == 4999:
            gc.collect()
    gc.collect()
    assert live_slot_count() <= slots, "handler registrations of dropped channels were freed"
    assert len(rt._children) < 100, f"{len(rt._children)} native channels still alive"


def test_dropped_connected_channels_with_handlers_release_their_sockets(rt: Runtime, server: PeerServer) -> None:
    gc.collect()
    before = _fds()
    for i in range(300):
        ch, ws = open_channel(rt, server.url("/echo"), channel_id=f"conn{i}")
        ch.on_event = _Listener(ch)
        ws.on_event = lambda ev, ws=ws: None
        del ch, ws
    gc.collect()
    # The sockets close in the background after the objects went.
    import time

    deadline = time.monotonic() + 10
    while _fds() > before + 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _fds() <= before + 20, f"{_fds() - before} fds still open after dropping 300 channels"
