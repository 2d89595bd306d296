//! Password hashes and the process-wide bound on hashing.
//!
//! Every password is hashed with Argon2id (19 MiB, 2 passes, 1 lane: OWASP's minimum) on a
//! blocking thread, in one of a bounded number of slots. Unbounded, 2,000 concurrent logins
//! ate gigabytes and starved the database pool into 500s. So:
//!
//! - at most `permits × 32` logins are in flight at once (the database reads before hashing
//!   included); the next is refused at once ([`crate::Error::Busy`]), without touching the
//!   database;
//! - at most `permits` hashes run at once, where `permits` is `login.hash_permits` or, when
//!   that is 0, `max(1, min(cores, available memory / 64 MiB))`: hashing is CPU-bound, so more
//!   than one per core only queues, and 64 MiB per slot (a hash's 19 MiB plus the request,
//!   allocator slack and a margin for the rest of the server) keeps a small machine out of swap;
//! - a login that cannot get a slot within `login.hash_wait_ms` is refused as busy with a
//!   retry time, never a failure. Setting a password (account creation) waits for its slot.
//!
//! The bound is per process, not per [`crate::App`]: it guards the machine's cores and memory,
//! which every application in the process shares. [`configure`] sets it once at start; until
//! then (tests) the automatic size and a one-second wait apply.

use std::sync::OnceLock;
use std::time::Duration;

use anxin_domain::auth::{check_new_password, PasswordContext};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{Error, Result};

/// Memory set aside per concurrent hash when sizing the bound automatically.
pub const MEMORY_PER_HASH: u64 = 64 << 20;
/// Logins in flight per hashing slot.
pub const IN_FLIGHT_PER_PERMIT: usize = 32;

fn internal(what: &str) -> Error {
    Error::Internal(format!("password hashing: {what}"))
}

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(19_456, 2, 1, None).map_err(|_| internal("parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password policy (`anxin_domain::auth::check_new_password`: length, repetition,
/// the username and centre, the common and breached list) and hashes the password.
pub async fn hash_password(password: &str, context: &PasswordContext<'_>) -> Result<String> {
    check_new_password(password, context)?;
    hash_any(password).await
}

/// Hashes a password **without the policy check**: for the demo centre's published password
/// (the one password the policy must refuse: it is printed in the README and names the system)
/// and for temporary passwords this crate draws itself.
pub async fn hash_unchecked(password: &str) -> Result<String> {
    hash_any(password).await
}

/// Hashes without the policy check, in one of the process's hashing slots.
async fn hash_any(password: &str) -> Result<String> {
    let _slot = gate().slot().await?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| internal("hash"))
    })
    .await
    .map_err(|_| internal("blocking task"))?
}
/// Argon2 working memory (19 MiB a hash) kept for reuse. Allocated and freed per hash, the
/// allocator's growing mmap threshold left it in the heap: a flood of 2,000 logins with only
/// two hashes at a time still ended at 390 MB resident; reused, the memory stays at
/// "hashing slots × 19 MiB". At most one buffer per hashing slot is ever out at once.
static ARGON2_MEMORY: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());

fn with_argon2_memory<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let mut memory = ARGON2_MEMORY
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_default();
    memory.resize(blocks, Block::default());
    let out = f(&mut memory);
    if let Ok(mut pool) = ARGON2_MEMORY.lock() {
        if pool.len() < gate().permits() {
            pool.push(memory);
        }
    }
    out
}

/// Whether `password` matches the PHC string `hash`, computed in reused memory. A malformed
/// hash never matches. Same computation as `argon2`'s `PasswordVerifier`.
fn verify_in_place(hash: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = with_argon2_memory(params.block_count(), |memory| {
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, &mut out, memory)
    });
    use subtle::ConstantTimeEq;
    computed.is_ok() && bool::from(expected.as_bytes().ct_eq(&out))
}

/// Whether `password` matches `hash` (on a blocking thread). A malformed hash never matches.
pub async fn verify_password(hash: &str, password: &str) -> Result<bool> {
    let (hash, password) = (hash.to_owned(), password.to_owned());
    tokio::task::spawn_blocking(move || verify_in_place(&hash, password.as_bytes()))
        .await
        .map_err(|_| internal("blocking task"))
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

    /// Admits one login, or refuses as busy at once when too many are in flight.
    pub fn enter(&self) -> Result<SemaphorePermit<'_>> {
        self.in_flight.try_acquire().map_err(|_| Error::Busy {
            retry_after_secs: 1,
        })
    }

    /// A hashing slot for a login: busy if none frees up within the configured wait.
    pub async fn login_slot(&self) -> Result<SemaphorePermit<'_>> {
        let busy = || Error::Busy {
            retry_after_secs: self.wait.as_secs().max(1),
        };
        match tokio::time::timeout(self.wait, self.hashing.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(internal("semaphore closed")),
            Err(_) => Err(busy()),
        }
    }

    /// A hashing slot for setting a password: waits as long as it takes.
    pub async fn slot(&self) -> Result<SemaphorePermit<'_>> {
        self.hashing
            .acquire()
            .await
            .map_err(|_| internal("semaphore closed"))
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
    use crate::sessions::NO_ACCOUNT_HASH;

    #[test]
    fn the_no_account_hash_is_well_formed_so_it_costs_a_full_verification() {
        let parsed = PasswordHash::new(NO_ACCOUNT_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).unwrap();
        let ours = argon2().unwrap();
        let cost = |p: &Params| (p.m_cost(), p.t_cost(), p.p_cost());
        assert_eq!(cost(&params), cost(ours.params()));
        assert_eq!(parsed.hash.map(|h| h.len()), Some(32));
    }

    #[tokio::test]
    async fn verifying_in_reused_memory_matches_only_the_right_password() {
        let hash = hash_any("correct-horse-battery").await.unwrap();
        for _ in 0..3 {
            assert!(verify_password(&hash, "correct-horse-battery")
                .await
                .unwrap());
            assert!(!verify_password(&hash, "correct-horse-batterx")
                .await
                .unwrap());
        }
        // The crate's own verifier agrees.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(argon2()
            .unwrap()
            .verify_password(b"correct-horse-battery", &parsed)
            .is_ok());
        assert!(!verify_password("$argon2id$v=19$garbage", "x")
            .await
            .unwrap());
        assert!(!verify_password(NO_ACCOUNT_HASH, "anything").await.unwrap());
        let other = hash.replace("m=19456", "m=8192");
        assert!(!verify_password(&other, "correct-horse-battery")
            .await
            .unwrap());
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
            Err(Error::Busy {
                retry_after_secs: 1
            })
        ));
        let flights: Vec<_> = (0..IN_FLIGHT_PER_PERMIT).map(|_| g.enter()).collect();
        assert!(flights.iter().all(Result::is_ok));
        assert!(matches!(g.enter(), Err(Error::Busy { .. })));
    }
}
