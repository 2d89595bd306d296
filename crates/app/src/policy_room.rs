//! The joint policy room: the centre's manager, a CDC analyst or a police officer proposes a
//! take-home policy version for their site (tiers, approval validity, rationale, a start date
//! not in the past), previews it on the centre's own clients (clients per tier now and under
//! the proposal, extra box-days and methadone leaving the clinic per week; suppressed for the
//! CDC and the police, with the UICs that change tier for staff with clinical access), and the
//! CDC, the police and then the manager sign it. Only a version signed by all three decides,
//! from its date on (`takehome::policy_of`); a signed version is never edited, only superseded.
//! Every version keeps its diff against the one before.

use std::collections::BTreeMap;

use anxin_domain::clinic::orders::order_on;
use anxin_domain::policy_room::{self as rules, Party};
use anxin_domain::release::{CellKeys, Count as Keyed};
use anxin_domain::takehome::{decide, Policy, Tier};
use anxin_domain::{Code, Permission, Problem};
use anxin_storage::audit::AuditEvent;
use anxin_storage::policy_room::{NewProposal, Proposal};
use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::takehome::{adopted_policy_of, facts_of, policy_of, PolicyView};
use crate::{parse_date, Actor, App, Error, Result};

/// One tier as a proposal gives it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierInput {
    /// 2 to 6.
    pub days: u8,
    pub min_days_in_treatment: u32,
    /// Attendance over the last 30 days, percent.
    pub min_attendance_30: f64,
    /// Attendance over the last 90 days, percent.
    pub min_attendance_90: f64,
    /// The most recent N urine tests must all be negative.
    pub last_urine_negative: u32,
}

/// A proposal (new, or an edit of one nobody signed yet).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalRequest {
    /// The version's name, unique at the centre.
    pub version: String,
    /// Days a police approval stays valid (1 to 366).
    pub approval_valid_days: u32,
    /// The tiers, shorter periods first.
    pub tiers: Vec<TierInput>,
    /// Why: free text.
    pub rationale: String,
    /// `YYYY-MM-DD`, today or later: the first day it decides once signed by all three.
    pub effective_from: String,
}

impl ProposalRequest {
    /// The policy the request gives.
    pub fn policy(&self) -> Policy {
        Policy {
            version: self.version.trim().to_owned(),
            approval_valid_days: self.approval_valid_days,
            tiers: self
                .tiers
                .iter()
                .map(|t| Tier {
                    days: t.days,
                    min_days_in_treatment: t.min_days_in_treatment,
                    min_attendance_30: t.min_attendance_30,
                    min_attendance_90: t.min_attendance_90,
                    last_urine_negative: t.last_urine_negative,
                })
                .collect(),
        }
    }
}

/// A signature.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The signer's comment (may be empty).
    #[serde(default)]
    pub comment: String,
}

/// A proposal just written.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProposalCreated {
    pub id: i64,
}

/// One party's signature.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SignatureView {
    /// cdc, police or centre
    #[schemars(with = "String")]
    pub party: Party,
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
    pub comment: String,
}

/// One line of a version's diff against the one before.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChangeView {
    /// The tier's days; none for the approval's validity.
    pub days: Option<u8>,
    /// A threshold's name, `approval_valid_days`, or `tier` (added or removed).
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    /// Nobody signed yet: it may still be edited.
    Open,
    /// Signed by one or two parties.
    Signing,
    /// Signed by all three; its date has not come.
    Signed,
    /// Signed by all three and the policy deciding today.
    InForce,
    /// Signed by all three, its date came, and a later one decides instead.
    Superseded,
}

/// A version in the policy room.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProposalView {
    pub id: i64,
    pub policy: PolicyView,
    pub rationale: String,
    pub effective_from: NaiveDate,
    pub proposed_by: String,
    /// The proposer's role.
    pub proposer_role: String,
    pub proposed_at: DateTime<Utc>,
    pub state: ProposalState,
    pub signatures: Vec<SignatureView>,
    /// The version it is compared with: the proposal before it, or for the first one the
    /// policy the centre adopted (or the default).
    pub previous_version: String,
    pub diff: Vec<ChangeView>,
}

/// A count shown to the caller: `None` (and `suppressed`) when between 1 and the suppression
/// threshold less one, for the CDC and the police.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
pub struct Count {
    pub value: Option<i64>,
    pub suppressed: bool,
}

/// Clients of one tier (0: not eligible), under the policy in force and under the proposal.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TierCount {
    pub days: u8,
    pub now: Count,
    pub proposed: Count,
}

/// A client whose tier the proposal changes (staff with clinical access only).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TierChange {
    pub uic: String,
    pub now_days: u8,
    pub proposed_days: u8,
}

/// The proposal on the centre's own clients in treatment today.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Preview {
    /// The version deciding today.
    pub in_force_version: String,
    pub clients: Count,
    /// Not eligible (0) and each tier's days.
    pub tiers: Vec<TierCount>,
    /// Clients whose tier changes.
    pub changing: Count,
    /// Sum over clients of the proposed tier's days less today's (box-days a week, a simple
    /// model: one take-home period a week).
    pub extra_box_days_per_week: Count,
    /// The same days times each client's ordered daily dose, in mg.
    pub extra_mg_per_week: Count,
    /// The UICs whose tier changes: for staff with clinical access only, else none.
    pub changes: Option<Vec<TierChange>>,
    /// The last twelve months of those it would admit, beside those admitted already.
    pub back_test: BackTest,
}

/// One group of the back-test over the last twelve months: how many clients, their attendance
/// and urine-negative rate, their boxes returned with unopened compartments and lost boxes.
/// Everything is hidden (`None`, counts suppressed) when the group is suppressed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BackTestGroup {
    pub clients: Count,
    /// Days dosed (take-home days once confirmed) over days expected, percent.
    pub attendance_pct: Option<f64>,
    /// Negative urine tests over tests, percent (none without tests).
    pub urine_negative_pct: Option<f64>,
    pub boxes_returned_unopened: Count,
    pub boxes_lost: Count,
}

/// The back-test: the clients the proposal would admit and the policy in force does not,
/// beside those admitted already, over `from` to `to`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BackTest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub newly_admitted: BackTestGroup,
    pub already_admitted: BackTestGroup,
}

/// A client's last twelve months, summed into a group (the counts keyed by client for the
/// cell-key release to outside readers).
#[derive(Debug, Clone, Copy, Default)]
struct History {
    clients: Keyed,
    unopened: Keyed,
    lost: Keyed,
    attended: i64,
    expected: i64,
    negative: i64,
    tests: i64,
    /// One client's own (before they are keyed into a group).
    unopened_boxes: i64,
    lost_boxes: i64,
}

impl History {
    fn add(&mut self, client: u64, o: History) {
        self.clients.add(client);
        self.unopened.add_n(client, o.unopened_boxes.max(0) as u64);
        self.lost.add_n(client, o.lost_boxes.max(0) as u64);
        self.attended += o.attended;
        self.expected += o.expected;
        self.negative += o.negative;
        self.tests += o.tests;
    }
}

/// Client `c`'s last twelve months (`from` to `to`, both included): days expected at the
/// window (from their first order in force, closures left out) and days dosed, urine tests and
/// negatives, box loads started then and returned with an unopened compartment, and lost.
async fn history_of(
    app: &App,
    c: &anxin_storage::Client,
    (from, to): (NaiveDate, NaiveDate),
    closed: &std::collections::BTreeSet<NaiveDate>,
) -> Result<History> {
    let doses = app.store.doses_between(c.id, from, to).await?;
    let attended: std::collections::BTreeSet<NaiveDate> = doses
        .iter()
        .filter(|d| {
            !matches!(
                d.rule.as_str(),
                "take_home_pending" | "take_home_unopened" | "take_home_lost"
            )
        })
        .map(|d| d.day)
        .collect();
    let unopened: std::collections::BTreeSet<NaiveDate> = doses
        .iter()
        .filter(|d| d.rule == "take_home_unopened")
        .map(|d| d.day)
        .collect();
    let orders = app.store.orders(c.id).await?;
    let first = orders
        .iter()
        .filter(|o| o.in_force())
        .map(|o| o.order.start)
        .min()
        .unwrap_or(c.enrolled_on)
        .max(c.enrolled_on)
        .max(from);
    let mut expected = 0i64;
    let mut day = first;
    while day <= to {
        if !closed.contains(&day) {
            expected += 1;
        }
        day += chrono::Duration::days(1);
    }
    let tests: Vec<bool> = app
        .store
        .urine_tests(c.id)
        .await?
        .iter()
        .filter(|t| t.collected_on >= from && t.collected_on <= to)
        .map(|t| t.outcome.negative())
        .collect();
    let (mut unopened_boxes, mut lost_boxes) = (0, 0);
    for l in app.store.loads_of_client(c.id).await? {
        if l.start_day < from || l.start_day > to {
            continue;
        }
        match l.state {
            anxin_domain::boxes::LoadState::Lost => lost_boxes += 1,
            anxin_domain::boxes::LoadState::Returned
                if (0..l.days)
                    .any(|k| unopened.contains(&(l.start_day + chrono::Duration::days(k)))) =>
            {
                unopened_boxes += 1
            }
            _ => {}
        }
    }
    Ok(History {
        attended: attended.iter().filter(|d| **d >= first).count() as i64,
        expected,
        negative: tests.iter().filter(|n| **n).count() as i64,
        tests: tests.len() as i64,
        unopened_boxes,
        lost_boxes,
        ..History::default()
    })
}

/// A proposal's page: the version, its preview, and what the caller may do.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProposalPage {
    pub proposal: ProposalView,
    pub preview: Preview,
    /// The party the caller would sign for now, if they may sign.
    #[schemars(with = "Option<String>")]
    pub may_sign: Option<Party>,
    pub may_edit: bool,
}

fn party_signed(p: &Proposal) -> Vec<Party> {
    p.parties()
}

fn parse_policy(p: &Proposal) -> Result<Policy> {
    serde_json::from_str(&p.body)
        .map_err(|e| Error::Internal(format!("policy proposal {} does not parse: {e}", p.id)))
}

/// Every proposal of the site as views, oldest first.
async fn views(app: &App, site_id: i64) -> Result<Vec<ProposalView>> {
    let proposals = app.store.proposals(site_id).await?;
    let today = app.today();
    let in_force = proposals
        .iter()
        .filter(|p| rules::fully_signed(&party_signed(p)) && p.effective_from <= today)
        .max_by_key(|p| (p.effective_from, p.id))
        .map(|p| p.id);
    let mut before = adopted_policy_of(app, site_id).await?;
    let mut out = Vec::with_capacity(proposals.len());
    for p in &proposals {
        let policy = parse_policy(p)?;
        let signed = party_signed(p);
        let state = if !rules::fully_signed(&signed) {
            if signed.is_empty() {
                ProposalState::Open
            } else {
                ProposalState::Signing
            }
        } else if Some(p.id) == in_force {
            ProposalState::InForce
        } else if p.effective_from > today {
            ProposalState::Signed
        } else {
            ProposalState::Superseded
        };
        out.push(ProposalView {
            id: p.id,
            policy: PolicyView::from(&policy),
            rationale: p.rationale.clone(),
            effective_from: p.effective_from,
            proposed_by: p.proposed_by.clone(),
            proposer_role: p.proposer_role.clone(),
            proposed_at: p.proposed_at,
            state,
            signatures: p
                .signatures
                .iter()
                .map(|s| SignatureView {
                    party: s.party,
                    signed_by: s.signed_by.clone(),
                    signed_at: s.signed_at,
                    comment: s.comment.clone(),
                })
                .collect(),
            previous_version: before.version.clone(),
            diff: rules::diff(&before, &policy)
                .into_iter()
                .map(|c| ChangeView {
                    days: c.days,
                    field: c.field.to_owned(),
                    from: c.from,
                    to: c.to,
                })
                .collect(),
        });
        before = policy;
    }
    Ok(out)
}

/// The proposals of the caller's site, newest first.
pub async fn proposals(app: &App, me: &Actor) -> Result<Vec<ProposalView>> {
    me.require(Permission::PolicyPropose)?;
    let mut v = views(app, me.site_id).await?;
    v.reverse();
    Ok(v)
}

/// Checks a request: the policy's rules (refusals at `tiers[i].…`), the rationale, the start,
/// and a version name free at the site.
async fn checked(
    app: &App,
    me: &Actor,
    req: &ProposalRequest,
    except: Option<i64>,
) -> Result<(Policy, NaiveDate)> {
    let policy = req.policy();
    policy.validate()?;
    if req.rationale.trim().is_empty() {
        return Err(Problem::new(Code::FieldRequired).field("rationale").into());
    }
    let from = parse_date("effective_from", &req.effective_from)?;
    rules::check_effective_from(from, app.today())?;
    if app
        .store
        .policy_version_taken(me.site_id, &policy.version, except)
        .await?
    {
        return Err(Problem::new(Code::PolicyVersionTaken)
            .field("version")
            .arg("version", &policy.version)
            .into());
    }
    Ok((policy, from))
}

fn body_of(policy: &Policy) -> Result<String> {
    serde_json::to_string(policy)
        .map_err(|e| Error::Internal(format!("policy does not serialise: {e}")))
}

/// Writes a new proposal at the caller's site.
pub async fn propose(app: &App, me: &Actor, req: &ProposalRequest) -> Result<ProposalCreated> {
    me.require(Permission::PolicyPropose)?;
    let (policy, from) = checked(app, me, req, None).await?;
    let body = body_of(&policy)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let id = work
        .create_proposal(&NewProposal {
            site_id: me.site_id,
            version: &policy.version,
            body: &body,
            rationale: req.rationale.trim(),
            effective_from: from,
        })
        .await?;
    work.commit().await?;
    Ok(ProposalCreated { id })
}

/// Edits proposal `id`: refused `policy.proposal_signed` once anybody signed it.
pub async fn edit(app: &App, me: &Actor, id: i64, req: &ProposalRequest) -> Result<()> {
    me.require(Permission::PolicyPropose)?;
    let current = {
        let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
        let p = work.proposal_for_write(me.site_id, id).await?;
        work.commit().await?;
        p
    };
    rules::check_editable(&current.parties())?;
    let (policy, from) = checked(app, me, req, Some(id)).await?;
    let body = body_of(&policy)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    // Read again in the unit of work: a signature given meanwhile closes it.
    let p = work.proposal_for_write(me.site_id, id).await?;
    rules::check_editable(&p.parties())?;
    work.edit_proposal(
        id,
        &NewProposal {
            site_id: me.site_id,
            version: &policy.version,
            body: &body,
            rationale: req.rationale.trim(),
            effective_from: from,
        },
    )
    .await?;
    work.commit().await?;
    Ok(())
}

/// Signs proposal `id` for the caller's party (the CDC, the police, then the manager).
pub async fn sign(app: &App, me: &Actor, id: i64, req: &SignRequest) -> Result<ProposalView> {
    me.require(Permission::PolicySign)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let p = work.proposal_for_write(me.site_id, id).await?;
    let party = rules::check_signature(me.role, &p.parties())?;
    work.sign_proposal((id, me.site_id), party, req.comment.trim())
        .await?;
    work.commit().await?;
    views(app, me.site_id)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| Error::Internal(format!("policy proposal {id} vanished")))
}

/// Proposal `id` with its preview on the centre's clients in treatment today.
pub async fn page(app: &App, me: &Actor, id: i64) -> Result<ProposalPage> {
    me.require(Permission::PolicyPropose)?;
    let proposal = views(app, me.site_id)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| anxin_domain::DomainError::NotFound(format!("policy proposal {id}")))?;
    let stored = app
        .store
        .proposals(me.site_id)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| anxin_domain::DomainError::NotFound(format!("policy proposal {id}")))?;
    let policy = parse_policy(&stored)?;
    let preview = preview(app, me, &policy).await?;
    let signed = stored.parties();
    let may_sign = if me.role.has(Permission::PolicySign) {
        rules::check_signature(me.role, &signed).ok()
    } else {
        None
    };
    Ok(ProposalPage {
        may_edit: signed.is_empty(),
        proposal,
        preview,
        may_sign,
    })
}

/// The preview of `proposed` against the policy in force, over the site's clients in
/// treatment today; decided by the one eligibility rule (`takehome::facts_of`, `decide`).
/// One audit entry (`takehome.policy.preview`) names how many records were looked at.
pub async fn preview(app: &App, me: &Actor, proposed: &Policy) -> Result<Preview> {
    let today = app.today();
    let in_force = policy_of(app, me.site_id).await?;
    let staff = me.role.has(Permission::ClinicalRead) && !me.role.is_outside();
    let mut now_by: BTreeMap<u8, Keyed> = BTreeMap::new();
    let mut new_by: BTreeMap<u8, Keyed> = BTreeMap::new();
    let (mut extra_days, mut extra_mg) = (0i64, 0i64);
    let (mut clients, mut changing) = (Keyed::default(), Keyed::default());
    let mut changes = Vec::new();
    let window = (
        today - chrono::Duration::days(365),
        today - chrono::Duration::days(1),
    );
    let closed: std::collections::BTreeSet<NaiveDate> = app
        .store
        .closures_from(me.site_id, window.0)
        .await?
        .into_iter()
        .map(|x| x.day)
        .collect();
    let (mut newly, mut already) = (History::default(), History::default());
    for facts in app.store.day_facts(me.site_id, today).await? {
        if facts.guest || facts.client.site_id != me.site_id {
            continue;
        }
        let c = &facts.client;
        let (f, _) = facts_of(app, c).await?;
        let now = decide(&in_force, &f).days;
        let new = decide(proposed, &f).days;
        let record = c.id as u64;
        clients.add(record);
        if now > 0 {
            already.add(record, history_of(app, c, window, &closed).await?);
        } else if new > 0 {
            newly.add(record, history_of(app, c, window, &closed).await?);
        }
        now_by.entry(now).or_default().add(record);
        new_by.entry(new).or_default().add(record);
        if now != new {
            changing.add(record);
            let diff = i64::from(new) - i64::from(now);
            let mg = order_on(&facts.orders, today)
                .and_then(|o| o.mg_on(today))
                .map_or(0, i64::from);
            extra_days += diff;
            extra_mg += diff * mg;
            changes.push(TierChange {
                uic: c.uic.clone(),
                now_days: now,
                proposed_days: new,
            });
        }
    }
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    work.audit(
        AuditEvent::new("takehome.policy.preview", "site", me.site_id)
            .site(me.site_id)
            .reason(format!("{} clients, aggregate", clients.n)),
    )
    .await?;
    work.commit().await?;
    // Staff see exact counts; the CDC and the police see them through the cell keys of the
    // indicators (`anxin_domain::release`), so that two proposals' previews, or a preview and
    // the indicators, cannot be subtracted to find a handful of clients.
    let threshold = app.settings.suppression_threshold;
    let keys = (!staff).then(|| CellKeys::new(app.vault.cell_key_secret()));
    let count = |c: Keyed| {
        let shown = match &keys {
            Some(k) => k.publish_count(c, threshold),
            None => Some(c.n),
        };
        Count {
            value: shown.and_then(|v| i64::try_from(v).ok()),
            suppressed: shown.is_none(),
        }
    };
    let changing = count(changing);
    // The sums of a small group say what a handful of clients hold: hidden with it.
    let sum = |v: i64| {
        if changing.suppressed {
            Count {
                value: None,
                suppressed: true,
            }
        } else {
            Count {
                value: Some(v),
                suppressed: false,
            }
        }
    };
    let group = |h: &History| {
        let n = count(h.clients);
        let hidden = n.suppressed;
        let pct = |a: i64, b: i64| {
            (!hidden && b > 0).then(|| (a as f64 * 1000.0 / b as f64).round() / 10.0)
        };
        let boxes = |v: Keyed| {
            if hidden {
                Count {
                    value: None,
                    suppressed: true,
                }
            } else {
                count(v)
            }
        };
        BackTestGroup {
            clients: n,
            attendance_pct: pct(h.attended, h.expected),
            urine_negative_pct: pct(h.negative, h.tests),
            boxes_returned_unopened: boxes(h.unopened),
            boxes_lost: boxes(h.lost),
        }
    };
    let back_test = BackTest {
        from: window.0,
        to: window.1,
        newly_admitted: group(&newly),
        already_admitted: group(&already),
    };
    let mut days: Vec<u8> = vec![0];
    days.extend(2..=6);
    Ok(Preview {
        in_force_version: in_force.version.clone(),
        clients: count(clients),
        tiers: days
            .into_iter()
            .map(|d| TierCount {
                days: d,
                now: count(now_by.get(&d).copied().unwrap_or_default()),
                proposed: count(new_by.get(&d).copied().unwrap_or_default()),
            })
            .collect(),
        changing,
        extra_box_days_per_week: sum(extra_days),
        extra_mg_per_week: sum(extra_mg),
        changes: staff.then_some(changes),
        back_test,
    })
}
