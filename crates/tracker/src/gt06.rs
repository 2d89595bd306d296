//! The GT06 binary protocol (Concox and its many clones), as a box's tracker speaks it over TCP.
//!
//! Checked against the Concox "GPS Tracker Communication Protocol" V3.1 (its worked examples
//! are the test vectors below) and cross-read with Traccar's `Gt06ProtocolDecoder`.
//!
//! A frame is:
//!
//! ```text
//! start 0x78 0x78 | length (1 byte) | protocol | content | serial (2) | CRC (2) | 0x0D 0x0A
//! start 0x79 0x79 | length (2 bytes, big-endian) | ... the same ...
//! ```
//!
//! `length` counts protocol + content + serial + CRC; the CRC is CRC-ITU (CRC-16/X-25) over
//! length..serial. All multi-byte numbers are big-endian.
//!
//! Packets understood (anything else well-framed is [`Body::Other`]):
//! - `0x01` login: 8-byte BCD terminal id (the IMEI with a leading 0), then optionally model
//!   and time zone, ignored.
//! - `0x12`, `0x22` location: date-time 6 bytes (YY MM DD hh mm ss, binary, **taken as UTC**:
//!   0x22 is UTC by the document; 0x12 devices may be set to local time, which we cannot know),
//!   GPS info byte (high nibble: length, low nibble: satellites), latitude and longitude
//!   4 bytes each (degrees × 60 × 30000, unsigned), speed km/h 1 byte, course/status 2 bytes,
//!   then LBS and extras, ignored. Course/status: bit 12 set = GPS positioned, bit 10 set =
//!   **north** latitude (clear = south), bit 11 set = **west** longitude, bits 0–9 course.
//! - `0x13` heartbeat: terminal info byte (bit 0 armed, bit 1 ACC, bit 2 charging, bits 3–5
//!   alarm/extended, bit 6 GPS tracking, bit 7 oil/electricity cut), voltage level 0–6, GSM
//!   signal 0–4, alarm/language 2 bytes. `0x23` (EG02/EG03 heartbeat) has a 2-byte external
//!   voltage instead of the level, so no battery percentage.
//! - `0x16`, `0x26`, `0x27` alarm: the location part, LBS with its own length byte, terminal
//!   info, voltage level, GSM, alarm/language (byte 1 is the alarm code), extras ignored.
//!   `0x19` LBS alarm: LBS (8 bytes) then the same status part, no GPS.
//!
//! Assumptions, stated once:
//! - Voltage level 0–6 maps to percent as `round(level × 100 / 6)` (0, 17, 33, 50, 67, 83,
//!   100); a value above 6 (some clones send other scales) gives no percentage.
//! - Alarm code (alarm/language byte 1): 0x01 SOS → [`Alarm::Sos`]; 0x02 power cut →
//!   [`Alarm::Removal`]; 0x03 vibration, 0x09 moving, 0x13 disassemble, 0x14 door, 0x18 open
//!   cover → [`Alarm::Tamper`]; 0x0E, 0x0F external low battery, 0x15 low-power shutdown,
//!   0x19 internal low battery → [`Alarm::LowBattery`]; 0x00 "normal" falls back to the
//!   terminal info bits 3–5 (100 SOS, 011 low battery, 010 power cut, 001 vibration, 111
//!   removal as Traccar reads some clones); anything else → [`Alarm::Other`].
//! - In an alarm packet, the fix is given only when the GPS-positioned bit is set.
//! - A heartbeat's `tamper` is terminal info bits 3–5 = 001 (vibration) or 111 (removal).
//! - Acknowledged (same framing, protocol echoed, serial echoed, empty content): login,
//!   heartbeats (0x13, 0x23) and alarms (0x16, 0x19, 0x26, 0x27). Location packets get no
//!   answer, as the document says ("Location packet server no response").
//!
//! Decoding checks framing and shape only; coordinates and times are checked by
//! [`crate::check_fix`].

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use crate::{Alarm, Fix};

/// Protocol numbers.
pub mod protocol {
    pub const LOGIN: u8 = 0x01;
    pub const LOCATION: u8 = 0x12;
    pub const HEARTBEAT: u8 = 0x13;
    pub const ALARM: u8 = 0x16;
    pub const LBS_ALARM: u8 = 0x19;
    pub const LOCATION_UTC: u8 = 0x22;
    pub const HEARTBEAT_EG: u8 = 0x23;
    pub const ALARM_UTC: u8 = 0x26;
    pub const ALARM_FENCES: u8 = 0x27;
}

/// The largest frame (start to stop bits) the decoder accepts, and so the most it ever keeps
/// while waiting for the rest of a frame. A short frame is at most 260 bytes.
pub const MAX_FRAME: usize = 4096;

/// The most bytes [`Decoder::push`] keeps undrained: pushing more without calling
/// [`Decoder::next`] drops the buffer and yields [`Gt06Error::Overflow`]. Push one socket read
/// at a time (at most this size) and drain `next()` after each push.
pub const MAX_PENDING: usize = 64 * 1024;

const SHORT_START: [u8; 2] = [0x78, 0x78];
const LONG_START: [u8; 2] = [0x79, 0x79];
const STOP: [u8; 2] = [0x0D, 0x0A];
/// protocol (1) + serial (2) + CRC (2)
const MIN_LENGTH: usize = 5;

/// Streaming decoder for one TCP connection: handles 0x7878 (1-byte length) and 0x7979 (2-byte
/// length) framing, checks CRC-ITU and the stop bits, and resynchronises after garbage, a bad
/// CRC or a truncated frame by scanning for the next start bits. What it keeps is bounded by
/// [`MAX_FRAME`] after `next()` returns `None`, and by [`MAX_PENDING`] in any case.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    overflowed: Option<usize>,
}

/// One well-framed packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    pub protocol: u8,
    pub serial: u16,
    pub body: Body,
    /// Whether it came in 0x7979 framing (the acknowledgement uses the same).
    pub long_frame: bool,
}

impl Packet {
    /// The [`Report`](crate::Report) this packet makes for `device` (the IMEI the connection
    /// logged in with): a location gives its fix only when the device says it is a real GPS
    /// fix; a heartbeat gives the battery, and [`Alarm::Tamper`] when its tamper bit is set; an
    /// alarm gives its fix, alarm and battery. Login and other packets make no report.
    pub fn to_report(&self, device: &str) -> Option<crate::Report> {
        let report = |fix, battery_percent, alarm| crate::Report {
            device: device.to_string(),
            fix,
            battery_percent,
            alarm,
        };
        match &self.body {
            Body::Location { fix, gps_valid, .. } => {
                Some(report(gps_valid.then_some(*fix), None, None))
            }
            Body::Status {
                battery_percent,
                tamper,
                ..
            } => Some(report(
                None,
                *battery_percent,
                tamper.then_some(Alarm::Tamper),
            )),
            Body::Alarm {
                fix,
                alarm,
                battery_percent,
            } => Some(report(*fix, *battery_percent, Some(*alarm))),
            Body::Login { .. } | Body::Other => None,
        }
    }
}

/// What a packet says.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// 0x01: the terminal id, as decimal digits without the leading 0 of the 8 BCD bytes
    /// (15 digits for an IMEI; check with [`crate::valid_imei`]).
    Login { imei: String },
    /// 0x12, 0x22.
    Location {
        fix: Fix,
        /// The device says the position is a real GPS fix (course/status bit 12).
        gps_valid: bool,
        satellites: u8,
        speed_kmh: u8,
    },
    /// 0x13 (and 0x23) heartbeat.
    Status {
        battery_percent: Option<u8>,
        charging: bool,
        tamper: bool,
        /// 0 (none) to 4 (strong).
        gsm_signal: u8,
    },
    /// 0x16, 0x26, 0x27 (with GPS) and 0x19 (LBS only).
    Alarm {
        fix: Option<Fix>,
        alarm: Alarm,
        battery_percent: Option<u8>,
    },
    /// Anything else well-framed.
    Other,
}

/// A frame that was dropped, or bytes that were skipped. Messages name the part and the reason.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Gt06Error {
    /// `expected` is computed over the received bytes; `got` is what the frame carried.
    #[error("crc: expected {expected:#06x}, got {got:#06x}")]
    Crc { expected: u16, got: u16 },
    #[error("length: {length} is too short for a packet")]
    TooShort { length: usize },
    #[error("length: {length} is too long (a frame may be at most {max} bytes)")]
    TooLong { length: usize, max: usize },
    #[error("stop bits: expected 0x0d0a, got {got:#06x}")]
    StopBits { got: u16 },
    #[error("body of protocol {protocol:#04x}: {reason}")]
    Body { protocol: u8, reason: String },
    #[error("garbage: {bytes} bytes without start bits were skipped")]
    Garbage { bytes: usize },
    #[error("buffer: {bytes} bytes pushed without draining; dropped")]
    Overflow { bytes: usize },
}

/// CRC-ITU as GT06 uses it: CRC-16/X-25 (reflected polynomial 0x1021, initial 0xFFFF, final
/// XOR 0xFFFF).
pub fn crc_itu(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        if self.buf.len() + bytes.len() > MAX_PENDING {
            let dropped = self.buf.len() + bytes.len();
            self.buf = Vec::new();
            self.overflowed = Some(self.overflowed.unwrap_or(0) + dropped);
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held, waiting for the rest of a frame (or for `next()`).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Drops the bytes already consumed.
    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Next complete frame, or an error for a frame that was dropped (bad CRC, bad length, bad
    /// stop bits, unparsable body) or bytes that were skipped; `None` when more bytes are
    /// needed. Call until `None` after every push.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Packet, Gt06Error>> {
        if let Some(bytes) = self.overflowed.take() {
            return Some(Err(Gt06Error::Overflow { bytes }));
        }
        let (consumed, result) = scan(&self.buf[self.pos..]);
        self.pos += consumed;
        if result.is_none() {
            // Waiting: what is kept is less than one frame.
            self.compact();
        }
        result
    }
}

/// Looks at the unconsumed bytes: how many to consume, and what to yield.
fn scan(buf: &[u8]) -> (usize, Option<Result<Packet, Gt06Error>>) {
    match find_start(buf) {
        Some(0) => {}
        Some(n) => return (n, Some(Err(Gt06Error::Garbage { bytes: n }))),
        None => {
            // Keep a last byte that may be the first half of start bits.
            let keep = match buf.last() {
                Some(0x78 | 0x79) => 1,
                _ => 0,
            };
            let n = buf.len() - keep;
            if n == 0 {
                return (0, None);
            }
            return (n, Some(Err(Gt06Error::Garbage { bytes: n })));
        }
    }
    let long = buf.get(..2) == Some(&LONG_START[..]);
    let header = if long { 4 } else { 3 };
    if buf.len() < header {
        return (0, None);
    }
    let length = if long {
        usize::from(u16::from_be_bytes([buf[2], buf[3]]))
    } else {
        usize::from(buf[2])
    };
    // On a framing error, resynchronise just past these start bits: the length itself may be
    // what was corrupted.
    if length < MIN_LENGTH {
        return (2, Some(Err(Gt06Error::TooShort { length })));
    }
    let total = header + length + 2;
    if total > MAX_FRAME {
        return (
            2,
            Some(Err(Gt06Error::TooLong {
                length,
                max: MAX_FRAME,
            })),
        );
    }
    if buf.len() < total {
        return (0, None);
    }
    let frame = &buf[..total];
    // Stop bits first: a cheap test that throws out most false starts in noise before the CRC
    // is computed over up to MAX_FRAME bytes.
    if frame[total - 2..] != STOP {
        let got = u16::from_be_bytes([frame[total - 2], frame[total - 1]]);
        return (2, Some(Err(Gt06Error::StopBits { got })));
    }
    let crc_at = header + length - 2;
    let expected = crc_itu(&frame[2..crc_at]);
    let got = u16::from_be_bytes([frame[crc_at], frame[crc_at + 1]]);
    if expected != got {
        return (2, Some(Err(Gt06Error::Crc { expected, got })));
    }
    let protocol = frame[header];
    let content = &frame[header + 1..crc_at - 2];
    let serial = u16::from_be_bytes([frame[crc_at - 2], frame[crc_at - 1]]);
    let result = parse_body(protocol, content).map(|body| Packet {
        protocol,
        serial,
        body,
        long_frame: long,
    });
    (total, Some(result))
}

fn find_start(buf: &[u8]) -> Option<usize> {
    buf.windows(2)
        .position(|w| w == SHORT_START || w == LONG_START)
}

fn body_error(protocol: u8, reason: impl Into<String>) -> Gt06Error {
    Gt06Error::Body {
        protocol,
        reason: reason.into(),
    }
}

fn need(protocol: u8, content: &[u8], n: usize, what: &str) -> Result<(), Gt06Error> {
    if content.len() < n {
        Err(body_error(
            protocol,
            format!("{} bytes is too short for {what} (need {n})", content.len()),
        ))
    } else {
        Ok(())
    }
}

fn parse_body(protocol: u8, content: &[u8]) -> Result<Body, Gt06Error> {
    use protocol::*;
    match protocol {
        LOGIN => {
            need(protocol, content, 8, "a login")?;
            Ok(Body::Login {
                imei: bcd_terminal_id(protocol, &content[..8])?,
            })
        }
        LOCATION | LOCATION_UTC => {
            let gps = parse_gps(protocol, content)?;
            Ok(Body::Location {
                fix: gps.fix,
                gps_valid: gps.valid,
                satellites: gps.satellites,
                speed_kmh: gps.speed_kmh,
            })
        }
        HEARTBEAT => {
            // A 22-byte 0x13 is another clone's layout (satellites, battery %, temperature).
            if content.len() == 22 {
                return Ok(Body::Other);
            }
            need(protocol, content, 3, "a heartbeat")?;
            let info = content[0];
            Ok(Body::Status {
                battery_percent: level_percent(content[1]),
                charging: info & 0b100 != 0,
                tamper: matches!(info_alarm_bits(info), 0b001 | 0b111),
                gsm_signal: content[2],
            })
        }
        HEARTBEAT_EG => {
            need(protocol, content, 4, "a heartbeat")?;
            let info = content[0];
            Ok(Body::Status {
                battery_percent: None,
                charging: info & 0b100 != 0,
                tamper: matches!(info_alarm_bits(info), 0b001 | 0b111),
                gsm_signal: content[3],
            })
        }
        ALARM | ALARM_UTC | ALARM_FENCES => {
            let gps = parse_gps(protocol, content)?;
            let rest = &content[GPS_LEN..];
            need(protocol, rest, 1, "the LBS part of an alarm")?;
            let lbs_len = usize::from(rest[0]);
            let skip = if lbs_len == 0 { 1 } else { lbs_len.max(9) };
            let status = rest.get(skip..).unwrap_or_default();
            let (alarm, battery_percent) = parse_status_part(protocol, status)?;
            Ok(Body::Alarm {
                fix: gps.valid.then_some(gps.fix),
                alarm,
                battery_percent,
            })
        }
        LBS_ALARM => {
            need(protocol, content, 8, "an LBS alarm")?;
            let (alarm, battery_percent) = parse_status_part(protocol, &content[8..])?;
            Ok(Body::Alarm {
                fix: None,
                alarm,
                battery_percent,
            })
        }
        _ => Ok(Body::Other),
    }
}

fn bcd_terminal_id(protocol: u8, bytes: &[u8]) -> Result<String, Gt06Error> {
    let mut digits = String::with_capacity(16);
    for (i, &b) in bytes.iter().enumerate() {
        for nibble in [b >> 4, b & 0x0F] {
            if nibble > 9 {
                return Err(body_error(
                    protocol,
                    format!("terminal id byte {i} ({b:#04x}) is not BCD"),
                ));
            }
            digits.push(char::from(b'0' + nibble));
        }
    }
    if digits.starts_with('0') {
        digits.remove(0);
    }
    Ok(digits)
}

/// Date-time (6) + GPS info (1) + latitude (4) + longitude (4) + speed (1) + course (2).
const GPS_LEN: usize = 18;
const COORD_SCALE: f64 = 1_800_000.0;

struct Gps {
    fix: Fix,
    valid: bool,
    satellites: u8,
    speed_kmh: u8,
}

fn parse_gps(protocol: u8, content: &[u8]) -> Result<Gps, Gt06Error> {
    need(protocol, content, GPS_LEN, "a GPS position")?;
    let at_ms = gt06_time(protocol, &content[..6])?;
    let satellites = content[6] & 0x0F;
    let lat_raw = u32::from_be_bytes([content[7], content[8], content[9], content[10]]);
    let lon_raw = u32::from_be_bytes([content[11], content[12], content[13], content[14]]);
    let speed_kmh = content[15];
    let flags = u16::from_be_bytes([content[16], content[17]]);
    let mut lat = f64::from(lat_raw) / COORD_SCALE;
    let mut lon = f64::from(lon_raw) / COORD_SCALE;
    if flags & (1 << 10) == 0 {
        lat = -lat;
    }
    if flags & (1 << 11) != 0 {
        lon = -lon;
    }
    Ok(Gps {
        fix: Fix { at_ms, lat, lon },
        valid: flags & (1 << 12) != 0,
        satellites,
        speed_kmh,
    })
}

fn gt06_time(protocol: u8, b: &[u8]) -> Result<i64, Gt06Error> {
    let bad = || {
        body_error(
            protocol,
            format!(
                "date-time 20{:02}-{:02}-{:02} {:02}:{:02}:{:02} is not a valid time",
                b[0], b[1], b[2], b[3], b[4], b[5]
            ),
        )
    };
    let date = NaiveDate::from_ymd_opt(2000 + i32::from(b[0]), u32::from(b[1]), u32::from(b[2]))
        .ok_or_else(bad)?;
    let time = date
        .and_hms_opt(u32::from(b[3]), u32::from(b[4]), u32::from(b[5]))
        .ok_or_else(bad)?;
    Ok(time.and_utc().timestamp_millis())
}

fn info_alarm_bits(info: u8) -> u8 {
    (info >> 3) & 0b111
}

fn level_percent(level: u8) -> Option<u8> {
    (level <= 6).then(|| ((u16::from(level) * 100 + 3) / 6) as u8)
}

fn percent_level(percent: u8) -> u8 {
    ((u16::from(percent.min(100)) * 6 + 50) / 100) as u8
}

/// Terminal info, voltage level, GSM, alarm code (language optional, extras ignored).
fn parse_status_part(protocol: u8, status: &[u8]) -> Result<(Alarm, Option<u8>), Gt06Error> {
    need(protocol, status, 4, "the status part of an alarm")?;
    let info = status[0];
    let alarm = match status[3] {
        0x01 => Alarm::Sos,
        0x02 => Alarm::Removal,
        0x03 | 0x09 | 0x13 | 0x14 | 0x18 => Alarm::Tamper,
        0x0E | 0x0F | 0x15 | 0x19 => Alarm::LowBattery,
        0x00 => match info_alarm_bits(info) {
            0b100 => Alarm::Sos,
            0b011 => Alarm::LowBattery,
            0b010 | 0b111 => Alarm::Removal,
            0b001 => Alarm::Tamper,
            _ => Alarm::Other,
        },
        _ => Alarm::Other,
    };
    Ok((alarm, level_percent(status[1])))
}

/// The server's acknowledgement for a packet, if the protocol wants one (login, heartbeat,
/// alarm: yes; location: none), in the same framing as the packet, serial echoed, CRC computed.
pub fn ack(packet: &Packet) -> Option<Vec<u8>> {
    use protocol::*;
    match packet.protocol {
        LOGIN | HEARTBEAT | HEARTBEAT_EG | ALARM | LBS_ALARM | ALARM_UTC | ALARM_FENCES => Some(
            frame(packet.protocol, &[], packet.serial, packet.long_frame),
        ),
        _ => None,
    }
}

/// A whole frame around `content`.
pub fn frame(protocol: u8, content: &[u8], serial: u16, long: bool) -> Vec<u8> {
    let length = content.len() + MIN_LENGTH;
    let mut out = Vec::with_capacity(length + 6);
    if long {
        out.extend_from_slice(&LONG_START);
        out.extend_from_slice(&(length.min(usize::from(u16::MAX)) as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&SHORT_START);
        out.push(length.min(usize::from(u8::MAX)) as u8);
    }
    out.push(protocol);
    out.extend_from_slice(content);
    out.extend_from_slice(&serial.to_be_bytes());
    let crc = crc_itu(&out[2..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&STOP);
    out
}

/// Encoders used by tests and by the load generator (short framing unless stated). They
/// write what a device would: UTC time (whole seconds, years 2000–2255, clamped), 8
/// satellites, GPS positioned, LBS MCC 460 / MNC 0 / LAC 0x287D / cell 0x001F71 (the
/// document's example cell).
pub mod encode {
    use super::*;

    const LBS: [u8; 8] = [0x01, 0xCC, 0x00, 0x28, 0x7D, 0x00, 0x1F, 0x71];

    /// 0x01 with the 15-digit IMEI as 8 BCD bytes (leading 0). Non-digits are written as 0.
    pub fn login(imei: &str, serial: u16) -> Vec<u8> {
        let mut digits: Vec<u8> = imei
            .bytes()
            .map(|b| if b.is_ascii_digit() { b - b'0' } else { 0 })
            .collect();
        while digits.len() < 16 {
            digits.insert(0, 0);
        }
        let digits = &digits[digits.len() - 16..];
        let content: Vec<u8> = digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect();
        frame(protocol::LOGIN, &content, serial, false)
    }

    /// Date-time + GPS info + lat + lon + speed + course/status, for `fix` (positioned) or
    /// zeros (not positioned).
    fn gps_part(fix: Option<&Fix>, out: &mut Vec<u8>) {
        let (at_ms, lat, lon) = match fix {
            Some(f) => (f.at_ms, f.lat, f.lon),
            None => (0, 0.0, 0.0),
        };
        let t = DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_default();
        out.extend_from_slice(&[
            (t.year() - 2000).clamp(0, 255) as u8,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
        ]);
        out.push(if fix.is_some() { 0xC8 } else { 0x00 });
        let raw = |deg: f64| (deg.abs() * COORD_SCALE).round().min(f64::from(u32::MAX)) as u32;
        out.extend_from_slice(&raw(lat).to_be_bytes());
        out.extend_from_slice(&raw(lon).to_be_bytes());
        out.push(0); // speed
        let mut flags: u16 = 0;
        if fix.is_some() {
            flags |= 1 << 12;
        }
        if lat >= 0.0 {
            flags |= 1 << 10;
        }
        if lon < 0.0 {
            flags |= 1 << 11;
        }
        out.extend_from_slice(&flags.to_be_bytes());
    }

    fn location_content(fix: &Fix) -> Vec<u8> {
        let mut c = Vec::with_capacity(29);
        gps_part(Some(fix), &mut c);
        c.extend_from_slice(&LBS);
        c.extend_from_slice(&[0x00, 0x00, 0x00]); // ACC, upload mode, real time
        c
    }

    /// 0x12 location.
    pub fn location(fix: &Fix, serial: u16) -> Vec<u8> {
        frame(protocol::LOCATION, &location_content(fix), serial, false)
    }

    /// 0x12 location in 0x7979 framing.
    pub fn location_long(fix: &Fix, serial: u16) -> Vec<u8> {
        frame(protocol::LOCATION, &location_content(fix), serial, true)
    }

    /// 0x13 heartbeat: GPS tracking on, charging off, the battery as a voltage level 0–6,
    /// tamper as terminal info bits 3–5 = 001, GSM 4, English.
    pub fn heartbeat(battery_percent: u8, tamper: bool, serial: u16) -> Vec<u8> {
        let info = 0x40 | if tamper { 0b001 << 3 } else { 0 };
        let content = [info, percent_level(battery_percent), 0x04, 0x00, 0x02];
        frame(protocol::HEARTBEAT, &content, serial, false)
    }

    /// 0x16 alarm with the alarm code for `alarm` (SOS 0x01, removal 0x02 power cut, tamper
    /// 0x03 vibration, low battery 0x19, other 0x06 overspeed); voltage level 6, or 2 for a
    /// low-battery alarm.
    pub fn alarm(fix: Option<&Fix>, alarm: Alarm, serial: u16) -> Vec<u8> {
        let mut c = Vec::with_capacity(32);
        gps_part(fix, &mut c);
        c.push(9);
        c.extend_from_slice(&LBS);
        let (code, level) = match alarm {
            Alarm::Sos => (0x01, 6),
            Alarm::Removal => (0x02, 6),
            Alarm::Tamper => (0x03, 6),
            Alarm::LowBattery => (0x19, 2),
            Alarm::Other => (0x06, 6),
        };
        c.extend_from_slice(&[0x40, level, 0x04, code, 0x02]);
        frame(protocol::ALARM, &c, serial, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode_all(bytes: &[u8]) -> Vec<Result<Packet, Gt06Error>> {
        let mut d = Decoder::new();
        d.push(bytes);
        std::iter::from_fn(|| d.next()).collect()
    }

    fn one(bytes: &[u8]) -> Packet {
        let mut all = decode_all(bytes);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0).unwrap()
    }

    // Worked examples of the Concox protocol document V3.1 and of Traccar's decoder tests.
    const LOGIN_CLASSIC: &str = "78 78 0D 01 01 23 45 67 89 01 23 45 00 01 8C DD 0D 0A";
    const LOGIN_DOC: &str = "78 78 11 01 07 52 53 36 78 90 02 42 70 00 32 01 00 05 12 79 0D 0A";
    const LOGIN_TRACCAR: &str = "78780D01086471700328358100093F040D0A";
    const HEARTBEAT_DOC: &str = "78 78 0A 13 40 04 04 00 01 00 0F DC EE 0D 0A";
    const HEARTBEAT_EG_DOC: &str = "78 78 0B 23 05 0F 92 04 00 02 00 08 8A 37 0D 0A";
    const LOCATION_DOC: &str = "78 78 22 22 0F 0C 1D 02 33 05 C9 02 7A C8 18 0C 46 58 60 00 14 00 01 CC 00 28 7D 00 1F 71 00 00 01 00 08 20 86 0D 0A";
    const ALARM_DOC: &str = "78 78 25 26 12 03 0C 06 38 16 C3 02 6C 10 54 0C 38 C9 70 01 44 03 09 01 CC 00 28 66 00 0E EE 0C 06 04 03 02 00 0D A2 DB 0D 0A";
    const ALARM_FENCES_DOC: &str = "78 78 25 26 11 0C 0D 13 37 36 CB 02 6C 15 A6 0C 38 CF 0A 00 54 B9 08 01 CC 00 28 66 00 0E EE D8 02 04 00 02 00 1D 76 F9 0D 0A";
    const ALARM_TRACCAR_REMOVING: &str =
        "7878251613020C12141AC5027951430C2A16F60014000900000000001A00007C550300020002F1E70D0A";

    #[test]
    fn crc_itu_is_crc16_x25() {
        // The CRC-16/X-25 check value.
        assert_eq!(crc_itu(b"123456789"), 0x906E);
        // The well-known login example: CRC over length..serial is 0x8CDD.
        let login = hex(LOGIN_CLASSIC);
        assert_eq!(crc_itu(&login[2..14]), 0x8CDD);
    }

    #[test]
    fn login_examples() {
        let p = one(&hex(LOGIN_CLASSIC));
        assert_eq!(
            p,
            Packet {
                protocol: 0x01,
                serial: 1,
                body: Body::Login {
                    imei: "123456789012345".into()
                },
                long_frame: false
            }
        );
        assert_eq!(ack(&p).unwrap(), hex("78 78 05 01 00 01 D9 DC 0D 0A"));

        // With model code and time zone (ignored).
        let p = one(&hex(LOGIN_DOC));
        assert_eq!(
            p.body,
            Body::Login {
                imei: "752533678900242".into()
            }
        );
        assert_eq!(p.serial, 5);
        // The document's login response example is exactly this acknowledgement.
        assert_eq!(ack(&p).unwrap(), hex("78 78 05 01 00 05 9F F8 0D 0A"));

        let p = one(&hex(LOGIN_TRACCAR));
        assert_eq!(
            p.body,
            Body::Login {
                imei: "864717003283581".into()
            }
        );
        assert!(crate::valid_imei("864717003283581"));
    }

    #[test]
    fn heartbeat_example() {
        let p = one(&hex(HEARTBEAT_DOC));
        // 0x40: GPS tracking on, not charging, no alarm bits; level 4 → 67 %; GSM 4 strong.
        assert_eq!(
            p,
            Packet {
                protocol: 0x13,
                serial: 0x000F,
                body: Body::Status {
                    battery_percent: Some(67),
                    charging: false,
                    tamper: false,
                    gsm_signal: 4
                },
                long_frame: false
            }
        );
        assert_eq!(ack(&p).unwrap(), hex("78 78 05 13 00 0F 00 8F 0D 0A"));
        // The document's heartbeat response example (serial 0x0100).
        let doc_reply = Packet {
            serial: 0x0100,
            ..p
        };
        assert_eq!(
            ack(&doc_reply).unwrap(),
            hex("78 78 05 13 01 00 E1 A0 0D 0A")
        );

        // EG02/EG03 heartbeat: 0x05 = armed + charging, external voltage 39.86 V, GSM 4.
        let p = one(&hex(HEARTBEAT_EG_DOC));
        assert_eq!(
            p.body,
            Body::Status {
                battery_percent: None,
                charging: true,
                tamper: false,
                gsm_signal: 4
            }
        );
        assert_eq!(ack(&p).unwrap(), hex("78 78 05 23 00 08 F2 9E 0D 0A"));
    }

    #[test]
    fn location_example() {
        let p = one(&hex(LOCATION_DOC));
        // 0F 0C 1D 02 33 05 = 2015-12-29 02:51:05 UTC = 1_451_357_465 s.
        // lat 0x027AC818 = 41_601_048 / 1_800_000 = 23.111693°, north (0x1400 has bit 10);
        // lon 0x0C465860 = 205_936_736 / 1_800_000 = 114.409298°, east (bit 11 clear).
        let Body::Location {
            fix,
            gps_valid,
            satellites,
            speed_kmh,
        } = p.body
        else {
            panic!("{p:?}")
        };
        assert_eq!(fix.at_ms, 1_451_357_465_000);
        assert!((fix.lat - 23.111_693).abs() < 1e-6, "{}", fix.lat);
        assert!((fix.lon - 114.409_298).abs() < 1e-6, "{}", fix.lon);
        assert!(gps_valid);
        assert_eq!(satellites, 9);
        assert_eq!(speed_kmh, 0);
        assert_eq!((p.protocol, p.serial), (0x22, 8));
        assert_eq!(ack(&p), None);

        // Traccar's 0x12 sample with 5 extra bytes after the LBS: 2022-04-14 16:44:34,
        // course/status 0x195A: bit 12 set (positioned), bit 10 clear (south), bit 11 set
        // (west); lat 0x00915FFB = 9_527_291 → 5.292939° S,
        // lon 0x04C60163 = 80_085_347 → 44.491859° W; 15 satellites.
        let p = one(&hex(
            "7878241216040e102c22cf00915ffb04c6016300195a02d402283b00753f400571040001dda4880d0a",
        ));
        let Body::Location {
            fix,
            gps_valid,
            satellites,
            ..
        } = p.body
        else {
            panic!("{p:?}")
        };
        assert_eq!(fix.at_ms, 1_649_954_674_000);
        assert!((fix.lat + 5.292_939).abs() < 1e-6, "{}", fix.lat);
        assert!((fix.lon + 44.491_859).abs() < 1e-6, "{}", fix.lon);
        assert!(gps_valid);
        assert_eq!(satellites, 15);
    }

    #[test]
    fn location_long_framing() {
        let fix = Fix {
            at_ms: 1_735_732_800_000, // 2025-01-01T12:00:00Z
            lat: -33.868_8,
            lon: -70.5,
        };
        let bytes = encode::location_long(&fix, 0x1234);
        assert_eq!(&bytes[..4], &[0x79, 0x79, 0x00, 34]);
        // Written out: -33.8688° → 60_963_840 = 0x03A23C00 with bit 10 clear (south);
        // -70.5° → 126_900_000 = 0x07905720 with bit 11 set (west).
        assert_eq!(
            &bytes[5..23],
            &hex("19 01 01 0C 00 00 C8 03 A2 3C 00 07 90 57 20 00 18 00")[..]
        );
        let p = one(&bytes);
        assert!(p.long_frame);
        assert_eq!(p.serial, 0x1234);
        assert_eq!(
            p.body,
            Body::Location {
                fix,
                gps_valid: true,
                satellites: 8,
                speed_kmh: 0
            }
        );
        // A long-framed heartbeat is acknowledged in long framing.
        let hb = frame(0x13, &[0x40, 6, 4, 0, 2], 7, true);
        let p = one(&hb);
        assert_eq!(
            ack(&p).unwrap(),
            frame(0x13, &[], 7, true),
            "acknowledgement keeps the framing"
        );
        assert_eq!(&ack(&p).unwrap()[..5], &[0x79, 0x79, 0x00, 0x05, 0x13]);
    }

    #[test]
    fn alarm_examples() {
        // Alarm code 0x03 vibration → tamper; course 0x4403: bit 12 clear, not positioned,
        // so no fix; level 6 → 100 %.
        let p = one(&hex(ALARM_DOC));
        assert_eq!(
            p.body,
            Body::Alarm {
                fix: None,
                alarm: Alarm::Tamper,
                battery_percent: Some(100)
            }
        );
        assert_eq!(p.serial, 0x000D);
        assert_eq!(ack(&p).unwrap(), hex("78 78 05 26 00 0D 9C 8E 0D 0A"));
        // The document's alarm response example (serial 0x001C).
        let doc_reply = Packet { serial: 0x1C, ..p };
        assert_eq!(
            ack(&doc_reply).unwrap(),
            hex("78 78 05 26 00 1C 9D 86 0D 0A")
        );

        // Alarm code 0x00 and info 0xD8 = bits 3–5 011: low battery; course 0x54B9 positioned,
        // 2017-12-13 19:55:54, lat 0x026C15A6 = 40_637_862 → 22.576590° N,
        // lon 0x0C38CF0A = 205_049_610 → 113.916450° E; level 2 → 33 %.
        let p = one(&hex(ALARM_FENCES_DOC));
        let Body::Alarm {
            fix: Some(fix),
            alarm,
            battery_percent,
        } = p.body
        else {
            panic!("{p:?}")
        };
        assert_eq!(alarm, Alarm::LowBattery);
        assert_eq!(battery_percent, Some(33));
        assert_eq!(fix.at_ms, 1_513_194_954_000);
        assert!((fix.lat - 22.576_59).abs() < 1e-6, "{}", fix.lat);
        assert!((fix.lon - 113.916_45).abs() < 1e-6, "{}", fix.lon);

        // Traccar: 0x16 with code 0 and info 0x7C (bits 3–5 = 111) is a removal; level 0x55
        // is not a 0–6 level, so no percentage.
        let p = one(&hex(ALARM_TRACCAR_REMOVING));
        assert!(matches!(
            p.body,
            Body::Alarm {
                fix: Some(_),
                alarm: Alarm::Removal,
                battery_percent: None
            }
        ));
    }

    #[test]
    fn encoded_alarms_and_heartbeats_decode() {
        let fix = Fix {
            at_ms: 1_735_732_800_000,
            lat: 31.2304,
            lon: 121.4737,
        };
        for a in Alarm::ALL {
            let p = one(&encode::alarm(Some(&fix), a, 3));
            let Body::Alarm {
                fix: Some(got),
                alarm,
                ..
            } = p.body
            else {
                panic!("{p:?}")
            };
            assert_eq!(alarm, a);
            assert!((got.lat - fix.lat).abs() < 1e-5 && (got.lon - fix.lon).abs() < 1e-5);
            assert!(ack(&p).is_some());
            let p = one(&encode::alarm(None, a, 3));
            assert!(matches!(p.body, Body::Alarm { fix: None, alarm, .. } if alarm == a));
        }
        let p = one(&encode::heartbeat(50, true, 9));
        assert_eq!(
            p.body,
            Body::Status {
                battery_percent: Some(50),
                charging: false,
                tamper: true,
                gsm_signal: 4
            }
        );
        let p = one(&encode::heartbeat(100, false, 9));
        assert_eq!(
            p.to_report("864717003283581"),
            Some(crate::Report {
                device: "864717003283581".into(),
                fix: None,
                battery_percent: Some(100),
                alarm: None
            })
        );
        let p = one(&encode::alarm(Some(&fix), Alarm::Removal, 4));
        assert_eq!(
            p.to_report("x").map(|r| (r.fix.is_some(), r.alarm)),
            Some((true, Some(Alarm::Removal)))
        );
        let p = one(&encode::location(&fix, 5));
        assert_eq!(
            p.to_report("x").and_then(|r| r.fix).map(|f| f.at_ms),
            Some(fix.at_ms)
        );
        let p = one(&encode::login("864717003283581", 1));
        assert_eq!(p.to_report("x"), None);
        assert_eq!(
            p.body,
            Body::Login {
                imei: "864717003283581".into()
            }
        );
        assert_eq!(encode::login("864717003283581", 9), hex(LOGIN_TRACCAR));
    }

    #[test]
    fn bad_crc_is_reported_and_the_next_frame_still_decodes() {
        let mut bad = hex(LOGIN_CLASSIC);
        bad[14] = 0x8D; // CRC 0x8DDD
        let mut bytes = bad.clone();
        bytes.extend(hex(HEARTBEAT_DOC));
        let all = decode_all(&bytes);
        assert_eq!(
            all[0],
            Err(Gt06Error::Crc {
                expected: 0x8CDD,
                got: 0x8DDD
            })
        );
        assert_eq!(
            all[0].as_ref().unwrap_err().to_string(),
            "crc: expected 0x8cdd, got 0x8ddd"
        );
        // The rest of the broken frame is skipped as garbage, then the heartbeat.
        assert_eq!(all[1], Err(Gt06Error::Garbage { bytes: 16 }));
        assert_eq!(all[2].as_ref().unwrap().protocol, 0x13);
        assert_eq!(all.len(), 3);

        // A flipped content bit is caught too.
        let mut bad = hex(HEARTBEAT_DOC);
        bad[5] ^= 0x01;
        assert!(matches!(decode_all(&bad)[0], Err(Gt06Error::Crc { .. })));
    }

    #[test]
    fn truncated_frame_completes_on_the_next_push() {
        let bytes = hex(LOCATION_DOC);
        let mut d = Decoder::new();
        d.push(&bytes[..20]);
        assert_eq!(d.next(), None);
        assert_eq!(d.buffered(), 20);
        d.push(&bytes[20..]);
        let p = d.next().unwrap().unwrap();
        assert_eq!(p.protocol, 0x22);
        assert_eq!(d.next(), None);
        assert_eq!(d.buffered(), 0);

        // Byte by byte.
        let mut d = Decoder::new();
        let mut got = vec![];
        for b in hex(ALARM_DOC) {
            d.push(&[b]);
            got.extend(std::iter::from_fn(|| d.next()));
        }
        assert_eq!(got.len(), 1);
        assert!(got[0].is_ok());
    }

    #[test]
    fn truncated_frame_followed_by_a_whole_one() {
        // A frame cut short (connection hiccup) and then a complete one: the cut frame's
        // declared length swallows the next frame's bytes, the CRC fails, and the decoder
        // resynchronises on the next start bits.
        let mut bytes = hex(LOCATION_DOC)[..20].to_vec();
        bytes.extend(hex(LOCATION_DOC));
        bytes.extend(hex(HEARTBEAT_DOC));
        let all = decode_all(&bytes);
        let ok: Vec<_> = all.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ok.len(), 2, "{all:?}");
        assert_eq!((ok[0].protocol, ok[1].protocol), (0x22, 0x13));
        // The cut frame's stop bits fall inside the next frame.
        assert!(matches!(all[0], Err(Gt06Error::StopBits { .. })), "{all:?}");
    }

    #[test]
    fn garbage_before_a_frame() {
        let mut bytes = b"GET / HTTP/1.1\r\n".to_vec();
        bytes.extend(hex(LOGIN_CLASSIC));
        let all = decode_all(&bytes);
        assert_eq!(all[0], Err(Gt06Error::Garbage { bytes: 16 }));
        assert_eq!(
            all[0].as_ref().unwrap_err().to_string(),
            "garbage: 16 bytes without start bits were skipped"
        );
        assert!(matches!(&all[1], Ok(Packet { protocol: 1, .. })));
        assert_eq!(all.len(), 2);

        // Garbage ending in half of the start bits keeps that half.
        let mut d = Decoder::new();
        d.push(&[0x00, 0x11, 0x78]);
        assert_eq!(d.next(), Some(Err(Gt06Error::Garbage { bytes: 2 })));
        assert_eq!(d.next(), None);
        d.push(&hex(LOGIN_CLASSIC)[1..]);
        assert!(d.next().unwrap().is_ok());
    }

    #[test]
    fn two_frames_in_one_push() {
        let mut bytes = hex(LOGIN_CLASSIC);
        bytes.extend(hex(LOCATION_DOC));
        let all = decode_all(&bytes);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].as_ref().unwrap().protocol, 0x01);
        assert_eq!(all[1].as_ref().unwrap().protocol, 0x22);

        // A large read holding many frames: all decoded, in order, none lost.
        let fix = Fix {
            at_ms: 1_735_689_600_000,
            lat: 25.04,
            lon: 102.71,
        };
        let bytes: Vec<u8> = (0..1000u16)
            .flat_map(|i| encode::location(&fix, i))
            .collect();
        assert_eq!(bytes.len(), 39_000);
        let serials: Vec<u16> = decode_all(&bytes)
            .into_iter()
            .map(|r| r.unwrap().serial)
            .collect();
        assert_eq!(serials, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn bad_lengths_and_stop_bits() {
        let all = decode_all(&hex("78 78 03 01 00 01 0D 0A"));
        assert_eq!(all[0], Err(Gt06Error::TooShort { length: 3 }));
        assert_eq!(
            all[0].as_ref().unwrap_err().to_string(),
            "length: 3 is too short for a packet"
        );
        // Oversize long frame: length 0xFFFF would need 65 541 bytes.
        let mut d = Decoder::new();
        d.push(&hex("79 79 FF FF 12 00 00"));
        assert_eq!(
            d.next(),
            Some(Err(Gt06Error::TooLong {
                length: 0xFFFF,
                max: MAX_FRAME
            }))
        );
        assert_eq!(
            Gt06Error::TooLong {
                length: 0xFFFF,
                max: MAX_FRAME
            }
            .to_string(),
            "length: 65535 is too long (a frame may be at most 4096 bytes)"
        );
        while let Some(r) = d.next() {
            assert!(r.is_err());
        }
        assert!(d.buffered() <= 1);

        // Good CRC, wrong stop bits.
        let mut f = hex(HEARTBEAT_DOC);
        let n = f.len();
        f[n - 1] = 0x00;
        assert_eq!(decode_all(&f)[0], Err(Gt06Error::StopBits { got: 0x0D00 }));
    }

    #[test]
    fn unparsable_bodies_name_the_protocol() {
        // A well-framed location with only 6 content bytes.
        let f = frame(0x12, &[0x19, 1, 1, 0, 0, 0], 1, false);
        assert_eq!(
            decode_all(&f)[0].as_ref().unwrap_err().to_string(),
            "body of protocol 0x12: 6 bytes is too short for a GPS position (need 18)"
        );
        // Month 13.
        let mut c = vec![0x19, 13, 1, 0, 0, 0];
        c.extend([0u8; 12]);
        assert_eq!(
            decode_all(&frame(0x12, &c, 1, false))[0]
                .as_ref()
                .unwrap_err()
                .to_string(),
            "body of protocol 0x12: date-time 2025-13-01 00:00:00 is not a valid time"
        );
        // Not BCD.
        let f = frame(0x01, &[0x0A, 0, 0, 0, 0, 0, 0, 0], 1, false);
        assert_eq!(
            decode_all(&f)[0].as_ref().unwrap_err().to_string(),
            "body of protocol 0x01: terminal id byte 0 (0x0a) is not BCD"
        );
        // Unknown protocols are Other, and not acknowledged.
        let p = one(&frame(0x8A, &[], 1, false));
        assert_eq!(p.body, Body::Other);
        assert_eq!(ack(&p), None);
    }

    #[test]
    fn pushing_without_draining_overflows() {
        let mut d = Decoder::new();
        d.push(&vec![0u8; MAX_PENDING]);
        d.push(&[0u8; 1]);
        assert_eq!(
            d.next(),
            Some(Err(Gt06Error::Overflow {
                bytes: MAX_PENDING + 1
            }))
        );
        assert_eq!(d.buffered(), 0);
        d.push(&hex(LOGIN_CLASSIC));
        assert!(d.next().unwrap().is_ok());
    }

    fn arb_fix() -> impl Strategy<Value = Fix> {
        // 2000-01-01 .. 2099-12-31, whole and fractional seconds; no exact zeros needed.
        (
            946_684_800_000i64..4_102_444_800_000,
            -90.0f64..=90.0,
            -180.0f64..=180.0,
        )
            .prop_map(|(at_ms, lat, lon)| Fix { at_ms, lat, lon })
    }

    proptest! {
        #[test]
        fn arbitrary_chunks_never_panic_and_stay_bounded(
            chunks in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..600), 0..20),
            frames in proptest::collection::vec(0usize..4, 0..6),
        ) {
            let mut d = Decoder::new();
            let good = [hex(LOGIN_CLASSIC), hex(HEARTBEAT_DOC), hex(LOCATION_DOC), hex(ALARM_DOC)];
            for (i, chunk) in chunks.iter().enumerate() {
                d.push(chunk);
                if let Some(&f) = frames.get(i) {
                    d.push(&good[f]);
                }
                while let Some(r) = d.next() {
                    let _ = r.map(|p| ack(&p));
                }
                prop_assert!(d.buffered() < MAX_FRAME);
            }
        }

        #[test]
        fn start_heavy_noise_stays_bounded(
            raw in proptest::collection::vec(any::<u8>(), 0..1500),
            split in 1usize..400,
        ) {
            // Noise made mostly of start and stop bytes, so that many false frames begin.
            let bytes: Vec<u8> = raw
                .iter()
                .map(|&b| match b % 10 {
                    0 | 1 => 0x78,
                    2 | 3 => 0x79,
                    4 => 0x0D,
                    5 => 0x0A,
                    _ => b,
                })
                .collect();
            let mut d = Decoder::new();
            for chunk in bytes.chunks(split) {
                d.push(chunk);
                while d.next().is_some() {}
                prop_assert!(d.buffered() < MAX_FRAME);
            }
        }

        #[test]
        fn a_frame_survives_any_split_and_leading_noise(
            noise in proptest::collection::vec(0u8..0x78, 0..50),
            split in 0usize..40,
        ) {
            let f = hex(LOCATION_DOC);
            let split = split.min(f.len());
            let mut d = Decoder::new();
            d.push(&noise);
            d.push(&f[..split]);
            let mut got: Vec<_> = std::iter::from_fn(|| d.next()).collect();
            d.push(&f[split..]);
            got.extend(std::iter::from_fn(|| d.next()));
            let ok: Vec<_> = got.into_iter().filter_map(Result::ok).collect();
            prop_assert_eq!(ok.len(), 1);
            prop_assert_eq!(ok[0].protocol, 0x22);
        }

        #[test]
        fn encode_decode_round_trip(fix in arb_fix(), serial in any::<u16>(), long in any::<bool>()) {
            let bytes = if long {
                encode::location_long(&fix, serial)
            } else {
                encode::location(&fix, serial)
            };
            let p = one(&bytes);
            prop_assert_eq!(p.serial, serial);
            prop_assert_eq!(p.long_frame, long);
            let Body::Location { fix: got, gps_valid, .. } = p.body else {
                return Err(TestCaseError::fail("not a location"));
            };
            prop_assert!(gps_valid);
            prop_assert!((got.lat - fix.lat).abs() < 1e-5, "lat {} vs {}", got.lat, fix.lat);
            prop_assert!((got.lon - fix.lon).abs() < 1e-5, "lon {} vs {}", got.lon, fix.lon);
            prop_assert_eq!(got.at_ms, fix.at_ms - fix.at_ms.rem_euclid(1000));
        }

        #[test]
        fn heartbeat_battery_round_trips_to_the_nearest_level(p in 0u8..=100, tamper in any::<bool>()) {
            let packet = one(&encode::heartbeat(p, tamper, 1));
            let Body::Status { battery_percent: Some(got), tamper: t, .. } = packet.body else {
                return Err(TestCaseError::fail("not a status"));
            };
            prop_assert!((i16::from(got) - i16::from(p)).abs() <= 9);
            prop_assert_eq!(t, tamper);
        }
    }
}
