//! Benchmark (run in release mode; figures go in reports, never into test assertions):
//!
//! 1. derive the day's code for 300,000 active boxes (national scale) and enqueue one message
//!    each in the SQLite outbox;
//! 2. the sustained rate at which the worker hands messages to a real Kannel (fake SMS centre).
//!
//!     cargo run --release -p anxin-sms --features testing --example sms_bench [BOXES] [TO_KANNEL]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anxin_domain::sms::{Templates, TextKind, TextLang};
use anxin_sms::dlr::DlrSigner;
use anxin_sms::kannel::{KannelProvider, KannelSettings};
use anxin_sms::testing::{Kannel, FROM, PASSWORD, USERNAME};
use anxin_sms::worker::{Worker, WorkerSettings};
use anxin_storage::outbox::NewMessage;
use anxin_storage::{Actor, Store};
use chrono::{Duration, Utc};
use lockcode::code::{derive_code, Digits, Secret};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let boxes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let to_kannel: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5_000);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    store.migrate().await.unwrap();
    let site = store
        .create_site(&Actor::cli(), "CN01", "National", Utc::now())
        .await
        .unwrap();
    let now = Utc::now();
    let day = (now.timestamp() / 86_400) as u32;
    let templates = Templates::default();

    // 1. Derive and enqueue.
    let t0 = Instant::now();
    let mut msgs = Vec::with_capacity(boxes);
    for b in 0..boxes as u64 {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&b.to_be_bytes());
        key[8] = 0xA5;
        let secret = Secret::from_bytes(&key).unwrap();
        let code = derive_code(&secret, b, 1, 0, day, Digits::DEFAULT);
        msgs.push(NewMessage {
            idempotency_key: format!("code:{b}:1:0"),
            client_id: Some(b as i64 + 1),
            site_id: site.id,
            recipient_e164: format!("+86139{:08}", b),
            text: templates.render(
                TextKind::DailyCode,
                TextLang::ZhCn,
                "Anxin",
                code.to_text().as_str(),
            ),
            sealed_text: None,
            not_before: now,
            expires_at: now + Duration::hours(20),
        });
    }
    let derived = t0.elapsed();
    let added = store
        .enqueue_sms_batch(&Actor::cli(), &msgs, now)
        .await
        .unwrap();
    let total = t0.elapsed();
    println!(
        "derive + enqueue {boxes} boxes on SQLite: {:.2} s (derive + render {:.2} s, insert {:.2} s), {added} rows",
        total.as_secs_f64(),
        derived.as_secs_f64(),
        (total - derived).as_secs_f64()
    );
    drop(msgs);

    // 2. Hand messages to a real Kannel. A fresh outbox with `to_kannel` due messages.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Store::open_data_dir(dir2.path()).await.unwrap();
    store2.migrate().await.unwrap();
    let site2 = store2
        .create_site(&Actor::cli(), "CN01", "National", Utc::now())
        .await
        .unwrap();
    let msgs: Vec<NewMessage> = (0..to_kannel)
        .map(|i| NewMessage {
            idempotency_key: format!("k{i}"),
            client_id: None,
            site_id: site2.id,
            recipient_e164: format!("+86138{i:08}"),
            text: format!("Your code for today: {i:08}"),
            sealed_text: None,
            not_before: now,
            expires_at: now + Duration::hours(1),
        })
        .collect();
    store2
        .enqueue_sms_batch(&Actor::cli(), &msgs, now)
        .await
        .unwrap();
    let kannel = Kannel::start();
    let provider = KannelProvider::new(KannelSettings {
        url: kannel.sendsms_url(),
        username: USERNAME.into(),
        password: PASSWORD.to_owned().into(),
        from: FROM.into(),
        dlr_mask: 0,
        smsc: None,
        timeout: StdDuration::from_secs(10),
    })
    .unwrap();
    let worker = Worker::new(
        store2.clone(),
        Arc::new(provider),
        DlrSigner::new(b"bench-key-0123456789"),
        "http://127.0.0.1:9".into(),
        WorkerSettings::from_config(&anxin_sms::SmsConfig::default()),
        Arc::new(Utc::now),
    );
    let t1 = Instant::now();
    let mut accepted = 0;
    while accepted < to_kannel {
        let r = worker.run_once().await.unwrap();
        accepted += r.accepted;
        if r.claimed == 0 {
            break;
        }
    }
    let secs = t1.elapsed().as_secs_f64();
    println!(
        "handed to Kannel: {accepted} messages in {secs:.2} s = {:.0} messages/s (batch 100, concurrency 16, SQLite synchronous=FULL)",
        accepted as f64 / secs
    );
    let got = kannel.wait_received(accepted, StdDuration::from_secs(120));
    println!("fake SMS centre received {} messages", got.len());
}
