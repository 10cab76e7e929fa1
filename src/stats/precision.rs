//! Confidence levels, critical values and the tolerances the tests hold the methods to.
//!
//! Every z value in the crate comes from here: either [`Confidence::z`] (two-sided, from the
//! normal quantile in `statrs`) or the documented constants below. Distribution quantiles
//! (normal, chi-squared, Student t) are thin wrappers over `statrs` so that no other file
//! constructs distributions or inlines `1.96`.

use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};

use super::{Argument, StatsError};

/// The 95% two-sided normal critical value, Φ⁻¹(0.975), as the reference hard-codes it where it
/// turns 95% confidence limits back into a standard error (SII) regardless of the level asked
/// for. Equal to `Confidence::new(0.95)?.z()` to the last bit.
pub const Z_95: f64 = 1.959963984540054;

/// Relative tolerance for closed-form methods against the reference vectors. The reference's own
/// tests allow about 1.5e-8 (testthat's default); we hold ourselves to 1e-9.
pub const EXACT_RELATIVE_TOLERANCE: f64 = 1e-9;

/// Tolerance for simulated SII/RII limits: the reference's tests allow a column-wise mean
/// relative difference of 5%, because its expected limits come from a different simulation.
pub const SIMULATION_RELATIVE_TOLERANCE: f64 = 0.05;

/// The "two sigma" funnel probability: one-sided p = 0.975 (z = 1.959964).
pub const FUNNEL_TWO_SIGMA: f64 = 0.975;

/// The "three sigma" funnel probability: one-sided p = 0.999 (z = 3.090232).
pub const FUNNEL_THREE_SIGMA: f64 = 0.999;

/// The only pair of levels most reference functions accept together.
pub const REFERENCE_PAIR: (f64, f64) = (0.95, 0.998);

/// A confidence level c with 0.9 ≤ c ≤ 1, normalised from a percentage when given as one.
///
/// The reference accepts a level in [0.9, 1] or [90, 100] and divides the latter by 100.
///
/// The critical value is found once, here: an indicators table asks for it twice a row (the
/// normal quantile is a rational approximation with a logarithm and a square root).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Confidence {
    level: f64,
    z: f64,
}

impl Confidence {
    /// Validate and normalise a level: 95 and 0.95 both mean 95%.
    ///
    /// Rule (PHEindicatormethods, all functions): a level ≥ 90 is divided by 100; the result
    /// must lie in [0.9, 1].
    ///
    /// # Errors
    /// "confidence level must be between 90 and 100 or between 0.9 and 1" for anything else
    /// (including `NaN`).
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::Confidence;
    /// assert_eq!(Confidence::new(95.0)?.value(), 0.95);
    /// assert!(Confidence::new(0.7).is_err());
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn new(level: f64) -> Result<Self, StatsError> {
        let normalised = if level >= 90.0 { level / 100.0 } else { level };
        if (0.9..=1.0).contains(&normalised) {
            let mut confidence = Confidence {
                level: normalised,
                z: f64::NAN,
            };
            confidence.z = normal_quantile(confidence.upper_probability());
            Ok(confidence)
        } else {
            Err(StatsError::new(
                Argument::Confidence,
                "confidence level must be between 90 and 100 or between 0.9 and 1",
            ))
        }
    }

    /// The level as a proportion, e.g. 0.95.
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::Confidence;
    /// assert_eq!(Confidence::new(99.8)?.value(), 0.998);
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn value(self) -> f64 {
        self.level
    }

    /// The upper-tail probability of a two-sided interval, `c + (1 − c)/2` (0.975 for 95%).
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::Confidence;
    /// assert_eq!(Confidence::new(0.95)?.upper_probability(), 0.975);
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn upper_probability(self) -> f64 {
        self.level + (1.0 - self.level) / 2.0
    }

    /// The two-sided critical value `z = Φ⁻¹(c + (1 − c)/2)` (1.959963984540054 for 95%;
    /// infinite for c = 1).
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::Confidence;
    /// let z = Confidence::new(0.998)?.z();
    /// assert!((z - 3.090232306167813).abs() < 1e-12);
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn z(self) -> f64 {
        self.z
    }

    /// The suffix the reference uses in column names: `level·100` with one decimal, "." replaced
    /// by "_" (95% → `95_0`, 99.8% → `99_8`).
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::Confidence;
    /// assert_eq!(Confidence::new(0.998)?.column_suffix(), "99_8");
    /// assert_eq!(Confidence::new(95.0)?.column_suffix(), "95_0");
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn column_suffix(self) -> String {
        format!("{:.1}", self.level * 100.0).replace('.', "_")
    }

    /// The label the reference writes in its `confidence` column: "95%", "99.8%".
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::Confidence;
    /// assert_eq!(Confidence::new(0.998)?.label(), "99.8%");
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn label(self) -> String {
        // Round to 10 significant digits so 0.998 · 100 = 99.80000000000001 prints as 99.8.
        let percent = (self.level * 100.0 * 1e8).round() / 1e8;
        format!("{percent}%")
    }
}

/// Validate a set of levels for the reference functions that accept one level or exactly the
/// pair (0.95, 0.998): rates, proportions, means, DSRs and ISRs.
///
/// # Errors
/// - more than two levels: "a maximum of two confidence levels can be provided"
/// - two levels other than 0.95 and 0.998: "two confidence levels can only be produced if they
///   are specified as 0.95 and 0.998"
///
/// # Examples
/// ```
/// use healthgap::stats::{precision::check_one_or_reference_pair, Confidence};
/// let pair = [Confidence::new(0.95)?, Confidence::new(0.998)?];
/// assert!(check_one_or_reference_pair(&pair).is_ok());
/// let bad = [Confidence::new(0.95)?, Confidence::new(0.99)?];
/// assert!(check_one_or_reference_pair(&bad).is_err());
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn check_one_or_reference_pair(levels: &[Confidence]) -> Result<(), StatsError> {
    match levels {
        [] | [_] => Ok(()),
        [a, b] if a.value() == REFERENCE_PAIR.0 && b.value() == REFERENCE_PAIR.1 => Ok(()),
        [_, _] => Err(StatsError::new(
            Argument::Confidence,
            "two confidence levels can only be produced if they are specified as 0.95 and 0.998",
        )),
        _ => Err(StatsError::new(
            Argument::Confidence,
            "a maximum of two confidence levels can be provided",
        )),
    }
}

/// The reference's names for the lower and upper limit columns: `lowercl`/`uppercl` for one
/// level, `lower95_0cl`/`upper95_0cl`, … for several.
///
/// # Examples
/// ```
/// use healthgap::stats::{precision::limit_column_names, Confidence};
/// let names = limit_column_names(&[Confidence::new(0.95)?, Confidence::new(0.998)?]);
/// assert_eq!(names[1], ("lower99_8cl".to_string(), "upper99_8cl".to_string()));
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn limit_column_names(levels: &[Confidence]) -> Vec<(String, String)> {
    if let [_] = levels {
        return vec![("lowercl".to_string(), "uppercl".to_string())];
    }
    levels
        .iter()
        .map(|c| {
            let suffix = c.column_suffix();
            (format!("lower{suffix}cl"), format!("upper{suffix}cl"))
        })
        .collect()
}

/// The reference's `confidence` metadata label for a set of levels: "95%" or "95%, 99.8%".
///
/// # Examples
/// ```
/// use healthgap::stats::{precision::levels_label, Confidence};
/// let levels = [Confidence::new(0.95)?, Confidence::new(0.998)?];
/// assert_eq!(levels_label(&levels), "95%, 99.8%");
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn levels_label(levels: &[Confidence]) -> String {
    levels
        .iter()
        .map(|c| c.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Standard normal quantile Φ⁻¹(p) (statrs), e.g. 1.959963984540054 for p = 0.975.
///
/// `p` outside [0, 1] (or `NaN`) gives `NaN` rather than a panic.
///
/// # Examples
/// ```
/// use healthgap::stats::precision::normal_quantile;
/// assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-14);
/// ```
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    Normal::standard().inverse_cdf(p)
}

/// Chi-squared quantile with `df` degrees of freedom (statrs), as R's `qchisq(p, df)`.
/// With `df = 0` the distribution is a point mass at 0, so the quantile is 0 (as in R).
///
/// Invalid `p` or `df` give `NaN` rather than a panic.
///
/// # Examples
/// ```
/// use healthgap::stats::precision::chi_squared_quantile;
/// assert!((chi_squared_quantile(0.975, 2.0) - 7.377758908227871).abs() < 1e-12);
/// assert_eq!(chi_squared_quantile(0.025, 0.0), 0.0);
/// ```
pub fn chi_squared_quantile(p: f64, df: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || df.is_nan() || df < 0.0 {
        return f64::NAN;
    }
    if df == 0.0 {
        return 0.0;
    }
    let Ok(dist) = ChiSquared::new(df) else {
        return f64::NAN;
    };
    let mut x = dist.inverse_cdf(p);
    // statrs stops its search at a loose relative step (about 3e-11 off R's qchisq in the upper
    // tail), so polish with Newton steps on the tail that holds the precision: the survival
    // function above the median, the distribution function below it.
    for _ in 0..4 {
        let density = dist.pdf(x);
        if density.is_nan() || density <= 0.0 || !x.is_finite() {
            break;
        }
        let step = if p > 0.5 {
            (dist.sf(x) - (1.0 - p)) / density
        } else {
            (p - dist.cdf(x)) / density
        };
        let next = x + step;
        if next.is_nan() || next <= 0.0 || !next.is_finite() {
            break;
        }
        x = next;
        if step.abs() <= f64::EPSILON * x {
            break;
        }
    }
    x
}

/// Student-t quantile with `df` degrees of freedom (statrs), as R's `qt(p, df)`.
///
/// Invalid `p` or `df` (≤ 0) give `NaN` rather than a panic.
///
/// # Examples
/// ```
/// use healthgap::stats::precision::students_t_quantile;
/// assert!((students_t_quantile(0.975, 7.0) - 2.364624251592785).abs() < 1e-12);
/// ```
pub fn students_t_quantile(p: f64, df: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) => dist.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// Relative difference |actual − expected| / |expected|, or the absolute difference when
/// `expected` is 0. Used by the known-answer tests.
///
/// # Examples
/// ```
/// use healthgap::stats::precision::relative_difference;
/// assert_eq!(relative_difference(1.1, 1.0), 0.10000000000000009);
/// ```
pub fn relative_difference(actual: f64, expected: f64) -> f64 {
    if expected == 0.0 {
        (actual - expected).abs()
    } else {
        ((actual - expected) / expected).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_normalises_percentages() -> Result<(), StatsError> {
        assert_eq!(Confidence::new(95.0)?.value(), 0.95);
        assert_eq!(Confidence::new(100.0)?.value(), 1.0);
        assert_eq!(Confidence::new(0.9)?.value(), 0.9);
        Ok(())
    }

    #[test]
    fn confidence_out_of_range_is_an_error() {
        for bad in [0.7, 14.0, 125.0, f64::NAN, -1.0, 89.0] {
            let err = Confidence::new(bad).err();
            assert_eq!(
                err.map(|e| e.message),
                Some("confidence level must be between 90 and 100 or between 0.9 and 1".into()),
                "level {bad}"
            );
        }
    }

    #[test]
    fn z_values_match_the_reference_table() -> Result<(), StatsError> {
        for (level, z) in [
            (0.95, 1.959963984540054),
            (0.998, 3.090232306167813),
            (0.99, 2.5758293035489),
            (0.98, 2.3263478740408408),
            (0.90, 1.6448536269514722),
        ] {
            let got = Confidence::new(level)?.z();
            assert!(relative_difference(got, z) < 1e-13, "{level}: {got} vs {z}");
        }
        assert!(relative_difference(Confidence::new(0.95)?.z(), Z_95) < 1e-15);
        Ok(())
    }

    #[test]
    fn column_suffixes() -> Result<(), StatsError> {
        assert_eq!(Confidence::new(98.0)?.column_suffix(), "98_0");
        assert_eq!(Confidence::new(0.9)?.column_suffix(), "90_0");
        Ok(())
    }

    #[test]
    fn more_than_two_levels_is_an_error() -> Result<(), StatsError> {
        let levels = [
            Confidence::new(0.95)?,
            Confidence::new(0.99)?,
            Confidence::new(0.998)?,
        ];
        let err = check_one_or_reference_pair(&levels).err();
        assert_eq!(
            err.map(|e| e.message),
            Some("a maximum of two confidence levels can be provided".into())
        );
        Ok(())
    }

    #[test]
    fn one_level_uses_plain_column_names() -> Result<(), StatsError> {
        let names = limit_column_names(&[Confidence::new(0.998)?]);
        assert_eq!(names, vec![("lowercl".into(), "uppercl".into())]);
        Ok(())
    }

    #[test]
    fn quantile_wrappers_reject_bad_input_without_panicking() {
        assert!(normal_quantile(1.5).is_nan());
        assert!(chi_squared_quantile(0.5, -1.0).is_nan());
        assert!(students_t_quantile(0.5, 0.0).is_nan());
    }
}
