"""Exceptions: one class per ``ctrlchan_result`` code, all under :class:`CtrlChanError`."""

from __future__ import annotations

from typing import Dict, NoReturn, Optional, Type

from . import _ffi
from ._enums import ResultCode

__all__ = [
    "CtrlChanError",
    "InvalidArgumentError",
    "InvalidHandleError",
    "InvalidStateError",
    "TimeoutError_",
    "ConnectFailedError",
    "TlsFailedError",
    "HandshakeFailedError",
    "ClosedError",
    "MessageTooLargeError",
    "BufferFullError",
    "IoError",
    "PolicyError",
    "PanicError",
    "ProxyFailedError",
    "QueueFullError",
    "error_for",
    "check",
]


class CtrlChanError(Exception):
    """A ctrlchan call failed.

    ``code`` is the :class:`ResultCode`, ``detail`` the text of ``ctrlchan_last_error()``
    (empty when the error was detected in Python before calling the library).
    """

    code: ResultCode = ResultCode.PANIC  # overridden per subclass
    detail: str = ""

    def __init__(self, message: str, *, code: Optional[ResultCode] = None, detail: str = "") -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.detail = detail


class InvalidArgumentError(CtrlChanError, ValueError):
    """``INVALID_ARGUMENT``: a bad value (range, UTF-8, NUL byte, CR/LF in a header, ...)."""

    code = ResultCode.INVALID_ARGUMENT


class InvalidHandleError(CtrlChanError, ValueError):
    """``INVALID_HANDLE``: the native object no longer exists (for example its runtime was closed)."""

    code = ResultCode.INVALID_HANDLE


class InvalidStateError(CtrlChanError, RuntimeError):
    """``INVALID_STATE``: not allowed now (an option after connect, a blocking call inside a callback, ...)."""

    code = ResultCode.INVALID_STATE


class TimeoutError_(CtrlChanError, TimeoutError):  # noqa: N801 - the builtin name is taken
    """``TIMEOUT``: the operation did not complete in time. Also a builtin ``TimeoutError``."""

    code = ResultCode.TIMEOUT


class ConnectFailedError(CtrlChanError, ConnectionError):
    """``CONNECT_FAILED``: the TCP connection could not be established."""

    code = ResultCode.CONNECT_FAILED


class TlsFailedError(CtrlChanError, ConnectionError):
    """``TLS_FAILED``: the TLS handshake or certificate verification failed."""

    code = ResultCode.TLS_FAILED


class HandshakeFailedError(CtrlChanError, ConnectionError):
    """``HANDSHAKE_FAILED``: the server rejected the WebSocket upgrade."""

    code = ResultCode.HANDSHAKE_FAILED


class ClosedError(CtrlChanError, ConnectionError):
    """``CLOSED``: the websocket or channel is closed."""

    code = ResultCode.CLOSED


class MessageTooLargeError(CtrlChanError, ValueError):
    """``MESSAGE_TOO_LARGE``: a message exceeds the configured maximum size."""

    code = ResultCode.MESSAGE_TOO_LARGE


class BufferFullError(CtrlChanError, BlockingIOError):
    """``BUFFER_FULL``: the outbound queue limit would be exceeded; nothing was queued."""

    code = ResultCode.BUFFER_FULL


class IoError(CtrlChanError, OSError):
    """``IO``: an operating-system I/O error."""

    code = ResultCode.IO


class PolicyError(CtrlChanError):
    """``POLICY``: a policy limit (such as the runtime's channel limit) was hit."""

    code = ResultCode.POLICY


class PanicError(CtrlChanError, RuntimeError):
    """``PANIC``: a bug inside ctrlchan was caught at the C boundary."""

    code = ResultCode.PANIC


class ProxyFailedError(CtrlChanError, ConnectionError):
    """``PROXY_FAILED``: the proxy refused, needs other credentials, or is unreachable."""

    code = ResultCode.PROXY_FAILED


class QueueFullError(CtrlChanError):
    """``QUEUE_FULL``: reserved for the runtime queue limit's diagnostics (events are never dropped)."""

    code = ResultCode.QUEUE_FULL


_BY_CODE: Dict[int, Type[CtrlChanError]] = {
    cls.code.value: cls
    for cls in (
        InvalidArgumentError,
        InvalidHandleError,
        InvalidStateError,
        TimeoutError_,
        ConnectFailedError,
        TlsFailedError,
        HandshakeFailedError,
        ClosedError,
        MessageTooLargeError,
        BufferFullError,
        IoError,
        PolicyError,
        PanicError,
        ProxyFailedError,
        QueueFullError,
    )
}


def error_for(code: int, what: str) -> CtrlChanError:
    """The exception for a failed call; reads ``ctrlchan_last_error()`` (call right after the failure)."""
    detail = _ffi.decode(_ffi.lib.ctrlchan_last_error())
    try:
        rc: Optional[ResultCode] = ResultCode(code)
    except ValueError:
        rc = None
    name = rc.name if rc is not None else f"result {code}"
    message = f"{what}: {name}" + (f": {detail}" if detail else "")
    cls = _BY_CODE.get(code, CtrlChanError)
    return cls(message, code=rc if rc is not None else ResultCode.PANIC, detail=detail)


def check(code: int, what: str) -> None:
    """Raise the mapped exception unless ``code`` is ``OK``."""
    if code != 0:
        raise_for(code, what)


def raise_for(code: int, what: str) -> NoReturn:
    raise error_for(code, what)
