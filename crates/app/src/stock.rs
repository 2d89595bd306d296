//! Methadone stock of a centre: deliveries, the volume expected now (opening close-out +
//! deliveries − doses at the window − doses put in boxes + unopened doses back from boxes),
//! and the evening close-out against the measured volume, flagged beyond the tolerance.

use anxin_domain::clinic::stock::{close_out, expected_ml, Receipt};
use anxin_domain::Permission;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Actor, App, Result};

/// A stock delivery.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    pub bottles: u32,
    pub ml_per_bottle: f64,
    pub concentration_mg_per_ml: f64,
    pub lot: String,
    #[serde(default)]
    pub received_on: Option<String>,
}

/// A stock delivery just recorded.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReceiptAnswer {
    pub id: i64,
    /// Volume delivered.
    pub ml: f64,
}

/// Records a delivery at `me`'s centre, received today or on a past day.
pub async fn receive(app: &App, me: &Actor, req: &ReceiptRequest) -> Result<ReceiptAnswer> {
    me.require(Permission::StockManage)?;
    let lot = crate::identity::bounded("lot", &req.lot)?;
    let r = Receipt {
        bottles: req.bottles,
        ml_per_bottle: req.ml_per_bottle,
        concentration_mg_per_ml: req.concentration_mg_per_ml,
        lot,
    };
    r.validate(&app.settings.clinic.stock)?;
    let on =
        crate::treatment::past_or_today("received_on", req.received_on.as_deref(), app.today())?;
    let id = app
        .store
        .add_stock_receipt(&me.audit(), on, &r, app.now())
        .await?;
    Ok(ReceiptAnswer { id, ml: r.ml() })
}

/// The stock expected now at a site.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StockNow {
    pub day: NaiveDate,
    pub opening_ml: f64,
    /// The day of the close-out the opening volume comes from.
    pub opening_day: Option<NaiveDate>,
    pub received_ml: f64,
    /// What left the stock, net: `window_mg + boxed_mg - returned_mg`.
    pub dosed_mg: f64,
    /// Given at the window.
    pub window_mg: f64,
    /// Put into take-home boxes, on the day each was loaded.
    pub boxed_mg: f64,
    /// Back from returned boxes' unopened compartments, on the day each was reconciled.
    pub returned_mg: f64,
    pub expected_ml: f64,
    pub concentration_mg_per_ml: f64,
}

/// A past close-out.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CloseOutView {
    pub day: NaiveDate,
    pub expected_ml: f64,
    pub measured_ml: f64,
    pub variance_ml: f64,
    pub reason: String,
}

/// The stock now and the close-outs of the last days.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StockView {
    #[serde(flatten)]
    pub now: StockNow,
    pub closeouts: Vec<CloseOutView>,
}

/// Today's close-out just saved.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CloseOutAnswer {
    pub day: NaiveDate,
    pub expected_ml: f64,
    pub measured_ml: f64,
    pub variance_ml: f64,
    /// The variance is beyond the tolerance.
    pub flagged: bool,
}

/// The stock expected now at `me`'s centre.
pub async fn now(app: &App, me: &Actor) -> Result<StockNow> {
    me.require(Permission::StockManage)?;
    let today = app.today();
    let stock = &app.settings.clinic.stock;
    let (last, received, moves) = app
        .store
        .stock_movements(me.site_id, today, app.settings.utc_offset)
        .await?;
    let dosed = moves.net_mg();
    let opening = last.as_ref().map_or(0.0, |c| c.measured_ml);
    Ok(StockNow {
        day: today,
        opening_ml: opening,
        opening_day: last.as_ref().map(|c| c.day),
        received_ml: received,
        dosed_mg: dosed,
        window_mg: moves.window_mg,
        boxed_mg: moves.boxed_mg,
        returned_mg: moves.returned_mg,
        expected_ml: expected_ml(opening, received, dosed, stock),
        concentration_mg_per_ml: stock.concentration_mg_per_ml,
    })
}

/// The stock now and the close-outs of the last `days` days at `me`'s centre.
pub async fn view(app: &App, me: &Actor, days: i64) -> Result<StockView> {
    let now = now(app, me).await?;
    let closeouts = app.store.closeouts(me.site_id, days).await?;
    Ok(StockView {
        now,
        closeouts: closeouts
            .iter()
            .map(|c| CloseOutView {
                day: c.day,
                expected_ml: c.expected_ml,
                measured_ml: c.measured_ml,
                variance_ml: c.variance_ml,
                reason: c.reason.clone(),
            })
            .collect(),
    })
}

/// The day's close-out.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseOutRequest {
    pub measured_ml: f64,
    #[serde(default)]
    pub reason: String,
}

/// Closes today's stock at `me`'s centre with the measured volume (a variance beyond the
/// tolerance needs a reason).
pub async fn close(app: &App, me: &Actor, req: &CloseOutRequest) -> Result<CloseOutAnswer> {
    let expected = now(app, me).await?;
    let c = close_out(
        expected.expected_ml,
        req.measured_ml,
        &req.reason,
        &app.settings.clinic.stock,
    )?;
    app.store
        .save_closeout(&me.audit(), expected.day, &c, req.reason.trim(), app.now())
        .await?;
    Ok(CloseOutAnswer {
        day: expected.day,
        expected_ml: c.expected_ml,
        measured_ml: c.measured_ml,
        variance_ml: c.variance_ml,
        flagged: c.flagged,
    })
}
