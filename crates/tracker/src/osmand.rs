//! The OsmAnd HTTP protocol, as Traccar's OsmAnd port (5055) accepts it.
//!
//! Two shapes:
//! - a query string (GET, or a form-encoded POST body):
//!   `id=..&lat=..&lon=..&timestamp=..&batt=..&alarm=..`. `deviceid` is accepted for `id`,
//!   `location=lat,lon` for `lat` and `lon`. `timestamp` is Unix seconds (a number below
//!   2^31; a larger number is taken as Unix milliseconds, as Traccar does) or ISO-8601 (an
//!   offset, or UTC when none, `T` or a space). `batt` is a percentage. `alarm` is any alarm
//!   name ([`Alarm::from_name`]). Other parameters (speed, bearing, altitude, accuracy, ...)
//!   are ignored. The first occurrence of a repeated parameter wins.
//! - the JSON body of the Traccar client apps:
//!   `{"device_id":"..","location":{"timestamp":"ISO","coords":{"latitude":..,"longitude":..},
//!   "battery":{"level":0.0–1.0},"event":"..","alarm":".."}}`. The level fraction becomes a
//!   percentage (a negative level, the apps' "unknown", gives none). `location.alarm` is an
//!   alarm whatever its name; `location.event` (`motionchange`, `heartbeat`, ...) only when it
//!   names a known alarm.
//!
//! A position needs both coordinates and a time: there is no clock here to stand in for a
//! missing timestamp, so one is refused. Coordinates are not range-checked here: call
//! [`crate::check_fix`].

use crate::json;
use crate::{check_device_id, parse_iso_ms, percent, Alarm, Fix, Report, ReportError};

/// Parses a query string (with or without the leading `?`).
pub fn parse_query(query: &str) -> Result<Report, ReportError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut id = None;
    let mut deviceid = None;
    let mut lat = None;
    let mut lon = None;
    let mut location = None;
    let mut timestamp = None;
    let mut batt = None;
    let mut alarm = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "id" => &mut id,
            "deviceid" => &mut deviceid,
            "lat" => &mut lat,
            "lon" => &mut lon,
            "location" => &mut location,
            "timestamp" => &mut timestamp,
            "batt" => &mut batt,
            "alarm" => &mut alarm,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }

    let (field, device) = match (id, deviceid) {
        (Some(id), _) => ("id", id),
        (None, Some(d)) => ("deviceid", d),
        (None, None) => return Err(ReportError::missing("id")),
    };
    let device = check_device_id(field, device.trim())?;

    let coords = match (lat, lon, location) {
        (Some(lat), Some(lon), _) => Some((query_number("lat", &lat)?, query_number("lon", &lon)?)),
        (Some(_), None, None) => return Err(ReportError::missing("lon")),
        (None, Some(_), None) => return Err(ReportError::missing("lat")),
        (_, _, Some(loc)) => {
            let Some((a, b)) = loc.split_once(',') else {
                return Err(ReportError::invalid(
                    "location",
                    format!("{loc:?} is not \"lat,lon\""),
                ));
            };
            Some((query_number("location", a)?, query_number("location", b)?))
        }
        (None, None, None) => None,
    };
    let fix = match coords {
        None => None,
        Some((lat, lon)) => {
            let Some(ts) = timestamp else {
                return Err(ReportError::missing("timestamp"));
            };
            Some(Fix {
                at_ms: query_time(&ts)?,
                lat,
                lon,
            })
        }
    };
    let battery_percent = match batt {
        None => None,
        Some(b) => {
            let v = query_number("batt", &b)?;
            Some(percent(v).ok_or_else(|| ReportError::OutOfRange {
                field: "batt".into(),
                value: v.to_string(),
                range: "0..100",
            })?)
        }
    };
    let alarm = alarm
        .filter(|a| !a.trim().is_empty())
        .map(|a| Alarm::from_name(&a));
    Ok(Report {
        device,
        fix,
        battery_percent,
        alarm,
    })
}

fn shown(value: &str) -> String {
    value.chars().take(40).collect()
}

fn query_number(field: &str, value: &str) -> Result<f64, ReportError> {
    value
        .trim()
        .parse::<f64>()
        .map_err(|_| ReportError::invalid(field, format!("{:?} is not a number", shown(value))))
}

/// Unix seconds, Unix milliseconds (≥ 2^31), or ISO-8601.
fn query_time(value: &str) -> Result<i64, ReportError> {
    let v = value.trim();
    let bad = || {
        ReportError::invalid(
            "timestamp",
            format!(
                "{:?} is neither Unix seconds nor an ISO-8601 time",
                shown(value)
            ),
        )
    };
    if let Ok(n) = v.parse::<i64>() {
        return if n < i64::from(i32::MAX) {
            n.checked_mul(1000).ok_or_else(bad)
        } else {
            Ok(n)
        };
    }
    if let Ok(x) = v.parse::<f64>() {
        if x.is_finite() && x.abs() < f64::from(i32::MAX) {
            return Ok((x * 1000.0).round() as i64);
        }
        return Err(bad());
    }
    parse_iso_ms(v).ok_or_else(bad)
}

/// Parses the Traccar client apps' JSON body.
pub fn parse_json(body: &[u8]) -> Result<Report, ReportError> {
    let root = json::object(body)?;
    let device = json::string(&root, "device_id", "device_id")?
        .ok_or_else(|| ReportError::missing("device_id"))?;
    let device = check_device_id("device_id", device.trim())?;
    let location = json::object_field(&root, "location", "location")?
        .ok_or_else(|| ReportError::missing("location"))?;

    let fix = match json::object_field(location, "coords", "location.coords")? {
        None => None,
        Some(coords) => {
            let lat = json::number(coords, "latitude", "location.coords.latitude")?
                .ok_or_else(|| ReportError::missing("location.coords.latitude"))?;
            let lon = json::number(coords, "longitude", "location.coords.longitude")?
                .ok_or_else(|| ReportError::missing("location.coords.longitude"))?;
            let at_ms = match json::field(location, "timestamp") {
                None => return Err(ReportError::missing("location.timestamp")),
                Some(serde_json::Value::String(s)) => parse_iso_ms(s).ok_or_else(|| {
                    ReportError::invalid(
                        "location.timestamp",
                        format!("{:?} is not an ISO-8601 time", shown(s)),
                    )
                })?,
                Some(serde_json::Value::Number(n)) => query_time(&n.to_string()).map_err(|_| {
                    ReportError::invalid("location.timestamp", format!("{n} is not a Unix time"))
                })?,
                Some(other) => {
                    return Err(ReportError::invalid(
                        "location.timestamp",
                        format!("must be an ISO-8601 string, not {}", json::kind(other)),
                    ))
                }
            };
            Some(Fix { at_ms, lat, lon })
        }
    };

    let battery_percent = match json::object_field(location, "battery", "location.battery")? {
        None => None,
        Some(battery) => match json::number(battery, "level", "location.battery.level")? {
            None => None,
            Some(level) if level < 0.0 => None,
            Some(level) if level <= 1.0 => percent(level * 100.0),
            Some(level) => {
                return Err(ReportError::OutOfRange {
                    field: "location.battery.level".into(),
                    value: level.to_string(),
                    range: "0..1",
                })
            }
        },
    };

    let alarm = match json::string(location, "alarm", "location.alarm")? {
        Some(a) if !a.trim().is_empty() => Some(Alarm::from_name(a)),
        _ => match json::field(location, "event") {
            Some(serde_json::Value::String(e)) => {
                Some(Alarm::from_name(e)).filter(|a| *a != Alarm::Other)
            }
            _ => None,
        },
    };

    Ok(Report {
        device,
        fix,
        battery_percent,
        alarm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_fix;

    const NOW: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

    fn err(r: Result<Report, ReportError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn query_as_the_traccar_client_sends_it() {
        let r = parse_query(
            "id=864717003283581&timestamp=1735689600&lat=31.230416&lon=121.473701\
             &speed=0.0&bearing=0.0&altitude=4.0&accuracy=12.0&batt=87.0",
        )
        .unwrap();
        assert_eq!(
            r,
            Report {
                device: "864717003283581".into(),
                fix: Some(Fix {
                    at_ms: NOW,
                    lat: 31.230416,
                    lon: 121.473701
                }),
                battery_percent: Some(87),
                alarm: None,
            }
        );
        assert!(check_fix(&r.fix.unwrap(), NOW, 600_000).is_ok());
    }

    #[test]
    fn query_variants() {
        // deviceid, location=lat,lon, ISO time (percent-encoded), milliseconds, alarm.
        let r = parse_query(
            "?deviceid=box-17&location=31.2%2C121.5&timestamp=2025-01-01T08%3A00%3A00%2B08%3A00&alarm=sos",
        )
        .unwrap();
        assert_eq!(r.device, "box-17");
        assert_eq!(
            r.fix,
            Some(Fix {
                at_ms: NOW,
                lat: 31.2,
                lon: 121.5
            })
        );
        assert_eq!(r.alarm, Some(Alarm::Sos));
        let r = parse_query("id=1&lat=1&lon=2&timestamp=1735689600000").unwrap();
        assert_eq!(r.fix.unwrap().at_ms, NOW);
        let r = parse_query("id=1&lat=1&lon=2&timestamp=2025-01-01+00:00:00").unwrap();
        assert_eq!(r.fix.unwrap().at_ms, NOW);
        // Status only: no position, no time needed.
        let r = parse_query("id=1&batt=15&alarm=lowBattery").unwrap();
        assert_eq!(
            r,
            Report {
                device: "1".into(),
                fix: None,
                battery_percent: Some(15),
                alarm: Some(Alarm::LowBattery)
            }
        );
        // The first of a repeated parameter wins.
        assert_eq!(parse_query("id=a&id=b").unwrap().device, "a");
    }

    #[test]
    fn query_errors_name_the_field() {
        assert_eq!(err(parse_query("lat=1&lon=2&timestamp=1")), "id: missing");
        assert_eq!(err(parse_query("id=&lat=1")), "id: missing");
        assert_eq!(
            err(parse_query("id=a%20b")),
            "id: \"a b\" is not a device id (1-64 letters, digits, '-', '_', '.', ':')"
        );
        assert_eq!(
            err(parse_query("id=1&lat=north&lon=2&timestamp=1")),
            "lat: \"north\" is not a number"
        );
        assert_eq!(err(parse_query("id=1&lat=1&timestamp=1")), "lon: missing");
        assert_eq!(err(parse_query("id=1&lat=1&lon=2")), "timestamp: missing");
        assert_eq!(
            err(parse_query("id=1&lat=1&lon=2&timestamp=soon")),
            "timestamp: \"soon\" is neither Unix seconds nor an ISO-8601 time"
        );
        assert_eq!(
            err(parse_query("id=1&location=12")),
            "location: \"12\" is not \"lat,lon\""
        );
        assert_eq!(
            err(parse_query("id=1&batt=120")),
            "batt: 120 is outside 0..100"
        );
        // A parsed but impossible latitude, and a far-future time, fail check_fix.
        let r = parse_query("id=1&lat=91.2&lon=2&timestamp=1735689600").unwrap();
        assert_eq!(
            check_fix(&r.fix.unwrap(), NOW, 600_000)
                .unwrap_err()
                .to_string(),
            "lat: 91.2 is outside -90..90"
        );
        let r = parse_query("id=1&lat=1&lon=2&timestamp=2030-01-01T00:00:00Z").unwrap();
        assert_eq!(
            check_fix(&r.fix.unwrap(), NOW, 600_000)
                .unwrap_err()
                .to_string(),
            "timestamp: 2030-01-01T00:00:00Z is more than 600 s in the future"
        );
        let r = parse_query("id=1&lat=NaN&lon=2&timestamp=1735689600").unwrap();
        assert!(check_fix(&r.fix.unwrap(), NOW, 600_000).is_err());
    }

    const TRACCAR_JSON: &str = r#"{
        "location": {
            "timestamp": "2025-01-01T00:00:00.000Z",
            "coords": {"latitude": 31.230416, "longitude": 121.473701, "accuracy": 12.5,
                       "speed": -1, "heading": -1, "altitude": 4.2},
            "is_moving": false,
            "event": "motionchange",
            "odometer": 0,
            "battery": {"level": 0.87, "is_charging": false},
            "activity": {"type": "still"},
            "extras": {}
        },
        "device_id": "864717003283581"
    }"#;

    #[test]
    fn json_as_the_traccar_client_sends_it() {
        let r = parse_json(TRACCAR_JSON.as_bytes()).unwrap();
        assert_eq!(
            r,
            Report {
                device: "864717003283581".into(),
                fix: Some(Fix {
                    at_ms: NOW,
                    lat: 31.230416,
                    lon: 121.473701
                }),
                battery_percent: Some(87),
                alarm: None,
            }
        );
        let r = parse_json(
            br#"{"device_id":"x1","location":{"timestamp":"2025-01-01T00:00:00Z",
                "battery":{"level":-1},"alarm":"sos"}}"#,
        )
        .unwrap();
        assert_eq!(
            (r.fix, r.battery_percent, r.alarm),
            (None, None, Some(Alarm::Sos))
        );
        let r = parse_json(
            br#"{"device_id":"x1","location":{"timestamp":"2025-01-01T00:00:00Z","event":"tampering"}}"#,
        )
        .unwrap();
        assert_eq!(r.alarm, Some(Alarm::Tamper));
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = |s: &str| err(parse_json(s.as_bytes()));
        assert_eq!(e(r#"{"location":{}}"#), "device_id: missing");
        assert_eq!(
            e(r#"{"device_id":17,"location":{}}"#),
            "device_id: must be a string, not a number"
        );
        assert_eq!(e(r#"{"device_id":"a"}"#), "location: missing");
        assert_eq!(
            e(r#"{"device_id":"a","location":{"coords":{"latitude":"31","longitude":1}}}"#),
            "location.coords.latitude: must be a number, not a string"
        );
        assert_eq!(
            e(r#"{"device_id":"a","location":{"coords":{"latitude":31}}}"#),
            "location.coords.longitude: missing"
        );
        assert_eq!(
            e(r#"{"device_id":"a","location":{"coords":{"latitude":31,"longitude":1}}}"#),
            "location.timestamp: missing"
        );
        assert_eq!(
            e(
                r#"{"device_id":"a","location":{"timestamp":"x","coords":{"latitude":31,"longitude":1}}}"#
            ),
            "location.timestamp: \"x\" is not an ISO-8601 time"
        );
        assert_eq!(
            e(r#"{"device_id":"a","location":{"battery":{"level":87}}}"#),
            "location.battery.level: 87 is outside 0..1"
        );
        assert_eq!(e("[1]"), "body: must be a JSON object, not an array");
        assert!(e("{\"device_id\":").starts_with("body: not JSON ("));
        // Bad latitude and far future through check_fix.
        let r = parse_json(
            br#"{"device_id":"a","location":{"timestamp":"2030-01-01T00:00:00Z",
                "coords":{"latitude":-95,"longitude":1}}}"#,
        )
        .unwrap();
        let f = r.fix.unwrap();
        assert_eq!(
            check_fix(&f, NOW, 600_000).unwrap_err().to_string(),
            "lat: -95 is outside -90..90"
        );
        let f = Fix { lat: 31.0, ..f };
        assert_eq!(
            check_fix(&f, NOW, 600_000).unwrap_err().to_string(),
            "timestamp: 2030-01-01T00:00:00Z is more than 600 s in the future"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(q in ".{0,200}", b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_query(&q);
            let _ = parse_json(&b);
        }
    }
}
