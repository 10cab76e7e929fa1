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

use std::collections::HashMap;

use polars::prelude::*;
use rayon::prelude::*;
use serde::Deserialize;

use crate::conditions::CONDITIONS;
use crate::error::UserError;
use crate::pipeline::key_codes::{invert, sum_by_keys};
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
    // other keys, with the keys coded (`key_codes`); each level and segmentation is summed
    // from those groups, and the rows sorted, by codes. polars' `group_by` and sort over these
    // keys, six of them text, spent most of the stage encoding and comparing rows of key bytes.
    // (One streamed plan with a grouping per level and segmentation queues the patients for
    // the slowest grouping: 8 GiB at England scale.)
    let code_columns: Vec<&str> = SEGMENT_LEVELS
        .iter()
        .map(|(_, code)| *code)
        .filter(|code| !code.is_empty())
        .collect();
    let segment_columns: Vec<String> = segmentations.iter().map(|n| segment_column(n)).collect();
    let keys: Vec<&str> = code_columns
        .iter()
        .copied()
        .chain(segment_columns.iter().map(String::as_str))
        .chain(SEGMENT_CROSSINGS)
        .collect();
    let first_segment = code_columns.len();
    let first_crossing = first_segment + segmentations.len();
    // Each level's code column among the keys (`None`: England, one footprint).
    let levels: Vec<(&str, Option<usize>)> = SEGMENT_LEVELS
        .iter()
        .map(|&(kind, code)| (kind, code_columns.iter().position(|c| *c == code)))
        .collect();
    let people = sum_by_keys(segmented, &keys, schema::WEIGHT)?;

    // A row of the table is keyed by the ranks of its values (kind, footprint code,
    // segmentation, segment, crossings), so that rows sorted by key are rows sorted as polars
    // sorts the values, missing last.
    let ranks: Vec<Vec<u32>> = (0..keys.len()).map(|k| people.key(k).ranks()).collect();
    let kind_ranks = name_ranks(levels.iter().map(|(kind, _)| *kind));
    let segmentation_ranks = name_ranks(segmentations.iter().map(String::as_str));
    // Each level × segmentation is summed on its own (their rows' keys differ in kind or
    // segmentation, so they never meet), side by side.
    let pairs: Vec<(usize, usize)> = (0..levels.len())
        .flat_map(|level| (0..segmentations.len()).map(move |s| (level, s)))
        .collect();
    let mut rows: Vec<(RowKey, i64)> = pairs
        .par_iter()
        .flat_map_iter(|&(level, s)| {
            let code_key = levels[level].1;
            let segment_key = first_segment + s;
            let mut sums: HashMap<RowKey, i64, foldhash::fast::RandomState> = HashMap::default();
            for (codes, count) in people.groups() {
                let footprint = match code_key {
                    Some(k) if people.key(k).is_null(codes[k]) => continue,
                    Some(k) => ranks[k][codes[k] as usize],
                    None => 0,
                };
                let mut key: RowKey = [0; ROW_KEY_LEN];
                key[0] = kind_ranks[level];
                key[1] = footprint;
                key[2] = segmentation_ranks[s];
                key[3] = ranks[segment_key][codes[segment_key] as usize];
                for (c, code) in codes[first_crossing..].iter().enumerate() {
                    key[4 + c] = ranks[first_crossing + c][*code as usize];
                }
                *sums.entry(key).or_default() += count;
            }
            sums
        })
        .collect();
    rows.par_sort_unstable_by_key(|(key, _)| *key);

    // Back from ranks to values: each column's codes in rank order.
    let codes_by_rank: Vec<Vec<u32>> = ranks.iter().map(|r| invert(r)).collect();
    let level_of = invert(&kind_ranks);
    let segmentation_of = invert(&segmentation_ranks);
    let kinds: Vec<&str> = rows
        .iter()
        .map(|(key, _)| levels[level_of[key[0] as usize] as usize].0)
        .collect();
    let england = Series::new(PlSmallStr::EMPTY, [schema::ENGLAND_CODE]);
    let level_codes = levels
        .iter()
        .map(|&(_, code_key)| match code_key {
            Some(k) => people.key(k).values(),
            None => Ok(england.clone()),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    let footprint_codes = take_stacked(
        schema::FOOTPRINT_CODE,
        &level_codes,
        rows.iter().map(|(key, _)| {
            let level = level_of[key[0] as usize] as usize;
            let code = levels[level]
                .1
                .map_or(0, |k| codes_by_rank[k][key[1] as usize]);
            (level, code)
        }),
    )?;
    let segmentation_at = |key: &RowKey| segmentation_of[key[2] as usize] as usize;
    let names: Vec<&str> = rows
        .iter()
        .map(|(key, _)| segmentations[segmentation_at(key)].as_str())
        .collect();
    let segment_values = (0..segmentations.len())
        .map(|s| people.key(first_segment + s).values())
        .collect::<PolarsResult<Vec<_>>>()?;
    let segments = take_stacked(
        SEGMENT,
        &segment_values,
        rows.iter().map(|(key, _)| {
            let s = segmentation_at(key);
            (s, codes_by_rank[first_segment + s][key[3] as usize])
        }),
    )?;
    let mut columns = vec![
        Column::new(schema::FOOTPRINT_KIND.into(), kinds),
        footprint_codes.into_column(),
        Column::new(SEGMENTATION.into(), names),
        segments.into_column(),
    ];
    for (c, name) in SEGMENT_CROSSINGS.iter().enumerate() {
        let codes_of = &codes_by_rank[first_crossing + c];
        let codes = rows
            .iter()
            .map(|(key, _)| codes_of[key[4 + c] as usize])
            .collect();
        columns.push(
            people
                .key(first_crossing + c)
                .take(codes)?
                .with_name((*name).into())
                .into_column(),
        );
    }
    let populations: Vec<i64> = rows.iter().map(|(_, people)| *people).collect();
    columns.push(Column::new(schema::POPULATION.into(), populations));
    DataFrame::new(rows.len(), columns)
}

/// The columns each footprint × segment is crossed by in the `segments` table.
const SEGMENT_CROSSINGS: [&str; 4] = [
    RISK_TIER,
    schema::IMD_QUINTILE,
    schema::BROAD_AGE_BAND,
    schema::SEX,
];

/// A row of the `segments` table by the ranks of its values: kind, footprint code,
/// segmentation, segment, and the crossings.
type RowKey = [u32; ROW_KEY_LEN];
const ROW_KEY_LEN: usize = 4 + SEGMENT_CROSSINGS.len();

/// The rank of each name in byte order.
fn name_ranks<'a>(names: impl Iterator<Item = &'a str>) -> Vec<u32> {
    let names: Vec<&str> = names.collect();
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_by_key(|&i| names[i as usize]);
    invert(&order)
}

/// The text of each pick (a column of `columns` and a row of it), as one text column `name`.
fn take_stacked(
    name: &str,
    columns: &[Series],
    picks: impl Iterator<Item = (usize, u32)>,
) -> PolarsResult<Series> {
    let mut stacked = Series::new_empty(name.into(), &DataType::String);
    let mut offsets = Vec::with_capacity(columns.len());
    for column in columns {
        offsets.push(stacked.len() as IdxSize);
        stacked.append(&column.cast(&DataType::String)?.with_name(name.into()))?;
    }
    let rows: Vec<IdxSize> = picks
        .map(|(column, row)| offsets[column] + row as IdxSize)
        .collect();
    stacked.take(&IdxCa::from_vec(PlSmallStr::EMPTY, rows))
}

/// The column holding a segmentation's segment on each patient row.
pub fn segment_column(segmentation: &str) -> String {
    format!("segment__{segmentation}")
}

#[cfg(test)]
mod tests {
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

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

    /// The `segments` table as polars' `group_by` and sort gave it before the keys were
    /// coded: the reference for [`segments_table`].
    fn segments_by_polars(segmented: LazyFrame, segmentations: &[String]) -> DataFrame {
        let mut frames = Vec::new();
        for name in segmentations {
            for &(kind, code) in SEGMENT_LEVELS {
                let code_expr = if code.is_empty() {
                    lit(schema::ENGLAND_CODE)
                } else {
                    col(code)
                };
                let mut keys = vec![
                    col(schema::FOOTPRINT_CODE),
                    col(segment_column(name)).alias(SEGMENT),
                ];
                keys.extend(SEGMENT_CROSSINGS.iter().map(|c| col(*c)));
                frames.push(
                    segmented
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
                        .select(SEGMENTS_COLUMNS.iter().map(|c| col(*c)).collect::<Vec<_>>()),
                );
            }
        }
        concat(frames, UnionArgs::default())
            .expect("same columns")
            .sort(
                SEGMENTS_COLUMNS[..SEGMENTS_COLUMNS.len() - 1].to_vec(),
                SortMultipleOptions::default()
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )
            .collect()
            .expect("the reference table")
    }

    #[test]
    fn segments_by_codes_are_polars_group_by_and_sort() {
        // Patients from a small generator, with missing PCNs (practices in none), segments,
        // quintiles and sexes, and segmentations named out of order so their ranks matter.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut next = |n: u64| rng.random_range(0..n);
        let rows = 6_000;
        let icbs = ["QWE", "QHM", "QOX"];
        let pcns = [
            Some("U12345"),
            Some("U00001"),
            None,
            Some("U99999"),
            Some("U5"),
        ];
        let bridges = [
            Some("Living with frailty and two long-term conditions"),
            Some("Healthy well"),
            Some("End of life"),
            None,
        ];
        let core20 = [Some("Core20"), Some("PLUS: carers"), Some("Neither")];
        let tiers = ["very high", "high", "moderate", "low"];
        let bands = ["0-17", "18-64", "65-79", "80+"];
        let sexes = [Some("F"), Some("M"), None];
        let patients = df![
            schema::ICB_CODE => (0..rows).map(|_| icbs[next(3) as usize]).collect::<Vec<_>>(),
            schema::PCN_CODE => (0..rows).map(|_| pcns[next(5) as usize]).collect::<Vec<_>>(),
            "segment__zeta" => (0..rows).map(|_| bridges[next(4) as usize]).collect::<Vec<_>>(),
            "segment__alpha" => (0..rows).map(|_| core20[next(3) as usize]).collect::<Vec<_>>(),
            RISK_TIER => (0..rows).map(|_| tiers[next(4) as usize]).collect::<Vec<_>>(),
            schema::IMD_QUINTILE => (0..rows).map(|_| Some(next(6) as i64).filter(|q| *q > 0)).collect::<Vec<_>>(),
            schema::BROAD_AGE_BAND => (0..rows).map(|_| bands[next(4) as usize]).collect::<Vec<_>>(),
            schema::SEX => (0..rows).map(|_| sexes[next(3) as usize]).collect::<Vec<_>>(),
            schema::WEIGHT => (0..rows).map(|_| 1 + next(2) as i32).collect::<Vec<_>>(),
        ]
        .expect("patients");
        let segmentations = ["zeta".to_string(), "alpha".to_string()];
        let coded = segments_table(patients.clone().lazy(), &segmentations).expect("by codes");
        let reference = segments_by_polars(patients.lazy(), &segmentations);
        assert!(reference.height() > 1_000, "the test needs many rows");
        assert_eq!(coded.schema(), reference.schema());
        assert_eq!(coded, reference);
    }
}
