//! Organisation units (migration 0024): the province → city → district tree with each unit's
//! DHIS2 org-unit code, where each centre sits (`sites.org_unit_id`, its own DHIS2 code in
//! `sites.dhis2_code`), and the unit an outside account is scoped to (`users.org_unit_id`).
//! Every change is audited; the rules (levels, parents) are `anxin_domain::org`'s. Also the
//! two facts a month's completeness and timeliness are computed from (`month_records`).

use anxin_domain::org::{OrgLevel, Tree};
use anxin_domain::{Code, DomainError, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;

use crate::audit::{append, Actor, AuditEvent};
use crate::{col, from_ms, refused_on_unique, to_ms, Result, Store, StoreError};

/// One organisation unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUnit {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub level: OrgLevel,
    pub parent_id: Option<i64>,
    /// Its DHIS2 org-unit code.
    pub dhis2_code: String,
    pub created_at: DateTime<Utc>,
}

/// Where a centre sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePlace {
    pub site_id: i64,
    pub code: String,
    pub name: String,
    pub unit_id: Option<i64>,
    /// Its DHIS2 org-unit code (its site code unless set).
    pub dhis2_code: String,
}

/// What a centre recorded for one month, for completeness and timeliness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonthRecords {
    /// Days of the month with at least one dose recorded at the centre.
    pub dose_days: i64,
    /// Doses of the month recorded at the centre.
    pub doses: i64,
    /// Of them, recorded after the deadline.
    pub late: i64,
    /// The centre's closure days in the month.
    pub closed_days: i64,
}

/// A unit to create.
#[derive(Debug, Clone, Copy)]
pub struct NewOrgUnit<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub level: OrgLevel,
    /// The unit one level up (none for a top unit).
    pub parent: Option<&'a OrgUnit>,
    /// Its DHIS2 org-unit code (none: its code).
    pub dhis2_code: Option<&'a str>,
}

const UNIT_COLUMNS: &str = "id, code, name, level, parent_id, dhis2_code, created_at";

fn unit(row: &AnyRow) -> Result<OrgUnit> {
    let level: String = col(row, "level")?;
    Ok(OrgUnit {
        id: col(row, "id")?,
        code: col(row, "code")?,
        name: col(row, "name")?,
        level: level
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("org_units.level `{level}`")))?,
        parent_id: col(row, "parent_id")?,
        dhis2_code: col(row, "dhis2_code")?,
        created_at: from_ms(col(row, "created_at")?)?,
    })
}

impl Store {
    /// Every organisation unit, by code.
    pub async fn org_units(&self) -> Result<Vec<OrgUnit>> {
        let rows = sqlx::query(&format!(
            "SELECT {UNIT_COLUMNS} FROM org_units ORDER BY code"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(unit).collect()
    }

    /// The unit with this code (trimmed, any case), if there is one.
    pub async fn org_unit_by_code(&self, code: &str) -> Result<Option<OrgUnit>> {
        let row = sqlx::query(&format!(
            "SELECT {UNIT_COLUMNS} FROM org_units WHERE code = $1"
        ))
        .bind(code.trim().to_uppercase())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(unit).transpose()
    }

    /// Creates a unit under its parent (checked by `anxin_domain::org::check_unit`); audited as
    /// `org_unit.create`. The DHIS2 code defaults to the unit's code.
    pub async fn create_org_unit(
        &self,
        actor: &Actor,
        new: &NewOrgUnit<'_>,
        now: DateTime<Utc>,
    ) -> Result<OrgUnit> {
        let NewOrgUnit {
            code,
            name,
            level,
            parent,
            dhis2_code,
        } = *new;
        let code = code.trim().to_uppercase();
        anxin_domain::org::check_unit(&code, name, level, parent.map(|p| p.level))
            .map_err(DomainError::from)?;
        let dhis2 = dhis2_code
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(&code)
            .to_owned();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO org_units (code, name, level, parent_id, dhis2_code, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {UNIT_COLUMNS}"
        ))
        .bind(code.clone())
        .bind(name.trim().to_owned())
        .bind(level.as_str())
        .bind(parent.map(|p| p.id))
        .bind(dhis2)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            refused_on_unique(
                e,
                Problem::new(Code::OrgUnitCodeTaken)
                    .field("code")
                    .arg("code", &code),
            )
        })?;
        let created = unit(&row)?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("org_unit.create", "org_unit", created.id).reason(format!(
                "{} {code}{}",
                level.as_str(),
                parent.map_or(String::new(), |p| format!(" in {}", p.code))
            )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Every centre and where it sits, by code.
    pub async fn site_places(&self) -> Result<Vec<SitePlace>> {
        let rows =
            sqlx::query("SELECT id, code, name, org_unit_id, dhis2_code FROM sites ORDER BY code")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                let code: String = col(r, "code")?;
                let dhis2: Option<String> = col(r, "dhis2_code")?;
                Ok(SitePlace {
                    site_id: col(r, "id")?,
                    dhis2_code: dhis2
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| code.clone()),
                    code,
                    name: col(r, "name")?,
                    unit_id: col(r, "org_unit_id")?,
                })
            })
            .collect()
    }

    /// The units' tree and where the centres sit (ids only).
    pub async fn org_tree(&self) -> Result<Tree> {
        let mut tree = Tree::default();
        for u in self.org_units().await? {
            tree.parent.insert(u.id, u.parent_id);
        }
        for s in self.site_places().await? {
            if let Some(u) = s.unit_id {
                tree.site_unit.insert(s.site_id, u);
            }
        }
        Ok(tree)
    }

    /// Places centre `site_id` in `unit` (a city or a district; `None` takes it out of the
    /// tree) with its DHIS2 org-unit code (`None`: its site code); audited as `site.place`.
    pub async fn place_site(
        &self,
        actor: &Actor,
        site_id: i64,
        unit: Option<&OrgUnit>,
        dhis2_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(u) = unit {
            anxin_domain::org::check_centre_place(u.level).map_err(DomainError::from)?;
        }
        let dhis2 = dhis2_code
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE sites SET org_unit_id = $1, dhis2_code = $2 WHERE id = $3")
            .bind(unit.map(|u| u.id))
            .bind(dhis2)
            .bind(site_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::NotFound(format!("site {site_id}")).into());
        }
        append(
            &mut tx,
            actor,
            &AuditEvent::new("site.place", "site", site_id)
                .site(site_id)
                .reason(unit.map_or_else(|| "no unit".to_owned(), |u| format!("in {}", u.code))),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Scopes account `user_id` to `unit` (`None`: the whole deployment); audited as
    /// `user.scope`. The caller checks that the account is an outside one.
    pub async fn scope_user(
        &self,
        actor: &Actor,
        user_id: i64,
        unit: Option<&OrgUnit>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE users SET org_unit_id = $1 WHERE id = $2")
            .bind(unit.map(|u| u.id))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::NotFound(format!("staff account {user_id}")).into());
        }
        append(
            &mut tx,
            actor,
            &AuditEvent::new("user.scope", "user", user_id).reason(unit.map_or_else(
                || "whole deployment".to_owned(),
                |u| format!("unit {}", u.code),
            )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The unit account `user_id` is scoped to (`None`: the whole deployment).
    pub async fn user_org_unit(&self, user_id: i64) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT org_unit_id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => Ok(col(&r, "org_unit_id")?),
            None => Err(DomainError::NotFound(format!("staff account {user_id}")).into()),
        }
    }

    /// The outside accounts (CDC and police) and the unit each is scoped to, by username.
    pub async fn outside_accounts(&self) -> Result<Vec<(i64, String, String, Option<i64>)>> {
        let rows = sqlx::query(
            "SELECT id, username, role, org_unit_id FROM users \
             WHERE role IN ('cdc_analyst', 'psb_officer') ORDER BY username",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    col(r, "id")?,
                    col(r, "username")?,
                    col(r, "role")?,
                    col(r, "org_unit_id")?,
                ))
            })
            .collect()
    }

    /// What centre `site_id` recorded for the days `from..=to`: the days with doses, the
    /// doses and how many of them were recorded (`doses.given_at`, stamped when the dose is
    /// entered) after `deadline`; and its closure days then.
    pub async fn month_records(
        &self,
        site_id: i64,
        from: NaiveDate,
        to: NaiveDate,
        deadline: DateTime<Utc>,
    ) -> Result<MonthRecords> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT day) AS days, COUNT(*) AS doses, \
             COALESCE(SUM(CASE WHEN given_at > $4 THEN 1 ELSE 0 END), 0) AS late \
             FROM doses WHERE site_id = $1 AND day >= $2 AND day <= $3",
        )
        .bind(site_id)
        .bind(from.to_string())
        .bind(to.to_string())
        .bind(to_ms(deadline))
        .fetch_one(self.pool())
        .await?;
        let closed = sqlx::query(
            "SELECT COUNT(*) AS n FROM closures WHERE site_id = $1 AND day >= $2 AND day <= $3",
        )
        .bind(site_id)
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(MonthRecords {
            dose_days: col(&row, "days")?,
            doses: col(&row, "doses")?,
            late: col(&row, "late")?,
            closed_days: col(&closed, "n")?,
        })
    }
}
