//! The one interface every SMS provider implements, and the providers that need no network:
//! a file provider (one line per message appended to a file, for `serve --demo` and development)
//! and a console provider (the same line on standard output).
//!
//! A new provider (direct SMPP, an operator's HTTP API) plugs in by implementing [`Provider`]
//! and adding a `provider = "…"` name in [`crate::config`]; the outbox and the worker do not
//! change. A provider must tell apart "certainly not taken" ([`Delivery::Refused`], retried with
//! backoff) from "perhaps taken" ([`Delivery::Unknown`], resent only after the reconcile time
//! without a delivery report): answering `Refused` for a message that may have reached the
//! gateway would break the no-duplicate guarantee.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use tokio::io::AsyncWriteExt;

/// A message handed to a provider.
#[derive(Clone)]
pub struct Outgoing {
    pub id: i64,
    pub attempt: i64,
    /// E.164, with the `+`.
    pub to: String,
    pub text: String,
    /// Where the gateway should send delivery reports for this attempt.
    pub dlr_url: String,
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .field("to", &anxin_domain::phone::mask(&self.to))
            .finish_non_exhaustive()
    }
}

/// What a provider says about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The gateway took it. `delivered` when the provider is the end of the line (a file).
    Accepted {
        gateway_id: Option<String>,
        delivered: bool,
    },
    /// Certainly not taken (connection refused, an explicit refusal). `permanent` when trying
    /// again cannot help (the number is invalid for this gateway).
    Refused { error: String, permanent: bool },
    /// Perhaps taken: the request left but no clear answer came back (time-out, cut connection).
    Unknown { error: String },
}

/// A boxed future, so that providers can live behind `Arc<dyn Provider>`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Delivery> + Send + 'a>>;

/// Hands messages to a gateway.
pub trait Provider: Send + Sync {
    /// A short name for logs and pages (`kannel`, `file`, `console`).
    fn name(&self) -> &'static str;
    /// Sends one message.
    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a>;
}

fn line(msg: &Outgoing) -> String {
    format!(
        "{}\tid={}\tattempt={}\tto={}\t{}\n",
        msg.now.to_rfc3339(),
        msg.id,
        msg.attempt,
        msg.to,
        msg.text.replace(['\n', '\r', '\t'], " ")
    )
}

/// Appends one line per message to a file (created if missing); every message counts as
/// delivered. The default for `serve --demo`: `<data_dir>/sms-outbox.log`.
pub struct FileProvider {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileProvider {
    pub fn new(path: PathBuf) -> FileProvider {
        FileProvider {
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

impl Provider for FileProvider {
    fn name(&self) -> &'static str {
        "file"
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let _one_writer = self.lock.lock().await;
            let result = async {
                let mut f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .await?;
                f.write_all(line(msg).as_bytes()).await?;
                f.flush().await
            }
            .await;
            match result {
                Ok(()) => Delivery::Accepted {
                    gateway_id: Some(format!("file-{}-{}", msg.id, msg.attempt)),
                    delivered: true,
                },
                // A write that failed may have written part of a line; it is a demo sink, and
                // retrying is the useful answer.
                Err(e) => Delivery::Refused {
                    error: format!("cannot append to {}: {e}", self.path.display()),
                    permanent: false,
                },
            }
        })
    }
}

/// Prints one line per message on standard output; every message counts as delivered.
pub struct ConsoleProvider;

impl Provider for ConsoleProvider {
    fn name(&self) -> &'static str {
        "console"
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            print!("SMS {}", line(msg));
            Delivery::Accepted {
                gateway_id: Some(format!("console-{}-{}", msg.id, msg.attempt)),
                delivered: true,
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_provider_appends_one_line_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.log");
        let p = FileProvider::new(path.clone());
        for id in 1..=3 {
            let d = p
                .send(&Outgoing {
                    id,
                    attempt: 1,
                    to: "+8613812345678".into(),
                    text: "Your code\nfor today: 1".into(),
                    dlr_url: String::new(),
                    now: Utc::now(),
                })
                .await;
            assert!(matches!(
                d,
                Delivery::Accepted {
                    delivered: true,
                    ..
                }
            ));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("id=2\tattempt=1\tto=+8613812345678\tYour code for today: 1"));
    }
}
