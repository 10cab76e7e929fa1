//! The slope and relative indices of inequality (SII, RII) with simulated confidence limits
//! (PHEindicatormethods `phe_sii`), for one area or a batch of areas in parallel.
//!
//! This file owns the method: validation in the reference's words, the population-weighted
//! regression on relative rank, point estimates, and how simulated slopes become limits
//! (including the reference's sign and swap quirks). The simulation engine (random streams,
//! kernels, order statistics) is in `simulation.rs`.
//!
//! Whole-data rules of the reference (the number of quantile labels over all groups, dropping
//! groups that lack a label) are in [`screen_groups`]; [`sii`] and [`sii_batch`] work on
//! areas that passed it.

use rayon::prelude::*;

use super::precision::{Confidence, Z_95};
use super::simulation::{
    self, BackTransform, Design, Simulation, area_rng, order_positions, order_statistics,
};
use super::{Argument, Limits, StatsError};

/// The reference's default number of repetitions.
pub const DEFAULT_REPETITIONS: usize = 100_000;

/// The fewest repetitions the reference accepts.
pub const MIN_REPETITIONS: usize = 1000;

/// Reliability mode simulates this many times the repetitions, in blocks.
pub const RELIABILITY_BLOCKS: usize = 10;

/// Allowed number of distinct quantile labels.
pub const QUANTILE_RANGE: std::ops::RangeInclusive<usize> = 5..=100;

/// Above this many quantiles the reference warns that small values can make the SII unstable.
pub const MANY_QUANTILES: usize = 10;

/// What kind of value is regressed (the reference's `value_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// 0: any other value (e.g. life expectancy), simulated on its own scale.
    Other,
    /// 1: a rate, simulated on the log scale.
    Rate,
    /// 2: a proportion between 0 and 1, simulated on the logit scale.
    Proportion,
}

impl ValueType {
    /// From the reference's code 0, 1 or 2.
    ///
    /// # Errors
    /// "value_type should be 0, 1 or 2".
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::sii::ValueType;
    /// assert_eq!(ValueType::from_code(1)?, ValueType::Rate);
    /// assert!(ValueType::from_code(3).is_err());
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn from_code(code: i64) -> Result<Self, StatsError> {
        match code {
            0 => Ok(ValueType::Other),
            1 => Ok(ValueType::Rate),
            2 => Ok(ValueType::Proportion),
            _ => Err(StatsError::new(
                Argument::ValueType,
                "value_type should be 0, 1 or 2",
            )),
        }
    }

    /// f, the transform to the simulation scale: identity, ln or logit.
    fn forward(self, v: f64) -> f64 {
        match self {
            ValueType::Other => v,
            ValueType::Rate => v.ln(),
            ValueType::Proportion => (v / (1.0 - v)).ln(),
        }
    }

    /// g = f⁻¹: identity, exp or logistic.
    fn inverse(self, y: f64) -> f64 {
        match self {
            ValueType::Other => y,
            ValueType::Rate => y.exp(),
            ValueType::Proportion => y.exp() / (1.0 + y.exp()),
        }
    }

    fn back_transform(self) -> BackTransform {
        match self {
            ValueType::Other => BackTransform::Identity,
            ValueType::Rate => BackTransform::Exp,
            ValueType::Proportion => BackTransform::Logistic,
        }
    }
}

/// The values of an area's quantiles.
#[derive(Debug, Clone, Copy)]
pub enum SiiValues<'a> {
    /// The indicator value per quantile (`value`).
    Value(&'a [f64]),
    /// For proportions only: counts x, with value = x / population (`x`).
    Count(&'a [f64]),
}

/// The uncertainty of each quantile's value.
#[derive(Debug, Clone, Copy)]
pub enum SiiSpread<'a> {
    /// Standard errors on the simulation scale (`se`), used unchanged.
    StandardError(&'a [f64]),
    /// 95% confidence limits of each value (`lower_cl`, `upper_cl`); the SE on the simulation
    /// scale is (f(upper) − f(lower)) / (2 · 1.959963984540054).
    Limits {
        /// Lower 95% limits.
        lower: &'a [f64],
        /// Upper 95% limits.
        upper: &'a [f64],
    },
}

/// One area: one row per quantile (in any order). Missing values are `NaN`.
#[derive(Debug, Clone, Copy)]
pub struct SiiArea<'a> {
    /// Quantile labels; quantile 1 (the lowest label) should be the most deprived.
    pub quantile: &'a [f64],
    /// Population of each quantile.
    pub population: &'a [f64],
    /// Values (or counts for proportions).
    pub values: SiiValues<'a>,
    /// Standard errors or 95% limits.
    pub spread: SiiSpread<'a>,
}

/// Settings shared by every area of a batch (the reference's arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct SiiOptions {
    /// Value type (`value_type`).
    pub value_type: ValueType,
    /// Regress on the transformed scale (`transform`); needs a rate or proportion with limits.
    pub transform: bool,
    /// Multiplies the SII; a negative one flips its sign (`multiplier`, default 1).
    pub multiplier: f64,
    /// Levels for the simulated limits, any number (`confidence`, default 95%).
    pub confidence: Vec<Confidence>,
    /// Repetitions R (`repetitions`, default 100,000, at least 1000).
    pub repetitions: usize,
    /// Also estimate the RII and its limits (`rii`).
    pub rii: bool,
    /// Simulate 10·R and report the mean absolute difference between blocks (`reliability_stat`).
    pub reliability: bool,
}

impl SiiOptions {
    /// The reference's defaults for a value type: no transform, multiplier 1, 95%, 100,000
    /// repetitions, no RII, no reliability statistic.
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::sii::{SiiOptions, ValueType};
    /// let options = SiiOptions::new(ValueType::Rate);
    /// assert_eq!(options.repetitions, 100_000);
    /// ```
    pub fn new(value_type: ValueType) -> Self {
        SiiOptions {
            value_type,
            transform: false,
            multiplier: 1.0,
            confidence: Confidence::new(0.95).into_iter().collect(),
            repetitions: DEFAULT_REPETITIONS,
            rii: false,
            reliability: false,
        }
    }

    /// Check the argument values, in the reference's words.
    ///
    /// # Errors
    /// - multiplier not a number: "multiplier, repetitions and confidence inputs should be numeric"
    /// - repetitions < 1000: "number of repetitions must be 1000 or greater. Default is 100,000"
    /// - transform with value type 0: "value_type should be 1 or 2 when transform is true"
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::sii::{SiiOptions, ValueType};
    /// let mut options = SiiOptions::new(ValueType::Other);
    /// options.repetitions = 999;
    /// assert!(options.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StatsError> {
        if !self.multiplier.is_finite() {
            return Err(StatsError::new(
                Argument::Multiplier,
                "multiplier, repetitions and confidence inputs should be numeric",
            ));
        }
        if self.repetitions < MIN_REPETITIONS {
            return Err(StatsError::new(
                Argument::Repetitions,
                "number of repetitions must be 1000 or greater. Default is 100,000",
            ));
        }
        if self.transform && self.value_type == ValueType::Other {
            return Err(StatsError::new(
                Argument::ValueType,
                "value_type should be 1 or 2 when transform is true",
            ));
        }
        Ok(())
    }

    /// The reference's output column names after the group columns, in its order, given
    /// whether the intercept is wanted: `sii`, `rii`, limits, MAD columns, `intercept`.
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::sii::{SiiOptions, ValueType};
    /// let mut options = SiiOptions::new(ValueType::Other);
    /// options.rii = true;
    /// assert_eq!(options.output_columns(false), ["sii", "rii", "sii_lower95_0cl",
    ///     "sii_upper95_0cl", "rii_lower95_0cl", "rii_upper95_0cl"]);
    /// ```
    pub fn output_columns(&self, intercept: bool) -> Vec<String> {
        let mut columns = vec!["sii".to_string()];
        if self.rii {
            columns.push("rii".into());
        }
        let suffixes: Vec<String> = self.confidence.iter().map(|c| c.column_suffix()).collect();
        if self.transform {
            for s in &suffixes {
                columns.push(format!("sii_lower{s}cl"));
                columns.push(format!("sii_upper{s}cl"));
                if self.rii {
                    columns.push(format!("rii_lower{s}cl"));
                    columns.push(format!("rii_upper{s}cl"));
                }
            }
        } else {
            for s in &suffixes {
                columns.push(format!("sii_lower{s}cl"));
                columns.push(format!("sii_upper{s}cl"));
            }
            if self.rii {
                for s in &suffixes {
                    columns.push(format!("rii_lower{s}cl"));
                    columns.push(format!("rii_upper{s}cl"));
                }
            }
        }
        if self.reliability {
            columns.extend(suffixes.iter().map(|s| format!("sii_mad{s}cl")));
            if self.rii {
                columns.extend(suffixes.iter().map(|s| format!("rii_mad{s}cl")));
            }
        }
        if intercept {
            columns.push("intercept".into());
        }
        columns
    }
}

/// The SII, RII and their limits for one area.
#[derive(Debug, Clone, PartialEq)]
pub struct SiiResult {
    /// Slope index of inequality (multiplied by the multiplier).
    pub sii: f64,
    /// Relative index of inequality (when requested).
    pub rii: Option<f64>,
    /// Fitted value at the most deprived end (relative rank 0); back-transformed and multiplied
    /// by |multiplier| when `transform` is set.
    pub intercept: f64,
    /// SII limits, one per level.
    pub sii_limits: Vec<Limits>,
    /// RII limits, one per level (empty unless requested).
    pub rii_limits: Vec<Limits>,
    /// Reliability: mean absolute difference of the SII limits of blocks 2–10 from block 1, one
    /// per level (empty unless requested).
    pub sii_mad: Vec<f64>,
    /// The same for the RII limits.
    pub rii_mad: Vec<f64>,
}

impl SiiResult {
    /// The values in the order of [`SiiOptions::output_columns`].
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::sii::{sii, SiiArea, SiiOptions, SiiSpread, SiiValues, ValueType};
    /// let options = SiiOptions::new(ValueType::Other);
    /// let area = SiiArea { quantile: &[1.0, 2.0, 3.0, 4.0, 5.0], population: &[100.0; 5],
    ///     values: SiiValues::Value(&[10.0, 12.0, 14.0, 16.0, 18.0]),
    ///     spread: SiiSpread::StandardError(&[0.5; 5]) };
    /// let result = sii(&area, &options, 1, 0)?;
    /// assert_eq!(result.output_values(&options, false).len(), 3);
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn output_values(&self, options: &SiiOptions, intercept: bool) -> Vec<f64> {
        let mut values = vec![self.sii];
        if let Some(rii) = self.rii {
            values.push(rii);
        }
        if options.transform {
            for (i, limits) in self.sii_limits.iter().enumerate() {
                values.extend([limits.lower, limits.upper]);
                if let Some(r) = self.rii_limits.get(i) {
                    values.extend([r.lower, r.upper]);
                }
            }
        } else {
            for limits in self.sii_limits.iter().chain(&self.rii_limits) {
                values.extend([limits.lower, limits.upper]);
            }
        }
        values.extend(&self.sii_mad);
        values.extend(&self.rii_mad);
        if intercept {
            values.push(self.intercept);
        }
        values
    }
}

/// The outcome of the reference's whole-data checks on quantile labels.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupScreen {
    /// The distinct labels present anywhere in the data, ascending.
    pub labels: Vec<f64>,
    /// Whether each group has every label (only those groups get an SII).
    pub keep: Vec<bool>,
    /// More than 10 quantiles: the reference warns "Small values can make SII unstable when
    /// using a large number of quantiles".
    pub many_quantiles: bool,
}

impl GroupScreen {
    /// How many groups were dropped (the reference warns "some records have been removed due
    /// to incomplete or invalid data").
    pub fn dropped(&self) -> usize {
        self.keep.iter().filter(|k| !**k).count()
    }
}

/// The reference's whole-data rules: count the distinct quantile labels over all groups (of
/// rows with usable data), require 5–100 of them, and keep only the groups that have every
/// label.
///
/// # Errors
/// "Number of quantiles must be between 5 and 100" (also for a missing label).
///
/// # Examples
/// ```
/// use healthgap::stats::sii::screen_groups;
/// let full = [1.0, 2.0, 3.0, 4.0, 5.0];
/// let screen = screen_groups(&[&full, &full[..4]])?;
/// assert_eq!(screen.keep, [true, false]);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn screen_groups(group_quantiles: &[&[f64]]) -> Result<GroupScreen, StatsError> {
    let quantile_error = || {
        StatsError::new(
            Argument::Quantile,
            "Number of quantiles must be between 5 and 100",
        )
    };
    let mut labels: Vec<f64> = group_quantiles
        .iter()
        .flat_map(|g| g.iter().copied())
        .collect();
    if labels.iter().any(|q| q.is_nan()) {
        return Err(quantile_error());
    }
    labels.sort_by(f64::total_cmp);
    labels.dedup();
    if !QUANTILE_RANGE.contains(&labels.len()) {
        return Err(quantile_error());
    }
    let keep = group_quantiles
        .iter()
        .map(|group| labels.iter().all(|label| group.contains(label)))
        .collect();
    Ok(GroupScreen {
        many_quantiles: labels.len() > MANY_QUANTILES,
        labels,
        keep,
    })
}

/// An area's rows after validation, sorted by quantile, on the simulation scale.
struct Prepared {
    design: Design,
    /// Response for the point estimate: value (transform off) or f(value) (transform on).
    response: Vec<f64>,
    /// Mean of the simulated draws: f(value).
    mean: Vec<f64>,
    /// SE of the draws on the transformed scale.
    sd: Vec<f64>,
}

fn check_lengths(area: &SiiArea<'_>) -> Result<usize, StatsError> {
    let rows = area.quantile.len();
    let values = match area.values {
        SiiValues::Value(v) | SiiValues::Count(v) => v.len(),
    };
    let spread_ok = match area.spread {
        SiiSpread::StandardError(se) => se.len() == rows,
        SiiSpread::Limits { lower, upper } => lower.len() == rows && upper.len() == rows,
    };
    if area.population.len() != rows || values != rows || !spread_ok {
        return Err(StatsError::general(
            "quantile, population, value and spread columns must have the same number of rows",
        ));
    }
    Ok(rows)
}

/// Validate one area against the reference's data-content conditions and set up the regression.
fn prepare(area: &SiiArea<'_>, options: &SiiOptions) -> Result<Prepared, StatsError> {
    let rows = check_lengths(area)?;
    if options.transform && matches!(area.spread, SiiSpread::StandardError(_)) {
        return Err(StatsError::new(
            Argument::Se,
            "function phe_sii requires se to be missing when transform is true",
        ));
    }
    if area.quantile.iter().any(|q| q.is_nan()) {
        return Err(StatsError::new(
            Argument::Quantile,
            "Number of quantiles must be between 5 and 100",
        ));
    }
    let mut labels: Vec<f64> = area.quantile.to_vec();
    labels.sort_by(f64::total_cmp);
    labels.dedup();
    if !QUANTILE_RANGE.contains(&labels.len()) {
        return Err(StatsError::new(
            Argument::Quantile,
            "Number of quantiles must be between 5 and 100",
        ));
    }
    if area.population.iter().any(|&p| p.is_nan() || p <= 0.0) {
        return Err(StatsError::new(
            Argument::Population,
            "some groups have a zero, negative or missing population",
        ));
    }
    let values: Vec<f64> = match area.values {
        SiiValues::Value(v) => v.to_vec(),
        SiiValues::Count(x) => {
            if options.value_type != ValueType::Proportion {
                return Err(StatsError::new(
                    Argument::X,
                    "x can only be used when value_type is 2 (a proportion)",
                ));
            }
            if x.iter().any(|&c| c.is_nan() || c <= 0.0) {
                return Err(StatsError::new(
                    Argument::X,
                    "some groups have a zero or negative count x",
                ));
            }
            x.iter().zip(area.population).map(|(x, p)| x / p).collect()
        }
    };
    // Not a documented reference condition: a missing value would make the whole SII NA.
    if values.iter().any(|v| v.is_nan()) {
        return Err(StatsError::new(
            Argument::Value,
            "some groups have missing values",
        ));
    }
    let value_type = options.value_type;
    match area.spread {
        SiiSpread::StandardError(se) => {
            if se.iter().any(|&s| s.is_nan() || s < 0.0) {
                return Err(StatsError::new(
                    Argument::Se,
                    "negative or missing standard errors in input dataset",
                ));
            }
        }
        SiiSpread::Limits { lower, upper } => {
            if let Some((argument, _)) = [(Argument::LowerCl, lower), (Argument::UpperCl, upper)]
                .into_iter()
                .find(|(_, cl)| cl.iter().any(|v| v.is_nan()))
            {
                return Err(StatsError::new(
                    argument,
                    "missing lower or upper confidence limits in input dataset",
                ));
            }
        }
    }
    if value_type == ValueType::Proportion {
        let outside = |v: &f64| !(0.0..=1.0).contains(v);
        if values.iter().any(outside) {
            return Err(StatsError::new(
                Argument::Value,
                "value proportions are not all between 0 and 1",
            ));
        }
        if let SiiSpread::Limits { lower, upper } = area.spread
            && let Some((argument, _)) = [(Argument::LowerCl, lower), (Argument::UpperCl, upper)]
                .into_iter()
                .find(|(_, cl)| cl.iter().any(outside))
        {
            return Err(StatsError::new(
                argument,
                "confidence limit proportions are not all between 0 and 1",
            ));
        }
    }

    // Sort rows by quantile label (stable, so duplicate labels keep their input order).
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by(|&i, &j| {
        let a = area.quantile.get(i).copied().unwrap_or(f64::NAN);
        let b = area.quantile.get(j).copied().unwrap_or(f64::NAN);
        a.total_cmp(&b)
    });
    let pick = |column: &[f64], i: usize| column.get(i).copied().unwrap_or(f64::NAN);
    let population: Vec<f64> = order.iter().map(|&i| pick(area.population, i)).collect();
    let values: Vec<f64> = order.iter().map(|&i| pick(&values, i)).collect();
    let sd: Vec<f64> = match area.spread {
        SiiSpread::StandardError(se) => order.iter().map(|&i| pick(se, i)).collect(),
        SiiSpread::Limits { lower, upper } => order
            .iter()
            .map(|&i| {
                let spread =
                    value_type.forward(pick(upper, i)) - value_type.forward(pick(lower, i));
                spread / (2.0 * Z_95)
            })
            .collect(),
    };

    // Population shares a and relative ranks b (cumulative midpoints).
    let total: f64 = population.iter().sum();
    let shares: Vec<f64> = population.iter().map(|p| p / total).collect();
    let mut before = 0.0;
    let ranks: Vec<f64> = shares
        .iter()
        .map(|a| {
            let mid = before + a / 2.0;
            before += a;
            mid
        })
        .collect();
    let mean: Vec<f64> = values.iter().map(|&v| value_type.forward(v)).collect();
    let response = if options.transform {
        mean.clone()
    } else {
        values
    };
    Ok(Prepared {
        design: Design::new(&shares, &ranks),
        response,
        mean,
        sd,
    })
}

/// Whether the reference swaps lower and upper limits (and inverts RIIs) for a transformed SII:
/// `multiplier < 1` for rates but `multiplier < 0` for proportions (a documented quirk).
fn transformed_flip(value_type: ValueType, multiplier: f64) -> bool {
    match value_type {
        ValueType::Rate => multiplier < 1.0,
        _ => multiplier < 0.0,
    }
}

/// The SII and RII of one area with simulated confidence limits (PHEindicatormethods
/// `phe_sii`; Low & Low 2004).
///
/// Method: sort the quantiles; population shares aₖ and relative ranks bₖ (cumulative
/// midpoints); weighted least squares of the value on (1, b) gives intercept β₁ and slope β₂.
/// Without `transform`, SII = β₂·multiplier and RII = (β₁+β₂)/β₁ (inverted for a negative
/// multiplier). With `transform` the regression is on ln or logit of the values and
/// SII = (g(β₁+β₂) − g(β₁))·multiplier. Limits: R repetitions draw every quantile's value from
/// Normal(f(value), SE) on the transformed scale (back-transformed when `transform` is off),
/// refit, and take the order statistics at round(R·(1−cv)) and round(R·cv) (halves to even).
/// With `transform` the simulated slopes are rebuilt symmetrically about the midpoint, with the
/// reference's swap when the multiplier flips the sign (`< 1` for rates, `< 0` for proportions).
///
/// The random stream is fixed by `seed` and `stream` (e.g. the area's index or
/// [`stream_for_key`]), so the same inputs always give the same limits.
///
/// # Errors
/// The option errors of [`SiiOptions::validate`]; "function phe_sii requires se to be missing
/// when transform is true"; "Number of quantiles must be between 5 and 100"; "some groups have a
/// zero, negative or missing population"; "negative or missing standard errors in input
/// dataset"; "missing lower or upper confidence limits in input dataset"; for proportions
/// "value proportions are not all between 0 and 1", "confidence limit proportions are not all
/// between 0 and 1" and "some groups have a zero or negative count x"; and (not reference
/// conditions) "some groups have missing values" and mismatched slice lengths.
///
/// # Examples
/// ```
/// use healthgap::stats::sii::{sii, SiiArea, SiiOptions, SiiSpread, SiiValues, ValueType};
/// // Values rising by 2 per quintile of equal population: the slope across the whole
/// // population is 4 quintile steps plus half a step at each end, i.e. 10.
/// let area = SiiArea { quantile: &[1.0, 2.0, 3.0, 4.0, 5.0], population: &[100.0; 5],
///     values: SiiValues::Value(&[10.0, 12.0, 14.0, 16.0, 18.0]),
///     spread: SiiSpread::StandardError(&[0.5; 5]) };
/// let result = sii(&area, &SiiOptions::new(ValueType::Other), 42, 0)?;
/// assert!((result.sii - 10.0).abs() < 1e-12);
/// assert!(result.sii_limits[0].lower < 10.0 && result.sii_limits[0].upper > 10.0);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn sii(
    area: &SiiArea<'_>,
    options: &SiiOptions,
    seed: u64,
    stream: u64,
) -> Result<SiiResult, StatsError> {
    options.validate()?;
    let prepared = prepare(area, options)?;
    let value_type = options.value_type;
    let multiplier = options.multiplier;
    let (b1, b2) = prepared.design.fit(&prepared.response);

    // Point estimates.
    let (sii_value, rii_value, intercept) = if options.transform {
        let (x0, x1) = (b1, b1 + b2);
        let (g0, g1) = (value_type.inverse(x0), value_type.inverse(x1));
        let rii = if multiplier < 0.0 { g0 / g1 } else { g1 / g0 };
        ((g1 - g0) * multiplier, rii, g0 * multiplier.abs())
    } else {
        let rii = (b1 + b2) / b1;
        let rii = if multiplier < 0.0 { 1.0 / rii } else { rii };
        (b2 * multiplier, rii, b1)
    };

    // Simulation.
    let repetitions = options.repetitions;
    let blocks = if options.reliability {
        RELIABILITY_BLOCKS
    } else {
        1
    };
    let total = repetitions * blocks;
    let (mut intercepts, mut slopes) = SIMULATED.take();
    for simulated in [&mut intercepts, &mut slopes] {
        simulated.resize(total, 0.0);
    }
    let back = if options.transform {
        BackTransform::Identity
    } else {
        value_type.back_transform()
    };
    let simulation = Simulation {
        design: &prepared.design,
        mean: &prepared.mean,
        sd: &prepared.sd,
        back,
    };
    simulation::simulate(
        &simulation,
        &mut area_rng(seed, stream),
        &mut intercepts,
        &mut slopes,
    );

    // Limits per block: simulated SII* and RII* (untransformed), or slopes (transformed).
    let positions: Vec<usize> = options
        .confidence
        .iter()
        .flat_map(|c| {
            let (lo, hi) = order_positions(repetitions, c.upper_probability());
            [lo, hi]
        })
        .collect();
    let mut block_sii: Vec<Vec<Limits>> = Vec::with_capacity(blocks);
    let mut block_rii: Vec<Vec<Limits>> = Vec::with_capacity(blocks);
    for (icpt, slope) in intercepts
        .chunks_mut(repetitions)
        .zip(slopes.chunks_mut(repetitions))
    {
        if options.transform {
            let stats = order_statistics(slope, &positions);
            let half = b1 + b2 / 2.0;
            let flip = transformed_flip(value_type, multiplier);
            let mut sii_limits = Vec::new();
            let mut rii_limits = Vec::new();
            for pair in stats.chunks_exact(2) {
                let ends = |s: f64| {
                    let g0 = value_type.inverse(half - s / 2.0);
                    let g1 = value_type.inverse(half + s / 2.0);
                    ((g1 - g0) * multiplier, g1 / g0)
                };
                let (s_lo, s_hi) = (pair.first().copied(), pair.get(1).copied());
                let (sii_l, rii_l) = ends(s_lo.unwrap_or(f64::NAN));
                let (sii_u, rii_u) = ends(s_hi.unwrap_or(f64::NAN));
                if flip {
                    sii_limits.push(Limits {
                        lower: sii_u,
                        upper: sii_l,
                    });
                    rii_limits.push(Limits {
                        lower: 1.0 / rii_u,
                        upper: 1.0 / rii_l,
                    });
                } else {
                    sii_limits.push(Limits {
                        lower: sii_l,
                        upper: sii_u,
                    });
                    rii_limits.push(Limits {
                        lower: rii_l,
                        upper: rii_u,
                    });
                }
            }
            block_sii.push(sii_limits);
            block_rii.push(if options.rii { rii_limits } else { Vec::new() });
        } else {
            simulation::indices_of_draws(icpt, slope, multiplier, options.rii);
            block_rii.push(if options.rii {
                pairs_to_limits(&order_statistics(icpt, &positions))
            } else {
                Vec::new()
            });
            block_sii.push(pairs_to_limits(&order_statistics(slope, &positions)));
        }
    }

    SIMULATED.set((intercepts, slopes));

    let (sii_mad, rii_mad) = if options.reliability {
        (
            mean_absolute_differences(&block_sii),
            mean_absolute_differences(&block_rii),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(SiiResult {
        sii: sii_value,
        rii: options.rii.then_some(rii_value),
        intercept,
        sii_limits: block_sii.into_iter().next().unwrap_or_default(),
        rii_limits: block_rii.into_iter().next().unwrap_or_default(),
        sii_mad,
        rii_mad,
    })
}

thread_local! {
    /// The thread's simulated intercepts and slopes, reused from area to area. The simulation
    /// writes every repetition's, so fresh ones zeroed for each area (1.6 MB for 100,000
    /// repetitions, 27,000 areas in a national run) were wasted work.
    static SIMULATED: std::cell::RefCell<(Vec<f64>, Vec<f64>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

fn pairs_to_limits(stats: &[f64]) -> Vec<Limits> {
    stats
        .chunks_exact(2)
        .map(|pair| Limits {
            lower: pair.first().copied().unwrap_or(f64::NAN),
            upper: pair.get(1).copied().unwrap_or(f64::NAN),
        })
        .collect()
}

/// Per level: the mean over blocks 2..10 and over both limits of |limit − block 1's limit|.
fn mean_absolute_differences(blocks: &[Vec<Limits>]) -> Vec<f64> {
    let Some((first, rest)) = blocks.split_first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(level, base)| {
            let diffs: Vec<f64> = rest
                .iter()
                .filter_map(|block| block.get(level))
                .flat_map(|l| [(l.lower - base.lower).abs(), (l.upper - base.upper).abs()])
                .collect();
            diffs.iter().sum::<f64>() / diffs.len().max(1) as f64
        })
        .collect()
}

/// The most areas a rayon job of an SII batch takes (an area's SII is about a millisecond at
/// 100,000 repetitions). Without a cap rayon splits a batch into a few long runs of areas, and
/// the last of them can keep one core busy for seconds while the other waits.
pub const SII_AREAS_PER_JOB: usize = 16;

/// [`sii`] for many areas in parallel (rayon), area i using random stream i, so the results
/// do not depend on the number of threads. Each area succeeds or fails on its own.
///
/// # Errors
/// None for the batch itself; each element carries that area's errors as [`sii`] does.
///
/// # Examples
/// ```
/// use healthgap::stats::sii::{sii_batch, SiiArea, SiiOptions, SiiSpread, SiiValues, ValueType};
/// let quantile = [1.0, 2.0, 3.0, 4.0, 5.0];
/// let area = SiiArea { quantile: &quantile, population: &[100.0; 5],
///     values: SiiValues::Value(&[10.0, 12.0, 14.0, 16.0, 18.0]),
///     spread: SiiSpread::StandardError(&[0.5; 5]) };
/// let mut options = SiiOptions::new(ValueType::Other);
/// options.repetitions = 1000;
/// let results = sii_batch(&[area, area], &options, 7);
/// assert_eq!(results.len(), 2);
/// assert!(results.iter().all(|r| r.as_ref().is_ok_and(|r| (r.sii - 10.0).abs() < 1e-12)));
/// ```
pub fn sii_batch(
    areas: &[SiiArea<'_>],
    options: &SiiOptions,
    seed: u64,
) -> Vec<Result<SiiResult, StatsError>> {
    areas
        .par_iter()
        .with_max_len(SII_AREAS_PER_JOB)
        .enumerate()
        .map(|(index, area)| sii(area, options, seed, index as u64))
        .collect()
}

/// A random-stream id for a text key (say an area code and indicator), for callers that want an
/// area's limits to be independent of which other areas share its batch. FNV-1a, stable across
/// platforms and releases.
///
/// # Examples
/// ```
/// use healthgap::stats::sii::stream_for_key;
/// assert_eq!(stream_for_key("E38000001"), stream_for_key("E38000001"));
/// assert_ne!(stream_for_key("E38000001"), stream_for_key("E38000002"));
/// ```
pub fn stream_for_key(key: &str) -> u64 {
    simulation::stream_for_key(key)
}

#[cfg(test)]
#[path = "sii_tests.rs"]
mod tests;
