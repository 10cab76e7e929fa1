//! `healthgap demo`: the whole pipeline on bundled and generated data, end to end.
//!
//! Owns the demo's configuration: the synthetic registered list written by `crate::synth`
//! (with the config it writes beside the data and reference inputs), plus the indicator, segmentation
//! and gradient sections below. The indicators are the ones a PCN measures, over the synthetic
//! outcomes (`crate::indicators`) and the risk scores; they are also the reference example of
//! `[[indicators]]` for the README.

/// The demo's indicator and analysis sections, appended to the config `healthgap synth` writes.
pub const DEMO_SECTIONS: &str = r#"
# --- Indicators over the patient-level outcomes --------------------------------------------
# numerator/denominator are SQL over patient columns. Binary outcomes have a row (0/1) for
# every eligible patient, so "IS NOT NULL" is the eligible population; count outcomes have
# rows only for counts of 1 or more, so COALESCE(…, 0).

[[indicators]]
id = "emergency_admissions"
name = "Emergency hospital admissions per 1,000 registered patients"
type = "rate"
numerator = "COALESCE(emergency_admissions, 0)"
multiplier = 1000
polarity = "low_is_good"

[[indicators]]
id = "emergency_admissions_dsr"
name = "Emergency admissions, directly age-standardised rate per 100,000 (ESP2013)"
type = "dsr"
numerator = "COALESCE(emergency_admissions, 0)"
polarity = "low_is_good"

[[indicators]]
id = "ae_attendances"
name = "A&E attendances per 1,000 registered patients"
type = "rate"
numerator = "COALESCE(ae_attendances, 0)"
multiplier = 1000
polarity = "low_is_good"

[[indicators]]
id = "mortality_dsr"
name = "Deaths in 12 months, directly age-standardised rate per 100,000 (ESP2013)"
type = "dsr"
numerator = "COALESCE(death_12m, 0)"
polarity = "low_is_good"

[[indicators]]
id = "bp_controlled"
name = "Hypertension: last blood pressure at target"
type = "proportion"
numerator = "bp_controlled = 1"
denominator = "bp_controlled IS NOT NULL"
polarity = "high_is_good"

[[indicators]]
id = "flu_vaccination_65"
name = "Flu vaccination, aged 65 and over"
type = "proportion"
numerator = "flu_vaccinated = 1"
denominator = "flu_vaccinated IS NOT NULL"
polarity = "high_is_good"

[[indicators]]
id = "cervical_screening"
name = "Cervical screening up to date, women 25-64"
type = "proportion"
numerator = "cervical_screened = 1"
denominator = "cervical_screened IS NOT NULL"
polarity = "high_is_good"

[[indicators]]
id = "bowel_screening"
name = "Bowel screening up to date, aged 60-74"
type = "proportion"
numerator = "bowel_screened = 1"
denominator = "bowel_screened IS NOT NULL"
polarity = "high_is_good"

[[indicators]]
id = "breast_screening"
name = "Breast screening up to date, women 50-70"
type = "proportion"
numerator = "breast_screened = 1"
denominator = "breast_screened IS NOT NULL"
polarity = "high_is_good"

[[indicators]]
id = "smoking"
name = "Current smokers, aged 15 and over"
type = "proportion"
numerator = "current_smoker = 1"
denominator = "current_smoker IS NOT NULL"
polarity = "low_is_good"

[[indicators]]
id = "multimorbidity"
name = "Adults with a Cambridge Multimorbidity Score of 1.5 or more"
type = "proportion"
numerator = "cms_score >= 1.5"
denominator = "age >= 18"
polarity = "low_is_good"

[[indicators]]
id = "hypertension_recorded"
name = "Recorded hypertension, adults"
type = "proportion"
numerator = "hypertension"
denominator = "age >= 18"
polarity = "neutral"

# --- Indicators from practice-level published figures -------------------------------------
[[practice_indicators]]
id = "smoking_qof"
name = "Smoking prevalence in adults (15+), current smokers (QOF)"
source_indicator = "91547"
period = "2022/23"
type = "proportion"
polarity = "low_is_good"

# --- Segments, risk, gradients --------------------------------------------------------------
[[segmentations]]
name = "bridges_to_health"
template = "bridges_to_health"

[[segmentations]]
name = "core20plus5"
template = "core20plus5"

[risk]
tiers = "percentile"
within = "pcn"

[gradient]
levels = ["england", "icb", "pcn"]
repetitions = 100000
"#;

/// The demo sections (appended to the config `healthgap synth` writes, which already names
/// the reference data, geometry and the standard population).
pub fn demo_sections() -> &'static str {
    DEMO_SECTIONS
}
