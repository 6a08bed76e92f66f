//! The reactor: one thread, one epoll (mio), one timer heap, every socket of the runtime.
//!
//! Each connection is a small state machine: TCP connect -> (TLS +) WebSocket handshake -> open
//! -> closing -> gone. Other threads never touch sockets; they queue `Cmd`s and wake us.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Interest, Poll, Token};
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tungstenite::Message;

use super::timers::{coalescing_window, keepalive_due, poll_timeout, timer_at, Timers, GUARD};
use super::{Cmd, RtShared};
use crate::channel::Channel;
use crate::error::{Error, ResultCode};
use crate::event::Event;
use crate::types::{EventKind, KeepAliveMode, MessageType, WebSocketState};
use crate::websocket::stream::{is_tls_failure, Stream, TlsStream};
use crate::websocket::{ConnectRequest, WebSocket};

pub(crate) const WAKER: Token = Token(usize::MAX);

/// Messages read from one connection per turn before others get a chance.
const READ_BUDGET: usize = 256;
/// Outstanding keep-alive pings remembered per connection.
const MAX_OUTSTANDING: usize = 16;
/// How long we wait for the peer's close frame after sending ours.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long we wait for the server to close TCP after the close handshake.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

enum Phase {
    Tcp(Stream),
    Handshake(Box<Handshake>),
    Open(Box<tungstenite::WebSocket<Stream>>),
    Dead,
}

/// The client side of the HTTP upgrade, done here (not by tungstenite's handshake machine) so
/// that the websocket starts with exactly the small read buffer we configure.
struct Handshake {
    stream: Stream,
    request: Vec<u8>,
    written: usize,
    key: String,
    response: Vec<u8>,
    offered: Vec<String>,
}

/// Largest HTTP response head accepted during the upgrade.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

struct Conn {
    ws: Arc<WebSocket>,
    serial: u64,
    phase: Phase,
    req: Option<Box<ConnectRequest>>,
    addr_idx: usize,
    notify_events: bool,
    connect_deadline: Option<Instant>,
    /// (deadline, report TRANSPORT_DISCONNECTED when it expires)
    close_deadline: Option<(Instant, bool)>,
    pong_deadline: Option<Instant>,
    ka_channel: Option<Arc<Channel>>,
    outstanding: VecDeque<(u64, Instant, u32)>,
    last_outbound: Instant,
    unflushed: usize,
    scheduled: Option<Instant>,
    /// This connection's coalescing window while keep-alives are scheduled (see `ka_windows`).
    ka_window_ms: Option<u64>,
    /// The next deadline moved later (a pong arrived): push a fresh timer entry.
    rearm: bool,
    terminal_sent: bool,
    was_open: bool,
    closing: bool,
}

enum Flow {
    Keep,
    Drop,
}

struct Reactor {
    rt: Arc<RtShared>,
    poll: Poll,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    serial: u64,
    timers: Timers,
    again: Vec<usize>,
    shutdown: bool,
    /// Multiset of the coalescing windows in use. A wake-up sweeps timers up to the smallest one,
    /// so it never pops (and re-pushes) entries that cannot be sent early yet.
    ka_windows: BTreeMap<u64, usize>,
}

pub(crate) fn run(rt: Arc<RtShared>, poll: Poll) {
    let mut r = Reactor {
        rt,
        poll,
        conns: Vec::new(),
        free: Vec::new(),
        serial: 0,
        timers: Timers::new(),
        again: Vec::new(),
        shutdown: false,
        ka_windows: BTreeMap::new(),
    };
    let mut events = Events::with_capacity(1024);
    loop {
        r.prune_stale_timers();
        let timeout =
            if r.again.is_empty() { poll_timeout(r.timers.next(), Instant::now()) } else { Some(Duration::ZERO) };
        if let Err(e) = r.poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                // Should not happen; avoid a hot loop if it does.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        r.rt.counters.wakeups.fetch_add(1, Ordering::Relaxed);
        for ev in events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            let closed = ev.is_read_closed() || ev.is_error();
            let readable = ev.is_readable() || closed;
            let writable = ev.is_writable() || ev.is_error();
            r.ready(ev.token().0, readable, writable, closed);
        }
        r.commands();
        if !r.again.is_empty() {
            let again = std::mem::take(&mut r.again);
            for idx in again {
                r.ready(idx, true, false, false);
            }
        }
        r.fire_timers();
        if r.shutdown {
            r.close_all();
            // No callback can run any more: close the queue (waking blocked next_event callers)
            // and release every handler now, even when the runtime was freed from a callback.
            r.rt.release_all();
            break;
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Reactor {
    // ---------------------------------------------------------------- slots

    fn alloc(&mut self) -> usize {
        if let Some(i) = self.free.pop() {
            i
        } else {
            self.conns.push(None);
            self.conns.len() - 1
        }
    }

    fn find(&self, ws: &Arc<WebSocket>) -> Option<usize> {
        let (idx, serial) = ws.inner.lock().slot?;
        match self.conns.get(idx) {
            Some(Some(c)) if c.serial == serial && Arc::ptr_eq(&c.ws, ws) => Some(idx),
            _ => None,
        }
    }

    /// Runs `f` on the connection taken out of its slot; puts it back unless it was dropped.
    fn with_conn(&mut self, idx: usize, f: impl FnOnce(&mut Self, &mut Conn, usize) -> Flow) {
        let Some(Some(mut c)) = self.conns.get_mut(idx).map(|s| s.take()) else { return };
        match f(self, &mut c, idx) {
            Flow::Keep => {
                self.arm(&mut c, idx);
                self.conns[idx] = Some(c);
            }
            Flow::Drop => {
                self.free.push(idx);
            }
        }
    }

    // ---------------------------------------------------------------- timers

    fn next_timer(&self, c: &Conn) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(c.connect_deadline);
        consider(c.close_deadline.map(|(t, _)| t));
        consider(c.pong_deadline);
        if let (Some(ch), Phase::Open(_), false) = (&c.ka_channel, &c.phase, c.closing) {
            consider(Some(timer_at(c.last_outbound + ch.effective_interval())));
        }
        next
    }

    fn global_window(&self) -> Duration {
        Duration::from_millis(self.rt.coalescing_ms.load(Ordering::Relaxed) as u64)
    }

    /// Keeps `ka_windows` in step with the connection's keep-alive state.
    fn sync_window(&mut self, c: &mut Conn) {
        let w = match (&c.ka_channel, &c.phase, c.closing) {
            (Some(ch), Phase::Open(_), false) => {
                Some(coalescing_window(self.global_window(), ch.effective_interval()).as_millis() as u64)
            }
            _ => None,
        };
        if c.ka_window_ms == w {
            return;
        }
        if let Some(old) = c.ka_window_ms.take() {
            if let Some(n) = self.ka_windows.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.ka_windows.remove(&old);
                }
            }
        }
        if let Some(new) = w {
            *self.ka_windows.entry(new).or_insert(0) += 1;
        }
        c.ka_window_ms = w;
    }

    fn arm(&mut self, c: &mut Conn, idx: usize) {
        self.sync_window(c);
        let rearm = std::mem::take(&mut c.rearm);
        if let Some(n) = self.next_timer(c) {
            if rearm || c.scheduled.is_none_or(|s| n < s) {
                self.timers.push(n, idx, c.serial);
                c.scheduled = Some(n);
            }
        }
    }

    /// Drops heap-top entries that no longer match their connection, so that they cause no
    /// wake-up. Bounded by the number of stale entries.
    fn prune_stale_timers(&mut self) {
        while let Some((t, idx, serial)) = self.timers.peek() {
            let live = matches!(self.conns.get(idx), Some(Some(c)) if c.serial == serial && c.scheduled == Some(t));
            if live {
                break;
            }
            self.timers.pop_until(t);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let global = self.global_window();
        let sweep = self.ka_windows.keys().next().map_or(Duration::ZERO, |ms| Duration::from_millis(*ms));
        let horizon = now + sweep.max(GUARD);
        let mut repush = Vec::new();
        while let Some((t, idx, serial)) = self.timers.pop_until(horizon) {
            let Some(Some(mut c)) = self.conns.get_mut(idx).map(|s| s.take()) else { continue };
            if c.serial != serial || c.scheduled != Some(t) {
                self.conns[idx] = Some(c);
                continue;
            }
            c.scheduled = None;
            match self.on_timer(&mut c, idx, now, global) {
                Flow::Keep => {
                    self.sync_window(&mut c);
                    if let Some(n) = self.next_timer(&c) {
                        c.scheduled = Some(n);
                        repush.push((n, idx, c.serial));
                    }
                    self.conns[idx] = Some(c);
                }
                Flow::Drop => self.free.push(idx),
            }
        }
        for (n, idx, serial) in repush {
            self.timers.push(n, idx, serial);
        }
    }

    fn on_timer(&mut self, c: &mut Conn, idx: usize, now: Instant, global: Duration) -> Flow {
        if c.connect_deadline.is_some_and(|d| d <= now) {
            let to = c.req.as_ref().map(|r| r.timeout_ms).unwrap_or(0);
            return self.fail_connect(c, Error::new(ResultCode::Timeout, format!("connect timed out after {to} ms")));
        }
        if let Some((d, report)) = c.close_deadline {
            if d <= now {
                let ev = report.then(|| {
                    self.disconnect_event(
                        c,
                        ResultCode::Timeout,
                        "close handshake timed out: the peer did not answer the close frame",
                    )
                });
                return self.terminate(c, ev);
            }
        }
        if c.pong_deadline.is_some_and(|d| d <= now) {
            let to = c.outstanding.front().map(|o| o.2).unwrap_or(0);
            let ev = self.disconnect_event(
                c,
                ResultCode::Timeout,
                &format!("pong timeout: no pong within {to} ms of a keep-alive ping"),
            );
            return self.terminate(c, Some(ev));
        }
        if let (Some(ch), Phase::Open(_), false) = (&c.ka_channel, &c.phase, c.closing) {
            let interval = ch.effective_interval();
            let deadline = c.last_outbound + interval;
            if keepalive_due(deadline, now, coalescing_window(global, interval)) {
                let task = ch.keepalive_task();
                return self.send_keepalive(c, idx, task.mode(), task.pong_timeout_ms());
            }
        }
        Flow::Keep
    }

    // ---------------------------------------------------------------- commands

    fn commands(&mut self) {
        for cmd in self.rt.take_cmds() {
            match cmd {
                Cmd::Connect(ws, req) => self.start_connect(ws, req),
                Cmd::Service(ws) => {
                    if let Some(idx) = self.find(&ws) {
                        self.with_conn(idx, |r, c, idx| r.service(c, idx));
                    } else {
                        let mut g = ws.inner.lock();
                        g.service_scheduled = false;
                        g.outbound.clear();
                    }
                }
                Cmd::Close(ws, code, reason) => {
                    if let Some(idx) = self.find(&ws) {
                        self.with_conn(idx, |r, c, idx| r.start_close(c, idx, code, &reason));
                    }
                }
                Cmd::Abort(ws) => {
                    if let Some(idx) = self.find(&ws) {
                        self.with_conn(idx, |r, c, _| {
                            if let Phase::Open(sock) = &mut c.phase {
                                let _ = sock.close(Some(CloseFrame {
                                    code: CloseCode::Away,
                                    reason: Utf8Bytes::from_static("closed by the application"),
                                }));
                                let _ = sock.flush();
                            }
                            c.terminal_sent = true;
                            r.terminate(c, None)
                        });
                    }
                }
                Cmd::EnableKeepalive(ws, ch) => {
                    let bound = ws.channel().is_some_and(|b| Arc::ptr_eq(&b, &ch));
                    if ch.is_closed() || !bound {
                        continue;
                    }
                    if let Some(idx) = self.find(&ws) {
                        self.with_conn(idx, |_, c, _| {
                            c.ka_channel = Some(ch);
                            Flow::Keep
                        });
                    }
                }
                Cmd::DisableKeepalive(ws) => {
                    if let Some(idx) = self.find(&ws) {
                        self.with_conn(idx, |_, c, _| {
                            c.ka_channel = None;
                            c.outstanding.clear();
                            c.pong_deadline = None;
                            Flow::Keep
                        });
                    }
                }
                Cmd::RunKeepalive(ws, mode, to) => {
                    if let Some(idx) = self.find(&ws) {
                        self.with_conn(idx, |r, c, idx| r.send_keepalive(c, idx, mode, to));
                    }
                }
                Cmd::Reschedule(ws) => {
                    if let Some(idx) = self.find(&ws) {
                        self.with_conn(idx, |_, _, _| Flow::Keep);
                    }
                }
                Cmd::Deliver(ev) => self.rt.deliver(*ev),
                Cmd::Shutdown => self.shutdown = true,
            }
        }
    }

    // ---------------------------------------------------------------- connect

    fn start_connect(&mut self, ws: Arc<WebSocket>, req: Box<ConnectRequest>) {
        if ws.state() != WebSocketState::Connecting {
            return; // aborted before we got here
        }
        let idx = self.alloc();
        self.serial += 1;
        let mut c = Conn {
            ws,
            serial: self.serial,
            phase: Phase::Dead,
            connect_deadline: Some(req.deadline),
            notify_events: req.notify_events,
            req: Some(req),
            addr_idx: 0,
            close_deadline: None,
            pong_deadline: None,
            ka_channel: None,
            outstanding: VecDeque::new(),
            last_outbound: Instant::now(),
            unflushed: 0,
            scheduled: None,
            ka_window_ms: None,
            rearm: false,
            terminal_sent: false,
            was_open: false,
            closing: false,
        };
        if self.shutdown {
            let _ = self.fail_connect(&mut c, Error::invalid_state("the runtime is shutting down"));
            self.free.push(idx);
            return;
        }
        c.ws.inner.lock().slot = Some((idx, c.serial));
        if let Some(e) = c.req.as_mut().and_then(|r| r.resolve_error.take()) {
            let _ = self.fail_connect(&mut c, e);
            self.free.push(idx);
            return;
        }
        match self.open_tcp(&mut c, idx) {
            Ok(()) => {
                self.arm(&mut c, idx);
                self.conns[idx] = Some(c);
            }
            Err(e) => {
                let _ = self.fail_connect(&mut c, e);
                self.free.push(idx);
            }
        }
    }

    /// Starts a non-blocking TCP connect to the next address.
    fn open_tcp(&mut self, c: &mut Conn, idx: usize) -> Result<(), Error> {
        let Some(req) = c.req.as_ref() else { return Err(Error::invalid_state("no connect request")) };
        let mut last = String::from("no address to connect to");
        while c.addr_idx < req.addrs.len() {
            let addr = req.addrs[c.addr_idx];
            c.addr_idx += 1;
            match mio::net::TcpStream::connect(addr) {
                Ok(mut s) => {
                    if let Err(e) =
                        self.poll.registry().register(&mut s, Token(idx), Interest::READABLE | Interest::WRITABLE)
                    {
                        last = format!("cannot register socket: {e}");
                        continue;
                    }
                    c.phase = Phase::Tcp(Stream::Plain(s, Default::default()));
                    return Ok(());
                }
                Err(e) => last = format!("connect to {addr} failed: {e}"),
            }
        }
        Err(Error::new(ResultCode::ConnectFailed, last))
    }

    fn ready(&mut self, idx: usize, readable: bool, writable: bool, closed: bool) {
        self.with_conn(idx, |r, c, idx| {
            if readable {
                match &mut c.phase {
                    Phase::Tcp(s) => s.mark_readable(closed),
                    Phase::Handshake(hs) => hs.stream.mark_readable(closed),
                    Phase::Open(sock) => sock.get_mut().mark_readable(closed),
                    Phase::Dead => {}
                }
            }
            r.ready_conn(c, idx, readable, writable)
        });
    }

    fn ready_conn(&mut self, c: &mut Conn, idx: usize, readable: bool, writable: bool) -> Flow {
        let r = self;
        match c.phase {
            Phase::Tcp(_) => r.tcp_progress(c, idx),
            Phase::Handshake(_) => r.handshake_step(c, idx),
            Phase::Open(_) => {
                if writable {
                    if let Flow::Drop = r.flush(c) {
                        return Flow::Drop;
                    }
                }
                if readable {
                    return r.read(c, idx);
                }
                Flow::Keep
            }
            Phase::Dead => Flow::Keep,
        }
    }

    fn tcp_progress(&mut self, c: &mut Conn, idx: usize) -> Flow {
        let Phase::Tcp(stream) = &c.phase else { return Flow::Keep };
        let failure = match stream.tcp().take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match stream.tcp().peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Flow::Keep,
                Err(e) => Some(e),
            },
        };
        if let Some(e) = failure {
            if let Phase::Tcp(mut s) = std::mem::replace(&mut c.phase, Phase::Dead) {
                let _ = self.poll.registry().deregister(s.tcp_mut());
            }
            let more = c.req.as_ref().is_some_and(|r| c.addr_idx < r.addrs.len());
            if more {
                if self.open_tcp(c, idx).is_ok() {
                    return Flow::Keep;
                }
            }
            return self.fail_connect(c, Error::new(ResultCode::ConnectFailed, format!("TCP connect failed: {e}")));
        }
        let Phase::Tcp(stream) = std::mem::replace(&mut c.phase, Phase::Dead) else { return Flow::Keep };
        let Some(req) = c.req.as_mut() else { return Flow::Drop };
        let Stream::Plain(tcp, _) = stream else { return Flow::Drop };
        let _ = tcp.set_nodelay(true);
        {
            let mut g = c.ws.inner.lock();
            g.fd = tcp.as_raw_fd();
        }
        let stream = match req.tls.clone() {
            Some(cfg) => match TlsStream::new(tcp, cfg, &req.host) {
                Ok(t) => Stream::Tls(Box::new(t)),
                Err(e) => return self.fail_connect(c, e),
            },
            None => Stream::Plain(tcp, Default::default()),
        };
        let request = std::mem::replace(&mut req.request, tungstenite::handshake::client::Request::default());
        let offered: Vec<String> = request
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        let (bytes, key) = match tungstenite::handshake::client::generate_request(request) {
            Ok(v) => v,
            Err(e) => {
                return self.fail_connect(
                    c,
                    Error::new(ResultCode::HandshakeFailed, format!("cannot build the upgrade request: {e}")),
                )
            }
        };
        c.phase = Phase::Handshake(Box::new(Handshake {
            stream,
            request: bytes,
            written: 0,
            key,
            response: Vec::with_capacity(512),
            offered,
        }));
        self.handshake_step(c, idx)
    }

    fn handshake_step(&mut self, c: &mut Conn, idx: usize) -> Flow {
        let Phase::Handshake(hs) = &mut c.phase else { return Flow::Keep };
        // Send the request (non-blocking; resumes on the next writable edge).
        while hs.written < hs.request.len() {
            match hs.stream.write(&hs.request[hs.written..]) {
                Ok(0) => {
                    return self.fail_connect(c, Error::new(ResultCode::ConnectFailed, "the socket accepted no bytes"))
                }
                Ok(n) => hs.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Keep,
                Err(e) => return self.fail_connect(c, io_connect_error(e)),
            }
        }
        match hs.stream.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Keep,
            Err(e) => return self.fail_connect(c, io_connect_error(e)),
        }
        // Read the response head, bounded by MAX_RESPONSE_HEAD.
        let mut chunk = [0u8; 1024];
        loop {
            let n = match hs.stream.read(&mut chunk) {
                Ok(0) => {
                    return self.fail_connect(
                        c,
                        Error::new(
                            ResultCode::HandshakeFailed,
                            "the server closed the connection during the handshake",
                        ),
                    )
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Keep,
                Err(e) => return self.fail_connect(c, io_connect_error(e)),
            };
            hs.response.extend_from_slice(&chunk[..n]);
            match parse_response(&hs.response, &hs.key, &hs.offered) {
                Ok(None) => {
                    if hs.response.len() > MAX_RESPONSE_HEAD {
                        return self.fail_connect(
                            c,
                            Error::new(ResultCode::HandshakeFailed, "the upgrade response head is too large"),
                        );
                    }
                }
                Ok(Some((head_len, protocol))) => {
                    let Phase::Handshake(hs) = std::mem::replace(&mut c.phase, Phase::Dead) else { return Flow::Drop };
                    let hs = *hs;
                    let tail = hs.response[head_len..].to_vec();
                    let Some(req) = c.req.as_ref() else { return Flow::Drop };
                    let sock = tungstenite::WebSocket::from_partially_read(
                        hs.stream,
                        tail,
                        tungstenite::protocol::Role::Client,
                        Some(req.config),
                    );
                    c.phase = Phase::Open(Box::new(sock));
                    return self.on_open(c, idx, &protocol);
                }
                Err(e) => return self.fail_connect(c, e),
            }
        }
    }

    fn on_open(&mut self, c: &mut Conn, idx: usize, protocol: &str) -> Flow {
        c.ws.set_protocol(protocol);
        {
            let mut g = c.ws.inner.lock();
            if g.state != WebSocketState::Connecting {
                drop(g);
                c.terminal_sent = true;
                return self.terminate(c, None);
            }
            g.state = WebSocketState::Open;
            g.opened = true;
            // Counted before any waiter can observe the open state.
            self.rt.counters.connections_open.fetch_add(1, Ordering::Relaxed);
        }
        c.ws.cond.notify_all();
        c.connect_deadline = None;
        c.req = None;
        c.was_open = true;
        c.last_outbound = Instant::now();
        if c.notify_events {
            let ev = Event::new(EventKind::Connected, Some(c.ws.clone()), c.ws.channel());
            self.rt.deliver(ev);
        }
        // Bytes may have arrived together with the handshake response: read them now, since
        // edge-triggered readiness will not report them again.
        self.read(c, idx)
    }

    fn fail_connect(&mut self, c: &mut Conn, err: Error) -> Flow {
        self.drop_socket(c);
        {
            let mut g = c.ws.inner.lock();
            if g.state == WebSocketState::Connecting {
                g.state = WebSocketState::Closed;
            }
            g.connect_error = Some(err.clone());
            g.slot = None;
            g.fd = -1;
        }
        c.ws.cond.notify_all();
        if c.notify_events && !c.terminal_sent {
            c.terminal_sent = true;
            let mut ev = Event::new(EventKind::ConnectFailed, Some(c.ws.clone()), c.ws.channel())
                .with_reason(&format!("{}: {}", err.code.name(), err.message));
            ev.result = err.code;
            self.rt.deliver(ev);
        }
        Flow::Drop
    }

    fn drop_socket(&mut self, c: &mut Conn) {
        let phase = std::mem::replace(&mut c.phase, Phase::Dead);
        {
            // Clear the fd under the lock before the socket closes (see Channel::wait_for_push_enabled).
            let mut g = c.ws.inner.lock();
            g.fd = -1;
        }
        match phase {
            Phase::Tcp(mut s) => {
                let _ = self.poll.registry().deregister(s.tcp_mut());
            }
            Phase::Handshake(mut hs) => {
                let _ = self.poll.registry().deregister(hs.stream.tcp_mut());
            }
            Phase::Open(mut sock) => {
                let _ = self.poll.registry().deregister(sock.get_mut().tcp_mut());
            }
            Phase::Dead => {}
        }
    }

    // ---------------------------------------------------------------- open connection

    fn read(&mut self, c: &mut Conn, idx: usize) -> Flow {
        for _ in 0..READ_BUDGET {
            let Phase::Open(sock) = &mut c.phase else { return Flow::Keep };
            match sock.read() {
                Ok(msg) => {
                    if let Flow::Drop = self.on_message(c, msg) {
                        return Flow::Drop;
                    }
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Automatic replies (pong, close) queued by read() go out now.
                    return self.flush(c);
                }
                Err(e) => return self.on_error(c, e),
            }
        }
        self.again.push(idx);
        self.flush(c)
    }

    fn on_message(&mut self, c: &mut Conn, msg: Message) -> Flow {
        match msg {
            Message::Text(t) => self.push(c, MessageType::Utf8, Bytes::from(t)),
            Message::Binary(b) => self.push(c, MessageType::Binary, b),
            Message::Pong(p) => {
                if p.len() == 8 {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(&p);
                    let seq = u64::from_be_bytes(raw);
                    if let Some(pos) = c.outstanding.iter().position(|o| o.0 == seq) {
                        let sent = c.outstanding[pos].1;
                        c.outstanding.drain(..=pos);
                        c.pong_deadline = c.outstanding.iter().map(|o| o.1 + Duration::from_millis(o.2 as u64)).min();
                        // The timer armed for the pong deadline is now useless: re-arm at the real
                        // next deadline so the idle channel costs no extra wake-up.
                        c.rearm = true;
                        let rtt = sent.elapsed();
                        self.rt.counters.keepalives_acked.fetch_add(1, Ordering::Relaxed);
                        let mut ev = Event::new(EventKind::Keepalive, Some(c.ws.clone()), c.ws.channel());
                        ev.rtt_us = rtt.as_micros().min(u64::MAX as u128) as u64;
                        self.rt.deliver(ev);
                    }
                }
                Flow::Keep
            }
            Message::Ping(_) | Message::Frame(_) => Flow::Keep,
            Message::Close(frame) => {
                let (code, reason) = match &frame {
                    Some(f) => (u16::from(f.code), f.reason.as_str().to_string()),
                    None => (1005, String::new()),
                };
                // The close handshake is complete for the application: our reply (queued by
                // tungstenite) goes out now, and the state is CLOSED before the event is seen.
                if let Phase::Open(sock) = &mut c.phase {
                    let _ = sock.flush();
                }
                {
                    let mut g = c.ws.inner.lock();
                    g.state = WebSocketState::Closed;
                    g.outbound.clear();
                    g.pending_bytes = 0;
                }
                c.ws.cond.notify_all();
                c.closing = true;
                c.pong_deadline = None;
                c.outstanding.clear();
                c.close_deadline = Some((Instant::now() + CLOSE_LINGER, false));
                if !c.terminal_sent {
                    c.terminal_sent = true;
                    if let Some(ch) = c.ws.channel() {
                        ch.release_slot();
                    }
                    let mut ev = Event::new(EventKind::Closed, Some(c.ws.clone()), c.ws.channel()).with_reason(&reason);
                    ev.close_code = code;
                    self.rt.deliver(ev);
                }
                Flow::Keep
            }
        }
    }

    fn push(&mut self, c: &mut Conn, t: MessageType, data: Bytes) -> Flow {
        c.ws.messages_received.fetch_add(1, Ordering::Relaxed);
        c.ws.bytes_received.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.rt.counters.messages_received.fetch_add(1, Ordering::Relaxed);
        let mut ev = Event::new(EventKind::PushNotification, Some(c.ws.clone()), c.ws.channel());
        ev.message_type = t;
        ev.data = data;
        self.rt.deliver(ev);
        Flow::Keep
    }

    fn disconnect_event(&self, c: &Conn, result: ResultCode, reason: &str) -> Event {
        let mut ev =
            Event::new(EventKind::TransportDisconnected, Some(c.ws.clone()), c.ws.channel()).with_reason(reason);
        ev.result = result;
        ev
    }

    fn on_error(&mut self, c: &mut Conn, e: tungstenite::Error) -> Flow {
        use tungstenite::Error as E;
        match e {
            E::ConnectionClosed | E::AlreadyClosed => {
                let ev = (!c.terminal_sent).then(|| {
                    let mut ev = Event::new(EventKind::Closed, Some(c.ws.clone()), c.ws.channel());
                    ev.close_code = 1005;
                    ev
                });
                self.terminate(c, ev)
            }
            E::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                let reason = format!("incoming message of {size} bytes exceeds the {max_size} byte limit");
                if let Phase::Open(sock) = &mut c.phase {
                    let _ = sock.close(Some(CloseFrame {
                        code: CloseCode::Size,
                        reason: Utf8Bytes::from_static("message too big"),
                    }));
                    let _ = sock.flush();
                }
                let mut ev = Event::new(EventKind::Closed, Some(c.ws.clone()), c.ws.channel()).with_reason(&reason);
                ev.close_code = 1009;
                ev.result = ResultCode::MessageTooLarge;
                self.terminate(c, Some(ev))
            }
            E::Capacity(other) => {
                if let Phase::Open(sock) = &mut c.phase {
                    let _ = sock
                        .close(Some(CloseFrame { code: CloseCode::Size, reason: Utf8Bytes::from_static("too big") }));
                    let _ = sock.flush();
                }
                let mut ev = Event::new(EventKind::Closed, Some(c.ws.clone()), c.ws.channel())
                    .with_reason(&format!("capacity exceeded: {other}"));
                ev.close_code = 1009;
                ev.result = ResultCode::MessageTooLarge;
                self.terminate(c, Some(ev))
            }
            E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                let ev = self.disconnect_event(
                    c,
                    ResultCode::Io,
                    "EOF: the peer closed the TCP connection without a close frame",
                );
                self.terminate(c, Some(ev))
            }
            E::Io(io) => {
                let reason = if let Some(t) = is_tls_failure(&io) {
                    format!("TLS error: {t}")
                } else {
                    match io.kind() {
                        io::ErrorKind::ConnectionReset => "connection reset by peer (RST)".to_string(),
                        io::ErrorKind::BrokenPipe => "broken pipe: the peer is gone".to_string(),
                        io::ErrorKind::TimedOut => "TCP timeout (kernel keep-alive or TCP_USER_TIMEOUT)".to_string(),
                        io::ErrorKind::UnexpectedEof => {
                            "EOF: the peer closed the connection (TLS truncated)".to_string()
                        }
                        _ => format!("I/O error: {io}"),
                    }
                };
                let code = if is_tls_failure(&io).is_some() {
                    ResultCode::TlsFailed
                } else if io.kind() == io::ErrorKind::TimedOut {
                    ResultCode::Timeout
                } else {
                    ResultCode::Io
                };
                let ev = self.disconnect_event(c, code, &reason);
                self.terminate(c, Some(ev))
            }
            E::Utf8(_) => {
                if let Phase::Open(sock) = &mut c.phase {
                    let _ = sock.close(Some(CloseFrame {
                        code: CloseCode::Invalid,
                        reason: Utf8Bytes::from_static("invalid UTF-8"),
                    }));
                    let _ = sock.flush();
                }
                let ev = self.disconnect_event(c, ResultCode::Io, "protocol error: invalid UTF-8 in a text message");
                self.terminate(c, Some(ev))
            }
            other => {
                if let Phase::Open(sock) = &mut c.phase {
                    let _ = sock.close(Some(CloseFrame {
                        code: CloseCode::Protocol,
                        reason: Utf8Bytes::from_static("protocol error"),
                    }));
                    let _ = sock.flush();
                }
                let ev = self.disconnect_event(c, ResultCode::Io, &format!("protocol error: {other}"));
                self.terminate(c, Some(ev))
            }
        }
    }

    /// Ends a connection: state first (so callbacks see it closed), then the one terminal event.
    fn terminate(&mut self, c: &mut Conn, ev: Option<Event>) -> Flow {
        self.drop_socket(c);
        {
            let mut g = c.ws.inner.lock();
            g.state = WebSocketState::Closed;
            g.slot = None;
            g.outbound.clear();
            g.pending_bytes = 0;
            g.service_scheduled = false;
            if g.connect_error.is_none() && !c.was_open {
                g.connect_error = Some(Error::closed("the websocket was closed"));
            }
        }
        c.ws.cond.notify_all();
        if c.was_open {
            c.was_open = false;
            self.rt.counters.connections_open.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(ch) = c.ws.channel() {
            ch.release_slot();
        }
        c.ka_channel = None;
        self.sync_window(c);
        if let Some(ev) = ev {
            if !c.terminal_sent {
                c.terminal_sent = true;
                self.rt.deliver(ev);
            }
        }
        Flow::Drop
    }

    fn service(&mut self, c: &mut Conn, _idx: usize) -> Flow {
        let batch = {
            let mut g = c.ws.inner.lock();
            g.service_scheduled = false;
            std::mem::take(&mut g.outbound)
        };
        if batch.is_empty() {
            return Flow::Keep;
        }
        let Phase::Open(sock) = &mut c.phase else { return Flow::Keep };
        let now = Instant::now();
        for (t, data) in batch {
            let len = data.len();
            let msg = match t {
                // SAFETY: send_message() validated UTF-8 before queuing.
                MessageType::Utf8 => Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(data) }),
                MessageType::Binary => Message::Binary(data),
            };
            match sock.write(msg) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return self.on_error(c, e),
            }
            c.unflushed += len;
            c.last_outbound = now;
            c.ws.messages_sent.fetch_add(1, Ordering::Relaxed);
            c.ws.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
        }
        self.flush(c)
    }

    fn flush(&mut self, c: &mut Conn) -> Flow {
        let Phase::Open(sock) = &mut c.phase else { return Flow::Keep };
        match sock.flush() {
            Ok(()) => {
                if c.unflushed > 0 {
                    let mut g = c.ws.inner.lock();
                    g.pending_bytes = g.pending_bytes.saturating_sub(c.unflushed);
                    c.unflushed = 0;
                    let done = g.pending_bytes == 0;
                    drop(g);
                    if done {
                        c.ws.cond.notify_all();
                    }
                }
                Flow::Keep
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Flow::Keep,
            Err(e) => self.on_error(c, e),
        }
    }

    fn send_keepalive(&mut self, c: &mut Conn, _idx: usize, mode: KeepAliveMode, pong_timeout_ms: u32) -> Flow {
        if c.closing {
            return Flow::Keep;
        }
        let Phase::Open(sock) = &mut c.phase else { return Flow::Keep };
        let now = Instant::now();
        // Let any automatic pong reply go first so a custom pong never replaces it.
        match sock.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return self.on_error(c, e),
        }
        let msg = match mode {
            KeepAliveMode::Ping => {
                let seq = self.rt.ping_seq.fetch_add(1, Ordering::Relaxed);
                // The oldest unanswered ping keeps its deadline: with the list full, the newest
                // ping is sent but not tracked, so the deadline never moves later.
                if c.outstanding.len() < MAX_OUTSTANDING {
                    c.outstanding.push_back((seq, now, pong_timeout_ms));
                }
                let due = now + Duration::from_millis(pong_timeout_ms as u64);
                c.pong_deadline = Some(c.pong_deadline.map_or(due, |d| d.min(due)));
                Message::Ping(Bytes::copy_from_slice(&seq.to_be_bytes()))
            }
            KeepAliveMode::UnsolicitedPong => Message::Pong(Bytes::new()),
        };
        match sock.write(msg) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return self.on_error(c, e),
        }
        c.last_outbound = now;
        self.rt.counters.keepalives_sent.fetch_add(1, Ordering::Relaxed);
        if let Flow::Drop = self.flush(c) {
            return Flow::Drop;
        }
        if mode == KeepAliveMode::UnsolicitedPong {
            let ev = Event::new(EventKind::Keepalive, Some(c.ws.clone()), c.ws.channel());
            self.rt.deliver(ev);
        }
        Flow::Keep
    }

    fn start_close(&mut self, c: &mut Conn, _idx: usize, code: u16, reason: &str) -> Flow {
        if c.closing {
            return Flow::Keep;
        }
        // Queued data goes out before the close frame.
        if let Flow::Drop = self.service(c, _idx) {
            return Flow::Drop;
        }
        let Phase::Open(sock) = &mut c.phase else { return Flow::Keep };
        let frame = CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason) };
        match sock.close(Some(frame)) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return self.on_error(c, e),
        }
        c.closing = true;
        c.pong_deadline = None;
        c.outstanding.clear();
        c.close_deadline = Some((Instant::now() + CLOSE_HANDSHAKE_TIMEOUT, true));
        c.last_outbound = Instant::now();
        self.flush(c)
    }

    fn close_all(&mut self) {
        // Commands that raced with shutdown: release anyone waiting on them.
        for cmd in self.rt.take_cmds() {
            if let Cmd::Connect(ws, _) = cmd {
                let mut g = ws.inner.lock();
                g.state = WebSocketState::Closed;
                g.connect_error = Some(Error::invalid_state("the runtime shut down"));
                drop(g);
                ws.cond.notify_all();
            }
        }
        for i in 0..self.conns.len() {
            let Some(mut c) = self.conns[i].take() else { continue };
            if let Phase::Open(sock) = &mut c.phase {
                if !c.closing {
                    let _ = sock.close(Some(CloseFrame {
                        code: CloseCode::Away,
                        reason: Utf8Bytes::from_static("runtime shutting down"),
                    }));
                }
                let _ = sock.flush();
            }
            if !c.was_open {
                let mut g = c.ws.inner.lock();
                g.connect_error = Some(Error::invalid_state("the runtime shut down"));
            }
            c.terminal_sent = true;
            let _ = self.terminate(&mut c, None);
        }
        self.conns.clear();
        self.free.clear();
    }
}

fn io_connect_error(io: io::Error) -> Error {
    match is_tls_failure(&io) {
        Some(t) => Error::new(ResultCode::TlsFailed, format!("TLS handshake failed: {t}")),
        None => match io.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                Error::new(
                    ResultCode::HandshakeFailed,
                    format!("the server closed the connection during the handshake: {io}"),
                )
            }
            _ => Error::new(ResultCode::ConnectFailed, format!("I/O error during the handshake: {io}")),
        },
    }
}

/// Parses the HTTP upgrade response. `Ok(None)`: incomplete; `Ok(Some((head_len, protocol)))`:
/// a valid RFC 6455 acceptance.
fn parse_response(buf: &[u8], key: &str, offered: &[String]) -> Result<Option<(usize, String)>, Error> {
    let fail = |m: String| Error::new(ResultCode::HandshakeFailed, m);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(fail(format!("malformed HTTP response to the upgrade: {e}"))),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(fail(format!(
            "the server refused the websocket upgrade with HTTP {code} {}",
            resp.reason.unwrap_or("")
        )));
    }
    let header = |name: &str| -> Option<&str> {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    if !header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(fail("the upgrade response lacks 'Upgrade: websocket'".into()));
    }
    if !header("Connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))) {
        return Err(fail("the upgrade response lacks 'Connection: Upgrade'".into()));
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if header("Sec-WebSocket-Accept") != Some(expected.as_str()) {
        return Err(fail("the server's Sec-WebSocket-Accept does not match our key".into()));
    }
    let protocol = header("Sec-WebSocket-Protocol").unwrap_or("").to_string();
    if !protocol.is_empty() && !offered.iter().any(|p| p == &protocol) {
        return Err(fail(format!("the server selected subprotocol '{protocol}', which was not offered")));
    }
    if header("Sec-WebSocket-Extensions").is_some_and(|v| !v.is_empty()) {
        return Err(fail("the server enabled an extension that was not offered".into()));
    }
    Ok(Some((head_len, protocol)))
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    fn resp(accept: &str, extra: &str) -> String {
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\nTAIL")
    }

    #[test]
    fn accepts_valid_upgrade_and_reports_tail_offset() {
        // RFC 6455 section 1.3 example key/accept pair.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let r = resp("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Protocol: chat\r\n");
        let (n, proto) = parse_response(r.as_bytes(), key, &["chat".into()]).expect("valid").expect("complete"); // ok: test
        assert_eq!(&r[n..], "TAIL");
        assert_eq!(proto, "chat");
    }

    #[test]
    fn rejects_bad_accept_status_and_unoffered_protocol() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        assert!(parse_response(resp("wrong", "").as_bytes(), key, &[]).is_err());
        let r = resp("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Protocol: evil\r\n");
        assert!(parse_response(r.as_bytes(), key, &["chat".into()]).is_err());
        let e = parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n", key, &[]).expect_err("404");
        assert!(e.message.contains("404"));
        assert_eq!(parse_response(b"HTTP/1.1 101 Swi", key, &[]).expect("partial"), None); // ok: test
        assert!(parse_response(b"\x00\x01garbage\r\n\r\n", key, &[]).is_err());
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Conn>();
    let _ = ms;
}
