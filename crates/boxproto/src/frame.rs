//! Frames: `A5 5A | version | kind | seq | len (u16 BE) | payload | CRC-32 (BE)`.
//!
//! The CRC is CRC-32/IEEE (zlib's `crc32`) over the bytes from `version`
//! through the end of the payload. The header layout is fixed for every
//! version, so a frame of an unknown version can still be delimited and
//! refused.

/// Start-of-frame bytes.
pub const SOF: [u8; 2] = [0xA5, 0x5A];
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes before the payload: SOF (2), version, kind, seq, length (2).
pub const HEADER_LEN: usize = 7;
/// Header plus CRC.
pub const FRAME_OVERHEAD: usize = HEADER_LEN + 4;
/// Longest payload any v1 frame carries (an export: 4 + 2600 bytes).
pub const MAX_PAYLOAD: usize = 2608;

const CRC_NIBBLES: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32/IEEE (reflected, poly 0xEDB88320, init and xorout 0xFFFFFFFF);
/// `crc32(b"123456789") == 0xCBF43926`. Nibble table: 64 bytes of flash.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        c = CRC_NIBBLES[(c & 0xf) as usize] ^ (c >> 4);
        c = CRC_NIBBLES[(c & 0xf) as usize] ^ (c >> 4);
    }
    c ^ 0xFFFF_FFFF
}

/// Why bytes on the line were not a usable frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The CRC does not match.
    BadCrc,
    /// The frame is of another protocol version (it was delimited and its
    /// CRC checked, but it is not understood).
    Version(u8),
    /// The declared length is longer than this end accepts.
    Length(u16),
}

/// The header of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// Message kind.
    pub kind: u8,
    /// Sequence number (a response echoes its request's).
    pub seq: u8,
    /// Payload length.
    pub len: u16,
}

/// Writes one frame into `out`; returns its length, or `None` if `out` is
/// too short or the payload longer than [`MAX_PAYLOAD`].
pub fn encode_frame(kind: u8, seq: u8, payload: &[u8], out: &mut [u8]) -> Option<usize> {
    let n = payload.len();
    if n > MAX_PAYLOAD || out.len() < n + FRAME_OVERHEAD {
        return None;
    }
    out[0..2].copy_from_slice(&SOF);
    out[2] = VERSION;
    out[3] = kind;
    out[4] = seq;
    out[5..7].copy_from_slice(&(n as u16).to_be_bytes());
    out[HEADER_LEN..HEADER_LEN + n].copy_from_slice(payload);
    let crc = crc32(&out[2..HEADER_LEN + n]);
    out[HEADER_LEN + n..HEADER_LEN + n + 4].copy_from_slice(&crc.to_be_bytes());
    Some(n + FRAME_OVERHEAD)
}

/// Seals a frame whose payload (`len` bytes) the caller already wrote at
/// `out[HEADER_LEN..]` (so a large payload is not copied); returns the frame
/// length, or `None` if it does not fit.
pub fn seal_frame_in_place(kind: u8, seq: u8, len: usize, out: &mut [u8]) -> Option<usize> {
    if len > MAX_PAYLOAD || out.len() < len + FRAME_OVERHEAD {
        return None;
    }
    out[0..2].copy_from_slice(&SOF);
    out[2] = VERSION;
    out[3] = kind;
    out[4] = seq;
    out[5..7].copy_from_slice(&(len as u16).to_be_bytes());
    let crc = crc32(&out[2..HEADER_LEN + len]);
    out[HEADER_LEN + len..HEADER_LEN + len + 4].copy_from_slice(&crc.to_be_bytes());
    Some(len + FRAME_OVERHEAD)
}

/// What feeding the decoder produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing complete yet.
    Pending,
    /// A whole frame with a good CRC and this version; its payload is
    /// [`Decoder::payload`] until the next call.
    Frame(FrameHead),
    /// A delimited frame was refused. Call [`Decoder::poll`] until it says
    /// `Pending`: bytes after the false start may hold a good frame.
    Error(FrameError, FrameHead),
}

/// A streaming frame decoder holding at most `N` bytes (a whole frame:
/// payload up to `N - FRAME_OVERHEAD`).
///
/// It hunts for `A5 5A`, reads the header, waits for the declared length and
/// checks the CRC. After a refused frame it rescans from the byte after the
/// false start, so garbage before a frame (even garbage containing `A5 5A`)
/// costs only that garbage.
#[derive(Debug, Clone)]
pub struct Decoder<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// Bytes of the last returned frame still at the front of `buf`.
    consumed: usize,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Decoder<N> {
    /// An empty decoder.
    pub const fn new() -> Self {
        const { assert!(N > FRAME_OVERHEAD) };
        Decoder {
            buf: [0; N],
            len: 0,
            consumed: 0,
        }
    }

    /// Longest payload accepted.
    pub const fn max_payload(&self) -> usize {
        let m = N - FRAME_OVERHEAD;
        if m < MAX_PAYLOAD {
            m
        } else {
            MAX_PAYLOAD
        }
    }

    /// Forgets any partial frame (e.g. after an inter-byte timeout).
    pub fn reset(&mut self) {
        self.len = 0;
        self.consumed = 0;
    }

    /// The payload of the frame last returned as [`Progress::Frame`].
    pub fn payload(&self) -> &[u8] {
        if self.consumed < FRAME_OVERHEAD {
            return &[];
        }
        &self.buf[HEADER_LEN..self.consumed - 4]
    }

    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Feeds one byte.
    pub fn push(&mut self, b: u8) -> Progress {
        self.release();
        if self.len == N {
            // Cannot happen (lengths are checked before buffering), but never
            // overflow: drop the oldest byte.
            self.drop_front(1);
        }
        self.buf[self.len] = b;
        self.len += 1;
        self.scan()
    }

    /// Continues scanning buffered bytes without new input (after an error,
    /// or after a frame when several arrived together).
    pub fn poll(&mut self) -> Progress {
        self.release();
        self.scan()
    }

    fn release(&mut self) {
        if self.consumed > 0 {
            let c = self.consumed;
            self.consumed = 0;
            self.drop_front(c);
        }
    }

    fn scan(&mut self) -> Progress {
        // Hunt: drop bytes until the buffer starts with a (possible) SOF.
        let mut skip = 0;
        while skip < self.len {
            let rest = &self.buf[skip..self.len];
            if rest[0] == SOF[0] && (rest.len() < 2 || rest[1] == SOF[1]) {
                break;
            }
            skip += 1;
        }
        self.drop_front(skip);
        if self.len < HEADER_LEN {
            return Progress::Pending;
        }
        let head = FrameHead {
            kind: self.buf[3],
            seq: self.buf[4],
            len: u16::from_be_bytes([self.buf[5], self.buf[6]]),
        };
        if usize::from(head.len) > self.max_payload() {
            self.drop_front(1);
            return Progress::Error(FrameError::Length(head.len), head);
        }
        let total = usize::from(head.len) + FRAME_OVERHEAD;
        if self.len < total {
            return Progress::Pending;
        }
        let body_end = HEADER_LEN + usize::from(head.len);
        let crc = crc32(&self.buf[2..body_end]);
        let got = u32::from_be_bytes([
            self.buf[body_end],
            self.buf[body_end + 1],
            self.buf[body_end + 2],
            self.buf[body_end + 3],
        ]);
        if crc != got {
            self.drop_front(1);
            return Progress::Error(FrameError::BadCrc, head);
        }
        let version = self.buf[2];
        self.consumed = total;
        if version != VERSION {
            return Progress::Error(FrameError::Version(version), head);
        }
        Progress::Frame(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    fn feed<const N: usize>(d: &mut Decoder<N>, bytes: &[u8]) -> ([Option<Progress>; 8], usize) {
        let mut out = [None; 8];
        let mut k = 0;
        for &b in bytes {
            let mut p = d.push(b);
            while p != Progress::Pending {
                if k < 8 {
                    out[k] = Some(p);
                    k += 1;
                }
                p = d.poll();
            }
        }
        (out, k)
    }

    #[test]
    fn a_frame_round_trips() {
        let mut buf = [0u8; 64];
        let n = encode_frame(0x03, 9, b"hello", &mut buf).expect("fits");
        let mut d = Decoder::<64>::new();
        let mut got = None;
        for &b in &buf[..n] {
            if let Progress::Frame(h) = d.push(b) {
                got = Some(h);
                assert_eq!(d.payload(), b"hello");
            }
        }
        assert_eq!(
            got,
            Some(FrameHead {
                kind: 3,
                seq: 9,
                len: 5
            })
        );
    }

    #[test]
    fn bad_crc_is_refused_and_the_next_frame_read() {
        let mut buf = [0u8; 64];
        let n = encode_frame(0x03, 1, b"abc", &mut buf).expect("fits");
        let mut bad = buf;
        bad[8] ^= 1;
        let mut d = Decoder::<64>::new();
        let (out, k) = feed(&mut d, &bad[..n]);
        assert_eq!(k, 1);
        assert!(matches!(
            out[0],
            Some(Progress::Error(FrameError::BadCrc, _))
        ));
        let (out, k) = feed(&mut d, &buf[..n]);
        assert_eq!(k, 1);
        assert!(matches!(out[0], Some(Progress::Frame(_))));
    }

    #[test]
    fn wrong_version_and_long_length_are_refused() {
        let mut buf = [0u8; 64];
        let n = encode_frame(0x03, 1, b"abc", &mut buf).expect("fits");
        buf[2] = 2;
        let crc = crc32(&buf[2..n - 4]);
        buf[n - 4..n].copy_from_slice(&crc.to_be_bytes());
        let mut d = Decoder::<64>::new();
        let (out, _) = feed(&mut d, &buf[..n]);
        assert!(matches!(
            out[0],
            Some(Progress::Error(FrameError::Version(2), _))
        ));
        let long = [0xA5, 0x5A, 1, 3, 1, 0x01, 0x00];
        let (out, _) = feed(&mut d, &long);
        assert!(matches!(
            out[0],
            Some(Progress::Error(FrameError::Length(256), _))
        ));
    }
}
