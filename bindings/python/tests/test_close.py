"""Close codes and reasons, both directions; oversized messages; channel close.

``ws.close(code, reason)`` sends the close frame and frees the websocket at once: the
library finishes the handshake in the background and delivers no event for a freed
websocket, so client-initiated closes are checked at the peer (``recording_server``).
"""

from __future__ import annotations

import json
import time

import pytest

from close_peers import unique_path
from conftest import open_channel, wait_event
from ctrlchan import EventKind, EventMask, InvalidArgumentError, MessageWebSocket, Runtime, WebSocketState

ENDINGS = [EventKind.TRANSPORT_DISCONNECTED, EventKind.CLOSED]


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    return bool(predicate())


@pytest.mark.parametrize("code,reason", [(1000, ""), (1001, "going away"), (4001, "bye"), (4999, "é" * 10)])
def test_server_initiated_close(rt: Runtime, server, code: int, reason: str) -> None:
    from urllib.parse import quote

    ch, ws = open_channel(rt, server.url(f"/close?code={code}&reason={quote(reason)}&after_ms=50"))
    ev = wait_event(rt, ENDINGS, timeout=5.0)
    assert ev.kind is EventKind.CLOSED
    assert (ev.close_code, ev.reason) == (code, reason)
    assert ev.channel is ch and ev.websocket is ws
    # The library may report CLOSING for a moment after the CLOSED event was queued.
    assert wait_until(lambda: ws.state is WebSocketState.CLOSED, 2.0), ws.state
    later = [e for e in rt.events(timeout=0.5) if e.kind in ENDINGS]
    assert later == []


@pytest.mark.parametrize("code,reason", [(1000, "done"), (4002, "client says bye")])
def test_client_initiated_close(rt: Runtime, recording_server, code: int, reason: str) -> None:
    path = unique_path()
    ch, ws = open_channel(rt, recording_server.url(path))
    ws.close(code, reason)
    assert ws.closed
    with pytest.raises(ValueError, match="closed"):
        ws.send("after close")
    # The peer got our close frame with the code and reason.
    closed = recording_server.wait_closed(path, timeout=10.0)
    assert closed.close_frame_received and (closed.code, closed.reason) == (code, reason)
    # Freed at once: no event of the websocket follows (the channel sees none either).
    assert [e for e in rt.events(timeout=0.5) if e.kind in ENDINGS] == []
    assert not ch.closed
    ws.close()  # idempotent


def test_default_close_is_1000(rt: Runtime, recording_server) -> None:
    path = unique_path()
    _, ws = open_channel(rt, recording_server.url(path))
    ws.close()
    closed = recording_server.wait_closed(path, timeout=10.0)
    assert (closed.code, closed.reason) == (1000, "")


@pytest.mark.parametrize("code", [0, 999, 1005, 1006, 1015, 5000, 70000, -1])
def test_invalid_close_codes_are_rejected_and_the_socket_stays_open(rt: Runtime, server, code: int) -> None:
    _, ws = open_channel(rt, server.url("/echo"))
    with pytest.raises(InvalidArgumentError):
        ws.close(code, "x")
    assert not ws.closed
    ws.send("still open")
    assert wait_event(rt, [EventKind.PUSH_NOTIFICATION]).text == "still open"


def test_close_reason_too_long(rt: Runtime, server) -> None:
    _, ws = open_channel(rt, server.url("/echo"))
    with pytest.raises(InvalidArgumentError):
        ws.close(1000, "r" * 124)  # a close frame payload is at most 125 bytes
    assert ws.state is WebSocketState.OPEN


def test_oversized_incoming_message_closes_with_1009(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    ws.control.max_message_size = 1000
    ws.connect(server.url("/big?size=5000"), timeout=5.0)
    ev = wait_event(rt, ENDINGS + [EventKind.PUSH_NOTIFICATION], timeout=5.0)
    assert ev.kind is EventKind.CLOSED, ev
    assert ev.close_code == 1009


def test_message_at_the_limit_is_delivered(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    ws.control.max_message_size = 5000
    ws.connect(server.url("/big?size=5000"), timeout=5.0)
    ev = wait_event(rt, ENDINGS + [EventKind.PUSH_NOTIFICATION], timeout=5.0)
    assert ev.kind is EventKind.PUSH_NOTIFICATION and len(ev.data) == 5000


def test_channel_close_stops_keepalives(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/count"), interval=0.3, event_mask=EventMask.ALL)
    wait_event(rt, [EventKind.KEEPALIVE], timeout=3.0)
    ch.close()
    assert ch.closed
    ch.close()  # idempotent
    with pytest.raises(ValueError, match="ControlChannelTrigger is closed"):
        ch.wait_for_push_enabled()
    list(rt.events(timeout=1.0))
    # The transport itself stays open: ask the peer how many pings came after the close.
    ws.send("stats")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=5.0)
    first = json.loads(ev.text or "")["pings"]
    list(rt.events(timeout=1.0))
    ws.send("stats")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=5.0)
    assert json.loads(ev.text or "")["pings"] == first
