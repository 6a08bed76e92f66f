//! `ctrlchan_websocket`: MessageWebSocket / StreamWebSocket.

use std::ffi::{c_char, c_void};

use super::args::{bytes_arg, get_into, opt_str_arg, out_arg, str_arg, MessageTypeArg, WebSocketKindArg};
use super::boundary::ffi_fn;
use super::event::{ctrlchan_event_callback, ctrlchan_finalizer, install_handler};
use super::handles::{self, get};
use super::runtime::ctrlchan_runtime;
use crate::{Error, MessageType, ResultCode, Runtime, WebSocket, WebSocketKind, WebSocketState, WebSocketStats};

/// A client websocket (kind MESSAGE or STREAM).
pub struct ctrlchan_websocket {
    _private: [u8; 0],
}

/// Creates a websocket of `kind` (`CTRLCHAN_WEBSOCKET_KIND_MESSAGE` or `_STREAM`) on runtime `rt`.
/// Defaults: message type BINARY, max incoming message 16 MiB, outbound queue limit 16 MiB,
/// system root certificates for wss://.
///
/// Ownership: the caller owns `*out` and must free it with `ctrlchan_websocket_free`.
/// Thread rules: any thread.
/// Errors: `INVALID_HANDLE` (rt); `INVALID_ARGUMENT` (bad kind, NULL out); `INVALID_STATE` if the
/// runtime is shut down.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_new(
    rt: *mut ctrlchan_runtime,
    kind: WebSocketKindArg,
    out: *mut *mut ctrlchan_websocket,
) -> ResultCode {
    ffi_fn! {
        let r = get::<Runtime>(rt)?;
        let kind = kind.get()?;
        let out = out_arg(out, "out")?;
        *out = handles::insert(WebSocket::new(&r, kind)?)?;
        Ok(())
    }
}

/// Frees the handle. An open connection is closed gracefully in the background: queued data is
/// sent, then a close frame 1001, and the peer's close is awaited (at most 5 s) before the
/// socket closes. From this call on no event is created for the websocket, and its events still
/// in the runtime queue are dropped (read them before freeing if you need them). The event
/// handler is released (its finalizer runs).
///
/// Ownership: takes ownership of `ws`; it must not be used afterwards. NULL or an already-freed
/// handle is a no-op. A channel using it as transport sees it as closed.
/// Thread rules: any thread, including callbacks.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_free(ws: *mut ctrlchan_websocket) {
    ffi_fn! {
        if let Some(w) = handles::take::<WebSocket>(ws) {
            w.release();
        }
        Ok(())
    }
}

/// Adds (or replaces) an HTTP header sent with the opening handshake. Before connect only.
///
/// Errors: `INVALID_ARGUMENT` if the name is empty or not an HTTP token, if either string
/// contains CR, LF or NUL or is not UTF-8, or if the header is managed by the handshake itself
/// (Host, Upgrade, Connection, Sec-WebSocket-*); `INVALID_STATE` after connect; `INVALID_HANDLE`.
/// Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_request_header(
    ws: *mut ctrlchan_websocket,
    name: *const c_char,
    value: *const c_char,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let name = unsafe { str_arg(name, "name") }?;
        let value = unsafe { str_arg(value, "value") }?;
        w.set_request_header(name, value)
    }
}

/// Offers a subprotocol (Sec-WebSocket-Protocol) in the handshake; call once per protocol, in
/// preference order. Before connect only. The negotiated one is read with
/// `ctrlchan_websocket_get_protocol`.
///
/// Errors: `INVALID_ARGUMENT` (NULL, empty, not an HTTP token); `INVALID_STATE` after connect;
/// `INVALID_HANDLE`. Thread rules: any thread.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_add_supported_protocol(
    ws: *mut ctrlchan_websocket,
    protocol: *const c_char,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let p = unsafe { str_arg(protocol, "protocol") }?;
        w.add_supported_protocol(p)
    }
}

/// Largest incoming message accepted (default 16 MiB). A bigger message closes the connection
/// with code 1009 and a `CLOSED` event; it is never buffered. Before connect only.
///
/// Errors: `INVALID_ARGUMENT` if 0; `INVALID_STATE` after connect; `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_max_message_size(ws: *mut ctrlchan_websocket, bytes: u32) -> ResultCode {
    ffi_fn! { get::<WebSocket>(ws)?.set_max_message_size(bytes) }
}

/// Frame type used by `ctrlchan_websocket_send` (default BINARY). Before connect only.
///
/// Errors: `INVALID_ARGUMENT` for an unknown type or UTF8 on a STREAM websocket;
/// `INVALID_STATE` after connect; `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_message_type(
    ws: *mut ctrlchan_websocket,
    type_: MessageTypeArg,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        w.set_message_type(type_.get()?)
    }
}

/// Trusts the CA certificate(s) in `pem` (PEM text, one or more CERTIFICATE blocks) in addition
/// to the system roots, for wss:// to private servers. Before connect only.
///
/// Errors: `INVALID_ARGUMENT` if `pem` is NULL, holds no certificate or a malformed one;
/// `INVALID_STATE` after connect; `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_add_trusted_ca_pem(
    ws: *mut ctrlchan_websocket,
    pem: *const u8,
    len: usize,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let pem = unsafe { bytes_arg(pem, len, "pem") }?;
        w.add_trusted_ca_pem(pem)
    }
}

/// DANGEROUS: when `ignore` is true, wss:// accepts any server certificate (expired, self-signed,
/// wrong name). Only for tests and closed networks. Before connect only.
///
/// Errors: `INVALID_STATE` after connect; `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_ignore_certificate_errors(
    ws: *mut ctrlchan_websocket,
    ignore: bool,
) -> ResultCode {
    ffi_fn! { get::<WebSocket>(ws)?.set_ignore_certificate_errors(ignore) }
}

/// Bounds the bytes queued for sending but not yet accepted by the kernel (default 16 MiB).
/// `ctrlchan_websocket_send` past it fails with `BUFFER_FULL` and queues nothing. Any time.
///
/// Errors: `INVALID_ARGUMENT` if 0; `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_outbound_buffer_limit(ws: *mut ctrlchan_websocket, bytes: u32) -> ResultCode {
    ffi_fn! { get::<WebSocket>(ws)?.set_outbound_buffer_limit(bytes) }
}

/// Sets the websocket's event callback, used when the websocket is not the transport of a
/// channel that has its own callback. `cb == NULL` removes it (events then go to the runtime
/// queue; `userdata`/`finalizer` are ignored). A previous callback is released (its finalizer runs,
/// after any call in progress returns).
///
/// Ownership: on success the library owns `userdata` and calls `finalizer(userdata)` exactly once
/// when it drops it (replaced, websocket freed, or runtime freed). On failure the caller keeps it.
/// Thread rules: any thread; `cb` runs on the runtime thread.
/// Errors: `INVALID_HANDLE`; `INVALID_STATE` if the runtime is shut down.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_set_event_handler(
    ws: *mut ctrlchan_websocket,
    cb: ctrlchan_event_callback,
    userdata: *mut c_void,
    finalizer: ctrlchan_finalizer,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        install_handler(cb, userdata, finalizer, |h| w.set_handler(h))
    }
}

/// Connects to `uri` (`ws://` or `wss://`) and performs the opening handshake, waiting up to
/// `timeout_ms` (0 = 30 s). A websocket connects once; create a new one to reconnect. Call
/// `ctrlchan_channel_using_transport` before this. Host names are resolved on the calling thread.
/// A runtime runs at most 64 connects (TCP, proxy, TLS, upgrade) at once per destination (the
/// first address: the server's, or the proxy's); more to that destination wait their turn in
/// order, and the wait counts against `timeout_ms`. Connects to other destinations do not wait.
///
/// Thread rules: any thread except a runtime thread (`INVALID_STATE` inside a callback).
/// Errors: `INVALID_ARGUMENT` (NULL/invalid URI, scheme not ws/wss); `INVALID_STATE` (already
/// connected/connecting, runtime shut down); `CONNECT_FAILED` (refused, unreachable, unresolvable);
/// `TLS_FAILED` (certificate or TLS protocol); `HANDSHAKE_FAILED` (HTTP status not 101, bad
/// upgrade); `TIMEOUT`; `INVALID_HANDLE`. Details in `ctrlchan_last_error()`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_connect(
    ws: *mut ctrlchan_websocket,
    uri: *const c_char,
    timeout_ms: u32,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let uri = unsafe { str_arg(uri, "uri") }?;
        w.connect(uri, timeout_ms)
    }
}

/// Starts connecting and returns at once; a `CONNECTED` or `CONNECT_FAILED` event (reason set)
/// follows through the usual event route. Same arguments and argument errors as
/// `ctrlchan_websocket_connect`; network failures arrive as the event.
///
/// Thread rules: any thread, including callbacks.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_connect_async(
    ws: *mut ctrlchan_websocket,
    uri: *const c_char,
    timeout_ms: u32,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let uri = unsafe { str_arg(uri, "uri") }?;
        w.connect_async(uri, timeout_ms)
    }
}

/// Queues one whole message with the websocket's message type (STREAM: binary). The bytes are
/// copied; the call does not wait for the network. Outbound data also counts as a keep-alive.
///
/// Thread rules: any thread, including callbacks. Messages from one thread go out in order.
/// Errors: `INVALID_ARGUMENT` (NULL data with len > 0; UTF8 type and invalid UTF-8);
/// `INVALID_STATE` (not connected yet); `CLOSED` (closing or closed); `BUFFER_FULL` (the outbound
/// limit would be passed; nothing was queued); `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_send(ws: *mut ctrlchan_websocket, data: *const u8, len: usize) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        w.send(data)
    }
}

/// Like `ctrlchan_websocket_send` with an explicit frame type (UTF8 payloads must be valid UTF-8;
/// STREAM websockets accept BINARY only).
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_send_message(
    ws: *mut ctrlchan_websocket,
    type_: MessageTypeArg,
    data: *const u8,
    len: usize,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let t: MessageType = type_.get()?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        w.send_message(t, data)
    }
}

/// Starts the close handshake with `code` (1000-1003, 1007-1014 or 3000-4999) and an optional
/// `reason` (NULL or at most 123 bytes of UTF-8). Data queued before goes out first. A `CLOSED`
/// event with the peer's answer follows (or `TRANSPORT_DISCONNECTED` if it never answers, after
/// 5 s).
///
/// Thread rules: any thread, including callbacks.
/// Errors: `INVALID_ARGUMENT` (code, reason); `INVALID_STATE` (not connected); `CLOSED` (already
/// closing or closed); `INVALID_HANDLE`.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_close(
    ws: *mut ctrlchan_websocket,
    code: u16,
    reason: *const c_char,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let reason = unsafe { opt_str_arg(reason, "reason") }?.unwrap_or("");
        w.close(code, reason)
    }
}

/// The subprotocol the server selected ("" if none or not connected yet).
///
/// Ownership: `*out` is owned by the websocket and valid while it lives.
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_protocol(
    ws: *const ctrlchan_websocket,
    out: *mut *const c_char,
) -> ResultCode {
    // The CStr lives inside the websocket, which the registry (and the caller's handle) keeps alive.
    ffi_fn! { get_into(ws, out, |w: &WebSocket| w.protocol_cstr().as_ptr()) }
}

/// Message and payload-byte counters in each direction.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_stats(ws: *const ctrlchan_websocket, out: *mut WebSocketStats) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = w.stats();
        Ok(())
    }
}

/// Lifecycle state: NEW, CONNECTING, OPEN, CLOSING or CLOSED.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_state(ws: *const ctrlchan_websocket, out: *mut WebSocketState) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = w.state();
        Ok(())
    }
}

/// MESSAGE or STREAM.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_kind(ws: *const ctrlchan_websocket, out: *mut WebSocketKind) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = w.kind();
        Ok(())
    }
}

/// The configured largest incoming message in bytes.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_max_message_size(ws: *const ctrlchan_websocket, out: *mut u32) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = w.max_message_size();
        Ok(())
    }
}

/// The configured frame type for `ctrlchan_websocket_send`.
///
/// Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_message_type(
    ws: *const ctrlchan_websocket,
    out: *mut MessageType,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = w.message_type();
        Ok(())
    }
}

/// The outbound queue limit in bytes (default 16 MiB).
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_outbound_buffer_limit(
    ws: *const ctrlchan_websocket,
    out: *mut u32,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = w.outbound_buffer_limit();
        Ok(())
    }
}

/// Whether certificate errors are ignored (`ctrlchan_websocket_set_ignore_certificate_errors`).
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_ignore_certificate_errors(
    ws: *const ctrlchan_websocket,
    out: *mut bool,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = w.ignore_certificate_errors();
        Ok(())
    }
}

/// Number of subprotocols offered with `ctrlchan_websocket_add_supported_protocol`.
///
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_supported_protocol_count(
    ws: *const ctrlchan_websocket,
    out: *mut usize,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        *out_arg(out, "out")? = w.supported_protocol_count();
        Ok(())
    }
}

/// The `index`-th offered subprotocol (0-based, in the order added).
///
/// Ownership: `*out` is owned by the websocket and valid while it lives.
/// Thread rules: any thread. Errors: `INVALID_HANDLE`; `INVALID_ARGUMENT` if `out` is NULL or
/// `index` is not below the count.
#[no_mangle]
pub extern "C" fn ctrlchan_websocket_get_supported_protocol(
    ws: *const ctrlchan_websocket,
    index: usize,
    out: *mut *const c_char,
) -> ResultCode {
    ffi_fn! {
        let w = get::<WebSocket>(ws)?;
        let out = out_arg(out, "out")?;
        let count = w.supported_protocol_count();
        *out = w.with_supported_protocol(index, |p| p.as_ptr()).ok_or_else(|| {
            Error::invalid_argument(format!("protocol index {index} is out of range (count {count})"))
        })?;
        Ok(())
    }
}
