//! The condition vocabulary: codes the risk models use, with their weights.
//!
//! Owns the list of conditions accepted in the `conditions` input (and as wide boolean
//! columns on `patients`), the Cambridge Multimorbidity Score weights, and which conditions are
//! deficits of the electronic Frailty Index. The segment stage computes the scores from these;
//! the synthetic generator draws these conditions; ingest rejects codes not listed here.
//!
//! Cambridge Multimorbidity Score: Payne RA et al., "Development and validation of the Cambridge
//! Multimorbidity Score", CMAJ 2020;192(5):E107–E114, the 20-condition *general outcome*
//! weights. Electronic Frailty Index: Clegg A et al., "Development and validation of an
//! electronic frailty index using routine primary care electronic health record data", Age and
//! Ageing 2016;45(3):353–360 (36 deficits; categories fit ≤ 0.12 < mild ≤ 0.24 < moderate ≤
//! 0.36 < severe).

/// One condition of the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// The code used in the `conditions` input and as a column name: snake_case words.
    pub code: &'static str,
    /// Other accepted spellings (CPRD@Cambridge three-letter codes).
    pub aliases: &'static [&'static str],
    /// What it is, in words.
    pub name: &'static str,
    /// Weight in the Cambridge Multimorbidity Score (general outcome), if it is one of the 20.
    pub cms_weight: Option<f64>,
    /// The electronic Frailty Index deficit this condition evidences, if any. Several
    /// conditions can evidence one deficit (asthma and COPD both mean "respiratory disease");
    /// the index counts distinct deficits.
    pub efi_deficit: Option<&'static str>,
}

const fn cms(
    code: &'static str,
    aliases: &'static [&'static str],
    name: &'static str,
    weight: f64,
    efi: Option<&'static str>,
) -> Condition {
    Condition {
        code,
        aliases,
        name,
        cms_weight: Some(weight),
        efi_deficit: efi,
    }
}

const fn deficit(code: &'static str, name: &'static str) -> Condition {
    Condition {
        code,
        aliases: &[],
        name,
        cms_weight: None,
        efi_deficit: Some(code),
    }
}

/// Number of deficits the electronic Frailty Index divides by.
pub const EFI_DEFICITS: usize = 36;

/// The vocabulary: the 20 CMS conditions first, then the other eFI deficits.
pub const CONDITIONS: &[Condition] = &[
    cms("alcohol_problems", &["ALC"], "Alcohol problems", 0.65, None),
    cms(
        "anxiety_depression",
        &["ANX", "DEP"],
        "Anxiety or depression",
        0.50,
        None,
    ),
    cms(
        "atrial_fibrillation",
        &["ATR", "AF"],
        "Atrial fibrillation",
        1.34,
        Some("atrial_fibrillation"),
    ),
    cms(
        "cancer",
        &["CAN"],
        "New diagnosis of cancer in the last five years",
        1.53,
        None,
    ),
    cms(
        "chronic_kidney_disease",
        &["CKD"],
        "Chronic kidney disease",
        0.53,
        Some("chronic_kidney_disease"),
    ),
    cms(
        "connective_tissue_disorder",
        &["RHE"],
        "Rheumatoid arthritis, other inflammatory polyarthropathies and connective tissue disorders",
        0.43,
        Some("arthritis"),
    ),
    cms(
        "copd",
        &["COP"],
        "Chronic obstructive pulmonary disease",
        1.46,
        Some("respiratory_disease"),
    ),
    cms(
        "coronary_heart_disease",
        &["CHD"],
        "Coronary heart disease",
        0.49,
        Some("ischaemic_heart_disease"),
    ),
    cms(
        "dementia",
        &["DEM"],
        "Dementia",
        2.50,
        Some("memory_problems"),
    ),
    cms("diabetes", &["DIB"], "Diabetes", 0.75, Some("diabetes")),
    cms(
        "epilepsy",
        &["EPI"],
        "Epilepsy (currently treated)",
        0.92,
        None,
    ),
    cms(
        "hearing_loss",
        &["HEL"],
        "Hearing loss",
        0.09,
        Some("hearing_impairment"),
    ),
    cms(
        "heart_failure",
        &["HEF", "HF"],
        "Heart failure",
        1.18,
        Some("heart_failure"),
    ),
    cms(
        "irritable_bowel_syndrome",
        &["IBS"],
        "Irritable bowel syndrome",
        0.21,
        None,
    ),
    cms(
        "schizophrenia_bipolar",
        &["SCZ"],
        "Schizophrenia or bipolar affective disorder",
        0.64,
        None,
    ),
    cms(
        "stroke_tia",
        &["STR"],
        "Stroke or transient ischaemic attack",
        0.80,
        Some("cerebrovascular_disease"),
    ),
    cms(
        "asthma",
        &["AST"],
        "Asthma (currently treated)",
        0.19,
        Some("respiratory_disease"),
    ),
    cms(
        "hypertension",
        &["HYP"],
        "Hypertension",
        0.08,
        Some("hypertension"),
    ),
    cms(
        "constipation",
        &["CON"],
        "Constipation (treated)",
        1.12,
        None,
    ),
    cms(
        "painful_condition",
        &["PNC"],
        "Painful condition",
        0.92,
        None,
    ),
    // Other electronic Frailty Index deficits (the conditions above with `Some(..)` evidence the rest).
    deficit("activity_limitation", "Activity limitation"),
    deficit("anaemia", "Anaemia and haematinic deficiency"),
    deficit("arthritis", "Arthritis"),
    deficit("dizziness", "Dizziness"),
    deficit("dyspnoea", "Dyspnoea"),
    deficit("falls", "Falls"),
    deficit("foot_problems", "Foot problems"),
    deficit("fragility_fracture", "Fragility fracture"),
    deficit("heart_valve_disease", "Heart valve disease"),
    deficit(
        "housebound",
        "Housebound (also the patient flag `housebound`)",
    ),
    deficit("hypotension_syncope", "Hypotension or syncope"),
    deficit("memory_problems", "Memory and cognitive problems"),
    deficit("mobility_problems", "Mobility and transfer problems"),
    deficit("osteoporosis", "Osteoporosis"),
    deficit("parkinsonism", "Parkinsonism and tremor"),
    deficit("peptic_ulcer", "Peptic ulcer"),
    deficit("peripheral_vascular_disease", "Peripheral vascular disease"),
    deficit("polypharmacy", "Polypharmacy"),
    deficit("requirement_for_care", "Requirement for care"),
    deficit("skin_ulcer", "Skin ulcer"),
    deficit("sleep_disturbance", "Sleep disturbance"),
    deficit("social_vulnerability", "Social vulnerability"),
    deficit("thyroid_disease", "Thyroid disease"),
    deficit("urinary_incontinence", "Urinary incontinence"),
    deficit("urinary_system_disease", "Urinary system disease"),
    deficit("visual_impairment", "Visual impairment"),
    deficit("weight_loss", "Weight loss and anorexia"),
];

/// The condition with this code or alias (case-insensitive), if any.
pub fn lookup(code: &str) -> Option<&'static Condition> {
    let wanted = code.trim();
    CONDITIONS.iter().find(|c| {
        c.code.eq_ignore_ascii_case(wanted)
            || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(wanted))
    })
}

/// `(accepted spelling upper-cased, canonical code)` for every code and alias, for the ingest
/// enum check.
pub fn spellings() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for c in CONDITIONS {
        out.push((c.code.to_ascii_uppercase(), c.code));
        for alias in c.aliases {
            out.push((alias.to_ascii_uppercase(), c.code));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_cms_conditions_and_thirty_six_deficits() {
        assert_eq!(
            CONDITIONS.iter().filter(|c| c.cms_weight.is_some()).count(),
            20
        );
        let mut deficits: Vec<&str> = CONDITIONS.iter().filter_map(|c| c.efi_deficit).collect();
        deficits.sort_unstable();
        deficits.dedup();
        assert_eq!(deficits.len(), EFI_DEFICITS, "{deficits:?}");
    }

    #[test]
    fn codes_are_unique_and_aliases_resolve() {
        let mut codes: Vec<_> = spellings().into_iter().map(|(s, _)| s).collect();
        let n = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), n, "a spelling is listed twice");
        assert_eq!(lookup("dep").map(|c| c.code), Some("anxiety_depression"));
        assert_eq!(lookup("Hypertension").map(|c| c.code), Some("hypertension"));
        assert!(lookup("gout").is_none());
    }
}
