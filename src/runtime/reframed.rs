//! The stream tungstenite reads: our [`Stream`] (any `Read + Write` for the fuzz targets) behind the sans-I/O [`Reframer`], so no frame
//! header makes tungstenite reserve more than a bounded fragment, plus an allocation probe so
//! that a message the process cannot hold fails its connection instead of aborting the process.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::ops::{Deref, DerefMut};

use super::stream::Stream;
use crate::protocol::keepalive_frame::{front_frame, FrontFrame};
use crate::protocol::reframe::{Reframer, DEFAULT_CHUNK};

/// Socket reads go into one scratch buffer per thread (the reactor is single-threaded), so a
/// connection owns read bytes only while some of them are still waiting for tungstenite (the
/// carry-over, dropped as soon as it is consumed): an idle connection holds none.
const SCRATCH: usize = 16 * 1024;
/// A payload read this large goes straight from the socket into tungstenite's buffer.
const DIRECT: usize = 4096;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH].into_boxed_slice());
}

/// Messages below this size are never probed.
const PROBE_FLOOR: u64 = 8 << 20;

pub struct Reframed<S = Stream> {
    inner: S,
    rf: Reframer,
    /// Carry-over: bytes read from the socket that tungstenite has not taken yet (at first: the
    /// bytes that came with the upgrade response). Empty (no allocation) when there are none.
    raw: Vec<u8>,
    start: usize,
    end: usize,
    /// (message seq, size) for which an allocation of twice the size succeeded.
    probed: (u64, u64),
    /// The unsent tail of a frame written around the codec (`write_frame`): it goes out before
    /// anything else written through this stream.
    write_tail: Vec<u8>,
    /// The pong fast path read EOF: the next read reports it without asking the stream again.
    eof: bool,
    /// The codec above holds no bytes (set by its owner, see [`Reframed::codec_would_block`]).
    codec_idle: bool,
}

impl<S: Read> Reframed<S> {
    /// `tail`: bytes read after the upgrade response (they go through the re-framer too).
    pub fn new(inner: S, tail: Vec<u8>, max_frame_size: Option<usize>) -> Self {
        let end = tail.len();
        let raw = tail;
        Reframed {
            inner,
            rf: Reframer::new(DEFAULT_CHUNK, max_frame_size),
            raw,
            start: 0,
            end,
            probed: (0, 0),
            write_tail: Vec::new(),
            eof: false,
            codec_idle: false,
        }
    }

    /// Before up to `n` more payload bytes of a data message go to tungstenite (whose buffer
    /// grows by doubling and aborts on failure): check, fallibly, that the doubled size can
    /// still be allocated; if not, fail the connection with an error saying so.
    fn probe(&mut self, n: usize) -> io::Result<()> {
        if !self.rf.in_data_payload() {
            return Ok(());
        }
        let total = self.rf.message_bytes().saturating_add(n as u64);
        let seq = self.rf.message_seq();
        if total <= PROBE_FLOOR || (self.probed.0 == seq && total <= self.probed.1) {
            return Ok(());
        }
        let size = total.checked_next_power_of_two().unwrap_or(u64::MAX);
        let fail = || {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("cannot allocate memory for an incoming message of more than {total} bytes"),
            )
        };
        let want = usize::try_from(size.saturating_mul(2)).map_err(|_| fail())?;
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(want).map_err(|_| fail())?;
        drop(v);
        self.probed = (seq, size);
        Ok(())
    }
}

impl<S: Read> Read for Reframed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Bounded: every round consumes carried-over or socket bytes, or returns; socket rounds
        // that produce nothing consume header bytes only (at most 14 per frame header).
        loop {
            if self.start < self.end {
                self.probe(buf.len())?;
                let (c, p) = self.rf.run(&self.raw[self.start..self.end], buf);
                self.start += c;
                if self.start == self.end {
                    self.raw = Vec::new();
                    self.start = 0;
                    self.end = 0;
                }
                if p > 0 {
                    return Ok(p);
                }
                continue;
            }
            // Output the re-framer still holds (a rewritten header that did not fit in the last
            // `buf`) goes first: it needs no socket bytes, and EOF must not swallow it.
            self.probe(buf.len())?;
            let (_, pending) = self.rf.run(&[], buf);
            if pending > 0 {
                return Ok(pending);
            }
            if self.eof {
                return Ok(0);
            }
            let w = self.rf.payload_window().min(buf.len());
            if w >= DIRECT {
                // A large payload with nothing carried over: straight from the socket.
                self.probe(w)?;
                let n = self.inner.read(&mut buf[..w])?;
                self.rf.passed(n);
                return Ok(n);
            }
            if let Some(n) = self.read_scratch(buf)? {
                return Ok(n);
            }
        }
    }
}

impl<S: Read> Reframed<S> {
    /// One socket read into the thread's scratch buffer; what tungstenite does not take now is
    /// carried over. `None`: the bytes read were only (part of) a frame header.
    fn read_scratch(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        SCRATCH_BUF.with(|cell| {
            // Not re-entrant (the inner stream never reads through a Reframed), but never panic.
            let Ok(mut scratch) = cell.try_borrow_mut() else {
                return Err(io::Error::other("re-entrant read of the scratch buffer"));
            };
            let n = self.inner.read(&mut scratch[..])?;
            if n == 0 {
                return Ok(Some(0));
            }
            // Checked before anything is handed over; on failure the bytes are kept for later.
            let (at, got) = match self.probe(buf.len()) {
                Ok(()) => self.rf.run(&scratch[..n], buf),
                Err(e) => {
                    self.carry(&scratch[..n]);
                    return Err(e);
                }
            };
            self.carry(&scratch[at..n]);
            Ok((got > 0).then_some(got))
        })
    }
}

impl<S: Read> Reframed<S> {
    /// The pong fast path, taken only while the codec holds no bytes (see
    /// [`Reframed::codec_would_block`]). If the stream starts with a complete
    /// unfragmented pong (`protocol::keepalive_frame::front_frame`), takes it and copies its
    /// payload into `out`: `Ok(Some(len))`. `Ok(None)`: something else (or part of a frame, or
    /// EOF) comes first; the codec must read it. `WouldBlock`: nothing to read now.
    pub fn next_pong(&mut self, out: &mut [u8; 125]) -> io::Result<Option<usize>> {
        if !self.codec_idle || !self.rf.at_frame_boundary() {
            return Ok(None);
        }
        if self.start == self.end {
            // Read into the thread's scratch buffer: the common case, one pong, needs no
            // carry-over at all; anything after it (or instead of it) is carried over.
            return SCRATCH_BUF.with(|cell| {
                let Ok(mut scratch) = cell.try_borrow_mut() else {
                    return Err(io::Error::other("re-entrant read of the scratch buffer"));
                };
                let n = self.inner.read(&mut scratch[..])?;
                if n == 0 {
                    self.eof = true;
                    return Ok(None);
                }
                let mut taken = 0;
                if let FrontFrame::Pong { frame_len } = front_frame(&scratch[..n]) {
                    out[..frame_len - 2].copy_from_slice(&scratch[2..frame_len]);
                    taken = frame_len;
                }
                self.carry(&scratch[taken..n]);
                Ok((taken > 0).then_some(taken - 2))
            });
        }
        match front_frame(&self.raw[self.start..self.end]) {
            FrontFrame::Pong { frame_len } => {
                let payload = &self.raw[self.start + 2..self.start + frame_len];
                let len = payload.len();
                out[..len].copy_from_slice(payload);
                self.start += frame_len;
                if self.start == self.end {
                    self.raw = Vec::new();
                    self.start = 0;
                    self.end = 0;
                }
                Ok(Some(len))
            }
            FrontFrame::Incomplete | FrontFrame::Other => Ok(None),
        }
    }

    /// The codec's read returned a message: it may hold more bytes, no fast path until it would
    /// block again.
    pub fn codec_read_message(&mut self) {
        self.codec_idle = false;
    }

    /// The codec's read would block: it parsed every complete frame it had, so if what we gave
    /// it ends on a frame boundary it holds no bytes at all.
    pub fn codec_would_block(&mut self) {
        self.codec_idle = self.rf.at_frame_boundary();
    }
}

impl<S: Write> Reframed<S> {
    /// Writes a complete frame built outside the codec (a keep-alive), when the codec has
    /// nothing buffered. `Ok(false)`: the socket took nothing (would block); the caller writes it
    /// through the codec instead. `Ok(true)`: sent, or its unsent tail is kept and goes out
    /// before anything else (the writable event's flush finishes it).
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<bool> {
        if !self.write_tail.is_empty() {
            self.write_tail.extend_from_slice(frame);
            return Ok(true);
        }
        match self.inner.write(frame) {
            Ok(n) if n >= frame.len() => Ok(true),
            Ok(0) => Err(io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes")),
            Ok(n) => {
                self.write_tail.extend_from_slice(&frame[n..]);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends the kept tail; `WouldBlock` while some of it is left.
    fn drain_write_tail(&mut self) -> io::Result<()> {
        // Bounded: every round sends at least one byte or returns.
        while !self.write_tail.is_empty() {
            let n = self.inner.write(&self.write_tail)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes"));
            }
            self.write_tail.drain(..n);
        }
        self.write_tail = Vec::new();
        Ok(())
    }
}

impl<S> Reframed<S> {
    /// Keeps `rest` for the next read (only called with nothing carried over).
    fn carry(&mut self, rest: &[u8]) {
        if !rest.is_empty() {
            self.raw.clear();
            self.raw.extend_from_slice(rest);
            self.start = 0;
            self.end = self.raw.len();
        }
    }
}

impl<S: Write> Write for Reframed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.drain_write_tail()?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.drain_write_tail()?;
        self.inner.flush()
    }
}

impl<S> Deref for Reframed<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.inner
    }
}
impl<S> DerefMut for Reframed<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S> Reframed<S> {
    /// The re-framer (tests and fuzzing use other fragment sizes).
    pub fn reframer_mut(&mut self) -> &mut Reframer {
        &mut self.rf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `chunks` one per read, then `WouldBlock`.
    struct Chunks(std::collections::VecDeque<Vec<u8>>);
    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(mut c) = self.0.pop_front() else { return Err(io::ErrorKind::WouldBlock.into()) };
            let n = c.len().min(buf.len());
            buf[..n].copy_from_slice(&c[..n]);
            if n < c.len() {
                self.0.push_front(c.split_off(n));
            }
            Ok(n)
        }
    }

    /// Unmasked server frames: a pong, a binary frame of `len` bytes.
    fn frames(len: usize) -> Vec<u8> {
        let mut v = vec![0x8a, 0x02, 1, 2, 0x82, 126];
        v.extend_from_slice(&(len as u16).to_be_bytes());
        v.extend((0..len).map(|i| i as u8));
        v
    }

    /// Reads everything through `rf` in reads of `size` bytes until `WouldBlock` (bounded).
    fn drain(rf: &mut Reframed<Chunks>, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; size];
        for _ in 0..100_000 {
            match rf.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no WouldBlock")
    }

    #[test]
    fn small_reads_see_the_same_bytes_and_nothing_is_carried_when_idle() {
        let bytes = frames(5000);
        for (split, size) in [(1, 7), (3, 256), (6000, 14), (6000, 256), (6000, 8192)] {
            let chunks = bytes.chunks(split).map(<[u8]>::to_vec).collect();
            let mut rf = Reframed::new(Chunks(chunks), Vec::new(), None);
            assert_eq!(drain(&mut rf, size), bytes, "split {split}, reads of {size}");
            assert_eq!(rf.raw.capacity(), 0, "idle connection keeps a carry-over");
        }
    }

    #[test]
    fn the_upgrade_tail_is_read_first() {
        let bytes = frames(300);
        let (tail, rest) = bytes.split_at(100);
        let mut rf = Reframed::new(Chunks([rest.to_vec()].into()), tail.to_vec(), None);
        assert_eq!(drain(&mut rf, 64), bytes);
        assert_eq!(rf.raw.capacity(), 0);
    }
}

#[cfg(test)]
mod write_tests {
    use super::*;

    /// A socket that takes at most `room` bytes per write, then would block once.
    struct Tight {
        got: Vec<u8>,
        room: usize,
        blocked: bool,
    }
    impl Read for Tight {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
    impl Write for Tight {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.blocked {
                self.blocked = false;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn direct_frame_tail_goes_out_before_later_writes() {
        let mut r = Reframed::new(Tight { got: Vec::new(), room: 5, blocked: false }, Vec::new(), None);
        assert!(r.write_frame(b"0123456789abcd").expect("sent or carried"));
        assert_eq!(r.got, b"01234");
        // A later codec write first finishes the frame (5 bytes a round), then writes its own.
        r.inner.room = 100;
        assert_eq!(r.write(b"XY").expect("write"), 2);
        assert_eq!(r.got, b"0123456789abcdXY");
        // Would block at once: nothing is taken, the caller falls back to the codec.
        r.inner.blocked = true;
        assert!(!r.write_frame(b"zz").expect("no error"));
        assert_eq!(r.got, b"0123456789abcdXY");
        // A carried tail makes flush report would-block until it is out.
        r.inner.room = 1;
        assert!(r.write_frame(b"pq").expect("carried"));
        r.inner.blocked = true;
        assert_eq!(r.flush().map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
        r.inner.room = 10;
        assert!(r.flush().is_ok());
        assert_eq!(r.got, b"0123456789abcdXYpq");
    }
}

#[cfg(test)]
mod fast_pong_tests {
    use super::*;
    use std::collections::VecDeque;
    use tungstenite::protocol::Role;
    use tungstenite::{Message, WebSocket};

    /// Scripted server bytes: `None` = would block once; an empty script would block forever.
    struct Script(VecDeque<Option<Vec<u8>>>);
    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                Some(Some(mut b)) => {
                    let n = b.len().min(buf.len());
                    buf[..n].copy_from_slice(&b[..n]);
                    if n < b.len() {
                        self.0.push_front(Some(b.split_off(n)));
                    }
                    Ok(n)
                }
                _ => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }
    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn pong(seq: u8) -> Vec<u8> {
        vec![0x8A, 1, seq]
    }

    /// The reactor's read loop (open.rs) over a script: which bytes took the fast path.
    fn drive(script: Vec<Option<Vec<u8>>>) -> Vec<String> {
        let r = Reframed::new(Script(script.into()), Vec::new(), None);
        let mut ws = WebSocket::from_raw_socket(r, Role::Client, None);
        let mut log = Vec::new();
        for _ in 0..100 {
            if ws.get_ref().inner.0.is_empty() && log.last().is_some_and(|l| l == "block") {
                break;
            }
            let mut p = [0u8; 125];
            match ws.get_mut().next_pong(&mut p) {
                Ok(Some(n)) => {
                    log.push(format!("fast {:?}", &p[..n]));
                    continue;
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    log.push("block".into());
                    continue;
                }
                Err(e) => {
                    log.push(format!("io {e}"));
                    break;
                }
            }
            match ws.read() {
                Ok(m) => {
                    ws.get_mut().codec_read_message();
                    log.push(match m {
                        Message::Pong(p) => format!("codec pong {:?}", &p[..]),
                        Message::Text(t) => format!("codec text {}", t.as_str()),
                        other => format!("codec {other:?}"),
                    });
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    ws.get_mut().codec_would_block();
                    log.push("block".into());
                }
                Err(e) => {
                    log.push(format!("error {e}"));
                    break;
                }
            }
        }
        log
    }

    #[test]
    fn pongs_take_the_fast_path_only_in_front_of_an_idle_codec() {
        let mut two = pong(2);
        two.extend_from_slice(&[0x81, 2, b'h', b'i']);
        let log = drive(vec![
            Some(pong(9)), // the codec has not blocked yet: it decodes this one
            None,
            Some(pong(1)),
            None,
            Some(two),
            None,
            Some(vec![0x8A]), // a pong split after its first byte
            None,
            Some(vec![1, 3]),
            None,
            Some(pong(4)),
        ]);
        assert_eq!(
            log,
            [
                "codec pong [9]",
                "block",
                "fast [1]",
                "block",
                "fast [2]",
                "codec text hi",
                "block",
                "block",
                "codec pong [3]",
                "block",
                "fast [4]",
                "block"
            ]
        );
    }

    #[test]
    fn masked_oversized_and_fragmented_pongs_go_to_the_codec_which_rejects_them() {
        let masked = vec![0x8A, 0x81, 1, 2, 3, 4, 5];
        let log = drive(vec![None, Some(masked)]);
        assert_eq!(log[0], "block");
        assert!(log[1].starts_with("error") && log[1].contains("mask"), "{log:?}");
        let mut big = vec![0x8A, 126, 0, 200];
        big.extend_from_slice(&[0; 200]);
        let log = drive(vec![None, Some(big)]);
        assert!(log[1].starts_with("error"), "{log:?}");
        let log = drive(vec![None, Some(vec![0x0A, 1, 7])]);
        assert!(log[1].starts_with("error"), "{log:?}");
    }

    #[test]
    fn eof_seen_by_the_fast_path_reaches_the_codec() {
        let log = drive(vec![None, Some(Vec::new())]);
        assert_eq!(log[0], "block");
        assert!(log[1].starts_with("error"), "EOF must surface: {log:?}");
    }
}
