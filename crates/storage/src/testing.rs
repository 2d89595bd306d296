//! Fresh, migrated databases for tests: a SQLite file in a temporary directory, or a new
//! database on the PostgreSQL server named by `ANXIN_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`). The PostgreSQL half never skips:
//! if the server is absent, the test fails and says how to start one.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use rand::Rng;

use crate::Store;

/// The server the PostgreSQL half of the tests uses.
pub fn postgres_admin_url() -> String {
    std::env::var("ANXIN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The template database for this set of PostgreSQL migrations (named by their checksums, so
/// a changed or added migration gets a fresh template).
fn template_name() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for m in crate::POSTGRES_MIGRATIONS.iter() {
        h.update(m.version.to_le_bytes());
        h.update(&m.checksum);
    }
    format!("anxin_tmpl_{}", &hex::encode(h.finalize())[..16])
}

/// A migrated test database that removes itself on [`TestDb::cleanup`].
pub struct TestDb {
    pub store: Store,
    /// The URL of this database (for tests that start the real binary on it).
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new SQLite database in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open_data_dir(dir.path()).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("anxin.sqlite3").display()
        );
        TestDb {
            store,
            url,
            pg_name: None,
            _dir: Some(dir),
        }
    }

    /// A new database on the test PostgreSQL server: a copy of a template migrated once per
    /// set of migrations (`CREATE DATABASE … TEMPLATE`), which is much faster than migrating
    /// every test's database.
    pub async fn postgres() -> TestDb {
        let admin_url = postgres_admin_url();
        let admin = Store::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "the PostgreSQL half of the test suite needs a server ({e}); \
                 run ./.ci/run, which starts one, or set ANXIN_TEST_POSTGRES_URL"
            )
        });
        let with_path = |name: &str| {
            let mut url = url::Url::parse(&admin_url).expect("test url");
            url.set_path(name);
            url.to_string()
        };
        let template = template_name();
        let name = format!("anxin_test_{:016x}", rand::thread_rng().gen::<u64>());
        {
            let mut conn = admin.pool().acquire().await.expect("admin connection");
            // One creator at a time, across test threads and processes: a template being
            // migrated or copied must have no other session on it.
            sqlx::query("SELECT pg_advisory_lock(7230411)")
                .execute(&mut *conn)
                .await
                .expect("template lock");
            let exists = sqlx::query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
                .bind(template.clone())
                .fetch_optional(&mut *conn)
                .await
                .expect("look for the template");
            if exists.is_none() {
                sqlx::query(&format!("CREATE DATABASE {template}"))
                    .execute(&mut *conn)
                    .await
                    .expect("create template database");
                let t = Store::open(&with_path(&template))
                    .await
                    .expect("migrate the template database");
                t.close().await;
            }
            let created = sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .execute(&mut *conn)
                .await;
            let _ = sqlx::query("SELECT pg_advisory_unlock(7230411)")
                .execute(&mut *conn)
                .await;
            created.expect("create test database from the template");
        }
        admin.close().await;
        let url = with_path(&name);
        let store = Store::open(&url).await.expect("open postgres");
        TestDb {
            store,
            url,
            pg_name: Some(name),
            _dir: None,
        }
    }

    /// Closes the store and drops the PostgreSQL database (the SQLite directory goes on drop).
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some(name) = self.pg_name {
            if let Ok(admin) = Store::connect(&postgres_admin_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(admin.pool())
                    .await;
                admin.close().await;
            }
        }
    }
}
