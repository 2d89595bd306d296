//! Dose orders: a prescriber writes one (induction, titration with steps, maintenance), checked
//! against the order rules of `anxin_domain::clinic::orders` (the ceiling needs a reason).

use anxin_domain::clinic::orders::{DoseOrder, OrderKind, Step};
use anxin_domain::Permission;
use anxin_storage::clinic::StoredOrder;
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
    pub kind: String,
    pub start: NaiveDate,
    pub mg: u32,
    pub steps: Vec<StepView>,
    pub split: u8,
    pub reason: String,
    pub prescriber_id: i64,
    /// RFC 3339.
    pub written_at: String,
}

impl From<&StoredOrder> for OrderView {
    fn from(o: &StoredOrder) -> Self {
        OrderView {
            id: o.id,
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

/// Writes an order for a client (prescribers only).
pub async fn write_order(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &OrderRequest,
) -> Result<OrderView> {
    me.require(Permission::Prescribe)?;
    let order = validate(app, req)?;
    let stored = app
        .store
        .add_order(&me.audit(), client_id, &order, app.now())
        .await?;
    Ok(OrderView::from(&stored))
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
