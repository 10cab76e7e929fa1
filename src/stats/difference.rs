//! Confidence limits for the difference between two independent estimates, built from each
//! estimate's own limits: the MOVER method ("method of variance estimates recovery"; Newcombe
//! 1998, method 10, for proportions with Wilson limits; Zou and Donner 2008 in general). The
//! evidence pack uses it for a cohort's gap to the rest of its PCN (`report/cohorts.rs`).

use super::{Argument, Limits, StatsError};

/// Limits of θ₁ − θ₂ from θ₁ with limits (l₁, u₁) and θ₂ with limits (l₂, u₂), all at the same
/// confidence level:
///
/// - lower = (θ₁ − θ₂) − √((θ₁ − l₁)² + (u₂ − θ₂)²)
/// - upper = (θ₁ − θ₂) + √((u₁ − θ₁)² + (θ₂ − l₂)²)
///
/// With Wilson limits this is Newcombe's hybrid score interval (Newcombe 1998, "Interval
/// estimation for the difference between independent proportions", Statistics in Medicine 17,
/// method 10); with Poisson limits for rates it is Zou and Donner's MOVER (2008).
///
/// # Errors
/// A non-finite input, or limits that do not contain their estimate.
///
/// # Examples
/// Newcombe's example (a): 56/70 against 48/80, difference 0.2, 95% interval 0.0524 to 0.3339.
/// ```
/// use healthgap::stats::{difference::difference_limits, proportion::wilson_limits, Confidence};
/// let level = Confidence::new(0.95)?;
/// let (a, b) = (wilson_limits(56.0, 70.0, level)?, wilson_limits(48.0, 80.0, level)?);
/// let gap = difference_limits(0.8, a, 0.6, b)?;
/// assert!((gap.lower - 0.0524).abs() < 5e-5 && (gap.upper - 0.3339).abs() < 5e-5);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn difference_limits(
    first: f64,
    first_limits: Limits,
    second: f64,
    second_limits: Limits,
) -> Result<Limits, StatsError> {
    let values = [
        first,
        first_limits.lower,
        first_limits.upper,
        second,
        second_limits.lower,
        second_limits.upper,
    ];
    if values.iter().any(|v| !v.is_finite()) {
        return Err(StatsError::new(
            Argument::Value,
            "estimates and limits must be finite numbers",
        ));
    }
    let contains = |v: f64, l: Limits| l.lower <= v && v <= l.upper;
    if !contains(first, first_limits) || !contains(second, second_limits) {
        return Err(StatsError::new(
            Argument::LowerCl,
            "each estimate must lie within its own confidence limits",
        ));
    }
    let d = first - second;
    let lower =
        d - ((first - first_limits.lower).powi(2) + (second_limits.upper - second).powi(2)).sqrt();
    let upper =
        d + ((first_limits.upper - first).powi(2) + (second - second_limits.lower).powi(2)).sqrt();
    Ok(Limits { lower, upper })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Confidence;
    use crate::stats::proportion::wilson_limits;

    #[test]
    fn newcombe_examples_from_the_paper() {
        // Newcombe (1998) Table II, method 10, example (c): 5/56 − 0/29 = 0.0893, 95%
        // interval −0.0381 to 0.1926 (a zero count: the interval is not symmetric).
        let level = Confidence::new(0.95).expect("95%");
        let a = wilson_limits(5.0, 56.0, level).expect("wilson");
        let b = wilson_limits(0.0, 29.0, level).expect("wilson");
        let gap = difference_limits(5.0 / 56.0, a, 0.0, b).expect("limits");
        assert!((gap.lower - (-0.0381)).abs() < 5e-5, "{gap:?}");
        assert!((gap.upper - 0.1926).abs() < 5e-5, "{gap:?}");
    }

    #[test]
    fn difference_limits_refuse_limits_that_miss_the_estimate() {
        let limits = Limits {
            lower: 0.5,
            upper: 0.6,
        };
        assert!(difference_limits(0.7, limits, 0.55, limits).is_err());
        assert!(difference_limits(f64::NAN, limits, 0.55, limits).is_err());
    }

    #[test]
    fn equal_estimates_give_limits_around_zero() {
        let limits = Limits {
            lower: 0.4,
            upper: 0.6,
        };
        let gap = difference_limits(0.5, limits, 0.5, limits).expect("limits");
        assert!(gap.lower < 0.0 && gap.upper > 0.0);
        assert!((gap.lower + gap.upper).abs() < 1e-12);
    }
}
