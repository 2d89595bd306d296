//! Text messages through the whole router: the delivery-report endpoint's authentication and
//! errors, who sees what in the outbox, the test message, and the home page's alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::sms::{forbidden_words_in, MessageState};
use anxin_domain::Role;
use anxin_server::testing::TestApp;
use anxin_storage::outbox::NewMessage;
use anxin_storage::Actor;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use chrono::Duration;
use serde_json::json;

async fn queued(app: &TestApp, site: i64) -> i64 {
    let now = app.state.now();
    let (m, _) = app
        .store
        .enqueue_sms(
            &Actor::cli(),
            NewMessage {
                idempotency_key: "code:1:0".into(),
                client_id: Some(1),
                site_id: site,
                recipient_e164: "13812345678".into(),
                text: "Your code for today: 12345678".into(),
                sealed_text: None,
                not_before: now,
                expires_at: now + Duration::hours(12),
            },
            now,
        )
        .await
        .unwrap();
    m.id
}

#[tokio::test]
async fn delivery_reports_need_a_valid_token_and_name_bad_fields() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    let id = queued(&app, site.id).await;
    let signer = app
        .state
        .settings
        .sms
        .signer(&app.store)
        .await
        .unwrap()
        .clone();
    let token = signer.token(id, 1);
    let get = |q: String| {
        let app = &app;
        async move {
            app.call(Method::GET, &format!("/api/v1/sms/dlr?{q}"), None, None)
                .await
        }
    };
    let a = get(format!("id={id}&a=1&t={}&type=8", signer.token(id, 2))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = get(format!("id={id}&a=1&t=00&type=8")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = get(format!("a=1&t={token}&type=8")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["field"], "id");
    let a = get(format!("id=x&a=1&t={token}&type=8")).await;
    assert_eq!(a.json()["error"]["field"], "id");
    let a = get(format!("id={id}&a=1&t={token}&type=3")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["field"], "type");
    // A good report (Kannel fills %d, %F…) moves the message; a duplicate changes nothing.
    let ok = format!("id={id}&a=1&t={token}&type=1&fid=smsc-77&kid=%25I&ts=1700000000");
    assert_eq!(get(ok.clone()).await.status, StatusCode::OK);
    assert_eq!(get(ok).await.status, StatusCode::OK);
    let m = app.store.sms_message(id).await.unwrap();
    assert_eq!(m.state, MessageState::Delivered);
    assert_eq!(m.gateway_id.as_deref(), Some("smsc-77"));
    assert_eq!(app.store.sms_reports(id).await.unwrap().len(), 2);
    app.cleanup().await;
}

#[tokio::test]
async fn outbox_shows_texts_only_to_those_who_may_read_them() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    queued(&app, site.id).await;
    app.user(&site, "manager", Role::Manager).await;
    app.user(&site, "nurse", Role::Dispenser).await;
    app.user(&site, "police", Role::PsbOfficer).await;
    app.user(&site, "peer", Role::PeerEducator).await;
    let m = app.login("manager").await;
    let a = app
        .call(Method::GET, "/api/v1/outbox", Some(&m), None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()[0]["text"], "Your code for today: 12345678");
    assert_eq!(a.json()[0]["recipient"], "+8613812345678");
    let n = app.login("nurse").await;
    let a = app
        .call(Method::GET, "/api/v1/outbox", Some(&n), None)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.json()[0].get("text").is_none());
    assert_eq!(a.json()[0]["recipient"], "+86138****5678");
    assert_eq!(a.json()[0]["state"], "queued");
    let a = app
        .call(Method::GET, "/api/v1/outbox?state=lost", Some(&n), None)
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json()["error"]["field"], "state");
    for who in ["police", "peer"] {
        let t = app.login(who).await;
        let a = app
            .call(Method::GET, "/api/v1/outbox", Some(&t), None)
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{who}");
    }
    // The page, with a state filter.
    let a = app
        .send(
            Request::get("/outbox?state=queued")
                .header(header::AUTHORIZATION, format!("Bearer {n}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.text.contains("data-state=\"queued\""));
    assert!(
        !a.text.contains("12345678"),
        "no text or full number for a nurse"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn managers_queue_a_neutral_test_message() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "manager", Role::Manager).await;
    app.user(&site, "nurse", Role::Dispenser).await;
    let m = app.login("manager").await;
    let a = app
        .call(
            Method::POST,
            "/api/v1/sms/test",
            Some(&m),
            Some(json!({"to": "139 0000 1111", "language": "en"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let id = a.json()["id"].as_i64().unwrap();
    let msg = app.store.sms_message(id).await.unwrap();
    assert_eq!(msg.recipient, "+8613900001111");
    assert!(forbidden_words_in(&msg.text).is_empty(), "{}", msg.text);
    let a = app
        .call(
            Method::POST,
            "/api/v1/sms/test",
            Some(&m),
            Some(json!({"to": "12345"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json()["error"]["field"], "to");
    let n = app.login("nurse").await;
    let a = app
        .call(
            Method::POST,
            "/api/v1/sms/test",
            Some(&n),
            Some(json!({"to": "13900001111"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    app.cleanup().await;
}

#[tokio::test]
async fn an_undelivered_code_raises_call_the_client_on_the_home_page() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    queued(&app, site.id).await;
    app.user(&site, "nurse", Role::Dispenser).await;
    app.user(&site, "police", Role::PsbOfficer).await;
    let n = app.login("nurse").await;
    let home = |t: String| {
        let app = &app;
        async move {
            app.send(
                Request::get("/")
                    .header(header::AUTHORIZATION, format!("Bearer {t}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let a = home(n.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(!a.text.contains("sms-alerts"), "not yet overdue");
    app.clock.advance(Duration::minutes(31));
    let n = app.login("nurse").await;
    let a = home(n).await;
    assert!(a.text.contains("id=\"sms-alerts\""), "{}", a.text);
    assert!(a.text.contains("Call the client"));
    let p = app.login("police").await;
    assert!(!home(p).await.text.contains("sms-alerts"));
    app.cleanup().await;
}
