//! Police e-referrals (migration 0021, rules in `anxin_domain::referral`): the code's keyed
//! hash, the station (the officer's site), the state and its days. The centre marks a referral
//! arrived and then enrolled inside its unit of work ([`Work`]); enrolment links the client,
//! which never leaves the centre, and writes both words into the client's disclosure ledger.

use anxin_domain::gps::Presence;
use anxin_domain::referral::ReferralState;
use anxin_domain::release::Count;
use anxin_domain::{Code, DomainError, Problem};
use chrono::NaiveDate;
use sqlx::any::AnyRow;

use crate::audit::AuditEvent;
use crate::clients::parse_day;
use crate::takehome::{insert_disclosure, NewDisclosure};
use crate::{col, to_ms, Result, Store, StoreError, Work};

/// Who the ledger names as the recipient of a referral's words.
pub const RECIPIENT: &str = "PSB";
/// The purpose the ledger gives for them.
pub const PURPOSE: &str = "police referral";

/// A referral as the centre keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub id: i64,
    /// The police station (the officer's site) that issued it.
    pub station_site_id: i64,
    pub issued_on: NaiveDate,
    pub state: ReferralState,
    pub arrived_on: Option<NaiveDate>,
    /// The centre the person came to.
    pub arrived_site_id: Option<i64>,
    pub enrolled_on: Option<NaiveDate>,
    /// The client enrolled on it (the centre's own; never disclosed).
    pub client_id: Option<i64>,
}

const COLUMNS: &str = "id, station_site_id, issued_on, state, arrived_on, arrived_site_id, \
     enrolled_on, client_id";

fn opt_day(r: &AnyRow, name: &str) -> Result<Option<NaiveDate>> {
    col::<Option<String>>(r, name)?
        .map(|d| parse_day(name, &d))
        .transpose()
}

fn referral_row(r: &AnyRow) -> Result<Referral> {
    let state: String = col(r, "state")?;
    Ok(Referral {
        id: col(r, "id")?,
        station_site_id: col(r, "station_site_id")?,
        issued_on: parse_day("issued_on", &col::<String>(r, "issued_on")?)?,
        state: ReferralState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("referral state `{state}`")))?,
        arrived_on: opt_day(r, "arrived_on")?,
        arrived_site_id: col(r, "arrived_site_id")?,
        enrolled_on: opt_day(r, "enrolled_on")?,
        client_id: col(r, "client_id")?,
    })
}

/// The one answer for a code that is not waiting: never issued, or used.
fn unknown() -> StoreError {
    DomainError::from(Problem::new(Code::ReferralUnknown).field("code")).into()
}

impl Work {
    /// Issues a referral of station `station_site_id` under the code's keyed hash; audited
    /// (`referral.issue`, without the code).
    pub async fn issue_referral(
        &mut self,
        station_site_id: i64,
        code_hash: &str,
        on: NaiveDate,
    ) -> Result<i64> {
        let by = self
            .actor()
            .user_id
            .ok_or_else(|| DomainError::Forbidden("referrals are issued by an officer".into()))?;
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO referrals (code_hash, issued_by, station_site_id, issued_on, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(code_hash.to_owned())
        .bind(by)
        .bind(station_site_id)
        .bind(on.to_string())
        .bind(ReferralState::Issued.as_str().to_owned())
        .bind(to_ms(now))
        .fetch_one(&mut *self.conn())
        .await?;
        let id: i64 = col(&row, "id")?;
        self.audit(AuditEvent::new("referral.issue", "referral", id).site(station_site_id))
            .await?;
        Ok(id)
    }

    /// The person with the code came to centre `site_id` and agreed that the police be told:
    /// the referral becomes `arrived`; audited. A code that waits for nothing is refused
    /// `referral.unknown` at `code`, whatever the reason.
    pub async fn referral_arrived(
        &mut self,
        code_hash: &str,
        site_id: i64,
        on: NaiveDate,
    ) -> Result<Referral> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM referrals WHERE code_hash = $1"
        ))
        .bind(code_hash.to_owned())
        .fetch_optional(&mut *self.conn())
        .await?
        .ok_or_else(unknown)?;
        let r = referral_row(&row)?;
        if r.state != ReferralState::Issued {
            return Err(unknown());
        }
        sqlx::query(
            "UPDATE referrals SET state = $1, arrived_on = $2, arrived_site_id = $3 WHERE id = $4",
        )
        .bind(ReferralState::Arrived.as_str().to_owned())
        .bind(on.to_string())
        .bind(site_id)
        .bind(r.id)
        .execute(&mut *self.conn())
        .await?;
        self.audit(
            AuditEvent::new("referral.arrived", "referral", r.id)
                .site(site_id)
                .reason("the person agreed that the police be told"),
        )
        .await?;
        Ok(Referral {
            state: ReferralState::Arrived,
            arrived_on: Some(on),
            arrived_site_id: Some(site_id),
            ..r
        })
    }

    /// Referral `id`, arrived at centre `site_id`, is enrolled as client `client_id` (of that
    /// centre): both words go into the client's disclosure ledger; audited. Refused
    /// `referral.not_arrived` when it does not wait at this centre.
    pub async fn referral_enrolled(
        &mut self,
        id: i64,
        (client_id, site_id): (i64, i64),
        on: NaiveDate,
    ) -> Result<Referral> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM referrals WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.conn())
            .await?;
        let not_arrived = || -> StoreError {
            DomainError::from(Problem::new(Code::ReferralNotArrived).arg("id", id)).into()
        };
        let r = match row {
            Some(row) => referral_row(&row)?,
            None => return Err(not_arrived()),
        };
        if r.state != ReferralState::Arrived || r.arrived_site_id != Some(site_id) {
            return Err(not_arrived());
        }
        sqlx::query(
            "UPDATE referrals SET state = $1, enrolled_on = $2, client_id = $3 WHERE id = $4",
        )
        .bind(ReferralState::Enrolled.as_str().to_owned())
        .bind(on.to_string())
        .bind(client_id)
        .bind(r.id)
        .execute(&mut *self.conn())
        .await?;
        let (actor, now) = (self.actor().clone(), self.now());
        let arrived_on = r.arrived_on.unwrap_or(on);
        for (day, word) in [(arrived_on, "arrived"), (on, "enrolled")] {
            insert_disclosure(
                &mut *self.conn(),
                (client_id, site_id),
                day,
                &NewDisclosure {
                    recipient: RECIPIENT,
                    disclosed: word,
                    purpose: PURPOSE,
                },
                &actor,
                now,
            )
            .await?;
        }
        self.audit(
            AuditEvent::new("referral.enrolled", "client", client_id)
                .site(site_id)
                .reason(format!("referral {id}")),
        )
        .await?;
        Ok(Referral {
            state: ReferralState::Enrolled,
            enrolled_on: Some(on),
            client_id: Some(client_id),
            ..r
        })
    }
}

impl Store {
    /// The referrals station `station_site_id` issued, newest first.
    pub async fn referrals_of_station(&self, station_site_id: i64) -> Result<Vec<Referral>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM referrals WHERE station_site_id = $1 ORDER BY id DESC"
        ))
        .bind(station_site_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(referral_row).collect()
    }

    /// The referrals that arrived at centre `site_id` and wait for enrolment, oldest first.
    pub async fn referrals_waiting_at(&self, site_id: i64) -> Result<Vec<Referral>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM referrals WHERE arrived_site_id = $1 AND state = $2 ORDER BY id"
        ))
        .bind(site_id)
        .bind(ReferralState::Arrived.as_str().to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(referral_row).collect()
    }
}

/// What a station's figures are made of (counted here, suppressed by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StationCounts {
    pub referred: u64,
    pub arrived: u64,
    pub enrolled: u64,
    /// Enrolled at least 90 days ago, and of those still in treatment 90 days after (each with
    /// the fingerprint of its referrals, for the cell-key release).
    pub enrolled_3m: Count,
    pub retained_3m: Count,
    /// The same at 180 days.
    pub enrolled_6m: Count,
    pub retained_6m: Count,
    /// Police answers to take-home requests of the station's site: how many, and their days
    /// from request to answer in all.
    pub answers: u64,
    pub answer_days: u64,
    /// Take-home boxes out with the site's clients under GPS watch, and of them at home (by
    /// load).
    pub boxes_tracked: Count,
    pub boxes_at_home: Count,
}

impl Store {
    /// The counts behind a station's figures on `today`.
    pub async fn station_counts(
        &self,
        station_site_id: i64,
        today: NaiveDate,
    ) -> Result<StationCounts> {
        let rows = sqlx::query(
            "SELECT r.id, r.state, r.enrolled_on, c.discharged_on FROM referrals r \
             LEFT JOIN clients c ON c.id = r.client_id WHERE r.station_site_id = $1",
        )
        .bind(station_site_id)
        .fetch_all(self.pool())
        .await?;
        let mut n = StationCounts::default();
        for r in &rows {
            n.referred += 1;
            let id: i64 = col(r, "id")?;
            let state: String = col(r, "state")?;
            match ReferralState::parse(&state) {
                Some(ReferralState::Arrived) => n.arrived += 1,
                Some(ReferralState::Enrolled) => {
                    n.arrived += 1;
                    n.enrolled += 1;
                }
                _ => {}
            }
            let (Some(enrolled), left) = (opt_day(r, "enrolled_on")?, opt_day(r, "discharged_on")?)
            else {
                continue;
            };
            let still_in =
                |days: i64| left.is_none_or(|l| l >= enrolled + chrono::Duration::days(days));
            if today - enrolled >= chrono::Duration::days(90) {
                n.enrolled_3m.add(id as u64);
                if still_in(90) {
                    n.retained_3m.add(id as u64);
                }
            }
            if today - enrolled >= chrono::Duration::days(180) {
                n.enrolled_6m.add(id as u64);
                if still_in(180) {
                    n.retained_6m.add(id as u64);
                }
            }
        }
        let answers = sqlx::query(
            "SELECT requested_on, answered_on FROM psb_requests WHERE site_id = $1 AND answered_on IS NOT NULL",
        )
        .bind(station_site_id)
        .fetch_all(self.pool())
        .await?;
        for a in &answers {
            let (Some(asked), Some(answered)) =
                (opt_day(a, "requested_on")?, opt_day(a, "answered_on")?)
            else {
                continue;
            };
            n.answers += 1;
            n.answer_days += u64::try_from((answered - asked).num_days()).unwrap_or(0);
        }
        let boxes = sqlx::query(
            "SELECT l.id, p.presence FROM box_presence p JOIN box_loads l ON l.id = p.load_id \
             WHERE l.site_id = $1 AND l.state = $2",
        )
        .bind(station_site_id)
        .bind(
            anxin_domain::boxes::LoadState::WithClient
                .as_str()
                .to_owned(),
        )
        .fetch_all(self.pool())
        .await?;
        for b in &boxes {
            let load: i64 = col(b, "id")?;
            n.boxes_tracked.add(load as u64);
            let presence: String = col(b, "presence")?;
            if Presence::parse(&presence) == Some(Presence::AtHome) {
                n.boxes_at_home.add(load as u64);
            }
        }
        Ok(n)
    }
}
