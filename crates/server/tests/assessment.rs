//! The intake assessment on the client's page and through the API: recorded and shown in both
//! languages, versions kept, refusals at the field in the page's language with what was typed
//! kept, not for peer educators or outside roles; the medicines that change methadone levels
//! warned of beside the order form.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anxin_domain::Role;
use anxin_server::testing::TestApp;
use axum::http::{Method, StatusCode};
use serde_json::json;

struct Centre {
    app: TestApp,
    id: i64,
}

/// A centre with a doctor, a nurse, a counsellor, a peer educator, a CDC analyst and a police
/// officer, and client YX-0042 born in 1990 on 60 mg from today.
async fn centre() -> Centre {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    for (name, role) in [
        ("doctor", Role::Prescriber),
        ("doctor2", Role::Prescriber),
        ("nurse", Role::Dispenser),
        ("counsellor", Role::Counsellor),
        ("peer", Role::PeerEducator),
        ("cdc", Role::CdcAnalyst),
        ("police", Role::PsbOfficer),
    ] {
        app.user(&site, name, role).await;
    }
    let doctor = app.login("doctor").await;
    let today = app.state.today().to_string();
    let c = app
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(&doctor),
            Some(json!({"uic": "YX-0042", "enrolled_on": today})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let id = c.json()["id"].as_i64().unwrap();
    let mut page = app.browser("doctor", "en").await;
    page.submit(
        &format!("/clients/{id}/demographics"),
        &[("sex", "male"), ("birth_year", "1990")],
    )
    .await;
    let o = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/orders"),
            Some(&doctor),
            Some(json!({"kind": "induction", "start": today, "mg": 30, "split": 1})),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    Centre { app, id }
}

const EFAVIRENZ_ON_HEROIN: &[(&str, &str)] = &[
    ("substance_heroin", "true"),
    ("substance_methamphetamine", "true"),
    ("main_route", "injecting"),
    ("age_first_use", "19"),
    ("previous_treatment", "compulsory_isolated"),
    ("hiv", "positive"),
    ("hcv", "unknown"),
    ("medicine_tenofovir", "true"),
    ("medicine_lamivudine", "true"),
    ("medicine_efavirenz", "true"),
];

#[tokio::test]
async fn the_doctor_records_the_assessment_and_efavirenz_warns_beside_the_order_form() {
    let Centre { app, id } = centre().await;
    let mut doctor = app.browser("doctor", "en").await;
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert!(
        page.text.contains("id=\"assessment-none\""),
        "{}",
        page.text
    );
    assert!(page.text.contains("id=\"assessment-form\""));
    assert!(!page.text.contains("id=\"interaction-warnings\""));

    let page = doctor
        .submit(&format!("/clients/{id}/assessment"), EFAVIRENZ_ON_HEROIN)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Assessment recorded."), "{}", page.text);
    assert!(page.text.contains("data-version=\"1\""));
    assert!(page.text.contains("Heroin、Methamphetamine"));
    assert!(page.text.contains("Compulsory isolated treatment"));
    // Injecting as the main route means having injected.
    assert!(page.text.contains("data-field=\"ever_injected\">Yes<"));
    assert!(page
        .text
        .contains("Tenofovir (TDF)、Lamivudine (3TC)、Efavirenz (EFV)"));
    // The warning sits in the orders section, one line per interacting medicine.
    let orders = &page.text[page.text.find("id=\"orders\"").unwrap()..];
    let warning = &orders[orders.find("id=\"interaction-warnings\"").unwrap()..];
    assert!(warning.contains("data-drug=\"efavirenz\" data-effect=\"lowers\""));
    assert!(warning.contains("Efavirenz (EFV) lowers methadone levels: watch for withdrawal signs"));
    assert!(warning.contains("second prescriber"));
    assert!(!warning.contains("data-drug=\"tenofovir\""));

    // The nurse sees it too, in Chinese.
    let mut nurse = app.browser("nurse", "zh-CN").await;
    let page = nurse.get(&format!("/clients/{id}")).await;
    assert!(page.text.contains("入组评估"));
    assert!(page.text.contains("海洛因、冰毒（甲基苯丙胺）"));
    assert!(page.text.contains("强制隔离戒毒"));
    assert!(page.text.contains("data-drug=\"efavirenz\""));
    assert!(page.text.contains("依非韦伦（EFV）会降低美沙酮血药浓度"));
    assert!(
        !page.text.contains("id=\"assessment-form\""),
        "the nurse does not record it"
    );

    // Fluconazole raises the level: sedation.
    let page = doctor
        .submit(
            &format!("/clients/{id}/assessment"),
            &[
                ("substance_heroin", "true"),
                ("main_route", "smoking"),
                ("previous_treatment", "none"),
                ("hiv", "negative"),
                ("hcv", "positive"),
                ("medicine_fluconazole", "true"),
            ],
        )
        .await;
    assert!(page.text.contains("data-version=\"2\""), "{}", page.text);
    assert!(page.text.contains("1 earlier versions kept."));
    assert!(page
        .text
        .contains("data-drug=\"fluconazole\" data-effect=\"raises\""));
    assert!(page.text.contains("watch for sedation"));
    assert!(
        !page.text.contains("data-drug=\"efavirenz\""),
        "the current version counts"
    );

    // The API lists both versions, newest first, with its interactions.
    let token = app.login("counsellor").await;
    let a = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}/assessments"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let list = a.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["version"], 2);
    assert_eq!(
        list[1]["arv"],
        json!(["tenofovir", "lamivudine", "efavirenz"])
    );
    assert_eq!(list[1]["interactions"][0]["medicine"], "efavirenz");
    assert_eq!(list[1]["interactions"][0]["effect"], "lowers");
    // Every recording and every read is in the audit trail.
    let n: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'assessment.record' AND record_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(n.0, 2);
    let reads: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'client.read' AND reason = 'assessments'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(reads.0, 1);
}

#[tokio::test]
async fn refusals_stand_at_their_field_in_chinese_with_what_was_typed_kept() {
    let Centre { app, id } = centre().await;
    let mut counsellor = app.browser("counsellor", "zh-CN").await;
    let mut typed = EFAVIRENZ_ON_HEROIN.to_vec();
    typed.retain(|(k, _)| *k != "age_first_use");
    typed.push(("age_first_use", "2"));
    let page = counsellor
        .submit(&format!("/clients/{id}/assessment"), &typed)
        .await;
    assert!(
        page.text.contains(
            "data-field=\"age_first_use\">首次使用年龄 2 岁不合理：应在 5 至 80 岁之间。"
        ),
        "{}",
        page.text
    );
    assert!(page.text.contains("value=\"2\""));
    assert!(page
        .text
        .contains("name=\"medicine_efavirenz\" value=\"true\" checked"));
    assert!(page
        .text
        .contains("name=\"substance_heroin\" value=\"true\" checked"));
    assert!(page.text.contains("<option value=\"injecting\" selected"));
    assert!(page
        .text
        .contains("<option value=\"compulsory_isolated\" selected"));
    assert!(
        page.text.contains("id=\"assessment-none\""),
        "nothing was recorded"
    );

    // Above the client's age (born 1990).
    typed.retain(|(k, _)| *k != "age_first_use");
    typed.push(("age_first_use", "70"));
    let page = counsellor
        .submit(&format!("/clients/{id}/assessment"), &typed)
        .await;
    assert!(page.text.contains("大于服药人员的年龄"), "{}", page.text);

    // ARVs with a negative HIV status: at the medicines.
    typed.retain(|(k, _)| *k != "age_first_use" && *k != "hiv");
    typed.push(("hiv", "negative"));
    let page = counsellor
        .submit(&format!("/clients/{id}/assessment"), &typed)
        .await;
    assert!(
        page.text
            .contains("data-field=\"medicines\">已列出抗病毒药物"),
        "{}",
        page.text
    );
    assert!(page.text.contains("<option value=\"negative\" selected"));

    // No substance ticked.
    let page = counsellor
        .submit(
            &format!("/clients/{id}/assessment"),
            &[
                ("main_route", "oral"),
                ("previous_treatment", "none"),
                ("hiv", "unknown"),
                ("hcv", "unknown"),
            ],
        )
        .await;
    assert!(
        page.text
            .contains("data-field=\"substances\">请至少勾选一种使用过的物质。"),
        "{}",
        page.text
    );

    // Through the API: an unknown medicine by code, at its field.
    let token = app.login("doctor").await;
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/assessments"),
            Some(&token),
            Some(json!({"substances": ["heroin"], "main_route": "smoking", "previous_treatment": "none",
                "hiv": "unknown", "hcv": "unknown", "medicines": ["aspirin"]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(a.json()["error"]["code"], "assessment.medicine_unknown");
    assert_eq!(a.json()["error"]["field"], "medicines");
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/assessments"),
            Some(&token),
            Some(json!({"substances": ["heroin"], "main_route": "smoking", "previous_treatment": "none",
                "hiv": "unknown", "hcv": "unknown", "medicines": ["rifampicin"]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json()["interactions"][0]["medicine"], "rifampicin");
}

#[tokio::test]
async fn peer_educators_and_outside_roles_neither_see_nor_record_it() {
    let Centre { app, id } = centre().await;
    let mut doctor = app.browser("doctor", "en").await;
    doctor
        .submit(&format!("/clients/{id}/assessment"), EFAVIRENZ_ON_HEROIN)
        .await;
    let mut peer = app.browser("peer", "en").await;
    let page = peer.get(&format!("/clients/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("id=\"assessment\""));
    assert!(!page.text.contains("interaction-warnings"));
    assert!(!page.text.contains("Efavirenz"));
    let page = peer
        .submit(&format!("/clients/{id}/assessment"), EFAVIRENZ_ON_HEROIN)
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    for who in ["peer", "cdc", "police", "nurse"] {
        let token = app.login(who).await;
        let a = app
            .call(
                Method::POST,
                &format!("/api/v1/clients/{id}/assessments"),
                Some(&token),
                Some(json!({"substances": ["heroin"], "main_route": "smoking", "previous_treatment": "none",
                    "hiv": "unknown", "hcv": "unknown"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{who}");
    }
    for who in ["peer", "cdc", "police"] {
        let token = app.login(who).await;
        let a = app
            .call(
                Method::GET,
                &format!("/api/v1/clients/{id}/assessments"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{who}");
        assert!(!a.text.contains("efavirenz"));
    }
}

#[tokio::test]
async fn overdoses_and_a_death_are_recorded_and_the_death_ends_the_treatment() {
    let Centre { app, id } = centre().await;
    let today = app.state.today();
    let tomorrow = today.succ_opt().unwrap().to_string();
    let mut doctor = app.browser("doctor", "zh-CN").await;
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert!(page.text.contains("id=\"overdoses-none\""), "{}", page.text);

    // A day after today is refused at its field, in Chinese, the rest kept.
    let page = doctor
        .submit(
            &format!("/clients/{id}/overdoses"),
            &[
                ("on", &tomorrow),
                ("naloxone", "true"),
                ("outcome", "taken_to_hospital"),
            ],
        )
        .await;
    assert!(
        page.text.contains("data-field=\"on\">日期不能晚于今天。"),
        "{}",
        page.text
    );
    assert!(page.text.contains(&format!("value=\"{tomorrow}\"")));
    assert!(page
        .text
        .contains("<option value=\"taken_to_hospital\" selected"));

    let yesterday = today.pred_opt().unwrap().to_string();
    let page = doctor
        .submit(
            &format!("/clients/{id}/overdoses"),
            &[
                ("on", &yesterday),
                ("naloxone", "true"),
                ("outcome", "recovered_on_site"),
            ],
        )
        .await;
    assert!(page.text.contains("过量事件已记录。"), "{}", page.text);
    assert!(page.text.contains("data-outcome=\"recovered_on_site\""));
    assert!(page.text.contains("现场恢复"));

    // An overdose that ended in death records the death and discharges the client.
    let token = app.login("doctor").await;
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/overdoses"),
            Some(&token),
            Some(json!({"naloxone": false, "outcome": "died"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json()["death"], true);
    let mut en = app.browser("doctor", "en").await;
    let page = en.get(&format!("/clients/{id}")).await;
    assert!(
        page.text.contains(&format!("Died on {today} (Overdose).")),
        "{}",
        page.text
    );
    assert!(page.text.contains("data-outcome=\"died\""));
    assert!(!page.text.contains("id=\"death-form\""));
    assert!(
        !page.text.contains("id=\"readmit-form\""),
        "no readmission after a death"
    );
    let discharged: (Option<String>,) =
        sqlx::query_as("SELECT discharged_on FROM clients WHERE id = $1")
            .bind(id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(discharged.0, Some(today.to_string()));
    // A second death is refused; readmission too.
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/death"),
            Some(&token),
            Some(json!({"cause": "unknown"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert_eq!(a.json()["error"]["code"], "death.already_recorded");
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/readmit"),
            Some(&token),
            None,
        )
        .await;
    assert_ne!(a.status, StatusCode::OK, "{}", a.text);
    for action in ["overdose.record", "death.record"] {
        let n: (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND record_id = $2")
                .bind(action)
                .bind(id.to_string())
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        assert!(n.0 >= 1, "{action}");
    }
}

#[tokio::test]
async fn a_death_with_its_cause_from_the_page_and_peer_educators_cannot_record_one() {
    let Centre { app, id } = centre().await;
    for who in ["peer", "nurse", "cdc", "police"] {
        let token = app.login(who).await;
        let a = app
            .call(
                Method::POST,
                &format!("/api/v1/clients/{id}/death"),
                Some(&token),
                Some(json!({"cause": "hiv_related"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{who}");
    }
    let mut counsellor = app.browser("counsellor", "zh-CN").await;
    let page = counsellor
        .submit(&format!("/clients/{id}/death"), &[("cause", "hiv_related")])
        .await;
    assert!(
        page.text.contains("死亡已记录，治疗已结束。"),
        "{}",
        page.text
    );
    assert!(page.text.contains("data-cause=\"hiv_related\""));
    assert!(page.text.contains("艾滋病相关"));
}

/// A stable client of the shared take-home world with a box out (two days of codes queued).
async fn box_out(w: &common::World, uic: &str, serial: &str) -> (i64, i64) {
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
            Some(json!({"serial": serial, "days": 2, "code_hour": 7})),
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

#[tokio::test]
async fn a_death_with_a_box_out_asks_first_then_ends_the_box_as_a_discharge_does() {
    let w = common::world().await;
    let (id, load) = box_out(&w, "YX-0043-IY", "BOX-0001").await;
    let queued = format!(
        "SELECT COUNT(*) FROM sms_outbox WHERE state = 'queued' AND idempotency_key LIKE 'code:{load}:%'"
    );
    let count = |sql: String| {
        let pool = w.app.store.pool().clone();
        async move {
            sqlx::query_as::<_, (i64,)>(&sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .0
        }
    };
    assert_eq!(count(queued.clone()).await, 2);
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let page = doctor.get(&format!("/clients/{id}")).await;
    assert!(page.text.contains("id=\"death-form\""), "{}", page.text);
    let page = doctor
        .submit(
            &format!("/clients/{id}/death"),
            &[("cause", "accident_violence")],
        )
        .await;
    let shown =
        common::error_at(&page.text, "confirm_box_out").expect("refused at the confirmation");
    assert!(shown.contains("BOX-0001"), "{shown}");
    assert!(page
        .text
        .contains("<option value=\"accident_violence\" selected"));
    assert_eq!(
        count("SELECT COUNT(*) FROM deaths".into()).await,
        0,
        "nothing written"
    );
    assert_eq!(count(queued.clone()).await, 2);

    let page = doctor
        .submit(
            &format!("/clients/{id}/death"),
            &[("cause", "accident_violence"), ("confirm_box_out", "true")],
        )
        .await;
    assert!(
        page.text.contains("死亡已记录，治疗已结束。"),
        "{}",
        page.text
    );
    assert_eq!(count(queued).await, 0, "no code goes out the next morning");
    assert_eq!(
        w.app.store.load(load).await.unwrap().state,
        anxin_domain::boxes::LoadState::Ended
    );
    assert_eq!(
        count(format!(
            "SELECT COUNT(*) FROM clients WHERE id = {id} AND discharged_on IS NOT NULL"
        ))
        .await,
        1
    );
}
