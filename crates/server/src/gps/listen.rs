//! The tracker ports: GT06 over TCP, OsmAnd over HTTP, and MQTT through a broker. Each turns
//! its protocol into `anxin_tracker::Report`s for the [`Ingest`]; bad frames and unknown
//! devices are logged and dropped, and never take the connection or the server down.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anxin_tracker::gt06::{self, Body};
use anxin_tracker::{mqtt as mq, osmand, Report};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Ingest, Refusal};
use crate::config::GpsConfig;

/// Dropped frames a connection may send before it is closed.
const MAX_BAD_FRAMES: u32 = 100;

/// What a tracker port holds open (`[gps]` in the configuration): a connection beyond a cap is
/// closed as soon as it is accepted, one that has not logged in by the deadline is closed, and
/// one silent for `idle` (tied to the trackers' heartbeat) is closed.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    pub max_connections: usize,
    pub max_per_address: usize,
    pub login_deadline: Duration,
    pub idle: Duration,
}

impl Default for PortLimits {
    fn default() -> Self {
        crate::config::GpsConfig::default().gt06_limits()
    }
}

/// The connections open on a port, in all and per address.
#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// A place among the open connections, given back when the connection ends.
struct Slot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// Takes a place for a connection from `address`, or says which cap is reached.
fn admit(
    open: &Arc<Mutex<Open>>,
    limits: &PortLimits,
    address: IpAddr,
) -> Result<Slot, &'static str> {
    let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
    if o.total >= limits.max_connections {
        return Err("the port's connection cap");
    }
    let from = o.by_address.entry(address).or_insert(0);
    if *from >= limits.max_per_address {
        return Err("the cap per address");
    }
    *from += 1;
    o.total += 1;
    Ok(Slot {
        open: open.clone(),
        address,
    })
}

/// Accepts GT06 connections until the listener fails, within `limits`.
pub async fn gt06(ingest: Ingest, listener: TcpListener, limits: PortLimits) {
    let open = Arc::new(Mutex::new(Open::default()));
    let mut refused = 0u64;
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                let slot = match admit(&open, &limits, peer.ip()) {
                    Ok(slot) => slot,
                    Err(cap) => {
                        // Closed at once; said once in a thousand so a flood does not fill the log.
                        if refused.is_multiple_of(1000) {
                            tracing::warn!(%peer, cap, refused = refused + 1, "gt06 connection refused");
                        }
                        refused += 1;
                        drop(sock);
                        continue;
                    }
                };
                let ingest = ingest.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = gt06_connection(&ingest, sock, peer, limits).await {
                        tracing::debug!(%peer, error = %e, "gt06 connection ended");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors, typically: wait rather than spin.
                tracing::warn!(error = %e, "gt06 accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn gt06_connection(
    ingest: &Ingest,
    mut sock: TcpStream,
    peer: SocketAddr,
    limits: PortLimits,
) -> std::io::Result<()> {
    let _ = sock.set_nodelay(true);
    let mut decoder = gt06::Decoder::default();
    let mut buf = vec![0u8; 4096];
    let mut device: Option<anxin_app::gps::Tracker> = None;
    let mut bad = 0u32;
    let mut out = Vec::new();
    let login_by = tokio::time::Instant::now() + limits.login_deadline;
    loop {
        // Before login, the deadline; after it, the idle timeout.
        let wait = match device {
            None => login_by.saturating_duration_since(tokio::time::Instant::now()),
            Some(_) => limits.idle,
        };
        let n = match tokio::time::timeout(wait, sock.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => {
                if device.is_none() {
                    tracing::debug!(%peer, "gt06: no login before the deadline; connection closed");
                }
                return Ok(());
            }
        };
        if n == 0 {
            return Ok(());
        }
        decoder.push(&buf[..n]);
        out.clear();
        while let Some(next) = decoder.next() {
            let packet = match next {
                Ok(p) => p,
                Err(e) => {
                    bad += 1;
                    tracing::warn!(%peer, error = %e, "gt06 frame dropped");
                    if bad > MAX_BAD_FRAMES {
                        tracing::warn!(%peer, "gt06: too many bad frames; connection closed");
                        return Ok(());
                    }
                    continue;
                }
            };
            let report = match (&packet.body, &device) {
                (Body::Login { imei }, _) => match ingest
                    .admit(imei)
                    .await
                    .and_then(|t| ingest.check_token(&t, None).map(|()| t))
                {
                    Ok(t) => {
                        device = Some(t);
                        None
                    }
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "gt06 login refused; connection closed");
                        return Ok(());
                    }
                },
                (_, None) => {
                    bad += 1;
                    tracing::warn!(%peer, protocol = packet.protocol, "gt06 packet before login dropped");
                    continue;
                }
                (Body::Location { fix, .. }, Some(t)) => Some(Report {
                    device: t.imei.clone(),
                    fix: Some(*fix),
                    battery_percent: None,
                    alarm: None,
                }),
                (
                    Body::Status {
                        battery_percent,
                        tamper,
                        ..
                    },
                    Some(t),
                ) => Some(Report {
                    device: t.imei.clone(),
                    fix: None,
                    battery_percent: *battery_percent,
                    alarm: tamper.then_some(anxin_tracker::Alarm::Tamper),
                }),
                (
                    Body::Alarm {
                        fix,
                        alarm,
                        battery_percent,
                    },
                    Some(t),
                ) => Some(Report {
                    device: t.imei.clone(),
                    fix: *fix,
                    battery_percent: *battery_percent,
                    alarm: Some(*alarm),
                }),
                (Body::Other, Some(_)) => None,
            };
            if let (Some(r), Some(t)) = (report, &device) {
                // The rate limit applies to every packet after login.
                let admitted = if matches!(packet.body, Body::Login { .. }) {
                    Ok(t.clone())
                } else {
                    ingest.admit(&t.imei).await
                };
                match admitted {
                    Ok(t) => match ingest.submit(t, r).await {
                        Ok(()) => {}
                        Err(Refusal::Stopped) => return Ok(()),
                        Err(e) => tracing::warn!(%peer, error = %e, "gt06 report dropped"),
                    },
                    Err(Refusal::Flood(d)) => {
                        tracing::debug!(%peer, device = %d, "gt06 report over the rate limit dropped")
                    }
                    Err(e) => tracing::warn!(%peer, error = %e, "gt06 report dropped"),
                }
            }
            if let Some(ack) = gt06::ack(&packet) {
                out.extend_from_slice(&ack);
            }
        }
        if !out.is_empty() {
            sock.write_all(&out).await?;
        }
    }
}

/// Serves the OsmAnd protocol until the listener fails.
pub async fn osmand(ingest: Ingest, listener: TcpListener, limits: PortLimits) {
    let app = Router::new()
        .route("/", any(osmand_report))
        .with_state(ingest);
    let capped = Capped {
        inner: listener,
        open: Arc::default(),
        limits,
        refused: 0,
    };
    if let Err(e) = axum::serve(capped, app).await {
        tracing::error!(error = %e, "OsmAnd port stopped");
    }
}

/// The OsmAnd port's listener: a connection beyond the port's caps (in all, per address) is
/// closed as soon as it is accepted, so a flood of idle connections holds at most the cap's
/// worth of file descriptors.
struct Capped {
    inner: TcpListener,
    open: Arc<Mutex<Open>>,
    limits: PortLimits,
    refused: u64,
}

/// An accepted connection and its place among the open ones.
struct CappedIo {
    io: TcpStream,
    _slot: Slot,
}

impl axum::serve::Listener for Capped {
    type Io = CappedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CappedIo, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((io, peer)) => match admit(&self.open, &self.limits, peer.ip()) {
                    Ok(slot) => return (CappedIo { io, _slot: slot }, peer),
                    Err(cap) => {
                        if self.refused.is_multiple_of(1000) {
                            tracing::warn!(%peer, cap, refused = self.refused + 1, "osmand connection refused");
                        }
                        self.refused += 1;
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "osmand accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for CappedIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CappedIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// One OsmAnd report: the query string (GET or POST), or a JSON body.
pub async fn osmand_report(
    State(ingest): State<Ingest>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (parsed, token) = if json || (query.as_deref().unwrap_or("").is_empty() && !body.is_empty())
    {
        if json || body.first() == Some(&b'{') {
            (osmand::parse_json(&body), json_token(&body))
        } else {
            // A form-encoded body, as some clients POST it.
            let form = String::from_utf8_lossy(&body);
            (osmand::parse_query(&form), query_token(&form))
        }
    } else {
        let q = query.as_deref().unwrap_or("");
        (osmand::parse_query(q), query_token(q))
    };
    // The token may also sit in the server URL set in the device (`/?token=…`) while the
    // report itself comes in the body.
    let token = token.or_else(|| query.as_deref().and_then(query_token));
    let report = match parsed {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "osmand report refused");
            return (StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match ingest.accept_with_token(report, token.as_deref()).await {
        Ok(()) => (StatusCode::OK, String::new()),
        Err(e @ Refusal::Unauthenticated(_)) => {
            tracing::warn!(error = %e, "osmand report refused");
            (StatusCode::UNAUTHORIZED, e.to_string())
        }
        Err(e @ Refusal::UnknownDevice(_)) => {
            tracing::warn!(error = %e, "osmand report refused");
            (StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e @ Refusal::Flood(_)) => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        Err(e @ Refusal::Invalid(_)) => {
            tracing::warn!(error = %e, "osmand report refused");
            (StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(e @ Refusal::Stopped) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Subscribes to the broker at `url` (`mqtt://host:port`) and feeds reports and last wills to
/// the ingest; reconnects on its own.
pub fn mqtt(ingest: Ingest, url: &str, cfg: &GpsConfig) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("gps.mqtt_url: `{url}`: {e}"))?;
    if parsed.scheme() != "mqtt" {
        anyhow::bail!("gps.mqtt_url: `{url}` must start with mqtt://");
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("gps.mqtt_url: `{url}` has no host"))?
        .to_owned();
    let port = parsed.port().unwrap_or(1883);
    let mut opts = rumqttc::MqttOptions::new(cfg.mqtt_client_id.clone(), host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    if !parsed.username().is_empty() {
        opts.set_credentials(parsed.username(), parsed.password().unwrap_or(""));
    }
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 1024);
    let prefix = cfg.mqtt_topic_prefix.trim_end_matches('/').to_owned();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    tracing::info!("MQTT broker connected");
                    for t in [format!("{prefix}/+/position"), format!("{prefix}/+/status")] {
                        if let Err(e) = client.subscribe(t, rumqttc::QoS::AtLeastOnce).await {
                            tracing::error!(error = %e, "MQTT subscribe failed");
                        }
                    }
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    on_mqtt(&ingest, &prefix, &p.topic, &p.payload).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT connection lost; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

/// The `token` parameter of a query string or form body.
fn query_token(q: &str) -> Option<String> {
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// The top-level `token` of a JSON report.
fn json_token(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("token")?
        .as_str()
        .map(str::to_owned)
}

async fn on_mqtt(ingest: &Ingest, prefix: &str, topic: &str, payload: &[u8]) {
    let r = match mq::parse_topic(prefix, topic) {
        Some(mq::Topic::Position { device }) => match mq::parse_position(device, payload) {
            Ok(report) => {
                ingest
                    .accept_with_token(report, json_token(payload).as_deref())
                    .await
            }
            Err(e) => Err(e.into()),
        },
        Some(mq::Topic::Status { device }) => match mq::parse_status(payload) {
            Some(false) => ingest.offline(device).await,
            Some(true) => Ok(()),
            None => Err(Refusal::Invalid(anxin_tracker::ReportError::Invalid {
                field: "status".into(),
                reason: "expected online or offline".into(),
            })),
        },
        None => {
            tracing::debug!(topic, "MQTT message on an unknown topic ignored");
            Ok(())
        }
    };
    if let Err(e) = r {
        tracing::warn!(topic, error = %e, "MQTT message dropped");
    }
}
