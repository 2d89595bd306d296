//! The one error type of the domain: what went wrong in terms a user understands.
//! The HTTP layer maps each variant to a status code exactly once. Refusals by code
//! ([`crate::problem`]) are the way forward; the free-text variants are being moved over.

/// A rule was broken. Messages name the field and the reason, never internal details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Input that does not satisfy a rule (422). `field` names the offending input.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The caller is not logged in, or the session ended (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is logged in but may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The request contradicts the current state (409), e.g. a duplicate.
    #[error("{0}")]
    Conflict(String),
    /// The account is locked after too many failed logins (423).
    #[error("account locked until {until}")]
    Locked {
        until: chrono::DateTime<chrono::Utc>,
    },
    /// A refusal by code, field and arguments, translated by the adapters.
    #[error(transparent)]
    Refused(#[from] crate::problem::Problem),
}

impl From<crate::problem::Code> for DomainError {
    fn from(code: crate::problem::Code) -> Self {
        DomainError::Refused(crate::problem::Problem::new(code))
    }
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
