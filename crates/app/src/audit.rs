//! Reading the audit trail: a centre's entries filtered by dates, actor, action and client
//! (by UIC, never an internal id), newest first and paged. Clients are shown by UIC. Managers
//! and administrators see who did what, when, to which record; a reason is shown only when it is
//! administrative (`anxin_domain::audit::reason_is_administrative`), since the others can hold
//! clinical text (review notes, doses, discharge reasons) that stays in the clinical record.
//! A search that names a client is itself audited.

use anxin_domain::audit::reason_is_administrative;
use anxin_domain::{Code, Permission, Problem};
use anxin_storage::audit::AuditFilter;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{parse_date, Actor, App, Error, Result};

/// Entries per page.
pub const PAGE: i64 = 50;

/// What to look for (every field optional; dates YYYY-MM-DD, centre time, both inclusive).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// The acting username.
    #[serde(default)]
    pub actor: Option<String>,
    /// An action or the start of one (`box.` for every box action).
    #[serde(default)]
    pub action: Option<String>,
    /// A client's UIC: only entries about that client.
    #[serde(default)]
    pub uic: Option<String>,
    /// Entries older than this one (the "older" link).
    #[serde(default)]
    pub before: Option<i64>,
}

/// One entry as a manager reads it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditLine {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// The action code (`client.read`); pages say it in their language.
    pub action: String,
    /// `client`, `box`, `user`, …
    pub record_type: String,
    /// The client's UIC for a client record, else the record's id.
    pub record: String,
    /// The recorded reason when it is administrative; `None` when it can hold clinical text.
    pub reason: Option<String>,
}

/// A page of entries and where the next (older) one starts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditLine>,
    /// Pass as `before` for the next page; absent on the last page.
    pub older: Option<i64>,
}

fn some(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Searches the actor's centre's audit trail.
pub async fn search(app: &App, me: &Actor, q: &AuditQuery) -> Result<AuditPage> {
    me.require(Permission::AuditRead)?;
    let offset = app.settings.utc_offset;
    let midnight = |d: NaiveDate| -> Result<i64> {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| offset.from_local_datetime(&t).single())
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| Error::Internal(format!("no midnight on {d}")))
    };
    let from = some(&q.from).map(|f| parse_date("from", &f)).transpose()?;
    let to = some(&q.to).map(|t| parse_date("to", &t)).transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(Problem::new(Code::DateRangeReversed)
                .field("to")
                .arg("from", f)
                .arg("to", t)
                .into());
        }
    }
    let client = match some(&q.uic) {
        None => None,
        Some(u) => Some(crate::dispensing::client_here(app, me, &u, "uic").await?),
    };
    let filter = AuditFilter {
        from_ms: from.map(midnight).transpose()?,
        to_ms: to.map(|t| midnight(t + Duration::days(1))).transpose()?,
        actor: some(&q.actor),
        action_prefix: some(&q.action),
        record: client
            .as_ref()
            .map(|c| ("client".to_owned(), c.id.to_string())),
        before_seq: q.before,
    };
    let rows = app
        .store
        .search_audit(me.site_id, &filter, PAGE + 1)
        .await?;
    if let Some(c) = &client {
        // Whose record was looked into is itself part of the trail.
        app.store
            .audit(
                &me.audit(),
                anxin_storage::AuditEvent::new("audit.search", "client", c.id)
                    .site(me.site_id)
                    .reason(format!("{} entries shown", rows.len().min(PAGE as usize))),
                app.now(),
            )
            .await?;
    }
    let more = rows.len() as i64 > PAGE;
    let rows: Vec<_> = rows.into_iter().take(PAGE as usize).collect();
    let ids: Vec<i64> = rows
        .iter()
        .filter(|r| r.record_type == "client")
        .filter_map(|r| r.record_id.parse().ok())
        .collect();
    let uics = app.store.uics_at_site(me.site_id, &ids).await?;
    let entries: Vec<AuditLine> = rows
        .into_iter()
        .map(|r| AuditLine {
            record: match (r.record_type.as_str(), r.record_id.parse::<i64>()) {
                ("client", Ok(id)) => uics.get(&id).cloned().unwrap_or(r.record_id.clone()),
                _ => r.record_id.clone(),
            },
            reason: reason_is_administrative(&r.action).then_some(r.reason),
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            action: r.action,
            record_type: r.record_type,
        })
        .collect();
    Ok(AuditPage {
        older: more.then(|| entries.last().map(|e| e.seq)).flatten(),
        entries,
    })
}

/// Records that `me` was refused `route` (`why`: the method, the route and what it needs):
/// deny-by-default leaves a trace of every attempt beyond a role.
pub async fn access_denied(app: &App, me: &Actor, route: &str, why: &str) -> Result<()> {
    app.store
        .audit(
            &me.audit(),
            anxin_storage::AuditEvent::new("access.denied", "route", route).reason(why),
            app.now(),
        )
        .await?;
    Ok(())
}

/// Signs a checkpoint of the audit chain's head now (sequence, head hash, time, under the audit
/// key): to keep outside the database, print, or hand to a second party. `None` when the
/// process has no audit key. Nothing is appended, so the head it names stays the head.
pub async fn checkpoint(app: &App, me: &Actor) -> Result<Option<anxin_domain::audit::Checkpoint>> {
    me.require(Permission::AuditRead)?;
    Ok(app.store.audit_checkpoint(app.now()).await?)
}
