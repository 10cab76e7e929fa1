//! Stage 5b, measure from practice-level figures: published counts and denominators per
//! practice (the Fingertips / QOF shape), summed to PCNs, ICBs and England, broken down by
//! practice deprivation decile.
//!
//! Owns the practice deprivation deciles used when there is no patient-level list: each
//! practice's published IMD score (Fingertips 93553) ranked into population-weighted deciles
//! (each holds about a tenth of the registered population; 1 = most deprived), weighted by the
//! practice's registered list. Practices are attributed like patients are: PCN by dated ePCN
//! membership, ICB by the practice's parent in `epraccur` (`attribute::practice_footprints`).
//! The rows join the `indicators` table with breakdowns `practice_deprivation_decile` and
//! `practice_deprivation_quintile`; the limits are the same reference methods (`measure`).

use polars::prelude::*;
use serde::Deserialize;

use crate::error::UserError;
use crate::ingest::InputKind;
use crate::pipeline::ingest::Ingested;
use crate::pipeline::measure::{
    self, ALL, BREAKDOWN, BREAKDOWN_VALUE, IndicatorRows, IndicatorSpec, IndicatorType, Polarity,
    den_column, level_code, num_column,
};
use crate::schema;
use crate::stats::quantile::{DeprivationOrder, population_weighted_quantiles};

/// Breakdown: practice deprivation decile (population-weighted, 1 = most deprived).
pub const PRACTICE_DECILE: &str = "practice_deprivation_decile";
/// Breakdown: practice deprivation quintile (deciles 1–2 = quintile 1).
pub const PRACTICE_QUINTILE: &str = "practice_deprivation_quintile";

/// `[[practice_indicators]]`: an indicator read from practice-level published figures.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeIndicatorSpec {
    /// Short code used in outputs.
    pub id: String,
    /// What it measures.
    pub name: String,
    /// The `Indicator ID` in the practice outcomes input (e.g. `91547`).
    pub source_indicator: String,
    /// The `Time period` to use (default: the latest in the file).
    #[serde(default)]
    pub period: Option<String>,
    /// `proportion` (Count of Denominator) or `rate`.
    #[serde(rename = "type", default = "default_type")]
    pub kind: IndicatorType,
    /// Multiplier (default 100 for proportions, 100,000 for rates).
    #[serde(default)]
    pub multiplier: Option<f64>,
    /// `high_is_good`, `low_is_good` (default) or `neutral`.
    #[serde(default)]
    pub polarity: Polarity,
}

fn default_type() -> IndicatorType {
    IndicatorType::Proportion
}

impl PracticeIndicatorSpec {
    /// The spec in the shape the measure stage reports.
    pub fn as_indicator(&self) -> IndicatorSpec {
        IndicatorSpec {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            numerator: format!("Count of practice indicator {}", self.source_indicator),
            denominator: Some(format!(
                "Denominator of practice indicator {}",
                self.source_indicator
            )),
            multiplier: self.multiplier,
            polarity: self.polarity,
            unit: None,
        }
    }
}

/// `[practice_deprivation]`: where practice deprivation scores come from.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeDeprivationConfig {
    /// The `Indicator ID` of the practice IMD score in the practice outcomes input (Fingertips
    /// 93553).
    #[serde(default = "default_score_indicator")]
    pub score_indicator: String,
    /// Its period (default `2019`, the IoD2019 scores).
    #[serde(default = "default_score_period")]
    pub period: String,
}

impl Default for PracticeDeprivationConfig {
    fn default() -> Self {
        PracticeDeprivationConfig {
            score_indicator: default_score_indicator(),
            period: default_score_period(),
        }
    }
}

fn default_score_indicator() -> String {
    "93553".to_string()
}

fn default_score_period() -> String {
    "2019".to_string()
}

/// Each practice's deprivation score, registered population, decile and quintile.
///
/// Registered population: the NHS Digital practice totals when given, else the largest
/// denominator the practice has among the practice indicators.
///
/// # Errors
/// [`UserError`] when the scores are not in the practice outcomes input.
pub fn practice_deciles(
    ingested: &Ingested,
    config: &PracticeDeprivationConfig,
) -> Result<DataFrame, UserError> {
    let outcomes = ingested
        .frame(InputKind::PracticeOutcomes)
        .ok_or_else(|| UserError("practice indicators need [inputs.practice_outcomes]".into()))?;
    let scores = outcomes
        .clone()
        .filter(
            col(schema::INDICATOR)
                .eq(lit(config.score_indicator.as_str()))
                .and(col(schema::PERIOD).eq(lit(config.period.as_str()))),
        )
        .group_by([col(schema::AREA_CODE).alias(schema::PRACTICE_CODE)])
        .agg([col(schema::VALUE).first().alias(schema::IMD_SCORE)])
        .filter(col(schema::IMD_SCORE).is_not_null());
    let registered = match ingested.frame(InputKind::PracticeTotals) {
        Some(totals) => {
            totals
                .group_by([col(schema::PRACTICE_CODE)])
                .agg([col(schema::NUMBER_OF_PATIENTS)
                    .sum()
                    .cast(DataType::Float64)
                    .alias(schema::POPULATION)])
        }
        None => outcomes
            .group_by([col(schema::AREA_CODE).alias(schema::PRACTICE_CODE)])
            .agg([col(schema::DENOMINATOR).max().alias(schema::POPULATION)]),
    };
    let table = scores
        .join(
            registered,
            [col(schema::PRACTICE_CODE)],
            [col(schema::PRACTICE_CODE)],
            JoinArgs::new(JoinType::Left),
        )
        .sort([schema::PRACTICE_CODE], SortMultipleOptions::default())
        .collect()
        .map_err(|e| UserError(format!("reading practice deprivation scores: {e}")))?;
    if table.height() == 0 {
        return Err(UserError(format!(
            "practice indicators need practice deprivation scores: no rows with Indicator ID {} and period {} in [inputs.practice_outcomes] (set [practice_deprivation] score_indicator and period)",
            config.score_indicator, config.period
        )));
    }
    let scores_col = table
        .column(schema::IMD_SCORE)
        .and_then(|c| c.f64().cloned())
        .map_err(|e| UserError(format!("practice deprivation scores: {e}")))?;
    let population_col = table
        .column(schema::POPULATION)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(|e| UserError(format!("practice populations: {e}")))?;
    let population_col = population_col
        .f64()
        .map_err(|e| UserError(format!("practice populations: {e}")))?
        .clone();
    // Crossing into slices for the statistics: one entry per practice.
    let scores: Vec<f64> = scores_col.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let populations: Vec<f64> = population_col.iter().map(|v| v.unwrap_or(0.0)).collect();
    let deciles = population_weighted_quantiles(
        &scores,
        &populations,
        10,
        DeprivationOrder::HigherIsMoreDeprived,
    )
    .map_err(|e| UserError(format!("practice deprivation deciles: {e}")))?;
    let quintiles: Vec<u32> = deciles.iter().map(|d| d.div_ceil(2)).collect();
    let mut table = table;
    table
        .with_column(Column::new(PRACTICE_DECILE.into(), deciles))
        .and_then(|t| t.with_column(Column::new(PRACTICE_QUINTILE.into(), quintiles)))
        .map_err(|e| UserError(format!("practice deprivation deciles: {e}")))?;
    Ok(table)
}

/// Indicator rows from practice-level figures, in the `indicators` table's schema: a block per
/// indicator, in key order.
///
/// # Errors
/// [`UserError`] when an indicator is not in the input; polars errors as internal.
pub fn practice_indicator_rows(
    ingested: &Ingested,
    specs: &[PracticeIndicatorSpec],
    practices: &LazyFrame,
    deciles: &DataFrame,
    levels: &[String],
) -> anyhow::Result<IndicatorRows> {
    let outcomes = ingested
        .frame(InputKind::PracticeOutcomes)
        .ok_or_else(|| UserError("practice indicators need [inputs.practice_outcomes]".into()))?;
    let footprints = practices.clone().select([
        col(schema::PRACTICE_CODE),
        col(schema::PCN_CODE),
        col(schema::ICB_CODE),
    ]);
    let deprivation = deciles.clone().lazy().select([
        col(schema::PRACTICE_CODE),
        col(PRACTICE_DECILE).cast(DataType::String),
        col(PRACTICE_QUINTILE).cast(DataType::String),
    ]);
    let mut per_practice: Option<LazyFrame> = None;
    for (i, spec) in specs.iter().enumerate() {
        let rows = outcomes
            .clone()
            .filter(col(schema::INDICATOR).eq(lit(spec.source_indicator.as_str())));
        let period = match &spec.period {
            Some(period) => period.clone(),
            None => latest_period(&rows)?.ok_or_else(|| {
                UserError(format!(
                    "practice indicator `{}`: no rows with Indicator ID {} in [inputs.practice_outcomes]",
                    spec.id, spec.source_indicator
                ))
            })?,
        };
        let figures = rows
            .filter(col(schema::PERIOD).eq(lit(period.as_str())))
            .group_by([col(schema::AREA_CODE).alias(schema::PRACTICE_CODE)])
            .agg([
                col(schema::NUMERATOR).sum().alias(num_column(i)),
                col(schema::DENOMINATOR).sum().alias(den_column(i)),
            ]);
        per_practice = Some(match per_practice {
            None => figures,
            Some(previous) => previous.join(
                figures,
                [col(schema::PRACTICE_CODE)],
                [col(schema::PRACTICE_CODE)],
                JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
            ),
        });
    }
    let Some(per_practice) = per_practice else {
        return Ok(IndicatorRows::default());
    };
    let n = specs.len();
    let fill: Vec<Expr> = (0..n)
        .flat_map(|i| {
            [
                col(num_column(i)).fill_null(lit(0.0)),
                col(den_column(i)).fill_null(lit(0.0)),
            ]
        })
        .collect();
    let joined = per_practice
        .with_columns(fill)
        .join(
            footprints,
            [col(schema::PRACTICE_CODE)],
            [col(schema::PRACTICE_CODE)],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            deprivation,
            [col(schema::PRACTICE_CODE)],
            [col(schema::PRACTICE_CODE)],
            JoinArgs::new(JoinType::Left),
        );
    let sums: Vec<Expr> = (0..n)
        .flat_map(|i| [col(num_column(i)).sum(), col(den_column(i)).sum()])
        .collect();
    let mut frames = Vec::new();
    for level in levels {
        let code = level_code(level);
        for (breakdown, value) in [
            (ALL, lit("All")),
            (
                PRACTICE_DECILE,
                col(PRACTICE_DECILE).fill_null(lit(measure::UNKNOWN)),
            ),
            (
                PRACTICE_QUINTILE,
                col(PRACTICE_QUINTILE).fill_null(lit(measure::UNKNOWN)),
            ),
        ] {
            frames.push(
                joined
                    .clone()
                    .with_columns([
                        code.clone().alias(schema::FOOTPRINT_CODE),
                        value.alias(BREAKDOWN_VALUE),
                    ])
                    .filter(col(schema::FOOTPRINT_CODE).is_not_null())
                    .group_by([col(schema::FOOTPRINT_CODE), col(BREAKDOWN_VALUE)])
                    .agg(sums.clone())
                    .with_columns([
                        lit(level.as_str()).alias(schema::FOOTPRINT_KIND),
                        lit(breakdown).alias(BREAKDOWN),
                    ]),
            );
        }
    }
    let flat = concat(frames, UnionArgs::default())?.collect()?;
    let indicator_specs: Vec<IndicatorSpec> = specs
        .iter()
        .map(PracticeIndicatorSpec::as_indicator)
        .collect();
    let refs: Vec<&IndicatorSpec> = indicator_specs.iter().collect();
    let mut rows = IndicatorRows::default();
    measure::estimate_rows(&flat, &refs, &measure::reference_levels()?, &mut rows)?;
    Ok(rows)
}

/// The latest `period` among rows (periods such as `2022/23` sort as text).
fn latest_period(rows: &LazyFrame) -> PolarsResult<Option<String>> {
    let latest = rows.clone().select([col(schema::PERIOD).max()]).collect()?;
    Ok(latest
        .column(schema::PERIOD)?
        .str()?
        .get(0)
        .map(str::to_string))
}
