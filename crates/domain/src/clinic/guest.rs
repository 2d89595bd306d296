//! Guest dosing: a client of one centre dosed at another for a while (travel, work, family).
//! The arrangement starts today or later, ends on or after its start, and lasts at most
//! [`MAX_DAYS`] days; a longer stay is a transfer.

use chrono::NaiveDate;

use crate::{Code, Problem};

/// The longest guest-dosing arrangement, in days after its first day.
pub const MAX_DAYS: i64 = 60;

/// Checks an arrangement from `from` to `to` made on `today`.
pub fn check_period(from: NaiveDate, to: NaiveDate, today: NaiveDate) -> Result<(), Problem> {
    if from < today {
        return Err(Problem::new(Code::GuestFromPast).field("from"));
    }
    if to < from || (to - from).num_days() > MAX_DAYS {
        return Err(Problem::new(Code::GuestPeriodInvalid)
            .field("to")
            .arg("max", MAX_DAYS));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn a_stay_starts_today_or_later_and_lasts_at_most_sixty_days() {
        let today = d(11, 22);
        assert!(check_period(today, today, today).is_ok());
        assert!(check_period(
            d(11, 23),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            today
        )
        .is_ok());
        assert_eq!(
            check_period(d(11, 21), d(11, 30), today).unwrap_err().code,
            Code::GuestFromPast
        );
        assert_eq!(
            check_period(d(11, 25), d(11, 24), today).unwrap_err().code,
            Code::GuestPeriodInvalid
        );
        let p = check_period(today, today + chrono::Duration::days(61), today).unwrap_err();
        assert_eq!(
            (p.code, p.field.as_deref()),
            (Code::GuestPeriodInvalid, Some("to"))
        );
    }
}
