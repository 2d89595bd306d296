//! The box's state machine ([`LockBox`]): which compartment a code opens,
//! single use, optional day binding, write-ahead failure counting with a
//! doubling lockout, tamper events and log export.
//!
//! Persistence goes through [`Storage`]: before a typed code is compared, the
//! attempt is *charged* as a failure and that state is written; only then is
//! the code compared and the final state written. Power loss in between
//! leaves a charged failure that is logged as [`EventKind::Interrupted`].

use core::fmt;

use subtle::ConstantTimeEq;

use crate::code::{derive_code, Code, Digits, Secret, MAX_COMPARTMENTS, MIN_COMPARTMENTS};
use crate::log::{
    record_tag, EventKind, LogEntry, BODY_LEN, ENTRY_LEN, EXPORT_HEADER_LEN, EXPORT_MAGIC,
    EXPORT_MAX_LEN, EXPORT_VERSION, LOG_CAPACITY, NO_COMPARTMENT, TAG_LEN,
};
use crate::state::{PersistentState, StateError, Undo, STATE_LEN};

/// Consecutive failures that trigger each lockout.
pub const LOCKOUT_THRESHOLD: u32 = 5;
/// First lockout, seconds; each further one doubles.
pub const LOCKOUT_FIRST_SECS: u64 = 60;
/// Longest lockout, seconds (24 h).
pub const LOCKOUT_CAP_SECS: u64 = 86_400;

/// Duration of lockout number `level` (1-based): min(60 · 2^(level-1), 86400).
pub fn lockout_duration(level: u8) -> u64 {
    let shift = u32::from(level.saturating_sub(1)).min(20);
    (LOCKOUT_FIRST_SECS << shift).min(LOCKOUT_CAP_SECS)
}

/// Day binding for boxes with a real-time clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayBinding {
    /// Added to `now` before dividing by 86400 to get the local day number.
    pub utc_offset_secs: i32,
    /// A compartment for day D also opens on days D+1..=D+late_days.
    pub late_days: u8,
}

/// What the box is provisioned with for one load.
#[derive(Clone)]
pub struct BoxConfig {
    /// The load's secret.
    pub secret: Secret,
    /// Box identity.
    pub box_id: u64,
    /// Load identity.
    pub load_id: u64,
    /// Day number of compartment 0; compartment i is for `start_day + i`.
    pub start_day: u32,
    /// Compartments in the load, 2..=6.
    pub compartments: u8,
    /// Code length.
    pub digits: Digits,
    /// Day binding (only for boxes with a real-time clock).
    pub day_binding: Option<DayBinding>,
}

impl fmt::Debug for BoxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxConfig")
            .field("secret", &self.secret)
            .field("box_id", &self.box_id)
            .field("load_id", &self.load_id)
            .field("start_day", &self.start_day)
            .field("compartments", &self.compartments)
            .field("digits", &self.digits)
            .field("day_binding", &self.day_binding)
            .finish()
    }
}

/// A provisioning error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Compartments outside 2..=6.
    #[error("a load has 2 to 6 compartments, not {0}")]
    Compartments(u8),
    /// start_day + compartments overflows.
    #[error("start day out of range")]
    StartDay,
}

impl BoxConfig {
    /// Checks compartments and day range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_COMPARTMENTS..=MAX_COMPARTMENTS).contains(&self.compartments) {
            return Err(ConfigError::Compartments(self.compartments));
        }
        self.start_day
            .checked_add(u32::from(self.compartments))
            .ok_or(ConfigError::StartDay)?;
        Ok(())
    }

    fn today(&self, now: u64) -> Option<u32> {
        let b = self.day_binding?;
        let local = i128::from(now) + i128::from(b.utc_offset_secs);
        Some(local.div_euclid(86_400).clamp(0, i128::from(u32::MAX)) as u32)
    }
}

/// Why a stored state cannot be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Corrupt state bytes.
    #[error(transparent)]
    State(#[from] StateError),
    /// The state belongs to another box or load.
    #[error("state belongs to another box or load")]
    Mismatch,
    /// The state marks a compartment the load does not have.
    #[error("state marks a compartment the load does not have")]
    Compartment,
    /// The stored log ring fails its MAC chain (corrupt flash or wrong secret).
    #[error("stored event log is corrupt or was written with another secret")]
    LogCorrupt,
}

/// Where the box keeps its [`PersistentState`] (flash, a file).
pub trait Storage {
    /// Write error.
    type Error;
    /// Durably writes the state; must not return before it is durable.
    fn persist(&mut self, state: &[u8; STATE_LEN]) -> Result<(), Self::Error>;

    /// Durably writes `state`: serialised on the stack and handed to
    /// [`persist`](Self::persist). A box firmware with little RAM overrides it
    /// to write [`PersistentState::header_bytes`] and
    /// [`PersistentState::ring_bytes`] one after the other.
    fn persist_state(&mut self, state: &PersistentState) -> Result<(), Self::Error> {
        self.persist(&state.to_bytes())
    }
}

/// The result of typing a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Compartment opened.
    Opened {
        /// Compartment index.
        compartment: u8,
    },
    /// No compartment's code; counted as a failure.
    WrongCode {
        /// Consecutive failures now.
        failures: u32,
        /// Set when this failure started a lockout.
        locked_until: Option<u64>,
    },
    /// The box is locked out; the code was not compared.
    LockedOut {
        /// Codes are refused until this time.
        until: u64,
    },
    /// The code of a compartment that was already opened.
    AlreadyUsed {
        /// Compartment index.
        compartment: u8,
    },
    /// A valid code outside its day (day binding only).
    WrongDay {
        /// Compartment index.
        compartment: u8,
        /// The compartment's day.
        day: u32,
        /// Today's day number.
        today: u32,
    },
}

/// A status snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Bit i = compartment i opened.
    pub opened_mask: u8,
    /// Compartments in the load.
    pub compartments: u8,
    /// Consecutive failures.
    pub consecutive_failures: u32,
    /// All failures.
    pub lifetime_failures: u32,
    /// Locked out until this time, if now is before it.
    pub locked_until: Option<u64>,
    /// Log records written.
    pub log_records: u32,
}

/// The lock box: configuration plus persistent state.
#[derive(Clone)]
pub struct LockBox {
    config: BoxConfig,
    state: PersistentState,
    /// The load's codes, derived once at provisioning / power-up.
    codes: [Code; MAX_COMPARTMENTS as usize],
}

impl fmt::Debug for LockBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockBox")
            .field("config", &self.config)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl LockBox {
    /// Provisions a fresh load at time `now`: empty log plus a
    /// [`EventKind::Provisioned`] record. The caller persists
    /// [`state`](Self::state) (e.g. via [`Storage`]).
    pub fn provision(config: BoxConfig, now: u64) -> Result<LockBox, ConfigError> {
        config.validate()?;
        let state = PersistentState::fresh(config.box_id, config.load_id, now);
        let mut b = LockBox::assemble(config, state);
        b.log_provisioned(now);
        Ok(b)
    }

    /// [`provision`](Self::provision) into `slot`, reusing the box already there: a box
    /// firmware keeps its one `LockBox` (2.9 KiB) in place, with no copy of it on the stack.
    pub fn provision_into(
        slot: &mut Option<LockBox>,
        config: BoxConfig,
        now: u64,
    ) -> Result<&mut LockBox, ConfigError> {
        config.validate()?;
        let b = LockBox::in_place(slot, config);
        b.state.reset(b.config.box_id, b.config.load_id, now);
        b.log_provisioned(now);
        Ok(b)
    }

    fn log_provisioned(&mut self, now: u64) {
        let c = &self.config;
        let late = c.day_binding.map_or(0, |d| u32::from(d.late_days) + 1);
        let (n, digits, start) = (c.compartments, c.digits.get(), c.start_day);
        self.append(
            now,
            EventKind::Provisioned,
            n,
            u16::from(digits),
            start,
            late,
        );
    }

    /// Resumes from stored state bytes (after power-up).
    pub fn resume(config: BoxConfig, bytes: &[u8]) -> Result<LockBox, ResumeError> {
        config.validate()?;
        let state = PersistentState::from_bytes(bytes)?;
        let lock = LockBox::assemble(config, state);
        lock.check_resumed()?;
        Ok(lock)
    }

    /// [`resume`](Self::resume) into `slot`, in place (see
    /// [`provision_into`](Self::provision_into)); on an error `slot` is emptied.
    pub fn resume_into<'a>(
        slot: &'a mut Option<LockBox>,
        config: BoxConfig,
        bytes: &[u8],
    ) -> Result<&'a mut LockBox, ResumeError> {
        config.validate()?;
        let ok = {
            let b = LockBox::in_place(slot, config);
            b.state
                .read_bytes(bytes)
                .map_err(ResumeError::from)
                .and_then(|()| b.check_resumed())
        };
        match ok {
            Ok(()) => slot.as_mut().ok_or(ResumeError::Mismatch),
            Err(e) => {
                *slot = None;
                Err(e)
            }
        }
    }

    /// The stored state fits the configuration and its log verifies.
    fn check_resumed(&self) -> Result<(), ResumeError> {
        let (state, config) = (&self.state, &self.config);
        if state.box_id != config.box_id || state.load_id != config.load_id {
            return Err(ResumeError::Mismatch);
        }
        if state.opened >> config.compartments != 0 {
            return Err(ResumeError::Compartment);
        }
        self.check_ring()
    }

    /// The box in `slot` with `config` and its codes (its state still to be set), built in
    /// place when `slot` holds one.
    fn in_place(slot: &mut Option<LockBox>, config: BoxConfig) -> &mut LockBox {
        let b = match slot {
            Some(b) => {
                b.config = config;
                b
            }
            None => {
                let digits = config.digits;
                slot.insert(LockBox {
                    config,
                    state: PersistentState::fresh(0, 0, 0),
                    codes: [Code::zero(digits); MAX_COMPARTMENTS as usize],
                })
            }
        };
        b.derive_codes();
        b
    }

    fn assemble(config: BoxConfig, state: PersistentState) -> LockBox {
        let digits = config.digits;
        let mut b = LockBox {
            config,
            state,
            codes: [Code::zero(digits); MAX_COMPARTMENTS as usize],
        };
        b.derive_codes();
        b
    }

    /// Derives the load's codes (once per provisioning or power-up, not per entry).
    fn derive_codes(&mut self) {
        let c = &self.config;
        for (i, slot) in self.codes.iter_mut().enumerate() {
            let i = i as u8;
            *slot = if i < c.compartments {
                derive_code(
                    &c.secret,
                    c.box_id,
                    c.load_id,
                    i,
                    c.start_day + u32::from(i),
                    c.digits,
                )
            } else {
                Code::zero(c.digits)
            };
        }
    }

    /// Verifies the MAC chain of the stored log ring (flash corruption).
    fn check_ring(&self) -> Result<(), ResumeError> {
        let s = &self.state;
        let n = (s.next_seq as usize).min(LOG_CAPACITY);
        let first = s.next_seq as usize - n;
        let mut prev = if first == 0 {
            [0u8; TAG_LEN]
        } else {
            s.anchor_tag
        };
        if first == 0 && s.anchor_tag != [0u8; TAG_LEN] {
            return Err(ResumeError::LogCorrupt);
        }
        for k in 0..n {
            let rec = &s.ring[(first + k) % LOG_CAPACITY];
            let mut body = [0u8; BODY_LEN];
            body.copy_from_slice(&rec[..BODY_LEN]);
            let tag = record_tag(
                &self.config.secret,
                self.config.box_id,
                self.config.load_id,
                &prev,
                &body,
            );
            let seq_ok = LogEntry::from_body(&body).is_some_and(|e| e.seq as usize == first + k);
            if !seq_ok || !bool::from(tag.ct_eq(&rec[BODY_LEN..])) {
                return Err(ResumeError::LogCorrupt);
            }
            prev = tag;
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &BoxConfig {
        &self.config
    }

    /// The current persistent state.
    pub fn state(&self) -> &PersistentState {
        &self.state
    }

    /// Status at time `now`.
    pub fn status(&self, now: u64) -> Status {
        let now = now.max(self.state.last_now);
        Status {
            opened_mask: self.state.opened,
            compartments: self.config.compartments,
            consecutive_failures: self.state.consecutive_failures,
            lifetime_failures: self.state.lifetime_failures,
            locked_until: (now < self.state.lockout_until).then_some(self.state.lockout_until),
            log_records: self.state.next_seq,
        }
    }

    fn append(&mut self, time: u64, kind: EventKind, compartment: u8, a: u16, b: u32, c: u32) {
        let s = &mut self.state;
        let seq = s.next_seq;
        if seq == u32::MAX {
            return;
        }
        let slot = seq as usize % LOG_CAPACITY;
        let prev = if seq == 0 {
            [0u8; TAG_LEN]
        } else {
            let mut t = [0u8; TAG_LEN];
            t.copy_from_slice(&s.ring[(seq as usize - 1) % LOG_CAPACITY][BODY_LEN..]);
            t
        };
        if seq as usize >= LOG_CAPACITY {
            // The evicted record's tag is the prev tag of the new oldest record.
            s.anchor_tag.copy_from_slice(&s.ring[slot][BODY_LEN..]);
        }
        let body = LogEntry {
            seq,
            time,
            kind,
            compartment,
            a,
            b,
            c,
        }
        .body();
        let tag = record_tag(
            &self.config.secret,
            self.config.box_id,
            self.config.load_id,
            &prev,
            &body,
        );
        s.ring[slot][..BODY_LEN].copy_from_slice(&body);
        s.ring[slot][BODY_LEN..].copy_from_slice(&tag);
        s.next_seq = seq + 1;
    }

    fn sat16(v: u32) -> u16 {
        u16::try_from(v).unwrap_or(u16::MAX)
    }

    /// Applies one failure to the counters at time `now`; returns the lockout
    /// end if this failure started one.
    fn charge_failure(state: &mut PersistentState, now: u64) -> Option<u64> {
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        state.lifetime_failures = state.lifetime_failures.saturating_add(1);
        if state.consecutive_failures % LOCKOUT_THRESHOLD == 0 {
            state.lockout_level = state.lockout_level.saturating_add(1);
            state.lockout_until = now.saturating_add(lockout_duration(state.lockout_level));
            Some(state.lockout_until)
        } else {
            None
        }
    }

    fn log_lockout_if(&mut self, time: u64, started: bool) {
        if started {
            let level = self.state.lockout_level;
            let secs = lockout_duration(level) as u32;
            self.append(
                time,
                EventKind::Lockout,
                NO_COMPARTMENT,
                u16::from(level),
                secs,
                0,
            );
        }
    }

    /// If an attempt was interrupted by power loss, logs it (its failure was
    /// already counted when it was charged). In memory only; the next write
    /// persists it.
    fn settle_pending(&mut self) {
        if !self.state.pending {
            return;
        }
        self.state.pending = false;
        let t = self.state.last_now;
        let (cf, lf) = (
            self.state.consecutive_failures,
            self.state.lifetime_failures,
        );
        self.append(
            t,
            EventKind::Interrupted,
            NO_COMPARTMENT,
            Self::sat16(cf),
            lf,
            0,
        );
        let started = cf > 0 && cf % LOCKOUT_THRESHOLD == 0;
        self.log_lockout_if(t, started);
    }

    /// Which compartments' codes equal `code` (bit i = compartment i).
    /// Every compartment's code is compared, in constant time.
    fn matches(&self, code: &Code) -> u8 {
        let mut hits = 0u8;
        for (i, expected) in self.codes.iter().enumerate() {
            let live = u8::from(i < usize::from(self.config.compartments));
            hits |= (expected.ct_eq(code).unwrap_u8() & live) << i;
        }
        hits
    }

    /// Handles a typed code at time `now` (seconds; the box clock never goes
    /// backwards: `now` is raised to the last time seen).
    ///
    /// Writes the charged state, compares, writes the final state. On a
    /// storage error nothing opens and the error is returned.
    pub fn enter<S: Storage>(
        &mut self,
        now: u64,
        code: &Code,
        storage: &mut S,
    ) -> Result<Outcome, S::Error> {
        let now = now.max(self.state.last_now);
        self.settle_pending();
        if now < self.state.lockout_until {
            return Ok(Outcome::LockedOut {
                until: self.state.lockout_until,
            });
        }
        // Write-ahead: count this attempt as a failure before comparing. What the
        // attempt may change is kept (not a copy of the state), to undo a failed write.
        let base = Undo::of(&self.state);
        self.state.last_now = now;
        self.state.pending = true;
        let locked_until = Self::charge_failure(&mut self.state, now);
        if let Err(e) = storage.persist_state(&self.state) {
            base.restore(&mut self.state);
            return Err(e);
        }
        let charged = Undo::of(&self.state);

        let hits = if code.digits() == self.config.digits {
            self.matches(code)
        } else {
            0
        };
        let today = self.config.today(now);
        let c = &self.config;
        // The charge left `opened` as it was.
        let unopened = hits & !self.state.opened;
        let mut in_day = 0u8;
        for i in 0..c.compartments {
            let day = c.start_day + u32::from(i);
            let ok = match (today, c.day_binding) {
                (Some(t), Some(b)) => t >= day && t - day <= u32::from(b.late_days),
                _ => true,
            };
            in_day |= u8::from(ok) << i;
        }
        let day_field = today.unwrap_or(u32::MAX);
        let outcome = if unopened & in_day != 0 {
            base.restore_counters(&mut self.state);
            let i = (unopened & in_day).trailing_zeros() as u8;
            let before = Self::sat16(self.state.consecutive_failures);
            self.state.last_now = now;
            self.state.opened |= 1 << i;
            self.state.consecutive_failures = 0;
            self.state.lockout_level = 0;
            self.append(now, EventKind::Opened, i, before, day_field, 0);
            Outcome::Opened { compartment: i }
        } else if unopened != 0 {
            base.restore_counters(&mut self.state);
            let i = unopened.trailing_zeros() as u8;
            self.state.last_now = now;
            self.append(now, EventKind::WrongDay, i, 0, day_field, 0);
            Outcome::WrongDay {
                compartment: i,
                day: self.config.start_day + u32::from(i),
                today: day_field,
            }
        } else if hits != 0 {
            base.restore_counters(&mut self.state);
            let i = hits.trailing_zeros() as u8;
            self.state.last_now = now;
            self.append(now, EventKind::AlreadyUsed, i, 0, 0, 0);
            Outcome::AlreadyUsed { compartment: i }
        } else {
            self.state.pending = false;
            let (cf, lf) = (
                self.state.consecutive_failures,
                self.state.lifetime_failures,
            );
            self.append(
                now,
                EventKind::Failed,
                NO_COMPARTMENT,
                Self::sat16(cf),
                lf,
                0,
            );
            self.log_lockout_if(now, locked_until.is_some());
            Outcome::WrongCode {
                failures: cf,
                locked_until,
            }
        };
        if let Err(e) = storage.persist_state(&self.state) {
            // Keep memory equal to what is durable: the charged attempt.
            charged.restore(&mut self.state);
            return Err(e);
        }
        Ok(outcome)
    }

    /// Logs a lid-tamper event at `now` and persists it.
    pub fn tamper<S: Storage>(&mut self, now: u64, storage: &mut S) -> Result<(), S::Error> {
        let now = now.max(self.state.last_now);
        let before = Undo::of(&self.state);
        self.settle_pending();
        self.state.last_now = now;
        self.append(now, EventKind::Tamper, NO_COMPARTMENT, 0, 0, 0);
        storage.persist_state(&self.state).inspect_err(|_| {
            before.restore(&mut self.state);
        })
    }

    /// Exports the signed log at `now`: appends and persists an
    /// [`EventKind::Export`] record carrying `challenge` (a number the
    /// clinic types in, to prove freshness), then writes the export (header
    /// plus the retained records, oldest first) into `out`. Returns the
    /// length written.
    pub fn export_log<S: Storage>(
        &mut self,
        now: u64,
        challenge: u32,
        out: &mut [u8; EXPORT_MAX_LEN],
        storage: &mut S,
    ) -> Result<usize, S::Error> {
        let now = now.max(self.state.last_now);
        let before = Undo::of(&self.state);
        self.settle_pending();
        self.state.last_now = now;
        let count = (self.state.next_seq as usize + 1).min(LOG_CAPACITY);
        let (opened, lf) = (self.state.opened, self.state.lifetime_failures);
        self.append(now, EventKind::Export, opened, count as u16, challenge, lf);
        if let Err(e) = storage.persist_state(&self.state) {
            before.restore(&mut self.state);
            return Err(e);
        }
        let s = &self.state;
        let n = (s.next_seq as usize).min(LOG_CAPACITY);
        out[0..4].copy_from_slice(EXPORT_MAGIC);
        out[4] = EXPORT_VERSION;
        out[5] = n as u8;
        out[6] = 0;
        out[7] = 0;
        out[8..16].copy_from_slice(&self.config.box_id.to_be_bytes());
        out[16..24].copy_from_slice(&self.config.load_id.to_be_bytes());
        out[24..40].copy_from_slice(&s.anchor_tag);
        let first = s.next_seq as usize - n;
        for k in 0..n {
            let slot = (first + k) % LOG_CAPACITY;
            let at = EXPORT_HEADER_LEN + k * ENTRY_LEN;
            out[at..at + ENTRY_LEN].copy_from_slice(&s.ring[slot]);
        }
        Ok(EXPORT_HEADER_LEN + n * ENTRY_LEN)
    }
}
