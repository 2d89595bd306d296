//! A login flood beyond the hashing bound: every answer is 401 or 429 (with `Retry-After`),
//! never 5xx, and staff can log in once it has passed. Its own test binary, because the bound
//! is process-wide (`anxin_server::throttle`) and is set small here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use anxin_domain::Role;
use anxin_server::testing::{TestApp, PASSWORD};
use axum::http::{header, StatusCode};

/// `n` concurrent logins with unknown usernames, each from its own address.
async fn flood(app: &Arc<TestApp>, n: usize, tag: &str) -> (usize, usize) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = app.clone();
        let name = format!("{tag}{i}");
        set.spawn(async move {
            let addr = format!("10.{}.{}.{}:4000", i / 65536, (i / 256) % 256, i % 256);
            app.login_from(&addr, &name, "wrong-password-123").await
        });
    }
    let (mut refused, mut busy) = (0, 0);
    while let Some(a) = set.join_next().await {
        let a = a.unwrap();
        match a.status {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                busy += 1;
                assert_eq!(a.json()["error"]["code"], "too_many_requests");
                let secs: u64 = a.headers[header::RETRY_AFTER]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(secs >= 1);
            }
            other => panic!("{tag}: a flooded login answered {other}: {}", a.text),
        }
    }
    (refused, busy)
}

async fn flood_then_log_in(app: TestApp) {
    let site = app.site("YX01").await;
    app.user(&site, "nurse.li", Role::Dispenser).await;
    let app = Arc::new(app);
    // Fewer than the in-flight cap (1 × 32): the 429s come from the hashing slot's wait.
    let (refused, busy) = flood(&app, 24, "slot").await;
    assert!(
        busy > 0,
        "no 429 from the hashing bound ({refused} refused)"
    );
    assert!(refused > 0, "nothing was checked at all");
    // Far beyond the in-flight cap: the excess is turned away before the database.
    let (refused, busy) = flood(&app, 300, "flight").await;
    assert!(busy >= 200, "{busy} answered 429, {refused} refused");
    // Once it has passed, the nurse logs in.
    let a = app.login_from("192.168.1.20:5", "nurse.li", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    Arc::try_unwrap(app)
        .unwrap_or_else(|_| panic!("app still shared"))
        .cleanup()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_beyond_the_hashing_bound_answer_429_never_500() {
    // One hash at a time, and a 30 ms wait for it: far less than a queue of 24 hashes takes.
    assert!(anxin_server::throttle::configure(1, 30));
    assert_eq!(anxin_server::throttle::gate().permits(), 1);
    flood_then_log_in(TestApp::new().await).await;
    flood_then_log_in(TestApp::postgres().await).await;
}
