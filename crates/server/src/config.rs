//! Anxin's configuration: one typed struct read from an optional TOML file, then overridden by
//! `ANXIN_*` environment variables, then by command-line flags. This file is the one place
//! where every key is documented (and `docs/configuration.md` repeats it for operators).
//!
//! | key | env | default | meaning |
//! |---|---|---|---|
//! | `listen` | `ANXIN_LISTEN` | `127.0.0.1:8080` | address the HTTP server binds |
//! | `data_dir` | `ANXIN_DATA_DIR` | `./anxin-data` | where the embedded SQLite database lives |
//! | `database_url` | `ANXIN_DATABASE_URL` | (none: SQLite in `data_dir`) | `postgres://…` for a multi-centre deployment; secret |
//! | `database_url_file` | `ANXIN_DATABASE_URL_FILE` | (none) | read `database_url` from this file (e.g. a container secret) |
//! | `behind_tls` | `ANXIN_BEHIND_TLS` | `false` | set the `Secure` flag on cookies (a TLS proxy is in front) |
//! | `utc_offset` | `ANXIN_UTC_OFFSET` | `+08:00` | the centre's clock offset, which decides what "today" is |
//! | `clock_start` | `ANXIN_CLOCK_START` | (none: the real clock) | start the server's clock at this RFC 3339 instant (demos, end-to-end tests) |
//! | `demo_seed` | `ANXIN_DEMO_SEED` | `20261122` | seed of the deterministic demo centre |
//! | `session.idle_minutes` | `ANXIN_SESSION__IDLE_MINUTES` | `15` | session idle timeout |
//! | `session.absolute_hours` | `ANXIN_SESSION__ABSOLUTE_HOURS` | `12` | session absolute lifetime |
//! | `login.max_failures` | `ANXIN_LOGIN__MAX_FAILURES` | `100` | wrong passwords in a row on one account, from any address, that lock it (NIST SP 800-63B's ceiling); each further failure locks it again |
//! | `login.lock_minutes` | `ANXIN_LOGIN__LOCK_MINUTES` | `30` | how long a locked account stays locked (a manager can unlock it at once) |
//! | `login.pair_free_failures` | `ANXIN_LOGIN__PAIR_FREE_FAILURES` | `5` | wrong passwords for one account from one address before that address must wait 1 s, 2 s, 4 s, … between attempts on it |
//! | `login.address_free_failures` | `ANXIN_LOGIN__ADDRESS_FREE_FAILURES` | `20` | failed logins from one address (any usernames) before every attempt from it is delayed the same way |
//! | `login.max_delay_seconds` | `ANXIN_LOGIN__MAX_DELAY_SECONDS` | `900` | the longest of those delays |
//! | `login.hash_permits` | `ANXIN_LOGIN__HASH_PERMITS` | `0` (auto: max(1, min(cores, available memory / 64 MiB))) | password hashes computed at once (each Argon2id hash holds 19 MiB); process-wide |
//! | `login.hash_wait_ms` | `ANXIN_LOGIN__HASH_WAIT_MS` | `1000` | how long a login waits for a hashing slot before it is answered 429 with `Retry-After` |
//! | `sms.provider` | `ANXIN_SMS__PROVIDER` | `file` | `file` (one line per message in `sms.file_path`), `console`, `kannel` or `none` (no worker) |
//! | `sms.sender_name` | `ANXIN_SMS__SENDER_NAME` | `Anxin` | name put in the texts' `{sender}`; must name no drug, clinic or treatment |
//! | `sms.file_path` | `ANXIN_SMS__FILE_PATH` | `<data_dir>/sms-outbox.log` | where the file provider appends |
//! | `sms.dlr_base_url` | `ANXIN_SMS__DLR_BASE_URL` | `http://<listen address>` | base URL at which the gateway reaches Anxin's `/api/v1/sms/dlr` |
//! | `sms.dlr_key` | `ANXIN_SMS__DLR_KEY` | (a random key kept in the database) | key of the HMAC tokens in delivery-report URLs, 16+ characters; secret |
//! | `sms.dlr_key_file` | `ANXIN_SMS__DLR_KEY_FILE` | (none) | read `sms.dlr_key` from this file |
//! | `sms.batch_size` | `ANXIN_SMS__BATCH_SIZE` | `100` | messages claimed per worker round |
//! | `sms.concurrency` | `ANXIN_SMS__CONCURRENCY` | `16` | messages handed to the gateway at once |
//! | `sms.poll_interval_ms` | `ANXIN_SMS__POLL_INTERVAL_MS` | `500` | pause of an idle worker |
//! | `sms.lease_seconds` | `ANXIN_SMS__LEASE_SECONDS` | `30` | how long a claimed attempt belongs to its worker (must exceed `send_timeout_seconds`) |
//! | `sms.reconcile_seconds` | `ANXIN_SMS__RECONCILE_SECONDS` | `120` | how long an attempt of unknown outcome waits for a delivery report before it is sent again |
//! | `sms.send_timeout_seconds` | `ANXIN_SMS__SEND_TIMEOUT_SECONDS` | `10` | HTTP time-out towards the gateway |
//! | `sms.backoff_base_seconds` | `ANXIN_SMS__BACKOFF_BASE_SECONDS` | `5` | first retry delay; doubles each attempt |
//! | `sms.backoff_max_seconds` | `ANXIN_SMS__BACKOFF_MAX_SECONDS` | `600` | longest retry delay |
//! | `sms.max_attempts` | `ANXIN_SMS__MAX_ATTEMPTS` | `8` | attempts before a message fails |
//! | `sms.deliver_within_minutes` | `ANXIN_SMS__DELIVER_WITHIN_MINUTES` | `30` | a code not delivered this long after it was due shows on the home page ("call the client") |
//! | `sms.send_delay_ms` | `ANXIN_SMS__SEND_DELAY_MS` | `0` | pause before each send (tests, throttling) |
//! | `sms.kannel.url` | `ANXIN_SMS__KANNEL__URL` | `http://127.0.0.1:13013/cgi-bin/sendsms` | Kannel smsbox's sendsms URL |
//! | `sms.kannel.username` | `ANXIN_SMS__KANNEL__USERNAME` | `anxin` | Kannel `sendsms-user` |
//! | `sms.kannel.password` | `ANXIN_SMS__KANNEL__PASSWORD` | (none; required for `kannel`) | its password; secret |
//! | `sms.kannel.password_file` | `ANXIN_SMS__KANNEL__PASSWORD_FILE` | (none) | read `sms.kannel.password` from this file |
//! | `sms.kannel.from` | `ANXIN_SMS__KANNEL__FROM` | `10690` | sender number (Kannel refuses messages without one) |
//! | `sms.kannel.dlr_mask` | `ANXIN_SMS__KANNEL__DLR_MASK` | `31` | delivery reports asked for (must include 8, the SMS centre's ack, for crash recovery) |
//! | `sms.kannel.smsc` | `ANXIN_SMS__KANNEL__SMSC` | (none) | route through this Kannel `smsc-id` |
//! | `sms.templates.code_zh`, `code_en`, `test_zh`, `test_en` | `ANXIN_SMS__TEMPLATES__CODE_ZH`… | neutral texts (`docs/sms.md`) | replacement texts; `{code}` and `{sender}` are filled in; refused if they name a drug, clinic or treatment |
//! | `key_file` | `ANXIN_KEY_FILE` | `<data_dir>/anxin.key` | 256-bit data key (64 hex characters) that encrypts clients' identifying fields; created on first start if missing. Secret: back it up apart from the database |
//! | `clinic.ceiling_mg` | `ANXIN_CLINIC__CEILING_MG` | `150` | daily dose above which an order needs a written reason |
//! | `clinic.split_interval_hours` | `ANXIN_CLINIC__SPLIT_INTERVAL_HOURS` | `6` | a split dose's next portion is given no sooner than this many hours after the one before (a local choice; 0 turns the wait off) |
//! | `clinic.induction_first_dose_mg` | `ANXIN_CLINIC__INDUCTION_FIRST_DOSE_MG` | `30` | largest first portion on a client's first day (WHO 2009: not more than 30 mg; `docs/clinical-limits.md`); beyond it an order needs a reason and a second prescriber |
//! | `clinic.induction_first_day_mg` | `ANXIN_CLINIC__INDUCTION_FIRST_DAY_MG` | `40` | largest total on a client's first day |
//! | `clinic.titration_step_mg` | `ANXIN_CLINIC__TITRATION_STEP_MG` | `10` | largest rise of the daily dose at one time |
//! | `clinic.titration_step_days` | `ANXIN_CLINIC__TITRATION_STEP_DAYS` | `3` | fewest days between two rises |
//! | `clinic.review_after_missed` | `ANXIN_CLINIC__REVIEW_AFTER_MISSED` | `3` | consecutive missed days from which the dose waits for a prescriber's review (then half) |
//! | `clinic.capped_after_missed` | `ANXIN_CLINIC__CAPPED_AFTER_MISSED` | `4` | missed days from which the restart is the lower of `restart_cap_mg` and half |
//! | `clinic.reinduction_after_missed` | `ANXIN_CLINIC__REINDUCTION_AFTER_MISSED` | `5` | missed days from which only a new induction order restarts dosing |
//! | `clinic.restart_cap_mg` | `ANXIN_CLINIC__RESTART_CAP_MG` | `40` | cap of the restart dose after a long gap |
//! | `clinic.urine_random_rate` | `ANXIN_CLINIC__URINE_RANDOM_RATE` | `0.1` | chance that a client is drawn for a random urine test on a day |
//! | `clinic.concentration_mg_per_ml` | `ANXIN_CLINIC__CONCENTRATION_MG_PER_ML` | `1.0` | concentration of the centre's methadone oral solution |
//! | `indicators.suppression_threshold` | `ANXIN_INDICATORS__SUPPRESSION_THRESHOLD` | `5` | counts the CDC and the police receive are perturbed by their cell keys and hidden below this (`docs/disclosure.md`) |
//! | `indicators.dropout_days` | `ANXIN_INDICATORS__DROPOUT_DAYS` | `8` | the consecutive day without any dose that ends an episode of care as a drop-out (the 8th: the national protocol allows 7 missed days; 1 to 365; `docs/indicators.md`) |
//! | `boxes.station` | `ANXIN_BOXES__STATION` | (none: boxes cannot be loaded; `serve --demo` uses `sim:<data_dir>/box-bench`) | the box station's cable: `tcp:HOST:PORT` (a serial line bridged to TCP on this host, QEMU's UART, `anxin-box-sim serve`), a serial device such as `/dev/ttyUSB0` (115200 8N1), or `sim:DIR`, a bench of simulated boxes for demos and tests |
//! | `clinic.variance_threshold_ml` | `ANXIN_CLINIC__VARIANCE_THRESHOLD_ML` | `5.0` | stock close-out variance (mL) that needs a written reason |
//! | `gps.enabled` | `ANXIN_GPS__ENABLED` | `false` | accept box trackers (GT06, OsmAnd, MQTT) |
//! | `gps.gt06_listen` | `ANXIN_GPS__GT06_LISTEN` | `0.0.0.0:5023` | TCP address of the GT06 port (empty: off) |
//! | `gps.gt06_max_connections` | `ANXIN_GPS__GT06_MAX_CONNECTIONS` | `512` | open GT06 connections at most; more are closed at once (lowered at start to fit the open-file limit) |
//! | `gps.gt06_max_per_address` | `ANXIN_GPS__GT06_MAX_PER_ADDRESS` | `32` | open GT06 connections from one address at most (trackers behind a carrier's NAT share one) |
//! | `gps.gt06_login_seconds` | `ANXIN_GPS__GT06_LOGIN_SECONDS` | `20` | a GT06 connection that has not logged in by then is closed |
//! | `gps.gt06_heartbeat_minutes` | `ANXIN_GPS__GT06_HEARTBEAT_MINUTES` | `5` | the trackers' heartbeat interval: a logged-in connection silent for two of them and a minute is closed |
//! | `gps.osmand_listen` | `ANXIN_GPS__OSMAND_LISTEN` | `0.0.0.0:5055` | HTTP address of the OsmAnd port (empty: off) |
//! | `gps.osmand_max_connections` | `ANXIN_GPS__OSMAND_MAX_CONNECTIONS` | `64` | open OsmAnd connections at most (counted among the 256 file descriptors kept for staff HTTP); more are closed at once |
//! | `gps.osmand_max_per_address` | `ANXIN_GPS__OSMAND_MAX_PER_ADDRESS` | `16` | open OsmAnd connections from one address at most |
//! | `gps.mqtt_url` | `ANXIN_GPS__MQTT_URL` | (none: off) | broker, e.g. `mqtt://127.0.0.1:1883` |
//! | `gps.mqtt_topic_prefix` | `ANXIN_GPS__MQTT_TOPIC_PREFIX` | `anxin/boxes` | topics `<prefix>/<imei>/position` and `<prefix>/<imei>/status` |
//! | `gps.mqtt_client_id` | `ANXIN_GPS__MQTT_CLIENT_ID` | `anxin-server` | the server's MQTT client id |
//! | `gps.retention_days` | `ANXIN_GPS__RETENTION_DAYS` | `30` | raw positions older than this are deleted (alarms are kept) |
//! | `gps.away_after_fixes` | `ANXIN_GPS__AWAY_AFTER_FIXES` | `3` | consecutive fixes outside the home zone before a box is "away" |
//! | `gps.away_after_minutes` | `ANXIN_GPS__AWAY_AFTER_MINUTES` | `10` | …spanning at least this many minutes |
//! | `gps.unknown_after_minutes` | `ANXIN_GPS__UNKNOWN_AFTER_MINUTES` | `120` | no fix for this long: "unknown" and an offline alarm |
//! | `gps.low_battery_percent` | `ANXIN_GPS__LOW_BATTERY_PERCENT` | `20` | battery level that raises a low-battery alarm (GT06 reports sixths: level 1 of 6 = 17%) |
//! | `gps.max_future_seconds` | `ANXIN_GPS__MAX_FUTURE_SECONDS` | `600` | fixes dated further ahead than this are dropped |
//! | `gps.reports_per_minute` | `ANXIN_GPS__REPORTS_PER_MINUTE` | `60` | per-device rate limit (a burst of this many, refilled over a minute); the excess is dropped |
//!
//! Unknown keys in the file and unknown `ANXIN_*` variables are refused with their name
//! (variables starting `ANXIN_TEST_` belong to the test suite and are ignored).

use std::path::{Path, PathBuf};

use anxin_domain::auth::{LoginPolicy, SessionPolicy};
use chrono::{DateTime, FixedOffset, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The clinical rules in force (defined with the use cases that apply them).
pub use anxin_app::ClinicPolicy;

/// A configuration problem, naming the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Key { key: String, message: String },
}

fn key_err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.into(),
        message: message.into(),
    }
}

/// Session limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_minutes: u32,
    pub absolute_hours: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_minutes: 15,
            absolute_hours: 12,
        }
    }
}

/// Login throttling and lockout (see `anxin_domain::auth::LoginPolicy`) and the bound on
/// concurrent password hashing (see `crate::throttle`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub max_failures: u32,
    pub lock_minutes: u32,
    pub pair_free_failures: u32,
    pub address_free_failures: u32,
    pub max_delay_seconds: u32,
    /// 0: sized from the machine's cores and memory.
    pub hash_permits: u32,
    pub hash_wait_ms: u64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        let p = LoginPolicy::default();
        LoginConfig {
            max_failures: p.max_failures,
            lock_minutes: 30,
            pair_free_failures: p.pair_free_failures,
            address_free_failures: p.address_free_failures,
            max_delay_seconds: 900,
            hash_permits: 0,
            hash_wait_ms: 1000,
        }
    }
}

/// Clinical rules a deployment may tune.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClinicConfig {
    pub ceiling_mg: u32,
    pub review_after_missed: u32,
    pub capped_after_missed: u32,
    pub reinduction_after_missed: u32,
    pub restart_cap_mg: u32,
    pub split_interval_hours: u32,
    pub induction_first_dose_mg: u32,
    pub induction_first_day_mg: u32,
    pub titration_step_mg: u32,
    pub titration_step_days: u32,
    pub urine_random_rate: f64,
    pub concentration_mg_per_ml: f64,
    pub variance_threshold_ml: f64,
}

impl Default for ClinicConfig {
    fn default() -> Self {
        let missed = anxin_domain::clinic::missed::MissedDosePolicy::default();
        let stock = anxin_domain::clinic::stock::StockPolicy::default();
        let limits = anxin_domain::clinic::induction::InductionLimits::default();
        ClinicConfig {
            induction_first_dose_mg: limits.first_dose_max_mg,
            induction_first_day_mg: limits.first_day_max_mg,
            titration_step_mg: limits.step_max_mg,
            titration_step_days: limits.step_min_days,
            ceiling_mg: anxin_domain::clinic::orders::OrderPolicy::default().ceiling_mg,
            split_interval_hours: anxin_domain::clinic::orders::OrderPolicy::default()
                .split_interval_hours,
            review_after_missed: missed.review_from,
            capped_after_missed: missed.capped_restart_from,
            reinduction_after_missed: missed.reinduction_from,
            restart_cap_mg: missed.restart_cap_mg,
            urine_random_rate: 0.1,
            concentration_mg_per_ml: stock.concentration_mg_per_ml,
            variance_threshold_ml: stock.variance_threshold_ml,
        }
    }
}

/// Settings of the figures that leave the centre.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndicatorsConfig {
    pub suppression_threshold: u64,
    /// Days without a dose after which an episode of care ends as a drop-out.
    pub dropout_days: u32,
}

impl Default for IndicatorsConfig {
    fn default() -> Self {
        IndicatorsConfig {
            suppression_threshold: 5,
            dropout_days: anxin_domain::clinic::episodes::DEFAULT_DROPOUT_DAYS,
        }
    }
}

/// The `[gps]` section: box trackers. See the module documentation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpsConfig {
    pub enabled: bool,
    pub gt06_listen: String,
    pub gt06_max_connections: u32,
    pub gt06_max_per_address: u32,
    pub gt06_login_seconds: u32,
    pub gt06_heartbeat_minutes: u32,
    pub osmand_listen: String,
    pub osmand_max_connections: u32,
    pub osmand_max_per_address: u32,
    pub mqtt_url: Option<String>,
    pub mqtt_topic_prefix: String,
    pub mqtt_client_id: String,
    pub retention_days: u32,
    pub away_after_fixes: u32,
    pub away_after_minutes: u32,
    pub unknown_after_minutes: u32,
    pub low_battery_percent: u8,
    pub max_future_seconds: u32,
    pub reports_per_minute: u32,
}

impl GpsConfig {
    /// The GT06 port's limits.
    /// The OsmAnd port's caps (its connections are counted among the 256 file descriptors
    /// kept for staff HTTP; HTTP has no login or heartbeat of its own, so only the caps apply).
    pub fn osmand_limits(&self) -> crate::gps::listen::PortLimits {
        crate::gps::listen::PortLimits {
            max_connections: self.osmand_max_connections as usize,
            max_per_address: self.osmand_max_per_address as usize,
            ..self.gt06_limits()
        }
    }

    pub fn gt06_limits(&self) -> crate::gps::listen::PortLimits {
        crate::gps::listen::PortLimits {
            max_connections: self.gt06_max_connections as usize,
            max_per_address: self.gt06_max_per_address as usize,
            login_deadline: std::time::Duration::from_secs(u64::from(self.gt06_login_seconds)),
            idle: std::time::Duration::from_secs(
                u64::from(self.gt06_heartbeat_minutes) * 2 * 60 + 60,
            ),
        }
    }

    /// The rules the ingest pipeline applies.
    pub fn rules(&self) -> anxin_app::gps::GpsRules {
        anxin_app::gps::GpsRules {
            retention_days: self.retention_days,
            away_after_fixes: self.away_after_fixes,
            away_after_minutes: self.away_after_minutes,
            unknown_after_minutes: self.unknown_after_minutes,
            low_battery_percent: self.low_battery_percent,
            max_future_seconds: self.max_future_seconds,
            reports_per_minute: self.reports_per_minute,
        }
    }
}

impl Default for GpsConfig {
    fn default() -> Self {
        let rules = anxin_app::gps::GpsRules::default();
        GpsConfig {
            enabled: false,
            gt06_listen: "0.0.0.0:5023".into(),
            gt06_max_connections: 512,
            gt06_max_per_address: 32,
            gt06_login_seconds: 20,
            gt06_heartbeat_minutes: 5,
            osmand_listen: "0.0.0.0:5055".into(),
            osmand_max_connections: 64,
            osmand_max_per_address: 16,
            mqtt_url: None,
            mqtt_topic_prefix: "anxin/boxes".into(),
            mqtt_client_id: "anxin-server".into(),
            retention_days: rules.retention_days,
            away_after_fixes: rules.away_after_fixes,
            away_after_minutes: rules.away_after_minutes,
            unknown_after_minutes: rules.unknown_after_minutes,
            low_battery_percent: rules.low_battery_percent,
            max_future_seconds: rules.max_future_seconds,
            reports_per_minute: rules.reports_per_minute,
        }
    }
}

/// The whole configuration. See the module documentation for every key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<SecretString>,
    pub database_url_file: Option<PathBuf>,
    pub behind_tls: bool,
    pub utc_offset: String,
    pub clock_start: Option<String>,
    pub demo_seed: u64,
    pub session: SessionConfig,
    pub login: LoginConfig,
    /// `[sms]`: the outbox worker, the gateway, the texts.
    #[serde(default)]
    pub sms: anxin_sms::SmsConfig,
    pub key_file: Option<PathBuf>,
    pub clinic: ClinicConfig,
    pub indicators: IndicatorsConfig,
    pub gps: GpsConfig,
    /// `[boxes]`: the box station.
    pub boxes: BoxesConfig,
}

/// The `[boxes]` section: where the box station's cable is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoxesConfig {
    /// `tcp:HOST:PORT`, a serial device path, or `sim:DIR` (see the module documentation).
    pub station: Option<String>,
}

impl Config {
    /// Where signed checkpoints of the audit chain are kept: `<data_dir>/audit-checkpoints`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.data_dir.join("audit-checkpoints")
    }

    /// The box station's line, if one is set.
    pub fn box_station(&self) -> Result<Option<anxin_app::station::Line>, ConfigError> {
        self.boxes
            .station
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| anxin_app::station::Line::parse(s).map_err(|m| key_err("boxes.station", m)))
            .transpose()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./anxin-data"),
            database_url: None,
            database_url_file: None,
            behind_tls: false,
            utc_offset: "+08:00".into(),
            clock_start: None,
            demo_seed: 20261122,
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            sms: anxin_sms::SmsConfig::default(),
            key_file: None,
            clinic: ClinicConfig::default(),
            indicators: IndicatorsConfig::default(),
            gps: GpsConfig::default(),
            boxes: BoxesConfig::default(),
        }
    }
}

/// Turns `ANXIN_SESSION__IDLE_MINUTES` into the path `["session", "idle_minutes"]`.
fn env_key_path(var: &str) -> Option<Vec<String>> {
    let rest = var.strip_prefix("ANXIN_")?;
    if rest.starts_with("TEST_") || rest == "LOG" {
        return None;
    }
    Some(rest.split("__").map(|p| p.to_ascii_lowercase()).collect())
}

/// Parses an environment value as a TOML scalar (number, boolean) or else keeps it as a string.
fn env_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(t) => match t.get("v") {
            Some(
                v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_)),
            ) => v.clone(),
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

impl Config {
    /// Reads `file` (if given) and overlays the `ANXIN_*` variables of `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: e.message().to_owned(),
                })?
            }
            None => toml::Table::new(),
        };
        for (var, raw) in env {
            let Some(path) = env_key_path(&var) else {
                continue;
            };
            let mut t = &mut table;
            for part in &path[..path.len() - 1] {
                let entry = t
                    .entry(part.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                t = entry
                    .as_table_mut()
                    .ok_or_else(|| key_err(&var, format!("`{part}` is not a section")))?;
            }
            if let Some(last) = path.last() {
                t.insert(last.clone(), env_value(&raw));
            }
        }
        let de = toml::Value::Table(table);
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner().to_string();
            let message = inner.lines().next().unwrap_or_default().to_owned();
            if key == "." {
                key_err("config", message)
            } else {
                key_err(&key, message)
            }
        })?;
        if let Some(path) = config.database_url_file.clone() {
            if config.database_url.is_some() {
                return Err(key_err(
                    "database_url_file",
                    "set either database_url or database_url_file, not both",
                ));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| {
                key_err(
                    "database_url_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            config.database_url = Some(SecretString::from(text.trim().to_owned()));
        }
        config
            .sms
            .resolve()
            .map_err(|e| key_err(&format!("sms.{}", e.key), e.message))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(key_err(
                "listen",
                format!("`{}` is not an address like 127.0.0.1:8080", self.listen),
            ));
        }
        self.offset()?;
        self.clock_start()?;
        self.box_station()?;
        if let Some(url) = &self.database_url {
            let u = url.expose_secret();
            if !(u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.starts_with("sqlite:"))
            {
                return Err(key_err(
                    "database_url",
                    "must start with postgres:// (or sqlite:); leave it unset for the embedded database",
                ));
            }
        }
        if self.session.idle_minutes == 0 || self.session.absolute_hours == 0 {
            return Err(key_err("session", "timeouts must be at least 1"));
        }
        let c = &self.clinic;
        if !(c.review_after_missed <= c.capped_after_missed
            && c.capped_after_missed <= c.reinduction_after_missed
            && c.review_after_missed >= 1)
        {
            return Err(key_err(
                "clinic",
                "missed-dose thresholds must satisfy 1 <= review_after_missed <= capped_after_missed <= reinduction_after_missed",
            ));
        }
        if !(0.0..=1.0).contains(&c.urine_random_rate) {
            return Err(key_err(
                "clinic.urine_random_rate",
                "must be between 0 and 1",
            ));
        }
        let positive = c.concentration_mg_per_ml > 0.0 && c.concentration_mg_per_ml.is_finite();
        if !positive || c.variance_threshold_ml.is_nan() || c.variance_threshold_ml < 0.0 {
            return Err(key_err(
                "clinic",
                "concentration_mg_per_ml must be positive and variance_threshold_ml not negative",
            ));
        }
        if self.indicators.suppression_threshold < 2 {
            return Err(key_err(
                "indicators.suppression_threshold",
                "must be at least 2: a count of 1 identifies a person",
            ));
        }
        if !(1..=365).contains(&self.indicators.dropout_days) {
            return Err(key_err(
                "indicators.dropout_days",
                "must be from 1 to 365 days (the report reads a year of doses before the period)",
            ));
        }
        let g = &self.gps;
        if g.retention_days == 0 || g.away_after_fixes == 0 || g.reports_per_minute == 0 {
            return Err(key_err(
                "gps",
                "retention_days, away_after_fixes and reports_per_minute must be at least 1",
            ));
        }
        if g.gt06_max_connections == 0
            || g.gt06_max_per_address == 0
            || g.osmand_max_connections == 0
            || g.osmand_max_per_address == 0
            || g.gt06_login_seconds == 0
            || g.gt06_heartbeat_minutes == 0
        {
            return Err(key_err(
                "gps",
                "gt06_max_connections, gt06_max_per_address, gt06_login_seconds, gt06_heartbeat_minutes, osmand_max_connections and osmand_max_per_address must be at least 1",
            ));
        }
        if g.unknown_after_minutes <= g.away_after_minutes || g.low_battery_percent > 100 {
            return Err(key_err(
                "gps",
                "unknown_after_minutes must exceed away_after_minutes, and low_battery_percent be 0–100",
            ));
        }
        if self.login.max_failures == 0 {
            return Err(key_err("login.max_failures", "must be at least 1"));
        }
        if self.login.max_delay_seconds == 0 {
            return Err(key_err("login.max_delay_seconds", "must be at least 1"));
        }
        Ok(())
    }

    /// The centre's UTC offset.
    pub fn offset(&self) -> Result<FixedOffset, ConfigError> {
        self.utc_offset.parse::<FixedOffset>().map_err(|_| {
            key_err(
                "utc_offset",
                format!("`{}` is not an offset like +08:00", self.utc_offset),
            )
        })
    }

    /// The configured clock start, if any.
    pub fn clock_start(&self) -> Result<Option<DateTime<Utc>>, ConfigError> {
        self.clock_start
            .as_deref()
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        key_err(
                            "clock_start",
                            format!(
                                "`{s}` is not an RFC 3339 instant like 2026-11-22T08:00:00+08:00"
                            ),
                        )
                    })
            })
            .transpose()
    }

    /// The session policy these settings describe.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle: chrono::Duration::minutes(i64::from(self.session.idle_minutes)),
            absolute: chrono::Duration::hours(i64::from(self.session.absolute_hours)),
        }
    }

    /// Where the data key lives.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("anxin.key"))
    }

    /// The clinical policies these settings describe.
    pub fn clinic_policy(&self) -> ClinicPolicy {
        let c = &self.clinic;
        ClinicPolicy {
            orders: anxin_domain::clinic::orders::OrderPolicy {
                ceiling_mg: c.ceiling_mg,
                split_interval_hours: c.split_interval_hours,
                induction: anxin_domain::clinic::induction::InductionLimits {
                    first_dose_max_mg: c.induction_first_dose_mg,
                    first_day_max_mg: c.induction_first_day_mg,
                    step_max_mg: c.titration_step_mg,
                    step_min_days: c.titration_step_days,
                },
            },
            missed: anxin_domain::clinic::missed::MissedDosePolicy {
                review_from: c.review_after_missed,
                capped_restart_from: c.capped_after_missed,
                reinduction_from: c.reinduction_after_missed,
                restart_cap_mg: c.restart_cap_mg,
            },
            urine_random_rate: c.urine_random_rate,
            stock: anxin_domain::clinic::stock::StockPolicy {
                concentration_mg_per_ml: c.concentration_mg_per_ml,
                variance_threshold_ml: c.variance_threshold_ml,
            },
        }
    }

    /// The login throttling policy these settings describe.
    pub fn login_policy(&self) -> LoginPolicy {
        LoginPolicy {
            max_failures: self.login.max_failures,
            lock_for: chrono::Duration::minutes(i64::from(self.login.lock_minutes)),
            pair_free_failures: self.login.pair_free_failures,
            address_free_failures: self.login.address_free_failures,
            max_delay: chrono::Duration::seconds(i64::from(self.login.max_delay_seconds)),
            ..LoginPolicy::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_file_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("anxin.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\n[session]\nidle_minuts = 5\n",
        )
        .unwrap();
        let err = Config::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(
            err.starts_with("session.idle_minuts: unknown field `idle_minuts`"),
            "{err}"
        );
    }

    #[test]
    fn env_overrides_file_and_unknown_env_is_named() {
        let c = Config::load(
            None,
            env(&[
                ("ANXIN_LISTEN", "0.0.0.0:80"),
                ("ANXIN_SESSION__IDLE_MINUTES", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:80");
        assert_eq!(c.session.idle_minutes, 5);
        let err = Config::load(None, env(&[("ANXIN_DATABSE_URL", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("databse_url: unknown field"), "{err}");
        // Variables of the test suite are not configuration.
        assert!(Config::load(None, env(&[("ANXIN_TEST_POSTGRES_URL", "x")])).is_ok());
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("db");
        std::fs::write(&f, "postgres://anxin:hunter2-secret@db/anxin\n").unwrap();
        let c = Config::load(
            None,
            env(&[("ANXIN_DATABASE_URL_FILE", f.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(
            c.database_url.as_ref().unwrap().expose_secret(),
            "postgres://anxin:hunter2-secret@db/anxin"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::load(None, env(&[("ANXIN_LISTEN", "localhost")])).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("listen: `localhost` is not an address"));
        let err = Config::load(None, env(&[("ANXIN_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("database_url: must start with postgres://"));
        let err = Config::load(None, env(&[("ANXIN_SESSION__IDLE_MINUTES", "soon")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("session.idle_minutes: invalid type"),
            "{err}"
        );
    }
}
