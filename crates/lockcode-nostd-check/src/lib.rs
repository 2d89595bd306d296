//! Build-only check that `lockcode` works without `std`: with the `check`
//! feature this crate is `#![no_std]`, defines its own `#[panic_handler]`
//! and exercises the whole lockcode API; `.ci/lockcode.sh` builds it as a
//! staticlib with `-C panic=abort`. A `std` dependency anywhere below
//! lockcode would bring a second panic handler and fail the build.
#![cfg_attr(feature = "check", no_std)]
#![deny(unsafe_code)]

use lockcode::{
    derive_code, verify_log, BoxConfig, Code, Digits, LockBox, Secret, Storage, EXPORT_MAX_LEN,
    STATE_LEN,
};

#[cfg(feature = "check")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

struct Flash([u8; STATE_LEN]);

impl Storage for Flash {
    type Error = ();
    fn persist(&mut self, state: &[u8; STATE_LEN]) -> Result<(), ()> {
        self.0 = *state;
        Ok(())
    }
}

/// Provisions a box from a 32-byte secret, types `code`, exports and
/// verifies the log. Returns the opened compartment, 0xFE when refused,
/// 0xFF on error.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn anxin_lockcode_check(secret: &[u8; 32], code: u32, now: u64) -> u8 {
    let Ok(secret) = Secret::from_bytes(secret) else {
        return 0xFF;
    };
    let Ok(code) = Code::new(code, Digits::DEFAULT) else {
        return 0xFF;
    };
    let config = BoxConfig {
        secret: secret.clone(),
        box_id: 1,
        load_id: 2,
        start_day: 20_000,
        compartments: 6,
        digits: Digits::DEFAULT,
        day_binding: None,
    };
    let _ = derive_code(&secret, 1, 2, 0, 20_000, Digits::DEFAULT);
    let Ok(mut lock) = LockBox::provision(config, now) else {
        return 0xFF;
    };
    let mut flash = Flash([0; STATE_LEN]);
    let result = match lock.enter(now, &code, &mut flash) {
        Ok(lockcode::Outcome::Opened { compartment }) => compartment,
        Ok(_) => 0xFE,
        Err(()) => return 0xFF,
    };
    let mut out = [0u8; EXPORT_MAX_LEN];
    let Ok(n) = lock.export_log(now, 7, &mut out, &mut flash) else {
        return 0xFF;
    };
    match verify_log(&secret, 1, 2, &out[..n]) {
        Ok(_) => result,
        Err(_) => 0xFF,
    }
}
