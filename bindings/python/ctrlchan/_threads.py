"""The runtime's reactor thread, as Python sees it.

Callbacks (``on_event``) run on the native reactor thread, which Python did not start, so
``threading`` would call it ``Dummy-1`` (in ``logging``'s ``threadName`` too). The callback
trampoline names it after its OS name (``ctrlchan-rt``, set by the library) the first time it
runs there.
"""

from __future__ import annotations

import threading
from typing import Optional

__all__ = ["RUNTIME_THREAD_NAME", "name_runtime_thread"]

RUNTIME_THREAD_NAME = "ctrlchan-rt"
"""The reactor thread's name, natively (pthread, ``ps -L``, gdb) and in ``threading``."""


def _native_name() -> Optional[str]:
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", encoding="utf-8") as f:
            return f.read().strip() or None
    except (OSError, AttributeError):  # no /proc, or Python < 3.8 without get_native_id
        return None


def name_runtime_thread() -> None:
    """Called on the reactor thread at each callback: names its ``threading`` stand-in once."""
    t = threading.current_thread()
    if t.name.startswith("Dummy-"):
        t.name = _native_name() or RUNTIME_THREAD_NAME
