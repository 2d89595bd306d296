//! Text messages through a real Kannel (bearerbox, smsbox and the fake SMS centre), with
//! delivery reports coming back to Anxin's `/api/v1/sms/dlr` over HTTP. Fails (never skips)
//! when Kannel is not installed: run `bash .ci/kannel.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anxin_domain::sms::{Backoff, MessageState};
use anxin_server::testing::TestApp;
use anxin_sms::kannel::{KannelProvider, KannelSettings};
use anxin_sms::testing::{Kannel, FROM, PASSWORD, USERNAME};
use anxin_sms::worker::{Worker, WorkerSettings};
use anxin_storage::outbox::{NewMessage, OutboxMessage};
use anxin_storage::Actor;
use chrono::Duration;

async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

async fn worker(app: &TestApp, kannel: &Kannel, base: &str) -> Worker {
    let provider = KannelProvider::new(KannelSettings {
        url: kannel.sendsms_url(),
        username: USERNAME.into(),
        password: PASSWORD.to_owned().into(),
        from: FROM.into(),
        dlr_mask: 31,
        smsc: None,
        timeout: StdDuration::from_secs(5),
    })
    .unwrap();
    let signer = app
        .state
        .settings
        .sms
        .signer(&app.store)
        .await
        .unwrap()
        .clone();
    let st = app.state.clone();
    Worker::new(
        app.store.clone(),
        Arc::new(provider),
        signer,
        base.to_owned(),
        WorkerSettings {
            batch_size: 20,
            concurrency: 4,
            poll_interval: StdDuration::from_millis(100),
            lease: Duration::seconds(30),
            reconcile: Duration::seconds(60),
            backoff: Backoff {
                base: Duration::seconds(5),
                max: Duration::seconds(60),
                max_attempts: 8,
            },
            send_delay: StdDuration::ZERO,
        },
        Arc::new(move || st.now()),
    )
}

async fn enqueue(app: &TestApp, site: i64, n: usize, prefix: &str) -> Vec<OutboxMessage> {
    let now = app.state.now();
    let mut out = Vec::new();
    for i in 0..n {
        let (m, _) = app
            .store
            .enqueue_sms(
                &Actor::cli(),
                NewMessage {
                    idempotency_key: format!("{prefix}:{i}"),
                    client_id: Some(i as i64 + 1),
                    site_id: site,
                    recipient_e164: format!("1380000{i:04}"),
                    text: format!("Your code for today: {prefix}{i:04}"),
                    sealed_text: None,
                    not_before: now,
                    expires_at: now + Duration::hours(12),
                },
                now,
            )
            .await
            .unwrap();
        out.push(m);
    }
    out
}

/// Each text fakesmsc received, with how many times.
fn counts(kannel: &Kannel) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for (_, _, text) in kannel.received() {
        *c.entry(text).or_default() += 1;
    }
    c
}

async fn wait_for_reports(app: &TestApp, msgs: &[OutboxMessage]) {
    for _ in 0..100 {
        let mut all = true;
        for m in msgs {
            if app.store.sms_reports(m.id).await.unwrap().is_empty() {
                all = false;
            }
        }
        if all {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_reach_kannel_once_and_reports_come_back() {
    let kannel = Kannel::start();
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    let base = serve(&app).await;
    let w = worker(&app, &kannel, &base).await;
    let msgs = enqueue(&app, site.id, 6, "a").await;
    let round = w.run_once().await.unwrap();
    assert_eq!(round.claimed, 6);
    assert_eq!(round.accepted, 6, "{}", kannel.logs());
    let got = kannel.wait_received(6, StdDuration::from_secs(15));
    assert_eq!(got.len(), 6, "{}", kannel.logs());
    for (from, to, _) in &got {
        assert_eq!(from, FROM);
        assert!(to.starts_with("+86138"), "{to}");
    }
    let c = counts(&kannel);
    for i in 0..6 {
        assert_eq!(
            c.get(&format!("Your code for today: a{i:04}")),
            Some(&1),
            "{c:?}"
        );
    }
    // The reports (at least the SMS centre's submit ack) come back and are recorded.
    wait_for_reports(&app, &msgs).await;
    for m in &msgs {
        let reports = app.store.sms_reports(m.id).await.unwrap();
        assert!(
            !reports.is_empty(),
            "no report for {}: {}",
            m.id,
            kannel.logs()
        );
        let now = app.store.sms_message(m.id).await.unwrap();
        assert!(
            matches!(now.state, MessageState::Sent | MessageState::Delivered),
            "{:?}",
            now.state
        );
        assert_eq!(now.attempts, 1);
    }
    // A second round sends nothing again.
    assert_eq!(w.run_once().await.unwrap().claimed, 0);
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(kannel.received().len(), 6);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_down_is_retried_with_backoff_then_delivered() {
    let mut kannel = Kannel::start();
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    let base = serve(&app).await;
    let w = worker(&app, &kannel, &base).await;
    kannel.stop_smsbox();
    let msgs = enqueue(&app, site.id, 3, "b").await;
    let r = w.run_once().await.unwrap();
    assert_eq!((r.claimed, r.refused), (3, 3));
    let m = app.store.sms_message(msgs[0].id).await.unwrap();
    assert_eq!(m.state, MessageState::Queued);
    assert!(
        m.last_error.contains("cannot reach kannel"),
        "{}",
        m.last_error
    );
    assert!(
        !m.last_error.contains(PASSWORD),
        "the password must not leak into errors"
    );
    assert_eq!(m.next_attempt_at, app.state.now() + Duration::seconds(5));
    // Not before the backoff delay.
    assert_eq!(w.run_once().await.unwrap().claimed, 0);
    app.clock.advance(Duration::seconds(5));
    let r = w.run_once().await.unwrap();
    assert_eq!((r.claimed, r.refused), (3, 3));
    let m = app.store.sms_message(msgs[0].id).await.unwrap();
    assert_eq!(m.attempts, 2);
    assert_eq!(m.next_attempt_at, app.state.now() + Duration::seconds(10));
    // The gateway comes back; after the (doubled) delay the messages go, once each.
    kannel.start_smsbox();
    app.clock.advance(Duration::seconds(9));
    assert_eq!(w.run_once().await.unwrap().claimed, 0);
    app.clock.advance(Duration::seconds(1));
    let r = w.run_once().await.unwrap();
    assert_eq!((r.claimed, r.accepted), (3, 3), "{}", kannel.logs());
    let got = kannel.wait_received(3, StdDuration::from_secs(15));
    assert_eq!(got.len(), 3, "{}", kannel.logs());
    let c = counts(&kannel);
    assert!(c.values().all(|n| *n == 1), "{c:?}");
    wait_for_reports(&app, &msgs).await;
    for m in &msgs {
        let m = app.store.sms_message(m.id).await.unwrap();
        assert_eq!(m.attempts, 3);
        assert!(matches!(
            m.state,
            MessageState::Sent | MessageState::Delivered
        ));
        assert!(!app.store.sms_reports(m.id).await.unwrap().is_empty());
    }
    app.cleanup().await;
}
