//! The outcome models, each with a **planted deprivation gradient**.
//!
//! Owns one model per indicator of `crate::indicators` (codes, kinds and denominators live
//! there), in the model form of `super::model`: a logit link for binary outcomes and a log link
//! for counts (drawn as Poisson with that rate for the 12-month period). The planted effect is
//! the odds ratio (binary) or rate ratio (counts) **per IMD decile step toward more deprived**,
//! the same at every age and for both sexes; over the nine steps from decile 10 to decile 1 it
//! compounds to ratio⁹. Outcomes also depend on age, sex and the latent health score (which is
//! what ties admissions and deaths to multimorbidity), so crude decile rates also carry the age
//! structure of each decile: `super::truth` computes the crude values the plant implies, and
//! the SII/RII of them, from this model and the generator's population.
//!
//! Targets are England values among the eligible, rounded: emergency admissions ≈ 0.10 and A&E
//! attendances ≈ 0.40 per person-year (HES, ECDS), deaths ≈ 0.9% a year (ONS), blood pressure
//! controlled ≈ 66% of people with hypertension (QOF), flu vaccination ≈ 80% of people 65+
//! (UKHSA), cervical ≈ 70%, bowel ≈ 68% and breast ≈ 66% screening coverage (NHS Digital), and
//! smoking ≈ 13% of people 15+ (QOF, APS).

use super::conditions::ConditionModel;
use super::model::{Effects, Eligibility, Link, Model, Population, Sexes, calibrate};
use crate::indicators::{self, Indicator, IndicatorKind};

/// The model of one outcome before calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeSpec {
    /// The indicator code (`crate::indicators`).
    pub indicator: &'static str,
    /// The planted effect: odds ratio (binary) or rate ratio (count) per IMD decile step
    /// toward more deprived.
    pub ratio_per_decile: f64,
    /// England value among the eligible: a proportion, or events per person-year.
    pub target: f64,
    /// Log odds (or log rate) per decade of age from 50.
    pub age_slope: f64,
    /// Per squared decade of age from 50.
    pub age_curvature: f64,
    /// Women against men.
    pub female: f64,
    /// Loading on the latent health score.
    pub latent: f64,
}

/// The outcome models.
pub const OUTCOME_SPECS: [OutcomeSpec; 9] = [
    OutcomeSpec {
        indicator: indicators::EMERGENCY_ADMISSIONS,
        ratio_per_decile: 1.08,
        target: 0.10,
        age_slope: 0.45,
        age_curvature: 0.06,
        female: 0.0,
        latent: 0.8,
    },
    OutcomeSpec {
        indicator: indicators::AE_ATTENDANCES,
        ratio_per_decile: 1.06,
        target: 0.40,
        age_slope: -0.05,
        age_curvature: 0.05,
        female: -0.05,
        latent: 0.5,
    },
    OutcomeSpec {
        indicator: indicators::DEATH_12M,
        ratio_per_decile: 1.07,
        target: 0.009,
        age_slope: 1.0,
        age_curvature: 0.0,
        female: -0.35,
        latent: 0.9,
    },
    OutcomeSpec {
        indicator: indicators::BP_CONTROLLED,
        ratio_per_decile: 0.96,
        target: 0.66,
        age_slope: 0.05,
        age_curvature: 0.0,
        female: 0.05,
        latent: -0.2,
    },
    OutcomeSpec {
        indicator: indicators::FLU_VACCINATED,
        ratio_per_decile: 0.93,
        target: 0.80,
        age_slope: 0.25,
        age_curvature: 0.0,
        female: 0.0,
        latent: 0.1,
    },
    OutcomeSpec {
        indicator: indicators::CERVICAL_SCREENED,
        ratio_per_decile: 0.94,
        target: 0.70,
        age_slope: 0.25,
        age_curvature: 0.0,
        female: 0.0,
        latent: -0.1,
    },
    OutcomeSpec {
        indicator: indicators::BOWEL_SCREENED,
        ratio_per_decile: 0.90,
        target: 0.68,
        age_slope: 0.1,
        age_curvature: 0.0,
        female: 0.15,
        latent: -0.1,
    },
    OutcomeSpec {
        indicator: indicators::BREAST_SCREENED,
        ratio_per_decile: 0.93,
        target: 0.66,
        age_slope: 0.0,
        age_curvature: 0.0,
        female: 0.0,
        latent: -0.1,
    },
    OutcomeSpec {
        indicator: indicators::CURRENT_SMOKER,
        ratio_per_decile: 1.17,
        target: 0.13,
        age_slope: -0.35,
        age_curvature: -0.1,
        female: -0.25,
        latent: 0.3,
    },
];

/// A calibrated outcome model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeModel {
    /// The indicator.
    pub indicator: &'static Indicator,
    /// The specification.
    pub spec: OutcomeSpec,
    /// The calibrated model.
    pub model: Model,
    /// Index (in `crate::conditions::CONDITIONS`) of the condition the denominator requires.
    pub condition: Option<usize>,
}

impl OutcomeModel {
    /// The link's name for the planted effect: "odds ratio" or "rate ratio".
    pub fn ratio_name(&self) -> &'static str {
        match self.indicator.kind {
            IndicatorKind::Binary => "odds ratio",
            IndicatorKind::Count => "rate ratio",
        }
    }
}

/// The model eligibility (age and sex) of an indicator; a required condition is handled by the
/// caller.
pub fn eligibility_of(indicator: &Indicator) -> Eligibility {
    let e = indicator.eligibility;
    Eligibility {
        min_age: e.min_age,
        max_age: e.max_age.unwrap_or(u8::MAX),
        sexes: if e.women_only {
            Sexes::Female
        } else {
            Sexes::Both
        },
    }
}

/// Calibrate every outcome model on the reference population, in the order of
/// [`OUTCOME_SPECS`]. `conditions` are the calibrated condition models (an outcome among people
/// with a condition is calibrated jointly with it).
///
/// # Errors
/// The indicator whose target cannot be reached, or that is not in `crate::indicators`.
pub fn outcome_models(
    reference: &Population,
    conditions: &[ConditionModel],
) -> Result<Vec<OutcomeModel>, String> {
    OUTCOME_SPECS
        .iter()
        .map(|spec| {
            let indicator = indicators::lookup(spec.indicator)
                .ok_or_else(|| format!("outcome {} is not an indicator", spec.indicator))?;
            let link = match indicator.kind {
                IndicatorKind::Binary => Link::Logit,
                IndicatorKind::Count => Link::Log,
            };
            let effects = Effects {
                age_slope: spec.age_slope,
                age_curvature: spec.age_curvature,
                female: spec.female,
                deprivation: spec.ratio_per_decile.ln(),
                latent: spec.latent,
            };
            let condition = match indicator.eligibility.condition {
                Some(code) => Some(
                    crate::conditions::CONDITIONS
                        .iter()
                        .position(|c| c.code == code)
                        .ok_or_else(|| {
                            format!("outcome {}: unknown condition {code}", spec.indicator)
                        })?,
                ),
                None => None,
            };
            let within = condition.and_then(|i| conditions.get(i)).map(|c| &c.model);
            let eligibility = eligibility_of(indicator);
            let intercept = calibrate(link, effects, eligibility, spec.target, reference, within)
                .ok_or_else(|| {
                format!(
                    "outcome {}: target {} cannot be reached",
                    spec.indicator, spec.target
                )
            })?;
            Ok(OutcomeModel {
                indicator,
                spec: *spec,
                model: Model {
                    link,
                    intercept,
                    effects,
                    eligibility,
                },
                condition,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_model_per_indicator() {
        for indicator in indicators::INDICATORS {
            let n = OUTCOME_SPECS
                .iter()
                .filter(|s| s.indicator == indicator.code)
                .count();
            assert_eq!(n, 1, "{}", indicator.code);
        }
    }

    #[test]
    fn planted_gradients_point_the_way_inequality_runs() {
        for spec in OUTCOME_SPECS {
            let worse_when_deprived = matches!(
                spec.indicator,
                indicators::EMERGENCY_ADMISSIONS
                    | indicators::AE_ATTENDANCES
                    | indicators::DEATH_12M
                    | indicators::CURRENT_SMOKER
            );
            assert_eq!(
                spec.ratio_per_decile > 1.0,
                worse_when_deprived,
                "{}",
                spec.indicator
            );
        }
    }
}
