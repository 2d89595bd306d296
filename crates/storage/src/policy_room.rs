//! The joint policy room's records (migration 0022, rules in `anxin_domain::policy_room`): a
//! site's take-home policy proposals (the policy as JSON, the rationale, the start date, who
//! proposed it) and the parties' signatures (who, when, comment). Writes run in a [`Work`] and
//! are audited; an edit replaces the body only while no signature exists.

use anxin_domain::policy_room::Party;
use anxin_domain::{Code, DomainError, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;

use crate::audit::AuditEvent;
use crate::clients::parse_day;
use crate::{col, from_ms, to_ms, Result, Store, StoreError, Work};

/// One proposal as stored.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub id: i64,
    pub site_id: i64,
    pub version: String,
    /// JSON of `anxin_domain::takehome::Policy`.
    pub body: String,
    pub rationale: String,
    pub effective_from: NaiveDate,
    /// The proposer's username and role.
    pub proposed_by: String,
    pub proposer_role: String,
    pub proposed_at: DateTime<Utc>,
    /// Signatures, in the order given.
    pub signatures: Vec<Signature>,
}

/// One party's signature.
#[derive(Debug, Clone)]
pub struct Signature {
    pub party: Party,
    /// The signer's username.
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
    pub comment: String,
}

impl Proposal {
    /// The parties that signed.
    pub fn parties(&self) -> Vec<Party> {
        self.signatures.iter().map(|s| s.party).collect()
    }
}

/// What a new proposal (or an edit) writes.
#[derive(Debug)]
pub struct NewProposal<'a> {
    pub site_id: i64,
    pub version: &'a str,
    pub body: &'a str,
    pub rationale: &'a str,
    pub effective_from: NaiveDate,
}

const COLUMNS: &str = "p.id, p.site_id, p.version, p.body, p.rationale, p.effective_from, \
     p.proposed_at, u.username, u.role";

fn proposal_row(r: &AnyRow) -> Result<Proposal> {
    Ok(Proposal {
        id: col(r, "id")?,
        site_id: col(r, "site_id")?,
        version: col(r, "version")?,
        body: col(r, "body")?,
        rationale: col(r, "rationale")?,
        effective_from: parse_day("effective_from", &col::<String>(r, "effective_from")?)?,
        proposed_by: col(r, "username")?,
        proposer_role: col(r, "role")?,
        proposed_at: from_ms(col(r, "proposed_at")?)?,
        signatures: Vec::new(),
    })
}

fn taken(e: sqlx::Error, version: &str) -> StoreError {
    crate::refused_on_unique(
        e,
        Problem::new(Code::PolicyVersionTaken)
            .field("version")
            .arg("version", version),
    )
}

impl Work {
    /// Writes a new proposal; audited (`takehome.policy.propose`).
    pub async fn create_proposal(&mut self, p: &NewProposal<'_>) -> Result<i64> {
        let by = self
            .actor()
            .user_id
            .ok_or_else(|| DomainError::Forbidden("a proposal has an author".into()))?;
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO policy_proposals (site_id, version, body, rationale, effective_from, proposed_by, proposed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(p.site_id)
        .bind(p.version.to_owned())
        .bind(p.body.to_owned())
        .bind(p.rationale.to_owned())
        .bind(p.effective_from.to_string())
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(&mut *self.conn())
        .await
        .map_err(|e| taken(e, p.version))?;
        let id: i64 = col(&row, "id")?;
        self.audit(
            AuditEvent::new("takehome.policy.propose", "policy_proposal", id)
                .site(p.site_id)
                .reason(p.version),
        )
        .await?;
        Ok(id)
    }

    /// Replaces proposal `id`'s policy, rationale and start (the caller checked that nobody
    /// signed it); audited (`takehome.policy.edit`).
    pub async fn edit_proposal(&mut self, id: i64, p: &NewProposal<'_>) -> Result<()> {
        sqlx::query(
            "UPDATE policy_proposals SET version = $1, body = $2, rationale = $3, effective_from = $4 \
             WHERE id = $5 AND site_id = $6",
        )
        .bind(p.version.to_owned())
        .bind(p.body.to_owned())
        .bind(p.rationale.to_owned())
        .bind(p.effective_from.to_string())
        .bind(id)
        .bind(p.site_id)
        .execute(&mut *self.conn())
        .await
        .map_err(|e| taken(e, p.version))?;
        self.audit(
            AuditEvent::new("takehome.policy.edit", "policy_proposal", id)
                .site(p.site_id)
                .reason(p.version),
        )
        .await?;
        Ok(())
    }

    /// Party `party` signs proposal `id` (of site `site_id`); audited
    /// (`takehome.policy.sign`). A second signature of the same party is refused
    /// `policy.already_signed`.
    pub async fn sign_proposal(
        &mut self,
        (id, site_id): (i64, i64),
        party: Party,
        comment: &str,
    ) -> Result<()> {
        let by = self
            .actor()
            .user_id
            .ok_or_else(|| DomainError::Forbidden("a signature has a signer".into()))?;
        let now = self.now();
        sqlx::query(
            "INSERT INTO policy_signatures (proposal_id, party, signed_by, signed_at, comment) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(party.as_str().to_owned())
        .bind(by)
        .bind(to_ms(now))
        .bind(comment.to_owned())
        .execute(&mut *self.conn())
        .await
        .map_err(|e| {
            crate::refused_on_unique(
                e,
                Problem::new(Code::PolicyAlreadySigned).arg("party", party.as_str()),
            )
        })?;
        self.audit(
            AuditEvent::new("takehome.policy.sign", "policy_proposal", id)
                .site(site_id)
                .reason(party.as_str()),
        )
        .await?;
        Ok(())
    }

    /// Proposal `id` of site `site_id` read inside the unit of work (its signatures too).
    pub async fn proposal_for_write(&mut self, site_id: i64, id: i64) -> Result<Proposal> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_proposals p JOIN users u ON u.id = p.proposed_by \
             WHERE p.id = $1 AND p.site_id = $2"
        ))
        .bind(id)
        .bind(site_id)
        .fetch_optional(&mut *self.conn())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("policy proposal {id}")))?;
        let mut p = proposal_row(&row)?;
        let rows = sqlx::query(SIGNATURES)
            .bind(id)
            .fetch_all(&mut *self.conn())
            .await?;
        p.signatures = rows.iter().map(signature_row).collect::<Result<_>>()?;
        Ok(p)
    }
}

const SIGNATURES: &str = "SELECT s.proposal_id, s.party, s.signed_at, s.comment, u.username \
     FROM policy_signatures s JOIN users u ON u.id = s.signed_by WHERE s.proposal_id = $1 ORDER BY s.id";

fn signature_row(r: &AnyRow) -> Result<Signature> {
    let party: String = col(r, "party")?;
    Ok(Signature {
        party: Party::parse(&party)
            .ok_or_else(|| StoreError::Corrupt(format!("signature party `{party}`")))?,
        signed_by: col(r, "username")?,
        signed_at: from_ms(col(r, "signed_at")?)?,
        comment: col(r, "comment")?,
    })
}

impl Store {
    /// The body (JSON) of site `site_id`'s proposal signed by all three parties whose start has
    /// come by `today`, the latest start first (then the newest).
    pub async fn signed_policy_in_force(
        &self,
        site_id: i64,
        today: NaiveDate,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT p.body FROM policy_proposals p WHERE p.site_id = $1 AND p.effective_from <= $2 \
             AND (SELECT COUNT(DISTINCT s.party) FROM policy_signatures s WHERE s.proposal_id = p.id) = 3 \
             ORDER BY p.effective_from DESC, p.id DESC LIMIT 1",
        )
        .bind(site_id)
        .bind(today.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| col(&r, "body")).transpose()
    }

    /// Every proposal of site `site_id`, oldest first, with its signatures.
    pub async fn proposals(&self, site_id: i64) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_proposals p JOIN users u ON u.id = p.proposed_by \
             WHERE p.site_id = $1 ORDER BY p.id"
        ))
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut p = proposal_row(r)?;
            let sigs = sqlx::query(SIGNATURES)
                .bind(p.id)
                .fetch_all(self.pool())
                .await?;
            p.signatures = sigs.iter().map(signature_row).collect::<Result<_>>()?;
            out.push(p);
        }
        Ok(out)
    }

    /// Whether version name `version` is taken at site `site_id` by an adopted policy or a
    /// proposal other than `except`.
    pub async fn policy_version_taken(
        &self,
        site_id: i64,
        version: &str,
        except: Option<i64>,
    ) -> Result<bool> {
        let adopted =
            sqlx::query("SELECT id FROM takehome_policies WHERE site_id = $1 AND version = $2")
                .bind(site_id)
                .bind(version.to_owned())
                .fetch_optional(self.pool())
                .await?;
        let proposed = sqlx::query(
            "SELECT id FROM policy_proposals WHERE site_id = $1 AND version = $2 AND id <> $3",
        )
        .bind(site_id)
        .bind(version.to_owned())
        .bind(except.unwrap_or(0))
        .fetch_optional(self.pool())
        .await?;
        Ok(adopted.is_some() || proposed.is_some())
    }
}
