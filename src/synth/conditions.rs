//! Which conditions patients have, and since when.
//!
//! Owns the prevalence models of every code in the condition vocabulary
//! (`crate::conditions::CONDITIONS`: the Cambridge Multimorbidity Score's 20 conditions and the
//! other electronic Frailty Index deficits), in the model form of `super::model`. Prevalence
//! rises with age (slope per decade), and with deprivation (a log odds ratio per IMD decile step
//! toward more deprived, from 1.00 for cancer to 1.15 for COPD), and every condition loads on
//! the patient's latent health score, so conditions cluster as multimorbidity does. Targets are
//! England prevalences among the eligible ages, rounded from QOF 2022/23 registers where one
//! exists (hypertension, diabetes, asthma, CHD, AF, COPD, stroke, heart failure, CKD, dementia,
//! epilepsy, SMI, rheumatoid arthritis), else from the CMS and eFI development papers' cohorts.
//!
//! A condition's `diagnosed_on` date is uniform between the patient reaching the condition's
//! youngest age and the extract date (within the last five years for cancer, which the CMS
//! counts only when diagnosed in the last five years).

use super::model::{Effects, Eligibility, Link, Model, Population, calibrate};

/// The model of one condition before calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConditionSpec {
    /// Code in `crate::conditions`.
    pub code: &'static str,
    /// Youngest age at which it is drawn.
    pub min_age: u8,
    /// Prevalence among people of `min_age` and over, in England's population.
    pub prevalence: f64,
    /// Slopes: age per decade, age², female, deprivation per decile step, latent loading.
    pub effects: Effects,
    /// Diagnosed within this many years of the extract date (else at any age from `min_age`).
    pub within_years: Option<u8>,
}

const fn spec(
    code: &'static str,
    min_age: u8,
    prevalence: f64,
    [age_slope, age_curvature, female, deprivation, latent]: [f64; 5],
) -> ConditionSpec {
    ConditionSpec {
        code,
        min_age,
        prevalence,
        effects: Effects {
            age_slope,
            age_curvature,
            female,
            deprivation,
            latent,
        },
        within_years: None,
    }
}

/// The condition models. Columns of the slopes: age per decade, age², female, deprivation per
/// decile step (log odds), latent loading.
pub const CONDITION_SPECS: &[ConditionSpec] = &[
    // The Cambridge Multimorbidity Score's 20 conditions.
    spec("alcohol_problems", 16, 0.020, [0.0, -0.15, -0.9, 0.09, 0.6]),
    spec(
        "anxiety_depression",
        16,
        0.18,
        [0.0, -0.08, 0.55, 0.05, 0.5],
    ),
    spec(
        "atrial_fibrillation",
        40,
        0.035,
        [0.95, 0.0, -0.4, 0.01, 0.6],
    ),
    ConditionSpec {
        within_years: Some(5),
        ..spec("cancer", 30, 0.028, [0.6, -0.05, 0.1, 0.0, 0.5])
    },
    spec(
        "chronic_kidney_disease",
        18,
        0.05,
        [1.0, 0.0, 0.3, 0.04, 0.7],
    ),
    spec(
        "connective_tissue_disorder",
        18,
        0.02,
        [0.45, 0.0, 0.8, 0.03, 0.5],
    ),
    spec("copd", 35, 0.033, [0.7, -0.05, -0.1, 0.14, 0.7]),
    spec(
        "coronary_heart_disease",
        35,
        0.05,
        [0.85, 0.0, -0.8, 0.07, 0.7],
    ),
    spec("dementia", 60, 0.035, [1.6, 0.0, 0.15, 0.03, 0.8]),
    spec("diabetes", 17, 0.085, [0.45, -0.06, -0.3, 0.08, 0.6]),
    spec("epilepsy", 0, 0.008, [0.05, 0.0, -0.05, 0.07, 0.4]),
    spec("hearing_loss", 18, 0.08, [0.8, 0.0, -0.3, 0.02, 0.4]),
    spec("heart_failure", 40, 0.02, [1.1, 0.0, -0.4, 0.07, 0.8]),
    spec(
        "irritable_bowel_syndrome",
        16,
        0.06,
        [-0.05, -0.05, 0.8, 0.02, 0.3],
    ),
    spec(
        "schizophrenia_bipolar",
        18,
        0.011,
        [0.0, -0.1, -0.1, 0.12, 0.5],
    ),
    spec("stroke_tia", 35, 0.03, [0.9, 0.0, -0.25, 0.06, 0.7]),
    spec("asthma", 5, 0.075, [-0.05, 0.0, 0.2, 0.04, 0.4]),
    spec("hypertension", 18, 0.17, [0.85, -0.08, -0.2, 0.04, 0.5]),
    spec("constipation", 0, 0.04, [0.5, 0.05, 0.5, 0.03, 0.7]),
    spec("painful_condition", 16, 0.12, [0.45, 0.0, 0.4, 0.06, 0.7]),
    // The other electronic Frailty Index deficits.
    spec("activity_limitation", 40, 0.04, [1.2, 0.0, 0.2, 0.05, 0.9]),
    spec("anaemia", 16, 0.05, [0.6, 0.0, 0.6, 0.04, 0.7]),
    spec("arthritis", 40, 0.15, [0.8, 0.0, 0.4, 0.03, 0.5]),
    spec("dizziness", 40, 0.04, [0.6, 0.0, 0.3, 0.03, 0.6]),
    spec("dyspnoea", 40, 0.05, [0.7, 0.0, 0.1, 0.06, 0.8]),
    spec("falls", 65, 0.08, [1.0, 0.0, 0.3, 0.03, 0.9]),
    spec("foot_problems", 40, 0.06, [0.6, 0.0, 0.2, 0.03, 0.6]),
    spec("fragility_fracture", 50, 0.04, [1.0, 0.0, 0.8, 0.02, 0.7]),
    spec("heart_valve_disease", 50, 0.02, [1.0, 0.0, 0.0, 0.02, 0.6]),
    spec("housebound", 65, 0.05, [1.3, 0.0, 0.3, 0.06, 1.0]),
    spec("hypotension_syncope", 50, 0.03, [0.8, 0.0, 0.1, 0.02, 0.7]),
    spec("memory_problems", 60, 0.06, [1.2, 0.0, 0.1, 0.04, 0.8]),
    spec("mobility_problems", 60, 0.08, [1.2, 0.0, 0.3, 0.05, 1.0]),
    spec("osteoporosis", 50, 0.05, [1.0, 0.0, 1.6, 0.02, 0.5]),
    spec("parkinsonism", 50, 0.012, [1.0, 0.0, -0.3, 0.02, 0.6]),
    spec("peptic_ulcer", 30, 0.02, [0.5, 0.0, -0.2, 0.06, 0.5]),
    spec(
        "peripheral_vascular_disease",
        50,
        0.025,
        [0.8, 0.0, -0.5, 0.09, 0.7],
    ),
    spec("polypharmacy", 40, 0.15, [1.0, 0.0, 0.2, 0.06, 1.0]),
    spec("requirement_for_care", 65, 0.05, [1.3, 0.0, 0.3, 0.05, 1.0]),
    spec("skin_ulcer", 60, 0.03, [1.0, 0.0, 0.0, 0.04, 0.9]),
    spec("sleep_disturbance", 18, 0.06, [0.2, 0.0, 0.4, 0.05, 0.5]),
    spec("social_vulnerability", 65, 0.05, [0.6, 0.0, 0.2, 0.10, 0.5]),
    spec("thyroid_disease", 18, 0.045, [0.5, 0.0, 1.5, 0.01, 0.3]),
    spec("urinary_incontinence", 40, 0.05, [1.0, 0.0, 0.9, 0.03, 0.7]),
    spec(
        "urinary_system_disease",
        18,
        0.04,
        [0.6, 0.0, 0.4, 0.03, 0.6],
    ),
    spec("visual_impairment", 40, 0.04, [1.1, 0.0, 0.1, 0.04, 0.6]),
    spec("weight_loss", 60, 0.03, [1.0, 0.0, 0.1, 0.05, 0.9]),
];

/// A calibrated condition model, in the order of `crate::conditions::CONDITIONS`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConditionModel {
    /// The specification.
    pub spec: ConditionSpec,
    /// The calibrated model.
    pub model: Model,
}

/// Calibrate a model for every code of the vocabulary, in vocabulary order.
///
/// # Errors
/// The code of a vocabulary condition without a specification, or whose prevalence cannot be
/// reached.
pub fn condition_models(reference: &Population) -> Result<Vec<ConditionModel>, String> {
    crate::conditions::CONDITIONS
        .iter()
        .map(|condition| {
            let spec = CONDITION_SPECS
                .iter()
                .find(|s| s.code == condition.code)
                .ok_or_else(|| format!("condition {} has no prevalence model", condition.code))?;
            let eligibility = Eligibility::from_age(spec.min_age);
            let intercept = calibrate(
                Link::Logit,
                spec.effects,
                eligibility,
                spec.prevalence,
                reference,
                None,
            )
            .ok_or_else(|| {
                format!(
                    "condition {}: prevalence {} cannot be reached",
                    spec.code, spec.prevalence
                )
            })?;
            Ok(ConditionModel {
                spec: *spec,
                model: Model {
                    link: Link::Logit,
                    intercept,
                    effects: spec.effects,
                    eligibility,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vocabulary_code_has_one_model_and_no_other_codes() {
        for condition in crate::conditions::CONDITIONS {
            let n = CONDITION_SPECS
                .iter()
                .filter(|s| s.code == condition.code)
                .count();
            assert_eq!(n, 1, "{}", condition.code);
        }
        assert_eq!(CONDITION_SPECS.len(), crate::conditions::CONDITIONS.len());
    }

    #[test]
    fn prevalence_rises_with_age_and_deprivation() {
        for spec in CONDITION_SPECS {
            assert!(spec.effects.deprivation >= 0.0, "{}", spec.code);
        }
        let rising = CONDITION_SPECS
            .iter()
            .filter(|s| s.effects.age_slope > 0.0)
            .count();
        assert!(rising >= 35, "{rising}");
    }
}
