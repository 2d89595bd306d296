//! Urine tests: a result (tested with a result per substance, refused, or not provided),
//! whether it was observed, and why it was taken. The negative streak feeds take-home
//! eligibility.

use std::collections::BTreeMap;

use anxin_domain::clinic::urine::{Outcome, Substance};
use anxin_domain::{DomainError, Permission};
use anxin_storage::clinic::NewUrineTest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Actor, App, Result};

/// A urine test result.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrineRequest {
    #[serde(default)]
    pub collected_on: Option<String>,
    pub observed: bool,
    /// tested, refused or not_provided
    pub outcome: String,
    /// substance → "positive" | "negative" (when tested)
    #[serde(default)]
    pub results: BTreeMap<String, String>,
    /// random, scheduled or clinical
    #[serde(default)]
    pub reason: Option<String>,
}

/// A urine test just recorded.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UrineRecorded {
    pub id: i64,
    /// No unprescribed substance found.
    pub negative: bool,
}

/// Turns a urine request into a domain outcome, naming the bad field.
pub fn outcome(req: &UrineRequest) -> std::result::Result<Outcome, DomainError> {
    let outcome = match req.outcome.as_str() {
        "tested" => {
            let mut r = BTreeMap::new();
            for (name, value) in &req.results {
                let field = format!("results.{name}");
                let s = Substance::parse(name, &field)?;
                let positive = match value.as_str() {
                    "positive" => true,
                    "negative" => false,
                    other => {
                        return Err(DomainError::invalid(
                            field,
                            format!("`{other}`: expected positive or negative"),
                        ))
                    }
                };
                r.insert(s, positive);
            }
            Outcome::Tested(r)
        }
        "refused" => Outcome::Refused,
        "not_provided" => Outcome::NotProvided,
        other => {
            return Err(DomainError::invalid(
                "outcome",
                format!("`{other}`: expected tested, refused or not_provided"),
            ))
        }
    };
    outcome.validate()?;
    Ok(outcome)
}

/// Records a urine test of client `client_id`, collected today or on a past day.
pub async fn add(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &UrineRequest,
) -> Result<UrineRecorded> {
    me.require(Permission::UrineRecord)?;
    let outcome = outcome(req)?;
    let collected =
        crate::treatment::past_or_today("collected_on", req.collected_on.as_deref(), app.today())?;
    let reason = req.reason.clone().unwrap_or_else(|| "random".into());
    if !matches!(reason.as_str(), "random" | "scheduled" | "clinical") {
        return Err(
            DomainError::invalid("reason", "expected random, scheduled or clinical").into(),
        );
    }
    let t = app
        .store
        .add_urine_test(
            &me.audit(),
            &NewUrineTest {
                client_id,
                collected_on: collected,
                observed: req.observed,
                outcome,
                reason,
            },
            app.now(),
        )
        .await?;
    Ok(UrineRecorded {
        id: t.id,
        negative: t.outcome.negative(),
    })
}
