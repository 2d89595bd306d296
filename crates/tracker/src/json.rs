//! Reading fields out of JSON objects with errors that name the field.

use serde_json::{Map, Value};

use crate::ReportError;

pub(crate) type Object = Map<String, Value>;

/// The whole body as a JSON object.
pub(crate) fn object(body: &[u8]) -> Result<Object, ReportError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ReportError::invalid(
            "body",
            format!("must be a JSON object, not {}", kind(&other)),
        )),
        Err(e) => Err(ReportError::invalid("body", format!("not JSON ({e})"))),
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A field; `null` counts as absent.
pub(crate) fn field<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(crate) fn number(obj: &Object, key: &str, name: &str) -> Result<Option<f64>, ReportError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| ReportError::invalid(name, format!("{n} is not a usable number"))),
        Some(other) => Err(ReportError::invalid(
            name,
            format!("must be a number, not {}", kind(other)),
        )),
    }
}

pub(crate) fn string<'a>(
    obj: &'a Object,
    key: &str,
    name: &str,
) -> Result<Option<&'a str>, ReportError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ReportError::invalid(
            name,
            format!("must be a string, not {}", kind(other)),
        )),
    }
}

pub(crate) fn object_field<'a>(
    obj: &'a Object,
    key: &str,
    name: &str,
) -> Result<Option<&'a Object>, ReportError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(ReportError::invalid(
            name,
            format!("must be an object, not {}", kind(other)),
        )),
    }
}
