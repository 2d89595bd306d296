//! The application core seen from both adapters: a form and the API refuse the same input with
//! the same code; the page shows the refusal at its field, in Chinese, keeping what was typed;
//! a use case that fails half-way leaves nothing behind; the window answers in the page's
//! language. Each scenario runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anxin_domain::Role;
use anxin_server::testing::TestApp;
use axum::http::{Method, StatusCode};
use common::{error_at, world_on, World};
use serde_json::{json, Value};

/// The API's refusal: status, code and field.
async fn api_refusal(
    w: &World,
    m: Method,
    path: &str,
    body: Value,
) -> (StatusCode, String, String) {
    let (s, r) = w.call(m, &w.doctor, path, Some(body)).await;
    let e = &r["error"];
    (
        s,
        e["code"].as_str().unwrap_or_default().to_owned(),
        e["field"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn same_refusals_in_form_and_api(app: TestApp) {
    let w = world_on(app).await;
    let id = w.stable_client("YX-0043-IY", true).await;
    let mut doctor = w.app.browser("doctor", "zh-CN").await;

    // Identity: a phone that is not one, a national ID of 3 digits, and nothing at all.
    let identity = format!("/api/v1/clients/{id}/identity");
    let form = format!("/clients/{id}/identity");
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str, &'a str);
    let cases: [Case; 3] = [
        (
            &[("name", "李伟"), ("phone", "abc")],
            "phone.invalid",
            "phone",
            "不是有效的手机号码",
        ),
        (
            &[("name", "李伟"), ("national_id", "123")],
            "national_id.invalid",
            "national_id",
            "身份证号码应为 18 位",
        ),
        (
            &[
                ("name", ""),
                ("phone", ""),
                ("national_id", ""),
                ("address", ""),
            ],
            "identity.empty",
            "name",
            "请至少填写一项身份信息",
        ),
    ];
    for (fields, code, field, chinese) in cases {
        let body: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let (s, c, f) = api_refusal(&w, Method::PUT, &identity, Value::Object(body)).await;
        assert_eq!(
            (s, c.as_str(), f.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, code, field)
        );
        let a = doctor.submit(&form, fields).await;
        assert_eq!(a.status, StatusCode::OK);
        let shown = error_at(&a.text, field).unwrap_or_else(|| panic!("no error at {field}"));
        assert!(
            shown.contains(chinese),
            "{code} at the field in Chinese: {shown}"
        );
        for (k, v) in fields.iter().filter(|(_, v)| !v.is_empty()) {
            assert!(
                a.text.contains(&format!("name=\"{k}\" value=\"{v}\"")),
                "{k} keeps what was typed"
            );
        }
    }
    // Nothing of it was stored: the identity is the one set at enrolment.
    let (s, stored) = w.call(Method::GET, &w.doctor, &identity, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stored["phone"], "+8613800138000");
    assert_eq!(stored["national_id"], "53040219800101123X");

    // A 200 mg order without a reason.
    let (s, c, f) = api_refusal(
        &w,
        Method::POST,
        &format!("/api/v1/clients/{id}/orders"),
        json!({"kind": "maintenance", "start": "2026-11-22", "mg": 200}),
    )
    .await;
    assert_eq!(
        (s, c.as_str(), f.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "order.reason_required",
            "reason"
        )
    );
    let a = doctor
        .submit(
            &format!("/clients/{id}/orders"),
            &[
                ("kind", "maintenance"),
                ("start", "2026-11-22"),
                ("mg", "200"),
                ("split", "1"),
                ("reason", ""),
            ],
        )
        .await;
    let shown = error_at(&a.text, "reason").expect("the order form shows the refusal at reason");
    assert!(shown.contains("200 mg 超过上限 150 mg"), "{shown}");
    assert!(a.text.contains("value=\"200\""), "the dose typed is kept");
    // An ordinary Chinese reason of 4+ characters is enough.
    let a = doctor
        .submit(
            &format!("/clients/{id}/orders"),
            &[
                ("kind", "maintenance"),
                ("start", "2026-11-22"),
                ("mg", "160"),
                ("split", "1"),
                ("reason", "量杯误差，已复核"),
            ],
        )
        .await;
    assert!(a.text.contains("医嘱已开具"), "the order is written");
    let a = doctor
        .submit(
            &format!("/clients/{id}/orders"),
            &[
                ("kind", "maintenance"),
                ("start", "2026-11-22"),
                ("mg", "80"),
                ("split", "1"),
                ("reason", "back to 80"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);

    // A load of more days than the police approved.
    w.approved(id, 2).await;
    let (s, b) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes",
            Some(json!({"serial": "BOX-0004"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, c, f) = api_refusal(
        &w,
        Method::POST,
        &format!("/api/v1/clients/{id}/loads"),
        json!({"serial": "BOX-0004", "days": 3}),
    )
    .await;
    assert_eq!(
        (s, c.as_str(), f.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "load.over_approved",
            "days"
        )
    );
    let a = doctor
        .submit(
            &format!("/clients/{id}/load"),
            &[
                ("serial", "BOX-0004"),
                ("days", "3"),
                ("start", ""),
                ("code_hour", "7"),
            ],
        )
        .await;
    let shown = error_at(&a.text, "days").expect("the load form shows the refusal at days");
    assert!(shown.contains("公安批准的是 2 天"), "{shown}");
    assert!(
        a.text.contains("value=\"BOX-0004\""),
        "the serial typed is kept"
    );

    // A hand-out without the phone confirmed.
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0004", "days": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let load = l["load"]["id"].as_i64().unwrap();
    let (s, c, f) = api_refusal(
        &w,
        Method::POST,
        &format!("/api/v1/loads/{load}/hand-out"),
        json!({"phone_confirmed": false}),
    )
    .await;
    assert_eq!(
        (s, c.as_str(), f.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "handout.phone_unconfirmed",
            "phone_confirmed"
        )
    );
    let a = doctor.submit(&format!("/loads/{load}/hand-out"), &[]).await;
    let shown = error_at(&a.text, "phone_confirmed").expect("the hand-out shows the refusal");
    assert!(shown.contains("核对"), "{shown}");
    let stored = w.app.store.load(load).await.unwrap();
    assert_eq!(stored.state.as_str(), "loaded", "not handed out");
    let a = doctor
        .submit(
            &format!("/loads/{load}/hand-out"),
            &[("phone_confirmed", "true")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let stored = w.app.store.load(load).await.unwrap();
    assert_eq!(stored.state.as_str(), "with_client");
    w.app.cleanup().await;
}

#[tokio::test]
async fn form_and_api_refuse_alike_on_sqlite() {
    same_refusals_in_form_and_api(TestApp::new().await).await;
}

#[tokio::test]
async fn form_and_api_refuse_alike_on_postgres() {
    same_refusals_in_form_and_api(TestApp::postgres().await).await;
}

async fn count(w: &World, sql: &str) -> i64 {
    use sqlx::Row;
    let row = sqlx::query(sql)
        .fetch_one(w.app.store.pool())
        .await
        .unwrap();
    row.try_get::<i64, _>("n").unwrap()
}

async fn a_failed_load_leaves_nothing(app: TestApp) {
    let w = world_on(app).await;
    let id = w.stable_client("YX-0050-AB", true).await;
    w.approved(id, 2).await;
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes",
            Some(json!({"serial": "BOX-0007"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let body = json!({"serial": "BOX-0007", "days": 2});
    let path = format!("/api/v1/clients/{id}/loads");
    for step in [
        "load_box.after_load",
        "load_box.after_codes",
        "load_box.before_commit",
    ] {
        let head = w.app.store.audit_head().await.unwrap();
        let doses = count(&w, "SELECT COUNT(*) AS n FROM doses").await;
        w.app.state.app.arm_failpoint(step);
        let (s, r) = w
            .call(Method::POST, &w.doctor, &path, Some(body.clone()))
            .await;
        w.app.state.app.disarm_failpoints();
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{step}: {r}");
        assert_eq!(
            count(&w, "SELECT COUNT(*) AS n FROM box_loads").await,
            0,
            "{step}: no load"
        );
        assert_eq!(
            count(&w, "SELECT COUNT(*) AS n FROM sms_outbox").await,
            0,
            "{step}: no codes"
        );
        assert_eq!(
            count(&w, "SELECT COUNT(*) AS n FROM doses").await,
            doses,
            "{step}: no box doses"
        );
        assert_eq!(
            w.app.store.audit_head().await.unwrap(),
            head,
            "{step}: no audit entry"
        );
        let b = w.app.store.boxes(1).await.unwrap();
        assert!(
            b.iter().all(|b| b.state.as_str() == "in_clinic"),
            "{step}: box untouched"
        );
        assert!(
            !w.app.bench_box("BOX-0007").exists(),
            "{step}: the box itself holds no load (written, then emptied again)"
        );
    }
    // Without a failure the same request loads the box, its codes and its entries at once.
    let (s, r) = w.call(Method::POST, &w.doctor, &path, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(count(&w, "SELECT COUNT(*) AS n FROM box_loads").await, 1);
    assert_eq!(count(&w, "SELECT COUNT(*) AS n FROM sms_outbox").await, 2);
    w.app.cleanup().await;
}

/// What the box station refuses, and what it repairs, through the API (the bench of simulated
/// boxes: the same protocol as the firmware, `box_station.rs`).
#[tokio::test]
async fn the_box_station_refuses_a_box_it_must_not_write() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0051-AC", true).await;
    w.approved(id, 2).await;
    for serial in ["BOX-0001", "BOX-0002"] {
        let (s, _) = w
            .call(
                Method::POST,
                &w.doctor,
                "/api/v1/boxes",
                Some(json!({ "serial": serial })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let load = |serial: &'static str| {
        let w = &w;
        async move {
            w.call(
                Method::POST,
                &w.doctor,
                &format!("/api/v1/clients/{id}/loads"),
                Some(json!({"serial": serial, "days": 2})),
            )
            .await
        }
    };
    let (s, first) = load("BOX-0001").await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let first_load = first["load"]["id"].as_i64().unwrap();
    // BOX-0002 on the cable still holds a load that was never returned (here: BOX-0001's
    // contents): refused at the serial, naming the load; nothing written.
    let held = w.app.bench_box("BOX-0002");
    std::fs::create_dir_all(held.parent().unwrap()).unwrap();
    std::fs::copy(w.app.bench_box("BOX-0001"), &held).unwrap();
    let (s, e) = load("BOX-0002").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(
        (e["error"]["code"].clone(), e["error"]["field"].clone()),
        (json!("station.box_holds_load"), json!("serial"))
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("load {first_load}")),
        "{e}"
    );
    let loads = "SELECT COUNT(*) AS n FROM box_loads";
    assert_eq!(count(&w, loads).await, 1, "nothing written");
    // A return through the station while the box on it does not hold the load (it is still
    // in the bag): refused at the station's place, nothing changes; plugged in, it goes through
    // and the box is emptied.
    std::fs::remove_file(&held).unwrap();
    let own = w.app.bench_box("BOX-0001");
    let away = own.with_extension("away");
    std::fs::rename(&own, &away).unwrap();
    let ret = format!("/api/v1/loads/{first_load}/return/station");
    let (s, e) = w.call(Method::POST, &w.doctor, &ret, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(
        (e["error"]["code"].clone(), e["error"]["field"].clone()),
        (json!("station.not_this_load"), json!("station"))
    );
    let stored = w.app.store.load(first_load).await.unwrap();
    assert_eq!(stored.return_challenge, None, "no challenge drawn");
    assert!(!stored.sealed_secret.is_empty(), "nothing reconciled");
    std::fs::rename(&away, &own).unwrap();
    let (s, r) = w.call(Method::POST, &w.doctor, &ret, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["reconciliation"]["unopened"], json!([0, 1]));
    assert!(!own.exists(), "the box was wiped");
    w.app.cleanup().await;

    // A station whose line does not answer: the load is refused as unreachable; nothing kept.
    let mut config = anxin_server::Config::default();
    config.boxes.station = Some("tcp:127.0.0.1:9".into());
    let w = world_on(TestApp::with_config(&config).await).await;
    let id = w.stable_client("YX-0052-AD", true).await;
    w.approved(id, 2).await;
    w.call(
        Method::POST,
        &w.doctor,
        "/api/v1/boxes",
        Some(json!({"serial": "BOX-0001"})),
    )
    .await;
    let (s, e) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-0001", "days": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "station.unreachable", "{e}");
    assert_eq!(count(&w, "SELECT COUNT(*) AS n FROM box_loads").await, 0);
    w.app.cleanup().await;
}

#[tokio::test]
async fn a_failure_between_the_steps_of_loading_writes_nothing_on_sqlite() {
    a_failed_load_leaves_nothing(TestApp::new().await).await;
}

#[tokio::test]
async fn a_failure_between_the_steps_of_loading_writes_nothing_on_postgres() {
    a_failed_load_leaves_nothing(TestApp::postgres().await).await;
}

async fn window_in_chinese(app: TestApp) {
    let w = world_on(app).await;
    let id = w.stable_client("YX-0002-GP", false).await;
    // A client of another centre, without a guest arrangement here.
    let other = w.app.site("YX02").await;
    w.app
        .user(&other, "doctor2", anxin_domain::Role::Prescriber)
        .await;
    let t2 = w.app.login("doctor2").await;
    let (s, r) = w
        .call(
            Method::POST,
            &t2,
            "/api/v1/clients",
            Some(json!({"uic": "YX-0900-ZZ", "enrolled_on": "2026-01-05"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    // Its record, asked for by id from this centre: the same answer as an id that does not exist.
    let theirs = r["id"].as_i64().unwrap();
    let nobody = theirs + 10_000;
    let (s1, a1) = w
        .call(
            Method::GET,
            &w.doctor,
            &format!("/api/v1/clients/{theirs}"),
            None,
        )
        .await;
    let (s2, a2) = w
        .call(
            Method::GET,
            &w.doctor,
            &format!("/api/v1/clients/{nobody}"),
            None,
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(
        a1.to_string().replace(&theirs.to_string(), "N"),
        a2.to_string().replace(&nobody.to_string(), "N")
    );
    let mut nurse = w.app.browser("nurse", "zh-CN").await;
    let cases = [
        ("NO-SUCH-1", "没有编码为 NO-SUCH-1 的服务对象"),
        // Another centre's client is answered as an unknown UIC: nothing leaks across centres.
        ("YX-0900-ZZ", "没有编码为 YX-0900-ZZ 的服务对象"),
        ("yx_0002", "不是有效的服务对象编码"),
    ];
    for (typed, chinese) in cases {
        let a = nurse.submit("/dispensing", &[("uic", typed)]).await;
        assert!(
            a.text.contains(chinese),
            "{typed}: {}",
            &a.text[..a.text.len().min(4000)]
        );
    }
    // A lower-case UIC is the same client: dosed, and confirmed in Chinese.
    let a = nurse
        .submit("/dispensing", &[("uic", " yx-0002-gp ")])
        .await;
    assert!(
        a.text.contains("class=\"flash ok\""),
        "dosed from a lower-case UIC"
    );
    assert!(a.text.contains("YX-0002-GP"));
    let a = nurse.submit("/dispensing", &[("uic", "yx-0002-gp")]).await;
    assert!(
        a.text.contains("YX-0002-GP 今天已于"),
        "a second dose refused in Chinese"
    );
    // The API says the same by code, in the caller's language.
    let nurse_token = w.app.login("nurse").await;
    let req = |lang: &'static str| {
        axum::http::Request::post("/api/v1/doses")
            .header("authorization", format!("Bearer {nurse_token}"))
            .header("content-type", "application/json")
            .header("accept-language", lang)
            .body(axum::body::Body::from(
                json!({"uic": "NO-SUCH-1"}).to_string(),
            ))
            .unwrap()
    };
    let zh = w.app.send(req("zh-CN")).await;
    assert_eq!(zh.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(zh.json()["error"]["code"], "uic.unknown");
    assert_eq!(zh.json()["error"]["field"], "uic");
    assert_eq!(
        zh.json()["error"]["message"],
        "没有编码为 NO-SUCH-1 的服务对象。"
    );
    let en = w.app.send(req("en")).await;
    assert_eq!(
        en.json()["error"]["message"],
        "No client has the UIC NO-SUCH-1."
    );
    let _ = id;
    w.app.cleanup().await;
}

#[tokio::test]
async fn the_chinese_window_answers_in_chinese_on_sqlite() {
    window_in_chinese(TestApp::new().await).await;
}

#[tokio::test]
async fn the_chinese_window_answers_in_chinese_on_postgres() {
    window_in_chinese(TestApp::postgres().await).await;
}

/// A stable, approved client with `serial` loaded for 2 days from tomorrow (codes at `hour`)
/// and handed out. Returns (client id, load id).
async fn box_out(w: &World, uic: &str, serial: &str, hour: u8) -> (i64, i64) {
    let id = w.stable_client(uic, true).await;
    w.approved(id, 2).await;
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes",
            Some(json!({"serial": serial})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": serial, "days": 2, "code_hour": hour})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let load = l["load"]["id"].as_i64().unwrap();
    let (s, r) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/loads/{load}/hand-out"),
            Some(json!({"phone_confirmed": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{r}");
    (id, load)
}

async fn dose(w: &World, nurse: &str, uic: &str) -> (StatusCode, Value) {
    w.call(
        Method::POST,
        nurse,
        "/api/v1/doses",
        Some(json!({"uic": uic})),
    )
    .await
}

async fn box_and_window_together(app: TestApp) {
    let w = world_on(app).await;
    let (_, withheld) = box_out(&w, "YX-0043-IY", "BOX-0001", 7).await;
    let (_, lost) = box_out(&w, "YX-0044-AA", "BOX-0002", 7).await;
    let (_, sent) = box_out(&w, "YX-0045-BB", "BOX-0003", 7).await;
    let (_, later) = box_out(&w, "YX-0046-CC", "BOX-0004", 10).await;
    let (s, r) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/loads/{withheld}/withhold"),
            Some(json!({"reason": "尿检阳性"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, r) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/loads/{lost}/lost"),
            Some(json!({"reason": "reported lost by the client"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{r}");
    // The next morning, 09:00: BOX-0003's code went out at 07:00 (the gateway reported it).
    w.app.clock.advance(chrono::Duration::days(1));
    let delivered = sqlx::query(
        "UPDATE sms_outbox SET state = 'delivered', updated_at = $1 WHERE idempotency_key = $2",
    )
    .bind((w.app.state.now() - chrono::Duration::hours(2)).timestamp_millis())
    .bind(format!("code:{sent}:0"))
    .execute(w.app.store.pool())
    .await
    .unwrap();
    assert_eq!(delivered.rows_affected(), 1);
    let nurse = w.app.login("nurse").await;
    // Codes stopped on purpose (withheld, box lost) raise no "call the client" alarm.
    let mut home = w.app.browser("nurse", "zh-CN").await;
    let page = home.get("/").await;
    assert!(
        !page.text.contains("id=\"sms-alerts\""),
        "no alarm for stopped codes"
    );

    // Withheld codes and a lost box: the client is dosed at the window, not refused.
    for (uic, load) in [("YX-0043-IY", withheld), ("YX-0044-AA", lost)] {
        let (s, d) = dose(&w, &nurse, uic).await;
        assert_eq!(s, StatusCode::CREATED, "{uic} is dosed at the window: {d}");
        assert_eq!(d["mg"], 80);
        let (s, again) = dose(&w, &nurse, uic).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(again["error"]["code"], "dose.already_given", "{again}");
        let trail = w
            .app
            .store
            .audit_of_record(
                "client",
                &w.app.store.load(load).await.unwrap().client_id.to_string(),
            )
            .await
            .unwrap();
        assert!(
            trail.iter().any(|e| e.action == "box.compartment.replaced"),
            "{uic}: the compartment is marked for the box's reconciliation"
        );
    }
    // The code went out: the dose is in the box, and the window says which and when.
    let (s, e) = dose(&w, &nurse, "YX-0045-BB").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "dose.in_box");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("BOX-0003") && msg.contains("07:00"), "{msg}");
    // The code is still to come (10:00): in the box too; never a window dose beside it.
    let (s, e) = dose(&w, &nurse, "YX-0046-CC").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("10:00"),
        "{e}"
    );
    // An overdue code that never went out: the window doses and stops the code in the same
    // transaction, so the box cannot give a second dose.
    w.app.clock.advance(chrono::Duration::hours(2));
    let nurse = w.app.login("nurse").await;
    // Now it is overdue and never went out: the home page says to call YX-0046-CC, by UIC.
    let mut home = w.app.browser("nurse", "zh-CN").await;
    let page = home.get("/").await;
    assert!(
        page.text.contains("id=\"sms-alerts\""),
        "overdue code raises the alarm"
    );
    assert!(page.text.contains("YX-0046-CC"), "the alarm names the UIC");
    for stopped in ["YX-0043-IY", "YX-0044-AA"] {
        assert!(
            !page.text.contains(stopped),
            "{stopped}: stopped on purpose, no alarm"
        );
    }
    let (s, d) = dose(&w, &nurse, "YX-0046-CC").await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let row = sqlx::query("SELECT state FROM sms_outbox WHERE idempotency_key = $1")
        .bind(format!("code:{later}:0"))
        .fetch_one(w.app.store.pool())
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<String, _>(&row, "state"), "stopped");
    // The Chinese window says where the dose is.
    let mut zh = w.app.browser("nurse", "zh-CN").await;
    let a = zh.submit("/dispensing", &[("uic", "YX-0045-BB")]).await;
    assert!(
        a.text
            .contains("今天的剂量在药盒 BOX-0003 中（密码已于 07:00 发送）"),
        "{}",
        a.text
    );
    w.app.cleanup().await;
}

#[tokio::test]
async fn a_withheld_lost_or_unsent_box_sends_the_client_to_the_window_on_sqlite() {
    box_and_window_together(TestApp::new().await).await;
}

#[tokio::test]
async fn a_withheld_lost_or_unsent_box_sends_the_client_to_the_window_on_postgres() {
    box_and_window_together(TestApp::postgres().await).await;
}

async fn a_failed_loss_report_leaves_nothing(app: TestApp) {
    let w = world_on(app).await;
    let (_, load) = box_out(&w, "YX-0047-DD", "BOX-0005", 7).await;
    let head = w.app.store.audit_head().await.unwrap();
    w.app.state.app.arm_failpoint("report_lost.after_codes");
    let path = format!("/api/v1/loads/{load}/lost");
    let body = json!({"reason": "the client says it was stolen"});
    let (s, r) = w
        .call(Method::POST, &w.doctor, &path, Some(body.clone()))
        .await;
    w.app.state.app.disarm_failpoints();
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{r}");
    assert_eq!(
        w.app.store.audit_head().await.unwrap(),
        head,
        "no audit entry"
    );
    let l = w.app.store.load(load).await.unwrap();
    assert_eq!(l.state.as_str(), "with_client", "the box is not lost");
    assert!(l.withheld_from.is_none(), "no code withheld");
    assert_eq!(
        count(
            &w,
            "SELECT COUNT(*) AS n FROM sms_outbox WHERE state = 'queued'"
        )
        .await,
        2,
        "both codes still queued"
    );
    let (s, r) = w.call(Method::POST, &w.doctor, &path, Some(body)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{r}");
    let l = w.app.store.load(load).await.unwrap();
    assert_eq!(l.state.as_str(), "lost");
    assert_eq!(
        count(
            &w,
            "SELECT COUNT(*) AS n FROM sms_outbox WHERE state = 'queued'"
        )
        .await,
        0
    );
    w.app.cleanup().await;
}

#[tokio::test]
async fn a_failure_while_reporting_a_box_lost_writes_nothing_on_sqlite() {
    a_failed_loss_report_leaves_nothing(TestApp::new().await).await;
}

#[tokio::test]
async fn a_failure_while_reporting_a_box_lost_writes_nothing_on_postgres() {
    a_failed_loss_report_leaves_nothing(TestApp::postgres().await).await;
}

/// The police queue shows each request's identity as one disclosure, all written with the
/// reading in one unit of work: a failure before it ends leaves no entry behind.
async fn the_police_queue_reads_in_one_unit(app: TestApp) {
    let w = world_on(app).await;
    for uic in ["YX-0101-AA", "YX-0102-BB"] {
        let id = w.stable_client(uic, true).await;
        let (s, r) = w
            .call(
                Method::POST,
                &w.doctor,
                &format!("/api/v1/clients/{id}/psb-requests"),
                Some(json!({"days": 2})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
    }
    let views = "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'disclosure.psb_view'";
    let head = w.app.store.audit_head().await.unwrap();
    w.app.state.app.arm_failpoint("police_queue.before_commit");
    let (s, _) = w
        .call(Method::GET, &w.police, "/api/v1/psb/requests", None)
        .await;
    w.app.state.app.disarm_failpoints();
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(w.app.store.audit_head().await.unwrap(), head);
    assert_eq!(
        count(&w, views).await,
        0,
        "no disclosure without the reading"
    );

    let (s, queue) = w
        .call(Method::GET, &w.police, "/api/v1/psb/requests", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(queue.as_array().unwrap().len(), 2);
    assert_eq!(
        count(&w, views).await,
        2,
        "one disclosure per request shown"
    );
    w.app.cleanup().await;
}

#[tokio::test]
async fn the_police_queue_reads_in_one_unit_on_sqlite() {
    the_police_queue_reads_in_one_unit(TestApp::new().await).await;
}

#[tokio::test]
async fn the_police_queue_reads_in_one_unit_on_postgres() {
    the_police_queue_reads_in_one_unit(TestApp::postgres().await).await;
}

/// Ending the treatment ends the box: discharge with a box out is refused until the user
/// confirms (the page warns first, in Chinese); then, in one unit of work, the box's queued
/// codes stop, GPS tracking stops, and the box still has to come back. A move to compulsory
/// isolated treatment does the same.
async fn ending_treatment_ends_the_box(app: TestApp) {
    let w = world_on(app).await;
    let (id, load) = box_out(&w, "YX-0043-IY", "BOX-0001", 7).await;
    let expires = (w.app.state.today() + chrono::Duration::days(365)).to_string();
    let (s, _) = w
        .call(Method::POST, &w.counsellor, &format!("/api/v1/clients/{id}/consents"), Some(json!({"purpose": "box_gps", "recipient": "centre", "scope": "box position against the home zone", "expires_on": expires})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, t) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes/BOX-0001/tracker",
            Some(json!({"imei": "868120145233604"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let zone = json!({"kind": "circle", "lat": 24.35, "lon": 102.54, "radius_m": 100});
    let (s, e) = w
        .call(
            Method::PUT,
            &w.doctor,
            &format!("/api/v1/loads/{load}/home-zone"),
            Some(zone),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    let store = &w.app.store;
    let box_id = store.load(load).await.unwrap().box_id;
    assert!(store.watch(box_id).await.unwrap().is_some(), "tracked");
    let queued = format!(
        "SELECT COUNT(*) AS n FROM sms_outbox WHERE state = 'queued' AND idempotency_key LIKE 'code:{load}:%'"
    );
    assert_eq!(count(&w, &queued).await, 2);

    // The page warns before the discharge; without the confirmation it is refused at the field.
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert!(
        page.text.contains("药盒 BOX-0001 仍在该服务对象处"),
        "the discharge form warns about the box"
    );
    let a = doctor
        .submit(
            &format!("/clients/{id}/discharge"),
            &[("reason", "搬家到外省")],
        )
        .await;
    let shown = error_at(&a.text, "confirm_box_out").expect("refused at the confirmation");
    assert!(shown.contains("BOX-0001"), "{shown}");
    assert!(
        a.text.contains("value=\"搬家到外省\""),
        "the reason is kept"
    );
    let (s, c, f) = api_refusal(
        &w,
        Method::POST,
        &format!("/api/v1/clients/{id}/discharge"),
        json!({"reason": "moved away"}),
    )
    .await;
    assert_eq!(
        (s, c.as_str(), f.as_str()),
        (StatusCode::CONFLICT, "treatment.box_out", "confirm_box_out")
    );
    let discharged =
        format!("SELECT COUNT(*) AS n FROM clients WHERE id = {id} AND discharged_on IS NOT NULL");
    assert_eq!(count(&w, &discharged).await, 0, "nothing written");
    assert_eq!(count(&w, &queued).await, 2);

    // Confirmed: discharged, the codes stop, the box is no longer tracked, and it must come back.
    let a = doctor
        .submit(
            &format!("/clients/{id}/discharge"),
            &[("reason", "搬家到外省"), ("confirm_box_out", "true")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(count(&w, &discharged).await, 1, "discharged");
    assert_eq!(
        count(&w, &queued).await,
        0,
        "no code goes out the next morning"
    );
    let l = store.load(load).await.unwrap();
    assert_eq!(l.state, anxin_domain::boxes::LoadState::Ended);
    assert!(store.watch(box_id).await.unwrap().is_none(), "not tracked");
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert!(
        page.text.contains("治疗已结束，待归还"),
        "the load shows as ended"
    );
    assert!(
        page.text
            .contains(&format!("action=\"/loads/{load}/return/station\"")),
        "the box can still be returned"
    );
    assert!(
        !page
            .text
            .contains(&format!("action=\"/loads/{load}/withhold\"")),
        "nothing left to withhold"
    );

    // A move to compulsory isolated treatment ends a box out in the same way.
    let (other, other_load) = box_out(&w, "YX-0044-AA", "BOX-0002", 7).await;
    let stage = format!("/api/v1/clients/{other}/stage");
    let (s, c, _) = api_refusal(
        &w,
        Method::PUT,
        &stage,
        json!({"stage": "compulsory_isolated"}),
    )
    .await;
    assert_eq!((s, c.as_str()), (StatusCode::CONFLICT, "treatment.box_out"));
    let (s, r) = w
        .call(
            Method::PUT,
            &w.doctor,
            &stage,
            Some(json!({"stage": "compulsory_isolated", "confirm_box_out": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["boxes_ended"], json!(["BOX-0002"]));
    assert_eq!(r["codes_stopped"], 2);
    assert_eq!(
        store.load(other_load).await.unwrap().state,
        anxin_domain::boxes::LoadState::Ended
    );
    w.app.cleanup().await;
}

#[tokio::test]
async fn ending_treatment_ends_the_box_on_sqlite() {
    ending_treatment_ends_the_box(TestApp::new().await).await;
}

#[tokio::test]
async fn ending_treatment_ends_the_box_on_postgres() {
    ending_treatment_ends_the_box(TestApp::postgres().await).await;
}

/// A browser-only centre records the treatment agreement on the record page, and the client
/// becomes eligible for take-home doses; a refused agreement shows at its field in Chinese with
/// what was typed, and the API refuses the same input with the same code.
async fn the_agreement_is_recorded_in_the_browser(app: TestApp) {
    let w = world_on(app).await;
    let id = w.stable_client_with("YX-0301-AB", true, false).await;
    let e = w.eligibility(id).await;
    assert_eq!(e["days"], 0, "no agreement, not eligible: {e}");
    let mut counsellor = w.app.browser("counsellor", "zh-CN").await;
    let page = counsellor.get(&format!("/clients/{id}")).await;
    assert!(page.text.contains("尚未签订治疗协议"));
    assert!(page.text.contains("id=\"agreement-form\""));

    let form = format!("/clients/{id}/agreements");
    let refused = [
        ("method", "美沙酮维持治疗"),
        ("duration_months", "24"),
        ("rules", "每日按时服药"),
        ("signed_by", "guardian"),
        ("guardian_name", ""),
        ("signed_on", ""),
    ];
    let a = counsellor.submit(&form, &refused).await;
    let shown = error_at(&a.text, "guardian_name").expect("refused at guardian_name");
    assert!(shown.contains("监护人姓名"), "{shown}");
    assert!(a.text.contains("value=\"24\""), "the months are kept");
    let (s, r) = w
        .call(
            Method::POST,
            &w.counsellor,
            &format!("/api/v1/clients/{id}/agreements"),
            Some(json!({"method": "m", "duration_months": 24, "rules": "r", "signed_by": "guardian"})),
        )
        .await;
    assert_eq!(
        (s, r["error"]["code"].clone(), r["error"]["field"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("agreement.guardian_required"),
            json!("guardian_name")
        )
    );
    // Rules too long to keep in the browser's cookie: the refusal still shows at its field.
    let long = "按时服药".repeat(250);
    let a = counsellor
        .submit(
            &form,
            &[
                ("method", "美沙酮维持治疗"),
                ("duration_months", "24"),
                ("rules", &long),
                ("signed_by", "guardian"),
            ],
        )
        .await;
    assert!(
        error_at(&a.text, "guardian_name").is_some(),
        "the refusal survives a long form"
    );
    assert!(
        !a.text.contains(&long) && a.text.contains("value=\"24\""),
        "only the value too long for a cookie (4 KiB in browsers) is dropped"
    );
    let a = counsellor
        .submit(
            &form,
            &[
                ("method", "美沙酮维持治疗"),
                ("duration_months", "0"),
                ("rules", "x"),
                ("signed_by", "client"),
            ],
        )
        .await;
    let shown = error_at(&a.text, "duration_months").expect("refused at duration_months");
    assert!(shown.contains("1 至 120 个月"), "{shown}");
    let (_, list) = w
        .call(
            Method::GET,
            &w.counsellor,
            &format!("/api/v1/clients/{id}/agreements"),
            None,
        )
        .await;
    assert_eq!(list, json!([]), "nothing stored");

    let a = counsellor
        .submit(
            &form,
            &[
                ("method", "美沙酮维持治疗"),
                ("duration_months", "24"),
                ("rules", "每日按时服药；按要求尿检"),
                ("signed_by", "guardian"),
                ("guardian_name", "周桂兰"),
                ("signed_on", ""),
            ],
        )
        .await;
    assert!(a.text.contains("已登记第 1 版治疗协议"), "confirmed");
    assert!(a.text.contains("监护人 周桂兰"), "the version is listed");
    assert!(!a.text.contains("尚未签订治疗协议"));
    let e = w.eligibility(id).await;
    assert!(e["days"].as_u64().unwrap() >= 2, "eligible now: {e}");
    w.app.cleanup().await;
}

#[tokio::test]
async fn the_agreement_is_recorded_in_the_browser_on_sqlite() {
    the_agreement_is_recorded_in_the_browser(TestApp::new().await).await;
}

#[tokio::test]
async fn the_agreement_is_recorded_in_the_browser_on_postgres() {
    the_agreement_is_recorded_in_the_browser(TestApp::postgres().await).await;
}

/// The box's page tasks in Chinese: a caller told today's code after matching answers (wrong
/// ones refused at the field, typed text kept), the return in two steps with the challenge, a
/// stale export refused at the field, a box reported lost, and an overdue box on the home page.
async fn the_box_tasks_are_done_in_the_page(app: TestApp) {
    let w = world_on(app).await;
    let (id, load) = box_out(&w, "YX-0045-AB", "BOX-0005", 7).await;
    // A second box, for the overdue alert at the end.
    let (_, late) = box_out(&w, "YX-0046-AC", "BOX-0006", 7).await;
    w.app.clock.advance(chrono::Duration::days(1));
    let mut nurse = w.app.browser("nurse", "zh-CN").await;
    let page = nurse.get(&format!("/clients/{id}")).await;
    assert!(
        page.text.contains("告知来电者今天的密码"),
        "the nurse may tell the code"
    );
    assert!(
        !page
            .text
            .contains(&format!("action=\"/loads/{load}/return/station\"")),
        "only take-home staff take boxes back"
    );
    let reveal = format!("/loads/{load}/reveal");
    let a = nurse
        .submit(&reveal, &[("name", "Li Wei"), ("id_last4", "0000")])
        .await;
    assert!(
        a.text.contains("来电者的回答与档案不符"),
        "refused in Chinese"
    );
    assert!(a.text.contains("data-field=\"id_last4\""), "at the field");
    assert!(a.text.contains("value=\"Li Wei\""), "the answers are kept");
    let a = nurse
        .submit(&reveal, &[("name", "Li Wei"), ("id_last4", "123X")])
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[axum::http::header::CACHE_CONTROL], "no-store");
    assert!(a.text.contains("第 1 格的开启密码"), "{}", a.text);
    assert!(a.text.contains("class=\"revealed-code\""));

    // The return goes through the box station. A box that no longer holds the load (emptied
    // elsewhere) is refused at the station's place in the form, in Chinese, and nothing changes.
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let held = w.app.store.load(load).await.unwrap();
    std::fs::remove_file(w.app.bench_box("BOX-0005")).unwrap();
    let a = doctor
        .submit(&format!("/loads/{load}/return/station"), &[])
        .await;
    assert!(a.text.contains("data-field=\"station\""), "at the field");
    assert!(
        a.text
            .contains(&format!("工作站上的药盒（BOX-0005）里没有装药 {load}")),
        "{}",
        a.text
    );
    assert_eq!(w.app.store.load(load).await.unwrap().state, held.state);
    assert_eq!(w.app.store.load(load).await.unwrap().return_challenge, None);

    // Reported lost in the page: the box is lost and the window doses today.
    let a = doctor
        .submit(&format!("/loads/{load}/lost"), &[("reason", "")])
        .await;
    assert!(
        a.text.contains("data-field=\"reason\""),
        "a reason is needed"
    );
    let a = doctor
        .submit(
            &format!("/loads/{load}/lost"),
            &[("reason", "服务对象说药盒被偷")],
        )
        .await;
    assert!(a.text.contains("遗失"), "the load shows as lost");
    assert_eq!(
        w.app.store.load(load).await.unwrap().state,
        anxin_domain::boxes::LoadState::Lost
    );
    let nurse_token = w.app.login("nurse").await;
    let (s, r) = dose(&w, &nurse_token, "YX-0045-AB").await;
    assert_eq!(s, StatusCode::CREATED, "dosed at the window: {r}");

    // The second box, not back two days after its due day: the home page names it by UIC.
    let mut home = w.app.browser("doctor", "zh-CN").await;
    assert!(
        !home.get("/").await.text.contains("id=\"overdue-boxes\""),
        "not yet due"
    );
    w.app.clock.advance(chrono::Duration::days(4));
    let mut home = w.app.browser("doctor", "zh-CN").await;
    let a = home.get("/").await;
    assert!(a.text.contains("id=\"overdue-boxes\""), "{}", a.text);
    assert!(a.text.contains("1 个药盒逾期未归还"));
    assert!(a.text.contains("YX-0046-AC") && a.text.contains("BOX-0006"));
    assert!(a.text.contains(&format!("data-load=\"{late}\"")));
    assert!(!a.text.contains("YX-0045-AB"), "a lost box is not awaited");
    w.app.cleanup().await;
}

#[tokio::test]
async fn the_box_tasks_are_done_in_the_page_on_sqlite() {
    the_box_tasks_are_done_in_the_page(TestApp::new().await).await;
}

#[tokio::test]
async fn the_box_tasks_are_done_in_the_page_on_postgres() {
    the_box_tasks_are_done_in_the_page(TestApp::postgres().await).await;
}

/// Every page form carries a one-time token: a second submission of the same form (a double
/// click, Back and send again) is answered with the first answer and writes nothing more; a
/// form whose first answer was a page (loading a box) is not run twice either.
async fn a_form_submits_once(app: TestApp) {
    let w = world_on(app).await;
    let id = w.stable_client("YX-0047-AD", true).await;
    w.approved(id, 2).await;
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let page = doctor.get(&format!("/clients/{id}")).await;
    let tokens: std::collections::BTreeSet<&str> = page
        .text
        .match_indices("name=\"once\" value=\"")
        .map(|(i, m)| &page.text[i + m.len()..i + m.len() + 32])
        .collect();
    let forms = page.text.matches("<form method=\"post\"").count();
    assert!(forms > 5);
    assert_eq!(tokens.len(), forms, "one fresh token per form");
    assert!(
        page.text.contains("src=\"/static/app.js\""),
        "the button disables on click"
    );

    let urine = format!("/clients/{id}/urine-tests");
    let fields = [
        ("outcome", "tested"),
        ("observed", "true"),
        ("once", "urine-1"),
    ];
    let count = |sql: String| {
        let store = w.app.store.clone();
        async move {
            let n: (i64,) = sqlx::query_as(&sql).fetch_one(store.pool()).await.unwrap();
            n.0
        }
    };
    let tests = format!("SELECT COUNT(*) FROM urine_tests WHERE client_id = {id}");
    let before = count(tests.clone()).await;
    let first = doctor.submit(&urine, &fields).await;
    let again = doctor.submit(&urine, &fields).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(again.status, StatusCode::OK, "answered like the first");
    assert_eq!(
        count(tests.clone()).await,
        before + 1,
        "one sample, one test"
    );
    // A new token is a new submission.
    doctor
        .submit(&urine, &[("outcome", "tested"), ("once", "urine-2")])
        .await;
    assert_eq!(count(tests).await, before + 2);

    // Loading a box answers a page (what the box station did); sent again, it loads nothing more.
    w.call(
        Method::POST,
        &w.doctor,
        "/api/v1/boxes",
        Some(json!({"serial": "BOX-0008"})),
    )
    .await;
    let load = [
        ("serial", "BOX-0008"),
        ("days", "2"),
        ("start", ""),
        ("code_hour", "7"),
        ("once", "load-1"),
    ];
    let first = doctor.submit(&format!("/clients/{id}/load"), &load).await;
    assert!(first.text.contains("id=\"box-written\""), "{}", first.text);
    let written: i64 =
        sqlx::query_scalar(&format!("SELECT id FROM box_loads WHERE client_id = {id}"))
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    let l = w.app.store.load(written).await.unwrap();
    let secret = hex::encode(w.app.vault.open_box_secret(l.id, &l.sealed_secret).unwrap());
    assert!(
        !first.text.to_lowercase().contains(&secret),
        "the secret is not on the page"
    );
    assert!(first.text.contains("已读回药盒状态"), "{}", first.text);
    let again = doctor.submit(&format!("/clients/{id}/load"), &load).await;
    assert!(again.text.contains("此表单已提交过"), "{}", again.text);
    assert!(
        !again.text.contains("id=\"box-written\""),
        "the box is not written twice"
    );
    let loads = format!("SELECT COUNT(*) FROM box_loads WHERE client_id = {id}");
    assert_eq!(count(loads).await, 1);
    w.app.cleanup().await;
}

#[tokio::test]
async fn a_form_submits_once_on_sqlite() {
    a_form_submits_once(TestApp::new().await).await;
}

#[tokio::test]
async fn a_form_submits_once_on_postgres() {
    a_form_submits_once(TestApp::postgres().await).await;
}

/// A shared PC: no page with client data is kept in any cache, the pages forbid framing,
/// sniffing and foreign scripts; a wrong method is a 405 naming the methods, not a 403.
#[tokio::test]
async fn pages_are_not_cached_and_wrong_methods_are_405() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0048-AE", true).await;
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let h = &page.headers;
    assert_eq!(h[axum::http::header::CACHE_CONTROL], "no-store");
    assert_eq!(h[axum::http::header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[axum::http::header::X_FRAME_OPTIONS], "DENY");
    let csp = h[axum::http::header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        !page.text.contains("onclick="),
        "no inline handlers under the policy"
    );
    let css = doctor.get("/static/app.css").await;
    assert!(
        css.headers.get(axum::http::header::CACHE_CONTROL).is_none(),
        "assets may be cached"
    );

    let denied_before: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'access.denied'")
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    let a = w
        .app
        .send(
            axum::http::Request::delete("/api/v1/doses")
                .header("authorization", format!("Bearer {}", w.doctor))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{}", a.text);
    assert_eq!(a.headers[axum::http::header::ALLOW], "POST");
    let a = w
        .app
        .send(
            axum::http::Request::put(format!("/clients/{id}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.headers[axum::http::header::ALLOW], "GET, HEAD");
    let denied_after: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'access.denied'")
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    assert_eq!(
        denied_before, denied_after,
        "a wrong method is no denied access"
    );
    w.app.cleanup().await;
}

/// The window finds a client however the UIC is typed: lower case without dashes doses at
/// once; a number or a name asks who it is (with the name on record) before any dose.
async fn the_window_finds_a_client_by_number_or_name(app: TestApp) {
    let w = world_on(app).await;
    w.stable_client("YX-0051-AG", true).await;
    w.stable_client("YX-0052-AH", true).await;
    let mut nurse = w.app.browser("nurse", "zh-CN").await;
    let a = nurse.submit("/dispensing", &[("uic", "yx0051ag")]).await;
    assert!(
        a.text.contains("YX-0051-AG：已服"),
        "dosed without dashes: {}",
        a.text
    );
    let doses = format!(
        "SELECT COUNT(*) FROM doses WHERE day = '{}'",
        w.app.state.today()
    );
    let n = |sql: String| {
        let store = w.app.store.clone();
        async move {
            let r: (i64,) = sqlx::query_as(&sql).fetch_one(store.pool()).await.unwrap();
            r.0
        }
    };
    assert_eq!(n(doses.clone()).await, 1);
    // Digits shared by two UICs: both shown, with names; nothing given yet.
    let a = nurse.submit("/dispensing", &[("uic", "005")]).await;
    assert!(a.text.contains("窗口前是哪位服务对象"), "{}", a.text);
    assert!(
        a.text.contains("data-uic=\"YX-0051-AG\"") && a.text.contains("data-uic=\"YX-0052-AH\"")
    );
    assert!(
        a.text.contains("Li Wei"),
        "the name on record helps to tell them apart"
    );
    assert_eq!(n(doses.clone()).await, 1, "no dose from a number alone");
    // A name: the client is named, then dosed with one more click.
    let a = nurse.submit("/dispensing", &[("uic", " li  wei ")]).await;
    assert!(a.text.contains("id=\"window-candidates\""), "{}", a.text);
    let a = nurse.submit("/dispensing", &[("uic", "YX-0052-AH")]).await;
    assert!(a.text.contains("YX-0052-AH：已服"), "{}", a.text);
    assert_eq!(n(doses).await, 2);
    // Nobody: the refusal as before, in Chinese.
    let a = nurse.submit("/dispensing", &[("uic", "9999")]).await;
    assert!(!a.text.contains("window-candidates"));
    assert!(a.text.contains("flash error"), "{}", a.text);
    let searched: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'client.search'")
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    assert!(searched.0 >= 3, "window searches are audited");
    w.app.cleanup().await;
}

#[tokio::test]
async fn the_window_finds_a_client_by_number_or_name_on_sqlite() {
    the_window_finds_a_client_by_number_or_name(TestApp::new().await).await;
}

#[tokio::test]
async fn the_window_finds_a_client_by_number_or_name_on_postgres() {
    the_window_finds_a_client_by_number_or_name(TestApp::postgres().await).await;
}

/// A session that ends mid-work: the login brings the nurse back to the window, and a form
/// sent after the end says that nothing was recorded.
#[tokio::test]
async fn after_a_session_ends_the_login_goes_back_to_the_page() {
    use axum::http::{header, Request};
    let w = world_on(TestApp::new().await).await;
    let cookies_of = |a: &anxin_server::testing::Answer| -> Vec<String> {
        a.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect()
    };
    // An ended session at the window: to the login page, remembering the window.
    let a = w
        .app
        .send(
            Request::get("/dispensing")
                .header(header::COOKIE, "anxin_session=ended")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert!(a.status.is_redirection());
    assert_eq!(a.headers[header::LOCATION], "/login");
    let kept = cookies_of(&a);
    let next = kept
        .iter()
        .find(|c| c.starts_with("anxin_next="))
        .unwrap()
        .clone();
    assert_eq!(next, "anxin_next=%2Fdispensing");
    assert!(
        kept.iter().any(|c| c.starts_with("anxin_flash=")),
        "with a message"
    );
    // A dose sent after the end: nothing recorded, and the message says so.
    let a = w
        .app
        .send(
            Request::post("/dispensing")
                .header(header::COOKIE, "anxin_session=ended")
                .header(header::REFERER, "http://127.0.0.1/dispensing")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from("uic=YX-0001-AA"))
                .unwrap(),
        )
        .await;
    assert_eq!(a.headers[header::LOCATION], "/login");
    let flash = cookies_of(&a)
        .into_iter()
        .find(|c| c.starts_with("anxin_flash="))
        .unwrap();
    let login = w
        .app
        .send(
            Request::get("/login")
                .header(header::COOKIE, flash)
                .header(header::ACCEPT_LANGUAGE, "zh-CN")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert!(login.text.contains("刚才的操作没有记录"), "{}", login.text);
    // Logging in goes back to the window.
    let csrf_cookie = cookies_of(&login)
        .into_iter()
        .find(|c| c.starts_with("anxin_login_csrf="))
        .unwrap();
    let csrf = csrf_cookie
        .trim_start_matches("anxin_login_csrf=")
        .to_owned();
    let body = format!(
        "csrf={csrf}&username=nurse&password={}",
        anxin_server::testing::PASSWORD
    );
    let a = w
        .app
        .send(
            Request::post("/login")
                .header(header::COOKIE, format!("{csrf_cookie}; {next}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(body))
                .unwrap(),
        )
        .await;
    assert!(a.status.is_redirection(), "{}", a.text);
    assert_eq!(
        a.headers[header::LOCATION],
        "/dispensing",
        "back at the window"
    );
    // A remembered page elsewhere (`/\\evil.example` reads as `//evil.example` to browsers) is
    // never followed.
    let login = w
        .app
        .send(
            Request::get("/login")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let csrf_cookie = cookies_of(&login)
        .into_iter()
        .find(|c| c.starts_with("anxin_login_csrf="))
        .unwrap();
    let csrf = csrf_cookie
        .trim_start_matches("anxin_login_csrf=")
        .to_owned();
    let body = format!(
        "csrf={csrf}&username=nurse&password={}",
        anxin_server::testing::PASSWORD
    );
    let a = w
        .app
        .send(
            Request::post("/login")
                .header(
                    header::COOKIE,
                    format!("{csrf_cookie}; anxin_next=%2F%5Cevil.example"),
                )
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(a.headers[header::LOCATION], "/", "not to another site");
    w.app.cleanup().await;
}

/// Least privilege inside the centre: a peer educator reaches a client by UIC and sees the
/// services, never the dose orders, urine results, disclosures or who opened the record, in
/// the page or through the API.
#[tokio::test]
async fn a_peer_educator_sees_no_clinical_record() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0053-AJ", true).await;
    w.approved(id, 2).await;
    let site = w.app.store.list_sites().await.unwrap()[0].clone();
    w.app.user(&site, "peer", Role::PeerEducator).await;
    let mut peer = w.app.browser("peer", "zh-CN").await;
    let page = peer.get(&format!("/clients/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("YX-0053-AJ"));
    for hidden in [
        "id=\"orders\"",
        "id=\"urine\"",
        "id=\"adherence\"",
        "id=\"takehome\"",
        "id=\"ledger\"",
        "id=\"boxes\"",
        "id=\"access-trail\"",
        "id=\"identity\"",
        "id=\"consents\"",
        "80 mg",
    ] {
        assert!(!page.text.contains(hidden), "a peer educator sees {hidden}");
    }
    // A page the role may not open: said in Chinese (and English), not only in English.
    let denied = peer.get("/stock").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(
        denied.text.contains("您的角色无权进行此操作"),
        "{}",
        denied.text
    );
    // The doctor still sees them (the check can fail).
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let full = doctor.get(&format!("/clients/{id}")).await;
    assert!(full.text.contains("id=\"orders\"") && full.text.contains("id=\"ledger\""));
    assert!(
        !full.text.contains("id=\"access-trail\""),
        "who opened a record: managers only"
    );
    let token = w.app.login("peer").await;
    for path in [
        "orders",
        "urine-tests",
        "adherence",
        "doses",
        "disclosures",
        "eligibility",
        "takehome",
        "loads",
        "consents",
        "agreements",
    ] {
        let a = w
            .app
            .call(
                Method::GET,
                &format!("/api/v1/clients/{id}/{path}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
    }
    let a = w
        .app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "the UIC and stage: {}", a.text);
    w.app.cleanup().await;
}

/// The audit trail in the page: a manager filters by client (UIC, never an internal id), by
/// action and dates, reads the actions in Chinese and pages back 50 at a time; a bad date is
/// refused at its field; managers and administrators read administrative reasons (a record's
/// purpose) but never clinical text (a review note), which stays in the clinical record.
#[tokio::test]
async fn the_audit_trail_is_searched_in_the_page() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0054-AK", true).await;
    w.stable_client("YX-0055-AL", true).await;
    let site = w.app.store.list_sites().await.unwrap()[0].clone();
    w.app.user(&site, "boss", Role::Manager).await;
    w.app.user(&site, "itadmin", Role::Admin).await;
    // Enough reads of one record to fill more than one page.
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    for _ in 0..60 {
        doctor.get(&format!("/clients/{id}")).await;
    }
    let mut boss = w.app.browser("boss", "zh-CN").await;
    let a = boss.get("/audit?uic=yx-0054-ak&action=client.read").await;
    assert_eq!(a.status, StatusCode::OK);
    let rows = a.text.matches("data-action=\"client.read\"").count();
    assert_eq!(rows, 50, "a full page");
    assert!(
        !a.text.contains("data-action=\"client.identity.read\""),
        "only that action"
    );
    assert!(a.text.contains("查阅服务对象档案"), "the action in Chinese");
    assert!(a.text.contains("<td>YX-0054-AK</td>"), "the client by UIC");
    assert!(!a.text.contains("YX-0055-AL"), "only that client");
    assert!(!a.text.contains(&format!("client {id}<")), "no internal id");
    assert!(
        a.text.contains("record page"),
        "a manager reads why a record was opened"
    );
    let older = a.text.split("id=\"audit-older\"").next().unwrap();
    let href = older
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let b = boss.get(&href).await;
    let more = b.text.matches("data-action=\"client.read\"").count();
    assert!(more >= 10, "the older page: {more}");
    // The search that named a client is itself in the trail.
    let searched: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'audit.search'")
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    assert_eq!(searched.0, 2);
    // A bad date and a reversed range, at their fields, the typed values kept.
    let a = boss.get("/audit?from=2026-13-40").await;
    assert!(a.text.contains("data-field=\"from\""), "{}", a.text);
    assert!(a.text.contains("value=\"2026-13-40\""));
    let a = boss.get("/audit?from=2026-11-20&to=2026-11-01").await;
    assert!(a.text.contains("data-field=\"to\"") && a.text.contains("结束日期"));
    let a = boss.get("/audit?uic=YX-9999-ZZ").await;
    assert!(a.text.contains("data-field=\"uic\""));
    // Dates: nothing before the clients existed.
    let a = boss.get("/audit?to=2020-01-01").await;
    assert!(a.text.contains("没有符合条件的记录"));
    // A review note is clinical: the entry is listed, its text is not, for either role.
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/reviews"),
            Some(json!({"note": "服药后嗜睡，减量观察"})),
        )
        .await;
    assert!(s.is_success(), "{s}");
    let mut it = w.app.browser("itadmin", "zh-CN").await;
    for page in [&mut boss, &mut it] {
        let a = page.get("/audit?action=review.record").await;
        assert!(
            a.text.contains("data-action=\"review.record\""),
            "the entry is listed"
        );
        assert!(a.text.contains("见服务对象档案"));
        assert!(
            !a.text.contains("减量观察"),
            "no clinical text in the audit view"
        );
        let a = page.get("/audit?action=client.read").await;
        assert!(a.text.contains("record page"), "the purpose of a read");
    }
    let token = w.app.login("itadmin").await;
    let a = w
        .app
        .call(Method::GET, "/api/v1/audit?limit=1000", Some(&token), None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(!a.text.contains("减量观察"), "nor in the API");
    assert!(a.text.contains("record page"));
    w.app.cleanup().await;
}

/// The day list filters with counts (to dose, dosed, withheld, in a box, urine due), and the
/// urine mark has its legend.
#[tokio::test]
async fn the_day_list_filters_with_counts_and_a_legend() {
    let w = world_on(TestApp::new().await).await;
    w.stable_client("YX-0056-AM", true).await;
    w.stable_client("YX-0057-AN", true).await;
    let mut nurse = w.app.browser("nurse", "zh-CN").await;
    nurse.submit("/dispensing", &[("uic", "YX-0056-AM")]).await;
    let all = nurse.get("/dispensing").await;
    assert!(all.text.contains("id=\"day-legend\"") && all.text.contains("今日需做尿检"));
    assert!(
        all.text.contains("全部 (2)")
            && all.text.contains("已服药 (1)")
            && all.text.contains("待服药 (1)"),
        "{}",
        all.text
    );
    let done = nurse.get("/dispensing?show=done").await;
    assert!(done.text.contains("data-uic=\"YX-0056-AM\""));
    assert!(
        !done.text.contains("data-uic=\"YX-0057-AN\""),
        "only the dosed"
    );
    let give = nurse.get("/dispensing?show=give").await;
    assert!(
        give.text.contains("data-uic=\"YX-0057-AN\"")
            && !give.text.contains("data-uic=\"YX-0056-AM\"")
    );
    let odd = nurse.get("/dispensing?show=nonsense").await;
    assert_eq!(
        odd.text.matches("<tr class=\"status-").count(),
        2,
        "an unknown filter shows all"
    );
    w.app.cleanup().await;
}

/// A manager changes a role and resets a password in the page; the temporary password is
/// shown once, works once, and its owner must choose their own before anything else.
#[tokio::test]
async fn a_manager_resets_a_password_and_changes_a_role() {
    let w = world_on(TestApp::new().await).await;
    let site = w.app.store.list_sites().await.unwrap()[0].clone();
    w.app.user(&site, "boss", Role::Manager).await;
    let nurse = w.app.store.user_auth("nurse").await.unwrap().unwrap().user;
    let counsellor = w
        .app
        .store
        .user_auth("counsellor")
        .await
        .unwrap()
        .unwrap()
        .user;
    let mut boss = w.app.browser("boss", "zh-CN").await;
    // A new colleague with their real name.
    let a = boss
        .submit(
            "/staff",
            &[
                ("username", "wang.fang"),
                ("full_name", "王芳"),
                ("role", "dispenser"),
                ("language", "zh-CN"),
                ("password", "window-nurse-since-2019"),
            ],
        )
        .await;
    assert!(a.text.contains("<td>王芳</td>"), "{}", a.text);
    let page = boss.get("/staff").await;
    assert!(page
        .text
        .contains(&format!("action=\"/staff/{}/role\"", nurse.id)));
    let a = boss
        .submit(
            &format!("/staff/{}/role", counsellor.id),
            &[("role", "peer_educator")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let now = w.app.store.user(counsellor.id).await.unwrap();
    assert_eq!(now.role, Role::PeerEducator);
    // A manager cannot make anyone a manager.
    let a = boss
        .submit(&format!("/staff/{}/role", nurse.id), &[("role", "manager")])
        .await;
    assert!(a.text.contains("不能授予"), "{}", a.text);
    assert_eq!(
        w.app.store.user(nurse.id).await.unwrap().role,
        Role::Dispenser
    );

    let a = boss
        .submit(&format!("/staff/{}/password-reset", nurse.id), &[])
        .await;
    assert_eq!(a.headers[axum::http::header::CACHE_CONTROL], "no-store");
    let temporary = a
        .text
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    assert_eq!(temporary.len(), 19, "{temporary}");
    // The old password no longer works; the temporary one leads only to the password page.
    let old = w
        .app
        .login_from("10.0.0.9:4000", "nurse", anxin_server::testing::PASSWORD)
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let token = {
        let a = w.app.login_from("10.0.0.9:4000", "nurse", &temporary).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.json()["token"].as_str().unwrap().to_owned()
    };
    let a = w
        .app
        .call(Method::GET, "/api/v1/dispensing/today", Some(&token), None)
        .await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "nothing before the password is changed"
    );
    let mut n = w.app.browser_with("nurse", &temporary, "zh-CN").await;
    let a = n.get("/dispensing").await;
    assert!(a.status.is_redirection());
    assert_eq!(a.headers[axum::http::header::LOCATION], "/password");
    let a = n.get("/password").await;
    assert!(a.text.contains("您的密码已被重置"), "{}", a.text);
    // Refusals at the field: wrong current password, a mismatch, a weak one.
    let a = n
        .submit(
            "/password",
            &[
                ("current", "nope"),
                ("new", "a-new-long-passphrase-9"),
                ("confirm", "a-new-long-passphrase-9"),
            ],
        )
        .await;
    assert!(a.text.contains("data-field=\"current\""), "{}", a.text);
    let a = n
        .submit(
            "/password",
            &[
                ("current", &temporary),
                ("new", "a-new-long-passphrase-9"),
                ("confirm", "other"),
            ],
        )
        .await;
    assert!(a.text.contains("data-field=\"confirm\""));
    let a = n
        .submit(
            "/password",
            &[
                ("current", &temporary),
                ("new", "aaaaaaaaaaaa"),
                ("confirm", "aaaaaaaaaaaa"),
            ],
        )
        .await;
    assert!(a.text.contains("data-field=\"new\""));
    let a = n
        .submit(
            "/password",
            &[
                ("current", &temporary),
                ("new", "a-new-long-passphrase-9"),
                ("confirm", "a-new-long-passphrase-9"),
            ],
        )
        .await;
    assert!(a.text.contains("密码已更改"), "{}", a.text);
    let a = n.get("/dispensing").await;
    assert_eq!(a.status, StatusCode::OK, "the window again");
    let trail: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('staff.role', 'staff.password.reset', 'staff.password.change')",
    )
    .fetch_one(w.app.store.pool())
    .await
    .unwrap();
    assert_eq!(trail.0, 3);
    let leaked: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE reason LIKE $1")
        .bind(format!("%{temporary}%"))
        .fetch_one(w.app.store.pool())
        .await
        .unwrap();
    assert_eq!(
        leaked.0, 0,
        "the temporary password is nowhere in the trail"
    );
    w.app.cleanup().await;
}

/// Sex and year of birth in the page (the CDC's breakdowns count them): an implausible year is
/// refused at its field with what was typed kept; a good one is saved and shown.
#[tokio::test]
async fn sex_and_year_of_birth_are_recorded_in_the_page() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0058-AP", true).await;
    let mut counsellor = w.app.browser("counsellor", "zh-CN").await;
    let path = format!("/clients/{id}/demographics");
    let a = counsellor
        .submit(&path, &[("sex", "female"), ("birth_year", "1890")])
        .await;
    assert!(a.text.contains("data-field=\"birth_year\""), "{}", a.text);
    assert!(a.text.contains("1890 不是合理的出生年份"));
    assert!(a.text.contains("value=\"1890\""), "kept");
    assert!(
        a.text.contains("<option value=\"female\" selected>"),
        "kept"
    );
    let (sex, year) = w.app.store.demographics(id).await.unwrap();
    assert_eq!((sex.as_str(), year), ("unknown", None), "nothing saved");
    let a = counsellor
        .submit(&path, &[("sex", "female"), ("birth_year", "1991")])
        .await;
    assert!(a.text.contains("性别与出生年份已保存"));
    assert!(a.text.contains("value=\"1991\""));
    let (sex, year) = w.app.store.demographics(id).await.unwrap();
    assert_eq!((sex.as_str(), year), ("female", Some(1991)));
    w.app.cleanup().await;
}

/// The client list finds by part of a UIC and, for roles that read names, by name.
#[tokio::test]
async fn the_client_list_finds_by_uic_or_name() {
    let w = world_on(TestApp::new().await).await;
    w.stable_client("YX-0059-AQ", true).await;
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let a = doctor.get("/clients?q=0059").await;
    assert!(a.text.contains(">YX-0059-AQ</a>"), "{}", a.text);
    let a = doctor.get("/clients?q=li%20wei").await;
    assert!(a.text.contains(">YX-0059-AQ</a>"), "by name: {}", a.text);
    assert!(
        a.text.contains(">搜索</button>"),
        "the button says what it does"
    );
    let a = doctor.get("/clients?q=Wang%20Fang").await;
    assert!(!a.text.contains(">YX-0059-AQ</a>"));
    w.app.cleanup().await;
}

/// A backup from the page: written to the data directory's backups, readable by the server's
/// account only, listed, audited; the page says the key file must be kept too.
#[tokio::test]
async fn a_backup_is_made_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let config = anxin_server::Config {
        data_dir: dir.path().to_path_buf(),
        ..anxin_server::Config::default()
    };
    let w = world_on(TestApp::with_config(&config).await).await;
    let site = w.app.store.list_sites().await.unwrap()[0].clone();
    w.app.user(&site, "itadmin", Role::Admin).await;
    let mut admin = w.app.browser("itadmin", "zh-CN").await;
    let page = admin.get("/backup").await;
    assert!(page.text.contains("anxin.key"), "{}", page.text);
    let a = admin.submit("/backup", &[]).await;
    assert!(a.text.contains("已写入备份 anxin-"), "{}", a.text);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(a.text.contains(&format!("<td>{name}</td>")), "listed");
    let made: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'backup.create'")
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    assert_eq!(made.0, 1);
    // Not for a manager of a centre.
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    assert_eq!(doctor.get("/backup").await.status, StatusCode::FORBIDDEN);
    w.app.cleanup().await;
}

/// The course of treatment in the page: a stage change (refused at its field for a date to
/// come), discharge, readmission, and a transfer to another centre.
#[tokio::test]
async fn stage_readmission_and_transfer_are_done_in_the_page() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0060-AR", true).await;
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let page = format!("/clients/{id}");
    let a = doctor
        .submit(
            &format!("{page}/stage"),
            &[("stage", "community_treatment"), ("since", "2030-01-01")],
        )
        .await;
    assert!(a.text.contains("data-field=\"since\""), "{}", a.text);
    assert!(
        a.text
            .contains("<option value=\"community_treatment\" selected>"),
        "kept"
    );
    let a = doctor
        .submit(
            &format!("{page}/stage"),
            &[("stage", "community_treatment"), ("since", "")],
        )
        .await;
    assert!(a.text.contains("社区戒毒 · "), "the new stage: {}", a.text);
    let a = doctor
        .submit(&format!("{page}/discharge"), &[("reason", "搬家")])
        .await;
    assert!(
        a.text.contains("id=\"readmit-form\""),
        "a discharged client can be readmitted"
    );
    let a = doctor.submit(&format!("{page}/readmit"), &[]).await;
    assert!(
        a.text.contains("id=\"discharge-form\""),
        "in treatment again"
    );
    // A transfer to an unknown centre is refused at its field; to a real one, the record leaves.
    let a = doctor
        .submit(
            &format!("{page}/transfer"),
            &[("site", "NOPE"), ("from", "")],
        )
        .await;
    assert!(a.text.contains("data-field=\"site\""), "{}", a.text);
    assert!(a.text.contains("value=\"NOPE\""));
    let other = w
        .app
        .store
        .create_site(
            &anxin_storage::Actor::cli(),
            "YX02",
            "Centre YX02",
            w.app.state.now(),
        )
        .await
        .unwrap();
    let a = doctor
        .submit(
            &format!("{page}/transfer"),
            &[("site", &other.code), ("from", "")],
        )
        .await;
    assert!(a.text.contains("服务对象已转介到 YX02"), "{}", a.text);
    assert_eq!(
        doctor.get(&page).await.status,
        StatusCode::NOT_FOUND,
        "no longer ours"
    );
    w.app.cleanup().await;
}

/// The services page: a counsellor records a needle exchange for an enrolled client typed in
/// lower case, a peer educator a naloxone kit for an outreach contact; refusals (a UIC nobody
/// has, too many needles back without a reason, kits that are not a number, a date to come)
/// come back at their field in Chinese with what was typed; the lists show UICs, never ids.
async fn services_are_recorded_in_the_page(w: World) {
    let id = w.stable_client("YX-0061-SV", true).await;
    let site = w.app.store.list_sites().await.unwrap()[0].clone();
    w.app.user(&site, "peer", Role::PeerEducator).await;
    let mut counsellor = w.app.browser("counsellor", "zh-CN").await;
    let page = counsellor.get("/services").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("id=\"nav-services\""),
        "in the navigation"
    );
    assert!(page.text.contains("针具交换"));

    // Refused at the field, typed values kept, nothing written.
    let a = counsellor
        .submit(
            "/services/needle_exchange",
            &[("uic", "yx-0099-zz"), ("given", "10"), ("returned", "2")],
        )
        .await;
    assert!(a.text.contains("data-field=\"uic\""), "{}", a.text);
    assert!(
        a.text.contains("没有编码为 YX-0099-ZZ 的服务对象"),
        "{}",
        a.text
    );
    assert!(a.text.contains("value=\"yx-0099-zz\"") && a.text.contains("value=\"10\""));
    let a = counsellor
        .submit(
            "/services/needle_exchange",
            &[("uic", "yx-0061-sv"), ("given", "10"), ("returned", "300")],
        )
        .await;
    assert!(a.text.contains("data-field=\"returned\""), "{}", a.text);
    assert!(
        a.text.contains("回收 300 支超过一人能携带的数量"),
        "{}",
        a.text
    );
    let a = counsellor
        .submit(
            "/services/needle_exchange",
            &[("uic", "yx-0061-sv"), ("given", "10"), ("on", "2026-12-30")],
        )
        .await;
    assert!(a.text.contains("data-field=\"on\""), "{}", a.text);
    assert!(a.text.contains("日期不能晚于今天"), "{}", a.text);
    let a = counsellor
        .submit(
            "/services/naloxone",
            &[("uic", "YX-0061-SV"), ("kits", "abc")],
        )
        .await;
    assert!(a.text.contains("data-field=\"kits\""), "{}", a.text);
    assert!(a.text.contains("“abc”不是有效的数字"), "{}", a.text);
    let encounters = format!("/api/v1/clients/{id}/encounters");
    let before = w
        .app
        .call(Method::GET, &encounters, Some(&w.counsellor), None)
        .await
        .json();
    assert_eq!(before["encounters"], json!([]), "nothing written");

    // Recorded: the enrolled client by a lower-case UIC.
    let a = counsellor
        .submit(
            "/services/needle_exchange",
            &[("uic", "yx-0061-sv"), ("given", "20"), ("returned", "18")],
        )
        .await;
    assert!(a.text.contains("已为 YX-0061-SV 登记服务"), "{}", a.text);
    assert!(a.text.contains("发放 20 · 回收 18"), "listed: {}", a.text);
    let after = w
        .app
        .call(Method::GET, &encounters, Some(&w.counsellor), None)
        .await
        .json();
    assert_eq!(after["encounters"][0]["service"]["kind"], "needle_exchange");
    assert_eq!(after["encounters"][0]["service"]["given"], 20);

    // A peer educator: an outreach contact known by the code they give, counted by sex and age.
    let mut peer = w.app.browser("peer", "zh-CN").await;
    let a = peer
        .submit(
            "/services/naloxone",
            &[
                ("uic", "km-7001-ox"),
                ("outreach", "true"),
                ("sex", "female"),
                ("birth_year", "1990"),
                ("kits", "2"),
            ],
        )
        .await;
    assert!(a.text.contains("已为 KM-7001-OX 登记服务"), "{}", a.text);
    assert!(a.text.contains("KM-7001-OX") && a.text.contains("（外展）"));
    let a = peer
        .submit("/services/arv_referral", &[("uic", "YX-0061-SV")])
        .await;
    assert!(a.text.contains("已为 YX-0061-SV 登记服务"), "{}", a.text);
    // The referrals page names the client by UIC, never by internal id.
    let r = peer.get("/referrals").await;
    assert!(r.text.contains("YX-0061-SV"), "{}", r.text);
    assert!(!r.text.contains(&format!("服务对象 {id}")));
    // A police officer may not see the page.
    let mut police = w.app.browser("police", "zh-CN").await;
    let denied = police.get("/services").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    w.app.cleanup().await;
}

#[tokio::test]
async fn services_are_recorded_in_the_page_sqlite() {
    services_are_recorded_in_the_page(world_on(TestApp::new().await).await).await;
}

#[tokio::test]
async fn services_are_recorded_in_the_page_postgres() {
    services_are_recorded_in_the_page(world_on(TestApp::postgres().await).await).await;
}

/// Guest dosing from the client page: an unknown centre, a start in the past and a stay past
/// sixty days are refused at their fields in Chinese, typed values kept; then the client is
/// dosed at the other centre's window within the arrangement.
#[tokio::test]
async fn guest_dosing_is_arranged_in_the_page() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0062-GD", true).await;
    let other = w.app.site("KM01").await;
    w.app.user(&other, "kmnurse", Role::Dispenser).await;
    let mut counsellor = w.app.browser("counsellor", "zh-CN").await;
    let path = format!("/clients/{id}/guest-dosing");
    let page = counsellor.get(&format!("/clients/{id}")).await;
    assert!(page.text.contains("id=\"guest-form\""), "{}", page.text);
    let a = counsellor
        .submit(
            &path,
            &[("site", "XX99"), ("from", ""), ("to", "2026-11-30")],
        )
        .await;
    assert!(a.text.contains("没有代码为“XX99”的门诊"), "{}", a.text);
    assert!(a.text.contains("value=\"XX99\"") && a.text.contains("value=\"2026-11-30\""));
    let a = counsellor
        .submit(
            &path,
            &[
                ("site", "km01"),
                ("from", "2026-11-01"),
                ("to", "2026-11-30"),
            ],
        )
        .await;
    assert!(a.text.contains("data-field=\"from\""), "{}", a.text);
    assert!(a.text.contains("开始日期不能早于今天"), "{}", a.text);
    let a = counsellor
        .submit(
            &path,
            &[("site", "KM01"), ("from", ""), ("to", "2027-03-01")],
        )
        .await;
    assert!(a.text.contains("data-field=\"to\""), "{}", a.text);
    assert!(a.text.contains("最长 60 天"), "{}", a.text);
    let a = counsellor
        .submit(
            &path,
            &[("site", "km01"), ("from", ""), ("to", "2026-11-25")],
        )
        .await;
    assert!(
        a.text.contains("已安排在 KM01 临时服药至 2026-11-25"),
        "{}",
        a.text
    );
    // The other centre's nurse doses the guest at the window.
    let mut km = w.app.browser("kmnurse", "zh-CN").await;
    let a = km.submit("/dispensing", &[("uic", "YX-0062-GD")]).await;
    assert_eq!(a.status, StatusCode::OK);
    let doses = w
        .app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}/doses"),
            Some(&w.doctor),
            None,
        )
        .await
        .json();
    let guest: Vec<&Value> = doses
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["guest"] == json!(true))
        .collect();
    assert_eq!(guest.len(), 1, "dosed as a guest: {doses}");
    w.app.cleanup().await;
}

/// A manager renames an account from the staff page; a name over 100 characters is refused in
/// Chinese and changes nothing; the change is in the audit trail.
#[tokio::test]
async fn a_manager_renames_an_account() {
    let w = world_on(TestApp::new().await).await;
    let site = w.app.store.list_sites().await.unwrap()[0].clone();
    w.app.user(&site, "boss", Role::Manager).await;
    let nurse = w.app.store.user_auth("nurse").await.unwrap().unwrap().user;
    let mut boss = w.app.browser("boss", "zh-CN").await;
    let path = format!("/staff/{}/name", nurse.id);
    let long = "长".repeat(101);
    let a = boss.submit(&path, &[("full_name", &long)]).await;
    assert!(a.text.contains("100"), "refused with the limit: {}", a.text);
    let unchanged = w.app.store.user(nurse.id).await.unwrap();
    assert_eq!(unchanged.full_name, "");
    let a = boss.submit(&path, &[("full_name", " 李护士 ")]).await;
    assert!(a.text.contains("姓名已更新：李护士"), "{}", a.text);
    assert!(a.text.contains("value=\"李护士\""), "shown in the list");
    assert_eq!(
        w.app.store.user(nurse.id).await.unwrap().full_name,
        "李护士"
    );
    let trail = w.app.store.recent_audit(site.id, 5).await.unwrap();
    assert!(trail.iter().any(|e| e.action == "staff.rename"));
    // A nurse may not rename anyone.
    let mut nurse_b = w.app.browser("nurse", "zh-CN").await;
    let a = nurse_b.submit(&path, &[("full_name", "x")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    w.app.cleanup().await;
}

/// DHIS2 in the page: an administrator adds mapping lines (an empty data element and the same
/// cell twice refused at their fields in Chinese), the CDC downloads a whole month (a month not
/// over yet refused at its field, in Chinese) as a file, and that download is a disclosure.
#[tokio::test]
async fn the_dhis2_mapping_is_set_and_a_month_downloaded_in_the_page() {
    let w = world_on(TestApp::new().await).await;
    let site = w.app.store.list_sites().await.unwrap()[0].clone();
    w.app.user(&site, "itadmin", Role::Admin).await;
    w.app.user(&site, "cdc.li", Role::CdcAnalyst).await;
    let mut admin = w.app.browser("itadmin", "zh-CN").await;
    let page = admin.get("/dhis2-mapping").await;
    assert!(page.text.contains("id=\"nav-dhis2\""), "{}", page.text);
    assert!(page.text.contains("尚未设置对照"));
    let line = [
        ("indicator", "mmt_clients"),
        ("sex", "total"),
        ("age_band", "total"),
        ("data_element", ""),
        ("category_option_combo", "HllvX50cXC0"),
    ];
    let a = admin.submit("/dhis2-mapping", &line).await;
    assert!(a.text.contains("data-field=\"data_element\""), "{}", a.text);
    assert!(a.text.contains("value=\"HllvX50cXC0\""), "kept");
    let mut line = line;
    line[3] = ("data_element", "MMT_CLIENTS");
    let a = admin.submit("/dhis2-mapping", &line).await;
    assert!(a.text.contains("已添加对照"), "{}", a.text);
    assert!(a.text.contains("<code>MMT_CLIENTS</code>"));
    let a = admin.submit("/dhis2-mapping", &line).await;
    assert!(a.text.contains("这一格已有对照"), "{}", a.text);
    // The CDC: the month so far is refused at its field; October is downloaded as a file.
    let mut cdc = w.app.browser("cdc.li", "zh-CN").await;
    let page = cdc.get("/indicators/dhis2").await;
    assert!(
        page.text.contains("value=\"2026-10\""),
        "the last whole month by default"
    );
    assert!(
        page.text.contains("<code>MMT_CLIENTS</code>"),
        "the mapping in force"
    );
    let a = cdc
        .get("/indicators/dhis2/download?month=2026-11&site=all")
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.text.contains("data-field=\"month\""), "{}", a.text);
    assert!(a.text.contains("不是已经结束的月份"), "{}", a.text);
    let a = cdc
        .get("/indicators/dhis2/download?month=2026-10&site=all")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let disposition = a.headers[axum::http::header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap();
    assert!(
        disposition.contains("dhis2-all-2026-10.json"),
        "{disposition}"
    );
    let set: Value = serde_json::from_str(&a.text).unwrap();
    assert!(set["dataValues"].is_array(), "{set}");
    let exports: Vec<_> = w
        .app
        .store
        .audit_of_record("indicators", "all")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "disclosure.cdc_export" && e.actor == "cdc.li")
        .collect();
    assert_eq!(exports.len(), 1, "the download is recorded as a disclosure");
    assert!(
        exports[0].reason.starts_with("dhis2 export"),
        "{:?}",
        exports[0]
    );
    w.app.cleanup().await;
}

/// The intake wizard in Chinese: step 1 writes the identity, sex, year of birth and the legal
/// stage with its order's term at once, or nothing, refusing at the field with what was typed
/// kept; steps 2 and 3 are the agreement and the consents, after which only the history is
/// missing for take-home; the window finds the new client by phone.
async fn intake_walks_a_new_client_to_the_papers(app: TestApp) {
    let w = world_on(app).await;
    let mut counsellor = w.app.browser("counsellor", "zh-CN").await;
    let home = counsellor.get("/clients").await;
    assert!(
        home.text.contains("href=\"/intake\""),
        "the wizard is linked"
    );
    let page = counsellor.get("/intake").await;
    assert!(page.text.contains("id=\"intake-form\"") && page.text.contains("1 身份与治疗阶段"));
    let mut fields = vec![
        ("uic", "yx-0950-zq"),
        ("name", "周强磊"),
        ("national_id", "53040219880101123X"),
        ("phone", "138 0013 8000"),
        ("sex", "male"),
        ("birth_year", "1988"),
        ("address", ""),
        ("enrolled_on", "2026-11-20"),
        ("stage", "community_treatment"),
        ("order_start", "2026-01-10"),
        ("order_end", "2030-01-10"),
    ];
    let a = counsellor.submit("/intake", &fields).await;
    let shown = error_at(&a.text, "order_end").expect("refused at the order's end");
    assert!(
        shown.contains("最长 3 年") && shown.contains("2029-01-10"),
        "{shown}"
    );
    assert!(
        a.text.contains("value=\"yx-0950-zq\"") && a.text.contains("value=\"周强磊\""),
        "what was typed is kept"
    );
    let (_, none) = w
        .call(Method::GET, &w.counsellor, "/api/v1/clients?q=0950", None)
        .await;
    assert_eq!(none, json!([]), "nothing half-written");
    // The same refusal from the API, by code and field.
    let (s, e) = w
        .call(
            Method::POST,
            &w.counsellor,
            "/api/v1/intake",
            Some(json!({"uic": "YX-0950-ZQ", "name": "周强磊", "stage": "voluntary", "order_end": "2027-01-01"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["field"].as_str()),
        (Some("stage.order_not_applicable"), Some("order_end")),
        "{e}"
    );

    fields[10] = ("order_end", "");
    let a = counsellor.submit("/intake", &fields).await;
    assert!(a.text.contains("已为 YX-0950-ZQ 建档"), "{}", a.text);
    assert!(a.text.contains("id=\"agreement-form\"") && a.text.contains("2 治疗协议"));
    let (_, found) = w
        .call(Method::GET, &w.counsellor, "/api/v1/clients?q=0950", None)
        .await;
    let id = found[0]["id"].as_i64().expect("enrolled");
    let (_, c) = w
        .call(
            Method::GET,
            &w.counsellor,
            &format!("/api/v1/clients/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (
            &c["stage"],
            &c["order_start"],
            &c["order_end"],
            &c["enrolled_on"]
        ),
        (
            &json!("community_treatment"),
            &json!("2026-01-10"),
            &json!("2029-01-10"),
            &json!("2026-11-20")
        ),
        "the law's three years from the order's start: {c}"
    );
    // The same UIC again: refused at the field, in Chinese.
    let again = counsellor.submit("/intake", &fields).await;
    let shown = error_at(&again.text, "uic").expect("refused at the UIC");
    assert!(shown.contains("已被其他服务对象使用"), "{shown}");

    // Step 2: the agreement comes back into the wizard, then step 3.
    let a = counsellor
        .submit(
            &format!("/clients/{id}/agreements"),
            &[
                ("then", "intake"),
                ("method", "美沙酮维持治疗"),
                ("duration_months", "24"),
                ("rules", "每日按时服药；按要求尿检"),
                ("signed_by", "client"),
                ("guardian_name", ""),
                ("signed_on", ""),
            ],
        )
        .await;
    assert!(a.text.contains("已登记第 1 版治疗协议"), "{}", a.text);
    assert!(a.text.contains("id=\"consent-form\"") && a.text.contains("3 知情同意"));
    let consent = format!("/clients/{id}/consents");
    let today = w.app.state.today().to_string();
    let a = counsellor
        .submit(
            &consent,
            &[
                ("then", "intake"),
                ("kind", "police"),
                ("expires_on", &today),
            ],
        )
        .await;
    let shown = error_at(&a.text, "expires_on").expect("refused at the expiry");
    assert!(shown.contains("须晚于签署日期"), "{shown}");
    assert!(a.text.contains("3 知情同意"), "still in the wizard");
    for kind in ["police", "cdc"] {
        let a = counsellor
            .submit(
                &consent,
                &[
                    ("then", "intake"),
                    ("kind", kind),
                    ("expires_on", "2027-11-22"),
                ],
            )
            .await;
        assert!(a.text.contains("已记录同意"), "{}", a.text);
    }
    let papers = counsellor
        .get(&format!("/clients/{id}/intake/consents"))
        .await;
    assert!(
        papers.text.contains("带药公安审核") && papers.text.contains("向疾控提供统计数据"),
        "both consents listed"
    );
    // Only the history is missing now.
    let e = w.eligibility(id).await;
    let passed = |id: &str| {
        e["criteria"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["id"] == id))
            .map(|c| c["passed"].clone())
    };
    assert_eq!(passed("agreement_signed"), Some(json!(true)), "{e}");
    assert_eq!(passed("police_consent"), Some(json!(true)), "{e}");
    assert_eq!(passed("days_in_treatment"), Some(json!(false)), "{e}");
    // The record shows the order's term; the stage form checks its dates too.
    let record = counsellor.get(&format!("/clients/{id}")).await;
    assert!(
        record.text.contains("决定书期限 2026-01-10 至 2029-01-10"),
        "{}",
        record.text
    );
    let a = counsellor
        .submit(
            &format!("/clients/{id}/stage"),
            &[
                ("stage", "voluntary"),
                ("since", ""),
                ("order_start", "2026-11-01"),
                ("order_end", ""),
            ],
        )
        .await;
    let shown = error_at(&a.text, "order_start").expect("refused at the order's start");
    assert!(shown.contains("只有社区戒毒和社区康复"), "{shown}");
    // The window finds the new client by phone, in any spelling.
    let mut nurse = w.app.browser("nurse", "zh-CN").await;
    let a = nurse
        .submit("/dispensing", &[("uic", "+86 138-0013-8000")])
        .await;
    assert!(
        a.text.contains("window-candidates")
            && a.text.contains("YX-0950-ZQ")
            && a.text.contains("周强磊"),
        "{}",
        a.text
    );
    w.app.cleanup().await;
}

#[tokio::test]
async fn intake_walks_a_new_client_to_the_papers_on_sqlite() {
    intake_walks_a_new_client_to_the_papers(TestApp::new().await).await;
}

#[tokio::test]
async fn intake_walks_a_new_client_to_the_papers_on_postgres() {
    intake_walks_a_new_client_to_the_papers(TestApp::postgres().await).await;
}

/// A megabyte typed into a note is refused before anything is written: in the API at the field
/// with the limit, in the page with a message (and the page's fields carry the limit, so a
/// browser stops typing there); a JSONP body is not JSON.
#[tokio::test]
async fn a_megabyte_note_is_refused_with_its_limit_and_nothing_is_written() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0061-AQ", true).await;
    let reviews = format!("/api/v1/clients/{id}/reviews");
    let megabyte = "量".repeat(350_000);
    let (s, e) = w
        .call(
            Method::POST,
            &w.doctor,
            &reviews,
            Some(json!({"note": megabyte})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["field"].as_str()),
        (Some("text.too_long"), Some("note"))
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("2000"),
        "{e}"
    );
    // Nested fields are named by their path.
    let (s, e) = w
        .call(
            Method::POST,
            &w.counsellor,
            "/api/v1/encounters",
            Some(json!({"uic": "YX-0061-AQ", "on": "2026-11-20",
                "service": {"kind": "vocational_training", "course": "a".repeat(2001)}})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("service.course")),
        "{e}"
    );
    // `application/jsonp` is not JSON.
    let req = axum::http::Request::post(&reviews)
        .header(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {}", w.doctor),
        )
        .header(axum::http::header::CONTENT_TYPE, "application/jsonp")
        .body(axum::body::Body::from(json!({"note": "ok"}).to_string()))
        .unwrap();
    assert_eq!(w.app.send(req).await.status, StatusCode::BAD_REQUEST);

    // The page: the field has the limit; a form that bypasses it is sent back, nothing saved.
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert!(
        page.text.contains("maxlength=\"2000\" name=\"note\""),
        "the note field's limit"
    );
    let a = doctor
        .submit(
            &format!("/clients/{id}/reviews"),
            &[("note", &"a".repeat(1_000_000))],
        )
        .await;
    assert!(
        a.text.contains("超过 2000 个字：未保存任何内容"),
        "{}",
        a.text
    );
    let written = w
        .app
        .store
        .audit_of_record("client", &id.to_string())
        .await
        .unwrap();
    assert!(
        written.iter().all(|e| e.action != "review.record"),
        "no review was recorded"
    );
    // A review note has a lower limit of its own, named when it is passed; within it, it goes.
    let (_, e) = w
        .call(
            Method::POST,
            &w.doctor,
            &reviews,
            Some(json!({"note": "量".repeat(1001)})),
        )
        .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("1000"),
        "{e}"
    );
    let (s, e) = w
        .call(
            Method::POST,
            &w.doctor,
            &reviews,
            Some(json!({"note": "量".repeat(1000)})),
        )
        .await;
    assert!(s.is_success(), "{e}");
    w.app.cleanup().await;
}
