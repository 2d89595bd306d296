//! The centre calendar's storage on both backends: closures unique per site and day, audited in
//! the unit of work, scoped to their site; the dispensing facts carry the closures in a client's
//! gap (one query for the list); covered doses (a box compartment, a guest arrangement).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::clinic::orders::{DoseOrder, OrderKind};
use anxin_domain::{Code, DomainError, Role};
use anxin_storage::clinic::NewDose;
use anxin_storage::{Actor, NewUser, Store, StoreError};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 0, 30, 0).unwrap()
}

fn d(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
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
    closures_are_unique_per_site_and_day_and_audited,
    dose_facts_carry_the_closures_in_the_gap,
);

async fn manager_of(s: &Store, code: &str) -> Actor {
    let site = s
        .create_site(&Actor::cli(), code, code, now())
        .await
        .unwrap();
    let u = s
        .create_user(
            &Actor::cli(),
            NewUser {
                site_id: site.id,
                username: format!("boss.{code}").to_lowercase(),
                full_name: String::new(),
                role: Role::Manager,
                password_hash: "$argon2id$fake".into(),
                language: "en".into(),
            },
            now(),
        )
        .await
        .unwrap();
    Actor {
        user_id: Some(u.id),
        name: u.username.clone(),
        site_id: Some(site.id),
    }
}

async fn closures_are_unique_per_site_and_day_and_audited(s: &Store) {
    let a = manager_of(s, "YX01").await;
    let b = manager_of(s, "YX02").await;
    let (sa, sb) = (a.site_id.unwrap(), b.site_id.unwrap());
    let mut w = s.begin_work(&a, now()).await.unwrap();
    let first = w.add_closure(sa, d(25), "春节").await.unwrap();
    w.add_closure(sa, d(26), "").await.unwrap();
    w.commit().await.unwrap();
    // The same day again at the same centre is refused by code; another centre may close it.
    let mut w = s.begin_work(&a, now()).await.unwrap();
    match w.add_closure(sa, d(25), "again").await.unwrap_err() {
        StoreError::Domain(DomainError::Refused(p)) => {
            assert_eq!(
                (p.code, p.field.as_deref()),
                (Code::ClosureExists, Some("day"))
            )
        }
        other => panic!("{other:?}"),
    }
    drop(w);
    let mut w = s.begin_work(&b, now()).await.unwrap();
    w.add_closure(sb, d(25), "春节").await.unwrap();
    w.commit().await.unwrap();
    let listed = s.closures_from(sa, d(22)).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.day, c.note.as_str()))
            .collect::<Vec<_>>(),
        [(d(25), "春节"), (d(26), "")]
    );
    assert_eq!(listed[0].added_by.as_deref(), Some("boss.yx01"));
    assert_eq!(listed[0].added_at, now());
    assert!(s.closures_from(sa, d(26)).await.unwrap().len() == 1);
    assert_eq!(s.closure_on(sa, d(25)).await.unwrap().unwrap().id, first);
    assert!(s.closure_on(sa, d(24)).await.unwrap().is_none());
    // Another centre's closure is not found; a removal of one's own is audited.
    let mut w = s.begin_work(&b, now()).await.unwrap();
    assert!(matches!(
        w.remove_closure(sb, first).await.unwrap_err(),
        StoreError::Domain(DomainError::NotFound(_))
    ));
    drop(w);
    let mut w = s.begin_work(&a, now()).await.unwrap();
    assert_eq!(w.remove_closure(sa, first).await.unwrap().day, d(25));
    w.commit().await.unwrap();
    assert!(s.closure(sa, first).await.unwrap().is_none());
    let trail = s.recent_audit(sa, 10).await.unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"closure.add") && actions.contains(&"closure.remove"),
        "{actions:?}"
    );
    assert!(s.verify_audit().await.unwrap().is_ok());
}

async fn dose_facts_carry_the_closures_in_the_gap(s: &Store) {
    let a = manager_of(s, "YX01").await;
    let b = manager_of(s, "YX02").await;
    let site = a.site_id.unwrap();
    let c = s.create_client(&a, "YX-0001", d(1), now()).await.unwrap();
    let order = DoseOrder {
        kind: OrderKind::Induction,
        start: d(10),
        mg: 60,
        steps: vec![],
        split: 1,
        reason: String::new(),
    };
    s.add_order(&a, c.id, &order, now()).await.unwrap();
    let dose = |day, rule: &str| NewDose {
        client_id: c.id,
        day,
        portion: 0,
        mg: 60,
        site_id: site,
        guest: false,
        rule: rule.into(),
    };
    s.insert_dose(&a, &dose(d(17), "normal"), now())
        .await
        .unwrap();
    let mut w = s.begin_work(&a, now()).await.unwrap();
    // Before the order (never in a gap), in the gap, today, and ahead.
    for day in [5, 18, 19, 22, 25] {
        w.add_closure(site, d(day), "").await.unwrap();
    }
    w.commit().await.unwrap();
    // Another centre's closure is not the client's.
    let mut w = s.begin_work(&b, now()).await.unwrap();
    w.add_closure(b.site_id.unwrap(), d(20), "").await.unwrap();
    w.commit().await.unwrap();
    let facts = s.day_facts(site, d(22)).await.unwrap();
    assert_eq!(facts[0].closures, [d(18), d(19)]);
    let one = s.dose_facts(c.clone(), false, d(22)).await.unwrap();
    assert_eq!(one.closures, [d(18), d(19)]);
    // A box compartment covers the 25th.
    s.insert_dose(&a, &dose(d(25), "take_home_pending"), now())
        .await
        .unwrap();
    let covered = s.covered_doses(site, &[d(22), d(25)]).await.unwrap();
    assert_eq!(covered, [(c.id, d(25))]);
    // A guest arrangement at another centre covers the 26th and 27th.
    s.add_guest_dosing(&a, c.id, b.site_id.unwrap(), d(26), d(27), now())
        .await
        .unwrap();
    let covered = s.covered_doses(site, &[d(22), d(26), d(28)]).await.unwrap();
    assert_eq!(covered, [(c.id, d(26))]);
    assert!(s.covered_doses(site, &[]).await.unwrap().is_empty());
}
