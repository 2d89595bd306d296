//! The checkpoint page: an administrator or manager signs a checkpoint of the audit chain,
//! reads it, downloads it to hand to a second party, and the log verifies against it. In its
//! own binary, because the audit key is process-wide (`anxin_storage::audit::use_audit_key`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anxin_domain::audit::Checkpoint;
use anxin_domain::Role;
use anxin_server::testing::TestApp;
use anxin_server::Config;
use axum::http::{header, StatusCode};

use common::world_on;

const KEY: [u8; 32] = [7; 32];

#[tokio::test]
async fn a_manager_signs_prints_and_downloads_a_checkpoint() {
    assert!(anxin_storage::audit::use_audit_key(KEY));
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let w = world_on(TestApp::with_config(&config).await).await;
    let site = w.app.site("YX09").await;
    w.app.user(&site, "boss", Role::Manager).await;
    let mut boss = w.app.browser("boss", "zh-CN").await;
    let audit = boss.get("/audit").await;
    assert!(
        audit.text.contains("href=\"/audit/checkpoints\""),
        "linked from the audit page"
    );
    let page = boss.get("/audit/checkpoints").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("尚未签过检查点"), "{}", page.text);
    let none = boss.get("/audit/checkpoints/latest.txt").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    let a = boss.submit("/audit/checkpoints", &[]).await;
    let head = w.app.store.audit_head().await.unwrap();
    assert!(
        a.text
            .contains(&format!("已签检查点，截至第 {} 条", head.seq)),
        "{}",
        a.text
    );
    assert!(a.text.contains(&format!("data-seq=\"{}\"", head.seq)));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("audit-checkpoints"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1, "written outside the database");

    // The download is the signed text; it checks against the key and the log verifies against it.
    let d = boss.get("/audit/checkpoints/latest.txt").await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(d.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let cp = Checkpoint::parse(&d.text).unwrap();
    assert_eq!(cp.seq, head.seq);
    cp.check_mac(&KEY).unwrap();
    assert!(cp.check_mac(&[8; 32]).is_err(), "signed with the audit key");
    assert_eq!(
        w.app.store.verify_audit_against(&[cp]).await.unwrap().ok(),
        Some(head.seq)
    );

    // Only administrators and managers: a nurse has neither the page nor the form.
    let mut nurse = w.app.browser("nurse", "zh-CN").await;
    assert_eq!(
        nurse.get("/audit/checkpoints").await.status,
        StatusCode::FORBIDDEN
    );
    w.app.cleanup().await;
}
