//! Staff accounts: creation, login standing (failed attempts, throttling, lockout), language,
//! activation.

use anxin_domain::auth::{account_key, LoginPolicy, LoginStanding, Strikes, Throttles};
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
    /// The password was set by someone else (a reset): its owner must change it first.
    pub must_change_password: bool,
    /// The person's real name ("" when not given).
    pub full_name: String,
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
    /// The person's real name (may be empty; at most 100 characters).
    pub full_name: String,
    pub role: Role,
    pub password_hash: String,
    pub language: String,
}

/// The interface languages an account can choose.
pub const LANGUAGES: [&str; 2] = ["zh-CN", "en"];

const USER_COLUMNS: &str = "id, site_id, username, role, language, active, failed_logins, \
                            locked_until, created_at, must_change_password, full_name";

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
        must_change_password: col::<i64>(row, "must_change_password")? != 0,
        full_name: col(row, "full_name")?,
    })
}

fn strikes(row: &AnyRow) -> Result<Strikes> {
    let failures: i64 = col(row, "failures")?;
    Ok(Strikes {
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        last_failure_at: from_ms(col(row, "last_failure_at")?)?,
    })
}

/// Who a login attempt named and where it came from, as throttling counts them.
#[derive(Debug, Clone, Copy)]
pub struct LoginAttempt<'a> {
    /// The username as typed.
    pub username: &'a str,
    /// [`account_key`] of `username`.
    pub account_key: &'a str,
    /// The client address (see `anxin_server::throttle::ClientAddr`), never empty.
    pub address: &'a str,
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
        let full_name = new.full_name.trim().to_owned();
        if full_name.chars().count() > 100 {
            return Err(DomainError::invalid("full_name", "at most 100 characters").into());
        }
        self.site(new.site_id).await?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO users (site_id, username, role, password_hash, language, created_at, \
             full_name) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {USER_COLUMNS}"
        ))
        .bind(new.site_id)
        .bind(new.username.clone())
        .bind(new.role.as_str().to_owned())
        .bind(new.password_hash)
        .bind(new.language)
        .bind(to_ms(now))
        .bind(full_name)
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

    /// The failure counts that decide whether a login attempt for `account_key` (see
    /// [`anxin_domain::auth::account_key`]) from `address` may go ahead.
    pub async fn login_throttles(&self, account_key: &str, address: &str) -> Result<Throttles> {
        let rows = sqlx::query(
            "SELECT account, address, failures, last_failure_at FROM login_throttle \
             WHERE (account = $1 AND (address = $2 OR address = '')) \
                OR (account = '' AND address = $2)",
        )
        .bind(account_key.to_owned())
        .bind(address.to_owned())
        .fetch_all(self.pool())
        .await?;
        let mut t = Throttles::default();
        for r in &rows {
            let (account, addr): (String, String) = (col(r, "account")?, col(r, "address")?);
            let s = strikes(r)?;
            match (account.is_empty(), addr.is_empty()) {
                (false, false) => t.pair = Some(s),
                (false, true) => t.account = Some(s),
                (true, false) => t.address = Some(s),
                (true, true) => {}
            }
        }
        Ok(t)
    }

    /// Records a refused login: counts it at the three throttling levels, mirrors the
    /// account-wide standing onto a known account (what managers see and unlock), and audits
    /// it. Known and unknown usernames do the same work. Returns the account-wide standing.
    pub async fn login_failed(
        &self,
        user: Option<&User>,
        attempt: &LoginAttempt<'_>,
        policy: &LoginPolicy,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginStanding> {
        let mut tx = self.begin_write().await?;
        let forget_before = to_ms(now - policy.forget_after);
        let mut account = None;
        for (acc, addr) in [
            (attempt.account_key, attempt.address),
            (attempt.account_key, ""),
            ("", attempt.address),
        ] {
            let row = sqlx::query(
                "INSERT INTO login_throttle (account, address, failures, last_failure_at) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT (account, address) DO UPDATE SET \
                 failures = CASE WHEN login_throttle.last_failure_at <= $4 THEN 1 \
                                 ELSE login_throttle.failures + 1 END, \
                 last_failure_at = $3 RETURNING failures, last_failure_at",
            )
            .bind(acc.to_owned())
            .bind(addr.to_owned())
            .bind(to_ms(now))
            .bind(forget_before)
            .fetch_one(&mut *tx)
            .await?;
            if addr.is_empty() {
                account = Some(strikes(&row)?);
            }
        }
        // Counts nobody would read any more (bounded by the index).
        sqlx::query("DELETE FROM login_throttle WHERE last_failure_at <= $1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        let standing = match account {
            Some(a) => policy.standing(a),
            None => policy.after_success(),
        };
        let (actor, record_id, mut reason) = match user {
            Some(user) => {
                sqlx::query("UPDATE users SET failed_logins = $1, locked_until = $2 WHERE id = $3")
                    .bind(i64::from(standing.failed_logins))
                    .bind(standing.locked_until.map(to_ms))
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
                (
                    Actor {
                        user_id: Some(user.id),
                        name: user.username.clone(),
                        site_id: Some(user.site_id),
                    },
                    user.id.to_string(),
                    why.to_owned(),
                )
            }
            None => {
                // The attempted name is kept short: people sometimes type a password into it.
                let shown: String = attempt.username.chars().take(3).collect();
                (
                    Actor {
                        user_id: None,
                        name: "unknown".into(),
                        site_id: None,
                    },
                    String::new(),
                    format!("unknown username {shown}…"),
                )
            }
        };
        reason.push_str(&format!("; {} failed in a row", standing.failed_logins));
        if let Some(until) = standing.locked_until {
            reason.push_str(&format!("; locked until {}", until.to_rfc3339()));
        }
        append(
            &mut tx,
            &actor,
            &AuditEvent::new("login.failed", "user", record_id).reason(reason),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(standing)
    }

    /// Records an attempt refused before any password check because the account is locked
    /// (audited, uncounted: the lock already holds it).
    pub async fn login_refused_locked(
        &self,
        user: Option<&User>,
        attempt: &LoginAttempt<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (actor, record_id) = match user {
            Some(u) => (
                Actor {
                    user_id: Some(u.id),
                    name: u.username.clone(),
                    site_id: Some(u.site_id),
                },
                u.id.to_string(),
            ),
            None => (
                Actor {
                    user_id: None,
                    name: "unknown".into(),
                    site_id: None,
                },
                String::new(),
            ),
        };
        let shown: String = attempt.username.chars().take(3).collect();
        let reason = match user {
            Some(_) => "account locked".to_owned(),
            None => format!("account locked; unknown username {shown}…"),
        };
        self.audit(
            &actor,
            AuditEvent::new("login.failed", "user", record_id).reason(reason),
            now,
        )
        .await?;
        Ok(())
    }

    /// Records a successful login: clears the failure counts of the account (everywhere and
    /// from this address), stores the session, audits it.
    pub async fn login_succeeded(
        &self,
        user: &User,
        session: &Session,
        address: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM login_throttle WHERE account = $1 AND (address = $2 OR address = '')",
        )
        .bind(account_key(&user.username))
        .bind(address.to_owned())
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
        // Every count of the account, from every address: the owner can log in at once.
        sqlx::query("DELETE FROM login_throttle WHERE account = $1")
            .bind(account_key(&target.username))
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

    /// Gives an account another role, audited as `staff.role`; its sessions end, so that the
    /// new permissions apply from the next login.
    pub async fn set_user_role(
        &self,
        actor: &Actor,
        target: &User,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
            .bind(role.as_str().to_owned())
            .bind(target.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(target.id)
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("staff.role", "user", target.id)
                .site(target.site_id)
                .reason(format!("{} → {}", target.role, role)),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the person's real name on an account (empty clears it). Audited as `staff.rename`
    /// with the old and new names (staff names are not client data).
    pub async fn set_full_name(
        &self,
        actor: &Actor,
        target: &User,
        full_name: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET full_name = $1 WHERE id = $2")
            .bind(full_name.to_owned())
            .bind(target.id)
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("staff.rename", "user", target.id)
                .site(target.site_id)
                .reason(format!("{} → {}", target.full_name, full_name)),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a password: by a manager (`must_change`: a reset, the owner changes it at the next
    /// login; the account's sessions end and its lockout is lifted) or by the owner. Audited as
    /// `staff.password.reset` or `staff.password.change`.
    pub async fn set_password(
        &self,
        actor: &Actor,
        target: &User,
        password_hash: &str,
        must_change: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = $2, failed_logins = 0, \
             locked_until = NULL WHERE id = $3",
        )
        .bind(password_hash.to_owned())
        .bind(i64::from(must_change))
        .bind(target.id)
        .execute(&mut *tx)
        .await?;
        if must_change {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(target.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM login_throttle WHERE account = $1")
                .bind(account_key(&target.username))
                .execute(&mut *tx)
                .await?;
        }
        let action = if must_change {
            "staff.password.reset"
        } else {
            "staff.password.change"
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
