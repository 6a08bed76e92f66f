"""Wrong types, out-of-range values, bad strings, wrong states and closed objects."""

from __future__ import annotations

import math
from typing import Callable, List

import pytest

import ctrlchan
from conftest import open_channel, wait_event
from ctrlchan import (
    BufferFullError,
    ControlChannelTrigger,
    CtrlChanError,
    EventKind,
    InvalidArgumentError,
    InvalidStateError,
    KeepAliveMode,
    MessageWebSocket,
    ResultCode,
    Runtime,
    SocketMessageType,
    StreamWebSocket,
    WebSocketKeepAlive,
)


# --- types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda rt: MessageWebSocket(None),  # type: ignore[arg-type]
        lambda rt: StreamWebSocket("rt"),  # type: ignore[arg-type]
        lambda rt: ControlChannelTrigger(object(), "x", server_keepalive_interval=30.0),  # type: ignore[arg-type]
        lambda rt: ControlChannelTrigger(rt, 123, server_keepalive_interval=30.0),  # type: ignore[arg-type]
        lambda rt: ControlChannelTrigger(rt, b"bytes-id", server_keepalive_interval=30.0),  # type: ignore[arg-type]
        lambda rt: ControlChannelTrigger(rt, "x", server_keepalive_interval="30"),  # type: ignore[arg-type]
        lambda rt: ControlChannelTrigger(rt, "x", server_keepalive_interval=True),
        lambda rt: ControlChannelTrigger(rt, "x", server_keepalive_interval=30.0, resource_type="REQUEST_SOFTWARE_SLOT"),  # type: ignore[arg-type]
        lambda rt: WebSocketKeepAlive(mode="PING"),  # type: ignore[arg-type]
        lambda rt: WebSocketKeepAlive(pong_timeout=None),  # type: ignore[arg-type]
        lambda rt: Runtime(max_channels="10"),  # type: ignore[arg-type]
        lambda rt: rt.next_event(timeout="1"),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_raise_type_error(rt: Runtime, make: Callable[[Runtime], object]) -> None:
    with pytest.raises(TypeError):
        make(rt)


def test_wrong_types_on_websocket_and_channel(rt: Runtime) -> None:
    ws = MessageWebSocket(rt)
    ch = ControlChannelTrigger(rt, "types", server_keepalive_interval=30.0)
    for bad in (123, None, ["list"], 1.5):
        with pytest.raises(TypeError):
            ws.send(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ws.set_request_header("X", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ws.connect(b"ws://127.0.0.1:1/")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ws.control.max_message_size = 1.5  # type: ignore[assignment]
    with pytest.raises(TypeError):
        ws.control.message_type = "UTF8"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        ch.using_transport("ws")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ch.keepalive = "ka"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        ch.on_event = "not callable"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        ws.on_event = 42  # type: ignore[assignment]


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.0, 0.05, 0.099, 86_400.001, 10**9, -1.0, math.nan, math.inf])
def test_server_keepalive_interval_out_of_range(rt: Runtime, seconds: float) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ControlChannelTrigger(rt, "range", server_keepalive_interval=seconds)
    assert isinstance(info.value, ValueError)
    assert info.value.code is ResultCode.INVALID_ARGUMENT


@pytest.mark.parametrize("seconds", [0.1, 1.0, 86_400.0])
def test_server_keepalive_interval_limits_accepted(rt: Runtime, seconds: float) -> None:
    ch = ControlChannelTrigger(rt, "range", server_keepalive_interval=seconds)
    assert ch.server_keepalive_interval == seconds


def test_channel_id_rules(rt: Runtime) -> None:
    ok = ControlChannelTrigger(rt, "x" * 64, server_keepalive_interval=30.0)
    assert ok.channel_id == "x" * 64
    uni = ControlChannelTrigger(rt, "канал-1", server_keepalive_interval=30.0)
    assert uni.channel_id == "канал-1"
    assert ControlChannelTrigger(rt, "é" * 64, server_keepalive_interval=30.0).channel_id == "é" * 64  # characters, not bytes
    with pytest.raises(InvalidArgumentError):
        ControlChannelTrigger(rt, "é" * 65, server_keepalive_interval=30.0)
    with pytest.raises(InvalidArgumentError):
        ControlChannelTrigger(rt, "", server_keepalive_interval=30.0)
    with pytest.raises(InvalidArgumentError) as info:
        ControlChannelTrigger(rt, "x" * 65, server_keepalive_interval=30.0)
    assert info.value.detail  # ctrlchan_last_error() text
    with pytest.raises(InvalidArgumentError):
        ControlChannelTrigger(rt, "nul\x00inside", server_keepalive_interval=30.0)
    with pytest.raises(InvalidArgumentError):
        ControlChannelTrigger(rt, "\ud800", server_keepalive_interval=30.0)  # lone surrogate: not encodable


def test_enum_values_out_of_range(rt: Runtime) -> None:
    with pytest.raises(InvalidArgumentError):
        ControlChannelTrigger(rt, "x", server_keepalive_interval=30.0, resource_type=7)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        WebSocketKeepAlive(mode=9)  # type: ignore[arg-type]
    ws = MessageWebSocket(rt)
    with pytest.raises(InvalidArgumentError):
        ws.control.message_type = 2  # type: ignore[assignment]
    ws.control.message_type = 1  # type: ignore[assignment]  # a plain int that is a valid value
    assert ws.control.message_type is SocketMessageType.UTF8


@pytest.mark.parametrize("seconds", [0.0, 0.009, 86_400.001, -0.5])
def test_pong_timeout_out_of_range(seconds: float) -> None:
    with pytest.raises(InvalidArgumentError):
        WebSocketKeepAlive(pong_timeout=seconds)
    ka = WebSocketKeepAlive()
    with pytest.raises(InvalidArgumentError):
        ka.pong_timeout = seconds
    assert ka.pong_timeout == 5.0  # unchanged
    ka.close()


def test_runtime_constructor_checks_its_options() -> None:
    import os

    threads = len(os.listdir("/proc/self/task"))
    for kwargs in ({"max_channels": 0}, {"max_channels": -1}, {"coalescing_window": -1.0}, {"coalescing_window": 4000.0}):
        with pytest.raises(InvalidArgumentError):
            Runtime(**kwargs)  # type: ignore[arg-type]
    with Runtime(max_channels=5, coalescing_window=0.0) as rt:
        assert (rt.max_channels, rt.coalescing_window) == (5, 0.0)
    import time

    deadline = time.monotonic() + 5.0
    while len(os.listdir("/proc/self/task")) > threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(os.listdir("/proc/self/task")) == threads  # the refused runtimes were shut down


def test_integer_options_out_of_range(rt: Runtime) -> None:
    ws = MessageWebSocket(rt)
    for bad in (-1, 2**32):
        with pytest.raises(InvalidArgumentError):
            ws.control.max_message_size = bad
        with pytest.raises(InvalidArgumentError):
            ws.control.outbound_buffer_limit = bad
        with pytest.raises(InvalidArgumentError):
            rt.max_channels = bad
    with pytest.raises(InvalidArgumentError):
        rt.next_event(timeout=-1)
    with pytest.raises(InvalidArgumentError):
        rt.events(timeout=-1)  # checked when called, not at the first next()
    with pytest.raises(InvalidArgumentError):
        rt.coalescing_window = 3600.001  # at most one hour
    assert rt.coalescing_window == 3.0
    with pytest.raises(InvalidArgumentError):
        ws.control.max_message_size = 0
    with pytest.raises(InvalidArgumentError):
        ws.control.outbound_buffer_limit = 0
    with pytest.raises(TypeError):
        rt.aevents(idle_timeout="1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name,value",
    [("X-Bad", "a\r\nInjected: 1"), ("X-Bad", "line\nfeed"), ("X-Bad\r\n", "v"), ("X-Nul", "a\x00b"), ("", "v")],
)
def test_header_injection_rejected(rt: Runtime, name: str, value: str) -> None:
    ws = MessageWebSocket(rt)
    with pytest.raises(InvalidArgumentError):
        ws.set_request_header(name, value)


def test_bad_uris(rt: Runtime) -> None:
    for uri in ("not a uri", "http://127.0.0.1:1/", "ws://", "ws://127.0.0.1:1/\x00"):
        ws = MessageWebSocket(rt)
        with pytest.raises(InvalidArgumentError):
            ws.connect(uri, timeout=1.0)
        ws.close()


def test_bad_trusted_ca_pem(rt: Runtime) -> None:
    ws = MessageWebSocket(rt)
    for bad in (b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n"):
        with pytest.raises(InvalidArgumentError):
            ws.add_trusted_ca_pem(bad)


def test_bad_send_payloads(rt: Runtime, server) -> None:
    _, ws = open_channel(rt, server.url("/echo"))
    with pytest.raises(InvalidArgumentError):
        ws.send("\udcff")  # lone surrogate cannot be UTF-8
    with pytest.raises(InvalidArgumentError):
        ws.send(b"\xff\xfe", message_type=SocketMessageType.UTF8)  # a text frame must be UTF-8
    ws.send(memoryview(b"view"))
    ws.send(bytearray(b"array"))


def test_outbound_buffer_limit(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    ws.control.outbound_buffer_limit = 1000
    assert ws.control.outbound_buffer_limit == 1000
    ws.connect(server.url("/echo"), timeout=5.0)
    with pytest.raises(BufferFullError) as info:
        ws.send(b"x" * 5000)
    assert isinstance(info.value, BlockingIOError) and info.value.code is ResultCode.BUFFER_FULL
    ws.send(b"x" * 500)  # a message that fits still goes


# --- states --------------------------------------------------------------------------------


def test_options_after_connect_are_invalid_state(rt: Runtime, server, tls_server) -> None:
    from pathlib import Path

    ca = Path(tls_server.ca_pem_path).read_bytes()
    ch, ws = open_channel(rt, server.url("/echo"))
    attempts: List[Callable[[], object]] = [
        lambda: ws.set_request_header("X", "y"),
        lambda: ws.add_supported_protocol("chat"),
        lambda: setattr(ws.control, "max_message_size", 1000),
        lambda: setattr(ws.control, "ignore_certificate_errors", True),
        lambda: ws.control.add_trusted_ca_pem(ca),
        lambda: ws.connect("ws://127.0.0.1:1/", timeout=1.0),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidStateError) as info:
            attempt()
        assert isinstance(info.value, CtrlChanError) and info.value.code is ResultCode.INVALID_STATE
        assert info.value.detail
    assert ws.control.supported_protocols == ()


def test_message_type_may_change_after_connect(rt: Runtime, server) -> None:
    # Windows allows it at any time; it applies to later sends.
    ch, ws = open_channel(rt, server.url("/echo"))
    ws.control.message_type = SocketMessageType.UTF8
    assert ws.control.message_type is SocketMessageType.UTF8
    ws.write(b"as text")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0)
    assert ev.message_type is SocketMessageType.UTF8 and ev.text == "as text"
    ws.control.message_type = SocketMessageType.BINARY
    ws.write(b"as binary")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=3.0)
    assert ev.message_type is SocketMessageType.BINARY and ev.data == b"as binary"


def test_send_before_connect_fails(rt: Runtime) -> None:
    ws = MessageWebSocket(rt)
    with pytest.raises(CtrlChanError):
        ws.send("too early")


def test_keepalive_run_without_transport_fails(rt: Runtime) -> None:
    ka = WebSocketKeepAlive()
    ch = ControlChannelTrigger(rt, "idle", server_keepalive_interval=30.0)
    with pytest.raises(CtrlChanError):
        ka.run(ch)
    with pytest.raises(TypeError):
        ka.run("channel")  # type: ignore[arg-type]


# --- closed objects ------------------------------------------------------------------------


def test_every_object_after_close(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/echo"))
    ka = WebSocketKeepAlive()
    ws2 = StreamWebSocket(rt)
    for obj in (ch, ws, ws2, ka):
        obj.close()
        obj.close()
        assert obj.closed
    checks: List[Callable[[], object]] = [
        lambda: ws.send("x"),
        lambda: ws.write(b"x"),
        lambda: ws.connect("ws://127.0.0.1:1/"),
        lambda: ws.set_request_header("a", "b"),
        lambda: ws.control.max_message_size,
        lambda: ws.protocol,
        lambda: ws.statistics,
        lambda: ws.state,
        lambda: setattr(ws, "on_event", None),
        lambda: ws2.send(b"x"),
        lambda: ch.channel_id,
        lambda: ch.wait_for_push_enabled(),
        lambda: ch.current_keepalive_interval,
        lambda: ch.decrease_network_keepalive_interval(),
        lambda: ch.flush_transport(),
        lambda: setattr(ch, "on_event", print),
        lambda: ka.mode,
        lambda: setattr(ka, "pong_timeout", 1.0),
        lambda: ka.run(ch),
    ]
    for call in checks:
        with pytest.raises(ValueError, match="is closed"):
            call()
    live = ControlChannelTrigger(rt, "live", server_keepalive_interval=30.0)
    with pytest.raises(ValueError, match="is closed"):
        live.using_transport(ws)
    with pytest.raises(ValueError, match="is closed"):
        live.keepalive = ka


def test_runtime_close_closes_its_objects(server) -> None:
    rt = Runtime()
    ch, ws = open_channel(rt, server.url("/echo"))
    rt.close()
    assert rt.closed and ch.closed and ws.closed
    for call in (lambda: rt.next_event(0), lambda: rt.events(), lambda: rt.aevents(), lambda: rt.statistics, lambda: MessageWebSocket(rt), lambda: ws.send("x"), lambda: ch.channel_id):
        with pytest.raises(ValueError, match="is closed"):
            call()
    with pytest.raises(ValueError, match="is closed"):
        with rt:
            pass
    rt.close()


# --- errors carry the code and the library's text --------------------------------------------


def test_error_details_and_result_names(rt: Runtime) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ControlChannelTrigger(rt, "x" * 65, server_keepalive_interval=30.0)
    e = info.value
    assert e.code is ResultCode.INVALID_ARGUMENT and e.detail and e.detail in str(e)
    assert "INVALID_ARGUMENT" in str(e)
    assert ctrlchan.result_name(0) == "OK"
    assert ctrlchan.result_name(int(ResultCode.BUFFER_FULL)) == "BUFFER_FULL"
    assert ctrlchan.result_name(999) == "UNKNOWN"
    assert KeepAliveMode.PING == 0
