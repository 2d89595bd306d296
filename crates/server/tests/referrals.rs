//! Police e-referral through the router: the officer's code, the centre's arrival (only with the
//! person's agreement) and enrolment, what the police read back (two words and their days, the
//! station's figures) and what they never read (the client, the record).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::Role;
use anxin_server::testing::TestApp;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let a = app.call(method, path, Some(token), body).await;
    let v = if a.text.is_empty() {
        Value::Null
    } else {
        a.json()
    };
    (a.status, v)
}

/// The refusal a page shows at `field`.
fn error_at(page: &str, field: &str) -> Option<String> {
    let marker = format!("data-field=\"{field}\">");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find("</span>")? + start;
    Some(page[start..end].to_owned())
}

#[tokio::test]
async fn a_referral_comes_back_to_the_police_as_two_words_and_nothing_else() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    let other = app.site("YX02").await;
    app.user(&site, "police", Role::PsbOfficer).await;
    app.user(&other, "police.yx02", Role::PsbOfficer).await;
    app.user(&site, "nurse", Role::Dispenser).await;
    app.user(&site, "doctor", Role::Prescriber).await;
    let police = app.login("police").await;
    let nurse = app.login("nurse").await;
    let doctor = app.login("doctor").await;

    // The officer issues a referral: a code, shown this once.
    let (s, issued) = call(&app, &police, Method::POST, "/api/v1/psb/referrals", None).await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let code = issued["code"].as_str().unwrap().to_owned();
    assert!(code.len() == 9 && code.as_bytes()[4] == b'-', "{code}");
    let (_, station) = call(&app, &police, Method::GET, "/api/v1/psb/referrals", None).await;
    assert_eq!(station["referrals"][0]["state"], "issued");
    assert_eq!(station["figures"]["referred"], 1);
    assert_eq!(
        station["figures"]["boxes_tracked"]["value"], 0,
        "no box out under GPS watch"
    );
    // The code rests only as a keyed hash.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT code_hash FROM referrals")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(h,)| h.len() == 64 && !h.contains(&code.replace('-', ""))),
        "{stored:?}"
    );

    // At the centre: refusals at the field, and nothing written.
    let head = app.store.audit_head().await.unwrap();
    for (body, code_, field) in [
        (
            json!({"code": "ABC", "consent": true}),
            "referral.code_malformed",
            "code",
        ),
        (
            json!({"code": "2345-6789", "consent": true}),
            "referral.unknown",
            "code",
        ),
        (
            json!({"code": code, "consent": false}),
            "referral.consent_required",
            "consent",
        ),
    ] {
        let (s, e) = call(
            &app,
            &nurse,
            Method::POST,
            "/api/v1/police-referrals/arrived",
            Some(body),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(
            (e["error"]["code"].as_str(), e["error"]["field"].as_str()),
            (Some(code_), Some(field))
        );
    }
    assert_eq!(
        app.store.audit_head().await.unwrap(),
        head,
        "a refusal wrote something"
    );
    let (_, station) = call(&app, &police, Method::GET, "/api/v1/psb/referrals", None).await;
    assert_eq!(
        station["referrals"][0]["state"], "issued",
        "without the agreement the police learn nothing"
    );
    // In the page: the refusal at the field in Chinese, the code kept.
    let mut window = app.browser("nurse", "zh-CN").await;
    let page = window
        .submit(
            "/police-referrals/arrived",
            &[("code", "2345-6789"), ("consent", "yes")],
        )
        .await;
    let shown = error_at(&page.text, "code").expect("the refusal at the code");
    assert!(shown.contains("没有等待使用的此转介码"), "{shown}");
    assert!(
        page.text.contains("value=\"2345-6789\""),
        "the code typed is kept"
    );

    // The person agrees: arrived (typed in lower case with a space).
    let typed = code.to_lowercase().replace('-', " ");
    let (s, arrived) = call(
        &app,
        &nurse,
        Method::POST,
        "/api/v1/police-referrals/arrived",
        Some(json!({"code": typed, "consent": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{arrived}");
    let id = arrived["id"].as_i64().unwrap();
    let (s, again) = call(
        &app,
        &nurse,
        Method::POST,
        "/api/v1/police-referrals/arrived",
        Some(json!({"code": code, "consent": true})),
    )
    .await;
    assert_eq!(
        (s, again["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("referral.unknown")),
        "a used code is one that waits for nothing"
    );
    let (_, station) = call(&app, &police, Method::GET, "/api/v1/psb/referrals", None).await;
    assert_eq!(station["referrals"][0]["state"], "arrived");
    assert_eq!(
        station["referrals"][0]["arrived_on"],
        app.state.today().to_string()
    );

    // Enrolled as a client of the centre.
    let (s, c) = call(
        &app,
        &doctor,
        Method::POST,
        "/api/v1/clients",
        Some(json!({"uic": "YX-0500", "enrolled_on": app.state.today().to_string()})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let client = c["id"].as_i64().unwrap();
    let (s, e) = call(
        &app,
        &nurse,
        Method::POST,
        &format!("/api/v1/police-referrals/{id}/enrol"),
        Some(json!({"uic": "YX-9999"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("uic")),
        "{e}"
    );
    let (s, r) = call(
        &app,
        &nurse,
        Method::POST,
        &format!("/api/v1/police-referrals/{id}/enrol"),
        Some(json!({"uic": "yx-0500"})),
    )
    .await;
    assert_eq!(
        (s, r["state"].as_str()),
        (StatusCode::OK, Some("enrolled")),
        "{r}"
    );
    let (s, _) = call(
        &app,
        &nurse,
        Method::POST,
        &format!("/api/v1/police-referrals/{id}/enrol"),
        Some(json!({"uic": "YX-0500"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "enrolled once");

    // What the police read: the words and days, never the client.
    let (_, station) = call(&app, &police, Method::GET, "/api/v1/psb/referrals", None).await;
    let r = &station["referrals"][0];
    assert_eq!(
        (r["state"].as_str(), r["enrolled_on"].as_str()),
        (
            Some("enrolled"),
            Some(app.state.today().to_string().as_str())
        )
    );
    let all = station.to_string();
    assert!(
        !all.contains("YX-0500") && !all.contains("uic") && !all.contains("client"),
        "{all}"
    );
    assert_eq!(
        (
            station["figures"]["arrived"].clone(),
            station["figures"]["enrolled"].clone()
        ),
        (json!(1), json!(1))
    );
    // Both words are in the client's disclosure ledger.
    let (_, ledger) = call(
        &app,
        &doctor,
        Method::GET,
        &format!("/api/v1/clients/{client}/disclosures"),
        None,
    )
    .await;
    let words: Vec<&str> = ledger
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["recipient"] == "PSB" && d["purpose"] == "police referral")
        .map(|d| d["disclosed"].as_str().unwrap())
        .collect();
    assert_eq!(words, vec!["enrolled", "arrived"], "{ledger}");
    // The officer's page says it in Chinese, with nothing about the person.
    let mut officer = app.browser("police", "zh-CN").await;
    let page = officer.get("/psb/referrals").await.text;
    assert!(
        page.contains("data-state=\"enrolled\"") && page.contains("已入组"),
        "{page}"
    );
    assert!(!page.contains("YX-0500"));

    // Another station sees none of it; roles keep to their side.
    let police2 = app.login("police.yx02").await;
    let (_, theirs) = call(&app, &police2, Method::GET, "/api/v1/psb/referrals", None).await;
    assert_eq!(theirs["referrals"], json!([]));
    assert_eq!(
        call(
            &app,
            &police,
            Method::GET,
            "/api/v1/police-referrals/waiting",
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, &nurse, Method::POST, "/api/v1/psb/referrals", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Three months on, the retention of one person is too small a number to show.
    app.clock.advance(Duration::days(91));
    let police = app.login("police").await;
    let (_, station) = call(&app, &police, Method::GET, "/api/v1/psb/referrals", None).await;
    let f = &station["figures"];
    assert_eq!(
        (
            f["retained_3m"]["suppressed"].clone(),
            f["retained_3m"]["value"].clone()
        ),
        (json!(true), Value::Null),
        "{f}"
    );
    assert_eq!(
        f["enrolled_3m"]["value"],
        Value::Null,
        "nor its base, from which it would follow"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_centre_prints_a_receipt_of_voluntary_registration_and_the_reading_is_audited() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "counsellor", Role::Counsellor).await;
    app.user(&site, "peer", Role::PeerEducator).await;
    let counsellor = app.login("counsellor").await;
    let today = app.state.today().to_string();
    let (s, c) = call(
        &app,
        &counsellor,
        Method::POST,
        "/api/v1/clients",
        Some(json!({"uic": "YX-0600", "enrolled_on": today})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_i64().unwrap();
    let (s, e) = call(
        &app,
        &counsellor,
        Method::PUT,
        &format!("/api/v1/clients/{id}/identity"),
        Some(json!({"name": "李伟"})),
    )
    .await;
    assert!(s.is_success(), "{e}");

    let mut page = app.browser("counsellor", "zh-CN").await;
    let record = page.get(&format!("/clients/{id}")).await.text;
    assert!(
        record.contains(&format!("/clients/{id}/receipt")),
        "the record links to the receipt"
    );
    let receipt = page.get(&format!("/clients/{id}/receipt")).await;
    assert_eq!(receipt.status, StatusCode::OK);
    for words in ["李伟", "YX-0600", &today, "第六十二条", "不予处罚"] {
        assert!(receipt.text.contains(words), "{words}: {}", receipt.text);
    }
    assert!(
        !receipt.text.contains("美沙酮") && !receipt.text.contains("mg"),
        "nothing clinical"
    );
    let trail: Vec<(String, String, String)> = app
        .store
        .audit_of_record("client", &id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.reason))
        .collect();
    assert!(
        trail.contains(&(
            "counsellor".into(),
            "client.identity.read".into(),
            "self-registration receipt".into()
        )),
        "{trail:?}"
    );
    // A peer educator reads no identity, so prints no receipt.
    let mut peer = app.browser("peer", "zh-CN").await;
    assert_eq!(
        peer.get(&format!("/clients/{id}/receipt")).await.status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_police_read_the_programmes_shared_figures_and_no_health_table() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "police", Role::PsbOfficer).await;
    app.user(&site, "cdc", Role::CdcAnalyst).await;
    let police = app.login("police").await;
    let cdc = app.login("cdc").await;
    let month = app.state.today().format("%Y-%m").to_string();
    let asked = format!("/api/v1/indicators?period={month}");
    let (s, v) = call(&app, &police, Method::GET, &asked, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    // Referral to treatment and MMT adherence, as the seed recommends; nothing else.
    assert_eq!(ids, anxin_app::indicators::SHARED_WITH_POLICE.to_vec());
    assert!(!ids.contains(&"hiv_positivity") && !ids.contains(&"urine_negative_rate"));
    assert_eq!(v["suppressed"], true, "released through the cell keys");
    // The CDC reads the whole catalogue.
    let (_, all) = call(&app, &cdc, Method::GET, &asked, None).await;
    assert!(all["indicators"].as_array().unwrap().len() > ids.len());
    // Free dates are refused to the police as to the CDC; DHIS2 is the health system's.
    let (s, _) = call(
        &app,
        &police,
        Method::GET,
        "/api/v1/indicators?from=2026-11-03&to=2026-11-09",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for path in [
        "/api/v1/indicators/export.dhis2.json",
        "/api/v1/indicators/dhis2-mapping",
    ] {
        let (s, _) = call(&app, &police, Method::GET, path, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    // The trend follows the shared figures only.
    let (_, trend) = call(&app, &police, Method::GET, "/api/v1/indicators/trend", None).await;
    assert_eq!(
        trend["indicators"],
        json!(["mmt_clients", "mean_attendance", "take_home_participation"])
    );
    // Each answer is a disclosure to the police in the audit trail.
    let to_police = app
        .store
        .audit_of_record("indicators", "all")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "disclosure.psb_export" && e.actor == "police")
        .count();
    assert_eq!(to_police, 2, "the report and the trend");
    app.cleanup().await;
}
