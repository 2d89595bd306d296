//! The intake assessment and the outcomes of treatment (migration 0019): assessments, versioned
//! per client (a new one is added, older ones kept, the highest version is current); overdose
//! events; deaths (at most one per client). Writes are `Work` methods, each with its audit entry
//! (`assessment.record`, `overdose.record`, `death.record`) in the caller's unit of work, so a
//! death and the discharge it brings commit together. Readers take a client id the core has
//! already opened through the audited, site-scoped [`Store::read_client`], as the clinic's other
//! sections do; the counts for the indicators are aggregates by site and period.

use anxin_domain::clinic::assessment::{
    Assessment, Medicine, PreviousTreatment, Route, Status, Substance,
};
use anxin_domain::clinic::outcomes::{DeathCause, OverdoseOutcome};
use anxin_domain::{Code, DomainError, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;

use crate::audit::AuditEvent;
use crate::clients::{parse_day, Client};
use crate::{col, from_ms, to_ms, Result, Store, StoreError};

/// An assessment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAssessment {
    pub id: i64,
    pub client_id: i64,
    /// From 1; the highest is the current one.
    pub version: i64,
    pub assessment: Assessment,
    /// The username of whoever recorded it.
    pub recorded_by: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// An overdose event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdose {
    pub id: i64,
    pub client_id: i64,
    pub occurred_on: NaiveDate,
    pub naloxone: bool,
    pub outcome: OverdoseOutcome,
}

/// A client's death as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    pub client_id: i64,
    pub died_on: NaiveDate,
    pub cause: DeathCause,
    /// The overdose event it followed, if recorded as one.
    pub overdose_id: Option<i64>,
}

fn corrupt(what: &str) -> impl Fn(DomainError) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn codes<T>(
    row: &AnyRow,
    name: &str,
    parse: impl Fn(&str) -> std::result::Result<T, DomainError>,
) -> Result<Vec<T>> {
    let raw: String = col(row, name)?;
    let names: Vec<String> =
        serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))?;
    names
        .iter()
        .map(|n| parse(n).map_err(corrupt(name)))
        .collect()
}

fn assessment_row(row: &AnyRow) -> Result<StoredAssessment> {
    let route: String = col(row, "main_route")?;
    let previous: String = col(row, "previous_treatment")?;
    let hiv: String = col(row, "hiv")?;
    let hcv: String = col(row, "hcv")?;
    let ever: i64 = col(row, "ever_injected")?;
    let age: Option<i64> = col(row, "age_first_use")?;
    Ok(StoredAssessment {
        id: col(row, "id")?,
        client_id: col(row, "client_id")?,
        version: col(row, "version")?,
        assessment: Assessment {
            substances: codes(row, "substances", |s| Substance::parse(s, "substances"))?,
            main_route: Route::parse(&route, "main_route").map_err(corrupt("main_route"))?,
            ever_injected: ever != 0,
            age_first_use: age
                .map(i32::try_from)
                .transpose()
                .map_err(|_| StoreError::Corrupt("age_first_use".into()))?,
            previous_treatment: PreviousTreatment::parse(&previous, "previous_treatment")
                .map_err(corrupt("previous_treatment"))?,
            hiv: Status::parse(&hiv, "hiv").map_err(corrupt("hiv"))?,
            hcv: Status::parse(&hcv, "hcv").map_err(corrupt("hcv"))?,
            medicines: codes(row, "medicines", |s| Medicine::parse(s, "medicines"))?,
        },
        recorded_by: col(row, "username")?,
        recorded_at: from_ms(col(row, "recorded_at")?)?,
    })
}

fn names<T: Copy>(items: &[T], name: impl Fn(T) -> &'static str) -> String {
    let v: Vec<&str> = items.iter().map(|i| name(*i)).collect();
    serde_json::Value::from(v).to_string()
}

impl Store {
    /// A client's assessments, newest (the current one) first.
    pub async fn assessments(&self, client_id: i64) -> Result<Vec<StoredAssessment>> {
        let rows = sqlx::query(
            "SELECT a.id, a.client_id, a.version, a.substances, a.main_route, a.ever_injected, \
             a.age_first_use, a.previous_treatment, a.hiv, a.hcv, a.medicines, a.recorded_at, \
             u.username FROM assessments a LEFT JOIN users u ON u.id = a.recorded_by \
             WHERE a.client_id = $1 ORDER BY a.version DESC",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(assessment_row).collect()
    }

    /// A client's overdose events, newest first.
    pub async fn overdoses(&self, client_id: i64) -> Result<Vec<Overdose>> {
        let rows = sqlx::query(
            "SELECT id, client_id, occurred_on, naloxone, outcome FROM overdoses \
             WHERE client_id = $1 ORDER BY occurred_on DESC, id DESC",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let outcome: String = col(r, "outcome")?;
                let naloxone: i64 = col(r, "naloxone")?;
                Ok(Overdose {
                    id: col(r, "id")?,
                    client_id: col(r, "client_id")?,
                    occurred_on: parse_day("occurred_on", &col::<String>(r, "occurred_on")?)?,
                    naloxone: naloxone != 0,
                    outcome: OverdoseOutcome::parse(&outcome, "outcome")
                        .map_err(corrupt("outcome"))?,
                })
            })
            .collect()
    }

    /// A client's death, if recorded.
    pub async fn death(&self, client_id: i64) -> Result<Option<Death>> {
        let row = sqlx::query(
            "SELECT client_id, died_on, cause, overdose_id FROM deaths WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let cause: String = col(&r, "cause")?;
            Ok(Death {
                client_id: col(&r, "client_id")?,
                died_on: parse_day("died_on", &col::<String>(&r, "died_on")?)?,
                cause: DeathCause::parse(&cause, "cause").map_err(corrupt("cause"))?,
                overdose_id: col(&r, "overdose_id")?,
            })
        })
        .transpose()
    }
}

impl crate::Work {
    /// Adds the next version of client `c`'s assessment (already validated), with its
    /// `assessment.record` entry.
    pub async fn add_assessment(&mut self, c: &Client, a: &Assessment) -> Result<StoredAssessment> {
        let by = self.actor().user_id.ok_or_else(|| {
            DomainError::Forbidden("an assessment is recorded by a member of staff".into())
        })?;
        let row = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) AS v FROM assessments WHERE client_id = $1",
        )
        .bind(c.id)
        .fetch_one(self.conn())
        .await?;
        let version: i64 = col::<i64>(&row, "v")? + 1;
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO assessments (client_id, version, substances, main_route, ever_injected, \
             age_first_use, previous_treatment, hiv, hcv, medicines, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(c.id)
        .bind(version)
        .bind(names(&a.substances, Substance::as_str))
        .bind(a.main_route.as_str())
        .bind(i64::from(a.ever_injected))
        .bind(a.age_first_use.map(i64::from))
        .bind(a.previous_treatment.as_str())
        .bind(a.hiv.as_str())
        .bind(a.hcv.as_str())
        .bind(names(&a.medicines, Medicine::as_str))
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(self.conn())
        .await?;
        let id: i64 = col(&row, "id")?;
        self.audit(
            AuditEvent::new("assessment.record", "client", c.id)
                .site(c.site_id)
                .reason(format!("version {version}")),
        )
        .await?;
        Ok(StoredAssessment {
            id,
            client_id: c.id,
            version,
            assessment: a.clone(),
            recorded_by: None,
            recorded_at: now,
        })
    }

    /// Records an overdose event of client `c`, with its `overdose.record` entry.
    pub async fn add_overdose(
        &mut self,
        c: &Client,
        on: NaiveDate,
        naloxone: bool,
        outcome: OverdoseOutcome,
    ) -> Result<i64> {
        let by = self.actor().user_id.ok_or_else(|| {
            DomainError::Forbidden("an overdose is recorded by a member of staff".into())
        })?;
        let now = to_ms(self.now());
        let row = sqlx::query(
            "INSERT INTO overdoses (client_id, site_id, occurred_on, naloxone, outcome, \
             recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(c.id)
        .bind(c.site_id)
        .bind(on.to_string())
        .bind(i64::from(naloxone))
        .bind(outcome.as_str())
        .bind(by)
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        let id: i64 = col(&row, "id")?;
        self.audit(
            AuditEvent::new("overdose.record", "client", c.id)
                .site(c.site_id)
                .reason(format!(
                    "{on}, {}, naloxone {}",
                    outcome.as_str(),
                    if naloxone { "given" } else { "not given" }
                )),
        )
        .await?;
        Ok(id)
    }

    /// Records client `c`'s death, with its `death.record` entry; refused when one is recorded.
    pub async fn record_death(
        &mut self,
        c: &Client,
        on: NaiveDate,
        cause: DeathCause,
        overdose_id: Option<i64>,
    ) -> Result<()> {
        let by = self.actor().user_id.ok_or_else(|| {
            DomainError::Forbidden("a death is recorded by a member of staff".into())
        })?;
        let earlier = sqlx::query("SELECT died_on FROM deaths WHERE client_id = $1")
            .bind(c.id)
            .fetch_optional(self.conn())
            .await?;
        if let Some(r) = earlier {
            let day: String = col(&r, "died_on")?;
            return Err(DomainError::from(
                Problem::new(Code::DeathAlreadyRecorded).arg("day", day),
            )
            .into());
        }
        let now = to_ms(self.now());
        sqlx::query(
            "INSERT INTO deaths (client_id, site_id, died_on, cause, overdose_id, recorded_by, \
             recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.id)
        .bind(c.site_id)
        .bind(on.to_string())
        .bind(cause.as_str())
        .bind(overdose_id)
        .bind(by)
        .bind(now)
        .execute(self.conn())
        .await?;
        self.end_episode(c.id, on, anxin_domain::clinic::episodes::EpisodeEnd::Death)
            .await?;
        self.audit(
            AuditEvent::new("death.record", "client", c.id)
                .site(c.site_id)
                .reason(format!("{on}, {}", cause.as_str())),
        )
        .await?;
        Ok(())
    }
}
