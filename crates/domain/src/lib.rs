//! The rules of an Anxin treatment centre as pure code.
//!
//! This crate owns every decision that can be stated without a database, a network or a clock:
//! who may do what ([`access`]), how logins and sessions age ([`auth`]), how the audit trail is
//! chained and checked ([`audit`]), and what counts as a valid identifier ([`validate`]).
//! It does no I/O: no tokio, no sqlx, no axum. Time always comes in as a parameter (`now`,
//! `today`), so every rule about days and minutes is testable without waiting.

pub mod access;
pub mod audit;
pub mod auth;
pub mod boxes;
pub mod clinic;
pub mod error;
pub mod gps;
pub mod indicators;
pub mod org;
pub mod phone;
pub mod photo;
pub mod policy_room;
pub mod problem;
pub mod referral;
pub mod release;
pub mod services;
pub mod sms;
pub mod takehome;
pub mod validate;

pub use access::{Access, Permission, Role};
pub use error::DomainError;
pub use problem::{Code, Problem};
