//! Take-home boxes: loading a box for a client (a fresh secret, one compartment a day within
//! eligibility and approval, each day's code queued in the SMS outbox at the client's hour) and
//! handing it out. Loading is one unit of work: the load, its pending doses, its codes and its
//! audit entries are written together or not at all.

use anxin_domain::boxes::{plan_load, Compartment, LoadState};
use anxin_domain::sms::{TextKind, TextLang};
use anxin_domain::{Code, DomainError, Permission, Problem};
use anxin_storage::boxes::{code_key, create_load_in, Load, NewCompartment};
use anxin_storage::outbox::{enqueue_batch_in, NewMessage};
use chrono::{Duration, NaiveDate, TimeZone};
use lockcode::{derive_code, Digits, Secret};
use rand::RngCore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

/// What the box is programmed with (shown once, at loading).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Provision {
    pub box_id: i64,
    pub load_id: i64,
    pub secret_hex: String,
    /// Day number of the first compartment (days since 1970-01-01).
    pub start_day: u32,
    pub compartments: usize,
    pub digits: u8,
}

/// The answer to a load.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoadAnswer {
    pub load: LoadView,
    pub compartments: Vec<CompartmentView>,
    pub provision: Provision,
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
        .map(|o| o.order)
        .collect();
    let plan = plan_load(
        req.days,
        eligibility.days,
        approval.map(|a| u8::try_from(a.requested_days).unwrap_or(0)),
        start,
        |d| anxin_domain::clinic::orders::order_on(&orders, d).and_then(|o| o.mg_on(d)),
    )?;
    let mut secret_bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret_bytes);
    let secret = Secret::from_bytes(&secret_bytes)
        .map_err(|_| Error::Internal("a fresh box secret was refused".into()))?;
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
    let load = create_load_in(
        work.conn(),
        &actor,
        &lockbox,
        c.id,
        &compartments,
        hour,
        |id| vault.seal_box_secret(id, &secret_bytes),
        now,
    )
    .await?;
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
    for p in &plan {
        messages.push(NewMessage {
            idempotency_key: code_key(load.id, i64::from(p.index)),
            client_id: Some(c.id),
            site_id: c.site_id,
            recipient_e164: phone.clone(),
            text: templates.render(
                TextKind::DailyCode,
                lang,
                &sms.sender_name,
                &code_text(&secret, load.box_id, load.id, load.start_day, p.index),
            ),
            not_before: at(p.day, u32::from(hour))?,
            expires_at: at(p.day + Duration::days(1), 0)?,
        });
    }
    let backend = work.backend();
    enqueue_batch_in(work.conn(), backend, &actor, &messages, now).await?;
    app.failpoint("load_box.after_codes")?;
    work.audit(
        anxin_storage::AuditEvent::new("box.provision", "client", c.id)
            .site(c.site_id)
            .reason(format!(
                "load {}: secret written to box {}",
                load.id, lockbox.serial
            )),
    )
    .await?;
    app.failpoint("load_box.before_commit")?;
    work.commit().await?;
    Ok(LoadAnswer {
        load: LoadView::from(&load),
        compartments: plan.iter().map(CompartmentView::from).collect(),
        provision: Provision {
            box_id: load.box_id,
            load_id: load.id,
            secret_hex: hex::encode(secret_bytes),
            start_day: day_number(start),
            compartments: plan.len(),
            digits: Digits::DEFAULT.get(),
        },
    })
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
}

/// The sealed secret of a load, opened.
pub fn secret_of(app: &App, load: &Load) -> Result<Secret> {
    let bytes = app
        .vault
        .open_box_secret(load.id, &load.sealed_secret)
        .map_err(|e| Error::Internal(format!("box secret of load {}: {e}", load.id)))?;
    Secret::from_bytes(&bytes).map_err(|_| Error::Internal("box secret of the wrong size".into()))
}

/// Takes a box back: verifies its log against the load's secret, reconciles and records the
/// return (and any tampering) in one unit of work.
pub async fn return_box(
    app: &App,
    me: &Actor,
    load_id: &str,
    req: &ReturnRequest,
) -> Result<ReturnAnswer> {
    use base64_engine::decode;
    me.require(Permission::TakeHomeManage)?;
    let load = load_of(app, me, load_id).await?;
    let bytes = decode(req.log_base64.trim())
        .ok_or_else(|| Error::from(Problem::new(Code::ExportMalformed).field("log_base64")))?;
    let secret = secret_of(app, &load)?;
    let log =
        lockcode::verify_log(&secret, load.box_id as u64, load.id as u64, &bytes).map_err(|e| {
            Error::from(
                Problem::new(Code::ExportDoesNotVerify)
                    .field("log_base64")
                    .arg("load", load.id)
                    .arg("why", e),
            )
        })?;
    let summary = log.summary();
    let tamper = log
        .entries()
        .filter(|e| e.kind == lockcode::EventKind::Tamper)
        .count() as u32;
    let released = app.store.codes_released(&load).await?;
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
    work.return_load(&load, &r.opened, app.today(), &json_r, &text)
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
