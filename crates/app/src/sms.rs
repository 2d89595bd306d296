//! Text messages: the gateway's delivery reports (authenticated by an HMAC token per attempt),
//! the centre's outbox (texts only for roles with [`Permission::MessageTextRead`], that read
//! audited), codes not delivered in time ("call the client"), a client's last messages, a
//! neutral test message, and the outbox worker.

use std::collections::HashMap;
use std::future::Future;

use anxin_domain::phone;
use anxin_domain::sms::{MessageState, Report, TextKind, TextLang};
use anxin_domain::{DomainError, Permission};
use anxin_sms::worker::{Worker, WorkerSettings};
use anxin_storage::outbox::{NewMessage, OutboxMessage};
use anxin_storage::{AuditEvent, Store};
use rand::RngCore;

use crate::{Actor, App, Result};

/// A delivery report as the gateway sends it.
#[derive(Debug, Clone)]
pub struct DeliveryReport<'a> {
    pub id: i64,
    pub attempt: i64,
    /// The attempt's HMAC token.
    pub token: &'a str,
    /// Kannel's report type (1, 2, 4, 8, 16).
    pub kind: i64,
    pub gateway_id: Option<&'a str>,
}

/// Applies a delivery report once its token checks (a bad token is refused and logged).
pub async fn delivery_report(app: &App, r: &DeliveryReport<'_>) -> Result<()> {
    let signer = app.settings.sms.signer(&app.store).await?;
    if !signer.verify(r.id, r.attempt, r.token) {
        tracing::warn!(
            id = r.id,
            attempt = r.attempt,
            "delivery report with a bad token refused"
        );
        return Err(DomainError::Forbidden("bad delivery-report token".into()).into());
    }
    let report = Report::from_kannel_type(r.kind).ok_or_else(|| {
        DomainError::invalid(
            "type",
            format!("`{}` is not a report type (1, 2, 4, 8, 16)", r.kind),
        )
    })?;
    let applied = app
        .store
        .apply_sms_report(r.id, r.attempt, report, r.gateway_id, app.now())
        .await?;
    tracing::debug!(
        id = r.id,
        attempt = r.attempt,
        report = report.as_str(),
        ?applied,
        "delivery report"
    );
    Ok(())
}

/// A page of the outbox: its messages, and whether their texts may be shown.
pub struct OutboxPage {
    pub messages: Vec<OutboxMessage>,
    pub with_text: bool,
}

/// How many messages of `me`'s centre stand in each state (the outbox page's filter).
pub async fn outbox_counts(app: &App, me: &Actor) -> Result<Vec<(MessageState, i64)>> {
    me.require(Permission::MessagesRead)?;
    Ok(app.store.outbox_counts(me.site_id).await?)
}

/// The messages of `me`'s centre, newest first: of one state (or all), with an id below
/// `before`, at most `limit` (1–500). Reading texts is audited.
pub async fn outbox(
    app: &App,
    me: &Actor,
    state: Option<&str>,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<OutboxPage> {
    me.require(Permission::MessagesRead)?;
    let limit = limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be between 1 and 500").into());
    }
    let state = match state.map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(s) => Some(s.parse::<MessageState>()?),
    };
    let rows = app
        .store
        .list_outbox(me.site_id, state, before, limit)
        .await?;
    let with_text = me.role.has(Permission::MessageTextRead);
    if with_text && !rows.is_empty() {
        app.store
            .audit(
                &me.audit(),
                AuditEvent::new("sms.outbox.read", "sms", "")
                    .site(me.site_id)
                    .reason(format!("{} messages with their texts", rows.len())),
                app.now(),
            )
            .await?;
    }
    Ok(OutboxPage {
        messages: rows,
        with_text,
    })
}

/// Codes to `me`'s clients not delivered within `sms.deliver_within_minutes` of being due
/// (at most 50), with the UICs of their clients.
pub async fn overdue(app: &App, me: &Actor) -> Result<(Vec<OutboxMessage>, HashMap<i64, String>)> {
    me.require(Permission::MessagesRead)?;
    let within =
        chrono::Duration::minutes(i64::from(app.settings.sms.config.deliver_within_minutes));
    let overdue = app
        .store
        .overdue_sms(me.site_id, app.now(), within, 50)
        .await?;
    if overdue.is_empty() {
        return Ok((overdue, HashMap::new()));
    }
    let ids: Vec<i64> = overdue.iter().filter_map(|m| m.client_id).collect();
    let uics = app.store.uics_at_site(me.site_id, &ids).await?;
    Ok((overdue, uics))
}

/// The last ten messages to client `client_id` of `me`'s centre.
pub async fn client_messages(app: &App, me: &Actor, client_id: i64) -> Result<Vec<OutboxMessage>> {
    me.require(Permission::MessagesRead)?;
    Ok(app.store.client_messages(me.site_id, client_id, 10).await?)
}

/// Enqueues one neutral test message from `actor` at `site_id` (the API and `anxin sms test`,
/// which has no application context of its own).
pub async fn enqueue_test(
    store: &Store,
    sms: &anxin_sms::SmsSettings,
    actor: &anxin_storage::Actor,
    site_id: i64,
    to: &str,
    language: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<OutboxMessage> {
    let to = phone::normalize("to", to)?;
    let lang = TextLang::from_tag(language.unwrap_or("zh-CN"));
    let mut nonce = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut nonce);
    let (m, _) = store
        .enqueue_sms(
            actor,
            NewMessage {
                idempotency_key: format!("test:{}", hex::encode(nonce)),
                client_id: None,
                site_id,
                recipient_e164: to.as_str().to_owned(),
                text: sms.render(TextKind::Test, lang, ""),
                sealed_text: None,
                not_before: now,
                expires_at: now + chrono::Duration::hours(1),
            },
            now,
        )
        .await?;
    Ok(m)
}

/// A test message from `me` to `to`.
pub async fn test_message(
    app: &App,
    me: &Actor,
    to: &str,
    language: Option<&str>,
) -> Result<OutboxMessage> {
    me.require(Permission::StaffManage)?;
    enqueue_test(
        &app.store,
        &app.settings.sms,
        &me.audit(),
        me.site_id,
        to,
        language,
        app.now(),
    )
    .await
}

/// Starts the outbox worker with the configured provider, unless `sms.provider = "none"`.
/// `listen_url` (e.g. `http://127.0.0.1:8080`) is where the gateway sends delivery reports
/// unless `sms.dlr_base_url` says otherwise. The worker stops when `shutdown` completes.
pub fn spawn_worker(
    app: App,
    listen_url: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::result::Result<Option<tokio::task::JoinHandle<()>>, anxin_sms::SmsConfigError> {
    let sms = app.settings.sms.clone();
    let Some(provider) = sms.provider()? else {
        tracing::info!("sms.provider = none: no worker; messages stay queued");
        return Ok(None);
    };
    let base = sms
        .config
        .dlr_base_url
        .clone()
        .unwrap_or_else(|| listen_url.to_owned());
    let handle = tokio::spawn(async move {
        let signer = loop {
            match sms.signer(&app.store).await {
                Ok(s) => break s.clone(),
                Err(e) => {
                    tracing::error!(error = %e, "sms worker cannot read its key; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        };
        let clock = app.clone();
        let worker = Worker::new(
            app.store.clone(),
            provider,
            signer,
            base,
            WorkerSettings::from_config(&sms.config),
            std::sync::Arc::new(move || clock.now()),
        )
        .with_vault(app.vault.clone());
        worker.run(shutdown).await;
    });
    Ok(Some(handle))
}
