//! The take-home programme over HTTP, second half: the box registry, loading a box (a fresh
//! secret, one compartment a day within eligibility and approval, each day's code queued in the
//! SMS outbox at the client's hour), hand-out, withholding codes, revealing today's code to a
//! caller, loss, and return with the box's verified log reconciled against what was sent.

use anxin_app::records::{Load, LockBox};
use anxin_domain::boxes::BoxState;
use anxin_domain::{Access, Permission};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

pub use anxin_app::boxes::BoxRequest;

async fn api_add_box(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<BoxRequest>,
) -> AppResult<(StatusCode, Json<BoxView>)> {
    let b = anxin_app::boxes::register(&st.app, &me.app_actor(), &req).await?;
    Ok((StatusCode::CREATED, Json(BoxView::from(&b))))
}

async fn api_boxes(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<Vec<BoxView>>> {
    let boxes = anxin_app::boxes::registry(&st.app, &me.app_actor()).await?;
    Ok(Json(boxes.iter().map(BoxView::from).collect()))
}

/// A box in the registry.
#[derive(Serialize, JsonSchema)]
pub struct BoxView {
    pub id: i64,
    pub site_id: i64,
    pub serial: String,
    /// in_clinic, loaded, with_client, returned, lost or retired
    #[schemars(with = "String")]
    pub state: BoxState,
}

impl From<&LockBox> for BoxView {
    fn from(b: &LockBox) -> Self {
        BoxView {
            id: b.id,
            site_id: b.site_id,
            serial: b.serial.clone(),
            state: b.state,
        }
    }
}

pub use anxin_app::boxes::{
    day_number, HandOut, LoadAnswer, LoadCompartment, LoadRequest, LoadView, LoadWithCompartments,
};

/// Loads a box for a client and queues its codes, in one unit of work (see `anxin_app::boxes`).
pub async fn load_box(
    st: &AppState,
    me: &CurrentUser,
    raw_id: &str,
    req: LoadRequest,
) -> AppResult<LoadAnswer> {
    let id = anxin_app::identity::client_id(raw_id)?;
    Ok(anxin_app::boxes::load_box(&st.app, &me.app_actor(), id, &req).await?)
}

async fn api_load(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LoadRequest>,
) -> AppResult<(StatusCode, Json<LoadAnswer>)> {
    Ok((
        StatusCode::CREATED,
        Json(load_box(&st, &me, &id, req).await?),
    ))
}

async fn api_loads(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<LoadWithCompartments>>> {
    let id = anxin_app::identity::client_id(&id)?;
    Ok(Json(
        anxin_app::boxes::loads_of(&st.app, &me.app_actor(), id).await?,
    ))
}

/// A load of the user's centre.
pub(crate) async fn load_of(st: &AppState, me: &CurrentUser, raw: &str) -> AppResult<Load> {
    Ok(anxin_app::boxes::load_of(&st.app, &me.app_actor(), raw).await?)
}

/// The serial of the box a load is in.
pub(crate) async fn serial_of(st: &AppState, load: &Load) -> AppResult<String> {
    Ok(anxin_app::boxes::serial_of(&st.app, load).await?)
}

async fn api_hand_out(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<HandOut>,
) -> AppResult<StatusCode> {
    anxin_app::boxes::hand_out(&st.app, &me.app_actor(), &id, &req).await?;
    st.app.gps.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

pub use anxin_app::boxes::{CodesStopped, ReturnAnswer, ReturnRequest, Withhold};

async fn api_withhold(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Withhold>,
) -> AppResult<Json<CodesStopped>> {
    Ok(Json(
        anxin_app::boxes::withhold(&st.app, &me.app_actor(), &id, &req).await?,
    ))
}

async fn api_lost(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Withhold>,
) -> AppResult<StatusCode> {
    anxin_app::boxes::report_lost(&st.app, &me.app_actor(), &id, &req).await?;
    st.app.gps.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

pub use anxin_app::boxes::{OverdueBox, ReturnStarted, Reveal, Revealed};

async fn api_overdue(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<Vec<OverdueBox>>> {
    Ok(Json(
        anxin_app::boxes::overdue(&st.app, &me.app_actor()).await?,
    ))
}

async fn api_reveal(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Reveal>,
) -> AppResult<Json<Revealed>> {
    Ok(Json(
        anxin_app::boxes::reveal(&st.app, &me.app_actor(), &id, &req).await?,
    ))
}

async fn api_start_return(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<ReturnStarted>> {
    Ok(Json(
        anxin_app::boxes::start_return(&st.app, &me.app_actor(), &id).await?,
    ))
}

/// Takes a box back (see `anxin_app::boxes::return_box`); the GPS pipeline forgets the box.
pub async fn return_box(
    st: &AppState,
    me: &CurrentUser,
    raw: &str,
    log_b64: &str,
) -> AppResult<ReturnAnswer> {
    let req = ReturnRequest {
        log_base64: log_b64.to_owned(),
    };
    let answer = anxin_app::boxes::return_box(&st.app, &me.app_actor(), raw, &req).await?;
    // Its zone and positions are gone: the GPS pipeline forgets the box too.
    st.app.gps.invalidate();
    Ok(answer)
}

/// Takes a box back through the box station (see `anxin_app::boxes::return_by_station`).
pub async fn return_by_station(
    st: &AppState,
    me: &CurrentUser,
    raw: &str,
) -> AppResult<ReturnAnswer> {
    let answer = anxin_app::boxes::return_by_station(&st.app, &me.app_actor(), raw).await?;
    st.app.gps.invalidate();
    Ok(answer)
}

async fn api_return_by_station(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<ReturnAnswer>> {
    Ok(Json(return_by_station(&st, &me, &id).await?))
}

async fn api_return(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReturnRequest>,
) -> AppResult<Json<ReturnAnswer>> {
    Ok(Json(return_box(&st, &me, &id, &req.log_base64).await?))
}

/// Adds the box routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/boxes",
                Needs(TakeHomeManage),
                "boxes",
                "The centre's boxes and their states",
            )
            .answers::<Vec<BoxView>>(),
            api_boxes,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/boxes/overdue",
                Needs(TakeHomeManage),
                "boxes",
                "Boxes not back by the day after their last compartment",
            )
            .answers::<Vec<OverdueBox>>(),
            api_overdue,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/boxes",
                Needs(TakeHomeManage),
                "boxes",
                "Register a box",
            )
            .answers::<BoxView>()
            .body::<BoxRequest>()
            .status(201),
            api_add_box,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/loads",
                Needs(ClinicalRead),
                "boxes",
                "The client's box loads and compartments",
            )
            .answers::<Vec<LoadWithCompartments>>(),
            api_loads,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/loads",
                Needs(TakeHomeManage),
                "boxes",
                "Load a box: a fresh secret written into it by the box station, codes queued",
            )
            .answers::<LoadAnswer>()
            .body::<LoadRequest>()
            .status(201),
            api_load,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/loads/{id}/hand-out",
                Needs(TakeHomeManage),
                "boxes",
                "Hand the box to the client",
            )
            .body::<HandOut>()
            .status(204),
            api_hand_out,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/loads/{id}/withhold",
                Needs(TakeHomeManage),
                "boxes",
                "Withhold future codes",
            )
            .answers::<CodesStopped>()
            .body::<Withhold>(),
            api_withhold,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/loads/{id}/reveal",
                Needs(CodeReveal),
                "boxes",
                "Tell a checked caller today's code (audited)",
            )
            .answers::<Revealed>()
            .body::<Reveal>(),
            api_reveal,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/loads/{id}/lost",
                Needs(TakeHomeManage),
                "boxes",
                "Report the box lost; its codes stop",
            )
            .body::<Withhold>()
            .status(204),
            api_lost,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/loads/{id}/return/start",
                Needs(TakeHomeManage),
                "boxes",
                "Start a return read elsewhere: a fresh challenge the box's export must carry",
            )
            .answers::<ReturnStarted>(),
            api_start_return,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/loads/{id}/return",
                Needs(TakeHomeManage),
                "boxes",
                "Take the box back with a log exported elsewhere and reconcile",
            )
            .answers::<ReturnAnswer>()
            .body::<ReturnRequest>(),
            api_return,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/loads/{id}/return/station",
                Needs(TakeHomeManage),
                "boxes",
                "Take the box back through the box station: fresh challenge, export, reconcile, wipe",
            )
            .answers::<ReturnAnswer>(),
            api_return_by_station,
        )
}

/// The box section of a client's page and its form targets.
pub mod web {
    use anxin_app::records::Client;
    use anxin_domain::{Access, Permission};
    use axum::extract::{Form, Path, State};
    use axum::response::{IntoResponse, Response};
    use maud::{html, Markup};
    use serde::Deserialize;

    use super::{load_box, return_by_station, HandOut, LoadAnswer, LoadRequest};
    use crate::auth::CurrentUser;
    use crate::error::AppError;
    use crate::routes::{RouteSpec, RouteTable, Verb};
    use crate::state::AppState;
    use crate::web::{field_error, form_notice, refused_form, Flash, T};
    use anxin_domain::boxes::LoadState;
    use axum::response::Redirect;

    /// The centre's boxes and their states, with the form that registers a new one.
    async fn registry_page(
        State(st): State<AppState>,
        me: CurrentUser,
        f: Flash,
    ) -> Result<Markup, crate::web::WebError> {
        let boxes = anxin_app::boxes::registry(&st.app, &me.app_actor()).await?;
        let t = T {
            st: &st,
            lang: crate::i18n::Lang::from_tag(&me.user.language),
        };
        Ok(crate::web::layout(
            &t,
            &t.s("boxes-title"),
            Some(&me),
            html! {
                h1 { (t.s("boxes-title")) }
                (crate::web::flash(&f))
                table.list id="box-registry" {
                    thead { tr { th { (t.s("box-serial")) } th { (t.s("box-state")) } } }
                    tbody { @for b in &boxes { tr data-serial=(b.serial) data-state=(b.state.as_str()) {
                        td { (b.serial) } td { (t.s(&format!("box-state-{}", b.state.as_str()))) }
                    } } }
                }
                form method="post" action="/boxes" id="box-form" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, "box", &["serial"]))
                    label { (t.s("box-serial")) input name="serial" required maxlength="40" value=[f.value("box", "serial")]; (field_error(&f, "box", "serial")) }
                    button type="submit" { (t.s("boxes-register")) }
                }
            },
        ))
    }

    #[derive(Deserialize)]
    struct SerialForm {
        #[serde(default)]
        serial: String,
    }

    async fn register_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Form(f): Form<SerialForm>,
    ) -> Response {
        let req = super::BoxRequest {
            serial: f.serial.clone(),
        };
        match anxin_app::boxes::register(&st.app, &me.app_actor(), &req).await {
            Ok(_) => Redirect::to("/boxes").into_response(),
            Err(e) => refused_form(
                &st,
                "/boxes",
                "box",
                e.into(),
                vec![("serial".into(), f.serial)],
            ),
        }
    }

    /// The home page's alert: boxes not back by their due day, with the client's UIC. Empty for
    /// roles that do not manage take-home boxes, and when every box is back in time.
    pub async fn home_overdue(st: &AppState, me: &CurrentUser) -> Markup {
        let Ok(late) = anxin_app::boxes::overdue(&st.app, &me.app_actor()).await else {
            return html! {};
        };
        if late.is_empty() {
            return html! {};
        }
        let t = T {
            st,
            lang: crate::i18n::Lang::from_tag(&me.user.language),
        };
        html! {
            section.card.alert id="overdue-boxes" role="alert" {
                h2 { (t.a("home-overdue-title", &[("n", &late.len().to_string())])) }
                p { (t.s("home-overdue-help")) }
                ul {
                    @for o in &late {
                        li data-load=(o.load_id) {
                            a href={"/clients/" (o.client_id)} { (o.uic) }
                            " · " (o.serial) " · "
                            (t.a("home-overdue-line", &[("due", &o.due_back.to_string()), ("days", &o.days_late.to_string())]))
                        }
                    }
                }
            }
        }
    }

    /// A compartment's state in the user's language (`take_home_pending` → "not yet confirmed").
    fn compartment_state(t: &T<'_>, rule: &str) -> String {
        match rule.trim_start_matches("take_home").trim_start_matches('_') {
            "" => String::new(),
            s @ ("pending" | "unopened" | "lost") => t.s(&format!("box-comp-{s}")),
            other => other.to_owned(),
        }
    }

    /// What the returned box's log showed, in the user's language (compartments counted from 1).
    fn reconciliation(t: &T<'_>, json: &str) -> String {
        let Ok(r) = serde_json::from_str::<serde_json::Value>(json) else {
            return json.to_owned();
        };
        let list = |key: &str| {
            let v: Vec<String> = r[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.as_u64())
                        .map(|i| (i + 1).to_string())
                        .collect()
                })
                .unwrap_or_default();
            if v.is_empty() {
                "–".to_owned()
            } else {
                v.join(", ")
            }
        };
        let mut s = t.a(
            "box-reconciled",
            &[("opened", &list("opened")), ("unopened", &list("unopened"))],
        );
        let events = r["tamper_events"].as_u64().unwrap_or(0);
        if list("opened_without_code") != "–" || events > 0 {
            s.push(' ');
            s.push_str(&t.a(
                "box-tampered",
                &[
                    ("compartments", &list("opened_without_code")),
                    ("events", &events.to_string()),
                ],
            ));
        }
        s
    }

    /// The boxes of a client, with load, hand-out, withhold and return forms.
    pub(crate) async fn client_section(
        t: &T<'_>,
        me: &CurrentUser,
        c: &Client,
        f: &Flash,
    ) -> Result<Markup, AppError> {
        let st = t.st;
        let loads = anxin_app::boxes::loads_with_compartments(&st.app, c.id).await?;
        let may = me.role().has(Permission::TakeHomeManage);
        let may_reveal = me.role().has(Permission::CodeReveal);
        let tomorrow = st.today() + chrono::Duration::days(1);
        let csrf = html! { input type="hidden" name="csrf" value=(me.csrf_token); };
        let rows: Vec<_> = loads
            .iter()
            .map(|lw| {
                let comps: Vec<_> = lw
                    .compartments
                    .iter()
                    .map(|c| (c.index, c.day, c.mg, c.status.clone()))
                    .collect();
                (&lw.stored, comps)
            })
            .collect();
        Ok(html! {
            section.card id="boxes" {
                h2 { (t.s("box-loads")) }
                table.list {
                    thead { tr { th { "#" } th { (t.s("box-start")) } th { (t.s("box-days")) } th { (t.s("box-state")) } th { (t.s("box-compartments")) } th {} } }
                    tbody { @for (l, comps) in &rows { tr data-load=(l.id) {
                        td { a href={"/loads/" (l.id) "/sheet"} { (l.id) } } td { (l.start_day) } td { (l.days) } td { (t.s(&format!("box-state-{}", l.state))) @if let Some(r) = &l.reconciliation { " · " span.reconciliation { (reconciliation(t, r)) } } @if l.state == LoadState::Returned && l.sealed_secret.is_empty() { " · " span.secret-erased { (t.s("box-secret-erased")) } } @if let Some(w) = l.withheld_from { " · " (t.s("box-withhold")) " " (w) } }
                        td { @for (i, _d, mg, rule) in comps { span.muted { (i + 1) ": " (mg) " mg " (compartment_state(t, rule)) " " } } }
                        td.actions { @if may && l.state.is_out() {
                            a.gps href={"/loads/" (l.id) "/gps"} { (t.s("gps-open")) }
                        } @if may && l.state == LoadState::Loaded {
                            form method="post" action={"/loads/" (l.id) "/hand-out"} class="hand-out-form" { (csrf) (form_notice(f, &format!("hand-out-{}", l.id), &["phone_confirmed"])) label.check { input type="checkbox" name="phone_confirmed" value="true" required; " " (t.s("box-hand-out-phone-confirmed")) (field_error(f, &format!("hand-out-{}", l.id), "phone_confirmed")) } button type="submit" { (t.s("box-hand-out")) } }
                        } @if may && l.state.is_out() {
                            form method="post" action={"/loads/" (l.id) "/withhold"} class="withhold-form" { (csrf) @let k = format!("withhold-{}", l.id); (form_notice(f, &k, &["reason"])) input name="reason" placeholder=(t.s("box-withhold-reason")) aria-label=(t.s("box-withhold-reason")) required value=[f.value(&k, "reason")]; (field_error(f, &k, "reason")) button type="submit" { (t.s("box-withhold")) } }
                            form method="post" action={"/loads/" (l.id) "/lost"} class="lost-form" { (csrf) @let k = format!("lost-{}", l.id); (form_notice(f, &k, &["reason"])) input name="reason" placeholder=(t.s("box-lost-reason")) aria-label=(t.s("box-lost-reason")) required value=[f.value(&k, "reason")]; (field_error(f, &k, "reason")) button type="submit" { (t.s("box-lost")) } }
                        } @if may_reveal && l.state.is_out() {
                            details.reveal { summary { (t.s("box-reveal")) }
                                form method="post" action={"/loads/" (l.id) "/reveal"} class="reveal-form" {
                                    (csrf) @let k = format!("reveal-{}", l.id);
                                    (form_notice(f, &k, &["name", "id_last4"]))
                                    p.muted { (t.s("box-reveal-help")) }
                                    label { (t.s("box-reveal-name")) input name="name" autocomplete="off" value=[f.value(&k, "name")]; (field_error(f, &k, "name")) }
                                    label { (t.s("box-reveal-last4")) input name="id_last4" autocomplete="off" maxlength="8" value=[f.value(&k, "id_last4")]; (field_error(f, &k, "id_last4")) }
                                    button type="submit" { (t.s("box-reveal-go")) }
                                }
                            }
                        } @if may && l.state.awaits_return() {
                            form method="post" action={"/loads/" (l.id) "/return/station"} class="return-form" {
                                (csrf) @let k = format!("return-{}", l.id);
                                (form_notice(f, &k, &["station"]))
                                p.muted { (t.s("box-return-help")) }
                                (field_error(f, &k, "station"))
                                button type="submit" { (t.s("box-return")) }
                            }
                        } }
                    } } }
                }
                @if may {
                    form method="post" action={"/clients/" (c.id) "/load"} id="load-form" {
                        (csrf)
                        (form_notice(f, "load", &LOAD_FIELDS))
                        label { (t.s("box-serial")) input name="serial" required value=[f.value("load", "serial")]; (field_error(f, "load", "serial")) }
                        label { (t.s("box-days")) input name="days" type="number" min="2" max="6" value=(f.value("load", "days").unwrap_or("2")) required aria-invalid=[f.error_at("load", "days").map(|_| "true")]; (field_error(f, "load", "days")) }
                        label { (t.s("box-start")) input name="start" type="date" value=(f.value("load", "start").map(str::to_owned).unwrap_or_else(|| tomorrow.to_string())); (field_error(f, "load", "start")) }
                        label { (t.s("box-hour")) input name="code_hour" type="number" min="0" max="23" value=(f.value("load", "code_hour").unwrap_or("7")); (field_error(f, "load", "code_hour")) }
                        button type="submit" { (t.s("box-load")) }
                    }
                }
            }
        })
    }

    /// The fields of the load form.
    const LOAD_FIELDS: [&str; 4] = ["serial", "days", "start", "code_hour"];

    async fn load_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
        Form(f): Form<std::collections::BTreeMap<String, String>>,
    ) -> Response {
        let base = format!("/clients/{id}");
        let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        let values: Vec<(String, String)> = LOAD_FIELDS
            .iter()
            .map(|k| ((*k).to_owned(), get(k)))
            .collect();
        let number = |k: &str| {
            get(k).parse::<u8>().map_err(|_| {
                AppError::from(
                    anxin_domain::Problem::new(anxin_domain::Code::NumberInvalid)
                        .field(k)
                        .arg("value", get(k)),
                )
            })
        };
        let req = match (number("days"), get("code_hour")) {
            (Err(e), _) => return refused_form(&st, &base, "load", e, values),
            (Ok(days), hour) => {
                let code_hour = if hour.is_empty() {
                    None
                } else {
                    match number("code_hour") {
                        Ok(h) => Some(h),
                        Err(e) => return refused_form(&st, &base, "load", e, values),
                    }
                };
                LoadRequest {
                    serial: get("serial"),
                    days,
                    start: Some(get("start")),
                    code_hour,
                    language: Some(me.user.language.clone()),
                }
            }
        };
        match load_box(&st, &me, &id, req).await {
            Ok(v) => provision_page(&st, &me, &base, &v),
            Err(e) => refused_form(&st, &base, "load", e, values),
        }
    }

    /// After loading: what the box station did, step by step (never the secret), which dose
    /// goes in which compartment, and the way on to the hand-out sheet.
    fn provision_page(st: &AppState, me: &CurrentUser, base: &str, v: &LoadAnswer) -> Response {
        let t = T {
            st,
            lang: crate::i18n::Lang::from_tag(&me.user.language),
        };
        let w = &v.written;
        let load = w.load_id.to_string();
        let compartments = w.compartments.to_string();
        let start = w.start_day.to_string();
        let body = html! {
            section.card id="box-written" data-serial=(w.serial) data-load=(w.load_id) {
                h1 { (t.s("box-loaded-title")) }
                ol.steps id="station-steps" {
                    li.done data-step="identify" { (t.a("box-step-identify", &[("serial", &w.serial), ("firmware", &w.firmware)])) }
                    li.done data-step="write" { (t.a("box-step-write", &[("serial", &w.serial), ("load", &load)])) }
                    li.done data-step="check" { (t.a("box-step-check", &[("load", &load), ("compartments", &compartments), ("start", &start)])) }
                }
                h2 { (t.s("box-compartments")) }
                table.list id="fill" {
                    thead { tr { th { (t.s("box-compartment")) } th { (t.s("box-day")) } th { "mg" } } }
                    tbody { @for c in &v.compartments {
                        tr data-compartment=(c.index + 1) { td { (c.index + 1) } td { (c.day) } td { (c.mg) } }
                    } }
                }
                p.muted { (t.s("box-codes-by-sms")) }
                p {
                    a href={"/loads/" (w.load_id) "/sheet"} id="sheet-link" { (t.s("box-print-sheet")) }
                    " · "
                    a href=(base) { (t.s("box-back")) }
                }
            }
        };
        (
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            crate::web::layout(&t, &t.s("box-loaded-title"), Some(me), body),
        )
            .into_response()
    }

    /// The client page a load's forms go back to.
    async fn client_page_of(st: &AppState, me: &CurrentUser, raw: &str) -> String {
        match anxin_app::boxes::load_of(&st.app, &me.app_actor(), raw).await {
            Ok(l) => format!("/clients/{}", l.client_id),
            Err(_) => "/clients".into(),
        }
    }

    async fn hand_out_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
        Form(form): Form<std::collections::BTreeMap<String, String>>,
    ) -> Response {
        let base = client_page_of(&st, &me, &id).await;
        let f = HandOut {
            phone_confirmed: form.get("phone_confirmed").map(String::as_str) == Some("true"),
        };
        match anxin_app::boxes::hand_out(&st.app, &me.app_actor(), &id, &f).await {
            Ok(()) => {
                st.app.gps.invalidate();
                Redirect::to(&base).into_response()
            }
            Err(e) => {
                let values = vec![("phone_confirmed".to_owned(), f.phone_confirmed.to_string())];
                refused_form(&st, &base, &format!("hand-out-{id}"), e.into(), values)
            }
        }
    }

    #[derive(Deserialize)]
    struct ReasonForm {
        #[serde(default)]
        reason: String,
    }

    /// Withholding and loss: a reason, the same use-case shape, the refusal at the field.
    async fn reason_form(
        st: &AppState,
        me: &CurrentUser,
        id: &str,
        lost: bool,
        reason: String,
    ) -> Response {
        let base = client_page_of(st, me, id).await;
        let req = super::Withhold {
            reason: reason.clone(),
            from: None,
        };
        let actor = me.app_actor();
        let done = if lost {
            anxin_app::boxes::report_lost(&st.app, &actor, id, &req).await
        } else {
            anxin_app::boxes::withhold(&st.app, &actor, id, &req)
                .await
                .map(|_| ())
        };
        match done {
            Ok(()) => {
                st.app.gps.invalidate();
                Redirect::to(&base).into_response()
            }
            Err(e) => {
                let form = format!("{}-{id}", if lost { "lost" } else { "withhold" });
                refused_form(st, &base, &form, e.into(), vec![("reason".into(), reason)])
            }
        }
    }

    async fn withhold_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
        Form(f): Form<ReasonForm>,
    ) -> Response {
        reason_form(&st, &me, &id, false, f.reason).await
    }

    async fn lost_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
        Form(f): Form<ReasonForm>,
    ) -> Response {
        reason_form(&st, &me, &id, true, f.reason).await
    }

    #[derive(Deserialize)]
    struct RevealForm {
        #[serde(default)]
        name: String,
        #[serde(default)]
        id_last4: String,
    }

    /// Tells today's code to a caller whose answers matched: shown on a page of its own that
    /// no cache keeps; refusals come back at the field with the answers kept.
    async fn reveal_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
        Form(f): Form<RevealForm>,
    ) -> Response {
        let base = client_page_of(&st, &me, &id).await;
        let req = super::Reveal {
            name: f.name.clone(),
            id_last4: f.id_last4.clone(),
        };
        match anxin_app::boxes::reveal(&st.app, &me.app_actor(), &id, &req).await {
            Ok(r) => {
                let t = T {
                    st: &st,
                    lang: crate::i18n::Lang::from_tag(&me.user.language),
                };
                let body = html! {
                    section.card id="revealed" {
                        h1 { (t.s("box-revealed-title")) }
                        p { (t.a("box-revealed-compartment", &[("n", &r.compartment.to_string())])) }
                        p.code { strong.revealed-code { (r.code) } }
                        p.muted { (t.s("box-revealed-help")) }
                        p { a href=(base) { (t.s("box-back")) } }
                    }
                };
                (
                    [(axum::http::header::CACHE_CONTROL, "no-store")],
                    crate::web::layout(&t, &t.s("box-revealed-title"), Some(&me), body),
                )
                    .into_response()
            }
            Err(e) => refused_form(
                &st,
                &base,
                &format!("reveal-{id}"),
                e.into(),
                vec![("name".into(), f.name), ("id_last4".into(), f.id_last4)],
            ),
        }
    }

    async fn return_form(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
    ) -> Response {
        let base = client_page_of(&st, &me, &id).await;
        match return_by_station(&st, &me, &id).await {
            Ok(a) => {
                let (serial, challenge, wiped) = a
                    .station
                    .map(|r| (r.serial, r.challenge.to_string(), r.wiped))
                    .unwrap_or_default();
                crate::flash::redirect(
                    &base,
                    crate::flash::Tone::Ok,
                    crate::flash::Message::Id {
                        id: if wiped {
                            "box-returned".into()
                        } else {
                            "box-returned-not-wiped".into()
                        },
                        args: vec![
                            ("serial".into(), serial),
                            ("challenge".into(), challenge),
                            ("records".into(), a.log_records.to_string()),
                        ],
                    },
                )
            }
            Err(e) => refused_form(&st, &base, &format!("return-{id}"), e, vec![]),
        }
    }

    /// The printable hand-out sheet of a load (print CSS hides the page chrome).
    async fn sheet(
        State(st): State<AppState>,
        me: CurrentUser,
        Path(id): Path<String>,
    ) -> Result<maud::Markup, crate::web::WebError> {
        let sheet = anxin_app::boxes::sheet(&st.app, &me.app_actor(), &id).await?;
        let t = T {
            st: &st,
            lang: crate::i18n::Lang::from_tag(&me.user.language),
        };
        Ok(crate::web::layout(
            &t,
            &t.s("sheet-title"),
            Some(&me),
            html! {
                article.sheet id="hand-out-sheet" {
                    h1 { (t.s("sheet-title")) }
                    dl {
                        dt { (t.s("sheet-client")) } dd { (sheet.uic) }
                        dt { (t.s("sheet-box")) } dd { (sheet.serial) " · #" (sheet.load_id) }
                    }
                    table.list {
                        thead { tr { th { (t.s("sheet-compartment")) } th { (t.s("sheet-day")) } th { (t.s("sheet-dose")) } } }
                        tbody { @for c in &sheet.compartments { tr { td { (c.index + 1) } td { (c.day) } td { (c.mg) " mg" } } } }
                    }
                    p { (t.s("sheet-instructions")) }
                    p.signature { (t.s("sheet-signature")) ": ____________________" }
                    button.noprint type="button" data-print="true" { (t.s("sheet-print")) }
                }
            },
        ))
    }

    /// Adds the box pages' form targets.
    pub fn routes(table: RouteTable) -> RouteTable {
        use Access::*;
        use Permission::*;
        use Verb::*;
        table
            .add(
                RouteSpec::web(Get, "/boxes", Needs(TakeHomeManage), "The centre's boxes"),
                registry_page,
            )
            .add(
                RouteSpec::web(Post, "/boxes", Needs(TakeHomeManage), "Register a box"),
                register_form,
            )
            .add(
                RouteSpec::web(
                    Get,
                    "/loads/{id}/sheet",
                    Needs(TakeHomeManage),
                    "Printable hand-out sheet",
                ),
                sheet,
            )
            .add(
                RouteSpec::web(
                    Post,
                    "/clients/{id}/load",
                    Needs(TakeHomeManage),
                    "Load a box",
                ),
                load_form,
            )
            .add(
                RouteSpec::web(
                    Post,
                    "/loads/{id}/hand-out",
                    Needs(TakeHomeManage),
                    "Hand a box out",
                ),
                hand_out_form,
            )
            .add(
                RouteSpec::web(
                    Post,
                    "/loads/{id}/withhold",
                    Needs(TakeHomeManage),
                    "Withhold codes",
                ),
                withhold_form,
            )
            .add(
                RouteSpec::web(
                    Post,
                    "/loads/{id}/lost",
                    Needs(TakeHomeManage),
                    "Report a box lost",
                ),
                lost_form,
            )
            .add(
                RouteSpec::web(
                    Post,
                    "/loads/{id}/reveal",
                    Needs(CodeReveal),
                    "Tell a caller today's code",
                ),
                reveal_form,
            )
            .add(
                RouteSpec::web(
                    Post,
                    "/loads/{id}/return/station",
                    Needs(TakeHomeManage),
                    "Take a box back through the box station",
                ),
                return_form,
            )
    }
}
