//! The patient outcome indicators: codes, kinds, and who is eligible.
//!
//! Owns the vocabulary of the `outcomes` input's `indicator` column for the outcomes a PCN
//! measures (DESIGN §2.3), so the synthetic generator (`crate::synth`), the example and demo
//! configs and the measure stage agree on codes and denominators. Like `crate::conditions`, it
//! is data, not behaviour.
//!
//! Row convention of the long `outcomes` table: a **binary** indicator has one row for every
//! eligible patient, with value 1 (the event happened or the standard was met) or 0; so its
//! denominator is the patients with a row. A **count** indicator has one row for every patient
//! with a count of at least 1, and a patient without a row counted 0; its denominator is the
//! whole registered list. Both are over the 12 months to the extract date (`period`).

/// Whether an indicator is a yes/no per eligible patient or a count of events per patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorKind {
    /// 0/1 per eligible patient; the value is a proportion of the eligible.
    Binary,
    /// Events per patient in the period; the value is a rate per registered patient.
    Count,
}

/// Who counts in an indicator's denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct IndicatorEligibility {
    /// Youngest age, in whole years at the extract date.
    pub min_age: u8,
    /// Oldest age, if any.
    pub max_age: Option<u8>,
    /// Women only.
    pub women_only: bool,
    /// Only patients with this condition (a code of [`crate::conditions`]).
    pub condition: Option<&'static str>,
}

impl IndicatorEligibility {
    const EVERYONE: IndicatorEligibility = IndicatorEligibility {
        min_age: 0,
        max_age: None,
        women_only: false,
        condition: None,
    };

    /// Whether a patient of this age and sex (and, when one is required, with the condition)
    /// is eligible.
    pub fn admits(&self, age: u8, female: bool, has_condition: bool) -> bool {
        age >= self.min_age
            && self.max_age.is_none_or(|max| age <= max)
            && (female || !self.women_only)
            && (self.condition.is_none() || has_condition)
    }
}

/// One patient outcome indicator.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Indicator {
    /// The code in the `outcomes` table.
    pub code: &'static str,
    /// What it measures, in words.
    pub name: &'static str,
    /// Binary or count.
    pub kind: IndicatorKind,
    /// The denominator.
    pub eligibility: IndicatorEligibility,
    /// The denominator in words.
    pub eligible: &'static str,
}

/// Emergency hospital admissions in 12 months (count).
pub const EMERGENCY_ADMISSIONS: &str = "emergency_admissions";
/// A&E attendances in 12 months (count).
pub const AE_ATTENDANCES: &str = "ae_attendances";
/// Died within 12 months of the start of the period (0/1).
pub const DEATH_12M: &str = "death_12m";
/// Last blood pressure at or below target, patients with hypertension (0/1).
pub const BP_CONTROLLED: &str = "bp_controlled";
/// Flu vaccination in the season, aged 65+ (0/1).
pub const FLU_VACCINATED: &str = "flu_vaccinated";
/// Cervical screening up to date, women 25–64 (0/1).
pub const CERVICAL_SCREENED: &str = "cervical_screened";
/// Bowel screening up to date, aged 60–74 (0/1).
pub const BOWEL_SCREENED: &str = "bowel_screened";
/// Breast screening up to date, women 50–70 (0/1).
pub const BREAST_SCREENED: &str = "breast_screened";
/// Current smoker, aged 15+ (0/1).
pub const CURRENT_SMOKER: &str = "current_smoker";

/// The outcome indicators.
pub const INDICATORS: &[Indicator] = &[
    Indicator {
        code: EMERGENCY_ADMISSIONS,
        name: "Emergency hospital admissions in the 12 months to the extract date",
        kind: IndicatorKind::Count,
        eligibility: IndicatorEligibility::EVERYONE,
        eligible: "every registered patient",
    },
    Indicator {
        code: AE_ATTENDANCES,
        name: "A&E attendances in the 12 months to the extract date",
        kind: IndicatorKind::Count,
        eligibility: IndicatorEligibility::EVERYONE,
        eligible: "every registered patient",
    },
    Indicator {
        code: DEATH_12M,
        name: "Died in the 12 months to the extract date",
        kind: IndicatorKind::Binary,
        eligibility: IndicatorEligibility::EVERYONE,
        eligible: "every registered patient",
    },
    Indicator {
        code: BP_CONTROLLED,
        name: "Last blood pressure reading at or below the age-appropriate target",
        kind: IndicatorKind::Binary,
        eligibility: IndicatorEligibility {
            min_age: 18,
            condition: Some("hypertension"),
            ..IndicatorEligibility::EVERYONE
        },
        eligible: "patients with hypertension",
    },
    Indicator {
        code: FLU_VACCINATED,
        name: "Flu vaccination in the last season",
        kind: IndicatorKind::Binary,
        eligibility: IndicatorEligibility {
            min_age: 65,
            ..IndicatorEligibility::EVERYONE
        },
        eligible: "patients aged 65+",
    },
    Indicator {
        code: CERVICAL_SCREENED,
        name: "Cervical screening up to date",
        kind: IndicatorKind::Binary,
        eligibility: IndicatorEligibility {
            min_age: 25,
            max_age: Some(64),
            women_only: true,
            condition: None,
        },
        eligible: "women aged 25–64",
    },
    Indicator {
        code: BOWEL_SCREENED,
        name: "Bowel screening up to date",
        kind: IndicatorKind::Binary,
        eligibility: IndicatorEligibility {
            min_age: 60,
            max_age: Some(74),
            ..IndicatorEligibility::EVERYONE
        },
        eligible: "patients aged 60–74",
    },
    Indicator {
        code: BREAST_SCREENED,
        name: "Breast screening up to date",
        kind: IndicatorKind::Binary,
        eligibility: IndicatorEligibility {
            min_age: 50,
            max_age: Some(70),
            women_only: true,
            condition: None,
        },
        eligible: "women aged 50–70",
    },
    Indicator {
        code: CURRENT_SMOKER,
        name: "Current smoker (last recorded status)",
        kind: IndicatorKind::Binary,
        eligibility: IndicatorEligibility {
            min_age: 15,
            ..IndicatorEligibility::EVERYONE
        },
        eligible: "patients aged 15+",
    },
];

/// The indicator with this code, if any.
pub fn lookup(code: &str) -> Option<&'static Indicator> {
    INDICATORS.iter().find(|i| i.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_conditions_exist() {
        let mut codes: Vec<&str> = INDICATORS.iter().map(|i| i.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), INDICATORS.len());
        for indicator in INDICATORS {
            if let Some(condition) = indicator.eligibility.condition {
                assert!(
                    crate::conditions::lookup(condition).is_some(),
                    "{condition}"
                );
            }
        }
        assert_eq!(
            lookup(CURRENT_SMOKER).map(|i| i.kind),
            Some(IndicatorKind::Binary)
        );
    }

    #[test]
    fn eligibility_by_age_sex_and_condition() {
        let cervical = lookup(CERVICAL_SCREENED).map(|i| i.eligibility);
        let cervical = cervical.expect("listed");
        assert!(cervical.admits(30, true, false));
        assert!(!cervical.admits(30, false, false));
        assert!(!cervical.admits(65, true, false));
        let bp = lookup(BP_CONTROLLED)
            .map(|i| i.eligibility)
            .expect("listed");
        assert!(bp.admits(70, false, true));
        assert!(!bp.admits(70, false, false));
    }
}
