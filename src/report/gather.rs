//! Reading a run's publishable tables into plain structs for the evidence pack.
//!
//! Owns which tables the pack may read ([`PUBLISHABLE`]: never `patients_enriched` or
//! `rejects`), the lazy scans filtered to one ICB and its PCNs, and the row structs the other
//! report files work on. It does not decide what the pack says: choosing gradients is
//! `gradients.rs`, cohorts `cohorts.rs`, and so on. Finding the run folder is
//! `crate::query::run::RunFolder`; the manifest is `manifest.rs`.
//!
//! Suppressed values stay `None` here and everywhere after: the pack prints them as
//! "suppressed" and never recomputes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::ReportError;
use super::manifest::Manifest;
use crate::pipeline::tables;
use crate::query::run::{RunFolder, TableSource};
use crate::schema;

/// The tables the pack reads. Restricted tables (`patients_enriched`, `rejects`) are not here,
/// and [`RunTables::scan`] refuses any name that is not.
pub const PUBLISHABLE: [&str; 5] = [
    tables::AREA_DEPRIVATION,
    tables::FOOTPRINT_WEIGHTS,
    tables::SEGMENTS,
    tables::INDICATORS,
    tables::INEQUALITY,
];

/// A complete run: its folder, publishable tables and manifest.
#[derive(Debug, Clone)]
pub struct RunTables {
    /// The run folder.
    pub folder: RunFolder,
    /// The run's manifest.
    pub manifest: Manifest,
    sources: BTreeMap<String, TableSource>,
}

impl RunTables {
    /// Open a run folder (or an output root's `latest`) and read its manifest.
    ///
    /// # Errors
    /// [`ReportError::Run`] when there is no complete run there; [`ReportError::Manifest`] when
    /// `manifest.json` is missing or unreadable.
    pub fn open(path: &Path) -> Result<RunTables, ReportError> {
        let folder = RunFolder::open(path)?;
        let manifest = Manifest::read(&folder.path().join("manifest.json"))?;
        let sources = folder
            .tables()?
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        Ok(RunTables {
            folder,
            manifest,
            sources,
        })
    }

    /// The run id.
    pub fn id(&self) -> &str {
        self.folder.id()
    }

    /// The run folder's path, through `latest` resolved.
    ///
    /// # Errors
    /// [`ReportError::Io`] if the path cannot be resolved.
    pub fn canonical_path(&self) -> Result<PathBuf, ReportError> {
        std::fs::canonicalize(self.folder.path()).map_err(|source| ReportError::Io {
            path: self.folder.path().to_path_buf(),
            source,
        })
    }

    /// Whether the run has a table.
    pub fn has(&self, table: &str) -> bool {
        self.sources.contains_key(table)
    }

    /// A lazy scan of a publishable table.
    ///
    /// # Errors
    /// [`ReportError::MissingTable`] when the run lacks it or it is not publishable (restricted
    /// tables are never read).
    pub fn scan(&self, table: &str) -> Result<LazyFrame, ReportError> {
        let restricted = !PUBLISHABLE.contains(&table) || self.manifest.is_restricted(table);
        let source = self
            .sources
            .get(table)
            .filter(|_| !restricted)
            .ok_or_else(|| ReportError::MissingTable {
                run: self.folder.path().to_path_buf(),
                table: table.to_string(),
            })?;
        Ok(source.scan()?)
    }

    /// Collect a plan over `table`, naming the table in errors.
    fn collect(&self, table: &str, plan: LazyFrame) -> Result<DataFrame, ReportError> {
        plan.collect().map_err(|source| ReportError::Table {
            table: table.to_string(),
            path: self.folder.path().to_path_buf(),
            source,
        })
    }
}

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
    /// Registered residents of the LSOA in the footprint (residence methods).
    pub registered: Option<f64>,
}

/// Everything the packs of one ICB's PCNs read from the run.
#[derive(Debug, Clone)]
pub struct IcbData {
    /// England, the ICB, its PCNs and their practices.
    pub areas: Vec<Area>,
    /// Indicator rows of England, the ICB and its PCNs.
    pub indicators: Vec<IndicatorRow>,
    /// Inequality rows of England, the ICB and every PCN of the run (a funnel needs the PCNs
    /// of the ICB, or of England when the ICB has too few in the run).
    pub inequality: Vec<InequalityRow>,
    /// Segment cells of the ICB's PCNs, summed over age band and sex.
    pub segments: Vec<SegmentCell>,
    /// LSOAs of the ICB's PCNs (residence) and of the ICB's polygon.
    pub weights: Vec<LsoaWeight>,
}

/// Every area of the run above practice level (England, ICBs, PCNs): the lookup for `--pcn`
/// and `--icb`.
///
/// # Errors
/// If `area_deprivation` is missing or unreadable.
pub fn footprints(run: &RunTables) -> Result<Vec<Area>, ReportError> {
    let table = tables::AREA_DEPRIVATION;
    let plan = run
        .scan(table)?
        .filter(col(schema::AREA_LEVEL).neq(lit("practice")));
    areas_from(table, &run.collect(table, plan)?)
}

impl IcbData {
    /// Read the rows of one ICB (`icb`, an ODS code) and its PCNs (`pcns`); `polygon` is the
    /// ICB's code in the footprint polygons (ONS `E54…`), when known.
    ///
    /// # Errors
    /// If a table is missing, unreadable or lacks a column.
    pub fn load(
        run: &RunTables,
        icb: Option<&str>,
        pcns: &[String],
        polygon: Option<&str>,
    ) -> Result<IcbData, ReportError> {
        let codes = || lit(Series::new("codes".into(), pcns)).implode(false);
        let kind = |k: &str| col(schema::FOOTPRINT_KIND).eq(lit(k.to_string()));
        let code = |c: &str| col(schema::FOOTPRINT_CODE).eq(lit(c.to_string()));
        let in_pcns = || kind("pcn").and(col(schema::FOOTPRINT_CODE).is_in(codes(), false));
        let england = || kind("england").and(code(schema::ENGLAND_CODE));
        let the_icb = || match icb {
            Some(icb) => kind("icb").and(code(icb)),
            None => lit(false),
        };

        let table = tables::AREA_DEPRIVATION;
        let plan = run.scan(table)?.filter(
            col(schema::AREA_LEVEL)
                .eq(lit("england"))
                .or(col(schema::AREA_LEVEL)
                    .eq(lit("icb"))
                    .and(col(schema::AREA_CODE).eq(lit(icb.unwrap_or("").to_string()))))
                .or(col(schema::AREA_LEVEL)
                    .eq(lit("pcn"))
                    .and(col(schema::AREA_CODE).is_in(codes(), false)))
                .or(col(schema::AREA_LEVEL)
                    .eq(lit("practice"))
                    .and(col(schema::PARENT_AREA_CODE).is_in(codes(), false))),
        );
        let areas = areas_from(table, &run.collect(table, plan)?)?;

        let table = tables::INDICATORS;
        let indicators = if run.has(table) {
            let plan = run
                .scan(table)?
                .filter(england().or(the_icb()).or(in_pcns()));
            indicators_from(table, &run.collect(table, plan)?)?
        } else {
            Vec::new()
        };

        let table = tables::INEQUALITY;
        let inequality = if run.has(table) {
            let plan = run
                .scan(table)?
                .filter(england().or(the_icb()).or(kind("pcn")));
            inequality_rows(table, &run.collect(table, plan)?)?
        } else {
            Vec::new()
        };

        let table = tables::SEGMENTS;
        let segments = if run.has(table) {
            segments_from(run, table, in_pcns())?
        } else {
            Vec::new()
        };

        let table = tables::FOOTPRINT_WEIGHTS;
        let in_polygon = match polygon {
            Some(p) => col(schema::FOOTPRINT_KIND).neq(lit("pcn")).and(code(p)),
            None => lit(false),
        };
        let weights = if run.has(table) {
            let plan = run.scan(table)?.filter(in_pcns().or(in_polygon));
            weights_from(table, &run.collect(table, plan)?)?
        } else {
            Vec::new()
        };
        Ok(IcbData {
            areas,
            indicators,
            inequality,
            segments,
            weights,
        })
    }

    /// The area row of a level and code.
    pub fn area(&self, level: &str, code: &str) -> Option<&Area> {
        self.areas
            .iter()
            .find(|a| a.level == level && a.code == code)
    }
}

/// Segment cells of the PCNs matched by `filter`, summed over age band and sex. A sum with a
/// suppressed cell in it counts only the published cells and is marked suppressed.
fn segments_from(
    run: &RunTables,
    table: &str,
    filter: Expr,
) -> Result<Vec<SegmentCell>, ReportError> {
    const SEGMENTATION: &str = "segmentation";
    const SEGMENT: &str = "segment";
    const RISK_TIER: &str = "risk_tier";
    const SUPPRESSED: &str = "suppressed";
    let plan = run
        .scan(table)?
        .filter(filter)
        .group_by([
            col(schema::FOOTPRINT_CODE),
            col(SEGMENTATION),
            col(SEGMENT),
            col(RISK_TIER),
            col(schema::IMD_QUINTILE),
        ])
        .agg([
            col(schema::POPULATION).sum(),
            col(SUPPRESSED).any(true),
            col(schema::POPULATION).count().alias("published"),
        ])
        .sort(
            [
                schema::FOOTPRINT_CODE,
                SEGMENTATION,
                SEGMENT,
                RISK_TIER,
                schema::IMD_QUINTILE,
            ],
            SortMultipleOptions::default().with_nulls_last(true),
        );
    let df = run.collect(table, plan)?;
    let pcn = strings(table, &df, schema::FOOTPRINT_CODE)?;
    let segmentation = strings(table, &df, SEGMENTATION)?;
    let segment = strings(table, &df, SEGMENT)?;
    let tier = strings(table, &df, RISK_TIER)?;
    let quintile = numbers(table, &df, schema::IMD_QUINTILE)?;
    let population = numbers(table, &df, schema::POPULATION)?;
    let published = numbers(table, &df, "published")?;
    let suppressed = flags(table, &df, SUPPRESSED)?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let at = |v: &Vec<Option<String>>| v.get(i).cloned().flatten().unwrap_or_default();
        let people = population.get(i).copied().flatten();
        let any_published = published.get(i).copied().flatten().unwrap_or(0.0) > 0.0;
        out.push(SegmentCell {
            pcn: at(&pcn),
            segmentation: at(&segmentation),
            segment: at(&segment),
            risk_tier: at(&tier),
            imd_quintile: quintile
                .get(i)
                .copied()
                .flatten()
                .filter(|q| (1.0..=5.0).contains(q))
                .map(|q| q as u8),
            population: people.filter(|_| any_published),
            suppressed: suppressed.get(i).copied().unwrap_or(false),
        });
    }
    Ok(out)
}

fn areas_from(table: &str, df: &DataFrame) -> Result<Vec<Area>, ReportError> {
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

fn indicators_from(table: &str, df: &DataFrame) -> Result<Vec<IndicatorRow>, ReportError> {
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

fn weights_from(table: &str, df: &DataFrame) -> Result<Vec<LsoaWeight>, ReportError> {
    let lsoa = strings(table, df, schema::LSOA_CODE)?;
    let fk = strings(table, df, schema::FOOTPRINT_KIND)?;
    let fc = strings(table, df, schema::FOOTPRINT_CODE)?;
    let registered = numbers(table, df, schema::REGISTERED)?;
    Ok((0..df.height())
        .map(|i| {
            let text = |v: &Vec<Option<String>>| v.get(i).cloned().flatten().unwrap_or_default();
            LsoaWeight {
                lsoa: text(&lsoa),
                footprint_kind: text(&fk),
                footprint_code: text(&fc),
                registered: registered.get(i).copied().flatten(),
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

fn optional_flags(
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
fn flags(table: &str, df: &DataFrame, name: &str) -> Result<Vec<bool>, ReportError> {
    Ok(optional_flags(table, df, name)?
        .into_iter()
        .map(|v| v.unwrap_or(false))
        .collect())
}
