//! Phone numbers a text message may go to: E.164 (`+` and 8 to 15 digits), and mainland China
//! mobile numbers typed in their local form (`13812345678`, also `0086…` or `86…`), which are
//! normalised to `+86…`. Numbers under `+86` must be mobile numbers (`1[3-9]` and 9 digits):
//! a landline cannot receive the daily code.

use std::fmt;

use crate::DomainError;

/// A validated phone number in E.164 form, e.g. `+8613812345678`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// The number with its leading `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with the middle digits hidden (`+86138****5678`), for pages and logs.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hides all but the first 6 and the last 4 characters of a stored number.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..chars.len() - 8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

fn is_cn_mobile(national: &str) -> bool {
    let b = national.as_bytes();
    b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
}

/// Validates and normalises `raw` (spaces, `-`, `.` and brackets are ignored) for the field
/// named `field`. Accepts `+<country><number>` (8 to 15 digits, E.164), `00<country>…`, and a
/// mainland China mobile number in local form (`1[3-9]` followed by 9 digits).
pub fn normalize(field: &str, raw: &str) -> Result<E164, DomainError> {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{3000}'))
        .collect();
    if cleaned.is_empty() {
        return Err(DomainError::invalid(field, "a phone number is required"));
    }
    let international = if let Some(rest) = cleaned.strip_prefix('+') {
        rest.to_owned()
    } else if let Some(rest) = cleaned.strip_prefix("00") {
        rest.to_owned()
    } else if is_cn_mobile(&cleaned) {
        format!("86{cleaned}")
    } else if cleaned.len() == 13 && cleaned.starts_with("86") && is_cn_mobile(&cleaned[2..]) {
        cleaned.clone()
    } else {
        return Err(DomainError::invalid(
            field,
            format!(
                "`{}` is neither an international number like +8613812345678 \
                 nor a mainland China mobile number like 13812345678",
                raw.trim()
            ),
        ));
    };
    if let Some(bad) = international.chars().find(|c| !c.is_ascii_digit()) {
        return Err(DomainError::invalid(
            field,
            format!("character `{bad}` is not allowed in a phone number"),
        ));
    }
    let n = international.len();
    if !(8..=15).contains(&n) {
        return Err(DomainError::invalid(
            field,
            format!("an international number has 8 to 15 digits after + (got {n})"),
        ));
    }
    if international.starts_with('0') {
        return Err(DomainError::invalid(
            field,
            "a country code never starts with 0",
        ));
    }
    if let Some(national) = international.strip_prefix("86") {
        if !is_cn_mobile(national) {
            return Err(DomainError::invalid(
                field,
                "a mainland China number must be a mobile number: 1[3-9] followed by 9 digits",
            ));
        }
    }
    Ok(E164(format!("+{international}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        match normalize("phone", raw) {
            Ok(p) => p.as_str().to_owned(),
            Err(e) => panic!("{raw}: {e}"),
        }
    }

    fn err(raw: &str) -> String {
        match normalize("phone", raw) {
            Ok(p) => panic!("{raw} accepted as {p}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn mainland_local_forms_become_plus_86() {
        assert_eq!(ok("13812345678"), "+8613812345678");
        assert_eq!(ok("138 1234 5678"), "+8613812345678");
        assert_eq!(ok("138-1234-5678"), "+8613812345678");
        assert_eq!(ok("8613812345678"), "+8613812345678");
        assert_eq!(ok("008613812345678"), "+8613812345678");
        assert_eq!(ok("+86 199 0000 1111"), "+8619900001111");
    }

    #[test]
    fn other_countries_are_e164() {
        assert_eq!(ok("+44 20 7946 0958"), "+442079460958");
        assert_eq!(ok("+85291234567"), "+85291234567");
        // Idempotent: a stored number validates to itself.
        assert_eq!(ok("+442079460958"), "+442079460958");
    }

    #[test]
    fn bad_numbers_name_the_field_and_reason() {
        assert!(err("").starts_with("phone: a phone number is required"));
        assert!(err("12812345678").contains("neither an international number"));
        assert!(err("+86 10 1234 5678").contains("must be a mobile number"));
        assert!(err("+8612812345678").contains("must be a mobile number"));
        assert!(err("+12345").contains("8 to 15 digits"));
        assert!(err("+1234567890123456").contains("8 to 15 digits"));
        assert!(err("+44abc1234567").contains("character `a`"));
        assert!(err("+0441234567").contains("never starts with 0"));
        assert!(err("0571 8888 8888").contains("neither"));
    }

    #[test]
    fn masking_hides_the_middle() {
        assert_eq!(ok("13812345678"), "+8613812345678");
        let p = normalize("p", "13812345678").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.masked(), "+86138****5678");
        assert_eq!(mask("+1234"), "*****");
    }
}
