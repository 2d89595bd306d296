//! Authentication: Argon2id password hashes, session tokens (cookie or bearer), the login
//! procedure with throttling and lockout, and the [`CurrentUser`] every guarded handler
//! receives.

use anxin_domain::auth::{account_key, check_new_password, Admission, PasswordContext};
use anxin_domain::{DomainError, Role};
use anxin_storage::users::LoginAttempt;
use anxin_storage::{Actor, Session, Site, User};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::throttle::{self, ClientAddr};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "anxin_session";

fn argon2() -> AppResult<Argon2<'static>> {
    // OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19_456, 2, 1, None).map_err(|_| AppError::Internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password policy (`anxin_domain::auth::check_new_password`: length, repetition,
/// the username and centre, the common and breached list) and hashes the password (on a
/// blocking thread).
pub async fn hash_password(password: &str, context: &PasswordContext<'_>) -> AppResult<String> {
    check_new_password(password, context)?;
    hash_any(password).await
}

/// Hashes the demo centre's published password **without the policy check**: it is the one
/// password the policy must refuse (it is printed in the README and names the system), and
/// only `serve --demo` (`crate::demo`) may use it, for the demo accounts it creates.
pub async fn hash_demo_password(password: &str) -> AppResult<String> {
    hash_any(password).await
}

/// Hashes without the policy check, in one of the process's hashing slots.
async fn hash_any(password: &str) -> AppResult<String> {
    let _slot = throttle::gate().slot().await?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| AppError::Internal)
    })
    .await
    .map_err(|_| AppError::Internal)?
}

/// Argon2 working memory (19 MiB a hash) kept for reuse. Allocated and freed per hash, the
/// allocator's growing mmap threshold left it in the heap: a flood of 2,000 logins with only
/// two hashes at a time still ended at 390 MB resident; reused, the memory stays at
/// "hashing slots × 19 MiB". At most one buffer per hashing slot is ever out at once.
static ARGON2_MEMORY: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());

fn with_argon2_memory<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let mut memory = ARGON2_MEMORY
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_default();
    memory.resize(blocks, Block::default());
    let out = f(&mut memory);
    if let Ok(mut pool) = ARGON2_MEMORY.lock() {
        if pool.len() < throttle::gate().permits() {
            pool.push(memory);
        }
    }
    out
}

/// Whether `password` matches the PHC string `hash`, computed in reused memory. A malformed
/// hash never matches. Same computation as `argon2`'s `PasswordVerifier`.
fn verify_in_place(hash: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = with_argon2_memory(params.block_count(), |memory| {
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, &mut out, memory)
    });
    use subtle::ConstantTimeEq;
    computed.is_ok() && bool::from(expected.as_bytes().ct_eq(&out))
}

/// Whether `password` matches `hash` (on a blocking thread). A malformed hash never matches.
pub async fn verify_password(hash: &str, password: &str) -> AppResult<bool> {
    let (hash, password) = (hash.to_owned(), password.to_owned());
    tokio::task::spawn_blocking(move || verify_in_place(&hash, password.as_bytes()))
        .await
        .map_err(|_| AppError::Internal)
}

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

/// Constant-time string comparison for tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The browser's session cookie: unsafe methods need the CSRF token too.
    Cookie,
    /// `Authorization: Bearer`: not sent by browsers on their own, so no CSRF check.
    Bearer,
}

/// The logged-in staff member of this request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub site: Site,
    pub token_hash: String,
    pub csrf_token: String,
    pub via: Via,
}

impl CurrentUser {
    /// The actor recorded in the audit trail.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.id),
            name: self.user.username.clone(),
            site_id: Some(self.user.site_id),
        }
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The caller as the application core knows it.
    pub fn app_actor(&self) -> anxin_app::Actor {
        anxin_app::Actor {
            user_id: self.user.id,
            username: self.user.username.clone(),
            role: self.user.role,
            site_id: self.user.site_id,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(|| DomainError::Unauthenticated("log in first".into()).into())
    }
}

/// The session token a request carries, and how.
pub fn presented_token(headers: &HeaderMap) -> Option<(String, Via)> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some((t.trim().to_owned(), Via::Bearer));
        }
    }
    cookie(headers, SESSION_COOKIE).map(|t| (t, Via::Cookie))
}

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Resolves the caller: `Ok(None)` when no token was presented, an error when it is not (or
/// no longer) valid. Slides the idle timer forward.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> AppResult<Option<CurrentUser>> {
    let Some((token, via)) = presented_token(headers) else {
        return Ok(None);
    };
    let hash = token_hash(&token);
    let expired = || {
        AppError::from(DomainError::Unauthenticated(
            "session expired; log in again".into(),
        ))
    };
    let Some(session) = state.store.session(&hash).await? else {
        return Err(expired());
    };
    let now = state.now();
    if !state
        .settings
        .session
        .is_live(session.created_at, session.last_seen_at, now)
    {
        state.store.delete_session(&hash).await?;
        return Err(expired());
    }
    let user = state.store.user(session.user_id).await?;
    if !user.active {
        return Err(expired());
    }
    // One write per quarter minute is enough to keep the idle timer honest.
    if now - session.last_seen_at > chrono::Duration::seconds(15) {
        state.store.touch_session(&hash, now).await?;
    }
    let site = state.store.site(user.site_id).await?;
    Ok(Some(CurrentUser {
        user,
        site,
        token_hash: hash,
        csrf_token: session.csrf_token,
        via,
    }))
}

/// A successful login: the account, the session token to hand out, and its CSRF token.
pub struct LoggedIn {
    pub user: User,
    pub token: String,
    pub csrf_token: String,
}

/// A well-formed Argon2id hash (same parameters as real ones) that no password matches:
/// an unknown username is verified against it, so it costs exactly what a known one costs.
const NO_ACCOUNT_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Seconds to announce in `Retry-After` for a wait until `until` (at least 1).
fn retry_after(until: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(0);
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

/// Checks a username and password from `address`, under the throttling policy
/// ([`anxin_domain::auth::LoginPolicy`]) and the hashing bound ([`crate::throttle`]).
///
/// An unknown username takes the same path as a known one with a wrong password: the same
/// reads, one Argon2id verification, the same counts and the same answers (401, then 429 with
/// `Retry-After` while delayed, 423 once the account-wide limit is reached). Attempts answered
/// 429 are not checked, counted or audited (a flood must not become a flood of writes); every
/// other attempt is audited.
pub async fn login(
    state: &AppState,
    address: &ClientAddr,
    username: &str,
    password: &str,
) -> AppResult<LoggedIn> {
    let refused = || {
        AppError::from(DomainError::Unauthenticated(
            "wrong username or password".into(),
        ))
    };
    let gate = throttle::gate();
    let _in_flight = gate.enter()?;
    let now = state.now();
    let policy = state.settings.login;
    let name = username.trim();
    let key = account_key(name);
    let attempt = LoginAttempt {
        username: name,
        account_key: &key,
        address: &address.0,
    };
    let throttles = state.store.login_throttles(&key, &address.0).await?;
    let found = state.store.user_auth(name).await?;
    let user = found.as_ref().map(|f| &f.user);
    match policy.admit(&throttles, now) {
        Admission::Go => {}
        Admission::Wait { until } => {
            tracing::info!(address = %address.0, "login attempt delayed by throttling");
            return Err(AppError::TooManyRequests {
                retry_after_secs: retry_after(until, now),
            });
        }
        Admission::Locked { until } => {
            state
                .store
                .login_refused_locked(user, &attempt, now)
                .await?;
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
            return start_session(state, user, &address.0, now).await;
        }
    };
    let standing = state
        .store
        .login_failed(user, &attempt, &policy, why, now)
        .await?;
    policy.check_not_locked(standing, now)?;
    Err(refused())
}

async fn start_session(
    state: &AppState,
    user: User,
    address: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<LoggedIn> {
    let token = new_token();
    let csrf_token = new_token();
    let session = Session {
        token_hash: token_hash(&token),
        user_id: user.id,
        csrf_token: csrf_token.clone(),
        created_at: now,
        last_seen_at: now,
    };
    state
        .store
        .login_succeeded(&user, &session, address, now)
        .await?;
    Ok(LoggedIn {
        user,
        token,
        csrf_token,
    })
}

/// Ends the session.
pub async fn logout(state: &AppState, me: &CurrentUser) -> AppResult<()> {
    state.store.delete_session(&me.token_hash).await?;
    state
        .store
        .audit(
            &me.actor(),
            anxin_storage::AuditEvent::new("logout", "user", me.user.id),
            state.now(),
        )
        .await?;
    Ok(())
}

/// The `Set-Cookie` value that stores a session token.
pub fn session_cookie(state: &AppState, token: &str) -> String {
    let secure = if state.settings.behind_tls {
        "; Secure"
    } else {
        ""
    };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_account_hash_is_well_formed_so_it_costs_a_full_verification() {
        let parsed = PasswordHash::new(NO_ACCOUNT_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).unwrap();
        let ours = argon2().unwrap();
        let cost = |p: &Params| (p.m_cost(), p.t_cost(), p.p_cost());
        assert_eq!(cost(&params), cost(ours.params()));
        assert_eq!(parsed.hash.map(|h| h.len()), Some(32));
    }

    #[tokio::test]
    async fn verifying_in_reused_memory_matches_only_the_right_password() {
        let hash = hash_any("correct-horse-battery").await.unwrap();
        for _ in 0..3 {
            assert!(verify_password(&hash, "correct-horse-battery")
                .await
                .unwrap());
            assert!(!verify_password(&hash, "correct-horse-batterx")
                .await
                .unwrap());
        }
        // The crate's own verifier agrees.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(argon2()
            .unwrap()
            .verify_password(b"correct-horse-battery", &parsed)
            .is_ok());
        assert!(!verify_password("$argon2id$v=19$garbage", "x")
            .await
            .unwrap());
        assert!(!verify_password(NO_ACCOUNT_HASH, "anything").await.unwrap());
        let other = hash.replace("m=19456", "m=8192");
        assert!(!verify_password(&other, "correct-horse-battery")
            .await
            .unwrap());
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let t = chrono::Utc::now();
        assert_eq!(retry_after(t, t), 1);
        assert_eq!(retry_after(t + chrono::Duration::milliseconds(1001), t), 2);
        assert_eq!(retry_after(t + chrono::Duration::seconds(900), t), 900);
    }
}
