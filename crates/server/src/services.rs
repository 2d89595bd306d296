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
use crate::web::{after_form, flash, layout, Flash, WebResult, T};

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
    let list =
        anxin_app::services::arv_referrals(&st.app, &me.app_actor(), REFERRALS_SHOWN).await?;
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
    let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &q).await?;
    let shown = anxin_app::indicators::report(&st.app, &me.app_actor(), &scope, "page").await?;
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
