//! Dose orders: a prescriber writes one (induction, titration with steps, maintenance), checked
//! against the order rules of `anxin_domain::clinic::orders` (the ceiling needs a reason) and the
//! induction and titration limits of `anxin_domain::clinic::induction`: an order beyond them
//! needs a reason and then waits, not in force, until a second prescriber confirms it.

use anxin_domain::clinic::induction::Excess;
use anxin_domain::clinic::orders::{DoseOrder, OrderKind, Step, MIN_REASON_CHARS};
use anxin_domain::Permission;
use anxin_storage::clinic::{Confirmation, StoredOrder};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{parse_date, Actor, App, Result};

/// A dose order as typed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// induction, titration or maintenance
    pub kind: String,
    /// YYYY-MM-DD
    pub start: String,
    pub mg: u32,
    #[serde(default)]
    pub steps: Vec<StepRequest>,
    /// 1 (default) or 2 portions a day
    #[serde(default)]
    pub split: Option<u8>,
    #[serde(default)]
    pub reason: String,
}

/// A titration step.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    pub from: String,
    pub mg: u32,
}

/// A step as stored.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepView {
    pub from: NaiveDate,
    pub mg: u32,
}

/// An order as the record shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderView {
    pub id: i64,
    pub client_id: i64,
    pub kind: String,
    pub start: NaiveDate,
    pub mg: u32,
    pub steps: Vec<StepView>,
    pub split: u8,
    pub reason: String,
    pub prescriber_id: i64,
    /// RFC 3339.
    pub written_at: String,
    /// The induction and titration limits the order goes beyond (empty: within them).
    pub beyond_limits: Vec<ExcessView>,
    /// `not_needed` (within the limits), `awaiting` (beyond them: not in force until a second
    /// prescriber confirms) or `confirmed`.
    pub confirmation: ConfirmationState,
    /// The second prescriber who confirmed it.
    pub confirmed_by: Option<i64>,
}

/// Where an order stands with its second prescriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationState {
    NotNeeded,
    Awaiting,
    Confirmed,
}

/// A limit an order goes beyond: its refusal code, field and values, as a refusal would say it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExcessView {
    /// e.g. `order.first_dose_above_limit`.
    pub code: String,
    pub field: Option<String>,
    /// The values its message names (`mg`, `max`, `from`, `to`, `on`, `days`, `min`).
    pub args: std::collections::BTreeMap<String, String>,
}

impl From<&Excess> for ExcessView {
    fn from(e: &Excess) -> Self {
        let p = e.problem();
        ExcessView {
            code: p.code.as_str().to_owned(),
            field: p.field,
            args: p.args.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }
}

impl From<&StoredOrder> for OrderView {
    fn from(o: &StoredOrder) -> Self {
        OrderView {
            id: o.id,
            client_id: o.client_id,
            kind: o.order.kind.as_str().to_owned(),
            start: o.order.start,
            mg: o.order.mg,
            steps: o
                .order
                .steps
                .iter()
                .map(|s| StepView {
                    from: s.from,
                    mg: s.mg,
                })
                .collect(),
            split: o.order.split,
            reason: o.order.reason.clone(),
            prescriber_id: o.prescriber_id,
            written_at: o.created_at.to_rfc3339(),
            beyond_limits: o.excesses.iter().map(ExcessView::from).collect(),
            confirmation: match o.confirmation {
                Confirmation::NotNeeded => ConfirmationState::NotNeeded,
                Confirmation::Awaiting => ConfirmationState::Awaiting,
                Confirmation::Confirmed { .. } => ConfirmationState::Confirmed,
            },
            confirmed_by: match o.confirmation {
                Confirmation::Confirmed { by, .. } => Some(by),
                _ => None,
            },
        }
    }
}

/// Turns a request into an order, checked against the rules.
pub fn validate(app: &App, req: &OrderRequest) -> Result<DoseOrder> {
    let mut steps = vec![];
    for (i, s) in req.steps.iter().enumerate() {
        steps.push(Step {
            from: parse_date(&format!("steps[{i}].from"), &s.from)?,
            mg: s.mg,
        });
    }
    let order = DoseOrder {
        kind: OrderKind::parse(req.kind.trim())?,
        start: parse_date("start", &req.start)?,
        mg: req.mg,
        steps,
        split: req.split.unwrap_or(1),
        reason: req.reason.trim().to_owned(),
    };
    order.validate(app.settings.clinic.orders, app.today())?;
    Ok(order)
}

/// Writes an order for a client (prescribers only). An order beyond the induction and titration
/// limits is refused at the field of its first excess unless it gives a reason; with one it is
/// kept, not in force, until a second prescriber confirms it ([`confirm_order`]).
pub async fn write_order(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &OrderRequest,
) -> Result<OrderView> {
    me.require(Permission::Prescribe)?;
    let order = validate(app, req)?;
    let earlier = app
        .store
        .orders_in_force_for(&me.audit(), client_id)
        .await?;
    let excesses = app
        .settings
        .clinic
        .orders
        .induction
        .excesses(&order, &earlier);
    if let Some(first) = excesses.first() {
        if order.reason.chars().count() < MIN_REASON_CHARS {
            return Err(anxin_domain::DomainError::from(
                first.problem().arg("chars", MIN_REASON_CHARS),
            )
            .into());
        }
    }
    let stored = app
        .store
        .add_order_beyond(&me.audit(), client_id, &order, &excesses, app.now())
        .await?;
    Ok(OrderView::from(&stored))
}

/// A second prescriber confirms an order beyond the limits; from then on it is in force.
/// Refused for the prescriber who wrote it (`order.confirm_own`) and for an order that awaits
/// nothing (`order.not_awaiting`).
pub async fn confirm_order(app: &App, me: &Actor, order_id: i64) -> Result<OrderView> {
    me.require(Permission::Prescribe)?;
    let stored = app
        .store
        .confirm_order(&me.audit(), order_id, app.now())
        .await?;
    Ok(OrderView::from(&stored))
}

/// An order waiting for a second prescriber, with its client's UIC.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AwaitingOrder {
    pub uic: String,
    pub order: OrderView,
}

/// The orders of the actor's centre that wait for a second prescriber, oldest first (the
/// doctor's worklist).
pub async fn awaiting(app: &App, me: &Actor) -> Result<Vec<AwaitingOrder>> {
    me.require(Permission::Prescribe)?;
    Ok(app
        .store
        .orders_awaiting(me.site_id)
        .await?
        .into_iter()
        .map(|(uic, o)| AwaitingOrder {
            uic,
            order: OrderView::from(&o),
        })
        .collect())
}

/// A prescriber's review after missed doses.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub note: String,
}

/// Records a prescriber's review of client `client_id` today (what the review found).
pub async fn review(app: &App, me: &Actor, client_id: i64, note: &str) -> Result<()> {
    me.require(Permission::Prescribe)?;
    if note.trim().is_empty() {
        return Err(
            anxin_domain::DomainError::invalid("note", "write what the review found").into(),
        );
    }
    let note = crate::identity::bounded_to("note", note, crate::identity::MAX_TEXT_CHARS)?;
    app.store
        .add_review(&me.audit(), client_id, app.today(), &note, app.now())
        .await?;
    Ok(())
}
