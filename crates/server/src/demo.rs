//! The demo centre for `anxin serve --demo`: one site modelled on Ping An Centre No. 1 in Yuxi,
//! a login for every role, and ~250 clients enrolled over three years (a tenth of them in the
//! last 90 days), generated deterministically from a seed so every demo looks the same.
//! Later features add their own history here (doses, urine tests, boxes…).

use anxin_domain::Role;
use anxin_storage::{Actor, NewUser, Site, Store};
use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::AppResult;
use crate::state::AppState;

/// The password of every demo login (printed at start; a demo is not a deployment).
pub const DEMO_PASSWORD: &str = "anxin-demo-2026";

/// The demo site's code.
pub const DEMO_SITE: &str = "YX01";

/// The demo logins: username, role, language.
pub const DEMO_LOGINS: [(&str, Role, &str); 8] = [
    ("admin", Role::Admin, "en"),
    ("manager", Role::Manager, "zh-CN"),
    ("doctor", Role::Prescriber, "zh-CN"),
    ("nurse", Role::Dispenser, "zh-CN"),
    ("counsellor", Role::Counsellor, "zh-CN"),
    ("peer", Role::PeerEducator, "zh-CN"),
    ("cdc", Role::CdcAnalyst, "zh-CN"),
    ("police", Role::PsbOfficer, "zh-CN"),
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

/// Fills an empty database with the demo centre. A database that already holds sites is
/// left alone (`loaded: false`).
pub async fn load(state: &AppState, seed: u64) -> AppResult<DemoSummary> {
    let store: &Store = &state.store;
    if !store.list_sites().await?.is_empty() {
        let site = store.site_by_code(DEMO_SITE).await?;
        let clients = store.count_clients(site.id).await?;
        return Ok(DemoSummary {
            site,
            clients,
            loaded: false,
        });
    }
    let now = state.now();
    let cli = Actor::cli();
    let site = store
        .create_site(
            &cli,
            DEMO_SITE,
            "玉溪市平安社区药物维持治疗中心 (Yuxi Ping An Centre No. 1)",
            now,
        )
        .await?;
    let hash = crate::auth::hash_password(DEMO_PASSWORD).await?;
    let mut enrolled_by = None;
    for (username, role, language) in DEMO_LOGINS {
        let u = store
            .create_user(
                &cli,
                NewUser {
                    site_id: site.id,
                    username: username.into(),
                    role,
                    password_hash: hash.clone(),
                    language: language.into(),
                },
                now,
            )
            .await?;
        if role == Role::Counsellor {
            enrolled_by = Some(u);
        }
    }
    let enroller = enrolled_by
        .map(|u| Actor {
            user_id: Some(u.id),
            name: u.username,
            site_id: Some(site.id),
        })
        .unwrap_or(Actor {
            user_id: None,
            name: "cli".into(),
            site_id: Some(site.id),
        });
    let clients = demo_clients(seed, state.today());
    for (uic, enrolled_on) in &clients {
        store
            .create_client(&enroller, uic, *enrolled_on, now)
            .await?;
    }
    Ok(DemoSummary {
        site,
        clients: clients.len() as i64,
        loaded: true,
    })
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
        let (state, db) = crate::testing::test_state().await;
        let first = load(&state, 1).await.unwrap();
        assert!(first.loaded);
        assert_eq!(first.clients, 250);
        let second = load(&state, 1).await.unwrap();
        assert!(!second.loaded);
        assert_eq!(second.clients, 250);
        assert_eq!(
            state
                .store
                .users_of_site(first.site.id)
                .await
                .unwrap()
                .len(),
            8
        );
        assert_eq!(
            state.store.verify_audit().await.unwrap().map(|n| n > 250),
            Ok(true)
        );
        db.cleanup().await;
    }
}
