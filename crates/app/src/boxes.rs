//! Take-home boxes: loading a box for a client (a fresh secret, one compartment a day within
//! eligibility and approval, each day's code queued in the SMS outbox at the client's hour),
//! handing it out and taking it back. Loading is one unit of work: the load, its pending doses,
//! its codes and its audit entries are written together or not at all, and the box station
//! writes the secret into the box inside it (the box is emptied again if the work fails). The
//! return reads the box's log through the station with a fresh challenge.

use anxin_domain::boxes::{plan_load, Compartment, LoadState};
use anxin_domain::sms::{TextKind, TextLang};
use anxin_domain::{Code, DomainError, Permission, Problem};
use anxin_storage::boxes::{code_key, create_load_in, Load, LockBox, NewCompartment};
use anxin_storage::outbox::{enqueue_batch_in, NewMessage};
use chrono::{Duration, NaiveDate, TimeZone};
use lockcode::{derive_code, Digits, Secret};
use rand::RngCore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use boxproto::BoxState;

use crate::station::{self, box_time, Plugged, ProvisionData};
use crate::takehome::{approval_of, eligibility_of};
use crate::{parse_date, Actor, App, Error, Result};

/// Day number (days since 1970-01-01) as the box counts days.
pub fn day_number(d: NaiveDate) -> u32 {
    u32::try_from((d - NaiveDate::default()).num_days()).unwrap_or(0)
}

/// The code of compartment `i` of a load.
pub fn code_text(secret: &Secret, box_id: i64, load_id: i64, start: NaiveDate, i: u8) -> String {
    let day = start + Duration::days(i64::from(i));
    let code = derive_code(
        secret,
        box_id as u64,
        load_id as u64,
        i,
        day_number(day),
        Digits::DEFAULT,
    );
    code.to_text().as_str().to_owned()
}

/// A fresh secret for a load of `compartments` days from `start_day`: drawn with `draw`, and
/// drawn again while two compartments would get the same code (docs/lockcode.md §2).
pub fn fresh_secret(
    box_id: i64,
    load_id: i64,
    start_day: u32,
    compartments: u8,
    digits: Digits,
    mut draw: impl FnMut() -> [u8; 32],
) -> [u8; 32] {
    loop {
        let bytes = draw();
        let collides = Secret::from_bytes(&bytes).ok().and_then(|s| {
            lockcode::load_codes(
                &s,
                box_id as u64,
                load_id as u64,
                start_day,
                compartments,
                digits,
            )
            .map(|c| c.has_collision())
        });
        // A load outside 2–6 compartments has no codes to compare; the plan refuses it anyway.
        if collides != Some(true) {
            return bytes;
        }
    }
}

/// Loading a box.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    /// The box's serial.
    pub serial: String,
    /// Days (2–6; at most eligible and approved).
    pub days: u8,
    /// First day in the box (YYYY-MM-DD), default tomorrow.
    #[serde(default)]
    pub start: Option<String>,
    /// Hour (0–23, centre time) at which each day's code is sent; default 7.
    #[serde(default)]
    pub code_hour: Option<u8>,
    /// Language of the code messages: zh-CN (default) or en.
    #[serde(default)]
    pub language: Option<String>,
}

/// A load as the record shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoadView {
    pub id: i64,
    pub box_id: i64,
    pub client_id: i64,
    pub site_id: i64,
    pub start_day: NaiveDate,
    pub days: i64,
    pub code_hour: i64,
    #[schemars(with = "String")]
    pub state: LoadState,
    pub withheld_from: Option<NaiveDate>,
    pub withhold_reason: Option<String>,
    /// The reconciliation of a returned box (JSON).
    pub reconciliation: Option<String>,
}

impl From<&Load> for LoadView {
    fn from(l: &Load) -> Self {
        LoadView {
            id: l.id,
            box_id: l.box_id,
            client_id: l.client_id,
            site_id: l.site_id,
            start_day: l.start_day,
            days: l.days,
            code_hour: l.code_hour,
            state: l.state,
            withheld_from: l.withheld_from,
            withhold_reason: l.withhold_reason.clone(),
            reconciliation: l.reconciliation.clone(),
        }
    }
}

/// One compartment: which day's dose goes in it.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct CompartmentView {
    /// From 0.
    pub index: u8,
    pub day: NaiveDate,
    pub mg: u32,
}

impl From<&Compartment> for CompartmentView {
    fn from(c: &Compartment) -> Self {
        CompartmentView {
            index: c.index,
            day: c.day,
            mg: c.mg,
        }
    }
}

/// What the box station wrote into the box and read back (never the secret).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BoxWritten {
    /// The box's serial as printed on it (BOX-0004).
    pub serial: String,
    /// The box's firmware version, as it reported it.
    pub firmware: String,
    pub load_id: i64,
    /// The first day in the box, as the box's status reads it back.
    pub start_day: NaiveDate,
    pub compartments: u8,
    /// Digits of each day's code.
    pub digits: u8,
}

/// The answer to a load.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoadAnswer {
    pub load: LoadView,
    pub compartments: Vec<CompartmentView>,
    pub written: BoxWritten,
}

/// The first day of a load: tomorrow unless given, and within the coming week.
fn start_of(req: &LoadRequest, today: NaiveDate) -> Result<NaiveDate> {
    let start = match req.start.as_deref().map(str::trim) {
        None | Some("") => today + Duration::days(1),
        Some(s) => parse_date("start", s)?,
    };
    if start < today || start > today + Duration::days(7) {
        return Err(Problem::new(Code::LoadStartOutOfWindow)
            .field("start")
            .arg("from", today)
            .arg("to", today + Duration::days(7))
            .into());
    }
    Ok(start)
}

/// Loads a box for a client and queues its codes, in one unit of work.
pub async fn load_box(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &LoadRequest,
) -> Result<LoadAnswer> {
    me.require(Permission::TakeHomeManage)?;
    let today = app.today();
    let now = app.now();
    let start = start_of(req, today)?;
    let hour = req.code_hour.unwrap_or(7);
    if hour > 23 {
        return Err(Problem::new(Code::LoadCodeHourInvalid)
            .field("code_hour")
            .into());
    }
    let lockbox = app.store.box_by_serial(&me.audit(), &req.serial).await?;
    if !lockbox.state.loadable() {
        return Err(Problem::new(Code::BoxNotInClinic)
            .field("serial")
            .arg("serial", &lockbox.serial)
            .into());
    }
    // The box on the station is asked first, before any write: it must be this box, empty.
    let mut plugged = plugged_empty(app, &lockbox)
        .await
        .map_err(|e| at_field(e, "serial"))?;
    let mut work = app.store.begin_work(&me.audit(), now).await?;
    let c = work.client_for_write(client_id).await?;
    if c.discharged_on.is_some() || !c.stage.doses_at_centre() {
        return Err(Problem::new(Code::LoadTreatmentEnded)
            .arg("uic", &c.uic)
            .into());
    }
    let identity = work
        .read_identity(c.id, "code messages", &app.vault)
        .await?;
    let Some(phone) = identity.phone else {
        return Err(Problem::new(Code::LoadNoPhone).field("phone").into());
    };
    let (eligibility, _) = eligibility_of(app, &c).await?;
    let approval = approval_of(app, &c).await?;
    let orders: Vec<_> = app
        .store
        .orders(c.id)
        .await?
        .into_iter()
        .filter(|o| o.in_force())
        .map(|o| o.order)
        .collect();
    let plan = plan_load(
        req.days,
        eligibility.days,
        approval.map(|a| u8::try_from(a.requested_days).unwrap_or(0)),
        start,
        |d| anxin_domain::clinic::orders::order_on(&orders, d).and_then(|o| o.mg_on(d)),
    )?;
    let compartments: Vec<NewCompartment> = plan
        .iter()
        .map(|p| NewCompartment {
            index: p.index,
            day: p.day,
            mg: p.mg,
        })
        .collect();
    let vault = app.vault.clone();
    let actor = me.audit();
    let count = u8::try_from(plan.len()).unwrap_or(0);
    // The secret is drawn once the load has its id (the codes depend on it), and drawn again
    // while two compartments would share a code.
    let mut secret_bytes = [0u8; 32];
    let load = create_load_in(
        work.conn(),
        &actor,
        &lockbox,
        c.id,
        &compartments,
        hour,
        |id| {
            secret_bytes = fresh_secret(
                lockbox.id,
                id,
                day_number(start),
                count,
                Digits::DEFAULT,
                || {
                    let mut b = [0u8; 32];
                    rand::rngs::OsRng.fill_bytes(&mut b);
                    b
                },
            );
            vault.seal_box_secret(id, &secret_bytes)
        },
        now,
    )
    .await?;
    let secret = Secret::from_bytes(&secret_bytes)
        .map_err(|_| Error::Internal("a fresh box secret was refused".into()))?;
    app.failpoint("load_box.after_load")?;
    let sms = &app.settings.sms.config;
    let templates = sms.templates();
    let lang = TextLang::from_tag(req.language.as_deref().unwrap_or("zh-CN"));
    let offset = app.settings.utc_offset;
    let at = |d: NaiveDate, h: u32| {
        d.and_hms_opt(h, 0, 0)
            .and_then(|t| offset.from_local_datetime(&t).single())
            .map(|t| t.to_utc())
            .ok_or_else(|| Error::Internal(format!("no instant for {d} {h}:00")))
    };
    let mut messages = Vec::with_capacity(plan.len());
    let masked = "*".repeat(usize::from(Digits::DEFAULT.get()));
    for p in &plan {
        let key = code_key(load.id, i64::from(p.index));
        let code = code_text(&secret, load.box_id, load.id, load.start_day, p.index);
        // The code rests only sealed; pages and logs see it masked.
        let real = templates.render(TextKind::DailyCode, lang, &sms.sender_name, &code);
        messages.push(NewMessage {
            sealed_text: Some(app.vault.seal_message(&key, &real)),
            idempotency_key: key,
            client_id: Some(c.id),
            site_id: c.site_id,
            recipient_e164: phone.clone(),
            text: templates.render(TextKind::DailyCode, lang, &sms.sender_name, &masked),
            not_before: at(p.day, u32::from(hour))?,
            expires_at: at(p.day + Duration::days(1), 0)?,
        });
    }
    let backend = work.backend();
    enqueue_batch_in(work.conn(), backend, &actor, &messages, now).await?;
    app.failpoint("load_box.after_codes")?;
    // The secret crosses the cable once, here; the box answers its status, which must show
    // the load just written before the unit of work commits.
    let status = plugged
        .provision(ProvisionData {
            load_id: load.id as u64,
            box_id: lockbox.id as u64,
            start_day: day_number(start),
            compartments: count,
            digits: Digits::DEFAULT.get(),
            now: box_time(now),
            secret: secret_bytes,
        })
        .await
        .map_err(|e| at_field(e, "serial"))?;
    secret_bytes = [0; 32];
    std::hint::black_box(&secret_bytes);
    let label = station::box_label(plugged.identity.serial);
    let firmware = {
        let [a, b, c] = plugged.identity.firmware;
        format!("{a}.{b}.{c}")
    };
    let written = status.state == BoxState::Loaded
        && status.load_id == load.id as u64
        && status.box_id == lockbox.id as u64
        && status.compartments == count
        && status.start_day == day_number(start);
    let finish = async {
        if !written {
            return Err(Error::from(
                Problem::new(Code::StationCheckFailed)
                    .field("serial")
                    .arg("serial", &label),
            ));
        }
        work.audit(
            anxin_storage::AuditEvent::new("box.provision", "client", c.id)
                .site(c.site_id)
                .reason(format!(
                    "load {}: secret written to box {} (firmware {firmware}) by the box station",
                    load.id, lockbox.serial
                )),
        )
        .await?;
        app.failpoint("load_box.before_commit")?;
        work.commit().await?;
        Ok(())
    };
    if let Err(e) = finish.await {
        // Nothing of the load was kept: the box gives it up too, so it can be loaded again.
        if let Err(undo) = plugged.empty(load.id as u64, box_time(now)).await {
            tracing::warn!(box_serial = %lockbox.serial, load = load.id, "the box still holds a load that was not kept: {undo}");
        }
        return Err(e);
    }
    Ok(LoadAnswer {
        load: LoadView::from(&load),
        compartments: plan.iter().map(CompartmentView::from).collect(),
        written: BoxWritten {
            serial: lockbox.serial.clone(),
            firmware,
            load_id: load.id,
            start_day: start,
            compartments: count,
            digits: Digits::DEFAULT.get(),
        },
    })
}

/// A problem placed at `field` (the station's refusals carry none of their own).
fn at_field(e: Error, field: &str) -> Error {
    match e {
        Error::Domain(DomainError::Refused(p)) if p.field.is_none() => p.field(field).into(),
        other => other,
    }
}

/// The box `lockbox` on the station, identified and empty. A box that still holds a load this
/// centre already took back (its wipe was lost), or a load the server never kept (a unit of
/// work that failed after the box was written), is emptied first; any other load is refused.
async fn plugged_empty(app: &App, lockbox: &LockBox) -> Result<Plugged> {
    let mut plugged = Plugged::open(
        app.settings.box_station.as_ref(),
        lockbox.id as u64,
        &lockbox.serial,
    )
    .await?;
    let id = plugged.identity;
    if id.serial != lockbox.id as u64 {
        return Err(Problem::new(Code::StationWrongBox)
            .arg("want", &lockbox.serial)
            .arg("got", station::box_label(id.serial))
            .into());
    }
    if plugged.is_empty() {
        return Ok(plugged);
    }
    let held = i64::try_from(id.load_id).unwrap_or(i64::MAX);
    let taken_back = match app.store.load(held).await {
        Ok(l) => {
            l.box_id == lockbox.id && !l.state.awaits_return() && id.state == BoxState::Exported
        }
        Err(anxin_storage::StoreError::Domain(DomainError::NotFound(_))) => true,
        Err(e) => return Err(e.into()),
    };
    if !taken_back {
        return Err(Problem::new(Code::StationBoxHoldsLoad)
            .arg("serial", &lockbox.serial)
            .arg("load", id.load_id)
            .into());
    }
    plugged.empty(id.load_id, box_time(app.now())).await?;
    Ok(plugged)
}

/// A load of the actor's centre.
pub async fn load_of(app: &App, me: &Actor, raw_id: &str) -> Result<Load> {
    let id: i64 = raw_id.trim().parse().map_err(|_| {
        DomainError::from(
            Problem::new(Code::IdMalformed)
                .field("id")
                .arg("value", raw_id.trim()),
        )
    })?;
    let load = app.store.load(id).await.map_err(|e| match e {
        anxin_storage::StoreError::Domain(DomainError::NotFound(_)) => {
            Error::from(Problem::new(Code::LoadNotHere).arg("id", id))
        }
        other => other.into(),
    })?;
    if load.site_id != me.site_id {
        return Err(Problem::new(Code::LoadNotHere).arg("id", id).into());
    }
    Ok(load)
}

/// One compartment of a load as the record shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoadCompartment {
    pub index: u8,
    pub day: NaiveDate,
    pub mg: u32,
    /// The rule of the dose it holds (`take_home_pending`, `take_home`, `take_home_unopened`,
    /// `take_home_lost`).
    pub status: String,
}

/// A load with its box's serial and its compartments.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoadWithCompartments {
    pub load: LoadView,
    pub serial: String,
    pub compartments: Vec<LoadCompartment>,
    /// The load as stored (for the pages: its challenge, whether its secret is erased).
    #[serde(skip)]
    #[schemars(skip)]
    pub stored: Load,
}

/// The serial of the box a load is in.
pub async fn serial_of(app: &App, load: &Load) -> Result<String> {
    app.store
        .boxes(load.site_id)
        .await?
        .into_iter()
        .find(|b| b.id == load.box_id)
        .map(|b| b.serial)
        .ok_or_else(|| Error::Internal(format!("load {} names no box of its centre", load.id)))
}

/// A client's loads, newest first, with their compartments, for a caller that has already
/// read (and audited) the client's record.
pub async fn loads_with_compartments(
    app: &App,
    client_id: i64,
) -> Result<Vec<LoadWithCompartments>> {
    let loads = app.store.loads_of_client(client_id).await?;
    // The serials of the boxes, read once per centre the loads were made at (a transferred
    // client's earlier loads belong to the centre that made them).
    let mut serials = std::collections::HashMap::new();
    let sites: std::collections::BTreeSet<i64> = loads.iter().map(|l| l.site_id).collect();
    for site in sites {
        for b in app.store.boxes(site).await? {
            serials.insert(b.id, b.serial);
        }
    }
    let mut out = vec![];
    for l in loads {
        let compartments = app
            .store
            .compartments(l.id)
            .await?
            .into_iter()
            .map(|(index, day, mg, status)| LoadCompartment {
                index,
                day,
                mg,
                status,
            })
            .collect();
        out.push(LoadWithCompartments {
            load: LoadView::from(&l),
            serial: serials.get(&l.box_id).cloned().ok_or_else(|| {
                Error::Internal(format!("load {} names no box of its centre", l.id))
            })?,
            compartments,
            stored: l,
        });
    }
    Ok(out)
}

/// A client's loads (the record read is audited).
pub async fn loads_of(app: &App, me: &Actor, client_id: i64) -> Result<Vec<LoadWithCompartments>> {
    me.require(Permission::ClinicalRead)?;
    let c = app
        .store
        .read_client(&me.audit(), client_id, "take-home loads", app.now())
        .await?;
    loads_with_compartments(app, c.id).await
}

/// The printable hand-out sheet of a load.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Sheet {
    pub load_id: i64,
    pub uic: String,
    pub serial: String,
    pub compartments: Vec<CompartmentView>,
}

/// The hand-out sheet of a load of the actor's centre (the record read is audited).
pub async fn sheet(app: &App, me: &Actor, load_id: &str) -> Result<Sheet> {
    me.require(Permission::TakeHomeManage)?;
    let load = load_of(app, me, load_id).await?;
    let c = app
        .store
        .read_client(&me.audit(), load.client_id, "hand-out sheet", app.now())
        .await?;
    let compartments = app
        .store
        .compartments(load.id)
        .await?
        .into_iter()
        .map(|(index, day, mg, _)| CompartmentView { index, day, mg })
        .collect();
    Ok(Sheet {
        load_id: load.id,
        uic: c.uic,
        serial: serial_of(app, &load).await?,
        compartments,
    })
}

/// Hand-out: the phone number for the codes was confirmed with the client.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandOut {
    /// The client confirmed the phone number the codes go to.
    #[serde(default)]
    pub phone_confirmed: bool,
}

/// Hands a loaded box to its client.
pub async fn hand_out(app: &App, me: &Actor, load_id: &str, req: &HandOut) -> Result<()> {
    me.require(Permission::TakeHomeManage)?;
    let load = load_of(app, me, load_id).await?;
    if !req.phone_confirmed {
        return Err(Problem::new(Code::HandOutPhoneUnconfirmed)
            .field("phone_confirmed")
            .into());
    }
    if load.state != LoadState::Loaded {
        return Err(Problem::new(Code::LoadWrongState)
            .arg("id", load.id)
            .arg("state", load.state)
            .into());
    }
    app.store
        .move_load(
            &me.audit(),
            &load,
            anxin_domain::boxes::BoxState::WithClient,
            "phone confirmed",
            app.now(),
        )
        .await?;
    Ok(())
}

/// Withholding a box's codes or reporting it lost: a reason, and for withholding the first day
/// (default today).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Withhold {
    pub reason: String,
    #[serde(default)]
    pub from: Option<String>,
}

/// How many queued codes were stopped.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct CodesStopped {
    pub codes_stopped: u64,
}

fn reason_of(req: &Withhold) -> Result<String> {
    crate::identity::bounded("reason", &req.reason)
}

/// Refuses unless the load is loaded or out with its client.
fn must_be_out(load: &Load) -> Result<()> {
    if load.state.is_out() {
        Ok(())
    } else {
        Err(Problem::new(Code::LoadWrongState)
            .arg("id", load.id)
            .arg("state", load.state)
            .into())
    }
}

/// Stops a load's codes from a day on (the box stays with the client; the window doses).
pub async fn withhold(
    app: &App,
    me: &Actor,
    load_id: &str,
    req: &Withhold,
) -> Result<CodesStopped> {
    me.require(Permission::TakeHomeManage)?;
    let load = load_of(app, me, load_id).await?;
    let reason = reason_of(req)?;
    let from = match req.from.as_deref().map(str::trim) {
        None | Some("") => app.today(),
        Some(f) => parse_date("from", f)?,
    };
    must_be_out(&load)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let stopped = work.withhold_codes(&load, from, &reason).await?;
    work.commit().await?;
    Ok(CodesStopped {
        codes_stopped: stopped,
    })
}

/// Reports a box lost: its codes stop from today and the load and box become lost, in one unit
/// of work.
pub async fn report_lost(app: &App, me: &Actor, load_id: &str, req: &Withhold) -> Result<()> {
    me.require(Permission::TakeHomeManage)?;
    let load = load_of(app, me, load_id).await?;
    let reason = reason_of(req)?;
    must_be_out(&load)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    work.withhold_codes(&load, app.today(), "box lost").await?;
    app.failpoint("report_lost.after_codes")?;
    work.move_load(&load, anxin_domain::boxes::BoxState::Lost, &reason)
        .await?;
    work.commit().await?;
    Ok(())
}

/// The challenge a return starts with: the staff type it into the box (or the box station
/// sends it), and the box's export must carry it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReturnStarted {
    pub load_id: i64,
    /// Eight digits at most (it is typed on the box's keypad).
    pub challenge: u32,
    pub issued_at: chrono::DateTime<chrono::Utc>,
}

/// Challenges are typed on an 8-digit keypad: below 10^8.
const CHALLENGE_MODULUS: u32 = 100_000_000;

/// Starts the return of a box: draws a fresh challenge for its export, replacing any earlier
/// one (so an export read before now is refused), in one audited unit of work.
pub async fn start_return(app: &App, me: &Actor, load_id: &str) -> Result<ReturnStarted> {
    me.require(Permission::TakeHomeManage)?;
    let load = load_of(app, me, load_id).await?;
    let challenge = issue_challenge(app, me, &load).await?;
    Ok(ReturnStarted {
        load_id: load.id,
        challenge,
        issued_at: app.now(),
    })
}

/// Refused: the load is not out or in the clinic awaiting its return (already reconciled, or lost).
fn not_awaiting_return(load: &Load) -> Result<()> {
    if load.state.awaits_return() {
        return Ok(());
    }
    Err(Problem::new(Code::LoadWrongState)
        .arg("id", load.id)
        .arg("state", load.state)
        .into())
}

/// Draws and records a fresh challenge for `load`'s export, replacing any earlier one.
async fn issue_challenge(app: &App, me: &Actor, load: &Load) -> Result<u32> {
    not_awaiting_return(load)?;
    let challenge = rand::rngs::OsRng.next_u32() % CHALLENGE_MODULUS;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    work.issue_return_challenge(load, challenge).await?;
    work.commit().await?;
    Ok(challenge)
}

/// The returned box's exported log.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// The exported log file, base64.
    pub log_base64: String,
}

/// What a returned box's verified log says about each compartment (indices from 0).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReconciliationView {
    /// Opened: their doses count as taken.
    pub opened: Vec<u8>,
    /// Still closed: their methadone goes back to stock.
    pub unopened: Vec<u8>,
    /// Opened although their code was never sent.
    pub opened_without_code: Vec<u8>,
    pub tamper_events: u32,
}

impl From<&anxin_domain::boxes::Reconciliation> for ReconciliationView {
    fn from(r: &anxin_domain::boxes::Reconciliation) -> Self {
        ReconciliationView {
            opened: r.opened.clone(),
            unopened: r.unopened.clone(),
            opened_without_code: r.opened_without_code.clone(),
            tamper_events: r.tamper_events,
        }
    }
}

/// The box is back: reconciliation, failed code attempts, whether it was tampered with.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReturnAnswer {
    pub reconciliation: ReconciliationView,
    pub failed_attempts: u32,
    pub tampering: bool,
    /// Records in the verified log.
    pub log_records: usize,
    /// How the box station read it, when it did.
    pub station: Option<StationRead>,
}

/// What the box station did at a return.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StationRead {
    /// The box's serial as printed on it.
    pub serial: String,
    /// The fresh challenge the export carried.
    pub challenge: u32,
    /// The box was emptied for its next load (if not, its next load empties it).
    pub wiped: bool,
}

/// The sealed secret of a load, opened.
pub fn secret_of(app: &App, load: &Load) -> Result<Secret> {
    let bytes = app
        .vault
        .open_box_secret(load.id, &load.sealed_secret)
        .map_err(|e| Error::Internal(format!("box secret of load {}: {e}", load.id)))?;
    Secret::from_bytes(&bytes).map_err(|_| Error::Internal("box secret of the wrong size".into()))
}

/// Takes a box back from an export read elsewhere (base64, after [`start_return`]): verifies
/// its log against the load's secret, reconciles and records the return.
pub async fn return_box(
    app: &App,
    me: &Actor,
    load_id: &str,
    req: &ReturnRequest,
) -> Result<ReturnAnswer> {
    me.require(Permission::TakeHomeManage)?;
    let load = load_of(app, me, load_id).await?;
    let bytes = base64_engine::decode(req.log_base64.trim())
        .ok_or_else(|| Error::from(Problem::new(Code::ExportMalformed).field("log_base64")))?;
    reconcile_export(app, me, &load, &bytes, "log_base64").await
}

/// Takes a box back through the box station: the box on the cable must hold this load; a
/// fresh challenge is drawn and sent, the export read and verified, the return reconciled and
/// recorded, and the box emptied for its next load (a wipe that fails is done at that load).
pub async fn return_by_station(app: &App, me: &Actor, load_id: &str) -> Result<ReturnAnswer> {
    me.require(Permission::TakeHomeManage)?;
    let mut load = load_of(app, me, load_id).await?;
    not_awaiting_return(&load)?;
    let serial = serial_of(app, &load).await?;
    let at = |e: Error| at_field(e, "station");
    let mut plugged = Plugged::open(
        app.settings.box_station.as_ref(),
        load.box_id as u64,
        &serial,
    )
    .await
    .map_err(at)?;
    let id = plugged.identity;
    if id.serial != load.box_id as u64 {
        return Err(at(Problem::new(Code::StationWrongBox)
            .arg("want", &serial)
            .arg("got", station::box_label(id.serial))
            .into()));
    }
    if plugged.is_empty() || id.load_id != load.id as u64 {
        return Err(at(Problem::new(Code::StationNotThisLoad)
            .arg("serial", &serial)
            .arg("load", load.id)
            .into()));
    }
    let challenge = issue_challenge(app, me, &load).await?;
    load.return_challenge = Some(challenge);
    let bytes = plugged
        .export(box_time(app.now()), challenge)
        .await
        .map_err(at)?;
    let mut answer = reconcile_export(app, me, &load, &bytes, "station").await?;
    let wiped = match plugged.wipe(load.id as u64).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(box_serial = %serial, load = load.id, "returned, but the box was not wiped (its next load wipes it): {e}");
            false
        }
    };
    answer.station = Some(StationRead {
        serial,
        challenge,
        wiped,
    });
    Ok(answer)
}

/// Verifies an exported log against the load's secret and the challenge just issued,
/// reconciles it with the codes released and records the return (and any tampering) in one
/// unit of work. Refusals are placed at `field`.
async fn reconcile_export(
    app: &App,
    me: &Actor,
    load: &Load,
    bytes: &[u8],
    field: &str,
) -> Result<ReturnAnswer> {
    // Already reconciled (a replayed export), or lost.
    not_awaiting_return(load)?;
    let Some(challenge) = load.return_challenge else {
        return Err(Problem::new(Code::ExportNoChallenge).field(field).into());
    };
    let secret = secret_of(app, load)?;
    let log =
        lockcode::verify_log(&secret, load.box_id as u64, load.id as u64, bytes).map_err(|e| {
            Error::from(
                Problem::new(Code::ExportDoesNotVerify)
                    .field(field)
                    .arg("load", load.id)
                    .arg("why", e),
            )
        })?;
    let summary = log.summary();
    if summary.challenge != challenge {
        return Err(Problem::new(Code::ExportStale)
            .field(field)
            .arg("got", summary.challenge)
            .arg("expected", challenge)
            .into());
    }
    let tamper = log
        .entries()
        .filter(|e| e.kind == lockcode::EventKind::Tamper)
        .count() as u32;
    let released = app.store.codes_released(load).await?;
    let r = anxin_domain::boxes::reconcile(
        u8::try_from(load.days).unwrap_or(0),
        summary.opened_mask,
        &released,
        tamper,
    );
    let json_r =
        serde_json::to_string(&r).map_err(|e| Error::Internal(format!("reconciliation: {e}")))?;
    let text = format!(
        "opened {:?}, unopened {:?}, opened without a code {:?}, tamper events {}, failed attempts {}",
        r.opened, r.unopened, r.opened_without_code, r.tamper_events, summary.lifetime_failures
    );
    let tampering = !r.opened_without_code.is_empty() || tamper > 0;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    work.return_load(load, &r.opened, app.today(), &json_r, &text)
        .await?;
    if tampering {
        work.audit(
            anxin_storage::AuditEvent::new("box.tamper", "client", load.client_id)
                .site(load.site_id)
                .reason(text.clone()),
        )
        .await?;
    }
    work.commit().await?;
    Ok(ReturnAnswer {
        reconciliation: ReconciliationView::from(&r),
        failed_attempts: summary.lifetime_failures,
        tampering,
        log_records: summary.records,
        station: None,
    })
}

/// Standard base64 without pulling an engine into every caller.
mod base64_engine {
    /// Decodes standard base64 (with padding); `None` when it is not.
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(s).ok()
    }
}

/// A box to register at the actor's centre.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoxRequest {
    /// The serial printed on the box (1–40 characters, unique in the deployment).
    pub serial: String,
}

/// Registers a box at the actor's centre (audited).
pub async fn register(app: &App, me: &Actor, req: &BoxRequest) -> Result<LockBox> {
    me.require(Permission::TakeHomeManage)?;
    Ok(app
        .store
        .add_box(&me.audit(), &req.serial, app.now())
        .await?)
}

/// The centre's boxes.
pub async fn registry(app: &App, me: &Actor) -> Result<Vec<LockBox>> {
    me.require(Permission::TakeHomeManage)?;
    Ok(app.store.boxes(me.site_id).await?)
}

/// A box that should be back: its last compartment's day has passed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OverdueBox {
    pub load_id: i64,
    pub client_id: i64,
    pub uic: String,
    pub serial: String,
    /// The day after the last compartment's day: the box was due back then.
    pub due_back: NaiveDate,
    pub days_late: i64,
    #[schemars(with = "String")]
    pub state: LoadState,
}

/// The centre's boxes not back by their due day (the day after their last compartment), most
/// late first.
pub async fn overdue(app: &App, me: &Actor) -> Result<Vec<OverdueBox>> {
    me.require(Permission::TakeHomeManage)?;
    let today = app.today();
    let mut out: Vec<OverdueBox> = app
        .store
        .loads_awaiting_return(me.site_id)
        .await?
        .into_iter()
        .filter_map(|(l, serial, uic)| {
            let due_back = l.start_day + Duration::days(l.days);
            (due_back < today).then(|| OverdueBox {
                load_id: l.id,
                client_id: l.client_id,
                uic,
                serial,
                due_back,
                days_late: (today - due_back).num_days(),
                state: l.state,
            })
        })
        .collect();
    out.sort_by_key(|o| std::cmp::Reverse(o.days_late));
    Ok(out)
}

/// Telling a client who calls today's code: the caller's answers to the identity questions,
/// as typed by the staff member on the phone. Both are compared with the record.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reveal {
    /// The caller's full name, as they say it.
    #[serde(default)]
    pub name: String,
    /// The last four characters of the caller's national ID (of the recorded phone number when
    /// the record has no national ID).
    #[serde(default)]
    pub id_last4: String,
}

/// Today's code, told to a caller whose answers matched.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Revealed {
    /// 1 for the first day of the load.
    pub compartment: i64,
    pub code: String,
}

/// Letters and digits only, upper-case: how answers and records are compared.
fn folded(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The last four letters or digits of a recorded value.
fn last4(s: &str) -> String {
    let f = folded(s);
    f.chars()
        .skip(f.chars().count().saturating_sub(4))
        .collect()
}

/// Tells a caller today's code of a box that is out, once their answers to the identity
/// questions match the record. Both the telling and a refused attempt are audited (never with
/// the code or the answers).
pub async fn reveal(app: &App, me: &Actor, load_id: &str, req: &Reveal) -> Result<Revealed> {
    me.require(Permission::CodeReveal)?;
    let load = load_of(app, me, load_id).await?;
    let mut missing = vec![];
    if folded(&req.name).is_empty() {
        missing.push("name");
    }
    if folded(&req.id_last4).chars().count() != 4 {
        missing.push("id_last4");
    }
    if let Some(first) = missing.first() {
        return Err(Problem::new(Code::RevealUnchecked)
            .field(*first)
            .arg("missing", missing.join(", "))
            .into());
    }
    let today = app.today();
    let offset = (today - load.start_day).num_days();
    if !(0..load.days).contains(&offset) || !load.state.is_out() {
        return Err(Problem::new(Code::RevealNoCompartment)
            .arg("id", load.id)
            .into());
    }
    if load.withheld_from.is_some_and(|w| w <= today) {
        return Err(Problem::new(Code::RevealStopped)
            .arg("id", load.id)
            .arg("reason", load.withhold_reason.clone().unwrap_or_default())
            .into());
    }
    let state = app.store.code_state(load.id, offset).await?;
    if state == Some(anxin_domain::sms::MessageState::Stopped) {
        return Err(Problem::new(Code::RevealStopped)
            .arg("id", load.id)
            .arg("reason", "dosed at the window")
            .into());
    }
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let identity = work
        .read_identity(load.client_id, "identity questions of a caller", &app.vault)
        .await?;
    let mut wrong = vec![];
    if identity.name.as_deref().map(folded) != Some(folded(&req.name)) {
        wrong.push("name");
    }
    let (recorded, asked) = match (&identity.national_id, &identity.phone) {
        (Some(id), _) => (last4(id), "national ID"),
        (None, Some(phone)) => (last4(phone), "phone"),
        (None, None) => (String::new(), "national ID"),
    };
    if recorded.is_empty() || recorded != folded(&req.id_last4) {
        wrong.push("id_last4");
    }
    if let Some(first) = wrong.first() {
        work.audit(
            anxin_storage::AuditEvent::new("code.reveal.refused", "client", load.client_id)
                .site(load.site_id)
                .reason(format!(
                    "load {}: the caller's answers did not match ({})",
                    load.id,
                    wrong.join(", ")
                )),
        )
        .await?;
        work.commit().await?;
        return Err(Problem::new(Code::RevealMismatch)
            .field(*first)
            .arg("wrong", wrong.join(", "))
            .into());
    }
    let secret = secret_of(app, &load)?;
    let idx = u8::try_from(offset).unwrap_or(0);
    let code = code_text(&secret, load.box_id, load.id, load.start_day, idx);
    work.audit(
        anxin_storage::AuditEvent::new("code.reveal", "client", load.client_id)
            .site(load.site_id)
            .reason(format!(
                "load {} compartment {}: told to a caller who answered the name and the last \
                 four of the {asked}",
                load.id,
                offset + 1
            )),
    )
    .await?;
    work.commit().await?;
    Ok(Revealed {
        compartment: offset + 1,
        code,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secret(n: u64) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(n.to_be_bytes()).into()
    }

    fn collides(b: &[u8; 32], digits: Digits) -> bool {
        let s = Secret::from_bytes(b).unwrap();
        lockcode::load_codes(&s, 7, 9, 20_000, 6, digits)
            .unwrap()
            .has_collision()
    }

    /// Two compartments sharing a code would let one code open both: such a secret is drawn
    /// again. At 6 digits a colliding secret turns up within some 10^5 draws.
    #[test]
    fn a_secret_with_colliding_codes_is_drawn_again() {
        let digits = Digits::new(6).unwrap();
        let bad = (0u64..).find(|&n| collides(&secret(n), digits)).unwrap();
        let mut drawn = vec![];
        let mut seq = [bad, bad + 1_000_000_000].into_iter();
        let got = fresh_secret(7, 9, 20_000, 6, digits, || {
            let n = seq.next().unwrap();
            drawn.push(n);
            secret(n)
        });
        assert_eq!(drawn, vec![bad, bad + 1_000_000_000]);
        assert_eq!(got, secret(bad + 1_000_000_000));
        assert!(!collides(&got, digits));
    }

    #[test]
    fn answers_compare_on_letters_and_digits() {
        assert_eq!(folded(" 周 强磊 "), "周强磊");
        assert_eq!(last4("53042319900101123x"), "123X");
        assert_eq!(last4("+86 138 0013 8000"), "8000");
    }
}
