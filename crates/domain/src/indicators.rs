//! The health indicators of the one-stop shop.
//!
//! This module owns the catalogue ([`CATALOGUE`]: each indicator's id and its written definition
//! of numerator, denominator and period), the computation over plain facts ([`compute`]), the
//! disaggregation by sex and age band (<25 / 25+ at the period's last day, "unknown" when the
//! record lacks it), and the shape of a published table ([`Suppressed`]). What an outside reader
//! may see of a table is decided in [`crate::release`]. No I/O: the caller gathers the facts for
//! a set of sites (or all sites) and a period.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::clinic::episodes::{with_dropouts, Episode, EpisodeEnd};
use crate::release::Count;
use crate::services::{ArvOutcome, ReferralSource, Service, TcEpisode, TcExit, TestResult};
use crate::DomainError;

/// A reporting period, both days included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// A period; refuses one that ends before it starts (naming `to`).
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Period, DomainError> {
        if to < from {
            return Err(DomainError::invalid(
                "to",
                format!("the period ends ({to}) before it starts ({from})"),
            ));
        }
        Ok(Period { from, to })
    }

    /// Whether `d` falls in the period.
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }
}

/// Sex as recorded; missing is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
    Unknown,
}

impl Sex {
    /// Rows of every disaggregated table, in order.
    pub const ALL: [Sex; 3] = [Sex::Male, Sex::Female, Sex::Unknown];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::Unknown => "unknown",
        }
    }

    /// Parses `male`/`m`, `female`/`f`; anything missing is unknown, anything else refused.
    pub fn parse(field: &str, raw: Option<&str>) -> Result<Sex, DomainError> {
        match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("unknown") => Ok(Sex::Unknown),
            Some("m" | "male") => Ok(Sex::Male),
            Some("f" | "female") => Ok(Sex::Female),
            Some(other) => Err(DomainError::invalid(
                field,
                format!("`{other}` is not a sex; use male, female or unknown"),
            )),
        }
    }
}

/// Age band at the last day of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeBand {
    Under25,
    From25,
    Unknown,
}

impl AgeBand {
    /// Columns of every disaggregated table, in order.
    pub const ALL: [AgeBand; 3] = [AgeBand::Under25, AgeBand::From25, AgeBand::Unknown];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgeBand::Under25 => "under_25",
            AgeBand::From25 => "25_plus",
            AgeBand::Unknown => "unknown",
        }
    }

    /// The band of someone born in `birth_year`, on `on` (age counted in calendar years).
    pub fn of(birth_year: Option<i32>, on: NaiveDate) -> AgeBand {
        match birth_year {
            None => AgeBand::Unknown,
            Some(y) if on.year() - y < 25 => AgeBand::Under25,
            Some(_) => AgeBand::From25,
        }
    }
}

/// Who a fact is about, for disaggregation only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who {
    pub sex: Sex,
    pub birth_year: Option<i32>,
    /// The record the fact belongs to (a client's id, or an anonymous contact's encounter id
    /// with the top bit set), for the cell keys of [`crate::release`] only: it never leaves
    /// this crate's computations, and a published table carries no trace of it.
    pub record: u64,
}

/// A set of days, kept as a bitmap from its first day: cheap to fill from the database (a
/// province's month is over a million client-days) and to count over a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaySet {
    /// The day of bit 0 of `bits[0]`; `None` until a first day is known.
    first: Option<NaiveDate>,
    bits: Vec<u64>,
}

impl DaySet {
    /// An empty set.
    pub fn new() -> DaySet {
        DaySet::default()
    }

    /// An empty set whose days are expected from `first` on (days before it still fit, at the
    /// cost of moving the bitmap).
    pub fn starting(first: NaiveDate) -> DaySet {
        DaySet {
            first: Some(first),
            bits: Vec::new(),
        }
    }

    /// The bit position of `d`, or `None` when it lies outside the bitmap.
    fn position(&self, d: NaiveDate) -> Option<usize> {
        let off = (d - self.first?).num_days();
        usize::try_from(off)
            .ok()
            .filter(|o| *o < self.bits.len() * 64)
    }

    /// Adds `d`; answers whether it was new.
    pub fn insert(&mut self, d: NaiveDate) -> bool {
        let first = *self.first.get_or_insert(d);
        let mut off = (d - first).num_days();
        if off < 0 {
            // Grow to the left by whole words, so every stored bit keeps its place in a word.
            let words = (-off + 63) / 64;
            self.first = Some(first - chrono::Duration::days(words * 64));
            self.bits
                .splice(0..0, std::iter::repeat_n(0, words as usize));
            off += words * 64;
        }
        let (w, b) = ((off / 64) as usize, off % 64);
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        let was = self.bits[w] & (1 << b) != 0;
        self.bits[w] |= 1 << b;
        !was
    }

    /// Adds the day `start + i` for every bit `i` set in `mask`: a month of days in one step
    /// (the database keeps a client's month of doses as such a mask).
    pub fn insert_bits(&mut self, start: NaiveDate, mask: u64) {
        if mask == 0 {
            return;
        }
        // Inserting the lowest day grows the bitmap to the left if it must, and sets `first`.
        self.insert(start + chrono::Duration::days(i64::from(mask.trailing_zeros())));
        let Some(first) = self.first else { return };
        let off = (start - first).num_days();
        // A start before `first` has no set bit there (the lowest day is inside the bitmap).
        let (mask, off) = if off < 0 {
            (mask >> (-off).min(63), 0)
        } else {
            (mask, off as usize)
        };
        let (w, b) = (off / 64, off % 64);
        // The part of the mask that spills into the next word.
        let spill = if b == 0 { 0 } else { mask >> (64 - b) };
        let need = if spill == 0 { w + 1 } else { w + 2 };
        if need > self.bits.len() {
            self.bits.resize(need, 0);
        }
        self.bits[w] |= mask << b;
        if spill != 0 {
            self.bits[w + 1] |= spill;
        }
    }

    /// Removes `d`; answers whether it was there.
    pub fn remove(&mut self, d: NaiveDate) -> bool {
        let Some(pos) = self.position(d) else {
            return false;
        };
        let was = self.bits[pos / 64] & (1 << (pos % 64)) != 0;
        self.bits[pos / 64] &= !(1 << (pos % 64));
        was
    }

    /// Whether `d` is in the set.
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.position(d)
            .is_some_and(|pos| self.bits[pos / 64] & (1 << (pos % 64)) != 0)
    }

    /// How many days the set holds.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set holds no day.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// How many days of the set fall from `from` to `to`, both included (0 when `to < from`).
    pub fn count_in(&self, from: NaiveDate, to: NaiveDate) -> u64 {
        let Some(first) = self.first else { return 0 };
        let end = (self.bits.len() * 64) as i64;
        let lo = (from - first).num_days().max(0);
        let hi = ((to - first).num_days() + 1).min(end); // exclusive
        if lo >= hi {
            return 0;
        }
        let (lo, hi) = (lo as usize, hi as usize);
        let mut n = 0;
        for w in lo / 64..=(hi - 1) / 64 {
            let mut word = self.bits[w];
            if w == lo / 64 {
                word &= u64::MAX << (lo % 64);
            }
            if w == (hi - 1) / 64 && hi % 64 != 0 {
                word &= u64::MAX >> (64 - hi % 64);
            }
            n += u64::from(word.count_ones());
        }
        n
    }

    /// The days, in order.
    pub fn iter(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        let first = self.first;
        self.offsets()
            .filter_map(move |o| first.map(|f| f + chrono::Duration::days(o)))
    }

    /// The day of offset 0 of [`DaySet::offsets`] (`None` while nothing was ever added).
    pub fn first_day(&self) -> Option<NaiveDate> {
        self.first
    }

    /// The days as offsets from [`DaySet::first_day`], in order, a word at a time.
    pub fn offsets(&self) -> impl Iterator<Item = i64> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let b = rest.trailing_zeros();
                rest &= rest - 1;
                Some((w * 64) as i64 + i64::from(b))
            })
        })
    }

    /// The days of either set (word by word when both start on the same day).
    pub fn union(&self, other: &DaySet) -> DaySet {
        if self.first == other.first || other.is_empty() || self.is_empty() {
            let (mut out, add) = if other.is_empty() || self.first == other.first {
                (self.clone(), other)
            } else {
                (other.clone(), self)
            };
            if out.first == add.first {
                if add.bits.len() > out.bits.len() {
                    out.bits.resize(add.bits.len(), 0);
                }
                for (w, word) in add.bits.iter().enumerate() {
                    out.bits[w] |= word;
                }
            }
            return out;
        }
        let mut out = self.clone();
        out.extend(other.iter());
        out
    }
}

impl Extend<NaiveDate> for DaySet {
    fn extend<I: IntoIterator<Item = NaiveDate>>(&mut self, days: I) {
        for d in days {
            self.insert(d);
        }
    }
}

impl FromIterator<NaiveDate> for DaySet {
    fn from_iter<I: IntoIterator<Item = NaiveDate>>(days: I) -> DaySet {
        let mut set = DaySet::new();
        set.extend(days);
        set
    }
}

impl<const N: usize> From<[NaiveDate; N]> for DaySet {
    fn from(days: [NaiveDate; N]) -> DaySet {
        days.into_iter().collect()
    }
}

/// A screening test counted by the national programme's testing rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Screening {
    Hiv,
    Hcv,
    Syphilis,
}

/// What the indicators need to know about one enrolled client.
#[derive(Debug, Clone)]
pub struct ClientFacts {
    pub who: Who,
    pub enrolled_on: NaiveDate,
    pub discharged_on: Option<NaiveDate>,
    /// The client's episodes of care at the report's scope, in order, with the drop-out rule
    /// applied ([`Inputs::apply_dropouts`]). Empty: one episode from `enrolled_on` to
    /// `discharged_on` (records read without episodes).
    pub episodes: Vec<Episode>,
    /// Days with an observed (or guest) dose.
    pub dose_days: DaySet,
    /// Days with a take-home dose.
    pub take_home_days: DaySet,
    /// Milligrams of methadone dispensed in the period (observed, guest and take-home doses).
    pub dose_mg: u64,
    /// Urine tests: collection day and whether negative for non-prescribed opioids.
    pub urine: Vec<(NaiveDate, bool)>,
    /// Screening tests the client had, by test day.
    pub screenings: Vec<(NaiveDate, Screening)>,
}

impl ClientFacts {
    /// Facts with one episode from `enrolled_on` to `discharged_on` and nothing else.
    pub fn new(who: Who, enrolled_on: NaiveDate, discharged_on: Option<NaiveDate>) -> ClientFacts {
        ClientFacts {
            who,
            enrolled_on,
            discharged_on,
            episodes: Vec::new(),
            dose_days: DaySet::new(),
            take_home_days: DaySet::new(),
            dose_mg: 0,
            urine: Vec::new(),
            screenings: Vec::new(),
        }
    }

    /// The episodes the figures count (see [`ClientFacts::episodes`]).
    pub fn episodes(&self) -> Vec<Episode> {
        if self.episodes.is_empty() {
            let ep = Episode::open(self.enrolled_on);
            vec![match self.discharged_on {
                Some(x) => ep.ended(x, EpisodeEnd::Discharge),
                None => ep,
            }]
        } else {
            self.episodes.clone()
        }
    }

    /// Whether the client is in one of the counted episodes on `d`.
    pub fn in_treatment_on(&self, d: NaiveDate) -> bool {
        self.episodes().iter().any(|e| e.covers(d))
    }

    /// Days with any dose (observed, guest, take-home): what the drop-out rule looks at.
    pub fn any_dose_days(&self) -> DaySet {
        self.dose_days.union(&self.take_home_days)
    }
}

/// One service encounter (enrolled client or anonymous contact).
#[derive(Debug, Clone)]
pub struct EncounterFact {
    pub who: Who,
    pub on: NaiveDate,
    pub service: Service,
}

/// One therapeutic-community episode.
#[derive(Debug, Clone)]
pub struct TcFact {
    pub who: Who,
    pub episode: TcEpisode,
}

/// One overdose event of a client.
#[derive(Debug, Clone, Copy)]
pub struct OverdoseFact {
    pub who: Who,
    pub on: NaiveDate,
    pub naloxone: bool,
}

/// One client's death.
#[derive(Debug, Clone, Copy)]
pub struct DeathFact {
    pub who: Who,
    pub on: NaiveDate,
}

/// Everything gathered for a site (or all sites).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub clients: Vec<ClientFacts>,
    pub encounters: Vec<EncounterFact>,
    pub tc: Vec<TcFact>,
    /// Overdose events in the period (gathered for the period only).
    pub overdoses: Vec<OverdoseFact>,
    /// Deaths in the period (gathered for the period only).
    pub deaths: Vec<DeathFact>,
    /// The first day from which every client's dose days were read (`None`: all of them).
    pub doses_known_from: Option<NaiveDate>,
}

impl Inputs {
    /// Applies the drop-out rule (`n` consecutive days without a dose, known by `today`) to
    /// every client's episodes ([`with_dropouts`]).
    pub fn apply_dropouts(&mut self, n: u32, today: NaiveDate) {
        let known_from = self.doses_known_from;
        for c in &mut self.clients {
            let recorded = c.episodes();
            c.episodes = with_dropouts(&recorded, &c.any_dose_days(), n, today, known_from);
        }
    }
}

/// How an indicator's value reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// The numerator alone.
    Count,
    /// 100 × numerator / denominator.
    Percent,
    /// Numerator / denominator (e.g. days per client).
    PerPerson,
}

/// An entry of the catalogue.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Indicator {
    pub id: &'static str,
    pub unit: Unit,
    pub numerator: &'static str,
    /// Empty for counts.
    pub denominator: &'static str,
    /// The same definitions in Simplified Chinese.
    pub numerator_zh: &'static str,
    pub denominator_zh: &'static str,
}

impl Indicator {
    /// The (numerator, denominator) definitions in the language of `tag` (`zh…` is Simplified
    /// Chinese, anything else English).
    pub fn definitions(&self, tag: &str) -> (&'static str, &'static str) {
        if tag.to_ascii_lowercase().starts_with("zh") {
            (self.numerator_zh, self.denominator_zh)
        } else {
            (self.numerator, self.denominator)
        }
    }
}

macro_rules! ind {
    ($id:literal, $unit:ident, $num:literal, $den:literal, $num_zh:literal, $den_zh:literal) => {
        Indicator {
            id: $id,
            unit: Unit::$unit,
            numerator: $num,
            denominator: $den,
            numerator_zh: $num_zh,
            denominator_zh: $den_zh,
        }
    };
}

/// Every indicator, in report order. Each is disaggregated by sex and by age band at the last
/// day of the period; "in the period" means on a day from `from` to `to`, both included.
pub const CATALOGUE: &[Indicator] = &[
    ind!("mmt_clients", Count,
        "Clients in MMT on the last day of the period: in an episode of care that started on or before it and had not ended by it (ended by discharge, transfer, drop-out, compulsory isolated treatment or death).", "",
        "期末最后一天仍在接受美沙酮维持治疗的服务对象：其治疗期在该日或之前开始，且在该日之前未结束（出组、转出、脱失、强制隔离戒毒或死亡均为结束）。", ""),
    ind!("retention_3m", Percent,
        "Of the denominator, episodes not ended on or before their 3-month anniversary (a drop-out ends an episode; a return opens a new one).",
        "Episodes of care whose start date plus 3 months falls in the period (the cohort that started 3 months earlier).",
        "分母中在满 3 个月之日及之前未结束的治疗期（脱失即结束；复治另开新治疗期）。", "开始日期加 3 个月落在本期内的治疗期（3 个月前开始的队列）。"),
    ind!("retention_6m", Percent,
        "Of the denominator, episodes not ended on or before their 6-month anniversary (a drop-out ends an episode; a return opens a new one).",
        "Episodes of care whose start date plus 6 months falls in the period.",
        "分母中在满 6 个月之日及之前未结束的治疗期（脱失即结束；复治另开新治疗期）。", "开始日期加 6 个月落在本期内的治疗期。"),
    ind!("retention_12m", Percent,
        "Of the denominator, episodes not ended on or before their 12-month anniversary (a drop-out ends an episode; a return opens a new one).",
        "Episodes of care whose start date plus 12 months falls in the period.",
        "分母中在满 12 个月之日及之前未结束的治疗期（脱失即结束；复治另开新治疗期）。", "开始日期加 12 个月落在本期内的治疗期。"),
    ind!("mean_attendance", PerPerson,
        "Client-days in the period with a dose, counted while in treatment.",
        "Clients in MMT on at least one day of the period.",
        "本期内在治疗期间有服药记录的人日数。", "本期内至少有一天在接受美沙酮维持治疗的服务对象。"),
    ind!("take_home_participation", Percent,
        "Of the denominator, clients with at least one take-home day in the period.",
        "Clients in MMT on the last day of the period.",
        "分母中本期内至少有一天带药回家的服务对象。", "期末最后一天仍在接受美沙酮维持治疗的服务对象。"),
    ind!("urine_negative_rate", Percent,
        "Urine tests collected in the period negative for every non-prescribed opioid.",
        "Urine tests of enrolled clients collected in the period.",
        "本期内采集、所有非处方阿片类均为阴性的尿检。", "本期内采集的在册服务对象尿检。"),
    ind!("hiv_tests", Count, "HIV tests whose test date falls in the period.", "",
        "检测日期在本期内的艾滋病病毒检测。", ""),
    ind!("hiv_positivity", Percent,
        "HIV tests in the period with a positive result.", "HIV tests in the period with a result recorded.",
        "本期内结果为阳性的艾滋病病毒检测。", "本期内已登记结果的艾滋病病毒检测。"),
    ind!("hiv_told_result", Percent,
        "HIV tests in the period whose result the person learned.", "HIV tests in the period with a result recorded.",
        "本期内受检者已得知结果的艾滋病病毒检测。", "本期内已登记结果的艾滋病病毒检测。"),
    ind!("hcv_tests", Count, "HCV tests whose test date falls in the period.", "",
        "检测日期在本期内的丙肝检测。", ""),
    ind!("hcv_positivity", Percent,
        "HCV tests in the period with a positive result.", "HCV tests in the period with a result recorded.",
        "本期内结果为阳性的丙肝检测。", "本期内已登记结果的丙肝检测。"),
    ind!("tb_tests", Count, "TB tests whose test date falls in the period.", "",
        "检测日期在本期内的结核病检测。", ""),
    ind!("tb_positivity", Percent,
        "TB tests in the period with a positive result.", "TB tests in the period with a result recorded.",
        "本期内结果为阳性的结核病检测。", "本期内已登记结果的结核病检测。"),
    ind!("arv_linkage", Percent,
        "Referrals to ARV treatment made in the period whose outcome is linked.",
        "Referrals to ARV treatment made in the period.",
        "本期内转介且结果为已接受治疗的抗病毒治疗转介。", "本期内的抗病毒治疗转介。"),
    ind!("needles_given", Count, "Needles and syringes given out in exchanges in the period.", "",
        "本期内针具交换中发放的针具。", ""),
    ind!("needles_returned", Count, "Needles and syringes taken back in exchanges in the period.", "",
        "本期内针具交换中回收的针具。", ""),
    ind!("needle_return_rate", Percent,
        "Needles returned in the period.", "Needles given in the period.",
        "本期内回收的针具。", "本期内发放的针具。"),
    ind!("naloxone_kits", Count, "Naloxone kits handed out in the period.", "",
        "本期内发放的纳洛酮包。", ""),
    ind!("referrals_police", Count, "Referrals into treatment received from the police in the period.", "",
        "本期内由公安转介入治疗的人次。", ""),
    ind!("referrals_outreach", Count, "Referrals into treatment received from outreach in the period.", "",
        "本期内由外展转介入治疗的人次。", ""),
    ind!("referrals_family", Count, "Referrals into treatment received from families in the period.", "",
        "本期内由家属转介入治疗的人次。", ""),
    ind!("referrals_self", Count, "Self-referrals into treatment in the period.", "",
        "本期内主动求治的人次。", ""),
    ind!("tc_completion", Percent,
        "Therapeutic-community residences that ended in the period by completion.",
        "Therapeutic-community residences that ended (completed or dropped out) in the period.",
        "本期内以完成结束的治疗社区住院。", "本期内结束（完成或脱失）的治疗社区住院。"),
    ind!("tc_relapse_6m", Percent,
        "Of the denominator, those whose 6-month urine was positive.",
        "Completed residences whose leaving day plus 6 months falls in the period and whose 6-month urine is recorded.",
        "分母中 6 个月随访尿检为阳性者。", "离开日期加 6 个月落在本期内、且已登记 6 个月尿检结果的已完成住院。"),
    ind!("tc_relapse_12m", Percent,
        "Of the denominator, those whose 12-month urine was positive.",
        "Completed residences whose leaving day plus 12 months falls in the period and whose 12-month urine is recorded.",
        "分母中 12 个月随访尿检为阳性者。", "离开日期加 12 个月落在本期内、且已登记 12 个月尿检结果的已完成住院。"),
    ind!("overdoses", Count, "Overdose events of clients whose day falls in the period, whatever their outcome.", "",
        "本期内发生的服务对象过量事件（不论结局）。", ""),
    ind!("overdoses_naloxone", Count, "Of the overdose events in the period, those in which naloxone was given.", "",
        "本期内过量事件中使用了纳洛酮的事件。", ""),
    ind!("deaths", Count, "Clients whose recorded day of death falls in the period, whatever the cause.", "",
        "死亡日期在本期内的服务对象（不论死因）。", ""),
    ind!("dropouts", Count,
        "Episodes of care ended by drop-out in the period: the drop-out day (the last of the consecutive days without a dose that the rule counts) falls in the period.", "",
        "本期内因脱失而结束的治疗期：脱失日（规则所计连续未服药天数的最后一天）落在本期内。", ""),
    ind!("reenrolments", Count,
        "Episodes of care started in the period by a dose after a drop-out.", "",
        "本期内脱失后再次服药而开始的治疗期（复治）。", ""),
    ind!("nat_on_treatment", Count,
        "National programme: clients still on treatment at the end of the period (for a year, at year end): in an open episode on the period's last day.", "",
        "国家项目：期末（年度报告即年末）仍在治疗的服务对象：期末最后一天处于未结束的治疗期。", ""),
    ind!("nat_annual_retention", Percent,
        "National programme: clients who received at least one dose in the last calendar month of the period (December for a year).",
        "Clients who received at least one dose in the period.",
        "国家项目：本期最后一个自然月（年度报告即 12 月）内至少服药一次的服务对象。", "本期内至少服药一次的服务对象。"),
    ind!("nat_mean_duration", PerPerson,
        "National programme: days in treatment, from the start of each client's latest episode of care in the period to its end or the period's last day.",
        "Clients in treatment on at least one day of the period.",
        "国家项目：在治疗天数，自每名服务对象本期内最近一个治疗期开始之日至其结束或期末。", "本期内至少有一天在治疗的服务对象。"),
    ind!("nat_mean_daily_dose", PerPerson,
        "National programme: milligrams of methadone dispensed in the period (observed, guest and take-home doses).",
        "Client-days with a dose in the period.",
        "国家项目：本期内发放的美沙酮毫克数（现场、异地及带药）。", "本期内有服药记录的人日数。"),
    ind!("nat_opioid_use_rate", Percent,
        "National programme (concurrent opioid use): urine tests collected in the period positive for a non-prescribed opioid.",
        "Urine tests of enrolled clients collected in the period.",
        "国家项目（合并使用阿片类）：本期内采集、非处方阿片类阳性的尿检。", "本期内采集的在册服务对象尿检。"),
    ind!("nat_hiv_testing_rate", Percent,
        "National programme: clients in treatment in the period with an HIV test dated in the period.",
        "Clients in treatment on at least one day of the period.",
        "国家项目：本期内在治疗、且有检测日期在本期内的艾滋病病毒检测的服务对象。", "本期内至少有一天在治疗的服务对象。"),
    ind!("nat_hcv_testing_rate", Percent,
        "National programme: clients in treatment in the period with an HCV test dated in the period.",
        "Clients in treatment on at least one day of the period.",
        "国家项目：本期内在治疗、且有检测日期在本期内的丙肝检测的服务对象。", "本期内至少有一天在治疗的服务对象。"),
    ind!("nat_syphilis_testing_rate", Percent,
        "National programme: clients in treatment in the period with a syphilis test dated in the period.",
        "Clients in treatment on at least one day of the period.",
        "国家项目：本期内在治疗、且有检测日期在本期内的梅毒检测的服务对象。", "本期内至少有一天在治疗的服务对象。"),
];

/// The catalogue entry with this id.
pub fn indicator(id: &str) -> Option<&'static Indicator> {
    CATALOGUE.iter().find(|i| i.id == id)
}

/// Counts by sex (rows, [`Sex::ALL`]) and age band (columns, [`AgeBand::ALL`]), and beside each
/// count the fingerprint of what it counts (see [`crate::release`]), never serialised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Grid(pub [[u64; 3]; 3], #[serde(skip)] pub(crate) [[u64; 3]; 3]);

impl Grid {
    /// A grid of these counts (the fingerprints of a grid built by hand are all zero).
    pub fn from_counts(counts: [[u64; 3]; 3]) -> Grid {
        Grid(counts, [[0; 3]; 3])
    }

    fn add(&mut self, who: Who, on: NaiveDate, n: u64) {
        let r = Sex::ALL.iter().position(|s| *s == who.sex).unwrap_or(2);
        let band = AgeBand::of(who.birth_year, on);
        let c = AgeBand::ALL.iter().position(|b| *b == band).unwrap_or(2);
        self.0[r][c] += n;
        self.1[r][c] = self.1[r][c].wrapping_add(crate::release::contribution(who.record, n));
    }

    /// The sum of every cell.
    pub fn total(&self) -> u64 {
        self.0.iter().flatten().sum()
    }

    /// The cells as rows of a table.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.0.iter().map(|r| r.to_vec()).collect()
    }
}

/// One computed indicator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub id: &'static str,
    pub unit: Unit,
    pub numerator: Grid,
    /// `None` for counts.
    pub denominator: Option<Grid>,
}

impl Figure {
    /// The value over everybody.
    pub fn value(&self) -> Option<f64> {
        value(
            self.unit,
            self.numerator.total(),
            self.denominator.map(|d| d.total()),
        )
    }
}

/// The value of `numerator` over `denominator` in `unit` (`None` when dividing by zero).
pub fn value(unit: Unit, numerator: u64, denominator: Option<u64>) -> Option<f64> {
    match (unit, denominator) {
        (Unit::Count, _) => Some(numerator as f64),
        (_, None) | (_, Some(0)) => None,
        (Unit::Percent, Some(d)) => Some(100.0 * numerator as f64 / d as f64),
        (Unit::PerPerson, Some(d)) => Some(numerator as f64 / d as f64),
    }
}

fn tested_in(tested_on: &Option<NaiveDate>, p: &Period) -> bool {
    tested_on.is_some_and(|d| p.contains(d))
}

/// Computes every indicator of the [`CATALOGUE`], in its order.
pub fn compute(p: &Period, inputs: &Inputs) -> Vec<Figure> {
    let end = p.to;
    let mut out = Vec::with_capacity(CATALOGUE.len());
    let mut push = |id: &'static str, num: Grid, den: Option<Grid>| {
        let unit = indicator(id).map_or(Unit::Count, |i| i.unit);
        out.push(Figure {
            id,
            unit,
            numerator: num,
            denominator: den,
        });
    };

    // Each client's episodes, once (with the drop-out rule applied by the caller).
    let episodes: Vec<Vec<Episode>> = inputs.clients.iter().map(|c| c.episodes()).collect();

    // Clients in MMT on the last day, and take-home participation among them.
    let (mut mmt, mut th) = (Grid::default(), Grid::default());
    for (c, eps) in inputs.clients.iter().zip(&episodes) {
        if !eps.iter().any(|e| e.covers(end)) {
            continue;
        }
        mmt.add(c.who, end, 1);
        if c.take_home_days.count_in(p.from, p.to) > 0 {
            th.add(c.who, end, 1);
        }
    }
    push("mmt_clients", mmt, None);

    for months in [3u32, 6, 12] {
        let (mut num, mut den) = (Grid::default(), Grid::default());
        for (c, eps) in inputs.clients.iter().zip(&episodes) {
            for e in eps {
                let Some(anniversary) = e.started_on.checked_add_months(Months::new(months)) else {
                    continue;
                };
                if p.contains(anniversary) {
                    den.add(c.who, end, 1);
                    if e.ended_on.is_none_or(|x| x > anniversary) {
                        num.add(c.who, end, 1);
                    }
                }
            }
        }
        let id = match months {
            3 => "retention_3m",
            6 => "retention_6m",
            _ => "retention_12m",
        };
        push(id, num, Some(den));
    }

    // Clients in treatment on some day of the period, with their dose days while in it.
    let (mut days, mut clients) = (Grid::default(), Grid::default());
    for (c, eps) in inputs.clients.iter().zip(&episodes) {
        let mut any = false;
        let mut n = 0;
        for e in eps.iter().filter(|e| e.overlaps(p.from, p.to)) {
            any = true;
            // Days of the period in this episode: from the later of the period's start and
            // the episode's to the earlier of the period's end and the episode's last day.
            let first = p.from.max(e.started_on);
            let last = e
                .ended_on
                .and_then(|x| x.pred_opt())
                .map_or(p.to, |x| x.min(p.to));
            n += c.dose_days.count_in(first, last);
        }
        if any {
            clients.add(c.who, end, 1);
            days.add(c.who, end, n);
        }
    }
    push("mean_attendance", days, Some(clients));
    push("take_home_participation", th, Some(mmt));

    let (mut neg, mut tests) = (Grid::default(), Grid::default());
    for c in &inputs.clients {
        for (d, negative) in &c.urine {
            if p.contains(*d) {
                tests.add(c.who, end, 1);
                if *negative {
                    neg.add(c.who, end, 1);
                }
            }
        }
    }
    push("urine_negative_rate", neg, Some(tests));

    // Tests: (done, positive, with a result, told).
    let mut hiv = [Grid::default(); 4];
    let mut hcv = [Grid::default(); 3];
    let mut tb = [Grid::default(); 3];
    let (mut arv_linked, mut arv_all) = (Grid::default(), Grid::default());
    let (mut given, mut returned, mut naloxone) =
        (Grid::default(), Grid::default(), Grid::default());
    let mut referrals = [Grid::default(); 4];
    let count_test = |g: &mut [Grid], who: Who, result: &Option<TestResult>| {
        g[0].add(who, end, 1);
        if let Some(r) = result {
            g[2].add(who, end, 1);
            if *r == TestResult::Positive {
                g[1].add(who, end, 1);
            }
        }
    };
    for e in &inputs.encounters {
        match &e.service {
            Service::HivTest {
                tested_on,
                result,
                told_result,
                ..
            } if tested_in(tested_on, p) => {
                count_test(&mut hiv, e.who, result);
                if *told_result && result.is_some() {
                    hiv[3].add(e.who, end, 1);
                }
            }
            Service::HcvTest { tested_on, result } if tested_in(tested_on, p) => {
                count_test(&mut hcv, e.who, result)
            }
            Service::TbTest { tested_on, result } if tested_in(tested_on, p) => {
                count_test(&mut tb, e.who, result)
            }
            Service::ArvReferral {
                referred_on,
                outcome,
                ..
            } if p.contains(*referred_on) => {
                arv_all.add(e.who, end, 1);
                if *outcome == ArvOutcome::Linked {
                    arv_linked.add(e.who, end, 1);
                }
            }
            Service::NeedleExchange {
                given: g,
                returned: r,
                ..
            } if p.contains(e.on) => {
                given.add(e.who, end, u64::from(*g));
                returned.add(e.who, end, u64::from(*r));
            }
            Service::Naloxone { kits } if p.contains(e.on) => {
                naloxone.add(e.who, end, u64::from(*kits))
            }
            Service::ReferralIn { source } if p.contains(e.on) => {
                let i = ReferralSource::ALL
                    .iter()
                    .position(|s| s == source)
                    .unwrap_or(0);
                referrals[i].add(e.who, end, 1);
            }
            _ => {}
        }
    }
    push("hiv_tests", hiv[0], None);
    push("hiv_positivity", hiv[1], Some(hiv[2]));
    push("hiv_told_result", hiv[3], Some(hiv[2]));
    push("hcv_tests", hcv[0], None);
    push("hcv_positivity", hcv[1], Some(hcv[2]));
    push("tb_tests", tb[0], None);
    push("tb_positivity", tb[1], Some(tb[2]));
    push("arv_linkage", arv_linked, Some(arv_all));
    push("needles_given", given, None);
    push("needles_returned", returned, None);
    push("needle_return_rate", returned, Some(given));
    push("naloxone_kits", naloxone, None);
    push("referrals_police", referrals[0], None);
    push("referrals_outreach", referrals[1], None);
    push("referrals_family", referrals[2], None);
    push("referrals_self", referrals[3], None);

    let (mut done, mut ended) = (Grid::default(), Grid::default());
    let mut relapse = [(Grid::default(), Grid::default()); 2];
    for t in &inputs.tc {
        let ep = &t.episode;
        let Some(left) = ep.left_on else { continue };
        if p.contains(left) {
            ended.add(t.who, end, 1);
            if ep.exit == Some(TcExit::Completed) {
                done.add(t.who, end, 1);
            }
        }
        if ep.exit != Some(TcExit::Completed) {
            continue;
        }
        for (i, (months, negative)) in [(6u32, ep.urine_negative_6m), (12, ep.urine_negative_12m)]
            .into_iter()
            .enumerate()
        {
            let due = left.checked_add_months(Months::new(months));
            if let (Some(due), Some(negative)) = (due, negative) {
                if p.contains(due) {
                    relapse[i].1.add(t.who, end, 1);
                    if !negative {
                        relapse[i].0.add(t.who, end, 1);
                    }
                }
            }
        }
    }
    push("tc_completion", done, Some(ended));
    push("tc_relapse_6m", relapse[0].0, Some(relapse[0].1));
    push("tc_relapse_12m", relapse[1].0, Some(relapse[1].1));

    let (mut overdoses, mut with_naloxone, mut deaths) =
        (Grid::default(), Grid::default(), Grid::default());
    for o in inputs.overdoses.iter().filter(|o| p.contains(o.on)) {
        overdoses.add(o.who, end, 1);
        if o.naloxone {
            with_naloxone.add(o.who, end, 1);
        }
    }
    for d in inputs.deaths.iter().filter(|d| p.contains(d.on)) {
        deaths.add(d.who, end, 1);
    }
    push("overdoses", overdoses, None);
    push("overdoses_naloxone", with_naloxone, None);
    push("deaths", deaths, None);

    let (mut dropouts, mut returns) = (Grid::default(), Grid::default());
    for (c, eps) in inputs.clients.iter().zip(&episodes) {
        for e in eps {
            if e.end == Some(EpisodeEnd::Dropout) && e.ended_on.is_some_and(|x| p.contains(x)) {
                dropouts.add(c.who, end, 1);
            }
            if e.reenrolment && p.contains(e.started_on) {
                returns.add(c.who, end, 1);
            }
        }
    }
    push("dropouts", dropouts, None);
    push("reenrolments", returns, None);

    // The national programme's metrics.
    push("nat_on_treatment", mmt, None);
    let last_month = NaiveDate::from_ymd_opt(p.to.year(), p.to.month(), 1)
        .unwrap_or(p.to)
        .max(p.from);
    let (mut dosed_last, mut dosed) = (Grid::default(), Grid::default());
    let (mut duration, mut mg, mut dose_days) = (Grid::default(), Grid::default(), Grid::default());
    let mut tested = [Grid::default(); 3];
    let day_after = p.to.succ_opt().unwrap_or(p.to);
    for (c, eps) in inputs.clients.iter().zip(&episodes) {
        let any = c.any_dose_days();
        if any.count_in(p.from, p.to) > 0 {
            dosed.add(c.who, end, 1);
            if any.count_in(last_month, p.to) > 0 {
                dosed_last.add(c.who, end, 1);
            }
        }
        let Some(latest) = eps.iter().rev().find(|e| e.overlaps(p.from, p.to)) else {
            continue;
        };
        duration.add(c.who, end, latest.days_until(day_after).unsigned_abs());
        mg.add(c.who, end, c.dose_mg);
        dose_days.add(c.who, end, any.count_in(p.from, p.to));
        for (i, kind) in [Screening::Hiv, Screening::Hcv, Screening::Syphilis]
            .into_iter()
            .enumerate()
        {
            if c.screenings
                .iter()
                .any(|(d, k)| *k == kind && p.contains(*d))
            {
                tested[i].add(c.who, end, 1);
            }
        }
    }
    push("nat_annual_retention", dosed_last, Some(dosed));
    push("nat_mean_duration", duration, Some(clients));
    push("nat_mean_daily_dose", mg, Some(dose_days));
    let mut positive = Grid::default();
    for (r, row) in positive.0.iter_mut().enumerate() {
        for (k, cell) in row.iter_mut().enumerate() {
            *cell = tests.0[r][k].saturating_sub(neg.0[r][k]);
        }
    }
    push("nat_opioid_use_rate", positive, Some(tests));
    push("nat_hiv_testing_rate", tested[0], Some(clients));
    push("nat_hcv_testing_rate", tested[1], Some(clients));
    push("nat_syphilis_testing_rate", tested[2], Some(clients));
    out
}

/// How the retention life table groups episodes by the month of their start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CohortBy {
    Month,
    Quarter,
}

/// The follow-up points of the life table, in months.
pub const LIFE_TABLE_MONTHS: [u32; 3] = [3, 6, 12];

/// One enrolment cohort of the retention life table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CohortRow {
    /// The cohort's first day (a month's or a quarter's).
    pub start: NaiveDate,
    /// `2026-11` or `2026Q4`.
    pub label: String,
    /// Episodes of care that started in the cohort (keyed by client for the cell-key release).
    pub started: Count,
    /// Per follow-up point ([`LIFE_TABLE_MONTHS`]): episodes whose anniversary falls on or
    /// before the period's last day (at risk, followed long enough to be counted).
    pub at_risk: [Count; 3],
    /// Of those at risk, episodes not ended on or before the anniversary.
    pub retained: [Count; 3],
}

impl CohortRow {
    /// Retained at follow-up point `i`, in percent of those at risk (`None` when none).
    pub fn percent(&self, i: usize) -> Option<f64> {
        value(Unit::Percent, self.retained[i].n, Some(self.at_risk[i].n))
    }
}

/// The retention life table by enrolment cohort: every month (or quarter) from the one 12
/// months before the period's last day to the one holding it, with the episodes that started
/// in it and how many of them were still in treatment 3, 6 and 12 months later, counting only
/// anniversaries that fall on or before the period's last day. Re-enrolments start their own
/// episode (and cohort); a transfer ends the episode at the centre it left.
pub fn life_table(p: &Period, inputs: &Inputs, by: CohortBy) -> Vec<CohortRow> {
    let step = match by {
        CohortBy::Month => 1,
        CohortBy::Quarter => 3,
    };
    let cohort_of = |d: NaiveDate| {
        let m0 = (d.month0() / step) * step;
        NaiveDate::from_ymd_opt(d.year(), m0 + 1, 1).unwrap_or(d)
    };
    let first = cohort_of(p.to.checked_sub_months(Months::new(12)).unwrap_or(p.to));
    let last = cohort_of(p.to);
    let mut rows = Vec::new();
    let mut start = first;
    while start <= last {
        let label = match by {
            CohortBy::Month => format!("{:04}-{:02}", start.year(), start.month()),
            CohortBy::Quarter => format!("{}Q{}", start.year(), start.month0() / 3 + 1),
        };
        rows.push(CohortRow {
            start,
            label,
            started: Count::default(),
            at_risk: [Count::default(); 3],
            retained: [Count::default(); 3],
        });
        let Some(next) = start.checked_add_months(Months::new(step)) else {
            break;
        };
        start = next;
    }
    for c in &inputs.clients {
        for e in c.episodes() {
            if e.started_on > p.to {
                continue;
            }
            let Some(row) = rows.iter_mut().find(|r| r.start == cohort_of(e.started_on)) else {
                continue;
            };
            row.started.add(c.who.record);
            for (i, months) in LIFE_TABLE_MONTHS.into_iter().enumerate() {
                let Some(anniversary) = e.started_on.checked_add_months(Months::new(months)) else {
                    continue;
                };
                if anniversary <= p.to {
                    row.at_risk[i].add(c.who.record);
                    if e.ended_on.is_none_or(|x| x > anniversary) {
                        row.retained[i].add(c.who.record);
                    }
                }
            }
        }
    }
    rows
}

/// A table as published (see [`crate::release`]): `None` is a hidden cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    pub cells: Vec<Vec<Option<u64>>>,
    pub row_totals: Vec<Option<u64>>,
    pub col_totals: Vec<Option<u64>>,
    pub total: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{TcPhase, TestResult::*};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    const M_OLD: Who = Who {
        sex: Sex::Male,
        birth_year: Some(1980),
        record: 0,
    };
    const M_YOUNG: Who = Who {
        sex: Sex::Male,
        birth_year: Some(2005),
        record: 0,
    };
    const F_OLD: Who = Who {
        sex: Sex::Female,
        birth_year: Some(1990),
        record: 0,
    };
    const ANON: Who = Who {
        sex: Sex::Unknown,
        birth_year: None,
        record: 0,
    };

    fn client(who: Who, enrolled: NaiveDate, discharged: Option<NaiveDate>) -> ClientFacts {
        ClientFacts::new(who, enrolled, discharged)
    }

    fn nov() -> Period {
        Period::new(d(2026, 11, 1), d(2026, 11, 30)).unwrap()
    }

    fn fig<'a>(figs: &'a [Figure], id: &str) -> &'a Figure {
        figs.iter().find(|f| f.id == id).unwrap()
    }

    /// (numerator, denominator) over everybody.
    fn nd(figs: &[Figure], id: &str) -> (u64, Option<u64>) {
        let f = fig(figs, id);
        (f.numerator.total(), f.denominator.map(|g| g.total()))
    }

    fn days(from: NaiveDate, n: i64) -> DaySet {
        (0..n).map(|i| from + chrono::Duration::days(i)).collect()
    }

    /// A small clinic, November 2026, worked out by hand from the definitions.
    fn clinic() -> Inputs {
        // A: male 46, enrolled 2026-08-15 (3-month anniversary 11-15), in treatment all
        //    November, doses 11-01..11-20 (20 days), take-home 11-21, urine 11-05 negative.
        let mut a = client(M_OLD, d(2026, 8, 15), None);
        a.dose_days = days(d(2026, 11, 1), 20);
        a.take_home_days = [d(2026, 11, 21)].into();
        a.urine = vec![(d(2026, 11, 5), true)];
        // B: male 21, enrolled 2026-05-10 (6-month anniversary 11-10), discharged 2026-09-01:
        //    not retained at 6 months, not in treatment in November; a dose on 11-02 after
        //    discharge is not counted.
        let mut b = client(M_YOUNG, d(2026, 5, 10), Some(d(2026, 9, 1)));
        b.dose_days = [d(2026, 11, 2)].into();
        // C: female 36, enrolled 2025-11-20 (12-month anniversary 11-20), discharged 2026-11-25:
        //    retained at 12 months, in treatment during November but not on its last day;
        //    doses 11-01..11-10 (10 days), urine 11-03 positive, 11-20 negative, 10-30 outside.
        let mut c = client(F_OLD, d(2025, 11, 20), Some(d(2026, 11, 25)));
        c.dose_days = days(d(2026, 11, 1), 10);
        c.urine = vec![
            (d(2026, 11, 3), false),
            (d(2026, 11, 20), true),
            (d(2026, 10, 30), true),
        ];
        // D: female 36, enrolled 2026-08-31 (3-month anniversary 11-30), still in: retained.
        //    No doses yet in the record.
        let dd = client(F_OLD, d(2026, 8, 31), None);
        // E: enrolled 2026-12-01, after the period: counted nowhere.
        let e = client(M_OLD, d(2026, 12, 1), None);

        let enc = |who, on, service| EncounterFact { who, on, service };
        let hiv = |tested_on, result, told| Service::HivTest {
            tested_on,
            pre_counselled: true,
            post_counselled: told,
            result,
            told_result: told,
        };
        let encounters = vec![
            enc(
                ANON,
                d(2026, 11, 3),
                Service::NeedleExchange {
                    given: 30,
                    returned: 25,
                    reason: None,
                },
            ),
            enc(
                M_OLD,
                d(2026, 11, 4),
                Service::NeedleExchange {
                    given: 10,
                    returned: 2,
                    reason: None,
                },
            ),
            enc(
                ANON,
                d(2026, 10, 31),
                Service::NeedleExchange {
                    given: 99,
                    returned: 99,
                    reason: None,
                },
            ),
            enc(ANON, d(2026, 11, 3), Service::Naloxone { kits: 2 }),
            enc(F_OLD, d(2026, 11, 9), Service::Naloxone { kits: 1 }),
            // HIV: 4 tests dated in November (3 with a result: 1 positive; 2 told), 1 in October.
            enc(
                ANON,
                d(2026, 11, 5),
                hiv(Some(d(2026, 11, 5)), Some(Positive), true),
            ),
            enc(
                M_OLD,
                d(2026, 11, 6),
                hiv(Some(d(2026, 11, 6)), Some(Negative), true),
            ),
            enc(
                M_YOUNG,
                d(2026, 11, 7),
                hiv(Some(d(2026, 11, 7)), Some(Negative), false),
            ),
            enc(
                F_OLD,
                d(2026, 11, 8),
                hiv(Some(d(2026, 11, 8)), None, false),
            ),
            enc(
                F_OLD,
                d(2026, 11, 1),
                hiv(Some(d(2026, 10, 28)), Some(Positive), true),
            ),
            // HCV: 2 in November, both with a result, 1 positive. TB: 1, negative.
            enc(
                ANON,
                d(2026, 11, 5),
                Service::HcvTest {
                    tested_on: Some(d(2026, 11, 5)),
                    result: Some(Positive),
                },
            ),
            enc(
                M_OLD,
                d(2026, 11, 6),
                Service::HcvTest {
                    tested_on: Some(d(2026, 11, 6)),
                    result: Some(Negative),
                },
            ),
            enc(
                M_OLD,
                d(2026, 11, 6),
                Service::TbTest {
                    tested_on: Some(d(2026, 11, 6)),
                    result: Some(Negative),
                },
            ),
            // ARV: 3 referrals made in November (1 linked, 1 lost, 1 pending), 1 in October linked.
            enc(
                ANON,
                d(2026, 11, 6),
                Service::ArvReferral {
                    referred_on: d(2026, 11, 5),
                    outcome: ArvOutcome::Linked,
                    outcome_on: Some(d(2026, 11, 6)),
                },
            ),
            enc(
                M_OLD,
                d(2026, 11, 20),
                Service::ArvReferral {
                    referred_on: d(2026, 11, 6),
                    outcome: ArvOutcome::Lost,
                    outcome_on: Some(d(2026, 11, 20)),
                },
            ),
            enc(
                F_OLD,
                d(2026, 11, 7),
                Service::ArvReferral {
                    referred_on: d(2026, 11, 7),
                    outcome: ArvOutcome::Pending,
                    outcome_on: None,
                },
            ),
            enc(
                F_OLD,
                d(2026, 11, 2),
                Service::ArvReferral {
                    referred_on: d(2026, 10, 2),
                    outcome: ArvOutcome::Linked,
                    outcome_on: Some(d(2026, 11, 2)),
                },
            ),
            // Referrals in: police 2, self 1, family 0, outreach 1 (October: not counted).
            enc(
                M_OLD,
                d(2026, 11, 1),
                Service::ReferralIn {
                    source: ReferralSource::Police,
                },
            ),
            enc(
                M_YOUNG,
                d(2026, 11, 2),
                Service::ReferralIn {
                    source: ReferralSource::Police,
                },
            ),
            enc(
                F_OLD,
                d(2026, 11, 3),
                Service::ReferralIn {
                    source: ReferralSource::SelfReferred,
                },
            ),
            enc(
                F_OLD,
                d(2026, 10, 3),
                Service::ReferralIn {
                    source: ReferralSource::Outreach,
                },
            ),
        ];
        let ep = |left_on: Option<NaiveDate>, exit, u6, u12| TcFact {
            who: M_OLD,
            episode: TcEpisode {
                admitted_on: d(2024, 1, 1),
                phase: TcPhase::Aftercare,
                left_on,
                exit,
                urine_negative_6m: u6,
                urine_negative_12m: u12,
            },
        };
        let tc = vec![
            // Ended in November: 2 completed, 1 dropped out.
            ep(Some(d(2026, 11, 2)), Some(TcExit::Completed), None, None),
            ep(Some(d(2026, 11, 12)), Some(TcExit::Completed), None, None),
            ep(Some(d(2026, 11, 22)), Some(TcExit::DroppedOut), None, None),
            // Left 2026-05-10 completed: 6-month follow-up due 11-10, positive (relapse).
            ep(
                Some(d(2026, 5, 10)),
                Some(TcExit::Completed),
                Some(false),
                None,
            ),
            // Left 2026-05-20 completed: 6-month due 11-20, negative.
            ep(
                Some(d(2026, 5, 20)),
                Some(TcExit::Completed),
                Some(true),
                None,
            ),
            // Left 2025-11-15 completed: 12-month due 11-15, negative; 6-month was in May.
            ep(
                Some(d(2025, 11, 15)),
                Some(TcExit::Completed),
                Some(false),
                Some(true),
            ),
            // Dropped out 2026-05-15: follow-up not counted for relapse after completion.
            ep(
                Some(d(2026, 5, 15)),
                Some(TcExit::DroppedOut),
                Some(false),
                None,
            ),
            // Still resident.
            ep(None, None, None, None),
        ];
        // Overdoses: A on 11-03 with naloxone, C on 11-24 without, A on 10-31 (outside);
        // C died on 11-24 (an overdose), B on 12-01 (outside).
        let overdoses = vec![
            OverdoseFact {
                who: M_OLD,
                on: d(2026, 11, 3),
                naloxone: true,
            },
            OverdoseFact {
                who: F_OLD,
                on: d(2026, 11, 24),
                naloxone: false,
            },
            OverdoseFact {
                who: M_OLD,
                on: d(2026, 10, 31),
                naloxone: true,
            },
        ];
        let deaths = vec![
            DeathFact {
                who: F_OLD,
                on: d(2026, 11, 24),
            },
            DeathFact {
                who: M_YOUNG,
                on: d(2026, 12, 1),
            },
        ];
        Inputs {
            clients: vec![a, b, c, dd, e],
            encounters,
            tc,
            overdoses,
            deaths,
            doses_known_from: None,
        }
    }

    #[test]
    fn overdoses_with_naloxone_and_deaths_in_the_period() {
        let f = compute(&nov(), &clinic());
        assert_eq!(nd(&f, "overdoses"), (2, None));
        assert_eq!(nd(&f, "overdoses_naloxone"), (1, None));
        assert_eq!(nd(&f, "deaths"), (1, None));
        assert_eq!(fig(&f, "deaths").numerator.total(), 1);
    }

    #[test]
    fn clients_in_mmt_retention_attendance_take_home_and_urine() {
        let f = compute(&nov(), &clinic());
        // In treatment on 11-30: A and D (C discharged 11-25, B in September, E not yet).
        assert_eq!(nd(&f, "mmt_clients"), (2, None));
        // A (male 25+) and D (female 25+).
        let g = fig(&f, "mmt_clients").numerator;
        assert_eq!(g.0, [[0, 1, 0], [0, 1, 0], [0, 0, 0]]);
        // 3 months: A (11-15) and D (11-30), both retained.
        assert_eq!(nd(&f, "retention_3m"), (2, Some(2)));
        // 6 months: B (11-10) discharged 09-01: 0 of 1.
        assert_eq!(nd(&f, "retention_6m"), (0, Some(1)));
        assert_eq!(fig(&f, "retention_6m").denominator.unwrap().0[0][0], 1);
        // 12 months: C (11-20) discharged 11-25: retained, 1 of 1.
        assert_eq!(nd(&f, "retention_12m"), (1, Some(1)));
        // In treatment on some day of November: A, C, D → 3 clients; days 20 + 10 + 0 = 30.
        assert_eq!(nd(&f, "mean_attendance"), (30, Some(3)));
        assert_eq!(fig(&f, "mean_attendance").value(), Some(10.0));
        // Take-home: A of {A, D}.
        assert_eq!(nd(&f, "take_home_participation"), (1, Some(2)));
        assert_eq!(fig(&f, "take_home_participation").value(), Some(50.0));
        // Urine in November: A 11-05 neg, C 11-03 pos, C 11-20 neg → 2 of 3.
        assert_eq!(nd(&f, "urine_negative_rate"), (2, Some(3)));
    }

    /// A small hand-computed clinic for the episode figures and the national metrics, over
    /// the year 2026 (`n` = 30, computed on 2027-01-10):
    /// - P: enrolled 2025-12-01, doses every day to 2026-02-01, then none until 2026-04-01, then
    ///   every day to the end of the year. Drop-out on 2026-03-03 (30th missed day), back on
    ///   04-01 (a re-enrolment): two episodes.
    /// - Q: enrolled 2026-01-10, doses to 2026-05-31, then compulsory isolated treatment from
    ///   2026-06-01 (recorded end): not in MMT at year end.
    /// - R: enrolled 2026-10-01, doses every day, in MMT at year end.
    fn year_clinic() -> (Period, Inputs) {
        let year = Period::new(d(2026, 1, 1), d(2026, 12, 31)).unwrap();
        let span =
            |from: NaiveDate, to: NaiveDate| -> DaySet { days(from, (to - from).num_days() + 1) };
        let mut p = client(M_OLD, d(2025, 12, 1), None);
        p.dose_days = span(d(2025, 12, 1), d(2026, 2, 1));
        p.dose_days
            .extend(span(d(2026, 4, 1), d(2026, 12, 31)).iter());
        p.dose_mg = 60 * 32 + 60 * 275; // 1 Jan – 1 Feb and 1 Apr – 31 Dec at 60 mg
        p.urine = vec![(d(2026, 5, 1), false), (d(2026, 6, 1), true)];
        p.screenings = vec![
            (d(2026, 4, 2), Screening::Hiv),
            (d(2025, 12, 2), Screening::Hcv),
        ];
        let mut q = client(F_OLD, d(2026, 1, 10), None);
        q.episodes = vec![Episode::open(d(2026, 1, 10)).ended(d(2026, 6, 1), EpisodeEnd::Cit)];
        q.dose_days = span(d(2026, 1, 10), d(2026, 5, 31));
        q.dose_mg = 40 * 142;
        q.urine = vec![(d(2026, 3, 1), true)];
        q.screenings = vec![
            (d(2026, 2, 1), Screening::Hiv),
            (d(2026, 2, 1), Screening::Hcv),
            (d(2026, 2, 1), Screening::Syphilis),
        ];
        let mut r = client(M_YOUNG, d(2026, 10, 1), None);
        r.dose_days = span(d(2026, 10, 1), d(2026, 12, 31));
        r.dose_mg = 80 * 92;
        let mut inputs = Inputs {
            clients: vec![p, q, r],
            ..Inputs::default()
        };
        inputs.apply_dropouts(30, d(2027, 1, 10));
        (year, inputs)
    }

    #[test]
    fn a_client_who_dropped_out_and_came_back_has_two_episodes_and_cit_is_not_in_mmt() {
        let (year, inputs) = year_clinic();
        let p = &inputs.clients[0];
        assert_eq!(
            p.episodes,
            vec![
                Episode::open(d(2025, 12, 1)).ended(d(2026, 3, 3), EpisodeEnd::Dropout),
                Episode {
                    reenrolment: true,
                    ..Episode::open(d(2026, 4, 1))
                },
            ]
        );
        // In MMT on 2026-03-02 (29th missed day), not on 03-03 nor during the gap.
        assert!(p.in_treatment_on(d(2026, 3, 2)) && !p.in_treatment_on(d(2026, 3, 3)));
        assert!(!p.in_treatment_on(d(2026, 3, 20)) && p.in_treatment_on(d(2026, 4, 1)));
        let f = compute(&year, &inputs);
        // Year end: P (second episode) and R; Q is in CIT.
        assert_eq!(nd(&f, "mmt_clients"), (2, None));
        assert_eq!(fig(&f, "mmt_clients").numerator.0[1], [0, 0, 0]);
        assert_eq!(nd(&f, "dropouts"), (1, None));
        assert_eq!(nd(&f, "reenrolments"), (1, None));
        // 3 months: P's first episode (2026-03-01, before the drop-out day: retained), Q
        // (04-10, retained), P's second (07-01, retained), R (2027-01-01: outside) → 3 of 3.
        assert_eq!(nd(&f, "retention_3m"), (3, Some(3)));
        // 6 months: P's first (2026-06-01: it ended 03-03, not retained), Q (07-10: in CIT
        // since 06-01, not retained), P's second (10-01: retained) → 1 of 3: the client who
        // dropped out and came back is not retained across the gap.
        assert_eq!(nd(&f, "retention_6m"), (1, Some(3)));
        // 12 months: P's first (2026-12-01): ended → 0 of 1.
        assert_eq!(nd(&f, "retention_12m"), (0, Some(1)));
        // Month by month: March holds P's drop-out, and a March report excludes P from
        // mmt_clients.
        let march = Period::new(d(2026, 3, 1), d(2026, 3, 31)).unwrap();
        let m = compute(&march, &inputs);
        assert_eq!(nd(&m, "mmt_clients"), (1, None)); // Q only
        assert_eq!(nd(&m, "dropouts"), (1, None));
        assert_eq!(nd(&m, "reenrolments"), (0, None));
        let april = Period::new(d(2026, 4, 1), d(2026, 4, 30)).unwrap();
        assert_eq!(nd(&compute(&april, &inputs), "reenrolments"), (1, None));
    }

    #[test]
    fn the_national_programme_metrics_on_a_hand_computed_year() {
        let (year, inputs) = year_clinic();
        let f = compute(&year, &inputs);
        assert_eq!(nd(&f, "nat_on_treatment"), (2, None));
        // Dosed in December: P and R; dosed in the year: P, Q, R.
        assert_eq!(nd(&f, "nat_annual_retention"), (2, Some(3)));
        // Latest episode in the year, to its end or 2026-12-31 included:
        // P from 04-01: 275 days; Q 01-10 to 05-31: 142 days; R from 10-01: 92 days.
        assert_eq!(nd(&f, "nat_mean_duration"), (275 + 142 + 92, Some(3)));
        assert_eq!(fig(&f, "nat_mean_duration").value(), Some(509.0 / 3.0));
        // Milligrams over dose-days: P 32 + 275 days at 60, Q 142 at 40, R 92 at 80.
        let mg = 60 * 307 + 40 * 142 + 80 * 92;
        assert_eq!(nd(&f, "nat_mean_daily_dose"), (mg, Some(307 + 142 + 92)));
        // Urine: P 05-01 positive, 06-01 negative; Q 03-01 negative → 1 positive of 3.
        assert_eq!(nd(&f, "nat_opioid_use_rate"), (1, Some(3)));
        // Testing: HIV P and Q; HCV Q only (P's was in 2025); syphilis Q.
        assert_eq!(nd(&f, "nat_hiv_testing_rate"), (2, Some(3)));
        assert_eq!(nd(&f, "nat_hcv_testing_rate"), (1, Some(3)));
        assert_eq!(nd(&f, "nat_syphilis_testing_rate"), (1, Some(3)));
    }

    #[test]
    fn the_life_table_follows_each_cohort_at_3_6_and_12_months() {
        let (year, inputs) = year_clinic();
        let rows = life_table(&year, &inputs, CohortBy::Month);
        // 2025-12 to 2026-12: 13 months.
        assert_eq!(rows.len(), 13);
        assert_eq!(rows[0].label, "2025-12");
        // December 2025: P's first episode; retained at 3 months, not at 6 or 12.
        let n = |c: [Count; 3]| c.map(|c| c.n);
        assert_eq!(rows[0].started.n, 1);
        assert_eq!(n(rows[0].at_risk), [1, 1, 1]);
        assert_eq!(n(rows[0].retained), [1, 0, 0]);
        // January 2026: Q, CIT from June: retained at 3, not at 6; 12 not yet reached.
        assert_eq!(
            (n(rows[1].at_risk), n(rows[1].retained)),
            ([1, 1, 0], [1, 0, 0])
        );
        // April 2026: P's re-enrolment: its own cohort.
        assert_eq!((rows[4].started.n, n(rows[4].retained)), (1, [1, 1, 0]));
        // October 2026: R, followed for under 3 months: nobody at risk yet.
        assert_eq!((rows[10].started.n, n(rows[10].at_risk)), (1, [0, 0, 0]));
        assert_eq!(rows[10].percent(0), None);
        let q = life_table(&year, &inputs, CohortBy::Quarter);
        assert_eq!(q.len(), 5);
        assert_eq!(q[0].label, "2025Q4");
        assert_eq!(q.iter().map(|r| r.started.n).sum::<u64>(), 4);
    }

    #[test]
    fn the_union_of_day_sets_holds_the_days_of_both() {
        let a: DaySet = [d(2026, 1, 3), d(2026, 3, 1)].into();
        let mut b = DaySet::starting(d(2026, 1, 3));
        b.extend([d(2026, 1, 4), d(2026, 9, 9)]);
        let mut c = DaySet::starting(d(2025, 6, 1));
        c.insert(d(2026, 1, 5));
        let all = |s: &DaySet| s.iter().collect::<Vec<_>>();
        assert_eq!(
            all(&a.union(&b)),
            [d(2026, 1, 3), d(2026, 1, 4), d(2026, 3, 1), d(2026, 9, 9)]
        );
        assert_eq!(
            all(&a.union(&c)),
            [d(2026, 1, 3), d(2026, 1, 5), d(2026, 3, 1)]
        );
        assert_eq!(all(&DaySet::new().union(&c)), [d(2026, 1, 5)]);
        assert_eq!(all(&c.union(&DaySet::new())), [d(2026, 1, 5)]);
    }

    #[test]
    fn a_day_set_counts_like_a_set_of_days() {
        use std::collections::BTreeSet;
        // Days spread over ~300 days, inserted out of order so the bitmap grows to the left.
        let picks: Vec<NaiveDate> = [200i64, 3, 64, 63, 128, 0, 299, 127, 3, 65, 190]
            .iter()
            .map(|n| d(2026, 1, 1) + chrono::Duration::days(*n))
            .collect();
        let mut set = DaySet::starting(d(2026, 4, 1));
        let mut reference = BTreeSet::new();
        for day in &picks {
            assert_eq!(set.insert(*day), reference.insert(*day));
        }
        assert_eq!(set.len(), reference.len());
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            reference.iter().copied().collect::<Vec<_>>()
        );
        for a in (-5..310).step_by(7) {
            for b in (a - 3..315).step_by(11) {
                let (from, to) = (
                    d(2026, 1, 1) + chrono::Duration::days(a),
                    d(2026, 1, 1) + chrono::Duration::days(b),
                );
                let expected = reference
                    .iter()
                    .filter(|x| from <= **x && **x <= to)
                    .count();
                assert_eq!(set.count_in(from, to), expected as u64, "{from}..{to}");
            }
        }
        assert!(set.contains(picks[0]) && !set.contains(d(2026, 1, 3)));
        assert!(set.remove(picks[0]) && !set.remove(picks[0]));
        assert_eq!(set.len(), reference.len() - 1);
        assert!(DaySet::new().is_empty() && DaySet::new().count_in(picks[1], picks[0]) == 0);
    }

    proptest::proptest! {
        /// A month's mask ORed in at once holds the same days as inserting them one by one,
        /// wherever the set started and whatever it held before.
        #[test]
        fn a_month_mask_adds_the_same_days_as_single_inserts(
            start_off in -200i64..200,
            before in proptest::collection::vec(-150i64..250, 0..8),
            mask in proptest::prelude::any::<u64>(),
            starting in proptest::prelude::any::<bool>(),
        ) {
            let base = d(2026, 3, 1);
            let start = base + chrono::Duration::days(start_off);
            let mut fast = if starting { DaySet::starting(base) } else { DaySet::new() };
            for b in &before {
                fast.insert(base + chrono::Duration::days(*b));
            }
            let mut slow = fast.clone();
            fast.insert_bits(start, mask);
            for i in (0..64).filter(|i| mask & (1 << i) != 0) {
                slow.insert(start + chrono::Duration::days(i));
            }
            proptest::prop_assert_eq!(fast.iter().collect::<Vec<_>>(), slow.iter().collect::<Vec<_>>());
            proptest::prop_assert_eq!(fast.len(), slow.len());
        }
    }

    #[test]
    fn tests_arv_needles_naloxone_and_referrals() {
        let f = compute(&nov(), &clinic());
        assert_eq!(nd(&f, "hiv_tests"), (4, None));
        assert_eq!(nd(&f, "hiv_positivity"), (1, Some(3)));
        assert_eq!(nd(&f, "hiv_told_result"), (2, Some(3)));
        // The positive HIV test is anonymous: unknown sex, unknown age.
        assert_eq!(fig(&f, "hiv_positivity").numerator.0[2][2], 1);
        assert_eq!(nd(&f, "hcv_tests"), (2, None));
        assert_eq!(nd(&f, "hcv_positivity"), (1, Some(2)));
        assert_eq!(nd(&f, "tb_tests"), (1, None));
        assert_eq!(nd(&f, "tb_positivity"), (0, Some(1)));
        assert_eq!(nd(&f, "arv_linkage"), (1, Some(3)));
        assert_eq!(nd(&f, "needles_given"), (40, None));
        assert_eq!(nd(&f, "needles_returned"), (27, None));
        assert_eq!(nd(&f, "needle_return_rate"), (27, Some(40)));
        assert_eq!(fig(&f, "needle_return_rate").value(), Some(67.5));
        assert_eq!(nd(&f, "naloxone_kits"), (3, None));
        assert_eq!(nd(&f, "referrals_police"), (2, None));
        assert_eq!(nd(&f, "referrals_outreach"), (0, None));
        assert_eq!(nd(&f, "referrals_family"), (0, None));
        assert_eq!(nd(&f, "referrals_self"), (1, None));
        // Police referrals: one male 25+, one male under 25.
        assert_eq!(fig(&f, "referrals_police").numerator.0[0], [1, 1, 0]);
    }

    #[test]
    fn therapeutic_community_completion_and_relapse() {
        let f = compute(&nov(), &clinic());
        assert_eq!(nd(&f, "tc_completion"), (2, Some(3)));
        assert_eq!(nd(&f, "tc_relapse_6m"), (1, Some(2)));
        assert_eq!(fig(&f, "tc_relapse_6m").value(), Some(50.0));
        assert_eq!(nd(&f, "tc_relapse_12m"), (0, Some(1)));
    }

    #[test]
    fn every_catalogue_entry_is_computed_once_and_defined() {
        let f = compute(&nov(), &Inputs::default());
        assert_eq!(f.len(), CATALOGUE.len());
        for (fig, ind) in f.iter().zip(CATALOGUE) {
            assert_eq!(fig.id, ind.id);
            assert!(!ind.numerator.is_empty());
            assert!(!ind.numerator_zh.is_empty(), "{}", ind.id);
            assert_eq!(
                ind.denominator.is_empty(),
                ind.denominator_zh.is_empty(),
                "{}",
                ind.id
            );
            assert_eq!(ind.definitions("zh-CN").0, ind.numerator_zh);
            assert_eq!(ind.definitions("en").1, ind.denominator);
            assert_eq!(
                ind.unit == Unit::Count,
                ind.denominator.is_empty(),
                "{}",
                ind.id
            );
            assert_eq!(fig.denominator.is_none(), ind.unit == Unit::Count);
        }
        assert_eq!(fig(&f, "retention_3m").value(), None);
    }

    #[test]
    fn a_period_must_not_end_before_it_starts_and_knows_its_dhis2_code() {
        let e = Period::new(d(2026, 11, 30), d(2026, 11, 1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "to: the period ends (2026-11-01) before it starts (2026-11-30)"
        );
        assert_eq!(AgeBand::of(Some(2001), d(2026, 11, 30)), AgeBand::From25);
        assert_eq!(AgeBand::of(Some(2002), d(2026, 11, 30)), AgeBand::Under25);
        assert_eq!(Sex::parse("sex", Some("F")).unwrap(), Sex::Female);
        assert!(Sex::parse("sex", Some("x")).is_err());
    }
}
