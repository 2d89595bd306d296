//! The client record, reachable only through site-scoped, audited calls.
//!
//! This is the platform's minimal record (a pseudonymous UIC, the site, the enrolment date);
//! the clinic-core work adds identifying fields, stages and agreements around it.

use anxin_domain::access::check_same_site;
use anxin_domain::clinic::stage::{OrderTerm, Stage};
use anxin_domain::{validate, Code, DomainError, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;

use crate::audit::{Actor, AuditEvent};
use crate::{col, from_ms, refused_on_unique, to_ms, Result, Store, StoreError};

/// A client of a centre, known by a pseudonymous UIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: i64,
    pub site_id: i64,
    pub uic: String,
    pub enrolled_on: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub stage: Stage,
    pub stage_since: NaiveDate,
    /// The term of the order behind community treatment or rehabilitation.
    pub order: Option<OrderTerm>,
    /// Set when the client left treatment; a discharged client is not dosed.
    pub discharged_on: Option<NaiveDate>,
    pub discharge_reason: Option<String>,
}

/// The columns [`client`] reads.
pub(crate) const CLIENT_COLUMNS: &str = "id, site_id, uic, enrolled_on, created_at, stage, \
     stage_since, order_start, order_end, discharged_on, discharge_reason";

/// A stored `YYYY-MM-DD` day. The exact form is read by hand (reports read a million of them);
/// anything else goes through chrono's parser, which says what is wrong.
pub(crate) fn parse_day(field: &str, raw: &str) -> Result<NaiveDate> {
    let b = raw.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) {
            if let Some(day) = NaiveDate::from_ymd_opt(y as i32, m, d) {
                return Ok(day);
            }
        }
    }
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("{field} `{raw}`")))
}

pub(crate) fn client(row: &AnyRow) -> Result<Client> {
    let enrolled: String = col(row, "enrolled_on")?;
    let enrolled_on = parse_day("enrolled_on", &enrolled)?;
    let stage: String = col(row, "stage")?;
    let since: Option<String> = col(row, "stage_since")?;
    let discharged: Option<String> = col(row, "discharged_on")?;
    let order_start: Option<String> = col(row, "order_start")?;
    let order_end: Option<String> = col(row, "order_end")?;
    let order = match (order_start, order_end) {
        (Some(s), Some(e)) => Some(OrderTerm {
            start: parse_day("order_start", &s)?,
            end: parse_day("order_end", &e)?,
        }),
        _ => None,
    };
    Ok(Client {
        id: col(row, "id")?,
        site_id: col(row, "site_id")?,
        uic: col(row, "uic")?,
        enrolled_on,
        created_at: from_ms(col(row, "created_at")?)?,
        stage: stage
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("stage `{stage}`")))?,
        stage_since: since
            .map(|s| parse_day("stage_since", &s))
            .transpose()?
            .unwrap_or(enrolled_on),
        order,
        discharged_on: discharged
            .map(|s| parse_day("discharged_on", &s))
            .transpose()?,
        discharge_reason: col(row, "discharge_reason")?,
    })
}

fn actor_site(actor: &Actor) -> Result<i64> {
    actor.site_id.ok_or_else(|| {
        DomainError::Forbidden("client records are reached from a site".into()).into()
    })
}

impl Store {
    /// The UICs of clients of `site_id` among `ids` (pseudonymous codes, for lists that name
    /// clients the way the window does; other sites' ids are left out).
    pub async fn uics_at_site(
        &self,
        site_id: i64,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, String>> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT id, uic FROM clients WHERE site_id = $1 AND id IN ({list})"
        ))
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        for r in &rows {
            out.insert(col(r, "id")?, col(r, "uic")?);
        }
        Ok(out)
    }

    /// Enrols a client at the actor's site; audited.
    pub async fn create_client(
        &self,
        actor: &Actor,
        uic: &str,
        enrolled_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Client> {
        let mut work = self.begin_work(actor, now).await?;
        let created = work.create_client(uic, enrolled_on).await?;
        work.commit().await?;
        Ok(created)
    }

    /// Reads one client record for `actor`, who must work at the client's site.
    /// Writes `client.read` to the audit trail, or `client.read.denied` when refused.
    pub async fn read_client(
        &self,
        actor: &Actor,
        id: i64,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<Client> {
        let row = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Err(DomainError::NotFound(format!("client {id}")).into());
        };
        let found = client(&row)?;
        let scope = actor_site(actor).and_then(|s| {
            Ok(check_same_site(
                s,
                found.site_id,
                format_args!("client {id}"),
            )?)
        });
        if let Err(e) = scope {
            self.audit(
                actor,
                AuditEvent::new("client.read.denied", "client", id)
                    .site(found.site_id)
                    .reason("other centre"),
                now,
            )
            .await?;
            return Err(e);
        }
        self.audit(
            actor,
            AuditEvent::new("client.read", "client", id)
                .site(found.site_id)
                .reason(purpose),
            now,
        )
        .await?;
        Ok(found)
    }

    /// Lists the clients of the actor's site whose UIC contains `query` (all if empty);
    /// audited as a search.
    pub async fn search_clients(
        &self,
        actor: &Actor,
        query: &str,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Client>> {
        let site_id = actor_site(actor)?;
        let pattern = format!(
            "%{}%",
            query.trim().to_uppercase().replace(['%', '_', '\\'], "")
        );
        let rows = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients \
             WHERE site_id = $1 AND uic LIKE $2 ORDER BY uic LIMIT $3"
        ))
        .bind(site_id)
        .bind(pattern)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let found: Vec<Client> = rows.iter().map(client).collect::<Result<_>>()?;
        self.audit(
            actor,
            AuditEvent::new("client.search", "client", "")
                .site(site_id)
                .reason(format!("query `{}`, {} shown", query.trim(), found.len())),
            now,
        )
        .await?;
        Ok(found)
    }

    /// Clients of the actor's site whose UIC, dashes left out, is `compact` (capitals and
    /// digits), or, when `digits` is given, contains that run of digits; at most `limit`,
    /// audited as a search.
    pub async fn window_matches(
        &self,
        actor: &Actor,
        compact: &str,
        digits: Option<&str>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Client>> {
        let site_id = actor_site(actor)?;
        let clean = |s: &str| -> String { s.chars().filter(char::is_ascii_alphanumeric).collect() };
        let rows = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE site_id = $1 \
             AND (REPLACE(uic, '-', '') = $2 OR ($3 <> '' AND REPLACE(uic, '-', '') LIKE $4)) \
             ORDER BY uic LIMIT $5"
        ))
        .bind(site_id)
        .bind(clean(compact))
        .bind(digits.map(clean).unwrap_or_default())
        .bind(format!("%{}%", digits.map(clean).unwrap_or_default()))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let found: Vec<Client> = rows.iter().map(client).collect::<Result<_>>()?;
        self.audit(
            actor,
            AuditEvent::new("client.search", "client", "")
                .site(site_id)
                .reason(format!("at the window, {} shown", found.len())),
            now,
        )
        .await?;
        Ok(found)
    }

    /// How many clients a site has (a figure, not a read of any record).
    pub async fn count_clients(&self, site_id: i64) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM clients WHERE site_id = $1")
            .bind(site_id)
            .fetch_one(self.pool())
            .await?;
        col(&row, "n")
    }
}

impl crate::Work {
    /// Enrols a client at the actor's site inside this unit of work; audited.
    pub async fn create_client(&mut self, uic: &str, enrolled_on: NaiveDate) -> Result<Client> {
        validate::uic(uic)?;
        let site_id = actor_site(self.actor())?;
        let now = self.now();
        let row = sqlx::query(&format!(
            "INSERT INTO clients (site_id, uic, enrolled_on, created_at, stage_since) \
             VALUES ($1, $2, $3, $4, $3) RETURNING {CLIENT_COLUMNS}"
        ))
        .bind(site_id)
        .bind(uic.to_owned())
        .bind(enrolled_on.to_string())
        .bind(to_ms(now))
        .fetch_one(self.conn())
        .await
        .map_err(|e| {
            refused_on_unique(
                e,
                Problem::new(Code::ClientUicTaken)
                    .field("uic")
                    .arg("uic", uic),
            )
        })?;
        let created = client(&row)?;
        self.open_episode(created.id, site_id, enrolled_on).await?;
        self.audit(AuditEvent::new("client.create", "client", created.id).site(site_id))
            .await?;
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_day;

    #[test]
    fn a_stored_day_reads_as_chrono_reads_it() {
        for raw in [
            "2026-10-01",
            "2024-02-29",
            "1999-12-31",
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-05",
            "2026-10-1x",
            "+2026-10-01",
            "",
        ] {
            assert_eq!(
                parse_day("day", raw).ok(),
                raw.parse::<chrono::NaiveDate>().ok(),
                "{raw}"
            );
        }
        assert!(parse_day("enrolled_on", "2026-02-30")
            .is_err_and(|e| e.to_string().contains("enrolled_on `2026-02-30`")));
    }
}
