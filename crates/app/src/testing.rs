//! Test helpers: an application core over a fresh database with a manual clock and the default
//! rules (for this crate's tests and the adapters' test fixtures).

use std::sync::Arc;

use anxin_storage::testing::TestDb;
use anxin_storage::vault::Vault;
use chrono::{FixedOffset, Offset, TimeZone, Utc};

use crate::clock::{Clock, ManualClock};
use crate::{App, AppSettings, ClinicPolicy};

pub use anxin_storage::testing::TestDb as Db;
pub use anxin_storage::Store;

impl AppSettings {
    /// The default rules of every policy, at UTC+8, with SMS texts from `data_dir`.
    pub fn defaults(data_dir: std::path::PathBuf) -> AppSettings {
        let data_dir_for_bench = data_dir.clone();
        AppSettings {
            utc_offset: FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix()),
            clinic: ClinicPolicy {
                orders: Default::default(),
                missed: Default::default(),
                urine_random_rate: 0.1,
                stock: Default::default(),
            },
            sms: anxin_sms::SmsSettings::new(Default::default(), data_dir),
            session: Default::default(),
            login: Default::default(),
            suppression_threshold: 5,
            dropout_days: anxin_domain::clinic::episodes::DEFAULT_DROPOUT_DAYS,
            gps: Default::default(),
            box_station: Some(crate::station::Line::Bench(fresh_bench(
                &data_dir_for_bench,
            ))),
        }
    }
}

/// A box bench directory of its own under `dir` (tests run in parallel; box numbers repeat).
pub fn fresh_bench(dir: &std::path::Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    dir.join(format!(
        "anxin-box-bench-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The data key of every test application.
pub const TEST_KEY: [u8; 32] = [42; 32];

/// The data key of every test application, for tests that open what it sealed.
pub fn test_vault() -> Vault {
    Vault::from_key(TEST_KEY)
}

/// An application over `db` with `clock`, `settings` and the [`TEST_KEY`].
pub fn app_on(db: &TestDb, clock: Arc<dyn Clock>, settings: AppSettings) -> App {
    App::new(db.store.clone(), clock, settings, test_vault())
}

/// An application over a fresh SQLite database at 2026-11-22 09:00 in the centre (01:00 UTC).
pub async fn test_app() -> (App, TestDb) {
    let db = TestDb::sqlite().await;
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0)
            .single()
            .unwrap_or_else(Utc::now),
    ));
    let app = app_on(&db, clock, AppSettings::defaults(std::env::temp_dir()));
    (app, db)
}
