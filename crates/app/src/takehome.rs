//! The take-home programme: adherence and the eligibility decision under the site's versioned
//! policy, police approval requests sent only under an active consent, the police queue that
//! shows only what a record check needs (each view a disclosure, audited), the police answer,
//! and the disclosure ledger.

use std::collections::BTreeSet;

use anxin_domain::clinic::adherence::{adherence, Adherence};
use anxin_domain::clinic::missed::Rule;
use anxin_domain::clinic::stage::Stage;
use anxin_domain::clinic::urine;
use anxin_domain::takehome::{
    approval_holds, approval_until, decide, Eligibility, Facts, Policy, RequestState, Tier,
};
use anxin_domain::{Code, Permission, Problem};
use anxin_storage::clinic::{Consent, Identity};
pub use anxin_storage::takehome::{Disclosure, PsbRequest};
use anxin_storage::takehome::{NewDisclosure, NewPsbRequest};
use anxin_storage::Client;
use chrono::{Duration, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispensing::{day_row, DayStatus};
use crate::{Actor, App, Error, Result};

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
        .filter(|o| o.in_force())
        .map(|o| o.order.start)
        .min()
        .unwrap_or(c.enrolled_on)
        .max(c.enrolled_on);
    // A day the centre was closed is not a day the client was expected at the window.
    let closed: BTreeSet<NaiveDate> = app
        .store
        .closures_from(c.site_id, today - Duration::days(120))
        .await?
        .into_iter()
        .map(|x| x.day)
        .filter(|d| *d <= today)
        .collect();
    let tests = app.store.urine_tests(c.id).await?;
    let streak = urine::negative_streak(tests.iter().map(|t| &t.outcome));
    Ok((adherence(first, &attended, &closed, today), streak))
}

/// The policy in force at a site: the latest version signed by the CDC, the police and the
/// centre whose start has come (the policy room, `crate::policy_room`), else its latest adopted
/// one, else the default.
pub async fn policy_of(app: &App, site_id: i64) -> Result<Policy> {
    if let Some(body) = app
        .store
        .signed_policy_in_force(site_id, app.today())
        .await?
    {
        return serde_json::from_str(&body).map_err(|e| {
            tracing::error!(error = %e, site_id, "signed take-home policy does not parse");
            Error::Internal(format!("signed take-home policy of site {site_id}: {e}"))
        });
    }
    adopted_policy_of(app, site_id).await
}

/// The policy a site adopted last (by the manager alone), or the default.
pub async fn adopted_policy_of(app: &App, site_id: i64) -> Result<Policy> {
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
    let (f, consent) = facts_of(app, c).await?;
    let policy = policy_of(app, c.site_id).await?;
    Ok((decide(&policy, &f), consent))
}

/// What the eligibility rules look at for a client today, and the id of the police-check
/// consent (the policy room's preview decides these facts under two policies).
pub async fn facts_of(app: &App, c: &Client) -> Result<(Facts, Option<i64>)> {
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
    Ok((f, consent.map(|x| x.id)))
}

/// The police approval that holds today, if any.
pub async fn approval_of(app: &App, c: &Client) -> Result<Option<PsbRequest>> {
    Ok(approval_in_force(app, c).await?.map(|(r, _)| r))
}

/// The police approval that holds today and its last valid day.
async fn approval_in_force(app: &App, c: &Client) -> Result<Option<(PsbRequest, NaiveDate)>> {
    let policy = policy_of(app, c.site_id).await?;
    approval_under(app, &policy, c.id).await
}

/// The police approval of client `client_id` that holds today under `policy`, and its last
/// valid day.
async fn approval_under(
    app: &App,
    policy: &Policy,
    client_id: i64,
) -> Result<Option<(PsbRequest, NaiveDate)>> {
    let today = app.today();
    let consents = app.store.consents(client_id).await?;
    for r in app.store.psb_requests_of_client(client_id).await? {
        if r.status != RequestState::Approved {
            continue;
        }
        let consent_active = consents
            .iter()
            .any(|x| x.id == r.consent_id && x.active_on(today));
        if let Some(on) = r.answered_on {
            if approval_holds(policy, on, consent_active, today) {
                return Ok(Some((r, approval_until(policy, on))));
            }
        }
    }
    Ok(None)
}

/// A police answer or an approval in force, as the centre's lists show it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AnsweredRequest {
    pub request: PsbRequestView,
    pub uic: String,
    /// The approval's last valid day (approvals only).
    pub valid_until: Option<NaiveDate>,
}

/// The police answers (approved or denied) to the centre's requests in the last `days` days
/// (today included), newest first.
pub async fn recent_answers(app: &App, me: &Actor, days: i64) -> Result<Vec<AnsweredRequest>> {
    me.require(Permission::TakeHomeManage)?;
    let since = app.today() - Duration::days(days.max(1) - 1);
    let policy = policy_of(app, me.site_id).await?;
    Ok(app
        .store
        .psb_answers_of_site(me.site_id, since)
        .await?
        .into_iter()
        .map(|(r, uic)| AnsweredRequest {
            valid_until: (r.status == RequestState::Approved)
                .then_some(r.answered_on)
                .flatten()
                .map(|on| approval_until(&policy, on)),
            request: PsbRequestView::from(&r),
            uic,
        })
        .collect())
}

/// The centre's police approvals in force today whose last valid day falls within the next
/// `days` days, soonest first: the clients who will lose their take-home days.
pub async fn approvals_ending(app: &App, me: &Actor, days: i64) -> Result<Vec<AnsweredRequest>> {
    me.require(Permission::TakeHomeManage)?;
    let today = app.today();
    let policy = policy_of(app, me.site_id).await?;
    // Every approval that may still hold was answered within its validity.
    let since = today - Duration::days(i64::from(policy.approval_valid_days));
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (r, uic) in app.store.psb_answers_of_site(me.site_id, since).await? {
        if r.status != RequestState::Approved || !seen.insert(r.client_id) {
            continue;
        }
        // The client's approval in force (the consent still active), as their record shows it.
        if let Some((a, until)) = approval_under(app, &policy, r.client_id).await? {
            if until >= today && until <= today + Duration::days(days) {
                out.push(AnsweredRequest {
                    request: PsbRequestView::from(&a),
                    uic,
                    valid_until: Some(until),
                });
            }
        }
    }
    out.sort_by_key(|a| (a.valid_until, a.request.id));
    Ok(out)
}

/// What a police request discloses, and nothing more.
pub const POLICE_DISCLOSES: &str = "name, national ID number, requested take-home days";
/// Days the police have to answer a request.
pub const REQUEST_VALID_DAYS: i64 = 14;

/// A police request just sent.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RequestSent {
    pub request_id: i64,
}

/// What the police see of one request: only what a record check needs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PoliceRequestView {
    pub id: i64,
    pub name: Option<String>,
    pub national_id: Option<String>,
    pub requested_days: i64,
    pub requested_on: chrono::NaiveDate,
    pub expires_on: chrono::NaiveDate,
    /// pending, approved or denied (a pending request past `expires_on` is expired)
    #[schemars(with = "String")]
    pub status: RequestState,
    pub answered_on: Option<chrono::NaiveDate>,
}

/// A police approval request as the centre sees it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PsbRequestView {
    pub id: i64,
    pub client_id: i64,
    pub site_id: i64,
    pub requested_days: i64,
    pub consent_id: i64,
    pub requested_on: chrono::NaiveDate,
    pub expires_on: chrono::NaiveDate,
    /// pending, approved or denied
    #[schemars(with = "String")]
    pub status: RequestState,
    pub answered_on: Option<chrono::NaiveDate>,
    pub answer_reason: Option<String>,
}

impl From<&PsbRequest> for PsbRequestView {
    fn from(r: &PsbRequest) -> Self {
        PsbRequestView {
            id: r.id,
            client_id: r.client_id,
            site_id: r.site_id,
            requested_days: r.requested_days,
            consent_id: r.consent_id,
            requested_on: r.requested_on,
            expires_on: r.expires_on,
            status: r.status,
            answered_on: r.answered_on,
            answer_reason: r.answer_reason.clone(),
        }
    }
}

/// The approval in force and the request history of a client.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TakeHomeStatus {
    pub approved_days: Option<i64>,
    pub approval: Option<PsbRequestView>,
    pub requests: Vec<PsbRequestView>,
}

/// One line of the disclosure ledger.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DisclosureView {
    pub on_day: chrono::NaiveDate,
    pub recipient: String,
    pub disclosed: String,
    pub purpose: String,
    pub actor: String,
}

impl From<&Disclosure> for DisclosureView {
    fn from(d: &Disclosure) -> Self {
        DisclosureView {
            on_day: d.on_day,
            recipient: d.recipient.clone(),
            disclosed: d.disclosed.clone(),
            purpose: d.purpose.clone(),
            actor: d.actor.clone(),
        }
    }
}

/// One tier of the eligibility policy.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TierView {
    pub days: u8,
    pub min_days_in_treatment: u32,
    /// Attendance over the last 30 days, percent.
    pub min_attendance_30: f64,
    /// Attendance over the last 90 days, percent.
    pub min_attendance_90: f64,
    /// The most recent N urine tests must all be negative for non-prescribed drugs.
    pub last_urine_negative: u32,
}

impl From<&Tier> for TierView {
    fn from(t: &Tier) -> Self {
        TierView {
            days: t.days,
            min_days_in_treatment: t.min_days_in_treatment,
            min_attendance_30: t.min_attendance_30,
            min_attendance_90: t.min_attendance_90,
            last_urine_negative: t.last_urine_negative,
        }
    }
}

/// The eligibility policy in force.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PolicyView {
    pub version: String,
    /// Days a police approval stays valid.
    pub approval_valid_days: u32,
    pub tiers: Vec<TierView>,
}

impl From<&Policy> for PolicyView {
    fn from(p: &Policy) -> Self {
        PolicyView {
            version: p.version.clone(),
            approval_valid_days: p.approval_valid_days,
            tiers: p.tiers.iter().map(TierView::from).collect(),
        }
    }
}

/// What the take-home section of a client's record shows.
#[derive(Debug)]
pub struct TakeHomeSection {
    pub eligibility: Eligibility,
    /// The approval in force and its last valid day.
    pub approval: Option<(PsbRequest, NaiveDate)>,
    /// The newest request when it is not the approval in force: pending, denied or expired.
    pub latest: Option<PsbRequest>,
    pub ledger: Vec<Disclosure>,
}

/// Reads a client for a take-home purpose (audited as a record read).
async fn open(app: &App, me: &Actor, client_id: i64, purpose: &str) -> Result<Client> {
    me.require(Permission::ClinicalRead)?;
    Ok(app
        .store
        .read_client(&me.audit(), client_id, purpose, app.now())
        .await?)
}

/// The eligibility decision for a client today, every criterion explained.
pub async fn eligibility(app: &App, me: &Actor, client_id: i64) -> Result<Eligibility> {
    let c = open(app, me, client_id, "take-home eligibility").await?;
    Ok(eligibility_of(app, &c).await?.0)
}

/// The take-home section of a record the caller has already opened.
pub async fn section(app: &App, c: &Client) -> Result<TakeHomeSection> {
    let (eligibility, _) = eligibility_of(app, c).await?;
    let approval = approval_in_force(app, c).await?;
    let latest = app
        .store
        .psb_requests_of_client(c.id)
        .await?
        .into_iter()
        .next()
        .filter(|r| approval.as_ref().is_none_or(|(a, _)| a.id != r.id))
        .filter(|r| r.status != RequestState::Approved);
    Ok(TakeHomeSection {
        eligibility,
        approval,
        latest,
        ledger: app.store.disclosures(c.id).await?,
    })
}

/// Asks the police to approve `days` take-home days: refused without an active consent to
/// the check, when the client is not eligible today, or for more days than eligible. The
/// decision behind it, the request and its disclosure are written together.
pub async fn send_request(app: &App, me: &Actor, client_id: i64, days: i64) -> Result<RequestSent> {
    me.require(Permission::TakeHomeManage)?;
    let c = open(app, me, client_id, "police request").await?;
    if let Some((a, until)) = approval_in_force(app, &c).await? {
        return Err(Problem::new(Code::RequestApprovalHolds)
            .arg("days", a.requested_days.to_string())
            .arg("until", until.to_string())
            .into());
    }
    let (e, consent) = eligibility_of(app, &c).await?;
    let Some(consent_id) = consent else {
        return Err(Problem::new(Code::RequestNoConsent)
            .arg("uic", &c.uic)
            .into());
    };
    if e.days == 0 {
        return Err(Problem::new(Code::RequestNotEligible)
            .arg("uic", &c.uic)
            .into());
    }
    if !(2..=i64::from(e.days)).contains(&days) {
        return Err(Problem::new(Code::RequestDaysOutOfRange)
            .field("days")
            .arg("max", e.days.to_string())
            .into());
    }
    let today = app.today();
    let criteria = serde_json::to_string(&e.criteria)
        .map_err(|e| Error::Internal(format!("criteria do not serialise: {e}")))?;
    let request_id = app
        .store
        .create_psb_request(
            &me.audit(),
            &NewPsbRequest {
                client: &c,
                requested_days: days,
                eligible_days: i64::from(e.days),
                policy_version: &e.policy_version,
                criteria_json: &criteria,
                consent_id,
                requested_on: today,
                expires_on: today + Duration::days(REQUEST_VALID_DAYS),
                disclosure: NewDisclosure {
                    recipient: "PSB",
                    disclosed: POLICE_DISCLOSES,
                    purpose: "take-home police check",
                },
            },
            app.now(),
        )
        .await?;
    Ok(RequestSent { request_id })
}

fn police_view(r: &PsbRequest, identity: Identity) -> PoliceRequestView {
    PoliceRequestView {
        id: r.id,
        name: identity.name,
        national_id: identity.national_id,
        requested_days: r.requested_days,
        requested_on: r.requested_on,
        expires_on: r.expires_on,
        status: r.status,
        answered_on: r.answered_on,
    }
}

/// The police queue of the officer's office (their site, or the centres of the unit their
/// account is scoped to): name and national ID of each request, every one a disclosure audited
/// in the same transaction as the reading.
pub async fn police_queue(app: &App, me: &Actor) -> Result<Vec<PoliceRequestView>> {
    me.require(Permission::PsbQueue)?;
    let mut out = Vec::new();
    for site in crate::org::police_sites(app, me).await? {
        let reqs = app.store.psb_requests_of_site(site, 100).await?;
        if reqs.is_empty() {
            continue;
        }
        let mut work = app
            .store
            .begin_work(&crate::org::at_site(me, site), app.now())
            .await?;
        for r in &reqs {
            let identity = work.identity_for_police(r, &app.vault).await?;
            out.push(police_view(r, identity));
        }
        app.failpoint("police_queue.before_commit")?;
        work.commit().await?;
    }
    Ok(out)
}

/// The police answer.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// approve or deny
    pub decision: String,
    pub reason: String,
}

/// Records the police answer to request `request_id` and shows the request as answered.
pub async fn answer(
    app: &App,
    me: &Actor,
    request_id: i64,
    a: &AnswerBody,
) -> Result<PoliceRequestView> {
    me.require(Permission::PsbQueue)?;
    let approve = match a.decision.trim() {
        "approve" => true,
        "deny" => false,
        other => {
            return Err(Problem::new(Code::RequestDecisionInvalid)
                .field("decision")
                .arg("value", other)
                .into())
        }
    };
    let reason = a.reason.trim();
    if reason.is_empty() {
        return Err(Problem::new(Code::ReasonRequired).field("reason").into());
    }
    // An officer scoped to a unit answers for the centres in it (the store checks the centre).
    let sites = crate::org::police_sites(app, me).await?;
    let site = match app.store.psb_request(request_id).await {
        Ok(r) if sites.contains(&r.site_id) => r.site_id,
        Ok(_) => return Err(Problem::new(Code::RequestOtherOffice).into()),
        Err(_) => me.site_id, // none such: the store says so
    };
    let mut work = app
        .store
        .begin_work(&crate::org::at_site(me, site), app.now())
        .await?;
    let r = work
        .answer_psb_request(request_id, approve, reason, app.today())
        .await?;
    let identity = work.identity_for_police(&r, &app.vault).await?;
    work.commit().await?;
    Ok(police_view(&r, identity))
}

/// The approval in force and the request history of a client.
pub async fn status(app: &App, me: &Actor, client_id: i64) -> Result<TakeHomeStatus> {
    let c = open(app, me, client_id, "take-home status").await?;
    let approval = approval_of(app, &c).await?;
    let requests = app.store.psb_requests_of_client(c.id).await?;
    Ok(TakeHomeStatus {
        approved_days: approval.as_ref().map(|a| a.requested_days),
        approval: approval.as_ref().map(PsbRequestView::from),
        requests: requests.iter().map(PsbRequestView::from).collect(),
    })
}

/// The client's disclosure ledger: every piece of their data that left the centre.
pub async fn disclosures(app: &App, me: &Actor, client_id: i64) -> Result<Vec<DisclosureView>> {
    let c = open(app, me, client_id, "disclosure ledger").await?;
    let ledger = app.store.disclosures(c.id).await?;
    Ok(ledger.iter().map(DisclosureView::from).collect())
}

/// The eligibility policy in force at the actor's centre.
pub async fn policy(app: &App, me: &Actor) -> Result<PolicyView> {
    me.require(Permission::TakeHomeManage)?;
    Ok(PolicyView::from(&policy_of(app, me.site_id).await?))
}

/// The eligibility policy in force at the actor's centre, as the rules read it.
pub async fn policy_in_force(app: &App, me: &Actor) -> Result<Policy> {
    me.require(Permission::TakeHomeManage)?;
    policy_of(app, me.site_id).await
}

/// One adopted version of the centre's policy, as the policy page lists it.
#[derive(Debug, Clone)]
pub struct PolicyVersion {
    pub policy: Policy,
    /// Who adopted it; none when adopted from the command line.
    pub adopted_by: Option<String>,
    pub adopted_at: chrono::DateTime<chrono::Utc>,
}

/// Every version adopted at the actor's centre, newest first (the first one is in force; with
/// none, the default is).
pub async fn policy_history(app: &App, me: &Actor) -> Result<Vec<PolicyVersion>> {
    me.require(Permission::TakeHomeManage)?;
    app.store
        .policy_history(me.site_id)
        .await?
        .into_iter()
        .map(|a| {
            let policy = serde_json::from_str(&a.body).map_err(|e| {
                Error::Internal(format!(
                    "take-home policy {} does not parse: {e}",
                    a.version
                ))
            })?;
            Ok(PolicyVersion {
                policy,
                adopted_by: a.adopted_by,
                adopted_at: a.adopted_at,
            })
        })
        .collect()
}

/// Adopts a new version of the eligibility policy at the actor's centre.
pub async fn adopt_policy(app: &App, me: &Actor, p: &Policy) -> Result<()> {
    me.require(Permission::TakeHomePolicy)?;
    p.validate()?;
    let body = serde_json::to_string(p)
        .map_err(|e| Error::Internal(format!("policy does not serialise: {e}")))?;
    app.store
        .adopt_policy(&me.audit(), me.site_id, p.version.trim(), &body, app.now())
        .await?;
    Ok(())
}
