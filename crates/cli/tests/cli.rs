//! The real `anxin` binary, started the way an operator starts it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn anxin(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anxin"));
    c.arg("--data-dir").arg(data).env("ANXIN_LOG", "warn");
    // The test process may carry ANXIN_* settings of its own; the binary must not see them.
    for (k, _) in std::env::vars() {
        if k.starts_with("ANXIN_") && k != "ANXIN_LOG" {
            c.env_remove(k);
        }
    }
    c
}

fn run(mut c: Command, stdin: &str) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn sites_users_backup_and_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let mut c = anxin(d);
    c.args(["site", "add", "--code", "YX01", "--name", "Yuxi Ping An"]);
    let o = run(c, "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("Site YX01"));

    let mut c = anxin(d);
    c.args([
        "user",
        "add",
        "--site",
        "YX01",
        "--username",
        "nurse.li",
        "--role",
        "dispenser",
    ]);
    let o = run(c, "a-long-enough-password\n");
    assert!(o.status.success(), "{}", text(&o.stderr));

    // Bad input: a short password, an unknown role, an unknown site. Nothing is written.
    let mut c = anxin(d);
    c.args([
        "user",
        "add",
        "--site",
        "YX01",
        "--username",
        "nurse.wu",
        "--role",
        "dispenser",
    ]);
    let o = run(c, "short\n");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("password: The password must be at least 12 characters"),
        "{}",
        text(&o.stderr)
    );
    for (pw, why) in [
        ("password1234", "password: The password is too common"),
        (
            "aaaaaaaaaaaa",
            "password: The password must not be one character repeated",
        ),
        (
            "nurse.wu-at-the-window",
            "password: The password must not contain the username",
        ),
    ] {
        let mut c = anxin(d);
        c.args([
            "user",
            "add",
            "--site",
            "YX01",
            "--username",
            "nurse.wu",
            "--role",
            "dispenser",
        ]);
        let o = run(c, &format!("{pw}\n"));
        assert!(!o.status.success(), "{pw}");
        assert!(text(&o.stderr).contains(why), "{pw}: {}", text(&o.stderr));
    }
    let mut c = anxin(d);
    c.args([
        "user",
        "add",
        "--site",
        "YX01",
        "--username",
        "nurse.wu",
        "--role",
        "boss",
    ]);
    let o = run(c, "a-long-enough-password\n");
    assert!(
        text(&o.stderr).contains("role: unknown role `boss`"),
        "{}",
        text(&o.stderr)
    );
    let mut c = anxin(d);
    c.args([
        "user",
        "add",
        "--site",
        "NOPE",
        "--username",
        "nurse.wu",
        "--role",
        "dispenser",
    ]);
    let o = run(c, "a-long-enough-password\n");
    assert!(
        text(&o.stderr).contains("site NOPE not found"),
        "{}",
        text(&o.stderr)
    );

    let mut c = anxin(d);
    c.args(["audit", "verify"]);
    let o = run(c, "");
    assert!(o.status.success());
    assert_eq!(text(&o.stdout).trim(), "Audit trail intact: 2 entries.");

    let backup = d.join("backup.sqlite3");
    let mut c = anxin(d);
    c.args(["backup", "--to"]).arg(&backup);
    let o = run(c, "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Readable by its owner only, and the key must be kept too (the message names it).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    assert!(text(&o.stdout).contains("anxin.key"), "{}", text(&o.stdout));
    // The backup is a working database: audit verify passes on it.
    let restored = d.join("restored");
    std::fs::create_dir(&restored).unwrap();
    std::fs::copy(&backup, restored.join("anxin.sqlite3")).unwrap();
    // Its audit chain is keyed: without the data key file it cannot be checked (and says so)…
    let mut c = anxin(&restored);
    c.args(["audit", "verify"]);
    let o = run(c, "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("needs the audit key"),
        "{}",
        text(&o.stderr)
    );
    assert!(!restored.join("anxin.key").exists());
    // …with it, it verifies.
    std::fs::copy(d.join("anxin.key"), restored.join("anxin.key")).unwrap();
    let mut c = anxin(&restored);
    c.args(["audit", "verify"]);
    assert!(run(c, "").status.success());
    let mut c = anxin(d);
    c.args(["backup", "--to"]).arg(&backup);
    assert!(text(&run(c, "").stderr).contains("already exists"));

    // Someone edits an audit row behind Anxin's back (removing the append-only guard first).
    let db = d.join("anxin.sqlite3");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("DROP TRIGGER audit_log_append_only_update")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let mut c = anxin(d);
    c.args(["audit", "verify"]);
    let o = run(c, "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("audit entry 2: altered"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn configuration_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("anxin.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nlisen = 1\n").unwrap();
    let mut c = anxin(dir.path());
    c.arg("--config").arg(&cfg).arg("migrate");
    let o = run(c, "");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("lisen: unknown field `lisen`"),
        "{}",
        text(&o.stderr)
    );

    let mut c = anxin(dir.path());
    c.arg("migrate").env(
        "ANXIN_DATABASE_URL",
        "postgres://anxin:s3cret-pw@127.0.0.1:1/anxin",
    );
    let o = run(c, "");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot open the database at postgres://anxin:***@127.0.0.1:1/anxin"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "secret printed: {err}");
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Language: en\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_demo_answers_in_a_browser_way() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (gt06, osmand) = (
        format!("127.0.0.1:{}", free()),
        format!("127.0.0.1:{}", free()),
    );
    let mut c = anxin(dir.path());
    c.args(["serve", "--demo", "--listen", &addr])
        .env("ANXIN_GPS__ENABLED", "true")
        .env("ANXIN_GPS__GT06_LISTEN", &gt06)
        .env("ANXIN_GPS__OSMAND_LISTEN", &osmand);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("listening on") || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    assert!(printed.contains("250 clients"), "{printed}");
    assert!(
        printed.contains("nurse") && printed.contains("anxin-demo-2026"),
        "{printed}"
    );
    assert!(printed.contains(&format!("http://{addr}")), "{printed}");
    let health = http_get(&addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let login = http_get(&addr, "/login");
    assert!(
        login.contains("<form method=\"post\" action=\"/login\">"),
        "{login}"
    );
    assert!(login.contains("Log in"));
    // The tracker ports are open: a demo box's GT06 login is acknowledged, an unknown
    // device on the OsmAnd port is refused by name.
    let mut sock = (0..50)
        .find_map(|_| {
            TcpStream::connect(&gt06).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(100));
                None
            })
        })
        .expect("GT06 port");
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.write_all(&anxin_tracker::gt06::encode::login("868120300000001", 1))
        .unwrap();
    let mut ack = [0u8; 10];
    sock.read_exact(&mut ack).unwrap();
    assert_eq!(&ack[..4], &[0x78, 0x78, 0x05, 0x01], "{ack:02x?}");
    let refused = http_get(
        &osmand,
        "/?id=868120309999999&lat=25.04&lon=102.71&timestamp=1",
    );
    assert!(
        refused.starts_with("HTTP/1.1 404") && refused.contains("not registered"),
        "{refused}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_take_home_policy_is_adopted_from_a_toml_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut c = anxin(d);
    c.args(["site", "add", "--code", "YX01", "--name", "Yuxi"]);
    assert!(run(c, "").status.success());
    let mut c = anxin(d);
    c.args(["policy", "show", "--site", "YX01"]);
    let shown = text(&run(c, "").stdout);
    assert!(shown.contains("version = \"default-2026.1\""), "{shown}");
    // An operator edits the printed policy and adopts it.
    let file = d.join("policy.toml");
    let adopt = |body: &str| {
        std::fs::write(&file, body).unwrap();
        let mut c = anxin(d);
        c.args(["policy", "adopt", "--site", "YX01", "--file"])
            .arg(&file);
        run(c, "")
    };
    let o = adopt(
        &shown
            .replace("default-2026.1", "yuxi-2027.1")
            .replace("min_attendance_30 = 90.0", "min_attendance_30 = 92.0"),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut c = anxin(d);
    c.args(["policy", "show", "--site", "YX01"]);
    let now = text(&run(c, "").stdout);
    assert!(
        now.contains("yuxi-2027.1") && now.contains("min_attendance_30 = 92.0"),
        "{now}"
    );
    // A wrong key is refused, naming it.
    let o = adopt(
        &now.replace("yuxi-2027.1", "x")
            .replace("min_attendance_30", "min_attendence_30"),
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("min_attendence_30"),
        "{}",
        text(&o.stderr)
    );
    // A longer period asking less than a shorter one: refused in English, naming the tier.
    let o = adopt(
        &now.replace("yuxi-2027.1", "yuxi-2027.2")
            .replace("min_attendance_30 = 92.0", "min_attendance_30 = 99.0"),
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr)
            .contains("tiers[1].min_attendance_30: 3 days may not ask less than 2 days do"),
        "{}",
        text(&o.stderr)
    );
    // The same version twice is refused by name.
    let o = adopt(&now);
    assert!(
        text(&o.stderr).contains("Version yuxi-2027.1 was already adopted here"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn signed_audit_checkpoints_catch_a_wiped_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut c = anxin(d);
    c.args(["site", "add", "--code", "YX01", "--name", "Yuxi"]);
    assert!(run(c, "").status.success());
    let mut c = anxin(d);
    c.args(["audit", "checkpoint"]);
    let o = run(c, "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("anxin-audit-checkpoint v1\nseq=1\n"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        std::fs::read_dir(d.join("audit-checkpoints"))
            .unwrap()
            .count(),
        1
    );
    let mut c = anxin(d);
    c.args(["audit", "verify"]);
    let o = run(c, "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("1 signed checkpoints"),
        "{}",
        text(&o.stdout)
    );

    // Someone with the database wipes the log and resets the head: the chain alone is
    // "intact: 0 entries", the checkpoint is not.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = anxin_storage::Store::open_data_dir(d).await.unwrap();
        for q in [
            "DROP TRIGGER audit_log_append_only_delete",
            "DELETE FROM audit_log",
            "UPDATE audit_head SET seq = 0, \
             hash = '0000000000000000000000000000000000000000000000000000000000000000'",
        ] {
            sqlx::query(q).execute(s.pool()).await.unwrap();
        }
        s.close().await;
    });
    let mut c = anxin(d);
    c.args(["audit", "verify"]);
    let o = run(c, "");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("AUDIT TRAIL BROKEN: audit entry 1: missing")
            && text(&o.stderr).contains("signed checkpoint records entry 1"),
        "{}",
        text(&o.stderr)
    );
    // Pointing at an empty directory is refused rather than passed.
    let empty = tempfile::tempdir().unwrap();
    let mut c = anxin(d);
    c.args(["audit", "verify", "--checkpoints"])
        .arg(empty.path());
    let o = run(c, "");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no checkpoint-*.txt"),
        "{}",
        text(&o.stderr)
    );
}
