//! Anxin's application core: each use case of the centre written once.
//!
//! A use case is a function of [`App`] (the store, the clock, the settings, the data key), an
//! [`Actor`] (who acts, in which role, at which centre) and a typed request; it answers a typed
//! view (`Serialize` + `JsonSchema`) or an [`Error`] whose refusals carry a stable code
//! ([`anxin_domain::problem`]). A use case that writes runs in one unit of work
//! ([`anxin_storage::Work`]): every write and its audit entries commit together or not at all.
//!
//! The HTTP API, the pages, the CLI, the demo and background jobs are adapters over these
//! functions: they translate requests in and answers out, and hold no rule of their own.
//! Feature modules: [`dispensing`] (the window), [`orders`] (dose orders), [`identity`]
//! (a client's identifying fields), [`boxes`] (loading a take-home box and handing it out),
//! [`takehome`] (eligibility, police requests and answers), [`calendar`] (closure days), [`agreements`] (the treatment agreement), [`treatment`] (stage, discharge,
//! readmission, transfer, and the boxes that end with a treatment), [`audit`] (reading the trail),
//! [`worklist`] (what waits for a prescriber today).

use std::sync::Arc;

use anxin_storage::vault::Vault;
use anxin_storage::Store;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

pub mod actor;
pub mod agreements;
pub mod assessment;
pub mod audit;
pub mod boxes;
pub mod calendar;
pub mod clock;
pub mod consents;
pub mod demo;
pub mod dispensing;
pub mod error;
pub mod gps;
pub mod identity;
pub mod indicators;
pub mod intake;
pub mod orders;
pub mod org;
pub mod outcomes;
pub mod passwords;
pub mod photos;
pub mod policy_room;
pub mod record;
pub mod records;
pub mod referrals;
pub mod services;
pub mod sessions;
pub mod sms;
pub mod staff;
pub mod station;
pub mod stock;
pub mod system;
pub mod takehome;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod treatment;
pub mod units;
pub mod urine;
pub mod worklist;

pub use actor::Actor;
pub use anxin_storage::Client;
pub use error::{Error, Result};

use clock::Clock;

/// Dose, urine and stock rules of the centre (the `[clinic]` configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClinicPolicy {
    pub orders: anxin_domain::clinic::orders::OrderPolicy,
    pub missed: anxin_domain::clinic::missed::MissedDosePolicy,
    pub urine_random_rate: f64,
    pub stock: anxin_domain::clinic::stock::StockPolicy,
}

/// What the use cases need of the configuration.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// The centre's offset from UTC, which decides what "today" is.
    pub utc_offset: FixedOffset,
    /// Dose, urine and stock rules.
    pub clinic: ClinicPolicy,
    /// The `[sms]` settings (texts, sender name).
    pub sms: anxin_sms::SmsSettings,
    /// Idle and absolute session lifetimes.
    pub session: anxin_domain::auth::SessionPolicy,
    /// Login throttling and lockout.
    pub login: anxin_domain::auth::LoginPolicy,
    /// Counts below this are suppressed in figures for the CDC and the police.
    pub suppression_threshold: u64,
    /// The drop-out rule: days without a dose that end an episode of care
    /// (`indicators.dropout_days`; `anxin_domain::clinic::episodes`).
    pub dropout_days: u32,
    /// The box GPS rules (`[gps]`).
    pub gps: gps::GpsRules,
    /// Where the box station's cable is (`boxes.station`); `None`: boxes cannot be loaded.
    pub box_station: Option<station::Line>,
}

/// The record id cookies are sealed under (no client has a negative id).
const COOKIE_SEAL_ID: i64 = -7;

/// The application context, cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

/// The contents of [`App`].
pub struct Inner {
    /// Only the use cases of this crate reach the store.
    pub(crate) store: Store,
    clock: Arc<dyn Clock>,
    pub settings: AppSettings,
    /// The data key: identity encryption, name search, urine draws, box secrets.
    pub(crate) vault: Vault,
    /// What the GPS pipeline shares with the use cases (caches, counters).
    pub gps: gps::Shared,
    /// Addresses whose logins are delayed, and until when (see [`sessions::login`]).
    pub(crate) login_holds: sessions::Holds,
    #[cfg(feature = "testing")]
    failpoints: std::sync::Mutex<std::collections::HashSet<&'static str>>,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: AppSettings, vault: Vault) -> App {
        App(Arc::new(Inner {
            store,
            clock,
            settings,
            vault,
            gps: gps::Shared::default(),
            login_holds: Default::default(),
            #[cfg(feature = "testing")]
            failpoints: Default::default(),
        }))
    }

    /// Seals a small value for a cookie the server sets on the browser (typed form values kept
    /// across a refused form): encrypted and authenticated with the data key.
    pub fn seal_cookie(&self, plaintext: &[u8]) -> Vec<u8> {
        self.vault.seal(COOKIE_SEAL_ID, plaintext)
    }

    /// Opens what [`App::seal_cookie`] sealed; `None` when it was not sealed here or was altered.
    pub fn open_cookie(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.vault.open(COOKIE_SEAL_ID, sealed).ok()
    }

    /// The one reading of the clock for a use case.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Today's date at the centre.
    pub fn today(&self) -> NaiveDate {
        self.now()
            .with_timezone(&self.settings.utc_offset)
            .date_naive()
    }

    /// Makes the named step of a use case fail (tests of the unit of work).
    #[cfg(feature = "testing")]
    pub fn arm_failpoint(&self, name: &'static str) {
        if let Ok(mut f) = self.failpoints.lock() {
            f.insert(name);
        }
    }

    /// Disarms every failpoint.
    #[cfg(feature = "testing")]
    pub fn disarm_failpoints(&self) {
        if let Ok(mut f) = self.failpoints.lock() {
            f.clear();
        }
    }

    /// Fails here when a test armed `name`; nothing in production builds.
    #[cfg(feature = "testing")]
    pub(crate) fn failpoint(&self, name: &'static str) -> Result<()> {
        let armed = self
            .failpoints
            .lock()
            .map(|f| f.contains(name))
            .unwrap_or(false);
        if armed {
            return Err(Error::Internal(format!("failpoint {name}")));
        }
        Ok(())
    }

    #[cfg(not(feature = "testing"))]
    #[inline(always)]
    pub(crate) fn failpoint(&self, _name: &'static str) -> Result<()> {
        Ok(())
    }
}

/// Parses a record id from a path or form (`id.malformed` at field `id` otherwise).
pub fn parse_id(raw: &str) -> std::result::Result<i64, anxin_domain::DomainError> {
    raw.trim().parse().map_err(|_| {
        anxin_domain::Problem::new(anxin_domain::Code::IdMalformed)
            .field("id")
            .arg("value", raw.trim())
            .into()
    })
}

/// Parses a `YYYY-MM-DD` field.
pub fn parse_date(field: &str, raw: &str) -> std::result::Result<NaiveDate, anxin_domain::Problem> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        anxin_domain::Problem::new(anxin_domain::Code::DateMalformed)
            .field(field)
            .arg("value", raw.trim())
    })
}
