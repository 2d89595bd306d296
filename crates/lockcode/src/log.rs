//! The box's event log: 40-byte records chained by HMAC-SHA-256 tags, the
//! export format, and [`verify_log`] for the server.

use core::fmt;

use subtle::ConstantTimeEq;

use crate::code::{Secret, LABEL, PURPOSE_LOG};

/// Records kept in the box's ring buffer (older ones roll off; the chain
/// continues through an anchor tag).
pub const LOG_CAPACITY: usize = 64;
/// Bytes of a record body (everything but the tag).
pub const BODY_LEN: usize = 24;
/// Bytes of a record tag (HMAC-SHA-256 truncated).
pub const TAG_LEN: usize = 16;
/// Bytes of a record.
pub const ENTRY_LEN: usize = BODY_LEN + TAG_LEN;
/// Bytes of the export header.
pub const EXPORT_HEADER_LEN: usize = 40;
/// Largest export.
pub const EXPORT_MAX_LEN: usize = EXPORT_HEADER_LEN + LOG_CAPACITY * ENTRY_LEN;
/// Magic of an exported log.
pub const EXPORT_MAGIC: &[u8; 4] = b"AXLG";
/// Version byte of an exported log.
pub const EXPORT_VERSION: u8 = 1;
/// `compartment` byte of records that concern no compartment.
pub const NO_COMPARTMENT: u8 = 0xFF;

/// What a log record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// Load provisioned. compartment = number of compartments, a = digits,
    /// b = start day, c = day-binding late days + 1 (0 = no RTC binding).
    Provisioned = 1,
    /// Compartment opened. a = consecutive failures before, b = today's day
    /// number (0xFFFFFFFF without RTC binding).
    Opened = 2,
    /// Wrong code. a = consecutive failures (saturating at 65535),
    /// b = lifetime failures.
    Failed = 3,
    /// Lockout started at `time`. a = lockout level, b = seconds.
    Lockout = 4,
    /// A code of an already opened compartment was typed (refused).
    AlreadyUsed = 5,
    /// A valid code typed outside its day (refused). b = today's day number.
    WrongDay = 6,
    /// Power was lost during an attempt; counted as a failure.
    /// a = consecutive failures, b = lifetime failures.
    Interrupted = 7,
    /// Lid tamper switch.
    Tamper = 8,
    /// Log exported. compartment = opened bitmask, a = records in this
    /// export (including this one), b = challenge, c = lifetime failures.
    Export = 9,
}

impl EventKind {
    /// Parses a kind byte.
    pub fn from_u8(b: u8) -> Option<EventKind> {
        Some(match b {
            1 => EventKind::Provisioned,
            2 => EventKind::Opened,
            3 => EventKind::Failed,
            4 => EventKind::Lockout,
            5 => EventKind::AlreadyUsed,
            6 => EventKind::WrongDay,
            7 => EventKind::Interrupted,
            8 => EventKind::Tamper,
            9 => EventKind::Export,
            _ => return None,
        })
    }
}

/// One decoded log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in the load's log, from 0.
    pub seq: u32,
    /// Box time (seconds) of the event.
    pub time: u64,
    /// What happened.
    pub kind: EventKind,
    /// Compartment index, or 0xFF (see [`EventKind`] for exceptions).
    pub compartment: u8,
    /// Kind-specific field.
    pub a: u16,
    /// Kind-specific field.
    pub b: u32,
    /// Kind-specific field.
    pub c: u32,
}

impl LogEntry {
    /// The 24-byte record body.
    pub fn body(&self) -> [u8; BODY_LEN] {
        let mut b = [0u8; BODY_LEN];
        b[0..4].copy_from_slice(&self.seq.to_be_bytes());
        b[4..12].copy_from_slice(&self.time.to_be_bytes());
        b[12] = self.kind as u8;
        b[13] = self.compartment;
        b[14..16].copy_from_slice(&self.a.to_be_bytes());
        b[16..20].copy_from_slice(&self.b.to_be_bytes());
        b[20..24].copy_from_slice(&self.c.to_be_bytes());
        b
    }

    /// Decodes a record body; `None` for an unknown kind.
    pub fn from_body(b: &[u8; BODY_LEN]) -> Option<LogEntry> {
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[4..12]);
        Some(LogEntry {
            seq: u32_at(0),
            time: u64::from_be_bytes(t),
            kind: EventKind::from_u8(b[12])?,
            compartment: b[13],
            a: u16::from_be_bytes([b[14], b[15]]),
            b: u32_at(16),
            c: u32_at(20),
        })
    }
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} t={} ", self.seq, self.time)?;
        match self.kind {
            EventKind::Provisioned => write!(
                f,
                "provisioned: {} compartments, {} digits, start day {}",
                self.compartment, self.a, self.b
            ),
            EventKind::Opened => write!(f, "opened compartment {}", self.compartment),
            EventKind::Failed => write!(f, "failed attempt ({} consecutive)", self.a),
            EventKind::Lockout => write!(f, "lockout level {} for {} s", self.a, self.b),
            EventKind::AlreadyUsed => write!(
                f,
                "refused already-used code of compartment {}",
                self.compartment
            ),
            EventKind::WrongDay => write!(
                f,
                "refused code of compartment {} on wrong day {}",
                self.compartment, self.b
            ),
            EventKind::Interrupted => {
                write!(
                    f,
                    "attempt interrupted by power loss ({} consecutive)",
                    self.a
                )
            }
            EventKind::Tamper => f.write_str("lid tamper"),
            EventKind::Export => write!(
                f,
                "export: {} records, opened mask {:#08b}, challenge {}, {} failures",
                self.a, self.compartment, self.b, self.c
            ),
        }
    }
}

/// Tag of a record: the first 16 bytes of
/// `HMAC-SHA-256(secret, LABEL || 0x02 || box_id u64 BE || load_id u64 BE || prev_tag(16) || body(24))`.
pub fn record_tag(
    secret: &Secret,
    box_id: u64,
    load_id: u64,
    prev_tag: &[u8; TAG_LEN],
    body: &[u8; BODY_LEN],
) -> [u8; TAG_LEN] {
    let mac = secret.hmac(&[
        LABEL,
        &[PURPOSE_LOG],
        &box_id.to_be_bytes(),
        &load_id.to_be_bytes(),
        prev_tag,
        body,
    ]);
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&mac[..TAG_LEN]);
    t
}

/// Why an exported log was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Shorter than a header plus one record, or length not header + n × 40.
    #[error("log has a bad length ({0} bytes)")]
    Length(usize),
    /// Not an Anxin log.
    #[error("not an exported lock box log (bad magic)")]
    Magic,
    /// Unknown version.
    #[error("unsupported log version {0}")]
    Version(u8),
    /// Header fields inconsistent (count, reserved bytes).
    #[error("log header is inconsistent")]
    Header,
    /// Log of another box.
    #[error("log is from another box ({0})")]
    WrongBox(u64),
    /// Log of another load.
    #[error("log is from another load ({0})")]
    WrongLoad(u64),
    /// Sequence numbers not consecutive at record `index`.
    #[error("record {index}: sequence gap or reorder")]
    Sequence {
        /// Position in the export.
        index: usize,
    },
    /// MAC mismatch at record `index` (modified, removed or forged records).
    #[error("record {index}: bad MAC (log modified or forged)")]
    BadTag {
        /// Position in the export.
        index: usize,
    },
    /// Unknown event kind at record `index`.
    #[error("record {index}: unknown event kind")]
    Kind {
        /// Position in the export.
        index: usize,
    },
    /// Time decreased at record `index`.
    #[error("record {index}: time goes backwards")]
    Time {
        /// Position in the export.
        index: usize,
    },
    /// The log starts at record 0 but the anchor is not all zeros, or record 0
    /// is not a provisioning record.
    #[error("log start is inconsistent")]
    Start,
    /// The last record is not an export record (tail truncated).
    #[error("log does not end with an export record (truncated)")]
    NotExported,
    /// The export record's count disagrees with the records present.
    #[error("export record counts {expected} records, log has {got}")]
    Count {
        /// Count in the export record.
        expected: u16,
        /// Records present.
        got: usize,
    },
}

/// Summary of a verified log (from its export record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSummary {
    /// Sequence number of the first record present (records before it rolled
    /// off the box's ring).
    pub first_seq: u32,
    /// Records present.
    pub records: usize,
    /// Bit i = compartment i opened, at export time.
    pub opened_mask: u8,
    /// All failed attempts of the load.
    pub lifetime_failures: u32,
    /// Challenge typed in at export.
    pub challenge: u32,
    /// Box time of the export.
    pub exported_at: u64,
}

/// A verified exported log; iterate its records with [`entries`](Self::entries).
#[derive(Clone, Copy)]
pub struct VerifiedLog<'a> {
    records: &'a [u8],
    summary: LogSummary,
}

impl fmt::Debug for VerifiedLog<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedLog")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl<'a> VerifiedLog<'a> {
    /// The summary.
    pub fn summary(&self) -> LogSummary {
        self.summary
    }

    /// The records, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = LogEntry> + 'a {
        self.records.chunks_exact(ENTRY_LEN).filter_map(|c| {
            let mut body = [0u8; BODY_LEN];
            body.copy_from_slice(&c[..BODY_LEN]);
            LogEntry::from_body(&body)
        })
    }
}

/// Verifies an exported log of load `load_id` of box `box_id`: header,
/// consecutive sequence numbers, every record's chained tag, time order, and a
/// final export record whose count matches. Never panics on any input.
pub fn verify_log<'a>(
    secret: &Secret,
    box_id: u64,
    load_id: u64,
    bytes: &'a [u8],
) -> Result<VerifiedLog<'a>, LogError> {
    if bytes.len() < EXPORT_HEADER_LEN + ENTRY_LEN
        || (bytes.len() - EXPORT_HEADER_LEN) % ENTRY_LEN != 0
        || bytes.len() > EXPORT_MAX_LEN
    {
        return Err(LogError::Length(bytes.len()));
    }
    let (header, records) = bytes.split_at(EXPORT_HEADER_LEN);
    if &header[0..4] != EXPORT_MAGIC {
        return Err(LogError::Magic);
    }
    if header[4] != EXPORT_VERSION {
        return Err(LogError::Version(header[4]));
    }
    let n = records.len() / ENTRY_LEN;
    if usize::from(header[5]) != n || header[6] != 0 || header[7] != 0 {
        return Err(LogError::Header);
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&header[8..16]);
    let hdr_box = u64::from_be_bytes(id);
    id.copy_from_slice(&header[16..24]);
    let hdr_load = u64::from_be_bytes(id);
    if hdr_box != box_id {
        return Err(LogError::WrongBox(hdr_box));
    }
    if hdr_load != load_id {
        return Err(LogError::WrongLoad(hdr_load));
    }
    let mut prev = [0u8; TAG_LEN];
    prev.copy_from_slice(&header[24..40]);

    let mut first_seq = 0u32;
    let mut last_time = 0u64;
    let mut last: Option<LogEntry> = None;
    for (index, rec) in records.chunks_exact(ENTRY_LEN).enumerate() {
        let mut body = [0u8; BODY_LEN];
        body.copy_from_slice(&rec[..BODY_LEN]);
        let tag = record_tag(secret, box_id, load_id, &prev, &body);
        if !bool::from(tag.ct_eq(&rec[BODY_LEN..])) {
            return Err(LogError::BadTag { index });
        }
        let entry = LogEntry::from_body(&body).ok_or(LogError::Kind { index })?;
        if index == 0 {
            first_seq = entry.seq;
            let anchor_zero = prev.iter().all(|&b| b == 0);
            if (entry.seq == 0) != (entry.kind == EventKind::Provisioned)
                || (entry.seq == 0 && !anchor_zero)
            {
                return Err(LogError::Start);
            }
        } else {
            if Some(entry.seq) != first_seq.checked_add(index as u32) {
                return Err(LogError::Sequence { index });
            }
            if entry.time < last_time {
                return Err(LogError::Time { index });
            }
        }
        last_time = entry.time;
        prev = tag;
        last = Some(entry);
    }
    let last = last.ok_or(LogError::Length(bytes.len()))?;
    if last.kind != EventKind::Export {
        return Err(LogError::NotExported);
    }
    if usize::from(last.a) != n {
        return Err(LogError::Count {
            expected: last.a,
            got: n,
        });
    }
    Ok(VerifiedLog {
        records,
        summary: LogSummary {
            first_seq,
            records: n,
            opened_mask: last.compartment,
            lifetime_failures: last.c,
            challenge: last.b,
            exported_at: last.time,
        },
    })
}
