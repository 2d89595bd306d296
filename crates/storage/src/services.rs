//! The one-stop shop in the database: service encounters (of enrolled clients, or of anonymous
//! outreach contacts known only by a UIC), therapeutic-community episodes, clients' sex and
//! birth year, and the DHIS2 mapping of indicators. The facts the indicators are computed from
//! are gathered in [`crate::report`].
//!
//! Every write is site-scoped, validated by `anxin_domain::services`, and audited in the same
//! transaction.

use anxin_domain::access::check_same_site;
use anxin_domain::indicators::{Sex, Who};
use anxin_domain::services::{ArvOutcome, Service, TcEpisode, TcExit, TcPhase};
use anxin_domain::{validate, DomainError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use crate::audit::{append, Actor, AuditEvent};
use crate::clients::parse_day;
use crate::{col, from_ms, to_ms, Result, Store, StoreError};

/// Whom an encounter is with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An enrolled client of the actor's site.
    Client(i64),
    /// An outreach contact known only by a UIC, with optional sex and birth year.
    Anonymous {
        uic: String,
        sex: Sex,
        birth_year: Option<i32>,
    },
}

/// An encounter about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEncounter {
    pub subject: Subject,
    pub on: NaiveDate,
    pub service: Service,
}

/// An encounter as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Encounter {
    pub id: i64,
    pub site_id: i64,
    pub client_id: Option<i64>,
    pub uic: Option<String>,
    pub on: NaiveDate,
    pub service: Service,
    pub created_at: DateTime<Utc>,
}

/// A therapeutic-community episode as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEpisode {
    pub id: i64,
    pub site_id: i64,
    pub client_id: i64,
    pub episode: TcEpisode,
}

/// One line of the DHIS2 mapping: where an indicator's cell goes. `sex` and `age_band` are a
/// disaggregation name or `total`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dhis2Entry {
    pub indicator: String,
    pub sex: String,
    pub age_band: String,
    pub data_element: String,
    pub category_option_combo: String,
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(crate) fn who(row: &AnyRow, client_id: &str, sex: &str, birth_year: &str) -> Result<Who> {
    let raw: Option<String> = col(row, sex)?;
    let id: i64 = col(row, client_id)?;
    who_of(client_record(id), raw.as_deref(), col(row, birth_year)?)
}

/// The record key input of a client (see `anxin_domain::release`).
pub(crate) fn client_record(id: i64) -> u64 {
    id as u64
}

/// The record key input of an anonymous contact's encounter: its id with the top bit set, so
/// that it never meets a client's.
pub(crate) fn contact_record(encounter_id: i64) -> u64 {
    (encounter_id as u64) | (1 << 63)
}

/// Sex and year of birth as stored, for disaggregation, and the record they belong to.
pub(crate) fn who_of(record: u64, sex: Option<&str>, birth_year: Option<i64>) -> Result<Who> {
    Ok(Who {
        sex: Sex::parse("sex", sex).map_err(corrupt)?,
        birth_year: birth_year.map(i32::try_from).transpose().map_err(corrupt)?,
        record,
    })
}

fn opt_day(row: &AnyRow, name: &str) -> Result<Option<NaiveDate>> {
    let raw: Option<String> = col(row, name)?;
    raw.map(|r| parse_day(name, &r)).transpose()
}

fn day(row: &AnyRow, name: &str) -> Result<NaiveDate> {
    let raw: String = col(row, name)?;
    parse_day(name, &raw)
}

fn service(row: &AnyRow) -> Result<Service> {
    let detail: String = col(row, "detail")?;
    serde_json::from_str(&detail).map_err(|e| corrupt(format!("encounter detail: {e}")))
}

/// The `kind` of ARV referrals.
const ARV_REFERRAL: &str = "arv_referral";

fn encounter_row(r: &AnyRow) -> Result<Encounter> {
    Ok(Encounter {
        id: col(r, "id")?,
        site_id: col(r, "site_id")?,
        client_id: col(r, "client_id")?,
        uic: col(r, "uic")?,
        on: day(r, "on_day")?,
        service: service(r)?,
        created_at: from_ms(col(r, "created_at")?)?,
    })
}

pub(crate) fn episode_row(row: &AnyRow) -> Result<StoredEpisode> {
    let phase: String = col(row, "phase")?;
    let exit: Option<String> = col(row, "exit_kind")?;
    let u6: Option<i64> = col(row, "urine_negative_6m")?;
    let u12: Option<i64> = col(row, "urine_negative_12m")?;
    Ok(StoredEpisode {
        id: col(row, "id")?,
        site_id: col(row, "site_id")?,
        client_id: col(row, "client_id")?,
        episode: TcEpisode {
            admitted_on: day(row, "admitted_on")?,
            phase: TcPhase::parse("phase", &phase).map_err(corrupt)?,
            left_on: opt_day(row, "left_on")?,
            exit: exit
                .map(|e| TcExit::parse("exit_kind", &e))
                .transpose()
                .map_err(corrupt)?,
            urine_negative_6m: u6.map(|v| v != 0),
            urine_negative_12m: u12.map(|v| v != 0),
        },
    })
}

const EPISODE_COLUMNS: &str = "id, site_id, client_id, admitted_on, phase, left_on, exit_kind, \
     urine_negative_6m, urine_negative_12m";

fn staff(actor: &Actor) -> Result<(i64, i64)> {
    match (actor.site_id, actor.user_id) {
        (Some(site), Some(user)) => Ok((site, user)),
        _ => {
            Err(DomainError::Forbidden("services are recorded by staff of a centre".into()).into())
        }
    }
}

impl Store {
    /// The site of client `id`, which must be the actor's.
    async fn client_site_for(&self, actor: &Actor, id: i64) -> Result<i64> {
        let (site, _) = staff(actor)?;
        let row = sqlx::query("SELECT site_id FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Err(DomainError::NotFound(format!("client {id}")).into());
        };
        let client_site: i64 = col(&row, "site_id")?;
        check_same_site(site, client_site, format_args!("client {id}"))?;
        Ok(client_site)
    }

    /// Records a service encounter at the actor's site (validated against `today`); audited as
    /// `encounter.create`.
    pub async fn record_encounter(
        &self,
        actor: &Actor,
        new: &NewEncounter,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Encounter> {
        let (site, user) = staff(actor)?;
        new.service.validate(new.on, today)?;
        let (client_id, uic, sex, birth_year) = match &new.subject {
            Subject::Client(id) => {
                self.client_site_for(actor, *id).await?;
                (Some(*id), None, None, None)
            }
            Subject::Anonymous {
                uic,
                sex,
                birth_year,
            } => {
                let uic = uic.trim().to_uppercase();
                validate::uic(&uic)?;
                if let Some(y) = birth_year {
                    if !(1900..=2100).contains(y) {
                        return Err(DomainError::invalid(
                            "birth_year",
                            format!("{y} is not a plausible year of birth"),
                        )
                        .into());
                    }
                }
                let sex = (*sex != Sex::Unknown).then(|| sex.as_str().to_owned());
                (None, Some(uic), sex, birth_year.map(i64::from))
            }
        };
        let detail = serde_json::to_string(&new.service).map_err(corrupt)?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO encounters (site_id, client_id, uic, sex, birth_year, on_day, kind, \
             detail, recorded_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING id",
        )
        .bind(site)
        .bind(client_id)
        .bind(uic.clone())
        .bind(sex)
        .bind(birth_year)
        .bind(new.on.to_string())
        .bind(new.service.kind().to_owned())
        .bind(detail)
        .bind(user)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = col(&row, "id")?;
        let about = match client_id {
            Some(c) => format!("{} for client {c}", new.service.kind()),
            None => format!("{} for an outreach contact", new.service.kind()),
        };
        append(
            &mut tx,
            actor,
            &AuditEvent::new("encounter.create", "encounter", id)
                .site(site)
                .reason(about),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Encounter {
            id,
            site_id: site,
            client_id,
            uic,
            on: new.on,
            service: new.service.clone(),
            created_at: now,
        })
    }

    /// The encounters of a client of the actor's site, newest first (the caller has already
    /// read the client record through the audited path).
    pub async fn client_encounters(&self, actor: &Actor, client_id: i64) -> Result<Vec<Encounter>> {
        self.client_site_for(actor, client_id).await?;
        let rows = sqlx::query(
            "SELECT id, site_id, client_id, uic, on_day, detail, created_at FROM encounters \
             WHERE client_id = $1 ORDER BY on_day DESC, id DESC",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(encounter_row).collect()
    }

    /// The ARV referrals recorded at the actor's site, newest first (at most `limit`).
    pub async fn arv_referrals(&self, actor: &Actor, limit: i64) -> Result<Vec<Encounter>> {
        let (site, _) = staff(actor)?;
        let rows = sqlx::query(
            "SELECT id, site_id, client_id, uic, on_day, detail, created_at FROM encounters \
             WHERE site_id = $1 AND kind = $2 ORDER BY on_day DESC, id DESC LIMIT $3",
        )
        .bind(site)
        .bind(ARV_REFERRAL.to_owned())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(encounter_row).collect()
    }

    /// The encounters recorded at the actor's site, newest first (at most `limit`), of one kind
    /// or all, each with the UIC to show: the enrolled client's, or the outreach contact's.
    pub async fn site_encounters(
        &self,
        actor: &Actor,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(Encounter, String)>> {
        let (site, _) = staff(actor)?;
        let rows = sqlx::query(
            "SELECT e.id, e.site_id, e.client_id, e.uic, e.on_day, e.detail, e.created_at,              COALESCE(c.uic, e.uic, '') AS shown_uic FROM encounters e              LEFT JOIN clients c ON c.id = e.client_id              WHERE e.site_id = $1 AND ($2 = '' OR e.kind = $2)              ORDER BY e.on_day DESC, e.id DESC LIMIT $3",
        )
        .bind(site)
        .bind(kind.unwrap_or("").to_owned())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((encounter_row(r)?, col::<String>(r, "shown_uic")?)))
            .collect()
    }

    /// Sets the outcome of ARV referral `id` (an encounter of the actor's site), learned after
    /// it was recorded: the referral's date stays, and the whole referral is checked again by
    /// [`Service::validate`] (an outcome date before the referral, or "linked" without a date,
    /// is refused naming `outcome_on`). Audited as `encounter.arv_outcome`.
    pub async fn set_arv_outcome(
        &self,
        actor: &Actor,
        id: i64,
        outcome: ArvOutcome,
        outcome_on: Option<NaiveDate>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Encounter> {
        let (site, _) = staff(actor)?;
        let row = sqlx::query(
            "SELECT id, site_id, client_id, uic, on_day, detail, created_at FROM encounters \
             WHERE id = $1 AND kind = $2",
        )
        .bind(id)
        .bind(ARV_REFERRAL.to_owned())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Err(DomainError::NotFound(format!("ARV referral {id}")).into());
        };
        let stored = encounter_row(&row)?;
        check_same_site(site, stored.site_id, format_args!("ARV referral {id}"))?;
        let Service::ArvReferral {
            referred_on,
            outcome: before,
            ..
        } = stored.service
        else {
            return Err(corrupt(format!("encounter {id} is not an ARV referral")));
        };
        let service = Service::ArvReferral {
            referred_on,
            outcome,
            outcome_on,
        };
        service.validate(stored.on, today)?;
        let detail = serde_json::to_string(&service).map_err(corrupt)?;
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE encounters SET detail = $1 WHERE id = $2")
            .bind(detail)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let name = |o: ArvOutcome| {
            serde_json::to_value(o)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        append(
            &mut tx,
            actor,
            &AuditEvent::new("encounter.arv_outcome", "encounter", id)
                .site(stored.site_id)
                .reason(format!(
                    "outcome {} → {}{}",
                    name(before),
                    name(outcome),
                    outcome_on.map_or(String::new(), |d| format!(" on {d}"))
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Encounter { service, ..stored })
    }

    /// Sets a client's sex and year of birth (for disaggregation); audited.
    /// A client's sex and year of birth, as recorded (`Unknown` and `None` when not).
    pub async fn demographics(&self, client_id: i64) -> Result<(Sex, Option<i32>)> {
        let row = sqlx::query("SELECT sex, birth_year FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_one(self.pool())
            .await?;
        let sex: Option<String> = col(&row, "sex")?;
        let year: Option<i64> = col(&row, "birth_year")?;
        Ok((
            Sex::parse("sex", sex.as_deref()).unwrap_or(Sex::Unknown),
            year.and_then(|y| i32::try_from(y).ok()),
        ))
    }

    pub async fn set_demographics(
        &self,
        actor: &Actor,
        client_id: i64,
        sex: Sex,
        birth_year: Option<i32>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut work = self.begin_work(actor, now).await?;
        work.set_demographics(client_id, sex, birth_year).await?;
        work.commit().await
    }

    /// Opens a therapeutic-community episode for a client of the actor's site; audited.
    pub async fn open_tc_episode(
        &self,
        actor: &Actor,
        client_id: i64,
        episode: &TcEpisode,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<StoredEpisode> {
        let (_, user) = staff(actor)?;
        episode.validate(today)?;
        let site = self.client_site_for(actor, client_id).await?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO tc_episodes (site_id, client_id, admitted_on, phase, left_on, exit_kind, \
             urine_negative_6m, urine_negative_12m, recorded_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(site)
        .bind(client_id)
        .bind(episode.admitted_on.to_string())
        .bind(episode.phase.as_str().to_owned())
        .bind(episode.left_on.map(|d| d.to_string()))
        .bind(episode.exit.map(|e| e.as_str().to_owned()))
        .bind(episode.urine_negative_6m.map(i64::from))
        .bind(episode.urine_negative_12m.map(i64::from))
        .bind(user)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = col(&row, "id")?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("tc_episode.create", "tc_episode", id)
                .site(site)
                .reason(format!(
                    "client {client_id}, phase {}",
                    episode.phase.as_str()
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(StoredEpisode {
            id,
            site_id: site,
            client_id,
            episode: episode.clone(),
        })
    }

    /// Changes an episode (phase, exit, follow-up urine) under the rules of
    /// [`TcEpisode::check_update`]; audited.
    pub async fn update_tc_episode(
        &self,
        actor: &Actor,
        id: i64,
        next: &TcEpisode,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<StoredEpisode> {
        let (site, _) = staff(actor)?;
        let row = sqlx::query(&format!(
            "SELECT {EPISODE_COLUMNS} FROM tc_episodes WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Err(
                DomainError::NotFound(format!("therapeutic-community episode {id}")).into(),
            );
        };
        let stored = episode_row(&row)?;
        check_same_site(
            site,
            stored.site_id,
            format_args!("therapeutic-community episode {id}"),
        )?;
        stored.episode.check_update(next, today)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE tc_episodes SET phase = $1, left_on = $2, exit_kind = $3, \
             urine_negative_6m = $4, urine_negative_12m = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(next.phase.as_str().to_owned())
        .bind(next.left_on.map(|d| d.to_string()))
        .bind(next.exit.map(|e| e.as_str().to_owned()))
        .bind(next.urine_negative_6m.map(i64::from))
        .bind(next.urine_negative_12m.map(i64::from))
        .bind(to_ms(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("tc_episode.update", "tc_episode", id)
                .site(stored.site_id)
                .reason(format!(
                    "phase {}, exit {}",
                    next.phase.as_str(),
                    next.exit.map_or("none", |e| e.as_str())
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(StoredEpisode {
            episode: next.clone(),
            ..stored
        })
    }

    /// The episodes of the actor's site, newest first.
    pub async fn tc_episodes(&self, actor: &Actor) -> Result<Vec<StoredEpisode>> {
        let (site, _) = staff(actor)?;
        let rows = sqlx::query(&format!(
            "SELECT {EPISODE_COLUMNS} FROM tc_episodes WHERE site_id = $1 ORDER BY id DESC"
        ))
        .bind(site)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(episode_row).collect()
    }

    /// The DHIS2 mapping, ordered by indicator.
    pub async fn dhis2_mapping(&self) -> Result<Vec<Dhis2Entry>> {
        let rows = sqlx::query(
            "SELECT indicator, sex, age_band, data_element, category_option_combo \
             FROM dhis2_mapping ORDER BY indicator, sex, age_band",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Dhis2Entry {
                    indicator: col(r, "indicator")?,
                    sex: col(r, "sex")?,
                    age_band: col(r, "age_band")?,
                    data_element: col(r, "data_element")?,
                    category_option_combo: col(r, "category_option_combo")?,
                })
            })
            .collect()
    }

    /// Replaces the whole DHIS2 mapping (the caller validates the entries); audited.
    pub async fn set_dhis2_mapping(
        &self,
        actor: &Actor,
        entries: &[Dhis2Entry],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM dhis2_mapping")
            .execute(&mut *tx)
            .await?;
        for e in entries {
            sqlx::query(
                "INSERT INTO dhis2_mapping (indicator, sex, age_band, data_element, \
                 category_option_combo) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(e.indicator.clone())
            .bind(e.sex.clone())
            .bind(e.age_band.clone())
            .bind(e.data_element.clone())
            .bind(e.category_option_combo.clone())
            .execute(&mut *tx)
            .await
            .map_err(|err| {
                crate::conflict_on_unique(
                    err,
                    format!(
                        "the mapping lists {} / {} / {} twice",
                        e.indicator, e.sex, e.age_band
                    ),
                )
            })?;
        }
        append(
            &mut tx,
            actor,
            &AuditEvent::new("dhis2_mapping.update", "dhis2_mapping", "")
                .reason(format!("{} entries", entries.len())),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl crate::Work {
    /// Records a client's sex and year of birth inside this unit of work; audited.
    pub async fn set_demographics(
        &mut self,
        client_id: i64,
        sex: Sex,
        birth_year: Option<i32>,
    ) -> Result<()> {
        let c = self.client_for_write(client_id).await?;
        if let Some(y) = birth_year {
            if !(1900..=2100).contains(&y) {
                return Err(DomainError::invalid(
                    "birth_year",
                    format!("{y} is not a plausible year of birth"),
                )
                .into());
            }
        }
        sqlx::query("UPDATE clients SET sex = $1, birth_year = $2 WHERE id = $3")
            .bind((sex != Sex::Unknown).then(|| sex.as_str().to_owned()))
            .bind(birth_year.map(i64::from))
            .bind(client_id)
            .execute(self.conn())
            .await?;
        self.audit(
            AuditEvent::new("client.demographics.update", "client", client_id).site(c.site_id),
        )
        .await?;
        Ok(())
    }
}
