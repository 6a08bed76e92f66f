"""asyncio: ``async for ev in rt.aevents()`` driven by the runtime's event fd."""

from __future__ import annotations

import asyncio
import select
import time
from typing import List

import pytest

from conftest import open_channel
from ctrlchan import Event, EventKind, Runtime


def test_aevents_in_order_without_blocking_the_loop(rt: Runtime, server) -> None:
    ch, _ = open_channel(rt, server.url("/push?n=200&interval_ms=2&type=text"))

    async def main() -> List[str]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set() and ticks < 100_000:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.ensure_future(ticker())
        texts: List[str] = []
        async for ev in rt.aevents(timeout=20.0):
            assert isinstance(ev, Event)
            if ev.kind is EventKind.PUSH_NOTIFICATION:
                assert ev.channel is ch
                texts.append(ev.text or "")
                if len(texts) == 200:
                    break
        stop.set()
        await task
        assert ticks > 50  # the loop kept running while we waited
        return texts

    assert asyncio.run(main()) == [f"msg {i}" for i in range(200)]


def test_aevents_timeout_and_idle_timeout(rt: Runtime) -> None:
    async def main() -> None:
        t0 = time.monotonic()
        got = [ev async for ev in rt.aevents(timeout=0.3)]
        assert got == []
        assert 0.25 <= time.monotonic() - t0 < 2.0
        t0 = time.monotonic()
        got = [ev async for ev in rt.aevents(idle_timeout=0.2)]
        assert got == [] and 0.15 <= time.monotonic() - t0 < 2.0

    asyncio.run(main())


def test_closing_the_runtime_ends_aevents(server) -> None:
    rt = Runtime()
    open_channel(rt, server.url("/echo"))

    async def main() -> float:
        async def closer() -> None:
            await asyncio.sleep(0.2)
            rt.close()

        task = asyncio.ensure_future(closer())
        t0 = time.monotonic()
        async for _ in rt.aevents(timeout=10.0):
            pass
        await task
        return time.monotonic() - t0

    assert asyncio.run(main()) < 2.0
    assert rt.closed


def test_aevents_reraises_handler_exceptions(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/echo"))

    def handler(ev: Event) -> None:
        raise RuntimeError("handler failed")

    ch.on_event = handler
    ws.send("x")

    async def main() -> None:
        async for _ in rt.aevents(timeout=5.0):
            pass

    with pytest.raises(RuntimeError, match="handler failed"):
        asyncio.run(main())


def test_event_fd_is_readable_exactly_while_events_are_queued(rt: Runtime, server) -> None:
    fd = rt.event_fd
    assert fd >= 0 and rt.fileno() == fd
    assert select.select([fd], [], [], 0)[0] == []  # nothing queued yet
    _, ws = open_channel(rt, server.url("/echo"))
    ws.send("a")
    assert select.select([rt], [], [], 5.0)[0] == [rt]
    ev = rt.next_event(timeout=0)
    assert ev is not None and ev.text == "a"
    # Drained: no longer readable (no busy loop for poll/epoll users).
    assert select.select([fd], [], [], 0.05)[0] == []
    ws.send("b")
    ws.send("c")
    deadline = time.monotonic() + 5.0
    while rt.statistics.messages_received < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert select.select([fd], [], [], 0)[0] == [fd]
    assert rt.next_event(0) is not None
    assert select.select([fd], [], [], 0)[0] == [fd]  # still one queued
    assert rt.next_event(0) is not None
    assert select.select([fd], [], [], 0.05)[0] == []
