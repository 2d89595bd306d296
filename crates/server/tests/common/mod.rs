//! Shared set-up of the take-home and GPS tests: a centre with a prescriber, a counsellor, a
//! nurse and a police officer, and a stable client eligible for take-home doses.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::clinic::orders::{DoseOrder, OrderKind};
use anxin_domain::clinic::urine::{Outcome, Substance};
use anxin_domain::Role;
use anxin_server::testing::TestApp;
use anxin_storage::clinic::{HistoricDose, NewDose};
use anxin_storage::Actor;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

pub struct World {
    pub app: TestApp,
    pub doctor: String,
    pub counsellor: String,
    pub police: String,
}

pub async fn world() -> World {
    world_on(TestApp::new().await).await
}

/// A centre with a prescriber, a counsellor, a nurse and a police officer, on `app`'s database.
pub async fn world_on(app: TestApp) -> World {
    let site = app.site("YX01").await;
    app.user(&site, "doctor", Role::Prescriber).await;
    app.user(&site, "counsellor", Role::Counsellor).await;
    app.user(&site, "nurse", Role::Dispenser).await;
    app.user(&site, "police", Role::PsbOfficer).await;
    World {
        doctor: app.login("doctor").await,
        counsellor: app.login("counsellor").await,
        police: app.login("police").await,
        app,
    }
}

impl World {
    /// Sends a police request for `days` and has the officer approve it.
    pub async fn approved(&self, id: i64, days: i64) -> i64 {
        let (s, r) = self
            .call(
                Method::POST,
                &self.doctor,
                &format!("/api/v1/clients/{id}/psb-requests"),
                Some(json!({"days": days})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        let rid = r["request_id"].as_i64().unwrap();
        let (s, a) = self
            .call(
                Method::POST,
                &self.police,
                &format!("/api/v1/psb/requests/{rid}/answer"),
                Some(json!({"decision": "approve", "reason": "no record"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        rid
    }

    pub async fn call(
        &self,
        m: Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let a = self.app.call(m, path, Some(token), body).await;
        (
            a.status,
            if a.text.is_empty() {
                Value::Null
            } else {
                a.json()
            },
        )
    }

    /// A client 400 days in treatment who came every day of the last 120 and tested negative.
    pub async fn stable_client(&self, uic: &str, with_consent: bool) -> i64 {
        self.stable_client_with(uic, with_consent, true).await
    }

    /// A stable client as [`World::stable_client`], with or without a signed agreement.
    pub async fn stable_client_with(&self, uic: &str, with_consent: bool, agreement: bool) -> i64 {
        self.stable_client_since(uic, 400, with_consent, agreement)
            .await
    }

    /// A stable client as [`World::stable_client_with`], enrolled `days_ago` days ago.
    pub async fn stable_client_since(
        &self,
        uic: &str,
        days_ago: i64,
        with_consent: bool,
        agreement: bool,
    ) -> i64 {
        let today = self.app.state.today();
        let start = today - Duration::days(days_ago);
        let (s, c) = self
            .call(
                Method::POST,
                &self.doctor,
                "/api/v1/clients",
                Some(json!({"uic": uic, "enrolled_on": start.to_string()})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let id = c["id"].as_i64().unwrap();
        let store = &self.app.store;
        let doctor = store.user_auth("doctor").await.unwrap().unwrap().user;
        let actor = Actor {
            user_id: Some(doctor.id),
            name: doctor.username.clone(),
            site_id: Some(doctor.site_id),
        };
        let order = DoseOrder {
            kind: OrderKind::Maintenance,
            start,
            mg: 80,
            steps: vec![],
            split: 1,
            reason: "stable".into(),
        };
        store
            .add_order(&actor, id, &order, self.app.state.now())
            .await
            .unwrap();
        let doses: Vec<HistoricDose> = (1..=120)
            .map(|back| HistoricDose {
                dose: NewDose {
                    client_id: id,
                    day: today - Duration::days(back),
                    portion: 0,
                    mg: 80,
                    site_id: doctor.site_id,
                    guest: false,
                    rule: "normal".into(),
                },
                given_at: self.app.state.now() - Duration::days(back),
            })
            .collect();
        let negative = Outcome::Tested(
            [(Substance::Opiates, false), (Substance::Methadone, true)]
                .into_iter()
                .collect(),
        );
        let urine: Vec<_> = (1..=6)
            .map(|k| (id, today - Duration::days(10 * k), negative.clone()))
            .collect();
        store
            .import_history(&actor, doctor.site_id, &doses, &urine, self.app.state.now())
            .await
            .unwrap();
        if agreement {
            let (s, _) = self
                .call(Method::POST, &self.counsellor, &format!("/api/v1/clients/{id}/agreements"), Some(json!({"method": "methadone maintenance", "duration_months": 36, "rules": "daily attendance", "signed_by": "client"})))
                .await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let a = self
            .app
            .call(Method::PUT, &format!("/api/v1/clients/{id}/identity"), Some(&self.doctor), Some(json!({"name": "Li Wei", "national_id": "53040219800101123X", "phone": "13800138000", "address": "Hongta district"})))
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        if with_consent {
            self.consent(id).await;
        }
        id
    }

    pub async fn consent(&self, id: i64) -> i64 {
        let expires = (self.app.state.today() + Duration::days(365)).to_string();
        let (s, c) = self
            .call(Method::POST, &self.counsellor, &format!("/api/v1/clients/{id}/consents"), Some(json!({"purpose": "take_home_police_check", "recipient": "PSB", "scope": "name, national ID number, requested days", "expires_on": expires})))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        c["id"].as_i64().unwrap()
    }

    pub async fn eligibility(&self, id: i64) -> Value {
        let (s, e) = self
            .call(
                Method::GET,
                &self.doctor,
                &format!("/api/v1/clients/{id}/eligibility"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{e}");
        e
    }
}

/// The refusal a page shows at `field`: its text, from `<span class="field-error" data-field=…>`.
pub fn error_at(page: &str, field: &str) -> Option<String> {
    let marker = format!("data-field=\"{field}\">");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find("</span>")? + start;
    Some(page[start..end].to_owned())
}
