//! Statistical disclosure control for the tables meant for publication.
//!
//! Owns the policy applied by publish to every publishable table (everything but the
//! restricted `patients_enriched` and `rejects`): a count from 1 to `suppress_up_to` (default
//! 7) is suppressed (null, with a `suppressed` flag), other counts are rounded to the nearest
//! `round_to` (default 5), and values derived from a suppressed count (a rate, a share, limits,
//! a gap) are withheld. Values are computed from the true counts before rounding, as official
//! statistics are. Zero is not disclosive and is kept.

use polars::prelude::*;
use serde::Deserialize;

use crate::schema;

/// `[disclosure]`: statistical disclosure control of publishable tables.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureConfig {
    /// Apply it (default true). Turning it off is for restricted, internal runs only.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Counts from 1 to this are suppressed (default 7).
    #[serde(default = "default_suppress_up_to")]
    pub suppress_up_to: f64,
    /// Other counts are rounded to the nearest multiple of this (default 5; 1 = no rounding).
    #[serde(default = "default_round_to")]
    pub round_to: f64,
}

impl Default for DisclosureConfig {
    fn default() -> Self {
        DisclosureConfig {
            enabled: true,
            suppress_up_to: default_suppress_up_to(),
            round_to: default_round_to(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_suppress_up_to() -> f64 {
    7.0
}

fn default_round_to() -> f64 {
    5.0
}

/// Column flagging rows with a suppressed count.
pub const SUPPRESSED: &str = "suppressed";

impl DisclosureConfig {
    /// Whether a count must be suppressed.
    fn small(&self, count: Expr) -> Expr {
        count
            .clone()
            .gt(lit(0.0))
            .and(count.lt_eq(lit(self.suppress_up_to)))
    }

    /// A count as published: null when small, else rounded.
    fn publish(&self, count: Expr) -> Expr {
        let rounded = if self.round_to > 1.0 {
            (count.clone() / lit(self.round_to)).round(0, RoundMode::HalfAwayFromZero)
                * lit(self.round_to)
        } else {
            count.clone()
        };
        when(self.small(count.clone().cast(DataType::Float64)))
            .then(lit(NULL).cast(DataType::Float64))
            .otherwise(rounded.cast(DataType::Float64))
    }

    /// Protect a table: `counts` are suppressed or rounded; `derived` columns are withheld on
    /// rows where any of the `sources` counts is suppressed. Adds a `suppressed` flag.
    ///
    /// # Errors
    /// If a named column is missing.
    pub fn protect(
        &self,
        table: DataFrame,
        counts: &[&str],
        derived: &[(&str, &[&str])],
    ) -> PolarsResult<DataFrame> {
        if !self.enabled {
            return Ok(table);
        }
        let any_small = counts
            .iter()
            .map(|c| self.small(col(*c).cast(DataType::Float64)))
            .reduce(|a, b| a.or(b))
            .unwrap_or_else(|| lit(false));
        let mut withheld: Vec<Expr> = Vec::new();
        for (column, sources) in derived {
            let small = sources
                .iter()
                .map(|c| self.small(col(*c).cast(DataType::Float64)))
                .reduce(|a, b| a.or(b))
                .unwrap_or_else(|| lit(false));
            withheld.push(
                when(small)
                    .then(lit(NULL).cast(table.column(column)?.dtype().clone()))
                    .otherwise(col(*column))
                    .alias(*column),
            );
        }
        let rounded: Vec<Expr> = counts
            .iter()
            .map(|c| self.publish(col(*c)).alias(*c))
            .collect();
        table
            .lazy()
            .with_column(any_small.fill_null(lit(false)).alias(SUPPRESSED))
            .with_columns(withheld)
            .with_columns(rounded)
            .collect()
    }
}

/// Counts and derived values of the `indicators` and `inequality` tables.
pub const INDICATOR_VALUES: &[&str] = &[
    schema::VALUE,
    schema::LOWER_CL_95,
    schema::UPPER_CL_95,
    schema::LOWER_CL_998,
    schema::UPPER_CL_998,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_are_suppressed_and_values_withheld() {
        let table = df![
            "numerator" => [0.0, 3.0, 8.0, 12.0, 123.0],
            "denominator" => [50.0, 50.0, 50.0, 7.0, 1000.0],
            "value" => [0.0, 6.0, 16.0, 171.4, 12.3],
        ]
        .expect("frame");
        let out = DisclosureConfig::default()
            .protect(
                table,
                &["numerator", "denominator"],
                &[("value", &["numerator", "denominator"])],
            )
            .expect("protect");
        let num: Vec<Option<f64>> = out
            .column("numerator")
            .expect("n")
            .f64()
            .expect("f")
            .iter()
            .collect();
        assert_eq!(num, [Some(0.0), None, Some(10.0), Some(10.0), Some(125.0)]);
        let den: Vec<Option<f64>> = out
            .column("denominator")
            .expect("d")
            .f64()
            .expect("f")
            .iter()
            .collect();
        assert_eq!(
            den,
            [Some(50.0), Some(50.0), Some(50.0), None, Some(1000.0)]
        );
        let value: Vec<Option<f64>> = out
            .column("value")
            .expect("v")
            .f64()
            .expect("f")
            .iter()
            .collect();
        assert_eq!(value, [Some(0.0), None, Some(16.0), None, Some(12.3)]);
        let flag: Vec<Option<bool>> = out
            .column(SUPPRESSED)
            .expect("s")
            .bool()
            .expect("b")
            .iter()
            .collect();
        assert_eq!(
            flag,
            [
                Some(false),
                Some(true),
                Some(false),
                Some(true),
                Some(false)
            ]
        );
    }

    #[test]
    fn disabled_leaves_the_table_alone() {
        let table = df!["n" => [3.0]].expect("frame");
        let config = DisclosureConfig {
            enabled: false,
            ..Default::default()
        };
        let out = config.protect(table.clone(), &["n"], &[]).expect("protect");
        assert!(out.equals(&table));
    }
}
