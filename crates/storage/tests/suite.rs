//! The storage suite: every scenario runs once on SQLite and once on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::auth::{account_key, LoginPolicy, Strikes};
use anxin_domain::{DomainError, Role};
use anxin_storage::users::LoginAttempt;
use anxin_storage::{Actor, AuditEvent, NewUser, Session, Store, StoreError};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 0, 30, 0).unwrap()
}

fn new_user(site_id: i64, name: &str, role: Role) -> NewUser {
    NewUser {
        site_id,
        username: name.into(),
        full_name: String::new(),
        role,
        password_hash: "$argon2id$fake".into(),
        language: "en".into(),
    }
}

fn staff(u: &anxin_storage::User) -> Actor {
    Actor {
        user_id: Some(u.id),
        name: u.username.clone(),
        site_id: Some(u.site_id),
    }
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
    sites_are_unique_by_code,
    users_round_trip_and_duplicates_conflict,
    clients_are_scoped_to_their_site_and_reads_are_audited,
    login_standing_and_sessions,
    audit_chain_verifies_and_detects_tampering,
    failed_write_leaves_nothing_behind,
    search_lists_only_own_site,
    doses_are_unique_per_client_day_and_portion,
    clinic_facts_and_stock_position,
    identity_round_trips_encrypted,
    photos_are_sealed_replaced_and_read_at_their_site_only,
    readmission_keeps_the_first_episode_and_cit_ends_one,
);

async fn sites_are_unique_by_code(s: &Store) {
    let a = s
        .create_site(&Actor::cli(), "YX01", "Yuxi Ping An", now())
        .await
        .unwrap();
    assert_eq!(s.site_by_code("YX01").await.unwrap(), a);
    let dup = s
        .create_site(&Actor::cli(), "YX01", "Other", now())
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Domain(DomainError::Conflict(m)) if m.contains("YX01")));
    let bad = s
        .create_site(&Actor::cli(), "yx", "x", now())
        .await
        .unwrap_err();
    assert!(bad.to_string().starts_with("code: character `y`"));
    assert!(matches!(
        s.site_by_code("NOPE").await,
        Err(StoreError::Domain(DomainError::NotFound(_)))
    ));
    assert_eq!(s.list_sites().await.unwrap().len(), 1);
}

async fn users_round_trip_and_duplicates_conflict(s: &Store) {
    let site = s
        .create_site(&Actor::cli(), "KM01", "Kunming", now())
        .await
        .unwrap();
    let u = s
        .create_user(
            &Actor::cli(),
            new_user(site.id, "nurse.li", Role::Dispenser),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(u.role, Role::Dispenser);
    assert!(u.active);
    let auth = s.user_auth("nurse.li").await.unwrap().unwrap();
    assert_eq!(auth.user, u);
    assert_eq!(auth.password_hash, "$argon2id$fake");
    assert!(
        !format!("{auth:?}").contains("fake"),
        "hash must not show in Debug"
    );
    let dup = s
        .create_user(
            &Actor::cli(),
            new_user(site.id, "nurse.li", Role::Manager),
            now(),
        )
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("already taken"));
    let bad_lang = NewUser {
        language: "fr".into(),
        ..new_user(site.id, "dr.wang", Role::Prescriber)
    };
    let err = s
        .create_user(&Actor::cli(), bad_lang, now())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("language:"));
    s.set_language(u.id, "zh-CN").await.unwrap();
    assert_eq!(s.user(u.id).await.unwrap().language, "zh-CN");
    assert_eq!(s.users_of_site(site.id).await.unwrap().len(), 1);
}

async fn clients_are_scoped_to_their_site_and_reads_are_audited(s: &Store) {
    let a = s
        .create_site(&Actor::cli(), "AAA", "A", now())
        .await
        .unwrap();
    let b = s
        .create_site(&Actor::cli(), "BBB", "B", now())
        .await
        .unwrap();
    let ua = s
        .create_user(
            &Actor::cli(),
            new_user(a.id, "nurse.a", Role::Dispenser),
            now(),
        )
        .await
        .unwrap();
    let ub = s
        .create_user(
            &Actor::cli(),
            new_user(b.id, "nurse.b", Role::Dispenser),
            now(),
        )
        .await
        .unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let c = s
        .create_client(&staff(&ub), "B-0001", day, now())
        .await
        .unwrap();
    assert_eq!(c.site_id, b.id);
    assert_eq!(c.enrolled_on, day);

    let denied = s
        .read_client(&staff(&ua), c.id, "dosing", now())
        .await
        .unwrap_err();
    // Refused as a record that does not exist (and the attempt is in the trail).
    assert!(matches!(
        denied,
        StoreError::Domain(DomainError::NotFound(_))
    ));
    let read = s
        .read_client(&staff(&ub), c.id, "dosing", now())
        .await
        .unwrap();
    assert_eq!(read, c);

    let trail = s
        .audit_of_record("client", &c.id.to_string())
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = trail
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("nurse.b", "client.create"),
            ("nurse.a", "client.read.denied"),
            ("nurse.b", "client.read")
        ]
    );
    let missing = s
        .read_client(&staff(&ub), 999_999, "x", now())
        .await
        .unwrap_err();
    assert!(matches!(
        missing,
        StoreError::Domain(DomainError::NotFound(_))
    ));
}

async fn login_standing_and_sessions(s: &Store) {
    let site = s
        .create_site(&Actor::cli(), "YX01", "Yuxi", now())
        .await
        .unwrap();
    let u = s
        .create_user(
            &Actor::cli(),
            new_user(site.id, "dr.wang", Role::Prescriber),
            now(),
        )
        .await
        .unwrap();
    let p = LoginPolicy {
        max_failures: 10,
        ..LoginPolicy::default()
    };
    let key = account_key("dr.wang");
    let from = |address| LoginAttempt {
        username: "dr.wang",
        account_key: &key,
        address,
    };
    // Seven failures from one address, three from another: counted per pair, per address and
    // for the account as a whole.
    let mut standing = p.after_success();
    for i in 0..10 {
        let addr = if i < 7 { "10.0.0.1" } else { "10.0.0.2" };
        standing = s
            .login_failed(Some(&u), &from(addr), &p, "wrong password", now())
            .await
            .unwrap();
    }
    assert_eq!(standing.failed_logins, 10);
    let stored = s.user(u.id).await.unwrap().standing;
    assert_eq!(stored, standing);
    assert_eq!(stored.locked_until, Some(now() + Duration::minutes(30)));
    let t = s.login_throttles(&key, "10.0.0.1").await.unwrap();
    let count = |x: Option<Strikes>| x.map(|x| x.failures);
    assert_eq!(count(t.pair), Some(7));
    assert_eq!(count(t.account), Some(10));
    assert_eq!(count(t.address), Some(7));
    let t2 = s.login_throttles(&key, "10.0.0.2").await.unwrap();
    assert_eq!((count(t2.pair), count(t2.address)), (Some(3), Some(3)));
    // An unknown username is counted the same way, under its own key.
    let ghost = account_key("ghost");
    let g = LoginAttempt {
        username: "ghost",
        account_key: &ghost,
        address: "10.0.0.2",
    };
    let gs = s
        .login_failed(None, &g, &p, "unknown username", now())
        .await
        .unwrap();
    assert_eq!(gs.failed_logins, 1);
    let t2 = s.login_throttles(&key, "10.0.0.2").await.unwrap();
    assert_eq!(count(t2.address), Some(4));
    // A day later the counts start again.
    let later = s
        .login_failed(
            None,
            &g,
            &p,
            "unknown username",
            now() + Duration::hours(24),
        )
        .await
        .unwrap();
    assert_eq!(later.failed_logins, 1);
    // A manager's unlock clears every count of the account.
    s.unlock_user(&Actor::cli(), &u, now()).await.unwrap();
    let t = s.login_throttles(&key, "10.0.0.1").await.unwrap();
    assert_eq!((t.pair, t.account), (None, None));
    for _ in 0..2 {
        s.login_failed(Some(&u), &from("10.0.0.1"), &p, "wrong password", now())
            .await
            .unwrap();
    }

    let session = Session {
        token_hash: "ab".repeat(32),
        user_id: u.id,
        csrf_token: "csrf".into(),
        created_at: now(),
        last_seen_at: now(),
    };
    s.login_succeeded(&u, &session, "10.0.0.1", now())
        .await
        .unwrap();
    assert_eq!(s.user(u.id).await.unwrap().standing, p.after_success());
    let t = s.login_throttles(&key, "10.0.0.1").await.unwrap();
    assert_eq!((t.pair, t.account), (None, None));
    assert_eq!(
        s.session(&session.token_hash).await.unwrap(),
        Some(session.clone())
    );
    s.touch_session(&session.token_hash, now() + Duration::minutes(5))
        .await
        .unwrap();
    let touched = s.session(&session.token_hash).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, now() + Duration::minutes(5));
    // Deactivating an account ends its sessions.
    s.set_user_active(&Actor::cli(), &u, false, now())
        .await
        .unwrap();
    assert_eq!(s.session(&session.token_hash).await.unwrap(), None);
    assert!(!s.user(u.id).await.unwrap().active);
}

async fn audit_chain_verifies_and_detects_tampering(s: &Store) {
    let site = s
        .create_site(&Actor::cli(), "YX01", "Yuxi", now())
        .await
        .unwrap();
    for i in 0..5 {
        s.audit(
            &Actor::cli(),
            AuditEvent::new("test.event", "site", site.id).reason(format!("#{i}")),
            now(),
        )
        .await
        .unwrap();
    }
    assert_eq!(s.verify_audit().await.unwrap(), Ok(6));
    assert_eq!(s.audit_head().await.unwrap().seq, 6);

    // The database itself refuses to change the log...
    let refused = sqlx::query("UPDATE audit_log SET reason = 'x' WHERE seq = 3")
        .execute(s.pool())
        .await;
    assert!(refused.is_err(), "audit_log must be append-only");
    // ...and someone who removes that guard is still caught by the chain.
    drop_append_only_guard(s).await;
    sqlx::query("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 3")
        .execute(s.pool())
        .await
        .unwrap();
    let broken = s.verify_audit().await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 3);
    assert!(broken.problem.contains("altered"));
}

async fn drop_append_only_guard(s: &Store) {
    match s.backend() {
        anxin_storage::Backend::Sqlite => {
            sqlx::query("DROP TRIGGER audit_log_append_only_update")
                .execute(s.pool())
                .await
                .unwrap();
            sqlx::query("DROP TRIGGER audit_log_append_only_delete")
                .execute(s.pool())
                .await
                .unwrap();
        }
        anxin_storage::Backend::Postgres => {
            sqlx::query("DROP TRIGGER audit_log_append_only ON audit_log")
                .execute(s.pool())
                .await
                .unwrap();
        }
    }
}

async fn failed_write_leaves_nothing_behind(s: &Store) {
    let site = s
        .create_site(&Actor::cli(), "YX01", "Yuxi", now())
        .await
        .unwrap();
    let head = s.audit_head().await.unwrap();
    // The second user fails on the unique username: neither a row nor an audit entry stays.
    s.create_user(
        &Actor::cli(),
        new_user(site.id, "same.name", Role::Counsellor),
        now(),
    )
    .await
    .unwrap();
    let head_after_first = s.audit_head().await.unwrap();
    assert_eq!(head_after_first.seq, head.seq + 1);
    assert!(s
        .create_user(
            &Actor::cli(),
            new_user(site.id, "same.name", Role::Manager),
            now()
        )
        .await
        .is_err());
    assert_eq!(s.audit_head().await.unwrap(), head_after_first);
    assert_eq!(s.users_of_site(site.id).await.unwrap().len(), 1);
    assert_eq!(s.verify_audit().await.unwrap(), Ok(head_after_first.seq));
}

async fn search_lists_only_own_site(s: &Store) {
    let a = s
        .create_site(&Actor::cli(), "AAA", "A", now())
        .await
        .unwrap();
    let b = s
        .create_site(&Actor::cli(), "BBB", "B", now())
        .await
        .unwrap();
    let ua = s
        .create_user(
            &Actor::cli(),
            new_user(a.id, "peer.a", Role::PeerEducator),
            now(),
        )
        .await
        .unwrap();
    let ub = s
        .create_user(
            &Actor::cli(),
            new_user(b.id, "peer.b", Role::PeerEducator),
            now(),
        )
        .await
        .unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    for uic in ["A-0001", "A-0002", "A-1001"] {
        s.create_client(&staff(&ua), uic, day, now()).await.unwrap();
    }
    s.create_client(&staff(&ub), "B-0001", day, now())
        .await
        .unwrap();
    let all_a = s.search_clients(&staff(&ua), "", 100, now()).await.unwrap();
    assert_eq!(
        all_a.iter().map(|c| c.uic.as_str()).collect::<Vec<_>>(),
        ["A-0001", "A-0002", "A-1001"]
    );
    let found = s
        .search_clients(&staff(&ua), "a-00", 100, now())
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert!(s
        .search_clients(&staff(&ua), "B-0001", 100, now())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.count_clients(a.id).await.unwrap(), 3);
}

async fn clinic_setup(s: &Store) -> (Actor, anxin_storage::Client) {
    let site = s
        .create_site(&Actor::cli(), "YX01", "Yuxi", now())
        .await
        .unwrap();
    let u = s
        .create_user(
            &Actor::cli(),
            new_user(site.id, "dr.li", Role::Prescriber),
            now(),
        )
        .await
        .unwrap();
    let actor = staff(&u);
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let c = s
        .create_client(&actor, "YX-0001", day, now())
        .await
        .unwrap();
    (actor, c)
}

fn dose(
    c: &anxin_storage::Client,
    day: NaiveDate,
    portion: u8,
    mg: u32,
) -> anxin_storage::clinic::NewDose {
    anxin_storage::clinic::NewDose {
        client_id: c.id,
        day,
        portion,
        mg,
        site_id: c.site_id,
        guest: false,
        rule: "normal".into(),
    }
}

async fn doses_are_unique_per_client_day_and_portion(s: &Store) {
    use anxin_storage::clinic::DoseWrite;
    let (actor, c) = clinic_setup(s).await;
    let day = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    assert!(matches!(
        s.insert_dose(&actor, &dose(&c, day, 0, 60), now())
            .await
            .unwrap(),
        DoseWrite::Given(_)
    ));
    let later = now() + Duration::minutes(30);
    match s
        .insert_dose(&actor, &dose(&c, day, 0, 60), later)
        .await
        .unwrap()
    {
        DoseWrite::AlreadyGiven(first) => assert_eq!(first.given_at, now()),
        other => panic!("second dose written: {other:?}"),
    }
    assert!(matches!(
        s.insert_dose(&actor, &dose(&c, day, 1, 30), now())
            .await
            .unwrap(),
        DoseWrite::Given(_)
    ));
    let all = s.doses_between(c.id, day, day).await.unwrap();
    assert_eq!(all.iter().map(|d| d.mg).sum::<u32>(), 90);
    assert!(s.verify_audit().await.unwrap().is_ok());
}

async fn clinic_facts_and_stock_position(s: &Store) {
    use anxin_domain::clinic::orders::{DoseOrder, OrderKind};
    use anxin_domain::clinic::stock::{CloseOut, Receipt};
    let (actor, c) = clinic_setup(s).await;
    let d = |n| NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
    let order = DoseOrder {
        kind: OrderKind::Induction,
        start: d(18),
        mg: 60,
        steps: vec![],
        split: 1,
        reason: String::new(),
    };
    s.add_order(&actor, c.id, &order, now()).await.unwrap();
    for day in [18, 19, 20] {
        s.insert_dose(&actor, &dose(&c, d(day), 0, 60), now())
            .await
            .unwrap();
    }
    s.add_review(&actor, c.id, d(21), "seen", now())
        .await
        .unwrap();
    let facts = s.day_facts(c.site_id, d(22)).await.unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].orders, vec![order]);
    assert_eq!(facts[0].last_dose_before, Some(d(20)));
    assert_eq!(facts[0].last_review, Some(d(21)));
    assert!(facts[0].doses_today.is_empty());

    let receipt = Receipt {
        bottles: 2,
        ml_per_bottle: 500.0,
        concentration_mg_per_ml: 1.0,
        lot: "L1".into(),
    };
    s.add_stock_receipt(&actor, d(18), &receipt, now())
        .await
        .unwrap();
    let (last, received, dosed) = s.stock_position(c.site_id, d(20), cst()).await.unwrap();
    assert_eq!((last, received, dosed), (None, 1000.0, 180.0));
    let close = CloseOut {
        expected_ml: 820.0,
        measured_ml: 818.5,
        variance_ml: -1.5,
        flagged: false,
    };
    s.save_closeout(&actor, d(20), &close, "", now())
        .await
        .unwrap();
    let (last, received, dosed) = s.stock_position(c.site_id, d(22), cst()).await.unwrap();
    assert_eq!(last.unwrap().measured_ml, 818.5);
    assert_eq!((received, dosed), (0.0, 0.0));
    assert!(s
        .save_closeout(&actor, d(20), &close, "", now())
        .await
        .is_err());
}

async fn identity_round_trips_encrypted(s: &Store) {
    use anxin_storage::clinic::Identity;
    use anxin_storage::vault::Vault;
    let (actor, c) = clinic_setup(s).await;
    let vault = Vault::from_key([5; 32]);
    let id = Identity {
        name: Some("Zhang San".into()),
        phone: Some("13800138000".into()),
        ..Identity::default()
    };
    s.set_identity(&actor, c.id, &id, &vault, now())
        .await
        .unwrap();
    assert_eq!(
        s.read_identity(&actor, c.id, "test", &vault, now())
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        s.find_by_name(&actor, "zhang  san", &vault, now())
            .await
            .unwrap()
            .len(),
        1
    );
    let other_key = Vault::from_key([6; 32]);
    assert!(s
        .read_identity(&actor, c.id, "test", &other_key, now())
        .await
        .is_err());
}

async fn photos_are_sealed_replaced_and_read_at_their_site_only(s: &Store) {
    use anxin_storage::vault::Vault;
    let (actor, c) = clinic_setup(s).await;
    let vault = Vault::from_key([5; 32]);
    assert!(s.photo_info(&actor, c.id).await.unwrap().is_none());
    assert!(s
        .read_photo(&actor, c.id, "window", &vault, now())
        .await
        .unwrap()
        .is_none());
    for (kind, image) in [
        ("image/png", &b"\x89PNG\r\n\x1a\nfirst"[..]),
        ("image/jpeg", &b"\xff\xd8\xffsecond"[..]),
    ] {
        let mut work = s.begin_work(&actor, now()).await.unwrap();
        work.set_photo(c.id, kind, image, &vault).await.unwrap();
        work.commit().await.unwrap();
    }
    // One photo, the latest, only as ciphertext.
    let rows: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT sealed, media_type FROM client_photos")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "image/jpeg");
    assert!(!rows[0].0.windows(6).any(|w| w == b"second"));
    let p = s
        .read_photo(&actor, c.id, "window", &vault, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.image, b"\xff\xd8\xffsecond");
    assert!(
        !format!("{p:?}").contains("second"),
        "no image bytes in Debug"
    );
    let info = s.photo_info(&actor, c.id).await.unwrap().unwrap();
    assert_eq!(info.taken_by.as_deref(), Some("dr.li"));
    let reads: Vec<(String,)> = sqlx::query_as(
        "SELECT reason FROM audit_log WHERE action = 'client.photo.read' ORDER BY seq",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    assert_eq!(reads, [("window".to_owned(),)]);
    // Another centre's staff: not found, as a client that does not exist.
    let other = s
        .create_site(&Actor::cli(), "ZZ02", "Elsewhere", now())
        .await
        .unwrap();
    let u = s
        .create_user(
            &Actor::cli(),
            new_user(other.id, "nurse.zz", Role::Dispenser),
            now(),
        )
        .await
        .unwrap();
    let err = s
        .read_photo(&staff(&u), c.id, "window", &vault, now())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        anxin_storage::StoreError::Domain(anxin_domain::DomainError::NotFound(_))
    ));
}

/// China Standard Time, the demo centre's offset.
fn cst() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

/// The client's recorded episodes: (site, started, ended, end kind).
async fn episodes_of(
    s: &Store,
    client_id: i64,
) -> Vec<(i64, String, Option<String>, Option<String>)> {
    use sqlx::Row;
    sqlx::query(
        "SELECT site_id, started_on, ended_on, end_kind FROM episodes \
         WHERE client_id = $1 ORDER BY id",
    )
    .bind(client_id)
    .fetch_all(s.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<i64, _>(0),
            r.get::<String, _>(1),
            r.get::<Option<String>, _>(2),
            r.get::<Option<String>, _>(3),
        )
    })
    .collect()
}

async fn readmission_keeps_the_first_episode_and_cit_ends_one(s: &Store) {
    use anxin_domain::clinic::episodes::{Episode, EpisodeEnd};
    use anxin_domain::clinic::stage::Stage;
    use anxin_domain::indicators::{compute, Period};
    let (actor, c) = clinic_setup(s).await;
    let d = |m, n| NaiveDate::from_ymd_opt(2026, m, n).unwrap();
    let site = c.site_id;
    let some = |x: &str| Some(x.to_owned());
    assert_eq!(
        episodes_of(s, c.id).await,
        vec![(site, "2026-11-01".into(), None, None)]
    );
    for day in 1..=3 {
        s.insert_dose(&actor, &dose(&c, d(11, day), 0, 60), now())
            .await
            .unwrap();
    }
    s.discharge(&actor, c.id, d(11, 10), "moved away", now())
        .await
        .unwrap();
    let mut w = s.begin_work(&actor, now()).await.unwrap();
    let cw = w.client_for_write(c.id).await.unwrap();
    w.readmit(&cw, d(11, 20)).await.unwrap();
    w.commit().await.unwrap();
    // The first episode keeps its discharge; the readmission opened a second one.
    assert_eq!(
        episodes_of(s, c.id).await,
        vec![
            (
                site,
                "2026-11-01".into(),
                some("2026-11-10"),
                some("discharge")
            ),
            (site, "2026-11-20".into(), None, None),
        ]
    );
    // An ended episode is never overwritten, nor deleted.
    assert!(
        sqlx::query("UPDATE episodes SET ended_on = '2026-12-01' WHERE ended_on IS NOT NULL")
            .execute(s.pool())
            .await
            .is_err()
    );
    assert!(sqlx::query("DELETE FROM episodes")
        .execute(s.pool())
        .await
        .is_err());
    // Compulsory isolated treatment ends the second episode.
    s.set_stage(&actor, c.id, Stage::CompulsoryIsolated, d(11, 25), now())
        .await
        .unwrap();
    assert_eq!(
        episodes_of(s, c.id).await[1],
        (site, "2026-11-20".into(), some("2026-11-25"), some("cit"))
    );
    // The report reads both episodes: in November the client is counted once in treatment,
    // not in MMT on the 30th, and the 3 doses (180 mg) are the month's.
    let nov = Period::new(d(11, 1), d(11, 30)).unwrap();
    let inputs = s.indicator_inputs(Some(site), &nov).await.unwrap();
    assert_eq!(inputs.clients.len(), 1);
    assert_eq!(
        inputs.clients[0].episodes,
        vec![
            Episode::open(d(11, 1)).ended(d(11, 10), EpisodeEnd::Discharge),
            Episode::open(d(11, 20)).ended(d(11, 25), EpisodeEnd::Cit),
        ]
    );
    assert_eq!(inputs.clients[0].dose_mg, 180);
    let f = compute(&nov, &inputs);
    let n = |id: &str| f.iter().find(|x| x.id == id).unwrap().numerator.total();
    assert_eq!(n("mmt_clients"), 0);
    assert_eq!(n("mean_attendance"), 3);
    assert_eq!(n("nat_mean_daily_dose"), 180);
}
