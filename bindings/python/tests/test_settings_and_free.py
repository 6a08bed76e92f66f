"""Settings are read back from the library (no Python copies); freeing an open websocket
returns at once and releases everything, even when the peer never answers the close."""

from __future__ import annotations

import gc
import time
from ctypes import byref, c_bool, c_char_p, c_size_t, c_uint32
from typing import Callable, List

import pytest

from conftest import open_channel
from ctrlchan import (
    ControlChannelTrigger,
    Event,
    EventKind,
    InvalidArgumentError,
    MessageWebSocket,
    Runtime,
    StreamWebSocket,
    _callbacks,
    _ffi,
)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def native_u32(fn_name: str, ptr: int) -> int:
    out = c_uint32()
    assert getattr(_ffi.lib, fn_name)(ptr, byref(out)) == 0
    return out.value


def native_protocols(ptr: int) -> List[str]:
    count = c_size_t()
    assert _ffi.lib.ctrlchan_websocket_get_supported_protocol_count(ptr, byref(count)) == 0
    out = []
    for i in range(count.value):
        s = c_char_p()
        assert _ffi.lib.ctrlchan_websocket_get_supported_protocol(ptr, i, byref(s)) == 0
        out.append(_ffi.decode(s.value))
    return out


# --- settings ------------------------------------------------------------------------------------


def test_runtime_settings_are_read_back_from_the_library() -> None:
    with Runtime() as rt:
        assert (rt.max_channels, rt.coalescing_window) == (65536, 3.0)  # the library's defaults
        assert rt.pong_settle == 0.05
        ptr = rt._handle()
        rt.pong_settle = 0.02
        assert rt.pong_settle == 0.02 and native_u32("ctrlchan_runtime_get_pong_settle", ptr) == 20
        assert _ffi.lib.ctrlchan_runtime_set_pong_settle(ptr, 0) == 0
        assert rt.pong_settle == 0.0
        with pytest.raises(InvalidArgumentError):
            rt.pong_settle = 2.0
        rt.pong_settle = 1.0
        assert rt.pong_settle == 1.0
    with Runtime(max_channels=7, coalescing_window=0.25) as rt:
        ptr = rt._handle()
        assert rt.max_channels == 7 == native_u32("ctrlchan_runtime_get_max_channels", ptr)
        assert rt.coalescing_window == 0.25
        assert native_u32("ctrlchan_runtime_get_coalescing_window", ptr) == 250
        rt.max_channels = 3
        rt.coalescing_window = 0.0014  # whole milliseconds in the library
        assert (rt.max_channels, rt.coalescing_window) == (3, 0.001)
        rt.coalescing_window = 0
        assert rt.coalescing_window == 0.0
        # Set behind the binding's back: the properties see it.
        assert _ffi.lib.ctrlchan_runtime_set_max_channels(ptr, 11) == 0
        assert _ffi.lib.ctrlchan_runtime_set_coalescing_window(ptr, 1500) == 0
        assert (rt.max_channels, rt.coalescing_window) == (11, 1.5)
        # Refused values change nothing.
        with pytest.raises(InvalidArgumentError):
            rt.max_channels = 0
        with pytest.raises(InvalidArgumentError):
            rt.pong_settle = 1.001
        with pytest.raises(InvalidArgumentError):
            rt.coalescing_window = 3601.0
        assert (rt.max_channels, rt.coalescing_window) == (11, 1.5)
    with pytest.raises(ValueError, match="closed"):
        rt.max_channels
    with pytest.raises(ValueError, match="closed"):
        rt.coalescing_window


@pytest.mark.parametrize("cls", [MessageWebSocket, StreamWebSocket])
def test_websocket_settings_are_read_back_from_the_library(rt: Runtime, cls) -> None:
    ws = cls(rt)
    ptr = ws._handle()
    control = ws.control
    assert control.outbound_buffer_limit == 16 * 1024 * 1024
    assert control.ignore_certificate_errors is False
    assert control.supported_protocols == ()

    control.outbound_buffer_limit = 12345
    assert control.outbound_buffer_limit == 12345 == native_u32("ctrlchan_websocket_get_outbound_buffer_limit", ptr)
    control.ignore_certificate_errors = True
    flag = c_bool()
    assert _ffi.lib.ctrlchan_websocket_get_ignore_certificate_errors(ptr, byref(flag)) == 0 and flag.value
    assert control.ignore_certificate_errors is True
    control.ignore_certificate_errors = False
    assert control.ignore_certificate_errors is False
    ws.add_supported_protocol("chat")
    ws.add_supported_protocol("superchat")
    assert control.supported_protocols == ("chat", "superchat") == tuple(native_protocols(ptr))

    # Set behind the binding's back: the properties see it.
    assert _ffi.lib.ctrlchan_websocket_set_outbound_buffer_limit(ptr, 999) == 0
    assert _ffi.lib.ctrlchan_websocket_set_ignore_certificate_errors(ptr, True) == 0
    assert _ffi.lib.ctrlchan_websocket_add_supported_protocol(ptr, b"v3") == 0
    assert control.outbound_buffer_limit == 999
    assert control.ignore_certificate_errors is True
    assert control.supported_protocols == ("chat", "superchat", "v3")

    with pytest.raises(InvalidArgumentError):
        control.outbound_buffer_limit = 0
    assert control.outbound_buffer_limit == 999
    ws.close()
    with pytest.raises(ValueError, match="closed"):
        control.supported_protocols
    with pytest.raises(ValueError, match="closed"):
        control.outbound_buffer_limit
    with pytest.raises(ValueError, match="closed"):
        control.ignore_certificate_errors


def test_settings_survive_connect_and_stay_readable(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    ws.add_supported_protocol("chat")
    ws.control.outbound_buffer_limit = 1 << 20
    ws.connect(server.url("/subprotocol"), timeout=5.0)
    assert ws.protocol == "chat"
    assert ws.control.supported_protocols == ("chat",)
    assert ws.control.outbound_buffer_limit == 1 << 20
    ws.control.outbound_buffer_limit = 2 << 20  # allowed at any time
    assert ws.control.outbound_buffer_limit == 2 << 20


# --- freeing an open websocket ----------------------------------------------------------------------


def test_close_of_an_open_websocket_returns_at_once_even_if_the_peer_never_answers(
    rt: Runtime, silent_server
) -> None:
    base = _callbacks.live_slot_count()
    got: List[Event] = []
    ws = MessageWebSocket(rt)
    ws.on_event = got.append
    ws.connect(silent_server.url("/"), timeout=5.0)
    conn = silent_server.wait_connection()
    assert wait_until(lambda: rt.statistics.connections_open == 1)
    assert _callbacks.live_slot_count() == base + 1

    t0 = time.monotonic()
    ws.close(4001, "bye")
    assert time.monotonic() - t0 < 0.5  # no wait for the peer's answer
    assert ws.closed
    # The handler registration is released and the close frame went out ...
    assert wait_until(lambda: _callbacks.live_slot_count() == base)
    assert wait_until(lambda: 4001 in conn.close_frames())
    # ... and the library drops the connection by itself, bounded by its close timeout.
    assert conn.ended.wait(15.0), "the library kept the unanswered connection"
    assert wait_until(lambda: rt.statistics.connections_open == 0)
    assert got == [] and list(rt.events(timeout=0.3)) == []  # no events after free
    assert rt._children == {}


def test_free_by_garbage_collection_of_an_open_websocket(rt: Runtime, silent_server) -> None:
    ws = MessageWebSocket(rt)
    ws.connect(silent_server.url("/"), timeout=5.0)
    conn = silent_server.wait_connection()
    t0 = time.monotonic()
    del ws
    gc.collect()
    assert time.monotonic() - t0 < 0.5
    assert conn.ended.wait(15.0)
    assert conn.close_frames()  # a close frame before the connection was dropped
    assert wait_until(lambda: rt.statistics.connections_open == 0)
    assert rt._children == {} and list(rt.events(timeout=0.3)) == []


def test_free_of_a_channel_transport_with_handlers_releases_everything(rt: Runtime, silent_server) -> None:
    base = _callbacks.live_slot_count()
    got: List[Event] = []
    ws = MessageWebSocket(rt)
    ch = ControlChannelTrigger(rt, "freed", server_keepalive_interval=30.0)
    ch.on_event = got.append
    ws.on_event = got.append
    ch.using_transport(ws)
    ws.connect(silent_server.url("/"), timeout=5.0)
    ch.wait_for_push_enabled()
    conn = silent_server.wait_connection()
    assert _callbacks.live_slot_count() == base + 2
    t0 = time.monotonic()
    ws.close()
    ch.close()
    assert time.monotonic() - t0 < 0.5
    assert wait_until(lambda: _callbacks.live_slot_count() == base)
    assert conn.ended.wait(15.0)
    assert rt._children == {}
    assert [e for e in got if e.kind in (EventKind.CLOSED, EventKind.TRANSPORT_DISCONNECTED)] == []
    t1 = time.monotonic()
    rt.close()
    assert time.monotonic() - t1 < 5.0


def test_close_then_runtime_close_does_not_hang(silent_server, server) -> None:
    rt = Runtime()
    pairs = [open_channel(rt, server.url("/echo"), f"c{i}") for i in range(3)]
    ws = MessageWebSocket(rt)
    ws.connect(silent_server.url("/"), timeout=5.0)
    ws.close()
    for _, w in pairs:
        w.close(1000, "done")
    t0 = time.monotonic()
    rt.close()
    assert time.monotonic() - t0 < 10.0
    assert rt.closed and all(ch.closed and w.closed for ch, w in pairs)
