//! Police e-referral, pages and API. The officer's `/psb/referrals`: issue a referral (the
//! answer is the paper slip with its code, shown this once), the station's referrals with only
//! their state words and days, and the station's figures. The centre's `/police-referrals`: a
//! person hands in their code and agrees that the police be told (refusals at the field), and
//! the referrals waiting for enrolment, each enrolled by the client's UIC; and the receipt of
//! voluntary registration (Anti-Drug Law art. 62) printed for a client. Rules and privacy in
//! the core's `referrals` module.

use std::collections::HashMap;

use anxin_app::referrals::{
    self as uc, ArrivedRequest, EnrolRequest, IssuedReferral, ReferralView, StationView,
    WaitingReferral,
};
use anxin_domain::{Access, Permission};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use maud::{html, Markup, DOCTYPE};

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::flash::{self, Message, Tone};
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{
    field_error, flash, form_error, form_notice, layout, on_path_id, refused_form, Flash,
    WebResult, T,
};

/// The arrival form's id.
const FORM: &str = "referral";

fn state_word(t: &T<'_>, state: &str) -> String {
    t.s(&format!("pref-state-{state}"))
}

fn figure(t: &T<'_>, f: &uc::Figure) -> String {
    match f.value {
        Some(v) => v.to_string(),
        None => t.s("pref-suppressed"),
    }
}

async fn station_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let v: StationView = uc::station(&st.app, &me.app_actor()).await?;
    let fig = &v.figures;
    Ok(layout(
        &t,
        &t.s("pref-title"),
        Some(&me),
        html! {
            h1 { (t.s("pref-title")) }
            (flash(&f))
            p.muted { (t.s("pref-help")) }
            form method="post" action="/psb/referrals" id="referral-issue" {
                input type="hidden" name="csrf" value=(me.csrf_token);
                button type="submit" { (t.s("pref-issue")) }
            }
            section.card id="station-figures" {
                h2 { (t.s("pref-figures")) }
                dl {
                    dt { (t.s("pref-referred")) } dd data-figure="referred" { (fig.referred) }
                    dt { (t.s("pref-arrived")) } dd data-figure="arrived" { (fig.arrived) }
                    dt { (t.s("pref-enrolled")) } dd data-figure="enrolled" { (fig.enrolled) }
                    dt { (t.s("pref-retained-3m")) } dd data-figure="retained_3m" { (figure(&t, &fig.retained_3m)) " / " (figure(&t, &fig.enrolled_3m)) }
                    dt { (t.s("pref-retained-6m")) } dd data-figure="retained_6m" { (figure(&t, &fig.retained_6m)) " / " (figure(&t, &fig.enrolled_6m)) }
                    dt { (t.s("pref-boxes-at-home")) } dd data-figure="boxes_at_home" { (figure(&t, &fig.boxes_at_home)) " / " (figure(&t, &fig.boxes_tracked)) }
                    dt { (t.s("pref-days-to-answer")) } dd data-figure="days_to_answer" { @match fig.mean_days_to_answer { Some(d) => (format!("{d:.1}")), None => (t.s("pref-suppressed")) } }
                }
                p.muted { (t.a("pref-threshold", &[("n", &fig.threshold.to_string())])) }
            }
            h2 { (t.s("pref-list")) }
            @if v.referrals.is_empty() { p.muted { (t.s("pref-none")) } } @else {
                table.list id="station-referrals" {
                    thead { tr { th { "#" } th { (t.s("pref-issued-on")) } th { (t.s("pref-state")) } th { (t.s("pref-arrived-on")) } th { (t.s("pref-enrolled-on")) } } }
                    tbody { @for r in &v.referrals {
                        tr data-referral=(r.id) data-state=(r.state) {
                            td { (r.id) } td { (r.issued_on) } td { (state_word(&t, &r.state)) }
                            td { @if let Some(d) = r.arrived_on { (d) } } td { @if let Some(d) = r.enrolled_on { (d) } }
                        }
                    } }
                }
            }
        },
    ))
}

/// The slip the officer prints for the person: the code, and what happens with it.
fn slip(t: &T<'_>, me: &CurrentUser, r: &IssuedReferral) -> Markup {
    layout(
        t,
        &t.s("pref-slip-title"),
        Some(me),
        html! {
            h1 { (t.s("pref-slip-title")) }
            p.flash.ok role="status" { (t.s("pref-issued")) }
            section.card.slip id="referral-slip" {
                p.code id="referral-code" { (r.code) }
                p { (t.a("pref-slip-issued", &[("day", &r.issued_on.to_string()), ("id", &r.id.to_string())])) }
                p { (t.s("pref-slip-text")) }
            }
            p { button type="button" data-print="" { (t.s("card-print")) } " " a href="/psb/referrals" { (t.s("pref-back")) } }
        },
    )
}

async fn issue_form(State(st): State<AppState>, me: CurrentUser) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let r = uc::issue(&st.app, &me.app_actor()).await?;
    Ok(slip(&t, &me, &r))
}

async fn centre_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let waiting: Vec<WaitingReferral> = uc::waiting(&st.app, &me.app_actor()).await?;
    let v = |field: &str| f.value(FORM, field).map(str::to_owned).unwrap_or_default();
    let invalid = |field: &str| f.error_at(FORM, field).map(|_| "true");
    Ok(layout(
        &t,
        &t.s("pref-centre-title"),
        Some(&me),
        html! {
            h1 { (t.s("pref-centre-title")) }
            (flash(&f))
            p.muted { (t.s("pref-centre-help")) }
            section.card {
                h2 { (t.s("pref-arrival")) }
                form method="post" action="/police-referrals/arrived" id="referral-form" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, FORM, &["code", "consent"]))
                    label { (t.s("pref-code")) input name="code" id="referral-code-input" value=(v("code")) required autocomplete="off" aria-invalid=[invalid("code")]; (field_error(&f, FORM, "code")) }
                    label.check { input type="checkbox" name="consent" value="yes" checked[v("consent") == "yes"]; " " (t.s("pref-consent")) (field_error(&f, FORM, "consent")) }
                    button type="submit" { (t.s("pref-mark-arrived")) }
                }
            }
            h2 { (t.s("pref-waiting")) }
            @if waiting.is_empty() { p.muted id="referrals-waiting-none" { (t.s("pref-none")) } } @else {
                table.list id="referrals-waiting" {
                    thead { tr { th { "#" } th { (t.s("pref-issued-on")) } th { (t.s("pref-arrived-on")) } th { (t.s("pref-enrol")) } } }
                    tbody { @for r in &waiting {
                        tr data-referral=(r.id) {
                            td { (r.id) } td { (r.issued_on) } td { @if let Some(d) = r.arrived_on { (d) } }
                            td { form method="post" action={"/police-referrals/" (r.id) "/enrol"} {
                                input type="hidden" name="csrf" value=(me.csrf_token);
                                label { (t.s("clients-uic")) input name="uic" required autocomplete="off"; }
                                button type="submit" { (t.s("pref-enrol")) }
                            } }
                        }
                    } }
                }
            }
        },
    ))
}

async fn arrived_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let base = "/police-referrals";
    let code = form.get("code").cloned().unwrap_or_default();
    let consent = form.get("consent").is_some_and(|v| v == "yes");
    let req = ArrivedRequest {
        code: code.clone(),
        consent,
    };
    match uc::arrived(&st.app, &me.app_actor(), &req).await {
        Ok(r) => flash::redirect(
            base,
            Tone::Ok,
            Message::Id {
                id: "pref-arrived-ok".into(),
                args: vec![("id".into(), r.id.to_string())],
            },
        ),
        Err(e) => refused_form(
            &st,
            base,
            FORM,
            AppError::from(e),
            vec![
                ("code".into(), code),
                ("consent".into(), if consent { "yes" } else { "" }.into()),
            ],
        ),
    }
}

async fn enrol_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let base = "/police-referrals";
    let req = EnrolRequest {
        uic: form.get("uic").cloned().unwrap_or_default(),
    };
    let actor = me.app_actor();
    let done = on_path_id(&id, |id| uc::enrolled(&st.app, &actor, id, &req)).await;
    match done {
        Ok(r) => flash::redirect(
            base,
            Tone::Ok,
            Message::Id {
                id: "pref-enrolled-ok".into(),
                args: vec![("id".into(), r.id.to_string())],
            },
        ),
        Err(e) => form_error(base, e),
    }
}

/// The self-registration receipt (Anti-Drug Law art. 62), a page of its own to print.
async fn receipt_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let cid = anxin_app::parse_id(&id).map_err(AppError::from)?;
    let r = uc::receipt(&st.app, &me.app_actor(), cid).await?;
    let name = r.name.clone().unwrap_or_else(|| t.s("receipt-no-name"));
    Ok(html! {
        (DOCTYPE)
        html lang=(t.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t.s("receipt-title")) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body.card-page {
                section.receipt id="receipt" {
                    h1 { (t.s("receipt-title")) }
                    p id="receipt-text" { (t.a("receipt-text", &[("name", &name), ("uic", &r.uic), ("since", &r.enrolled_on.to_string()), ("centre", &r.centre)])) }
                    blockquote id="receipt-law" { (t.s("receipt-law")) }
                    p { (t.a("receipt-issued", &[("day", &r.issued_on.to_string()), ("by", &r.issued_by)])) }
                    p.signature { (t.s("receipt-stamp")) }
                }
                p.noprint {
                    button type="button" data-print { (t.s("card-print")) }
                    " "
                    a href={"/clients/" (cid)} { (t.s("card-back")) }
                }
            }
        }
    })
}

async fn api_issue(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<(StatusCode, Json<IssuedReferral>)> {
    Ok((
        StatusCode::CREATED,
        Json(uc::issue(&st.app, &me.app_actor()).await?),
    ))
}

async fn api_station(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<StationView>> {
    Ok(Json(uc::station(&st.app, &me.app_actor()).await?))
}

async fn api_arrived(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<ArrivedRequest>,
) -> AppResult<Json<WaitingReferral>> {
    Ok(Json(uc::arrived(&st.app, &me.app_actor(), &req).await?))
}

async fn api_waiting(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<Vec<WaitingReferral>>> {
    Ok(Json(uc::waiting(&st.app, &me.app_actor()).await?))
}

async fn api_enrol(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> AppResult<Json<ReferralView>> {
    let id = anxin_app::parse_id(&id)?;
    Ok(Json(
        uc::enrolled(&st.app, &me.app_actor(), id, &req).await?,
    ))
}

/// Adds the e-referral's page and API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(
                Get,
                "/psb/referrals",
                Needs(ReferralIssue),
                "The station's referrals into treatment and its figures",
            ),
            station_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/psb/referrals",
                Needs(ReferralIssue),
                "Issue a referral: the slip with its code",
            ),
            issue_form,
        )
        .add(
            RouteSpec::web(
                Get,
                "/clients/{id}/receipt",
                Needs(IdentityRead),
                "The client's self-registration receipt (Anti-Drug Law art. 62), to print",
            ),
            receipt_page,
        )
        .add(
            RouteSpec::web(
                Get,
                "/police-referrals",
                Needs(ReferralReceive),
                "Referrals by the police: a code handed in, and those waiting for enrolment",
            ),
            centre_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/police-referrals/arrived",
                Needs(ReferralReceive),
                "Mark a referral arrived (the person agrees)",
            ),
            arrived_form,
        )
        .add(
            RouteSpec::web(
                Post,
                "/police-referrals/{id}/enrol",
                Needs(ReferralReceive),
                "Mark a referral enrolled",
            ),
            enrol_form,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/psb/referrals",
                Needs(ReferralIssue),
                "referrals",
                "Issue a referral into treatment: its code, shown this once",
            )
            .answers::<IssuedReferral>()
            .status(201),
            api_issue,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/psb/referrals",
                Needs(ReferralIssue),
                "referrals",
                "The station's referrals (state words and days only) and its figures",
            )
            .answers::<StationView>(),
            api_station,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/police-referrals/arrived",
                Needs(ReferralReceive),
                "referrals",
                "A person handed in a referral code and agreed that the police be told",
            )
            .answers::<WaitingReferral>()
            .body::<ArrivedRequest>(),
            api_arrived,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/police-referrals/waiting",
                Needs(ReferralReceive),
                "referrals",
                "Referrals arrived at this centre, waiting for enrolment",
            )
            .answers::<Vec<WaitingReferral>>(),
            api_waiting,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/police-referrals/{id}/enrol",
                Needs(ReferralReceive),
                "referrals",
                "The person of a waiting referral is enrolled as the client with this UIC",
            )
            .answers::<ReferralView>()
            .body::<EnrolRequest>(),
            api_enrol,
        )
}
