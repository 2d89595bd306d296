//! Test helpers in the style of crates.io's `TestApp`: the whole application on a fresh
//! SQLite database with a manual clock, called in-process.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use anxin_domain::Role;
use anxin_storage::testing::TestDb;
use anxin_storage::{Actor, NewUser, Site, Store, User};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::{TimeZone, Utc};
use serde_json::Value;
use tower::ServiceExt;

use crate::clock::ManualClock;
use crate::config::Config;
use crate::i18n::I18n;
use crate::state::{AppState, Settings};

/// The password every test account gets.
pub const PASSWORD: &str = "correct-horse-battery";

/// A running application (in-process) over its own database.
pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub router: Router,
    /// The database behind the application, for tests that look at what was written (the
    /// server itself reaches it only through the application core).
    pub store: Store,
    /// The application's data key (tests open what it sealed).
    pub vault: anxin_storage::vault::Vault,
    /// The simulated box bench the box station plugs boxes in from (`BOX-nnnn/box.json`),
    /// unless the configuration names another station.
    pub bench: Option<std::path::PathBuf>,
    db: TestDb,
}

/// An HTTP answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
    /// The body as it came (an image).
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl TestApp {
    /// A fresh application whose clock reads 2026-11-22 09:00 at the centre (+08:00).
    pub async fn new() -> TestApp {
        TestApp::on(TestDb::sqlite().await).await
    }

    /// The same on a fresh PostgreSQL database.
    pub async fn postgres() -> TestApp {
        TestApp::on(TestDb::postgres().await).await
    }

    /// A fresh application (SQLite) with this configuration's settings.
    pub async fn with_config(config: &Config) -> TestApp {
        TestApp::on_with(TestDb::sqlite().await, config).await
    }

    async fn on(db: TestDb) -> TestApp {
        TestApp::on_with(db, &Config::default()).await
    }

    async fn on_with(db: TestDb, config: &Config) -> TestApp {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap(),
        ));
        let mut settings = Settings::from_config(config).unwrap();
        let mut bench = None;
        if settings.box_station.is_none() {
            let dir = anxin_app::testing::fresh_bench(&std::env::temp_dir());
            settings.box_station = Some(anxin_app::station::Line::Bench(dir.clone()));
            bench = Some(dir);
        }
        let app = anxin_app::testing::app_on(&db, clock.clone(), settings.app_settings());
        let state = AppState::new(app, I18n::load().unwrap(), settings);
        let router = crate::app(state.clone());
        TestApp {
            state,
            clock,
            router,
            store: db.store.clone(),
            vault: anxin_app::testing::test_vault(),
            bench,
            db,
        }
    }

    /// The file of the simulated box `serial` on the bench (for `anxin-box-sim` commands: the
    /// client typing a code at home).
    pub fn bench_box(&self, serial: &str) -> std::path::PathBuf {
        self.bench
            .as_ref()
            .expect("this test app has a simulated bench")
            .join(serial)
            .join("box.json")
    }

    /// Adds a site.
    pub async fn site(&self, code: &str) -> Site {
        self.store
            .create_site(
                &Actor::cli(),
                code,
                &format!("Centre {code}"),
                self.state.now(),
            )
            .await
            .unwrap()
    }

    /// Adds a staff account with [`PASSWORD`].
    pub async fn user(&self, site: &Site, username: &str, role: Role) -> User {
        let context = anxin_domain::auth::PasswordContext {
            username,
            centre_name: &site.name,
            centre_code: &site.code,
        };
        let hash = anxin_app::passwords::hash_password(PASSWORD, &context)
            .await
            .unwrap();
        self.store
            .create_user(
                &Actor::cli(),
                NewUser {
                    site_id: site.id,
                    username: username.into(),
                    full_name: String::new(),
                    role,
                    password_hash: hash,
                    language: "en".into(),
                },
                self.state.now(),
            )
            .await
            .unwrap()
    }

    /// Sends a request through the whole router.
    pub async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: bytes.to_vec(),
        }
    }

    /// A JSON call with an optional bearer token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    /// A JSON call as if from the client at `addr` (what `ConnectInfo` carries in a served app).
    pub async fn call_from(
        &self,
        addr: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let peer: std::net::SocketAddr = addr.parse().unwrap();
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .extension(axum::extract::ConnectInfo(peer));
        b = b.header(header::CONTENT_TYPE, "application/json");
        let req = b
            .body(Body::from(body.map(|v| v.to_string()).unwrap_or_default()))
            .unwrap();
        self.send(req).await
    }

    /// A login attempt through the API from the client at `addr`.
    pub async fn login_from(&self, addr: &str, username: &str, password: &str) -> Answer {
        self.call_from(
            addr,
            Method::POST,
            "/api/v1/auth/login",
            Some(serde_json::json!({"username": username, "password": password})),
        )
        .await
    }

    /// Logs in through the API and returns the bearer token.
    pub async fn login(&self, username: &str) -> String {
        let a = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "login of {username}: {}", a.text);
        a.json()["token"].as_str().unwrap().to_owned()
    }

    /// Drops the database.
    pub async fn cleanup(self) {
        self.db.cleanup().await;
    }
}

/// A browser session of one account: the session cookie, its CSRF token, and the flash and form
/// cookies a redirect leaves for the next page.
pub struct Browser<'a> {
    app: &'a TestApp,
    session: String,
    pub csrf: String,
    carried: Vec<String>,
    /// The last page shown (an upload sends it as its `Referer`, as a browser does).
    last_page: Option<String>,
}

impl TestApp {
    /// Logs `username` in as a browser would, its account set to `language` (`zh-CN`, `en`).
    pub async fn browser(&self, username: &str, language: &str) -> Browser<'_> {
        self.browser_with(username, PASSWORD, language).await
    }

    /// [`TestApp::browser`] with another password (e.g. a temporary one after a reset).
    pub async fn browser_with(
        &self,
        username: &str,
        password: &str,
        language: &str,
    ) -> Browser<'_> {
        let user = self.store.user_auth(username).await.unwrap().unwrap().user;
        self.store.set_language(user.id, language).await.unwrap();
        let a = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "login of {username}: {}", a.text);
        let token = a.json()["token"].as_str().unwrap().to_owned();
        let me = self
            .call(Method::GET, "/api/v1/me", Some(&token), None)
            .await;
        Browser {
            app: self,
            session: format!("{}={token}", crate::auth::SESSION_COOKIE),
            csrf: me.json()["csrf_token"].as_str().unwrap().to_owned(),
            carried: vec![],
            last_page: None,
        }
    }
}

impl Browser<'_> {
    fn cookies(&self) -> String {
        std::iter::once(self.session.clone())
            .chain(self.carried.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, a: &Answer) {
        for v in a.headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap_or_default();
            let pair = v.split(';').next().unwrap_or_default().to_owned();
            let name = pair.split('=').next().unwrap_or_default().to_owned();
            if name == crate::auth::SESSION_COOKIE {
                continue;
            }
            self.carried.retain(|c| !c.starts_with(&format!("{name}=")));
            if !v.contains("Max-Age=0") {
                self.carried.push(pair);
            }
        }
    }

    /// A page.
    pub async fn get(&mut self, path: &str) -> Answer {
        let req = Request::get(path)
            .header(header::COOKIE, self.cookies())
            .body(Body::empty())
            .unwrap();
        let a = self.app.send(req).await;
        self.keep_cookies(&a);
        self.last_page = Some(path.to_owned());
        a
    }

    /// Submits a form (the CSRF token added) and follows the redirect, as a browser does.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        body.append_pair("csrf", &self.csrf);
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        let req = Request::post(path)
            .header(header::COOKIE, self.cookies())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.finish()))
            .unwrap();
        let a = self.app.send(req).await;
        self.keep_cookies(&a);
        if a.status.is_redirection() {
            let to = a.headers[header::LOCATION].to_str().unwrap().to_owned();
            assert!(
                !to.contains('?'),
                "a form answered with a message in the URL: {to}"
            );
            return self.get(&to).await;
        }
        a
    }
}

impl Browser<'_> {
    /// Submits an upload form (`multipart/form-data`): the CSRF token and `fields` first, then
    /// the file `bytes` as field `file_field` named `filename` of `content_type`; follows the
    /// redirect.
    pub async fn upload(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file_field: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Answer {
        let boundary = "----anxin-test-boundary-7d1f";
        let mut body = Vec::new();
        let mut text = |name: &str, value: &str| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        };
        text("csrf", &self.csrf.clone());
        for (k, v) in fields {
            text(k, v);
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut req = Request::post(path);
        if let Some(from) = &self.last_page {
            req = req.header(header::REFERER, format!("http://localhost{from}"));
        }
        let req = req
            .header(header::COOKIE, self.cookies())
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        let a = self.app.send(req).await;
        self.keep_cookies(&a);
        if a.status.is_redirection() {
            let to = a.headers[header::LOCATION].to_str().unwrap().to_owned();
            return self.get(&to).await;
        }
        a
    }
}

/// A state over a fresh database (for unit tests that build their own router).
pub async fn test_state() -> (AppState, TestDb) {
    let app = TestApp::new().await;
    (app.state, app.db)
}
