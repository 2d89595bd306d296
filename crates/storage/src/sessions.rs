//! Login sessions. Only a hash of each session token is stored, so a copy of the database
//! does not let anyone log in.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use crate::{col, from_ms, to_ms, Result, Store};

/// A stored session.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub user_id: i64,
    /// The token forms and cookie-authenticated API calls must echo back.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .finish_non_exhaustive()
    }
}

pub(crate) async fn insert_session(conn: &mut AnyConnection, s: &Session) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(s.token_hash.clone())
    .bind(s.user_id)
    .bind(s.csrf_token.clone())
    .bind(to_ms(s.created_at))
    .bind(to_ms(s.last_seen_at))
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The session with this token hash, if any.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, csrf_token, created_at, last_seen_at FROM sessions \
             WHERE token_hash = $1",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Session {
                token_hash: col(&r, "token_hash")?,
                user_id: col(&r, "user_id")?,
                csrf_token: col(&r, "csrf_token")?,
                created_at: from_ms(col(&r, "created_at")?)?,
                last_seen_at: from_ms(col(&r, "last_seen_at")?)?,
            })
        })
        .transpose()
    }

    /// Marks a session as used at `now` (resets its idle timer).
    pub async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(to_ms(now))
            .bind(token_hash.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends a session (logout or expiry).
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
