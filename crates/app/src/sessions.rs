//! Staff sessions: the login procedure (throttling, lockout, the hashing bound), resolving a
//! presented session token to its account, and logout. The HTTP adapter only carries the token
//! (cookie or bearer) and the client's address.

use anxin_domain::auth::{account_key, Admission};
use anxin_domain::DomainError;
use anxin_storage::users::LoginAttempt;
use anxin_storage::{AuditEvent, Session, Site, User};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::passwords::{gate, verify_password};
use crate::{App, Error, Result};

/// A fresh random token (256 bits, URL-safe base64).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time string comparison for tokens and passwords.
pub fn same_token(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The account behind a live session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub site: Site,
    pub token_hash: String,
    pub csrf_token: String,
}

impl Authenticated {
    /// The account as the use cases know it.
    pub fn actor(&self) -> crate::Actor {
        crate::Actor {
            user_id: self.user.id,
            username: self.user.username.clone(),
            role: self.user.role,
            site_id: self.user.site_id,
        }
    }
}

fn expired() -> Error {
    DomainError::Unauthenticated("session expired; log in again".into()).into()
}

/// Resolves a presented session token: its account and centre, or `unauthenticated` when the
/// session is unknown, past its idle or absolute limit, or its account inactive. Slides the
/// idle timer forward.
pub async fn authenticate(app: &App, token: &str) -> Result<Authenticated> {
    let hash = token_hash(token);
    let Some(session) = app.store.session(&hash).await? else {
        return Err(expired());
    };
    let now = app.now();
    if !app
        .settings
        .session
        .is_live(session.created_at, session.last_seen_at, now)
    {
        app.store.delete_session(&hash).await?;
        return Err(expired());
    }
    let user = app.store.user(session.user_id).await?;
    if !user.active {
        return Err(expired());
    }
    // One write per quarter minute is enough to keep the idle timer honest.
    if now - session.last_seen_at > chrono::Duration::seconds(15) {
        app.store.touch_session(&hash, now).await?;
    }
    let site = app.store.site(user.site_id).await?;
    Ok(Authenticated {
        user,
        site,
        token_hash: hash,
        csrf_token: session.csrf_token,
    })
}

/// A successful login: the account, its centre, the session token to hand out, and its CSRF
/// token.
pub struct LoggedIn {
    pub user: User,
    pub site: Site,
    pub token: String,
    pub csrf_token: String,
}

/// A well-formed Argon2id hash (same parameters as real ones) that no password matches:
/// an unknown username is verified against it, so it costs exactly what a known one costs.
pub(crate) const NO_ACCOUNT_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Addresses whose logins are delayed by their own count, remembered until the delay ends: a
/// flood from one address is answered 429 from memory, without reading the database and after a
/// short tarpit, so it can take neither the pool nor the processors from the nurses at the
/// window. Bounded: past [`MAX_HOLDS`] addresses the ended holds are dropped, then (a flood from
/// very many addresses) new ones are not remembered and those attempts take the ordinary path.
#[derive(Default)]
pub struct Holds(std::sync::Mutex<std::collections::HashMap<String, DateTime<Utc>>>);

/// The most addresses remembered at once.
const MAX_HOLDS: usize = 10_000;

/// The longest a held address waits for its 429.
const HOLD_TARPIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Holds {
    fn until(&self, address: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let holds = self.0.lock().unwrap_or_else(|p| p.into_inner());
        holds.get(address).copied().filter(|u| *u > now)
    }

    fn hold(&self, address: &str, until: DateTime<Utc>, now: DateTime<Utc>) {
        let mut holds = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if holds.len() >= MAX_HOLDS {
            holds.retain(|_, u| *u > now);
        }
        if holds.len() < MAX_HOLDS {
            holds.insert(address.to_owned(), until);
        }
    }
}

/// Seconds to announce for a wait until `until` (at least 1).
fn retry_after(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(0);
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

/// Checks a username and password from `address`, under the throttling policy
/// ([`anxin_domain::auth::LoginPolicy`]) and the hashing bound ([`crate::passwords`]).
///
/// An unknown username takes the same path as a known one with a wrong password: the same
/// reads, one Argon2id verification, the same counts and the same answers (unauthenticated,
/// then [`Error::Busy`] with a retry time while delayed, locked once the account-wide limit is
/// reached). Attempts refused as busy are not checked, counted or audited (a flood must not
/// become a flood of writes); every other attempt is audited.
pub async fn login(app: &App, address: &str, username: &str, password: &str) -> Result<LoggedIn> {
    let refused = || {
        Error::from(DomainError::Unauthenticated(
            "wrong username or password".into(),
        ))
    };
    let now = app.now();
    if let Some(until) = app.login_holds.until(address, now) {
        // A tarpit: the answer itself waits (up to a second), so a flood from one address over
        // many connections cannot spin the server at tens of thousands of answers a second.
        let wait = (until - now).to_std().unwrap_or_default().min(HOLD_TARPIT);
        tokio::time::sleep(wait).await;
        return Err(Error::Busy {
            retry_after_secs: retry_after(until, now),
        });
    }
    let gate = gate();
    let _in_flight = match gate.enter() {
        Ok(permit) => permit,
        Err(busy) => {
            // The same tarpit when too many logins are in flight: answered at once, a flood
            // over many connections spins at tens of thousands of 429s a second and takes the
            // processors from the window; waiting costs a timer, no processor.
            tokio::time::sleep(HOLD_TARPIT).await;
            return Err(busy);
        }
    };
    let policy = app.settings.login;
    let name = username.trim();
    let key = account_key(name);
    let attempt = LoginAttempt {
        username: name,
        account_key: &key,
        address,
    };
    let throttles = app.store.login_throttles(&key, address).await?;
    let found = app.store.user_auth(name).await?;
    let user = found.as_ref().map(|f| &f.user);
    match policy.admit(&throttles, now) {
        Admission::Go => {}
        Admission::Wait { until } => {
            if let Some(held) = policy.address_wait(&throttles, now) {
                // Said once per hold, not once per attempt of a flood.
                tracing::info!(address, until = %held, "logins from this address delayed");
                app.login_holds.hold(address, held, now);
            }
            return Err(Error::Busy {
                retry_after_secs: retry_after(until, now),
            });
        }
        Admission::Locked { until } => {
            app.store.login_refused_locked(user, &attempt, now).await?;
            return Err(DomainError::Locked { until }.into());
        }
    }
    let matches = {
        let _slot = gate.login_slot().await?;
        let hash = found.as_ref().map_or(NO_ACCOUNT_HASH, |f| &f.password_hash);
        verify_password(hash, password).await?
    };
    let why = match user {
        None => "unknown username",
        Some(u) if !u.active => "inactive account",
        Some(_) if !matches => "wrong password",
        Some(u) => {
            let user = u.clone();
            return start_session(app, user, address, now).await;
        }
    };
    let standing = app
        .store
        .login_failed(user, &attempt, &policy, why, now)
        .await?;
    policy.check_not_locked(standing, now)?;
    Err(refused())
}

async fn start_session(
    app: &App,
    user: User,
    address: &str,
    now: DateTime<Utc>,
) -> Result<LoggedIn> {
    let token = new_token();
    let csrf_token = new_token();
    let session = Session {
        token_hash: token_hash(&token),
        user_id: user.id,
        csrf_token: csrf_token.clone(),
        created_at: now,
        last_seen_at: now,
    };
    app.store
        .login_succeeded(&user, &session, address, now)
        .await?;
    let site = app.store.site(user.site_id).await?;
    Ok(LoggedIn {
        user,
        site,
        token,
        csrf_token,
    })
}

/// Ends the session whose token hashes to `token_hash`.
pub async fn logout(app: &App, me: &crate::Actor, token_hash: &str) -> Result<()> {
    app.store.delete_session(token_hash).await?;
    app.store
        .audit(
            &me.audit(),
            AuditEvent::new("logout", "user", me.user_id),
            app.now(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let t = Utc::now();
        assert_eq!(retry_after(t, t), 1);
        assert_eq!(retry_after(t + chrono::Duration::milliseconds(1001), t), 2);
        assert_eq!(retry_after(t + chrono::Duration::seconds(900), t), 900);
    }
}
