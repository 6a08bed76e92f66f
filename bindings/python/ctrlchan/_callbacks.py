"""Event callbacks from the runtime thread into Python (C#: ``Callbacks``).

The wasmtime-py pattern:

* two module-level ``CFUNCTYPE`` trampolines, created once and never collected, are
  the only function pointers ever given to the library;
* the user's callable is kept in a slot table keyed by the integer passed as
  ``userdata``; the library calls the finalizer trampoline exactly once when it drops
  the registration (handler replaced or removed, object freed, runtime freed), and that
  frees the slot;
* an exception raised by a user callable never unwinds into native code: it is logged
  on the ``ctrlchan`` logger and kept by the runtime, which re-raises it in the user's
  thread (``next_event``, ``events``, ``aevents``, ``check_callback_errors``).

A native handler is installed only while a Python handler is set: setting ``on_event``
to ``None`` removes it, and the library routes the object's events to the next place
(see :mod:`ctrlchan._runtime`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from ctypes import c_void_p
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from . import _ffi
from ._errors import InvalidStateError, check
from ._event import event_from_native

if TYPE_CHECKING:  # pragma: no cover
    from ._runtime import Runtime

__all__ = [
    "log",
    "in_callback_of",
    "forbid_in_callback",
    "install_event_handler",
    "live_slot_count",
]

log = logging.getLogger("ctrlchan")


# --- which runtime's callback is running on this thread ------------------------------------


class _CallbackContext(threading.local):
    def __init__(self) -> None:
        self.runtimes: List["Runtime"] = []  # runtimes whose callback is running on this thread


callback_context = _CallbackContext()


def in_callback_of(runtime: "Runtime") -> bool:
    """Whether the current thread is inside one of ``runtime``'s event callbacks."""
    return any(r is runtime for r in callback_context.runtimes)


def forbid_in_callback(runtime: "Runtime", what: str) -> None:
    """``InvalidStateError`` for a blocking call made from inside ``runtime``'s callback (it would
    wait for the thread it runs on). The library refuses most of these itself; this covers the
    waits the binding adds (e.g. ``Runtime.close`` joining the thread)."""
    if in_callback_of(runtime):
        raise InvalidStateError(f"{what} cannot be called from inside one of this runtime's callbacks")


# --- the slot table ----------------------------------------------------------------------


class Slot:
    """What one native registration refers to. The owner (channel or websocket) holds its
    slot strongly (``owner._event_slot``) and the table holds it only weakly, so a handler
    never keeps its owner alive: an owner the application dropped is collected like any other
    object (its finalizer frees the native handle and with it the registration), even when the
    handler refers back to it (a bound method or a closure: that cycle is the GC's to break)."""

    __slots__ = ("fn", "owner_ref", "runtime", "__weakref__")

    def __init__(self, fn: Callable[[Any], object], owner: Any, runtime: "Runtime") -> None:
        self.fn = fn
        self.owner_ref = weakref.ref(owner)
        self.runtime = runtime

    @property
    def owner(self) -> Any:
        return self.owner_ref()


_slots: "Dict[int, weakref.ref[Slot]]" = {}
_slot_keys = itertools.count(1)
# Slots between registration and installation (held strongly until their owner takes them).
_pending: Dict[int, Slot] = {}
# Slots the application replaced or removed while the library may still be delivering an event
# through them: held strongly until the library's finalizer says it dropped them, so such an
# event still reaches the handler it was routed to (nothing is lost).
_retiring: Dict[int, Slot] = {}
# Reentrant: a finalizer (`_release`) may run inside a locked section when the GC collects an
# owner there.
_slot_lock = threading.RLock()


def _register(fn: Callable[[Any], object], owner: Any, runtime: "Runtime") -> int:
    if not callable(fn):
        raise TypeError(f"event handler must be callable, not {type(fn).__name__}")
    slot = Slot(fn, owner, runtime)
    with _slot_lock:
        key = next(_slot_keys)
        _slots[key] = weakref.ref(slot)
    _pending[key] = slot
    return key


def _release(userdata: Optional[int]) -> None:
    """The finalizer: the library dropped the registration ``userdata``."""
    try:
        with _slot_lock:
            slot = _slots.pop(userdata or 0, None)
            pending = _pending.pop(userdata or 0, None)
            retired = _retiring.pop(userdata or 0, None)
        del pending, retired
        # The owner no longer needs the slot (closed, replaced, runtime gone): let it go.
        live = slot() if slot is not None else None
        owner = live.owner if live is not None else None
        if owner is not None and getattr(owner, "_event_slot", None) is live:
            owner._event_slot = None
        del live, owner
        # Dropped here, outside the lock: the last reference to the owner may go with it.
        del slot
    except BaseException:  # pragma: no cover - never unwind into native code
        pass


def live_slot_count() -> int:
    """Number of handler registrations the library still holds (for leak checks)."""
    return len(_slots)


# --- the trampolines -------------------------------------------------------------------------


def _report(exc: BaseException, slot: Slot) -> None:
    owner = slot.owner
    what = f"{type(owner).__name__}.on_event handler"
    cid = getattr(owner, "_channel_id", None)
    if cid:
        what += f" of channel {cid!r}"
    if hasattr(exc, "add_note"):
        exc.add_note(f"raised by the {what}, on the ctrlchan runtime thread")
    log.error("exception in the %s", what, exc_info=(type(exc), exc, exc.__traceback__))
    slot.runtime._keep_callback_error(exc)


def _dispatch(userdata: Optional[int], ev: Optional[int]) -> None:
    """The event trampoline: ``ev`` is borrowed for the duration of the call."""
    ref = _slots.get(userdata or 0)
    slot = ref() if ref is not None else None
    if slot is None or not ev:
        return
    callback_context.runtimes.append(slot.runtime)
    try:
        slot.fn(event_from_native(ev))
    except BaseException as exc:  # never let anything unwind into native code
        try:
            _report(exc, slot)
        except BaseException:  # pragma: no cover - logging itself failed
            pass
    finally:
        callback_context.runtimes.pop()


EVENT_TRAMPOLINE = _ffi.EVENT_CALLBACK(_dispatch)
FINALIZER_TRAMPOLINE = _ffi.FINALIZER(_release)
NO_EVENT_CALLBACK = _ffi.EVENT_CALLBACK()  # NULL function pointers (ctypes rejects None here)
NO_FINALIZER = _ffi.FINALIZER()


def install_event_handler(
    set_handler: Callable[..., Any],
    name: str,
    ptr: int,
    handler: Optional[Callable[[Any], object]],
    owner: Any,
    runtime: "Runtime",
) -> None:
    """Install ``handler`` through a ``ctrlchan_*_set_event_handler`` function, or with ``None``
    remove the native handler (the library then routes the events to the next place).

    The library finalizes the registration it replaces. On failure the new slot is freed
    again (the library keeps nothing) and the error raised."""
    old = getattr(owner, "_event_slot", None)
    if handler is None:
        check(set_handler(ptr, NO_EVENT_CALLBACK, None, NO_FINALIZER), name)
        _retire(old)
        owner._event_slot = None
        return
    key = _register(handler, owner, runtime)
    rc = int(set_handler(ptr, EVENT_TRAMPOLINE, c_void_p(key), FINALIZER_TRAMPOLINE))
    if rc != 0:
        _release(key)
        check(rc, name)
    # The owner keeps its current registration's slot alive (the replaced one goes with the
    # library's finalizer call).
    with _slot_lock:
        owner._event_slot = _pending.pop(key, None)
    _retire(old)


def _retire(slot: Optional[Slot]) -> None:
    """Keeps a replaced or removed registration's slot until the library finalizes it."""
    if slot is None:
        return
    with _slot_lock:
        for key, ref in _slots.items():
            if ref() is slot:
                _retiring[key] = slot
                break
