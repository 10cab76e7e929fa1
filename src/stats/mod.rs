//! Pure statistics: no polars, no I/O, no printing.
//!
//! This module owns every formula healthgap publishes: confidence levels and z values, Poisson
//! (Byar's and exact) and Wilson limits, crude rates, proportions and means with their limits,
//! directly and indirectly standardised rates, the slope and relative index of inequality with
//! their simulated limits, quantile assignment and funnel-plot control limits. Each method
//! follows the national reference implementation, the R package PHEindicatormethods (v2.1.0,
//! restated in `shared/methods/reference-methods.md`), and is checked against its published test
//! figures (`tests/fixtures/vectors/`).
//!
//! It does not read files, touch data frames or print: `cli/stats.rs` and the pipeline's
//! `measure`/`gradient` stages adapt these functions to tables, group by group, and report the
//! errors returned here with the group and column at fault.
//!
//! # Conventions
//!
//! - **Missing inputs.** Slices of `f64` use `NaN` for a missing value, as R uses `NA`; where
//!   the reference propagates `NA` the result holds `None` (see each function).
//! - **Confidence levels** are a validated [`Confidence`] newtype (`95` and `0.95` both mean
//!   95%); limits come back in the order the levels were given.
//! - **Errors** are [`StatsError`]: the reference's condition in plain words, plus the argument
//!   at fault ([`Argument`]) so a caller can name its column.
//!
//! # Glossary
//!
//! | abbreviation | meaning |
//! |---|---|
//! | CI | confidence interval; its ends are the lower and upper confidence limits (CL) |
//! | DSR | directly standardised rate: age-specific rates weighted by a standard population |
//! | ISR | indirectly standardised ratio or rate: observed over expected events, the expected ones from reference rates |
//! | SMR | standardised mortality ratio, the ISR of deaths |
//! | SII | slope index of inequality: the absolute difference in value across the deprivation gradient, from a population-weighted regression on relative rank |
//! | RII | relative index of inequality: the same gradient as a ratio (value at the least deprived end over the most deprived end) |
//! | MAD | mean absolute difference (the SII reliability statistic) |
//! | ESP2013 | the 2013 European Standard Population |

pub mod difference;
pub mod dsr;
pub mod funnel;
pub mod isr;
pub mod linearity;
pub mod mean;
pub mod poisson;
pub mod precision;
pub mod proportion;
pub mod quantile;
pub mod rate;
pub mod sii;
mod simulation;

#[cfg(test)]
mod fixtures;

pub use precision::Confidence;

/// The argument of a reference function (named as the reference names it) that an error is
/// about, so that a caller can translate it into its own column or flag name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argument {
    /// Numerator counts (`x`).
    X,
    /// Denominators or populations (`n`).
    N,
    /// Standard population (`stdpop`).
    Stdpop,
    /// Reference numerators for indirect standardisation (`x_ref`).
    XRef,
    /// Reference denominators for indirect standardisation (`n_ref`).
    NRef,
    /// Event frequency for non-independent events (`eventfreq`).
    Eventfreq,
    /// Age band (`ageband`).
    Ageband,
    /// Values to summarise or rank (`value` / `values`).
    Value,
    /// Quantile labels (`quantile`).
    Quantile,
    /// Population of a quantile or area (`population`).
    Population,
    /// Standard errors (`se`).
    Se,
    /// Lower confidence limits given as input (`lower_cl`).
    LowerCl,
    /// Upper confidence limits given as input (`upper_cl`).
    UpperCl,
    /// Confidence level(s) (`confidence`).
    Confidence,
    /// Multiplier (`multiplier`).
    Multiplier,
    /// Number of simulation repetitions (`repetitions`).
    Repetitions,
    /// SII value type (`value_type`).
    ValueType,
    /// SII transform flag (`transform`).
    Transform,
    /// Number of quantiles (`nquantiles`).
    Nquantiles,
    /// Years of data in a funnel plot (`years_of_data`).
    YearsOfData,
    /// Rates given to a funnel plot (`rate`).
    Rate,
}

/// An error from a statistical method: the reference method's condition in plain words, i.e.
/// input the user must fix. `crate::error` maps it to exit code 2.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct StatsError {
    /// The reference's message, e.g. "denominators must be greater than zero".
    pub message: String,
    /// The argument at fault, when the condition is about one argument.
    pub argument: Option<Argument>,
}

impl StatsError {
    /// An error about one argument.
    pub fn new(argument: Argument, message: impl Into<String>) -> Self {
        StatsError {
            message: message.into(),
            argument: Some(argument),
        }
    }

    /// An error about the combination of arguments rather than one of them.
    pub fn general(message: impl Into<String>) -> Self {
        StatsError {
            message: message.into(),
            argument: None,
        }
    }
}

/// Lower and upper confidence limits at one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Lower confidence limit.
    pub lower: f64,
    /// Upper confidence limit.
    pub upper: f64,
}

/// A point estimate with its confidence limits, one [`Limits`] per requested level in the order
/// the levels were given.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The point estimate (already multiplied by any multiplier).
    pub value: f64,
    /// Limits per confidence level.
    pub limits: LimitsPerLevel,
}

/// One [`Limits`] per confidence level, held inline up to two levels (the published 95% and
/// 99.8%): a national run makes about 8 million estimates, and an allocation each was a
/// measurable part of measure's fixed cost (benches/RESULTS.md, thirty-fifth round).
pub type LimitsPerLevel = smallvec::SmallVec<[Limits; 2]>;

/// Whether any value is present and fails `bad`, ignoring missing (`NaN`) values as R's
/// `any(x < 0, na.rm = TRUE)` does.
pub(crate) fn any_present(values: &[f64], bad: impl Fn(f64) -> bool) -> bool {
    values.iter().any(|&v| !v.is_nan() && bad(v))
}

/// Sum ignoring missing values (`sum(x, na.rm = TRUE)`).
pub(crate) fn sum_present(values: &[f64]) -> f64 {
    values.iter().filter(|v| !v.is_nan()).sum()
}

/// Format a multiplier as R's `format(x, scientific = FALSE)` does for the statistic labels
/// ("rate per 100000").
pub fn format_multiplier(multiplier: f64) -> String {
    // Rust's `{}` for f64 never uses exponents and drops a trailing ".0" only for integers via
    // the branch below, which is what the reference's labels show.
    if multiplier.fract() == 0.0 && multiplier.abs() < 1e15 {
        format!("{multiplier:.0}")
    } else {
        format!("{multiplier}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_multiplier_integers_and_fractions() {
        assert_eq!(format_multiplier(100000.0), "100000");
        assert_eq!(format_multiplier(1.0), "1");
        assert_eq!(format_multiplier(0.5), "0.5");
    }

    #[test]
    fn stats_error_display_is_the_message() {
        let err = StatsError::new(Argument::N, "denominators must be greater than zero");
        assert_eq!(err.to_string(), "denominators must be greater than zero");
        assert_eq!(err.argument, Some(Argument::N));
    }
}
