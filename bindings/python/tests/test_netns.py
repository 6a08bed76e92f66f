"""Network change: a channel whose local address goes away is probed at once and reconnects in
under 2 s (instead of waiting for the next keep-alive + pong timeout), with RESET reason
NETWORK_CHANGED.

The test builds its own two-host network: a network namespace holding the server and a veth pair
to it. It needs root (or CAP_NET_ADMIN) and `ip`; where it cannot create namespaces it is skipped
with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from ctrlchan import (
    ControlChannelTrigger,
    ControlChannelTriggerResetReason,
    EventKind,
    MessageWebSocket,
    ReconnectPolicy,
    Runtime,
    WebSocketKeepAlive,
)

PEER = Path(__file__).resolve().parents[3] / "tests" / "peer" / "server.py"
TAG = f"cc{os.getpid() % 100000}"
NS, VA, VB = f"{TAG}ns", f"{TAG}a", f"{TAG}b"
NET = f"10.{77 + os.getpid() % 100}.{os.getpid() % 250}"
CLIENT_OLD, CLIENT_NEW, SERVER = f"{NET}.1", f"{NET}.3", f"{NET}.2"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def _must(*args: str) -> None:
    r = _ip(*args)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")


@pytest.fixture
def two_hosts() -> Iterator[Tuple[str, int]]:
    if shutil.which("ip") is None:
        pytest.skip("network-namespace test skipped: the `ip` command (iproute2) is not installed")
    r = _ip("netns", "add", NS)
    if r.returncode != 0:
        pytest.skip(f"network-namespace test skipped: cannot create a namespace here ({r.stderr.strip()})")
    server = None
    try:
        _must("link", "add", VA, "type", "veth", "peer", "name", VB)
        _must("link", "set", VB, "netns", NS)
        _must("addr", "add", f"{CLIENT_OLD}/24", "dev", VA)
        _must("link", "set", VA, "up")
        _must("-n", NS, "addr", "add", f"{SERVER}/24", "dev", VB)
        _must("-n", NS, "link", "set", VB, "up")
        _must("-n", NS, "link", "set", "lo", "up")
        server = subprocess.Popen(
            ["ip", "netns", "exec", NS, sys.executable, str(PEER), "--host", SERVER, "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        assert line.startswith("PORT "), line
        yield SERVER, int(line.split()[1])
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
        _ip("link", "del", VA)
        _ip("netns", "del", NS)


def test_address_change_is_detected_and_the_channel_recovers_within_2_s(two_hosts: Tuple[str, int]) -> None:
    host, port = two_hosts
    with Runtime() as rt:
        ws = MessageWebSocket(rt)
        ch = ControlChannelTrigger(rt, "roaming", server_keepalive_interval=600.0)
        ch.keepalive = WebSocketKeepAlive(pong_timeout=1.0)
        # A long backoff: only a probe-found loss reconnects at once.
        ch.reconnect_policy = ReconnectPolicy(initial_delay=5.0, max_delay=5.0, multiplier=1.0, jitter=0.0, max_attempts=0)
        ch.using_transport(ws)
        ws.connect(f"ws://{host}:{port}/echo", timeout=5.0)
        ch.wait_for_push_enabled()
        # The laptop moves: the old address goes, a new one comes.
        t0 = time.monotonic()
        # (Deleting the primary address of a subnet also drops its secondaries: delete, then add.)
        _must("addr", "del", f"{CLIENT_OLD}/24", "dev", VA)
        _must("addr", "add", f"{CLIENT_NEW}/24", "dev", VA)
        seen: List[EventKind] = []
        reset = None
        for ev in rt.events(timeout=5.0):
            seen.append(ev.kind)
            if ev.kind is EventKind.RESET:
                reset = ev
                break
        elapsed = time.monotonic() - t0
        assert reset is not None, seen
        assert reset.reset_reason is ControlChannelTriggerResetReason.NETWORK_CHANGED, reset
        assert EventKind.RECONNECTING in seen
        assert elapsed < 2.0, f"recovered after {elapsed:.2f} s"
        # The same websocket works over the new address.
        ws.send(b"after the move")
        for ev in rt.events(timeout=5.0):
            if ev.kind is EventKind.PUSH_NOTIFICATION:
                assert ev.data == b"after the move"
                break
        ch.close()
        ws.close()
