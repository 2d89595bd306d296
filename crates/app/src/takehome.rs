//! Take-home facts gathered from a client's record: adherence, the eligibility decision under
//! the site's policy in force, and the police approval that holds today.

use std::collections::BTreeSet;

use anxin_domain::clinic::adherence::{adherence, Adherence};
use anxin_domain::clinic::missed::Rule;
use anxin_domain::clinic::stage::Stage;
use anxin_domain::clinic::urine;
use anxin_domain::takehome::{approval_holds, decide, Eligibility, Facts, Policy};
use anxin_storage::clinic::Consent;
use anxin_storage::takehome::PsbRequest;
use anxin_storage::Client;
use chrono::{Duration, NaiveDate};

use crate::dispensing::{day_row, DayStatus};
use crate::{App, Error, Result};

/// The consent a police check needs.
pub const POLICE_PURPOSE: &str = "take_home_police_check";

/// Adherence over the last 90 days and the current run of negative urine tests.
pub async fn client_adherence(app: &App, c: &Client) -> Result<(Adherence, u32)> {
    let today = app.today();
    let doses = app
        .store
        .doses_between(c.id, today - Duration::days(120), today)
        .await?;
    // Take-home days count as attended only once the returned box's log confirms them.
    let attended: BTreeSet<NaiveDate> = doses
        .iter()
        .filter(|d| {
            !matches!(
                d.rule.as_str(),
                "take_home_pending" | "take_home_unopened" | "take_home_lost"
            )
        })
        .map(|d| d.day)
        .collect();
    let orders = app.store.orders(c.id).await?;
    let first = orders
        .iter()
        .map(|o| o.order.start)
        .min()
        .unwrap_or(c.enrolled_on)
        .max(c.enrolled_on);
    let tests = app.store.urine_tests(c.id).await?;
    let streak = urine::negative_streak(tests.iter().map(|t| &t.outcome));
    Ok((adherence(first, &attended, today), streak))
}

/// The policy in force at a site: its latest adopted one, or the default.
pub async fn policy_of(app: &App, site_id: i64) -> Result<Policy> {
    Ok(match app.store.current_policy(site_id).await? {
        Some(body) => serde_json::from_str(&body).map_err(|e| {
            tracing::error!(error = %e, site_id, "stored take-home policy does not parse");
            Error::Internal(format!("take-home policy of site {site_id}: {e}"))
        })?,
        None => Policy::default(),
    })
}

/// The active police-check consent, if any.
pub fn police_consent(consents: &[Consent], today: NaiveDate) -> Option<&Consent> {
    consents
        .iter()
        .find(|c| c.purpose == POLICE_PURPOSE && c.recipient == "PSB" && c.active_on(today))
}

/// The eligibility decision for a client today, and the id of the police-check consent.
pub async fn eligibility_of(app: &App, c: &Client) -> Result<(Eligibility, Option<i64>)> {
    let today = app.today();
    let (adh, _) = client_adherence(app, c).await?;
    let tests = app.store.urine_tests(c.id).await?;
    let consents = app.store.consents(c.id).await?;
    let agreements = app.store.agreements(c.id).await?;
    let facts = app.store.dose_facts(c.clone(), false, today).await?;
    let row = day_row(app, &facts, today);
    let recent = app
        .store
        .doses_between(c.id, today - Duration::days(14), today)
        .await?;
    // Only a dose lowered after missed days is a missed-dose rule: take-home compartments
    // (`take_home`, …) are not, so a second take-home period can follow the first.
    let missed_rule_in_force = row.status == DayStatus::Withheld
        || recent
            .iter()
            .any(|d| Rule::parse(&d.rule).is_some_and(Rule::after_missed_days));
    let consent = police_consent(&consents, today);
    let f = Facts {
        // From enrolment (recorded at intake), not from the first order written in Anxin: a
        // long-term client moved in keeps the time already in treatment.
        days_in_treatment: u32::try_from((today - c.enrolled_on).num_days().max(0)).unwrap_or(0),
        attendance_30: adh.last_30,
        attendance_90: adh.last_90,
        urine_negative_newest_first: tests.iter().map(|t| t.outcome.negative()).collect(),
        missed_rule_in_force,
        agreement_signed: !agreements.is_empty(),
        police_consent_active: consent.is_some(),
        in_treatment: c.discharged_on.is_none() && c.stage != Stage::CompulsoryIsolated,
    };
    let policy = policy_of(app, c.site_id).await?;
    Ok((decide(&policy, &f), consent.map(|x| x.id)))
}

/// The police approval that holds today, if any.
pub async fn approval_of(app: &App, c: &Client) -> Result<Option<PsbRequest>> {
    let today = app.today();
    let policy = policy_of(app, c.site_id).await?;
    let consents = app.store.consents(c.id).await?;
    for r in app.store.psb_requests_of_client(c.id).await? {
        if r.status != "approved" {
            continue;
        }
        let consent_active = consents
            .iter()
            .any(|x| x.id == r.consent_id && x.active_on(today));
        if let Some(on) = r.answered_on {
            if approval_holds(&policy, on, consent_active, today) {
                return Ok(Some(r));
            }
        }
    }
    Ok(None)
}
