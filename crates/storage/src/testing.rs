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

    /// A new database on the test PostgreSQL server.
    pub async fn postgres() -> TestDb {
        let admin_url = postgres_admin_url();
        let admin = Store::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "the PostgreSQL half of the test suite needs a server ({e}); \
                 run ./.ci/run, which starts one, or set ANXIN_TEST_POSTGRES_URL"
            )
        });
        let name = format!("anxin_test_{:016x}", rand::thread_rng().gen::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .expect("create test database");
        admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("test url");
        url.set_path(&name);
        let url = url.to_string();
        let store = Store::open(&url).await.expect("open and migrate postgres");
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
