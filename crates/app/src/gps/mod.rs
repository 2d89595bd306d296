//! Box GPS: the ingest pipeline that turns tracker reports into positions, presence states and
//! alarms, the periodic tick (no fix for too long, retention), and the staff and police use
//! cases ([`staff`]). The listeners for each tracker protocol are device-port adapters in the
//! server.
//!
//! Flow: a listener decodes bytes with `anxin_tracker` → [`Ingest::admit`] (known device? within
//! its rate? a possible position?) → a bounded channel → one writer task that keeps each
//! tracked box's state machine (`anxin_domain::gps`) and writes a batch per wake-up in one
//! transaction. Positions are kept only for a box that is out with a client under a home zone
//! the client consented to; otherwise only alarms are kept.

pub mod staff;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anxin_domain::gps::{on_fix, on_tick, Change, Hysteresis, Presence, Tracking, Zone};
pub use anxin_storage::gps::Tracker;
use anxin_storage::gps::{Batch, NewAlarm, NewPosition, PresenceRow, Watch};
use anxin_tracker::{check_fix, Alarm, Report};
use tokio::sync::{mpsc, oneshot};

use crate::App;

/// How long a device lookup is trusted before the database is asked again.
const DEVICE_CACHE_MS: i64 = 60_000;
/// Device lookups kept at most (known and unknown ids).
const DEVICE_CACHE_MAX: usize = 100_000;
/// Messages the writer takes at most per batch.
const BATCH_MAX: usize = 4096;

/// The `[gps]` rules the pipeline applies (the listeners' addresses stay with the server).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpsRules {
    /// Days raw positions are kept.
    pub retention_days: u32,
    /// Consecutive fixes outside the zone before a box is away…
    pub away_after_fixes: u32,
    /// …spanning at least this many minutes.
    pub away_after_minutes: u32,
    /// Minutes without a fix before a box's state is unknown (with an offline alarm).
    pub unknown_after_minutes: u32,
    /// Battery level below which a low-battery alarm is raised.
    pub low_battery_percent: u8,
    /// How far in the future a fix's time may be.
    pub max_future_seconds: u32,
    /// Reports a device may send per minute.
    pub reports_per_minute: u32,
}

impl Default for GpsRules {
    fn default() -> Self {
        GpsRules {
            retention_days: 30,
            away_after_fixes: 3,
            away_after_minutes: 10,
            unknown_after_minutes: 120,
            low_battery_percent: 20,
            max_future_seconds: 600,
            reports_per_minute: 60,
        }
    }
}

/// What the pipeline shares with the rest of the application: caches that the staff routes must be
/// able to invalidate, and counters.
#[derive(Default)]
pub struct Shared {
    /// Bumped when a tracker, zone or load changes: caches are dropped at the next look.
    generation: AtomicU64,
    devices: Mutex<DeviceCache>,
    pub stats: Stats,
}

#[derive(Default)]
struct DeviceCache {
    generation: u64,
    known: HashMap<String, (Option<Tracker>, i64)>,
    buckets: HashMap<String, Bucket>,
}

/// A token bucket per device: `reports_per_minute` tokens, refilled evenly over a minute.
#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Counters of what the pipeline did with reports (for logs, the benchmark and tests).
#[derive(Default, Debug)]
pub struct Stats {
    pub admitted: AtomicU64,
    pub stored_positions: AtomicU64,
    pub unknown_device: AtomicU64,
    pub flooded: AtomicU64,
    pub invalid: AtomicU64,
    pub without_consent: AtomicU64,
    /// Reports of token trackers without their token (and GT06 logins of token trackers).
    pub unauthenticated: AtomicU64,
}

impl Shared {
    /// Tells the pipeline that trackers, zones or loads changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// Why a report was not taken.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refusal {
    #[error("device: {0} is not registered to a box")]
    UnknownDevice(String),
    #[error("device: {0} sends faster than its limit; report dropped")]
    Flood(String),
    #[error("{0}")]
    Invalid(#[from] anxin_tracker::ReportError),
    #[error("server: the GPS pipeline is not running")]
    Stopped,
    /// A token tracker without its token (or with another), or a GT06 login of a token tracker.
    #[error("token: device {0} did not send the token it was fitted with; report dropped")]
    Unauthenticated(String),
}

/// A fresh device token: 128 random bits as 32 hexadecimal characters.
pub fn new_device_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// What rests of a device token: its SHA-256 in hexadecimal (the token is random, so no
/// slow hash is needed).
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.trim().as_bytes()))
}

enum Inbound {
    Report {
        tracker: Tracker,
        report: Report,
        received_ms: i64,
    },
    Offline {
        tracker: Tracker,
        at_ms: i64,
    },
    Tick {
        now_ms: i64,
    },
    Flush(oneshot::Sender<()>),
}

/// The handle the listeners use. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    app: App,
    tx: mpsc::Sender<Inbound>,
}

/// Starts the writer task; the returned handle feeds it.
pub fn spawn(app: App) -> Ingest {
    let (tx, rx) = mpsc::channel(65_536);
    tokio::spawn(writer(app.clone(), rx));
    Ingest { app, tx }
}

impl Ingest {
    /// Checks that `device` is a registered tracker and within its rate. Unknown devices and
    /// floods are counted and refused (the caller logs and drops).
    pub async fn admit(&self, device: &str) -> Result<Tracker, Refusal> {
        let now = self.app.now().timestamp_millis();
        let shared = &self.app.gps;
        let cached = {
            let mut c = lock(&shared.devices);
            let generation = shared.generation();
            if c.generation != generation {
                c.known.clear();
                c.generation = generation;
            }
            c.known
                .get(device)
                .filter(|(_, at)| now - at < DEVICE_CACHE_MS)
                .map(|(t, _)| t.clone())
        };
        let tracker = match cached {
            Some(t) => t,
            None => {
                let t = self.app.store.tracker(device).await.map_err(|e| {
                    tracing::error!(error = %e, "tracker lookup failed");
                    Refusal::Stopped
                })?;
                let mut c = lock(&shared.devices);
                // Made-up IMEIs from a hostile peer must not grow the cache without bound.
                if c.known.len() >= DEVICE_CACHE_MAX {
                    c.known.clear();
                }
                c.known.insert(device.to_owned(), (t.clone(), now));
                t
            }
        };
        let Some(tracker) = tracker else {
            shared.stats.unknown_device.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::UnknownDevice(device.to_owned()));
        };
        let per_minute = f64::from(self.app.settings.gps.reports_per_minute);
        let mut c = lock(&shared.devices);
        let b = c.buckets.entry(tracker.imei.clone()).or_insert(Bucket {
            tokens: per_minute,
            at_ms: now,
        });
        let elapsed = (now - b.at_ms).max(0) as f64;
        b.tokens = (b.tokens + elapsed * per_minute / 60_000.0).min(per_minute);
        b.at_ms = now;
        if b.tokens < 1.0 {
            shared.stats.flooded.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Flood(tracker.imei));
        }
        b.tokens -= 1.0;
        Ok(tracker)
    }

    /// Validates and queues a report of an admitted device.
    pub async fn submit(&self, tracker: Tracker, mut report: Report) -> Result<(), Refusal> {
        let now = self.app.now().timestamp_millis();
        if let Some(fix) = &report.fix {
            let max_future = i64::from(self.app.settings.gps.max_future_seconds) * 1000;
            if let Err(e) = check_fix(fix, now, max_future) {
                self.app.gps.stats.invalid.fetch_add(1, Ordering::Relaxed);
                // An alarm without a believable position is still an alarm.
                if report.alarm.is_none() && report.battery_percent.is_none() {
                    return Err(e.into());
                }
                report.fix = None;
            }
        }
        self.app.gps.stats.admitted.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Inbound::Report {
                tracker,
                report,
                received_ms: now,
            })
            .await
            .map_err(|_| Refusal::Stopped)
    }

    /// Admits and queues in one step (a report without a token: GT06).
    pub async fn accept(&self, report: Report) -> Result<(), Refusal> {
        self.accept_with_token(report, None).await
    }

    /// Admits, checks the device's token and queues (OsmAnd, MQTT).
    pub async fn accept_with_token(
        &self,
        report: Report,
        token: Option<&str>,
    ) -> Result<(), Refusal> {
        let t = self.admit(&report.device).await?;
        self.check_token(&t, token)?;
        self.submit(t, report).await
    }

    /// A token tracker must send its token; a GT06 tracker (none fitted) sends none. Refusals
    /// are counted.
    pub fn check_token(&self, t: &Tracker, token: Option<&str>) -> Result<(), Refusal> {
        use subtle::ConstantTimeEq;
        let ok = match (&t.token_hash, token) {
            (None, None) => true,
            (Some(h), Some(tok)) => bool::from(token_hash(tok).as_bytes().ct_eq(h.as_bytes())),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            self.app
                .gps
                .stats
                .unauthenticated
                .fetch_add(1, Ordering::Relaxed);
            Err(Refusal::Unauthenticated(t.imei.clone()))
        }
    }

    /// The broker says a device went away (its last will).
    pub async fn offline(&self, device: &str) -> Result<(), Refusal> {
        let t = self.admit(device).await?;
        let at_ms = self.app.now().timestamp_millis();
        self.tx
            .send(Inbound::Offline { tracker: t, at_ms })
            .await
            .map_err(|_| Refusal::Stopped)
    }

    /// Runs the time rules now: boxes without a fix for too long become unknown (with an
    /// offline alarm), and raw positions past retention are deleted.
    pub async fn tick(&self) {
        let now_ms = self.app.now().timestamp_millis();
        let _ = self.tx.send(Inbound::Tick { now_ms }).await;
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Inbound::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The hysteresis rules of the configuration.
pub fn hysteresis(c: &GpsRules) -> Hysteresis {
    Hysteresis {
        away_after_fixes: c.away_after_fixes,
        away_after_minutes: i64::from(c.away_after_minutes),
        unknown_after_minutes: i64::from(c.unknown_after_minutes),
    }
}

/// The writer's memory: what each box is watched for, and its state machine.
#[derive(Default)]
struct Memory {
    generation: u64,
    watches: HashMap<i64, Option<(Watch, Zone)>>,
    presence: HashMap<i64, PresenceRow>,
}

async fn writer(app: App, mut rx: mpsc::Receiver<Inbound>) {
    let mut mem = Memory::default();
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let generation = app.gps.generation();
        if generation != mem.generation {
            mem = Memory {
                generation,
                ..Memory::default()
            };
        }
        let mut batch = Batch::default();
        let mut dirty = HashSet::new();
        let mut waiters = vec![];
        for m in msgs {
            let r = match m {
                Inbound::Report {
                    tracker,
                    report,
                    received_ms,
                } => {
                    on_report(
                        &app,
                        &mut mem,
                        &mut batch,
                        &mut dirty,
                        &tracker,
                        report,
                        received_ms,
                    )
                    .await
                }
                Inbound::Offline { tracker, at_ms } => {
                    on_offline(&app, &mut mem, &mut batch, &mut dirty, &tracker, at_ms).await
                }
                Inbound::Tick { now_ms } => {
                    on_time(&app, &mut mem, &mut batch, &mut dirty, now_ms).await
                }
                Inbound::Flush(w) => {
                    waiters.push(w);
                    Ok(())
                }
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "gps: reading the box registry failed");
            }
        }
        batch.presence = dirty
            .iter()
            .filter_map(|id| mem.presence.get(id).cloned())
            .collect();
        let stored = batch.positions.len() as u64;
        match app.store.write_gps_batch(&batch).await {
            Ok(()) => {
                app.gps
                    .stats
                    .stored_positions
                    .fetch_add(stored, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, positions = stored, "gps: writing a batch failed; dropped");
                mem = Memory::default();
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

type Res = anxin_storage::Result<()>;

async fn watch_of(
    app: &App,
    mem: &mut Memory,
    box_id: i64,
) -> anxin_storage::Result<Option<(Watch, Zone)>> {
    if let Some(w) = mem.watches.get(&box_id) {
        return Ok(w.clone());
    }
    let w = app.store.watch(box_id).await?.and_then(|w| {
        match serde_json::from_str::<Zone>(&w.zone_json) {
            Ok(z) => Some((w, z)),
            Err(e) => {
                tracing::error!(error = %e, box_id, "stored home zone does not parse");
                None
            }
        }
    });
    mem.watches.insert(box_id, w.clone());
    Ok(w)
}

async fn presence_of<'m>(
    app: &App,
    mem: &'m mut Memory,
    box_id: i64,
    load_id: i64,
    now_ms: i64,
) -> anxin_storage::Result<&'m mut PresenceRow> {
    use std::collections::hash_map::Entry;
    Ok(match mem.presence.entry(box_id) {
        Entry::Occupied(o) => o.into_mut(),
        Entry::Vacant(v) => {
            let stored = app
                .store
                .presence(box_id)
                .await?
                .filter(|p| p.load_id == load_id);
            v.insert(stored.unwrap_or_else(|| {
                let t = Tracking::new(now_ms);
                PresenceRow {
                    box_id,
                    load_id,
                    presence: t.presence.as_str().to_owned(),
                    since_ms: t.since_ms,
                    last_fix_ms: None,
                    outside_fixes: 0,
                    first_outside_ms: None,
                    battery: None,
                    online: true,
                    last_seen_ms: now_ms,
                }
            }))
        }
    })
}

fn tracking(p: &PresenceRow) -> Tracking {
    Tracking {
        presence: Presence::parse(&p.presence).unwrap_or(Presence::Unknown),
        since_ms: p.since_ms,
        last_fix_ms: p.last_fix_ms,
        outside_fixes: u32::try_from(p.outside_fixes).unwrap_or(u32::MAX),
        first_outside_ms: p.first_outside_ms,
    }
}

fn store_tracking(p: &mut PresenceRow, t: Tracking) {
    p.presence = t.presence.as_str().to_owned();
    p.since_ms = t.since_ms;
    p.last_fix_ms = t.last_fix_ms;
    p.outside_fixes = i64::from(t.outside_fixes);
    p.first_outside_ms = t.first_outside_ms;
}

#[allow(clippy::too_many_arguments)]
async fn on_report(
    app: &App,
    mem: &mut Memory,
    batch: &mut Batch,
    dirty: &mut HashSet<i64>,
    t: &Tracker,
    report: Report,
    received_ms: i64,
) -> Res {
    let watch = watch_of(app, mem, t.box_id).await?;
    let alarm = |kind: &str, at_ms: i64, at: Option<(f64, f64)>| NewAlarm {
        box_id: t.box_id,
        site_id: t.site_id,
        load_id: watch.as_ref().map(|(w, _)| w.load_id),
        kind: kind.to_owned(),
        at_ms,
        at,
    };
    let consented_fix = report.fix.filter(|_| watch.is_some());
    if let Some(a) = report.alarm {
        let at = consented_fix.map(|f| (f.lat, f.lon));
        batch.alarms.push(alarm(a.as_str(), received_ms, at));
    }
    let Some((w, zone)) = &watch else {
        if report.fix.is_some() {
            app.gps
                .stats
                .without_consent
                .fetch_add(1, Ordering::Relaxed);
        }
        return Ok(());
    };
    let low = i64::from(app.settings.gps.low_battery_percent);
    let h = hysteresis(&app.settings.gps);
    let p = presence_of(app, mem, t.box_id, w.load_id, received_ms).await?;
    p.last_seen_ms = received_ms;
    p.online = true;
    if let Some(b) = report.battery_percent.map(i64::from) {
        let was_fine = p.battery.is_none_or(|old| old > low);
        if b <= low && was_fine && report.alarm != Some(Alarm::LowBattery) {
            batch.alarms.push(alarm("low_battery", received_ms, None));
        }
        p.battery = Some(b);
    }
    if let Some(fix) = report.fix {
        batch.positions.push(NewPosition {
            box_id: t.box_id,
            at_ms: fix.at_ms,
            lat: fix.lat,
            lon: fix.lon,
            received_ms,
        });
        let before = tracking(p);
        let (next, change) = on_fix(before, zone, &h, fix.lat, fix.lon, fix.at_ms);
        store_tracking(p, next);
        // Unknown → away is the trip home after hand-out (or an offline box reappearing, which
        // already raised its alarm): only leaving a known home is an alarm.
        if change == Some(Change::LeftHome) && before.presence == Presence::AtHome {
            batch
                .alarms
                .push(alarm("left_home", fix.at_ms, Some((fix.lat, fix.lon))));
        }
    }
    dirty.insert(t.box_id);
    Ok(())
}

async fn on_offline(
    app: &App,
    mem: &mut Memory,
    batch: &mut Batch,
    dirty: &mut HashSet<i64>,
    t: &Tracker,
    at_ms: i64,
) -> Res {
    let Some((w, _)) = watch_of(app, mem, t.box_id).await? else {
        return Ok(());
    };
    let p = presence_of(app, mem, t.box_id, w.load_id, at_ms).await?;
    if p.online {
        p.online = false;
        batch.alarms.push(NewAlarm {
            box_id: t.box_id,
            site_id: t.site_id,
            load_id: Some(w.load_id),
            kind: "offline".into(),
            at_ms,
            at: None,
        });
        dirty.insert(t.box_id);
    }
    Ok(())
}

async fn on_time(
    app: &App,
    mem: &mut Memory,
    batch: &mut Batch,
    dirty: &mut HashSet<i64>,
    now_ms: i64,
) -> Res {
    let h = hysteresis(&app.settings.gps);
    let stale = app
        .store
        .stale_presences(now_ms - h.unknown_after_minutes * 60_000)
        .await?;
    for (row, site_id) in stale {
        let p = mem.presence.entry(row.box_id).or_insert(row);
        let (next, change) = on_tick(tracking(p), &h, now_ms);
        store_tracking(p, next);
        if change == Some(Change::WentUnknown) {
            batch.alarms.push(NewAlarm {
                box_id: p.box_id,
                site_id,
                load_id: Some(p.load_id),
                kind: "offline".into(),
                at_ms: now_ms,
                at: None,
            });
            dirty.insert(p.box_id);
        }
    }
    let keep = i64::from(app.settings.gps.retention_days) * 86_400_000;
    match app.store.purge_positions(now_ms - keep).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "gps: raw positions past retention deleted"),
        Err(e) => tracing::error!(error = %e, "gps: retention purge failed"),
    }
    Ok(())
}
