//! Take-home programme records: each site's adopted eligibility policy, the eligibility decisions
//! (with the policy version that decided), police approval requests and answers, and the
//! disclosure ledger: every piece of a client's data that left the centre, to whom, and why.

use anxin_domain::takehome::RequestState;
use anxin_domain::{Code, DomainError, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;

use crate::audit::{append, Actor, AuditEvent};
use crate::clients::{parse_day, Client};
use crate::clinic::{open_identity, Identity};
use crate::vault::Vault;
use crate::{col, to_ms, Result, Store, StoreError};

/// A police approval request as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PsbRequest {
    pub id: i64,
    pub client_id: i64,
    pub site_id: i64,
    pub requested_days: i64,
    pub consent_id: i64,
    pub requested_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub status: RequestState,
    pub answered_on: Option<NaiveDate>,
    pub answer_reason: Option<String>,
}

/// One line of the disclosure ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disclosure {
    pub on_day: NaiveDate,
    pub recipient: String,
    pub disclosed: String,
    pub purpose: String,
    pub actor: String,
}

/// A disclosure about to be recorded.
#[derive(Debug, Clone)]
pub struct NewDisclosure<'a> {
    pub recipient: &'a str,
    pub disclosed: &'a str,
    pub purpose: &'a str,
}

/// A police request about to be sent.
#[derive(Debug, Clone)]
pub struct NewPsbRequest<'a> {
    pub client: &'a Client,
    pub requested_days: i64,
    pub eligible_days: i64,
    pub policy_version: &'a str,
    pub criteria_json: &'a str,
    pub consent_id: i64,
    pub requested_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub disclosure: NewDisclosure<'a>,
}

const REQUEST_COLUMNS: &str = "id, client_id, site_id, requested_days, consent_id, requested_on, \
     expires_on, status, answered_on, answer_reason";

fn request_row(r: &AnyRow) -> Result<PsbRequest> {
    let answered: Option<String> = col(r, "answered_on")?;
    Ok(PsbRequest {
        id: col(r, "id")?,
        client_id: col(r, "client_id")?,
        site_id: col(r, "site_id")?,
        requested_days: col(r, "requested_days")?,
        consent_id: col(r, "consent_id")?,
        requested_on: parse_day("requested_on", &col::<String>(r, "requested_on")?)?,
        expires_on: parse_day("expires_on", &col::<String>(r, "expires_on")?)?,
        status: {
            let raw: String = col(r, "status")?;
            RequestState::parse(&raw)
                .ok_or_else(|| StoreError::Corrupt(format!("request state `{raw}`")))?
        },
        answered_on: answered.map(|a| parse_day("answered_on", &a)).transpose()?,
        answer_reason: col(r, "answer_reason")?,
    })
}

pub(crate) async fn insert_disclosure(
    conn: &mut sqlx::AnyConnection,
    (client_id, site_id): (i64, i64),
    on: NaiveDate,
    d: &NewDisclosure<'_>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO disclosures (client_id, site_id, on_day, recipient, disclosed, purpose, actor, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(client_id)
    .bind(site_id)
    .bind(on.to_string())
    .bind(d.recipient.to_owned())
    .bind(d.disclosed.to_owned())
    .bind(d.purpose.to_owned())
    .bind(actor.name.clone())
    .bind(to_ms(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// One adopted version of a site's eligibility policy.
#[derive(Debug, Clone)]
pub struct AdoptedPolicy {
    pub version: String,
    /// JSON of `anxin_domain::takehome::Policy`.
    pub body: String,
    /// The username of who adopted it; none when adopted from the command line.
    pub adopted_by: Option<String>,
    pub adopted_at: DateTime<Utc>,
}

impl Store {
    /// Adopts a policy for a site (JSON body, validated by the caller); audited.
    pub async fn adopt_policy(
        &self,
        actor: &Actor,
        site_id: i64,
        version: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let by = actor.user_id;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO takehome_policies (site_id, version, body, adopted_by, adopted_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(site_id)
        .bind(version.to_owned())
        .bind(body.to_owned())
        .bind(by)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            crate::refused_on_unique(
                e,
                Problem::new(Code::PolicyVersionTaken)
                    .field("version")
                    .arg("version", version),
            )
        })?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("takehome.policy.adopt", "site", site_id)
                .site(site_id)
                .reason(version),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The site's latest adopted policy body (JSON), if any.
    pub async fn current_policy(&self, site_id: i64) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT body FROM takehome_policies WHERE site_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(site_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| col(&r, "body")).transpose()
    }

    /// Every policy adopted at a site, newest first, with who adopted it (none when adopted
    /// from the command line) and when.
    pub async fn policy_history(&self, site_id: i64) -> Result<Vec<AdoptedPolicy>> {
        let rows = sqlx::query(
            "SELECT p.version, p.body, p.adopted_at, u.username FROM takehome_policies p \
             LEFT JOIN users u ON u.id = p.adopted_by WHERE p.site_id = $1 ORDER BY p.id DESC",
        )
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AdoptedPolicy {
                    version: col(r, "version")?,
                    body: col(r, "body")?,
                    adopted_by: col(r, "username")?,
                    adopted_at: crate::from_ms(col(r, "adopted_at")?)?,
                })
            })
            .collect()
    }

    /// Sends a request to the police: stores the decision behind it, the request, and the
    /// disclosure, all in one transaction. Returns the request id.
    pub async fn create_psb_request(
        &self,
        actor: &Actor,
        r: &NewPsbRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let c = r.client;
        let mut tx = self.begin_write().await?;
        let pending = sqlx::query("SELECT COUNT(*) AS n FROM psb_requests WHERE client_id = $1 AND status = 'pending' AND expires_on >= $2")
            .bind(c.id)
            .bind(r.requested_on.to_string())
            .fetch_one(&mut *tx)
            .await?;
        if col::<i64>(&pending, "n")? > 0 {
            return Err(DomainError::Conflict(format!(
                "a request for {} is already waiting for the police",
                c.uic
            ))
            .into());
        }
        let decision = sqlx::query(
            "INSERT INTO eligibility_decisions (client_id, day, days, policy_version, criteria, decided_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(c.id)
        .bind(r.requested_on.to_string())
        .bind(r.eligible_days)
        .bind(r.policy_version.to_owned())
        .bind(r.criteria_json.to_owned())
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let decision_id: i64 = col(&decision, "id")?;
        let row = sqlx::query(
            "INSERT INTO psb_requests (client_id, site_id, requested_days, decision_id, consent_id, requested_on, \
             expires_on, status, requested_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9) RETURNING id",
        )
        .bind(c.id)
        .bind(c.site_id)
        .bind(r.requested_days)
        .bind(decision_id)
        .bind(r.consent_id)
        .bind(r.requested_on.to_string())
        .bind(r.expires_on.to_string())
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = col(&row, "id")?;
        insert_disclosure(
            &mut tx,
            (c.id, c.site_id),
            r.requested_on,
            &r.disclosure,
            actor,
            now,
        )
        .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("disclosure.psb_request", "client", c.id)
                .site(c.site_id)
                .reason(format!(
                    "request {id}: {} days ({}; policy {})",
                    r.requested_days, r.disclosure.disclosed, r.policy_version
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The police queue of a site: pending requests first, then the last answered ones.
    pub async fn psb_requests_of_site(&self, site_id: i64, limit: i64) -> Result<Vec<PsbRequest>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM psb_requests WHERE site_id = $1 \
             ORDER BY CASE WHEN status = 'pending' THEN 0 ELSE 1 END, id DESC LIMIT $2"
        ))
        .bind(site_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(request_row).collect()
    }

    /// The police answers (approved or denied) to a site's requests given on `since` or later,
    /// newest first, each with the client's UIC.
    pub async fn psb_answers_of_site(
        &self,
        site_id: i64,
        since: NaiveDate,
    ) -> Result<Vec<(PsbRequest, String)>> {
        let cols = REQUEST_COLUMNS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols}, c.uic FROM psb_requests r JOIN clients c ON c.id = r.client_id \
             WHERE r.site_id = $1 AND r.status IN ('approved', 'denied') AND r.answered_on >= $2 \
             ORDER BY r.answered_on DESC, r.id DESC"
        ))
        .bind(site_id)
        .bind(since.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((request_row(r)?, col(r, "uic")?)))
            .collect()
    }

    /// One request.
    pub async fn psb_request(&self, id: i64) -> Result<PsbRequest> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM psb_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("request {id}")))?;
        request_row(&row)
    }

    /// A client's requests, newest first.
    pub async fn psb_requests_of_client(&self, client_id: i64) -> Result<Vec<PsbRequest>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM psb_requests WHERE client_id = $1 ORDER BY id DESC"
        ))
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(request_row).collect()
    }

    /// The disclosure ledger of a client, newest first.
    pub async fn disclosures(&self, client_id: i64) -> Result<Vec<Disclosure>> {
        let rows = sqlx::query(
            "SELECT on_day, recipient, disclosed, purpose, actor FROM disclosures WHERE client_id = $1 ORDER BY id DESC",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Disclosure {
                    on_day: parse_day("on_day", &col::<String>(r, "on_day")?)?,
                    recipient: col(r, "recipient")?,
                    disclosed: col(r, "disclosed")?,
                    purpose: col(r, "purpose")?,
                    actor: col(r, "actor")?,
                })
            })
            .collect()
    }
}

impl crate::Work {
    /// One request, read inside the unit of work.
    async fn psb_request_in(&mut self, id: i64) -> Result<PsbRequest> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM psb_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("request {id}")))?;
        request_row(&row)
    }

    /// The police answer a pending, unexpired request addressed to their office; the answer
    /// enters the ledger and the audit trail, and the answered request is returned.
    pub async fn answer_psb_request(
        &mut self,
        id: i64,
        approve: bool,
        reason: &str,
        today: NaiveDate,
    ) -> Result<PsbRequest> {
        let by = self
            .actor()
            .user_id
            .ok_or_else(|| DomainError::Forbidden("officers only".into()))?;
        let req = self.psb_request_in(id).await?;
        if self.actor().site_id != Some(req.site_id) {
            return Err(DomainError::from(Problem::new(Code::RequestOtherOffice)).into());
        }
        if req.status != RequestState::Pending {
            return Err(DomainError::from(
                Problem::new(Code::RequestAnswered)
                    .arg("id", id.to_string())
                    .arg("status", req.status),
            )
            .into());
        }
        if today > req.expires_on {
            return Err(DomainError::from(
                Problem::new(Code::RequestExpired)
                    .arg("id", id.to_string())
                    .arg("on", req.expires_on.to_string()),
            )
            .into());
        }
        let status = if approve {
            RequestState::Approved
        } else {
            RequestState::Denied
        };
        let (actor, now) = (self.actor().clone(), self.now());
        sqlx::query("UPDATE psb_requests SET status = $1, answered_on = $2, answer_reason = $3, answered_by = $4 WHERE id = $5 AND status = 'pending'")
            .bind(status.as_str().to_owned())
            .bind(today.to_string())
            .bind(reason.to_owned())
            .bind(by)
            .bind(id)
            .execute(self.conn())
            .await?;
        insert_disclosure(
            self.conn(),
            (req.client_id, req.site_id),
            today,
            &NewDisclosure {
                recipient: "PSB",
                disclosed: &format!("answer to request {id}: {status}"),
                purpose: "take-home police check",
            },
            &actor,
            now,
        )
        .await?;
        self.audit(
            AuditEvent::new(&format!("psb.{status}"), "client", req.client_id)
                .site(req.site_id)
                .reason(format!("request {id}: {reason}")),
        )
        .await?;
        self.psb_request_in(id).await
    }

    /// Decrypts the name and national ID a police record check needs, for a request addressed
    /// to the actor's office; the view is audited as `disclosure.psb_view` in the same unit.
    pub async fn identity_for_police(&mut self, r: &PsbRequest, vault: &Vault) -> Result<Identity> {
        if self.actor().site_id != Some(r.site_id) {
            return Err(DomainError::from(Problem::new(Code::RequestOtherOffice)).into());
        }
        self.audit(
            AuditEvent::new("disclosure.psb_view", "client", r.client_id)
                .site(r.site_id)
                .reason(format!("request {}", r.id)),
        )
        .await?;
        let row = sqlx::query("SELECT identity FROM clients WHERE id = $1")
            .bind(r.client_id)
            .fetch_one(self.conn())
            .await?;
        open_identity(vault, r.client_id, col(&row, "identity")?)
    }
}
