"""Self-tests of tests/peer/proxies.py: tinyproxy and danted really start, tunnel, and refuse the
way the core's proxy handshakes expect (status lines, SOCKS reply codes), so an integration test
that fails later fails for ctrlchan's reasons, not the helper's.

Run: .venv/bin/python -m pytest tests/peer/test_proxies.py
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, Optional, Tuple

import pytest
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer import start_server  # noqa: E402
from proxies import PASSWORD, SOCKS_USER, RunningProxy, start_danted, start_tinyproxy  # noqa: E402

GREETING = b"hello from the target"


@pytest.fixture
def target() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that sends GREETING to each connection and closes it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.1)  # so the thread sees `stop` soon
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with conn:
                conn.sendall(GREETING)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(timeout=5)
    srv.close()


def recv_all(s: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def http_connect(proxy: RunningProxy, port: int, credentials: Optional[Tuple[str, str]]) -> Tuple[str, bytes]:
    """CONNECT through `proxy`; returns (status line, bytes after the head)."""
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        req = f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        if credentials:
            req += "Proxy-Authorization: Basic " + base64.b64encode(":".join(credentials).encode()).decode() + "\r\n"
        s.sendall((req + "\r\n").encode())
        data = recv_all(s)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), rest


def socks5(proxy: RunningProxy, dest: bytes, port: int, credentials: Optional[Tuple[str, str]]) -> Tuple[bytes, ...]:
    """SOCKS5 through `proxy` to `dest` (a packed ATYP+address); returns each answer read."""
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(b"\x05\x02\x00\x02" if credentials else b"\x05\x01\x00")
        method = recv_exact(s, 2)
        if method == b"\x05\x02" and credentials:
            u, p = (x.encode() for x in credentials)
            s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
            status = recv_exact(s, 2)
            if status[1:] != b"\x00":
                return method, status
        elif method[1:] == b"\xff":
            return (method,)
        s.sendall(b"\x05\x01\x00" + dest + struct.pack(">H", port))
        reply = recv_exact(s, 10)
        return method, reply, recv_all(s) if reply[1:2] == b"\x00" else b""


IPV4_LOOPBACK = b"\x01" + socket.inet_aton("127.0.0.1")


def test_tinyproxy_basic_auth(target: int) -> None:
    with start_tinyproxy() as p:
        assert p.uri == f"http://ctrlchan:{PASSWORD}@127.0.0.1:{p.port}"
        status, rest = http_connect(p, target, (p.user, p.password))
        assert status == "HTTP/1.0 200 Connection established"
        assert rest == GREETING
        # Missing credentials: 407; wrong ones: tinyproxy answers 401 (the core treats both alike).
        assert http_connect(p, target, None)[0] == "HTTP/1.0 407 Proxy Authentication Required"
        assert http_connect(p, target, (p.user, "wrong"))[0] == "HTTP/1.0 401 Unauthorized"
        assert p.tunnels() == 1


def test_tinyproxy_without_auth_and_websockets_through_it() -> None:
    with start_tinyproxy(auth=False) as p, start_server() as server:
        assert p.uri == f"http://127.0.0.1:{p.port}"
        # A real client (python-websockets, its own proxy code) through the real proxy.
        with connect(server.url("/echo"), proxy=p.uri, open_timeout=10) as ws:
            ws.send("through tinyproxy")
            assert ws.recv(timeout=10) == "through tinyproxy"
        assert p.tunnels() == 1


def test_danted_username_auth(target: int) -> None:
    with start_danted() as p:
        assert p.uri == f"socks5://{SOCKS_USER}:{PASSWORD}@127.0.0.1:{p.port}"
        assert p.uri_with(p.user, p.password, scheme="socks5h").startswith("socks5h://")
        creds = (p.user, p.password)
        method, reply, rest = socks5(p, IPV4_LOOPBACK, target, creds)
        assert method == b"\x05\x02" and reply[:2] == b"\x05\x00" and rest == GREETING
        # socks5h: the proxy resolves the name.
        method, reply, rest = socks5(p, b"\x03\x09localhost", target, creds)
        assert reply[:2] == b"\x05\x00" and rest == GREETING
        # Wrong password: the RFC 1929 status is not 0.
        method, status = socks5(p, IPV4_LOOPBACK, target, (p.user, "wrong"))
        assert method == b"\x05\x02" and status[1] != 0
        # No credentials offered: no acceptable method.
        assert socks5(p, IPV4_LOOPBACK, target, None) == (b"\x05\xff",)
        # Refused by rule (only 127.0.0.1 is allowed): reply 0x02.
        assert socks5(p, b"\x01" + socket.inet_aton("127.0.0.2"), target, creds)[1][:2] == b"\x05\x02"
        # Nothing listening: connection refused, reply 0x05.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        assert socks5(p, IPV4_LOOPBACK, dead, creds)[1][:2] == b"\x05\x05"
        assert p.tunnels() == 2


def test_danted_without_auth(target: int) -> None:
    with start_danted(auth=False) as p:
        assert p.uri == f"socks5://127.0.0.1:{p.port}"
        method, reply, rest = socks5(p, IPV4_LOOPBACK, target, None)
        assert method == b"\x05\x00" and reply[:2] == b"\x05\x00" and rest == GREETING


@pytest.mark.parametrize("kind", ["tinyproxy", "danted"])
def test_process_protocol(kind: str) -> None:
    script = Path(__file__).resolve().parent / "proxies.py"
    child = subprocess.Popen([sys.executable, str(script), kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        lines = [child.stdout.readline().strip() for _ in range(4)]
        assert lines[0].startswith("PORT ") and lines[1].startswith("URI ")
        port = int(lines[0].split()[1])
        assert f"127.0.0.1:{port}" in lines[1]
        assert lines[2].startswith("USER ") and lines[3] == f"PASSWORD {PASSWORD}"
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        child.stdin.write("tunnels\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "OK tunnels 0"
        child.stdin.close()  # EOF: the helper stops the proxy and exits
        assert child.wait(timeout=15) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
