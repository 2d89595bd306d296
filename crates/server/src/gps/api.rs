//! The box GPS routes. Staff (take-home managers) fit trackers, set a load's home zone under the
//! client's consent, look at a box (audited as a read of the client's record) and acknowledge
//! alarms. The police have one route of their own: the state word of the box under an approved
//! request and since when — never a position — and each look goes to the disclosure ledger.

use anxin_domain::gps::Zone;
use anxin_domain::{Access, Permission};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

pub use anxin_app::gps::staff::{
    AlarmView, BoxAlarmView, BoxGpsView, FixView, PoliceBoxState, PresenceView, TrackerBody,
    TrackerFitted, ZoneBody,
};

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

/// Fits the tracker `imei` to the box `serial` of `me`'s centre.
pub async fn fit_tracker(
    st: &AppState,
    me: &CurrentUser,
    serial: &str,
    imei: &str,
    link: anxin_app::gps::staff::TrackerLink,
) -> AppResult<TrackerFitted> {
    Ok(anxin_app::gps::staff::fit_tracker(&st.app, &me.app_actor(), serial, imei, link).await?)
}

/// Sets the home zone of load `raw` (a box out with its client), under an active GPS consent.
pub async fn set_zone(st: &AppState, me: &CurrentUser, raw: &str, zone: &Zone) -> AppResult<()> {
    Ok(anxin_app::gps::staff::set_zone(&st.app, &me.app_actor(), raw, zone).await?)
}

/// Stops comparing load `raw`'s box with a zone; its positions are deleted.
pub async fn clear_zone(st: &AppState, me: &CurrentUser, raw: &str) -> AppResult<()> {
    Ok(anxin_app::gps::staff::clear_zone(&st.app, &me.app_actor(), raw).await?)
}

/// Everything staff see of a box's GPS (audited as a read of the client's record).
pub async fn box_view(st: &AppState, me: &CurrentUser, serial: &str) -> AppResult<BoxGpsView> {
    Ok(anxin_app::gps::staff::box_view(&st.app, &me.app_actor(), serial).await?)
}

/// What the police learn of the box under approved request `raw` (to the disclosure ledger).
pub async fn police_box_state(
    st: &AppState,
    me: &CurrentUser,
    raw: &str,
) -> AppResult<PoliceBoxState> {
    Ok(anxin_app::gps::staff::police_box_state(&st.app, &me.app_actor(), raw).await?)
}

async fn api_fit(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(serial): Path<String>,
    ApiJson(req): ApiJson<TrackerBody>,
) -> AppResult<(StatusCode, Json<TrackerFitted>)> {
    Ok((
        StatusCode::CREATED,
        Json(fit_tracker(&st, &me, &serial, &req.imei, req.link).await?),
    ))
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

async fn api_clear_zone(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    clear_zone(&st, &me, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    Ok(Json(
        anxin_app::gps::staff::open_alarms(&st.app, &me.app_actor()).await?,
    ))
}

async fn api_ack(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    anxin_app::gps::staff::acknowledge(&st.app, &me.app_actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
