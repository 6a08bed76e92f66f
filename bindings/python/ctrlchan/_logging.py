"""Native log lines -> the standard ``logging`` module.

At import the library's log handler is installed at INFO: connects, connect failures (with the
refused HTTP status or TLS error), disconnects with their cause, reconnect attempts and
network-change / resume probes arrive on ``logging.getLogger("ctrlchan")`` (rustls' own messages on
``ctrlchan.rustls...``), so ordinary logging configuration is all an application needs.
``set_native_log_level(logging.DEBUG)`` asks the library for more. Records made on the runtime
thread carry its native name (``ctrlchan-rt``), not ``Dummy-N``.
"""

from __future__ import annotations

import logging
import threading
from typing import Dict, Optional

from . import _ffi

__all__ = ["set_native_log_level"]

# ctrlchan_log_level -> logging level
_LEVELS: Dict[int, int] = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: logging.DEBUG}


def _native_thread_name() -> Optional[str]:
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _on_log(_userdata: Optional[int], level: int, target: Optional[bytes], message: Optional[bytes]) -> None:
    try:
        t = (target or b"").decode("utf-8", "replace")
        name = "ctrlchan" if t in ("", "ctrlchan") else "ctrlchan." + t.replace("::", ".")
        logger = logging.getLogger(name)
        py_level = _LEVELS.get(level, logging.INFO)
        if not logger.isEnabledFor(py_level):
            return
        current = threading.current_thread()
        if isinstance(current, threading._DummyThread):  # a native thread: show its real name
            native = _native_thread_name()
            if native and current.name != native:
                current.name = native
        logger.log(py_level, "%s", (message or b"").decode("utf-8", "replace"))
    except BaseException:  # never unwind into native code
        pass


_TRAMPOLINE = _ffi.LOG_CALLBACK(_on_log)
_NO_FINALIZER = _ffi.FINALIZER()


def set_native_log_level(level: int) -> None:
    """How much the library logs, as a ``logging`` level (default INFO); ``logging.CRITICAL``
    turns native logging off (the library logs nothing at CRITICAL)."""
    if level >= logging.CRITICAL:
        _ffi.lib.ctrlchan_set_log_handler(1, _ffi.LOG_CALLBACK(), None, _NO_FINALIZER)
        return
    if level >= logging.ERROR:
        native = 1
    elif level >= logging.WARNING:
        native = 2
    elif level >= logging.INFO:
        native = 3
    elif level >= logging.DEBUG:
        native = 4
    else:
        native = 5
    _ffi.lib.ctrlchan_set_log_handler(native, _TRAMPOLINE, None, _NO_FINALIZER)


set_native_log_level(logging.INFO)
