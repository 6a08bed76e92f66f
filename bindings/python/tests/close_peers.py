"""Two in-process loopback peers for close and free tests (tests/peer/server.py cannot report
what it received when a connection ends).

* :class:`RecordingServer` — a `websockets` server (asyncio API, in a thread) that echoes
  every message and records, per connection, the close frame the client sent (code and
  reason) once the connection is over.
* :class:`SilentServer` — a raw TCP peer that completes the WebSocket opening handshake and
  then never sends anything again: it never answers a close frame. It reads (and keeps)
  what the client sends, so a test can see the close frame and when the client dropped
  the connection.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["ClosedConnection", "RecordingServer", "SilentServer", "unique_path"]


def unique_path(prefix: str = "/rec") -> str:
    return f"{prefix}/{uuid.uuid4().hex}"


@dataclass(frozen=True)
class ClosedConnection:
    path: str
    close_frame_received: bool  # the client sent a close frame
    code: Optional[int]  # its code (None without a close frame)
    reason: str
    answered: bool  # the server sent its close frame back


class RecordingServer:
    def __init__(self) -> None:
        self._closed: Dict[str, ClosedConnection] = {}
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._stop: Optional[asyncio.Future[None]] = None
        started = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, args=(started,), name="recording-peer", daemon=True)
        self._thread.start()
        if not started.wait(10.0):
            raise RuntimeError("the recording peer did not start")

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main(started))

    async def _main(self, started: threading.Event) -> None:
        self._stop = self._loop.create_future()
        async with serve(self._handler, "127.0.0.1", 0, ping_interval=None, compression=None) as server:
            self.port = list(server.sockets)[0].getsockname()[1]
            started.set()
            await self._stop

    async def _handler(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            rcvd = ws.protocol.close_rcvd
            record = ClosedConnection(
                path=ws.request.path if ws.request is not None else "",
                close_frame_received=rcvd is not None,
                code=rcvd.code if rcvd is not None else None,
                reason=rcvd.reason if rcvd is not None else "",
                answered=ws.protocol.close_sent is not None,
            )
            with self._cond:
                self._closed[record.path] = record
                self._cond.notify_all()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def wait_closed(self, path: str, timeout: float = 5.0) -> ClosedConnection:
        """How the connection opened at ``path`` ended (waits until it has)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while path not in self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the connection to {path} did not end within {timeout} s")
                self._cond.wait(left)
            return self._closed[path]

    def close(self) -> None:
        def stop() -> None:
            if self._stop is not None and not self._stop.done():
                self._stop.set_result(None)

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(10.0)
        self._loop.close()


_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class SilentConnection:
    received: bytearray = field(default_factory=bytearray)  # everything after the handshake

    def __post_init__(self) -> None:
        self.ended = threading.Event()  # the client closed (or reset) the TCP connection
        self.ended_at = 0.0

    def close_frames(self) -> List[Optional[int]]:
        """Close codes of the (masked) client frames received so far (None: no code)."""
        out: List[Optional[int]] = []
        data = bytes(self.received)
        i = 0
        while i + 2 <= len(data):
            opcode = data[i] & 0x0F
            n = data[i + 1] & 0x7F
            j = i + 2
            if n == 126:
                if j + 2 > len(data):
                    break
                (n,) = struct.unpack(">H", data[j : j + 2])
                j += 2
            elif n == 127:
                if j + 8 > len(data):
                    break
                (n,) = struct.unpack(">Q", data[j : j + 8])
                j += 8
            masked = bool(data[i + 1] & 0x80)
            mask = data[j : j + 4] if masked else b"\0\0\0\0"
            j += 4 if masked else 0
            if j + n > len(data):
                break
            payload = bytes(b ^ mask[k % 4] for k, b in enumerate(data[j : j + n]))
            if opcode == 8:
                out.append(struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None)
            i = j + n
        return out


class SilentServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections: List[SilentConnection] = []
        self._socks: List[socket.socket] = []
        self._lock = threading.Lock()
        self._accepted = threading.Condition(self._lock)
        threading.Thread(target=self._accept_loop, name="silent-peer", daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = SilentConnection()
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            key = b""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            conn.received += rest
            with self._lock:
                self.connections.append(conn)
                self._socks.append(sock)
                self._accepted.notify_all()
            while True:  # read and keep everything; never answer
                chunk = sock.recv(65536)
                if not chunk:
                    break
                conn.received += chunk
        except OSError:
            pass
        finally:
            conn.ended_at = time.monotonic()
            conn.ended.set()

    def wait_connection(self, index: int = 0, timeout: float = 5.0) -> SilentConnection:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.connections) <= index:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no connection to the silent peer")
                self._accepted.wait(left)
            return self.connections[index]

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
