"""The issue's main flow against the websockets peer, step for step like the Windows sample."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from conftest import open_channel, wait_event
from ctrlchan import (
    ConnectFailedError,
    ControlChannelTrigger,
    ControlChannelTriggerResourceType,
    ControlChannelTriggerStatus,
    EventKind,
    HandshakeFailedError,
    KeepAliveMode,
    MessageWebSocket,
    ResultCode,
    Runtime,
    SocketMessageType,
    StreamWebSocket,
    TlsFailedError,
    WebSocketKeepAlive,
    WebSocketKind,
    WebSocketState,
)


def test_readme_flow(server) -> None:
    with Runtime() as rt:
        ws = MessageWebSocket(rt)
        ws.control.max_message_size = 1 << 20
        ws.control.message_type = SocketMessageType.UTF8
        ws.set_request_header("Authorization", "Bearer t")
        ws.add_supported_protocol("chat")
        ch = ControlChannelTrigger(
            rt,
            "channelOne",
            server_keepalive_interval=30.0,
            resource_type=ControlChannelTriggerResourceType.REQUEST_SOFTWARE_SLOT,
        )
        ch.keepalive = WebSocketKeepAlive(mode=KeepAliveMode.PING, pong_timeout=5.0)
        ch.using_transport(ws)
        ws.connect(server.url("/echo"), timeout=5.0)
        assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED
        assert ws.state is WebSocketState.OPEN
        assert ws.control.max_message_size == 1 << 20
        assert ws.control.message_type is SocketMessageType.UTF8
        assert ws.control.supported_protocols == ("chat",)

        ws.send("hello")
        ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=5.0)
        assert ev.channel is ch
        assert ev.channel_id == "channelOne"
        assert ev.websocket is ws
        assert ev.message_type is SocketMessageType.UTF8
        assert ev.data == b"hello"
        assert ev.text == "hello"

        ws.send(b"\x00\x01\xff")
        ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=5.0)
        assert ev.message_type is SocketMessageType.BINARY
        assert ev.data == b"\x00\x01\xff"
        assert ev.text is None

        # write() follows control.message_type (UTF8 here), like the Windows OutputStream.
        ws.write(b"typed")
        ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=5.0)
        assert (ev.message_type, ev.text) == (SocketMessageType.UTF8, "typed")

        stats = ws.statistics
        assert stats.messages_sent == 3 and stats.messages_received == 3
        assert stats.bytes_sent == 5 + 3 + 5 and stats.bytes_received == stats.bytes_sent
        rts = rt.statistics
        assert rts.connections_open == 1 and rts.channels_active == 1 and rts.messages_received >= 3
        assert ch.channel_id == "channelOne"
        assert ch.server_keepalive_interval == 30.0
        assert ch.current_keepalive_interval == 30.0
        assert ch.resource_type is ControlChannelTriggerResourceType.REQUEST_SOFTWARE_SLOT
        assert ch.transport is ws
        assert ch.keepalive is not None and ch.keepalive.pong_timeout == 5.0
    assert rt.closed and ws.closed and ch.closed


def test_request_headers_reach_the_server(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    ws.set_request_header("Authorization", "Bearer t")
    ws.set_request_header("X-Ctrlchan-Test", "élan")
    ws.connect(server.url("/headers"), timeout=5.0)
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION])
    assert ev.channel is None and ev.websocket is ws  # not bound to a channel
    headers = json.loads(ev.text or "")
    assert headers["authorization"] == "Bearer t"
    # Sent as UTF-8 bytes; the peer decodes header bytes as ISO-8859-1 (the HTTP default).
    assert headers["x-ctrlchan-test"].encode("latin-1").decode("utf-8") == "élan"


@pytest.mark.parametrize("offered,expected", [(["chat"], "chat"), (["nope", "superchat", "chat"], "superchat"), ([], "")])
def test_subprotocol_negotiation(rt: Runtime, server, offered, expected) -> None:
    ws = MessageWebSocket(rt)
    for p in offered:
        ws.add_supported_protocol(p)
    ws.connect(server.url("/subprotocol"), timeout=5.0)
    assert ws.protocol == expected
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION])
    assert ev.text == expected


def test_hardware_slot(rt: Runtime, server) -> None:
    ch, ws = open_channel(
        rt,
        server.url("/echo"),
        resource_type=ControlChannelTriggerResourceType.REQUEST_HARDWARE_SLOT,
        expect=None,
    )
    assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.HARDWARE_SLOT_ALLOCATED
    assert ch.resource_type is ControlChannelTriggerResourceType.REQUEST_HARDWARE_SLOT


def test_wait_for_push_enabled_before_connect_reports_transport_disconnected(rt: Runtime) -> None:
    ch = ControlChannelTrigger(rt, "early", server_keepalive_interval=30.0)
    assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.TRANSPORT_DISCONNECTED
    ws = MessageWebSocket(rt)
    ch.using_transport(ws)
    assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.TRANSPORT_DISCONNECTED


def test_max_channels_policy(rt: Runtime, server) -> None:
    rt.max_channels = 2
    assert rt.max_channels == 2
    a = open_channel(rt, server.url("/echo"), "a")
    b = open_channel(rt, server.url("/echo"), "b")
    c, _ = open_channel(rt, server.url("/echo"), "c", expect=None)
    assert c.wait_for_push_enabled() is ControlChannelTriggerStatus.POLICY_ERROR
    assert rt.statistics.channels_active == 2
    a[0].close()  # frees a slot
    assert c.wait_for_push_enabled() is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED
    assert b[0].wait_for_push_enabled() is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED


def test_stream_websocket(rt: Runtime, server) -> None:
    ws = StreamWebSocket(rt)
    assert ws.kind is WebSocketKind.STREAM
    ch = ControlChannelTrigger(rt, "stream", server_keepalive_interval=30.0)
    ch.using_transport(ws)
    ws.connect(server.url("/echo"), timeout=5.0)
    assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED
    ws.send(b"abc")
    ws.send("déf")  # str is encoded; a stream websocket always sends binary frames
    evs = [wait_event(rt, [EventKind.PUSH_NOTIFICATION]) for _ in range(2)]
    assert [e.data for e in evs] == [b"abc", "déf".encode()]
    assert all(e.message_type is SocketMessageType.BINARY and e.channel is ch for e in evs)


def test_wss_with_trusted_ca(rt: Runtime, tls_server) -> None:
    ws = MessageWebSocket(rt)
    ws.control.add_trusted_ca_pem(Path(tls_server.ca_pem_path).read_bytes())
    ch = ControlChannelTrigger(rt, "tls", server_keepalive_interval=30.0)
    ch.using_transport(ws)
    ws.connect(tls_server.url("/echo", host="localhost"), timeout=10.0)
    assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED
    ws.send("secure")
    assert wait_event(rt, [EventKind.PUSH_NOTIFICATION]).text == "secure"


def test_wss_untrusted_certificate_fails(rt: Runtime, tls_server) -> None:
    ws = MessageWebSocket(rt)
    with pytest.raises(TlsFailedError) as info:
        ws.connect(tls_server.url("/echo", host="localhost"), timeout=10.0)
    assert isinstance(info.value, ConnectionError)
    assert info.value.detail  # the library says why


def test_wss_ignore_certificate_errors(rt: Runtime, tls_server) -> None:
    ws = MessageWebSocket(rt)
    ws.control.ignore_certificate_errors = True
    assert ws.control.ignore_certificate_errors is True
    ws.connect(tls_server.url("/echo"), timeout=10.0)
    ws.send(b"x")
    assert wait_event(rt, [EventKind.PUSH_NOTIFICATION]).data == b"x"


def test_connect_refused(rt: Runtime) -> None:
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ws = MessageWebSocket(rt)
    with pytest.raises(ConnectFailedError) as info:
        ws.connect(f"ws://127.0.0.1:{port}/", timeout=5.0)
    assert info.value.code.name == "CONNECT_FAILED"
    assert str(port) in str(info.value) or info.value.detail


def test_handshake_rejected(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    with pytest.raises(HandshakeFailedError):
        ws.connect(server.url("/no-such-path"), timeout=5.0)


def test_connect_async_delivers_connected_and_connect_failed(rt: Runtime, server) -> None:
    ws = MessageWebSocket(rt)
    ch = ControlChannelTrigger(rt, "async", server_keepalive_interval=30.0)
    ch.using_transport(ws)
    ws.connect_async(server.url("/echo"), timeout=5.0)
    ev = wait_event(rt, [EventKind.CONNECTED, EventKind.CONNECT_FAILED])
    assert ev.kind is EventKind.CONNECTED and ev.channel is ch and ev.result is ResultCode.OK
    assert ch.wait_for_push_enabled() is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED

    bad = MessageWebSocket(rt)
    bad.connect_async(server.url("/no-such-path"), timeout=5.0)
    ev = wait_event(rt, [EventKind.CONNECTED, EventKind.CONNECT_FAILED])
    assert ev.kind is EventKind.CONNECT_FAILED and ev.websocket is bad and ev.reason
    assert ev.result is ResultCode.HANDSHAKE_FAILED


def test_aconnect(rt: Runtime, server) -> None:
    async def main() -> None:
        ws = MessageWebSocket(rt)
        await ws.aconnect(server.url("/echo"), timeout=5.0)
        assert ws.state is WebSocketState.OPEN
        ws.send("via asyncio")
        async for ev in rt.aevents(timeout=5.0):
            if ev.kind is EventKind.PUSH_NOTIFICATION:
                assert ev.text == "via asyncio"
                return
        raise AssertionError("no echo")

    asyncio.run(main())


def test_flush_transport_and_big_messages(rt: Runtime, server) -> None:
    ch, ws = open_channel(rt, server.url("/echo"))
    payload = bytes(range(256)) * 4096  # 1 MiB
    ws.send(payload)
    ch.flush_transport(timeout=10.0)
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=10.0)
    assert ev.data == payload


def test_blocking_calls_release_the_gil(rt: Runtime) -> None:
    """While one thread waits in next_event, another Python thread keeps running."""
    ticks = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set() and len(ticks) < 10_000:
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        assert rt.next_event(timeout=0.3) is None
    finally:
        stop.set()
        t.join(5)
    assert len(ticks) > 20


def test_events_iterator_ends_on_timeout_idle_and_close(rt: Runtime, server) -> None:
    import time

    t0 = time.monotonic()
    assert list(rt.events(timeout=0.3)) == []
    assert 0.25 <= time.monotonic() - t0 < 2.0
    ch, ws = open_channel(rt, server.url("/push?n=3&interval_ms=50&type=text"))
    t0 = time.monotonic()
    got = [e.text for e in rt.events(idle_timeout=0.5) if e.kind is EventKind.PUSH_NOTIFICATION]
    assert got == ["msg 0", "msg 1", "msg 2"]
    assert time.monotonic() - t0 < 3.0

    def close_soon() -> None:
        time.sleep(0.2)
        rt.close()

    threading.Thread(target=close_soon).start()
    t0 = time.monotonic()
    assert list(rt.events()) == []  # no limit: ends because the runtime closed
    assert time.monotonic() - t0 < 3.0


def test_close_from_another_thread_wakes_a_blocked_next_event(server) -> None:
    import time

    rt = Runtime()
    open_channel(rt, server.url("/echo"))
    result = []

    def waiter() -> None:
        try:
            result.append(rt.next_event())  # no timeout
        except BaseException as exc:  # noqa: BLE001
            result.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    rt.close()
    t.join(5.0)
    assert not t.is_alive() and result == [None]
    assert time.monotonic() - t0 < 3.0


def test_keepalive_none_restores_the_default_task(rt: Runtime) -> None:
    ch = ControlChannelTrigger(rt, "ka", server_keepalive_interval=30.0)
    ch.keepalive = WebSocketKeepAlive(pong_timeout=1.0)
    ch.keepalive = None
    assert ch.keepalive is None


def test_hidden_names_shape(rt: Runtime) -> None:
    """Spot checks of the documented shape: float seconds in, enums out."""
    ch = ControlChannelTrigger(rt, "shape", server_keepalive_interval=90.0, resource_type=ControlChannelTriggerResourceType.REQUEST_SOFTWARE_SLOT)
    assert isinstance(ch.server_keepalive_interval, float) and ch.server_keepalive_interval_in_minutes == 1.5
    ws = MessageWebSocket(rt)
    assert ws.state is WebSocketState.NEW and ws.protocol == "" and ws.kind is WebSocketKind.MESSAGE
    assert ws.statistics.messages_sent == 0
    assert ws.control.max_message_size == 16 << 20 and ws.control.message_type is SocketMessageType.BINARY
