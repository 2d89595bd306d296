//! The doctor's worklist over HTTP: `GET /api/v1/worklist`, the home page's `#worklist`
//! section (a count and a link per kind of work, zero counts shown muted so the doctor sees the
//! check ran), and the client list's filters that two of its links lead to (police answers of
//! the week, approvals ending soon). The counts are the core's ([`anxin_app::worklist`]).

use anxin_app::takehome::AnsweredRequest;
use anxin_app::worklist::{Worklist, APPROVAL_NOTICE_DAYS, POLICE_ANSWER_DAYS};
use anxin_domain::takehome::RequestState;
use anxin_domain::{Access, Permission};
use axum::extract::State;
use axum::Json;
use maud::{html, Markup};

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::T;

pub use anxin_app::worklist::{WorkItem, WorkKind};

async fn api_worklist(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<Worklist>> {
    Ok(Json(
        anxin_app::worklist::worklist(&st.app, &me.app_actor()).await?,
    ))
}

/// The home page's worklist: nothing for a role that does not prescribe.
pub(crate) async fn home_section(
    t: &T<'_>,
    st: &AppState,
    me: &CurrentUser,
) -> Result<Markup, crate::error::AppError> {
    if !me.role().has(Permission::Prescribe) {
        return Ok(html! {});
    }
    let list = anxin_app::worklist::worklist(&st.app, &me.app_actor()).await?;
    Ok(html! {
        section.card id="worklist" aria-labelledby="worklist-title" {
            h2 id="worklist-title" { (t.s("worklist-title")) }
            ul.worklist {
                @for i in &list.items {
                    li {
                        a href=(i.href) data-kind=(i.kind.as_str()) class=[(i.count == 0).then_some("muted")] {
                            span.count { (i.count) } " " (t.s(&format!("worklist-{}", i.kind.as_str())))
                        }
                    }
                }
            }
        }
    })
}

/// The client list filtered to one kind of the worklist's take-home work (`police_answers`,
/// `approvals_expiring`); `None` for any other `show`.
pub(crate) async fn client_filter(
    t: &T<'_>,
    st: &AppState,
    me: &CurrentUser,
    show: &str,
) -> Result<Option<Markup>, crate::error::AppError> {
    let actor = me.app_actor();
    if show == "orders_awaiting" {
        let rows = anxin_app::orders::awaiting(&st.app, &actor).await?;
        let kind = WorkKind::OrdersAwaiting;
        return Ok(Some(html! {
            section id="client-filter" data-kind=(kind.as_str()) {
                h2 { (t.s(&format!("worklist-{}", kind.as_str()))) " (" (rows.len()) ")" }
                @if rows.is_empty() { p.muted { (t.s("worklist-none")) } } @else {
                    table.list {
                        thead { tr { th { (t.s("clients-uic")) } th { (t.s("client-orders")) } } }
                        tbody { @for a in &rows {
                            tr data-order=(a.order.id) {
                                td { a href={"/clients/" (a.order.client_id) "#orders"} { (a.uic) } }
                                td { (t.s(&format!("order-kind-{}", a.order.kind))) " " (a.order.mg) " mg · " (a.order.start) }
                            }
                        } }
                    }
                }
            }
        }));
    }
    let (kind, rows): (WorkKind, Vec<AnsweredRequest>) = match show {
        "police_answers" => (
            WorkKind::PoliceAnswers,
            anxin_app::takehome::recent_answers(&st.app, &actor, POLICE_ANSWER_DAYS).await?,
        ),
        "approvals_expiring" => (
            WorkKind::ApprovalsExpiring,
            anxin_app::takehome::approvals_ending(&st.app, &actor, APPROVAL_NOTICE_DAYS).await?,
        ),
        _ => return Ok(None),
    };
    Ok(Some(html! {
        section id="client-filter" data-kind=(kind.as_str()) {
            h2 { (t.s(&format!("worklist-{}", kind.as_str()))) " (" (rows.len()) ")" }
            @if rows.is_empty() { p.muted { (t.s("worklist-none")) } } @else {
                table.list {
                    thead { tr { th { (t.s("clients-uic")) } th { (t.s("worklist-answer")) } } }
                    tbody { @for a in &rows {
                        tr data-request=(a.request.id) {
                            td { a href={"/clients/" (a.request.client_id)} { (a.uic) } }
                            td { (answer_text(t, a)) }
                        }
                    } }
                }
            }
        }
    }))
}

/// A police answer in the page's language: approved (with its last valid day) or denied.
fn answer_text(t: &T<'_>, a: &AnsweredRequest) -> String {
    let on = a
        .request
        .answered_on
        .map(|d| d.to_string())
        .unwrap_or_default();
    match (a.request.status, a.valid_until) {
        (RequestState::Approved, Some(until)) => t.a(
            "worklist-approved",
            &[
                ("on", &on),
                ("days", &a.request.requested_days.to_string()),
                ("until", &until.to_string()),
            ],
        ),
        _ => t.a("worklist-denied", &[("on", &on)]),
    }
}

/// Adds the worklist's API route.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table.add(
        RouteSpec::api(
            Get,
            "/api/v1/worklist",
            Needs(Prescribe),
            "worklist",
            "What waits for a prescriber today: each kind of work with its count and page",
        )
        .answers::<Worklist>(),
        api_worklist,
    )
}
