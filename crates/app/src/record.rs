//! Reading a client's record: opening it (site-scoped, audited with its purpose), its orders,
//! doses, adherence, urine tests and consents, the intake assessments, overdoses and a death, and the whole record page in one call that
//! reads only the sections the actor's role may see ([`anxin_domain::access::RecordSection`]).

use std::collections::BTreeMap;

use anxin_domain::access::RecordSection;
use anxin_domain::clinic::adherence::{Adherence, Day, Ratio};
use anxin_domain::clinic::urine::Outcome;
use anxin_domain::indicators::Sex;
use anxin_domain::Permission;
use anxin_storage::assessments::{Death, Overdose, StoredAssessment};
use anxin_storage::clinic::{Agreement, Consent, Identity, StoredOrder, UrineTest};
use anxin_storage::{AuditView, Client};
use chrono::{Duration, NaiveDate};
use schemars::JsonSchema;
use serde::Serialize;

use crate::{Actor, App, Result};

/// How many clients `me`'s centre has.
pub async fn count(app: &App, me: &Actor) -> Result<i64> {
    me.require(Permission::ClientRead)?;
    Ok(app.store.count_clients(me.site_id).await?)
}

/// Opens client `id` for `me` (same centre), audited as a read with `purpose`.
pub async fn open(app: &App, me: &Actor, id: i64, purpose: &str) -> Result<Client> {
    me.require(Permission::ClientRead)?;
    Ok(app
        .store
        .read_client(&me.audit(), id, purpose, app.now())
        .await?)
}

/// Opens a client record for a clinical read (orders, doses, urine, consents).
async fn open_clinical(app: &App, me: &Actor, id: i64, purpose: &str) -> Result<Client> {
    me.require(Permission::ClinicalRead)?;
    open(app, me, id, purpose).await
}

/// A client's dose orders, oldest first (the read is audited).
pub async fn orders(app: &App, me: &Actor, id: i64) -> Result<Vec<StoredOrder>> {
    let c = open_clinical(app, me, id, "orders").await?;
    Ok(app.store.orders(c.id).await?)
}

/// A dose given.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DoseView {
    pub day: NaiveDate,
    /// 1 for the first portion of the day.
    pub portion: u16,
    pub mg: u32,
    pub site_id: i64,
    pub guest: bool,
    pub rule: String,
    pub given_at: String,
}

/// A client's doses of the last 90 days (the read is audited).
pub async fn doses(app: &App, me: &Actor, id: i64) -> Result<Vec<DoseView>> {
    let c = open_clinical(app, me, id, "dose history").await?;
    let today = app.today();
    let doses = app
        .store
        .doses_between(c.id, today - Duration::days(90), today)
        .await?;
    Ok(doses
        .iter()
        .map(|d| DoseView {
            day: d.day,
            portion: u16::from(d.portion) + 1,
            mg: d.mg,
            site_id: d.site_id,
            guest: d.guest,
            rule: d.rule.clone(),
            given_at: d.given_at.to_rfc3339(),
        })
        .collect())
}

/// Attended out of expected days in a window.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RatioView {
    pub attended: u32,
    pub expected: u32,
}

impl From<Ratio> for RatioView {
    fn from(r: Ratio) -> Self {
        RatioView {
            attended: r.attended,
            expected: r.expected,
        }
    }
}

/// A client's adherence figures and 90-day timeline.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AdherenceView {
    pub last_30: RatioView,
    pub last_90: RatioView,
    /// `null` when no day was expected.
    pub last_30_percent: Option<f64>,
    pub last_90_percent: Option<f64>,
    pub current_streak: u32,
    pub longest_gap_90: u32,
    pub urine_negative_streak: u32,
    /// The last 90 days, oldest first: not_expected, attended, missed, pending or closed.
    #[schemars(with = "Vec<String>")]
    pub timeline: Vec<Day>,
}

/// A client's adherence as of today (the read is audited).
pub async fn adherence(app: &App, me: &Actor, id: i64) -> Result<AdherenceView> {
    let c = open_clinical(app, me, id, "adherence").await?;
    let (a, streak) = crate::takehome::client_adherence(app, &c).await?;
    Ok(AdherenceView {
        last_30: RatioView::from(a.last_30),
        last_90: RatioView::from(a.last_90),
        last_30_percent: a.last_30.percent(),
        last_90_percent: a.last_90.percent(),
        current_streak: a.current_streak,
        longest_gap_90: a.longest_gap_90,
        urine_negative_streak: streak,
        timeline: a.timeline,
    })
}

/// The JSON shape of a urine test's outcome (schema only; the domain type writes it).
#[derive(JsonSchema)]
#[schemars(rename = "UrineOutcome")]
#[allow(dead_code)]
struct OutcomeShape {
    /// tested, refused or not_provided
    outcome: String,
    /// substance → `true` when positive (tested only)
    results: Option<BTreeMap<String, bool>>,
}

/// A urine test result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UrineView {
    pub id: i64,
    pub collected_on: NaiveDate,
    pub observed: bool,
    #[schemars(with = "OutcomeShape")]
    pub outcome: Outcome,
    pub negative: bool,
    /// random, scheduled or clinical
    pub reason: String,
}

/// A client's urine tests (the read is audited).
pub async fn urine_tests(app: &App, me: &Actor, id: i64) -> Result<Vec<UrineView>> {
    let c = open_clinical(app, me, id, "urine tests").await?;
    let tests = app.store.urine_tests(c.id).await?;
    Ok(tests
        .iter()
        .map(|t| UrineView {
            id: t.id,
            collected_on: t.collected_on,
            observed: t.observed,
            outcome: t.outcome.clone(),
            negative: t.outcome.negative(),
            reason: t.reason.clone(),
        })
        .collect())
}

/// A consent to a disclosure.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConsentView {
    pub id: i64,
    pub client_id: i64,
    pub purpose: String,
    pub recipient: String,
    pub scope: String,
    pub given_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub revoked_on: Option<NaiveDate>,
    pub revoked_reason: Option<String>,
    /// In force today (in the list of a client's consents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

impl From<&Consent> for ConsentView {
    fn from(c: &Consent) -> Self {
        ConsentView {
            id: c.id,
            client_id: c.client_id,
            purpose: c.purpose.clone(),
            recipient: c.recipient.clone(),
            scope: c.scope.clone(),
            given_on: c.given_on,
            expires_on: c.expires_on,
            revoked_on: c.revoked_on,
            revoked_reason: c.revoked_reason.clone(),
            active: None,
        }
    }
}

/// A client's consents, each with whether it is in force today (the read is audited).
pub async fn consents(app: &App, me: &Actor, id: i64) -> Result<Vec<ConsentView>> {
    let c = open_clinical(app, me, id, "consents").await?;
    let today = app.today();
    Ok(app
        .store
        .consents(c.id)
        .await?
        .iter()
        .map(|x| ConsentView {
            active: Some(x.active_on(today)),
            ..ConsentView::from(x)
        })
        .collect())
}

/// The sections of a client's record page that `me`'s role may see, read at once: the client
/// read is one audit entry (`record page`), the identity one more when it is shown.
pub struct RecordPage {
    pub client: Client,
    /// Decrypted identifying fields (roles that read identities); `None` otherwise.
    pub identity: Option<Identity>,
    /// Sex and year of birth, beside the identity.
    pub demographics: Option<(Sex, Option<i32>)>,
    /// The clinical sections (roles with clinical access); `None` otherwise.
    pub clinical: Option<ClinicalSections>,
    /// Serials of the boxes out with the client now (roles that change the course of
    /// treatment, which a box out affects); empty otherwise.
    pub boxes_out: Vec<String>,
    /// Who opened the record (managers only); empty otherwise.
    pub trail: Vec<AuditView>,
}

/// A record's clinical sections.
pub struct ClinicalSections {
    pub orders: Vec<StoredOrder>,
    pub adherence: Adherence,
    pub urine_negative_streak: u32,
    pub urine_tests: Vec<UrineTest>,
    pub consents: Vec<Consent>,
    pub agreements: Vec<Agreement>,
    /// The intake assessments, the current one first.
    pub assessments: Vec<StoredAssessment>,
    /// Overdose events, newest first.
    pub overdoses: Vec<Overdose>,
    /// The client's death, if recorded.
    pub death: Option<Death>,
}

/// Reads client `id`'s record page for `me`.
pub async fn page(app: &App, me: &Actor, id: i64) -> Result<RecordPage> {
    let c = open(app, me, id, "record page").await?;
    let identity = if me.role.sees(RecordSection::Identity) {
        Some(
            app.store
                .read_identity(&me.audit(), c.id, "record page", &app.vault, app.now())
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, client = c.id, "identity does not decrypt");
                    Identity {
                        name: Some("⚠ unreadable".into()),
                        ..Identity::default()
                    }
                }),
        )
    } else {
        None
    };
    let demographics = match identity {
        Some(_) => Some(app.store.demographics(c.id).await?),
        None => None,
    };
    let clinical = if me.role.sees(RecordSection::Clinical) {
        let (adherence, urine_negative_streak) = crate::takehome::client_adherence(app, &c).await?;
        Some(ClinicalSections {
            orders: app.store.orders(c.id).await?,
            adherence,
            urine_negative_streak,
            urine_tests: app.store.urine_tests(c.id).await?,
            consents: app.store.consents(c.id).await?,
            agreements: app.store.agreements(c.id).await?,
            assessments: app.store.assessments(c.id).await?,
            overdoses: app.store.overdoses(c.id).await?,
            death: app.store.death(c.id).await?,
        })
    } else {
        None
    };
    let boxes_out = if me.role.has(Permission::ClientWrite) {
        crate::treatment::boxes_out(app, &c).await?
    } else {
        vec![]
    };
    let trail = if me.role.sees(RecordSection::AccessTrail) {
        app.store
            .audit_of_record("client", &c.id.to_string())
            .await?
    } else {
        vec![]
    };
    Ok(RecordPage {
        client: c,
        identity,
        demographics,
        clinical,
        boxes_out,
        trail,
    })
}
