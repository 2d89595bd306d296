//! Induction and titration limits: how much methadone a client may start on and how fast the
//! dose may rise. Methadone deaths cluster in the first two weeks of treatment, when the dose
//! accumulates (a half-life of a day or more) faster than tolerance can be judged.
//!
//! The defaults follow the WHO guidelines for the psychosocially assisted pharmacological
//! treatment of opioid dependence (2009, annex 12: a first daily dose of generally not more than
//! 20 mg and never more than 30 mg, even with high tolerance) and China's national MMT clinical
//! manual (2005: initial dose 15–30 mg; afterwards the dose moves by 5–10 mg at a time, over
//! days); `docs/clinical-limits.md` cites them and says how each default was chosen:
//!
//! | limit | default |
//! |---|---|
//! | first portion of a first day | 30 mg |
//! | whole first day | 40 mg |
//! | one rise | 10 mg |
//! | days between rises | 3 |
//!
//! An order beyond a limit is not refused outright: with a written reason it waits for a second
//! prescriber's confirmation and takes effect only then (`anxin_app::orders`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::orders::{order_on, DoseOrder};
use crate::problem::{Code, Problem};

/// The limits (configurable per deployment: `clinic.induction_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InductionLimits {
    /// Largest first portion on the first day of treatment.
    pub first_dose_max_mg: u32,
    /// Largest total on the first day of treatment.
    pub first_day_max_mg: u32,
    /// Largest rise of the daily dose at one time.
    pub step_max_mg: u32,
    /// Fewest days between two rises (a start counts as a rise from nothing).
    pub step_min_days: u32,
}

impl Default for InductionLimits {
    fn default() -> Self {
        InductionLimits {
            first_dose_max_mg: 30,
            first_day_max_mg: 40,
            step_max_mg: 10,
            step_min_days: 3,
        }
    }
}

/// One limit an order goes beyond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "limit", rename_all = "snake_case")]
pub enum Excess {
    /// The first portion of the first day is `mg`, above `max`.
    FirstDose { mg: u32, max: u32 },
    /// The first day's total is `mg`, above `max`.
    FirstDay { mg: u32, max: u32 },
    /// The daily dose rises from `from` to `to` mg on `on`, more than `max` at once.
    Increase {
        field: String,
        on: NaiveDate,
        from: u32,
        to: u32,
        max: u32,
    },
    /// The daily dose rises on `on`, only `days` after the rise before, sooner than `min`.
    TooSoon {
        field: String,
        on: NaiveDate,
        days: u32,
        min: u32,
    },
}

impl Excess {
    /// The refusal this excess is when the order carries no reason.
    pub fn problem(&self) -> Problem {
        match self {
            Excess::FirstDose { mg, max } => Problem::new(Code::OrderFirstDoseAboveLimit)
                .field("mg")
                .arg("mg", mg)
                .arg("max", max),
            Excess::FirstDay { mg, max } => Problem::new(Code::OrderFirstDayAboveLimit)
                .field("mg")
                .arg("mg", mg)
                .arg("max", max),
            Excess::Increase {
                field,
                on,
                from,
                to,
                max,
            } => Problem::new(Code::OrderIncreaseAboveLimit)
                .field(field.clone())
                .arg("on", on)
                .arg("from", from)
                .arg("to", to)
                .arg("max", max),
            Excess::TooSoon {
                field,
                on,
                days,
                min,
            } => Problem::new(Code::OrderIncreaseTooSoon)
                .field(field.clone())
                .arg("on", on)
                .arg("days", days)
                .arg("min", min),
        }
    }
}

/// The daily dose the orders give on `day` (None: no order in force).
pub fn dose_on(orders: &[DoseOrder], day: NaiveDate) -> Option<u32> {
    order_on(orders, day).and_then(|o| o.mg_on(day))
}

impl InductionLimits {
    /// The limits `order` goes beyond, given the client's earlier orders in force (`earlier`).
    ///
    /// An induction starts afresh: its first day is checked against the first-day limits, and
    /// so is any order for a client with no dose in force the day before it starts (a
    /// "maintenance" order for a new client is a first dose all the same). Every rise after
    /// that — from the dose in force to the order's start, and from step to step — may be at
    /// most `step_max_mg` and come at least `step_min_days` after the rise before it (a start
    /// counts as a rise). Decreases are never limited.
    pub fn excesses(&self, order: &DoseOrder, earlier: &[DoseOrder]) -> Vec<Excess> {
        use super::orders::OrderKind;
        let mut out = vec![];
        let before = match order.kind {
            OrderKind::Induction => None,
            _ => order.start.pred_opt().and_then(|d| dose_on(earlier, d)),
        };
        let mut last_rise = match before {
            None => {
                let first = order.portion_mg(order.mg, 0);
                if first > self.first_dose_max_mg {
                    out.push(Excess::FirstDose {
                        mg: first,
                        max: self.first_dose_max_mg,
                    });
                }
                if order.mg > self.first_day_max_mg {
                    out.push(Excess::FirstDay {
                        mg: order.mg,
                        max: self.first_day_max_mg,
                    });
                }
                Some(order.start)
            }
            Some(mg) => {
                // The last rise before the order: the latest day in the window whose dose is
                // above the day before's (a start from nothing counts).
                let rise = (1..=i64::from(self.step_min_days))
                    .map(|back| order.start - chrono::Duration::days(back))
                    .find(|day| {
                        let prev = day.pred_opt().and_then(|p| dose_on(earlier, p));
                        dose_on(earlier, *day).unwrap_or(0) > prev.unwrap_or(0)
                    });
                self.check_rise(&mut out, ("mg", "start"), mg, (order.start, order.mg), rise)
            }
        };
        let mut current = order.mg;
        for (i, s) in order.steps.iter().enumerate() {
            let fields = (format!("steps[{i}].mg"), format!("steps[{i}].from"));
            last_rise = self.check_rise(
                &mut out,
                (&fields.0, &fields.1),
                current,
                (s.from, s.mg),
                last_rise,
            );
            current = s.mg;
        }
        out
    }

    /// Checks a change from `from` mg to `to` = (day, mg); answers the day of the last rise
    /// after it.
    fn check_rise(
        &self,
        out: &mut Vec<Excess>,
        (mg_field, day_field): (&str, &str),
        from: u32,
        (on, mg): (NaiveDate, u32),
        last_rise: Option<NaiveDate>,
    ) -> Option<NaiveDate> {
        if mg <= from {
            return last_rise;
        }
        if mg - from > self.step_max_mg {
            out.push(Excess::Increase {
                field: mg_field.to_owned(),
                on,
                from,
                to: mg,
                max: self.step_max_mg,
            });
        }
        if let Some(last) = last_rise {
            let days = u32::try_from((on - last).num_days()).unwrap_or(0);
            if days < self.step_min_days {
                out.push(Excess::TooSoon {
                    field: day_field.to_owned(),
                    on,
                    days,
                    min: self.step_min_days,
                });
            }
        }
        Some(on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clinic::orders::{OrderKind, Step};

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    fn order(kind: OrderKind, start: u32, mg: u32, steps: &[(u32, u32)]) -> DoseOrder {
        DoseOrder {
            kind,
            start: d(start),
            mg,
            steps: steps
                .iter()
                .map(|&(from, mg)| Step { from: d(from), mg })
                .collect(),
            split: 1,
            reason: String::new(),
        }
    }

    fn limits() -> InductionLimits {
        InductionLimits::default()
    }

    #[test]
    fn a_first_day_of_100_mg_goes_beyond_both_first_day_limits() {
        let o = order(OrderKind::Induction, 1, 100, &[]);
        assert_eq!(
            limits().excesses(&o, &[]),
            vec![
                Excess::FirstDose { mg: 100, max: 30 },
                Excess::FirstDay { mg: 100, max: 40 }
            ]
        );
        // 30 mg is within; 40 mg in two portions of 20 is within too; 40 at once is not.
        assert!(limits()
            .excesses(&order(OrderKind::Induction, 1, 30, &[]), &[])
            .is_empty());
        let mut split = order(OrderKind::Induction, 1, 40, &[]);
        split.split = 2;
        assert!(limits().excesses(&split, &[]).is_empty());
        assert_eq!(
            limits().excesses(&order(OrderKind::Induction, 1, 40, &[]), &[]),
            vec![Excess::FirstDose { mg: 40, max: 30 }]
        );
    }

    #[test]
    fn a_maintenance_order_for_a_client_on_no_dose_is_a_first_day() {
        let o = order(OrderKind::Maintenance, 5, 80, &[]);
        assert_eq!(limits().excesses(&o, &[]).len(), 2);
        // On 80 mg since the 1st, the same order changes nothing.
        let earlier = [order(OrderKind::Maintenance, 1, 80, &[])];
        assert!(limits().excesses(&o, &earlier).is_empty());
    }

    #[test]
    fn titration_steps_rise_by_at_most_10_mg_every_3_days() {
        // 30 → 40 on day 4 → 50 on day 7 → 60 on day 10: within.
        let good = order(OrderKind::Induction, 1, 30, &[(4, 40), (7, 50), (10, 60)]);
        assert!(limits().excesses(&good, &[]).is_empty());
        // 30 → 50 on day 3 (20 mg at once, two days after the start).
        let bad = order(OrderKind::Induction, 1, 30, &[(3, 50), (8, 45), (9, 55)]);
        assert_eq!(
            limits().excesses(&bad, &[]),
            vec![
                Excess::Increase {
                    field: "steps[0].mg".into(),
                    on: d(3),
                    from: 30,
                    to: 50,
                    max: 10
                },
                Excess::TooSoon {
                    field: "steps[0].from".into(),
                    on: d(3),
                    days: 2,
                    min: 3
                },
            ],
            "a decrease on the 8th is free; the rise on the 9th is 6 days after the last rise"
        );
    }

    #[test]
    fn a_titration_is_measured_from_the_dose_in_force() {
        let earlier = [order(OrderKind::Induction, 1, 30, &[(4, 40)])];
        // On 40 mg since the 4th; 50 mg from the 10th is one step.
        let ok = order(OrderKind::Titration, 10, 50, &[]);
        assert!(limits().excesses(&ok, &earlier).is_empty());
        // 80 mg from the 10th is 40 mg at once.
        let big = order(OrderKind::Titration, 10, 80, &[]);
        assert_eq!(
            limits().excesses(&big, &earlier),
            vec![Excess::Increase {
                field: "mg".into(),
                on: d(10),
                from: 40,
                to: 80,
                max: 10
            }]
        );
        // 45 mg from the 5th: one day after the rise on the 4th.
        let soon = order(OrderKind::Titration, 5, 45, &[]);
        assert_eq!(
            limits().excesses(&soon, &earlier),
            vec![Excess::TooSoon {
                field: "start".into(),
                on: d(5),
                days: 1,
                min: 3
            }]
        );
        // A decrease is always allowed.
        let down = order(OrderKind::Titration, 5, 20, &[]);
        assert!(limits().excesses(&down, &earlier).is_empty());
    }

    #[test]
    fn every_excess_is_a_refusal_at_its_field() {
        let bad = order(OrderKind::Induction, 1, 100, &[(2, 120)]);
        let fields: Vec<_> = limits()
            .excesses(&bad, &[])
            .iter()
            .map(|e| {
                let p = e.problem();
                (p.code, p.field)
            })
            .collect();
        assert_eq!(
            fields,
            vec![
                (Code::OrderFirstDoseAboveLimit, Some("mg".into())),
                (Code::OrderFirstDayAboveLimit, Some("mg".into())),
                (Code::OrderIncreaseAboveLimit, Some("steps[0].mg".into())),
                (Code::OrderIncreaseTooSoon, Some("steps[0].from".into())),
            ]
        );
    }
}
