use super::*;

/// Runs `input` through a re-framer in pieces of `step` bytes, output buffers of `out_step`.
fn reframe(r: &mut Reframer, input: &[u8], step: usize, out_step: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in input.chunks(step.max(1)) {
        let mut rest = piece;
        loop {
            let mut buf = vec![0u8; out_step.max(1)];
            let (c, p) = r.run(rest, &mut buf);
            out.extend_from_slice(&buf[..p]);
            rest = &rest[c..];
            if rest.is_empty() && p < buf.len() {
                break;
            }
        }
    }
    out
}

fn frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        f.push(m | n as u8);
    } else if n <= 0xffff {
        f.push(m | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(m | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// (first byte, unmasked payload) of every frame in `bytes`.
fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut v = Vec::new();
    while bytes.len() >= 2 {
        let hl = header_len(bytes);
        let ext = hl - 2 - if bytes[1] & 0x80 != 0 { 4 } else { 0 };
        let len = match ext {
            0 => (bytes[1] & 0x7f) as usize,
            _ => bytes[2..2 + ext].iter().fold(0usize, |a, &x| (a << 8) | x as usize),
        };
        let mut p = bytes[hl..hl + len].to_vec();
        if bytes[1] & 0x80 != 0 {
            let k = &bytes[hl - 4..hl];
            p.iter_mut().enumerate().for_each(|(i, b)| *b ^= k[i % 4]);
        }
        v.push((bytes[0], p));
        bytes = &bytes[hl + len..];
    }
    v
}

#[test]
fn small_frames_pass_verbatim() {
    let mut input = frame(0x81, None, b"hello");
    input.extend(frame(0x89, None, b"ping"));
    input.extend(frame(0x02, None, &[7; 300]));
    input.extend(frame(0x80, None, &[8; 10]));
    for step in [1, 2, 3, 7, 1000] {
        let mut r = Reframer::new(1024, None);
        assert_eq!(reframe(&mut r, &input, step, 5), input);
    }
}

#[test]
fn a_large_frame_becomes_bounded_fragments_with_the_same_payload() {
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    for mask in [None, Some([1, 2, 3, 4])] {
        let input = frame(0xc2, mask, &payload); // FIN + RSV1 + binary
        for step in [1, 13, 4096] {
            let mut r = Reframer::new(1000, None);
            let out = reframe(&mut r, &input, step, 777);
            let fr = frames(&out);
            assert_eq!(fr.len(), 10);
            assert_eq!(fr[0].0, 0x42, "first: opcode + RSV, no FIN");
            assert!(fr[1..9].iter().all(|f| f.0 == 0x00), "middle: continuations");
            assert_eq!(fr[9].0, 0x80, "last: FIN continuation");
            assert!(fr.iter().all(|f| f.1.len() <= 1000));
            assert_eq!(fr.into_iter().flat_map(|f| f.1).collect::<Vec<_>>(), payload);
            assert_eq!(r.message_bytes(), 10_000);
        }
    }
}

#[test]
fn a_large_unfinished_frame_stays_unfinished_and_continuations_stay_continuations() {
    let mut input = frame(0x01, None, &[b'a'; 2500]);
    input.extend(frame(0x80, None, &[b'b'; 2500]));
    let mut r = Reframer::new(1000, None);
    let fr = frames(&reframe(&mut r, &input, 100, 100));
    let firsts: Vec<u8> = fr.iter().map(|f| f.0).collect();
    assert_eq!(firsts, [0x01, 0, 0, 0, 0, 0x80]);
    assert_eq!(r.message_seq(), 1);
    assert_eq!(r.message_bytes(), 5000);
}

#[test]
fn a_huge_claim_reserves_nothing_and_msb_or_over_limit_pass_verbatim() {
    // 1 GiB claimed: only a bounded fragment header comes out, whatever arrives later.
    let mut hdr = vec![0x82, 127];
    hdr.extend_from_slice(&(1u64 << 30).to_be_bytes());
    let mut r = Reframer::new(DEFAULT_CHUNK, Some(2 << 30));
    let out = reframe(&mut r, &hdr, 1, 64);
    assert_eq!(out[..2], [0x02, 127]);
    assert_eq!(u64::from_be_bytes(out[2..10].try_into().unwrap()), DEFAULT_CHUNK);
    assert_eq!(r.payload_window(), DEFAULT_CHUNK as usize);

    let msb = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(reframe(&mut Reframer::new(1000, None), &msb, 1, 3), msb);
    let over = frame(0x82, None, &[0; 5000]);
    assert_eq!(reframe(&mut Reframer::new(1000, Some(4000)), &over, 9, 9), over);
}

/// tungstenite reads the same messages (or the same kind of error) from the re-framed stream.
#[test]
fn tungstenite_reads_the_same_messages() {
    use std::io::{Cursor, Read, Write};
    use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
    struct Duplex(Cursor<Vec<u8>>);
    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(b)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let text: String = "héllo wörld ✓ ".repeat(300);
    let mut input = frame(0x01, None, &text.as_bytes()[..1001]);
    input.extend(frame(0x89, None, b"p"));
    input.extend(frame(0x80, None, &text.as_bytes()[1001..]));
    input.extend(frame(0x82, None, &[9; 3333]));
    input.extend(frame(0x88, None, &[0x03, 0xe8]));
    let read_all = |bytes: Vec<u8>| {
        let cfg = WebSocketConfig::default().max_message_size(Some(1 << 20)).max_frame_size(Some(1 << 20));
        let mut ws = WebSocket::from_raw_socket(Duplex(Cursor::new(bytes)), Role::Client, Some(cfg));
        let mut v = Vec::new();
        loop {
            match ws.read() {
                Ok(m) => v.push(format!("{m:?}")),
                Err(e) => {
                    v.push(format!("{e}"));
                    break;
                }
            }
        }
        v
    };
    let mut r = Reframer::new(200, Some(1 << 20));
    let out = reframe(&mut r, &input, 17, 333);
    assert!(frames(&out).iter().all(|f| f.1.len() <= 200));
    assert_eq!(read_all(out), read_all(input));
}
