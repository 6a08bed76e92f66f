"""examples/python/control_channel_trigger.py runs end to end (it starts the peer itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ctrlchan
from conftest import REPO

EXAMPLE = REPO / "examples" / "python" / "control_channel_trigger.py"


@pytest.mark.parametrize("extra", [[], ["--callbacks", "--hardware"]])
def test_sample_runs_and_sees_pushes_and_keepalives(extra) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(ctrlchan.__file__).resolve().parent.parent)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--seconds", "3", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=str(REPO),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    status = "HARDWARE_SLOT_ALLOCATED" if "--hardware" in extra else "SOFTWARE_SLOT_ALLOCATED"
    assert f"wait_for_push_enabled: {status}" in out
    assert "push #1: 'msg 0'" in out and "keep-alive #1: rtt" in out
