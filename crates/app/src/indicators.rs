//! The health indicators: what a report covers (period, one centre or the deployment), the
//! figures of `anxin_domain::indicators` computed over the store's inputs and, for the CDC and
//! the police, released through `anxin_domain::release` (reporting periods only; each count
//! perturbed by its cell key and hidden below the threshold) with the disclosure recorded in
//! the audit trail (`disclosure.cdc_export`) as it leaves; the CSV and DHIS2 `dataValueSets`
//! shapes; and the DHIS2 mapping.

use std::collections::HashMap;
use std::fmt::Write as _;

use anxin_domain::indicators::{
    self, compute, value, AgeBand, Figure, Period, Sex, Suppressed, Unit,
};
use anxin_domain::release::{CellKeys, Count, ReportingPeriod};
use anxin_domain::{Code, DomainError, Problem, Role};
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

/// The figures the police read (seed 004: "referral to treatment and MMT adherence could act as
/// performance indicators for both the police and CDC"): clients in MMT, retention, attendance,
/// take-home participation, referrals from the police, drop-outs and re-enrolments, and the
/// national programme's adherence figures, in catalogue order. No test result, no urine, no
/// dose, no overdose or death reaches them.
pub const SHARED_WITH_POLICE: &[&str] = &[
    "mmt_clients",
    "retention_3m",
    "retention_6m",
    "retention_12m",
    "mean_attendance",
    "take_home_participation",
    "referrals_police",
    "dropouts",
    "reenrolments",
    "nat_on_treatment",
    "nat_annual_retention",
    "nat_mean_duration",
];

/// Whether `role` may read indicator `id` (the police: [`SHARED_WITH_POLICE`] only).
pub fn shared_with(role: Role, id: &str) -> bool {
    role != Role::PsbOfficer || SHARED_WITH_POLICE.contains(&id)
}

/// The audit action of a release to `role`: to the police, or to the CDC.
fn disclosure_action(role: Role) -> &'static str {
    if role == Role::PsbOfficer {
        "disclosure.psb_export"
    } else {
        "disclosure.cdc_export"
    }
}

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
    let release = Release::of(app, scope);
    let threshold = app.settings.suppression_threshold;
    let site = scope.audit_site();
    let periods = last_months(app.today(), TREND_MONTHS);
    let followed: Vec<&'static str> = TREND_INDICATORS
        .into_iter()
        .filter(|id| shared_with(me.role, id))
        .collect();
    let mut months = Vec::with_capacity(periods.len());
    for period in &periods {
        let inputs = inputs_of(app, scope, period).await?;
        let figures = compute(period, &inputs);
        let values = followed
            .iter()
            .map(|id| {
                figures
                    .iter()
                    .find(|f| f.id == *id)
                    .and_then(|f| show(f, &release).value)
            })
            .collect();
        months.push(TrendMonth {
            month: period.from.format("%Y-%m").to_string(),
            values,
        });
    }
    if let (true, Some(first), Some(last)) = (scope.suppressed, periods.first(), periods.last()) {
        let mut event = AuditEvent::new(disclosure_action(me.role), "indicators", scope.site_label())
            .reason(format!(
                "trend of {} indicators, {} months, {} to {}, cell-key release, below {threshold} hidden",
                followed.len(),
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
        indicators: followed,
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

/// What a report is about: a period, and one site, an organisation unit or the whole
/// deployment.
#[derive(Debug, Clone)]
pub struct Scope {
    pub period: Period,
    /// One centre (`None` with `unit` also `None`: the whole deployment).
    pub site: Option<(i64, String)>,
    /// An organisation unit and the centres below it (`unit=CODE`, or an outside account's
    /// own unit).
    pub unit: Option<crate::org::UnitScope>,
    /// Suppressed (outside roles) or full (the centre's manager).
    pub suppressed: bool,
}

impl Scope {
    /// The centre's or unit's code, or `all`.
    pub fn site_label(&self) -> &str {
        match (&self.site, &self.unit) {
            (Some((_, code)), _) => code.as_str(),
            (None, Some(u)) => u.code.as_str(),
            (None, None) => "all",
        }
    }

    /// The centres the report reads (`None`: every centre).
    pub fn sites(&self) -> Option<Vec<i64>> {
        match (&self.site, &self.unit) {
            (Some((id, _)), _) => Some(vec![*id]),
            (None, Some(u)) => Some(u.sites.clone()),
            (None, None) => None,
        }
    }

    /// The query parameter that asks for the same place again: `site=CODE`, `unit=CODE` or
    /// `site=all`.
    pub fn place_query(&self) -> String {
        match (&self.site, &self.unit) {
            (None, Some(u)) => format!("unit={}", u.code),
            _ => format!("site={}", self.site_label()),
        }
    }

    /// The audit entry's site: the one centre's.
    fn audit_site(&self) -> Option<i64> {
        self.site.as_ref().map(|(id, _)| *id)
    }
}

/// Reads `from`, `to` and `site` or `unit` for `me`. Managers see only their own centre;
/// outside roles may ask for one centre (`site=CODE`), a unit (`unit=CODE`) or the deployment
/// (`site=all`, the default), within the unit their account is scoped to (`crate::org::resolve`).
pub async fn scope(app: &App, me: &Actor, q: &HashMap<String, String>) -> Result<Scope> {
    let outside = me.role.is_outside();
    let period = period_of(q, app.today(), outside)?;
    let (site, unit) = crate::org::resolve(
        app,
        me,
        q.get("site").map(String::as_str),
        q.get("unit").map(String::as_str),
    )
    .await?;
    Ok(Scope {
        period,
        site,
        unit,
        suppressed: outside,
    })
}

/// The period a request asks for: `period` (`2026-11`, `2026Q4`, `2026`), or `from` and `to`
/// (default: this month so far). Outside readers get reporting periods only: dates that are not
/// exactly one are refused at `from`, and without any their default is the last whole month.
pub fn period_of(q: &HashMap<String, String>, today: NaiveDate, outside: bool) -> Result<Period> {
    let given = |k: &str| q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    if let Some(raw) = given("period") {
        return ReportingPeriod::parse("period", raw)?
            .period()
            .ok_or_else(|| {
                Problem::new(Code::PeriodNotReporting)
                    .field("period")
                    .arg("value", raw)
                    .into()
            });
    }
    let (from, to) = (given("from"), given("to"));
    if outside && from.is_none() && to.is_none() {
        let last = last_months(today, 1);
        return last
            .first()
            .copied()
            .ok_or_else(|| DomainError::invalid("period", "no month is over yet").into());
    }
    let from = match from {
        Some(f) => parse_date("from", f)?,
        None => today.with_day(1).unwrap_or(today),
    };
    let to = match to {
        Some(t) => parse_date("to", t)?,
        None => today,
    };
    let period = Period::new(from, to)?;
    if outside && ReportingPeriod::of(&period).is_none() {
        return Err(Problem::new(Code::PeriodNotReporting)
            .field("from")
            .arg("value", format!("{from} – {to}"))
            .into());
    }
    Ok(period)
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

/// How a report's tables leave: exact to the centre's own staff; to outside readers through the
/// cell-key release, below the threshold hidden.
enum Release {
    Exact,
    Keyed { keys: CellKeys, threshold: u64 },
}

impl Release {
    fn of(app: &App, scope: &Scope) -> Release {
        if scope.suppressed {
            Release::Keyed {
                keys: CellKeys::new(app.vault.cell_key_secret()),
                threshold: app.settings.suppression_threshold,
            }
        } else {
            Release::Exact
        }
    }

    fn count(&self, c: Count) -> Option<u64> {
        match self {
            Release::Keyed { keys, threshold } => keys.publish_count(c, *threshold),
            Release::Exact => Some(c.n),
        }
    }

    fn table(&self, grid: &indicators::Grid) -> Suppressed {
        match self {
            Release::Keyed { keys, threshold } => keys.release(grid, *threshold),
            Release::Exact => {
                let some = |v: u64| Some(v);
                let rows = grid.rows();
                Suppressed {
                    cells: rows
                        .iter()
                        .map(|r| r.iter().copied().map(some).collect())
                        .collect(),
                    row_totals: rows.iter().map(|r| some(r.iter().sum())).collect(),
                    col_totals: (0..AgeBand::ALL.len())
                        .map(|c| some(rows.iter().map(|r| r[c]).sum()))
                        .collect(),
                    total: some(grid.total()),
                }
            }
        }
    }
}

fn show(f: &Figure, release: &Release) -> Shown {
    let numerator = release.table(&f.numerator);
    let denominator = f.denominator.map(|d| release.table(&d));
    let v = match (&denominator, f.unit) {
        (_, Unit::Count) => numerator.total.map(|n| n as f64),
        (Some(d), unit) => match (numerator.total, d.total) {
            // A share of its denominator stays at or below it once perturbed.
            (Some(n), Some(dt))
                if f.numerator.total() <= f.denominator.map_or(0, |d| d.total()) =>
            {
                value(unit, n.min(dt), Some(dt))
            }
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

/// The facts of `scope`'s centres over `period`, with the drop-out rule applied: what every
/// figure is computed from.
async fn inputs_of(app: &App, scope: &Scope, period: &Period) -> Result<indicators::Inputs> {
    let mut inputs = app
        .store
        .indicator_inputs_of(scope.sites().as_deref(), period)
        .await?;
    inputs.apply_dropouts(app.settings.dropout_days, app.today());
    Ok(inputs)
}

/// Computes the indicators of `scope` and, for outside roles, releases and records the
/// disclosure (`format` says what left: json, csv, dhis2, page) in the same step.
pub async fn report(app: &App, me: &Actor, scope: &Scope, format: &str) -> Result<Vec<Shown>> {
    me.require(anxin_domain::Permission::IndicatorsRead)?;
    let inputs = inputs_of(app, scope, &scope.period).await?;
    let mut figures = compute(&scope.period, &inputs);
    figures.retain(|f| shared_with(me.role, f.id));
    let release = Release::of(app, scope);
    let threshold = app.settings.suppression_threshold;
    if scope.suppressed {
        let mut event = AuditEvent::new(disclosure_action(me.role), "indicators", scope.site_label())
            .reason(format!(
                "{format} export of {} indicators, {} to {}, cell-key release, below {threshold} hidden",
                figures.len(),
                scope.period.from,
                scope.period.to
            ));
        if let Some((id, _)) = &scope.site {
            event = event.site(*id);
        }
        app.store.audit(&me.audit(), event, app.now()).await?;
    }
    Ok(figures.iter().map(|f| show(f, &release)).collect())
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
    let inputs = inputs_of(app, scope, &scope.period).await?;
    let rows = indicators::life_table(&scope.period, &inputs, by);
    let release = Release::of(app, scope);
    let threshold = app.settings.suppression_threshold;
    let shown = rows
        .iter()
        .map(|r| {
            let mut at_risk = [None; 3];
            let mut retained = [None; 3];
            let mut percent = [None; 3];
            for i in 0..3 {
                at_risk[i] = release.count(r.at_risk[i]);
                retained[i] = release.count(r.retained[i]);
                percent[i] =
                    anxin_domain::release::share(|c| release.count(c), r.at_risk[i], r.retained[i])
                        .and_then(|(base, kept)| value(Unit::Percent, kept, Some(base)));
            }
            CohortShown {
                cohort: r.label.clone(),
                started: release.count(r.started),
                at_risk,
                retained,
                percent,
            }
        })
        .collect();
    if scope.suppressed {
        let mut event =
            AuditEvent::new(disclosure_action(me.role), "indicators", scope.site_label()).reason(
                format!(
            "retention life table, {} cohorts to {}, cell-key release, below {threshold} hidden",
            rows.len(),
            scope.period.to
        ),
            );
        if let Some(id) = scope.audit_site() {
            event = event.site(id);
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
    me.require(anxin_domain::Permission::Dhis2Export)?;
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
    me.require(anxin_domain::Permission::Dhis2Export)?;
    if let (None, Some(unit)) = (&scope.site, &scope.unit) {
        return crate::units::dhis2_unit_export(app, me, scope, unit).await;
    }
    let period = ReportingPeriod::of(&scope.period)
        .map(ReportingPeriod::dhis2)
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
            unit: None,
            suppressed: true,
        }
    }

    fn one(counts: [[u64; 3]; 3]) -> Vec<Shown> {
        let f = Figure {
            id: "hiv_tests",
            unit: Unit::Count,
            numerator: indicators::Grid::from_counts(counts),
            denominator: None,
        };
        vec![show(
            &f,
            &Release::Keyed {
                keys: CellKeys::new([1; 32]),
                threshold: SUPPRESSION_THRESHOLD,
            },
        )]
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
        // The total of 99 leaves perturbed by at most 3, the same in the CSV and in DHIS2.
        let total = csv
            .lines()
            .find(|l| l.contains(",hiv_tests,count,total,total,"))
            .and_then(|l| l.split(',').nth(7))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("a published total");
        assert!(total.abs_diff(99) <= 3, "{total}");
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
                "period": "202611", "orgUnit": "OU1", "value": total.to_string()}]})
        );
    }
}
