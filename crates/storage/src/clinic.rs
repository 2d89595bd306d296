//! The clinic record around a client: encrypted identity, stage history, discharge and transfer,
//! agreements, consents, dose orders, doses, prescriber reviews, guest dosing, urine tests and
//! methadone stock. Every write is audited in its own transaction; the database's unique key on
//! (client, day, portion) is the last guard against a double dose.

use anxin_domain::access::check_same_site;
use anxin_domain::clinic::episodes::EpisodeEnd;
use anxin_domain::clinic::induction::Excess;
use anxin_domain::clinic::orders::{DoseOrder, OrderKind, Step};
use anxin_domain::clinic::stage::{OrderTerm, Stage};
use anxin_domain::clinic::urine::Outcome;
use anxin_domain::{Code, DomainError, Problem};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use crate::audit::{append, Actor, AuditEvent};
use crate::clients::{client, parse_day, Client, CLIENT_COLUMNS};
use crate::vault::Vault;
use crate::{col, from_ms, to_ms, Result, Store, StoreError};

/// The identifying fields of a client, all optional, stored only encrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub national_id: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

/// A dose order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    pub id: i64,
    pub client_id: i64,
    pub order: DoseOrder,
    pub prescriber_id: i64,
    pub created_at: DateTime<Utc>,
    /// The induction and titration limits it goes beyond (empty: within them).
    pub excesses: Vec<Excess>,
    /// Whether it waits for a second prescriber.
    pub confirmation: Confirmation,
}

/// Where an order stands with its second prescriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Within the limits: in force from its start.
    NotNeeded,
    /// Beyond the limits: not in force until a second prescriber confirms it.
    Awaiting,
    /// Beyond the limits and confirmed by prescriber `by` at `at`.
    Confirmed { by: i64, at: DateTime<Utc> },
}

impl StoredOrder {
    /// Whether the order counts (from its start): within the limits, or confirmed.
    pub fn in_force(&self) -> bool {
        !matches!(self.confirmation, Confirmation::Awaiting)
    }
}

/// A dose given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dose {
    pub id: i64,
    pub client_id: i64,
    pub day: NaiveDate,
    pub portion: u8,
    pub mg: u32,
    pub site_id: i64,
    pub guest: bool,
    pub rule: String,
    pub given_by: i64,
    pub given_at: DateTime<Utc>,
}

/// A dose about to be recorded.
#[derive(Debug, Clone)]
pub struct NewDose {
    pub client_id: i64,
    pub day: NaiveDate,
    pub portion: u8,
    pub mg: u32,
    pub site_id: i64,
    pub guest: bool,
    pub rule: String,
}

/// What happened to a dose write.
#[derive(Debug, Clone)]
pub enum DoseWrite {
    Given(Dose),
    /// That portion was already given today: here is the first one.
    AlreadyGiven(Dose),
}

/// A treatment agreement version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agreement {
    pub id: i64,
    pub client_id: i64,
    pub version: i64,
    pub method: String,
    pub duration_months: i64,
    pub rules: String,
    pub signed_by: String,
    pub guardian_name: Option<String>,
    pub prescriber_id: i64,
    pub signed_on: NaiveDate,
}

/// A consent to a disclosure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub id: i64,
    pub client_id: i64,
    pub purpose: String,
    pub recipient: String,
    pub scope: String,
    pub given_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub revoked_on: Option<NaiveDate>,
    pub revoked_reason: Option<String>,
}

impl Consent {
    /// In force on `day`: given, not expired, not revoked.
    pub fn active_on(&self, day: NaiveDate) -> bool {
        self.given_on <= day && day <= self.expires_on && self.revoked_on.is_none_or(|r| r > day)
    }
}

/// A urine test as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrineTest {
    pub id: i64,
    pub client_id: i64,
    pub collected_on: NaiveDate,
    pub observed: bool,
    pub outcome: Outcome,
    pub reason: String,
}

/// A urine test about to be recorded.
#[derive(Debug, Clone)]
pub struct NewUrineTest {
    pub client_id: i64,
    pub collected_on: NaiveDate,
    pub observed: bool,
    pub outcome: Outcome,
    pub reason: String,
}

/// A stock close-out as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseOutRow {
    pub day: NaiveDate,
    pub expected_ml: f64,
    pub measured_ml: f64,
    pub variance_ml: f64,
    pub reason: String,
}

/// Decrypts a stored identity (`None`: nothing recorded yet).
pub(crate) fn open_identity(
    vault: &Vault,
    client_id: i64,
    sealed: Option<Vec<u8>>,
) -> Result<Identity> {
    match sealed {
        None => Ok(Identity::default()),
        Some(s) => {
            let plain = vault
                .open(client_id, &s)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
    }
}

/// The methadone that moved at a site over a stock period, in mg.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StockMoves {
    /// Given at the window.
    pub window_mg: f64,
    /// Put into take-home boxes (on the day each box was loaded).
    pub boxed_mg: f64,
    /// Back from returned boxes' unopened compartments (on the day of reconciliation).
    pub returned_mg: f64,
}

impl StockMoves {
    /// What left the stock, net.
    pub fn net_mg(&self) -> f64 {
        self.window_mg + self.boxed_mg - self.returned_mg
    }
}

/// The facts the dispensing rules need about one client on one day.
#[derive(Debug, Clone)]
pub struct DoseFacts {
    pub client: Client,
    pub orders: Vec<DoseOrder>,
    pub last_dose_before: Option<NaiveDate>,
    pub doses_today: Vec<Dose>,
    pub last_review: Option<NaiveDate>,
    pub urine_dates: Vec<NaiveDate>,
    /// Dosed here as a guest (the client belongs to another site).
    pub guest: bool,
    /// Today's take-home compartments still pending or lost (their doses are among `doses_today`).
    pub box_today: Vec<BoxDose>,
    /// The days before `on` that the client's centre was closed, back to the last dose or the
    /// start of the orders (the missed-dose rule does not count them), by day.
    pub closures: Vec<NaiveDate>,
}

/// A pending take-home compartment of one day: where the dose is, and what became of its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxDose {
    pub dose_id: i64,
    pub load_id: i64,
    /// From 0.
    pub compartment: u8,
    pub serial: String,
    pub load_state: anxin_domain::boxes::LoadState,
    /// The codes were withheld from this day on.
    pub withheld: bool,
    /// The day's code message: its state (`None`: never queued) and when it was last updated.
    pub code_state: Option<anxin_domain::sms::MessageState>,
    pub code_at: Option<DateTime<Utc>>,
    /// When the code is due to go out.
    pub code_due: Option<DateTime<Utc>>,
}

fn day(row: &AnyRow, name: &str) -> Result<NaiveDate> {
    let raw: String = col(row, name)?;
    parse_day(name, &raw)
}

fn opt_day(row: &AnyRow, name: &str) -> Result<Option<NaiveDate>> {
    let raw: Option<String> = col(row, name)?;
    raw.map(|r| parse_day(name, &r)).transpose()
}

fn order_row(row: &AnyRow) -> Result<StoredOrder> {
    let kind: String = col(row, "kind")?;
    let steps: String = col(row, "steps")?;
    let mg: i64 = col(row, "mg")?;
    let split: i64 = col(row, "split")?;
    Ok(StoredOrder {
        id: col(row, "id")?,
        client_id: col(row, "client_id")?,
        order: DoseOrder {
            kind: OrderKind::parse(&kind).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            start: day(row, "start_date")?,
            mg: u32::try_from(mg).map_err(|_| StoreError::Corrupt("order mg".into()))?,
            steps: serde_json::from_str::<Vec<Step>>(&steps)
                .map_err(|e| StoreError::Corrupt(format!("order steps: {e}")))?,
            split: u8::try_from(split).map_err(|_| StoreError::Corrupt("order split".into()))?,
            reason: col(row, "reason")?,
        },
        prescriber_id: col(row, "prescriber_id")?,
        created_at: from_ms(col(row, "created_at")?)?,
        excesses: serde_json::from_str(&col::<String>(row, "excesses")?)
            .map_err(|e| StoreError::Corrupt(format!("order excesses: {e}")))?,
        confirmation: match (
            col::<String>(row, "excesses")?.as_str(),
            col::<Option<i64>>(row, "confirmed_by")?,
            col::<Option<i64>>(row, "confirmed_at")?,
        ) {
            ("[]", _, _) => Confirmation::NotNeeded,
            (_, Some(by), Some(at)) => Confirmation::Confirmed {
                by,
                at: from_ms(at)?,
            },
            _ => Confirmation::Awaiting,
        },
    })
}

fn dose_row(row: &AnyRow) -> Result<Dose> {
    let portion: i64 = col(row, "portion")?;
    let mg: i64 = col(row, "mg")?;
    let guest: i64 = col(row, "guest")?;
    Ok(Dose {
        id: col(row, "id")?,
        client_id: col(row, "client_id")?,
        day: day(row, "day")?,
        portion: u8::try_from(portion).map_err(|_| StoreError::Corrupt("portion".into()))?,
        mg: u32::try_from(mg).map_err(|_| StoreError::Corrupt("dose mg".into()))?,
        site_id: col(row, "site_id")?,
        guest: guest != 0,
        rule: col(row, "rule")?,
        given_by: col(row, "given_by")?,
        given_at: from_ms(col(row, "given_at")?)?,
    })
}

fn urine_row(row: &AnyRow) -> Result<UrineTest> {
    let outcome: String = col(row, "outcome")?;
    let observed: i64 = col(row, "observed")?;
    Ok(UrineTest {
        id: col(row, "id")?,
        client_id: col(row, "client_id")?,
        collected_on: day(row, "collected_on")?,
        observed: observed != 0,
        outcome: serde_json::from_str(&outcome)
            .map_err(|e| StoreError::Corrupt(format!("urine outcome: {e}")))?,
        reason: col(row, "reason")?,
    })
}

fn consent_row(row: &AnyRow) -> Result<Consent> {
    Ok(Consent {
        id: col(row, "id")?,
        client_id: col(row, "client_id")?,
        purpose: col(row, "purpose")?,
        recipient: col(row, "recipient")?,
        scope: col(row, "scope")?,
        given_on: day(row, "given_on")?,
        expires_on: day(row, "expires_on")?,
        revoked_on: opt_day(row, "revoked_on")?,
        revoked_reason: col(row, "revoked_reason")?,
    })
}

const DOSE_COLUMNS: &str =
    "id, client_id, day, portion, mg, site_id, guest, rule, given_by, given_at";
const ORDER_COLUMNS: &str = "id, client_id, kind, start_date, mg, steps, split, reason, \
     prescriber_id, created_at, excesses, confirmed_by, confirmed_at";
/// The orders that count: within the limits, or confirmed by a second prescriber.
const ORDER_IN_FORCE: &str = "(excesses = '[]' OR confirmed_by IS NOT NULL)";

impl Store {
    async fn client_row(&self, id: i64) -> Result<Client> {
        let row = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => client(&r),
            None => Err(DomainError::NotFound(format!("client {id}")).into()),
        }
    }

    /// Loads a client for a write by `actor`, who must work at its site.
    pub(crate) async fn client_for_write(&self, actor: &Actor, id: i64) -> Result<Client> {
        let c = self.client_row(id).await?;
        let site = actor.site_id.ok_or_else(|| {
            DomainError::Forbidden("client records are reached from a site".into())
        })?;
        check_same_site(site, c.site_id, format_args!("client {id}"))?;
        Ok(c)
    }

    /// Finds a client by UIC anywhere in the deployment (for dosing, which checks the site or a
    /// guest arrangement itself). Not audited on its own: the dose write that follows is.
    pub async fn client_by_uic(&self, uic: &str) -> Result<Client> {
        let row = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE uic = $1"
        ))
        .bind(uic.trim().to_uppercase())
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => client(&r),
            None => Err(DomainError::from(
                anxin_domain::Problem::new(anxin_domain::Code::UicUnknown)
                    .field("uic")
                    .arg("uic", uic.trim()),
            )
            .into()),
        }
    }

    /// Stores the identifying fields, encrypted, and the keyed name hash; audited.
    pub async fn set_identity(
        &self,
        actor: &Actor,
        client_id: i64,
        identity: &Identity,
        vault: &Vault,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut work = self.begin_work(actor, now).await?;
        work.set_identity(client_id, identity, vault).await?;
        work.commit().await
    }

    /// Decrypts the identifying fields for `actor` (same site); audited as `client.identity.read`.
    pub async fn read_identity(
        &self,
        actor: &Actor,
        client_id: i64,
        purpose: &str,
        vault: &Vault,
        now: DateTime<Utc>,
    ) -> Result<Identity> {
        let c = self.client_for_write(actor, client_id).await?;
        self.audit(
            actor,
            AuditEvent::new("client.identity.read", "client", client_id)
                .site(c.site_id)
                .reason(purpose),
            now,
        )
        .await?;
        self.identity_for_disclosure(client_id, vault).await
    }

    /// Decrypts a client's identity for a disclosure the caller has authorised and audits
    /// itself (the police queue shows name and national ID of the requests addressed to it).
    pub async fn identity_for_disclosure(&self, client_id: i64, vault: &Vault) -> Result<Identity> {
        let row = sqlx::query("SELECT identity FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_one(self.pool())
            .await?;
        open_identity(vault, client_id, col(&row, "identity")?)
    }

    /// Clients of the actor's site with exactly this name (after normalisation); audited.
    pub async fn find_by_name(
        &self,
        actor: &Actor,
        name: &str,
        vault: &Vault,
        now: DateTime<Utc>,
    ) -> Result<Vec<Client>> {
        let site = actor.site_id.ok_or_else(|| {
            DomainError::Forbidden("client records are reached from a site".into())
        })?;
        let rows = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE site_id = $1 AND name_index = $2 ORDER BY uic"
        ))
        .bind(site)
        .bind(vault.name_index(name))
        .fetch_all(self.pool())
        .await?;
        let found: Vec<Client> = rows.iter().map(client).collect::<Result<_>>()?;
        self.audit(
            actor,
            AuditEvent::new("client.search", "client", "")
                .site(site)
                .reason(format!("by name, {} shown", found.len())),
            now,
        )
        .await?;
        Ok(found)
    }

    /// Clients of the actor's site with this phone number (normalised to E.164 by the
    /// caller), through the keyed phone index; audited.
    pub async fn find_by_phone(
        &self,
        actor: &Actor,
        e164: &str,
        vault: &Vault,
        now: DateTime<Utc>,
    ) -> Result<Vec<Client>> {
        let site = actor.site_id.ok_or_else(|| {
            DomainError::Forbidden("client records are reached from a site".into())
        })?;
        let rows = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE site_id = $1 AND phone_index = $2 ORDER BY uic"
        ))
        .bind(site)
        .bind(vault.phone_index(e164))
        .fetch_all(self.pool())
        .await?;
        let found: Vec<Client> = rows.iter().map(client).collect::<Result<_>>()?;
        self.audit(
            actor,
            AuditEvent::new("client.search", "client", "")
                .site(site)
                .reason(format!("by phone, {} shown", found.len())),
            now,
        )
        .await?;
        Ok(found)
    }

    /// Fills the phone index of records written before it existed (migration 0014): each
    /// identity with a phone and no index is decrypted and indexed. Returns how many were.
    /// Reads nothing out; run at start, before anyone searches.
    pub async fn index_phones(&self, vault: &Vault) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT id, identity FROM clients WHERE identity IS NOT NULL AND phone_index IS NULL",
        )
        .fetch_all(self.pool())
        .await?;
        let mut done = 0;
        for r in &rows {
            let id: i64 = col(r, "id")?;
            let identity = open_identity(vault, id, col(r, "identity")?)?;
            let Some(phone) = identity.phone else {
                continue;
            };
            sqlx::query(
                "UPDATE clients SET phone_index = $1 WHERE id = $2 AND phone_index IS NULL",
            )
            .bind(vault.phone_index(&phone))
            .bind(id)
            .execute(self.pool())
            .await?;
            done += 1;
        }
        Ok(done)
    }

    /// Moves a client to another treatment stage from `since`, an order's term being the law's
    /// longest from then (see [`crate::Work::set_stage`]).
    pub async fn set_stage(
        &self,
        actor: &Actor,
        client_id: i64,
        stage: Stage,
        since: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut work = self.begin_work(actor, now).await?;
        let c = work.client_for_write(client_id).await?;
        let order = anxin_domain::clinic::stage::order_term(stage, since, None, None, since)
            .map_err(DomainError::from)?;
        work.set_stage(&c, stage, since, order).await?;
        work.commit().await
    }

    /// Discharges a client on `on` with a reason (see [`crate::Work::discharge`]).
    pub async fn discharge(
        &self,
        actor: &Actor,
        client_id: i64,
        on: NaiveDate,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut work = self.begin_work(actor, now).await?;
        let c = work.client_for_write(client_id).await?;
        work.discharge(&c, on, reason).await?;
        work.commit().await
    }

    /// Adds the next version of the treatment agreement.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_agreement(
        &self,
        actor: &Actor,
        client_id: i64,
        method: &str,
        duration_months: i64,
        rules: &str,
        signed_by: &str,
        guardian_name: Option<&str>,
        signed_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Agreement> {
        let c = self.client_for_write(actor, client_id).await?;
        let prescriber_id = actor.user_id.ok_or_else(|| {
            DomainError::Forbidden("an agreement is signed by a prescriber".into())
        })?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) AS v FROM agreements WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_one(&mut *tx)
        .await?;
        let version: i64 = col::<i64>(&row, "v")? + 1;
        let row = sqlx::query(
            "INSERT INTO agreements (client_id, version, method, duration_months, rules, signed_by, \
             guardian_name, prescriber_id, signed_on, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(client_id)
        .bind(version)
        .bind(method.to_owned())
        .bind(duration_months)
        .bind(rules.to_owned())
        .bind(signed_by.to_owned())
        .bind(guardian_name.map(str::to_owned))
        .bind(prescriber_id)
        .bind(signed_on.to_string())
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = col(&row, "id")?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("agreement.sign", "client", client_id)
                .site(c.site_id)
                .reason(format!("version {version}")),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Agreement {
            id,
            client_id,
            version,
            method: method.to_owned(),
            duration_months,
            rules: rules.to_owned(),
            signed_by: signed_by.to_owned(),
            guardian_name: guardian_name.map(str::to_owned),
            prescriber_id,
            signed_on,
        })
    }

    /// All versions of a client's agreement, newest first.
    pub async fn agreements(&self, client_id: i64) -> Result<Vec<Agreement>> {
        let rows = sqlx::query(
            "SELECT id, client_id, version, method, duration_months, rules, signed_by, guardian_name, \
             prescriber_id, signed_on FROM agreements WHERE client_id = $1 ORDER BY version DESC",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Agreement {
                    id: col(r, "id")?,
                    client_id: col(r, "client_id")?,
                    version: col(r, "version")?,
                    method: col(r, "method")?,
                    duration_months: col(r, "duration_months")?,
                    rules: col(r, "rules")?,
                    signed_by: col(r, "signed_by")?,
                    guardian_name: col(r, "guardian_name")?,
                    prescriber_id: col(r, "prescriber_id")?,
                    signed_on: day(r, "signed_on")?,
                })
            })
            .collect()
    }

    /// Records a consent.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_consent(
        &self,
        actor: &Actor,
        client_id: i64,
        purpose: &str,
        recipient: &str,
        scope: &str,
        given_on: NaiveDate,
        expires_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Consent> {
        let c = self.client_for_write(actor, client_id).await?;
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO consents (client_id, purpose, recipient, scope, given_on, expires_on, \
             recorded_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(client_id)
        .bind(purpose.to_owned())
        .bind(recipient.to_owned())
        .bind(scope.to_owned())
        .bind(given_on.to_string())
        .bind(expires_on.to_string())
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = col(&row, "id")?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("consent.give", "client", client_id)
                .site(c.site_id)
                .reason(format!("{purpose} → {recipient} until {expires_on}")),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Consent {
            id,
            client_id,
            purpose: purpose.to_owned(),
            recipient: recipient.to_owned(),
            scope: scope.to_owned(),
            given_on,
            expires_on,
            revoked_on: None,
            revoked_reason: None,
        })
    }

    /// Revokes a consent from `on`.
    pub async fn revoke_consent(
        &self,
        actor: &Actor,
        consent_id: i64,
        on: NaiveDate,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Consent> {
        let row = sqlx::query(
            "SELECT id, client_id, purpose, recipient, scope, given_on, expires_on, revoked_on, \
             revoked_reason FROM consents WHERE id = $1",
        )
        .bind(consent_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("consent {consent_id}")))?;
        let mut consent = consent_row(&row)?;
        let c = self.client_for_write(actor, consent.client_id).await?;
        if consent.revoked_on.is_some() {
            return Err(DomainError::Conflict("this consent is already revoked".into()).into());
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE consents SET revoked_on = $1, revoked_reason = $2 WHERE id = $3")
            .bind(on.to_string())
            .bind(reason.to_owned())
            .bind(consent_id)
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("consent.revoke", "client", c.id)
                .site(c.site_id)
                .reason(format!(
                    "{} → {}: {reason}",
                    consent.purpose, consent.recipient
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        consent.revoked_on = Some(on);
        consent.revoked_reason = Some(reason.to_owned());
        Ok(consent)
    }

    /// A client's consents, newest first.
    pub async fn consents(&self, client_id: i64) -> Result<Vec<Consent>> {
        let rows = sqlx::query(
            "SELECT id, client_id, purpose, recipient, scope, given_on, expires_on, revoked_on, \
             revoked_reason FROM consents WHERE client_id = $1 ORDER BY id DESC",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(consent_row).collect()
    }

    /// Saves a dose order within the limits (validated by the caller against the policy);
    /// audited.
    pub async fn add_order(
        &self,
        actor: &Actor,
        client_id: i64,
        order: &DoseOrder,
        now: DateTime<Utc>,
    ) -> Result<StoredOrder> {
        self.add_order_beyond(actor, client_id, order, &[], now)
            .await
    }

    /// Saves a dose order that goes beyond `excesses` (none: it is in force from its start;
    /// some: it waits for a second prescriber); audited.
    pub async fn add_order_beyond(
        &self,
        actor: &Actor,
        client_id: i64,
        order: &DoseOrder,
        excesses: &[Excess],
        now: DateTime<Utc>,
    ) -> Result<StoredOrder> {
        let c = self.client_for_write(actor, client_id).await?;
        let prescriber_id = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("orders are written by a prescriber".into()))?;
        let steps =
            serde_json::to_string(&order.steps).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let beyond =
            serde_json::to_string(excesses).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO dose_orders (client_id, kind, start_date, mg, steps, split, reason, \
             prescriber_id, created_at, excesses) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING {ORDER_COLUMNS}"
        ))
        .bind(client_id)
        .bind(order.kind.as_str().to_owned())
        .bind(order.start.to_string())
        .bind(i64::from(order.mg))
        .bind(steps)
        .bind(i64::from(order.split))
        .bind(order.reason.clone())
        .bind(prescriber_id)
        .bind(to_ms(now))
        .bind(beyond)
        .fetch_one(&mut *tx)
        .await?;
        let stored = order_row(&row)?;
        let waits = if excesses.is_empty() {
            ""
        } else {
            ", beyond the limits: awaits a second prescriber"
        };
        append(
            &mut tx,
            actor,
            &AuditEvent::new("order.write", "client", client_id)
                .site(c.site_id)
                .reason(format!(
                    "{} {} mg from {}{waits}",
                    order.kind.as_str(),
                    order.mg,
                    order.start
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// A second prescriber confirms order `order_id`, which goes beyond the limits; audited.
    /// Refused when it awaits nothing or is the actor's own; another centre's order is answered
    /// as one that does not exist.
    pub async fn confirm_order(
        &self,
        actor: &Actor,
        order_id: i64,
        now: DateTime<Utc>,
    ) -> Result<StoredOrder> {
        let client_id: i64 = sqlx::query("SELECT client_id FROM dose_orders WHERE id = $1")
            .bind(order_id)
            .fetch_optional(self.pool())
            .await?
            .map(|r| col(&r, "client_id"))
            .transpose()?
            .ok_or_else(|| DomainError::NotFound(format!("order {order_id}")))?;
        let c = self.client_for_write(actor, client_id).await?;
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("orders are confirmed by a prescriber".into()))?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM dose_orders WHERE id = $1 AND client_id = $2"
        ))
        .bind(order_id)
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("order {order_id}")))?;
        let order = order_row(&row)?;
        if order.confirmation != Confirmation::Awaiting {
            return Err(DomainError::from(
                Problem::new(Code::OrderNotAwaiting).arg("order", order_id),
            )
            .into());
        }
        if order.prescriber_id == by {
            return Err(DomainError::from(Problem::new(Code::OrderConfirmOwn)).into());
        }
        let row = sqlx::query(&format!(
            "UPDATE dose_orders SET confirmed_by = $1, confirmed_at = $2 WHERE id = $3 \
             RETURNING {ORDER_COLUMNS}"
        ))
        .bind(by)
        .bind(to_ms(now))
        .bind(order_id)
        .fetch_one(&mut *tx)
        .await?;
        let stored = order_row(&row)?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("order.confirm", "client", client_id)
                .site(c.site_id)
                .reason(format!(
                    "order {order_id}: {} {} mg from {}, beyond the limits",
                    order.order.kind.as_str(),
                    order.order.mg,
                    order.order.start
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Orders of this centre that wait for a second prescriber, oldest first, each with its
    /// client's UIC.
    pub async fn orders_awaiting(&self, site_id: i64) -> Result<Vec<(String, StoredOrder)>> {
        let rows = sqlx::query(&format!(
            "SELECT c.uic, {} FROM dose_orders o JOIN clients c ON c.id = o.client_id \
             WHERE c.site_id = $1 AND c.discharged_on IS NULL AND o.excesses <> '[]' \
             AND o.confirmed_by IS NULL ORDER BY o.created_at, o.id",
            ORDER_COLUMNS
                .split(", ")
                .map(|c| format!("o.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((col(r, "uic")?, order_row(r)?)))
            .collect()
    }

    /// The orders in force of a client of the actor's centre, oldest first, for checking a new
    /// order against them (another centre's client is answered as one that does not exist, before
    /// anything about its orders can show in a refusal).
    pub async fn orders_in_force_for(
        &self,
        actor: &Actor,
        client_id: i64,
    ) -> Result<Vec<DoseOrder>> {
        self.client_for_write(actor, client_id).await?;
        Ok(self
            .orders(client_id)
            .await?
            .into_iter()
            .filter(StoredOrder::in_force)
            .map(|o| o.order)
            .collect())
    }

    /// A client's orders, oldest first (the history).
    pub async fn orders(&self, client_id: i64) -> Result<Vec<StoredOrder>> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM dose_orders WHERE client_id = $1 ORDER BY start_date, id"
        ))
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(order_row).collect()
    }

    /// Records a prescriber's review of a client after missed doses; audited.
    pub async fn add_review(
        &self,
        actor: &Actor,
        client_id: i64,
        on: NaiveDate,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let c = self.client_for_write(actor, client_id).await?;
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("reviews are by a prescriber".into()))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO reviews (client_id, day, prescriber_id, note, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(client_id)
        .bind(on.to_string())
        .bind(by)
        .bind(note.to_owned())
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("review.record", "client", client_id)
                .site(c.site_id)
                .reason(note),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lets a client of the actor's site be dosed at `host_site` from `from` to `to` (the
    /// period's rule is `anxin_domain::clinic::guest::check_period`, applied by the use case).
    pub async fn add_guest_dosing(
        &self,
        actor: &Actor,
        client_id: i64,
        host_site: i64,
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let c = self.client_for_write(actor, client_id).await?;
        let host = self.site(host_site).await?;
        if host.id == c.site_id {
            return Err(DomainError::invalid(
                "host_site",
                "a client doses at home without an arrangement",
            )
            .into());
        }
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO guest_dosing (client_id, host_site_id, from_day, to_day, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(client_id)
        .bind(host.id)
        .bind(from.to_string())
        .bind(to.to_string())
        .bind(by)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("guest.arrange", "client", client_id)
                .site(c.site_id)
                .reason(format!("at {} from {from} to {to}", host.code)),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether `client_id` may be dosed as a guest at `site_id` on `day`.
    pub async fn is_guest(&self, client_id: i64, site_id: i64, on: NaiveDate) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM guest_dosing WHERE client_id = $1 AND host_site_id = $2 \
             AND from_day <= $3 AND to_day >= $3",
        )
        .bind(client_id)
        .bind(site_id)
        .bind(on.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(col::<i64>(&row, "n")? > 0)
    }

    /// Writes a dose and its audit entry, unless that portion was given already today.
    pub async fn insert_dose(
        &self,
        actor: &Actor,
        d: &NewDose,
        now: DateTime<Utc>,
    ) -> Result<DoseWrite> {
        self.insert_dose_replacing(actor, d, None, now).await
    }

    /// Records a window dose that stands in for a box compartment whose code will not open it
    /// (withheld, never sent, box lost): in the same transaction the compartment's queued code
    /// is stopped (so the box cannot open a second dose) and the event is audited, naming it
    /// for the box's reconciliation.
    pub async fn insert_dose_replacing_box(
        &self,
        actor: &Actor,
        d: &NewDose,
        replaced: &BoxDose,
        now: DateTime<Utc>,
    ) -> Result<DoseWrite> {
        self.insert_dose_replacing(actor, d, Some(replaced), now)
            .await
    }

    async fn insert_dose_replacing(
        &self,
        actor: &Actor,
        d: &NewDose,
        replaced: Option<&BoxDose>,
        now: DateTime<Utc>,
    ) -> Result<DoseWrite> {
        let given_by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO doses (client_id, day, portion, mg, site_id, guest, rule, given_by, given_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {DOSE_COLUMNS}"
        ))
        .bind(d.client_id)
        .bind(d.day.to_string())
        .bind(i64::from(d.portion))
        .bind(i64::from(d.mg))
        .bind(d.site_id)
        .bind(i64::from(d.guest))
        .bind(d.rule.clone())
        .bind(given_by)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                let first = sqlx::query(&format!(
                    "SELECT {DOSE_COLUMNS} FROM doses WHERE client_id = $1 AND day = $2 AND portion = $3"
                ))
                .bind(d.client_id)
                .bind(d.day.to_string())
                .bind(i64::from(d.portion))
                .fetch_one(self.pool())
                .await?;
                return Ok(DoseWrite::AlreadyGiven(dose_row(&first)?));
            }
            Err(e) => return Err(e.into()),
        };
        let dose = dose_row(&row)?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("dose.give", "client", d.client_id)
                .site(d.site_id)
                .reason(format!(
                    "{} mg, portion {}{}",
                    d.mg,
                    d.portion + 1,
                    if d.guest { ", guest" } else { "" }
                )),
            now,
        )
        .await?;
        if let Some(b) = replaced {
            let stopped = crate::boxes::stop_code(
                &mut tx,
                &crate::boxes::code_key(b.load_id, i64::from(b.compartment)),
                "dosed at the window instead",
                now,
            )
            .await?;
            if stopped == 0 && b.code_state == Some(anxin_domain::sms::MessageState::Queued) {
                // The worker took the code meanwhile: it may open the box, so no window dose.
                return Err(DomainError::from(
                    anxin_domain::Problem::new(anxin_domain::Code::DoseInBox)
                        .field("uic")
                        .arg("uic", "")
                        .arg("serial", &b.serial)
                        .arg("at", "")
                        .arg("sent", "yes"),
                )
                .into());
            }
            append(
                &mut tx,
                actor,
                &AuditEvent::new("box.compartment.replaced", "client", d.client_id)
                    .site(d.site_id)
                    .reason(format!(
                        "load {} compartment {} ({}): dosed at the window; check it at return",
                        b.load_id,
                        b.compartment + 1,
                        b.serial
                    )),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(DoseWrite::Given(dose))
    }

    /// Doses of a client between two days (inclusive), oldest first.
    pub async fn doses_between(
        &self,
        client_id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Dose>> {
        let rows = sqlx::query(&format!(
            "SELECT {DOSE_COLUMNS} FROM doses WHERE client_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, portion"
        ))
        .bind(client_id)
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(dose_row).collect()
    }

    /// Everything the dispensing rules need about these clients on `on`.
    async fn facts_for(
        &self,
        clients: Vec<(Client, bool)>,
        on: NaiveDate,
    ) -> Result<Vec<DoseFacts>> {
        if clients.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<String> = clients.iter().map(|(c, _)| c.id.to_string()).collect();
        // The ids come from our own integer column: safe to inline.
        let in_list = ids.join(",");
        let orders = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM dose_orders WHERE client_id IN ({in_list}) AND {ORDER_IN_FORCE} ORDER BY start_date, id"
        ))
        .fetch_all(self.pool())
        .await?;
        let last = sqlx::query(&format!(
            "SELECT client_id, MAX(day) AS last FROM doses WHERE client_id IN ({in_list}) AND day < $1 AND rule <> 'take_home_unopened' GROUP BY client_id"
        ))
        .bind(on.to_string())
        .fetch_all(self.pool())
        .await?;
        let today = sqlx::query(&format!(
            "SELECT {DOSE_COLUMNS} FROM doses WHERE client_id IN ({in_list}) AND day = $1"
        ))
        .bind(on.to_string())
        .fetch_all(self.pool())
        .await?;
        let reviews = sqlx::query(&format!(
            "SELECT client_id, MAX(day) AS last FROM reviews WHERE client_id IN ({in_list}) AND day <= $1 GROUP BY client_id"
        ))
        .bind(on.to_string())
        .fetch_all(self.pool())
        .await?;
        let urine = sqlx::query(&format!(
            "SELECT client_id, collected_on FROM urine_tests WHERE client_id IN ({in_list}) AND collected_on >= $1"
        ))
        .bind((on - chrono::Duration::days(3 * 366)).to_string())
        .fetch_all(self.pool())
        .await?;
        let boxed = sqlx::query(&format!(
            "SELECT d.id AS dose_id, d.client_id, l.id AS load_id, c.idx, b.serial, l.state, l.withheld_from, \
             o.state AS code_state, o.updated_at AS code_at, o.not_before AS code_due \
             FROM doses d JOIN load_compartments c ON c.dose_id = d.id \
             JOIN box_loads l ON l.id = c.load_id JOIN boxes b ON b.id = l.box_id \
             LEFT JOIN sms_outbox o ON o.idempotency_key = 'code:' || CAST(l.id AS TEXT) || ':' || CAST(c.idx AS TEXT) \
             WHERE d.client_id IN ({in_list}) AND d.day = $1 AND d.rule IN ('take_home_pending', 'take_home_lost')"
        ))
        .bind(on.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(clients.len());
        let mut by_id = std::collections::HashMap::new();
        for (i, (c, guest)) in clients.into_iter().enumerate() {
            by_id.insert(c.id, i);
            out.push(DoseFacts {
                client: c,
                orders: vec![],
                last_dose_before: None,
                doses_today: vec![],
                last_review: None,
                urine_dates: vec![],
                guest,
                box_today: vec![],
                closures: vec![],
            });
        }
        for r in &orders {
            let o = order_row(r)?;
            if let Some(&i) = by_id.get(&o.client_id) {
                out[i].orders.push(o.order);
            }
        }
        for r in &last {
            if let Some(&i) = by_id.get(&col::<i64>(r, "client_id")?) {
                out[i].last_dose_before = opt_day(r, "last")?;
            }
        }
        for r in &today {
            let d = dose_row(r)?;
            if let Some(&i) = by_id.get(&d.client_id) {
                out[i].doses_today.push(d);
            }
        }
        for r in &boxed {
            if let Some(&i) = by_id.get(&col::<i64>(r, "client_id")?) {
                let state: String = col(r, "state")?;
                let code_state: Option<String> = col(r, "code_state")?;
                let withheld = opt_day(r, "withheld_from")?.is_some_and(|w| w <= on);
                out[i].box_today.push(BoxDose {
                    dose_id: col(r, "dose_id")?,
                    load_id: col(r, "load_id")?,
                    compartment: u8::try_from(col::<i64>(r, "idx")?)
                        .map_err(|_| StoreError::Corrupt("compartment".into()))?,
                    serial: col(r, "serial")?,
                    load_state: anxin_domain::boxes::LoadState::parse(&state)
                        .ok_or_else(|| StoreError::Corrupt(format!("load state `{state}`")))?,
                    withheld,
                    code_state: code_state
                        .map(|c| {
                            c.parse::<anxin_domain::sms::MessageState>()
                                .map_err(|_| StoreError::Corrupt(format!("message state `{c}`")))
                        })
                        .transpose()?,
                    code_at: col::<Option<i64>>(r, "code_at")?.map(from_ms).transpose()?,
                    code_due: col::<Option<i64>>(r, "code_due")?
                        .map(from_ms)
                        .transpose()?,
                });
            }
        }
        for r in &reviews {
            if let Some(&i) = by_id.get(&col::<i64>(r, "client_id")?) {
                out[i].last_review = opt_day(r, "last")?;
            }
        }
        // The centres' closures in the gaps: one query for the whole list, back to the oldest
        // last dose or order start (a closure before both cannot be in a gap).
        let since = out
            .iter()
            .flat_map(|f| {
                f.last_dose_before
                    .into_iter()
                    .chain(f.orders.iter().map(|o| o.start))
            })
            .min();
        if let Some(since) = since {
            let mut sites: Vec<i64> = out.iter().map(|f| f.client.site_id).collect();
            sites.sort_unstable();
            sites.dedup();
            let sites: Vec<String> = sites.iter().map(i64::to_string).collect();
            // Site ids come from our own integer column: safe to inline.
            let closed = sqlx::query(&format!(
                "SELECT site_id, day FROM closures WHERE site_id IN ({}) AND day >= $1 AND day < $2 ORDER BY day",
                sites.join(",")
            ))
            .bind(since.to_string())
            .bind(on.to_string())
            .fetch_all(self.pool())
            .await?;
            for r in &closed {
                let site: i64 = col(r, "site_id")?;
                let d = day(r, "day")?;
                for f in out.iter_mut().filter(|f| f.client.site_id == site) {
                    f.closures.push(d);
                }
            }
        }
        for r in &urine {
            if let Some(&i) = by_id.get(&col::<i64>(r, "client_id")?) {
                out[i].urine_dates.push(day(r, "collected_on")?);
            }
        }
        Ok(out)
    }

    /// Facts for one client (the dose endpoint's hot path).
    pub async fn dose_facts(&self, c: Client, guest: bool, on: NaiveDate) -> Result<DoseFacts> {
        let mut v = self.facts_for(vec![(c, guest)], on).await?;
        v.pop()
            .ok_or_else(|| StoreError::Corrupt("facts for one client".into()))
    }

    /// Facts for the day list of a site: its clients in treatment plus today's guests.
    pub async fn day_facts(&self, site_id: i64, on: NaiveDate) -> Result<Vec<DoseFacts>> {
        let own = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE site_id = $1 AND discharged_on IS NULL ORDER BY uic"
        ))
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        let guests = sqlx::query(&format!(
            "SELECT {} FROM clients c JOIN guest_dosing g ON g.client_id = c.id \
             WHERE g.host_site_id = $1 AND g.from_day <= $2 AND g.to_day >= $2 AND c.discharged_on IS NULL",
            CLIENT_COLUMNS
                .split(", ")
                .map(|c| format!("c.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(site_id)
        .bind(on.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut all = Vec::with_capacity(own.len() + guests.len());
        for r in &own {
            all.push((client(r)?, false));
        }
        for r in &guests {
            all.push((client(r)?, true));
        }
        self.facts_for(all, on).await
    }

    /// Records a urine test; audited.
    pub async fn add_urine_test(
        &self,
        actor: &Actor,
        t: &NewUrineTest,
        now: DateTime<Utc>,
    ) -> Result<UrineTest> {
        let (client_id, collected_on, observed) = (t.client_id, t.collected_on, t.observed);
        let (outcome, reason) = (&t.outcome, t.reason.as_str());
        let c = self.client_for_write(actor, client_id).await?;
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let json =
            serde_json::to_string(outcome).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO urine_tests (client_id, collected_on, observed, outcome, negative, reason, \
             recorded_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(client_id)
        .bind(collected_on.to_string())
        .bind(i64::from(observed))
        .bind(json)
        .bind(i64::from(outcome.negative()))
        .bind(reason.to_owned())
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = col(&row, "id")?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("urine.record", "client", client_id)
                .site(c.site_id)
                .reason(format!("collected {collected_on} ({reason})")),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(UrineTest {
            id,
            client_id,
            collected_on,
            observed,
            outcome: outcome.clone(),
            reason: reason.to_owned(),
        })
    }

    /// A client's urine tests, newest first.
    pub async fn urine_tests(&self, client_id: i64) -> Result<Vec<UrineTest>> {
        let rows = sqlx::query(
            "SELECT id, client_id, collected_on, observed, outcome, reason FROM urine_tests \
             WHERE client_id = $1 ORDER BY collected_on DESC, id DESC",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(urine_row).collect()
    }

    /// Records a stock receipt at the actor's site; audited.
    pub async fn add_stock_receipt(
        &self,
        actor: &Actor,
        received_on: NaiveDate,
        r: &anxin_domain::clinic::stock::Receipt,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let site = actor
            .site_id
            .ok_or_else(|| DomainError::Forbidden("stock belongs to a site".into()))?;
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO stock_receipts (site_id, received_on, bottles, ml_per_bottle, \
             concentration_mg_per_ml, lot, received_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id",
        )
        .bind(site)
        .bind(received_on.to_string())
        .bind(i64::from(r.bottles))
        .bind(r.ml_per_bottle)
        .bind(r.concentration_mg_per_ml)
        .bind(r.lot.clone())
        .bind(by)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = col(&row, "id")?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new("stock.receive", "stock", id)
                .site(site)
                .reason(format!(
                    "{} × {} mL, lot {}",
                    r.bottles, r.ml_per_bottle, r.lot
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The last close-out before `on`, and the mL received and mg that left the site since then
    /// (up to and including `on`): what the expected volume is computed from. See
    /// [`Store::stock_movements`] for how box doses count.
    pub async fn stock_position(
        &self,
        site_id: i64,
        on: NaiveDate,
        offset: chrono::FixedOffset,
    ) -> Result<(Option<CloseOutRow>, f64, f64)> {
        let (last, received, m) = self.stock_movements(site_id, on, offset).await?;
        Ok((last, received, m.net_mg()))
    }

    /// The last close-out before `on`, the mL received since then, and the mg that moved:
    /// doses given at the window on their day; a box's doses all at once, on the day it was
    /// loaded; and a returned box's unopened compartments back, on the day it was reconciled.
    /// Days are the site's local days (`offset`).
    pub async fn stock_movements(
        &self,
        site_id: i64,
        on: NaiveDate,
        offset: chrono::FixedOffset,
    ) -> Result<(Option<CloseOutRow>, f64, StockMoves)> {
        let last = sqlx::query(
            "SELECT day, expected_ml, measured_ml, variance_ml, reason FROM stock_closeouts \
             WHERE site_id = $1 AND day < $2 ORDER BY day DESC LIMIT 1",
        )
        .bind(site_id)
        .bind(on.to_string())
        .fetch_optional(self.pool())
        .await?;
        let last = last.map(|r| closeout_row(&r)).transpose()?;
        let since = last
            .as_ref()
            .map(|c| c.day.to_string())
            .unwrap_or_else(|| "0000-00-00".into());
        let rec = sqlx::query(
            "SELECT COALESCE(SUM(bottles * ml_per_bottle), 0.0) AS ml FROM stock_receipts \
             WHERE site_id = $1 AND received_on > $2 AND received_on <= $3",
        )
        .bind(site_id)
        .bind(since.clone())
        .bind(on.to_string())
        .fetch_one(self.pool())
        .await?;
        let window = sqlx::query(
            "SELECT CAST(COALESCE(SUM(mg), 0) AS BIGINT) AS mg FROM doses WHERE site_id = $1 \
             AND day > $2 AND day <= $3 AND rule NOT LIKE 'take_home%'",
        )
        .bind(site_id)
        .bind(since)
        .bind(on.to_string())
        .fetch_one(self.pool())
        .await?;
        // The window in instants: from the local midnight after the last close-out's day to the
        // local midnight after `on`.
        let midnight = |d: NaiveDate| -> i64 {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(offset).single())
                .map_or(0, |t| t.timestamp_millis())
        };
        let from_ms = last
            .as_ref()
            .map_or(i64::MIN, |c| midnight(c.day + chrono::Duration::days(1)));
        let to_ms = midnight(on + chrono::Duration::days(1));
        let loaded = sqlx::query(
            "SELECT CAST(COALESCE(SUM(c.mg), 0) AS BIGINT) AS mg FROM load_compartments c \
             JOIN box_loads l ON l.id = c.load_id \
             WHERE l.site_id = $1 AND l.loaded_at >= $2 AND l.loaded_at < $3",
        )
        .bind(site_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(self.pool())
        .await?;
        let returned = sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM(c.mg), 0) AS BIGINT) AS mg FROM load_compartments c \
             JOIN box_loads l ON l.id = c.load_id JOIN doses d ON d.id = c.dose_id \
             WHERE l.site_id = $1 AND l.returned_at >= $2 AND l.returned_at < $3 \
             AND d.rule = '{}'",
            crate::boxes::RULE_UNOPENED
        ))
        .bind(site_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(self.pool())
        .await?;
        let received: f64 = col(&rec, "ml")?;
        let moves = StockMoves {
            window_mg: col::<i64>(&window, "mg")? as f64,
            boxed_mg: col::<i64>(&loaded, "mg")? as f64,
            returned_mg: col::<i64>(&returned, "mg")? as f64,
        };
        Ok((last, received, moves))
    }

    /// Saves the day's close-out; audited, flagged ones with their reason.
    pub async fn save_closeout(
        &self,
        actor: &Actor,
        on: NaiveDate,
        c: &anxin_domain::clinic::stock::CloseOut,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let site = actor
            .site_id
            .ok_or_else(|| DomainError::Forbidden("stock belongs to a site".into()))?;
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("staff only".into()))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO stock_closeouts (site_id, day, expected_ml, measured_ml, variance_ml, reason, \
             closed_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(site)
        .bind(on.to_string())
        .bind(c.expected_ml)
        .bind(c.measured_ml)
        .bind(c.variance_ml)
        .bind(reason.to_owned())
        .bind(by)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| crate::conflict_on_unique(e, format!("the stock of {on} is already closed")))?;
        append(
            &mut tx,
            actor,
            &AuditEvent::new(
                if c.flagged {
                    "stock.closeout.variance"
                } else {
                    "stock.closeout"
                },
                "stock",
                on,
            )
            .site(site)
            .reason(format!(
                "expected {:.1} mL, measured {:.1} mL, variance {:+.1} mL{}",
                c.expected_ml,
                c.measured_ml,
                c.variance_ml,
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The site's close-outs, newest first.
    pub async fn closeouts(&self, site_id: i64, limit: i64) -> Result<Vec<CloseOutRow>> {
        let rows = sqlx::query(
            "SELECT day, expected_ml, measured_ml, variance_ml, reason FROM stock_closeouts \
             WHERE site_id = $1 ORDER BY day DESC LIMIT $2",
        )
        .bind(site_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(closeout_row).collect()
    }
}

fn closeout_row(r: &AnyRow) -> Result<CloseOutRow> {
    Ok(CloseOutRow {
        day: day(r, "day")?,
        expected_ml: col(r, "expected_ml")?,
        measured_ml: col(r, "measured_ml")?,
        variance_ml: col(r, "variance_ml")?,
        reason: col(r, "reason")?,
    })
}

/// A past dose brought in by an import (the demo centre, a migration from paper records).
#[derive(Debug, Clone)]
pub struct HistoricDose {
    pub dose: NewDose,
    pub given_at: DateTime<Utc>,
}

impl Store {
    /// Imports past doses and urine tests in one transaction with one audit entry: all or nothing.
    pub async fn import_history(
        &self,
        actor: &Actor,
        site_id: i64,
        doses: &[HistoricDose],
        urine: &[(i64, NaiveDate, Outcome)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let by = actor
            .user_id
            .ok_or_else(|| DomainError::Forbidden("imports are made by a staff account".into()))?;
        let mut tx = self.begin_write().await?;
        for h in doses {
            let d = &h.dose;
            sqlx::query(
                "INSERT INTO doses (client_id, day, portion, mg, site_id, guest, rule, given_by, given_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(d.client_id)
            .bind(d.day.to_string())
            .bind(i64::from(d.portion))
            .bind(i64::from(d.mg))
            .bind(d.site_id)
            .bind(i64::from(d.guest))
            .bind(d.rule.clone())
            .bind(by)
            .bind(to_ms(h.given_at))
            .execute(&mut *tx)
            .await?;
        }
        for (client_id, on, outcome) in urine {
            let json =
                serde_json::to_string(outcome).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO urine_tests (client_id, collected_on, observed, outcome, negative, reason, \
                 recorded_by, created_at) VALUES ($1, $2, 1, $3, $4, 'random', $5, $6)",
            )
            .bind(*client_id)
            .bind(on.to_string())
            .bind(json)
            .bind(i64::from(outcome.negative()))
            .bind(by)
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
        }
        append(
            &mut tx,
            actor,
            &AuditEvent::new("history.import", "site", site_id)
                .site(site_id)
                .reason(format!(
                    "{} doses, {} urine tests",
                    doses.len(),
                    urine.len()
                )),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl crate::Work {
    /// Stores a client's identifying fields, encrypted, and the keyed name hash, with the
    /// `client.identity.update` entry (names of the fields set only).
    pub async fn set_identity(
        &mut self,
        client_id: i64,
        identity: &Identity,
        vault: &Vault,
    ) -> Result<()> {
        let c = self.client_for_write(client_id).await?;
        let plain = serde_json::to_vec(identity).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = vault.seal(client_id, &plain);
        let index = identity.name.as_deref().map(|n| vault.name_index(n));
        let phone = identity.phone.as_deref().map(|p| vault.phone_index(p));
        sqlx::query(
            "UPDATE clients SET identity = $1, name_index = $2, phone_index = $3 WHERE id = $4",
        )
        .bind(sealed)
        .bind(index)
        .bind(phone)
        .bind(client_id)
        .execute(self.conn())
        .await?;
        let fields: Vec<&str> = [
            ("name", &identity.name),
            ("national_id", &identity.national_id),
            ("phone", &identity.phone),
            ("address", &identity.address),
        ]
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| *k)
        .collect();
        self.audit(
            AuditEvent::new("client.identity.update", "client", client_id)
                .site(c.site_id)
                .reason(format!("fields set: {}", fields.join(", "))),
        )
        .await?;
        Ok(())
    }

    /// A client of the actor's site, read inside the unit of work; the use case's own audit
    /// entry records why it was opened.
    pub async fn client_for_write(&mut self, id: i64) -> Result<Client> {
        let row = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("client {id}")))?;
        let c = client(&row)?;
        let site = self.actor().site_id.ok_or_else(|| {
            DomainError::Forbidden("client records are reached from a site".into())
        })?;
        check_same_site(site, c.site_id, format_args!("client {id}"))?;
        Ok(c)
    }

    /// Decrypts a client's identifying fields inside the unit of work, with its
    /// `client.identity.read` entry in the same transaction.
    pub async fn read_identity(
        &mut self,
        client_id: i64,
        purpose: &str,
        vault: &Vault,
    ) -> Result<Identity> {
        let c = self.client_for_write(client_id).await?;
        self.audit(
            AuditEvent::new("client.identity.read", "client", client_id)
                .site(c.site_id)
                .reason(purpose),
        )
        .await?;
        let row = sqlx::query("SELECT identity FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_one(self.conn())
            .await?;
        open_identity(vault, client_id, col(&row, "identity")?)
    }
}

/// The client events of a treatment history, each with its `client.<kind>` audit entry.
impl crate::Work {
    async fn client_event(
        &mut self,
        c: &Client,
        kind: &str,
        detail: String,
        on_day: NaiveDate,
        update_sql: &str,
        binds: (Option<String>, Option<String>),
    ) -> Result<()> {
        let (actor, now) = (self.actor().clone(), self.now());
        sqlx::query(update_sql)
            .bind(binds.0)
            .bind(binds.1)
            .bind(c.id)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO client_events (client_id, kind, detail, on_day, actor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.id)
        .bind(kind.to_owned())
        .bind(detail.clone())
        .bind(on_day.to_string())
        .bind(actor.name.clone())
        .bind(to_ms(now))
        .execute(self.conn())
        .await?;
        self.audit(
            AuditEvent::new(&format!("client.{kind}"), "client", c.id)
                .site(c.site_id)
                .reason(detail),
        )
        .await?;
        Ok(())
    }

    /// Moves a client to another treatment stage from `since`, with the term of its order
    /// (community treatment or rehabilitation; `None` clears an earlier stage's term).
    pub async fn set_stage(
        &mut self,
        c: &Client,
        stage: Stage,
        since: NaiveDate,
        order: Option<OrderTerm>,
    ) -> Result<()> {
        let detail = match order {
            Some(t) => format!("{} → {stage} (order {} to {})", c.stage, t.start, t.end),
            None => format!("{} → {stage}", c.stage),
        };
        self.client_event(
            c,
            "stage",
            detail,
            since,
            "UPDATE clients SET stage = $1, stage_since = $2 WHERE id = $3",
            (Some(stage.as_str().to_owned()), Some(since.to_string())),
        )
        .await?;
        // Compulsory isolated treatment ends the episode of care; coming back opens one.
        let cit = Stage::CompulsoryIsolated;
        if stage == cit && c.stage != cit {
            self.end_episode(c.id, since, EpisodeEnd::Cit).await?;
        } else if c.stage == cit && stage != cit && c.discharged_on.is_none() {
            self.open_episode(c.id, c.site_id, since).await?;
        }
        sqlx::query("UPDATE clients SET order_start = $1, order_end = $2 WHERE id = $3")
            .bind(order.map(|t| t.start.to_string()))
            .bind(order.map(|t| t.end.to_string()))
            .bind(c.id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Discharges a client on `on` with a reason; dosing stops. Refused when already
    /// discharged or without a reason.
    pub async fn discharge(&mut self, c: &Client, on: NaiveDate, reason: &str) -> Result<()> {
        if let Some(day) = c.discharged_on {
            return Err(DomainError::from(
                Problem::new(Code::ClientAlreadyDischarged)
                    .arg("uic", &c.uic)
                    .arg("day", day.to_string()),
            )
            .into());
        }
        if reason.trim().is_empty() {
            return Err(
                DomainError::from(Problem::new(Code::ReasonRequired).field("reason")).into(),
            );
        }
        self.client_event(
            c,
            "discharge",
            reason.trim().to_owned(),
            on,
            "UPDATE clients SET discharged_on = $1, discharge_reason = $2 WHERE id = $3",
            (Some(on.to_string()), Some(reason.trim().to_owned())),
        )
        .await?;
        self.end_episode(c.id, on, EpisodeEnd::Discharge).await?;
        Ok(())
    }

    /// Re-admits a discharged client on `on`.
    pub async fn readmit(&mut self, c: &Client, on: NaiveDate) -> Result<()> {
        if c.discharged_on.is_none() {
            return Err(DomainError::from(
                Problem::new(Code::ClientInTreatment).arg("uic", &c.uic),
            )
            .into());
        }
        self.client_event(
            c,
            "readmit",
            String::new(),
            on,
            "UPDATE clients SET discharged_on = $1, discharge_reason = $2 WHERE id = $3",
            (None, None),
        )
        .await?;
        // A new episode: the earlier one keeps its discharge.
        self.open_episode(c.id, c.site_id, on).await
    }

    /// Transfers a client's care to site `to` (id and code) of the deployment on `on`.
    pub async fn transfer(&mut self, c: &Client, to: (i64, &str), on: NaiveDate) -> Result<()> {
        let (site_id, code) = to;
        if site_id == c.site_id {
            return Err(
                DomainError::from(Problem::new(Code::TransferSameSite).field("site")).into(),
            );
        }
        let (actor, now) = (self.actor().clone(), self.now());
        sqlx::query("UPDATE clients SET site_id = $1 WHERE id = $2")
            .bind(site_id)
            .bind(c.id)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO client_events (client_id, kind, detail, on_day, actor, created_at) \
             VALUES ($1, 'transfer', $2, $3, $4, $5)",
        )
        .bind(c.id)
        .bind(format!("to {code}"))
        .bind(on.to_string())
        .bind(actor.name.clone())
        .bind(to_ms(now))
        .execute(self.conn())
        .await?;
        self.audit(
            AuditEvent::new("client.transfer", "client", c.id)
                .site(c.site_id)
                .reason(format!("to site {code}")),
        )
        .await?;
        // The episode here ends; the new centre's opens the same day (unless the client is
        // out of treatment: discharged or in compulsory isolated treatment).
        let open = self.end_episode(c.id, on, EpisodeEnd::Transfer).await?;
        if open {
            self.open_episode(c.id, site_id, on).await?;
        }
        Ok(())
    }

    /// Opens an episode of care of client `client_id` at `site_id` from `on`.
    pub(crate) async fn open_episode(
        &mut self,
        client_id: i64,
        site_id: i64,
        on: NaiveDate,
    ) -> Result<()> {
        sqlx::query("INSERT INTO episodes (client_id, site_id, started_on) VALUES ($1, $2, $3)")
            .bind(client_id)
            .bind(site_id)
            .bind(on.to_string())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Ends client `client_id`'s open episode of care on `on` (its first day out) by `end`;
    /// answers whether there was one.
    pub(crate) async fn end_episode(
        &mut self,
        client_id: i64,
        on: NaiveDate,
        end: EpisodeEnd,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE episodes SET ended_on = $1, end_kind = $2 \
             WHERE client_id = $3 AND ended_on IS NULL",
        )
        .bind(on.to_string())
        .bind(end.as_str())
        .bind(client_id)
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(n > 0)
    }
}
