//! Shapes of identifiers typed by people: site codes, usernames, client UICs.

use crate::DomainError;

fn check_chars(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(char) -> bool,
    what: &str,
) -> Result<(), DomainError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(DomainError::invalid(
            field,
            format!("must be {min} to {max} characters (got {n})"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(DomainError::invalid(
            field,
            format!("character `{bad}` is not allowed; use {what}"),
        ));
    }
    Ok(())
}

/// A site code such as `YX01`: 2–16 capital letters, digits or `-`.
pub fn site_code(code: &str) -> Result<(), DomainError> {
    check_chars(
        "code",
        code,
        2,
        16,
        |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-',
        "capital letters A-Z, digits and -",
    )
}

/// A site's display name: 1–120 characters, not blank.
pub fn site_name(name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() {
        return Err(DomainError::invalid("name", "must not be blank"));
    }
    if name.chars().count() > 120 {
        return Err(DomainError::invalid(
            "name",
            "must be at most 120 characters",
        ));
    }
    Ok(())
}

/// A username: 3–40 lower-case letters, digits, `.`, `_` or `-`.
pub fn username(name: &str) -> Result<(), DomainError> {
    check_chars(
        "username",
        name,
        3,
        40,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'),
        "lower-case letters a-z, digits, '.', '_' and '-'",
    )
}

/// A client's unique identifier code (UIC), the pseudonym used everywhere:
/// 4–32 capital letters, digits or `-`.
pub fn uic(code: &str) -> Result<(), DomainError> {
    check_chars(
        "uic",
        code,
        4,
        32,
        |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-',
        "capital letters A-Z, digits and -",
    )
}

/// The most characters a free-text field takes: notes, reasons, agreement rules, addresses,
/// answers to the police, anything a person types. Every JSON body and every form is checked
/// against it before a use case runs (fields with a lower limit of their own, such as identity
/// fields and names, keep theirs); a longer text is refused with `text.too_long`, naming the
/// field and this limit, and nothing is written.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Fields that carry data rather than typed text, exempt from [`MAX_TEXT_CHARS`]: a box's event
/// log (base64), bounded only by the body limit of the adapter.
pub const DATA_FIELDS: &[&str] = &["log_base64"];

/// The first field of `fields` (name, value) longer than [`MAX_TEXT_CHARS`], skipping
/// [`DATA_FIELDS`].
pub fn first_too_long<'a, I>(fields: I) -> Option<String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    fields
        .into_iter()
        .find(|(name, value)| {
            let last = name.rsplit('.').next().unwrap_or(name);
            !DATA_FIELDS.contains(&last) && value.chars().count() > MAX_TEXT_CHARS
        })
        .map(|(name, _)| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_field_and_character() {
        assert_eq!(
            uic("ab12").unwrap_err().to_string(),
            "uic: character `a` is not allowed; use capital letters A-Z, digits and -"
        );
        assert_eq!(
            username("x").unwrap_err().to_string(),
            "username: must be 3 to 40 characters (got 1)"
        );
        assert!(site_code("YX01").is_ok());
        assert!(site_name("  ").is_err());
    }

    #[test]
    fn long_texts_are_found_by_field() {
        let long = "量".repeat(MAX_TEXT_CHARS + 1);
        let fine = "量".repeat(MAX_TEXT_CHARS);
        assert_eq!(first_too_long([("note", fine.as_str())]), None);
        assert_eq!(
            first_too_long([("reason", "ok"), ("note", long.as_str())]),
            Some("note".into())
        );
        assert_eq!(first_too_long([("log_base64", long.as_str())]), None);
        assert_eq!(
            first_too_long([("service.note", long.as_str())]),
            Some("service.note".into())
        );
    }
}
