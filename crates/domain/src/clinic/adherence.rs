//! Adherence figures from the dose record: attended over expected days in the last 30 and 90
//! days, the current run of attended days, the longest gap, and a day-by-day timeline.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate};
use serde::Serialize;

/// Attended out of expected days in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ratio {
    pub attended: u32,
    pub expected: u32,
}

impl Ratio {
    /// Attended share in percent, or `None` when nothing was expected.
    pub fn percent(&self) -> Option<f64> {
        (self.expected > 0).then(|| 100.0 * f64::from(self.attended) / f64::from(self.expected))
    }
}

/// What one day of the timeline shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    /// Before treatment started.
    NotExpected,
    Attended,
    Missed,
    /// Today, not dosed yet.
    Pending,
    /// The centre was closed and the client did not attend: not expected, and no gap.
    Closed,
}

/// A client's adherence as of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adherence {
    pub last_30: Ratio,
    pub last_90: Ratio,
    /// Consecutive attended days up to today (or yesterday, if today is still pending).
    pub current_streak: u32,
    /// Longest run of missed expected days within the last 90 days.
    pub longest_gap_90: u32,
    /// The last 90 days, oldest first, today last.
    pub timeline: Vec<Day>,
}

/// Computes adherence for a client expected daily from `first_day`, who attended on `attended`
/// days (guest doses and confirmed take-home days included by the caller). A day in `closed`
/// (the centre's closures) that the client did not attend is not expected: it counts in no
/// ratio, and neither breaks the current run nor lengthens a gap.
pub fn adherence(
    first_day: NaiveDate,
    attended: &BTreeSet<NaiveDate>,
    closed: &BTreeSet<NaiveDate>,
    today: NaiveDate,
) -> Adherence {
    let day_kind = |d: NaiveDate| {
        if d < first_day {
            Day::NotExpected
        } else if attended.contains(&d) {
            Day::Attended
        } else if closed.contains(&d) {
            Day::Closed
        } else if d == today {
            Day::Pending
        } else {
            Day::Missed
        }
    };
    let timeline: Vec<Day> = (0..90)
        .rev()
        .map(|back| day_kind(today - Duration::days(back)))
        .collect();
    let ratio = |days: &[Day]| Ratio {
        attended: days.iter().filter(|d| **d == Day::Attended).count() as u32,
        expected: days
            .iter()
            .filter(|d| matches!(d, Day::Attended | Day::Missed))
            .count() as u32,
    };
    let mut current_streak = 0;
    for d in timeline.iter().rev() {
        match d {
            Day::Attended => current_streak += 1,
            Day::Pending | Day::Closed => continue,
            _ => break,
        }
    }
    let (mut longest, mut run) = (0u32, 0u32);
    for d in &timeline {
        match d {
            Day::Missed => {
                run += 1;
                longest = longest.max(run);
            }
            Day::Closed => {}
            _ => run = 0,
        }
    }
    Adherence {
        last_30: ratio(&timeline[60..]),
        last_90: ratio(&timeline),
        current_streak,
        longest_gap_90: longest,
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn every_day_attended_is_full_adherence() {
        let today = d(11, 22);
        let first = today - Duration::days(200);
        let attended: BTreeSet<_> = (0..=200).map(|b| today - Duration::days(b)).collect();
        let a = adherence(first, &attended, &BTreeSet::new(), today);
        assert_eq!(
            a.last_30,
            Ratio {
                attended: 30,
                expected: 30
            }
        );
        assert_eq!(a.last_90.percent(), Some(100.0));
        assert_eq!(a.current_streak, 90);
        assert_eq!(a.longest_gap_90, 0);
    }

    #[test]
    fn gaps_streaks_and_a_pending_today() {
        let today = d(11, 22);
        let first = d(11, 1);
        // Attended 1..=10, missed 11..=14, attended 15..=21, today not yet.
        let attended: BTreeSet<_> = (1..=10).chain(15..=21).map(|x| d(11, x)).collect();
        let a = adherence(first, &attended, &BTreeSet::new(), today);
        assert_eq!(
            a.last_30,
            Ratio {
                attended: 17,
                expected: 21
            }
        );
        assert_eq!(a.current_streak, 7);
        assert_eq!(a.longest_gap_90, 4);
        assert_eq!(*a.timeline.last().unwrap(), Day::Pending);
        assert_eq!(
            a.timeline
                .iter()
                .filter(|x| **x == Day::NotExpected)
                .count(),
            90 - 22
        );
    }

    #[test]
    fn new_client_has_nothing_expected_yet() {
        let today = d(11, 22);
        let a = adherence(today, &BTreeSet::new(), &BTreeSet::new(), today);
        assert_eq!(a.last_30.expected, 0);
        assert_eq!(a.last_30.percent(), None);
        assert_eq!(a.current_streak, 0);
    }

    #[test]
    fn closure_days_are_not_expected_and_break_no_run() {
        let today = d(11, 22);
        let first = d(11, 1);
        // Attended 1..=10, closed 11..=13, attended 14..=21.
        let attended: BTreeSet<_> = (1..=10).chain(14..=21).map(|x| d(11, x)).collect();
        let closed: BTreeSet<_> = (11..=13).map(|x| d(11, x)).collect();
        let a = adherence(first, &attended, &closed, today);
        assert_eq!(
            a.last_30,
            Ratio {
                attended: 18,
                expected: 18
            }
        );
        assert_eq!(a.longest_gap_90, 0);
        assert_eq!(a.current_streak, 18);
        assert_eq!(a.timeline.iter().filter(|x| **x == Day::Closed).count(), 3);
        // A missed day on each side of a closure is one gap of two, not a longer one.
        let attended: BTreeSet<_> = (1..=9).chain(15..=21).map(|x| d(11, x)).collect();
        let closed: BTreeSet<_> = (11..=13).map(|x| d(11, x)).collect();
        let a = adherence(first, &attended, &closed, today);
        assert_eq!(a.longest_gap_90, 2);
        assert_eq!(a.last_30.expected, 18);
        // A day attended while closed (a take-home day confirmed) is attended.
        let attended: BTreeSet<_> = (1..=21).map(|x| d(11, x)).collect();
        let a = adherence(first, &attended, &closed, today);
        assert_eq!(a.last_30.attended, 21);
    }
}
