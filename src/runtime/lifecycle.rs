//! Where a connection's state changes: this file, and only this file.
//!
//! On the runtime thread a connection lives through one enum, [`Life`]:
//!
//! ```text
//! Connecting ──tcp up──▶ Handshaking ──101──▶ Open ──app close──▶ Closing ──peer close──┐
//!     │                      │                 │  └──peer close / error / pong timeout─┤
//!     └──────── failure ─────┴─────────────────┴──────────── finish(End) ──────────────┴──▶ Lingering ─▶ Closed
//! ```
//!
//! [`Reactor::finish`] is the one place a connection ends for the application: it sets the
//! shared state to CLOSED, wakes waiters, updates the counters, gives the channel slot back,
//! stops keep-alives and emits the single terminal event (CLOSED, TRANSPORT_DISCONNECTED or
//! CONNECT_FAILED) — exactly once, because afterwards the life is `Lingering` or `Closed`.
//! The shared [`WebSocketState`] the API reports is a projection written by the functions below
//! (the API's own transitions — New → Connecting, Open → Closing, freed — are here too).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;

use super::connect::ConnectRequest;
use super::io::Sock;
use super::reactor::Reactor;
use super::stream::Stream;
use crate::error::{Error, ResultCode};
use crate::protocol::handshake::Handshake;
use crate::state::websocket::Options;
use crate::state::{Event, WsShared};
use crate::types::{EventKind, WebSocketState};

/// How long we wait for the peer's close frame after sending ours.
pub(crate) const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long we wait for the server to close TCP after the close handshake.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// A connection's life on the runtime thread.
pub(crate) enum Life {
    /// Connecting, but no socket yet (just created, or between two attempts).
    Starting,
    /// Non-blocking TCP connect to `req.addrs[next_addr - 1]` in progress.
    Connecting { stream: Stream, req: Box<ConnectRequest>, next_addr: usize, deadline: Instant },
    /// TCP (and TLS) established; the HTTP upgrade is in progress.
    Handshaking { stream: Stream, hs: Box<Handshake>, config: WebSocketConfig, deadline: Instant, timeout_ms: u32 },
    /// The websocket is open.
    Open { sock: Box<Sock> },
    /// The application closed; our close frame is out, the peer's is awaited until `deadline`.
    Closing { sock: Box<Sock>, deadline: Instant },
    /// The application has seen the end (or freed the handle); the socket finishes the close
    /// handshake / waits for the FIN until `deadline`, then goes. No more events.
    Lingering { sock: Box<Sock>, deadline: Instant },
    /// No socket; the reactor frees the slot.
    Closed,
}

impl Life {
    pub fn is_closed(&self) -> bool {
        matches!(self, Life::Closed)
    }
    /// Open or closing: the websocket counts as connected.
    pub fn was_open(&self) -> bool {
        matches!(self, Life::Open { .. } | Life::Closing { .. })
    }
    /// The deadline of the current phase, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Life::Connecting { deadline, .. }
            | Life::Handshaking { deadline, .. }
            | Life::Closing { deadline, .. }
            | Life::Lingering { deadline, .. } => Some(*deadline),
            Life::Starting | Life::Open { .. } | Life::Closed => None,
        }
    }
    pub fn stream_mut(&mut self) -> Option<&mut Stream> {
        match self {
            Life::Connecting { stream, .. } | Life::Handshaking { stream, .. } => Some(stream),
            Life::Open { sock } | Life::Closing { sock, .. } | Life::Lingering { sock, .. } => Some(sock.get_mut()),
            Life::Starting | Life::Closed => None,
        }
    }
    /// The websocket while it can still exchange frames.
    pub fn sock_mut(&mut self) -> Option<&mut Sock> {
        match self {
            Life::Open { sock } | Life::Closing { sock, .. } | Life::Lingering { sock, .. } => Some(sock),
            _ => None,
        }
    }
}

/// How a connection ends for the application.
pub(crate) enum End {
    /// The connect (TCP, TLS or upgrade) failed: the error for `connect()`, and a CONNECT_FAILED
    /// event for `connect_async()`.
    ConnectFailed(Error),
    /// An open connection ended with this terminal event (CLOSED or TRANSPORT_DISCONNECTED).
    Event(Event),
    /// No event: the handle was freed or the runtime shuts down. `Error` is what a blocked
    /// `connect()` returns.
    Silent(Error),
}

/// A connection of the reactor: the websocket it serves and its life.
pub(crate) struct Conn {
    pub ws: std::sync::Arc<WsShared>,
    pub serial: u64,
    pub life: Life,
    /// connect_async: CONNECTED / CONNECT_FAILED are events.
    pub notify: bool,
    pub ka: super::schedule::KeepAliveBook,
    /// Bytes written into the codec since the last completed flush.
    pub unflushed: usize,
    /// Bytes of automatic replies (pongs) queued since the last completed flush (part of `unflushed`).
    pub auto_reply: usize,
    /// The timer entry currently armed for this connection.
    pub scheduled: Option<Instant>,
    /// This connection's coalescing window while keep-alives run.
    pub window_ms: Option<u64>,
    /// The next deadline moved later (a pong arrived): push a fresh timer entry.
    pub rearm: bool,
}

impl Reactor {
    /// The handshake completed: Connecting → Open for the application.
    pub(crate) fn opened(&mut self, c: &mut Conn, sock: Box<Sock>, protocol: &str) {
        c.ws.set_protocol(protocol);
        {
            let mut g = c.ws.inner.lock();
            if g.state != WebSocketState::Connecting {
                // Freed while the handshake finished: close quietly.
                drop(g);
                c.life = Life::Open { sock };
                self.release(c);
                return;
            }
            g.state = WebSocketState::Open;
            g.opened = true;
            // Counted before any waiter can observe the open state.
            self.rt.counters.connections_open.fetch_add(1, Ordering::Relaxed);
        }
        c.ws.cond.notify_all();
        c.life = Life::Open { sock };
        c.ka.last_outbound = Instant::now();
        c.ka.last_inbound = c.ka.last_outbound;
        if c.notify {
            self.rt.deliver(Event::new(EventKind::Connected, Some(c.ws.clone()), c.ws.channel()));
        }
    }

    /// Open → Closing: our close frame is queued (the API already reported CLOSING).
    pub(crate) fn closing(&mut self, c: &mut Conn) {
        if let Life::Open { sock } = std::mem::replace(&mut c.life, Life::Closed) {
            c.life = Life::Closing { sock, deadline: Instant::now() + CLOSE_HANDSHAKE_TIMEOUT };
        }
        c.ka.disable();
        self.sync_window(c);
    }

    /// Ends the connection for the application, once (see the module doc). `linger`: keep the
    /// socket until then to finish the close handshake quietly.
    pub(crate) fn finish(&mut self, c: &mut Conn, end: End, linger: Option<Duration>) {
        let ended_before = matches!(c.life, Life::Lingering { .. } | Life::Closed);
        if !ended_before {
            let was_open = c.life.was_open();
            {
                let mut g = c.ws.inner.lock();
                g.state = WebSocketState::Closed;
                g.outbound.clear();
                g.pending_bytes = 0;
                g.service_scheduled = false;
                if !was_open && g.connect_error.is_none() {
                    g.connect_error = Some(match &end {
                        End::ConnectFailed(e) | End::Silent(e) => e.clone(),
                        End::Event(_) => Error::closed("the websocket was closed"),
                    });
                }
            }
            c.ws.cond.notify_all();
            if was_open {
                self.rt.counters.connections_open.fetch_sub(1, Ordering::Relaxed);
            }
            if let Some(ch) = c.ws.channel() {
                ch.release_slot();
            }
            c.ka.disable();
            self.sync_window(c);
            match end {
                End::Event(ev) => self.rt.deliver(ev),
                End::ConnectFailed(err) if c.notify => {
                    let mut ev = Event::new(EventKind::ConnectFailed, Some(c.ws.clone()), c.ws.channel())
                        .with_reason(&format!("{}: {}", err.code.name(), err.message));
                    ev.result = err.code;
                    self.rt.deliver(ev);
                }
                End::ConnectFailed(_) | End::Silent(_) => {}
            }
        }
        let life = std::mem::replace(&mut c.life, Life::Closed);
        match (life, linger) {
            (Life::Open { sock } | Life::Closing { sock, .. }, Some(d)) => {
                c.life = Life::Lingering { sock, deadline: Instant::now() + d };
            }
            (Life::Lingering { sock, deadline }, Some(_)) => c.life = Life::Lingering { sock, deadline },
            (life, _) => {
                c.life = life;
                self.drop_socket(c);
            }
        }
    }

    /// The handle was freed: finish a graceful close in the background, without events.
    pub(crate) fn release(&mut self, c: &mut Conn) {
        let freed = || End::Silent(Error::closed("the websocket was freed"));
        match c.life {
            Life::Open { .. } => {
                // Queued data goes out before the close frame.
                self.service(c);
                if let Life::Open { sock } = &mut c.life {
                    super::io::best_effort_close(sock, CloseCode::Away, "closed by the application");
                    self.finish(c, freed(), Some(CLOSE_HANDSHAKE_TIMEOUT));
                }
            }
            Life::Closing { .. } => self.finish(c, freed(), Some(CLOSE_HANDSHAKE_TIMEOUT)),
            Life::Lingering { .. } | Life::Closed => {}
            Life::Starting | Life::Connecting { .. } | Life::Handshaking { .. } => {
                self.finish(c, End::Silent(Error::closed("the websocket was freed while connecting")), None)
            }
        }
    }

    /// Closes the socket: deregistered, fd cleared (under the lock, before the close), slot freed.
    pub(crate) fn drop_socket(&mut self, c: &mut Conn) {
        let mut life = std::mem::replace(&mut c.life, Life::Closed);
        {
            let mut g = c.ws.inner.lock();
            g.fd = -1;
            g.slot = None;
        }
        if let Some(s) = life.stream_mut() {
            let _ = self.poll.registry().deregister(s.tcp_mut());
        }
        drop(life);
    }

    /// Runtime shutdown: every connection goes, with a 1001 close frame if open, and no events.
    pub(crate) fn shut_down(&mut self, c: &mut Conn) {
        if let Life::Open { sock } = &mut c.life {
            super::io::best_effort_close(sock, CloseCode::Away, "runtime shutting down");
        } else if let Some(sock) = c.life.sock_mut() {
            let _ = sock.flush();
        }
        self.finish(c, End::Silent(Error::invalid_state("the runtime shut down")), None);
    }
}

// --- transitions requested by the API (any thread) -----------------------------------------

/// New → Connecting; returns the options to connect with.
pub(crate) fn begin_connect(ws: &WsShared) -> Result<Options, Error> {
    let mut g = ws.inner.lock();
    if g.state != WebSocketState::New {
        return Err(Error::invalid_state(match g.state {
            WebSocketState::Connecting => "a connect is already in progress",
            _ => "a websocket connects once; create a new one to reconnect",
        }));
    }
    g.state = WebSocketState::Connecting;
    g.connect_error = None;
    Ok(g.opts.clone())
}

/// Connecting → New: the connect could not even be started.
pub(crate) fn revert_connect(ws: &WsShared) {
    let mut g = ws.inner.lock();
    if g.state == WebSocketState::Connecting {
        g.state = WebSocketState::New;
    }
}

/// Open → Closing (the close frame is sent by the runtime).
pub(crate) fn begin_close(ws: &WsShared) -> Result<(), Error> {
    let mut g = ws.inner.lock();
    match g.state {
        WebSocketState::Open => {
            g.state = WebSocketState::Closing;
            Ok(())
        }
        WebSocketState::Closing | WebSocketState::Closed => {
            Err(Error::closed("the websocket is already closing or closed"))
        }
        _ => Err(Error::invalid_state("the websocket is not connected")),
    }
}

/// The handle is being freed: CLOSED for every waiter now. True if the runtime has (or is about
/// to have) a socket for it.
pub(crate) fn mark_released(ws: &WsShared) -> bool {
    let had_socket = {
        let mut g = ws.inner.lock();
        let s = g.slot.is_some() || g.state == WebSocketState::Connecting;
        if g.state == WebSocketState::Connecting {
            g.connect_error = Some(Error::closed("the websocket was freed while connecting"));
        }
        g.state = WebSocketState::Closed;
        s
    };
    ws.cond.notify_all();
    ws.replace_handler(None);
    had_socket
}

/// CLOSED without the runtime (it is gone or never got the connect).
pub(crate) fn force_closed(ws: &WsShared, why: Error) {
    let mut g = ws.inner.lock();
    if g.state == WebSocketState::Connecting {
        g.connect_error = Some(why);
    }
    g.state = WebSocketState::Closed;
    g.pending_bytes = 0;
    g.outbound.clear();
    drop(g);
    ws.cond.notify_all();
}

/// Waits for the outcome of a connect (blocking `connect()`), until `bound`.
pub(crate) fn wait_connected(ws: &WsShared, bound: Instant) -> Result<(), Error> {
    let mut g = ws.inner.lock();
    while g.state == WebSocketState::Connecting {
        if ws.cond.wait_until(&mut g, bound).timed_out() {
            break;
        }
    }
    match g.state {
        WebSocketState::Open | WebSocketState::Closing => Ok(()),
        // Opened, then already closed or lost: connect succeeded; the events tell the rest.
        WebSocketState::Closed if g.opened => Ok(()),
        WebSocketState::Connecting => Err(Error::new(ResultCode::Timeout, "connect did not complete")),
        _ => Err(g.connect_error.clone().unwrap_or_else(|| Error::new(ResultCode::ConnectFailed, "connection failed"))),
    }
}
