//! Methadone stock: a controlled drug, accounted for to the millilitre. Receipts add, doses
//! deduct, and the daily close-out compares the measured volume with the expected one; an
//! unexplained variance above the threshold needs a reason.

use crate::DomainError;

/// Settings of stock accounting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StockPolicy {
    /// The concentration of the centre's oral solution (mg/mL); every receipt must match it.
    pub concentration_mg_per_ml: f64,
    /// A close-out variance larger than this (mL, either way) needs a written reason.
    pub variance_threshold_ml: f64,
}

impl Default for StockPolicy {
    fn default() -> Self {
        StockPolicy {
            concentration_mg_per_ml: 1.0,
            variance_threshold_ml: 5.0,
        }
    }
}

/// A delivery of stock.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub bottles: u32,
    pub ml_per_bottle: f64,
    pub concentration_mg_per_ml: f64,
    pub lot: String,
}

impl Receipt {
    /// Total volume received.
    pub fn ml(&self) -> f64 {
        f64::from(self.bottles) * self.ml_per_bottle
    }

    /// Checks a receipt against the policy.
    pub fn validate(&self, policy: &StockPolicy) -> Result<(), DomainError> {
        if self.bottles == 0 || self.bottles > 10_000 {
            return Err(DomainError::invalid(
                "bottles",
                "must be between 1 and 10000",
            ));
        }
        if !(self.ml_per_bottle > 0.0 && self.ml_per_bottle <= 10_000.0) {
            return Err(DomainError::invalid(
                "ml_per_bottle",
                "must be more than 0 and at most 10000",
            ));
        }
        if (self.concentration_mg_per_ml - policy.concentration_mg_per_ml).abs() > 1e-9 {
            return Err(DomainError::invalid(
                "concentration_mg_per_ml",
                format!(
                    "this centre dispenses {} mg/mL solution; {} mg/mL cannot be added to its stock",
                    policy.concentration_mg_per_ml, self.concentration_mg_per_ml
                ),
            ));
        }
        if self.lot.trim().is_empty() {
            return Err(DomainError::invalid("lot", "the lot number is required"));
        }
        Ok(())
    }
}

/// The result of a daily close-out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CloseOut {
    pub expected_ml: f64,
    pub measured_ml: f64,
    /// measured − expected: negative means methadone is missing.
    pub variance_ml: f64,
    /// Whether the variance exceeds the threshold (and so carries a reason).
    pub flagged: bool,
}

/// Expected volume: what was there at the last close-out, plus receipts, minus doses given.
pub fn expected_ml(opening_ml: f64, received_ml: f64, dosed_mg: f64, policy: &StockPolicy) -> f64 {
    opening_ml + received_ml - dosed_mg / policy.concentration_mg_per_ml
}

/// The shortest reason for a variance above the threshold, in characters: "量杯误差" passes.
pub const MIN_REASON_CHARS: usize = 4;

/// Closes the day: a variance above the threshold needs a reason of at least
/// [`MIN_REASON_CHARS`] characters.
pub fn close_out(
    expected_ml: f64,
    measured_ml: f64,
    reason: &str,
    policy: &StockPolicy,
) -> Result<CloseOut, DomainError> {
    if !(measured_ml >= 0.0 && measured_ml.is_finite()) {
        return Err(DomainError::invalid(
            "measured_ml",
            "must be a volume of 0 or more",
        ));
    }
    let variance_ml = measured_ml - expected_ml;
    let flagged = variance_ml.abs() > policy.variance_threshold_ml;
    if flagged && reason.trim().chars().count() < MIN_REASON_CHARS {
        return Err(crate::Problem::new(crate::Code::StockVarianceUnexplained)
            .field("reason")
            .arg("variance", format!("{variance_ml:+.1}"))
            .arg("threshold", policy.variance_threshold_ml)
            .arg("min", MIN_REASON_CHARS)
            .into());
    }
    Ok(CloseOut {
        expected_ml,
        measured_ml,
        variance_ml,
        flagged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_volume_follows_receipts_and_doses() {
        let p = StockPolicy::default();
        assert_eq!(expected_ml(1000.0, 5000.0, 2400.0, &p), 3600.0);
        let p5 = StockPolicy {
            concentration_mg_per_ml: 5.0,
            ..p
        };
        assert_eq!(expected_ml(1000.0, 0.0, 500.0, &p5), 900.0);
    }

    #[test]
    fn small_variance_passes_large_needs_reason() {
        let p = StockPolicy::default();
        let ok = close_out(3600.0, 3597.0, "", &p).unwrap();
        assert_eq!(ok.variance_ml, -3.0);
        assert!(!ok.flagged);
        let e = close_out(3600.0, 3550.0, "漏", &p).unwrap_err();
        match e {
            DomainError::Refused(p) => {
                assert_eq!(p.code, crate::Code::StockVarianceUnexplained);
                assert_eq!(p.get("variance"), Some("-50.0"));
            }
            other => panic!("{other:?}"),
        }
        // An ordinary short Chinese reason is enough.
        let explained = close_out(3600.0, 3550.0, "量杯破损", &p).unwrap();
        assert!(explained.flagged);
        assert!(close_out(3600.0, -1.0, "", &p).is_err());
    }

    #[test]
    fn receipts_must_match_the_centres_solution() {
        let p = StockPolicy::default();
        let r = Receipt {
            bottles: 10,
            ml_per_bottle: 500.0,
            concentration_mg_per_ml: 1.0,
            lot: "YX2611-07".into(),
        };
        assert_eq!(r.ml(), 5000.0);
        assert!(r.validate(&p).is_ok());
        let wrong = Receipt {
            concentration_mg_per_ml: 10.0,
            ..r.clone()
        };
        assert!(wrong
            .validate(&p)
            .unwrap_err()
            .to_string()
            .starts_with("concentration_mg_per_ml"));
        let no_lot = Receipt {
            lot: " ".into(),
            ..r
        };
        assert!(no_lot.validate(&p).is_err());
    }
}
