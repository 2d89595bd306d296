//! Messages: the payloads of frames, by kind. All integers big-endian; every
//! request and response has a fixed length (the export and provision carry a
//! length-checked tail). A response's kind is its request's kind with bit 7
//! set; an error is kind [`ERROR_KIND`].

/// Request kinds.
pub const KIND_IDENTIFY: u8 = 0x01;
/// Provision a load.
pub const KIND_PROVISION: u8 = 0x02;
/// Read the status.
pub const KIND_STATUS: u8 = 0x03;
/// Type keys on the keypad (tests and service).
pub const KIND_KEYS: u8 = 0x04;
/// Export the signed log with the centre's challenge.
pub const KIND_EXPORT: u8 = 0x05;
/// Wipe the (exported) load.
pub const KIND_WIPE: u8 = 0x06;
/// Set in a response's kind.
pub const RESPONSE_BIT: u8 = 0x80;
/// The error response's kind.
pub const ERROR_KIND: u8 = 0xFF;

/// Longest secret (as in `lockcode`).
pub const SECRET_MAX: usize = 64;
/// Most keys in one [`Request::Keys`].
pub const KEYS_MAX: usize = 32;

/// What the box holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxState {
    /// No load: may be provisioned.
    Empty = 0,
    /// A load that has not been read back.
    Loaded = 1,
    /// A load whose log was exported at least once: may be wiped.
    Exported = 2,
}

impl BoxState {
    fn from_u8(b: u8) -> Option<BoxState> {
        match b {
            0 => Some(BoxState::Empty),
            1 => Some(BoxState::Loaded),
            2 => Some(BoxState::Exported),
            _ => None,
        }
    }
}

/// Why a request was refused (the payload of an error frame: code, then the
/// refused frame's kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame's CRC did not match.
    BadCrc = 1,
    /// Unsupported protocol version.
    Version = 2,
    /// Frame longer than accepted, or a payload of the wrong length.
    Length = 3,
    /// Not after an `Identify`, or not the next sequence number.
    OutOfOrder = 4,
    /// Unknown request kind.
    UnknownKind = 5,
    /// A field out of range (compartments, digits, secret length, keys).
    BadValue = 6,
    /// The box still holds a load that was not returned (exported and wiped).
    Loaded = 7,
    /// The box holds no load.
    Empty = 8,
    /// Writing the box's storage failed; nothing changed.
    Storage = 9,
    /// Wipe before the load's log was exported.
    NotExported = 10,
    /// The load or box id does not match the box.
    WrongId = 11,
}

impl ErrorCode {
    /// From its byte.
    pub fn from_u8(b: u8) -> Option<ErrorCode> {
        use ErrorCode::*;
        Some(match b {
            1 => BadCrc,
            2 => Version,
            3 => Length,
            4 => OutOfOrder,
            5 => UnknownKind,
            6 => BadValue,
            7 => Loaded,
            8 => Empty,
            9 => Storage,
            10 => NotExported,
            11 => WrongId,
            _ => return None,
        })
    }
}

/// Provisioning parameters of one load.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Provision<'a> {
    /// The load.
    pub load_id: u64,
    /// The box (must equal the box's serial).
    pub box_id: u64,
    /// Day number of compartment 0.
    pub start_day: u32,
    /// 2..=6.
    pub compartments: u8,
    /// 6..=9.
    pub digits: u8,
    /// The station's clock (seconds), to set the box clock.
    pub now: u64,
    /// 20..=64 bytes.
    pub secret: &'a [u8],
}

impl core::fmt::Debug for Provision<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Provision")
            .field("load_id", &self.load_id)
            .field("box_id", &self.box_id)
            .field("start_day", &self.start_day)
            .field("compartments", &self.compartments)
            .field("digits", &self.digits)
            .field("now", &self.now)
            .field("secret", &"***")
            .finish()
    }
}

/// A request from the station to the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Who are you? (Also starts a session.)
    Identify,
    /// Load a box.
    Provision(Provision<'a>),
    /// Status read.
    Status,
    /// Keys typed on the keypad (ASCII `0`-`9`, `*`, `#`) at time `now`.
    Keys {
        /// Station clock, seconds (the box never lets its clock go back).
        now: u64,
        /// Up to [`KEYS_MAX`] keys.
        keys: &'a [u8],
    },
    /// Export the signed log.
    Export {
        /// Station clock, seconds.
        now: u64,
        /// The centre's fresh challenge (ends up inside the MACed export).
        challenge: u32,
    },
    /// Forget the load (only once exported).
    Wipe {
        /// Must be the load the box holds.
        load_id: u64,
    },
}

/// The answer to `Identify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The box's serial (its `box_id`).
    pub serial: u64,
    /// Firmware version major, minor, patch.
    pub firmware: [u8; 3],
    /// What it holds.
    pub state: BoxState,
    /// The load it holds, 0 if empty.
    pub load_id: u64,
}

/// The answer to `Status` and `Provision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxStatus {
    /// What it holds.
    pub state: BoxState,
    /// The box.
    pub box_id: u64,
    /// The load (0 if empty; then all below are 0).
    pub load_id: u64,
    /// Compartments.
    pub compartments: u8,
    /// Code digits.
    pub digits: u8,
    /// Day of compartment 0.
    pub start_day: u32,
    /// Bit i = compartment i opened.
    pub opened: u8,
    /// Consecutive failures.
    pub consecutive_failures: u32,
    /// All failures of the load.
    pub lifetime_failures: u32,
    /// Locked out until (box seconds), 0 if not locked out.
    pub locked_until: u64,
    /// Log records written.
    pub log_records: u32,
    /// The box clock.
    pub now: u64,
}

/// The result of a code entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    /// No code completed (keys buffered).
    None = 0,
    /// Opened `compartment`.
    Opened = 1,
    /// Wrong code; `failures` consecutive, `until` set if a lockout started.
    WrongCode = 2,
    /// Locked out until `until`; not compared.
    LockedOut = 3,
    /// That compartment was already opened.
    AlreadyUsed = 4,
    /// A valid code outside its day.
    WrongDay = 5,
    /// Bad keypad input (too many or too few digits, a non-key).
    Keypad = 6,
}

impl KeyOutcome {
    fn from_u8(b: u8) -> Option<KeyOutcome> {
        use KeyOutcome::*;
        Some(match b {
            0 => None,
            1 => Opened,
            2 => WrongCode,
            3 => LockedOut,
            4 => AlreadyUsed,
            5 => WrongDay,
            6 => Keypad,
            _ => return Option::None,
        })
    }
}

/// The answer to `Keys`: the last code entry completed by these keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyResult {
    /// Entries (`#`) completed by this request.
    pub entries: u8,
    /// Outcome of the last.
    pub outcome: KeyOutcome,
    /// Compartment (0xFF = none).
    pub compartment: u8,
    /// Consecutive failures after it.
    pub failures: u32,
    /// Lockout end, 0 if none.
    pub until: u64,
}

/// A response from the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// To `Identify`.
    Identity(Identity),
    /// To `Status` and `Provision`.
    Status(BoxStatus),
    /// To `Keys`.
    Keys(KeyResult),
    /// To `Export`: the challenge echoed and the `AXLG` log bytes.
    Export {
        /// The request's challenge.
        challenge: u32,
        /// The export (`docs/lockcode.md` §5.3).
        log: &'a [u8],
    },
    /// To `Wipe`.
    Wiped,
    /// Refused: why, and the refused frame's kind.
    Error {
        /// Why.
        code: ErrorCode,
        /// The refused frame's kind.
        kind: u8,
    },
}

struct W<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl W<'_> {
    fn put(&mut self, b: &[u8]) -> Option<()> {
        let end = self.at.checked_add(b.len())?;
        self.out.get_mut(self.at..end)?.copy_from_slice(b);
        self.at = end;
        Some(())
    }
    fn u8(&mut self, v: u8) -> Option<()> {
        self.put(&[v])
    }
    fn u32(&mut self, v: u32) -> Option<()> {
        self.put(&v.to_be_bytes())
    }
    fn u64(&mut self, v: u64) -> Option<()> {
        self.put(&v.to_be_bytes())
    }
}

struct R<'a> {
    b: &'a [u8],
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ErrorCode> {
        if self.b.len() < n {
            return Err(ErrorCode::Length);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, ErrorCode> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, ErrorCode> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, ErrorCode> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn end(&self) -> Result<(), ErrorCode> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(ErrorCode::Length)
        }
    }
}

impl<'a> Request<'a> {
    /// The frame kind.
    pub fn kind(&self) -> u8 {
        match self {
            Request::Identify => KIND_IDENTIFY,
            Request::Provision(_) => KIND_PROVISION,
            Request::Status => KIND_STATUS,
            Request::Keys { .. } => KIND_KEYS,
            Request::Export { .. } => KIND_EXPORT,
            Request::Wipe { .. } => KIND_WIPE,
        }
    }

    /// Writes the payload; returns its length (`None`: `out` too short).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let mut w = W { out, at: 0 };
        match *self {
            Request::Identify | Request::Status => {}
            Request::Provision(p) => {
                w.u64(p.load_id)?;
                w.u64(p.box_id)?;
                w.u32(p.start_day)?;
                w.u8(p.compartments)?;
                w.u8(p.digits)?;
                w.u64(p.now)?;
                w.u8(u8::try_from(p.secret.len()).ok()?)?;
                w.put(p.secret)?;
            }
            Request::Keys { now, keys } => {
                w.u64(now)?;
                w.put(keys)?;
            }
            Request::Export { now, challenge } => {
                w.u64(now)?;
                w.u32(challenge)?;
            }
            Request::Wipe { load_id } => w.u64(load_id)?,
        }
        Some(w.at)
    }

    /// Parses a request payload of `kind`. Checks lengths exactly; value
    /// ranges (compartments, digits, secret length) are the box's to check.
    pub fn decode(kind: u8, p: &'a [u8]) -> Result<Request<'a>, ErrorCode> {
        let mut r = R { b: p };
        let req = match kind {
            KIND_IDENTIFY => Request::Identify,
            KIND_STATUS => Request::Status,
            KIND_PROVISION => {
                let load_id = r.u64()?;
                let box_id = r.u64()?;
                let start_day = r.u32()?;
                let compartments = r.u8()?;
                let digits = r.u8()?;
                let now = r.u64()?;
                let n = r.u8()?;
                let secret = r.take(usize::from(n))?;
                Request::Provision(Provision {
                    load_id,
                    box_id,
                    start_day,
                    compartments,
                    digits,
                    now,
                    secret,
                })
            }
            KIND_KEYS => {
                let now = r.u64()?;
                let keys = r.take(r.b.len())?;
                if keys.len() > KEYS_MAX {
                    return Err(ErrorCode::Length);
                }
                Request::Keys { now, keys }
            }
            KIND_EXPORT => Request::Export {
                now: r.u64()?,
                challenge: r.u32()?,
            },
            KIND_WIPE => Request::Wipe { load_id: r.u64()? },
            _ => return Err(ErrorCode::UnknownKind),
        };
        r.end()?;
        Ok(req)
    }
}

impl<'a> Response<'a> {
    /// The frame kind.
    pub fn kind(&self) -> u8 {
        match self {
            Response::Identity(_) => KIND_IDENTIFY | RESPONSE_BIT,
            Response::Status(_) => KIND_STATUS | RESPONSE_BIT,
            Response::Keys(_) => KIND_KEYS | RESPONSE_BIT,
            Response::Export { .. } => KIND_EXPORT | RESPONSE_BIT,
            Response::Wiped => KIND_WIPE | RESPONSE_BIT,
            Response::Error { .. } => ERROR_KIND,
        }
    }

    /// Writes the payload; returns its length (`None`: `out` too short).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let mut w = W { out, at: 0 };
        match *self {
            Response::Identity(i) => {
                w.u64(i.serial)?;
                w.put(&i.firmware)?;
                w.u8(i.state as u8)?;
                w.u64(i.load_id)?;
            }
            Response::Status(s) => {
                w.u8(s.state as u8)?;
                w.u64(s.box_id)?;
                w.u64(s.load_id)?;
                w.u8(s.compartments)?;
                w.u8(s.digits)?;
                w.u32(s.start_day)?;
                w.u8(s.opened)?;
                w.u32(s.consecutive_failures)?;
                w.u32(s.lifetime_failures)?;
                w.u64(s.locked_until)?;
                w.u32(s.log_records)?;
                w.u64(s.now)?;
            }
            Response::Keys(k) => {
                w.u8(k.entries)?;
                w.u8(k.outcome as u8)?;
                w.u8(k.compartment)?;
                w.u32(k.failures)?;
                w.u64(k.until)?;
            }
            Response::Export { challenge, log } => {
                w.u32(challenge)?;
                w.put(log)?;
            }
            Response::Wiped => {}
            Response::Error { code, kind } => {
                w.u8(code as u8)?;
                w.u8(kind)?;
            }
        }
        Some(w.at)
    }

    /// Parses a response payload of `kind`.
    pub fn decode(kind: u8, p: &'a [u8]) -> Result<Response<'a>, ErrorCode> {
        let mut r = R { b: p };
        let bad = ErrorCode::BadValue;
        let resp = match kind {
            k if k == KIND_IDENTIFY | RESPONSE_BIT => Response::Identity(Identity {
                serial: r.u64()?,
                firmware: {
                    let f = r.take(3)?;
                    [f[0], f[1], f[2]]
                },
                state: BoxState::from_u8(r.u8()?).ok_or(bad)?,
                load_id: r.u64()?,
            }),
            k if k == KIND_STATUS | RESPONSE_BIT => Response::Status(BoxStatus {
                state: BoxState::from_u8(r.u8()?).ok_or(bad)?,
                box_id: r.u64()?,
                load_id: r.u64()?,
                compartments: r.u8()?,
                digits: r.u8()?,
                start_day: r.u32()?,
                opened: r.u8()?,
                consecutive_failures: r.u32()?,
                lifetime_failures: r.u32()?,
                locked_until: r.u64()?,
                log_records: r.u32()?,
                now: r.u64()?,
            }),
            k if k == KIND_KEYS | RESPONSE_BIT => Response::Keys(KeyResult {
                entries: r.u8()?,
                outcome: KeyOutcome::from_u8(r.u8()?).ok_or(bad)?,
                compartment: r.u8()?,
                failures: r.u32()?,
                until: r.u64()?,
            }),
            k if k == KIND_EXPORT | RESPONSE_BIT => Response::Export {
                challenge: r.u32()?,
                log: r.take(r.b.len())?,
            },
            k if k == KIND_WIPE | RESPONSE_BIT => Response::Wiped,
            ERROR_KIND => Response::Error {
                code: ErrorCode::from_u8(r.u8()?).ok_or(bad)?,
                kind: r.u8()?,
            },
            _ => return Err(ErrorCode::UnknownKind),
        };
        r.end()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provision_round_trips_and_hides_the_secret() {
        let secret = [7u8; 32];
        let req = Request::Provision(Provision {
            load_id: 9,
            box_id: 4,
            start_day: 20_790,
            compartments: 6,
            digits: 8,
            now: 1_796_000_000,
            secret: &secret,
        });
        let mut buf = [0u8; 128];
        let n = req.encode(&mut buf).expect("fits");
        assert_eq!(n, 8 + 8 + 4 + 1 + 1 + 8 + 1 + 32);
        assert_eq!(Request::decode(KIND_PROVISION, &buf[..n]), Ok(req));
        assert_eq!(
            Request::decode(KIND_PROVISION, &buf[..n - 1]),
            Err(ErrorCode::Length)
        );
        let mut text = [0u8; 256];
        let mut w = Wr(&mut text, 0);
        core::fmt::write(&mut w, format_args!("{req:?}")).expect("fits");
        let shown = &w.0[..w.1];
        assert!(!shown.windows(2).any(|p| p == b"7,"), "no secret bytes");
    }

    struct Wr<'a>(&'a mut [u8], usize);
    impl core::fmt::Write for Wr<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let b = s.as_bytes();
            let end = self.1 + b.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(b);
            self.1 = end;
            Ok(())
        }
    }

    #[test]
    fn wrong_lengths_and_kinds_are_refused() {
        assert_eq!(Request::decode(KIND_STATUS, &[0]), Err(ErrorCode::Length));
        assert_eq!(Request::decode(KIND_WIPE, &[0; 7]), Err(ErrorCode::Length));
        assert_eq!(Request::decode(0x42, &[]), Err(ErrorCode::UnknownKind));
        assert_eq!(
            Request::decode(KIND_KEYS, &[0; 8 + KEYS_MAX + 1]),
            Err(ErrorCode::Length)
        );
    }
}
