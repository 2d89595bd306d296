//! The four legal stages of treatment (seed 003), least to most coercive, and client status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Treatment stage under China's 2008 Narcotics Control Law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Voluntary treatment, resting on a treatment agreement.
    Voluntary,
    /// Community-based treatment (3 years; prescribed urine testing).
    CommunityTreatment,
    /// Compulsory isolated treatment (CIT): the client is away from the centre.
    CompulsoryIsolated,
    /// Community-based rehabilitation (3 years after CIT).
    CommunityRehabilitation,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Voluntary,
        Stage::CommunityTreatment,
        Stage::CompulsoryIsolated,
        Stage::CommunityRehabilitation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Voluntary => "voluntary",
            Stage::CommunityTreatment => "community_treatment",
            Stage::CompulsoryIsolated => "compulsory_isolated",
            Stage::CommunityRehabilitation => "community_rehabilitation",
        }
    }

    /// Whether the client is expected at the dispensing window in this stage.
    pub fn doses_at_centre(self) -> bool {
        self != Stage::CompulsoryIsolated
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        Stage::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "stage",
                    format!(
                        "unknown stage `{s}`; expected voluntary, community_treatment, \
                         compulsory_isolated or community_rehabilitation"
                    ),
                )
            })
    }
}
