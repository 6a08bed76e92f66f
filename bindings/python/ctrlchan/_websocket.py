"""``MessageWebSocket`` and ``StreamWebSocket`` (Windows.Networking.Sockets names)."""

from __future__ import annotations

import asyncio
from ctypes import byref, c_bool, c_char_p, c_size_t, c_uint32, c_void_p
from dataclasses import dataclass
from ctypes import string_at
from typing import Callable, Iterable, List, Optional, Tuple, Union

from . import _ffi
from ._callbacks import install_event_handler
from ._convert import U16_MAX, U32_MAX, to_bytes, to_cstr, to_enum, to_ms, to_text_bytes, to_uint
from ._durable import to_mask
from ._enums import EventMask, ResultCode, SocketMessageType, WebSocketKind, WebSocketState
from ._errors import check, error_for
from ._event import Event
from ._managed import Handle
from ._runtime import ORDER_WEBSOCKET, Runtime

__all__ = [
    "MessageWebSocket",
    "StreamWebSocket",
    "MessageWebSocketControl",
    "StreamWebSocketControl",
    "WebSocketInformation",
    "WebSocketStatistics",
]

Data = Union[str, bytes, bytearray, memoryview]
EventHandler = Callable[[Event], object]


@dataclass(frozen=True)
class WebSocketStatistics:
    """Per-websocket counters (payload bytes, framing not counted)."""

    messages_sent: int
    messages_received: int
    bytes_sent: int
    bytes_received: int


def websocket_state(ptr: int) -> Optional[WebSocketState]:
    """State of a native websocket, or None if the handle is gone."""
    out = c_uint32()
    if int(_ffi.lib.ctrlchan_websocket_get_state(ptr, byref(out))) != 0:
        return None
    try:
        return WebSocketState(out.value)
    except ValueError:  # pragma: no cover - newer library
        return None


def _connect_ms(timeout: Optional[float]) -> int:
    # The C API reads 0 as "default (30 s)"; in Python 0 means "as short as possible".
    return max(1, to_ms(timeout, "timeout", none_ms=U32_MAX))


def _free_websocket(ptr: int) -> None:
    _ffi.lib.ctrlchan_websocket_free(ptr)


class _WebSocketControl:
    """Options of a websocket, settable before ``connect`` (else ``InvalidStateError``)."""

    def __init__(self, ws: "_WebSocket") -> None:
        self._ws = ws

    @property
    def max_message_size(self) -> int:
        """Largest incoming message in bytes (default 16 MiB); bigger ones close the connection with 1009."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_websocket_get_max_message_size(self._ws._handle(), byref(out)),
            "ctrlchan_websocket_get_max_message_size",
        )
        return out.value

    @max_message_size.setter
    def max_message_size(self, value: int) -> None:
        n = to_uint(value, "max_message_size")
        check(
            _ffi.lib.ctrlchan_websocket_set_max_message_size(self._ws._handle(), n),
            "ctrlchan_websocket_set_max_message_size",
        )

    @property
    def outbound_buffer_limit(self) -> int:
        """Bytes ``send`` may queue before it fails with ``BufferFullError`` (default 16 MiB).
        Settable at any time; read from the library."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_websocket_get_outbound_buffer_limit(self._ws._handle(), byref(out)),
            "ctrlchan_websocket_get_outbound_buffer_limit",
        )
        return out.value

    @outbound_buffer_limit.setter
    def outbound_buffer_limit(self, value: int) -> None:
        n = to_uint(value, "outbound_buffer_limit")
        check(
            _ffi.lib.ctrlchan_websocket_set_outbound_buffer_limit(self._ws._handle(), n),
            "ctrlchan_websocket_set_outbound_buffer_limit",
        )

    @property
    def ignore_certificate_errors(self) -> bool:
        """Accept any server certificate on ``wss://``. Dangerous; for tests only. Read from the library."""
        out = c_bool()
        check(
            _ffi.lib.ctrlchan_websocket_get_ignore_certificate_errors(self._ws._handle(), byref(out)),
            "ctrlchan_websocket_get_ignore_certificate_errors",
        )
        return bool(out.value)

    @ignore_certificate_errors.setter
    def ignore_certificate_errors(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"ignore_certificate_errors must be bool, not {type(value).__name__}")
        check(
            _ffi.lib.ctrlchan_websocket_set_ignore_certificate_errors(self._ws._handle(), value),
            "ctrlchan_websocket_set_ignore_certificate_errors",
        )

    @property
    def supported_protocols(self) -> Tuple[str, ...]:
        """Subprotocols offered in the handshake, in order (add with ``add_supported_protocol``).
        Read from the library."""
        ptr = self._ws._handle()
        count = c_size_t()
        check(
            _ffi.lib.ctrlchan_websocket_get_supported_protocol_count(ptr, byref(count)),
            "ctrlchan_websocket_get_supported_protocol_count",
        )
        protocols = []
        for i in range(count.value):
            out = c_char_p()
            check(
                _ffi.lib.ctrlchan_websocket_get_supported_protocol(ptr, i, byref(out)),
                "ctrlchan_websocket_get_supported_protocol",
            )
            protocols.append(_ffi.decode(out.value))
        return tuple(protocols)

    def add_trusted_ca_pem(self, pem: Union[str, bytes]) -> None:
        """Trust the PEM certificate(s) as extra roots for ``wss://`` (before connect)."""
        self._ws.add_trusted_ca_pem(pem)

    # --- real networks (before connect) ---------------------------------------------------

    @property
    def proxy(self) -> Optional[str]:
        """The proxy for every connect and reconnect: ``"http://[user:pass@]host:port"`` (HTTP
        CONNECT), ``"socks5://…"`` (local DNS), ``"socks5h://…"`` (proxy DNS), or ``""`` for
        direct. ``None`` (default): from the environment like curl and python-websockets
        (``wss_proxy``/``ws_proxy``, ``https_proxy``/``http_proxy``, ``all_proxy``, ``no_proxy``).
        Failures raise ``ProxyFailedError``; credentials never appear in messages. Reads back the
        value set here (the library has no getter)."""
        self._ws._handle()
        return self._ws._proxy

    @proxy.setter
    def proxy(self, uri: str) -> None:
        check(
            _ffi.lib.ctrlchan_websocket_set_proxy(self._ws._handle(), to_cstr(uri, "proxy")),
            "ctrlchan_websocket_set_proxy",
        )
        self._ws._proxy = uri

    @property
    def client_certificate(self) -> Optional[bytes]:
        """The client certificate chain (PEM) offered for mutual TLS, or None. Set it with
        ``(chain_pem, key_pem)``: the chain (leaf first) and its PKCS#8, SEC1 or RSA private key;
        a key that does not belong to the certificate raises ``InvalidArgumentError`` at once."""
        self._ws._handle()
        return self._ws._client_chain

    @client_certificate.setter
    def client_certificate(self, value: Tuple[Union[str, bytes], Union[str, bytes]]) -> None:
        if not isinstance(value, tuple) or len(value) != 2:
            raise TypeError("client_certificate must be a (chain_pem, key_pem) tuple")
        chain, key = (v.encode("ascii") if isinstance(v, str) else to_bytes(v, "pem") for v in value)
        check(
            _ffi.lib.ctrlchan_websocket_set_client_certificate_pem(self._ws._handle(), chain, len(chain), key, len(key)),
            "ctrlchan_websocket_set_client_certificate_pem",
        )
        self._ws._client_chain = chain

    @property
    def pinned_public_keys(self) -> Tuple[str, ...]:
        """Public-key pins, curl's ``"sha256//<base64>"`` form: with any set, the server's key must
        match one (in addition to normal verification). Assigning a sequence adds its pins (pins
        cannot be removed); see also :meth:`add_pinned_public_key`."""
        self._ws._handle()
        return tuple(self._ws._pins)

    @pinned_public_keys.setter
    def pinned_public_keys(self, pins: Iterable[str]) -> None:
        pins = [pins] if isinstance(pins, str) else list(pins)
        missing = [p for p in self._ws._pins if p not in pins]
        if missing:
            raise ValueError("pins cannot be removed once added")
        for p in pins:
            if p not in self._ws._pins:
                self.add_pinned_public_key(p)

    def add_pinned_public_key(self, pin: str) -> None:
        """Add a pin (``"sha256//<base64>"``; several joined by ``;``) before connect."""
        check(
            _ffi.lib.ctrlchan_websocket_add_pinned_public_key(self._ws._handle(), to_cstr(pin, "pin")),
            "ctrlchan_websocket_add_pinned_public_key",
        )
        self._ws._pins.append(pin)


class WebSocketInformation:
    """Windows ``MessageWebSocketInformation``: what the connection negotiated."""

    def __init__(self, ws: "_WebSocket") -> None:
        self._ws = ws

    @property
    def protocol(self) -> str:
        """The subprotocol the server chose ("" if none)."""
        return self._ws.protocol

    @property
    def server_certificate(self) -> Optional[bytes]:
        """The server's leaf certificate (DER) of the latest ``wss://`` connection, or None."""
        der = c_void_p()
        n = c_size_t()
        check(
            _ffi.lib.ctrlchan_websocket_get_peer_certificate(self._ws._handle(), byref(der), byref(n)),
            "ctrlchan_websocket_get_peer_certificate",
        )
        return string_at(der.value, n.value) if der.value and n.value else None

    def _text(self, name: str) -> str:
        out = c_char_p()
        check(getattr(_ffi.lib, name)(self._ws._handle(), byref(out)), name)
        return _ffi.decode(out.value)

    @property
    def tls_version(self) -> str:
        """``"TLSv1.3"``/``"TLSv1.2"`` for ``wss://`` ("" before connect and for ``ws://``)."""
        return self._text("ctrlchan_websocket_get_tls_version")

    @property
    def tls_cipher_suite(self) -> str:
        """The IANA cipher suite name, e.g. ``"TLS_AES_128_GCM_SHA256"`` ("" if none)."""
        return self._text("ctrlchan_websocket_get_tls_cipher_suite")


class MessageWebSocketControl(_WebSocketControl):
    """Windows ``MessageWebSocketControl``."""

    @property
    def message_type(self) -> SocketMessageType:
        """Frame type used by :meth:`MessageWebSocket.write` (default BINARY)."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_websocket_get_message_type(self._ws._handle(), byref(out)),
            "ctrlchan_websocket_get_message_type",
        )
        return SocketMessageType(out.value)

    @message_type.setter
    def message_type(self, value: SocketMessageType) -> None:
        mt = to_enum(SocketMessageType, value, "message_type")
        check(
            _ffi.lib.ctrlchan_websocket_set_message_type(self._ws._handle(), int(mt)),
            "ctrlchan_websocket_set_message_type",
        )


class StreamWebSocketControl(_WebSocketControl):
    """Windows ``StreamWebSocketControl`` (a stream websocket always sends binary frames)."""


class _WebSocket(Handle):
    _kind: WebSocketKind = WebSocketKind.MESSAGE

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        if not isinstance(runtime, Runtime):
            raise TypeError(f"runtime must be a Runtime, not {type(runtime).__name__}")
        self._runtime = runtime
        self._on_event: Optional[EventHandler] = None
        self._proxy: Optional[str] = None
        self._client_chain: Optional[bytes] = None
        self._pins: List[str] = []
        out = c_void_p()
        check(
            _ffi.lib.ctrlchan_websocket_new(runtime._handle(), int(self._kind), byref(out)),
            "ctrlchan_websocket_new",
        )
        ptr = self._own(out.value, live=True)
        runtime._adopt(ptr, ORDER_WEBSOCKET, _free_websocket, self)

    def __repr__(self) -> str:
        if self._ptr is None:
            return f"<{type(self).__name__} closed>"
        state = websocket_state(self._ptr)
        return f"<{type(self).__name__} {state.name if state is not None else '?'}>"

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    @property
    def information(self) -> WebSocketInformation:
        """What the connection negotiated: subprotocol, server certificate, TLS version, cipher."""
        self._handle()
        return WebSocketInformation(self)

    # --- options ---------------------------------------------------------------------------

    def set_request_header(self, name: str, value: str) -> None:
        """Add an HTTP header to the opening handshake (before connect; no CR/LF/NUL)."""
        check(
            _ffi.lib.ctrlchan_websocket_set_request_header(
                self._handle(), to_cstr(name, "name"), to_cstr(value, "value")
            ),
            "ctrlchan_websocket_set_request_header",
        )

    def add_supported_protocol(self, protocol: str) -> None:
        """Offer a subprotocol in the handshake (before connect)."""
        check(
            _ffi.lib.ctrlchan_websocket_add_supported_protocol(self._handle(), to_cstr(protocol, "protocol")),
            "ctrlchan_websocket_add_supported_protocol",
        )

    def add_trusted_ca_pem(self, pem: Union[str, bytes]) -> None:
        """Trust the PEM certificate(s) as extra roots for ``wss://`` (before connect)."""
        data = pem.encode("ascii") if isinstance(pem, str) else to_bytes(pem, "pem")
        check(
            _ffi.lib.ctrlchan_websocket_add_trusted_ca_pem(self._handle(), data, len(data)),
            "ctrlchan_websocket_add_trusted_ca_pem",
        )

    # --- connection -------------------------------------------------------------------------

    def connect(self, uri: str, timeout: Optional[float] = 30.0) -> None:
        """Open the connection (``ws://`` or ``wss://``); blocks up to ``timeout`` seconds
        (``None``: no limit).

        Raises ``ConnectFailedError``, ``TlsFailedError``, ``HandshakeFailedError`` or
        ``TimeoutError_``. Not allowed from inside an event handler (``InvalidStateError``).
        """
        u = to_cstr(uri, "uri")
        ms = _connect_ms(timeout)
        check(_ffi.lib.ctrlchan_websocket_connect(self._handle(), u, ms), "ctrlchan_websocket_connect")

    def connect_async(self, uri: str, timeout: Optional[float] = 30.0) -> None:
        """Start connecting and return at once (Windows ``ConnectAsync``); the outcome arrives as a
        CONNECTED or CONNECT_FAILED event. For ``await``, see :meth:`aconnect`."""
        u = to_cstr(uri, "uri")
        ms = _connect_ms(timeout)
        check(
            _ffi.lib.ctrlchan_websocket_connect_async(self._handle(), u, ms),
            "ctrlchan_websocket_connect_async",
        )

    async def aconnect(self, uri: str, timeout: Optional[float] = 30.0) -> None:
        """``await``-able :meth:`connect` (runs the blocking call in the loop's default executor)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.connect, uri, timeout)

    def _send_raw(self, payload: bytes) -> None:
        check(_ffi.lib.ctrlchan_websocket_send(self._handle(), payload, len(payload)), "ctrlchan_websocket_send")

    def _send_typed(self, mt: SocketMessageType, payload: bytes) -> None:
        check(
            _ffi.lib.ctrlchan_websocket_send_message(self._handle(), int(mt), payload, len(payload)),
            "ctrlchan_websocket_send_message",
        )

    @property
    def state(self) -> WebSocketState:
        state = websocket_state(self._handle())
        if state is None:
            raise error_for(ResultCode.INVALID_HANDLE, "ctrlchan_websocket_get_state")
        return state

    @property
    def kind(self) -> WebSocketKind:
        out = c_uint32()
        check(_ffi.lib.ctrlchan_websocket_get_kind(self._handle(), byref(out)), "ctrlchan_websocket_get_kind")
        return WebSocketKind(out.value)

    @property
    def protocol(self) -> str:
        """The subprotocol the server chose ("" if none)."""
        out = c_char_p()
        check(
            _ffi.lib.ctrlchan_websocket_get_protocol(self._handle(), byref(out)),
            "ctrlchan_websocket_get_protocol",
        )
        return _ffi.decode(out.value)

    @property
    def statistics(self) -> WebSocketStatistics:
        raw = _ffi.WebSocketStatsC()
        check(_ffi.lib.ctrlchan_websocket_get_stats(self._handle(), byref(raw)), "ctrlchan_websocket_get_stats")
        return WebSocketStatistics(
            messages_sent=raw.messages_sent,
            messages_received=raw.messages_received,
            bytes_sent=raw.bytes_sent,
            bytes_received=raw.bytes_received,
        )

    # --- events ----------------------------------------------------------------------------

    @property
    def event_mask(self) -> EventMask:
        """Which :class:`EventKind` s this websocket produces while it is **no** channel's
        transport (default ``EventMask.DEFAULT``: everything but KEEPALIVE); while it is one,
        the channel's ``event_mask`` applies instead. Settable any time, with an
        :class:`EventMask` or an int (bits ``1 << kind``)."""
        out = c_uint32()
        check(
            _ffi.lib.ctrlchan_websocket_get_event_mask(self._handle(), byref(out)),
            "ctrlchan_websocket_get_event_mask",
        )
        return EventMask(out.value)

    @event_mask.setter
    def event_mask(self, mask: Union[EventMask, int]) -> None:
        value = to_mask(mask)
        check(_ffi.lib.ctrlchan_websocket_set_event_mask(self._handle(), value), "ctrlchan_websocket_set_event_mask")

    @property
    def on_event(self) -> Optional[EventHandler]:
        """Handler for this websocket's events, called on the runtime thread.

        Second in line: it gets the events of this websocket unless the websocket is the
        transport of a channel that has its own ``on_event`` (that one gets them). ``None``
        (default) installs no native handler: the events go to the runtime's queue.
        While it is set, the handler registration keeps this object alive.
        """
        self._handle()
        return self._on_event

    @on_event.setter
    def on_event(self, handler: Optional[EventHandler]) -> None:
        install_event_handler(
            _ffi.lib.ctrlchan_websocket_set_event_handler,
            "ctrlchan_websocket_set_event_handler",
            self._handle(),
            handler,
            self,
            self._runtime,
        )
        self._on_event = handler

    # --- closing -------------------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the websocket (Windows ``Close(code, reason)``) and free it. Idempotent.

        An open connection is sent a close frame with ``code`` and ``reason``; then the
        native handle is freed at once, exactly once. The library finishes the close
        handshake in the background (it waits for the peer's close frame, bounded by the
        close timeout) and delivers **no further events** for this websocket: no CLOSED
        event follows, and its handler registration is released. A websocket that is not
        open is just freed. Any later use of this object raises ``ValueError``.

        A bad ``code`` (not 1000-1003, 1007-1014 or 3000-4999) or a ``reason`` over 123
        UTF-8 bytes raises ``InvalidArgumentError`` and leaves the websocket open.
        """
        if self._ptr is None:
            return
        c = to_uint(code, "code", U16_MAX)
        r = to_cstr(reason, "reason")
        with self._take_lock:
            ptr = self._ptr
            if ptr is None:
                return
            rc = int(_ffi.lib.ctrlchan_websocket_close(ptr, c, r))
            # CLOSED / INVALID_STATE: not open (never connected, closing or closed already):
            # there is no handshake to start, the handle is freed all the same.
            if rc == ResultCode.INVALID_ARGUMENT:
                raise error_for(rc, "ctrlchan_websocket_close")  # stays open; the caller may retry
        super().close()
        self._on_event = None

    def _free_native(self, ptr: int) -> None:
        if self._runtime._disown(ptr):
            _free_websocket(ptr)


class MessageWebSocket(_WebSocket):
    """Windows ``MessageWebSocket``: whole UTF-8 or binary messages."""

    _kind = WebSocketKind.MESSAGE

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._control = MessageWebSocketControl(self)

    @property
    def control(self) -> MessageWebSocketControl:
        return self._control

    def send(self, data: Data, message_type: Optional[SocketMessageType] = None) -> None:
        """Queue one message: ``str`` as a UTF-8 (text) frame, bytes-like as a binary frame.

        ``message_type`` forces the frame type (a UTF-8 frame must carry valid UTF-8).
        Raises ``BufferFullError`` past the outbound limit, ``ClosedError`` once closed.
        """
        if isinstance(data, str):
            payload = to_text_bytes(data, "data")
            mt = SocketMessageType.UTF8
        else:
            payload = to_bytes(data, "data")
            mt = SocketMessageType.BINARY
        if message_type is not None:
            mt = to_enum(SocketMessageType, message_type, "message_type")
        self._send_typed(mt, payload)

    def write(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Queue one message with the frame type of ``control.message_type`` (Windows
        ``OutputStream`` semantics; ``ctrlchan_websocket_send``)."""
        self._send_raw(to_bytes(data, "data"))


class StreamWebSocket(_WebSocket):
    """Windows ``StreamWebSocket``: a byte stream carried in binary messages."""

    _kind = WebSocketKind.STREAM

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._control = StreamWebSocketControl(self)

    @property
    def control(self) -> StreamWebSocketControl:
        return self._control

    def send(self, data: Data) -> None:
        """Queue bytes (``str`` is encoded as UTF-8) as one binary message."""
        if isinstance(data, str):
            payload = to_text_bytes(data, "data")
        else:
            payload = to_bytes(data, "data")
        self._send_raw(payload)

    write = send

