//! The route table: every route is added with the [`Access`] it demands, and one middleware
//! enforces it before any handler runs.
//!
//! Deny by default: the middleware looks the matched route up in the table, and a route that
//! reached the router without a declaration (someone called `Router::route` directly) is
//! refused with 403 for everybody. The OpenAPI document is generated from the same table, so
//! every `/api/v1` route is described.

use std::collections::HashMap;
use std::sync::Arc;

use anxin_domain::{Access, DomainError};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Value};

use crate::auth::{authenticate, same_token, CurrentUser, Via};
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::state::AppState;

/// HTTP methods the table knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }

    /// Lower-case name, as OpenAPI writes it.
    pub fn openapi(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Delete => "delete",
        }
    }
}

/// Who a route answers: programs (JSON, 401 when not logged in) or people (HTML, redirect to login).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    Web,
}

/// One declared route.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub verb: Verb,
    pub path: &'static str,
    pub access: Access,
    pub surface: Surface,
    pub summary: &'static str,
    pub tag: &'static str,
    /// JSON Schema of the request body, if the route takes one.
    pub body: Option<fn() -> Value>,
    /// Status of a successful answer (200, 201, 204, 303).
    pub ok: u16,
    /// Schema of the successful answer's body, if it has one.
    pub answer: Option<Answer>,
    /// Path and query parameters; every `{name}` of the path is declared when the spec is made.
    pub params: Vec<Param>,
}

/// The body of a successful answer.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// JSON described by the JSON Schema this function adds to the generator (a `$ref` for
    /// named types, their definitions going to `components/schemas`).
    Json(fn(&mut SchemaGenerator) -> schemars::Schema),
    /// Text of this media type (`text/csv`, `text/plain`).
    Text(&'static str),
    /// Deliberately no body (a 201 whose client needs nothing back).
    Empty,
    /// Bytes of one of these media types (a client's photo).
    Binary(&'static [&'static str]),
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
}

/// One declared parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub location: ParamIn,
    /// JSON Schema type: `integer`, `string`, `boolean`.
    pub ty: &'static str,
    pub required: bool,
    pub description: &'static str,
}

/// The `{name}` segments of a route path.
pub fn path_param_names(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
}

/// Path parameters as the handlers read them: `id` (and `*_id`) are numeric ids, the rest text.
fn path_params(path: &'static str) -> Vec<Param> {
    path_param_names(path)
        .map(|name| Param {
            name,
            location: ParamIn::Path,
            ty: if name == "id" || name.ends_with("_id") {
                "integer"
            } else {
                "string"
            },
            required: true,
            description: if name == "id" || name.ends_with("_id") {
                "numeric id"
            } else {
                ""
            },
        })
        .collect()
}

impl RouteSpec {
    /// A JSON API route.
    pub fn api(
        verb: Verb,
        path: &'static str,
        access: Access,
        tag: &'static str,
        summary: &'static str,
    ) -> Self {
        RouteSpec {
            verb,
            path,
            access,
            surface: Surface::Api,
            summary,
            tag,
            body: None,
            ok: 200,
            answer: None,
            params: path_params(path),
        }
    }

    /// A page or form target.
    pub fn web(verb: Verb, path: &'static str, access: Access, summary: &'static str) -> Self {
        RouteSpec {
            verb,
            path,
            access,
            surface: Surface::Web,
            summary,
            tag: "web",
            body: None,
            ok: if verb == Verb::Get { 200 } else { 303 },
            answer: None,
            params: path_params(path),
        }
    }

    /// Declares the request body's schema.
    pub fn body<T: schemars::JsonSchema>(mut self) -> Self {
        self.body = Some(|| serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null));
        self
    }

    /// Declares the JSON body of a successful answer.
    pub fn answers<T: schemars::JsonSchema>(mut self) -> Self {
        self.answer = Some(Answer::Json(|generator| generator.subschema_for::<T>()));
        self
    }

    /// Declares a successful answer that is text of `media` type (`text/csv`, `text/plain`).
    pub fn answers_text(mut self, media: &'static str) -> Self {
        self.answer = Some(Answer::Text(media));
        self
    }

    /// Declares a successful answer that is bytes of one of `media` types (an image).
    pub fn answers_binary(mut self, media: &'static [&'static str]) -> Self {
        self.answer = Some(Answer::Binary(media));
        self
    }

    /// Declares that a successful answer has no body although its status is not 204.
    pub fn answers_nothing(mut self) -> Self {
        self.answer = Some(Answer::Empty);
        self
    }

    /// Declares an optional query parameter of JSON Schema type `ty`.
    pub fn query(
        mut self,
        name: &'static str,
        ty: &'static str,
        description: &'static str,
    ) -> Self {
        self.params.push(Param {
            name,
            location: ParamIn::Query,
            ty,
            required: false,
            description,
        });
        self
    }

    /// Declares a query parameter the route cannot do without.
    pub fn required_query(
        mut self,
        name: &'static str,
        ty: &'static str,
        description: &'static str,
    ) -> Self {
        self = self.query(name, ty, description);
        if let Some(p) = self.params.last_mut() {
            p.required = true;
        }
        self
    }

    /// Declares the success status.
    /// The query parameters of an indicator period: `from`, `to` and `site`.
    pub fn period_query(self) -> Self {
        self.query(
            "from",
            "string",
            "first day, YYYY-MM-DD; default the 1st of this month",
        )
        .query("to", "string", "last day, YYYY-MM-DD; default today")
        .query(
            "site",
            "string",
            "a centre code or all (outside roles only)",
        )
        .query(
            "unit",
            "string",
            "an organisation unit's code (outside roles only; default the account's unit)",
        )
    }

    pub fn status(mut self, ok: u16) -> Self {
        self.ok = ok;
        self
    }
}

/// Routes under construction, each with its declaration.
pub struct RouteTable {
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable {
            router: Router::new(),
            specs: Vec::new(),
        }
    }
}

type Guarded = HashMap<(Method, String), (Access, Surface)>;

/// The largest upload body read (a photo of at most 2 MiB and the form around it; a larger
/// body is refused as `photo.too_large` before it is read).
pub const UPLOAD_LIMIT: usize = 4 << 20;

impl RouteTable {
    /// Adds a route together with its declaration.
    pub fn add<H, T>(mut self, spec: RouteSpec, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let method_router = match spec.verb {
            Verb::Get => get(handler),
            Verb::Post => post(handler),
            Verb::Put => put(handler),
            Verb::Delete => delete(handler),
        };
        self.router = self.router.route(spec.path, method_router);
        self.specs.push(spec);
        self
    }

    /// Adds a form target that takes an upload (`multipart/form-data`) of up to
    /// [`UPLOAD_LIMIT`] bytes; the handler reads it with axum's `Multipart`.
    pub fn add_upload<H, T>(mut self, spec: RouteSpec, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let method_router = post(handler).layer(axum::extract::DefaultBodyLimit::max(UPLOAD_LIMIT));
        self.router = self.router.route(spec.path, method_router);
        self.specs.push(spec);
        self
    }

    /// Every declared route.
    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// Every declared route and `/api/v1/openapi.json`, which [`RouteTable::into_router`] adds.
    pub fn specs_with_openapi(&self) -> Vec<RouteSpec> {
        let mut specs = self.specs.clone();
        specs.push(openapi_spec());
        specs
    }

    /// The OpenAPI document the finished router serves at `/api/v1/openapi.json`.
    pub fn openapi(&self) -> Value {
        openapi_document(&self.specs_with_openapi())
    }

    /// The finished router: the guard in front of every route, the fallback, the state.
    /// `/api/v1/openapi.json` is added here, describing every API route of the table.
    pub fn into_router(self, state: AppState) -> Router {
        let spec = openapi_spec();
        let doc = Arc::new(self.openapi());
        let this = self.add(spec, move || {
            let doc = doc.clone();
            async move { axum::Json((*doc).clone()) }
        });
        this.finish(state)
    }

    fn finish(self, state: AppState) -> Router {
        let guarded: Guarded = self
            .specs
            .iter()
            .map(|s| ((s.verb.method(), s.path.to_owned()), (s.access, s.surface)))
            .collect();
        let guard = Guard {
            state: state.clone(),
            table: Arc::new(guarded),
        };
        self.router
            .route_layer(axum::middleware::from_fn_with_state(guard, authorize))
            .fallback(not_found)
            .layer(axum::middleware::map_response(security_headers))
            .with_state(state)
    }

    #[cfg(test)]
    fn route_without_declaration(mut self, path: &'static str) -> Self {
        self.router = self.router.route(path, get(|| async { "secret" }));
        self
    }
}

fn openapi_spec() -> RouteSpec {
    RouteSpec::api(
        Verb::Get,
        "/api/v1/openapi.json",
        Access::Public,
        "system",
        "This OpenAPI document",
    )
    .answers::<Value>()
}

#[derive(Clone)]
struct Guard {
    state: AppState,
    table: Arc<Guarded>,
}

/// The cookie that remembers, across the login, the page a person was on.
pub const NEXT_COOKIE: &str = "anxin_next";

/// A person without a (valid) session goes to the login page, which brings them back to the
/// page they were on: the page itself for a GET, the form's page for a submission (which was
/// not carried out, and the message says so).
fn to_login(req: &Request) -> Response {
    let submitted = req.method() != Method::GET && req.method() != Method::HEAD;
    let next = if submitted {
        crate::once::back_path(req.headers())
    } else {
        req.uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
    };
    let had_session = crate::auth::cookie(req.headers(), crate::auth::SESSION_COOKIE).is_some();
    let mut r = if had_session || submitted {
        crate::flash::redirect(
            "/login",
            crate::flash::Tone::Error,
            crate::flash::Message::Id {
                id: if submitted {
                    "login-again-not-saved".into()
                } else {
                    "login-again".into()
                },
                args: vec![],
            },
        )
    } else {
        Redirect::to("/login").into_response()
    };
    let value: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{NEXT_COOKIE}={value}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=900"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// 405 with `Allow`: JSON for the API, a page for people.
fn method_not_allowed(req: &Request, allow: &str) -> Response {
    let mut r = if req.uri().path().starts_with("/api/") {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(json!({"error": {
                "code": "method_not_allowed",
                "message": format!("this route answers {allow}"),
            }})),
        )
            .into_response()
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            crate::web::plain_page(
                "405",
                &format!("此地址只接受 {allow} · This address answers {allow}"),
            ),
        )
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(allow) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    r
}

/// Headers every answer carries: no sniffing, no framing, a strict content policy (the pages
/// use only their own stylesheet and script), the referrer kept to this site, and no copy of
/// a page in any cache (a shared PC's Back button shows nothing after logout).
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html") || v.starts_with("application/json"));
    if html && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        AppError::from(DomainError::NotFound(format!("route {}", req.uri().path()))).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            crate::web::plain_page("404", "Not found / 页面不存在"),
        )
            .into_response()
    }
}

fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses the request for `surface`: JSON for programs, a page or the login form for people.
fn refuse(surface: Surface, err: AppError) -> Response {
    match surface {
        Surface::Api => err.into_response(),
        Surface::Web => match err {
            AppError::Domain(DomainError::Unauthenticated(_)) => {
                Redirect::to("/login").into_response()
            }
            other => crate::web::error_page(other),
        },
    }
}

async fn authorize(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let Some(&(access, surface)) = guard.table.get(&(method, path.clone())) else {
        // A declared path asked with another method: 405 with the methods it has, not an error.
        let mut allowed: Vec<&str> = guard
            .table
            .keys()
            .filter(|(_, p)| *p == path)
            .map(|(m, _)| m.as_str())
            .collect();
        if !allowed.is_empty() {
            allowed.sort_unstable();
            allowed.dedup();
            if allowed.contains(&"GET") {
                allowed.push("HEAD");
            }
            return method_not_allowed(&req, &allowed.join(", "));
        }
        tracing::error!(%path, "route without a declared permission refused");
        return AppError::from(DomainError::Forbidden(
            "this route declares no permission, so nobody may use it".into(),
        ))
        .into_response();
    };
    if access == Access::Public {
        return next.run(req).await;
    }
    let me = match authenticate(&guard.state, req.headers()).await {
        Ok(Some(me)) => me,
        Ok(None) if surface == Surface::Web => return to_login(&req),
        Ok(None) => {
            return refuse(
                surface,
                DomainError::Unauthenticated("log in first".into()).into(),
            )
        }
        Err(AppError::Domain(DomainError::Unauthenticated(_))) if surface == Surface::Web => {
            return to_login(&req)
        }
        Err(e) => return refuse(surface, e),
    };
    // A reset password is changed before anything else.
    if me.user.must_change_password
        && !matches!(
            path.as_str(),
            "/password" | "/logout" | "/language" | "/api/v1/me" | "/api/v1/auth/logout"
        )
    {
        return match surface {
            Surface::Web => Redirect::to("/password").into_response(),
            Surface::Api => refuse(
                surface,
                DomainError::Forbidden("change your password first (it was reset)".into()).into(),
            ),
        };
    }
    if !access.allows(Some(me.role())) {
        let why = format!("{} {path} needs {access:?}", req.method());
        if let Err(e) =
            anxin_app::audit::access_denied(&guard.state.app, &me.app_actor(), &path, &why).await
        {
            return refuse(surface, e.into());
        }
        return refuse(
            surface,
            DomainError::Forbidden(format!("your role ({}) may not do this", me.role())).into(),
        );
    }
    let back = crate::once::back_path(req.headers());
    let (req, once) = if is_unsafe(req.method()) && me.via == Via::Cookie {
        match check_csrf(req, &me.csrf_token).await {
            Ok(checked) => checked,
            // A text beyond the limit: back to the form's page, which says so; nothing is written.
            // An upload beyond what is read: the form's page says so at its field.
            Err(AppError::Domain(DomainError::Refused(p)))
                if surface == Surface::Web && p.code == anxin_domain::Code::PhotoTooLarge =>
            {
                return crate::flash::form_redirect(&guard.state, &back, "photo", &p, vec![]);
            }
            Err(AppError::Domain(DomainError::Refused(p)))
                if surface == Surface::Web && p.code == anxin_domain::Code::TextTooLong =>
            {
                return crate::flash::redirect(
                    &back,
                    crate::flash::Tone::Error,
                    crate::flash::Message::Id {
                        id: "form-text-too-long".into(),
                        args: vec![(
                            "max".into(),
                            anxin_domain::validate::MAX_TEXT_CHARS.to_string(),
                        )],
                    },
                );
            }
            Err(e) => return refuse(surface, e),
        }
    } else {
        (req, None)
    };
    let mut req = req;
    let lang = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or_else(|| Lang::from_tag(&me.user.language));
    let had_flash =
        crate::flash::present(req.headers()) || crate::flash::form_present(req.headers());
    // A form's one-time token: a repeat is answered with the first submission's answer.
    let once = once.map(|o| format!("{}:{o}", me.csrf_token));
    req.extensions_mut().insert::<CurrentUser>(me);
    let r = match once {
        None => next.run(req).await,
        Some(key) => match guard.state.forms.claim(&key).await {
            crate::once::Claim::Repeat { location, cookies } => {
                crate::once::replay(location, cookies)
            }
            crate::once::Claim::RepeatOfPage => crate::flash::redirect(
                &back,
                crate::flash::Tone::Ok,
                crate::flash::Message::Id {
                    id: "form-already-sent".into(),
                    args: vec![],
                },
            ),
            crate::once::Claim::First => {
                let state = guard.state.clone();
                let task_key = key.clone();
                // Its own task: a browser that drops the connection cannot cut it short.
                let run = tokio::spawn(async move {
                    let r = next.run(req).await;
                    state.forms.finish(&task_key, &r);
                    r
                });
                match run.await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "a form's handler failed");
                        guard.state.forms.abandon(&key);
                        return refuse(surface, AppError::Internal);
                    }
                }
            }
        },
    };
    let r = match surface {
        Surface::Api => crate::error::localise(r, lang),
        Surface::Web => r,
    };
    if had_flash {
        crate::flash::consumed(r)
    } else {
        r
    }
}

/// Forms carry the session's CSRF token in a `csrf` field; scripts send `X-CSRF-Token`. A form's
/// one-time token (`once`), if any, comes back with the request.
async fn check_csrf(req: Request, expected: &str) -> AppResult<(Request, Option<String>)> {
    if let Some(h) = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        return if same_token(h, expected) {
            Ok((req, None))
        } else {
            Err(AppError::Csrf)
        };
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if content_type.starts_with("multipart/form-data") {
        return check_upload_csrf(req, &content_type, expected).await;
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(AppError::Csrf);
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| AppError::BadRequest {
            field: None,
            message: "form too large".into(),
        })?;
    let ok = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .is_some_and(|(_, v)| same_token(&v, expected));
    if !ok {
        return Err(AppError::Csrf);
    }
    // A body shorter than the limit cannot hold a text longer than it.
    if bytes.len() > anxin_domain::validate::MAX_TEXT_CHARS {
        let fields: Vec<_> = url::form_urlencoded::parse(&bytes).collect();
        if let Some(field) = anxin_domain::validate::first_too_long(
            fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
        ) {
            return Err(AppError::Domain(DomainError::Refused(
                anxin_domain::Problem::new(anxin_domain::Code::TextTooLong)
                    .field(field)
                    .arg("max", anxin_domain::validate::MAX_TEXT_CHARS),
            )));
        }
    }
    let once = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == crate::once::FIELD)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty() && v.len() <= 64);
    Ok((Request::from_parts(parts, Body::from(bytes)), once))
}

/// The CSRF check of an upload (`multipart/form-data`): the `csrf` and `once` fields come
/// before the file (the page puts them first), so only the parts before the first file are
/// looked at. A body over [`UPLOAD_LIMIT`] is refused as `photo.too_large`.
async fn check_upload_csrf(
    req: Request,
    content_type: &str,
    expected: &str,
) -> AppResult<(Request, Option<String>)> {
    let too_large = |size: usize| {
        AppError::Domain(DomainError::Refused(
            anxin_domain::Problem::new(anxin_domain::Code::PhotoTooLarge)
                .field("photo")
                .arg("size", size.div_ceil(1024))
                .arg("max", anxin_domain::photo::MAX_PHOTO_BYTES.div_ceil(1024)),
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > UPLOAD_LIMIT) {
        return Err(too_large(n));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, UPLOAD_LIMIT)
        .await
        .map_err(|_| too_large(declared.unwrap_or(UPLOAD_LIMIT + 1)))?;
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
        .next()
        .ok_or(AppError::Csrf)?;
    let fields = leading_text_fields(&bytes, &boundary);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if !field("csrf").is_some_and(|v| same_token(&v, expected)) {
        return Err(AppError::Csrf);
    }
    let once = field(crate::once::FIELD).filter(|v| !v.is_empty() && v.len() <= 64);
    Ok((Request::from_parts(parts, Body::from(bytes)), once))
}

/// The text fields of a `multipart/form-data` body that come before its first file (at most a
/// few short ones: a token is 64 characters).
fn leading_text_fields(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delimiter = format!("--{boundary}");
    let find = |hay: &[u8], from: usize| {
        hay.get(from..)?
            .windows(delimiter.len())
            .position(|w| w == delimiter.as_bytes())
            .map(|i| i + from)
    };
    let mut out = Vec::new();
    let Some(mut at) = find(body, 0) else {
        return out;
    };
    while out.len() < 8 {
        let start = at + delimiter.len();
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(head_end) = body
            .get(start..)
            .and_then(|b| b.windows(4).take(1024).position(|w| w == b"\r\n\r\n"))
            .map(|i| start + i)
        else {
            break;
        };
        let head = String::from_utf8_lossy(&body[start..head_end]);
        if head.contains("filename=") {
            break;
        }
        let Some(name) = head
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("name="))
            .map(|n| {
                n.split(['\r', '\n'])
                    .next()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_owned()
            })
            .next()
        else {
            break;
        };
        // A text field is short: look for the next delimiter in the next few hundred bytes.
        let value_start = head_end + 4;
        let window_end = body.len().min(value_start + 512 + delimiter.len());
        let Some(next) = find(&body[..window_end], value_start) else {
            break;
        };
        let value = body[value_start..next]
            .strip_suffix(b"\r\n")
            .unwrap_or(&body[value_start..next]);
        out.push((name, String::from_utf8_lossy(value).into_owned()));
        at = next;
    }
    out
}

/// The OpenAPI 3.1 document of the API routes.
///
/// Answer schemas are generated for serialisation (what the server writes); named types go to
/// `components/schemas` and are referenced with `$ref`.
pub fn openapi_document(specs: &[RouteSpec]) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .for_serialize()
        .into_generator();
    let mut paths = serde_json::Map::new();
    for s in specs.iter().filter(|s| s.surface == Surface::Api) {
        let params: Vec<Value> = s
            .params
            .iter()
            .map(|p| {
                let mut v = json!({
                    "name": p.name,
                    "in": match p.location { ParamIn::Path => "path", ParamIn::Query => "query" },
                    "required": p.required,
                    "schema": {"type": p.ty},
                });
                if !p.description.is_empty() {
                    v["description"] = json!(p.description);
                }
                v
            })
            .collect();
        let success = match s.answer {
            Some(Answer::Json(schema)) => {
                json!({"description": "success", "content": {"application/json": {"schema": schema(&mut generator)}}})
            }
            Some(Answer::Text(media)) => {
                json!({"description": "success", "content": {media: {"schema": {"type": "string"}}}})
            }
            Some(Answer::Empty) => json!({"description": "success, no body"}),
            Some(Answer::Binary(media)) => {
                let content: serde_json::Map<String, Value> = media
                    .iter()
                    .map(|m| {
                        (
                            (*m).to_owned(),
                            json!({"schema": {"type": "string", "format": "binary"}}),
                        )
                    })
                    .collect();
                json!({"description": "success", "content": content})
            }
            None => json!({"description": "success"}),
        };
        let (security, permission) = match s.access {
            Access::Public => (json!([]), Value::Null),
            Access::LoggedIn => (json!([{"bearer": []}, {"cookie": []}]), json!("logged_in")),
            Access::Needs(p) => (json!([{"bearer": []}, {"cookie": []}]), json!(p.as_str())),
        };
        let mut op = json!({
            "summary": s.summary,
            "tags": [s.tag],
            "operationId": format!("{}{}", s.verb.openapi(), s.path.replace(['/', '{', '}', '.', '-'], "_")),
            "security": security,
            "x-anxin-permission": permission,
            "responses": {
                s.ok.to_string(): success,
                "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(schema) = s.body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema()}}});
        }
        let entry = paths
            .entry(s.path.to_owned())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(m) = entry {
            m.insert(s.verb.openapi().to_owned(), op);
        }
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert(
        "Error".to_owned(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Anxin API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Community drug-treatment centre: staff, clients, audit. Errors are {\"error\": {\"code\", \"message\", \"field\"}}."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "token from POST /api/v1/auth/login"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE, "description": "browser session; unsafe methods also need X-CSRF-Token"}
            },
            "schemas": schemas
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_state;
    use tower::ServiceExt;

    /// Every API route with a body in its successful answer says what that body is, and every
    /// `{param}` of a path is declared with a type.
    #[test]
    fn every_api_answer_and_parameter_is_declared() {
        let specs = crate::route_table().specs_with_openapi();
        let mut missing = Vec::new();
        for s in specs.iter().filter(|s| s.surface == Surface::Api) {
            if (200..300).contains(&s.ok) && s.ok != 204 && s.answer.is_none() {
                missing.push(format!(
                    "{} {} ({}) has no answer schema",
                    s.verb.openapi(),
                    s.path,
                    s.ok
                ));
            }
            for name in path_param_names(s.path) {
                let declared = s
                    .params
                    .iter()
                    .any(|p| p.name == name && p.location == ParamIn::Path && !p.ty.is_empty());
                if !declared {
                    missing.push(format!(
                        "{} {}: {{{name}}} not declared",
                        s.verb.openapi(),
                        s.path
                    ));
                }
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));

        let doc = crate::route_table().openapi();
        let paths = doc["paths"].as_object().expect("paths");
        for (path, ops) in paths {
            for (verb, op) in ops.as_object().expect("operations") {
                for name in path_param_names(path) {
                    let typed = op["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| {
                            p["name"] == name
                                && p["in"] == "path"
                                && p["schema"]["type"].is_string()
                        })
                    });
                    assert!(typed, "{verb} {path}: {{{name}}} has no typed parameter");
                }
                let ok = op["responses"]
                    .as_object()
                    .expect("responses")
                    .iter()
                    .find(|(status, _)| status.starts_with('2'))
                    .map(|(status, r)| (status.clone(), r.clone()));
                if let Some((status, r)) = ok {
                    if status != "204"
                        && !r["description"]
                            .as_str()
                            .is_some_and(|d| d.contains("no body"))
                    {
                        assert!(
                            r["content"].as_object().is_some_and(|c| !c.is_empty()),
                            "{verb} {path}: {status} answer has no content schema"
                        );
                    }
                }
            }
        }
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let text = doc.to_string();
        for (i, _) in text.match_indices("\"#/components/schemas/") {
            let rest = &text[i + 22..];
            let name = &rest[..rest.find('"').unwrap_or(0)];
            assert!(schemas.contains_key(name), "$ref to missing schema {name}");
        }
    }

    #[tokio::test]
    async fn a_route_without_a_declared_permission_is_refused() {
        let (state, _db) = test_state().await;
        let router = RouteTable::default()
            .add(
                RouteSpec::api(Verb::Get, "/api/v1/declared", Access::Public, "t", "ok"),
                || async { "fine" },
            )
            .route_without_declaration("/api/v1/forgotten")
            .into_router(state);
        let ok = router
            .clone()
            .oneshot(
                Request::get("/api/v1/declared")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let refused = router
            .oneshot(
                Request::get("/api/v1/forgotten")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let body = axum::body::to_bytes(refused.into_body(), 4096)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }
}
