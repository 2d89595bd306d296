//! `anxin-boxsim` simulates the Anxin take-home lock box on a computer: it
//! provisions a box file, takes typed codes, prints what opens, keeps the
//! box's persistent state in the box file between runs (atomic writes, with
//! the same write-ahead order as firmware), records tamper events, exports
//! the signed event log and verifies it as the server would.
//!
//! The library exposes [`BoxSimArgs`] and [`run`] so the main `anxin` binary
//! can offer `anxin box-sim ...`; the `anxin-box-sim` binary wraps the same.
//! [`serve`] is the box on a TCP port, speaking the box wire protocol.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use lockcode::{
    load_codes, parse_typed_code, verify_log, BoxConfig, DayBinding, Digits, KeypadError, LockBox,
    LogError, Outcome, ResumeError, Secret, Storage, EXPORT_MAX_LEN, STATE_LEN,
};
use serde::{Deserialize, Serialize};

pub mod serve;

/// Value of the `format` field of a box file.
pub const BOX_FILE_FORMAT: &str = "anxin-box-sim/1";

/// Exit-code documentation shown in `--help`.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  ok / compartment opened
  1  error (unreadable or corrupt box file, I/O, bad arguments)
  2  command-line usage error
  3  refused: wrong code
  4  refused: locked out
  5  refused: code already used
  6  refused: valid code but not for today (day binding)
  7  refused: bad keypad input (non-digit key, too many or too few digits)
  8  log verification failed";

/// The box simulator's command line (`anxin-box-sim <COMMAND>`).
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct BoxSimArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BoxSimCommand,
}

/// Simulator subcommands.
#[derive(Debug, Subcommand)]
pub enum BoxSimCommand {
    /// Provision a box file for one load.
    Provision(ProvisionArgs),
    /// Type a code on the keypad.
    Enter(EnterArgs),
    /// Show the box state.
    Status(BoxAt),
    /// Record a lid-tamper event.
    Tamper(BoxAt),
    /// Export the box's signed event log.
    ExportLog(ExportArgs),
    /// Verify an exported log (as the server does at return).
    VerifyLog(VerifyArgs),
    /// Be a box on a TCP port, speaking the box wire protocol (docs/box-protocol.md).
    Serve(serve::ServeArgs),
}

/// `provision` arguments.
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Box file to create.
    #[arg(long = "box", value_name = "FILE")]
    pub box_file: PathBuf,
    /// Secret as hex (20..=64 bytes); default: 32 fresh random bytes.
    #[arg(long, value_name = "HEX")]
    pub secret_hex: Option<String>,
    /// Box id.
    #[arg(long)]
    pub box_id: u64,
    /// Load id.
    #[arg(long)]
    pub load_id: u64,
    /// Day number (days since 1970-01-01) of compartment 0; default: today.
    #[arg(long)]
    pub start_day: Option<u32>,
    /// Compartments in the load (2..=6).
    #[arg(long, default_value_t = 6)]
    pub compartments: u8,
    /// Code digits (6..=9).
    #[arg(long, default_value_t = 8)]
    pub digits: u8,
    /// The box has a real-time clock: a code opens only on its day.
    #[arg(long)]
    pub rtc: bool,
    /// With --rtc: seconds added to the clock to get local time.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub utc_offset_secs: i32,
    /// With --rtc: days a compartment stays openable after its day.
    #[arg(long, default_value_t = 0)]
    pub late_days: u8,
    /// Box time in Unix seconds; default: the system clock.
    #[arg(long)]
    pub now: Option<u64>,
    /// Print the load's codes (for tests and demos only).
    #[arg(long)]
    pub print_codes: bool,
    /// Overwrite an existing box file.
    #[arg(long)]
    pub force: bool,
}

/// `enter` arguments.
#[derive(Debug, Args)]
pub struct EnterArgs {
    /// Box file.
    #[arg(long = "box", value_name = "FILE")]
    pub box_file: PathBuf,
    /// The typed code (digits only).
    #[arg(long, allow_hyphen_values = true)]
    pub code: String,
    /// Box time in Unix seconds; default: the system clock.
    #[arg(long)]
    pub now: Option<u64>,
}

/// A box file and a time.
#[derive(Debug, Args)]
pub struct BoxAt {
    /// Box file.
    #[arg(long = "box", value_name = "FILE")]
    pub box_file: PathBuf,
    /// Box time in Unix seconds; default: the system clock.
    #[arg(long)]
    pub now: Option<u64>,
}

/// `export-log` arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Box file.
    #[arg(long = "box", value_name = "FILE")]
    pub box_file: PathBuf,
    /// Where to write the exported log (binary).
    #[arg(long, value_name = "LOGFILE")]
    pub to: PathBuf,
    /// Challenge number from the server, signed into the export record.
    #[arg(long, default_value_t = 0)]
    pub challenge: u32,
    /// Box time in Unix seconds; default: the system clock.
    #[arg(long)]
    pub now: Option<u64>,
}

/// `verify-log` arguments: the key material comes from a box file or from
/// `--secret-hex`, `--box-id` and `--load-id`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Exported log file.
    #[arg(long, value_name = "LOGFILE")]
    pub log: PathBuf,
    /// Box file to take the secret and ids from.
    #[arg(long = "box", value_name = "FILE", conflicts_with = "secret_hex")]
    pub box_file: Option<PathBuf>,
    /// Secret as hex.
    #[arg(long, value_name = "HEX", requires_all = ["box_id", "load_id"])]
    pub secret_hex: Option<String>,
    /// Box id (with --secret-hex).
    #[arg(long)]
    pub box_id: Option<u64>,
    /// Load id (with --secret-hex).
    #[arg(long)]
    pub load_id: Option<u64>,
    /// Require this challenge in the export record.
    #[arg(long)]
    pub challenge: Option<u32>,
}

/// Why the box refused a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong code.
    WrongCode {
        /// Consecutive failures now.
        failures: u32,
        /// Lockout started by this failure.
        locked_until: Option<u64>,
    },
    /// Locked out; not compared.
    LockedOut {
        /// Until.
        until: u64,
    },
    /// Code of an opened compartment.
    AlreadyUsed {
        /// Compartment.
        compartment: u8,
    },
    /// Valid code, wrong day.
    WrongDay {
        /// Compartment.
        compartment: u8,
        /// Its day.
        day: u32,
        /// Today.
        today: u32,
    },
    /// Bad keypad input.
    BadInput(KeypadError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Refusal::WrongCode {
                failures,
                locked_until: None,
            } => write!(f, "wrong code ({failures} {})", plural(failures)),
            Refusal::WrongCode {
                failures,
                locked_until: Some(t),
            } => write!(
                f,
                "wrong code ({failures} {}); locked out until {}",
                plural(failures),
                Time(t)
            ),
            Refusal::LockedOut { until } => write!(f, "locked out until {}", Time(until)),
            Refusal::AlreadyUsed { compartment } => {
                write!(f, "code already used (compartment {compartment})")
            }
            Refusal::WrongDay {
                compartment,
                day,
                today,
            } => write!(
                f,
                "code for compartment {compartment} is for day {day}, today is day {today}"
            ),
            Refusal::BadInput(e) => write!(f, "bad input: {e}"),
        }
    }
}

/// Simulator errors and refusals; [`exit_code`](Self::exit_code) maps them to
/// the documented exit codes.
#[derive(Debug, thiserror::Error)]
pub enum BoxSimError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The box file is not valid JSON of the expected shape.
    #[error("box file {}: not a valid box file: {source}", path.display())]
    Json {
        /// File.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// A box file field is invalid.
    #[error("box file {}: {what}", path.display())]
    BoxFile {
        /// File.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The stored state is corrupt or belongs elsewhere.
    #[error("box file {}: stored state: {source}", path.display())]
    State {
        /// File.
        path: PathBuf,
        /// Cause.
        source: ResumeError,
    },
    /// A bad command-line value.
    #[error("{0}")]
    Usage(String),
    /// The OS random generator failed.
    #[error("could not get random bytes: {0}")]
    Random(getrandom::Error),
    /// The box refused the code (already printed on stdout by [`run`]).
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The log failed verification.
    #[error("log verification failed: {0}")]
    Log(#[from] LogError),
    /// The log verified but carries another challenge.
    #[error("log verification failed: challenge is {got}, expected {expected}")]
    Challenge {
        /// Expected.
        expected: u32,
        /// In the log.
        got: u32,
    },
}

impl BoxSimError {
    /// The documented process exit code (see [`EXIT_CODES_HELP`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            BoxSimError::Refused(r) => match r {
                Refusal::WrongCode { .. } => 3,
                Refusal::LockedOut { .. } => 4,
                Refusal::AlreadyUsed { .. } => 5,
                Refusal::WrongDay { .. } => 6,
                Refusal::BadInput(_) => 7,
            },
            BoxSimError::Log(_) | BoxSimError::Challenge { .. } => 8,
            _ => 1,
        }
    }

    /// True for refusals, which [`run`] already printed on stdout.
    pub fn is_refusal(&self) -> bool {
        matches!(self, BoxSimError::Refused(_))
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        "failure"
    } else {
        "failures"
    }
}

/// Unix seconds shown as `UNIX (YYYY-MM-DD HH:MM:SS UTC)`.
struct Time(u64);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = (self.0 / 86_400) as i64;
        let secs = self.0 % 86_400;
        // Civil date from day number (H. Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(
            f,
            "{} ({y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC)",
            self.0,
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// The JSON box file: provisioning plus the persistent state as hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoxFile {
    format: String,
    secret_hex: String,
    box_id: u64,
    load_id: u64,
    start_day: u32,
    compartments: u8,
    digits: u8,
    rtc: Option<RtcFile>,
    state_hex: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RtcFile {
    utc_offset_secs: i32,
    late_days: u8,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BoxSimError + '_ {
    move |source| BoxSimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory,
/// fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BoxSimError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(path))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| BoxSimError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

fn parse_secret(hex_str: &str) -> Result<Secret, String> {
    let bytes = hex::decode(hex_str.trim()).map_err(|e| format!("secret is not hex: {e}"))?;
    Secret::from_bytes(&bytes).map_err(|e| e.to_string())
}

impl BoxFile {
    fn config(&self, path: &Path) -> Result<BoxConfig, BoxSimError> {
        let bad = |what: String| BoxSimError::BoxFile {
            path: path.to_path_buf(),
            what,
        };
        if self.format != BOX_FILE_FORMAT {
            return Err(bad(format!(
                "format is {:?}, expected {BOX_FILE_FORMAT:?}",
                self.format
            )));
        }
        let secret = parse_secret(&self.secret_hex).map_err(|e| bad(format!("secret_hex: {e}")))?;
        let digits = Digits::new(self.digits).map_err(|e| bad(format!("digits: {e}")))?;
        let config = BoxConfig {
            secret,
            box_id: self.box_id,
            load_id: self.load_id,
            start_day: self.start_day,
            compartments: self.compartments,
            digits,
            day_binding: self.rtc.map(|r| DayBinding {
                utc_offset_secs: r.utc_offset_secs,
                late_days: r.late_days,
            }),
        };
        config.validate().map_err(|e| bad(e.to_string()))?;
        Ok(config)
    }

    fn load(path: &Path) -> Result<(BoxFile, LockBox), BoxSimError> {
        let text = std::fs::read(path).map_err(io_err(path))?;
        let file: BoxFile = serde_json::from_slice(&text).map_err(|source| BoxSimError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        let config = file.config(path)?;
        let state = hex::decode(file.state_hex.trim()).map_err(|e| BoxSimError::BoxFile {
            path: path.to_path_buf(),
            what: format!("state_hex is not hex: {e}"),
        })?;
        let lock = LockBox::resume(config, &state).map_err(|source| BoxSimError::State {
            path: path.to_path_buf(),
            source,
        })?;
        Ok((file, lock))
    }
}

/// [`Storage`] that rewrites the box file atomically on every persist.
struct FileStorage<'a> {
    path: &'a Path,
    file: BoxFile,
}

impl Storage for FileStorage<'_> {
    type Error = BoxSimError;
    fn persist(&mut self, state: &[u8; STATE_LEN]) -> Result<(), BoxSimError> {
        self.file.state_hex = hex::encode(state);
        let mut json =
            serde_json::to_vec_pretty(&self.file).map_err(|source| BoxSimError::Json {
                path: self.path.to_path_buf(),
                source,
            })?;
        json.push(b'\n');
        write_atomic(self.path, &json)
    }
}

fn now_or_clock(now: Option<u64>) -> u64 {
    now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// Runs one simulator command, printing what happens on stdout.
///
/// Refusals are printed (`refused: ...`) and returned as
/// [`BoxSimError::Refused`]; callers exit with [`BoxSimError::exit_code`]
/// and print other errors themselves.
pub fn run(args: BoxSimArgs) -> Result<(), BoxSimError> {
    let mut out = std::io::stdout().lock();
    match args.command {
        BoxSimCommand::Provision(a) => provision(a, &mut out),
        BoxSimCommand::Enter(a) => enter(a, &mut out),
        BoxSimCommand::Status(a) => status(a, &mut out),
        BoxSimCommand::Tamper(a) => {
            let (file, mut lock) = BoxFile::load(&a.box_file)?;
            let mut storage = FileStorage {
                path: &a.box_file,
                file,
            };
            lock.tamper(now_or_clock(a.now), &mut storage)?;
            say(&mut out, format_args!("tamper event recorded"))
        }
        BoxSimCommand::ExportLog(a) => {
            let (file, mut lock) = BoxFile::load(&a.box_file)?;
            let mut storage = FileStorage {
                path: &a.box_file,
                file,
            };
            let mut buf = [0u8; EXPORT_MAX_LEN];
            let n = lock.export_log(now_or_clock(a.now), a.challenge, &mut buf, &mut storage)?;
            write_atomic(&a.to, &buf[..n])?;
            say(
                &mut out,
                format_args!(
                    "exported {} records to {}",
                    (n - lockcode::EXPORT_HEADER_LEN) / lockcode::ENTRY_LEN,
                    a.to.display()
                ),
            )
        }
        BoxSimCommand::VerifyLog(a) => verify(a, &mut out),
        BoxSimCommand::Serve(a) => serve::serve(a, &mut out),
    }
}

fn say(out: &mut impl Write, args: fmt::Arguments<'_>) -> Result<(), BoxSimError> {
    writeln!(out, "{args}").map_err(io_err(Path::new("<stdout>")))
}

fn provision(a: ProvisionArgs, out: &mut impl Write) -> Result<(), BoxSimError> {
    if a.box_file.exists() && !a.force {
        return Err(BoxSimError::Usage(format!(
            "{} exists; use --force to overwrite",
            a.box_file.display()
        )));
    }
    let now = now_or_clock(a.now);
    let digits = Digits::new(a.digits).map_err(|e| BoxSimError::Usage(e.to_string()))?;
    let start_day = match a.start_day {
        Some(d) => d,
        None => {
            u32::try_from(now / 86_400).map_err(|_| BoxSimError::Usage("--now too large".into()))?
        }
    };
    let (secret, codes) = loop {
        let secret = match &a.secret_hex {
            Some(h) => parse_secret(h).map_err(BoxSimError::Usage)?,
            None => {
                let mut b = [0u8; 32];
                getrandom::getrandom(&mut b).map_err(BoxSimError::Random)?;
                Secret::from_bytes(&b).map_err(|e| BoxSimError::Usage(e.to_string()))?
            }
        };
        let codes = load_codes(
            &secret,
            a.box_id,
            a.load_id,
            start_day,
            a.compartments,
            digits,
        )
        .ok_or_else(|| {
            BoxSimError::Usage(format!(
                "a load has 2 to 6 compartments (got {}) within the day range",
                a.compartments
            ))
        })?;
        if !codes.has_collision() || a.secret_hex.is_some() {
            if codes.has_collision() {
                eprintln!("warning: two compartments share a code; use a fresh secret");
            }
            break (secret, codes);
        }
    };
    let day_binding = a.rtc.then_some(DayBinding {
        utc_offset_secs: a.utc_offset_secs,
        late_days: a.late_days,
    });
    let config = BoxConfig {
        secret: secret.clone(),
        box_id: a.box_id,
        load_id: a.load_id,
        start_day,
        compartments: a.compartments,
        digits,
        day_binding,
    };
    let lock = LockBox::provision(config, now).map_err(|e| BoxSimError::Usage(e.to_string()))?;
    let mut storage = FileStorage {
        path: &a.box_file,
        file: BoxFile {
            format: BOX_FILE_FORMAT.into(),
            secret_hex: hex::encode(secret.expose()),
            box_id: a.box_id,
            load_id: a.load_id,
            start_day,
            compartments: a.compartments,
            digits: a.digits,
            rtc: day_binding.map(|d| RtcFile {
                utc_offset_secs: d.utc_offset_secs,
                late_days: d.late_days,
            }),
            state_hex: String::new(),
        },
    };
    storage.persist(&lock.state().to_bytes())?;
    say(
        out,
        format_args!(
            "provisioned box {} load {}: {} compartments from day {start_day}, {} digits{}",
            a.box_id,
            a.load_id,
            a.compartments,
            a.digits,
            if a.rtc { ", day-bound" } else { "" }
        ),
    )?;
    if a.print_codes {
        for (i, code) in codes.codes().iter().enumerate() {
            say(
                out,
                format_args!("compartment {i} day {}: {code}", start_day + i as u32),
            )?;
        }
    }
    Ok(())
}

fn enter(a: EnterArgs, out: &mut impl Write) -> Result<(), BoxSimError> {
    let (file, mut lock) = BoxFile::load(&a.box_file)?;
    let refuse = |out: &mut dyn Write, r: Refusal| -> BoxSimError {
        let _ = writeln!(out, "refused: {r}");
        BoxSimError::Refused(r)
    };
    let code = match parse_typed_code(a.code.as_bytes(), lock.config().digits) {
        Ok(c) => c,
        Err(e) => return Err(refuse(out, Refusal::BadInput(e))),
    };
    let mut storage = FileStorage {
        path: &a.box_file,
        file,
    };
    let refusal = match lock.enter(now_or_clock(a.now), &code, &mut storage)? {
        Outcome::Opened { compartment } => {
            return say(out, format_args!("opened compartment {compartment}"));
        }
        Outcome::WrongCode {
            failures,
            locked_until,
        } => Refusal::WrongCode {
            failures,
            locked_until,
        },
        Outcome::LockedOut { until } => Refusal::LockedOut { until },
        Outcome::AlreadyUsed { compartment } => Refusal::AlreadyUsed { compartment },
        Outcome::WrongDay {
            compartment,
            day,
            today,
        } => Refusal::WrongDay {
            compartment,
            day,
            today,
        },
    };
    Err(refuse(out, refusal))
}

fn status(a: BoxAt, out: &mut impl Write) -> Result<(), BoxSimError> {
    let (_, lock) = BoxFile::load(&a.box_file)?;
    let s = lock.status(now_or_clock(a.now));
    let c = lock.config();
    say(
        out,
        format_args!(
            "box {} load {}: {} compartments from day {}",
            c.box_id, c.load_id, s.compartments, c.start_day
        ),
    )?;
    let opened: Vec<String> = (0..s.compartments)
        .filter(|i| s.opened_mask & (1 << i) != 0)
        .map(|i| i.to_string())
        .collect();
    let opened = if opened.is_empty() {
        "none".to_string()
    } else {
        opened.join(", ")
    };
    say(out, format_args!("opened: {opened}"))?;
    say(
        out,
        format_args!(
            "failures: {} consecutive, {} total",
            s.consecutive_failures, s.lifetime_failures
        ),
    )?;
    match s.locked_until {
        Some(t) => say(out, format_args!("locked out until {}", Time(t)))?,
        None => say(out, format_args!("not locked out"))?,
    }
    say(out, format_args!("log records: {}", s.log_records))
}

fn verify(a: VerifyArgs, out: &mut impl Write) -> Result<(), BoxSimError> {
    let (secret, box_id, load_id) = match (&a.box_file, &a.secret_hex, a.box_id, a.load_id) {
        (Some(path), None, _, _) => {
            let (file, lock) = BoxFile::load(path)?;
            let c = lock.config();
            (c.secret.clone(), file.box_id, file.load_id)
        }
        (None, Some(h), Some(b), Some(l)) => (parse_secret(h).map_err(BoxSimError::Usage)?, b, l),
        _ => {
            return Err(BoxSimError::Usage(
                "verify-log needs --box FILE or --secret-hex with --box-id and --load-id".into(),
            ))
        }
    };
    let bytes = std::fs::read(&a.log).map_err(io_err(&a.log))?;
    let log = verify_log(&secret, box_id, load_id, &bytes)?;
    let s = log.summary();
    if let Some(expected) = a.challenge {
        if expected != s.challenge {
            return Err(BoxSimError::Challenge {
                expected,
                got: s.challenge,
            });
        }
    }
    say(
        out,
        format_args!(
            "log OK: box {box_id} load {load_id}, records {}..={}, opened mask {:#08b}, {} failures, challenge {}, exported at {}",
            s.first_seq,
            s.first_seq as usize + s.records - 1,
            s.opened_mask,
            s.lifetime_failures,
            s.challenge,
            Time(s.exported_at)
        ),
    )?;
    for e in log.entries() {
        say(out, format_args!("  {e}"))?;
    }
    Ok(())
}
