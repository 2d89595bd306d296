//! The doctor's worklist: what waits for a prescriber today, each kind of work with its count
//! and the page where the doctor acts on it. Every count comes from the use case that owns the
//! rule (the day list, the police answers and approvals, the overdue boxes, the orders waiting for a second
//! prescriber), so the worklist
//! and those pages always agree. A new kind of work is one [`WorkKind`] variant and its count
//! in [`worklist`].

use anxin_domain::Permission;
use schemars::JsonSchema;
use serde::Serialize;

use crate::dispensing::{day_list, DayRow, DayStatus};
use crate::{boxes, orders, takehome, Actor, App, Result};

/// Days back (today included) a police answer stays on the worklist.
pub const POLICE_ANSWER_DAYS: i64 = 7;
/// Days ahead an approval's end is announced.
pub const APPROVAL_NOTICE_DAYS: i64 = 14;

/// One kind of work waiting for a prescriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// Clients on today's day list withheld until a prescriber acts (a review after missed
    /// days, or a new induction order).
    ReviewsDue,
    /// Police answers (approved or denied) received in the last 7 days (`POLICE_ANSWER_DAYS`).
    PoliceAnswers,
    /// Police approvals in force that end within 14 days (`APPROVAL_NOTICE_DAYS`).
    ApprovalsExpiring,
    /// Take-home boxes out past their return day.
    OverdueBoxes,
    /// Clients whose urine test (scheduled or random) is due today and not yet done.
    UrineDue,
    /// Dose orders beyond the induction limits waiting for a second prescriber's confirmation.
    OrdersAwaiting,
}

impl WorkKind {
    /// Every kind, in the order the worklist shows them.
    pub const ALL: [WorkKind; 6] = [
        WorkKind::OrdersAwaiting,
        WorkKind::ReviewsDue,
        WorkKind::PoliceAnswers,
        WorkKind::ApprovalsExpiring,
        WorkKind::OverdueBoxes,
        WorkKind::UrineDue,
    ];

    /// The serde name, also the suffix of the page message `worklist-…`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::ReviewsDue => "reviews_due",
            WorkKind::PoliceAnswers => "police_answers",
            WorkKind::ApprovalsExpiring => "approvals_expiring",
            WorkKind::OverdueBoxes => "overdue_boxes",
            WorkKind::UrineDue => "urine_due",
            WorkKind::OrdersAwaiting => "orders_awaiting",
        }
    }

    /// The page where the doctor acts on this kind of work.
    pub fn href(self) -> &'static str {
        match self {
            WorkKind::ReviewsDue => "/dispensing?show=withheld",
            WorkKind::PoliceAnswers => "/clients?show=police_answers",
            WorkKind::ApprovalsExpiring => "/clients?show=approvals_expiring",
            WorkKind::OverdueBoxes => "/#overdue-boxes",
            WorkKind::UrineDue => "/dispensing?show=urine",
            WorkKind::OrdersAwaiting => "/clients?show=orders_awaiting",
        }
    }
}

/// One line of the worklist.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WorkItem {
    pub kind: WorkKind,
    /// How many (zero too: the check ran).
    pub count: u64,
    /// The page where the doctor acts on it.
    pub href: String,
}

/// What waits for a prescriber at the actor's centre: every kind, in the order of `WorkKind::ALL`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Worklist {
    pub items: Vec<WorkItem>,
}

impl Worklist {
    /// The count of one kind (zero when absent).
    pub fn count(&self, kind: WorkKind) -> u64 {
        self.items
            .iter()
            .find(|i| i.kind == kind)
            .map_or(0, |i| i.count)
    }
}

/// Whether a day-list row waits for a prescriber: withheld by the missed-dose rule (awaiting a
/// review, or a new induction order).
pub fn awaits_prescriber(r: &DayRow) -> bool {
    r.status == DayStatus::Withheld
}

/// The worklist of a prescriber's centre today.
pub async fn worklist(app: &App, me: &Actor) -> Result<Worklist> {
    me.require(Permission::Prescribe)?;
    let day = day_list(app, me).await?;
    let mut items = Vec::with_capacity(WorkKind::ALL.len());
    for kind in WorkKind::ALL {
        let count = match kind {
            WorkKind::ReviewsDue => day.iter().filter(|r| awaits_prescriber(r)).count(),
            WorkKind::UrineDue => day.iter().filter(|r| r.urine_due.is_some()).count(),
            WorkKind::PoliceAnswers => takehome::recent_answers(app, me, POLICE_ANSWER_DAYS)
                .await?
                .len(),
            WorkKind::ApprovalsExpiring => {
                takehome::approvals_ending(app, me, APPROVAL_NOTICE_DAYS)
                    .await?
                    .len()
            }
            WorkKind::OverdueBoxes => boxes::overdue(app, me).await?.len(),
            WorkKind::OrdersAwaiting => orders::awaiting(app, me).await?.len(),
        };
        items.push(WorkItem {
            kind,
            count: u64::try_from(count).unwrap_or(u64::MAX),
            href: kind.href().to_owned(),
        });
    }
    Ok(Worklist { items })
}
