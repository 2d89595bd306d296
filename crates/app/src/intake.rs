//! Intake: a new client's first record, written as one unit of work — the UIC, the identifying
//! fields (encrypted), sex and year of birth, the enrolment date, and the legal stage with the
//! term of its order. Nothing is half-written: a refusal of any field leaves no client behind.
//! The treatment agreement and the consents follow as steps of their own
//! ([`crate::agreements`], [`crate::consents`]), since each is signed by someone.

use anxin_domain::clinic::stage::{order_term, Stage};
use anxin_domain::{validate, Code, Permission, Problem};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::identity::{check_birth_year, IdentityRequest};
use crate::treatment::{optional_date, past_or_today};
use crate::{Actor, App, Client, Result};

/// A new client as the intake form or a program gives it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeRequest {
    /// The pseudonymous unique identifier code, e.g. `YX-0001-AB`.
    pub uic: String,
    /// YYYY-MM-DD, today or earlier; defaults to today.
    #[serde(default)]
    pub enrolled_on: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Resident identity card number: 17 digits and a digit or X.
    #[serde(default)]
    pub national_id: Option<String>,
    /// E.164 or a mainland mobile number; where the daily box code is sent.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    /// male, female or unknown (empty: unknown).
    #[serde(default)]
    pub sex: Option<String>,
    #[serde(default)]
    pub birth_year: Option<i32>,
    /// voluntary (default), community_treatment, compulsory_isolated,
    /// community_rehabilitation; from the enrolment date.
    #[serde(default)]
    pub stage: Option<String>,
    /// YYYY-MM-DD: first day of the community-treatment or rehabilitation order (default:
    /// the enrolment date).
    #[serde(default)]
    pub order_start: Option<String>,
    /// YYYY-MM-DD: last day of the order (default and longest: three years after its start).
    #[serde(default)]
    pub order_end: Option<String>,
}

/// Enrols a client with everything the intake form holds, in one unit of work; audited
/// (`client.create`, `client.identity.update` naming the fields set, `client.demographics.update`
/// and, for a stage other than voluntary, `client.stage` with the order's term).
pub async fn enrol(app: &App, me: &Actor, req: &IntakeRequest) -> Result<Client> {
    me.require(Permission::ClientWrite)?;
    let today = app.today();
    let uic = req.uic.trim().to_uppercase();
    if validate::uic(&uic).is_err() {
        return Err(Problem::new(Code::UicMalformed)
            .field("uic")
            .arg("uic", req.uic.trim())
            .into());
    }
    let enrolled_on = past_or_today("enrolled_on", req.enrolled_on.as_deref(), today)?;
    let identity = crate::identity::validate(&IdentityRequest {
        name: req.name.clone(),
        national_id: req.national_id.clone(),
        phone: req.phone.clone(),
        address: req.address.clone(),
    })?;
    let sex = anxin_domain::indicators::Sex::parse("sex", req.sex.as_deref())?;
    if let Some(y) = req.birth_year {
        check_birth_year(y, today)?;
    }
    let stage: Stage = match req.stage.as_deref().map(str::trim) {
        None | Some("") => Stage::Voluntary,
        Some(s) => s.parse()?,
    };
    let order = order_term(
        stage,
        enrolled_on,
        optional_date("order_start", req.order_start.as_deref())?,
        optional_date("order_end", req.order_end.as_deref())?,
        today,
    )?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let c = work.create_client(&uic, enrolled_on).await?;
    work.set_identity(c.id, &identity, &app.vault).await?;
    work.set_demographics(c.id, sex, req.birth_year).await?;
    if stage != Stage::Voluntary {
        work.set_stage(&c, stage, enrolled_on, order).await?;
    }
    let c = work.client_for_write(c.id).await?;
    work.commit().await?;
    Ok(c)
}

/// What the wizard's later steps show of a new client: the agreements and consents signed so
/// far.
#[derive(Debug, Clone)]
pub struct Papers {
    pub client: Client,
    pub agreements: Vec<crate::records::Agreement>,
    pub consents: Vec<crate::records::Consent>,
}

/// Opens a client's record (audited) for the wizard's agreement and consent steps.
pub async fn papers(app: &App, me: &Actor, client_id: i64) -> Result<Papers> {
    me.require(Permission::ConsentManage)?;
    let client = crate::record::open(app, me, client_id, "intake").await?;
    Ok(Papers {
        agreements: app.store.agreements(client.id).await?,
        consents: app.store.consents(client.id).await?,
        client,
    })
}
