//! The intake assessment: substance-use history (substances, main route, ever injected, age at
//! first use), previous treatment, HIV and HCV status, and the ARV regimen and other current
//! medicines from the domain's catalogue (`anxin_domain::clinic::assessment`). Prescribers and
//! counsellors record it (`Permission::AssessmentRecord`); the clinical readers read it (the
//! client read audited as `assessments`). Each recording adds a version; the newest is current,
//! and its medicines that change methadone levels are the interaction warnings
//! (`anxin_domain::clinic::interactions`) the order form shows.

use anxin_domain::clinic::assessment::{
    Assessment, Medicine, MedicineClass, PreviousTreatment, Route, Status, Substance,
};
use anxin_domain::clinic::interactions;
use anxin_domain::{Code, Permission, Problem};
use anxin_storage::assessments::StoredAssessment;
use chrono::Datelike;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Actor, App, Result};

/// An assessment to record. Choices are the domain's codes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentRequest {
    /// heroin, opium, methamphetamine, ketamine, cannabis, alcohol, benzodiazepines, other
    pub substances: Vec<String>,
    /// smoking, snorting, oral, injecting
    pub main_route: String,
    #[serde(default)]
    pub ever_injected: bool,
    /// Years, 5 to 80, and not above the client's age.
    #[serde(default)]
    pub age_first_use: Option<i32>,
    /// none, voluntary_detox, compulsory_isolated, methadone_before, other
    pub previous_treatment: String,
    /// positive, negative, unknown
    pub hiv: String,
    /// positive, negative, unknown
    pub hcv: String,
    /// ARVs and other current medicines, by catalogue code (e.g. efavirenz, rifampicin).
    #[serde(default)]
    pub medicines: Vec<String>,
}

/// A current medicine that changes methadone levels.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InteractionView {
    pub medicine: String,
    /// lowers (withdrawal risk; the dose may need raising) or raises (sedation, overdose risk)
    pub effect: String,
    pub note: String,
}

/// An assessment as recorded.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AssessmentView {
    pub id: i64,
    /// From 1; the highest is the current one.
    pub version: i64,
    pub substances: Vec<String>,
    pub main_route: String,
    pub ever_injected: bool,
    pub age_first_use: Option<i32>,
    pub previous_treatment: String,
    pub hiv: String,
    pub hcv: String,
    /// The ARVs among the medicines.
    pub arv: Vec<String>,
    /// Every current medicine, ARVs included.
    pub medicines: Vec<String>,
    /// Those of the medicines that change methadone levels.
    pub interactions: Vec<InteractionView>,
    pub recorded_by: Option<String>,
    pub recorded_at: String,
}

/// The interactions among an assessment's medicines.
pub fn interactions_of(a: &Assessment) -> Vec<InteractionView> {
    interactions::among(&a.medicines)
        .into_iter()
        .map(|i| InteractionView {
            medicine: i.medicine.as_str().to_owned(),
            effect: i.effect.as_str().to_owned(),
            note: i.note.to_owned(),
        })
        .collect()
}

impl From<&StoredAssessment> for AssessmentView {
    fn from(s: &StoredAssessment) -> Self {
        let a = &s.assessment;
        AssessmentView {
            id: s.id,
            version: s.version,
            substances: a.substances.iter().map(|x| x.as_str().to_owned()).collect(),
            main_route: a.main_route.as_str().to_owned(),
            ever_injected: a.ever_injected,
            age_first_use: a.age_first_use,
            previous_treatment: a.previous_treatment.as_str().to_owned(),
            hiv: a.hiv.as_str().to_owned(),
            hcv: a.hcv.as_str().to_owned(),
            arv: a
                .medicines
                .iter()
                .filter(|m| m.class() == MedicineClass::Arv)
                .map(|m| m.as_str().to_owned())
                .collect(),
            medicines: a.medicines.iter().map(|m| m.as_str().to_owned()).collect(),
            interactions: interactions_of(a),
            recorded_by: s.recorded_by.clone(),
            recorded_at: s.recorded_at.to_rfc3339(),
        }
    }
}

/// Turns a request into a domain assessment, refusing at the field.
fn parse(req: &AssessmentRequest) -> Result<Assessment> {
    let substances = req
        .substances
        .iter()
        .map(|s| Substance::parse(s, "substances"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let required = |field: &str, raw: &str| -> Result<()> {
        if raw.trim().is_empty() {
            return Err(Problem::new(Code::FieldRequired).field(field).into());
        }
        Ok(())
    };
    required("main_route", &req.main_route)?;
    required("previous_treatment", &req.previous_treatment)?;
    required("hiv", &req.hiv)?;
    required("hcv", &req.hcv)?;
    Ok(Assessment {
        substances,
        main_route: Route::parse(&req.main_route, "main_route")?,
        ever_injected: req.ever_injected,
        age_first_use: req.age_first_use,
        previous_treatment: PreviousTreatment::parse(
            &req.previous_treatment,
            "previous_treatment",
        )?,
        hiv: Status::parse(&req.hiv, "hiv")?,
        hcv: Status::parse(&req.hcv, "hcv")?,
        medicines: req
            .medicines
            .iter()
            .map(|m| Medicine::parse(m, "medicines"))
            .collect::<std::result::Result<Vec<_>, _>>()?,
    })
}

/// Records a new version of client `client_id`'s assessment (the older ones stay).
pub async fn record(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &AssessmentRequest,
) -> Result<AssessmentView> {
    me.require(Permission::AssessmentRecord)?;
    let a = parse(req)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let c = work.client_for_write(client_id).await?;
    let (_, birth_year) = app.store.demographics(c.id).await?;
    let a = a.validate(birth_year, app.today().year())?;
    let stored = work.add_assessment(&c, &a).await?;
    work.commit().await?;
    Ok(AssessmentView::from(&stored))
}

/// Client `id`'s assessments, the current one first (the client read is audited).
pub async fn list(app: &App, me: &Actor, id: i64) -> Result<Vec<AssessmentView>> {
    me.require(Permission::ClinicalRead)?;
    let c = crate::record::open(app, me, id, "assessments").await?;
    Ok(app
        .store
        .assessments(c.id)
        .await?
        .iter()
        .map(AssessmentView::from)
        .collect())
}
