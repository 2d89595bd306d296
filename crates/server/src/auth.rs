//! Authentication: Argon2id password hashes, session tokens (cookie or bearer), the login
//! procedure with lockout, and the [`CurrentUser`] every guarded handler receives.

use anxin_domain::auth::check_new_password;
use anxin_domain::{DomainError, Role};
use anxin_storage::{Actor, Session, Site, User};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "anxin_session";

fn argon2() -> AppResult<Argon2<'static>> {
    // OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19_456, 2, 1, None).map_err(|_| AppError::Internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password policy and hashes the password (on a blocking thread).
pub async fn hash_password(password: &str) -> AppResult<String> {
    check_new_password(password)?;
    hash_any(password).await
}

/// Hashes without the policy check (also used to spend a login's time on unknown usernames).
async fn hash_any(password: &str) -> AppResult<String> {
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

/// Whether `password` matches `hash` (on a blocking thread). A malformed hash never matches.
pub async fn verify_password(hash: &str, password: &str) -> AppResult<bool> {
    let (hash, password) = (hash.to_owned(), password.to_owned());
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return Ok(false);
        };
        Ok(argon2()?
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|_| AppError::Internal)?
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

/// Checks a username and password, applying the lockout policy; every attempt is audited.
pub async fn login(state: &AppState, username: &str, password: &str) -> AppResult<LoggedIn> {
    let refused = || {
        AppError::from(DomainError::Unauthenticated(
            "wrong username or password".into(),
        ))
    };
    let now = state.now();
    let Some(found) = state.store.user_auth(username.trim()).await? else {
        // Spend the same time as a real check so that timing does not reveal usernames.
        let _ = hash_any(password).await?;
        state.store.login_unknown(username, now).await?;
        return Err(refused());
    };
    let user = found.user;
    let policy = state.settings.login;
    if !user.active {
        state
            .store
            .login_failed(&user, user.standing, "inactive account", now)
            .await?;
        return Err(refused());
    }
    if let Err(locked) = policy.check_not_locked(user.standing, now) {
        state
            .store
            .login_failed(&user, user.standing, "account locked", now)
            .await?;
        return Err(locked.into());
    }
    if !verify_password(&found.password_hash, password).await? {
        let standing = policy.after_failure(user.standing, now);
        state
            .store
            .login_failed(&user, standing, "wrong password", now)
            .await?;
        if let Err(locked) = policy.check_not_locked(standing, now) {
            return Err(locked.into());
        }
        return Err(refused());
    }
    let token = new_token();
    let csrf_token = new_token();
    let session = Session {
        token_hash: token_hash(&token),
        user_id: user.id,
        csrf_token: csrf_token.clone(),
        created_at: now,
        last_seen_at: now,
    };
    state.store.login_succeeded(&user, &session, now).await?;
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
