"""What a user of the installed package sees: names that print, units that cannot be mixed up,
a named callback thread, the wheel's metadata, and one README."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any, List

import pytest

import ctrlchan
from ctrlchan import (
    ControlChannelTrigger,
    ControlChannelTriggerResourceType,
    ControlChannelTriggerStatus,
    Event,
    EventKind,
    MessageWebSocket,
    ResultCode,
    Runtime,
)

REPO = Path(__file__).resolve().parents[3]


# --- enums print their names -------------------------------------------------------------------


def test_enums_print_their_names() -> None:
    s = ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED
    assert str(s) == "ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED"
    assert f"{s}" == "ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED"
    assert "{}".format(EventKind.PUSH_NOTIFICATION) == "EventKind.PUSH_NOTIFICATION"
    assert repr(ResultCode.TIMEOUT) == "<ResultCode.TIMEOUT: 4>"
    # ... and are still the C values
    assert s == 1 and int(s) == 1 and f"{s:d}" == "1" and "%d" % s == "1"
    assert ControlChannelTriggerStatus(1) is s


# --- the keep-alive interval: keyword-only, seconds or minutes ---------------------------------


def test_positional_interval_is_a_type_error_naming_both_keywords(rt: Runtime) -> None:
    with pytest.raises(TypeError) as info:
        ControlChannelTrigger(rt, "x", 15)  # type: ignore[misc]
    msg = str(info.value)
    assert "server_keepalive_interval=" in msg and "server_keepalive_interval_in_minutes=" in msg
    with pytest.raises(TypeError):
        ControlChannelTrigger(rt, "x", 30.0, ControlChannelTriggerResourceType.REQUEST_SOFTWARE_SLOT)  # type: ignore[misc]


def test_interval_in_seconds_timedelta_or_minutes(rt: Runtime) -> None:
    assert ControlChannelTrigger(rt, "s", server_keepalive_interval=15).server_keepalive_interval == 15.0
    td = ControlChannelTrigger(rt, "td", server_keepalive_interval=timedelta(minutes=2, milliseconds=500))
    assert td.server_keepalive_interval == 120.5
    m = ControlChannelTrigger(rt, "m", server_keepalive_interval_in_minutes=15)
    assert m.server_keepalive_interval == 900.0 and m.server_keepalive_interval_in_minutes == 15.0
    assert ControlChannelTrigger(rt, "default").server_keepalive_interval_in_minutes == 15.0
    with pytest.raises(TypeError):
        ControlChannelTrigger(rt, "both", server_keepalive_interval=1.0, server_keepalive_interval_in_minutes=1.0)
    with pytest.raises(TypeError):
        ControlChannelTrigger(rt, "str", server_keepalive_interval_in_minutes="15")  # type: ignore[arg-type]
    with pytest.raises(ctrlchan.InvalidArgumentError):
        ControlChannelTrigger(rt, "too-long", server_keepalive_interval_in_minutes=24 * 60 + 1)


# --- the callback thread has a name -------------------------------------------------------------


def test_callbacks_run_on_a_thread_named_ctrlchan_rt(rt: Runtime, server: Any, caplog: Any) -> None:
    seen: List[str] = []
    done = threading.Event()
    log = logging.getLogger("ctrlchan.test")

    def handler(ev: Event) -> None:
        if ev.kind is EventKind.PUSH_NOTIFICATION:
            seen.append(threading.current_thread().name)
            log.warning("push on %s", threading.current_thread().name)
            done.set()

    ws = MessageWebSocket(rt)
    ch = ControlChannelTrigger(rt, "named", server_keepalive_interval=30.0)
    ch.on_event = handler
    ch.using_transport(ws)
    with caplog.at_level(logging.WARNING, logger="ctrlchan.test"):
        ws.connect(server.url("/push?n=1"), timeout=5.0)
        ch.wait_for_push_enabled()
        assert done.wait(30.0)
    assert seen == ["ctrlchan-rt"]
    assert [r.threadName for r in caplog.records if r.name == "ctrlchan.test"] == ["ctrlchan-rt"]


# --- the installed wheel ------------------------------------------------------------------------


def _installed_dist() -> Any:
    from importlib import metadata

    return metadata.distribution("ctrlchan")


@pytest.mark.skipif(os.environ.get("CTRLCHAN_TEST_EXPECT_BUNDLED") != "1", reason="needs the installed wheel")
def test_installed_wheel_metadata() -> None:
    dist = _installed_dist()
    assert dist.version == ctrlchan.__version__ == ctrlchan.library_version()
    meta = dist.metadata
    assert meta["License-Expression"] == "MIT OR Apache-2.0"
    files = {str(f) for f in dist.files or []}
    assert any(f.endswith("licenses/LICENSE-MIT") for f in files)
    assert any(f.endswith("licenses/LICENSE-APACHE") for f in files)
    wheel = (Path(str(dist.locate_file(""))) / f"ctrlchan-{dist.version}.dist-info" / "WHEEL").read_text()
    tags = [line.split(": ", 1)[1] for line in wheel.splitlines() if line.startswith("Tag: ")]
    assert tags and all(t.startswith("py3-none-manylinux_") and t.endswith("_x86_64") for t in tags), tags
    # The package README on the index is bindings/python/README.md, itself a section of README.md.
    assert meta.get_payload().strip() == (REPO / "bindings/python/README.md").read_text(encoding="utf-8").strip()


@pytest.mark.skipif(os.environ.get("CTRLCHAN_TEST_EXPECT_BUNDLED") != "1", reason="needs the installed wheel")
def test_bundled_library_is_stripped() -> None:
    out = subprocess.run(["readelf", "-S", "--wide", ctrlchan.library_path()], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("readelf not available")
    assert ".debug_info" not in out.stdout and " .symtab " not in out.stdout


def test_package_readme_is_the_main_readme_section() -> None:
    script = REPO / "scripts" / "sync-readmes.py"
    res = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
