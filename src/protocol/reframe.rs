//! A sans-I/O re-framer for the bytes a server sends: it splits a large data frame into
//! continuation fragments of at most `chunk` payload bytes before tungstenite sees them.
//!
//! Why: tungstenite reserves a frame's whole claimed length as soon as it has parsed the frame
//! header (bounded only by `max_frame_size`), so a header claiming 1 GiB allocates 1 GiB before
//! a single payload byte arrived, and an allocation failure aborts the process. After the
//! re-framer no frame tungstenite parses claims more than `chunk` bytes; the message still
//! accumulates (as bytes arrive) under `max_message_size`, which fails cleanly with 1009.
//!
//! The transformation keeps the meaning of the stream (RFC 6455 §5.4 allows any fragmentation
//! of a data message): the first fragment keeps the opcode and the RSV bits, later ones are
//! continuations, the last one carries the original FIN bit, a masking key is rotated so each
//! fragment unmasks to the same bytes. Frames it must not touch pass verbatim, so tungstenite
//! reports the same error as before and as early as before:
//! - frames of at most `chunk` bytes (every control frame of a valid stream);
//! - lengths with the most significant bit set (a protocol error, RFC 6455 §5.2);
//! - lengths over `max_frame` (the configured limit: 1009 at the header, as before).
//!
//! A control frame claiming more than `chunk` bytes is split like data (keeping its first
//! byte): tungstenite rejects the first fragment (too big or fragmented control frame).

/// The default largest fragment handed to tungstenite.
pub(crate) const DEFAULT_CHUNK: u64 = 64 * 1024;

/// Longest frame header: 2 + 8 (64-bit length) + 4 (masking key).
const MAX_HEADER: usize = 14;

/// The re-framer's state (see the module docs).
#[derive(Debug, Clone)]
pub struct Reframer {
    chunk: u64,
    max_frame: u64,
    /// The original header being collected.
    hdr: [u8; MAX_HEADER],
    hdr_len: usize,
    /// The header to emit (original or synthesized) and how much of it went out.
    out: [u8; MAX_HEADER],
    out_len: usize,
    out_pos: usize,
    /// The frame being split: None while a frame passes verbatim.
    split: Option<Split>,
    /// Payload bytes of the original frame not yet assigned to a fragment.
    left: u64,
    /// Payload bytes of the current (emitted) fragment not yet forwarded.
    frag_left: u64,
    /// Whether the current frame is a data frame (counts towards `message_bytes`).
    data: bool,
    message_bytes: u64,
    message_seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    byte0: u8,
    fin: bool,
    control: bool,
    mask: Option<[u8; 4]>,
    total: u64,
    first: bool,
}

impl Default for Reframer {
    fn default() -> Self {
        Reframer::new(DEFAULT_CHUNK, None)
    }
}

impl Reframer {
    /// `chunk`: the largest fragment emitted (at least 126, so a valid control frame never
    /// splits); `max_frame`: frames claiming more pass verbatim (tungstenite rejects them).
    pub fn new(chunk: u64, max_frame: Option<usize>) -> Self {
        Reframer {
            chunk: chunk.max(126),
            max_frame: max_frame.map_or(u64::MAX, |m| m as u64),
            hdr: [0; MAX_HEADER],
            hdr_len: 0,
            out: [0; MAX_HEADER],
            out_len: 0,
            out_pos: 0,
            split: None,
            left: 0,
            frag_left: 0,
            data: false,
            message_bytes: 0,
            message_seq: 0,
        }
    }

    /// Payload bytes of the current data message forwarded so far.
    pub fn message_bytes(&self) -> u64 {
        self.message_bytes
    }

    /// Increases with every data message started (a data frame that is not a continuation).
    pub fn message_seq(&self) -> u64 {
        self.message_seq
    }

    /// Whether the next output bytes are data-frame payload.
    pub fn in_data_payload(&self) -> bool {
        self.data && self.out_pos == self.out_len && self.frag_left > 0
    }

    /// Everything emitted so far ends on a frame boundary and no header is being collected: the
    /// next input byte starts a frame (what the pong fast path needs).
    pub fn at_frame_boundary(&self) -> bool {
        self.hdr_len == 0 && self.out_pos == self.out_len && self.frag_left == 0 && self.left == 0
    }

    /// How many payload bytes may be forwarded verbatim right now (0 while a header is due).
    pub fn payload_window(&self) -> usize {
        if self.out_pos < self.out_len {
            return 0;
        }
        usize::try_from(self.frag_left).unwrap_or(usize::MAX)
    }

    /// `n` payload bytes (at most `payload_window()`) were forwarded verbatim.
    pub fn passed(&mut self, n: usize) {
        let n = (n as u64).min(self.frag_left);
        self.frag_left -= n;
        if self.data {
            self.message_bytes = self.message_bytes.saturating_add(n);
        }
        self.next_fragment();
    }

    /// Consumes `input`, writes the re-framed stream to `output`. Returns (consumed, produced);
    /// stops when either side is exhausted.
    pub fn run(&mut self, input: &[u8], output: &mut [u8]) -> (usize, usize) {
        let (mut i, mut o) = (0, 0);
        while o < output.len() {
            if self.out_pos < self.out_len {
                let n = (self.out_len - self.out_pos).min(output.len() - o);
                output[o..o + n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                o += n;
                continue;
            }
            if self.frag_left > 0 {
                let n = self.payload_window().min(input.len() - i).min(output.len() - o);
                if n == 0 {
                    break;
                }
                output[o..o + n].copy_from_slice(&input[i..i + n]);
                i += n;
                o += n;
                self.passed(n);
                continue;
            }
            let Some(&b) = input.get(i) else { break };
            i += 1;
            self.hdr[self.hdr_len] = b;
            self.hdr_len += 1;
            if self.hdr_len == header_len(&self.hdr[..self.hdr_len]) {
                self.on_header();
            }
        }
        (i, o)
    }

    fn on_header(&mut self) {
        let h = &self.hdr[..self.hdr_len];
        let (b0, b1) = (h[0], h[1]);
        let opcode = b0 & 0x0f;
        let control = opcode & 0x08 != 0;
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let len = match ext {
            0 => u64::from(b1 & 0x7f),
            _ => h[2..2 + ext].iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
        };
        let mask = (b1 & 0x80 != 0).then(|| {
            let m = &h[2 + ext..2 + ext + 4];
            [m[0], m[1], m[2], m[3]]
        });
        self.data = !control;
        if self.data && opcode != 0 {
            self.message_seq = self.message_seq.wrapping_add(1);
            self.message_bytes = 0;
        }
        let verbatim = len <= self.chunk || len >> 63 != 0 || len > self.max_frame;
        self.hdr_len = 0;
        if verbatim {
            self.out[..h.len()].copy_from_slice(h);
            self.out_len = h.len();
            self.out_pos = 0;
            self.split = None;
            self.left = 0;
            self.frag_left = len;
            return;
        }
        self.split = Some(Split { byte0: b0, fin: b0 & 0x80 != 0, control, mask, total: len, first: true });
        self.left = len;
        self.next_fragment();
    }

    /// Starts the next fragment of a split frame once the current one is forwarded.
    fn next_fragment(&mut self) {
        if self.frag_left > 0 || self.left == 0 {
            return;
        }
        let Some(s) = self.split.as_mut() else { return };
        let n = self.left.min(self.chunk);
        let last = n == self.left;
        let offset = s.total - self.left;
        let b0 = if s.control {
            s.byte0
        } else {
            let fin = if last && s.fin { 0x80 } else { 0 };
            let op_rsv = if s.first { s.byte0 & 0x7f } else { 0 };
            fin | op_rsv
        };
        s.first = false;
        let mut out = [0u8; MAX_HEADER];
        out[0] = b0;
        let mask_bit = if s.mask.is_some() { 0x80 } else { 0 };
        let mut k = 2;
        if n < 126 {
            out[1] = mask_bit | n as u8;
        } else if n <= 0xffff {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            k = 4;
        } else {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&n.to_be_bytes());
            k = 10;
        }
        if let Some(m) = s.mask {
            for j in 0..4 {
                out[k + j] = m[(offset as usize + j) % 4];
            }
            k += 4;
        }
        self.out = out;
        self.out_len = k;
        self.out_pos = 0;
        self.left -= n;
        self.frag_left = n;
    }
}

/// The full length of the header whose first bytes are `h` (at least 2 once known).
fn header_len(h: &[u8]) -> usize {
    if h.len() < 2 {
        return 2;
    }
    let ext = match h[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if h[1] & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

#[cfg(test)]
#[path = "reframe_tests.rs"]
mod tests;
