//! The missed-dose safety rule. After several days without methadone a client's tolerance falls
//! and the usual dose can kill. Defaults follow the Australian national guidelines for
//! medication-assisted treatment of opioid dependence:
//!
//! | consecutive days missed | what happens |
//! |---|---|
//! | 1–2 | the normal dose |
//! | 3 | withheld until a prescriber reviews; then half the dose |
//! | 4 | withheld until a prescriber reviews; then the lower of 40 mg or half the dose |
//! | 5 or more | withheld: re-induction (a new induction order) |

use chrono::NaiveDate;

/// The thresholds of the rule (configurable per deployment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissedDosePolicy {
    /// Missed days from which the dose is withheld until a review; the review gives half.
    pub review_from: u32,
    /// Missed days from which the restart after review is capped at `restart_cap_mg`.
    pub capped_restart_from: u32,
    /// Missed days from which only a new induction order restarts dosing.
    pub reinduction_from: u32,
    /// The cap of a restart dose (mg).
    pub restart_cap_mg: u32,
}

impl Default for MissedDosePolicy {
    fn default() -> Self {
        MissedDosePolicy {
            review_from: 3,
            capped_restart_from: 4,
            reinduction_from: 5,
            restart_cap_mg: 40,
        }
    }
}

/// Which part of the rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No gap worth a change: the ordered dose.
    Normal,
    /// Gap reviewed by a prescriber: half the ordered dose.
    HalfAfterReview,
    /// Longer gap reviewed: the lower of the cap and half the ordered dose.
    CappedAfterReview,
    /// Gap needs a prescriber's review first.
    AwaitingReview,
    /// Gap needs a new induction order.
    Reinduction,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::Normal,
        Rule::HalfAfterReview,
        Rule::CappedAfterReview,
        Rule::AwaitingReview,
        Rule::Reinduction,
    ];

    /// The rule of a stored dose's rule code; `None` for codes that are not missed-dose rules
    /// (take-home compartments: `take_home`, `take_home_pending`, …).
    pub fn parse(code: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether a dose given under this rule was lowered because of missed days.
    pub fn after_missed_days(self) -> bool {
        matches!(self, Rule::HalfAfterReview | Rule::CappedAfterReview)
    }

    /// A stable code, also the suffix of the UI message `missed-rule-…`.
    pub fn code(self) -> &'static str {
        match self {
            Rule::Normal => "normal",
            Rule::HalfAfterReview => "half_after_review",
            Rule::CappedAfterReview => "capped_after_review",
            Rule::AwaitingReview => "awaiting_review",
            Rule::Reinduction => "reinduction",
        }
    }
}

/// What the dispensing window may do today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Give { mg: u32, rule: Rule, missed: u32 },
    Withhold { rule: Rule, missed: u32 },
}

impl Decision {
    /// The rule that decided.
    pub fn rule(&self) -> Rule {
        match self {
            Decision::Give { rule, .. } | Decision::Withhold { rule, .. } => *rule,
        }
    }

    /// Consecutive days missed before today.
    pub fn missed(&self) -> u32 {
        match self {
            Decision::Give { missed, .. } | Decision::Withhold { missed, .. } => *missed,
        }
    }

    /// One sentence for staff, naming the rule.
    pub fn explain(&self) -> String {
        match *self {
            Decision::Give { mg, rule: Rule::Normal, .. } => format!("give {mg} mg"),
            Decision::Give { mg, rule, missed } => format!(
                "{missed} days missed, reviewed by a prescriber: give {mg} mg ({})",
                rule.code()
            ),
            Decision::Withhold { rule: Rule::Reinduction, missed } => format!(
                "{missed} consecutive days missed: withheld; a prescriber must write a new induction order"
            ),
            Decision::Withhold { missed, .. } => format!(
                "{missed} consecutive days missed: withheld until a prescriber reviews the client"
            ),
        }
    }
}

/// Consecutive days missed before `today`: the days after the last dose (or before the start
/// of the latest induction order, which resets the count) up to yesterday, less the days the
/// centre was closed (`closed`, any order): a closure day is never a missed day, since nobody
/// was expected at the window (its dose went home in a box or was arranged elsewhere).
pub fn missed_days(
    last_dose: Option<NaiveDate>,
    induction_start: Option<NaiveDate>,
    today: NaiveDate,
    closed: &[NaiveDate],
) -> u32 {
    let reset = induction_start.and_then(|d| d.pred_opt());
    let anchor = match (last_dose, reset) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => return 0,
    };
    let gap = (today - anchor).num_days() - 1;
    let closed_in_gap = closed
        .iter()
        .filter(|d| **d > anchor && **d < today)
        .collect::<std::collections::BTreeSet<_>>()
        .len() as i64;
    u32::try_from((gap - closed_in_gap).max(0)).unwrap_or(u32::MAX)
}

impl MissedDosePolicy {
    /// Decides today's dose from the ordered dose, the days missed, and whether a prescriber
    /// reviewed the client since the last dose.
    pub fn decide(&self, ordered_mg: u32, missed: u32, reviewed_since_gap: bool) -> Decision {
        if missed >= self.reinduction_from {
            return Decision::Withhold {
                rule: Rule::Reinduction,
                missed,
            };
        }
        if missed >= self.review_from {
            if !reviewed_since_gap {
                return Decision::Withhold {
                    rule: Rule::AwaitingReview,
                    missed,
                };
            }
            let half = ordered_mg / 2;
            return if missed >= self.capped_restart_from {
                Decision::Give {
                    mg: half.min(self.restart_cap_mg),
                    rule: Rule::CappedAfterReview,
                    missed,
                }
            } else {
                Decision::Give {
                    mg: half,
                    rule: Rule::HalfAfterReview,
                    missed,
                }
            };
        }
        Decision::Give {
            mg: ordered_mg,
            rule: Rule::Normal,
            missed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    #[test]
    fn counting_missed_days() {
        assert_eq!(missed_days(Some(d(21)), None, d(22), &[]), 0);
        assert_eq!(missed_days(Some(d(19)), None, d(22), &[]), 2);
        assert_eq!(missed_days(Some(d(18)), None, d(22), &[]), 3);
        // Dosed today already: no gap.
        assert_eq!(missed_days(Some(d(22)), None, d(22), &[]), 0);
        // A new client whose induction starts today has missed nothing.
        assert_eq!(missed_days(None, Some(d(22)), d(22), &[]), 0);
        // An induction order after a long gap resets the count.
        assert_eq!(missed_days(Some(d(1)), Some(d(21)), d(22), &[]), 1);
        assert_eq!(missed_days(None, None, d(22), &[]), 0);
    }

    #[test]
    fn closure_days_are_never_missed_days() {
        // Dosed on the 1st, closed the 2nd to the 4th, back on the 5th: nothing missed.
        let festival = [d(2), d(3), d(4)];
        assert_eq!(missed_days(Some(d(1)), None, d(5), &festival), 0);
        // The same gap without the closure withholds the dose.
        assert_eq!(missed_days(Some(d(1)), None, d(5), &[]), 3);
        // A closure inside a longer gap takes only its own days off.
        assert_eq!(missed_days(Some(d(1)), None, d(8), &festival), 3);
        // At the edges: the day of the last dose and today are not in the gap.
        assert_eq!(missed_days(Some(d(1)), None, d(5), &[d(1), d(5)]), 3);
        assert_eq!(missed_days(Some(d(1)), None, d(5), &[d(2)]), 2);
        assert_eq!(missed_days(Some(d(1)), None, d(5), &[d(4)]), 2);
        // Several closures, unsorted and repeated, and closures outside the gap.
        assert_eq!(
            missed_days(
                Some(d(10)),
                None,
                d(20),
                &[d(18), d(12), d(12), d(25), d(3)]
            ),
            7
        );
        // After an induction reset only the closures since the reset count.
        assert_eq!(
            missed_days(Some(d(1)), Some(d(18)), d(20), &[d(5), d(18)]),
            1
        );
        assert_eq!(missed_days(None, None, d(20), &[d(19)]), 0);
    }

    proptest::proptest! {
        /// Closing the centre never raises the count, takes off exactly the closed days in the
        /// gap, and a gap that is all closures is no gap.
        #[test]
        fn closures_only_lower_the_count(
            last in 1u32..28, gap in 0i64..20, closed in proptest::collection::vec(0i64..60, 0..10)
        ) {
            let last = d(last);
            let today = last + chrono::Duration::days(gap + 1);
            let closed: Vec<NaiveDate> = closed.iter().map(|o| d(1) + chrono::Duration::days(*o)).collect();
            let plain = missed_days(Some(last), None, today, &[]);
            let with = missed_days(Some(last), None, today, &closed);
            let inside = closed.iter().filter(|c| **c > last && **c < today)
                .collect::<std::collections::BTreeSet<_>>().len() as u32;
            proptest::prop_assert!(with <= plain);
            proptest::prop_assert_eq!(with, plain - inside);
            let all: Vec<NaiveDate> = (1..=gap).map(|k| last + chrono::Duration::days(k)).collect();
            proptest::prop_assert_eq!(missed_days(Some(last), None, today, &all), 0);
        }
    }

    #[test]
    fn one_or_two_missed_days_give_the_normal_dose() {
        let p = MissedDosePolicy::default();
        for missed in [0, 1, 2] {
            assert_eq!(
                p.decide(80, missed, false),
                Decision::Give {
                    mg: 80,
                    rule: Rule::Normal,
                    missed
                }
            );
        }
    }

    #[test]
    fn three_missed_days_wait_for_review_then_give_half() {
        let p = MissedDosePolicy::default();
        assert_eq!(
            p.decide(80, 3, false),
            Decision::Withhold {
                rule: Rule::AwaitingReview,
                missed: 3
            }
        );
        assert_eq!(
            p.decide(80, 3, true),
            Decision::Give {
                mg: 40,
                rule: Rule::HalfAfterReview,
                missed: 3
            }
        );
    }

    #[test]
    fn four_missed_days_restart_at_the_lower_of_40_or_half() {
        let p = MissedDosePolicy::default();
        assert_eq!(p.decide(120, 4, false).rule(), Rule::AwaitingReview);
        assert_eq!(
            p.decide(120, 4, true),
            Decision::Give {
                mg: 40,
                rule: Rule::CappedAfterReview,
                missed: 4
            }
        );
        assert_eq!(
            p.decide(60, 4, true),
            Decision::Give {
                mg: 30,
                rule: Rule::CappedAfterReview,
                missed: 4
            }
        );
    }

    #[test]
    fn five_or_more_missed_days_need_reinduction_even_after_review() {
        let p = MissedDosePolicy::default();
        for missed in [5, 6, 30] {
            assert_eq!(
                p.decide(80, missed, true),
                Decision::Withhold {
                    rule: Rule::Reinduction,
                    missed
                }
            );
        }
        assert!(p
            .decide(80, 5, true)
            .explain()
            .contains("new induction order"));
    }

    #[test]
    fn only_missed_dose_rules_parse_as_such() {
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.code()), Some(r));
        }
        for take_home in [
            "take_home",
            "take_home_pending",
            "take_home_unopened",
            "take_home_lost",
        ] {
            assert_eq!(
                Rule::parse(take_home),
                None,
                "{take_home} is no missed-dose rule"
            );
        }
        assert!(Rule::HalfAfterReview.after_missed_days());
        assert!(!Rule::Normal.after_missed_days());
    }
}
