//! The box firmware in QEMU (`lm3s6965evb`), driven over its emulated UART0
//! with the box protocol, as the box station will drive a real box.
//!
//! `ANXIN_FIRMWARE` names the firmware image (`.ci/firmware.sh` builds it and
//! sets it, so in CI these tests never skip). Without it they use
//! `firmware/target/thumbv7m-none-eabi/release/anxin-box-firmware` if it
//! exists, and are skipped (with a message) if it does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxproto::{
    encode_frame, BoxState, Decoder, ErrorCode, KeyOutcome, Progress, Provision, Request, Response,
    FRAME_OVERHEAD, MAX_PAYLOAD,
};
use lockcode::{derive_code, verify_log, Digits, EventKind, Secret};

const SERIAL: u64 = 4;
const START_DAY: u32 = 20_790;
const T0: u64 = 20_790 * 86_400 + 8 * 3600;

fn firmware() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ANXIN_FIRMWARE") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "ANXIN_FIRMWARE={} is not a file", p.display());
        return Some(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../firmware/target/thumbv7m-none-eabi/release/anxin-box-firmware");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipped: no firmware image (run `bash .ci/firmware.sh`)");
        None
    }
}

/// One running QEMU with the box firmware, its UART on a TCP socket and its
/// semihosting console collected line by line.
struct Qemu {
    child: Child,
    uart: TcpStream,
    console: Arc<Mutex<Vec<String>>>,
    rx: Decoder<{ MAX_PAYLOAD + FRAME_OVERHEAD }>,
    seq: u8,
}

impl Qemu {
    fn start(fw: &Path, dir: &Path) -> Qemu {
        Qemu::start_with(fw, dir, &[])
    }

    fn start_with(fw: &Path, dir: &Path, extra: &[&str]) -> Qemu {
        // One start at a time, until QEMU holds its port: a port picked by binding port 0 is
        // free again once the probe is dropped, so two tests starting together could pick the
        // same one; the second QEMU then fails to bind, and its test would talk to the first
        // one's UART and wait for a console that never speaks.
        static STARTING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("qemu-system-arm")
            .current_dir(dir)
            .args(["-M", "lm3s6965evb", "-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-kernel")
            .arg(fw)
            .arg("-serial")
            .arg(format!("tcp:127.0.0.1:{port},server=on"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-system-arm runs");
        let out = child.stdout.take().expect("piped stdout");
        let console = Arc::new(Mutex::new(Vec::new()));
        let c2 = Arc::clone(&console);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                c2.lock().expect("console lock").push(line);
            }
        });
        let t = Instant::now();
        let uart = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if t.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("QEMU's UART did not come up: {e}"),
            }
        };
        uart.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let q = Qemu {
            child,
            uart,
            console,
            rx: Decoder::new(),
            seq: 0,
        };
        q.wait_console("READY");
        q
    }

    fn console(&self) -> Vec<String> {
        self.console.lock().expect("console lock").clone()
    }

    fn wait_console(&self, needle: &str) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self.console().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no {needle:?} on the console: {:?}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.uart.write_all(bytes).expect("uart write");
    }

    /// Reads the next frame: (kind, seq, payload).
    fn read_frame(&mut self) -> (u8, u8, Vec<u8>) {
        let mut b = [0u8; 1];
        loop {
            self.uart
                .read_exact(&mut b)
                .expect("a response from the box");
            match self.rx.push(b[0]) {
                Progress::Pending => {}
                Progress::Frame(h) => return (h.kind, h.seq, self.rx.payload().to_vec()),
                Progress::Error(e, _) => panic!("bad frame from the box: {e:?}"),
            }
        }
    }

    /// Sends a request with sequence number `seq` and returns the response.
    fn call_seq(&mut self, req: Request<'_>, seq: u8) -> (u8, Vec<u8>) {
        let mut p = [0u8; 200];
        let n = req.encode(&mut p).expect("fits");
        let mut f = [0u8; 220];
        let m = encode_frame(req.kind(), seq, &p[..n], &mut f).expect("fits");
        self.send_raw(&f[..m]);
        let (kind, rseq, payload) = self.read_frame();
        assert_eq!(rseq, seq, "the response echoes the sequence number");
        (kind, payload)
    }

    /// Sends a request with the next sequence number.
    fn call(&mut self, req: Request<'_>) -> (u8, Vec<u8>) {
        if matches!(req, Request::Identify) {
            self.seq = self.seq.wrapping_add(7);
        } else {
            self.seq = self.seq.wrapping_add(1);
        }
        let seq = self.seq;
        self.call_seq(req, seq)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The box's RAM budget is 16 KiB: the stack's high-water mark plus the statics, which
/// `.ci/firmware.sh` holds to 1 KiB.
fn assert_within_ram(stack_line: &str) {
    let used: u64 = stack_line
        .trim()
        .strip_prefix("STACK used=")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("not a stack line: {stack_line}"));
    assert!(
        used + 1024 <= 16 * 1024,
        "stack {used} bytes: over the 16 KiB RAM budget with 1 KiB of statics"
    );
}

fn resp(kind: u8, p: &[u8]) -> Response<'_> {
    Response::decode(kind, p).expect("a well-formed response")
}

fn error_of(kind: u8, p: &[u8]) -> ErrorCode {
    match resp(kind, p) {
        Response::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn status(q: &mut Qemu) -> boxproto::BoxStatus {
    let (k, p) = q.call(Request::Status);
    match resp(k, &p) {
        Response::Status(s) => s,
        other => panic!("expected a status, got {other:?}"),
    }
}

fn keys(q: &mut Qemu, now: u64, keys: &str) -> boxproto::KeyResult {
    let (k, p) = q.call(Request::Keys {
        now,
        keys: keys.as_bytes(),
    });
    match resp(k, &p) {
        Response::Keys(r) => r,
        other => panic!("expected a key result, got {other:?}"),
    }
}

fn fresh_secret() -> Vec<u8> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
        | 1;
    (0..32)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn code(secret: &[u8], load_id: u64, compartment: u8) -> String {
    let s = Secret::from_bytes(secret).expect("secret");
    let d = Digits::new(8).expect("digits");
    let c = derive_code(
        &s,
        SERIAL,
        load_id,
        compartment,
        START_DAY + u32::from(compartment),
        d,
    );
    c.to_text().as_str().to_owned()
}

/// A code that is no compartment's code.
fn wrong_code(secret: &[u8], load_id: u64) -> String {
    let valid: Vec<String> = (0..6).map(|i| code(secret, load_id, i)).collect();
    (0u32..)
        .map(|k| format!("{:08}", (12_345_678 + k * 7_919) % 100_000_000))
        .find(|c| !valid.contains(c))
        .expect("a wrong code")
}

fn provision(q: &mut Qemu, secret: &[u8], load_id: u64) -> (u8, Vec<u8>) {
    q.call(Request::Provision(Provision {
        load_id,
        box_id: SERIAL,
        start_day: START_DAY,
        compartments: 6,
        digits: 8,
        now: T0,
        secret,
    }))
}

fn latches(q: &Qemu) -> Vec<String> {
    q.console()
        .into_iter()
        .filter(|l| l.starts_with("LATCH"))
        .collect()
}

#[test]
fn a_box_is_loaded_opened_locked_out_exported_and_wiped() {
    let Some(fw) = firmware() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut q = Qemu::start(&fw, dir.path());

    // Before an identify: out of order.
    let (k, p) = q.call_seq(Request::Status, 0);
    assert_eq!(error_of(k, &p), ErrorCode::OutOfOrder);

    let (k, p) = q.call(Request::Identify);
    let Response::Identity(id) = resp(k, &p) else {
        panic!("identity")
    };
    assert_eq!(
        (id.serial, id.state, id.load_id),
        (SERIAL, BoxState::Empty, 0)
    );

    // Bad CRC, wrong version, wrong length: error frames, box unchanged.
    let mut f = [0u8; 32];
    let n = encode_frame(0x03, q.seq.wrapping_add(1), &[], &mut f).expect("fits");
    let mut bad = f;
    bad[n - 1] ^= 0x55;
    q.send_raw(&bad[..n]);
    let (k, _, p) = q.read_frame();
    assert_eq!(error_of(k, &p), ErrorCode::BadCrc);
    let mut v2 = f;
    v2[2] = 2;
    let crc = boxproto::crc32(&v2[2..n - 4]);
    v2[n - 4..n].copy_from_slice(&crc.to_be_bytes());
    q.send_raw(&v2[..n]);
    let (k, _, p) = q.read_frame();
    assert_eq!(error_of(k, &p), ErrorCode::Version);
    q.seq = q.seq.wrapping_add(1);
    let m = encode_frame(0x03, q.seq, &[0], &mut f).expect("fits");
    q.send_raw(&f[..m]);
    let (k, _, p) = q.read_frame();
    assert_eq!(error_of(k, &p), ErrorCode::Length);
    // A bad request leaves the box empty.
    assert_eq!(status(&mut q).state, BoxState::Empty);

    // Provision: a bad value, then the load.
    let secret = fresh_secret();
    let (k, p) = q.call(Request::Provision(Provision {
        load_id: 77,
        box_id: SERIAL,
        start_day: START_DAY,
        compartments: 7,
        digits: 8,
        now: T0,
        secret: &secret,
    }));
    assert_eq!(error_of(k, &p), ErrorCode::BadValue);
    let (k, p) = provision(&mut q, &secret, 77);
    let Response::Status(s) = resp(k, &p) else {
        panic!("status")
    };
    assert_eq!(
        (s.state, s.load_id, s.compartments),
        (BoxState::Loaded, 77, 6)
    );
    // A second provision while the load is out: refused, box unchanged.
    let other = fresh_secret();
    let (k, p) = provision(&mut q, &other, 78);
    assert_eq!(error_of(k, &p), ErrorCode::Loaded);
    assert_eq!(status(&mut q).load_id, 77);

    // The day's code opens exactly that compartment.
    let r = keys(
        &mut q,
        T0 + 2 * 86_400,
        &format!("{}#", code(&secret, 77, 2)),
    );
    assert_eq!((r.outcome, r.compartment), (KeyOutcome::Opened, 2));
    q.wait_console("LATCH compartment=2");
    assert_eq!(latches(&q), ["LATCH compartment=2 open"]);
    let r = keys(
        &mut q,
        T0 + 2 * 86_400,
        &format!("{}#", code(&secret, 77, 2)),
    );
    assert_eq!(r.outcome, KeyOutcome::AlreadyUsed);

    // Wrong codes: counted; the 5th starts a 60 s lockout; then nothing is compared.
    let t = T0 + 3 * 86_400;
    let wrong = wrong_code(&secret, 77);
    for i in 1..=4 {
        let r = keys(&mut q, t, &format!("{wrong}#"));
        assert_eq!(
            (r.outcome, r.failures, r.until),
            (KeyOutcome::WrongCode, i, 0)
        );
    }
    let r = keys(&mut q, t, &format!("{wrong}#"));
    assert_eq!(
        (r.outcome, r.failures, r.until),
        (KeyOutcome::WrongCode, 5, t + 60)
    );
    let right = format!("{}#", code(&secret, 77, 3));
    let r = keys(&mut q, t + 59, &right);
    assert_eq!((r.outcome, r.until), (KeyOutcome::LockedOut, t + 60));
    // Bad keypad input is not counted.
    let r = keys(&mut q, t + 61, "123#");
    assert_eq!((r.outcome, r.failures), (KeyOutcome::Keypad, 5));
    let r = keys(&mut q, t + 61, &right);
    assert_eq!(
        (r.outcome, r.compartment, r.failures),
        (KeyOutcome::Opened, 3, 0)
    );
    assert_eq!(
        latches(&q),
        ["LATCH compartment=2 open", "LATCH compartment=3 open"]
    );
    let s = status(&mut q);
    assert_eq!((s.opened, s.lifetime_failures), (0b1100, 5));

    // Wipe before the log was read: refused.
    let (k, p) = q.call(Request::Wipe { load_id: 77 });
    assert_eq!(error_of(k, &p), ErrorCode::NotExported);

    // Export with a fresh challenge: verified with the load's secret.
    let challenge = 0x5EED_1234;
    let (k, p) = q.call(Request::Export {
        now: t + 100,
        challenge,
    });
    let Response::Export {
        challenge: echo,
        log,
    } = resp(k, &p)
    else {
        panic!("export")
    };
    assert_eq!(echo, challenge);
    let sec = Secret::from_bytes(&secret).expect("secret");
    let v = verify_log(&sec, SERIAL, 77, log).expect("the export verifies");
    let sum = v.summary();
    assert_eq!(sum.challenge, challenge, "the challenge is inside the MAC");
    assert_eq!((sum.opened_mask, sum.lifetime_failures), (0b1100, 5));
    let kinds: Vec<EventKind> = v.entries().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::Provisioned));
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::Opened).count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::Failed).count(), 5);
    assert!(kinds.contains(&EventKind::Lockout));
    // A tampered export fails.
    let mut forged = log.to_vec();
    forged[40 + 12] ^= 1;
    assert!(verify_log(&sec, SERIAL, 77, &forged).is_err());

    // Wipe: wrong load refused; then empty, and a new load may go in.
    let (k, p) = q.call(Request::Wipe { load_id: 78 });
    assert_eq!(error_of(k, &p), ErrorCode::WrongId);
    let (k, p) = q.call(Request::Wipe { load_id: 77 });
    assert_eq!(resp(k, &p), Response::Wiped);
    assert_eq!(status(&mut q).state, BoxState::Empty);
    let (k, p) = provision(&mut q, &other, 78);
    assert!(matches!(resp(k, &p), Response::Status(s) if s.load_id == 78));
    // A replayed frame (same sequence number) is refused.
    let seq = q.seq;
    let (k, p) = q.call_seq(Request::Status, seq);
    assert_eq!(error_of(k, &p), ErrorCode::OutOfOrder);
    q.kill();
}

#[test]
fn a_power_cut_mid_entry_keeps_the_failure_count() {
    let Some(fw) = firmware() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = fresh_secret();
    let mut q = Qemu::start(&fw, dir.path());
    q.call(Request::Identify);
    provision(&mut q, &secret, 91);
    let wrong = wrong_code(&secret, 91);
    keys(&mut q, T0, &format!("{wrong}#"));
    let r = keys(&mut q, T0 + 5, &format!("{wrong}#"));
    assert_eq!(r.failures, 2);
    q.kill();

    // Power back on: the load and its count are there. Arm the power cut.
    std::fs::write(dir.path().join("anxin-box.cut"), b"").expect("cut file");
    let mut q = Qemu::start(&fw, dir.path());
    let boot = q.wait_console("BOOT");
    assert!(boot.contains("load=91 failures=2"), "{boot}");
    q.call(Request::Identify);
    // Type compartment 0's right code: the box writes the charged attempt,
    // then "loses power" before comparing. Kill QEMU there.
    q.seq = q.seq.wrapping_add(1);
    let mut p = [0u8; 64];
    let code0 = format!("{}#", code(&secret, 91, 0));
    let req = Request::Keys {
        now: T0 + 10,
        keys: code0.as_bytes(),
    };
    let n = req.encode(&mut p).expect("fits");
    let mut f = [0u8; 96];
    let m = encode_frame(req.kind(), q.seq, &p[..n], &mut f).expect("fits");
    q.send_raw(&f[..m]);
    q.wait_console("POWER-CUT");
    q.kill();
    std::fs::remove_file(dir.path().join("anxin-box.cut")).expect("cut file");

    // A corrupt newest slot (as a write torn by the power cut would leave it):
    // the box falls back to the other slot, the record before the write-ahead
    // (whose code was never compared).
    let flash = dir.path().join("anxin-box.flash");
    let good = std::fs::read(&flash).expect("flash file");
    let gen = |slot: usize| {
        let at = slot * 4096 + 120;
        u32::from_be_bytes([good[at], good[at + 1], good[at + 2], good[at + 3]])
    };
    let newest = if gen(1) > gen(0) { 1 } else { 0 };
    let mut torn = good.clone();
    torn[newest * 4096 + 128 + 10] ^= 0xFF;
    std::fs::write(&flash, &torn).expect("flash file");
    let q = Qemu::start(&fw, dir.path());
    let boot = q.wait_console("BOOT");
    assert!(boot.contains("load=91 failures=2"), "{boot}");
    q.kill();
    std::fs::write(&flash, &good).expect("flash file");

    let mut q = Qemu::start(&fw, dir.path());
    let boot = q.wait_console("BOOT");
    assert!(boot.contains("failures=3 opened=0x00"), "{boot}");
    q.call(Request::Identify);
    let s = status(&mut q);
    assert_eq!(
        (s.consecutive_failures, s.lifetime_failures, s.opened),
        (3, 3, 0)
    );
    let resumed = q.wait_console("STACK used=");
    eprintln!("after resuming a load: {resumed}");
    assert_within_ram(&resumed);
    assert!(latches(&q).is_empty(), "nothing opened");
    // The code itself was never compared: typed again, it opens.
    let r = keys(&mut q, T0 + 20, &code0);
    assert_eq!(
        (r.outcome, r.compartment, r.failures),
        (KeyOutcome::Opened, 0, 0)
    );
    let (k, p) = q.call(Request::Export {
        now: T0 + 30,
        challenge: 7,
    });
    let Response::Export { log, .. } = resp(k, &p) else {
        panic!("export")
    };
    let sec = Secret::from_bytes(&secret).expect("secret");
    let v = verify_log(&sec, SERIAL, 91, log).expect("verifies");
    let kinds: Vec<EventKind> = v.entries().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::Interrupted), "{kinds:?}");
    assert_eq!(v.summary().lifetime_failures, 3);
    q.kill();
}

/// Instructions for one code entry (`LockBox::enter`, with its log record,
/// its two state writes and the constant-time compare of all 6 codes),
/// counted in a single-step execution trace: QEMU runs one guest instruction
/// per translation block (`-singlestep`) and logs every block executed
/// (`-d exec,nochain`); the count is the number of logged blocks from the
/// firmware's `anxin_mark_entry_begin` to `anxin_mark_entry_end`.
#[test]
fn instructions_per_code_entry() {
    let Some(fw) = firmware() else { return };
    let nm = Command::new("arm-none-eabi-nm")
        .arg(&fw)
        .output()
        .expect("arm-none-eabi-nm runs");
    let syms = String::from_utf8_lossy(&nm.stdout);
    let addr = |name: &str| {
        syms.lines()
            .find(|l| l.ends_with(name))
            .and_then(|l| u32::from_str_radix(l.split(' ').next()?, 16).ok())
            .expect("mark symbol")
    };
    let (begin, end) = (
        addr(" anxin_mark_entry_begin"),
        addr(" anxin_mark_entry_end"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("trace.log");
    let trace_arg = trace.to_str().expect("utf-8 path").to_owned();
    let mut q = Qemu::start_with(
        &fw,
        dir.path(),
        &["-singlestep", "-d", "exec,nochain", "-D", &trace_arg],
    );
    q.call(Request::Identify);
    status(&mut q);
    let secret = fresh_secret();
    provision(&mut q, &secret, 5);
    status(&mut q);
    let wrong = format!("{}#", wrong_code(&secret, 5));
    let cases = [
        ("wrong code", wrong.clone()),
        ("wrong code", wrong.clone()),
        ("wrong code", wrong.clone()),
        ("wrong code", wrong.clone()),
        ("wrong code starting a lockout (2 log records)", wrong),
        (
            "locked out (not compared)",
            format!("{}#", code(&secret, 5, 1)),
        ),
        ("right code, opens", format!("{}#", code(&secret, 5, 0))),
    ];
    for (i, (_, k)) in cases.iter().enumerate() {
        let t = if i == 6 { T0 + 100 } else { T0 };
        keys(&mut q, t, k);
        status(&mut q);
    }
    q.call(Request::Export {
        now: T0 + 200,
        challenge: 1,
    });
    status(&mut q);
    let stack = q.wait_console("STACK used=");
    let stack_line = q
        .console()
        .into_iter()
        .rfind(|l| l.starts_with("STACK used="))
        .unwrap_or(stack);
    for l in q.console().iter().filter(|l| l.starts_with("STACK")) {
        eprintln!("  after each step: {l}");
    }
    eprintln!("RAM: {stack_line} bytes of stack at most (statics: see arm-none-eabi-size)");
    assert_within_ram(&stack_line);
    q.kill();
    let log = std::fs::read_to_string(&trace).expect("trace");
    let mut counts = Vec::new();
    let mut n: Option<u64> = None;
    let mut profile = std::collections::HashMap::new();
    for line in log.lines().filter(|l| l.starts_with("Trace ")) {
        let pc = line
            .split('[')
            .nth(1)
            .and_then(|r| r.split('/').nth(1))
            .and_then(|p| u32::from_str_radix(p, 16).ok());
        let Some(pc) = pc else { continue };
        if pc == begin {
            n = Some(0);
        } else if pc == end {
            counts.extend(n.take());
        }
        if let Some(c) = n.as_mut() {
            *c += 1;
            if counts.is_empty() {
                let f = line.rsplit(' ').next().unwrap_or("?").to_owned();
                *profile.entry(f).or_insert(0u64) += 1;
            }
        }
    }
    let mut top: Vec<_> = profile.into_iter().collect();
    top.sort_by_key(|(_, c)| std::cmp::Reverse(*c));
    eprintln!("first entry by function:");
    for (f, c) in top.iter().take(12) {
        eprintln!("  {c:>7}  {f}");
    }
    assert_eq!(counts.len(), cases.len(), "one count per entry: {counts:?}");
    eprintln!("instructions per code entry (6 compartments, Cortex-M3, QEMU single-step trace):");
    for ((what, _), c) in cases.iter().zip(&counts) {
        eprintln!("  {c:>7}  {what}");
    }
    let budget: u64 = std::env::var("ANXIN_ENTRY_BUDGET")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(u64::MAX);
    // Entries that write one log record (wrong code, opened) are held to the
    // budget; one that also starts a lockout writes two records, so two.
    let one = counts[0].max(counts[6]);
    assert!(
        one <= budget,
        "a code entry took {one} > {budget} instructions"
    );
    assert!(
        counts[4] <= budget.saturating_mul(2),
        "a lockout entry took {}",
        counts[4]
    );
}

/// The box station's client (`boxproto::station`) loads and returns a box:
/// provision and check the status, the client opens a compartment, export
/// with a fresh challenge and verify, wipe.
#[test]
fn a_station_loads_and_returns_a_box() {
    use boxproto::station::{Station, StationError};
    let Some(fw) = firmware() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let q = Qemu::start(&fw, dir.path());
    let mut st = Station::new(q.uart.try_clone().expect("uart clone"));
    let id = st.identify().expect("identify");
    assert_eq!((id.serial, id.state), (SERIAL, BoxState::Empty));
    let secret = fresh_secret();
    let p = Provision {
        load_id: 31,
        box_id: id.serial,
        start_day: START_DAY,
        compartments: 4,
        digits: 8,
        now: T0,
        secret: &secret,
    };
    let s = st.provision(&p).expect("provision");
    assert_eq!(
        (s.state, s.load_id, s.compartments, s.start_day, s.opened),
        (BoxState::Loaded, 31, 4, START_DAY, 0)
    );
    assert!(matches!(
        st.provision(&p),
        Err(StationError::Refused(ErrorCode::Loaded))
    ));
    let k = st
        .keys(T0 + 86_400, format!("{}#", code(&secret, 31, 1)).as_bytes())
        .expect("keys");
    assert_eq!((k.outcome, k.compartment), (KeyOutcome::Opened, 1));
    assert!(matches!(
        st.wipe(31),
        Err(StationError::Refused(ErrorCode::NotExported))
    ));
    let challenge = 0xC0FF_EE01;
    let log = st.export(T0 + 2 * 86_400, challenge).expect("export");
    let sec = Secret::from_bytes(&secret).expect("secret");
    let v = verify_log(&sec, SERIAL, 31, &log).expect("verifies");
    assert_eq!(
        (v.summary().challenge, v.summary().opened_mask),
        (challenge, 0b10)
    );
    st.wipe(31).expect("wipe");
    assert_eq!(st.identify().expect("identify").state, BoxState::Empty);
    q.kill();
}
