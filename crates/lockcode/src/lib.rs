//! `lockcode` owns the cryptography and the logic of the Anxin take-home
//! methadone lock box.
//!
//! A box holds one *load* of 2..=6 daily doses, one compartment per day. The
//! clinic provisions the box with a fresh per-load secret; each day the client
//! receives by SMS a code that opens that day's compartment only.
//!
//! The crate is `#![no_std]` and never allocates, so the same code runs on the
//! server and in box firmware:
//!
//! * [`code`]: the per-load [`Secret`], code derivation (HMAC-SHA-256 with
//!   RFC 4226 dynamic truncation) and the codes of a whole load;
//! * [`keypad`]: turning key presses into a [`Code`], refusing bad input;
//! * [`state`]: the fixed-size [`PersistentState`] the box keeps in flash;
//! * [`lockbox`]: the box's state machine ([`LockBox`]): which compartment a
//!   code opens, single use, write-ahead failure counting and lockout;
//! * [`log`]: the event log records, their MAC chain, the export format and
//!   [`verify_log`] for the server.
//!
//! The exact byte layouts are specified in `docs/lockcode.md`. The crate never
//! reads a clock: time comes in as a `now` parameter (seconds).
#![no_std]
#![forbid(unsafe_code)]

pub mod code;
pub mod keypad;
pub mod lockbox;
pub mod log;
pub mod state;

pub use code::{
    derive_code, dynamic_truncate, load_codes, Code, CodeError, CodeText, Digits, LoadCodes,
    Secret, SecretError, LABEL, MAX_COMPARTMENTS, MIN_COMPARTMENTS, SECRET_MAX_LEN, SECRET_MIN_LEN,
};
pub use keypad::{parse_typed_code, Key, KeyEvent, Keypad, KeypadError};
pub use lockbox::{
    lockout_duration, BoxConfig, ConfigError, DayBinding, LockBox, Outcome, ResumeError, Status,
    Storage, LOCKOUT_CAP_SECS, LOCKOUT_FIRST_SECS, LOCKOUT_THRESHOLD,
};
pub use log::{
    verify_log, EventKind, LogEntry, LogError, LogSummary, VerifiedLog, ENTRY_LEN,
    EXPORT_HEADER_LEN, EXPORT_MAX_LEN, LOG_CAPACITY,
};
pub use state::{PersistentState, StateError, STATE_LEN};
