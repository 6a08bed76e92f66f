//! Keep-alive frames built without the generic encoder: a client ping is always 14 bytes
//! (`0x89`, `0x88` = masked, 8-byte payload, the 4-byte masking key, the masked big-endian
//! sequence number) and an unsolicited pong 6 bytes (`0x8A 0x80` and the key). RFC 6455 §5.2,
//! §5.3: every client frame is masked; the key comes from the caller (the runtime's CSPRNG).

/// Length of a keep-alive ping frame.
pub const PING_LEN: usize = 14;
/// Length of an empty (unsolicited) pong frame.
pub const EMPTY_PONG_LEN: usize = 6;

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

#[cfg(test)]
mod tests {
    use super::*;

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
