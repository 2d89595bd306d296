//! The intake assessment on the client's page (`#assessment`: the current version and the form
//! that adds the next), the interaction warnings beside the order form
//! (`#interaction-warnings`: one line per current medicine that changes methadone levels), and
//! the API (`GET/POST /api/v1/clients/{id}/assessments`), over [`anxin_app::assessment`].

use std::collections::BTreeMap;

use anxin_app::assessment::{self as uc, AssessmentRequest, AssessmentView};
use anxin_app::records::StoredAssessment;
use anxin_domain::clinic::assessment::{
    Medicine, MedicineClass, PreviousTreatment, Route, Status, Substance,
};
use anxin_domain::clinic::interactions::{self, Effect};
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
use crate::web::{field_error, form_notice, refused_form, Flash, T};

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
                        input name="age_first_use" type="number" min="5" max="80" value=(if refused { typed("age_first_use").unwrap_or_default() } else { a.and_then(|a| a.age_first_use).map(|x| x.to_string()).unwrap_or_default() }) aria-invalid=[invalid("age_first_use")];
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
    let done = match req {
        Err(p) => Err(p.into()),
        Ok(req) => match anxin_app::parse_id(&id) {
            Ok(cid) => uc::record(&st.app, &me.app_actor(), cid, &req)
                .await
                .map_err(Into::into),
            Err(e) => Err(e.into()),
        },
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

/// Adds the assessment's form and API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(RouteSpec::web(Post, "/clients/{id}/assessment", Needs(AssessmentRecord), "Record the intake assessment"), form_record)
        .add(RouteSpec::api(Get, "/api/v1/clients/{id}/assessments", Needs(ClinicalRead), "clinic", "A client's intake assessments, the current one first, each with the medicines that change methadone levels").answers::<Vec<AssessmentView>>(), api_list)
        .add(RouteSpec::api(Post, "/api/v1/clients/{id}/assessments", Needs(AssessmentRecord), "clinic", "Record a new version of the intake assessment (the older ones are kept)").answers::<AssessmentView>().body::<AssessmentRequest>().status(201), api_record)
}
