//! The one-stop shop over HTTP: recording service encounters and therapeutic-community episodes,
//! clients' sex and birth year, and the health indicators — as JSON, CSV and DHIS2
//! `dataValueSets`, and as a dashboard page (`/indicators`) with tables and an SVG chart.
//!
//! Managers see their own centre's full tables. The CDC (`cdc_analyst`) sees aggregates only,
//! for one centre or the whole deployment, with every cell below the threshold suppressed
//! (complementary suppression included, see `anxin_domain::indicators::suppress`), and every
//! answer it receives is recorded in the audit trail as `disclosure.cdc_export`.

use std::collections::HashMap;
use std::fmt::Write as _;

use anxin_domain::indicators::{
    self, compute, suppress, value, AgeBand, Figure, Period, Sex, Suppressed, Unit,
};
use anxin_domain::services::{ArvOutcome, Service, TcEpisode};
use anxin_domain::{Access, DomainError, Permission};
use anxin_storage::services::{Dhis2Entry, Encounter, NewEncounter, StoredEpisode, Subject};
use anxin_storage::AuditEvent;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Datelike;
use maud::{html, Markup};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::CurrentUser;
use crate::clinic::{parse_date, past_or_today};
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{after_form, flash, layout, Flash, WebResult, T};

/// Cells below this are suppressed in what the CDC receives.
/// (A configuration key for it belongs in `config.rs`; until then this is the CDC's rule of 5.)
pub const SUPPRESSION_THRESHOLD: u64 = 5; // the default of `indicators.suppression_threshold`

/// A service encounter to record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncounterRequest {
    /// An enrolled client of my centre…
    #[serde(default)]
    pub client_id: Option<i64>,
    /// …or an anonymous outreach contact's UIC.
    #[serde(default)]
    pub uic: Option<String>,
    /// For anonymous contacts: male, female or unknown.
    #[serde(default)]
    pub sex: Option<String>,
    /// For anonymous contacts.
    #[serde(default)]
    pub birth_year: Option<i32>,
    /// Day of the encounter, `YYYY-MM-DD` (default today).
    #[serde(default)]
    pub on: Option<String>,
    /// The service, tagged by `kind`: e.g. `{"kind": "needle_exchange", "given": 20,
    /// "returned": 18}`, `{"kind": "hiv_test", "tested_on": "2026-11-20", "result": "negative",
    /// "pre_counselled": true, "post_counselled": true, "told_result": true}`,
    /// `{"kind": "arv_referral", "referred_on": "…", "outcome": "linked", "outcome_on": "…"}`.
    pub service: Value,
}

/// The outcome of an ARV referral, learned after it was recorded.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArvOutcomeRequest {
    /// pending, linked, not_linked or lost.
    pub outcome: String,
    /// The day treatment started (required for `linked`), or the day the outcome was known;
    /// `YYYY-MM-DD`, not before the referral.
    #[serde(default)]
    pub outcome_on: Option<String>,
}

/// An ARV outcome by its stable name (as in the encounter JSON); refused naming `outcome`.
fn parse_arv_outcome(raw: &str) -> Result<ArvOutcome, DomainError> {
    serde_json::from_value(Value::String(raw.trim().to_owned()))
        .map_err(|_| DomainError::invalid("outcome", "use pending, linked, not_linked or lost"))
}

/// The stable name of an ARV outcome.
fn arv_outcome_name(o: ArvOutcome) -> &'static str {
    match o {
        ArvOutcome::Pending => "pending",
        ArvOutcome::Linked => "linked",
        ArvOutcome::NotLinked => "not_linked",
        ArvOutcome::Lost => "lost",
    }
}

/// Checks an outcome update's fields and stores it (API and form share this).
async fn set_arv_outcome(
    st: &AppState,
    me: &CurrentUser,
    id: i64,
    outcome: &str,
    outcome_on: Option<&str>,
) -> AppResult<anxin_storage::services::Encounter> {
    let outcome = parse_arv_outcome(outcome)?;
    let outcome_on = outcome_on
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_date("outcome_on", s))
        .transpose()?;
    Ok(st
        .store
        .set_arv_outcome(&me.actor(), id, outcome, outcome_on, st.today(), st.now())
        .await?)
}

async fn api_arv_outcome(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ArvOutcomeRequest>,
) -> AppResult<Json<EncounterView>> {
    let e = set_arv_outcome(&st, &me, id, &req.outcome, req.outcome_on.as_deref()).await?;
    Ok(Json(EncounterView::from(&e)))
}

/// How many referrals the referrals page lists.
const REFERRALS_SHOWN: i64 = 200;

async fn referrals_page(
    State(st): State<AppState>,
    me: CurrentUser,
    f: Flash,
) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let list = st.store.arv_referrals(&me.actor(), REFERRALS_SHOWN).await?;
    let outcomes = [
        ArvOutcome::Pending,
        ArvOutcome::Linked,
        ArvOutcome::NotLinked,
        ArvOutcome::Lost,
    ];
    Ok(layout(
        &t,
        &t.s("arv-title"),
        Some(&me),
        html! {
            h1 { (t.s("arv-title")) }
            (flash(&f))
            @if list.is_empty() {
                p.muted { (t.s("arv-none")) }
            } @else {
                table.list id="arv-referrals" {
                    thead { tr {
                        th { (t.s("arv-who")) } th { (t.s("arv-referred-on")) }
                        th { (t.s("arv-outcome")) } th { (t.s("arv-update")) }
                    } }
                    tbody {
                        @for e in &list {
                            @if let Service::ArvReferral { referred_on, outcome, outcome_on } = &e.service {
                                tr id={"arv-" (e.id)} {
                                    td {
                                        @if let Some(c) = e.client_id {
                                            a href={"/clients/" (c)} { (t.a("arv-client", &[("id", &c.to_string())])) }
                                        } @else {
                                            code { (e.uic.as_deref().unwrap_or("")) }
                                        }
                                    }
                                    td { (referred_on) }
                                    td {
                                        (t.s(&format!("arv-outcome-{}", arv_outcome_name(*outcome))))
                                        @if let Some(d) = outcome_on { " · " (d) }
                                    }
                                    td {
                                        form method="post" action={"/referrals/" (e.id) "/outcome"} {
                                            input type="hidden" name="csrf" value=(me.csrf_token);
                                            select name="outcome" aria-label=(t.s("arv-outcome")) {
                                                @for o in outcomes {
                                                    option value=(arv_outcome_name(o)) selected[o == *outcome] {
                                                        (t.s(&format!("arv-outcome-{}", arv_outcome_name(o))))
                                                    }
                                                }
                                            }
                                            label { (t.s("arv-outcome-on")) " "
                                                input type="date" name="outcome_on" min=(referred_on)
                                                    value=(outcome_on.map(|d| d.to_string()).unwrap_or_default());
                                            }
                                            button type="submit" { (t.s("arv-save")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// The referrals page's outcome form.
#[derive(Debug, Deserialize)]
struct ArvOutcomeForm {
    outcome: String,
    #[serde(default)]
    outcome_on: Option<String>,
}

async fn referral_outcome_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<ArvOutcomeForm>,
) -> Response {
    after_form(
        "/referrals",
        set_arv_outcome(&st, &me, id, &f.outcome, f.outcome_on.as_deref()).await,
    )
}

/// A client's sex and year of birth.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DemographicsRequest {
    #[serde(default)]
    pub sex: Option<String>,
    #[serde(default)]
    pub birth_year: Option<i32>,
}

/// A therapeutic-community episode (new, or the new state of one).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcRequest {
    /// Only when opening an episode.
    #[serde(default)]
    pub client_id: Option<i64>,
    pub admitted_on: String,
    /// entry, primary, re_entry, aftercare.
    pub phase: String,
    #[serde(default)]
    pub left_on: Option<String>,
    /// completed or dropped_out.
    #[serde(default)]
    pub exit: Option<String>,
    /// 6-month follow-up urine after leaving: true is negative.
    #[serde(default)]
    pub urine_negative_6m: Option<bool>,
    #[serde(default)]
    pub urine_negative_12m: Option<bool>,
}

/// The whole DHIS2 mapping.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingRequest {
    pub entries: Vec<MappingEntry>,
}

/// The JSON shape of a service (schema only; [`Service`] writes it): `kind` names the service,
/// the other fields depend on it (needle_exchange: given, returned, reason; naloxone: kits;
/// condoms: count; peer_education: educator, topic; hiv_test, arv_referral, …).
#[derive(JsonSchema)]
#[schemars(rename = "Service")]
#[allow(dead_code)]
struct ServiceShape {
    kind: String,
}

/// The JSON shape of a therapeutic-community episode (schema only; [`TcEpisode`] writes it).
#[derive(JsonSchema)]
#[schemars(rename = "TcEpisode")]
#[allow(dead_code)]
struct TcEpisodeShape {
    admitted_on: chrono::NaiveDate,
    /// entry, primary, re_entry or aftercare
    phase: String,
    left_on: Option<chrono::NaiveDate>,
    /// completed or dropped_out
    exit: Option<String>,
    /// Urine at 6 months after leaving: `true` is negative for non-prescribed opioids.
    urine_negative_6m: Option<bool>,
    urine_negative_12m: Option<bool>,
}

/// A service encounter as stored.
#[derive(Serialize, JsonSchema)]
pub struct EncounterView {
    pub id: i64,
    pub site_id: i64,
    /// The enrolled client, or `null` for an outreach contact.
    pub client_id: Option<i64>,
    /// The outreach contact's UIC.
    pub uic: Option<String>,
    pub on: chrono::NaiveDate,
    #[schemars(with = "ServiceShape")]
    pub service: Service,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Encounter> for EncounterView {
    fn from(e: &Encounter) -> Self {
        EncounterView {
            id: e.id,
            site_id: e.site_id,
            client_id: e.client_id,
            uic: e.uic.clone(),
            on: e.on,
            service: e.service.clone(),
            created_at: e.created_at,
        }
    }
}

/// A client's service encounters.
#[derive(Serialize, JsonSchema)]
pub struct EncounterList {
    pub encounters: Vec<EncounterView>,
}

/// A therapeutic-community episode as stored.
#[derive(Serialize, JsonSchema)]
pub struct EpisodeView {
    pub id: i64,
    pub site_id: i64,
    pub client_id: i64,
    #[schemars(with = "TcEpisodeShape")]
    pub episode: TcEpisode,
}

impl From<&StoredEpisode> for EpisodeView {
    fn from(e: &StoredEpisode) -> Self {
        EpisodeView {
            id: e.id,
            site_id: e.site_id,
            client_id: e.client_id,
            episode: e.episode.clone(),
        }
    }
}

/// The therapeutic-community episodes of a centre.
#[derive(Serialize, JsonSchema)]
pub struct EpisodeList {
    pub episodes: Vec<EpisodeView>,
}

/// One line of the DHIS2 mapping.
#[derive(Serialize, JsonSchema)]
pub struct Dhis2EntryView {
    pub indicator: String,
    pub sex: String,
    pub age_band: String,
    pub data_element: String,
    pub category_option_combo: String,
}

impl From<&Dhis2Entry> for Dhis2EntryView {
    fn from(e: &Dhis2Entry) -> Self {
        Dhis2EntryView {
            indicator: e.indicator.clone(),
            sex: e.sex.clone(),
            age_band: e.age_band.clone(),
            data_element: e.data_element.clone(),
            category_option_combo: e.category_option_combo.clone(),
        }
    }
}

/// The DHIS2 mapping in force.
#[derive(Serialize, JsonSchema)]
pub struct MappingView {
    pub entries: Vec<Dhis2EntryView>,
}

/// One DHIS2 data value.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataValue {
    pub data_element: String,
    pub category_option_combo: String,
    pub period: String,
    pub org_unit: String,
    pub value: String,
}

/// A DHIS2 `dataValueSets` payload.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DataValueSet {
    #[serde(rename = "dataValues")]
    pub data_values: Vec<DataValue>,
}

/// The JSON shape of a table after suppression (schema only): `null` is a hidden cell.
#[derive(JsonSchema)]
#[schemars(rename = "SuppressedTable")]
#[allow(dead_code)]
struct SuppressedShape {
    /// Rows by sex, columns by age band.
    cells: Vec<Vec<Option<u64>>>,
    row_totals: Vec<Option<u64>>,
    col_totals: Vec<Option<u64>>,
    total: Option<u64>,
}

/// The indicators of a period.
#[derive(Serialize, JsonSchema)]
pub struct IndicatorsView {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    /// A centre's code, or `all`.
    pub site: String,
    pub suppressed: bool,
    /// Cells below it are hidden (suppressed reports only).
    pub threshold: Option<u64>,
    /// The sexes of the table rows.
    pub rows: Vec<&'static str>,
    /// The age bands of the table columns.
    pub columns: Vec<&'static str>,
    pub indicators: Vec<Shown>,
}

/// Where one indicator cell goes in DHIS2.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingEntry {
    /// An indicator id; `<id>.denominator` maps the denominator of a rate.
    pub indicator: String,
    /// male, female, unknown or total.
    pub sex: String,
    /// under_25, 25_plus, unknown or total.
    pub age_band: String,
    pub data_element: String,
    pub category_option_combo: String,
}

fn parse_service(raw: &Value) -> Result<Service, AppError> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path == "." {
            "service".to_owned()
        } else {
            format!("service.{path}")
        };
        AppError::BadRequest {
            message: format!("{field}: {inner}"),
            field: Some(field),
        }
    })
}

async fn api_record_encounter(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<EncounterRequest>,
) -> AppResult<(StatusCode, Json<EncounterView>)> {
    let today = st.today();
    let on = past_or_today("on", req.on.as_deref(), today)?;
    let service = parse_service(&req.service)?;
    let subject = match (req.client_id, req.uic) {
        (Some(_), Some(_)) => {
            return Err(DomainError::invalid(
                "uic",
                "give either client_id (enrolled client) or uic (outreach contact), not both",
            )
            .into())
        }
        (None, None) => {
            return Err(DomainError::invalid(
                "client_id",
                "give client_id (enrolled client) or uic (outreach contact)",
            )
            .into())
        }
        (Some(id), None) => {
            if req.sex.is_some() || req.birth_year.is_some() {
                return Err(DomainError::invalid(
                    "sex",
                    "an enrolled client's sex and birth year are set on the client record",
                )
                .into());
            }
            Subject::Client(id)
        }
        (None, Some(uic)) => Subject::Anonymous {
            uic,
            sex: Sex::parse("sex", req.sex.as_deref())?,
            birth_year: req.birth_year,
        },
    };
    let e = st
        .store
        .record_encounter(
            &me.actor(),
            &NewEncounter {
                subject,
                on,
                service,
            },
            today,
            st.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(EncounterView::from(&e))))
}

async fn api_client_encounters(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Json<EncounterList>> {
    // The audited, site-scoped read of the record comes first.
    st.store
        .read_client(&me.actor(), id, "service encounters", st.now())
        .await?;
    let list = st.store.client_encounters(&me.actor(), id).await?;
    Ok(Json(EncounterList {
        encounters: list.iter().map(EncounterView::from).collect(),
    }))
}

async fn api_demographics(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<DemographicsRequest>,
) -> AppResult<StatusCode> {
    let req = anxin_app::identity::Demographics {
        sex: req.sex,
        birth_year: req.birth_year,
    };
    anxin_app::identity::set_demographics(&st.app, &me.app_actor(), id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn episode(req: &TcRequest) -> Result<TcEpisode, DomainError> {
    use anxin_domain::services::{TcExit, TcPhase};
    Ok(TcEpisode {
        admitted_on: parse_date("admitted_on", &req.admitted_on)?,
        phase: TcPhase::parse("phase", req.phase.trim())?,
        left_on: req
            .left_on
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_date("left_on", s))
            .transpose()?,
        exit: req
            .exit
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| TcExit::parse("exit", s.trim()))
            .transpose()?,
        urine_negative_6m: req.urine_negative_6m,
        urine_negative_12m: req.urine_negative_12m,
    })
}

async fn api_open_tc(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<TcRequest>,
) -> AppResult<(StatusCode, Json<EpisodeView>)> {
    let client_id = req
        .client_id
        .ok_or_else(|| DomainError::invalid("client_id", "name the resident's client id"))?;
    let ep = episode(&req)?;
    let stored = st
        .store
        .open_tc_episode(&me.actor(), client_id, &ep, st.today(), st.now())
        .await?;
    Ok((StatusCode::CREATED, Json(EpisodeView::from(&stored))))
}

async fn api_update_tc(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<TcRequest>,
) -> AppResult<Json<EpisodeView>> {
    if req.client_id.is_some() {
        return Err(
            DomainError::invalid("client_id", "an episode's resident does not change").into(),
        );
    }
    let ep = episode(&req)?;
    let stored = st
        .store
        .update_tc_episode(&me.actor(), id, &ep, st.today(), st.now())
        .await?;
    Ok(Json(EpisodeView::from(&stored)))
}

async fn api_list_tc(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<EpisodeList>> {
    let list = st.store.tc_episodes(&me.actor()).await?;
    Ok(Json(EpisodeList {
        episodes: list.iter().map(EpisodeView::from).collect(),
    }))
}

/// What a report is about: a period, and one site or the whole deployment.
#[derive(Debug, Clone)]
pub struct Scope {
    pub period: Period,
    /// `None` for the whole deployment.
    pub site: Option<(i64, String)>,
    /// Suppressed (outside roles) or full (the centre's manager).
    pub suppressed: bool,
}

impl Scope {
    fn site_label(&self) -> &str {
        self.site.as_ref().map_or("all", |(_, code)| code.as_str())
    }
}

/// Reads `from`, `to` and `site` for `me`. Managers see only their own centre; outside roles
/// may ask for one centre (`site=CODE`) or the deployment (`site=all`, the default).
pub async fn scope(
    st: &AppState,
    me: &CurrentUser,
    q: &HashMap<String, String>,
) -> AppResult<Scope> {
    let today = st.today();
    let from = match q.get("from").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(f) => parse_date("from", f)?,
        None => today.with_day(1).unwrap_or(today),
    };
    let to = match q.get("to").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(t) => parse_date("to", t)?,
        None => today,
    };
    let period = Period::new(from, to)?;
    let outside = me.role().is_outside();
    let asked = q
        .get("site")
        .map(|s| s.trim().to_uppercase())
        .filter(|s| !s.is_empty());
    let site = match (outside, asked.as_deref()) {
        (true, None | Some("ALL")) => None,
        (true, Some(code)) => {
            let s = st.store.site_by_code(code).await.map_err(|_| {
                DomainError::invalid("site", format!("no centre has the code `{code}`"))
            })?;
            Some((s.id, s.code))
        }
        (false, None) => Some((me.site.id, me.site.code.clone())),
        (false, Some(code)) if code == me.site.code => Some((me.site.id, me.site.code.clone())),
        (false, Some(_)) => {
            return Err(DomainError::Forbidden(
                "a centre's staff see the indicators of their own centre only".into(),
            )
            .into())
        }
    };
    Ok(Scope {
        period,
        site,
        suppressed: outside,
    })
}

/// One indicator as shown: its definition and its (possibly suppressed) tables.
#[derive(Debug, Clone, serde::Serialize, JsonSchema)]
pub struct Shown {
    pub id: &'static str,
    /// count, percent or per_person
    #[schemars(with = "String")]
    pub unit: Unit,
    pub numerator_definition: &'static str,
    pub denominator_definition: &'static str,
    /// Over everybody; `None` when a part is suppressed or the denominator is zero.
    pub value: Option<f64>,
    #[schemars(with = "SuppressedShape")]
    pub numerator: Suppressed,
    #[schemars(with = "Option<SuppressedShape>")]
    pub denominator: Option<Suppressed>,
}

fn show(f: &Figure, threshold: u64) -> Shown {
    let numerator = suppress(&f.numerator.rows(), threshold);
    let denominator = f.denominator.map(|d| suppress(&d.rows(), threshold));
    let v = match (&denominator, f.unit) {
        (_, Unit::Count) => numerator.total.map(|n| n as f64),
        (Some(d), unit) => match (numerator.total, d.total) {
            (Some(n), Some(dt)) => value(unit, n, Some(dt)),
            _ => None,
        },
        (None, _) => None,
    };
    let def = indicators::indicator(f.id);
    Shown {
        id: f.id,
        unit: f.unit,
        numerator_definition: def.map_or("", |i| i.numerator),
        denominator_definition: def.map_or("", |i| i.denominator),
        value: v,
        numerator,
        denominator,
    }
}

/// Computes the indicators of `scope` and, for outside roles, suppresses and records the
/// disclosure (`format` says what left: json, csv, dhis2, page) in the same step.
pub async fn report(
    st: &AppState,
    me: &CurrentUser,
    scope: &Scope,
    format: &str,
) -> AppResult<Vec<Shown>> {
    let inputs = st
        .store
        .indicator_inputs(scope.site.as_ref().map(|(id, _)| *id), &scope.period)
        .await?;
    let figures = compute(&scope.period, &inputs);
    let threshold = if scope.suppressed {
        st.settings.suppression_threshold
    } else {
        0
    };
    if scope.suppressed {
        let mut event = AuditEvent::new("disclosure.cdc_export", "indicators", scope.site_label())
            .reason(format!(
                "{format} export of {} indicators, {} to {}, cells below {threshold} suppressed",
                figures.len(),
                scope.period.from,
                scope.period.to
            ));
        if let Some((id, _)) = &scope.site {
            event = event.site(*id);
        }
        st.store.audit(&me.actor(), event, st.now()).await?;
    }
    Ok(figures.iter().map(|f| show(f, threshold)).collect())
}

async fn api_indicators(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<IndicatorsView>> {
    let scope = scope(&st, &me, &q).await?;
    let shown = report(&st, &me, &scope, "json").await?;
    Ok(Json(IndicatorsView {
        from: scope.period.from,
        to: scope.period.to,
        site: scope.site_label().to_owned(),
        suppressed: scope.suppressed,
        threshold: scope
            .suppressed
            .then_some(st.settings.suppression_threshold),
        rows: Sex::ALL.map(Sex::as_str).to_vec(),
        columns: AgeBand::ALL.map(AgeBand::as_str).to_vec(),
        indicators: shown,
    }))
}

fn cell_text(v: Option<u64>) -> String {
    v.map_or_else(|| "suppressed".to_owned(), |n| n.to_string())
}

/// The cells of a table with their sex and age-band labels, totals included (`total`).
fn labelled(t: &Suppressed) -> Vec<(&'static str, &'static str, Option<u64>)> {
    let mut out = Vec::new();
    for (r, sex) in Sex::ALL.iter().enumerate() {
        for (c, band) in AgeBand::ALL.iter().enumerate() {
            let v = t.cells.get(r).and_then(|row| row.get(c)).copied().flatten();
            out.push((sex.as_str(), band.as_str(), v));
        }
        out.push((
            sex.as_str(),
            "total",
            t.row_totals.get(r).copied().flatten(),
        ));
    }
    for (c, band) in AgeBand::ALL.iter().enumerate() {
        out.push((
            "total",
            band.as_str(),
            t.col_totals.get(c).copied().flatten(),
        ));
    }
    out.push(("total", "total", t.total));
    out
}

/// The report as CSV: one line per indicator, sex and age band (totals included).
pub fn to_csv(scope: &Scope, shown: &[Shown]) -> String {
    let mut out = String::from(
        "period_from,period_to,site,indicator,unit,sex,age_band,numerator,denominator\n",
    );
    for s in shown {
        let unit = match s.unit {
            Unit::Count => "count",
            Unit::Percent => "percent",
            Unit::PerPerson => "per_person",
        };
        let den = s.denominator.as_ref().map(labelled);
        for (i, (sex, band, n)) in labelled(&s.numerator).into_iter().enumerate() {
            let d = den
                .as_ref()
                .and_then(|d| d.get(i))
                .map_or(String::new(), |(_, _, v)| cell_text(*v));
            let _ = writeln!(
                out,
                "{},{},{},{},{unit},{sex},{band},{},{d}",
                scope.period.from,
                scope.period.to,
                scope.site_label(),
                s.id,
                cell_text(n)
            );
        }
    }
    out
}

async fn api_export_csv(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let scope = scope(&st, &me, &q).await?;
    let shown = report(&st, &me, &scope, "csv").await?;
    let name = format!(
        "attachment; filename=\"indicators-{}-{}-{}.csv\"",
        scope.site_label(),
        scope.period.from,
        scope.period.to
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        to_csv(&scope, &shown),
    )
        .into_response())
}

/// Builds a DHIS2 `dataValueSets` payload: one data value per mapping entry whose cell is
/// published. Suppressed or unmapped cells are left out.
pub fn data_value_set(
    period: &str,
    org_unit: &str,
    shown: &[Shown],
    mapping: &[Dhis2Entry],
) -> DataValueSet {
    let mut values = Vec::new();
    for m in mapping {
        let (id, part) = match m.indicator.strip_suffix(".denominator") {
            Some(id) => (id, "denominator"),
            None => (m.indicator.as_str(), "numerator"),
        };
        let Some(s) = shown.iter().find(|s| s.id == id) else {
            continue;
        };
        let table = if part == "denominator" {
            s.denominator.as_ref()
        } else {
            Some(&s.numerator)
        };
        let Some(table) = table else { continue };
        let cell = labelled(table)
            .into_iter()
            .find(|(sex, band, _)| *sex == m.sex && *band == m.age_band)
            .and_then(|(_, _, v)| v);
        if let Some(v) = cell {
            values.push(DataValue {
                data_element: m.data_element.clone(),
                category_option_combo: m.category_option_combo.clone(),
                period: period.to_owned(),
                org_unit: org_unit.to_owned(),
                value: v.to_string(),
            });
        }
    }
    DataValueSet {
        data_values: values,
    }
}

async fn api_export_dhis2(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<DataValueSet>> {
    let scope = scope(&st, &me, &q).await?;
    let period = scope.period.dhis2().ok_or_else(|| {
        DomainError::invalid(
            "to",
            "a DHIS2 export covers one calendar month or quarter (from the 1st to the last day)",
        )
    })?;
    let mapping = st.store.dhis2_mapping().await?;
    if mapping.is_empty() {
        return Err(DomainError::Conflict(
            "no DHIS2 mapping is set; an administrator sets it at PUT /api/v1/indicators/dhis2-mapping"
                .into(),
        )
        .into());
    }
    let org_unit = q
        .get("org_unit")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| scope.site_label().to_owned());
    let shown = report(&st, &me, &scope, "dhis2").await?;
    Ok(Json(data_value_set(&period, &org_unit, &shown, &mapping)))
}

async fn api_get_mapping(
    State(st): State<AppState>,
    _me: CurrentUser,
) -> AppResult<Json<MappingView>> {
    let entries = st.store.dhis2_mapping().await?;
    Ok(Json(MappingView {
        entries: entries.iter().map(Dhis2EntryView::from).collect(),
    }))
}

fn check_entry(i: usize, e: &MappingEntry) -> Result<Dhis2Entry, DomainError> {
    let field = |name: &str| format!("entries[{i}].{name}");
    let (id, den) = match e.indicator.trim().strip_suffix(".denominator") {
        Some(id) => (id, true),
        None => (e.indicator.trim(), false),
    };
    let Some(ind) = indicators::indicator(id) else {
        return Err(DomainError::invalid(
            field("indicator"),
            format!("`{}` is not in the catalogue", e.indicator),
        ));
    };
    if den && ind.unit == Unit::Count {
        return Err(DomainError::invalid(
            field("indicator"),
            format!("`{id}` is a count and has no denominator"),
        ));
    }
    let sex = e.sex.trim();
    if sex != "total" && !Sex::ALL.iter().any(|s| s.as_str() == sex) {
        return Err(DomainError::invalid(
            field("sex"),
            "use male, female, unknown or total",
        ));
    }
    let band = e.age_band.trim();
    if band != "total" && !AgeBand::ALL.iter().any(|b| b.as_str() == band) {
        return Err(DomainError::invalid(
            field("age_band"),
            "use under_25, 25_plus, unknown or total",
        ));
    }
    for (name, v) in [
        ("data_element", &e.data_element),
        ("category_option_combo", &e.category_option_combo),
    ] {
        if v.trim().is_empty() {
            return Err(DomainError::invalid(field(name), "must not be empty"));
        }
    }
    Ok(Dhis2Entry {
        indicator: e.indicator.trim().to_owned(),
        sex: sex.to_owned(),
        age_band: band.to_owned(),
        data_element: e.data_element.trim().to_owned(),
        category_option_combo: e.category_option_combo.trim().to_owned(),
    })
}

async fn api_set_mapping(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<MappingRequest>,
) -> AppResult<StatusCode> {
    let entries = req
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| check_entry(i, e))
        .collect::<Result<Vec<_>, _>>()?;
    st.store
        .set_dhis2_mapping(&me.actor(), &entries, st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A horizontal bar chart of percentages, hand-written SVG.
fn bar_chart(title: &str, bars: &[(&str, Option<f64>)]) -> Markup {
    let row_h = 22;
    let label_w = 200;
    let bar_w = 320;
    let height = row_h * bars.len() + 30;
    let width = label_w + bar_w + 60;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
            width=(width) height=(height) viewBox={"0 0 " (width) " " (height)} {
            title { (title) }
            @for (i, (label, v)) in bars.iter().enumerate() {
                @let y = 10 + i * row_h;
                text x="0" y=(y + 15) font-size="12" { (label) }
                @if let Some(v) = v {
                    @let w = (v.clamp(0.0, 100.0) / 100.0 * bar_w as f64).round();
                    rect x=(label_w) y=(y + 3) width=(w) height=(row_h - 6) fill="#3a7ca5" {}
                    text x=(label_w as f64 + w + 4.0) y=(y + 15) font-size="12" { (format!("{v:.1}%")) }
                } @else {
                    text x=(label_w) y=(y + 15) font-size="12" fill="#888" { "—" }
                }
            }
        }
    }
}

fn fmt_value(s: &Shown) -> String {
    match (s.value, s.unit) {
        (None, _) => "—".into(),
        (Some(v), Unit::Count) => format!("{v:.0}"),
        (Some(v), Unit::Percent) => format!("{v:.1}%"),
        (Some(v), Unit::PerPerson) => format!("{v:.1}"),
    }
}

fn grid(t: &T, table: &Suppressed) -> Markup {
    let show = |v: Option<u64>| v.map_or_else(|| "*".to_owned(), |n| n.to_string());
    html! {
        table.grid {
            thead { tr { th {} @for b in AgeBand::ALL { th { (t.s(&format!("ind-age-{}", b.as_str()))) } } th { (t.s("ind-total")) } } }
            tbody {
                @for (r, sex) in Sex::ALL.iter().enumerate() {
                    tr {
                        th { (t.s(&format!("ind-sex-{}", sex.as_str()))) }
                        @for c in 0..AgeBand::ALL.len() {
                            td { (show(table.cells.get(r).and_then(|row| row.get(c)).copied().flatten())) }
                        }
                        td { (show(table.row_totals.get(r).copied().flatten())) }
                    }
                }
                tr {
                    th { (t.s("ind-total")) }
                    @for c in 0..AgeBand::ALL.len() { td { (show(table.col_totals.get(c).copied().flatten())) } }
                    td { strong { (show(table.total)) } }
                }
            }
        }
    }
}

async fn indicators_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> WebResult<Markup> {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    let scope = scope(&st, &me, &q).await?;
    let shown = report(&st, &me, &scope, "page").await?;
    let query = format!(
        "from={}&to={}&site={}",
        scope.period.from,
        scope.period.to,
        scope.site_label()
    );
    let names: Vec<String> = shown
        .iter()
        .map(|s| t.s(&format!("ind-name-{}", s.id)))
        .collect();
    let rates: Vec<(&str, Option<f64>)> = shown
        .iter()
        .zip(&names)
        .filter(|(s, _)| s.unit == Unit::Percent)
        .map(|(s, n)| (n.as_str(), s.value))
        .collect();
    Ok(layout(
        &t,
        &t.s("ind-title"),
        Some(&me),
        html! {
            h1 { (t.s("ind-title")) }
            form.search method="get" action="/indicators" {
                label { (t.s("ind-from")) " " input type="date" name="from" value=(scope.period.from); }
                label { (t.s("ind-to")) " " input type="date" name="to" value=(scope.period.to); }
                @if me.role().is_outside() {
                    label { (t.s("ind-site")) " " input name="site" value=(scope.site_label()); }
                }
                button type="submit" { (t.s("ind-show")) }
            }
            p.muted {
                (t.a("ind-scope", &[("site", scope.site_label())]))
                @if scope.suppressed { " " (t.a("ind-suppressed-note", &[("threshold", &st.settings.suppression_threshold.to_string())])) }
            }
            p {
                a href={"/api/v1/indicators/export.csv?" (query)} { (t.s("ind-export-csv")) }
                " · "
                a href={"/api/v1/indicators/export.dhis2.json?" (query)} { (t.s("ind-export-dhis2")) }
            }
            h2 { (t.s("ind-chart")) }
            (bar_chart(&t.s("ind-chart"), &rates))
            table.list id="indicators" {
                thead { tr { th { (t.s("ind-indicator")) } th { (t.s("ind-value")) } th { (t.s("ind-definition")) } } }
                tbody {
                    @for (s, name) in shown.iter().zip(&names) {
                        // The definitions in the page's language (the API answers in English).
                        @let (num_def, den_def) = indicators::indicator(s.id)
                            .map_or((s.numerator_definition, s.denominator_definition), |i| i.definitions(t.lang.tag()));
                        tr id={"ind-" (s.id)} {
                            td { (name) br; code.muted { (s.id) } }
                            td.value { (fmt_value(s)) }
                            td {
                                (num_def)
                                @if !den_def.is_empty() { br; span.muted { "÷ " (den_def) } }
                                details {
                                    summary { (t.s("ind-breakdown")) }
                                    (grid(&t, &s.numerator))
                                    @if let Some(d) = &s.denominator { (grid(&t, d)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Adds the one-stop shop's routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/encounters",
                Needs(ServiceRecord),
                "services",
                "Record a service encounter (client or anonymous outreach contact)",
            )
            .answers::<EncounterView>()
            .body::<EncounterRequest>()
            .status(201),
            api_record_encounter,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/encounters",
                Needs(ServiceRecord),
                "services",
                "A client's service encounters (audited read)",
            )
            .answers::<EncounterList>(),
            api_client_encounters,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/clients/{id}/demographics",
                Needs(ClientWrite),
                "clients",
                "Set a client's sex and year of birth",
            )
            .body::<DemographicsRequest>()
            .status(204),
            api_demographics,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/encounters/{id}/arv-outcome",
                Needs(ServiceRecord),
                "services",
                "Set or update the outcome of an ARV referral",
            )
            .answers::<EncounterView>()
            .body::<ArvOutcomeRequest>(),
            api_arv_outcome,
        )
        .add(
            RouteSpec::web(
                Get,
                "/referrals",
                Needs(ServiceRecord),
                "ARV referrals and their outcomes",
            ),
            referrals_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/referrals/{id}/outcome",
                Needs(ServiceRecord),
                "Set the outcome of an ARV referral",
            ),
            referral_outcome_form,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/tc-episodes",
                Needs(ServiceRecord),
                "services",
                "Therapeutic-community episodes of my centre",
            )
            .answers::<EpisodeList>(),
            api_list_tc,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/tc-episodes",
                Needs(ServiceRecord),
                "services",
                "Admit a client to the therapeutic community",
            )
            .answers::<EpisodeView>()
            .body::<TcRequest>()
            .status(201),
            api_open_tc,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/tc-episodes/{id}",
                Needs(ServiceRecord),
                "services",
                "Change phase, record the exit or a follow-up urine",
            )
            .answers::<EpisodeView>()
            .body::<TcRequest>(),
            api_update_tc,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/indicators",
                Needs(IndicatorsRead),
                "indicators",
                "Indicators of a period (suppressed for the CDC)",
            )
            .period_query()
            .answers::<IndicatorsView>(),
            api_indicators,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/indicators/export.csv",
                Needs(IndicatorsRead),
                "indicators",
                "Indicators as CSV",
            )
            .period_query()
            .answers_text("text/csv"),
            api_export_csv,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/indicators/export.dhis2.json",
                Needs(IndicatorsRead),
                "indicators",
                "Indicators as a DHIS2 dataValueSets payload",
            )
            .period_query()
            .query(
                "org_unit",
                "string",
                "DHIS2 organisation unit; default the site code",
            )
            .answers::<DataValueSet>(),
            api_export_dhis2,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/indicators/dhis2-mapping",
                Needs(IndicatorsRead),
                "indicators",
                "The mapping of indicators to DHIS2 ids",
            )
            .answers::<MappingView>(),
            api_get_mapping,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/indicators/dhis2-mapping",
                Needs(SiteManage),
                "indicators",
                "Replace the mapping of indicators to DHIS2 ids",
            )
            .body::<MappingRequest>()
            .status(204),
            api_set_mapping,
        )
        .add(
            RouteSpec::web(
                Get,
                "/indicators",
                Needs(IndicatorsRead),
                "Indicators dashboard",
            ),
            indicators_page,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            period: Period::new(
                NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            )
            .unwrap(),
            site: Some((1, "YX01".into())),
            suppressed: true,
        }
    }

    fn one(counts: [[u64; 3]; 3]) -> Vec<Shown> {
        let f = Figure {
            id: "hiv_tests",
            unit: Unit::Count,
            numerator: indicators::Grid(counts),
            denominator: None,
        };
        vec![show(&f, SUPPRESSION_THRESHOLD)]
    }

    #[test]
    fn csv_and_dhis2_leave_suppressed_cells_out() {
        let shown = one([[3, 20, 0], [12, 30, 7], [9, 8, 10]]);
        let csv = to_csv(&scope(), &shown);
        assert!(csv.starts_with("period_from,period_to,site,indicator"));
        assert!(
            csv.contains("2026-11-01,2026-11-30,YX01,hiv_tests,count,male,under_25,suppressed,\n")
        );
        assert!(csv.contains(",hiv_tests,count,total,total,99,\n"));
        let mapping = vec![
            Dhis2Entry {
                indicator: "hiv_tests".into(),
                sex: "male".into(),
                age_band: "under_25".into(),
                data_element: "DE1".into(),
                category_option_combo: "C1".into(),
            },
            Dhis2Entry {
                indicator: "hiv_tests".into(),
                sex: "total".into(),
                age_band: "total".into(),
                data_element: "DE1".into(),
                category_option_combo: "CT".into(),
            },
        ];
        let v = serde_json::to_value(data_value_set("202611", "OU1", &shown, &mapping))
            .expect("serialises");
        assert_eq!(
            v,
            json!({"dataValues": [{"dataElement": "DE1", "categoryOptionCombo": "CT",
                "period": "202611", "orgUnit": "OU1", "value": "99"}]})
        );
    }
}
