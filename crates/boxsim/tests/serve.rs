//! `anxin-box-sim serve`: the simulated box answers the box wire protocol as
//! the firmware does (the same scenario runs against the firmware in QEMU in
//! `crates/boxproto/tests/qemu.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use boxproto::station::{Station, StationError};
use boxproto::{BoxState, ErrorCode, KeyOutcome, Provision};
use lockcode::{derive_code, verify_log, Digits, EventKind, Secret};

const START_DAY: u32 = 20_790;
const T0: u64 = 20_790 * 86_400 + 9 * 3600;

fn start(dir: &std::path::Path) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || anxin_boxsim::serve::serve_on(l, &dir, 4));
    addr
}

fn connect(addr: std::net::SocketAddr) -> Station<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Station::new(s)
}

fn code(secret: &[u8], load: u64, i: u8) -> String {
    let s = Secret::from_bytes(secret).unwrap();
    derive_code(&s, 4, load, i, START_DAY + u32::from(i), Digits::DEFAULT)
        .to_text()
        .as_str()
        .to_owned()
}

#[test]
fn the_simulator_is_loaded_opened_and_returned_over_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut st = connect(addr);
    assert!(matches!(
        st.status(),
        Err(StationError::Refused(ErrorCode::OutOfOrder))
    ));
    let id = st.identify().unwrap();
    assert_eq!((id.serial, id.state), (4, BoxState::Empty));
    let secret = [0x5Au8; 32];
    let p = Provision {
        load_id: 12,
        box_id: 4,
        start_day: START_DAY,
        compartments: 6,
        digits: 8,
        now: T0,
        secret: &secret,
    };
    let wrong_box = Provision { box_id: 5, ..p };
    assert!(matches!(
        st.provision(&wrong_box),
        Err(StationError::Refused(ErrorCode::WrongId))
    ));
    let s = st.provision(&p).unwrap();
    assert_eq!(
        (s.state, s.load_id, s.compartments),
        (BoxState::Loaded, 12, 6)
    );
    assert!(matches!(
        st.provision(&p),
        Err(StationError::Refused(ErrorCode::Loaded))
    ));
    assert!(dir.path().join("box.json").exists(), "an ordinary box file");

    // A new session (the box unplugged and plugged in again) keeps the load.
    drop(st);
    let mut st = connect(addr);
    assert_eq!(st.identify().unwrap().state, BoxState::Loaded);
    let k = st
        .keys(T0 + 86_400, format!("{}#", code(&secret, 12, 1)).as_bytes())
        .unwrap();
    assert_eq!((k.outcome, k.compartment), (KeyOutcome::Opened, 1));
    let k = st.keys(T0 + 86_400, b"00000000#").unwrap();
    assert_eq!((k.outcome, k.failures), (KeyOutcome::WrongCode, 1));
    assert!(matches!(
        st.wipe(12),
        Err(StationError::Refused(ErrorCode::NotExported))
    ));
    let log = st.export(T0 + 2 * 86_400, 0xABCD).unwrap();
    let v = verify_log(&Secret::from_bytes(&secret).unwrap(), 4, 12, &log).unwrap();
    assert_eq!(v.summary().challenge, 0xABCD);
    assert_eq!(v.summary().opened_mask, 0b10);
    assert!(v.entries().any(|e| e.kind == EventKind::Failed));
    assert_eq!(st.status().unwrap().state, BoxState::Exported);
    assert!(matches!(
        st.wipe(13),
        Err(StationError::Refused(ErrorCode::WrongId))
    ));
    st.wipe(12).unwrap();
    assert_eq!(st.identify().unwrap().state, BoxState::Empty);
    assert!(!dir.path().join("box.json").exists());
}
