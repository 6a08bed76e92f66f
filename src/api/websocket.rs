//! `MessageWebSocket` / `StreamWebSocket`: the handle. Options and getters come from the shared
//! state ([`WsShared`], via `Deref`); connect, send and close become runtime commands.

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::runtime::Runtime;
use crate::error::{Error, Result, ResultCode};
use crate::protocol::proxy::process_env;
use crate::protocol::uri::{may_send_close_code, parse_target, MAX_CLOSE_REASON};
use crate::runtime::lifecycle;
use crate::runtime::{ensure_may_block, Cmd, ConnectRequest, RtShared};
use crate::state::websocket::DEFAULT_CONNECT_TIMEOUT_MS;
use crate::state::{Handler, WsShared};
use crate::types::{MessageType, WebSocketKind};

/// A client websocket (Windows `MessageWebSocket` or `StreamWebSocket`).
///
/// The runtime keeps an open connection alive on its own: dropping your `Arc` does not close it.
/// Call [`WebSocket::close`] (close handshake, with events) or [`WebSocket::release`] (what
/// freeing the C handle does: a graceful close in the background, without events).
pub struct WebSocket {
    st: Arc<WsShared>,
    rt: Arc<RtShared>,
}

impl Deref for WebSocket {
    type Target = WsShared;
    fn deref(&self) -> &WsShared {
        &self.st
    }
}

impl WebSocket {
    pub fn new(rt: &Runtime, kind: WebSocketKind) -> Result<Arc<WebSocket>> {
        let shared = rt.shared();
        if shared.is_shutting_down() {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        let st = WsShared::new(kind);
        shared.track_websocket(&st);
        Ok(Arc::new(WebSocket { st, rt: shared.clone() }))
    }

    /// The shared state (what events carry in `Event::websocket`).
    pub fn shared(&self) -> &Arc<WsShared> {
        &self.st
    }

    pub(crate) fn runtime(&self) -> &Arc<RtShared> {
        &self.rt
    }

    /// Which event kinds this websocket produces while it is no channel's transport (a
    /// channel's transport follows the channel's mask); default: everything but KEEPALIVE.
    pub fn set_event_mask(&self, mask: u32) -> Result<()> {
        self.st.set_event_mask(mask);
        Ok(())
    }

    pub fn set_handler(&self, h: Option<Handler>) -> Result<()> {
        if self.rt.is_shutting_down() && h.is_some() {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        self.st.replace_handler(h);
        Ok(())
    }

    fn prepare(&self, uri: &str, timeout_ms: u32, notify_events: bool) -> Result<Box<ConnectRequest>> {
        if self.rt.is_shutting_down() {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        let target = parse_target(uri)?;
        let timeout_ms = if timeout_ms == 0 { DEFAULT_CONNECT_TIMEOUT_MS } else { timeout_ms };
        let opts = lifecycle::begin_connect(&self.st)?;
        let revert = |e: Error| {
            lifecycle::revert_connect(&self.st);
            e
        };
        let handshake = crate::runtime::connect::upgrade_request(uri, &opts).map_err(revert)?;
        let tls =
            if target.secure { Some(crate::protocol::tls::client_config(&opts.tls).map_err(revert)?) } else { None };
        // The proxy: explicit, "" for direct, else the environment, read at every connect.
        let setting = opts.proxy.as_deref().cloned().unwrap_or_default();
        let proxy = setting.resolve(target.secure, &target.host, target.port, &process_env).map_err(revert)?;
        let config = crate::runtime::connect::codec_config(&opts);
        let mut req = Box::new(ConnectRequest {
            addrs: Vec::new(),
            resolve_error: None,
            host: target.host,
            port: target.port,
            tls,
            handshake,
            uri: uri.into(),
            config,
            deadline: Instant::now() + Duration::from_millis(timeout_ms as u64),
            timeout_ms,
            notify_events,
            proxy,
            proxy_target: None,
        });
        // IP literals need no resolution; names are resolved by connect() on the calling thread
        // and by connect_async() on a short-lived resolver thread (never on the runtime thread).
        req.plan().map_err(revert)?;
        Ok(req)
    }

    /// Connects and waits for the handshake. `timeout_ms == 0` means 30 s.
    pub fn connect(&self, uri: &str, timeout_ms: u32) -> Result<()> {
        ensure_may_block("ctrlchan_websocket_connect")?;
        let mut req = self.prepare(uri, timeout_ms, false)?;
        if req.needs_dns() {
            req.resolve();
            if let Some(e) = req.resolve_error.take() {
                lifecycle::revert_connect(&self.st);
                return Err(e);
            }
        }
        let bound = req.deadline + Duration::from_secs(5);
        if let Err(e) = self.rt.send(Cmd::Connect(self.st.clone(), req.into_start())) {
            lifecycle::revert_connect(&self.st);
            return Err(e);
        }
        lifecycle::wait_connected(&self.st, bound)
    }

    /// Starts connecting; a CONNECTED or CONNECT_FAILED event follows.
    pub fn connect_async(&self, uri: &str, timeout_ms: u32) -> Result<()> {
        let mut req = self.prepare(uri, timeout_ms, true)?;
        if !req.needs_dns() {
            if let Err(e) = self.rt.send(Cmd::Connect(self.st.clone(), req.into_start())) {
                lifecycle::revert_connect(&self.st);
                return Err(e);
            }
            return Ok(());
        }
        let st = self.st.clone();
        let rt = self.rt.clone();
        let spawned = std::thread::Builder::new().name("ctrlchan-dns".into()).spawn(move || {
            req.resolve();
            if rt.send(Cmd::Connect(st.clone(), req.into_start())).is_err() {
                lifecycle::force_closed(&st, Error::new(ResultCode::Io, "the runtime shut down while resolving"));
            }
        });
        if let Err(e) = spawned {
            lifecycle::revert_connect(&self.st);
            return Err(Error::new(ResultCode::Io, format!("cannot start the resolver thread: {e}")));
        }
        Ok(())
    }

    /// Sends with the websocket's message type.
    pub fn send(&self, data: &[u8]) -> Result<()> {
        let t = if self.kind() == WebSocketKind::Stream { MessageType::Binary } else { self.message_type() };
        self.send_message(t, data)
    }

    /// Queues one whole message, or fails without queuing any of it.
    pub fn send_message(&self, t: MessageType, data: &[u8]) -> Result<()> {
        if self.rt.is_shutting_down() {
            return Err(self.closed_by_shutdown());
        }
        if self.st.enqueue(t, data, crate::runtime::on_runtime_thread())?
            && self.rt.send(Cmd::Service(self.st.clone())).is_err()
        {
            // The runtime shut down in between: nothing stays queued, and later sends see CLOSED.
            return Err(self.closed_by_shutdown());
        }
        Ok(())
    }

    /// The runtime is shutting down: the websocket is closed for good (its queue is dropped).
    fn closed_by_shutdown(&self) -> Error {
        let e = Error::closed("the runtime is shutting down");
        lifecycle::force_closed(&self.st, e.clone());
        e
    }

    /// Starts the close handshake. `reason` must be at most 123 bytes of UTF-8.
    pub fn close(&self, code: u16, reason: &str) -> Result<()> {
        if !may_send_close_code(code) {
            return Err(Error::invalid_argument(format!(
                "close code {code} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)"
            )));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(Error::invalid_argument("close reason must be at most 123 bytes"));
        }
        lifecycle::begin_close(&self.st)?;
        self.rt.send(Cmd::Close(self.st.clone(), code, reason.to_string()))
    }

    /// Waits until everything queued so far reached the kernel.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        ensure_may_block("ctrlchan_channel_flush_transport")?;
        self.st.wait_flushed(timeout)
    }

    /// The handle goes away: the state is CLOSED at once, the handler is released, its events
    /// still in the runtime queue are dropped, and the runtime finishes a graceful close in the
    /// background (queued data, close frame 1001, the peer's close awaited up to the close
    /// timeout) without creating further events.
    pub fn release(&self) {
        let had_socket = lifecycle::mark_released(&self.st);
        // Events of this websocket still queued go too: after free, nothing more arrives for it.
        drop(self.rt.queue.remove_events_of(&self.st));
        if had_socket {
            let _ = self.rt.send(Cmd::Release(self.st.clone()));
        }
    }
}
