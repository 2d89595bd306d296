//! `boxproto` is the wire protocol between an Anxin take-home lock box and the
//! clinic's box station (specified in `docs/box-protocol.md`).
//!
//! It is `#![no_std]` and never allocates, so the box firmware (`firmware/`),
//! the simulator and the server-side box station share one implementation:
//!
//! * [`frame`]: the frame (`A5 5A`, version, kind, sequence number, length,
//!   payload, CRC-32), [`encode_frame`] and the streaming [`Decoder`] that
//!   resynchronises after garbage;
//! * [`msg`]: the requests ([`Request`]) and responses ([`Response`]) carried in
//!   frames, with their fixed byte layouts;
//! * [`Session`]: the box's ordering rule (identify first, then consecutive
//!   sequence numbers);
//! * `station` (feature `std`, on by default; the firmware turns it off): the
//!   station's end, a blocking client over any byte stream.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

pub mod frame;
pub mod msg;
#[cfg(feature = "std")]
pub mod station;

pub use frame::{
    crc32, encode_frame, seal_frame_in_place, Decoder, FrameError, FrameHead, Progress,
    FRAME_OVERHEAD, HEADER_LEN, MAX_PAYLOAD, SOF, VERSION,
};
pub use msg::{
    BoxState, BoxStatus, ErrorCode, Identity, KeyOutcome, KeyResult, Provision, Request, Response,
    ERROR_KIND, RESPONSE_BIT,
};

/// The box's ordering rule for requests within one power-up.
///
/// An `Identify` is always accepted and (re)starts the session; every other
/// request must follow an `Identify` and carry the next sequence number
/// (previous + 1, wrapping). Anything else is refused as out of order, so a
/// replayed or duplicated frame cannot act twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Session {
    expected: Option<u8>,
}

impl Session {
    /// A session that has seen no `Identify` yet.
    pub const fn new() -> Session {
        Session { expected: None }
    }

    /// Checks (and on success consumes) the sequence number `seq` of a
    /// request of `kind`. Returns false for an out-of-order request, leaving
    /// the session unchanged.
    pub fn accept(&mut self, kind: u8, seq: u8) -> bool {
        if kind == msg::KIND_IDENTIFY {
            self.expected = Some(seq.wrapping_add(1));
            return true;
        }
        match self.expected {
            Some(e) if e == seq => {
                self.expected = Some(seq.wrapping_add(1));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_wants_identify_then_consecutive_numbers() {
        let mut s = Session::new();
        assert!(!s.accept(msg::KIND_STATUS, 0));
        assert!(s.accept(msg::KIND_IDENTIFY, 7));
        assert!(s.accept(msg::KIND_STATUS, 8));
        assert!(!s.accept(msg::KIND_STATUS, 8), "a duplicate is refused");
        assert!(!s.accept(msg::KIND_STATUS, 10), "a gap is refused");
        assert!(s.accept(msg::KIND_STATUS, 9), "refusals leave it unchanged");
        assert!(s.accept(msg::KIND_IDENTIFY, 255));
        assert!(s.accept(msg::KIND_STATUS, 0), "wraps");
    }
}
