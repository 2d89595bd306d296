//! The centre calendar: the days a centre is closed (a holiday such as the Spring Festival),
//! one row per site and day with a short note, who added it and when (migration 0016). A closure
//! day is never a missed day: the dispensing facts carry each client's closures in the gap
//! (`clinic.rs`), and the calendar page asks which clients have no covering dose that day.
//! Adding and removing are audited writes in the caller's unit of work ([`Work`]).

use anxin_domain::{Code, DomainError, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;

use crate::audit::AuditEvent;
use crate::clients::parse_day;
use crate::{col, from_ms, to_ms, Result, Store, StoreError, Work};

/// One closure day of a centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closure {
    pub id: i64,
    pub site_id: i64,
    pub day: NaiveDate,
    pub note: String,
    /// The username of who added it (none from the command line).
    pub added_by: Option<String>,
    pub added_at: DateTime<Utc>,
}

const COLUMNS: &str = "c.id, c.site_id, c.day, c.note, u.username, c.added_at";

fn closure_row(r: &AnyRow) -> Result<Closure> {
    let day: String = col(r, "day")?;
    Ok(Closure {
        id: col(r, "id")?,
        site_id: col(r, "site_id")?,
        day: parse_day("day", &day)?,
        note: col(r, "note")?,
        added_by: col(r, "username")?,
        added_at: from_ms(col(r, "added_at")?)?,
    })
}

impl Work {
    /// Closes `site_id` on `day`, with the audit entry `closure.add`; a day already closed is
    /// refused `closure.exists` at `day`.
    pub async fn add_closure(&mut self, site_id: i64, day: NaiveDate, note: &str) -> Result<i64> {
        let by = self.actor().user_id;
        let now = self.now();
        // Asked first, so that PostgreSQL's transaction is not spoilt by a failed insert.
        let taken = sqlx::query("SELECT id FROM closures WHERE site_id = $1 AND day = $2")
            .bind(site_id)
            .bind(day.to_string())
            .fetch_optional(&mut *self.conn())
            .await?;
        let exists = || {
            DomainError::from(
                Problem::new(Code::ClosureExists)
                    .field("day")
                    .arg("day", day),
            )
        };
        if taken.is_some() {
            return Err(exists().into());
        }
        let row = sqlx::query(
            "INSERT INTO closures (site_id, day, note, added_by, added_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(site_id)
        .bind(day.to_string())
        .bind(note.to_owned())
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(&mut *self.conn())
        .await
        .map_err(|e| {
            crate::refused_on_unique(
                e,
                Problem::new(Code::ClosureExists)
                    .field("day")
                    .arg("day", day),
            )
        })?;
        let id: i64 = col(&row, "id")?;
        self.audit(
            AuditEvent::new("closure.add", "site", site_id)
                .site(site_id)
                .reason(format!("{day} {note}")),
        )
        .await?;
        Ok(id)
    }

    /// Removes closure `id` of `site_id` (another site's is not found), with the audit entry
    /// `closure.remove`; answers what was removed.
    pub async fn remove_closure(&mut self, site_id: i64, id: i64) -> Result<Closure> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM closures c LEFT JOIN users u ON u.id = c.added_by \
             WHERE c.id = $1 AND c.site_id = $2"
        ))
        .bind(id)
        .bind(site_id)
        .fetch_optional(&mut *self.conn())
        .await?
        .ok_or_else(|| StoreError::from(DomainError::NotFound(format!("closure {id}"))))?;
        let closure = closure_row(&row)?;
        sqlx::query("DELETE FROM closures WHERE id = $1")
            .bind(id)
            .execute(&mut *self.conn())
            .await?;
        self.audit(
            AuditEvent::new("closure.remove", "site", site_id)
                .site(site_id)
                .reason(format!("{} {}", closure.day, closure.note)),
        )
        .await?;
        Ok(closure)
    }
}

impl Store {
    /// The closures of `site_id` from `from` on (inclusive), by day.
    pub async fn closures_from(&self, site_id: i64, from: NaiveDate) -> Result<Vec<Closure>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM closures c LEFT JOIN users u ON u.id = c.added_by \
             WHERE c.site_id = $1 AND c.day >= $2 ORDER BY c.day"
        ))
        .bind(site_id)
        .bind(from.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(closure_row).collect()
    }

    /// Closure `id` of `site_id`, if there is one.
    pub async fn closure(&self, site_id: i64, id: i64) -> Result<Option<Closure>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM closures c LEFT JOIN users u ON u.id = c.added_by \
             WHERE c.id = $1 AND c.site_id = $2"
        ))
        .bind(id)
        .bind(site_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(closure_row).transpose()
    }

    /// The closure of `site_id` on `day`, if it is closed that day.
    pub async fn closure_on(&self, site_id: i64, day: NaiveDate) -> Result<Option<Closure>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM closures c LEFT JOIN users u ON u.id = c.added_by \
             WHERE c.site_id = $1 AND c.day = $2"
        ))
        .bind(site_id)
        .bind(day.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(closure_row).transpose()
    }

    /// The clients of `site_id` whose dose on one of `days` is covered elsewhere than at its
    /// window: a take-home box compartment holds it, or a guest arrangement at another centre
    /// takes the day. Pairs of client id and day.
    pub async fn covered_doses(
        &self,
        site_id: i64,
        days: &[NaiveDate],
    ) -> Result<Vec<(i64, NaiveDate)>> {
        let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
            return Ok(vec![]);
        };
        let boxed = sqlx::query(
            "SELECT d.client_id, d.day FROM doses d JOIN clients c ON c.id = d.client_id \
             WHERE c.site_id = $1 AND d.day >= $2 AND d.day <= $3 AND d.rule = 'take_home_pending'",
        )
        .bind(site_id)
        .bind(first.to_string())
        .bind(last.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in &boxed {
            let day: String = col(r, "day")?;
            let day = parse_day("day", &day)?;
            if days.contains(&day) {
                out.push((col(r, "client_id")?, day));
            }
        }
        let guests = sqlx::query(
            "SELECT g.client_id, g.from_day, g.to_day FROM guest_dosing g JOIN clients c ON c.id = g.client_id \
             WHERE c.site_id = $1 AND g.host_site_id <> $1 AND g.from_day <= $2 AND g.to_day >= $3",
        )
        .bind(site_id)
        .bind(last.to_string())
        .bind(first.to_string())
        .fetch_all(self.pool())
        .await?;
        for r in &guests {
            let (from, to): (String, String) = (col(r, "from_day")?, col(r, "to_day")?);
            let (from, to) = (parse_day("from_day", &from)?, parse_day("to_day", &to)?);
            let id: i64 = col(r, "client_id")?;
            out.extend(
                days.iter()
                    .filter(|d| **d >= from && **d <= to)
                    .map(|d| (id, *d)),
            );
        }
        Ok(out)
    }
}
