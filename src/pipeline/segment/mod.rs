//! Stage 4, segment: patient features, risk scores, segments and risk tiers.
//!
//! Owns:
//! - the *features* every rule and indicator can refer to: the enriched patient row, plus one
//!   yes/no column per condition of the vocabulary (from the long `conditions` input and any
//!   wide condition columns), one column per patient outcome (from the long `outcomes` input),
//!   the patient flags (absent = no), and the risk scores ([`risk`]);
//! - *segmentations*: priority-ordered SQL rules, first match wins ([`templates`] ships Bridges
//!   to Health and a Core20PLUS5 cross-cut); an invalid rule is a config error naming it;
//! - *risk tiers*: the classic pyramid by percentile of the Cambridge Multimorbidity Score
//!   within a footprint, or fixed cut-offs;
//! - the `segments` table: footprint × segmentation × segment × risk tier × IMD quintile ×
//!   age band × sex → people.
//!
//! Indicators over these features are the next stage (`measure`).

pub mod long;
pub mod risk;
pub mod templates;

use polars::prelude::*;
use serde::Deserialize;

use crate::conditions::CONDITIONS;
use crate::error::UserError;
use crate::schema;

/// Column holding the (primary) segment of each patient.
pub const SEGMENT: &str = "segment";
/// Column holding the risk tier of each patient.
pub const RISK_TIER: &str = "risk_tier";
/// Column naming the segmentation a row of the `segments` table belongs to.
pub const SEGMENTATION: &str = "segmentation";

/// One rule: a segment name and the SQL boolean expression that puts a patient in it.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRule {
    /// The segment's name, as it appears in outputs.
    pub name: String,
    /// A SQL boolean expression over patient columns, e.g. `age >= 65 AND copd`.
    pub when: String,
}

impl SegmentRule {
    /// A rule from its parts.
    pub fn new(name: &str, when: &str) -> Self {
        SegmentRule {
            name: name.to_string(),
            when: when.to_string(),
        }
    }
}

/// Which rules a segmentation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Bridges to Health's eight segments.
    BridgesToHealth,
    /// Core20 × PLUS groups.
    Core20plus5,
    /// The rules given in the config.
    Custom,
}

/// `[[segmentations]]`: one named segmentation.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentationConfig {
    /// Its name in outputs (`bridges_to_health`).
    pub name: String,
    /// Shipped rules, or `custom`.
    pub template: Template,
    /// With `custom`: the rules, in priority order.
    #[serde(default)]
    pub rules: Vec<SegmentRule>,
    /// With `core20plus5`: the patient flags that make the PLUS groups.
    #[serde(default)]
    pub plus_groups: Option<Vec<String>>,
    /// With `core20plus5`: count ethnic minority groups as a PLUS group.
    #[serde(default = "default_true")]
    pub ethnic_minorities: bool,
}

fn default_true() -> bool {
    true
}

/// The segmentations a config gets when it names none: both shipped templates.
pub fn default_segmentations() -> Vec<SegmentationConfig> {
    vec![
        SegmentationConfig {
            name: "bridges_to_health".into(),
            template: Template::BridgesToHealth,
            rules: Vec::new(),
            plus_groups: None,
            ethnic_minorities: true,
        },
        SegmentationConfig {
            name: "core20plus5".into(),
            template: Template::Core20plus5,
            rules: Vec::new(),
            plus_groups: None,
            ethnic_minorities: true,
        },
    ]
}

/// A segmentation ready to apply: its rules parsed into polars expressions.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Its name.
    pub name: String,
    /// The rules, in priority order.
    pub rules: Vec<SegmentRule>,
    /// The label of each patient's segment (first rule that is true; "Unassigned" when none).
    pub expr: Expr,
}

/// Parse and check the rules of a segmentation against the features' schema.
///
/// # Errors
/// [`UserError`] naming the segmentation and rule when a rule does not parse, refers to a
/// column the patients do not have, or is not a yes/no expression.
pub fn prepare(config: &SegmentationConfig, features: &Schema) -> Result<Segmentation, UserError> {
    let has = |c: &str| features.get(c).is_some();
    let rules = match config.template {
        Template::BridgesToHealth => {
            templates::bridges_to_health(has(crate::indicators::EMERGENCY_ADMISSIONS))
        }
        Template::Core20plus5 => {
            let groups = config.plus_groups.clone().unwrap_or_else(|| {
                templates::DEFAULT_PLUS_GROUPS
                    .iter()
                    .map(|g| g.to_string())
                    .collect()
            });
            templates::core20plus5(&groups, config.ethnic_minorities)
        }
        Template::Custom => config.rules.clone(),
    };
    if rules.is_empty() {
        return Err(UserError(format!(
            "segmentation `{}` has no rules: give [[segmentations.rules]] with name and when",
            config.name
        )));
    }
    let mut parsed = Vec::new();
    for rule in &rules {
        let expr = rule_expr(&config.name, rule, features)?;
        parsed.push((rule.name.clone(), expr));
    }
    // A rule whose condition is null for a patient (a missing value) does not hold.
    let expr = crate::lazy::first_label(
        parsed
            .iter()
            .map(|(name, condition)| (condition.clone(), name.as_str())),
        Some("Unassigned"),
    );
    Ok(Segmentation {
        name: config.name.clone(),
        rules,
        expr,
    })
}

/// Parse one SQL rule and check it against the schema.
fn rule_expr(segmentation: &str, rule: &SegmentRule, features: &Schema) -> Result<Expr, UserError> {
    let at = || {
        format!(
            "segmentation `{segmentation}`, rule `{}` (`{}`)",
            rule.name, rule.when
        )
    };
    let expr = polars::sql::sql_expr(&rule.when).map_err(|e| {
        UserError(format!(
            "{}: not a valid SQL expression: {}",
            at(),
            crate::ingest::short_polars_message(&e)
        ))
    })?;
    let mut probe = DataFrame::empty_with_schema(features)
        .lazy()
        .select([expr.clone().alias("rule")]);
    let dtype = probe
        .collect_schema()
        .map_err(|e| {
            UserError(format!(
                "{}: {}",
                at(),
                crate::ingest::short_polars_message(&e)
            ))
        })?
        .get("rule")
        .cloned();
    match dtype {
        Some(DataType::Boolean) | Some(DataType::Null) => Ok(expr),
        other => Err(UserError(format!(
            "{}: must be a yes/no (boolean) expression, but it gives {}",
            at(),
            other.map_or("nothing".to_string(), |d| d.to_string())
        ))),
    }
}

/// Add the feature columns: one yes/no column per condition of the vocabulary, one column per
/// patient outcome, the patient flags filled, and the risk scores.
///
/// `patients` carries the long inputs as [`long::with_long_inputs`] adds them (`__cond_<code>`,
/// `__outcome_<code>`; either may be absent); those columns are replaced by the features.
///
/// # Errors
/// If the plan's columns cannot be read.
pub fn features(patients: LazyFrame) -> PolarsResult<LazyFrame> {
    let mut patients = patients;
    let present: Vec<String> = patients
        .collect_schema()?
        .iter_names()
        .map(|n| n.to_string())
        .collect();
    let has = |c: &str| present.iter().any(|p| p == c);

    // Conditions: a wide column on the patient list and a row in the long table both count.
    let from_long = |code: &str| format!("{}{code}", long::CONDITION_PREFIX);
    let long_conditions: Vec<String> = CONDITIONS
        .iter()
        .map(|c| from_long(c.code))
        .filter(|name| has(name))
        .collect();
    patients = patients.with_columns(
        CONDITIONS
            .iter()
            .map(|c| {
                let wide = has(c.code).then(|| col(c.code).fill_null(lit(false)));
                let long = has(&from_long(c.code)).then(|| col(from_long(c.code)));
                let combined = match (wide, long) {
                    (Some(wide), Some(long)) => wide.or(long),
                    (Some(only), None) | (None, Some(only)) => only,
                    (None, None) => lit(false),
                };
                combined.alias(c.code)
            })
            .collect::<Vec<_>>(),
    );
    if !long_conditions.is_empty() {
        patients = patients.drop(cols(long_conditions));
    }

    // Patient flags: absent means no.
    patients = patients.with_columns(
        schema::PATIENT_FLAGS
            .iter()
            .map(|f| {
                if has(f) {
                    col(*f).fill_null(lit(false)).alias(*f)
                } else {
                    lit(false).alias(*f)
                }
            })
            .collect::<Vec<_>>(),
    );

    // Outcomes: one column per code, the patient's value (summed over rows of the code); null
    // where the patient has no row (not eligible, or a count of zero: indicators say which).
    let outcomes: Vec<(&str, &str)> = present
        .iter()
        .filter_map(|name| {
            name.strip_prefix(long::OUTCOME_PREFIX)
                .map(|code| (name.as_str(), code))
        })
        .collect();
    if !outcomes.is_empty() {
        patients = patients
            .with_columns(
                outcomes
                    .iter()
                    .map(|(name, code)| col(*name).alias(*code))
                    .collect::<Vec<_>>(),
            )
            .drop(cols(outcomes.iter().map(|(name, _)| *name)));
    }
    Ok(risk::with_scores(patients))
}

/// How risk tiers are formed.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// `percentile` (the pyramid within a footprint) or `cutoffs`.
    #[serde(default)]
    pub tiers: risk::TierMethod,
    /// With `percentile`: the footprint the percentiles are taken within: `pcn` (default),
    /// `icb`, `practice` or `england`.
    #[serde(default = "risk::default_within")]
    pub within: String,
    /// With `cutoffs`: score thresholds for the moderate, high and very high tiers (ascending).
    #[serde(default)]
    pub cutoffs: Vec<f64>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            tiers: risk::TierMethod::Percentile,
            within: risk::default_within(),
            cutoffs: Vec::new(),
        }
    }
}

/// Columns of the `segments` table, in order.
pub const SEGMENTS_COLUMNS: &[&str] = &[
    schema::FOOTPRINT_KIND,
    schema::FOOTPRINT_CODE,
    SEGMENTATION,
    SEGMENT,
    RISK_TIER,
    schema::IMD_QUINTILE,
    schema::BROAD_AGE_BAND,
    schema::SEX,
    schema::POPULATION,
];

/// The levels the `segments` table is cut by, with the column holding each footprint's code.
pub const SEGMENT_LEVELS: &[(&str, &str)] = &[
    ("england", ""),
    ("icb", schema::ICB_CODE),
    ("pcn", schema::PCN_CODE),
];

/// People by footprint × segmentation × segment × risk tier × IMD quintile × broad age band ×
/// sex. `segmented` has one `segment__<name>` column per segmentation and the risk tier.
///
/// # Errors
/// If the plan fails.
pub fn segments_table(segmented: LazyFrame, segmentations: &[String]) -> PolarsResult<DataFrame> {
    // People are counted once, streamed, by every footprint code × every segmentation × the
    // other keys; each level and segmentation is summed from that table. (One streamed plan
    // with a grouping per level and segmentation queues the patients for the slowest
    // grouping: 8 GiB at England scale.)
    let crossings = [
        RISK_TIER,
        schema::IMD_QUINTILE,
        schema::BROAD_AGE_BAND,
        schema::SEX,
    ];
    let mut keys: Vec<Expr> = SEGMENT_LEVELS
        .iter()
        .filter(|(_, code)| !code.is_empty())
        .map(|(_, code)| col(*code))
        .collect();
    keys.extend(segmentations.iter().map(|n| col(segment_column(n))));
    keys.extend(crossings.iter().map(|c| col(*c)));
    let finest = crate::lazy::collect_streaming(
        segmented
            .group_by(keys)
            .agg([col(schema::WEIGHT).sum().alias(schema::WEIGHT)]),
    )?
    .lazy();
    let mut frames = Vec::new();
    for name in segmentations {
        let segment_column = segment_column(name);
        for &(kind, code) in SEGMENT_LEVELS {
            let code_expr = if code.is_empty() {
                lit(schema::ENGLAND_CODE)
            } else {
                col(code)
            };
            let mut keys = vec![
                col(schema::FOOTPRINT_CODE),
                col(segment_column.as_str()).alias(SEGMENT),
            ];
            keys.extend(crossings.iter().map(|c| col(*c)));
            let frame = finest
                .clone()
                .with_column(code_expr.alias(schema::FOOTPRINT_CODE))
                .filter(col(schema::FOOTPRINT_CODE).is_not_null())
                .group_by(keys)
                .agg([col(schema::WEIGHT)
                    .sum()
                    .cast(DataType::Int64)
                    .alias(schema::POPULATION)])
                .with_columns([
                    lit(kind).alias(schema::FOOTPRINT_KIND),
                    lit(name.as_str()).alias(SEGMENTATION),
                ])
                .select(SEGMENTS_COLUMNS.iter().map(|c| col(*c)).collect::<Vec<_>>());
            frames.push(frame);
        }
    }
    concat(frames, UnionArgs::default())?
        .sort(
            SEGMENTS_COLUMNS[..SEGMENTS_COLUMNS.len() - 1].to_vec(),
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .collect()
}

/// The column holding a segmentation's segment on each patient row.
pub fn segment_column(segmentation: &str) -> String {
    format!("segment__{segmentation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_that_is_null_for_a_patient_does_not_hold() {
        let patients = df![
            "score" => [Some(9i64), None, None, Some(1)],
            "carer" => [Some(false), Some(true), None, None],
        ]
        .expect("patients");
        let config = SegmentationConfig {
            name: "custom".into(),
            template: Template::Custom,
            rules: vec![
                SegmentRule::new("High score", "score > 5"),
                SegmentRule::new("Carer", "carer"),
            ],
            plus_groups: None,
            ethnic_minorities: true,
        };
        let segmentation = prepare(&config, patients.schema()).expect("rules");
        let got = patients
            .lazy()
            .select([segmentation.expr.alias("segment")])
            .collect()
            .expect("segments");
        let segments: Vec<Option<&str>> = got["segment"].str().expect("text").iter().collect();
        assert_eq!(
            segments,
            [
                Some("High score"),
                Some("Carer"),
                Some("Unassigned"),
                Some("Unassigned"),
            ]
        );
    }
}
