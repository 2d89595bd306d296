//! The centre calendar, page and API: the manager closes the centre on a day (a holiday such as
//! the Spring Festival) and removes a closure not yet past; staff who dose or prescribe see the
//! coming closures and, for each, the clients whose dose that day is not yet covered by a
//! take-home box or a guest arrangement. A closure day is never a missed day (the core's
//! `calendar` and `dispensing` modules); the day list says when the centre is closed today.

use std::collections::HashMap;

use anxin_app::calendar::{self as uc, CalendarView, ClosureRequest};
use anxin_domain::{Access, Permission};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use maud::{html, Markup};
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::flash::{self, Message, Tone};
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{
    field_error, flash, form_error, form_notice, layout, on_path_id, refused_form, Flash,
    WebResult, T,
};

/// The add form's id.
const FORM: &str = "closure";

async fn calendar_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let cal = uc::calendar(&st.app, &me.app_actor()).await?;
    let manage = me.role().has(Permission::CalendarManage);
    let v = |field: &str| f.value(FORM, field).map(str::to_owned).unwrap_or_default();
    let invalid = |field: &str| f.error_at(FORM, field).map(|_| "true");
    Ok(layout(
        &t,
        &t.s("calendar-title"),
        Some(&me),
        html! {
            h1 { (t.s("calendar-title")) }
            (flash(&f))
            p.muted { (t.s("calendar-help")) }
            @if manage {
                section.card {
                    h2 { (t.s("calendar-add")) }
                    form method="post" action="/calendar" id="closure-form" {
                        input type="hidden" name="csrf" value=(me.csrf_token);
                        (form_notice(&f, FORM, &["day", "note"]))
                        label { (t.s("calendar-day")) input type="date" name="day" id="closure-day" value=(v("day")) required aria-invalid=[invalid("day")]; (field_error(&f, FORM, "day")) }
                        label { (t.s("calendar-note")) input name="note" id="closure-note" value=(v("note")) maxlength=(uc::NOTE_MAX) placeholder=(t.s("calendar-note-example")) aria-invalid=[invalid("note")]; (field_error(&f, FORM, "note")) }
                        button type="submit" id="closure-submit" { (t.s("calendar-close")) }
                    }
                }
            }
            h2 { (t.s("calendar-upcoming")) }
            @if cal.closures.is_empty() {
                p.muted id="closures-none" { (t.s("calendar-none")) }
            } @else {
                table.list id="closures" {
                    thead { tr {
                        th { (t.s("calendar-day")) }
                        th { (t.s("calendar-note")) }
                        th { (t.s("calendar-uncovered")) }
                        @if manage { th { (t.s("calendar-actions")) } }
                    } }
                    tbody {
                        @for c in &cal.closures {
                            tr data-day=(c.day) data-uncovered=(c.uncovered) {
                                td { (c.day) }
                                td { (c.note) }
                                td.uncovered {
                                    @let said = t.a("calendar-uncovered-n", &[("n", &c.uncovered.to_string())]);
                                    @match c.uncovered_clients.as_ref().filter(|l| !l.is_empty()) {
                                        // A centre may have hundreds: the UICs fold away under the count.
                                        Some(list) => details {
                                            summary { (said) }
                                            p.uics {
                                                @for (i, u) in list.iter().enumerate() {
                                                    @if i > 0 { ", " }
                                                    a href={"/clients/" (u.client_id)} data-uic=(u.uic) { (u.uic) }
                                                }
                                            }
                                        },
                                        None => (said),
                                    }
                                }
                                @if manage {
                                    td {
                                        form method="post" action={"/calendar/" (c.id) "/remove"} {
                                            input type="hidden" name="csrf" value=(me.csrf_token);
                                            button.link type="submit" data-remove=(c.day) { (t.s("calendar-remove")) }
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

async fn add_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let base = "/calendar";
    let req = ClosureRequest {
        day: form.get("day").cloned().unwrap_or_default(),
        note: form.get("note").cloned().unwrap_or_default(),
    };
    match uc::add_closure(&st.app, &me.app_actor(), &req).await {
        Ok(_) => flash::redirect(
            base,
            Tone::Ok,
            Message::Id {
                id: "calendar-added".into(),
                args: vec![("day".into(), req.day.trim().to_owned())],
            },
        ),
        Err(e) => refused_form(
            &st,
            base,
            FORM,
            AppError::from(e),
            vec![("day".into(), req.day), ("note".into(), req.note)],
        ),
    }
}

async fn remove_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    let base = "/calendar";
    let actor = me.app_actor();
    let removed = on_path_id(&id, |id| uc::remove_closure(&st.app, &actor, id)).await;
    match removed {
        Ok(day) => flash::redirect(
            base,
            Tone::Ok,
            Message::Id {
                id: "calendar-removed".into(),
                args: vec![("day".into(), day.to_string())],
            },
        ),
        Err(e) => form_error(base, e),
    }
}

/// A closure added through the API.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ClosureAdded {
    pub id: i64,
}

async fn api_calendar(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<CalendarView>> {
    Ok(Json(uc::calendar(&st.app, &me.app_actor()).await?))
}

async fn api_add(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<ClosureRequest>,
) -> AppResult<(StatusCode, Json<ClosureAdded>)> {
    let id = uc::add_closure(&st.app, &me.app_actor(), &req).await?;
    Ok((StatusCode::CREATED, Json(ClosureAdded { id })))
}

async fn api_remove(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = anxin_app::parse_id(&id)?;
    uc::remove_closure(&st.app, &me.app_actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds the calendar's page and API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(RouteSpec::web(Get, "/calendar", Needs(DoseRecord), "The centre calendar: closure days and the clients they leave uncovered"), calendar_page)
        .add(RouteSpec::web(Post, "/calendar", Needs(CalendarManage), "Close the centre on a day"), add_form)
        .add(RouteSpec::web(Post, "/calendar/{id}/remove", Needs(CalendarManage), "Remove a closure day"), remove_form)
        .add(RouteSpec::api(Get, "/api/v1/calendar/closures", Needs(DoseRecord), "calendar", "The centre's closures from today on, each with the clients whose dose is not covered").answers::<CalendarView>(), api_calendar)
        .add(RouteSpec::api(Post, "/api/v1/calendar/closures", Needs(CalendarManage), "calendar", "Close the centre on a day (today or later); a closure day is never a missed day").answers::<ClosureAdded>().body::<ClosureRequest>().status(201), api_add)
        .add(RouteSpec::api(Delete, "/api/v1/calendar/closures/{id}", Needs(CalendarManage), "calendar", "Remove a closure day not yet past").status(204), api_remove)
}
