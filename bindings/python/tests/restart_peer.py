"""A `websockets` peer (asyncio API, in a thread) that can be stopped and restarted on the same port.

Every connection gets a text message ``"hello <n>"`` (n = the connection's number, from 1), then
every text message it sends is recorded (``received``) and answered with ``"ack <message>"``.
:meth:`stop` aborts every connection without a close frame (like a crashed or killed server
process: the client sees EOF) and closes the listening socket; :meth:`start` listens again on
the same port. Everything is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Coroutine, List, Optional, Set

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["RestartablePeer"]


class RestartablePeer:
    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self.received: List[str] = []
        self._cond = threading.Condition()
        self._live: Set[ServerConnection] = set()
        self._server: Optional[Server] = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="restart-peer", daemon=True)
        self._thread.start()
        self.start()

    def url(self, path: str = "/feed") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _call(self, coro: Coroutine[Any, Any, None], timeout: float = 10.0) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        try:
            if self._server is not None:
                self.stop()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)

    async def _start(self) -> None:
        self._server = await serve(
            self._handler, "127.0.0.1", self.port, ping_interval=None, compression=None, reuse_address=True
        )
        self.port = list(self._server.sockets)[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close(close_connections=False)
        for ws in list(self._live):
            ws.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _handler(self, ws: ServerConnection) -> None:
        self._live.add(ws)
        with self._cond:
            self.connections += 1
            n = self.connections
            self._cond.notify_all()
        try:
            await ws.send(f"hello {n}")
            async for message in ws:
                if isinstance(message, str):
                    with self._cond:
                        self.received.append(message)
                        self._cond.notify_all()
                    await ws.send(f"ack {message}")
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(ws)

    def wait_received(self, count: int, timeout: float) -> List[str]:
        """Block until at least ``count`` messages were received (or the time is up)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.received)
