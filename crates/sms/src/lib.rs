//! Anxin's SMS delivery: everything between the outbox table and an operator's SMS centre.
//!
//! This crate owns the provider interface ([`provider::Provider`]) and its providers (Kannel over
//! HTTP `sendsms` with signed `dlr-url` delivery reports, a file provider and a console provider
//! for demos and development), the worker loop that claims due messages, sends them and records
//! what happened ([`worker`]), the signed delivery-report URLs ([`dlr`]) and the `[sms]`
//! configuration ([`config`]). The rules (states, backoff, texts, phone numbers) are pure code in
//! `anxin_domain::{sms, phone}`; the queue itself is `anxin_storage::outbox`.
//!
//! The delivery guarantee (exactly one code per compartment across crashes) is explained in
//! [`worker`] and in `docs/sms.md`.

pub mod config;
pub mod dlr;
pub mod kannel;
pub mod provider;
#[cfg(feature = "testing")]
pub mod testing;
pub mod worker;

pub use config::{SmsConfig, SmsConfigError, SmsSettings};
pub use provider::{Delivery, Outgoing, Provider};
pub use worker::Worker;
