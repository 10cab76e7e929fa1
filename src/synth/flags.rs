//! The PLUS-group flags of a patient (`schema::PATIENT_FLAGS`).
//!
//! Owns the flag models, in the model form of `super::model` with the prevalences below (among
//! the eligible, in England's resident population); `smi` and `housebound` are the conditions
//! `schizophrenia_bipolar` and `housebound`, so flag and condition never disagree.

use super::model::{Effects, Eligibility, Link, Model, Population, calibrate};

/// Where a flag's value comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlagSource {
    /// Drawn from its own model: prevalence among the eligible in England's population.
    Model {
        /// Who can have the flag.
        eligibility: Eligibility,
        /// Prevalence among the eligible.
        prevalence: f64,
        /// Slopes of the model form.
        effects: Effects,
    },
    /// The same as having this condition (a code of `crate::conditions`).
    Condition(&'static str),
}

const fn effects(
    age_slope: f64,
    age_curvature: f64,
    female: f64,
    deprivation: f64,
    latent: f64,
) -> Effects {
    Effects {
        age_slope,
        age_curvature,
        female,
        deprivation,
        latent,
    }
}

/// The flag models, in the order of [`crate::schema::PATIENT_FLAGS`]. Prevalences: QOF
/// registers (learning disability 0.55%, palliative care 0.45%), recorded carers, care home
/// residents (3% of people 65+, most of them 80+), pregnancies (≈4.5% of women 15–44 at any
/// time, peaking at 31), recorded autism (1%), veterans (3.5% of adults, mostly older men),
/// and small groups (homeless, Gypsy/Roma/Traveller, asylum seekers) concentrated in deprived
/// areas.
pub const FLAGS: [(&str, FlagSource); 13] = [
    (
        "learning_disability",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.0055,
            effects: effects(-0.1, -0.02, -0.4, 0.05, 0.3),
        },
    ),
    ("smi", FlagSource::Condition("schizophrenia_bipolar")),
    (
        "carer",
        FlagSource::Model {
            eligibility: Eligibility::from_age(16),
            prevalence: 0.05,
            effects: effects(0.2, -0.2, 0.4, 0.02, 0.0),
        },
    ),
    (
        "homeless",
        FlagSource::Model {
            eligibility: Eligibility::ages(16, 79),
            prevalence: 0.0025,
            effects: effects(-0.2, -0.15, -0.8, 0.2, 0.5),
        },
    ),
    (
        "care_home",
        FlagSource::Model {
            eligibility: Eligibility::from_age(65),
            prevalence: 0.03,
            effects: effects(1.4, 0.0, 0.3, 0.03, 0.9),
        },
    ),
    ("housebound", FlagSource::Condition("housebound")),
    (
        "eol_register",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.0045,
            effects: effects(1.0, 0.0, 0.0, 0.02, 1.2),
        },
    ),
    (
        "pregnant",
        FlagSource::Model {
            eligibility: Eligibility::women(15, 44),
            prevalence: 0.045,
            effects: effects(-5.7, -1.5, 0.0, 0.02, -0.2),
        },
    ),
    (
        "autism",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.01,
            effects: effects(-0.6, 0.0, -1.2, 0.03, 0.2),
        },
    ),
    (
        "veteran",
        FlagSource::Model {
            eligibility: Eligibility::from_age(18),
            prevalence: 0.035,
            effects: effects(0.8, -0.05, -2.8, 0.03, 0.0),
        },
    ),
    (
        "gypsy_roma_traveller",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.001,
            effects: effects(-0.2, 0.0, 0.0, 0.15, 0.2),
        },
    ),
    (
        "asylum_seeker",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.0012,
            effects: effects(-0.4, -0.2, -0.7, 0.2, 0.0),
        },
    ),
    (
        "drug_alcohol_dependence",
        FlagSource::Model {
            eligibility: Eligibility::from_age(16),
            prevalence: 0.01,
            effects: effects(-0.1, -0.2, -0.8, 0.15, 0.6),
        },
    ),
];

/// A flag ready to draw: its calibrated model, or the condition it mirrors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlagModel {
    /// Drawn from this model.
    Drawn(Model),
    /// Set when the patient has the condition at this index of `crate::conditions::CONDITIONS`.
    Condition(usize),
}

/// Calibrate the flag models on the reference population.
///
/// # Errors
/// The name of a flag whose prevalence cannot be reached, or whose condition is not in the
/// vocabulary.
pub fn flag_models(reference: &Population) -> Result<Vec<(&'static str, FlagModel)>, String> {
    FLAGS
        .iter()
        .map(|(name, source)| match source {
            FlagSource::Model {
                eligibility,
                prevalence,
                effects,
            } => calibrate(
                Link::Logit,
                *effects,
                *eligibility,
                *prevalence,
                reference,
                None,
            )
            .map(|intercept| {
                (
                    *name,
                    FlagModel::Drawn(Model {
                        link: Link::Logit,
                        intercept,
                        effects: *effects,
                        eligibility: *eligibility,
                    }),
                )
            })
            .ok_or_else(|| format!("flag {name}: prevalence {prevalence} cannot be reached")),
            FlagSource::Condition(code) => crate::conditions::CONDITIONS
                .iter()
                .position(|c| c.code == *code)
                .map(|index| (*name, FlagModel::Condition(index)))
                .ok_or_else(|| format!("flag {name}: condition {code} is not in the vocabulary")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_schema_order() {
        let names: Vec<&str> = FLAGS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, crate::schema::PATIENT_FLAGS);
    }
}
