//! `anxin-box-sim serve`: the simulated box on a TCP port, speaking the box
//! wire protocol (`boxproto`, `docs/box-protocol.md`) exactly as the
//! firmware does on its UART, so the box station and its tests can use either.
//!
//! The box lives in a directory: `box.json` (the ordinary box file, so the
//! other simulator commands work on it too) while a load is in the box, and
//! `exported` once its log was read out. Each connection is one session (as
//! plugging the box into the station).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use boxproto::{
    encode_frame, BoxState, BoxStatus, Decoder, ErrorCode, FrameError, Identity, KeyOutcome,
    KeyResult, Progress, Request, Response, Session, FRAME_OVERHEAD, MAX_PAYLOAD,
};
use clap::Args;
use lockcode::{BoxConfig, Digits, KeyEvent, Keypad, LockBox, Outcome, Secret, EXPORT_MAX_LEN};

use crate::{io_err, BoxFile, BoxSimError, FileStorage, BOX_FILE_FORMAT};

/// `serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the box (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// The box's serial (its box id).
    #[arg(long, default_value_t = 4)]
    pub serial: u64,
}

/// Firmware version the simulator reports.
const SIM_VERSION: [u8; 3] = [0, 1, 0];

/// The simulated box in `dir`.
pub struct SimBox {
    dir: PathBuf,
    serial: u64,
    clock: u64,
    keypad: Option<Keypad>,
}

impl SimBox {
    /// The box kept in `dir`.
    pub fn new(dir: &Path, serial: u64) -> SimBox {
        SimBox {
            dir: dir.to_path_buf(),
            serial,
            clock: 0,
            keypad: None,
        }
    }

    fn box_file(&self) -> PathBuf {
        self.dir.join("box.json")
    }

    fn exported_mark(&self) -> PathBuf {
        self.dir.join("exported")
    }

    fn load(&self) -> Result<Option<(BoxFile, LockBox)>, ErrorCode> {
        let path = self.box_file();
        if !path.exists() {
            return Ok(None);
        }
        BoxFile::load(&path)
            .map(Some)
            .map_err(|_| ErrorCode::Storage)
    }

    fn status(&self) -> Result<BoxStatus, ErrorCode> {
        Ok(match self.load()? {
            None => BoxStatus {
                state: BoxState::Empty,
                box_id: self.serial,
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
            Some((_, lock)) => {
                let s = lock.status(self.clock);
                let c = lock.config();
                BoxStatus {
                    state: if self.exported_mark().exists() {
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
        })
    }

    /// Handles one request; the response's kind and payload.
    pub fn handle(&mut self, req: Request<'_>) -> (u8, Vec<u8>) {
        let kind = req.kind();
        let mut export = Vec::new();
        let resp = match self.dispatch(req, &mut export) {
            Ok(r) => r,
            Err(code) => Response::Error { code, kind },
        };
        let mut p = vec![0u8; MAX_PAYLOAD];
        let n = resp.encode(&mut p).unwrap_or(0);
        p.truncate(n);
        (resp.kind(), p)
    }

    fn dispatch<'a>(
        &mut self,
        req: Request<'_>,
        export: &'a mut Vec<u8>,
    ) -> Result<Response<'a>, ErrorCode> {
        match req {
            Request::Identify => {
                let s = self.status()?;
                Ok(Response::Identity(Identity {
                    serial: self.serial,
                    firmware: SIM_VERSION,
                    state: s.state,
                    load_id: s.load_id,
                }))
            }
            Request::Status => Ok(Response::Status(self.status()?)),
            Request::Provision(p) => {
                if self.box_file().exists() {
                    return Err(ErrorCode::Loaded);
                }
                if p.box_id != self.serial {
                    return Err(ErrorCode::WrongId);
                }
                let secret = Secret::from_bytes(p.secret).map_err(|_| ErrorCode::BadValue)?;
                let digits = Digits::new(p.digits).map_err(|_| ErrorCode::BadValue)?;
                let config = BoxConfig {
                    secret: secret.clone(),
                    box_id: p.box_id,
                    load_id: p.load_id,
                    start_day: p.start_day,
                    compartments: p.compartments,
                    digits,
                    day_binding: None,
                };
                self.clock = self.clock.max(p.now);
                let lock =
                    LockBox::provision(config, self.clock).map_err(|_| ErrorCode::BadValue)?;
                let path = self.box_file();
                let mut storage = FileStorage {
                    path: &path,
                    file: BoxFile {
                        format: BOX_FILE_FORMAT.into(),
                        secret_hex: hex::encode(secret.expose()),
                        box_id: p.box_id,
                        load_id: p.load_id,
                        start_day: p.start_day,
                        compartments: p.compartments,
                        digits: p.digits,
                        rtc: None,
                        state_hex: String::new(),
                    },
                };
                let _ = std::fs::remove_file(self.exported_mark());
                lockcode::Storage::persist(&mut storage, &lock.state().to_bytes())
                    .map_err(|_| ErrorCode::Storage)?;
                self.keypad = Some(Keypad::new(digits));
                Ok(Response::Status(self.status()?))
            }
            Request::Keys { now, keys } => {
                self.clock = self.clock.max(now);
                let Some((file, mut lock)) = self.load()? else {
                    return Err(ErrorCode::Empty);
                };
                if keys
                    .iter()
                    .any(|&k| !matches!(k, b'0'..=b'9' | b'*' | b'#'))
                {
                    return Err(ErrorCode::BadValue);
                }
                let path = self.box_file();
                let mut storage = FileStorage { path: &path, file };
                let pad = self
                    .keypad
                    .get_or_insert_with(|| Keypad::new(lock.config().digits));
                let mut r = KeyResult {
                    entries: 0,
                    outcome: KeyOutcome::None,
                    compartment: 0xFF,
                    failures: lock.status(self.clock).consecutive_failures,
                    until: 0,
                };
                for &k in keys {
                    match pad.press_ascii(k) {
                        Ok(KeyEvent::Submitted(code)) => {
                            r.entries = r.entries.saturating_add(1);
                            let o = lock
                                .enter(self.clock, &code, &mut storage)
                                .map_err(|_| ErrorCode::Storage)?;
                            let (outcome, compartment, until) = match o {
                                Outcome::Opened { compartment } => {
                                    (KeyOutcome::Opened, compartment, 0)
                                }
                                Outcome::WrongCode { locked_until, .. } => {
                                    (KeyOutcome::WrongCode, 0xFF, locked_until.unwrap_or(0))
                                }
                                Outcome::LockedOut { until } => {
                                    (KeyOutcome::LockedOut, 0xFF, until)
                                }
                                Outcome::AlreadyUsed { compartment } => {
                                    (KeyOutcome::AlreadyUsed, compartment, 0)
                                }
                                Outcome::WrongDay { compartment, .. } => {
                                    (KeyOutcome::WrongDay, compartment, 0)
                                }
                            };
                            r.outcome = outcome;
                            r.compartment = compartment;
                            r.until = until;
                            r.failures = lock.status(self.clock).consecutive_failures;
                        }
                        Ok(_) => {}
                        Err(_) => {
                            r.entries = r.entries.saturating_add(1);
                            r.outcome = KeyOutcome::Keypad;
                            r.compartment = 0xFF;
                        }
                    }
                }
                Ok(Response::Keys(r))
            }
            Request::Export { now, challenge } => {
                self.clock = self.clock.max(now);
                let Some((file, mut lock)) = self.load()? else {
                    return Err(ErrorCode::Empty);
                };
                let path = self.box_file();
                let mut storage = FileStorage { path: &path, file };
                let mut buf = [0u8; EXPORT_MAX_LEN];
                let n = lock
                    .export_log(self.clock, challenge, &mut buf, &mut storage)
                    .map_err(|_| ErrorCode::Storage)?;
                std::fs::write(self.exported_mark(), b"").map_err(|_| ErrorCode::Storage)?;
                export.extend_from_slice(&buf[..n]);
                let log: &'a [u8] = export;
                Ok(Response::Export { challenge, log })
            }
            Request::Wipe { load_id } => {
                let Some((_, lock)) = self.load()? else {
                    return Err(ErrorCode::Empty);
                };
                if lock.config().load_id != load_id {
                    return Err(ErrorCode::WrongId);
                }
                if !self.exported_mark().exists() {
                    return Err(ErrorCode::NotExported);
                }
                std::fs::remove_file(self.box_file()).map_err(|_| ErrorCode::Storage)?;
                let _ = std::fs::remove_file(self.exported_mark());
                self.keypad = None;
                Ok(Response::Wiped)
            }
        }
    }

    /// Serves one connection (one session) until the peer hangs up.
    pub fn session(&mut self, mut conn: impl Read + Write) -> std::io::Result<()> {
        let mut rx = Box::new(Decoder::<{ 128 + FRAME_OVERHEAD }>::new());
        let mut session = Session::new();
        let mut buf = [0u8; 256];
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            for &b in &buf[..n] {
                let mut p = rx.push(b);
                loop {
                    let (kind, seq, payload) = match p {
                        Progress::Pending => break,
                        Progress::Error(e, head) => {
                            let code = match e {
                                FrameError::BadCrc => ErrorCode::BadCrc,
                                FrameError::Version(_) => ErrorCode::Version,
                                FrameError::Length(_) => ErrorCode::Length,
                            };
                            let (k, pl) = error_payload(code, head.kind);
                            (k, head.seq, pl)
                        }
                        Progress::Frame(head) => {
                            let (k, pl) = if !session.accept(head.kind, head.seq) {
                                error_payload(ErrorCode::OutOfOrder, head.kind)
                            } else {
                                match Request::decode(head.kind, rx.payload()) {
                                    Ok(req) => self.handle(req),
                                    Err(code) => error_payload(code, head.kind),
                                }
                            };
                            (k, head.seq, pl)
                        }
                    };
                    let mut frame = vec![0u8; payload.len() + FRAME_OVERHEAD];
                    if let Some(m) = encode_frame(kind, seq, &payload, &mut frame) {
                        conn.write_all(&frame[..m])?;
                    }
                    p = rx.poll();
                }
            }
        }
    }
}

fn error_payload(code: ErrorCode, kind: u8) -> (u8, Vec<u8>) {
    let r = Response::Error { code, kind };
    let mut p = vec![0u8; 2];
    let n = r.encode(&mut p).unwrap_or(0);
    p.truncate(n);
    (r.kind(), p)
}

/// Serves the box in `dir` on `listener`, one connection at a time, forever.
pub fn serve_on(listener: TcpListener, dir: &Path, serial: u64) -> Result<(), BoxSimError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut sim = SimBox::new(dir, serial);
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        // A broken connection ends its session only.
        let _ = sim.session(conn);
    }
    Ok(())
}

/// Plugs the simulated box `serial`, kept in `bench/<label>/` (its registry name, e.g.
/// `BOX-0004`), into a station: the station's end of the cable is returned, and a thread
/// serves the box until the station hangs up. The bench stands for a shelf of boxes and a
/// staff member who plugs in the one the load names; a real line has one box on it, and the
/// station checks its serial.
pub fn plug(bench: &Path, serial: u64, label: &str) -> std::io::Result<UnixStream> {
    let name: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if name.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a box label of letters, digits and dashes",
        ));
    }
    let dir = bench.join(name);
    std::fs::create_dir_all(&dir)?;
    let (station, boxside) = UnixStream::pair()?;
    std::thread::Builder::new()
        .name(format!("box-sim-{serial}"))
        .spawn(move || {
            let mut sim = SimBox::new(&dir, serial);
            // The station hanging up ends the session; nothing to report.
            let _ = sim.session(boxside);
        })?;
    Ok(station)
}

/// `serve`: prints `listening on ADDR`, then serves forever.
pub fn serve(a: ServeArgs, out: &mut impl Write) -> Result<(), BoxSimError> {
    let listener = TcpListener::bind(&a.listen).map_err(|source| BoxSimError::Io {
        path: PathBuf::from(&a.listen),
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| BoxSimError::Io {
        path: PathBuf::from(&a.listen),
        source,
    })?;
    crate::say(out, format_args!("listening on {addr}"))?;
    out.flush().map_err(io_err(Path::new("<stdout>")))?;
    serve_on(listener, &a.dir, a.serial)
}
