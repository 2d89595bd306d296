//! Anxin's storage adapter: one [`Store`] over SQLite or PostgreSQL.
//!
//! SQLite (WAL, `synchronous=FULL`) is the embedded default, for one centre on one laptop;
//! PostgreSQL serves many centres from one server. Both are reached through sqlx's `Any`
//! driver with one set of portable SQL statements (`$1` placeholders work on both); only the
//! migrations differ per backend and are embedded in the binary, run at start. One read is the
//! exception: the province-sized indicator report ([`report`]) reads a SQLite file through a
//! read-only `rusqlite` connection, where sqlx's per-row cost would dominate.
//!
//! Invariants this crate keeps:
//! - every audited write happens in one transaction with its audit entry ([`Store::begin_write`]),
//!   so nothing half-written stays and nothing is written without its trace;
//! - every read of a client record goes through [`Store::read_client`], which writes the audit entry;
//! - database error text never leaves this crate inside a domain error (it is logged, not shown).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anxin_domain::DomainError;
use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Transaction};

pub mod assessments;
pub mod audit;
pub mod boxes;
pub mod calendar;
pub mod clients;
pub mod clinic;
pub mod gps;
pub mod org_units;
pub mod outbox;
pub mod photos;
pub mod policy_room;
pub mod referrals;
pub mod report;
pub mod services;
pub mod sessions;
pub mod sites;
pub mod takehome;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;
pub mod vault;
pub mod work;

pub use audit::{Actor, AuditEvent, AuditView};
pub use clients::Client;
pub use sessions::Session;
pub use sites::Site;
pub use users::{NewUser, User, UserAuth};
pub use work::Work;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
pub(crate) static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("./migrations/postgres");

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything that can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A rule of the domain refused the operation (validation, scope, conflict…).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database URL is not one Anxin understands.
    #[error("database_url: {0}")]
    BadUrl(String),
    /// The database could not be reached or opened.
    #[error("cannot open the database at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure. Its text is for logs, never for HTTP answers.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A failure of the indicator report's direct read of the SQLite file ([`report`]). Its text
    /// is for logs, never for HTTP answers.
    #[error("database error (report read): {0}")]
    ReportRead(#[from] rusqlite::Error),
    /// Stored data that cannot be read back (a corrupted row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

/// Result alias for storage calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Hides the password in a database URL so that it can be printed or logged.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".into(),
    }
}

/// A write transaction ([`Store::begin_write`]): the connection inside it, for queries, and on
/// SQLite the process's write turn, given back after the transaction ends (committed, or rolled
/// back when dropped).
pub struct WriteTx {
    // Declared first, so dropped first: the transaction ends before the turn passes on.
    tx: Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Makes the transaction's writes visible.
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Drops the transaction's writes.
    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// The handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite's one writer at a time, queued in the process: a write waits its turn here rather
    /// than in SQLite's busy handler, whose sleeps (up to 100 ms each) made the tail latency.
    write_turn: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    /// The database file of a SQLite store, which the report reads directly ([`report`]).
    sqlite_file: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database `anxin.sqlite3` in `data_dir`.
    pub async fn open_data_dir(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::BadUrl(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let abs = std::path::absolute(data_dir.join("anxin.sqlite3"))
            .map_err(|e| StoreError::BadUrl(format!("bad data directory: {e}")))?;
        let path = abs
            .to_str()
            .ok_or_else(|| StoreError::BadUrl("data directory path is not UTF-8".into()))?;
        Store::connect(&format!("sqlite://{}?mode=rwc", path.replace(' ', "%20"))).await
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`) without running migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(format!(
                "`{}` is neither sqlite:// nor postgres://",
                redact_url(url)
            )));
        };
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(url)
            .await
            .map_err(|source| StoreError::Unreachable {
                url: redact_url(url),
                source,
            })?;
        let sqlite_file = match backend {
            Backend::Sqlite => sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .ok()
                .map(|o| o.get_filename().to_owned())
                .filter(|f| f.as_os_str() != ":memory:" && !url.contains("mode=memory")),
            Backend::Postgres => None,
        };
        Ok(Store {
            pool,
            write_turn: (backend == Backend::Sqlite)
                .then(|| std::sync::Arc::new(tokio::sync::Mutex::new(()))),
            backend,
            sqlite_file,
        })
    }

    /// Applies the embedded migrations of this backend that are not yet applied.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Connects and migrates: what `anxin serve` does at start.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// The file of a SQLite store (`None` for PostgreSQL or an in-memory database).
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref()
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers whether the database responds (for `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (tests drop their database afterwards).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The raw pool, for the storage test suite and adapters that add their own tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction that holds the audit chain's lock from its first statement.
    ///
    /// Locking the chain head first makes SQLite take its write lock at once (no failed lock
    /// upgrade after a read) and serialises audit appends on PostgreSQL, so the chain stays linear.
    /// On SQLite the transaction also holds the process's write turn (see [`WriteTx`]).
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let turn = match &self.write_turn {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Copies the whole database to `to` (SQLite only; for PostgreSQL use `pg_dump`).
    pub async fn backup_to(&self, to: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(DomainError::invalid(
                "backend",
                "backups of a PostgreSQL deployment are taken with pg_dump",
            )
            .into());
        }
        if to.exists() {
            return Err(DomainError::invalid(
                "to",
                format!("{} already exists; choose a new file", to.display()),
            )
            .into());
        }
        let path = to
            .to_str()
            .ok_or_else(|| DomainError::invalid("to", "path is not UTF-8"))?;
        // The copy holds the whole record: readable by its owner only, from its first byte
        // (SQLite writes into an empty file that already exists).
        {
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            open.open(to).map_err(|e| {
                DomainError::invalid("to", format!("cannot create {}: {e}", to.display()))
            })?;
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Milliseconds since the epoch, the storage form of an instant.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Reads back an instant stored by [`to_ms`].
pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

/// Turns a unique-constraint violation into a domain conflict with `message`.
pub(crate) fn conflict_on_unique(e: sqlx::Error, message: impl Into<String>) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Domain(DomainError::Conflict(message.into()))
        }
        _ => StoreError::Database(e),
    }
}

/// A unique-constraint violation as the refusal `p` (by code, with its field); other database
/// errors as they are.
pub(crate) fn refused_on_unique(e: sqlx::Error, p: anxin_domain::Problem) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Domain(DomainError::Refused(p))
        }
        _ => StoreError::Database(e),
    }
}

/// Reads a column, mapping a decoding failure to [`StoreError::Corrupt`].
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}
