//! Staff accounts: creation, login standing (failed attempts, lockout), language, activation.

use anxin_domain::auth::LoginStanding;
use anxin_domain::{validate, DomainError, Role};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;

use crate::audit::{append, Actor, AuditEvent};
use crate::sessions::{insert_session, Session};
use crate::{col, conflict_on_unique, from_ms, to_ms, Result, Store, StoreError};

/// A staff account as the application sees it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub site_id: i64,
    pub username: String,
    pub role: Role,
    pub language: String,
    pub active: bool,
    pub standing: LoginStanding,
    pub created_at: DateTime<Utc>,
}

/// An account together with what login needs: the stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserAuth {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for UserAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAuth")
            .field("user", &self.user)
            .field("password_hash", &"***")
            .finish()
    }
}

/// What is needed to create an account. The password arrives already hashed.
#[derive(Clone)]
pub struct NewUser {
    pub site_id: i64,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    pub language: String,
}

/// The interface languages an account can choose.
pub const LANGUAGES: [&str; 2] = ["zh-CN", "en"];

const USER_COLUMNS: &str = "id, site_id, username, role, language, active, failed_logins, \
                            locked_until, created_at";

fn user(row: &AnyRow) -> Result<User> {
    let role: String = col(row, "role")?;
    let failed: i64 = col(row, "failed_logins")?;
    let locked: Option<i64> = col(row, "locked_until")?;
    let active: i64 = col(row, "active")?;
    Ok(User {
        id: col(row, "id")?,
        site_id: col(row, "site_id")?,
        username: col(row, "username")?,
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("unknown role `{role}` in users")))?,
        language: col(row, "language")?,
        active: active != 0,
        standing: LoginStanding {
            failed_logins: u32::try_from(failed).unwrap_or(u32::MAX),
            locked_until: locked.map(from_ms).transpose()?,
        },
        created_at: from_ms(col(row, "created_at")?)?,
    })
}

fn check_language(lang: &str) -> Result<()> {
    if LANGUAGES.contains(&lang) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "language",
            format!("`{lang}` is not offered; choose zh-CN or en"),
        )
        .into())
    }
}

impl Store {
    /// Creates a staff account; audited. The username must be new in the whole deployment.
    pub async fn create_user(
        &self,
        actor: &Actor,
        new: NewUser,
        now: DateTime<Utc>,
    ) -> Result<User> {
        validate::username(&new.username)?;
        check_language(&new.language)?;
        self.site(new.site_id).await?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO users (site_id, username, role, password_hash, language, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
        ))
        .bind(new.site_id)
        .bind(new.username.clone())
        .bind(new.role.as_str().to_owned())
        .bind(new.password_hash)
        .bind(new.language)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(e, format!("username {} is already taken", new.username))
        })?;
        let created = user(&row)?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("staff.create", "user", created.id)
                .site(created.site_id)
                .reason(format!("{} as {}", created.username, created.role)),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The account and its password hash, for login. `None` if no such username.
    pub async fn user_auth(&self, username: &str) -> Result<Option<UserAuth>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"
        ))
        .bind(username.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(UserAuth {
                user: user(&r)?,
                password_hash: col(&r, "password_hash")?,
            })
        })
        .transpose()
    }

    /// The account with this id.
    pub async fn user(&self, id: i64) -> Result<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => user(&r),
            None => Err(DomainError::NotFound(format!("staff account {id}")).into()),
        }
    }

    /// The accounts of one site, by username.
    pub async fn users_of_site(&self, site_id: i64) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE site_id = $1 ORDER BY username"
        ))
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(user).collect()
    }

    /// Records a refused login (wrong password, locked or inactive account) with the new standing.
    pub async fn login_failed(
        &self,
        user: &User,
        standing: LoginStanding,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET failed_logins = $1, locked_until = $2 WHERE id = $3")
            .bind(i64::from(standing.failed_logins))
            .bind(standing.locked_until.map(to_ms))
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        let actor = Actor {
            user_id: Some(user.id),
            name: user.username.clone(),
            site_id: Some(user.site_id),
        };
        let mut reason = format!("{why}; {} failed in a row", standing.failed_logins);
        if let Some(until) = standing.locked_until {
            reason.push_str(&format!("; locked until {}", until.to_rfc3339()));
        }
        append(
            &mut tx,
            &actor,
            &AuditEvent::new("login.failed", "user", user.id).reason(reason),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a login with an unknown username (no account to update).
    pub async fn login_unknown(&self, username: &str, now: DateTime<Utc>) -> Result<()> {
        let actor = Actor {
            user_id: None,
            name: "unknown".into(),
            site_id: None,
        };
        // The attempted name is kept short: people sometimes type a password into it.
        let shown: String = username.chars().take(3).collect();
        self.audit(
            &actor,
            AuditEvent::new("login.failed", "user", "")
                .reason(format!("unknown username {shown}…")),
            now,
        )
        .await?;
        Ok(())
    }

    /// Records a successful login: clears the failure count, stores the session, audits it.
    pub async fn login_succeeded(
        &self,
        user: &User,
        session: &Session,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        insert_session(&mut tx, session).await?;
        let actor = Actor {
            user_id: Some(user.id),
            name: user.username.clone(),
            site_id: Some(user.site_id),
        };
        append(
            &mut tx,
            &actor,
            &AuditEvent::new("login", "user", user.id),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remembers the interface language an account chose.
    pub async fn set_language(&self, user_id: i64, language: &str) -> Result<()> {
        check_language(language)?;
        sqlx::query("UPDATE users SET language = $1 WHERE id = $2")
            .bind(language.to_owned())
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Lifts a lockout early (a manager's action); audited.
    pub async fn unlock_user(
        &self,
        actor: &Actor,
        target: &User,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(target.id)
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("staff.unlock", "user", target.id).site(target.site_id),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns an account on or off; turning it off ends its sessions. Audited.
    pub async fn set_user_active(
        &self,
        actor: &Actor,
        target: &User,
        active: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET active = $1 WHERE id = $2")
            .bind(i64::from(active))
            .bind(target.id)
            .execute(&mut *tx)
            .await?;
        if !active {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(target.id)
                .execute(&mut *tx)
                .await?;
        }
        let action = if active {
            "staff.activate"
        } else {
            "staff.deactivate"
        };
        append(
            &mut tx,
            actor,
            &AuditEvent::new(action, "user", target.id).site(target.site_id),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
