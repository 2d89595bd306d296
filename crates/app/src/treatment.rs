//! A client's course of treatment at the centre: stage changes, discharge, readmission and
//! transfer. Ending the treatment here (discharge, compulsory isolated treatment, transfer)
//! ends every take-home box the client holds in the same unit of work: the codes stop, GPS
//! tracking and the police's box state stop, and the box must still come back. The caller must
//! confirm that (`confirm_box_out`) when a box is out, so a page can warn before it happens.

use anxin_domain::clinic::stage::Stage;
use anxin_domain::{Code, Permission, Problem};
use anxin_storage::{Client, Work};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{parse_date, Actor, App, Result};

/// A change of stage.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    /// voluntary, community_treatment, compulsory_isolated, community_rehabilitation
    pub stage: String,
    /// YYYY-MM-DD, default today
    #[serde(default)]
    pub since: Option<String>,
    /// YYYY-MM-DD: first day of the community-treatment or rehabilitation order (default:
    /// `since`); refused for the other stages.
    #[serde(default)]
    pub order_start: Option<String>,
    /// YYYY-MM-DD: last day of the order (default and longest: three years after its start).
    #[serde(default)]
    pub order_end: Option<String>,
    /// Required when a take-home box is out and the new stage is not dosed at the centre:
    /// the caller has seen that the box's codes and tracking stop.
    #[serde(default)]
    pub confirm_box_out: bool,
}

/// A discharge.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DischargeRequest {
    pub reason: String,
    /// YYYY-MM-DD, default today
    #[serde(default)]
    pub on: Option<String>,
    /// Required when a take-home box is out: the caller has seen that its codes and tracking
    /// stop.
    #[serde(default)]
    pub confirm_box_out: bool,
}

/// A transfer to another centre of the deployment.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The other centre's code.
    pub site: String,
    /// YYYY-MM-DD, the day of transfer, default today
    #[serde(default)]
    pub from: Option<String>,
    /// Required when a take-home box is out: the caller has seen that its codes and tracking
    /// stop.
    #[serde(default)]
    pub confirm_box_out: bool,
}

/// What ending a treatment did to the client's boxes.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct TreatmentChanged {
    /// Serials of the boxes whose load ended (they must come back).
    pub boxes_ended: Vec<String>,
    /// Queued codes that will not be sent.
    pub codes_stopped: u64,
}

/// A date of `field` that is today or earlier (empty: today).
pub fn past_or_today(field: &str, raw: Option<&str>, today: NaiveDate) -> Result<NaiveDate> {
    let d = match raw.map(str::trim) {
        None | Some("") => today,
        Some(r) => parse_date(field, r)?,
    };
    if d > today {
        return Err(Problem::new(Code::DateInFuture).field(field).into());
    }
    Ok(d)
}

/// A date of `field` that may be left empty.
pub fn optional_date(field: &str, raw: Option<&str>) -> Result<Option<NaiveDate>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(r) => Ok(Some(parse_date(field, r)?)),
    }
}

/// The serials of the boxes out with client `c` (for the warning before ending a treatment).
pub async fn boxes_out(app: &App, c: &Client) -> Result<Vec<String>> {
    let loads = app.store.loads_of_client(c.id).await?;
    let boxes = app.store.boxes(c.site_id).await?;
    Ok(loads
        .iter()
        .filter(|l| l.state.is_out())
        .filter_map(|l| boxes.iter().find(|b| b.id == l.box_id))
        .map(|b| b.serial.clone())
        .collect())
}

/// Ends every live load of `c` inside `work`: refused unless `confirmed` when there is one.
pub(crate) async fn end_boxes(
    work: &mut Work,
    c: &Client,
    from: NaiveDate,
    why: &str,
    confirmed: bool,
) -> Result<TreatmentChanged> {
    let live = work.live_loads(c.id).await?;
    if let (Some((_, serial)), false) = (live.first(), confirmed) {
        return Err(Problem::new(Code::TreatmentEndBoxOut)
            .field("confirm_box_out")
            .arg("serial", serial)
            .into());
    }
    let mut changed = TreatmentChanged::default();
    for (load, serial) in &live {
        changed.codes_stopped += work.end_load(load, from, why).await?;
        changed.boxes_ended.push(serial.clone());
    }
    Ok(changed)
}

/// Discharges a client: dosing stops, and a box out with them ends, all in one unit of work.
pub async fn discharge(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &DischargeRequest,
) -> Result<TreatmentChanged> {
    me.require(Permission::ClientWrite)?;
    let on = past_or_today("on", req.on.as_deref(), app.today())?;
    let reason = crate::identity::bounded("reason", &req.reason)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let c = work.client_for_write(client_id).await?;
    work.discharge(&c, on, &reason).await?;
    let changed = end_boxes(
        &mut work,
        &c,
        on,
        "treatment ended: discharge",
        req.confirm_box_out,
    )
    .await?;
    work.commit().await?;
    Ok(changed)
}

/// Moves a client to another stage; a stage not dosed at the centre (compulsory isolated
/// treatment) ends a box out with them in the same unit of work.
pub async fn set_stage(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &StageRequest,
) -> Result<TreatmentChanged> {
    me.require(Permission::ClientWrite)?;
    let stage: Stage = req.stage.parse()?;
    let today = app.today();
    let since = past_or_today("since", req.since.as_deref(), today)?;
    let order = anxin_domain::clinic::stage::order_term(
        stage,
        since,
        optional_date("order_start", req.order_start.as_deref())?,
        optional_date("order_end", req.order_end.as_deref())?,
        today,
    )?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let c = work.client_for_write(client_id).await?;
    work.set_stage(&c, stage, since, order).await?;
    let changed = if stage.doses_at_centre() {
        TreatmentChanged::default()
    } else {
        let why = format!("treatment ended: stage {stage}");
        end_boxes(&mut work, &c, since, &why, req.confirm_box_out).await?
    };
    work.commit().await?;
    Ok(changed)
}

/// Re-admits a discharged client today (never one whose death is recorded).
pub async fn readmit(app: &App, me: &Actor, client_id: i64) -> Result<()> {
    me.require(Permission::ClientWrite)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let c = work.client_for_write(client_id).await?;
    if let Some(d) = app.store.death(c.id).await? {
        return Err(Problem::new(Code::DeathAlreadyRecorded)
            .arg("day", d.died_on.to_string())
            .into());
    }
    work.readmit(&c, app.today()).await?;
    work.commit().await?;
    Ok(())
}

/// Transfers a client's care to another centre; a box out with them ends here.
pub async fn transfer(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &TransferRequest,
) -> Result<TreatmentChanged> {
    me.require(Permission::ClientWrite)?;
    let site = other_site(app, &req.site).await?;
    let on = past_or_today("from", req.from.as_deref(), app.today())?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let c = work.client_for_write(client_id).await?;
    work.transfer(&c, (site.id, &site.code), on).await?;
    let why = format!("treatment ended: transfer to {}", site.code);
    let changed = end_boxes(&mut work, &c, on, &why, req.confirm_box_out).await?;
    work.commit().await?;
    Ok(changed)
}

/// A guest-dosing arrangement at another site.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteMove {
    /// The other site's code.
    pub site: String,
    /// YYYY-MM-DD, the first day (default today)
    #[serde(default)]
    pub from: Option<String>,
    /// YYYY-MM-DD, guest dosing only: last day
    #[serde(default)]
    pub to: Option<String>,
}

/// The centre a form names by code (any case), refused at `site` when none has it.
async fn other_site(app: &App, raw: &str) -> Result<anxin_storage::Site> {
    let code = raw.trim().to_uppercase();
    app.store.site_by_code(raw).await.map_err(|_| {
        Problem::new(Code::SiteUnknown)
            .field("site")
            .arg("code", code)
            .into()
    })
}

/// Lets client `client_id` dose as a guest at another centre from `from` (today or later)
/// to `to`.
pub async fn guest(app: &App, me: &Actor, client_id: i64, req: &SiteMove) -> Result<()> {
    me.require(Permission::ClientWrite)?;
    let site = other_site(app, &req.site).await?;
    if site.id == me.site_id {
        return Err(Problem::new(Code::TransferSameSite).field("site").into());
    }
    let today = app.today();
    let from = match req.from.as_deref().map(str::trim) {
        None | Some("") => today,
        Some(f) => parse_date("from", f)?,
    };
    let to = parse_date("to", req.to.as_deref().unwrap_or(""))?;
    anxin_domain::clinic::guest::check_period(from, to, today)?;
    app.store
        .add_guest_dosing(&me.audit(), client_id, site.id, from, to, app.now())
        .await?;
    Ok(())
}
