//! The centre calendar through the router: a closure day is never a missed day at the window,
//! a closure in the past is refused at its field in the page's language, only the manager keeps
//! the calendar, and the calendar lists the clients whose dose a closure leaves uncovered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::Role;
use anxin_server::testing::TestApp;
use anxin_storage::clinic::NewDose;
use anxin_storage::Actor;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

struct Centre {
    app: TestApp,
    doctor: String,
    nurse: String,
    manager: String,
}

async fn centre() -> Centre {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "doctor", Role::Prescriber).await;
    app.user(&site, "nurse", Role::Dispenser).await;
    app.user(&site, "manager", Role::Manager).await;
    let doctor = app.login("doctor").await;
    let nurse = app.login("nurse").await;
    let manager = app.login("manager").await;
    Centre {
        app,
        doctor,
        nurse,
        manager,
    }
}

impl Centre {
    async fn call(
        &self,
        method: Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let a = self.app.call(method, path, Some(token), body).await;
        let v = if a.text.is_empty() {
            Value::Null
        } else {
            a.json()
        };
        (a.status, v)
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, token, path, Some(body)).await
    }

    /// Enrols a client with an induction order of `mg` (within the induction limits) from today.
    async fn client_on(&self, uic: &str, mg: u32) -> i64 {
        let today = self.app.state.today().to_string();
        let (s, c) = self
            .post(
                &self.doctor,
                "/api/v1/clients",
                json!({"uic": uic, "enrolled_on": today}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let id = c["id"].as_i64().unwrap();
        let (s, o) = self
            .post(
                &self.doctor,
                &format!("/api/v1/clients/{id}/orders"),
                json!({"kind": "induction", "start": today, "mg": mg, "split": 1}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        id
    }

    async fn dose(&self, uic: &str) -> (StatusCode, Value) {
        self.post(&self.nurse, "/api/v1/doses", json!({"uic": uic}))
            .await
    }

    /// Closes the centre `ahead` days from today, as the manager.
    async fn close(&self, ahead: i64, note: &str) -> (StatusCode, Value) {
        let day = (self.app.state.today() + Duration::days(ahead)).to_string();
        self.post(
            &self.manager,
            "/api/v1/calendar/closures",
            json!({"day": day, "note": note}),
        )
        .await
    }

    async fn next_day(&mut self, days: i64) {
        self.app.clock.advance(Duration::days(days));
        self.doctor = self.app.login("doctor").await;
        self.nurse = self.app.login("nurse").await;
        self.manager = self.app.login("manager").await;
    }

    async fn row(&self, uic: &str) -> Value {
        let (s, list) = self
            .call(Method::GET, &self.nurse, "/api/v1/dispensing/today", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["uic"] == uic)
            .unwrap()
            .clone()
    }
}

#[tokio::test]
async fn a_closure_day_is_never_a_missed_day() {
    let mut c = centre().await;
    c.client_on("YX-0101", 30).await;
    // Day 1: dosed; the centre is closed on days 2 to 4 (the Spring Festival).
    assert_eq!(c.dose("YX-0101").await.0, StatusCode::CREATED);
    for ahead in 1..=3 {
        let (s, a) = c.close(ahead, "春节").await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
    }
    // Day 2: the window says the centre is closed today.
    c.next_day(1).await;
    let mut window = c.app.browser("nurse", "zh-CN").await;
    let page = window.get("/dispensing").await;
    assert!(page.text.contains("id=\"closed-today\""), "{}", page.text);
    assert!(
        page.text.contains("本中心今天闭馆（春节）"),
        "{}",
        page.text
    );
    // Day 5: back after three closed days, nothing missed: the normal dose.
    c.next_day(3).await;
    let row = c.row("YX-0101").await;
    assert_eq!(
        (
            row["status"].clone(),
            row["missed_days"].clone(),
            row["rule"].clone()
        ),
        (json!("give"), json!(0), json!("normal"))
    );
    let mut window = c.app.browser("nurse", "zh-CN").await;
    assert!(!window
        .get("/dispensing")
        .await
        .text
        .contains("closed-today"));
    let (s, d) = c.dose("YX-0101").await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(
        (d["mg"].clone(), d["rule"].clone()),
        (json!(30), json!("normal"))
    );
    // The same gap without a closure (days 6 to 8): withheld until a prescriber reviews.
    c.next_day(4).await;
    let (s, e) = c.dose("YX-0101").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "dose.withheld");
    assert_eq!(c.row("YX-0101").await["missed_days"], 3);
    c.app.cleanup().await;
}

#[tokio::test]
async fn a_closure_in_the_past_is_refused_at_its_field_in_the_pages_language() {
    let c = centre().await;
    // Through the API: refused by code at `day`, nothing written.
    let (s, e) = c.close(-1, "春节").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        (e["error"]["code"].clone(), e["error"]["field"].clone()),
        (json!("closure.in_past"), json!("day"))
    );
    // A day already closed, and a date that is none.
    assert_eq!(c.close(2, "").await.0, StatusCode::CREATED);
    let (s, e) = c.close(2, "again").await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("closure.exists"))
    );
    let (s, e) = c
        .post(
            &c.manager,
            "/api/v1/calendar/closures",
            json!({"day": "next week"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("date.malformed"))
    );
    let (s, e) = c
        .post(&c.manager, "/api/v1/calendar/closures", json!({"day": (c.app.state.today() + Duration::days(5)).to_string(), "note": "节".repeat(41)}))
        .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("note"))
    );
    // In the page: the refusal at the date, in Chinese, with the typed note kept.
    let mut b = c.app.browser("manager", "zh-CN").await;
    let yesterday = (c.app.state.today() - Duration::days(1)).to_string();
    let page = b
        .submit("/calendar", &[("day", &yesterday), ("note", "元旦补休")])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("data-field=\"day\""), "{}", page.text);
    assert!(
        page.text.contains(&format!("{yesterday} 已经过去")),
        "{}",
        page.text
    );
    assert!(page.text.contains("value=\"元旦补休\""), "{}", page.text);
    assert!(
        page.text.contains(&format!("value=\"{yesterday}\"")),
        "{}",
        page.text
    );
    // Only the one closure of the API is listed.
    let (_, cal) = c
        .call(Method::GET, &c.nurse, "/api/v1/calendar/closures", None)
        .await;
    assert_eq!(cal["closures"].as_array().unwrap().len(), 1);
    c.app.cleanup().await;
}

#[tokio::test]
async fn only_the_manager_keeps_the_calendar() {
    let mut c = centre().await;
    let (s, _) = c
        .post(
            &c.nurse,
            "/api/v1/calendar/closures",
            json!({"day": (c.app.state.today() + Duration::days(3)).to_string(), "note": "春节"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut nurse = c.app.browser("nurse", "en").await;
    let page = nurse.get("/calendar").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("href=\"/calendar\""),
        "the nurse's navigation links the calendar"
    );
    assert!(
        !page.text.contains("closure-form"),
        "no add form for the nurse"
    );
    // The manager closes a day and removes it again; a past closure stays.
    let (s, a) = c.close(1, "春节").await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let id = a["id"].as_i64().unwrap();
    let (s, _) = c
        .call(
            Method::DELETE,
            &c.nurse,
            &format!("/api/v1/calendar/closures/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    c.next_day(2).await;
    let (s, e) = c
        .call(
            Method::DELETE,
            &c.manager,
            &format!("/api/v1/calendar/closures/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("closure.in_past"))
    );
    let (s, a) = c.close(1, "").await;
    assert_eq!(s, StatusCode::CREATED);
    let id = a["id"].as_i64().unwrap();
    let (s, _) = c
        .call(
            Method::DELETE,
            &c.manager,
            &format!("/api/v1/calendar/closures/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = c
        .call(
            Method::DELETE,
            &c.manager,
            &format!("/api/v1/calendar/closures/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    c.app.cleanup().await;
}

#[tokio::test]
async fn the_calendar_lists_the_clients_a_closure_leaves_uncovered() {
    let c = centre().await;
    let boxed = c.client_on("YX-0201", 30).await;
    c.client_on("YX-0202", 30).await;
    c.client_on("YX-0203", 30).await;
    let (s, _) = c.close(2, "春节").await;
    assert_eq!(s, StatusCode::CREATED);
    // YX-0201's dose that day is in a take-home box compartment.
    let site = c.app.store.site_by_code("YX01").await.unwrap();
    let day = c.app.state.today() + Duration::days(2);
    let doctor = c.app.store.user_auth("doctor").await.unwrap().unwrap().user;
    let actor = Actor {
        user_id: Some(doctor.id),
        name: doctor.username.clone(),
        site_id: Some(site.id),
    };
    c.app
        .store
        .insert_dose(
            &actor,
            &NewDose {
                client_id: boxed,
                day,
                portion: 0,
                mg: 30,
                site_id: site.id,
                guest: false,
                rule: "take_home_pending".into(),
            },
            c.app.state.now(),
        )
        .await
        .unwrap();
    let (s, cal) = c
        .call(Method::GET, &c.doctor, "/api/v1/calendar/closures", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{cal}");
    let closure = &cal["closures"][0];
    assert_eq!(closure["day"], day.to_string());
    assert_eq!(closure["uncovered"], 2);
    let uics: Vec<&str> = closure["uncovered_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["uic"].as_str().unwrap())
        .collect();
    assert_eq!(uics, ["YX-0202", "YX-0203"]);
    // The page says it in both languages, with the UICs.
    for (lang, words) in [
        ("zh-CN", "2 名服药人员当天尚无带药或异地服药安排"),
        ("en", "2 clients without a covering dose"),
    ] {
        let mut b = c.app.browser("manager", lang).await;
        let page = b.get("/calendar").await;
        assert!(page.text.contains(words), "{lang}: {}", page.text);
        assert!(
            page.text.contains("data-uic=\"YX-0202\"")
                && !page.text.contains("data-uic=\"YX-0201\"")
        );
    }
    c.app.cleanup().await;
}
