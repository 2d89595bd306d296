//! Text messages in the server: the delivery-report endpoint the gateway calls
//! (`GET /api/v1/sms/dlr`, public but authenticated by an HMAC token per attempt), the outbox
//! API and page, the "call the client" alerts of the home page, the client page's message
//! states, a test message for managers, and the start of the outbox worker.
//!
//! Staff see message texts only with [`Permission::MessageTextRead`]; everyone else with
//! [`Permission::MessagesRead`] sees states, times and a masked number.

use std::collections::HashMap;
use std::future::Future;

use anxin_app::records::OutboxMessage;
use anxin_domain::phone;
use anxin_domain::sms::MessageState;
use anxin_domain::{Access, DomainError, Permission};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use maud::{html, Markup};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

fn bad(field: &str, message: impl Into<String>) -> AppError {
    AppError::BadRequest {
        field: Some(field.into()),
        message: format!("{field}: {}", message.into()),
    }
}

fn int_param(q: &HashMap<String, String>, field: &str) -> AppResult<i64> {
    let raw = q
        .get(field)
        .ok_or_else(|| bad(field, "missing query parameter"))?;
    raw.trim()
        .parse::<i64>()
        .map_err(|_| bad(field, format!("`{raw}` is not a whole number")))
}

/// Kannel leaves an unknown escape as it is or empty; neither is an id.
fn opt_param(q: &HashMap<String, String>, field: &str) -> Option<String> {
    q.get(field)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && !v.starts_with('%') && v.len() <= 100)
}

/// `GET /api/v1/sms/dlr?id=&a=&t=&type=%d&fid=%F&kid=%I&ts=%T`: a delivery report.
async fn dlr(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<(StatusCode, &'static str)> {
    let id = int_param(&q, "id")?;
    let attempt = int_param(&q, "a")?;
    let token = q
        .get("t")
        .ok_or_else(|| bad("t", "missing query parameter"))?;
    let kind = int_param(&q, "type")?;
    let gateway_id = opt_param(&q, "fid").or_else(|| opt_param(&q, "kid"));
    let report = anxin_app::sms::DeliveryReport {
        id,
        attempt,
        token,
        kind,
        gateway_id: gateway_id.as_deref(),
    };
    anxin_app::sms::delivery_report(&st.app, &report)
        .await
        .map_err(|e| match AppError::from(e) {
            AppError::Domain(DomainError::Invalid { field, message }) => bad(&field, message),
            other => other,
        })?;
    Ok((StatusCode::OK, "ok"))
}

#[derive(Deserialize)]
struct OutboxQuery {
    state: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// A message as staff see it.
#[derive(Serialize, JsonSchema)]
pub struct MessageView {
    pub id: i64,
    pub client_id: Option<i64>,
    pub state: &'static str,
    pub attempts: i64,
    /// Masked unless the caller may read texts.
    pub recipient: String,
    /// Only for callers who may read texts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub due_at: String,
    pub updated_at: String,
    pub last_error: String,
}

fn view(m: &OutboxMessage, with_text: bool) -> MessageView {
    MessageView {
        id: m.id,
        client_id: m.client_id,
        state: m.state.as_str(),
        attempts: m.attempts,
        recipient: if with_text {
            m.recipient.clone()
        } else {
            phone::mask(&m.recipient)
        },
        text: with_text.then(|| m.text.clone()),
        due_at: m.not_before.to_rfc3339(),
        updated_at: m.updated_at.to_rfc3339(),
        last_error: m.last_error.clone(),
    }
}

async fn outbox_rows(
    st: &AppState,
    me: &CurrentUser,
    q: &OutboxQuery,
) -> AppResult<anxin_app::sms::OutboxPage> {
    Ok(anxin_app::sms::outbox(
        &st.app,
        &me.app_actor(),
        q.state.as_deref(),
        q.before,
        q.limit,
    )
    .await?)
}

async fn outbox_api(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<OutboxQuery>,
) -> AppResult<Json<Vec<MessageView>>> {
    let page = outbox_rows(&st, &me, &q).await?;
    Ok(Json(
        page.messages
            .iter()
            .map(|m| view(m, page.with_text))
            .collect(),
    ))
}

/// A neutral test message to one number.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestMessageRequest {
    /// E.164 (`+8613812345678`) or a mainland mobile number (`13812345678`).
    pub to: String,
    /// `zh-CN` (default) or `en`.
    #[serde(default)]
    pub language: Option<String>,
}

pub use anxin_app::sms::enqueue_test;

async fn test_message(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<TestMessageRequest>,
) -> AppResult<(StatusCode, Json<MessageView>)> {
    let m =
        anxin_app::sms::test_message(&st.app, &me.app_actor(), &req.to, req.language.as_deref())
            .await?;
    Ok((StatusCode::CREATED, Json(view(&m, false))))
}

fn t(st: &AppState, me: &CurrentUser, id: &str) -> String {
    st.i18n.t(Lang::from_tag(&me.user.language), id)
}

fn state_label(st: &AppState, me: &CurrentUser, s: MessageState) -> String {
    t(st, me, &format!("sms-state-{}", s.as_str()))
}

fn local(st: &AppState, at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&st.settings.utc_offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Why a message stands where it is, in the page's language when the centre stopped it (the
/// stored reasons are `withheld: <reason>`, `box returned`, `dosed at the window instead`);
/// a gateway's own error is shown as the gateway said it.
fn why(st: &AppState, me: &CurrentUser, m: &OutboxMessage) -> String {
    if m.state != MessageState::Stopped {
        return m.last_error.clone();
    }
    let lang = Lang::from_tag(&me.user.language);
    let e = m.last_error.as_str();
    match e.strip_prefix("withheld: ") {
        Some("box lost") => t(st, me, "sms-stop-lost"),
        Some(r) if r.starts_with("treatment ended") => t(st, me, "sms-stop-ended"),
        Some(r) => st.i18n.t_args(lang, "sms-stop-withheld", &[("reason", r)]),
        None if e == "box returned" => t(st, me, "sms-stop-returned"),
        None if e == "dosed at the window instead" => t(st, me, "sms-stop-window"),
        None => e.to_owned(),
    }
}

fn table(st: &AppState, me: &CurrentUser, rows: &[OutboxMessage], with_text: bool) -> Markup {
    html! {
        table.list.outbox {
            thead { tr {
                th { "#" } th { (t(st, me, "outbox-due")) } th { (t(st, me, "outbox-to")) }
                th { (t(st, me, "outbox-state")) } th { (t(st, me, "outbox-attempts")) }
                @if with_text { th { (t(st, me, "outbox-text")) } }
                th { (t(st, me, "outbox-error")) }
            } }
            tbody {
                @for m in rows {
                    tr data-state=(m.state.as_str()) {
                        td { (m.id) }
                        td { (local(st, m.not_before)) }
                        td { @if with_text { (m.recipient) } @else { (phone::mask(&m.recipient)) } }
                        td { span class={"sms-state " (m.state.as_str())} { (state_label(st, me, m.state)) } }
                        td { (m.attempts) }
                        @if with_text { td { (m.text) } }
                        td.muted { (why(st, me, m)) }
                    }
                }
            }
        }
    }
}

async fn outbox_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<OutboxQuery>,
) -> Result<Markup, crate::web::WebError> {
    let anxin_app::sms::OutboxPage {
        messages: rows,
        with_text,
    } = outbox_rows(&st, &me, &q).await?;
    let counts = anxin_app::sms::outbox_counts(&st.app, &me.app_actor()).await?;
    let chosen = q.state.clone().unwrap_or_default();
    let lang = Lang::from_tag(&me.user.language);
    let title = t(&st, &me, "outbox-title");
    let body = html! {
        h1 { (title) }
        p.muted { (t(&st, &me, "outbox-help")) }
        form.search method="get" action="/outbox" {
            label { (t(&st, &me, "outbox-state"))
                select name="state" {
                    option value="" { (t(&st, &me, "outbox-all")) }
                    @for s in MessageState::ALL {
                        option value=(s.as_str()) selected[chosen == s.as_str()] {
                            (state_label(&st, &me, s))
                            @if let Some((_, n)) = counts.iter().find(|(x, _)| *x == s) { " (" (n) ")" }
                        }
                    }
                }
            }
            button type="submit" { (t(&st, &me, "outbox-filter")) }
        }
        @if rows.is_empty() { p { (t(&st, &me, "outbox-none")) } } @else {
            (table(&st, &me, &rows, with_text))
            @if let Some(last) = rows.last() {
                p { a href={"/outbox?state=" (chosen) "&before=" (last.id)} { (t(&st, &me, "outbox-older")) } }
            }
        }
    };
    Ok(crate::web::page(&st, lang, &title, Some(&me), body))
}

/// The home page's alerts: codes to this centre's clients not delivered within
/// `sms.deliver_within_minutes` of being due ("call the client"). Empty for roles without
/// [`Permission::MessagesRead`], and when there is nothing to say.
pub async fn home_alerts(st: &AppState, me: &CurrentUser) -> Markup {
    if !me.role().has(Permission::MessagesRead) {
        return html! {};
    }
    let within =
        chrono::Duration::minutes(i64::from(st.settings.sms.config.deliver_within_minutes));
    let (overdue, uics) = match anxin_app::sms::overdue(&st.app, &me.app_actor()).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "cannot read undelivered messages for the home page");
            return html! {};
        }
    };
    if overdue.is_empty() {
        return html! {};
    }
    let lang = Lang::from_tag(&me.user.language);
    let mins = within.num_minutes().to_string();
    html! {
        section.card.alert id="sms-alerts" role="alert" {
            h2 { (st.i18n.t_args(lang, "home-sms-alert-title", &[("n", &overdue.len().to_string()), ("minutes", &mins)])) }
            p { (t(st, me, "home-sms-alert-help")) }
            ul {
                @for m in &overdue {
                    li {
                        @if let Some(uic) = m.client_id.and_then(|c| uics.get(&c).map(|u| (c, u))) {
                            @if me.role().has(Permission::ClientRead) {
                                a href={"/clients/" (uic.0)} { (uic.1) }
                            } @else { (uic.1) }
                        }
                        " · " (local(st, m.not_before)) " · " (state_label(st, me, m.state))
                    }
                }
            }
        }
    }
}

/// The client page's section: the last messages to the client and their states (texts only
/// with [`Permission::MessageTextRead`]). Empty for roles without [`Permission::MessagesRead`].
pub async fn client_messages(st: &AppState, me: &CurrentUser, client_id: i64) -> Markup {
    if !me.role().has(Permission::MessagesRead) {
        return html! {};
    }
    let rows = match anxin_app::sms::client_messages(&st.app, &me.app_actor(), client_id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read a client's messages");
            return html! {};
        }
    };
    let with_text = me.role().has(Permission::MessageTextRead);
    html! {
        section id="client-messages" {
            h2 { (t(st, me, "client-messages")) }
            @if rows.is_empty() { p { (t(st, me, "outbox-none")) } } @else { (table(st, me, &rows, with_text)) }
        }
    }
}

/// Starts the outbox worker (`anxin_app::sms::spawn_worker`).
pub fn spawn_worker(
    state: AppState,
    listen_url: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<tokio::task::JoinHandle<()>>, anxin_sms::SmsConfigError> {
    anxin_app::sms::spawn_worker(state.app.clone(), listen_url, shutdown)
}

/// Adds the message routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/sms/dlr",
                Public,
                "sms",
                "Delivery report from the SMS gateway (authenticated by the token in its URL)",
            ).required_query("id", "integer", "outbox message id").required_query("a", "integer", "attempt").required_query("t", "string", "the attempt's HMAC token").required_query("type", "integer", "Kannel report type: 1, 2, 4, 8, 16").query("fid", "string", "gateway message id").query("kid", "string", "gateway message id (Kannel)").query("ts", "string", "gateway time").answers_text("text/plain"),
            dlr,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/outbox",
                Needs(MessagesRead),
                "sms",
                "The centre's text messages, newest first (?state=&before=&limit=); texts only with message_text_read",
            ).query("state", "string", "message state, or all").query("before", "integer", "only messages with a smaller id").query("limit", "integer", "1 to 500, default 100").answers::<Vec<MessageView>>(),
            outbox_api,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/sms/test",
                Needs(StaffManage),
                "sms",
                "Queue a neutral test message to a number",
            ).answers::<MessageView>()
            .body::<TestMessageRequest>()
            .status(201),
            test_message,
        )
        .add(
            RouteSpec::web(Get, "/outbox", Needs(MessagesRead), "Text messages and their states"),
            outbox_page,
        )
}
