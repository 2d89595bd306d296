//! Episodes of care and drop-out by rule.
//!
//! An [`Episode`] is one stretch of methadone maintenance at one centre: it opens at enrolment
//! (or readmission, or arrival by transfer, or return from compulsory isolated treatment) and
//! ends by transfer, discharge, drop-out, compulsory isolated treatment (CIT) or death
//! ([`EpisodeEnd`]). Recorded episodes are never overwritten; readmission opens a new one.
//!
//! **Drop-out by rule** ([`with_dropouts`]): a client with no dose (observed at the centre, as a
//! guest elsewhere, or a take-home or box day) for `n` consecutive days of an episode drops
//! out. The days are exact:
//!
//! - the *missed days* are the episode's days without a dose, counted from the day after the
//!   last dose (from the episode's first day when it has none yet);
//! - the episode **ends on the `n`-th consecutive missed day** (`ended_on`, the first day the
//!   client is not in MMT, the same convention as a discharge day): last dose on 1 November and
//!   `n` = 30 → missed days 2 November to 1 December, in MMT through 30 November, ended on
//!   1 December;
//! - the drop-out **becomes known the day after** that day (2 December), once the `n`-th missed
//!   day has passed without a dose: computed on 1 December the client is still in MMT (a dose
//!   may yet come that day).
//!
//! A dose after a drop-out (inside the recorded episode, i.e. before a discharge) starts a new
//! episode from that day, marked as a re-enrolment. No I/O: the caller gives the dose days and
//! `today`.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::indicators::DaySet;

/// The national programme's drop-out rule as the default of `indicators.dropout_days`: the
/// Implementation Protocol for Community-Based MMT allows 7 consecutive missed days, so the 8th
/// ends the episode (`docs/indicators.md` gives the sources).
pub const DEFAULT_DROPOUT_DAYS: u32 = 8;

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeEnd {
    /// Care moved to another centre (whose own episode opens the same day).
    Transfer,
    /// Discharged by staff.
    Discharge,
    /// No dose for the drop-out rule's number of consecutive days.
    Dropout,
    /// Moved to compulsory isolated treatment.
    Cit,
    /// Died.
    Death,
}

impl EpisodeEnd {
    pub const ALL: [EpisodeEnd; 5] = [
        EpisodeEnd::Transfer,
        EpisodeEnd::Discharge,
        EpisodeEnd::Dropout,
        EpisodeEnd::Cit,
        EpisodeEnd::Death,
    ];

    /// The stable name (as stored in `episodes.end_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            EpisodeEnd::Transfer => "transfer",
            EpisodeEnd::Discharge => "discharge",
            EpisodeEnd::Dropout => "dropout",
            EpisodeEnd::Cit => "cit",
            EpisodeEnd::Death => "death",
        }
    }

    /// The end of this stable name.
    pub fn parse(raw: &str) -> Option<EpisodeEnd> {
        EpisodeEnd::ALL.into_iter().find(|e| e.as_str() == raw)
    }
}

/// One episode of care: in MMT from `started_on` up to the day before `ended_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    pub started_on: NaiveDate,
    /// The first day out of treatment; `None` while open.
    pub ended_on: Option<NaiveDate>,
    /// How it ended; `None` while open.
    pub end: Option<EpisodeEnd>,
    /// Opened by a dose after a drop-out (derived, not recorded).
    pub reenrolment: bool,
}

impl Episode {
    /// An open episode from `started_on`.
    pub fn open(started_on: NaiveDate) -> Episode {
        Episode {
            started_on,
            ended_on: None,
            end: None,
            reenrolment: false,
        }
    }

    /// The same episode, ended on `on` by `end`.
    pub fn ended(self, on: NaiveDate, end: EpisodeEnd) -> Episode {
        Episode {
            ended_on: Some(on),
            end: Some(end),
            ..self
        }
    }

    /// Whether the client is in this episode on `d`.
    pub fn covers(&self, d: NaiveDate) -> bool {
        self.started_on <= d && self.ended_on.is_none_or(|e| e > d)
    }

    /// Whether the episode overlaps the days `from` to `to`, both included.
    pub fn overlaps(&self, from: NaiveDate, to: NaiveDate) -> bool {
        self.started_on <= to && self.ended_on.is_none_or(|e| e > from)
    }

    /// Days in treatment up to `until` (excluded) or the episode's end, whichever is first.
    pub fn days_until(&self, until: NaiveDate) -> i64 {
        let end = self.ended_on.map_or(until, |e| e.min(until));
        (end - self.started_on).num_days().max(0)
    }
}

/// The recorded episodes (in order, not overlapping) with the drop-out rule applied: each
/// recorded episode is cut where `n` consecutive days passed without a dose (see the module
/// doc for the exact days), and a later dose inside it opens a re-enrolment episode. Only
/// drop-outs known by `today` are applied. `doses` holds every dose day known from `known_from`
/// on; an episode started before `known_from` counts its missed days from `known_from` (the
/// caller reads enough history for the figures it asks). `n` of 0 turns the rule off.
pub fn with_dropouts(
    recorded: &[Episode],
    doses: &DaySet,
    n: u32,
    today: NaiveDate,
    known_from: Option<NaiveDate>,
) -> Vec<Episode> {
    if n == 0 {
        return recorded.to_vec();
    }
    let n = i64::from(n);
    // Days as offsets from the dose set's first day: the loop below runs over every dose day
    // of a province's year, so it stays in integers and reads the bitmap a word at a time.
    let base = doses.first_day().unwrap_or(today);
    let off = |d: NaiveDate| (d - base).num_days();
    let day = |o: i64| base + Duration::days(o);
    let today_off = off(today);
    let mut out = Vec::with_capacity(recorded.len());
    for ep in recorded {
        let mut current = *ep;
        let first = off(ep.started_on);
        // Doses up to today (included) and before the recorded end.
        let stop = ep
            .ended_on
            .map_or(today_off + 1, |e| off(e).min(today_off + 1));
        let end = ep.ended_on.map(off);
        // The last day with a dose (or the day before missed days start counting).
        let mut last = first.max(known_from.map_or(first, off)) - 1;
        let mut days = doses
            .offsets()
            .skip_while(|o| *o < first)
            .take_while(|o| *o < stop)
            .peekable();
        loop {
            let out_on = last + n;
            let next = days.peek().copied();
            // The n-th missed day comes before the next dose, inside the episode, and has
            // passed by today.
            let dropped = next.is_none_or(|d| d > out_on)
                && end.is_none_or(|e| out_on < e)
                && out_on < today_off;
            if dropped {
                out.push(current.ended(day(out_on), EpisodeEnd::Dropout));
                match next {
                    Some(d) => {
                        // A dose after the drop-out opens a re-enrolment episode.
                        current = Episode {
                            started_on: day(d),
                            ended_on: ep.ended_on,
                            end: ep.end,
                            reenrolment: true,
                        };
                        last = d;
                        days.next();
                        continue;
                    }
                    None => break,
                }
            }
            match days.next() {
                Some(d) => last = last.max(d),
                None => {
                    out.push(current);
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn last_dose_on_1_november_drops_out_on_1_december_known_on_the_2nd() {
        let recorded = [Episode::open(d(2026, 10, 1))];
        let doses: DaySet = (1..=31)
            .map(|i| d(2026, 10, i))
            .chain([d(2026, 11, 1)])
            .collect();
        // Computed on 1 December: the 30th missed day has not passed; still open.
        let on_1st = with_dropouts(&recorded, &doses, 30, d(2026, 12, 1), None);
        assert_eq!(on_1st, vec![Episode::open(d(2026, 10, 1))]);
        // Computed on 2 December: ended on 1 December, in MMT through 30 November.
        let on_2nd = with_dropouts(&recorded, &doses, 30, d(2026, 12, 2), None);
        assert_eq!(
            on_2nd,
            vec![Episode::open(d(2026, 10, 1)).ended(d(2026, 12, 1), EpisodeEnd::Dropout)]
        );
        assert!(on_2nd[0].covers(d(2026, 11, 30)) && !on_2nd[0].covers(d(2026, 12, 1)));
        // 29 missed days then a dose on 1 December: no drop-out.
        let mut back = doses.clone();
        back.insert(d(2026, 12, 1));
        let kept = with_dropouts(&recorded, &back, 30, d(2027, 1, 1), None);
        assert_eq!(
            kept,
            vec![Episode::open(d(2026, 10, 1)).ended(d(2026, 12, 31), EpisodeEnd::Dropout)]
        );
    }

    #[test]
    fn a_dose_after_a_drop_out_opens_a_reenrolment_episode() {
        let recorded = [Episode::open(d(2026, 1, 1))];
        let doses: DaySet = [d(2026, 1, 1), d(2026, 1, 2), d(2026, 3, 1), d(2026, 3, 2)].into();
        let eps = with_dropouts(&recorded, &doses, 30, d(2026, 3, 10), None);
        assert_eq!(
            eps,
            vec![
                Episode::open(d(2026, 1, 1)).ended(d(2026, 2, 1), EpisodeEnd::Dropout),
                Episode {
                    reenrolment: true,
                    ..Episode::open(d(2026, 3, 1))
                },
            ]
        );
    }

    #[test]
    fn no_dose_since_enrolment_counts_missed_days_from_the_first_day() {
        let recorded = [Episode::open(d(2026, 11, 1))];
        let eps = with_dropouts(&recorded, &DaySet::new(), 30, d(2027, 1, 1), None);
        // Missed days 1 to 30 November: ended on 30 November.
        assert_eq!(eps[0].ended_on, Some(d(2026, 11, 30)));
    }

    #[test]
    fn a_discharge_before_the_rule_keeps_its_own_end_and_zero_days_turn_it_off() {
        let recorded =
            [Episode::open(d(2026, 11, 1)).ended(d(2026, 11, 10), EpisodeEnd::Discharge)];
        let doses: DaySet = [d(2026, 11, 1)].into();
        assert_eq!(
            with_dropouts(&recorded, &doses, 30, d(2027, 1, 1), None),
            recorded.to_vec()
        );
        let open = [Episode::open(d(2026, 1, 1))];
        assert_eq!(
            with_dropouts(&open, &DaySet::new(), 0, d(2027, 1, 1), None),
            open.to_vec()
        );
    }

    #[test]
    fn an_episode_older_than_the_history_counts_from_its_first_known_day() {
        let recorded = [Episode::open(d(2020, 1, 1))];
        let doses: DaySet = [d(2026, 5, 3)].into();
        let eps = with_dropouts(&recorded, &doses, 30, d(2026, 7, 1), Some(d(2026, 5, 1)));
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].ended_on, Some(d(2026, 6, 2)));
        assert_eq!(EpisodeEnd::parse("cit"), Some(EpisodeEnd::Cit));
        assert_eq!(EpisodeEnd::parse("x"), None);
    }
}
