//! What stands between a login flood and the machine: the client address a login is counted
//! under, and the process-wide bound on concurrent password hashing.
//!
//! Every login runs Argon2id with 19 MiB of memory. Unbounded, 2,000 concurrent attempts ate
//! gigabytes and starved the database pool into 500s. So:
//!
//! - at most `permits × 32` logins are in flight at once (the database reads before hashing
//!   included); the next is answered 429 at once, without touching the database;
//! - at most `permits` hashes run at once, where `permits` is `login.hash_permits` or, when
//!   that is 0, `max(1, min(cores, available memory / 64 MiB))`: hashing is CPU-bound, so more
//!   than one per core only queues, and 64 MiB per slot (a hash's 19 MiB plus the request,
//!   allocator slack and a margin for the rest of the server) keeps a small machine out of swap;
//! - a login that cannot get a slot within `login.hash_wait_ms` is answered 429 with
//!   `Retry-After`, never 500. Setting a password (account creation) waits for its slot.
//!
//! The bound is per process, not per [`crate::AppState`]: it guards the machine's cores and
//! memory, which every application in the process shares. [`configure`] sets it once at start;
//! until then (tests) the automatic size and a one-second wait apply.
//!
//! Throttling of repeated failures (per account and address, per address, per account) is the
//! domain's rule (`anxin_domain::auth::LoginPolicy`) over counts kept in the database.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::AppError;

/// Memory set aside per concurrent hash when sizing the bound automatically.
pub const MEMORY_PER_HASH: u64 = 64 << 20;
/// Logins in flight per hashing slot.
pub const IN_FLIGHT_PER_PERMIT: usize = 32;

/// The address a login attempt is counted under: the peer's IP address (IPv6 by its /64, which
/// one host usually holds whole), or `unknown` when the server was not told (in-process tests
/// that set none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl ClientAddr {
    /// The key of an IP address.
    pub fn of(ip: IpAddr) -> ClientAddr {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        ClientAddr(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| ClientAddr::of(a.ip()))
            .unwrap_or_else(|| ClientAddr("unknown".into())))
    }
}

/// The process-wide bound on logins in flight and on concurrent hashing.
#[derive(Debug)]
pub struct HashGate {
    permits: usize,
    hashing: Semaphore,
    in_flight: Semaphore,
    wait: Duration,
}

static GATE: OnceLock<HashGate> = OnceLock::new();

/// `max(1, min(cores, available memory / 64 MiB))`.
pub fn auto_permits() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_memory = available_memory().map_or(cores, |m| {
        usize::try_from(m / MEMORY_PER_HASH).unwrap_or(usize::MAX)
    });
    cores.min(by_memory).max(1)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes (Linux; `None` elsewhere).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

impl HashGate {
    fn new(permits: usize, wait: Duration) -> HashGate {
        let permits = permits.max(1);
        HashGate {
            permits,
            hashing: Semaphore::new(permits),
            in_flight: Semaphore::new(permits.saturating_mul(IN_FLIGHT_PER_PERMIT)),
            wait,
        }
    }

    /// Hashes allowed at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Admits one login, or answers 429 at once when too many are in flight.
    pub fn enter(&self) -> Result<SemaphorePermit<'_>, AppError> {
        self.in_flight
            .try_acquire()
            .map_err(|_| AppError::TooManyRequests {
                retry_after_secs: 1,
            })
    }

    /// A hashing slot for a login: 429 if none frees up within the configured wait.
    pub async fn login_slot(&self) -> Result<SemaphorePermit<'_>, AppError> {
        let busy = || AppError::TooManyRequests {
            retry_after_secs: self.wait.as_secs().max(1),
        };
        match tokio::time::timeout(self.wait, self.hashing.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(AppError::Internal),
            Err(_) => Err(busy()),
        }
    }

    /// A hashing slot for setting a password: waits as long as it takes.
    pub async fn slot(&self) -> Result<SemaphorePermit<'_>, AppError> {
        self.hashing.acquire().await.map_err(|_| AppError::Internal)
    }
}

/// Sets the process's bound from `login.hash_permits` (0: [`auto_permits`]) and
/// `login.hash_wait_ms`. Only the first call counts; returns whether it was this one.
pub fn configure(permits: u32, wait_ms: u64) -> bool {
    let permits = match usize::try_from(permits) {
        Ok(0) | Err(_) => auto_permits(),
        Ok(n) => n,
    };
    let mut fresh = false;
    GATE.get_or_init(|| {
        fresh = true;
        HashGate::new(permits, Duration::from_millis(wait_ms))
    });
    fresh
}

/// The process's bound (the automatic one if [`configure`] was never called).
pub fn gate() -> &'static HashGate {
    GATE.get_or_init(|| HashGate::new(auto_permits(), Duration::from_millis(1000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_by_ip_and_ipv6_by_its_64() {
        let v4: IpAddr = "192.168.1.20".parse().unwrap();
        assert_eq!(ClientAddr::of(v4).0, "192.168.1.20");
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(ClientAddr::of(mapped).0, "10.0.0.7");
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ClientAddr::of(a), ClientAddr::of(b));
        assert_eq!(ClientAddr::of(a).0, "2001:db8:1:2::/64");
    }

    #[test]
    fn the_automatic_bound_is_at_least_one_and_at_most_the_cores() {
        let n = auto_permits();
        assert!(n >= 1);
        assert!(n <= std::thread::available_parallelism().map_or(1, |c| c.get()));
    }

    #[tokio::test]
    async fn a_full_gate_answers_429_with_a_retry_time() {
        let g = HashGate::new(1, Duration::from_millis(20));
        let _held = g.login_slot().await;
        assert!(matches!(
            g.login_slot().await,
            Err(AppError::TooManyRequests {
                retry_after_secs: 1
            })
        ));
        let flights: Vec<_> = (0..IN_FLIGHT_PER_PERMIT).map(|_| g.enter()).collect();
        assert!(flights.iter().all(Result::is_ok));
        assert!(matches!(g.enter(), Err(AppError::TooManyRequests { .. })));
    }
}
