//! The intake assessment on the client's page (`#assessment`: the current version and the form
//! that adds the next), the interaction warnings beside the order form
//! (`#interaction-warnings`: one line per current medicine that changes methadone levels), and
//! the API (`GET/POST /api/v1/clients/{id}/assessments`), over [`anxin_app::assessment`]; and
//! the outcomes section (`#outcomes`: overdose events and a death, each recorded by a form, the
//! death ending the treatment) with its API (`POST /api/v1/clients/{id}/overdoses`,
//! `POST /api/v1/clients/{id}/death`), over [`anxin_app::outcomes`].

use std::collections::BTreeMap;

use anxin_app::assessment::{self as uc, AssessmentRequest, AssessmentView};
use anxin_app::outcomes::{DeathRequest, OutcomeRecorded, OverdoseRequest};
use anxin_app::records::{Death, Overdose, StoredAssessment};
use anxin_domain::clinic::assessment::{
    Medicine, MedicineClass, PreviousTreatment, Route, Status, Substance,
};
use anxin_domain::clinic::interactions::{self, Effect};
use anxin_domain::clinic::outcomes::{DeathCause, OverdoseOutcome};
use anxin_domain::{Access, Permission};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use maud::{html, Markup};

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::flash::{self, Message, Tone};
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{field_error, form_notice, on_path_id, refused_form, Flash, T};

/// The form's id in the flash.
const FORM: &str = "assessment";

/// The fields a refusal may name.
const FIELDS: [&str; 8] = [
    "substances",
    "main_route",
    "ever_injected",
    "age_first_use",
    "previous_treatment",
    "hiv",
    "hcv",
    "medicines",
];

fn yes_no(t: &T<'_>, b: bool) -> String {
    t.s(if b { "assessment-yes" } else { "assessment-no" })
}

fn list(t: &T<'_>, items: Vec<String>) -> String {
    if items.is_empty() {
        t.s("assessment-none-listed")
    } else {
        items.join("、")
    }
}

/// The `#assessment` section: the current assessment and, for those who record it, the form.
pub(crate) fn section(
    t: &T<'_>,
    me: &CurrentUser,
    client_id: i64,
    assessments: &[StoredAssessment],
    f: &Flash,
) -> Markup {
    let current = assessments.first();
    let refused = f.refused(FORM);
    let typed = |field: &str| f.value(FORM, field).map(str::to_owned);
    let checked = |field: &str, stored: bool| {
        if refused {
            typed(field).is_some()
        } else {
            stored
        }
    };
    let chosen = |field: &str, stored: Option<&'static str>| -> String {
        if refused {
            typed(field).unwrap_or_default()
        } else {
            stored.unwrap_or_default().to_owned()
        }
    };
    let a = current.map(|c| &c.assessment);
    let invalid = |field: &str| f.error_at(FORM, field).map(|_| "true");
    html! {
        section.card id="assessment" {
            h2 { (t.s("assessment-title")) }
            @match current {
                None => p.muted id="assessment-none" { (t.s("assessment-none")) },
                Some(s) => {
                    @let a = &s.assessment;
                    dl id="assessment-current" data-version=(s.version) {
                        dt { (t.s("assessment-substances")) } dd data-field="substances" { (list(t, a.substances.iter().map(|x| t.s(&format!("assessment-substance-{}", x.as_str()))).collect())) }
                        dt { (t.s("assessment-main-route")) } dd data-field="main_route" { (t.s(&format!("assessment-route-{}", a.main_route.as_str()))) }
                        dt { (t.s("assessment-ever-injected")) } dd data-field="ever_injected" { (yes_no(t, a.ever_injected)) }
                        dt { (t.s("assessment-age-first-use")) } dd data-field="age_first_use" { @if let Some(age) = a.age_first_use { (age) } @else { "–" } }
                        dt { (t.s("assessment-previous-treatment")) } dd data-field="previous_treatment" { (t.s(&format!("assessment-previous-{}", a.previous_treatment.as_str()))) }
                        dt { (t.s("assessment-hiv")) } dd data-field="hiv" { (t.s(&format!("assessment-status-{}", a.hiv.as_str()))) }
                        dt { (t.s("assessment-hcv")) } dd data-field="hcv" { (t.s(&format!("assessment-status-{}", a.hcv.as_str()))) }
                        dt { (t.s("assessment-arv")) } dd data-field="arv" { (list(t, a.arv().iter().map(|m| t.s(&format!("medicine-{}", m.as_str()))).collect())) }
                        dt { (t.s("assessment-medicines")) } dd data-field="medicines" { (list(t, a.medicines.iter().filter(|m| m.class() == MedicineClass::Other).map(|m| t.s(&format!("medicine-{}", m.as_str()))).collect())) }
                    }
                    p.muted id="assessment-recorded" { (t.a("assessment-recorded", &[
                        ("version", &s.version.to_string()),
                        ("by", s.recorded_by.as_deref().unwrap_or("–")),
                        ("at", &s.recorded_at.with_timezone(&t.st.app.settings.utc_offset).format("%Y-%m-%d %H:%M").to_string()),
                    ])) }
                    @if assessments.len() > 1 {
                        p.muted id="assessment-earlier" { (t.a("assessment-earlier", &[("n", &(assessments.len() - 1).to_string())])) }
                    }
                }
            }
            @if me.role().has(Permission::AssessmentRecord) {
                form method="post" action={"/clients/" (client_id) "/assessment"} id="assessment-form" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(f, FORM, &FIELDS))
                    fieldset id="assessment-substances" aria-invalid=[invalid("substances")] {
                        legend { (t.s("assessment-substances")) }
                        @for s in Substance::ALL {
                            @let name = format!("substance_{}", s.as_str());
                            label.inline { input type="checkbox" name=(name) value="true" checked[checked(&name, a.is_some_and(|a| a.substances.contains(s)))]; " " (t.s(&format!("assessment-substance-{}", s.as_str()))) }
                        }
                        (field_error(f, FORM, "substances"))
                    }
                    label { (t.s("assessment-main-route")) select name="main_route" aria-invalid=[invalid("main_route")] {
                        @let v = chosen("main_route", a.map(|a| a.main_route.as_str()));
                        @for r in Route::ALL { option value=(r.as_str()) selected[v == r.as_str()] { (t.s(&format!("assessment-route-{}", r.as_str()))) } }
                    } (field_error(f, FORM, "main_route")) }
                    label.inline { input type="checkbox" name="ever_injected" value="true" checked[checked("ever_injected", a.is_some_and(|a| a.ever_injected))]; " " (t.s("assessment-ever-injected")) (field_error(f, FORM, "ever_injected")) }
                    label { (t.s("assessment-age-first-use"))
                        input name="age_first_use" type="number" value=(if refused { typed("age_first_use").unwrap_or_default() } else { a.and_then(|a| a.age_first_use).map(|x| x.to_string()).unwrap_or_default() }) aria-invalid=[invalid("age_first_use")];
                        (field_error(f, FORM, "age_first_use")) }
                    label { (t.s("assessment-previous-treatment")) select name="previous_treatment" aria-invalid=[invalid("previous_treatment")] {
                        @let v = chosen("previous_treatment", a.map(|a| a.previous_treatment.as_str()));
                        @for p in PreviousTreatment::ALL { option value=(p.as_str()) selected[v == p.as_str()] { (t.s(&format!("assessment-previous-{}", p.as_str()))) } }
                    } (field_error(f, FORM, "previous_treatment")) }
                    @for (field, label, stored) in [("hiv", "assessment-hiv", a.map(|a| a.hiv.as_str())), ("hcv", "assessment-hcv", a.map(|a| a.hcv.as_str()))] {
                        label { (t.s(label)) select name=(field) aria-invalid=[invalid(field)] {
                            @let v = chosen(field, stored.or(Some("unknown")));
                            @for s in Status::ALL { option value=(s.as_str()) selected[v == s.as_str()] { (t.s(&format!("assessment-status-{}", s.as_str()))) } }
                        } (field_error(f, FORM, field)) }
                    }
                    @for (legend, class) in [("assessment-arv", MedicineClass::Arv), ("assessment-medicines", MedicineClass::Other)] {
                        fieldset.medicines data-class=(if class == MedicineClass::Arv { "arv" } else { "other" }) {
                            legend { (t.s(legend)) }
                            @for m in Medicine::ALL.iter().filter(|m| m.class() == class) {
                                @let name = format!("medicine_{}", m.as_str());
                                label.inline { input type="checkbox" name=(name) value="true" checked[checked(&name, a.is_some_and(|a| a.medicines.contains(m)))]; " " (t.s(&format!("medicine-{}", m.as_str()))) }
                            }
                        }
                    }
                    (field_error(f, FORM, "medicines"))
                    button type="submit" { (t.s("assessment-save")) }
                }
            }
        }
    }
}

/// The warnings beside the order form: one line per medicine of the current assessment that
/// changes methadone levels; nothing when there is none.
pub(crate) fn warnings(t: &T<'_>, assessments: &[StoredAssessment]) -> Markup {
    let found = assessments
        .first()
        .map(|s| interactions::among(&s.assessment.medicines))
        .unwrap_or_default();
    html! {
        @if !found.is_empty() {
            div.notice id="interaction-warnings" role="alert" {
                strong { (t.s("interaction-title")) }
                ul {
                    @for i in &found {
                        @let drug = t.s(&format!("medicine-{}", i.medicine.as_str()));
                        li data-drug=(i.medicine.as_str()) data-effect=(i.effect.as_str()) {
                            (t.a(match i.effect { Effect::Lowers => "interaction-lowers", Effect::Raises => "interaction-raises" }, &[("drug", &drug)]))
                        }
                    }
                }
            }
        }
    }
}

/// The form's values as a request, and what was typed (to keep it on a refusal).
fn request(
    f: &BTreeMap<String, String>,
) -> (
    Result<AssessmentRequest, anxin_domain::Problem>,
    Vec<(String, String)>,
) {
    let values: Vec<(String, String)> = f
        .iter()
        .filter(|(k, _)| k.as_str() != "csrf" && k.as_str() != "once")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let age = get("age_first_use");
    let age_first_use = if age.is_empty() {
        None
    } else {
        match age.parse::<i32>() {
            Ok(a) => Some(a),
            Err(_) => {
                return (
                    Err(
                        anxin_domain::Problem::new(anxin_domain::Code::NumberInvalid)
                            .field("age_first_use")
                            .arg("value", age),
                    ),
                    values,
                )
            }
        }
    };
    let picked = |prefix: &str| -> Vec<String> {
        f.keys()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
            .collect()
    };
    let req = AssessmentRequest {
        substances: picked("substance_"),
        main_route: get("main_route"),
        ever_injected: f.contains_key("ever_injected"),
        age_first_use,
        previous_treatment: get("previous_treatment"),
        hiv: get("hiv"),
        hcv: get("hcv"),
        medicines: picked("medicine_"),
    };
    (Ok(req), values)
}

async fn form_record(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let base = format!("/clients/{id}");
    let (req, values) = request(&f);
    let actor = me.app_actor();
    let done = match req {
        Err(p) => Err(p.into()),
        Ok(req) => on_path_id(&id, |cid| uc::record(&st.app, &actor, cid, &req)).await,
    };
    match done {
        Ok(_) => flash::redirect(
            &base,
            Tone::Ok,
            Message::Id {
                id: "assessment-saved".into(),
                args: vec![],
            },
        ),
        Err(e) => refused_form(&st, &base, FORM, e, values),
    }
}

async fn api_list(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<AssessmentView>>> {
    let id = anxin_app::parse_id(&id)?;
    Ok(Json(uc::list(&st.app, &me.app_actor(), id).await?))
}

async fn api_record(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssessmentRequest>,
) -> AppResult<(StatusCode, Json<AssessmentView>)> {
    let id = anxin_app::parse_id(&id)?;
    let v = uc::record(&st.app, &me.app_actor(), id, &req).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// The `#outcomes` section: overdose events and a death, and for those who change a client's
/// course, the forms that record them (a box out must be confirmed before a death ends it).
pub(crate) fn outcomes_section(
    t: &T<'_>,
    me: &CurrentUser,
    client_id: i64,
    overdoses: &[Overdose],
    death: Option<&Death>,
    boxes_out: &[String],
    f: &Flash,
) -> Markup {
    let today = t.st.today().to_string();
    let write = me.role().has(Permission::ClientWrite);
    let v = |form: &str, field: &str| f.value(form, field).map(str::to_owned);
    let invalid = |form: &str, field: &str| f.error_at(form, field).map(|_| "true");
    html! {
        section.card id="outcomes" {
            h2 { (t.s("outcome-title")) }
            @if let Some(d) = death {
                p.notice id="death" data-cause=(d.cause.as_str()) { (t.a("outcome-died", &[("day", &d.died_on.to_string()), ("cause", &t.s(&format!("outcome-cause-{}", d.cause.as_str())))])) }
            }
            @if overdoses.is_empty() {
                p.muted id="overdoses-none" { (t.s("outcome-no-overdose")) }
            } @else {
                table.list id="overdoses" {
                    thead { tr { th { (t.s("outcome-day")) } th { (t.s("outcome-naloxone")) } th { (t.s("outcome-how")) } } }
                    tbody { @for o in overdoses { tr data-overdose=(o.id) data-outcome=(o.outcome.as_str()) {
                        td { (o.occurred_on) } td { (yes_no(t, o.naloxone)) } td { (t.s(&format!("outcome-overdose-{}", o.outcome.as_str()))) }
                    } } }
                }
            }
            @if write && death.is_none() {
                form method="post" action={"/clients/" (client_id) "/overdoses"} id="overdose-form" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(f, "overdose", &["on", "naloxone", "outcome", "confirm_box_out"]))
                    label { (t.s("outcome-day")) input name="on" type="date" max=(today) value=(v("overdose", "on").unwrap_or_else(|| today.clone())) aria-invalid=[invalid("overdose", "on")]; (field_error(f, "overdose", "on")) }
                    label.inline { input type="checkbox" name="naloxone" value="true" checked[v("overdose", "naloxone").is_some()]; " " (t.s("outcome-naloxone")) }
                    label { (t.s("outcome-how")) select name="outcome" aria-invalid=[invalid("overdose", "outcome")] {
                        @let chosen = v("overdose", "outcome").unwrap_or_default();
                        @for o in OverdoseOutcome::ALL { option value=(o.as_str()) selected[chosen == o.as_str()] { (t.s(&format!("outcome-overdose-{}", o.as_str()))) } }
                    } (field_error(f, "overdose", "outcome")) }
                    @if !boxes_out.is_empty() {
                        label.check { input type="checkbox" name="confirm_box_out" value="true"; " " (t.s("client-discharge-confirm-box")) (field_error(f, "overdose", "confirm_box_out")) }
                    }
                    button type="submit" { (t.s("outcome-overdose-record")) }
                }
                form method="post" action={"/clients/" (client_id) "/death"} id="death-form" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(f, "death", &["on", "cause", "confirm_box_out"]))
                    p.muted { (t.s("outcome-death-help")) }
                    label { (t.s("outcome-death-day")) input name="on" type="date" max=(today) value=(v("death", "on").unwrap_or_else(|| today.clone())) aria-invalid=[invalid("death", "on")]; (field_error(f, "death", "on")) }
                    label { (t.s("outcome-cause")) select name="cause" aria-invalid=[invalid("death", "cause")] {
                        @let chosen = v("death", "cause").unwrap_or_default();
                        @for c in DeathCause::ALL { option value=(c.as_str()) selected[chosen == c.as_str()] { (t.s(&format!("outcome-cause-{}", c.as_str()))) } }
                    } (field_error(f, "death", "cause")) }
                    @for serial in boxes_out {
                        p.notice.box-out role="alert" { (t.a("client-discharge-box-out", &[("serial", serial)])) }
                    }
                    @if !boxes_out.is_empty() {
                        label.check { input type="checkbox" name="confirm_box_out" value="true"; " " (t.s("client-discharge-confirm-box")) (field_error(f, "death", "confirm_box_out")) }
                    }
                    button type="submit" { (t.s("outcome-death-record")) }
                }
            }
        }
    }
}

fn kept(f: &BTreeMap<String, String>) -> Vec<(String, String)> {
    f.iter()
        .filter(|(k, _)| k.as_str() != "csrf" && k.as_str() != "once")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn form_overdose(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let base = format!("/clients/{id}");
    let req = OverdoseRequest {
        on: f.get("on").cloned(),
        naloxone: f.contains_key("naloxone"),
        outcome: f.get("outcome").cloned().unwrap_or_default(),
        confirm_box_out: f.contains_key("confirm_box_out"),
    };
    let actor = me.app_actor();
    let done = on_path_id(&id, |cid| {
        anxin_app::outcomes::overdose(&st.app, &actor, cid, &req)
    })
    .await;
    match done {
        Ok(r) => flash::redirect(
            &base,
            Tone::Ok,
            Message::Id {
                id: if r.death {
                    "outcome-death-recorded"
                } else {
                    "outcome-overdose-recorded"
                }
                .into(),
                args: vec![],
            },
        ),
        Err(e) => refused_form(&st, &base, "overdose", e, kept(&f)),
    }
}

async fn form_death(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let base = format!("/clients/{id}");
    let req = DeathRequest {
        on: f.get("on").cloned(),
        cause: f.get("cause").cloned().unwrap_or_default(),
        confirm_box_out: f.contains_key("confirm_box_out"),
    };
    let actor = me.app_actor();
    let done = on_path_id(&id, |cid| {
        anxin_app::outcomes::death(&st.app, &actor, cid, &req)
    })
    .await;
    match done {
        Ok(_) => flash::redirect(
            &base,
            Tone::Ok,
            Message::Id {
                id: "outcome-death-recorded".into(),
                args: vec![],
            },
        ),
        Err(e) => refused_form(&st, &base, "death", e, kept(&f)),
    }
}

async fn api_overdose(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<OverdoseRequest>,
) -> AppResult<(StatusCode, Json<OutcomeRecorded>)> {
    let id = anxin_app::parse_id(&id)?;
    let r = anxin_app::outcomes::overdose(&st.app, &me.app_actor(), id, &req).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

async fn api_death(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DeathRequest>,
) -> AppResult<(StatusCode, Json<OutcomeRecorded>)> {
    let id = anxin_app::parse_id(&id)?;
    let r = anxin_app::outcomes::death(&st.app, &me.app_actor(), id, &req).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// Adds the assessment's and the outcomes' form and API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(RouteSpec::web(Post, "/clients/{id}/overdoses", Needs(ClientWrite), "Record an overdose event"), form_overdose)
        .add(RouteSpec::web(Post, "/clients/{id}/death", Needs(ClientWrite), "Record a death (the treatment ends)"), form_death)
        .add(RouteSpec::api(Post, "/api/v1/clients/{id}/overdoses", Needs(ClientWrite), "clinic", "Record an overdose event (day, naloxone, outcome); one that ended in death records the death and ends the treatment").answers::<OutcomeRecorded>().body::<OverdoseRequest>().status(201), api_overdose)
        .add(RouteSpec::api(Post, "/api/v1/clients/{id}/death", Needs(ClientWrite), "clinic", "Record a client's death with its cause: the client is discharged and any box out ends, as a discharge does").answers::<OutcomeRecorded>().body::<DeathRequest>().status(201), api_death)
        .add(RouteSpec::web(Post, "/clients/{id}/assessment", Needs(AssessmentRecord), "Record the intake assessment"), form_record)
        .add(RouteSpec::api(Get, "/api/v1/clients/{id}/assessments", Needs(ClinicalRead), "clinic", "A client's intake assessments, the current one first, each with the medicines that change methadone levels").answers::<Vec<AssessmentView>>(), api_list)
        .add(RouteSpec::api(Post, "/api/v1/clients/{id}/assessments", Needs(AssessmentRecord), "clinic", "Record a new version of the intake assessment (the older ones are kept)").answers::<AssessmentView>().body::<AssessmentRequest>().status(201), api_record)
}
