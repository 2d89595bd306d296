//! What staff and the police do with box GPS: fit a tracker to a box, set or clear a load's
//! home zone under the client's consent, look at a box (a read of the client's record,
//! audited), list and acknowledge alarms; and the police's one question, the state word of the
//! box under an approved request and since when (never a position), which goes to the
//! disclosure ledger.

use anxin_domain::gps::Zone;
use anxin_domain::{Code, DomainError, Permission, Problem};
use anxin_storage::gps::GPS_PURPOSE;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Actor, App, Result};

/// Fitting a tracker to a box.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackerBody {
    /// The tracker's IMEI (15 digits).
    pub imei: String,
    /// How it reports: `token` (OsmAnd or MQTT with a per-device token, the default) or `gt06`
    /// (GT06 carries no secret: anyone who knows the IMEI could post positions, so its box is
    /// marked unauthenticated).
    #[serde(default)]
    pub link: TrackerLink,
}

/// How a tracker proves it is the one fitted to the box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrackerLink {
    /// OsmAnd or MQTT reports carrying the device's token.
    #[default]
    Token,
    /// GT06: the IMEI alone, unauthenticated.
    Gt06,
}

impl TrackerLink {
    /// From a form value (`token` or `gt06`); anything else is refused at `link`.
    pub fn parse(s: &str) -> std::result::Result<TrackerLink, DomainError> {
        match s.trim() {
            "" | "token" => Ok(TrackerLink::Token),
            "gt06" => Ok(TrackerLink::Gt06),
            other => Err(Problem::new(Code::ChoiceUnknown)
                .field("link")
                .arg("value", other)
                .into()),
        }
    }
}

/// Fits the tracker `imei` to the box `serial` of `me`'s centre. A token tracker gets a fresh
/// token, returned this once (only its hash is kept) to be set in the device.
pub async fn fit_tracker(
    app: &App,
    me: &Actor,
    serial: &str,
    imei: &str,
    link: TrackerLink,
) -> Result<TrackerFitted> {
    me.require(Permission::TakeHomeManage)?;
    let imei = imei.trim();
    if !anxin_tracker::valid_imei(imei) {
        return Err(Problem::new(Code::TrackerImeiInvalid)
            .field("imei")
            .arg("value", imei)
            .into());
    }
    let b = app.store.box_by_serial(&me.audit(), serial).await?;
    let token = (link == TrackerLink::Token).then(crate::gps::new_device_token);
    let hash = token.as_deref().map(crate::gps::token_hash);
    let t = app
        .store
        .register_tracker(&me.audit(), b.id, imei, hash.as_deref(), app.now())
        .await?;
    app.gps.invalidate();
    Ok(TrackerFitted {
        imei: t.imei,
        r#box: b.serial,
        link,
        token,
    })
}

/// A tracker just fitted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrackerFitted {
    pub imei: String,
    /// The box's serial.
    #[serde(rename = "box")]
    pub r#box: String,
    pub link: TrackerLink,
    /// The device's token (token trackers), shown this once: set it in the tracker as the
    /// `token` of its OsmAnd URL or MQTT payload.
    pub token: Option<String>,
}

/// A home zone: a circle (`lat`, `lon`, `radius_m`) or a polygon (`points`, each `[lat, lon]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
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
    pub fn zone(&self) -> std::result::Result<Zone, DomainError> {
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
pub async fn set_zone(app: &App, me: &Actor, raw: &str, zone: &Zone) -> Result<()> {
    me.require(Permission::TakeHomeManage)?;
    let load = crate::boxes::load_of(app, me, raw).await?;
    if !load.state.is_out() {
        return Err(DomainError::Conflict(format!(
            "load {} is {}: a home zone is set for a box that goes out",
            load.id, load.state
        ))
        .into());
    }
    if app.store.tracker_of_box(load.box_id).await?.is_none() {
        return Err(DomainError::invalid("load", "this box has no tracker fitted").into());
    }
    let today = app.today();
    let consent = app
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
    let zone_json = serde_json::to_string(zone)
        .map_err(|_| crate::Error::Internal("zone does not serialise".into()))?;
    app.store
        .set_home_zone(
            &me.audit(),
            load.id,
            load.box_id,
            load.client_id,
            load.site_id,
            consent.id,
            &zone_json,
            app.now(),
        )
        .await?;
    app.gps.invalidate();
    Ok(())
}

/// Stops comparing load `raw`'s box with a zone; its positions are deleted.
pub async fn clear_zone(app: &App, me: &Actor, raw: &str) -> Result<()> {
    me.require(Permission::TakeHomeManage)?;
    let load = crate::boxes::load_of(app, me, raw).await?;
    app.store
        .clear_home_zone(
            &me.audit(),
            load.id,
            load.box_id,
            load.client_id,
            load.site_id,
            app.now(),
        )
        .await?;
    app.gps.invalidate();
    Ok(())
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
#[derive(Debug, Serialize, JsonSchema)]
pub struct FixView {
    pub at: Option<String>,
    pub lat: f64,
    pub lon: f64,
}

/// Where the box is compared with the home zone.
#[derive(Debug, Serialize, JsonSchema)]
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
#[derive(Debug, Serialize, JsonSchema)]
pub struct BoxAlarmView {
    pub id: i64,
    pub kind: String,
    pub at: Option<String>,
    pub acknowledged: bool,
}

/// Everything staff see of a box's GPS.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BoxGpsView {
    /// The box's serial.
    #[serde(rename = "box")]
    pub r#box: String,
    pub box_state: String,
    /// The fitted tracker's IMEI.
    pub tracker: Option<String>,
    /// How the fitted tracker reports; `gt06`: its positions are not authenticated.
    pub tracker_link: Option<TrackerLink>,
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
pub async fn box_view(app: &App, me: &Actor, serial: &str) -> Result<BoxGpsView> {
    me.require(Permission::TakeHomeManage)?;
    let b = app.store.box_by_serial(&me.audit(), serial).await?;
    let tracker = app.store.tracker_of_box(b.id).await?;
    let watch = app.store.watch(b.id).await?;
    let mut out = BoxGpsView {
        r#box: b.serial.clone(),
        box_state: b.state.as_str().to_owned(),
        tracker_link: tracker.as_ref().map(|t| match t.token_hash {
            Some(_) => TrackerLink::Token,
            None => TrackerLink::Gt06,
        }),
        tracker: tracker.map(|t| t.imei),
        presence: None,
        zone: None,
        fixes: Vec::new(),
        load: None,
        client: None,
        alarms: Vec::new(),
    };
    if let Some(w) = watch {
        app.store
            .read_client(&me.audit(), w.client_id, "box location", app.now())
            .await?;
        out.zone = serde_json::from_str::<Value>(&w.zone_json)
            .ok()
            .filter(|z| !z.is_null());
        out.fixes = app
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
        if let Some(p) = app.store.presence(b.id).await? {
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
    out.alarms = app
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
#[derive(Debug, Serialize, JsonSchema)]
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
#[derive(Debug, Serialize, JsonSchema)]
pub struct PoliceBoxState {
    pub request_id: i64,
    /// at_home, away or unknown
    pub state: String,
    pub since: Option<String>,
}

fn alarm_id(raw: &str) -> std::result::Result<i64, DomainError> {
    raw.parse()
        .map_err(|_| DomainError::invalid("id", "not a number"))
}

/// What the police learn of the box under approved request `raw`: the state word and the time
/// it last changed. Written to the disclosure ledger.
pub async fn police_box_state(app: &App, me: &Actor, raw: &str) -> Result<PoliceBoxState> {
    me.require(Permission::PsbQueue)?;
    let id: i64 = raw
        .parse()
        .map_err(|_| DomainError::invalid("id", "not a number"))?;
    let r = app.store.psb_request(id).await?;
    if !crate::org::police_sites(app, me)
        .await?
        .contains(&r.site_id)
    {
        return Err(DomainError::NotFound(format!("request {id}")).into());
    }
    let (state, since) = app
        .store
        .police_box_state(
            &crate::org::at_site(me, r.site_id),
            &r,
            app.today(),
            app.now(),
        )
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("a tracked box for request {id}")))?;
    Ok(PoliceBoxState {
        request_id: id,
        state,
        since: time(since),
    })
}

/// The open box alarms of `me`'s centre (at most 200).
pub async fn open_alarms(app: &App, me: &Actor) -> Result<Vec<AlarmView>> {
    me.require(Permission::TakeHomeManage)?;
    Ok(app
        .store
        .open_alarms(me.site_id, 200)
        .await?
        .into_iter()
        .map(|a| AlarmView {
            id: a.id,
            r#box: a.serial,
            load: a.load_id,
            kind: a.kind,
            at: time(a.at_ms),
        })
        .collect())
}

/// Acknowledges alarm `raw` of `me`'s centre.
pub async fn acknowledge(app: &App, me: &Actor, raw: &str) -> Result<()> {
    me.require(Permission::TakeHomeManage)?;
    app.store
        .acknowledge_alarm(&me.audit(), alarm_id(raw)?, app.now())
        .await?;
    Ok(())
}
