//! The dispensing window: the day list of a centre and the one-action dose from a UIC, where
//! the rules (order in force, missed-dose rule, split portions, guest arrangements) decide the
//! amount. Refusals carry codes with the values their messages need (`dose.already_given`
//! names the time of the first dose), so every adapter can say them in its user's language.

use anxin_domain::boxes::compartment_covers_today;
use anxin_domain::clinic::missed::{missed_days, Decision};
use anxin_domain::clinic::orders::{order_on, OrderKind};
use anxin_domain::clinic::stage::Stage;
use anxin_domain::clinic::urine::{self, DueInput, DueReason};
use anxin_domain::{Code, Permission, Problem};
use anxin_storage::clinic::{BoxDose, Dose, DoseFacts, DoseWrite, NewDose};
use chrono::{Duration, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Actor, App, Result};

/// Where a client stands at the window today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// A dose (or the next portion) is to be given.
    Give,
    /// The missed-dose rule withholds it until a prescriber acts.
    Withheld,
    /// No dose order is in force.
    NoOrder,
    /// Every portion of today was given.
    Done,
    /// Today's dose is in the client's take-home box (its code went out or is still to come).
    InBox,
    /// A split dose's next portion, not yet: the interval since the last one has not passed.
    NotYet,
}

impl DayStatus {
    /// The serde name, also the suffix of the page message `disp-status-…`.
    pub fn as_str(self) -> &'static str {
        match self {
            DayStatus::Give => "give",
            DayStatus::Withheld => "withheld",
            DayStatus::NoOrder => "no_order",
            DayStatus::Done => "done",
            DayStatus::InBox => "in_box",
            DayStatus::NotYet => "not_yet",
        }
    }
}

/// One line of the dispensing window's day list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DayRow {
    pub client_id: i64,
    pub uic: String,
    pub guest: bool,
    /// Daily dose ordered for today, if an order is in force.
    pub ordered_mg: Option<u32>,
    pub status: DayStatus,
    /// The dose to give now (for the next portion), when status is `give`.
    pub give_mg: Option<u32>,
    /// The missed-dose rule that decided (`normal`, `half_after_review`, …).
    pub rule: Option<&'static str>,
    pub explanation: String,
    pub missed_days: u32,
    pub portions: u8,
    pub portions_given: u8,
    #[schemars(with = "Option<String>")]
    pub urine_due: Option<DueReason>,
    /// When the dose is in a box: the box's serial.
    pub box_serial: Option<String>,
    /// When the dose is in a box: the time its code went (or goes) out, centre time `HH:MM`.
    pub code_at: Option<String>,
    /// Whether the code already went out (else it goes out at `code_at`).
    pub code_sent: bool,
    /// When the next portion of a split dose may be given (centre time, HH:MM).
    pub next_portion_at: Option<String>,
}

/// Today's box compartment that holds the dose, if any.
pub fn covering_box<'a>(app: &App, f: &'a DoseFacts) -> Option<&'a BoxDose> {
    let now = app.now();
    f.box_today
        .iter()
        .find(|b| compartment_covers_today(b.load_state, b.withheld, b.code_state, b.code_due, now))
}

/// Today's box compartment whose code will not open it: the window doses in its stead.
pub fn replaced_box<'a>(app: &App, f: &'a DoseFacts) -> Option<&'a BoxDose> {
    let now = app.now();
    f.box_today.iter().find(|b| {
        !compartment_covers_today(b.load_state, b.withheld, b.code_state, b.code_due, now)
    })
}

/// Applies the dispensing rules to one client's facts.
pub fn day_row(app: &App, f: &DoseFacts, today: NaiveDate) -> DayRow {
    let policy = app.settings.clinic;
    let order = order_on(&f.orders, today);
    let induction = f
        .orders
        .iter()
        .filter(|o| o.kind == OrderKind::Induction && o.start <= today)
        .map(|o| o.start)
        .max();
    let missed = missed_days(f.last_dose_before, induction, today, &f.closures);
    let reviewed = match (f.last_review, f.last_dose_before) {
        (Some(r), Some(d)) => r > d,
        (Some(_), None) => true,
        _ => false,
    };
    // Box compartments are among today's dose rows, but only one that holds today's dose counts:
    // a withheld, unsent or lost one leaves the client to be dosed here.
    let given_here: Vec<_> = f
        .doses_today
        .iter()
        .filter(|d| !f.box_today.iter().any(|b| b.dose_id == d.id))
        .collect();
    let portions_given = given_here.len() as u8;
    let urine_due = urine_due(app, f, today);
    let base = DayRow {
        client_id: f.client.id,
        uic: f.client.uic.clone(),
        guest: f.guest,
        ordered_mg: None,
        status: DayStatus::NoOrder,
        give_mg: None,
        rule: None,
        explanation: "no dose order in force".into(),
        missed_days: missed,
        portions: 1,
        portions_given,
        urine_due,
        box_serial: None,
        code_at: None,
        code_sent: false,
        next_portion_at: None,
    };
    if let Some(b) = covering_box(app, f) {
        let offset = app.settings.utc_offset;
        let sent = !matches!(b.code_state, Some(anxin_domain::sms::MessageState::Queued));
        let at = if sent { b.code_at } else { b.code_due };
        return DayRow {
            status: DayStatus::InBox,
            explanation: format!("today's dose is in box {}", b.serial),
            box_serial: Some(b.serial.clone()),
            code_at: at.map(|t| t.with_timezone(&offset).format("%H:%M").to_string()),
            code_sent: sent,
            ..base
        };
    }
    let Some(order) = order else {
        return base;
    };
    let Some(ordered) = order.mg_on(today) else {
        return base;
    };
    let decision = policy.missed.decide(ordered, missed, reviewed);
    let mut row = DayRow {
        ordered_mg: Some(ordered),
        portions: order.split,
        rule: Some(decision.rule().code()),
        explanation: decision.explain(),
        ..base
    };
    match decision {
        Decision::Withhold { .. } => row.status = DayStatus::Withheld,
        Decision::Give { mg, .. } => {
            let next_at = given_here
                .iter()
                .map(|d| d.given_at)
                .max()
                .map(|t| policy.orders.next_portion_at(t));
            if portions_given >= order.split {
                row.status = DayStatus::Done;
            } else if let Some(next) = next_at.filter(|n| app.now() < *n) {
                row.status = DayStatus::NotYet;
                row.next_portion_at = Some(
                    next.with_timezone(&app.settings.utc_offset)
                        .format("%H:%M")
                        .to_string(),
                );
            } else {
                row.status = DayStatus::Give;
                row.give_mg = Some(order.portion_mg(mg, portions_given));
            }
        }
    }
    row
}

fn urine_due(app: &App, f: &DoseFacts, today: NaiveDate) -> Option<DueReason> {
    let community_since =
        (f.client.stage == Stage::CommunityTreatment).then_some(f.client.stage_since);
    let period_start = community_since.map(|s| {
        let years = (today - s).num_days() / 365;
        if years == 0 {
            s
        } else {
            s + Duration::days(365)
        }
    });
    let tests_this_period = period_start
        .map(|p| f.urine_dates.iter().filter(|d| **d >= p).count() as u32)
        .unwrap_or(0);
    urine::due(
        &app.vault.urine_draw_key(),
        DueInput {
            client_id: f.client.id,
            today,
            rate: app.settings.clinic.urine_random_rate,
            community_since,
            tests_this_period,
            tested_today: f.urine_dates.contains(&today),
        },
    )
}

/// The day list of the actor's centre.
pub async fn day_list(app: &App, me: &Actor) -> Result<Vec<DayRow>> {
    me.require(Permission::DoseRecord)?;
    let today = app.today();
    let facts = app.store.day_facts(me.site_id, today).await?;
    Ok(facts
        .iter()
        .filter(|f| f.client.stage.doses_at_centre())
        .map(|f| day_row(app, f, today))
        .collect())
}

/// A dose at the window.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DoseRequest {
    /// The client's UIC (any case; spaces around it are ignored).
    pub uic: String,
}

/// What the window shows after a dose.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DoseAnswer {
    pub dose_id: i64,
    pub uic: String,
    pub mg: u32,
    /// This portion's number, from 1.
    pub portion: u8,
    pub portions: u8,
    pub guest: bool,
    pub rule: String,
    /// Centre time, `HH:MM`.
    pub given_at: String,
    #[schemars(with = "Option<String>")]
    pub urine_due: Option<DueReason>,
    /// When the next portion of a split dose may be given (centre time, `HH:MM`).
    pub next_portion_at: Option<String>,
}

fn local_time(app: &App, d: &Dose) -> String {
    d.given_at
        .with_timezone(&app.settings.utc_offset)
        .format("%H:%M")
        .to_string()
}

/// One client the window's query may mean, shown so that the nurse can tell who it is.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Candidate {
    pub client_id: i64,
    pub uic: String,
    /// The name on record (read for this, audited), if any.
    pub name: Option<String>,
}

/// Whom a query typed at the window means.
#[derive(Debug, Clone)]
pub enum WindowMatch {
    /// Exactly one UIC, typed in another case or without its dashes: dose it.
    Uic(String),
    /// A number or a name: the nurse picks (even one) before a dose is given.
    Choose(Vec<Candidate>),
    /// Nobody at this centre.
    Nobody,
}

/// Candidates shown at most.
const CANDIDATES: i64 = 8;

/// Finds whom a query typed at the window means: a UIC in any case with or without dashes,
/// the digits of a UIC, a client's phone number or name (through the keyed phone and name
/// indexes). Reads of the names shown are audited.
pub async fn find_at_window(app: &App, me: &Actor, query: &str) -> Result<WindowMatch> {
    me.require(Permission::DoseRecord)?;
    let q = query.trim();
    let compact: String = q
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(|c| c.to_uppercase())
        .collect();
    let all_digits = !compact.is_empty() && compact.chars().all(|c| c.is_ascii_digit());
    let has_letters = q.chars().any(|c| c.is_alphabetic());
    let now = app.now();
    let found = if compact.is_empty() {
        vec![]
    } else {
        app.store
            .window_matches(
                &me.audit(),
                &compact,
                all_digits.then_some(compact.as_str()),
                CANDIDATES,
                now,
            )
            .await?
    };
    if !all_digits {
        if let [one] = found.as_slice() {
            if one.uic.replace('-', "") == compact {
                return Ok(WindowMatch::Uic(one.uic.clone()));
            }
        }
    }
    let phone = anxin_domain::phone::normalize("uic", q).ok();
    let clients = match (found.is_empty(), phone) {
        (true, Some(number)) => {
            app.store
                .find_by_phone(&me.audit(), number.as_str(), &app.vault, now)
                .await?
        }
        (true, None) if has_letters => {
            app.store
                .find_by_name(&me.audit(), q, &app.vault, now)
                .await?
        }
        _ => found,
    };
    if clients.is_empty() {
        return Ok(WindowMatch::Nobody);
    }
    let mut out = Vec::with_capacity(clients.len());
    for c in clients.into_iter().take(CANDIDATES as usize) {
        let name = app
            .store
            .read_identity(&me.audit(), c.id, "who is at the window", &app.vault, now)
            .await?
            .name;
        out.push(Candidate {
            client_id: c.id,
            uic: c.uic,
            name,
        });
    }
    Ok(WindowMatch::Choose(out))
}

/// The client of `me`'s centre with the UIC `typed` (any case), refused at `field` as unknown
/// when there is none or it is another centre's: the pages that take a UIC (services, the
/// therapeutic community, the audit search) tell nothing of other centres.
pub(crate) async fn client_here(
    app: &App,
    me: &Actor,
    typed: &str,
    field: &str,
) -> Result<anxin_storage::Client> {
    let uic = normalise_uic(typed)?;
    let c = app.store.client_by_uic(&uic).await?;
    if c.site_id != me.site_id {
        return Err(Problem::new(Code::UicUnknown)
            .field(field)
            .arg("uic", &uic)
            .into());
    }
    Ok(c)
}

/// A UIC as typed at the window: trimmed and in capitals.
pub fn normalise_uic(raw: &str) -> Result<String> {
    let uic = raw.trim().to_uppercase();
    if anxin_domain::validate::uic(&uic).is_err() {
        return Err(Problem::new(Code::UicMalformed)
            .field("uic")
            .arg("uic", raw.trim())
            .into());
    }
    Ok(uic)
}

/// Records an observed dose from the UIC alone: the rules decide the amount.
pub async fn record_dose(app: &App, me: &Actor, req: &DoseRequest) -> Result<DoseAnswer> {
    me.require(Permission::DoseRecord)?;
    let today = app.today();
    let now = app.now();
    let uic = normalise_uic(&req.uic)?;
    let client = app.store.client_by_uic(&uic).await?;
    let refused = |code: Code| Problem::new(code).field("uic").arg("uic", &client.uic);
    if let Some(day) = client.discharged_on {
        return Err(refused(Code::ClientDischarged).arg("day", day).into());
    }
    if !client.stage.doses_at_centre() {
        return Err(refused(Code::ClientInCit).into());
    }
    let guest = if client.site_id == me.site_id {
        false
    } else if app.store.is_guest(client.id, me.site_id, today).await? {
        true
    } else {
        app.store
            .audit(
                &me.audit(),
                anxin_storage::AuditEvent::new("dose.denied", "client", client.id)
                    .site(me.site_id)
                    .reason("other centre, no guest arrangement"),
                now,
            )
            .await?;
        // Refused as an unknown UIC: the window does not tell who is in treatment elsewhere.
        return Err(refused(Code::UicUnknown).into());
    };
    let facts = app.store.dose_facts(client.clone(), guest, today).await?;
    let row = day_row(app, &facts, today);
    match row.status {
        DayStatus::NoOrder => return Err(refused(Code::DoseNoOrder).into()),
        DayStatus::Withheld => {
            app.store
                .audit(
                    &me.audit(),
                    anxin_storage::AuditEvent::new("dose.withheld", "client", client.id)
                        .site(me.site_id)
                        .reason(row.explanation.clone()),
                    now,
                )
                .await?;
            return Err(refused(Code::DoseWithheld)
                .arg("rule", row.rule.unwrap_or("awaiting_review"))
                .arg("missed", row.missed_days)
                .into());
        }
        DayStatus::Done => {
            let at = facts
                .doses_today
                .first()
                .map(|d| local_time(app, d))
                .unwrap_or_default();
            return Err(refused(Code::DoseAlreadyGiven).arg("at", at).into());
        }
        DayStatus::InBox => {
            return Err(refused(Code::DoseInBox)
                .arg("serial", row.box_serial.clone().unwrap_or_default())
                .arg("at", row.code_at.clone().unwrap_or_default())
                .arg("sent", if row.code_sent { "yes" } else { "no" })
                .into());
        }
        DayStatus::NotYet => {
            return Err(refused(Code::DosePortionTooSoon)
                .arg("portion", row.portions_given + 1)
                .arg("portions", row.portions)
                .arg("at", row.next_portion_at.clone().unwrap_or_default())
                .arg("hours", app.settings.clinic.orders.split_interval_hours)
                .into());
        }
        DayStatus::Give => {}
    }
    let mg = row.give_mg.unwrap_or(0);
    let dose = NewDose {
        client_id: client.id,
        day: today,
        // The next free portion of the day: a box compartment that the window replaces keeps
        // its own row (for the box's reconciliation).
        portion: u8::try_from(facts.doses_today.len()).unwrap_or(u8::MAX),
        mg,
        site_id: me.site_id,
        guest,
        rule: row.rule.unwrap_or("normal").to_owned(),
    };
    let written = match replaced_box(app, &facts) {
        Some(b) => {
            app.store
                .insert_dose_replacing_box(&me.audit(), &dose, b, now)
                .await?
        }
        None => app.store.insert_dose(&me.audit(), &dose, now).await?,
    };
    match written {
        DoseWrite::Given(d) => Ok(DoseAnswer {
            next_portion_at: (row.portions_given + 1 < row.portions).then(|| {
                app.settings
                    .clinic
                    .orders
                    .next_portion_at(d.given_at)
                    .with_timezone(&app.settings.utc_offset)
                    .format("%H:%M")
                    .to_string()
            }),
            dose_id: d.id,
            uic: client.uic,
            mg: d.mg,
            portion: row.portions_given + 1,
            portions: row.portions,
            guest,
            rule: d.rule.clone(),
            given_at: local_time(app, &d),
            urine_due: row.urine_due,
        }),
        // Another window got there first (a race the unique key settles).
        DoseWrite::AlreadyGiven(first) => Err(refused(Code::DoseAlreadyGiven)
            .arg("at", local_time(app, &first))
            .into()),
    }
}
