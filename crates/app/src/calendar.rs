//! The centre calendar: the days the centre is closed (a holiday such as the Spring Festival).
//! A closure day is never a missed day: the dispensing window's missed-dose rule and the
//! adherence figures skip it (`anxin_domain::clinic::missed::missed_days`). The manager adds a
//! closure (today or later, with a short note) and removes one not yet past; staff who dose or
//! prescribe read the upcoming closures, each with the clients dosed at the centre whose dose
//! that day no take-home box compartment or guest arrangement covers: the ones still to plan for.

use std::collections::HashSet;

use anxin_domain::clinic::orders::order_on;
use anxin_domain::{Code, Permission, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{parse_date, Actor, App, Result};

/// The longest note of a closure (characters).
pub const NOTE_MAX: usize = 40;

/// A closure to add.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureRequest {
    /// The day, `YYYY-MM-DD`: today or later.
    pub day: String,
    /// A short note, e.g. 春节 (at most 40 characters; may be empty).
    #[serde(default)]
    pub note: String,
}

/// A client whose dose on a closure day is not yet covered.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Uncovered {
    pub client_id: i64,
    pub uic: String,
}

/// One closure day of the centre.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClosureView {
    pub id: i64,
    pub day: NaiveDate,
    pub note: String,
    /// Who added it (username).
    pub added_by: Option<String>,
    pub added_at: DateTime<Utc>,
    /// Clients dosed at the centre with an order in force that day whose dose no take-home box
    /// compartment or guest arrangement covers.
    pub uncovered: u32,
    /// Those clients, for roles that read client records (`null` otherwise).
    pub uncovered_clients: Option<Vec<Uncovered>>,
}

/// The centre's calendar from today on.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CalendarView {
    pub today: NaiveDate,
    /// Whether the centre is closed today.
    pub closed_today: bool,
    /// Today's and the coming closures, by day.
    pub closures: Vec<ClosureView>,
}

/// The upcoming closures of the actor's centre, each with the clients not yet covered.
pub async fn calendar(app: &App, me: &Actor) -> Result<CalendarView> {
    me.require(Permission::DoseRecord)?;
    let today = app.today();
    let closures = app.store.closures_from(me.site_id, today).await?;
    let days: Vec<NaiveDate> = closures.iter().map(|c| c.day).collect();
    let covered: HashSet<(i64, NaiveDate)> = app
        .store
        .covered_doses(me.site_id, &days)
        .await?
        .into_iter()
        .collect();
    let facts = if days.is_empty() {
        vec![]
    } else {
        app.store.day_facts(me.site_id, today).await?
    };
    let names = me.role.has(Permission::ClientRead);
    let out = closures
        .into_iter()
        .map(|c| {
            let uncovered: Vec<Uncovered> = facts
                .iter()
                .filter(|f| !f.guest && f.client.stage.doses_at_centre())
                .filter(|f| {
                    order_on(&f.orders, c.day)
                        .and_then(|o| o.mg_on(c.day))
                        .is_some()
                })
                .filter(|f| !covered.contains(&(f.client.id, c.day)))
                .map(|f| Uncovered {
                    client_id: f.client.id,
                    uic: f.client.uic.clone(),
                })
                .collect();
            ClosureView {
                id: c.id,
                day: c.day,
                note: c.note,
                added_by: c.added_by,
                added_at: c.added_at,
                uncovered: u32::try_from(uncovered.len()).unwrap_or(u32::MAX),
                uncovered_clients: names.then_some(uncovered),
            }
        })
        .collect::<Vec<_>>();
    Ok(CalendarView {
        today,
        closed_today: out.first().is_some_and(|c| c.day == today),
        closures: out,
    })
}

/// Today's closure of the actor's centre, if it is closed today: its note (the day list's notice).
pub async fn closed_today(app: &App, me: &Actor) -> Result<Option<String>> {
    me.require(Permission::DoseRecord)?;
    Ok(app
        .store
        .closure_on(me.site_id, app.today())
        .await?
        .map(|c| c.note))
}

/// Closes the actor's centre on a day (today or later); answers the closure's id.
pub async fn add_closure(app: &App, me: &Actor, req: &ClosureRequest) -> Result<i64> {
    me.require(Permission::CalendarManage)?;
    let today = app.today();
    let day = parse_date("day", &req.day)?;
    if day < today {
        return Err(Problem::new(Code::ClosureInPast)
            .field("day")
            .arg("day", day)
            .arg("today", today)
            .into());
    }
    let note = req.note.trim();
    if note.chars().count() > NOTE_MAX {
        return Err(Problem::new(Code::TextTooLong)
            .field("note")
            .arg("max", NOTE_MAX)
            .into());
    }
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let id = work.add_closure(me.site_id, day, note).await?;
    work.commit().await?;
    Ok(id)
}

/// Removes a closure of the actor's centre that is not past (today's or a later one).
pub async fn remove_closure(app: &App, me: &Actor, id: i64) -> Result<NaiveDate> {
    me.require(Permission::CalendarManage)?;
    let today = app.today();
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let removed = work.remove_closure(me.site_id, id).await?;
    if removed.day < today {
        // Dropping the work rolls the removal back: a past closure stays in the record.
        return Err(Problem::new(Code::ClosureInPast)
            .field("day")
            .arg("day", removed.day)
            .arg("today", today)
            .into());
    }
    work.commit().await?;
    Ok(removed.day)
}
