//! The JSON body extractor: malformed bodies get a 400 that names the field and the reason;
//! only `application/json` is JSON; a text longer than
//! [`anxin_domain::validate::MAX_TEXT_CHARS`] is refused at its field before any use case runs.

use anxin_domain::validate::{first_too_long, MAX_TEXT_CHARS};
use anxin_domain::{Code, DomainError, Problem};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use serde_json::Value;

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

/// `application/json`, with or without parameters (`; charset=utf-8`); not `application/jsonp`.
fn is_json_type(v: &str) -> bool {
    v.split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Every string in `v` with its path as serde names fields (`service.note`, `tiers[0].x`).
fn strings<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                strings(item, p, out);
            }
        }
        _ => {}
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_type);
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
        // A body shorter than the limit cannot hold a text longer than it.
        if bytes.len() > MAX_TEXT_CHARS {
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                let mut texts = Vec::new();
                strings(&v, String::new(), &mut texts);
                if let Some(field) = first_too_long(texts.iter().map(|(p, t)| (p.as_str(), *t))) {
                    return Err(AppError::Domain(DomainError::Refused(
                        Problem::new(Code::TextTooLong)
                            .field(field)
                            .arg("max", MAX_TEXT_CHARS),
                    )));
                }
            }
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_json_is_json() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("application/json; charset=utf-8"));
        assert!(is_json_type("Application/JSON"));
        assert!(!is_json_type("application/jsonp"));
        assert!(!is_json_type("application/json-seq"));
        assert!(!is_json_type("text/json"));
    }

    #[test]
    fn strings_are_named_by_their_path() {
        let v = serde_json::json!({"service": {"note": "a"}, "tiers": [{"x": "b"}], "n": 1});
        let mut out = Vec::new();
        strings(&v, String::new(), &mut out);
        out.sort();
        assert_eq!(
            out,
            vec![("service.note".into(), "a"), ("tiers[0].x".into(), "b")]
        );
    }
}
