//! I/O of an open connection on the runtime thread: incoming messages become events, queued
//! data and keep-alives go out, and close frames and errors end the connection via `finish`.

use std::io;

use rand::Rng;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tungstenite::Message;

use super::io::{best_effort_close, ok_unless_fatal, would_block};
use super::lifecycle::{Conn, End, Life, CLOSE_LINGER};
use super::reactor::Reactor;
use super::stream::is_tls_failure;
use crate::error::ResultCode;
use crate::protocol::keepalive_frame::{empty_pong_frame, ping_frame, EMPTY_PONG_LEN, PING_LEN};
use crate::state::event::mask_bit;
use crate::state::Event;
use crate::types::{EventKind, KeepAliveMode, MessageType};

/// Messages read from one connection per turn before others get a chance.
const READ_BUDGET: usize = 256;

/// Payloads up to this size are copied out of the connection's read buffer: an event the
/// application keeps must own only its payload, not the buffer it was cut from (which may have
/// grown to a large earlier frame's size). Larger payloads were read into a buffer reserved for
/// their own frame, so sharing it costs little; copying them would double their peak memory.
const COPY_PAYLOAD_UP_TO: usize = 64 * 1024;

/// The payload as an event should hold it (see [`COPY_PAYLOAD_UP_TO`]).
fn own_payload(data: Bytes) -> Bytes {
    if data.len() <= COPY_PAYLOAD_UP_TO {
        Bytes::copy_from_slice(&data)
    } else {
        data
    }
}

/// tungstenite replaces a close code that may not appear on the wire (0–999, 1004–1006, 1015,
/// 1016–2999, ≥ 5000) by exactly this frame before handing it to us, and we never send anything
/// a conforming peer would answer with it, so this is how an invalid peer code shows.
fn peer_close_code_was_invalid(f: &CloseFrame) -> bool {
    f.code == CloseCode::Protocol && f.reason.as_str() == "Protocol violation"
}

/// The unmasked payload of a ping frame built by `ping_frame` (for the codec fallback).
fn ping_payload(frame: &[u8; PING_LEN], mask: [u8; 4]) -> [u8; 8] {
    let mut p = [0u8; 8];
    for (i, b) in p.iter_mut().enumerate() {
        *b = frame[6 + i] ^ mask[i % 4];
    }
    p
}

/// Size of the masked client pong frame tungstenite queues for a ping with this payload (≤ 125).
fn auto_pong_len(payload: usize) -> usize {
    2 + 4 + payload
}

fn disconnect_event(c: &Conn, result: ResultCode, reason: &str) -> Event {
    let mut ev = Event::new(EventKind::TransportDisconnected, Some(c.ws.clone()), c.ws.channel()).with_reason(reason);
    ev.result = result;
    ev
}

fn closed_event(c: &Conn, code: u16, reason: &str, result: ResultCode) -> Event {
    let mut ev = Event::new(EventKind::Closed, Some(c.ws.clone()), c.ws.channel()).with_reason(reason);
    ev.close_code = code;
    ev.result = result;
    ev
}

impl Reactor {
    /// Reads and dispatches messages until the socket would block (or the budget is used up:
    /// then the connection is read again after the others had their turn).
    pub(crate) fn read(&mut self, c: &mut Conn, idx: usize) {
        let mut codec_used = false;
        for _ in 0..READ_BUDGET {
            if self.rt.queue.is_full() && self.feeds_queue(c) {
                // Back-pressure: leave the bytes in the kernel until the app drains the queue.
                if !c.paused {
                    c.paused = true;
                    self.paused.push((idx, c.serial));
                }
                self.rt.queue.pause();
                return self.flush(c);
            }
            let open = matches!(c.life, Life::Open { .. });
            let Some(sock) = c.life.sock_mut() else { return };
            if open {
                // A complete pong in front of an idle codec: no generic decoding (see `next_pong`).
                let mut payload = [0u8; 125];
                match sock.get_mut().next_pong(&mut payload) {
                    Ok(Some(n)) => {
                        c.ka.last_inbound = Instant::now();
                        self.on_pong(c, &payload[..n]);
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // The codec was not used in this call: nothing new to flush (a flush
                        // that would block earlier resumes on the writable event).
                        if codec_used || c.unflushed > 0 || c.ping_in_codec {
                            self.flush(c);
                        }
                        return;
                    }
                    Err(e) => return self.on_error(c, tungstenite::Error::Io(e)),
                }
            }
            codec_used = true;
            match sock.read() {
                Ok(msg) => {
                    sock.get_mut().codec_read_message();
                    c.ka.last_inbound = Instant::now();
                    self.on_message(c, msg);
                    if c.life.is_closed() {
                        return;
                    }
                }
                // Automatic replies (pong, close) queued by read() go out now.
                Err(e) if would_block(&e) => {
                    sock.get_mut().codec_would_block();
                    return self.flush(c);
                }
                Err(e) => return self.on_error(c, e),
            }
        }
        self.again.push(idx);
        self.flush(c)
    }

    /// Whether this connection's events go to the runtime queue (no handler takes them).
    fn feeds_queue(&self, c: &Conn) -> bool {
        let by_channel = c.ws.channel().is_some_and(|ch| ch.handler.lock().is_some());
        !by_channel && c.ws.handler.lock().is_none()
    }

    fn on_message(&mut self, c: &mut Conn, msg: Message) {
        let lingering = matches!(c.life, Life::Lingering { .. });
        match msg {
            Message::Text(_) | Message::Binary(_) | Message::Pong(_) if lingering => {}
            Message::Text(t) => self.push(c, MessageType::Utf8, Bytes::from(t)),
            Message::Binary(b) => self.push(c, MessageType::Binary, b),
            Message::Pong(p) => self.on_pong(c, &p),
            Message::Ping(p) if !lingering => self.auto_reply_queued(c, p.len()),
            Message::Ping(_) | Message::Frame(_) => {}
            Message::Close(Some(f)) if peer_close_code_was_invalid(&f) => {
                // tungstenite already queued our 1002 reply; a protocol error like any other.
                if let Some(sock) = c.life.sock_mut() {
                    let _ = sock.flush();
                }
                let ev = disconnect_event(
                    c,
                    ResultCode::Io,
                    "protocol error: the peer's close frame carries a code RFC 6455 forbids on the wire (replied 1002)",
                );
                self.finish(c, End::Event(ev), Some(CLOSE_LINGER));
            }
            Message::Close(frame) => {
                let (code, reason) = match &frame {
                    Some(f) => (u16::from(f.code), f.reason.as_str().to_string()),
                    None => (1005, String::new()),
                };
                // The close handshake is complete for the application: our reply (queued by
                // tungstenite) goes out now, and the state is CLOSED before the event is seen.
                if let Some(sock) = c.life.sock_mut() {
                    let _ = sock.flush();
                }
                let ev = closed_event(c, code, &reason, ResultCode::Ok);
                self.finish(c, End::Event(ev), Some(CLOSE_LINGER));
            }
        }
    }

    /// A pong arrived (not while lingering): settles the keep-alive it answers, if any.
    fn on_pong(&mut self, c: &mut Conn, p: &[u8]) {
        if let Some((rtt, gap)) = c.ka.pong(p) {
            // The timer armed for the pong deadline is now useless: re-arm at the real
            // next deadline so the idle channel costs no extra wake-up.
            c.rearm = true;
            c.probe = None;
            self.adaptive_ack(c, gap);
            let rtt_us = rtt.as_micros().min(u64::MAX as u128) as u64;
            self.note_keepalive_ack();
            self.rt.counters.keepalives_acked.fetch_add(1, Ordering::Relaxed);
            if let Some(ch) = &c.ka.channel {
                ch.stats.record_rtt(rtt_us);
            }
            // The common case, keep-alive acks masked out, costs no lock: the channel whose
            // schedule this is already says so.
            let quiet = c.ka.channel.as_ref().is_some_and(|ch| ch.event_mask() & mask_bit(EventKind::Keepalive) == 0);
            if !quiet {
                self.rt.emit(&c.ws, EventKind::Keepalive, |ev| ev.rtt_us = rtt_us);
            }
        }
    }

    /// tungstenite queued an automatic pong for a ping. While the peer does not read, these pile
    /// up in the codec's write buffer, so they are counted like data: in `pending_bytes` (sends
    /// see them and get BUFFER_FULL) and in `unflushed` (a completed flush gives them back).
    /// A peer whose unread pongs alone exceed the outbound limit is failed: TRANSPORT_DISCONNECTED
    /// with BUFFER_FULL (we fail rather than stop reading: a paused socket would also hide the
    /// peer's close and data, and a peer that floods pings without reading is broken anyway).
    fn auto_reply_queued(&mut self, c: &mut Conn, payload: usize) {
        let n = auto_pong_len(payload);
        c.unflushed += n;
        c.auto_reply += n;
        let limit = {
            let mut g = c.ws.inner.lock();
            g.pending_bytes += n;
            g.opts.outbound_limit as usize
        };
        if c.auto_reply > limit {
            let reason = format!(
                "the peer does not read: {} bytes of automatic pongs exceed the {limit} byte outbound limit",
                c.auto_reply
            );
            let ev = disconnect_event(c, ResultCode::BufferFull, &reason);
            self.finish(c, End::Event(ev), None);
        }
    }

    fn push(&mut self, c: &mut Conn, t: MessageType, data: Bytes) {
        c.ws.messages_received.fetch_add(1, Ordering::Relaxed);
        c.ws.bytes_received.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.rt.counters.messages_received.fetch_add(1, Ordering::Relaxed);
        self.rt.emit(&c.ws, EventKind::PushNotification, |ev| {
            ev.message_type = t;
            ev.data = own_payload(data);
        });
    }

    /// A read or write failed: the connection ends with the event that says why.
    pub(crate) fn on_error(&mut self, c: &mut Conn, e: tungstenite::Error) {
        use tungstenite::Error as E;
        let end = match e {
            E::ConnectionClosed | E::AlreadyClosed => closed_event(c, 1005, "", ResultCode::Ok),
            // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
            E::Capacity(CapacityError::MessageTooLong { size, .. }) if size as u64 > i64::MAX as u64 => {
                if let Some(sock) = c.life.sock_mut() {
                    best_effort_close(sock, CloseCode::Protocol, "protocol error");
                }
                disconnect_event(c, ResultCode::Io, "protocol error: a frame length with the most significant bit set")
            }
            E::Capacity(cap) => {
                let reason = match cap {
                    CapacityError::MessageTooLong { size, max_size } => {
                        format!("incoming message of {size} bytes exceeds the {max_size} byte limit")
                    }
                    other => format!("capacity exceeded: {other}"),
                };
                if let Some(sock) = c.life.sock_mut() {
                    best_effort_close(sock, CloseCode::Size, "message too big");
                }
                closed_event(c, 1009, &reason, ResultCode::MessageTooLarge)
            }
            E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                disconnect_event(c, ResultCode::Io, "EOF: the peer closed the TCP connection without a close frame")
            }
            E::Io(io) => {
                let tls = is_tls_failure(&io);
                let reason = match (&tls, io.kind()) {
                    (Some(t), _) => format!("TLS error: {t}"),
                    (None, io::ErrorKind::ConnectionReset) => "connection reset by peer (RST)".to_string(),
                    (None, io::ErrorKind::BrokenPipe) => "broken pipe: the peer is gone".to_string(),
                    (None, io::ErrorKind::TimedOut) => {
                        "TCP timeout (kernel keep-alive or TCP_USER_TIMEOUT)".to_string()
                    }
                    (None, io::ErrorKind::UnexpectedEof) => {
                        "EOF: the peer closed the connection (TLS truncated)".to_string()
                    }
                    (None, _) => format!("I/O error: {io}"),
                };
                let code = match (&tls, io.kind()) {
                    (Some(_), _) => ResultCode::TlsFailed,
                    (None, io::ErrorKind::TimedOut) => ResultCode::Timeout,
                    _ => ResultCode::Io,
                };
                disconnect_event(c, code, &reason)
            }
            E::Utf8(_) => {
                if let Some(sock) = c.life.sock_mut() {
                    best_effort_close(sock, CloseCode::Invalid, "invalid UTF-8");
                }
                disconnect_event(c, ResultCode::Io, "protocol error: invalid UTF-8 in a text message")
            }
            other => {
                if let Some(sock) = c.life.sock_mut() {
                    best_effort_close(sock, CloseCode::Protocol, "protocol error");
                }
                disconnect_event(c, ResultCode::Io, &format!("protocol error: {other}"))
            }
        };
        self.finish(c, End::Event(end), None);
    }

    /// Writes the queued outbound messages (open connections only), then flushes.
    pub(crate) fn service(&mut self, c: &mut Conn) {
        let batch = {
            let mut g = c.ws.inner.lock();
            g.service_scheduled = false;
            std::mem::take(&mut g.outbound)
        };
        if batch.is_empty() {
            return;
        }
        let Life::Open { sock } = &mut c.life else { return };
        let now = Instant::now();
        for (t, data) in batch {
            let len = data.len();
            let msg = match t {
                // SAFETY: the state layer validated UTF-8 before queuing.
                MessageType::Utf8 => Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(data) }),
                MessageType::Binary => Message::Binary(data),
            };
            if let Err(e) = ok_unless_fatal(sock.write(msg)) {
                return self.on_error(c, e);
            }
            c.unflushed += len;
            c.ka.last_outbound = now;
            c.ws.messages_sent.fetch_add(1, Ordering::Relaxed);
            c.ws.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
        }
        self.flush(c)
    }

    /// Pushes buffered frames to the kernel; wakes `flush_transport` waiters when all went out.
    pub(crate) fn flush(&mut self, c: &mut Conn) {
        self.flush_done(c);
    }

    /// `flush`; true when everything went out (nothing is left in the codec or the stream).
    fn flush_done(&mut self, c: &mut Conn) -> bool {
        let Some(sock) = c.life.sock_mut() else { return false };
        match sock.flush() {
            Ok(()) => {
                c.ping_in_codec = false;
                if c.unflushed > 0 {
                    let mut g = c.ws.inner.lock();
                    g.pending_bytes = g.pending_bytes.saturating_sub(c.unflushed);
                    c.unflushed = 0;
                    c.auto_reply = 0;
                    let done = g.pending_bytes == 0;
                    drop(g);
                    if done {
                        c.ws.cond.notify_all();
                    }
                }
                true
            }
            Err(e) if would_block(&e) => false,
            Err(e) => {
                self.on_error(c, e);
                false
            }
        }
    }

    /// Sends one keep-alive frame now (scheduled, or `ctrlchan_keepalive_run`).
    ///
    /// The frame is built in `protocol::keepalive_frame` and written straight to the stream
    /// when the codec has nothing buffered (the steady state): no encoder, no payload allocation,
    /// one `send`. Otherwise it is queued behind the buffered frames through the codec.
    pub(crate) fn send_keepalive(&mut self, c: &mut Conn, mode: KeepAliveMode, pong_timeout_ms: u32) {
        let now = Instant::now();
        self.send_keepalive_at(c, mode, pong_timeout_ms, now)
    }

    /// `send_keepalive` with the wake-up's clock reading.
    pub(crate) fn send_keepalive_at(&mut self, c: &mut Conn, mode: KeepAliveMode, pong_timeout_ms: u32, now: Instant) {
        if !matches!(c.life, Life::Open { .. }) {
            return;
        }
        // Let any automatic pong reply go first so a custom pong never replaces it. Nothing
        // written into the codec since its last complete flush (data and automatic replies count
        // in `unflushed`, a keep-alive queued there sets `ping_in_codec`): nothing to flush.
        let drained = (c.unflushed == 0 && !c.ping_in_codec) || self.flush_done(c);
        let mask = self.masks.next_u32().to_ne_bytes();
        let Life::Open { sock } = &mut c.life else { return };
        let mut ping = [0u8; PING_LEN];
        let frame: &[u8] = match mode {
            KeepAliveMode::Ping => {
                let seq = self.rt.ping_seq.fetch_add(1, Ordering::Relaxed);
                c.ka.ping_sent(seq, now, pong_timeout_ms, c.probe.is_some());
                ping = ping_frame(seq, mask);
                &ping
            }
            KeepAliveMode::UnsolicitedPong => {
                ping[..EMPTY_PONG_LEN].copy_from_slice(&empty_pong_frame(mask));
                &ping[..EMPTY_PONG_LEN]
            }
        };
        let direct = match drained {
            true => match sock.get_mut().write_frame(frame) {
                Ok(sent) => sent,
                Err(e) => return self.on_error(c, tungstenite::Error::Io(e)),
            },
            false => false,
        };
        if !direct {
            let msg = match mode {
                KeepAliveMode::Ping => Message::Ping(Bytes::copy_from_slice(&ping_payload(&ping, mask))),
                KeepAliveMode::UnsolicitedPong => Message::Pong(Bytes::new()),
            };
            c.ping_in_codec = true;
            if let Err(e) = ok_unless_fatal(sock.write(msg)) {
                return self.on_error(c, e);
            }
        }
        c.ka.last_outbound = now;
        self.rt.counters.keepalives_sent.fetch_add(1, Ordering::Relaxed);
        match &c.ka.channel {
            Some(ch) => {
                ch.stats.keepalives_sent.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                if let Some(ch) = c.ws.channel() {
                    ch.stats.keepalives_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !direct {
            self.flush(c);
        }
        if mode == KeepAliveMode::UnsolicitedPong && matches!(c.life, Life::Open { .. }) {
            self.rt.emit(&c.ws, EventKind::Keepalive, |_| {});
        }
    }

    /// The application's close: queued data first, then our close frame; Open → Closing.
    pub(crate) fn start_close(&mut self, c: &mut Conn, code: u16, reason: &str) {
        if c.retry.is_some() && !matches!(c.life, Life::Open { .. }) {
            // Closed while reconnecting: the reconnect stops; the CLOSED event confirms it.
            c.retry = None;
            let ev = closed_event(c, code, reason, ResultCode::Ok);
            return self.finish(c, End::Event(ev), None);
        }
        if !matches!(c.life, Life::Open { .. }) {
            return;
        }
        self.service(c);
        let Life::Open { sock } = &mut c.life else { return };
        let frame = CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason) };
        if let Err(e) = ok_unless_fatal(sock.close(Some(frame))) {
            return self.on_error(c, e);
        }
        self.closing(c);
        c.ka.last_outbound = Instant::now();
        self.flush(c)
    }

    /// A deadline of this connection passed: connect, close handshake, linger or pong timeout,
    /// or a keep-alive is due.
    pub(crate) fn on_timer(&mut self, c: &mut Conn, idx: usize, now: Instant, global: Duration) {
        if c.life.deadline().is_some_and(|d| d <= now) {
            match &c.life {
                Life::Connecting { req, .. } => {
                    let e = crate::error::Error::new(
                        ResultCode::Timeout,
                        format!("connect timed out after {} ms", req.timeout_ms),
                    );
                    return self.finish(c, End::ConnectFailed(e), None);
                }
                Life::Handshaking { timeout_ms, .. } => {
                    let e = crate::error::Error::new(
                        ResultCode::Timeout,
                        format!("connect timed out after {timeout_ms} ms"),
                    );
                    return self.finish(c, End::ConnectFailed(e), None);
                }
                Life::Tunneling { hs, req, .. } => {
                    let e = hs.timed_out_error(req.timeout_ms);
                    return self.finish(c, End::ConnectFailed(e), None);
                }
                Life::Waiting { .. } => return self.start_attempt(c, idx),
                Life::Queued { .. } => {
                    let e = crate::error::Error::new(
                        ResultCode::Timeout,
                        format!(
                            "connect timed out after {} ms (queued behind {} connects in progress)",
                            c.template.as_ref().map_or(0, |t| t.timeout_ms),
                            super::admission::MAX_HANDSHAKES
                        ),
                    );
                    return self.finish(c, End::ConnectFailed(e), None);
                }
                Life::Closing { .. } => {
                    let ev = disconnect_event(
                        c,
                        ResultCode::Timeout,
                        "close handshake timed out: the peer did not answer the close frame",
                    );
                    return self.finish(c, End::Event(ev), None);
                }
                _ => return self.drop_socket(c),
            }
        }
        // A paused connection is not read, so a missing pong proves nothing (see `resume`).
        if !c.paused && c.ka.pong_deadline.is_some_and(|d| d <= now) {
            let to = c.ka.oldest_timeout_ms();
            if let Some(gap) = c.ka.oldest_gap() {
                self.adaptive_silent_death(c, gap);
            }
            let ev = disconnect_event(
                c,
                ResultCode::Timeout,
                &format!("pong timeout: no pong within {to} ms of a keep-alive ping"),
            );
            return self.finish(c, End::Event(ev), None);
        }
        if let (Life::Open { .. }, Some(interval), Some(deadline)) =
            (&c.life, c.ka.interval(), c.ka.keepalive_deadline())
        {
            let window = crate::protocol::timing::coalescing_window(global, interval);
            if crate::protocol::timing::keepalive_due(deadline, now, window) {
                if let Some(ch) = &c.ka.channel {
                    let task = ch.keepalive_task();
                    self.send_keepalive_at(c, task.mode(), task.pong_timeout_ms(), now);
                    if task.mode() == KeepAliveMode::Ping {
                        self.burst_pings = self.burst_pings.saturating_add(1);
                    }
                }
            }
        }
    }
}
