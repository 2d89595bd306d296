//! The one mapping from errors to HTTP answers.
//!
//! Every failure becomes `{"error": {"code", "message", "field"?}}` with its status (API), or
//! the same message on an HTML page (web). Database text and stack traces are logged, never sent.

use anxin_domain::DomainError;
use anxin_storage::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

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

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => AppError::Domain(d),
            other => {
                tracing::error!(error = %other, "storage failure");
                AppError::Internal
            }
        }
    }
}

/// Status, stable code, message and field of an error: the single table of answers.
pub fn describe(e: &AppError) -> (StatusCode, &'static str, String, Option<String>) {
    match e {
        AppError::Domain(d) => match d {
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message, field) = describe(&self);
        let mut res = (status, Json(error_body(code, &message, field.as_deref()))).into_response();
        if let AppError::TooManyRequests { retry_after_secs } = self {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        res
    }
}

/// Result alias for handlers.
pub type AppResult<T> = Result<T, AppError>;
