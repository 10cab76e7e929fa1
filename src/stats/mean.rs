//! Means with Student-t confidence limits (PHEindicatormethods `phe_mean`).

use super::precision::{Confidence, check_one_or_reference_pair, students_t_quantile};
use super::{Argument, Estimate, Limits, StatsError};

/// The method label the reference writes for means.
pub const METHOD: &str = "Student's t-distribution";

/// A mean with its summary columns, as `phe_mean` reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanResult {
    /// Σx, or `None` when any value is missing (the reference does not remove NAs).
    pub value_sum: Option<f64>,
    /// N, the number of values.
    pub value_count: usize,
    /// Sample standard deviation (denominator N − 1); `None` when missing or N < 2.
    pub stdev: Option<f64>,
    /// The mean and its limits; `None` when any value is missing. With N = 1 the limits are
    /// `NaN`, as the reference's are NA.
    pub estimate: Option<Estimate>,
}

/// The mean Σx/N with limits mean ∓ |t(N−1; (1−c)/2)| · s/√N, where s is the sample standard
/// deviation (PHEindicatormethods `phe_mean`). A missing value (`NaN`) makes the sum, standard
/// deviation and estimate missing, as in the reference.
///
/// # Errors
/// - no values: "values must contain at least one value"
/// - the level-set check of [`check_one_or_reference_pair`]
///
/// # Examples
/// ```
/// use healthgap::stats::{mean::mean, Confidence};
/// let result = mean(&[1.0, 2.0, 3.0, 4.0], &[Confidence::new(0.95)?])?;
/// let estimate = result.estimate.expect("no missing values");
/// assert_eq!(estimate.value, 2.5);
/// assert!((estimate.limits[0].lower - 0.445739743239121).abs() < 1e-9);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn mean(values: &[f64], levels: &[Confidence]) -> Result<MeanResult, StatsError> {
    check_one_or_reference_pair(levels)?;
    if values.is_empty() {
        return Err(StatsError::new(
            Argument::Value,
            "values must contain at least one value",
        ));
    }
    let count = values.len();
    if values.iter().any(|v| v.is_nan()) {
        return Ok(MeanResult {
            value_sum: None,
            value_count: count,
            stdev: None,
            estimate: None,
        });
    }
    let n = count as f64;
    let sum: f64 = values.iter().sum();
    let value = sum / n;
    let stdev = if count > 1 {
        let squares: f64 = values.iter().map(|v| (v - value).powi(2)).sum();
        (squares / (n - 1.0)).sqrt()
    } else {
        f64::NAN
    };
    let limits = levels
        .iter()
        .map(|&c| {
            let t = students_t_quantile((1.0 - c.value()) / 2.0, n - 1.0).abs();
            let half_width = t * stdev / n.sqrt();
            Limits {
                lower: value - half_width,
                upper: value + half_width,
            }
        })
        .collect();
    Ok(MeanResult {
        value_sum: Some(sum),
        value_count: count,
        stdev: (!stdev.is_nan()).then_some(stdev),
        estimate: Some(Estimate { value, limits }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{Table, assert_close, assert_close_opt};

    #[test]
    fn mean_vectors() -> Result<(), StatsError> {
        let input = Table::read("mean_input.csv");
        let expected = Table::read("mean_expected.csv");
        let levels = [Confidence::new(0.95)?, Confidence::new(0.998)?];
        for row in expected.rows() {
            let area = row.text("area");
            let values: Vec<f64> = if area == "No grouping" {
                input.rows().map(|r| r.num("values")).collect()
            } else {
                input
                    .filter("area", area)
                    .iter()
                    .map(|r| r.num("values"))
                    .collect()
            };
            let got = mean(&values, &levels)?;
            let what = row.describe();
            assert_close_opt(got.value_sum, row.num("value_sum"), 1e-12, &what);
            assert_eq!(got.value_count as f64, row.num("value_count"), "{what}");
            assert_close_opt(got.stdev, row.num("stdev"), 1e-12, &what);
            let estimate = got.estimate.as_ref();
            assert_close(
                estimate.map_or(f64::NAN, |e| e.value),
                row.num("value"),
                1e-12,
                &what,
            );
            for (i, (lo, hi)) in [
                ("lower95_0cl", "upper95_0cl"),
                ("lower99_8cl", "upper99_8cl"),
            ]
            .iter()
            .enumerate()
            {
                let limits = estimate.and_then(|e| e.limits.get(i).copied());
                assert_close(
                    limits.map_or(f64::NAN, |l| l.lower),
                    row.num(lo),
                    1e-10,
                    &what,
                );
                assert_close(
                    limits.map_or(f64::NAN, |l| l.upper),
                    row.num(hi),
                    1e-10,
                    &what,
                );
            }
        }
        Ok(())
    }

    #[test]
    fn mean_missing_value_propagates() -> Result<(), StatsError> {
        let got = mean(&[1.0, f64::NAN], &[Confidence::new(0.95)?])?;
        assert_eq!(got.estimate, None);
        assert_eq!(got.value_count, 2);
        Ok(())
    }

    #[test]
    fn mean_of_nothing_is_an_error() {
        assert!(mean(&[], &[]).is_err());
    }
}
