//! Code derivation: the per-load [`Secret`], the code MAC input, RFC 4226
//! dynamic truncation and the [`Code`] value type.

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Domain-separation label that starts every MAC input (17 ASCII bytes).
pub const LABEL: &[u8; 17] = b"ANXIN-LOCKCODE-v1";
/// Purpose byte following [`LABEL`] in a code MAC input.
pub(crate) const PURPOSE_CODE: u8 = 0x01;
/// Purpose byte following [`LABEL`] in a log-record MAC input.
pub(crate) const PURPOSE_LOG: u8 = 0x02;

/// Shortest accepted secret (160 bits).
pub const SECRET_MIN_LEN: usize = 20;
/// Longest accepted secret (one SHA-256 block, so the key is used as is).
pub const SECRET_MAX_LEN: usize = 64;
/// Fewest compartments in a load.
pub const MIN_COMPARTMENTS: u8 = 2;
/// Most compartments in a load.
pub const MAX_COMPARTMENTS: u8 = 6;

/// Length in bytes of the code MAC input.
pub const CODE_MESSAGE_LEN: usize = 40;

/// Error building a [`Secret`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret is shorter than 20 or longer than 64 bytes.
    #[error("secret must be 20 to 64 bytes, got {0}")]
    Length(usize),
}

/// A per-load box secret (20..=64 bytes), with its HMAC key schedule.
///
/// `Debug` prints `Secret(***)`; the bytes are wiped (best effort) on drop.
#[derive(Clone)]
pub struct Secret {
    bytes: [u8; SECRET_MAX_LEN],
    len: u8,
    mac: HmacSha256,
}

impl Secret {
    /// Wraps secret bytes; refuses fewer than 20 or more than 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if !(SECRET_MIN_LEN..=SECRET_MAX_LEN).contains(&bytes.len()) {
            return Err(SecretError::Length(bytes.len()));
        }
        let mac =
            HmacSha256::new_from_slice(bytes).map_err(|_| SecretError::Length(bytes.len()))?;
        let mut buf = [0u8; SECRET_MAX_LEN];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(Secret {
            bytes: buf,
            len: bytes.len() as u8,
            mac,
        })
    }

    /// The secret bytes (for provisioning a box; never log them).
    pub fn expose(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// HMAC-SHA-256 of the concatenation of `parts`, keyed with this secret.
    pub(crate) fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes = [0u8; SECRET_MAX_LEN];
        core::hint::black_box(&self.bytes);
    }
}

/// Number of digits of a code: 6..=9 (default 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digits(u8);

impl Digits {
    /// The default, 8 digits.
    pub const DEFAULT: Digits = Digits(8);

    /// Validates a digit count (6..=9).
    pub const fn new(n: u8) -> Result<Digits, CodeError> {
        if n >= 6 && n <= 9 {
            Ok(Digits(n))
        } else {
            Err(CodeError::BadDigits(n))
        }
    }

    /// The digit count.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// 10^digits.
    pub const fn modulus(self) -> u32 {
        10u32.pow(self.0 as u32)
    }
}

impl Default for Digits {
    fn default() -> Self {
        Digits::DEFAULT
    }
}

/// Error building a [`Code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Digit count outside 6..=9.
    #[error("codes have 6 to 9 digits, not {0}")]
    BadDigits(u8),
    /// The value does not fit in the digit count.
    #[error("code value out of range for its digit count")]
    OutOfRange,
}

/// A lock code: a number below 10^digits, shown zero-padded.
///
/// Equality is constant-time. `Debug` does not show the digits.
#[derive(Clone, Copy)]
pub struct Code {
    value: u32,
    digits: Digits,
}

impl Code {
    /// Builds a code from its numeric value.
    pub fn new(value: u32, digits: Digits) -> Result<Code, CodeError> {
        if value >= digits.modulus() {
            return Err(CodeError::OutOfRange);
        }
        Ok(Code { value, digits })
    }

    /// The all-zero code (a placeholder).
    pub(crate) const fn zero(digits: Digits) -> Code {
        Code { value: 0, digits }
    }

    /// The numeric value (the code is this number zero-padded).
    pub fn value(&self) -> u32 {
        self.value
    }

    /// The digit count.
    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// The code as ASCII digits in a fixed buffer (no allocation).
    pub fn to_text(&self) -> CodeText {
        let n = usize::from(self.digits.get());
        let mut buf = [b'0'; 9];
        let mut v = self.value;
        for slot in buf[..n].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        CodeText { buf, len: n as u8 }
    }
}

impl ConstantTimeEq for Code {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.value.ct_eq(&other.value) & self.digits.0.ct_eq(&other.digits.0)
    }
}

impl PartialEq for Code {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}
impl Eq for Code {}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_text().as_str())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code(<{} digits>)", self.digits.get())
    }
}

/// A code's ASCII digits in a fixed buffer.
#[derive(Clone, Copy)]
pub struct CodeText {
    buf: [u8; 9],
    len: u8,
}

impl CodeText {
    /// The digits as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
    /// The digits as ASCII bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// RFC 4226 §5.3 dynamic truncation, generalised to any MAC of at least 20
/// bytes: offset = low nibble of the LAST byte; returns the 31-bit number
/// formed by the 4 bytes at that offset (top bit cleared).
pub fn dynamic_truncate<const N: usize>(mac: &[u8; N]) -> u32 {
    const { assert!(N >= 20) };
    let off = usize::from(mac[N - 1] & 0x0f);
    (u32::from(mac[off] & 0x7f) << 24)
        | (u32::from(mac[off + 1]) << 16)
        | (u32::from(mac[off + 2]) << 8)
        | u32::from(mac[off + 3])
}

/// The 40-byte code MAC input:
/// `LABEL(17) || 0x01 || box_id u64 BE || load_id u64 BE || compartment u8 || day u32 BE || digits u8`.
pub fn code_message(
    box_id: u64,
    load_id: u64,
    compartment: u8,
    day: u32,
    digits: Digits,
) -> [u8; CODE_MESSAGE_LEN] {
    let mut m = [0u8; CODE_MESSAGE_LEN];
    m[..17].copy_from_slice(LABEL);
    m[17] = PURPOSE_CODE;
    m[18..26].copy_from_slice(&box_id.to_be_bytes());
    m[26..34].copy_from_slice(&load_id.to_be_bytes());
    m[34] = compartment;
    m[35..39].copy_from_slice(&day.to_be_bytes());
    m[39] = digits.get();
    m
}

/// Derives the code that opens `compartment` (0-based) of load `load_id` of
/// box `box_id`, meant for day number `day` (days since 1970-01-01).
pub fn derive_code(
    secret: &Secret,
    box_id: u64,
    load_id: u64,
    compartment: u8,
    day: u32,
    digits: Digits,
) -> Code {
    let msg = code_message(box_id, load_id, compartment, day, digits);
    let mac = secret.hmac(&[&msg]);
    Code {
        value: dynamic_truncate(&mac) % digits.modulus(),
        digits,
    }
}

/// The codes of one load: compartment `i` is for day `start_day + i`.
#[derive(Clone, Copy)]
pub struct LoadCodes {
    codes: [Code; MAX_COMPARTMENTS as usize],
    count: u8,
    start_day: u32,
}

impl LoadCodes {
    /// The codes, compartment 0 first.
    pub fn codes(&self) -> &[Code] {
        &self.codes[..usize::from(self.count)]
    }
    /// Day number of compartment `i` (`None` if there is no such compartment).
    pub fn day_of(&self, compartment: u8) -> Option<u32> {
        (compartment < self.count).then(|| self.start_day + u32::from(compartment))
    }
    /// True when two compartments share a code (probability about 1.5e-7 for
    /// 8 digits); the clinic should then provision with a fresh secret.
    pub fn has_collision(&self) -> bool {
        let c = self.codes();
        (0..c.len()).any(|i| (i + 1..c.len()).any(|j| c[i] == c[j]))
    }
}

impl fmt::Debug for LoadCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadCodes")
            .field("count", &self.count)
            .field("start_day", &self.start_day)
            .finish_non_exhaustive()
    }
}

/// Builds all codes of a load (server side). `compartments` must be 2..=6
/// and `start_day + compartments - 1` must not overflow.
pub fn load_codes(
    secret: &Secret,
    box_id: u64,
    load_id: u64,
    start_day: u32,
    compartments: u8,
    digits: Digits,
) -> Option<LoadCodes> {
    if !(MIN_COMPARTMENTS..=MAX_COMPARTMENTS).contains(&compartments) {
        return None;
    }
    start_day.checked_add(u32::from(compartments) - 1)?;
    let mut codes = [Code { value: 0, digits }; MAX_COMPARTMENTS as usize];
    for (i, slot) in codes.iter_mut().enumerate().take(usize::from(compartments)) {
        let i = i as u8;
        *slot = derive_code(secret, box_id, load_id, i, start_day + u32::from(i), digits);
    }
    Some(LoadCodes {
        codes,
        count: compartments,
        start_day,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        extern crate std;
        use std::format;
        let s = Secret::from_bytes(&[7u8; 20]).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let c = Code::new(1234, Digits::DEFAULT).unwrap();
        assert_eq!(format!("{c}"), "00001234");
        assert!(!format!("{c:?}").contains("1234"));
    }

    #[test]
    fn secret_length_limits() {
        assert!(Secret::from_bytes(&[0u8; 19]).is_err());
        assert!(Secret::from_bytes(&[0u8; 65]).is_err());
        assert!(Secret::from_bytes(&[0u8; 64]).is_ok());
    }
}
