//! The clinic core over HTTP: the dispensing window (day list, one-action dose), dose orders
//! and reviews, the full client record (encrypted identity, stage, discharge, transfer, guest
//! dosing), agreements and consents, urine tests, adherence, and methadone stock.
//! Rules come from `anxin_domain::clinic`; this module gathers facts, applies them, and answers.

use anxin_app::records::Client;
use anxin_domain::clinic::stage::Stage;
use anxin_domain::{Access, DomainError, Permission};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

pub use anxin_app::dispensing::{DayRow, DayStatus, DoseAnswer, DoseRequest};

/// The day list of `me`'s site.
pub async fn day_list(st: &AppState, me: &CurrentUser) -> AppResult<Vec<DayRow>> {
    Ok(anxin_app::dispensing::day_list(&st.app, &me.app_actor()).await?)
}

/// Records an observed dose from the UIC alone: the rules decide the amount.
pub async fn record_dose(st: &AppState, me: &CurrentUser, uic: &str) -> AppResult<DoseAnswer> {
    let req = DoseRequest {
        uic: uic.to_owned(),
    };
    Ok(anxin_app::dispensing::record_dose(&st.app, &me.app_actor(), &req).await?)
}

async fn api_day_list(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<Vec<DayRow>>> {
    Ok(Json(day_list(&st, &me).await?))
}

async fn api_record_dose(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<DoseRequest>,
) -> AppResult<(StatusCode, Json<DoseAnswer>)> {
    Ok((
        StatusCode::CREATED,
        Json(record_dose(&st, &me, &req.uic).await?),
    ))
}

fn client_id(raw: &str) -> Result<i64, DomainError> {
    anxin_app::identity::client_id(raw)
}

pub use anxin_app::orders::{OrderRequest, OrderView, StepRequest};

/// Writes an order for a client (prescribers only).
pub async fn write_order(
    st: &AppState,
    me: &CurrentUser,
    id: &str,
    req: OrderRequest,
) -> AppResult<OrderView> {
    let id = anxin_app::identity::client_id(id)?;
    Ok(anxin_app::orders::write_order(&st.app, &me.app_actor(), id, &req).await?)
}

async fn api_write_order(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<OrderRequest>,
) -> AppResult<(StatusCode, Json<OrderView>)> {
    Ok((
        StatusCode::CREATED,
        Json(write_order(&st, &me, &id, req).await?),
    ))
}

async fn api_orders(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<OrderView>>> {
    let orders = anxin_app::record::orders(&st.app, &me.app_actor(), client_id(&id)?).await?;
    Ok(Json(orders.iter().map(OrderView::from).collect()))
}

/// A second prescriber confirms an order beyond the induction and titration limits.
pub async fn confirm_order(st: &AppState, me: &CurrentUser, id: &str) -> AppResult<OrderView> {
    let id = anxin_app::identity::client_id(id)?;
    Ok(anxin_app::orders::confirm_order(&st.app, &me.app_actor(), id).await?)
}

async fn api_confirm_order(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<OrderView>> {
    Ok(Json(confirm_order(&st, &me, &id).await?))
}

async fn api_orders_awaiting(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<Vec<anxin_app::orders::AwaitingOrder>>> {
    Ok(Json(
        anxin_app::orders::awaiting(&st.app, &me.app_actor()).await?,
    ))
}

pub use anxin_app::orders::ReviewRequest;

async fn api_review(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> AppResult<StatusCode> {
    anxin_app::orders::review(&st.app, &me.app_actor(), client_id(&id)?, &req.note).await?;
    Ok(StatusCode::CREATED)
}

pub use anxin_app::identity::IdentityRequest;

async fn api_set_identity(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IdentityRequest>,
) -> AppResult<StatusCode> {
    let c = client_id(&id)?;
    anxin_app::identity::set_identity(&st.app, &me.app_actor(), c, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_identity(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<IdentityView>> {
    let c = client_id(&id)?;
    Ok(Json(
        anxin_app::identity::read(&st.app, &me.app_actor(), c, "identity view").await?,
    ))
}

pub use anxin_app::identity::IdentityView;

/// The masked phone number after a change.
#[derive(Serialize, JsonSchema)]
pub struct PhoneAnswer {
    /// Masked, e.g. `138****8000`.
    pub phone: String,
}

/// A new phone number for the client's codes.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    /// E.164 (+8613800138000) or a mainland mobile number (13800138000)
    pub phone: String,
}

/// Changes a client's phone number: a staff action of its own, audited with masked numbers.
pub async fn change_phone(
    st: &AppState,
    me: &CurrentUser,
    raw_id: &str,
    phone: &str,
) -> AppResult<String> {
    let id = client_id(raw_id)?;
    Ok(anxin_app::identity::change_phone(&st.app, &me.app_actor(), id, phone).await?)
}

async fn api_change_phone(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PhoneRequest>,
) -> AppResult<Json<PhoneAnswer>> {
    let masked = change_phone(&st, &me, &id, &req.phone).await?;
    Ok(Json(PhoneAnswer { phone: masked }))
}

/// Search by full name (sent in the body, so it stays out of URLs and access logs).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameSearch {
    pub name: String,
}

async fn api_find_by_name(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<NameSearch>,
) -> AppResult<Json<Vec<ClientRecord>>> {
    let found = anxin_app::identity::find_by_name(&st.app, &me.app_actor(), &req.name).await?;
    Ok(Json(found.iter().map(ClientRecord::from).collect()))
}

/// The record fields of a client (no identity).
#[derive(Serialize, JsonSchema)]
pub struct ClientRecord {
    pub id: i64,
    pub uic: String,
    pub site_id: i64,
    pub enrolled_on: NaiveDate,
    /// voluntary, community_treatment, compulsory_isolated, community_rehabilitation
    #[schemars(with = "String")]
    pub stage: Stage,
    pub stage_since: NaiveDate,
    /// First day of the community-treatment or rehabilitation order, if the stage has one.
    pub order_start: Option<NaiveDate>,
    /// Last day of that order.
    pub order_end: Option<NaiveDate>,
    pub discharged_on: Option<NaiveDate>,
    pub discharge_reason: Option<String>,
}

impl From<&Client> for ClientRecord {
    fn from(c: &Client) -> Self {
        ClientRecord {
            id: c.id,
            uic: c.uic.clone(),
            site_id: c.site_id,
            enrolled_on: c.enrolled_on,
            stage: c.stage,
            stage_since: c.stage_since,
            order_start: c.order.map(|t| t.start),
            order_end: c.order.map(|t| t.end),
            discharged_on: c.discharged_on,
            discharge_reason: c.discharge_reason.clone(),
        }
    }
}

pub use anxin_app::agreements::{AgreementRequest, AgreementView};

pub use anxin_app::record::ConsentView;

pub use anxin_app::treatment::{DischargeRequest, StageRequest, TransferRequest, TreatmentChanged};

async fn api_set_stage(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StageRequest>,
) -> AppResult<Json<TreatmentChanged>> {
    let id = client_id(&id)?;
    Ok(Json(
        anxin_app::treatment::set_stage(&st.app, &me.app_actor(), id, &req).await?,
    ))
}

async fn api_discharge(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DischargeRequest>,
) -> AppResult<Json<TreatmentChanged>> {
    let id = client_id(&id)?;
    Ok(Json(
        anxin_app::treatment::discharge(&st.app, &me.app_actor(), id, &req).await?,
    ))
}

async fn api_readmit(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = client_id(&id)?;
    anxin_app::treatment::readmit(&st.app, &me.app_actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub use anxin_app::treatment::SiteMove;

async fn api_transfer(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TransferRequest>,
) -> AppResult<Json<TreatmentChanged>> {
    let id = client_id(&id)?;
    Ok(Json(
        anxin_app::treatment::transfer(&st.app, &me.app_actor(), id, &req).await?,
    ))
}

async fn api_guest(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SiteMove>,
) -> AppResult<StatusCode> {
    anxin_app::treatment::guest(&st.app, &me.app_actor(), client_id(&id)?, &req).await?;
    Ok(StatusCode::CREATED)
}

async fn api_add_agreement(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AgreementRequest>,
) -> AppResult<(StatusCode, Json<AgreementView>)> {
    let id = client_id(&id)?;
    let a = anxin_app::agreements::add(&st.app, &me.app_actor(), id, &req).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

async fn api_agreements(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<AgreementView>>> {
    let id = client_id(&id)?;
    Ok(Json(
        anxin_app::agreements::list(&st.app, &me.app_actor(), id).await?,
    ))
}

pub use anxin_app::consents::{ConsentRequest, RevokeRequest};

async fn api_add_consent(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ConsentRequest>,
) -> AppResult<(StatusCode, Json<ConsentView>)> {
    let c = anxin_app::consents::add(&st.app, &me.app_actor(), client_id(&id)?, &req).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

async fn api_revoke_consent(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> AppResult<Json<ConsentView>> {
    let consent_id = anxin_app::parse_id(&id)?;
    let c = anxin_app::consents::revoke(&st.app, &me.app_actor(), consent_id, &req).await?;
    Ok(Json(c))
}

async fn api_consents(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<ConsentView>>> {
    Ok(Json(
        anxin_app::record::consents(&st.app, &me.app_actor(), client_id(&id)?).await?,
    ))
}

pub use anxin_app::urine::{UrineRecorded, UrineRequest};

async fn api_add_urine(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UrineRequest>,
) -> AppResult<(StatusCode, Json<UrineRecorded>)> {
    let r = anxin_app::urine::add(&st.app, &me.app_actor(), client_id(&id)?, &req).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

pub use anxin_app::record::UrineView;

async fn api_urine(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<UrineView>>> {
    Ok(Json(
        anxin_app::record::urine_tests(&st.app, &me.app_actor(), client_id(&id)?).await?,
    ))
}

async fn api_adherence(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<AdherenceView>> {
    Ok(Json(
        anxin_app::record::adherence(&st.app, &me.app_actor(), client_id(&id)?).await?,
    ))
}

pub use anxin_app::record::{AdherenceView, RatioView};

pub use anxin_app::record::DoseView;

async fn api_doses(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<DoseView>>> {
    Ok(Json(
        anxin_app::record::doses(&st.app, &me.app_actor(), client_id(&id)?).await?,
    ))
}

pub use anxin_app::stock::{
    CloseOutAnswer, CloseOutRequest, CloseOutView, ReceiptAnswer, ReceiptRequest, StockNow,
    StockView,
};

async fn api_receipt(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<ReceiptRequest>,
) -> AppResult<(StatusCode, Json<ReceiptAnswer>)> {
    Ok((
        StatusCode::CREATED,
        Json(anxin_app::stock::receive(&st.app, &me.app_actor(), &req).await?),
    ))
}

async fn api_stock(State(st): State<AppState>, me: CurrentUser) -> AppResult<Json<StockView>> {
    Ok(Json(
        anxin_app::stock::view(&st.app, &me.app_actor(), 30).await?,
    ))
}

/// Closes today's stock at `me`'s site.
pub async fn close_stock(
    st: &AppState,
    me: &CurrentUser,
    measured_ml: f64,
    reason: &str,
) -> AppResult<CloseOutAnswer> {
    let req = CloseOutRequest {
        measured_ml,
        reason: reason.to_owned(),
    };
    Ok(anxin_app::stock::close(&st.app, &me.app_actor(), &req).await?)
}

async fn api_closeout(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<CloseOutRequest>,
) -> AppResult<(StatusCode, Json<CloseOutAnswer>)> {
    Ok((
        StatusCode::CREATED,
        Json(anxin_app::stock::close(&st.app, &me.app_actor(), &req).await?),
    ))
}

/// Adds the clinic's API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    let table = table.add(
        RouteSpec::api(
            Put,
            "/api/v1/clients/{id}/phone",
            Needs(ContactChange),
            "clients",
            "Change the phone number codes go to (audited)",
        )
        .answers::<PhoneAnswer>()
        .body::<PhoneRequest>(),
        api_change_phone,
    );
    table
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/dispensing/today",
                Needs(DoseRecord),
                "dispensing",
                "Today's day list of my centre",
            )
            .answers::<Vec<DayRow>>(),
            api_day_list,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/doses",
                Needs(DoseRecord),
                "dispensing",
                "Record an observed dose from the UIC",
            )
            .answers::<DoseAnswer>()
            .body::<DoseRequest>()
            .status(201),
            api_record_dose,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/doses",
                Needs(ClinicalRead),
                "dispensing",
                "Doses of the last 90 days",
            )
            .answers::<Vec<DoseView>>(),
            api_doses,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/orders",
                Needs(ClinicalRead),
                "orders",
                "Dose order history",
            )
            .answers::<Vec<OrderView>>(),
            api_orders,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/orders",
                Needs(Prescribe),
                "orders",
                "Write a dose order",
            )
            .answers::<OrderView>()
            .body::<OrderRequest>()
            .status(201),
            api_write_order,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/orders/awaiting",
                Needs(Prescribe),
                "orders",
                "Orders of the centre beyond the induction limits, waiting for a second prescriber",
            )
            .answers::<Vec<anxin_app::orders::AwaitingOrder>>(),
            api_orders_awaiting,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/orders/{id}/confirm",
                Needs(Prescribe),
                "orders",
                "A second prescriber confirms an order beyond the induction limits",
            )
            .answers::<OrderView>(),
            api_confirm_order,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/reviews",
                Needs(Prescribe),
                "orders",
                "Record a prescriber review after missed doses",
            )
            .answers_nothing()
            .body::<ReviewRequest>()
            .status(201),
            api_review,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/identity",
                Needs(IdentityRead),
                "clients",
                "Decrypted identifying fields (audited)",
            )
            .answers::<IdentityView>(),
            api_identity,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/clients/{id}/identity",
                Needs(ClientWrite),
                "clients",
                "Set identifying fields (stored encrypted)",
            )
            .body::<IdentityRequest>()
            .status(204),
            api_set_identity,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/find-by-name",
                Needs(IdentityRead),
                "clients",
                "Find clients of my centre by full name",
            )
            .answers::<Vec<ClientRecord>>()
            .body::<NameSearch>(),
            api_find_by_name,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/clients/{id}/stage",
                Needs(ClientWrite),
                "clients",
                "Change the treatment stage (a stage not dosed here ends a box out)",
            )
            .answers::<TreatmentChanged>()
            .body::<StageRequest>(),
            api_set_stage,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/discharge",
                Needs(ClientWrite),
                "clients",
                "Discharge from treatment (ends a box out with the client)",
            )
            .answers::<TreatmentChanged>()
            .body::<DischargeRequest>(),
            api_discharge,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/readmit",
                Needs(ClientWrite),
                "clients",
                "Re-admit a discharged client",
            )
            .status(204),
            api_readmit,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/transfer",
                Needs(ClientWrite),
                "clients",
                "Transfer to another centre (ends a box out with the client)",
            )
            .answers::<TreatmentChanged>()
            .body::<TransferRequest>(),
            api_transfer,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/guest-dosing",
                Needs(ClientWrite),
                "dispensing",
                "Let the client dose at another centre for a while",
            )
            .answers_nothing()
            .body::<SiteMove>()
            .status(201),
            api_guest,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/agreements",
                Needs(ClinicalRead),
                "agreements",
                "Treatment agreement versions",
            )
            .answers::<Vec<AgreementView>>(),
            api_agreements,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/agreements",
                Needs(ConsentManage),
                "agreements",
                "Record a signed agreement version",
            )
            .answers::<AgreementView>()
            .body::<AgreementRequest>()
            .status(201),
            api_add_agreement,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/consents",
                Needs(ClinicalRead),
                "agreements",
                "Consents and whether each is in force",
            )
            .answers::<Vec<ConsentView>>(),
            api_consents,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/consents",
                Needs(ConsentManage),
                "agreements",
                "Record a consent",
            )
            .answers::<ConsentView>()
            .body::<ConsentRequest>()
            .status(201),
            api_add_consent,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/consents/{id}/revoke",
                Needs(ConsentManage),
                "agreements",
                "Revoke a consent",
            )
            .answers::<ConsentView>()
            .body::<RevokeRequest>(),
            api_revoke_consent,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/urine-tests",
                Needs(ClinicalRead),
                "urine",
                "Urine test results",
            )
            .answers::<Vec<UrineView>>(),
            api_urine,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients/{id}/urine-tests",
                Needs(UrineRecord),
                "urine",
                "Record a urine test",
            )
            .answers::<UrineRecorded>()
            .body::<UrineRequest>()
            .status(201),
            api_add_urine,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/adherence",
                Needs(ClinicalRead),
                "dispensing",
                "Adherence figures and 90-day timeline",
            )
            .answers::<AdherenceView>(),
            api_adherence,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/stock",
                Needs(StockManage),
                "stock",
                "Expected stock now and recent close-outs",
            )
            .answers::<StockView>(),
            api_stock,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/stock/receipts",
                Needs(StockManage),
                "stock",
                "Record a stock delivery",
            )
            .answers::<ReceiptAnswer>()
            .body::<ReceiptRequest>()
            .status(201),
            api_receipt,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/stock/closeouts",
                Needs(StockManage),
                "stock",
                "Close today's stock with the measured volume",
            )
            .answers::<CloseOutAnswer>()
            .body::<CloseOutRequest>()
            .status(201),
            api_closeout,
        )
}
