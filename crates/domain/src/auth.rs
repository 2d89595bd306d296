//! How logins fail, slow down and age: the password rule, the throttling of repeated
//! failures (per account and address, per address, per account), and the idle and absolute
//! session limits. Hashing itself is an adapter's job; these are
//! the decisions around it.

use chrono::{DateTime, Duration, Utc};

use crate::{Code, DomainError, Problem};

/// Shortest password accepted for a staff account.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (a bound on hashing work).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The words a new password must not contain: the account's own name and its centre's.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    pub username: &'a str,
    pub centre_name: &'a str,
    pub centre_code: &'a str,
}

/// The name of the system, refused inside passwords like the other context words (and so is
/// its Chinese name, 安心).
pub const SYSTEM_NAME: &str = "anxin";

static COMMON_LIST: &str = include_str!("common_passwords.txt");

/// Whether `candidate` (already lowercase) is on the shipped list of common and breached
/// passwords (`common_passwords.txt`, about 10,000 entries).
pub fn is_common_password(candidate: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| {
        COMMON_LIST
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
    .contains(candidate)
}

/// Checks a new password against the policy of NIST SP 800-63B §5.1.1.2, in this order:
/// 12 to 256 characters (any characters: a passphrase of words and spaces is welcome); not one
/// character repeated nor a short pattern repeated (`abcabcabcabc`); not a run of consecutive
/// characters (`123456789012`, `abcdefghijkl`); not containing the username, the centre's name
/// or code, or the system's name; not on the list of common and breached passwords, also once
/// the digits and symbols around it are taken off (`Password2026!`). Comparisons ignore case.
/// Every refusal names the `password` field and the reason.
pub fn check_new_password(password: &str, ctx: &PasswordContext<'_>) -> Result<(), DomainError> {
    let refuse = |p: Problem| Err(DomainError::from(p.field("password")));
    let chars: Vec<char> = password.chars().collect();
    let n = chars.len();
    if n < MIN_PASSWORD_CHARS {
        return refuse(
            Problem::new(Code::PasswordTooShort)
                .arg("min", MIN_PASSWORD_CHARS)
                .arg("got", n),
        );
    }
    if n > MAX_PASSWORD_CHARS {
        return refuse(Problem::new(Code::PasswordTooLong).arg("max", MAX_PASSWORD_CHARS));
    }
    if chars.iter().all(|c| *c == chars[0]) {
        return refuse(Problem::new(Code::PasswordRepeated));
    }
    if (2..=4).any(|unit| {
        let mut parts = chars.chunks_exact(unit);
        parts.all(|c| c == &chars[..unit]) && parts.remainder().is_empty()
    }) {
        return refuse(Problem::new(Code::PasswordPattern));
    }
    // Each character the next (or previous) one; digits wrap around (…8901…, …1098…).
    let step = |a: char, b: char| match (a, b) {
        ('9', '0') => 1,
        ('0', '9') => -1,
        _ => i64::from(u32::from(b)) - i64::from(u32::from(a)),
    };
    let run = |dir: i64| chars.windows(2).all(|w| step(w[0], w[1]) == dir);
    if run(1) || run(-1) {
        return refuse(Problem::new(Code::PasswordSequence));
    }
    let lower = password.to_lowercase();
    let compact = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let lower_compact = compact(password);
    let contains = |word: &str| {
        let w = word.trim().to_lowercase();
        let wc = compact(word);
        (w.chars().count() >= 3 && lower.contains(&w))
            || (wc.chars().count() >= 3 && lower_compact.contains(&wc))
    };
    if contains(ctx.username) {
        return refuse(Problem::new(Code::PasswordHasUsername));
    }
    let mut name_words = ctx
        .centre_name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4);
    if contains(ctx.centre_name) || contains(ctx.centre_code) || name_words.any(contains) {
        return refuse(Problem::new(Code::PasswordHasCentre));
    }
    if lower.contains(SYSTEM_NAME) || lower.contains("安心") {
        return refuse(Problem::new(Code::PasswordHasSystem).arg("name", SYSTEM_NAME));
    }
    if is_common_password(&lower) {
        return refuse(Problem::new(Code::PasswordCommon));
    }
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    if core.chars().count() >= 4 && is_common_password(core) {
        return refuse(Problem::new(Code::PasswordCommonDecorated).arg("core", core));
    }
    Ok(())
}

/// Failed-login throttling, after NIST SP 800-63B §5.2.2 ("rate-limit rather than lock").
///
/// Failures are counted at three levels, each keyed by what the caller *typed* (so an unknown
/// username is counted, delayed and locked exactly like a real one, and the answers do not
/// tell them apart):
///
/// - **pair** (account, client address): after `pair_free_failures` failures in a row the next
///   attempt from that address must wait 1 s, then 2 s, 4 s, … up to `max_delay`. An outsider
///   guessing from one address is slowed to a crawl while the owner, at another address, is not
///   touched.
/// - **address** (any account): after `address_free_failures` the same growing delay applies to
///   every attempt from that address (a spray across many usernames).
/// - **account** (any address): after `max_failures` failures in a row (100 by default, the
///   NIST ceiling) the account is locked for `lock_for`, and each further failure locks it again;
///   a manager can always unlock it. Reaching this needs many addresses, since each one is
///   slowed by its pair delay.
///
/// A level's count is forgotten after `forget_after` without failures; a correct password
/// clears the pair and the account counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures in a row on one account, from any address, that lock it for `lock_for`.
    pub max_failures: u32,
    pub lock_for: Duration,
    /// Failures of one (account, address) pair before its attempts are delayed.
    pub pair_free_failures: u32,
    /// Failures from one address (all accounts) before its attempts are delayed.
    pub address_free_failures: u32,
    /// The longest delay the doubling reaches.
    pub max_delay: Duration,
    /// Quiet time after which a level's count starts again from zero.
    pub forget_after: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            max_failures: 100,
            lock_for: Duration::minutes(30),
            pair_free_failures: 5,
            address_free_failures: 20,
            max_delay: Duration::minutes(15),
            forget_after: Duration::hours(24),
        }
    }
}

/// An account's standing with respect to failed logins, as shown to managers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginStanding {
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Failures counted at one level: how many in a row, and when the last one was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strikes {
    pub failures: u32,
    pub last_failure_at: DateTime<Utc>,
}

/// The three counts that decide whether a login attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttles {
    pub pair: Option<Strikes>,
    pub account: Option<Strikes>,
    pub address: Option<Strikes>,
}

/// Whether an attempt is checked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password.
    Go,
    /// Too soon after the last failure at the pair or address level: answer "try later" (429).
    Wait { until: DateTime<Utc> },
    /// The account-wide limit is reached: locked (423) until then or until a manager unlocks.
    Locked { until: DateTime<Utc> },
}

/// The key an account's counts are stored under: a hash of the username as typed (trimmed,
/// lowercased), so names typed into the wrong field are not kept in clear.
pub fn account_key(username: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(
        format!("anxin-login:{}", username.trim().to_lowercase()).as_bytes(),
    ))
}

impl LoginPolicy {
    /// The wait required after the `failures`-th failure when `free` are allowed without one:
    /// none up to `free`, then 1 s, 2 s, 4 s, … capped at `max_delay`.
    pub fn delay_after(&self, failures: u32, free: u32) -> Duration {
        if failures <= free {
            return Duration::zero();
        }
        let doublings = (failures - free - 1).min(30);
        Duration::seconds(1i64 << doublings).min(self.max_delay)
    }

    fn live(&self, s: Option<Strikes>, now: DateTime<Utc>) -> Option<Strikes> {
        s.filter(|s| now - s.last_failure_at < self.forget_after)
    }

    /// Decides whether an attempt at `now` is checked, delayed or refused as locked.
    pub fn admit(&self, t: &Throttles, now: DateTime<Utc>) -> Admission {
        if let Some(a) = self.live(t.account, now) {
            let until = a.last_failure_at + self.lock_for;
            if a.failures >= self.max_failures && until > now {
                return Admission::Locked { until };
            }
        }
        let mut wait_until: Option<DateTime<Utc>> = None;
        for (s, free) in [
            (t.pair, self.pair_free_failures),
            (t.address, self.address_free_failures),
        ] {
            if let Some(s) = self.live(s, now) {
                let until = s.last_failure_at + self.delay_after(s.failures, free);
                if until > now && wait_until.is_none_or(|w| until > w) {
                    wait_until = Some(until);
                }
            }
        }
        match wait_until {
            Some(until) => Admission::Wait { until },
            None => Admission::Go,
        }
    }

    /// Until when the address alone is delayed (its own count, whatever the account): what a
    /// server may remember in memory to answer a flood from that address without reading.
    pub fn address_wait(&self, t: &Throttles, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let s = self.live(t.address, now)?;
        let until = s.last_failure_at + self.delay_after(s.failures, self.address_free_failures);
        (until > now).then_some(until)
    }

    /// The standing shown for an account whose account-level count is `account`.
    pub fn standing(&self, account: Strikes) -> LoginStanding {
        LoginStanding {
            failed_logins: account.failures,
            locked_until: (account.failures >= self.max_failures)
                .then(|| account.last_failure_at + self.lock_for),
        }
    }

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

    fn strikes(failures: u32, at: DateTime<Utc>) -> Option<Strikes> {
        Some(Strikes {
            failures,
            last_failure_at: at,
        })
    }

    #[test]
    fn the_hundredth_failure_locks_the_account_for_thirty_minutes() {
        let p = LoginPolicy::default();
        let t = |n| Throttles {
            account: strikes(n, t0()),
            ..Throttles::default()
        };
        assert_eq!(p.admit(&t(99), t0()), Admission::Go);
        let until = t0() + Duration::minutes(30);
        assert_eq!(p.admit(&t(100), t0()), Admission::Locked { until });
        assert_eq!(
            p.admit(&t(100), t0() + Duration::minutes(29)),
            Admission::Locked { until }
        );
        assert_eq!(p.admit(&t(100), until), Admission::Go);
        // Beyond the limit every failure locks again: one guess per lock period.
        assert_eq!(
            p.standing(Strikes {
                failures: 101,
                last_failure_at: until
            })
            .locked_until,
            Some(until + Duration::minutes(30))
        );
        assert_eq!(
            p.standing(Strikes {
                failures: 99,
                last_failure_at: t0()
            })
            .locked_until,
            None
        );
        // A day without failures forgets the count.
        assert_eq!(p.admit(&t(100), t0() + Duration::hours(24)), Admission::Go);
        assert!(matches!(
            p.check_not_locked(
                p.standing(Strikes {
                    failures: 100,
                    last_failure_at: t0()
                }),
                t0()
            ),
            Err(DomainError::Locked { .. })
        ));
    }

    #[test]
    fn a_pair_is_delayed_after_five_failures_with_doubling_waits() {
        let p = LoginPolicy::default();
        let pair = |n| Throttles {
            pair: strikes(n, t0()),
            ..Throttles::default()
        };
        assert_eq!(p.admit(&pair(5), t0()), Admission::Go);
        for (n, secs) in [(6, 1), (7, 2), (8, 4), (9, 8), (15, 512)] {
            let until = t0() + Duration::seconds(secs);
            assert_eq!(p.admit(&pair(n), t0()), Admission::Wait { until }, "{n}");
            assert_eq!(p.admit(&pair(n), until), Admission::Go, "{n}");
        }
        // Capped at 15 minutes, however many (no overflow at u32::MAX).
        assert_eq!(
            p.admit(&pair(u32::MAX), t0()),
            Admission::Wait {
                until: t0() + Duration::minutes(15)
            }
        );
    }

    #[test]
    fn an_address_is_delayed_after_twenty_failures_over_all_accounts() {
        let p = LoginPolicy::default();
        let addr = |n| Throttles {
            address: strikes(n, t0()),
            ..Throttles::default()
        };
        assert_eq!(p.admit(&addr(20), t0()), Admission::Go);
        assert_eq!(
            p.admit(&addr(21), t0()),
            Admission::Wait {
                until: t0() + Duration::seconds(1)
            }
        );
        // The longer of two waits wins.
        let both = Throttles {
            pair: strikes(8, t0()),
            address: strikes(21, t0()),
            account: strikes(8, t0()),
        };
        assert_eq!(
            p.admit(&both, t0()),
            Admission::Wait {
                until: t0() + Duration::seconds(4)
            }
        );
    }

    #[test]
    fn account_keys_ignore_case_and_spaces_and_hide_the_name() {
        assert_eq!(account_key(" Nurse.Li "), account_key("nurse.li"));
        assert_ne!(account_key("nurse.li"), account_key("nurse.wu"));
        assert!(!account_key("nurse.li").contains("nurse"));
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

    fn ctx() -> PasswordContext<'static> {
        PasswordContext {
            username: "nurse.li",
            centre_name: "Yuxi Ping An Centre No. 1",
            centre_code: "YX01",
        }
    }

    fn why(pw: &str) -> String {
        check_new_password(pw, &ctx()).unwrap_err().to_string()
    }

    #[test]
    fn password_length_rule_names_the_field() {
        assert_eq!(why("short"), "password: password.too_short (min=12, got=5)");
        assert_eq!(
            why(&"ab1".repeat(90)),
            "password: password.too_long (max=256)"
        );
        assert!(check_new_password("twelve-chars", &ctx()).is_ok());
        // Characters, not bytes: 12 Chinese characters pass.
        assert!(check_new_password("每天都有进步真好我们一起", &ctx()).is_ok());
        // A passphrase with spaces is welcome.
        assert!(check_new_password("tea at four by the river", &ctx()).is_ok());
    }

    #[test]
    fn one_character_or_a_short_pattern_repeated_is_refused() {
        for pw in ["aaaaaaaaaaaa", "            ", "111111111111111"] {
            assert_eq!(why(pw), "password: password.repeated", "{pw:?}");
        }
        for pw in [
            "abcabcabcabc",
            "1212121212121212",
            "ab12ab12ab12",
            "安心安心安心安心安心安心",
        ] {
            assert_eq!(why(pw), "password: password.pattern", "{pw}");
        }
        for pw in ["123456789012", "abcdefghijklm", "zyxwvutsrqpo"] {
            assert_eq!(why(pw), "password: password.sequence", "{pw}");
        }
    }

    #[test]
    fn common_and_breached_passwords_are_refused() {
        assert!(is_common_password("password"));
        assert_eq!(why("password1234"), "password: password.common");
        assert_eq!(why("QWERTYUIOP123"), "password: password.common");
        assert_eq!(
            why("Sunshine2026!!"),
            "password: password.common_decorated (core=sunshine)"
        );
        assert_eq!(
            why("2026-dragon-2026"),
            "password: password.common_decorated (core=dragon)"
        );
        assert!(check_new_password("dragon fruit at dawn", &ctx()).is_ok());
    }

    #[test]
    fn the_username_the_centre_and_the_system_name_are_refused() {
        assert_eq!(
            why("Nurse.Li-2026-spring"),
            "password: password.has_username"
        );
        assert_eq!(
            why("nurseli-2026-spring"),
            "password: password.has_username"
        );
        let centre = "password: password.has_centre";
        assert_eq!(why("yx01-spring-tea"), centre);
        assert_eq!(why("my PING AN CENTRE NO. 1"), centre);
        assert_eq!(why("walking-in-yuxi"), centre);
        for pw in ["anxin-demo-2026", "我的安心密码很长很长很长"] {
            assert_eq!(why(pw), "password: password.has_system (name=anxin)");
        }
        // Short names are not context words ("li" alone is not refused).
        let short = PasswordContext {
            username: "li",
            centre_name: "",
            centre_code: "",
        };
        assert!(check_new_password("li-spring-tea-garden", &short).is_ok());
    }
}
