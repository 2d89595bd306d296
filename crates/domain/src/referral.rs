//! Police e-referral: an officer refers a person into treatment with a short code on paper
//! (nothing about the person, nothing clinical); when the person comes to a centre and agrees,
//! the centre marks the referral `arrived`, and once enrolled `enrolled`. Those two words (and
//! their days) are all the police ever learn back, each a line in the client's disclosure
//! ledger. Seed 004 names referral into treatment as a health indicator the police and the CDC
//! share.
//!
//! A code is eight characters from an alphabet without look-alikes (no 0/O, 1/I/L, U), shown as
//! `ABCD-EFGH`: 30⁸ ≈ 6.6 × 10¹¹ codes. Only its keyed hash is stored.

use std::fmt;

use crate::problem::{Code, Problem};
use crate::DomainError;

/// Characters a referral code is made of.
pub const ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code.
pub const CODE_LEN: usize = 8;

/// Where a referral stands, as the police see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReferralState {
    /// The officer gave the code; nobody has come with it yet (or the person did not agree to
    /// the police being told).
    Issued,
    /// The person came to a centre and agreed that the police may be told.
    Arrived,
    /// The person was enrolled in treatment.
    Enrolled,
}

impl ReferralState {
    pub const ALL: [ReferralState; 3] = [
        ReferralState::Issued,
        ReferralState::Arrived,
        ReferralState::Enrolled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReferralState::Issued => "issued",
            ReferralState::Arrived => "arrived",
            ReferralState::Enrolled => "enrolled",
        }
    }

    pub fn parse(s: &str) -> Option<ReferralState> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ReferralState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code from 8 random bytes (the caller draws them): base 30 of their value, so every code
/// is equally likely but for a bias below one in a million.
pub fn code_from(random: [u8; 8]) -> String {
    let mut n = u64::from_le_bytes(random);
    let mut out = String::with_capacity(CODE_LEN);
    for _ in 0..CODE_LEN {
        let i = usize::try_from(n % 30).unwrap_or(0);
        out.push(char::from(ALPHABET[i]));
        n /= 30;
    }
    out
}

/// A code as printed: `ABCD-EFGH`.
pub fn display(code: &str) -> String {
    if code.len() == CODE_LEN && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// A code as typed (any case, with spaces or a hyphen) made canonical, or refused at `field`.
/// Look-alikes typed by mistake (`O`, `I`, `L`) are read as `0` and `1`, which the alphabet
/// leaves out too: such a code is refused, never matched to another.
pub fn normalise(typed: &str, field: &str) -> Result<String, DomainError> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    let ok = code.chars().count() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b));
    if ok {
        Ok(code)
    } else {
        Err(Problem::new(Code::ReferralCodeMalformed)
            .field(field)
            .arg("len", CODE_LEN)
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_characters_of_the_alphabet_and_read_back_as_typed() {
        for seed in [[0u8; 8], [255; 8], [1, 2, 3, 4, 5, 6, 7, 8]] {
            let c = code_from(seed);
            assert_eq!(c.len(), CODE_LEN);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
            let shown = display(&c);
            assert_eq!(
                normalise(&shown.to_lowercase(), "code").ok(),
                Some(c.clone())
            );
            assert_eq!(normalise(&format!(" {shown} "), "code").ok(), Some(c));
        }
        assert_ne!(code_from([1; 8]), code_from([2; 8]));
    }

    #[test]
    fn a_code_that_cannot_be_one_is_refused_at_its_field() {
        // Too short, too long, a letter outside the alphabet (U), and look-alikes read as the
        // digits 0 and 1, which are not in the alphabet either.
        for bad in [
            "ABC-DEF",
            "ABCD-EFGH-J",
            "ABCD-EFGU",
            "ABCD-EFGO",
            "ABCD-EFGI",
            "",
        ] {
            match normalise(bad, "code") {
                Err(DomainError::Refused(p)) => {
                    assert_eq!(p.code, Code::ReferralCodeMalformed, "{bad}");
                    assert_eq!(p.field.as_deref(), Some("code"));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn states_read_back() {
        for s in ReferralState::ALL {
            assert_eq!(ReferralState::parse(s.as_str()), Some(s));
        }
        assert_eq!(ReferralState::parse("seen"), None);
    }
}
