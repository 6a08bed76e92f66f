//! Where a connection's state changes: this file, and only this file.
//!
//! On the runtime thread a connection lives through one enum, [`Life`]:
//!
//! ```text
//! (Queued ─permit─▶) Connecting ──tcp up──▶ Handshaking ──101──▶ Open ──app close──▶ Closing ──peer close──┐
//!     │  └─(proxy)─▶ Tunneling ─┘  │            │  └──peer close / error / pong timeout─┤
//!     └──────── failure ─────┴─────┴────────────┴──────────── finish(End) ──────────────┴──▶ Lingering ─▶ Closed
//! ```
//!
//! At most `admission::MAX_HANDSHAKES` connects run at once per runtime; a connect beyond that
//! is `Queued` (no socket yet) until one ends, with its connect deadline already running.
//!
//! Through a proxy, TCP goes to the proxy and `Tunneling` runs its CONNECT / SOCKS5 handshake;
//! TLS and the upgrade then run inside the tunnel, with the server's name.
//!
//! With a reconnect policy on the channel, a retried loss does not end the websocket:
//! `finish` turns it into `Waiting` (state CONNECTING again, RECONNECTING event), the timer starts
//! a new `Connecting`, and success is `Open` again with a RESET event; giving up ends it with
//! TRANSPORT_DISCONNECTED.
//!
//! [`Reactor::finish`] is the one place a connection ends for the application: it sets the
//! shared state to CLOSED, wakes waiters, updates the counters, gives the channel slot back,
//! stops keep-alives and emits the single terminal event (CLOSED, TRANSPORT_DISCONNECTED or
//! CONNECT_FAILED) — exactly once, because afterwards the life is `Lingering` or `Closed`.
//! The shared [`WebSocketState`] the API reports is a projection written by the functions below
//! (the API's own transitions — New → Connecting, Open → Closing, freed — are here too).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;

use super::connect::ConnectRequest;
use super::io::Sock;
use super::reactor::Reactor;
use super::stream::Stream;
use crate::error::{Error, ResultCode};
use crate::protocol::handshake::Handshake;
use crate::protocol::proxy::ProxyHandshake;
use crate::protocol::reconnect::{connect_error_is_retried, loss_is_retried, stable_after, Backoff};
use crate::state::websocket::Options;
use crate::state::{ChannelShared, Event, WsShared};
use crate::types::{EventKind, ResetReason, WebSocketState};

/// How long we wait for the peer's close frame after sending ours.
pub(crate) const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long we wait for the server to close TCP after the close handshake.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// A connection's life on the runtime thread.
pub(crate) enum Life {
    /// Connecting, but no socket yet (just created).
    Starting,
    /// Reconnecting: the next attempt starts at `until`.
    Waiting { until: Instant },
    /// Waiting for a connect permit (see `admission`); no socket, no request yet (it is built
    /// from the template when the turn comes, so a queued connect holds no temporaries).
    Queued { deadline: Instant },
    /// Non-blocking TCP connect to `req.addrs[next_addr - 1]` in progress.
    Connecting { stream: Stream, req: Box<ConnectRequest>, next_addr: usize, deadline: Instant },
    /// TCP to the proxy is up; its handshake (HTTP CONNECT or SOCKS5) is in progress.
    Tunneling { stream: Stream, hs: Box<ProxyHandshake>, req: Box<ConnectRequest>, deadline: Instant },
    /// TCP (and TLS) established; the HTTP upgrade is in progress.
    Handshaking { stream: Stream, hs: Box<Handshake>, config: Box<WebSocketConfig>, deadline: Instant, timeout_ms: u32 },
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
            | Life::Tunneling { deadline, .. }
            | Life::Handshaking { deadline, .. }
            | Life::Queued { deadline, .. }
            | Life::Closing { deadline, .. }
            | Life::Lingering { deadline, .. } => Some(*deadline),
            Life::Waiting { until } => Some(*until),
            Life::Starting | Life::Open { .. } | Life::Closed => None,
        }
    }
    pub fn stream_mut(&mut self) -> Option<&mut Stream> {
        match self {
            Life::Connecting { stream, .. } | Life::Tunneling { stream, .. } | Life::Handshaking { stream, .. } => {
                Some(stream)
            }
            Life::Open { sock } | Life::Closing { sock, .. } | Life::Lingering { sock, .. } => Some(sock.get_mut()),
            Life::Starting | Life::Waiting { .. } | Life::Queued { .. } | Life::Closed => None,
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
    pub ws: Arc<WsShared>,
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
    /// What the first connect used, for reconnects (same URI, headers, TLS and limits).
    pub template: Option<super::connect::Template>,
    /// The reconnect policy's schedule for this websocket.
    pub backoff: Backoff,
    /// Some while reconnecting: the channel and the reason the coming RESET will give.
    pub retry: Option<Retry>,
    /// When the connection last became open.
    pub opened_at: Option<Instant>,
    /// A probe (network change or resume) is outstanding: the loss it finds is reported with
    /// this reason and reconnects at once.
    pub probe: Option<ResetReason>,
    /// Left unread because the runtime queue is full (resumed when it drains).
    pub paused: bool,
    /// A keep-alive frame went into the codec (it had frames buffered) and no flush completed
    /// since: the next keep-alive must not bypass the codec.
    pub ping_in_codec: bool,
    /// Held while a connect attempt runs (Connecting, Tunneling, Handshaking): see `admission`.
    pub permit: Option<super::admission::Permit>,
}

/// A reconnect in progress.
pub(crate) struct Retry {
    pub channel: Arc<ChannelShared>,
    pub reason: ResetReason,
}

/// "host:port" of a connection, for log lines.
fn peer(c: &Conn) -> String {
    c.template.as_ref().map(|t| t.peer()).unwrap_or_default()
}

impl Reactor {
    /// The handshake completed: Connecting → Open for the application.
    pub(crate) fn opened(&mut self, c: &mut Conn, sock: Box<Sock>, protocol: &str) {
        c.permit = None; // the next queued connect may start
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
        let now = Instant::now();
        c.ka.last_outbound = now;
        c.ka.last_inbound = now;
        c.opened_at = Some(now);
        if let Some(retry) = c.retry.take() {
            log::info!(target: "ctrlchan", "reconnected to {} ({:?})", peer(c), retry.reason);
            // Reconnected: keep-alives resume on their own, RESET is delivered, and only then
            // (after its callback returned) does the backlog go out, so what the app sends from
            // the callback (re-authenticate, re-subscribe) goes first.
            retry.channel.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            if retry.channel.slot_status().is_some() && !retry.channel.is_closed() {
                c.ka.enable(retry.channel.clone());
            }
            // What the RESET callback sends goes ahead of the backlog; other threads' sends keep
            // their order behind it.
            c.ws.inner.lock().reset_front = Some(VecDeque::new());
            self.rt.emit(&c.ws, EventKind::Reset, |ev| {
                ev.reset_reason = retry.reason;
                ev.set_reason(match retry.reason {
                    ResetReason::NetworkChanged => "reconnected after a network change",
                    ResetReason::LowPowerExit => "reconnected after resume from suspend",
                    _ => "reconnected after the transport was lost",
                });
            });
            {
                let mut g = c.ws.inner.lock();
                if let Some(front) = g.reset_front.take() {
                    for m in front.into_iter().rev() {
                        g.outbound.push_front(m);
                    }
                }
            }
            self.service(c);
            return;
        }
        log::info!(target: "ctrlchan", "connected to {}", peer(c));
        if c.notify {
            c.notify = false;
            self.rt.emit(&c.ws, EventKind::Connected, |_| {});
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
        // The attempt is over (it ends, or a reconnect waits): the next queued connect may start.
        c.permit = None;
        let ended_before = matches!(c.life, Life::Lingering { .. } | Life::Closed);
        let end = if ended_before { Some(end) } else { self.reconnect_or_end(c, end) };
        let Some(end) = end else { return };
        if !ended_before {
            // Logged before the state changes, so a waiter woken below sees the line already out.
            match &end {
                End::Event(ev) => log::log!(
                    target: "ctrlchan",
                    if ev.kind == EventKind::Closed { log::Level::Info } else { log::Level::Warn },
                    "{} {}: {:?} code {} ({}): {}",
                    peer(c),
                    if ev.kind == EventKind::Closed { "closed" } else { "lost" },
                    ev.kind,
                    ev.close_code,
                    ev.result.name(),
                    ev.reason()
                ),
                End::ConnectFailed(e) => {
                    log::warn!(target: "ctrlchan", "connect to {} failed: {}: {}", peer(c), e.code.name(), e.message)
                }
                End::Silent(_) => log::debug!(target: "ctrlchan", "{} closed by the application", peer(c)),
            }
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
                End::Event(ev) => {
                    if c.ws.wants(ev.kind) {
                        self.rt.deliver(ev);
                    }
                }
                End::ConnectFailed(err) if c.notify => self.rt.emit(&c.ws, EventKind::ConnectFailed, |ev| {
                    ev.set_reason(&format!("{}: {}", err.code.name(), err.message));
                    ev.result = err.code;
                }),
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

    /// The reconnect decision for a connection that is about to end. `None`: it goes on
    /// (reconnecting); `Some(end)`: it ends with `end` (possibly the policy's final event).
    fn reconnect_or_end(&mut self, c: &mut Conn, end: End) -> Option<End> {
        let reconnecting = c.retry.is_some();
        // A loss of an open connection, or a failed attempt while reconnecting; never a close by
        // the application (Closing), a free or a shutdown (Silent).
        let (cause, retried) = match (&end, &c.life) {
            (End::Event(ev), Life::Open { .. }) => {
                let close = (ev.kind == EventKind::Closed).then_some(ev.close_code);
                ((ev.result, ev.reason().to_string()), loss_is_retried(ev.result, close))
            }
            (End::ConnectFailed(e), _) if reconnecting => ((e.code, e.message.clone()), connect_error_is_retried(e)),
            (End::Event(ev), _) if reconnecting => ((ev.result, ev.reason().to_string()), false),
            _ => return Some(end),
        };
        let cause = if cause.0 == ResultCode::Ok { (ResultCode::Closed, cause.1) } else { cause };
        let channel = c.ws.channel().filter(|ch| !ch.is_closed());
        let policy = channel.as_ref().and_then(|ch| ch.reconnect_policy());
        let (Some(channel), Some(policy), true) = (channel, policy, c.template.is_some()) else {
            return Some(end); // no policy: ends as always
        };
        let attempts_so_far = c.backoff.attempt;
        let next = if retried {
            // Only the loss of a connection that stayed open long enough starts the schedule
            // over; a failed attempt never does (`opened_at` is still the old connection's).
            let stable = c.opened_at.is_some_and(|t| t.elapsed() >= stable_after(&policy));
            if stable && matches!(c.life, Life::Open { .. }) {
                c.backoff.reset();
            }
            c.backoff.next(&policy, &mut self.jitter, c.probe.is_some())
        } else {
            None
        };
        let Some((attempt, delay_ms)) = next else {
            if !reconnecting && !retried {
                return Some(end); // not a retried cause: the loss is reported as it is
            }
            // The policy gives up: one final TRANSPORT_DISCONNECTED with the last cause.
            let unsent = c.ws.inner.lock().outbound.len();
            channel.stats.unsent_dropped.fetch_add(unsent as u64, Ordering::Relaxed);
            c.retry = None;
            let why = if retried {
                format!("reconnect gave up after {attempts_so_far} attempts")
            } else {
                "reconnect stopped (not retried)".to_string()
            };
            let mut ev = Event::new(EventKind::TransportDisconnected, Some(c.ws.clone()), Some(channel)).with_reason(
                &format!("{why}: {}: {}; {unsent} queued messages were never sent", cause.0.name(), cause.1),
            );
            ev.result = cause.0;
            return Some(End::Event(ev));
        };
        // Reconnect: CONNECTING again, socket gone, slot (push enabled) kept, backlog kept.
        let was_open = c.life.was_open();
        if was_open {
            self.rt.counters.connections_open.fetch_sub(1, Ordering::Relaxed);
        }
        {
            let mut g = c.ws.inner.lock();
            g.state = WebSocketState::Connecting;
            g.pending_bytes = g.outbound.iter().map(|(_, b)| b.len()).sum();
            g.service_scheduled = false;
            g.fd = -1;
        }
        c.ws.cond.notify_all();
        c.unflushed = 0;
        c.ka.disable();
        self.sync_window(c);
        self.close_socket(c);
        let reason = c.probe.take().unwrap_or(ResetReason::Reconnected);
        c.retry = Some(Retry { channel, reason });
        c.life = Life::Waiting { until: Instant::now() + Duration::from_millis(delay_ms as u64) };
        log::info!(
            target: "ctrlchan",
            "{}: {}: {}; reconnect attempt {attempt} in {delay_ms} ms",
            peer(c),
            cause.0.name(),
            cause.1
        );
        self.rt.emit(&c.ws, EventKind::Reconnecting, |ev| {
            ev.attempt = attempt;
            ev.delay_ms = delay_ms;
            ev.result = cause.0;
            ev.set_reason(&cause.1);
        });
        None
    }

    /// The backoff of a reconnecting websocket expired: the next attempt starts.
    pub(crate) fn start_attempt(&mut self, c: &mut Conn, idx: usize) {
        let Some(template) = c.template.as_ref() else {
            return self.finish(c, End::Silent(Error::closed("nothing to reconnect to")), None);
        };
        let deadline = Instant::now() + Duration::from_millis(template.timeout_ms as u64);
        self.begin_attempt(c, idx, deadline);
    }

    /// A network change or resume: probe this connection at once (or, while it waits to
    /// reconnect, try now).
    pub(crate) fn probe(&mut self, c: &mut Conn, reason: ResetReason) {
        match &mut c.life {
            Life::Open { .. } => {
                let Some(ch) = c.ws.channel() else { return };
                let to = ch.keepalive_task().pong_timeout_ms().min(5_000);
                c.probe = Some(reason);
                self.send_keepalive(c, crate::types::KeepAliveMode::Ping, to);
            }
            Life::Waiting { until } => {
                *until = Instant::now();
                if let Some(r) = c.retry.as_mut() {
                    r.reason = reason;
                }
            }
            _ => {}
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
            Life::Starting
            | Life::Waiting { .. }
            | Life::Queued { .. }
            | Life::Connecting { .. }
            | Life::Tunneling { .. }
            | Life::Handshaking { .. } => {
                self.finish(c, End::Silent(Error::closed("the websocket was freed while connecting")), None)
            }
        }
    }

    /// Closes the socket: deregistered, fd cleared (under the lock, before the close), slot freed.
    pub(crate) fn drop_socket(&mut self, c: &mut Conn) {
        c.ws.inner.lock().slot = None;
        self.close_socket(c);
    }

    /// Closes the socket but keeps the reactor slot (a reconnect follows).
    fn close_socket(&mut self, c: &mut Conn) {
        let mut life = std::mem::replace(&mut c.life, Life::Closed);
        c.ws.inner.lock().fd = -1;
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
        // Reconnecting: the close stops it.
        WebSocketState::Connecting if g.opened => {
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
    ws.released.store(true, std::sync::atomic::Ordering::Release);
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
