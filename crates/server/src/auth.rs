//! Authentication as HTTP sees it: the session token a request carries (cookie or bearer),
//! its cookies, and the [`CurrentUser`] every guarded handler receives. Passwords, the login
//! procedure and sessions are use cases of the application core (`anxin_app::sessions`,
//! `anxin_app::passwords`).

use anxin_app::records::{Site, User};
use anxin_domain::{DomainError, Role};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

pub use anxin_app::sessions::{new_token, same_token, LoggedIn};

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::throttle::ClientAddr;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "anxin_session";

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
    let a = anxin_app::sessions::authenticate(&state.app, &token).await?;
    Ok(Some(CurrentUser {
        user: a.user,
        site: a.site,
        token_hash: a.token_hash,
        csrf_token: a.csrf_token,
        via,
    }))
}

/// Checks a username and password from `address` (`anxin_app::sessions::login`).
pub async fn login(
    state: &AppState,
    address: &ClientAddr,
    username: &str,
    password: &str,
) -> AppResult<LoggedIn> {
    Ok(anxin_app::sessions::login(&state.app, &address.0, username, password).await?)
}

/// Ends the session.
pub async fn logout(state: &AppState, me: &CurrentUser) -> AppResult<()> {
    Ok(anxin_app::sessions::logout(&state.app, &me.app_actor(), &me.token_hash).await?)
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
