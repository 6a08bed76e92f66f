"""The public surface: names, exception classes, enums, Event, library loading."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ctrlchan
from conftest import REPO
from ctrlchan import (
    BufferFullError,
    ClosedError,
    ConnectFailedError,
    ControlChannelTriggerStatus,
    CtrlChanError,
    Event,
    EventKind,
    HandshakeFailedError,
    InvalidArgumentError,
    InvalidHandleError,
    InvalidStateError,
    IoError,
    MessageTooLargeError,
    PanicError,
    PolicyError,
    ProxyFailedError,
    QueueFullError,
    ResultCode,
    SocketMessageType,
    TimeoutError_,
    TlsFailedError,
)
from ctrlchan._errors import error_for

PKG_PARENT = str(Path(ctrlchan.__file__).resolve().parent.parent)


def test_issue_names_are_exported() -> None:
    from ctrlchan import (  # noqa: F401
        ControlChannelTrigger,
        ControlChannelTriggerResourceType,
        ControlChannelTriggerStatus,
        CtrlChanError,
        Event,
        EventKind,
        KeepAliveMode,
        MessageWebSocket,
        Runtime,
        SocketMessageType,
        StreamWebSocket,
        WebSocketKeepAlive,
    )

    for name in ctrlchan.__all__:
        assert hasattr(ctrlchan, name), name
    assert ctrlchan.library_version() == ctrlchan.__version__


@pytest.mark.parametrize(
    "code,cls,builtin",
    [
        (ResultCode.INVALID_ARGUMENT, InvalidArgumentError, ValueError),
        (ResultCode.INVALID_HANDLE, InvalidHandleError, ValueError),
        (ResultCode.INVALID_STATE, InvalidStateError, RuntimeError),
        (ResultCode.TIMEOUT, TimeoutError_, TimeoutError),
        (ResultCode.CONNECT_FAILED, ConnectFailedError, ConnectionError),
        (ResultCode.TLS_FAILED, TlsFailedError, ConnectionError),
        (ResultCode.HANDSHAKE_FAILED, HandshakeFailedError, ConnectionError),
        (ResultCode.CLOSED, ClosedError, ConnectionError),
        (ResultCode.MESSAGE_TOO_LARGE, MessageTooLargeError, ValueError),
        (ResultCode.BUFFER_FULL, BufferFullError, BlockingIOError),
        (ResultCode.IO, IoError, OSError),
        (ResultCode.POLICY, PolicyError, CtrlChanError),
        (ResultCode.PANIC, PanicError, RuntimeError),
        (ResultCode.PROXY_FAILED, ProxyFailedError, ConnectionError),
        (ResultCode.QUEUE_FULL, QueueFullError, CtrlChanError),
    ],
)
def test_every_result_code_has_an_exception_class(code: ResultCode, cls: type, builtin: type) -> None:
    err = error_for(int(code), "ctrlchan_something")
    assert type(err) is cls
    assert isinstance(err, CtrlChanError) and isinstance(err, builtin)
    assert err.code is code
    assert code.name in str(err) and "ctrlchan_something" in str(err)
    assert str(err) == err.args[0]  # OSError-based classes keep a plain message
    with pytest.raises(cls):
        raise err


def test_exceptions_from_python_checks_have_codes() -> None:
    e = InvalidArgumentError("bad")
    assert e.code is ResultCode.INVALID_ARGUMENT and e.detail == "" and str(e) == "bad"


def test_enums_mirror_windows_names() -> None:
    assert ControlChannelTriggerStatus(1) is ControlChannelTriggerStatus.SOFTWARE_SLOT_ALLOCATED
    assert [m.name for m in SocketMessageType] == ["BINARY", "UTF8"]
    assert [m.name for m in EventKind][:4] == ["PUSH_NOTIFICATION", "KEEPALIVE", "CLOSED", "TRANSPORT_DISCONNECTED"]


def test_event_is_a_frozen_dataclass() -> None:
    ev = Event(
        kind=EventKind.PUSH_NOTIFICATION,
        channel=None,
        channel_id="c",
        data="héllo".encode(),
        message_type=SocketMessageType.UTF8,
        close_code=0,
        reason="",
        rtt=0.0,
    )
    assert dataclasses.is_dataclass(ev)
    names = {f.name for f in dataclasses.fields(ev)}
    assert {"kind", "channel", "channel_id", "data", "message_type", "close_code", "reason", "rtt"} <= names
    assert ev.text == "héllo"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.kind = EventKind.CLOSED  # type: ignore[misc]
    assert dataclasses.replace(ev, message_type=SocketMessageType.BINARY).text is None


def run_python(code: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CTRLCHAN_LIBRARY", None)
    env.update(env_extra)
    env["PYTHONPATH"] = PKG_PARENT
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, env=env, cwd="/"
    )


def test_env_var_override_is_used() -> None:
    proc = run_python("import ctrlchan; print(ctrlchan.library_path())", CTRLCHAN_LIBRARY=ctrlchan.library_path())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ctrlchan.library_path()


def test_env_var_may_name_a_directory() -> None:
    lib = Path(ctrlchan.library_path())
    proc = run_python("import ctrlchan; print(ctrlchan.library_path())", CTRLCHAN_LIBRARY=str(lib.parent))
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == lib


def test_missing_library_says_what_it_tried(tmp_path: Path) -> None:
    bogus = tmp_path / "nope" / "libctrlchan.so"
    proc = run_python("import ctrlchan", CTRLCHAN_LIBRARY=str(bogus))
    assert proc.returncode != 0
    assert "LibraryNotFoundError" in proc.stderr
    assert str(bogus) in proc.stderr and "CTRLCHAN_LIBRARY" in proc.stderr


def test_unloadable_library_says_why(tmp_path: Path) -> None:
    junk = tmp_path / "libctrlchan.so"
    junk.write_bytes(b"not an ELF file")
    proc = run_python("import ctrlchan", CTRLCHAN_LIBRARY=str(junk))
    assert proc.returncode != 0
    assert "LibraryNotFoundError" in proc.stderr and str(junk) in proc.stderr


def test_expected_library_is_loaded() -> None:
    """run-tests.sh sets CTRLCHAN_TEST_EXPECT_BUNDLED=1: the installed package must carry its own copy."""
    path = Path(ctrlchan.library_path())
    if os.environ.get("CTRLCHAN_TEST_EXPECT_BUNDLED") == "1":
        assert path.parent == Path(ctrlchan.__file__).resolve().parent, path
        assert path.name == "libctrlchan.so"
        assert (path.parent / "py.typed").is_file()
    else:
        assert path.is_file() and path.name == "libctrlchan.so"
