//! The SMS outbox scenarios: every one runs once on SQLite and once on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use anxin_domain::sms::{MessageState, Report};
use anxin_domain::DomainError;
use anxin_storage::outbox::{AttemptResult, NewMessage, SendOutcome};
use anxin_storage::{Actor, Store, StoreError};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 0, 30, 0).unwrap()
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
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() {
                let db = anxin_storage::testing::TestDb::postgres().await;
                super::$name(&db.store).await;
                db.cleanup().await;
            })*
        }
    };
}

on_both_backends!(
    enqueue_is_idempotent_validated_and_audited,
    concurrent_claims_never_share_a_message,
    a_worker_killed_mid_send_is_resolved_by_a_report_not_a_resend,
    reports_only_move_forward_and_duplicates_are_kept,
    outcomes_retry_fail_and_ignore_stale_attempts,
    batch_enqueue_listing_and_overdue_alerts,
);

async fn site(s: &Store) -> i64 {
    s.create_site(&Actor::cli(), "YX01", "Yuxi", now())
        .await
        .unwrap()
        .id
}

fn msg(site_id: i64, key: &str) -> NewMessage {
    NewMessage {
        idempotency_key: key.into(),
        client_id: Some(7),
        site_id,
        recipient_e164: "13812345678".into(),
        text: "Your code for today: 12345678".into(),
        sealed_text: None,
        not_before: now(),
        expires_at: now() + Duration::hours(12),
    }
}

async fn enqueue_is_idempotent_validated_and_audited(s: &Store) {
    let site = site(s).await;
    let (a, created) = s
        .enqueue_sms(&Actor::cli(), msg(site, "code:1:0"), now())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(a.recipient, "+8613812345678");
    assert_eq!(a.state, MessageState::Queued);
    assert_eq!(a.attempts, 0);
    let (b, created) = s
        .enqueue_sms(&Actor::cli(), msg(site, "code:1:0"), now())
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(a, b);
    let bad = NewMessage {
        recipient_e164: "12345".into(),
        ..msg(site, "code:1:1")
    };
    let e = s.enqueue_sms(&Actor::cli(), bad, now()).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Domain(DomainError::Invalid { field, .. }) if field == "recipient"),
        "{e}"
    );
    let bad = NewMessage {
        text: String::new(),
        ..msg(site, "code:1:1")
    };
    assert!(s
        .enqueue_sms(&Actor::cli(), bad, now())
        .await
        .unwrap_err()
        .to_string()
        .starts_with("text:"));
    let trail = s.audit_of_record("sms", &a.id.to_string()).await.unwrap();
    assert_eq!(trail.len(), 1, "one audit entry, not one per enqueue");
    assert_eq!(trail[0].action, "sms.enqueue");
    assert!(!trail[0].reason.contains("13812345678"));
    assert!(s.verify_audit().await.unwrap().is_ok());
    // The number and text do not show in debug output.
    let dbg = format!("{a:?}");
    assert!(!dbg.contains("12345678") || dbg.contains("****"), "{dbg}");
    assert!(!dbg.contains("code for today"));
}

async fn concurrent_claims_never_share_a_message(s: &Store) {
    let site = site(s).await;
    let msgs: Vec<NewMessage> = (0..60).map(|i| msg(site, &format!("k{i}"))).collect();
    assert_eq!(
        s.enqueue_sms_batch(&Actor::cli(), &msgs, now())
            .await
            .unwrap(),
        60
    );
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s
                    .claim_sms(&format!("w{w}"), now(), 7, Duration::seconds(30))
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                for m in got {
                    assert_eq!(m.state, MessageState::Sending);
                    assert_eq!(m.attempts, 1);
                    mine.push(m.id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 60, "every message claimed once");
    assert_eq!(unique.len(), 60, "no message claimed twice");
    // Messages not yet due are not claimed.
    let later = NewMessage {
        sealed_text: None,
        not_before: now() + Duration::hours(1),
        ..msg(site, "later")
    };
    s.enqueue_sms(&Actor::cli(), later, now()).await.unwrap();
    assert!(s
        .claim_sms("w", now(), 10, Duration::seconds(30))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.claim_sms("w", now() + Duration::hours(1), 10, Duration::seconds(30))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_worker_killed_mid_send_is_resolved_by_a_report_not_a_resend(s: &Store) {
    let site = site(s).await;
    let (a, _) = s
        .enqueue_sms(&Actor::cli(), msg(site, "a"), now())
        .await
        .unwrap();
    let (b, _) = s
        .enqueue_sms(&Actor::cli(), msg(site, "b"), now())
        .await
        .unwrap();
    let lease = Duration::seconds(30);
    let reconcile = Duration::seconds(60);
    let claimed = s.claim_sms("dead-worker", now(), 10, lease).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // The worker dies here: nothing recorded. While the lease runs, nothing moves.
    let r = s
        .recover_sms(now() + Duration::seconds(10), reconcile, 8)
        .await
        .unwrap();
    assert_eq!(r.uncertain, 0);
    assert!(s
        .claim_sms("new", now() + Duration::seconds(10), 10, lease)
        .await
        .unwrap()
        .is_empty());
    // The lease runs out: both are uncertain, and still not claimable.
    let t1 = now() + Duration::seconds(31);
    assert_eq!(s.recover_sms(t1, reconcile, 8).await.unwrap().uncertain, 2);
    assert_eq!(
        s.sms_message(a.id).await.unwrap().state,
        MessageState::Uncertain
    );
    assert!(s.claim_sms("new", t1, 10, lease).await.unwrap().is_empty());
    // The gateway's submit report for `a` arrives: it reached the gateway, never resend.
    let applied = s
        .apply_sms_report(a.id, 1, Report::SmscAccepted, Some("gw-1"), t1)
        .await
        .unwrap();
    assert_eq!(applied.before, MessageState::Uncertain);
    assert_eq!(applied.after, Some(MessageState::Sent));
    // After the reconcile time, only `b` (no report) is queued again, as attempt 2.
    let t2 = t1 + reconcile + Duration::seconds(1);
    let r = s.recover_sms(t2, reconcile, 8).await.unwrap();
    assert_eq!(r.requeued, 1);
    let again = s.claim_sms("new", t2, 10, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, b.id);
    assert_eq!(again[0].attempts, 2);
    let a_now = s.sms_message(a.id).await.unwrap();
    assert_eq!(a_now.state, MessageState::Sent);
    assert_eq!(a_now.gateway_id.as_deref(), Some("gw-1"));
    assert_eq!(
        s.sms_by_gateway_id("gw-1").await.unwrap().map(|m| m.id),
        Some(a.id)
    );
    // The dead worker's late answer for attempt 1 of `b` no longer applies.
    s.record_sms_attempts(
        &[AttemptResult {
            id: b.id,
            attempt: 1,
            outcome: SendOutcome::Refused {
                error: "late".into(),
                retry_at: None,
            },
        }],
        t2,
    )
    .await
    .unwrap();
    assert_eq!(
        s.sms_message(b.id).await.unwrap().state,
        MessageState::Sending
    );
}

async fn reports_only_move_forward_and_duplicates_are_kept(s: &Store) {
    let site = site(s).await;
    let (a, _) = s
        .enqueue_sms(&Actor::cli(), msg(site, "a"), now())
        .await
        .unwrap();
    s.claim_sms("w", now(), 10, Duration::seconds(30))
        .await
        .unwrap();
    s.record_sms_attempts(
        &[AttemptResult {
            id: a.id,
            attempt: 1,
            outcome: SendOutcome::Accepted {
                gateway_id: None,
                delivered: false,
            },
        }],
        now(),
    )
    .await
    .unwrap();
    let m = s.sms_message(a.id).await.unwrap();
    assert_eq!(m.state, MessageState::Sent);
    assert_eq!(m.sent_at, Some(now()));
    // Delivered first, then the (late) submit ack and a duplicate: the state stays delivered.
    let t = now() + Duration::seconds(5);
    let d = s
        .apply_sms_report(a.id, 1, Report::Delivered, Some("gw"), t)
        .await
        .unwrap();
    assert_eq!(d.after, Some(MessageState::Delivered));
    for r in [Report::SmscAccepted, Report::Delivered, Report::Undelivered] {
        let x = s.apply_sms_report(a.id, 1, r, None, t).await.unwrap();
        assert_eq!(x.before, MessageState::Delivered);
        assert_eq!(x.after, None);
    }
    let m = s.sms_message(a.id).await.unwrap();
    assert_eq!(m.state, MessageState::Delivered);
    assert_eq!(m.final_at, Some(t));
    let reports = s.sms_reports(a.id).await.unwrap();
    assert_eq!(reports.len(), 4);
    assert_eq!(
        reports.iter().filter(|r| r.applied).count(),
        1,
        "only the first report applied"
    );
    assert!(matches!(
        s.apply_sms_report(9999, 1, Report::Delivered, None, t)
            .await
            .unwrap_err(),
        StoreError::Domain(DomainError::NotFound(_))
    ));
}

async fn outcomes_retry_fail_and_ignore_stale_attempts(s: &Store) {
    let site = site(s).await;
    let (a, _) = s
        .enqueue_sms(&Actor::cli(), msg(site, "a"), now())
        .await
        .unwrap();
    let (b, _) = s
        .enqueue_sms(&Actor::cli(), msg(site, "b"), now())
        .await
        .unwrap();
    let (c, _) = s
        .enqueue_sms(&Actor::cli(), msg(site, "c"), now())
        .await
        .unwrap();
    s.claim_sms("w", now(), 10, Duration::seconds(30))
        .await
        .unwrap();
    let retry_at = now() + Duration::seconds(5);
    s.record_sms_attempts(
        &[
            AttemptResult {
                id: a.id,
                attempt: 1,
                outcome: SendOutcome::Refused {
                    error: "gateway down".into(),
                    retry_at: Some(retry_at),
                },
            },
            AttemptResult {
                id: b.id,
                attempt: 1,
                outcome: SendOutcome::Refused {
                    error: "number barred".into(),
                    retry_at: None,
                },
            },
            AttemptResult {
                id: c.id,
                attempt: 1,
                outcome: SendOutcome::Unknown {
                    error: "time-out".into(),
                    reconcile_at: now() + Duration::seconds(60),
                },
            },
        ],
        now(),
    )
    .await
    .unwrap();
    let ma = s.sms_message(a.id).await.unwrap();
    assert_eq!(ma.state, MessageState::Queued);
    assert_eq!(ma.next_attempt_at, retry_at);
    assert_eq!(ma.last_error, "gateway down");
    assert_eq!(
        s.sms_message(b.id).await.unwrap().state,
        MessageState::Failed
    );
    assert_eq!(
        s.sms_message(c.id).await.unwrap().state,
        MessageState::Uncertain
    );
    // Not before the backoff time.
    assert!(s
        .claim_sms("w", now() + Duration::seconds(4), 10, Duration::seconds(30))
        .await
        .unwrap()
        .is_empty());
    let again = s
        .claim_sms("w", retry_at, 10, Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a.id]);
    assert_eq!(again[0].attempts, 2);
    // A message past its expiry is never sent: it expires.
    let (e, _) = s
        .enqueue_sms(
            &Actor::cli(),
            NewMessage {
                expires_at: now() + Duration::minutes(1),
                ..msg(site, "e")
            },
            now(),
        )
        .await
        .unwrap();
    let late = now() + Duration::minutes(2);
    assert!(s
        .claim_sms("w", late, 10, Duration::seconds(30))
        .await
        .unwrap()
        .iter()
        .all(|m| m.id != e.id));
    assert!(
        s.recover_sms(late, Duration::seconds(60), 8)
            .await
            .unwrap()
            .expired
            >= 1
    );
    assert_eq!(
        s.sms_message(e.id).await.unwrap().state,
        MessageState::Expired
    );
}

async fn batch_enqueue_listing_and_overdue_alerts(s: &Store) {
    let site = site(s).await;
    let other = s
        .create_site(&Actor::cli(), "KM01", "Kunming", now())
        .await
        .unwrap()
        .id;
    let msgs: Vec<NewMessage> = (0..2500).map(|i| msg(site, &format!("b{i}"))).collect();
    assert_eq!(
        s.enqueue_sms_batch(&Actor::cli(), &msgs, now())
            .await
            .unwrap(),
        2500
    );
    // The same batch again adds nothing.
    assert_eq!(
        s.enqueue_sms_batch(&Actor::cli(), &msgs, now())
            .await
            .unwrap(),
        0
    );
    let mut bad = msgs[..2].to_vec();
    bad[1].recipient_e164 = "x".into();
    let e = s
        .enqueue_sms_batch(&Actor::cli(), &bad, now())
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("messages[1].recipient:"), "{e}");
    s.enqueue_sms(&Actor::cli(), msg(other, "other"), now())
        .await
        .unwrap();
    let page = s.list_outbox(site, None, None, 50).await.unwrap();
    assert_eq!(page.len(), 50);
    assert!(page.windows(2).all(|w| w[0].id > w[1].id));
    assert!(page.iter().all(|m| m.site_id == site));
    let next = s
        .list_outbox(site, None, Some(page[49].id), 50)
        .await
        .unwrap();
    assert!(next[0].id < page[49].id);
    assert!(s
        .list_outbox(site, Some(MessageState::Delivered), None, 50)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.outbox_counts(site).await.unwrap(),
        vec![(MessageState::Queued, 2500)]
    );
    assert_eq!(s.client_messages(site, 7, 5).await.unwrap().len(), 5);
    assert!(s.client_messages(other, 8, 5).await.unwrap().is_empty());
    // Not delivered 30 minutes after they were due: every one is overdue, and only at this site.
    let later = now() + Duration::minutes(31);
    let overdue = s
        .overdue_sms(site, later, Duration::minutes(30), 10)
        .await
        .unwrap();
    assert_eq!(overdue.len(), 10);
    assert!(s
        .overdue_sms(
            site,
            now() + Duration::minutes(10),
            Duration::minutes(30),
            10
        )
        .await
        .unwrap()
        .is_empty());
    let first = overdue[0].id;
    s.claim_sms("w", later, 1, Duration::seconds(30))
        .await
        .unwrap();
    s.apply_sms_report(first, 1, Report::Delivered, None, later)
        .await
        .unwrap();
    assert!(s
        .overdue_sms(site, later, Duration::minutes(30), 3000)
        .await
        .unwrap()
        .iter()
        .all(|m| m.id != first));
    assert!(s.verify_audit().await.unwrap().is_ok());
}
