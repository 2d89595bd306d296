//! The health indicators: what a report covers (period, one centre or the deployment), the
//! figures of `anxin_domain::indicators` computed over the store's inputs and, for the CDC and
//! the police, suppressed below the threshold (complementary suppression included) with the
//! disclosure recorded in the audit trail (`disclosure.cdc_export`) as it leaves; the CSV and
//! DHIS2 `dataValueSets` shapes; and the DHIS2 mapping.

use std::collections::HashMap;
use std::fmt::Write as _;

use anxin_domain::indicators::{
    self, compute, suppress, value, AgeBand, Figure, Period, Sex, Suppressed, Unit,
};
use anxin_domain::{Code, DomainError, Problem};
use anxin_storage::services::Dhis2Entry;
use anxin_storage::AuditEvent;
use chrono::Datelike;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use chrono::NaiveDate;

use crate::{parse_date, Actor, App, Result};

/// Cells below this are suppressed in what the CDC receives.
/// (A configuration key for it belongs in `config.rs`; until then this is the CDC's rule of 5.)
pub const SUPPRESSION_THRESHOLD: u64 = 5; // the default of `indicators.suppression_threshold`

/// The whole DHIS2 mapping.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingRequest {
    pub entries: Vec<MappingEntry>,
}

/// One line of the DHIS2 mapping.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Dhis2EntryView {
    pub indicator: String,
    pub sex: String,
    pub age_band: String,
    pub data_element: String,
    pub category_option_combo: String,
}

impl From<&Dhis2Entry> for Dhis2EntryView {
    fn from(e: &Dhis2Entry) -> Self {
        Dhis2EntryView {
            indicator: e.indicator.clone(),
            sex: e.sex.clone(),
            age_band: e.age_band.clone(),
            data_element: e.data_element.clone(),
            category_option_combo: e.category_option_combo.clone(),
        }
    }
}

/// The indicators a trend follows, month by month.
pub const TREND_INDICATORS: [&str; 4] = [
    "mmt_clients",
    "mean_attendance",
    "urine_negative_rate",
    "take_home_participation",
];

/// Months a trend covers.
pub const TREND_MONTHS: u32 = 12;

/// One month of a trend: the month (`YYYY-MM`) and the value of each of the trend's
/// indicators, in their order; null where suppressed or without a denominator.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TrendMonth {
    pub month: String,
    pub values: Vec<Option<f64>>,
}

/// The last twelve whole months of the trend's indicators (mmt_clients, mean_attendance,
/// urine_negative_rate, take_home_participation), oldest first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Trend {
    pub site: String,
    pub indicators: Vec<&'static str>,
    pub months: Vec<TrendMonth>,
}

/// The whole months that end before `today`, the last `n` of them, oldest first.
pub fn last_months(today: NaiveDate, n: u32) -> Vec<Period> {
    let first = today.with_day(1).unwrap_or(today);
    (1..=n)
        .rev()
        .filter_map(|k| {
            let from = first.checked_sub_months(chrono::Months::new(k))?;
            let to = from
                .checked_add_months(chrono::Months::new(1))?
                .pred_opt()?;
            Period::new(from, to).ok()
        })
        .collect()
}

/// The monthly trend of the scope's centre (or the deployment) over the last twelve whole
/// months, each month's figures suppressed as a report of that month would be; for outside
/// roles one disclosure entry records the twelve months that left.
pub async fn trend(app: &App, me: &Actor, scope: &Scope) -> Result<Trend> {
    me.require(anxin_domain::Permission::IndicatorsRead)?;
    let threshold = if scope.suppressed {
        app.settings.suppression_threshold
    } else {
        0
    };
    let site = scope.site.as_ref().map(|(id, _)| *id);
    let periods = last_months(app.today(), TREND_MONTHS);
    let mut months = Vec::with_capacity(periods.len());
    for period in &periods {
        let mut inputs = app.store.indicator_inputs(site, period).await?;
        inputs.apply_dropouts(app.settings.dropout_days, app.today());
        let figures = compute(period, &inputs);
        let values = TREND_INDICATORS
            .iter()
            .map(|id| {
                figures
                    .iter()
                    .find(|f| f.id == *id)
                    .and_then(|f| show(f, threshold).value)
            })
            .collect();
        months.push(TrendMonth {
            month: period.from.format("%Y-%m").to_string(),
            values,
        });
    }
    if let (true, Some(first), Some(last)) = (scope.suppressed, periods.first(), periods.last()) {
        let mut event = AuditEvent::new("disclosure.cdc_export", "indicators", scope.site_label())
            .reason(format!(
                "trend of {} indicators, {} months, {} to {}, cells below {threshold} suppressed",
                TREND_INDICATORS.len(),
                periods.len(),
                first.from,
                last.to
            ));
        if let Some(id) = site {
            event = event.site(id);
        }
        app.store.audit(&me.audit(), event, app.now()).await?;
    }
    Ok(Trend {
        site: scope.site_label().to_owned(),
        indicators: TREND_INDICATORS.to_vec(),
        months,
    })
}

/// The DHIS2 mapping in force.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MappingView {
    pub entries: Vec<Dhis2EntryView>,
}

/// One DHIS2 data value.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataValue {
    pub data_element: String,
    pub category_option_combo: String,
    pub period: String,
    pub org_unit: String,
    pub value: String,
}

/// A DHIS2 `dataValueSets` payload.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DataValueSet {
    #[serde(rename = "dataValues")]
    pub data_values: Vec<DataValue>,
}

/// The JSON shape of a table after suppression (schema only): `null` is a hidden cell.
#[derive(JsonSchema)]
#[schemars(rename = "SuppressedTable")]
#[allow(dead_code)]
struct SuppressedShape {
    /// Rows by sex, columns by age band.
    cells: Vec<Vec<Option<u64>>>,
    row_totals: Vec<Option<u64>>,
    col_totals: Vec<Option<u64>>,
    total: Option<u64>,
}

/// The indicators of a period.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IndicatorsView {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    /// A centre's code, or `all`.
    pub site: String,
    pub suppressed: bool,
    /// Cells below it are hidden (suppressed reports only).
    pub threshold: Option<u64>,
    /// The sexes of the table rows.
    pub rows: Vec<&'static str>,
    /// The age bands of the table columns.
    pub columns: Vec<&'static str>,
    pub indicators: Vec<Shown>,
}

/// Where one indicator cell goes in DHIS2.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingEntry {
    /// An indicator id; `<id>.denominator` maps the denominator of a rate.
    pub indicator: String,
    /// male, female, unknown or total.
    pub sex: String,
    /// under_25, 25_plus, unknown or total.
    pub age_band: String,
    pub data_element: String,
    pub category_option_combo: String,
}

/// What a report is about: a period, and one site or the whole deployment.
#[derive(Debug, Clone)]
pub struct Scope {
    pub period: Period,
    /// `None` for the whole deployment.
    pub site: Option<(i64, String)>,
    /// Suppressed (outside roles) or full (the centre's manager).
    pub suppressed: bool,
}

impl Scope {
    pub fn site_label(&self) -> &str {
        self.site.as_ref().map_or("all", |(_, code)| code.as_str())
    }
}

/// Reads `from`, `to` and `site` for `me`. Managers see only their own centre; outside roles
/// may ask for one centre (`site=CODE`) or the deployment (`site=all`, the default).
pub async fn scope(app: &App, me: &Actor, q: &HashMap<String, String>) -> Result<Scope> {
    let today = app.today();
    let from = match q.get("from").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(f) => parse_date("from", f)?,
        None => today.with_day(1).unwrap_or(today),
    };
    let to = match q.get("to").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(t) => parse_date("to", t)?,
        None => today,
    };
    let period = Period::new(from, to)?;
    let outside = me.role.is_outside();
    let asked = q
        .get("site")
        .map(|s| s.trim().to_uppercase())
        .filter(|s| !s.is_empty());
    let site = match (outside, asked.as_deref()) {
        (true, None | Some("ALL" | "全部")) => None,
        (true, Some(code)) => {
            let s = app.store.site_by_code(code).await.map_err(|_| {
                DomainError::invalid("site", format!("no centre has the code `{code}`"))
            })?;
            Some((s.id, s.code))
        }
        (false, None) => {
            let mine = app.store.site(me.site_id).await?;
            Some((mine.id, mine.code))
        }
        (false, Some(code)) => {
            let mine = app.store.site(me.site_id).await?;
            if code != mine.code {
                return Err(DomainError::Forbidden(
                    "a centre's staff see the indicators of their own centre only".into(),
                )
                .into());
            }
            Some((mine.id, mine.code))
        }
    };
    Ok(Scope {
        period,
        site,
        suppressed: outside,
    })
}

/// One indicator as shown: its definition and its (possibly suppressed) tables.
#[derive(Debug, Clone, serde::Serialize, JsonSchema)]
pub struct Shown {
    pub id: &'static str,
    /// count, percent or per_person
    #[schemars(with = "String")]
    pub unit: Unit,
    pub numerator_definition: &'static str,
    pub denominator_definition: &'static str,
    /// Over everybody; `None` when a part is suppressed or the denominator is zero.
    pub value: Option<f64>,
    #[schemars(with = "SuppressedShape")]
    pub numerator: Suppressed,
    #[schemars(with = "Option<SuppressedShape>")]
    pub denominator: Option<Suppressed>,
}

fn show(f: &Figure, threshold: u64) -> Shown {
    let numerator = suppress(&f.numerator.rows(), threshold);
    let denominator = f.denominator.map(|d| suppress(&d.rows(), threshold));
    let v = match (&denominator, f.unit) {
        (_, Unit::Count) => numerator.total.map(|n| n as f64),
        (Some(d), unit) => match (numerator.total, d.total) {
            (Some(n), Some(dt)) => value(unit, n, Some(dt)),
            _ => None,
        },
        (None, _) => None,
    };
    let def = indicators::indicator(f.id);
    Shown {
        id: f.id,
        unit: f.unit,
        numerator_definition: def.map_or("", |i| i.numerator),
        denominator_definition: def.map_or("", |i| i.denominator),
        value: v,
        numerator,
        denominator,
    }
}

/// Computes the indicators of `scope` and, for outside roles, suppresses and records the
/// disclosure (`format` says what left: json, csv, dhis2, page) in the same step.
pub async fn report(app: &App, me: &Actor, scope: &Scope, format: &str) -> Result<Vec<Shown>> {
    me.require(anxin_domain::Permission::IndicatorsRead)?;
    let mut inputs = app
        .store
        .indicator_inputs(scope.site.as_ref().map(|(id, _)| *id), &scope.period)
        .await?;
    inputs.apply_dropouts(app.settings.dropout_days, app.today());
    let figures = compute(&scope.period, &inputs);
    let threshold = if scope.suppressed {
        app.settings.suppression_threshold
    } else {
        0
    };
    if scope.suppressed {
        let mut event = AuditEvent::new("disclosure.cdc_export", "indicators", scope.site_label())
            .reason(format!(
                "{format} export of {} indicators, {} to {}, cells below {threshold} suppressed",
                figures.len(),
                scope.period.from,
                scope.period.to
            ));
        if let Some((id, _)) = &scope.site {
            event = event.site(*id);
        }
        app.store.audit(&me.audit(), event, app.now()).await?;
    }
    Ok(figures.iter().map(|f| show(f, threshold)).collect())
}

/// One cohort of the retention life table as shown: `None` is a hidden count or rate.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CohortShown {
    /// `2026-11` or `2026Q4`.
    pub cohort: String,
    /// Episodes of care that started in the cohort.
    pub started: Option<u64>,
    /// At 3, 6 and 12 months: episodes followed that long.
    pub at_risk: [Option<u64>; 3],
    /// At 3, 6 and 12 months: of those, still in treatment.
    pub retained: [Option<u64>; 3],
    /// At 3, 6 and 12 months: retained in percent of those at risk.
    pub percent: [Option<f64>; 3],
}

/// The retention life table of `scope` by enrolment cohort (`by`: month or quarter), from the
/// cohort 12 months before the period's end to the period's own, with the drop-out rule
/// applied. For outside roles every count from 1 to the threshold - 1 is hidden, and a rate
/// with it when its retained or lost count is one of those; the disclosure is recorded.
pub async fn life_table(
    app: &App,
    me: &Actor,
    scope: &Scope,
    by: indicators::CohortBy,
) -> Result<Vec<CohortShown>> {
    me.require(anxin_domain::Permission::IndicatorsRead)?;
    let mut inputs = app
        .store
        .indicator_inputs(scope.site.as_ref().map(|(id, _)| *id), &scope.period)
        .await?;
    inputs.apply_dropouts(app.settings.dropout_days, app.today());
    let rows = indicators::life_table(&scope.period, &inputs, by);
    let threshold = if scope.suppressed {
        app.settings.suppression_threshold
    } else {
        0
    };
    let small = |n: u64| n > 0 && n < threshold;
    let count = |n: u64| (!small(n)).then_some(n);
    let shown = rows
        .iter()
        .map(|r| {
            let mut at_risk = [None; 3];
            let mut retained = [None; 3];
            let mut percent = [None; 3];
            for i in 0..3 {
                at_risk[i] = count(r.at_risk[i]);
                retained[i] = count(r.retained[i]);
                let lost = r.at_risk[i] - r.retained[i];
                if !small(r.at_risk[i]) && !small(r.retained[i]) && !small(lost) {
                    percent[i] = r.percent(i);
                }
            }
            CohortShown {
                cohort: r.label.clone(),
                started: count(r.started),
                at_risk,
                retained,
                percent,
            }
        })
        .collect();
    if scope.suppressed {
        let mut event = AuditEvent::new("disclosure.cdc_export", "indicators", scope.site_label())
            .reason(format!(
                "retention life table, {} cohorts to {}, cells below {threshold} suppressed",
                rows.len(),
                scope.period.to
            ));
        if let Some((id, _)) = &scope.site {
            event = event.site(*id);
        }
        app.store.audit(&me.audit(), event, app.now()).await?;
    }
    Ok(shown)
}

fn cell_text(v: Option<u64>) -> String {
    v.map_or_else(|| "suppressed".to_owned(), |n| n.to_string())
}

/// The cells of a table with their sex and age-band labels, totals included (`total`).
fn labelled(t: &Suppressed) -> Vec<(&'static str, &'static str, Option<u64>)> {
    let mut out = Vec::new();
    for (r, sex) in Sex::ALL.iter().enumerate() {
        for (c, band) in AgeBand::ALL.iter().enumerate() {
            let v = t.cells.get(r).and_then(|row| row.get(c)).copied().flatten();
            out.push((sex.as_str(), band.as_str(), v));
        }
        out.push((
            sex.as_str(),
            "total",
            t.row_totals.get(r).copied().flatten(),
        ));
    }
    for (c, band) in AgeBand::ALL.iter().enumerate() {
        out.push((
            "total",
            band.as_str(),
            t.col_totals.get(c).copied().flatten(),
        ));
    }
    out.push(("total", "total", t.total));
    out
}

/// The report as CSV: one line per indicator, sex and age band (totals included).
pub fn to_csv(scope: &Scope, shown: &[Shown]) -> String {
    let mut out = String::from(
        "period_from,period_to,site,indicator,unit,sex,age_band,numerator,denominator\n",
    );
    for s in shown {
        let unit = match s.unit {
            Unit::Count => "count",
            Unit::Percent => "percent",
            Unit::PerPerson => "per_person",
        };
        let den = s.denominator.as_ref().map(labelled);
        for (i, (sex, band, n)) in labelled(&s.numerator).into_iter().enumerate() {
            let d = den
                .as_ref()
                .and_then(|d| d.get(i))
                .map_or(String::new(), |(_, _, v)| cell_text(*v));
            let _ = writeln!(
                out,
                "{},{},{},{},{unit},{sex},{band},{},{d}",
                scope.period.from,
                scope.period.to,
                scope.site_label(),
                s.id,
                cell_text(n)
            );
        }
    }
    out
}

/// Builds a DHIS2 `dataValueSets` payload: one data value per mapping entry whose cell is
/// published. Suppressed or unmapped cells are left out.
pub fn data_value_set(
    period: &str,
    org_unit: &str,
    shown: &[Shown],
    mapping: &[Dhis2Entry],
) -> DataValueSet {
    let mut values = Vec::new();
    for m in mapping {
        let (id, part) = match m.indicator.strip_suffix(".denominator") {
            Some(id) => (id, "denominator"),
            None => (m.indicator.as_str(), "numerator"),
        };
        let Some(s) = shown.iter().find(|s| s.id == id) else {
            continue;
        };
        let table = if part == "denominator" {
            s.denominator.as_ref()
        } else {
            Some(&s.numerator)
        };
        let Some(table) = table else { continue };
        let cell = labelled(table)
            .into_iter()
            .find(|(sex, band, _)| *sex == m.sex && *band == m.age_band)
            .and_then(|(_, _, v)| v);
        if let Some(v) = cell {
            values.push(DataValue {
                data_element: m.data_element.clone(),
                category_option_combo: m.category_option_combo.clone(),
                period: period.to_owned(),
                org_unit: org_unit.to_owned(),
                value: v.to_string(),
            });
        }
    }
    DataValueSet {
        data_values: values,
    }
}

fn check_entry(i: Option<usize>, e: &MappingEntry) -> std::result::Result<Dhis2Entry, Problem> {
    let field = |name: &str| match i {
        Some(i) => format!("entries[{i}].{name}"),
        None => name.to_owned(),
    };
    let choice = |name: &str, value: &str| {
        Problem::new(Code::ChoiceUnknown)
            .field(field(name))
            .arg("value", value)
    };
    let (id, den) = match e.indicator.trim().strip_suffix(".denominator") {
        Some(id) => (id, true),
        None => (e.indicator.trim(), false),
    };
    let Some(ind) = indicators::indicator(id) else {
        return Err(choice("indicator", e.indicator.trim()));
    };
    if den && ind.unit == Unit::Count {
        return Err(Problem::new(Code::Dhis2NoDenominator)
            .field(field("indicator"))
            .arg("indicator", id));
    }
    let sex = e.sex.trim();
    if sex != "total" && !Sex::ALL.iter().any(|s| s.as_str() == sex) {
        return Err(choice("sex", sex));
    }
    let band = e.age_band.trim();
    if band != "total" && !AgeBand::ALL.iter().any(|b| b.as_str() == band) {
        return Err(choice("age_band", band));
    }
    for (name, v) in [
        ("data_element", &e.data_element),
        ("category_option_combo", &e.category_option_combo),
    ] {
        if v.trim().is_empty() {
            return Err(Problem::new(Code::FieldRequired).field(field(name)));
        }
    }
    Ok(Dhis2Entry {
        indicator: e.indicator.trim().to_owned(),
        sex: sex.to_owned(),
        age_band: band.to_owned(),
        data_element: e.data_element.trim().to_owned(),
        category_option_combo: e.category_option_combo.trim().to_owned(),
    })
}

/// The ids a mapping line may name: every indicator, and `<id>.denominator` of each rate.
pub fn mappable_indicators() -> Vec<String> {
    let mut out = Vec::new();
    for i in indicators::CATALOGUE {
        out.push(i.id.to_owned());
        if i.unit != Unit::Count {
            out.push(format!("{}.denominator", i.id));
        }
    }
    out
}

/// Adds one line to the DHIS2 mapping (refused at its field; the same cell twice is refused).
pub async fn add_mapping_entry(app: &App, me: &Actor, e: &MappingEntry) -> Result<()> {
    me.require(anxin_domain::Permission::SiteManage)?;
    let entry = check_entry(None, e)?;
    let mut entries = app.store.dhis2_mapping().await?;
    if entries.iter().any(|x| {
        x.indicator == entry.indicator && x.sex == entry.sex && x.age_band == entry.age_band
    }) {
        return Err(Problem::new(Code::Dhis2DuplicateEntry)
            .field("indicator")
            .arg("indicator", &entry.indicator)
            .into());
    }
    entries.push(entry);
    app.store
        .set_dhis2_mapping(&me.audit(), &entries, app.now())
        .await?;
    Ok(())
}

/// Removes line `index` (0-based, in the order listed) of the DHIS2 mapping.
pub async fn remove_mapping_entry(app: &App, me: &Actor, index: usize) -> Result<()> {
    me.require(anxin_domain::Permission::SiteManage)?;
    let mut entries = app.store.dhis2_mapping().await?;
    if index >= entries.len() {
        return Err(DomainError::NotFound(format!("mapping line {}", index + 1)).into());
    }
    entries.remove(index);
    app.store
        .set_dhis2_mapping(&me.audit(), &entries, app.now())
        .await?;
    Ok(())
}

/// The first and last day of month `raw` (`YYYY-MM`), which must be over by `today`.
pub fn whole_month(raw: &str, today: NaiveDate) -> std::result::Result<Period, Problem> {
    let bad = || {
        Problem::new(Code::MonthInvalid)
            .field("month")
            .arg("value", raw.trim())
    };
    let from =
        NaiveDate::parse_from_str(&format!("{}-01", raw.trim()), "%Y-%m-%d").map_err(|_| bad())?;
    let to = from
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .ok_or_else(bad)?;
    if to >= today {
        return Err(bad());
    }
    Period::new(from, to).map_err(|_| bad())
}

/// The last month that is over on `today`, as `YYYY-MM`.
pub fn last_whole_month(today: NaiveDate) -> String {
    let first = today.with_day(1).unwrap_or(today);
    let prev = first.pred_opt().unwrap_or(first);
    prev.format("%Y-%m").to_string()
}

/// The DHIS2 mapping in force.
pub async fn mapping(app: &App, me: &Actor) -> Result<MappingView> {
    me.require(anxin_domain::Permission::IndicatorsRead)?;
    let entries = app.store.dhis2_mapping().await?;
    Ok(MappingView {
        entries: entries.iter().map(Dhis2EntryView::from).collect(),
    })
}

/// The DHIS2 mapping, for the administrator who edits it.
pub async fn mapping_entries(app: &App, me: &Actor) -> Result<MappingView> {
    me.require(anxin_domain::Permission::SiteManage)?;
    let entries = app.store.dhis2_mapping().await?;
    Ok(MappingView {
        entries: entries.iter().map(Dhis2EntryView::from).collect(),
    })
}

/// Replaces the whole DHIS2 mapping, each entry checked (the field named by its index).
pub async fn set_mapping(app: &App, me: &Actor, req: &MappingRequest) -> Result<()> {
    me.require(anxin_domain::Permission::SiteManage)?;
    let entries = req
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| check_entry(Some(i), e))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    app.store
        .set_dhis2_mapping(&me.audit(), &entries, app.now())
        .await?;
    Ok(())
}

/// A DHIS2 `dataValueSets` payload of `scope` for organisation unit `org_unit` (default: the
/// centre's code): refused unless the period is one calendar month or quarter and a mapping
/// is set; the disclosure is recorded as it leaves.
pub async fn dhis2_export(
    app: &App,
    me: &Actor,
    scope: &Scope,
    org_unit: Option<&str>,
) -> Result<DataValueSet> {
    let period = scope
        .period
        .dhis2()
        .ok_or_else(|| Problem::new(Code::Dhis2PeriodNotWhole).field("to"))?;
    let mapping = app.store.dhis2_mapping().await?;
    if mapping.is_empty() {
        return Err(Problem::new(Code::Dhis2NoMapping).into());
    }
    let org_unit = org_unit
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| scope.site_label())
        .to_owned();
    let shown = report(app, me, scope, "dhis2").await?;
    Ok(data_value_set(&period, &org_unit, &shown, &mapping))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            period: Period::new(
                NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            )
            .unwrap(),
            site: Some((1, "YX01".into())),
            suppressed: true,
        }
    }

    fn one(counts: [[u64; 3]; 3]) -> Vec<Shown> {
        let f = Figure {
            id: "hiv_tests",
            unit: Unit::Count,
            numerator: indicators::Grid(counts),
            denominator: None,
        };
        vec![show(&f, SUPPRESSION_THRESHOLD)]
    }

    #[test]
    fn a_trend_covers_the_twelve_months_before_this_one() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let months = last_months(d("2026-03-15"), 12);
        assert_eq!(months.len(), 12);
        assert_eq!(
            (months[0].from, months[0].to),
            (d("2025-03-01"), d("2025-03-31"))
        );
        assert_eq!(months[11].from, d("2026-02-01"));
        assert_eq!(
            months[11].to,
            d("2026-02-28"),
            "February ends on the 28th in 2026"
        );
    }

    #[test]
    fn csv_and_dhis2_leave_suppressed_cells_out() {
        let shown = one([[3, 20, 0], [12, 30, 7], [9, 8, 10]]);
        let csv = to_csv(&scope(), &shown);
        assert!(csv.starts_with("period_from,period_to,site,indicator"));
        assert!(
            csv.contains("2026-11-01,2026-11-30,YX01,hiv_tests,count,male,under_25,suppressed,\n")
        );
        assert!(csv.contains(",hiv_tests,count,total,total,99,\n"));
        let mapping = vec![
            Dhis2Entry {
                indicator: "hiv_tests".into(),
                sex: "male".into(),
                age_band: "under_25".into(),
                data_element: "DE1".into(),
                category_option_combo: "C1".into(),
            },
            Dhis2Entry {
                indicator: "hiv_tests".into(),
                sex: "total".into(),
                age_band: "total".into(),
                data_element: "DE1".into(),
                category_option_combo: "CT".into(),
            },
        ];
        let v = serde_json::to_value(data_value_set("202611", "OU1", &shown, &mapping))
            .expect("serialises");
        assert_eq!(
            v,
            json!({"dataValues": [{"dataElement": "DE1", "categoryOptionCombo": "CT",
                "period": "202611", "orgUnit": "OU1", "value": "99"}]})
        );
    }
}
