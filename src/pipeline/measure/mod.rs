//! Stage 5, measure: indicators by footprint and breakdown, with confidence limits.
//!
//! Owns the `indicators` table: for every indicator declared in config × footprint level
//! (England, ICB, PCN, practice) × footprint × breakdown (IMD decile and quintile, Core20,
//! segment, risk tier, ethnic group, sex, age band, or all) → numerator, denominator, value and
//! 95% / 99.8% limits. Numerators and denominators are sums of row weights, so patient-level
//! lists and weighted cells take one path, and every level is summed up from practice-level
//! sums (so England is exactly the sum of its practices, and an ICB of its practices).
//!
//! The limits are `crate::stats`' reference methods: Wilson for proportions, exact/Byar's for
//! crude rates, Dobson for directly standardised rates over the ESP2013 age bands. This module
//! only adapts them to tables (one call per row, or per age-band group for DSRs).

use polars::prelude::*;
use rayon::prelude::*;
use serde::Deserialize;

use crate::error::UserError;
use crate::pipeline::enrich::ESP2013_BANDS;
use crate::pipeline::segment::{RISK_TIER, SEGMENT};
use crate::schema;
use crate::stats::Confidence;

mod roll_up;
mod sums;

/// What an indicator's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorType {
    /// People meeting the numerator among the eligible (Wilson limits).
    Proportion,
    /// Events (the numerator's sum) per eligible person (exact/Byar's limits).
    Rate,
    /// Directly standardised rate over ESP2013 age bands (Dobson limits; suppressed below 10
    /// events, as the reference does).
    Dsr,
}

impl IndicatorType {
    /// The SII value type for this kind of value.
    pub fn sii_value_type(self) -> crate::stats::sii::ValueType {
        match self {
            IndicatorType::Proportion => crate::stats::sii::ValueType::Proportion,
            IndicatorType::Rate | IndicatorType::Dsr => crate::stats::sii::ValueType::Rate,
        }
    }

    fn default_multiplier(self) -> f64 {
        match self {
            IndicatorType::Proportion => 100.0,
            IndicatorType::Rate | IndicatorType::Dsr => 100_000.0,
        }
    }
}

/// Whether a higher value is better or worse, for significance labels and cohorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// Higher is better (screening, vaccination, blood pressure controlled).
    HighIsGood,
    /// Lower is better (admissions, mortality, smoking).
    #[default]
    LowIsGood,
    /// Neither (prevalence as a measure of need).
    Neutral,
}

/// `[[indicators]]`: one indicator.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorSpec {
    /// Short code, used in outputs (`smoking`).
    pub id: String,
    /// What it measures, in words.
    pub name: String,
    /// `proportion`, `rate` or `dsr`.
    #[serde(rename = "type")]
    pub kind: IndicatorType,
    /// SQL over patient columns: a yes/no expression (proportion) or a number of events
    /// (rate, dsr), e.g. `current_smoker = 1` or `COALESCE(emergency_admissions, 0)`.
    pub numerator: String,
    /// SQL yes/no expression for who is eligible (default: everyone).
    #[serde(default)]
    pub denominator: Option<String>,
    /// Multiplier of the value (default 100 for proportions, 100,000 for rates and DSRs).
    #[serde(default)]
    pub multiplier: Option<f64>,
    /// `high_is_good`, `low_is_good` (default) or `neutral`.
    #[serde(default)]
    pub polarity: Polarity,
    /// Unit shown on charts (default `%` or `per 100,000`).
    #[serde(default)]
    pub unit: Option<String>,
}

impl IndicatorSpec {
    /// The multiplier in force.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
            .unwrap_or_else(|| self.kind.default_multiplier())
    }

    /// The unit in force.
    pub fn unit(&self) -> String {
        self.unit.clone().unwrap_or_else(|| {
            let multiplier = self.multiplier();
            let proportion = self.kind == IndicatorType::Proportion;
            if proportion && multiplier == 100.0 {
                "%".to_string()
            } else if proportion && multiplier == 1.0 {
                "proportion".to_string()
            } else {
                format!("per {}", crate::output::thousands(multiplier))
            }
        })
    }
}

/// `[measure]`: which levels and breakdowns the `indicators` table has.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureConfig {
    /// Footprint levels: `england`, `icb`, `pcn`, `practice`.
    #[serde(default = "default_levels")]
    pub levels: Vec<String>,
    /// Breakdowns: `imd_decile`, `imd_quintile`, `core20`, `segment`, `risk_tier`,
    /// `ethnic_group`, `sex`, `age_band` (plus `all`, always).
    #[serde(default = "default_breakdowns")]
    pub breakdowns: Vec<String>,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            levels: default_levels(),
            breakdowns: default_breakdowns(),
        }
    }
}

/// Every footprint level, largest first.
pub const LEVELS: [&str; 4] = ["england", "icb", "pcn", "practice"];
/// Every breakdown.
pub const BREAKDOWNS: [&str; 8] = [
    schema::IMD_DECILE,
    schema::IMD_QUINTILE,
    schema::CORE20,
    SEGMENT,
    RISK_TIER,
    schema::ETHNIC_GROUP,
    schema::SEX,
    schema::AGE_BAND,
];
/// The breakdown that is the whole footprint.
pub const ALL: &str = "all";
/// Breakdown value for rows with no value of the breakdown (e.g. no LSOA, so no decile).
pub const UNKNOWN: &str = "Unknown";

fn default_levels() -> Vec<String> {
    LEVELS.iter().map(|s| s.to_string()).collect()
}

fn default_breakdowns() -> Vec<String> {
    BREAKDOWNS.iter().map(|s| s.to_string()).collect()
}

impl MeasureConfig {
    /// Check levels and breakdowns are known, and each listed once.
    ///
    /// # Errors
    /// [`UserError`] naming the unknown or repeated value.
    pub fn check(&self) -> Result<(), UserError> {
        // A repeat would publish its rows twice (and measure's sums group each breakdown once).
        for (list, values) in [("levels", &self.levels), ("breakdowns", &self.breakdowns)] {
            if let Some((at, value)) = values
                .iter()
                .enumerate()
                .find(|&(at, value)| values[..at].contains(value))
            {
                return Err(UserError(format!(
                    "measure.{list}: `{value}` is listed twice (entries {} and {})",
                    values.iter().position(|v| v == value).unwrap_or_default() + 1,
                    at + 1
                )));
            }
        }
        for level in &self.levels {
            if !LEVELS.contains(&level.as_str()) {
                return Err(UserError(format!(
                    "measure.levels: unknown level `{level}` (expected one of {})",
                    LEVELS.join(", ")
                )));
            }
        }
        for breakdown in &self.breakdowns {
            if !BREAKDOWNS.contains(&breakdown.as_str()) {
                return Err(UserError(format!(
                    "measure.breakdowns: unknown breakdown `{breakdown}` (expected one of {})",
                    BREAKDOWNS.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Columns of the `indicators` table, in order.
pub const INDICATOR_COLUMNS: &[&str] = &[
    schema::INDICATOR,
    schema::INDICATOR_NAME,
    INDICATOR_TYPE,
    schema::FOOTPRINT_KIND,
    schema::FOOTPRINT_CODE,
    BREAKDOWN,
    BREAKDOWN_VALUE,
    schema::NUMERATOR,
    schema::DENOMINATOR,
    schema::VALUE,
    schema::LOWER_CL_95,
    schema::UPPER_CL_95,
    schema::LOWER_CL_998,
    schema::UPPER_CL_998,
    METHOD,
];
/// Column: indicator type.
pub const INDICATOR_TYPE: &str = "indicator_type";
/// Column: the breakdown a row belongs to (`all`, `imd_decile`, …).
pub const BREAKDOWN: &str = "breakdown";
/// Column: the breakdown's value (`1`, `Core20`, `F`, …).
pub const BREAKDOWN_VALUE: &str = "breakdown_value";
/// Column: the method of the limits (`Wilson`, `Byars`, `Exact`, `Dobson`).
pub const METHOD: &str = "method";

/// An indicator ready to measure: its expressions checked against the patients' schema.
#[derive(Debug, Clone)]
pub struct PreparedIndicator {
    /// The spec.
    pub spec: IndicatorSpec,
    /// A person's events: yes/no as it is (a flag), any other type as a float; missing as no
    /// or 0.
    numerator: Expr,
    /// Whether a person counts in the denominator (missing as no).
    eligible: Expr,
}

/// Parse and check every indicator's expressions.
///
/// # Errors
/// [`UserError`] naming the indicator when an expression does not parse, refers to an unknown
/// column, or has the wrong type; or when two indicators share an id.
pub fn prepare(
    specs: &[IndicatorSpec],
    patients: &Schema,
) -> Result<Vec<PreparedIndicator>, UserError> {
    let mut ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(UserError(format!(
            "indicator id `{}` is declared twice",
            pair[0]
        )));
    }
    specs
        .iter()
        .map(|spec| {
            let at = |what: &str, sql: &str| format!("indicator `{}`, {what} (`{sql}`)", spec.id);
            let parse = |what: &str, sql: &str| -> Result<(Expr, DataType), UserError> {
                let expr = polars::sql::sql_expr(sql).map_err(|e| {
                    UserError(format!("{}: not a valid SQL expression: {}", at(what, sql), crate::ingest::short_polars_message(&e)))
                })?;
                let mut probe = DataFrame::empty_with_schema(patients).lazy().select([expr.clone().alias("x")]);
                let dtype = probe
                    .collect_schema()
                    .map_err(|e| UserError(format!("{}: {}", at(what, sql), crate::ingest::short_polars_message(&e))))?
                    .get("x")
                    .cloned()
                    .unwrap_or(DataType::Null);
                Ok((expr, dtype))
            };
            let (numerator, numerator_type) = parse("numerator", &spec.numerator)?;
            let wants_bool = spec.kind == IndicatorType::Proportion;
            let ok = if wants_bool {
                matches!(numerator_type, DataType::Boolean | DataType::Null)
            } else {
                numerator_type.is_primitive_numeric() || matches!(numerator_type, DataType::Boolean | DataType::Null)
            };
            if !ok {
                return Err(UserError(format!(
                    "{}: must be {} but it gives {numerator_type}",
                    at("numerator", &spec.numerator),
                    if wants_bool { "a yes/no expression for a proportion" } else { "a number of events" }
                )));
            }
            let eligible = match &spec.denominator {
                Some(sql) => {
                    let (expr, dtype) = parse("denominator", sql)?;
                    if !matches!(dtype, DataType::Boolean | DataType::Null) {
                        return Err(UserError(format!(
                            "{}: must be a yes/no expression (who is eligible) but it gives {dtype}",
                            at("denominator", sql)
                        )));
                    }
                    expr.fill_null(lit(false))
                }
                None => lit(true),
            };
            if spec.multiplier().partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return Err(UserError(format!("indicator `{}`: multiplier must be greater than 0", spec.id)));
            }
            Ok(PreparedIndicator {
                spec: spec.clone(),
                // Flags stay flags: the practice sums read their bits (a cast to floats was
                // 4% of measure's samples at England).
                numerator: if numerator_type == DataType::Boolean {
                    numerator.fill_null(lit(false))
                } else {
                    numerator.cast(DataType::Float64).fill_null(lit(0.0))
                },
                eligible,
            })
        })
        .collect()
}

pub(crate) fn num_column(i: usize) -> String {
    format!("__num{i}")
}

pub(crate) fn den_column(i: usize) -> String {
    format!("__den{i}")
}

/// The i-th indicator's eligibility, a column of the patients' terms ([`indicator_terms`]).
pub(crate) fn eligible_column(i: usize) -> String {
    format!("__eligible{i}")
}

/// The i-th indicator's events per person, a column of the patients' terms.
pub(crate) fn events_column(i: usize) -> String {
    format!("__events{i}")
}

/// The patients' weights as floats, a column of the patients' terms.
pub(crate) const WEIGHT_TERM: &str = "__weight";

/// The text label of a breakdown's value, from the `breakdown_value` column grouped on the
/// breakdown column's own values (null → "Unknown").
fn breakdown_label(breakdown: &str) -> Expr {
    let value = col(BREAKDOWN_VALUE);
    let label = if breakdown == schema::CORE20 {
        when(value.clone().eq(lit(true)))
            .then(lit("Core20"))
            .when(value.eq(lit(false)))
            .then(lit("Not Core20"))
            .otherwise(lit(NULL).cast(DataType::String))
    } else {
        value.cast(DataType::String)
    };
    label.fill_null(lit(UNKNOWN))
}

/// The patient-level columns that practice sums need: the practice, every breakdown column, the
/// age band when `by_age`, the row's weight, and each indicator's eligibility and events.
/// Selected in the plan that reads the patients, so only these columns are read. The sums
/// weigh the terms themselves ([`sums`]: a person's numerator is weight × events and the
/// denominator the weight, both 0 when not eligible or the weight is missing): as forty
/// polars `when`/`then` columns of floats, with flags cast to floats, that was an eighth
/// of measure's samples at England, and measure took 1 s more at 10M.
fn indicator_terms(
    patients: &LazyFrame,
    indicators: &[PreparedIndicator],
    breakdowns: &[String],
    by_age: bool,
) -> LazyFrame {
    let mut columns: Vec<&str> = vec![schema::PRACTICE_CODE];
    if by_age {
        columns.push(schema::AGE_BAND);
    }
    for breakdown in breakdowns {
        if !columns.contains(&breakdown.as_str()) {
            columns.push(breakdown);
        }
    }
    let mut terms: Vec<Expr> = columns.iter().map(|c| col(*c)).collect();
    terms.push(
        col(schema::WEIGHT)
            .cast(DataType::Float64)
            .alias(WEIGHT_TERM),
    );
    for (i, indicator) in indicators.iter().enumerate() {
        terms.push(indicator.eligible.clone().alias(eligible_column(i)));
        terms.push(indicator.numerator.clone().alias(events_column(i)));
    }
    patients.clone().select(terms)
}

/// Practice sums of the `flat` indicators, and of the `dsr` ones by age band, in one streamed
/// pass over the patients (see [`sums`] for why not with polars' `group_by`), rolled up to
/// `levels` ([`roll_up`]; `practices` maps each practice to its PCN and ICB).
fn practice_sums(
    patients: &LazyFrame,
    indicators: &[PreparedIndicator],
    (flat, dsr): (&[usize], &[usize]),
    breakdowns: &[String],
    (practices, levels): (&DataFrame, &[String]),
) -> PolarsResult<roll_up::RolledUp> {
    let terms = indicator_terms(patients, indicators, breakdowns, !dsr.is_empty());
    let sums = sums::PracticeSums::new(
        terms.clone().collect_schema()?.as_ref(),
        indicators.len(),
        flat,
        dsr,
        breakdowns,
    )?;
    crate::lazy::fold_batches(terms, sums, |sums, batch| sums.add(&batch))?
        .roll_up(practices, levels)
}

/// The footprint code of a practice's row at `level` (`england`, `icb`, `pcn` or `practice`),
/// from the row's practice, PCN and ICB codes.
pub(crate) fn level_code(level: &str) -> Expr {
    match level {
        "england" => lit(schema::ENGLAND_CODE),
        "icb" => col(schema::ICB_CODE),
        "pcn" => col(schema::PCN_CODE),
        _ => col(schema::PRACTICE_CODE),
    }
}

/// Compute the rows of the `indicators` table: one block per indicator, each in key order
/// ([`IndicatorRows::into_frame`] gives the published order).
///
/// `patients` carries the features, segment and risk tier; `practices` maps each practice to its
/// PCN and ICB; `esp2013` gives the standard population weights of the 19 age bands.
///
/// # Errors
/// If the plan fails, or a statistic refuses its input (an internal error: inputs are checked).
pub fn indicators_table(
    patients: &LazyFrame,
    practices: &LazyFrame,
    indicators: &[PreparedIndicator],
    config: &MeasureConfig,
    esp2013: &[f64; 19],
) -> PolarsResult<IndicatorRows> {
    let n = indicators.len();
    if n == 0 {
        return Ok(IndicatorRows::default());
    }
    let practices = practices
        .clone()
        .select([
            col(schema::PRACTICE_CODE),
            col(schema::PCN_CODE),
            col(schema::ICB_CODE),
        ])
        .collect()?;
    // Sums by age band only for the DSRs: by practice × breakdown value × age band there are
    // nineteen times more, and every one costs.
    let (dsr, flat_only): (Vec<usize>, Vec<usize>) =
        (0..n).partition(|&i| indicators[i].spec.kind == IndicatorType::Dsr);
    // The practice sums are taken once and every level is rolled up from them: each level's
    // plan would otherwise read the patients again.
    let sums = practice_sums(
        patients,
        indicators,
        (&flat_only, &dsr),
        &config.breakdowns,
        (&practices, &config.levels),
    )?;
    let pair = reference_levels()?;
    let specs: Vec<&IndicatorSpec> = indicators.iter().map(|i| &i.spec).collect();
    // The proportions and rates, and the DSRs, side by side: each has steps on one thread.
    let (crude_rows, standardised_rows) = std::thread::scope(|scope| {
        let standardised_rows = sums.by_band.as_ref().map(|by_band| {
            scope.spawn(|| {
                let mut rows = IndicatorRows::default();
                dsr_rows(by_band, indicators, esp2013, &pair, &mut rows)?;
                Ok::<_, PolarsError>(rows)
            })
        });
        let mut crude_rows = IndicatorRows::default();
        let crude = estimate_rows(&sums.flat, &specs, &pair, &mut crude_rows);
        let standardised_rows = standardised_rows.map(|thread| {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (crude.map(|()| crude_rows), standardised_rows)
    });
    let mut rows = crude_rows?;
    if let Some(standardised_rows) = standardised_rows {
        rows.append(standardised_rows?);
    }
    Ok(rows)
}

/// The two confidence levels of the published limits: 95% and 99.8%.
///
/// # Errors
/// Never in practice (both levels are valid).
pub fn reference_levels() -> PolarsResult<[Confidence; 2]> {
    Ok([
        Confidence::new(0.95).map_err(stats_err)?,
        Confidence::new(0.998).map_err(stats_err)?,
    ])
}

/// Turn summed numerators and denominators into rows with values and limits, for proportions
/// and crude rates. `flat` has `footprint_kind, footprint_code, breakdown, breakdown_value`
/// and, for the i-th spec, `__num{i}` and `__den{i}`. DSR specs are skipped (see `dsr_rows`).
/// Each spec's block is in key order.
///
/// # Errors
/// If a column is missing or a statistic refuses its input.
pub(crate) fn estimate_rows(
    flat: &DataFrame,
    specs: &[&IndicatorSpec],
    pair: &[Confidence],
    rows: &mut IndicatorRows,
) -> PolarsResult<()> {
    // Sorted once here, not per block or in the whole table: every block shares these keys.
    let flat = &in_key_order(flat.clone().lazy())?;
    let keys = key_columns(flat)?;
    for (i, spec) in specs.iter().enumerate() {
        if spec.kind == IndicatorType::Dsr {
            continue;
        }
        let nums = zero_filled(flat, &num_column(i))?;
        let dens = zero_filled(flat, &den_column(i))?;
        // One call per row, in parallel by runs of rows, each run's figures written straight
        // into its columns: a national run has millions of rows, and an estimate kept per row
        // (72 bytes) was collected, unzipped and read five times more (benches/RESULTS.md,
        // thirty-fifth round).
        let runs = nums
            .par_chunks(ESTIMATE_RUN)
            .zip(dens.par_chunks(ESTIMATE_RUN))
            .map(|(xs, ds)| {
                let mut figures = Figures::with_capacity(xs.len());
                let mut methods = Vec::with_capacity(xs.len());
                for (&x, &d) in xs.iter().zip(ds) {
                    let (estimate, method) = if d <= 0.0 {
                        (None, None)
                    } else if spec.kind == IndicatorType::Proportion {
                        let estimate = crate::stats::proportion::proportion(
                            x.min(d),
                            d,
                            pair,
                            spec.multiplier(),
                        )
                        .map_err(stats_err)?;
                        (estimate, Some("Wilson"))
                    } else {
                        let rate = crate::stats::rate::crude_rate(x, d, pair, spec.multiplier())
                            .map_err(stats_err)?;
                        (rate.estimate, rate.method.map(|m| m.label()))
                    };
                    figures.push(estimate.as_ref());
                    methods.push(method);
                }
                Ok((figures, methods))
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        let mut figures = Figures::with_capacity(nums.len());
        let mut methods = Vec::with_capacity(nums.len());
        for (run_figures, run_methods) in runs {
            figures.append(run_figures);
            methods.extend(run_methods);
        }
        rows.push_block(spec, &keys, nums, dens, figures, methods)?;
    }
    Ok(())
}

/// The key columns of an indicators block (and of the sums it is made from), in the published
/// order.
const KEYS: [&str; 4] = [
    schema::FOOTPRINT_KIND,
    schema::FOOTPRINT_CODE,
    BREAKDOWN,
    BREAKDOWN_VALUE,
];

/// The key columns of `frame`, shared (not copied) with it.
fn key_columns(frame: &DataFrame) -> PolarsResult<Vec<Column>> {
    KEYS.iter()
        .map(|name| frame.column(name).cloned())
        .collect()
}

/// A numeric column as plain values, missing as 0.
fn zero_filled(frame: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    super::f64_values(frame, name, 0.0)
}

fn stats_err(e: crate::stats::StatsError) -> PolarsError {
    polars_err!(ComputeError: "{e}")
}

/// DSR rows: each footprint × breakdown value's sums over the 19 ESP2013 bands, standardised.
fn dsr_rows(
    by_band: &roll_up::BandSums,
    indicators: &[PreparedIndicator],
    esp2013: &[f64; 19],
    pair: &[Confidence],
    rows: &mut IndicatorRows,
) -> PolarsResult<()> {
    let key_cols = key_columns(&by_band.keys)?;
    for (j, &i) in by_band.indicators().iter().enumerate() {
        let indicator = &indicators[i];
        let estimates: Vec<(f64, f64, Option<crate::stats::Estimate>)> = (0..by_band.keys.height())
            .into_par_iter()
            .map(|row| {
                let (x_bands, n_bands) =
                    (by_band.bands(j, row, false), by_band.bands(j, row, true));
                // Bands with no eligible people carry no information; the reference needs n > 0.
                let used: Vec<usize> = (0..ESP2013_BANDS.len())
                    .filter(|&b| n_bands[b] > 0.0)
                    .collect();
                let xs: Vec<f64> = used.iter().map(|&b| x_bands[b]).collect();
                let ns: Vec<f64> = used.iter().map(|&b| n_bands[b]).collect();
                let total_x: f64 = x_bands.iter().sum();
                let total_n: f64 = n_bands.iter().sum();
                if used.is_empty() {
                    return Ok((total_x, total_n, None));
                }
                let ws: Vec<f64> = used
                    .iter()
                    .map(|&b| esp2013.get(b).copied().unwrap_or(0.0))
                    .collect();
                let estimate =
                    crate::stats::dsr::dsr(&xs, &ns, &ws, pair, indicator.spec.multiplier())
                        .map_err(stats_err)?
                        .estimate;
                Ok((total_x, total_n, estimate))
            })
            .collect::<PolarsResult<_>>()?;
        let mut nums = Vec::with_capacity(estimates.len());
        let mut dens = Vec::with_capacity(estimates.len());
        let mut figures = Figures::with_capacity(estimates.len());
        for (x, n, estimate) in &estimates {
            nums.push(*x);
            dens.push(*n);
            figures.push(estimate.as_ref());
        }
        let methods = vec![Some("Dobson"); estimates.len()];
        rows.push_block(&indicator.spec, &key_cols, nums, dens, figures, methods)?;
    }
    Ok(())
}

/// Rows estimated together in one task of [`estimate_rows`]: enough to outweigh a task's cost,
/// few enough that the runs spread over the cores.
const ESTIMATE_RUN: usize = 16_384;

/// A block's figures as columns, one entry a row: the value and the lower and upper limits at
/// the two published levels (95%, then 99.8%), `NaN` where there is no estimate or limit.
pub(crate) struct Figures {
    value: Vec<f64>,
    limits: [Vec<f64>; 4],
}

impl Figures {
    fn with_capacity(rows: usize) -> Figures {
        Figures {
            value: Vec::with_capacity(rows),
            limits: std::array::from_fn(|_| Vec::with_capacity(rows)),
        }
    }

    /// Add a row's figures from its estimate, if any.
    fn push(&mut self, estimate: Option<&crate::stats::Estimate>) {
        self.value.push(estimate.map_or(f64::NAN, |e| e.value));
        for (i, column) in self.limits.iter_mut().enumerate() {
            let limit = estimate.and_then(|e| e.limits.get(i / 2));
            column.push(limit.map_or(f64::NAN, |l| if i % 2 == 0 { l.lower } else { l.upper }));
        }
    }

    /// Add the rows of `other` after these.
    fn append(&mut self, mut other: Figures) {
        self.value.append(&mut other.value);
        for (column, more) in self.limits.iter_mut().zip(&mut other.limits) {
            column.append(more);
        }
    }
}

/// Rows of the `indicators` table, a block of columns per indicator (the key columns are shared
/// with the frame they came from, not copied row by row). Each block is in key order, so the
/// published order needs only the blocks ordered by indicator: sorting the whole table by
/// [`sort_indicators`] compares strings and gathers every column of millions of rows.
#[derive(Default)]
pub struct IndicatorRows {
    /// Each block's indicator id and rows.
    blocks: Vec<(String, DataFrame)>,
}

impl IndicatorRows {
    /// Add one indicator's rows: `keys` are footprint kind, code, breakdown and breakdown value
    /// (one entry per row, like the other arguments).
    ///
    /// # Errors
    /// If the lengths differ.
    pub(crate) fn push_block(
        &mut self,
        spec: &IndicatorSpec,
        keys: &[Column],
        numerator: Vec<f64>,
        denominator: Vec<f64>,
        figures: Figures,
        method: Vec<Option<&'static str>>,
    ) -> PolarsResult<()> {
        let n = numerator.len();
        // Missing where not finite: each column is built from its values and a validity mask,
        // not from options appended one at a time (a tenth of measure's samples at 1M).
        let finite = |name: &str, values: Vec<f64>| -> Column {
            let validity: polars_arrow::bitmap::Bitmap =
                values.iter().map(|v| v.is_finite()).collect();
            Float64Chunked::from_vec_validity(name.into(), values, Some(validity)).into_column()
        };
        let Figures {
            value,
            limits: [lower_95, upper_95, lower_998, upper_998],
        } = figures;
        let text = |name: &str, value: &str| {
            Column::new_scalar(
                name.into(),
                Scalar::new(DataType::String, AnyValue::StringOwned(value.into())),
                n,
            )
        };
        let kind = match spec.kind {
            IndicatorType::Proportion => "proportion",
            IndicatorType::Rate => "rate",
            IndicatorType::Dsr => "dsr",
        };
        let mut columns = vec![
            text(schema::INDICATOR, &spec.id),
            text(schema::INDICATOR_NAME, &spec.name),
            text(INDICATOR_TYPE, kind),
        ];
        for key in keys {
            columns.push(key.cast(&DataType::String)?);
        }
        columns.extend([
            Column::new(schema::NUMERATOR.into(), numerator),
            Column::new(schema::DENOMINATOR.into(), denominator),
            finite(schema::VALUE, value),
            finite(schema::LOWER_CL_95, lower_95),
            finite(schema::UPPER_CL_95, upper_95),
            finite(schema::LOWER_CL_998, lower_998),
            finite(schema::UPPER_CL_998, upper_998),
            Column::new(METHOD.into(), method),
        ]);
        self.blocks
            .push((spec.id.clone(), DataFrame::new(n, columns)?));
        Ok(())
    }

    /// Add the blocks of `other` (e.g. the practice-level indicators).
    pub fn append(&mut self, other: IndicatorRows) {
        self.blocks.extend(other.blocks);
    }

    /// The table in the published order ([`sort_indicators`]): the blocks ordered by
    /// indicator, stably, each already in key order.
    ///
    /// # Errors
    /// If the blocks' columns differ (an internal error).
    pub fn into_frame(mut self) -> PolarsResult<DataFrame> {
        self.blocks.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut blocks = self.blocks.into_iter().map(|(_, block)| block);
        let Some(mut table) = blocks.next() else {
            return empty_block();
        };
        // The blocks stay chunks of their own: the table is written row group by row group
        // and the gradient reads a filtered copy, so copying its 8M rows into one chunk paid
        // for nothing and raised the run's peak by 0.5–0.7 GiB at 1M and 10M patients
        // (benches/RESULTS.md, thirty-fourth round).
        for block in blocks {
            table.vstack_mut_owned(block)?;
        }
        Ok(table)
    }
}

/// The `indicators` columns with no rows.
fn empty_block() -> PolarsResult<DataFrame> {
    let text = |name: &str| Column::new_empty(name.into(), &DataType::String);
    let number = |name: &str| Column::new_empty(name.into(), &DataType::Float64);
    DataFrame::new(
        0,
        vec![
            text(schema::INDICATOR),
            text(schema::INDICATOR_NAME),
            text(INDICATOR_TYPE),
            text(schema::FOOTPRINT_KIND),
            text(schema::FOOTPRINT_CODE),
            text(BREAKDOWN),
            text(BREAKDOWN_VALUE),
            number(schema::NUMERATOR),
            number(schema::DENOMINATOR),
            number(schema::VALUE),
            number(schema::LOWER_CL_95),
            number(schema::UPPER_CL_95),
            number(schema::LOWER_CL_998),
            number(schema::UPPER_CL_998),
            text(METHOD),
        ],
    )
}

/// A footprint kind's place in [`LEVELS`] (England first; an unknown kind last), for sorting
/// tables by level.
pub fn level_order() -> Expr {
    col(schema::FOOTPRINT_KIND).replace_strict(
        lit(Series::new("from".into(), LEVELS)),
        lit(Series::new("to".into(), [0i32, 1, 2, 3])),
        Some(lit(9i32)),
        Some(DataType::Int32),
    )
}

/// Sort rows by indicator, level (England first), footprint, breakdown, and value (numeric
/// values in number order): the published order. The pipeline gets it block by block
/// ([`IndicatorRows::into_frame`]).
///
/// # Errors
/// If a key column is missing.
pub fn sort_indicators(table: DataFrame) -> PolarsResult<DataFrame> {
    sorted_by(table.lazy(), std::iter::once(col(schema::INDICATOR)))
}

/// The rows of one indicator in the published order (see [`sort_indicators`]).
fn in_key_order(rows: LazyFrame) -> PolarsResult<DataFrame> {
    sorted_by(rows, std::iter::empty())
}

/// Every breakdown in the published order: `all`, then [`BREAKDOWNS`]; another breakdown
/// comes after them all ([`BREAKDOWN_UNKNOWN_RANK`]).
fn breakdowns_in_order() -> impl Iterator<Item = &'static str> {
    std::iter::once(ALL).chain(BREAKDOWNS)
}

/// The place of a breakdown not in [`breakdowns_in_order`]: last.
const BREAKDOWN_UNKNOWN_RANK: usize = 99;

/// The published order of a breakdown's values (nulls last): numeric ones by number, then the
/// rest by their text.
fn value_order() -> [Expr; 2] {
    [
        col(BREAKDOWN_VALUE).cast(DataType::Int64),
        col(BREAKDOWN_VALUE),
    ]
}

/// Sort by `first`, then by the key columns in the published order.
fn sorted_by(rows: LazyFrame, first: impl IntoIterator<Item = Expr>) -> PolarsResult<DataFrame> {
    let breakdown_order = col(BREAKDOWN).replace_strict(
        lit(Series::new(
            "from".into(),
            breakdowns_in_order().collect::<Vec<_>>(),
        )),
        lit(Series::new(
            "to".into(),
            (0..=BREAKDOWNS.len() as i32).collect::<Vec<_>>(),
        )),
        Some(lit(BREAKDOWN_UNKNOWN_RANK as i32)),
        Some(DataType::Int32),
    );
    let keys: Vec<Expr> = first
        .into_iter()
        .chain([level_order(), col(schema::FOOTPRINT_CODE), breakdown_order])
        .chain(value_order())
        .collect();
    rows.sort_by_exprs(
        keys,
        SortMultipleOptions::default()
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
    .collect()
}

/// The ESP2013 weights in band order, from the `esp2013` input when given (matched by label),
/// else the published vector.
///
/// # Errors
/// If the input lacks a band.
pub fn esp2013_weights(esp: Option<LazyFrame>) -> Result<[f64; 19], UserError> {
    let mut weights = crate::stats::dsr::ESP2013;
    let Some(esp) = esp else { return Ok(weights) };
    let df = esp
        .collect()
        .map_err(|e| UserError(format!("reading the standard population: {e}")))?;
    let bands = df
        .column(schema::AGE_BAND)
        .and_then(|c| c.str().cloned())
        .map_err(|e| UserError(format!("standard population: {e}")))?;
    let values = df
        .column(schema::STANDARD_POPULATION)
        .and_then(|c| c.f64().cloned())
        .map_err(|e| UserError(format!("standard population: {e}")))?;
    for (i, label) in ESP2013_BANDS.iter().enumerate() {
        // "90 +" and "90+" are the same band.
        let normalise = |s: &str| s.replace(' ', "");
        let found = (0..df.height()).find(|&r| {
            bands
                .get(r)
                .is_some_and(|b| normalise(b) == normalise(label))
        });
        match (found.and_then(|r| values.get(r)), weights.get_mut(i)) {
            (Some(w), Some(slot)) => *slot = w,
            _ => {
                return Err(UserError(format!(
                    "the standard population has no age band `{label}` (it needs the 19 ESP2013 bands 0-4 … 85-89, 90+)"
                )));
            }
        }
    }
    Ok(weights)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A proportion indicator named `id`, for tests (here and in the gradient's).
    pub(crate) fn proportion(id: &str) -> IndicatorSpec {
        IndicatorSpec {
            id: id.to_string(),
            name: format!("{id}, in words"),
            kind: IndicatorType::Proportion,
            numerator: "x".into(),
            denominator: None,
            multiplier: None,
            polarity: Polarity::HighIsGood,
            unit: None,
        }
    }

    #[test]
    fn levels_and_breakdowns_must_be_known_and_listed_once() {
        assert!(MeasureConfig::default().check().is_ok());
        let with = |levels: &[&str], breakdowns: &[&str]| MeasureConfig {
            levels: levels.iter().map(ToString::to_string).collect(),
            breakdowns: breakdowns.iter().map(ToString::to_string).collect(),
        };
        let error = |config: MeasureConfig| config.check().expect_err("refused").0;
        assert_eq!(
            error(with(&["pcn"], &["sex", "imd_decile", "sex"])),
            "measure.breakdowns: `sex` is listed twice (entries 1 and 3)"
        );
        assert_eq!(
            error(with(&["pcn", "icb", "pcn"], &[])),
            "measure.levels: `pcn` is listed twice (entries 1 and 3)"
        );
        assert!(error(with(&["pcn"], &["postcode"])).contains("unknown breakdown `postcode`"));
    }

    /// Sums in a shuffled order, with every kind of key the published order ranks: levels
    /// (and an unknown one), codes, breakdowns (and one outside the list), numeric values
    /// (`10` after `9`), text values and a missing value.
    fn shuffled_sums(specs: usize) -> DataFrame {
        let kinds = ["practice", "england", "pcn", "elsewhere", "icb"];
        let breakdowns = [
            SEGMENT,
            ALL,
            schema::IMD_DECILE,
            "practice_deprivation_decile",
        ];
        let values = [
            Some("10"),
            Some("9"),
            Some("Unknown"),
            None,
            Some("2"),
            Some("Core20"),
        ];
        let mut key: [Vec<Option<String>>; 4] = Default::default();
        let mut sums: Vec<Vec<f64>> = vec![Vec::new(); 2 * specs];
        let mut row = 0u64;
        for kind in kinds {
            for code in ["Y02", "E54", "Q01"] {
                for breakdown in breakdowns {
                    for value in values {
                        // A fixed scramble of the row number, so sums differ by row.
                        row = (row * 7919 + 13) % 10_007;
                        key[0].push(Some(kind.to_string()));
                        key[1].push(Some(format!("{code}{}", row % 3)));
                        key[2].push(Some(breakdown.to_string()));
                        key[3].push(value.map(str::to_string));
                        for (i, column) in sums.iter_mut().enumerate() {
                            let den = 50.0 + (row % 97) as f64;
                            column.push(if i % 2 == 0 { den } else { (row % 50) as f64 });
                        }
                    }
                }
            }
        }
        // Reverse, so no part of the input is already in order.
        let mut columns: Vec<Column> = KEYS
            .iter()
            .zip(key)
            .map(|(name, mut values)| {
                values.reverse();
                Column::new((*name).into(), values)
            })
            .collect();
        for i in 0..specs {
            let mut den = sums[2 * i].clone();
            let mut num = sums[2 * i + 1].clone();
            den.reverse();
            num.reverse();
            columns.push(Column::new(den_column(i).into(), den));
            columns.push(Column::new(num_column(i).into(), num));
        }
        DataFrame::new_infer_height(columns).expect("sums")
    }

    /// A figures column of a table, missing as `None`.
    fn float_column(table: &DataFrame, name: &str) -> Vec<Option<f64>> {
        table
            .column(name)
            .expect(name)
            .f64()
            .expect("f64")
            .iter()
            .collect()
    }

    /// A block's value and limits are missing where there is no estimate or the figure is not
    /// finite, and are the estimate's figures elsewhere.
    #[test]
    fn a_block_is_missing_where_there_is_no_finite_figure() {
        use crate::stats::{Estimate, Limits};
        let keys: Vec<Column> = KEYS
            .iter()
            .map(|name| Column::new((*name).into(), ["a", "b", "c"]))
            .collect();
        let limits = |lower: f64, upper: f64| Limits { lower, upper };
        let estimates = [
            Some(Estimate {
                value: 12.5,
                limits: smallvec::smallvec![limits(10.0, 15.0), limits(9.0, 17.0)],
            }),
            None,
            Some(Estimate {
                value: f64::NAN,
                limits: smallvec::smallvec![
                    limits(f64::NEG_INFINITY, 1.0),
                    limits(0.5, f64::INFINITY)
                ],
            }),
        ];
        let mut figures = Figures::with_capacity(estimates.len());
        for estimate in &estimates {
            figures.push(estimate.as_ref());
        }
        let mut rows = IndicatorRows::default();
        rows.push_block(
            &proportion("p"),
            &keys,
            vec![1.0, 0.0, 2.0],
            vec![8.0, 0.0, 3.0],
            figures,
            vec![Some("Wilson"), None, Some("Wilson")],
        )
        .expect("block");
        let table = rows.into_frame().expect("table");
        let figures = |name: &str| float_column(&table, name);
        assert_eq!(figures(schema::VALUE), [Some(12.5), None, None]);
        assert_eq!(figures(schema::LOWER_CL_95), [Some(10.0), None, None]);
        assert_eq!(figures(schema::UPPER_CL_95), [Some(15.0), None, Some(1.0)]);
        assert_eq!(figures(schema::LOWER_CL_998), [Some(9.0), None, Some(0.5)]);
        assert_eq!(figures(schema::UPPER_CL_998), [Some(17.0), None, None]);
        assert_eq!(
            figures(schema::DENOMINATOR),
            [Some(8.0), Some(0.0), Some(3.0)]
        );
    }

    /// Rows estimated in runs, side by side, are each row's own estimate, in order, across
    /// the runs' ends.
    #[test]
    fn estimates_over_many_runs_are_each_rows_own() {
        let n = 2 * ESTIMATE_RUN + 5;
        let (x, d): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|i| {
                let d = if i % 1_000 == 7 {
                    0.0
                } else {
                    (10 + i % 37) as f64
                };
                ((i % 11) as f64, d)
            })
            .unzip();
        let codes: Vec<String> = (0..n).map(|i| format!("P{i:06}")).collect();
        let flat = DataFrame::new(
            n,
            vec![
                Column::new(schema::FOOTPRINT_KIND.into(), vec!["practice"; n]),
                Column::new(schema::FOOTPRINT_CODE.into(), codes),
                Column::new(BREAKDOWN.into(), vec![ALL; n]),
                Column::new(BREAKDOWN_VALUE.into(), vec!["All"; n]),
                Column::new(num_column(0).into(), x.clone()),
                Column::new(den_column(0).into(), d.clone()),
            ],
        )
        .expect("sums");
        let spec = proportion("p");
        let pair = reference_levels().expect("levels");
        let mut rows = IndicatorRows::default();
        estimate_rows(&flat, &[&spec], &pair, &mut rows).expect("rows");
        let table = rows.into_frame().expect("table");
        let (value, lower_998) = (
            float_column(&table, schema::VALUE),
            float_column(&table, schema::LOWER_CL_998),
        );
        let methods: Vec<Option<&str>> = table
            .column(METHOD)
            .expect("method")
            .str()
            .expect("text")
            .iter()
            .collect();
        for row in 0..n {
            let own =
                crate::stats::proportion::proportion(x[row], d[row], &pair, spec.multiplier())
                    .ok()
                    .flatten();
            assert_eq!(value[row], own.as_ref().map(|e| e.value), "row {row}");
            assert_eq!(
                lower_998[row],
                own.as_ref().map(|e| e.limits[1].lower),
                "row {row}"
            );
            assert_eq!(methods[row], own.is_some().then_some("Wilson"), "row {row}");
        }
    }

    #[test]
    fn blocks_in_indicator_order_are_the_whole_table_sorted() {
        let specs = [proportion("smoking"), proportion("bp_controlled")];
        let refs: Vec<&IndicatorSpec> = specs.iter().collect();
        let pair = reference_levels().expect("levels");
        let mut rows = IndicatorRows::default();
        estimate_rows(&shuffled_sums(2), &refs, &pair, &mut rows).expect("rows");
        // A later source (the practice-level indicators) whose id sorts between them.
        let practice = [proportion("diabetes")];
        let practice_refs: Vec<&IndicatorSpec> = practice.iter().collect();
        let mut practice_rows = IndicatorRows::default();
        estimate_rows(&shuffled_sums(1), &practice_refs, &pair, &mut practice_rows)
            .expect("practice rows");
        rows.append(practice_rows);

        let mut stacked = empty_block().expect("empty");
        for (_, block) in &rows.blocks {
            stacked.vstack_mut(block).expect("stack");
        }
        let expected = sort_indicators(stacked).expect("sorted");
        let got = rows.into_frame().expect("table");
        assert_eq!(got.height(), 3 * 5 * 3 * 4 * 6);
        assert!(
            got.equals_missing(&expected),
            "block order differs from the sorted table:\n{got}\n{expected}"
        );
        let first: Vec<Option<&str>> = got
            .column(schema::INDICATOR)
            .expect("ids")
            .str()
            .expect("text")
            .iter()
            .step_by(360)
            .collect();
        assert_eq!(
            first,
            [Some("bp_controlled"), Some("diabetes"), Some("smoking")]
        );
    }
}
