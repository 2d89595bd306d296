//! Release that survives subtraction: what the CDC and the police may see of a table.
//!
//! Suppressing the small cells of one table does not protect them once two answers can be
//! subtracted: a site from the deployment's total, one date range from a nested one, a
//! disaggregation from its total, two units from their parent. Two rules close that door for
//! every answer an outside reader gets (`docs/disclosure.md` states the method and what it
//! guarantees):
//!
//! - **Fixed periods.** An outside reader asks for a reporting period, a calendar month, quarter
//!   or year ([`ReportingPeriod`]), never for arbitrary dates, so no pair of nested ranges
//!   isolates a day.
//! - **Cell keys** (the method national statistics offices use for census tables). Every fact
//!   belongs to a record (a client, an anonymous contact); each count in a [`Grid`] carries the
//!   sum of its records' mixed ids, its *fingerprint*, which depends only on *which* records it
//!   counts. A keyed hash of the fingerprint and the count (the key is the deployment's, outside
//!   the database) picks a small noise from [`NOISE`]; the published value is the count plus
//!   that noise, and hidden when it falls below the threshold. Zeros are published as zeros.
//!   The same records give the same published value in every table, period and unit, so asking
//!   again does not average the noise away; a difference of two published values carries two
//!   independent noises, so it does not tell a count of 1 from 0 or from 4.
//!
//! No I/O: the key comes in from the caller.

use chrono::{Datelike, NaiveDate};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::indicators::{Grid, Period, Suppressed};
use crate::{Code, Problem};

/// The noise added to a non-zero count, with its weight out of 16: symmetric (no bias in a
/// total), at most 3 either way, variance 2.5.
pub const NOISE: [(i64, u32); 7] = [(-3, 1), (-2, 2), (-1, 3), (0, 4), (1, 3), (2, 2), (3, 1)];

/// The largest noise either way.
pub const MAX_NOISE: i64 = 3;

/// A record's share of a count's fingerprint: `n` times its id, mixed (SplitMix64's finaliser),
/// so that fingerprints of different record sets differ and add up when counts do.
pub fn contribution(record: u64, n: u64) -> u64 {
    let mut z = record.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    n.wrapping_mul(z ^ (z >> 31))
}

/// A single count with its fingerprint, for figures that are not tables (a police station's,
/// a cohort's). Serialised as its count alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    pub n: u64,
    #[serde(skip)]
    fingerprint: u64,
}

impl Count {
    /// Counts `record` once.
    pub fn add(&mut self, record: u64) {
        self.add_n(record, 1);
    }

    /// Counts `n` things of `record` (boxes of a client, days of a client).
    pub fn add_n(&mut self, record: u64, n: u64) {
        self.n += n;
        self.fingerprint = self.fingerprint.wrapping_add(contribution(record, n));
    }

    /// What is in `self` and not in `part` (a subset of it): the lost of a retained count.
    pub fn minus(self, part: Count) -> Count {
        Count {
            n: self.n.saturating_sub(part.n),
            fingerprint: self.fingerprint.wrapping_sub(part.fingerprint),
        }
    }
}

/// A part of a base (retained of enrolled, at home of tracked) as published by `publish`: both
/// values, the part never above the base, and only when the base, the part and their
/// difference are all published, so that none of the three follows from the other two.
pub fn share(
    publish: impl Fn(Count) -> Option<u64>,
    base: Count,
    part: Count,
) -> Option<(u64, u64)> {
    let (b, p) = (publish(base)?, publish(part)?);
    publish(base.minus(part))?;
    Some((b, p.min(b)))
}

/// The deployment's cell-key secret. Never printed.
#[derive(Clone)]
pub struct CellKeys {
    secret: [u8; 32],
}

impl std::fmt::Debug for CellKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CellKeys(..)")
    }
}

impl CellKeys {
    /// Keys from the deployment's secret.
    pub fn new(secret: [u8; 32]) -> CellKeys {
        CellKeys { secret }
    }

    /// The noise of a count `n` whose fingerprint is `fingerprint`: the top four bits of a keyed
    /// hash of both, read through the weights of [`NOISE`].
    pub fn noise(&self, n: u64, fingerprint: u64) -> i64 {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"anxin-cell-key-v1");
        mac.update(&fingerprint.to_le_bytes());
        mac.update(&n.to_le_bytes());
        let slot = u32::from(mac.finalize().into_bytes()[0] >> 4);
        let mut upto = 0;
        for (noise, weight) in NOISE {
            upto += weight;
            if slot < upto {
                return noise;
            }
        }
        0
    }

    /// The published value of count `n`: 0 stays 0; otherwise `n` plus its noise, hidden
    /// (`None`) when that is below `threshold`.
    pub fn publish(&self, n: u64, fingerprint: u64, threshold: u64) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let shown = i64::try_from(n)
            .unwrap_or(i64::MAX)
            .saturating_add(self.noise(n, fingerprint));
        u64::try_from(shown).ok().filter(|v| *v >= threshold.max(1))
    }

    /// [`CellKeys::publish`] of a single count.
    pub fn publish_count(&self, c: Count, threshold: u64) -> Option<u64> {
        self.publish(c.n, c.fingerprint, threshold)
    }

    /// A grid as an outside reader sees it: each cell and each total published on its own
    /// (a total's fingerprint is the sum of its cells'), so totals need not add up.
    pub fn release(&self, grid: &Grid, threshold: u64) -> Suppressed {
        let (counts, prints) = (&grid.0, &grid.1);
        let sum = |cells: &mut dyn Iterator<Item = (usize, usize)>| {
            cells.fold((0u64, 0u64), |(n, f), (r, c)| {
                (n + counts[r][c], f.wrapping_add(prints[r][c]))
            })
        };
        let show = |(n, f): (u64, u64)| self.publish(n, f, threshold);
        Suppressed {
            cells: (0..3)
                .map(|r| (0..3).map(|c| show((counts[r][c], prints[r][c]))).collect())
                .collect(),
            row_totals: (0..3)
                .map(|r| show(sum(&mut (0..3).map(|c| (r, c)))))
                .collect(),
            col_totals: (0..3)
                .map(|c| show(sum(&mut (0..3).map(|r| (r, c)))))
                .collect(),
            total: show(sum(&mut (0..3).flat_map(|r| (0..3).map(move |c| (r, c))))),
        }
    }
}

/// A period an outside reader may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportingPeriod {
    Month { year: i32, month: u32 },
    Quarter { year: i32, quarter: u32 },
    Year(i32),
}

/// The years a reporting period may fall in.
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

impl ReportingPeriod {
    /// Reads `2026-11` (a month), `2026Q4` (a quarter) or `2026` (a year); anything else is
    /// refused at `field` with [`Code::PeriodNotReporting`].
    pub fn parse(field: &str, raw: &str) -> Result<ReportingPeriod, Problem> {
        let raw = raw.trim();
        let bad = || {
            Problem::new(Code::PeriodNotReporting)
                .field(field)
                .arg("value", raw)
        };
        let year = |y: &str| {
            y.parse::<i32>()
                .ok()
                .filter(|y| YEARS.contains(y) && y.to_string().len() == 4)
        };
        let upper = raw.to_ascii_uppercase();
        let p = if let Some((y, q)) = upper.split_once('Q') {
            let y = year(y.strip_suffix('-').unwrap_or(y)).ok_or_else(bad)?;
            match q {
                "1" | "2" | "3" | "4" => ReportingPeriod::Quarter {
                    year: y,
                    quarter: q.parse().map_err(|_| bad())?,
                },
                _ => return Err(bad()),
            }
        } else if let Some((y, m)) = raw.split_once('-') {
            let y = year(y).ok_or_else(bad)?;
            match m.parse::<u32>() {
                Ok(month @ 1..=12) if m.len() == 2 => ReportingPeriod::Month { year: y, month },
                _ => return Err(bad()),
            }
        } else {
            ReportingPeriod::Year(year(raw).ok_or_else(bad)?)
        };
        Ok(p)
    }

    /// The reporting period that is exactly `p`, if there is one.
    pub fn of(p: &Period) -> Option<ReportingPeriod> {
        let (y, m) = (p.from.year(), p.from.month());
        [
            ReportingPeriod::Month { year: y, month: m },
            ReportingPeriod::Quarter {
                year: y,
                quarter: (m - 1) / 3 + 1,
            },
            ReportingPeriod::Year(y),
        ]
        .into_iter()
        .find(|r| r.period().is_some_and(|q| q == *p))
    }

    /// Its first and last day (`None` only outside the calendar).
    pub fn period(self) -> Option<Period> {
        let (from, months) = match self {
            ReportingPeriod::Month { year, month } => (NaiveDate::from_ymd_opt(year, month, 1)?, 1),
            ReportingPeriod::Quarter { year, quarter } => {
                (NaiveDate::from_ymd_opt(year, quarter * 3 - 2, 1)?, 3)
            }
            ReportingPeriod::Year(year) => (NaiveDate::from_ymd_opt(year, 1, 1)?, 12),
        };
        let to = from
            .checked_add_months(chrono::Months::new(months))?
            .pred_opt()?;
        Period::new(from, to).ok()
    }

    /// As written in a request: `2026-11`, `2026Q4`, `2026`.
    pub fn code(self) -> String {
        match self {
            ReportingPeriod::Month { year, month } => format!("{year}-{month:02}"),
            ReportingPeriod::Quarter { year, quarter } => format!("{year}Q{quarter}"),
            ReportingPeriod::Year(year) => year.to_string(),
        }
    }

    /// The DHIS2 period code: `202611`, `2026Q4`, `2026`.
    pub fn dhis2(self) -> String {
        match self {
            ReportingPeriod::Month { year, month } => format!("{year}{month:02}"),
            other => other.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::{compute, ClientFacts, DaySet, EncounterFact, Inputs, Sex, Who};
    use crate::services::{Service, TestResult};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn keys(seed: u32) -> CellKeys {
        let mut secret = [0x5a; 32];
        secret[..4].copy_from_slice(&seed.to_le_bytes());
        CellKeys::new(secret)
    }

    #[test]
    fn only_months_quarters_and_years_are_reporting_periods() {
        let p = |s: &str| ReportingPeriod::parse("period", s).map(|r| r.period().unwrap());
        let nov = p("2026-11").unwrap();
        assert_eq!((nov.from, nov.to), (d(2026, 11, 1), d(2026, 11, 30)));
        let q1 = p("2026q1").unwrap();
        assert_eq!((q1.from, q1.to), (d(2026, 1, 1), d(2026, 3, 31)));
        assert_eq!(p("2026-Q4").unwrap().to, d(2026, 12, 31));
        let y = p("2025").unwrap();
        assert_eq!((y.from, y.to), (d(2025, 1, 1), d(2025, 12, 31)));
        for bad in [
            "2026-11-15",
            "2026-1",
            "2026-13",
            "2026Q5",
            "26",
            "",
            "11/2026",
            "1999",
        ] {
            let e = ReportingPeriod::parse("period", bad).unwrap_err();
            assert_eq!(e.code, Code::PeriodNotReporting, "{bad}");
            assert_eq!(e.field.as_deref(), Some("period"));
        }
        // Dates given as a range count only when they are exactly one of those periods.
        let range = |a, b| ReportingPeriod::of(&Period::new(a, b).unwrap());
        assert_eq!(
            range(d(2026, 10, 1), d(2026, 12, 31)).map(|r| r.dhis2()),
            Some("2026Q4".into())
        );
        assert_eq!(
            range(d(2026, 11, 1), d(2026, 11, 30)).map(|r| r.dhis2()),
            Some("202611".into())
        );
        assert_eq!(range(d(2026, 11, 1), d(2026, 11, 14)), None);
        assert_eq!(range(d(2026, 11, 2), d(2026, 12, 1)), None);
    }

    #[test]
    fn no_count_below_the_threshold_is_ever_published_and_zeros_stay_zero() {
        let k = keys(7);
        for n in 0..40u64 {
            for f in 0..200u64 {
                let fp = contribution(f, 1);
                match k.publish(n, fp, 5) {
                    Some(v) => {
                        assert!(v == 0 || v >= 5, "{n} published as {v}");
                        assert_eq!(v == 0, n == 0);
                        assert!(v.abs_diff(n) <= MAX_NOISE as u64);
                    }
                    None => assert!((1..=5 + MAX_NOISE as u64).contains(&n), "{n} hidden"),
                }
            }
        }
    }

    #[test]
    fn the_noise_follows_its_weights_and_has_no_bias() {
        let k = keys(3);
        let mut seen = [0u32; 7];
        let draws = 16_000u64;
        for r in 0..draws {
            let i = k.noise(10, contribution(r, 1)) + MAX_NOISE;
            seen[i as usize] += 1;
        }
        for ((_, w), got) in NOISE.iter().zip(seen) {
            let expected = draws as f64 * f64::from(*w) / 16.0;
            assert!(
                (f64::from(got) - expected).abs() < expected * 0.15 + 40.0,
                "{seen:?}"
            );
        }
        let mean: f64 = NOISE
            .iter()
            .zip(seen)
            .map(|((n, _), got)| *n as f64 * f64::from(got))
            .sum::<f64>()
            / draws as f64;
        assert!(mean.abs() < 0.1, "mean noise {mean}");
    }

    /// A client with a dose every day of 2026 from `enrolled` on.
    fn client(record: u64, sex: Sex, birth_year: i32, enrolled: NaiveDate) -> ClientFacts {
        let mut dose_days = DaySet::new();
        let mut day = enrolled;
        while day <= d(2026, 12, 31) {
            dose_days.insert(day);
            day = day.succ_opt().unwrap();
        }
        let mut facts = ClientFacts::new(
            Who {
                sex,
                birth_year: Some(birth_year),
                record,
            },
            enrolled,
            None,
        );
        facts.dose_days = dose_days;
        facts
    }

    fn hiv_test(record: u64, on: NaiveDate) -> EncounterFact {
        EncounterFact {
            who: Who {
                sex: Sex::Male,
                birth_year: Some(1980),
                record,
            },
            on,
            service: Service::HivTest {
                tested_on: Some(on),
                pre_counselled: true,
                post_counselled: true,
                result: Some(TestResult::Negative),
                told_result: true,
            },
        }
    }

    /// One city of three sites; district D holds sites A and C. Site A: 30 men over 25, who
    /// had 10 HIV tests in October and 10 in November. Site B: 12 men over 25. Site C: ONE
    /// woman under 25 (the person an attacker is after), enrolled in December, tested then.
    struct City {
        a: Inputs,
        b: Inputs,
        district: Inputs,
        city: Inputs,
    }

    fn city() -> City {
        let a = Inputs {
            clients: (0..30)
                .map(|i| client(i, Sex::Male, 1980, d(2026, 1, 1)))
                .collect(),
            encounters: (0..10)
                .map(|i| hiv_test(i, d(2026, 10, 5)))
                .chain((10..20).map(|i| hiv_test(i, d(2026, 11, 5))))
                .collect(),
            ..Inputs::default()
        };
        let b = Inputs {
            clients: (100..112)
                .map(|i| client(i, Sex::Male, 1980, d(2026, 1, 1)))
                .collect(),
            ..Inputs::default()
        };
        let mut her = hiv_test(500, d(2026, 12, 12));
        her.who.sex = Sex::Female;
        her.who.birth_year = Some(2005);
        let c = Inputs {
            clients: vec![client(500, Sex::Female, 2005, d(2026, 12, 10))],
            encounters: vec![her],
            ..Inputs::default()
        };
        let union = |parts: &[&Inputs]| Inputs {
            clients: parts.iter().flat_map(|p| p.clients.clone()).collect(),
            encounters: parts.iter().flat_map(|p| p.encounters.clone()).collect(),
            ..Inputs::default()
        };
        City {
            district: union(&[&a, &c]),
            city: union(&[&a, &b, &c]),
            a,
            b,
        }
    }

    /// The published table of `id`'s numerator over `p`.
    fn published(k: &CellKeys, inputs: &Inputs, p: ReportingPeriod, id: &str) -> Suppressed {
        let figures = compute(&p.period().unwrap(), inputs);
        let f = figures.iter().find(|f| f.id == id).unwrap();
        k.release(&f.numerator, 5)
    }

    /// The attacks of the issue against the one woman under 25, each worked out by an attacker
    /// who knows the method and the other sites' true counts: over many deployments (keys), how
    /// often each recovers her exactly, and how often it even proves she exists.
    #[test]
    fn subtraction_attacks_recover_nothing_below_the_threshold() {
        let c = city();
        let month = |month| ReportingPeriod::Month { year: 2026, month };
        let (oct, nov, dec) = (month(10), month(11), month(12));
        let q4 = ReportingPeriod::Quarter {
            year: 2026,
            quarter: 4,
        };
        let n = |v: Option<u64>| v.map_or(0, |v| v as i64);
        let total = |k: &CellKeys, i: &Inputs, p, id| n(published(k, i, p, id).total);
        let trials = 300u32;
        let (mut exact, mut proven) = ([0u32; 4], [0u32; 4]);
        for seed in 0..trials {
            let k = keys(seed);
            // Her own cell is never published, wherever it is asked.
            for inputs in [&c.district, &c.city] {
                assert_eq!(published(&k, inputs, dec, "mmt_clients").cells[1][0], None);
            }
            // (the attacker's difference, how many published values went into it)
            let attacks = [
                // 1. A site against the total: district D minus site A.
                (
                    total(&k, &c.district, dec, "mmt_clients")
                        - total(&k, &c.a, dec, "mmt_clients"),
                    2,
                ),
                // 2. A disaggregation against its total: district D minus its male row.
                {
                    let t = published(&k, &c.district, dec, "mmt_clients");
                    (n(t.total) - n(t.row_totals[0]), 2)
                },
                // 3. Two units against their parent: the city minus sites A and B.
                (
                    total(&k, &c.city, dec, "mmt_clients")
                        - total(&k, &c.a, dec, "mmt_clients")
                        - total(&k, &c.b, dec, "mmt_clients"),
                    3,
                ),
                // 4. Nested periods: district D's HIV tests in the quarter minus October's and
                //    November's.
                (
                    total(&k, &c.district, q4, "hiv_tests")
                        - total(&k, &c.district, oct, "hiv_tests")
                        - total(&k, &c.district, nov, "hiv_tests"),
                    3,
                ),
            ];
            for (i, (got, answers)) in attacks.iter().enumerate() {
                if *got == 1 {
                    exact[i] += 1;
                }
                // Proof that she exists: a difference that no noise explains from 0.
                if *got > MAX_NOISE * answers {
                    proven[i] += 1;
                }
            }
        }
        // Without the noise every attack would recover her every time (300 of 300). With it,
        // a difference equals the truth only when the noises happen to cancel, and it proves
        // her existence almost never.
        for (i, hits) in exact.iter().enumerate() {
            assert!(
                f64::from(*hits) < f64::from(trials) * 0.30,
                "attack {} recovered the count {hits} times of {trials}",
                i + 1
            );
        }
        for (i, hits) in proven.iter().enumerate() {
            assert!(
                f64::from(*hits) < f64::from(trials) * 0.02,
                "attack {} proved her existence {hits} times of {trials}",
                i + 1
            );
        }
    }

    #[test]
    fn the_same_records_get_the_same_published_value_everywhere() {
        let c = city();
        let k = keys(9);
        let dec = ReportingPeriod::Month {
            year: 2026,
            month: 12,
        };
        // Asking twice gives the same answer: repetition does not average the noise away.
        assert_eq!(
            published(&k, &c.a, dec, "mmt_clients"),
            published(&k, &c.a, dec, "mmt_clients")
        );
        // The same people gathered in another order publish the same table.
        let mut reversed = c.city.clone();
        reversed.clients.reverse();
        assert_eq!(
            published(&k, &c.city, dec, "mmt_clients"),
            published(&k, &reversed, dec, "mmt_clients")
        );
        // A different deployment key gives different noise somewhere.
        let other = keys(10);
        assert!((0..50u64)
            .any(|r| k.noise(7, contribution(r, 1)) != other.noise(7, contribution(r, 1))));
    }
}
