//! Confidence limits for a Poisson count: Byar's approximation and the exact (chi-squared)
//! limits, and the reference's rule for choosing between them (exact below 10 events).
//!
//! Rates ([`super::rate`]), indirect standardisation ([`super::isr`]) and the Dobson DSR
//! ([`super::dsr`]) build on these; funnel plots have their own variant in [`super::funnel`].

use super::precision::{Confidence, chi_squared_quantile};
use super::{Argument, Limits, StatsError};

/// Counts below this use the exact limits; the reference switches to Byar's at 10.
pub const EXACT_BELOW: f64 = 10.0;

/// Which Poisson method produced a set of limits (the reference's `method` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoissonMethod {
    /// Exact limits from chi-squared quantiles (count < 10).
    Exact,
    /// Byar's approximation (count ≥ 10).
    Byars,
}

impl PoissonMethod {
    /// The method for a count: exact below 10, Byar's otherwise.
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::poisson::PoissonMethod;
    /// assert_eq!(PoissonMethod::for_count(9.0), PoissonMethod::Exact);
    /// assert_eq!(PoissonMethod::for_count(10.0), PoissonMethod::Byars);
    /// ```
    pub fn for_count(observed: f64) -> Self {
        if observed < EXACT_BELOW {
            PoissonMethod::Exact
        } else {
            PoissonMethod::Byars
        }
    }

    /// The reference's label: "Exact" or "Byars".
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::poisson::PoissonMethod;
    /// assert_eq!(PoissonMethod::Byars.label(), "Byars");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            PoissonMethod::Exact => "Exact",
            PoissonMethod::Byars => "Byars",
        }
    }
}

fn check_count(observed: f64) -> Result<(), StatsError> {
    if observed < 0.0 {
        return Err(StatsError::new(
            Argument::X,
            "observed events must all be greater than or equal to zero",
        ));
    }
    Ok(())
}

/// Byar's lower limit of a Poisson count O: `O·(1 − 1/(9O) − z/(3√O))³`, or `None` where that is
/// negative (the reference sets it to NA). Byar (1991), as in PHEindicatormethods
/// `byars_lower`. At O = 0 the formula is undefined (`NaN`); callers use the exact limits there.
///
/// # Errors
/// "observed events must all be greater than or equal to zero" when O < 0.
///
/// # Examples
/// ```
/// use healthgap::stats::{poisson::byars_lower, Confidence};
/// let lower = byars_lower(65.0, Confidence::new(0.95)?)?.unwrap_or(f64::NAN);
/// assert!((lower - 50.163187710459454).abs() < 1e-9);
/// assert_eq!(byars_lower(1.0, Confidence::new(0.998)?)?, None);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn byars_lower(observed: f64, confidence: Confidence) -> Result<Option<f64>, StatsError> {
    check_count(observed)?;
    let value = byars_lower_unchecked(observed, confidence.z());
    Ok(if value < 0.0 { None } else { Some(value) })
}

/// Byar's upper limit of a Poisson count O: `(O+1)·(1 − 1/(9(O+1)) + z/(3√(O+1)))³`. Byar
/// (1991), as in PHEindicatormethods `byars_upper`.
///
/// # Errors
/// "observed events must all be greater than or equal to zero" when O < 0.
///
/// # Examples
/// ```
/// use healthgap::stats::{poisson::byars_upper, Confidence};
/// let upper = byars_upper(65.0, Confidence::new(0.95)?)?;
/// assert!((upper - 82.84913854593984).abs() < 1e-9);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn byars_upper(observed: f64, confidence: Confidence) -> Result<f64, StatsError> {
    check_count(observed)?;
    Ok(byars_upper_unchecked(observed, confidence.z()))
}

/// Byar's lower limit for a validated count and critical value `z` (may be negative).
pub(crate) fn byars_lower_unchecked(observed: f64, z: f64) -> f64 {
    observed * (1.0 - 1.0 / (9.0 * observed) - z / (3.0 * observed.sqrt())).powi(3)
}

/// Byar's upper limit for a validated count and critical value `z`.
pub(crate) fn byars_upper_unchecked(observed: f64, z: f64) -> f64 {
    let next = observed + 1.0;
    next * (1.0 - 1.0 / (9.0 * next) + z / (3.0 * next.sqrt())).powi(3)
}

/// Exact Poisson limits of a count O from chi-squared quantiles:
/// lower = χ²((1−c)/2; 2O)/2, upper = χ²(c + (1−c)/2; 2O+2)/2 (Garwood 1936), as the
/// reference uses for counts below 10. The lower limit is 0 when O = 0.
///
/// # Errors
/// "observed events must all be greater than or equal to zero" when O < 0.
///
/// # Examples
/// ```
/// use healthgap::stats::{poisson::exact_limits, Confidence};
/// let limits = exact_limits(1.0, Confidence::new(0.95)?)?;
/// assert!((limits.lower - 0.025317807984289897).abs() < 1e-12);
/// assert!((limits.upper - 5.571643390938898).abs() < 1e-9);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn exact_limits(observed: f64, confidence: Confidence) -> Result<Limits, StatsError> {
    check_count(observed)?;
    Ok(exact_limits_unchecked(observed, confidence))
}

pub(crate) fn exact_limits_unchecked(observed: f64, confidence: Confidence) -> Limits {
    // Exact limits are for counts below 10, nearly always whole: an indicators table asks for
    // the same few millions of times, and each is two chi-squared quantiles found by
    // iteration. Remembered per thread (the same inputs give the same bits).
    thread_local! {
        static KNOWN: std::cell::RefCell<Vec<((u64, u64), Limits)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let key = (observed.to_bits(), confidence.value().to_bits());
    if let Some(limits) = KNOWN.with_borrow(|known| {
        known
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, limits)| *limits)
    }) {
        return limits;
    }
    let c = confidence.value();
    let limits = Limits {
        lower: chi_squared_quantile((1.0 - c) / 2.0, 2.0 * observed) / 2.0,
        upper: chi_squared_quantile(confidence.upper_probability(), 2.0 * observed + 2.0) / 2.0,
    };
    KNOWN.with_borrow_mut(|known| {
        // Whole counts below 10 at a few levels fit; anything else is not worth keeping.
        if known.len() < 64 {
            known.push((key, limits));
        }
    });
    limits
}

/// Limits of a Poisson count by the reference's rule: exact below 10 events, Byar's otherwise.
/// Returns the limits and the method used.
///
/// # Errors
/// "observed events must all be greater than or equal to zero" when O < 0.
///
/// # Examples
/// ```
/// use healthgap::stats::{poisson::{poisson_limits, PoissonMethod}, Confidence};
/// let (limits, method) = poisson_limits(20.0, Confidence::new(0.95)?)?;
/// assert_eq!(method, PoissonMethod::Byars);
/// assert!((limits.lower - 12.211428834875937).abs() < 1e-9);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn poisson_limits(
    observed: f64,
    confidence: Confidence,
) -> Result<(Limits, PoissonMethod), StatsError> {
    check_count(observed)?;
    Ok(poisson_limits_unchecked(observed, confidence))
}

pub(crate) fn poisson_limits_unchecked(
    observed: f64,
    confidence: Confidence,
) -> (Limits, PoissonMethod) {
    let method = PoissonMethod::for_count(observed);
    let limits = match method {
        PoissonMethod::Exact => exact_limits_unchecked(observed, confidence),
        PoissonMethod::Byars => {
            let z = confidence.z();
            Limits {
                lower: byars_lower_unchecked(observed, z),
                upper: byars_upper_unchecked(observed, z),
            }
        }
    };
    (limits, method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{Table, assert_close};

    #[test]
    fn byars_and_wilson_vectors_byars_rows() -> Result<(), StatsError> {
        let table = Table::read("byars_wilson_expected.csv");
        let mut checked = 0;
        for row in table.rows() {
            if row.text("method") != "Byars" {
                continue;
            }
            let level = Confidence::new(
                row.text("confidence")
                    .trim_end_matches('%')
                    .parse()
                    .unwrap_or(f64::NAN),
            )?;
            let x = row.num("x");
            let lower = byars_lower(x, level)?.unwrap_or(f64::NAN);
            assert_close(lower, row.num("lowercl"), 1e-13, &row.describe());
            assert_close(
                byars_upper(x, level)?,
                row.num("uppercl"),
                1e-13,
                &row.describe(),
            );
            checked += 1;
        }
        assert_eq!(checked, 7);
        Ok(())
    }

    #[test]
    fn byars_negative_count_is_an_error() -> Result<(), StatsError> {
        let level = Confidence::new(0.95)?;
        assert_eq!(
            byars_lower(-1.0, level).err().map(|e| e.message),
            Some("observed events must all be greater than or equal to zero".into())
        );
        assert!(byars_upper(-1.0, level).is_err());
        assert!(exact_limits(-1.0, level).is_err());
        Ok(())
    }

    #[test]
    fn exact_lower_limit_of_zero_is_zero() -> Result<(), StatsError> {
        let limits = exact_limits(0.0, Confidence::new(0.95)?)?;
        assert_eq!(limits.lower, 0.0);
        assert!((limits.upper - 3.6888794541139354).abs() < 1e-12);
        Ok(())
    }
}
