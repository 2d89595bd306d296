//! The take-home programme over HTTP, first half: eligibility under the site's versioned policy
//! (each criterion explained in both languages), police approval requests, the police queue and
//! answer, and the disclosure ledger. The use cases are `anxin_app::takehome`; these handlers
//! only translate. (Boxes, codes and return come with the lock-box work.)

use anxin_app::takehome as uc;
use anxin_domain::takehome::{Criterion, Eligibility, Policy};
use anxin_domain::{Access, Permission};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use anxin_app::takehome::{
    AnswerBody, DisclosureView, PoliceRequestView, PolicyView, PsbRequestView, RequestSent,
    TakeHomeStatus, TierView, POLICE_DISCLOSES, POLICE_PURPOSE, REQUEST_VALID_DAYS,
};

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::i18n::Lang;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

/// A text in both interface languages.
#[derive(Serialize, JsonSchema)]
pub struct Bilingual {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}

/// One criterion of the decision, explained.
#[derive(Serialize, JsonSchema)]
pub struct CriterionView {
    /// Stable id, also the suffix of the UI message `criterion-…`.
    pub id: &'static str,
    pub label: Bilingual,
    pub value: String,
    pub threshold: String,
    pub passed: bool,
}

/// What the next tier would need.
#[derive(Serialize, JsonSchema)]
pub struct NextTierView {
    pub days: u8,
    pub criteria: Vec<CriterionView>,
}

/// The eligibility decision, each criterion labelled in both interface languages.
#[derive(Serialize, JsonSchema)]
pub struct EligibilityView {
    /// 0 when not eligible, else 2–6.
    pub days: u8,
    pub policy_version: String,
    pub criteria: Vec<CriterionView>,
    pub next_tier: Option<NextTierView>,
}

/// The decision as JSON, each criterion labelled in both interface languages.
pub fn eligibility_json(st: &AppState, e: &Eligibility) -> EligibilityView {
    let label = |id: &str| Bilingual {
        zh_cn: st.i18n.t(Lang::ZhCn, &format!("criterion-{id}")),
        en: st.i18n.t(Lang::En, &format!("criterion-{id}")),
    };
    let crit = |list: &[Criterion]| -> Vec<CriterionView> {
        list.iter()
            .map(|c| CriterionView {
                id: c.id,
                label: label(c.id),
                value: c.value.clone(),
                threshold: c.threshold.clone(),
                passed: c.passed,
            })
            .collect()
    };
    EligibilityView {
        days: e.days,
        policy_version: e.policy_version.clone(),
        criteria: crit(&e.criteria),
        next_tier: e.next_tier.as_ref().map(|(d, c)| NextTierView {
            days: *d,
            criteria: crit(c),
        }),
    }
}

async fn api_eligibility(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<EligibilityView>> {
    let id = anxin_app::parse_id(&id)?;
    let e = uc::eligibility(&st.app, &me.app_actor(), id).await?;
    Ok(Json(eligibility_json(&st, &e)))
}

/// A request to the police.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PsbRequestBody {
    /// Take-home days asked for (2–6, at most the eligible days).
    pub days: i64,
}

async fn api_send_request(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PsbRequestBody>,
) -> AppResult<(StatusCode, Json<RequestSent>)> {
    let id = anxin_app::parse_id(&id)?;
    let sent = uc::send_request(&st.app, &me.app_actor(), id, req.days).await?;
    Ok((StatusCode::CREATED, Json(sent)))
}

async fn api_queue(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<Vec<PoliceRequestView>>> {
    Ok(Json(uc::police_queue(&st.app, &me.app_actor()).await?))
}

async fn api_answer(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AnswerBody>,
) -> AppResult<Json<PoliceRequestView>> {
    let id = anxin_app::parse_id(&id)?;
    Ok(Json(uc::answer(&st.app, &me.app_actor(), id, &req).await?))
}

async fn api_takehome(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<TakeHomeStatus>> {
    let id = anxin_app::parse_id(&id)?;
    Ok(Json(uc::status(&st.app, &me.app_actor(), id).await?))
}

async fn api_disclosures(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<DisclosureView>>> {
    let id = anxin_app::parse_id(&id)?;
    Ok(Json(uc::disclosures(&st.app, &me.app_actor(), id).await?))
}

async fn api_policy(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<PolicyView>> {
    Ok(Json(uc::policy(&st.app, &me.app_actor()).await?))
}

async fn api_adopt_policy(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(p): ApiJson<Policy>,
) -> AppResult<StatusCode> {
    uc::adopt_policy(&st.app, &me.app_actor(), &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds the take-home API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(RouteSpec::api(Get, "/api/v1/clients/{id}/eligibility", Needs(ClinicalRead), "takehome", "Take-home eligibility with every criterion explained").answers::<EligibilityView>(), api_eligibility)
        .add(RouteSpec::api(Get, "/api/v1/clients/{id}/takehome", Needs(ClinicalRead), "takehome", "Police approval in force and request history").answers::<TakeHomeStatus>(), api_takehome)
        .add(RouteSpec::api(Post, "/api/v1/clients/{id}/psb-requests", Needs(TakeHomeManage), "takehome", "Ask the police to approve take-home days").answers::<RequestSent>().body::<PsbRequestBody>().status(201), api_send_request)
        .add(RouteSpec::api(Get, "/api/v1/clients/{id}/disclosures", Needs(ClinicalRead), "takehome", "The client's disclosure ledger").answers::<Vec<DisclosureView>>(), api_disclosures)
        .add(RouteSpec::api(Get, "/api/v1/takehome/policy", Needs(TakeHomeManage), "takehome", "The eligibility policy in force at my centre").answers::<PolicyView>(), api_policy)
        .add(RouteSpec::api(Put, "/api/v1/takehome/policy", Needs(TakeHomePolicy), "takehome", "Adopt a new eligibility policy version (JSON of version, approval_valid_days, tiers)").status(204), api_adopt_policy)
        .add(RouteSpec::api(Get, "/api/v1/psb/requests", Needs(PsbQueue), "police", "Police queue: only what a record check needs").answers::<Vec<PoliceRequestView>>(), api_queue)
        .add(RouteSpec::api(Post, "/api/v1/psb/requests/{id}/answer", Needs(PsbQueue), "police", "Approve or deny a request").answers::<PoliceRequestView>().body::<AnswerBody>(), api_answer)
}

/// The take-home pages: the eligibility section of a client's page and the police queue page.
pub mod web {
    use anxin_app::takehome as uc;
    use anxin_app::Client;
    use anxin_domain::takehome::RequestState;
    use anxin_domain::{Access, Permission};
    use axum::extract::{Form, Path, State};
    use axum::response::{IntoResponse, Redirect, Response};
    use maud::{html, Markup};
    use serde::Deserialize;

    use crate::auth::CurrentUser;
    use crate::error::AppError;
    use crate::routes::{RouteSpec, RouteTable, Verb};
    use crate::state::AppState;
    use crate::web::{after_form, field_error, flash, layout, refused_form, Flash, WebResult, T};

    fn yes_no(t: &T<'_>, v: &str) -> String {
        match v {
            "yes" => t.s("value-yes"),
            "no" => t.s("value-no"),
            other => other.to_owned(),
        }
    }

    /// A criterion's threshold in the user's language (the policy writes "last N negative").
    fn threshold(t: &T<'_>, v: &str) -> String {
        match v
            .strip_prefix("last ")
            .and_then(|r| r.strip_suffix(" negative"))
        {
            Some(n) => t.a("th-last-negative", &[("n", n)]),
            None => yes_no(t, v),
        }
    }

    fn criteria_table(t: &T<'_>, id: &str, list: &[anxin_domain::takehome::Criterion]) -> Markup {
        html! {
            table.list id=(id) {
                thead { tr { th { (t.s("th-criterion")) } th { (t.s("th-value")) } th { (t.s("th-threshold")) } th {} } }
                tbody { @for c in list { tr class=(if c.passed { "pass" } else { "fail" }) data-criterion=(c.id) {
                    td { (t.s(&format!("criterion-{}", c.id))) } td { (yes_no(t, &c.value)) } td { (threshold(t, &c.threshold)) } td { @if c.passed { "✓" } @else { "✗" } } } } }
            }
        }
    }

    /// Where the newest police request stands, in the page's language.
    fn request_state(t: &T<'_>, r: &uc::PsbRequest) -> Markup {
        let on = r.requested_on.to_string();
        let waiting = waiting(t, r);
        let text = match r.status {
            RequestState::Pending if waiting => t.a(
                "th-request-pending",
                &[
                    ("on", &on),
                    ("days", &r.requested_days.to_string()),
                    ("expires", &r.expires_on.to_string()),
                ],
            ),
            RequestState::Denied => t.a(
                "th-request-denied",
                &[
                    ("on", &on),
                    ("reason", r.answer_reason.as_deref().unwrap_or("")),
                ],
            ),
            _ => t.a("th-request-expired", &[("on", &on)]),
        };
        let status = if r.status == RequestState::Pending && !waiting {
            "expired"
        } else {
            r.status.as_str()
        };
        html! { p.notice id="psb-request-state" data-status=(status) { (text) } }
    }

    /// Whether a request still waits for the police's answer today.
    fn waiting(t: &T<'_>, r: &uc::PsbRequest) -> bool {
        r.status == RequestState::Pending && r.expires_on >= t.st.today()
    }

    /// The take-home section of a client's page.
    pub(crate) async fn client_section(
        t: &T<'_>,
        me: &CurrentUser,
        c: &Client,
        f: &Flash,
    ) -> Result<Markup, AppError> {
        let uc::TakeHomeSection {
            eligibility: e,
            approval,
            latest,
            ledger,
        } = uc::section(&t.st.app, c).await?;
        let version = e.policy_version.clone();
        Ok(html! {
            section.card id="takehome" {
                h2 { (t.s("th-title")) }
                @if e.days > 0 { p.flash.ok { (t.a("th-eligible", &[("days", &e.days.to_string()), ("version", &version)])) } }
                @else { p.notice { (t.a("th-not-eligible", &[("version", &version)])) } }
                (criteria_table(t, "criteria", &e.criteria))
                @if let Some((days, next)) = &e.next_tier {
                    h3 { (t.a("th-next", &[("days", &days.to_string())])) }
                    (criteria_table(t, "next-criteria", next))
                }
                @if let Some((a, until)) = &approval { p.flash.ok id="approval" { (t.a("th-approved-until", &[("days", &a.requested_days.to_string()), ("until", &until.to_string())])) } }
                @if let Some(r) = &latest { (request_state(t, r)) }
                @if e.days > 0 && approval.is_none() && !latest.as_ref().is_some_and(|r| waiting(t, r)) && me.role().has(Permission::TakeHomeManage) {
                    form method="post" action={"/clients/" (c.id) "/psb-request"} id="psb-request-form" {
                        input type="hidden" name="csrf" value=(me.csrf_token);
                        label { (t.s("th-request-days")) select name="days" { @for d in 2..=e.days { option value=(d) selected[d == e.days] { (d) } } } (field_error(f, "psb-request", "days")) }
                        button type="submit" { (t.s("th-request")) }
                    }
                }
                h3 { (t.s("th-disclosures")) }
                table.list id="ledger" {
                    thead { tr { th { "" } th { (t.s("th-recipient")) } th { (t.s("th-disclosed")) } th { (t.s("th-purpose")) } } }
                    tbody { @for d in &ledger { tr { td { (d.on_day) } td { (d.recipient) } td { (d.disclosed) } td { (d.purpose) } } } }
                }
            }
        })
    }

    #[derive(Deserialize)]
    struct DaysForm {
        days: i64,
    }

    async fn request_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
        Form(f): Form<DaysForm>,
    ) -> Response {
        let base = format!("/clients/{id}");
        let sent = match anxin_app::parse_id(&id) {
            Ok(id) => uc::send_request(&st.app, &me.app_actor(), id, f.days)
                .await
                .map_err(AppError::from),
            Err(e) => Err(e.into()),
        };
        match sent {
            Ok(_) => Redirect::to(&base).into_response(),
            Err(e) => refused_form(
                &st,
                &base,
                "psb-request",
                e,
                vec![("days".into(), f.days.to_string())],
            ),
        }
    }

    async fn queue_page(
        State(st): State<AppState>,
        me: CurrentUser,
        f: Flash,
    ) -> WebResult<Markup> {
        let t = T {
            st: &st,
            lang: crate::i18n::Lang::from_tag(&me.user.language),
        };
        let queue = uc::police_queue(&st.app, &me.app_actor()).await?;
        Ok(layout(
            &t,
            &t.s("psb-title"),
            Some(&me),
            html! {
                h1 { (t.s("psb-title")) }
                (flash(&f))
                table.list id="psb-queue" {
                    thead { tr { th { (t.s("psb-name")) } th { (t.s("psb-national-id")) } th { (t.s("psb-days")) } th { (t.s("psb-requested")) } th { (t.s("psb-expires")) } th { (t.s("psb-status")) } th {} } }
                    tbody { @for r in &queue { tr data-request=(r.id) {
                        td { (r.name.as_deref().unwrap_or("")) } td { (r.national_id.as_deref().unwrap_or("")) } td { (r.requested_days) }
                        td { (r.requested_on) } td { (r.expires_on) } td { (t.s(&format!("psb-status-{}", r.status))) }
                        td.actions { @if r.status == RequestState::Approved {
                            a href={"/psb/" (r.id) "/box"} { (t.s("gps-police-look")) }
                        } @if r.status == RequestState::Pending {
                            form method="post" action={"/psb/" (r.id) "/answer"} {
                                input type="hidden" name="csrf" value=(me.csrf_token);
                                input name="reason" placeholder=(t.s("psb-reason")) required aria-label=(t.s("psb-reason"));
                                button type="submit" name="decision" value="approve" { (t.s("psb-approve")) }
                                button type="submit" name="decision" value="deny" { (t.s("psb-deny")) }
                            }
                        } }
                    } } }
                }
            },
        ))
    }

    #[derive(Deserialize)]
    struct AnswerForm {
        decision: String,
        reason: String,
    }

    async fn answer_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
        Form(f): Form<AnswerForm>,
    ) -> Response {
        let body = uc::AnswerBody {
            decision: f.decision,
            reason: f.reason,
        };
        let answered = match anxin_app::parse_id(&id) {
            Ok(id) => uc::answer(&st.app, &me.app_actor(), id, &body)
                .await
                .map_err(AppError::from),
            Err(e) => Err(e.into()),
        };
        after_form("/psb", answered)
    }

    /// Adds the take-home pages.
    pub fn routes(table: RouteTable) -> RouteTable {
        use Access::*;
        use Permission::*;
        use Verb::*;
        table
            .add(
                RouteSpec::web(
                    Post,
                    "/clients/{id}/psb-request",
                    Needs(TakeHomeManage),
                    "Ask the police to approve",
                ),
                request_form,
            )
            .add(
                RouteSpec::web(Get, "/psb", Needs(PsbQueue), "Police queue"),
                queue_page,
            )
            .add(
                RouteSpec::web(
                    Post,
                    "/psb/{id}/answer",
                    Needs(PsbQueue),
                    "Answer a request",
                ),
                answer_form,
            )
    }
}
