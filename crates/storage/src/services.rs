//! The one-stop shop in the database: service encounters (of enrolled clients, or of anonymous
//! outreach contacts known only by a UIC), therapeutic-community episodes, clients' sex and
//! birth year, the DHIS2 mapping of indicators, and the query that gathers the facts the
//! indicators are computed from for one site (or every site) and a period.
//!
//! Every write is site-scoped, validated by `anxin_domain::services`, and audited in the same
//! transaction. The indicator query returns plain facts without UICs or identities.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use anxin_domain::access::check_same_site;
use anxin_domain::indicators::{
    ClientFacts, DaySet, EncounterFact, Inputs, Period, Sex, TcFact, Who,
};
use anxin_domain::services::{ArvOutcome, Service, TcEpisode, TcExit, TcPhase};
use anxin_domain::{validate, DomainError};
use chrono::{DateTime, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use crate::audit::{append, Actor, AuditEvent};
use crate::boxes::{RULE_LOST, RULE_PENDING, RULE_UNOPENED};
use crate::clients::parse_day;
use crate::{col, from_ms, to_ms, Backend, Result, Store, StoreError};

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

/// Every take-home dose's rule starts so; the unconfirmed ones do not count as attendance.
const TAKE_HOME: &str = "take_home";
/// The first string after every one that starts with [`TAKE_HOME`] (its last letter plus one),
/// so `rule >= TAKE_HOME AND rule < TAKE_HOME_END` is "starts with" under a binary collation.
const TAKE_HOME_END: &str = "take_homf";
const UNCONFIRMED: [&str; 3] = [RULE_PENDING, RULE_UNOPENED, RULE_LOST];

/// Where a client id sits in the indicator inputs: a table over the id range when the ids are
/// dense enough (the usual case), a hash map otherwise. A report looks up every client-day.
enum Positions {
    Table { min: i64, at: Vec<u32> },
    Map(HashMap<i64, usize>),
}

impl Positions {
    fn new(ids: &[i64]) -> Positions {
        let (Some(&min), Some(&max)) = (ids.iter().min(), ids.iter().max()) else {
            return Positions::Map(HashMap::new());
        };
        let span = usize::try_from(max - min).unwrap_or(usize::MAX);
        if span < ids.len().saturating_mul(8).saturating_add(4096) && ids.len() < u32::MAX as usize
        {
            let mut at = vec![u32::MAX; span + 1];
            for (i, id) in ids.iter().enumerate() {
                at[(id - min) as usize] = i as u32;
            }
            Positions::Table { min, at }
        } else {
            Positions::Map(ids.iter().enumerate().map(|(i, id)| (*id, i)).collect())
        }
    }

    fn get(&self, id: i64) -> Option<usize> {
        match self {
            Positions::Table { min, at } => {
                let slot = usize::try_from(id.checked_sub(*min)?).ok()?;
                at.get(slot)
                    .filter(|i| **i != u32::MAX)
                    .map(|i| *i as usize)
            }
            Positions::Map(map) => map.get(&id).copied(),
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

/// A query under way.
type Pending<'a> = Pin<Box<dyn Future<Output = Result<Vec<AnyRow>>> + Send + 'a>>;

/// `sql` with its text parameters, as a query under way.
fn fetch<'a>(pool: &'a sqlx::AnyPool, sql: &'a str, binds: &[&String]) -> Pending<'a> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind((*b).clone());
    }
    Box::pin(async move { Ok(q.fetch_all(pool).await?) })
}

/// Runs `queries` at once (each takes its own connection from the pool) and answers their rows
/// in order, or the first error.
async fn at_once(mut queries: Vec<Pending<'_>>) -> Result<Vec<Vec<AnyRow>>> {
    let mut done: Vec<Option<Vec<AnyRow>>> = queries.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (query, rows) in queries.iter_mut().zip(done.iter_mut()) {
            if rows.is_some() {
                continue;
            }
            match query.as_mut().poll(cx) {
                Poll::Ready(Ok(r)) => *rows = Some(r),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => waiting = true,
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await?;
    Ok(done.into_iter().map(Option::unwrap_or_default).collect())
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
        check_same_site(site, stored.site_id)?;
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
    ///
    /// A province's month is over a million doses: the database aggregates them per day (see
    /// [`Store::doses_per_day`]), and the independent queries run at once on separate
    /// connections of the pool, the doses in two halves of the period.
    pub async fn indicator_inputs(&self, site: Option<i64>, period: &Period) -> Result<Inputs> {
        // Cohorts and follow-ups look back up to 12 months before the period.
        let back = period
            .from
            .checked_sub_months(Months::new(12))
            .unwrap_or(period.from)
            .to_string();
        let (from, to) = (period.from.to_string(), period.to.to_string());
        let half = period.from + chrono::Duration::days((period.to - period.from).num_days() / 2);
        let clients = format!(
            "SELECT id, enrolled_on, discharged_on, sex, birth_year FROM clients \
             WHERE enrolled_on <= $1 AND (discharged_on IS NULL OR discharged_on >= $2){} \
             ORDER BY id",
            site_filter("site_id", site)
        );
        // Without a site, every test's client is looked up among the clients anyway.
        let urine = match site {
            Some(id) => format!(
                "SELECT u.client_id, u.collected_on, u.negative FROM urine_tests u \
                 JOIN clients c ON c.id = u.client_id \
                 WHERE u.collected_on >= $1 AND u.collected_on <= $2 AND c.site_id = {id}"
            ),
            None => "SELECT client_id, collected_on, negative FROM urine_tests \
                     WHERE collected_on >= $1 AND collected_on <= $2"
                .to_owned(),
        };
        // Test and referral dates are on or before the day they were recorded, so an encounter
        // about the period was recorded on or after its first day.
        let encounters = format!(
            "SELECT e.on_day, e.detail, COALESCE(c.sex, e.sex) AS who_sex, \
             COALESCE(c.birth_year, e.birth_year) AS who_birth_year \
             FROM encounters e LEFT JOIN clients c ON c.id = e.client_id \
             WHERE e.on_day >= $1{} ORDER BY e.id",
            site_filter("e.site_id", site)
        );
        let tc = format!(
            "SELECT t.id, t.site_id, t.client_id, t.admitted_on, t.phase, t.left_on, t.exit_kind, \
             t.urine_negative_6m, t.urine_negative_12m, c.sex, c.birth_year \
             FROM tc_episodes t JOIN clients c ON c.id = t.client_id \
             WHERE t.left_on >= $1{} ORDER BY t.id",
            site_filter("t.site_id", site)
        );
        let fetch = |sql, binds| fetch(self.pool(), sql, binds);
        let [clients, first_half, second_half, urine, encounters, tc]: [Vec<AnyRow>; 6] =
            at_once(vec![
                fetch(&clients, &[&to, &back]),
                Box::pin(self.doses_per_day(site, period.from, half)),
                Box::pin(self.doses_per_day(site, half + chrono::Duration::days(1), period.to)),
                fetch(&urine, &[&from, &to]),
                fetch(&encounters, &[&from]),
                fetch(&tc, &[&back]),
            ])
            .await?
            .try_into()
            .map_err(|_| corrupt("six queries, six answers"))?;

        let mut ids = Vec::with_capacity(clients.len());
        let mut facts = Vec::with_capacity(clients.len());
        for r in &clients {
            ids.push(col::<i64>(r, "id")?);
            facts.push(ClientFacts {
                who: who(r, "sex", "birth_year")?,
                enrolled_on: day(r, "enrolled_on")?,
                discharged_on: opt_day(r, "discharged_on")?,
                dose_days: DaySet::starting(period.from),
                take_home_days: DaySet::starting(period.from),
                urine: Vec::new(),
            });
        }
        let index = Positions::new(&ids);
        // Per day: clients whose every dose that day is an unconfirmed take-home (pending,
        // unopened, lost) did not attend; (unconfirmed doses, all doses) of each such client.
        let mut unconfirmed: HashMap<usize, (u32, u32)> = HashMap::new();
        for r in first_half.iter().chain(&second_half) {
            let on = day(r, "day")?;
            let take_home: Option<String> = col(r, "take_home")?;
            unconfirmed.clear();
            for entry in take_home.as_deref().unwrap_or("").split(',') {
                if entry.is_empty() {
                    continue;
                }
                let digits = entry
                    .find(|ch: char| !ch.is_ascii_digit())
                    .unwrap_or(entry.len());
                let id = entry[..digits].parse::<i64>().map_err(corrupt)?;
                if let Some(i) = index.get(id) {
                    facts[i].take_home_days.insert(on);
                    if UNCONFIRMED
                        .iter()
                        .any(|rule| rule.strip_prefix(TAKE_HOME) == Some(&entry[digits..]))
                    {
                        unconfirmed.entry(i).or_default().0 += 1;
                    }
                }
            }
            let ids: String = col(r, "ids")?;
            for id in ids.split(',') {
                let id = id.parse::<i64>().map_err(corrupt)?;
                if let Some(i) = index.get(id) {
                    facts[i].dose_days.insert(on);
                    if let Some(u) = unconfirmed.get_mut(&i) {
                        u.1 += 1;
                    }
                }
            }
            for (&i, &(unconfirmed, all)) in &unconfirmed {
                if unconfirmed == all {
                    facts[i].dose_days.remove(on);
                }
            }
        }
        for r in &urine {
            if let Some(i) = index.get(col::<i64>(r, "client_id")?) {
                let negative: i64 = col(r, "negative")?;
                facts[i]
                    .urine
                    .push((day(r, "collected_on")?, negative != 0));
            }
        }
        let encounters = encounters
            .iter()
            .map(|r| {
                Ok(EncounterFact {
                    who: who(r, "who_sex", "who_birth_year")?,
                    on: day(r, "on_day")?,
                    service: service(r)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tc = tc
            .iter()
            .map(|r| {
                Ok(TcFact {
                    who: who(r, "sex", "birth_year")?,
                    episode: episode_row(r)?.episode,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Inputs {
            clients: facts,
            encounters,
            tc,
        })
    }

    /// The doses from `first` to `last` of the clients of `site` (or of every client), one row
    /// per day with a dose, read in day order straight from the covering index
    /// `doses_day_client`: `day`; `ids`, the ids of the clients dosed that day, comma-separated
    /// (once per portion); and `take_home`, the take-home doses of the day as the client's id
    /// followed by the rest of the rule after `take_home` (`17`, `17_pending`, …), or NULL.
    async fn doses_per_day(
        &self,
        site: Option<i64>,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<AnyRow>> {
        if last < first {
            return Ok(Vec::new());
        }
        let (join, site_cond) = match site {
            Some(id) => (
                " JOIN clients c ON c.id = d.client_id",
                format!(" AND c.site_id = {id}"),
            ),
            None => ("", String::new()),
        };
        let sql = match self.backend() {
            Backend::Sqlite => format!(
                "SELECT d.day, group_concat(d.client_id) AS ids, \
                 group_concat(CASE WHEN d.rule >= '{TAKE_HOME}' AND d.rule < '{TAKE_HOME_END}' \
                 THEN d.client_id || substr(d.rule, {suffix}) END) AS take_home \
                 FROM doses d{join} WHERE d.day >= $1 AND d.day <= $2{site_cond} GROUP BY d.day",
                suffix = TAKE_HOME.len() + 1,
            ),
            Backend::Postgres => format!(
                "SELECT d.day, string_agg(d.client_id::text, ',') AS ids, \
                 string_agg(CASE WHEN left(d.rule, {len}) = '{TAKE_HOME}' \
                 THEN d.client_id::text || substr(d.rule, {suffix}) END, ',') AS take_home \
                 FROM doses d{join} WHERE d.day >= $1 AND d.day <= $2{site_cond} GROUP BY d.day",
                len = TAKE_HOME.len(),
                suffix = TAKE_HOME.len() + 1,
            ),
        };
        Ok(sqlx::query(&sql)
            .bind(first.to_string())
            .bind(last.to_string())
            .fetch_all(self.pool())
            .await?)
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
