//! Urine drug tests: substances, results, what counts as negative, and who is tested when:
//! random selection (unpredictable without the server's key, fair over time) and the
//! community-based treatment schedule (12 prescheduled tests in year 1, at least 16 random
//! ones in years 2–3).

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::DomainError;

/// Substances the centre's test panel reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Substance {
    /// Morphine / opiates (heroin).
    Opiates,
    /// Methadone: expected for clients in MMT.
    Methadone,
    Methamphetamine,
    Ketamine,
    Benzodiazepines,
    Cocaine,
    Other,
}

impl Substance {
    pub const ALL: [Substance; 7] = [
        Substance::Opiates,
        Substance::Methadone,
        Substance::Methamphetamine,
        Substance::Ketamine,
        Substance::Benzodiazepines,
        Substance::Cocaine,
        Substance::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Substance::Opiates => "opiates",
            Substance::Methadone => "methadone",
            Substance::Methamphetamine => "methamphetamine",
            Substance::Ketamine => "ketamine",
            Substance::Benzodiazepines => "benzodiazepines",
            Substance::Cocaine => "cocaine",
            Substance::Other => "other",
        }
    }

    /// Parses a substance name, naming the field on failure.
    pub fn parse(s: &str, field: &str) -> Result<Substance, DomainError> {
        Substance::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Substance::ALL.iter().map(|x| x.as_str()).collect();
                DomainError::invalid(
                    field,
                    format!(
                        "unknown substance `{s}`; expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }

    /// Whether a positive result is expected from the treatment itself.
    pub fn prescribed(self) -> bool {
        self == Substance::Methadone
    }
}

impl fmt::Display for Substance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a test went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "results")]
pub enum Outcome {
    /// Tested: `true` is positive, per substance tested.
    Tested(BTreeMap<Substance, bool>),
    /// The client refused.
    Refused,
    /// The client could not provide a sample.
    NotProvided,
}

impl Outcome {
    /// Negative for every non-prescribed substance. A refusal or no sample is not negative.
    pub fn negative(&self) -> bool {
        match self {
            Outcome::Tested(r) => r.iter().all(|(s, pos)| s.prescribed() || !pos),
            _ => false,
        }
    }

    /// Checks a result before it is saved.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Outcome::Tested(r) = self {
            if r.is_empty() {
                return Err(DomainError::invalid(
                    "results",
                    "a tested sample needs at least one substance result",
                ));
            }
        }
        Ok(())
    }
}

/// The number of most recent tests, newest first, that were negative in a row.
pub fn negative_streak<'a>(newest_first: impl IntoIterator<Item = &'a Outcome>) -> u32 {
    newest_first
        .into_iter()
        .take_while(|o| o.negative())
        .count() as u32
}

/// Why a test is due today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DueReason {
    /// Drawn by the random selection.
    Random,
    /// One of the 12 prescheduled tests of community-based treatment, year 1.
    Scheduled,
    /// Community-based treatment years 2–3: drawn at a raised rate to reach 16.
    CommunityRandom,
}

/// A uniform number in [0, 1) that nobody can predict without `key`: HMAC-SHA-256 of the
/// client and the day.
pub fn draw(key: &[u8], client_id: i64, day: NaiveDate) -> f64 {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return 1.0;
    };
    mac.update(b"anxin-urine-draw-v1");
    mac.update(&client_id.to_be_bytes());
    mac.update(day.to_string().as_bytes());
    let out = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// What decides whether a client is tested today.
#[derive(Debug, Clone, Copy)]
pub struct DueInput {
    pub client_id: i64,
    pub today: NaiveDate,
    /// Random testing rate per attendance day (e.g. 0.1).
    pub rate: f64,
    /// Start of community-based treatment, when the client is in that stage.
    pub community_since: Option<NaiveDate>,
    /// Tests done since the start of the current community-treatment year.
    pub tests_this_period: u32,
    /// Whether a test was already recorded today.
    pub tested_today: bool,
}

/// Prescheduled tests in community treatment year 1, and the minimum of random tests in years 2–3.
pub const YEAR1_SCHEDULED: u32 = 12;
pub const YEARS23_MINIMUM: u32 = 16;

/// Whether (and why) a test is due today.
pub fn due(key: &[u8], i: DueInput) -> Option<DueReason> {
    if i.tested_today {
        return None;
    }
    let u = draw(key, i.client_id, i.today);
    if let Some(since) = i.community_since {
        let day = (i.today - since).num_days();
        if (0..365).contains(&day) {
            // Year 1: one test every 30 days from the start; an overdue one stays due.
            let expected_by_now = (day / 30 + 1).min(i64::from(YEAR1_SCHEDULED)) as u32;
            if i.tests_this_period < expected_by_now {
                return Some(DueReason::Scheduled);
            }
        } else if (365..3 * 365).contains(&day) {
            let remaining_days = (3 * 365 - day) as f64;
            let needed = YEARS23_MINIMUM.saturating_sub(i.tests_this_period) as f64;
            // Draw at a rate that reaches the minimum with room to spare.
            let rate = (needed * 1.5 / remaining_days).max(i.rate).min(1.0);
            if needed >= remaining_days || u < rate {
                return Some(DueReason::CommunityRandom);
            }
            return None;
        }
    }
    (u < i.rate).then_some(DueReason::Random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    #[test]
    fn negativity_ignores_the_prescribed_drug_and_refusals_count_against() {
        let mut r = BTreeMap::new();
        r.insert(Substance::Methadone, true);
        r.insert(Substance::Opiates, false);
        assert!(Outcome::Tested(r.clone()).negative());
        r.insert(Substance::Methamphetamine, true);
        assert!(!Outcome::Tested(r).negative());
        assert!(!Outcome::Refused.negative());
        assert!(Outcome::Tested(BTreeMap::new()).validate().is_err());
        assert!(Substance::parse("heroine", "results.heroine")
            .unwrap_err()
            .to_string()
            .starts_with("results.heroine: unknown substance"));
    }

    #[test]
    fn negative_streak_counts_back_from_the_newest() {
        let neg = Outcome::Tested([(Substance::Opiates, false)].into_iter().collect());
        let pos = Outcome::Tested([(Substance::Opiates, true)].into_iter().collect());
        assert_eq!(negative_streak(&[neg.clone(), neg.clone(), pos, neg]), 2);
    }

    #[test]
    fn random_selection_is_fair_over_many_days() {
        let key = [7u8; 32];
        let rate = 0.1;
        let days = 2000;
        for client_id in 1..=200 {
            let chosen = (0..days)
                .filter(|k| {
                    due(
                        &key,
                        DueInput {
                            client_id,
                            today: d(1) + Duration::days(*k),
                            rate,
                            community_since: None,
                            tests_this_period: 0,
                            tested_today: false,
                        },
                    )
                    .is_some()
                })
                .count();
            let share = chosen as f64 / days as f64;
            // Binomial(2000, 0.1): sd = 0.0067; 5 sd either side.
            assert!((share - rate).abs() < 0.034, "client {client_id}: {share}");
        }
    }

    #[test]
    fn selection_depends_on_the_key() {
        let a: Vec<bool> = (0..200)
            .map(|k| draw(&[1; 32], 5, d(1) + Duration::days(k)) < 0.1)
            .collect();
        let b: Vec<bool> = (0..200)
            .map(|k| draw(&[2; 32], 5, d(1) + Duration::days(k)) < 0.1)
            .collect();
        assert_ne!(a, b);
    }

    #[test]
    fn community_treatment_year_one_schedules_twelve_tests() {
        let since = d(1);
        let mut done = 0;
        let mut scheduled = 0;
        for k in 0..365 {
            let today = since + Duration::days(k);
            let input = DueInput {
                client_id: 9,
                today,
                rate: 0.0,
                community_since: Some(since),
                tests_this_period: done,
                tested_today: false,
            };
            if due(&[3; 32], input) == Some(DueReason::Scheduled) {
                done += 1;
                scheduled += 1;
            }
        }
        assert_eq!(scheduled, 12);
    }

    #[test]
    fn community_treatment_years_two_and_three_reach_sixteen() {
        for client_id in 1..50 {
            let since = d(1) - Duration::days(365);
            let mut done = 0;
            for k in 365..3 * 365 {
                let today = since + Duration::days(k);
                let input = DueInput {
                    client_id,
                    today,
                    rate: 0.0,
                    community_since: Some(since),
                    tests_this_period: done,
                    tested_today: false,
                };
                if due(&[4; 32], input).is_some() {
                    done += 1;
                }
            }
            assert!(done >= 16, "client {client_id}: only {done}");
        }
    }
}
