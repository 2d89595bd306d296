//! The clinic core over HTTP: the dispensing window (day list, one-action dose), dose orders
//! and reviews, the full client record (encrypted identity, stage, discharge, transfer, guest
//! dosing), agreements and consents, urine tests, adherence, and methadone stock.
//! Rules come from `anxin_domain::clinic`; this module gathers facts, applies them, and answers.

use std::collections::{BTreeMap, BTreeSet};

use anxin_domain::clinic::adherence::{adherence, Adherence};
use anxin_domain::clinic::missed::{missed_days, Decision};
use anxin_domain::clinic::orders::{order_on, DoseOrder, OrderKind, Step};
use anxin_domain::clinic::stage::Stage;
use anxin_domain::clinic::stock::{close_out, expected_ml, Receipt};
use anxin_domain::clinic::urine::{self, DueInput, DueReason, Outcome, Substance};
use anxin_domain::{Access, DomainError, Permission};
use anxin_storage::clinic::{Dose, DoseFacts, DoseWrite, Identity, NewDose, NewUrineTest};
use anxin_storage::Client;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{Duration, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

/// Parses a `YYYY-MM-DD` field.
pub fn parse_date(field: &str, raw: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| DomainError::invalid(field, format!("`{raw}` is not a date like 2026-11-22")))
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

/// One line of the dispensing window's day list.
#[derive(Debug, Clone, Serialize)]
pub struct DayRow {
    pub client_id: i64,
    pub uic: String,
    pub guest: bool,
    /// Daily dose ordered for today, if an order is in force.
    pub ordered_mg: Option<u32>,
    /// `give`, `withheld`, `no_order`, `done`.
    pub status: &'static str,
    /// The dose to give now (for the next portion), when status is `give`.
    pub give_mg: Option<u32>,
    pub rule: Option<&'static str>,
    pub explanation: String,
    pub missed_days: u32,
    pub portions: u8,
    pub portions_given: u8,
    pub urine_due: Option<DueReason>,
}

/// Applies the dispensing rules to one client's facts.
pub fn day_row(st: &AppState, f: &DoseFacts, today: NaiveDate) -> DayRow {
    let policy = st.settings.clinic;
    let order = order_on(&f.orders, today);
    let induction = f
        .orders
        .iter()
        .filter(|o| o.kind == OrderKind::Induction && o.start <= today)
        .map(|o| o.start)
        .max();
    let missed = missed_days(f.last_dose_before, induction, today);
    let reviewed = match (f.last_review, f.last_dose_before) {
        (Some(r), Some(d)) => r > d,
        (Some(_), None) => true,
        _ => false,
    };
    let portions_given = f.doses_today.len() as u8;
    let urine_due = urine_due(st, f, today);
    let base = DayRow {
        client_id: f.client.id,
        uic: f.client.uic.clone(),
        guest: f.guest,
        ordered_mg: None,
        status: "no_order",
        give_mg: None,
        rule: None,
        explanation: "no dose order in force".into(),
        missed_days: missed,
        portions: 1,
        portions_given,
        urine_due,
    };
    let Some(order) = order else {
        return base;
    };
    let Some(ordered) = order.mg_on(today) else {
        return base;
    };
    let decision = policy.missed.decide(ordered, missed, reviewed);
    let mut row = DayRow {
        ordered_mg: Some(ordered),
        portions: order.split,
        rule: Some(decision.rule().code()),
        explanation: decision.explain(),
        ..base
    };
    match decision {
        Decision::Withhold { .. } => row.status = "withheld",
        Decision::Give { mg, .. } => {
            if portions_given >= order.split {
                row.status = "done";
            } else {
                row.status = "give";
                row.give_mg = Some(order.portion_mg(mg, portions_given));
            }
        }
    }
    row
}

fn urine_due(st: &AppState, f: &DoseFacts, today: NaiveDate) -> Option<DueReason> {
    let community_since =
        (f.client.stage == Stage::CommunityTreatment).then_some(f.client.stage_since);
    let period_start = community_since.map(|s| {
        let years = (today - s).num_days() / 365;
        if years == 0 {
            s
        } else {
            s + Duration::days(365)
        }
    });
    let tests_this_period = period_start
        .map(|p| f.urine_dates.iter().filter(|d| **d >= p).count() as u32)
        .unwrap_or(0);
    urine::due(
        &st.vault.urine_draw_key(),
        DueInput {
            client_id: f.client.id,
            today,
            rate: st.settings.clinic.urine_random_rate,
            community_since,
            tests_this_period,
            tested_today: f.urine_dates.contains(&today),
        },
    )
}

/// The day list of `me`'s site.
pub async fn day_list(st: &AppState, me: &CurrentUser) -> AppResult<Vec<DayRow>> {
    let today = st.today();
    let facts = st.store.day_facts(me.site.id, today).await?;
    Ok(facts
        .iter()
        .filter(|f| f.client.stage.doses_at_centre())
        .map(|f| day_row(st, f, today))
        .collect())
}

/// A dose at the window.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DoseRequest {
    /// The client's UIC.
    pub uic: String,
}

/// What the window shows after a dose request.
#[derive(Debug, Serialize)]
pub struct DoseAnswer {
    pub dose_id: i64,
    pub uic: String,
    pub mg: u32,
    pub portion: u8,
    pub portions: u8,
    pub guest: bool,
    pub rule: String,
    pub given_at: String,
    pub urine_due: Option<DueReason>,
}

fn local_time(st: &AppState, d: &Dose) -> String {
    d.given_at
        .with_timezone(&st.settings.utc_offset)
        .format("%H:%M")
        .to_string()
}

/// Why the window refuses a dose to `uic` today, for a message in the user's language: the
/// client's day row and the time of today's first dose, if any.
pub async fn refusal(
    st: &AppState,
    me: &CurrentUser,
    uic: &str,
) -> AppResult<(DayRow, Option<String>)> {
    let today = st.today();
    let client = st.store.client_by_uic(uic.trim()).await?;
    let guest = client.site_id != me.site.id;
    let facts = st.store.dose_facts(client, guest, today).await?;
    let first = facts.doses_today.first().map(|d| local_time(st, d));
    Ok((day_row(st, &facts, today), first))
}

/// Records an observed dose from the UIC alone: the rules decide the amount.
pub async fn record_dose(st: &AppState, me: &CurrentUser, uic: &str) -> AppResult<DoseAnswer> {
    let today = st.today();
    let now = st.now();
    anxin_domain::validate::uic(uic.trim())?;
    let client = st.store.client_by_uic(uic).await?;
    if let Some(day) = client.discharged_on {
        return Err(DomainError::invalid(
            "uic",
            format!("client {} was discharged on {day}", client.uic),
        )
        .into());
    }
    if !client.stage.doses_at_centre() {
        return Err(DomainError::invalid(
            "uic",
            format!("client {} is in compulsory isolated treatment", client.uic),
        )
        .into());
    }
    let guest = if client.site_id == me.site.id {
        false
    } else if st.store.is_guest(client.id, me.site.id, today).await? {
        true
    } else {
        st.store
            .audit(
                &me.actor(),
                anxin_storage::AuditEvent::new("dose.denied", "client", client.id)
                    .site(me.site.id)
                    .reason("other centre, no guest arrangement"),
                now,
            )
            .await?;
        return Err(DomainError::Forbidden(
            "this client belongs to another centre and has no guest dosing arrangement here today"
                .into(),
        )
        .into());
    };
    let facts = st.store.dose_facts(client.clone(), guest, today).await?;
    let row = day_row(st, &facts, today);
    match row.status {
        "no_order" => {
            return Err(DomainError::Conflict(format!(
                "{}: no dose order in force today",
                client.uic
            ))
            .into())
        }
        "withheld" => {
            st.store
                .audit(
                    &me.actor(),
                    anxin_storage::AuditEvent::new("dose.withheld", "client", client.id)
                        .site(me.site.id)
                        .reason(row.explanation.clone()),
                    now,
                )
                .await?;
            return Err(
                DomainError::Conflict(format!("{}: {}", client.uic, row.explanation)).into(),
            );
        }
        "done" => {
            let first = facts.doses_today.first();
            let when = first.map(|d| local_time(st, d)).unwrap_or_default();
            return Err(DomainError::Conflict(format!(
                "{} was already dosed today at {when}",
                client.uic
            ))
            .into());
        }
        _ => {}
    }
    let mg = row.give_mg.unwrap_or(0);
    let written = st
        .store
        .insert_dose(
            &me.actor(),
            &NewDose {
                client_id: client.id,
                day: today,
                portion: row.portions_given,
                mg,
                site_id: me.site.id,
                guest,
                rule: row.rule.unwrap_or("normal").to_owned(),
            },
            now,
        )
        .await?;
    match written {
        DoseWrite::Given(d) => Ok(DoseAnswer {
            dose_id: d.id,
            uic: client.uic,
            mg: d.mg,
            portion: d.portion + 1,
            portions: row.portions,
            guest,
            rule: d.rule.clone(),
            given_at: local_time(st, &d),
            urine_due: row.urine_due,
        }),
        // Another window got there first (a race the unique key settles).
        DoseWrite::AlreadyGiven(first) => Err(DomainError::Conflict(format!(
            "{} was already dosed today at {}",
            client.uic,
            local_time(st, &first)
        ))
        .into()),
    }
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
    raw.parse()
        .map_err(|_| DomainError::invalid("id", format!("`{raw}` is not a number")))
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

/// A dose order.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// induction, titration or maintenance
    pub kind: String,
    /// YYYY-MM-DD
    pub start: String,
    pub mg: u32,
    #[serde(default)]
    pub steps: Vec<StepRequest>,
    /// 1 (default) or 2 portions a day
    #[serde(default)]
    pub split: Option<u8>,
    #[serde(default)]
    pub reason: String,
}

/// A titration step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    pub from: String,
    pub mg: u32,
}

/// Writes an order for a client (prescribers only, by route).
pub async fn write_order(
    st: &AppState,
    me: &CurrentUser,
    id: &str,
    req: OrderRequest,
) -> AppResult<Value> {
    let mut steps = vec![];
    for (i, s) in req.steps.iter().enumerate() {
        steps.push(Step {
            from: parse_date(&format!("steps[{i}].from"), &s.from)?,
            mg: s.mg,
        });
    }
    let order = DoseOrder {
        kind: OrderKind::parse(&req.kind)?,
        start: parse_date("start", &req.start)?,
        mg: req.mg,
        steps,
        split: req.split.unwrap_or(1),
        reason: req.reason,
    };
    order.validate(st.settings.clinic.orders, st.today())?;
    let stored = st
        .store
        .add_order(&me.actor(), client_id(id)?, &order, st.now())
        .await?;
    Ok(order_json(&stored))
}

fn order_json(o: &anxin_storage::clinic::StoredOrder) -> Value {
    json!({
        "id": o.id,
        "kind": o.order.kind.as_str(),
        "start": o.order.start,
        "mg": o.order.mg,
        "steps": o.order.steps,
        "split": o.order.split,
        "reason": o.order.reason,
        "prescriber_id": o.prescriber_id,
        "written_at": o.created_at.to_rfc3339(),
    })
}

async fn api_write_order(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<OrderRequest>,
) -> AppResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        Json(write_order(&st, &me, &id, req).await?),
    ))
}

async fn api_orders(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let c = open_client(&st, &me, &id, "orders").await?;
    let orders = st.store.orders(c.id).await?;
    Ok(Json(Value::Array(orders.iter().map(order_json).collect())))
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

/// Identifying fields (all optional).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityRequest {
    pub name: Option<String>,
    pub national_id: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

fn clean(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn check_national_id(id: &str) -> Result<(), DomainError> {
    // Resident identity card: 17 digits and a digit or X check character.
    let ok = id.len() == 18
        && id[..17].chars().all(|c| c.is_ascii_digit())
        && id[17..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == 'X' || c == 'x');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "national_id",
            "must be 18 characters: 17 digits and a digit or X",
        ))
    }
}

async fn api_set_identity(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IdentityRequest>,
) -> AppResult<StatusCode> {
    let identity = Identity {
        name: clean(req.name),
        national_id: clean(req.national_id).map(|s| s.to_uppercase()),
        phone: clean(req.phone),
        address: clean(req.address),
    };
    if let Some(n) = &identity.national_id {
        check_national_id(n)?;
    }
    let identity = Identity {
        phone: identity
            .phone
            .map(|p| anxin_domain::phone::normalize("phone", &p).map(|e| e.as_str().to_owned()))
            .transpose()?,
        ..identity
    };
    let c = client_id(&id)?;
    st.store
        .set_identity(&me.actor(), c, &identity, &st.vault, st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_identity(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Identity>> {
    let c = client_id(&id)?;
    Ok(Json(
        st.store
            .read_identity(&me.actor(), c, "identity view", &st.vault, st.now())
            .await?,
    ))
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
) -> AppResult<Json<Value>> {
    let masked = change_phone(&st, &me, &id, &req.phone).await?;
    Ok(Json(json!({"phone": masked})))
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
) -> AppResult<Json<Value>> {
    if req.name.trim().is_empty() {
        return Err(DomainError::invalid("name", "must not be blank").into());
    }
    let found = st
        .store
        .find_by_name(&me.actor(), &req.name, &st.vault, st.now())
        .await?;
    Ok(Json(Value::Array(found.iter().map(client_json).collect())))
}

/// The record fields of a client (no identity).
pub fn client_json(c: &Client) -> Value {
    json!({
        "id": c.id,
        "uic": c.uic,
        "site_id": c.site_id,
        "enrolled_on": c.enrolled_on,
        "stage": c.stage,
        "stage_since": c.stage_since,
        "discharged_on": c.discharged_on,
        "discharge_reason": c.discharge_reason,
    })
}

/// A change of stage.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    /// voluntary, community_treatment, compulsory_isolated, community_rehabilitation
    pub stage: String,
    /// YYYY-MM-DD, default today
    #[serde(default)]
    pub since: Option<String>,
}

async fn api_set_stage(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StageRequest>,
) -> AppResult<StatusCode> {
    let stage: Stage = req.stage.parse()?;
    let since = past_or_today("since", req.since.as_deref(), st.today())?;
    st.store
        .set_stage(&me.actor(), client_id(&id)?, stage, since, st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A discharge.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DischargeRequest {
    pub reason: String,
    #[serde(default)]
    pub on: Option<String>,
}

async fn api_discharge(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DischargeRequest>,
) -> AppResult<StatusCode> {
    let on = past_or_today("on", req.on.as_deref(), st.today())?;
    st.store
        .discharge(&me.actor(), client_id(&id)?, on, &req.reason, st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_readmit(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    st.store
        .readmit(&me.actor(), client_id(&id)?, st.today(), st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A transfer or guest arrangement naming another site.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteMove {
    /// The other site's code.
    pub site: String,
    /// YYYY-MM-DD (guest dosing: first day; transfer: the day of transfer, default today)
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
    ApiJson(req): ApiJson<SiteMove>,
) -> AppResult<StatusCode> {
    let site = st.store.site_by_code(&req.site).await.map_err(|_| {
        DomainError::invalid("site", format!("no site has the code `{}`", req.site))
    })?;
    let on = past_or_today("from", req.from.as_deref(), st.today())?;
    st.store
        .transfer(&me.actor(), client_id(&id)?, site.id, on, st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
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

/// A treatment agreement version.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementRequest {
    pub method: String,
    pub duration_months: i64,
    pub rules: String,
    /// client or guardian
    pub signed_by: String,
    #[serde(default)]
    pub guardian_name: Option<String>,
    #[serde(default)]
    pub signed_on: Option<String>,
}

async fn api_add_agreement(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AgreementRequest>,
) -> AppResult<(StatusCode, Json<Value>)> {
    if req.method.trim().is_empty() {
        return Err(DomainError::invalid(
            "method",
            "name the treatment method, e.g. methadone maintenance",
        )
        .into());
    }
    if !(1..=120).contains(&req.duration_months) {
        return Err(DomainError::invalid("duration_months", "must be between 1 and 120").into());
    }
    if req.rules.trim().is_empty() {
        return Err(DomainError::invalid("rules", "write the rules the client agrees to").into());
    }
    let guardian = clean(req.guardian_name);
    match (req.signed_by.as_str(), &guardian) {
        ("client", _) => {}
        ("guardian", Some(_)) => {}
        ("guardian", None) => {
            return Err(DomainError::invalid(
                "guardian_name",
                "a guardian's signature needs the guardian's name",
            )
            .into())
        }
        (other, _) => {
            return Err(DomainError::invalid(
                "signed_by",
                format!("`{other}`: expected client or guardian"),
            )
            .into())
        }
    }
    let signed_on = past_or_today("signed_on", req.signed_on.as_deref(), st.today())?;
    let a = st
        .store
        .add_agreement(
            &me.actor(),
            client_id(&id)?,
            req.method.trim(),
            req.duration_months,
            req.rules.trim(),
            &req.signed_by,
            guardian.as_deref(),
            signed_on,
            st.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(a))))
}

async fn api_agreements(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let c = open_client(&st, &me, &id, "agreements").await?;
    Ok(Json(json!(st.store.agreements(c.id).await?)))
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
) -> AppResult<(StatusCode, Json<Value>)> {
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
    Ok((StatusCode::CREATED, Json(json!(c))))
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
) -> AppResult<Json<Value>> {
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
    Ok(Json(json!(c)))
}

async fn api_consents(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let c = open_client(&st, &me, &id, "consents").await?;
    let today = st.today();
    let list: Vec<Value> = st
        .store
        .consents(c.id)
        .await?
        .iter()
        .map(|x| {
            let mut v = json!(x);
            v["active"] = json!(x.active_on(today));
            v
        })
        .collect();
    Ok(Json(Value::Array(list)))
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
) -> AppResult<(StatusCode, Json<Value>)> {
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
        Json(json!({"id": t.id, "negative": t.outcome.negative()})),
    ))
}

async fn api_urine(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let c = open_client(&st, &me, &id, "urine tests").await?;
    let tests = st.store.urine_tests(c.id).await?;
    Ok(Json(Value::Array(
        tests
            .iter()
            .map(|t| json!({"id": t.id, "collected_on": t.collected_on, "observed": t.observed, "outcome": t.outcome, "negative": t.outcome.negative(), "reason": t.reason}))
            .collect(),
    )))
}

/// Adherence and urine figures of a client as of today.
pub async fn client_adherence(st: &AppState, c: &Client) -> AppResult<(Adherence, u32)> {
    let today = st.today();
    let doses = st
        .store
        .doses_between(c.id, today - Duration::days(120), today)
        .await?;
    // Take-home days count as attended only once the returned box's log confirms them.
    let attended: BTreeSet<NaiveDate> = doses
        .iter()
        .filter(|d| {
            !matches!(
                d.rule.as_str(),
                "take_home_pending" | "take_home_unopened" | "take_home_lost"
            )
        })
        .map(|d| d.day)
        .collect();
    let orders = st.store.orders(c.id).await?;
    let first = orders
        .iter()
        .map(|o| o.order.start)
        .min()
        .unwrap_or(c.enrolled_on)
        .max(c.enrolled_on);
    let tests = st.store.urine_tests(c.id).await?;
    let streak = urine::negative_streak(tests.iter().map(|t| &t.outcome));
    Ok((adherence(first, &attended, today), streak))
}

async fn api_adherence(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let c = open_client(&st, &me, &id, "adherence").await?;
    let (a, streak) = client_adherence(&st, &c).await?;
    Ok(Json(json!({
        "last_30": a.last_30, "last_90": a.last_90,
        "last_30_percent": a.last_30.percent(), "last_90_percent": a.last_90.percent(),
        "current_streak": a.current_streak, "longest_gap_90": a.longest_gap_90,
        "urine_negative_streak": streak, "timeline": a.timeline,
    })))
}

async fn api_doses(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let c = open_client(&st, &me, &id, "dose history").await?;
    let today = st.today();
    let doses = st
        .store
        .doses_between(c.id, today - Duration::days(90), today)
        .await?;
    Ok(Json(Value::Array(
        doses
            .iter()
            .map(|d| json!({"day": d.day, "portion": d.portion + 1, "mg": d.mg, "site_id": d.site_id, "guest": d.guest, "rule": d.rule, "given_at": d.given_at.to_rfc3339()}))
            .collect(),
    )))
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
) -> AppResult<(StatusCode, Json<Value>)> {
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
    Ok((StatusCode::CREATED, Json(json!({"id": id, "ml": r.ml()}))))
}

/// The stock expected now at `me`'s site.
pub async fn stock_now(st: &AppState, me: &CurrentUser) -> AppResult<Value> {
    let today = st.today();
    let (last, received, dosed) = st.store.stock_position(me.site.id, today).await?;
    let opening = last.as_ref().map_or(0.0, |c| c.measured_ml);
    let expected = expected_ml(opening, received, dosed, &st.settings.clinic.stock);
    Ok(json!({
        "day": today,
        "opening_ml": opening,
        "opening_day": last.as_ref().map(|c| c.day),
        "received_ml": received,
        "dosed_mg": dosed,
        "expected_ml": expected,
        "concentration_mg_per_ml": st.settings.clinic.stock.concentration_mg_per_ml,
    }))
}

async fn api_stock(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<Value>> {
    let mut v = stock_now(&st, &me).await?;
    let closeouts = st.store.closeouts(me.site.id, 30).await?;
    v["closeouts"] = Value::Array(
        closeouts
            .iter()
            .map(|c| json!({"day": c.day, "expected_ml": c.expected_ml, "measured_ml": c.measured_ml, "variance_ml": c.variance_ml, "reason": c.reason}))
            .collect(),
    );
    Ok(Json(v))
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
) -> AppResult<Value> {
    let today = st.today();
    let (last, received, dosed) = st.store.stock_position(me.site.id, today).await?;
    let opening = last.as_ref().map_or(0.0, |c| c.measured_ml);
    let expected = expected_ml(opening, received, dosed, &st.settings.clinic.stock);
    let c = close_out(expected, measured_ml, reason, &st.settings.clinic.stock)?;
    st.store
        .save_closeout(&me.actor(), today, &c, reason.trim(), st.now())
        .await?;
    Ok(
        json!({"day": today, "expected_ml": c.expected_ml, "measured_ml": c.measured_ml, "variance_ml": c.variance_ml, "flagged": c.flagged}),
    )
}

async fn api_closeout(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<CloseOutRequest>,
) -> AppResult<(StatusCode, Json<Value>)> {
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
            ),
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
            .body::<DoseRequest>()
            .status(201),
            api_record_dose,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/doses",
                Needs(ClientRead),
                "dispensing",
                "Doses of the last 90 days",
            ),
            api_doses,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/orders",
                Needs(ClientRead),
                "orders",
                "Dose order history",
            ),
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
            ),
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
            .body::<NameSearch>(),
            api_find_by_name,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/clients/{id}/stage",
                Needs(ClientWrite),
                "clients",
                "Change the treatment stage",
            )
            .body::<StageRequest>()
            .status(204),
            api_set_stage,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/discharge",
                Needs(ClientWrite),
                "clients",
                "Discharge from treatment",
            )
            .body::<DischargeRequest>()
            .status(204),
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
                "Transfer to another centre",
            )
            .body::<SiteMove>()
            .status(204),
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
            .body::<SiteMove>()
            .status(201),
            api_guest,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/agreements",
                Needs(ClientRead),
                "agreements",
                "Treatment agreement versions",
            ),
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
            .body::<AgreementRequest>()
            .status(201),
            api_add_agreement,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/consents",
                Needs(ClientRead),
                "agreements",
                "Consents and whether each is in force",
            ),
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
            .body::<RevokeRequest>(),
            api_revoke_consent,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/urine-tests",
                Needs(ClientRead),
                "urine",
                "Urine test results",
            ),
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
            .body::<UrineRequest>()
            .status(201),
            api_add_urine,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/adherence",
                Needs(ClientRead),
                "dispensing",
                "Adherence figures and 90-day timeline",
            ),
            api_adherence,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/stock",
                Needs(StockManage),
                "stock",
                "Expected stock now and recent close-outs",
            ),
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
            .body::<CloseOutRequest>()
            .status(201),
            api_closeout,
        )
}
