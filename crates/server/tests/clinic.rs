//! The clinic core through the API: dispensing rules, guest dosing, orders, urine, stock,
//! the encrypted identity, consents, and bad input that writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::Role;
use anxin_server::testing::TestApp;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

struct Clinic {
    app: TestApp,
    doctor: String,
    nurse: String,
}

async fn clinic() -> Clinic {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "doctor", Role::Prescriber).await;
    app.user(&site, "doctor2", Role::Prescriber).await;
    app.user(&site, "nurse", Role::Dispenser).await;
    let doctor = app.login("doctor").await;
    let nurse = app.login("nurse").await;
    Clinic { app, doctor, nurse }
}

impl Clinic {
    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let a = self
            .app
            .call(Method::POST, path, Some(token), Some(body))
            .await;
        let v = if a.text.is_empty() {
            Value::Null
        } else {
            a.json()
        };
        (a.status, v)
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        let a = self.app.call(Method::GET, path, Some(token), None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        a.json()
    }

    /// Enrols a client on `mg` a day from today: an induction order, which above the induction
    /// limits carries a reason (a client transferred on a known dose) and is confirmed by a
    /// second prescriber.
    async fn client_on(&self, uic: &str, mg: u32, split: u8) -> i64 {
        let (s, c) = self
            .post(
                &self.doctor,
                "/api/v1/clients",
                json!({"uic": uic, "enrolled_on": self.app.state.today().to_string()}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let id = c["id"].as_i64().unwrap();
        let (s, o) = self
            .post(&self.doctor, &format!("/api/v1/clients/{id}/orders"), json!({"kind": "induction", "start": self.app.state.today().to_string(), "mg": mg, "split": split, "reason": "transferred on a known, stable dose"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        if o["confirmation"] == "awaiting" {
            let second = self.app.login("doctor2").await;
            let (s, c) = self
                .post(
                    &second,
                    &format!("/api/v1/orders/{}/confirm", o["id"]),
                    json!({}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{c}");
        }
        id
    }

    async fn dose(&self, uic: &str) -> (StatusCode, Value) {
        self.post(&self.nurse, "/api/v1/doses", json!({"uic": uic}))
            .await
    }

    /// Moves to the next day (tokens are renewed: sessions idle out overnight).
    async fn next_day(&mut self, days: i64) {
        self.app.clock.advance(Duration::days(days));
        self.doctor = self.app.login("doctor").await;
        self.nurse = self.app.login("nurse").await;
    }
}

#[tokio::test]
async fn a_second_dose_on_the_same_day_is_refused_with_the_time_of_the_first() {
    let c = clinic().await;
    c.client_on("YX-0001", 60, 1).await;
    let (s, d) = c.dose("YX-0001").await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(d["mg"], 60);
    assert_eq!(d["given_at"], "09:00");
    c.app.clock.advance(Duration::minutes(10));
    let (s, again) = c.dose("YX-0001").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        again["error"]["message"],
        "YX-0001 was already dosed today at 09:00"
    );
    let site = c.app.store.site_by_code("YX01").await.unwrap();
    let doses = c
        .app
        .store
        .day_facts(site.id, c.app.state.today())
        .await
        .unwrap();
    assert_eq!(doses[0].doses_today.len(), 1);
    c.app.cleanup().await;
}

#[tokio::test]
async fn split_doses_give_two_portions_then_stop() {
    let mut c = clinic().await;
    c.client_on("YX-0002", 75, 2).await;
    // 09:00 at the centre: the first portion, and the window says when the next one is due.
    let (s1, a) = c.dose("YX-0002").await;
    assert_eq!(s1, StatusCode::CREATED, "{a}");
    assert_eq!(
        (a["portion"].clone(), a["next_portion_at"].clone()),
        (json!(1), json!("15:00"))
    );
    // Both halves in the same minute would be the whole dose at once: refused, naming the time.
    let (s, e) = c.dose("YX-0002").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "dose.portion_too_soon");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("15:00") && msg.contains("6 hours"), "{msg}");
    let list = c.get(&c.nurse, "/api/v1/dispensing/today").await;
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uic"] == "YX-0002")
        .unwrap()
        .clone();
    assert_eq!(
        (row["status"].clone(), row["next_portion_at"].clone()),
        (json!("not_yet"), json!("15:00"))
    );
    // The window says it in the nurse's language.
    let mut window = c.app.browser("nurse", "zh-CN").await;
    let page = window.submit("/dispensing", &[("uic", "YX-0002")]).await;
    assert!(
        page.text.contains("第 2/2 份要到 15:00 以后才能服用"),
        "{}",
        page.text
    );
    // At 15:00 the second portion; then the day is done.
    c.app.clock.advance(Duration::hours(6));
    c.nurse = c.app.login("nurse").await;
    let (s2, b) = c.dose("YX-0002").await;
    assert_eq!(s2, StatusCode::CREATED, "{b}");
    assert_eq!(a["mg"].as_u64().unwrap() + b["mg"].as_u64().unwrap(), 75);
    assert_eq!(
        (b["portion"].clone(), b["next_portion_at"].clone()),
        (json!(2), json!(null))
    );
    let (s3, _) = c.dose("YX-0002").await;
    assert_eq!(s3, StatusCode::CONFLICT);
    c.app.cleanup().await;
}

#[tokio::test]
async fn every_missed_dose_rule_applies_at_the_window() {
    let mut c = clinic().await;
    let id = c.client_on("YX-0003", 80, 1).await;
    assert_eq!(c.dose("YX-0003").await.0, StatusCode::CREATED);

    // Missed 2 days (came back on the 3rd): the normal dose.
    c.next_day(3).await;
    let (s, d) = c.dose("YX-0003").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (d["mg"].clone(), d["rule"].clone()),
        (json!(80), json!("normal"))
    );

    // Missed 3 days: withheld until a prescriber reviews, then half.
    c.next_day(4).await;
    let (s, e) = c.dose("YX-0003").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 consecutive days missed: withheld until a prescriber reviews"),
        "{e}"
    );
    let list = c.get(&c.nurse, "/api/v1/dispensing/today").await;
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uic"] == "YX-0003")
        .unwrap();
    assert_eq!(
        (row["status"].clone(), row["rule"].clone()),
        (json!("withheld"), json!("awaiting_review"))
    );
    // A nurse cannot record the review; the prescriber can.
    let (s, _) = c
        .post(
            &c.nurse,
            &format!("/api/v1/clients/{id}/reviews"),
            json!({"note": "ok"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = c
        .post(
            &c.doctor,
            &format!("/api/v1/clients/{id}/reviews"),
            json!({"note": "seen, not intoxicated"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, d) = c.dose("YX-0003").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (d["mg"].clone(), d["rule"].clone()),
        (json!(40), json!("half_after_review"))
    );

    // Missed 4 days: review, then the lower of 40 mg or half (80 → 40; with 120 ordered → 40).
    c.post(&c.doctor, &format!("/api/v1/clients/{id}/orders"), json!({"kind": "titration", "start": (c.app.state.today() + Duration::days(1)).to_string(), "mg": 120})).await;
    c.next_day(5).await;
    assert_eq!(c.dose("YX-0003").await.0, StatusCode::CONFLICT);
    c.post(
        &c.doctor,
        &format!("/api/v1/clients/{id}/reviews"),
        json!({"note": "reviewed"}),
    )
    .await;
    let (s, d) = c.dose("YX-0003").await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(
        (d["mg"].clone(), d["rule"].clone()),
        (json!(40), json!("capped_after_review"))
    );

    // Missed 5 or more: a review is not enough; a new induction order restarts dosing.
    c.next_day(6).await;
    c.post(
        &c.doctor,
        &format!("/api/v1/clients/{id}/reviews"),
        json!({"note": "reviewed"}),
    )
    .await;
    let (s, e) = c.dose("YX-0003").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("new induction order"));
    c.post(
        &c.doctor,
        &format!("/api/v1/clients/{id}/orders"),
        json!({"kind": "induction", "start": c.app.state.today().to_string(), "mg": 30}),
    )
    .await;
    let (s, d) = c.dose("YX-0003").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (d["mg"].clone(), d["rule"].clone()),
        (json!(30), json!("normal"))
    );
    // Each refusal at the window is in the audit trail.
    let trail = c
        .app
        .store
        .audit_of_record("client", &id.to_string())
        .await
        .unwrap();
    assert_eq!(
        trail.iter().filter(|e| e.action == "dose.withheld").count(),
        3
    );
    c.app.cleanup().await;
}

#[tokio::test]
async fn guest_dosing_at_another_centre_never_doubles_the_day() {
    let c = clinic().await;
    let km = c.app.site("KM01").await;
    c.app.user(&km, "km.nurse", Role::Dispenser).await;
    let km_nurse = c.app.login("km.nurse").await;
    let id = c.client_on("YX-0004", 70, 1).await;

    // Without an arrangement, Kunming may not dose a Yuxi client, and is not told it is one.
    let (s, e) = c
        .post(&km_nurse, "/api/v1/doses", json!({"uic": "YX-0004"}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("uic.unknown"))
    );
    let today = c.app.state.today();
    let (s, e) = c
        .post(&c.doctor, &format!("/api/v1/clients/{id}/guest-dosing"), json!({"site": "KM01", "from": today.to_string(), "to": (today + Duration::days(3)).to_string()}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    // Kunming sees the guest on its day list and doses.
    let list = c.get(&km_nurse, "/api/v1/dispensing/today").await;
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["uic"] == "YX-0004" && r["guest"] == true));
    let (s, d) = c
        .post(&km_nurse, "/api/v1/doses", json!({"uic": "YX-0004"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(d["guest"], true);
    // The home centre cannot give a second dose that day, and sees the guest dose.
    let (s, e) = c.dose("YX-0004").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already dosed today"));
    let doses = c
        .get(&c.nurse, &format!("/api/v1/clients/{id}/doses"))
        .await;
    assert_eq!(doses.as_array().unwrap().len(), 1);
    assert_eq!(doses[0]["site_id"], km.id);
    // Kunming still cannot open the client's record (answered as if there were none).
    let a = c
        .app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}"),
            Some(&km_nurse),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    c.app.cleanup().await;
}

#[tokio::test]
async fn bad_dose_and_order_input_names_the_field_and_writes_nothing() {
    let c = clinic().await;
    let id = c.client_on("YX-0005", 60, 1).await;
    let head = c.app.store.audit_head().await.unwrap();

    let (s, e) = c.dose("YX-9999").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "uic");
    let (s, e) = c.dose("yx 1").await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("uic"))
    );
    let today = c.app.state.today().to_string();
    for (body, field) in [
        (json!({"kind": "induction", "start": today, "mg": 0}), "mg"),
        (
            json!({"kind": "induction", "start": today, "mg": 5000}),
            "mg",
        ),
        (
            json!({"kind": "induction", "start": today, "mg": 180}),
            "reason",
        ),
        (json!({"kind": "bolus", "start": today, "mg": 60}), "kind"),
        (
            json!({"kind": "induction", "start": "22/11/2026", "mg": 60}),
            "start",
        ),
        (
            json!({"kind": "induction", "start": today, "mg": 60, "split": 3}),
            "split",
        ),
    ] {
        let (s, e) = c
            .post(
                &c.doctor,
                &format!("/api/v1/clients/{id}/orders"),
                body.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(e["error"]["field"], field, "{body}");
    }
    let (s, e) = c
        .post(
            &c.doctor,
            &format!("/api/v1/clients/{id}/orders"),
            json!({"kind": "induction", "start": today, "mg": -5}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("mg"))
    );
    for (body, field) in [
        (
            json!({"observed": true, "outcome": "tested", "results": {"heroin": "positive"}}),
            "results.heroin",
        ),
        (
            json!({"observed": true, "outcome": "tested", "results": {"opiates": "maybe"}}),
            "results.opiates",
        ),
        (
            json!({"observed": true, "outcome": "tested", "results": {}}),
            "results",
        ),
        (
            json!({"observed": true, "outcome": "refused", "collected_on": "2099-01-01"}),
            "collected_on",
        ),
    ] {
        let (s, e) = c
            .post(
                &c.nurse,
                &format!("/api/v1/clients/{id}/urine-tests"),
                body.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(e["error"]["field"], field);
    }
    assert_eq!(
        c.app.store.audit_head().await.unwrap(),
        head,
        "a refused request wrote something"
    );
    // A 180 mg order with a reason is accepted.
    let (s, _) = c
        .post(&c.doctor, &format!("/api/v1/clients/{id}/orders"), json!({"kind": "titration", "start": today, "mg": 180, "reason": "documented rapid metabolism, trough level low"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A discharged client is not dosed.
    let (s, _) = c
        .post(
            &c.doctor,
            &format!("/api/v1/clients/{id}/discharge"),
            json!({"reason": "moved to another province"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = c.dose("YX-0005").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("discharged"));
    c.app.cleanup().await;
}

#[tokio::test]
async fn urine_results_and_adherence_show_on_the_record() {
    let mut c = clinic().await;
    let id = c.client_on("YX-0006", 60, 1).await;
    for day in 0..10 {
        if day != 4 && day != 5 {
            assert_eq!(c.dose("YX-0006").await.0, StatusCode::CREATED);
        }
        c.next_day(1).await;
    }
    let (s, _) = c
        .post(&c.nurse, &format!("/api/v1/clients/{id}/urine-tests"), json!({"observed": true, "outcome": "tested", "results": {"opiates": "negative", "methadone": "positive"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let a = c
        .get(&c.nurse, &format!("/api/v1/clients/{id}/adherence"))
        .await;
    assert_eq!(a["last_30"], json!({"attended": 8, "expected": 10}));
    assert_eq!(a["longest_gap_90"], 2);
    assert_eq!(a["current_streak"], 4);
    assert_eq!(a["urine_negative_streak"], 1);
    assert_eq!(a["timeline"].as_array().unwrap().len(), 90);
    c.app.cleanup().await;
}

#[tokio::test]
async fn stock_close_out_with_a_large_variance_needs_a_reason() {
    let c = clinic().await;
    c.client_on("YX-0007", 60, 1).await;
    c.client_on("YX-0008", 90, 1).await;
    let (s, r) = c.post(&c.nurse, "/api/v1/stock/receipts", json!({"bottles": 4, "ml_per_bottle": 500.0, "concentration_mg_per_ml": 1.0, "lot": "YX2611-07"})).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, e) = c.post(&c.nurse, "/api/v1/stock/receipts", json!({"bottles": 1, "ml_per_bottle": 500.0, "concentration_mg_per_ml": 10.0, "lot": "X"})).await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("concentration_mg_per_ml")
        )
    );
    c.dose("YX-0007").await;
    c.dose("YX-0008").await;
    let stock = c.get(&c.nurse, "/api/v1/stock").await;
    assert_eq!(stock["expected_ml"], 1850.0);
    // 30 mL missing: refused without a reason, accepted with one, flagged and audited.
    let (s, e) = c
        .post(
            &c.nurse,
            "/api/v1/stock/closeouts",
            json!({"measured_ml": 1820.0}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("reason"))
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("-30.0 mL"));
    let (s, ok) = c
        .post(
            &c.nurse,
            "/api/v1/stock/closeouts",
            json!({"measured_ml": 1820.0, "reason": "spill at the pump, witnessed by Dr Wang"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(ok["flagged"], true);
    let again = c
        .post(
            &c.nurse,
            "/api/v1/stock/closeouts",
            json!({"measured_ml": 1820.0, "reason": "counted a second time"}),
        )
        .await;
    assert_eq!(again.0, StatusCode::CONFLICT);
    let site = c.app.store.site_by_code("YX01").await.unwrap();
    let trail = c.app.store.recent_audit(site.id, 10).await.unwrap();
    assert!(trail
        .iter()
        .any(|e| e.action == "stock.closeout.variance" && e.reason.contains("spill")));
    // The next day starts from the measured volume.
    c.app.clock.advance(Duration::days(1));
    let nurse = c.app.login("nurse").await;
    assert_eq!(c.get(&nurse, "/api/v1/stock").await["expected_ml"], 1820.0);
    c.app.cleanup().await;
}

#[tokio::test]
async fn identity_is_encrypted_at_rest_and_read_only_with_the_right() {
    let c = clinic().await;
    let site = c.app.store.site_by_code("YX01").await.unwrap();
    c.app.user(&site, "peer", Role::PeerEducator).await;
    let peer = c.app.login("peer").await;
    let id = c.client_on("YX-0009", 60, 1).await;
    let a = c
        .app
        .call(Method::PUT, &format!("/api/v1/clients/{id}/identity"), Some(&c.doctor), Some(json!({"name": "Li Wei", "national_id": "53040219800101123X", "phone": "13800138000"})))
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    // At rest: no plaintext in the database.
    let row: (Vec<u8>,) = sqlx::query_as("SELECT identity FROM clients WHERE id = $1")
        .bind(id)
        .fetch_one(c.app.store.pool())
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&row.0).contains("Li Wei"));
    assert!(!String::from_utf8_lossy(&row.0).contains("13800138000"));
    let got = c
        .get(&c.nurse, &format!("/api/v1/clients/{id}/identity"))
        .await;
    assert_eq!(got["name"], "Li Wei");
    let found = c
        .post(
            &c.nurse,
            "/api/v1/clients/find-by-name",
            json!({"name": "  li wei "}),
        )
        .await
        .1;
    assert_eq!(found[0]["uic"], "YX-0009");
    // A peer educator sees the UIC, not the identity.
    assert_eq!(
        c.app
            .call(
                Method::GET,
                &format!("/api/v1/clients/{id}/identity"),
                Some(&peer),
                None
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let bad = c
        .app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{id}/identity"),
            Some(&c.doctor),
            Some(json!({"national_id": "12345"})),
        )
        .await;
    assert_eq!(bad.json()["error"]["field"], "national_id");
    // Tampering with the ciphertext makes it unreadable, not wrong.
    let mut blob = row.0.clone();
    let last = blob.len() - 1;
    blob[last] ^= 0x01;
    sqlx::query("UPDATE clients SET identity = $1 WHERE id = $2")
        .bind(blob)
        .bind(id)
        .execute(c.app.store.pool())
        .await
        .unwrap();
    let t = c
        .app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}/identity"),
            Some(&c.nurse),
            None,
        )
        .await;
    assert_eq!(t.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!t.text.contains("Li Wei"));
    c.app.cleanup().await;
}

#[tokio::test]
async fn revoked_and_expired_consents_are_not_in_force() {
    let mut c = clinic().await;
    let site = c.app.store.site_by_code("YX01").await.unwrap();
    c.app.user(&site, "counsellor", Role::Counsellor).await;
    let counsellor = c.app.login("counsellor").await;
    let id = c.client_on("YX-0010", 60, 1).await;
    let today = c.app.state.today();
    let (s, psb) = c
        .post(&counsellor, &format!("/api/v1/clients/{id}/consents"), json!({"purpose": "take_home_police_check", "recipient": "PSB", "scope": "name, national ID number, requested days", "expires_on": (today + Duration::days(90)).to_string()}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{psb}");
    c.post(&counsellor, &format!("/api/v1/clients/{id}/consents"), json!({"purpose": "cdc_figures", "recipient": "CDC", "scope": "de-identified counts", "expires_on": (today + Duration::days(2)).to_string()})).await;
    let list = c
        .get(&c.nurse, &format!("/api/v1/clients/{id}/consents"))
        .await;
    assert!(list.as_array().unwrap().iter().all(|x| x["active"] == true));
    let (s, _) = c
        .post(
            &counsellor,
            &format!("/api/v1/consents/{}/revoke", psb["id"]),
            json!({"reason": "client withdrew"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    c.next_day(3).await;
    let counsellor = c.app.login("counsellor").await;
    let list = c
        .get(&c.nurse, &format!("/api/v1/clients/{id}/consents"))
        .await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|x| x["active"] == false),
        "{list}"
    );
    let (s, e) = c
        .post(
            &counsellor,
            &format!("/api/v1/clients/{id}/consents"),
            json!({"purpose": "x", "recipient": "PSB", "scope": "y", "expires_on": "2020-01-01"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("expires_on"))
    );
    c.app.cleanup().await;
}

#[tokio::test]
async fn changing_a_phone_number_is_its_own_audited_action() {
    let c = clinic().await;
    let site = c.app.store.site_by_code("YX01").await.unwrap();
    c.app.user(&site, "counsellor", Role::Counsellor).await;
    let counsellor = c.app.login("counsellor").await;
    let id = c.client_on("YX-0011", 60, 1).await;
    let put = |token: String, phone: &'static str| {
        let app = &c.app;
        async move {
            app.call(
                Method::PUT,
                &format!("/api/v1/clients/{id}/phone"),
                Some(&token),
                Some(json!({"phone": phone})),
            )
            .await
        }
    };
    assert_eq!(
        put(c.nurse.clone(), "13800138000").await.status,
        StatusCode::FORBIDDEN
    );
    let bad = put(counsellor.clone(), "12345").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["error"]["field"], "phone");
    let ok = put(counsellor.clone(), "138 0013 8000").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(
        !ok.text.contains("13800138000"),
        "the answer masks the number"
    );
    let identity = c
        .get(&c.nurse, &format!("/api/v1/clients/{id}/identity"))
        .await;
    assert_eq!(identity["phone"], "+8613800138000");
    let trail = c
        .app
        .store
        .audit_of_record("client", &id.to_string())
        .await
        .unwrap();
    let change = trail
        .iter()
        .find(|e| e.action == "client.phone.change")
        .unwrap();
    assert_eq!(change.actor, "counsellor");
    assert!(!change.reason.contains("13800138000"));
    c.app.cleanup().await;
}

#[tokio::test]
async fn consents_are_recorded_and_revoked_from_the_client_page() {
    let c = clinic().await;
    let site = c.app.store.site_by_code("YX01").await.unwrap();
    c.app.user(&site, "counsellor", Role::Counsellor).await;
    let counsellor = c.app.login("counsellor").await;
    let id = c.client_on("YX-0012", 60, 1).await;
    let form = |path: String, body: &'static str| {
        axum::http::Request::post(path)
            .header("authorization", format!("Bearer {counsellor}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let a = c
        .app
        .send(form(
            format!("/clients/{id}/consents"),
            "kind=police&expires_on=2027-06-30",
        ))
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let list = c
        .get(&c.nurse, &format!("/api/v1/clients/{id}/consents"))
        .await;
    assert_eq!(
        (list[0]["recipient"].clone(), list[0]["active"].clone()),
        (json!("PSB"), json!(true))
    );
    let bad = c
        .app
        .send(form(
            format!("/clients/{id}/consents"),
            "kind=police&expires_on=2020-01-01",
        ))
        .await;
    // Refused: back to the record, the refusal and the typed values in the form cookie (never
    // in the URL), shown at the field on the page that follows.
    let back = bad.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(back, format!("/clients/{id}"));
    let flash = bad.headers["set-cookie"].to_str().unwrap();
    assert!(
        flash.starts_with("anxin_form=") && flash.contains("HttpOnly"),
        "{flash}"
    );
    let shown = c
        .app
        .send(
            axum::http::Request::get(&back)
                .header("authorization", format!("Bearer {counsellor}"))
                .header("cookie", flash.split(';').next().unwrap())
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        shown.text.contains("class=\"field-error\"")
            && shown.text.contains("data-field=\"expires_on\""),
        "the refusal is shown at its field"
    );
    assert!(
        shown.text.contains("value=\"2020-01-01\""),
        "what was typed is kept"
    );
    let consent = list[0]["id"].as_i64().unwrap();
    let a = c
        .app
        .send(form(
            format!("/consents/{consent}/revoke?client={id}"),
            "reason=client+withdrew",
        ))
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let list = c
        .get(&c.nurse, &format!("/api/v1/clients/{id}/consents"))
        .await;
    assert_eq!(list[0]["active"], false);
    // The page shows both forms to the counsellor, in the account's language.
    let page = c
        .app
        .send(
            axum::http::Request::get(format!("/clients/{id}"))
                .header("authorization", format!("Bearer {counsellor}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert!(page.text.contains("id=\"consent-form\"") && page.text.contains("Take-home doses"));
    c.app.cleanup().await;
}

/// The refusal a page shows at `field` (`<span class="field-error" data-field=…>`).
fn error_at(page: &str, field: &str) -> Option<String> {
    let marker = format!("data-field=\"{field}\">");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find("</span>")? + start;
    Some(page[start..end].to_owned())
}

#[tokio::test]
async fn a_first_week_within_the_induction_limits_and_a_rise_beyond_them_waits_for_a_second_prescriber(
) {
    let mut c = clinic().await;
    let today = c.app.state.today();
    let day = |n: i64| (today + Duration::days(n)).to_string();
    let (s, new) = c
        .post(
            &c.doctor,
            "/api/v1/clients",
            json!({"uic": "YX-0100", "enrolled_on": today.to_string()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{new}");
    let id = new["id"].as_i64().unwrap();
    let orders = format!("/api/v1/clients/{id}/orders");

    // 100 mg on day 1 without a reason: refused at the dose, in the API and in the page.
    let (s, e) = c
        .post(
            &c.doctor,
            &orders,
            json!({"kind": "induction", "start": day(0), "mg": 100}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        (e["error"]["code"].clone(), e["error"]["field"].clone()),
        (json!("order.first_dose_above_limit"), json!("mg"))
    );
    let mut doctor = c.app.browser("doctor", "zh-CN").await;
    let page = doctor
        .submit(
            &format!("/clients/{id}/orders"),
            &[
                ("kind", "induction"),
                ("start", &day(0)),
                ("mg", "100"),
                ("split", "1"),
                ("reason", ""),
            ],
        )
        .await;
    let shown = error_at(&page.text, "mg").expect("the refusal at the dose");
    assert!(
        shown.contains("首次服用 100 mg 超过诱导期上限 30 mg") && shown.contains("第二位医生"),
        "{shown}"
    );
    assert!(
        page.text.contains("value=\"100\""),
        "the dose typed is kept"
    );
    // Nothing was written: the window has no order to give.
    assert_eq!(c.get(&c.doctor, &orders).await, json!([]));
    let (s, e) = c.dose("YX-0100").await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("dose.no_order"))
    );

    // Titration steps in the order form: a rise two days after the start is refused at its date.
    let page = doctor
        .submit(
            &format!("/clients/{id}/orders"),
            &[
                ("kind", "induction"),
                ("start", &day(0)),
                ("mg", "30"),
                ("split", "1"),
                ("steps[0].from", &day(2)),
                ("steps[0].mg", "40"),
                ("reason", ""),
            ],
        )
        .await;
    let shown = error_at(&page.text, "steps[0].from").expect("the refusal at the step's date");
    assert!(shown.contains("只有 2 天，少于 3 天"), "{shown}");
    assert!(
        page.text.contains(&format!("value=\"{}\"", day(2))),
        "the step typed is kept"
    );
    // 30 mg, then 40 from day 4 and 50 from day 7: within the limits, in force at once.
    let page = doctor
        .submit(
            &format!("/clients/{id}/orders"),
            &[
                ("kind", "induction"),
                ("start", &day(0)),
                ("mg", "30"),
                ("split", "1"),
                ("steps[0].from", &day(3)),
                ("steps[0].mg", "40"),
                ("steps[1].from", &day(6)),
                ("steps[1].mg", "50"),
                ("reason", ""),
            ],
        )
        .await;
    assert!(page.text.contains("医嘱已开具。"), "{}", page.text);
    let written = c.get(&c.doctor, &orders).await;
    assert_eq!(written[0]["confirmation"], "not_needed");
    assert_eq!(written[0]["steps"].as_array().unwrap().len(), 2);
    let (s, d) = c.dose("YX-0100").await;
    assert_eq!((s, d["mg"].clone()), (StatusCode::CREATED, json!(30)));
    c.next_day(3).await;
    let (s, d) = c.dose("YX-0100").await;
    assert_eq!(
        (s, d["mg"].clone()),
        (StatusCode::CREATED, json!(40)),
        "{d}"
    );

    // Day 4: the doctor wants 80 mg from tomorrow (40 mg at once): with a reason it is kept,
    // but it waits for a second prescriber and the window keeps the order in force.
    let (s, e) = c
        .post(
            &c.doctor,
            &orders,
            json!({"kind": "titration", "start": day(4), "mg": 80}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone(), e["error"]["field"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("order.increase_above_limit"),
            json!("mg")
        )
    );
    let (s, o) = c
        .post(
            &c.doctor,
            &orders,
            json!({"kind": "titration", "start": day(4), "mg": 80, "reason": "still injecting heroin daily, craving"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["confirmation"], "awaiting");
    assert_eq!(o["beyond_limits"][0]["code"], "order.increase_above_limit");
    let awaiting = c.get(&c.doctor, "/api/v1/orders/awaiting").await;
    assert_eq!(
        (
            awaiting[0]["uic"].clone(),
            awaiting.as_array().unwrap().len()
        ),
        (json!("YX-0100"), 1)
    );
    // The doctors' worklist counts it and leads to it.
    let work = c.get(&c.doctor, "/api/v1/worklist").await;
    let item = work["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "orders_awaiting")
        .unwrap()
        .clone();
    assert_eq!(item["count"], 1);
    let list = c
        .app
        .browser("doctor", "zh-CN")
        .await
        .get(item["href"].as_str().unwrap())
        .await
        .text;
    assert!(
        list.contains("YX-0100") && list.contains("调整期 80 mg"),
        "{list}"
    );
    c.next_day(1).await;
    let (s, d) = c.dose("YX-0100").await;
    assert_eq!(
        (s, d["mg"].clone()),
        (StatusCode::CREATED, json!(40)),
        "not in force yet: {d}"
    );

    // The doctor who wrote it cannot confirm it; the page tells another prescriber to.
    let confirm = format!("/api/v1/orders/{}/confirm", o["id"]);
    let (s, e) = c.post(&c.doctor, &confirm, json!({})).await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("order.confirm_own"))
    );
    let mut doctor = c.app.browser("doctor", "zh-CN").await;
    let record = doctor.get(&format!("/clients/{id}")).await.text;
    assert!(
        record.contains("data-confirmation=\"awaiting\"") && record.contains("须由另一位医生确认")
    );
    assert!(
        !record.contains(&format!("/orders/{}/confirm", o["id"])),
        "no button for the writer"
    );

    // A second prescriber confirms it in the page (English); from the next day it is given.
    let mut second = c.app.browser("doctor2", "en").await;
    let record = second.get(&format!("/clients/{id}")).await.text;
    assert!(record.contains("Confirm (second prescriber)"), "{record}");
    assert!(
        record.contains("rises from 40 mg to 80 mg, more than 10 mg at once"),
        "{record}"
    );
    let page = second
        .submit(&format!("/orders/{}/confirm", o["id"]), &[])
        .await;
    assert!(page.text.contains("Order confirmed"), "{}", page.text);
    assert!(page.text.contains("data-confirmation=\"confirmed\""));
    let (s, e) = c.post(&c.doctor, &confirm, json!({})).await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("order.not_awaiting"))
    );
    assert_eq!(c.get(&c.doctor, "/api/v1/orders/awaiting").await, json!([]));
    let work = c.get(&c.doctor, "/api/v1/worklist").await;
    assert!(work["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["kind"] == "orders_awaiting" && i["count"] == 0));
    c.next_day(1).await;
    let (s, d) = c.dose("YX-0100").await;
    assert_eq!(
        (s, d["mg"].clone()),
        (StatusCode::CREATED, json!(80)),
        "{d}"
    );
    // Both the order and its confirmation are in the audit trail.
    let trail: Vec<(String, String)> = c
        .app
        .store
        .audit_of_record("client", &id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action))
        .collect();
    assert!(
        trail.contains(&("doctor2".into(), "order.confirm".into())),
        "{trail:?}"
    );
    // A prescriber of another centre learns nothing of this client's doses from the limits:
    // the order is answered as one for a client that does not exist.
    let elsewhere = c.app.site("YX02").await;
    c.app
        .user(&elsewhere, "doctor.yx02", Role::Prescriber)
        .await;
    let other = c.app.login("doctor.yx02").await;
    let body = json!({"kind": "titration", "start": day(6), "mg": 120});
    let (s, here) = c.post(&other, &orders, body.clone()).await;
    let (s2, missing) = c.post(&other, "/api/v1/clients/999999/orders", body).await;
    assert_eq!(
        (s, s2),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
        "{here}"
    );
    assert_eq!(here["error"]["code"], missing["error"]["code"]);
    c.app.cleanup().await;
}
