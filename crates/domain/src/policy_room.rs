//! The joint policy room's rules: who signs a take-home policy proposal for which party (the
//! CDC, the police, then the centre's manager), when a proposal may start, and the diff of a
//! version against the one before it, tier by tier and threshold by threshold.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::problem::{Code, Problem};
use crate::takehome::{Policy, Tier};

/// The three parties whose signatures put a proposal in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The CDC (a `cdc_analyst`).
    Cdc,
    /// The police (a `psb_officer`).
    Police,
    /// The centre (its `manager`), who signs last.
    Centre,
}

impl Party {
    /// Every party, in signing order.
    pub const ALL: [Party; 3] = [Party::Cdc, Party::Police, Party::Centre];

    /// The stable name (stored and answered).
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Cdc => "cdc",
            Party::Police => "police",
            Party::Centre => "centre",
        }
    }

    /// The party a stored name means.
    pub fn parse(raw: &str) -> Option<Party> {
        Party::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// The party a role signs for, if any.
    pub fn of(role: Role) -> Option<Party> {
        match role {
            Role::CdcAnalyst => Some(Party::Cdc),
            Role::PsbOfficer => Some(Party::Police),
            Role::Manager => Some(Party::Centre),
            _ => None,
        }
    }
}

/// Whether a proposal signed by `signed` is signed by all three parties.
pub fn fully_signed(signed: &[Party]) -> bool {
    Party::ALL.iter().all(|p| signed.contains(p))
}

/// The party `role` signs for, given those who signed already: refused
/// `policy.sign_role_refused` for a role that signs for nobody, `policy.already_signed` for a
/// party that signed already, and `policy.centre_signs_last` for the manager before the CDC
/// and the police.
pub fn check_signature(role: Role, signed: &[Party]) -> Result<Party, Problem> {
    let Some(party) = Party::of(role) else {
        return Err(Problem::new(Code::PolicySignRoleRefused).arg("role", role.as_str()));
    };
    if signed.contains(&party) {
        return Err(Problem::new(Code::PolicyAlreadySigned).arg("party", party.as_str()));
    }
    if party == Party::Centre && !(signed.contains(&Party::Cdc) && signed.contains(&Party::Police))
    {
        return Err(Problem::new(Code::PolicyCentreSignsLast));
    }
    Ok(party)
}

/// A proposal's start date: today or later, else `policy.effective_in_past` at
/// `effective_from`.
pub fn check_effective_from(from: NaiveDate, today: NaiveDate) -> Result<(), Problem> {
    if from < today {
        return Err(Problem::new(Code::PolicyEffectiveInPast)
            .field("effective_from")
            .arg("today", today.to_string()));
    }
    Ok(())
}

/// A proposal's edit: refused `policy.proposal_signed` once anybody signed it.
pub fn check_editable(signed: &[Party]) -> Result<(), Problem> {
    if signed.is_empty() {
        Ok(())
    } else {
        Err(Problem::new(Code::PolicyProposalSigned))
    }
}

/// One line of a diff: a tier's threshold, or the approval's validity (`days` none), from one
/// value to another; a tier added has no `from`, one removed no `to`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The tier's take-home days; none for the approval's validity.
    pub days: Option<u8>,
    /// `min_days_in_treatment`, `min_attendance_30`, `min_attendance_90`,
    /// `last_urine_negative`, `approval_valid_days`, or `tier` (a tier added or removed).
    pub field: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A tier's thresholds, by field name.
pub fn thresholds(t: &Tier) -> [(&'static str, String); 4] {
    [
        ("min_days_in_treatment", t.min_days_in_treatment.to_string()),
        ("min_attendance_30", t.min_attendance_30.to_string()),
        ("min_attendance_90", t.min_attendance_90.to_string()),
        ("last_urine_negative", t.last_urine_negative.to_string()),
    ]
}

/// What changed from `before` to `after`, tier by tier (2 to 6 days) and threshold by threshold.
pub fn diff(before: &Policy, after: &Policy) -> Vec<Change> {
    let mut out = Vec::new();
    for days in 2..=6u8 {
        let b = before.tiers.iter().find(|t| t.days == days);
        let a = after.tiers.iter().find(|t| t.days == days);
        match (b, a) {
            (Some(b), Some(a)) => {
                for ((field, from), (_, to)) in thresholds(b).into_iter().zip(thresholds(a)) {
                    if from != to {
                        out.push(Change {
                            days: Some(days),
                            field,
                            from: Some(from),
                            to: Some(to),
                        });
                    }
                }
            }
            (None, Some(_)) => out.push(Change {
                days: Some(days),
                field: "tier",
                from: None,
                to: Some(days.to_string()),
            }),
            (Some(_), None) => out.push(Change {
                days: Some(days),
                field: "tier",
                from: Some(days.to_string()),
                to: None,
            }),
            (None, None) => {}
        }
    }
    if before.approval_valid_days != after.approval_valid_days {
        out.push(Change {
            days: None,
            field: "approval_valid_days",
            from: Some(before.approval_valid_days.to_string()),
            to: Some(after.approval_valid_days.to_string()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_cdc_and_the_police_sign_then_the_centre_each_once() {
        use Role::*;
        assert_eq!(check_signature(PsbOfficer, &[]), Ok(Party::Police));
        assert_eq!(
            check_signature(CdcAnalyst, &[Party::Police]),
            Ok(Party::Cdc)
        );
        assert_eq!(
            check_signature(Manager, &[Party::Police]).unwrap_err().code,
            Code::PolicyCentreSignsLast
        );
        assert_eq!(
            check_signature(Manager, &[Party::Police, Party::Cdc]),
            Ok(Party::Centre)
        );
        assert_eq!(
            check_signature(CdcAnalyst, &[Party::Cdc]).unwrap_err().code,
            Code::PolicyAlreadySigned
        );
        for r in [Admin, Prescriber, Dispenser, Counsellor, PeerEducator] {
            assert_eq!(
                check_signature(r, &[]).unwrap_err().code,
                Code::PolicySignRoleRefused
            );
        }
        assert!(!fully_signed(&[Party::Cdc, Party::Police]));
        assert!(fully_signed(&[Party::Police, Party::Centre, Party::Cdc]));
        for p in Party::ALL {
            assert_eq!(Party::parse(p.as_str()), Some(p));
        }
    }

    #[test]
    fn a_start_in_the_past_and_an_edit_after_a_signature_are_refused() {
        let today = day("2026-12-06");
        assert!(check_effective_from(today, today).is_ok());
        let e = check_effective_from(day("2026-12-05"), today).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::PolicyEffectiveInPast, Some("effective_from"))
        );
        assert!(check_editable(&[]).is_ok());
        assert_eq!(
            check_editable(&[Party::Police]).unwrap_err().code,
            Code::PolicyProposalSigned
        );
    }

    #[test]
    fn the_diff_names_each_threshold_that_changed() {
        let before = Policy::default();
        let mut after = Policy::default();
        after.tiers[1].min_days_in_treatment = 120;
        after.tiers.pop();
        after.approval_valid_days = 60;
        let d = diff(&before, &after);
        assert_eq!(
            d,
            vec![
                Change {
                    days: Some(3),
                    field: "min_days_in_treatment",
                    from: Some("180".into()),
                    to: Some("120".into())
                },
                Change {
                    days: Some(6),
                    field: "tier",
                    from: Some("6".into()),
                    to: None
                },
                Change {
                    days: None,
                    field: "approval_valid_days",
                    from: Some("90".into()),
                    to: Some("60".into())
                },
            ]
        );
        assert!(diff(&before, &before).is_empty());
    }
}
