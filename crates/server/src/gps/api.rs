//! The box GPS routes. Staff (take-home managers) fit trackers, set a load's home zone under the
//! client's consent, look at a box (audited as a read of the client's record) and acknowledge
//! alarms. The police have one route of their own: the state word of the box under an approved
//! request and since when — never a position — and each look goes to the disclosure ledger.

use anxin_domain::gps::Zone;
use anxin_domain::{Access, DomainError, Permission};
use anxin_storage::gps::GPS_PURPOSE;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::CurrentUser;
use crate::boxes::load_of;
use crate::error::AppResult;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

/// Fitting a tracker to a box.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackerBody {
    /// The tracker's IMEI (15 digits).
    pub imei: String,
}

/// Fits the tracker `imei` to the box `serial` of `me`'s centre.
pub async fn fit_tracker(
    st: &AppState,
    me: &CurrentUser,
    serial: &str,
    imei: &str,
) -> AppResult<TrackerFitted> {
    let imei = imei.trim();
    if !anxin_tracker::valid_imei(imei) {
        return Err(DomainError::invalid("imei", "must be the tracker's 15-digit IMEI").into());
    }
    let b = st.store.box_by_serial(&me.actor(), serial).await?;
    let t = st
        .store
        .register_tracker(&me.actor(), b.id, imei, st.now())
        .await?;
    st.gps.invalidate();
    Ok(TrackerFitted {
        imei: t.imei,
        r#box: b.serial,
    })
}

/// A tracker just fitted.
#[derive(Serialize, JsonSchema)]
pub struct TrackerFitted {
    pub imei: String,
    /// The box's serial.
    #[serde(rename = "box")]
    pub r#box: String,
}

async fn api_fit(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(serial): Path<String>,
    ApiJson(req): ApiJson<TrackerBody>,
) -> AppResult<(StatusCode, Json<TrackerFitted>)> {
    Ok((
        StatusCode::CREATED,
        Json(fit_tracker(&st, &me, &serial, &req.imei).await?),
    ))
}

/// A home zone: a circle (`lat`, `lon`, `radius_m`) or a polygon (`points`, each `[lat, lon]`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneBody {
    /// `circle` or `polygon`.
    pub kind: String,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub radius_m: Option<f64>,
    #[serde(default)]
    pub points: Option<Vec<[f64; 2]>>,
}

impl ZoneBody {
    /// The zone it describes, validated; errors name the field.
    pub fn zone(&self) -> Result<Zone, DomainError> {
        let need = |v: Option<f64>, f: &str| v.ok_or_else(|| DomainError::invalid(f, "missing"));
        let z = match self.kind.as_str() {
            "circle" => Zone::Circle {
                lat: need(self.lat, "zone.lat")?,
                lon: need(self.lon, "zone.lon")?,
                radius_m: need(self.radius_m, "zone.radius_m")?,
            },
            "polygon" => Zone::Polygon {
                points: self
                    .points
                    .clone()
                    .ok_or_else(|| DomainError::invalid("zone.points", "missing"))?,
            },
            other => {
                return Err(DomainError::invalid(
                    "zone.kind",
                    format!("`{other}` is neither circle nor polygon"),
                ))
            }
        };
        z.validate()?;
        Ok(z)
    }
}

/// Sets the home zone of load `raw` (a box out with its client), under an active GPS consent.
pub async fn set_zone(st: &AppState, me: &CurrentUser, raw: &str, zone: &Zone) -> AppResult<()> {
    let load = load_of(st, me, raw).await?;
    if !load.state.is_out() {
        return Err(DomainError::Conflict(format!(
            "load {} is {}: a home zone is set for a box that goes out",
            load.id, load.state
        ))
        .into());
    }
    if st.store.tracker_of_box(load.box_id).await?.is_none() {
        return Err(DomainError::invalid("load", "this box has no tracker fitted").into());
    }
    let today = st.today();
    let consent = st
        .store
        .consents(load.client_id)
        .await?
        .into_iter()
        .find(|c| c.purpose == GPS_PURPOSE && c.active_on(today))
        .ok_or_else(|| {
            DomainError::invalid(
                "consent",
                "the client has not consented to box GPS; record the consent first",
            )
        })?;
    let zone_json = serde_json::to_string(zone).map_err(|_| crate::error::AppError::Internal)?;
    st.store
        .set_home_zone(
            &me.actor(),
            load.id,
            load.box_id,
            load.client_id,
            load.site_id,
            consent.id,
            &zone_json,
            st.now(),
        )
        .await?;
    st.gps.invalidate();
    Ok(())
}

async fn api_set_zone(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ZoneBody>,
) -> AppResult<StatusCode> {
    set_zone(&st, &me, &id, &req.zone()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops comparing load `raw`'s box with a zone; its positions are deleted.
pub async fn clear_zone(st: &AppState, me: &CurrentUser, raw: &str) -> AppResult<()> {
    let load = load_of(st, me, raw).await?;
    st.store
        .clear_home_zone(
            &me.actor(),
            load.id,
            load.box_id,
            load.client_id,
            load.site_id,
            st.now(),
        )
        .await?;
    st.gps.invalidate();
    Ok(())
}

async fn api_clear_zone(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    clear_zone(&st, &me, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn time(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.to_rfc3339())
}

/// The JSON shape of a home zone (schema only; [`Zone`] writes it).
#[derive(JsonSchema)]
#[schemars(rename = "HomeZone")]
#[allow(dead_code)]
struct ZoneShape {
    /// `circle` or `polygon`.
    kind: String,
    /// Circle only.
    lat: Option<f64>,
    /// Circle only.
    lon: Option<f64>,
    /// Circle only.
    radius_m: Option<f64>,
    /// Polygon only: `[lat, lon]` pairs.
    points: Option<Vec<[f64; 2]>>,
}

/// One position fix.
#[derive(Serialize, JsonSchema)]
pub struct FixView {
    pub at: Option<String>,
    pub lat: f64,
    pub lon: f64,
}

/// Where the box is compared with the home zone.
#[derive(Serialize, JsonSchema)]
pub struct PresenceView {
    /// at_home, away or unknown
    pub state: String,
    pub since: Option<String>,
    pub last_fix: Option<String>,
    pub last_seen: Option<String>,
    pub battery_percent: Option<i64>,
    pub online: bool,
}

/// An alarm of one box.
#[derive(Serialize, JsonSchema)]
pub struct BoxAlarmView {
    pub id: i64,
    pub kind: String,
    pub at: Option<String>,
    pub acknowledged: bool,
}

/// Everything staff see of a box's GPS.
#[derive(Serialize, JsonSchema)]
pub struct BoxGpsView {
    /// The box's serial.
    #[serde(rename = "box")]
    pub r#box: String,
    pub box_state: String,
    /// The fitted tracker's IMEI.
    pub tracker: Option<String>,
    pub presence: Option<PresenceView>,
    #[schemars(with = "Option<ZoneShape>")]
    pub zone: Option<Value>,
    pub fixes: Vec<FixView>,
    /// The watched load (only while the box is watched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<i64>,
    /// The client of the watched load (only while the box is watched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<i64>,
    pub alarms: Vec<BoxAlarmView>,
}

/// Everything staff see of a box's GPS: state, last fix, zone, recent fixes, alarms. When the
/// box is out with a client, this is a read of that client's record (audited).
pub async fn box_view(st: &AppState, me: &CurrentUser, serial: &str) -> AppResult<BoxGpsView> {
    let b = st.store.box_by_serial(&me.actor(), serial).await?;
    let imei = st.store.tracker_of_box(b.id).await?;
    let watch = st.store.watch(b.id).await?;
    let mut out = BoxGpsView {
        r#box: b.serial.clone(),
        box_state: b.state.as_str().to_owned(),
        tracker: imei,
        presence: None,
        zone: None,
        fixes: Vec::new(),
        load: None,
        client: None,
        alarms: Vec::new(),
    };
    if let Some(w) = watch {
        st.store
            .read_client(&me.actor(), w.client_id, "box location", st.now())
            .await?;
        out.zone = serde_json::from_str::<Value>(&w.zone_json)
            .ok()
            .filter(|z| !z.is_null());
        out.fixes = st
            .store
            .recent_positions(b.id, 50)
            .await?
            .into_iter()
            .map(|p| FixView {
                at: time(p.at_ms),
                lat: p.lat,
                lon: p.lon,
            })
            .collect();
        out.load = Some(w.load_id);
        out.client = Some(w.client_id);
        if let Some(p) = st.store.presence(b.id).await? {
            out.presence = Some(PresenceView {
                state: p.presence,
                since: time(p.since_ms),
                last_fix: p.last_fix_ms.and_then(time),
                last_seen: time(p.last_seen_ms),
                battery_percent: p.battery,
                online: p.online,
            });
        }
    }
    out.alarms = st
        .store
        .alarms_of_box(b.id, 20)
        .await?
        .into_iter()
        .map(|a| BoxAlarmView {
            id: a.id,
            kind: a.kind,
            at: time(a.at_ms),
            acknowledged: a.acknowledged,
        })
        .collect();
    Ok(out)
}

/// An open alarm of the centre.
#[derive(Serialize, JsonSchema)]
pub struct AlarmView {
    pub id: i64,
    /// The box's serial.
    #[serde(rename = "box")]
    pub r#box: String,
    pub load: Option<i64>,
    pub kind: String,
    pub at: Option<String>,
}

/// What the police see of a box: a state word and since when, never a position.
#[derive(Serialize, JsonSchema)]
pub struct PoliceBoxState {
    pub request_id: i64,
    /// at_home, away or unknown
    pub state: String,
    pub since: Option<String>,
}

async fn api_box(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(serial): Path<String>,
) -> AppResult<Json<BoxGpsView>> {
    Ok(Json(box_view(&st, &me, &serial).await?))
}

async fn api_alarms(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<Vec<AlarmView>>> {
    let alarms = st
        .store
        .open_alarms(me.site.id, 200)
        .await?
        .into_iter()
        .map(|a| AlarmView {
            id: a.id,
            r#box: a.serial,
            load: a.load_id,
            kind: a.kind,
            at: time(a.at_ms),
        })
        .collect();
    Ok(Json(alarms))
}

fn alarm_id(raw: &str) -> Result<i64, DomainError> {
    raw.parse()
        .map_err(|_| DomainError::invalid("id", "not a number"))
}

async fn api_ack(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    st.store
        .acknowledge_alarm(&me.actor(), alarm_id(&id)?, st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the police learn of the box under approved request `raw`: the state word and the time
/// it last changed. Written to the disclosure ledger.
pub async fn police_box_state(
    st: &AppState,
    me: &CurrentUser,
    raw: &str,
) -> AppResult<PoliceBoxState> {
    let id: i64 = raw
        .parse()
        .map_err(|_| DomainError::invalid("id", "not a number"))?;
    let r = st.store.psb_request(id).await?;
    if r.site_id != me.site.id {
        return Err(DomainError::NotFound(format!("request {id}")).into());
    }
    let (state, since) = st
        .store
        .police_box_state(&me.actor(), &r, st.today(), st.now())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("a tracked box for request {id}")))?;
    Ok(PoliceBoxState {
        request_id: id,
        state,
        since: time(since),
    })
}

async fn api_police(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<PoliceBoxState>> {
    Ok(Json(police_box_state(&st, &me, &id).await?))
}

/// Adds the GPS API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::api(Post, "/api/v1/boxes/{serial}/tracker", Needs(TakeHomeManage), "gps", "Fit a GPS tracker (by IMEI) to a box").answers::<TrackerFitted>()
                .body::<TrackerBody>()
                .status(201),
            api_fit,
        )
        .add(
            RouteSpec::api(Get, "/api/v1/boxes/{serial}/gps", Needs(TakeHomeManage), "gps", "A box's presence, zone, recent fixes and alarms (audited)").answers::<BoxGpsView>(),
            api_box,
        )
        .add(
            RouteSpec::api(Put, "/api/v1/loads/{id}/home-zone", Needs(TakeHomeManage), "gps", "Set the home zone of a load, under the client's GPS consent")
                .body::<ZoneBody>()
                .status(204),
            api_set_zone,
        )
        .add(
            RouteSpec::api(Delete, "/api/v1/loads/{id}/home-zone", Needs(TakeHomeManage), "gps", "Stop watching the box; its positions are deleted")
                .status(204),
            api_clear_zone,
        )
        .add(
            RouteSpec::api(Get, "/api/v1/box-alarms", Needs(TakeHomeManage), "gps", "Open box alarms of the centre").answers::<Vec<AlarmView>>(),
            api_alarms,
        )
        .add(
            RouteSpec::api(Post, "/api/v1/box-alarms/{id}/ack", Needs(TakeHomeManage), "gps", "Acknowledge a box alarm")
                .status(204),
            api_ack,
        )
        .add(
            RouteSpec::api(Get, "/api/v1/psb/requests/{id}/box-state", Needs(PsbQueue), "police", "At home / away / unknown for the box under an approved request, and since when; no position").answers::<PoliceBoxState>(),
            api_police,
        )
}
