//! Organisation units over HTTP: the administrator's page and API to create units (province →
//! city → district), place centres in them and scope CDC and police accounts to a unit; and the
//! CDC's comparison of the centres below a unit for one month (key figures suppressed as any
//! report, completeness and timeliness), as a page (`/indicators/compare`) and JSON.

use std::collections::HashMap;

use anxin_app::org::{self as uc, NewUnitRequest, OrgView, PlaceRequest, ScopeRequest, UnitView};
use anxin_app::units::{Comparison, TIMELY_BY_DAY};
use anxin_domain::indicators::Unit;
use anxin_domain::org::OrgLevel;
use anxin_domain::{Access, DomainError, Permission};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::flash::{self, Message, Tone};
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{field_error, flash, form_notice, layout, refused_form, Flash, WebResult, T};

const BASE: &str = "/org-units";

async fn org_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let view = uc::overview(&st.app, &me.app_actor()).await?;
    let v = |form: &str, field: &str| f.value(form, field).map(str::to_owned).unwrap_or_default();
    let invalid = |form: &str, field: &str| f.error_at(form, field).map(|_| "true");
    let level_name = |l: &str| t.s(&format!("org-level-{l}"));
    Ok(layout(
        &t,
        &t.s("org-title"),
        Some(&me),
        html! {
            h1 { (t.s("org-title")) }
            (flash(&f))
            p.muted { (t.s("org-help")) }
            @if view.units.is_empty() {
                p.muted id="org-none" { (t.s("org-none")) }
            } @else {
                table.list id="org-units" {
                    thead { tr {
                        th { (t.s("org-code")) } th { (t.s("org-name")) } th { (t.s("org-level")) }
                        th { (t.s("org-parent")) } th { (t.s("org-dhis2")) }
                    } }
                    tbody { @for u in &view.units { tr data-unit=(u.code) {
                        td { code { (u.code) } } td { (u.name) } td { (level_name(&u.level)) }
                        td { @if let Some(p) = &u.parent { code { (p) } } @else { "—" } }
                        td { code { (u.dhis2_code) } }
                    } } }
                }
            }
            section.card {
                h2 { (t.s("org-add")) }
                form method="post" action="/org-units" id="unit-add" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, "unit", &["code", "name", "level", "parent", "dhis2_code"]))
                    label { (t.s("org-code")) input name="code" value=(v("unit", "code")) required aria-invalid=[invalid("unit", "code")]; (field_error(&f, "unit", "code")) }
                    label { (t.s("org-name")) input name="name" value=(v("unit", "name")) required aria-invalid=[invalid("unit", "name")]; (field_error(&f, "unit", "name")) }
                    label { (t.s("org-level")) select name="level" {
                        @for l in OrgLevel::ALL { option value=(l.as_str()) selected[v("unit", "level") == l.as_str()] { (level_name(l.as_str())) } }
                    } (field_error(&f, "unit", "level")) }
                    label { (t.s("org-parent")) select name="parent" aria-invalid=[invalid("unit", "parent")] {
                        option value="" { (t.s("org-no-parent")) }
                        @for u in &view.units { option value=(u.code) selected[v("unit", "parent") == u.code] { (u.code) " · " (u.name) } }
                    } (field_error(&f, "unit", "parent")) }
                    label { (t.s("org-dhis2")) input name="dhis2_code" value=(v("unit", "dhis2_code")) placeholder=(t.s("org-dhis2-default")); (field_error(&f, "unit", "dhis2_code")) }
                    button type="submit" { (t.s("org-add-button")) }
                }
            }
            section.card {
                h2 { (t.s("org-centres")) }
                table.list id="org-centres" {
                    thead { tr { th { (t.s("org-centre")) } th { (t.s("org-name")) } th { (t.s("org-unit")) } th { (t.s("org-dhis2")) } } }
                    tbody { @for c in &view.centres { tr data-site=(c.site) {
                        td { code { (c.site) } } td { (c.name) }
                        td { @if let Some(u) = &c.unit { code { (u) } } @else { "—" } }
                        td { code { (c.dhis2_code) } }
                    } } }
                }
                form method="post" action="/org-units/place" id="place-centre" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, "place", &["site", "unit", "dhis2_code"]))
                    label { (t.s("org-centre")) select name="site" {
                        @for c in &view.centres { option value=(c.site) selected[v("place", "site") == c.site] { (c.site) } }
                    } (field_error(&f, "place", "site")) }
                    label { (t.s("org-unit")) select name="unit" aria-invalid=[invalid("place", "unit")] {
                        option value="" { (t.s("org-no-unit")) }
                        @for u in &view.units { option value=(u.code) selected[v("place", "unit") == u.code] { (u.code) " · " (u.name) } }
                    } (field_error(&f, "place", "unit")) }
                    label { (t.s("org-dhis2")) input name="dhis2_code" value=(v("place", "dhis2_code")) placeholder=(t.s("org-dhis2-site-default")); }
                    button type="submit" { (t.s("org-place-button")) }
                }
            }
            section.card {
                h2 { (t.s("org-accounts")) }
                p.muted { (t.s("org-accounts-help")) }
                table.list id="org-accounts" {
                    thead { tr { th { (t.s("org-username")) } th { (t.s("org-role")) } th { (t.s("org-unit")) } } }
                    tbody { @for a in &view.accounts { tr data-username=(a.username) {
                        td { (a.username) } td { (t.s(&format!("role-{}", a.role))) }
                        td { @if let Some(u) = &a.unit { code { (u) } } @else { (t.s("org-whole")) } }
                    } } }
                }
                form method="post" action="/org-units/scope" id="scope-account" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, "scope", &["username", "unit"]))
                    label { (t.s("org-username")) input name="username" value=(v("scope", "username")) required aria-invalid=[invalid("scope", "username")]; (field_error(&f, "scope", "username")) }
                    label { (t.s("org-unit")) select name="unit" aria-invalid=[invalid("scope", "unit")] {
                        option value="" { (t.s("org-whole")) }
                        @for u in &view.units { option value=(u.code) selected[v("scope", "unit") == u.code] { (u.code) " · " (u.name) } }
                    } (field_error(&f, "scope", "unit")) }
                    button type="submit" { (t.s("org-scope-button")) }
                }
            }
        },
    ))
}

fn field(form: &HashMap<String, String>, name: &str) -> String {
    form.get(name).cloned().unwrap_or_default()
}

fn opt(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name).filter(|s| !s.trim().is_empty()).cloned()
}

fn kept(form: &HashMap<String, String>, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), field(form, n)))
        .collect()
}

fn done(id: &str, args: Vec<(String, String)>) -> Response {
    flash::redirect(
        BASE,
        Tone::Ok,
        Message::Id {
            id: id.into(),
            args,
        },
    )
}

async fn add_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let req = NewUnitRequest {
        code: field(&form, "code"),
        name: field(&form, "name"),
        level: field(&form, "level"),
        parent: opt(&form, "parent"),
        dhis2_code: opt(&form, "dhis2_code"),
    };
    match uc::create_unit(&st.app, &me.app_actor(), &req).await {
        Ok(u) => done("org-added", vec![("code".into(), u.code)]),
        Err(e) => refused_form(
            &st,
            BASE,
            "unit",
            AppError::from(e),
            kept(&form, &["code", "name", "level", "parent", "dhis2_code"]),
        ),
    }
}

async fn place_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let req = PlaceRequest {
        site: field(&form, "site"),
        unit: opt(&form, "unit"),
        dhis2_code: opt(&form, "dhis2_code"),
    };
    match uc::place_centre(&st.app, &me.app_actor(), &req).await {
        Ok(()) => done(
            "org-placed",
            vec![("site".into(), req.site.trim().to_owned())],
        ),
        Err(e) => refused_form(
            &st,
            BASE,
            "place",
            AppError::from(e),
            kept(&form, &["site", "unit", "dhis2_code"]),
        ),
    }
}

async fn scope_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let req = ScopeRequest {
        username: field(&form, "username"),
        unit: opt(&form, "unit"),
    };
    match uc::scope_account(&st.app, &me.app_actor(), &req).await {
        Ok(()) => done(
            "org-scoped",
            vec![("username".into(), req.username.trim().to_owned())],
        ),
        Err(e) => refused_form(
            &st,
            BASE,
            "scope",
            AppError::from(e),
            kept(&form, &["username", "unit"]),
        ),
    }
}

async fn api_overview(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<OrgView>> {
    Ok(Json(uc::overview(&st.app, &me.app_actor()).await?))
}

async fn api_add(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<NewUnitRequest>,
) -> AppResult<(StatusCode, Json<UnitView>)> {
    Ok((
        StatusCode::CREATED,
        Json(uc::create_unit(&st.app, &me.app_actor(), &req).await?),
    ))
}

async fn api_place(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<PlaceRequest>,
) -> AppResult<StatusCode> {
    uc::place_centre(&st.app, &me.app_actor(), &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_scope(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<ScopeRequest>,
) -> AppResult<StatusCode> {
    uc::scope_account(&st.app, &me.app_actor(), &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The report scope of a comparison: `month` (default: the last whole month) and `unit` or
/// `site`, through the indicators' one scope reader.
async fn comparison(
    st: &AppState,
    me: &CurrentUser,
    q: &HashMap<String, String>,
) -> Result<Comparison, AppError> {
    let raw = q
        .get("month")
        .filter(|m| !m.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| anxin_app::indicators::last_whole_month(st.today()));
    let period = anxin_app::indicators::whole_month(&raw, st.today()).map_err(DomainError::from)?;
    let mut params = q.clone();
    params.insert("from".to_owned(), period.from.to_string());
    params.insert("to".to_owned(), period.to.to_string());
    let scope = anxin_app::indicators::scope(&st.app, &me.app_actor(), &params).await?;
    Ok(anxin_app::units::compare(&st.app, &me.app_actor(), &scope).await?)
}

async fn api_compare(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<Comparison>> {
    Ok(Json(comparison(&st, &me, &q).await?))
}

fn shown(id: &str, v: Option<f64>) -> String {
    let unit = anxin_domain::indicators::indicator(id).map_or(Unit::Count, |i| i.unit);
    match (v, unit) {
        (None, _) => "*".to_owned(),
        (Some(v), Unit::Percent) => format!("{v:.1}%"),
        (Some(v), Unit::Count) => format!("{v:.0}"),
        (Some(v), Unit::PerPerson) => format!("{v:.1}"),
    }
}

/// The comparison page; a refusal (a month not over, a unit outside the scope) comes back at
/// its field, in the page's language, with what was typed.
async fn compare_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let t = T::of(&st, &me);
    let made = comparison(&st, &me, &q).await;
    let (cmp, refused) = match made {
        Ok(c) => (Some(c), None),
        Err(AppError::Domain(DomainError::Refused(p))) => (None, Some(p)),
        Err(e) => return crate::web::error_page(e),
    };
    let error_at = |field: &str| {
        refused
            .as_ref()
            .filter(|p| p.field.as_deref() == Some(field))
            .map(|p| crate::i18n::I18n::global().problem(t.lang, p))
    };
    let general = refused
        .as_ref()
        .filter(|p| !matches!(p.field.as_deref(), Some("month" | "unit" | "site")))
        .map(|p| crate::i18n::I18n::global().problem(t.lang, p));
    let typed = |k: &str| q.get(k).cloned().unwrap_or_default();
    let month = cmp.as_ref().map_or_else(
        || {
            q.get("month")
                .cloned()
                .unwrap_or_else(|| anxin_app::indicators::last_whole_month(st.today()))
        },
        |c| c.month.clone(),
    );
    let unit = cmp
        .as_ref()
        .map_or_else(|| typed("unit"), |c| c.unit.clone());
    let page = layout(
        &t,
        &t.s("cmp-title"),
        Some(&me),
        html! {
            h1 { (t.s("cmp-title")) }
            p.muted { (t.a("cmp-help", &[("day", &TIMELY_BY_DAY.to_string())])) }
            @if let Some(m) = &general { p.flash.error role="alert" { (m) } }
            form.search method="get" action="/indicators/compare" id="compare-form" {
                label { (t.s("dhis2-month")) input type="month" name="month" value=(month) aria-invalid=[error_at("month").map(|_| "true")];
                    @if let Some(m) = error_at("month") { span.field-error role="alert" data-field="month" { (m) } } }
                label { (t.s("cmp-unit")) input name="unit" value=(if refused.is_some() { typed("unit") } else if unit == "all" { String::new() } else { unit.clone() }) aria-invalid=[error_at("unit").or(error_at("site")).map(|_| "true")];
                    @if let Some(m) = error_at("unit").or(error_at("site")) { span.field-error role="alert" data-field="unit" { (m) } } }
                button type="submit" { (t.s("ind-show")) }
            }
            @if let Some(c) = &cmp {
                p.muted id="compare-scope" {
                    (t.a("cmp-scope", &[("unit", &if c.unit == "all" { t.s("ind-all-centres") } else { c.unit.clone() }), ("month", &c.month)]))
                    @if c.suppressed { " " (t.a("ind-suppressed-note", &[("threshold", &st.settings.suppression_threshold.to_string())])) }
                }
                @if c.centres.is_empty() {
                    p.muted id="compare-none" { (t.s("cmp-none")) }
                } @else {
                    table.list.wrap id="comparison" {
                        thead { tr {
                            th { (t.s("org-centre")) }
                            @for id in &c.indicators { th { (t.s(&format!("ind-name-{id}"))) } }
                            th { (t.s("cmp-completeness")) } th { (t.s("cmp-timeliness")) }
                        } }
                        tbody { @for r in &c.centres { tr data-site=(r.site) {
                            td { code { (r.site) } br; span.muted { (r.name) } }
                            @for (id, v) in c.indicators.iter().zip(&r.values) { td.value { (shown(id, *v)) } }
                            td.value data-completeness=(r.completeness.map_or(String::new(), |v| format!("{v:.1}"))) {
                                (r.completeness.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}%")))
                                br; span.muted { (t.a("cmp-days", &[("days", &r.dose_days.to_string()), ("open", &r.days_open.to_string())])) }
                            }
                            td data-timely=(r.timely) {
                                @if r.timely { (t.s("cmp-timely")) } @else { (t.a("cmp-late", &[("n", &r.late_doses.to_string())])) }
                            }
                        } } }
                    }
                    p.muted { (t.a("cmp-timely-by", &[("day", &c.timely_by.to_string())])) }
                }
                p {
                    a href={"/indicators/dhis2?month=" (c.month) "&unit=" (if c.unit == "all" { "" } else { c.unit.as_str() })} id="compare-dhis2" { (t.s("ind-export-dhis2")) }
                    " · "
                    a href="/indicators" { (t.s("ind-title")) }
                }
            }
        },
    );
    if refused.is_some() {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page.into_response()
    }
}

/// Adds the organisation units' pages and API.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(RouteSpec::web(Get, "/org-units", Needs(SiteManage), "Organisation units, where the centres sit, outside accounts' scopes"), org_page)
        .add(RouteSpec::web(Post, "/org-units", Needs(SiteManage), "Create an organisation unit"), add_form)
        .add(RouteSpec::web(Post, "/org-units/place", Needs(SiteManage), "Place a centre in a unit"), place_form)
        .add(RouteSpec::web(Post, "/org-units/scope", Needs(SiteManage), "Scope a CDC or police account to a unit"), scope_form)
        .add(RouteSpec::api(Get, "/api/v1/org-units", Needs(SiteManage), "sites", "Organisation units, the centres' places and the outside accounts' scopes").answers::<OrgView>(), api_overview)
        .add(RouteSpec::api(Post, "/api/v1/org-units", Needs(SiteManage), "sites", "Create an organisation unit (province, city or district)").answers::<UnitView>().body::<NewUnitRequest>().status(201), api_add)
        .add(RouteSpec::api(Put, "/api/v1/org-units/place", Needs(SiteManage), "sites", "Place a centre in a city or district").body::<PlaceRequest>().status(204), api_place)
        .add(RouteSpec::api(Put, "/api/v1/org-units/scope", Needs(SiteManage), "sites", "Scope a CDC or police account to a unit (none: the whole deployment)").body::<ScopeRequest>().status(204), api_scope)
        .add(RouteSpec::web(Get, "/indicators/compare", Needs(IndicatorsRead), "Compare the centres of a unit over a month"), compare_page)
        .add(
            RouteSpec::api(Get, "/api/v1/indicators/compare", Needs(IndicatorsRead), "indicators", "The centres of a unit over one month: key figures (suppressed for the CDC), completeness and timeliness")
                .query("month", "string", "YYYY-MM, a month that is over (default the last one)")
                .query("unit", "string", "an organisation unit's code (default the account's unit)")
                .query("site", "string", "a centre's code")
                .answers::<Comparison>(),
            api_compare,
        )
}
