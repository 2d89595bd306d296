//! Medicines that change methadone levels, as the client page warns of them beside the order
//! form when the current assessment lists one. Lowering medicines (enzyme inducers: efavirenz,
//! nevirapine, lopinavir/ritonavir, rifampicin, rifabutin, phenytoin, carbamazepine,
//! phenobarbital) bring on withdrawal days to weeks after they start — a common reason clients on
//! ARV or TB treatment drop out — and the dose may need raising (a rise beyond the induction
//! limits still waits for a second prescriber); stopping them later raises the level again.
//! Raising medicines (fluconazole, fluvoxamine, ciprofloxacin) risk sedation and overdose.
//! The sources are in `docs/clinical-limits.md` ("Medicines that change methadone levels").

use super::assessment::Medicine;

/// What a medicine does to methadone levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Lowers them: withdrawal risk; the dose may need raising.
    Lowers,
    /// Raises them: sedation and overdose risk.
    Raises,
}

impl Effect {
    /// The stable name (`lowers`, `raises`).
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Lowers => "lowers",
            Effect::Raises => "raises",
        }
    }
}

/// One interaction of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interaction {
    pub medicine: Medicine,
    pub effect: Effect,
    /// A short note for the clinician (English; the pages say it through Fluent).
    pub note: &'static str,
}

/// The catalogue of medicines that change methadone levels.
pub const CATALOGUE: &[Interaction] = &[
    Interaction {
        medicine: Medicine::Efavirenz,
        effect: Effect::Lowers,
        note: "NNRTI, induces CYP3A4/2B6: withdrawal within 1–2 weeks of starting",
    },
    Interaction {
        medicine: Medicine::Nevirapine,
        effect: Effect::Lowers,
        note: "NNRTI, induces CYP3A4: withdrawal within 1–2 weeks of starting",
    },
    Interaction {
        medicine: Medicine::LopinavirRitonavir,
        effect: Effect::Lowers,
        note: "boosted protease inhibitor: lower methadone levels, withdrawal possible",
    },
    Interaction {
        medicine: Medicine::Rifampicin,
        effect: Effect::Lowers,
        note: "TB treatment, strong inducer: marked withdrawal within days",
    },
    Interaction {
        medicine: Medicine::Rifabutin,
        effect: Effect::Lowers,
        note: "TB treatment, weaker inducer than rifampicin",
    },
    Interaction {
        medicine: Medicine::Phenytoin,
        effect: Effect::Lowers,
        note: "anticonvulsant, enzyme inducer",
    },
    Interaction {
        medicine: Medicine::Carbamazepine,
        effect: Effect::Lowers,
        note: "anticonvulsant, enzyme inducer",
    },
    Interaction {
        medicine: Medicine::Phenobarbital,
        effect: Effect::Lowers,
        note: "barbiturate, enzyme inducer; also sedating",
    },
    Interaction {
        medicine: Medicine::Fluconazole,
        effect: Effect::Raises,
        note: "antifungal, inhibits CYP3A4/2C19",
    },
    Interaction {
        medicine: Medicine::Fluvoxamine,
        effect: Effect::Raises,
        note: "antidepressant, inhibits CYP1A2/2C19/3A4",
    },
    Interaction {
        medicine: Medicine::Ciprofloxacin,
        effect: Effect::Raises,
        note: "antibiotic, inhibits CYP1A2/3A4",
    },
];

/// The interaction of medicine `m`, if it changes methadone levels.
pub fn of(m: Medicine) -> Option<&'static Interaction> {
    CATALOGUE.iter().find(|i| i.medicine == m)
}

/// The interactions among `medicines`, in the order given.
pub fn among(medicines: &[Medicine]) -> Vec<&'static Interaction> {
    medicines.iter().filter_map(|m| of(*m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arv_and_tb_inducers_lower_and_the_inhibitors_raise() {
        for m in [
            Medicine::Efavirenz,
            Medicine::Nevirapine,
            Medicine::LopinavirRitonavir,
            Medicine::Rifampicin,
            Medicine::Rifabutin,
            Medicine::Phenytoin,
            Medicine::Carbamazepine,
            Medicine::Phenobarbital,
        ] {
            assert_eq!(of(m).map(|i| i.effect), Some(Effect::Lowers), "{m:?}");
        }
        for m in [
            Medicine::Fluconazole,
            Medicine::Fluvoxamine,
            Medicine::Ciprofloxacin,
        ] {
            assert_eq!(of(m).map(|i| i.effect), Some(Effect::Raises), "{m:?}");
        }
        assert!(of(Medicine::Tenofovir).is_none());
        assert!(of(Medicine::Dolutegravir).is_none());
        assert_eq!(
            among(&[Medicine::Tenofovir, Medicine::Efavirenz])
                .iter()
                .map(|i| i.medicine)
                .collect::<Vec<_>>(),
            vec![Medicine::Efavirenz]
        );
    }
}
