//! Overdoses and deaths as outcomes of treatment. An overdose event has its day, whether
//! naloxone was given and how it ended; one that ended in death records the death too. A death
//! has its day and a cause category, and ends the treatment (the core discharges the client in
//! the same unit of work). Neither may be dated after today ([`check_day`]).

use chrono::NaiveDate;

use crate::{Code, DomainError, Problem};

choices! {
    /// How an overdose ended.
    OverdoseOutcome {
        RecoveredOnSite => "recovered_on_site",
        TakenToHospital => "taken_to_hospital",
        Died => "died",
    }
}

choices! {
    /// The cause of a death, by category.
    DeathCause {
        Overdose => "overdose",
        HivRelated => "hiv_related",
        OtherIllness => "other_illness",
        AccidentViolence => "accident_violence",
        Unknown => "unknown",
    }
}

/// Refuses a day after `today` at `field` (`date.in_future`).
pub fn check_day(day: NaiveDate, today: NaiveDate, field: &str) -> Result<NaiveDate, DomainError> {
    if day > today {
        return Err(Problem::new(Code::DateInFuture).field(field).into());
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_after_today_is_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert!(check_day(today, today, "on").is_ok());
        assert!(check_day(today.succ_opt().unwrap(), today, "on").is_err());
        assert_eq!(
            OverdoseOutcome::parse("died", "outcome").unwrap(),
            OverdoseOutcome::Died
        );
        assert!(DeathCause::parse("old_age", "cause").is_err());
    }
}
