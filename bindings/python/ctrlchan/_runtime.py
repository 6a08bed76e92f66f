"""``Runtime``: the background broker (one reactor thread) that owns sockets, timers and events."""

from __future__ import annotations

import asyncio
import os
import atexit
import collections
import threading
import time
import weakref
from ctypes import byref, c_int, c_uint32, c_void_p
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Deque, Dict, Iterator, List, Optional, Set, Tuple, Union

from . import _ffi, _managed
from ._callbacks import forbid_in_callback
from ._convert import to_ms, to_uint
from ._enums import ResultCode
from ._errors import InvalidArgumentError, check
from ._event import Event, event_from_native
from ._managed import Handle

__all__ = ["Runtime", "RuntimeStatistics"]

# While waiting for an event, the library is asked in slices of at most this long, so a
# Ctrl-C or a close() from another thread is noticed.
_WAIT_SLICE_MS = 200

_all_runtimes: "weakref.WeakSet[Runtime]" = weakref.WeakSet()


@dataclass(frozen=True)
class RuntimeStatistics:
    """Runtime-wide counters (``ctrlchan_runtime_stats``)."""

    wakeups: int
    keepalives_sent: int
    keepalives_acked: int
    messages_received: int
    connections_open: int
    channels_active: int


# Order in which a closing runtime frees what it owns: channels before websockets.
ORDER_CHANNEL = 0
ORDER_WEBSOCKET = 1


class Runtime(Handle):
    """The ctrlchan runtime (the "system" of the Windows model).

    One reactor thread serves every websocket and channel created from it, sends their
    keep-alives and delivers events. Each event goes to exactly one place, the first
    that applies, exactly as the library routes it:

    1. the channel's ``on_event`` handler, if the websocket is the transport of a
       channel that has one;
    2. the websocket's ``on_event`` handler;
    3. this runtime's queue (the library's own), read with :meth:`next_event`,
       :meth:`events` or :meth:`aevents`.

    Handlers run on the runtime thread. The binding keeps no queue of its own and
    drops nothing: setting ``on_event = None`` removes the native handler, and the
    object's later events go to the next place.

    ``close()`` closes every channel and websocket created from this runtime and joins
    its thread. Exceptions raised by event handlers are logged on the ``ctrlchan``
    logger and re-raised (each once, oldest first) by the next :meth:`next_event`,
    :meth:`events`, :meth:`aevents` or :meth:`check_callback_errors` call.
    """

    def __init__(self, *, max_channels: Optional[int] = None, coalescing_window: Optional[float] = None) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._state_file: Optional[str] = None
        self._children: Dict[int, Tuple[int, Callable[[int], None], "weakref.ref[Handle]"]] = {}
        # Kept until re-raised (never dropped; each one was also logged when it happened).
        self._callback_errors: Deque[BaseException] = collections.deque()
        self._async_waiters: Set[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[bool]"]] = set()
        out = c_void_p()
        check(_ffi.lib.ctrlchan_runtime_new(byref(out)), "ctrlchan_runtime_new")
        self._own(out.value)
        _all_runtimes.add(self)
        try:
            if max_channels is not None:
                self.max_channels = max_channels
            if coalescing_window is not None:
                self.coalescing_window = coalescing_window
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<Runtime {self._state_word()} children={len(self._children)}>"

    # --- configuration and introspection ----------------------------------------------

    @property
    def max_channels(self) -> int:
        """Channels that may hold a slot at once (default 65536); ``wait_for_push_enabled``
        beyond it -> POLICY_ERROR. Read from the library."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_runtime_get_max_channels(self._handle(), byref(out)),
            "ctrlchan_runtime_get_max_channels",
        )
        return out.value

    @max_channels.setter
    def max_channels(self, value: int) -> None:
        n = to_uint(value, "max_channels")
        check(_ffi.lib.ctrlchan_runtime_set_max_channels(self._handle(), n), "ctrlchan_runtime_set_max_channels")

    @property
    def coalescing_window(self) -> float:
        """Seconds (default 3.0; 0 disables): keep-alives due within this window (capped at a
        quarter of a channel's interval) are sent early, together. Read from the library (whole milliseconds)."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_runtime_get_coalescing_window(self._handle(), byref(out)),
            "ctrlchan_runtime_get_coalescing_window",
        )
        return out.value / 1000.0

    @coalescing_window.setter
    def coalescing_window(self, seconds: float) -> None:
        ms = to_ms(seconds, "coalescing_window")
        check(
            _ffi.lib.ctrlchan_runtime_set_coalescing_window(self._handle(), ms),
            "ctrlchan_runtime_set_coalescing_window",
        )

    @property
    def pong_settle(self) -> float:
        """Seconds (default 0.05; 0 disables; at most 1.0): the longest single wait after a
        burst of keep-alive pings. The runtime thread sleeps, reads what arrived in one pass, and
        repeats while most of the burst's pongs are out (the first sleep is learned from earlier
        bursts), so the pongs cost a few wake-ups instead of one each. Data and calls from other
        threads arriving meanwhile wait at most this long; measured keep-alive round trips
        include the wait. Read from the library (whole milliseconds)."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_runtime_get_pong_settle(self._handle(), byref(out)),
            "ctrlchan_runtime_get_pong_settle",
        )
        return out.value / 1000.0

    @pong_settle.setter
    def pong_settle(self, seconds: float) -> None:
        ms = to_ms(seconds, "pong_settle")
        check(
            _ffi.lib.ctrlchan_runtime_set_pong_settle(self._handle(), ms),
            "ctrlchan_runtime_set_pong_settle",
        )

    @property
    def event_queue_limit(self) -> int:
        """Events the runtime queue holds at most (default 65536; >= 1). When it is full the
        runtime stops reading the sockets whose events would go there (TCP back-pressure to the
        server) and resumes once the app has drained it below half: nothing is ever dropped.
        Handlers (``on_event``) need no limit. Read from the library."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_runtime_get_event_queue_limit(self._handle(), byref(out)),
            "ctrlchan_runtime_get_event_queue_limit",
        )
        return out.value

    @event_queue_limit.setter
    def event_queue_limit(self, value: int) -> None:
        n = to_uint(value, "event_queue_limit")
        if n == 0:
            raise InvalidArgumentError("event_queue_limit must be >= 1")
        check(
            _ffi.lib.ctrlchan_runtime_set_event_queue_limit(self._handle(), n),
            "ctrlchan_runtime_set_event_queue_limit",
        )

    @property
    def state_file(self) -> Optional[str]:
        """Where learned adaptive keep-alive intervals are kept across runs (``None``: in
        memory only, the default). Setting it loads the file at once; a missing file is
        created on the first save, a malformed one is ignored (a ``ctrlchan WARN`` line on
        stderr) and replaced. Saved off the runtime thread at most every 10 s and when the
        runtime closes. Accepts ``str`` or ``os.PathLike``."""
        return self._state_file

    @state_file.setter
    def state_file(self, path: "Optional[Union[str, os.PathLike[str]]]") -> None:
        self.set_state_file(path)

    def set_state_file(self, path: "Optional[Union[str, os.PathLike[str]]]") -> None:
        """See :attr:`state_file`."""
        text = None if path is None else os.fspath(path)
        if text is not None and not isinstance(text, str):
            raise TypeError("state_file must be a str or os.PathLike[str]")
        raw = None if not text else text.encode("utf-8")
        check(_ffi.lib.ctrlchan_runtime_set_state_file(self._handle(), raw), "ctrlchan_runtime_set_state_file")
        self._state_file = text or None

    def simulate_suspend(self, seconds: float) -> None:
        """FOR TESTS: act as if the machine had just resumed from a ``seconds`` long suspend.

        Every channel is probed at once with a keep-alive (pong timeout at most 5 s). A healthy
        channel answers and nothing is reported (no event; ``statistics.keepalives_sent`` grows).
        A dead transport reconnects at once (RESET with reason LOW_POWER_EXIT) if its channel
        has a reconnect policy, else gets TRANSPORT_DISCONNECTED.
        """
        ms = to_ms(seconds, "seconds")
        check(_ffi.lib.ctrlchan_runtime_simulate_suspend(self._handle(), ms), "ctrlchan_runtime_simulate_suspend")

    @property
    def statistics(self) -> RuntimeStatistics:
        """A snapshot of the runtime's counters."""
        raw = _ffi.RuntimeStatsC()
        check(_ffi.lib.ctrlchan_runtime_get_stats(self._handle(), byref(raw)), "ctrlchan_runtime_get_stats")
        return RuntimeStatistics(
            wakeups=raw.wakeups,
            keepalives_sent=raw.keepalives_sent,
            keepalives_acked=raw.keepalives_acked,
            messages_received=raw.messages_received,
            connections_open=raw.connections_open,
            channels_active=raw.channels_active,
        )

    @property
    def event_fd(self) -> int:
        """A file descriptor that is readable while events are queued. Poll it; never read it."""
        fd = c_int(-1)
        check(_ffi.lib.ctrlchan_runtime_event_fd(self._handle(), byref(fd)), "ctrlchan_runtime_event_fd")
        return fd.value

    def fileno(self) -> int:
        """Same as :attr:`event_fd`, so a runtime can be passed to ``select``/``selectors``."""
        return self.event_fd

    # --- events -----------------------------------------------------------------------------

    def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next queued event, waiting up to ``timeout`` seconds (``None``: until one arrives).

        Returns ``None`` when the time ran out (or the runtime was closed meanwhile by
        another thread). ``timeout=0`` polls.
        """
        self._handle()
        self.check_callback_errors()
        if timeout is None:
            while True:
                ev = self._next(_WAIT_SLICE_MS)
                if ev is not None or self.closed:
                    return ev
        deadline = time.monotonic() + to_ms(timeout, "timeout") / 1000.0
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000.0 + 0.999))
            ev = self._next(min(remaining_ms, _WAIT_SLICE_MS))
            if ev is not None or remaining_ms <= _WAIT_SLICE_MS or self.closed:
                return ev

    def _next(self, timeout_ms: int) -> Optional[Event]:
        ptr = self._ptr
        if ptr is None:
            return None
        forbid_in_callback(self, "Runtime.next_event")
        out = c_void_p()
        rc = int(_ffi.lib.ctrlchan_runtime_next_event(ptr, timeout_ms, byref(out)))
        if rc == ResultCode.TIMEOUT:
            return None
        if rc in (ResultCode.INVALID_HANDLE, ResultCode.CLOSED) and self.closed:
            return None  # closed by another thread while we waited
        check(rc, "ctrlchan_runtime_next_event")
        assert out.value is not None
        try:
            return event_from_native(out.value)
        finally:
            _ffi.lib.ctrlchan_event_free(out.value)

    def events(self, timeout: Optional[float] = None, *, idle_timeout: Optional[float] = None) -> Iterator[Event]:
        """Iterate over queued events until ``timeout`` seconds have passed (``None``: no limit),
        no event came for ``idle_timeout`` seconds, or the runtime is closed."""
        self._handle()
        timeout_ms = None if timeout is None else to_ms(timeout, "timeout")
        idle_ms = None if idle_timeout is None else to_ms(idle_timeout, "idle_timeout")
        return self._events(timeout_ms, idle_ms)

    def _events(self, timeout_ms: Optional[int], idle_ms: Optional[int]) -> Iterator[Event]:
        start = time.monotonic()
        deadline = None if timeout_ms is None else start + timeout_ms / 1000.0
        idle_deadline = None if idle_ms is None else start + idle_ms / 1000.0
        while not self.closed:
            self.check_callback_errors()
            limits = [d for d in (deadline, idle_deadline) if d is not None]
            wait_ms = _WAIT_SLICE_MS
            if limits:
                left = min(limits) - time.monotonic()
                if left <= 0:
                    return
                wait_ms = min(wait_ms, int(left * 1000.0 + 0.999))
            ev = self._next(wait_ms)
            if ev is not None:
                if idle_ms is not None:
                    idle_deadline = time.monotonic() + idle_ms / 1000.0
                yield ev

    def aevents(self, timeout: Optional[float] = None, *, idle_timeout: Optional[float] = None) -> AsyncIterator[Event]:
        """``async for`` over queued events, waiting on :attr:`event_fd` in the running loop.

        Ends like :meth:`events`: after ``timeout`` seconds, ``idle_timeout`` seconds
        without an event, or when the runtime is closed. Never blocks the loop.
        """
        fd = self.event_fd  # also: ValueError if closed
        timeout_ms = None if timeout is None else to_ms(timeout, "timeout")
        idle_ms = None if idle_timeout is None else to_ms(idle_timeout, "idle_timeout")
        return self._aevents(fd, timeout_ms, idle_ms)

    async def _aevents(self, fd: int, timeout_ms: Optional[int], idle_ms: Optional[int]) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = None if timeout_ms is None else start + timeout_ms / 1000.0
        idle_deadline = None if idle_ms is None else start + idle_ms / 1000.0
        while not self.closed:
            self.check_callback_errors()
            ev = self._next(0)
            if ev is not None:
                if idle_ms is not None:
                    idle_deadline = loop.time() + idle_ms / 1000.0
                yield ev
                continue
            limits = [d for d in (deadline, idle_deadline) if d is not None]
            wait: Optional[float] = None
            if limits:
                wait = min(limits) - loop.time()
                if wait <= 0:
                    return
            await self._readable(loop, fd, wait)

    async def _readable(self, loop: asyncio.AbstractEventLoop, fd: int, wait: Optional[float]) -> None:
        fut: "asyncio.Future[bool]" = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(True)

        entry = (loop, fut)
        with self._lock:
            if self.closed:
                return
            self._async_waiters.add(entry)
        loop.add_reader(fd, ready)
        try:
            await asyncio.wait_for(fut, wait)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._async_waiters.discard(entry)
            loop.remove_reader(fd)

    # --- callback errors ---------------------------------------------------------------------

    def _keep_callback_error(self, exc: BaseException) -> None:
        """Called on the runtime thread (by :mod:`ctrlchan._callbacks`, which logged it)."""
        self._callback_errors.append(exc)
        with self._lock:
            waiters = list(self._async_waiters)
        self._wake_async_waiters(waiters)  # an `async for` over aevents() re-raises it now

    def check_callback_errors(self) -> None:
        """Re-raise (once) the oldest exception an event handler raised, if any."""
        try:
            exc = self._callback_errors.popleft()
        except IndexError:
            return
        raise exc

    @property
    def pending_callback_errors(self) -> List[BaseException]:
        """Exceptions raised by event handlers and not yet re-raised (oldest first)."""
        return list(self._callback_errors)

    # --- ownership of channels and websockets ------------------------------------------------

    def _adopt(self, ptr: int, order: int, free: Callable[[int], None], obj: Handle) -> None:
        with self._lock:
            self._children[ptr] = (order, free, weakref.ref(obj))

    def _disown(self, ptr: int) -> bool:
        """Whether the caller may free ``ptr`` (False: the runtime already freed it)."""
        with self._lock:
            return self._children.pop(ptr, None) is not None

    def close(self) -> None:
        """Close every channel and websocket of this runtime, then stop and free the runtime. Idempotent."""
        if self._ptr is not None:
            forbid_in_callback(self, "Runtime.close")
        with self._lock:
            ptr = self._take()
            if ptr is None:
                return
            children = sorted(self._children.items(), key=lambda item: item[1][0])
            self._children.clear()
            waiters = list(self._async_waiters)
            self._async_waiters.clear()
        self._wake_async_waiters(waiters)
        for child_ptr, (_order, free, ref) in children:
            obj = ref()
            if obj is not None:
                obj._take()  # the object reports closed; its own close() frees nothing
            _managed.forget(child_ptr)
            free(child_ptr)
        _ffi.lib.ctrlchan_runtime_free(ptr)

    def _finalize(self) -> None:
        # Garbage collection never runs this inside one of this runtime's callbacks (the
        # running callback holds a reference); on the runtime thread outside a callback
        # (from a handler's finalizer) the library starts the shutdown without joining.
        self.close()

    @staticmethod
    def _wake_async_waiters(waiters: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[bool]"]]) -> None:
        for loop, fut in waiters:

            def wake(f: "asyncio.Future[bool]" = fut) -> None:
                if not f.done():
                    f.set_result(False)

            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                wake()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(wake)


def _close_all_at_exit() -> None:
    """Join every runtime thread before the interpreter tears down (callbacks need it alive)."""
    for rt in list(_all_runtimes):
        try:
            rt.close()
        except Exception:  # pragma: no cover
            pass


atexit.register(_close_all_at_exit)

