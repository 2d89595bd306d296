//! Box GPS end to end: a real GT06 TCP port, a real OsmAnd HTTP port and a real Mosquitto
//! broker feed the pipeline; staff see the state, zone and alarms; the police see one word.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration as StdDuration;

use anxin_server::gps::{self, Ingest};
use anxin_server::testing::TestApp;
use anxin_tracker::gt06::{self, encode};
use anxin_tracker::{Alarm, Fix};
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;
use common::{world_on, World};

const IMEI: &str = "868120301234567";
/// The client's home, and a point about 1.1 km north of it.
const HOME: (f64, f64) = (25.0400, 102.7100);
const AWAY: (f64, f64) = (25.0500, 102.7100);

/// A client with an approved take-home, a box with a tracker (reporting by `link`: `gt06` or
/// `token`) handed out, GPS consent and a 100 m home zone. Returns the client id, the request
/// id, the load id and the device's token (token trackers).
async fn out_with_zone(w: &World, link: &str) -> (i64, i64, i64, Option<String>) {
    let id = w.stable_client("YX-0301", true).await;
    let rid = w.approved(id, 3).await;
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes",
            Some(json!({"serial": "BOX-G1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes/BOX-G1/tracker",
            Some(json!({"imei": "12345"})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("imei")),
        "{e}"
    );
    let (s, t) = w
        .call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes/BOX-G1/tracker",
            Some(json!({"imei": IMEI, "link": link})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().map(str::to_owned);
    assert_eq!(token.is_some(), link == "token", "{t}");
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-G1", "days": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let load = l["load"]["id"].as_i64().unwrap();
    let (s, _) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/loads/{load}/hand-out"),
            Some(json!({"phone_confirmed": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let zone = json!({"kind": "circle", "lat": HOME.0, "lon": HOME.1, "radius_m": 100});
    // No consent to box GPS yet: refused, naming the consent.
    let (s, e) = w
        .call(
            Method::PUT,
            &w.doctor,
            &format!("/api/v1/loads/{load}/home-zone"),
            Some(zone.clone()),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("consent")),
        "{e}"
    );
    let expires = (w.app.state.today() + Duration::days(365)).to_string();
    let (s, _) = w
        .call(Method::POST, &w.counsellor, &format!("/api/v1/clients/{id}/consents"), Some(json!({"purpose": "box_gps", "recipient": "centre", "scope": "box position against the home zone", "expires_on": expires})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = w
        .call(
            Method::PUT,
            &w.doctor,
            &format!("/api/v1/loads/{load}/home-zone"),
            Some(json!({"kind": "circle", "lat": HOME.0, "lon": HOME.1, "radius_m": 5})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("zone.radius_m")),
        "{e}"
    );
    let (s, e) = w
        .call(
            Method::PUT,
            &w.doctor,
            &format!("/api/v1/loads/{load}/home-zone"),
            Some(zone),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    (id, rid, load, token)
}

/// The test moves the clock by hours: each look logs in afresh (sessions idle out after 15 min).
async fn gps_view(w: &World) -> Value {
    let doctor = w.app.login("doctor").await;
    let (s, v) = w
        .call(Method::GET, &doctor, "/api/v1/boxes/BOX-G1/gps", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn alarm_kinds(w: &World) -> Vec<String> {
    let doctor = w.app.login("doctor").await;
    let (s, v) = w
        .call(Method::GET, &doctor, "/api/v1/box-alarms", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn now_ms(w: &World) -> i64 {
    w.app.state.now().timestamp_millis()
}

fn fix(w: &World, at: (f64, f64)) -> Fix {
    // GT06 carries whole seconds.
    Fix {
        at_ms: now_ms(w) / 1000 * 1000,
        lat: at.0,
        lon: at.1,
    }
}

async fn gt06_port(ingest: &Ingest) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(gps::listen::gt06(ingest.clone(), l, Default::default()));
    addr
}

/// Reads what the server sends until `n` bytes came or a short silence.
async fn read_some(sock: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![];
    let mut buf = [0u8; 256];
    while out.len() < n {
        match tokio::time::timeout(StdDuration::from_secs(5), sock.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(k)) => out.extend_from_slice(&buf[..k]),
            Ok(Err(_)) => break,
        }
    }
    out
}

/// Waits until everything sent on `sock` is written: the connection handles packets in order and
/// acknowledges a heartbeat only after submitting what came before it; then the pipeline flushes.
async fn settle(sock: &mut TcpStream, ingest: &Ingest, serial: u16) {
    let hb = encode::heartbeat(80, false, serial);
    sock.write_all(&hb).await.unwrap();
    let ack = ack_of(&hb);
    assert_eq!(read_some(sock, ack.len()).await, ack);
    ingest.flush().await;
}

fn ack_of(frame: &[u8]) -> Vec<u8> {
    let mut d = gt06::Decoder::default();
    d.push(frame);
    let p = d.next().unwrap().unwrap();
    gt06::ack(&p).unwrap()
}

async fn gt06_journey(app: TestApp) {
    let w = world_on(app).await;
    let (client, rid, load, _) = out_with_zone(&w, "gt06").await;
    let ingest = gps::spawn(w.app.state.clone());
    let addr = gt06_port(&ingest).await;

    // An unknown device is refused: no acknowledgement, the connection is closed.
    let mut stranger = TcpStream::connect(addr).await.unwrap();
    stranger
        .write_all(&encode::login("868120309999999", 1))
        .await
        .unwrap();
    assert!(
        read_some(&mut stranger, 1).await.is_empty(),
        "an unknown IMEI gets no answer"
    );

    // Noise, a frame with a broken CRC, then a login: the connection survives and the login is acknowledged.
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let mut bad = encode::location(&fix(&w, HOME), 2);
    let n = bad.len();
    bad[n - 3] ^= 0xFF;
    let login = encode::login(IMEI, 1);
    let mut first = b"\x00\x01garbage".to_vec();
    first.extend_from_slice(&bad);
    first.extend_from_slice(&login);
    sock.write_all(&first).await.unwrap();
    let expected = ack_of(&login);
    assert_eq!(read_some(&mut sock, expected.len()).await, expected);

    // At home: one fix inside the zone.
    sock.write_all(&encode::location(&fix(&w, HOME), 3))
        .await
        .unwrap();
    // A heartbeat with a low battery is acknowledged and raises an alarm.
    let hb = encode::heartbeat(17, false, 4);
    sock.write_all(&hb).await.unwrap();
    let hb_ack = ack_of(&hb);
    assert_eq!(read_some(&mut sock, hb_ack.len()).await, hb_ack);
    ingest.flush().await;
    let v = gps_view(&w).await;
    assert_eq!(v["presence"]["state"], "at_home", "{v}");
    assert_eq!(v["presence"]["battery_percent"], 17, "GT06 level 1 of 6");
    assert_eq!(v["fixes"].as_array().unwrap().len(), 1);
    assert_eq!(alarm_kinds(&w).await, vec!["low_battery"]);

    // The police see the word and since when: no coordinates, and the look is in the ledger.
    let (s, p) = w
        .call(
            Method::GET,
            &w.police,
            &format!("/api/v1/psb/requests/{rid}/box-state"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["request_id", "since", "state"]);
    assert_eq!(p["state"], "at_home");
    let text = p.to_string();
    assert!(
        !text.contains("25.04") && !text.contains("102.71") && !text.contains("lat"),
        "{text}"
    );
    let (_, ledger) = w
        .call(
            Method::GET,
            &w.doctor,
            &format!("/api/v1/clients/{client}/disclosures"),
            None,
        )
        .await;
    assert!(
        ledger.to_string().contains("box state for request"),
        "{ledger}"
    );
    // …and nothing of the staff view.
    let (s, _) = w
        .call(Method::GET, &w.police, "/api/v1/boxes/BOX-G1/gps", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Jitter: fixes that hop out and back never make the box "away".
    for k in 0..4 {
        w.app.clock.advance(Duration::minutes(4));
        let at = if k % 2 == 0 { AWAY } else { HOME };
        sock.write_all(&encode::location(&fix(&w, at), 10 + k))
            .await
            .unwrap();
    }
    settle(&mut sock, &ingest, 279).await;
    assert_eq!(gps_view(&w).await["presence"]["state"], "at_home");

    // Three fixes outside over ten minutes: away, and a "left home" alarm.
    for k in 0..3u16 {
        w.app.clock.advance(Duration::minutes(5));
        sock.write_all(&encode::location(&fix(&w, AWAY), 20 + k))
            .await
            .unwrap();
    }
    settle(&mut sock, &ingest, 289).await;
    let v = gps_view(&w).await;
    assert_eq!(
        v["presence"]["state"], "away",
        "{v:#} {:?}",
        w.app.state.app.gps.stats
    );
    assert!(alarm_kinds(&w).await.contains(&"left_home".to_owned()));
    let police = w.app.login("police").await;
    let (_, p) = w
        .call(
            Method::GET,
            &police,
            &format!("/api/v1/psb/requests/{rid}/box-state"),
            None,
        )
        .await;
    assert_eq!(p["state"], "away");
    // The police page: the word, no number that could be a coordinate.
    let page = w
        .app
        .call(Method::GET, &format!("/psb/{rid}/box"), Some(&police), None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("data-presence=\"away\"") && !page.text.contains("25.05"),
        "{}",
        page.text
    );
    // The staff page draws the zone and the recent fixes, no map tiles.
    let page = w
        .app
        .call(
            Method::GET,
            &format!("/loads/{load}/gps"),
            Some(&w.app.login("doctor").await),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("id=\"gps-drawing\"") && page.text.contains("class=\"zone\""),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("data-link=\"gt06\""),
        "a GT06-only box is marked unauthenticated on the staff page"
    );
    assert_eq!(
        page.text.matches("class=\"fix\"").count(),
        8,
        "every fix kept so far is drawn"
    );
    assert!(
        !page.text.contains("http://tile") && !page.text.contains("https://"),
        "no tiles from the internet"
    );

    // A fix dated a day ahead and impossible coordinates are dropped; the connection stays up.
    let before = w.app.store.position_count().await.unwrap();
    let mut future = fix(&w, HOME);
    future.at_ms += 86_400_000;
    sock.write_all(&encode::location(&future, 30))
        .await
        .unwrap();
    sock.write_all(&encode::location(
        &Fix {
            lat: 0.0,
            lon: 0.0,
            ..fix(&w, HOME)
        },
        31,
    ))
    .await
    .unwrap();
    // A removal alarm still comes through on the same connection.
    let alarm = encode::alarm(Some(&fix(&w, AWAY)), Alarm::Removal, 32);
    sock.write_all(&alarm).await.unwrap();
    let alarm_ack = ack_of(&alarm);
    assert_eq!(read_some(&mut sock, alarm_ack.len()).await, alarm_ack);
    ingest.flush().await;
    assert_eq!(
        w.app.store.position_count().await.unwrap(),
        before + 1,
        "only the alarm's fix is kept"
    );
    assert!(alarm_kinds(&w).await.contains(&"removal".to_owned()));

    // The home page of the centre shows the alarms.
    let home = w
        .app
        .call(Method::GET, "/", Some(&w.app.login("doctor").await), None)
        .await;
    assert!(home.text.contains("id=\"box-alarms\""), "{}", home.text);

    // A flood from one device: the excess is dropped, the server stays up.
    let flooded_before = w
        .app
        .state
        .app
        .gps
        .stats
        .flooded
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut burst = vec![];
    for k in 0..150u16 {
        burst.extend_from_slice(&encode::location(&fix(&w, AWAY), 100 + k));
    }
    sock.write_all(&burst).await.unwrap();
    let hb = encode::heartbeat(80, false, 400);
    sock.write_all(&hb).await.unwrap();
    assert_eq!(
        read_some(&mut sock, hb_ack.len()).await,
        ack_of(&hb),
        "still answering after the flood"
    );
    ingest.flush().await;
    let flooded = w
        .app
        .state
        .app
        .gps
        .stats
        .flooded
        .load(std::sync::atomic::Ordering::Relaxed)
        - flooded_before;
    assert!(flooded >= 80, "dropped {flooded} of 151");

    // Nothing for two hours: unknown, with an offline alarm.
    w.app.clock.advance(Duration::minutes(121));
    ingest.tick().await;
    ingest.flush().await;
    assert_eq!(gps_view(&w).await["presence"]["state"], "unknown");
    assert!(alarm_kinds(&w).await.contains(&"offline".to_owned()));

    // Retention: 31 days on, raw positions are gone; the alarms stay.
    w.app.clock.advance(Duration::days(31));
    ingest.tick().await;
    ingest.flush().await;
    assert_eq!(w.app.store.position_count().await.unwrap(), 0);
    assert!(!alarm_kinds(&w).await.is_empty());

    // Stopping GPS for the load forgets the box's state and positions.
    let doctor = w.app.login("doctor").await;
    let police = w.app.login("police").await;
    let (s, _) = w
        .call(
            Method::DELETE,
            &doctor,
            &format!("/api/v1/loads/{load}/home-zone"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let v = gps_view(&w).await;
    assert!(v["presence"].is_null() && v["zone"].is_null(), "{v}");
    let (s, _) = w
        .call(
            Method::GET,
            &police,
            &format!("/api/v1/psb/requests/{rid}/box-state"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The staff page draws nothing once the zone is gone but still answers.
    let page = w
        .app
        .call(
            Method::GET,
            &format!("/loads/{load}/gps"),
            Some(&doctor),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    w.app.cleanup().await;
}

#[tokio::test]
async fn gt06_trackers_drive_presence_alarms_and_the_police_word_on_sqlite() {
    gt06_journey(TestApp::new().await).await;
}

#[tokio::test]
async fn gt06_trackers_drive_presence_alarms_and_the_police_word_on_postgres() {
    gt06_journey(TestApp::postgres().await).await;
}

/// A bare HTTP/1.1 exchange; returns the status and the body.
async fn http(addr: std::net::SocketAddr, request: String) -> (u16, String) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).await.unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn osmand_reports_over_http_with_clear_refusals() {
    let w = world_on(TestApp::new().await).await;
    let (_, _, _, token) = out_with_zone(&w, "token").await;
    let token = token.unwrap();
    let ingest = gps::spawn(w.app.state.clone());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(gps::listen::osmand(ingest.clone(), l, Default::default()));
    let ts = now_ms(&w) / 1000;
    let get = |q: String| format!("GET /?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

    let (s, body) = http(
        addr,
        get(format!(
            "id=868120309999999&lat=25.04&lon=102.71&timestamp={ts}"
        )),
    )
    .await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("device"), "{body}");
    let (s, body) = http(
        addr,
        get(format!(
            "id={IMEI}&lat=95.5&lon=102.71&timestamp={ts}&token={token}"
        )),
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.starts_with("lat:"), "{body}");
    let (s, body) = http(addr, get(format!("lat=25.04&lon=102.71&timestamp={ts}"))).await;
    assert_eq!(s, 400);
    assert!(body.contains("id"), "{body}");
    // Knowing the IMEI is not enough: without the device's token, or with another, refused.
    for wrong in ["", "&token=0123456789abcdef0123456789abcdef"] {
        let (s, body) = http(
            addr,
            get(format!(
                "id={IMEI}&lat={}&lon={}&timestamp={ts}{wrong}",
                HOME.0, HOME.1
            )),
        )
        .await;
        assert_eq!(s, 401, "{body}");
        assert!(body.starts_with("token:"), "{body}");
    }
    // Nor can a GT06 login stand in for the token tracker.
    let gt06 = gt06_port(&ingest).await;
    let mut fake = TcpStream::connect(gt06).await.unwrap();
    fake.write_all(&encode::login(IMEI, 1)).await.unwrap();
    assert!(
        read_some(&mut fake, 1).await.is_empty(),
        "a GT06 login of a token tracker gets no answer"
    );
    ingest.flush().await;
    let v = gps_view(&w).await;
    assert!(
        v["fixes"].as_array().unwrap().is_empty() && v["presence"]["state"] != "at_home",
        "nothing was taken from the refused reports: {v}"
    );
    let (s, body) = http(
        addr,
        get(format!(
            "id={IMEI}&lat={}&lon={}&timestamp={ts}&batt=76&token={token}",
            HOME.0, HOME.1
        )),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    ingest.flush().await;
    let v = gps_view(&w).await;
    assert_eq!(
        (
            v["presence"]["state"].clone(),
            v["presence"]["battery_percent"].clone()
        ),
        (json!("at_home"), json!(76)),
        "{v}"
    );

    // The JSON body of the Traccar client apps.
    w.app.clock.advance(Duration::minutes(1));
    let iso = w.app.state.now().to_rfc3339();
    let body = json!({"device_id": IMEI, "token": token, "location": {"timestamp": iso, "coords": {"latitude": HOME.0, "longitude": HOME.1}, "battery": {"level": 0.5}}}).to_string();
    let req = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let (s, answer) = http(addr, req).await;
    assert_eq!(s, 200, "{answer}");
    ingest.flush().await;
    let v = gps_view(&w).await;
    assert_eq!(v["presence"]["battery_percent"], 50, "{v}");
    assert_eq!(v["fixes"].as_array().unwrap().len(), 2);
    w.app.cleanup().await;
}

struct Broker(std::process::Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Mosquitto of our own on a free port (the Debian package; `.ci/run` installs it).
async fn mosquitto() -> (Broker, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("mosquitto is not installed: apt-get install mosquitto (.ci/run does)");
    // The guard kills and waits for the broker however the test ends.
    let broker = Broker(
        std::process::Command::new(bin)
            .args(["-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..50 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (broker, port);
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("mosquitto did not start on port {port}");
}

#[tokio::test]
async fn mqtt_positions_and_last_will_through_a_real_mosquitto() {
    let (_broker, port) = mosquitto().await;
    let w = world_on(TestApp::new().await).await;
    let (_, _, _, token) = out_with_zone(&w, "token").await;
    let token = token.unwrap();
    let ingest = gps::spawn(w.app.state.clone());
    let cfg = w.app.state.settings.gps.clone();
    gps::listen::mqtt(ingest.clone(), &format!("mqtt://127.0.0.1:{port}"), &cfg).unwrap();

    // The box's own client, with a last will that marks it offline.
    let mut opts = rumqttc::MqttOptions::new("box-g1", "127.0.0.1", port);
    opts.set_keep_alive(StdDuration::from_secs(5));
    let status = anxin_tracker::mqtt::status_topic("anxin/boxes", IMEI);
    opts.set_last_will(rumqttc::LastWill::new(
        &status,
        "offline",
        rumqttc::QoS::AtLeastOnce,
        false,
    ));
    let (boxc, mut events) = rumqttc::AsyncClient::new(opts, 16);
    let pump = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let topic = anxin_tracker::mqtt::position_topic("anxin/boxes", IMEI);

    // Publish until the server (which subscribes once connected) has taken a fix.
    let mut seen = false;
    for _ in 0..40 {
        let report = anxin_tracker::Report {
            device: IMEI.into(),
            fix: Some(fix(&w, HOME)),
            battery_percent: Some(64),
            alarm: None,
        };
        let mut payload: Value =
            serde_json::from_slice(&anxin_tracker::mqtt::position_payload(&report)).unwrap();
        payload["token"] = json!(token);
        boxc.publish(
            &topic,
            rumqttc::QoS::AtLeastOnce,
            false,
            serde_json::to_vec(&payload).unwrap(),
        )
        .await
        .unwrap();
        tokio::time::sleep(StdDuration::from_millis(250)).await;
        ingest.flush().await;
        if gps_view(&w).await["presence"]["state"] == "at_home" {
            seen = true;
            break;
        }
        w.app.clock.advance(Duration::seconds(5));
    }
    assert!(seen, "no MQTT position reached the server");
    // Knowing the IMEI and the topic is not enough: a position without the token is dropped.
    let unauthenticated = || {
        w.app
            .state
            .app
            .gps
            .stats
            .unauthenticated
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = unauthenticated();
    let forged = anxin_tracker::Report {
        device: IMEI.into(),
        fix: Some(fix(&w, AWAY)),
        battery_percent: Some(10),
        alarm: None,
    };
    boxc.publish(
        &topic,
        rumqttc::QoS::AtLeastOnce,
        false,
        anxin_tracker::mqtt::position_payload(&forged),
    )
    .await
    .unwrap();
    for _ in 0..40 {
        if unauthenticated() > before {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(
        unauthenticated(),
        before + 1,
        "the forged position was refused"
    );
    ingest.flush().await;
    assert_eq!(
        gps_view(&w).await["presence"]["battery_percent"],
        64,
        "nothing of it was kept"
    );
    assert_eq!(gps_view(&w).await["presence"]["battery_percent"], 64);
    // A payload with a bad field is dropped without harm.
    boxc.publish(
        &topic,
        rumqttc::QoS::AtLeastOnce,
        false,
        br#"{"lat":"north","lon":102.7,"ts":1}"#.to_vec(),
    )
    .await
    .unwrap();

    // The box vanishes without a goodbye: the broker publishes its will, an offline alarm follows.
    pump.abort();
    drop(boxc);
    let mut offline = false;
    for _ in 0..60 {
        tokio::time::sleep(StdDuration::from_millis(250)).await;
        ingest.flush().await;
        if alarm_kinds(&w).await.contains(&"offline".to_owned()) {
            offline = true;
            break;
        }
    }
    assert!(offline, "the last will did not mark the box offline");
    assert_eq!(gps_view(&w).await["presence"]["online"], false);
    w.app.cleanup().await;
}

/// Whether the server closed `sock` within `within` (a read answers end of stream or a reset).
async fn closed_within(sock: &mut TcpStream, within: StdDuration) -> bool {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(within, sock.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// The GT06 port holds what it is told to: a connection that never logs in is closed at the
/// deadline, one beyond the cap per address is closed at once, and a closed one frees its place.
#[tokio::test]
async fn gt06_connections_are_capped_and_must_log_in_in_time() {
    let w = world_on(TestApp::new().await).await;
    let ingest = gps::spawn(w.app.state.clone());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let limits = gps::listen::PortLimits {
        max_connections: 10,
        max_per_address: 2,
        login_deadline: StdDuration::from_millis(600),
        idle: StdDuration::from_secs(60),
    };
    tokio::spawn(gps::listen::gt06(ingest.clone(), l, limits));
    let started = std::time::Instant::now();
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    // A third from the same address is closed at once.
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut third, StdDuration::from_millis(300)).await,
        "beyond the cap per address"
    );
    // The two silent ones are still open before the deadline…
    assert!(!closed_within(&mut first, StdDuration::from_millis(100)).await);
    // …and closed after it, without a word.
    assert!(
        closed_within(&mut first, StdDuration::from_secs(3)).await,
        "no login: closed"
    );
    assert!(closed_within(&mut second, StdDuration::from_secs(1)).await);
    assert!(
        started.elapsed() >= StdDuration::from_millis(550),
        "not before the deadline"
    );
    // Their places are free again: a tracker that logs in (an unknown IMEI here) is read.
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let mut again = TcpStream::connect(addr).await.unwrap();
    assert!(
        !closed_within(&mut again, StdDuration::from_millis(200)).await,
        "a place again"
    );
    again
        .write_all(&encode::login("868120309999999", 1))
        .await
        .unwrap();
    assert!(
        closed_within(&mut again, StdDuration::from_secs(2)).await,
        "an unknown IMEI is closed"
    );
    w.app.cleanup().await;
}

/// Fitting a tracker in the page: a bad IMEI is refused at its field in Chinese with what was
/// typed kept; a token tracker's token is shown once; a GT06 box is marked unauthenticated.
#[tokio::test]
async fn a_tracker_is_fitted_in_the_page_with_its_token_shown_once() {
    let w = world_on(TestApp::new().await).await;
    let id = w.stable_client("YX-0302", true).await;
    w.approved(id, 2).await;
    for serial in ["BOX-T1", "BOX-T2"] {
        w.call(
            Method::POST,
            &w.doctor,
            "/api/v1/boxes",
            Some(json!({ "serial": serial })),
        )
        .await;
    }
    let (s, l) = w
        .call(
            Method::POST,
            &w.doctor,
            &format!("/api/v1/clients/{id}/loads"),
            Some(json!({"serial": "BOX-T1", "days": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let load = l["load"]["id"].as_i64().unwrap();
    let mut doctor = w.app.browser("doctor", "zh-CN").await;
    let form = format!("/loads/{load}/tracker");
    let a = doctor
        .submit(&form, &[("imei", "12345"), ("link", "token")])
        .await;
    let shown = common::error_at(&a.text, "imei").expect("refused at the IMEI");
    assert!(shown.contains("IMEI"), "{shown}");
    assert!(a.text.contains("value=\"12345\""), "what was typed is kept");
    let a = doctor
        .submit(&form, &[("imei", "868120301234568"), ("link", "token")])
        .await;
    assert!(a.text.contains("id=\"tracker-token\""), "{}", a.text);
    assert_eq!(a.headers[axum::http::header::CACHE_CONTROL], "no-store");
    let token = a
        .text
        .split("class=\"device-token\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 32, "{token}");
    let kept = w
        .app
        .store
        .tracker("868120301234568")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        kept.token_hash.as_deref(),
        Some(token.as_str()),
        "only its hash rests"
    );
    assert_eq!(kept.token_hash, Some(anxin_app::gps::token_hash(&token)));
    let page = doctor.get(&format!("/loads/{load}/gps")).await;
    assert!(page.text.contains("data-link=\"token\""), "{}", page.text);
    assert!(!page.text.contains(&token), "the token is not shown again");
}

/// The OsmAnd port holds only its caps' worth of connections: one beyond is closed at once, and
/// a place freed is taken again.
#[tokio::test]
async fn the_osmand_port_closes_connections_beyond_its_caps() {
    let w = world_on(TestApp::new().await).await;
    let ingest = gps::spawn(w.app.state.clone());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let limits = gps::listen::PortLimits {
        max_connections: 3,
        max_per_address: 2,
        ..Default::default()
    };
    tokio::spawn(gps::listen::osmand(ingest.clone(), l, limits));
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut third, StdDuration::from_secs(2)).await,
        "a third idle connection from one address is closed at once"
    );
    assert!(!closed_within(&mut first, StdDuration::from_millis(300)).await);
    assert!(!closed_within(&mut second, StdDuration::from_millis(300)).await);
    drop(first);
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    let (s, body) = http(
        addr,
        "GET /?id=868120309999999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert_eq!(s, 404, "the freed place answers: {body}");
    w.app.cleanup().await;
}
