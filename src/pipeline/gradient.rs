//! Stage 6, gradient: how each indicator falls along deprivation, per footprint.
//!
//! Owns the `inequality` table: for each indicator × footprint (England, ICBs, PCNs by default)
//! the slope and relative index of inequality across national IMD deciles with simulated 95%
//! and 99.8% limits (the reference method, seeded), the gap and ratio between IMD quintile 1
//! and 5, the footprint's funnel-plot significance against the average of all footprints of its
//! level, and flags: small numbers (a decile with fewer than 10 events), fewer than five
//! populated deciles (no SII), and a non-linear gradient (a significant curvature that bends the
//! line by more than a tenth of the SII; `crate::stats::linearity`). All statistics come from `crate::stats`; this module picks rows and flags.
//!
//! Sign convention (the reference's): quantile 1 is the most deprived and the SII is the fitted
//! difference from the most to the least deprived end, so an outcome that is higher among more
//! deprived people has a negative SII, and its RII (least ÷ most deprived) is below 1.

use std::collections::BTreeMap;

use polars::prelude::*;
use rayon::prelude::*;
use serde::Deserialize;

use crate::pipeline::measure::{BREAKDOWN, BREAKDOWN_VALUE, IndicatorSpec, IndicatorType};
use crate::schema;
use crate::stats::Confidence;
use crate::stats::funnel::{
    FunnelInput, FunnelOptions, FunnelStatistic, RateType, assign_significance,
};
use crate::stats::linearity::{curvature, relative_rank};
use crate::stats::sii::{SiiArea, SiiOptions, SiiSpread, SiiValues, sii, stream_for_key};

/// `[gradient]`: how gradients are estimated.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GradientConfig {
    /// Footprint levels to estimate gradients for (default `england`, `icb`, `pcn`).
    #[serde(default = "default_levels")]
    pub levels: Vec<String>,
    /// Repetitions of the SII simulation (default 100,000, as the reference; at least 1,000).
    #[serde(default = "default_repetitions")]
    pub repetitions: usize,
    /// A decile with fewer events than this raises the small-numbers flag (default 10).
    #[serde(default = "default_small_events")]
    pub small_events: f64,
}

impl Default for GradientConfig {
    fn default() -> Self {
        GradientConfig {
            levels: default_levels(),
            repetitions: default_repetitions(),
            small_events: default_small_events(),
        }
    }
}

fn default_levels() -> Vec<String> {
    ["england", "icb", "pcn"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn default_repetitions() -> usize {
    100_000
}

fn default_small_events() -> f64 {
    10.0
}

/// An indicator and the breakdowns that carry its deprivation deciles and quintiles
/// (`imd_decile`/`imd_quintile` for patient-level indicators; the practice deprivation ones
/// for indicators from practice-level figures).
#[derive(Debug, Clone, Copy)]
pub struct GradientSpec<'a> {
    /// The indicator.
    pub spec: &'a IndicatorSpec,
    /// The decile breakdown.
    pub deciles: &'a str,
    /// The quintile breakdown.
    pub quintiles: &'a str,
}

/// An area of one indicator: (indicator id, footprint level, footprint code).
type AreaKey = (String, String, String);
/// An area's overall numerator, denominator and value.
type Overall = (f64, f64, Option<f64>);

/// The rows of `indicators` that the areas' gradients read: their indicators' overall, decile
/// and quintile rows at the configured levels (a tenth of a national table), found by polars
/// in parallel. The loop that groups them reads a row at a time by its texts, on one core;
/// over the whole table it took 0.1–0.3 s more at any size (benches/RESULTS.md, thirty-fourth
/// round).
fn rows_read(
    indicators: &DataFrame,
    specs: &[GradientSpec<'_>],
    config: &GradientConfig,
) -> PolarsResult<DataFrame> {
    let one_of = |column: &str, texts: Vec<&str>| {
        col(column).is_in(lit(Series::new(column.into(), texts)).implode(false), false)
    };
    let breakdowns = std::iter::once("all")
        .chain(specs.iter().flat_map(|g| [g.deciles, g.quintiles]))
        .collect();
    let ids = specs.iter().map(|g| g.spec.id.as_str()).collect();
    let levels = config.levels.iter().map(String::as_str).collect();
    indicators
        .clone()
        .lazy()
        .filter(
            one_of(BREAKDOWN, breakdowns)
                .and(one_of(schema::INDICATOR, ids))
                .and(one_of(schema::FOOTPRINT_KIND, levels)),
        )
        .collect()
}

/// A gradient is flagged non-linear when its curvature departs from the straight line by more
/// than this share of the SII (and is significant).
pub const NON_LINEAR_SHARE: f64 = 0.1;

/// Fewest populated deciles for an SII.
pub const MIN_QUANTILES: usize = 5;

/// Columns of the `inequality` table, in order.
pub const INEQUALITY_COLUMNS: &[&str] = &[
    schema::INDICATOR,
    schema::INDICATOR_NAME,
    schema::FOOTPRINT_KIND,
    schema::FOOTPRINT_CODE,
    schema::NUMERATOR,
    schema::DENOMINATOR,
    schema::VALUE,
    "populated_quantiles",
    "sii",
    "sii_lower95_0cl",
    "sii_upper95_0cl",
    "sii_lower99_8cl",
    "sii_upper99_8cl",
    "rii",
    "rii_lower95_0cl",
    "rii_upper95_0cl",
    "rii_lower99_8cl",
    "rii_upper99_8cl",
    "sii_significant",
    "q1_value",
    "q5_value",
    "q1_numerator",
    "q5_numerator",
    "gap_absolute",
    "gap_relative",
    "funnel_significance",
    "flag_small_numbers",
    "flag_few_quantiles",
    "flag_non_linear",
    "curvature_z",
];

/// One footprint's decile rows of one indicator.
#[derive(Debug, Default, Clone)]
struct Deciles {
    quantile: Vec<f64>,
    numerator: Vec<f64>,
    population: Vec<f64>,
    value: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

/// Compute the `inequality` table from the (unsuppressed) `indicators` table.
///
/// # Errors
/// If a column is missing (an internal error) or the SII options are invalid.
pub fn inequality_table(
    indicators: &DataFrame,
    specs: &[GradientSpec<'_>],
    config: &GradientConfig,
    seed: u64,
) -> PolarsResult<DataFrame> {
    let indicators = &rows_read(indicators, specs, config)?;
    let kinds = indicators.column(schema::FOOTPRINT_KIND)?.str()?.clone();
    let codes = indicators.column(schema::FOOTPRINT_CODE)?.str()?.clone();
    let ids = indicators.column(schema::INDICATOR)?.str()?.clone();
    let breakdowns = indicators.column(BREAKDOWN)?.str()?.clone();
    let labels = indicators.column(BREAKDOWN_VALUE)?.str()?.clone();
    let numerators = indicators.column(schema::NUMERATOR)?.f64()?.clone();
    let denominators = indicators.column(schema::DENOMINATOR)?.f64()?.clone();
    let values = indicators.column(schema::VALUE)?.f64()?.clone();
    let lowers = indicators.column(schema::LOWER_CL_95)?.f64()?.clone();
    let uppers = indicators.column(schema::UPPER_CL_95)?.f64()?.clone();

    // Group the rows each area needs, keyed by (indicator, level, code).
    type Key = AreaKey;
    let mut deciles: BTreeMap<Key, Deciles> = BTreeMap::new();
    let mut overall: BTreeMap<Key, (f64, f64, Option<f64>)> = BTreeMap::new();
    let mut quintiles: BTreeMap<Key, Quintiles> = BTreeMap::new();
    let gradient_of = |id: &str| specs.iter().find(|g| g.spec.id == id);
    for row in 0..indicators.height() {
        let (Some(kind), Some(code), Some(id), Some(breakdown), Some(label)) = (
            kinds.get(row),
            codes.get(row),
            ids.get(row),
            breakdowns.get(row),
            labels.get(row),
        ) else {
            continue;
        };
        // Every row is at a configured level and of an indicator with a gradient (`rows_read`).
        let Some(gradient) = gradient_of(id) else {
            continue;
        };
        let key = (id.to_string(), kind.to_string(), code.to_string());
        match breakdown {
            "all" => {
                overall.insert(
                    key,
                    (
                        numerators.get(row).unwrap_or(0.0),
                        denominators.get(row).unwrap_or(0.0),
                        values.get(row),
                    ),
                );
            }
            b if b == gradient.deciles => {
                let (Ok(decile), Some(value), Some(lower), Some(upper)) = (
                    label.parse::<f64>(),
                    values.get(row),
                    lowers.get(row),
                    uppers.get(row),
                ) else {
                    continue;
                };
                let population = denominators.get(row).unwrap_or(0.0);
                if population <= 0.0 {
                    continue;
                }
                let entry = deciles.entry(key).or_default();
                entry.quantile.push(decile);
                entry.numerator.push(numerators.get(row).unwrap_or(0.0));
                entry.population.push(population);
                entry.value.push(value);
                entry.lower.push(lower);
                entry.upper.push(upper);
            }
            b if b == gradient.quintiles => {
                let entry = quintiles.entry(key).or_default();
                match label {
                    "1" => {
                        entry.q1 = values.get(row);
                        entry.q1_numerator = numerators.get(row);
                    }
                    "5" => {
                        entry.q5 = values.get(row);
                        entry.q5_numerator = numerators.get(row);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    let levels = [Confidence::new(0.95), Confidence::new(0.998)]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| polars_err!(ComputeError: "{e}"))?;
    let keys: Vec<Key> = overall.keys().cloned().collect();
    let spec_of = |id: &str| gradient_of(id).map(|g| g.spec);

    // The SIIs, in parallel across areas; each area's random stream comes from its key, so its
    // limits do not depend on which other areas are in the run. Jobs of at most
    // `SII_AREAS_PER_JOB` areas: rayon's own split left the last thousands of areas to one core
    // (the batch's last 2–3 s at England ran on one core).
    let results: Vec<Option<AreaGradient>> = keys
        .par_iter()
        .with_max_len(crate::stats::sii::SII_AREAS_PER_JOB)
        .map(|key| {
            let spec = spec_of(&key.0)?;
            let area = deciles.get(key)?;
            Some(area_gradient(area, spec, &levels, config, seed, key))
        })
        .collect();

    let plain: Vec<IndicatorSpec> = specs.iter().map(|g| g.spec.clone()).collect();
    let funnel = funnel_significance(&overall, &plain);

    let mut table = InequalityRows::default();
    for (key, gradient) in keys.iter().zip(results) {
        let Some(spec) = spec_of(&key.0) else {
            continue;
        };
        let (numerator, denominator, value) = overall.get(key).copied().unwrap_or((0.0, 0.0, None));
        let q = quintiles.get(key).copied().unwrap_or_default();
        table.push(
            spec,
            key,
            numerator,
            denominator,
            value,
            gradient.unwrap_or_default(),
            q,
            funnel.get(key).copied(),
        );
    }
    table.into_frame()
}

/// The quintile 1 and 5 values of an area, with their numerators (for disclosure control).
#[derive(Debug, Default, Clone, Copy)]
struct Quintiles {
    q1: Option<f64>,
    q5: Option<f64>,
    q1_numerator: Option<f64>,
    q5_numerator: Option<f64>,
}

/// What the gradient of one area came to.
#[derive(Debug, Default, Clone)]
struct AreaGradient {
    populated: usize,
    sii: Option<f64>,
    rii: Option<f64>,
    sii_limits: [Option<f64>; 4],
    rii_limits: [Option<f64>; 4],
    small_numbers: bool,
    curvature_z: Option<f64>,
    curvature: Option<f64>,
}

fn area_gradient(
    area: &Deciles,
    spec: &IndicatorSpec,
    levels: &[Confidence],
    config: &GradientConfig,
    seed: u64,
    key: &AreaKey,
) -> AreaGradient {
    let populated = area.quantile.len();
    let mut out = AreaGradient {
        populated,
        small_numbers: area.numerator.iter().any(|&x| x < config.small_events),
        ..Default::default()
    };
    if populated < MIN_QUANTILES {
        return out;
    }
    // Order by decile (1 = most deprived) for the rank and the curvature test.
    let mut order: Vec<usize> = (0..populated).collect();
    order.sort_by(|&a, &b| {
        area.quantile
            .get(a)
            .copied()
            .unwrap_or(0.0)
            .total_cmp(&area.quantile.get(b).copied().unwrap_or(0.0))
    });
    let pick = |v: &[f64]| {
        order
            .iter()
            .map(|&i| v.get(i).copied().unwrap_or(f64::NAN))
            .collect::<Vec<f64>>()
    };
    let multiplier = spec.multiplier();
    let quantile = pick(&area.quantile);
    let population = pick(&area.population);
    // The reference's value scale: proportions in 0–1, rates per person; the multiplier puts
    // the SII back in the indicator's unit.
    let value: Vec<f64> = pick(&area.value).iter().map(|v| v / multiplier).collect();
    let lower: Vec<f64> = pick(&area.lower).iter().map(|v| v / multiplier).collect();
    let upper: Vec<f64> = pick(&area.upper).iter().map(|v| v / multiplier).collect();
    let mut options = SiiOptions::new(spec.kind.sii_value_type());
    options.multiplier = multiplier;
    options.confidence = levels.to_vec();
    options.repetitions = config.repetitions;
    options.rii = true;
    let sii_area = SiiArea {
        quantile: &quantile,
        population: &population,
        values: SiiValues::Value(&value),
        spread: SiiSpread::Limits {
            lower: &lower,
            upper: &upper,
        },
    };
    let stream = stream_for_key(&format!("{}|{}|{}", key.0, key.1, key.2));
    if let Ok(result) = sii(&sii_area, &options, seed, stream) {
        out.sii = Some(result.sii).filter(|v| v.is_finite());
        out.rii = result.rii.filter(|v| v.is_finite());
        for (i, limits) in result.sii_limits.iter().take(2).enumerate() {
            if let Some(slot) = out.sii_limits.get_mut(2 * i) {
                *slot = Some(limits.lower).filter(|v| v.is_finite());
            }
            if let Some(slot) = out.sii_limits.get_mut(2 * i + 1) {
                *slot = Some(limits.upper).filter(|v| v.is_finite());
            }
        }
        for (i, limits) in result.rii_limits.iter().take(2).enumerate() {
            if let Some(slot) = out.rii_limits.get_mut(2 * i) {
                *slot = Some(limits.lower).filter(|v| v.is_finite());
            }
            if let Some(slot) = out.rii_limits.get_mut(2 * i + 1) {
                *slot = Some(limits.upper).filter(|v| v.is_finite());
            }
        }
    }
    // Curvature on the indicator's own scale, SE from the 95% limits.
    let rank = relative_rank(&population);
    let se: Vec<f64> = pick(&area.upper)
        .iter()
        .zip(pick(&area.lower))
        .map(|(u, l)| (u - l) / (2.0 * crate::stats::precision::Z_95))
        .collect();
    if let Ok(fit) = curvature(&rank, &pick(&area.value), &se) {
        out.curvature_z = Some(fit.z()).filter(|z| z.is_finite());
        out.curvature = Some(fit.coefficient).filter(|c| c.is_finite());
    }
    out
}

/// Each footprint's funnel-plot significance against the average of the footprints of its
/// level (England's value when every practice is in a footprint), per indicator.
fn funnel_significance(
    overall: &BTreeMap<AreaKey, Overall>,
    specs: &[IndicatorSpec],
) -> BTreeMap<AreaKey, &'static str> {
    let mut out = BTreeMap::new();
    // Rows of each (indicator, level): the area and its overall figures.
    type Rows<'k> = Vec<(&'k AreaKey, f64, f64, Option<f64>)>;
    let mut groups: BTreeMap<(String, String), Rows<'_>> = BTreeMap::new();
    for (key, &(x, n, v)) in overall {
        if key.1 == "england" || n <= 0.0 {
            continue;
        }
        groups
            .entry((key.0.clone(), key.1.clone()))
            .or_default()
            .push((key, x, n, v));
    }
    for ((id, _level), rows) in groups {
        let Some(spec) = specs.iter().find(|s| s.id == id) else {
            continue;
        };
        let numerator: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let denominator: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let rate: Vec<f64> = rows.iter().map(|r| r.3.unwrap_or(f64::NAN)).collect();
        let (statistic, input) = match spec.kind {
            IndicatorType::Proportion => (
                FunnelStatistic::Proportion,
                FunnelInput {
                    numerator: &numerator,
                    denominator: Some(&denominator),
                    rate: None,
                },
            ),
            IndicatorType::Rate => (
                FunnelStatistic::Rate(RateType::Crude),
                FunnelInput {
                    numerator: &numerator,
                    denominator: Some(&denominator),
                    rate: Some(&rate),
                },
            ),
            IndicatorType::Dsr => (
                FunnelStatistic::Rate(RateType::Dsr),
                FunnelInput {
                    numerator: &numerator,
                    denominator: Some(&denominator),
                    rate: Some(&rate),
                },
            ),
        };
        let options = FunnelOptions {
            statistic,
            multiplier: spec.multiplier(),
            years_of_data: 1.0,
        };
        if let Ok(labels) = assign_significance(&input, &options) {
            for (row, label) in rows.iter().zip(labels) {
                out.insert(row.0.clone(), label.label());
            }
        }
    }
    out
}

/// Rows of the `inequality` table, column by column.
#[derive(Default)]
struct InequalityRows {
    indicator: Vec<String>,
    name: Vec<String>,
    level: Vec<String>,
    code: Vec<String>,
    numerator: Vec<f64>,
    denominator: Vec<f64>,
    value: Vec<Option<f64>>,
    populated: Vec<u32>,
    sii: Vec<Option<f64>>,
    sii_limits: [Vec<Option<f64>>; 4],
    rii: Vec<Option<f64>>,
    rii_limits: [Vec<Option<f64>>; 4],
    significant: Vec<Option<bool>>,
    q1: Vec<Option<f64>>,
    q5: Vec<Option<f64>>,
    q1_numerator: Vec<Option<f64>>,
    q5_numerator: Vec<Option<f64>>,
    gap_absolute: Vec<Option<f64>>,
    gap_relative: Vec<Option<f64>>,
    funnel: Vec<Option<&'static str>>,
    small: Vec<bool>,
    few: Vec<bool>,
    non_linear: Vec<Option<bool>>,
    curvature_z: Vec<Option<f64>>,
}

impl InequalityRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        spec: &IndicatorSpec,
        key: &AreaKey,
        numerator: f64,
        denominator: f64,
        value: Option<f64>,
        gradient: AreaGradient,
        q: Quintiles,
        funnel: Option<&'static str>,
    ) {
        let (q1, q5) = (q.q1, q.q5);
        self.indicator.push(spec.id.clone());
        self.name.push(spec.name.clone());
        self.level.push(key.1.clone());
        self.code.push(key.2.clone());
        self.numerator.push(numerator);
        self.denominator.push(denominator);
        self.value.push(value);
        self.populated
            .push(u32::try_from(gradient.populated).unwrap_or(u32::MAX));
        self.sii.push(gradient.sii);
        for (column, value) in self.sii_limits.iter_mut().zip(gradient.sii_limits) {
            column.push(value);
        }
        self.rii.push(gradient.rii);
        for (column, value) in self.rii_limits.iter_mut().zip(gradient.rii_limits) {
            column.push(value);
        }
        let [lower, upper, ..] = gradient.sii_limits;
        self.significant.push(match (lower, upper) {
            (Some(l), Some(u)) => Some(l > 0.0 || u < 0.0),
            _ => None,
        });
        self.q1.push(q1);
        self.q5.push(q5);
        self.q1_numerator.push(q.q1_numerator);
        self.q5_numerator.push(q.q5_numerator);
        self.gap_absolute.push(q1.zip(q5).map(|(a, b)| a - b));
        self.gap_relative
            .push(q1.zip(q5).and_then(|(a, b)| (b != 0.0).then(|| a / b)));
        self.funnel.push(funnel);
        self.small.push(gradient.small_numbers);
        self.few.push(gradient.populated < MIN_QUANTILES);
        // Non-linear: the curvature is significant *and* material. With national denominators
        // every wiggle is significant, so it must also bend the line by more than a tenth of
        // the SII: a quadratic c·r² departs from its chord by at most |c|/4 over the ranks.
        self.non_linear
            .push(gradient.curvature_z.zip(gradient.curvature).map(|(z, c)| {
                z.abs() > crate::stats::precision::Z_95
                    && c.abs() / 4.0 > NON_LINEAR_SHARE * gradient.sii.map_or(0.0, f64::abs)
            }));
        self.curvature_z.push(gradient.curvature_z);
    }

    fn into_frame(self) -> PolarsResult<DataFrame> {
        let n = self.indicator.len();
        let [s0, s1, s2, s3] = self.sii_limits;
        let [r0, r1, r2, r3] = self.rii_limits;
        let columns = vec![
            Column::new(schema::INDICATOR.into(), self.indicator),
            Column::new(schema::INDICATOR_NAME.into(), self.name),
            Column::new(schema::FOOTPRINT_KIND.into(), self.level),
            Column::new(schema::FOOTPRINT_CODE.into(), self.code),
            Column::new(schema::NUMERATOR.into(), self.numerator),
            Column::new(schema::DENOMINATOR.into(), self.denominator),
            Column::new(schema::VALUE.into(), self.value),
            Column::new("populated_quantiles".into(), self.populated),
            Column::new("sii".into(), self.sii),
            Column::new("sii_lower95_0cl".into(), s0),
            Column::new("sii_upper95_0cl".into(), s1),
            Column::new("sii_lower99_8cl".into(), s2),
            Column::new("sii_upper99_8cl".into(), s3),
            Column::new("rii".into(), self.rii),
            Column::new("rii_lower95_0cl".into(), r0),
            Column::new("rii_upper95_0cl".into(), r1),
            Column::new("rii_lower99_8cl".into(), r2),
            Column::new("rii_upper99_8cl".into(), r3),
            Column::new("sii_significant".into(), self.significant),
            Column::new("q1_value".into(), self.q1),
            Column::new("q5_value".into(), self.q5),
            Column::new("q1_numerator".into(), self.q1_numerator),
            Column::new("q5_numerator".into(), self.q5_numerator),
            Column::new("gap_absolute".into(), self.gap_absolute),
            Column::new("gap_relative".into(), self.gap_relative),
            Column::new("funnel_significance".into(), self.funnel),
            Column::new("flag_small_numbers".into(), self.small),
            Column::new("flag_few_quantiles".into(), self.few),
            Column::new("flag_non_linear".into(), self.non_linear),
            Column::new("curvature_z".into(), self.curvature_z),
        ];
        let frame = DataFrame::new(n, columns)?;
        frame
            .lazy()
            .sort_by_exprs(
                [
                    col(schema::INDICATOR),
                    crate::pipeline::measure::level_order(),
                    col(schema::FOOTPRINT_CODE),
                ],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::measure::tests::proportion;

    /// The rows an area's gradient reads are its indicator's overall, decile and quintile rows
    /// at a configured level: other indicators, levels and breakdowns (with the same labels)
    /// are left out, and the quintile figures come from the quintile rows.
    #[test]
    fn an_area_reads_its_own_overall_decile_and_quintile_rows() {
        /// (indicator, level, code, breakdown, label, numerator, denominator)
        type Row<'a> = (&'a str, &'a str, &'a str, &'a str, String, f64, f64);
        let mut rows: Vec<Row<'_>> = Vec::new();
        for (id, level) in [("a", "pcn"), ("a", "practice"), ("z", "pcn")] {
            // The decile rows fall from 28% to 10%; other rows differ by their breakdown.
            let mut add = |breakdown, label: String, events, people| {
                rows.push((id, level, "P1", breakdown, label, events, people));
            };
            add("all", "all".into(), 2_100.0, 10_000.0);
            for decile in 1..=10 {
                let events = 300.0 - 20.0 * f64::from(decile);
                add("imd_decile", decile.to_string(), events, 1_000.0);
                add("sex", decile.to_string(), 999.0, 1_000.0);
            }
            for quintile in 1..=5 {
                let events = 580.0 - 80.0 * f64::from(quintile);
                add("imd_quintile", quintile.to_string(), events, 2_000.0);
            }
        }
        let column = |pick: &dyn Fn(&Row<'_>) -> String| rows.iter().map(pick).collect::<Vec<_>>();
        let share = |x: f64, n: f64| 100.0 * x / n;
        let frame = df![
            schema::INDICATOR => column(&|r| r.0.to_string()),
            schema::FOOTPRINT_KIND => column(&|r| r.1.to_string()),
            schema::FOOTPRINT_CODE => column(&|r| r.2.to_string()),
            BREAKDOWN => column(&|r| r.3.to_string()),
            BREAKDOWN_VALUE => column(&|r| r.4.clone()),
            schema::NUMERATOR => rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            schema::DENOMINATOR => rows.iter().map(|r| r.6).collect::<Vec<_>>(),
            schema::VALUE => rows.iter().map(|r| share(r.5, r.6)).collect::<Vec<_>>(),
            schema::LOWER_CL_95 => rows.iter().map(|r| share(r.5, r.6) - 1.0).collect::<Vec<_>>(),
            schema::UPPER_CL_95 => rows.iter().map(|r| share(r.5, r.6) + 1.0).collect::<Vec<_>>(),
        ]
        .expect("indicators");
        // Only `a` has a gradient; `z`'s rows are the same as its.
        let a = proportion("a");
        let specs = [GradientSpec {
            spec: &a,
            deciles: "imd_decile",
            quintiles: "imd_quintile",
        }];
        let config = GradientConfig {
            levels: vec!["pcn".into()],
            repetitions: 1_000,
            ..GradientConfig::default()
        };
        let table = inequality_table(&frame, &specs, &config, 7).expect("inequality");
        assert_eq!(table.height(), 1, "{table}");
        let number = |name: &str| {
            table
                .column(name)
                .expect(name)
                .f64()
                .expect("number")
                .get(0)
        };
        let text = |name: &str| {
            table
                .column(name)
                .expect(name)
                .str()
                .expect("text")
                .get(0)
                .map(str::to_string)
        };
        assert_eq!(text(schema::INDICATOR).as_deref(), Some("a"));
        assert_eq!(text(schema::FOOTPRINT_KIND).as_deref(), Some("pcn"));
        assert_eq!(number(schema::VALUE), Some(21.0));
        assert_eq!(number("q1_value"), Some(25.0));
        assert_eq!(number("q5_value"), Some(9.0));
        assert_eq!(number("q1_numerator"), Some(500.0));
        assert_eq!(number("gap_absolute"), Some(16.0));
        // Ten deciles falling by 2 points each over a tenth of the ranks each: an SII of 20
        // points across the whole range.
        let sii = number("sii").expect("an SII");
        assert!((sii.abs() - 20.0).abs() < 1e-6, "{sii}");
    }
}
