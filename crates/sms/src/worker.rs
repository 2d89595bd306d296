//! The outbox worker: claim due messages, hand them to the provider, record what happened.
//!
//! # The guarantee: exactly one code per compartment, across crashes
//!
//! Each round the worker first tidies up ([`Store::recover_sms`]), then claims a batch with one
//! atomic statement ([`Store::claim_sms`]): every claimed row is `sending`, its attempt number
//! raised, owned by this worker with a lease, and **committed before the gateway is called**.
//! Each attempt carries its own signed `dlr-url` naming the outbox id and attempt.
//!
//! - Killed before the commit of the claim: nothing happened; the rows are still `queued`.
//! - Killed after the claim, before or after the gateway accepted: the row stays `sending` until
//!   its lease ends, then becomes `uncertain`. It is **not** resent at once. If the gateway had
//!   accepted it, the delivery report (Kannel `dlr-mask` with 8, the SMS centre's submit ack,
//!   comes within about a second) arrives at the `dlr-url`, and any report moves the row to
//!   `sent` or further: it is never sent again. Only when `reconcile_seconds` pass without any
//!   report is it queued again as a new attempt: then the gateway never had it.
//! - Killed after recording: the row is `sent`/`delivered`/`queued` for a retry; nothing to do.
//!
//! So a message reaches the gateway at most once **provided the gateway's report for an
//! accepted message reaches Anxin within `reconcile_seconds`** (Kannel retries failed
//! `dlr-url` requests when smsbox sets `http-request-retry`; the restart must come back within
//! that window), and at least once while attempts remain and it has not expired. A provider's
//! time-out is treated like a crash (`uncertain`), never like a refusal.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anxin_domain::sms::Backoff;
use anxin_storage::outbox::{AttemptResult, OutboxMessage, SendOutcome};
use anxin_storage::vault::Vault;
use anxin_storage::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

use crate::config::SmsConfig;
use crate::dlr::DlrSigner;
use crate::provider::{Delivery, Outgoing, Provider};

/// Where the worker reads the time (the server passes its one clock).
pub type ClockFn = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub accepted: usize,
    pub refused: usize,
    pub unknown: usize,
}

/// The worker's knobs, from `[sms]`.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub batch_size: i64,
    pub concurrency: usize,
    pub poll_interval: StdDuration,
    pub lease: Duration,
    pub reconcile: Duration,
    pub backoff: Backoff,
    pub send_delay: StdDuration,
}

impl WorkerSettings {
    /// The knobs of a configuration.
    pub fn from_config(c: &SmsConfig) -> WorkerSettings {
        WorkerSettings {
            batch_size: i64::from(c.batch_size),
            concurrency: c.concurrency.max(1) as usize,
            poll_interval: StdDuration::from_millis(c.poll_interval_ms),
            lease: Duration::seconds(c.lease_seconds as i64),
            reconcile: Duration::seconds(c.reconcile_seconds as i64),
            backoff: c.backoff(),
            send_delay: StdDuration::from_millis(c.send_delay_ms),
        }
    }
}

/// One worker. Several may run against one database (on one or many servers): claims never
/// overlap.
pub struct Worker {
    store: Store,
    provider: Arc<dyn Provider>,
    signer: DlrSigner,
    dlr_base: String,
    owner: String,
    clock: ClockFn,
    settings: WorkerSettings,
    vault: Option<Vault>,
}

impl Worker {
    /// A worker with a fresh owner name (`<pid>-<random>`), so that a restarted process never
    /// takes over its predecessor's claims except through lease expiry.
    pub fn new(
        store: Store,
        provider: Arc<dyn Provider>,
        signer: DlrSigner,
        dlr_base: String,
        settings: WorkerSettings,
        clock: ClockFn,
    ) -> Worker {
        let mut r = [0u8; 6];
        rand::thread_rng().fill_bytes(&mut r);
        Worker {
            store,
            provider,
            signer,
            dlr_base,
            owner: format!("{}-{}", std::process::id(), hex::encode(r)),
            clock,
            settings,
            vault: None,
        }
    }

    /// The data key that opens sealed texts (a day's code rests sealed until it is sent).
    pub fn with_vault(mut self, vault: Vault) -> Worker {
        self.vault = Some(vault);
        self
    }

    /// This worker's claim owner name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn outcome(&self, d: Delivery, attempt: i64, now: DateTime<Utc>) -> SendOutcome {
        match d {
            Delivery::Accepted {
                gateway_id,
                delivered,
            } => SendOutcome::Accepted {
                gateway_id,
                delivered,
            },
            Delivery::Refused { error, permanent } => SendOutcome::Refused {
                retry_at: if permanent {
                    None
                } else {
                    let n = u32::try_from(attempt).unwrap_or(u32::MAX);
                    self.settings.backoff.next_attempt(n, now)
                },
                error,
            },
            Delivery::Unknown { error } => SendOutcome::Unknown {
                error,
                reconcile_at: now + self.settings.reconcile,
            },
        }
    }

    /// One round: tidy up, claim a batch, send it in waves of `concurrency`, recording each
    /// wave's outcomes in one transaction.
    pub async fn run_once(&self) -> Result<Round, StoreError> {
        let s = &self.settings;
        let now = (self.clock)();
        let recovered = self
            .store
            .recover_sms(now, s.reconcile, i64::from(s.backoff.max_attempts))
            .await?;
        if recovered != Default::default() {
            tracing::info!(?recovered, "sms outbox recovered");
        }
        let claimed = self
            .store
            .claim_sms(&self.owner, now, s.batch_size, s.lease)
            .await?;
        let mut round = Round {
            claimed: claimed.len(),
            ..Round::default()
        };
        for wave in claimed.chunks(s.concurrency) {
            let mut tasks = tokio::task::JoinSet::new();
            let mut results = Vec::with_capacity(wave.len());
            for m in wave {
                let out = match self.outgoing(m, now) {
                    Ok(out) => out,
                    Err(error) => {
                        // Never send the masked text in its place: the attempt fails for good.
                        tracing::error!(id = m.id, %error, "sealed sms text does not open");
                        round.refused += 1;
                        results.push(AttemptResult {
                            id: m.id,
                            attempt: m.attempts,
                            outcome: SendOutcome::Refused {
                                retry_at: None,
                                error,
                            },
                        });
                        continue;
                    }
                };
                let provider = self.provider.clone();
                let delay = s.send_delay;
                tasks.spawn(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let d = provider.send(&out).await;
                    (out.id, out.attempt, d)
                });
            }
            while let Some(done) = tasks.join_next().await {
                let Ok((id, attempt, d)) = done else {
                    // A provider panicked: its row stays `sending` and is reconciled like a crash.
                    continue;
                };
                match &d {
                    Delivery::Accepted { .. } => round.accepted += 1,
                    Delivery::Refused { error, .. } => {
                        round.refused += 1;
                        tracing::warn!(id, attempt, %error, "sms refused");
                    }
                    Delivery::Unknown { error } => {
                        round.unknown += 1;
                        tracing::warn!(id, attempt, %error, "sms outcome unknown");
                    }
                }
                results.push(AttemptResult {
                    id,
                    attempt,
                    outcome: self.outcome(d, attempt, (self.clock)()),
                });
            }
            self.store
                .record_sms_attempts(&results, (self.clock)())
                .await?;
        }
        Ok(round)
    }

    /// What goes to the gateway: the real text, opened from its seal when it rests sealed.
    fn outgoing(&self, m: &OutboxMessage, now: DateTime<Utc>) -> Result<Outgoing, String> {
        let text = match (&m.sealed_text, &self.vault) {
            (None, _) => m.text.clone(),
            (Some(sealed), Some(vault)) => vault
                .open_message(&m.idempotency_key, sealed)
                .map_err(|e| format!("sealed text: {e}"))?,
            (Some(_), None) => return Err("sealed text, and this worker has no data key".into()),
        };
        Ok(Outgoing {
            id: m.id,
            attempt: m.attempts,
            to: m.recipient.clone(),
            text,
            dlr_url: self.signer.url(&self.dlr_base, m.id, m.attempts),
            now,
        })
    }

    /// Runs rounds until `shutdown` completes: at once again after a full batch, after
    /// `poll_interval` otherwise, and after a pause on database errors.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tracing::info!(owner = %self.owner, provider = self.provider.name(), "sms worker started");
        tokio::pin!(shutdown);
        loop {
            let pause = match self.run_once().await {
                Ok(r) if r.claimed as i64 >= self.settings.batch_size => StdDuration::ZERO,
                Ok(_) => self.settings.poll_interval,
                Err(e) => {
                    tracing::error!(error = %e, "sms worker round failed");
                    self.settings.poll_interval.max(StdDuration::from_secs(1))
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("sms worker stopped");
    }
}
