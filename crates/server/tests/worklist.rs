//! The doctor's worklist on the home page and at `GET /api/v1/worklist`: each count follows the
//! centre's state (a client withheld after missed days, police answers, an approval ending in
//! ten days, a box overdue, a urine test due), moves when the doctor acts, is the prescriber's
//! alone, reads in Chinese and English, and counts what the demo centre holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anxin_domain::clinic::orders::{DoseOrder, OrderKind};
use anxin_domain::Role;
use anxin_server::testing::TestApp;
use anxin_storage::clinic::{HistoricDose, NewDose};
use anxin_storage::Actor;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use common::{world_on, World};
use serde_json::{json, Value};

const KINDS: [&str; 6] = [
    "orders_awaiting",
    "reviews_due",
    "police_answers",
    "approvals_expiring",
    "overdue_boxes",
    "urine_due",
];

/// The API's counts by kind, in the worklist's order.
async fn counts(app: &TestApp, token: &str) -> Vec<(String, u64)> {
    let a = app
        .call(Method::GET, "/api/v1/worklist", Some(token), None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn count_of(list: &[(String, u64)], kind: &str) -> u64 {
    list.iter()
        .find(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind} in {list:?}"))
        .1
}

/// The counts the home page's `#worklist` shows: `data-kind="…"` then `<span class="count">n`.
fn page_counts(page: &str) -> Vec<(String, u64)> {
    let start = page.find("id=\"worklist\"").expect("a #worklist section");
    let section = &page[start..start + page[start..].find("</section>").unwrap()];
    section
        .split("data-kind=\"")
        .skip(1)
        .map(|part| {
            let kind = part[..part.find('"').unwrap()].to_owned();
            let n = part.split("<span class=\"count\">").nth(1).unwrap();
            (kind, n[..n.find('<').unwrap()].parse().unwrap())
        })
        .collect()
}

/// A client who came every day until `gap` days ago and missed the days since.
async fn client_missing(w: &World, uic: &str, gap: i64) -> i64 {
    let today = w.app.state.today();
    let start = today - Duration::days(200);
    let (s, c) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/clients",
            Some(json!({"uic": uic, "enrolled_on": start.to_string()})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_i64().unwrap();
    let store = &w.app.store;
    let doctor = store.user_auth("doctor").await.unwrap().unwrap().user;
    let actor = Actor {
        user_id: Some(doctor.id),
        name: doctor.username.clone(),
        site_id: Some(doctor.site_id),
    };
    let order = DoseOrder {
        kind: OrderKind::Maintenance,
        start,
        mg: 60,
        steps: vec![],
        split: 1,
        reason: "maintenance".into(),
    };
    store
        .add_order(&actor, id, &order, w.app.state.now())
        .await
        .unwrap();
    let doses: Vec<HistoricDose> = (gap + 1..=100)
        .map(|back| HistoricDose {
            dose: NewDose {
                client_id: id,
                day: today - Duration::days(back),
                portion: 0,
                mg: 60,
                site_id: doctor.site_id,
                guest: false,
                rule: "normal".into(),
            },
            given_at: w.app.state.now() - Duration::days(back),
        })
        .collect();
    store
        .import_history(&actor, doctor.site_id, &doses, &[], w.app.state.now())
        .await
        .unwrap();
    id
}

/// Today's day list as the API gives it.
async fn day_list(w: &World, token: &str) -> Vec<Value> {
    let (s, list) = w
        .call(Method::GET, token, "/api/v1/dispensing/today", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

fn withheld(rows: &[Value]) -> u64 {
    rows.iter().filter(|r| r["status"] == "withheld").count() as u64
}

fn urine_due(rows: &[Value]) -> u64 {
    rows.iter().filter(|r| !r["urine_due"].is_null()).count() as u64
}

async fn the_worklist_follows_the_centre(app: TestApp) {
    let w = world_on(app).await;
    let site = w.app.store.site_by_code("YX01").await.unwrap();
    w.app.user(&site, "manager", Role::Manager).await;
    let manager = w.app.login("manager").await;
    let nurse = w.app.login("nurse").await;
    // Approvals hold ten days at this centre: one given today ends within the fortnight.
    let (s, mut policy) = w
        .call(Method::GET, &manager, "/api/v1/takehome/policy", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    policy["version"] = json!("short-approvals");
    policy["approval_valid_days"] = json!(10);
    let a = w
        .app
        .call(
            Method::PUT,
            "/api/v1/takehome/policy",
            Some(&manager),
            Some(policy),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);

    // Nothing waits yet, and every kind is there with its zero.
    let empty = counts(&w.app, &w.doctor).await;
    assert_eq!(
        empty.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        KINDS
    );
    assert!(empty.iter().all(|(_, n)| *n == 0), "{empty:?}");

    // A client away three days: withheld until the doctor reviews them.
    let away = client_missing(&w, "YX-0301-AW", 3).await;
    // Police answers: one approval (valid ten days), one denial.
    let approved = w.stable_client("YX-0302-AP", true).await;
    w.approved(approved, 2).await;
    let denied = w.stable_client("YX-0303-DN", true).await;
    let (s, r) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{denied}/psb-requests"),
            Some(json!({"days": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, _) = w
        .call(
            Method::POST,
            &w.police,
            &format!("/api/v1/psb/requests/{}/answer", r["request_id"]),
            Some(json!({"decision": "deny", "reason": "pending case"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A box out for two days with a third client (approved too).
    let boxed = w.stable_client("YX-0304-BX", true).await;
    w.approved(boxed, 2).await;
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes",
            Some(json!({"serial": "BOX-0301"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{boxed}/loads"),
            Some(json!({"serial": "BOX-0301", "days": 2, "code_hour": 7})),
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
    // A client who starts community treatment today: the first scheduled urine test is due.
    let community = w.stable_client("YX-0305-CT", false).await;
    let (s, r) = w
        .call(
            Method::PUT,
            &w.doctor,
            &format!("/api/v1/clients/{community}/stage"),
            Some(json!({"stage": "community_treatment"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");

    let rows = day_list(&w, &nurse).await;
    let c = counts(&w.app, &w.doctor).await;
    assert_eq!(count_of(&c, "reviews_due"), 1, "{c:?}");
    assert_eq!(withheld(&rows), 1);
    assert_eq!(
        count_of(&c, "police_answers"),
        3,
        "two approvals, one denial"
    );
    assert_eq!(
        count_of(&c, "approvals_expiring"),
        2,
        "both end in ten days"
    );
    assert_eq!(
        count_of(&c, "overdue_boxes"),
        0,
        "the box is not due back yet"
    );
    let urine = count_of(&c, "urine_due");
    assert!(urine >= 1, "the community client's test is due: {c:?}");
    assert_eq!(urine, urine_due(&rows), "as the day list says");
    assert!(rows
        .iter()
        .any(|r| r["client_id"] == community && r["urine_due"] == "scheduled"));

    // The home page shows the same counts, each a link to where the doctor acts.
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let home = doctor.get("/").await;
    assert_eq!(page_counts(&home.text), c);
    for (text, href) in [
        ("今日待办", ""),
        ("待医生评估或重新诱导", "/dispensing?show=withheld"),
        ("近 7 天公安答复", "/clients?show=police_answers"),
        ("14 天内到期的公安批准", "/clients?show=approvals_expiring"),
        ("逾期未归还的药盒", "/#overdue-boxes"),
        ("今日需尿检", "/dispensing?show=urine"),
    ] {
        assert!(home.text.contains(text), "{text} in Chinese");
        assert!(home.text.contains(&format!("href=\"{href}")), "{href}");
    }
    assert!(
        home.text
            .contains("class=\"muted\" data-kind=\"overdue_boxes\"")
            || home
                .text
                .contains("data-kind=\"overdue_boxes\" class=\"muted\""),
        "a zero is shown, muted"
    );
    let mut doctor_en = w.app.browser("doctor", "en").await;
    let home = doctor_en.get("/").await;
    assert!(home.text.contains("Reviews or re-inductions due"));
    assert!(home.text.contains("Police answers in the last 7 days"));
    // (The language is the account's: back to Chinese.)
    let mut doctor = w.app.browser("doctor", "zh-CN").await;

    // The links lead to the lists behind the counts.
    let page = doctor.get("/dispensing?show=withheld").await;
    assert_eq!(page.text.matches("class=\"status-withheld\"").count(), 1);
    assert!(page.text.contains("YX-0301-AW"));
    let page = doctor.get("/clients?show=police_answers").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text.matches("data-request=").count(), 3);
    for uic in ["YX-0302-AP", "YX-0303-DN", "YX-0304-BX"] {
        assert!(page.text.contains(uic), "{uic}");
    }
    assert!(page.text.contains("未批准"), "the denial, in Chinese");
    let until = (w.app.state.today() + Duration::days(10)).to_string();
    let page = doctor.get("/clients?show=approvals_expiring").await;
    assert_eq!(page.text.matches("data-request=").count(), 2);
    assert!(page.text.contains(&format!("有效至 {until}")));
    assert!(!page.text.contains("YX-0303-DN"), "a denial ends nothing");

    // The doctor acts and the counts move: a review, a urine test, a consent withdrawn.
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{away}/reviews"),
            Some(json!({"note": "seen, restart at half dose"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{community}/urine-tests"),
            Some(json!({"observed": true, "outcome": "tested", "results": {"opiates": "negative", "methadone": "positive"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, consents) = w
        .call(
            Method::GET,
            &w.doctor,
            &format!("/api/v1/clients/{approved}/consents"),
            None,
        )
        .await;
    let consent = consents.as_array().unwrap()[0]["id"].as_i64().unwrap();
    let (s, _) = w
        .call(
            Method::POST,
            &w.counsellor,
            &format!("/api/v1/consents/{consent}/revoke"),
            Some(json!({"reason": "client withdrew"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let after = counts(&w.app, &w.doctor).await;
    assert_eq!(count_of(&after, "reviews_due"), 0, "reviewed");
    assert_eq!(count_of(&after, "urine_due"), urine - 1, "tested");
    assert_eq!(
        count_of(&after, "approvals_expiring"),
        1,
        "no consent, no approval"
    );
    assert_eq!(count_of(&after, "police_answers"), 3, "the answers stay");

    // Other roles have no worklist.
    for (user, token) in [("nurse", &nurse), ("counsellor", &w.counsellor)] {
        let a = w
            .app
            .call(Method::GET, "/api/v1/worklist", Some(token), None)
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{user}");
        let mut b = w.app.browser(user, "zh-CN").await;
        let home = b.get("/").await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(!home.text.contains("id=\"worklist\""), "{user}");
    }

    // Five days on: the box is overdue (as the home page's notice says), everyone with an
    // order has missed days, and the answers are still of the week.
    w.app.clock.advance(Duration::days(5));
    // (Sessions ended meanwhile.)
    let (doctor_t, nurse) = (w.app.login("doctor").await, w.app.login("nurse").await);
    let rows = day_list(&w, &nurse).await;
    let c = counts(&w.app, &doctor_t).await;
    let (_, overdue) = w
        .call(Method::GET, &doctor_t, "/api/v1/boxes/overdue", None)
        .await;
    assert_eq!(count_of(&c, "overdue_boxes"), 1);
    assert_eq!(overdue.as_array().unwrap().len(), 1);
    assert_eq!(count_of(&c, "reviews_due"), withheld(&rows));
    assert!(withheld(&rows) >= 3, "{rows:?}");
    assert_eq!(count_of(&c, "urine_due"), urine_due(&rows));
    assert_eq!(count_of(&c, "police_answers"), 3);
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let home = doctor.get("/").await;
    assert_eq!(page_counts(&home.text), c);
    assert!(home.text.contains("1 个药盒逾期未归还"));
    // A week and a day after the answers they leave the list; the approval has ended too.
    w.app.clock.advance(Duration::days(6));
    let doctor_t = w.app.login("doctor").await;
    let c = counts(&w.app, &doctor_t).await;
    assert_eq!(count_of(&c, "police_answers"), 0);
    assert_eq!(count_of(&c, "approvals_expiring"), 0, "ended yesterday");
    w.app.cleanup().await;
}

#[tokio::test]
async fn the_worklist_follows_the_centre_on_sqlite() {
    the_worklist_follows_the_centre(TestApp::new().await).await;
}

#[tokio::test]
async fn the_worklist_follows_the_centre_on_postgres() {
    the_worklist_follows_the_centre(TestApp::postgres().await).await;
}

/// The demo centre: the doctor's worklist counts what the day list, the overdue boxes and the
/// police's own queue say, on the home page as in the API.
#[tokio::test]
async fn the_worklist_counts_what_the_demo_holds() {
    let app = TestApp::new().await;
    let d = anxin_server::demo::load(&app.state.app, 7).await.unwrap();
    assert!(d.loaded);
    let login = |user: &'static str| {
        let app = &app;
        async move {
            let a = app
                .call(
                    Method::POST,
                    "/api/v1/auth/login",
                    None,
                    Some(json!({"username": user, "password": anxin_server::demo::DEMO_PASSWORD})),
                )
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            a.json()["token"].as_str().unwrap().to_owned()
        }
    };
    let doctor = login("doctor").await;
    let police = login("police").await;
    let get = |token: String, path: &'static str| {
        let app = &app;
        async move {
            let a = app.call(Method::GET, path, Some(&token), None).await;
            assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
            a.json()
        }
    };
    let c = counts(&app, &doctor).await;
    let rows = get(doctor.clone(), "/api/v1/dispensing/today").await;
    let rows = rows.as_array().unwrap();
    assert_eq!(count_of(&c, "reviews_due"), withheld(rows));
    assert!(withheld(rows) > 0, "the demo shows the missed-dose rule");
    assert_eq!(count_of(&c, "urine_due"), urine_due(rows));
    let overdue = get(doctor.clone(), "/api/v1/boxes/overdue").await;
    assert_eq!(
        count_of(&c, "overdue_boxes"),
        overdue.as_array().unwrap().len() as u64
    );
    // The police's queue, read on their side: answers of the week, approvals ending soon.
    let today = app.state.today();
    let valid = get(doctor.clone(), "/api/v1/takehome/policy").await["approval_valid_days"]
        .as_i64()
        .unwrap();
    let queue = get(police, "/api/v1/psb/requests").await;
    let answered: Vec<(String, chrono::NaiveDate)> = queue
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "pending")
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_owned(),
                r["answered_on"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let of_week = answered
        .iter()
        .filter(|(_, on)| *on > today - Duration::days(7))
        .count() as u64;
    assert_eq!(count_of(&c, "police_answers"), of_week);
    assert!(of_week > 0, "the demo's police answered");
    let ending = answered
        .iter()
        .filter(|(s, on)| {
            let until = *on + Duration::days(valid);
            s == "approved" && until >= today && until <= today + Duration::days(14)
        })
        .count() as u64;
    assert_eq!(count_of(&c, "approvals_expiring"), ending);
    // The home page shows the API's counts.
    let mut b = app
        .browser_with("doctor", anxin_server::demo::DEMO_PASSWORD, "zh-CN")
        .await;
    let home = b.get("/").await;
    assert_eq!(page_counts(&home.text), c);
    app.cleanup().await;
}
