//! The intake wizard: three short steps for a new client — (1) who they are and their legal
//! stage, written at once by [`anxin_app::intake::enrol`]; (2) the treatment agreement;
//! (3) the consents. Steps 2 and 3 are the client page's own forms, which come back here when
//! they were sent from the wizard, so each rule is written once. Step 2 also takes the client's
//! photo ([`crate::photos`]).

use std::collections::BTreeMap;

use anxin_domain::clinic::stage::{Stage, ORDER_YEARS};
use anxin_domain::{Access, Code, Permission, Problem};
use axum::extract::{Form, Path, State};
use axum::response::Response;
use maud::{html, Markup};

use crate::auth::CurrentUser;
use crate::clinic_web::{agreement_section, consent_form};
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{field_error, flash, form_notice, layout, refused_form, Flash, WebResult, T};

/// The fields of step 1, in the order of the form.
pub(crate) const FIELDS: [&str; 11] = [
    "uic",
    "name",
    "national_id",
    "phone",
    "sex",
    "birth_year",
    "enrolled_on",
    "stage",
    "order_start",
    "order_end",
    "address",
];

/// The value the wizard marks its forms with, so that the client page's handlers send the
/// browser back into the wizard.
pub(crate) const THEN: &str = "intake";

/// Where a client-page form sent from the wizard goes back to: the step it belongs to.
pub(crate) fn step_path(client_id: &str, step: &str) -> String {
    format!("/clients/{client_id}/intake/{step}")
}

/// The numbered steps, the current one marked.
fn steps(t: &T<'_>, current: u8) -> Markup {
    html! {
        ol.steps aria-label=(t.s("intake-steps")) {
            @for (n, id) in [(1u8, "intake-step-who"), (2, "intake-step-agreement"), (3, "intake-step-consents")] {
                li class=[(n == current).then_some("current")] aria-current=[(n == current).then_some("step")] { (t.s(id)) }
            }
        }
    }
}

async fn intake_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let v = |field: &str| f.value("intake", field).unwrap_or_default().to_owned();
    let today = st.today().to_string();
    let chosen_stage = f.value("intake", "stage").unwrap_or("voluntary").to_owned();
    let chosen_sex = f.value("intake", "sex").unwrap_or("unknown").to_owned();
    let input = |field: &str, label: &str, kind: &str, value: String, required: bool| {
        html! {
            label { (t.s(label))
                input name=(field) type=(kind) value=(value) required[required] aria-invalid=[f.error_at("intake", field).map(|_| "true")];
                (field_error(&f, "intake", field))
            }
        }
    };
    Ok(layout(
        &t,
        &t.s("intake-title"),
        Some(&me),
        html! {
            h1 { (t.s("intake-title")) }
            (steps(&t, 1))
            (flash(&f))
            form method="post" action="/intake" id="intake-form" {
                input type="hidden" name="csrf" value=(me.csrf_token);
                (form_notice(&f, "intake", &FIELDS))
                fieldset {
                    legend { (t.s("intake-who")) }
                    (input("uic", "clients-uic", "text", v("uic"), true))
                    (input("name", "client-name", "text", v("name"), true))
                    (input("national_id", "client-national-id", "text", v("national_id"), false))
                    (input("phone", "client-phone", "tel", v("phone"), false))
                    p.muted { (t.s("intake-phone-help")) }
                    label { (t.s("client-sex")) select name="sex" {
                        @for s in ["unknown", "male", "female"] { option value=(s) selected[chosen_sex == s] { (t.s(&format!("client-sex-{s}"))) } }
                    } (field_error(&f, "intake", "sex")) }
                    (input("birth_year", "client-birth-year", "number", v("birth_year"), false))
                    (input("address", "client-address", "text", v("address"), false))
                }
                fieldset {
                    legend { (t.s("intake-treatment")) }
                    (input("enrolled_on", "clients-enrolled", "date", f.value("intake", "enrolled_on").map(str::to_owned).unwrap_or(today), true))
                    label { (t.s("client-stage")) select name="stage" {
                        @for s in Stage::ALL { option value=(s.as_str()) selected[chosen_stage == s.as_str()] { (t.s(&format!("stage-{}", s.as_str()))) } }
                    } (field_error(&f, "intake", "stage")) }
                    p.muted { (t.a("intake-order-help", &[("years", &ORDER_YEARS.to_string())])) }
                    (input("order_start", "client-term-start", "date", v("order_start"), false))
                    (input("order_end", "client-term-end", "date", v("order_end"), false))
                }
                button type="submit" { (t.s("intake-next")) }
            }
        },
    ))
}

async fn intake_submit(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let get = |k: &str| {
        f.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let values: Vec<(String, String)> = FIELDS
        .iter()
        .filter_map(|k| f.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    let birth_year = match get("birth_year").map(|y| y.parse::<i32>()) {
        None => None,
        Some(Ok(y)) => Some(y),
        Some(Err(_)) => {
            let p = Problem::new(Code::NumberInvalid)
                .field("birth_year")
                .arg("value", get("birth_year").unwrap_or_default());
            return refused_form(&st, "/intake", "intake", p.into(), values);
        }
    };
    let req = anxin_app::intake::IntakeRequest {
        uic: get("uic").unwrap_or_default(),
        enrolled_on: get("enrolled_on"),
        name: get("name"),
        national_id: get("national_id"),
        phone: get("phone"),
        address: get("address"),
        sex: get("sex"),
        birth_year,
        stage: get("stage"),
        order_start: get("order_start"),
        order_end: get("order_end"),
    };
    match anxin_app::intake::enrol(&st.app, &me.app_actor(), &req).await {
        Ok(c) => crate::flash::redirect(
            &step_path(&c.id.to_string(), "agreement"),
            crate::flash::Tone::Ok,
            crate::flash::Message::Id {
                id: "intake-enrolled".into(),
                args: vec![("uic".into(), c.uic.clone())],
            },
        ),
        Err(e) => refused_form(&st, "/intake", "intake", e.into(), values),
    }
}

async fn step_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path((id, step)): Path<(String, String)>,
    f: Flash,
) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let cid = anxin_app::parse_id(&id).map_err(crate::error::AppError::from)?;
    let papers = anxin_app::intake::papers(&st.app, &me.app_actor(), cid).await?;
    let c = &papers.client;
    let consents_step = match step.as_str() {
        "agreement" => false,
        "consents" => true,
        _ => {
            return Err(
                crate::error::AppError::from(anxin_domain::DomainError::NotFound(format!(
                    "intake step {step}"
                )))
                .into(),
            )
        }
    };
    let body = if consents_step {
        let today = st.today();
        html! {
            (steps(&t, 3))
            (flash(&f))
            section.card id="consents" {
                h2 { (t.s("client-consents")) }
                p.muted { (t.s("intake-consents-help")) }
                ul id="intake-consents" { @for x in &papers.consents { li data-consent=(x.purpose) { (crate::clinic_web::consent_purpose(&t, &x.purpose)) " " (x.given_on) " – " (x.expires_on) @if x.active_on(today) { " ✓" } } } }
                (consent_form(&t, &me, c, &f, Some(THEN)))
            }
            p { a.button href={"/clients/" (c.id)} id="intake-done" { (t.s("intake-done")) } }
        }
    } else {
        let photo = crate::photos::section(&t, &me, c.id, &f, Some(THEN)).await?;
        html! {
            (steps(&t, 2))
            (flash(&f))
            (photo)
            (agreement_section(&t, &me, c, &f, &papers.agreements, Some(THEN)))
            p { a.button href=(step_path(&id, "consents")) id="intake-next" { (t.s("intake-next")) } }
        }
    };
    Ok(layout(
        &t,
        &t.s("intake-title"),
        Some(&me),
        html! {
            h1 { (t.s("intake-title")) " · " (c.uic) }
            (body)
        },
    ))
}

/// Adds the wizard's pages.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(Get, "/intake", Needs(ClientWrite), "Intake: a new client"),
            intake_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/intake",
                Needs(ClientWrite),
                "Intake: enrol with identity and stage",
            ),
            intake_submit,
        )
        .add(
            RouteSpec::web(
                Get,
                "/clients/{id}/intake/{step}",
                Needs(ClientWrite),
                "Intake: agreement and consents of a new client",
            ),
            step_page,
        )
}
