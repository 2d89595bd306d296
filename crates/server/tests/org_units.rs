//! Organisation units through the router, on SQLite and PostgreSQL: the administrator builds a
//! province → city → district tree and places centres; a city CDC account compares the city's
//! three centres (key figures suppressed, completeness and timeliness on a hand-made October)
//! and downloads the city's DHIS2 month with one org unit per unit and centre; a unit or centre
//! outside its scope and a code that does not exist get the same refusal, audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anxin_domain::Role;
use anxin_server::testing::TestApp;
use anxin_storage::clinic::{HistoricDose, NewDose};
use anxin_storage::{Actor, Site};
use axum::http::{Method, StatusCode};
use chrono::{NaiveDate, TimeZone, Utc};
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
        serde_json::from_str(&a.text).unwrap_or(Value::String(a.text.clone()))
    };
    (a.status, v)
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
}

/// `n` clients at `site` enrolled in 2025, each dosed on `days` of October 2026, recorded at
/// `recorded` (or on the day, 08:00 UTC).
async fn clients_dosed(
    app: &TestApp,
    site: &Site,
    doctor: &str,
    n: usize,
    days: &[u32],
    recorded: Option<chrono::DateTime<Utc>>,
) {
    let u = app.user(site, doctor, Role::Prescriber).await;
    let actor = Actor {
        user_id: Some(u.id),
        name: u.username,
        site_id: Some(site.id),
    };
    let now = app.state.now();
    let mut history = vec![];
    for i in 0..n {
        let c = app
            .store
            .create_client(
                &actor,
                &format!("{}-{i:03}", site.code),
                NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
                now,
            )
            .await
            .unwrap();
        for d in days {
            history.push(HistoricDose {
                dose: NewDose {
                    client_id: c.id,
                    day: day(*d),
                    portion: 0,
                    mg: 60,
                    site_id: site.id,
                    guest: false,
                    rule: "normal".into(),
                },
                given_at: recorded.unwrap_or_else(|| {
                    Utc.from_utc_datetime(&day(*d).and_hms_opt(8, 0, 0).unwrap())
                }),
            });
        }
    }
    app.store
        .import_history(&actor, site.id, &history, &[], now)
        .await
        .unwrap();
}

/// Yunnan (YN) holds Yuxi city (YXS: districts HTQ with YX01 and YX02, JCQ with YX03) and
/// Kunming city (KMS with KM01). Answers the admin's token.
async fn city(app: &TestApp) -> String {
    let yx01 = app.site("YX01").await;
    let yx02 = app.site("YX02").await;
    let yx03 = app.site("YX03").await;
    let km01 = app.site("KM01").await;
    app.user(&yx01, "admin", Role::Admin).await;
    app.user(&yx01, "boss", Role::Manager).await;
    app.user(&yx02, "cdc.city", Role::CdcAnalyst).await;
    app.user(&yx02, "cdc.all", Role::CdcAnalyst).await;
    app.user(&yx02, "police.ht", Role::PsbOfficer).await;
    let admin = app.login("admin").await;
    for (code, level, parent, dhis2) in [
        ("YN", "province", None, "OU-YN"),
        ("YXS", "city", Some("YN"), "OU-YXS"),
        ("HTQ", "district", Some("YXS"), "OU-HTQ"),
        ("JCQ", "district", Some("YXS"), "OU-JCQ"),
        ("KMS", "city", Some("YN"), "OU-KMS"),
    ] {
        let (s, v) = call(
            app,
            &admin,
            Method::POST,
            "/api/v1/org-units",
            Some(
                json!({"code": code, "name": format!("unit {code}"), "level": level,
                        "parent": parent, "dhis2_code": dhis2}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    for (site, unit) in [
        ("YX01", "HTQ"),
        ("YX02", "HTQ"),
        ("YX03", "JCQ"),
        ("KM01", "KMS"),
    ] {
        let (s, v) = call(
            app,
            &admin,
            Method::PUT,
            "/api/v1/org-units/place",
            Some(json!({"site": site, "unit": unit, "dhis2_code": format!("OU-{site}")})),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
    for (user, unit) in [("cdc.city", "YXS"), ("police.ht", "HTQ")] {
        let (s, v) = call(
            app,
            &admin,
            Method::PUT,
            "/api/v1/org-units/scope",
            Some(json!({"username": user, "unit": unit})),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
    // October by hand. YX01: 6 clients dosed on the 1st to the 12th and the 19th to the 24th,
    // on the day; closed from the 25th to the 31st (7 days): 18 of 24 open days, complete at
    // 75 %, on time; no gap reaches the 8 missed days of a drop-out, so all six are in MMT on
    // the 31st.
    let all: Vec<u32> = (1..=31).collect();
    let yx01_days: Vec<u32> = (1..=12).chain(19..=24).collect();
    clients_dosed(app, &yx01, "doc1", 6, &yx01_days, None).await;
    for d in 25..=31 {
        sqlx::query("INSERT INTO closures (site_id, day, note, added_at) VALUES ($1, $2, $3, $4)")
            .bind(yx01.id)
            .bind(day(d).to_string())
            .bind("holiday")
            .bind(0_i64)
            .execute(app.store.pool())
            .await
            .unwrap();
    }
    // YX02: 7 clients every day, all entered on 10 November (after the 5th): late.
    let late = Utc.with_ymd_and_hms(2026, 11, 10, 2, 0, 0).unwrap();
    clients_dosed(app, &yx02, "doc2", 7, &all, Some(late)).await;
    // YX03: 5 clients every day; KM01: 8 clients every day.
    clients_dosed(app, &yx03, "doc3", 5, &all, None).await;
    clients_dosed(app, &km01, "doc4", 8, &all, None).await;
    admin
}

async fn city_cdc_compares_its_centres(app: TestApp) {
    let _admin = city(&app).await;
    let cdc = app.login("cdc.city").await;
    let (s, v) = call(
        &app,
        &cdc,
        Method::GET,
        "/api/v1/indicators/compare?month=2026-10",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["unit"], "YXS", "the account's unit by default");
    assert_eq!(v["suppressed"], true);
    let sites: Vec<&str> = v["centres"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["site"].as_str().unwrap())
        .collect();
    assert_eq!(sites, vec!["YX01", "YX02", "YX03"], "not KM01: {v}");
    let row = |code: &str| {
        v["centres"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["site"] == code)
            .unwrap()
            .clone()
    };
    let yx01 = row("YX01");
    assert_eq!(
        (yx01["dose_days"].as_i64(), yx01["days_open"].as_i64()),
        (Some(18), Some(24))
    );
    assert_eq!(yx01["completeness"], 75.0);
    assert_eq!(yx01["timely"], true);
    let yx02 = row("YX02");
    assert_eq!(yx02["completeness"], 100.0);
    assert_eq!(yx02["timely"], false, "entered on 10 November");
    assert_eq!(yx02["late_doses"], 7 * 31);
    assert_eq!(v["timely_by"], "2026-11-05");
    // The key figures go through the report's cell-key release: clients in MMT, truly 6, 7 and
    // 5, each shown within 3 of that or hidden when the noise takes it below 5.
    assert_eq!(v["indicators"][0], "mmt_clients");
    for (site, truth) in [("YX01", 6.0), ("YX02", 7.0), ("YX03", 5.0)] {
        let shown = &row(site)["values"][0];
        assert!(
            shown.is_null()
                || shown
                    .as_f64()
                    .is_some_and(|x| x >= 5.0 && (x - truth).abs() <= 3.0),
            "{site}: {shown}"
        );
    }

    // A district below the city: its two centres. The same through the indicators.
    let (s, v) = call(
        &app,
        &cdc,
        Method::GET,
        "/api/v1/indicators/compare?month=2026-10&unit=HTQ",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["centres"].as_array().unwrap().len(), 2);
    let (s, v) = call(
        &app,
        &cdc,
        Method::GET,
        "/api/v1/indicators?from=2026-10-01&to=2026-10-31&unit=YXS",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["site"], "YXS");
    let mmt = v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "mmt_clients")
        .unwrap()
        .clone();
    // The city's three centres (18), not Kunming's 8 as well (26), give or take the noise.
    let city = mmt["value"].as_f64().unwrap();
    assert!((city - 18.0).abs() <= 3.0, "{city}");

    // Outside the scope, and codes that do not exist: one answer, nothing disclosed.
    let mut answers = vec![];
    for q in ["unit=KMS", "unit=NOPE", "unit=YN", "site=KM01", "site=ZZ99"] {
        let (s, v) = call(
            &app,
            &cdc,
            Method::GET,
            &format!("/api/v1/indicators/compare?month=2026-10&{q}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{q}: {v}");
        assert_eq!(v["error"]["code"], "scope.outside", "{q}: {v}");
        let (s2, v2) = call(
            &app,
            &cdc,
            Method::GET,
            &format!("/api/v1/indicators?from=2026-10-01&to=2026-10-31&{q}"),
            None,
        )
        .await;
        assert_eq!(
            (s2, &v2["error"]["code"]),
            (StatusCode::FORBIDDEN, &json!("scope.outside")),
            "{q}"
        );
        let (s3, _) = call(
            &app,
            &cdc,
            Method::GET,
            &format!("/api/v1/indicators/trend?{q}"),
            None,
        )
        .await;
        assert_eq!(s3, StatusCode::FORBIDDEN, "{q}");
        let mut v = v;
        v["error"].as_object_mut().unwrap().remove("field");
        answers.push(v);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "one answer: {answers:?}"
    );
    let denied: Vec<_> = app
        .store
        .audit_of_record("indicators", "KMS")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "indicators.scope.denied" && e.actor == "cdc.city")
        .collect();
    assert_eq!(
        denied.len(),
        3,
        "the comparison, the report and the trend, refused and recorded"
    );

    // An unscoped CDC account sees every centre.
    let all = app.login("cdc.all").await;
    let (s, v) = call(
        &app,
        &all,
        Method::GET,
        "/api/v1/indicators/compare?month=2026-10",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["unit"], "all");
    assert_eq!(v["centres"].as_array().unwrap().len(), 4);

    // The page, in Chinese: the three centres; a unit outside the scope at its field, typed
    // value kept.
    let mut b = app.browser("cdc.city", "zh-CN").await;
    let page = b.get("/indicators/compare?month=2026-10").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for code in [
        "data-site=\"YX01\"",
        "data-site=\"YX02\"",
        "data-site=\"YX03\"",
    ] {
        assert!(page.text.contains(code), "{code}");
    }
    assert!(!page.text.contains("KM01"));
    assert!(
        page.text.contains("完整性") && page.text.contains("75.0%"),
        "{}",
        page.text
    );
    let page = b.get("/indicators/compare?month=2026-10&unit=KMS").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.text.contains("data-field=\"unit\""), "{}", page.text);
    assert!(page.text.contains("超出您的权限范围"), "{}", page.text);
    assert!(page.text.contains("value=\"KMS\""), "typed value kept");
    assert!(!page.text.contains("data-site="), "nothing disclosed");
    // The indicators page answers the same way: at the unit field, the code kept, and the
    // figures shown are the account's own city's.
    let page = b.get("/indicators?period=2026-10&unit=KMS").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.text.contains("data-field=\"unit\""), "{}", page.text);
    assert!(page.text.contains("超出您的权限范围"), "{}", page.text);
    assert!(page.text.contains("value=\"KMS\""), "typed value kept");
    assert!(page.text.contains("YXS") && !page.text.contains("KM01"));
    // A period that is not a reporting period, at its field in the page's language.
    let page = b.get("/indicators?period=2026-10-15").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.text.contains("data-field=\"period\""), "{}", page.text);
    assert!(page.text.contains("不是统计报告期"), "{}", page.text);
    app.cleanup().await;
}

#[tokio::test]
async fn a_city_cdc_compares_the_citys_centres_and_nothing_outside() {
    city_cdc_compares_its_centres(TestApp::new().await).await;
}

#[tokio::test]
async fn a_city_cdc_compares_the_citys_centres_on_postgres() {
    city_cdc_compares_its_centres(TestApp::postgres().await).await;
}

async fn dhis2_month_per_unit(app: TestApp) {
    let admin = city(&app).await;
    let (s, v) = call(
        &app,
        &admin,
        Method::PUT,
        "/api/v1/indicators/dhis2-mapping",
        Some(
            json!({"entries": [{"indicator": "mmt_clients", "sex": "total", "age_band": "total",
            "data_element": "DE_MMT", "category_option_combo": "COC"}]}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let cdc = app.login("cdc.city").await;
    let (s, v) = call(
        &app,
        &cdc,
        Method::GET,
        "/api/v1/indicators/export.dhis2.json?from=2026-10-01&to=2026-10-31&unit=YXS",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut units: Vec<(String, String)> = v["dataValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["period"], "202610");
            (
                d["orgUnit"].as_str().unwrap().to_owned(),
                d["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    units.sort();
    // Each unit's and centre's clients in MMT (truly 13, 5, 6, 7, 5 and 18) leave through the
    // cell keys: within 3 of the truth, or left out when hidden; never Kunming.
    let truth = [
        ("OU-HTQ", 13),
        ("OU-JCQ", 5),
        ("OU-YX01", 6),
        ("OU-YX02", 7),
        ("OU-YX03", 5),
        ("OU-YXS", 18),
    ];
    for (unit, value) in &units {
        let (_, want) = truth
            .iter()
            .find(|(u, _)| u == unit)
            .unwrap_or_else(|| panic!("{unit} is not the city's"));
        let got: i64 = value.parse().unwrap();
        assert!(got >= 5 && (got - want).abs() <= 3, "{unit}: {got}");
    }
    for always in ["OU-HTQ", "OU-YXS"] {
        assert!(
            units.iter().any(|(u, _)| u == always),
            "{always}: {units:?}"
        );
    }
    // A quarter is not a month: refused at the field.
    let (s, v) = call(
        &app,
        &cdc,
        Method::GET,
        "/api/v1/indicators/export.dhis2.json?from=2026-07-01&to=2026-09-30&unit=YXS",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("period.not_month"), Some("month"))
    );
    // Kunming is outside: refused, like a unit that does not exist.
    let (s, v) = call(
        &app,
        &cdc,
        Method::GET,
        "/api/v1/indicators/export.dhis2.json?from=2026-10-01&to=2026-10-31&unit=KMS",
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("scope.outside"))
    );
    // The page's download: a file named after the city.
    let mut b = app.browser("cdc.city", "en").await;
    let a = b
        .get("/indicators/dhis2/download?month=2026-10&unit=YXS")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let disposition = a.headers[axum::http::header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap();
    assert!(
        disposition.contains("dhis2-YXS-2026-10.json"),
        "{disposition}"
    );
    let set: Value = serde_json::from_str(&a.text).unwrap();
    assert_eq!(set["dataValues"].as_array().unwrap().len(), 6);
    let a = b
        .get("/indicators/dhis2/download?month=2026-10&unit=KMS")
        .await;
    assert!(
        a.text.contains("data-field=\"unit\"") && a.text.contains("outside your scope"),
        "{}",
        a.text
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_dhis2_month_of_a_city_has_an_org_unit_per_unit_and_centre() {
    dhis2_month_per_unit(TestApp::new().await).await;
}

#[tokio::test]
async fn the_dhis2_month_of_a_city_on_postgres() {
    dhis2_month_per_unit(TestApp::postgres().await).await;
}

#[tokio::test]
async fn the_administrator_builds_the_tree_with_refusals_at_the_field() {
    let app = TestApp::new().await;
    let admin = city(&app).await;
    for (body, code, field) in [
        (
            json!({"code": "XD", "name": "x", "level": "district", "parent": "YN"}),
            "org_unit.parent_wrong",
            "parent",
        ),
        (
            json!({"code": "x y", "name": "x", "level": "city"}),
            "org_unit.code_invalid",
            "code",
        ),
        (
            json!({"code": "YXS", "name": "again", "level": "city", "parent": "YN"}),
            "org_unit.code_taken",
            "code",
        ),
        (
            json!({"code": "QQ", "name": "x", "level": "county"}),
            "choice.unknown",
            "level",
        ),
        (
            json!({"code": "QQ", "name": "x", "level": "city", "parent": "NOPE"}),
            "org_unit.unknown",
            "parent",
        ),
    ] {
        let (s, v) = call(&app, &admin, Method::POST, "/api/v1/org-units", Some(body)).await;
        assert!(s.is_client_error(), "{v}");
        assert_eq!(
            (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (Some(code), Some(field)),
            "{v}"
        );
    }
    let (_, v) = call(
        &app,
        &admin,
        Method::PUT,
        "/api/v1/org-units/place",
        Some(json!({"site": "YX01", "unit": "YN"})),
    )
    .await;
    assert_eq!(v["error"]["code"], "org_unit.centre_level");
    let (_, v) = call(
        &app,
        &admin,
        Method::PUT,
        "/api/v1/org-units/scope",
        Some(json!({"username": "boss", "unit": "YXS"})),
    )
    .await;
    assert_eq!(v["error"]["code"], "org_unit.scope_inside_role");
    // Only the administrator.
    let cdc = app.login("cdc.city").await;
    let (s, _) = call(&app, &cdc, Method::GET, "/api/v1/org-units", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The page: reachable from the navigation; a refusal at its field in Chinese, typed kept.
    let mut b = app.browser("admin", "zh-CN").await;
    let home = b.get("/").await;
    assert!(home.text.contains("id=\"nav-org\""));
    let page = b.get("/org-units").await;
    assert!(
        page.text.contains("data-unit=\"YXS\"") && page.text.contains("组织机构"),
        "{}",
        page.text
    );
    let a = b
        .submit(
            "/org-units",
            &[
                ("code", "HT2"),
                ("name", "红塔二区"),
                ("level", "district"),
                ("parent", "YN"),
                ("dhis2_code", ""),
            ],
        )
        .await;
    assert!(a.text.contains("data-field=\"parent\""), "{}", a.text);
    assert!(a.text.contains("区县 只能隶属于上一级"), "{}", a.text);
    assert!(a.text.contains("value=\"红塔二区\""), "typed kept");
    let a = b
        .submit(
            "/org-units",
            &[
                ("code", "HT2"),
                ("name", "红塔二区"),
                ("level", "district"),
                ("parent", "YXS"),
                ("dhis2_code", ""),
            ],
        )
        .await;
    assert!(a.text.contains("已添加机构 HT2"), "{}", a.text);
    let a = b
        .submit(
            "/org-units/place",
            &[("site", "YX02"), ("unit", "HT2"), ("dhis2_code", "")],
        )
        .await;
    assert!(a.text.contains("已设置门诊 YX02 的归属"), "{}", a.text);
    let a = b
        .submit(
            "/org-units/scope",
            &[("username", "cdc.all"), ("unit", "HT2")],
        )
        .await;
    assert!(a.text.contains("已设置 cdc.all 的范围"), "{}", a.text);
    let all = app.login("cdc.all").await;
    let (_, v) = call(
        &app,
        &all,
        Method::GET,
        "/api/v1/indicators/compare?month=2026-10",
        None,
    )
    .await;
    assert_eq!(v["unit"], "HT2");
    assert_eq!(v["centres"][0]["site"], "YX02");
    assert_eq!(v["centres"].as_array().unwrap().len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_district_police_account_holds_the_queue_of_its_districts_centres_only() {
    let w = common::world().await;
    let app = &w.app;
    let yx01 = app.store.site_by_code("YX01").await.unwrap();
    let yx09 = app.site("YX09").await;
    app.user(&yx01, "admin", Role::Admin).await;
    // Home elsewhere, scoped to the district of YX01; and one at YX01 scoped to another district.
    app.user(&yx09, "police.ht", Role::PsbOfficer).await;
    app.user(&yx01, "police.jc", Role::PsbOfficer).await;
    let admin = app.login("admin").await;
    for (code, level, parent) in [
        ("YXS", "city", None),
        ("HTQ", "district", Some("YXS")),
        ("JCQ", "district", Some("YXS")),
    ] {
        let (s, v) = call(
            app,
            &admin,
            Method::POST,
            "/api/v1/org-units",
            Some(json!({"code": code, "name": code, "level": level, "parent": parent})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, _) = call(
        app,
        &admin,
        Method::PUT,
        "/api/v1/org-units/place",
        Some(json!({"site": "YX01", "unit": "HTQ"})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for (user, unit) in [("police.ht", "HTQ"), ("police.jc", "JCQ")] {
        let (s, _) = call(
            app,
            &admin,
            Method::PUT,
            "/api/v1/org-units/scope",
            Some(json!({"username": user, "unit": unit})),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    let id = w.stable_client("YX-0104", true).await;
    let (s, r) = call(
        app,
        &w.doctor,
        Method::POST,
        &format!("/api/v1/clients/{id}/psb-requests"),
        Some(json!({"days": 3})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["request_id"].as_i64().unwrap();
    let ht = app.login("police.ht").await;
    let jc = app.login("police.jc").await;
    let queue = |token: String| async move {
        let (s, v) = call(app, &token, Method::GET, "/api/v1/psb/requests", None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(queue(ht.clone()).await, vec![rid], "the district's centre");
    assert!(
        queue(jc.clone()).await.is_empty(),
        "another district: nothing, though at YX01"
    );
    assert_eq!(
        queue(w.police.clone()).await,
        vec![rid],
        "an unscoped officer: their own centre"
    );
    let answer = json!({"decision": "approve", "reason": "no record"});
    let (s, v) = call(
        app,
        &jc,
        Method::POST,
        &format!("/api/v1/psb/requests/{rid}/answer"),
        Some(answer.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(
        app,
        &ht,
        Method::POST,
        &format!("/api/v1/psb/requests/{rid}/answer"),
        Some(answer),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved");
}
