//! The JSON API under `/api/v1`: thin handlers that parse, call a use case of the application
//! core (`anxin_app`), and shape the answer. Each route is declared in [`routes`] with its
//! permission.

use anxin_app::records::{AuditView, Client, Site, User};
pub use anxin_app::staff::{NewStaffRequest, StaffAction};
use anxin_domain::{Access, DomainError, Permission, Role};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{self, CurrentUser};
use crate::error::AppResult;
use crate::json::ApiJson;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;

/// Login with username and password.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Choice of interface language.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageRequest {
    /// `zh-CN` or `en`.
    pub language: String,
}

/// A new centre.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSiteRequest {
    pub code: String,
    pub name: String,
}

pub use anxin_app::identity::NewClientRequest;

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

/// A centre.
#[derive(Serialize, JsonSchema)]
struct SiteView {
    id: i64,
    code: String,
    name: String,
}

impl From<&Site> for SiteView {
    fn from(s: &Site) -> Self {
        SiteView {
            id: s.id,
            code: s.code.clone(),
            name: s.name.clone(),
        }
    }
}

/// A staff account.
#[derive(Serialize, JsonSchema)]
struct StaffView {
    id: i64,
    site_id: i64,
    username: String,
    /// admin, manager, prescriber, dispenser, counsellor, peer_educator, cdc_analyst, psb_officer
    #[schemars(with = "String")]
    role: Role,
    language: String,
    active: bool,
    locked_until: Option<String>,
}

impl From<&User> for StaffView {
    fn from(u: &User) -> Self {
        StaffView {
            id: u.id,
            site_id: u.site_id,
            username: u.username.clone(),
            role: u.role,
            language: u.language.clone(),
            active: u.active,
            locked_until: u.standing.locked_until.map(|t| t.to_rfc3339()),
        }
    }
}

/// A client record (no identifying fields).
#[derive(Serialize, JsonSchema)]
struct ClientView {
    id: i64,
    uic: String,
    site_id: i64,
    enrolled_on: String,
    /// voluntary, community_treatment, compulsory_isolated or community_rehabilitation
    stage: String,
    stage_since: String,
    /// First day of the community-treatment or rehabilitation order, if the stage has one.
    order_start: Option<String>,
    /// Last day of that order.
    order_end: Option<String>,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        ClientView {
            id: c.id,
            uic: c.uic.clone(),
            site_id: c.site_id,
            enrolled_on: c.enrolled_on.to_string(),
            stage: c.stage.as_str().to_owned(),
            stage_since: c.stage_since.to_string(),
            order_start: c.order.map(|t| t.start.to_string()),
            order_end: c.order.map(|t| t.end.to_string()),
        }
    }
}

/// One audit entry.
#[derive(Serialize, JsonSchema)]
struct AuditEntryView {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    record_type: String,
    record_id: String,
    /// The recorded reason when it is administrative; absent when it can hold clinical text,
    /// which stays in the clinical record.
    reason: Option<String>,
}

impl From<&AuditView> for AuditEntryView {
    fn from(a: &AuditView) -> Self {
        AuditEntryView {
            seq: a.seq,
            at: a.at.to_rfc3339(),
            actor: a.actor.clone(),
            action: a.action.clone(),
            record_type: a.record_type.clone(),
            record_id: a.record_id.clone(),
            reason: anxin_domain::audit::reason_is_administrative(&a.action)
                .then(|| a.reason.clone()),
        }
    }
}

/// The logged-in account, with the CSRF token scripts send on unsafe requests.
#[derive(Serialize, JsonSchema)]
struct MeView {
    id: i64,
    username: String,
    #[schemars(with = "String")]
    role: Role,
    language: String,
    site: SiteView,
    csrf_token: String,
}

fn me_view(me: &CurrentUser) -> MeView {
    MeView {
        id: me.user.id,
        username: me.user.username.clone(),
        role: me.user.role,
        language: me.user.language.clone(),
        site: SiteView::from(&me.site),
        csrf_token: me.csrf_token.clone(),
    }
}

/// The answer to a successful login (schema only: the login handler writes it).
#[derive(Serialize, JsonSchema)]
struct LoginAnswer {
    /// Bearer token for `Authorization: Bearer`.
    token: String,
    csrf_token: String,
    idle_timeout_minutes: i64,
    user: LoginUser,
}

/// The account that logged in.
#[derive(Serialize, JsonSchema)]
struct LoginUser {
    id: i64,
    username: String,
    #[schemars(with = "String")]
    role: Role,
    language: String,
    site: SiteView,
}

async fn login(
    State(st): State<AppState>,
    address: crate::throttle::ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Response> {
    let done = auth::login(&st, &address, &req.username, &req.password).await?;
    let site = done.site;
    Ok(Json(LoginAnswer {
        token: done.token,
        csrf_token: done.csrf_token,
        idle_timeout_minutes: st.settings.session.idle.num_minutes(),
        user: LoginUser {
            id: done.user.id,
            username: done.user.username,
            role: done.user.role,
            language: done.user.language,
            site: SiteView::from(&site),
        },
    })
    .into_response())
}

async fn logout(State(st): State<AppState>, me: CurrentUser) -> AppResult<Response> {
    auth::logout(&st, &me).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::clear_session_cookie())],
    )
        .into_response())
}

async fn me(me: CurrentUser) -> Json<MeView> {
    Json(me_view(&me))
}

async fn set_language(
    State(st): State<AppState>,
    mut me: CurrentUser,
    ApiJson(req): ApiJson<LanguageRequest>,
) -> AppResult<Json<MeView>> {
    anxin_app::staff::set_language(&st.app, &me.app_actor(), &req.language).await?;
    me.user.language = req.language;
    Ok(Json(me_view(&me)))
}

async fn list_sites(State(st): State<AppState>) -> AppResult<Json<Vec<SiteView>>> {
    let sites = anxin_app::staff::sites(&st.app).await?;
    Ok(Json(sites.iter().map(SiteView::from).collect()))
}

async fn create_site(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<NewSiteRequest>,
) -> AppResult<(StatusCode, Json<SiteView>)> {
    let site =
        anxin_app::staff::create_site(&st.app, &me.app_actor(), &req.code, &req.name).await?;
    Ok((StatusCode::CREATED, Json(SiteView::from(&site))))
}

async fn list_staff(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<Vec<StaffView>>> {
    let users = anxin_app::staff::accounts(&st.app, &me.app_actor()).await?;
    Ok(Json(users.iter().map(StaffView::from).collect()))
}

/// Creates a staff account on behalf of `me` (shared by the API and the staff page).
pub async fn create_staff_as(
    st: &AppState,
    me: &CurrentUser,
    req: NewStaffRequest,
) -> AppResult<User> {
    Ok(anxin_app::staff::create_account(&st.app, &me.app_actor(), &me.user.language, req).await?)
}

async fn create_staff(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<NewStaffRequest>,
) -> AppResult<(StatusCode, Json<StaffView>)> {
    let user = create_staff_as(&st, &me, req).await?;
    Ok((StatusCode::CREATED, Json(StaffView::from(&user))))
}

/// Gives account `id` another role (one `me` may grant); its sessions end.
pub async fn change_role(st: &AppState, me: &CurrentUser, id: i64, role: &str) -> AppResult<()> {
    Ok(anxin_app::staff::change_role(&st.app, &me.app_actor(), id, role).await?)
}

/// Resets account `id`'s password to a temporary one, answered once.
pub async fn reset_password(st: &AppState, me: &CurrentUser, id: i64) -> AppResult<String> {
    Ok(anxin_app::staff::reset_password(&st.app, &me.app_actor(), id).await?)
}

/// The owner changes their password: the current one, then a new one that meets the policy.
pub async fn change_own_password(
    st: &AppState,
    me: &CurrentUser,
    current: &str,
    new: &str,
) -> AppResult<()> {
    Ok(anxin_app::staff::change_own_password(&st.app, &me.app_actor(), current, new).await?)
}

/// Applies `action` to account `id`, which must be of `me`'s site (an admin reaches every site).
pub async fn staff_action(
    st: &AppState,
    me: &CurrentUser,
    id: i64,
    action: StaffAction,
) -> AppResult<()> {
    Ok(anxin_app::staff::apply(&st.app, &me.app_actor(), id, action).await?)
}

fn parse_id(raw: &str, what: &str) -> AppResult<i64> {
    raw.parse()
        .map_err(|_| DomainError::invalid(what, format!("`{raw}` is not a number")).into())
}

async fn unlock_staff(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    staff_action(&st, &me, parse_id(&id, "id")?, StaffAction::Unlock).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deactivate_staff(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    staff_action(&st, &me, parse_id(&id, "id")?, StaffAction::Deactivate).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn activate_staff(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    staff_action(&st, &me, parse_id(&id, "id")?, StaffAction::Activate).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn search_clients(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<SearchQuery>,
) -> AppResult<Json<Vec<ClientView>>> {
    let found = anxin_app::identity::search_clients(&st.app, &me.app_actor(), &q.q).await?;
    Ok(Json(found.iter().map(ClientView::from).collect()))
}

async fn enrol_client(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<NewClientRequest>,
) -> AppResult<(StatusCode, Json<ClientView>)> {
    let c = anxin_app::identity::enrol(&st.app, &me.app_actor(), &req).await?;
    Ok((StatusCode::CREATED, Json(ClientView::from(&c))))
}

async fn intake(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<anxin_app::intake::IntakeRequest>,
) -> AppResult<(StatusCode, Json<ClientView>)> {
    let c = anxin_app::intake::enrol(&st.app, &me.app_actor(), &req).await?;
    Ok((StatusCode::CREATED, Json(ClientView::from(&c))))
}

async fn get_client(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<ClientView>> {
    let c = anxin_app::record::open(&st.app, &me.app_actor(), parse_id(&id, "id")?, "api").await?;
    Ok(Json(ClientView::from(&c)))
}

async fn audit_recent(
    State(st): State<AppState>,
    me: CurrentUser,
    Query(q): Query<LimitQuery>,
) -> AppResult<Json<Vec<AuditEntryView>>> {
    let limit = q.limit.unwrap_or(100);
    let entries = anxin_app::system::recent_audit(&st.app, &me.app_actor(), limit).await?;
    Ok(Json(entries.iter().map(AuditEntryView::from).collect()))
}

/// The result of checking the audit chain: intact with its length, or where it breaks.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
enum AuditCheck {
    /// Every entry links to the one before.
    Intact { intact: bool, entries: i64 },
    /// The first entry whose link does not hold.
    Broken {
        intact: bool,
        first_bad_entry: i64,
        problem: String,
    },
}

async fn audit_verify(State(st): State<AppState>) -> AppResult<Json<AuditCheck>> {
    Ok(Json(
        match anxin_app::system::verify_audit(&st.app).await? {
            Ok(n) => AuditCheck::Intact {
                intact: true,
                entries: n,
            },
            Err(b) => AuditCheck::Broken {
                intact: false,
                first_bad_entry: b.seq,
                problem: b.problem,
            },
        },
    ))
}

/// The health check's answer.
#[derive(Serialize, JsonSchema)]
struct Health {
    /// `ok`, or `database unavailable` (with 503).
    status: &'static str,
}

async fn healthz(State(st): State<AppState>) -> Response {
    match anxin_app::system::ping(&st.app).await {
        Ok(()) => Json(Health { status: "ok" }).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "database unavailable",
                }),
            )
                .into_response()
        }
    }
}

/// Adds the API routes (the table itself adds `/api/v1/openapi.json`).
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::api(
                Get,
                "/healthz",
                Public,
                "system",
                "Answers 200 when the database answers",
            )
            .answers::<Health>(),
            healthz,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/auth/login",
                Public,
                "auth",
                "Log in; returns a bearer token",
            )
            .body::<LoginRequest>()
            .answers::<LoginAnswer>(),
            login,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/auth/logout",
                LoggedIn,
                "auth",
                "End this session",
            )
            .status(204),
            logout,
        )
        .add(
            RouteSpec::api(Get, "/api/v1/me", LoggedIn, "auth", "The logged-in account")
                .answers::<MeView>(),
            me,
        )
        .add(
            RouteSpec::api(
                Put,
                "/api/v1/me/language",
                LoggedIn,
                "auth",
                "Remember the interface language",
            )
            .body::<LanguageRequest>()
            .answers::<MeView>(),
            set_language,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/sites",
                Needs(SiteManage),
                "sites",
                "All centres of the deployment",
            )
            .answers::<Vec<SiteView>>(),
            list_sites,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/sites",
                Needs(SiteManage),
                "sites",
                "Add a centre",
            )
            .body::<NewSiteRequest>()
            .answers::<SiteView>()
            .status(201),
            create_site,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/staff",
                Needs(StaffManage),
                "staff",
                "Staff accounts of my centre",
            )
            .answers::<Vec<StaffView>>(),
            list_staff,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/staff",
                Needs(StaffManage),
                "staff",
                "Create a staff account",
            )
            .body::<NewStaffRequest>()
            .answers::<StaffView>()
            .status(201),
            create_staff,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/staff/{id}/unlock",
                Needs(StaffManage),
                "staff",
                "Lift a lockout",
            )
            .status(204),
            unlock_staff,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/staff/{id}/deactivate",
                Needs(StaffManage),
                "staff",
                "Turn an account off",
            )
            .status(204),
            deactivate_staff,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/staff/{id}/activate",
                Needs(StaffManage),
                "staff",
                "Turn an account on",
            )
            .status(204),
            activate_staff,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients",
                Needs(ClientRead),
                "clients",
                "Find clients of my centre by UIC (?q=)",
            )
            .query("q", "string", "part of the UIC")
            .answers::<Vec<ClientView>>(),
            search_clients,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/clients",
                Needs(ClientWrite),
                "clients",
                "Enrol a client",
            )
            .body::<NewClientRequest>()
            .answers::<ClientView>()
            .status(201),
            enrol_client,
        )
        .add(
            RouteSpec::api(
                Post,
                "/api/v1/intake",
                Needs(ClientWrite),
                "clients",
                "Enrol a client with identity, sex, year of birth and legal stage, in one step",
            )
            .body::<anxin_app::intake::IntakeRequest>()
            .answers::<ClientView>()
            .status(201),
            intake,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}",
                Needs(ClientRead),
                "clients",
                "One client record (audited)",
            )
            .answers::<ClientView>(),
            get_client,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/audit",
                Needs(AuditRead),
                "audit",
                "Latest audit entries of my centre (?limit=)",
            )
            .query("limit", "integer", "1 to 1000, default 100")
            .answers::<Vec<AuditEntryView>>(),
            audit_recent,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/audit/verify",
                Needs(AuditRead),
                "audit",
                "Check the audit chain",
            )
            .answers::<AuditCheck>(),
            audit_verify,
        )
}
