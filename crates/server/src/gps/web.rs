//! The box GPS pages: a load's box (state, last fix, the home zone and recent fixes drawn as
//! SVG — no map tiles), the forms to fit a tracker and set the zone, the alarm list of the home
//! page, and the police officer's one-word page.

use anxin_domain::gps::Zone;
use anxin_domain::{Access, Permission};
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::DateTime;
use maud::{html, Markup};
use serde::Deserialize;

use super::api::{clear_zone, fit_tracker, police_box_state, set_zone, ZoneBody};
use crate::auth::CurrentUser;
use crate::boxes::{load_of, serial_of};
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{after_form, field_error, layout, WebResult, T};

fn local(st: &AppState, ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&st.settings.utc_offset)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// An RFC 3339 instant of the API's answers as the centre's local time; "—" when absent.
fn at(st: &AppState, v: &serde_json::Value) -> String {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| local(st, t.timestamp_millis()))
        .unwrap_or_else(|| "—".into())
}

/// An RFC 3339 instant as the centre's local time; "—" when absent.
fn at_text(st: &AppState, v: Option<&str>) -> String {
    v.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| local(st, t.timestamp_millis()))
        .unwrap_or_else(|| "—".into())
}

/// The open alarms of the centre, for the home page of those who manage boxes.
pub async fn home_alarms(st: &AppState, me: &CurrentUser) -> Markup {
    if !me.role().has(Permission::TakeHomeManage) {
        return html! {};
    }
    let alarms = match anxin_app::gps::staff::open_alarms(&st.app, &me.app_actor()).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "reading box alarms failed");
            return html! {};
        }
    };
    if alarms.is_empty() {
        return html! {};
    }
    let t = T::of(st, me);
    html! {
        section.card.alert id="box-alarms" role="alert" {
            h2 { (t.a("gps-alarms-title", &[("n", &alarms.len().to_string())])) }
            ul { @for a in &alarms { li data-alarm=(a.id) {
                strong { (t.s(&format!("gps-alarm-{}", a.kind))) } " · " (t.s("box-serial")) " " (a.r#box) " · " (at_text(st, a.at.as_deref())) " "
                @if let Some(l) = a.load { a href={"/loads/" (l) "/gps"} { (t.s("gps-open")) } " " }
                form.inline method="post" action={"/box-alarms/" (a.id) "/ack"} {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    button type="submit" { (t.s("gps-ack")) }
                }
            } } }
        }
    }
}

/// Local metres east/north of `(lat0, lon0)`: flat-earth is exact enough at house scale.
fn metres(lat0: f64, lon0: f64, lat: f64, lon: f64) -> (f64, f64) {
    let x = (lon - lon0) * 111_320.0 * lat0.to_radians().cos();
    let y = (lat - lat0) * 110_540.0;
    (x, y)
}

/// The zone and the fixes as an SVG drawing centred on the zone, north up.
fn drawing(zone: &Zone, fixes: &[(f64, f64)], label: &str) -> Markup {
    let (lat0, lon0) = zone.centre();
    let mut extent: f64 = match zone {
        Zone::Circle { radius_m, .. } => radius_m * 1.5,
        Zone::Polygon { points } => {
            points
                .iter()
                .map(|p| {
                    let (x, y) = metres(lat0, lon0, p[0], p[1]);
                    x.abs().max(y.abs())
                })
                .fold(50.0, f64::max)
                * 1.3
        }
    };
    for (lat, lon) in fixes {
        let (x, y) = metres(lat0, lon0, *lat, *lon);
        extent = extent.max(x.abs() * 1.1).max(y.abs() * 1.1);
    }
    let scale = 150.0 / extent.max(1.0);
    let at = |lat: f64, lon: f64| {
        let (x, y) = metres(lat0, lon0, lat, lon);
        (160.0 + x * scale, 160.0 - y * scale)
    };
    let poly = match zone {
        Zone::Polygon { points } => points
            .iter()
            .map(|p| {
                let (x, y) = at(p[0], p[1]);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" "),
        Zone::Circle { .. } => String::new(),
    };
    html! {
        svg.gps id="gps-drawing" viewBox="0 0 320 320" width="320" height="320" role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            rect x="0" y="0" width="320" height="320" fill="#f7f7f4" {}
            @match zone {
                Zone::Circle { radius_m, .. } => { circle.zone cx="160" cy="160" r=(format!("{:.1}", radius_m * scale)) fill="#dcefdc" stroke="#2e7d32" {} }
                Zone::Polygon { .. } => { polygon.zone points=(poly) fill="#dcefdc" stroke="#2e7d32" {} }
            }
            @for (i, (lat, lon)) in fixes.iter().enumerate() {
                @let (x, y) = at(*lat, *lon);
                circle.fix cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r=(if i == 0 { "5" } else { "3" }) fill=(if i == 0 { "#c62828" } else { "#555" }) {}
            }
            text x="8" y="312" font-size="11" fill="#555" { (format!("{:.0} m", extent)) " ↔" }
            text x="300" y="18" font-size="12" fill="#555" { "N" }
        }
    }
}

async fn load_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    f: crate::web::Flash,
) -> WebResult<Markup> {
    let load = load_of(&st, &me, &id).await?;
    let serial = serial_of(&st, &load).await?;
    let v = serde_json::to_value(super::api::box_view(&st, &me, &serial).await?)
        .map_err(|_| crate::error::AppError::Internal)?;
    let t = T::of(&st, &me);
    let zone: Option<Zone> = serde_json::from_value(v["zone"].clone()).ok();
    let watching_this = v["load"].as_i64() == Some(load.id);
    let fixes: Vec<(f64, f64)> = v["fixes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p["lat"].as_f64()?, p["lon"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    let presence = &v["presence"];
    let state_word = presence["state"].as_str().unwrap_or("unknown");
    let csrf = html! { input type="hidden" name="csrf" value=(me.csrf_token); };
    let title = t.a("gps-title", &[("serial", &serial)]);
    Ok(layout(
        &t,
        &title,
        Some(&me),
        html! {
            h1 { (title) }
            (crate::web::flash(&f))
            p { a href={"/clients/" (load.client_id)} { (t.s("gps-back")) } }
            section.card id="gps-state" {
                dl {
                    dt { (t.s("gps-tracker")) } dd {
                        (v["tracker"].as_str().unwrap_or("—"))
                        @match v["tracker_link"].as_str() {
                            Some("gt06") => { " · " span.unauthenticated data-link="gt06" { (t.s("gps-link-gt06-mark")) } }
                            Some(_) => { " · " span data-link="token" { (t.s("gps-link-token-mark")) } }
                            None => {}
                        }
                    }
                    @if watching_this {
                        dt { (t.s("gps-presence")) } dd { strong data-presence=(state_word) { (t.s(&format!("gps-presence-{state_word}"))) } }
                        dt { (t.s("gps-since")) } dd { (at(&st, &presence["since"])) }
                        dt { (t.s("gps-last-fix")) } dd { (at(&st, &presence["last_fix"])) }
                        dt { (t.s("gps-battery")) } dd { @if let Some(b) = presence["battery_percent"].as_i64() { (b) "%" } @else { "—" } }
                    }
                }
                @if let (true, Some(z)) = (watching_this, &zone) { (drawing(z, &fixes, &t.s("gps-drawing-label"))) p.muted { (t.s("gps-drawing-help")) } }
                @if !watching_this { p.muted { (t.s("gps-not-watched")) } }
            }
            @if v["tracker"].is_null() {
                section.card {
                    h2 { (t.s("gps-fit")) }
                    form method="post" action={"/loads/" (load.id) "/tracker"} id="tracker-form" {
                        (csrf)
                        label { (t.s("gps-imei")) input name="imei" inputmode="numeric" pattern="[0-9]{15}" required value=[f.value("tracker", "imei")]; (field_error(&f, "tracker", "imei")) }
                        label { (t.s("gps-link")) select name="link" {
                            option value="token" selected[f.value("tracker", "link") != Some("gt06")] { (t.s("gps-link-token")) }
                            option value="gt06" selected[f.value("tracker", "link") == Some("gt06")] { (t.s("gps-link-gt06")) }
                        } (field_error(&f, "tracker", "link")) }
                        button type="submit" { (t.s("gps-fit")) }
                    }
                }
            } @else if load.state.is_out() {
                section.card {
                    h2 { (t.s("gps-zone")) }
                    p.muted { (t.s("gps-zone-help")) }
                    form method="post" action={"/loads/" (load.id) "/home-zone"} id="zone-form" {
                        (csrf)
                        label { (t.s("gps-lat")) input name="lat" type="number" step="any" min="-90" max="90" required; }
                        label { (t.s("gps-lon")) input name="lon" type="number" step="any" min="-180" max="180" required; }
                        label { (t.s("gps-radius")) input name="radius_m" type="number" min="25" max="2000" value="100" required; }
                        button type="submit" { (t.s("gps-zone-set")) }
                    }
                    @if watching_this {
                        form method="post" action={"/loads/" (load.id) "/home-zone/clear"} {
                            (csrf)
                            button type="submit" { (t.s("gps-zone-clear")) }
                        }
                    }
                }
            }
            @if let Some(alarms) = v["alarms"].as_array().filter(|a| !a.is_empty()) {
                section.card {
                    h2 { (t.s("gps-alarms")) }
                    ul { @for a in alarms { li { (t.s(&format!("gps-alarm-{}", a["kind"].as_str().unwrap_or("other")))) " · " (at(&st, &a["at"])) } } }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct ImeiForm {
    imei: String,
    #[serde(default)]
    link: String,
}

async fn tracker_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<ImeiForm>,
) -> Response {
    let base = format!("/loads/{id}/gps");
    let r = async {
        let link = anxin_app::gps::staff::TrackerLink::parse(&f.link)?;
        let load = load_of(&st, &me, &id).await?;
        let serial = serial_of(&st, &load).await?;
        fit_tracker(&st, &me, &serial, &f.imei, link).await
    }
    .await;
    match r {
        Ok(fitted) => match fitted.token {
            // The device's token, shown this once (only its hash is kept).
            Some(token) => token_page(&st, &me, &base, &fitted.imei, &token),
            None => Redirect::to(&base).into_response(),
        },
        Err(e) => crate::web::refused_form(
            &st,
            &base,
            "tracker",
            e,
            vec![("imei".into(), f.imei), ("link".into(), f.link)],
        ),
    }
}

/// After fitting a token tracker: its token, once, and where it goes in the device.
fn token_page(st: &AppState, me: &CurrentUser, base: &str, imei: &str, token: &str) -> Response {
    let t = T {
        st,
        lang: crate::i18n::Lang::from_tag(&me.user.language),
    };
    let body = html! {
        section.card id="tracker-token" {
            h1 { (t.s("gps-token-title")) }
            p { (t.a("gps-token-help", &[("imei", imei)])) }
            p { code.device-token { (token) } }
            p.muted { (t.s("gps-token-once")) }
            p { a href=(base) { (t.s("gps-back-to-box")) } }
        }
    };
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        layout(&t, &t.s("gps-token-title"), Some(me), body),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CircleForm {
    lat: f64,
    lon: f64,
    radius_m: f64,
}

async fn zone_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<CircleForm>,
) -> Response {
    let base = format!("/loads/{id}/gps");
    let body = ZoneBody {
        kind: "circle".into(),
        lat: Some(f.lat),
        lon: Some(f.lon),
        radius_m: Some(f.radius_m),
        points: None,
    };
    let r = async {
        let zone = body.zone()?;
        set_zone(&st, &me, &id, &zone).await
    }
    .await;
    after_form(&base, r)
}

async fn clear_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    let base = format!("/loads/{id}/gps");
    after_form(&base, clear_zone(&st, &me, &id).await)
}

async fn ack_form(State(st): State<AppState>, me: CurrentUser, Path(id): Path<String>) -> Response {
    let r = async {
        anxin_app::gps::staff::acknowledge(&st.app, &me.app_actor(), &id).await?;
        Ok::<(), crate::error::AppError>(())
    }
    .await;
    after_form("/", r)
}

/// The police officer's page for one approved request: one word and a time.
async fn police_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> WebResult<Markup> {
    let v = serde_json::to_value(police_box_state(&st, &me, &id).await?)
        .map_err(|_| crate::error::AppError::Internal)?;
    let t = T::of(&st, &me);
    let word = v["state"].as_str().unwrap_or("unknown");
    Ok(layout(
        &t,
        &t.s("gps-police-title"),
        Some(&me),
        html! {
            h1 { (t.s("gps-police-title")) }
            p id="box-state" data-presence=(word) { strong { (t.s(&format!("gps-presence-{word}"))) } }
            p.muted { (t.s("gps-since")) " " (at(&st, &v["since"])) }
            p.muted { (t.s("gps-police-help")) }
            p { a href="/psb" { (t.s("psb-title")) } }
        },
    ))
}

/// Adds the GPS pages and form targets.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(
                Get,
                "/loads/{id}/gps",
                Needs(TakeHomeManage),
                "A load's box: GPS state, zone, fixes",
            ),
            load_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/loads/{id}/tracker",
                Needs(TakeHomeManage),
                "Fit a tracker to the load's box",
            ),
            tracker_form,
        )
        .add(
            RouteSpec::web(
                Post,
                "/loads/{id}/home-zone",
                Needs(TakeHomeManage),
                "Set the home zone",
            ),
            zone_form,
        )
        .add(
            RouteSpec::web(
                Post,
                "/loads/{id}/home-zone/clear",
                Needs(TakeHomeManage),
                "Stop watching the box",
            ),
            clear_form,
        )
        .add(
            RouteSpec::web(
                Post,
                "/box-alarms/{id}/ack",
                Needs(TakeHomeManage),
                "Acknowledge a box alarm",
            ),
            ack_form,
        )
        .add(
            RouteSpec::web(
                Get,
                "/psb/{id}/box",
                Needs(PsbQueue),
                "Police: the box's state word",
            ),
            police_page,
        )
}
