//! Overdoses and deaths as outcomes of treatment (`anxin_domain::clinic::outcomes`). An overdose
//! event has its day (today or earlier), whether naloxone was given and how it ended; one that
//! ended in death records the death too, with overdose as its cause. Recording a death ends the
//! treatment in the same unit of work as a discharge does (`treatment::discharge`): the client is
//! discharged on the day of death (unless already discharged) and every live box load ends
//! (`Work::end_load`), with `confirm_box_out` asked for first when a box is out. Recorded by the
//! roles that change a client's course (`ClientWrite`); both are counted in the indicators.

use anxin_domain::clinic::outcomes::{DeathCause, OverdoseOutcome};
use anxin_domain::Permission;
use anxin_storage::{Client, Work};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::treatment::{end_boxes, past_or_today, TreatmentChanged};
use crate::{Actor, App, Result};

/// An overdose event.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverdoseRequest {
    /// YYYY-MM-DD, default today; never after today.
    #[serde(default)]
    pub on: Option<String>,
    /// Whether naloxone was given.
    pub naloxone: bool,
    /// recovered_on_site, taken_to_hospital or died
    pub outcome: String,
    /// With `died`, when a take-home box is out: the caller has seen that its codes and
    /// tracking stop.
    #[serde(default)]
    pub confirm_box_out: bool,
}

/// A death.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeathRequest {
    /// YYYY-MM-DD, default today; never after today.
    #[serde(default)]
    pub on: Option<String>,
    /// overdose, hiv_related, other_illness, accident_violence or unknown
    pub cause: String,
    /// Required when a take-home box is out: the caller has seen that its codes and tracking
    /// stop.
    #[serde(default)]
    pub confirm_box_out: bool,
}

/// What recording an outcome did.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct OutcomeRecorded {
    /// The overdose event's id, when one was recorded.
    pub overdose_id: Option<i64>,
    /// Whether a death was recorded (and the treatment ended).
    pub death: bool,
    /// What ending the treatment did to the client's boxes.
    pub treatment: TreatmentChanged,
}

/// Records the death of `c` in `work`, and ends the treatment as a discharge does.
async fn death_in(
    work: &mut Work,
    c: &Client,
    on: NaiveDate,
    cause: DeathCause,
    overdose_id: Option<i64>,
    confirm_box_out: bool,
) -> Result<TreatmentChanged> {
    work.record_death(c, on, cause, overdose_id).await?;
    if c.discharged_on.is_some() {
        return Ok(TreatmentChanged::default());
    }
    work.discharge(c, on, &format!("died ({})", cause.as_str()))
        .await?;
    end_boxes(work, c, on, "treatment ended: death", confirm_box_out).await
}

/// Records an overdose event of client `client_id`; one that ended in death records the death.
pub async fn overdose(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &OverdoseRequest,
) -> Result<OutcomeRecorded> {
    me.require(Permission::ClientWrite)?;
    let on = past_or_today("on", req.on.as_deref(), app.today())?;
    let outcome = OverdoseOutcome::parse(&req.outcome, "outcome")?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let c = work.client_for_write(client_id).await?;
    let id = work.add_overdose(&c, on, req.naloxone, outcome).await?;
    let mut done = OutcomeRecorded {
        overdose_id: Some(id),
        ..OutcomeRecorded::default()
    };
    if outcome == OverdoseOutcome::Died {
        done.treatment = death_in(
            &mut work,
            &c,
            on,
            DeathCause::Overdose,
            Some(id),
            req.confirm_box_out,
        )
        .await?;
        done.death = true;
    }
    work.commit().await?;
    Ok(done)
}

/// Records the death of client `client_id`: the treatment ends with it.
pub async fn death(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &DeathRequest,
) -> Result<OutcomeRecorded> {
    me.require(Permission::ClientWrite)?;
    let on = past_or_today("on", req.on.as_deref(), app.today())?;
    let cause = DeathCause::parse(&req.cause, "cause")?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let c = work.client_for_write(client_id).await?;
    let treatment = death_in(&mut work, &c, on, cause, None, req.confirm_box_out).await?;
    work.commit().await?;
    Ok(OutcomeRecorded {
        overdose_id: None,
        death: true,
        treatment,
    })
}
