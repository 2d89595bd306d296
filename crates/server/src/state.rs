//! What every handler shares: the application core (which alone reaches the store), the
//! messages in both languages, the HTTP settings and the one-time form tokens.

use std::sync::Arc;

use anxin_domain::auth::{LoginPolicy, SessionPolicy};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

use crate::config::{ClinicPolicy, Config, ConfigError};
use crate::i18n::I18n;

/// Settings the server needs at run time (a subset of the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    pub session: SessionPolicy,
    pub login: LoginPolicy,
    /// Add `Secure` to cookies: a TLS proxy is in front.
    pub behind_tls: bool,
    /// The centre's offset from UTC, which decides what "today" is.
    pub utc_offset: FixedOffset,
    /// Dose, urine and stock rules.
    pub clinic: ClinicPolicy,
    /// Counts below this are suppressed in figures for the CDC.
    pub suppression_threshold: u64,
    /// The drop-out rule's days without a dose.
    pub dropout_days: u32,
    /// The `[sms]` settings (provider, texts, delivery-report key).
    pub sms: anxin_sms::SmsSettings,
    /// The `[gps]` settings (tracker ports, home-zone rules, retention).
    pub gps: crate::config::GpsConfig,
    /// Where backups made from the page go (`<data_dir>/backups`).
    pub backup_dir: std::path::PathBuf,
    /// The data key file, which the backup page tells the user to keep apart.
    pub key_path: std::path::PathBuf,
    /// Where the box station's cable is.
    pub box_station: Option<anxin_app::station::Line>,
    /// Where signed checkpoints of the audit chain are kept (`<data_dir>/audit-checkpoints`).
    pub checkpoint_dir: std::path::PathBuf,
}

impl Settings {
    /// The run-time settings of a configuration.
    pub fn from_config(c: &Config) -> Result<Settings, ConfigError> {
        Ok(Settings {
            session: c.session_policy(),
            login: c.login_policy(),
            behind_tls: c.behind_tls,
            utc_offset: c.offset()?,
            clinic: c.clinic_policy(),
            suppression_threshold: c.indicators.suppression_threshold,
            dropout_days: c.indicators.dropout_days,
            sms: anxin_sms::SmsSettings::new(c.sms.clone(), c.data_dir.clone()),
            gps: c.gps.clone(),
            backup_dir: c.data_dir.join("backups"),
            key_path: c.key_path(),
            box_station: c.box_station()?,
            checkpoint_dir: c.checkpoint_dir(),
        })
    }
}

/// The shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// The application core: every use case runs through it.
    pub app: anxin_app::App,
    pub i18n: I18n,
    pub settings: Settings,
    /// The one-time tokens of page forms seen (a repeat gets the first answer).
    pub forms: crate::once::Forms,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Settings {
    /// What the application core needs of these settings.
    pub fn app_settings(&self) -> anxin_app::AppSettings {
        anxin_app::AppSettings {
            utc_offset: self.utc_offset,
            clinic: self.clinic,
            sms: self.sms.clone(),
            session: self.session,
            login: self.login,
            suppression_threshold: self.suppression_threshold,
            dropout_days: self.dropout_days,
            gps: self.gps.rules(),
            box_station: self.box_station.clone(),
        }
    }
}

impl AppState {
    /// The state over an application core built with [`Settings::app_settings`].
    pub fn new(app: anxin_app::App, i18n: I18n, settings: Settings) -> Self {
        AppState(Arc::new(Inner {
            app,
            i18n,
            settings,
            forms: crate::once::Forms::default(),
        }))
    }

    /// The one reading of the clock for this request (the application core's clock).
    pub fn now(&self) -> DateTime<Utc> {
        self.app.now()
    }

    /// Today's date at the centre.
    pub fn today(&self) -> NaiveDate {
        self.app.today()
    }
}
