//! Reading a run's publishable tables for the evidence pack.
//!
//! Owns which tables the pack may read ([`PUBLISHABLE`]: never `patients_enriched` or
//! `rejects`) and the lazy scans filtered to one ICB and its PCNs; the row structs they fill are
//! `rows.rs`. It does not decide what the pack says: choosing gradients is
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
use super::rows::{
    Area, IndicatorRow, InequalityRow, LsoaWeight, SegmentCell, areas_from, flags, indicators_from,
    inequality_rows, numbers, strings, weights_from,
};
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
