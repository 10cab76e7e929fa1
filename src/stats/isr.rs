//! Indirectly standardised ratios (such as the SMR) and rates (PHEindicatormethods
//! `calculate_ISRatio`, `calculate_ISRate`).
//!
//! One call handles one group's age bands with the reference rates as columns (the reference's
//! `refpoptype = "field"`); a caller holding a reference vector repeats it per group. Limits
//! come from [`super::poisson`].

use super::poisson::{PoissonMethod, poisson_limits_unchecked};
use super::precision::{Confidence, check_one_or_reference_pair};
use super::{Argument, Estimate, Limits, StatsError, any_present, format_multiplier, sum_present};

/// One group's age bands for indirect standardisation. Missing values are `NaN`.
#[derive(Debug, Clone, Copy)]
pub struct IsrInput<'a> {
    /// Local events per age band (`x`); missing ones are ignored in the total.
    pub x: &'a [f64],
    /// Local population per age band (`n`); zero is allowed, missing counts as 0.
    pub n: &'a [f64],
    /// Reference events per age band (`x_ref`); missing counts as 0.
    pub x_ref: &'a [f64],
    /// Reference population per age band (`n_ref`).
    pub n_ref: &'a [f64],
    /// The observed total when it is known separately (the reference's `observed_totals`);
    /// otherwise O = Σx.
    pub observed_total: Option<f64>,
}

/// An indirectly standardised ratio or rate for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct IsrResult {
    /// O, the observed events.
    pub observed: f64,
    /// E = Σ (x_refᵢ/n_refᵢ)·nᵢ, the expected events.
    pub expected: f64,
    /// The reference rate Σx_ref/Σn_ref · multiplier (ISRate only).
    pub ref_rate: Option<f64>,
    /// The ratio or rate with its limits.
    pub estimate: Estimate,
    /// Exact below 10 observed events, Byar's otherwise.
    pub method: PoissonMethod,
}

fn na0(v: f64) -> f64 {
    if v.is_nan() { 0.0 } else { v }
}

fn observed_and_expected(input: &IsrInput<'_>) -> Result<(f64, f64), StatsError> {
    let rows = input.x.len();
    if input.n.len() != rows {
        return Err(StatsError::general(
            "x and n must have the same number of rows",
        ));
    }
    if input.x_ref.len() != rows {
        return Err(StatsError::new(
            Argument::XRef,
            "x_ref length must equal number of rows in each group within data",
        ));
    }
    if input.n_ref.len() != rows {
        return Err(StatsError::new(
            Argument::NRef,
            "n_ref length must equal number of rows in each group within data",
        ));
    }
    if any_present(input.x, |v| v < 0.0) || input.observed_total.is_some_and(|o| o < 0.0) {
        return Err(StatsError::new(
            Argument::X,
            "numerators must all be greater than or equal to zero",
        ));
    }
    if any_present(input.n, |v| v < 0.0) {
        return Err(StatsError::new(
            Argument::N,
            "denominators must all be greater than or equal to zero",
        ));
    }
    // Not a reference condition: a zero or missing reference population would make the
    // expected count infinite or NA, so we say so rather than publish it.
    if input.n_ref.iter().any(|&v| v.is_nan() || v <= 0.0) {
        return Err(StatsError::new(
            Argument::NRef,
            "reference denominators (n_ref) must all be greater than zero",
        ));
    }
    let expected = input
        .x_ref
        .iter()
        .zip(input.n_ref)
        .zip(input.n)
        .map(|((&xr, &nr), &n)| na0(xr) / nr * na0(n))
        .sum();
    let observed = input.observed_total.unwrap_or_else(|| sum_present(input.x));
    Ok((observed, expected))
}

fn scaled(
    observed: f64,
    expected: f64,
    scale: f64,
    levels: &[Confidence],
) -> (Estimate, PoissonMethod) {
    let method = PoissonMethod::for_count(observed);
    let limits = levels
        .iter()
        .map(|&c| {
            let (count, _) = poisson_limits_unchecked(observed, c);
            Limits {
                lower: count.lower / expected * scale,
                upper: count.upper / expected * scale,
            }
        })
        .collect();
    let estimate = Estimate {
        value: observed / expected * scale,
        limits,
    };
    (estimate, method)
}

/// The indirectly standardised ratio O/E · refvalue with limits L(O)/E · refvalue and
/// U(O)/E · refvalue, L and U exact below 10 events and Byar's otherwise
/// (PHEindicatormethods `calculate_ISRatio`). refvalue 1 gives the ratio, 100 the "×100" form.
///
/// # Errors
/// "numerators must all be greater than or equal to zero", "denominators must all be greater
/// than or equal to zero", the x_ref/n_ref length conditions, a zero or missing n_ref, and the
/// level-set check.
///
/// # Examples
/// ```
/// use healthgap::stats::isr::{indirectly_standardised_ratio, IsrInput};
/// use healthgap::stats::Confidence;
/// let input = IsrInput { x: &[30.0, 20.0], n: &[1000.0, 1000.0], x_ref: &[2.0, 2.0],
///     n_ref: &[100.0, 100.0], observed_total: None };
/// let result = indirectly_standardised_ratio(&input, &[Confidence::new(0.95)?], 100.0)?;
/// assert_eq!(result.expected, 40.0);
/// assert_eq!(result.estimate.value, 125.0);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn indirectly_standardised_ratio(
    input: &IsrInput<'_>,
    levels: &[Confidence],
    refvalue: f64,
) -> Result<IsrResult, StatsError> {
    check_one_or_reference_pair(levels)?;
    let (observed, expected) = observed_and_expected(input)?;
    let (estimate, method) = scaled(observed, expected, refvalue, levels);
    Ok(IsrResult {
        observed,
        expected,
        ref_rate: None,
        estimate,
        method,
    })
}

/// The indirectly standardised rate O/E · ref_rate, ref_rate = Σx_ref/Σn_ref · multiplier, with
/// limits L(O)/E · ref_rate and U(O)/E · ref_rate (PHEindicatormethods `calculate_ISRate`).
///
/// # Errors
/// As [`indirectly_standardised_ratio`].
///
/// # Examples
/// ```
/// use healthgap::stats::isr::{indirectly_standardised_rate, IsrInput};
/// use healthgap::stats::Confidence;
/// let input = IsrInput { x: &[30.0, 20.0], n: &[1000.0, 1000.0], x_ref: &[2.0, 2.0],
///     n_ref: &[100.0, 100.0], observed_total: None };
/// let result = indirectly_standardised_rate(&input, &[Confidence::new(0.95)?], 1000.0)?;
/// assert_eq!(result.ref_rate, Some(20.0));
/// assert_eq!(result.estimate.value, 25.0);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn indirectly_standardised_rate(
    input: &IsrInput<'_>,
    levels: &[Confidence],
    multiplier: f64,
) -> Result<IsrResult, StatsError> {
    check_one_or_reference_pair(levels)?;
    let (observed, expected) = observed_and_expected(input)?;
    let ref_rate = sum_present(input.x_ref) / sum_present(input.n_ref) * multiplier;
    let (estimate, method) = scaled(observed, expected, ref_rate, levels);
    Ok(IsrResult {
        observed,
        expected,
        ref_rate: Some(ref_rate),
        estimate,
        method,
    })
}

/// The reference's `statistic` label for a ratio: `"indirectly standardised ratio x <refvalue>"`.
///
/// # Examples
/// ```
/// use healthgap::stats::isr::ratio_statistic_label;
/// assert_eq!(ratio_statistic_label(100.0), "indirectly standardised ratio x 100");
/// ```
pub fn ratio_statistic_label(refvalue: f64) -> String {
    format!(
        "indirectly standardised ratio x {}",
        format_multiplier(refvalue)
    )
}

/// The reference's `statistic` label for a rate: `"indirectly standardised rate per <multiplier>"`.
///
/// # Examples
/// ```
/// use healthgap::stats::isr::rate_statistic_label;
/// assert_eq!(rate_statistic_label(1000.0), "indirectly standardised rate per 1000");
/// ```
pub fn rate_statistic_label(multiplier: f64) -> String {
    format!(
        "indirectly standardised rate per {}",
        format_multiplier(multiplier)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{Row, Table, assert_close, assert_close_opt};

    const TOL: f64 = 1e-11;

    fn levels(pair: bool) -> Vec<Confidence> {
        let wanted: &[f64] = if pair { &[0.95, 0.998] } else { &[0.95] };
        wanted
            .iter()
            .filter_map(|&c| Confidence::new(c).ok())
            .collect()
    }

    fn check(got: &IsrResult, row: &Row<'_>, pair: bool) {
        let what = row.describe();
        assert_eq!(got.observed, row.num("observed"), "{what}");
        assert_close(got.expected, row.num("expected"), TOL, &what);
        assert_close_opt(got.ref_rate, row.num("ref_rate"), TOL, &what);
        assert_close(got.estimate.value, row.num("value"), TOL, &what);
        let columns: &[(&str, &str)] = if pair {
            &[
                ("lower95_0cl", "upper95_0cl"),
                ("lower99_8cl", "upper99_8cl"),
            ]
        } else {
            &[("lower95_0cl", "upper95_0cl")]
        };
        for (limits, (lo, hi)) in got.estimate.limits.iter().zip(columns) {
            assert_close(limits.lower, row.num(lo), TOL, &what);
            assert_close(limits.upper, row.num(hi), TOL, &what);
        }
        assert_eq!(got.estimate.limits.len(), columns.len(), "{what}");
        assert_eq!(got.method.label(), row.text("method"), "{what}");
    }

    #[test]
    fn isr_vectors_own_reference() -> Result<(), StatsError> {
        let input = Table::read("isr_input_multiarea_ownref.csv");
        let expected = Table::read("isr_expected.csv");
        for (index, row) in expected.rows().take(12).enumerate() {
            let area = input.filter("area", row.text("area"));
            let (x, n, xr, nr) = (
                Table::column(&area, "count"),
                Table::column(&area, "pop"),
                Table::column(&area, "refcount"),
                Table::column(&area, "refpop"),
            );
            let data = IsrInput {
                x: &x,
                n: &n,
                x_ref: &xr,
                n_ref: &nr,
                observed_total: None,
            };
            let got = match index / 3 {
                0 => indirectly_standardised_rate(&data, &levels(true), 100000.0)?,
                1 => indirectly_standardised_rate(&data, &levels(true), 1000.0)?,
                2 => indirectly_standardised_ratio(&data, &levels(true), 1.0)?,
                _ => indirectly_standardised_ratio(&data, &levels(true), 100.0)?,
            };
            check(&got, &row, true);
            let label = match index / 3 {
                0 => rate_statistic_label(100000.0),
                1 => rate_statistic_label(1000.0),
                2 => ratio_statistic_label(1.0),
                _ => ratio_statistic_label(100.0),
            };
            assert_eq!(label, row.text("statistic"));
        }
        Ok(())
    }

    #[test]
    fn isr_vectors_observed_totals() -> Result<(), StatsError> {
        let input = Table::read("isr_input_multiarea_ownref.csv");
        let totals = Table::read("isr_input_observed_totals.csv");
        let expected = Table::read("isr_expected.csv");
        for (total, row) in totals.rows().zip(expected.rows()) {
            let area = input.filter("area", total.text("area"));
            let (x, n, xr, nr) = (
                Table::column(&area, "count"),
                Table::column(&area, "pop"),
                Table::column(&area, "refcount"),
                Table::column(&area, "refpop"),
            );
            let data = IsrInput {
                x: &x,
                n: &n,
                x_ref: &xr,
                n_ref: &nr,
                observed_total: Some(total.num("total_count")),
            };
            check(
                &indirectly_standardised_rate(&data, &levels(true), 100000.0)?,
                &row,
                true,
            );
        }
        Ok(())
    }

    #[test]
    fn isr_vectors_zero_population() -> Result<(), StatsError> {
        // Rows 13-16: the zero-population sheet with the reference given as a vector.
        let input = Table::read("dsr_isr_err2_zero_pop.csv");
        let reference = Table::read("isr_refdata.csv");
        let refs: Vec<_> = reference.rows().collect();
        let (xr, nr) = (
            Table::column(&refs, "refcount"),
            Table::column(&refs, "refpop"),
        );
        let expected = Table::read("isr_expected.csv");
        for (index, row) in expected.rows().skip(12).enumerate() {
            let area = input.filter("area", row.text("area"));
            let (x, n) = (Table::column(&area, "count"), Table::column(&area, "pop"));
            let data = IsrInput {
                x: &x,
                n: &n,
                x_ref: &xr,
                n_ref: &nr,
                observed_total: None,
            };
            let got = if index < 2 {
                indirectly_standardised_rate(&data, &levels(false), 100000.0)?
            } else {
                indirectly_standardised_ratio(&data, &levels(false), 100.0)?
            };
            check(&got, &row, false);
        }
        Ok(())
    }

    #[test]
    fn isr_errors() -> Result<(), StatsError> {
        for (file, message) in [
            (
                "dsr_isr_err1_negative_count.csv",
                "numerators must all be greater than or equal to zero",
            ),
            (
                "dsr_isr_err3_negative_pop.csv",
                "denominators must all be greater than or equal to zero",
            ),
        ] {
            let input = Table::read(file);
            let rows: Vec<_> = input.rows().collect();
            let (x, n) = (Table::column(&rows, "count"), Table::column(&rows, "pop"));
            let reference = vec![1.0; x.len()];
            let data = IsrInput {
                x: &x,
                n: &n,
                x_ref: &reference,
                n_ref: &reference,
                observed_total: None,
            };
            let err = indirectly_standardised_ratio(&data, &levels(false), 1.0).err();
            assert_eq!(err.map(|e| e.message), Some(message.to_string()), "{file}");
        }
        let short = [1.0];
        let data = IsrInput {
            x: &[1.0, 2.0],
            n: &[1.0, 2.0],
            x_ref: &short,
            n_ref: &[1.0, 1.0],
            observed_total: None,
        };
        assert_eq!(
            indirectly_standardised_rate(&data, &levels(false), 1.0)
                .err()
                .map(|e| e.message),
            Some("x_ref length must equal number of rows in each group within data".into())
        );
        Ok(())
    }
}
