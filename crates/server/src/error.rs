//! The one mapping from errors to HTTP answers.
//!
//! Every failure becomes `{"error": {"code", "message", "field"?}}` with its status (API), or
//! the same message on an HTML page (web). Refusals by code ([`anxin_domain::Problem`]) carry a
//! stable code such as `dose.already_given` and a message in the caller's language. Database
//! text and stack traces are logged, never sent.

use anxin_domain::problem::Kind;
use anxin_domain::{DomainError, Problem};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::i18n::{I18n, Lang};

/// An error as the HTTP layer sees it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A request the server could not even read (malformed JSON, wrong content type).
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// A form or cookie-authenticated call without the right CSRF token.
    #[error("missing or wrong CSRF token; reload the page and try again")]
    Csrf,
    /// Too many login attempts, or hashing is saturated: try again after this many seconds.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// Something the client cannot fix; details went to the log.
    #[error("internal error")]
    Internal,
}

impl From<anxin_app::Error> for AppError {
    fn from(e: anxin_app::Error) -> Self {
        match e {
            anxin_app::Error::Domain(d) => AppError::Domain(d),
            anxin_app::Error::Busy { retry_after_secs } => {
                AppError::TooManyRequests { retry_after_secs }
            }
            anxin_app::Error::Internal(_) => AppError::Internal,
        }
    }
}

impl From<Problem> for AppError {
    fn from(p: Problem) -> Self {
        AppError::Domain(DomainError::Refused(p))
    }
}

/// Status, stable code, message (in `lang`) and field of an error: the single table of answers.
pub fn describe(e: &AppError, lang: Lang) -> (StatusCode, &'static str, String, Option<String>) {
    match e {
        AppError::Domain(d) => match d {
            DomainError::Refused(p) => (
                match p.kind() {
                    Kind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                    Kind::Forbidden => StatusCode::FORBIDDEN,
                    Kind::NotFound => StatusCode::NOT_FOUND,
                    Kind::Conflict => StatusCode::CONFLICT,
                },
                p.code.as_str(),
                I18n::global().problem(lang, p),
                p.field.clone(),
            ),
            DomainError::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{field}: {message}"),
                Some(field.clone()),
            ),
            DomainError::Unauthenticated(m) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", m.clone(), None)
            }
            DomainError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone(), None),
            DomainError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", d.to_string(), None),
            DomainError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone(), None),
            DomainError::Locked { .. } => {
                (StatusCode::LOCKED, "account_locked", d.to_string(), None)
            }
        },
        AppError::BadRequest { field, message } => (
            StatusCode::BAD_REQUEST,
            "bad_request",
            message.clone(),
            field.clone(),
        ),
        AppError::Csrf => (StatusCode::FORBIDDEN, "csrf", e.to_string(), None),
        AppError::TooManyRequests { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            e.to_string(),
            None,
        ),
        AppError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the details are in the server log".into(),
            None,
        ),
    }
}

/// The JSON body of an error answer.
pub fn error_body(code: &str, message: &str, field: Option<&str>) -> serde_json::Value {
    let mut inner = json!({ "code": code, "message": message });
    if let Some(f) = field {
        inner["field"] = json!(f);
    }
    json!({ "error": inner })
}

/// A refusal carried on its answer, so that the route guard can say it again in the caller's
/// language ([`localise`]).
#[derive(Clone)]
struct Refusal(Problem);

impl IntoResponse for AppError {
    /// The JSON answer in English; the route guard re-renders a refusal in the caller's language.
    fn into_response(self) -> Response {
        let (status, code, message, field) = describe(&self, Lang::En);
        let mut r = (status, Json(error_body(code, &message, field.as_deref()))).into_response();
        match self {
            AppError::Domain(DomainError::Refused(p)) => {
                r.extensions_mut().insert(Refusal(p));
            }
            AppError::TooManyRequests { retry_after_secs } => {
                r.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
            }
            _ => {}
        }
        r
    }
}

/// Says a JSON refusal in `lang` (the caller's `Accept-Language`, else their account's).
pub fn localise(mut r: Response, lang: Lang) -> Response {
    let Some(Refusal(p)) = r.extensions_mut().remove::<Refusal>() else {
        return r;
    };
    if lang == Lang::En {
        return r;
    }
    let status = r.status();
    let body = error_body(
        p.code.as_str(),
        &I18n::global().problem(lang, &p),
        p.field.as_deref(),
    );
    (status, Json(body)).into_response()
}

/// Result alias for handlers.
pub type AppResult<T> = Result<T, AppError>;
