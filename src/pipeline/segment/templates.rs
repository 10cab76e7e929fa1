//! The segmentations healthgap ships: Bridges to Health's eight segments and a Core20PLUS5
//! cross-cut. Rules are SQL boolean expressions over patient columns, tried in order; the
//! first that is true names the segment.
//!
//! Bridges to Health: Lynn J et al., "Using population segmentation to provide better health
//! care for all: the 'Bridges to Health' model", Milbank Q 2007;85(2):185–208, as NHS England's
//! population health management guidance adapts it to primary care records (frailty and
//! dementia, end of life and organ failure first; then disability, long-term conditions,
//! maternity, acute illness; the rest healthy). Core20PLUS5: NHS England's approach to reducing
//! healthcare inequalities (the most deprived 20% nationally, plus locally chosen groups).

use super::SegmentRule;

/// Bridges to Health's eight segments in priority order, for patient-level extracts with the
/// condition vocabulary, eFI deficits, and (for the acute segment) the `emergency_admissions`
/// outcome where it is given.
pub fn bridges_to_health(has_admissions: bool) -> Vec<SegmentRule> {
    let acute = if has_admissions {
        "COALESCE(emergency_admissions, 0) > 0"
    } else {
        // Without acute episode data the segment cannot be recognised; it stays empty and
        // the manifest says why.
        "FALSE"
    };
    [
        (
            "8 Frailty and dementia",
            "dementia OR care_home OR (efi > 0.36 AND age >= 65)",
        ),
        ("7 Short period of decline before dying", "eol_register"),
        (
            "6 Limited reserve and serious exacerbations",
            "heart_failure OR copd OR (chronic_kidney_disease AND cms_conditions >= 3)",
        ),
        (
            "5 Stable but serious disability",
            "learning_disability OR smi OR housebound OR schizophrenia_bipolar",
        ),
        (
            "4 Long-term conditions, normal function",
            "cms_conditions >= 1",
        ),
        ("3 Maternal and infant health", "pregnant OR age < 1"),
        ("2 Acutely ill but curable", acute),
        ("1 Healthy", "TRUE"),
    ]
    .into_iter()
    .map(|(name, when)| SegmentRule::new(name, when))
    .collect()
}

/// The PLUS groups the Core20PLUS5 cross-cut uses by default: inclusion-health and other
/// locally common groups with worse access and outcomes.
pub const DEFAULT_PLUS_GROUPS: &[&str] = &[
    "learning_disability",
    "smi",
    "homeless",
    "carer",
    "gypsy_roma_traveller",
    "asylum_seeker",
    "drug_alcohol_dependence",
];

/// Core20 × PLUS: whether a patient lives in a Core20 LSOA, belongs to a PLUS group
/// (`plus_groups`, each a boolean patient column, and optionally ethnic minority groups), both
/// or neither.
pub fn core20plus5(plus_groups: &[String], ethnic_minorities: bool) -> Vec<SegmentRule> {
    let mut parts: Vec<String> = plus_groups
        .iter()
        .map(|g| format!("COALESCE({g}, FALSE)"))
        .collect();
    if ethnic_minorities {
        parts.push("ethnic_group NOT IN ('White', 'Not stated')".to_string());
    }
    let plus = if parts.is_empty() {
        "FALSE".to_string()
    } else {
        format!("({})", parts.join(" OR "))
    };
    vec![
        SegmentRule::new(
            "Core20 and PLUS",
            &format!("COALESCE(core20, FALSE) AND {plus}"),
        ),
        SegmentRule::new("Core20 only", "COALESCE(core20, FALSE)"),
        SegmentRule::new("PLUS only", &plus),
        SegmentRule::new("Neither", "TRUE"),
    ]
}
