//! The four legal stages of treatment (seed 003), least to most coercive, and client status.

use std::fmt;
use std::str::FromStr;

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::{Code, DomainError, Problem};

/// Treatment stage under China's 2008 Narcotics Control Law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Voluntary treatment, resting on a treatment agreement.
    Voluntary,
    /// Community-based treatment (3 years; prescribed urine testing).
    CommunityTreatment,
    /// Compulsory isolated treatment (CIT): the client is away from the centre.
    CompulsoryIsolated,
    /// Community-based rehabilitation (3 years after CIT).
    CommunityRehabilitation,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Voluntary,
        Stage::CommunityTreatment,
        Stage::CompulsoryIsolated,
        Stage::CommunityRehabilitation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Voluntary => "voluntary",
            Stage::CommunityTreatment => "community_treatment",
            Stage::CompulsoryIsolated => "compulsory_isolated",
            Stage::CommunityRehabilitation => "community_rehabilitation",
        }
    }

    /// Whether this stage rests on an order with a term (community treatment and community
    /// rehabilitation are decided by the public security organ for three years: articles 33
    /// and 48 of the Narcotics Control Law).
    pub fn has_order(self) -> bool {
        matches!(
            self,
            Stage::CommunityTreatment | Stage::CommunityRehabilitation
        )
    }

    /// Whether the client is expected at the dispensing window in this stage.
    pub fn doses_at_centre(self) -> bool {
        self != Stage::CompulsoryIsolated
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        Stage::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "stage",
                    format!(
                        "unknown stage `{s}`; expected voluntary, community_treatment, \
                         compulsory_isolated or community_rehabilitation"
                    ),
                )
            })
    }
}

/// The longest term of a community-treatment or community-rehabilitation order, in years
/// (Narcotics Control Law, articles 33 and 48).
pub const ORDER_YEARS: u32 = 3;

/// The first and last day of the order behind a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTerm {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// The order term a stage change records: none for a stage without an order (dates given
/// there are refused, not dropped); for community treatment or rehabilitation the start
/// defaults to the stage's first day and the end to [`ORDER_YEARS`] after the start.
/// Refused: a start after `today`, an end before the start, a term longer than the law's.
pub fn order_term(
    stage: Stage,
    since: NaiveDate,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<Option<OrderTerm>, Problem> {
    if !stage.has_order() {
        return match (start, end) {
            (None, None) => Ok(None),
            (s, _) => Err(Problem::new(Code::StageOrderNotApplicable)
                .field(if s.is_some() {
                    "order_start"
                } else {
                    "order_end"
                })
                .arg("stage", stage.as_str())),
        };
    }
    let start = start.unwrap_or(since);
    if start > today {
        return Err(Problem::new(Code::DateInFuture).field("order_start"));
    }
    let longest = start
        .checked_add_months(Months::new(12 * ORDER_YEARS))
        .unwrap_or(NaiveDate::MAX);
    let end = end.unwrap_or(longest);
    if end <= start {
        return Err(Problem::new(Code::DateRangeReversed)
            .field("order_end")
            .arg("from", start)
            .arg("to", end));
    }
    if end > longest {
        return Err(Problem::new(Code::StageOrderTooLong)
            .field("order_end")
            .arg("years", ORDER_YEARS)
            .arg("latest", longest));
    }
    Ok(Some(OrderTerm { start, end }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn an_order_defaults_to_three_years_from_the_stage() {
        let t = order_term(
            Stage::CommunityTreatment,
            d("2026-03-01"),
            None,
            None,
            d("2026-12-01"),
        )
        .unwrap()
        .unwrap();
        assert_eq!((t.start, t.end), (d("2026-03-01"), d("2029-03-01")));
    }

    #[test]
    fn order_dates_are_checked() {
        let today = d("2026-12-01");
        let ct = Stage::CommunityTreatment;
        let at = |r: Result<Option<OrderTerm>, Problem>| {
            let p = r.unwrap_err();
            (p.code, p.field.unwrap())
        };
        assert_eq!(
            at(order_term(ct, today, Some(d("2026-12-02")), None, today)),
            (Code::DateInFuture, "order_start".into())
        );
        assert_eq!(
            at(order_term(ct, today, Some(today), Some(today), today)),
            (Code::DateRangeReversed, "order_end".into())
        );
        assert_eq!(
            at(order_term(
                ct,
                today,
                Some(today),
                Some(d("2029-12-02")),
                today
            )),
            (Code::StageOrderTooLong, "order_end".into())
        );
        assert_eq!(
            at(order_term(
                Stage::Voluntary,
                today,
                None,
                Some(today),
                today
            )),
            (Code::StageOrderNotApplicable, "order_end".into())
        );
        assert_eq!(
            order_term(Stage::Voluntary, today, None, None, today),
            Ok(None)
        );
        let short = order_term(
            Stage::CommunityRehabilitation,
            today,
            Some(d("2025-01-01")),
            Some(d("2027-01-01")),
            today,
        );
        assert_eq!(
            short.unwrap().map(|t| t.end),
            Some(d("2027-01-01")),
            "a shorter term than the law's is kept"
        );
    }
}
