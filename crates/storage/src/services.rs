//! The one-stop shop in the database: service encounters (of enrolled clients, or of anonymous
//! outreach contacts known only by a UIC), therapeutic-community episodes, clients' sex and
//! birth year, the DHIS2 mapping of indicators, and the query that gathers the facts the
//! indicators are computed from for one site (or every site) and a period.
//!
//! Every write is site-scoped, validated by `anxin_domain::services`, and audited in the same
//! transaction. The indicator query returns plain facts without UICs or identities.

use std::collections::{BTreeSet, HashMap};

use anxin_domain::access::check_same_site;
use anxin_domain::indicators::{ClientFacts, EncounterFact, Inputs, Period, Sex, TcFact, Who};
use anxin_domain::services::{Service, TcEpisode, TcExit, TcPhase};
use anxin_domain::{validate, DomainError};
use chrono::{DateTime, Months, NaiveDate, Utc};
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

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn who(row: &AnyRow, sex: &str, birth_year: &str) -> Result<Who> {
    let raw: Option<String> = col(row, sex)?;
    let year: Option<i64> = col(row, birth_year)?;
    Ok(Who {
        sex: Sex::parse(sex, raw.as_deref()).map_err(corrupt)?,
        birth_year: year.map(i32::try_from).transpose().map_err(corrupt)?,
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

fn episode_row(row: &AnyRow) -> Result<StoredEpisode> {
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

/// The site filter of the indicator queries: `""` for every site, or one site's condition.
fn site_filter(column: &str, site: Option<i64>) -> String {
    match site {
        Some(id) => format!(" AND {column} = {id}"),
        None => String::new(),
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
        check_same_site(site, client_site)?;
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
        rows.iter()
            .map(|r| {
                Ok(Encounter {
                    id: col(r, "id")?,
                    site_id: col(r, "site_id")?,
                    client_id: col(r, "client_id")?,
                    uic: col(r, "uic")?,
                    on: day(r, "on_day")?,
                    service: service(r)?,
                    created_at: from_ms(col(r, "created_at")?)?,
                })
            })
            .collect()
    }

    /// Sets a client's sex and year of birth (for disaggregation); audited.
    pub async fn set_demographics(
        &self,
        actor: &Actor,
        client_id: i64,
        sex: Sex,
        birth_year: Option<i32>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let site = self.client_site_for(actor, client_id).await?;
        if let Some(y) = birth_year {
            if !(1900..=2100).contains(&y) {
                return Err(DomainError::invalid(
                    "birth_year",
                    format!("{y} is not a plausible year of birth"),
                )
                .into());
            }
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE clients SET sex = $1, birth_year = $2 WHERE id = $3")
            .bind((sex != Sex::Unknown).then(|| sex.as_str().to_owned()))
            .bind(birth_year.map(i64::from))
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("client.demographics.update", "client", client_id).site(site),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
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
        check_same_site(site, stored.site_id)?;
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

    /// The facts every indicator of a period is computed from, for `site` or every site
    /// (`None`). Clients count at their own site (their guest doses elsewhere included);
    /// encounters and episodes at the site that recorded them. No UIC leaves this call.
    pub async fn indicator_inputs(&self, site: Option<i64>, period: &Period) -> Result<Inputs> {
        // Cohorts and follow-ups look back up to 12 months before the period.
        let back = period
            .from
            .checked_sub_months(Months::new(12))
            .unwrap_or(period.from)
            .to_string();
        let (from, to) = (period.from.to_string(), period.to.to_string());
        let rows = sqlx::query(&format!(
            "SELECT id, enrolled_on, discharged_on, sex, birth_year FROM clients \
             WHERE enrolled_on <= $1 AND (discharged_on IS NULL OR discharged_on >= $2){} \
             ORDER BY id",
            site_filter("site_id", site)
        ))
        .bind(to.clone())
        .bind(back.clone())
        .fetch_all(self.pool())
        .await?;
        let mut clients = Vec::with_capacity(rows.len());
        let mut index = HashMap::new();
        for r in &rows {
            index.insert(col::<i64>(r, "id")?, clients.len());
            clients.push(ClientFacts {
                who: who(r, "sex", "birth_year")?,
                enrolled_on: day(r, "enrolled_on")?,
                discharged_on: opt_day(r, "discharged_on")?,
                dose_days: BTreeSet::new(),
                take_home_days: BTreeSet::new(),
                urine: Vec::new(),
            });
        }
        let doses = sqlx::query(&format!(
            "SELECT d.client_id, d.day, d.rule FROM doses d JOIN clients c ON c.id = d.client_id \
             WHERE d.day >= $1 AND d.day <= $2{}",
            site_filter("c.site_id", site)
        ))
        .bind(from.clone())
        .bind(to.clone())
        .fetch_all(self.pool())
        .await?;
        for r in &doses {
            if let Some(&i) = index.get(&col::<i64>(r, "client_id")?) {
                let rule: String = col(r, "rule")?;
                let on = day(r, "day")?;
                // Take-home days count for participation; as attendance only once confirmed.
                if rule.starts_with("take_home") {
                    clients[i].take_home_days.insert(on);
                }
                if !matches!(
                    rule.as_str(),
                    crate::boxes::RULE_PENDING
                        | crate::boxes::RULE_UNOPENED
                        | crate::boxes::RULE_LOST
                ) {
                    clients[i].dose_days.insert(on);
                }
            }
        }
        let urine = sqlx::query(&format!(
            "SELECT u.client_id, u.collected_on, u.negative FROM urine_tests u \
             JOIN clients c ON c.id = u.client_id \
             WHERE u.collected_on >= $1 AND u.collected_on <= $2{}",
            site_filter("c.site_id", site)
        ))
        .bind(from.clone())
        .bind(to.clone())
        .fetch_all(self.pool())
        .await?;
        for r in &urine {
            if let Some(&i) = index.get(&col::<i64>(r, "client_id")?) {
                let negative: i64 = col(r, "negative")?;
                clients[i]
                    .urine
                    .push((day(r, "collected_on")?, negative != 0));
            }
        }
        // Test and referral dates are on or before the day they were recorded, so an encounter
        // about the period was recorded on or after its first day.
        let rows = sqlx::query(&format!(
            "SELECT e.on_day, e.detail, COALESCE(c.sex, e.sex) AS who_sex, \
             COALESCE(c.birth_year, e.birth_year) AS who_birth_year \
             FROM encounters e LEFT JOIN clients c ON c.id = e.client_id \
             WHERE e.on_day >= $1{} ORDER BY e.id",
            site_filter("e.site_id", site)
        ))
        .bind(from.clone())
        .fetch_all(self.pool())
        .await?;
        let encounters = rows
            .iter()
            .map(|r| {
                Ok(EncounterFact {
                    who: who(r, "who_sex", "who_birth_year")?,
                    on: day(r, "on_day")?,
                    service: service(r)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(&format!(
            "SELECT t.id, t.site_id, t.client_id, t.admitted_on, t.phase, t.left_on, t.exit_kind, \
             t.urine_negative_6m, t.urine_negative_12m, c.sex, c.birth_year \
             FROM tc_episodes t JOIN clients c ON c.id = t.client_id \
             WHERE t.left_on >= $1{} ORDER BY t.id",
            site_filter("t.site_id", site)
        ))
        .bind(back)
        .fetch_all(self.pool())
        .await?;
        let tc = rows
            .iter()
            .map(|r| {
                Ok(TcFact {
                    who: who(r, "sex", "birth_year")?,
                    episode: episode_row(r)?.episode,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Inputs {
            clients,
            encounters,
            tc,
        })
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
