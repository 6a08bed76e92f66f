"""Argument conversion: Python values -> the C types the ABI takes (C#: ``Native``'s marshalling).

Every public method converts and checks its arguments here *before* calling the library,
so a wrong type is a ``TypeError`` and an out-of-range value an ``InvalidArgumentError``
naming the parameter; the library's own checks (valid close codes, header syntax, ...)
then apply on top.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Type, TypeVar, Union

from ._errors import InvalidArgumentError

__all__ = ["U16_MAX", "U32_MAX", "to_ms", "to_uint", "to_cstr", "to_bytes", "to_text_bytes", "to_enum"]

U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF

T = TypeVar("T")


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
    """An ``int`` in ``0..maximum`` (``bool`` is refused: it is almost always a mistake)."""
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
    """A bytes-like object -> ``bytes`` (no copy for ``bytes``)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{name} must be bytes-like, not {type(data).__name__}")


def to_text_bytes(data: str, name: str) -> bytes:
    """A message payload ``str`` -> UTF-8 (NUL allowed, unlike :func:`to_cstr`)."""
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"{name} is not valid Unicode: {exc}") from None


def to_enum(cls: Type[T], value: Any, name: str) -> T:
    """An ``IntEnum`` member from a member or a plain int; ``InvalidArgumentError`` for unknown values."""
    if isinstance(value, cls):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a {cls.__name__}, not {type(value).__name__}")
    try:
        result: T = cls(value)  # type: ignore[call-arg]
    except ValueError:
        raise InvalidArgumentError(f"{value} is not a valid {cls.__name__}") from None
    return result
