//! Crude rates with Poisson confidence limits: exact below 10 events, Byar's otherwise
//! (PHEindicatormethods `phe_rate`).
//!
//! The Poisson limits themselves live in [`super::poisson`]; grouping is the caller's job.

use super::poisson::{PoissonMethod, poisson_limits_unchecked};
use super::precision::{Confidence, check_one_or_reference_pair};
use super::{Argument, Estimate, Limits, StatsError, format_multiplier};

/// A crude rate and the Poisson method behind its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RateResult {
    /// The rate and its limits, or `None` when x or n is missing (the reference's NA).
    pub estimate: Option<Estimate>,
    /// "Exact" below 10 events, "Byars" otherwise; `None` when x is missing.
    pub method: Option<PoissonMethod>,
}

/// A crude rate x/n · multiplier with limits L(x)/n · multiplier and U(x)/n · multiplier, where
/// L and U are the exact Poisson limits for x < 10 and Byar's otherwise (PHEindicatormethods
/// `phe_rate`). x > n is allowed. Missing x or n (`NaN`) gives no estimate; the method is still
/// reported when x is present.
///
/// # Errors
/// - x < 0: "numerators must be greater than or equal to zero"
/// - n ≤ 0: "denominators must be greater than zero"
/// - the level-set check of [`check_one_or_reference_pair`]
///
/// # Examples
/// ```
/// use healthgap::stats::{rate::crude_rate, Confidence};
/// let rate = crude_rate(65.0, 100.0, &[Confidence::new(0.95)?], 100000.0)?;
/// let estimate = rate.estimate.expect("both inputs present");
/// assert_eq!(estimate.value, 65000.0);
/// assert!((estimate.limits[0].lower - 50163.18771045945).abs() < 1e-6);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn crude_rate(
    x: f64,
    n: f64,
    levels: &[Confidence],
    multiplier: f64,
) -> Result<RateResult, StatsError> {
    check_one_or_reference_pair(levels)?;
    if x < 0.0 {
        return Err(StatsError::new(
            Argument::X,
            "numerators must be greater than or equal to zero",
        ));
    }
    if n <= 0.0 {
        return Err(StatsError::new(
            Argument::N,
            "denominators must be greater than zero",
        ));
    }
    if x.is_nan() {
        return Ok(RateResult {
            estimate: None,
            method: None,
        });
    }
    let method = Some(PoissonMethod::for_count(x));
    if n.is_nan() {
        return Ok(RateResult {
            estimate: None,
            method,
        });
    }
    let limits = levels
        .iter()
        .map(|&c| {
            let (count, _) = poisson_limits_unchecked(x, c);
            Limits {
                lower: count.lower / n * multiplier,
                upper: count.upper / n * multiplier,
            }
        })
        .collect();
    Ok(RateResult {
        estimate: Some(Estimate {
            value: x / n * multiplier,
            limits,
        }),
        method,
    })
}

/// The reference's `statistic` label: `"rate per <multiplier>"`.
///
/// # Examples
/// ```
/// use healthgap::stats::rate::statistic_label;
/// assert_eq!(statistic_label(100000.0), "rate per 100000");
/// ```
pub fn statistic_label(multiplier: f64) -> String {
    format!("rate per {}", format_multiplier(multiplier))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{Table, assert_close};

    #[test]
    fn rate_vectors_per_row() -> Result<(), StatsError> {
        let table = Table::read("rate_input_expected.csv");
        let levels = [Confidence::new(0.95)?, Confidence::new(0.998)?];
        for row in table.rows() {
            let got = crude_rate(
                row.num("Numerator"),
                row.num("Denominator"),
                &levels,
                row.num("multiplier"),
            )?;
            let what = row.describe();
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
                    1e-12,
                    &what,
                );
                assert_close(
                    limits.map_or(f64::NAN, |l| l.upper),
                    row.num(hi),
                    1e-12,
                    &what,
                );
            }
            assert_eq!(
                got.method.map_or("", |m| m.label()),
                row.text("method"),
                "{what}"
            );
            assert_eq!(
                statistic_label(row.num("multiplier")),
                row.text("statistic"),
                "{what}"
            );
        }
        Ok(())
    }

    #[test]
    fn rate_grouped_vectors() -> Result<(), StatsError> {
        let table = Table::read("rate_grouped_expected.csv");
        for row in table.rows() {
            let got = crude_rate(
                row.num("Numerator"),
                row.num("Denominator"),
                &[Confidence::new(95.0)?],
                100000.0,
            )?;
            let what = row.describe();
            let estimate = got.estimate.as_ref();
            assert_close(
                estimate.map_or(f64::NAN, |e| e.value),
                row.num("value"),
                1e-12,
                &what,
            );
            let limits = estimate.and_then(|e| e.limits.first().copied());
            assert_close(
                limits.map_or(f64::NAN, |l| l.lower),
                row.num("lowercl"),
                1e-12,
                &what,
            );
            assert_close(
                limits.map_or(f64::NAN, |l| l.upper),
                row.num("uppercl"),
                1e-12,
                &what,
            );
        }
        Ok(())
    }

    #[test]
    fn rate_errors() -> Result<(), StatsError> {
        let level = [Confidence::new(0.95)?];
        assert_eq!(
            crude_rate(-1.0, 10.0, &level, 1.0).err().map(|e| e.message),
            Some("numerators must be greater than or equal to zero".into())
        );
        assert_eq!(
            crude_rate(1.0, 0.0, &level, 1.0).err().map(|e| e.message),
            Some("denominators must be greater than zero".into())
        );
        let bad_pair = [Confidence::new(0.95)?, Confidence::new(0.99)?];
        assert!(crude_rate(1.0, 10.0, &bad_pair, 1.0).is_err());
        Ok(())
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn rate_limits_bracket_the_value_and_are_not_negative(
                x in 0u32..100_000, n in 1.0f64..1e7, multiplier in prop::sample::select(vec![100.0, 1000.0, 100000.0])
            ) {
                let levels = [Confidence::new(0.95)?, Confidence::new(0.998)?];
                let rate = crude_rate(f64::from(x), n, &levels, multiplier)?;
                let estimate = rate.estimate.ok_or_else(|| TestCaseError::fail("no estimate"))?;
                prop_assert!(estimate.value >= 0.0);
                for limits in &estimate.limits {
                    prop_assert!(limits.lower >= 0.0);
                    prop_assert!(limits.lower <= estimate.value * (1.0 + 1e-12));
                    prop_assert!(estimate.value <= limits.upper);
                }
                // The 99.8% interval contains the 95% one.
                prop_assert!(estimate.limits[1].lower <= estimate.limits[0].lower);
                prop_assert!(estimate.limits[1].upper >= estimate.limits[0].upper);
            }
        }
    }
}
