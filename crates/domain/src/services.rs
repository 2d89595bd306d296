//! The one-stop shop's service encounters and therapeutic-community episodes, as pure rules.
//!
//! This module owns what an encounter may say (needle and syringe exchange, naloxone, condoms,
//! peer education, HIV/HCV/TB tests, ARV referral and its outcome, counselling, vocational
//! training, health examinations, referrals received) and when it is plausible: needles returned
//! above a cap need a reason, an HIV result needs its test date, an ARV outcome cannot precede
//! its referral. It also owns the therapeutic community's phases and exits. No I/O, no clock:
//! `today` is a parameter.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::{Code, DomainError, Problem};

/// Needles one person can plausibly bring back at once; more needs a written reason
/// (e.g. a secondary exchanger returning for a group).
pub const PLAUSIBLE_RETURN: u32 = 200;

/// A test result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestResult {
    Negative,
    Positive,
    Indeterminate,
}

/// What became of a referral to ARV treatment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArvOutcome {
    /// Not known yet.
    Pending,
    /// Started ARV treatment on `outcome_on`.
    Linked,
    NotLinked,
    /// Lost to follow-up.
    Lost,
}

/// Who sent a person into treatment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralSource {
    Police,
    Outreach,
    Family,
    #[serde(rename = "self")]
    SelfReferred,
}

impl ReferralSource {
    /// Every source, in report order.
    pub const ALL: [ReferralSource; 4] = [
        ReferralSource::Police,
        ReferralSource::Outreach,
        ReferralSource::Family,
        ReferralSource::SelfReferred,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralSource::Police => "police",
            ReferralSource::Outreach => "outreach",
            ReferralSource::Family => "family",
            ReferralSource::SelfReferred => "self",
        }
    }
}

/// What happened in one service encounter. Stored as JSON; `kind` is the tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Service {
    /// Needle and syringe exchange.
    NeedleExchange {
        given: u32,
        returned: u32,
        /// Required when `returned` exceeds [`PLAUSIBLE_RETURN`].
        #[serde(default)]
        reason: Option<String>,
    },
    Naloxone {
        kits: u32,
    },
    Condoms {
        count: u32,
    },
    /// A contact by a peer educator.
    PeerEducation {
        educator: String,
        topic: String,
    },
    /// HIV test with counselling (VCT).
    HivTest {
        #[serde(default)]
        tested_on: Option<NaiveDate>,
        #[serde(default)]
        pre_counselled: bool,
        #[serde(default)]
        post_counselled: bool,
        #[serde(default)]
        result: Option<TestResult>,
        /// Whether the person learned the result.
        #[serde(default)]
        told_result: bool,
    },
    HcvTest {
        #[serde(default)]
        tested_on: Option<NaiveDate>,
        #[serde(default)]
        result: Option<TestResult>,
    },
    TbTest {
        #[serde(default)]
        tested_on: Option<NaiveDate>,
        #[serde(default)]
        result: Option<TestResult>,
    },
    /// Syphilis test (the national MMT programme's syphilis testing rate).
    SyphilisTest {
        #[serde(default)]
        tested_on: Option<NaiveDate>,
        #[serde(default)]
        result: Option<TestResult>,
    },
    /// Referral to ARV treatment and its outcome.
    ArvReferral {
        referred_on: NaiveDate,
        outcome: ArvOutcome,
        #[serde(default)]
        outcome_on: Option<NaiveDate>,
    },
    Counselling {
        #[serde(default)]
        minutes: Option<u32>,
    },
    VocationalTraining {
        course: String,
    },
    HealthExam {},
    /// A referral into treatment received from someone.
    ReferralIn {
        source: ReferralSource,
    },
}

impl Service {
    /// The stable kind name (the JSON tag).
    pub fn kind(&self) -> &'static str {
        match self {
            Service::NeedleExchange { .. } => "needle_exchange",
            Service::Naloxone { .. } => "naloxone",
            Service::Condoms { .. } => "condoms",
            Service::PeerEducation { .. } => "peer_education",
            Service::HivTest { .. } => "hiv_test",
            Service::HcvTest { .. } => "hcv_test",
            Service::TbTest { .. } => "tb_test",
            Service::SyphilisTest { .. } => "syphilis_test",
            Service::ArvReferral { .. } => "arv_referral",
            Service::Counselling { .. } => "counselling",
            Service::VocationalTraining { .. } => "vocational_training",
            Service::HealthExam {} => "health_exam",
            Service::ReferralIn { .. } => "referral_in",
        }
    }

    /// Checks the encounter's plausibility for an encounter on `on`, recorded `today`. Each
    /// refusal is a [`Problem`] naming its field.
    pub fn validate(&self, on: NaiveDate, today: NaiveDate) -> Result<(), DomainError> {
        let refuse =
            |code: Code, field: &str| -> DomainError { Problem::new(code).field(field).into() };
        let not_after = |field: &str, d: NaiveDate| {
            if d > today {
                Err(refuse(Code::DateInFuture, field))
            } else {
                Ok(())
            }
        };
        not_after("on", on)?;
        match self {
            Service::NeedleExchange {
                given,
                returned,
                reason,
            } => {
                if *given == 0 && *returned == 0 {
                    return Err(refuse(Code::ServiceNothingExchanged, "given"));
                }
                let has_reason = reason.as_deref().is_some_and(|r| !r.trim().is_empty());
                if *returned > PLAUSIBLE_RETURN && !has_reason {
                    return Err(Problem::new(Code::ServiceReturnsImplausible)
                        .field("returned")
                        .arg("returned", returned)
                        .arg("max", PLAUSIBLE_RETURN)
                        .into());
                }
            }
            Service::Naloxone { kits } if *kits == 0 => {
                return Err(refuse(Code::ServiceCountTooSmall, "kits"));
            }
            Service::Condoms { count } if *count == 0 => {
                return Err(refuse(Code::ServiceCountTooSmall, "count"));
            }
            Service::PeerEducation { educator, topic } => {
                if educator.trim().is_empty() {
                    return Err(refuse(Code::ServiceFieldRequired, "educator"));
                }
                if topic.trim().is_empty() {
                    return Err(refuse(Code::ServiceFieldRequired, "topic"));
                }
            }
            Service::HivTest {
                tested_on,
                result,
                told_result,
                ..
            } => {
                match (tested_on, result) {
                    (None, Some(_)) => return Err(refuse(Code::ServiceResultUndated, "tested_on")),
                    (Some(d), _) => not_after("tested_on", *d)?,
                    (None, None) => {}
                }
                if *told_result && result.is_none() {
                    return Err(refuse(Code::ServiceToldWithoutResult, "told_result"));
                }
            }
            Service::HcvTest { tested_on, result }
            | Service::TbTest { tested_on, result }
            | Service::SyphilisTest { tested_on, result } => match (tested_on, result) {
                (None, Some(_)) => return Err(refuse(Code::ServiceResultUndated, "tested_on")),
                (Some(d), _) => not_after("tested_on", *d)?,
                (None, None) => {}
            },
            Service::ArvReferral {
                referred_on,
                outcome,
                outcome_on,
            } => {
                not_after("referred_on", *referred_on)?;
                if let Some(o) = outcome_on {
                    if o < referred_on {
                        return Err(Problem::new(Code::ArvOutcomeBeforeReferral)
                            .field("outcome_on")
                            .arg("outcome_on", o)
                            .arg("referred_on", referred_on)
                            .into());
                    }
                    not_after("outcome_on", *o)?;
                }
                if *outcome == ArvOutcome::Linked && outcome_on.is_none() {
                    return Err(refuse(Code::ArvLinkedUndated, "outcome_on"));
                }
                if *outcome == ArvOutcome::Pending && outcome_on.is_some() {
                    return Err(refuse(Code::ArvPendingDated, "outcome_on"));
                }
            }
            Service::VocationalTraining { course } if course.trim().is_empty() => {
                return Err(refuse(Code::ServiceFieldRequired, "course"));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A phase of the therapeutic community's 12-month residence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcPhase {
    Entry,
    Primary,
    ReEntry,
    Aftercare,
}

impl TcPhase {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            TcPhase::Entry => "entry",
            TcPhase::Primary => "primary",
            TcPhase::ReEntry => "re_entry",
            TcPhase::Aftercare => "aftercare",
        }
    }

    /// Parses a stored or sent name.
    pub fn parse(field: &str, s: &str) -> Result<TcPhase, DomainError> {
        [
            TcPhase::Entry,
            TcPhase::Primary,
            TcPhase::ReEntry,
            TcPhase::Aftercare,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| {
            Problem::new(Code::ChoiceUnknown)
                .field(field)
                .arg("value", s)
                .into()
        })
    }
}

/// How a residence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcExit {
    Completed,
    DroppedOut,
}

impl TcExit {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            TcExit::Completed => "completed",
            TcExit::DroppedOut => "dropped_out",
        }
    }

    /// Parses a stored or sent name.
    pub fn parse(field: &str, s: &str) -> Result<TcExit, DomainError> {
        match s {
            "completed" => Ok(TcExit::Completed),
            "dropped_out" => Ok(TcExit::DroppedOut),
            _ => Err(Problem::new(Code::ChoiceUnknown)
                .field(field)
                .arg("value", s)
                .into()),
        }
    }
}

/// One residence in the therapeutic community, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcEpisode {
    pub admitted_on: NaiveDate,
    pub phase: TcPhase,
    #[serde(default)]
    pub left_on: Option<NaiveDate>,
    #[serde(default)]
    pub exit: Option<TcExit>,
    /// Urine at 6 months after leaving: `true` is negative for non-prescribed opioids.
    #[serde(default)]
    pub urine_negative_6m: Option<bool>,
    #[serde(default)]
    pub urine_negative_12m: Option<bool>,
}

impl TcEpisode {
    /// Checks an episode on its own (a new one, or the new state of an existing one).
    pub fn validate(&self, today: NaiveDate) -> Result<(), DomainError> {
        let refused = |code: Code, field: &str| DomainError::from(Problem::new(code).field(field));
        if self.admitted_on > today {
            return Err(refused(Code::DateInFuture, "admitted_on"));
        }
        match (self.left_on, self.exit) {
            (Some(_), None) => return Err(refused(Code::TcExitRequired, "exit")),
            (None, Some(_)) => return Err(refused(Code::TcLeftOnRequired, "left_on")),
            (Some(l), Some(_)) => {
                if l < self.admitted_on {
                    return Err(Problem::new(Code::TcLeftBeforeAdmission)
                        .field("left_on")
                        .arg("left", l)
                        .arg("admitted", self.admitted_on)
                        .into());
                }
                if l > today {
                    return Err(refused(Code::DateInFuture, "left_on"));
                }
            }
            (None, None) => {}
        }
        for (field, months, value) in [
            ("urine_negative_6m", 6, self.urine_negative_6m),
            ("urine_negative_12m", 12, self.urine_negative_12m),
        ] {
            if value.is_none() {
                continue;
            }
            let Some(left) = self.left_on else {
                return Err(refused(Code::TcFollowUpBeforeLeaving, field));
            };
            let due = left + Months::new(months);
            if due > today {
                return Err(Problem::new(Code::TcFollowUpNotDue)
                    .field(field)
                    .arg("months", months)
                    .arg("due", due)
                    .into());
            }
        }
        Ok(())
    }

    /// Checks a change from `self` (stored) to `next`: same admission, phases only move forward,
    /// an exit once recorded stays.
    pub fn check_update(&self, next: &TcEpisode, today: NaiveDate) -> Result<(), DomainError> {
        next.validate(today)?;
        let refused = |code: Code, field: &str| DomainError::from(Problem::new(code).field(field));
        if next.admitted_on != self.admitted_on {
            return Err(refused(Code::TcAdmissionFixed, "admitted_on"));
        }
        if next.phase < self.phase {
            return Err(refused(Code::TcPhaseBackwards, "phase"));
        }
        if self.exit.is_some() && (next.exit != self.exit || next.left_on != self.left_on) {
            return Err(refused(Code::TcExitFixed, "exit"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    fn field(e: DomainError) -> String {
        match e {
            DomainError::Invalid { field, .. } => field,
            DomainError::Refused(p) => p.field.unwrap_or_default(),
            other => panic!("not invalid: {other}"),
        }
    }

    #[test]
    fn needles_above_the_cap_need_a_reason() {
        let today = d(11, 22);
        let ok = Service::NeedleExchange {
            given: 20,
            returned: 200,
            reason: None,
        };
        assert!(ok.validate(today, today).is_ok());
        let too_many = Service::NeedleExchange {
            given: 20,
            returned: 201,
            reason: Some("  ".into()),
        };
        assert_eq!(
            field(too_many.validate(today, today).unwrap_err()),
            "returned"
        );
        let explained = Service::NeedleExchange {
            given: 20,
            returned: 500,
            reason: Some("secondary exchange for 12 people".into()),
        };
        assert!(explained.validate(today, today).is_ok());
    }

    #[test]
    fn an_hiv_result_needs_its_test_date() {
        let today = d(11, 22);
        let s = Service::HivTest {
            tested_on: None,
            pre_counselled: true,
            post_counselled: true,
            result: Some(TestResult::Negative),
            told_result: true,
        };
        let e = s.validate(today, today).unwrap_err();
        assert_eq!(e.to_string(), "tested_on: service.result_undated");
        let told_nothing = Service::HivTest {
            tested_on: Some(d(11, 20)),
            pre_counselled: true,
            post_counselled: false,
            result: None,
            told_result: true,
        };
        assert_eq!(
            field(told_nothing.validate(today, today).unwrap_err()),
            "told_result"
        );
    }

    #[test]
    fn an_arv_outcome_cannot_precede_its_referral() {
        let today = d(11, 22);
        let early = Service::ArvReferral {
            referred_on: d(11, 10),
            outcome: ArvOutcome::Linked,
            outcome_on: Some(d(11, 9)),
        };
        match early.validate(today, today).unwrap_err() {
            DomainError::Refused(p) => {
                assert_eq!(p.code, Code::ArvOutcomeBeforeReferral);
                assert_eq!(p.field.as_deref(), Some("outcome_on"));
                assert_eq!(p.get("outcome_on"), Some("2026-11-09"));
                assert_eq!(p.get("referred_on"), Some("2026-11-10"));
            }
            other => panic!("not a refusal by code: {other}"),
        }
        let linked_undated = Service::ArvReferral {
            referred_on: d(11, 10),
            outcome: ArvOutcome::Linked,
            outcome_on: None,
        };
        assert_eq!(
            field(linked_undated.validate(today, today).unwrap_err()),
            "outcome_on"
        );
        let fine = Service::ArvReferral {
            referred_on: d(11, 10),
            outcome: ArvOutcome::Linked,
            outcome_on: Some(d(11, 12)),
        };
        assert!(fine.validate(today, today).is_ok());
    }

    #[test]
    fn encounters_are_parsed_from_tagged_json() {
        let s: Service = serde_json::from_str(r#"{"kind":"referral_in","source":"self"}"#).unwrap();
        assert_eq!(
            s,
            Service::ReferralIn {
                source: ReferralSource::SelfReferred
            }
        );
        assert_eq!(s.kind(), "referral_in");
        assert!(serde_json::from_str::<Service>(r#"{"kind":"massage"}"#).is_err());
    }

    #[test]
    fn tc_phases_move_forward_and_follow_ups_wait_for_their_month() {
        let today = d(11, 22);
        let ep = TcEpisode {
            admitted_on: d(1, 5),
            phase: TcPhase::Primary,
            left_on: None,
            exit: None,
            urine_negative_6m: None,
            urine_negative_12m: None,
        };
        assert!(ep.validate(today).is_ok());
        let back = TcEpisode {
            phase: TcPhase::Entry,
            ..ep.clone()
        };
        assert_eq!(field(ep.check_update(&back, today).unwrap_err()), "phase");
        let left = TcEpisode {
            phase: TcPhase::Aftercare,
            left_on: Some(d(5, 1)),
            exit: Some(TcExit::Completed),
            urine_negative_6m: Some(true),
            ..ep.clone()
        };
        assert!(ep.check_update(&left, today).is_ok());
        let too_soon = TcEpisode {
            urine_negative_12m: Some(true),
            ..left.clone()
        };
        match too_soon.validate(today).unwrap_err() {
            DomainError::Refused(p) => assert_eq!(
                (p.code, p.field.as_deref(), p.get("due")),
                (
                    Code::TcFollowUpNotDue,
                    Some("urine_negative_12m"),
                    Some("2027-05-01")
                )
            ),
            other => panic!("not refused by code: {other}"),
        }
        let no_exit = TcEpisode {
            exit: None,
            ..left.clone()
        };
        assert_eq!(field(no_exit.validate(today).unwrap_err()), "exit");
        let changed_exit = TcEpisode {
            exit: Some(TcExit::DroppedOut),
            ..left.clone()
        };
        assert_eq!(
            field(left.check_update(&changed_exit, today).unwrap_err()),
            "exit"
        );
    }
}
