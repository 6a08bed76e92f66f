"""Self-tests of the test peer: server.py, proxy.py and make_certs.py driven by a plain
`websockets` client, so a broken peer fails here and not as a mystery in the core's tests.

Run: .venv/bin/python -m pytest tests/peer
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.asyncio.client import connect as aconnect
from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer import (  # noqa: E402
    MAKE_CERTS_SCRIPT,
    PROXY_SCRIPT,
    SERVER_SCRIPT,
    PeerProxy,
    PeerServer,
    python_executable,
    start_proxy,
    start_server,
)

pytestmark = pytest.mark.timeout(60)

WAIT = 5.0  # bound on anything that should happen
QUIET = 1.0  # how long we watch for something that must not happen


@pytest.fixture(scope="module")
def server() -> Iterator[PeerServer]:
    with start_server() as srv:
        yield srv


@pytest.fixture()
def proxy(server: PeerServer) -> Iterator[PeerProxy]:
    with start_proxy(server.port) as px:
        yield px


def ws_connect(url: str, **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("ping_interval", None)  # the test sends every ping itself
    kwargs.setdefault("compression", None)
    kwargs.setdefault("open_timeout", WAIT)
    kwargs.setdefault("close_timeout", WAIT)
    ws: ClientConnection = connect(url, proxy=None, **kwargs)
    return ws


def pong_arrives(ws: ClientConnection, payload: bytes, timeout: float) -> bool:
    return ws.ping(payload).wait(timeout)


def raw_upgrade(port: int, path: str) -> socket.socket:
    """Hand-made opening handshake: to look at the TCP connection itself afterwards."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        assert chunk, "server closed during the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    assert response.endswith(b"\r\n\r\n"), "no frame may follow the response yet"
    return sock


def masked_frame(opcode: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


# --- the peer process itself ----------------------------------------------------------


def test_prints_port_line_and_exits_on_stdin_eof() -> None:
    proc = subprocess.Popen(
        [python_executable(), str(SERVER_SCRIPT), "--port", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT ") and int(line.split()[1]) > 0
        proc.stdin.close()
        assert proc.wait(timeout=WAIT) == 0
        assert proc.stdout.read() == "", "stdout must carry only the PORT line"
    finally:
        proc.kill()
        proc.wait()


def test_exits_on_sigterm_with_stdin_devnull() -> None:
    # What a C test using popen(cmd, "r") gets: stdin is not watched, SIGTERM stops it.
    proc = subprocess.Popen(
        [python_executable(), str(SERVER_SCRIPT), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        time.sleep(0.3)
        assert proc.poll() is None, "must not exit on a /dev/null stdin"
        with ws_connect(f"ws://127.0.0.1:{port}/echo") as ws:
            ws.send("alive")
            assert ws.recv(WAIT) == "alive"
        proc.terminate()
        assert proc.wait(timeout=WAIT) == 0
    finally:
        proc.kill()
        proc.wait()


def test_unknown_path_is_404(server: PeerServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        ws_connect(server.url("/nope"))
    assert info.value.response.status_code == 404


# --- /echo ------------------------------------------------------------------------------


def test_echo_keeps_message_types(server: PeerServer) -> None:
    with ws_connect(server.url("/echo"), max_size=8 * 1024 * 1024) as ws:
        ws.send("hello ☃")
        assert ws.recv(WAIT) == "hello ☃"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(WAIT) == b"\x00\x01\xff"
        ws.send("")
        assert ws.recv(WAIT) == ""
        big = os.urandom(3 * 1024 * 1024)  # past websockets' 1 MiB default: the server allows 64 MiB
        ws.send(big)
        assert ws.recv(WAIT * 2) == big
        assert pong_arrives(ws, b"echo-ping", WAIT)


def test_server_never_pings_on_its_own(server: PeerServer) -> None:
    # A raw client sees every frame: nothing at all arrives while it is idle.
    sock = raw_upgrade(server.port, "/echo")
    try:
        sock.settimeout(QUIET)
        with pytest.raises(socket.timeout):
            sock.recv(1)
    finally:
        sock.close()


# --- /push ------------------------------------------------------------------------------


def test_push_text(server: PeerServer) -> None:
    with ws_connect(server.url("/push?n=5&size=10&interval_ms=0&type=text")) as ws:
        got = [ws.recv(WAIT) for _ in range(5)]
        assert got == [f"msg {i}".ljust(10, ".") for i in range(5)]
        with pytest.raises(TimeoutError):
            ws.recv(0.3)  # exactly n, then it stays open...
        assert pong_arrives(ws, b"still-there", WAIT)  # ...and answers pings


def test_push_binary_and_short_size(server: PeerServer) -> None:
    with ws_connect(server.url("/push?n=3&size=8&type=binary")) as ws:
        for i in range(3):
            message = ws.recv(WAIT)
            assert isinstance(message, bytes) and len(message) == 8
            assert struct.unpack(">I", message[:4])[0] == i and message[4:] == b"...."
    with ws_connect(server.url("/push?n=1&size=0")) as ws:
        assert ws.recv(WAIT) == "msg 0"  # size smaller than the text: no padding


def test_push_interval(server: PeerServer) -> None:
    with ws_connect(server.url("/push?n=4&size=0&interval_ms=100")) as ws:
        start = time.monotonic()
        for i in range(4):
            assert ws.recv(WAIT) == f"msg {i}"
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < 2.0, elapsed  # 3 gaps of 100 ms


def test_push_many_fast(server: PeerServer) -> None:
    n = 2000
    with ws_connect(server.url(f"/push?n={n}&size=100&type=binary")) as ws:
        for i in range(n):
            message = ws.recv(WAIT)
            assert isinstance(message, bytes)
            assert struct.unpack(">I", message[:4])[0] == i


# --- /close and /drop ---------------------------------------------------------------------


def test_close_with_code_and_reason(server: PeerServer) -> None:
    with ws_connect(server.url("/close?code=4001&reason=bye%20now&after_ms=100")) as ws:
        start = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(WAIT)
        assert time.monotonic() - start >= 0.08
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4001
        assert info.value.rcvd.reason == "bye now"
        assert info.value.rcvd_then_sent is True  # a proper handshake: we echoed it


def test_close_normal(server: PeerServer) -> None:
    with ws_connect(server.url("/close?code=1000&after_ms=0")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(WAIT)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000
        assert info.value.rcvd.reason == ""


def test_drop_without_close_frame(server: PeerServer) -> None:
    with ws_connect(server.url("/drop?after_ms=100")) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(WAIT)
        assert info.value.rcvd is None  # no close frame: abnormal closure 1006


def test_drop_fin_is_eof_on_the_wire(server: PeerServer) -> None:
    sock = raw_upgrade(server.port, "/drop?after_ms=50&how=fin")
    try:
        assert sock.recv(1) == b""
    finally:
        sock.close()


def test_drop_rst_is_reset_on_the_wire(server: PeerServer) -> None:
    sock = raw_upgrade(server.port, "/drop?after_ms=50&how=rst")
    try:
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    finally:
        sock.close()


# --- /nopong ------------------------------------------------------------------------------


def test_nopong_ignores_pings_but_stays_open(server: PeerServer) -> None:
    with ws_connect(server.url("/nopong")) as ws:
        assert not pong_arrives(ws, b"anyone?", QUIET)
        ws.send("ignored")
        with pytest.raises(TimeoutError):
            ws.recv(QUIET / 2)  # silent
        assert not pong_arrives(ws, b"still nobody?", QUIET / 2)
        # The TCP connection and the WebSocket are still up: the close handshake works.
        ws.close(1000, "done")
        assert ws.close_code == 1000 and ws.close_reason == "done"  # the server's echo


def test_nopong_on_the_wire(server: PeerServer) -> None:
    # An immediate ping right after the 101 gets no pong either (no startup race).
    sock = raw_upgrade(server.port, "/nopong")
    try:
        sock.sendall(masked_frame(0x9, b"p1"))
        sock.settimeout(QUIET)
        with pytest.raises(socket.timeout):
            sock.recv(1)
        sock.sendall(masked_frame(0x8, struct.pack(">H", 1000)))
        sock.settimeout(WAIT)
        reply = sock.recv(16)
        assert reply[:1] == b"\x88", reply  # a close frame answers the close
    finally:
        sock.close()


def test_other_paths_do_answer_a_raw_ping(server: PeerServer) -> None:
    sock = raw_upgrade(server.port, "/count")
    try:
        sock.sendall(masked_frame(0x9, b"p1"))
        sock.settimeout(WAIT)
        assert sock.recv(16) == b"\x8a\x02p1"  # unmasked pong, same payload
    finally:
        sock.close()


# --- /big ---------------------------------------------------------------------------------


def test_big_within_limit(server: PeerServer) -> None:
    with ws_connect(server.url("/big?size=100000"), max_size=200000) as ws:
        message = ws.recv(WAIT)
        assert isinstance(message, bytes) and len(message) == 100000
    with ws_connect(server.url("/big?size=1000&type=text")) as ws:
        assert ws.recv(WAIT) == "x" * 1000


def test_big_over_client_limit_gets_1009(server: PeerServer) -> None:
    with ws_connect(server.url("/big?size=2000"), max_size=1024) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(WAIT)
        assert info.value.sent is not None and info.value.sent.code == 1009


# --- /subprotocol and /headers ------------------------------------------------------------


@pytest.mark.parametrize(
    "offered, expected",
    [
        (["superchat", "chat"], "superchat"),  # the client's order decides
        (["chat", "superchat"], "chat"),
        (["nope", "chat"], "chat"),
        (["nope"], ""),
        (None, ""),
    ],
)
def test_subprotocol(server: PeerServer, offered: Any, expected: str) -> None:
    with ws_connect(server.url("/subprotocol"), subprotocols=offered) as ws:
        assert ws.recv(WAIT) == expected
        assert (ws.subprotocol or "") == expected


def test_no_subprotocol_on_other_paths(server: PeerServer) -> None:
    with ws_connect(server.url("/echo"), subprotocols=["chat"]) as ws:
        assert ws.subprotocol is None


def test_headers(server: PeerServer) -> None:
    headers = [("X-Custom", "one"), ("Authorization", "Bearer t0k3n"), ("X-Multi", "a"), ("X-Multi", "b")]
    with ws_connect(server.url("/headers"), additional_headers=headers) as ws:
        message = ws.recv(WAIT)
        assert isinstance(message, str)
        got = json.loads(message)
        assert got["x-custom"] == "one"
        assert got["authorization"] == "Bearer t0k3n"
        assert got["x-multi"] == "a, b"
        assert got["upgrade"] == "websocket"
        assert got["host"] == f"127.0.0.1:{server.port}"
        assert all(name == name.lower() for name in got)


# --- /count -------------------------------------------------------------------------------


def stats(ws: ClientConnection) -> dict[str, Any]:
    ws.send("stats")
    message = ws.recv(WAIT)
    assert isinstance(message, str)
    result: dict[str, Any] = json.loads(message)
    return result


def test_count_messages_pings_pongs(server: PeerServer) -> None:
    with ws_connect(server.url("/count")) as ws:
        assert {k: stats(ws)[k] for k in ("messages", "pings", "pongs")} == {"messages": 0, "pings": 0, "pongs": 0}
        ws.send("one")
        ws.send(b"two")
        ws.send("three")
        assert pong_arrives(ws, b"k1", WAIT)
        assert pong_arrives(ws, b"k2", WAIT)
        ws.pong(b"heartbeat-1")
        ws.pong(b"heartbeat-2")
        ws.pong(b"")
        got = stats(ws)
        assert (got["messages"], got["pings"], got["pongs"]) == (3, 2, 3)
        assert len(got["ping_times_ms"]) == 2 and len(got["pong_times_ms"]) == 3
        assert got["ping_times_ms"] == sorted(got["ping_times_ms"])


def test_count_is_per_connection(server: PeerServer) -> None:
    with ws_connect(server.url("/count")) as a, ws_connect(server.url("/count")) as b:
        a.pong(b"x")
        a.send("m")
        assert (stats(a)["messages"], stats(a)["pongs"]) == (1, 1)
        assert (stats(b)["messages"], stats(b)["pongs"]) == (0, 0)


# --- TLS ----------------------------------------------------------------------------------


def test_tls_echo_with_test_ca() -> None:
    # The asyncio client here: websockets' threaded sync client can race its reader
    # thread's SSL_read (TLS 1.3 session tickets) against the handshake's SSL_write on
    # one OpenSSL session and lose the request (seen ~1 in 600 connections).
    async def run(srv: PeerServer) -> None:
        assert srv.ca_pem_path is not None
        context = ssl.create_default_context(cafile=srv.ca_pem_path)
        for host in ("127.0.0.1", "localhost"):
            async with aconnect(
                srv.url("/echo", host=host), ssl=context, proxy=None, ping_interval=None, open_timeout=WAIT
            ) as ws:
                await ws.send("secure")
                assert await asyncio.wait_for(ws.recv(), WAIT) == "secure"
                await asyncio.wait_for(await ws.ping(b"tls"), WAIT)
        # Without the test CA the certificate must not verify.
        with pytest.raises(ssl.SSLCertVerificationError):
            async with aconnect(srv.url("/echo"), ssl=ssl.create_default_context(), proxy=None, open_timeout=WAIT):
                pass

    with start_server(tls=True) as srv:
        assert srv.url("/echo").startswith("wss://127.0.0.1:")
        asyncio.run(run(srv))


def test_make_certs_cli(tmp_path: Path) -> None:
    out = subprocess.run(
        [python_executable(), str(MAKE_CERTS_SCRIPT), str(tmp_path), "--key-type", "rsa"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split("\n")
    assert out[:3] == [
        f"CA {tmp_path / 'ca.pem'}",
        f"CERT {tmp_path / 'server-cert.pem'}",
        f"KEY {tmp_path / 'server-key.pem'}",
    ]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server-cert.pem", tmp_path / "server-key.pem")


# --- proxy --------------------------------------------------------------------------------


def test_proxy_forwards(proxy: PeerProxy) -> None:
    with ws_connect(proxy.url("/echo")) as ws:
        ws.send("via proxy")
        assert ws.recv(WAIT) == "via proxy"
        payload = os.urandom(512 * 1024)
        ws.send(payload)
        assert ws.recv(WAIT) == payload
        assert pong_arrives(ws, b"through", WAIT)
    counts = proxy.stats()
    assert counts["accepted"] == 1 and counts["up"] > 512 * 1024 and counts["down"] > 512 * 1024


def test_proxy_blackhole_eats_pings_then_pass_restores(proxy: PeerProxy) -> None:
    with ws_connect(proxy.url("/echo")) as ws:
        assert pong_arrives(ws, b"before", WAIT)
        proxy.blackhole()
        assert not pong_arrives(ws, b"into-the-void", QUIET)
        ws.send("lost")
        with pytest.raises(TimeoutError):
            ws.recv(QUIET / 2)
        assert proxy.stats()["connections"] == 1, "a blackhole keeps the connection open"
        # New connections get TCP but no handshake answer.
        with pytest.raises((TimeoutError, OSError)):
            ws_connect(proxy.url("/echo"), open_timeout=QUIET)
        proxy.passthrough()
    # Whole frames were dropped, so a fresh connection through the same proxy works.
    with ws_connect(proxy.url("/echo")) as ws:
        ws.send("after")
        assert ws.recv(WAIT) == "after"
    assert proxy.stats()["dropped"] > 0


def test_proxy_blackhole_vs_nopong(server: PeerServer, proxy: PeerProxy) -> None:
    # The two ways a keep-alive test loses its pong: frozen path vs. a peer that ignores pings.
    with ws_connect(proxy.url("/nopong")) as ws:
        assert not pong_arrives(ws, b"a", QUIET / 2)
    with ws_connect(proxy.url("/count")) as ws:
        proxy.blackhole()
        ws.pong(b"unsolicited")  # dropped, never counted
        proxy.passthrough()
        ws.send("stats")
        # the "stats" request after the blackhole reaches the server (frames intact)
        message = ws.recv(WAIT)
        assert isinstance(message, str)
        assert json.loads(message)["pongs"] == 0


def test_proxy_reset_sends_rst(proxy: PeerProxy) -> None:
    sock = raw_upgrade(proxy.port, "/echo")
    try:
        proxy.reset()
        sock.settimeout(WAIT)
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    finally:
        sock.close()
    with ws_connect(proxy.url("/echo")) as ws:
        proxy.reset()
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(WAIT)
        assert info.value.rcvd is None
    # The proxy itself keeps serving.
    with ws_connect(proxy.url("/echo")) as ws:
        ws.send("again")
        assert ws.recv(WAIT) == "again"


def test_proxy_passes_server_close_and_drop(proxy: PeerProxy) -> None:
    with ws_connect(proxy.url("/close?code=4002&reason=x&after_ms=0")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(WAIT)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4002
    with ws_connect(proxy.url("/drop?after_ms=0")) as ws:
        with pytest.raises(ConnectionClosedError) as info2:
            ws.recv(WAIT)
        assert info2.value.rcvd is None


# NAT mode: T is short so that each test stays within a few seconds.
NAT_T = 0.4
GONE = {"close_timeout": 0.2}  # closing a forgotten connection cannot complete: do not wait


def test_proxy_nat_forgets_an_idle_connection_silently(proxy: PeerProxy) -> None:
    proxy.nat(int(NAT_T * 1000))
    with ws_connect(proxy.url("/echo"), **GONE) as ws:
        # Traffic more often than T keeps the mapping, for much longer than T.
        deadline = time.monotonic() + 3 * NAT_T
        while time.monotonic() < deadline:
            assert pong_arrives(ws, b"busy", WAIT)
            time.sleep(NAT_T / 4)
        assert proxy.stats()["nat_forgotten"] == 0
        time.sleep(NAT_T * 2)  # idle longer than T: the NAT forgets
        assert not pong_arrives(ws, b"void", QUIET)
        ws.send("lost")
        with pytest.raises(TimeoutError):
            ws.recv(QUIET / 2)  # no reply, and no close: the connection just went silent
        counts = proxy.stats()
        assert counts["nat_forgotten"] == 1 and counts["connections"] == 1 and counts["dropped"] > 0
    # A new connection gets a new mapping.
    with ws_connect(proxy.url("/echo")) as ws:
        ws.send("fresh")
        assert ws.recv(WAIT) == "fresh"


def test_proxy_nat_sends_no_fin_or_rst_and_counts_both_directions(server: PeerServer) -> None:
    with start_proxy(server.port, nat_timeout_ms=int(NAT_T * 1000)) as px:
        # Bytes from the server alone refresh the mapping (a NAT sees both directions).
        with ws_connect(px.url(f"/push?n=12&size=8&interval_ms={int(NAT_T * 250)}")) as ws:
            for _ in range(12):
                ws.recv(WAIT)
            assert px.stats()["nat_forgotten"] == 0
        # The server closes its side after the mapping was forgotten: the client sees nothing.
        sock = raw_upgrade(px.port, f"/drop?after_ms={int(NAT_T * 2500)}&how=rst")
        try:
            sock.settimeout(NAT_T * 2500 / 1000 + QUIET)
            with pytest.raises(TimeoutError):
                sock.recv(1)  # neither b"" (FIN) nor ConnectionResetError (RST)
            assert px.stats()["nat_forgotten"] == 1
        finally:
            sock.close()


def test_proxy_nat_timeout_changes_at_run_time(proxy: PeerProxy) -> None:
    proxy.nat(int(NAT_T * 4000))
    with ws_connect(proxy.url("/echo"), **GONE) as ws:
        time.sleep(NAT_T * 2)
        assert pong_arrives(ws, b"long-T", WAIT), "idle 2x shorter than T survives"
        proxy.nat(int(NAT_T * 1000))  # the NAT got stricter: same connection, same idle gap
        time.sleep(NAT_T * 2)
        assert not pong_arrives(ws, b"short-T", QUIET)
    proxy.nat(None)
    with ws_connect(proxy.url("/echo")) as ws:
        time.sleep(NAT_T * 2)
        assert pong_arrives(ws, b"off", WAIT)
    assert proxy.stats()["nat_forgotten"] == 1


def test_proxy_commands_and_exit() -> None:
    # The raw protocol a C test speaks: PORT line, OK acks, ERR for junk, quit.
    with start_server() as srv:
        proc = subprocess.Popen(
            [python_executable(), str(PROXY_SCRIPT), "--target-port", str(srv.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            assert proc.stdout.readline().startswith("PORT ")
            for command, answer in (("blackhole", "OK blackhole"), ("pass", "OK pass"), ("reset", "OK reset"),
                                    ("nat 1500", "OK nat 1500"), ("nat off", "OK nat off"),
                                    ("nat x", "ERR nat x"), ("nat -1", "ERR nat -1"),
                                    ("bogus", "ERR bogus"), ("quit", "OK quit")):
                proc.stdin.write(command + "\n")
                proc.stdin.flush()
                assert proc.stdout.readline().rstrip("\n") == answer
            assert proc.wait(timeout=WAIT) == 0
        finally:
            proc.kill()
            proc.wait()


def test_proxy_exits_on_stdin_eof(server: PeerServer) -> None:
    proc = subprocess.Popen(
        [python_executable(), str(PROXY_SCRIPT), "--target-port", str(server.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().startswith("PORT ")
        proc.stdin.close()
        assert proc.wait(timeout=WAIT) == 0
    finally:
        proc.kill()
        proc.wait()
