//! The box's non-volatile record: two alternating slots (A at 0, B at 4096),
//! each a 128-byte header (the load's configuration, its CRC and a generation
//! number) followed by the `lockcode` persistent state (2632 bytes). Every
//! write goes to the slot *not* holding the newest record, state first and
//! the generation last, so a write torn by a power cut leaves the previous
//! record intact and the newest complete one wins at power-up. Layout in
//! `docs/box-hardware.md`.

use boxproto::crc32;
use lockcode::{BoxConfig, Digits, LockBox, PersistentState, Secret, Storage, STATE_LEN};

use crate::hw::Flash;

/// Slot size (bytes) and offsets.
pub const SLOT_LEN: u32 = 4096;
const HDR_LEN: usize = 128;
const MAGIC: &[u8; 4] = b"AXF1";
const CRC_AT: usize = 116;
const GEN_AT: usize = 120;

/// The load's configuration as stored (includes the secret: readout
/// protection keeps it in the chip on real hardware).
#[derive(Clone)]
pub struct StoredConfig {
    /// Header bytes 0..CRC_AT+4 (magic, ids, parameters, secret, CRC).
    hdr: [u8; HDR_LEN],
}

impl StoredConfig {
    /// Builds the header of a load.
    pub fn new(c: &BoxConfig, exported: bool) -> StoredConfig {
        let mut h = [0u8; HDR_LEN];
        h[0..4].copy_from_slice(MAGIC);
        h[4..12].copy_from_slice(&c.box_id.to_be_bytes());
        h[12..20].copy_from_slice(&c.load_id.to_be_bytes());
        h[20..24].copy_from_slice(&c.start_day.to_be_bytes());
        h[24] = c.compartments;
        h[25] = c.digits.get();
        h[26] = u8::from(exported);
        let s = c.secret.expose();
        h[27] = s.len() as u8;
        h[28..28 + s.len()].copy_from_slice(s);
        let crc = crc32(&h[..CRC_AT]);
        h[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        StoredConfig { hdr: h }
    }

    /// Parses a header; `None` if blank or corrupt. Returns the generation.
    fn parse(h: &[u8; HDR_LEN]) -> Option<(BoxConfig, bool, u32)> {
        if &h[0..4] != MAGIC {
            return None;
        }
        let crc = u32::from_be_bytes([h[CRC_AT], h[CRC_AT + 1], h[CRC_AT + 2], h[CRC_AT + 3]]);
        if crc != crc32(&h[..CRC_AT]) {
            return None;
        }
        let g = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let (gen, inv) = (g(GEN_AT), g(GEN_AT + 4));
        if gen != !inv {
            return None;
        }
        let u64at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[at..at + 8]);
            u64::from_be_bytes(a)
        };
        let n = usize::from(h[27]);
        let secret = Secret::from_bytes(h.get(28..28 + n)?).ok()?;
        let config = BoxConfig {
            secret,
            box_id: u64at(4),
            load_id: u64at(12),
            start_day: g(20),
            compartments: h[24],
            digits: Digits::new(h[25]).ok()?,
            day_binding: None,
        };
        Some((config, h[26] == 1, gen))
    }
}

/// The slot store's bookkeeping for the load in the box (the flash itself
/// is passed in, so the box's big values never move: see `main.rs`).
pub struct Store {
    cfg: StoredConfig,
    /// Generation of the newest record written.
    gen: u32,
    /// Test hook: stop dead after the next write-ahead (simulated power cut).
    pub cut_after_charge: bool,
}

/// A [`Store`] with its flash: what [`lockcode::LockBox`] persists through.
pub struct Persist<'a, F: Flash> {
    /// The bookkeeping.
    pub store: &'a mut Store,
    /// The pages.
    pub flash: &'a mut F,
}

impl Store {
    /// Writes one record (state, then header with generation `gen+1`) to the
    /// slot not holding generation `gen`. The state comes in two parts written
    /// one after the other (the `lockcode` state header and its log ring), so
    /// it is never serialised whole in RAM.
    fn write_record<F: Flash>(&mut self, flash: &mut F, head: &[u8], ring: &[u8]) -> bool {
        let gen = self.gen.wrapping_add(1);
        let slot = (gen % 2) * SLOT_LEN;
        let mut h = self.cfg.hdr;
        h[GEN_AT..GEN_AT + 4].copy_from_slice(&gen.to_be_bytes());
        h[GEN_AT + 4..GEN_AT + 8].copy_from_slice(&(!gen).to_be_bytes());
        let at = slot + HDR_LEN as u32;
        // Invalidate the slot's old generation first, then state, then header.
        let ok = head.len() + ring.len() == STATE_LEN
            && flash.write(slot + GEN_AT as u32, &[0xFF; 8])
            && flash.write(at, head)
            && flash.write(at + head.len() as u32, ring)
            && flash.write(slot, &h);
        if ok {
            self.gen = gen;
        }
        ok
    }

    /// Starts a fresh load: writes its first record.
    #[inline(never)]
    pub fn provision<F: Flash>(flash: &mut F, lock: &LockBox) -> Option<Store> {
        let mut s = Store {
            cfg: StoredConfig::new(lock.config(), false),
            gen: 0,
            cut_after_charge: false,
        };
        let state = lock.state();
        s.write_record(flash, &state.header_bytes(), state.ring_bytes())
            .then_some(s)
    }

    /// Marks the load exported (the next record carries the flag).
    pub fn set_exported(&mut self, lock: &LockBox, exported: bool) {
        self.cfg = StoredConfig::new(lock.config(), exported);
    }

    /// Erases both slots.
    pub fn wipe<F: Flash>(flash: &mut F) -> bool {
        let blank = [0u8; HDR_LEN];
        flash.write(0, &blank) && flash.write(SLOT_LEN, &blank)
    }

    /// Finds the newest slot that holds a complete load and resumes it into
    /// `out` (falling back to the other slot); `None` if the box is empty.
    /// Returns the store and the exported flag.
    #[inline(never)]
    pub fn resume<F: Flash>(
        flash: &mut F,
        scratch: &mut [u8; STATE_LEN],
        out: &mut Option<LockBox>,
    ) -> Option<(Store, bool)> {
        let mut gens: [Option<u32>; 2] = [None, None];
        for (i, g) in gens.iter_mut().enumerate() {
            let mut h = [0u8; HDR_LEN];
            if flash.read(i as u32 * SLOT_LEN, &mut h) {
                *g = StoredConfig::parse(&h).map(|(_, _, gen)| gen);
            }
        }
        let order = match gens {
            [Some(a), Some(b)] if b > a => [1, 0],
            [Some(_), _] => [0, 1],
            _ => [1, 0],
        };
        for i in order {
            let mut h = [0u8; HDR_LEN];
            if gens[i].is_none() || !flash.read(i as u32 * SLOT_LEN, &mut h) {
                continue;
            }
            let Some((config, exported, gen)) = StoredConfig::parse(&h) else {
                continue;
            };
            if !flash.read(i as u32 * SLOT_LEN + HDR_LEN as u32, scratch) {
                continue;
            }
            let cfg = StoredConfig::new(&config, exported);
            resume_into(config, scratch, out);
            if out.is_some() {
                let store = Store {
                    cfg,
                    gen,
                    cut_after_charge: false,
                };
                return Some((store, exported));
            }
        }
        None
    }
}

/// `LockBox::resume_into` in its own stack frame: the box is rebuilt in `out`.
#[inline(never)]
fn resume_into(config: BoxConfig, bytes: &[u8; STATE_LEN], out: &mut Option<LockBox>) {
    // A refused state leaves `out` empty: the caller tries the other slot.
    let _ = LockBox::resume_into(out, config, &bytes[..]);
}

impl<F: Flash> Persist<'_, F> {
    fn cut_if_armed(&self, pending: bool) {
        if self.store.cut_after_charge && pending {
            // The write-ahead (pending flag set) is durable: "pull the power".
            cortex_m_semihosting::hprintln!("POWER-CUT after write-ahead");
            loop {
                cortex_m::asm::wfi();
            }
        }
    }
}

impl<F: Flash> Storage for Persist<'_, F> {
    type Error = ();

    fn persist(&mut self, state: &[u8; STATE_LEN]) -> Result<(), ()> {
        let (head, ring) = state.split_at(STATE_LEN - lockcode::LOG_CAPACITY * lockcode::ENTRY_LEN);
        if !self.store.write_record(self.flash, head, ring) {
            return Err(());
        }
        self.cut_if_armed(state[21] & 1 == 1);
        Ok(())
    }

    /// Writes the state's header and ring straight from the `LockBox`: no
    /// 2.6 KiB serialised copy on the stack.
    fn persist_state(&mut self, state: &PersistentState) -> Result<(), ()> {
        if !self
            .store
            .write_record(self.flash, &state.header_bytes(), state.ring_bytes())
        {
            return Err(());
        }
        self.cut_if_armed(state.pending());
        Ok(())
    }
}
