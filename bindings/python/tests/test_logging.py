"""Native log lines reach logging.getLogger("ctrlchan") with no setup beyond logging itself."""

from __future__ import annotations

import logging
import socket

import pytest

import ctrlchan
from ctrlchan import ConnectFailedError, MessageWebSocket, Runtime


def _refusing_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connect_failure_is_logged_on_the_ctrlchan_logger_from_a_named_thread(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ctrlchan")
    port = _refusing_port()
    with Runtime() as rt:
        ws = MessageWebSocket(rt)
        with pytest.raises(ConnectFailedError):
            ws.connect(f"ws://127.0.0.1:{port}/", timeout=2.0)
        ws.close()
    hits = [r for r in caplog.records if r.name == "ctrlchan" and "failed" in r.getMessage()]
    assert hits, [r.getMessage() for r in caplog.records]
    assert hits[0].levelno == logging.WARNING
    assert f"127.0.0.1:{port}" in hits[0].getMessage()
    assert not hits[0].threadName.startswith("Dummy"), hits[0].threadName


def test_native_level_can_be_lowered_and_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ctrlchan")
    port = _refusing_port()
    try:
        ctrlchan.set_native_log_level(logging.CRITICAL)  # off
        with Runtime() as rt:
            ws = MessageWebSocket(rt)
            with pytest.raises(ConnectFailedError):
                ws.connect(f"ws://127.0.0.1:{port}/", timeout=2.0)
            ws.close()
        assert not [r for r in caplog.records if r.name == "ctrlchan"]
    finally:
        ctrlchan.set_native_log_level(logging.INFO)
