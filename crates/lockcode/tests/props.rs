//! Property tests of the box state machine, the log and the parsers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lockcode::{
    derive_code, load_codes, parse_typed_code, verify_log, BoxConfig, Code, DayBinding, Digits,
    Key, Keypad, LockBox, LogError, Outcome, PersistentState, Secret, Storage, EXPORT_MAX_LEN,
    STATE_LEN,
};
use proptest::prelude::*;

/// Storage that keeps the last write; `fail_after` makes later writes fail
/// (a power cut after that many writes).
#[derive(Clone)]
struct Mem {
    last: Vec<u8>,
    writes: usize,
    fail_after: Option<usize>,
}

impl Mem {
    fn new(lock: &LockBox) -> Mem {
        Mem {
            last: lock.state().to_bytes().to_vec(),
            writes: 0,
            fail_after: None,
        }
    }
}

impl Mem {
    /// Records in the last state written.
    fn last_len(&self) -> usize {
        PersistentState::from_bytes(&self.last).unwrap().log_len() as usize
    }
}

impl Storage for Mem {
    type Error = &'static str;
    fn persist(&mut self, s: &[u8; STATE_LEN]) -> Result<(), &'static str> {
        if self.fail_after.is_some_and(|n| self.writes >= n) {
            return Err("power cut");
        }
        self.writes += 1;
        self.last = s.to_vec();
        Ok(())
    }
}

const T0: u64 = 1_728_000_000;

fn config(secret: &[u8], box_id: u64, load_id: u64, compartments: u8) -> BoxConfig {
    BoxConfig {
        secret: Secret::from_bytes(secret).unwrap(),
        box_id,
        load_id,
        start_day: 20_000,
        compartments,
        digits: Digits::DEFAULT,
        day_binding: None,
    }
}

fn fresh(secret: &[u8], box_id: u64, load_id: u64, compartments: u8) -> (LockBox, Mem) {
    let lock = LockBox::provision(config(secret, box_id, load_id, compartments), T0).unwrap();
    let mem = Mem::new(&lock);
    (lock, mem)
}

fn wrong_code(lock: &LockBox, seed: u32) -> Code {
    let c = lock.config();
    let codes = load_codes(
        &c.secret,
        c.box_id,
        c.load_id,
        c.start_day,
        c.compartments,
        c.digits,
    )
    .unwrap();
    let mut v = seed % 100_000_000;
    while codes.codes().iter().any(|k| k.value() == v) {
        v = (v + 1) % 100_000_000;
    }
    Code::new(v, Digits::DEFAULT).unwrap()
}

fn export(lock: &mut LockBox, mem: &mut Mem, now: u64) -> Vec<u8> {
    let mut out = [0u8; EXPORT_MAX_LEN];
    let n = lock.export_log(now, 1234, &mut out, mem).unwrap();
    out[..n].to_vec()
}

fn secret_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 20..=64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A code opens exactly the compartment it was made for, and codes made
    /// for another box, load or compartment day open nothing.
    #[test]
    fn codes_open_only_their_compartment(
        secret in secret_strategy(),
        box_id in any::<u64>(), load_id in any::<u64>(),
        other_box in any::<u64>(), other_load in any::<u64>(),
        compartments in 2u8..=6, which in 0u8..6, other_day in any::<u32>(),
    ) {
        let which = which % compartments;
        let (mut lock, mut mem) = fresh(&secret, box_id, load_id, compartments);
        let s = Secret::from_bytes(&secret).unwrap();
        // Codes for another box / load / day never open anything.
        for (b, l, d) in [
            (other_box, load_id, 20_000 + u32::from(which)),
            (box_id, other_load, 20_000 + u32::from(which)),
            (box_id, load_id, other_day),
        ] {
            if (b, l, d) == (box_id, load_id, 20_000 + u32::from(which)) { continue; }
            let c = derive_code(&s, b, l, which, d, Digits::DEFAULT);
            let out = lock.enter(T0 + 10, &c, &mut mem).unwrap();
            prop_assert!(!matches!(out, Outcome::Opened { .. }), "{:?}", out);
            // Stay clear of lockouts for the next check.
            lock = LockBox::provision(config(&secret, box_id, load_id, compartments), T0).unwrap();
        }
        let c = derive_code(&s, box_id, load_id, which, 20_000 + u32::from(which), Digits::DEFAULT);
        prop_assert_eq!(lock.enter(T0 + 10, &c, &mut mem).unwrap(), Outcome::Opened { compartment: which });
        prop_assert_eq!(lock.state().opened_mask(), 1 << which);
    }

    /// Every code opens once; typing it again is refused as already used,
    /// also after a restart.
    #[test]
    fn every_code_opens_only_once(secret in secret_strategy(), compartments in 2u8..=6,
                                  order in Just(()).prop_perturb(|_, mut rng| {
                                      let mut v: Vec<u8> = (0..6).collect();
                                      for i in (1..v.len()).rev() { v.swap(i, (rng.next_u32() as usize) % (i + 1)); }
                                      v
                                  })) {
        let (mut lock, mut mem) = fresh(&secret, 9, 9, compartments);
        let c = lock.config().clone();
        let codes = load_codes(&c.secret, 9, 9, c.start_day, compartments, c.digits).unwrap();
        prop_assume!(!codes.has_collision());
        let mut t = T0;
        for &i in order.iter().filter(|&&i| i < compartments) {
            t += 3600;
            let code = codes.codes()[usize::from(i)];
            prop_assert_eq!(lock.enter(t, &code, &mut mem).unwrap(), Outcome::Opened { compartment: i });
            prop_assert_eq!(lock.enter(t, &code, &mut mem).unwrap(), Outcome::AlreadyUsed { compartment: i });
            lock = LockBox::resume(c.clone(), &mem.last).unwrap();
            prop_assert_eq!(lock.enter(t, &code, &mut mem).unwrap(), Outcome::AlreadyUsed { compartment: i });
        }
        prop_assert_eq!(u32::from(lock.state().opened_mask()), (1u32 << compartments) - 1);
        let log = export(&mut lock, &mut mem, t);
        prop_assert!(verify_log(&c.secret, 9, 9, &log).is_ok());
    }

    /// Failures and lockouts survive restarts, power cuts between the
    /// write-ahead and the final write, and a clock that goes backwards.
    #[test]
    fn lockout_holds_across_restarts(secret in secret_strategy(), failures in 1u32..40,
                                     cut_at in prop::option::of(0u32..40), back in 0u64..10_000) {
        let (mut lock, mut mem) = fresh(&secret, 1, 2, 6);
        let cfg = lock.config().clone();
        let good = derive_code(&cfg.secret, 1, 2, 0, 20_000, Digits::DEFAULT);
        let mut t = T0;
        let mut counted = 0u32;
        for k in 0..failures {
            let bad = wrong_code(&lock, k.wrapping_mul(7919));
            if let Some(until) = lock.status(t).locked_until { t = until; }
            if cut_at == Some(k) {
                // Power cut right after the write-ahead: the result is never written.
                mem.fail_after = Some(mem.writes + 1);
                prop_assert!(lock.enter(t, &bad, &mut mem).is_err());
                mem.fail_after = None;
            } else {
                let out = lock.enter(t, &bad, &mut mem).unwrap();
                let is_wrong = matches!(out, Outcome::WrongCode { .. });
                prop_assert!(is_wrong, "{:?}", out);
            }
            counted += 1;
            // Restart from what was durably written.
            lock = LockBox::resume(cfg.clone(), &mem.last).unwrap();
            prop_assert_eq!(lock.state().consecutive_failures(), counted);
        }
        let expect_locked = counted % 5 == 0;
        // Clock going backwards does not shorten the lockout.
        let out = lock.enter(t.saturating_sub(back), &good, &mut mem).unwrap();
        if expect_locked {
            let is_locked = matches!(out, Outcome::LockedOut { .. });
            prop_assert!(is_locked, "{:?}", out);
            lock = LockBox::resume(cfg.clone(), &mem.last).unwrap();
            prop_assert!(lock.status(t).locked_until.is_some());
        } else {
            prop_assert_eq!(out, Outcome::Opened { compartment: 0 });
        }
        let log = export(&mut lock, &mut mem, t + 100_000);
        let v = verify_log(&cfg.secret, 1, 2, &log).unwrap();
        prop_assert_eq!(v.summary().lifetime_failures, counted);
    }

    /// Any modification of an exported log (bit flip, truncation, dropped or
    /// swapped record) fails verification.
    #[test]
    fn modified_log_fails(secret in secret_strategy(), events in 1usize..80,
                          pos in any::<prop::sample::Index>(), bit in 0u8..8, mode in 0u8..4,
                          rec in any::<prop::sample::Index>()) {
        let (mut lock, mut mem) = fresh(&secret, 5, 6, 6);
        let mut t = T0;
        for k in 0..events {
            t += 7;
            if k % 3 == 0 { lock.tamper(t, &mut mem).unwrap(); }
            else {
                if let Some(u) = lock.status(t).locked_until { t = u; }
                let bad = wrong_code(&lock, k as u32);
                lock.enter(t, &bad, &mut mem).unwrap();
            }
        }
        let log = export(&mut lock, &mut mem, t + 1);
        let s = lock.config().secret.clone();
        prop_assert!(verify_log(&s, 5, 6, &log).is_ok());
        let nrec = (log.len() - 40) / 40;
        let mut bad = log.clone();
        match mode {
            0 => { let i = pos.index(bad.len()); bad[i] ^= 1 << bit; }
            1 => { bad.truncate(40 + rec.index(nrec) * 40); bad[5] = ((bad.len() - 40) / 40) as u8; }
            2 => { let i = rec.index(nrec); bad.drain(40 + i * 40..80 + i * 40); bad[5] -= 1; }
            _ => {
                prop_assume!(nrec >= 2);
                let i = rec.index(nrec - 1);
                let (a, b) = (40 + i * 40, 80 + i * 40);
                let r1 = bad[a..b].to_vec();
                let r2 = bad[b..b + 40].to_vec();
                bad[a..b].copy_from_slice(&r2);
                bad[b..b + 40].copy_from_slice(&r1);
            }
        }
        prop_assert!(verify_log(&s, 5, 6, &bad).is_err());
        // Wrong secret, box or load: refused.
        let other = Secret::from_bytes(&[0x55; 32]).unwrap();
        prop_assert!(verify_log(&other, 5, 6, &log).is_err());
        prop_assert_eq!(verify_log(&s, 4, 6, &log).unwrap_err(), LogError::WrongBox(5));
    }

    /// The log parser never panics on arbitrary bytes, with or without a
    /// plausible header.
    #[test]
    fn log_parser_never_panics(mut bytes in prop::collection::vec(any::<u8>(), 0..3000), header in any::<bool>()) {
        let s = Secret::from_bytes(&[1; 20]).unwrap();
        if header && bytes.len() >= 40 {
            bytes[..4].copy_from_slice(b"AXLG");
            bytes[4] = 1;
            bytes[5] = ((bytes.len() - 40) / 40) as u8;
        }
        let _ = verify_log(&s, 0, 0, &bytes);
        let _ = PersistentState::from_bytes(&bytes);
        if bytes.len() >= STATE_LEN {
            let _ = PersistentState::from_bytes(&bytes[..STATE_LEN]);
        }
    }

    /// The keypad never panics on arbitrary key sequences; whatever it
    /// submits has exactly the code's digits.
    #[test]
    fn keypad_never_panics(keys in prop::collection::vec(any::<u8>(), 0..64), digits in 6u8..=9) {
        let digits = Digits::new(digits).unwrap();
        let mut pad = Keypad::new(digits);
        for &k in &keys {
            if let Ok(lockcode::KeyEvent::Submitted(c)) = pad.press_ascii(k) {
                prop_assert!(c.value() < digits.modulus());
                prop_assert_eq!(c.to_string().len(), usize::from(digits.get()));
            }
            let _ = pad.press(Key::Digit(k));
        }
        let _ = parse_typed_code(&keys, digits);
    }
}

#[test]
fn bad_keypad_input_is_refused() {
    let d = Digits::DEFAULT;
    assert!(parse_typed_code(b"1234567a", d).is_err());
    assert!(parse_typed_code(b"123456789", d).is_err());
    assert!(parse_typed_code(b"1234567", d).is_err());
    assert!(parse_typed_code(b"", d).is_err());
    assert_eq!(parse_typed_code(b"00001234", d).unwrap().value(), 1234);
}

#[test]
fn day_binding() {
    let mut cfg = config(&[3; 32], 1, 1, 3);
    cfg.day_binding = Some(DayBinding {
        utc_offset_secs: 0,
        late_days: 1,
    });
    let mut lock = LockBox::provision(cfg.clone(), T0).unwrap();
    let mut mem = Mem::new(&lock);
    let code1 = derive_code(&cfg.secret, 1, 1, 1, 20_001, Digits::DEFAULT);
    let day = |d: u64| d * 86_400 + 3600;
    // Day 20000: compartment 1's code is for tomorrow.
    assert_eq!(
        lock.enter(day(20_000), &code1, &mut mem).unwrap(),
        Outcome::WrongDay {
            compartment: 1,
            day: 20_001,
            today: 20_000
        }
    );
    assert_eq!(lock.state().consecutive_failures(), 0);
    // Day 20003 is two days late (late_days = 1).
    let mut late = LockBox::resume(cfg.clone(), &mem.last).unwrap();
    assert!(matches!(
        late.enter(day(20_003), &code1, &mut mem.clone()).unwrap(),
        Outcome::WrongDay { .. }
    ));
    // Day 20002 is one day late: opens.
    assert_eq!(
        lock.enter(day(20_002), &code1, &mut mem).unwrap(),
        Outcome::Opened { compartment: 1 }
    );
}

#[test]
fn ring_wraps_and_export_still_verifies() {
    let (mut lock, mut mem) = fresh(&[9; 40], 3, 4, 6);
    for k in 0..200 {
        lock.tamper(T0 + k, &mut mem).unwrap();
    }
    let log = export(&mut lock, &mut mem, T0 + 500);
    let v = verify_log(&lock.config().secret, 3, 4, &log).unwrap();
    assert_eq!(v.summary().records, 64);
    assert_eq!(v.summary().first_seq, 202 - 64);
    // Dropping the oldest record (and fixing the count) is detected.
    let mut bad = log.clone();
    bad.drain(40..80);
    bad[5] = 63;
    assert!(verify_log(&lock.config().secret, 3, 4, &bad).is_err());
}

#[test]
fn storage_failure_opens_nothing() {
    let (mut lock, mut mem) = fresh(&[4; 20], 1, 1, 2);
    let code = derive_code(&lock.config().secret, 1, 1, 0, 20_000, Digits::DEFAULT);
    mem.fail_after = Some(0);
    assert!(lock.enter(T0, &code, &mut mem).is_err());
    assert_eq!(lock.state().opened_mask(), 0);
    mem.fail_after = None;
    assert_eq!(
        lock.enter(T0, &code, &mut mem).unwrap(),
        Outcome::Opened { compartment: 0 }
    );
}

proptest! {
    /// The in-place forms a box firmware uses give the same box as the by-value ones, over
    /// a box already holding another load; a corrupt state leaves the slot empty.
    #[test]
    fn in_place_provision_and_resume_equal_the_by_value_ones(
        secret in secret_strategy(),
        compartments in 2u8..=6,
        wrong in 0u32..100_000_000,
        flip in 0usize..STATE_LEN,
    ) {
        let (mut lock, mut mem) = fresh(&secret, 4, 7, compartments);
        let bad = wrong_code(&lock, wrong);
        lock.enter(T0 + 10, &bad, &mut mem).unwrap();
        let mut slot = Some(LockBox::provision(config(&[9u8; 32], 4, 6, 2), T0).unwrap());
        let resumed = LockBox::resume_into(&mut slot, config(&secret, 4, 7, compartments), &mem.last)
            .unwrap();
        prop_assert_eq!(resumed.state(), lock.state());
        let c = lock.config();
        let code = derive_code(&c.secret, 4, 7, 1, c.start_day + 1, c.digits);
        let mut m2 = mem.clone();
        prop_assert_eq!(
            resumed.enter(T0 + 20, &code, &mut m2).unwrap(),
            lock.enter(T0 + 20, &code, &mut mem).unwrap()
        );
        prop_assert_eq!(&m2.last, &mem.last);
        let mut again = Some(lock);
        let p = LockBox::provision_into(&mut again, config(&secret, 4, 8, compartments), T0 + 30)
            .unwrap();
        let q = LockBox::provision(config(&secret, 4, 8, compartments), T0 + 30).unwrap();
        prop_assert_eq!(p.state(), q.state());
        // Any bit of the header or of a written record (unwritten ring slots carry nothing).
        let written = 72 + lockcode::ENTRY_LEN * mem.last_len();
        let mut corrupt = mem.last.clone();
        corrupt[flip % written] ^= 0x01;
        let mut slot = again;
        prop_assert!(
            LockBox::resume_into(&mut slot, config(&secret, 4, 7, compartments), &corrupt).is_err()
        );
        prop_assert!(slot.is_none());
    }
}
