//! The append-only, hash-chained audit trail: appending inside a write transaction,
//! reading it back, verifying the chain, and signing checkpoints of its head.
//!
//! Entries are keyed (chain version 2, `anxin_domain::audit`) once the process has been given
//! the audit key with [`use_audit_key`] (the command line does it from the data key file before
//! it opens the store); without it they are written unkeyed (version 1), as before.
//!
//! An entry found beyond the chain head (forged, or left by a write outside [`append`]) does not
//! stop appends: the next entry goes after it, chained to the head, an alarm is logged, and the
//! verifier names the intruder. So logins and every other audited write keep working.

use std::collections::HashMap;
use std::sync::OnceLock;

use anxin_domain::audit::{
    check_checkpoints, verify_chain, AuditRecord, ChainBreak, ChainHead, Checkpoint, StoredEntry,
    CHAIN_V1, CHAIN_V2,
};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::{col, from_ms, to_ms, Result, Store, StoreError};

static AUDIT_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Keys every entry this process appends from now on, and lets it verify keyed entries and
/// sign checkpoints. Process-wide because one process serves one deployment with one data key
/// file ([`crate::vault::Vault::audit_key`]); only the first call counts, and it returns whether
/// `key` is the key in use.
pub fn use_audit_key(key: [u8; 32]) -> bool {
    *AUDIT_KEY.get_or_init(|| key) == key
}

/// The audit key, once [`use_audit_key`] was called.
pub fn audit_key() -> Option<&'static [u8; 32]> {
    AUDIT_KEY.get()
}

/// Who is acting: a staff account, or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
    pub site_id: Option<i64>,
}

impl Actor {
    /// The operator at the command line (`anxin user add`, `anxin site add`, the demo loader).
    pub fn cli() -> Actor {
        Actor {
            user_id: None,
            name: "cli".into(),
            site_id: None,
        }
    }
}

/// What is being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub action: String,
    pub record_type: String,
    pub record_id: String,
    pub site_id: Option<i64>,
    pub reason: String,
}

impl AuditEvent {
    /// An event about `record_type` `record_id`.
    pub fn new(action: &str, record_type: &str, record_id: impl ToString) -> Self {
        AuditEvent {
            action: action.into(),
            record_type: record_type.into(),
            record_id: record_id.to_string(),
            site_id: None,
            reason: String::new(),
        }
    }

    /// Sets the site the event concerns.
    pub fn site(mut self, site_id: i64) -> Self {
        self.site_id = Some(site_id);
        self
    }

    /// Sets the reason or detail.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}

/// Which entries of a site's audit trail to show (every part optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// From this instant (ms since the epoch), inclusive.
    pub from_ms: Option<i64>,
    /// Before this instant, exclusive.
    pub to_ms: Option<i64>,
    /// The acting username.
    pub actor: Option<String>,
    /// Actions starting with this (`box.` for every box action).
    pub action_prefix: Option<String>,
    /// One record: its type and id.
    pub record: Option<(String, String)>,
    /// Older than this entry (paging).
    pub before_seq: Option<i64>,
}

/// An audit entry as shown to a manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub record_type: String,
    pub record_id: String,
    pub reason: String,
}

fn hash_from_hex(s: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|e| StoreError::Corrupt(format!("audit hash `{s}`: {e}")))?;
    Ok(out)
}

/// Appends one entry to the chain inside `conn`'s transaction (opened with
/// [`Store::begin_write`], which already holds the chain lock). Returns its sequence number.
pub async fn append(
    conn: &mut AnyConnection,
    actor: &Actor,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> Result<i64> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    let head_seq: i64 = col(&row, "seq")?;
    let head_hash: String = col(&row, "hash")?;
    let prev = hash_from_hex(&head_hash)?;
    let last: Option<i64> = col(
        &sqlx::query("SELECT MAX(seq) AS last FROM audit_log")
            .fetch_one(&mut *conn)
            .await?,
        "last",
    )?;
    let last = last.unwrap_or(0);
    if last > head_seq {
        // Someone wrote entries the chain head does not know: step over them, and say so.
        tracing::error!(
            head = head_seq,
            last,
            "AUDIT ALARM: entries beyond the chain head (forged or written outside the chain); \
             appending after them; run `anxin audit verify`"
        );
    }
    let record = AuditRecord {
        seq: last.max(head_seq) + 1,
        at_ms: to_ms(now),
        actor_id: actor.user_id,
        actor: actor.name.clone(),
        site_id: event.site_id.or(actor.site_id),
        action: event.action.clone(),
        record_type: event.record_type.clone(),
        record_id: event.record_id.clone(),
        reason: event.reason.clone(),
    };
    let (version, hash) = match audit_key() {
        Some(key) => (CHAIN_V2, record.keyed_chain_hash(&prev, key)),
        None => (CHAIN_V1, record.chain_hash(&prev)),
    };
    let hash = hex::encode(hash);
    sqlx::query(
        "INSERT INTO audit_log (seq, at_ms, actor_id, actor, site_id, action, record_type, \
         record_id, reason, prev_hash, hash, chain_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(record.seq)
    .bind(record.at_ms)
    .bind(record.actor_id)
    .bind(record.actor.clone())
    .bind(record.site_id)
    .bind(record.action.clone())
    .bind(record.record_type.clone())
    .bind(record.record_id.clone())
    .bind(record.reason.clone())
    .bind(head_hash)
    .bind(hash.clone())
    .bind(version)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(record.seq)
        .bind(hash)
        .execute(&mut *conn)
        .await?;
    Ok(record.seq)
}

fn stored_entry(row: &AnyRow) -> Result<StoredEntry> {
    let prev: String = col(row, "prev_hash")?;
    let hash: String = col(row, "hash")?;
    Ok(StoredEntry {
        record: AuditRecord {
            seq: col(row, "seq")?,
            at_ms: col(row, "at_ms")?,
            actor_id: col(row, "actor_id")?,
            actor: col(row, "actor")?,
            site_id: col(row, "site_id")?,
            action: col(row, "action")?,
            record_type: col(row, "record_type")?,
            record_id: col(row, "record_id")?,
            reason: col(row, "reason")?,
        },
        version: col(row, "chain_version")?,
        prev_hash: hash_from_hex(&prev)?,
        hash: hash_from_hex(&hash)?,
    })
}

fn audit_view(row: &AnyRow) -> Result<AuditView> {
    Ok(AuditView {
        seq: col(row, "seq")?,
        at: from_ms(col(row, "at_ms")?)?,
        actor: col(row, "actor")?,
        action: col(row, "action")?,
        record_type: col(row, "record_type")?,
        record_id: col(row, "record_id")?,
        reason: col(row, "reason")?,
    })
}

const PAGE: i64 = 5_000;

impl Store {
    /// Records one event on its own (a read, a login): its own short write transaction.
    pub async fn audit(&self, actor: &Actor, event: AuditEvent, now: DateTime<Utc>) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let seq = append(&mut tx, actor, &event, now).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// The chain head: last sequence number and hash.
    pub async fn audit_head(&self) -> Result<ChainHead> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        let hash: String = col(&row, "hash")?;
        Ok(ChainHead {
            seq: col(&row, "seq")?,
            hash: hash_from_hex(&hash)?,
        })
    }

    /// Reads the whole trail in pages and checks the chain (with the audit key, if this
    /// process has it). `Ok(n)` is the number of entries; the inner `Err` names the first entry
    /// that was altered or removed.
    pub async fn verify_audit(&self) -> Result<Result<i64, ChainBreak>> {
        self.verify_audit_against(&[]).await
    }

    /// [`Store::verify_audit`], and then the log against signed checkpoints taken outside the
    /// database: a cut tail with the head moved back, a wiped or rebuilt log, or a forged
    /// checkpoint is found up to the latest checkpoint. Checkpoints need the audit key.
    pub async fn verify_audit_against(
        &self,
        checkpoints: &[Checkpoint],
    ) -> Result<Result<i64, ChainBreak>> {
        // Read the head first: entries appended while we read only lengthen the log past it.
        let head = self.audit_head().await?;
        let mut entries = Vec::new();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at_ms, actor_id, actor, site_id, action, record_type, record_id, \
                 reason, prev_hash, hash, chain_version FROM audit_log \
                 WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            )
            .bind(after)
            .bind(head.seq)
            .bind(PAGE)
            .fetch_all(self.pool())
            .await?;
            let n = rows.len() as i64;
            for row in &rows {
                let e = stored_entry(row)?;
                after = e.record.seq;
                entries.push(e);
            }
            if n < PAGE {
                break;
            }
        }
        let hashes: HashMap<i64, [u8; 32]> =
            entries.iter().map(|e| (e.record.seq, e.hash)).collect();
        let key = audit_key();
        let n = match verify_chain(entries, head, key) {
            Ok(n) => n,
            Err(broken) => return Ok(Err(broken)),
        };
        // Entries beyond the head, in one snapshot with the head (a real append moves both).
        let row = sqlx::query(
            "SELECT seq, (SELECT MAX(seq) FROM audit_log) AS last FROM audit_head WHERE id = 1",
        )
        .fetch_one(self.pool())
        .await?;
        let (now_head, last): (i64, Option<i64>) = (col(&row, "seq")?, col(&row, "last")?);
        if last.unwrap_or(0) > now_head {
            return Ok(Err(ChainBreak {
                seq: now_head + 1,
                problem: "forged (an entry beyond the chain head)".into(),
            }));
        }
        if checkpoints.is_empty() {
            return Ok(Ok(n));
        }
        let Some(key) = key else {
            return Ok(Err(ChainBreak {
                seq: 0,
                problem: "checkpoints cannot be checked without the audit key (the data key file)"
                    .into(),
            }));
        };
        Ok(check_checkpoints(checkpoints, key, n, |seq| hashes.get(&seq).copied()).map(|()| n))
    }

    /// A checkpoint of the chain head signed with the audit key, to be kept outside the
    /// database; `None` when this process has no audit key.
    pub async fn audit_checkpoint(&self, now: DateTime<Utc>) -> Result<Option<Checkpoint>> {
        let Some(key) = audit_key() else {
            return Ok(None);
        };
        let head = self.audit_head().await?;
        Ok(Some(Checkpoint::sign(head, to_ms(now), key)))
    }

    /// The latest entries concerning `site_id`, newest first.
    pub async fn recent_audit(&self, site_id: i64, limit: i64) -> Result<Vec<AuditView>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, record_type, record_id, reason FROM audit_log \
             WHERE site_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(site_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(audit_view).collect()
    }

    /// A site's entries that match `filter`, newest first, at most `limit`.
    pub async fn search_audit(
        &self,
        site_id: i64,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditView>> {
        let mut sql = String::from(
            "SELECT seq, at_ms, actor, action, record_type, record_id, reason FROM audit_log \
             WHERE site_id = $1",
        );
        let mut n = 1;
        let mut next = |sql: &mut String, cond: &str| {
            n += 1;
            sql.push_str(&cond.replace('?', &format!("${n}")));
        };
        if filter.from_ms.is_some() {
            next(&mut sql, " AND at_ms >= ?");
        }
        if filter.to_ms.is_some() {
            next(&mut sql, " AND at_ms < ?");
        }
        if filter.actor.is_some() {
            next(&mut sql, " AND actor = ?");
        }
        if filter.action_prefix.is_some() {
            next(&mut sql, " AND action LIKE ?");
        }
        if filter.record.is_some() {
            next(&mut sql, " AND record_type = ?");
            next(&mut sql, " AND record_id = ?");
        }
        if filter.before_seq.is_some() {
            next(&mut sql, " AND seq < ?");
        }
        next(&mut sql, " ORDER BY seq DESC LIMIT ?");
        let mut q = sqlx::query(&sql).bind(site_id);
        if let Some(v) = filter.from_ms {
            q = q.bind(v);
        }
        if let Some(v) = filter.to_ms {
            q = q.bind(v);
        }
        if let Some(v) = &filter.actor {
            q = q.bind(v.clone());
        }
        if let Some(v) = &filter.action_prefix {
            q = q.bind(format!("{}%", v.replace(['%', '_', '\\'], "")));
        }
        if let Some((t, id)) = &filter.record {
            q = q.bind(t.clone()).bind(id.clone());
        }
        if let Some(v) = filter.before_seq {
            q = q.bind(v);
        }
        let rows = q.bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(audit_view).collect()
    }

    /// Every entry about one record, oldest first (e.g. who read a client's record).
    pub async fn audit_of_record(
        &self,
        record_type: &str,
        record_id: &str,
    ) -> Result<Vec<AuditView>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, record_type, record_id, reason FROM audit_log \
             WHERE record_type = $1 AND record_id = $2 ORDER BY seq",
        )
        .bind(record_type.to_owned())
        .bind(record_id.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(audit_view).collect()
    }
}
