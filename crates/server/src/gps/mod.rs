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
        let limits = fit_to_open_files(cfg.gt06_limits())?;
        tokio::spawn(listen::gt06(ingest.clone(), l, limits));
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
        tokio::spawn(listen::osmand(ingest.clone(), l, cfg.osmand_limits()));
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

/// File descriptors kept for everything but the GT06 port: staff HTTP, the database pool, the
/// OsmAnd port, logs and backups.
pub const RESERVED_FILES: u64 = 256;

/// Checks the process's open-file limit against the GT06 caps: raises the soft limit towards
/// what the caps need (up to the hard limit), then, if it is still short, lowers the port's cap
/// so that [`RESERVED_FILES`] stay free for staff HTTP, and says so. A limit too low for even a
/// few trackers is refused at start.
pub fn fit_to_open_files(limits: listen::PortLimits) -> anyhow::Result<listen::PortLimits> {
    let wanted = limits.max_connections as u64 + RESERVED_FILES;
    let soft = match rlimit::increase_nofile_limit(wanted) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; GT06 caps left as configured");
            return Ok(limits);
        }
    };
    fit(limits, soft)
}

fn fit(limits: listen::PortLimits, soft: u64) -> anyhow::Result<listen::PortLimits> {
    let wanted = limits.max_connections as u64 + RESERVED_FILES;
    if soft >= wanted {
        return Ok(limits);
    }
    let room = soft.saturating_sub(RESERVED_FILES);
    if room < 16 {
        anyhow::bail!(
            "gps.gt06_max_connections: the open-file limit is {soft}, too low for a GT06 port \
             ({RESERVED_FILES} are kept for staff HTTP and the database); raise it (ulimit -n, \
             LimitNOFILE=) or turn the port off (gps.gt06_listen = \"\")"
        );
    }
    tracing::warn!(
        configured = limits.max_connections,
        lowered_to = room,
        open_file_limit = soft,
        "gps.gt06_max_connections lowered to fit the open-file limit, keeping {RESERVED_FILES} for staff HTTP"
    );
    Ok(listen::PortLimits {
        max_connections: room as usize,
        ..limits
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_gt06_cap_fits_the_open_file_limit() {
        let limits = listen::PortLimits::default();
        assert_eq!(fit(limits, 65_536).unwrap().max_connections, 512);
        assert_eq!(
            fit(limits, 1024).unwrap().max_connections,
            512,
            "512 + 256 fit in 1024"
        );
        // 2,048 configured under ulimit -n 1024: the port gets what staff HTTP does not need.
        let many = listen::PortLimits {
            max_connections: 2048,
            ..limits
        };
        assert_eq!(fit(many, 1024).unwrap().max_connections, 768);
        assert!(fit(limits, 200).is_err());
    }
}
