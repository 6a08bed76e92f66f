"""The Python layer binds every function of include/ctrlchan.h, with matching C types.

The header is parsed (comments and preprocessor lines stripped, declarations split at
top-level semicolons), so a function added to the C ABI without a Python binding, a
changed parameter type, or a renumbered enum fails here.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any, Dict, List, Tuple

import pytest

import ctrlchan
from conftest import REPO
from ctrlchan import _ffi

HEADER = REPO / "include" / "ctrlchan.h"

ENUMS = {
    "CTRLCHAN_RESULT_": ctrlchan.ResultCode,
    "CTRLCHAN_STATUS_": ctrlchan.ControlChannelTriggerStatus,
    "CTRLCHAN_RESOURCE_TYPE_": ctrlchan.ControlChannelTriggerResourceType,
    "CTRLCHAN_EVENT_KIND_": ctrlchan.EventKind,
    "CTRLCHAN_MESSAGE_TYPE_": ctrlchan.SocketMessageType,
    "CTRLCHAN_KEEPALIVE_MODE_": ctrlchan.KeepAliveMode,
    "CTRLCHAN_WEBSOCKET_STATE_": ctrlchan.WebSocketState,
    "CTRLCHAN_WEBSOCKET_KIND_": ctrlchan.WebSocketKind,
    "CTRLCHAN_RESET_REASON_": ctrlchan.ControlChannelTriggerResetReason,
}


def header_text() -> str:
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    # The C++ guard `extern "C" {` ... `}` wraps every function: drop it.
    lines = [line for line in lines if not re.fullmatch(r'\s*(extern "C"\s*\{|\})\s*', line)]
    return "\n".join(lines)


def split_top_level(text: str, sep: str) -> List[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_functions() -> Dict[str, Tuple[str, List[str]]]:
    """name -> (return type, [parameter types]) for every function declared in the header."""
    out: Dict[str, Tuple[str, List[str]]] = {}
    for decl in split_top_level(header_text(), ";"):
        decl = " ".join(decl.split())
        if decl.startswith("typedef") or "{" in decl or "(" not in decl:
            continue
        m = re.match(r"^(.*?)\b(ctrlchan_\w+)\s*\((.*)\)$", decl)
        if not m:
            continue
        ret, name, params = m.groups()
        ptypes = [] if params.strip() in ("", "void") else [strip_name(p) for p in split_top_level(params, ",")]
        out[name] = (norm(ret), ptypes)
    return out


def strip_name(param: str) -> str:
    param = " ".join(param.split())
    if "(*" in param:
        return "fnptr"
    m = re.match(r"^(.*?[\s\*])(\w+)$", param)  # "type name" / "type *name" -> "type"
    return norm(m.group(1) if m and m.group(1).strip() not in ("", "const", "struct") else param)


def norm(ctype: str) -> str:
    ctype = ctype.replace("const ", "").replace("struct ", "")
    return re.sub(r"\s*\*", "*", " ".join(ctype.split())).strip()


SCALARS: Dict[str, Any] = {
    "uint16_t": ctypes.c_uint16,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "int": ctypes.c_int,
    "bool": ctypes.c_bool,
    "void*": ctypes.c_void_p,
    "char*": ctypes.c_char_p,
    "uint8_t*": ctypes.c_char_p,  # byte buffers are passed as bytes without a copy
    "ctrlchan_runtime_stats": _ffi.RuntimeStatsC,
    "ctrlchan_websocket_stats": _ffi.WebSocketStatsC,
    "ctrlchan_channel_stats": _ffi.ChannelStatsC,
    "ctrlchan_reconnect_policy": _ffi.ReconnectPolicyC,
}
HANDLES = {"ctrlchan_runtime", "ctrlchan_websocket", "ctrlchan_channel", "ctrlchan_keepalive", "ctrlchan_event"}
ENUM_TYPES = {
    "ctrlchan_result",
    "ctrlchan_status",
    "ctrlchan_resource_type",
    "ctrlchan_event_kind",
    "ctrlchan_message_type",
    "ctrlchan_keepalive_mode",
    "ctrlchan_websocket_state",
    "ctrlchan_websocket_kind",
    "ctrlchan_reset_reason",
    "ctrlchan_log_level",
}


def expected_ctype(ctype: str) -> Any:
    if ctype == "void":
        return None
    if ctype in ("fnptr", "ctrlchan_event_callback"):
        return _ffi.EVENT_CALLBACK
    if ctype == "ctrlchan_finalizer":
        return _ffi.FINALIZER
    if ctype == "ctrlchan_log_callback":
        return _ffi.LOG_CALLBACK
    if ctype in ENUM_TYPES:
        return ctypes.c_uint32
    if ctype in SCALARS:
        return SCALARS[ctype]
    base = ctype[:-1] if ctype.endswith("*") else None
    if base in HANDLES:
        return ctypes.c_void_p
    if base == "uint8_t*":  # const uint8_t ** (out pointer to a buffer)
        return ctypes.POINTER(ctypes.c_void_p)
    if base is not None:
        inner = expected_ctype(base)
        if inner is not None:
            return ctypes.POINTER(inner)
    raise AssertionError(f"test does not know the C type {ctype!r}")


def test_header_exists_and_parses() -> None:
    assert HEADER.is_file(), HEADER
    funcs = parse_functions()
    assert len(funcs) >= 55, sorted(funcs)
    assert funcs["ctrlchan_runtime_next_event"] == ("ctrlchan_result", ["ctrlchan_runtime*", "uint32_t", "ctrlchan_event**"])


def test_every_header_function_is_bound_and_nothing_else() -> None:
    declared = set(parse_functions())
    bound = set(_ffi.FUNCTIONS)
    assert declared - bound == set(), "functions in ctrlchan.h without a Python binding"
    assert bound - declared == set(), "Python binds functions the header does not declare"


@pytest.mark.parametrize("name", sorted(parse_functions()) if HEADER.is_file() else ["<no header>"])
def test_signature_matches_header(name: str) -> None:
    ret, params = parse_functions()[name]
    restype, argtypes = _ffi.FUNCTIONS[name]
    assert restype == expected_ctype(ret), (name, ret)
    assert list(argtypes) == [expected_ctype(p) for p in params], (name, params)
    fn = getattr(_ffi.lib, name)  # declared on the loaded library, too
    assert fn.restype == restype and list(fn.argtypes) == list(argtypes)


def test_enum_values_match_header() -> None:
    constants = dict((k, int(v)) for k, v in re.findall(r"\b(CTRLCHAN_[A-Z0-9_]+)\s*=\s*(\d+)", header_text()))
    for prefix, enum in ENUMS.items():
        in_header = {k[len(prefix):]: v for k, v in constants.items() if k.startswith(prefix)}
        # CTRLCHAN_WEBSOCKET_ is a prefix of both STATE_ and KIND_, handled by the longer keys.
        assert in_header == {m.name: m.value for m in enum}, prefix


def test_struct_layouts_match_header() -> None:
    text = header_text()
    for cname, pytype in (
        ("ctrlchan_runtime_stats", _ffi.RuntimeStatsC),
        ("ctrlchan_websocket_stats", _ffi.WebSocketStatsC),
        ("ctrlchan_channel_stats", _ffi.ChannelStatsC),
        ("ctrlchan_reconnect_policy", _ffi.ReconnectPolicyC),
    ):
        m = re.search(r"typedef struct " + cname + r"\s*\{(.*?)\}", text, flags=re.S)
        assert m, cname
        fields = [tuple(f.split()) for f in split_top_level(m.group(1), ";")]
        # "uint32_t a, b" declares several fields of one type
        fields = [(t, n.strip()) for t, *rest in fields for n in " ".join(rest).split(",")]
        assert [(SCALARS[t], n) for t, n in fields] == [(t, n) for n, t in pytype._fields_], cname


def test_event_mask_constants_match_header() -> None:
    raw = HEADER.read_text()
    m = re.search(r"#define CTRLCHAN_EVENT_MASK_ALL (\w+)", raw)
    assert m, "CTRLCHAN_EVENT_MASK_ALL"
    assert int(m.group(1), 0) == ctrlchan.EventMask.ALL
    # CTRLCHAN_EVENT_MASK_DEFAULT = ALL & ~(1u << KEEPALIVE) (DESIGN.md); each kind is one bit
    assert ctrlchan.EventMask.DEFAULT == ctrlchan.EventMask.ALL & ~(1 << ctrlchan.EventKind.KEEPALIVE)
    for kind in ctrlchan.EventKind:
        assert ctrlchan.EventMask[kind.name] == 1 << kind.value
