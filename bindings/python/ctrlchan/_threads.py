"""The runtime's reactor thread, as Python sees it.

Callbacks (``on_event``) run on the native reactor thread, which Python did not start, so
``threading`` would call it ``Dummy-1`` (in ``logging``'s ``threadName`` too). The first thing the
callback trampoline does is name it after the OS thread name the library gives it.
"""

from __future__ import annotations

import threading

__all__ = ["RUNTIME_THREAD_NAME", "name_runtime_thread"]

RUNTIME_THREAD_NAME = "ctrlchan-rt"
"""The reactor thread's name, natively (pthread, ``ps -L``, gdb) and in ``threading``."""


def name_runtime_thread() -> None:
    """Called on the reactor thread at each callback: names its ``threading`` stand-in once."""
    t = threading.current_thread()
    if t.name.startswith("Dummy-"):
        t.name = RUNTIME_THREAD_NAME
