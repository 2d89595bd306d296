//! Anxin's MQTT layout: one topic per box under a configured prefix.
//!
//! - `{prefix}/{device}/position`: a JSON report
//!   `{"lat":..,"lon":..,"ts":unix_ms or ISO-8601,"batt":0-100,"alarm":"tamper"|...}`;
//!   every field optional, but `lat` and `lon` come together and need `ts`; unknown fields
//!   are ignored; `null` is absent; a wrong type names the field.
//! - `{prefix}/{device}/status`: `online` / `offline`, the device's retained online flag and
//!   the broker's last will.
//!
//! An empty prefix means topics start with the device. The device part must be a valid
//! device id ([`crate::valid_device_id`]), which also keeps MQTT wildcards out.

use serde_json::{Map, Value};

use crate::json;
use crate::{check_device_id, parse_iso_ms, valid_device_id, Alarm, Fix, Report, ReportError};

/// Which kind of topic a message came on, and for which device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic<'a> {
    Position { device: &'a str },
    Status { device: &'a str },
}

/// Splits `topic` into device and kind; `None` for anything that is not ours.
pub fn parse_topic<'a>(prefix: &str, topic: &'a str) -> Option<Topic<'a>> {
    let prefix = prefix.trim_end_matches('/');
    let rest = if prefix.is_empty() {
        topic
    } else {
        topic.strip_prefix(prefix)?.strip_prefix('/')?
    };
    let (device, kind) = rest.split_once('/')?;
    if !valid_device_id(device) {
        return None;
    }
    match kind {
        "position" => Some(Topic::Position { device }),
        "status" => Some(Topic::Status { device }),
        _ => None,
    }
}

/// The topic a device publishes its reports on.
pub fn position_topic(prefix: &str, device: &str) -> String {
    topic(prefix, device, "position")
}

/// The topic of a device's online flag and last will.
pub fn status_topic(prefix: &str, device: &str) -> String {
    topic(prefix, device, "status")
}

fn topic(prefix: &str, device: &str, kind: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        format!("{device}/{kind}")
    } else {
        format!("{prefix}/{device}/{kind}")
    }
}

/// A status payload: `Some(true)` for `online`, `Some(false)` for `offline` (ASCII
/// case-insensitive, surrounding whitespace ignored), `None` otherwise.
pub fn parse_status(payload: &[u8]) -> Option<bool> {
    let s = std::str::from_utf8(payload).ok()?.trim();
    if s.eq_ignore_ascii_case("online") {
        Some(true)
    } else if s.eq_ignore_ascii_case("offline") {
        Some(false)
    } else {
        None
    }
}

/// Parses a position payload for `device` (taken from the topic).
pub fn parse_position(device: &str, payload: &[u8]) -> Result<Report, ReportError> {
    let device = check_device_id("device", device)?;
    let obj = json::object(payload)?;
    let lat = json::number(&obj, "lat", "lat")?;
    let lon = json::number(&obj, "lon", "lon")?;
    let fix = match (lat, lon) {
        (None, None) => None,
        (Some(_), None) => return Err(ReportError::missing("lon")),
        (None, Some(_)) => return Err(ReportError::missing("lat")),
        (Some(lat), Some(lon)) => {
            let at_ms = match json::field(&obj, "ts") {
                None => return Err(ReportError::missing("ts")),
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(ms) => ms,
                    None => {
                        return Err(ReportError::invalid(
                            "ts",
                            format!("{n} is not whole Unix milliseconds"),
                        ))
                    }
                },
                Some(Value::String(s)) => parse_iso_ms(s).ok_or_else(|| {
                    let shown: String = s.chars().take(40).collect();
                    ReportError::invalid("ts", format!("{shown:?} is not an ISO-8601 time"))
                })?,
                Some(other) => {
                    return Err(ReportError::invalid(
                        "ts",
                        format!(
                            "must be Unix milliseconds or an ISO-8601 string, not {}",
                            json::kind(other)
                        ),
                    ))
                }
            };
            Some(Fix { at_ms, lat, lon })
        }
    };
    let battery_percent = match json::number(&obj, "batt", "batt")? {
        None => None,
        Some(b) => Some(crate::percent(b).ok_or_else(|| ReportError::OutOfRange {
            field: "batt".into(),
            value: b.to_string(),
            range: "0..100",
        })?),
    };
    let alarm = json::string(&obj, "alarm", "alarm")?
        .filter(|a| !a.trim().is_empty())
        .map(|a| Alarm::parse(a).unwrap_or_else(|| Alarm::from_name(a)));
    Ok(Report {
        device,
        fix,
        battery_percent,
        alarm,
    })
}

/// The payload [`parse_position`] reads, for tests and the simulator (`ts` in Unix ms; absent
/// parts left out; the device goes in the topic).
pub fn position_payload(report: &Report) -> Vec<u8> {
    let mut obj = Map::new();
    if let Some(fix) = report.fix {
        obj.insert("lat".into(), Value::from(fix.lat));
        obj.insert("lon".into(), Value::from(fix.lon));
        obj.insert("ts".into(), Value::from(fix.at_ms));
    }
    if let Some(b) = report.battery_percent {
        obj.insert("batt".into(), Value::from(b));
    }
    if let Some(a) = report.alarm {
        obj.insert("alarm".into(), Value::from(a.as_str()));
    }
    Value::Object(obj).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topics() {
        assert_eq!(
            parse_topic("anxin/boxes", "anxin/boxes/864717003283581/position"),
            Some(Topic::Position {
                device: "864717003283581"
            })
        );
        assert_eq!(
            parse_topic("anxin/boxes/", "anxin/boxes/b-1/status"),
            Some(Topic::Status { device: "b-1" })
        );
        assert_eq!(
            parse_topic("", "b-1/position"),
            Some(Topic::Position { device: "b-1" })
        );
        assert_eq!(parse_topic("anxin", "anxin/b-1/position/extra"), None);
        assert_eq!(parse_topic("anxin", "anxin/b-1/positions"), None);
        assert_eq!(parse_topic("anxin", "anxin//position"), None);
        assert_eq!(parse_topic("anxin", "anxin/+/position"), None);
        assert_eq!(parse_topic("anxin", "anxinx/b-1/position"), None);
        assert_eq!(parse_topic("anxin", "other/b-1/position"), None);
        assert_eq!(parse_topic("anxin", "anxin/b-1"), None);
        assert_eq!(position_topic("anxin/", "b-1"), "anxin/b-1/position");
        assert_eq!(status_topic("", "b-1"), "b-1/status");
        assert_eq!(parse_status(b"online"), Some(true));
        assert_eq!(parse_status(b" OFFLINE\n"), Some(false));
        assert_eq!(parse_status(b"1"), None);
        assert_eq!(parse_status(&[0xFF]), None);
    }

    #[test]
    fn payloads() {
        let r = parse_position(
            "b-1",
            br#"{"lat":31.2304,"lon":121.4737,"ts":1735689600000,"batt":64,"alarm":"tamper","rssi":-70}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Report {
                device: "b-1".into(),
                fix: Some(Fix {
                    at_ms: 1_735_689_600_000,
                    lat: 31.2304,
                    lon: 121.4737
                }),
                battery_percent: Some(64),
                alarm: Some(Alarm::Tamper),
            }
        );
        let r = parse_position(
            "b-1",
            br#"{"lat":1.5,"lon":2.5,"ts":"2025-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(r.fix.unwrap().at_ms, 1_735_689_600_000);
        let r = parse_position("b-1", br#"{"alarm":"low_battery","batt":null}"#).unwrap();
        assert_eq!(
            (r.fix, r.battery_percent, r.alarm),
            (None, None, Some(Alarm::LowBattery))
        );
        let r = parse_position("b-1", br#"{"alarm":"powerCut"}"#).unwrap();
        assert_eq!(r.alarm, Some(Alarm::Removal));
    }

    #[test]
    fn payload_errors_name_the_field() {
        let e = |p: &str| parse_position("b-1", p.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            e(r#"{"lat":"31","lon":1,"ts":1}"#),
            "lat: must be a number, not a string"
        );
        assert_eq!(e(r#"{"lat":31,"ts":1}"#), "lon: missing");
        assert_eq!(e(r#"{"lat":31,"lon":1}"#), "ts: missing");
        assert_eq!(
            e(r#"{"lat":31,"lon":1,"ts":1.5}"#),
            "ts: 1.5 is not whole Unix milliseconds"
        );
        assert_eq!(
            e(r#"{"lat":31,"lon":1,"ts":true}"#),
            "ts: must be Unix milliseconds or an ISO-8601 string, not a boolean"
        );
        assert_eq!(e(r#"{"batt":101}"#), "batt: 101 is outside 0..100");
        assert_eq!(e(r#"{"alarm":3}"#), "alarm: must be a string, not a number");
        assert_eq!(
            e("online"),
            "body: not JSON (expected value at line 1 column 1)"
        );
        assert_eq!(
            parse_position("a/b", b"{}").unwrap_err().to_string(),
            "device: \"a/b\" is not a device id (1-64 letters, digits, '-', '_', '.', ':')"
        );
    }

    proptest! {
        #[test]
        fn payload_round_trip(
            lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, at_ms in any::<i64>(),
            batt in proptest::option::of(0u8..=100),
            alarm in proptest::option::of(proptest::sample::select(Alarm::ALL.to_vec())),
            with_fix in any::<bool>(),
        ) {
            let report = Report {
                device: "b-1".into(),
                fix: with_fix.then_some(Fix { at_ms, lat, lon }),
                battery_percent: batt,
                alarm,
            };
            let back = parse_position("b-1", &position_payload(&report)).unwrap();
            // serde_json parses floats to within an ulp (no `float_roundtrip`), far below
            // what a GPS measures.
            match (back.fix, report.fix) {
                (Some(a), Some(b)) => {
                    prop_assert_eq!(a.at_ms, b.at_ms);
                    prop_assert!((a.lat - b.lat).abs() < 1e-9 && (a.lon - b.lon).abs() < 1e-9);
                }
                (a, b) => prop_assert_eq!(a, b),
            }
            prop_assert_eq!(back.battery_percent, report.battery_percent);
            prop_assert_eq!(back.alarm, report.alarm);
            prop_assert_eq!(back.device, report.device);
        }

        #[test]
        fn never_panics(topic in ".{0,80}", payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_topic("anxin", &topic);
            let _ = parse_position("b-1", &payload);
            let _ = parse_status(&payload);
        }
    }
}
