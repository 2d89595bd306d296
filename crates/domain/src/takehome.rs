//! The take-home eligibility policy: a versioned, negotiated set of tiers (agreed locally by CDC
//! and PSB) that turns a client's record into 0 or 2–6 take-home days, with every criterion's
//! value, threshold and pass/fail so the decision can be explained to all three parties.
//! Also the rule for police approvals (expiry, revocation with the consent).

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::clinic::adherence::Ratio;
use crate::problem::{Code, Problem};

/// One tier: meeting every threshold earns `days` take-home days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub days: u8,
    pub min_days_in_treatment: u32,
    /// Attendance over the last 30 days, percent.
    pub min_attendance_30: f64,
    /// Attendance over the last 90 days, percent.
    pub min_attendance_90: f64,
    /// The most recent N urine tests must all be negative for non-prescribed drugs.
    pub last_urine_negative: u32,
}

/// A versioned eligibility policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: String,
    /// Days a police approval stays valid.
    #[serde(default = "default_approval_days")]
    pub approval_valid_days: u32,
    pub tiers: Vec<Tier>,
}

fn default_approval_days() -> u32 {
    90
}

impl Default for Policy {
    /// A placeholder for the centre, the CDC and the police to negotiate (seed 004 describes such
    /// a negotiation but publishes no numbers): 2 to 6 days depending on time in treatment,
    /// attendance and consecutive negative urine tests, stricter for longer periods. The US rule
    /// for take-home doses (42 CFR 8.12(i)) is a reference point for the kind of criteria.
    fn default() -> Self {
        let tier = |days, treat, a30, a90, urine| Tier {
            days,
            min_days_in_treatment: treat,
            min_attendance_30: a30,
            min_attendance_90: a90,
            last_urine_negative: urine,
        };
        Policy {
            version: "default-2026.1".into(),
            approval_valid_days: 90,
            tiers: vec![
                tier(2, 90, 90.0, 85.0, 2),
                tier(3, 180, 93.0, 90.0, 3),
                tier(4, 270, 95.0, 92.0, 4),
                tier(5, 365, 97.0, 95.0, 5),
                tier(6, 540, 98.0, 97.0, 6),
            ],
        }
    }
}

impl Policy {
    /// Checks a version name, then each tier: 2..=6 days in increasing order, attendance
    /// thresholds as percentages, at most ten years in treatment and twelve urine tests, and no
    /// threshold of a longer take-home period below the one of the shorter period before it
    /// (a longer period never asks less). Then the approval's validity, 1 to 366 days.
    /// Refusals name the field as the API spells it (`tiers[1].min_attendance_30`).
    pub fn validate(&self) -> Result<(), Problem> {
        if self.version.trim().is_empty() {
            return Err(Problem::new(Code::FieldRequired).field("version"));
        }
        if self.tiers.is_empty() {
            return Err(Problem::new(Code::PolicyNoTiers).field("tiers"));
        }
        for (i, t) in self.tiers.iter().enumerate() {
            let at =
                |code: Code, name: &str| Problem::new(code).field(format!("tiers[{i}].{name}"));
            if !(2..=6).contains(&t.days) {
                return Err(at(Code::PolicyDaysOutOfRange, "days"));
            }
            if i > 0 && t.days <= self.tiers[i - 1].days {
                return Err(at(Code::PolicyTiersOutOfOrder, "days"));
            }
            if t.min_days_in_treatment > MAX_TREATMENT_DAYS {
                return Err(
                    at(Code::PolicyTreatmentDaysOutOfRange, "min_days_in_treatment")
                        .arg("max", MAX_TREATMENT_DAYS),
                );
            }
            for (name, v) in [
                ("min_attendance_30", t.min_attendance_30),
                ("min_attendance_90", t.min_attendance_90),
            ] {
                if !(0.0..=100.0).contains(&v) {
                    return Err(at(Code::PolicyPercentOutOfRange, name));
                }
            }
            if t.last_urine_negative > MAX_URINE_TESTS {
                return Err(at(Code::PolicyUrineCountOutOfRange, "last_urine_negative")
                    .arg("max", MAX_URINE_TESTS));
            }
            if let Some(prev) = i.checked_sub(1).map(|j| &self.tiers[j]) {
                let looser = [
                    (
                        "min_days_in_treatment",
                        t.min_days_in_treatment < prev.min_days_in_treatment,
                    ),
                    (
                        "min_attendance_30",
                        t.min_attendance_30 < prev.min_attendance_30,
                    ),
                    (
                        "min_attendance_90",
                        t.min_attendance_90 < prev.min_attendance_90,
                    ),
                    (
                        "last_urine_negative",
                        t.last_urine_negative < prev.last_urine_negative,
                    ),
                ];
                if let Some((name, _)) = looser.iter().find(|(_, l)| *l) {
                    return Err(at(Code::PolicyTierLooser, name)
                        .arg("days", t.days)
                        .arg("shorter", prev.days));
                }
            }
        }
        if self.approval_valid_days == 0 || self.approval_valid_days > 366 {
            return Err(
                Problem::new(Code::PolicyApprovalDaysOutOfRange).field("approval_valid_days")
            );
        }
        Ok(())
    }
}

/// The most days in treatment a tier may ask for (ten years).
pub const MAX_TREATMENT_DAYS: u32 = 3650;
/// The most consecutive negative urine tests a tier may ask for.
pub const MAX_URINE_TESTS: u32 = 12;

/// What the eligibility rules look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub days_in_treatment: u32,
    pub attendance_30: Ratio,
    pub attendance_90: Ratio,
    /// Urine outcomes, newest first: `true` = negative for non-prescribed drugs.
    pub urine_negative_newest_first: Vec<bool>,
    /// The missed-dose rule holds today's dose or reduced it in the last 14 days.
    pub missed_rule_in_force: bool,
    pub agreement_signed: bool,
    pub police_consent_active: bool,
    pub in_treatment: bool,
}

/// One line of the explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    /// Stable id, also the suffix of the UI message `criterion-…`.
    pub id: &'static str,
    pub value: String,
    pub threshold: String,
    pub passed: bool,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Eligibility {
    /// 0 when not eligible, else 2–6.
    pub days: u8,
    pub policy_version: String,
    /// The conditions every tier needs, then the thresholds of the tier granted (or of the
    /// first tier, when none is).
    pub criteria: Vec<Criterion>,
    /// What the next tier would need, for the client and staff to see the way up.
    pub next_tier: Option<(u8, Vec<Criterion>)>,
}

fn pct(r: Ratio) -> f64 {
    r.percent().unwrap_or(0.0)
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn tier_criteria(t: &Tier, f: &Facts) -> Vec<Criterion> {
    let negatives = f
        .urine_negative_newest_first
        .iter()
        .take_while(|n| **n)
        .count() as u32;
    vec![
        Criterion {
            id: "days_in_treatment",
            value: f.days_in_treatment.to_string(),
            threshold: format!("≥ {}", t.min_days_in_treatment),
            passed: f.days_in_treatment >= t.min_days_in_treatment,
        },
        Criterion {
            id: "attendance_30",
            value: format!(
                "{:.0}% ({}/{})",
                pct(f.attendance_30),
                f.attendance_30.attended,
                f.attendance_30.expected
            ),
            threshold: format!("≥ {:.0}%", t.min_attendance_30),
            passed: f.attendance_30.expected > 0 && pct(f.attendance_30) >= t.min_attendance_30,
        },
        Criterion {
            id: "attendance_90",
            value: format!(
                "{:.0}% ({}/{})",
                pct(f.attendance_90),
                f.attendance_90.attended,
                f.attendance_90.expected
            ),
            threshold: format!("≥ {:.0}%", t.min_attendance_90),
            passed: f.attendance_90.expected > 0 && pct(f.attendance_90) >= t.min_attendance_90,
        },
        Criterion {
            id: "urine_negative",
            value: format!("{negatives}"),
            threshold: format!("last {} negative", t.last_urine_negative),
            passed: negatives >= t.last_urine_negative,
        },
    ]
}

/// Decides the take-home days for `f` under `policy`.
pub fn decide(policy: &Policy, f: &Facts) -> Eligibility {
    let gates = vec![
        Criterion {
            id: "in_treatment",
            value: yes(f.in_treatment),
            threshold: "yes".into(),
            passed: f.in_treatment,
        },
        Criterion {
            id: "agreement_signed",
            value: yes(f.agreement_signed),
            threshold: "yes".into(),
            passed: f.agreement_signed,
        },
        Criterion {
            id: "police_consent",
            value: yes(f.police_consent_active),
            threshold: "yes".into(),
            passed: f.police_consent_active,
        },
        Criterion {
            id: "no_missed_dose_rule",
            value: yes(!f.missed_rule_in_force),
            threshold: "yes".into(),
            passed: !f.missed_rule_in_force,
        },
    ];
    let gates_pass = gates.iter().all(|c| c.passed);
    let granted = policy
        .tiers
        .iter()
        .rev()
        .find(|t| gates_pass && tier_criteria(t, f).iter().all(|c| c.passed));
    let shown = granted.or_else(|| policy.tiers.first());
    let mut criteria = gates;
    if let Some(t) = shown {
        criteria.extend(tier_criteria(t, f));
    }
    let next = match granted {
        Some(g) => policy.tiers.iter().find(|t| t.days > g.days),
        None => None,
    };
    Eligibility {
        days: granted.map_or(0, |t| t.days),
        policy_version: policy.version.clone(),
        criteria,
        next_tier: next.map(|t| (t.days, tier_criteria(t, f))),
    }
}

/// The last day a police approval answered on `approved_on` is valid.
pub fn approval_until(policy: &Policy, approved_on: NaiveDate) -> NaiveDate {
    approved_on + Duration::days(i64::from(policy.approval_valid_days))
}

/// Whether a police approval answered on `approved_on` still holds on `today`: within its
/// validity and with the client's consent to the check still in force.
pub fn approval_holds(
    policy: &Policy,
    approved_on: NaiveDate,
    consent_active: bool,
    today: NaiveDate,
) -> bool {
    consent_active && today <= approval_until(policy, approved_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stable() -> Facts {
        Facts {
            days_in_treatment: 600,
            attendance_30: Ratio {
                attended: 30,
                expected: 30,
            },
            attendance_90: Ratio {
                attended: 89,
                expected: 90,
            },
            urine_negative_newest_first: vec![true; 8],
            missed_rule_in_force: false,
            agreement_signed: true,
            police_consent_active: true,
            in_treatment: true,
        }
    }

    #[test]
    fn a_long_stable_client_gets_six_days() {
        let e = decide(&Policy::default(), &stable());
        assert_eq!(e.days, 6);
        assert_eq!(e.policy_version, "default-2026.1");
        assert!(e.criteria.iter().all(|c| c.passed));
        assert!(e.next_tier.is_none());
    }

    #[test]
    fn a_positive_urine_test_lowers_the_tier_and_says_why() {
        let mut f = stable();
        f.urine_negative_newest_first = vec![true, true, true, false, true, true];
        let e = decide(&Policy::default(), &f);
        assert_eq!(e.days, 3);
        let (next_days, next) = e.next_tier.unwrap();
        assert_eq!(next_days, 4);
        let urine = next.iter().find(|c| c.id == "urine_negative").unwrap();
        assert!(!urine.passed);
        assert_eq!(urine.value, "3");
        f.urine_negative_newest_first[0] = false;
        let e = decide(&Policy::default(), &f);
        assert_eq!(e.days, 0);
        assert!(
            !e.criteria
                .iter()
                .find(|c| c.id == "urine_negative")
                .unwrap()
                .passed
        );
    }

    #[test]
    fn gates_remove_eligibility() {
        for gate in [
            "police_consent",
            "agreement_signed",
            "no_missed_dose_rule",
            "in_treatment",
        ] {
            let mut f = stable();
            match gate {
                "police_consent" => f.police_consent_active = false,
                "agreement_signed" => f.agreement_signed = false,
                "no_missed_dose_rule" => f.missed_rule_in_force = true,
                _ => f.in_treatment = false,
            }
            let e = decide(&Policy::default(), &f);
            assert_eq!(e.days, 0, "{gate}");
            assert!(!e.criteria.iter().find(|c| c.id == gate).unwrap().passed);
        }
    }

    #[test]
    fn attendance_thresholds_pick_the_tier() {
        let mut f = stable();
        f.days_in_treatment = 200;
        assert_eq!(decide(&Policy::default(), &f).days, 3);
        f.attendance_30 = Ratio {
            attended: 27,
            expected: 30,
        }; // 90%
        assert_eq!(decide(&Policy::default(), &f).days, 2);
        f.attendance_30 = Ratio {
            attended: 26,
            expected: 30,
        }; // 86.7%
        assert_eq!(decide(&Policy::default(), &f).days, 0);
    }

    #[test]
    fn policies_are_checked() {
        let refused = |p: &Policy| {
            let e = p.validate().unwrap_err();
            (e.code, e.field.unwrap_or_default())
        };
        assert_eq!(Policy::default().validate(), Ok(()));
        let mut p = Policy::default();
        p.tiers[1].days = 2;
        assert_eq!(
            refused(&p),
            (Code::PolicyTiersOutOfOrder, "tiers[1].days".into())
        );
        let mut p = Policy::default();
        p.tiers[0].days = 9;
        assert_eq!(
            refused(&p),
            (Code::PolicyDaysOutOfRange, "tiers[0].days".into())
        );
        let mut p = Policy::default();
        p.tiers[2].min_attendance_90 = 100.5;
        assert_eq!(
            refused(&p),
            (
                Code::PolicyPercentOutOfRange,
                "tiers[2].min_attendance_90".into()
            )
        );
        p.tiers[2].min_attendance_90 = f64::NAN;
        assert_eq!(refused(&p).0, Code::PolicyPercentOutOfRange);
        // A longer period asking fewer urine tests than the shorter one before it.
        let mut p = Policy::default();
        p.tiers[3].last_urine_negative = 1;
        let e = p.validate().unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref(), e.get("days"), e.get("shorter")),
            (
                Code::PolicyTierLooser,
                Some("tiers[3].last_urine_negative"),
                Some("5"),
                Some("4")
            )
        );
        // Equal thresholds are not looser.
        let mut p = Policy::default();
        p.tiers[1].min_attendance_30 = p.tiers[0].min_attendance_30;
        assert_eq!(p.validate(), Ok(()));
        let mut p = Policy::default();
        p.tiers[4].min_days_in_treatment = MAX_TREATMENT_DAYS + 1;
        assert_eq!(refused(&p).0, Code::PolicyTreatmentDaysOutOfRange);
        let mut p = Policy::default();
        p.tiers[4].last_urine_negative = MAX_URINE_TESTS + 1;
        assert_eq!(refused(&p).0, Code::PolicyUrineCountOutOfRange);
        let p = Policy {
            approval_valid_days: 0,
            ..Policy::default()
        };
        assert_eq!(
            refused(&p),
            (
                Code::PolicyApprovalDaysOutOfRange,
                "approval_valid_days".into()
            )
        );
        let p = Policy {
            version: "  ".into(),
            ..Policy::default()
        };
        assert_eq!(refused(&p), (Code::FieldRequired, "version".into()));
        let json = serde_json::to_string(&Policy::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<Policy>(&json).unwrap(),
            Policy::default()
        );
        assert!(serde_json::from_str::<Policy>(
            "{\"version\": \"x\", \"tiers\": [], \"colour\": 1}"
        )
        .is_err());
        let empty: Policy = serde_json::from_str("{\"version\": \"x\", \"tiers\": []}").unwrap();
        assert_eq!(refused(&empty), (Code::PolicyNoTiers, "tiers".into()));
    }

    #[test]
    fn approvals_expire_and_fall_with_the_consent() {
        let p = Policy::default();
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert!(approval_holds(&p, d, true, d + Duration::days(90)));
        assert!(!approval_holds(&p, d, true, d + Duration::days(91)));
        assert!(!approval_holds(&p, d, false, d + Duration::days(1)));
    }
}

/// Where a police request for take-home days stands. Stored and answered by its name
/// (`pending`, `approved`, `denied`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Sent to the police, not answered yet.
    Pending,
    /// The police approved the days.
    Approved,
    /// The police refused.
    Denied,
}

impl RequestState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
        }
    }

    /// The state a stored name means.
    pub fn parse(raw: &str) -> Option<RequestState> {
        match raw {
            "pending" => Some(RequestState::Pending),
            "approved" => Some(RequestState::Approved),
            "denied" => Some(RequestState::Denied),
            _ => None,
        }
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod request_state_tests {
    use super::RequestState;

    #[test]
    fn every_state_reads_back_from_its_name() {
        for s in [
            RequestState::Pending,
            RequestState::Approved,
            RequestState::Denied,
        ] {
            assert_eq!(RequestState::parse(s.as_str()), Some(s));
        }
        assert_eq!(RequestState::parse("refused"), None);
    }
}
