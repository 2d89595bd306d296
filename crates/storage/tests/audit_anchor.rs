//! The audit trail against someone who can write the database: keyed entries and signed
//! checkpoints outside it. Every tampering case runs on SQLite and on PostgreSQL. Its own test
//! binary, because the audit key is process-wide (`anxin_storage::audit::use_audit_key`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::audit::{AuditRecord, Checkpoint, CHAIN_V1, CHAIN_V2, GENESIS};
use anxin_domain::Role;
use anxin_storage::audit::use_audit_key;
use anxin_storage::{Actor, AuditEvent, NewUser, Store};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

const KEY: [u8; 32] = [5; 32];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 0, 30, 0).unwrap()
}

/// A site and `n - 1` more entries: `n` in all. Keyed from the first.
async fn fill(s: &Store, n: i64) -> i64 {
    assert!(use_audit_key(KEY));
    let site = s
        .create_site(&Actor::cli(), "YX01", "Yuxi", now())
        .await
        .unwrap();
    for i in 1..n {
        s.audit(
            &Actor::cli(),
            AuditEvent::new("client.read", "client", i).site(site.id),
            now(),
        )
        .await
        .unwrap();
    }
    assert_eq!(s.audit_head().await.unwrap().seq, n);
    site.id
}

async fn checkpoint(s: &Store) -> Checkpoint {
    s.audit_checkpoint(now()).await.unwrap().unwrap()
}

async fn sql(s: &Store, q: &str) {
    sqlx::query(q).execute(s.pool()).await.unwrap();
}

async fn drop_append_only_guard(s: &Store) {
    match s.backend() {
        anxin_storage::Backend::Sqlite => {
            sql(s, "DROP TRIGGER audit_log_append_only_update").await;
            sql(s, "DROP TRIGGER audit_log_append_only_delete").await;
        }
        anxin_storage::Backend::Postgres => {
            sql(s, "DROP TRIGGER audit_log_append_only ON audit_log").await;
        }
    }
}

struct LogRow {
    record: AuditRecord,
    version: i64,
    hash: String,
}

async fn rows(s: &Store) -> Vec<LogRow> {
    sqlx::query(
        "SELECT seq, at_ms, actor_id, actor, site_id, action, record_type, record_id, reason, \
         hash, chain_version FROM audit_log ORDER BY seq",
    )
    .fetch_all(s.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| LogRow {
        record: AuditRecord {
            seq: r.get("seq"),
            at_ms: r.get("at_ms"),
            actor_id: r.get("actor_id"),
            actor: r.get("actor"),
            site_id: r.get("site_id"),
            action: r.get("action"),
            record_type: r.get("record_type"),
            record_id: r.get("record_id"),
            reason: r.get("reason"),
        },
        version: r.get("chain_version"),
        hash: r.get("hash"),
    })
    .collect()
}

/// What an attacker without the key can do after editing entries: recompute every hash from
/// `from` on (unkeyed, or keyed with a guessed key) and move the head to match.
async fn recompute(s: &Store, from: i64, guessed_key: Option<[u8; 32]>) {
    let mut prev = GENESIS;
    for r in rows(s).await {
        if r.record.seq < from {
            hex::decode_to_slice(&r.hash, &mut prev).unwrap();
            continue;
        }
        let (version, hash) = match guessed_key {
            None => (CHAIN_V1, r.record.chain_hash(&prev)),
            Some(k) => (CHAIN_V2, r.record.keyed_chain_hash(&prev, &k)),
        };
        sqlx::query(
            "UPDATE audit_log SET prev_hash = $1, hash = $2, chain_version = $3 WHERE seq = $4",
        )
        .bind(hex::encode(prev))
        .bind(hex::encode(hash))
        .bind(version)
        .bind(r.record.seq)
        .execute(s.pool())
        .await
        .unwrap();
        prev = hash;
    }
    let last = rows(s).await.last().map_or(0, |r| r.record.seq);
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(last)
        .bind(hex::encode(prev))
        .execute(s.pool())
        .await
        .unwrap();
}

async fn intact_keyed_log_verifies_against_its_checkpoints(s: &Store) {
    fill(s, 6).await;
    let early = checkpoint(s).await;
    assert!(rows(s).await.iter().all(|r| r.version == CHAIN_V2));
    s.audit(&Actor::cli(), AuditEvent::new("x", "y", 1), now())
        .await
        .unwrap();
    let late = checkpoint(s).await;
    assert_eq!(late.seq, 7);
    // A checkpoint goes through its file text unchanged.
    let late = Checkpoint::parse(&late.to_text()).unwrap();
    assert_eq!(s.verify_audit_against(&[early, late]).await.unwrap(), Ok(7));
}

async fn altered_and_recomputed_is_found_without_the_key(s: &Store) {
    fill(s, 8).await;
    let cp = checkpoint(s).await;
    drop_append_only_guard(s).await;
    sql(
        s,
        "UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 3",
    )
    .await;
    // Recomputed unkeyed (the old, public scheme)…
    recompute(s, 3, None).await;
    let broken = s.verify_audit().await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 3, "{broken}");
    // …or keyed with a guess: found by the chain alone, and by the checkpoint too.
    recompute(s, 3, Some([6; 32])).await;
    let broken = s.verify_audit().await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 3, "{broken}");
    assert!(broken.problem.contains("altered"), "{broken}");
    assert!(s.verify_audit_against(&[cp]).await.unwrap().is_err());
}

async fn a_cut_tail_with_the_head_moved_back_is_found_by_the_checkpoint(s: &Store) {
    fill(s, 8).await;
    let cp = checkpoint(s).await;
    drop_append_only_guard(s).await;
    sql(s, "DELETE FROM audit_log WHERE seq > 5").await;
    recompute(s, 6, None).await; // moves the head back to entry 5; nothing to rehash
                                 // The chain alone cannot tell: it is a shorter but consistent log.
    assert_eq!(s.verify_audit().await.unwrap(), Ok(5));
    let broken = s.verify_audit_against(&[cp]).await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 6, "{broken}");
    assert!(
        broken.problem.contains("signed checkpoint records entry 8"),
        "{broken}"
    );
}

async fn a_wiped_log_is_found_by_the_checkpoint(s: &Store) {
    fill(s, 4).await;
    let cp = checkpoint(s).await;
    drop_append_only_guard(s).await;
    sql(s, "DELETE FROM audit_log").await;
    recompute(s, 1, None).await; // head back to 0 and the genesis hash
    assert_eq!(s.verify_audit().await.unwrap(), Ok(0));
    let broken = s.verify_audit_against(&[cp]).await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 1, "{broken}");
}

async fn reordered_entries_are_found(s: &Store) {
    fill(s, 6).await;
    let cp = checkpoint(s).await;
    drop_append_only_guard(s).await;
    // Entries 3 and 4 change places (everything but their position).
    let r = rows(s).await;
    for (at, from) in [(3usize, 4usize), (4, 3)] {
        let src = &r[from - 1].record;
        sqlx::query(
            "UPDATE audit_log SET at_ms = $1, action = $2, record_id = $3, reason = $4 \
             WHERE seq = $5",
        )
        .bind(src.at_ms)
        .bind(src.action.clone())
        .bind(src.record_id.clone())
        .bind(src.reason.clone())
        .bind(at as i64)
        .execute(s.pool())
        .await
        .unwrap();
    }
    let broken = s.verify_audit().await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 3, "{broken}");
    // Rehashing them in their new order needs the key.
    recompute(s, 3, None).await;
    assert_eq!(s.verify_audit().await.unwrap().unwrap_err().seq, 3);
    assert!(s.verify_audit_against(&[cp]).await.unwrap().is_err());
}

async fn a_forged_row_after_the_head_raises_the_alarm_and_writes_keep_working(s: &Store) {
    let site = fill(s, 5).await;
    let head = s.audit_head().await.unwrap();
    sqlx::query(
        "INSERT INTO audit_log (seq, at_ms, actor_id, actor, site_id, action, record_type, \
         record_id, reason, prev_hash, hash, chain_version) \
         VALUES ($1, 0, NULL, 'cli', NULL, 'staff.create', 'user', '99', '', $2, $3, 2)",
    )
    .bind(head.seq + 1)
    .bind(hex::encode(head.hash))
    .bind("ab".repeat(32))
    .execute(s.pool())
    .await
    .unwrap();
    let broken = s.verify_audit().await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 6, "{broken}");
    assert!(broken.problem.contains("beyond the chain head"), "{broken}");
    // Writes (a login is one) still succeed: they step over the intruder.
    s.audit(&Actor::cli(), AuditEvent::new("login", "user", 1), now())
        .await
        .unwrap();
    let u = s
        .create_user(
            &Actor::cli(),
            NewUser {
                site_id: site,
                username: "nurse.li".into(),
                full_name: String::new(),
                role: Role::Dispenser,
                password_hash: "$argon2id$fake".into(),
                language: "en".into(),
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(u.username, "nurse.li");
    assert_eq!(s.audit_head().await.unwrap().seq, 8);
    // And the verifier names the forged entry, now inside the chain.
    let broken = s.verify_audit().await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 6, "{broken}");
    assert!(broken.problem.contains("altered"), "{broken}");
}

async fn a_forged_checkpoint_is_refused(s: &Store) {
    fill(s, 5).await;
    let mut cp = checkpoint(s).await;
    cp.seq = 3;
    let broken = s.verify_audit_against(&[cp]).await.unwrap().unwrap_err();
    assert!(
        broken.problem.contains("signature does not match"),
        "{broken}"
    );
    let other = Checkpoint::sign(s.audit_head().await.unwrap(), 0, &[9; 32]);
    assert!(s.verify_audit_against(&[other]).await.unwrap().is_err());
}

/// A database from before the key: its unkeyed entries stay, keyed ones chain onto them, and
/// an unkeyed entry after keyed ones is refused.
async fn an_old_unkeyed_chain_continues_keyed(s: &Store) {
    assert!(use_audit_key(KEY));
    let old = AuditRecord {
        seq: 1,
        at_ms: 1_700_000_000_000,
        actor_id: None,
        actor: "cli".into(),
        site_id: None,
        action: "site.create".into(),
        record_type: "site".into(),
        record_id: "1".into(),
        reason: String::new(),
    };
    let hash = old.chain_hash(&GENESIS);
    sqlx::query(
        "INSERT INTO audit_log (seq, at_ms, actor_id, actor, site_id, action, record_type, \
         record_id, reason, prev_hash, hash) VALUES (1, $1, NULL, 'cli', NULL, 'site.create', \
         'site', '1', '', $2, $3)",
    )
    .bind(old.at_ms)
    .bind(hex::encode(GENESIS))
    .bind(hex::encode(hash))
    .execute(s.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE audit_head SET seq = 1, hash = $1 WHERE id = 1")
        .bind(hex::encode(hash))
        .execute(s.pool())
        .await
        .unwrap();
    for _ in 0..3 {
        s.audit(&Actor::cli(), AuditEvent::new("x", "y", 1), now())
            .await
            .unwrap();
    }
    let versions: Vec<i64> = rows(s).await.iter().map(|r| r.version).collect();
    assert_eq!(versions, [CHAIN_V1, CHAIN_V2, CHAIN_V2, CHAIN_V2]);
    let cp = checkpoint(s).await;
    assert_eq!(s.verify_audit_against(&[cp]).await.unwrap(), Ok(4));
    // Downgrading the last entry to an unkeyed hash is found.
    drop_append_only_guard(s).await;
    recompute(s, 4, None).await;
    let broken = s.verify_audit().await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 4, "{broken}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() {
                let db = anxin_storage::testing::TestDb::sqlite().await;
                super::$name(&db.store).await;
                db.cleanup().await;
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() {
                let db = anxin_storage::testing::TestDb::postgres().await;
                super::$name(&db.store).await;
                db.cleanup().await;
            })*
        }
    };
}

on_both_backends!(
    intact_keyed_log_verifies_against_its_checkpoints,
    altered_and_recomputed_is_found_without_the_key,
    a_cut_tail_with_the_head_moved_back_is_found_by_the_checkpoint,
    a_wiped_log_is_found_by_the_checkpoint,
    reordered_entries_are_found,
    a_forged_row_after_the_head_raises_the_alarm_and_writes_keep_working,
    a_forged_checkpoint_is_refused,
    an_old_unkeyed_chain_continues_keyed,
);
