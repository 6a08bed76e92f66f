"""The managed base class: one native handle per object, freed exactly once (C#: ``SafeHandles``).

Modelled on wasmtime-py's ``Managed``: an idempotent ``close()``, use as a context
manager, ``__del__`` as a safety net for objects nobody closed, and ``ValueError("X is
closed")`` on any use after close. The native handle is taken from the object under a
lock, so concurrent ``close()`` calls (or a ``close()`` racing the owning runtime's
``close()``) free it once.

Channels and websockets are also entered in a table of *live* objects: events carry
borrowed native pointers, and :func:`lookup` maps them back to the Python objects the
user holds. An entry is removed just before its native handle is freed (the library
delivers no event for a freed handle).
"""

from __future__ import annotations

import threading
import weakref
from typing import Dict, Optional, TypeVar

__all__ = ["Handle", "lookup", "forget"]

H = TypeVar("H", bound="Handle")

# Address of a live native channel/websocket -> its Python object (weakly).
_live: Dict[int, "weakref.ref[Handle]"] = {}


def lookup(ptr: Optional[int]) -> Optional["Handle"]:
    """The live Python object wrapping native handle ``ptr`` (``None`` if none or gone)."""
    if not ptr:
        return None
    ref = _live.get(ptr)
    return ref() if ref is not None else None


def forget(ptr: int) -> None:
    """Drop ``ptr`` from the live table (its native handle is about to be freed)."""
    _live.pop(ptr, None)


class Handle:
    """Base of every wrapper: owns one native handle and frees it exactly once.

    Subclasses set the handle with :meth:`_own` and implement :meth:`_free_native`.
    """

    # Class-level default: ``__del__`` of an object whose ``__init__`` failed early is safe.
    _ptr: Optional[int] = None

    def __init__(self) -> None:
        self._ptr = None
        self._take_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the owning runtime was closed)."""
        return self._ptr is None

    def _own(self, ptr: Optional[int], *, live: bool = False) -> int:
        """Take ownership of a freshly created native handle (``live``: enter it for :func:`lookup`)."""
        assert ptr, "the library returned OK without a handle"
        self._ptr = ptr
        if live:
            _live[ptr] = weakref.ref(self)
        return ptr

    def _handle(self) -> int:
        """The native handle, or ``ValueError`` once closed."""
        ptr = self._ptr
        if ptr is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return ptr

    def _take(self) -> Optional[int]:
        """Take the native handle away from this object: the caller frees it. ``None`` if
        it was already taken (closed, or freed by the owning runtime)."""
        lock = getattr(self, "_take_lock", None)
        if lock is None:  # __init__ never ran
            return None
        with lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            forget(ptr)
        return ptr

    def _free_native(self, ptr: int) -> None:
        """Run the library's ``ctrlchan_*_free`` on ``ptr`` (called at most once per handle)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the native object. Idempotent; later use raises ``ValueError``."""
        ptr = self._take()
        if ptr is not None:
            self._free_native(ptr)

    def __enter__(self: H) -> H:
        self._handle()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._finalize()
        except Exception:  # pragma: no cover - interpreter shutdown, nothing sensible to do
            pass

    def _finalize(self) -> None:
        """Called by ``__del__``: free the handle if nobody closed it."""
        ptr = self._take()
        if ptr is not None:
            self._free_native(ptr)

    def _state_word(self) -> str:
        return "closed" if self._ptr is None else "open"
