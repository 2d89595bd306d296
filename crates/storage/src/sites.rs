//! Sites (centres) of a deployment.

use anxin_domain::{validate, DomainError};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;

use crate::audit::{append, Actor, AuditEvent};
use crate::{col, conflict_on_unique, from_ms, to_ms, Result, Store};

/// One centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

fn site(row: &AnyRow) -> Result<Site> {
    Ok(Site {
        id: col(row, "id")?,
        code: col(row, "code")?,
        name: col(row, "name")?,
        created_at: from_ms(col(row, "created_at")?)?,
    })
}

impl Store {
    /// Creates a site after validating its code and name; audited.
    pub async fn create_site(
        &self,
        actor: &Actor,
        code: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Site> {
        validate::site_code(code)?;
        validate::site_name(name)?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO sites (code, name, created_at) VALUES ($1, $2, $3) \
             RETURNING id, code, name, created_at",
        )
        .bind(code.to_owned())
        .bind(name.trim().to_owned())
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, format!("a site with code {code} already exists")))?;
        let created = site(&row)?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("site.create", "site", created.id)
                .site(created.id)
                .reason(format!("code {code}")),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The site with this code as typed (trimmed, any case: codes are stored in capitals), or
    /// a not-found error naming it.
    pub async fn site_by_code(&self, code: &str) -> Result<Site> {
        let code = code.trim().to_uppercase();
        let row = sqlx::query("SELECT id, code, name, created_at FROM sites WHERE code = $1")
            .bind(code.clone())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => site(&r),
            None => Err(DomainError::NotFound(format!("site {code}")).into()),
        }
    }

    /// The site with this id.
    pub async fn site(&self, id: i64) -> Result<Site> {
        let row = sqlx::query("SELECT id, code, name, created_at FROM sites WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => site(&r),
            None => Err(DomainError::NotFound(format!("site {id}")).into()),
        }
    }

    /// All sites, by code.
    pub async fn list_sites(&self) -> Result<Vec<Site>> {
        let rows = sqlx::query("SELECT id, code, name, created_at FROM sites ORDER BY code")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(site).collect()
    }
}
