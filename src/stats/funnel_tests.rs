//! Tests of `funnel.rs` against the reference's funnel vectors. Many expected figures were
//! stored rounded (6–10 significant digits), so each value is held to half a unit in its last
//! stored digit plus 1e-9 relative.

use super::*;
use crate::stats::fixtures::{Row, Table};

fn stored_tolerance(text: &str, expected: f64) -> f64 {
    let decimals = text.split_once('.').map_or(0, |(_, d)| {
        d.trim_end_matches(|c: char| !c.is_ascii_digit()).len()
    });
    0.5 * 10f64.powi(-(decimals as i32)) + 1e-9 * expected.abs()
}

fn check(actual: f64, row: &Row<'_>, column: &str) {
    let expected = row.num(column);
    if expected.is_nan() {
        assert!(
            actual.is_nan(),
            "{} {column}: expected NA, got {actual}",
            row.describe()
        );
        return;
    }
    let tol = stored_tolerance(row.text(column), expected);
    assert!(
        (actual - expected).abs() <= tol,
        "{} {column}: got {actual}, expected {expected}",
        row.describe()
    );
}

fn check_rows(rows: &[FunnelRow], expected: &Table, columns: &[&str]) {
    assert_eq!(rows.len(), expected.rows.len(), "{}", expected.name);
    for (row, exp) in rows.iter().zip(expected.rows()) {
        for (value, column) in row.values().iter().zip(columns) {
            check(*value, &exp, column);
        }
    }
}

const PROPORTION_COLUMNS: [&str; 6] = [
    "Population",
    "Lower2s0025limit",
    "Upper2s0025limit",
    "Lower3s0001limit",
    "Upper3s0001limit",
    "Baseline",
];

fn proportion_options() -> FunnelOptions {
    FunnelOptions {
        statistic: FunnelStatistic::Proportion,
        multiplier: 100.0,
        years_of_data: 1.0,
    }
}

#[test]
fn funnel_proportion_limits_vectors() -> Result<(), StatsError> {
    let input = Table::read("funnel_prop_input_significance.csv");
    let rows: Vec<Row<'_>> = input.rows().collect();
    let (x, n) = (
        Table::column(&rows, "numerator"),
        Table::column(&rows, "denominator"),
    );
    let data = FunnelInput {
        numerator: &x,
        denominator: Some(&n),
        rate: None,
    };
    let limits = funnel_limits(&data, &proportion_options())?;
    check_rows(
        &limits,
        &Table::read("funnel_prop_limits_expected.csv"),
        &PROPORTION_COLUMNS,
    );

    let small: Vec<Row<'_>> = input
        .rows()
        .filter(|r| r.num("denominator") < 31000.0)
        .collect();
    let (x, n) = (
        Table::column(&small, "numerator"),
        Table::column(&small, "denominator"),
    );
    let data = FunnelInput {
        numerator: &x,
        denominator: Some(&n),
        rate: None,
    };
    let limits = funnel_limits(&data, &proportion_options())?;
    check_rows(
        &limits,
        &Table::read("funnel_prop_limits_axis_variation_expected.csv"),
        &PROPORTION_COLUMNS,
    );
    Ok(())
}

#[test]
fn funnel_proportion_significance_vectors() -> Result<(), StatsError> {
    let input = Table::read("funnel_prop_input_significance.csv");
    let rows: Vec<Row<'_>> = input.rows().collect();
    let (x, n) = (
        Table::column(&rows, "numerator"),
        Table::column(&rows, "denominator"),
    );
    let data = FunnelInput {
        numerator: &x,
        denominator: Some(&n),
        rate: None,
    };
    let options = FunnelOptions {
        multiplier: 1.0,
        ..proportion_options()
    };
    for (label, row) in assign_significance(&data, &options)?.iter().zip(&rows) {
        assert_eq!(
            label.label(),
            row.text("significance"),
            "{}",
            row.describe()
        );
    }
    Ok(())
}

#[test]
fn funnel_ratio_limits_and_significance_vectors() -> Result<(), StatsError> {
    let input = Table::read("funnel_ratio_input_significance.csv");
    let rows: Vec<Row<'_>> = input.rows().collect();
    let (o, e) = (
        Table::column(&rows, "obs"),
        Table::column(&rows, "expected"),
    );
    let data = FunnelInput {
        numerator: &o,
        denominator: Some(&e),
        rate: None,
    };
    let expected = Table::read("funnel_ratio_limits_expected.csv");
    for (kind, suffix) in [(RatioType::Count, "count"), (RatioType::Isr, "isr")] {
        let options = FunnelOptions {
            statistic: FunnelStatistic::Ratio(kind),
            multiplier: 100.0,
            years_of_data: 1.0,
        };
        let names: Vec<String> = FunnelRow::columns(options.statistic)
            .into_iter()
            .map(|c| c.replace("_limit", &format!("_{suffix}")))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        check_rows(&funnel_limits(&data, &options)?, &expected, &names);
        for (label, row) in assign_significance(&data, &options)?.iter().zip(&rows) {
            assert_eq!(
                label.label(),
                row.text("significance"),
                "{}",
                row.describe()
            );
        }
    }
    Ok(())
}

const RATE_COLUMNS: [&str; 10] = [
    "Events",
    "lower_2s_population_1_year",
    "lower_2s_limit",
    "upper_2s_population_1_year",
    "upper_2s_limit",
    "lower_3s_population_1_year",
    "lower_3s_limit",
    "upper_3s_population_1_year",
    "upper_3s_limit",
    "baseline",
];

fn rate_options(kind: RateType, years: f64) -> FunnelOptions {
    FunnelOptions {
        statistic: FunnelStatistic::Rate(kind),
        multiplier: 100000.0,
        years_of_data: years,
    }
}

/// The rate funnel input with the largest event count replaced, as the reference's tests do.
fn rate_input(max_events: Option<f64>) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let input = Table::read("funnel_rate_limits_input_and_points_expected.csv");
    let rows: Vec<Row<'_>> = input.rows().collect();
    let mut ev = Table::column(&rows, "ev");
    let (rate, pop) = (Table::column(&rows, "rate"), Table::column(&rows, "pop"));
    if let Some(value) = max_events {
        let biggest = ev.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for e in ev.iter_mut().filter(|e| **e == biggest) {
            *e = value;
        }
    }
    (ev, rate, pop)
}

#[test]
fn funnel_rate_limits_vectors() -> Result<(), StatsError> {
    let (ev, rate, _) = rate_input(None);
    let data = FunnelInput {
        numerator: &ev,
        denominator: None,
        rate: Some(&rate),
    };
    let limits = funnel_limits(&data, &rate_options(RateType::Dsr, 3.0))?;
    check_rows(
        &limits,
        &Table::read("funnel_rate_limits_expected_dsr.csv"),
        &RATE_COLUMNS,
    );

    let (ev, rate, _) = rate_input(Some(5.0));
    let data = FunnelInput {
        numerator: &ev,
        denominator: None,
        rate: Some(&rate),
    };
    let limits = funnel_limits(&data, &rate_options(RateType::Crude, 3.0))?;
    check_rows(
        &limits,
        &Table::read("funnel_rate_limits_expected_crude_lt10.csv"),
        &RATE_COLUMNS,
    );

    // pop = 1e5·ev/rate; the largest-ev row gets rate 0 and ev 0; keep pop > max(pop)/2.
    let (ev, rate, _) = rate_input(None);
    let pop: Vec<f64> = ev.iter().zip(&rate).map(|(e, r)| 1e5 * e / r).collect();
    let biggest = ev.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let half = pop.iter().copied().fold(f64::NEG_INFINITY, f64::max) / 2.0;
    let (mut e2, mut r2, mut p2) = (Vec::new(), Vec::new(), Vec::new());
    for ((&e, &r), &p) in ev.iter().zip(&rate).zip(&pop) {
        if p > half {
            let zero = e == biggest;
            e2.push(if zero { 0.0 } else { e });
            r2.push(if zero { 0.0 } else { r });
            p2.push(p);
        }
    }
    let data = FunnelInput {
        numerator: &e2,
        denominator: Some(&p2),
        rate: Some(&r2),
    };
    let limits = funnel_limits(&data, &rate_options(RateType::Crude, 3.0))?;
    check_rows(
        &limits,
        &Table::read("funnel_rate_limits_expected_crude_zero_with_denom.csv"),
        &RATE_COLUMNS,
    );
    Ok(())
}

#[test]
fn funnel_rate_points_vectors() -> Result<(), StatsError> {
    let table = Table::read("funnel_rate_limits_input_and_points_expected.csv");
    let expected: Vec<Row<'_>> = table.rows().collect();
    let cases = [
        (
            Some(5.0),
            RateType::Dsr,
            3.0,
            false,
            "rate_chart",
            "denominator_derived",
        ),
        (
            None,
            RateType::Crude,
            3.0,
            false,
            "rate_chart_crude",
            "denominator_derived_crude",
        ),
        (
            Some(0.0),
            RateType::Crude,
            5.0,
            true,
            "rate_chart_crude_with_denom",
            "denominator_derived_crude_with_denom",
        ),
    ];
    for (max_events, kind, years, with_denominator, rate_column, den_column) in cases {
        let (ev, rate, pop) = rate_input(max_events);
        let data = FunnelInput {
            numerator: &ev,
            denominator: with_denominator.then_some(&pop[..]),
            rate: Some(&rate),
        };
        let points = funnel_points(&data, &rate_options(kind, years))?;
        for (point, row) in points.iter().zip(&expected) {
            check(point.rate_chart.unwrap_or(f64::NAN), row, rate_column);
            check(
                point.denominator_derived.unwrap_or(f64::NAN),
                row,
                den_column,
            );
        }
    }
    Ok(())
}

#[test]
fn funnel_rate_significance_vectors() -> Result<(), StatsError> {
    let table = Table::read("funnel_rate_input_significance.csv");
    let cases = [
        (
            RateType::Dsr,
            "rate_dsr",
            100000.0,
            true,
            "dsr_per_100000_with_0",
        ),
        (
            RateType::Dsr,
            "rate_dsr",
            100000.0,
            false,
            "dsr_per_100000_without_0",
        ),
        (
            RateType::Dsr,
            "rate_dsr",
            100.0,
            false,
            "dsr_per_100_without_0",
        ),
        (
            RateType::Crude,
            "rate_crude_per_100000",
            100000.0,
            true,
            "crude_per_100000_with_0",
        ),
        (
            RateType::Crude,
            "rate_crude_per_100000",
            100000.0,
            false,
            "crude_per_100000_without_0",
        ),
        (
            RateType::Crude,
            "rate_crude_per_100",
            100.0,
            true,
            "crude_per_100_with_0",
        ),
        (
            RateType::Crude,
            "rate_crude_per_100",
            100.0,
            false,
            "crude_per_100_without_0",
        ),
    ];
    for (kind, rate_column, multiplier, with_zero, expected) in cases {
        let rows: Vec<Row<'_>> = table
            .rows()
            .filter(|r| with_zero || r.num("count") != 0.0)
            .collect();
        let (o, rate, pop) = (
            Table::column(&rows, "count"),
            Table::column(&rows, rate_column),
            Table::column(&rows, "pop"),
        );
        let data = FunnelInput {
            numerator: &o,
            denominator: Some(&pop),
            rate: Some(&rate),
        };
        let options = FunnelOptions {
            statistic: FunnelStatistic::Rate(kind),
            multiplier,
            years_of_data: 1.0,
        };
        for (label, row) in assign_significance(&data, &options)?.iter().zip(&rows) {
            assert_eq!(
                label.label(),
                row.text(expected),
                "{} {expected}",
                row.describe()
            );
        }
    }
    Ok(())
}

#[test]
fn funnel_errors() {
    let options = proportion_options();
    let message = |x: &[f64], n: &[f64]| {
        let data = FunnelInput {
            numerator: x,
            denominator: Some(n),
            rate: None,
        };
        funnel_limits(&data, &options).err().map(|e| e.message)
    };
    assert_eq!(
        message(&[-1.0], &[2.0]).as_deref(),
        Some("numerators must be greater than or equal to zero")
    );
    assert_eq!(
        message(&[1.0], &[0.0]).as_deref(),
        Some("denominators must be greater than zero")
    );
    assert_eq!(
        message(&[3.0], &[2.0]).as_deref(),
        Some("numerators must be less than or equal to denominator for a proportion statistic")
    );
    assert!(message(&[f64::NAN], &[2.0]).is_some());
    let data = FunnelInput {
        numerator: &[0.0],
        denominator: None,
        rate: Some(&[0.0]),
    };
    assert!(funnel_limits(&data, &rate_options(RateType::Crude, 1.0)).is_err());
    let data = FunnelInput {
        numerator: &[f64::NAN],
        denominator: None,
        rate: Some(&[1.0]),
    };
    assert!(assign_significance(&data, &rate_options(RateType::Dsr, 1.0)).is_err());
}

#[test]
fn r_print_width_quirk() {
    assert_eq!(r_print_width(100000.0), 5);
    assert_eq!(r_print_width(123000.0), 6);
    assert_eq!(r_print_width(1000.0), 4);
    assert_eq!(signif_ceiling(0.0), 0.0);
}
