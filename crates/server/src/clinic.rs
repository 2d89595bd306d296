//! The clinic core over HTTP: the dispensing window (day list, one-action dose), dose orders
//! and reviews, the full client record (encrypted identity, stage, discharge, transfer, guest
//! dosing), agreements and consents, urine tests, adherence, and methadone stock.
//! Rules come from `anxin_domain::clinic`; this module gathers facts, applies them, and answers.

use std::collections::BTreeMap;

use anxin_domain::clinic::adherence::{Adherence, Day, Ratio};
use anxin_domain::clinic::stage::Stage;
use anxin_domain::clinic::stock::{close_out, expected_ml, Receipt};
use anxin_domain::clinic::urine::{Outcome, Substance};
use anxin_domain::{Access, DomainError, Permission};
use anxin_storage::clinic::{Consent, DoseFacts, Identity, NewUrineTest};
use anxin_storage::Client;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{Duration, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

/// Parses a `YYYY-MM-DD` field.
pub fn parse_date(field: &str, raw: &str) -> Result<NaiveDate, DomainError> {
    Ok(anxin_app::parse_date(field, raw)?)
}

/// Parses an optional date field, defaulting to `today`, and refuses the future.
pub fn past_or_today(
    field: &str,
    raw: Option<&str>,
    today: NaiveDate,
) -> Result<NaiveDate, DomainError> {
    let d = match raw {
        None | Some("") => today,
        Some(r) => parse_date(field, r)?,
    };
    if d > today {
        return Err(DomainError::invalid(field, "must not be in the future"));
    }
    Ok(d)
}

pub use anxin_app::dispensing::{DayRow, DayStatus, DoseAnswer, DoseRequest};

/// Applies the dispensing rules to one client's facts.
pub fn day_row(st: &AppState, f: &DoseFacts, today: NaiveDate) -> DayRow {
    anxin_app::dispensing::day_row(&st.app, f, today)
}

/// The day list of `me`'s site.
pub async fn day_list(st: &AppState, me: &CurrentUser) -> AppResult<Vec<DayRow>> {
    Ok(anxin_app::dispensing::day_list(&st.app, &me.app_actor()).await?)
}

/// Records an observed dose from the UIC alone: the rules decide the amount.
pub async fn record_dose(st: &AppState, me: &CurrentUser, uic: &str) -> AppResult<DoseAnswer> {
    let req = DoseRequest {
        uic: uic.to_owned(),
    };
    Ok(anxin_app::dispensing::record_dose(&st.app, &me.app_actor(), &req).await?)
}

async fn api_day_list(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<Vec<DayRow>>> {
    Ok(Json(day_list(&st, &me).await?))
}

async fn api_record_dose(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<DoseRequest>,
) -> AppResult<(StatusCode, Json<DoseAnswer>)> {
    Ok((
        StatusCode::CREATED,
        Json(record_dose(&st, &me, &req.uic).await?),
    ))
}

fn client_id(raw: &str) -> Result<i64, DomainError> {
    anxin_app::identity::client_id(raw)
}

/// Opens a client record for `me` (site-scoped, audited with `purpose`).
pub async fn open_client(
    st: &AppState,
    me: &CurrentUser,
    raw_id: &str,
    purpose: &str,
) -> AppResult<Client> {
    Ok(st
        .store
        .read_client(&me.actor(), client_id(raw_id)?, purpose, st.now())
        .await?)
}

pub use anxin_app::orders::{OrderRequest, OrderView, StepRequest};

/// Writes an order for a client (prescribers only).
pub async fn write_order(
    st: &AppState,
    me: &CurrentUser,
    id: &str,
    req: OrderRequest,
) -> AppResult<OrderView> {
    let id = anxin_app::identity::client_id(id)?;
    Ok(anxin_app::orders::write_order(&st.app, &me.app_actor(), id, &req).await?)
}

async fn api_write_order(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<OrderRequest>,
) -> AppResult<(StatusCode, Json<OrderView>)> {
    Ok((
        StatusCode::CREATED,
        Json(write_order(&st, &me, &id, req).await?),
    ))
}

async fn api_orders(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<OrderView>>> {
    let c = open_client(&st, &me, &id, "orders").await?;
    let orders = st.store.orders(c.id).await?;
    Ok(Json(orders.iter().map(OrderView::from).collect()))
}

/// A prescriber's review after missed doses.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub note: String,
}

async fn api_review(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> AppResult<StatusCode> {
    let c = open_client(&st, &me, &id, "review").await?;
    if req.note.trim().is_empty() {
        return Err(DomainError::invalid("note", "write what the review found").into());
    }
    st.store
        .add_review(&me.actor(), c.id, st.today(), req.note.trim(), st.now())
        .await?;
    Ok(StatusCode::CREATED)
}

pub use anxin_app::identity::IdentityRequest;

async fn api_set_identity(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IdentityRequest>,
) -> AppResult<StatusCode> {
    let c = client_id(&id)?;
    anxin_app::identity::set_identity(&st.app, &me.app_actor(), c, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_identity(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<IdentityView>> {
    let c = client_id(&id)?;
    Ok(Json(IdentityView::from(
        st.store
            .read_identity(&me.actor(), c, "identity view", &st.vault, st.now())
            .await?,
    )))
}

/// The decrypted identifying fields of a client.
#[derive(Serialize, JsonSchema)]
pub struct IdentityView {
    pub name: Option<String>,
    pub national_id: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

impl From<Identity> for IdentityView {
    fn from(i: Identity) -> Self {
        IdentityView {
            name: i.name,
            national_id: i.national_id,
            phone: i.phone,
            address: i.address,
        }
    }
}

/// The masked phone number after a change.
#[derive(Serialize, JsonSchema)]
pub struct PhoneAnswer {
    /// Masked, e.g. `138****8000`.
    pub phone: String,
}

/// A new phone number for the client's codes.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    /// E.164 (+8613800138000) or a mainland mobile number (13800138000)
    pub phone: String,
}

/// Changes a client's phone number: a staff action of its own, audited with masked numbers.
pub async fn change_phone(
    st: &AppState,
    me: &CurrentUser,
    raw_id: &str,
    phone: &str,
) -> AppResult<String> {
    let number = anxin_domain::phone::normalize("phone", phone)?;
    let id = client_id(raw_id)?;
    let mut identity = st
        .store
        .read_identity(&me.actor(), id, "phone change", &st.vault, st.now())
        .await?;
    let old = identity.phone.clone();
    identity.phone = Some(number.as_str().to_owned());
    st.store
        .set_identity(&me.actor(), id, &identity, &st.vault, st.now())
        .await?;
    st.store
        .audit(
            &me.actor(),
            anxin_storage::AuditEvent::new("client.phone.change", "client", id)
                .site(me.site.id)
                .reason(format!(
                    "{} → {}",
                    old.as_deref()
                        .map(anxin_domain::phone::mask)
                        .unwrap_or_else(|| "none".into()),
                    number.masked()
                )),
            st.now(),
        )
        .await?;
    Ok(number.masked())
}

async fn api_change_phone(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PhoneRequest>,
) -> AppResult<Json<PhoneAnswer>> {
    let masked = change_phone(&st, &me, &id, &req.phone).await?;
    Ok(Json(PhoneAnswer { phone: masked }))
}

/// Search by full name (sent in the body, so it stays out of URLs and access logs).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameSearch {
    pub name: String,
}

async fn api_find_by_name(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<NameSearch>,
) -> AppResult<Json<Vec<ClientRecord>>> {
    if req.name.trim().is_empty() {
        return Err(DomainError::invalid("name", "must not be blank").into());
    }
    let found = st
        .store
        .find_by_name(&me.actor(), &req.name, &st.vault, st.now())
        .await?;
    Ok(Json(found.iter().map(ClientRecord::from).collect()))
}

/// The record fields of a client (no identity).
#[derive(Serialize, JsonSchema)]
pub struct ClientRecord {
    pub id: i64,
    pub uic: String,
    pub site_id: i64,
    pub enrolled_on: NaiveDate,
    /// voluntary, community_treatment, compulsory_isolated, community_rehabilitation
    #[schemars(with = "String")]
    pub stage: Stage,
    pub stage_since: NaiveDate,
    pub discharged_on: Option<NaiveDate>,
    pub discharge_reason: Option<String>,
}

impl From<&Client> for ClientRecord {
    fn from(c: &Client) -> Self {
        ClientRecord {
            id: c.id,
            uic: c.uic.clone(),
            site_id: c.site_id,
            enrolled_on: c.enrolled_on,
            stage: c.stage,
            stage_since: c.stage_since,
            discharged_on: c.discharged_on,
            discharge_reason: c.discharge_reason.clone(),
        }
    }
}

pub use anxin_app::agreements::{AgreementRequest, AgreementView};

/// A consent to a disclosure.
#[derive(Serialize, JsonSchema)]
pub struct ConsentView {
    pub id: i64,
    pub client_id: i64,
    pub purpose: String,
    pub recipient: String,
    pub scope: String,
    pub given_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub revoked_on: Option<NaiveDate>,
    pub revoked_reason: Option<String>,
    /// In force today (in the list of a client's consents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

impl From<&Consent> for ConsentView {
    fn from(c: &Consent) -> Self {
        ConsentView {
            id: c.id,
            client_id: c.client_id,
            purpose: c.purpose.clone(),
            recipient: c.recipient.clone(),
            scope: c.scope.clone(),
            given_on: c.given_on,
            expires_on: c.expires_on,
            revoked_on: c.revoked_on,
            revoked_reason: c.revoked_reason.clone(),
            active: None,
        }
    }
}

pub use anxin_app::treatment::{DischargeRequest, StageRequest, TransferRequest, TreatmentChanged};

async fn api_set_stage(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StageRequest>,
) -> AppResult<Json<TreatmentChanged>> {
    let id = client_id(&id)?;
    Ok(Json(
        anxin_app::treatment::set_stage(&st.app, &me.app_actor(), id, &req).await?,
    ))
}

async fn api_discharge(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DischargeRequest>,
) -> AppResult<Json<TreatmentChanged>> {
    let id = client_id(&id)?;
    Ok(Json(
        anxin_app::treatment::discharge(&st.app, &me.app_actor(), id, &req).await?,
    ))
}

async fn api_readmit(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = client_id(&id)?;
    anxin_app::treatment::readmit(&st.app, &me.app_actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A guest-dosing arrangement at another site.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteMove {
    /// The other site's code.
    pub site: String,
    /// YYYY-MM-DD, the first day (default today)
    #[serde(default)]
    pub from: Option<String>,
    /// YYYY-MM-DD, guest dosing only: last day
    #[serde(default)]
    pub to: Option<String>,
}

async fn api_transfer(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TransferRequest>,
) -> AppResult<Json<TreatmentChanged>> {
    let id = client_id(&id)?;
    Ok(Json(
        anxin_app::treatment::transfer(&st.app, &me.app_actor(), id, &req).await?,
    ))
}

async fn api_guest(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SiteMove>,
) -> AppResult<StatusCode> {
    let site = st.store.site_by_code(&req.site).await.map_err(|_| {
        DomainError::invalid("site", format!("no site has the code `{}`", req.site))
    })?;
    let from = match req.from.as_deref() {
        None | Some("") => st.today(),
        Some(f) => parse_date("from", f)?,
    };
    if from < st.today() {
        return Err(DomainError::invalid("from", "must be today or later").into());
    }
    let to = parse_date("to", req.to.as_deref().unwrap_or(""))?;
    st.store
        .add_guest_dosing(&me.actor(), client_id(&id)?, site.id, from, to, st.now())
        .await?;
    Ok(StatusCode::CREATED)
}

async fn api_add_agreement(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AgreementRequest>,
) -> AppResult<(StatusCode, Json<AgreementView>)> {
    let id = client_id(&id)?;
    let a = anxin_app::agreements::add(&st.app, &me.app_actor(), id, &req).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

async fn api_agreements(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<AgreementView>>> {
    let id = client_id(&id)?;
    Ok(Json(
        anxin_app::agreements::list(&st.app, &me.app_actor(), id).await?,
    ))
}

/// A consent to a disclosure.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// e.g. take_home_police_check, cdc_figures
    pub purpose: String,
    /// e.g. PSB, CDC
    pub recipient: String,
    /// what may be disclosed, e.g. "name, national ID number, requested days"
    pub scope: String,
    #[serde(default)]
    pub given_on: Option<String>,
    pub expires_on: String,
}

async fn api_add_consent(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ConsentRequest>,
) -> AppResult<(StatusCode, Json<ConsentView>)> {
    for (field, v) in [
        ("purpose", &req.purpose),
        ("recipient", &req.recipient),
        ("scope", &req.scope),
    ] {
        if v.trim().is_empty() {
            return Err(DomainError::invalid(field, "must not be blank").into());
        }
    }
    let given = past_or_today("given_on", req.given_on.as_deref(), st.today())?;
    let expires = parse_date("expires_on", &req.expires_on)?;
    if expires <= given {
        return Err(DomainError::invalid(
            "expires_on",
            "must be after the day the consent is given",
        )
        .into());
    }
    let c = st
        .store
        .add_consent(
            &me.actor(),
            client_id(&id)?,
            req.purpose.trim(),
            req.recipient.trim(),
            req.scope.trim(),
            given,
            expires,
            st.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ConsentView::from(&c))))
}

/// Revocation of a consent.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub reason: String,
}

async fn api_revoke_consent(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> AppResult<Json<ConsentView>> {
    let consent_id: i64 = id
        .parse()
        .map_err(|_| DomainError::invalid("id", "not a number"))?;
    let c = st
        .store
        .revoke_consent(
            &me.actor(),
            consent_id,
            st.today(),
            req.reason.trim(),
            st.now(),
        )
        .await?;
    Ok(Json(ConsentView::from(&c)))
}

async fn api_consents(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<ConsentView>>> {
    let c = open_client(&st, &me, &id, "consents").await?;
    let today = st.today();
    let list = st
        .store
        .consents(c.id)
        .await?
        .iter()
        .map(|x| ConsentView {
            active: Some(x.active_on(today)),
            ..ConsentView::from(x)
        })
        .collect();
    Ok(Json(list))
}

/// A urine test result.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrineRequest {
    #[serde(default)]
    pub collected_on: Option<String>,
    pub observed: bool,
    /// tested, refused or not_provided
    pub outcome: String,
    /// substance → "positive" | "negative" (when tested)
    #[serde(default)]
    pub results: BTreeMap<String, String>,
    /// random, scheduled or clinical
    #[serde(default)]
    pub reason: Option<String>,
}

/// Turns a urine request into a domain outcome, naming the bad field.
pub fn urine_outcome(req: &UrineRequest) -> Result<Outcome, DomainError> {
    let outcome = match req.outcome.as_str() {
        "tested" => {
            let mut r = BTreeMap::new();
            for (name, value) in &req.results {
                let field = format!("results.{name}");
                let s = Substance::parse(name, &field)?;
                let positive = match value.as_str() {
                    "positive" => true,
                    "negative" => false,
                    other => {
                        return Err(DomainError::invalid(
                            field,
                            format!("`{other}`: expected positive or negative"),
                        ))
                    }
                };
                r.insert(s, positive);
            }
            Outcome::Tested(r)
        }
        "refused" => Outcome::Refused,
        "not_provided" => Outcome::NotProvided,
        other => {
            return Err(DomainError::invalid(
                "outcome",
                format!("`{other}`: expected tested, refused or not_provided"),
            ))
        }
    };
    outcome.validate()?;
    Ok(outcome)
}

async fn api_add_urine(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UrineRequest>,
) -> AppResult<(StatusCode, Json<UrineRecorded>)> {
    let outcome = urine_outcome(&req)?;
    let collected = past_or_today("collected_on", req.collected_on.as_deref(), st.today())?;
    let reason = req.reason.clone().unwrap_or_else(|| "random".into());
    if !matches!(reason.as_str(), "random" | "scheduled" | "clinical") {
        return Err(
            DomainError::invalid("reason", "expected random, scheduled or clinical").into(),
        );
    }
    let t = st
        .store
        .add_urine_test(
            &me.actor(),
            &NewUrineTest {
                client_id: client_id(&id)?,
                collected_on: collected,
                observed: req.observed,
                outcome,
                reason,
            },
            st.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UrineRecorded {
            id: t.id,
            negative: t.outcome.negative(),
        }),
    ))
}

/// A urine test just recorded.
#[derive(Serialize, JsonSchema)]
pub struct UrineRecorded {
    pub id: i64,
    /// No unprescribed substance found.
    pub negative: bool,
}

/// The JSON shape of a urine test's outcome (schema only; the domain type writes it).
#[derive(JsonSchema)]
#[schemars(rename = "UrineOutcome")]
#[allow(dead_code)]
struct OutcomeShape {
    /// tested, refused or not_provided
    outcome: String,
    /// substance → `true` when positive (tested only)
    results: Option<BTreeMap<String, bool>>,
}

/// A urine test result.
#[derive(Serialize, JsonSchema)]
pub struct UrineView {
    pub id: i64,
    pub collected_on: NaiveDate,
    pub observed: bool,
    #[schemars(with = "OutcomeShape")]
    pub outcome: Outcome,
    pub negative: bool,
    /// random, scheduled or clinical
    pub reason: String,
}

async fn api_urine(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<UrineView>>> {
    let c = open_client(&st, &me, &id, "urine tests").await?;
    let tests = st.store.urine_tests(c.id).await?;
    Ok(Json(
        tests
            .iter()
            .map(|t| UrineView {
                id: t.id,
                collected_on: t.collected_on,
                observed: t.observed,
                outcome: t.outcome.clone(),
                negative: t.outcome.negative(),
                reason: t.reason.clone(),
            })
            .collect(),
    ))
}

/// Adherence and urine figures of a client as of today.
/// Adherence over the last 90 days and the current run of negative urine tests.
pub async fn client_adherence(st: &AppState, c: &Client) -> AppResult<(Adherence, u32)> {
    Ok(anxin_app::takehome::client_adherence(&st.app, c).await?)
}

async fn api_adherence(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<AdherenceView>> {
    let c = open_client(&st, &me, &id, "adherence").await?;
    let (a, streak) = client_adherence(&st, &c).await?;
    Ok(Json(AdherenceView {
        last_30: RatioView::from(a.last_30),
        last_90: RatioView::from(a.last_90),
        last_30_percent: a.last_30.percent(),
        last_90_percent: a.last_90.percent(),
        current_streak: a.current_streak,
        longest_gap_90: a.longest_gap_90,
        urine_negative_streak: streak,
        timeline: a.timeline,
    }))
}

/// Attended out of expected days in a window.
#[derive(Serialize, JsonSchema)]
pub struct RatioView {
    pub attended: u32,
    pub expected: u32,
}

impl From<Ratio> for RatioView {
    fn from(r: Ratio) -> Self {
        RatioView {
            attended: r.attended,
            expected: r.expected,
        }
    }
}

/// A client's adherence figures and 90-day timeline.
#[derive(Serialize, JsonSchema)]
pub struct AdherenceView {
    pub last_30: RatioView,
    pub last_90: RatioView,
    /// `null` when no day was expected.
    pub last_30_percent: Option<f64>,
    pub last_90_percent: Option<f64>,
    pub current_streak: u32,
    pub longest_gap_90: u32,
    pub urine_negative_streak: u32,
    /// The last 90 days, oldest first: not_expected, attended, missed or pending.
    #[schemars(with = "Vec<String>")]
    pub timeline: Vec<Day>,
}

/// A dose given.
#[derive(Serialize, JsonSchema)]
pub struct DoseView {
    pub day: NaiveDate,
    /// 1 for the first portion of the day.
    pub portion: u16,
    pub mg: u32,
    pub site_id: i64,
    pub guest: bool,
    pub rule: String,
    pub given_at: String,
}

async fn api_doses(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<DoseView>>> {
    let c = open_client(&st, &me, &id, "dose history").await?;
    let today = st.today();
    let doses = st
        .store
        .doses_between(c.id, today - Duration::days(90), today)
        .await?;
    Ok(Json(
        doses
            .iter()
            .map(|d| DoseView {
                day: d.day,
                portion: u16::from(d.portion) + 1,
                mg: d.mg,
                site_id: d.site_id,
                guest: d.guest,
                rule: d.rule.clone(),
                given_at: d.given_at.to_rfc3339(),
            })
            .collect(),
    ))
}

/// A stock delivery.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    pub bottles: u32,
    pub ml_per_bottle: f64,
    pub concentration_mg_per_ml: f64,
    pub lot: String,
    #[serde(default)]
    pub received_on: Option<String>,
}

async fn api_receipt(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<ReceiptRequest>,
) -> AppResult<(StatusCode, Json<ReceiptAnswer>)> {
    let r = Receipt {
        bottles: req.bottles,
        ml_per_bottle: req.ml_per_bottle,
        concentration_mg_per_ml: req.concentration_mg_per_ml,
        lot: req.lot.trim().to_owned(),
    };
    r.validate(&st.settings.clinic.stock)?;
    let on = past_or_today("received_on", req.received_on.as_deref(), st.today())?;
    let id = st
        .store
        .add_stock_receipt(&me.actor(), on, &r, st.now())
        .await?;
    Ok((StatusCode::CREATED, Json(ReceiptAnswer { id, ml: r.ml() })))
}

/// A stock delivery just recorded.
#[derive(Serialize, JsonSchema)]
pub struct ReceiptAnswer {
    pub id: i64,
    /// Volume delivered.
    pub ml: f64,
}

/// The stock expected now at a site.
#[derive(Serialize, JsonSchema)]
pub struct StockNow {
    pub day: NaiveDate,
    pub opening_ml: f64,
    /// The day of the close-out the opening volume comes from.
    pub opening_day: Option<NaiveDate>,
    pub received_ml: f64,
    /// What left the stock, net: `window_mg + boxed_mg - returned_mg`.
    pub dosed_mg: f64,
    /// Given at the window.
    pub window_mg: f64,
    /// Put into take-home boxes, on the day each was loaded.
    pub boxed_mg: f64,
    /// Back from returned boxes' unopened compartments, on the day each was reconciled.
    pub returned_mg: f64,
    pub expected_ml: f64,
    pub concentration_mg_per_ml: f64,
}

/// A past close-out.
#[derive(Serialize, JsonSchema)]
pub struct CloseOutView {
    pub day: NaiveDate,
    pub expected_ml: f64,
    pub measured_ml: f64,
    pub variance_ml: f64,
    pub reason: String,
}

/// The stock now and the close-outs of the last 30 days.
#[derive(Serialize, JsonSchema)]
pub struct StockView {
    #[serde(flatten)]
    pub now: StockNow,
    pub closeouts: Vec<CloseOutView>,
}

/// Today's close-out just saved.
#[derive(Serialize, JsonSchema)]
pub struct CloseOutAnswer {
    pub day: NaiveDate,
    pub expected_ml: f64,
    pub measured_ml: f64,
    pub variance_ml: f64,
    /// The variance is beyond the tolerance.
    pub flagged: bool,
}

/// The stock expected now at `me`'s site.
pub async fn stock_now(st: &AppState, me: &CurrentUser) -> AppResult<StockNow> {
    let today = st.today();
    let (last, received, moves) = st
        .store
        .stock_movements(me.site.id, today, st.settings.utc_offset)
        .await?;
    let dosed = moves.net_mg();
    let opening = last.as_ref().map_or(0.0, |c| c.measured_ml);
    let expected = expected_ml(opening, received, dosed, &st.settings.clinic.stock);
    Ok(StockNow {
        day: today,
        opening_ml: opening,
        opening_day: last.as_ref().map(|c| c.day),
        received_ml: received,
        dosed_mg: dosed,
        window_mg: moves.window_mg,
        boxed_mg: moves.boxed_mg,
        returned_mg: moves.returned_mg,
        expected_ml: expected,
        concentration_mg_per_ml: st.settings.clinic.stock.concentration_mg_per_ml,
    })
}

async fn api_stock(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<StockView>> {
    let now = stock_now(&st, &me).await?;
    let closeouts = st.store.closeouts(me.site.id, 30).await?;
    Ok(Json(StockView {
        now,
        closeouts: closeouts
            .iter()
            .map(|c| CloseOutView {
                day: c.day,
                expected_ml: c.expected_ml,
                measured_ml: c.measured_ml,
                variance_ml: c.variance_ml,
                reason: c.reason.clone(),
            })
            .collect(),
    }))
}

/// The day's close-out.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseOutRequest {
    pub measured_ml: f64,
    #[serde(default)]
    pub reason: String,
}

/// Closes today's stock at `me`'s site.
pub async fn close_stock(
    st: &AppState,
    me: &CurrentUser,
    measured_ml: f64,
    reason: &str,
) -> AppResult<CloseOutAnswer> {
    let today = st.today();
    let (last, received, dosed) = st
        .store
        .stock_position(me.site.id, today, st.settings.utc_offset)
        .await?;
    let opening = last.as_ref().map_or(0.0, |c| c.measured_ml);
    let expected = expected_ml(opening, received, dosed, &st.settings.clinic.stock);
    let c = close_out(expected, measured_ml, reason, &st.settings.clinic.stock)?;
    st.store
        .save_closeout(&me.actor(), today, &c, reason.trim(), st.now())
        .await?;
    Ok(CloseOutAnswer {
        day: today,
        expected_ml: c.expected_ml,
        measured_ml: c.measured_ml,
        variance_ml: c.variance_ml,
        flagged: c.flagged,
    })
}

async fn api_closeout(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<CloseOutRequest>,
) -> AppResult<(StatusCode, Json<CloseOutAnswer>)> {
    Ok((
        StatusCode::CREATED,
        Json(close_stock(&st, &me, req.measured_ml, &req.reason).await?),
    ))
}

/// Adds the clinic's API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    let table = table.add(
        RouteSpec::api(
            Put,
            "/api/v1/clients/{id}/phone",
            Needs(ContactChange),
            "clients",
            "Change the phone number codes go to (audited)",
        )
        .answers::<PhoneAnswer>()
        .body::<PhoneRequest>(),
        api_change_phone,
    );
    table
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/dispensing/today",
                Needs(DoseRecord),
                "dispensing",
                "Today's day list of my centre",
            )
            .answers::<Vec<DayRow>>(),
            api_day_list,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/doses",
                Needs(DoseRecord),
                "dispensing",
                "Record an observed dose from the UIC",
            )
            .answers::<DoseAnswer>()
            .body::<DoseRequest>()
            .status(201),
            api_record_dose,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/doses",
                Needs(ClinicalRead),
                "dispensing",
                "Doses of the last 90 days",
            )
            .answers::<Vec<DoseView>>(),
            api_doses,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/orders",
                Needs(ClinicalRead),
                "orders",
                "Dose order history",
            )
            .answers::<Vec<OrderView>>(),
            api_orders,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/orders",
                Needs(Prescribe),
                "orders",
                "Write a dose order",
            )
            .answers::<OrderView>()
            .body::<OrderRequest>()
            .status(201),
            api_write_order,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/reviews",
                Needs(Prescribe),
                "orders",
                "Record a prescriber review after missed doses",
            )
            .answers_nothing()
            .body::<ReviewRequest>()
            .status(201),
            api_review,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/identity",
                Needs(IdentityRead),
                "clients",
                "Decrypted identifying fields (audited)",
            )
            .answers::<IdentityView>(),
            api_identity,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/clients/{id}/identity",
                Needs(ClientWrite),
                "clients",
                "Set identifying fields (stored encrypted)",
            )
            .body::<IdentityRequest>()
            .status(204),
            api_set_identity,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/find-by-name",
                Needs(IdentityRead),
                "clients",
                "Find clients of my centre by full name",
            )
            .answers::<Vec<ClientRecord>>()
            .body::<NameSearch>(),
            api_find_by_name,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/clients/{id}/stage",
                Needs(ClientWrite),
                "clients",
                "Change the treatment stage (a stage not dosed here ends a box out)",
            )
            .answers::<TreatmentChanged>()
            .body::<StageRequest>(),
            api_set_stage,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/discharge",
                Needs(ClientWrite),
                "clients",
                "Discharge from treatment (ends a box out with the client)",
            )
            .answers::<TreatmentChanged>()
            .body::<DischargeRequest>(),
            api_discharge,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/readmit",
                Needs(ClientWrite),
                "clients",
                "Re-admit a discharged client",
            )
            .status(204),
            api_readmit,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/transfer",
                Needs(ClientWrite),
                "clients",
                "Transfer to another centre (ends a box out with the client)",
            )
            .answers::<TreatmentChanged>()
            .body::<TransferRequest>(),
            api_transfer,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/guest-dosing",
                Needs(ClientWrite),
                "dispensing",
                "Let the client dose at another centre for a while",
            )
            .answers_nothing()
            .body::<SiteMove>()
            .status(201),
            api_guest,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/agreements",
                Needs(ClinicalRead),
                "agreements",
                "Treatment agreement versions",
            )
            .answers::<Vec<AgreementView>>(),
            api_agreements,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/agreements",
                Needs(ConsentManage),
                "agreements",
                "Record a signed agreement version",
            )
            .answers::<AgreementView>()
            .body::<AgreementRequest>()
            .status(201),
            api_add_agreement,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/consents",
                Needs(ClinicalRead),
                "agreements",
                "Consents and whether each is in force",
            )
            .answers::<Vec<ConsentView>>(),
            api_consents,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/consents",
                Needs(ConsentManage),
                "agreements",
                "Record a consent",
            )
            .answers::<ConsentView>()
            .body::<ConsentRequest>()
            .status(201),
            api_add_consent,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/consents/{id}/revoke",
                Needs(ConsentManage),
                "agreements",
                "Revoke a consent",
            )
            .answers::<ConsentView>()
            .body::<RevokeRequest>(),
            api_revoke_consent,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/urine-tests",
                Needs(ClinicalRead),
                "urine",
                "Urine test results",
            )
            .answers::<Vec<UrineView>>(),
            api_urine,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/urine-tests",
                Needs(UrineRecord),
                "urine",
                "Record a urine test",
            )
            .answers::<UrineRecorded>()
            .body::<UrineRequest>()
            .status(201),
            api_add_urine,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/adherence",
                Needs(ClinicalRead),
                "dispensing",
                "Adherence figures and 90-day timeline",
            )
            .answers::<AdherenceView>(),
            api_adherence,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/stock",
                Needs(StockManage),
                "stock",
                "Expected stock now and recent close-outs",
            )
            .answers::<StockView>(),
            api_stock,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/stock/receipts",
                Needs(StockManage),
                "stock",
                "Record a stock delivery",
            )
            .answers::<ReceiptAnswer>()
            .body::<ReceiptRequest>()
            .status(201),
            api_receipt,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/stock/closeouts",
                Needs(StockManage),
                "stock",
                "Close today's stock with the measured volume",
            )
            .answers::<CloseOutAnswer>()
            .body::<CloseOutRequest>()
            .status(201),
            api_closeout,
        )
}
