//! The stream tungstenite reads: our [`Stream`] (any `Read + Write` for the fuzz targets) behind the sans-I/O [`Reframer`], so no frame
//! header makes tungstenite reserve more than a bounded fragment, plus an allocation probe so
//! that a message the process cannot hold fails its connection instead of aborting the process.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::ops::{Deref, DerefMut};

use super::stream::Stream;
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
}

impl<S: Read> Reframed<S> {
    /// `tail`: bytes read after the upgrade response (they go through the re-framer too).
    pub fn new(inner: S, tail: Vec<u8>, max_frame_size: Option<usize>) -> Self {
        let end = tail.len();
        let raw = tail;
        Reframed { inner, rf: Reframer::new(DEFAULT_CHUNK, max_frame_size), raw, start: 0, end, probed: (0, 0) }
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
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
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
