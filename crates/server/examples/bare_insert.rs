//! The yardstick of `bench/capacity.sh`: a bare axum server that inserts one row per
//! `POST /api/v1/doses` into SQLite (WAL, `synchronous = FULL`, a pool of 4 as the store uses),
//! with no session, no audit entry and no rule. The dose endpoint's rate against this one is
//! what Anxin's own work costs.
//!
//! `cargo run --release -p anxin-server --example bare_insert -- 127.0.0.1:8099 /tmp/bare.sqlite3`

use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

#[derive(serde::Deserialize)]
struct Dose {
    uic: String,
}

async fn dose(State(pool): State<SqlitePool>, Json(d): Json<Dose>) -> StatusCode {
    let at = chrono::Utc::now().timestamp_millis();
    match sqlx::query("INSERT INTO doses (uic, at_ms) VALUES ($1, $2)")
        .bind(d.uic)
        .bind(at)
        .execute(&pool)
        .await
    {
        Ok(_) => StatusCode::CREATED,
        Err(_) => StatusCode::CONFLICT,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8099".into());
    let file = args.next().unwrap_or_else(|| "bare.sqlite3".into());
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{file}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(std::time::Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS doses (id INTEGER PRIMARY KEY, uic TEXT NOT NULL UNIQUE, \
         at_ms INTEGER NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let app = Router::new()
        .route("/api/v1/doses", post(dose))
        .with_state(pool);
    let l = tokio::net::TcpListener::bind(&listen).await?;
    println!("bare insert server on {listen}, database {file}");
    axum::serve(l, app).await?;
    Ok(())
}
