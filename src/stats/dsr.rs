//! Directly standardised rates with Dobson confidence limits, including the variant for
//! non-independent events (PHEindicatormethods `calculate_dsr`, and the deprecated `phe_dsr`,
//! which gives the same numbers).
//!
//! One call handles one group's age bands; the ESP2013 weights are in [`ESP2013`]. Byar's
//! limits of the total count come from [`super::poisson`].

use std::collections::BTreeMap;

use super::poisson::{byars_lower_unchecked, byars_upper_unchecked};
use super::precision::{Confidence, check_one_or_reference_pair};
use super::{Argument, Estimate, Limits, StatsError, any_present, format_multiplier, sum_present};

/// The 2013 European Standard Population for the 19 age bands 0-4, 5-9, …, 85-89, 90+
/// (sums to 100,000), the reference's default standard population.
pub const ESP2013: [f64; 19] = [
    5000.0, 5500.0, 5500.0, 5500.0, 6000.0, 6000.0, 6500.0, 7000.0, 7000.0, 7000.0, 7000.0, 6500.0,
    6000.0, 5500.0, 5000.0, 4000.0, 2500.0, 1500.0, 1000.0,
];

/// DSRs with fewer total events than this are suppressed (value and limits NA).
pub const SUPPRESS_BELOW: f64 = 10.0;

/// Which variance the DSR's limits used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsrMethod {
    /// Dobson et al. (1991), events independent.
    Dobson,
    /// Dobson, with the variance adjusted for persons having several events.
    DobsonNonIndependent,
}

impl DsrMethod {
    /// The reference's method label.
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::dsr::DsrMethod;
    /// assert_eq!(DsrMethod::Dobson.label(), "Dobson");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            DsrMethod::Dobson => "Dobson",
            DsrMethod::DobsonNonIndependent => {
                "Dobson, with confidence adjusted for non-independent events"
            }
        }
    }
}

/// A directly standardised rate for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct DsrResult {
    /// O, the total events (missing counts ignored).
    pub total_count: f64,
    /// Σn, the total population.
    pub total_pop: f64,
    /// The DSR and its limits; `None` when O < 10 (suppressed, as the reference does).
    pub estimate: Option<Estimate>,
    /// The variance method used.
    pub method: DsrMethod,
}

impl DsrResult {
    /// The reference's `statistic` label: `"dsr per <multiplier>"`, or
    /// "dsr NA for total count < 10" when suppressed.
    ///
    /// # Examples
    /// ```
    /// use healthgap::stats::dsr::{dsr, ESP2013};
    /// use healthgap::stats::Confidence;
    /// let result = dsr(&[1.0; 19], &[100.0; 19], &ESP2013, &[Confidence::new(0.95)?], 100000.0)?;
    /// assert_eq!(result.statistic_label(100000.0), "dsr per 100000");
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn statistic_label(&self, multiplier: f64) -> String {
        if self.estimate.is_some() {
            format!("dsr per {}", format_multiplier(multiplier))
        } else {
            "dsr NA for total count < 10".to_string()
        }
    }
}

/// The reference's validation of calculate_dsr, in its order.
fn check_inputs(
    x: &[f64],
    n: &[f64],
    stdpop: &[f64],
    levels: &[Confidence],
    multiplier: f64,
) -> Result<(), StatsError> {
    if x.len() != n.len() || x.len() != stdpop.len() {
        return Err(StatsError::general(
            "x, n and stdpop must have the same number of rows",
        ));
    }
    if n.iter().any(|v| v.is_nan()) {
        return Err(StatsError::new(
            Argument::N,
            "field n cannot have missing values",
        ));
    }
    if stdpop.iter().any(|v| v.is_nan()) {
        return Err(StatsError::new(
            Argument::Stdpop,
            "field stdpop cannot have missing values",
        ));
    }
    if any_present(x, |v| v < 0.0) {
        return Err(StatsError::new(
            Argument::X,
            "numerators must all be greater than or equal to zero",
        ));
    }
    if n.iter().any(|&v| v <= 0.0) {
        return Err(StatsError::new(
            Argument::N,
            "denominators must all be greater than zero",
        ));
    }
    if stdpop.iter().any(|&v| v < 0.0) {
        return Err(StatsError::new(
            Argument::Stdpop,
            "stdpop must all be greater than or equal to zero",
        ));
    }
    check_one_or_reference_pair(levels)?;
    if multiplier.is_nan() || multiplier <= 0.0 {
        return Err(StatsError::new(
            Argument::Multiplier,
            "multiplier must be greater than 0",
        ));
    }
    Ok(())
}

/// The Dobson variance of the DSR, before the multiplier: Σ xᵢ(wᵢ/nᵢ)² / (Σwᵢ)².
fn dsr_variance(x: &[f64], n: &[f64], stdpop: &[f64]) -> f64 {
    let weight: f64 = stdpop.iter().sum();
    let numerator: f64 = x
        .iter()
        .zip(n)
        .zip(stdpop)
        .filter(|((x, _), _)| !x.is_nan())
        .map(|((x, n), w)| x * (w / n).powi(2))
        .sum();
    numerator / (weight * weight)
}

/// Assemble the estimate from the collapsed age bands and a variance (Dobson et al. 1991):
/// DSR ∓ √(var/O) · (Byar's limit of O − O) · multiplier.
fn dobson(
    x: &[f64],
    n: &[f64],
    stdpop: &[f64],
    variance: f64,
    levels: &[Confidence],
    multiplier: f64,
    method: DsrMethod,
) -> DsrResult {
    let total_count = sum_present(x);
    let total_pop: f64 = n.iter().sum();
    let weight: f64 = stdpop.iter().sum();
    let estimate = (total_count >= SUPPRESS_BELOW).then(|| {
        let weighted: f64 = x
            .iter()
            .zip(n)
            .zip(stdpop)
            .filter(|((x, _), _)| !x.is_nan())
            .map(|((x, n), w)| x * w / n)
            .sum();
        let value = weighted / weight * multiplier;
        let scale = (variance / total_count).sqrt();
        let limits = levels
            .iter()
            .map(|c| {
                let z = c.z();
                Limits {
                    lower: value
                        + scale
                            * (byars_lower_unchecked(total_count, z) - total_count)
                            * multiplier,
                    upper: value
                        + scale
                            * (byars_upper_unchecked(total_count, z) - total_count)
                            * multiplier,
                }
            })
            .collect();
        Estimate { value, limits }
    });
    DsrResult {
        total_count,
        total_pop,
        estimate,
        method,
    }
}

/// A directly standardised rate for one group with Dobson limits (PHEindicatormethods
/// `calculate_dsr`): DSR = Σ(xᵢwᵢ/nᵢ)/Σwᵢ · m, var = Σxᵢ(wᵢ/nᵢ)²/(Σwᵢ)², and limits
/// DSR + √(var/O)·(Byar's(O) − O)·m with O = Σxᵢ (Dobson et al. 1991). Missing counts (`NaN`)
/// count as 0. With O < 10 the estimate is suppressed (`None`).
///
/// # Errors
/// In the reference's order: "field n cannot have missing values", "field stdpop cannot have
/// missing values", "numerators must all be greater than or equal to zero", "denominators must
/// all be greater than zero", "stdpop must all be greater than or equal to zero", the level-set
/// check, "multiplier must be greater than 0"; also slices of different lengths.
///
/// # Examples
/// ```
/// use healthgap::stats::dsr::{dsr, ESP2013};
/// use healthgap::stats::Confidence;
/// let result = dsr(&[10.0; 19], &[1000.0; 19], &ESP2013, &[Confidence::new(0.95)?], 100000.0)?;
/// assert_eq!(result.total_count, 190.0);
/// let value = result.estimate.map(|e| e.value).unwrap_or_default();
/// assert!((value - 1000.0).abs() < 1e-9);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn dsr(
    x: &[f64],
    n: &[f64],
    stdpop: &[f64],
    levels: &[Confidence],
    multiplier: f64,
) -> Result<DsrResult, StatsError> {
    check_inputs(x, n, stdpop, levels, multiplier)?;
    let variance = dsr_variance(x, n, stdpop);
    Ok(dobson(
        x,
        n,
        stdpop,
        variance,
        levels,
        multiplier,
        DsrMethod::Dobson,
    ))
}

/// A DSR whose events are not independent (a person can have several): row r gives the
/// number of persons `persons[r]` who had `eventfreq[r]` events in age band `ageband[r]`
/// (PHEindicatormethods `calculate_dsr(independent_events = FALSE)`).
///
/// Method: for each frequency f, var_f = Σᵢ xᵢ,f(wᵢ/nᵢ)²/(Σᵢwᵢ)² over that frequency's rows, and
/// the variance is Σ_f f²·var_f; the events per age band xᵢ = Σ_f f·xᵢ,f then give the DSR and
/// O as in [`dsr`].
///
/// # Errors
/// Those of [`dsr`]; missing `eventfreq` or `ageband` values ("field eventfreq cannot have
/// missing values"); and "There are rows with the same grouping variables and ageband but with
/// different populations (n) or standard populations(stdpop)".
///
/// # Examples
/// ```
/// use healthgap::stats::dsr::dsr_non_independent;
/// use healthgap::stats::Confidence;
/// // One age band: 10 persons with one event and 5 with two.
/// let result = dsr_non_independent(&["all", "all"], &[1.0, 2.0], &[10.0, 5.0], &[100.0, 100.0],
///     &[1.0, 1.0], &[Confidence::new(0.95)?], 100.0)?;
/// assert_eq!(result.total_count, 20.0);
/// assert_eq!(result.estimate.map(|e| e.value), Some(20.0));
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn dsr_non_independent<A: Ord>(
    ageband: &[A],
    eventfreq: &[f64],
    persons: &[f64],
    n: &[f64],
    stdpop: &[f64],
    levels: &[Confidence],
    multiplier: f64,
) -> Result<DsrResult, StatsError> {
    check_inputs(persons, n, stdpop, levels, multiplier)?;
    if ageband.len() != persons.len() || eventfreq.len() != persons.len() {
        return Err(StatsError::general(
            "ageband, eventfreq and x must have the same number of rows",
        ));
    }
    if eventfreq.iter().any(|v| v.is_nan()) {
        return Err(StatsError::new(
            Argument::Eventfreq,
            "field eventfreq cannot have missing values",
        ));
    }
    // Step 1: the variance, one frequency at a time. Frequencies are keyed by their bits so
    // that a BTreeMap can order them (they are finite, non-NaN here).
    let mut by_frequency: BTreeMap<u64, (f64, f64, f64)> = BTreeMap::new();
    for (((&f, &x), &n), &w) in eventfreq.iter().zip(persons).zip(n).zip(stdpop) {
        let entry = by_frequency.entry(f.to_bits()).or_insert((f, 0.0, 0.0));
        if !x.is_nan() {
            entry.1 += x * (w / n).powi(2);
        }
        entry.2 += w;
    }
    let variance: f64 = by_frequency
        .values()
        .map(|&(f, numerator, weight)| f * f * numerator / (weight * weight))
        .sum();

    // Step 2: collapse to events per age band, checking n and stdpop agree across frequencies.
    let mut bands: BTreeMap<&A, (f64, f64, f64)> = BTreeMap::new();
    for ((((band, &f), &x), &n), &w) in ageband
        .iter()
        .zip(eventfreq)
        .zip(persons)
        .zip(n)
        .zip(stdpop)
    {
        let events = if x.is_nan() { 0.0 } else { f * x };
        match bands.get_mut(band) {
            Some(entry) => {
                if entry.1 != n || entry.2 != w {
                    return Err(StatsError::new(
                        Argument::Ageband,
                        "There are rows with the same grouping variables and ageband but with \
                         different populations (n) or standard populations(stdpop)",
                    ));
                }
                entry.0 += events;
            }
            None => {
                bands.insert(band, (events, n, w));
            }
        }
    }
    let x: Vec<f64> = bands.values().map(|b| b.0).collect();
    let n: Vec<f64> = bands.values().map(|b| b.1).collect();
    let w: Vec<f64> = bands.values().map(|b| b.2).collect();
    Ok(dobson(
        &x,
        &n,
        &w,
        variance,
        levels,
        multiplier,
        DsrMethod::DobsonNonIndependent,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{Row, Table, assert_close};

    const TOL: f64 = 1e-11;

    fn pair() -> Vec<Confidence> {
        [0.95, 0.998]
            .iter()
            .filter_map(|&c| Confidence::new(c).ok())
            .collect()
    }

    fn check_row(got: &DsrResult, row: &Row<'_>, columns: &[(&str, &str)], tol: f64) {
        let what = row.describe();
        assert_eq!(got.total_count, row.num("total_count"), "{what}");
        assert_eq!(got.total_pop, row.num("total_pop"), "{what}");
        let estimate = got.estimate.as_ref();
        assert_close(
            estimate.map_or(f64::NAN, |e| e.value),
            row.num("value"),
            tol,
            &what,
        );
        for (i, (lo, hi)) in columns.iter().enumerate() {
            let limits = estimate.and_then(|e| e.limits.get(i).copied());
            assert_close(
                limits.map_or(f64::NAN, |l| l.lower),
                row.num(lo),
                tol,
                &what,
            );
            assert_close(
                limits.map_or(f64::NAN, |l| l.upper),
                row.num(hi),
                tol,
                &what,
            );
        }
        assert_eq!(got.method.label(), row.text("method"), "{what}");
    }

    const BOTH: [(&str, &str); 2] = [
        ("lower95_0cl", "upper95_0cl"),
        ("lower99_8cl", "upper99_8cl"),
    ];

    #[test]
    fn dsr_vectors_multiarea() -> Result<(), StatsError> {
        let input = Table::read("sysdata/test_multiarea_esp.csv");
        let expected = Table::read("dsr_expected.csv");
        for (rows, multiplier) in [(0..3, 10000.0), (4..7, 100000.0)] {
            for row in expected.rows().skip(rows.start).take(rows.len()) {
                let area = input.filter("area", row.text("area"));
                let got = dsr(
                    &Table::column(&area, "count"),
                    &Table::column(&area, "pop"),
                    &Table::column(&area, "esp2013"),
                    &pair(),
                    multiplier,
                )?;
                check_row(&got, &row, &BOTH, TOL);
                let label = row.text("statistic");
                assert_eq!(got.statistic_label(multiplier), label, "{}", row.describe());
            }
        }
        Ok(())
    }

    #[test]
    fn dsr_vectors_esp1976_value_and_95() -> Result<(), StatsError> {
        // Row 8's 99.8% columns look 10x too large in the sheet; the reference tests only
        // columns 2-6 of it, and so do we.
        let input = Table::read("dsr_input_esp1976.csv");
        let rows: Vec<_> = input.rows().collect();
        let expected = Table::read("dsr_expected.csv");
        for (index, multiplier) in [(3, 10000.0), (7, 100000.0)] {
            let row = expected
                .rows()
                .nth(index)
                .ok_or_else(|| StatsError::general("row"))?;
            let got = dsr(
                &Table::column(&rows, "count"),
                &Table::column(&rows, "pop"),
                &Table::column(&rows, "esp1976"),
                &pair(),
                multiplier,
            )?;
            check_row(&got, &row, &BOTH[..1], TOL);
        }
        Ok(())
    }

    #[test]
    fn dsr_vectors_non_independent() -> Result<(), StatsError> {
        let input = Table::read("sysdata/test_DSR_nonind.csv");
        let expected = Table::read("dsr_expected.csv");
        for row in expected.rows().skip(8) {
            let area = input.filter("area", row.text("area"));
            let bands: Vec<&str> = area.iter().map(|r| r.text("ageband")).collect();
            let got = dsr_non_independent(
                &bands,
                &Table::column(&area, "freq"),
                &Table::column(&area, "persons"),
                &Table::column(&area, "pop"),
                &Table::column(&area, "esp2013"),
                &pair(),
                100000.0,
            )?;
            // The expected non-independent figures are stored rounded to 8 decimal places.
            check_row(
                &got,
                &row,
                &BOTH,
                1e-11_f64.max(5e-9 / row.num("value").abs().max(1.0)),
            );
        }
        Ok(())
    }

    #[test]
    fn dsr_non_independent_inconsistent_population_is_an_error() -> Result<(), StatsError> {
        for file in [
            "sysdata/test_DSR_nonind_err1.csv",
            "sysdata/test_DSR_nonind_err2.csv",
        ] {
            let input = Table::read(file);
            let area = input.filter("area", "testdata_nonind_big");
            let bands: Vec<&str> = area.iter().map(|r| r.text("ageband")).collect();
            let err = dsr_non_independent(
                &bands,
                &Table::column(&area, "freq"),
                &Table::column(&area, "persons"),
                &Table::column(&area, "pop"),
                &Table::column(&area, "esp2013"),
                &pair(),
                100000.0,
            )
            .err();
            assert!(
                err.is_some_and(|e| e
                    .message
                    .starts_with("There are rows with the same grouping")),
                "{file}"
            );
        }
        Ok(())
    }

    fn error_for(file: &str, stdpop: Option<&[f64]>) -> Option<String> {
        let input = Table::read(file);
        let rows: Vec<_> = input.rows().collect();
        let weights = stdpop.map_or_else(|| Table::column(&rows, "stdpop"), <[f64]>::to_vec);
        dsr(
            &Table::column(&rows, "count"),
            &Table::column(&rows, "pop"),
            &weights,
            &pair(),
            100000.0,
        )
        .err()
        .map(|e| e.message)
    }

    #[test]
    fn dsr_error_sheets() {
        assert_eq!(
            error_for("dsr_isr_err1_negative_count.csv", None),
            Some("numerators must all be greater than or equal to zero".into())
        );
        let esp_twice: Vec<f64> = ESP2013.iter().chain(ESP2013.iter()).copied().collect();
        assert_eq!(
            error_for("dsr_isr_err2_zero_pop.csv", Some(&esp_twice)),
            Some("denominators must all be greater than zero".into())
        );
        assert_eq!(
            error_for("dsr_isr_err3_negative_pop.csv", None),
            Some("denominators must all be greater than zero".into())
        );
        assert_eq!(
            error_for("dsr_err4_negative_stdpop.csv", None),
            Some("stdpop must all be greater than or equal to zero".into())
        );
    }

    #[test]
    fn dsr_missing_population_and_multiplier_errors() -> Result<(), StatsError> {
        let level = pair();
        let err =
            |n: f64, w: f64, m: f64| dsr(&[1.0], &[n], &[w], &level, m).err().map(|e| e.message);
        assert_eq!(
            err(f64::NAN, 1.0, 1.0),
            Some("field n cannot have missing values".into())
        );
        assert_eq!(
            err(1.0, f64::NAN, 1.0),
            Some("field stdpop cannot have missing values".into())
        );
        assert_eq!(
            err(1.0, 1.0, 0.0),
            Some("multiplier must be greater than 0".into())
        );
        Ok(())
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]

            #[test]
            fn dsr_limits_bracket_the_value_and_row_order_does_not_matter(
                counts in proptest::collection::vec(0u32..500, 19),
                pops in proptest::collection::vec(100.0f64..100_000.0, 19),
            ) {
                let x: Vec<f64> = counts.iter().map(|&c| f64::from(c)).collect();
                let result = dsr(&x, &pops, &ESP2013, &pair(), 100000.0)?;
                if let Some(estimate) = &result.estimate {
                    prop_assert!(estimate.value >= 0.0);
                    for limits in &estimate.limits {
                        prop_assert!(limits.lower <= estimate.value && estimate.value <= limits.upper);
                    }
                }
                let rev = |v: &[f64]| v.iter().rev().copied().collect::<Vec<f64>>();
                let reversed = dsr(&rev(&x), &rev(&pops), &rev(&ESP2013), &pair(), 100000.0)?;
                let (a, b) = (result.estimate.map(|e| e.value), reversed.estimate.map(|e| e.value));
                let same = match (a, b) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                    (None, None) => true,
                    _ => false,
                };
                prop_assert!(same, "row order changed the DSR");
            }
        }
    }
}
