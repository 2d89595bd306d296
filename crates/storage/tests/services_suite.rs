//! The one-stop shop's storage on both backends: encounters (client and anonymous), their
//! validation and site scope, therapeutic-community episodes, and the indicator facts of a
//! site or of the whole deployment, checked against numbers worked out by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use anxin_domain::clinic::urine::{Outcome, Substance};
use anxin_domain::indicators::{compute, Figure, Period, Sex};
use anxin_domain::services::{ArvOutcome, Service, TcEpisode, TcExit, TcPhase, TestResult};
use anxin_domain::{DomainError, Role};
use anxin_storage::clinic::{NewDose, NewUrineTest};
use anxin_storage::services::{Dhis2Entry, NewEncounter, Subject};
use anxin_storage::{Actor, NewUser, Store, StoreError};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 1, 0, 0).unwrap()
}

fn today() -> NaiveDate {
    d(2026, 12, 2)
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
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
    encounters_are_validated_scoped_and_audited,
    tc_episodes_move_forward_only,
    indicator_facts_per_site_and_for_the_deployment,
    dose_days_follow_rules_portions_and_the_clients_site,
    the_month_table_follows_every_write_to_doses,
    arv_outcomes_are_set_later_checked_scoped_and_audited,
    dhis2_mapping_round_trips,
    overdoses_and_deaths_count_by_site_and_period,
);

async fn site_with_staff(s: &Store, code: &str) -> Actor {
    let site = s
        .create_site(&Actor::cli(), code, code, now())
        .await
        .unwrap();
    let u = s
        .create_user(
            &Actor::cli(),
            NewUser {
                site_id: site.id,
                username: format!("staff.{}", code.to_lowercase()),
                full_name: String::new(),
                role: Role::Prescriber,
                password_hash: "$argon2id$fake".into(),
                language: "en".into(),
            },
            now(),
        )
        .await
        .unwrap();
    Actor {
        user_id: Some(u.id),
        name: u.username,
        site_id: Some(site.id),
    }
}

fn anon(uic: &str) -> Subject {
    Subject::Anonymous {
        uic: uic.into(),
        sex: Sex::Unknown,
        birth_year: None,
    }
}

fn invalid_field(e: StoreError) -> String {
    match e {
        StoreError::Domain(DomainError::Invalid { field, .. }) => field,
        StoreError::Domain(DomainError::Refused(p)) => p.field.unwrap_or_default(),
        other => panic!("not a validation error: {other}"),
    }
}

async fn encounters_are_validated_scoped_and_audited(s: &Store) {
    let a = site_with_staff(s, "YX01").await;
    let b = site_with_staff(s, "KM01").await;
    let c = s
        .create_client(&a, "YX-0001", d(2026, 1, 1), now())
        .await
        .unwrap();
    let e = s
        .record_encounter(
            &a,
            &NewEncounter {
                subject: anon("out-77"),
                on: d(2026, 11, 3),
                service: Service::NeedleExchange {
                    given: 30,
                    returned: 12,
                    reason: None,
                },
            },
            today(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(e.uic.as_deref(), Some("OUT-77"));
    assert_eq!(e.client_id, None);
    let trail = s
        .audit_of_record("encounter", &e.id.to_string())
        .await
        .unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].action, "encounter.create");
    assert!(!trail[0].reason.contains("OUT-77"), "no UIC in the trail");

    // An HIV result without a test date: refused, nothing written.
    let bad = s
        .record_encounter(
            &a,
            &NewEncounter {
                subject: Subject::Client(c.id),
                on: d(2026, 11, 3),
                service: Service::HivTest {
                    tested_on: None,
                    pre_counselled: true,
                    post_counselled: true,
                    result: Some(TestResult::Negative),
                    told_result: true,
                },
            },
            today(),
            now(),
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_field(bad), "tested_on");
    let bad = s
        .record_encounter(
            &a,
            &NewEncounter {
                subject: anon("OUT-77"),
                on: d(2026, 11, 3),
                service: Service::NeedleExchange {
                    given: 0,
                    returned: 900,
                    reason: None,
                },
            },
            today(),
            now(),
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_field(bad), "returned");
    // Another centre cannot record for this client: refused as if there were none.
    let other = s
        .record_encounter(
            &b,
            &NewEncounter {
                subject: Subject::Client(c.id),
                on: d(2026, 11, 3),
                service: Service::Naloxone { kits: 1 },
            },
            today(),
            now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        other,
        StoreError::Domain(DomainError::NotFound(_))
    ));
    let ok = s
        .record_encounter(
            &a,
            &NewEncounter {
                subject: Subject::Client(c.id),
                on: d(2026, 11, 4),
                service: Service::Naloxone { kits: 2 },
            },
            today(),
            now(),
        )
        .await
        .unwrap();
    let list = s.client_encounters(&a, c.id).await.unwrap();
    assert_eq!(list, vec![ok]);
    assert!(s.client_encounters(&b, c.id).await.is_err());
}

async fn tc_episodes_move_forward_only(s: &Store) {
    let a = site_with_staff(s, "YX01").await;
    let c = s
        .create_client(&a, "YX-0001", d(2025, 1, 1), now())
        .await
        .unwrap();
    let ep = TcEpisode {
        admitted_on: d(2025, 2, 1),
        phase: TcPhase::Entry,
        left_on: None,
        exit: None,
        urine_negative_6m: None,
        urine_negative_12m: None,
    };
    let stored = s
        .open_tc_episode(&a, c.id, &ep, today(), now())
        .await
        .unwrap();
    let done = TcEpisode {
        phase: TcPhase::Aftercare,
        left_on: Some(d(2026, 2, 1)),
        exit: Some(TcExit::Completed),
        urine_negative_6m: Some(true),
        ..ep.clone()
    };
    let updated = s
        .update_tc_episode(&a, stored.id, &done, today(), now())
        .await
        .unwrap();
    assert_eq!(updated.episode, done);
    let back = TcEpisode {
        phase: TcPhase::Primary,
        ..done.clone()
    };
    let e = s
        .update_tc_episode(&a, stored.id, &back, today(), now())
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e), "phase");
    let listed = s.tc_episodes(&a).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].episode, done);
    let actions: Vec<String> = s
        .audit_of_record("tc_episode", &stored.id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["tc_episode.create", "tc_episode.update"]);
}

fn by_id(figs: Vec<Figure>) -> BTreeMap<&'static str, (u64, Option<u64>)> {
    figs.into_iter()
        .map(|f| {
            (
                f.id,
                (f.numerator.total(), f.denominator.map(|g| g.total())),
            )
        })
        .collect()
}

async fn indicator_facts_per_site_and_for_the_deployment(s: &Store) {
    let a = site_with_staff(s, "YX01").await;
    let b = site_with_staff(s, "KM01").await;
    // Site A: client 1 (female, born 1990) enrolled 08-15 → 3-month anniversary 11-15;
    // doses on 11-01, 11-02, 11-03; urine 11-02 negative, 11-10 positive for opiates.
    let c1 = s
        .create_client(&a, "YX-0001", d(2026, 8, 15), now())
        .await
        .unwrap();
    s.set_demographics(&a, c1.id, Sex::Female, Some(1990), now())
        .await
        .unwrap();
    // Client 2 (no sex or birth year) enrolled 05-20, discharged 09-01 → 6-month cohort, lost.
    let c2 = s
        .create_client(&a, "YX-0002", d(2026, 5, 20), now())
        .await
        .unwrap();
    s.discharge(&a, c2.id, d(2026, 9, 1), "left", now())
        .await
        .unwrap();
    for day in 1..=3 {
        s.insert_dose(
            &a,
            &NewDose {
                client_id: c1.id,
                day: d(2026, 11, day),
                portion: 0,
                mg: 60,
                site_id: c1.site_id,
                guest: false,
                rule: "normal".into(),
            },
            now(),
        )
        .await
        .unwrap();
    }
    for (day, positive) in [(2, false), (10, true)] {
        s.add_urine_test(
            &a,
            &NewUrineTest {
                client_id: c1.id,
                collected_on: d(2026, 11, day),
                observed: true,
                outcome: Outcome::Tested([(Substance::Opiates, positive)].into()),
                reason: "random".into(),
            },
            now(),
        )
        .await
        .unwrap();
    }
    let rec = |actor: &Actor, subject: Subject, on: NaiveDate, service: Service| {
        let actor = actor.clone();
        async move {
            s.record_encounter(
                &actor,
                &NewEncounter {
                    subject,
                    on,
                    service,
                },
                today(),
                now(),
            )
            .await
            .unwrap()
        }
    };
    // Site A: client 1 HIV-tested 11-05 positive, told; ARV referral 11-06 linked 11-20.
    rec(
        &a,
        Subject::Client(c1.id),
        d(2026, 11, 5),
        Service::HivTest {
            tested_on: Some(d(2026, 11, 5)),
            pre_counselled: true,
            post_counselled: true,
            result: Some(TestResult::Positive),
            told_result: true,
        },
    )
    .await;
    rec(
        &a,
        Subject::Client(c1.id),
        d(2026, 11, 20),
        Service::ArvReferral {
            referred_on: d(2026, 11, 6),
            outcome: ArvOutcome::Linked,
            outcome_on: Some(d(2026, 11, 20)),
        },
    )
    .await;
    // Site A outreach: 30 given / 12 returned; an HIV test dated 10-30 recorded 11-02 (October).
    rec(
        &a,
        anon("OUT-1"),
        d(2026, 11, 3),
        Service::NeedleExchange {
            given: 30,
            returned: 12,
            reason: None,
        },
    )
    .await;
    rec(
        &a,
        anon("OUT-1"),
        d(2026, 11, 2),
        Service::HivTest {
            tested_on: Some(d(2026, 10, 30)),
            pre_counselled: true,
            post_counselled: false,
            result: Some(TestResult::Negative),
            told_result: false,
        },
    )
    .await;
    // Site B outreach, male born 2004: 10 given / 10 returned, HIV negative not told,
    // a police referral.
    let young_man = || Subject::Anonymous {
        uic: "OUT-9".into(),
        sex: Sex::Male,
        birth_year: Some(2004),
    };
    rec(
        &b,
        young_man(),
        d(2026, 11, 7),
        Service::NeedleExchange {
            given: 10,
            returned: 10,
            reason: None,
        },
    )
    .await;
    rec(
        &b,
        young_man(),
        d(2026, 11, 7),
        Service::HivTest {
            tested_on: Some(d(2026, 11, 7)),
            pre_counselled: true,
            post_counselled: false,
            result: Some(TestResult::Negative),
            told_result: false,
        },
    )
    .await;
    rec(
        &b,
        young_man(),
        d(2026, 11, 7),
        Service::ReferralIn {
            source: anxin_domain::services::ReferralSource::Police,
        },
    )
    .await;
    // A former client of site A (male, born 2003), discharged in February 2025 — long before
    // the report's look-back, so not among its clients — comes back for 2 naloxone kits on
    // 11-12: they count, as male <25 (his record's sex and age, not the encounter's).
    let c3 = s
        .create_client(&a, "YX-0003", d(2024, 1, 10), now())
        .await
        .unwrap();
    s.set_demographics(&a, c3.id, Sex::Male, Some(2003), now())
        .await
        .unwrap();
    s.discharge(&a, c3.id, d(2025, 2, 1), "moved", now())
        .await
        .unwrap();
    rec(
        &a,
        Subject::Client(c3.id),
        d(2026, 11, 12),
        Service::Naloxone { kits: 2 },
    )
    .await;
    // An encounter in December is outside the period.
    rec(
        &a,
        anon("OUT-1"),
        d(2026, 12, 1),
        Service::Naloxone { kits: 5 },
    )
    .await;

    let nov = Period::new(d(2026, 11, 1), d(2026, 11, 30)).unwrap();
    let site_a = s.indicator_inputs(a.site_id, &nov).await.unwrap();
    let fa = by_id(compute(&nov, &site_a));
    assert_eq!(fa["mmt_clients"], (1, None));
    assert_eq!(fa["retention_3m"], (1, Some(1)));
    assert_eq!(fa["retention_6m"], (0, Some(1)));
    assert_eq!(fa["mean_attendance"], (3, Some(1)));
    assert_eq!(fa["urine_negative_rate"], (1, Some(2)));
    assert_eq!(fa["hiv_tests"], (1, None));
    assert_eq!(fa["hiv_positivity"], (1, Some(1)));
    assert_eq!(fa["arv_linkage"], (1, Some(1)));
    assert_eq!(fa["needles_given"], (30, None));
    assert_eq!(fa["needles_returned"], (12, None));
    assert_eq!(fa["naloxone_kits"], (2, None));
    assert_eq!(fa["referrals_police"], (0, None));

    let all = s.indicator_inputs(None, &nov).await.unwrap();
    let f = compute(&nov, &all);
    let fall = by_id(f.clone());
    assert_eq!(fall["hiv_tests"], (2, None));
    assert_eq!(fall["hiv_positivity"], (1, Some(2)));
    assert_eq!(fall["hiv_told_result"], (1, Some(2)));
    assert_eq!(fall["needles_given"], (40, None));
    assert_eq!(fall["needles_returned"], (22, None));
    assert_eq!(fall["needle_return_rate"], (22, Some(40)));
    assert_eq!(fall["referrals_police"], (1, None));
    // Disaggregation: client 1 is female 25+ (row 1, column 1); the outreach man is male <25.
    let g = |id: &str| f.iter().find(|x| x.id == id).unwrap().numerator.0;
    assert_eq!(g("mmt_clients")[1][1], 1);
    assert_eq!(g("referrals_police")[0][0], 1);
    assert_eq!(g("needles_given"), [[10, 0, 0], [0, 0, 0], [0, 0, 30]]);
    assert_eq!(g("naloxone_kits"), [[2, 0, 0], [0, 0, 0], [0, 0, 0]]);
    assert_eq!(
        all.clients.len(),
        2,
        "the former client is not one of the report's clients"
    );
}

async fn dose_days_follow_rules_portions_and_the_clients_site(s: &Store) {
    let a = site_with_staff(s, "YX01").await;
    let b = site_with_staff(s, "KM01").await;
    // Client 1 of site A, enrolled 10-01, still in. November doses (day: portions and rules):
    //   11-04 two portions, both normal            → attended once, no take-home
    //   11-05 take_home (opened)                   → attended, take-home
    //   11-06 take_home_pending alone              → not attended, take-home
    //   11-07 take_home_lost + a normal portion    → attended, take-home
    //   11-08 take_home_unopened + take_home_lost  → not attended, take-home
    //   11-09 normal, given as a guest at site B   → attended (counts at the client's site A)
    //   10-31 and 12-01 normal                     → outside the period
    // Client 2 of site B, enrolled 10-01, discharged 11-03: doses 11-01, 11-02 count; 11-03
    // and 11-04 (on and after discharge) do not.
    let c1 = s
        .create_client(&a, "YX-0101", d(2026, 10, 1), now())
        .await
        .unwrap();
    let c2 = s
        .create_client(&b, "KM-0102", d(2026, 10, 1), now())
        .await
        .unwrap();
    let dose = |actor: &Actor, client: i64, site: i64, on: NaiveDate, portion: u8, rule: &str| {
        let (actor, rule) = (actor.clone(), rule.to_owned());
        async move {
            s.insert_dose(
                &actor,
                &NewDose {
                    client_id: client,
                    day: on,
                    portion,
                    mg: 40,
                    site_id: site,
                    guest: site != c1.site_id && client == c1.id,
                    rule,
                },
                now(),
            )
            .await
            .unwrap();
        }
    };
    let (sa, sb) = (c1.site_id, c2.site_id);
    dose(&a, c1.id, sa, d(2026, 11, 4), 0, "normal").await;
    dose(&a, c1.id, sa, d(2026, 11, 4), 1, "normal").await;
    dose(&a, c1.id, sa, d(2026, 11, 5), 0, "take_home").await;
    dose(&a, c1.id, sa, d(2026, 11, 6), 0, "take_home_pending").await;
    dose(&a, c1.id, sa, d(2026, 11, 7), 0, "take_home_lost").await;
    dose(&a, c1.id, sa, d(2026, 11, 7), 1, "normal").await;
    dose(&a, c1.id, sa, d(2026, 11, 8), 0, "take_home_unopened").await;
    dose(&a, c1.id, sa, d(2026, 11, 8), 1, "take_home_lost").await;
    dose(&b, c1.id, sb, d(2026, 11, 9), 0, "normal").await;
    dose(&a, c1.id, sa, d(2026, 10, 31), 0, "normal").await;
    dose(&a, c1.id, sa, d(2026, 12, 1), 0, "normal").await;
    for day in 1..=4 {
        dose(&b, c2.id, sb, d(2026, 11, day), 0, "normal").await;
    }
    s.discharge(&b, c2.id, d(2026, 11, 3), "moved", now())
        .await
        .unwrap();

    let nov = Period::new(d(2026, 11, 1), d(2026, 11, 30)).unwrap();
    let site_a = s.indicator_inputs(a.site_id, &nov).await.unwrap();
    assert_eq!(site_a.clients.len(), 1);
    let days = |set: &anxin_domain::indicators::DaySet| {
        set.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    // The days of the year before the period are read too (the drop-out rule and the
    // cohorts need them: 10-31 here); the figures count the period's days only.
    assert_eq!(
        days(&site_a.clients[0].dose_days),
        [
            "2026-10-31",
            "2026-11-04",
            "2026-11-05",
            "2026-11-07",
            "2026-11-09"
        ]
    );
    // November's milligrams: 9 doses of 40 mg, the guest dose at site B included.
    assert_eq!(site_a.clients[0].dose_mg, 360);
    assert_eq!(
        days(&site_a.clients[0].take_home_days),
        ["2026-11-05", "2026-11-06", "2026-11-07", "2026-11-08"]
    );
    let fa = by_id(compute(&nov, &site_a));
    assert_eq!(fa["mean_attendance"], (4, Some(1)));
    assert_eq!(fa["take_home_participation"], (1, Some(1)));

    let site_b = by_id(compute(
        &nov,
        &s.indicator_inputs(b.site_id, &nov).await.unwrap(),
    ));
    assert_eq!(site_b["mean_attendance"], (2, Some(1)));
    assert_eq!(site_b["mmt_clients"], (0, None));

    let all = by_id(compute(
        &nov,
        &s.indicator_inputs(None, &nov).await.unwrap(),
    ));
    assert_eq!(all["mean_attendance"], (6, Some(2)));
    assert_eq!(all["take_home_participation"], (1, Some(1)));
    // A period without any dose.
    let june = Period::new(d(2026, 6, 1), d(2026, 6, 30)).unwrap();
    let none = by_id(compute(
        &june,
        &s.indicator_inputs(None, &june).await.unwrap(),
    ));
    assert_eq!(none["mean_attendance"], (0, Some(0)));
}

/// The client-months kept by the triggers of migration 0009: `(month, client, attended,
/// take_home)`, bit d-1 standing for day d.
async fn month_table(s: &Store) -> Vec<(String, i64, i64, i64)> {
    use sqlx::Row;
    let rows = |sql: &'static str| async move {
        sqlx::query(sql)
            .fetch_all(s.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>(0),
                    r.get::<i64, _>(1),
                    r.get::<i64, _>(2),
                    r.get::<i64, _>(3),
                )
            })
            .collect::<Vec<_>>()
    };
    let kept = rows(
        "SELECT month, client_id, attended, take_home FROM dose_months ORDER BY month, client_id",
    )
    .await;
    // The table is a cache of its definition: recomputed from the doses, it must be the same.
    let defined = rows(
        "SELECT month, client_id, attended, take_home FROM dose_month_bits \
         ORDER BY month, client_id",
    )
    .await;
    assert_eq!(kept, defined, "dose_months differs from the doses");
    kept
}

async fn the_month_table_follows_every_write_to_doses(s: &Store) {
    let a = site_with_staff(s, "YX01").await;
    let c = s
        .create_client(&a, "YX-0201", d(2026, 9, 1), now())
        .await
        .unwrap();
    let dose = |on: NaiveDate, portion: u8, rule: &str| {
        let (a, rule) = (a.clone(), rule.to_owned());
        async move {
            s.insert_dose(
                &a,
                &NewDose {
                    client_id: c.id,
                    day: on,
                    portion,
                    mg: 40,
                    site_id: c.site_id,
                    guest: false,
                    rule,
                },
                now(),
            )
            .await
            .unwrap();
        }
    };
    let exec = |sql: String| async move {
        sqlx::query(&sql).execute(s.pool()).await.unwrap();
    };
    let month = |m: &str, attended: i64, take_home: i64| (m.to_owned(), c.id, attended, take_home);
    // October: the 1st and the 31st observed. November: the 2nd observed twice (two portions),
    // a box of three days 3rd-5th handed out (pending), the 6th lost.
    dose(d(2026, 10, 1), 0, "normal").await;
    dose(d(2026, 10, 31), 0, "normal").await;
    dose(d(2026, 11, 2), 0, "normal").await;
    dose(d(2026, 11, 2), 1, "normal").await;
    for day in 3..=5 {
        dose(d(2026, 11, day), 0, "take_home_pending").await;
    }
    dose(d(2026, 11, 6), 0, "take_home_lost").await;
    assert_eq!(
        month_table(s).await,
        [
            month("2026-10", 1 | 1 << 30, 0),
            month("2026-11", 1 << 1, 0b1111 << 2),
        ]
    );

    // The box comes back: the 3rd and 4th opened, the 5th unopened.
    let id = c.id;
    exec(format!(
        "UPDATE doses SET rule = 'take_home' WHERE client_id = {id} AND day IN ('2026-11-03', '2026-11-04')"
    ))
    .await;
    exec(format!(
        "UPDATE doses SET rule = 'take_home_unopened' WHERE client_id = {id} AND day = '2026-11-05'"
    ))
    .await;
    assert_eq!(
        month_table(s).await[1],
        month("2026-11", 1 << 1 | 1 << 2 | 1 << 3, 0b1111 << 2)
    );
    // A dose recorded on the wrong day is moved to another month, and a portion removed: the
    // 2nd keeps its other portion.
    exec(format!(
        "UPDATE doses SET day = '2026-12-01' WHERE client_id = {id} AND day = '2026-10-31'"
    ))
    .await;
    exec(format!(
        "DELETE FROM doses WHERE client_id = {id} AND day = '2026-11-02' AND portion = 1"
    ))
    .await;
    assert_eq!(
        month_table(s).await,
        [
            month("2026-10", 1, 0),
            month("2026-11", 1 << 1 | 1 << 2 | 1 << 3, 0b1111 << 2),
            month("2026-12", 1, 0),
        ]
    );
    // The last dose of a month gone: so is the month.
    exec(format!(
        "DELETE FROM doses WHERE client_id = {id} AND day = '2026-10-01'"
    ))
    .await;
    let kept = month_table(s).await;
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].0, "2026-11");
    // The report reads the same days: attended 2nd, 3rd, 4th; take-home 3rd to 6th.
    let nov = Period::new(d(2026, 11, 1), d(2026, 11, 30)).unwrap();
    let inputs = s.indicator_inputs(a.site_id, &nov).await.unwrap();
    let days = |set: &anxin_domain::indicators::DaySet| {
        set.iter()
            .map(|x| chrono::Datelike::day(&x))
            .collect::<Vec<_>>()
    };
    assert_eq!(days(&inputs.clients[0].dose_days), [2, 3, 4]);
    assert_eq!(days(&inputs.clients[0].take_home_days), [3, 4, 5, 6]);
    // A bulk load with the triggers off is mended by a rebuild.
    exec("DELETE FROM dose_months".into()).await;
    assert_eq!(s.rebuild_dose_months().await.unwrap(), 2);
    assert_eq!(month_table(s).await, kept);
}

async fn arv_outcomes_are_set_later_checked_scoped_and_audited(s: &Store) {
    let a = site_with_staff(s, "YX01").await;
    let b = site_with_staff(s, "KM01").await;
    let referral = s
        .record_encounter(
            &a,
            &NewEncounter {
                subject: Subject::Anonymous {
                    uic: "OUT-3".into(),
                    sex: Sex::Female,
                    birth_year: None,
                },
                on: d(2026, 11, 5),
                service: Service::ArvReferral {
                    referred_on: d(2026, 11, 4),
                    outcome: ArvOutcome::Pending,
                    outcome_on: None,
                },
            },
            today(),
            now(),
        )
        .await
        .unwrap();
    let set = |actor: &Actor, id: i64, outcome, on: Option<NaiveDate>| {
        let actor = actor.clone();
        async move {
            s.set_arv_outcome(&actor, id, outcome, on, today(), now())
                .await
        }
    };
    let early = set(&a, referral.id, ArvOutcome::Linked, Some(d(2026, 11, 3)));
    assert_eq!(invalid_field(early.await.unwrap_err()), "outcome_on");
    let undated = set(&a, referral.id, ArvOutcome::Linked, None);
    assert_eq!(invalid_field(undated.await.unwrap_err()), "outcome_on");
    let missing = set(&a, referral.id + 1000, ArvOutcome::Lost, None).await;
    assert!(matches!(
        missing.unwrap_err(),
        StoreError::Domain(DomainError::NotFound(_))
    ));
    // Another centre's referral: the same answer, word for word, as a missing one.
    let elsewhere = set(&b, referral.id, ArvOutcome::Lost, None).await;
    let nowhere = set(&b, referral.id + 1000, ArvOutcome::Lost, None).await;
    assert_eq!(
        elsewhere
            .unwrap_err()
            .to_string()
            .replace(&referral.id.to_string(), "N"),
        nowhere
            .unwrap_err()
            .to_string()
            .replace(&(referral.id + 1000).to_string(), "N")
    );
    let linked = set(&a, referral.id, ArvOutcome::Linked, Some(d(2026, 11, 20)))
        .await
        .unwrap();
    let expected = Service::ArvReferral {
        referred_on: d(2026, 11, 4),
        outcome: ArvOutcome::Linked,
        outcome_on: Some(d(2026, 11, 20)),
    };
    assert_eq!(linked.service, expected);
    let listed = s.arv_referrals(&a, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].service, expected);
    assert!(s.arv_referrals(&b, 10).await.unwrap().is_empty());
    let actions: Vec<String> = s
        .audit_of_record("encounter", &referral.id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["encounter.create", "encounter.arv_outcome"]);
}

async fn dhis2_mapping_round_trips(s: &Store) {
    let a = site_with_staff(s, "YX01").await;
    assert!(s.dhis2_mapping().await.unwrap().is_empty());
    let entry = |sex: &str| Dhis2Entry {
        indicator: "hiv_tests".into(),
        sex: sex.into(),
        age_band: "total".into(),
        data_element: "DE123".into(),
        category_option_combo: format!("COC-{sex}"),
    };
    s.set_dhis2_mapping(&a, &[entry("total"), entry("male")], now())
        .await
        .unwrap();
    assert_eq!(
        s.dhis2_mapping().await.unwrap(),
        vec![entry("male"), entry("total")]
    );
    let dup = s
        .set_dhis2_mapping(&a, &[entry("male"), entry("male")], now())
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Domain(DomainError::Conflict(_))));
    // The failed replacement left the old mapping in place.
    assert_eq!(s.dhis2_mapping().await.unwrap().len(), 2);
}

/// Overdose events and deaths (migration 0019) reach the indicators by the centre that recorded
/// them and the day they happened, with the client's sex and age; a death is one per client.
async fn overdoses_and_deaths_count_by_site_and_period(s: &Store) {
    use anxin_domain::clinic::outcomes::{DeathCause, OverdoseOutcome};
    let a = site_with_staff(s, "YX01").await;
    let b = site_with_staff(s, "ZZ02").await;
    let ca = s
        .create_client(&a, "YX-0001", d(2026, 1, 5), now())
        .await
        .unwrap();
    s.set_demographics(&a, ca.id, Sex::Female, Some(1980), now())
        .await
        .unwrap();
    let cb = s
        .create_client(&b, "ZZ-0001", d(2026, 1, 5), now())
        .await
        .unwrap();
    s.set_demographics(&b, cb.id, Sex::Male, Some(2004), now())
        .await
        .unwrap();
    let mut w = s.begin_work(&a, now()).await.unwrap();
    let c = w.client_for_write(ca.id).await.unwrap();
    w.add_overdose(&c, d(2026, 11, 3), true, OverdoseOutcome::RecoveredOnSite)
        .await
        .unwrap();
    let od = w
        .add_overdose(&c, d(2026, 11, 20), false, OverdoseOutcome::Died)
        .await
        .unwrap();
    w.record_death(&c, d(2026, 11, 20), DeathCause::Overdose, Some(od))
        .await
        .unwrap();
    w.commit().await.unwrap();
    // A second death of the same client is refused, and the unit leaves nothing.
    let mut w = s.begin_work(&a, now()).await.unwrap();
    let c = w.client_for_write(ca.id).await.unwrap();
    let e = w
        .record_death(&c, d(2026, 11, 21), DeathCause::Unknown, None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Domain(DomainError::Refused(ref p)) if p.code.as_str() == "death.already_recorded"),
        "{e:?}"
    );
    drop(w);
    // Site B: one overdose in October (outside November) and one in November with naloxone.
    let mut w = s.begin_work(&b, now()).await.unwrap();
    let c = w.client_for_write(cb.id).await.unwrap();
    w.add_overdose(&c, d(2026, 10, 30), true, OverdoseOutcome::TakenToHospital)
        .await
        .unwrap();
    w.add_overdose(&c, d(2026, 11, 9), true, OverdoseOutcome::TakenToHospital)
        .await
        .unwrap();
    w.commit().await.unwrap();

    let nov = Period::new(d(2026, 11, 1), d(2026, 11, 30)).unwrap();
    let fa = by_id(compute(
        &nov,
        &s.indicator_inputs(a.site_id, &nov).await.unwrap(),
    ));
    assert_eq!(fa["overdoses"], (2, None));
    assert_eq!(fa["overdoses_naloxone"], (1, None));
    assert_eq!(fa["deaths"], (1, None));
    let fb = by_id(compute(
        &nov,
        &s.indicator_inputs(b.site_id, &nov).await.unwrap(),
    ));
    assert_eq!(fb["overdoses"], (1, None));
    assert_eq!(fb["overdoses_naloxone"], (1, None));
    assert_eq!(fb["deaths"], (0, None));
    let all = compute(&nov, &s.indicator_inputs(None, &nov).await.unwrap());
    let g = |id: &str| all.iter().find(|f| f.id == id).unwrap().numerator.rows();
    // Rows: male, female, unknown; columns: under 25, 25 and over, unknown.
    assert_eq!(g("overdoses"), [[1, 0, 0], [0, 2, 0], [0, 0, 0]]);
    assert_eq!(g("deaths"), [[0, 0, 0], [0, 1, 0], [0, 0, 0]]);
    let total = |id: &str| g(id).iter().flatten().sum::<u64>();
    assert_eq!(
        (
            total("overdoses"),
            total("overdoses_naloxone"),
            total("deaths")
        ),
        (3, 2, 1)
    );
    let audited: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('overdose.record', 'death.record')",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(audited.0, 5);
}
