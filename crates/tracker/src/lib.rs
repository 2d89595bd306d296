//! Decoding what box trackers say into [`Report`]s.
//!
//! This crate owns the wire formats of the GPS trackers a box maker would fit, and nothing else:
//! the GT06 binary protocol spoken over TCP ([`gt06`]: framing, CRC-ITU, the packets a box
//! sends and the server's acknowledgements), the OsmAnd HTTP protocol as Traccar's OsmAnd port
//! accepts it ([`osmand`]: query string and JSON body), and Anxin's MQTT topic and JSON payload
//! layout ([`mqtt`]). Every protocol ends in the same [`Report`]: which device, where and when,
//! battery, alarm. [`check_fix`] rejects impossible positions and times from the future.
//!
//! It does no I/O: no sockets, no tokio, no database, no clock. Bytes and strings come in,
//! values or errors naming the bad field come out; the server owns connections, device
//! lookup, rate limits and storage. Nothing here panics on any input.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

pub mod gt06;
mod json;
pub mod mqtt;
pub mod osmand;

/// One position fix. Times are Unix milliseconds UTC.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fix {
    /// When the position was measured (device time), Unix milliseconds UTC.
    pub at_ms: i64,
    /// Latitude in degrees, north positive.
    pub lat: f64,
    /// Longitude in degrees, east positive.
    pub lon: f64,
}

/// An alarm raised by a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alarm {
    /// The box was shaken, opened or its case disturbed.
    Tamper,
    /// The tracker was cut from its power or removed from the box.
    Removal,
    /// The tracker's battery is low.
    LowBattery,
    /// The SOS button was pressed.
    Sos,
    /// Any other alarm the device reported.
    Other,
}

impl Alarm {
    pub const ALL: [Alarm; 5] = [
        Alarm::Tamper,
        Alarm::Removal,
        Alarm::LowBattery,
        Alarm::Sos,
        Alarm::Other,
    ];

    /// The stored name: `tamper`, `removal`, `low_battery`, `sos`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Alarm::Tamper => "tamper",
            Alarm::Removal => "removal",
            Alarm::LowBattery => "low_battery",
            Alarm::Sos => "sos",
            Alarm::Other => "other",
        }
    }

    /// The inverse of [`Alarm::as_str`], exactly.
    pub fn parse(s: &str) -> Option<Alarm> {
        Alarm::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// An alarm named by a device or a tracking app: our own names, plus Traccar's names
    /// (`tampering`, `removing`, `powerCut`, `vibration`, `lowBattery`, ...), case-insensitive.
    /// Any other name is still an alarm: [`Alarm::Other`].
    pub fn from_name(name: &str) -> Alarm {
        let n = name.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        match n.as_str() {
            "tamper" | "tampering" | "vibration" | "shock" | "door" => Alarm::Tamper,
            "removal" | "removing" | "powercut" | "power_cut" => Alarm::Removal,
            "low_battery" | "lowbattery" | "battery" | "lowpower" | "low_power" => {
                Alarm::LowBattery
            }
            "sos" | "panic" => Alarm::Sos,
            _ => Alarm::Other,
        }
    }
}

/// What a device said, whatever the protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The device's IMEI or device id, as the device sent it.
    pub device: String,
    /// The position, if the message carried one. Not yet checked: call [`check_fix`].
    pub fix: Option<Fix>,
    /// Battery charge, 0–100.
    pub battery_percent: Option<u8>,
    /// An alarm, if the message raised one.
    pub alarm: Option<Alarm>,
}

/// Why a report was refused. The message names the field and the reason.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReportError {
    /// A required field is absent.
    #[error("{field}: missing")]
    Missing { field: String },
    /// A number outside its range, e.g. `lat: 91.2 is outside -90..90`.
    #[error("{field}: {value} is outside {range}")]
    OutOfRange {
        field: String,
        value: String,
        range: &'static str,
    },
    /// A value of the wrong shape, e.g. `lat: "abc" is not a number`.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// Exactly 0,0: what a tracker without a fix often sends.
    #[error("lat, lon: 0,0 is null island, not a real position")]
    NullIsland,
    /// A fix time too far after the server's clock.
    #[error("timestamp: {at} is more than {max_future_s} s in the future")]
    Future { at: String, max_future_s: i64 },
}

impl ReportError {
    pub(crate) fn missing(field: &str) -> Self {
        ReportError::Missing {
            field: field.to_string(),
        }
    }

    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ReportError::Invalid {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

fn check_coordinate(field: &str, value: f64, limit: f64) -> Result<(), ReportError> {
    if !value.is_finite() {
        return Err(ReportError::invalid(
            field,
            format!("{value} is not a finite number"),
        ));
    }
    if value < -limit || value > limit {
        return Err(ReportError::OutOfRange {
            field: field.to_string(),
            value: value.to_string(),
            range: if limit == 90.0 {
                "-90..90"
            } else {
                "-180..180"
            },
        });
    }
    Ok(())
}

/// Rejects impossible coordinates (NaN, out of range, exactly 0,0 "null island"), and times more
/// than `max_future_ms` after `now_ms`. Times in the past are accepted here; whether an old fix
/// still matters is the caller's rule.
pub fn check_fix(fix: &Fix, now_ms: i64, max_future_ms: i64) -> Result<(), ReportError> {
    check_coordinate("lat", fix.lat, 90.0)?;
    check_coordinate("lon", fix.lon, 180.0)?;
    if fix.lat == 0.0 && fix.lon == 0.0 {
        return Err(ReportError::NullIsland);
    }
    if fix.at_ms > now_ms.saturating_add(max_future_ms) {
        return Err(ReportError::Future {
            at: format_ms(fix.at_ms),
            max_future_s: max_future_ms / 1000,
        });
    }
    Ok(())
}

/// IMEI check: exactly 15 ASCII digits (what a GT06 login carries once its 16-digit BCD
/// terminal id loses the leading 0). The Luhn check digit is not verified: test devices and
/// the protocol document's own examples do not all satisfy it.
pub fn valid_imei(s: &str) -> bool {
    s.len() == 15 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A device id as HTTP and MQTT devices name themselves (an IMEI, or the Traccar client's
/// identifier): 1–64 ASCII letters, digits, `-`, `_`, `.` or `:`.
pub fn valid_device_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub(crate) fn check_device_id(field: &str, s: &str) -> Result<String, ReportError> {
    if s.is_empty() {
        return Err(ReportError::missing(field));
    }
    if !valid_device_id(s) {
        let shown: String = s.chars().take(70).collect();
        return Err(ReportError::invalid(
            field,
            format!("{shown:?} is not a device id (1-64 letters, digits, '-', '_', '.', ':')"),
        ));
    }
    Ok(s.to_string())
}

/// Unix milliseconds as RFC 3339 UTC (`2030-01-01T00:00:00Z`), or the number if out of range.
pub fn format_ms(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => format!("{ms} ms"),
    }
}

/// An ISO-8601 time: RFC 3339 with an offset, or without one (then UTC), with `T` or a space
/// between date and time, optional fractional seconds.
pub(crate) fn parse_iso_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    // RFC 3339 with a space separator and an offset.
    if s.len() > 10 && s.as_bytes().get(10) == Some(&b' ') {
        let with_t = format!("{}T{}", &s[..10], &s[11..]);
        if let Ok(t) = DateTime::parse_from_rfc3339(&with_t) {
            return Some(t.timestamp_millis());
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// A percentage from a number, rounded; `None` if outside 0..=100.
pub(crate) fn percent(value: f64) -> Option<u8> {
    if value.is_finite() && (0.0..=100.0).contains(&value) {
        Some(value.round() as u8)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

    fn fix(lat: f64, lon: f64, at_ms: i64) -> Fix {
        Fix { at_ms, lat, lon }
    }

    #[test]
    fn check_fix_names_field_and_reason() {
        let e = |f: Fix| check_fix(&f, NOW, 600_000).unwrap_err().to_string();
        assert_eq!(e(fix(91.2, 10.0, NOW)), "lat: 91.2 is outside -90..90");
        assert_eq!(e(fix(-90.5, 10.0, NOW)), "lat: -90.5 is outside -90..90");
        assert_eq!(
            e(fix(10.0, 180.25, NOW)),
            "lon: 180.25 is outside -180..180"
        );
        assert_eq!(
            e(fix(f64::NAN, 10.0, NOW)),
            "lat: NaN is not a finite number"
        );
        assert_eq!(
            e(fix(10.0, f64::INFINITY, NOW)),
            "lon: inf is not a finite number"
        );
        assert_eq!(
            e(fix(0.0, 0.0, NOW)),
            "lat, lon: 0,0 is null island, not a real position"
        );
        // 2030-01-01T00:00:00Z = 1_893_456_000 s.
        assert_eq!(
            e(fix(31.2, 121.5, 1_893_456_000_000)),
            "timestamp: 2030-01-01T00:00:00Z is more than 600 s in the future"
        );
    }

    #[test]
    fn check_fix_accepts_edges_and_small_clock_skew() {
        assert!(check_fix(&fix(90.0, -180.0, NOW), NOW, 600_000).is_ok());
        assert!(check_fix(&fix(0.0, 0.5, NOW), NOW, 600_000).is_ok());
        assert!(check_fix(&fix(31.2, 121.5, NOW + 600_000), NOW, 600_000).is_ok());
        assert!(check_fix(&fix(31.2, 121.5, NOW + 600_001), NOW, 600_000).is_err());
        assert!(check_fix(&fix(31.2, 121.5, 0), NOW, 600_000).is_ok());
        assert!(check_fix(&fix(31.2, 121.5, i64::MAX), i64::MAX - 5, i64::MAX).is_ok());
    }

    #[test]
    fn imei_and_device_id_shapes() {
        assert!(valid_imei("864717003283581"));
        assert!(!valid_imei("86471700328358"));
        assert!(!valid_imei("0864717003283581"));
        assert!(!valid_imei("86471700328358a"));
        assert!(!valid_imei("８６４７１７００３２８３５８１"));
        assert!(valid_device_id("123456"));
        assert!(valid_device_id("box-17.a:b_c"));
        assert!(!valid_device_id(""));
        assert!(!valid_device_id("a b"));
        assert!(!valid_device_id("a/b"));
        assert!(!valid_device_id(&"a".repeat(65)));
    }

    #[test]
    fn alarm_names() {
        for a in Alarm::ALL {
            assert_eq!(Alarm::parse(a.as_str()), Some(a));
            assert_eq!(Alarm::from_name(a.as_str()), a);
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
        }
        assert_eq!(Alarm::parse("Tamper"), None);
        assert_eq!(Alarm::from_name("tampering"), Alarm::Tamper);
        assert_eq!(Alarm::from_name("powerCut"), Alarm::Removal);
        assert_eq!(Alarm::from_name("lowBattery"), Alarm::LowBattery);
        assert_eq!(Alarm::from_name("SOS"), Alarm::Sos);
        assert_eq!(Alarm::from_name("geofenceExit"), Alarm::Other);
    }

    #[test]
    fn iso_times() {
        let t = 1_893_456_000_000;
        assert_eq!(parse_iso_ms("2030-01-01T00:00:00Z"), Some(t));
        assert_eq!(parse_iso_ms("2030-01-01T08:00:00+08:00"), Some(t));
        assert_eq!(parse_iso_ms("2030-01-01 08:00:00+08:00"), Some(t));
        assert_eq!(parse_iso_ms("2030-01-01T00:00:00.250Z"), Some(t + 250));
        assert_eq!(parse_iso_ms("2030-01-01T00:00:00"), Some(t));
        assert_eq!(parse_iso_ms("2030-01-01 00:00:00"), Some(t));
        assert_eq!(parse_iso_ms("2030-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso_ms("yesterday"), None);
        assert_eq!(parse_iso_ms("2030-01-01 é"), None);
        assert_eq!(format_ms(t + 250), "2030-01-01T00:00:00.250Z");
    }
}
