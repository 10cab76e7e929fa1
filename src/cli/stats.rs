//! `healthgap stats <method> INPUT.csv`: run one reference method over a CSV, one row per group.
//!
//! This file owns the flags, reading the CSV (polars), grouping, and writing the reference's
//! output columns; the statistics themselves are in `crate::stats`. Columns cross into
//! `Vec<f64>` here, once per group, at the boundary the stats module asks for (missing → NaN).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use polars::prelude::*;

use crate::error::UserError;
use crate::output::Printer;
use crate::stats::funnel::{
    self, FunnelInput, FunnelOptions, FunnelRow, FunnelStatistic, RateType, RatioType,
};
use crate::stats::precision::{levels_label, limit_column_names};
use crate::stats::quantile::{DeprivationOrder, assign_quantiles, population_weighted_quantiles};
use crate::stats::sii::{
    SiiArea, SiiOptions, SiiSpread, SiiValues, ValueType, screen_groups, sii_batch,
};
use crate::stats::{Argument, Confidence, Estimate, StatsError, dsr, isr, mean, proportion, rate};

/// The method to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Proportion x/n with Wilson limits (phe_proportion)
    Proportion,
    /// Crude rate x/n with exact (<10) or Byar's limits (phe_rate)
    Rate,
    /// Mean of `value` with Student-t limits (phe_mean)
    Mean,
    /// Directly standardised rate with Dobson limits (calculate_dsr)
    Dsr,
    /// Indirectly standardised ratio (calculate_ISRatio)
    Isratio,
    /// Indirectly standardised rate (calculate_ISRate)
    Israte,
    /// Slope and relative index of inequality with simulated limits (phe_sii)
    Sii,
    /// Quantile of each row's value (phe_quantile), or population-weighted quantiles
    Quantile,
    /// Funnel-plot limits (calculate_funnel_limits) or significance labels
    Funnel,
}

/// The statistic on a funnel plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FunnelKind {
    /// Proportions: --x of --n
    Proportion,
    /// Ratios: observed --x over expected --n
    Ratio,
    /// Rates: events --x with --rate (and --n where the count is zero)
    Rate,
}

/// Run a national reference method (PHEindicatormethods) over a CSV file.
#[derive(Debug, Args)]
#[command(
    long_about = "Run a national reference method (PHEindicatormethods v2.1.0) over a CSV \
file: one output row per group (--group-by), group columns first, then the reference's output \
columns. Column options default to a column of the reference argument's name.

Examples:
  healthgap stats rate deaths.csv --x deaths --n pop --group-by pcn --confidence 0.95,0.998
  healthgap stats proportion screening.csv --x screened --n eligible --multiplier 100
  healthgap stats dsr deaths.csv --x count --n pop --stdpop esp2013 --group-by area
  healthgap stats sii deciles.csv --group-by pcn --value-type 1 --lower-cl lcl --upper-cl ucl --rii --seed 7
  healthgap stats quantile areas.csv --value imd_score --nquantiles 10 --population pop
  healthgap stats funnel practices.csv --statistic proportion --x num --n den --multiplier 100"
)]
pub struct StatsArgs {
    /// Method to run
    #[arg(value_enum)]
    pub method: Method,
    /// Input CSV (UTF-8, header row; empty cells and NA are missing)
    pub input: PathBuf,
    /// Write the result here instead of stdout
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Columns that define groups, comma-separated (one output row per group)
    #[arg(long, value_delimiter = ',')]
    pub group_by: Vec<String>,
    /// Confidence level(s), comma-separated: 0.95 or 95; two levels must be 0.95,0.998 except for sii
    #[arg(long, value_delimiter = ',', default_value = "0.95")]
    pub confidence: Vec<f64>,
    /// Multiplier (default: rate, dsr, israte 100000; proportion, isratio, sii 1; proportion funnel 100)
    #[arg(long, allow_negative_numbers = true)]
    pub multiplier: Option<f64>,
    /// Numerator column (events, successes, persons with `eventfreq` events)
    #[arg(long, default_value = "x")]
    pub x: String,
    /// Denominator column (population; expected events for ratio funnels)
    #[arg(long, default_value = "n")]
    pub n: String,
    /// Standard population column (dsr)
    #[arg(long, default_value = "stdpop")]
    pub stdpop: String,
    /// Reference numerator column (isratio, israte)
    #[arg(long, default_value = "x_ref")]
    pub x_ref: String,
    /// Reference denominator column (isratio, israte)
    #[arg(long, default_value = "n_ref")]
    pub n_ref: String,
    /// Quantile label column (sii)
    #[arg(long, default_value = "quantile")]
    pub quantile: String,
    /// Population column (sii; quantile: asks for population-weighted quantiles)
    #[arg(long)]
    pub population: Option<String>,
    /// Value column (mean, sii, quantile)
    #[arg(long, default_value = "value")]
    pub value: String,
    /// Lower 95% limit column (sii)
    #[arg(long)]
    pub lower_cl: Option<String>,
    /// Upper 95% limit column (sii)
    #[arg(long)]
    pub upper_cl: Option<String>,
    /// Standard error column (sii; used when given, or when a column "se" exists and no limits are given)
    #[arg(long)]
    pub se: Option<String>,
    /// SII value type: 0 other, 1 rate, 2 proportion
    #[arg(long, default_value_t = 0)]
    pub value_type: i64,
    /// SII: regress on the log (rates) or logit (proportions) scale
    #[arg(long)]
    pub transform: bool,
    /// SII: also report the relative index of inequality
    #[arg(long)]
    pub rii: bool,
    /// SII: also report the intercept
    #[arg(long)]
    pub intercept: bool,
    /// SII: add the reliability statistic (simulates 10 × repetitions)
    #[arg(long)]
    pub reliability: bool,
    /// SII: simulation repetitions (at least 1000)
    #[arg(long, default_value_t = 100_000)]
    pub repetitions: usize,
    /// SII: random seed (same seed, same limits)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// SII: use counts from --x instead of values (proportions only)
    #[arg(long)]
    pub use_x: bool,
    /// dsr: whether events are independent (false needs --eventfreq and --ageband)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub independent_events: bool,
    /// dsr: event frequency column for non-independent events
    #[arg(long, default_value = "eventfreq")]
    pub eventfreq: String,
    /// dsr: age band column for non-independent events
    #[arg(long, default_value = "ageband")]
    pub ageband: String,
    /// quantile: number of quantiles
    #[arg(long, default_value_t = 10)]
    pub nquantiles: u32,
    /// quantile: highest value in quantile 1 (reference rule); with --population, higher values are more deprived
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub invert: bool,
    /// funnel: the statistic
    #[arg(long, value_enum, default_value = "proportion")]
    pub statistic: FunnelKind,
    /// funnel: rate type (rate funnels)
    #[arg(long, default_value = "dsr", value_parser = ["dsr", "crude"])]
    pub rate_type: String,
    /// funnel: ratio type (ratio funnels)
    #[arg(long, default_value = "count", value_parser = ["count", "isr"])]
    pub ratio_type: String,
    /// funnel: rate column (rate funnels)
    #[arg(long, default_value = "rate")]
    pub rate: String,
    /// funnel: years of data behind the rates
    #[arg(long, default_value_t = 1.0)]
    pub years_of_data: f64,
    /// funnel: label each input row with its significance instead of writing limits
    #[arg(long)]
    pub significance: bool,
}

/// The input table as text cells by column, with group membership.
struct Input {
    names: Vec<String>,
    /// Column name → cells as text (missing → None).
    cells: HashMap<String, Vec<Option<String>>>,
    rows: usize,
}

impl Input {
    fn read(args: &StatsArgs) -> Result<Input> {
        let path = &args.input;
        let parse = CsvParseOptions::default()
            .with_null_values(Some(NullValues::AllColumns(vec!["NA".into(), "".into()])));
        let frame = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_parse_options(parse)
            .try_into_reader_with_file_path(Some(path.clone()))
            .and_then(|reader| reader.finish())
            .map_err(|err| UserError(format!("reading {}: {err}", path.display())))?;
        let mut cells = HashMap::new();
        let mut names = Vec::new();
        for column in frame.columns() {
            let name = column.name().to_string();
            // Every column was read as text (schema inference off) so that numbers are parsed
            // once, here, with errors that name the row.
            let text = anyhow::Context::with_context(column.str(), || {
                format!("column {name} is not text")
            })?;
            let values = text.iter().map(|v| v.map(str::to_string)).collect();
            cells.insert(name.clone(), values);
            names.push(name);
        }
        Ok(Input {
            names,
            cells,
            rows: frame.height(),
        })
    }

    fn text(&self, column: &str) -> Result<&Vec<Option<String>>> {
        self.cells.get(column).ok_or_else(|| {
            UserError(format!(
                "column \"{column}\" not found; the input has: {}",
                self.names.join(", ")
            ))
            .into()
        })
    }

    /// A numeric column for the given rows; missing cells are NaN (the stats convention).
    fn numbers(&self, column: &str, rows: &[usize]) -> Result<Vec<f64>> {
        let text = self.text(column)?;
        rows.iter()
            .map(|&row| match text.get(row).and_then(|v| v.as_deref()) {
                None => Ok(f64::NAN),
                Some(cell) => cell.trim().replace(',', "").parse::<f64>().map_err(|_| {
                    UserError(format!(
                        "column \"{column}\" has a non-numeric value \"{cell}\" at row {}",
                        row + 2
                    ))
                    .into()
                }),
            })
            .collect()
    }

    /// Groups in order of first appearance: (key values, row indices).
    fn groups(&self, by: &[String]) -> Result<Vec<(Vec<String>, Vec<usize>)>> {
        let columns: Vec<&Vec<Option<String>>> =
            by.iter().map(|c| self.text(c)).collect::<Result<_>>()?;
        let mut order: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
        let mut index: HashMap<Vec<String>, usize> = HashMap::new();
        for row in 0..self.rows {
            let key: Vec<String> = columns
                .iter()
                .map(|c| c.get(row).cloned().flatten().unwrap_or_default())
                .collect();
            match index.get(&key) {
                Some(&i) => {
                    if let Some(group) = order.get_mut(i) {
                        group.1.push(row);
                    }
                }
                None => {
                    index.insert(key.clone(), order.len());
                    order.push((key, vec![row]));
                }
            }
        }
        Ok(order)
    }
}

/// The output table, written as CSV.
struct Output {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn cell(value: f64) -> String {
    if value.is_nan() {
        String::new()
    } else {
        format!("{value}")
    }
}

fn opt(value: Option<f64>) -> String {
    value.map_or(String::new(), cell)
}

fn quote(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl Output {
    fn write(&self, args: &StatsArgs, printer: &Printer) -> Result<()> {
        let line = |cells: &[String]| cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",");
        let mut text = line(&self.header);
        text.push('\n');
        for row in &self.rows {
            text.push_str(&line(row));
            text.push('\n');
        }
        match &args.out {
            Some(path) => {
                std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
            }
            None => printer.result(text.trim_end()).context("writing to stdout"),
        }
    }
}

/// The column the user passed for a reference argument, for error messages.
fn column_for(args: &StatsArgs, argument: Option<Argument>) -> Option<String> {
    let name = match argument? {
        Argument::X => args.x.clone(),
        Argument::N => args.n.clone(),
        Argument::Stdpop => args.stdpop.clone(),
        Argument::XRef => args.x_ref.clone(),
        Argument::NRef => args.n_ref.clone(),
        Argument::Eventfreq => args.eventfreq.clone(),
        Argument::Ageband => args.ageband.clone(),
        Argument::Value => args.value.clone(),
        Argument::Quantile => args.quantile.clone(),
        Argument::Population => args
            .population
            .clone()
            .unwrap_or_else(|| "population".into()),
        Argument::Se => args.se.clone().unwrap_or_else(|| "se".into()),
        Argument::LowerCl => args.lower_cl.clone().unwrap_or_else(|| "lower_cl".into()),
        Argument::UpperCl => args.upper_cl.clone().unwrap_or_else(|| "upper_cl".into()),
        Argument::Rate => args.rate.clone(),
        other => return Some(format!("option --{}", format!("{other:?}").to_lowercase())),
    };
    Some(format!("column \"{name}\""))
}

/// Wrap a stats error with the group and column at fault (the chain keeps `StatsError`, so the
/// exit code is 2).
fn at_group(args: &StatsArgs, key: &[String], err: StatsError) -> anyhow::Error {
    let mut place = if args.group_by.is_empty() {
        "all rows".to_string()
    } else {
        let parts: Vec<String> = args
            .group_by
            .iter()
            .zip(key)
            .map(|(c, v)| format!("{c}={v}"))
            .collect();
        format!("group {}", parts.join(", "))
    };
    if let Some(column) = column_for(args, err.argument) {
        place.push_str(&format!(", {column}"));
    }
    anyhow::Error::new(err).context(place)
}

fn estimate_cells(estimate: Option<&Estimate>, levels: usize) -> Vec<String> {
    let mut cells = vec![opt(estimate.map(|e| e.value))];
    for i in 0..levels {
        let limits = estimate.and_then(|e| e.limits.get(i));
        cells.push(opt(limits.map(|l| l.lower)));
        cells.push(opt(limits.map(|l| l.upper)));
    }
    cells
}

fn limit_header(levels: &[Confidence]) -> Vec<String> {
    let mut header = vec!["value".to_string()];
    for (lower, upper) in limit_column_names(levels) {
        header.push(lower);
        header.push(upper);
    }
    header
}

/// Run `healthgap stats`.
pub fn run(args: StatsArgs, printer: &Printer) -> Result<ExitCode> {
    let levels: Vec<Confidence> = args
        .confidence
        .iter()
        .map(|&c| Confidence::new(c))
        .collect::<Result<_, _>>()
        .context("option --confidence")?;
    let input = Input::read(&args)?;
    let output = match args.method {
        Method::Rate | Method::Proportion => rates_and_proportions(&args, &input, &levels)?,
        Method::Mean | Method::Dsr | Method::Isratio | Method::Israte => {
            aggregates(&args, &input, &levels)?
        }
        Method::Sii => sii_table(&args, &input, &levels, printer)?,
        Method::Quantile => quantile_table(&args, &input)?,
        Method::Funnel => funnel_table(&args, &input)?,
    };
    output.write(&args, printer)?;
    Ok(ExitCode::SUCCESS)
}

fn rates_and_proportions(args: &StatsArgs, input: &Input, levels: &[Confidence]) -> Result<Output> {
    let is_rate = args.method == Method::Rate;
    let multiplier = args
        .multiplier
        .unwrap_or(if is_rate { 100_000.0 } else { 1.0 });
    // Grouped input is summed per group (a missing cell makes the sum missing, as R's sum does);
    // ungrouped input is one output row per input row, keeping every input column.
    let grouped = !args.group_by.is_empty();
    let groups = if grouped {
        input.groups(&args.group_by)?
    } else {
        (0..input.rows).map(|r| (Vec::new(), vec![r])).collect()
    };
    let mut header: Vec<String> = if grouped {
        args.group_by.clone()
    } else {
        input.names.clone()
    };
    if grouped {
        header.extend([args.x.clone(), args.n.clone()]);
    }
    header.extend(limit_header(levels));
    header.extend(["confidence", "statistic", "method"].map(String::from));
    let mut rows = Vec::new();
    for (key, members) in groups {
        let x: f64 = input.numbers(&args.x, &members)?.iter().sum();
        let n: f64 = input.numbers(&args.n, &members)?.iter().sum();
        let mut row = if grouped {
            let mut r = key.clone();
            r.extend([cell(x), cell(n)]);
            r
        } else {
            let first = members.first().copied().unwrap_or_default();
            input
                .names
                .iter()
                .map(|c| {
                    input
                        .cells
                        .get(c)
                        .and_then(|v| v.get(first).cloned().flatten())
                        .unwrap_or_default()
                })
                .collect()
        };
        let (estimate, statistic, method) = if is_rate {
            let result =
                rate::crude_rate(x, n, levels, multiplier).map_err(|e| at_group(args, &key, e))?;
            (
                result.estimate,
                rate::statistic_label(multiplier),
                result.method.map_or("", |m| m.label()).to_string(),
            )
        } else {
            let result = proportion::proportion(x, n, levels, multiplier)
                .map_err(|e| at_group(args, &key, e))?;
            (
                result,
                proportion::statistic_label(multiplier),
                proportion::METHOD.to_string(),
            )
        };
        row.extend(estimate_cells(estimate.as_ref(), levels.len()));
        row.extend([levels_label(levels), statistic, method]);
        rows.push(row);
    }
    Ok(Output { header, rows })
}

fn aggregates(args: &StatsArgs, input: &Input, levels: &[Confidence]) -> Result<Output> {
    let groups = input.groups(&args.group_by)?;
    let mut header = args.group_by.clone();
    let first: &[&str] = match args.method {
        Method::Mean => &["value_sum", "value_count", "stdev"],
        Method::Dsr => &["total_count", "total_pop"],
        Method::Israte => &["observed", "expected", "ref_rate"],
        _ => &["observed", "expected"],
    };
    header.extend(first.iter().map(|s| s.to_string()));
    header.extend(limit_header(levels));
    header.extend(["confidence", "statistic", "method"].map(String::from));
    let mut rows = Vec::new();
    for (key, members) in groups {
        let fail = |e| at_group(args, &key, e);
        let mut row = key.clone();
        let (estimate, statistic, method) = match args.method {
            Method::Mean => {
                let r = mean::mean(&input.numbers(&args.value, &members)?, levels).map_err(fail)?;
                row.extend([opt(r.value_sum), r.value_count.to_string(), opt(r.stdev)]);
                (r.estimate, "mean".to_string(), mean::METHOD.to_string())
            }
            Method::Dsr => {
                let multiplier = args.multiplier.unwrap_or(100_000.0);
                let (x, n, w) = (
                    input.numbers(&args.x, &members)?,
                    input.numbers(&args.n, &members)?,
                    input.numbers(&args.stdpop, &members)?,
                );
                let r = if args.independent_events {
                    dsr::dsr(&x, &n, &w, levels, multiplier)
                } else {
                    let bands: Vec<String> = members
                        .iter()
                        .map(|&i| {
                            input
                                .text(&args.ageband)
                                .map(|c| c.get(i).cloned().flatten().unwrap_or_default())
                        })
                        .collect::<Result<_>>()?;
                    let freq = input.numbers(&args.eventfreq, &members)?;
                    dsr::dsr_non_independent(&bands, &freq, &x, &n, &w, levels, multiplier)
                }
                .map_err(fail)?;
                row.extend([cell(r.total_count), cell(r.total_pop)]);
                let statistic = r.statistic_label(multiplier);
                (r.estimate, statistic, r.method.label().to_string())
            }
            _ => {
                let (x, n) = (
                    input.numbers(&args.x, &members)?,
                    input.numbers(&args.n, &members)?,
                );
                let (xr, nr) = (
                    input.numbers(&args.x_ref, &members)?,
                    input.numbers(&args.n_ref, &members)?,
                );
                let data = isr::IsrInput {
                    x: &x,
                    n: &n,
                    x_ref: &xr,
                    n_ref: &nr,
                    observed_total: None,
                };
                let (r, statistic) = if args.method == Method::Israte {
                    let m = args.multiplier.unwrap_or(100_000.0);
                    (
                        isr::indirectly_standardised_rate(&data, levels, m).map_err(fail)?,
                        isr::rate_statistic_label(m),
                    )
                } else {
                    let m = args.multiplier.unwrap_or(1.0);
                    (
                        isr::indirectly_standardised_ratio(&data, levels, m).map_err(fail)?,
                        isr::ratio_statistic_label(m),
                    )
                };
                row.extend([cell(r.observed), cell(r.expected)]);
                if args.method == Method::Israte {
                    row.push(opt(r.ref_rate));
                }
                (Some(r.estimate), statistic, r.method.label().to_string())
            }
        };
        row.extend(estimate_cells(estimate.as_ref(), levels.len()));
        row.extend([levels_label(levels), statistic, method]);
        rows.push(row);
    }
    Ok(Output { header, rows })
}

fn sii_table(
    args: &StatsArgs,
    input: &Input,
    levels: &[Confidence],
    printer: &Printer,
) -> Result<Output> {
    let bad = |e: StatsError| at_group(args, &[], e);
    let mut options = SiiOptions::new(ValueType::from_code(args.value_type).map_err(bad)?);
    options.transform = args.transform;
    options.multiplier = args.multiplier.unwrap_or(1.0);
    options.confidence = levels.to_vec();
    options.repetitions = args.repetitions;
    options.rii = args.rii;
    options.reliability = args.reliability;
    options.validate().map_err(bad)?;
    let population = args
        .population
        .clone()
        .unwrap_or_else(|| "population".into());
    let use_limits = args.se.is_none()
        && (args.lower_cl.is_some() || args.upper_cl.is_some() || !input.cells.contains_key("se"));
    let (lower_name, upper_name) = (
        args.lower_cl.clone().unwrap_or_else(|| "lower_cl".into()),
        args.upper_cl.clone().unwrap_or_else(|| "upper_cl".into()),
    );
    let se_name = args.se.clone().unwrap_or_else(|| "se".into());
    if options.transform && !use_limits {
        return Err(bad(StatsError::new(
            Argument::Se,
            "function phe_sii requires se to be missing when transform is true",
        )));
    }

    struct Columns {
        key: Vec<String>,
        quantile: Vec<f64>,
        population: Vec<f64>,
        values: Vec<f64>,
        spread: (Vec<f64>, Vec<f64>),
    }
    let mut groups = Vec::new();
    for (key, members) in input.groups(&args.group_by)? {
        let values = input.numbers(if args.use_x { &args.x } else { &args.value }, &members)?;
        let spread = if use_limits {
            (
                input.numbers(&lower_name, &members)?,
                input.numbers(&upper_name, &members)?,
            )
        } else {
            (input.numbers(&se_name, &members)?, Vec::new())
        };
        groups.push(Columns {
            key,
            quantile: input.numbers(&args.quantile, &members)?,
            population: input.numbers(&population, &members)?,
            values,
            spread,
        });
    }
    // The reference's whole-data rules: 5-100 quantile labels overall; groups lacking any
    // label are dropped with a warning.
    let labels: Vec<&[f64]> = groups.iter().map(|g| g.quantile.as_slice()).collect();
    let screen = screen_groups(&labels).map_err(bad)?;
    if screen.many_quantiles {
        printer.warn("Small values can make SII unstable when using a large number of quantiles");
    }
    if screen.dropped() > 0 {
        printer.warn(format!(
            "some records have been removed due to incomplete or invalid data ({} of {} groups lack a quantile)",
            screen.dropped(),
            groups.len()
        ));
    }
    let kept: Vec<&Columns> = groups
        .iter()
        .zip(&screen.keep)
        .filter(|(_, k)| **k)
        .map(|(g, _)| g)
        .collect();
    let areas: Vec<SiiArea<'_>> = kept
        .iter()
        .map(|g| SiiArea {
            quantile: &g.quantile,
            population: &g.population,
            values: if args.use_x {
                SiiValues::Count(&g.values)
            } else {
                SiiValues::Value(&g.values)
            },
            spread: if use_limits {
                SiiSpread::Limits {
                    lower: &g.spread.0,
                    upper: &g.spread.1,
                }
            } else {
                SiiSpread::StandardError(&g.spread.0)
            },
        })
        .collect();
    let results = sii_batch(&areas, &options, args.seed);
    let mut header = args.group_by.clone();
    header.extend(options.output_columns(args.intercept));
    let mut rows = Vec::new();
    for (group, result) in kept.iter().zip(results) {
        let result = result.map_err(|e| at_group(args, &group.key, e))?;
        let mut row = group.key.clone();
        row.extend(
            result
                .output_values(&options, args.intercept)
                .into_iter()
                .map(cell),
        );
        rows.push(row);
    }
    Ok(Output { header, rows })
}

fn quantile_table(args: &StatsArgs, input: &Input) -> Result<Output> {
    let mut quantiles = vec![String::new(); input.rows];
    for (key, members) in input.groups(&args.group_by)? {
        let values = input.numbers(&args.value, &members)?;
        let assigned: Vec<Option<u32>> = match &args.population {
            Some(population) => {
                let order = if args.invert {
                    DeprivationOrder::HigherIsMoreDeprived
                } else {
                    DeprivationOrder::LowerIsMoreDeprived
                };
                population_weighted_quantiles(
                    &values,
                    &input.numbers(population, &members)?,
                    args.nquantiles,
                    order,
                )
                .map_err(|e| at_group(args, &key, e))?
                .into_iter()
                .map(Some)
                .collect()
            }
            None => assign_quantiles(&values, args.nquantiles, args.invert)
                .map_err(|e| at_group(args, &key, e))?,
        };
        for (&row, q) in members.iter().zip(assigned) {
            if let Some(slot) = quantiles.get_mut(row) {
                *slot = q.map_or(String::new(), |q| q.to_string());
            }
        }
    }
    let mut header = input.names.clone();
    header.push("quantile".into());
    let rows = (0..input.rows)
        .map(|r| {
            let mut row: Vec<String> = input
                .names
                .iter()
                .map(|c| {
                    input
                        .cells
                        .get(c)
                        .and_then(|v| v.get(r).cloned().flatten())
                        .unwrap_or_default()
                })
                .collect();
            row.push(quantiles.get(r).cloned().unwrap_or_default());
            row
        })
        .collect();
    Ok(Output { header, rows })
}

fn funnel_table(args: &StatsArgs, input: &Input) -> Result<Output> {
    let statistic = match args.statistic {
        FunnelKind::Proportion => FunnelStatistic::Proportion,
        FunnelKind::Ratio => FunnelStatistic::Ratio(if args.ratio_type == "isr" {
            RatioType::Isr
        } else {
            RatioType::Count
        }),
        FunnelKind::Rate => FunnelStatistic::Rate(if args.rate_type == "crude" {
            RateType::Crude
        } else {
            RateType::Dsr
        }),
    };
    let multiplier = args.multiplier.unwrap_or(match statistic {
        FunnelStatistic::Proportion => 100.0,
        _ => 1.0,
    });
    let options = FunnelOptions {
        statistic,
        multiplier,
        years_of_data: args.years_of_data,
    };
    let groups = input.groups(&args.group_by)?;
    let mut rows = Vec::new();
    let mut labels = vec![String::new(); input.rows];
    for (key, members) in &groups {
        let numerator = input.numbers(&args.x, members)?;
        let denominator = if input.cells.contains_key(&args.n) {
            Some(input.numbers(&args.n, members)?)
        } else {
            None
        };
        let rate = if matches!(statistic, FunnelStatistic::Rate(_)) {
            Some(input.numbers(&args.rate, members)?)
        } else {
            None
        };
        let data = FunnelInput {
            numerator: &numerator,
            denominator: denominator.as_deref(),
            rate: rate.as_deref(),
        };
        let fail = |e| at_group(args, key, e);
        if args.significance {
            for (&row, label) in members
                .iter()
                .zip(funnel::assign_significance(&data, &options).map_err(fail)?)
            {
                if let Some(slot) = labels.get_mut(row) {
                    *slot = label.label().to_string();
                }
            }
        } else {
            for limit in funnel::funnel_limits(&data, &options).map_err(fail)? {
                let mut row = key.clone();
                row.extend(limit.values().into_iter().map(cell));
                row.extend([
                    funnel::statistic_label(statistic, multiplier),
                    if statistic == FunnelStatistic::Proportion {
                        "Wilson"
                    } else {
                        "Poisson"
                    }
                    .to_string(),
                ]);
                rows.push(row);
            }
        }
    }
    if args.significance {
        let mut header = input.names.clone();
        header.push("significance".into());
        let rows = (0..input.rows)
            .map(|r| {
                let mut row: Vec<String> = input
                    .names
                    .iter()
                    .map(|c| {
                        input
                            .cells
                            .get(c)
                            .and_then(|v| v.get(r).cloned().flatten())
                            .unwrap_or_default()
                    })
                    .collect();
                row.push(labels.get(r).cloned().unwrap_or_default());
                row
            })
            .collect();
        return Ok(Output { header, rows });
    }
    let mut header = args.group_by.clone();
    header.extend(FunnelRow::columns(statistic));
    header.extend(["statistic", "method"].map(String::from));
    Ok(Output { header, rows })
}
