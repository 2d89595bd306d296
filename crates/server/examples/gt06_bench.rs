//! GT06 ingest benchmark: sustained positions per second over real TCP on loopback into SQLite.
//!
//! Sets up a fresh SQLite database with `BOXES` boxes out with clients under home zones (bulk
//! SQL, not timed), starts the real GT06 port and pipeline, then opens one connection per box
//! that logs in and sends `FIXES` location packets as fast as the socket takes them. Timing
//! runs from the first byte sent until the database holds every position.
//!
//!     cargo run --release -p anxin-server --example gt06_bench            # 2,000 boxes × 150 fixes
//!     BOXES=500 FIXES=400 cargo run --release -p anxin-server --example gt06_bench
//!
//! The per-device rate limit (a guard against one broken tracker, default 60 a minute) is
//! raised for the run: 300,000 real boxes reporting every 5 minutes are 1,000 reports/s in all,
//! far below any one device's limit; here few devices send many reports to load the pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anxin_server::clock::SystemClock;
use anxin_server::config::Config;
use anxin_server::i18n::I18n;
use anxin_server::{gps, AppState, Settings};
use anxin_storage::{Actor, Store};
use anxin_tracker::gt06::encode;
use anxin_tracker::Fix;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let boxes = env("BOXES", 2000);
    let fixes = env("FIXES", 150);
    let dir = tempfile::tempdir()?;
    let store = Store::open_data_dir(dir.path()).await?;
    store.migrate().await?;
    let now = chrono::Utc::now();
    let site = store
        .create_site(&Actor::cli(), "BENCH", "Bench", now)
        .await?;
    let ms = now.timestamp_millis();
    let setup = Instant::now();
    let pool = store.pool();
    sqlx::query("INSERT INTO users (site_id, username, role, password_hash, created_at) VALUES ($1, 'bench', 'prescriber', 'x', $2)")
        .bind(site.id).bind(ms).execute(pool).await?;
    let mut tx = pool.begin().await?;
    for i in 1..=boxes as i64 {
        let q = |sql: &'static str| sqlx::query(sql);
        q("INSERT INTO clients (id, site_id, uic, enrolled_on, created_at) VALUES ($1, $2, $3, '2025-01-01', $4)")
            .bind(i).bind(site.id).bind(format!("BENCH-{i:06}")).bind(ms).execute(&mut *tx).await?;
        q("INSERT INTO consents (id, client_id, purpose, recipient, scope, given_on, expires_on, recorded_by, created_at) VALUES ($1, $1, 'box_gps', 'centre', 'bench', '2025-01-01', '2099-01-01', 1, $2)")
            .bind(i).bind(ms).execute(&mut *tx).await?;
        q("INSERT INTO boxes (id, site_id, serial, state, created_at) VALUES ($1, $2, $3, 'with_client', $4)")
            .bind(i).bind(site.id).bind(format!("BOX-{i:06}")).bind(ms).execute(&mut *tx).await?;
        q("INSERT INTO box_loads (id, box_id, client_id, site_id, start_day, days, code_hour, state, loaded_by, loaded_at) VALUES ($1, $1, $1, $2, '2026-01-01', 6, 7, 'with_client', 1, $3)")
            .bind(i).bind(site.id).bind(ms).execute(&mut *tx).await?;
        q("INSERT INTO trackers (imei, box_id, site_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(imei(i))
            .bind(i)
            .bind(site.id)
            .bind(ms)
            .execute(&mut *tx)
            .await?;
        q("INSERT INTO home_zones (load_id, box_id, client_id, consent_id, zone, set_by, set_at) VALUES ($1, $1, $1, $1, $2, 1, $3)")
            .bind(i).bind(zone(i)).bind(ms).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    println!(
        "set-up: {boxes} boxes in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let mut config = Config::default();
    config.gps.reports_per_minute = 1_000_000;
    let settings = Settings::from_config(&config)?;
    let app = anxin_app::App::new(
        store.clone(),
        Arc::new(SystemClock),
        settings.app_settings(),
        anxin_storage::vault::Vault::from_key([7; 32]),
    );
    let state = AppState::new(app, I18n::load()?, settings);
    let ingest = gps::spawn(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Every box connects from loopback: the caps are those of a port fronting the whole fleet.
    let limits = gps::listen::PortLimits {
        max_connections: 65_536,
        max_per_address: 65_536,
        ..Default::default()
    };
    tokio::spawn(gps::listen::gt06(ingest.clone(), listener, limits));

    let total = (boxes * fixes) as i64;
    let start = Instant::now();
    let mut senders = vec![];
    for i in 1..=boxes as i64 {
        senders.push(tokio::spawn(async move {
            let mut sock = tokio::net::TcpStream::connect(addr).await?;
            sock.write_all(&encode::login(&imei(i), 1)).await?;
            let mut ack = [0u8; 10];
            sock.read_exact(&mut ack).await?;
            let (lat, lon) = centre(i);
            let t0 = chrono::Utc::now().timestamp() - fixes as i64;
            let mut buf = Vec::with_capacity(fixes * 40);
            for k in 0..fixes {
                // A few metres of jitter around home.
                let d = (k % 7) as f64 * 0.00002;
                let fix = Fix {
                    at_ms: (t0 + k as i64) * 1000,
                    lat: lat + d,
                    lon: lon - d,
                };
                buf.extend_from_slice(&encode::location(&fix, (k % 60_000) as u16 + 2));
            }
            sock.write_all(&buf).await?;
            sock.flush().await?;
            Ok::<_, std::io::Error>(sock)
        }));
    }
    let mut socks = vec![];
    for s in senders {
        socks.push(s.await??);
    }
    let sent = start.elapsed();
    loop {
        let n = store.position_count().await?;
        if n >= total {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("only {n} of {total} positions stored after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = start.elapsed();
    drop(socks);
    let s = &state.app.gps.stats;
    println!(
        "{total} positions from {boxes} GT06 connections: all sent in {:.2} s, all stored in {:.2} s → {:.0} positions/s sustained (SQLite, synchronous=FULL)",
        sent.as_secs_f64(),
        stored.as_secs_f64(),
        total as f64 / stored.as_secs_f64()
    );
    println!(
        "admitted {}, stored {}, invalid {}, flooded {}, without consent {}",
        s.admitted.load(std::sync::atomic::Ordering::Relaxed),
        s.stored_positions
            .load(std::sync::atomic::Ordering::Relaxed),
        s.invalid.load(std::sync::atomic::Ordering::Relaxed),
        s.flooded.load(std::sync::atomic::Ordering::Relaxed),
        s.without_consent.load(std::sync::atomic::Ordering::Relaxed),
    );
    Ok(())
}

fn imei(i: i64) -> String {
    format!("86{:013}", i)
}

fn centre(i: i64) -> (f64, f64) {
    (
        25.0 + (i % 100) as f64 * 0.001,
        102.7 + (i / 100) as f64 * 0.001,
    )
}

fn zone(i: i64) -> String {
    let (lat, lon) = centre(i);
    format!(r#"{{"kind":"circle","lat":{lat},"lon":{lon},"radius_m":100}}"#)
}
