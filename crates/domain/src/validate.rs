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
}
