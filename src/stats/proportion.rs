//! Proportions with Wilson score confidence limits (PHEindicatormethods `phe_proportion`,
//! `wilson_lower`, `wilson_upper`).
//!
//! Grouping (summing numerators and denominators per group) is the caller's job; see
//! `cli/stats.rs`.

use super::precision::{Confidence, check_one_or_reference_pair};
use super::{Argument, Estimate, Limits, StatsError, any_present, format_multiplier};

/// The method label the reference writes for proportions.
pub const METHOD: &str = "Wilson";

fn check_inputs(x: &[f64], n: &[f64]) -> Result<(), StatsError> {
    if any_present(x, |v| v < 0.0) {
        return Err(StatsError::new(
            Argument::X,
            "numerators must be greater than or equal to zero",
        ));
    }
    if any_present(n, |v| v <= 0.0) {
        return Err(StatsError::new(
            Argument::N,
            "denominators must be greater than zero",
        ));
    }
    if x.iter().zip(n).any(|(&a, &b)| a > b) {
        return Err(StatsError::new(
            Argument::X,
            "numerators must be less than or equal to denominator for a proportion statistic",
        ));
    }
    Ok(())
}

/// Wilson score limits of a proportion x/n (Wilson 1927; Newcombe 1998):
/// `(2x + z² ∓ z·√(z² + 4x(1 − x/n))) / (2(n + z²))`, unscaled (between 0 and 1).
/// A confidence of exactly 1 gives (0, 1), as in the reference.
/// `x` need not be a whole number (the reference's own test uses 0.445 of 1).
///
/// # Errors
/// - x < 0: "numerators must be greater than or equal to zero"
/// - n ≤ 0: "denominators must be greater than zero"
/// - x > n: "numerators must be less than or equal to denominator for a proportion statistic"
///
/// # Examples
/// ```
/// use healthgap::stats::{proportion::wilson_limits, Confidence};
/// let limits = wilson_limits(65.0, 100.0, Confidence::new(0.95)?)?;
/// assert!((limits.lower - 0.5525444329688797).abs() < 1e-12);
/// assert!((limits.upper - 0.7363575175690247).abs() < 1e-12);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn wilson_limits(x: f64, n: f64, confidence: Confidence) -> Result<Limits, StatsError> {
    check_inputs(&[x], &[n])?;
    Ok(wilson_unchecked(x, n, confidence))
}

fn wilson_unchecked(x: f64, n: f64, confidence: Confidence) -> Limits {
    if confidence.value() == 1.0 {
        return Limits {
            lower: 0.0,
            upper: 1.0,
        };
    }
    let z = confidence.z();
    let z2 = z * z;
    let centre = 2.0 * x + z2;
    let spread = z * (z2 + 4.0 * x * (1.0 - x / n)).sqrt();
    let denominator = 2.0 * (n + z2);
    Limits {
        lower: (centre - spread) / denominator,
        upper: (centre + spread) / denominator,
    }
}

/// A proportion x/n · multiplier with Wilson limits (also multiplied) at each level
/// (PHEindicatormethods `phe_proportion`). Missing x or n (`NaN`) gives `None`, as the
/// reference gives NA. An empty `levels` asks for no limits (the reference's `confidence = NA`).
///
/// # Errors
/// The conditions of [`wilson_limits`], and the level-set check of
/// [`check_one_or_reference_pair`].
///
/// # Examples
/// ```
/// use healthgap::stats::{proportion::proportion, Confidence};
/// let estimate = proportion(65.0, 100.0, &[Confidence::new(0.95)?], 100.0)?;
/// let estimate = estimate.expect("both inputs present");
/// assert_eq!(estimate.value, 65.0);
/// assert!((estimate.limits[0].lower - 55.25444329688797).abs() < 1e-10);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn proportion(
    x: f64,
    n: f64,
    levels: &[Confidence],
    multiplier: f64,
) -> Result<Option<Estimate>, StatsError> {
    check_one_or_reference_pair(levels)?;
    check_inputs(&[x], &[n])?;
    if x.is_nan() || n.is_nan() {
        return Ok(None);
    }
    let limits = levels
        .iter()
        .map(|&c| {
            let l = wilson_unchecked(x, n, c);
            Limits {
                lower: l.lower * multiplier,
                upper: l.upper * multiplier,
            }
        })
        .collect();
    Ok(Some(Estimate {
        value: x / n * multiplier,
        limits,
    }))
}

/// The reference's `statistic` label: "percentage" for multiplier 100, otherwise
/// `"proportion of <multiplier>"`.
///
/// # Examples
/// ```
/// use healthgap::stats::proportion::statistic_label;
/// assert_eq!(statistic_label(100.0), "percentage");
/// assert_eq!(statistic_label(1.0), "proportion of 1");
/// ```
pub fn statistic_label(multiplier: f64) -> String {
    if multiplier == 100.0 {
        "percentage".to_string()
    } else {
        format!("proportion of {}", format_multiplier(multiplier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{Table, assert_close};

    fn pair() -> Result<Vec<Confidence>, StatsError> {
        Ok(vec![Confidence::new(0.95)?, Confidence::new(0.998)?])
    }

    #[test]
    fn wilson_vectors() -> Result<(), StatsError> {
        let table = Table::read("byars_wilson_expected.csv");
        let rows = table.filter("method", "Wilson");
        assert_eq!(rows.len(), 6);
        for row in rows {
            let percent: f64 = row
                .text("confidence")
                .trim_end_matches('%')
                .parse()
                .unwrap_or(f64::NAN);
            let limits = wilson_limits(row.num("x"), row.num("n"), Confidence::new(percent)?)?;
            assert_close(limits.lower, row.num("lowercl"), 1e-12, &row.describe());
            assert_close(limits.upper, row.num("uppercl"), 1e-12, &row.describe());
        }
        Ok(())
    }

    #[test]
    fn proportion_vectors_per_row() -> Result<(), StatsError> {
        let table = Table::read("proportion_input_expected.csv");
        for row in table.rows() {
            let got = proportion(
                row.num("Numerator"),
                row.num("Denominator"),
                &pair()?,
                row.num("multiplier"),
            )?;
            let what = row.describe();
            let value = got.as_ref().map_or(f64::NAN, |e| e.value);
            assert_close(value, row.num("value"), 1e-12, &what);
            for (i, (lo, hi)) in [
                ("lower95_0cl", "upper95_0cl"),
                ("lower99_8cl", "upper99_8cl"),
            ]
            .iter()
            .enumerate()
            {
                let limits = got.as_ref().and_then(|e| e.limits.get(i).copied());
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
                statistic_label(row.num("multiplier")),
                row.text("statistic"),
                "{what}"
            );
        }
        Ok(())
    }

    #[test]
    fn proportion_grouped_vectors() -> Result<(), StatsError> {
        let table = Table::read("proportion_grouped_expected.csv");
        for row in table.rows() {
            let got = proportion(
                row.num("Numerator"),
                row.num("Denominator"),
                &[Confidence::new(0.95)?],
                1.0,
            )?;
            let what = row.describe();
            assert_close(
                got.as_ref().map_or(f64::NAN, |e| e.value),
                row.num("value"),
                1e-12,
                &what,
            );
            let limits = got.as_ref().and_then(|e| e.limits.first().copied());
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
    fn wilson_confidence_one_gives_zero_to_one() -> Result<(), StatsError> {
        let limits = wilson_limits(65.0, 100.0, Confidence::new(1.0)?)?;
        assert_eq!((limits.lower, limits.upper), (0.0, 1.0));
        Ok(())
    }

    #[test]
    fn proportion_without_levels_has_no_limits() -> Result<(), StatsError> {
        let got = proportion(2.0, 200.0, &[], 1.0)?;
        assert_eq!(got.map(|e| e.limits.len()), Some(0));
        Ok(())
    }

    #[test]
    fn proportion_errors() {
        let level = [Confidence::new(0.95).unwrap_or_else(|_| unreachable!())];
        let message = |x, n| proportion(x, n, &level, 1.0).err().map(|e| e.message);
        assert_eq!(
            message(-1.0, 10.0),
            Some("numerators must be greater than or equal to zero".into())
        );
        assert_eq!(
            message(1.0, 0.0),
            Some("denominators must be greater than zero".into())
        );
        assert_eq!(
            message(1.0, -3.0),
            Some("denominators must be greater than zero".into())
        );
        assert_eq!(
            message(11.0, 10.0),
            Some(
                "numerators must be less than or equal to denominator for a proportion statistic"
                    .into()
            )
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn wilson_limits_bracket_the_proportion(n in 1u32..1_000_000, share in 0.0f64..=1.0) {
                let x = (f64::from(n) * share).floor();
                let levels = [Confidence::new(0.95)?, Confidence::new(0.998)?];
                let estimate = proportion(x, f64::from(n), &levels, 100.0)?
                    .ok_or_else(|| TestCaseError::fail("no estimate"))?;
                for limits in &estimate.limits {
                    prop_assert!(limits.lower >= -1e-12 && limits.upper <= 100.0 + 1e-9);
                    prop_assert!(limits.lower <= estimate.value + 1e-9 && estimate.value <= limits.upper + 1e-9);
                }
            }
        }
    }
}
