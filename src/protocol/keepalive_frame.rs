//! Keep-alive frames built without the generic encoder: a client ping is always 14 bytes
//! (`0x89`, `0x88` = masked, 8-byte payload, the 4-byte masking key, the masked big-endian
//! sequence number) and an unsolicited pong 6 bytes (`0x8A 0x80` and the key). RFC 6455 §5.2,
//! §5.3: every client frame is masked; the key comes from the caller (the runtime's CSPRNG).
//!
//! Inbound, [`front_frame`] recognises the common keep-alive answer, a complete unfragmented
//! unmasked pong of at most 125 bytes, so the runtime can take it without the generic decoder;
//! everything else is left to the decoder.

/// Length of a keep-alive ping frame.
pub(crate) const PING_LEN: usize = 14;
/// Length of an empty (unsolicited) pong frame.
pub(crate) const EMPTY_PONG_LEN: usize = 6;

/// The masked ping frame whose payload is `seq` (big-endian), as a pong must echo it.
pub fn ping_frame(seq: u64, mask: [u8; 4]) -> [u8; PING_LEN] {
    let mut f = [0u8; PING_LEN];
    f[0] = 0x89; // FIN + ping
    f[1] = 0x80 | 8; // masked, 8 bytes
    f[2..6].copy_from_slice(&mask);
    for (i, b) in seq.to_be_bytes().iter().enumerate() {
        f[6 + i] = b ^ mask[i % 4];
    }
    f
}

/// The masked empty pong frame (UNSOLICITED_PONG keep-alive).
pub fn empty_pong_frame(mask: [u8; 4]) -> [u8; EMPTY_PONG_LEN] {
    [0x8A, 0x80, mask[0], mask[1], mask[2], mask[3]]
}

/// What the front of the server's byte stream holds, for the pong fast path.
#[derive(Debug, PartialEq, Eq)]
pub enum FrontFrame {
    /// A complete, final, unmasked pong without RSV bits, `frame_len` bytes long, whose payload
    /// is `bytes[2..frame_len]` (at most 125 bytes).
    Pong { frame_len: usize },
    /// It may become such a pong, but not all of it is here yet.
    Incomplete,
    /// Anything else: data, another control frame, a fragmented or masked or oversized pong,
    /// RSV bits. The generic decoder handles it (and rejects what RFC 6455 forbids: a server must
    /// not mask, §5.1; control frames are final and carry at most 125 bytes, §5.5).
    Other,
}

/// Classifies the first frame of `bytes` (which must start at a frame boundary).
pub fn front_frame(bytes: &[u8]) -> FrontFrame {
    let Some(&b0) = bytes.first() else { return FrontFrame::Incomplete };
    if b0 != 0x8A {
        return FrontFrame::Other; // FIN + pong, no RSV bits
    }
    let Some(&b1) = bytes.get(1) else { return FrontFrame::Incomplete };
    if b1 & 0x80 != 0 || b1 & 0x7f > 125 {
        return FrontFrame::Other; // masked, or a 16/64-bit length
    }
    let frame_len = 2 + usize::from(b1);
    if bytes.len() < frame_len {
        return FrontFrame::Incomplete;
    }
    FrontFrame::Pong { frame_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pong(payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x8A, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn complete_pong_is_recognised_with_its_length() {
        let f = pong(&7u64.to_be_bytes());
        assert_eq!(front_frame(&f), FrontFrame::Pong { frame_len: 10 });
        assert_eq!(front_frame(&pong(b"")), FrontFrame::Pong { frame_len: 2 });
        assert_eq!(front_frame(&pong(&[1; 125])), FrontFrame::Pong { frame_len: 127 });
        // Followed by more bytes: only the first frame counts.
        let mut two = f.clone();
        two.extend_from_slice(&[0x81, 0x01, b'x']);
        assert_eq!(front_frame(&two), FrontFrame::Pong { frame_len: 10 });
        assert_eq!(front_frame(&two[10..]), FrontFrame::Other);
    }

    #[test]
    fn every_split_of_a_pong_is_incomplete_until_its_last_byte() {
        let f = pong(&0xDEAD_BEEFu64.to_be_bytes());
        for cut in 0..f.len() {
            assert_eq!(front_frame(&f[..cut]), FrontFrame::Incomplete, "prefix of {cut} bytes");
        }
        assert_eq!(front_frame(&f), FrontFrame::Pong { frame_len: f.len() });
    }

    #[test]
    fn what_the_fast_path_must_not_take_goes_to_the_decoder() {
        // Masked pong from a server (RFC 6455 §5.1: the client must fail the connection).
        assert_eq!(front_frame(&[0x8A, 0x88, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]), FrontFrame::Other);
        // Payload over 125 bytes, 16- and 64-bit lengths (invalid control frames).
        assert_eq!(front_frame(&[0x8A, 126, 0, 200]), FrontFrame::Other);
        assert_eq!(front_frame(&[0x8A, 127, 0, 0, 0, 0, 0, 0, 1, 0]), FrontFrame::Other);
        // Not final (a fragmented control frame), RSV bits, other opcodes, continuation.
        assert_eq!(front_frame(&[0x0A, 0x00]), FrontFrame::Other);
        assert_eq!(front_frame(&[0xCA, 0x00]), FrontFrame::Other);
        assert_eq!(front_frame(&[0x89, 0x00]), FrontFrame::Other);
        assert_eq!(front_frame(&[0x82, 0x01, 0]), FrontFrame::Other);
        assert_eq!(front_frame(&[0x80, 0x01, 0]), FrontFrame::Other);
        assert_eq!(front_frame(&[0x88, 0x00]), FrontFrame::Other);
    }

    #[test]
    fn ping_bytes_match_rfc6455_layout() {
        let f = ping_frame(0x0102_0304_0506_0708, [0xA0, 0xB0, 0xC0, 0xD0]);
        assert_eq!(
            f,
            [
                0x89,
                0x88,
                0xA0,
                0xB0,
                0xC0,
                0xD0,
                0x01 ^ 0xA0,
                0x02 ^ 0xB0,
                0x03 ^ 0xC0,
                0x04 ^ 0xD0,
                0x05 ^ 0xA0,
                0x06 ^ 0xB0,
                0x07 ^ 0xC0,
                0x08 ^ 0xD0
            ]
        );
        // A zero mask leaves the payload readable.
        let z = ping_frame(42, [0; 4]);
        assert_eq!(&z[6..], &42u64.to_be_bytes());
    }

    /// The frame parses as the ping the generic encoder would have produced.
    #[test]
    fn ping_decodes_with_tungstenite() {
        use std::io::Cursor;
        use tungstenite::protocol::frame::coding::{Control, OpCode};
        use tungstenite::protocol::frame::FrameHeader;
        let f = ping_frame(7, [1, 2, 3, 4]);
        let mut cur = Cursor::new(&f[..]);
        let (hdr, len) = FrameHeader::parse(&mut cur).ok().flatten().expect("a complete header");
        assert!(hdr.is_final);
        assert_eq!(hdr.opcode, OpCode::Control(Control::Ping));
        assert_eq!(hdr.mask, Some([1, 2, 3, 4]));
        assert_eq!(len, 8);
        let mut payload = f[6..].to_vec();
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= [1, 2, 3, 4][i % 4];
        }
        assert_eq!(payload, 7u64.to_be_bytes());
    }

    #[test]
    fn empty_pong_is_masked() {
        assert_eq!(empty_pong_frame([9, 8, 7, 6]), [0x8A, 0x80, 9, 8, 7, 6]);
    }
}
