//! Assigning areas to quantiles: the reference rule of PHEindicatormethods `phe_quantile`
//! (equal numbers of areas, ranked by value), and population-weighted quantiles (equal
//! population), which deprivation deciles and quintiles of PCNs need.
//!
//! Grouping is the caller's job: call once per group.

use super::{Argument, StatsError};

/// The reference's quantile of each value (PHEindicatormethods `phe_quantile`).
///
/// Rule: rank the values (of −value when `invert`, so the highest value is in quantile 1), ties
/// taking the minimum rank and missing values (`NaN`) no rank; with N ranked values and Q
/// quantiles, quantile = floor((Q+1) − ceil(((N+1) − rank)/(N/Q))), with 0 set to 1. When N < Q
/// every quantile is missing (the reference warns "One or more groups had too few small areas
/// with values to allow quantiles to be assigned").
///
/// # Errors
/// "nquantiles must be a positive whole number" when Q is 0.
///
/// # Examples
/// ```
/// use healthgap::stats::quantile::assign_quantiles;
/// let values = [10.0, 20.0, 30.0, 40.0];
/// assert_eq!(assign_quantiles(&values, 2, false)?, [Some(1), Some(1), Some(2), Some(2)]);
/// assert_eq!(assign_quantiles(&values, 2, true)?, [Some(2), Some(2), Some(1), Some(1)]);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn assign_quantiles(
    values: &[f64],
    nquantiles: u32,
    invert: bool,
) -> Result<Vec<Option<u32>>, StatsError> {
    if nquantiles == 0 {
        return Err(StatsError::new(
            Argument::Nquantiles,
            "nquantiles must be a positive whole number",
        ));
    }
    let keyed: Vec<f64> = values
        .iter()
        .map(|&v| if invert { -v } else { v })
        .collect();
    let mut present: Vec<f64> = keyed.iter().copied().filter(|v| !v.is_nan()).collect();
    let n = present.len();
    let q = f64::from(nquantiles);
    if n < nquantiles as usize {
        return Ok(vec![None; values.len()]);
    }
    present.sort_by(f64::total_cmp);
    let n_f = n as f64;
    Ok(keyed
        .iter()
        .map(|&v| {
            if v.is_nan() {
                return None;
            }
            // "min" ties: one plus the number of values strictly below.
            let rank = present.partition_point(|&p| p < v) as f64 + 1.0;
            let quantile = ((q + 1.0) - (((n_f + 1.0) - rank) / (n_f / q)).ceil()).floor();
            Some(quantile.max(1.0) as u32)
        })
        .collect())
}

/// Which end of a deprivation measure is the most deprived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeprivationOrder {
    /// Higher values are more deprived (e.g. the IMD score).
    HigherIsMoreDeprived,
    /// Lower values are more deprived (e.g. the IMD rank, 1 = most deprived).
    LowerIsMoreDeprived,
}

/// Population-weighted quantiles, most deprived = 1: each quantile holds about 1/Q of the
/// population rather than of the areas.
///
/// Rule (our choice; the reference has no population-weighted variant): order the areas from
/// most to least deprived; an area's *cumulative-population midpoint* is m = (population of the
/// more deprived areas + half its own) / total population, and its quantile is
/// min(Q, floor(m·Q) + 1). Areas with tied deprivation form one block and share the block's
/// midpoint, so ties never split across quantiles and input order does not matter. With very
/// unequal populations a quantile can be empty; the rule never moves an area away from the
/// quantile its midpoint falls in.
///
/// # Errors
/// - slices of different lengths
/// - a missing deprivation value: "deprivation values cannot be missing"
/// - a missing or negative population: "population must all be greater than or equal to zero"
/// - total population of zero: "total population must be greater than zero"
/// - Q = 0: "nquantiles must be a positive whole number"
///
/// # Examples
/// ```
/// use healthgap::stats::quantile::{population_weighted_quantiles, DeprivationOrder};
/// // Four areas; the most deprived (score 40) holds half the population.
/// let q = population_weighted_quantiles(&[40.0, 10.0, 30.0, 20.0], &[300.0, 100.0, 100.0, 100.0],
///     2, DeprivationOrder::HigherIsMoreDeprived)?;
/// assert_eq!(q, [1, 2, 2, 2]);
/// # Ok::<(), healthgap::stats::StatsError>(())
/// ```
pub fn population_weighted_quantiles(
    deprivation: &[f64],
    population: &[f64],
    nquantiles: u32,
    order: DeprivationOrder,
) -> Result<Vec<u32>, StatsError> {
    if deprivation.len() != population.len() {
        return Err(StatsError::general(
            "deprivation and population must have the same number of rows",
        ));
    }
    if nquantiles == 0 {
        return Err(StatsError::new(
            Argument::Nquantiles,
            "nquantiles must be a positive whole number",
        ));
    }
    if deprivation.iter().any(|d| d.is_nan()) {
        return Err(StatsError::new(
            Argument::Value,
            "deprivation values cannot be missing",
        ));
    }
    if population.iter().any(|&p| p.is_nan() || p < 0.0) {
        return Err(StatsError::new(
            Argument::Population,
            "population must all be greater than or equal to zero",
        ));
    }
    let total: f64 = population.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return Err(StatsError::new(
            Argument::Population,
            "total population must be greater than zero",
        ));
    }
    // Most deprived first.
    let key = |i: usize| {
        let d = deprivation.get(i).copied().unwrap_or(f64::NAN);
        match order {
            DeprivationOrder::HigherIsMoreDeprived => -d,
            DeprivationOrder::LowerIsMoreDeprived => d,
        }
    };
    let mut sorted: Vec<usize> = (0..deprivation.len()).collect();
    sorted.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
    let q = f64::from(nquantiles);
    let mut result = vec![1; deprivation.len()];
    let mut before = 0.0;
    let mut start = 0;
    while start < sorted.len() {
        let first = sorted.get(start).map_or(f64::NAN, |&i| key(i));
        let end = sorted
            .iter()
            .skip(start)
            .position(|&i| key(i) != first)
            .map_or(sorted.len(), |offset| start + offset);
        let block = sorted.get(start..end).unwrap_or_default();
        let block_pop: f64 = block
            .iter()
            .map(|&i| population.get(i).copied().unwrap_or(0.0))
            .sum();
        let midpoint = (before + block_pop / 2.0) / total;
        let quantile = ((midpoint * q).floor() + 1.0).min(q) as u32;
        for &i in block {
            if let Some(slot) = result.get_mut(i) {
                *slot = quantile;
            }
        }
        before += block_pop;
        start = end;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{Row, Table};

    fn check_group(
        rows: &[Row<'_>],
        nquantiles: u32,
        invert: Option<bool>,
    ) -> Result<(), StatsError> {
        let values = Table::column(rows, "Value");
        let invert =
            invert.unwrap_or_else(|| rows.first().is_some_and(|r| r.text("Polarity") == "TRUE"));
        let got = assign_quantiles(&values, nquantiles, invert)?;
        for (row, quantile) in rows.iter().zip(got) {
            let expected = row.num("QuantileInGrp");
            let expected = (!expected.is_nan()).then_some(expected as u32);
            assert_eq!(quantile, expected, "{}", row.describe());
        }
        Ok(())
    }

    #[test]
    fn quantile_vectors_every_group() -> Result<(), StatsError> {
        let table = Table::read("sysdata/test_quantiles_g.csv");
        let mut groups: Vec<(String, Vec<Row<'_>>)> = Vec::new();
        for row in table.rows() {
            let key = match row.text("GroupSet") {
                "IndSexReg" => format!("{}|{}", row.text("IndSexRef"), row.text("ParentCode")),
                "IndSex" => row.text("IndSexRef").to_string(),
                _ => "None".to_string(),
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rows)) => rows.push(row),
                None => groups.push((key, vec![row])),
            }
        }
        let mut checked = 0;
        for (key, rows) in &groups {
            let (nquantiles, invert) = match rows.first().map(|r| r.text("GroupSet")) {
                Some("IndSexReg") => (10, None),
                Some("IndSex") => (7, None),
                _ => (4, Some(true)),
            };
            check_group(rows, nquantiles, invert)
                .map_err(|e| StatsError::general(format!("{key}: {e}")))?;
            checked += rows.len();
        }
        assert_eq!(checked, 982);
        Ok(())
    }

    #[test]
    fn quantile_too_few_values_are_all_missing() -> Result<(), StatsError> {
        assert_eq!(
            assign_quantiles(&[1.0, 2.0, f64::NAN], 3, false)?,
            [None, None, None]
        );
        assert!(assign_quantiles(&[1.0], 0, false).is_err());
        Ok(())
    }

    #[test]
    fn quantile_ties_take_the_minimum_rank() -> Result<(), StatsError> {
        assert_eq!(
            assign_quantiles(&[1.0, 1.0, 1.0, 2.0], 2, false)?,
            [Some(1); 4]
                .iter()
                .enumerate()
                .map(|(i, q)| if i == 3 { Some(2) } else { *q })
                .collect::<Vec<_>>()
        );
        Ok(())
    }

    #[test]
    fn population_weighted_deciles_balance_population() -> Result<(), StatsError> {
        // 1000 areas with populations 1..=1000 in a scrambled deprivation order.
        let population: Vec<f64> = (1..=1000).map(f64::from).collect();
        let deprivation: Vec<f64> = (0..1000).map(|i| f64::from((i * 7919) % 1000)).collect();
        let q = population_weighted_quantiles(
            &deprivation,
            &population,
            10,
            DeprivationOrder::HigherIsMoreDeprived,
        )?;
        let total: f64 = population.iter().sum();
        for decile in 1..=10 {
            let share: f64 = q
                .iter()
                .zip(&population)
                .filter(|(d, _)| **d == decile)
                .map(|(_, p)| p)
                .sum::<f64>()
                / total;
            assert!((share - 0.1).abs() < 0.002, "decile {decile} holds {share}");
        }
        // The most deprived area is in decile 1, the least in decile 10.
        let most = deprivation
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        assert_eq!(most.and_then(|i| q.get(i)), Some(&1));
        Ok(())
    }

    #[test]
    fn population_weighted_ties_share_a_quantile_and_rank_order_works() -> Result<(), StatsError> {
        let q = population_weighted_quantiles(
            &[5.0, 5.0, 1.0, 9.0],
            &[10.0; 4],
            2,
            DeprivationOrder::LowerIsMoreDeprived,
        )?;
        assert_eq!(q, [2, 2, 1, 2]);
        Ok(())
    }

    #[test]
    fn population_weighted_errors() {
        let order = DeprivationOrder::HigherIsMoreDeprived;
        let message = |d: &[f64], p: &[f64]| {
            population_weighted_quantiles(d, p, 5, order)
                .err()
                .map(|e| e.message)
        };
        assert_eq!(
            message(&[f64::NAN], &[1.0]).as_deref(),
            Some("deprivation values cannot be missing")
        );
        assert_eq!(
            message(&[1.0], &[-1.0]).as_deref(),
            Some("population must all be greater than or equal to zero")
        );
        assert_eq!(
            message(&[1.0], &[0.0]).as_deref(),
            Some("total population must be greater than zero")
        );
        assert!(message(&[1.0, 2.0], &[1.0]).is_some());
    }
}
