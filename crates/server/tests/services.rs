//! The one-stop shop through the whole router: encounters and their refusals, therapeutic-
//! community episodes, indicators for managers (full) and the CDC (suppressed, recorded as a
//! disclosure), CSV and DHIS2 exports, and the dashboard page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::Role;
use anxin_server::testing::TestApp;
use axum::http::{header, Method, StatusCode};
use serde_json::{json, Value};

async fn post(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
) -> anxin_server::testing::Answer {
    app.call(Method::POST, path, Some(token), Some(body)).await
}

fn field(a: &anxin_server::testing::Answer) -> String {
    a.json()["error"]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn encounters_refuse_bad_input_naming_the_field() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "peer.wang", Role::PeerEducator).await;
    let t = app.login("peer.wang").await;
    let ok = post(
        &app,
        &t,
        "/api/v1/encounters",
        json!({"uic": "out-1", "sex": "f", "birth_year": 2003, "on": "2026-11-20",
               "service": {"kind": "needle_exchange", "given": 20, "returned": 15}}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(ok.json()["uic"], "OUT-1");

    let cases = [
        (
            json!({"uic": "OUT-1", "service": {"kind": "hiv_test", "result": "positive"}}),
            "tested_on",
        ),
        (
            json!({"uic": "OUT-1", "service": {"kind": "needle_exchange", "given": 0, "returned": 5000}}),
            "returned",
        ),
        (
            json!({"uic": "OUT-1", "service": {"kind": "arv_referral", "referred_on": "2026-11-10",
                   "outcome": "linked", "outcome_on": "2026-11-01"}}),
            "outcome_on",
        ),
        (
            json!({"service": {"kind": "naloxone", "kits": 1}}),
            "client_id",
        ),
        (
            json!({"uic": "OUT-1", "on": "2026-12-01", "service": {"kind": "naloxone", "kits": 1}}),
            "on",
        ),
    ];
    for (body, expected) in cases {
        let a = post(&app, &t, "/api/v1/encounters", body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.text
        );
        assert_eq!(field(&a), expected, "{body}: {}", a.text);
    }
    // A malformed service names its field (400).
    let a = post(
        &app,
        &t,
        "/api/v1/encounters",
        json!({"uic": "OUT-1", "service": {"kind": "naloxone", "kits": "many"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // (The service is tagged by `kind`, so serde reports the service as a whole.)
    assert_eq!(field(&a), "service");
    assert!(a.text.contains("expected u32"), "{}", a.text);
    app.cleanup().await;
}

#[tokio::test]
async fn tc_episodes_open_and_advance() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "doctor", Role::Prescriber).await;
    let t = app.login("doctor").await;
    let c = post(&app, &t, "/api/v1/clients", json!({"uic": "YX-0001"})).await;
    let id = c.json()["id"].as_i64().unwrap();
    let ep = post(
        &app,
        &t,
        "/api/v1/tc-episodes",
        json!({"client_id": id, "admitted_on": "2025-10-01", "phase": "entry"}),
    )
    .await;
    assert_eq!(ep.status, StatusCode::CREATED, "{}", ep.text);
    let ep_id = ep.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/tc-episodes/{ep_id}");
    let a = app
        .call(
            Method::PUT,
            &path,
            Some(&t),
            Some(json!({"admitted_on": "2025-10-01", "phase": "aftercare",
                        "left_on": "2026-10-01", "exit": "completed"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // Follow-up at 6 months is not due yet on 2026-11-22.
    let a = app
        .call(
            Method::PUT,
            &path,
            Some(&t),
            Some(json!({"admitted_on": "2025-10-01", "phase": "aftercare",
                        "left_on": "2026-10-01", "exit": "completed", "urine_negative_6m": true})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&a), "urine_negative_6m");
    app.cleanup().await;
}

/// The refusal a page shows at `field` of the form `form`.
fn error_in(page: &str, form: &str, field: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{form}\""))?;
    let rest = &page[start..];
    let rest = &rest[..rest.find("</form>")?];
    let marker = format!("data-field=\"{field}\">");
    let at = rest.find(&marker)? + marker.len();
    Some(rest[at..at + rest[at..].find("</span>")?].to_owned())
}

/// A counsellor admits a resident, moves the phases on and records the exit in the page, by UIC;
/// each refusal shows at its field in Chinese, with what was typed kept.
#[tokio::test]
async fn the_therapeutic_community_is_kept_in_the_page() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "doctor", Role::Prescriber).await;
    app.user(&site, "counsellor", Role::Counsellor).await;
    let t = app.login("doctor").await;
    let c = post(
        &app,
        &t,
        "/api/v1/clients",
        json!({"uic": "YX-0031-TC", "enrolled_on": "2025-09-01"}),
    )
    .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let mut b = app.browser("counsellor", "zh-CN").await;
    assert!(b.get("/").await.text.contains("id=\"nav-tc\""));
    let page = b.get("/tc").await;
    assert!(page.text.contains("暂无入住人员"), "{}", page.text);

    let a = b
        .submit(
            "/tc",
            &[
                ("uic", "YX-9999-ZZ"),
                ("admitted_on", "2025-10-01"),
                ("phase", "entry"),
            ],
        )
        .await;
    assert!(
        error_in(&a.text, "tc-open", "uic").is_some_and(|e| e.contains("没有编码为 YX-9999-ZZ"))
    );
    let a = b
        .submit(
            "/tc",
            &[
                ("uic", "yx-0031-tc"),
                ("admitted_on", "2099-01-01"),
                ("phase", "primary"),
            ],
        )
        .await;
    assert!(error_in(&a.text, "tc-open", "admitted_on").is_some_and(|e| e.contains("不能晚于今天")));
    assert!(
        a.text.contains("value=\"yx-0031-tc\""),
        "the UIC typed is kept"
    );
    let a = b
        .submit(
            "/tc",
            &[
                ("uic", "yx-0031-tc"),
                ("admitted_on", "2025-10-01"),
                ("phase", "entry"),
            ],
        )
        .await;
    assert!(a.text.contains("已为 YX-0031-TC 保存"), "{}", a.text);
    let list = app
        .call(Method::GET, "/api/v1/tc-episodes", Some(&t), None)
        .await
        .json();
    let id = list["episodes"][0]["id"].as_i64().unwrap();
    let form = format!("tc-{id}");
    let row = |page: &str| {
        let at = page
            .find("data-uic=\"YX-0031-TC\"")
            .expect("the resident's row");
        page[at..at + page[at..].find("<form").unwrap()].to_owned()
    };
    assert!(row(&a.text).contains("入门期"));
    assert!(
        !a.text
            .contains(&format!("服务对象 {}", list["episodes"][0]["client_id"])),
        "no internal id"
    );

    let update = |fields: &[(&'static str, &'static str)]| {
        let mut all = vec![("uic", "YX-0031-TC"), ("admitted_on", "2025-10-01")];
        all.extend_from_slice(fields);
        all
    };
    let path = format!("/tc/{id}");
    let a = b.submit(&path, &update(&[("phase", "primary")])).await;
    assert!(row(&a.text).contains("主要治疗期"));
    // Back to entry (a forged choice): refused at the phase.
    let a = b.submit(&path, &update(&[("phase", "entry")])).await;
    assert!(error_in(&a.text, &form, "phase").is_some_and(|e| e.contains("阶段只能向前推进")));
    // A leaving date without how it ended: refused at the exit, the date kept.
    let a = b
        .submit(
            &path,
            &update(&[("phase", "re_entry"), ("left_on", "2026-10-01")]),
        )
        .await;
    assert!(
        error_in(&a.text, &form, "exit").is_some_and(|e| e.contains("完成还是中途退出")),
        "{}",
        a.text
    );
    assert!(
        a.text.contains("value=\"2026-10-01\""),
        "the date typed is kept"
    );
    let a = b
        .submit(
            &path,
            &update(&[
                ("phase", "aftercare"),
                ("left_on", "2026-10-01"),
                ("exit", "completed"),
            ]),
        )
        .await;
    assert!(row(&a.text).contains("完成 2026-10-01"), "{}", row(&a.text));
    // The six-month follow-up before its day.
    let a = b
        .submit(
            &path,
            &update(&[
                ("phase", "aftercare"),
                ("left_on", "2026-10-01"),
                ("exit", "completed"),
                ("urine_negative_6m", "negative"),
            ]),
        )
        .await;
    assert!(
        error_in(&a.text, &form, "urine_negative_6m").is_some_and(|e| e.contains("2027-04-01")),
        "{}",
        a.text
    );
    app.cleanup().await;
}

#[tokio::test]
async fn managers_see_full_tables_and_the_cdc_sees_suppressed_aggregates_recorded() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    let other = app.site("KM01").await;
    app.user(&site, "boss", Role::Manager).await;
    app.user(&site, "cdc.wu", Role::CdcAnalyst).await;
    app.user(&site, "admin", Role::Admin).await;
    let _ = other;
    let tm = app.login("boss").await;
    // 7 HIV tests from anonymous women under 25 and 2 from men 25+, all in November.
    for (i, (sex, year)) in std::iter::repeat_n(("f", 2004), 7)
        .chain(std::iter::repeat_n(("m", 1980), 2))
        .enumerate()
    {
        let a = post(
            &app,
            &tm,
            "/api/v1/encounters",
            json!({"uic": format!("OUT-{i}"), "sex": sex, "birth_year": year, "on": "2026-11-10",
                   "service": {"kind": "hiv_test", "tested_on": "2026-11-10",
                               "result": "negative", "told_result": true}}),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let q = "from=2026-11-01&to=2026-11-30";
    let full = app
        .call(
            Method::GET,
            &format!("/api/v1/indicators?{q}"),
            Some(&tm),
            None,
        )
        .await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text);
    let v = full.json();
    assert_eq!(v["suppressed"], false);
    let hiv = v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "hiv_tests")
        .unwrap()
        .clone();
    assert_eq!(hiv["value"], 9.0);
    assert_eq!(hiv["numerator"]["cells"][1][0], 7);
    assert_eq!(hiv["numerator"]["cells"][0][1], 2);
    // A manager asking for another centre is refused.
    let a = app
        .call(
            Method::GET,
            &format!("/api/v1/indicators?{q}&site=KM01"),
            Some(&tm),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // A period that ends before it starts names `to`.
    let a = app
        .call(
            Method::GET,
            "/api/v1/indicators?from=2026-11-30&to=2026-11-01",
            Some(&tm),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&a), "to");

    let tc = app.login("cdc.wu").await;
    let sup = app
        .call(
            Method::GET,
            &format!("/api/v1/indicators?{q}&site=YX01"),
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(sup.status, StatusCode::OK, "{}", sup.text);
    assert!(!sup.text.contains("OUT-"), "no UIC reaches the CDC");
    let v = sup.json();
    assert_eq!(v["suppressed"], true);
    let hiv = v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "hiv_tests")
        .unwrap()
        .clone();
    let n = &hiv["numerator"];
    // The 2 (male 25+) is never shown; every count that is shown is 0 or at least 5 and
    // within 3 of the truth (the cell-key noise); zeros stay zeros.
    assert_eq!(n["cells"][0][1], Value::Null);
    let truth = [[0, 2, 0], [7, 0, 0], [0, 0, 0]];
    for (r, row) in truth.iter().enumerate() {
        for (c, want) in row.iter().enumerate() {
            match n["cells"][r][c].as_u64() {
                Some(got) => {
                    assert!(got == 0 || got >= 5, "{n}");
                    assert_eq!(got == 0, *want == 0, "{n}");
                    assert!(got.abs_diff(*want) <= 3, "{n}");
                }
                None => assert!(*want > 0 && *want < 9, "{n}"),
            }
        }
    }
    let total = n["total"].as_u64().expect("9 tests leave as a count");
    assert!(total.abs_diff(9) <= 3, "{n}");
    // Asked again, the same answer: repeating a question does not average the noise away.
    let again = app
        .call(
            Method::GET,
            &format!("/api/v1/indicators?{q}&site=YX01"),
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(again.json()["indicators"], v["indicators"]);
    // Outside readers ask for reporting periods only: half a month is refused at `from`, in
    // words; `period=2026-11` is the same month as the dates.
    let half = app
        .call(
            Method::GET,
            "/api/v1/indicators?from=2026-11-01&to=2026-11-15&site=YX01",
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(
        half.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        half.text
    );
    assert_eq!(field(&half), "from");
    assert!(half.text.contains("reporting period"), "{}", half.text);
    let named = app
        .call(
            Method::GET,
            "/api/v1/indicators?period=2026-11&site=YX01",
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(named.json()["indicators"], v["indicators"]);
    let bad = app
        .call(
            Method::GET,
            "/api/v1/indicators?period=2026-11-15",
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(field(&bad), "period");
    // Each CDC answer is a disclosure in the audit trail.
    let csv = app
        .call(
            Method::GET,
            &format!("/api/v1/indicators/export.csv?{q}&site=all"),
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv
        .text
        .contains(",all,hiv_tests,count,male,25_plus,suppressed,"));
    // DHIS2 needs a mapping (set by an administrator) and a whole month.
    let a = app
        .call(
            Method::GET,
            &format!("/api/v1/indicators/export.dhis2.json?{q}"),
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    let ta = app.login("admin").await;
    let a = app
        .call(
            Method::PUT,
            "/api/v1/indicators/dhis2-mapping",
            Some(&ta),
            Some(json!({"entries": [
                {"indicator": "hiv_tests", "sex": "total", "age_band": "total",
                 "data_element": "DEhiv", "category_option_combo": "COCall"},
                {"indicator": "hiv_tests", "sex": "male", "age_band": "25_plus",
                 "data_element": "DEhiv", "category_option_combo": "COCm25"}]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let bad = app
        .call(
            Method::PUT,
            "/api/v1/indicators/dhis2-mapping",
            Some(&ta),
            Some(
                json!({"entries": [{"indicator": "nope", "sex": "total", "age_band": "total",
                 "data_element": "D", "category_option_combo": "C"}]}),
            ),
        )
        .await;
    assert_eq!(field(&bad), "entries[0].indicator");
    let a = app
        .call(
            Method::GET,
            "/api/v1/indicators/export.dhis2.json?from=2026-11-02&to=2026-11-30",
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = app
        .call(
            Method::GET,
            &format!("/api/v1/indicators/export.dhis2.json?{q}&org_unit=OU42"),
            Some(&tc),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // The DHIS2 value is the deployment's published total, as in the CSV.
    let csv_total = csv
        .text
        .lines()
        .find(|l| l.contains(",all,hiv_tests,count,total,total,"))
        .and_then(|l| l.split(',').nth(7))
        .expect("the total line")
        .to_owned();
    assert_eq!(
        a.json(),
        json!({"dataValues": [{"dataElement": "DEhiv", "categoryOptionCombo": "COCall",
            "period": "202611", "orgUnit": "OU42", "value": csv_total}]})
    );
    let exports: Vec<_> = app
        .store
        .audit_of_record("indicators", "all")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "disclosure.cdc_export" && e.actor == "cdc.wu")
        .collect();
    assert_eq!(exports.len(), 2, "csv and dhis2 of the deployment");
    let by_site = app
        .store
        .audit_of_record("indicators", "YX01")
        .await
        .unwrap();
    // Three answers left for YX01 (the dates, the same again, the named period); the refused
    // half month disclosed nothing.
    assert_eq!(by_site.len(), 3);
    assert!(by_site.iter().all(|e| e.reason.starts_with("json export")));
    // Managers' own reads are not disclosures.
    assert!(by_site.iter().all(|e| e.actor == "cdc.wu"));

    // The dashboard: a table and an SVG chart.
    let page = app
        .call(Method::GET, &format!("/indicators?{q}"), Some(&tm), None)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("<svg"));
    // The definitions follow the page's language: English, then Chinese.
    assert!(page
        .text
        .contains("HIV tests whose test date falls in the period."));
    assert!(page.text.contains("id=\"ind-hiv_tests\""));
    let a = app
        .call(
            Method::PUT,
            "/api/v1/me/language",
            Some(&tm),
            Some(json!({"language": "zh-CN"})),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let page = app
        .call(Method::GET, &format!("/indicators?{q}"), Some(&tm), None)
        .await;
    assert!(page.text.contains("检测日期在本期内的艾滋病病毒检测。"));
    assert!(!page
        .text
        .contains("HIV tests whose test date falls in the period."));
    app.cleanup().await;
}

/// An ARV referral is recorded first and its outcome weeks later, through the API and through
/// the referrals page's form; bad input names its field; every change is audited.
async fn arv_outcome_is_set_after_the_referral(app: TestApp) {
    let site = app.site("YX01").await;
    let other = app.site("KM01").await;
    app.user(&site, "peer.li", Role::PeerEducator).await;
    app.user(&other, "peer.km", Role::PeerEducator).await;
    let t = app.login("peer.li").await;
    let a = post(
        &app,
        &t,
        "/api/v1/encounters",
        json!({"uic": "OUT-7", "on": "2026-11-05",
               "service": {"kind": "arv_referral", "referred_on": "2026-11-05",
                           "outcome": "pending"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let id = a.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/encounters/{id}/arv-outcome");
    let put = |body: Value, token: String, path: String| {
        let app = &app;
        async move { app.call(Method::PUT, &path, Some(&token), Some(body)).await }
    };

    // Bad input: a date before the referral, "linked" without a date, an unknown outcome.
    for (body, expected) in [
        (
            json!({"outcome": "linked", "outcome_on": "2026-11-01"}),
            "outcome_on",
        ),
        (json!({"outcome": "linked"}), "outcome_on"),
        (json!({"outcome": "cured"}), "outcome"),
        (
            json!({"outcome": "lost", "outcome_on": "2026-12-30"}),
            "outcome_on",
        ),
    ] {
        let a = put(body.clone(), t.clone(), path.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.text
        );
        assert_eq!(field(&a), expected, "{body}: {}", a.text);
    }
    // An unknown referral, and an encounter that is not a referral: 404.
    let a = put(
        json!({"outcome": "lost"}),
        t.clone(),
        "/api/v1/encounters/999999/arv-outcome".into(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let kits = post(
        &app,
        &t,
        "/api/v1/encounters",
        json!({"uic": "OUT-7", "service": {"kind": "naloxone", "kits": 1}}),
    )
    .await;
    let kits = kits.json()["id"].as_i64().unwrap();
    let a = put(
        json!({"outcome": "lost"}),
        t.clone(),
        format!("/api/v1/encounters/{kits}/arv-outcome"),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    // Another centre's staff may not touch it: answered as if it did not exist.
    let tk = app.login("peer.km").await;
    let a = put(json!({"outcome": "lost"}), tk, path.clone()).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);

    // Linked on 11-20: the referral keeps its date and counts as linked in November.
    let a = put(
        json!({"outcome": "linked", "outcome_on": "2026-11-20"}),
        t.clone(),
        path.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    assert_eq!(v["service"]["referred_on"], "2026-11-05");
    assert_eq!(v["service"]["outcome"], "linked");
    assert_eq!(v["service"]["outcome_on"], "2026-11-20");
    app.user(&site, "boss", Role::Manager).await;
    let tm = app.login("boss").await;
    let ind = app
        .call(
            Method::GET,
            "/api/v1/indicators?from=2026-11-01&to=2026-11-30",
            Some(&tm),
            None,
        )
        .await;
    let arv = ind.json()["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "arv_linkage")
        .unwrap()
        .clone();
    assert_eq!(arv["numerator"]["total"], 1, "{arv}");
    assert_eq!(arv["denominator"]["total"], 1, "{arv}");

    // The referrals page lists it with a form; the form changes the outcome to lost.
    let page = app.call(Method::GET, "/referrals", Some(&t), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page
        .text
        .contains(&format!("action=\"/referrals/{id}/outcome\"")));
    assert!(page.text.contains("OUT-7"));
    let form = |body: &str| {
        axum::http::Request::builder()
            .method(Method::POST)
            .uri(format!("/referrals/{id}/outcome"))
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    let a = app.send(form("outcome=lost&outcome_on=2026-11-21")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(a.headers[header::LOCATION], "/referrals");
    // A bad date goes back to the page with the message.
    let a = app.send(form("outcome=lost&outcome_on=2026-11-01")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let back = a.headers[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(back, "/referrals", "no message in the URL");
    let flash = a.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    let shown = app
        .send(
            axum::http::Request::get(&back)
                .header(header::AUTHORIZATION, format!("Bearer {t}"))
                .header(header::COOKIE, flash.split(';').next().unwrap())
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        shown.text.contains("class=\"flash error\""),
        "{}",
        shown.text
    );
    assert!(
        shown.text.contains("outcome_on"),
        "the refusal names the field"
    );

    let trail: Vec<String> = app
        .store
        .audit_of_record("encounter", &id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        trail,
        [
            "encounter.create",
            "encounter.arv_outcome",
            "encounter.arv_outcome"
        ]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn arv_outcome_is_set_after_the_referral_sqlite() {
    arv_outcome_is_set_after_the_referral(TestApp::new().await).await;
}

#[tokio::test]
async fn arv_outcome_is_set_after_the_referral_postgres() {
    arv_outcome_is_set_after_the_referral(TestApp::postgres().await).await;
}

/// Twelve-month trends: the last twelve whole months, oldest first, full for the centre's
/// manager; for the CDC each month is suppressed as its own report would be, and the twelve
/// months leave as one recorded disclosure. The page draws a chart per indicator.
#[tokio::test]
async fn trends_cover_twelve_whole_months_suppressed_for_the_cdc() {
    // These clients have no dose records (the trend, not the drop-out rule, is under test): the
    // rule waits a year here, so each counts from enrolment on.
    let mut config = anxin_server::config::Config::default();
    config.indicators.dropout_days = 365;
    let app = TestApp::with_config(&config).await;
    let site = app.site("YX01").await;
    app.user(&site, "boss", Role::Manager).await;
    app.user(&site, "couns", Role::Counsellor).await;
    app.user(&site, "cdc.wu", Role::CdcAnalyst).await;
    let couns = app.login("couns").await;
    for (i, on) in std::iter::once("2025-12-05")
        .chain(std::iter::repeat_n("2026-03-10", 6))
        .enumerate()
    {
        let a = post(
            &app,
            &couns,
            "/api/v1/intake",
            json!({"uic": format!("YX-{:04}-TR", 800 + i), "name": format!("客户{i}"), "enrolled_on": on}),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let boss = app.login("boss").await;
    let full = app
        .call(Method::GET, "/api/v1/indicators/trend", Some(&boss), None)
        .await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text);
    let v = full.json();
    let months: Vec<&str> = v["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["month"].as_str().unwrap())
        .collect();
    assert_eq!(months.len(), 12);
    assert_eq!(
        (months[0], months[11]),
        ("2025-11", "2026-10"),
        "whole months only"
    );
    assert_eq!(v["indicators"][0], "mmt_clients");
    let mmt = |v: &Value, month: &str| {
        v["months"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["month"] == month)
            .map(|m| m["values"][0].clone())
            .unwrap()
    };
    assert_eq!(
        (mmt(&v, "2025-11"), mmt(&v, "2025-12"), mmt(&v, "2026-03")),
        (json!(0.0), json!(1.0), json!(7.0))
    );
    let cdc = app.login("cdc.wu").await;
    let shared = app
        .call(
            Method::GET,
            "/api/v1/indicators/trend?site=yx01",
            Some(&cdc),
            None,
        )
        .await;
    assert_eq!(shared.status, StatusCode::OK, "{}", shared.text);
    let s = shared.json();
    assert_eq!(mmt(&s, "2025-12"), Value::Null, "one client is suppressed");
    // Seven clients in MMT leave as seven give or take the cell-key noise (hidden if it falls
    // below 5).
    let march = mmt(&s, "2026-03");
    assert!(
        march.is_null() || march.as_f64().is_some_and(|v| (5.0..=10.0).contains(&v)),
        "{march}"
    );
    let disclosed: Vec<_> = app
        .store
        .audit_of_record("indicators", "YX01")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "disclosure.cdc_export")
        .collect();
    assert_eq!(disclosed.len(), 1, "the manager's read is no disclosure");
    assert!(
        disclosed[0]
            .reason
            .starts_with("trend of 4 indicators, 12 months"),
        "{}",
        disclosed[0].reason
    );
    let page = app
        .call(Method::GET, "/indicators/trend?site=YX01", Some(&cdc), None)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(
        page.text.matches("<svg").count(),
        4,
        "a chart per indicator"
    );
    assert_eq!(page.text.matches("data-month=").count(), 12);
    app.cleanup().await;
}

/// The retention life table by enrolment cohort: episodes of care by the month they started,
/// retained at 3, 6 and 12 months with the drop-out rule (30 days without a dose) applied; a
/// chart and a table on the page, in both languages; small cells hidden from the CDC.
#[tokio::test]
async fn the_life_table_follows_cohorts_with_drop_outs_on_the_page() {
    use anxin_storage::clinic::NewDose;
    use chrono::NaiveDate;
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    let boss_user = app.user(&site, "boss", Role::Manager).await;
    app.user(&site, "couns", Role::Counsellor).await;
    app.user(&site, "cdc.wu", Role::CdcAnalyst).await;
    let couns = app.login("couns").await;
    let mut ids = Vec::new();
    // Six clients enrolled on 2025-12-05, two on 2026-03-10.
    for (i, on) in std::iter::repeat_n("2025-12-05", 6)
        .chain(std::iter::repeat_n("2026-03-10", 2))
        .enumerate()
    {
        let a = post(
            &app,
            &couns,
            "/api/v1/intake",
            json!({"uic": format!("YX-{:04}-LT", 700 + i), "name": format!("客户{i}"), "enrolled_on": on}),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        ids.push(a.json()["id"].as_i64().unwrap());
    }
    // The first comes every day to 2026-07-01; the others never come: each drops out on the
    // 30th day without a dose.
    let actor = anxin_storage::Actor {
        user_id: Some(boss_user.id),
        name: "boss".into(),
        site_id: Some(site.id),
    };
    let mut day = NaiveDate::from_ymd_opt(2025, 12, 5).unwrap();
    while day <= NaiveDate::from_ymd_opt(2026, 7, 1).unwrap() {
        let dose = NewDose {
            client_id: ids[0],
            day,
            portion: 0,
            mg: 60,
            site_id: site.id,
            guest: false,
            rule: "normal".into(),
        };
        app.store
            .insert_dose(&actor, &dose, chrono::Utc::now())
            .await
            .unwrap();
        day = day.succ_opt().unwrap();
    }
    let boss = app.login("boss").await;
    let q = "from=2026-10-01&to=2026-10-31";
    let page = app
        .call(
            Method::GET,
            &format!("/indicators/retention?{q}"),
            Some(&boss),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    // 2025-10 to 2026-10: 13 cohorts, one chart.
    assert_eq!(page.text.matches("data-cohort=").count(), 13);
    assert!(page.text.contains(r#"id="life-chart""#) && page.text.contains("<svg"));
    let row = |text: &str, cohort: &str| -> Vec<String> {
        let start = text
            .find(&format!(r#"data-cohort="{cohort}""#))
            .unwrap_or_else(|| panic!("no cohort {cohort}"));
        let end = start + text[start..].find("</tr>").unwrap();
        text[start..end]
            .split("<td")
            .skip(1)
            .map(|c| {
                let v = &c[c.find('>').unwrap() + 1..];
                v[..v.find("</td>").unwrap()].to_owned()
            })
            .collect()
    };
    // December 2025: 6 started; at 3 months (03-05) 6 at risk, 1 retained; at 6 months (06-05)
    // 1 of 6; at 12 months not yet followed.
    assert_eq!(
        row(&page.text, "2025-12"),
        ["2025-12", "6", "6", "1", "16.7%", "6", "1", "16.7%", "0", "0", "—"]
    );
    // March 2026: 2 started, both dropped out in April: 0 of 2 at 3 and 6 months.
    assert_eq!(
        row(&page.text, "2026-03"),
        ["2026-03", "2", "2", "0", "0.0%", "2", "0", "0.0%", "0", "0", "—"]
    );
    // The figures count the first client as retained only while dosed: in MMT on 2026-07-30,
    // a drop-out on 2026-07-31.
    let ind = app
        .call(
            Method::GET,
            "/api/v1/indicators?from=2026-07-01&to=2026-07-31",
            Some(&boss),
            None,
        )
        .await;
    let figure = |v: &Value, id: &str| {
        v.as_array()
            .or_else(|| v["indicators"].as_array())
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .cloned()
            .unwrap()
    };
    let v = ind.json();
    assert_eq!(figure(&v, "mmt_clients")["value"], json!(0.0), "{v}");
    assert_eq!(figure(&v, "dropouts")["value"], json!(1.0));
    // The CDC sees the same table with the cohort of 2 hidden, and the read is recorded.
    let cdc = app.login("cdc.wu").await;
    let shared = app
        .call(
            Method::GET,
            &format!("/indicators/retention?{q}&site=YX01&by=month"),
            Some(&cdc),
            None,
        )
        .await;
    assert_eq!(shared.status, StatusCode::OK, "{}", shared.text);
    assert_eq!(
        row(&shared.text, "2026-03"),
        ["2026-03", "*", "*", "0", "—", "*", "0", "—", "0", "0", "—"]
    );
    assert!(app
        .store
        .audit_of_record("indicators", "YX01")
        .await
        .unwrap()
        .iter()
        .any(
            |e| e.action == "disclosure.cdc_export" && e.reason.starts_with("retention life table")
        ));
    // By quarter, in Chinese.
    let mut browser = app.browser("boss", "zh-CN").await;
    let zh = browser
        .get(&format!("/indicators/retention?{q}&by=quarter"))
        .await;
    assert_eq!(zh.status, StatusCode::OK, "{}", zh.text);
    assert!(zh.text.contains("按入组队列的保持率") && zh.text.contains("应随访"));
    assert_eq!(zh.text.matches("data-cohort=").count(), 5);
    assert_eq!(row(&zh.text, "2025Q4")[1], "6");
    app.cleanup().await;
}

/// A syphilis test is a service like the HCV test, and an enrolled client's tests make the
/// national programme's testing rates (clients tested ÷ clients in treatment).
#[tokio::test]
async fn syphilis_and_hiv_tests_make_the_national_testing_rates() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "boss", Role::Manager).await;
    app.user(&site, "couns", Role::Counsellor).await;
    let couns = app.login("couns").await;
    let mut ids = Vec::new();
    for i in 0..2 {
        let a = post(
            &app,
            &couns,
            "/api/v1/intake",
            json!({"uic": format!("YX-{:04}-SY", 600 + i), "name": format!("客户{i}"), "enrolled_on": "2026-11-10"}),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        ids.push(a.json()["id"].as_i64().unwrap());
    }
    let boss = app.login("boss").await;
    for (kind, day) in [("syphilis_test", "2026-11-12"), ("hiv_test", "2026-11-13")] {
        let a = post(
            &app,
            &boss,
            "/api/v1/encounters",
            json!({"client_id": ids[0], "on": day,
                   "service": {"kind": kind, "tested_on": day, "result": "negative"}}),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    // A result without its date is refused, naming the field, as for the HCV test.
    let undated = post(
        &app,
        &boss,
        "/api/v1/encounters",
        json!({"client_id": ids[1], "on": "2026-11-12",
               "service": {"kind": "syphilis_test", "result": "positive"}}),
    )
    .await;
    assert_eq!(
        undated.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        undated.text
    );
    assert_eq!(field(&undated), "tested_on");
    let v = app
        .call(
            Method::GET,
            "/api/v1/indicators?from=2026-11-01&to=2026-11-20",
            Some(&boss),
            None,
        )
        .await
        .json();
    let value = |id: &str| {
        v["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["value"].clone())
            .unwrap()
    };
    assert_eq!(value("nat_syphilis_testing_rate"), json!(50.0), "{v}");
    assert_eq!(value("nat_hiv_testing_rate"), json!(50.0));
    assert_eq!(value("nat_hcv_testing_rate"), json!(0.0));
    // The services page has a tab for it, in Chinese.
    let mut zh = app.browser("boss", "zh-CN").await;
    let page = zh.get("/services/syphilis_test").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("梅毒检测"));
    app.cleanup().await;
}
