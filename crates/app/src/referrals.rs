//! Police e-referral (`anxin_domain::referral`): an officer issues a code on paper for the
//! person, nothing about them; when the person comes to a centre and agrees, the centre marks
//! the referral arrived, and enrolled once the person is a client. The police read back only
//! those words and their days, and their station's figures (aggregate; the retention figures
//! suppressed below the threshold). Each word the police can read is a line in the client's
//! disclosure ledger once the client is enrolled.

use anxin_domain::referral;
use anxin_domain::release::{self, CellKeys, Count};
use anxin_domain::{Code, Permission, Problem};
use anxin_storage::referrals::Referral;
use chrono::NaiveDate;
use rand::RngCore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Actor, App, Result};

/// A referral just issued: the code is shown this once (for the paper slip), never again.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssuedReferral {
    pub id: i64,
    /// As printed, `ABCD-EFGH`.
    pub code: String,
    pub issued_on: NaiveDate,
}

/// What the police see of one of their referrals: its state word and days, nothing else.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReferralView {
    pub id: i64,
    pub issued_on: NaiveDate,
    /// `issued`, `arrived` or `enrolled`.
    pub state: String,
    pub arrived_on: Option<NaiveDate>,
    pub enrolled_on: Option<NaiveDate>,
}

impl From<&Referral> for ReferralView {
    fn from(r: &Referral) -> Self {
        ReferralView {
            id: r.id,
            issued_on: r.issued_on,
            state: r.state.as_str().to_owned(),
            arrived_on: r.arrived_on,
            enrolled_on: r.enrolled_on,
        }
    }
}

/// A figure the police may read: the count, or `None` when it is below the suppression
/// threshold (and not zero).
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct Figure {
    pub value: Option<u64>,
    pub suppressed: bool,
}

/// A station's health-based figures.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StationFigures {
    /// People this station referred, of them arrived at a centre, of them enrolled (the station
    /// reads these words one by one in its list already).
    pub referred: u64,
    pub arrived: u64,
    pub enrolled: u64,
    /// Of those enrolled at least 3 (6) months ago, still in treatment 3 (6) months later.
    pub enrolled_3m: Figure,
    pub retained_3m: Figure,
    pub enrolled_6m: Figure,
    pub retained_6m: Figure,
    /// Mean days from a take-home request to the police answer, at this station's site.
    pub mean_days_to_answer: Option<f64>,
    /// Take-home boxes out under GPS watch at this station's site, and of them at home now.
    pub boxes_tracked: Figure,
    pub boxes_at_home: Figure,
    /// Counts below this are suppressed.
    pub threshold: u64,
}

/// The police's page: their station's referrals, newest first, and its figures.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StationView {
    pub referrals: Vec<ReferralView>,
    pub figures: StationFigures,
}

/// An officer issues a referral: a fresh code, kept only as its keyed hash.
pub async fn issue(app: &App, me: &Actor) -> Result<IssuedReferral> {
    me.require(Permission::ReferralIssue)?;
    let mut random = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let code = referral::code_from(random);
    let today = app.today();
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let id = work
        .issue_referral(me.site_id, &app.vault.referral_index(&code), today)
        .await?;
    work.commit().await?;
    Ok(IssuedReferral {
        id,
        code: referral::display(&code),
        issued_on: today,
    })
}

/// The officer's station: its referrals and figures.
pub async fn station(app: &App, me: &Actor) -> Result<StationView> {
    me.require(Permission::ReferralIssue)?;
    let referrals = app.store.referrals_of_station(me.site_id).await?;
    let n = app.store.station_counts(me.site_id, app.today()).await?;
    let threshold = app.settings.suppression_threshold;
    // The figures leave as the indicators do (`anxin_domain::release`): each count perturbed by
    // its cell key, so that yesterday's and today's figures do not tell the police which of the
    // people they referred left treatment.
    let keys = CellKeys::new(app.vault.cell_key_secret());
    let hidden = Figure {
        value: None,
        suppressed: true,
    };
    // A retained count is hidden with its base when either, or the difference, is small, so
    // that one cannot be worked out from the other; it never reads above its base.
    let pair = |base: Count, kept: Count| {
        let shown = |v: u64| Figure {
            value: Some(v),
            suppressed: false,
        };
        release::share(|c| keys.publish_count(c, threshold), base, kept)
            .map_or((hidden, hidden), |(b, k)| (shown(b), shown(k)))
    };
    let (enrolled_3m, retained_3m) = pair(n.enrolled_3m, n.retained_3m);
    let (enrolled_6m, retained_6m) = pair(n.enrolled_6m, n.retained_6m);
    let (boxes_tracked, boxes_at_home) = pair(n.boxes_tracked, n.boxes_at_home);
    Ok(StationView {
        referrals: referrals.iter().map(ReferralView::from).collect(),
        figures: StationFigures {
            referred: n.referred,
            arrived: n.arrived,
            enrolled: n.enrolled,
            enrolled_3m,
            retained_3m,
            enrolled_6m,
            retained_6m,
            mean_days_to_answer: (n.answers >= threshold)
                .then(|| n.answer_days as f64 / n.answers as f64),
            boxes_tracked,
            boxes_at_home,
            threshold,
        },
    })
}

/// A person hands their code in at the centre.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrivedRequest {
    /// The code on the slip (any case; spaces or a hyphen are fine).
    pub code: String,
    /// The person agrees that the police be told "arrived" and, later, "enrolled". Without it
    /// nothing is marked and the police keep seeing "issued".
    #[serde(default)]
    pub consent: bool,
}

/// A referral waiting at this centre for the person's enrolment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WaitingReferral {
    pub id: i64,
    pub issued_on: NaiveDate,
    pub arrived_on: Option<NaiveDate>,
}

/// The centre marks a referral arrived (the person came, and agreed that the police be told).
/// A code that cannot be one, or waits for nothing (never issued, used), is refused at `code`;
/// without the agreement, at `consent`; nothing is written then.
pub async fn arrived(app: &App, me: &Actor, req: &ArrivedRequest) -> Result<WaitingReferral> {
    me.require(Permission::ReferralReceive)?;
    let code = referral::normalise(&req.code, "code")?;
    if !req.consent {
        return Err(Problem::new(Code::ReferralConsentRequired)
            .field("consent")
            .into());
    }
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let r = work
        .referral_arrived(&app.vault.referral_index(&code), me.site_id, app.today())
        .await?;
    work.commit().await?;
    Ok(WaitingReferral {
        id: r.id,
        issued_on: r.issued_on,
        arrived_on: r.arrived_on,
    })
}

/// The referrals that arrived at the actor's centre and wait for enrolment.
pub async fn waiting(app: &App, me: &Actor) -> Result<Vec<WaitingReferral>> {
    me.require(Permission::ReferralReceive)?;
    Ok(app
        .store
        .referrals_waiting_at(me.site_id)
        .await?
        .into_iter()
        .map(|r| WaitingReferral {
            id: r.id,
            issued_on: r.issued_on,
            arrived_on: r.arrived_on,
        })
        .collect())
}

/// Enrolment of a waiting referral: the client by UIC (of this centre).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub uic: String,
}

/// The person of referral `id` is enrolled as the client with this UIC: the police will read
/// "enrolled", and the client's ledger holds both words.
pub async fn enrolled(app: &App, me: &Actor, id: i64, req: &EnrolRequest) -> Result<ReferralView> {
    me.require(Permission::ReferralReceive)?;
    let c = crate::dispensing::client_here(app, me, &req.uic, "uic").await?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let r = work
        .referral_enrolled(id, (c.id, me.site_id), app.today())
        .await?;
    work.commit().await?;
    Ok(ReferralView::from(&r))
}

/// The receipt a centre prints for a client who came of their own accord: by article 62 of the
/// Anti-Drug Law, a person who uses drugs and goes to a qualified medical institution for
/// treatment is not punished for the use. It names the client (the identity read is audited),
/// the UIC, the centre and the day treatment began, and nothing clinical.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Receipt {
    pub uic: String,
    /// The name on record (none if the record has no name).
    pub name: Option<String>,
    pub centre: String,
    pub enrolled_on: NaiveDate,
    pub issued_on: NaiveDate,
    /// Who printed it.
    pub issued_by: String,
}

/// The self-registration receipt of client `client_id` (staff who may read identities).
pub async fn receipt(app: &App, me: &Actor, client_id: i64) -> Result<Receipt> {
    me.require(Permission::IdentityRead)?;
    let c = crate::record::open(app, me, client_id, "self-registration receipt").await?;
    let identity = app
        .store
        .read_identity(
            &me.audit(),
            c.id,
            "self-registration receipt",
            &app.vault,
            app.now(),
        )
        .await?;
    let centre = app.store.site(c.site_id).await?;
    Ok(Receipt {
        uic: c.uic,
        name: identity.name,
        centre: centre.name,
        enrolled_on: c.enrolled_on,
        issued_on: app.today(),
        issued_by: me.username.clone(),
    })
}
