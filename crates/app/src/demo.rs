//! The demo centre for `anxin serve --demo`: one site modelled on Ping An Centre No. 1 in Yuxi,
//! a login for every role, and ~250 clients enrolled over three years (a tenth of them in the
//! last 90 days), generated deterministically from a seed so every demo looks the same.
//! Each client has an identity (encrypted), an agreement (a few stable clients' are still on
//! paper), consents, a dose order and 90 days of
//! doses and urine tests with realistic gaps; a few show the missed-dose rule today; the stock
//! has deliveries and a close-out every evening. Later features add their own history here.

use anxin_domain::clinic::orders::{DoseOrder, OrderKind, Step};
use anxin_domain::clinic::stage::Stage;
use anxin_domain::clinic::stock::{expected_ml, CloseOut, Receipt};
use anxin_domain::clinic::urine::{Outcome, Substance};
use anxin_domain::org::OrgLevel;
use anxin_domain::Role;
use anxin_storage::clinic::{HistoricDose, Identity, NewDose};
use anxin_storage::{Actor, NewUser, Site, Store};
use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{App, Error, Result};

/// The password of every demo login (printed at start; a demo is not a deployment).
pub const DEMO_PASSWORD: &str = "anxin-demo-2026";

/// The demo site's code.
pub const DEMO_SITE: &str = "YX01";

/// The demo logins: username, role, language.
pub const DEMO_LOGINS: [(&str, Role, &str); 9] = [
    ("admin", Role::Admin, "en"),
    ("manager", Role::Manager, "zh-CN"),
    ("doctor", Role::Prescriber, "zh-CN"),
    // A second prescriber: an order beyond the induction limits needs another's confirmation.
    ("doctor2", Role::Prescriber, "zh-CN"),
    ("nurse", Role::Dispenser, "zh-CN"),
    ("counsellor", Role::Counsellor, "zh-CN"),
    ("peer", Role::PeerEducator, "zh-CN"),
    ("cdc", Role::CdcAnalyst, "zh-CN"),
    ("police", Role::PsbOfficer, "zh-CN"),
];

/// The demo city's organisation units: code, name, level, parent, DHIS2 org-unit code.
pub const DEMO_UNITS: [(&str, &str, OrgLevel, Option<&str>, &str); 4] = [
    ("YN", "云南省", OrgLevel::Province, None, "CN530000"),
    ("YXS", "玉溪市", OrgLevel::City, Some("YN"), "CN530400"),
    ("HT", "红塔区", OrgLevel::District, Some("YXS"), "CN530402"),
    ("JC", "江川区", OrgLevel::District, Some("YXS"), "CN530403"),
];

/// The demo city's centres: code, name, district, DHIS2 org-unit code, clients. The first is
/// the demo centre ([`DEMO_SITE`]), whose clients `load` makes.
pub const DEMO_CITY_CENTRES: [(&str, &str, &str, &str, usize); 3] = [
    (DEMO_SITE, "", "HT", "CN530402-01", DEMO_CLIENTS),
    (
        "YX02",
        "玉溪市红塔区第二美沙酮门诊",
        "HT",
        "CN530402-02",
        30,
    ),
    ("YX03", "玉溪市江川区美沙酮门诊", "JC", "CN530403-01", 18),
];

/// The city's logins (password [`DEMO_PASSWORD`]): username, role, language, home centre and
/// the unit an outside account is scoped to.
pub const DEMO_CITY_LOGINS: [(&str, Role, &str, &str, Option<&str>); 4] = [
    ("cdc.yxs", Role::CdcAnalyst, "zh-CN", "YX02", Some("YXS")),
    ("police.ht", Role::PsbOfficer, "zh-CN", "YX02", Some("HT")),
    ("doctor.yx02", Role::Prescriber, "zh-CN", "YX02", None),
    ("doctor.yx03", Role::Prescriber, "zh-CN", "YX03", None),
];

/// What the demo loader did.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub site: Site,
    pub clients: i64,
    /// False when the database already held data and nothing was added.
    pub loaded: bool,
}

/// Number of clients in the demo centre.
pub const DEMO_CLIENTS: usize = 250;

/// The demo clients' UICs and enrolment dates, as a pure function of seed and today.
pub fn demo_clients(seed: u64, today: NaiveDate) -> Vec<(String, NaiveDate)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(DEMO_CLIENTS);
    for i in 0..DEMO_CLIENTS {
        // A tenth were enrolled within the last 90 days; the rest over the three years before.
        let days_ago: i64 = if i % 10 == 0 {
            rng.gen_range(0..90)
        } else {
            rng.gen_range(90..3 * 365)
        };
        let letters: String = (0..2)
            .map(|_| char::from(b'A' + rng.gen_range(0..26u8)))
            .collect();
        out.push((
            format!("YX-{:04}-{letters}", i + 1),
            today - Duration::days(days_ago),
        ));
    }
    out
}

/// How regularly a demo client comes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Profile {
    attend: f64,
    urine_negative: f64,
}

const STABLE: Profile = Profile {
    attend: 0.985,
    urine_negative: 0.97,
};
const MODERATE: Profile = Profile {
    attend: 0.88,
    urine_negative: 0.75,
};
const CHAOTIC: Profile = Profile {
    attend: 0.62,
    urine_negative: 0.4,
};

const SURNAMES: [&str; 16] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: [&str; 16] = [
    "伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "兰",
];

/// Fills an empty database with the demo centre. A database that already holds sites is
/// left alone (`loaded: false`).
pub async fn load(app: &App, seed: u64) -> Result<DemoSummary> {
    let store: &Store = &app.store;
    if !store.list_sites().await?.is_empty() {
        let site = store.site_by_code(DEMO_SITE).await?;
        let clients = store.count_clients(site.id).await?;
        return Ok(DemoSummary {
            site,
            clients,
            loaded: false,
        });
    }
    let now = app.now();
    let today = app.today();
    let cli = Actor::cli();
    let site = store
        .create_site(
            &cli,
            DEMO_SITE,
            "玉溪市平安社区药物维持治疗中心 (Yuxi Ping An Centre No. 1)",
            now,
        )
        .await?;
    // The published demo password fails the policy on purpose; the demo alone bypasses it.
    let hash = crate::staff::demo_password_hash(DEMO_PASSWORD).await?;
    let mut actors = std::collections::HashMap::new();
    for (username, role, language) in DEMO_LOGINS {
        let u = store
            .create_user(
                &cli,
                NewUser {
                    site_id: site.id,
                    username: username.into(),
                    full_name: String::new(),
                    role,
                    password_hash: hash.clone(),
                    language: language.into(),
                },
                now,
            )
            .await?;
        actors.insert(
            role,
            Actor {
                user_id: Some(u.id),
                name: u.username,
                site_id: Some(site.id),
            },
        );
    }
    let actor = |r: Role| actors.get(&r).cloned().unwrap_or_else(Actor::cli);
    let (doctor, nurse, counsellor) = (
        actor(Role::Prescriber),
        actor(Role::Dispenser),
        actor(Role::Counsellor),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let clients = demo_clients(seed, today);
    let mut history = Vec::new();
    let mut urine = Vec::new();
    let mut dosed_mg_by_day: std::collections::BTreeMap<NaiveDate, f64> = Default::default();
    let mut with_police_consent = Vec::new();
    let mut clients_made: Vec<(i64, NaiveDate)> = Vec::new();
    for (i, (uic, enrolled_on)) in clients.iter().enumerate() {
        let c = store
            .create_client(&counsellor, uic, *enrolled_on, now)
            .await?;
        clients_made.push((c.id, *enrolled_on));
        let profile = match i % 20 {
            0..=11 => STABLE,
            12..=16 => MODERATE,
            _ => CHAOTIC,
        };
        let stage = match i % 33 {
            0..=4 => Some(Stage::CommunityTreatment),
            5 => Some(Stage::CompulsoryIsolated),
            6..=9 => Some(Stage::CommunityRehabilitation),
            _ => None,
        };
        if let Some(stage) = stage {
            store
                .set_stage(&counsellor, c.id, stage, *enrolled_on, now)
                .await?;
        }
        let name = format!(
            "{}{}{}",
            SURNAMES[rng.gen_range(0..16)],
            GIVEN[rng.gen_range(0..16)],
            if rng.gen_bool(0.5) {
                GIVEN[rng.gen_range(0..16)]
            } else {
                ""
            }
        );
        let identity = Identity {
            name: Some(name),
            national_id: Some(format!(
                "530402{}{:02}{:02}{:03}{}",
                rng.gen_range(1965..2000),
                rng.gen_range(1..13),
                rng.gen_range(1..29),
                rng.gen_range(0..1000),
                rng.gen_range(0..10)
            )),
            phone: Some(format!(
                "1{}{:09}",
                [3, 5, 8, 9][rng.gen_range(0..4)],
                rng.gen_range(0..1_000_000_000u64)
            )),
            address: None,
        };
        store
            .set_identity(&counsellor, c.id, &identity, &app.vault, now)
            .await?;
        // Some stable clients' agreements are still on paper, waiting to be recorded (and
        // without the police-check consent): the browser suite records both in the pages.
        let on_paper = profile == STABLE && i % 6 == 1;
        if !on_paper {
            store
                .add_agreement(
                    &doctor,
                    c.id,
                    "methadone maintenance treatment",
                    36,
                    "come daily; no other drugs; random urine tests",
                    "client",
                    None,
                    *enrolled_on,
                    now,
                )
                .await?;
        }
        if profile == STABLE && i % 3 == 0 {
            with_police_consent.push(c.id);
            store
                .add_consent(
                    &counsellor,
                    c.id,
                    "take_home_police_check",
                    "PSB",
                    "name, national ID number, requested days",
                    today - Duration::days(20),
                    today + Duration::days(340),
                    now,
                )
                .await?;
        }
        store
            .add_consent(
                &counsellor,
                c.id,
                "cdc_figures",
                "CDC",
                "de-identified counts",
                *enrolled_on,
                *enrolled_on + Duration::days(3 * 365),
                now,
            )
            .await?;
        // The order: new clients are in induction, titrating up; the others on maintenance.
        let recent = today - *enrolled_on < Duration::days(90);
        let target = 40 + 5 * rng.gen_range(0..17u32);
        let order = if recent {
            let steps = (1..=((target - 30) / 10))
                .map(|k| Step {
                    from: *enrolled_on + Duration::days(5 * i64::from(k)),
                    mg: 30 + 10 * k,
                })
                .collect();
            DoseOrder {
                kind: OrderKind::Induction,
                start: *enrolled_on,
                mg: 30,
                steps,
                split: 1,
                reason: "induction".into(),
            }
        } else {
            DoseOrder {
                kind: OrderKind::Maintenance,
                start: today - Duration::days(120),
                mg: target,
                steps: vec![],
                split: if i % 25 == 7 { 2 } else { 1 },
                reason: "stable".into(),
            }
        };
        store.add_order(&doctor, c.id, &order, now).await?;
        if stage == Some(Stage::CompulsoryIsolated) {
            continue;
        }
        // Some clients show the missed-dose rule today: their last dose was 3, 4 or 6 days ago.
        let gap_before_today = match i % 50 {
            13 => 4,
            27 => 5,
            41 => 7,
            _ => 0,
        };
        let first = order.start.max(today - Duration::days(90));
        let mut d = first;
        while d < today {
            let in_gap = gap_before_today > 0 && today - d < Duration::days(gap_before_today);
            if !in_gap && rng.gen_bool(profile.attend) {
                let mg = order.mg_on(d).unwrap_or(order.mg);
                let minute = rng.gen_range(0..180);
                let given_at = (d.and_hms_opt(8, 0, 0).unwrap_or_default()
                    + Duration::minutes(minute))
                .and_local_timezone(app.settings.utc_offset)
                .single()
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or(now);
                for portion in 0..order.split {
                    let part = order.portion_mg(mg, portion);
                    history.push(HistoricDose {
                        dose: NewDose {
                            client_id: c.id,
                            day: d,
                            portion,
                            mg: part,
                            site_id: site.id,
                            guest: false,
                            rule: "normal".into(),
                        },
                        given_at,
                    });
                    *dosed_mg_by_day.entry(d).or_default() += f64::from(part);
                }
                if rng.gen_bool(0.1) {
                    let mut results = std::collections::BTreeMap::new();
                    results.insert(Substance::Methadone, true);
                    results.insert(Substance::Opiates, !rng.gen_bool(profile.urine_negative));
                    results.insert(
                        Substance::Methamphetamine,
                        rng.gen_bool((1.0 - profile.urine_negative) / 3.0),
                    );
                    results.insert(Substance::Ketamine, false);
                    urine.push((c.id, d, Outcome::Tested(results)));
                }
            }
            d += Duration::days(1);
        }
    }
    store
        .import_history(&nurse, site.id, &history, &urine, now)
        .await?;
    // Stock: a delivery every two weeks, a close-out every evening with a small measuring error.
    let stock = app.settings.clinic.stock;
    let mut level = 0.0;
    let mut d = today - Duration::days(90);
    while d < today {
        let mut received = 0.0;
        if (today - d).num_days() % 14 == 0 || level < 3000.0 {
            let r = Receipt {
                bottles: 20,
                ml_per_bottle: 500.0,
                concentration_mg_per_ml: stock.concentration_mg_per_ml,
                lot: format!("YX{}", d.format("%y%m%d")),
            };
            store.add_stock_receipt(&nurse, d, &r, now).await?;
            received = r.ml();
        }
        let expected = expected_ml(
            level,
            received,
            dosed_mg_by_day.get(&d).copied().unwrap_or(0.0),
            &stock,
        );
        let measured = (expected + rng.gen_range(-2.0..2.0f64) * 10.0).round() / 10.0;
        let co = CloseOut {
            expected_ml: expected,
            measured_ml: measured,
            variance_ml: measured - expected,
            flagged: false,
        };
        store.save_closeout(&nurse, d, &co, "", now).await?;
        level = measured;
        d += Duration::days(1);
    }
    takehome_steps(app, &site, &with_police_consent).await?;
    services(app, seed, &clients_made).await?;
    city(app, seed, &site, &hash).await?;
    Ok(DemoSummary {
        site,
        clients: clients.len() as i64,
        loaded: true,
    })
}

/// The demo city: a province, the city and two districts; the demo centre and two smaller ones
/// placed in the districts, each small centre with its clients, orders and 90 days of doses
/// (the third skips Sundays and entered last month's doses late, so the comparison shows
/// completeness and timeliness at work); a city CDC and a district police account, scoped.
async fn city(app: &App, seed: u64, demo_site: &Site, hash: &str) -> Result<()> {
    let store: &Store = &app.store;
    let (now, today) = (app.now(), app.today());
    let cli = Actor::cli();
    let mut units = std::collections::HashMap::new();
    for (code, name, level, parent, dhis2) in DEMO_UNITS {
        let parent = parent.and_then(|p| units.get(p));
        let u = store
            .create_org_unit(
                &cli,
                &anxin_storage::org_units::NewOrgUnit {
                    code,
                    name,
                    level,
                    parent,
                    dhis2_code: Some(dhis2),
                },
                now,
            )
            .await?;
        units.insert(code, u);
    }
    let mut sites = std::collections::HashMap::new();
    for (code, name, district, dhis2, _) in DEMO_CITY_CENTRES {
        let site = if code == demo_site.code {
            demo_site.clone()
        } else {
            store.create_site(&cli, code, name, now).await?
        };
        store
            .place_site(&cli, site.id, units.get(district), Some(dhis2), now)
            .await?;
        sites.insert(code, site);
    }
    let mut doctors = std::collections::HashMap::new();
    for (username, role, language, centre, unit) in DEMO_CITY_LOGINS {
        let Some(site) = sites.get(centre) else {
            continue;
        };
        let u = store
            .create_user(
                &cli,
                NewUser {
                    site_id: site.id,
                    username: username.into(),
                    full_name: String::new(),
                    role,
                    password_hash: hash.to_owned(),
                    language: language.into(),
                },
                now,
            )
            .await?;
        if let Some(unit) = unit {
            store.scope_user(&cli, u.id, units.get(unit), now).await?;
        }
        if role == Role::Prescriber {
            doctors.insert(
                centre,
                Actor {
                    user_id: Some(u.id),
                    name: u.username,
                    site_id: Some(site.id),
                },
            );
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc17);
    let last_month_start = crate::indicators::last_months(today, 1)
        .first()
        .map_or(today, |p| p.from);
    for (k, (code, _, _, _, n)) in DEMO_CITY_CENTRES.iter().enumerate().skip(1) {
        let (Some(site), Some(doctor)) = (sites.get(code), doctors.get(code)) else {
            continue;
        };
        let late = k == 2;
        let mut history = Vec::new();
        for i in 0..*n {
            let enrolled_on = today - Duration::days(rng.gen_range(100..1000));
            let uic = format!("{}-{:04}-{}", &code[..2], 100 * k + i + 1, &code[2..]);
            let c = store.create_client(doctor, &uic, enrolled_on, now).await?;
            let order = DoseOrder {
                kind: OrderKind::Maintenance,
                start: today - Duration::days(120),
                mg: 40 + 5 * rng.gen_range(0..12u32),
                steps: vec![],
                split: 1,
                reason: "stable".into(),
            };
            store.add_order(doctor, c.id, &order, now).await?;
            let attend = if i % 5 == 4 { 0.7 } else { 0.95 };
            let mut d = today - Duration::days(90);
            while d < today {
                let sunday = d.format("%u").to_string() == "7";
                if !(late && sunday) && rng.gen_bool(attend) {
                    let given_at = if late && d >= last_month_start {
                        now // entered late, all at once
                    } else {
                        (d.and_hms_opt(8, 30, 0).unwrap_or_default())
                            .and_local_timezone(app.settings.utc_offset)
                            .single()
                            .map_or(now, |t| t.with_timezone(&chrono::Utc))
                    };
                    history.push(HistoricDose {
                        dose: NewDose {
                            client_id: c.id,
                            day: d,
                            portion: 0,
                            mg: order.mg,
                            site_id: site.id,
                            guest: false,
                            rule: "normal".into(),
                        },
                        given_at,
                    });
                }
                d += Duration::days(1);
            }
        }
        store
            .import_history(doctor, site.id, &history, &[], now)
            .await?;
    }
    Ok(())
}

/// The one-stop shop's 90 days: demographics, outreach needle exchange, naloxone, condoms, peer
/// education, HIV/HCV/TB tests with ARV referrals, counselling, vocational training, health
/// examinations, referrals into treatment and therapeutic-community episodes, so that every
/// indicator has a plausible value.
async fn services(app: &App, seed: u64, clients: &[(i64, NaiveDate)]) -> Result<()> {
    use anxin_domain::indicators::Sex;
    use anxin_domain::services::{
        ArvOutcome, ReferralSource, Service, TcEpisode, TcExit, TcPhase, TestResult,
    };
    use anxin_storage::services::{NewEncounter, Subject};
    let store = &app.store;
    let now = app.now();
    let today = app.today();
    let site = store.site_by_code(DEMO_SITE).await?;
    let actor_of = |name: &'static str| async move {
        let u = store
            .user_auth(name)
            .await?
            .map(|u| u.user)
            .ok_or_else(|| Error::Internal("a demo account is missing".into()))?;
        Ok::<_, Error>(Actor {
            user_id: Some(u.id),
            name: u.username,
            site_id: Some(site.id),
        })
    };
    let (peer, counsellor, doctor) = (
        actor_of("peer").await?,
        actor_of("counsellor").await?,
        actor_of("doctor").await?,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0005_e7c1);
    for (id, _) in clients {
        let sex = if rng.gen_bool(0.84) {
            Sex::Male
        } else {
            Sex::Female
        };
        store
            .set_demographics(&counsellor, *id, sex, Some(rng.gen_range(1966..2004)), now)
            .await?;
    }
    let record = |actor: Actor, subject: Subject, on: NaiveDate, service: Service| async move {
        store
            .record_encounter(
                &actor,
                &NewEncounter {
                    subject,
                    on,
                    service,
                },
                today,
                now,
            )
            .await
            .map(|_| ())
    };
    for back in (0..90).rev() {
        let on = today - Duration::days(back);
        for _ in 0..rng.gen_range(2..5) {
            let uic = format!("OR-{:04}", rng.gen_range(1..400));
            let subject = Subject::Anonymous {
                uic,
                sex: if rng.gen_bool(0.8) {
                    Sex::Male
                } else {
                    Sex::Female
                },
                birth_year: Some(rng.gen_range(1970..2005)),
            };
            let given = rng.gen_range(10..40);
            let returned = (f64::from(given) * rng.gen_range(0.85..1.0)) as u32;
            record(
                peer.clone(),
                subject,
                on,
                Service::NeedleExchange {
                    given,
                    returned,
                    reason: None,
                },
            )
            .await?;
        }
        if back % 3 == 0 {
            let (id, _) = clients[rng.gen_range(0..clients.len())];
            record(
                peer.clone(),
                Subject::Client(id),
                on,
                Service::Naloxone { kits: 1 },
            )
            .await?;
            record(
                peer.clone(),
                Subject::Client(id),
                on,
                Service::Condoms { count: 10 },
            )
            .await?;
            record(
                peer.clone(),
                Subject::Client(id),
                on,
                Service::PeerEducation {
                    educator: "peer".into(),
                    topic: "overdose prevention".into(),
                },
            )
            .await?;
        }
        if back % 2 == 0 {
            let (id, _) = clients[rng.gen_range(0..clients.len())];
            let positive = rng.gen_bool(0.06);
            let result = Some(if positive {
                TestResult::Positive
            } else {
                TestResult::Negative
            });
            record(
                counsellor.clone(),
                Subject::Client(id),
                on,
                Service::HivTest {
                    tested_on: Some(on),
                    pre_counselled: true,
                    post_counselled: true,
                    result,
                    told_result: rng.gen_bool(0.95),
                },
            )
            .await?;
            if positive {
                let linked = back > 14 && rng.gen_bool(0.7);
                let outcome = if linked {
                    ArvOutcome::Linked
                } else {
                    ArvOutcome::Pending
                };
                let outcome_on = linked.then(|| on + Duration::days(10));
                record(
                    doctor.clone(),
                    Subject::Client(id),
                    on,
                    Service::ArvReferral {
                        referred_on: on,
                        outcome,
                        outcome_on,
                    },
                )
                .await?;
            }
            let hcv = Some(if rng.gen_bool(0.3) {
                TestResult::Positive
            } else {
                TestResult::Negative
            });
            record(
                doctor.clone(),
                Subject::Client(id),
                on,
                Service::HcvTest {
                    tested_on: Some(on),
                    result: hcv,
                },
            )
            .await?;
        }
        if back % 7 == 0 {
            let (id, _) = clients[rng.gen_range(0..clients.len())];
            record(
                doctor.clone(),
                Subject::Client(id),
                on,
                Service::TbTest {
                    tested_on: Some(on),
                    result: Some(TestResult::Negative),
                },
            )
            .await?;
            record(
                counsellor.clone(),
                Subject::Client(id),
                on,
                Service::Counselling { minutes: Some(45) },
            )
            .await?;
            record(
                counsellor.clone(),
                Subject::Client(id),
                on,
                Service::VocationalTraining {
                    course: "driving".into(),
                },
            )
            .await?;
            record(
                doctor.clone(),
                Subject::Client(id),
                on,
                Service::HealthExam {},
            )
            .await?;
        }
    }
    // Referrals into treatment for the clients who started in the last 90 days.
    let sources = [
        ReferralSource::Police,
        ReferralSource::Outreach,
        ReferralSource::Family,
        ReferralSource::SelfReferred,
    ];
    for (id, enrolled) in clients
        .iter()
        .filter(|(_, d)| today - *d < Duration::days(90))
    {
        record(
            counsellor.clone(),
            Subject::Client(*id),
            *enrolled,
            Service::ReferralIn {
                source: sources[rng.gen_range(0..4)],
            },
        )
        .await?;
    }
    // Therapeutic community: residents in each phase, and past residents with follow-ups.
    let phases = [
        TcPhase::Entry,
        TcPhase::Primary,
        TcPhase::ReEntry,
        TcPhase::Aftercare,
    ];
    for (k, (id, _)) in clients.iter().skip(3).step_by(37).enumerate() {
        let episode = if k < 4 {
            TcEpisode {
                admitted_on: today - Duration::days(30 + 60 * k as i64),
                phase: phases[k],
                left_on: None,
                exit: None,
                urine_negative_6m: None,
                urine_negative_12m: None,
            }
        } else {
            let left = today - Duration::days(400);
            TcEpisode {
                admitted_on: left - Duration::days(365),
                phase: TcPhase::Aftercare,
                left_on: Some(left),
                exit: Some(if k % 3 == 0 {
                    TcExit::DroppedOut
                } else {
                    TcExit::Completed
                }),
                urine_negative_6m: Some(k % 4 != 0),
                urine_negative_12m: Some(k % 5 != 0),
            }
        };
        store
            .open_tc_episode(&counsellor, *id, &episode, today, now)
            .await?;
    }
    Ok(())
}

/// Puts some eligible clients at each step of the take-home programme: a request waiting for
/// the police, approvals, and boxes loaded and handed out (their codes queued in the outbox).
async fn takehome_steps(app: &App, site: &Site, candidates: &[i64]) -> Result<()> {
    let store = &app.store;
    let as_user = |username: &'static str| async move {
        let user = store
            .user_auth(username)
            .await?
            .map(|u| u.user)
            .ok_or_else(|| Error::Internal("a demo account is missing".into()))?;
        Ok::<_, Error>(crate::Actor {
            user_id: user.id,
            username: user.username,
            role: user.role,
            site_id: site.id,
        })
    };
    let doctor = as_user("doctor").await?;
    let police = as_user("police").await?;
    for n in 1..=10 {
        store
            .add_box(&doctor.audit(), &format!("BOX-{n:04}"), app.now())
            .await?;
    }
    let mut step = 0;
    for id in candidates {
        let c = store
            .read_client(&doctor.audit(), *id, "demo", app.now())
            .await?;
        let (e, _) = crate::takehome::eligibility_of(app, &c).await?;
        if e.days < 2 {
            continue;
        }
        let days = i64::from(e.days.min(3));
        let sent = crate::takehome::send_request(app, &doctor, *id, days).await?;
        if step >= 2 {
            crate::takehome::answer(
                app,
                &police,
                sent.request_id,
                &crate::takehome::AnswerBody {
                    decision: "approve".into(),
                    reason: "no criminal record".into(),
                },
            )
            .await?;
        }
        if step >= 5 {
            let serial = format!("BOX-{:04}", step - 4);
            let req = crate::boxes::LoadRequest {
                serial,
                days: u8::try_from(days).unwrap_or(2),
                start: None,
                code_hour: Some(7),
                language: None,
            };
            let load = crate::boxes::load_box(app, &doctor, *id, &req).await?;
            {
                let load_id = load.load.id;
                // Handed out through the same use case as the page (the demo's clients
                // confirmed their phone numbers).
                let confirmed = crate::boxes::HandOut {
                    phone_confirmed: true,
                };
                crate::boxes::hand_out(app, &doctor, &load_id.to_string(), &confirmed).await?;
                if let Ok(l) = store.load(load_id).await {
                    if step <= 6 {
                        demo_gps(app, &doctor, &l, step == 6).await?;
                    }
                }
            }
        }
        step += 1;
        if step >= 8 {
            break;
        }
    }
    Ok(())
}

/// Box GPS for a handed-out load: a tracker, the client's consent, a 120 m home zone and a few
/// hours of fixes — at home, or (`away`) gone from home with its alarm.
async fn demo_gps(
    app: &App,
    doctor: &crate::Actor,
    load: &anxin_storage::boxes::Load,
    away: bool,
) -> Result<()> {
    use anxin_storage::gps::{Batch, NewAlarm, NewPosition, PresenceRow, GPS_PURPOSE};
    let store = &app.store;
    let now = app.now();
    let today = app.today();
    let serial = crate::boxes::serial_of(app, load).await?;
    // One demo box reports over GT06 (marked unauthenticated), the other with a device token.
    let link = if away {
        crate::gps::staff::TrackerLink::Token
    } else {
        crate::gps::staff::TrackerLink::Gt06
    };
    crate::gps::staff::fit_tracker(
        app,
        doctor,
        &serial,
        &format!("8681203000{:05}", load.box_id),
        link,
    )
    .await?;
    store
        .add_consent(
            &doctor.audit(),
            load.client_id,
            GPS_PURPOSE,
            "centre",
            "box position compared with the home zone; police see at home / away / unknown only",
            today,
            today + Duration::days(365),
            now,
        )
        .await?;
    // Somewhere in Kunming, a different street per box.
    let (lat, lon) = (
        25.03 + load.box_id as f64 * 0.004,
        102.70 + load.box_id as f64 * 0.003,
    );
    let zone = anxin_domain::gps::Zone::Circle {
        lat,
        lon,
        radius_m: 120.0,
    };
    crate::gps::staff::set_zone(app, doctor, &load.id.to_string(), &zone).await?;
    let now_ms = now.timestamp_millis();
    let mut batch = Batch::default();
    for k in 0..12i64 {
        let at_ms = now_ms - (12 - k) * 15 * 60_000;
        let gone = away && k >= 9;
        let (la, lo) = if gone {
            (lat + 0.004 + k as f64 * 0.0005, lon + 0.002)
        } else {
            (
                lat + ((k * 7) % 5) as f64 * 0.00012,
                lon - ((k * 3) % 4) as f64 * 0.0001,
            )
        };
        batch.positions.push(NewPosition {
            box_id: load.box_id,
            at_ms,
            lat: la,
            lon: lo,
            received_ms: at_ms,
        });
    }
    let last = batch.positions.last().map(|p| p.at_ms).unwrap_or(now_ms);
    let left_at = now_ms - 3 * 15 * 60_000;
    batch.presence.push(PresenceRow {
        box_id: load.box_id,
        load_id: load.id,
        presence: if away { "away" } else { "at_home" }.into(),
        since_ms: if away {
            left_at + 30 * 60_000
        } else {
            now_ms - 12 * 15 * 60_000
        },
        last_fix_ms: Some(last),
        outside_fixes: if away { 3 } else { 0 },
        first_outside_ms: away.then_some(left_at),
        battery: Some(if away { 67 } else { 83 }),
        online: true,
        last_seen_ms: last,
    });
    if away {
        batch.alarms.push(NewAlarm {
            box_id: load.box_id,
            site_id: load.site_id,
            load_id: Some(load.id),
            kind: "left_home".into(),
            at_ms: left_at + 30 * 60_000,
            at: None,
        });
    }
    store.write_gps_batch(&batch).await?;
    app.gps.invalidate();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_deterministic_and_plausible() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let a = demo_clients(7, today);
        assert_eq!(a, demo_clients(7, today));
        assert_ne!(a, demo_clients(8, today));
        assert_eq!(a.len(), 250);
        let recent = a
            .iter()
            .filter(|(_, d)| today - *d < Duration::days(90))
            .count();
        assert_eq!(recent, 25);
        assert!(a.iter().all(|(_, d)| *d <= today));
        let mut uics: Vec<_> = a.iter().map(|(u, _)| u.clone()).collect();
        uics.dedup();
        assert_eq!(uics.len(), 250);
        for (u, _) in &a {
            anxin_domain::validate::uic(u).unwrap();
        }
    }

    #[tokio::test]
    async fn loading_twice_adds_nothing_the_second_time() {
        let (app, db) = crate::testing::test_app().await;
        let first = load(&app, 1).await.unwrap();
        assert!(first.loaded);
        assert_eq!(first.clients, 250);
        let second = load(&app, 1).await.unwrap();
        assert!(!second.loaded);
        assert_eq!(second.clients, 250);
        assert_eq!(
            app.store.users_of_site(first.site.id).await.unwrap().len(),
            DEMO_LOGINS.len()
        );
        assert_eq!(
            app.store.verify_audit().await.unwrap().map(|n| n > 250),
            Ok(true)
        );
        // Box GPS: one box at home, one away with its alarm on the home page.
        let alarms = app.store.open_alarms(first.site.id, 10).await.unwrap();
        assert_eq!(
            alarms.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
            vec!["left_home"]
        );
        let mut words = vec![];
        for b in app.store.boxes(first.site.id).await.unwrap() {
            if let Some(p) = app.store.presence(b.id).await.unwrap() {
                words.push(p.presence);
            }
        }
        words.sort();
        assert_eq!(words, vec!["at_home", "away"]);
        db.cleanup().await;
    }
}
