//! Trends across runs: the earlier runs in the same output root (sibling run folders; names
//! starting with `.` and `latest` are not runs, nor folders without a `manifest.json`), their
//! `inequality` rows for the ICB and its PCNs, and the SII trend section. Runs finished after
//! the one reported on are left out, so a pack rebuilt later says the same thing. One run is
//! drawn as a single point with the chart's note that the trend builds up with later runs.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use super::ReportError;
use super::document::{Block, Section};
use super::gather::RunTables;
use super::pack::{self, IcbContext, Pcn};
use super::rows::InequalityRow;
use crate::charts::ChartText;
use crate::charts::trend::{Trend, TrendPoint};
use crate::pipeline::tables;
use crate::schema;

/// One run's gradients.
#[derive(Debug, Clone)]
pub struct HistoricRun {
    /// The run id.
    pub id: String,
    /// The x label: the extract date (with the run's date when two runs share one).
    pub label: String,
    /// Its inequality rows for the ICB and the PCNs.
    pub rows: Vec<InequalityRow>,
}

/// The runs of the output root up to the one reported on, oldest first.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The runs (the reported run last).
    pub runs: Vec<HistoricRun>,
    /// Sibling runs that could not be read.
    pub skipped: Vec<String>,
}

/// (sort key, id, extract date, run date) of a sibling run.
type Listed = (String, String, String, String);

impl History {
    /// Read the ICB's and the PCNs' inequality rows from every run of the output root up to
    /// `run`.
    ///
    /// # Errors
    /// If the reported run's own table cannot be read (other runs are skipped with a note).
    pub fn load(
        run: &RunTables,
        icb: Option<&str>,
        pcns: &[String],
    ) -> Result<History, ReportError> {
        let current = run.canonical_path()?;
        let root = current.parent().unwrap_or(Path::new("."));
        let key = |m: &super::manifest::Manifest, id: &str| {
            m.started_at.clone().unwrap_or_else(|| id.to_string())
        };
        let this_key = key(&run.manifest, run.id());
        let mut listed: Vec<(Listed, std::path::PathBuf)> = Vec::new();
        let mut history = History::default();
        let entries = std::fs::read_dir(root).map_err(|source| ReportError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.')
                || name == crate::pipeline::publish::LATEST
                || !path.is_dir()
                || !path.join("manifest.json").is_file()
            {
                continue;
            }
            let same = std::fs::canonicalize(&path).is_ok_and(|p| p == current);
            let manifest = if same {
                run.manifest.clone()
            } else {
                match super::manifest::Manifest::read(&path.join("manifest.json")) {
                    Ok(m) => m,
                    Err(_) => {
                        history.skipped.push(name);
                        continue;
                    }
                }
            };
            let k = key(&manifest, &name);
            if k > this_key && !same {
                continue;
            }
            let extract = manifest
                .extract_date
                .clone()
                .unwrap_or_else(|| name.clone());
            let date = manifest
                .started_at
                .as_deref()
                .and_then(|t| t.get(..10))
                .unwrap_or(&name)
                .to_string();
            listed.push(((k, name, extract, date), path));
        }
        listed.sort();
        let mut extracts: BTreeMap<String, usize> = BTreeMap::new();
        for ((_, _, extract, _), _) in &listed {
            *extracts.entry(extract.clone()).or_default() += 1;
        }
        for ((_, id, extract, date), path) in listed {
            let rows = match read_rows(&path, icb, pcns) {
                Ok(rows) => rows,
                Err(e) if path == current => return Err(e),
                Err(_) => {
                    history.skipped.push(id);
                    continue;
                }
            };
            let label = if extracts.get(&extract).copied().unwrap_or(0) > 1 {
                format!("{extract} (run {date})")
            } else {
                extract
            };
            history.runs.push(HistoricRun { id, label, rows });
        }
        Ok(history)
    }
}

/// The inequality rows of the ICB and PCNs in one run folder.
fn read_rows(
    path: &Path,
    icb: Option<&str>,
    pcns: &[String],
) -> Result<Vec<InequalityRow>, ReportError> {
    let run = RunTables::open(path)?;
    if !run.has(tables::INEQUALITY) {
        return Ok(Vec::new());
    }
    let codes = lit(Series::new("codes".into(), pcns)).implode(false);
    let kind = |k: &str| col(schema::FOOTPRINT_KIND).eq(lit(k.to_string()));
    let filter = kind("pcn")
        .and(col(schema::FOOTPRINT_CODE).is_in(codes, false))
        .or(kind("icb").and(col(schema::FOOTPRINT_CODE).eq(lit(icb.unwrap_or("").to_string()))));
    let plan = run.scan(tables::INEQUALITY)?.filter(filter);
    let df = plan.collect().map_err(|source| ReportError::Table {
        table: tables::INEQUALITY.into(),
        path: path.to_path_buf(),
        source,
    })?;
    super::rows::inequality_rows(tables::INEQUALITY, &df)
}

/// The SII trend section.
pub fn section(ctx: &IcbContext, pcn: &Pcn<'_>) -> Section {
    let mut section = Section::new("trend", "Is the gap closing? SII across runs");
    let runs = &ctx.history.runs;
    let name = pcn.name();
    let shown: Vec<_> = if runs.len() > 1 {
        pcn.picks.iter().collect()
    } else {
        pcn.picks.iter().take(1).collect()
    };
    if shown.is_empty() {
        section.paragraph("No gradient to follow across runs.");
        return section;
    }
    section.paragraph(if runs.len() > 1 {
        format!(
            "The slope index of inequality of each gradient above in the {} runs of this output \
             root up to this one. A value moving towards zero means the gap is narrowing.",
            runs.len()
        )
    } else {
        "This output root holds only this run, so each gradient has one point so far: the trend \
         builds up as later runs are added beside it."
            .to_string()
    });
    for pick in shown {
        let (kind, code) = (&pick.row.footprint_kind, &pick.row.footprint_code);
        let points = runs
            .iter()
            .map(|run| {
                let row = run.rows.iter().find(|r| {
                    r.indicator == pick.indicator.id()
                        && &r.footprint_kind == kind
                        && &r.footprint_code == code
                });
                TrendPoint {
                    label: run.label.clone(),
                    sii: row.and_then(|r| r.sii).unwrap_or(f64::NAN),
                    limits: row.and_then(|r| r.sii_limits),
                }
            })
            .collect();
        let trend = Trend {
            measure: pick.indicator.measure(),
            unit: pick.indicator.unit(),
            points,
        };
        let where_ = if pick.at_pcn {
            name.clone()
        } else {
            ctx.icb_name()
        };
        let text = ChartText::new(
            format!(
                "{}: the gap across deprivation over time",
                pick.indicator.measure()
            ),
            ctx.source(),
        )
        .with_subtitle(format!(
            "Slope index of inequality, {}, {where_}, by run (extract date)",
            pick.indicator.spec.name
        ));
        let slug = format!("trend-{}", pack::file_stem(pick.indicator.id()));
        section.push(Block::Figure(pack::figure(&trend, &text, &slug, None)));
    }
    if !ctx.history.skipped.is_empty() {
        section.note(format!(
            "Not read (no readable inequality table): {}.",
            ctx.history.skipped.join(", ")
        ));
    }
    section
}
