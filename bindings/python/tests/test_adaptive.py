"""Adaptive keep-alive from Python: the (min, max) property, INTERVAL_CHANGED with
``event.interval``, ``current_keepalive_interval`` following the learner, and the state file
(restart resumes the learned value; a malformed file is ignored with a warning line).

On the loopback peer no NAT forgets anything, so the learner ramps to ``max`` (x2 after three
acknowledged keep-alives) and settles there; the NAT behaviour is tested in tests/adaptive_nat*.rs.
"""

from __future__ import annotations

import logging

import time
from pathlib import Path

import pytest

from conftest import collect, open_channel
from ctrlchan import ControlChannelTrigger, EventKind, InvalidArgumentError, Runtime, WebSocketKeepAlive


def test_range_is_checked_and_read_back(rt: Runtime) -> None:
    ch = ControlChannelTrigger(rt, "adaptive", server_keepalive_interval=30.0)
    assert ch.adaptive_keepalive is None
    for bad in [(0.05, 1.0), (2.0, 1.0), (0.0, 0.0), (0.5, 100_000.0)]:
        with pytest.raises(InvalidArgumentError):
            ch.adaptive_keepalive = bad
    with pytest.raises(TypeError):
        ch.adaptive_keepalive = 5.0  # type: ignore[assignment]
    ch.adaptive_keepalive = (0.5, 600.0)
    assert ch.adaptive_keepalive == (0.5, 600.0)
    assert ch.current_keepalive_interval == 0.5  # the learner starts at min
    assert ch.statistics.current_interval == 0.5
    ch.adaptive_keepalive = None
    assert ch.adaptive_keepalive is None
    assert ch.current_keepalive_interval == 30.0  # off: the server interval again
    ch.close()


def _ramp(rt: Runtime, url: str, state: Path) -> None:
    rt.state_file = state
    ch, ws = open_channel(rt, url, channel_id="ramp", interval=8.0, keepalive=WebSocketKeepAlive(pong_timeout=1.0))
    ch.adaptive_keepalive = (0.2, 0.8)
    moves = collect(rt, EventKind.INTERVAL_CHANGED, 2, timeout=6.0)
    assert [round(e.interval, 3) for e in moves] == [0.4, 0.8]
    assert all(e.channel is ch for e in moves)
    assert ch.current_keepalive_interval == 0.8
    time.sleep(2.7)  # three keep-alives at max are acknowledged: that is what gets filed
    ws.close()
    ch.close()


def test_state_file_resumes_the_learned_value_after_a_restart(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "adaptive.txt"
    with Runtime(coalescing_window=0.0) as rt:
        assert rt.state_file is None
        _ramp(rt, server.url("/echo"), state)
        assert rt.state_file == str(state)
    text = state.read_text()
    assert text.startswith("ctrlchan-adaptive v1"), text
    if "\t127.0.0.1:" not in text:
        pytest.skip("no default route on this machine: nothing is filed without a network key")
    with Runtime(coalescing_window=0.0) as rt:
        rt.set_state_file(state)
        ch, ws = open_channel(rt, server.url("/echo"), channel_id="again", interval=8.0)
        ch.adaptive_keepalive = (0.2, 0.8)
        ev = collect(rt, EventKind.INTERVAL_CHANGED, 1, timeout=3.0)[0]
        assert 0.7 <= ev.interval <= 0.8, ev  # the longest acknowledged gap, no probe from min
        assert ch.current_keepalive_interval == ev.interval
        ws.close()
        ch.close()


def test_malformed_state_file_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ctrlchan")
    state = tmp_path / "broken.txt"
    state.write_bytes(b"\xff\xfe not a state file\n")
    with Runtime() as rt:
        rt.state_file = state  # not an error
        warned = [r.getMessage() for r in caplog.records if r.name == "ctrlchan" and r.levelno == logging.WARNING]
        assert any("adaptive keep-alive" in m and "broken.txt" in m for m in warned), warned
        ch = ControlChannelTrigger(rt, "fresh", server_keepalive_interval=30.0)
        ch.adaptive_keepalive = (1.0, 60.0)
        assert ch.current_keepalive_interval == 1.0
        rt.state_file = None
        assert rt.state_file is None
        ch.close()
