//! The server as box station for the real firmware: the box firmware runs in QEMU
//! (`lm3s6965evb`), its UART0 on a TCP port that the server's `boxes.station` names. The
//! server loads the box over the emulated cable, the day's code goes out through the SMS
//! outbox (file provider), typed on the box's keypad it opens exactly that compartment, and
//! the return reads the export with a fresh challenge, reconciles it and empties the box.
//!
//! The firmware image comes from `.ci/firmware.sh` (`ANXIN_FIRMWARE`, or its default output
//! path). Without one the test says so and passes, except under `CI`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use anxin_server::testing::TestApp;
use anxin_server::Config;
use anxin_sms::provider::FileProvider;
use anxin_sms::worker::{Worker, WorkerSettings};
use axum::http::{Method, StatusCode};
use boxproto::station::Station;
use boxproto::{BoxState, KeyOutcome};
use chrono::Duration;
use serde_json::json;

use common::world_on;

fn firmware() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ANXIN_FIRMWARE") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../firmware/target/thumbv7m-none-eabi/release/anxin-box-firmware");
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no firmware image under CI: run `bash .ci/firmware.sh` first"
    );
    eprintln!("skipped: no firmware image (run `bash .ci/firmware.sh`)");
    None
}

/// The firmware in QEMU, its UART listening on `port` (a station connects when it needs to).
struct Qemu {
    child: Child,
    port: u16,
    console: Arc<Mutex<Vec<String>>>,
}

impl Qemu {
    fn start(fw: &Path, dir: &Path) -> Qemu {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut child = Command::new("qemu-system-arm")
            .current_dir(dir)
            .args(["-M", "lm3s6965evb", "-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-kernel")
            .arg(fw)
            .arg("-serial")
            .arg(format!("tcp:127.0.0.1:{port},server=on,wait=off"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-system-arm runs");
        let out = child.stdout.take().unwrap();
        let console = Arc::new(Mutex::new(Vec::new()));
        let c2 = Arc::clone(&console);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                c2.lock().unwrap().push(line);
            }
        });
        let q = Qemu {
            child,
            port,
            console,
        };
        let t = Instant::now();
        while !q.console().iter().any(|l| l.contains("READY")) {
            assert!(
                t.elapsed() < StdDuration::from_secs(30),
                "no READY: {:?}",
                q.console()
            );
            std::thread::sleep(StdDuration::from_millis(20));
        }
        q
    }

    fn console(&self) -> Vec<String> {
        self.console.lock().unwrap().clone()
    }

    /// The box's keypad (and its other requests) over the cable, as a service tool would.
    fn keypad(&self) -> Station<std::net::TcpStream> {
        let s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(StdDuration::from_secs(20)))
            .unwrap();
        let mut st = Station::new(s);
        st.identify().unwrap();
        st
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_loads_and_takes_back_the_firmware_box_over_its_uart() {
    let Some(fw) = firmware() else { return };
    let dir = tempfile::tempdir().unwrap();
    let q = Qemu::start(&fw, dir.path());
    let mut config = Config::default();
    config.boxes.station = Some(format!("tcp:127.0.0.1:{}", q.port));
    let w = world_on(TestApp::with_config(&config).await).await;
    // The firmware's serial is 4: the centre's fourth box.
    for n in 1..=4 {
        let (s, _) = w
            .call(
                Method::POST,
                &w.doctor,
                "/api/v1/boxes",
                Some(json!({"serial": format!("BOX-{n:04}")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let id = w.stable_client("YX-0047-QE", true).await;
    w.approved(id, 2).await;
    let load = |serial: &str| {
        let path = format!("/api/v1/clients/{id}/loads");
        let body = json!({"serial": serial, "days": 2, "code_hour": 7});
        let w = &w;
        async move { w.call(Method::POST, &w.doctor, &path, Some(body)).await }
    };

    // The wrong box on the cable: refused at the serial, naming both boxes; nothing written.
    let (s, e) = load("BOX-0003").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "station.wrong_box");
    assert_eq!(e["error"]["field"], "serial");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("BOX-0004") && msg.contains("BOX-0003"),
        "{msg}"
    );
    let (_, loads) = w
        .call(
            Method::GET,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            None,
        )
        .await;
    assert_eq!(loads, json!([]), "no load was kept");

    // The right box: written over the UART and read back; no secret in the answer.
    let t = Instant::now();
    let (s, l) = load("BOX-0004").await;
    let provision_ms = t.elapsed().as_millis();
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(l["written"]["serial"], "BOX-0004");
    assert_eq!(l["written"]["firmware"], "0.1.0");
    assert!(!l.to_string().contains("secret"), "{l}");
    let load_id = l["load"]["id"].as_i64().unwrap();
    let mut keypad = q.keypad();
    let st = keypad.status().unwrap();
    assert_eq!(
        (st.state, st.load_id, st.compartments),
        (BoxState::Loaded, load_id as u64, 2)
    );
    drop(keypad);
    let (s, r) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/loads/{load_id}/hand-out"),
            Some(json!({"phone_confirmed": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{r}");

    // The next morning the first day's code goes out through the outbox to the file provider.
    w.app.clock.advance(Duration::days(1));
    let sms = dir.path().join("sms.log");
    let st = w.app.state.clone();
    let signer = w
        .app
        .state
        .settings
        .sms
        .signer(&w.app.store)
        .await
        .unwrap()
        .clone();
    let worker = Worker::new(
        w.app.store.clone(),
        Arc::new(FileProvider::new(sms.clone())),
        signer,
        "http://127.0.0.1:1".into(),
        WorkerSettings {
            batch_size: 10,
            concurrency: 1,
            poll_interval: StdDuration::from_millis(100),
            lease: Duration::seconds(30),
            reconcile: Duration::seconds(60),
            backoff: anxin_domain::sms::Backoff {
                base: Duration::seconds(5),
                max: Duration::seconds(60),
                max_attempts: 3,
            },
            send_delay: StdDuration::ZERO,
        },
        Arc::new(move || st.now()),
    )
    .with_vault(w.app.vault.clone());
    assert_eq!(worker.run_once().await.unwrap().claimed, 1, "today's code");
    let text = std::fs::read_to_string(&sms).unwrap();
    let code: String = text
        .lines()
        .last()
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|d| (6..=9).contains(&d.len()))
        .expect("a code in the text")
        .to_owned();

    // At home, on the box's keypad: a wrong code counts a failure, the day's code opens
    // compartment 1 and no other.
    let now = u64::try_from(w.app.state.now().timestamp()).unwrap();
    let mut keypad = q.keypad();
    let wrong: String = code
        .chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                char::from(c as u8 + 1)
            }
        })
        .collect();
    let k = keypad.keys(now, format!("{wrong}#").as_bytes()).unwrap();
    assert_eq!((k.outcome, k.failures), (KeyOutcome::WrongCode, 1));
    let k = keypad.keys(now + 5, format!("{code}#").as_bytes()).unwrap();
    assert_eq!((k.outcome, k.compartment), (KeyOutcome::Opened, 0));
    let latches: Vec<String> = q
        .console()
        .into_iter()
        .filter(|l| l.starts_with("LATCH"))
        .collect();
    assert_eq!(latches, vec!["LATCH compartment=0 open".to_owned()]);
    drop(keypad);

    // Back at the centre: the station reads the log with a fresh challenge and reconciles.
    w.app.clock.advance(Duration::days(2));
    let doctor = w.app.login("doctor").await;
    let t = Instant::now();
    let (s, r) = w
        .call(
            Method::POST,
            &doctor,
            &format!("/api/v1/loads/{load_id}/return/station"),
            None,
        )
        .await;
    let read_back_ms = t.elapsed().as_millis();
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["reconciliation"]["opened"], json!([0]));
    assert_eq!(r["reconciliation"]["unopened"], json!([1]));
    assert_eq!(r["failed_attempts"], 1);
    assert_eq!(r["tampering"], false);
    assert_eq!(
        (
            r["station"]["serial"].clone(),
            r["station"]["wiped"].clone()
        ),
        (json!("BOX-0004"), json!(true))
    );
    // Provisioned, failed, opened, exported.
    assert_eq!(r["log_records"], 4);
    let returned = w.app.store.load(load_id).await.unwrap();
    assert!(returned.sealed_secret.is_empty(), "the secret is erased");
    assert_eq!(
        returned.state,
        anxin_domain::boxes::LoadState::Returned,
        "returned"
    );
    let mut keypad = q.keypad();
    assert_eq!(
        keypad.status().unwrap().state,
        BoxState::Empty,
        "the box was wiped"
    );
    eprintln!("box station over QEMU's UART: load {provision_ms} ms, return {read_back_ms} ms");
    w.app.cleanup().await;
}
