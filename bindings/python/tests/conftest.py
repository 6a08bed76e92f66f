"""Shared fixtures: the third-party `websockets` peer (tests/peer), a runtime per test, helpers."""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "peer"))

import ctrlchan  # noqa: E402
from ctrlchan import (  # noqa: E402
    ControlChannelTrigger,
    ControlChannelTriggerResourceType,
    ControlChannelTriggerStatus,
    Event,
    EventKind,
    EventMask,
    MessageWebSocket,
    Runtime,
    WebSocketKeepAlive,
)
from close_peers import RecordingServer, SilentServer  # noqa: E402
from peer import PeerServer, start_proxy, start_server  # noqa: E402

__all__ = ["REPO", "wait_event", "collect", "open_channel", "start_proxy", "start_server"]


def pytest_report_header(config: pytest.Config) -> List[str]:
    return [
        f"ctrlchan package: {Path(ctrlchan.__file__).parent}",
        f"ctrlchan library: {ctrlchan.library_path()} (version {ctrlchan.library_version()})",
    ]


@pytest.fixture(scope="session")
def server() -> Iterator[PeerServer]:
    """One plain ws:// peer for the whole session (every path is stateless per connection)."""
    with start_server() as srv:
        yield srv


@pytest.fixture(scope="session")
def tls_server() -> Iterator[PeerServer]:
    with start_server(tls=True) as srv:
        yield srv


@pytest.fixture(scope="session")
def recording_server() -> Iterator[RecordingServer]:
    """An in-process websockets echo peer that records the close frame of each connection."""
    srv = RecordingServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A peer that completes the handshake and then never answers anything (not even a close)."""
    srv = SilentServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime()
    try:
        yield runtime
    finally:
        runtime.close()
        gc.collect()


def wait_event(
    rt: Runtime,
    kinds: Iterable[EventKind],
    timeout: float = 5.0,
    channel: Optional[ControlChannelTrigger] = None,
    skipped: Optional[List[Event]] = None,
) -> Event:
    """The first queued event of one of `kinds` (for `channel`, if given); others go to `skipped`."""
    wanted = set(kinds)
    deadline = time.monotonic() + timeout
    seen: List[Event] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {sorted(k.name for k in wanted)} event within {timeout} s; saw {seen[-10:]}")
        ev = rt.next_event(timeout=left)
        if ev is None:
            continue
        if ev.kind in wanted and (channel is None or ev.channel is channel):
            return ev
        seen.append(ev)
        if skipped is not None:
            skipped.append(ev)


def collect(rt: Runtime, kind: EventKind, count: int, timeout: float) -> List[Event]:
    """`count` events of `kind` from the queue (others skipped), failing after `timeout` s."""
    out: List[Event] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"got {len(out)} of {count} {kind.name} events within {timeout} s")
        ev = rt.next_event(timeout=left)
        if ev is not None and ev.kind is kind:
            out.append(ev)
    return out


def open_channel(
    rt: Runtime,
    url: str,
    channel_id: str = "channelOne",
    interval: float = 30.0,
    resource_type: ControlChannelTriggerResourceType = ControlChannelTriggerResourceType.REQUEST_SOFTWARE_SLOT,
    keepalive: Optional[WebSocketKeepAlive] = None,
    expect: Optional[ControlChannelTriggerStatus] = ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED,
    event_mask: Optional[EventMask] = None,
) -> Tuple[ControlChannelTrigger, MessageWebSocket]:
    """The Windows flow: websocket, channel, keep-alive, using_transport, connect, wait_for_push_enabled.

    ``event_mask`` (set on the channel before connecting): ``None`` keeps the library default,
    which has no KEEPALIVE events; tests that wait for them pass ``EventMask.ALL``.
    """
    ws = MessageWebSocket(rt)
    ch = ControlChannelTrigger(rt, channel_id, server_keepalive_interval=interval, resource_type=resource_type)
    if event_mask is not None:
        ch.event_mask = event_mask
    if keepalive is not None:
        ch.keepalive = keepalive
    ch.using_transport(ws)
    ws.connect(url, timeout=5.0)
    status = ch.wait_for_push_enabled()
    if expect is not None:
        assert status is expect
    return ch, ws
