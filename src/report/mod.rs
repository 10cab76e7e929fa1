//! The annual evidence pack (DESIGN §4, issue 7): per PCN, a self-contained HTML page (inline
//! SVG charts and CSS, nothing fetched) and its Markdown twin (charts as SVG files beside it),
//! from a run's publishable tables and manifest; with `--all`, one pack per PCN of an ICB and an
//! index page.
//!
//! | file | owns |
//! |---|---|
//! | `gather.rs` | reading the publishable tables, filtered to one ICB |
//! | `rows.rs` | the plain row structs, filled from the collected tables |
//! | `manifest.rs` | `manifest.json`, the run's config, indicator units and names |
//! | `geography.rs` | the map's inputs: ICB polygons, LSOA centroids and deciles |
//! | `profile.rs` | population and deprivation against ICB and England |
//! | `quintile_bars.rs` | the profile's chart: people by IMD quintile, one bar per area |
//! | `segments.rs` | the segment chart |
//! | `gradients.rs` | the gradients that matter most: choice, gradient charts, decile tables |
//! | `funnel.rs` | their funnel plots and the published funnel significance in words |
//! | `cohorts.rs` | candidate underserved cohorts, ranked by size × gap |
//! | `trend.rs` | earlier runs in the same output root and the SII trend |
//! | `appendix.rs` | methods, data vintages and definitions |
//! | `pack.rs` | one PCN's document: title, key findings, the sections in order |
//! | `document.rs` | the format-neutral document both renderers share |
//! | `html.rs`, `markdown.rs` | the two renderings |
//! | `index.rs` | the `--all` index page |
//!
//! The charts themselves are `crate::charts` (plain data in, SVG out); the statistics are
//! `crate::stats`. The pack never reads restricted tables and never recomputes a suppressed
//! value: it prints "suppressed".
//!
//! Output layout (under `--out`, default `reports/<run_id>/` in the current folder; never the
//! run folder, which is immutable once published):
//!
//! ```text
//! OUT/index.html, OUT/index.md                    with --all
//! OUT/<PCN>/<PCN>-evidence-pack.html              self-contained
//! OUT/<PCN>/<PCN>-evidence-pack.md                links charts/…
//! OUT/<PCN>/charts/NN-name.svg                    the Markdown's charts
//! ```

pub mod appendix;
pub mod cohorts;
pub mod document;
pub mod funnel;
pub mod gather;
pub mod geography;
pub mod gradients;
pub mod html;
pub mod index;
pub mod manifest;
pub mod markdown;
pub mod pack;
pub mod profile;
pub mod quintile_bars;
pub mod rows;
pub mod segments;
pub mod trend;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::charts::ChartError;
use crate::output::Printer;
use crate::query::QueryError;

/// Why a pack could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run folder is missing, incomplete or unreadable.
    #[error(transparent)]
    Run(#[from] QueryError),
    /// The user asked for something the run does not have (a PCN, an ICB) or an impossible
    /// option.
    #[error("{0}")]
    User(String),
    /// A table the pack needs is not in the run (or is restricted).
    #[error(
        "run {}: no publishable table `{table}` (the pack reads area_deprivation, \
         footprint_weights, segments, indicators and inequality)",
        run.display()
    )]
    MissingTable {
        /// The run folder.
        run: PathBuf,
        /// The table.
        table: String,
    },
    /// A table could not be read.
    #[error("reading table `{table}` of run {}", path.display())]
    Table {
        /// The table.
        table: String,
        /// The run folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: polars::error::PolarsError,
    },
    /// A table lacks a column or it has the wrong type.
    #[error("table `{table}`: column `{column}` is missing or not {expected}")]
    Column {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// What was expected.
        expected: &'static str,
    },
    /// `manifest.json` is missing or unreadable.
    #[error("reading the run manifest {}: {message}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A file or folder could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A chart failed in a way a placeholder cannot stand in for.
    #[error("drawing {what}")]
    Chart {
        /// Which chart.
        what: String,
        /// Why.
        #[source]
        source: ChartError,
    },
}

impl ReportError {
    /// Whether a person must fix the command or the run (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            ReportError::Run(e) => e.is_user_error(),
            ReportError::User(_) | ReportError::MissingTable { .. } => true,
            ReportError::Manifest { .. } => true,
            _ => false,
        }
    }
}

/// Which packs to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One PCN, by ODS code.
    Pcn(String),
    /// Every PCN of an ICB (ODS code, or ONS `E54…` code), with an index page.
    AllOfIcb(String),
}

/// A reporting year, `2023-24`: April to March.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Year {
    /// The calendar year it starts in.
    pub start: i32,
}

impl Year {
    /// Parse `YYYY-YY` (the second year must follow the first).
    ///
    /// # Errors
    /// A message saying what was expected.
    ///
    /// # Examples
    /// ```
    /// use healthgap::report::Year;
    /// assert_eq!(Year::parse("2023-24")?.start, 2023);
    /// assert!(Year::parse("2023-25").is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(text: &str) -> Result<Year, String> {
        let bad = || format!("--year {text:?}: expected a financial year as YYYY-YY, e.g. 2023-24");
        let (first, second) = text.trim().split_once('-').ok_or_else(bad)?;
        if first.len() != 4 || second.len() != 2 {
            return Err(bad());
        }
        let start: i32 = first.parse().map_err(|_| bad())?;
        let end: i32 = second.parse().map_err(|_| bad())?;
        if (start + 1).rem_euclid(100) != end {
            return Err(format!(
                "--year {text:?}: {second} does not follow {first} (e.g. {first}-{:02})",
                (start + 1).rem_euclid(100)
            ));
        }
        Ok(Year { start })
    }

    /// The financial year (April–March) holding a date.
    pub fn containing(date: chrono::NaiveDate) -> Year {
        use chrono::Datelike;
        let start = if date.month() >= 4 {
            date.year()
        } else {
            date.year() - 1
        };
        Year { start }
    }
}

impl std::fmt::Display for Year {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{:02}", self.start, (self.start + 1).rem_euclid(100))
    }
}

/// What to write and where.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A run folder, or an output root holding `latest`.
    pub run: PathBuf,
    /// Which packs.
    pub target: Target,
    /// The reporting year (default: the financial year of the run's extract date).
    pub year: Option<Year>,
    /// The output folder (default `reports/<run_id>`).
    pub out: Option<PathBuf>,
}

/// The files of one pack.
#[derive(Debug, Clone)]
pub struct PackFiles {
    /// The PCN's code.
    pub pcn: String,
    /// Its name.
    pub name: String,
    /// The HTML page.
    pub html: PathBuf,
    /// The Markdown twin.
    pub markdown: PathBuf,
    /// The SVG charts beside the Markdown.
    pub charts: Vec<PathBuf>,
    /// Headline figures for the index page.
    pub headline: index::Headline,
}

/// What a report run wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The run reported on.
    pub run_id: String,
    /// The output folder.
    pub out: PathBuf,
    /// One pack per PCN.
    pub packs: Vec<PackFiles>,
    /// The index page (HTML, Markdown) with `--all`.
    pub index: Option<(PathBuf, PathBuf)>,
    /// Time spent reading the run and ICB-wide inputs.
    pub gather_time: Duration,
    /// Time spent building and writing the packs.
    pub render_time: Duration,
}

/// Write the evidence pack(s).
///
/// # Errors
/// [`ReportError`]: user errors (unknown PCN or ICB, no run, an output folder inside the run)
/// say what to do; others name the table or file at fault.
pub fn write(settings: &Settings, printer: &Printer) -> Result<Written, ReportError> {
    let started = Instant::now();
    let run = gather::RunTables::open(&settings.run)?;
    let out = settings
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(run.id()));
    check_out(&out, &run)?;
    let footprints = gather::footprints(&run)?;
    let (icb, pcns) = match &settings.target {
        Target::Pcn(code) => {
            let pcn = pack::find_pcn(&footprints, code)?;
            (pcn.parent.clone(), vec![pcn.code.clone()])
        }
        Target::AllOfIcb(code) => {
            let icb = pack::find_icb(&footprints, &run, code)?;
            let mut pcns: Vec<String> = footprints
                .iter()
                .filter(|a| a.level == "pcn" && a.parent.as_deref() == Some(icb.as_str()))
                .map(|a| a.code.clone())
                .collect();
            pcns.sort();
            if pcns.is_empty() {
                return Err(ReportError::User(format!(
                    "ICB {icb} has no PCNs in run {}",
                    run.id()
                )));
            }
            (Some(icb), pcns)
        }
    };
    let context = pack::IcbContext::load(&run, &footprints, icb.as_deref(), &pcns, settings.year)?;
    for warning in &context.warnings {
        printer.warn(warning);
    }
    let gather_time = started.elapsed();

    let started = Instant::now();
    std::fs::create_dir_all(&out).map_err(|source| ReportError::Io {
        path: out.clone(),
        source,
    })?;
    let packs = pcns
        .par_iter()
        .map(|code| pack::write_pack(&context, code, &out))
        .collect::<Result<Vec<_>, _>>()?;
    let index = match settings.target {
        Target::AllOfIcb(_) => Some(index::write(&context, &packs, &out)?),
        Target::Pcn(_) => None,
    };
    Ok(Written {
        run_id: run.id().to_string(),
        out,
        packs,
        index,
        gather_time,
        render_time: started.elapsed(),
    })
}

/// Refuse an output folder inside the run folder (a published run is immutable).
fn check_out(out: &Path, run: &gather::RunTables) -> Result<(), ReportError> {
    let run_dir = run.canonical_path()?;
    // The output folder may not exist yet: resolve its nearest existing ancestor.
    let absolute = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| ReportError::Io {
                path: PathBuf::from("."),
                source,
            })?
            .join(out)
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = std::fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.iter().rev() {
        resolved.push(name);
    }
    if resolved.starts_with(&run_dir) {
        return Err(ReportError::User(format!(
            "--out {}: inside the run folder {}, which is never changed once published; \
             write the pack elsewhere (default reports/<run_id>)",
            out.display(),
            run_dir.display()
        )));
    }
    Ok(())
}

/// Write a file, creating its folder, naming it in errors.
pub(crate) fn write_file(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, contents).map_err(io)
}
