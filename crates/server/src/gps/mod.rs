//! Box GPS in the server: the listeners for each tracker protocol ([`listen`]), the staff and
//! police routes ([`api`]) and the staff pages ([`web`]). The ingest pipeline and the use cases
//! are the application core's (`anxin_app::gps`).

pub mod api;
pub mod listen;
pub mod web;

pub use anxin_app::gps::{hysteresis, GpsRules, Ingest, Refusal, Shared, Stats};

use crate::state::AppState;

/// Starts the writer task of the pipeline; the returned handle feeds it.
pub fn spawn(st: AppState) -> Ingest {
    anxin_app::gps::spawn(st.app.clone())
}

/// Starts everything `[gps]` asks for: the writer, the tick, and each configured listener.
pub async fn start(st: AppState) -> anyhow::Result<Ingest> {
    let ingest = spawn(st.clone());
    let cfg = st.settings.gps.clone();
    if !cfg.gt06_listen.is_empty() {
        let l = tokio::net::TcpListener::bind(&cfg.gt06_listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!("gps.gt06_listen: cannot listen on {}: {e}", cfg.gt06_listen)
            })?;
        tracing::info!(addr = %cfg.gt06_listen, "GT06 tracker port open");
        tokio::spawn(listen::gt06(ingest.clone(), l));
    }
    if !cfg.osmand_listen.is_empty() {
        let l = tokio::net::TcpListener::bind(&cfg.osmand_listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "gps.osmand_listen: cannot listen on {}: {e}",
                    cfg.osmand_listen
                )
            })?;
        tracing::info!(addr = %cfg.osmand_listen, "OsmAnd tracker port open");
        tokio::spawn(listen::osmand(ingest.clone(), l));
    }
    if let Some(url) = cfg.mqtt_url.as_deref().filter(|u| !u.is_empty()) {
        listen::mqtt(ingest.clone(), url, &cfg)?;
    }
    let ticker = ingest.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            ticker.tick().await;
        }
    });
    Ok(ingest)
}
