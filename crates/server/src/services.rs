//! The one-stop shop over HTTP: recording service encounters and therapeutic-community episodes,
//! clients' sex and birth year, and the health indicators — as JSON, CSV and DHIS2
//! `dataValueSets`, and as a dashboard page (`/indicators`) with tables and an SVG chart.
//!
//! Managers see their own centre's full tables. The CDC (`cdc_analyst`) sees aggregates only,
//! for one centre or the whole deployment, with every cell below the threshold suppressed
//! (complementary suppression included, see `anxin_domain::indicators::suppress`), and every
//! answer it receives is recorded in the audit trail as `disclosure.cdc_export`.

use std::collections::HashMap;

pub use anxin_app::indicators::{
    data_value_set, to_csv, DataValue, DataValueSet, Dhis2EntryView, IndicatorsView, MappingEntry,
    MappingRequest, MappingView, Scope, Shown, SUPPRESSION_THRESHOLD,
};
pub use anxin_app::services::{
    arv_outcome_name, ArvOutcomeRequest, EncounterList, EncounterRequest, EncounterView,
    EpisodeList, EpisodeView, TcRequest,
};
use anxin_domain::indicators::{self, AgeBand, Sex, Suppressed, Unit};
use anxin_domain::release::ReportingPeriod;
use anxin_domain::services::{ArvOutcome, Service};
use anxin_domain::{Access, Permission};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{after_form, field_error, flash, form_notice, layout, Flash, WebResult, T};

async fn api_arv_outcome(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ArvOutcomeRequest>,
) -> AppResult<Json<EncounterView>> {
    let e = anxin_app::services::set_arv_outcome(
        &st.app,
        &me.app_actor(),
        id,
        &req.outcome,
        req.outcome_on.as_deref(),
    )
    .await?;
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
    let list = anxin_app::services::recent(
        &st.app,
        &me.app_actor(),
        Some("arv_referral"),
        REFERRALS_SHOWN,
    )
    .await?;
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
                        @for listed in &list {
                            @let e = &listed.encounter;
                            @if let Service::ArvReferral { referred_on, outcome, outcome_on } = &e.service {
                                tr id={"arv-" (e.id)} {
                                    td {
                                        @match (e.client_id, me.role().has(Permission::ClientRead)) {
                                            (Some(c), true) => { a href={"/clients/" (c)} { (listed.uic) } }
                                            _ => { code { (listed.uic) } }
                                        }
                                        @if listed.outreach { " " span.muted { (t.s("svc-outreach-mark")) } }
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
        anxin_app::services::set_arv_outcome(
            &st.app,
            &me.app_actor(),
            id,
            &f.outcome,
            f.outcome_on.as_deref(),
        )
        .await,
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
    let service = parse_service(&req.service)?;
    let e = anxin_app::services::record_encounter(&st.app, &me.app_actor(), &req, service).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

async fn api_client_encounters(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Json<EncounterList>> {
    Ok(Json(
        anxin_app::services::client_encounters(&st.app, &me.app_actor(), id).await?,
    ))
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

async fn api_open_tc(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<TcRequest>,
) -> AppResult<(StatusCode, Json<EpisodeView>)> {
    let e = anxin_app::services::open_tc(&st.app, &me.app_actor(), &req).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

async fn api_update_tc(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<TcRequest>,
) -> AppResult<Json<EpisodeView>> {
    Ok(Json(
        anxin_app::services::update_tc(&st.app, &me.app_actor(), id, &req).await?,
    ))
}

async fn api_list_tc(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<EpisodeList>> {
    Ok(Json(
        anxin_app::services::tc_episodes(&st.app, &me.app_actor()).await?,
    ))
}

async fn api_trend(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<anxin_app::indicators::Trend>> {
    let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &q).await?;
    Ok(Json(
        anxin_app::indicators::trend(&st.app, &me.app_actor(), &scope).await?,
    ))
}

/// The place a report covers, as the page says it: a centre's or unit's code, or all centres.
/// A report's scope as the reader asked it or, when the period, centre or unit asked is
/// refused, the reader's own default with the refusal kept for its field (nothing of what was
/// refused is shown). Shared by the indicators and the life-table pages.
struct Asked {
    scope: anxin_app::indicators::Scope,
    refused: Option<anxin_domain::Problem>,
    q: HashMap<String, String>,
}

impl Asked {
    async fn of(st: &AppState, me: &CurrentUser, q: HashMap<String, String>) -> WebResult<Asked> {
        let refused = match anxin_app::indicators::scope(&st.app, &me.app_actor(), &q).await {
            Ok(scope) => {
                return Ok(Asked {
                    scope,
                    refused: None,
                    q,
                })
            }
            Err(anxin_app::Error::Domain(anxin_domain::DomainError::Refused(p)))
                if matches!(
                    p.field.as_deref(),
                    Some("period" | "from" | "to" | "site" | "unit")
                ) =>
            {
                p
            }
            Err(e) => return Err(e.into()),
        };
        let mut rest = q.clone();
        let keys: &[&str] = match refused.field.as_deref() {
            Some("site" | "unit") => &["site", "unit"],
            _ => &["period", "from", "to"],
        };
        for k in keys {
            rest.remove(*k);
        }
        let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &rest).await?;
        Ok(Asked {
            scope,
            refused: Some(refused),
            q,
        })
    }

    /// 422 when something asked was refused.
    fn status(&self) -> StatusCode {
        if self.refused.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        }
    }

    fn error_at(&self, t: &T, field: &str) -> Option<String> {
        self.refused
            .as_ref()
            .filter(|p| p.field.as_deref() == Some(field))
            .map(|p| crate::i18n::I18n::global().problem(t.lang, p))
    }

    /// What the reader typed in `field`, kept when something was refused.
    fn typed(&self, field: &str) -> Option<String> {
        self.refused
            .as_ref()
            .and_then(|_| self.q.get(field).cloned())
    }

    /// The form's period and place fields: a reporting period, centre and unit for outside
    /// readers; free dates for the centre's staff; each with its refusal and typed text.
    fn fields(&self, t: &T, me: &CurrentUser) -> Markup {
        let scope = &self.scope;
        let field = |name: &str,
                     label: String,
                     kind: &str,
                     value: String,
                     error: Option<String>| {
            html! {
                label { (label) " " input type=(kind) name=(name) value=(self.typed(name).unwrap_or(value)) aria-invalid=[error.as_ref().map(|_| "true")];
                    @if let Some(m) = &error { span.field-error role="alert" data-field=(name) { (m) } }
                }
            }
        };
        html! {
            @if me.role().is_outside() {
                // Outside readers choose a reporting period, never arbitrary dates.
                @let period = ReportingPeriod::of(&scope.period).map(ReportingPeriod::code).unwrap_or_default();
                @let wrong = self.error_at(t, "period").or_else(|| self.error_at(t, "from")).or_else(|| self.error_at(t, "to"));
                label { (t.s("ind-period")) " " input name="period" value=(self.typed("period").unwrap_or(period)) placeholder="2026-11 / 2026Q4 / 2026" aria-invalid=[wrong.as_ref().map(|_| "true")];
                    @if let Some(m) = &wrong { span.field-error role="alert" data-field="period" { (m) } }
                }
                (field("site", t.s("ind-site"), "text", scope.site.as_ref().map_or(String::new(), |(_, code)| code.clone()), self.error_at(t, "site")))
                (field("unit", t.s("cmp-unit"), "text", scope.unit.as_ref().map_or(String::new(), |u| u.code.clone()), self.error_at(t, "unit")))
            } @else {
                (field("from", t.s("ind-from"), "date", scope.period.from.to_string(), self.error_at(t, "from")))
                (field("to", t.s("ind-to"), "date", scope.period.to.to_string(), self.error_at(t, "to")))
            }
        }
    }
}

fn scope_name(t: &T, scope: &Scope) -> String {
    match scope.site_label() {
        "all" => t.s("ind-all-centres"),
        code => code.to_owned(),
    }
}

/// A line chart of one indicator over the months, hand-written SVG; a gap where a month is
/// suppressed.
fn line_chart(title: &str, months: &[String], values: &[Option<f64>], percent: bool) -> Markup {
    let (w, h, left, top, bottom) = (360.0_f64, 160.0_f64, 40.0_f64, 12.0_f64, 28.0_f64);
    let top_value = if percent {
        100.0
    } else {
        values.iter().flatten().fold(1.0_f64, |m, v| m.max(*v)) * 1.1
    };
    let n = values.len().max(2) as f64;
    let x = |i: usize| left + (w - left - 10.0) * i as f64 / (n - 1.0);
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / top_value);
    // Runs of consecutive months with a value, each drawn as its own line.
    let mut runs: Vec<Vec<(f64, f64)>> = vec![vec![]];
    for (i, v) in values.iter().enumerate() {
        match (v, runs.last_mut()) {
            (Some(v), Some(run)) => run.push((x(i), y(*v))),
            _ => runs.push(vec![]),
        }
    }
    let label = |v: f64| {
        if percent {
            format!("{v:.0}%")
        } else {
            format!("{v:.0}")
        }
    };
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
            width=(w) height=(h) viewBox={"0 0 " (w) " " (h)} {
            title { (title) }
            line x1=(left) y1=(y(0.0)) x2=(w - 10.0) y2=(y(0.0)) stroke="#ccc" {}
            text x="0" y=(y(0.0)) font-size="10" { (label(0.0)) }
            text x="0" y=(y(top_value) + 10.0) font-size="10" { (label(top_value)) }
            @for run in runs.iter().filter(|r| !r.is_empty()) {
                polyline fill="none" stroke="#3a7ca5" stroke-width="2"
                    points=(run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect::<Vec<_>>().join(" ")) {}
                @for (a, b) in run { circle cx=(format!("{a:.1}")) cy=(format!("{b:.1}")) r="2.5" fill="#3a7ca5" {} }
            }
            @for (i, m) in months.iter().enumerate() {
                @if i % 3 == 0 || i + 1 == months.len() {
                    text x=(x(i) - 14.0) y=(h - 8.0) font-size="10" { (m) }
                }
            }
        }
    }
}

async fn trend_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &q).await?;
    let trend = anxin_app::indicators::trend(&st.app, &me.app_actor(), &scope).await?;
    let months: Vec<String> = trend.months.iter().map(|m| m.month.clone()).collect();
    let unit_of = |id: &str| indicators::indicator(id).map_or(Unit::Count, |i| i.unit);
    let cell = |id: &str, v: Option<f64>| match (v, unit_of(id)) {
        (None, _) => "*".to_owned(),
        (Some(v), Unit::Percent) => format!("{v:.1}%"),
        (Some(v), Unit::Count) => format!("{v:.0}"),
        (Some(v), Unit::PerPerson) => format!("{v:.1}"),
    };
    Ok(layout(
        &t,
        &t.s("ind-trend-title"),
        Some(&me),
        html! {
            h1 { (t.s("ind-trend-title")) }
            p.muted {
                (t.a("ind-scope", &[("site", &scope_name(&t, &scope))]))
                " " (t.a("ind-trend-help", &[("months", &anxin_app::indicators::TREND_MONTHS.to_string())]))
                @if scope.suppressed { " " (t.a("ind-suppressed-note", &[("threshold", &st.settings.suppression_threshold.to_string())])) }
            }
            @if me.role().is_outside() {
                form.search method="get" action="/indicators/trend" {
                    label { (t.s("ind-site")) " " input name="site" value=(scope.site.as_ref().map_or("", |(_, code)| code.as_str())); }
                    label { (t.s("cmp-unit")) " " input name="unit" value=(scope.unit.as_ref().map_or("", |u| u.code.as_str())); }
                    button type="submit" { (t.s("ind-show")) }
                }
            }
            div.charts {
                @for (k, id) in trend.indicators.iter().enumerate() {
                    @let values: Vec<Option<f64>> = trend.months.iter().map(|m| m.values.get(k).copied().flatten()).collect();
                    figure id={"trend-" (id)} {
                        figcaption { (t.s(&format!("ind-name-{id}"))) }
                        (line_chart(&t.s(&format!("ind-name-{id}")), &months, &values, unit_of(id) == Unit::Percent))
                    }
                }
            }
            table.list id="trend" {
                thead { tr { th { (t.s("ind-trend-month")) } @for id in &trend.indicators { th { (t.s(&format!("ind-name-{id}"))) } } } }
                tbody { @for m in &trend.months { tr data-month=(m.month) {
                    td { (m.month) }
                    @for (id, v) in trend.indicators.iter().zip(&m.values) { td.value { (cell(id, *v)) } }
                } } }
            }
            p { a href="/indicators" { (t.s("ind-title")) } }
        },
    ))
}

async fn api_indicators(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<IndicatorsView>> {
    let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &q).await?;
    let shown = anxin_app::indicators::report(&st.app, &me.app_actor(), &scope, "json").await?;
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

async fn api_export_csv(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &q).await?;
    let shown = anxin_app::indicators::report(&st.app, &me.app_actor(), &scope, "csv").await?;
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

async fn api_export_dhis2(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<DataValueSet>> {
    let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &q).await?;
    let org_unit = q.get("org_unit").map(String::as_str);
    Ok(Json(
        anxin_app::indicators::dhis2_export(&st.app, &me.app_actor(), &scope, org_unit).await?,
    ))
}

async fn api_get_mapping(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<MappingView>> {
    Ok(Json(
        anxin_app::indicators::mapping(&st.app, &me.app_actor()).await?,
    ))
}

async fn api_set_mapping(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<MappingRequest>,
) -> AppResult<StatusCode> {
    anxin_app::indicators::set_mapping(&st.app, &me.app_actor(), &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A horizontal bar chart of percentages, hand-written SVG.
/// The retention life table's chart: per cohort, three bars (retained at 3, 6 and 12 months, in
/// percent of those at risk), hand-written SVG; no bar where a rate is hidden or not yet known.
fn cohort_chart(title: &str, rows: &[anxin_app::indicators::CohortShown]) -> Markup {
    let (group, bar, h, top, bottom, left) =
        (36.0_f64, 9.0_f64, 170.0_f64, 10.0_f64, 30.0_f64, 34.0_f64);
    let width = left + group * rows.len() as f64 + 10.0;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v.clamp(0.0, 100.0) / 100.0);
    let colours = ["#3a7ca5", "#81c3d7", "#d9a441"];
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
            width=(width) height=(h) viewBox={"0 0 " (width) " " (h)} {
            title { (title) }
            line x1=(left) y1=(y(0.0)) x2=(width - 10.0) y2=(y(0.0)) stroke="#ccc" {}
            text x="0" y=(y(0.0)) font-size="10" { "0%" }
            text x="0" y=(y(100.0) + 8.0) font-size="10" { "100%" }
            @for (i, r) in rows.iter().enumerate() {
                @let x0 = left + group * i as f64 + 4.0;
                @for (k, p) in r.percent.iter().enumerate() {
                    @if let Some(p) = p {
                        rect x=(format!("{:.1}", x0 + bar * k as f64)) y=(format!("{:.1}", y(*p)))
                            width=(bar - 1.0) height=(format!("{:.1}", y(0.0) - y(*p))) fill=(colours[k]) {
                            title { (format!("{} · {}: {p:.1}%", r.cohort, [3, 6, 12][k])) }
                        }
                    }
                }
                @if i % 2 == 0 || i + 1 == rows.len() {
                    text x=(format!("{:.1}", x0 - 2.0)) y=(h - 10.0) font-size="9" { (r.cohort) }
                }
            }
        }
    }
}

async fn retention_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> WebResult<(StatusCode, Markup)> {
    let t = T::of(&st, &me);
    let by = match q.get("by").map(String::as_str) {
        Some("quarter") => indicators::CohortBy::Quarter,
        _ => indicators::CohortBy::Month,
    };
    let asked = Asked::of(&st, &me, q).await?;
    let scope = &asked.scope;
    let rows = anxin_app::indicators::life_table(&st.app, &me.app_actor(), scope, by).await?;
    let count = |v: Option<u64>| v.map_or_else(|| "*".to_owned(), |n| n.to_string());
    let rate = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |p| format!("{p:.1}%"));
    let months_label = |m: u32| t.a("ind-life-months", &[("months", &m.to_string())]);
    Ok((
        asked.status(),
        layout(
            &t,
            &t.s("ind-life-title"),
            Some(&me),
            html! {
                h1 { (t.s("ind-life-title")) }
                p.muted {
                    (t.a("ind-scope", &[("site", &scope_name(&t, scope))]))
                    " " (t.a("ind-life-help", &[("days", &st.app.settings.dropout_days.to_string()), ("to", &scope.period.to.to_string())]))
                    @if scope.suppressed { " " (t.a("ind-suppressed-note", &[("threshold", &st.settings.suppression_threshold.to_string())])) }
                }
                form.search method="get" action="/indicators/retention" {
                    (asked.fields(&t, &me))
                    label { (t.s("ind-life-by")) " "
                        select name="by" {
                            option value="month" selected[by == indicators::CohortBy::Month] { (t.s("ind-life-by-month")) }
                            option value="quarter" selected[by == indicators::CohortBy::Quarter] { (t.s("ind-life-by-quarter")) }
                        }
                    }
                    button type="submit" { (t.s("ind-show")) }
                }
                figure id="life-chart" {
                    figcaption { (t.s("ind-life-chart")) " "
                        span style="color:#3a7ca5" { "■ " (months_label(3)) } " "
                        span style="color:#81c3d7" { "■ " (months_label(6)) } " "
                        span style="color:#d9a441" { "■ " (months_label(12)) }
                    }
                    (cohort_chart(&t.s("ind-life-chart"), &rows))
                }
                table.list id="life-table" {
                    thead {
                        tr {
                            th rowspan="2" { (t.s("ind-life-cohort")) }
                            th rowspan="2" { (t.s("ind-life-started")) }
                            @for m in indicators::LIFE_TABLE_MONTHS { th colspan="3" { (months_label(m)) } }
                        }
                        tr { @for _ in 0..3 { th { (t.s("ind-life-at-risk")) } th { (t.s("ind-life-retained")) } th { "%" } } }
                    }
                    tbody {
                        @for r in &rows {
                            tr data-cohort=(r.cohort) {
                                td { (r.cohort) }
                                td.value { (count(r.started)) }
                                @for k in 0..3 {
                                    td.value { (count(r.at_risk[k])) }
                                    td.value { (count(r.retained[k])) }
                                    td.value { (rate(r.percent[k])) }
                                }
                            }
                        }
                    }
                }
                p { a href="/indicators" { (t.s("ind-title")) } }
            },
        ),
    ))
}

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
) -> WebResult<(StatusCode, Markup)> {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    // A period the reader may not ask for comes back at its field, the typed text kept, over
    // the default period's figures.
    let asked = Asked::of(&st, &me, q).await?;
    let scope = &asked.scope;
    let shown = anxin_app::indicators::report(&st.app, &me.app_actor(), scope, "page").await?;
    let query = format!(
        "from={}&to={}&{}",
        scope.period.from,
        scope.period.to,
        scope.place_query()
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
    // A refusal answers 422, the page with the field's message.
    Ok((
        asked.status(),
        layout(
            &t,
            &t.s("ind-title"),
            Some(&me),
            html! {
                h1 { (t.s("ind-title")) }
                form.search method="get" action="/indicators" {
                    (asked.fields(&t, &me))
                    button type="submit" { (t.s("ind-show")) }
                }
                p.muted {
                    (t.a("ind-scope", &[("site", &scope_name(&t, scope))]))
                    @if scope.suppressed { " " (t.a("ind-suppressed-note", &[("threshold", &st.settings.suppression_threshold.to_string())])) }
                }
                p {
                    a href={"/api/v1/indicators/export.csv?" (query)} { (t.s("ind-export-csv")) }
                    " · "
                    @if me.role().has(Permission::Dhis2Export) {
                        a href="/indicators/dhis2" id="dhis2-link" { (t.s("ind-export-dhis2")) }
                        " · "
                    }
                    a href={"/indicators/trend?" (scope.place_query())} id="trend-link" { (t.s("ind-trend-title")) }
                    // The comparison of centres (completeness, timeliness) is the CDC's.
                    @if me.role().is_outside() && me.role().has(Permission::Dhis2Export) {
                        " · "
                        a href={"/indicators/compare?" (scope.place_query())} id="compare-link" { (t.s("cmp-title")) }
                    }
                    " · "
                    a href={"/indicators/retention?" (query)} id="life-link" { (t.s("ind-life-title")) }
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
        ),
    ))
}

/// The kinds the services page records, in the order of its tabs.
const PAGE_KINDS: [&str; 13] = [
    "needle_exchange",
    "naloxone",
    "condoms",
    "hiv_test",
    "hcv_test",
    "tb_test",
    "syphilis_test",
    "arv_referral",
    "counselling",
    "vocational_training",
    "health_exam",
    "peer_education",
    "referral_in",
];

/// The fields each kind's form has, besides who and when.
fn kind_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "needle_exchange" => &["given", "returned", "reason"],
        "naloxone" => &["kits"],
        "condoms" => &["count"],
        "hiv_test" => &["result", "pre_counselled", "post_counselled", "told_result"],
        "hcv_test" | "tb_test" | "syphilis_test" => &["result"],
        "counselling" => &["minutes"],
        "vocational_training" => &["course"],
        "peer_education" => &["topic"],
        "referral_in" => &["source"],
        _ => &[],
    }
}

/// The fields every kind's form has.
const WHO_FIELDS: [&str; 5] = ["uic", "outreach", "sex", "birth_year", "on"];

/// What the services page's form sends (every field a string, as typed).
#[derive(Debug, Default, Deserialize)]
struct ServiceForm {
    #[serde(default)]
    uic: String,
    #[serde(default)]
    outreach: Option<String>,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    birth_year: String,
    #[serde(default)]
    on: String,
    #[serde(default)]
    given: String,
    #[serde(default)]
    returned: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    kits: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    pre_counselled: Option<String>,
    #[serde(default)]
    post_counselled: Option<String>,
    #[serde(default)]
    told_result: Option<String>,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    course: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    source: String,
}

impl ServiceForm {
    /// The typed values to keep when the form comes back refused.
    fn values(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = [
            ("uic", &self.uic),
            ("sex", &self.sex),
            ("birth_year", &self.birth_year),
            ("on", &self.on),
            ("given", &self.given),
            ("returned", &self.returned),
            ("reason", &self.reason),
            ("kits", &self.kits),
            ("count", &self.count),
            ("result", &self.result),
            ("minutes", &self.minutes),
            ("course", &self.course),
            ("topic", &self.topic),
            ("source", &self.source),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
        for (k, on) in [
            ("outreach", &self.outreach),
            ("pre_counselled", &self.pre_counselled),
            ("post_counselled", &self.post_counselled),
            ("told_result", &self.told_result),
        ] {
            if on.is_some() {
                v.push((k.to_owned(), "true".to_owned()));
            }
        }
        v
    }
}

/// A whole number typed in `field` (empty: `None`), refused at its field otherwise.
fn count_field(field: &str, raw: &str) -> Result<Option<u32>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<u32>().map(Some).map_err(|_| {
        anxin_domain::Problem::new(anxin_domain::Code::NumberInvalid)
            .field(field)
            .arg("value", raw)
            .into()
    })
}

/// A stable name typed in `field` read as `T` (empty: `None`).
fn named<T: serde::de::DeserializeOwned>(field: &str, raw: &str) -> Result<Option<T>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_value(Value::String(raw.to_owned()))
        .map(Some)
        .map_err(|_| {
            anxin_domain::Problem::new(anxin_domain::Code::ChoiceUnknown)
                .field(field)
                .arg("value", raw)
                .into()
        })
}

/// The service a form of `kind` describes (its day is `on`, for tests and referrals).
fn service_of(
    kind: &str,
    f: &ServiceForm,
    on: chrono::NaiveDate,
    me: &CurrentUser,
) -> Result<Service, AppError> {
    use anxin_domain::services::{ReferralSource, TestResult};
    let result = || named::<TestResult>("result", &f.result);
    Ok(match kind {
        "needle_exchange" => Service::NeedleExchange {
            given: count_field("given", &f.given)?.unwrap_or(0),
            returned: count_field("returned", &f.returned)?.unwrap_or(0),
            reason: Some(f.reason.trim().to_owned()).filter(|r| !r.is_empty()),
        },
        "naloxone" => Service::Naloxone {
            kits: count_field("kits", &f.kits)?.unwrap_or(0),
        },
        "condoms" => Service::Condoms {
            count: count_field("count", &f.count)?.unwrap_or(0),
        },
        "hiv_test" => {
            let result = result()?;
            Service::HivTest {
                tested_on: result.map(|_| on),
                pre_counselled: f.pre_counselled.is_some(),
                post_counselled: f.post_counselled.is_some(),
                result,
                told_result: f.told_result.is_some(),
            }
        }
        "hcv_test" => {
            let result = result()?;
            Service::HcvTest {
                tested_on: result.map(|_| on),
                result,
            }
        }
        "tb_test" => {
            let result = result()?;
            Service::TbTest {
                tested_on: result.map(|_| on),
                result,
            }
        }
        "syphilis_test" => {
            let result = result()?;
            Service::SyphilisTest {
                tested_on: result.map(|_| on),
                result,
            }
        }
        "arv_referral" => Service::ArvReferral {
            referred_on: on,
            outcome: ArvOutcome::Pending,
            outcome_on: None,
        },
        "counselling" => Service::Counselling {
            minutes: count_field("minutes", &f.minutes)?,
        },
        "vocational_training" => Service::VocationalTraining {
            course: f.course.trim().to_owned(),
        },
        "health_exam" => Service::HealthExam {},
        "peer_education" => Service::PeerEducation {
            educator: if me.user.full_name.trim().is_empty() {
                me.user.username.clone()
            } else {
                me.user.full_name.clone()
            },
            topic: f.topic.trim().to_owned(),
        },
        "referral_in" => Service::ReferralIn {
            source: named::<ReferralSource>("source", &f.source)?.ok_or_else(|| {
                anxin_domain::Problem::new(anxin_domain::Code::ServiceFieldRequired).field("source")
            })?,
        },
        other => {
            return Err(
                anxin_domain::Problem::new(anxin_domain::Code::ServiceKindUnknown)
                    .arg("kind", other)
                    .into(),
            )
        }
    })
}

/// One line of an encounter, in the page's language: the service and its figures.
fn service_summary(t: &T, s: &Service) -> String {
    let label = t.s(&format!("svc-kind-{}", s.kind()));
    let result = |r: &Option<anxin_domain::services::TestResult>| match r {
        Some(r) => t.s(&format!(
            "svc-result-{}",
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )),
        None => t.s("svc-result-none"),
    };
    let detail = match s {
        Service::NeedleExchange {
            given, returned, ..
        } => t.a(
            "svc-summary-needles",
            &[
                ("given", &given.to_string()),
                ("returned", &returned.to_string()),
            ],
        ),
        Service::Naloxone { kits } => kits.to_string(),
        Service::Condoms { count } => count.to_string(),
        Service::HivTest { result: r, .. }
        | Service::HcvTest { result: r, .. }
        | Service::TbTest { result: r, .. }
        | Service::SyphilisTest { result: r, .. } => result(r),
        Service::ArvReferral { outcome, .. } => {
            t.s(&format!("arv-outcome-{}", arv_outcome_name(*outcome)))
        }
        Service::Counselling { minutes } => minutes
            .map(|m| t.a("svc-summary-minutes", &[("minutes", &m.to_string())]))
            .unwrap_or_default(),
        Service::VocationalTraining { course } => course.clone(),
        Service::PeerEducation { topic, .. } => topic.clone(),
        Service::ReferralIn { source } => t.s(&format!(
            "svc-source-{}",
            serde_json::to_value(source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )),
        Service::HealthExam {} => String::new(),
    };
    if detail.is_empty() {
        label
    } else {
        format!("{label} · {detail}")
    }
}

async fn services_home(st: State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    services_page(st, me, Path("needle_exchange".to_owned()), f).await
}

/// The services page: a tab per kind, its form (an enrolled client by UIC, or an outreach
/// contact with the UIC they give), and the centre's latest encounters by UIC.
async fn services_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(kind): Path<String>,
    f: Flash,
) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    if !PAGE_KINDS.contains(&kind.as_str()) {
        return Err(AppError::from(
            anxin_domain::Problem::new(anxin_domain::Code::ServiceKindUnknown).arg("kind", &kind),
        )
        .into());
    }
    let recent = anxin_app::services::recent(&st.app, &me.app_actor(), None, 50).await?;
    let form = "service";
    let v = |field: &str| f.value(form, field).map(str::to_owned).unwrap_or_default();
    let checked = |field: &str| f.value(form, field).is_some();
    let fields = kind_fields(&kind);
    let all_fields: Vec<&str> = WHO_FIELDS.iter().chain(fields.iter()).copied().collect();
    let today = st.today();
    let input = |field: &str, kind_attr: &str| -> Markup {
        html! {
            label { (t.s(&format!("svc-field-{field}")))
                input name=(field) type=(kind_attr) value=(v(field)) aria-invalid=[f.error_at(form, field).map(|_| "true")];
                (field_error(&f, form, field))
            }
        }
    };
    Ok(layout(
        &t,
        &t.s("svc-title"),
        Some(&me),
        html! {
            h1 { (t.s("svc-title")) }
            (flash(&f))
            nav.tabs aria-label=(t.s("svc-kinds")) {
                @for k in PAGE_KINDS {
                    a href={"/services/" (k)} aria-current=[(k == kind).then_some("page")] { (t.s(&format!("svc-kind-{k}"))) }
                }
            }
            section.card id="service-form-card" {
                h2 { (t.s(&format!("svc-kind-{kind}"))) }
                form method="post" action={"/services/" (kind)} id="service-form" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, form, &all_fields))
                    label { (t.s("svc-field-uic"))
                        input name="uic" required value=(v("uic")) autocomplete="off" aria-invalid=[f.error_at(form, "uic").map(|_| "true")];
                        (field_error(&f, form, "uic"))
                    }
                    label.inline { input type="checkbox" name="outreach" value="true" checked[checked("outreach")]; " " (t.s("svc-field-outreach")) }
                    fieldset { legend { (t.s("svc-outreach-only")) }
                        label { (t.s("svc-field-sex")) select name="sex" {
                            @for s in ["unknown", "male", "female"] { option value=(s) selected[v("sex") == s] { (t.s(&format!("client-sex-{s}"))) } }
                        } (field_error(&f, form, "sex")) }
                        (input("birth_year", "number"))
                    }
                    label { (t.s("svc-field-on"))
                        input name="on" type="date" max=(today) value=(if v("on").is_empty() { today.to_string() } else { v("on") }) aria-invalid=[f.error_at(form, "on").map(|_| "true")];
                        (field_error(&f, form, "on"))
                    }
                    @for field in fields {
                        @match *field {
                            "given" | "returned" | "kits" | "count" | "minutes" => (input(field, "number")),
                            "reason" | "course" | "topic" => (input(field, "text")),
                            "pre_counselled" | "post_counselled" | "told_result" => {
                                label.inline { input type="checkbox" name=(field) value="true" checked[checked(field)]; " " (t.s(&format!("svc-field-{field}"))) }
                                (field_error(&f, form, field))
                            }
                            "result" => {
                                label { (t.s("svc-field-result")) select name="result" {
                                    option value="" { (t.s("svc-result-none")) }
                                    @for r in ["negative", "positive", "indeterminate"] { option value=(r) selected[v("result") == r] { (t.s(&format!("svc-result-{r}"))) } }
                                } (field_error(&f, form, "result")) }
                            }
                            "source" => {
                                label { (t.s("svc-field-source")) select name="source" {
                                    @for s in ["police", "outreach", "family", "self"] { option value=(s) selected[v("source") == s] { (t.s(&format!("svc-source-{s}"))) } }
                                } (field_error(&f, form, "source")) }
                            }
                            _ => {}
                        }
                    }
                    button type="submit" { (t.s("svc-record")) }
                }
            }
            section.card id="recent-services" {
                h2 { (t.s("svc-recent")) }
                @if recent.is_empty() { p.muted { (t.s("svc-none")) } } @else {
                    table.list {
                        thead { tr { th { (t.s("svc-field-on")) } th { (t.s("svc-field-uic")) } th { (t.s("svc-service")) } } }
                        tbody { @for e in &recent { tr {
                            td { (e.encounter.on) }
                            td {
                                @match (e.encounter.client_id, me.role().has(Permission::ClientRead)) {
                                    (Some(c), true) => { a href={"/clients/" (c)} { (e.uic) } }
                                    _ => { (e.uic) }
                                }
                                @if e.outreach { " " span.muted { (t.s("svc-outreach-mark")) } }
                            }
                            td { (service_summary(&t, &e.encounter.service)) }
                        } } }
                    }
                }
            }
        },
    ))
}

async fn service_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(kind): Path<String>,
    Form(f): Form<ServiceForm>,
) -> Response {
    let base = format!("/services/{kind}");
    let recorded = async {
        let on = match f.on.trim() {
            "" => st.today(),
            raw => anxin_app::parse_date("on", raw)?,
        };
        let service = service_of(&kind, &f, on, &me)?;
        let birth_year = match count_field("birth_year", &f.birth_year)? {
            Some(y) => Some(i32::try_from(y).map_err(|_| {
                anxin_domain::Problem::new(anxin_domain::Code::NumberInvalid)
                    .field("birth_year")
                    .arg("value", y)
            })?),
            None => None,
        };
        let entry = anxin_app::services::ServiceEntry {
            uic: f.uic.clone(),
            outreach: f.outreach.is_some(),
            sex: Some(f.sex.clone()),
            birth_year,
            on: Some(on.to_string()),
            service,
        };
        Ok::<_, AppError>(
            anxin_app::services::record_by_uic(&st.app, &me.app_actor(), &entry).await?,
        )
    }
    .await;
    match recorded {
        Ok(e) => crate::flash::redirect(
            &base,
            crate::flash::Tone::Ok,
            crate::flash::Message::Id {
                id: "svc-recorded".into(),
                args: vec![(
                    "uic".into(),
                    e.uic.unwrap_or_else(|| f.uic.trim().to_uppercase()),
                )],
            },
        ),
        Err(e) => crate::web::refused_form(&st, &base, "service", e, f.values()),
    }
}

/// The DHIS2 download form's query.
#[derive(Debug, Default, Deserialize)]
struct Dhis2Query {
    #[serde(default)]
    month: Option<String>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    org_unit: Option<String>,
}

/// The mapping as a table (with a remove button per line when `editable`).
fn mapping_table(t: &T, me: &CurrentUser, entries: &[Dhis2EntryView], editable: bool) -> Markup {
    html! {
        @if entries.is_empty() { p.muted id="dhis2-mapping-empty" { (t.s("dhis2-mapping-none")) } } @else {
            table.list id="dhis2-mapping" {
                thead { tr {
                    th { (t.s("ind-indicator")) } th { (t.s("dhis2-sex")) } th { (t.s("dhis2-age-band")) }
                    th { (t.s("dhis2-data-element")) } th { (t.s("dhis2-coc")) }
                    @if editable { th {} }
                } }
                tbody { @for (i, e) in entries.iter().enumerate() { tr {
                    td { (indicator_label(t, &e.indicator)) br; code.muted { (e.indicator) } }
                    td { (cell_label(t, "sex", &e.sex)) } td { (cell_label(t, "age", &e.age_band)) }
                    td { code { (e.data_element) } } td { code { (e.category_option_combo) } }
                    @if editable { td.actions {
                        form method="post" action={"/dhis2-mapping/" (i) "/remove"} {
                            input type="hidden" name="csrf" value=(me.csrf_token);
                            button type="submit" { (t.s("dhis2-remove")) }
                        }
                    } }
                } } }
            }
        }
    }
}

/// An indicator id of a mapping line (`<id>` or `<id>.denominator`) in the page's language.
fn indicator_label(t: &T, id: &str) -> String {
    match id.strip_suffix(".denominator") {
        Some(base) => t.a(
            "dhis2-denominator-of",
            &[("indicator", &t.s(&format!("ind-name-{base}")))],
        ),
        None => t.s(&format!("ind-name-{id}")),
    }
}

/// A sex or age band of a mapping line in the page's language (`total` included).
fn cell_label(t: &T, what: &str, v: &str) -> String {
    if v == "total" {
        t.s("ind-total")
    } else {
        t.s(&format!("ind-{what}-{v}"))
    }
}

/// The CDC's DHIS2 page: a whole month to download (the last one over by default, its
/// refusals said at the field), and the mapping in force.
async fn dhis2_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<Dhis2Query>,
) -> WebResult<Markup> {
    dhis2_page_with(&st, &me, &q, None).await
}

async fn dhis2_page_with(
    st: &AppState,
    me: &CurrentUser,
    q: &Dhis2Query,
    refused: Option<&anxin_domain::Problem>,
) -> WebResult<Markup> {
    let t = T::of(st, me);
    let mapping = anxin_app::indicators::mapping(&st.app, &me.app_actor()).await?;
    let month = q
        .month
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| anxin_app::indicators::last_whole_month(st.today()));
    let error_at = |field: &str| {
        refused
            .filter(|p| p.field.as_deref() == Some(field))
            .map(|p| crate::i18n::I18n::global().problem(t.lang, p))
    };
    let general = refused
        .filter(|p| {
            !matches!(
                p.field.as_deref(),
                Some("month" | "site" | "unit" | "org_unit")
            )
        })
        .map(|p| crate::i18n::I18n::global().problem(t.lang, p));
    Ok(layout(
        &t,
        &t.s("dhis2-title"),
        Some(me),
        html! {
            h1 { (t.s("dhis2-title")) }
            p.muted { (t.s("dhis2-help")) }
            section.card {
                h2 { (t.s("dhis2-download")) }
                @if let Some(m) = &general { p.flash.error role="alert" { (m) } }
                form method="get" action="/indicators/dhis2/download" id="dhis2-download" {
                    label { (t.s("dhis2-month"))
                        input type="month" name="month" required value=(month) aria-invalid=[error_at("month").map(|_| "true")];
                        @if let Some(m) = error_at("month") { span.field-error role="alert" data-field="month" { (m) } }
                    }
                    @if me.role().is_outside() {
                        label { (t.s("ind-site")) input name="site" value=(q.site.clone().unwrap_or_default()) aria-invalid=[error_at("site").map(|_| "true")];
                            @if let Some(m) = error_at("site") { span.field-error role="alert" data-field="site" { (m) } }
                        }
                        label { (t.s("cmp-unit")) input name="unit" value=(q.unit.clone().unwrap_or_default()) aria-invalid=[error_at("unit").map(|_| "true")];
                            @if let Some(m) = error_at("unit") { span.field-error role="alert" data-field="unit" { (m) } }
                        }
                    }
                    label { (t.s("dhis2-org-unit")) input name="org_unit" value=(q.org_unit.clone().unwrap_or_default()) placeholder=(t.s("dhis2-org-unit-default")); }
                    button type="submit" { (t.s("dhis2-download-button")) }
                }
            }
            section.card {
                h2 { (t.s("dhis2-mapping")) }
                (mapping_table(&t, me, &mapping.entries, false))
            }
        },
    ))
}

/// Downloads a whole month's `dataValueSets` as a file; a refusal comes back on the page, at
/// its field, in the page's language.
async fn dhis2_download(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<Dhis2Query>,
) -> Response {
    let made = async {
        let period =
            anxin_app::indicators::whole_month(q.month.as_deref().unwrap_or(""), st.today())?;
        let mut params = HashMap::new();
        params.insert("from".to_owned(), period.from.to_string());
        params.insert("to".to_owned(), period.to.to_string());
        if let Some(site) = q.site.as_deref().filter(|s| !s.trim().is_empty()) {
            params.insert("site".to_owned(), site.to_owned());
        }
        if let Some(unit) = q.unit.as_deref().filter(|s| !s.trim().is_empty()) {
            params.insert("unit".to_owned(), unit.to_owned());
        }
        let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &params).await?;
        let set = anxin_app::indicators::dhis2_export(
            &st.app,
            &me.app_actor(),
            &scope,
            q.org_unit.as_deref(),
        )
        .await?;
        Ok::<_, AppError>((scope, set))
    }
    .await;
    match made {
        Ok((scope, set)) => {
            let name = format!(
                "attachment; filename=\"dhis2-{}-{}.json\"",
                scope.site_label(),
                scope.period.from.format("%Y-%m")
            );
            let body = serde_json::to_string_pretty(&set).unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                body,
            )
                .into_response()
        }
        Err(AppError::Domain(anxin_domain::DomainError::Refused(p)))
            if p.kind() != anxin_domain::problem::Kind::Forbidden
                || p.code == anxin_domain::Code::ScopeOutside =>
        {
            match dhis2_page_with(&st, &me, &q, Some(&p)).await {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => crate::web::error_page(e),
    }
}

/// The administrator's DHIS2 mapping page: each line maps one cell of an indicator (by sex and
/// age band, or their totals) to a DHIS2 data element and category option combination.
async fn mapping_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let entries = anxin_app::indicators::mapping_entries(&st.app, &me.app_actor()).await?;
    let form = "mapping";
    let v = |field: &str| f.value(form, field).map(str::to_owned).unwrap_or_default();
    let fields = [
        "indicator",
        "sex",
        "age_band",
        "data_element",
        "category_option_combo",
    ];
    Ok(layout(
        &t,
        &t.s("dhis2-mapping"),
        Some(&me),
        html! {
            h1 { (t.s("dhis2-mapping")) }
            (flash(&f))
            p.muted { (t.s("dhis2-mapping-help")) }
            (mapping_table(&t, &me, &entries.entries, true))
            section.card {
                h2 { (t.s("dhis2-add")) }
                form method="post" action="/dhis2-mapping" id="dhis2-add" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, form, &fields))
                    label { (t.s("ind-indicator")) select name="indicator" {
                        @for id in anxin_app::indicators::mappable_indicators() {
                            option value=(id) selected[v("indicator") == id] { (indicator_label(&t, &id)) }
                        }
                    } (field_error(&f, form, "indicator")) }
                    label { (t.s("dhis2-sex")) select name="sex" {
                        @for s in ["total", "male", "female", "unknown"] { option value=(s) selected[v("sex") == s] { (cell_label(&t, "sex", s)) } }
                    } (field_error(&f, form, "sex")) }
                    label { (t.s("dhis2-age-band")) select name="age_band" {
                        @for b in ["total", "under_25", "25_plus", "unknown"] { option value=(b) selected[v("age_band") == b] { (cell_label(&t, "age", b)) } }
                    } (field_error(&f, form, "age_band")) }
                    label { (t.s("dhis2-data-element")) input name="data_element" value=(v("data_element")) aria-invalid=[f.error_at(form, "data_element").map(|_| "true")]; (field_error(&f, form, "data_element")) }
                    label { (t.s("dhis2-coc")) input name="category_option_combo" value=(v("category_option_combo")) aria-invalid=[f.error_at(form, "category_option_combo").map(|_| "true")]; (field_error(&f, form, "category_option_combo")) }
                    button type="submit" { (t.s("dhis2-add-button")) }
                }
            }
        },
    ))
}

/// The mapping page's add form (the same fields as the API's [`MappingEntry`]).
#[derive(Debug, Deserialize)]
struct MappingForm {
    #[serde(default)]
    indicator: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    age_band: String,
    #[serde(default)]
    data_element: String,
    #[serde(default)]
    category_option_combo: String,
}

async fn mapping_add(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(f): Form<MappingForm>,
) -> Response {
    let e = MappingEntry {
        indicator: f.indicator,
        sex: f.sex,
        age_band: f.age_band,
        data_element: f.data_element,
        category_option_combo: f.category_option_combo,
    };
    let values = vec![
        ("indicator".to_owned(), e.indicator.clone()),
        ("sex".to_owned(), e.sex.clone()),
        ("age_band".to_owned(), e.age_band.clone()),
        ("data_element".to_owned(), e.data_element.clone()),
        (
            "category_option_combo".to_owned(),
            e.category_option_combo.clone(),
        ),
    ];
    match anxin_app::indicators::add_mapping_entry(&st.app, &me.app_actor(), &e).await {
        Ok(()) => crate::flash::redirect(
            "/dhis2-mapping",
            crate::flash::Tone::Ok,
            crate::flash::Message::Id {
                id: "dhis2-added".into(),
                args: vec![],
            },
        ),
        Err(err) => crate::web::refused_form(&st, "/dhis2-mapping", "mapping", err.into(), values),
    }
}

async fn mapping_remove(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(index): Path<usize>,
) -> Response {
    after_form(
        "/dhis2-mapping",
        anxin_app::indicators::remove_mapping_entry(&st.app, &me.app_actor(), index).await,
    )
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
                "/indicators/retention",
                Needs(IndicatorsRead),
                "Retention life table by enrolment cohort",
            ),
            retention_page,
        )
        .add(
            RouteSpec::web(
                Get,
                "/indicators/trend",
                Needs(IndicatorsRead),
                "Twelve-month trends",
            ),
            trend_page,
        )
        .add(
            RouteSpec::web(
                Get,
                "/indicators/dhis2",
                Needs(Dhis2Export),
                "DHIS2: download a month; the mapping in force",
            ),
            dhis2_page,
        )
        .add(
            RouteSpec::web(
                Get,
                "/indicators/dhis2/download",
                Needs(Dhis2Export),
                "Download a month's DHIS2 dataValueSets",
            ),
            dhis2_download,
        )
        .add(
            RouteSpec::web(
                Get,
                "/dhis2-mapping",
                Needs(SiteManage),
                "The DHIS2 mapping",
            ),
            mapping_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/dhis2-mapping",
                Needs(SiteManage),
                "Add a DHIS2 mapping line",
            ),
            mapping_add,
        )
        .add(
            RouteSpec::web(
                Post,
                "/dhis2-mapping/{index}/remove",
                Needs(SiteManage),
                "Remove a DHIS2 mapping line",
            ),
            mapping_remove,
        )
        .add(
            RouteSpec::web(Get, "/services", Needs(ServiceRecord), "Record a service"),
            services_home,
        )
        .add(
            RouteSpec::web(
                Get,
                "/services/{kind}",
                Needs(ServiceRecord),
                "Record a service of one kind; the centre's latest services",
            ),
            services_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/services/{kind}",
                Needs(ServiceRecord),
                "Record a service for a client or an outreach contact",
            ),
            service_form,
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
                "/api/v1/indicators/trend",
                Needs(IndicatorsRead),
                "indicators",
                "The last twelve whole months of four indicators (suppressed for the CDC)",
            )
            .query(
                "site",
                "string",
                "a centre's code, or all (outside roles only)",
            )
            .query(
                "unit",
                "string",
                "an organisation unit's code (outside roles only; default the account's unit)",
            )
            .answers::<anxin_app::indicators::Trend>(),
            api_trend,
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
                Needs(Dhis2Export),
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
                Needs(Dhis2Export),
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
