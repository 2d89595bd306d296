//! The SMS outbox: a durable queue of text messages with an idempotency key each, claimed by
//! workers with a lease, and moved through the states of [`anxin_domain::sms::MessageState`].
//!
//! The guarantee this table gives the sender (see `docs/sms.md`):
//! - **No loss.** A message is a committed row before anyone sends it; it leaves `queued` only
//!   for a final state or for an attempt that is itself committed first (`sending`).
//! - **No blind resend.** An attempt is committed (`sending`, attempt n, claim owner, lease) before
//!   the gateway is called. If the worker dies, the lease runs out and the row becomes `uncertain`;
//!   any delivery report for it moves it to `sent` or further ([`Store::apply_sms_report`]) and it is
//!   never sent again. Only when the reconcile time passes without any report is it queued again.
//! - **One row per key.** Enqueueing the same idempotency key twice keeps the first row.
//! - **Safe claiming.** [`Store::claim_sms`] is one atomic `UPDATE … RETURNING` (with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL), so two workers never claim the same row.

use anxin_domain::phone;
use anxin_domain::sms::{after_report, MessageState, Report};
use anxin_domain::DomainError;
use chrono::{DateTime, Duration, Utc};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::audit::{append, Actor, AuditEvent};
use crate::{col, from_ms, to_ms, Backend, Result, Store, StoreError};

/// A message to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Unique per message meant, e.g. `code:<load>:<compartment>`; a second enqueue is a no-op.
    pub idempotency_key: String,
    pub client_id: Option<i64>,
    pub site_id: i64,
    /// The phone number; validated and normalised to E.164.
    pub recipient_e164: String,
    /// The text as pages and logs show it: for a code, with the code masked.
    pub text: String,
    /// The real text, sealed with the data key (`Vault::seal_message`), when it must not rest in
    /// clear (a day's code): the worker opens it at send time, and it is erased once the message
    /// is final or its day has passed.
    pub sealed_text: Option<Vec<u8>>,
    /// Not sent before this instant.
    pub not_before: DateTime<Utc>,
    /// Not sent at or after this instant (it expires instead).
    pub expires_at: DateTime<Utc>,
}

/// A message as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: i64,
    pub idempotency_key: String,
    pub client_id: Option<i64>,
    pub site_id: i64,
    pub recipient: String,
    /// The text as pages show it (a code masked).
    pub text: String,
    /// The real text, sealed, while it may still be sent (see [`NewMessage::sealed_text`]).
    pub sealed_text: Option<Vec<u8>>,
    pub state: MessageState,
    /// Attempts made so far (the one in progress included).
    pub attempts: i64,
    pub not_before: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub gateway_id: Option<String>,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub final_at: Option<DateTime<Utc>>,
}

/// The text and number stay out of logs and debug output.
impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("idempotency_key", &self.idempotency_key)
            .field("site_id", &self.site_id)
            .field("recipient", &phone::mask(&self.recipient))
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What came of one attempt to hand a message to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The gateway took it; `delivered` when the provider is itself the end (file provider).
    Accepted {
        gateway_id: Option<String>,
        delivered: bool,
    },
    /// The gateway certainly did not take it. Retry at `retry_at`, or fail when `None`.
    Refused {
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
    /// It may have reached the gateway (time-out, connection lost mid-answer): wait for a
    /// report until `reconcile_at`, then send again.
    Unknown {
        error: String,
        reconcile_at: DateTime<Utc>,
    },
}

/// The outcome of one attempt, for [`Store::record_sms_attempts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub id: i64,
    /// The attempt number the claim returned.
    pub attempt: i64,
    pub outcome: SendOutcome,
}

/// What [`Store::recover_sms`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// `sending` rows whose lease ran out, now `uncertain`.
    pub uncertain: u64,
    /// `uncertain` rows whose reconcile time passed without a report, queued again.
    pub requeued: u64,
    /// `uncertain` rows without a report after their last allowed attempt, now `failed`.
    pub failed: u64,
    /// Rows that expired before being sent.
    pub expired: u64,
}

/// What a delivery report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportApplied {
    pub before: MessageState,
    /// The new state, or `None` when the report changed nothing (duplicate or late).
    pub after: Option<MessageState>,
    pub site_id: i64,
}

/// A delivery report as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportView {
    pub attempt: i64,
    pub report: String,
    pub gateway_id: Option<String>,
    pub applied: bool,
    pub received_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, idempotency_key, client_id, site_id, recipient, body, sealed_body, state, attempts, \
     not_before, expires_at, next_attempt_at, gateway_id, last_error, created_at, updated_at, \
     sent_at, final_at";

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(from_ms).transpose()
}

fn message(row: &AnyRow) -> Result<OutboxMessage> {
    let state: String = col(row, "state")?;
    Ok(OutboxMessage {
        id: col(row, "id")?,
        idempotency_key: col(row, "idempotency_key")?,
        client_id: col(row, "client_id")?,
        site_id: col(row, "site_id")?,
        recipient: col(row, "recipient")?,
        text: col(row, "body")?,
        sealed_text: col(row, "sealed_body")?,
        state: state
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("sms_outbox.state `{state}`")))?,
        attempts: col(row, "attempts")?,
        not_before: from_ms(col(row, "not_before")?)?,
        expires_at: from_ms(col(row, "expires_at")?)?,
        next_attempt_at: from_ms(col(row, "next_attempt_at")?)?,
        gateway_id: col(row, "gateway_id")?,
        last_error: col(row, "last_error")?,
        created_at: from_ms(col(row, "created_at")?)?,
        updated_at: from_ms(col(row, "updated_at")?)?,
        sent_at: opt_time(col(row, "sent_at")?)?,
        final_at: opt_time(col(row, "final_at")?)?,
    })
}

/// Checks a new message and returns its normalised recipient.
fn check(m: &NewMessage) -> Result<String> {
    let key = m.idempotency_key.trim();
    if key.is_empty() || key.len() > 200 {
        return Err(DomainError::invalid("idempotency_key", "must be 1 to 200 characters").into());
    }
    let to = phone::normalize("recipient", &m.recipient_e164)?;
    let n = m.text.chars().count();
    if n == 0 || n > 500 {
        return Err(
            DomainError::invalid("text", format!("must be 1 to 500 characters (got {n})")).into(),
        );
    }
    if m.expires_at <= m.not_before {
        return Err(DomainError::invalid("expires_at", "must be after not_before").into());
    }
    Ok(to.as_str().to_owned())
}

/// Parameters per row of a multi-row INSERT.
const PARAMS_PER_ROW: usize = 11;

/// Rows per multi-row INSERT (11 parameters each; well under both engines' limits).
const BATCH_ROWS: usize = 1_000;

/// Erases the sealed text of every message that can no longer be sent: final, or past its
/// expiry. Run wherever messages become final, and each round of the worker.
pub async fn erase_spent_texts(conn: &mut AnyConnection, now: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE sms_outbox SET sealed_body = NULL WHERE sealed_body IS NOT NULL \
         AND (state IN ('delivered', 'failed', 'expired', 'stopped') OR expires_at <= $1)",
    )
    .bind(to_ms(now))
    .execute(conn)
    .await?
    .rows_affected())
}

impl Store {
    /// Puts one message in the outbox, audited as `sms.enqueue`. Idempotent: if a message with
    /// the same key exists, it is returned unchanged and `false` says nothing was added.
    pub async fn enqueue_sms(
        &self,
        actor: &Actor,
        m: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<(OutboxMessage, bool)> {
        let to = check(&m)?;
        let key = m.idempotency_key.trim().to_owned();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO sms_outbox (idempotency_key, client_id, site_id, recipient, body, state, \
             attempts, not_before, expires_at, next_attempt_at, created_at, updated_at, sealed_body) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $6, $8, $8, $9) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(key.clone())
        .bind(m.client_id)
        .bind(m.site_id)
        .bind(to)
        .bind(m.text)
        .bind(to_ms(m.not_before))
        .bind(to_ms(m.expires_at))
        .bind(to_ms(now))
        .bind(m.sealed_text)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM sms_outbox WHERE idempotency_key = $1"
            ))
            .bind(key)
            .fetch_one(self.pool())
            .await?;
            return Ok((message(&row)?, false));
        };
        let created = message(&row)?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("sms.enqueue", "sms", created.id)
                .site(created.site_id)
                .reason(created.idempotency_key.clone()),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok((created, true))
    }

    /// Puts many messages in the outbox in one transaction (e.g. every code of the day), with
    /// one audit entry `sms.enqueue.batch`. Keys already present are skipped. Returns how many
    /// rows were added.
    pub async fn enqueue_sms_batch(
        &self,
        actor: &Actor,
        messages: &[NewMessage],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let added = enqueue_batch_in(&mut tx, self.backend(), actor, messages, now).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Claims up to `limit` due messages for `owner`: each becomes `sending` with its attempt
    /// number raised and a lease until `now + lease`, in one atomic statement. The attempt is
    /// committed when this returns, before anything is sent.
    pub async fn claim_sms(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "UPDATE sms_outbox SET state = 'sending', attempts = attempts + 1, claim_owner = $1, \
             lease_until = $2, updated_at = $3 \
             WHERE state = 'queued' AND id IN (SELECT id FROM sms_outbox WHERE state = 'queued' \
             AND next_attempt_at <= $3 AND expires_at > $3 ORDER BY next_attempt_at, id \
             LIMIT $4{lock}) RETURNING {COLUMNS}"
        ))
        .bind(owner.to_owned())
        .bind(to_ms(now + lease))
        .bind(to_ms(now))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut claimed: Vec<OutboxMessage> = rows.iter().map(message).collect::<Result<_>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    /// Records what came of attempts, in one transaction. An outcome applies only while the row
    /// is still in that attempt (`sending` or `uncertain` with the same attempt number): a
    /// report that arrived first, or a newer attempt, wins.
    pub async fn record_sms_attempts(
        &self,
        results: &[AttemptResult],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let now_ms = to_ms(now);
        let mut tx = self.pool().begin().await?;
        for r in results {
            let q = match &r.outcome {
                SendOutcome::Accepted {
                    gateway_id,
                    delivered,
                } => {
                    let (state, final_at) = if *delivered {
                        ("delivered", Some(now_ms))
                    } else {
                        ("sent", None)
                    };
                    sqlx::query(
                        "UPDATE sms_outbox SET state = $3, gateway_id = COALESCE($4, gateway_id), \
                         sent_at = COALESCE(sent_at, $5), final_at = $6, claim_owner = NULL, \
                         lease_until = NULL, last_error = '', updated_at = $5 WHERE id = $1 AND attempts = $2 AND state IN ('sending', 'uncertain')"
                    )
                    .bind(r.id)
                    .bind(r.attempt)
                    .bind(state)
                    .bind(gateway_id.clone())
                    .bind(now_ms)
                    .bind(final_at)
                }
                SendOutcome::Refused {
                    error,
                    retry_at: Some(at),
                } => sqlx::query(
                    "UPDATE sms_outbox SET state = 'queued', next_attempt_at = $3, last_error = $4, \
                     claim_owner = NULL, lease_until = NULL, updated_at = $5 WHERE id = $1 AND attempts = $2 AND state IN ('sending', 'uncertain')"
                )
                .bind(r.id)
                .bind(r.attempt)
                .bind(to_ms(*at))
                .bind(error.clone())
                .bind(now_ms),
                SendOutcome::Refused {
                    error,
                    retry_at: None,
                } => sqlx::query(
                    "UPDATE sms_outbox SET state = 'failed', final_at = $3, last_error = $4, \
                     claim_owner = NULL, lease_until = NULL, updated_at = $3 WHERE id = $1 AND attempts = $2 AND state IN ('sending', 'uncertain')"
                )
                .bind(r.id)
                .bind(r.attempt)
                .bind(now_ms)
                .bind(error.clone()),
                SendOutcome::Unknown {
                    error,
                    reconcile_at,
                } => sqlx::query(
                    "UPDATE sms_outbox SET state = 'uncertain', next_attempt_at = $3, \
                     last_error = $4, claim_owner = NULL, lease_until = NULL, updated_at = $5 WHERE id = $1 AND attempts = $2 AND state IN ('sending', 'uncertain')"
                )
                .bind(r.id)
                .bind(r.attempt)
                .bind(to_ms(*reconcile_at))
                .bind(error.clone())
                .bind(now_ms),
            };
            q.execute(&mut *tx).await?;
        }
        erase_spent_texts(&mut tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Housekeeping before each claim: `sending` rows whose lease ran out become `uncertain`
    /// until `now + reconcile`; `uncertain` rows whose reconcile time passed without a report are
    /// queued again (or fail once `max_attempts` are used); queued rows past their expiry expire.
    pub async fn recover_sms(
        &self,
        now: DateTime<Utc>,
        reconcile: Duration,
        max_attempts: i64,
    ) -> Result<Recovered> {
        let now_ms = to_ms(now);
        let uncertain = sqlx::query(
            "UPDATE sms_outbox SET state = 'uncertain', next_attempt_at = $2, claim_owner = NULL, \
             lease_until = NULL, last_error = 'the worker stopped during the attempt; \
             waiting for a delivery report', updated_at = $1 \
             WHERE state = 'sending' AND lease_until < $1",
        )
        .bind(now_ms)
        .bind(to_ms(now + reconcile))
        .execute(self.pool())
        .await?
        .rows_affected();
        let failed = sqlx::query(
            "UPDATE sms_outbox SET state = 'failed', final_at = $1, updated_at = $1, \
             last_error = 'no delivery report after the last allowed attempt' \
             WHERE state = 'uncertain' AND next_attempt_at <= $1 AND attempts >= $2",
        )
        .bind(now_ms)
        .bind(max_attempts)
        .execute(self.pool())
        .await?
        .rows_affected();
        let requeued = sqlx::query(
            "UPDATE sms_outbox SET state = 'queued', updated_at = $1, \
             last_error = 'no delivery report within the reconcile time; sending again' \
             WHERE state = 'uncertain' AND next_attempt_at <= $1",
        )
        .bind(now_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        let expired = sqlx::query(
            "UPDATE sms_outbox SET state = 'expired', final_at = $1, updated_at = $1 \
             WHERE state = 'queued' AND expires_at <= $1",
        )
        .bind(now_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        let mut conn = self.pool().acquire().await?;
        erase_spent_texts(&mut conn, now).await?;
        Ok(Recovered {
            uncertain,
            failed,
            requeued,
            expired,
        })
    }

    /// Applies a delivery report for message `id` (attempt `attempt`), following the domain's
    /// forward-only rule; duplicates and late reports are recorded but change nothing.
    pub async fn apply_sms_report(
        &self,
        id: i64,
        attempt: i64,
        report: Report,
        gateway_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ReportApplied> {
        let now_ms = to_ms(now);
        for _ in 0..8 {
            let row = sqlx::query("SELECT state, site_id FROM sms_outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            let Some(row) = row else {
                return Err(DomainError::NotFound(format!("message {id}")).into());
            };
            let raw: String = col(&row, "state")?;
            let site_id: i64 = col(&row, "site_id")?;
            let before: MessageState = raw
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("sms_outbox.state `{raw}`")))?;
            let after = after_report(before, report);
            let mut tx = self.pool().begin().await?;
            if let Some(next) = after {
                let final_at = next.is_final().then_some(now_ms);
                let changed = sqlx::query(
                    "UPDATE sms_outbox SET state = $3, gateway_id = COALESCE(gateway_id, $4), \
                     sent_at = COALESCE(sent_at, $5), final_at = $6, claim_owner = NULL, \
                     lease_until = NULL, updated_at = $5 WHERE id = $1 AND state = $2",
                )
                .bind(id)
                .bind(before.as_str())
                .bind(next.as_str())
                .bind(gateway_id.map(str::to_owned))
                .bind(now_ms)
                .bind(final_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 0 {
                    // Someone moved the row meanwhile: read it again and decide again.
                    tx.rollback().await?;
                    continue;
                }
            }
            sqlx::query(
                "INSERT INTO sms_reports (outbox_id, attempt, report, gateway_id, applied, \
                 received_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(attempt)
            .bind(report.as_str())
            .bind(gateway_id.map(str::to_owned))
            .bind(i64::from(after.is_some()))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if after.is_some_and(MessageState::is_final) {
                erase_spent_texts(&mut tx, now).await?;
            }
            tx.commit().await?;
            return Ok(ReportApplied {
                before,
                after,
                site_id,
            });
        }
        Err(
            DomainError::Conflict(format!("message {id} keeps changing; report not applied"))
                .into(),
        )
    }

    /// The message a gateway knows by `gateway_id` (for providers whose reports carry only it).
    pub async fn sms_by_gateway_id(&self, gateway_id: &str) -> Result<Option<OutboxMessage>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sms_outbox WHERE gateway_id = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(gateway_id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(message).transpose()
    }

    /// The deployment's delivery-report signing key: the stored one, or `candidate` stored now
    /// if there is none yet (the first server to ask wins; all then use the same key).
    pub async fn sms_dlr_key(&self, candidate: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO sms_secret (id, dlr_key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(candidate.to_owned())
        .execute(self.pool())
        .await?;
        let row = sqlx::query("SELECT dlr_key FROM sms_secret WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        col(&row, "dlr_key")
    }

    /// One message by id (the worker, tests, the DLR endpoint).
    pub async fn sms_message(&self, id: i64) -> Result<OutboxMessage> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sms_outbox WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => message(&r),
            None => Err(DomainError::NotFound(format!("message {id}")).into()),
        }
    }

    /// The messages of a site, newest first, optionally of one state, before message `before`.
    pub async fn list_outbox(
        &self,
        site_id: i64,
        state: Option<MessageState>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sms_outbox WHERE site_id = $1 AND ($2 = '' OR state = $2) \
             AND id < $3 ORDER BY id DESC LIMIT $4"
        ))
        .bind(site_id)
        .bind(state.map(|s| s.as_str()).unwrap_or(""))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message).collect()
    }

    /// How many messages of a site are in each state.
    pub async fn outbox_counts(&self, site_id: i64) -> Result<Vec<(MessageState, i64)>> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM sms_outbox WHERE site_id = $1 GROUP BY state",
        )
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let s: String = col(r, "state")?;
            let n: i64 = col(r, "n")?;
            let s = s
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("sms_outbox.state `{s}`")))?;
            out.push((s, n));
        }
        out.sort_by_key(|(s, _)| MessageState::ALL.iter().position(|x| x == s));
        Ok(out)
    }

    /// The latest messages to one client of a site, newest first.
    pub async fn client_messages(
        &self,
        site_id: i64,
        client_id: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sms_outbox WHERE site_id = $1 AND client_id = $2 \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(site_id)
        .bind(client_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message).collect()
    }

    /// Messages to clients of a site that were due at least `within` ago (and at most a day
    /// ago) and are still not delivered: staff should call the client. Messages the centre
    /// stopped on purpose are not among them.
    pub async fn overdue_sms(
        &self,
        site_id: i64,
        now: DateTime<Utc>,
        within: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sms_outbox WHERE site_id = $1 AND client_id IS NOT NULL \
             AND state NOT IN ('delivered', 'stopped') AND not_before <= $2 AND not_before >= $3 \
             ORDER BY not_before, id LIMIT $4"
        ))
        .bind(site_id)
        .bind(to_ms(now - within))
        .bind(to_ms(now - Duration::days(1)))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message).collect()
    }

    /// The delivery reports received for a message, oldest first.
    pub async fn sms_reports(&self, id: i64) -> Result<Vec<ReportView>> {
        let rows = sqlx::query(
            "SELECT attempt, report, gateway_id, applied, received_at FROM sms_reports \
             WHERE outbox_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReportView {
                    attempt: col(r, "attempt")?,
                    report: col(r, "report")?,
                    gateway_id: col(r, "gateway_id")?,
                    applied: col::<i64>(r, "applied")? != 0,
                    received_at: from_ms(col(r, "received_at")?)?,
                })
            })
            .collect()
    }
}

/// [`Store::enqueue_sms_batch`] inside a transaction that already holds the audit chain's lock
/// (a use case's unit of work): the messages and their audit entry, committed by the caller.
pub async fn enqueue_batch_in(
    conn: &mut AnyConnection,
    backend: Backend,
    actor: &Actor,
    messages: &[NewMessage],
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut checked = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let to = check(m).map_err(|e| match e {
            StoreError::Domain(DomainError::Invalid { field, message }) => {
                DomainError::invalid(format!("messages[{i}].{field}"), message).into()
            }
            other => other,
        })?;
        checked.push(to);
    }
    let now_ms = to_ms(now);
    let sqlite = backend == Backend::Sqlite;
    let mut added = 0u64;
    for (chunk, tos) in messages.chunks(BATCH_ROWS).zip(checked.chunks(BATCH_ROWS)) {
        let mut sql = String::with_capacity(chunk.len() * 64 + 256);
        sql.push_str(
            "INSERT INTO sms_outbox (idempotency_key, client_id, site_id, recipient, body, \
             not_before, expires_at, next_attempt_at, created_at, updated_at, sealed_body) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            if sqlite {
                // Positional parameters: SQLite resolves numbered ones by name, which is
                // quadratic in a statement of thousands of parameters.
                sql.push_str("(?,?,?,?,?,?,?,?,?,?,?)");
            } else {
                let b = i * PARAMS_PER_ROW;
                sql.push('(');
                for k in 1..=PARAMS_PER_ROW {
                    if k > 1 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", b + k));
                }
                sql.push(')');
            }
        }
        sql.push_str(" ON CONFLICT (idempotency_key) DO NOTHING");
        let mut q = sqlx::query(&sql);
        for (m, to) in chunk.iter().zip(tos) {
            q = q
                .bind(m.idempotency_key.trim().to_owned())
                .bind(m.client_id)
                .bind(m.site_id)
                .bind(to.clone())
                .bind(m.text.clone())
                .bind(to_ms(m.not_before))
                .bind(to_ms(m.expires_at))
                .bind(to_ms(m.not_before))
                .bind(now_ms)
                .bind(now_ms)
                .bind(m.sealed_text.clone());
        }
        added += q.execute(&mut *conn).await?.rows_affected();
    }
    let mut event = AuditEvent::new("sms.enqueue.batch", "sms", "").reason(format!(
        "{added} queued, {} already queued",
        messages.len() as u64 - added
    ));
    if let Some(site) = actor.site_id {
        event = event.site(site);
    }
    append(conn, actor, &event, now).await?;
    Ok(added)
}
