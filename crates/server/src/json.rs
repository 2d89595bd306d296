//! The JSON body extractor: malformed bodies get a 400 that names the field and the reason.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Like `axum::Json`, but its refusals are Anxin errors naming the offending field.
pub struct ApiJson<T>(pub T);

fn field_of(path: &str, message: &str) -> Option<String> {
    if path != "." && !path.is_empty() {
        return Some(path.to_owned());
    }
    // serde reports a missing field at the parent's path; the name is in the message.
    let start = message.find("missing field `")? + "missing field `".len();
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(AppError::BadRequest {
                field: None,
                message: "expected a JSON body with Content-Type: application/json".into(),
            });
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| AppError::BadRequest {
                field: None,
                message: e.body_text(),
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                let field = field_of(&path, &inner);
                let message = match &field {
                    Some(f) if path != "." => format!("{f}: {inner}"),
                    _ => inner,
                };
                AppError::BadRequest { field, message }
            })
    }
}
