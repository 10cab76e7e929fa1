//! The plain row structs the pack works on (one per publishable table) and the reading of
//! collected data frames into them, column by column, naming the table and column when one is
//! missing or has the wrong type. Which rows to read (the lazy scans, filtered to one ICB) is
//! `gather.rs`. Suppressed values are `None` and stay so.

use polars::prelude::*;

use super::ReportError;
use crate::schema;

/// One row of `area_deprivation`: England, an ICB, a PCN or a practice.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// `england`, `icb`, `pcn` or `practice`.
    pub level: String,
    /// ODS code (ONS for England).
    pub code: String,
    /// Name, when the run has one.
    pub name: Option<String>,
    /// A practice's PCN, a PCN's ICB.
    pub parent: Option<String>,
    /// Registered people (`None`: suppressed).
    pub population: Option<f64>,
    /// Of whom with a deprivation match.
    pub population_with_imd: Option<f64>,
    /// Population-weighted IMD score.
    pub imd_score: Option<f64>,
    /// People in Core20 LSOAs.
    pub core20_population: Option<f64>,
    /// Core20 share of `population_with_imd` (0–1).
    pub core20_share: Option<f64>,
    /// People by national IMD quintile, 1 = most deprived.
    pub quintiles: [Option<f64>; 5],
    /// Decile of the IMD score among areas of the level (PCNs, practices).
    pub deprivation_decile: Option<i64>,
    /// A count of the row was suppressed.
    pub suppressed: bool,
}

impl Area {
    /// The name, or the code when there is none.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.code.clone())
    }
}

/// One row of `indicators`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorRow {
    /// Indicator id.
    pub indicator: String,
    /// Indicator name.
    pub name: String,
    /// `proportion`, `rate` or `dsr`.
    pub kind: String,
    /// `england`, `icb`, `pcn`.
    pub footprint_kind: String,
    /// Footprint code.
    pub footprint_code: String,
    /// `all`, `imd_decile`, `core20`, …
    pub breakdown: String,
    /// `1`, `Core20`, `F`, …
    pub breakdown_value: String,
    /// Numerator (rounded; `None` when suppressed).
    pub numerator: Option<f64>,
    /// Denominator (rounded; `None` when suppressed).
    pub denominator: Option<f64>,
    /// Value × the indicator's multiplier (`None` when withheld or not defined).
    pub value: Option<f64>,
    /// 95% limits.
    pub limits: Option<(f64, f64)>,
    /// A count was suppressed.
    pub suppressed: bool,
}

/// One row of `inequality`.
#[derive(Debug, Clone, PartialEq)]
pub struct InequalityRow {
    /// Indicator id.
    pub indicator: String,
    /// Indicator name.
    pub name: String,
    /// `england`, `icb`, `pcn`.
    pub footprint_kind: String,
    /// Footprint code.
    pub footprint_code: String,
    /// Overall numerator.
    pub numerator: Option<f64>,
    /// Overall denominator.
    pub denominator: Option<f64>,
    /// Overall value.
    pub value: Option<f64>,
    /// Deciles with people.
    pub populated_quantiles: u32,
    /// SII (least minus most deprived).
    pub sii: Option<f64>,
    /// Its 95% limits.
    pub sii_limits: Option<(f64, f64)>,
    /// RII (least over most deprived).
    pub rii: Option<f64>,
    /// Its 95% limits.
    pub rii_limits: Option<(f64, f64)>,
    /// The 95% limits of the SII exclude 0.
    pub sii_significant: Option<bool>,
    /// Quintile 1 value.
    pub q1_value: Option<f64>,
    /// Quintile 5 value.
    pub q5_value: Option<f64>,
    /// Funnel-plot significance against the average of the level's footprints.
    pub funnel_significance: Option<String>,
    /// A decile has fewer than 10 events.
    pub flag_small_numbers: bool,
    /// Fewer than 5 populated deciles.
    pub flag_few_quantiles: bool,
    /// Significant and material curvature.
    pub flag_non_linear: bool,
    /// A count was suppressed.
    pub suppressed: bool,
}

/// One (summed) cell of `segments` for a PCN.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentCell {
    /// The PCN.
    pub pcn: String,
    /// The segmentation (`bridges_to_health`).
    pub segmentation: String,
    /// The segment.
    pub segment: String,
    /// The risk tier.
    pub risk_tier: String,
    /// IMD quintile (`None`: not known).
    pub imd_quintile: Option<u8>,
    /// People (rounded); `None` when suppressed.
    pub population: Option<f64>,
    /// The cell was suppressed.
    pub suppressed: bool,
}

/// An LSOA's attribution to a footprint, from `footprint_weights`.
#[derive(Debug, Clone, PartialEq)]
pub struct LsoaWeight {
    /// The LSOA.
    pub lsoa: String,
    /// `pcn` or a polygon kind (`icb`).
    pub footprint_kind: String,
    /// The footprint's code.
    pub footprint_code: String,
    /// How it was attributed: `registered_plurality`, `registered_share`, `geometric`, …
    pub method: String,
}

pub(super) fn areas_from(table: &str, df: &DataFrame) -> Result<Vec<Area>, ReportError> {
    let level = strings(table, df, schema::AREA_LEVEL)?;
    let code = strings(table, df, schema::AREA_CODE)?;
    let name = strings(table, df, schema::AREA_NAME)?;
    let parent = strings(table, df, schema::PARENT_AREA_CODE)?;
    let population = numbers(table, df, schema::POPULATION)?;
    let with_imd = numbers(table, df, schema::POPULATION_WITH_IMD)?;
    let score = numbers(table, df, schema::IMD_SCORE)?;
    let core20 = numbers(table, df, schema::CORE20_POPULATION)?;
    let share = numbers(table, df, schema::CORE20_SHARE)?;
    let decile = numbers(table, df, schema::DEPRIVATION_DECILE)?;
    let quintiles = (1..=5)
        .map(|q| numbers(table, df, &format!("population_imd_q{q}")))
        .collect::<Result<Vec<_>, _>>()?;
    let suppressed = flags(table, df, "suppressed")?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let at = |v: &Vec<Option<f64>>| v.get(i).copied().flatten();
        let text = |v: &Vec<Option<String>>| v.get(i).cloned().flatten();
        out.push(Area {
            level: text(&level).unwrap_or_default(),
            code: text(&code).unwrap_or_default(),
            name: text(&name),
            parent: text(&parent).filter(|p| !p.is_empty()),
            population: at(&population),
            population_with_imd: at(&with_imd),
            imd_score: at(&score),
            core20_population: at(&core20),
            core20_share: at(&share),
            quintiles: std::array::from_fn(|q| quintiles.get(q).and_then(at)),
            deprivation_decile: at(&decile).map(|d| d.round() as i64),
            suppressed: suppressed.get(i).copied().unwrap_or(false),
        });
    }
    Ok(out)
}

pub(super) fn indicators_from(
    table: &str,
    df: &DataFrame,
) -> Result<Vec<IndicatorRow>, ReportError> {
    use crate::pipeline::measure::{BREAKDOWN, BREAKDOWN_VALUE, INDICATOR_TYPE};
    let id = strings(table, df, schema::INDICATOR)?;
    let name = strings(table, df, schema::INDICATOR_NAME)?;
    let kind = strings(table, df, INDICATOR_TYPE)?;
    let fk = strings(table, df, schema::FOOTPRINT_KIND)?;
    let fc = strings(table, df, schema::FOOTPRINT_CODE)?;
    let breakdown = strings(table, df, BREAKDOWN)?;
    let label = strings(table, df, BREAKDOWN_VALUE)?;
    let numerator = numbers(table, df, schema::NUMERATOR)?;
    let denominator = numbers(table, df, schema::DENOMINATOR)?;
    let value = numbers(table, df, schema::VALUE)?;
    let lower = numbers(table, df, schema::LOWER_CL_95)?;
    let upper = numbers(table, df, schema::UPPER_CL_95)?;
    let suppressed = flags(table, df, "suppressed")?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let at = |v: &Vec<Option<f64>>| v.get(i).copied().flatten().filter(|x| x.is_finite());
        let text = |v: &Vec<Option<String>>| v.get(i).cloned().flatten().unwrap_or_default();
        out.push(IndicatorRow {
            indicator: text(&id),
            name: text(&name),
            kind: text(&kind),
            footprint_kind: text(&fk),
            footprint_code: text(&fc),
            breakdown: text(&breakdown),
            breakdown_value: text(&label),
            numerator: at(&numerator),
            denominator: at(&denominator),
            value: at(&value),
            limits: at(&lower).zip(at(&upper)),
            suppressed: suppressed.get(i).copied().unwrap_or(false),
        });
    }
    Ok(out)
}

pub(super) fn inequality_rows(
    table: &str,
    df: &DataFrame,
) -> Result<Vec<InequalityRow>, ReportError> {
    let id = strings(table, df, schema::INDICATOR)?;
    let name = strings(table, df, schema::INDICATOR_NAME)?;
    let fk = strings(table, df, schema::FOOTPRINT_KIND)?;
    let fc = strings(table, df, schema::FOOTPRINT_CODE)?;
    let numerator = numbers(table, df, schema::NUMERATOR)?;
    let denominator = numbers(table, df, schema::DENOMINATOR)?;
    let value = numbers(table, df, schema::VALUE)?;
    let populated = numbers(table, df, "populated_quantiles")?;
    let sii = numbers(table, df, "sii")?;
    let sii_lower = numbers(table, df, "sii_lower95_0cl")?;
    let sii_upper = numbers(table, df, "sii_upper95_0cl")?;
    let rii = numbers(table, df, "rii")?;
    let rii_lower = numbers(table, df, "rii_lower95_0cl")?;
    let rii_upper = numbers(table, df, "rii_upper95_0cl")?;
    let significant = optional_flags(table, df, "sii_significant")?;
    let q1 = numbers(table, df, "q1_value")?;
    let q5 = numbers(table, df, "q5_value")?;
    let funnel = strings(table, df, "funnel_significance")?;
    let small = flags(table, df, "flag_small_numbers")?;
    let few = flags(table, df, "flag_few_quantiles")?;
    let non_linear = flags(table, df, "flag_non_linear")?;
    let suppressed = flags(table, df, "suppressed")?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let at = |v: &Vec<Option<f64>>| v.get(i).copied().flatten().filter(|x| x.is_finite());
        let text = |v: &Vec<Option<String>>| v.get(i).cloned().flatten().unwrap_or_default();
        let flag = |v: &Vec<bool>| v.get(i).copied().unwrap_or(false);
        out.push(InequalityRow {
            indicator: text(&id),
            name: text(&name),
            footprint_kind: text(&fk),
            footprint_code: text(&fc),
            numerator: at(&numerator),
            denominator: at(&denominator),
            value: at(&value),
            populated_quantiles: at(&populated).map_or(0, |p| p.max(0.0).round() as u32),
            sii: at(&sii),
            sii_limits: at(&sii_lower).zip(at(&sii_upper)),
            rii: at(&rii),
            rii_limits: at(&rii_lower).zip(at(&rii_upper)),
            sii_significant: significant.get(i).copied().flatten(),
            q1_value: at(&q1),
            q5_value: at(&q5),
            funnel_significance: funnel.get(i).cloned().flatten(),
            flag_small_numbers: flag(&small),
            flag_few_quantiles: flag(&few),
            flag_non_linear: flag(&non_linear),
            suppressed: flag(&suppressed),
        });
    }
    Ok(out)
}

pub(super) fn weights_from(table: &str, df: &DataFrame) -> Result<Vec<LsoaWeight>, ReportError> {
    let lsoa = strings(table, df, schema::LSOA_CODE)?;
    let fk = strings(table, df, schema::FOOTPRINT_KIND)?;
    let fc = strings(table, df, schema::FOOTPRINT_CODE)?;
    let method = strings(table, df, schema::METHOD)?;
    Ok((0..df.height())
        .map(|i| {
            let text = |v: &Vec<Option<String>>| v.get(i).cloned().flatten().unwrap_or_default();
            LsoaWeight {
                lsoa: text(&lsoa),
                footprint_kind: text(&fk),
                footprint_code: text(&fc),
                method: text(&method),
            }
        })
        .collect())
}

fn column<'a>(table: &str, df: &'a DataFrame, name: &str) -> Result<&'a Column, ReportError> {
    df.column(name).map_err(|_| ReportError::Column {
        table: table.to_string(),
        column: name.to_string(),
        expected: "present",
    })
}

/// A text column as owned strings (`None` for nulls).
pub(super) fn strings(
    table: &str,
    df: &DataFrame,
    name: &str,
) -> Result<Vec<Option<String>>, ReportError> {
    let values = column(table, df, name)?
        .str()
        .map_err(|_| ReportError::Column {
            table: table.to_string(),
            column: name.to_string(),
            expected: "text",
        })?;
    Ok(values.iter().map(|v| v.map(str::to_string)).collect())
}

/// A numeric column as `f64`s (`None` for nulls).
pub(super) fn numbers(
    table: &str,
    df: &DataFrame,
    name: &str,
) -> Result<Vec<Option<f64>>, ReportError> {
    let invalid = || ReportError::Column {
        table: table.to_string(),
        column: name.to_string(),
        expected: "numeric",
    };
    let cast = column(table, df, name)?
        .cast(&DataType::Float64)
        .map_err(|_| invalid())?;
    let values = cast.f64().map_err(|_| invalid())?;
    Ok(values.iter().collect())
}

pub(super) fn optional_flags(
    table: &str,
    df: &DataFrame,
    name: &str,
) -> Result<Vec<Option<bool>>, ReportError> {
    let values = column(table, df, name)?
        .bool()
        .map_err(|_| ReportError::Column {
            table: table.to_string(),
            column: name.to_string(),
            expected: "true/false",
        })?;
    Ok(values.iter().collect())
}

/// A true/false column; null counts as false.
pub(super) fn flags(table: &str, df: &DataFrame, name: &str) -> Result<Vec<bool>, ReportError> {
    Ok(optional_flags(table, df, name)?
        .into_iter()
        .map(|v| v.unwrap_or(false))
        .collect())
}
