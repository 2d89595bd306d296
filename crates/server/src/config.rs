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
//! | `login.max_failures` | `ANXIN_LOGIN__MAX_FAILURES` | `10` | wrong passwords in a row that lock an account |
//! | `login.lock_minutes` | `ANXIN_LOGIN__LOCK_MINUTES` | `30` | how long a locked account stays locked |
//!
//! Unknown keys in the file and unknown `ANXIN_*` variables are refused with their name
//! (variables starting `ANXIN_TEST_` belong to the test suite and are ignored).

use std::path::{Path, PathBuf};

use anxin_domain::auth::{LoginPolicy, SessionPolicy};
use chrono::{DateTime, FixedOffset, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

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

/// Login lockout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub max_failures: u32,
    pub lock_minutes: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_failures: 10,
            lock_minutes: 30,
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
        if self.login.max_failures == 0 {
            return Err(key_err("login.max_failures", "must be at least 1"));
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

    /// The lockout policy these settings describe.
    pub fn login_policy(&self) -> LoginPolicy {
        LoginPolicy {
            max_failures: self.login.max_failures,
            lock_for: chrono::Duration::minutes(i64::from(self.login.lock_minutes)),
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
