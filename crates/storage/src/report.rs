//! The facts the indicators are computed from ([`Store::indicator_inputs`]), read fast enough
//! for a province: 50,000 clients and a year of daily doses.
//!
//! Two things make it fast. The doses are not read one by one: the `dose_months` table, kept by
//! triggers on `doses` (migration 0009), holds each client's month as two bitmaps (attended,
//! take-home), so a month is one row per client. And on SQLite the rows are read on a blocking
//! thread through a read-only `rusqlite` connection to the same file, in one read transaction
//! (one snapshot): sqlx's SQLite driver hands every row across threads, which costs more than
//! the query itself at this size. PostgreSQL runs the same queries on the pool, each packed by
//! `string_agg` into one value, since sqlx's `Any` rows are as costly. Both paths decode into
//! the same plain rows ([`Fields`]), and one function turns those into [`Inputs`]. No UIC or
//! identity is read.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anxin_domain::clinic::episodes::{Episode, EpisodeEnd};
use anxin_domain::indicators::{
    ClientFacts, DaySet, DeathFact, EncounterFact, Inputs, OverdoseFact, Period, Screening, TcFact,
};
use anxin_domain::services::Service;
use chrono::{Datelike, Months, NaiveDate};
use sqlx::any::AnyRow;

use crate::clients::parse_day;
use crate::services::{client_record, contact_record, corrupt, episode_row, who, who_of};
use crate::{Backend, Result, Store, StoreError};

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

/// The rows of `sql` with its text parameters.
async fn fetch(pool: &sqlx::AnyPool, sql: &str, binds: &[String]) -> Result<Vec<AnyRow>> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(b.clone());
    }
    Ok(q.fetch_all(pool).await?)
}

/// A client in the report's scope.
struct ClientRow {
    id: i64,
    facts: ClientFacts,
}

/// A client's month of doses: bit `d - 1` stands for day `d`; `mg` the month's milligrams.
struct MonthRow {
    client_id: i64,
    start: NaiveDate,
    attended: u64,
    take_home: u64,
    mg: u64,
}

/// A recorded episode of care (migration 0023) of a client.
struct EpisodeRow {
    client_id: i64,
    episode: Episode,
}

/// A urine test: client, collection day, negative for non-prescribed opioids.
type UrineRow = (i64, NaiveDate, bool);

/// Everything read for one report, before it is put together.
struct Rows {
    clients: Vec<ClientRow>,
    months: Vec<MonthRow>,
    episodes: Vec<EpisodeRow>,
    urine: Vec<UrineRow>,
    encounters: Vec<EncounterRow>,
}

/// An encounter, and the enrolled client it was with (whose sex and birth year are the
/// client's, not the encounter's).
struct EncounterRow {
    client_id: Option<i64>,
    fact: EncounterFact,
}

/// The report's queries and their (text) parameters, `$1`, `$2` in order.
#[derive(Clone)]
struct Queries {
    clients: (String, [String; 2]),
    months: (String, [String; 2]),
    /// The episodes of care overlapping the year before the period and the period.
    episodes: (String, [String; 2]),
    urine: (String, [String; 2]),
    encounters: (String, [String; 1]),
    /// Therapeutic-community episodes: a few, read through the pool on both backends.
    tc: (String, [String; 1]),
    /// Overdose events of the period (migration 0019): a few, through the pool.
    overdoses: (String, [String; 2]),
    /// Deaths of the period: a few, through the pool.
    deaths: (String, [String; 2]),
}

impl Queries {
    fn new(sites: Option<&[i64]>, period: &Period) -> Queries {
        // Cohorts and follow-ups look back up to 12 months before the period.
        let back = period
            .from
            .checked_sub_months(Months::new(12))
            .unwrap_or(period.from)
            .to_string();
        let (from, to) = (period.from.to_string(), period.to.to_string());
        let month = |d: NaiveDate| format!("{:04}-{:02}", d.year(), d.month());
        // The scope's centres (one, the centres of a unit, or every one: `None`).
        let site_of = |column: &str| match sites {
            Some([id]) => format!(" AND {column} = {id}"),
            Some([]) => " AND 1 = 0".to_owned(),
            Some(ids) => {
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>();
                format!(" AND {column} IN ({})", list.join(","))
            }
            None => String::new(),
        };
        // Without a site, the rows of clients outside the scope are dropped when put together.
        let join = if sites.is_some() {
            " JOIN clients c ON c.id = x.client_id"
        } else {
            ""
        };
        Queries {
            clients: (
                format!(
                    "SELECT id, enrolled_on, discharged_on, sex, birth_year FROM clients \
                     WHERE enrolled_on <= $1 AND (discharged_on IS NULL OR discharged_on >= $2){}",
                    site_of("site_id")
                ),
                [to.clone(), back.clone()],
            ),
            months: (
                format!(
                    "SELECT x.month, x.client_id, x.attended, x.take_home, x.mg \
                     FROM dose_months x{join} WHERE x.month >= $1 AND x.month <= $2{}",
                    site_of("c.site_id")
                ),
                // From the month of `back` on: the drop-out rule and the cohorts need the
                // year before the period (see `doses_from`).
                [month(doses_from(period)), month(period.to)],
            ),
            episodes: (
                format!(
                    "SELECT x.client_id, x.started_on, x.ended_on, x.end_kind FROM episodes x \
                     WHERE x.started_on <= $1 AND (x.ended_on IS NULL OR x.ended_on >= $2){} \
                     ORDER BY x.client_id, x.started_on, x.id",
                    site_of("x.site_id")
                ),
                [to.clone(), back.clone()],
            ),
            urine: (
                format!(
                    "SELECT x.client_id, x.collected_on, x.negative FROM urine_tests x{join} \
                     WHERE x.collected_on >= $1 AND x.collected_on <= $2{}",
                    site_of("c.site_id")
                ),
                [from.clone(), to.clone()],
            ),
            // Test and referral dates are on or before the day they were recorded, so an
            // encounter about the period was recorded on or after its first day.
            encounters: (
                format!(
                    "SELECT e.on_day, e.detail, e.client_id, e.sex, e.birth_year, e.id \
                     FROM encounters e WHERE e.on_day >= $1{}",
                    site_of("e.site_id")
                ),
                [from.clone()],
            ),
            tc: (
                format!(
                    "SELECT t.id, t.site_id, t.client_id, t.admitted_on, t.phase, t.left_on, \
                     t.exit_kind, t.urine_negative_6m, t.urine_negative_12m, c.sex, c.birth_year \
                     FROM tc_episodes t JOIN clients c ON c.id = t.client_id \
                     WHERE t.left_on >= $1{} ORDER BY t.id",
                    site_of("t.site_id")
                ),
                [back.clone()],
            ),
            overdoses: (
                format!(
                    "SELECT o.occurred_on, o.naloxone, o.client_id, c.sex, c.birth_year \
                     FROM overdoses o JOIN clients c ON c.id = o.client_id \
                     WHERE o.occurred_on >= $1 AND o.occurred_on <= $2{}",
                    site_of("o.site_id")
                ),
                [from.clone(), to.clone()],
            ),
            deaths: (
                format!(
                    "SELECT x.died_on, x.client_id, c.sex, c.birth_year \
                     FROM deaths x JOIN clients c ON c.id = x.client_id \
                     WHERE x.died_on >= $1 AND x.died_on <= $2{}",
                    site_of("x.site_id")
                ),
                [from.clone(), to.clone()],
            ),
        }
    }
}

/// The first day from which the report reads every dose: the first of the month a year before
/// the period. The figures of the period are exact for a drop-out rule of up to 365 days: an
/// episode older than this day counts its missed days from it, and its drop-out day then falls
/// before the period either way.
fn doses_from(period: &Period) -> NaiveDate {
    let back = period
        .from
        .checked_sub_months(Months::new(12))
        .unwrap_or(period.from);
    back.with_day(1).unwrap_or(back)
}

fn client_facts(
    period: &Period,
    enrolled_on: NaiveDate,
    discharged_on: Option<NaiveDate>,
    who: anxin_domain::indicators::Who,
) -> ClientFacts {
    ClientFacts {
        dose_days: DaySet::starting(doses_from(period)),
        take_home_days: DaySet::starting(doses_from(period)),
        ..ClientFacts::new(who, enrolled_on, discharged_on)
    }
}

/// `YYYY-MM` as the first day of that month.
fn month_start(raw: &str) -> Result<NaiveDate> {
    let bad = || corrupt(format!("dose_months.month `{raw}`"));
    let (y, m) = raw.split_once('-').ok_or_else(bad)?;
    NaiveDate::from_ymd_opt(
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        1,
    )
    .ok_or_else(bad)
}

fn mask(raw: i64) -> Result<u64> {
    u64::try_from(raw).map_err(|_| corrupt(format!("dose_months mask {raw}")))
}

/// The bits of the month starting at `start` whose days fall in `period`.
fn period_mask(start: NaiveDate, period: &Period) -> u64 {
    let days = start
        .checked_add_months(Months::new(1))
        .map_or(31, |next| (next - start).num_days());
    let lo = (period.from - start).num_days().clamp(0, days);
    let hi = ((period.to - start).num_days() + 1).clamp(0, days); // exclusive
    if lo >= hi {
        return 0;
    }
    let upto = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upto & !((1u64 << lo) - 1)
}

/// The rows put together: each client's days, take-home days and urine tests, and each
/// encounter's sex and age from its client. Also answers the encounters whose client is
/// outside the report's clients (enrolled after the period, or discharged long before it):
/// `(encounter index, client id)`, for [`Store::indicator_inputs`] to look up.
fn assemble(period: &Period, rows: Rows, tc: Vec<TcFact>) -> (Inputs, Vec<(usize, i64)>) {
    let ids: Vec<i64> = rows.clients.iter().map(|c| c.id).collect();
    let mut facts: Vec<ClientFacts> = rows.clients.into_iter().map(|c| c.facts).collect();
    let index = Positions::new(&ids);
    let history = Period {
        from: doses_from(period),
        to: period.to,
    };
    for m in &rows.months {
        if let Some(i) = index.get(m.client_id) {
            let keep = period_mask(m.start, &history);
            facts[i].dose_days.insert_bits(m.start, m.attended & keep);
            facts[i]
                .take_home_days
                .insert_bits(m.start, m.take_home & keep);
            // The milligrams of the period: a month wholly inside it counts whole, a month
            // partly inside it in proportion to its dose days inside.
            let all = m.attended | m.take_home;
            let inside = all & period_mask(m.start, period);
            if inside != 0 {
                facts[i].dose_mg += if inside == all {
                    m.mg
                } else {
                    m.mg * u64::from(inside.count_ones()) / u64::from(all.count_ones())
                };
            }
        }
    }
    let mut episodes = rows.episodes;
    episodes.sort_by_key(|e| (e.client_id, e.episode.started_on));
    for e in episodes {
        if let Some(i) = index.get(e.client_id) {
            let eps = &mut facts[i].episodes;
            // Across the deployment, a transfer is no exit: the episode goes on at the new
            // centre (at one centre the other's episode is not read).
            match eps.last_mut() {
                Some(last)
                    if last.end == Some(EpisodeEnd::Transfer)
                        && last.ended_on == Some(e.episode.started_on) =>
                {
                    last.ended_on = e.episode.ended_on;
                    last.end = e.episode.end;
                }
                _ => eps.push(e.episode),
            }
        }
    }
    for (client, on, negative) in rows.urine {
        if let Some(i) = index.get(client) {
            facts[i].urine.push((on, negative));
        }
    }
    let mut outside = Vec::new();
    let mut encounters = Vec::with_capacity(rows.encounters.len());
    for (k, e) in rows.encounters.into_iter().enumerate() {
        let mut fact = e.fact;
        if let Some(id) = e.client_id {
            match index.get(id) {
                Some(i) => {
                    fact.who = facts[i].who;
                    let screening = match &fact.service {
                        Service::HivTest { tested_on, .. } => {
                            tested_on.map(|d| (d, Screening::Hiv))
                        }
                        Service::HcvTest { tested_on, .. } => {
                            tested_on.map(|d| (d, Screening::Hcv))
                        }
                        Service::SyphilisTest { tested_on, .. } => {
                            tested_on.map(|d| (d, Screening::Syphilis))
                        }
                        _ => None,
                    };
                    facts[i].screenings.extend(screening);
                }
                None => outside.push((k, id)),
            }
        }
        encounters.push(fact);
    }
    let inputs = Inputs {
        clients: facts,
        encounters,
        tc,
        doses_known_from: Some(history.from),
        ..Inputs::default()
    };
    (inputs, outside)
}

/// One row of a report query, whichever way it was read: by position, text or integer, `None`
/// for NULL.
trait Fields {
    fn text(&self, i: usize) -> Result<Option<&str>>;
    fn int(&self, i: usize) -> Result<Option<i64>>;

    fn req_text(&self, i: usize, what: &str) -> Result<&str> {
        self.text(i)?
            .ok_or_else(|| corrupt(format!("{what} is NULL")))
    }

    fn req_int(&self, i: usize, what: &str) -> Result<i64> {
        self.int(i)?
            .ok_or_else(|| corrupt(format!("{what} is NULL")))
    }

    fn day(&self, i: usize, what: &str) -> Result<NaiveDate> {
        parse_day(what, self.req_text(i, what)?)
    }
}

impl Fields for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        use rusqlite::types::ValueRef;
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t).map(Some).map_err(corrupt),
            other => Err(corrupt(format!(
                "column {i}: text expected, {:?}",
                other.data_type()
            ))),
        }
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        self.get::<_, Option<i64>>(i).map_err(StoreError::from)
    }
}

impl Fields for AnyRow {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        use sqlx::Row;
        self.try_get(i)
            .map_err(|e| corrupt(format!("column {i}: {e}")))
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        use sqlx::Row;
        self.try_get(i)
            .map_err(|e| corrupt(format!("column {i}: {e}")))
    }
}

/// The separators of packed rows: ASCII's unit and record separators, control characters that
/// JSON never holds unescaped (nor do dates, numbers and codes).
const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// The most fields a packed row has.
const MAX_FIELDS: usize = 6;

/// A row packed by PostgreSQL's `string_agg` (see [`packed`]): fields separated by [`FIELD`],
/// NULL as an empty field. Split in place, without an allocation per row.
struct Packed<'a> {
    fields: [&'a str; MAX_FIELDS],
    len: usize,
}

impl<'a> Packed<'a> {
    fn new(record: &'a str) -> Result<Packed<'a>> {
        let mut p = Packed {
            fields: [""; MAX_FIELDS],
            len: 0,
        };
        for f in record.split(FIELD) {
            *p.fields
                .get_mut(p.len)
                .ok_or_else(|| corrupt(format!("packed row with over {MAX_FIELDS} fields")))? = f;
            p.len += 1;
        }
        Ok(p)
    }
}

impl Fields for Packed<'_> {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        match self.fields[..self.len].get(i) {
            Some(&"") => Ok(None),
            Some(f) => Ok(Some(f)),
            None => Err(corrupt(format!("packed row without field {i}"))),
        }
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        self.text(i)?
            .map(|t| t.parse().map_err(|_| corrupt(format!("field {i}: `{t}`"))))
            .transpose()
    }
}

/// The rows of `sql` (columns `names`, at most [`MAX_FIELDS`]) packed into one text value on
/// PostgreSQL, so that they cross sqlx's `Any` driver as one value instead of tens of thousands
/// of rows.
fn packed(sql: &str, names: &[&str]) -> String {
    let fields = names.join(", chr(31), ");
    format!("SELECT string_agg(concat({fields}), chr(30)) AS packed FROM ({sql}) q")
}

fn client_row(period: &Period, r: &impl Fields) -> Result<ClientRow> {
    Ok(ClientRow {
        id: r.req_int(0, "clients.id")?,
        facts: client_facts(
            period,
            r.day(1, "enrolled_on")?,
            r.text(2)?
                .map(|d| parse_day("discharged_on", d))
                .transpose()?,
            who_of(
                client_record(r.req_int(0, "clients.id")?),
                r.text(3)?,
                r.int(4)?,
            )?,
        ),
    })
}

fn month_row(r: &impl Fields) -> Result<MonthRow> {
    Ok(MonthRow {
        start: month_start(r.req_text(0, "dose_months.month")?)?,
        client_id: r.req_int(1, "dose_months.client_id")?,
        attended: mask(r.req_int(2, "dose_months.attended")?)?,
        take_home: mask(r.req_int(3, "dose_months.take_home")?)?,
        mg: mask(r.req_int(4, "dose_months.mg")?)?,
    })
}

fn care_episode_row(r: &impl Fields) -> Result<EpisodeRow> {
    let ended_on = r
        .text(2)?
        .map(|d| parse_day("episodes.ended_on", d))
        .transpose()?;
    let end = r
        .text(3)?
        .map(|k| EpisodeEnd::parse(k).ok_or_else(|| corrupt(format!("episodes.end_kind `{k}`"))))
        .transpose()?;
    Ok(EpisodeRow {
        client_id: r.req_int(0, "episodes.client_id")?,
        episode: Episode {
            ended_on,
            end,
            ..Episode::open(r.day(1, "episodes.started_on")?)
        },
    })
}

fn urine_row(r: &impl Fields) -> Result<UrineRow> {
    Ok((
        r.req_int(0, "urine_tests.client_id")?,
        r.day(1, "collected_on")?,
        r.req_int(2, "urine_tests.negative")? != 0,
    ))
}

fn encounter_row(r: &impl Fields) -> Result<EncounterRow> {
    Ok(EncounterRow {
        client_id: r.int(2)?,
        fact: EncounterFact {
            on: r.day(0, "on_day")?,
            service: serde_json::from_str(r.req_text(1, "detail")?)
                .map_err(|e| corrupt(format!("encounter detail: {e}")))?,
            // An anonymous contact's own; a client's is filled in by `assemble`.
            who: who_of(
                contact_record(r.req_int(5, "encounters.id")?),
                r.text(3)?,
                r.int(4)?,
            )?,
        },
    })
}

/// Runs packed `sql` (see [`packed`]) on the pool and decodes its records with `each`.
async fn fetch_packed<T>(
    pool: &sqlx::AnyPool,
    sql: String,
    binds: &[String],
    each: impl Fn(&Packed<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in fetch(pool, &sql, binds).await? {
        if let Some(all) = row.text(0)? {
            for record in all.split(RECORD) {
                out.push(each(&Packed::new(record)?)?);
            }
        }
    }
    Ok(out)
}

/// The report's rows from PostgreSQL: the four queries at once, each on its own connection and
/// packed into one value, each decoded as soon as it arrives (while the server still works on
/// the others).
async fn read_pool(store: &Store, period: &Period, q: &Queries) -> Result<Rows> {
    let pool = store.pool();
    let (clients, months, urine, encounters, episodes) = tokio::join!(
        fetch_packed(
            pool,
            packed(
                &q.clients.0,
                &["id", "enrolled_on", "discharged_on", "sex", "birth_year"],
            ),
            &q.clients.1,
            |r: &Packed<'_>| client_row(period, r),
        ),
        fetch_packed(
            pool,
            packed(
                &q.months.0,
                &["month", "client_id", "attended", "take_home", "mg"]
            ),
            &q.months.1,
            |r: &Packed<'_>| month_row(r),
        ),
        fetch_packed(
            pool,
            packed(&q.urine.0, &["client_id", "collected_on", "negative"]),
            &q.urine.1,
            |r: &Packed<'_>| urine_row(r),
        ),
        fetch_packed(
            pool,
            packed(
                &q.encounters.0,
                &["on_day", "detail", "client_id", "sex", "birth_year", "id"],
            ),
            &q.encounters.1,
            |r: &Packed<'_>| encounter_row(r),
        ),
        fetch_packed(
            pool,
            packed(
                &q.episodes.0,
                &["client_id", "started_on", "ended_on", "end_kind"]
            ),
            &q.episodes.1,
            |r: &Packed<'_>| care_episode_row(r),
        ),
    );
    Ok(Rows {
        clients: clients?,
        months: months?,
        episodes: episodes?,
        urine: urine?,
        encounters: encounters?,
    })
}

/// Runs `sql` with `binds` as `$1`, `$2`… and maps every row with `each`.
fn sqlite_rows<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    binds: &[String],
    each: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    for (i, b) in binds.iter().enumerate() {
        let at = stmt
            .parameter_index(&format!("${}", i + 1))?
            .ok_or_else(|| corrupt(format!("report query without ${}", i + 1)))?;
        stmt.raw_bind_parameter(at, b)?;
    }
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(each(row)?);
    }
    Ok(out)
}

/// A read-only connection to the SQLite file at `path`.
fn open_sqlite(path: &Path) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| corrupt(format!("report reader stopped: {e}")))?
}

/// The report's rows from the SQLite file at `path`, on two blocking threads: the clients with
/// their months and urine tests in one read transaction (one snapshot), the encounters beside
/// them on a second connection.
async fn read_sqlite(path: &Path, period: &Period, q: &Queries) -> Result<Rows> {
    let (file, period, q1) = (path.to_owned(), *period, q.clone());
    let clients = blocking(move || {
        let conn = open_sqlite(&file)?;
        let tx = conn.unchecked_transaction()?;
        Ok((
            sqlite_rows(&tx, &q1.clients.0, &q1.clients.1, |r| {
                client_row(&period, r)
            })?,
            sqlite_rows(&tx, &q1.months.0, &q1.months.1, |r| month_row(r))?,
            sqlite_rows(&tx, &q1.episodes.0, &q1.episodes.1, |r| care_episode_row(r))?,
            sqlite_rows(&tx, &q1.urine.0, &q1.urine.1, |r| urine_row(r))?,
        ))
    });
    let (file, q2) = (path.to_owned(), q.clone());
    let encounters = blocking(move || {
        let conn = open_sqlite(&file)?;
        sqlite_rows(&conn, &q2.encounters.0, &q2.encounters.1, |r| {
            encounter_row(r)
        })
    });
    let (clients, encounters) = tokio::join!(clients, encounters);
    let (clients, months, episodes, urine) = clients?;
    Ok(Rows {
        clients,
        months,
        episodes,
        urine,
        encounters: encounters?,
    })
}

impl Store {
    /// Recomputes every client's month of doses from `doses` (migration 0009's definition, the
    /// view `dose_month_bits`), in one transaction. The triggers keep the table exact on every
    /// write; this is for a bulk load that ran with triggers off (PostgreSQL's
    /// `session_replication_role = replica`, as restore tools and the indicator benchmark do).
    /// Answers how many client-months there are.
    pub async fn rebuild_dose_months(&self) -> Result<u64> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM dose_months")
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(
            "INSERT INTO dose_months (month, client_id, attended, take_home, mg) \
             SELECT month, client_id, attended, take_home, mg FROM dose_month_bits",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// The facts every indicator of a period is computed from, for `site` or every site
    /// (`None`). Clients count at their own site (their guest doses elsewhere included);
    /// encounters and episodes at the site that recorded them. No UIC leaves this call.
    pub async fn indicator_inputs(&self, site: Option<i64>, period: &Period) -> Result<Inputs> {
        self.indicator_inputs_of(site.as_ref().map(std::slice::from_ref), period)
            .await
    }

    /// [`Store::indicator_inputs`] for a set of sites (the centres of an organisation unit;
    /// `None` for every site, an empty set for none).
    pub async fn indicator_inputs_of(
        &self,
        sites: Option<&[i64]>,
        period: &Period,
    ) -> Result<Inputs> {
        let queries = Queries::new(sites, period);
        let tc = async {
            fetch(self.pool(), &queries.tc.0, &queries.tc.1)
                .await?
                .iter()
                .map(|r| {
                    Ok(TcFact {
                        who: who(r, "client_id", "sex", "birth_year")?,
                        episode: episode_row(r)?.episode,
                    })
                })
                .collect::<Result<Vec<_>>>()
        };
        let rows = async {
            match (self.backend(), self.sqlite_file()) {
                (Backend::Postgres, _) => read_pool(self, period, &queries).await,
                (Backend::Sqlite, Some(path)) => read_sqlite(path, period, &queries).await,
                (Backend::Sqlite, None) => Err(StoreError::BadUrl(
                    "the indicator report reads a SQLite database from its file; \
                     an in-memory database has none"
                        .into(),
                )),
            }
        };
        let outcomes = async {
            let overdoses = fetch(self.pool(), &queries.overdoses.0, &queries.overdoses.1)
                .await?
                .iter()
                .map(|r| {
                    let naloxone: i64 = crate::col(r, "naloxone")?;
                    Ok(OverdoseFact {
                        who: who(r, "client_id", "sex", "birth_year")?,
                        on: parse_day("occurred_on", &crate::col::<String>(r, "occurred_on")?)?,
                        naloxone: naloxone != 0,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let deaths = fetch(self.pool(), &queries.deaths.0, &queries.deaths.1)
                .await?
                .iter()
                .map(|r| {
                    Ok(DeathFact {
                        who: who(r, "client_id", "sex", "birth_year")?,
                        on: parse_day("died_on", &crate::col::<String>(r, "died_on")?)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok::<_, StoreError>((overdoses, deaths))
        };
        let (tc, rows, outcomes) = tokio::join!(tc, rows, outcomes);
        let (tc, rows, (overdoses, deaths)) = (tc?, rows?, outcomes?);
        let (mut inputs, outside) = assemble(period, rows, tc);
        inputs.overdoses = overdoses;
        inputs.deaths = deaths;
        if !outside.is_empty() {
            let mut ids: Vec<i64> = outside.iter().map(|(_, id)| *id).collect();
            ids.sort_unstable();
            ids.dedup();
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let sql = format!("SELECT id, sex, birth_year FROM clients WHERE id IN ({list})");
            let mut who_of_client = HashMap::new();
            for r in fetch(self.pool(), &sql, &[]).await? {
                let id = r.req_int(0, "clients.id")?;
                who_of_client.insert(id, who_of(client_record(id), r.text(1)?, r.int(2)?)?);
            }
            for (k, id) in outside {
                if let (Some(e), Some(who)) = (inputs.encounters.get_mut(k), who_of_client.get(&id))
                {
                    e.who = *who;
                }
            }
        }
        Ok(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn the_period_mask_keeps_the_days_of_the_period_only() {
        let oct = Period {
            from: d(2026, 10, 1),
            to: d(2026, 10, 31),
        };
        assert_eq!(period_mask(d(2026, 10, 1), &oct), (1 << 31) - 1);
        // September's 30 days are all before the period, not its first 31 bits after them.
        assert_eq!(period_mask(d(2026, 9, 1), &oct), 0);
        assert_eq!(period_mask(d(2026, 11, 1), &oct), 0);
        // 10–12 October: bits 9, 10, 11.
        let days = Period {
            from: d(2026, 10, 10),
            to: d(2026, 10, 12),
        };
        assert_eq!(period_mask(d(2026, 10, 1), &days), 0b111 << 9);
        // A quarter ending mid-month keeps the month's first 15 days.
        let q = Period {
            from: d(2026, 8, 1),
            to: d(2026, 11, 15),
        };
        assert_eq!(period_mask(d(2026, 11, 1), &q), (1 << 15) - 1);
    }

    #[test]
    fn a_packed_row_reads_empty_fields_as_null_and_refuses_extra_fields() {
        let rec = format!("17{FIELD}2026-10-01{FIELD}{FIELD}female{FIELD}1990");
        let p = Packed::new(&rec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.int(0).ok(), Some(Some(17)));
        assert_eq!(p.text(1).ok(), Some(Some("2026-10-01")));
        assert_eq!(p.text(2).ok(), Some(None));
        assert_eq!(p.int(4).ok(), Some(Some(1990)));
        assert!(p.text(5).is_err() && p.int(3).is_err());
        let too_many = ["1"; MAX_FIELDS + 1].join(&FIELD.to_string());
        assert!(Packed::new(&too_many).is_err());
    }

    #[test]
    fn a_month_reads_as_its_first_day() {
        assert_eq!(month_start("2026-02").ok(), Some(d(2026, 2, 1)));
        assert!(month_start("2026-13").is_err() && month_start("garbage").is_err());
    }
}
