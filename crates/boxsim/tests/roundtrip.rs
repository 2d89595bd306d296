//! Runs the real `anxin-box-sim` binary through a whole load: provision,
//! type codes, restart between runs, lockout, export and verify the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const SECRET: &str = "000102030405060708090a0b0c0d0e0f10111213";
const T0: u64 = 1_728_000_000;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anxin-box-sim"))
        .args(args)
        .output()
        .expect("run anxin-box-sim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn enter(boxf: &str, code: &str, now: u64) -> (i32, String) {
    let o = sim(&[
        "enter",
        "--box",
        boxf,
        "--code",
        code,
        "--now",
        &now.to_string(),
    ]);
    (o.status.code().unwrap_or(-1), stdout(&o))
}

#[test]
fn simulator_round_trips_a_load() {
    let dir = tempfile::tempdir().unwrap();
    let boxf = dir.path().join("box.json");
    let boxf = boxf.to_str().unwrap();
    let logf = dir.path().join("log.bin");
    let logf = logf.to_str().unwrap();

    let o = sim(&[
        "provision",
        "--box",
        boxf,
        "--secret-hex",
        SECRET,
        "--box-id",
        "42",
        "--load-id",
        "7",
        "--start-day",
        "20000",
        "--compartments",
        "6",
        "--now",
        &T0.to_string(),
        "--print-codes",
    ]);
    assert!(o.status.success(), "{o:?}");
    let codes: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("compartment "))
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    // Same codes as the documented vectors.
    assert_eq!(codes.len(), 6);
    assert_eq!(codes[0], "55712575");

    // A second provision without --force is refused.
    let again = sim(&[
        "provision",
        "--box",
        boxf,
        "--box-id",
        "1",
        "--load-id",
        "1",
    ]);
    assert_eq!(again.status.code(), Some(1));

    // Open compartments 0..3 on separate runs (each run is a restart).
    for (i, code) in codes.iter().enumerate().take(3) {
        let (rc, out) = enter(boxf, code, T0 + 3600 * i as u64);
        assert_eq!(
            (rc, out.trim()),
            (0, format!("opened compartment {i}").as_str())
        );
    }
    let (rc, out) = enter(boxf, &codes[1], T0 + 20_000);
    assert_eq!(rc, 5, "{out}");
    assert!(out.contains("refused: code already used"));

    // Bad input: clear refusals, not counted.
    assert_eq!(enter(boxf, "12ab5678", T0 + 20_000).0, 7);
    assert_eq!(enter(boxf, "123456789", T0 + 20_000).0, 7);

    // Five wrong codes on five runs: lockout; it holds across restarts.
    let t = T0 + 30_000;
    for k in 1..=5 {
        let (rc, out) = enter(boxf, "00000000", t);
        assert_eq!(rc, 3, "{out}");
        assert!(
            out.contains(&format!("refused: wrong code ({k} failure")),
            "{out}"
        );
    }
    let (rc, out) = enter(boxf, &codes[3], t + 30);
    assert_eq!(rc, 4, "{out}");
    assert!(out.contains("refused: locked out until"));
    // Clock set back: still locked out.
    assert_eq!(enter(boxf, &codes[3], t - 1000).0, 4);
    let (rc, out) = enter(boxf, &codes[3], t + 61);
    assert_eq!((rc, out.trim()), (0, "opened compartment 3"));

    assert!(
        sim(&["tamper", "--box", boxf, "--now", &(t + 100).to_string()])
            .status
            .success()
    );
    let st = sim(&["status", "--box", boxf, "--now", &(t + 100).to_string()]);
    assert!(
        stdout(&st).contains("opened: 0, 1, 2, 3"),
        "{}",
        stdout(&st)
    );

    let ex = sim(&[
        "export-log",
        "--box",
        boxf,
        "--to",
        logf,
        "--challenge",
        "4711",
        "--now",
        &(t + 200).to_string(),
    ]);
    assert!(ex.status.success(), "{ex:?}");

    // Verify through the box file and through the secret.
    let v = sim(&[
        "verify-log",
        "--box",
        boxf,
        "--log",
        logf,
        "--challenge",
        "4711",
    ]);
    assert!(v.status.success(), "{v:?}");
    let text = stdout(&v);
    assert!(text.contains("log OK"), "{text}");
    assert!(text.contains("opened mask 0b001111"), "{text}");
    assert!(text.contains("5 failures"), "{text}");
    assert!(text.contains("lid tamper"), "{text}");
    let v2 = sim(&[
        "verify-log",
        "--log",
        logf,
        "--secret-hex",
        SECRET,
        "--box-id",
        "42",
        "--load-id",
        "7",
    ]);
    assert!(v2.status.success(), "{v2:?}");
    // Wrong challenge, wrong load: exit 8.
    assert_eq!(
        sim(&[
            "verify-log",
            "--box",
            boxf,
            "--log",
            logf,
            "--challenge",
            "1"
        ])
        .status
        .code(),
        Some(8)
    );
    let v3 = sim(&[
        "verify-log",
        "--log",
        logf,
        "--secret-hex",
        SECRET,
        "--box-id",
        "42",
        "--load-id",
        "8",
    ]);
    assert_eq!(v3.status.code(), Some(8));

    // A tampered log fails with exit 8 and names the problem.
    let mut bytes = std::fs::read(logf).unwrap();
    bytes[40 + 40 + 13] ^= 0x01; // compartment of record 1
    std::fs::write(logf, &bytes).unwrap();
    let bad = sim(&["verify-log", "--box", boxf, "--log", logf]);
    assert_eq!(bad.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad MAC"));
}

fn corrupt_case(dir: &Path, name: &str, edit: impl Fn(&mut serde_json::Value)) -> String {
    let boxf = dir.join(name);
    let p = boxf.to_str().unwrap();
    let o = sim(&[
        "provision",
        "--box",
        p,
        "--box-id",
        "1",
        "--load-id",
        "2",
        "--start-day",
        "20000",
        "--compartments",
        "2",
        "--now",
        &T0.to_string(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&boxf).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&boxf, v.to_string()).unwrap();
    let o = sim(&[
        "enter",
        "--box",
        p,
        "--code",
        "12345678",
        "--now",
        &T0.to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn corrupt_box_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flip_state = |v: &mut serde_json::Value| {
        let s = v["state_hex"].as_str().unwrap().to_string();
        let mut b = hex::decode(s).unwrap();
        b[30] ^= 0xff;
        v["state_hex"] = hex::encode(b).into();
    };
    assert!(corrupt_case(d, "a.json", flip_state).contains("checksum"));
    let flip_log = |v: &mut serde_json::Value| {
        let s = v["state_hex"].as_str().unwrap().to_string();
        let mut b = hex::decode(s).unwrap();
        b[72 + 20] ^= 0x01;
        v["state_hex"] = hex::encode(b).into();
    };
    assert!(corrupt_case(d, "a2.json", flip_log).contains("event log is corrupt"));
    assert!(corrupt_case(d, "b.json", |v| v["secret_hex"] = "abcd".into()).contains("secret"));
    assert!(corrupt_case(d, "c.json", |v| v["compartments"] = 9.into()).contains("compartments"));
    assert!(corrupt_case(d, "d.json", |v| v["load_id"] = 3.into()).contains("another box or load"));
    assert!(corrupt_case(d, "e.json", |v| v["state_hex"] = "zz".into()).contains("state_hex"));
    assert!(corrupt_case(d, "f.json", |v| v["digits"] = 12.into()).contains("digits"));
    let garbage = d.join("g.json");
    std::fs::write(&garbage, b"\x00\xffnot json").unwrap();
    let o = sim(&["status", "--box", garbage.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a valid box file"));
    let o = sim(&["status", "--box", d.join("missing.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}
