//! Kill-and-restart: the real `anxin serve` sends through a real Kannel, is killed with SIGKILL
//! in the middle of a send batch, and restarted. Every message must reach the fake SMS centre
//! exactly once: none lost, none sent twice. Fails (never skips) without Kannel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anxin_domain::sms::MessageState;
use anxin_sms::testing::{Kannel, FROM, PASSWORD, USERNAME};
use anxin_storage::outbox::NewMessage;
use anxin_storage::{Actor, Store};

const N: usize = 40;

fn serve(data: &Path, config: &Path, port: u16) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anxin"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ANXIN_") {
            c.env_remove(k);
        }
    }
    c.env("ANXIN_LOG", "warn")
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn counts(k: &Kannel) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for (_, _, text) in k.received() {
        *c.entry(text).or_default() += 1;
    }
    c
}

#[test]
fn sigkill_mid_batch_then_restart_sends_each_code_exactly_once() {
    let kannel = Kannel::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("anxin.toml");
    std::fs::write(
        &config,
        format!(
            "[sms]\nprovider = \"kannel\"\nbatch_size = 5\nconcurrency = 1\nsend_delay_ms = 120\n\
             poll_interval_ms = 100\nlease_seconds = 3\nsend_timeout_seconds = 2\n\
             reconcile_seconds = 5\n\
             [sms.kannel]\nurl = \"{}\"\nusername = \"{USERNAME}\"\npassword = \"{PASSWORD}\"\n\
             from = \"{FROM}\"\ndlr_mask = 31\n",
            kannel.sendsms_url()
        ),
    )
    .unwrap();

    // The database and the messages, written by the store directly on the same SQLite file.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(async {
        let s = Store::open_data_dir(&data).await.unwrap();
        s.migrate().await.unwrap();
        let site = s
            .create_site(&Actor::cli(), "YX01", "Yuxi", chrono::Utc::now())
            .await
            .unwrap();
        let now = chrono::Utc::now();
        let msgs: Vec<NewMessage> = (0..N)
            .map(|i| NewMessage {
                idempotency_key: format!("code:{i}:0"),
                client_id: Some(i as i64 + 1),
                site_id: site.id,
                recipient_e164: format!("1390000{i:04}"),
                text: format!("Your code for today: {i:08}"),
                sealed_text: None,
                not_before: now - chrono::Duration::seconds(1),
                expires_at: now + chrono::Duration::hours(1),
            })
            .collect();
        assert_eq!(
            s.enqueue_sms_batch(&Actor::cli(), &msgs, now)
                .await
                .unwrap(),
            N as u64
        );
        s
    });

    // First run: kill it with SIGKILL in the middle of a batch.
    let mut first = serve(&data, &config, port);
    let start = Instant::now();
    loop {
        let n = kannel.received().len();
        if n >= 12 && !n.is_multiple_of(5) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server sent only {n} messages in 30 s\n{}",
            kannel.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = kannel.received().len();
    assert!(at_kill < N, "killed too late to prove anything");
    let in_flight = rt.block_on(async {
        let rows = store
            .list_outbox(1, Some(MessageState::Sending), None, 100)
            .await
            .unwrap();
        rows.len()
    });
    eprintln!("killed after {at_kill} of {N} messages; {in_flight} attempt(s) left in flight");

    // Restart on the same address (the gateway's delivery reports are retried there).
    let mut second = serve(&data, &config, port);
    let got = kannel.wait_received(N, Duration::from_secs(60));
    // Give any wrongful resend time to happen: lease + reconcile + a margin.
    std::thread::sleep(Duration::from_secs(10));
    second.kill().unwrap();
    second.wait().unwrap();
    let c = counts(&kannel);
    assert!(
        got.len() >= N,
        "lost messages: {} of {N}\n{}",
        got.len(),
        kannel.logs()
    );
    for i in 0..N {
        let text = format!("Your code for today: {i:08}");
        assert_eq!(
            c.get(&text),
            Some(&1),
            "message {i} arrived {:?} times",
            c.get(&text)
        );
    }
    assert_eq!(kannel.received().len(), N, "duplicates: {c:?}");
    rt.block_on(async {
        let rows = store.list_outbox(1, None, None, 100).await.unwrap();
        assert_eq!(rows.len(), N);
        for m in rows {
            assert!(
                matches!(m.state, MessageState::Sent | MessageState::Delivered),
                "message {} is {:?}",
                m.id,
                m.state
            );
        }
        store.close().await;
    });
}
