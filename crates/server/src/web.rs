//! The server-rendered pages (maud): login, the centre's home, staff admin, clients, audit.
//! Every page speaks the account's language (or the browser's before login); every form
//! carries the session's CSRF token, which the route guard checks.

use anxin_domain::{Access, DomainError, Permission, Role};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use crate::api::{self, NewStaffRequest, StaffAction};
use crate::auth::{self, cookie, CurrentUser};
use crate::error::{describe, AppError};
use crate::i18n::Lang;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

const LANG_COOKIE: &str = "anxin_lang";
const LOGIN_CSRF_COOKIE: &str = "anxin_login_csrf";
const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

/// The language of a request: the account's, else the cookie's, else the browser's, else Chinese.
fn lang_of(headers: &HeaderMap, me: Option<&CurrentUser>) -> Lang {
    if let Some(me) = me {
        return Lang::from_tag(&me.user.language);
    }
    if let Some(tag) = cookie(headers, LANG_COOKIE) {
        return Lang::from_tag(&tag);
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or(Lang::ZhCn)
}

/// Message lookup bound to one language.
pub(crate) struct T<'a> {
    pub(crate) st: &'a AppState,
    pub(crate) lang: Lang,
}

impl<'a> T<'a> {
    /// Messages in the language of the signed-in user.
    pub(crate) fn of(st: &'a AppState, me: &CurrentUser) -> Self {
        T {
            st,
            lang: Lang::from_tag(&me.user.language),
        }
    }
    pub(crate) fn s(&self, id: &str) -> String {
        self.st.i18n.t(self.lang, id)
    }
    pub(crate) fn a(&self, id: &str, args: &[(&str, &str)]) -> String {
        self.st.i18n.t_args(self.lang, id, args)
    }
    fn role(&self, r: Role) -> String {
        self.s(&format!("role-{}", r.as_str()))
    }
}

/// The page frame. Every POST form in it gets its one-time token ([`crate::once::stamp`]).
pub(crate) fn layout(t: &T, title: &str, me: Option<&CurrentUser>, body: Markup) -> Markup {
    let page = frame(t, title, me, body);
    maud::PreEscaped(cap_text_fields(&crate::once::stamp(&page.into_string())))
}

/// Gives every text input and text area without a `maxlength` of its own the free-text limit
/// ([`anxin_domain::validate::MAX_TEXT_CHARS`]), so the browser stops typing where the server
/// would refuse; the data fields (a box's log) are left alone.
fn cap_text_fields(html: &str) -> String {
    let cap = format!(" maxlength=\"{}\"", anxin_domain::validate::MAX_TEXT_CHARS);
    let mut out = String::with_capacity(html.len() + 512);
    let mut rest = html;
    loop {
        let next = ["<input ", "<textarea "]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, m.len())))
            .min();
        let Some((at, len)) = next else { break };
        // Maud escapes `>` in attribute values, so the first `>` ends the tag.
        let Some(end) = rest[at..].find('>') else {
            break;
        };
        let tag = &rest[at..at + end];
        let textual = tag.starts_with("<textarea")
            || !tag.contains(" type=\"")
            || [" type=\"text\"", " type=\"search\""]
                .iter()
                .any(|t| tag.contains(t));
        let data = anxin_domain::validate::DATA_FIELDS
            .iter()
            .any(|f| tag.contains(&format!(" name=\"{f}\"")));
        out.push_str(&rest[..at + len - 1]);
        if textual && !data && !tag.contains(" maxlength=") {
            out.push_str(&cap);
        }
        rest = &rest[at + len - 1..];
    }
    out.push_str(rest);
    out
}

fn frame(t: &T, title: &str, me: Option<&CurrentUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(t.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t.s("app-name")) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { (t.s("app-name")) }
                    @if let Some(me) = me {
                        nav {
                            a href="/" { (t.s("nav-home")) }
                            @if me.role().has(Permission::PsbQueue) { a href="/psb" id="nav-psb" { (t.s("psb-title")) } }
                            @if me.role().has(Permission::ReferralIssue) { a href="/psb/referrals" id="nav-psb-referrals" { (t.s("pref-title")) } }
                            @if me.role().has(Permission::IndicatorsRead) { a href="/indicators" id="nav-indicators" { (t.s("ind-title")) } }
                            @if me.role().has(Permission::ServiceRecord) { a href="/services" id="nav-services" { (t.s("nav-services")) } }
                            @if me.role().has(Permission::ServiceRecord) { a href="/referrals" id="nav-referrals" { (t.s("nav-referrals")) } }
                            @if me.role().has(Permission::ServiceRecord) { a href="/tc" id="nav-tc" { (t.s("nav-tc")) } }
                            @if me.role().has(Permission::DoseRecord) { a href="/dispensing" { (t.s("nav-dispensing")) } }
                            @if me.role().has(Permission::ClientRead) { a href="/clients" { (t.s("nav-clients")) } }
                            @if me.role().has(Permission::ClientWrite) { a href="/intake" id="nav-intake" { (t.s("nav-intake")) } }
                            @if me.role().has(Permission::ReferralReceive) { a href="/police-referrals" id="nav-police-referrals" { (t.s("pref-centre-title")) } }
                            @if me.role().has(Permission::TakeHomeManage) { a href="/boxes" id="nav-boxes" { (t.s("nav-boxes")) } }
                            @if me.role().has(Permission::TakeHomeManage) { a href="/takehome/policy" id="nav-policy" { (t.s("nav-policy")) } }
                            @if me.role().has(Permission::PolicyPropose) { a href="/takehome/proposals" id="nav-proposals" { (t.s("nav-proposals")) } }
                            @if me.role().has(Permission::DoseRecord) { a href="/calendar" id="nav-calendar" { (t.s("nav-calendar")) } }
                            @if me.role().has(Permission::StockManage) { a href="/stock" { (t.s("nav-stock")) } }
                            @if me.role().has(Permission::StaffManage) { a href="/staff" { (t.s("nav-staff")) } }
                            @if me.role().has(Permission::AuditRead) { a href="/audit" { (t.s("nav-audit")) } }
                            @if me.role().has(Permission::SiteManage) { a href="/backup" id="nav-backup" { (t.s("nav-backup")) } }
                            @if me.role().has(Permission::SiteManage) { a href="/dhis2-mapping" id="nav-dhis2" { (t.s("dhis2-mapping")) } }
                            @if me.role().has(Permission::SiteManage) { a href="/org-units" id="nav-org" { (t.s("org-title")) } }
                            @if me.role().has(Permission::MessagesRead) { a href="/outbox" { (t.s("nav-outbox")) } }
                        }
                    }
                    div.right {
                        form method="post" action="/language" {
                            @if let Some(me) = me { input type="hidden" name="csrf" value=(me.csrf_token); }
                            input type="hidden" name="language" value=(t.lang.other().tag());
                            button.link type="submit" id="lang-switch" { (t.s("lang-switch")) }
                        }
                        @if let Some(me) = me {
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(me.csrf_token);
                                button.link type="submit" id="logout" { (t.s("nav-logout")) " (" (me.user.username) ")" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The common page frame for other modules' pages (e.g. `sms.rs`).
pub(crate) fn page(
    st: &AppState,
    lang: Lang,
    title: &str,
    me: Option<&CurrentUser>,
    body: Markup,
) -> Markup {
    layout(&T { st, lang }, title, me, body)
}

/// A bare page for answers given before a language is known (404).
pub fn plain_page(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html { head { meta charset="utf-8"; title { (title) } link rel="stylesheet" href="/static/app.css"; }
               body { main { h1 { (title) } p { (message) } p { a href="/" { "安心 / Anxin" } } } } }
    }
}

/// An error as a page, with its proper status.
pub fn error_page(e: AppError) -> Response {
    let (status, _, message, _) = describe(&e, Lang::ZhCn);
    // The page's language is not known here: say what happened in both, then the detail.
    let (zh, en) = match status.as_u16() {
        400 | 422 => ("输入有误，无法处理。", "The input cannot be used."),
        401 => ("请先登录。", "Log in first."),
        403 => ("您的角色无权进行此操作。", "Your role may not do this."),
        404 => (
            "找不到此页面或记录。",
            "This page or record does not exist.",
        ),
        409 => ("当前状态下不能进行此操作。", "This cannot be done now."),
        429 => (
            "请求过多，请稍后再试。",
            "Too many requests; try again shortly.",
        ),
        _ => (
            "服务器出错，请稍后再试。",
            "The server failed; try again shortly.",
        ),
    };
    let body = maud::html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head { meta charset="utf-8"; title { (status.as_u16()) " · 出错了 / Something went wrong" } link rel="stylesheet" href="/static/app.css"; }
            body { main {
                h1 { (status.as_u16()) " · 出错了 / Something went wrong" }
                p { (zh) } p lang="en" { (en) }
                p.muted { (message) }
                p { a href="/" { "返回首页 / Home" } }
            } }
        }
    };
    (status, body).into_response()
}

/// Errors of page handlers become pages.
pub struct WebError(pub(crate) AppError);

impl<E: Into<AppError>> From<E> for WebError {
    fn from(e: E) -> Self {
        WebError(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        error_page(self.0)
    }
}

pub(crate) type WebResult<T> = Result<T, WebError>;

/// Sends the browser back to `path` with the error's message, or shows an error page for
/// refusals (forbidden, logged out) that the form cannot fix.
pub(crate) fn form_error(path: &str, e: AppError) -> Response {
    match e {
        AppError::Domain(DomainError::Refused(p))
            if p.kind() != anxin_domain::problem::Kind::Forbidden =>
        {
            flash::redirect(path, Tone::Error, Message::problem(&p))
        }
        AppError::Domain(d)
            if !matches!(
                d,
                DomainError::Forbidden(_)
                    | DomainError::Unauthenticated(_)
                    | DomainError::Refused(_)
            ) =>
        {
            back_with(path, "error", &d.to_string())
        }
        other => error_page(other),
    }
}

/// The answer to a form: back to `base` when it worked, else [`form_error`].
pub(crate) fn after_form<T, E: Into<AppError>>(base: &str, r: Result<T, E>) -> Response {
    match r {
        Ok(_) => Redirect::to(base).into_response(),
        Err(e) => form_error(base, e.into()),
    }
}

/// Where a form sends the browser back to, with a message (already in the user's language) to
/// show there; `key` is `ok` or `error`. The message travels in the signed flash cookie.
pub(crate) fn back_with(path: &str, key: &str, message: &str) -> Response {
    let tone = if key == "ok" { Tone::Ok } else { Tone::Error };
    flash::redirect(path, tone, Message::Text(message.to_owned()))
}

pub(crate) use crate::flash::Flash;

/// The answer to a refused form on a page: back to `base`, where the form `form` shows a
/// refusal by code at its field with `values` kept; other failures as [`form_error`].
pub(crate) fn refused_form(
    st: &AppState,
    base: &str,
    form: &str,
    e: AppError,
    values: Vec<(String, String)>,
) -> Response {
    match e {
        AppError::Domain(DomainError::Refused(p))
            if p.kind() != anxin_domain::problem::Kind::Forbidden =>
        {
            flash::form_redirect(st, base, form, &p, values)
        }
        other => form_error(base, other),
    }
}

/// Runs a use case on the record a form's path names (`/clients/{id}/…`, `/calendar/{id}/…`),
/// the id checked first: a malformed id and the use case's refusal come back alike.
pub(crate) async fn on_path_id<T, Fut>(
    id: &str,
    run: impl FnOnce(i64) -> Fut,
) -> Result<T, AppError>
where
    Fut: std::future::Future<Output = anxin_app::Result<T>>,
{
    let id = anxin_app::parse_id(id)?;
    Ok(run(id).await?)
}

/// The refusal of `form` at `field`, if the form came back refused there.
pub(crate) fn field_error(f: &Flash, form: &str, field: &str) -> Markup {
    html! {
        @if let Some(m) = f.error_at(form, field) {
            span.field-error role="alert" data-field=(field) { (m) }
        }
    }
}

/// The refusal of `form` that names none of its `fields`, shown above it.
pub(crate) fn form_notice(f: &Flash, form: &str, fields: &[&str]) -> Markup {
    html! {
        @if let Some(m) = f.error_of(form, fields) {
            p.flash.error role="alert" { (m) }
        }
    }
}
use crate::flash::{self, Message, Tone};

pub(crate) fn flash(f: &Flash) -> Markup {
    html! {
        @if let Some(m) = &f.ok { p.flash.ok role="status" { (m) } }
        @if let Some(m) = &f.error { p.flash.error role="alert" { (m) } }
    }
}

async fn login_page(State(st): State<AppState>, headers: HeaderMap, f: Flash) -> Response {
    let t = T {
        st: &st,
        lang: lang_of(&headers, None),
    };
    let csrf = auth::new_token();
    let page = layout(
        &t,
        &t.s("login-title"),
        None,
        html! {
            section.card.narrow {
                h1 { (t.s("login-title")) }
                p.muted { (t.s("app-tagline")) }
                (flash(&f))
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { (t.s("login-username")) input name="username" autocomplete="username" required autofocus; }
                    label { (t.s("login-password")) input name="password" type="password" autocomplete="current-password" required; }
                    button type="submit" id="login-submit" { (t.s("login-submit")) }
                }
            }
        },
    );
    let secure = if st.settings.behind_tls {
        "; Secure"
    } else {
        ""
    };
    (
        [(
            header::SET_COOKIE,
            format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict{secure}"),
        )],
        page,
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

async fn login_submit(
    State(st): State<AppState>,
    address: crate::throttle::ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers, None);
    // Double-submit check: the form must echo the cookie set with the login page.
    let cookie_token = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if cookie_token.is_empty() || !auth::same_token(&cookie_token, &f.csrf) {
        return error_page(AppError::Csrf);
    }
    match auth::login(&st, &address, &f.username, &f.password).await {
        Ok(done) => {
            // Back to the page the person was on when the session ended (a path of this site).
            let next = cookie(&headers, crate::routes::NEXT_COOKIE)
                .and_then(|v| {
                    url::form_urlencoded::parse(format!("n={v}").as_bytes())
                        .next()
                        .map(|(_, n)| n.into_owned())
                })
                .filter(|n| {
                    // A path of this site only: `/\host` reads as `//host` to browsers.
                    n.starts_with('/')
                        && !n.starts_with("//")
                        && !n.contains('\\')
                        && !n.starts_with("/login")
                })
                .unwrap_or_else(|| "/".to_owned());
            let mut r = Redirect::to(&next).into_response();
            for c in [
                auth::session_cookie(&st, &done.token),
                format!(
                    "{}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0",
                    crate::routes::NEXT_COOKIE
                ),
            ] {
                if let Ok(v) = axum::http::HeaderValue::from_str(&c) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Err(AppError::Domain(DomainError::Locked { until })) => {
            let until = until
                .with_timezone(&st.settings.utc_offset)
                .format("%Y-%m-%d %H:%M")
                .to_string();
            back_with(
                "/login",
                "error",
                &st.i18n.t_args(lang, "login-locked", &[("until", &until)]),
            )
        }
        Err(AppError::Domain(DomainError::Unauthenticated(_))) => {
            back_with("/login", "error", &st.i18n.t(lang, "login-failed"))
        }
        Err(e @ AppError::TooManyRequests { retry_after_secs }) => {
            let mut page = error_page(e);
            page.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
            page
        }
        Err(e) => error_page(e),
    }
}

async fn logout(State(st): State<AppState>, me: CurrentUser) -> WebResult<Response> {
    auth::logout(&st, &me).await?;
    Ok((
        [(header::SET_COOKIE, auth::clear_session_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}

#[derive(Deserialize)]
struct LanguageForm {
    language: String,
}

async fn set_language(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LanguageForm>,
) -> WebResult<Response> {
    let lang = Lang::from_tag(&f.language);
    // Public route (it works on the login page); a logged-in account also remembers the choice.
    if let Ok(Some(me)) = auth::authenticate(&st, &headers).await {
        anxin_app::staff::set_language(&st.app, &me.app_actor(), lang.tag()).await?;
    }
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.path().to_owned())
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".into());
    Ok((
        [(
            header::SET_COOKIE,
            format!(
                "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000",
                lang.tag()
            ),
        )],
        Redirect::to(&back),
    )
        .into_response())
}

async fn home(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    let staff_count = if me.role().has(Permission::StaffManage) {
        Some(
            anxin_app::staff::accounts(&st.app, &me.app_actor())
                .await?
                .len(),
        )
    } else {
        None
    };
    let client_count = if me.role().has(Permission::ClientRead) {
        Some(anxin_app::record::count(&st.app, &me.app_actor()).await?)
    } else {
        None
    };
    let sms_alerts = crate::sms::home_alerts(&st, &me).await;
    let box_alarms = crate::gps::web::home_alarms(&st, &me).await;
    let overdue = crate::boxes::web::home_overdue(&st, &me).await;
    let worklist = crate::worklist::home_section(&t, &st, &me).await?;
    Ok(layout(
        &t,
        &me.site.name,
        Some(&me),
        html! {
            h1 { (t.a("home-title", &[("site", &me.site.name)])) }
            p.muted { (t.a("home-signed-in", &[("user", &me.user.username), ("role", &t.role(me.role()))])) }
            (flash(&f))
            @if me.role().is_outside() { p.notice { (t.s("home-outside")) } }
            @if me.role().has(Permission::PsbQueue) { p { a href="/psb" { (t.s("psb-title")) } } }
            (worklist)
            (sms_alerts)
            (overdue)
            (box_alarms)
            div.tiles {
                @if let Some(n) = client_count { a.tile href="/clients" { span.big { (n) } span { (t.s("home-clients")) } } }
                @if let Some(n) = staff_count { a.tile href="/staff" { span.big { (n) } span { (t.s("home-staff")) } } }
            }
        },
    ))
}

async fn staff_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    let users = anxin_app::staff::accounts(&st.app, &me.app_actor()).await?;
    let now = st.now();
    let grantable: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| me.role().may_grant(*r))
        .collect();
    Ok(layout(
        &t,
        &t.a("staff-title", &[("site", &me.site.name)]),
        Some(&me),
        html! {
            h1 { (t.a("staff-title", &[("site", &me.site.name)])) }
            (flash(&f))
            table.list {
                thead { tr { th { (t.s("staff-username")) } th { (t.s("staff-full-name")) } th { (t.s("staff-role")) } th { (t.s("staff-language")) } th { (t.s("staff-status")) } th {} } }
                tbody {
                    @for u in &users {
                        tr data-username=(u.username) {
                            td { (u.username) }
                            td { (u.full_name) }
                            td { (t.role(u.role)) }
                            td { (u.language) }
                            td {
                                @if !u.active { (t.s("staff-inactive")) }
                                @else if let Some(until) = u.standing.locked_until.filter(|x| *x > now) {
                                    (t.a("staff-locked", &[("until", &until.with_timezone(&st.settings.utc_offset).format("%H:%M").to_string())]))
                                } @else { (t.s("staff-active")) }
                            }
                            td.actions {
                                @if me.role().may_grant(u.role) && u.id != me.user.id {
                                    form method="post" action={"/staff/" (u.id) "/role"} class="role-form" {
                                        input type="hidden" name="csrf" value=(me.csrf_token);
                                        select name="role" aria-label=(t.s("staff-role")) { @for r in &grantable { option value=(r.as_str()) selected[*r == u.role] { (t.role(*r)) } } }
                                        button type="submit" { (t.s("staff-change-role")) }
                                    }
                                    form method="post" action={"/staff/" (u.id) "/name"} class="name-form" {
                                        input type="hidden" name="csrf" value=(me.csrf_token);
                                        input name="full_name" maxlength="100" autocomplete="off" value=(u.full_name) aria-label=(t.s("staff-full-name"));
                                        button type="submit" { (t.s("staff-rename")) }
                                    }
                                    form method="post" action={"/staff/" (u.id) "/password-reset"} class="reset-form" { input type="hidden" name="csrf" value=(me.csrf_token); button type="submit" { (t.s("staff-reset-password")) } }
                                    @if u.standing.locked_until.is_some_and(|x| x > now) {
                                        form method="post" action={"/staff/" (u.id) "/unlock"} { input type="hidden" name="csrf" value=(me.csrf_token); button type="submit" { (t.s("staff-unlock")) } }
                                    }
                                    @if u.active {
                                        form method="post" action={"/staff/" (u.id) "/deactivate"} { input type="hidden" name="csrf" value=(me.csrf_token); button type="submit" { (t.s("staff-deactivate")) } }
                                    } @else {
                                        form method="post" action={"/staff/" (u.id) "/activate"} { input type="hidden" name="csrf" value=(me.csrf_token); button type="submit" { (t.s("staff-activate")) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { (t.s("staff-add")) }
                form method="post" action="/staff" id="add-staff" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    label { (t.s("staff-username")) input name="username" required pattern="[a-z0-9._-]{3,40}"; }
                    label { (t.s("staff-full-name")) input name="full_name" maxlength="100" autocomplete="off"; }
                    label { (t.s("staff-role")) select name="role" { @for r in &grantable { option value=(r.as_str()) { (t.role(*r)) } } } }
                    label { (t.s("staff-language")) select name="language" { option value="zh-CN" { "中文" } option value="en" { "English" } } }
                    label { (t.s("staff-password")) input name="password" type="password" minlength="12" required autocomplete="new-password"; }
                    button type="submit" { (t.s("staff-create")) }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct StaffForm {
    username: String,
    #[serde(default)]
    full_name: Option<String>,
    role: String,
    password: String,
    language: Option<String>,
}

async fn staff_create(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(f): Form<StaffForm>,
) -> Response {
    let lang = Lang::from_tag(&me.user.language);
    let req = NewStaffRequest {
        username: f.username,
        full_name: f.full_name,
        role: f.role,
        password: f.password,
        language: f.language,
        site: None,
    };
    match api::create_staff_as(&st, &me, req).await {
        Ok(u) => back_with(
            "/staff",
            "ok",
            &st.i18n
                .t_args(lang, "staff-created", &[("user", &u.username)]),
        ),
        Err(AppError::Domain(d)) if !matches!(d, DomainError::Forbidden(_)) => {
            back_with("/staff", "error", &d.to_string())
        }
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn staff_role(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<RoleForm>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(DomainError::invalid("id", "not a number").into());
    };
    match api::change_role(&st, &me, id, &f.role).await {
        Ok(()) => Redirect::to("/staff").into_response(),
        Err(e) => form_error("/staff", e),
    }
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    full_name: String,
}

async fn staff_rename(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<NameForm>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(DomainError::invalid("id", "not a number").into());
    };
    match anxin_app::staff::rename(&st.app, &me.app_actor(), id, &f.full_name).await {
        Ok(()) => flash::redirect(
            "/staff",
            Tone::Ok,
            Message::Id {
                id: "staff-renamed".into(),
                args: vec![("name".into(), f.full_name.trim().to_owned())],
            },
        ),
        Err(e) => form_error("/staff", e.into()),
    }
}

/// Resets a password and shows the temporary one once, on a page no cache keeps.
async fn staff_reset(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(DomainError::invalid("id", "not a number").into());
    };
    let target = match anxin_app::staff::account(&st.app, &me.app_actor(), id).await {
        Ok(u) => u,
        Err(e) => return error_page(e.into()),
    };
    match api::reset_password(&st, &me, id).await {
        Ok(temporary) => {
            let t = T {
                st: &st,
                lang: Lang::from_tag(&me.user.language),
            };
            let body = html! {
                section.card id="temporary-password" {
                    h1 { (t.s("staff-reset-title")) }
                    p { code.secret { (temporary) } }
                    p { (t.a("staff-reset-help", &[("user", &target.username)])) }
                    p { a href="/staff" { (t.s("staff-back")) } }
                }
            };
            (
                [(header::CACHE_CONTROL, "no-store")],
                layout(&t, &t.s("staff-reset-title"), Some(&me), body),
            )
                .into_response()
        }
        Err(e) => error_page(e),
    }
}

/// Where an account chooses its own password (and must, after a reset).
async fn password_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> Markup {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    layout(
        &t,
        &t.s("password-title"),
        Some(&me),
        html! {
            section.card.narrow {
                h1 { (t.s("password-title")) }
                @if me.user.must_change_password { p.notice role="alert" { (t.s("password-must-change")) } }
                (flash(&f))
                form method="post" action="/password" id="password-form" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, "password", &["current", "new", "confirm"]))
                    label { (t.s("password-current")) input name="current" type="password" autocomplete="current-password" required; (field_error(&f, "password", "current")) }
                    label { (t.s("password-new")) input name="new" type="password" autocomplete="new-password" minlength="12" required; (field_error(&f, "password", "new")) }
                    label { (t.s("password-confirm")) input name="confirm" type="password" autocomplete="new-password" minlength="12" required; (field_error(&f, "password", "confirm")) }
                    button type="submit" { (t.s("password-save")) }
                }
            }
        },
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn password_submit(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(f): Form<PasswordForm>,
) -> Response {
    // Passwords are never kept for the form's second showing.
    let refused = |e: AppError| refused_form(&st, "/password", "password", e, vec![]);
    if f.new != f.confirm {
        return refused(
            anxin_domain::Problem::new(anxin_domain::Code::PasswordMismatch)
                .field("confirm")
                .into(),
        );
    }
    match api::change_own_password(&st, &me, &f.current, &f.new).await {
        Ok(()) => crate::flash::redirect(
            "/",
            crate::flash::Tone::Ok,
            crate::flash::Message::Id {
                id: "password-changed".into(),
                args: vec![],
            },
        ),
        Err(e) => refused(e),
    }
}

async fn staff_act(st: AppState, me: CurrentUser, id: String, action: StaffAction) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(DomainError::invalid("id", "not a number").into());
    };
    match api::staff_action(&st, &me, id, action).await {
        Ok(()) => Redirect::to("/staff").into_response(),
        Err(e) => error_page(e),
    }
}

async fn staff_unlock(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    staff_act(st, me, id, StaffAction::Unlock).await
}
async fn staff_deactivate(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    staff_act(st, me, id, StaffAction::Deactivate).await
}
async fn staff_activate(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    staff_act(st, me, id, StaffAction::Activate).await
}

/// The client list's filter (`?show=police_answers`, `?show=approvals_expiring`: the doctor's
/// worklist leads there).
#[derive(Deserialize, Default)]
struct ClientsFilter {
    #[serde(default)]
    show: Option<String>,
}

async fn clients_page(
    State(st): State<AppState>,
    me: CurrentUser,
    f: Flash,
    Query(filter): Query<ClientsFilter>,
) -> WebResult<Markup> {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    let q = f.q.clone().unwrap_or_default();
    let filtered = match filter.show.as_deref() {
        Some(show) => crate::worklist::client_filter(&t, &st, &me, show).await?,
        None => None,
    };
    let found = if filtered.is_none() {
        anxin_app::identity::search_clients(&st.app, &me.app_actor(), &q).await?
    } else {
        vec![]
    };
    Ok(layout(
        &t,
        &t.s("clients-title"),
        Some(&me),
        html! {
            h1 { (t.s("clients-title")) }
            (flash(&f))
            form.search method="get" action="/clients" {
                input name="q" value=(q) placeholder=(t.s("clients-search")) aria-label=(t.s("clients-search"));
                button type="submit" { (t.s("clients-search-go")) }
            }
            @if let Some(list) = filtered { (list) }
            @else if found.is_empty() { p { (t.s("clients-none")) } } @else {
                table.list {
                    thead { tr { th { (t.s("clients-uic")) } th { (t.s("clients-enrolled")) } } }
                    tbody { @for c in &found { tr { td { a href={"/clients/" (c.id)} { (c.uic) } } td { (c.enrolled_on) } } } }
                }
            }
            @if me.role().has(Permission::ClientWrite) {
                p { a.button href="/intake" id="clients-intake" { (t.s("clients-enrol")) } }
            }
        },
    ))
}

async fn client_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    f: Flash,
) -> WebResult<Markup> {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    let id: i64 = id
        .parse()
        .map_err(|_| DomainError::invalid("id", "not a number"))?;
    let record = anxin_app::record::page(&st.app, &me.app_actor(), id).await?;
    let c = &record.client;
    use anxin_domain::access::RecordSection;
    let role = me.role();
    let trail = &record.trail;
    let messages = crate::sms::client_messages(&st, &me, c.id).await;
    let clinical = crate::clinic_web::client_details(&t, &me, &record, &f);
    let photo = crate::photos::section(&t, &me, c.id, &f, None).await?;
    let (takehome, boxes) = if role.sees(RecordSection::TakeHome) {
        (
            crate::takehome::web::client_section(&t, &me, c, &f).await?,
            crate::boxes::web::client_section(&t, &me, c, &f).await?,
        )
    } else {
        (html! {}, html! {})
    };
    Ok(layout(
        &t,
        &c.uic,
        Some(&me),
        html! {
            h1 { (t.a("client-title", &[("uic", &c.uic)])) }
            (flash(&f))
            dl {
                dt { (t.s("client-site")) } dd { (me.site.name) }
                dt { (t.s("clients-enrolled")) } dd { (c.enrolled_on) }
            }
            @if role.has(Permission::IdentityRead) {
                p { a href={"/clients/" (c.id) "/receipt"} id="client-receipt" { (t.s("receipt-link")) } }
            }
            (photo)
            (takehome)
            (boxes)
            (clinical)
            (messages)
            @if role.sees(RecordSection::AccessTrail) {
                h2 { (t.s("client-access")) }
                table.list id="access-trail" {
                    thead { tr { th { (t.s("audit-when")) } th { (t.s("audit-who")) } th { (t.s("audit-what")) } th { (t.s("audit-why")) } } }
                    tbody { @for e in trail.iter().rev().take(50) { tr { td { (e.at.with_timezone(&st.settings.utc_offset).format("%Y-%m-%d %H:%M")) } td { (e.actor) } td { (e.action) } td { (e.reason) } } } }
                }
            }
        },
    ))
}

/// The audit trail page: filters (dates, who, action, client by UIC), newest first, 50 a page,
/// actions in the page's language, clients by UIC; a refused filter is shown at its field.
async fn audit_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<anxin_app::audit::AuditQuery>,
) -> WebResult<Markup> {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    let (page, problem) = match anxin_app::audit::search(&st.app, &me.app_actor(), &q).await {
        Ok(p) => (Some(p), None),
        Err(anxin_app::Error::Domain(DomainError::Refused(p))) => (None, Some(p)),
        Err(e) => return Err(AppError::from(e).into()),
    };
    let at_field = |field: &str| -> Markup {
        html! {
            @if let Some(p) = problem.as_ref().filter(|p| p.field.as_deref() == Some(field)) {
                span.field-error role="alert" data-field=(field) { (st.i18n.problem(t.lang, p)) }
            }
        }
    };
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let action = |code: &str| -> String {
        let id = format!("audit-action-{}", code.replace(['.', '_'], "-"));
        if st.i18n.has(t.lang, &id) {
            t.s(&id)
        } else {
            code.to_owned()
        }
    };
    let older = page.as_ref().and_then(|p| p.older).map(|before| {
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("from", &q.from),
            ("to", &q.to),
            ("actor", &q.actor),
            ("action", &q.action),
            ("uic", &q.uic),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                link.append_pair(k, v);
            }
        }
        link.append_pair("before", &before.to_string());
        format!("/audit?{}", link.finish())
    });
    Ok(layout(
        &t,
        &t.s("audit-title"),
        Some(&me),
        html! {
            h1 { (t.s("audit-title")) }
            p { a href="/audit/checkpoints" id="checkpoints-link" { (t.s("checkpoints-title")) } }
            form method="get" action="/audit" id="audit-filter" {
                label { (t.s("audit-from")) input type="date" name="from" value=(value(&q.from)); (at_field("from")) }
                label { (t.s("audit-to")) input type="date" name="to" value=(value(&q.to)); (at_field("to")) }
                label { (t.s("audit-who")) input name="actor" value=(value(&q.actor)); }
                label { (t.s("audit-what")) input name="action" list="audit-actions" value=(value(&q.action)); }
                datalist id="audit-actions" { @for a in AUDIT_ACTIONS { option value=(a) { (action(a)) } } }
                label { (t.s("audit-uic")) input name="uic" value=(value(&q.uic)); (at_field("uic")) }
                button type="submit" { (t.s("audit-search")) }
            }
            @if let Some(p) = problem.as_ref().filter(|p| p.field.is_none()) { p.flash.error role="alert" { (st.i18n.problem(t.lang, p)) } }
            @if let Some(page) = &page {
                table.list id="audit-trail" {
                    thead { tr { th { "#" } th { (t.s("audit-when")) } th { (t.s("audit-who")) } th { (t.s("audit-what")) } th { (t.s("audit-record")) } th { (t.s("audit-why")) } } }
                    tbody { @for e in &page.entries { tr data-seq=(e.seq) data-action=(e.action) {
                        td { (e.seq) }
                        td { (e.at.with_timezone(&st.settings.utc_offset).format("%Y-%m-%d %H:%M:%S")) }
                        td { (e.actor) }
                        td { (action(&e.action)) }
                        td { @if e.record_type == "client" { (e.record) } @else { (e.record_type) " " (e.record) } }
                        td { @match &e.reason { Some(r) => { (r) } None => { span.muted { (t.s("audit-reason-hidden")) } } } }
                    } } }
                }
                @if page.entries.is_empty() { p.muted { (t.s("audit-none")) } }
                @if let Some(href) = &older { p { a href=(href) id="audit-older" { (t.s("audit-older")) } } }
            }
        },
    ))
}

/// The backups made from this page (newest first), with the way to make one and what must be
/// kept beside them.
async fn backup_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> Markup {
    let t = T {
        st: &st,
        lang: Lang::from_tag(&me.user.language),
    };
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&st.settings.backup_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let len = e.metadata().ok()?.len();
                    name.ends_with(".sqlite3").then_some((name, len))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.reverse();
    let dir = st.settings.backup_dir.display().to_string();
    let key = st.settings.key_path.display().to_string();
    layout(
        &t,
        &t.s("backup-title"),
        Some(&me),
        html! {
            h1 { (t.s("backup-title")) }
            (flash(&f))
            p.notice role="note" id="backup-key" { (t.a("backup-key", &[("key", &key)])) }
            form method="post" action="/backup" id="backup-form" {
                input type="hidden" name="csrf" value=(me.csrf_token);
                button type="submit" { (t.s("backup-now")) }
            }
            p.muted { (t.a("backup-where", &[("dir", &dir)])) }
            table.list id="backups" {
                thead { tr { th { (t.s("backup-file")) } th { (t.s("backup-size")) } } }
                tbody { @for (name, len) in &files { tr { td { (name) } td { (len / 1024) " KiB" } } } }
            }
        },
    )
}

/// Makes a backup of the embedded database into the backup directory (owner-only file),
/// audited; a PostgreSQL deployment is told to use pg_dump.
async fn backup_submit(State(st): State<AppState>, me: CurrentUser) -> Response {
    let lang = Lang::from_tag(&me.user.language);
    let made = anxin_app::system::backup(&st.app, &me.app_actor(), &st.settings.backup_dir)
        .await
        .map_err(AppError::from);
    match made {
        Ok(name) => back_with(
            "/backup",
            "ok",
            &st.i18n.t_args(lang, "backup-made", &[("file", &name)]),
        ),
        Err(AppError::Domain(d)) => back_with("/backup", "error", &d.to_string()),
        Err(e) => error_page(e),
    }
}

/// The actions offered in the filter's list (any other code can be typed).
const AUDIT_ACTIONS: [&str; 16] = [
    "client.read",
    "client.identity.read",
    "client.search",
    "client.create",
    "dose.give",
    "order.write",
    "urine.record",
    "consent.give",
    "disclosure.psb_request",
    "disclosure.psb_view",
    "box.load",
    "box.return",
    "code.reveal",
    "login",
    "login.failed",
    "staff.create",
];

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        PreEscaped(CSS).into_string(),
    )
        .into_response()
}

/// Adds the pages.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(Get, "/static/app.css", Public, "Stylesheet"),
            stylesheet,
        )
        .add(
            RouteSpec::web(
                Get,
                "/static/app.js",
                Public,
                "Script: a form's button disables on submit",
            ),
            script,
        )
        .add(
            RouteSpec::web(Get, "/login", Public, "Login form"),
            login_page,
        )
        .add(
            RouteSpec::web(Post, "/login", Public, "Log in"),
            login_submit,
        )
        .add(
            RouteSpec::web(Post, "/language", Public, "Switch the interface language"),
            set_language,
        )
        .add(RouteSpec::web(Post, "/logout", LoggedIn, "Log out"), logout)
        .add(
            RouteSpec::web(Get, "/", LoggedIn, "The centre's home page"),
            home,
        )
        .add(
            RouteSpec::web(Get, "/staff", Needs(StaffManage), "Staff accounts"),
            staff_page,
        )
        .add(
            RouteSpec::web(Post, "/staff", Needs(StaffManage), "Create a staff account"),
            staff_create,
        )
        .add(
            RouteSpec::web(Post, "/staff/{id}/unlock", Needs(StaffManage), "Unlock"),
            staff_unlock,
        )
        .add(
            RouteSpec::web(
                Post,
                "/staff/{id}/role",
                Needs(StaffManage),
                "Change a role",
            ),
            staff_role,
        )
        .add(
            RouteSpec::web(
                Post,
                "/staff/{id}/name",
                Needs(StaffManage),
                "Give an account the person's real name",
            ),
            staff_rename,
        )
        .add(
            RouteSpec::web(
                Post,
                "/staff/{id}/password-reset",
                Needs(StaffManage),
                "Reset a password",
            ),
            staff_reset,
        )
        .add(
            RouteSpec::web(Get, "/password", LoggedIn, "Choose one's password"),
            password_page,
        )
        .add(
            RouteSpec::web(Post, "/password", LoggedIn, "Change one's password"),
            password_submit,
        )
        .add(
            RouteSpec::web(
                Post,
                "/staff/{id}/deactivate",
                Needs(StaffManage),
                "Deactivate",
            ),
            staff_deactivate,
        )
        .add(
            RouteSpec::web(Post, "/staff/{id}/activate", Needs(StaffManage), "Activate"),
            staff_activate,
        )
        .add(
            RouteSpec::web(Get, "/clients", Needs(ClientRead), "Client list and search"),
            clients_page,
        )
        .add(
            RouteSpec::web(
                Get,
                "/clients/{id}",
                Needs(ClientRead),
                "One client record (audited)",
            ),
            client_page,
        )
        .add(
            RouteSpec::web(Get, "/backup", Needs(SiteManage), "Backups of the database"),
            backup_page,
        )
        .add(
            RouteSpec::web(Post, "/backup", Needs(SiteManage), "Make a backup"),
            backup_submit,
        )
        .add(
            RouteSpec::web(Get, "/audit", Needs(AuditRead), "Audit trail of the centre"),
            audit_page,
        )
}

#[cfg(test)]
mod tests {
    use super::cap_text_fields;

    #[test]
    fn text_fields_get_the_limit_once() {
        let html = r#"<input name="note"><input type="date" name="d"><textarea name="rules"></textarea><input name="n" maxlength="40"><textarea name="log_base64"></textarea><input type="text" name="r">"#;
        let out = cap_text_fields(html);
        assert_eq!(
            out,
            r#"<input maxlength="2000" name="note"><input type="date" name="d"><textarea maxlength="2000" name="rules"></textarea><input name="n" maxlength="40"><textarea name="log_base64"></textarea><input maxlength="2000" type="text" name="r">"#
        );
    }
}
