//! Keypad entry: key presses (`0`-`9`, `*` clear, `#` enter) become a
//! [`Code`]; bad keys and wrong lengths are refused with a [`KeypadError`].

use crate::code::{Code, CodeError, Digits};

/// A keypad key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A digit 0..=9.
    Digit(u8),
    /// `*`: clear what was typed.
    Clear,
    /// `#`: submit what was typed.
    Enter,
}

impl Key {
    /// Maps an ASCII byte (`0`-`9`, `*`, `#`) to a key.
    pub fn from_ascii(b: u8) -> Result<Key, KeypadError> {
        match b {
            b'0'..=b'9' => Ok(Key::Digit(b - b'0')),
            b'*' => Ok(Key::Clear),
            b'#' => Ok(Key::Enter),
            other => Err(KeypadError::NotAKey(other)),
        }
    }
}

/// Bad keypad input. The typed digits are discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeypadError {
    /// A byte that is not a key (only `0`-`9`, `*` and `#` are).
    #[error("not a keypad key: byte 0x{0:02x}")]
    NotAKey(u8),
    /// A digit key with a value above 9.
    #[error("digit key out of range: {0}")]
    BadDigit(u8),
    /// More digits than a code has.
    #[error("too many digits (codes have {max})")]
    TooManyDigits {
        /// Digits in a code.
        max: u8,
    },
    /// Enter pressed with fewer digits than a code has.
    #[error("too few digits: {got} typed, codes have {need}")]
    TooFewDigits {
        /// Digits typed.
        got: u8,
        /// Digits in a code.
        need: u8,
    },
}

/// What a key press did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEvent {
    /// A digit was stored; `typed` digits so far.
    Typed {
        /// Digits typed so far.
        typed: u8,
    },
    /// The buffer was cleared.
    Cleared,
    /// Enter with a full code.
    Submitted(Code),
}

/// The keypad buffer.
#[derive(Clone)]
pub struct Keypad {
    value: u32,
    len: u8,
    digits: Digits,
}

impl core::fmt::Debug for Keypad {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keypad")
            .field("typed", &self.len)
            .field("digits", &self.digits)
            .finish_non_exhaustive()
    }
}

impl Keypad {
    /// An empty keypad for codes of `digits` digits.
    pub fn new(digits: Digits) -> Keypad {
        Keypad {
            value: 0,
            len: 0,
            digits,
        }
    }

    /// Digits typed so far.
    pub fn typed(&self) -> u8 {
        self.len
    }

    fn clear(&mut self) {
        self.value = 0;
        self.len = 0;
    }

    /// Handles one key press. On error the buffer is cleared.
    pub fn press(&mut self, key: Key) -> Result<KeyEvent, KeypadError> {
        match key {
            Key::Digit(d) => {
                if d > 9 {
                    self.clear();
                    return Err(KeypadError::BadDigit(d));
                }
                if self.len >= self.digits.get() {
                    self.clear();
                    return Err(KeypadError::TooManyDigits {
                        max: self.digits.get(),
                    });
                }
                self.value = self.value * 10 + u32::from(d);
                self.len += 1;
                Ok(KeyEvent::Typed { typed: self.len })
            }
            Key::Clear => {
                self.clear();
                Ok(KeyEvent::Cleared)
            }
            Key::Enter => {
                let (got, value) = (self.len, self.value);
                self.clear();
                if got != self.digits.get() {
                    return Err(KeypadError::TooFewDigits {
                        got,
                        need: self.digits.get(),
                    });
                }
                Code::new(value, self.digits)
                    .map(KeyEvent::Submitted)
                    .map_err(|_: CodeError| KeypadError::TooManyDigits {
                        max: self.digits.get(),
                    })
            }
        }
    }

    /// Handles an ASCII key press (see [`Key::from_ascii`]).
    pub fn press_ascii(&mut self, b: u8) -> Result<KeyEvent, KeypadError> {
        match Key::from_ascii(b) {
            Ok(k) => self.press(k),
            Err(e) => {
                self.clear();
                Err(e)
            }
        }
    }
}

/// Parses a typed code (exactly `digits` ASCII digits, as typed on the keypad
/// followed by Enter).
pub fn parse_typed_code(typed: &[u8], digits: Digits) -> Result<Code, KeypadError> {
    let mut pad = Keypad::new(digits);
    for &b in typed {
        match Key::from_ascii(b)? {
            Key::Digit(d) => {
                pad.press(Key::Digit(d))?;
            }
            Key::Clear | Key::Enter => return Err(KeypadError::NotAKey(b)),
        }
    }
    match pad.press(Key::Enter)? {
        KeyEvent::Submitted(c) => Ok(c),
        _ => Err(KeypadError::TooFewDigits {
            got: 0,
            need: digits.get(),
        }),
    }
}
