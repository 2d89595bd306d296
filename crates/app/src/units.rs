//! Figures per organisation unit: the CDC's comparison of the centres below a unit for one
//! month (the key indicators through the same `indicators::report` path, so suppression and the
//! disclosure record apply centre by centre, plus each centre's completeness and timeliness),
//! and the DHIS2 `dataValueSets` of a unit and month holding the unit, every unit below it and
//! every centre below it, each under its own org-unit code.
//!
//! Completeness: days of the month with at least one dose recorded at the centre ÷ the days
//! it was open (the month's days less the closure days of its calendar). Timeliness: every dose
//! of the month at the centre was recorded (`doses.given_at`, stamped by the server when the
//! nurse enters it) by the end of day [`TIMELY_BY_DAY`] of the next month, centre time.
//! Both are in `docs/indicators-units.md`.

use anxin_domain::indicators::Period;
use anxin_domain::release::ReportingPeriod;
use anxin_domain::{Code, Problem};
use chrono::{Datelike, Duration, NaiveDate};
use schemars::JsonSchema;
use serde::Serialize;

use crate::indicators::{data_value_set, report, DataValueSet, Scope};
use crate::org::UnitScope;
use crate::{Actor, App, Result};

/// The key figures a comparison shows, in order.
pub const COMPARED: [&str; 5] = [
    "mmt_clients",
    "retention_3m",
    "mean_attendance",
    "urine_negative_rate",
    "take_home_participation",
];

/// A month's records are on time when all are in by the end of this day of the next month.
pub const TIMELY_BY_DAY: u32 = 5;

/// One centre of a comparison.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CentreRow {
    pub site: String,
    pub name: String,
    /// The key figures in the order of `indicators`; null where suppressed or without a
    /// denominator.
    pub values: Vec<Option<f64>>,
    /// Days with doses recorded ÷ days open, in percent (null: the centre was closed all month).
    pub completeness: Option<f64>,
    pub dose_days: i64,
    pub days_open: i64,
    /// Every dose of the month recorded by the deadline (false when none was recorded).
    pub timely: bool,
    /// Doses recorded after the deadline.
    pub late_doses: i64,
}

/// The centres below a unit compared over one month.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Comparison {
    /// The unit's code, a centre's, or `all`.
    pub unit: String,
    /// `YYYY-MM`.
    pub month: String,
    pub indicators: Vec<&'static str>,
    /// The last moment a month's records count as on time (centre time, `YYYY-MM-DD`,
    /// end of day).
    pub timely_by: NaiveDate,
    pub suppressed: bool,
    pub centres: Vec<CentreRow>,
}

/// The period as one month (`YYYYMM`), or a refusal at the `month` field.
pub fn one_month(period: &Period) -> std::result::Result<String, Problem> {
    match ReportingPeriod::of(period) {
        Some(m @ ReportingPeriod::Month { .. }) => Some(m.dhis2()),
        _ => None,
    }
    .ok_or_else(|| {
        Problem::new(Code::PeriodNotMonth)
            .field("month")
            .arg("value", format!("{} – {}", period.from, period.to))
    })
}

/// The last day a month's records are on time.
pub fn timely_by(period: &Period) -> NaiveDate {
    let next = period.to + Duration::days(1);
    NaiveDate::from_ymd_opt(next.year(), next.month(), TIMELY_BY_DAY).unwrap_or(next)
}

/// Completeness in percent: days with doses ÷ days open (`None` with no open day).
pub fn completeness(dose_days: i64, days_open: i64) -> Option<f64> {
    (days_open > 0).then(|| (dose_days.min(days_open) as f64) * 100.0 / days_open as f64)
}

/// Compares the centres of `scope` (its unit's, or every centre, or the one centre) over its
/// month; each centre's figures leave through [`report`] (suppressed and recorded for outside
/// roles).
pub async fn compare(app: &App, me: &Actor, scope: &Scope) -> Result<Comparison> {
    me.require(anxin_domain::Permission::IndicatorsRead)?;
    one_month(&scope.period)?;
    let place = (scope.site.clone(), scope.unit.clone());
    let centres = crate::org::centres_of(app, &place).await?;
    let by = timely_by(&scope.period);
    let deadline = (by + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_local_timezone(app.settings.utc_offset)
        .single()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| app.now());
    let month_days = (scope.period.to - scope.period.from).num_days() + 1;
    let mut rows = Vec::with_capacity(centres.len());
    for c in &centres {
        let one = Scope {
            period: scope.period,
            site: Some((c.site_id, c.code.clone())),
            unit: None,
            suppressed: scope.suppressed,
        };
        let shown = report(app, me, &one, "comparison").await?;
        let values = COMPARED
            .iter()
            .map(|id| shown.iter().find(|s| s.id == *id).and_then(|s| s.value))
            .collect();
        let r = app
            .store
            .month_records(c.site_id, scope.period.from, scope.period.to, deadline)
            .await?;
        let days_open = (month_days - r.closed_days).max(0);
        rows.push(CentreRow {
            site: c.code.clone(),
            name: c.name.clone(),
            values,
            completeness: completeness(r.dose_days, days_open),
            dose_days: r.dose_days,
            days_open,
            timely: r.doses > 0 && r.late == 0,
            late_doses: r.late,
        });
    }
    Ok(Comparison {
        unit: scope.site_label().to_owned(),
        month: scope.period.from.format("%Y-%m").to_string(),
        indicators: COMPARED.to_vec(),
        timely_by: by,
        suppressed: scope.suppressed,
        centres: rows,
    })
}

/// The DHIS2 `dataValueSets` of `unit` for one month: the unit, each unit below it and each
/// centre below it, under their own org-unit codes; each part leaves through [`report`].
pub async fn dhis2_unit_export(
    app: &App,
    me: &Actor,
    scope: &Scope,
    unit: &UnitScope,
) -> Result<DataValueSet> {
    let period = one_month(&scope.period)?;
    let mapping = app.store.dhis2_mapping().await?;
    if mapping.is_empty() {
        return Err(Problem::new(Code::Dhis2NoMapping).into());
    }
    let mut parts: Vec<(Scope, String)> = Vec::new();
    let as_unit = |u: &UnitScope| Scope {
        period: scope.period,
        site: None,
        unit: Some(u.clone()),
        suppressed: scope.suppressed,
    };
    parts.push((as_unit(unit), unit.dhis2_code.clone()));
    for u in crate::org::units_below(app, unit).await? {
        parts.push((as_unit(&u), u.dhis2_code.clone()));
    }
    let place = (None, Some(unit.clone()));
    for c in crate::org::centres_of(app, &place).await? {
        parts.push((
            Scope {
                period: scope.period,
                site: Some((c.site_id, c.code.clone())),
                unit: None,
                suppressed: scope.suppressed,
            },
            c.dhis2_code.clone(),
        ));
    }
    let mut values = Vec::new();
    for (part, org_unit) in &parts {
        let shown = report(app, me, part, "dhis2").await?;
        values.extend(data_value_set(&period, org_unit, &shown, &mapping).data_values);
    }
    Ok(DataValueSet {
        data_values: values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn completeness_counts_open_days_only_and_timeliness_ends_on_the_fifth() {
        // 30 days in November, 2 closure days: 28 open, 21 with doses: 75 %.
        assert_eq!(completeness(21, 28), Some(75.0));
        assert_eq!(completeness(3, 0), None);
        assert_eq!(completeness(31, 30), Some(100.0));
        let nov = Period::new(d("2026-11-01"), d("2026-11-30")).unwrap();
        assert_eq!(timely_by(&nov), d("2026-12-05"));
        let dec = Period::new(d("2026-12-01"), d("2026-12-31")).unwrap();
        assert_eq!(timely_by(&dec), d("2027-01-05"));
        assert_eq!(one_month(&nov).ok().as_deref(), Some("202611"));
        let q = Period::new(d("2026-10-01"), d("2026-12-31")).unwrap();
        assert_eq!(one_month(&q).unwrap_err().field.as_deref(), Some("month"));
        let days = Period::new(d("2026-11-02"), d("2026-11-30")).unwrap();
        assert!(one_month(&days).is_err());
    }
}
