//! The intake assessment on the client's page and through the API: recorded and shown in both
//! languages, versions kept, refusals at the field in the page's language with what was typed
//! kept, not for peer educators or outside roles; the medicines that change methadone levels
//! warned of beside the order form.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
