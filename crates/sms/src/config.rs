//! The `[sms]` section of the configuration, and the run-time settings built from it.
//!
//! Every key is listed in the module documentation of `anxin_server::config` and in
//! `docs/configuration.md`. Secrets (`kannel.password`, `dlr_key`) are [`SecretString`]s, can be
//! read from `*_file` keys, and never print.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anxin_domain::sms::{Backoff, Templates, TextKind, TextLang};
use anxin_storage::Store;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::dlr::DlrSigner;
use crate::kannel::{KannelProvider, KannelSettings};
use crate::provider::{ConsoleProvider, FileProvider, Provider};

/// A problem with the `[sms]` section, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("sms.{key}: {message}")]
pub struct SmsConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> SmsConfigError {
    SmsConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// Which provider hands messages on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Append one line per message to `file_path` (default `<data_dir>/sms-outbox.log`).
    #[default]
    File,
    /// Print one line per message on standard output.
    Console,
    /// Kannel's smsbox over HTTP (`[sms.kannel]`).
    Kannel,
    /// No worker: messages stay queued (e.g. on a read-only replica).
    None,
}

/// `[sms.kannel]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KannelConfig {
    pub url: String,
    pub username: String,
    pub password: Option<SecretString>,
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub dlr_mask: u32,
    pub smsc: Option<String>,
}

impl Default for KannelConfig {
    fn default() -> Self {
        KannelConfig {
            url: "http://127.0.0.1:13013/cgi-bin/sendsms".into(),
            username: "anxin".into(),
            password: None,
            password_file: None,
            from: "10690".into(),
            dlr_mask: 31,
            smsc: None,
        }
    }
}

/// `[sms.templates]`: replacements for the default texts (checked against the forbidden words).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    pub code_zh: Option<String>,
    pub code_en: Option<String>,
    pub test_zh: Option<String>,
    pub test_en: Option<String>,
}

/// `[sms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub provider: ProviderKind,
    pub sender_name: String,
    pub file_path: Option<PathBuf>,
    pub dlr_base_url: Option<String>,
    pub dlr_key: Option<SecretString>,
    pub dlr_key_file: Option<PathBuf>,
    pub batch_size: u32,
    pub concurrency: u32,
    pub poll_interval_ms: u64,
    pub lease_seconds: u64,
    pub reconcile_seconds: u64,
    pub send_timeout_seconds: u64,
    pub backoff_base_seconds: u64,
    pub backoff_max_seconds: u64,
    pub max_attempts: u32,
    pub deliver_within_minutes: u32,
    pub send_delay_ms: u64,
    pub kannel: KannelConfig,
    pub templates: TemplatesConfig,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            provider: ProviderKind::File,
            sender_name: "Anxin".into(),
            file_path: None,
            dlr_base_url: None,
            dlr_key: None,
            dlr_key_file: None,
            batch_size: 100,
            concurrency: 16,
            poll_interval_ms: 500,
            lease_seconds: 30,
            reconcile_seconds: 120,
            send_timeout_seconds: 10,
            backoff_base_seconds: 5,
            backoff_max_seconds: 600,
            max_attempts: 8,
            deliver_within_minutes: 30,
            send_delay_ms: 0,
            kannel: KannelConfig::default(),
            templates: TemplatesConfig::default(),
        }
    }
}

fn read_secret(key: &str, path: &Path) -> Result<SecretString, SmsConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

impl SmsConfig {
    /// Reads the `*_file` secrets and checks every value. Called once after loading.
    pub fn resolve(&mut self) -> Result<(), SmsConfigError> {
        if let Some(path) = self.dlr_key_file.clone() {
            if self.dlr_key.is_some() {
                return Err(err(
                    "dlr_key_file",
                    "set either dlr_key or dlr_key_file, not both",
                ));
            }
            self.dlr_key = Some(read_secret("dlr_key_file", &path)?);
        }
        if let Some(path) = self.kannel.password_file.clone() {
            if self.kannel.password.is_some() {
                return Err(err(
                    "kannel.password_file",
                    "set either kannel.password or kannel.password_file, not both",
                ));
            }
            self.kannel.password = Some(read_secret("kannel.password_file", &path)?);
        }
        if let Some(k) = &self.dlr_key {
            if k.expose_secret().len() < 16 {
                return Err(err("dlr_key", "must be at least 16 characters"));
            }
        }
        if let Some(base) = &self.dlr_base_url {
            let ok = url::Url::parse(base)
                .map(|u| matches!(u.scheme(), "http" | "https"))
                .unwrap_or(false);
            if !ok {
                return Err(err(
                    "dlr_base_url",
                    format!("`{base}` is not a URL like http://10.0.0.5:8080"),
                ));
            }
        }
        if self.provider == ProviderKind::Kannel {
            if url::Url::parse(&self.kannel.url).is_err() {
                return Err(err(
                    "kannel.url",
                    format!(
                        "`{}` is not a URL like http://127.0.0.1:13013/cgi-bin/sendsms",
                        self.kannel.url
                    ),
                ));
            }
            if self.kannel.password.is_none() {
                return Err(err(
                    "kannel.password",
                    "the Kannel provider needs kannel.password or kannel.password_file",
                ));
            }
            if self.kannel.from.trim().is_empty() {
                return Err(err(
                    "kannel.from",
                    "Kannel refuses messages without a sender",
                ));
            }
        }
        for (key, v) in [
            ("batch_size", u64::from(self.batch_size)),
            ("concurrency", u64::from(self.concurrency)),
            ("poll_interval_ms", self.poll_interval_ms),
            ("lease_seconds", self.lease_seconds),
            ("reconcile_seconds", self.reconcile_seconds),
            ("send_timeout_seconds", self.send_timeout_seconds),
            ("backoff_base_seconds", self.backoff_base_seconds),
            ("max_attempts", u64::from(self.max_attempts)),
            (
                "deliver_within_minutes",
                u64::from(self.deliver_within_minutes),
            ),
        ] {
            if v == 0 {
                return Err(err(key, "must be at least 1"));
            }
        }
        if self.lease_seconds <= self.send_timeout_seconds {
            return Err(err(
                "lease_seconds",
                "must be longer than send_timeout_seconds, or a slow send would look abandoned",
            ));
        }
        self.templates()
            .check("sms", &self.sender_name)
            .map_err(|e| match e {
                anxin_domain::DomainError::Invalid { field, message } => SmsConfigError {
                    key: field.trim_start_matches("sms.").to_owned(),
                    message,
                },
                other => err("templates", other.to_string()),
            })?;
        Ok(())
    }

    /// The message texts: defaults with the configured replacements.
    pub fn templates(&self) -> Templates {
        let d = Templates::default();
        let t = &self.templates;
        Templates {
            code_zh: t.code_zh.clone().unwrap_or(d.code_zh),
            code_en: t.code_en.clone().unwrap_or(d.code_en),
            test_zh: t.test_zh.clone().unwrap_or(d.test_zh),
            test_en: t.test_en.clone().unwrap_or(d.test_en),
        }
    }

    /// The retry schedule.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            base: chrono::Duration::seconds(self.backoff_base_seconds as i64),
            max: chrono::Duration::seconds(
                self.backoff_max_seconds.max(self.backoff_base_seconds) as i64
            ),
            max_attempts: self.max_attempts,
        }
    }
}

/// The `[sms]` settings at run time: the configuration plus the delivery-report key, fetched
/// (or created) once from the database when the configuration names none. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SmsSettings {
    pub config: SmsConfig,
    /// Where the file provider writes when `file_path` is not set.
    pub data_dir: PathBuf,
    signer: Arc<OnceCell<DlrSigner>>,
}

impl SmsSettings {
    pub fn new(config: SmsConfig, data_dir: PathBuf) -> SmsSettings {
        SmsSettings {
            config,
            data_dir,
            signer: Arc::new(OnceCell::new()),
        }
    }

    /// The delivery-report signer: the configured key, else the deployment's key in the database.
    pub async fn signer(&self, store: &Store) -> Result<&DlrSigner, anxin_storage::StoreError> {
        self.signer
            .get_or_try_init(|| async {
                if let Some(k) = &self.config.dlr_key {
                    return Ok(DlrSigner::new(k.expose_secret().as_bytes()));
                }
                let mut fresh = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut fresh);
                let key = store.sms_dlr_key(&hex::encode(fresh)).await?;
                Ok(DlrSigner::new(key.as_bytes()))
            })
            .await
    }

    /// Renders a text with the configured templates and sender name.
    pub fn render(&self, kind: TextKind, lang: TextLang, code: &str) -> String {
        self.config
            .templates()
            .render(kind, lang, &self.config.sender_name, code)
    }

    /// The file the file provider writes.
    pub fn file_path(&self) -> PathBuf {
        self.config
            .file_path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sms-outbox.log"))
    }

    /// The configured provider, or `None` for `provider = "none"`.
    pub fn provider(&self) -> Result<Option<Arc<dyn Provider>>, SmsConfigError> {
        let c = &self.config;
        Ok(match c.provider {
            ProviderKind::None => None,
            ProviderKind::File => Some(Arc::new(FileProvider::new(self.file_path()))),
            ProviderKind::Console => Some(Arc::new(ConsoleProvider)),
            ProviderKind::Kannel => {
                let password =
                    c.kannel.password.clone().ok_or_else(|| {
                        err("kannel.password", "required for the Kannel provider")
                    })?;
                let p = KannelProvider::new(KannelSettings {
                    url: c.kannel.url.clone(),
                    username: c.kannel.username.clone(),
                    password,
                    from: c.kannel.from.clone(),
                    dlr_mask: c.kannel.dlr_mask,
                    smsc: c.kannel.smsc.clone(),
                    timeout: Duration::from_secs(c.send_timeout_seconds),
                })
                .map_err(|e| err("kannel", format!("cannot build the HTTP client: {e}")))?;
                Some(Arc::new(p))
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kannel_needs_a_password_and_secrets_never_print() {
        let mut c = SmsConfig {
            provider: ProviderKind::Kannel,
            ..SmsConfig::default()
        };
        assert!(c
            .resolve()
            .unwrap_err()
            .to_string()
            .starts_with("sms.kannel.password:"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "hunter2-kannel\n").unwrap();
        c.kannel.password_file = Some(f);
        c.dlr_key = Some(SecretString::from("a-dlr-key-of-some-length".to_owned()));
        c.resolve().unwrap();
        assert_eq!(
            c.kannel.password.as_ref().unwrap().expose_secret(),
            "hunter2-kannel"
        );
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("a-dlr-key"),
            "{dbg}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = SmsConfig {
            sender_name: "Methadone Clinic".into(),
            ..SmsConfig::default()
        };
        assert!(c
            .resolve()
            .unwrap_err()
            .to_string()
            .starts_with("sms.sender_name:"));
        let mut c = SmsConfig::default();
        c.templates.code_en = Some("Your dose code {code}".into());
        let e = c.resolve().unwrap_err().to_string();
        assert!(e.starts_with("sms.templates.code_en: must not name"), "{e}");
        let mut c = SmsConfig {
            batch_size: 0,
            ..SmsConfig::default()
        };
        assert!(c
            .resolve()
            .unwrap_err()
            .to_string()
            .starts_with("sms.batch_size:"));
        let mut c = SmsConfig {
            dlr_base_url: Some("localhost".into()),
            ..SmsConfig::default()
        };
        assert!(c
            .resolve()
            .unwrap_err()
            .to_string()
            .starts_with("sms.dlr_base_url:"));
        let mut c = SmsConfig {
            dlr_key: Some(SecretString::from("short".to_owned())),
            ..SmsConfig::default()
        };
        assert!(c
            .resolve()
            .unwrap_err()
            .to_string()
            .starts_with("sms.dlr_key:"));
        assert!(SmsConfig::default().resolve().is_ok());
    }
}
