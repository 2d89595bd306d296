//! The joint policy room through the router: the police propose take-home thresholds, the
//! preview on the centre's clients (suppressed for the CDC and the police, the UICs for the
//! staff), the CDC, the police and then the manager sign, and only then, from its date, the
//! version decides; refusals at the field; a signed version is never edited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::Role;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

mod common;
use anxin_server::testing::TestApp;
use common::{error_at, world, world_on, World};

/// The default tiers with the 6-day tier asking 300 days in treatment instead of 540: the
/// stable clients (400 days, 5 days today) would gain a day.
fn proposal(version: &str, from: &str) -> Value {
    json!({
        "version": version,
        "approval_valid_days": 90,
        "rationale": "Stable clients travel far for work",
        "effective_from": from,
        "tiers": [
            {"days": 2, "min_days_in_treatment": 90, "min_attendance_30": 90.0, "min_attendance_90": 85.0, "last_urine_negative": 2},
            {"days": 3, "min_days_in_treatment": 180, "min_attendance_30": 93.0, "min_attendance_90": 90.0, "last_urine_negative": 3},
            {"days": 4, "min_days_in_treatment": 270, "min_attendance_30": 95.0, "min_attendance_90": 92.0, "last_urine_negative": 4},
            {"days": 5, "min_days_in_treatment": 300, "min_attendance_30": 97.0, "min_attendance_90": 95.0, "last_urine_negative": 5},
            {"days": 6, "min_days_in_treatment": 300, "min_attendance_30": 98.0, "min_attendance_90": 97.0, "last_urine_negative": 6}
        ]
    })
}

async fn room(w: &World) -> (String, String) {
    let site = w.app.store.site_by_code("YX01").await.unwrap();
    w.app.user(&site, "manager", Role::Manager).await;
    w.app.user(&site, "cdc", Role::CdcAnalyst).await;
    (w.app.login("manager").await, w.app.login("cdc").await)
}

fn refused(s: StatusCode, r: &Value) -> (StatusCode, String, String) {
    (
        s,
        r["error"]["code"].as_str().unwrap_or_default().to_owned(),
        r["error"]["field"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn signing(app: TestApp) {
    let w = world_on(app).await;
    let (manager, cdc) = room(&w).await;
    let id = w.stable_client("YX-0201", true).await;
    let e = w.eligibility(id).await;
    assert_eq!(
        (e["days"].clone(), e["policy_version"].clone()),
        (json!(5), json!("default-2026.1"))
    );
    let today = w.app.state.today();
    let tomorrow = (today + Duration::days(1)).to_string();

    // Refusals at the field: a start in the past, a period of 7 days, overlapping tiers.
    let yesterday = (today - Duration::days(1)).to_string();
    let (s, r) = w
        .call(
            Method::POST,
            &w.police,
            "/api/v1/policy/proposals",
            Some(proposal("p-1", &yesterday)),
        )
        .await;
    assert_eq!(
        refused(s, &r),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy.effective_in_past".into(),
            "effective_from".into()
        ),
        "{r}"
    );
    let mut seven = proposal("p-1", &tomorrow);
    seven["tiers"][4]["days"] = json!(7);
    let (s, r) = w
        .call(
            Method::POST,
            &w.police,
            "/api/v1/policy/proposals",
            Some(seven),
        )
        .await;
    assert_eq!(
        refused(s, &r),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy.days_out_of_range".into(),
            "tiers[4].days".into()
        ),
        "{r}"
    );
    let mut overlap = proposal("p-1", &tomorrow);
    overlap["tiers"][2]["days"] = json!(3);
    let (s, r) = w
        .call(
            Method::POST,
            &w.police,
            "/api/v1/policy/proposals",
            Some(overlap),
        )
        .await;
    assert_eq!(
        refused(s, &r),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy.tiers_out_of_order".into(),
            "tiers[2].days".into()
        ),
        "{r}"
    );
    let mut percent = proposal("p-1", &tomorrow);
    percent["tiers"][0]["min_attendance_30"] = json!(120.0);
    let (s, r) = w
        .call(
            Method::POST,
            &w.police,
            "/api/v1/policy/proposals",
            Some(percent),
        )
        .await;
    assert_eq!(refused(s, &r).1, "policy.percent_out_of_range");

    // The police propose; the list shows the diff against the default, tier by tier.
    let (s, r) = w
        .call(
            Method::POST,
            &w.police,
            "/api/v1/policy/proposals",
            Some(proposal("yuxi-2027.1", &tomorrow)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let pid = r["id"].as_i64().unwrap();
    let (s, list) = w
        .call(Method::GET, &cdc, "/api/v1/policy/proposals", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let p = &list[0];
    assert_eq!(
        (p["state"].clone(), p["previous_version"].clone()),
        (json!("open"), json!("default-2026.1"))
    );
    assert_eq!(
        p["diff"],
        json!([
            {"days": 5, "field": "min_days_in_treatment", "from": "365", "to": "300"},
            {"days": 6, "field": "min_days_in_treatment", "from": "540", "to": "300"}
        ])
    );
    assert_eq!(w.eligibility(id).await["policy_version"], "default-2026.1");

    // Unsigned, its author's party may still edit it (here the rationale).
    let mut edited = proposal("yuxi-2027.1", &tomorrow);
    edited["rationale"] = json!("Work far away; CDC data on retention");
    let (s, r) = w
        .call(
            Method::PUT,
            &w.police,
            &format!("/api/v1/policy/proposals/{pid}"),
            Some(edited.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{r}");

    // The manager may not sign first; the police sign, not twice; a prescriber may not sign.
    let sign = |token: &str| {
        let token = token.to_owned();
        let path = format!("/api/v1/policy/proposals/{pid}/signatures");
        let w = &w;
        async move {
            w.call(
                Method::POST,
                &token,
                &path,
                Some(json!({"comment": "agreed"})),
            )
            .await
        }
    };
    let (s, r) = sign(&manager).await;
    assert_eq!(refused(s, &r).1, "policy.centre_signs_last", "{r}");
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, r) = sign(&w.police).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["state"], "signing");
    let (s, r) = sign(&w.police).await;
    assert_eq!(
        (s, r["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("policy.already_signed"))
    );
    let (s, _) = sign(&w.doctor).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Signed once, it is no longer edited.
    let (s, r) = w
        .call(
            Method::PUT,
            &w.police,
            &format!("/api/v1/policy/proposals/{pid}"),
            Some(edited),
        )
        .await;
    assert_eq!(
        (s, r["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("policy.proposal_signed"))
    );
    assert_eq!(w.eligibility(id).await["policy_version"], "default-2026.1");

    let (s, _) = sign(&cdc).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(w.eligibility(id).await["policy_version"], "default-2026.1");
    let (s, r) = sign(&manager).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // Signed by all three, but its date has not come: the default still decides.
    assert_eq!(r["state"], "signed");
    assert_eq!(r["signatures"].as_array().unwrap().len(), 3);
    assert_eq!(r["rationale"], "Work far away; CDC data on retention");
    let e = w.eligibility(id).await;
    assert_eq!(
        (e["days"].clone(), e["policy_version"].clone()),
        (json!(5), json!("default-2026.1"))
    );

    // Its day comes: the next decision names it.
    w.app.clock.advance(Duration::days(1));
    let mut w = w;
    w.doctor = w.app.login("doctor").await;
    let cdc = w.app.login("cdc").await;
    let e = w.eligibility(id).await;
    // (A day later without a dose the client's attendance fell: the version is what counts.)
    assert_eq!(e["policy_version"], "yuxi-2027.1", "{e}");
    let (_, list) = w
        .call(Method::GET, &cdc, "/api/v1/policy/proposals", None)
        .await;
    assert_eq!(list[0]["state"], "in_force");
    // The same name again is refused at the name; a new proposal supersedes, diffed against it.
    let next_day = (today + Duration::days(1)).to_string();
    let (s, r) = w
        .call(
            Method::POST,
            &cdc,
            "/api/v1/policy/proposals",
            Some(proposal("yuxi-2027.1", &next_day)),
        )
        .await;
    assert_eq!(refused(s, &r).1, "policy.version_taken", "{r}");
    let mut stricter = proposal("yuxi-2027.2", &next_day);
    stricter["tiers"][4]["min_days_in_treatment"] = json!(540);
    let (s, _) = w
        .call(
            Method::POST,
            &cdc,
            "/api/v1/policy/proposals",
            Some(stricter),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, list) = w
        .call(Method::GET, &cdc, "/api/v1/policy/proposals", None)
        .await;
    assert_eq!(list[0]["previous_version"], "yuxi-2027.1");
    assert_eq!(
        list[0]["diff"],
        json!([{"days": 6, "field": "min_days_in_treatment", "from": "300", "to": "540"}])
    );
    // Unsigned, it changes nothing.
    assert_eq!(w.eligibility(id).await["policy_version"], "yuxi-2027.1");
    w.app.cleanup().await;
}

#[tokio::test]
async fn a_proposal_decides_only_once_signed_by_all_three_and_from_its_date_on_sqlite() {
    signing(TestApp::new().await).await;
}

#[tokio::test]
async fn a_proposal_decides_only_once_signed_by_all_three_and_from_its_date_on_postgres() {
    signing(TestApp::postgres().await).await;
}

#[tokio::test]
async fn the_preview_is_suppressed_for_the_cdc_and_the_police_and_names_the_uics_to_staff() {
    let w = world().await;
    let (manager, cdc) = room(&w).await;
    let a = w.stable_client("YX-0301", true).await;
    let b = w.stable_client("YX-0302", true).await;
    // A third client without the police consent stays at 0 days under both.
    w.stable_client("YX-0303", false).await;
    assert_eq!(w.eligibility(a).await["days"], 5);
    assert_eq!(w.eligibility(b).await["days"], 5);
    let today = w.app.state.today().to_string();
    let (s, r) = w
        .call(
            Method::POST,
            &w.police,
            "/api/v1/policy/proposals",
            Some(proposal("p-2", &today)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let pid = r["id"].as_i64().unwrap();
    let path = format!("/api/v1/policy/proposals/{pid}");

    // The staff: every count, and the two UICs that gain a day.
    let (s, staff) = w.call(Method::GET, &manager, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{staff}");
    let pv = &staff["preview"];
    assert_eq!(pv["clients"]["value"], 3);
    assert_eq!(pv["changing"]["value"], 2);
    assert_eq!(pv["extra_box_days_per_week"]["value"], 2);
    assert_eq!(pv["extra_mg_per_week"]["value"], 160);
    let tier = |v: &Value, d: u64| {
        v["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["days"] == d)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            tier(pv, 5)["now"]["value"].clone(),
            tier(pv, 5)["proposed"]["value"].clone()
        ),
        (json!(2), json!(0))
    );
    assert_eq!(tier(pv, 6)["proposed"]["value"], 2);
    let uics: Vec<&str> = pv["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uic"].as_str().unwrap())
        .collect();
    assert_eq!(uics, vec!["YX-0301", "YX-0302"]);

    // The CDC and the police: no count between 1 and the threshold less one, and no UIC.
    for token in [&cdc, &w.police] {
        let (s, outside) = w.call(Method::GET, token, &path, None).await;
        assert_eq!(s, StatusCode::OK);
        let pv = &outside["preview"];
        assert!(pv["changes"].is_null());
        let mut counts = vec![
            pv["clients"].clone(),
            pv["changing"].clone(),
            pv["extra_box_days_per_week"].clone(),
            pv["extra_mg_per_week"].clone(),
        ];
        for t in pv["tiers"].as_array().unwrap() {
            counts.push(t["now"].clone());
            counts.push(t["proposed"].clone());
        }
        for c in &counts {
            match c["value"].as_i64() {
                Some(v) => assert!(v == 0 || v >= 5, "{c}"),
                None => assert_eq!(c["suppressed"], true),
            }
        }
        assert_eq!(pv["changing"]["suppressed"], true);
        assert!(!outside.to_string().contains("YX-03"));
    }
    // The CDC's page says "suppressed" in its language; the manager's lists the UICs.
    let mut cdc_page = w.app.browser("cdc", "zh-CN").await;
    let page = cdc_page.get(&format!("/takehome/proposals/{pid}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("人数过少，不予显示"));
    assert!(!page.text.contains("YX-0301"));
    let mut m = w.app.browser("manager", "en").await;
    let page = m.get(&format!("/takehome/proposals/{pid}")).await;
    assert!(page.text.contains("data-uic=\"YX-0301\""), "{}", page.text);
    // Outside the room: a prescriber may not open it.
    assert_eq!(
        w.call(Method::GET, &w.doctor, &path, None).await.0,
        StatusCode::FORBIDDEN
    );
    w.app.cleanup().await;
}

fn form(version: &str, from: &str) -> Vec<(String, String)> {
    let mut f = vec![
        ("version".to_owned(), version.to_owned()),
        ("approval_valid_days".to_owned(), "90".to_owned()),
        ("effective_from".to_owned(), from.to_owned()),
        ("rationale".to_owned(), "降低三天档门槛".to_owned()),
    ];
    let tiers: [(u8, [&str; 4]); 3] = [
        (2, ["90", "90", "85", "2"]),
        (3, ["120", "93", "90", "3"]),
        (4, ["270", "95", "92", "4"]),
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
            f.push((format!("t{d}_{name}"), v.to_owned()));
        }
    }
    f
}

fn pairs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn in_the_pages_refusals_come_back_at_the_field_and_three_signatures_close_the_version() {
    let w = world().await;
    room(&w).await;
    w.stable_client("YX-0401", true).await;
    let today = w.app.state.today();
    let mut police = w.app.browser("police", "zh-CN").await;
    assert!(police.get("/").await.text.contains("id=\"nav-proposals\""));
    let page = police.get("/takehome/proposals").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("带药政策协商室"));

    // A start in the past: refused at its field in Chinese, what was typed kept.
    let past = form("psb-2027.1", &(today - Duration::days(3)).to_string());
    let a = police.submit("/takehome/proposals", &pairs(&past)).await;
    let shown = error_at(&a.text, "effective_from").expect("an error at the start");
    assert!(shown.contains("生效日期不能早于今天"), "{shown}");
    assert!(a.text.contains("value=\"psb-2027.1\""));
    assert!(a.text.contains("降低三天档门槛"));
    // A four-day tier asking fewer tests than the three-day one: at that input, in English.
    let mut en = w.app.browser("police", "en").await;
    let mut looser = form("psb-2027.1", &today.to_string());
    looser
        .iter_mut()
        .find(|(k, _)| k == "t4_last_urine_negative")
        .unwrap()
        .1 = "1".into();
    let a = en.submit("/takehome/proposals", &pairs(&looser)).await;
    let shown = error_at(&a.text, "t4_last_urine_negative").expect("an error at the input");
    assert!(
        shown.contains("4 days may not ask less than 3 days do"),
        "{shown}"
    );

    // Proposed; the page shows the diff, the preview and the signatures to give.
    let ok = form("psb-2027.1", &today.to_string());
    let mut police = w.app.browser("police", "zh-CN").await;
    let a = police.submit("/takehome/proposals", &pairs(&ok)).await;
    assert!(a.text.contains("提案 psb-2027.1 已提交"), "{}", a.text);
    assert!(a.text.contains("id=\"proposal-preview\""));
    assert!(a.text.contains("data-field=\"min_days_in_treatment\""));
    assert!(a.text.contains("以公安身份签署"));
    let pid = w
        .call(Method::GET, &w.police, "/api/v1/policy/proposals", None)
        .await
        .1[0]["id"]
        .as_i64()
        .unwrap();
    let path = format!("/takehome/proposals/{pid}");
    let a = police
        .submit(&format!("{path}/sign"), &[("comment", "同意")])
        .await;
    assert!(a.text.contains("已以公安身份签署"), "{}", a.text);
    // Signed: the edit form is gone and an edit is refused in the page's language.
    assert!(a.text.contains("id=\"proposal-locked\""));
    let a = police.submit(&path, &pairs(&ok)).await;
    assert!(
        a.text.contains("此版本已有人签署，不能再修改"),
        "{}",
        a.text
    );
    let mut cdc = w.app.browser("cdc", "zh-CN").await;
    let a = cdc
        .submit(&format!("{path}/sign"), &[("comment", "")])
        .await;
    assert!(a.text.contains("已以疾控身份签署"));
    let mut manager = w.app.browser("manager", "en").await;
    let a = manager
        .submit(&format!("{path}/sign"), &[("comment", "for the centre")])
        .await;
    assert!(a.text.contains("Signed by all three."), "{}", a.text);
    assert!(a.text.contains("data-state=\"in_force\""));
    // The decision names it from now on; the policy page says it was signed.
    let page = manager.get("/takehome/policy").await;
    assert!(page.text.contains("psb-2027.1"), "{}", page.text);
    assert!(page.text.contains("data-signed=\"true\""));
    w.app.cleanup().await;
}

#[tokio::test]
async fn the_back_test_sets_those_a_proposal_admits_beside_those_admitted_already() {
    use anxin_domain::clinic::urine::{Outcome, Substance};
    let w = world().await;
    let (manager, cdc) = room(&w).await;
    // In force: one tier of 2 days from 500 days in treatment.
    let strict = json!({"version": "strict-1", "approval_valid_days": 60, "tiers": [
        {"days": 2, "min_days_in_treatment": 500, "min_attendance_30": 90.0, "min_attendance_90": 85.0, "last_urine_negative": 2}
    ]});
    let a = w
        .app
        .call(
            Method::PUT,
            "/api/v1/takehome/policy",
            Some(&manager),
            Some(strict),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    // One client 600 days in, admitted now; two 400 days in, admitted only by the proposal.
    let old = w.stable_client_since("YX-0501", 600, true, true).await;
    let new1 = w.stable_client_since("YX-0502", 400, true, true).await;
    w.stable_client_since("YX-0503", 400, true, true).await;
    assert_eq!(w.eligibility(old).await["days"], 2);
    assert_eq!(w.eligibility(new1).await["days"], 0);
    // The admitted client also had a positive test 100 days ago (older than the negatives).
    let today = w.app.state.today();
    let store = &w.app.store;
    let doctor = store.user_auth("doctor").await.unwrap().unwrap().user;
    let actor = anxin_storage::Actor {
        user_id: Some(doctor.id),
        name: doctor.username.clone(),
        site_id: Some(doctor.site_id),
    };
    let positive = Outcome::Tested([(Substance::Opiates, true)].into_iter().collect());
    store
        .import_history(
            &actor,
            doctor.site_id,
            &[],
            &[(old, today - Duration::days(100), positive)],
            w.app.state.now(),
        )
        .await
        .unwrap();
    let (s, r) = w
        .call(
            Method::POST,
            &w.police,
            "/api/v1/policy/proposals",
            Some(proposal("default-like", &today.to_string())),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let path = format!("/api/v1/policy/proposals/{}", r["id"]);
    let (_, page) = w.call(Method::GET, &manager, &path, None).await;
    let bt = &page["preview"]["back_test"];
    assert_eq!(bt["from"], (today - Duration::days(365)).to_string());
    assert_eq!(bt["to"], (today - Duration::days(1)).to_string());
    // Each came the last 120 days of the 365 (their orders started before the window).
    let expected = (120.0_f64 * 1000.0 / 365.0).round() / 10.0;
    assert_eq!(
        bt["newly_admitted"],
        json!({"clients": {"value": 2, "suppressed": false}, "attendance_pct": expected, "urine_negative_pct": 100.0,
               "boxes_returned_unopened": {"value": 0, "suppressed": false}, "boxes_lost": {"value": 0, "suppressed": false}})
    );
    // Six negatives and one positive: 85.7%.
    assert_eq!(bt["already_admitted"]["clients"]["value"], 1);
    assert_eq!(bt["already_admitted"]["attendance_pct"], expected);
    assert_eq!(bt["already_admitted"]["urine_negative_pct"], 85.7);
    // The CDC: groups of one and two are suppressed, their figures hidden with them.
    let (_, page) = w.call(Method::GET, &cdc, &path, None).await;
    let bt = &page["preview"]["back_test"];
    for g in ["newly_admitted", "already_admitted"] {
        assert_eq!(
            bt[g],
            json!({"clients": {"value": null, "suppressed": true}, "attendance_pct": null, "urine_negative_pct": null,
                   "boxes_returned_unopened": {"value": null, "suppressed": true}, "boxes_lost": {"value": null, "suppressed": true}}),
            "{g}"
        );
    }
    let mut m = w.app.browser("manager", "zh-CN").await;
    let page = m.get(&path.replace("/api/v1/policy", "/takehome")).await;
    assert!(page.text.contains("回测：过去十二个月"), "{}", page.text);
    assert!(page.text.contains("data-pct=\"85.7\""));
    w.app.cleanup().await;
}
