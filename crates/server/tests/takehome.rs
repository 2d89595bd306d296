//! Take-home eligibility and police approval with minimal disclosure, through the API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use anxin_domain::{Permission, Role};
use anxin_server::testing::TestApp;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

mod common;
use common::{error_at, world, world_on, World};

fn criterion<'a>(e: &'a Value, id: &str) -> &'a Value {
    e["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

#[tokio::test]
async fn eligibility_request_police_approval_and_the_ledger() {
    let w = world().await;
    let id = w.stable_client("YX-0101", false).await;

    // No consent to the police check: not eligible, and no request can be sent.
    let e = w.eligibility(id).await;
    assert_eq!(e["days"], 0);
    assert_eq!(criterion(&e, "police_consent")["passed"], false);
    let (s, err) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/psb-requests"),
            Some(json!({"days": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "request.no_consent");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("consent"));

    let consent = w.consent(id).await;
    let e = w.eligibility(id).await;
    assert_eq!(e["days"], 5, "{e}");
    assert_eq!(e["policy_version"], "default-2026.1");
    let att = criterion(&e, "attendance_30");
    assert_eq!(
        (
            att["value"].as_str().unwrap(),
            att["threshold"].as_str().unwrap(),
            att["passed"].clone()
        ),
        ("100% (29/29)", "≥ 97%", json!(true))
    );
    assert_eq!(att["label"]["zh-CN"], "近 30 天服药率");
    assert_eq!(att["label"]["en"], "Attendance, last 30 days");
    assert_eq!(e["next_tier"]["days"], 6);
    let longer = e["next_tier"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "days_in_treatment")
        .unwrap();
    assert_eq!(
        (longer["value"].clone(), longer["passed"].clone()),
        (json!("400"), json!(false))
    );

    // More days than eligible is refused, naming the field; the right number goes to the police.
    let (s, err) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/psb-requests"),
            Some(json!({"days": 6})),
        )
        .await;
    assert_eq!(
        (s, err["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("days"))
    );
    let (s, r) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/psb-requests"),
            Some(json!({"days": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/psb-requests"),
            Some(json!({"days": 4})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a second request while one waits");
    // The record page says the request waits for the police, and offers no second one.
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert!(
        page.text.contains("data-status=\"pending\""),
        "pending shown"
    );
    assert!(page.text.contains("等待公安答复"));
    assert!(!page.text.contains("id=\"psb-request-form\""));

    // The police see only what a record check needs. (Today is still pending: 29 of 29 days.)
    let (s, queue) = w
        .call(Method::GET, &w.police, "/api/v1/psb/requests", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let item = &queue[0];
    let keys: BTreeSet<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "id",
            "name",
            "national_id",
            "requested_days",
            "requested_on",
            "expires_on",
            "status",
            "answered_on"
        ])
    );
    assert_eq!(
        (
            item["name"].clone(),
            item["national_id"].clone(),
            item["requested_days"].clone()
        ),
        (json!("Li Wei"), json!("53040219800101123X"), json!(5))
    );
    let text = queue.to_string();
    for secret in [
        "YX-0101",
        "13800138000",
        "Hongta",
        "urine",
        "mg",
        "dose",
        "stage",
    ] {
        assert!(!text.contains(secret), "the police queue shows {secret}");
    }
    // The officer cannot open the client record, the eligibility or anything else clinical.
    for path in [
        format!("/api/v1/clients/{id}"),
        format!("/api/v1/clients/{id}/eligibility"),
        format!("/api/v1/clients/{id}/identity"),
        "/api/v1/dispensing/today".into(),
    ] {
        assert_eq!(
            w.call(Method::GET, &w.police, &path, None).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let rid = r["request_id"].as_i64().unwrap();
    let (s, err) = w
        .call(
            Method::POST,
            &w.police,
            &format!("/api/v1/psb/requests/{rid}/answer"),
            Some(json!({"decision": "maybe", "reason": "x"})),
        )
        .await;
    assert_eq!(
        (s, err["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("decision"))
    );
    let (s, a) = w
        .call(
            Method::POST,
            &w.police,
            &format!("/api/v1/psb/requests/{rid}/answer"),
            Some(json!({"decision": "approve", "reason": "no record"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "approved");
    // A second answer is refused by code and changes nothing.
    let (s, err) = w
        .call(
            Method::POST,
            &w.police,
            &format!("/api/v1/psb/requests/{rid}/answer"),
            Some(json!({"decision": "deny", "reason": "changed my mind"})),
        )
        .await;
    assert_eq!(
        (s, err["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("request.answered"))
    );
    let (_, th) = w
        .call(
            Method::GET,
            &w.doctor,
            &format!("/api/v1/clients/{id}/takehome"),
            None,
        )
        .await;
    assert_eq!(th["approved_days"], 5);
    // While the approval holds, no new request goes out; the page says until when it holds.
    let (s, err) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/psb-requests"),
            Some(json!({"days": 3})),
        )
        .await;
    assert_eq!(
        (s, err["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("request.approval_holds"))
    );
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert!(
        page.text.contains("天，有效至"),
        "approval and its end shown"
    );
    assert!(!page.text.contains("data-status=\"pending\""));
    assert!(!page.text.contains("id=\"psb-request-form\""));

    // The ledger on the client's record shows both disclosures.
    let (_, ledger) = w
        .call(
            Method::GET,
            &w.doctor,
            &format!("/api/v1/clients/{id}/disclosures"),
            None,
        )
        .await;
    let ledger = ledger.as_array().unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(
        ledger[1]["disclosed"],
        "name, national ID number, requested take-home days"
    );
    assert_eq!(ledger[1]["recipient"], "PSB");
    assert_eq!(
        ledger[0]["disclosed"],
        format!("answer to request {rid}: approved")
    );

    // Revoking the consent revokes the approval.
    let (s, _) = w
        .call(
            Method::POST,
            &w.counsellor,
            &format!("/api/v1/consents/{consent}/revoke"),
            Some(json!({"reason": "client withdrew"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, th) = w
        .call(
            Method::GET,
            &w.doctor,
            &format!("/api/v1/clients/{id}/takehome"),
            None,
        )
        .await;
    assert_eq!(th["approved_days"], Value::Null);
    w.app.cleanup().await;
}

#[tokio::test]
async fn a_positive_urine_test_or_three_missed_days_lower_or_remove_eligibility() {
    let w = world().await;
    let id = w.stable_client("YX-0102", true).await;
    assert_eq!(w.eligibility(id).await["days"], 5);
    let (s, _) = w
        .call(Method::POST, &w.doctor, &format!("/api/v1/clients/{id}/urine-tests"), Some(json!({"observed": true, "outcome": "tested", "results": {"opiates": "positive", "methadone": "positive"}})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let e = w.eligibility(id).await;
    assert_eq!(e["days"], 0);
    let urine = criterion(&e, "urine_negative");
    assert_eq!(
        (urine["passed"].clone(), urine["value"].clone()),
        (json!(false), json!("0"))
    );

    let other = w.stable_client("YX-0103", true).await;
    assert_eq!(w.eligibility(other).await["days"], 5);
    // Three days away: the missed-dose rule is in force and eligibility goes.
    w.app.clock.advance(Duration::days(4));
    let doctor = w.app.login("doctor").await;
    let a = w
        .app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{other}/eligibility"),
            Some(&doctor),
            None,
        )
        .await;
    let e = a.json();
    assert_eq!(e["days"], 0, "{e}");
    assert_eq!(criterion(&e, "no_missed_dose_rule")["passed"], false);
    w.app.cleanup().await;
}

#[tokio::test]
async fn requests_expire_and_police_hold_only_their_queue() {
    let w = world().await;
    let id = w.stable_client("YX-0104", true).await;
    let (_, r) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/psb-requests"),
            Some(json!({"days": 3})),
        )
        .await;
    let rid = r["request_id"].as_i64().unwrap();
    w.app.clock.advance(Duration::days(15));
    let police = w.app.login("police").await;
    let a = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/psb/requests/{rid}/answer"),
            Some(&police),
            Some(json!({"decision": "approve", "reason": "ok"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.json()["error"]["code"], "request.expired");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // The police role holds exactly these, none of which reaches a client record.
    let held: Vec<Permission> = Permission::ALL
        .into_iter()
        .filter(|p| Role::PsbOfficer.has(*p))
        .collect();
    // The queue, the referral slips, the joint policy room and the programme's shared figures
    // (aggregates only).
    assert_eq!(
        held,
        vec![
            Permission::PolicyPropose,
            Permission::PolicySign,
            Permission::PsbQueue,
            Permission::IndicatorsRead,
            Permission::ReferralIssue
        ]
    );
    assert!(held.iter().all(|p| !p.touches_client_records()));
    // Every declared route that is neither public nor the officer's own answers 403.
    let table = anxin_server::route_table();
    let mut refused = 0;
    for spec in table.specs() {
        if let anxin_domain::Access::Needs(p) = spec.access {
            if held.contains(&p) {
                continue;
            }
            let m = match spec.verb {
                anxin_server::routes::Verb::Get => Method::GET,
                anxin_server::routes::Verb::Post => Method::POST,
                anxin_server::routes::Verb::Put => Method::PUT,
                anxin_server::routes::Verb::Delete => Method::DELETE,
            };
            let a = w
                .app
                .call(
                    m,
                    &spec.path.replace("{id}", &id.to_string()),
                    Some(&police),
                    Some(json!({})),
                )
                .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", spec.path);
            refused += 1;
        }
    }
    assert!(refused > 40);
    w.app.cleanup().await;
}

#[derive(clap::Parser)]
struct Sim {
    #[command(flatten)]
    args: anxin_boxsim::BoxSimArgs,
}

/// Brings the box of a load (`l`, the load answer; the station wrote it on the bench) back
/// unopened through the box station: the return's status and answer.
async fn return_unopened(w: &World, l: &Value) -> (StatusCode, Value) {
    let load_id = l["load"]["id"].as_i64().unwrap();
    w.call(
        Method::POST,
        &w.doctor,
        &format!("/api/v1/loads/{load_id}/return/station"),
        None,
    )
    .await
}

/// Starts a box's return and gives the challenge its export must carry.
async fn start_return(w: &World, token: &str, load_id: i64) -> u32 {
    let a = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/loads/{load_id}/return/start"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    u32::try_from(a.json()["challenge"].as_u64().unwrap()).unwrap()
}

/// The box's day number of a date (days since 1970-01-01).
fn boxes_day(date: &str) -> u64 {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    u64::from(anxin_app::boxes::day_number(d))
}

fn sim(args: &[&str]) -> Result<(), anxin_boxsim::BoxSimError> {
    use clap::Parser;
    let mut all = vec!["box-sim"];
    all.extend_from_slice(args);
    anxin_boxsim::run(Sim::parse_from(all).args)
}

async fn journey(app: TestApp) {
    let w = world_on(app).await;
    let site = w.app.store.site_by_code("YX01").await.unwrap();
    let id = w.stable_client("YX-0201", true).await;
    // Eligible → request → police approve.
    assert_eq!(w.eligibility(id).await["days"], 5);
    w.approved(id, 3).await;
    // A box is loaded for 3 days; 4 days (more than approved) is refused and changes nothing.
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes",
            Some(json!({"serial": "BOX-0001"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0001", "days": 4})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("days")),
        "{e}"
    );
    let site_id = site.id;
    let stock_before = w
        .app
        .store
        .stock_position(
            site_id,
            w.app.state.today(),
            w.app.state.settings.utc_offset,
        )
        .await
        .unwrap()
        .2;
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0001", "days": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let load_id = l["load"]["id"].as_i64().unwrap();
    let stock_loaded = w
        .app
        .store
        .stock_position(
            site_id,
            w.app.state.today(),
            w.app.state.settings.utc_offset,
        )
        .await
        .unwrap()
        .2;
    assert_eq!(
        stock_loaded - stock_before,
        240.0,
        "3 × 80 mg leave the stock on the day of loading, not on the compartments' days"
    );
    let nurse = w.app.login("nurse").await;
    let (s, stock) = w.call(Method::GET, &nurse, "/api/v1/stock", None).await;
    assert_eq!(s, StatusCode::OK, "{stock}");
    assert_eq!(
        (stock["boxed_mg"].clone(), stock["returned_mg"].clone()),
        (json!(240.0), json!(0.0)),
        "the stock page shows the box line"
    );
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0001", "days": 2})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "the box is no longer in the clinic"
    );
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/loads/{load_id}/hand-out"),
            Some(json!({"phone_confirmed": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // The SMS sink holds one neutral message per compartment, to the client's number. No code
    // rests in clear: the stored text masks it, and the real text is sealed with the data key.
    let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as("SELECT idempotency_key, recipient, body, sealed_body FROM sms_outbox WHERE client_id = $1 ORDER BY idempotency_key")
        .bind(id)
        .fetch_all(w.app.store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let codes: Vec<String> = rows
        .iter()
        .map(|(key, to, body, sealed)| {
            assert_eq!(to, "+8613800138000");
            assert!(body.contains("********"), "masked: {body}");
            assert!(!body.chars().any(|c| c.is_ascii_digit()), "{body}");
            let real = w.app.vault.open_message(key, sealed).unwrap();
            assert!(
                anxin_domain::sms::forbidden_words_in(&real).is_empty(),
                "{real}"
            );
            real.chars()
                .filter(|c| c.is_ascii_digit())
                .collect::<String>()
        })
        .collect();
    assert!(codes.iter().all(|c| c.len() == 8), "{codes:?}");

    // The box station wrote the load into the box on the bench (the secret never left the
    // server but on the cable); each day's code opens exactly its compartment.
    let written = &l["written"];
    assert_eq!(written["load_id"], json!(load_id));
    assert!(
        l.get("provision").is_none() && !l.to_string().contains("secret"),
        "{l}"
    );
    let boxfile = w.app.bench_box(written["serial"].as_str().unwrap());
    let b = boxfile.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = boxes_day(written["start_day"].as_str().unwrap());
    let t0 = start * 86_400 + 3600;
    sim(&[
        "enter",
        "--box",
        b,
        "--code",
        &codes[0],
        "--now",
        &(t0 + 10).to_string(),
    ])
    .unwrap();
    assert!(
        sim(&[
            "enter",
            "--box",
            b,
            "--code",
            &codes[0],
            "--now",
            &(t0 + 20).to_string()
        ])
        .is_err(),
        "a code opens once"
    );
    sim(&[
        "enter",
        "--box",
        b,
        "--code",
        &codes[1],
        "--now",
        &(t0 + 86_400).to_string(),
    ])
    .unwrap();
    // Day 3's compartment stays closed: the box comes back with it.
    let logfile = dir.path().join("log.bin");
    sim(&[
        "export-log",
        "--box",
        b,
        "--to",
        logfile.to_str().unwrap(),
        "--now",
        &(t0 + 2 * 86_400).to_string(),
    ])
    .unwrap();
    let log = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        std::fs::read(&logfile).unwrap(),
    );

    // While out, the box had GPS: some positions and an alarm.
    let box_id = w.app.store.load(load_id).await.unwrap().box_id;
    let mut gps = anxin_storage::gps::Batch::default();
    gps.positions.push(anxin_storage::gps::NewPosition {
        box_id,
        at_ms: 1,
        lat: 25.04,
        lon: 102.71,
        received_ms: 1,
    });
    gps.alarms.push(anxin_storage::gps::NewAlarm {
        box_id,
        site_id,
        load_id: Some(load_id),
        kind: "tamper".into(),
        at_ms: 1,
        at: None,
    });
    w.app.store.write_gps_batch(&gps).await.unwrap();

    // A code still queued was never released: opening its compartment would be a tamper. The
    // gateway delivered the first two days' codes.
    let store = &w.app.store;
    let load = store.load(load_id).await.unwrap();
    assert_eq!(store.codes_released(&load).await.unwrap(), Vec::<u8>::new());
    for day in 0..2 {
        sqlx::query("UPDATE sms_outbox SET state = 'delivered' WHERE idempotency_key = $1")
            .bind(format!("code:{load_id}:{day}"))
            .execute(store.pool())
            .await
            .unwrap();
    }
    assert_eq!(store.codes_released(&load).await.unwrap(), vec![0, 1]);

    w.app.clock.advance(Duration::days(4));
    let doctor = w.app.login("doctor").await;
    let ret = format!("/api/v1/loads/{load_id}/return");
    // The export read on day 3, before the return started, cannot stand in for a fresh one:
    // without a challenge issued the return is refused, and with one it is stale.
    let a = w
        .app
        .call(
            Method::POST,
            &ret,
            Some(&doctor),
            Some(json!({"log_base64": log})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert_eq!(a.json()["error"]["code"], "export.no_challenge");
    let challenge = start_return(&w, &doctor, load_id).await;
    let a = w
        .app
        .call(
            Method::POST,
            &ret,
            Some(&doctor),
            Some(json!({"log_base64": log})),
        )
        .await;
    assert_eq!(
        (a.status, a.json()["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("export.stale")),
        "{}",
        a.text
    );
    assert_eq!(
        store.load(load_id).await.unwrap().state,
        anxin_domain::boxes::LoadState::WithClient,
        "nothing changed"
    );
    // A log of another load, or a damaged one, is refused and changes nothing.
    let mut bad = std::fs::read(&logfile).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let bad = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bad);
    let (s, e) = w
        .call(
            Method::POST,
            &doctor,
            &ret,
            Some(json!({"log_base64": bad})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone(), e["error"]["field"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("export.does_not_verify"),
            json!("log_base64")
        ),
        "{e}"
    );

    // A second start replaces the challenge: an export made with the first is stale too.
    let first_challenge = challenge;
    let challenge = start_return(&w, &doctor, load_id).await;
    let export = |ch: u32, at: u64| {
        sim(&[
            "export-log",
            "--box",
            b,
            "--to",
            logfile.to_str().unwrap(),
            "--challenge",
            &ch.to_string(),
            "--now",
            &at.to_string(),
        ])
        .unwrap();
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            std::fs::read(&logfile).unwrap(),
        )
    };
    if first_challenge != challenge {
        let old = export(first_challenge, t0 + 4 * 86_400);
        let a = w
            .app
            .call(
                Method::POST,
                &ret,
                Some(&doctor),
                Some(json!({"log_base64": old})),
            )
            .await;
        assert_eq!(a.json()["error"]["code"], "export.stale", "{}", a.text);
    }
    let log = export(challenge, t0 + 4 * 86_400 + 60);
    let a = w
        .app
        .call(
            Method::POST,
            &ret,
            Some(&doctor),
            Some(json!({"log_base64": log.clone()})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let rec = a.json();
    // Reconciled: the load's secret is erased, and the same export replayed changes nothing.
    let returned = store.load(load_id).await.unwrap();
    assert!(returned.sealed_secret.is_empty(), "secret erased");
    assert_eq!(returned.return_challenge, None);
    let a = w
        .app
        .call(
            Method::POST,
            &ret,
            Some(&doctor),
            Some(json!({"log_base64": log})),
        )
        .await;
    assert_eq!(
        (a.status, a.json()["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("load.wrong_state"))
    );
    assert_eq!(rec["reconciliation"]["opened"], json!([0, 1]));
    assert_eq!(rec["reconciliation"]["unopened"], json!([2]));
    assert_eq!(rec["tampering"], false);
    // Back at the centre: where the box went is deleted, its alarm stays.
    assert_eq!(w.app.store.position_count().await.unwrap(), 0);
    assert_eq!(
        w.app.store.alarms_of_box(box_id, 10).await.unwrap().len(),
        1
    );
    // Stock: the unopened compartment's 80 mg came back.
    let stock_after = w
        .app
        .store
        .stock_position(
            site_id,
            w.app.state.today(),
            w.app.state.settings.utc_offset,
        )
        .await
        .unwrap()
        .2;
    assert_eq!(stock_after - stock_before, 160.0);
    // Adherence: the two opened days count as attended, the unopened one as missed.
    let (_, adh) = {
        let a = w
            .app
            .call(
                Method::GET,
                &format!("/api/v1/clients/{id}/adherence"),
                Some(&doctor),
                None,
            )
            .await;
        (a.status, a.json())
    };
    let timeline = adh["timeline"].as_array().unwrap();
    let n = timeline.len();
    // Today is day 5 after loading; the box covered days 1–3 after the load day.
    assert_eq!(
        &timeline[n - 4..n - 1],
        &[json!("attended"), json!("attended"), json!("missed")],
        "{:?}",
        &timeline[n - 6..]
    );
    // The report's month table followed the return's rewrites of the box doses: it still
    // equals what the doses themselves say (both ways round).
    for sql in [
        "SELECT COUNT(*) AS n FROM (SELECT * FROM dose_months EXCEPT SELECT * FROM dose_month_bits) x",
        "SELECT COUNT(*) AS n FROM (SELECT * FROM dose_month_bits EXCEPT SELECT * FROM dose_months) x",
    ] {
        let row = sqlx::query(sql)
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
        assert_eq!(sqlx::Row::get::<i64, _>(&row, "n"), 0, "{sql}");
    }
    // The ledger shows exactly the request and the answer.
    let (_, ledger) = {
        let a = w
            .app
            .call(
                Method::GET,
                &format!("/api/v1/clients/{id}/disclosures"),
                Some(&doctor),
                None,
            )
            .await;
        (a.status, a.json())
    };
    assert_eq!(ledger.as_array().unwrap().len(), 2);
    // A second take-home period right after the first: the box's doses are no missed-dose
    // rule, so the client stays eligible.
    let e = w
        .app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}/eligibility"),
            Some(&doctor),
            None,
        )
        .await
        .json();
    let gate = e["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "no_missed_dose_rule")
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(gate["passed"], true, "{e}");
    assert!(
        e["days"].as_u64().unwrap() >= 2,
        "still eligible after a period: {e}"
    );
    let _ = &w.counsellor;
    w.app.cleanup().await;
}

#[tokio::test]
async fn days_in_treatment_count_from_enrolment_not_from_the_first_order_here() {
    let w = world().await;
    // A long-term client moved in: enrolled 2024-03-23, first order in Anxin 30 days ago.
    let (s, c) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/clients",
            Some(json!({"uic": "YX-0043-IY", "enrolled_on": "2024-03-23"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_i64().unwrap();
    let store = &w.app.store;
    let doctor = store.user_auth("doctor").await.unwrap().unwrap().user;
    let actor = anxin_storage::Actor {
        user_id: Some(doctor.id),
        name: doctor.username.clone(),
        site_id: Some(doctor.site_id),
    };
    let order = anxin_domain::clinic::orders::DoseOrder {
        kind: anxin_domain::clinic::orders::OrderKind::Maintenance,
        start: w.app.state.today() - Duration::days(30),
        mg: 60,
        steps: vec![],
        split: 1,
        reason: String::new(),
    };
    store
        .add_order(&actor, id, &order, w.app.state.now())
        .await
        .unwrap();
    let e = w.eligibility(id).await;
    let all: Vec<&Value> = e["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .chain(e["next_tier"]["criteria"].as_array().into_iter().flatten())
        .collect();
    let days = all
        .iter()
        .find(|c| c["id"] == "days_in_treatment")
        .unwrap_or_else(|| panic!("{e}"));
    // 2024-03-23 to 2026-11-22.
    assert_eq!(days["value"], "974", "{e}");
    w.app.cleanup().await;
}

#[tokio::test]
async fn the_whole_take_home_journey_on_sqlite() {
    journey(TestApp::new().await).await;
}

#[tokio::test]
async fn the_whole_take_home_journey_on_postgres() {
    journey(TestApp::postgres().await).await;
}

#[tokio::test]
async fn a_centre_adopts_a_stricter_policy_and_decisions_name_its_version() {
    let w = world().await;
    let site = w.app.store.site_by_code("YX01").await.unwrap();
    w.app.user(&site, "manager", Role::Manager).await;
    let manager = w.app.login("manager").await;
    let id = w.stable_client("YX-0105", true).await;
    assert_eq!(w.eligibility(id).await["days"], 5);
    let strict = json!({"version": "yuxi-2027.1", "approval_valid_days": 60, "tiers": [
        {"days": 2, "min_days_in_treatment": 365, "min_attendance_30": 100.0, "min_attendance_90": 99.0, "last_urine_negative": 6}
    ]});
    // Only a manager adopts policies; a malformed one names its field.
    assert_eq!(
        w.app
            .call(
                Method::PUT,
                "/api/v1/takehome/policy",
                Some(&w.doctor),
                Some(strict.clone())
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let mut bad = strict.clone();
    bad["tiers"][0]["days"] = json!(8);
    let a = w
        .app
        .call(
            Method::PUT,
            "/api/v1/takehome/policy",
            Some(&manager),
            Some(bad),
        )
        .await;
    assert_eq!(
        (a.status, a.json()["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("tiers[0].days"))
    );
    let a = w
        .app
        .call(
            Method::PUT,
            "/api/v1/takehome/policy",
            Some(&manager),
            Some(strict.clone()),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let e = w.eligibility(id).await;
    assert_eq!(
        (e["days"].clone(), e["policy_version"].clone()),
        (json!(2), json!("yuxi-2027.1"))
    );
    // The same version cannot be adopted twice with other content.
    assert_eq!(
        w.app
            .call(
                Method::PUT,
                "/api/v1/takehome/policy",
                Some(&manager),
                Some(strict)
            )
            .await
            .status,
        StatusCode::CONFLICT
    );
    w.app.cleanup().await;
}

/// The policy editor's fields for tiers `(days, [days in treatment, attendance 30, attendance 90,
/// negative urine tests])`, as a manager fills them in.
fn as_pairs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn policy_form(version: &str, tiers: &[(u8, [&str; 4])]) -> Vec<(String, String)> {
    let mut f = vec![
        ("version".to_owned(), version.to_owned()),
        ("approval_valid_days".to_owned(), "60".to_owned()),
    ];
    for (d, values) in tiers {
        f.push((format!("offer_{d}"), "on".into()));
        let names = [
            "min_days_in_treatment",
            "min_attendance_30",
            "min_attendance_90",
            "last_urine_negative",
        ];
        for (name, v) in names.iter().zip(values) {
            f.push((format!("t{d}_{name}"), (*v).to_owned()));
        }
    }
    f
}

#[tokio::test]
async fn a_manager_adopts_a_policy_in_the_page_and_the_next_decision_names_it() {
    let w = world().await;
    let site = w.app.store.site_by_code("YX01").await.unwrap();
    w.app.user(&site, "manager", Role::Manager).await;
    let id = w.stable_client("YX-0108", true).await;
    assert_eq!(w.eligibility(id).await["days"], 5);
    let mut manager = w.app.browser("manager", "zh-CN").await;
    assert!(manager.get("/").await.text.contains("id=\"nav-policy\""));
    let page = manager.get("/takehome/policy").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("默认版本 default-2026.1"),
        "{}",
        page.text
    );
    assert!(page.text.contains("id=\"policy-form\""));
    // The editor starts from the tiers in force.
    assert!(page
        .text
        .contains("name=\"t6_min_days_in_treatment\" value=\"540\""));

    // Four days asking fewer negative tests than three: refused at that input, in Chinese,
    // everything typed kept, nothing adopted.
    let looser = policy_form(
        "yuxi-2027.1",
        &[
            (2, ["90", "90", "85", "2"]),
            (3, ["180", "93", "90", "3"]),
            (4, ["270", "95", "92", "1"]),
        ],
    );
    let a = manager.submit("/takehome/policy", &as_pairs(&looser)).await;
    assert_eq!(a.status, StatusCode::OK);
    let shown = error_at(&a.text, "t4_last_urine_negative").expect("an error at the input");
    assert!(shown.contains("4 天一档的条件不得低于 3 天一档"), "{shown}");
    assert!(a.text.contains("name=\"version\" value=\"yuxi-2027.1\""));
    assert!(a
        .text
        .contains("name=\"t4_last_urine_negative\" value=\"1\""));
    assert!(a.text.contains("name=\"offer_4\" value=\"on\" checked"));
    assert!(!a.text.contains("name=\"offer_5\" value=\"on\" checked"));
    assert_eq!(w.eligibility(id).await["policy_version"], "default-2026.1");

    // A number that is not one, in English.
    let mut en = w.app.browser("manager", "en").await;
    let mut typo = looser.clone();
    typo.iter_mut()
        .find(|(k, _)| k == "t2_min_attendance_30")
        .unwrap()
        .1 = "ninety".into();
    let a = en.submit("/takehome/policy", &as_pairs(&typo)).await;
    let shown = error_at(&a.text, "t2_min_attendance_30").expect("an error at the input");
    assert!(shown.contains("“ninety” is not a valid number"), "{shown}");
    let mut manager = w.app.browser("manager", "zh-CN").await;

    // Mended, it is adopted: the page says so and lists it, and the next decision names it.
    let mut fixed = looser.clone();
    fixed
        .iter_mut()
        .find(|(k, _)| k == "t4_last_urine_negative")
        .unwrap()
        .1 = "4".into();
    let a = manager.submit("/takehome/policy", &as_pairs(&fixed)).await;
    assert!(a.text.contains("已采用版本 yuxi-2027.1"), "{}", a.text);
    let history = &a.text[a.text.find("id=\"policy-history\"").expect("a history")..];
    assert!(history.contains("yuxi-2027.1") && history.contains("manager"));
    let e = w.eligibility(id).await;
    assert_eq!(
        (e["days"].clone(), e["policy_version"].clone()),
        (json!(4), json!("yuxi-2027.1"))
    );
    // The same name twice: refused at the name.
    let a = manager.submit("/takehome/policy", &as_pairs(&fixed)).await;
    let shown = error_at(&a.text, "version").expect("an error at the version");
    assert!(shown.contains("已采用过版本 yuxi-2027.1"), "{shown}");

    // The prescriber reads the policy but has no editor, and may not adopt; the nurse sees none.
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let page = doctor.get("/takehome/policy").await;
    assert!(page.text.contains("现行版本：yuxi-2027.1"));
    assert!(!page.text.contains("id=\"policy-form\""));
    let other = policy_form("doctor-1", &[(2, ["90", "90", "85", "2"])]);
    let a = doctor.submit("/takehome/policy", &as_pairs(&other)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let mut nurse = w.app.browser("nurse", "zh-CN").await;
    assert_eq!(
        nurse.get("/takehome/policy").await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!nurse.get("/").await.text.contains("nav-policy"));
    w.app.cleanup().await;
}

#[tokio::test]
async fn codes_can_be_withheld_revealed_to_a_checked_caller_and_stop_when_a_box_is_lost() {
    let w = world().await;
    let id = w.stable_client("YX-0106", true).await;
    w.approved(id, 3).await;
    w.call(
        Method::POST,
        &w.doctor,
        "/api/v1/boxes",
        Some(json!({"serial": "BOX-0042"})),
    )
    .await;
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0042", "days": 3, "code_hour": 6})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let load = l["load"]["id"].as_i64().unwrap();
    // The printable sheet names the client by UIC and lists the compartments.
    let sheet = w
        .app
        .send(
            axum::http::Request::get(format!("/loads/{load}/sheet"))
                .header("authorization", format!("Bearer {}", w.doctor))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(sheet.status, StatusCode::OK);
    assert!(sheet.text.contains("YX-0106") && sheet.text.contains("80 mg"));
    // Without the caller's answers nothing is told; today is the loading day, so there is no
    // compartment to tell yet.
    let reveal = format!("/api/v1/loads/{load}/reveal");
    let (s, e) = w
        .call(
            Method::POST,
            &w.doctor,
            &reveal,
            Some(json!({"name": "Li Wei"})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone(), e["error"]["field"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("reveal.unchecked"),
            json!("id_last4")
        )
    );
    let right = json!({"name": " li wei ", "id_last4": "123x"});
    let (s, e) = w
        .call(Method::POST, &w.doctor, &reveal, Some(right.clone()))
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("reveal.no_compartment"))
    );
    w.app.clock.advance(Duration::days(1));
    let doctor = w.app.login("doctor").await;
    // Wrong answers: refused at the field, and the attempt is in the audit trail.
    let a = w
        .app
        .call(
            Method::POST,
            &reveal,
            Some(&doctor),
            Some(json!({"name": "Li Wei", "id_last4": "9999"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(a.json()["error"]["field"], "id_last4");
    let refused: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'code.reveal.refused'")
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    assert_eq!(refused.0, 1);
    // A dispenser on the phone may tell it too, once the answers match.
    let dispenser = w.app.login("nurse").await;
    let (s, code) = {
        let a = w
            .app
            .call(Method::POST, &reveal, Some(&dispenser), Some(right.clone()))
            .await;
        (a.status, a.json())
    };
    assert_eq!(s, StatusCode::OK, "{code}");
    let first: (Vec<u8>,) =
        sqlx::query_as("SELECT sealed_body FROM sms_outbox WHERE idempotency_key = $1")
            .bind(format!("code:{load}:0"))
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    let text = w
        .app
        .vault
        .open_message(&format!("code:{load}:0"), &first.0)
        .unwrap();
    assert!(
        text.contains(code["code"].as_str().unwrap()),
        "revealed code is the day's code"
    );
    let told: (String,) = sqlx::query_as(
        "SELECT reason FROM audit_log WHERE action = 'code.reveal' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(w.app.store.pool())
    .await
    .unwrap();
    assert!(told.0.contains("national ID"), "{}", told.0);
    assert!(
        !told.0.contains(code["code"].as_str().unwrap()),
        "no code in the trail"
    );
    // The scheduled hour: 06:00 at the centre (+08:00) is 22:00 UTC the day before.
    let nb: (i64,) = sqlx::query_as("SELECT not_before FROM sms_outbox WHERE idempotency_key = $1")
        .bind(format!("code:{load}:0"))
        .fetch_one(w.app.store.pool())
        .await
        .unwrap();
    assert_eq!(
        chrono::DateTime::from_timestamp_millis(nb.0)
            .unwrap()
            .format("%H:%M")
            .to_string(),
        "22:00"
    );
    // Withholding from tomorrow stops the last two codes.
    let tomorrow = (w.app.state.today() + Duration::days(1)).to_string();
    let a = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/loads/{load}/withhold"),
            Some(&doctor),
            Some(json!({"reason": "admitted to hospital", "from": tomorrow})),
        )
        .await;
    assert_eq!(a.json()["codes_stopped"], 2);
    let states: Vec<(String,)> = sqlx::query_as(
        "SELECT state FROM sms_outbox WHERE client_id = $1 ORDER BY idempotency_key",
    )
    .bind(id)
    .fetch_all(w.app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        states.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["queued", "stopped", "stopped"]
    );
    // Lost: the box is marked lost, the event audited, and nothing more can be revealed.
    let a = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/loads/{load}/lost"),
            Some(&doctor),
            Some(json!({"reason": "client reports the box stolen"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let boxes = w
        .app
        .call(Method::GET, "/api/v1/boxes", Some(&doctor), None)
        .await
        .json();
    assert_eq!(boxes[0]["state"], "lost");
    let a = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/loads/{load}/reveal"),
            Some(&doctor),
            Some(right),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.json()["error"]["code"], "reveal.no_compartment");
    let trail = w
        .app
        .store
        .audit_of_record("client", &id.to_string())
        .await
        .unwrap();
    for action in ["box.load", "code.reveal", "codes.withhold", "box.lost"] {
        assert!(
            trail.iter().any(|e| e.action == action),
            "{action} missing from the audit trail"
        );
    }
    w.app.cleanup().await;
}

/// A discharge with a box out, then the box comes back: its load ended with the treatment, no
/// code went out after the discharge, and the return still reconciles it (both compartments
/// unopened, their methadone back to stock).
async fn a_box_out_at_discharge_comes_back(app: TestApp) {
    let w = world_on(app).await;
    let id = w.stable_client("YX-0201", true).await;
    w.approved(id, 2).await;
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes",
            Some(json!({"serial": "BOX-0021"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0021", "days": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let load_id = l["load"]["id"].as_i64().unwrap();
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/loads/{load_id}/hand-out"),
            Some(json!({"phone_confirmed": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, r) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/discharge"),
            Some(json!({"reason": "moved to Kunming", "confirm_box_out": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["boxes_ended"].clone(), r["codes_stopped"].clone()),
        (json!(["BOX-0021"]), json!(2))
    );
    // Nobody can be told a code of the ended box any more.
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/loads/{load_id}/withhold"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // The client brings the box back unopened: the return reconciles the ended load.
    let (s, rec) = return_unopened(&w, &l).await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    assert_eq!(rec["reconciliation"]["opened"], json!([]));
    assert_eq!(rec["reconciliation"]["unopened"], json!([0, 1]));
    let (_, boxes) = w.call(Method::GET, &w.doctor, "/api/v1/boxes", None).await;
    let b = boxes
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["serial"] == "BOX-0021")
        .unwrap();
    assert_eq!(b["state"], "returned");
    w.app.cleanup().await;
}

#[tokio::test]
async fn a_box_out_at_discharge_comes_back_on_sqlite() {
    a_box_out_at_discharge_comes_back(TestApp::new().await).await;
}

#[tokio::test]
async fn a_box_out_at_discharge_comes_back_on_postgres() {
    a_box_out_at_discharge_comes_back(TestApp::postgres().await).await;
}

/// A day's code rests only sealed: the stored text masks it, the worker opens the seal at send
/// time, and the sealed text is erased once the message is spent. A worker without the data key
/// never sends the masked text in its place.
async fn codes_rest_sealed_until_sent(app: TestApp) {
    use anxin_sms::provider::FileProvider;
    use anxin_sms::worker::{Worker, WorkerSettings};
    let w = world_on(app).await;
    let id = w.stable_client("YX-0107", true).await;
    w.approved(id, 2).await;
    w.call(
        Method::POST,
        &w.doctor,
        "/api/v1/boxes",
        Some(json!({"serial": "BOX-0043"})),
    )
    .await;
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0043", "days": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let load = l["load"]["id"].as_i64().unwrap();
    let store = w.app.store.clone();
    let vault = w.app.vault.clone();
    let row = |k: i64| {
        let store = store.clone();
        async move {
            let r: (String, String, Option<Vec<u8>>, i64) = sqlx::query_as(
                "SELECT body, state, sealed_body, not_before FROM sms_outbox WHERE idempotency_key = $1",
            )
            .bind(format!("code:{load}:{k}"))
            .fetch_one(store.pool())
            .await
            .unwrap();
            r
        }
    };
    let (body, _, sealed, not_before) = row(0).await;
    let real = vault
        .open_message(&format!("code:{load}:0"), &sealed.unwrap())
        .unwrap();
    let code: String = real.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 8, "{real}");
    assert!(!body.contains(&code) && body.contains("********"), "{body}");
    // Nothing in the outbox table holds the code in clear.
    let clear: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sms_outbox WHERE body LIKE $1 OR last_error LIKE $1 OR idempotency_key LIKE $1",
    )
    .bind(format!("%{code}%"))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(clear.0, 0);

    // The morning of day 1: the worker sends the real text and the seal is erased.
    let now = w.app.state.now();
    let due = chrono::DateTime::from_timestamp_millis(not_before).unwrap();
    w.app.clock.advance(due - now + Duration::minutes(1));
    let dir = tempfile::tempdir().unwrap();
    let phone = dir.path().join("sms.log");
    let clock_state = w.app.state.clone();
    let worker = |with_key: bool| {
        let clock_state = clock_state.clone();
        let worker = Worker::new(
            store.clone(),
            std::sync::Arc::new(FileProvider::new(phone.clone())),
            anxin_sms::dlr::DlrSigner::new(b"test dlr key"),
            "http://127.0.0.1:1".into(),
            WorkerSettings::from_config(&anxin_sms::SmsConfig::default()),
            std::sync::Arc::new(move || clock_state.now()),
        );
        if with_key {
            worker.with_vault(vault.clone())
        } else {
            worker
        }
    };
    let round = worker(true).run_once().await.unwrap();
    assert_eq!(round.accepted, 1, "{round:?}");
    let sent = std::fs::read_to_string(&phone).unwrap();
    assert!(sent.contains(&code), "the phone got the code: {sent}");
    let (body, state, sealed, _) = row(0).await;
    assert_eq!(state, "delivered");
    assert_eq!(sealed, None, "spent: the seal is erased");
    assert!(!body.contains(&code));
    let (_, state, sealed, not_before) = row(1).await;
    assert_eq!(state, "queued");
    assert!(sealed.is_some(), "tomorrow's code still rests sealed");

    // Day 2, a worker without the data key: the message fails, the masked text is never sent.
    let now = w.app.state.now();
    let due = chrono::DateTime::from_timestamp_millis(not_before).unwrap();
    w.app.clock.advance(due - now + Duration::minutes(1));
    let round = worker(false).run_once().await.unwrap();
    assert_eq!(round.refused, 1, "{round:?}");
    let sent_after = std::fs::read_to_string(&phone).unwrap();
    assert_eq!(sent_after, sent, "nothing more reached the phone");
    let (_, state, sealed, _) = row(1).await;
    assert_eq!((state.as_str(), sealed), ("failed", None));
    w.app.cleanup().await;
}

#[tokio::test]
async fn codes_rest_sealed_until_sent_on_sqlite() {
    codes_rest_sealed_until_sent(TestApp::new().await).await;
}

#[tokio::test]
async fn codes_rest_sealed_until_sent_on_postgres() {
    codes_rest_sealed_until_sent(TestApp::postgres().await).await;
}

/// A box brought back before its last day: the codes still queued for it stop (nothing is left
/// to open), and the unopened compartments are not given.
async fn an_early_return_stops_the_codes_left(app: TestApp) {
    let w = world_on(app).await;
    let id = w.stable_client("YX-0202", true).await;
    w.approved(id, 2).await;
    w.call(
        Method::POST,
        &w.doctor,
        "/api/v1/boxes",
        Some(json!({"serial": "BOX-0022"})),
    )
    .await;
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0022", "days": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let (s, rec) = return_unopened(&w, &l).await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    let states: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT state, sealed_body FROM sms_outbox WHERE client_id = $1 ORDER BY idempotency_key",
    )
    .bind(id)
    .fetch_all(w.app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        states,
        vec![("stopped".to_owned(), None), ("stopped".to_owned(), None)],
        "no code goes out for a box that is back"
    );
    w.app.cleanup().await;
}

#[tokio::test]
async fn an_early_return_stops_the_codes_left_on_sqlite() {
    an_early_return_stops_the_codes_left(TestApp::new().await).await;
}

#[tokio::test]
async fn an_early_return_stops_the_codes_left_on_postgres() {
    an_early_return_stops_the_codes_left(TestApp::postgres().await).await;
}
