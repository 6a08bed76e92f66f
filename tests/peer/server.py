#!/usr/bin/env python3
"""A real third-party WebSocket peer for ctrlchan's tests, built on `websockets`.

Usage::

    python tests/peer/server.py --port 0 [--tls-cert CERT --tls-key KEY]

Binds 127.0.0.1 (or --host), prints exactly one line ``PORT <n>`` on stdout once it is
listening, then serves until stdin reaches EOF (when stdin is a pipe, socket or
tty), SIGTERM/SIGINT, or the death of its parent process (Linux PR_SET_PDEATHSIG).
A stdin that is /dev/null or a regular file is not watched, so a C test that starts
the peer with popen(cmd, "r") keeps it alive until it sends SIGTERM. Diagnostics
go to stderr; stdout carries nothing but the PORT line.

The request path selects the behaviour (one server serves every test):

  /echo                       echo every message back with the same type
  /push?n=N&size=S&interval_ms=I&type=text|binary
                              send N messages, then stay open. Text message i is
                              "msg <i>" padded with '.' to S bytes; binary message
                              i is i as 4-byte big-endian followed by '.' bytes up
                              to S. One every I ms (0: as fast as possible).
  /close?code=C&reason=R&after_ms=T
                              after T ms start a proper close handshake (C, R)
  /drop?after_ms=T[&how=fin|rst]
                              after T ms abort the TCP connection without a close
                              frame: how=fin (default) is transport.abort(), the
                              client reads EOF; how=rst sets SO_LINGER 0 first so
                              the client gets a TCP RST (ECONNRESET)
  /nopong                     complete the handshake, then never answer pings and
                              never send anything (incoming messages are read and
                              discarded; a close frame is still answered)
  /big?size=S[&type=text|binary]
                              send one message of S bytes (default binary), stay open
  /subprotocol                negotiate the first subprotocol the client offers
                              among ["chat", "superchat"]; send one text message
                              with the negotiated name ("" when none)
  /headers                    send one text message: JSON object of the request
                              headers, names lower-cased (repeated headers joined
                              with ", ")
  /count                      count received data messages, ping frames and
                              unsolicited pong frames; on the text message "stats"
                              reply with JSON {"messages": n, "pings": p,
                              "pongs": q, "ping_times_ms": [...],
                              "pong_times_ms": [...]} ("stats" itself is not
                              counted; *_times_ms are milliseconds since the
                              handshake, last 1000 kept)
  anything else               HTTP 404

Every path reads (and discards, unless stated otherwise) what the client sends until
the client closes, so the connection keeps answering pings (except /nopong) and the
client's close handshake always completes. The server itself never pings
(ping_interval=None), has no compression and accepts messages up to 64 MiB.

How /nopong and /count hook into websockets: `serve(create_connection=...)` (the
documented customisation point) makes every connection a `PeerConnection`, and
every connection's sans-I/O protocol a `PeerServerProtocol`.
 * PeerServerProtocol.recv_frame() skips the automatic pong that websockets'
   Protocol.recv_frame() sends for each ping when `answer_pings` is False. The flag
   is cleared in process_request() for /nopong, i.e. before the 101 response goes
   out, so no ping can slip through.
 * PeerConnection.process_event() sees every incoming frame, control frames
   included (that is where websockets itself matches pongs to its pings); it counts
   ping and unsolicited pong frames there, synchronously, in arrival order.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import http
import json
import logging
import os
import signal
import socket
import ssl
import stat
import struct
import sys
import threading
import time
from collections import deque
from typing import Any, Deque, Optional, Sequence
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

log = logging.getLogger("ctrlchan.peer")

MAX_SIZE = 64 * 1024 * 1024
SUBPROTOCOLS = ("chat", "superchat")
PATHS = ("/echo", "/push", "/close", "/drop", "/nopong", "/big", "/subprotocol", "/headers", "/count")
TIMES_KEPT = 1000


class PeerServerProtocol(ServerProtocol):
    """websockets' server protocol with an off switch for the automatic pong."""

    answer_pings = True

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PING and not self.answer_pings:
            # Same as Protocol.recv_frame() for a ping, minus the pong frame.
            self.events.append(frame)
            return
        super().recv_frame(frame)


class PeerConnection(ServerConnection):
    """A server connection that counts the control frames it receives."""

    def __init__(self, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        # serve() builds a plain ServerProtocol; give it the subclass behaviour.
        # PeerServerProtocol adds no state beyond a class attribute default.
        protocol.__class__ = PeerServerProtocol
        super().__init__(protocol, *args, **kwargs)
        self.pings_received = 0
        self.unsolicited_pongs_received = 0
        self.ping_times: Deque[float] = deque(maxlen=TIMES_KEPT)
        self.pong_times: Deque[float] = deque(maxlen=TIMES_KEPT)
        self.opened_at = time.monotonic()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame):
            if event.opcode is Opcode.PING:
                self.pings_received += 1
                self.ping_times.append(time.monotonic())
            elif event.opcode is Opcode.PONG and bytes(event.data) not in self.pending_pings:
                self.unsolicited_pongs_received += 1
                self.pong_times.append(time.monotonic())
        super().process_event(event)


def _query(ws: ServerConnection) -> tuple[str, dict[str, str]]:
    assert ws.request is not None
    parts = urlsplit(ws.request.path)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return parts.path, query


def _int(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name)
    return int(value) if value else default


async def _drain(ws: ServerConnection) -> None:
    """Read and discard until the client closes (keeps pongs and close working)."""
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


async def handle_echo(ws: ServerConnection, q: dict[str, str]) -> None:
    try:
        async for message in ws:
            await ws.send(message)  # str stays text, bytes stays binary
    except ConnectionClosed:
        pass


def push_message(i: int, size: int, kind: str) -> str | bytes:
    if kind == "binary":
        head = struct.pack(">I", i & 0xFFFFFFFF)
        return head + b"." * max(0, size - len(head))
    text = f"msg {i}"
    return text + "." * max(0, size - len(text))


async def handle_push(ws: ServerConnection, q: dict[str, str]) -> None:
    n = _int(q, "n", 1)
    size = _int(q, "size", 0)
    interval = _int(q, "interval_ms", 0) / 1000.0
    kind = q.get("type", "text")
    if kind not in ("text", "binary"):
        raise ValueError(f"type must be text or binary, not {kind!r}")
    drain = asyncio.ensure_future(_drain(ws))
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(n):
            if interval > 0 and i > 0:
                # Fixed-rate schedule: message i is due at start + i * interval.
                await asyncio.sleep(max(0.0, start + i * interval - loop.time()))
            await ws.send(push_message(i, size, kind))
    except ConnectionClosed:
        pass
    await drain


async def handle_close(ws: ServerConnection, q: dict[str, str]) -> None:
    code = _int(q, "code", 1000)
    reason = q.get("reason", "")
    drain = asyncio.ensure_future(_drain(ws))
    await asyncio.sleep(_int(q, "after_ms", 0) / 1000.0)
    await ws.close(code, reason)
    await drain


async def handle_drop(ws: ServerConnection, q: dict[str, str]) -> None:
    how = q.get("how", "fin")
    if how not in ("fin", "rst"):
        raise ValueError(f"how must be fin or rst, not {how!r}")
    drain = asyncio.ensure_future(_drain(ws))
    await asyncio.sleep(_int(q, "after_ms", 0) / 1000.0)
    if how == "rst":
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()
    await drain


async def handle_nopong(ws: ServerConnection, q: dict[str, str]) -> None:
    await _drain(ws)


async def handle_big(ws: ServerConnection, q: dict[str, str]) -> None:
    size = _int(q, "size", 0)
    kind = q.get("type", "binary")
    drain = asyncio.ensure_future(_drain(ws))
    try:
        await ws.send("x" * size if kind == "text" else b"\xab" * size)
    except ConnectionClosed:
        pass
    await drain


async def handle_subprotocol(ws: ServerConnection, q: dict[str, str]) -> None:
    drain = asyncio.ensure_future(_drain(ws))
    try:
        await ws.send(ws.subprotocol or "")
    except ConnectionClosed:
        pass
    await drain


async def handle_headers(ws: ServerConnection, q: dict[str, str]) -> None:
    assert ws.request is not None
    headers: dict[str, str] = {}
    for name, value in ws.request.headers.raw_items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    drain = asyncio.ensure_future(_drain(ws))
    try:
        await ws.send(json.dumps(headers, sort_keys=True))
    except ConnectionClosed:
        pass
    await drain


async def handle_count(ws: ServerConnection, q: dict[str, str]) -> None:
    assert isinstance(ws, PeerConnection)
    messages = 0
    try:
        async for message in ws:
            if message == "stats":
                t0 = ws.opened_at
                await ws.send(
                    json.dumps(
                        {
                            "messages": messages,
                            "pings": ws.pings_received,
                            "pongs": ws.unsolicited_pongs_received,
                            "ping_times_ms": [round((t - t0) * 1000.0, 3) for t in ws.ping_times],
                            "pong_times_ms": [round((t - t0) * 1000.0, 3) for t in ws.pong_times],
                        }
                    )
                )
            else:
                messages += 1
    except ConnectionClosed:
        pass


HANDLERS = {
    "/echo": handle_echo,
    "/push": handle_push,
    "/close": handle_close,
    "/drop": handle_drop,
    "/nopong": handle_nopong,
    "/big": handle_big,
    "/subprotocol": handle_subprotocol,
    "/headers": handle_headers,
    "/count": handle_count,
}


def process_request(connection: ServerConnection, request: Request) -> Optional[Response]:
    path = urlsplit(request.path).path
    if path not in HANDLERS:
        return connection.respond(http.HTTPStatus.NOT_FOUND, f"no such path: {path}\n")
    if path == "/nopong":
        # Before the 101 response is sent, so even an immediate ping is not answered.
        assert isinstance(connection.protocol, PeerServerProtocol)
        connection.protocol.answer_pings = False
    return None


def select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Optional[Subprotocol]:
    assert connection.request is not None
    if urlsplit(connection.request.path).path != "/subprotocol":
        return None
    for protocol in offered:  # the client's order decides
        if protocol in SUBPROTOCOLS:
            return protocol
    return None


async def handler(ws: ServerConnection) -> None:
    path, query = _query(ws)
    try:
        await HANDLERS[path](ws, query)
    except ValueError as exc:
        # Bad query parameter: tell the client in the close reason.
        log.warning("%s: %s", ws.request.path if ws.request else "?", exc)
        await ws.close(1008, str(exc)[:120])


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the process that started us exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


def stdin_is_watched() -> bool:
    """EOF on stdin means "exit" only when stdin can actually be held open."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set `stop` when stdin reaches EOF (read on a daemon thread; works for any fd type)."""

    def reader() -> None:
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=reader, name="stdin-watch", daemon=True).start()


def make_ssl_context(cert: str, key: str, client_ca: Optional[str] = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca:
        # Mutual TLS: a client without a certificate from this CA fails the handshake.
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


async def main_async(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ssl_context = make_ssl_context(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None

    server = await serve(
        handler,
        args.host,
        args.port,
        ssl=ssl_context,
        create_connection=PeerConnection,
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        ping_interval=None,
        max_size=MAX_SIZE,
        compression=None,
        close_timeout=5,
        open_timeout=10,
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    if stdin_is_watched():
        watch_stdin(loop, stop)
    await stop.wait()
    # Tests want a quick exit, not a polite one: stop listening, drop every
    # connection, give the handlers a moment to notice.
    server.close(close_connections=False)
    for connection in list(server.connections):
        connection.transport.abort()
    try:
        await asyncio.wait_for(server.wait_closed(), 2.0)
    except asyncio.TimeoutError:
        pass


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: ephemeral)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; tests in network namespaces bind others)"
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve wss://")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--tls-client-ca", help="require a client certificate from this CA (CERT_REQUIRED)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log connections to stderr")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="peer-server: %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # websockets logs every failed handshake (e.g. a test's 404 or a client
        # that vanished mid-handshake) with a traceback; tests provoke those.
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
    _die_with_parent()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
