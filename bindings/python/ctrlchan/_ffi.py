"""Loading ``libctrlchan`` and declaring every C function of ``include/ctrlchan.h``.

Nothing in the package calls a C function that is not declared here with its exact
``argtypes``/``restype`` (the test suite parses the header and checks both ways).

Where the library comes from, first match wins:

1. ``$CTRLCHAN_LIBRARY``: a path to the shared library (or to a directory holding it);
2. the copy bundled inside this package (``pip install`` puts it there);
3. the Rust build tree of a source checkout: ``<repo>/target/release``, then
   ``<repo>/target/debug`` (``<repo>`` is two directories above ``bindings/python``).
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "LibraryNotFoundError",
    "lib",
    "library_path",
    "FUNCTIONS",
    "EVENT_CALLBACK",
    "FINALIZER",
    "LOG_CALLBACK",
    "RuntimeStatsC",
    "WebSocketStatsC",
    "ChannelStatsC",
    "ReconnectPolicyC",
]

ENV_VAR = "CTRLCHAN_LIBRARY"

if sys.platform == "darwin":  # pragma: no cover - Linux is the supported platform
    LIBRARY_NAME = "libctrlchan.dylib"
elif sys.platform == "win32":  # pragma: no cover
    LIBRARY_NAME = "ctrlchan.dll"
else:
    LIBRARY_NAME = "libctrlchan.so"


class LibraryNotFoundError(OSError):
    """The native ``libctrlchan`` could not be found or loaded; the message lists every place tried."""


def candidate_paths() -> List[Tuple[str, Path]]:
    """The places the loader tries, in order, as ``(origin, path)`` pairs."""
    here = Path(__file__).resolve().parent
    out: List[Tuple[str, Path]] = []
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        out.append((f"${ENV_VAR}", p / LIBRARY_NAME if p.is_dir() else p))
    out.append(("bundled", here / LIBRARY_NAME))
    repo = here.parent.parent.parent  # <repo>/bindings/python/ctrlchan -> <repo>
    target = Path(os.environ["CARGO_TARGET_DIR"]) if os.environ.get("CARGO_TARGET_DIR") else repo / "target"
    out.append(("build tree", target / "release" / LIBRARY_NAME))
    out.append(("build tree", target / "debug" / LIBRARY_NAME))
    return out


def _load() -> Tuple[ctypes.CDLL, Path]:
    tried: List[str] = []
    explicit = bool(os.environ.get(ENV_VAR))
    for origin, path in candidate_paths():
        if not path.exists():
            tried.append(f"  {origin}: {path} (not found)")
            if origin.startswith("$"):
                # An explicit choice that does not exist is an error, not a hint to look elsewhere.
                break
            continue
        try:
            return ctypes.CDLL(str(path)), path
        except OSError as exc:
            tried.append(f"  {origin}: {path} ({exc})")
            if origin.startswith("$"):
                break
    hint = (
        f"set ${ENV_VAR} to the library path"
        if not explicit
        else f"${ENV_VAR} points at a missing or unloadable file"
    )
    raise LibraryNotFoundError(
        f"cannot load the ctrlchan native library {LIBRARY_NAME}; tried:\n"
        + "\n".join(tried)
        + f"\n{hint}, run `pip install` on bindings/python (it builds the library), "
        "or build it with `cargo build --release` in the repository root"
    )


# --- C types -------------------------------------------------------------------------

c_result = c_uint32  # ctrlchan_result (repr u32)
c_enum = c_uint32  # every ctrlchan enum is repr(u32)
c_handle = c_void_p  # opaque handles are passed and compared as addresses

EVENT_CALLBACK = CFUNCTYPE(None, c_void_p, c_void_p)  # void (*)(void *userdata, const ctrlchan_event *ev)
FINALIZER = CFUNCTYPE(None, c_void_p)  # void (*)(void *userdata)
# void (*)(void *userdata, ctrlchan_log_level level, const char *target, const char *message)
LOG_CALLBACK = CFUNCTYPE(None, c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_char_p)


class RuntimeStatsC(Structure):
    _fields_ = [
        ("wakeups", c_uint64),
        ("keepalives_sent", c_uint64),
        ("keepalives_acked", c_uint64),
        ("messages_received", c_uint64),
        ("connections_open", c_uint64),
        ("channels_active", c_uint64),
    ]


class WebSocketStatsC(Structure):
    _fields_ = [
        ("messages_sent", c_uint64),
        ("messages_received", c_uint64),
        ("bytes_sent", c_uint64),
        ("bytes_received", c_uint64),
    ]


class ChannelStatsC(Structure):
    """``struct ctrlchan_channel_stats`` (field order of the header)."""

    _fields_ = [
        ("keepalives_sent", c_uint64),
        ("keepalives_acked", c_uint64),
        ("reconnects", c_uint64),
        ("last_rtt_us", c_uint32),
        ("srtt_us", c_uint32),
        ("rttvar_us", c_uint32),
        ("current_interval_ms", c_uint32),
    ]


class ReconnectPolicyC(Structure):
    """``struct ctrlchan_reconnect_policy`` (field order of the header)."""

    _fields_ = [
        ("initial_delay_ms", c_uint32),
        ("max_delay_ms", c_uint32),
        ("multiplier_percent", c_uint32),
        ("jitter_percent", c_uint32),
        ("max_attempts", c_uint32),
    ]


_P = POINTER

# name -> (restype, argtypes). Byte buffers (`const uint8_t *`) are declared c_char_p so
# that a `bytes` object is passed without a copy; C strings are c_char_p as well.
FUNCTIONS: Dict[str, Tuple[Any, Sequence[Any]]] = {
    # errors / meta
    "ctrlchan_last_error": (c_char_p, []),
    "ctrlchan_result_name": (c_char_p, [c_result]),
    "ctrlchan_version": (c_char_p, []),
    # runtime
    "ctrlchan_runtime_new": (c_result, [_P(c_handle)]),
    "ctrlchan_runtime_free": (None, [c_handle]),
    "ctrlchan_runtime_next_event": (c_result, [c_handle, c_uint32, _P(c_handle)]),
    "ctrlchan_runtime_event_fd": (c_result, [c_handle, _P(c_int)]),
    "ctrlchan_runtime_get_stats": (c_result, [c_handle, _P(RuntimeStatsC)]),
    "ctrlchan_runtime_set_max_channels": (c_result, [c_handle, c_uint32]),
    "ctrlchan_runtime_set_coalescing_window": (c_result, [c_handle, c_uint32]),
    "ctrlchan_runtime_get_max_channels": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_runtime_get_coalescing_window": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_runtime_set_pong_settle": (c_result, [c_handle, c_uint32]),
    "ctrlchan_runtime_get_pong_settle": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_runtime_set_event_queue_limit": (c_result, [c_handle, c_uint32]),
    "ctrlchan_runtime_get_event_queue_limit": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_runtime_simulate_suspend": (c_result, [c_handle, c_uint32]),
    # logging
    "ctrlchan_set_log_handler": (c_result, [c_uint32, LOG_CALLBACK, c_void_p, FINALIZER]),
    # websocket
    "ctrlchan_websocket_new": (c_result, [c_handle, c_enum, _P(c_handle)]),
    "ctrlchan_websocket_set_request_header": (c_result, [c_handle, c_char_p, c_char_p]),
    "ctrlchan_websocket_add_supported_protocol": (c_result, [c_handle, c_char_p]),
    "ctrlchan_websocket_set_max_message_size": (c_result, [c_handle, c_uint32]),
    "ctrlchan_websocket_set_message_type": (c_result, [c_handle, c_enum]),
    "ctrlchan_websocket_connect": (c_result, [c_handle, c_char_p, c_uint32]),
    "ctrlchan_websocket_connect_async": (c_result, [c_handle, c_char_p, c_uint32]),
    "ctrlchan_websocket_send": (c_result, [c_handle, c_char_p, c_size_t]),
    "ctrlchan_websocket_send_message": (c_result, [c_handle, c_enum, c_char_p, c_size_t]),
    "ctrlchan_websocket_close": (c_result, [c_handle, c_uint16, c_char_p]),
    "ctrlchan_websocket_free": (None, [c_handle]),
    "ctrlchan_websocket_set_event_handler": (c_result, [c_handle, EVENT_CALLBACK, c_void_p, FINALIZER]),
    "ctrlchan_websocket_add_trusted_ca_pem": (c_result, [c_handle, c_char_p, c_size_t]),
    "ctrlchan_websocket_set_ignore_certificate_errors": (c_result, [c_handle, c_bool]),
    "ctrlchan_websocket_set_outbound_buffer_limit": (c_result, [c_handle, c_uint32]),
    "ctrlchan_websocket_get_protocol": (c_result, [c_handle, _P(c_char_p)]),
    "ctrlchan_websocket_get_stats": (c_result, [c_handle, _P(WebSocketStatsC)]),
    "ctrlchan_websocket_get_state": (c_result, [c_handle, _P(c_enum)]),
    "ctrlchan_websocket_get_kind": (c_result, [c_handle, _P(c_enum)]),
    "ctrlchan_websocket_get_max_message_size": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_websocket_get_message_type": (c_result, [c_handle, _P(c_enum)]),
    "ctrlchan_websocket_get_outbound_buffer_limit": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_websocket_get_ignore_certificate_errors": (c_result, [c_handle, _P(c_bool)]),
    "ctrlchan_websocket_get_supported_protocol_count": (c_result, [c_handle, _P(c_size_t)]),
    "ctrlchan_websocket_get_supported_protocol": (c_result, [c_handle, c_size_t, _P(c_char_p)]),
    "ctrlchan_websocket_set_proxy": (c_result, [c_handle, c_char_p]),
    "ctrlchan_websocket_set_client_certificate_pem": (c_result, [c_handle, c_char_p, c_size_t, c_char_p, c_size_t]),
    "ctrlchan_websocket_add_pinned_public_key": (c_result, [c_handle, c_char_p]),
    "ctrlchan_websocket_get_peer_certificate": (c_result, [c_handle, _P(c_void_p), _P(c_size_t)]),
    "ctrlchan_websocket_get_tls_version": (c_result, [c_handle, _P(c_char_p)]),
    "ctrlchan_websocket_get_tls_cipher_suite": (c_result, [c_handle, _P(c_char_p)]),
    "ctrlchan_websocket_set_event_mask": (c_result, [c_handle, c_uint32]),
    "ctrlchan_websocket_get_event_mask": (c_result, [c_handle, _P(c_uint32)]),
    # channel
    "ctrlchan_channel_new": (c_result, [c_handle, c_char_p, c_uint32, c_enum, _P(c_handle)]),
    "ctrlchan_channel_using_transport": (c_result, [c_handle, c_handle]),
    "ctrlchan_channel_wait_for_push_enabled": (c_result, [c_handle, _P(c_enum)]),
    "ctrlchan_channel_set_keepalive": (c_result, [c_handle, c_handle]),
    "ctrlchan_channel_set_event_handler": (c_result, [c_handle, EVENT_CALLBACK, c_void_p, FINALIZER]),
    "ctrlchan_channel_current_keepalive_interval": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_channel_decrease_network_keepalive_interval": (c_result, [c_handle]),
    "ctrlchan_channel_flush_transport": (c_result, [c_handle, c_uint32]),
    "ctrlchan_channel_close": (c_result, [c_handle]),
    "ctrlchan_channel_free": (None, [c_handle]),
    "ctrlchan_channel_get_id": (c_result, [c_handle, _P(c_char_p)]),
    "ctrlchan_channel_get_server_keepalive_interval": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_channel_set_server_keepalive_interval": (c_result, [c_handle, c_uint32]),
    "ctrlchan_channel_get_resource_type": (c_result, [c_handle, _P(c_enum)]),
    "ctrlchan_channel_set_event_mask": (c_result, [c_handle, c_uint32]),
    "ctrlchan_channel_get_event_mask": (c_result, [c_handle, _P(c_uint32)]),
    "ctrlchan_channel_get_stats": (c_result, [c_handle, _P(ChannelStatsC)]),
    "ctrlchan_channel_set_reconnect_policy": (c_result, [c_handle, _P(ReconnectPolicyC)]),
    "ctrlchan_channel_get_reconnect_policy": (c_result, [c_handle, _P(ReconnectPolicyC), _P(c_bool)]),
    # reconnect policy
    "ctrlchan_reconnect_policy_default": (None, [_P(ReconnectPolicyC)]),
    # keep-alive task
    "ctrlchan_keepalive_new": (c_result, [_P(c_handle)]),
    "ctrlchan_keepalive_set_mode": (c_result, [c_handle, c_enum]),
    "ctrlchan_keepalive_set_pong_timeout": (c_result, [c_handle, c_uint32]),
    "ctrlchan_keepalive_run": (c_result, [c_handle, c_handle]),
    "ctrlchan_keepalive_free": (None, [c_handle]),
    "ctrlchan_keepalive_get_mode": (c_result, [c_handle, _P(c_enum)]),
    "ctrlchan_keepalive_get_pong_timeout": (c_result, [c_handle, _P(c_uint32)]),
    # event
    "ctrlchan_event_free": (None, [c_handle]),
    "ctrlchan_event_get_kind": (c_enum, [c_handle]),
    "ctrlchan_event_get_channel": (c_handle, [c_handle]),
    "ctrlchan_event_get_websocket": (c_handle, [c_handle]),
    "ctrlchan_event_get_channel_id": (c_char_p, [c_handle]),
    "ctrlchan_event_get_message_type": (c_enum, [c_handle]),
    "ctrlchan_event_get_data": (c_result, [c_handle, _P(c_void_p), _P(c_size_t)]),
    "ctrlchan_event_get_close_code": (c_uint16, [c_handle]),
    "ctrlchan_event_get_reason": (c_char_p, [c_handle]),
    "ctrlchan_event_get_rtt_us": (c_uint64, [c_handle]),
    "ctrlchan_event_get_result": (c_result, [c_handle]),
    "ctrlchan_event_get_attempt": (c_uint32, [c_handle]),
    "ctrlchan_event_get_delay_ms": (c_uint32, [c_handle]),
    "ctrlchan_event_get_interval_ms": (c_uint32, [c_handle]),
    # Adaptive keep-alive (issue 10).
    "ctrlchan_channel_set_adaptive_keepalive": (c_result, [c_handle, c_uint32, c_uint32]),
    "ctrlchan_channel_get_adaptive_keepalive": (c_result, [c_handle, _P(c_uint32), _P(c_uint32)]),
    "ctrlchan_runtime_set_state_file": (c_result, [c_handle, c_char_p]),
    "ctrlchan_event_get_reset_reason": (c_enum, [c_handle]),
}


def _declare(cdll: ctypes.CDLL) -> List[str]:
    """Set argtypes/restype of every function; returns the names the library lacks."""
    missing: List[str] = []
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(cdll, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = list(argtypes)
    return missing


def _open() -> Tuple[ctypes.CDLL, Path]:
    cdll, path = _load()
    missing = _declare(cdll)
    if missing:
        raise LibraryNotFoundError(
            f"{path} is not a compatible ctrlchan library: it lacks {', '.join(missing)}"
        )
    return cdll, path


lib: Any
_path: Path
lib, _path = _open()


def library_path() -> str:
    """The file the native library was loaded from."""
    return str(_path)


def decode(raw: Optional[bytes]) -> str:
    """A C string from the library as ``str`` (NULL -> ``""``; invalid UTF-8 replaced)."""
    if not raw:
        return ""
    return raw.decode("utf-8", "replace")
