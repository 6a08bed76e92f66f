#!/usr/bin/env python3
"""The Windows ControlChannelTrigger sample, in Python with ctrlchan.

What the Windows sample's CommunicationModule does, step for step:

1. create the transport (``MessageWebSocket``) and the ``ControlChannelTrigger``
   (channel id, server keep-alive interval, hardware or software slot);
2. bind the ``WebSocketKeepAlive`` task to the channel's keep-alive trigger;
3. set the push-notification handler (here: read the runtime's event queue, or
   ``--callbacks`` for a per-channel ``on_event`` handler on the runtime thread);
4. ``using_transport(ws)`` before connecting, then connect;
5. ``wait_for_push_enabled()`` and check the status;
6. from then on the runtime sends keep-alives and delivers pushes; when the transport
   is lost or closed, reconnect with a new websocket (the channel reports RESET).

Usage::

    python examples/python/control_channel_trigger.py                 # starts the test peer itself
    python examples/python/control_channel_trigger.py ws://host:port/feed --seconds 60
    python examples/python/control_channel_trigger.py --callbacks --hardware

With no URL the script starts the repository's test peer (tests/peer/server.py, needs the
`websockets` package) on 127.0.0.1 and subscribes to its /push feed. Exit status 0 when
the channel was enabled and at least one push and one keep-alive were seen.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ctrlchan import (
    ControlChannelTrigger,
    ControlChannelTriggerResourceType,
    ControlChannelTriggerStatus,
    CtrlChanError,
    Event,
    EventKind,
    EventMask,
    KeepAliveMode,
    MessageWebSocket,
    Runtime,
    SocketMessageType,
    WebSocketKeepAlive,
)

REPO = Path(__file__).resolve().parents[2]
ENABLED = (ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED, ControlChannelTriggerStatus.HARDWARE_SLOT_ALLOCATED)


@contextlib.contextmanager
def feed_url(url: Optional[str], push_interval_ms: int) -> Iterator[str]:
    """The given URL, or the /push feed of a test peer started for the duration."""
    if url:
        yield url
        return
    sys.path.insert(0, str(REPO / "tests" / "peer"))
    peer: Any = importlib.import_module("peer")
    with peer.start_server() as server:
        yield server.url(f"/push?n=100000&size=0&interval_ms={push_interval_ms}&type=text")


class CommunicationModule:
    """One control channel with reconnect, like the sample's CommunicationModule."""

    def __init__(self, rt: Runtime, url: str, args: argparse.Namespace) -> None:
        self.rt = rt
        self.url = url
        self.args = args
        self.pushes = 0
        self.keepalives = 0
        self.enabled = False
        self.lock = threading.Lock()
        resource = (
            ControlChannelTriggerResourceType.REQUEST_HARDWARE_SLOT
            if args.hardware
            else ControlChannelTriggerResourceType.REQUEST_SOFTWARE_SLOT
        )
        # 1-2. The channel and its keep-alive task.
        self.channel = ControlChannelTrigger(rt, "channelOne", server_keepalive_interval=args.interval, resource_type=resource)
        self.channel.keepalive = WebSocketKeepAlive(mode=KeepAliveMode.PING, pong_timeout=args.pong_timeout)
        # KEEPALIVE events are off by default (only data, loss, close, connects and resets wake
        # the app; RTT is in channel.statistics). This sample prints every keep-alive, so it asks
        # for all of them.
        self.channel.event_mask = EventMask.ALL
        # 3. Push-notification handler (otherwise events are read from the runtime queue).
        if args.callbacks:
            self.channel.on_event = self.on_event
        self.ws: Optional[MessageWebSocket] = None

    def setup_transport(self) -> ControlChannelTriggerStatus:
        # 4. A new socket for every (re)connection, bound before connect.
        ws = MessageWebSocket(self.rt)
        ws.control.message_type = SocketMessageType.UTF8
        ws.set_request_header("User-Agent", "ctrlchan-python-sample")
        self.channel.using_transport(ws)
        ws.connect(self.url, timeout=10.0)
        self.ws = ws
        # 5. Register for keep-alives and push delivery.
        status = self.channel.wait_for_push_enabled()
        print(f"wait_for_push_enabled: {status.name} (keep-alive every {self.channel.current_keepalive_interval:g} s)")
        self.enabled = self.enabled or status in ENABLED
        return status

    def on_event(self, ev: Event) -> None:
        """The push-notification / keep-alive / reset handler (queue or runtime thread)."""
        with self.lock:
            if ev.kind is EventKind.PUSH_NOTIFICATION:
                self.pushes += 1
                if self.pushes <= 5 or self.pushes % 10 == 0:
                    print(f"push #{self.pushes}: {ev.text if ev.text is not None else ev.data!r}")
            elif ev.kind is EventKind.KEEPALIVE:
                self.keepalives += 1
                print(f"keep-alive #{self.keepalives}: rtt {ev.rtt * 1000.0:.2f} ms")
            elif ev.kind in (EventKind.CLOSED, EventKind.TRANSPORT_DISCONNECTED):
                print(f"transport ended: {ev.kind.name} {ev.close_code or ''} {ev.reason}")
            else:
                print(f"{ev.kind.name} {ev.reason}")

    def needs_reconnect(self) -> bool:
        return self.ws is not None and self.ws.state.name == "CLOSED"


def run(args: argparse.Namespace) -> int:
    with feed_url(args.url, args.push_interval_ms) as url, Runtime() as rt:
        print(f"connecting to {url}")
        module = CommunicationModule(rt, url, args)
        if module.setup_transport() not in ENABLED:
            print("the channel could not be enabled", file=sys.stderr)
            return 1
        deadline = time.monotonic() + args.seconds
        reconnects = 0
        while time.monotonic() < deadline:
            # 6. Events: pushes, keep-alives, loss. With --callbacks they went to on_event.
            for ev in rt.events(timeout=min(0.5, max(0.0, deadline - time.monotonic()))):
                module.on_event(ev)
            if module.needs_reconnect() and reconnects < args.max_reconnects:
                reconnects += 1
                print(f"reconnecting ({reconnects}/{args.max_reconnects})")
                try:
                    module.setup_transport()
                except CtrlChanError as exc:
                    print(f"reconnect failed: {exc}", file=sys.stderr)
                    time.sleep(1.0)
        stats = rt.statistics
        print(
            f"done: {module.pushes} pushes, {module.keepalives} keep-alives, "
            f"{stats.keepalives_sent} keep-alives sent, {stats.wakeups} reactor wake-ups"
        )
        return 0 if module.enabled and module.pushes > 0 and module.keepalives > 0 else 1


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="ctrlchan ControlChannelTrigger sample")
    p.add_argument("url", nargs="?", help="ws:// or wss:// feed (default: start the test peer)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    p.add_argument("--interval", type=float, default=1.0, help="server keep-alive interval, s (default 1)")
    p.add_argument("--pong-timeout", type=float, default=2.0, help="pong timeout, s (default 2)")
    p.add_argument("--push-interval-ms", type=int, default=700, help="peer push interval (default 700)")
    p.add_argument("--hardware", action="store_true", help="request a hardware slot (kernel TCP keep-alive)")
    p.add_argument("--callbacks", action="store_true", help="handle events in on_event on the runtime thread")
    p.add_argument("--max-reconnects", type=int, default=3)
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run(parse_args()))
