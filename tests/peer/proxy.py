#!/usr/bin/env python3
"""A tiny TCP proxy whose failures a test controls (stdlib only).

Usage::

    python tests/peer/proxy.py --target-port P [--target-host 127.0.0.1]

Listens on an ephemeral port of 127.0.0.1, prints ``PORT <n>`` on stdout, and for each
accepted connection opens one to the target and forwards bytes both ways. Commands
arrive one per line on stdin; each is acknowledged on stdout with ``OK <command>``
(``ERR <line>`` for an unknown one), flushed:

  blackhole   from now on keep every connection (current and new) open but silently
              drop all bytes in both directions: a dead NAT mapping or a frozen peer
  pass        resume forwarding (bytes dropped meanwhile stay lost)
  reset       abort every current connection, both sides, with a TCP RST
              (SO_LINGER 0, then close)
  nat <ms>    NAT mode: a connection idle (no byte in either direction) for longer than
              <ms> is forgotten like a NAT mapping that timed out: from then on every byte
              and FIN of it is dropped, both ways, and no RST is sent; the client's side stays
              open until the client closes it. Applies at once to current connections (their
              idle time so far counts) and may be changed at any time; ``nat off`` (or
              ``nat 0``) ends it (connections already forgotten stay forgotten).
              ``--nat-timeout-ms`` sets it from the start.
  stats       ``OK stats connections=<open> accepted=<total> up=<bytes client->target>
              down=<bytes target->client> dropped=<bytes dropped> nat_forgotten=<connections>``
  quit        acknowledge and exit

Exits on EOF of stdin (when stdin is a pipe, socket or tty; a /dev/null stdin is
not watched), on SIGTERM/SIGINT and, on Linux, when its parent process dies.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time
from typing import Optional, Sequence, Set, Tuple


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.blackholed = False
        self.nat_timeout: Optional[float] = None  # seconds; None = NAT mode off
        self.nat_forgotten = 0
        self.pairs: Set[Pair] = set()
        self.accepted = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.bytes_dropped = 0

    def stats(self) -> str:
        for pair in list(self.pairs):
            pair.nat_alive()  # an idle mapping is forgotten even if no byte tried it yet
        return (
            f"connections={len(self.pairs)} accepted={self.accepted} "
            f"up={self.bytes_up} down={self.bytes_down} dropped={self.bytes_dropped} "
            f"nat_forgotten={self.nat_forgotten}"
        )

    def reset_all(self) -> None:
        for pair in list(self.pairs):
            pair.reset()


class Side(asyncio.Protocol):
    """One TCP connection of a pair (the client's or the target's)."""

    def __init__(self, pair: "Pair") -> None:
        self.pair = pair
        self.transport: Optional[asyncio.Transport] = None
        self.pending = bytearray()  # bytes for this side that arrived before it connected
        self.eof = False  # EOF received from this side
        self.gone = False  # connection lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.pair.forward(self, data)

    def eof_received(self) -> Optional[bool]:
        self.eof = True
        self.pair.eof_from(self)
        return True  # half-close: keep writing the other direction

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.gone = True
        self.pair.lost(self)

    # Flow control: when this side's write buffer is full, stop reading the other.
    def pause_writing(self) -> None:
        self.pair.other(self).set_reading(False)

    def resume_writing(self) -> None:
        self.pair.other(self).set_reading(True)

    def set_reading(self, on: bool) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.resume_reading() if on else t.pause_reading()

    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


class Pair:
    """A client connection and its connection to the target."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.client = Side(self)
        self.target = Side(self)
        self.last_activity = time.monotonic()  # the NAT mapping is made with the SYN
        self.forgotten = False  # NAT mode dropped this connection's mapping

    def nat_alive(self) -> bool:
        """False once the NAT forgot this connection (it was idle longer than the timeout)."""
        if self.forgotten:
            return False
        timeout = self.proxy.nat_timeout
        if timeout is not None and time.monotonic() - self.last_activity > timeout:
            self.forgotten = True
            self.proxy.nat_forgotten += 1
            return False
        return True

    def other(self, side: Side) -> Side:
        return self.target if side is self.client else self.client

    def forward(self, side: Side, data: bytes) -> None:
        if self.proxy.blackholed or not self.nat_alive():
            self.proxy.bytes_dropped += len(data)
            return
        self.last_activity = time.monotonic()
        if side is self.client:
            self.proxy.bytes_up += len(data)
        else:
            self.proxy.bytes_down += len(data)
        dest = self.other(side)
        if dest.transport is None:
            dest.pending += data  # target still connecting
        elif dest.usable():
            dest.transport.write(data)

    def target_connected(self) -> None:
        t = self.target.transport
        assert t is not None
        if self.target.pending:
            t.write(bytes(self.target.pending))
            self.target.pending.clear()
        if self.client.eof:
            self.eof_from(self.client)

    def eof_from(self, side: Side) -> None:
        if self.proxy.blackholed or not self.nat_alive():
            return  # a blackhole (or a forgotten NAT mapping) swallows FINs too
        dest = self.other(side)
        if not dest.usable():
            return
        assert dest.transport is not None
        if dest.eof:
            # Both directions finished: close both connections.
            dest.transport.close()
            if side.usable():
                assert side.transport is not None
                side.transport.close()
        elif dest.transport.can_write_eof():
            dest.transport.write_eof()

    def lost(self, side: Side) -> None:
        dest = self.other(side)
        alive = self.nat_alive()
        if not alive and side is self.client and dest.usable():
            # The client gave up on a forgotten connection: let the target go too (a FIN the
            # client can no longer see), so long NAT runs do not pile up server connections.
            assert dest.transport is not None
            dest.transport.close()
        elif alive and not self.proxy.blackholed and dest.usable():
            assert dest.transport is not None
            dest.transport.close()  # graceful: buffered bytes still go out
        if self.finished():
            self.proxy.pairs.discard(self)

    def finished(self) -> bool:
        return all(s.gone or s.transport is None for s in (self.client, self.target))

    def unblock(self) -> None:
        """After a blackhole: a side that vanished meanwhile takes the other with it."""
        for side in (self.client, self.target):
            if side.gone:
                self.lost(side)

    def reset(self) -> None:
        for side in (self.client, self.target):
            t = side.transport
            if t is None or t.is_closing():
                continue
            sock = t.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            t.abort()
        self.proxy.pairs.discard(self)


async def open_pair(proxy: Proxy, pair: Pair) -> None:
    loop = asyncio.get_running_loop()
    try:
        await loop.create_connection(lambda: pair.target, proxy.target_host, proxy.target_port)
    except OSError:
        # Target refused: refuse the client the same way, with a RST.
        pair.reset()
        return
    if pair.client.transport is None or pair.client.transport.is_closing():
        if pair.target.transport is not None:
            pair.target.transport.close()
        proxy.pairs.discard(pair)
        return
    pair.target_connected()


def parse_nat(arg: str) -> Tuple[bool, Optional[float]]:
    """The `nat` argument: (valid, timeout in seconds or None for off)."""
    arg = arg.strip()
    if arg == "off":
        return True, None
    try:
        ms = float(arg)
    except ValueError:
        return False, None
    if not 0 <= ms < float("inf"):
        return False, None
    return True, (ms / 1000.0 if ms > 0 else None)


def stdin_is_watched() -> bool:
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def start_stdin_reader(loop: asyncio.AbstractEventLoop, queue: "asyncio.Queue[Optional[str]]") -> None:
    """Feed stdin lines into `queue` (None at EOF), from a daemon thread."""

    def reader() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=reader, name="stdin-commands", daemon=True).start()


def reply(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    proxy = Proxy(args.target_host, args.target_port)
    if args.nat_timeout_ms > 0:
        proxy.nat_timeout = args.nat_timeout_ms / 1000.0
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def accept() -> Side:
        pair = Pair(proxy)
        proxy.pairs.add(pair)
        proxy.accepted += 1
        loop.create_task(open_pair(proxy, pair))
        return pair.client

    server = await loop.create_server(accept, "127.0.0.1", args.port)
    reply(f"PORT {server.sockets[0].getsockname()[1]}")

    commands: "asyncio.Queue[Optional[str]]" = asyncio.Queue()
    if stdin_is_watched():
        start_stdin_reader(loop, commands)

    async def run_commands() -> None:
        while True:
            line = await commands.get()
            if line is None:
                return
            command = line.strip()
            if not command:
                continue
            if command == "blackhole":
                proxy.blackholed = True
            elif command == "pass":
                proxy.blackholed = False
                for pair in list(proxy.pairs):
                    pair.unblock()
            elif command == "reset":
                proxy.reset_all()
            elif command.startswith("nat "):
                ok, timeout = parse_nat(command[4:])
                if not ok:
                    reply(f"ERR {command}")
                    continue
                proxy.nat_timeout = timeout
            elif command == "stats":
                reply(f"OK stats {proxy.stats()}")
                continue
            elif command == "quit":
                reply("OK quit")
                return
            else:
                reply(f"ERR {command}")
                continue
            reply(f"OK {command}")

    command_task = loop.create_task(run_commands())
    stop_task = loop.create_task(stop.wait())
    await asyncio.wait({command_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    server.close()
    proxy.reset_all()


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="TCP proxy with blackhole/reset/nat commands on stdin")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (0: ephemeral)")
    parser.add_argument("--nat-timeout-ms", type=float, default=0, help="start in NAT mode (see `nat <ms>`)")
    args = parser.parse_args(argv)
    _die_with_parent()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
