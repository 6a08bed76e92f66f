"""The managed base class, argument conversion and the C callback trampolines.

Every public class wraps one native handle. The base class gives it an idempotent
``close()``, context-manager use, a ``__del__`` safety net and ``ValueError("X is
closed")`` on use after close.

Callbacks follow the wasmtime-py pattern: two module-level ``CFUNCTYPE`` trampolines
(never collected), the user's callable kept in a table keyed by the integer passed
as ``userdata``, and the library's finalizer removing the table entry. An exception
raised by a user callable never unwinds into native code: it is logged on the
``ctrlchan`` logger and kept for the runtime to re-raise in the user's thread.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import weakref
from ctypes import c_void_p
from typing import Any, Callable, Dict, List, Optional, Type, TypeVar, Union

from . import _ffi
from ._errors import InvalidArgumentError, InvalidStateError

log = logging.getLogger("ctrlchan")

U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF

T = TypeVar("T")
H = TypeVar("H", bound="Handle")


# --- argument conversion -------------------------------------------------------------


def to_ms(seconds: Optional[float], name: str, *, none_ms: Optional[int] = None) -> int:
    """Float seconds -> uint32 milliseconds (``None`` -> ``none_ms`` where allowed)."""
    if seconds is None and none_ms is not None:
        return none_ms
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if math.isnan(seconds) or seconds < 0:
        raise InvalidArgumentError(f"{name} must be >= 0 seconds, got {seconds!r}")
    ms = round(seconds * 1000.0) if not math.isinf(seconds) else U32_MAX + 1
    if ms > U32_MAX:
        raise InvalidArgumentError(f"{name} is too large: {seconds!r} s (at most {U32_MAX / 1000.0:.3f} s)")
    return int(ms)


def to_uint(value: int, name: str, maximum: int = U32_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise InvalidArgumentError(f"{name} must be in 0..{maximum}, got {value}")
    return value


def to_cstr(value: str, name: str) -> bytes:
    """``str`` -> NUL-terminated UTF-8 (rejects embedded NUL and unencodable text)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidArgumentError(f"{name} must not contain a NUL character")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"{name} is not valid Unicode: {exc}") from None


def to_bytes(data: Union[bytes, bytearray, memoryview], name: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{name} must be bytes-like, not {type(data).__name__}")


def to_enum(cls: Type[T], value: Any, name: str) -> T:
    """An ``IntEnum`` member from a member or a plain int; ValueError for unknown values."""
    if isinstance(value, cls):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a {cls.__name__}, not {type(value).__name__}")
    try:
        result: T = cls(value)  # type: ignore[call-arg]
    except ValueError:
        raise InvalidArgumentError(f"{value} is not a valid {cls.__name__}") from None
    return result


# --- live handles ----------------------------------------------------------------------

# Address of a live native channel/websocket -> its Python object (weakly). Events carry
# borrowed native pointers; this maps them back to the objects the user holds.
_live: Dict[int, "weakref.ref[Handle]"] = {}


def lookup(ptr: Optional[int]) -> Optional["Handle"]:
    if not ptr:
        return None
    ref = _live.get(ptr)
    return ref() if ref is not None else None


class Handle:
    """Base of every wrapper: one native handle, closed exactly once."""

    _ptr: Optional[int] = None

    def __init__(self) -> None:
        self._ptr = None
        self._close_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the owning runtime was closed)."""
        return self._ptr is None

    def _handle(self) -> int:
        ptr = self._ptr
        if ptr is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return ptr

    def _detach(self, keep_live: bool = False) -> Optional[int]:
        """Take the native pointer away from this object (None if already taken).

        ``keep_live``: events of the native object still map to this (closed) object
        until the native object is freed.
        """
        lock = getattr(self, "_close_lock", None)
        if lock is None:
            return None
        with lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None and not keep_live:
            _live.pop(ptr, None)
        return ptr

    def _register_live(self) -> None:
        assert self._ptr is not None
        _live[self._ptr] = weakref.ref(self)

    def _free_native(self, ptr: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the native object. Idempotent; later use raises ``ValueError``."""
        ptr = self._detach()
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
        """Called from ``__del__``; subclasses may free without graceful steps."""
        ptr = self._detach()
        if ptr is not None:
            self._free_native(ptr)

    def _state_word(self) -> str:
        return "closed" if self._ptr is None else "open"


# --- callbacks ----------------------------------------------------------------------------


class _CallbackContext(threading.local):
    def __init__(self) -> None:
        self.runtimes: List[Any] = []  # runtimes whose callback is running on this thread


callback_context = _CallbackContext()


def in_callback_of(runtime: Any) -> bool:
    return any(r is runtime for r in callback_context.runtimes)


def forbid_in_callback(runtime: Any, what: str) -> None:
    if in_callback_of(runtime):
        raise InvalidStateError(f"{what} cannot be called from inside one of this runtime's callbacks")


class Slot:
    """What a native callback registration refers to: strong references on purpose,
    so the target object and the callable live as long as the library may call them."""

    __slots__ = ("fn", "owner", "runtime")

    def __init__(self, fn: Callable[[Any], object], owner: Any, runtime: Any) -> None:
        self.fn = fn
        self.owner = owner
        self.runtime = runtime


_slots: Dict[int, Slot] = {}
_slot_keys = itertools.count(1)
_slot_lock = threading.Lock()

# Filled in by _event.py (avoids an import cycle): native event pointer -> Event.
make_event: Optional[Callable[[int], Any]] = None


def _dispatch(userdata: Optional[int], ev: Optional[int]) -> None:
    slot = _slots.get(userdata or 0)
    if slot is None or not ev:
        return
    runtime = slot.runtime
    callback_context.runtimes.append(runtime)
    try:
        assert make_event is not None
        event = make_event(ev)
        slot.fn(event)
    except BaseException as exc:  # never let anything unwind into native code
        try:
            runtime._callback_failed(exc, slot)
        except BaseException:  # pragma: no cover - logging itself failed
            pass
    finally:
        callback_context.runtimes.pop()
    try:
        runtime._event_seen(ev)
    except BaseException:  # pragma: no cover
        pass


def _release(userdata: Optional[int]) -> None:
    with _slot_lock:
        _slots.pop(userdata or 0, None)


EVENT_TRAMPOLINE = _ffi.EVENT_CALLBACK(_dispatch)
FINALIZER_TRAMPOLINE = _ffi.FINALIZER(_release)
NO_EVENT_CALLBACK = _ffi.EVENT_CALLBACK()  # NULL function pointers (ctypes rejects None here)
NO_FINALIZER = _ffi.FINALIZER()


def register_slot(fn: Callable[[Any], object], owner: Any, runtime: Any) -> int:
    if not callable(fn):
        raise TypeError(f"event handler must be callable, not {type(fn).__name__}")
    with _slot_lock:
        key = next(_slot_keys)
        _slots[key] = Slot(fn, owner, runtime)
    return key


def drop_slot(key: int) -> None:
    """Undo :func:`register_slot` when the library refused the registration."""
    _release(key)


def live_slot_count() -> int:
    """Number of callback registrations the library still holds (for leak checks)."""
    return len(_slots)


def slot_pointer(key: int) -> c_void_p:
    return c_void_p(key)


def install_event_handler(
    set_handler: Callable[..., Any], name: str, ptr: Any, handler: Optional[Callable[[Any], object]], owner: Any, runtime: Any
) -> None:
    """Install (or with ``None`` remove) ``handler`` through a ``ctrlchan_*_set_event_handler``
    function. On failure the slot is dropped again (the library keeps nothing) and the error raised."""
    from ._errors import check

    if handler is None:
        check(set_handler(ptr, NO_EVENT_CALLBACK, None, NO_FINALIZER), name)
        return
    key = register_slot(handler, owner, runtime)
    rc = int(set_handler(ptr, EVENT_TRAMPOLINE, slot_pointer(key), FINALIZER_TRAMPOLINE))
    if rc != 0:
        drop_slot(key)
        check(rc, name)
