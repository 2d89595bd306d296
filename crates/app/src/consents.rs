//! Consents to a disclosure (to the police for a take-home check, to the CDC for figures, to
//! the box's GPS): recording one with its scope and expiry, and revoking it.

use anxin_domain::{Code, DomainError, Permission, Problem};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::record::ConsentView;
use crate::{Actor, App, Result};

/// A consent to a disclosure.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// e.g. take_home_police_check, cdc_figures
    pub purpose: String,
    /// e.g. PSB, CDC
    pub recipient: String,
    /// what may be disclosed, e.g. "name, national ID number, requested days"
    pub scope: String,
    #[serde(default)]
    pub given_on: Option<String>,
    pub expires_on: String,
}

/// Records a consent of client `client_id`, given today or on a past day, expiring after it.
pub async fn add(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &ConsentRequest,
) -> Result<ConsentView> {
    me.require(Permission::ConsentManage)?;
    for (field, v) in [
        ("purpose", &req.purpose),
        ("recipient", &req.recipient),
        ("scope", &req.scope),
    ] {
        if v.trim().is_empty() {
            return Err(DomainError::invalid(field, "must not be blank").into());
        }
        crate::identity::bounded(field, v)?;
    }
    let given = crate::treatment::past_or_today("given_on", req.given_on.as_deref(), app.today())?;
    let expires: NaiveDate = crate::parse_date("expires_on", &req.expires_on)?;
    if expires <= given {
        return Err(Problem::new(Code::ConsentExpiresTooSoon)
            .field("expires_on")
            .arg("given", given)
            .into());
    }
    let c = app
        .store
        .add_consent(
            &me.audit(),
            client_id,
            req.purpose.trim(),
            req.recipient.trim(),
            req.scope.trim(),
            given,
            expires,
            app.now(),
        )
        .await?;
    Ok(ConsentView::from(&c))
}

/// Revocation of a consent.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub reason: String,
}

/// Revokes consent `consent_id` today, with the reason given.
pub async fn revoke(
    app: &App,
    me: &Actor,
    consent_id: i64,
    req: &RevokeRequest,
) -> Result<ConsentView> {
    me.require(Permission::ConsentManage)?;
    crate::identity::bounded("reason", &req.reason)?;
    let c = app
        .store
        .revoke_consent(
            &me.audit(),
            consent_id,
            app.today(),
            req.reason.trim(),
            app.now(),
        )
        .await?;
    Ok(ConsentView::from(&c))
}

/// The consents the record page offers, each with its fixed purpose, recipient and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardConsent {
    /// The police check before take-home doses.
    Police,
    /// De-identified counts for the CDC.
    Cdc,
    /// The take-home box's position compared with the home zone.
    Gps,
}

impl StandardConsent {
    /// Parses the form's `kind` (`police`, `cdc`, `gps`).
    pub fn parse(kind: &str) -> Result<StandardConsent> {
        match kind.trim() {
            "police" => Ok(StandardConsent::Police),
            "cdc" => Ok(StandardConsent::Cdc),
            "gps" => Ok(StandardConsent::Gps),
            other => Err(Problem::new(Code::ChoiceUnknown)
                .field("kind")
                .arg("value", other)
                .into()),
        }
    }

    /// The consent given today until `expires_on`.
    pub fn request(self, expires_on: &str) -> ConsentRequest {
        let (purpose, recipient, scope) = match self {
            StandardConsent::Police => (
                crate::takehome::POLICE_PURPOSE,
                "PSB",
                crate::takehome::POLICE_DISCLOSES,
            ),
            StandardConsent::Cdc => ("cdc_figures", "CDC", "de-identified counts"),
            StandardConsent::Gps => (
                anxin_storage::gps::GPS_PURPOSE,
                "centre",
                "box position compared with the home zone; police see at home / away / unknown only",
            ),
        };
        ConsentRequest {
            purpose: purpose.into(),
            recipient: recipient.into(),
            scope: scope.into(),
            given_on: None,
            expires_on: expires_on.into(),
        }
    }
}
