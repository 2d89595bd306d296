//! Box GPS records: which tracker (by IMEI) is fitted to which box, the home zone of a load
//! (set under the client's consent), each tracked box's presence state, the short-lived raw
//! positions and the alarms that outlive them.
//!
//! Positions and presence are device data written in batches by the ingest pipeline, outside
//! the audit chain; what staff and police do with them (registering a tracker, setting a zone,
//! looking at a box, the police's look at the state word) is audited or ledgered here.

use anxin_domain::DomainError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;

use crate::audit::{append, Actor, AuditEvent};
use crate::{col, conflict_on_unique, to_ms, Result, Store};

/// The consent purpose under which a box's position may be compared with a home zone.
pub const GPS_PURPOSE: &str = "box_gps";

/// A tracker and the box it is fitted to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tracker {
    pub imei: String,
    pub box_id: i64,
    pub site_id: i64,
    /// SHA-256 (hex) of the device's token; `None` for a GT06 tracker (no secret on the wire).
    pub token_hash: Option<String>,
}

/// The columns of a [`Tracker`].
const TRACKER: &str = "SELECT imei, box_id, site_id, token_hash FROM trackers";

fn tracker_of(r: &AnyRow) -> Result<Tracker> {
    Ok(Tracker {
        imei: col(r, "imei")?,
        box_id: col(r, "box_id")?,
        site_id: col(r, "site_id")?,
        token_hash: col(r, "token_hash")?,
    })
}

/// What the ingest needs to know about a tracked box: the load it is out with, if that load
/// has a home zone (no zone means no consent to compare positions: they are dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub load_id: i64,
    pub client_id: i64,
    /// The zone as JSON (`anxin_domain::gps::Zone`).
    pub zone_json: String,
}

/// The stored presence state of a tracked box.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PresenceRow {
    pub box_id: i64,
    pub load_id: i64,
    pub presence: String,
    pub since_ms: i64,
    pub last_fix_ms: Option<i64>,
    pub outside_fixes: i64,
    pub first_outside_ms: Option<i64>,
    pub battery: Option<i64>,
    pub online: bool,
    pub last_seen_ms: i64,
}

/// One stored fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Position {
    pub at_ms: i64,
    pub lat: f64,
    pub lon: f64,
}

/// A fix about to be stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewPosition {
    pub box_id: i64,
    pub at_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub received_ms: i64,
}

/// An alarm about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlarm {
    pub box_id: i64,
    pub site_id: i64,
    pub load_id: Option<i64>,
    pub kind: String,
    pub at_ms: i64,
    /// Only when the box is out under a home zone (consented).
    pub at: Option<(f64, f64)>,
}

/// An alarm as shown to staff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    pub id: i64,
    pub box_id: i64,
    pub serial: String,
    pub load_id: Option<i64>,
    pub client_id: Option<i64>,
    pub kind: String,
    pub at_ms: i64,
    pub acknowledged: bool,
}

/// One batch from the ingest pipeline, written in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    pub positions: Vec<NewPosition>,
    pub presence: Vec<PresenceRow>,
    pub alarms: Vec<NewAlarm>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.presence.is_empty() && self.alarms.is_empty()
    }
}

fn presence_row(r: &AnyRow) -> Result<PresenceRow> {
    Ok(PresenceRow {
        box_id: col(r, "box_id")?,
        load_id: col(r, "load_id")?,
        presence: col(r, "presence")?,
        since_ms: col(r, "since_ms")?,
        last_fix_ms: col(r, "last_fix_ms")?,
        outside_fixes: col(r, "outside_fixes")?,
        first_outside_ms: col(r, "first_outside_ms")?,
        battery: col(r, "battery")?,
        online: col::<i64>(r, "online")? != 0,
        last_seen_ms: col(r, "last_seen_ms")?,
    })
}

const PRESENCE_COLUMNS: &str = "box_id, load_id, presence, since_ms, last_fix_ms, outside_fixes, \
     first_outside_ms, battery, online, last_seen_ms";

/// An alarm with its box's serial and the load's client, for [`alarm_row`].
const ALARM_SELECT: &str =
    "SELECT a.id, a.box_id, b.serial, a.load_id, l.client_id, a.kind, a.at_ms, \
     a.acknowledged_at FROM box_alarms a JOIN boxes b ON b.id = a.box_id \
     LEFT JOIN box_loads l ON l.id = a.load_id";

/// Rows per multi-row INSERT (10 columns at most: well under both engines' bind limits).
const CHUNK: usize = 200;

impl Store {
    /// Fits the tracker `imei` to the box `box_id` of the actor's site. Audited.
    pub async fn register_tracker(
        &self,
        actor: &Actor,
        box_id: i64,
        imei: &str,
        token_hash: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Tracker> {
        let site = actor
            .site_id
            .ok_or_else(|| DomainError::Forbidden("trackers belong to a site".into()))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO trackers (imei, box_id, site_id, created_at, token_hash) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(imei.to_owned())
        .bind(box_id)
        .bind(site)
        .bind(to_ms(now))
        .bind(token_hash.map(str::to_owned))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(
                e,
                format!("tracker {imei} or this box already has a tracker"),
            )
        })?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("box.tracker", "box", box_id)
                .site(site)
                .reason(format!("tracker {imei}")),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Tracker {
            imei: imei.to_owned(),
            box_id,
            token_hash: token_hash.map(str::to_owned),
            site_id: site,
        })
    }

    /// The tracker with `imei`, if registered.
    pub async fn tracker(&self, imei: &str) -> Result<Option<Tracker>> {
        let row = sqlx::query(&format!("{TRACKER} WHERE imei = $1"))
            .bind(imei.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tracker_of).transpose()
    }

    /// The tracker fitted to box `box_id`, if any.
    pub async fn tracker_of_box(&self, box_id: i64) -> Result<Option<Tracker>> {
        let row = sqlx::query(&format!("{TRACKER} WHERE box_id = $1"))
            .bind(box_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tracker_of).transpose()
    }

    /// Sets the home zone of a load under the consent `consent_id`. Audited. The box's presence
    /// starts afresh (unknown until the first fix).
    #[allow(clippy::too_many_arguments)]
    pub async fn set_home_zone(
        &self,
        actor: &Actor,
        load_id: i64,
        box_id: i64,
        client_id: i64,
        site_id: i64,
        consent_id: i64,
        zone_json: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM home_zones WHERE load_id = $1")
            .bind(load_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO home_zones (load_id, box_id, client_id, consent_id, zone, set_by, set_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(load_id)
        .bind(box_id)
        .bind(client_id)
        .bind(consent_id)
        .bind(zone_json.to_owned())
        .bind(by)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM box_presence WHERE box_id = $1")
            .bind(box_id)
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("box.home_zone", "client", client_id)
                .site(site_id)
                .reason(format!("load {load_id} under consent {consent_id}")),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stops comparing a load's box with its zone (consent withdrawn): the zone, the presence
    /// and the box's positions go; alarms stay. Audited.
    pub async fn clear_home_zone(
        &self,
        actor: &Actor,
        load_id: i64,
        box_id: i64,
        client_id: i64,
        site_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        forget_box_positions(&mut tx, box_id).await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("box.home_zone.clear", "client", client_id)
                .site(site_id)
                .reason(format!("load {load_id}")),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What box `box_id` is being watched for: its load out with a client under a home zone.
    pub async fn watch(&self, box_id: i64) -> Result<Option<Watch>> {
        let row = sqlx::query(
            "SELECT z.load_id, z.client_id, z.zone FROM home_zones z \
             JOIN box_loads l ON l.id = z.load_id \
             WHERE z.box_id = $1 AND l.state IN ('loaded', 'with_client') \
             ORDER BY z.load_id DESC LIMIT 1",
        )
        .bind(box_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Watch {
                load_id: col(&r, "load_id")?,
                client_id: col(&r, "client_id")?,
                zone_json: col(&r, "zone")?,
            })
        })
        .transpose()
    }

    /// The presence state of box `box_id`, if it is tracked.
    pub async fn presence(&self, box_id: i64) -> Result<Option<PresenceRow>> {
        let row = sqlx::query(&format!(
            "SELECT {PRESENCE_COLUMNS} FROM box_presence WHERE box_id = $1"
        ))
        .bind(box_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(presence_row).transpose()
    }

    /// Every tracked box's presence whose last report is older than `before_ms` and that is not
    /// already unknown (the candidates for "no fix for too long").
    pub async fn stale_presences(&self, before_ms: i64) -> Result<Vec<(PresenceRow, i64)>> {
        let rows = sqlx::query(
            "SELECT p.box_id, p.load_id, p.presence, p.since_ms, p.last_fix_ms, p.outside_fixes, \
             p.first_outside_ms, p.battery, p.online, p.last_seen_ms, b.site_id FROM box_presence p \
             JOIN boxes b ON b.id = p.box_id \
             WHERE p.presence <> 'unknown' AND COALESCE(p.last_fix_ms, p.since_ms) < $1 \
             ORDER BY p.box_id"
        )
        .bind(before_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((presence_row(r)?, col(r, "site_id")?)))
            .collect()
    }

    /// Writes one ingest batch: positions, presence states and alarms, all or nothing.
    pub async fn write_gps_batch(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        for chunk in batch.positions.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO positions (box_id, at_ms, lat, lon, received_ms) VALUES ",
            );
            push_placeholders(&mut sql, chunk.len(), 5);
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(p.box_id)
                    .bind(p.at_ms)
                    .bind(p.lat)
                    .bind(p.lon)
                    .bind(p.received_ms);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in batch.presence.chunks(CHUNK) {
            let mut sql = format!("INSERT INTO box_presence ({PRESENCE_COLUMNS}) VALUES ");
            push_placeholders(&mut sql, chunk.len(), 10);
            sql.push_str(
                " ON CONFLICT (box_id) DO UPDATE SET load_id = excluded.load_id, \
                 presence = excluded.presence, since_ms = excluded.since_ms, \
                 last_fix_ms = excluded.last_fix_ms, outside_fixes = excluded.outside_fixes, \
                 first_outside_ms = excluded.first_outside_ms, battery = excluded.battery, \
                 online = excluded.online, last_seen_ms = excluded.last_seen_ms",
            );
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(p.box_id)
                    .bind(p.load_id)
                    .bind(p.presence.clone())
                    .bind(p.since_ms)
                    .bind(p.last_fix_ms)
                    .bind(p.outside_fixes)
                    .bind(p.first_outside_ms)
                    .bind(p.battery)
                    .bind(i64::from(p.online))
                    .bind(p.last_seen_ms);
            }
            q.execute(&mut *tx).await?;
        }
        for a in &batch.alarms {
            // Two statements, not one with NULL coordinates: PostgreSQL keeps the parameter
            // types of the first execution of a prepared statement, and a NULL bound through
            // sqlx's Any driver would fix them wrongly for a later real coordinate.
            let q = match a.at {
                Some((lat, lon)) => sqlx::query(
                    "INSERT INTO box_alarms (box_id, site_id, load_id, kind, at_ms, lat, lon) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(a.box_id)
                .bind(a.site_id)
                .bind(a.load_id)
                .bind(a.kind.clone())
                .bind(a.at_ms)
                .bind(lat)
                .bind(lon),
                None => sqlx::query(
                    "INSERT INTO box_alarms (box_id, site_id, load_id, kind, at_ms) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(a.box_id)
                .bind(a.site_id)
                .bind(a.load_id)
                .bind(a.kind.clone())
                .bind(a.at_ms),
            };
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The most recent `limit` fixes of box `box_id`, newest first.
    pub async fn recent_positions(&self, box_id: i64, limit: i64) -> Result<Vec<Position>> {
        let rows = sqlx::query(
            "SELECT at_ms, lat, lon FROM positions WHERE box_id = $1 ORDER BY at_ms DESC LIMIT $2",
        )
        .bind(box_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Position {
                    at_ms: col(r, "at_ms")?,
                    lat: col(r, "lat")?,
                    lon: col(r, "lon")?,
                })
            })
            .collect()
    }

    /// How many positions are stored (for the retention check and the benchmark).
    pub async fn position_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM positions")
            .fetch_one(self.pool())
            .await?;
        col(&row, "n")
    }

    /// Deletes raw positions received before `before_ms`; returns how many went.
    pub async fn purge_positions(&self, before_ms: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM positions WHERE received_ms < $1")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }

    /// Open alarms of a site (newest first), or of every site (`None`).
    pub async fn open_alarms(&self, site_id: i64, limit: i64) -> Result<Vec<Alarm>> {
        let rows = sqlx::query(&format!(
            "{ALARM_SELECT} WHERE a.site_id = $1 AND a.acknowledged_at IS NULL \
             ORDER BY a.at_ms DESC, a.id DESC LIMIT $2"
        ))
        .bind(site_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(alarm_row).collect()
    }

    /// Every alarm of box `box_id`, newest first.
    pub async fn alarms_of_box(&self, box_id: i64, limit: i64) -> Result<Vec<Alarm>> {
        let rows = sqlx::query(&format!(
            "{ALARM_SELECT} WHERE a.box_id = $1 ORDER BY a.at_ms DESC, a.id DESC LIMIT $2"
        ))
        .bind(box_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(alarm_row).collect()
    }

    /// Marks an alarm of the actor's site seen. Audited.
    pub async fn acknowledge_alarm(
        &self,
        actor: &Actor,
        alarm_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let site = actor
            .site_id
            .ok_or_else(|| DomainError::Forbidden("alarms belong to a site".into()))?;
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE box_alarms SET acknowledged_by = $1, acknowledged_at = $2 \
             WHERE id = $3 AND site_id = $4 AND acknowledged_at IS NULL",
        )
        .bind(by)
        .bind(to_ms(now))
        .bind(alarm_id)
        .bind(site)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(DomainError::NotFound(format!("open alarm {alarm_id}")).into());
        }
        append(
            &mut tx,
            actor,
            &AuditEvent::new("box.alarm.ack", "alarm", alarm_id).site(site),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn alarm_row(r: &AnyRow) -> Result<Alarm> {
    Ok(Alarm {
        id: col(r, "id")?,
        box_id: col(r, "box_id")?,
        serial: col(r, "serial")?,
        load_id: col(r, "load_id")?,
        client_id: col(r, "client_id")?,
        kind: col(r, "kind")?,
        at_ms: col(r, "at_ms")?,
        acknowledged: col::<Option<i64>>(r, "acknowledged_at")?.is_some(),
    })
}

fn push_placeholders(sql: &mut String, rows: usize, cols: usize) {
    use std::fmt::Write;
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${n}");
            n += 1;
        }
        sql.push(')');
    }
}

/// Forgets where a box has been: its zone, presence and raw positions (alarms stay). Used when
/// the box comes back and when the consent is withdrawn.
pub(crate) async fn forget_box_positions(
    conn: &mut sqlx::AnyConnection,
    box_id: i64,
) -> Result<()> {
    for sql in [
        "DELETE FROM positions WHERE box_id = $1",
        "DELETE FROM box_presence WHERE box_id = $1",
        "DELETE FROM home_zones WHERE box_id = $1",
    ] {
        sqlx::query(sql).bind(box_id).execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// The police's look at the box under an approved take-home request: the presence word and
    /// the time it last changed, nothing else (no position, no history). `None` when no box of
    /// that client is out under a home zone. Each look that answers is written to the
    /// disclosure ledger and the audit log in one transaction.
    pub async fn police_box_state(
        &self,
        actor: &Actor,
        request: &crate::takehome::PsbRequest,
        today: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, i64)>> {
        if request.status != anxin_domain::takehome::RequestState::Approved {
            return Err(DomainError::Conflict(format!(
                "request {} is {}, not approved",
                request.id, request.status
            ))
            .into());
        }
        let row = sqlx::query(
            "SELECT p.presence, p.since_ms FROM box_presence p \
             JOIN home_zones z ON z.box_id = p.box_id AND z.load_id = p.load_id \
             JOIN box_loads l ON l.id = z.load_id \
             WHERE z.client_id = $1 AND l.state = 'with_client' ORDER BY l.id DESC LIMIT 1",
        )
        .bind(request.client_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let presence: String = col(&row, "presence")?;
        let since: i64 = col(&row, "since_ms")?;
        let mut tx = self.begin_write().await?;
        crate::takehome::insert_disclosure(
            &mut tx,
            (request.client_id, request.site_id),
            today,
            &crate::takehome::NewDisclosure {
                recipient: "PSB",
                disclosed: &format!("box state for request {}: {presence}", request.id),
                purpose: "take-home police check",
            },
            actor,
            now,
        )
        .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("disclosure.psb_box_state", "client", request.client_id)
                .site(request.site_id)
                .reason(format!("request {}", request.id)),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some((presence, since)))
    }
}
