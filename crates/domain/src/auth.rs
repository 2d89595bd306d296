//! How logins fail, lock and age: the password rule, the lockout after repeated failures,
//! and the idle and absolute session limits. Hashing itself is an adapter's job; these are
//! the decisions around it.

use chrono::{DateTime, Duration, Utc};

use crate::DomainError;

/// Shortest password accepted for a staff account.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (a bound on hashing work).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Checks a new password against the policy.
pub fn check_new_password(password: &str) -> Result<(), DomainError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters (got {n})"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Failed-login lockout: after `max_failures` wrong passwords in a row the account is locked
/// for `lock_for`. A correct password while locked is refused too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub lock_for: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            max_failures: 10,
            lock_for: Duration::minutes(30),
        }
    }
}

/// An account's standing with respect to failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginStanding {
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

impl LoginPolicy {
    /// Refuses a login attempt on a locked account, before the password is even checked.
    pub fn check_not_locked(
        &self,
        standing: LoginStanding,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        match standing.locked_until {
            Some(until) if until > now => Err(DomainError::Locked { until }),
            _ => Ok(()),
        }
    }

    /// The standing after a wrong password at `now`.
    pub fn after_failure(&self, standing: LoginStanding, now: DateTime<Utc>) -> LoginStanding {
        // A lock that has run out starts a fresh count.
        let previous = match standing.locked_until {
            Some(until) if until <= now => 0,
            _ => standing.failed_logins,
        };
        let failed_logins = previous.saturating_add(1);
        let locked_until = if failed_logins >= self.max_failures {
            Some(now + self.lock_for)
        } else {
            None
        };
        LoginStanding {
            failed_logins,
            locked_until,
        }
    }

    /// The standing after a correct password.
    pub fn after_success(&self) -> LoginStanding {
        LoginStanding {
            failed_logins: 0,
            locked_until: None,
        }
    }
}

/// Session limits: idle timeout and absolute lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::minutes(15),
            absolute: Duration::hours(12),
        }
    }
}

impl SessionPolicy {
    /// Whether a session created at `created` and last used at `last_seen` is still valid.
    pub fn is_live(
        &self,
        created: DateTime<Utc>,
        last_seen: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        now - last_seen < self.idle && now - created < self.absolute
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
    }

    #[test]
    fn tenth_failure_locks_for_thirty_minutes() {
        let p = LoginPolicy::default();
        let mut s = LoginStanding {
            failed_logins: 0,
            locked_until: None,
        };
        for i in 1..=9 {
            s = p.after_failure(s, t0());
            assert_eq!(s.failed_logins, i);
            assert!(p.check_not_locked(s, t0()).is_ok());
        }
        s = p.after_failure(s, t0());
        assert_eq!(s.locked_until, Some(t0() + Duration::minutes(30)));
        assert!(matches!(
            p.check_not_locked(s, t0() + Duration::minutes(29)),
            Err(DomainError::Locked { .. })
        ));
        assert!(p.check_not_locked(s, t0() + Duration::minutes(30)).is_ok());
        // After the lock runs out, one more failure does not re-lock at once.
        let s2 = p.after_failure(s, t0() + Duration::minutes(31));
        assert_eq!(s2.failed_logins, 1);
        assert_eq!(s2.locked_until, None);
    }

    #[test]
    fn sessions_end_after_15_idle_minutes_or_12_hours() {
        let p = SessionPolicy::default();
        let c = t0();
        assert!(p.is_live(c, c, c + Duration::minutes(14)));
        assert!(!p.is_live(c, c, c + Duration::minutes(15)));
        let busy = c + Duration::hours(11) + Duration::minutes(59);
        assert!(p.is_live(c, busy, busy + Duration::seconds(30)));
        assert!(!p.is_live(c, busy, c + Duration::hours(12)));
    }

    #[test]
    fn password_length_rule_names_the_field() {
        let e = check_new_password("short").unwrap_err();
        assert_eq!(
            e.to_string(),
            "password: must be at least 12 characters (got 5)"
        );
        assert!(check_new_password("twelve-chars").is_ok());
        // Characters, not bytes: 12 Chinese characters pass.
        assert!(check_new_password("安心安心安心安心安心安心").is_ok());
    }
}
