//! Take-home boxes and their loads: the registry, loading (compartments written as pending
//! take-home doses, so stock is deducted and no window dose can double them), hand-out,
//! withholding future codes, loss, and return with reconciliation.

use anxin_domain::boxes::{BoxState, LoadState};
use anxin_domain::{Code, DomainError, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::audit::{append, Actor, AuditEvent};
use crate::clients::parse_day;
use crate::{col, conflict_on_unique, from_ms, to_ms, Result, Store, StoreError};

/// Dose-row rules of take-home compartments.
pub const RULE_PENDING: &str = "take_home_pending";
pub const RULE_TAKEN: &str = "take_home";
pub const RULE_UNOPENED: &str = "take_home_unopened";
pub const RULE_LOST: &str = "take_home_lost";

/// A box in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockBox {
    pub id: i64,
    pub site_id: i64,
    pub serial: String,
    pub state: BoxState,
}

/// A load as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Load {
    pub id: i64,
    pub box_id: i64,
    pub client_id: i64,
    pub site_id: i64,
    pub start_day: NaiveDate,
    pub days: i64,
    pub code_hour: i64,
    pub state: LoadState,
    pub withheld_from: Option<NaiveDate>,
    pub withhold_reason: Option<String>,
    pub reconciliation: Option<String>,
    /// The challenge the box's export must carry, once the return has started.
    pub return_challenge: Option<u32>,
    /// When that challenge was issued.
    pub challenge_at: Option<DateTime<Utc>>,
    /// The load's secret sealed with the data key; empty once the load is reconciled.
    #[serde(skip)]
    pub sealed_secret: Vec<u8>,
}

/// A compartment to write with its load.
#[derive(Debug, Clone, Copy)]
pub struct NewCompartment {
    pub index: u8,
    pub day: NaiveDate,
    pub mg: u32,
}

fn box_row(r: &AnyRow) -> Result<LockBox> {
    let state: String = col(r, "state")?;
    Ok(LockBox {
        id: col(r, "id")?,
        site_id: col(r, "site_id")?,
        serial: col(r, "serial")?,
        state: BoxState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("box state `{state}`")))?,
    })
}

const LOAD_COLUMNS: &str =
    "id, box_id, client_id, site_id, start_day, days, secret, code_hour, state, \
     withheld_from, withhold_reason, reconciliation, return_challenge, challenge_at";

/// [`LOAD_COLUMNS`] of the table aliased `l`.
fn prefixed_load_columns() -> String {
    LOAD_COLUMNS
        .split(", ")
        .map(|c| format!("l.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn load_row(r: &AnyRow) -> Result<Load> {
    let withheld: Option<String> = col(r, "withheld_from")?;
    let secret: Option<Vec<u8>> = col(r, "secret")?;
    Ok(Load {
        id: col(r, "id")?,
        box_id: col(r, "box_id")?,
        client_id: col(r, "client_id")?,
        site_id: col(r, "site_id")?,
        start_day: parse_day("start_day", &col::<String>(r, "start_day")?)?,
        days: col(r, "days")?,
        code_hour: col(r, "code_hour")?,
        state: {
            let raw: String = col(r, "state")?;
            LoadState::parse(&raw)
                .ok_or_else(|| StoreError::Corrupt(format!("load state `{raw}`")))?
        },
        withheld_from: withheld
            .map(|w| parse_day("withheld_from", &w))
            .transpose()?,
        withhold_reason: col(r, "withhold_reason")?,
        reconciliation: col(r, "reconciliation")?,
        return_challenge: col::<Option<i64>>(r, "return_challenge")?
            .map(|c| {
                u32::try_from(c).map_err(|_| StoreError::Corrupt(format!("return challenge {c}")))
            })
            .transpose()?,
        challenge_at: col::<Option<i64>>(r, "challenge_at")?
            .map(from_ms)
            .transpose()?,
        sealed_secret: secret.unwrap_or_default(),
    })
}

fn site_of(actor: &Actor) -> Result<i64> {
    actor
        .site_id
        .ok_or_else(|| DomainError::Forbidden("boxes belong to a site".into()).into())
}

impl Store {
    /// Registers a new box at the actor's site.
    pub async fn add_box(
        &self,
        actor: &Actor,
        serial: &str,
        now: DateTime<Utc>,
    ) -> Result<LockBox> {
        let site = site_of(actor)?;
        let serial = serial.trim();
        if serial.is_empty() || serial.chars().count() > 40 {
            return Err(DomainError::from(
                Problem::new(Code::BoxSerialInvalid)
                    .field("serial")
                    .arg("max", 40),
            )
            .into());
        }
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("INSERT INTO boxes (site_id, serial, state, created_at) VALUES ($1, $2, 'in_clinic', $3) RETURNING id, site_id, serial, state")
            .bind(site)
            .bind(serial.to_owned())
            .bind(to_ms(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match conflict_on_unique(e, serial) {
                StoreError::Domain(DomainError::Conflict(_)) => DomainError::from(
                    Problem::new(Code::BoxSerialTaken)
                        .field("serial")
                        .arg("serial", serial),
                )
                .into(),
                other => other,
            })?;
        let b = box_row(&row)?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("box.register", "box", b.id)
                .site(site)
                .reason(serial),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(b)
    }

    /// The boxes of a site.
    pub async fn boxes(&self, site_id: i64) -> Result<Vec<LockBox>> {
        let rows = sqlx::query(
            "SELECT id, site_id, serial, state FROM boxes WHERE site_id = $1 ORDER BY serial",
        )
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(box_row).collect()
    }

    /// A box of the actor's site by serial.
    pub async fn box_by_serial(&self, actor: &Actor, serial: &str) -> Result<LockBox> {
        let site = site_of(actor)?;
        let row = sqlx::query(
            "SELECT id, site_id, serial, state FROM boxes WHERE serial = $1 AND site_id = $2",
        )
        .bind(serial.trim().to_owned())
        .bind(site)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| {
            DomainError::from(
                Problem::new(Code::BoxUnknown)
                    .field("serial")
                    .arg("serial", serial.trim()),
            )
        })?;
        box_row(&row)
    }

    /// Writes a load: the load row, its sealed secret, one pending take-home dose per compartment
    /// (which deducts the stock and blocks a second dose those days), and the box's new state.
    /// All or nothing. `seal` turns the new load id into the sealed secret.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_load(
        &self,
        actor: &Actor,
        lockbox: &LockBox,
        client_id: i64,
        compartments: &[NewCompartment],
        code_hour: u8,
        seal: impl FnOnce(i64) -> Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Load> {
        let mut tx = self.begin_write().await?;
        let load = create_load_in(
            &mut tx,
            actor,
            lockbox,
            client_id,
            compartments,
            code_hour,
            seal,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(load)
    }

    /// One load.
    pub async fn load(&self, id: i64) -> Result<Load> {
        let row = sqlx::query(&format!(
            "SELECT {LOAD_COLUMNS} FROM box_loads WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("load {id}")))?;
        load_row(&row)
    }

    /// The loads of a client, newest first.
    pub async fn loads_of_client(&self, client_id: i64) -> Result<Vec<Load>> {
        let rows = sqlx::query(&format!(
            "SELECT {LOAD_COLUMNS} FROM box_loads WHERE client_id = $1 ORDER BY id DESC"
        ))
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(load_row).collect()
    }

    /// The site's loads that still have to come back (loaded, out, or ended with the
    /// treatment), with the box's serial and the client's UIC, oldest first.
    pub async fn loads_awaiting_return(&self, site_id: i64) -> Result<Vec<(Load, String, String)>> {
        let rows = sqlx::query(&format!(
            "SELECT {cols}, b.serial, c.uic FROM box_loads l JOIN boxes b ON b.id = l.box_id \
             JOIN clients c ON c.id = l.client_id \
             WHERE l.site_id = $1 AND l.state IN ('loaded', 'with_client', 'ended') ORDER BY l.id",
            cols = prefixed_load_columns()
        ))
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((load_row(r)?, col(r, "serial")?, col(r, "uic")?)))
            .collect()
    }

    /// The compartments of a load: (index, day, mg, dose rule).
    pub async fn compartments(&self, load_id: i64) -> Result<Vec<(u8, NaiveDate, u32, String)>> {
        let rows = sqlx::query(
            "SELECT c.idx, c.day, c.mg, d.rule FROM load_compartments c JOIN doses d ON d.id = c.dose_id \
             WHERE c.load_id = $1 ORDER BY c.idx",
        )
        .bind(load_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    u8::try_from(col::<i64>(r, "idx")?)
                        .map_err(|_| StoreError::Corrupt("idx".into()))?,
                    parse_day("day", &col::<String>(r, "day")?)?,
                    u32::try_from(col::<i64>(r, "mg")?)
                        .map_err(|_| StoreError::Corrupt("mg".into()))?,
                    col(r, "rule")?,
                ))
            })
            .collect()
    }

    /// Moves a load and its box on: handed out to the client, or lost. Audited.
    pub async fn move_load(
        &self,
        actor: &Actor,
        load: &Load,
        to_box: BoxState,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut work = self.begin_work(actor, now).await?;
        work.move_load(load, to_box, reason).await?;
        work.commit().await
    }

    /// Withholds the codes of a load from `from` on: queued messages for those days expire.
    pub async fn withhold_codes(
        &self,
        actor: &Actor,
        load: &Load,
        from: NaiveDate,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut work = self.begin_work(actor, now).await?;
        let out = work.withhold_codes(load, from, reason).await?;
        work.commit().await?;
        Ok(out)
    }

    /// Indices of the compartments whose code was released: its message went to the gateway or
    /// beyond. A code still queued, stopped, expired or failed was never released.
    pub async fn codes_released(&self, load: &Load) -> Result<Vec<u8>> {
        let mut out = vec![];
        for offset in 0..load.days {
            let state = self.code_state(load.id, offset).await?;
            if state.is_some_and(|s| s.may_have_reached()) {
                out.push(u8::try_from(offset).unwrap_or(u8::MAX));
            }
        }
        Ok(out)
    }

    /// The state of the message carrying compartment `idx`'s code, if one was queued.
    pub async fn code_state(
        &self,
        load_id: i64,
        idx: i64,
    ) -> Result<Option<anxin_domain::sms::MessageState>> {
        let row = sqlx::query("SELECT state FROM sms_outbox WHERE idempotency_key = $1")
            .bind(code_key(load_id, idx))
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let raw: String = col(&r, "state")?;
            raw.parse()
                .map_err(|_| StoreError::Corrupt(format!("message state `{raw}`")))
        })
        .transpose()
    }

    /// Closes a load with its reconciliation: opened compartments become taken doses, unopened
    /// ones return their methadone to stock (dose mg 0) and count as missed days. All or nothing.
    /// Compartments of days from `today` on that were not opened are simply not given: the box
    /// came back early, and the client may be dosed at the window instead.
    #[allow(clippy::too_many_arguments)]
    pub async fn return_load(
        &self,
        actor: &Actor,
        load: &Load,
        opened: &[u8],
        today: NaiveDate,
        reconciliation_json: &str,
        summary: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut work = self.begin_work(actor, now).await?;
        work.return_load(load, opened, today, reconciliation_json, summary)
            .await?;
        work.commit().await
    }

    /// When a load was returned.
    pub async fn load_returned_at(&self, load_id: i64) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT returned_at FROM box_loads WHERE id = $1")
            .bind(load_id)
            .fetch_one(self.pool())
            .await?;
        col::<Option<i64>>(&row, "returned_at")?
            .map(from_ms)
            .transpose()
    }
}

/// Stops a code still queued (the centre's decision: withheld, lost, ended, returned, dosed at
/// the window) and erases its sealed text; how many rows were stopped (0 or 1).
pub(crate) async fn stop_code(
    conn: &mut AnyConnection,
    key: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE sms_outbox SET state = 'stopped', sealed_body = NULL, last_error = $1, \
         updated_at = $2, final_at = $2 WHERE idempotency_key = $3 AND state = 'queued'",
    )
    .bind(why.to_owned())
    .bind(to_ms(now))
    .bind(key.to_owned())
    .execute(conn)
    .await?
    .rows_affected())
}

/// The outbox key of a load's compartment code: one message per compartment, ever.
pub fn code_key(load_id: i64, compartment: i64) -> String {
    format!("code:{load_id}:{compartment}")
}

/// [`Store::create_load`] inside a transaction that already holds the audit chain's lock (a
/// use case's unit of work); the caller commits.
#[allow(clippy::too_many_arguments)]
pub async fn create_load_in(
    conn: &mut AnyConnection,
    actor: &Actor,
    lockbox: &LockBox,
    client_id: i64,
    compartments: &[NewCompartment],
    code_hour: u8,
    seal: impl FnOnce(i64) -> Vec<u8>,
    now: DateTime<Utc>,
) -> Result<Load> {
    let site = site_of(actor)?;
    let by = actor
        .user_id
        .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
    let next = lockbox.state.to(BoxState::Loaded)?;
    let first = compartments
        .first()
        .ok_or_else(|| DomainError::invalid("days", "a load needs compartments"))?;
    // The box must still be loadable (another window may have loaded it meanwhile).
    let moved = sqlx::query(
        "UPDATE boxes SET state = $1 WHERE id = $2 AND state IN ('in_clinic', 'returned')",
    )
    .bind(next.as_str().to_owned())
    .bind(lockbox.id)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(DomainError::from(
            Problem::new(Code::BoxNotInClinic)
                .field("serial")
                .arg("serial", &lockbox.serial),
        )
        .into());
    }
    let row = sqlx::query(
        "INSERT INTO box_loads (box_id, client_id, site_id, start_day, days, code_hour, state, loaded_by, loaded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'loaded', $7, $8) RETURNING id",
    )
    .bind(lockbox.id)
    .bind(client_id)
    .bind(site)
    .bind(first.day.to_string())
    .bind(compartments.len() as i64)
    .bind(i64::from(code_hour))
    .bind(by)
    .bind(to_ms(now))
    .fetch_one(&mut *conn)
    .await?;
    let load_id: i64 = col(&row, "id")?;
    sqlx::query("UPDATE box_loads SET secret = $1 WHERE id = $2")
        .bind(seal(load_id))
        .bind(load_id)
        .execute(&mut *conn)
        .await?;
    for c in compartments {
        let dose = sqlx::query(
            "INSERT INTO doses (client_id, day, portion, mg, site_id, guest, rule, given_by, given_at) \
             VALUES ($1, $2, 0, $3, $4, 0, $5, $6, $7) RETURNING id",
        )
        .bind(client_id)
        .bind(c.day.to_string())
        .bind(i64::from(c.mg))
        .bind(site)
        .bind(RULE_PENDING.to_owned())
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| conflict_on_unique(e, format!("a dose is already recorded for {}", c.day)))?;
        let dose_id: i64 = col(&dose, "id")?;
        sqlx::query("INSERT INTO load_compartments (load_id, idx, day, mg, dose_id) VALUES ($1, $2, $3, $4, $5)")
            .bind(load_id)
            .bind(i64::from(c.index))
            .bind(c.day.to_string())
            .bind(i64::from(c.mg))
            .bind(dose_id)
            .execute(&mut *conn)
            .await?;
    }
    append(
        &mut *conn,
        actor,
        &AuditEvent::new("box.load", "client", client_id)
            .site(site)
            .reason(format!(
                "box {} load {load_id}: {} days from {}",
                lockbox.serial,
                compartments.len(),
                first.day
            )),
        now,
    )
    .await?;
    load_in(conn, load_id).await
}

/// One load, read inside `conn`'s transaction (it sees the transaction's own writes).
pub async fn load_in(conn: &mut AnyConnection, id: i64) -> Result<Load> {
    let row = sqlx::query(&format!(
        "SELECT {LOAD_COLUMNS} FROM box_loads WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::NotFound(format!("load {id}")))?;
    load_row(&row)
}

/// A box by id, read inside `conn`'s transaction.
async fn box_in(conn: &mut AnyConnection, id: i64) -> Result<LockBox> {
    let row = sqlx::query("SELECT id, site_id, serial, state FROM boxes WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    box_row(&row)
}

/// The box steps of the take-home use cases inside one unit of work.
impl crate::Work {
    /// Moves a load and its box on: handed out to the client, or lost. Audited.
    pub async fn move_load(&mut self, load: &Load, to_box: BoxState, reason: &str) -> Result<()> {
        let actor = self.actor().clone();
        let now = self.now();
        let (to_load, action) = match to_box {
            BoxState::WithClient => ("with_client", "box.hand_out"),
            BoxState::Lost => ("lost", "box.lost"),
            other => {
                return Err(DomainError::Conflict(format!(
                    "a load cannot move to {}",
                    other.as_str()
                ))
                .into())
            }
        };
        let b = box_in(self.conn(), load.box_id).await?;
        b.state.to(to_box)?;
        sqlx::query("UPDATE box_loads SET state = $1 WHERE id = $2")
            .bind(to_load.to_owned())
            .bind(load.id)
            .execute(self.conn())
            .await?;
        sqlx::query("UPDATE boxes SET state = $1 WHERE id = $2")
            .bind(to_box.as_str().to_owned())
            .bind(b.id)
            .execute(self.conn())
            .await?;
        if to_box == BoxState::Lost {
            sqlx::query(&format!("UPDATE doses SET rule = '{RULE_LOST}' WHERE id IN (SELECT dose_id FROM load_compartments WHERE load_id = $1)"))
                .bind(load.id)
                .execute(self.conn())
                .await?;
        }
        append(
            self.conn(),
            &actor,
            &AuditEvent::new(action, "client", load.client_id)
                .site(load.site_id)
                .reason(format!("load {}: {reason}", load.id)),
            now,
        )
        .await?;
        Ok(())
    }

    /// The client's live loads (loaded, or out with them), read inside the unit of work.
    pub async fn live_loads(&mut self, client_id: i64) -> Result<Vec<(Load, String)>> {
        let rows = sqlx::query(&format!(
            "SELECT {cols}, b.serial FROM box_loads l JOIN boxes b ON b.id = l.box_id \
             WHERE l.client_id = $1 AND l.state IN ('loaded', 'with_client') ORDER BY l.id",
            cols = prefixed_load_columns()
        ))
        .bind(client_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((load_row(r)?, col(r, "serial")?)))
            .collect()
    }

    /// Ends a live load because its client's treatment here ended (`why`): its codes stop from
    /// `from` on, nobody tracks the box or reports its state any more, and the box still has to
    /// come back. Audited as `box.ended`.
    pub async fn end_load(&mut self, load: &Load, from: NaiveDate, why: &str) -> Result<u64> {
        if !load.state.is_out() {
            return Err(DomainError::Conflict(format!(
                "load {} is already {}",
                load.id, load.state
            ))
            .into());
        }
        let stopped = self.withhold_codes(load, from, why).await?;
        sqlx::query("UPDATE box_loads SET state = 'ended' WHERE id = $1")
            .bind(load.id)
            .execute(self.conn())
            .await?;
        self.audit(
            AuditEvent::new("box.ended", "client", load.client_id)
                .site(load.site_id)
                .reason(format!("load {}: {why}", load.id)),
        )
        .await?;
        Ok(stopped)
    }

    /// Withholds the codes of a load from `from` on: queued messages for those days expire.
    pub async fn withhold_codes(
        &mut self,
        load: &Load,
        from: NaiveDate,
        reason: &str,
    ) -> Result<u64> {
        let actor = self.actor().clone();
        let now = self.now();
        sqlx::query("UPDATE box_loads SET withheld_from = $1, withhold_reason = $2 WHERE id = $3")
            .bind(from.to_string())
            .bind(reason.to_owned())
            .bind(load.id)
            .execute(self.conn())
            .await?;
        let mut stopped = 0;
        for offset in 0..load.days {
            let day = load.start_day + chrono::Duration::days(offset);
            if day < from {
                continue;
            }
            stopped += stop_code(
                self.conn(),
                &code_key(load.id, offset),
                &format!("withheld: {reason}"),
                now,
            )
            .await?;
        }
        append(
            self.conn(),
            &actor,
            &AuditEvent::new("codes.withhold", "client", load.client_id)
                .site(load.site_id)
                .reason(format!("load {} from {from}: {reason}", load.id)),
            now,
        )
        .await?;
        Ok(stopped)
    }

    /// Closes a load with its reconciliation: opened compartments become taken doses, unopened
    /// ones return their methadone to stock (dose mg 0) and count as missed days. All or nothing.
    /// Compartments of days from `today` on that were not opened are simply not given: the box
    /// came back early, and the client may be dosed at the window instead.
    #[allow(clippy::too_many_arguments)]
    /// Starts a return: records the challenge the box's export must carry (replacing any
    /// earlier one, so only the newest export is accepted), audited as `box.return.start`.
    pub async fn issue_return_challenge(&mut self, load: &Load, challenge: u32) -> Result<()> {
        let actor = self.actor().clone();
        let now = self.now();
        let moved = sqlx::query(
            "UPDATE box_loads SET return_challenge = $1, challenge_at = $2 \
             WHERE id = $3 AND state IN ('loaded', 'with_client', 'ended')",
        )
        .bind(i64::from(challenge))
        .bind(to_ms(now))
        .bind(load.id)
        .execute(self.conn())
        .await?
        .rows_affected();
        if moved != 1 {
            return Err(DomainError::from(
                Problem::new(Code::LoadWrongState)
                    .arg("id", load.id)
                    .arg("state", load.state),
            )
            .into());
        }
        append(
            self.conn(),
            &actor,
            &AuditEvent::new("box.return.start", "client", load.client_id)
                .site(load.site_id)
                .reason(format!("load {}: export challenge issued", load.id)),
            now,
        )
        .await?;
        Ok(())
    }

    pub async fn return_load(
        &mut self,
        load: &Load,
        opened: &[u8],
        today: NaiveDate,
        reconciliation_json: &str,
        summary: &str,
    ) -> Result<()> {
        let actor = self.actor().clone();
        let now = self.now();
        let b = box_in(self.conn(), load.box_id).await?;
        b.state.to(BoxState::Returned)?;
        if !load.state.awaits_return() {
            return Err(DomainError::Conflict(format!(
                "load {} is already {}",
                load.id, load.state
            ))
            .into());
        }
        for offset in 0..load.days {
            let idx = u8::try_from(offset).unwrap_or(u8::MAX);
            let taken = opened.contains(&idx);
            let day = load.start_day + chrono::Duration::days(offset);
            if !taken && day >= today {
                let row = sqlx::query(
                    "SELECT dose_id FROM load_compartments WHERE load_id = $1 AND idx = $2",
                )
                .bind(load.id)
                .bind(offset)
                .fetch_one(self.conn())
                .await?;
                let dose_id: i64 = col(&row, "dose_id")?;
                sqlx::query("DELETE FROM load_compartments WHERE load_id = $1 AND idx = $2")
                    .bind(load.id)
                    .bind(offset)
                    .execute(self.conn())
                    .await?;
                sqlx::query("DELETE FROM doses WHERE id = $1")
                    .bind(dose_id)
                    .execute(self.conn())
                    .await?;
                continue;
            }
            let sql = if taken {
                format!("UPDATE doses SET rule = '{RULE_TAKEN}' WHERE id = (SELECT dose_id FROM load_compartments WHERE load_id = $1 AND idx = $2)")
            } else {
                format!("UPDATE doses SET rule = '{RULE_UNOPENED}', mg = 0 WHERE id = (SELECT dose_id FROM load_compartments WHERE load_id = $1 AND idx = $2)")
            };
            sqlx::query(&sql)
                .bind(load.id)
                .bind(offset)
                .execute(self.conn())
                .await?;
        }
        // Reconciled: the secret is erased (docs/lockcode.md §7), and with it the challenge. A
        // second return of the same load (a replayed export) finds it returned and changes nothing.
        let moved = sqlx::query(
            "UPDATE box_loads SET state = 'returned', reconciliation = $1, returned_at = $2, \
             secret = NULL, return_challenge = NULL \
             WHERE id = $3 AND state IN ('loaded', 'with_client', 'ended')",
        )
        .bind(reconciliation_json.to_owned())
        .bind(to_ms(now))
        .bind(load.id)
        .execute(self.conn())
        .await?
        .rows_affected();
        if moved != 1 {
            return Err(DomainError::from(
                Problem::new(Code::LoadWrongState)
                    .arg("id", load.id)
                    .arg("state", LoadState::Returned),
            )
            .into());
        }
        sqlx::query("UPDATE boxes SET state = 'returned' WHERE id = $1")
            .bind(b.id)
            .execute(self.conn())
            .await?;
        // Back at the centre: its codes still queued have nothing left to open.
        for offset in 0..load.days {
            stop_code(self.conn(), &code_key(load.id, offset), "box returned", now).await?;
        }
        // Back at the centre: where the box has been is nobody's business any more.
        crate::gps::forget_box_positions(self.conn(), b.id).await?;
        append(
            self.conn(),
            &actor,
            &AuditEvent::new("box.return", "client", load.client_id)
                .site(load.site_id)
                .reason(format!("load {}: {summary}", load.id)),
            now,
        )
        .await?;
        Ok(())
    }
}
