//! Funnel plots: control limits to draw (proportions, ratios, rates), each area's
//! significance label, and the points to plot for rates (PHEindicatormethods
//! `calculate_funnel_limits`, `assign_funnel_significance`, `calculate_funnel_points`).
//!
//! The reference's numerical quirks are kept on purpose, so that the limits match its
//! published figures: the axis rounding follows R's printed width of a number, the Poisson
//! limits come from its fixed 23-step bisection, and the ratio axis uses a shifted exponent.

use super::poisson::{byars_lower_unchecked, byars_upper_unchecked};
use super::precision::{
    FUNNEL_THREE_SIGMA, FUNNEL_TWO_SIGMA, chi_squared_quantile, normal_quantile,
};
use super::simulation::round_half_even;
use super::{Argument, StatsError};

/// Number of plotting rows the reference produces.
pub const AXIS_POINTS: usize = 100;

/// Events below which a DSR's significance is not assessed.
pub const DSR_MIN_EVENTS: f64 = 10.0;

/// How a ratio's limits are expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatioType {
    /// limit − 1, for ratios of observed to expected counts.
    Count,
    /// limit · 100, for indirectly standardised ratios.
    Isr,
}

/// The kind of rate on a rate funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateType {
    /// Directly standardised rates (not assessed below 10 events).
    Dsr,
    /// Crude rates.
    Crude,
}

/// The statistic plotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelStatistic {
    /// Proportions: numerator of denominator, Wilson-based limits.
    Proportion,
    /// Ratios: observed (numerator) to expected (denominator) events, Poisson limits.
    Ratio(RatioType),
    /// Rates: events (numerator) and rates, Poisson limits.
    Rate(RateType),
}

/// One funnel's data: a row per area. Missing values are `NaN`.
#[derive(Debug, Clone, Copy)]
pub struct FunnelInput<'a> {
    /// Numerators: successes, observed events or events.
    pub numerator: &'a [f64],
    /// Denominators, expected events, or (rates) populations where known.
    pub denominator: Option<&'a [f64]>,
    /// Rates (rate funnels only), per `multiplier`.
    pub rate: Option<&'a [f64]>,
}

/// Settings of a funnel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunnelOptions {
    /// The statistic.
    pub statistic: FunnelStatistic,
    /// Multiplier of proportions (e.g. 100 for percentages) and rates (e.g. 100000).
    pub multiplier: f64,
    /// Years of data pooled in the rates (rate funnels only).
    pub years_of_data: f64,
}

/// A significance label (the reference's factor levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Significance {
    /// Above the 99.8% limit.
    High001,
    /// Above the 95% limit.
    High025,
    /// Below the 99.8% limit.
    Low001,
    /// Below the 95% limit.
    Low025,
    /// Within the 95% limits.
    NotSignificant,
    /// A DSR from fewer than 10 events.
    NotApplicable,
}

impl Significance {
    /// The reference's label.
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::funnel::Significance;
    /// assert_eq!(Significance::High001.label(), "High (0.001)");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            Significance::High001 => "High (0.001)",
            Significance::High025 => "High (0.025)",
            Significance::Low001 => "Low (0.001)",
            Significance::Low025 => "Low (0.025)",
            Significance::NotSignificant => "Not significant",
            Significance::NotApplicable => "Not applicable for events less than 10 for dsrs",
        }
    }
}

/// The proportion on a Wilson limit at population `n` around the average `average`: the
/// inverse of the Wilson interval, times `multiplier` (the reference's `sigma_adjustment`). `p`
/// is the one-sided probability (0.975 for the 2σ funnel, 0.999 for 3σ); `high` picks the
/// upper curve.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::sigma_adjustment;
/// let lower = sigma_adjustment(0.975, 3.0, 0.80642448, false, 100.0);
/// assert!((lower - 35.933491).abs() < 1e-4);
/// ```
pub fn sigma_adjustment(p: f64, n: f64, average: f64, high: bool, multiplier: f64) -> f64 {
    let z = normal_quantile(p);
    let z2 = z * z;
    let a = average * (n / z2 + 1.0);
    let b = 1.0 / z2 + 1.0 / n;
    let d = ((-8.0 * average * (n / z2 + 1.0)).powi(2)
        - 64.0 * b * average * (n * (average * (n / z2 + 2.0) - 1.0) + z2 * (average - 1.0)))
        .sqrt();
    let value = if high {
        (a + d / 8.0) / b
    } else {
        (a - d / 8.0) / b
    };
    value / n * multiplier
}

/// P(a ≤ X ≤ b) for X ~ Poisson(μ), by the reference's series (`poisson_cis`): terms μᵏ/k!
/// from k = 0 while k ≤ μ or the term exceeds 1e−10 of the running total, rescaling by 1e30 to
/// avoid overflow.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::poisson_cis;
/// let p = poisson_cis(2.0, 0.0, 0.0);
/// assert!((p - (-2.0f64).exp()).abs() < 1e-9);
/// ```
pub fn poisson_cis(mu: f64, a: f64, b: f64) -> f64 {
    let mut term = 1.0;
    let mut total = 0.0;
    let mut inside = 0.0;
    let mut k = 0.0;
    // The loop ends once k passes μ and the terms become negligible; the cap only guards
    // against a non-finite μ.
    let cap = if mu.is_finite() { mu + 1e6 } else { 0.0 };
    while (k <= mu || term > total * 1e-10) && k <= cap {
        total += term;
        if k >= a && k <= b {
            inside += term;
        }
        if total > 1e30 {
            inside /= 1e30;
            total /= 1e30;
            term /= 1e30;
        }
        k += 1.0;
        term = term * mu / k;
    }
    inside / total
}

/// The Poisson mean at which `observed` sits on a one-sided tail of probability `p`, by the
/// reference's fixed bisection (`poisson_funnel`) on v ∈ (0, 1) with μ = (1+O)·v/(1−v), 23
/// halvings. `high = false` ("low") finds the mean below which P(X ≥ O) ≤ p; `high = true`
/// finds the mean above which P(X ≤ O) < p.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::poisson_funnel;
/// assert!((poisson_funnel(1.0, 0.025, true) - 5.571644585).abs() < 1e-6);
/// ```
pub fn poisson_funnel(observed: f64, p: f64, high: bool) -> f64 {
    let mut v = 0.5;
    let mut dv = 0.5;
    let mean = |v: f64| (1.0 + observed) * v / (1.0 - v);
    while dv > 1e-7 {
        dv /= 2.0;
        let go_down = if high {
            poisson_cis(mean(v), 0.0, observed) < p
        } else {
            poisson_cis(mean(v), observed, 1e10) > p
        };
        v += if go_down { -dv } else { dv };
    }
    mean(v)
}

/// The reference's `funnel_ratio_significance`: the lower (or upper) Poisson limit of O at
/// two-sided level `level`, divided by E. Exact below 10 events, Byar's otherwise; 0 for the
/// lower limit of O = 0.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::funnel_ratio_significance;
/// let upper = funnel_ratio_significance(1.0, 1.0, 0.95, true);
/// assert!((upper - 5.571643390938898).abs() < 1e-9);
/// ```
pub fn funnel_ratio_significance(observed: f64, expected: f64, level: f64, high: bool) -> f64 {
    let tail = 0.5 + level / 2.0;
    let limit = if !high && observed == 0.0 {
        0.0
    } else if observed < 10.0 {
        if high {
            chi_squared_quantile(tail, 2.0 * observed + 2.0) / 2.0
        } else {
            chi_squared_quantile(1.0 - tail, 2.0 * observed) / 2.0
        }
    } else {
        let z = normal_quantile(tail);
        if high {
            byars_upper_unchecked(observed, z)
        } else {
            byars_lower_unchecked(observed, z)
        }
    };
    limit / expected
}

/// The number of characters R's `as.character` prints for a whole number: fixed notation
/// unless scientific is narrower ("1e+05" for 100000).
fn r_print_width(x: f64) -> usize {
    let digits = format!("{:.0}", x.abs());
    let sign = usize::from(x < 0.0);
    let significant = digits.trim_end_matches('0').len().max(1);
    let exponent = digits.len().saturating_sub(1);
    let mantissa = if significant == 1 { 1 } else { significant + 1 };
    let scientific = mantissa + if exponent >= 100 { 5 } else { 4 };
    sign + digits.len().min(scientific)
}

/// The reference's `signif_floor`: floor(0.95x / 10ⁿ)·10ⁿ with n one less than the printed
/// width of floor(0.95x); 0 for x = 0.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::signif_floor;
/// assert_eq!(signif_floor(31000.0), 20000.0);
/// ```
pub fn signif_floor(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let n = r_print_width((0.95 * x).floor()) as i32 - 1;
    let scale = 10f64.powi(n);
    (0.95 * x / scale).floor() * scale
}

/// The reference's `signif_ceiling`: ceil(1.05x / 10ⁿ)·10ⁿ with n two less than the printed
/// width of ceiling(1.05x); 0 for x = 0.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::signif_ceiling;
/// assert_eq!(signif_ceiling(41980.0), 45000.0);
/// ```
pub fn signif_ceiling(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let n = r_print_width((1.05 * x).ceil()) as i32 - 2;
    let scale = 10f64.powi(n);
    (1.05 * x / scale).ceil() * scale
}

/// The 100 axis points from `axis_min` to about `axis_max`, growing geometrically and by at
/// least 1 each step; `shift` is 1 for ratios (the reference's exponent 1/(101 − (j−1))).
fn axis_points(axis_min: f64, axis_max: f64, shift: f64) -> Vec<f64> {
    let mut points = Vec::with_capacity(AXIS_POINTS);
    let mut previous = axis_min.max(1.0);
    points.push(previous);
    for j in 2..=AXIS_POINTS {
        let order = j as f64 - shift;
        let grown = round_half_even((axis_max / previous).powf(1.0 / (101.0 - order)) * previous);
        previous = grown.max(previous + 1.0);
        points.push(previous);
    }
    points
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| !v.is_nan())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// The denominators the reference derives for each row, and the weighted average ΣO/Σden.
fn denominators(input: &FunnelInput<'_>, options: &FunnelOptions) -> Result<Vec<f64>, StatsError> {
    let rows = input.numerator.len();
    let given = input.denominator;
    if given.is_some_and(|d| d.len() != rows) || input.rate.is_some_and(|r| r.len() != rows) {
        return Err(StatsError::general(
            "funnel input columns must have the same number of rows",
        ));
    }
    if input.numerator.iter().any(|&o| o < 0.0) {
        return Err(StatsError::new(
            Argument::X,
            "numerators must be greater than or equal to zero",
        ));
    }
    if given.is_some_and(|d| d.iter().any(|&v| v <= 0.0)) {
        return Err(StatsError::new(
            Argument::N,
            "denominators must be greater than zero",
        ));
    }
    let den_at = |i: usize| given.and_then(|d| d.get(i).copied()).unwrap_or(f64::NAN);
    match options.statistic {
        FunnelStatistic::Proportion | FunnelStatistic::Ratio(_) => {
            let Some(den) = given else {
                return Err(StatsError::new(
                    Argument::N,
                    "denominator is required for this statistic",
                ));
            };
            if input
                .numerator
                .iter()
                .zip(den)
                .any(|(o, d)| o.is_nan() || d.is_nan())
            {
                return Err(StatsError::general(
                    "numerators and denominators cannot be missing for this statistic",
                ));
            }
            if options.statistic == FunnelStatistic::Proportion
                && input.numerator.iter().zip(den).any(|(o, d)| o > d)
            {
                return Err(StatsError::new(
                    Argument::X,
                    "numerators must be less than or equal to denominator for a proportion statistic",
                ));
            }
            Ok(den.to_vec())
        }
        FunnelStatistic::Rate(rate_type) => {
            let Some(rate) = input.rate else {
                return Err(StatsError::new(
                    Argument::Rate,
                    "rate is required for a rate statistic",
                ));
            };
            if input.numerator.iter().any(|o| o.is_nan()) {
                return Err(StatsError::new(
                    Argument::X,
                    "numerators cannot be missing for a rate statistic",
                ));
            }
            let mut den = Vec::with_capacity(rows);
            for (i, (&o, &r)) in input.numerator.iter().zip(rate).enumerate() {
                let derived = options.multiplier * o / r;
                let value = if o == 0.0 {
                    match rate_type {
                        RateType::Dsr => f64::NAN,
                        RateType::Crude => {
                            let d = den_at(i);
                            if d.is_nan() {
                                return Err(StatsError::new(
                                    Argument::N,
                                    "a denominator greater than zero is needed where the numerator is zero",
                                ));
                            }
                            d
                        }
                    }
                } else if r.is_nan() {
                    let d = den_at(i);
                    if d.is_nan() {
                        return Err(StatsError::new(
                            Argument::N,
                            "a denominator is needed where the rate is missing",
                        ));
                    }
                    d
                } else {
                    derived
                };
                den.push(value);
            }
            Ok(den)
        }
    }
}

fn weighted_average(numerator: &[f64], den: &[f64]) -> f64 {
    let (o, d) = numerator
        .iter()
        .zip(den)
        .filter(|(_, d)| !d.is_nan())
        .fold((0.0, 0.0), |(so, sd), (o, d)| (so + o, sd + d));
    o / d
}

/// One plotting row of a funnel: the x position and the four limits (2σ = 95%, 3σ = 99.8%).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunnelRow {
    /// Population (proportions), observed events (ratios) or events (rates).
    pub x: f64,
    /// Lower and upper 2σ and 3σ limits, in the order lower_2s, upper_2s, lower_3s, upper_3s.
    pub limits: [f64; 4],
    /// Ratios: the expected events at each limit; rates: the one-year population at each limit.
    pub denominators: Option<[f64; 4]>,
    /// The average (proportions and rates), times the multiplier.
    pub baseline: Option<f64>,
}

impl FunnelRow {
    /// The reference's column names for a statistic, in its order.
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::funnel::{FunnelRow, FunnelStatistic};
    /// assert_eq!(FunnelRow::columns(FunnelStatistic::Proportion)[0], "Population");
    /// ```
    pub fn columns(statistic: FunnelStatistic) -> Vec<String> {
        let (x, den) = match statistic {
            FunnelStatistic::Proportion => ("Population", None),
            FunnelStatistic::Ratio(_) => ("Observed_events", Some("exp_events")),
            FunnelStatistic::Rate(_) => ("Events", Some("population_1_year")),
        };
        let mut columns = vec![x.to_string()];
        for limit in ["lower_2s", "upper_2s", "lower_3s", "upper_3s"] {
            if let Some(den) = den {
                columns.push(format!("{limit}_{den}"));
            }
            columns.push(format!("{limit}_limit"));
        }
        if !matches!(statistic, FunnelStatistic::Ratio(_)) {
            columns.push("baseline".to_string());
        }
        columns
    }

    /// The values in the order of [`FunnelRow::columns`].
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::funnel::FunnelRow;
    /// let row = FunnelRow { x: 1.0, limits: [0.0, 1.0, 0.0, 1.0], denominators: None, baseline: Some(0.5) };
    /// assert_eq!(row.values(), [1.0, 0.0, 1.0, 0.0, 1.0, 0.5]);
    /// ```
    pub fn values(&self) -> Vec<f64> {
        let mut values = vec![self.x];
        for (i, limit) in self.limits.iter().enumerate() {
            if let Some(den) = self.denominators.and_then(|d| d.get(i).copied()) {
                values.push(den);
            }
            values.push(*limit);
        }
        values.extend(self.baseline);
        values
    }
}

/// The reference's metadata label for a funnel's statistic.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::{statistic_label, FunnelStatistic, RateType};
/// assert_eq!(statistic_label(FunnelStatistic::Rate(RateType::Dsr), 100000.0), "rate (dsr per 100,000)");
/// ```
pub fn statistic_label(statistic: FunnelStatistic, multiplier: f64) -> String {
    match statistic {
        FunnelStatistic::Proportion => "proportion".into(),
        FunnelStatistic::Ratio(RatioType::Count) => "ratio (count)".into(),
        FunnelStatistic::Ratio(RatioType::Isr) => "ratio (isr)".into(),
        FunnelStatistic::Rate(kind) => {
            let digits = format!("{multiplier:.0}");
            let mut grouped = String::new();
            for (i, ch) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(ch);
            }
            let kind = if kind == RateType::Dsr {
                "dsr"
            } else {
                "crude"
            };
            format!("rate ({kind} per {grouped})")
        }
    }
}

fn check_options(options: &FunnelOptions) -> Result<(), StatsError> {
    if !(options.multiplier > 0.0 && options.multiplier.is_finite()) {
        return Err(StatsError::new(
            Argument::Multiplier,
            "multiplier must be greater than 0",
        ));
    }
    if matches!(options.statistic, FunnelStatistic::Rate(_))
        && !(options.years_of_data > 0.0 && options.years_of_data.is_finite())
    {
        return Err(StatsError::new(
            Argument::YearsOfData,
            "years_of_data must be greater than 0",
        ));
    }
    Ok(())
}

/// The 100 plotting rows of a funnel (PHEindicatormethods `calculate_funnel_limits`).
///
/// Method: the average is ΣO/Σden; the axis runs from 0 (or, when the largest denominator is at
/// most twice the smallest, `signif_floor` of the smallest) to `signif_ceiling` of the largest
/// (rates: per year, then converted to events with the average). Proportion limits invert the
/// Wilson interval ([`sigma_adjustment`], upper limits capped at 100); ratio and rate limits
/// come from [`poisson_funnel`] at one-sided 0.025 and 0.001. See the methods notes §11.2.
///
/// # Errors
/// "numerators must be greater than or equal to zero", "denominators must be greater than
/// zero", "numerators must be less than or equal to denominator for a proportion statistic",
/// missing numerators or denominators where they are needed, a multiplier or years of data that
/// is not positive.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::{funnel_limits, FunnelInput, FunnelOptions, FunnelStatistic};
/// let input = FunnelInput { numerator: &[80.0, 160.0], denominator: Some(&[100.0, 200.0]), rate: None };
/// let options = FunnelOptions { statistic: FunnelStatistic::Proportion, multiplier: 100.0, years_of_data: 1.0 };
/// let rows = funnel_limits(&input, &options)?;
/// assert_eq!(rows.len(), 100);
/// assert_eq!(rows[0].baseline, Some(80.0));
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn funnel_limits(
    input: &FunnelInput<'_>,
    options: &FunnelOptions,
) -> Result<Vec<FunnelRow>, StatsError> {
    check_options(options)?;
    let den = denominators(input, options)?;
    let average = weighted_average(input.numerator, &den);
    let (smallest, largest) = min_max(den.iter().copied());
    let mult = options.multiplier;
    let rows = match options.statistic {
        FunnelStatistic::Proportion | FunnelStatistic::Ratio(_) => {
            let axis_min = if largest > 2.0 * smallest {
                0.0
            } else {
                signif_floor(smallest)
            };
            let axis_max = signif_ceiling(largest);
            if let FunnelStatistic::Ratio(kind) = options.statistic {
                axis_points(axis_min, axis_max, 1.0)
                    .into_iter()
                    .map(|x| ratio_row(x, kind))
                    .collect()
            } else {
                axis_points(axis_min, axis_max, 0.0)
                    .into_iter()
                    .map(|x| {
                        let limit = |p, high| sigma_adjustment(p, x, average, high, mult);
                        FunnelRow {
                            x,
                            limits: [
                                limit(FUNNEL_TWO_SIGMA, false).max(0.0),
                                limit(FUNNEL_TWO_SIGMA, true).min(100.0),
                                limit(FUNNEL_THREE_SIGMA, false).max(0.0),
                                limit(FUNNEL_THREE_SIGMA, true).min(100.0),
                            ],
                            denominators: None,
                            baseline: Some(average * mult),
                        }
                    })
                    .collect()
            }
        }
        FunnelStatistic::Rate(_) => {
            let years = options.years_of_data;
            let axis_min = if largest > 2.0 * smallest {
                0.0
            } else {
                signif_floor(smallest / years) * years
            };
            let axis_max = signif_ceiling(largest / years) * years;
            let (events_min, events_max) =
                ((axis_min * average).floor(), (axis_max * average).ceil());
            axis_points(events_min, events_max, 0.0)
                .into_iter()
                .map(|x| {
                    let population = |p, high| poisson_funnel(x, p, high) / average;
                    let pops = [
                        population(1.0 - FUNNEL_TWO_SIGMA, true),
                        population(1.0 - FUNNEL_TWO_SIGMA, false),
                        population(1.0 - FUNNEL_THREE_SIGMA, true),
                        population(1.0 - FUNNEL_THREE_SIGMA, false),
                    ];
                    FunnelRow {
                        x,
                        limits: pops.map(|p| x / p * mult),
                        // The reference divides by the years only after computing the limits.
                        denominators: Some(pops.map(|p| p / years)),
                        baseline: Some(average * mult),
                    }
                })
                .collect()
        }
    };
    Ok(rows)
}

fn ratio_row(x: f64, kind: RatioType) -> FunnelRow {
    let expected = [
        poisson_funnel(x, 1.0 - FUNNEL_TWO_SIGMA, true),
        poisson_funnel(x, 1.0 - FUNNEL_TWO_SIGMA, false),
        poisson_funnel(x, 1.0 - FUNNEL_THREE_SIGMA, true),
        poisson_funnel(x, 1.0 - FUNNEL_THREE_SIGMA, false),
    ];
    let limits = expected.map(|e| {
        let ratio = x / e;
        match kind {
            RatioType::Count => ratio - 1.0,
            RatioType::Isr => ratio * 100.0,
        }
    });
    FunnelRow {
        x,
        limits,
        denominators: Some(expected),
        baseline: None,
    }
}

/// Each area's significance against the funnel (PHEindicatormethods
/// `assign_funnel_significance`), tested in the order 99.8% before 95%.
///
/// Proportions compare x/n with the Wilson-inverted limits around Σx/Σn; ratios compare 1 with
/// the Poisson limits of O divided by E ([`funnel_ratio_significance`]); rates do the same with
/// E = the derived denominator and the target ΣO/Σden, and DSRs from fewer than 10 events are
/// "Not applicable".
///
/// # Errors
/// As [`funnel_limits`].
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::{assign_significance, FunnelInput, FunnelOptions, FunnelStatistic, RatioType, Significance};
/// let input = FunnelInput { numerator: &[151.0, 8.0], denominator: Some(&[106.4429719, 6.239860227]), rate: None };
/// let options = FunnelOptions { statistic: FunnelStatistic::Ratio(RatioType::Count), multiplier: 1.0, years_of_data: 1.0 };
/// assert_eq!(assign_significance(&input, &options)?, [Significance::High001, Significance::NotSignificant]);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn assign_significance(
    input: &FunnelInput<'_>,
    options: &FunnelOptions,
) -> Result<Vec<Significance>, StatsError> {
    check_options(options)?;
    let den = denominators(input, options)?;
    let (two, three) = (2.0 * FUNNEL_TWO_SIGMA - 1.0, 2.0 * FUNNEL_THREE_SIGMA - 1.0);
    let labels = match options.statistic {
        FunnelStatistic::Proportion => {
            let average = weighted_average(input.numerator, &den);
            input
                .numerator
                .iter()
                .zip(&den)
                .map(|(&x, &n)| {
                    let p = x / n;
                    let limit = |q, high| sigma_adjustment(q, n, average, high, 1.0);
                    if p < limit(FUNNEL_THREE_SIGMA, false) {
                        Significance::Low001
                    } else if p < limit(FUNNEL_TWO_SIGMA, false) {
                        Significance::Low025
                    } else if p > limit(FUNNEL_THREE_SIGMA, true) {
                        Significance::High001
                    } else if p > limit(FUNNEL_TWO_SIGMA, true) {
                        Significance::High025
                    } else {
                        Significance::NotSignificant
                    }
                })
                .collect()
        }
        FunnelStatistic::Ratio(_) | FunnelStatistic::Rate(_) => {
            let (target, dsr) = match options.statistic {
                FunnelStatistic::Rate(kind) => (
                    weighted_average(input.numerator, &den),
                    kind == RateType::Dsr,
                ),
                _ => (1.0, false),
            };
            input
                .numerator
                .iter()
                .zip(&den)
                .map(|(&o, &e)| {
                    if dsr && o < DSR_MIN_EVENTS {
                        return Significance::NotApplicable;
                    }
                    let frs = |level, high| funnel_ratio_significance(o, e, level, high);
                    if target < frs(three, false) {
                        Significance::High001
                    } else if target < frs(two, false) {
                        Significance::High025
                    } else if target > frs(three, true) {
                        Significance::Low001
                    } else if target > frs(two, true) {
                        Significance::Low025
                    } else {
                        Significance::NotSignificant
                    }
                })
                .collect()
        }
    };
    Ok(labels)
}

/// A rate's point on the funnel (PHEindicatormethods `calculate_funnel_points`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunnelPoint {
    /// The rate to chart; `None` for DSRs from fewer than 10 events.
    pub rate_chart: Option<f64>,
    /// The one-year denominator: (multiplier·O/rate)/years, or the given denominator/years where
    /// O = 0 (crude rates); `None` for DSRs from fewer than 10 events.
    pub denominator_derived: Option<f64>,
}

/// The points to plot on a rate funnel (PHEindicatormethods `calculate_funnel_points`).
///
/// # Errors
/// As [`funnel_limits`]; the statistic must be a rate.
///
/// # Examples
/// ```
/// use healthgap::stats::funnel::{funnel_points, FunnelInput, FunnelOptions, FunnelStatistic, RateType};
/// let input = FunnelInput { numerator: &[414.0], denominator: None, rate: Some(&[184.0]) };
/// let options = FunnelOptions { statistic: FunnelStatistic::Rate(RateType::Dsr), multiplier: 100000.0, years_of_data: 3.0 };
/// let points = funnel_points(&input, &options)?;
/// assert!((points[0].denominator_derived.unwrap_or_default() - 75000.0).abs() < 1e-6);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn funnel_points(
    input: &FunnelInput<'_>,
    options: &FunnelOptions,
) -> Result<Vec<FunnelPoint>, StatsError> {
    check_options(options)?;
    let FunnelStatistic::Rate(kind) = options.statistic else {
        return Err(StatsError::general(
            "funnel points are only calculated for rates",
        ));
    };
    let den = denominators(input, options)?;
    let rate = input.rate.unwrap_or_default();
    Ok(input
        .numerator
        .iter()
        .zip(&den)
        .zip(rate)
        .map(|((&o, &d), &r)| {
            if kind == RateType::Dsr && o < DSR_MIN_EVENTS {
                FunnelPoint {
                    rate_chart: None,
                    denominator_derived: None,
                }
            } else {
                FunnelPoint {
                    rate_chart: (!r.is_nan()).then_some(r),
                    denominator_derived: Some(d / options.years_of_data),
                }
            }
        })
        .collect())
}

#[cfg(test)]
#[path = "funnel_tests.rs"]
mod tests;
