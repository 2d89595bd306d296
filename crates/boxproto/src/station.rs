//! The station's end of the protocol (feature `std`): a [`Station`] talks to
//! one box over any byte stream (a serial port, QEMU's UART socket, a
//! simulator) and refuses what the box should not have sent.
//!
//! Each call sends one request with the next sequence number and reads
//! frames until its response arrives. A response with a bad CRC, another
//! version, a length that does not fit, the wrong sequence number or the
//! wrong kind is refused ([`StationError`]); the caller then starts over
//! with [`Station::identify`] (`docs/box-protocol.md` §2).

use std::io::{self, Read, Write};

use crate::frame::{encode_frame, Decoder, FrameError, Progress, FRAME_OVERHEAD, MAX_PAYLOAD};
use crate::msg::{
    BoxStatus, ErrorCode, Identity, KeyResult, Provision, Request, Response, ERROR_KIND,
    RESPONSE_BIT,
};

const CAP: usize = MAX_PAYLOAD + FRAME_OVERHEAD;

/// Why a call failed.
#[derive(Debug)]
pub enum StationError {
    /// Reading or writing the line failed (including a read timeout).
    Io(io::Error),
    /// The box refused the request.
    Refused(ErrorCode),
    /// A frame from the box was refused (bad CRC, version, length).
    Frame(FrameError),
    /// A well-formed frame that is not the answer to this request.
    Unexpected {
        /// Its kind.
        kind: u8,
        /// Its sequence number.
        seq: u8,
    },
    /// The response's payload does not parse.
    Payload(ErrorCode),
    /// The export does not echo the challenge just sent.
    Challenge,
}

impl std::fmt::Display for StationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StationError::Io(e) => write!(f, "box line: {e}"),
            StationError::Refused(c) => write!(f, "the box refused: {c:?}"),
            StationError::Frame(e) => write!(f, "bad frame from the box: {e:?}"),
            StationError::Unexpected { kind, seq } => {
                write!(
                    f,
                    "unexpected frame from the box (kind {kind:#04x}, seq {seq})"
                )
            }
            StationError::Payload(c) => write!(f, "bad response payload: {c:?}"),
            StationError::Challenge => f.write_str("the export does not echo the challenge"),
        }
    }
}

impl std::error::Error for StationError {}

impl From<io::Error> for StationError {
    fn from(e: io::Error) -> Self {
        StationError::Io(e)
    }
}

/// One box on a line.
pub struct Station<T: Read + Write> {
    io: T,
    rx: Box<Decoder<CAP>>,
    seq: u8,
}

impl<T: Read + Write> Station<T> {
    /// A station on `io` (set a read timeout on it: a call waits for its
    /// response as long as a read blocks).
    pub fn new(io: T) -> Station<T> {
        Station {
            io,
            rx: Box::new(Decoder::new()),
            seq: 0,
        }
    }

    /// The line.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Sends `req` and returns the response's kind and payload.
    pub fn call(&mut self, req: &Request<'_>) -> Result<(u8, Vec<u8>), StationError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut payload = [0u8; 160];
        let n = req
            .encode(&mut payload)
            .ok_or(StationError::Payload(ErrorCode::Length))?;
        let mut frame = [0u8; 160 + FRAME_OVERHEAD];
        let m = encode_frame(req.kind(), seq, &payload[..n], &mut frame)
            .ok_or(StationError::Payload(ErrorCode::Length))?;
        self.rx.reset();
        self.io.write_all(&frame[..m])?;
        self.io.flush()?;
        let mut b = [0u8; 1];
        loop {
            self.io.read_exact(&mut b)?;
            match self.rx.push(b[0]) {
                Progress::Pending => {}
                Progress::Error(e, _) => return Err(StationError::Frame(e)),
                Progress::Frame(h) => {
                    let want = req.kind() | RESPONSE_BIT;
                    let kind_ok = h.kind == want
                        || h.kind == ERROR_KIND
                        || (want == crate::msg::KIND_PROVISION | RESPONSE_BIT
                            && h.kind == crate::msg::KIND_STATUS | RESPONSE_BIT);
                    if h.seq != seq || !kind_ok {
                        return Err(StationError::Unexpected {
                            kind: h.kind,
                            seq: h.seq,
                        });
                    }
                    let p = self.rx.payload().to_vec();
                    if let Response::Error { code, .. } =
                        Response::decode(h.kind, &p).map_err(StationError::Payload)?
                    {
                        return Err(StationError::Refused(code));
                    }
                    return Ok((h.kind, p));
                }
            }
        }
    }

    fn typed<R>(
        &mut self,
        req: &Request<'_>,
        pick: impl FnOnce(Response<'_>) -> Option<R>,
    ) -> Result<R, StationError> {
        let (kind, p) = self.call(req)?;
        let r = Response::decode(kind, &p).map_err(StationError::Payload)?;
        pick(r).ok_or(StationError::Unexpected {
            kind,
            seq: self.seq,
        })
    }

    /// Identify (also (re)starts the box's session).
    pub fn identify(&mut self) -> Result<Identity, StationError> {
        self.typed(&Request::Identify, |r| match r {
            Response::Identity(i) => Some(i),
            _ => None,
        })
    }

    /// Provision a load; returns the box's status, for the caller to check.
    pub fn provision(&mut self, p: &Provision<'_>) -> Result<BoxStatus, StationError> {
        self.typed(&Request::Provision(*p), |r| match r {
            Response::Status(s) => Some(s),
            _ => None,
        })
    }

    /// Status.
    pub fn status(&mut self) -> Result<BoxStatus, StationError> {
        self.typed(&Request::Status, |r| match r {
            Response::Status(s) => Some(s),
            _ => None,
        })
    }

    /// Type keys (tests and service).
    pub fn keys(&mut self, now: u64, keys: &[u8]) -> Result<KeyResult, StationError> {
        self.typed(&Request::Keys { now, keys }, |r| match r {
            Response::Keys(k) => Some(k),
            _ => None,
        })
    }

    /// Export with `challenge`; returns the `AXLG` bytes (verify them with
    /// `lockcode::verify_log` and check the export record's challenge).
    pub fn export(&mut self, now: u64, challenge: u32) -> Result<Vec<u8>, StationError> {
        let r = self.typed(&Request::Export { now, challenge }, |r| match r {
            Response::Export { challenge, log } => Some((challenge, log.to_vec())),
            _ => None,
        })?;
        if r.0 != challenge {
            return Err(StationError::Challenge);
        }
        Ok(r.1)
    }

    /// Wipe the (exported) load `load_id`.
    pub fn wipe(&mut self, load_id: u64) -> Result<(), StationError> {
        self.typed(&Request::Wipe { load_id }, |r| match r {
            Response::Wiped => Some(()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::KIND_STATUS;
    use std::io::Cursor;

    /// A line whose box answers with the canned bytes.
    struct Canned {
        reply: Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }
    impl Read for Canned {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            match self.reply.read(b)? {
                0 => Err(io::ErrorKind::TimedOut.into()),
                n => Ok(n),
            }
        }
    }
    impl Write for Canned {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn status_frame(seq: u8, corrupt: bool) -> Vec<u8> {
        let s = BoxStatus {
            state: crate::BoxState::Empty,
            box_id: 4,
            load_id: 0,
            compartments: 0,
            digits: 0,
            start_day: 0,
            opened: 0,
            consecutive_failures: 0,
            lifetime_failures: 0,
            locked_until: 0,
            log_records: 0,
            now: 0,
        };
        let mut p = [0u8; 64];
        let n = Response::Status(s).encode(&mut p).unwrap_or(0);
        let mut f = vec![0u8; n + FRAME_OVERHEAD];
        let m = encode_frame(KIND_STATUS | RESPONSE_BIT, seq, &p[..n], &mut f).unwrap_or(0);
        if corrupt {
            f[m - 1] ^= 1;
        }
        f
    }

    fn station(reply: Vec<u8>) -> Station<Canned> {
        Station::new(Canned {
            reply: Cursor::new(reply),
            sent: Vec::new(),
        })
    }

    #[test]
    fn the_answer_is_read() {
        let mut s = station(status_frame(1, false));
        assert!(matches!(s.status(), Ok(b) if b.box_id == 4));
        assert_eq!(s.get_mut().sent[3], KIND_STATUS);
    }

    #[test]
    fn bad_crc_wrong_seq_and_silence_are_refused() {
        let mut s = station(status_frame(1, true));
        assert!(matches!(
            s.status(),
            Err(StationError::Frame(FrameError::BadCrc))
        ));
        let mut s = station(status_frame(9, false));
        assert!(matches!(
            s.status(),
            Err(StationError::Unexpected { seq: 9, .. })
        ));
        let mut s = station(Vec::new());
        assert!(matches!(s.status(), Err(StationError::Io(_))));
    }

    #[test]
    fn a_refusal_is_an_error() {
        let mut p = [0u8; 4];
        let n = Response::Error {
            code: ErrorCode::Loaded,
            kind: 2,
        }
        .encode(&mut p)
        .unwrap_or(0);
        let mut f = vec![0u8; n + FRAME_OVERHEAD];
        encode_frame(ERROR_KIND, 1, &p[..n], &mut f);
        let mut s = station(f);
        let secret = [1u8; 20];
        let r = s.provision(&Provision {
            load_id: 1,
            box_id: 4,
            start_day: 1,
            compartments: 2,
            digits: 8,
            now: 0,
            secret: &secret,
        });
        assert!(matches!(r, Err(StationError::Refused(ErrorCode::Loaded))));
    }
}
