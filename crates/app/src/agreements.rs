//! The treatment agreement: each signed version of what the client and the centre agree to
//! (method, duration, rules), signed by the client or a guardian. Eligibility for take-home
//! doses requires one; the API and the record page record it through [`add`].

use anxin_domain::{Code, Permission, Problem};
use anxin_storage::clinic::Agreement;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::treatment::past_or_today;
use crate::{Actor, App, Result};

/// Shortest and longest agreement, in months.
pub const DURATION_MONTHS: (i64, i64) = (1, 120);

/// A treatment agreement version.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementRequest {
    pub method: String,
    pub duration_months: i64,
    pub rules: String,
    /// client or guardian
    pub signed_by: String,
    #[serde(default)]
    pub guardian_name: Option<String>,
    #[serde(default)]
    pub signed_on: Option<String>,
}

/// A treatment agreement version.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AgreementView {
    pub id: i64,
    pub client_id: i64,
    pub version: i64,
    pub method: String,
    pub duration_months: i64,
    pub rules: String,
    /// client or guardian
    pub signed_by: String,
    pub guardian_name: Option<String>,
    pub prescriber_id: i64,
    pub signed_on: NaiveDate,
}

impl From<&Agreement> for AgreementView {
    fn from(a: &Agreement) -> Self {
        AgreementView {
            id: a.id,
            client_id: a.client_id,
            version: a.version,
            method: a.method.clone(),
            duration_months: a.duration_months,
            rules: a.rules.clone(),
            signed_by: a.signed_by.clone(),
            guardian_name: a.guardian_name.clone(),
            prescriber_id: a.prescriber_id,
            signed_on: a.signed_on,
        }
    }
}

/// A required text field, trimmed, refused by `code` when empty and when too long.
fn required(field: &str, raw: &str, code: Code) -> Result<String> {
    if raw.trim().is_empty() {
        return Err(Problem::new(code).field(field).into());
    }
    crate::identity::bounded_to(field, raw, crate::identity::MAX_TEXT_CHARS)
}

/// Records the next signed version of a client's treatment agreement.
pub async fn add(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &AgreementRequest,
) -> Result<AgreementView> {
    me.require(Permission::ConsentManage)?;
    let method = required("method", &req.method, Code::AgreementMethodRequired)?;
    let (min, max) = DURATION_MONTHS;
    if !(min..=max).contains(&req.duration_months) {
        return Err(Problem::new(Code::AgreementDurationOutOfRange)
            .field("duration_months")
            .arg("min", min.to_string())
            .arg("max", max.to_string())
            .into());
    }
    let rules = required("rules", &req.rules, Code::AgreementRulesRequired)?;
    let guardian = req
        .guardian_name
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty());
    match (req.signed_by.trim(), guardian) {
        ("client", _) => {}
        ("guardian", Some(g)) => {
            crate::identity::bounded("guardian_name", g)?;
        }
        ("guardian", None) => {
            return Err(Problem::new(Code::AgreementGuardianRequired)
                .field("guardian_name")
                .into())
        }
        (other, _) => {
            return Err(Problem::new(Code::AgreementSignedByInvalid)
                .field("signed_by")
                .arg("value", other)
                .into())
        }
    }
    let signed_on = past_or_today("signed_on", req.signed_on.as_deref(), app.today())?;
    let guardian = guardian.filter(|_| req.signed_by.trim() == "guardian");
    let a = app
        .store
        .add_agreement(
            &me.audit(),
            client_id,
            &method,
            req.duration_months,
            &rules,
            req.signed_by.trim(),
            guardian,
            signed_on,
            app.now(),
        )
        .await?;
    Ok(AgreementView::from(&a))
}

/// Every version of a client's agreement (the record read is audited).
pub async fn list(app: &App, me: &Actor, client_id: i64) -> Result<Vec<AgreementView>> {
    me.require(Permission::ClinicalRead)?;
    let c = app
        .store
        .read_client(&me.audit(), client_id, "agreements", app.now())
        .await?;
    let list = app.store.agreements(c.id).await?;
    Ok(list.iter().map(AgreementView::from).collect())
}
