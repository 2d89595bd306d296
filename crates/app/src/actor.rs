//! Who acts in a use case: a staff account in its role at its centre. Adapters make one from
//! their own notion of a caller (an HTTP session, the command line, the demo generator); the
//! use cases never see a session or a token.

use anxin_domain::{DomainError, Permission, Role};

/// The person (or program) a use case acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub site_id: i64,
}

impl Actor {
    /// The actor as the audit trail records it.
    pub fn audit(&self) -> anxin_storage::Actor {
        anxin_storage::Actor {
            user_id: Some(self.user_id),
            name: self.username.clone(),
            site_id: Some(self.site_id),
        }
    }

    /// Refuses unless the role holds `p` (the route guard checks too; use cases do not rely on it).
    pub fn require(&self, p: Permission) -> Result<(), DomainError> {
        if self.role.has(p) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "the role {} may not do this",
                self.role.as_str()
            )))
        }
    }
}
