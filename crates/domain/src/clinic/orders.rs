//! Dose orders: what a prescriber orders, the ceiling rule, titration steps, split doses, and
//! the dose an order gives on a given day.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::problem::{Code, Problem};
use crate::DomainError;

/// The shortest clinical reason accepted for a dose above the ceiling (characters, so that a
/// Chinese reason such as "量杯误差，已复核" passes).
pub const MIN_REASON_CHARS: usize = 4;

/// Highest daily dose anyone may order, whatever the reason (a typing-error guard).
pub const ABSURD_MG: u32 = 1_000;

/// Why an order was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Start of treatment or re-induction after a long gap: resets the missed-dose count.
    Induction,
    /// A change of dose during treatment.
    Titration,
    /// A stable dose.
    Maintenance,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Induction => "induction",
            OrderKind::Titration => "titration",
            OrderKind::Maintenance => "maintenance",
        }
    }

    pub fn parse(s: &str) -> Result<OrderKind, DomainError> {
        match s {
            "induction" => Ok(OrderKind::Induction),
            "titration" => Ok(OrderKind::Titration),
            "maintenance" => Ok(OrderKind::Maintenance),
            _ => Err(Problem::new(Code::OrderKindUnknown)
                .field("kind")
                .arg("kind", s)
                .into()),
        }
    }
}

/// A later step of an order: from `from` on, give `mg` a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub from: NaiveDate,
    pub mg: u32,
}

/// A dose order as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseOrder {
    pub kind: OrderKind,
    pub start: NaiveDate,
    /// Daily dose from `start`.
    pub mg: u32,
    /// Titration steps after `start`, in date order.
    pub steps: Vec<Step>,
    /// Portions the daily dose is split into (1 or 2).
    pub split: u8,
    pub reason: String,
}

/// Settings of the ordering rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderPolicy {
    /// Above this daily dose a written reason is required (default 150 mg).
    pub ceiling_mg: u32,
    /// A split dose's next portion is given no sooner than this many hours after the one
    /// before (default 6): both halves at once would be the whole dose at once.
    pub split_interval_hours: u32,
    /// How much a client may start on and how fast the dose may rise.
    pub induction: super::induction::InductionLimits,
}

impl Default for OrderPolicy {
    fn default() -> Self {
        OrderPolicy {
            ceiling_mg: 150,
            split_interval_hours: 6,
            induction: super::induction::InductionLimits::default(),
        }
    }
}

impl OrderPolicy {
    /// When the next portion of a split dose may be given, the last one given at `last`.
    pub fn next_portion_at(
        &self,
        last: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        last + chrono::Duration::hours(i64::from(self.split_interval_hours))
    }
}

fn check_mg(field: &str, mg: u32, reason: &str, policy: OrderPolicy) -> Result<(), DomainError> {
    if mg == 0 || mg > ABSURD_MG {
        return Err(Problem::new(Code::OrderMgOutOfRange)
            .field(field)
            .arg("mg", mg)
            .arg("max", ABSURD_MG)
            .into());
    }
    if mg > policy.ceiling_mg && reason.trim().chars().count() < MIN_REASON_CHARS {
        return Err(Problem::new(Code::OrderReasonRequired)
            .field("reason")
            .arg("mg", mg)
            .arg("ceiling", policy.ceiling_mg)
            .arg("min", MIN_REASON_CHARS)
            .into());
    }
    Ok(())
}

impl DoseOrder {
    /// Checks an order before it is saved; `today` bounds how far back it may start.
    pub fn validate(&self, policy: OrderPolicy, today: NaiveDate) -> Result<(), DomainError> {
        check_mg("mg", self.mg, &self.reason, policy)?;
        if !(1..=2).contains(&self.split) {
            return Err(Problem::new(Code::OrderSplitInvalid).field("split").into());
        }
        if self.start < today - chrono::Duration::days(7) {
            return Err(Problem::new(Code::OrderStartTooEarly)
                .field("start")
                .arg("days", 7)
                .into());
        }
        let mut prev = self.start;
        for (i, s) in self.steps.iter().enumerate() {
            if s.from <= prev {
                return Err(Problem::new(Code::OrderStepsOutOfOrder)
                    .field(format!("steps[{i}].from"))
                    .into());
            }
            check_mg(&format!("steps[{i}].mg"), s.mg, &self.reason, policy)?;
            prev = s.from;
        }
        Ok(())
    }

    /// The daily dose this order gives on `day` (None before it starts).
    pub fn mg_on(&self, day: NaiveDate) -> Option<u32> {
        if day < self.start {
            return None;
        }
        Some(
            self.steps
                .iter()
                .rev()
                .find(|s| s.from <= day)
                .map_or(self.mg, |s| s.mg),
        )
    }

    /// The size of portion `portion` (0-based) of a daily dose of `mg`: the first portion takes
    /// the odd milligram.
    pub fn portion_mg(&self, mg: u32, portion: u8) -> u32 {
        if self.split <= 1 {
            return mg;
        }
        let half = mg / 2;
        if portion == 0 {
            mg - half
        } else {
            half
        }
    }
}

/// The order in force on `day`: the latest-starting one that has started.
pub fn order_on(orders: &[DoseOrder], day: NaiveDate) -> Option<&DoseOrder> {
    orders
        .iter()
        .filter(|o| o.start <= day)
        .max_by_key(|o| o.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    fn order(mg: u32) -> DoseOrder {
        DoseOrder {
            kind: OrderKind::Induction,
            start: d(1),
            mg,
            steps: vec![Step { from: d(4), mg: 40 }, Step { from: d(8), mg: 60 }],
            split: 1,
            reason: String::new(),
        }
    }

    #[test]
    fn titration_steps_apply_from_their_dates() {
        let o = order(30);
        assert_eq!(o.mg_on(d(1)), Some(30));
        assert_eq!(o.mg_on(d(3)), Some(30));
        assert_eq!(o.mg_on(d(4)), Some(40));
        assert_eq!(o.mg_on(d(20)), Some(60));
        assert_eq!(
            NaiveDate::from_ymd_opt(2026, 10, 31).and_then(|x| o.mg_on(x)),
            None
        );
    }

    #[test]
    fn doses_above_the_ceiling_need_a_reason() {
        let p = OrderPolicy::default();
        let mut o = order(160);
        o.steps.clear();
        let refusal = |o: &DoseOrder| match o.validate(p, d(1)) {
            Err(DomainError::Refused(p)) => p,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let e = refusal(&o);
        assert_eq!(e.code, Code::OrderReasonRequired);
        assert_eq!(e.field.as_deref(), Some("reason"));
        assert_eq!((e.get("mg"), e.get("ceiling")), (Some("160"), Some("150")));
        // Three characters are not a reason; an ordinary Chinese one of 4+ is.
        o.reason = "加量吧".into();
        assert_eq!(refusal(&o).code, Code::OrderReasonRequired);
        o.reason = "量杯误差，已复核".into();
        assert!(o.validate(p, d(1)).is_ok());
        o.reason = "rapid metaboliser, trough level low".into();
        assert!(o.validate(p, d(1)).is_ok());
        o.mg = 0;
        let e = refusal(&o);
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::OrderMgOutOfRange, Some("mg"))
        );
        o.mg = 5000;
        assert_eq!(refusal(&o).code, Code::OrderMgOutOfRange);
    }

    #[test]
    fn bad_steps_are_named() {
        let mut o = order(30);
        o.steps[1].from = d(2);
        match o.validate(OrderPolicy::default(), d(1)) {
            Err(DomainError::Refused(p)) => {
                assert_eq!(p.code, Code::OrderStepsOutOfOrder);
                assert_eq!(p.field.as_deref(), Some("steps[1].from"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_next_portion_waits_for_the_interval() {
        let p = OrderPolicy::default();
        let t = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
        assert_eq!(p.next_portion_at(t) - t, chrono::Duration::hours(6));
    }

    #[test]
    fn split_portions_add_up() {
        let mut o = order(75);
        o.split = 2;
        assert_eq!(o.portion_mg(75, 0) + o.portion_mg(75, 1), 75);
        assert_eq!(o.portion_mg(75, 0), 38);
    }

    #[test]
    fn latest_started_order_is_in_force() {
        let a = order(30);
        let mut b = order(80);
        b.start = d(10);
        let orders = vec![a.clone(), b.clone()];
        assert_eq!(order_on(&orders, d(9)), Some(&a));
        assert_eq!(order_on(&orders, d(10)), Some(&b));
    }
}
