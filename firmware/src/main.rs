//! Firmware of the Anxin take-home lock box (Cortex-M3).
//!
//! It runs the shared `lockcode` crate unchanged: keypad input, one
//! compartment's latch per accepted code, write-ahead failure counting and the
//! persistent lockout, and the MAC-chained event log. It speaks the box wire
//! protocol (`boxproto`, `docs/box-protocol.md`) on UART0 to the clinic's box
//! station: identify, provision, status, keys, export with the centre's
//! challenge, wipe. The state lives in two alternating flash slots
//! (`store`); in emulation (QEMU `lm3s6965evb`) a semihosting file,
//! `anxin-box.flash` in QEMU's working directory, stands for the flash pages
//! and latch events are printed on the semihosting console.
#![no_std]
#![no_main]

mod hw;
mod mem;
mod store;

use boxproto::{
    msg::{KIND_EXPORT, KIND_STATUS, SECRET_MAX},
    seal_frame_in_place, BoxState, BoxStatus, Decoder, ErrorCode, FrameError, Identity, KeyOutcome,
    KeyResult, Progress, Request, Response, Session, FRAME_OVERHEAD, HEADER_LEN,
};
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use lockcode::{
    BoxConfig, Digits, KeyEvent, Keypad, LockBox, Outcome, Secret, EXPORT_MAX_LEN, STATE_LEN,
};
use panic_semihosting as _;

use hw::{Latches, SemihostingFlash, Uart};
use store::{Persist, Store};

/// The box's serial (its `box_id`). On hardware: the factory page.
const SERIAL: u64 = 4;
/// Firmware version.
const FIRMWARE: [u8; 3] = [0, 1, 0];
const FLASH_FILE: &[u8] = b"anxin-box.flash\0";
/// Test hook: if this host file exists at power-up, the first write-ahead
/// after it is followed by a simulated power cut (the firmware stops).
const CUT_FILE: &[u8] = b"anxin-box.cut\0";

/// Largest request frame (a provision with a 64-byte secret).
const RX_CAP: usize = 128;
/// Largest response frame (an export); also the boot scratch (one state).
const TX_CAP: usize = if FRAME_OVERHEAD + 4 + EXPORT_MAX_LEN > STATE_LEN {
    FRAME_OVERHEAD + 4 + EXPORT_MAX_LEN
} else {
    STATE_LEN
};

/// The box. Its big values (the `LockBox`, 2.9 KiB) sit in fields that are
/// written in place and never moved: on the Cortex-M every move of a
/// multi-KiB value is a stack temporary, and RAM is the scarce resource.
struct Firmware {
    /// The load, if the box holds one.
    lock: Option<LockBox>,
    /// Its slot bookkeeping (`Some` iff `lock` is).
    store: Option<Store>,
    /// The flash pages; `None` if unusable (the host file could not be opened).
    flash: Option<SemihostingFlash>,
    keypad: Keypad,
    exported: bool,
    session: Session,
    latches: Latches,
    /// The box clock: never goes back (lockcode clamps it as well).
    clock: u64,
    cut_armed: bool,
}

/// Marks the start and end of one code entry for the instruction count
/// (`.ci/firmware.sh`, `docs/lockcode.md` §10): never inlined, so their
/// addresses appear in the symbol table and in an execution trace.
#[inline(never)]
#[no_mangle]
pub extern "C" fn anxin_mark_entry_begin() {
    cortex_m::asm::nop();
}

/// See [`anxin_mark_entry_begin`].
#[inline(never)]
#[no_mangle]
pub extern "C" fn anxin_mark_entry_end() {
    // Not the same body as the begin mark, so the linker cannot fold them.
    cortex_m::asm::nop();
    cortex_m::asm::nop();
}

impl Firmware {
    fn status(&self) -> BoxStatus {
        match &self.lock {
            Some(lock) => {
                let s = lock.status(self.clock);
                let c = lock.config();
                BoxStatus {
                    state: if self.exported {
                        BoxState::Exported
                    } else {
                        BoxState::Loaded
                    },
                    box_id: c.box_id,
                    load_id: c.load_id,
                    compartments: c.compartments,
                    digits: c.digits.get(),
                    start_day: c.start_day,
                    opened: s.opened_mask,
                    consecutive_failures: s.consecutive_failures,
                    lifetime_failures: s.lifetime_failures,
                    locked_until: s.locked_until.unwrap_or(0),
                    log_records: s.log_records,
                    now: self.clock,
                }
            }
            None => BoxStatus {
                state: BoxState::Empty,
                box_id: SERIAL,
                load_id: 0,
                compartments: 0,
                digits: 0,
                start_day: 0,
                opened: 0,
                consecutive_failures: 0,
                lifetime_failures: 0,
                locked_until: 0,
                log_records: 0,
                now: self.clock,
            },
        }
    }

    fn tick(&mut self, now: u64) {
        self.clock = self.clock.max(now);
    }

    /// Handles one request; writes the response payload at `tx[HEADER_LEN..]`
    /// and returns (kind, payload length).
    fn handle(&mut self, req: Request<'_>, tx: &mut [u8; TX_CAP]) -> (u8, usize) {
        let kind = req.kind();
        let resp = match self.dispatch(req, tx) {
            Ok(Some(r)) => r,
            Ok(None) => {
                // The export was written in place.
                return (KIND_EXPORT | boxproto::RESPONSE_BIT, tx_export_len(tx));
            }
            Err(code) => Response::Error { code, kind },
        };
        let n = resp.encode(&mut tx[HEADER_LEN..]).unwrap_or(0);
        (resp.kind(), n)
    }

    fn dispatch(
        &mut self,
        req: Request<'_>,
        tx: &mut [u8; TX_CAP],
    ) -> Result<Option<Response<'static>>, ErrorCode> {
        match req {
            Request::Identify => {
                let s = self.status();
                Ok(Some(Response::Identity(Identity {
                    serial: SERIAL,
                    firmware: FIRMWARE,
                    state: s.state,
                    load_id: s.load_id,
                })))
            }
            Request::Status => Ok(Some(Response::Status(self.status()))),
            Request::Provision(p) => {
                self.provision(p)?;
                Ok(Some(Response::Status(self.status())))
            }
            Request::Keys { now, keys } => self.keys(now, keys),
            Request::Export { now, challenge } => self.export(now, challenge, tx),
            Request::Wipe { load_id } => self.wipe(load_id),
        }
    }

    /// Keys typed (one frame's worth). The handlers are not inlined: each gets
    /// its own stack frame, so only the deepest sets the high-water mark.
    #[inline(never)]
    fn keys(&mut self, now: u64, keys: &[u8]) -> Result<Option<Response<'static>>, ErrorCode> {
        self.tick(now);
        let clock = self.clock;
        let (Some(lock), Some(store), Some(flash)) =
            (self.lock.as_mut(), self.store.as_mut(), self.flash.as_mut())
        else {
            return Err(ErrorCode::Empty);
        };
        if keys
            .iter()
            .any(|&k| !matches!(k, b'0'..=b'9' | b'*' | b'#'))
        {
            return Err(ErrorCode::BadValue);
        }
        let mut r = KeyResult {
            entries: 0,
            outcome: KeyOutcome::None,
            compartment: 0xFF,
            failures: lock.status(clock).consecutive_failures,
            until: 0,
        };
        for &k in keys {
            match self.keypad.press_ascii(k) {
                Ok(KeyEvent::Submitted(code)) => {
                    r.entries = r.entries.saturating_add(1);
                    let mut p = Persist {
                        store: &mut *store,
                        flash: &mut *flash,
                    };
                    anxin_mark_entry_begin();
                    let res = lock.enter(clock, &code, &mut p);
                    anxin_mark_entry_end();
                    if let Ok(Outcome::Opened { compartment }) = res {
                        self.latches.pulse(compartment);
                    }
                    r = key_result(r.entries, res.map_err(|()| ErrorCode::Storage)?);
                    r.failures = lock.status(clock).consecutive_failures;
                }
                Ok(_) => {}
                Err(_) => {
                    r.entries = r.entries.saturating_add(1);
                    r.outcome = KeyOutcome::Keypad;
                    r.compartment = 0xFF;
                }
            }
        }
        Ok(Some(Response::Keys(r)))
    }

    /// The export, written in place into `tx`.
    #[inline(never)]
    fn export(
        &mut self,
        now: u64,
        challenge: u32,
        tx: &mut [u8; TX_CAP],
    ) -> Result<Option<Response<'static>>, ErrorCode> {
        self.tick(now);
        let clock = self.clock;
        let (Some(lock), Some(store), Some(flash)) =
            (self.lock.as_mut(), self.store.as_mut(), self.flash.as_mut())
        else {
            return Err(ErrorCode::Empty);
        };
        store.set_exported(lock, true);
        let at = HEADER_LEN + 4;
        let out: &mut [u8; EXPORT_MAX_LEN] = (&mut tx[at..at + EXPORT_MAX_LEN])
            .try_into()
            .map_err(|_| ErrorCode::Length)?;
        let mut p = Persist {
            store: &mut *store,
            flash,
        };
        match lock.export_log(clock, challenge, out, &mut p) {
            Ok(n) => {
                self.exported = true;
                tx[HEADER_LEN..at].copy_from_slice(&challenge.to_be_bytes());
                set_tx_export_len(tx, 4 + n);
                Ok(None)
            }
            Err(()) => {
                store.set_exported(lock, self.exported);
                Err(ErrorCode::Storage)
            }
        }
    }

    /// Forgets an exported load.
    #[inline(never)]
    fn wipe(&mut self, load_id: u64) -> Result<Option<Response<'static>>, ErrorCode> {
        let (Some(lock), Some(flash)) = (self.lock.as_ref(), self.flash.as_mut()) else {
            return Err(ErrorCode::Empty);
        };
        if lock.config().load_id != load_id {
            return Err(ErrorCode::WrongId);
        }
        if !self.exported {
            return Err(ErrorCode::NotExported);
        }
        if !Store::wipe(flash) {
            return Err(ErrorCode::Storage);
        }
        self.lock = None;
        self.store = None;
        self.exported = false;
        Ok(Some(Response::Wiped))
    }

    #[inline(never)]
    fn provision(&mut self, p: boxproto::Provision<'_>) -> Result<(), ErrorCode> {
        if self.lock.is_some() {
            return Err(ErrorCode::Loaded);
        }
        let Some(flash) = self.flash.as_mut() else {
            return Err(ErrorCode::Storage);
        };
        if p.box_id != SERIAL {
            return Err(ErrorCode::WrongId);
        }
        if p.secret.len() > SECRET_MAX {
            return Err(ErrorCode::BadValue);
        }
        let secret = Secret::from_bytes(p.secret).map_err(|_| ErrorCode::BadValue)?;
        let digits = Digits::new(p.digits).map_err(|_| ErrorCode::BadValue)?;
        let config = BoxConfig {
            secret,
            box_id: p.box_id,
            load_id: p.load_id,
            start_day: p.start_day,
            compartments: p.compartments,
            digits,
            day_binding: None,
        };
        self.clock = self.clock.max(p.now);
        provision_into(config, self.clock, &mut self.lock);
        let Some(lock) = self.lock.as_ref() else {
            return Err(ErrorCode::BadValue);
        };
        match Store::provision(flash, lock) {
            Some(mut store) => {
                store.cut_after_charge = self.cut_armed;
                self.store = Some(store);
                self.keypad = Keypad::new(digits);
                self.exported = false;
                Ok(())
            }
            None => {
                self.lock = None;
                Err(ErrorCode::Storage)
            }
        }
    }
}

/// `LockBox::provision_into` in its own stack frame: the box is built in `out`.
#[inline(never)]
fn provision_into(config: BoxConfig, now: u64, out: &mut Option<LockBox>) {
    if LockBox::provision_into(out, config, now).is_err() {
        *out = None;
    }
}

fn key_result(entries: u8, o: Outcome) -> KeyResult {
    let (outcome, compartment, until) = match o {
        Outcome::Opened { compartment } => (KeyOutcome::Opened, compartment, 0),
        Outcome::WrongCode { locked_until, .. } => {
            (KeyOutcome::WrongCode, 0xFF, locked_until.unwrap_or(0))
        }
        Outcome::LockedOut { until } => (KeyOutcome::LockedOut, 0xFF, until),
        Outcome::AlreadyUsed { compartment } => (KeyOutcome::AlreadyUsed, compartment, 0),
        Outcome::WrongDay { compartment, .. } => (KeyOutcome::WrongDay, compartment, 0),
    };
    KeyResult {
        entries,
        outcome,
        compartment,
        failures: 0,
        until,
    }
}

/// The export's payload length is parked in the (not yet written) frame
/// header bytes 5..7 until the frame is sealed.
fn set_tx_export_len(tx: &mut [u8; TX_CAP], n: usize) {
    tx[5..7].copy_from_slice(&(n as u16).to_be_bytes());
}

fn tx_export_len(tx: &[u8; TX_CAP]) -> usize {
    usize::from(u16::from_be_bytes([tx[5], tx[6]]))
}

fn frame_error_code(e: FrameError) -> ErrorCode {
    match e {
        FrameError::BadCrc => ErrorCode::BadCrc,
        FrameError::Version(_) => ErrorCode::Version,
        FrameError::Length(_) => ErrorCode::Length,
    }
}

/// Power-up: open the flash file and resume the load it holds, if any.
#[inline(never)]
fn power_up(fw: &mut Firmware, scratch: &mut [u8; STATE_LEN]) {
    fw.flash = SemihostingFlash::open(FLASH_FILE);
    let Some(flash) = fw.flash.as_mut() else {
        hprintln!("BOOT storage unavailable");
        return;
    };
    match Store::resume(flash, scratch, &mut fw.lock) {
        Some((mut store, exported)) => {
            store.cut_after_charge = fw.cut_armed;
            fw.store = Some(store);
            fw.exported = exported;
            if let Some(lock) = fw.lock.as_ref() {
                let s = lock.status(0);
                fw.keypad = Keypad::new(lock.config().digits);
                hprintln!(
                    "BOOT loaded load={} failures={} opened={:#04x}",
                    lock.config().load_id,
                    s.consecutive_failures,
                    s.opened_mask
                );
            }
        }
        None => {
            fw.lock = None;
            hprintln!("BOOT empty");
        }
    }
}

#[entry]
fn main() -> ! {
    hw::paint_stack();
    let latches = Latches::init();
    let cut_armed = SemihostingFlash::exists(CUT_FILE);
    let mut tx = [0u8; TX_CAP];
    let mut fw = Firmware {
        lock: None,
        store: None,
        flash: None,
        keypad: Keypad::new(Digits::DEFAULT),
        exported: false,
        session: Session::new(),
        latches,
        clock: 0,
        cut_armed,
    };
    {
        // The transmit buffer doubles as the boot scratch (it is larger).
        let scratch: &mut [u8; STATE_LEN] = (&mut tx[..STATE_LEN])
            .try_into()
            .unwrap_or_else(|_| loop {});
        power_up(&mut fw, scratch);
    }
    hprintln!("READY serial={} firmware=0.1.0", SERIAL);
    let mut uart = Uart::init();
    let mut rx = Decoder::<RX_CAP>::new();
    loop {
        let Some(b) = uart.read() else {
            uart.wait();
            continue;
        };
        let mut p = rx.push(b);
        loop {
            let (seq, kind, n) = match p {
                Progress::Pending => break,
                Progress::Error(e, head) => {
                    let resp = Response::Error {
                        code: frame_error_code(e),
                        kind: head.kind,
                    };
                    let n = resp.encode(&mut tx[HEADER_LEN..]).unwrap_or(0);
                    (head.seq, resp.kind(), n)
                }
                Progress::Frame(head) => {
                    let (kind, n) = if !fw.session.accept(head.kind, head.seq) {
                        let resp = Response::Error {
                            code: ErrorCode::OutOfOrder,
                            kind: head.kind,
                        };
                        (resp.kind(), resp.encode(&mut tx[HEADER_LEN..]).unwrap_or(0))
                    } else {
                        match Request::decode(head.kind, rx.payload()) {
                            Ok(req) => fw.handle(req, &mut tx),
                            Err(code) => {
                                let resp = Response::Error {
                                    code,
                                    kind: head.kind,
                                };
                                (resp.kind(), resp.encode(&mut tx[HEADER_LEN..]).unwrap_or(0))
                            }
                        }
                    };
                    (head.seq, kind, n)
                }
            };
            if let Some(len) = seal_frame_in_place(kind, seq, n, &mut tx) {
                uart.write(&tx[..len]);
            }
            if kind == KIND_STATUS | boxproto::RESPONSE_BIT {
                hprintln!("STACK used={}", hw::stack_high_water());
            }
            p = rx.poll();
        }
    }
}
