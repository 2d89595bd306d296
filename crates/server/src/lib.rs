//! Anxin's HTTP server: the JSON API under `/api/v1`, the server-rendered pages, and what
//! stands in front of them (authentication, the route guard, CSRF, language).
//!
//! This crate knows HTTP and nothing of SQL or of the store: every handler calls a use case of
//! the application core ([`anxin_app`]), which alone reaches the store (the crate depends on
//! `anxin-storage` only for its test fixtures). A request flows: axum router → [`routes`] guard
//! (declared access, session, role, CSRF) → handler in [`api`] or [`web`] → use case (one unit
//! of work, audited) → answer, with failures mapped once in [`error`].

pub mod api;
pub mod assessment;
pub mod auth;
pub use anxin_app::clock;
pub mod boxes;
pub mod calendar;
pub mod checkpoints;
pub mod clinic;
pub mod clinic_web;
pub mod code128;
pub mod config;
pub use anxin_app::demo;
pub mod error;
pub mod flash;
pub mod gps;
pub mod i18n;
pub mod intake;
pub mod json;
pub mod once;
pub mod org;
pub mod photos;
pub mod police_referrals;
pub mod policy;
pub mod policy_room;
pub mod routes;
pub mod services;
pub mod sms;
pub mod state;
pub mod takehome;
pub mod tc;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod throttle;
pub mod web;
pub mod worklist;

use std::net::SocketAddr;

use axum::Router;

pub use config::Config;
pub use state::{AppState, Settings};

/// Every route of the application, declared, before the state is attached.
pub fn route_table() -> routes::RouteTable {
    let table = routes::RouteTable::default();
    let table = api::routes(table);
    let table = web::routes(table);
    let table = clinic::routes(table);
    let table = clinic_web::routes(table);
    let table = intake::routes(table);
    let table = photos::routes(table);
    let table = assessment::routes(table);
    let table = services::routes(table);
    let table = takehome::routes(table);
    let table = takehome::web::routes(table);
    let table = policy::routes(table);
    let table = policy_room::routes(table);
    let table = calendar::routes(table);
    let table = tc::routes(table);
    let table = checkpoints::routes(table);
    let table = boxes::routes(table);
    let table = boxes::web::routes(table);
    let table = gps::api::routes(table);
    let table = gps::web::routes(table);
    let table = worklist::routes(table);
    let table = police_referrals::routes(table);
    let table = org::routes(table);
    sms::routes(table)
}

/// The complete application for `state`.
pub fn app(state: AppState) -> Router {
    route_table().into_router(state)
}

/// Serves `state` on `listener` until Ctrl-C or SIGTERM.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let router = app(state);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
