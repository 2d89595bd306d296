//! Performs exactly N code verifications, for instruction counting:
//!
//! ```text
//! cargo build --release -p lockcode --example verify_once
//! valgrind --tool=callgrind target/release/examples/verify_once 1 enter
//! valgrind --tool=callgrind target/release/examples/verify_once 1001 enter
//! ```
//!
//! (count(1001) - count(1)) / 1000 = instructions per verification.
//!
//! Modes:
//! * `enter` (default): a full `LockBox::enter` with a wrong code on a
//!   6-compartment load: write-ahead state serialisation (with CRC-32), the six
//!   compartment codes derived and compared, a log record MACed, the final
//!   state serialised. The worst case for a box.
//! * `match`: only deriving and comparing the six codes.

use std::hint::black_box;

use lockcode::{derive_code, BoxConfig, Code, Digits, LockBox, Secret, Storage, STATE_LEN};
use subtle::ConstantTimeEq;

struct Sink;
impl Storage for Sink {
    type Error = ();
    fn persist(&mut self, state: &[u8; STATE_LEN]) -> Result<(), ()> {
        black_box(state);
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().as_deref().unwrap_or("1").parse()?;
    let mode = args.next().unwrap_or_else(|| "enter".into());
    let secret = Secret::from_bytes(&[0x42; 32])?;
    let digits = Digits::DEFAULT;
    let config = BoxConfig {
        secret: secret.clone(),
        box_id: 42,
        load_id: 7,
        start_day: 20_000,
        compartments: 6,
        digits,
        day_binding: None,
    };
    let mut lock = LockBox::provision(config, 1_728_000_000)?;
    let mut now = 1_728_000_000u64;
    let mut opened = 0u64;
    for i in 0..n {
        let code = Code::new(
            black_box((i as u32).wrapping_mul(7919) % 100_000_000),
            digits,
        )?;
        match mode.as_str() {
            "match" => {
                let mut hits = 0u8;
                for c in 0..6u8 {
                    let k = derive_code(&secret, 42, 7, c, 20_000 + u32::from(c), digits);
                    hits |= k.ct_eq(&code).unwrap_u8() << c;
                }
                opened += u64::from(black_box(hits) != 0);
            }
            _ => {
                if let Some(until) = lock.status(now).locked_until {
                    now = until;
                }
                let out = lock.enter(now, &code, &mut Sink).map_err(|()| "storage")?;
                opened += u64::from(matches!(out, lockcode::Outcome::Opened { .. }));
            }
        }
    }
    println!("{n} verifications ({mode}), {opened} opened");
    Ok(())
}
