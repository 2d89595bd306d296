//! Box GPS: the client's home zone and the box's presence in it.
//!
//! This module owns the rules that turn fixes into the one word the police may learn: a home
//! [`Zone`] (a circle or a polygon, checked by [`Zone::validate`]), whether a point is inside it,
//! and the per-box state machine at home / away / unknown ([`on_fix`], [`on_tick`]) with the
//! hysteresis that keeps GPS jitter from raising alarms: a box is away only after
//! `away_after_fixes` consecutive fixes outside spanning at least `away_after_minutes`, and
//! unknown after `unknown_after_minutes` without a fix. Pure code: time (Unix milliseconds)
//! is always a parameter.

use crate::DomainError;

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

const MIN_RADIUS_M: f64 = 25.0;
const MAX_RADIUS_M: f64 = 2000.0;
const MIN_POINTS: usize = 3;
const MAX_POINTS: usize = 50;
/// A polygon enclosing less than this is degenerate (collinear or repeated points).
const MIN_AREA_M2: f64 = 1.0;

/// The client's home zone, set at hand-out with consent.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Zone {
    Circle {
        lat: f64,
        lon: f64,
        radius_m: f64,
    },
    Polygon {
        /// `[lat, lon]` pairs, in order; the last joins the first.
        points: Vec<[f64; 2]>,
    },
}

fn check_coordinate(field: &str, value: f64, limit: f64) -> Result<(), DomainError> {
    if !value.is_finite() {
        return Err(DomainError::invalid(
            field,
            format!("{value} is not a number"),
        ));
    }
    if value < -limit || value > limit {
        return Err(DomainError::invalid(
            field,
            format!("{value} is outside -{limit}..{limit}"),
        ));
    }
    Ok(())
}

/// Great-circle distance in metres (haversine).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

impl Zone {
    /// Radius 25..=2000 m; polygon 3..=50 points, all valid coordinates, enclosing an area
    /// (not all on a line). Errors name the field: `zone.radius_m: 5 is below 25`.
    pub fn validate(&self) -> Result<(), DomainError> {
        match self {
            Zone::Circle { lat, lon, radius_m } => {
                check_coordinate("zone.lat", *lat, 90.0)?;
                check_coordinate("zone.lon", *lon, 180.0)?;
                let r = *radius_m;
                if !r.is_finite() {
                    return Err(DomainError::invalid(
                        "zone.radius_m",
                        format!("{r} is not a number"),
                    ));
                }
                if r < MIN_RADIUS_M {
                    return Err(DomainError::invalid(
                        "zone.radius_m",
                        format!("{r} is below {MIN_RADIUS_M}"),
                    ));
                }
                if r > MAX_RADIUS_M {
                    return Err(DomainError::invalid(
                        "zone.radius_m",
                        format!("{r} is above {MAX_RADIUS_M}"),
                    ));
                }
                Ok(())
            }
            Zone::Polygon { points } => {
                let n = points.len();
                if !(MIN_POINTS..=MAX_POINTS).contains(&n) {
                    return Err(DomainError::invalid(
                        "zone.points",
                        format!("{n} points; a zone needs {MIN_POINTS} to {MAX_POINTS}"),
                    ));
                }
                for (i, [lat, lon]) in points.iter().enumerate() {
                    check_coordinate(&format!("zone.points[{i}].lat"), *lat, 90.0)?;
                    check_coordinate(&format!("zone.points[{i}].lon"), *lon, 180.0)?;
                }
                let area = polygon_area_m2(points);
                if area < MIN_AREA_M2 {
                    return Err(DomainError::invalid(
                        "zone.points",
                        "the points enclose no area (all on a line or repeated)",
                    ));
                }
                Ok(())
            }
        }
    }

    /// Whether a position is in the zone: within `radius_m` by haversine distance for a circle
    /// (the edge counts as inside); ray casting on lat/lon for a polygon (planar, fine at house
    /// scale; a zone across the 180° meridian is not supported).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        if !lat.is_finite() || !lon.is_finite() {
            return false;
        }
        match self {
            Zone::Circle {
                lat: clat,
                lon: clon,
                radius_m,
            } => distance_m(*clat, *clon, lat, lon) <= *radius_m,
            Zone::Polygon { points } => {
                let mut inside = false;
                let n = points.len();
                for i in 0..n {
                    let [yi, xi] = points[i];
                    let [yj, xj] = points[(i + n - 1) % n];
                    if (yi > lat) != (yj > lat) {
                        let x_cross = xi + (lat - yi) / (yj - yi) * (xj - xi);
                        if lon < x_cross {
                            inside = !inside;
                        }
                    }
                }
                inside
            }
        }
    }

    /// Centre for drawing: the circle's centre, or the middle of the polygon's bounding box
    /// (so a drawing centred there shows the whole zone), as `(lat, lon)`.
    pub fn centre(&self) -> (f64, f64) {
        match self {
            Zone::Circle { lat, lon, .. } => (*lat, *lon),
            Zone::Polygon { points } => {
                let Some(&[first_lat, first_lon]) = points.first() else {
                    return (0.0, 0.0);
                };
                let (mut min_lat, mut max_lat) = (first_lat, first_lat);
                let (mut min_lon, mut max_lon) = (first_lon, first_lon);
                for &[lat, lon] in points {
                    min_lat = min_lat.min(lat);
                    max_lat = max_lat.max(lat);
                    min_lon = min_lon.min(lon);
                    max_lon = max_lon.max(lon);
                }
                ((min_lat + max_lat) / 2.0, (min_lon + max_lon) / 2.0)
            }
        }
    }
}

/// Shoelace area on an equirectangular projection around the first point, square metres.
fn polygon_area_m2(points: &[[f64; 2]]) -> f64 {
    let Some(&[lat0, lon0]) = points.first() else {
        return 0.0;
    };
    // Metres per degree of a great circle.
    let k = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    let cos0 = lat0.to_radians().cos();
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|&[lat, lon]| ((lon - lon0) * k * cos0, (lat - lat0) * k))
        .collect();
    let n = xy.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let (x1, y1) = xy[i];
            let (x2, y2) = xy[(i + 1) % n];
            x1 * y2 - x2 * y1
        })
        .sum();
    (twice / 2.0).abs()
}

/// Where a box is, as far as its fixes tell. The only thing the police may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    AtHome,
    Away,
    Unknown,
}

impl Presence {
    pub const ALL: [Presence; 3] = [Presence::AtHome, Presence::Away, Presence::Unknown];

    /// `at_home`, `away`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::AtHome => "at_home",
            Presence::Away => "away",
            Presence::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Presence::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How much evidence a change of presence needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hysteresis {
    /// Consecutive fixes outside the zone before the box is away (default 3)...
    pub away_after_fixes: u32,
    /// ...spanning at least this many minutes from the first to the last (default 10).
    pub away_after_minutes: i64,
    /// Minutes without a fix before the box is unknown (default 120).
    pub unknown_after_minutes: i64,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis {
            away_after_fixes: 3,
            away_after_minutes: 10,
            unknown_after_minutes: 120,
        }
    }
}

/// What is kept per box between fixes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tracking {
    pub presence: Presence,
    /// When the presence last changed (Unix ms).
    pub since_ms: i64,
    /// Time of the newest fix taken into account.
    pub last_fix_ms: Option<i64>,
    /// Consecutive fixes outside the zone, since the last one inside.
    pub outside_fixes: u32,
    /// Time of the first of those outside fixes.
    pub first_outside_ms: Option<i64>,
}

impl Tracking {
    /// Unknown since `now_ms`, no fix yet.
    pub fn new(now_ms: i64) -> Self {
        Tracking {
            presence: Presence::Unknown,
            since_ms: now_ms,
            last_fix_ms: None,
            outside_fixes: 0,
            first_outside_ms: None,
        }
    }
}

/// A change of presence worth telling staff about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// At home (or unknown) → away. From unknown this is also the first we learn of the box,
    /// e.g. still on the way home after hand-out: callers may want to alert only when the
    /// previous presence was at home.
    LeftHome,
    /// Away → at home.
    CameHome,
    /// At home or away → unknown: no fix for `unknown_after_minutes`.
    WentUnknown,
    /// Unknown → at home on the first fix inside.
    Located,
}

const MINUTE_MS: i64 = 60_000;

/// One fix at `at_ms`. Inside → at home at once (the outside count resets); outside → away only
/// after `away_after_fixes` consecutive outside fixes spanning at least `away_after_minutes`.
/// A fix not newer than `last_fix_ms` (out of order, or repeated) is ignored, as is a fix with
/// non-finite coordinates. Returns the new state and the change, if the presence changed; a
/// change's `since_ms` is the fix's time (never earlier than the previous `since_ms`).
pub fn on_fix(
    t: Tracking,
    zone: &Zone,
    h: &Hysteresis,
    lat: f64,
    lon: f64,
    at_ms: i64,
) -> (Tracking, Option<Change>) {
    if t.last_fix_ms.is_some_and(|last| at_ms <= last) || !lat.is_finite() || !lon.is_finite() {
        return (t, None);
    }
    let mut next = Tracking {
        last_fix_ms: Some(at_ms),
        ..t
    };
    let mut change = None;
    if zone.contains(lat, lon) {
        next.outside_fixes = 0;
        next.first_outside_ms = None;
        if t.presence != Presence::AtHome {
            change = Some(match t.presence {
                Presence::Away => Change::CameHome,
                _ => Change::Located,
            });
            next.presence = Presence::AtHome;
        }
    } else {
        next.outside_fixes = t.outside_fixes.saturating_add(1);
        let first = *next.first_outside_ms.get_or_insert(at_ms);
        let span_ok = at_ms.saturating_sub(first) >= h.away_after_minutes.saturating_mul(MINUTE_MS);
        if t.presence != Presence::Away && next.outside_fixes >= h.away_after_fixes && span_ok {
            next.presence = Presence::Away;
            change = Some(Change::LeftHome);
        }
    }
    if change.is_some() {
        next.since_ms = at_ms.max(t.since_ms);
    }
    (next, change)
}

/// Time passes without fixes: unknown once `unknown_after_minutes` have passed since the last
/// fix (or since `since_ms` if there never was one). The new `since_ms` is the moment the limit
/// was reached, not the tick's time, so it does not depend on how often ticks come. The outside
/// count is cleared: consecutive fixes do not span a silence.
pub fn on_tick(t: Tracking, h: &Hysteresis, now_ms: i64) -> (Tracking, Option<Change>) {
    if t.presence == Presence::Unknown {
        return (t, None);
    }
    let reference = t.last_fix_ms.unwrap_or(t.since_ms);
    let limit = reference.saturating_add(h.unknown_after_minutes.saturating_mul(MINUTE_MS));
    if now_ms < limit {
        return (t, None);
    }
    (
        Tracking {
            presence: Presence::Unknown,
            since_ms: limit.max(t.since_ms),
            outside_fixes: 0,
            first_outside_ms: None,
            ..t
        },
        Some(Change::WentUnknown),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
    const MIN: i64 = 60_000;

    /// A 100 m circle in Kunming (25.04° N, 102.71° E).
    fn home() -> Zone {
        Zone::Circle {
            lat: 25.04,
            lon: 102.71,
            radius_m: 100.0,
        }
    }
    const IN: (f64, f64) = (25.04, 102.71);
    /// 0.0009° north ≈ 100.08 m: just outside.
    const JUST_OUT: (f64, f64) = (25.0409, 102.71);
    /// 0.0085° north ≈ 945 m.
    const FAR: (f64, f64) = (25.0485, 102.71);

    fn fix(t: Tracking, p: (f64, f64), at: i64) -> (Tracking, Option<Change>) {
        on_fix(t, &home(), &Hysteresis::default(), p.0, p.1, at)
    }

    fn at_home() -> Tracking {
        let (t, c) = fix(Tracking::new(T0), IN, T0);
        assert_eq!(c, Some(Change::Located));
        assert_eq!(t.presence, Presence::AtHome);
        t
    }

    #[test]
    fn meridian_distance_and_circle_edge() {
        // 0.001° of latitude = 6_371_008.8 m × π / 180 × 0.001 = 111.195 m.
        let d = distance_m(30.0, 120.0, 30.001, 120.0);
        assert!((d - 111.195).abs() < 0.01, "{d}");
        let zone = |radius_m| Zone::Circle {
            lat: 30.0,
            lon: 120.0,
            radius_m,
        };
        assert!(zone(111.3).contains(30.001, 120.0));
        assert!(!zone(111.1).contains(30.001, 120.0));
        assert!(zone(111.3).contains(29.999, 120.0));
        // Along the parallel the same 0.001° is shorter: × cos 30° = 96.297 m.
        assert!(zone(96.4).contains(30.0, 120.001));
        assert!(!zone(96.2).contains(30.0, 120.001));
        assert!(!zone(2000.0).contains(f64::NAN, 120.0));
    }

    #[test]
    fn concave_polygon() {
        // A "U" open to the north: x = lon, y = lat, in thousandths of a degree from (30, 120).
        //   (0,3)  (1,3)      (2,3)  (3,3)
        //     |      |__________|      |
        //     |     (1,1)     (2,1)    |
        //   (0,0)______________________(3,0)
        let p = |x: f64, y: f64| [30.0 + y / 1000.0, 120.0 + x / 1000.0];
        let zone = Zone::Polygon {
            points: vec![
                p(0.0, 0.0),
                p(3.0, 0.0),
                p(3.0, 3.0),
                p(2.0, 3.0),
                p(2.0, 1.0),
                p(1.0, 1.0),
                p(1.0, 3.0),
                p(0.0, 3.0),
            ],
        };
        assert!(zone.validate().is_ok());
        let inside = |x, y| {
            let [lat, lon] = p(x, y);
            zone.contains(lat, lon)
        };
        assert!(inside(0.5, 2.5)); // left arm
        assert!(inside(2.5, 2.5)); // right arm
        assert!(inside(1.5, 0.5)); // bottom bar
        assert!(!inside(1.5, 2.0)); // the notch
        assert!(!inside(1.5, 3.5)); // above the notch
        assert!(!inside(-0.5, 1.0));
        assert!(!inside(3.5, 1.0));
        assert!(!inside(1.5, -0.5));
        let (clat, clon) = zone.centre();
        assert!((clat - 30.0015).abs() < 1e-9 && (clon - 120.0015).abs() < 1e-9);
    }

    #[test]
    fn zone_validation_names_the_field() {
        let err = |z: Zone| z.validate().unwrap_err().to_string();
        let circle = |lat, lon, radius_m| Zone::Circle { lat, lon, radius_m };
        assert_eq!(
            err(circle(25.0, 102.0, 5.0)),
            "zone.radius_m: 5 is below 25"
        );
        assert_eq!(
            err(circle(25.0, 102.0, 2500.0)),
            "zone.radius_m: 2500 is above 2000"
        );
        assert_eq!(
            err(circle(25.0, 102.0, f64::NAN)),
            "zone.radius_m: NaN is not a number"
        );
        assert_eq!(
            err(circle(91.0, 102.0, 100.0)),
            "zone.lat: 91 is outside -90..90"
        );
        assert_eq!(
            err(circle(25.0, -180.5, 100.0)),
            "zone.lon: -180.5 is outside -180..180"
        );
        assert!(circle(25.0, 102.0, 25.0).validate().is_ok());
        assert!(circle(25.0, 102.0, 2000.0).validate().is_ok());

        assert_eq!(
            err(Zone::Polygon {
                points: vec![[25.0, 102.0], [25.001, 102.0]]
            }),
            "zone.points: 2 points; a zone needs 3 to 50"
        );
        assert_eq!(
            err(Zone::Polygon {
                points: vec![[25.0, 102.0]; 51]
            }),
            "zone.points: 51 points; a zone needs 3 to 50"
        );
        assert_eq!(
            err(Zone::Polygon {
                points: vec![[25.0, 102.0], [25.001, 102.0], [25.0, 200.0]]
            }),
            "zone.points[2].lon: 200 is outside -180..180"
        );
        assert_eq!(
            err(Zone::Polygon {
                points: vec![[25.0, 102.0], [25.001, 102.001], [25.002, 102.002]]
            }),
            "zone.points: the points enclose no area (all on a line or repeated)"
        );
        assert!(Zone::Polygon {
            points: vec![[25.0, 102.0], [25.001, 102.0], [25.0, 102.001]]
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn zone_json_shape() {
        let z: Zone =
            serde_json::from_str(r#"{"kind":"circle","lat":25.04,"lon":102.71,"radius_m":100}"#)
                .unwrap();
        assert_eq!(z, home());
        let p = Zone::Polygon {
            points: vec![[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]],
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"kind":"polygon","points":[[1.0,2.0],[3.0,4.0],[5.0,7.0]]}"#
        );
    }

    #[test]
    fn presence_words() {
        for p in Presence::ALL {
            assert_eq!(Presence::parse(p.as_str()), Some(p));
        }
        assert_eq!(Presence::AtHome.as_str(), "at_home");
        assert_eq!(
            serde_json::to_string(&Presence::AtHome).unwrap(),
            "\"at_home\""
        );
        assert_eq!(Presence::parse("home"), None);
    }

    #[test]
    fn zone_fixture_distances() {
        // 0.0009° ≈ 100.08 m (just out), 0.0085° ≈ 945.2 m.
        assert!(!home().contains(JUST_OUT.0, JUST_OUT.1));
        assert!(home().contains(25.0408, 102.71)); // ≈ 88.96 m
        assert!(!home().contains(FAR.0, FAR.1));
    }

    #[test]
    fn jitter_at_the_edge_never_leaves_home() {
        let mut t = at_home();
        for i in 1..=60 {
            let p = if i % 2 == 0 {
                (25.0408, 102.71)
            } else {
                JUST_OUT
            };
            let (next, c) = fix(t, p, T0 + i * MIN);
            assert_eq!(c, None, "fix {i}");
            t = next;
        }
        assert_eq!(t.presence, Presence::AtHome);
        assert_eq!(t.since_ms, T0);
        // Two outside in a row and one inside, over and over: still home.
        for i in 61..=120 {
            let p = if i % 3 == 0 { IN } else { FAR };
            let (next, c) = fix(t, p, T0 + i * 5 * MIN);
            assert_eq!(c, None, "fix {i}");
            t = next;
        }
    }

    #[test]
    fn enough_fixes_too_quickly_stay_home() {
        let mut t = at_home();
        // Five outside fixes, 2 minutes apart: 8 minutes < 10.
        for i in 1..=5 {
            let (next, c) = fix(t, FAR, T0 + i * 2 * MIN);
            assert_eq!(c, None);
            t = next;
        }
        assert_eq!(t.presence, Presence::AtHome);
        assert_eq!(t.outside_fixes, 5);
        assert_eq!(t.first_outside_ms, Some(T0 + 2 * MIN));
        // The sixth at +12 min spans exactly 10 minutes from the first (+2): away.
        let (t, c) = fix(t, FAR, T0 + 12 * MIN);
        assert_eq!(c, Some(Change::LeftHome));
        assert_eq!(t.presence, Presence::Away);
    }

    #[test]
    fn long_enough_but_too_few_fixes_stay_home() {
        let t = at_home();
        let (t, _) = fix(t, FAR, T0 + MIN);
        let (t, c) = fix(t, FAR, T0 + 30 * MIN);
        assert_eq!(c, None);
        assert_eq!(t.presence, Presence::AtHome);
    }

    #[test]
    fn leaving_and_coming_home() {
        let t = at_home();
        let (t, c1) = fix(t, FAR, T0 + 10 * MIN);
        let (t, c2) = fix(t, FAR, T0 + 15 * MIN);
        assert_eq!((c1, c2), (None, None));
        let (t, c) = fix(t, FAR, T0 + 20 * MIN);
        assert_eq!(c, Some(Change::LeftHome));
        assert_eq!(
            t,
            Tracking {
                presence: Presence::Away,
                since_ms: T0 + 20 * MIN,
                last_fix_ms: Some(T0 + 20 * MIN),
                outside_fixes: 3,
                first_outside_ms: Some(T0 + 10 * MIN),
            }
        );
        // Further outside fixes change nothing.
        let (t, c) = fix(t, FAR, T0 + 25 * MIN);
        assert_eq!(c, None);
        // One fix inside brings it home at once.
        let (t, c) = fix(t, IN, T0 + 30 * MIN);
        assert_eq!(c, Some(Change::CameHome));
        assert_eq!(
            t,
            Tracking {
                presence: Presence::AtHome,
                since_ms: T0 + 30 * MIN,
                last_fix_ms: Some(T0 + 30 * MIN),
                outside_fixes: 0,
                first_outside_ms: None,
            }
        );
    }

    #[test]
    fn no_fix_for_the_unknown_time() {
        let h = Hysteresis::default();
        let t = at_home();
        let (t, c) = on_tick(t, &h, T0 + 119 * MIN);
        assert_eq!(c, None);
        let (t, c) = on_tick(t, &h, T0 + 125 * MIN);
        assert_eq!(c, Some(Change::WentUnknown));
        assert_eq!(t.presence, Presence::Unknown);
        // Unknown from the moment the limit passed, not from the tick.
        assert_eq!(t.since_ms, T0 + 120 * MIN);
        let (_, c) = on_tick(t, &h, T0 + 500 * MIN);
        assert_eq!(c, None);
        // A fix inside locates it again.
        let (t, c) = fix(t, IN, T0 + 501 * MIN);
        assert_eq!(c, Some(Change::Located));
        assert_eq!(t.since_ms, T0 + 501 * MIN);

        // Never a fix: counted from since_ms; a fresh tracking is already unknown.
        let t = Tracking {
            presence: Presence::Away,
            ..Tracking::new(T0)
        };
        assert_eq!(on_tick(t, &h, T0 + 119 * MIN).1, None);
        assert_eq!(on_tick(t, &h, T0 + 120 * MIN).1, Some(Change::WentUnknown));
        assert_eq!(on_tick(Tracking::new(T0), &h, T0 + 999 * MIN).1, None);
    }

    #[test]
    fn unknown_clears_the_outside_count() {
        let h = Hysteresis::default();
        let t = at_home();
        let (t, _) = fix(t, FAR, T0 + MIN);
        let (t, _) = fix(t, FAR, T0 + 2 * MIN);
        let (t, c) = on_tick(t, &h, T0 + 200 * MIN);
        assert_eq!(c, Some(Change::WentUnknown));
        assert_eq!((t.outside_fixes, t.first_outside_ms), (0, None));
        // From unknown, away needs the full evidence again; then it is LeftHome.
        let (t, c) = fix(t, FAR, T0 + 201 * MIN);
        assert_eq!(c, None);
        let (t, _) = fix(t, FAR, T0 + 206 * MIN);
        let (t, c) = fix(t, FAR, T0 + 211 * MIN);
        assert_eq!(c, Some(Change::LeftHome));
        assert_eq!(t.presence, Presence::Away);
    }

    #[test]
    fn out_of_order_fixes_are_ignored() {
        let t = at_home();
        let (t, _) = fix(t, FAR, T0 + 10 * MIN);
        let (t, _) = fix(t, FAR, T0 + 15 * MIN);
        // A late-arriving fix from before the last one, and a repeat of the last one.
        let (t2, c) = fix(t, IN, T0 + 12 * MIN);
        assert_eq!((t2, c), (t, None));
        let (t2, c) = fix(t, FAR, T0 + 15 * MIN);
        assert_eq!((t2, c), (t, None));
        let (t, c) = fix(t, FAR, T0 + 20 * MIN);
        assert_eq!(c, Some(Change::LeftHome));
        assert_eq!(t.outside_fixes, 3);
        // Non-finite coordinates are ignored too.
        let (t2, c) = on_fix(
            t,
            &home(),
            &Hysteresis::default(),
            f64::NAN,
            1.0,
            T0 + 30 * MIN,
        );
        assert_eq!((t2, c), (t, None));
    }

    #[test]
    fn since_never_goes_back() {
        let h = Hysteresis::default();
        let t = at_home();
        let (t, _) = on_tick(t, &h, T0 + 300 * MIN); // unknown since T0 + 120 min
                                                     // A delayed fix taken before the box went unknown.
        let (t, c) = fix(t, IN, T0 + 60 * MIN);
        assert_eq!(c, Some(Change::Located));
        assert_eq!(t.since_ms, T0 + 120 * MIN);
    }
}
