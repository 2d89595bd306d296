//! Recomputes every test vector in docs/lockcode-vectors.json, and checks the
//! RFC 4226 Appendix D truncation vectors with HMAC-SHA-1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hmac::{Hmac, Mac};
use lockcode::code::code_message;
use lockcode::log::record_tag;
use lockcode::{derive_code, dynamic_truncate, verify_log, Digits, Secret};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/lockcode-vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("read docs/lockcode-vectors.json");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k}"))
}
fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("field {k}"))
}
fn id(v: &Value, k: &str) -> u64 {
    s(v, k).parse().expect("decimal id")
}

#[test]
fn code_vectors() {
    let v = vectors();
    let codes = v["codes"].as_array().expect("codes");
    assert!(codes.len() >= 10);
    for c in codes {
        let secret = Secret::from_bytes(&hex::decode(s(c, "secret_hex")).unwrap()).unwrap();
        let digits = Digits::new(n(c, "digits") as u8).unwrap();
        let (b, l) = (id(c, "box_id"), id(c, "load_id"));
        let (comp, day) = (n(c, "compartment") as u8, n(c, "day") as u32);
        assert_eq!(
            hex::encode(code_message(b, l, comp, day, digits)),
            s(c, "mac_input_hex")
        );
        let code = derive_code(&secret, b, l, comp, day, digits);
        assert_eq!(code.to_string(), s(c, "code"), "vector {c}");
    }
}

#[test]
fn log_vectors() {
    let v = vectors();
    for r in v["log_records"].as_array().expect("log_records") {
        let secret = Secret::from_bytes(&hex::decode(s(r, "secret_hex")).unwrap()).unwrap();
        let prev: [u8; 16] = hex::decode(s(r, "prev_tag_hex"))
            .unwrap()
            .try_into()
            .unwrap();
        let body: [u8; 24] = hex::decode(s(r, "body_hex")).unwrap().try_into().unwrap();
        let tag = record_tag(&secret, id(r, "box_id"), id(r, "load_id"), &prev, &body);
        assert_eq!(hex::encode(tag), s(r, "tag_hex"));
    }
    let e = &v["export"];
    let secret = Secret::from_bytes(&hex::decode(s(e, "secret_hex")).unwrap()).unwrap();
    let bytes = hex::decode(s(e, "bytes_hex")).unwrap();
    let log = verify_log(&secret, id(e, "box_id"), id(e, "load_id"), &bytes).unwrap();
    assert_eq!(log.summary().records, 3);
    assert_eq!(log.summary().challenge, 99);
}

#[test]
fn rfc4226_appendix_d_truncation() {
    let v = vectors();
    let r = &v["rfc4226_truncation"];
    let expected: Vec<&str> = r["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(expected.len(), 10);
    for (counter, want) in expected.iter().enumerate() {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(s(r, "secret_ascii").as_bytes()).unwrap();
        mac.update(&(counter as u64).to_be_bytes());
        let out: [u8; 20] = mac.finalize().into_bytes().into();
        let code = dynamic_truncate(&out) % 1_000_000;
        assert_eq!(format!("{code:06}"), *want, "counter {counter}");
    }
}
