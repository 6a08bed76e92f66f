"""1 000 channels from one runtime, each a real connection to the websockets peer."""

from __future__ import annotations

import resource
import time
from typing import Iterator

import pytest

from conftest import collect, start_server
from ctrlchan import (
    ControlChannelTrigger,
    ControlChannelTriggerStatus,
    EventKind,
    MessageWebSocket,
    Runtime,
)

N = 1000


@pytest.fixture
def big_server() -> Iterator[object]:
    """A dedicated peer, started after raising the fd limit (the child inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2 * N + 200:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is too low for {N} connections")
    try:
        with start_server() as srv:
            yield srv
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.timeout(300)
def test_1000_channels_one_runtime(big_server) -> None:
    url = big_server.url("/echo")  # type: ignore[attr-defined]
    rt = Runtime()
    try:
        t0 = time.monotonic()
        channels = []
        for i in range(N):
            ws = MessageWebSocket(rt)
            ch = ControlChannelTrigger(rt, f"ch{i:04d}", server_keepalive_interval=600.0)
            ch.using_transport(ws)
            ws.connect(url, timeout=10.0)
            assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED
            channels.append((ch, ws))
        setup = time.monotonic() - t0
        # connections_open is counted by the reactor thread: it may trail connect() briefly.
        deadline = time.monotonic() + 5.0
        while rt.statistics.connections_open < N and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = rt.statistics
        assert stats.channels_active == N and stats.connections_open == N

        # Every channel answers, and each echo comes back on its own channel.
        for i, (ch, ws) in enumerate(channels):
            ws.send(f"hello {i}")
        evs = collect(rt, EventKind.PUSH_NOTIFICATION, N, timeout=60.0)
        assert sorted(e.channel_id for e in evs) == [f"ch{i:04d}" for i in range(N)]
        assert all(e.channel is not None and e.text == f"hello {int(e.channel_id[2:])}" for e in evs)

        # Idle: no keep-alive is due for 10 minutes, so the reactor stays asleep.
        before = rt.statistics.wakeups
        time.sleep(1.0)
        idle_wakeups = rt.statistics.wakeups - before
        assert idle_wakeups <= 5, idle_wakeups
        print(f"\n{N} channels: setup {setup:.2f} s, {idle_wakeups} wake-ups in 1 s idle")
    finally:
        t1 = time.monotonic()
        rt.close()
        assert time.monotonic() - t1 < 30.0
