//! The application over HTTP, in-process: access control, login, sessions, CSRF, errors,
//! the OpenAPI document, languages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::{Access, Role};
use anxin_server::routes::{Surface, Verb};
use anxin_server::testing::{TestApp, PASSWORD};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use chrono::Duration;
use serde_json::json;

fn method(v: Verb) -> Method {
    match v {
        Verb::Get => Method::GET,
        Verb::Post => Method::POST,
        Verb::Put => Method::PUT,
        Verb::Delete => Method::DELETE,
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
}

#[tokio::test]
async fn a_dispenser_of_site_a_cannot_read_a_client_of_site_b() {
    let app = TestApp::new().await;
    let a = app.site("AAA").await;
    let b = app.site("BBB").await;
    app.user(&a, "nurse.a", Role::Dispenser).await;
    app.user(&b, "doctor.b", Role::Prescriber).await;
    let tb = app.login("doctor.b").await;
    let created = app
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(&tb),
            Some(json!({"uic": "BBB-0001", "enrolled_on": "2026-10-01"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_i64().unwrap();

    let ta = app.login("nurse.a").await;
    let denied = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}"),
            Some(&ta),
            None,
        )
        .await;
    // Answered as a client that does not exist: A learns nothing of B's clients.
    assert_eq!(denied.status, StatusCode::NOT_FOUND);
    assert_eq!(denied.json()["error"]["code"], "not_found");
    assert!(!denied.text.contains("BBB-0001"));
    // Not in A's search either.
    let search = app
        .call(Method::GET, "/api/v1/clients?q=BBB", Some(&ta), None)
        .await;
    assert_eq!(search.json(), json!([]));
    // The same record is open to its own site, and both reads are in the trail.
    let ok = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}"),
            Some(&tb),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["uic"], "BBB-0001");
    let trail = app
        .store
        .audit_of_record("client", &id.to_string())
        .await
        .unwrap();
    let seen: Vec<_> = trail
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("doctor.b", "client.create"),
            ("nurse.a", "client.read.denied"),
            ("doctor.b", "client.read")
        ]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn every_guarded_route_refuses_strangers_and_roles_without_the_permission() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    let mut tokens = vec![];
    for role in Role::ALL {
        let name = format!("u.{}", role.as_str().replace('_', "-"));
        app.user(&site, &name, role).await;
        tokens.push((role, app.login(&name).await));
    }
    let table = anxin_server::route_table();
    let mut checked = 0;
    for spec in table.specs() {
        let path = concrete(spec.path);
        if spec.access != Access::Public {
            // Nobody logged in: programs get 401, people are sent to the login page.
            let a = app.call(method(spec.verb), &path, None, None).await;
            match spec.surface {
                Surface::Api => assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}"),
                Surface::Web => {
                    assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
                    assert_eq!(a.headers[header::LOCATION], "/login");
                }
            }
        }
        if let Access::Needs(p) = spec.access {
            for (role, token) in &tokens {
                if role.has(p) {
                    continue;
                }
                let a = app
                    .call(method(spec.verb), &path, Some(token), Some(json!({})))
                    .await;
                assert_eq!(
                    a.status,
                    StatusCode::FORBIDDEN,
                    "{role} on {:?} {path}",
                    spec.verb
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} refusals checked");
    app.cleanup().await;
}

#[tokio::test]
async fn cdc_and_police_get_403_on_every_client_route() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "cdc.wu", Role::CdcAnalyst).await;
    app.user(&site, "psb.zhao", Role::PsbOfficer).await;
    app.user(&site, "doctor", Role::Prescriber).await;
    let td = app.login("doctor").await;
    app.call(
        Method::POST,
        "/api/v1/clients",
        Some(&td),
        Some(json!({"uic": "YX-0001"})),
    )
    .await;
    let client_routes: Vec<_> = anxin_server::route_table()
        .specs()
        .iter()
        .filter(|s| matches!(s.access, Access::Needs(p) if p.touches_client_records()))
        .cloned()
        .collect();
    assert!(client_routes.len() >= 6);
    for who in ["cdc.wu", "psb.zhao"] {
        let t = app.login(who).await;
        for spec in &client_routes {
            let a = app
                .call(
                    method(spec.verb),
                    &concrete(spec.path),
                    Some(&t),
                    Some(json!({"uic": "YX-0002"})),
                )
                .await;
            assert_eq!(
                a.status,
                StatusCode::FORBIDDEN,
                "{who} {:?} {}",
                spec.verb,
                spec.path
            );
            assert!(!a.text.contains("YX-0001"));
        }
    }
    // Nothing was created by their attempts, and each refusal is in the audit trail.
    let found = app
        .store
        .search_clients(
            &anxin_storage::Actor {
                user_id: None,
                name: "test".into(),
                site_id: Some(site.id),
            },
            "",
            10,
            app.state.now(),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let denials = app.store.recent_audit(site.id, 500).await.unwrap();
    assert!(
        denials
            .iter()
            .filter(|e| e.action == "access.denied" && e.actor == "psb.zhao")
            .count()
            >= client_routes.len()
    );
    app.cleanup().await;
}

/// The account-wide limit (100 failures in a row, NIST SP 800-63B's ceiling) still locks the
/// account everywhere; it takes many addresses to get there, each slowed by its own delays.
#[tokio::test]
async fn the_account_is_locked_after_a_hundred_wrong_passwords_from_many_addresses() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "nurse.li", Role::Dispenser).await;
    // 20 addresses × 5 failures: none of them is ever delayed.
    for i in 1..=100 {
        let addr = format!("10.9.0.{}:40000", (i - 1) / 5 + 1);
        let a = app
            .login_from(&addr, "nurse.li", "wrong-password-123")
            .await;
        if i < 100 {
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "attempt {i}: {}",
                a.text
            );
            assert_eq!(a.json()["error"]["message"], "wrong username or password");
        } else {
            assert_eq!(a.status, StatusCode::LOCKED, "attempt {i}: {}", a.text);
        }
    }
    // The next attempt is refused even with the right password, from a fresh address too.
    let next = app
        .login_from("192.168.1.20:50000", "nurse.li", PASSWORD)
        .await;
    assert_eq!(next.status, StatusCode::LOCKED);
    assert_eq!(next.json()["error"]["code"], "account_locked");
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        app.login_from("192.168.1.20:50000", "nurse.li", PASSWORD)
            .await
            .status,
        StatusCode::LOCKED
    );
    app.clock.advance(Duration::minutes(1));
    assert_eq!(
        app.login_from("192.168.1.20:50000", "nurse.li", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    let trail = app.store.recent_audit(site.id, 200).await.unwrap();
    assert_eq!(
        trail.iter().filter(|e| e.action == "login.failed").count(),
        102
    );
    assert!(trail.iter().any(|e| e.reason.contains("locked until")));
    app.cleanup().await;
}

/// An outsider hammering an account from one address is delayed (429 with growing
/// `Retry-After`), never locks it, and its owner logs in from another address meanwhile.
#[tokio::test]
async fn guessing_from_one_address_is_slowed_without_locking_the_owner_out() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "manager.he", Role::Manager).await;
    app.user(&site, "nurse.li", Role::Dispenser).await;
    let outsider = "203.0.113.66:41000";
    for i in 1..=6 {
        let a = app
            .login_from(outsider, "nurse.li", "wrong-password-123")
            .await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            a.text
        );
    }
    // Six failures: the seventh attempt must wait a second; not even checked meanwhile.
    for pw in ["wrong-password-123", PASSWORD] {
        let a = app.login_from(outsider, "nurse.li", pw).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
        assert_eq!(a.json()["error"]["code"], "too_many_requests");
        assert_eq!(a.headers[header::RETRY_AFTER], "1");
    }
    // The owner, at the window's computer, is not touched.
    let owner = app
        .login_from("192.168.1.20:50000", "nurse.li", PASSWORD)
        .await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.text);
    // Each further failure doubles the wait: 2 s, 4 s, 8 s, …
    for wait in [1, 2, 4, 8, 16, 32] {
        app.clock.advance(Duration::seconds(wait));
        let a = app
            .login_from(outsider, "nurse.li", "wrong-password-123")
            .await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "after {wait} s: {}",
            a.text
        );
        let b = app
            .login_from(outsider, "nurse.li", "wrong-password-123")
            .await;
        assert_eq!(b.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            b.headers[header::RETRY_AFTER],
            (wait * 2).to_string().as_str()
        );
    }
    // Twelve failures, never a lock: the owner still logs in, and so does a second browser.
    let owner = app
        .login_from("192.168.1.21:50000", "nurse.li", PASSWORD)
        .await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.text);
    let tm = app.login("manager.he").await;
    let staff = app
        .call(Method::GET, "/api/v1/staff", Some(&tm), None)
        .await
        .json();
    let li = staff
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "nurse.li")
        .unwrap()
        .clone();
    assert!(li["locked_until"].is_null(), "{li}");
    // Delayed attempts are neither checked nor audited: 12 failures in the trail.
    let trail = app.store.recent_audit(site.id, 200).await.unwrap();
    assert_eq!(
        trail.iter().filter(|e| e.action == "login.failed").count(),
        12
    );
    app.cleanup().await;
}

/// An address spraying many usernames is delayed after 20 failures, whatever the names.
#[tokio::test]
async fn an_address_spraying_usernames_is_delayed() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "nurse.li", Role::Dispenser).await;
    let sprayer = "198.51.100.7:1234";
    for i in 0..20 {
        let a = app
            .login_from(sprayer, &format!("guess{i}"), "wrong-password-123")
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{i}");
    }
    app.login_from(sprayer, "nurse.li", "wrong-password-123")
        .await;
    let a = app
        .login_from(sprayer, "guess99", "wrong-password-123")
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers[header::RETRY_AFTER], "1");
    // While the delay lasts the address is answered from memory, every name alike…
    for name in ["guess100", "nurse.li", "guess101"] {
        let a = app.login_from(sprayer, name, "wrong-password-123").await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
    }
    // …and once it has passed, its next attempt is checked again.
    app.clock.advance(chrono::Duration::seconds(2));
    let a = app
        .login_from(sprayer, "guess102", "wrong-password-123")
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    // Elsewhere, nothing changed.
    assert_eq!(
        app.login_from("192.168.1.20:1", "nurse.li", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    app.cleanup().await;
}

/// An unknown username answers exactly like a known one with a wrong password, at every step:
/// refused, delayed, locked. (It is also verified against an Argon2id hash of the same cost.)
#[tokio::test]
async fn unknown_usernames_are_refused_like_wrong_passwords() {
    let mut config = anxin_server::Config::default();
    config.login.max_failures = 7;
    let app = TestApp::with_config(&config).await;
    let site = app.site("YX01").await;
    app.user(&site, "nurse.li", Role::Dispenser).await;
    let mut answers = Vec::new();
    for step in 1..=10 {
        let known = app
            .login_from("10.0.0.1:9", "nurse.li", "wrong-password-123")
            .await;
        let unknown = app
            .login_from("10.0.0.2:9", "nobody", "wrong-password-123")
            .await;
        let seen = |a: &anxin_server::testing::Answer| {
            (
                a.status,
                a.text.clone(),
                a.headers
                    .get(header::RETRY_AFTER)
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        };
        assert_eq!(seen(&known), seen(&unknown), "step {step}");
        answers.push(known.status);
        // Step 7 comes right after step 6, with no time to wait out the first delay.
        if step != 6 {
            app.clock.advance(Duration::seconds(2));
        }
    }
    use StatusCode as S;
    assert_eq!(
        answers,
        [
            S::UNAUTHORIZED,
            S::UNAUTHORIZED,
            S::UNAUTHORIZED,
            S::UNAUTHORIZED,
            S::UNAUTHORIZED,
            S::UNAUTHORIZED,
            S::TOO_MANY_REQUESTS,
            S::LOCKED, // the 7th failure reaches the account-wide limit
            S::LOCKED,
            S::LOCKED,
        ]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn sessions_end_after_15_idle_minutes_and_after_12_hours() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "nurse.li", Role::Dispenser).await;
    let t = app.login("nurse.li").await;
    app.clock.advance(Duration::minutes(14));
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", Some(&t), None)
            .await
            .status,
        StatusCode::OK
    );
    app.clock.advance(Duration::minutes(15));
    let idle = app.call(Method::GET, "/api/v1/me", Some(&t), None).await;
    assert_eq!(idle.status, StatusCode::UNAUTHORIZED);
    assert!(idle.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    let t = app.login("nurse.li").await;
    for _ in 0..71 {
        app.clock.advance(Duration::minutes(10));
        assert_eq!(
            app.call(Method::GET, "/api/v1/me", Some(&t), None)
                .await
                .status,
            StatusCode::OK
        );
    }
    app.clock.advance(Duration::minutes(10)); // 12 h after login, though never idle
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", Some(&t), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn web_login(app: &TestApp, username: &str) -> (String, String) {
    let page = app
        .send(Request::get("/login").body(Body::empty()).unwrap())
        .await;
    let set = page.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let login_cookie = set.split(';').next().unwrap().to_owned();
    let csrf = login_cookie.split_once('=').unwrap().1.to_owned();
    assert!(page.text.contains(&format!("value=\"{csrf}\"")));
    let form = format!("csrf={csrf}&username={username}&password={PASSWORD}");
    let res = app
        .send(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, &login_cookie)
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    let session = res.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let cookie = session.split(';').next().unwrap().to_owned();
    let me = app
        .send(
            Request::get("/api/v1/me")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let csrf = me.json()["csrf_token"].as_str().unwrap().to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn browser_login_pages_and_csrf() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "manager.he", Role::Manager).await;
    // A login form posted without the login cookie (a cross-site post) is refused.
    let forged = app
        .send(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "csrf=abc&username=manager.he&password={PASSWORD}"
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let (cookie, csrf) = web_login(&app, "manager.he").await;
    let home = app
        .send(
            Request::get("/")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("Centre YX01"));

    let post_staff = |body: String| {
        Request::post("/staff")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, &cookie)
            .body(Body::from(body))
            .unwrap()
    };
    // Without the form's CSRF token the post is refused and nothing is created.
    let no_token = app
        .send(post_staff(format!(
            "username=nurse.new&role=dispenser&password={PASSWORD}"
        )))
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let wrong = app
        .send(post_staff(format!(
            "csrf=nope&username=nurse.new&role=dispenser&password={PASSWORD}"
        )))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(app.store.user_auth("nurse.new").await.unwrap().is_none());
    let ok = app
        .send(post_staff(format!(
            "csrf={csrf}&username=nurse.new&role=dispenser&password={PASSWORD}"
        )))
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert!(app.store.user_auth("nurse.new").await.unwrap().is_some());
    // Cookie-authenticated JSON calls need the header.
    let api = |with: bool| {
        let mut b = Request::post("/api/v1/clients")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &cookie);
        if with {
            b = b.header("x-csrf-token", &csrf);
        }
        b.body(Body::from(r#"{"uic":"YX-0009"}"#)).unwrap()
    };
    assert_eq!(app.send(api(false)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.send(api(true)).await.status, StatusCode::CREATED);
    app.cleanup().await;
}

#[tokio::test]
async fn language_is_remembered_per_account() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "counsellor.ma", Role::Counsellor).await;
    let (cookie, csrf) = web_login(&app, "counsellor.ma").await;
    let home = || {
        app.send(
            Request::get("/")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
    };
    assert!(home().await.text.contains("Signed in as counsellor.ma"));
    let switch = app
        .send(
            Request::post("/language")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, &cookie)
                .body(Body::from(format!("csrf={csrf}&language=zh-CN")))
                .unwrap(),
        )
        .await;
    assert_eq!(switch.status, StatusCode::SEE_OTHER);
    let zh = home().await.text;
    assert!(zh.contains("当前用户：counsellor.ma（心理咨询师）"), "{zh}");
    // A new session of the same account keeps the choice.
    let t = app.login("counsellor.ma").await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", Some(&t), None)
            .await
            .json()["language"],
        "zh-CN"
    );
    let bad = app
        .call(
            Method::PUT,
            "/api/v1/me/language",
            Some(&t),
            Some(json!({"language": "fr"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["error"]["field"], "language");
    // Before login the browser's language decides.
    let page = app
        .send(
            Request::get("/login")
                .header(header::ACCEPT_LANGUAGE, "en-US,en;q=0.9")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(page.text.contains("Log in"));
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = TestApp::new().await;
    let site = app.site("YX01").await;
    app.user(&site, "manager.he", Role::Manager).await;
    let t = app.login("manager.he").await;
    let head = app.store.audit_head().await.unwrap();
    let post =
        |body: serde_json::Value| app.call(Method::POST, "/api/v1/staff", Some(&t), Some(body));

    let a = post(json!({"username": "nurse.x", "role": "boss", "password": PASSWORD})).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json()["error"]["field"], "role");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown role `boss`"));

    let a = post(json!({"username": "nurse.x", "role": "dispenser", "password": "short"})).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json()["error"]["field"], "password");

    // The password policy (NIST SP 800-63B): each refusal names the field and the reason.
    for (pw, why) in [
        ("aaaaaaaaaaaa", "must not be one character repeated"),
        ("            ", "must not be one character repeated"),
        ("password1234", "is too common"),
        ("Nurse.X-spring-tea", "must not contain the username"),
        (
            "tea-at-the-centre-yx01",
            "must not contain the centre's name",
        ),
        (
            "anxin-demo-2026",
            "must not contain the name of this system",
        ),
    ] {
        let a = post(json!({"username": "nurse.x", "role": "dispenser", "password": pw})).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{pw:?}: {}",
            a.text
        );
        assert_eq!(a.json()["error"]["field"], "password");
        let code = a.json()["error"]["code"].as_str().unwrap().to_owned();
        assert!(
            code.starts_with("password."),
            "{pw:?}: a refusal by code: {code}"
        );
        let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(why), "{pw:?}: {message}");
    }

    let a = post(json!({"username": "nurse.x", "role": "dispenser"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["field"], "password");

    let a = post(json!({"username": "nurse.x", "role": 7, "password": PASSWORD})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["field"], "role");

    let a = post(
        json!({"username": "nurse.x", "role": "dispenser", "password": PASSWORD, "colour": "red"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown field `colour`"));

    let raw = app
        .send(
            Request::post("/api/v1/staff")
                .header(header::AUTHORIZATION, format!("Bearer {t}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"username\": "))
                .unwrap(),
        )
        .await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert_eq!(raw.json()["error"]["code"], "bad_request");

    // A manager may not mint police or admin accounts.
    let a = post(json!({"username": "psb.x", "role": "psb_officer", "password": PASSWORD})).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    let a = app
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(&t),
            Some(json!({"uic": "YX-1", "enrolled_on": "2099-01-01"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json()["error"]["field"], "enrolled_on");

    // Nothing of the above reached the database.
    assert_eq!(app.store.users_of_site(site.id).await.unwrap().len(), 1);
    let after = app.store.audit_head().await.unwrap();
    let new_entries = app
        .store
        .recent_audit(site.id, (after.seq - head.seq).max(1))
        .await
        .unwrap();
    assert!(new_entries
        .iter()
        .all(|e| !e.action.starts_with("staff.create") && !e.action.starts_with("client.create")));

    // A duplicate answers 409 with our words, not the database's.
    post(json!({"username": "nurse.y", "role": "dispenser", "password": PASSWORD})).await;
    let dup = post(json!({"username": "nurse.y", "role": "dispenser", "password": PASSWORD})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(
        dup.json()["error"]["message"],
        "username nurse.y is already taken"
    );
    assert!(!dup.text.to_lowercase().contains("unique"));
    app.cleanup().await;
}

/// The whole API contract, committed: a change to any route, parameter, body or answer shows
/// up in review as a change to `snapshots/http__openapi.snap`. The crate version is blanked so
/// that a release alone does not change it.
#[test]
fn the_openapi_document_matches_its_snapshot() {
    let mut doc = anxin_server::route_table().openapi();
    doc["info"]["version"] = json!("[version]");
    insta::assert_json_snapshot!("openapi", doc);
}

/// The document the server serves is the one the snapshot holds.
#[tokio::test]
async fn the_served_openapi_document_is_the_route_tables() {
    let app = TestApp::new().await;
    let served = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json();
    assert_eq!(served, anxin_server::route_table().openapi());
    // Answers are typed: a client search answers a list of client records.
    let search = &served["paths"]["/api/v1/clients"]["get"];
    assert_eq!(
        search["responses"]["200"]["content"]["application/json"]["schema"]["type"],
        "array"
    );
    assert_eq!(search["parameters"][0]["name"], "q");
    assert_eq!(search["parameters"][0]["in"], "query");
    let one = &served["paths"]["/api/v1/clients/{id}"]["get"];
    assert_eq!(one["parameters"][0]["schema"]["type"], "integer");
    app.cleanup().await;
}

#[tokio::test]
async fn every_api_route_is_in_the_openapi_document() {
    let app = TestApp::new().await;
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    let table = anxin_server::route_table();
    let mut api_routes: Vec<(String, String)> = table
        .specs()
        .iter()
        .filter(|s| s.surface == Surface::Api)
        .map(|s| (s.path.to_owned(), format!("{:?}", s.verb).to_lowercase()))
        .collect();
    api_routes.push(("/api/v1/openapi.json".into(), "get".into()));
    for (path, verb) in &api_routes {
        let op = &doc["paths"][path][verb];
        assert!(
            op.is_object(),
            "{verb} {path} missing from the OpenAPI document"
        );
        assert!(op["summary"].is_string());
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        api_routes.len(),
        "document lists routes the server does not have"
    );
    // And each documented route exists: no 404 from the router.
    for (path, verb) in &api_routes {
        let m = Method::from_bytes(verb.to_uppercase().as_bytes()).unwrap();
        let a = app.call(m, &concrete(path), None, None).await;
        assert_ne!(a.status, StatusCode::NOT_FOUND, "{verb} {path}");
    }
    // Permissions are stated in the document.
    assert_eq!(
        doc["paths"]["/api/v1/clients/{id}"]["get"]["x-anxin-permission"],
        "client_read"
    );
    assert!(
        doc["paths"]["/api/v1/staff"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["password"]
            .is_object()
    );
    app.cleanup().await;
}

#[tokio::test]
async fn healthz_and_unknown_routes() {
    let app = TestApp::new().await;
    let h = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(h.status, StatusCode::OK);
    let nf = app
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(nf.status, StatusCode::NOT_FOUND);
    assert_eq!(nf.json()["error"]["code"], "not_found");
    app.store.close().await;
    let down = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    app.cleanup().await;
}

#[tokio::test]
async fn deactivated_accounts_lose_their_sessions_and_managers_can_unlock() {
    let mut config = anxin_server::Config::default();
    config.login.max_failures = 10;
    let app = TestApp::with_config(&config).await;
    let site = app.site("YX01").await;
    app.user(&site, "manager.he", Role::Manager).await;
    let nurse = app.user(&site, "nurse.li", Role::Dispenser).await;
    let tm = app.login("manager.he").await;
    let tn = app.login("nurse.li").await;
    let off = app
        .call(
            Method::POST,
            &format!("/api/v1/staff/{}/deactivate", nurse.id),
            Some(&tm),
            None,
        )
        .await;
    assert_eq!(off.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", Some(&tn), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let refused = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "nurse.li", "password": PASSWORD})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    app.call(
        Method::POST,
        &format!("/api/v1/staff/{}/activate", nurse.id),
        Some(&tm),
        None,
    )
    .await;
    // Ten failures from two addresses (five each, so none is delayed) lock the account.
    for i in 0..10 {
        let from = format!("10.0.0.{}:9", i % 2 + 1);
        app.login_from(&from, "nurse.li", "not-the-password").await;
    }
    assert_eq!(
        app.login_from("10.0.0.3:9", "nurse.li", PASSWORD)
            .await
            .status,
        StatusCode::LOCKED
    );
    let staff = app
        .call(Method::GET, "/api/v1/staff", Some(&tm), None)
        .await
        .json();
    let li = staff
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "nurse.li")
        .unwrap()
        .clone();
    assert!(li["locked_until"].is_string());
    let unlock = app
        .call(
            Method::POST,
            &format!("/api/v1/staff/{}/unlock", nurse.id),
            Some(&tm),
            None,
        )
        .await;
    assert_eq!(unlock.status, StatusCode::NO_CONTENT);
    app.login("nurse.li").await;
    let bad_id = app
        .call(Method::POST, "/api/v1/staff/abc/unlock", Some(&tm), None)
        .await;
    assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.cleanup().await;
}
