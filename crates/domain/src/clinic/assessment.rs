//! The intake assessment: what the client has used and how (substances, main route, ever
//! injected, age at first use), earlier treatment, HIV and HCV status, and the ARV regimen and
//! other current medicines from a catalogue ([`Medicine`]) — the list the interaction warnings
//! read ([`super::interactions`]). An assessment is versioned: a new one is added and the older
//! ones are kept; the latest is the current one.
//!
//! [`Assessment::validate`] refuses by code at the field: an age at first use outside 5–80
//! (`assessment.age_out_of_range`) or above the client's age from the year of birth
//! (`assessment.age_above_client_age`), an ARV while the HIV status is negative
//! (`assessment.arv_hiv_negative`: ARV treatment follows a positive test; a status not yet
//! known is allowed, as the record may be catching up with a treatment started elsewhere), and no
//! substance at all (`assessment.no_substance`: an opioid-treatment intake always names one).
//! An unknown medicine is refused by [`Medicine::parse`] (`assessment.medicine_unknown`).

use crate::{Code, DomainError, Problem};

/// The youngest plausible age at first use.
pub const AGE_FIRST_USE_MIN: i32 = 5;
/// The oldest plausible age at first use.
pub const AGE_FIRST_USE_MAX: i32 = 80;

choices! {
    /// A substance the client has used.
    Substance {
        Heroin => "heroin",
        Opium => "opium",
        Methamphetamine => "methamphetamine",
        Ketamine => "ketamine",
        Cannabis => "cannabis",
        Alcohol => "alcohol",
        Benzodiazepines => "benzodiazepines",
        Other => "other",
    }
}

choices! {
    /// How the main substance is mostly taken.
    Route {
        Smoking => "smoking",
        Snorting => "snorting",
        Oral => "oral",
        Injecting => "injecting",
    }
}

choices! {
    /// Treatment for drug use before this one.
    PreviousTreatment {
        None => "none",
        VoluntaryDetox => "voluntary_detox",
        /// Compulsory isolated treatment (强制隔离戒毒).
        CompulsoryIsolated => "compulsory_isolated",
        /// Methadone maintenance at some time before.
        MethadoneBefore => "methadone_before",
        Other => "other",
    }
}

choices! {
    /// An HIV or HCV status as the client's record knows it.
    Status {
        Positive => "positive",
        Negative => "negative",
        Unknown => "unknown",
    }
}

/// What a medicine of the catalogue is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MedicineClass {
    /// Antiretroviral: part of an ARV regimen.
    Arv,
    /// Anything else a client may be taking (TB, epilepsy, infections, depression).
    Other,
}

/// The catalogue of current medicines an assessment may list: the common ARVs in China's free
/// programme and the medicines known to change methadone levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Medicine {
    Tenofovir,
    Lamivudine,
    Zidovudine,
    Efavirenz,
    Nevirapine,
    LopinavirRitonavir,
    Dolutegravir,
    Rifampicin,
    Rifabutin,
    Isoniazid,
    Phenytoin,
    Carbamazepine,
    Phenobarbital,
    Fluconazole,
    Fluvoxamine,
    Ciprofloxacin,
}

impl Medicine {
    /// The catalogue, ARVs first.
    pub const ALL: &'static [Medicine] = &[
        Medicine::Tenofovir,
        Medicine::Lamivudine,
        Medicine::Zidovudine,
        Medicine::Efavirenz,
        Medicine::Nevirapine,
        Medicine::LopinavirRitonavir,
        Medicine::Dolutegravir,
        Medicine::Rifampicin,
        Medicine::Rifabutin,
        Medicine::Isoniazid,
        Medicine::Phenytoin,
        Medicine::Carbamazepine,
        Medicine::Phenobarbital,
        Medicine::Fluconazole,
        Medicine::Fluvoxamine,
        Medicine::Ciprofloxacin,
    ];

    /// The stable code (database, API, form values, Fluent ids `medicine-<code>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Medicine::Tenofovir => "tenofovir",
            Medicine::Lamivudine => "lamivudine",
            Medicine::Zidovudine => "zidovudine",
            Medicine::Efavirenz => "efavirenz",
            Medicine::Nevirapine => "nevirapine",
            Medicine::LopinavirRitonavir => "lopinavir_ritonavir",
            Medicine::Dolutegravir => "dolutegravir",
            Medicine::Rifampicin => "rifampicin",
            Medicine::Rifabutin => "rifabutin",
            Medicine::Isoniazid => "isoniazid",
            Medicine::Phenytoin => "phenytoin",
            Medicine::Carbamazepine => "carbamazepine",
            Medicine::Phenobarbital => "phenobarbital",
            Medicine::Fluconazole => "fluconazole",
            Medicine::Fluvoxamine => "fluvoxamine",
            Medicine::Ciprofloxacin => "ciprofloxacin",
        }
    }

    /// What it is for.
    pub fn class(self) -> MedicineClass {
        match self {
            Medicine::Tenofovir
            | Medicine::Lamivudine
            | Medicine::Zidovudine
            | Medicine::Efavirenz
            | Medicine::Nevirapine
            | Medicine::LopinavirRitonavir
            | Medicine::Dolutegravir => MedicineClass::Arv,
            _ => MedicineClass::Other,
        }
    }

    /// The medicine with code `raw`, or `assessment.medicine_unknown` at `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == raw)
            .ok_or_else(|| {
                Problem::new(Code::AssessmentMedicineUnknown)
                    .field(field)
                    .arg("value", raw)
                    .into()
            })
    }
}

/// An intake assessment, as the clinician gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub substances: Vec<Substance>,
    pub main_route: Route,
    pub ever_injected: bool,
    pub age_first_use: Option<i32>,
    pub previous_treatment: PreviousTreatment,
    pub hiv: Status,
    pub hcv: Status,
    pub medicines: Vec<Medicine>,
}

impl Assessment {
    /// Checks the assessment for a client born in `birth_year` (if known), assessed in
    /// `this_year`; sorts and dedups the lists, and marks a client who mainly injects as having
    /// injected.
    pub fn validate(
        mut self,
        birth_year: Option<i32>,
        this_year: i32,
    ) -> Result<Assessment, DomainError> {
        self.substances.sort();
        self.substances.dedup();
        self.medicines.sort();
        self.medicines.dedup();
        if self.substances.is_empty() {
            return Err(Problem::new(Code::AssessmentNoSubstance)
                .field("substances")
                .into());
        }
        if let Some(age) = self.age_first_use {
            if !(AGE_FIRST_USE_MIN..=AGE_FIRST_USE_MAX).contains(&age) {
                return Err(Problem::new(Code::AssessmentAgeOutOfRange)
                    .field("age_first_use")
                    .arg("value", age)
                    .arg("min", AGE_FIRST_USE_MIN)
                    .arg("max", AGE_FIRST_USE_MAX)
                    .into());
            }
            if let Some(born) = birth_year {
                let client_age = this_year - born;
                if age > client_age {
                    return Err(Problem::new(Code::AssessmentAgeAboveClientAge)
                        .field("age_first_use")
                        .arg("value", age)
                        .arg("age", client_age)
                        .into());
                }
            }
        }
        if self.hiv == Status::Negative && !self.arv().is_empty() {
            return Err(Problem::new(Code::AssessmentArvHivNegative)
                .field("medicines")
                .into());
        }
        if self.main_route == Route::Injecting {
            self.ever_injected = true;
        }
        Ok(self)
    }

    /// The ARV regimen: the antiretrovirals among the medicines.
    pub fn arv(&self) -> Vec<Medicine> {
        self.medicines
            .iter()
            .copied()
            .filter(|m| m.class() == MedicineClass::Arv)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Assessment {
        Assessment {
            substances: vec![Substance::Heroin],
            main_route: Route::Smoking,
            ever_injected: false,
            age_first_use: Some(19),
            previous_treatment: PreviousTreatment::None,
            hiv: Status::Positive,
            hcv: Status::Unknown,
            medicines: vec![Medicine::Efavirenz, Medicine::Tenofovir],
        }
    }

    fn code(r: Result<Assessment, DomainError>) -> (&'static str, Option<String>) {
        match r {
            Err(DomainError::Refused(p)) => (p.code.as_str(), p.field),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_plausible_assessment_passes_and_injecting_means_ever_injected() {
        let a = Assessment {
            main_route: Route::Injecting,
            ..base()
        }
        .validate(Some(1990), 2026)
        .unwrap();
        assert!(a.ever_injected);
        assert_eq!(a.arv(), vec![Medicine::Tenofovir, Medicine::Efavirenz]);
    }

    #[test]
    fn ages_at_first_use_out_of_range_or_above_the_clients_age_are_refused() {
        for age in [2, 4, 81] {
            let r = Assessment {
                age_first_use: Some(age),
                ..base()
            }
            .validate(None, 2026);
            assert_eq!(
                code(r),
                ("assessment.age_out_of_range", Some("age_first_use".into()))
            );
        }
        let r = Assessment {
            age_first_use: Some(40),
            ..base()
        }
        .validate(Some(1996), 2026);
        assert_eq!(
            code(r),
            (
                "assessment.age_above_client_age",
                Some("age_first_use".into())
            )
        );
        assert!(Assessment {
            age_first_use: Some(30),
            ..base()
        }
        .validate(Some(1996), 2026)
        .is_ok());
    }

    #[test]
    fn arv_with_a_negative_hiv_status_is_refused_but_unknown_is_allowed() {
        let r = Assessment {
            hiv: Status::Negative,
            ..base()
        }
        .validate(None, 2026);
        assert_eq!(
            code(r),
            ("assessment.arv_hiv_negative", Some("medicines".into()))
        );
        assert!(Assessment {
            hiv: Status::Unknown,
            ..base()
        }
        .validate(None, 2026)
        .is_ok());
        assert!(Assessment {
            hiv: Status::Negative,
            medicines: vec![Medicine::Rifampicin],
            ..base()
        }
        .validate(None, 2026)
        .is_ok());
    }

    #[test]
    fn no_substance_and_unknown_codes_are_refused() {
        let r = Assessment {
            substances: vec![],
            ..base()
        }
        .validate(None, 2026);
        assert_eq!(
            code(r),
            ("assessment.no_substance", Some("substances".into()))
        );
        match Medicine::parse("aspirin", "medicines") {
            Err(DomainError::Refused(p)) => {
                assert_eq!(p.code, Code::AssessmentMedicineUnknown);
                assert_eq!(p.get("value"), Some("aspirin"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Substance::parse("glue", "substances").is_err());
        assert_eq!(
            Route::parse("injecting", "main_route").unwrap(),
            Route::Injecting
        );
        for m in Medicine::ALL {
            assert_eq!(Medicine::parse(m.as_str(), "m").unwrap(), *m);
        }
    }
}
