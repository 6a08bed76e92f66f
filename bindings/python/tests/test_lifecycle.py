"""Object lifetime: idempotent close, context managers, garbage collection, exit with live objects."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path

from close_peers import unique_path
from conftest import REPO, open_channel
from ctrlchan import (
    ControlChannelTrigger,
    EventKind,
    MessageWebSocket,
    Runtime,
    StreamWebSocket,
    WebSocketKeepAlive,
)


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_context_managers_return_self_and_close() -> None:
    with Runtime() as rt:
        with MessageWebSocket(rt) as ws, StreamWebSocket(rt) as sws:
            assert isinstance(ws, MessageWebSocket) and isinstance(sws, StreamWebSocket)
        assert ws.closed and sws.closed
        with ControlChannelTrigger(rt, "cm", server_keepalive_interval=30.0) as ch:
            assert ch.channel_id == "cm"
        assert ch.closed
        with WebSocketKeepAlive() as ka:
            assert not ka.closed
        assert ka.closed
    assert rt.closed


def test_runtime_is_freed_by_garbage_collection_and_its_thread_ends() -> None:
    gc.collect()
    before = os_threads()
    rt = Runtime()
    ref = weakref.ref(rt)
    assert wait_until(lambda: os_threads() > before)  # the reactor thread
    del rt
    gc.collect()
    assert ref() is None
    assert wait_until(lambda: os_threads() == before), (os_threads(), before)


def test_websocket_is_freed_by_garbage_collection(server) -> None:
    rt = Runtime()
    try:
        ws = MessageWebSocket(rt)
        ws.connect(server.url("/echo"), timeout=5.0)
        assert rt.statistics.connections_open == 1
        ref = weakref.ref(ws)
        del ws
        gc.collect()
        assert ref() is None
        assert wait_until(lambda: rt.statistics.connections_open == 0)
        assert rt._children == {}
    finally:
        rt.close()


def test_unreachable_cycle_of_runtime_and_children_is_collected(server) -> None:
    gc.collect()
    before = os_threads()

    def make() -> weakref.ref:
        rt = Runtime()
        ch, ws = open_channel(rt, server.url("/echo"))
        ws.cycle = (rt, ch)  # type: ignore[attr-defined]
        return weakref.ref(rt)

    ref = make()
    gc.collect()
    assert ref() is None
    assert wait_until(lambda: os_threads() == before)


def test_closed_websocket_finishes_its_close_handshake_in_the_background(rt: Runtime, recording_server) -> None:
    path = unique_path()
    ch, ws = open_channel(rt, recording_server.url(path))
    ws.close(4000, "later")
    del ws
    gc.collect()
    closed = recording_server.wait_closed(path, timeout=10.0)
    assert (closed.code, closed.reason) == (4000, "later")
    # The native handle was freed by close(): the runtime owns only the channel now, the
    # connection is gone, and no event of the freed websocket reaches the queue.
    assert len(rt._children) == 1
    assert wait_until(lambda: rt.statistics.connections_open == 0)
    assert [ev for ev in rt.events(timeout=0.3) if ev.kind in (EventKind.CLOSED, EventKind.TRANSPORT_DISCONNECTED)] == []
    assert not ch.closed


def test_concurrent_close_from_many_threads(server) -> None:
    rt = Runtime()
    chans = [open_channel(rt, server.url("/echo"), f"c{i}") for i in range(10)]
    errors = []

    def closer() -> None:
        try:
            for ch, ws in chans:
                ch.close()
                ws.close()
            rt.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=closer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert rt.closed and all(ch.closed and ws.closed for ch, ws in chans)


def test_interpreter_exit_with_live_objects_and_handlers(server) -> None:
    """Exit without closing anything, with a handler busy on the runtime thread: clean, no hang."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from ctrlchan import Runtime, MessageWebSocket, ControlChannelTrigger
        rt = Runtime()
        ws = MessageWebSocket(rt)
        ch = ControlChannelTrigger(rt, "exit", server_keepalive_interval=0.2)
        ch.on_event = lambda ev: time.sleep(0.001)
        ch.using_transport(ws)
        ws.connect({server.url("/push?n=100000&interval_ms=1")!r}, timeout=5.0)
        ch.wait_for_push_enabled()
        time.sleep(0.3)
        print("leaving")
        """
    )
    env = dict(os.environ)
    pkg_parent = str(Path(sys.modules["ctrlchan"].__file__).parent.parent)  # type: ignore[arg-type]
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, cwd=str(REPO)
    )
    assert proc.returncode == 0, proc.stderr
    assert "leaving" in proc.stdout
    assert "Fatal Python error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
