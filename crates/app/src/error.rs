//! The one error of the use cases: a refusal the user can act on ([`DomainError`], whose
//! [`anxin_domain::Problem`] variant carries a stable code), or an internal failure whose
//! details go to the log and never to an answer.

use anxin_domain::{DomainError, Problem};
use anxin_storage::StoreError;

/// Why a use case did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Too many attempts at once, or hashing is saturated: try again after this many seconds.
    /// Nothing was checked, counted or written.
    #[error("busy; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// Something the caller cannot fix; the text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Domain(DomainError::Refused(p))
    }
}

impl From<anxin_domain::Code> for Error {
    fn from(c: anxin_domain::Code) -> Self {
        Error::from(Problem::new(c))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => Error::Domain(d),
            other => {
                tracing::error!(error = %other, "storage failure");
                Error::Internal(other.to_string())
            }
        }
    }
}

/// Result alias for use cases.
pub type Result<T, E = Error> = std::result::Result<T, E>;
