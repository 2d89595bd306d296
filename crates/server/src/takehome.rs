//! The take-home programme over HTTP, first half: eligibility under the site's versioned policy
//! (each criterion explained in both languages), police approval requests sent only under an
//! active consent, the police queue that shows only what a record check needs, and the
//! disclosure ledger. (Boxes, codes and return come with the lock-box work.)

use anxin_domain::takehome::{Criterion, Eligibility, Policy, Tier};
use anxin_domain::{Access, DomainError, Permission, Role};
use anxin_storage::takehome::{Disclosure, NewDisclosure, NewPsbRequest, PsbRequest};
use anxin_storage::Client;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::clinic::open_client;
use crate::error::AppResult;
use crate::i18n::Lang;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

/// The consent a police check needs.
pub const POLICE_PURPOSE: &str = anxin_app::takehome::POLICE_PURPOSE;
/// What a police request discloses, and nothing more.
pub const POLICE_DISCLOSES: &str = "name, national ID number, requested take-home days";
/// Days the police have to answer a request.
pub const REQUEST_VALID_DAYS: i64 = 14;

/// The policy in force at a site: its latest adopted one, or the default.
pub async fn policy_of(st: &AppState, site_id: i64) -> AppResult<Policy> {
    Ok(anxin_app::takehome::policy_of(&st.app, site_id).await?)
}

/// Everything the eligibility rules need about a client, gathered from the record.
pub async fn eligibility_of(st: &AppState, c: &Client) -> AppResult<(Eligibility, Option<i64>)> {
    Ok(anxin_app::takehome::eligibility_of(&st.app, c).await?)
}

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

/// A police request just sent.
#[derive(Serialize, JsonSchema)]
pub struct RequestSent {
    pub request_id: i64,
}

/// What the police see of one request: only what a record check needs.
#[derive(Serialize, JsonSchema)]
pub struct PoliceRequestView {
    pub id: i64,
    pub name: Option<String>,
    pub national_id: Option<String>,
    pub requested_days: i64,
    pub requested_on: chrono::NaiveDate,
    pub expires_on: chrono::NaiveDate,
    /// pending, approved, denied or expired
    pub status: String,
    pub answered_on: Option<chrono::NaiveDate>,
}

/// A police approval request as the centre sees it.
#[derive(Serialize, JsonSchema)]
pub struct PsbRequestView {
    pub id: i64,
    pub client_id: i64,
    pub site_id: i64,
    pub requested_days: i64,
    pub consent_id: i64,
    pub requested_on: chrono::NaiveDate,
    pub expires_on: chrono::NaiveDate,
    pub status: String,
    pub answered_on: Option<chrono::NaiveDate>,
    pub answer_reason: Option<String>,
}

impl From<&PsbRequest> for PsbRequestView {
    fn from(r: &PsbRequest) -> Self {
        PsbRequestView {
            id: r.id,
            client_id: r.client_id,
            site_id: r.site_id,
            requested_days: r.requested_days,
            consent_id: r.consent_id,
            requested_on: r.requested_on,
            expires_on: r.expires_on,
            status: r.status.clone(),
            answered_on: r.answered_on,
            answer_reason: r.answer_reason.clone(),
        }
    }
}

/// The approval in force and the request history of a client.
#[derive(Serialize, JsonSchema)]
pub struct TakeHomeStatus {
    pub approved_days: Option<i64>,
    pub approval: Option<PsbRequestView>,
    pub requests: Vec<PsbRequestView>,
}

/// One line of the disclosure ledger.
#[derive(Serialize, JsonSchema)]
pub struct DisclosureView {
    pub on_day: chrono::NaiveDate,
    pub recipient: String,
    pub disclosed: String,
    pub purpose: String,
    pub actor: String,
}

impl From<&Disclosure> for DisclosureView {
    fn from(d: &Disclosure) -> Self {
        DisclosureView {
            on_day: d.on_day,
            recipient: d.recipient.clone(),
            disclosed: d.disclosed.clone(),
            purpose: d.purpose.clone(),
            actor: d.actor.clone(),
        }
    }
}

/// One tier of the eligibility policy.
#[derive(Serialize, JsonSchema)]
pub struct TierView {
    pub days: u8,
    pub min_days_in_treatment: u32,
    /// Attendance over the last 30 days, percent.
    pub min_attendance_30: f64,
    /// Attendance over the last 90 days, percent.
    pub min_attendance_90: f64,
    /// The most recent N urine tests must all be negative for non-prescribed drugs.
    pub last_urine_negative: u32,
}

impl From<&Tier> for TierView {
    fn from(t: &Tier) -> Self {
        TierView {
            days: t.days,
            min_days_in_treatment: t.min_days_in_treatment,
            min_attendance_30: t.min_attendance_30,
            min_attendance_90: t.min_attendance_90,
            last_urine_negative: t.last_urine_negative,
        }
    }
}

/// The eligibility policy in force.
#[derive(Serialize, JsonSchema)]
pub struct PolicyView {
    pub version: String,
    /// Days a police approval stays valid.
    pub approval_valid_days: u32,
    pub tiers: Vec<TierView>,
}

impl From<&Policy> for PolicyView {
    fn from(p: &Policy) -> Self {
        PolicyView {
            version: p.version.clone(),
            approval_valid_days: p.approval_valid_days,
            tiers: p.tiers.iter().map(TierView::from).collect(),
        }
    }
}

async fn api_eligibility(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<EligibilityView>> {
    let c = open_client(&st, &me, &id, "take-home eligibility").await?;
    let (e, _) = eligibility_of(&st, &c).await?;
    Ok(Json(eligibility_json(&st, &e)))
}

/// A request to the police.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PsbRequestBody {
    /// Take-home days asked for (2–6, at most the eligible days).
    pub days: i64,
}

/// Sends a police request for `days` (checked against eligibility and consent).
pub async fn send_psb_request(
    st: &AppState,
    me: &CurrentUser,
    raw_id: &str,
    days: i64,
) -> AppResult<i64> {
    let c = open_client(st, me, raw_id, "police request").await?;
    let (e, consent) = eligibility_of(st, &c).await?;
    let Some(consent_id) = consent else {
        return Err(DomainError::Conflict(format!(
            "{} has no active consent to the police check; record the client's consent first",
            c.uic
        ))
        .into());
    };
    if e.days == 0 {
        return Err(DomainError::Conflict(format!(
            "{} is not eligible for take-home doses today",
            c.uic
        ))
        .into());
    }
    if !(2..=i64::from(e.days)).contains(&days) {
        return Err(DomainError::invalid(
            "days",
            format!(
                "between 2 and the {} days the client is eligible for",
                e.days
            ),
        )
        .into());
    }
    let today = st.today();
    let criteria = serde_json::to_string(&e.criteria).unwrap_or_default();
    let id = st
        .store
        .create_psb_request(
            &me.actor(),
            &NewPsbRequest {
                client: &c,
                requested_days: days,
                eligible_days: i64::from(e.days),
                policy_version: &e.policy_version,
                criteria_json: &criteria,
                consent_id,
                requested_on: today,
                expires_on: today + Duration::days(REQUEST_VALID_DAYS),
                disclosure: NewDisclosure {
                    recipient: "PSB",
                    disclosed: POLICE_DISCLOSES,
                    purpose: "take-home police check",
                },
            },
            st.now(),
        )
        .await?;
    Ok(id)
}

async fn api_send_request(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PsbRequestBody>,
) -> AppResult<(StatusCode, Json<RequestSent>)> {
    let rid = send_psb_request(&st, &me, &id, req.days).await?;
    Ok((StatusCode::CREATED, Json(RequestSent { request_id: rid })))
}

/// What the police see of one request: only what a record check needs.
pub async fn police_view(
    st: &AppState,
    me: &CurrentUser,
    r: &PsbRequest,
) -> AppResult<PoliceRequestView> {
    // The police are not staff of the client's centre: the identity is opened for them by the
    // centre's standing under the consent, and the view itself is audited as a disclosure.
    let identity = st
        .store
        .identity_for_disclosure(r.client_id, &st.vault)
        .await?;
    st.store
        .audit(
            &me.actor(),
            anxin_storage::AuditEvent::new("disclosure.psb_view", "client", r.client_id)
                .site(r.site_id)
                .reason(format!("request {}", r.id)),
            st.now(),
        )
        .await?;
    Ok(PoliceRequestView {
        id: r.id,
        name: identity.name,
        national_id: identity.national_id,
        requested_days: r.requested_days,
        requested_on: r.requested_on,
        expires_on: r.expires_on,
        status: r.status.clone(),
        answered_on: r.answered_on,
    })
}

/// The police queue of the officer's office (their site).
pub async fn police_queue(st: &AppState, me: &CurrentUser) -> AppResult<Vec<PoliceRequestView>> {
    let reqs = st.store.psb_requests_of_site(me.site.id, 100).await?;
    let mut out = Vec::with_capacity(reqs.len());
    for r in &reqs {
        out.push(police_view(st, me, r).await?);
    }
    Ok(out)
}

async fn api_queue(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<Vec<PoliceRequestView>>> {
    Ok(Json(police_queue(&st, &me).await?))
}

/// The police answer.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// approve or deny
    pub decision: String,
    pub reason: String,
}

/// Records the police answer to request `id`.
pub async fn answer(
    st: &AppState,
    me: &CurrentUser,
    id: &str,
    decision: &str,
    reason: &str,
) -> AppResult<PoliceRequestView> {
    let rid: i64 = id
        .parse()
        .map_err(|_| DomainError::invalid("id", "not a number"))?;
    let approve = match decision {
        "approve" => true,
        "deny" => false,
        other => {
            return Err(DomainError::invalid(
                "decision",
                format!("`{other}`: expected approve or deny"),
            )
            .into())
        }
    };
    if reason.trim().is_empty() {
        return Err(DomainError::invalid("reason", "give the reason for the answer").into());
    }
    let r = st
        .store
        .answer_psb_request(
            &me.actor(),
            rid,
            approve,
            reason.trim(),
            st.today(),
            st.now(),
        )
        .await?;
    police_view(st, me, &r).await
}

async fn api_answer(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AnswerBody>,
) -> AppResult<Json<PoliceRequestView>> {
    Ok(Json(
        answer(&st, &me, &id, &req.decision, &req.reason).await?,
    ))
}

/// The approval in force for a client today, if any (approved, within validity, consent active).
pub async fn approval_of(st: &AppState, c: &Client) -> AppResult<Option<PsbRequest>> {
    Ok(anxin_app::takehome::approval_of(&st.app, c).await?)
}

async fn api_takehome(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<TakeHomeStatus>> {
    let c = open_client(&st, &me, &id, "take-home status").await?;
    let approval = approval_of(&st, &c).await?;
    let requests = st.store.psb_requests_of_client(c.id).await?;
    Ok(Json(TakeHomeStatus {
        approved_days: approval.as_ref().map(|a| a.requested_days),
        approval: approval.as_ref().map(PsbRequestView::from),
        requests: requests.iter().map(PsbRequestView::from).collect(),
    }))
}

async fn api_disclosures(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<DisclosureView>>> {
    let c = open_client(&st, &me, &id, "disclosure ledger").await?;
    let ledger = st.store.disclosures(c.id).await?;
    Ok(Json(ledger.iter().map(DisclosureView::from).collect()))
}

async fn api_policy(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<PolicyView>> {
    Ok(Json(PolicyView::from(&policy_of(&st, me.site.id).await?)))
}

async fn api_adopt_policy(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(p): ApiJson<Policy>,
) -> AppResult<StatusCode> {
    p.validate()?;
    let body = serde_json::to_string(&p).map_err(|_| crate::error::AppError::Internal)?;
    st.store
        .adopt_policy(&me.actor(), me.site.id, p.version.trim(), &body, st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The role that sees the police queue (for the home page's redirect).
pub fn is_police(me: &CurrentUser) -> bool {
    me.role() == Role::PsbOfficer
}

/// Adds the take-home API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(RouteSpec::api(Get, "/api/v1/clients/{id}/eligibility", Needs(ClientRead), "takehome", "Take-home eligibility with every criterion explained").answers::<EligibilityView>(), api_eligibility)
        .add(RouteSpec::api(Get, "/api/v1/clients/{id}/takehome", Needs(ClientRead), "takehome", "Police approval in force and request history").answers::<TakeHomeStatus>(), api_takehome)
        .add(RouteSpec::api(Post, "/api/v1/clients/{id}/psb-requests", Needs(TakeHomeManage), "takehome", "Ask the police to approve take-home days").answers::<RequestSent>().body::<PsbRequestBody>().status(201), api_send_request)
        .add(RouteSpec::api(Get, "/api/v1/clients/{id}/disclosures", Needs(ClientRead), "takehome", "The client's disclosure ledger").answers::<Vec<DisclosureView>>(), api_disclosures)
        .add(RouteSpec::api(Get, "/api/v1/takehome/policy", Needs(TakeHomeManage), "takehome", "The eligibility policy in force at my centre").answers::<PolicyView>(), api_policy)
        .add(RouteSpec::api(Put, "/api/v1/takehome/policy", Needs(TakeHomePolicy), "takehome", "Adopt a new eligibility policy version (JSON of version, approval_valid_days, tiers)").status(204), api_adopt_policy)
        .add(RouteSpec::api(Get, "/api/v1/psb/requests", Needs(PsbQueue), "police", "Police queue: only what a record check needs").answers::<Vec<PoliceRequestView>>(), api_queue)
        .add(RouteSpec::api(Post, "/api/v1/psb/requests/{id}/answer", Needs(PsbQueue), "police", "Approve or deny a request").answers::<PoliceRequestView>().body::<AnswerBody>(), api_answer)
}

/// The take-home pages: the eligibility section of a client's page and the police queue page.
pub mod web {
    use anxin_domain::{Access, Permission};
    use anxin_storage::Client;
    use axum::extract::{Form, Path, State};
    use axum::response::{IntoResponse, Redirect, Response};
    use maud::{html, Markup};
    use serde::Deserialize;

    use super::{answer, approval_of, eligibility_of, police_queue, send_psb_request};
    use crate::auth::CurrentUser;
    use crate::error::AppError;
    use crate::routes::{RouteSpec, RouteTable, Verb};
    use crate::state::AppState;
    use crate::web::{back_with, error_page, layout, WebResult, T};

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

    fn criteria_table(t: &T<'_>, list: &[anxin_domain::takehome::Criterion]) -> Markup {
        html! {
            table.list {
                thead { tr { th { (t.s("th-criterion")) } th { (t.s("th-value")) } th { (t.s("th-threshold")) } th {} } }
                tbody { @for c in list { tr class=(if c.passed { "pass" } else { "fail" }) data-criterion=(c.id) {
                    td { (t.s(&format!("criterion-{}", c.id))) } td { (yes_no(t, &c.value)) } td { (threshold(t, &c.threshold)) } td { @if c.passed { "✓" } @else { "✗" } } } } }
            }
        }
    }

    /// The take-home section of a client's page.
    pub(crate) async fn client_section(
        t: &T<'_>,
        me: &CurrentUser,
        c: &Client,
    ) -> Result<Markup, AppError> {
        let st = t.st;
        let (e, _) = eligibility_of(st, c).await?;
        let approval = approval_of(st, c).await?;
        let ledger = st.store.disclosures(c.id).await?;
        let version = e.policy_version.clone();
        Ok(html! {
            section.card id="takehome" {
                h2 { (t.s("th-title")) }
                @if e.days > 0 { p.flash.ok { (t.a("th-eligible", &[("days", &e.days.to_string()), ("version", &version)])) } }
                @else { p.notice { (t.a("th-not-eligible", &[("version", &version)])) } }
                (criteria_table(t, &e.criteria))
                @if let Some((days, next)) = &e.next_tier {
                    h3 { (t.a("th-next", &[("days", &days.to_string())])) }
                    (criteria_table(t, next))
                }
                @if let Some(a) = &approval { p.flash.ok id="approval" { (t.a("th-approved", &[("days", &a.requested_days.to_string())])) } }
                @if e.days > 0 && me.role().has(Permission::TakeHomeManage) {
                    form method="post" action={"/clients/" (c.id) "/psb-request"} id="psb-request-form" {
                        input type="hidden" name="csrf" value=(me.csrf_token);
                        label { (t.s("th-request-days")) select name="days" { @for d in 2..=e.days { option value=(d) selected[d == e.days] { (d) } } } }
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
        match send_psb_request(&st, &me, &id, f.days).await {
            Ok(_) => Redirect::to(&base).into_response(),
            Err(AppError::Domain(d)) if !matches!(d, anxin_domain::DomainError::Forbidden(_)) => {
                back_with(&base, "error", &d.to_string())
            }
            Err(e) => error_page(e),
        }
    }

    async fn queue_page(State(st): State<AppState>, me: CurrentUser) -> WebResult<Markup> {
        let t = T {
            st: &st,
            lang: crate::i18n::Lang::from_tag(&me.user.language),
        };
        let queue = police_queue(&st, &me).await?;
        Ok(layout(
            &t,
            &t.s("psb-title"),
            Some(&me),
            html! {
                h1 { (t.s("psb-title")) }
                table.list id="psb-queue" {
                    thead { tr { th { (t.s("psb-name")) } th { (t.s("psb-national-id")) } th { (t.s("psb-days")) } th { (t.s("psb-requested")) } th { (t.s("psb-expires")) } th { (t.s("psb-status")) } th {} } }
                    tbody { @for r in &queue { tr data-request=(r.id) {
                        td { (r.name.as_deref().unwrap_or("")) } td { (r.national_id.as_deref().unwrap_or("")) } td { (r.requested_days) }
                        td { (r.requested_on) } td { (r.expires_on) } td { (t.s(&format!("psb-status-{}", r.status))) }
                        td.actions { @if r.status == "approved" {
                            a href={"/psb/" (r.id) "/box"} { (t.s("gps-police-look")) }
                        } @if r.status == "pending" {
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
        match answer(&st, &me, &id, &f.decision, &f.reason).await {
            Ok(_) => Redirect::to("/psb").into_response(),
            Err(e) => error_page(e),
        }
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
