//! The box's persistent state ([`PersistentState`]): counters, lockout, the
//! event-log ring, and its fixed-size byte form (header with a CRC-32; the
//! log ring is self-authenticating through its MAC chain).

use core::fmt;

use crate::log::{ENTRY_LEN, LOG_CAPACITY, TAG_LEN};

/// Magic at the start of a serialised state.
pub const STATE_MAGIC: &[u8; 4] = b"AXS1";
/// Length of the state header (covered by the CRC-32 stored right after it).
pub const HEADER_LEN: usize = 68;
/// Offset of the log ring in the serialised state (after header and CRC).
pub const RING_OFFSET: usize = HEADER_LEN + 4;
/// Length of a serialised state: header, CRC-32 of the header, log ring.
/// The ring is protected by its own MAC chain (checked by `LockBox::resume`).
pub const STATE_LEN: usize = RING_OFFSET + LOG_CAPACITY * ENTRY_LEN;

const FLAG_PENDING: u8 = 0x01;

/// Why a stored state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Wrong length.
    #[error("state must be {STATE_LEN} bytes, got {0}")]
    Length(usize),
    /// Wrong magic / version.
    #[error("not a lock box state (bad magic)")]
    Magic,
    /// CRC mismatch: the stored state is corrupt.
    #[error("state checksum mismatch (corrupt state)")]
    Checksum,
    /// Reserved bits or bytes are set.
    #[error("state has unknown flags or non-zero reserved bytes")]
    Reserved,
}

/// Everything the box must keep across power loss. Contains no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PersistentState {
    pub(crate) box_id: u64,
    pub(crate) load_id: u64,
    pub(crate) opened: u8,
    pub(crate) pending: bool,
    pub(crate) lockout_level: u8,
    pub(crate) consecutive_failures: u32,
    pub(crate) lifetime_failures: u32,
    pub(crate) lockout_until: u64,
    pub(crate) last_now: u64,
    pub(crate) next_seq: u32,
    pub(crate) anchor_tag: [u8; TAG_LEN],
    pub(crate) ring: [[u8; ENTRY_LEN]; LOG_CAPACITY],
}

impl fmt::Debug for PersistentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistentState")
            .field("box_id", &self.box_id)
            .field("load_id", &self.load_id)
            .field("opened", &format_args!("{:#08b}", self.opened))
            .field("pending", &self.pending)
            .field("lockout_level", &self.lockout_level)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("lifetime_failures", &self.lifetime_failures)
            .field("lockout_until", &self.lockout_until)
            .field("last_now", &self.last_now)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

const fn crc32_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
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
}

static CRC_TABLE: [u32; 256] = crc32_table();

/// CRC-32 (IEEE 802.3 / zlib `crc32`, reflected, init and xorout 0xFFFFFFFF).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}
fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

impl PersistentState {
    /// A fresh state for a newly provisioned load (empty log).
    pub(crate) fn fresh(box_id: u64, load_id: u64, now: u64) -> PersistentState {
        PersistentState {
            box_id,
            load_id,
            opened: 0,
            pending: false,
            lockout_level: 0,
            consecutive_failures: 0,
            lifetime_failures: 0,
            lockout_until: 0,
            last_now: now,
            next_seq: 0,
            anchor_tag: [0; TAG_LEN],
            ring: [[0; ENTRY_LEN]; LOG_CAPACITY],
        }
    }

    /// Box id this state belongs to.
    pub fn box_id(&self) -> u64 {
        self.box_id
    }
    /// Load id this state belongs to.
    pub fn load_id(&self) -> u64 {
        self.load_id
    }
    /// Bit `i` set = compartment `i` opened.
    pub fn opened_mask(&self) -> u8 {
        self.opened
    }
    /// Consecutive failed attempts since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
    /// All failed attempts of this load.
    pub fn lifetime_failures(&self) -> u32 {
        self.lifetime_failures
    }
    /// The box refuses codes while `now < lockout_until`.
    pub fn lockout_until(&self) -> u64 {
        self.lockout_until
    }
    /// Number of log records ever written.
    pub fn log_len(&self) -> u32 {
        self.next_seq
    }
    /// True if an attempt was charged but its result never recorded
    /// (power was lost mid-attempt).
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// The fixed-size byte form (layout in `docs/lockcode.md`).
    pub fn to_bytes(&self) -> [u8; STATE_LEN] {
        let mut b = [0u8; STATE_LEN];
        b[..RING_OFFSET].copy_from_slice(&self.header_bytes());
        b[RING_OFFSET..].copy_from_slice(self.ring_bytes());
        b
    }

    /// The first [`RING_OFFSET`] bytes of the byte form: the header and its CRC-32. With
    /// [`ring_bytes`](Self::ring_bytes) after it, the whole of
    /// [`to_bytes`](Self::to_bytes): a box with little RAM writes the two parts to flash one
    /// after the other instead of serialising 2.6 KiB on its stack.
    pub fn header_bytes(&self) -> [u8; RING_OFFSET] {
        let mut b = [0u8; RING_OFFSET];
        b[0..4].copy_from_slice(STATE_MAGIC);
        b[4..12].copy_from_slice(&self.box_id.to_be_bytes());
        b[12..20].copy_from_slice(&self.load_id.to_be_bytes());
        b[20] = self.opened;
        b[21] = if self.pending { FLAG_PENDING } else { 0 };
        b[22] = self.lockout_level;
        b[23] = 0;
        b[24..28].copy_from_slice(&self.consecutive_failures.to_be_bytes());
        b[28..32].copy_from_slice(&self.lifetime_failures.to_be_bytes());
        b[32..40].copy_from_slice(&self.lockout_until.to_be_bytes());
        b[40..48].copy_from_slice(&self.last_now.to_be_bytes());
        b[48..52].copy_from_slice(&self.next_seq.to_be_bytes());
        b[52..68].copy_from_slice(&self.anchor_tag);
        let crc = crc32(&b[..HEADER_LEN]);
        b[HEADER_LEN..RING_OFFSET].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// The log ring as it is stored, after the header (see
    /// [`header_bytes`](Self::header_bytes)).
    pub fn ring_bytes(&self) -> &[u8] {
        self.ring.as_flattened()
    }

    /// Parses [`to_bytes`](Self::to_bytes) output, checking length, magic,
    /// CRC and reserved bits.
    pub fn from_bytes(b: &[u8]) -> Result<PersistentState, StateError> {
        let mut s = PersistentState::fresh(0, 0, 0);
        s.read_bytes(b)?;
        Ok(s)
    }

    /// [`from_bytes`](Self::from_bytes) into `self`, in place; on an error `self` is unchanged.
    pub(crate) fn read_bytes(&mut self, b: &[u8]) -> Result<(), StateError> {
        if b.len() != STATE_LEN {
            return Err(StateError::Length(b.len()));
        }
        if &b[0..4] != STATE_MAGIC {
            return Err(StateError::Magic);
        }
        if crc32(&b[..HEADER_LEN]) != be_u32(b, HEADER_LEN) {
            return Err(StateError::Checksum);
        }
        if b[21] & !FLAG_PENDING != 0 || b[23] != 0 || b[20] & 0xC0 != 0 {
            return Err(StateError::Reserved);
        }
        self.box_id = be_u64(b, 4);
        self.load_id = be_u64(b, 12);
        self.opened = b[20];
        self.pending = b[21] & FLAG_PENDING != 0;
        self.lockout_level = b[22];
        self.consecutive_failures = be_u32(b, 24);
        self.lifetime_failures = be_u32(b, 28);
        self.lockout_until = be_u64(b, 32);
        self.last_now = be_u64(b, 40);
        self.next_seq = be_u32(b, 48);
        self.anchor_tag.copy_from_slice(&b[52..68]);
        for (entry, chunk) in self
            .ring
            .iter_mut()
            .zip(b[RING_OFFSET..].chunks_exact(ENTRY_LEN))
        {
            entry.copy_from_slice(chunk);
        }
        Ok(())
    }

    /// Starts over in place for a newly provisioned load (empty log).
    pub(crate) fn reset(&mut self, box_id: u64, load_id: u64, now: u64) {
        self.box_id = box_id;
        self.load_id = load_id;
        self.opened = 0;
        self.pending = false;
        self.lockout_level = 0;
        self.consecutive_failures = 0;
        self.lifetime_failures = 0;
        self.lockout_until = 0;
        self.last_now = now;
        self.next_seq = 0;
        self.anchor_tag = [0; TAG_LEN];
        for r in self.ring.iter_mut() {
            r.fill(0);
        }
    }
}

/// What an operation may change in a [`PersistentState`], kept to undo it after a failed
/// write without a copy of the whole state: the counters, the anchor and the ring slots of
/// the next `UNDO_SLOTS` records.
#[derive(Clone, Copy)]
pub(crate) struct Undo {
    opened: u8,
    pending: bool,
    lockout_level: u8,
    consecutive_failures: u32,
    lifetime_failures: u32,
    lockout_until: u64,
    last_now: u64,
    next_seq: u32,
    anchor_tag: [u8; TAG_LEN],
    slots: [[u8; ENTRY_LEN]; UNDO_SLOTS],
}

/// Records one operation appends at most (an interrupted attempt and its lockout, then the
/// operation's own record).
pub(crate) const UNDO_SLOTS: usize = 3;

impl Undo {
    /// What `s` holds now.
    pub(crate) fn of(s: &PersistentState) -> Undo {
        let mut slots = [[0u8; ENTRY_LEN]; UNDO_SLOTS];
        for (k, slot) in slots.iter_mut().enumerate() {
            *slot = s.ring[(s.next_seq as usize + k) % LOG_CAPACITY];
        }
        Undo {
            opened: s.opened,
            pending: s.pending,
            lockout_level: s.lockout_level,
            consecutive_failures: s.consecutive_failures,
            lifetime_failures: s.lifetime_failures,
            lockout_until: s.lockout_until,
            last_now: s.last_now,
            next_seq: s.next_seq,
            anchor_tag: s.anchor_tag,
            slots,
        }
    }

    /// Puts `s` back as it was (provided at most [`UNDO_SLOTS`] records were appended).
    pub(crate) fn restore(&self, s: &mut PersistentState) {
        for (k, slot) in self.slots.iter().enumerate() {
            s.ring[(self.next_seq as usize + k) % LOG_CAPACITY] = *slot;
        }
        self.restore_counters(s);
        s.next_seq = self.next_seq;
        s.anchor_tag = self.anchor_tag;
    }

    /// Puts back only the counters (the log keeps what was appended).
    pub(crate) fn restore_counters(&self, s: &mut PersistentState) {
        s.opened = self.opened;
        s.pending = self.pending;
        s.lockout_level = self.lockout_level;
        s.consecutive_failures = self.consecutive_failures;
        s.lifetime_failures = self.lifetime_failures;
        s.lockout_until = self.lockout_until;
        s.last_now = self.last_now;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn roundtrip_and_corruption() {
        let mut s = PersistentState::fresh(1, 2, 3);
        s.opened = 0b101;
        s.pending = true;
        let b = s.to_bytes();
        assert_eq!(PersistentState::from_bytes(&b).unwrap(), s);
        let mut bad = b;
        bad[30] ^= 1;
        assert_eq!(PersistentState::from_bytes(&bad), Err(StateError::Checksum));
        assert_eq!(
            PersistentState::from_bytes(&b[..10]),
            Err(StateError::Length(10))
        );
    }
}
