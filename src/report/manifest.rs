//! The run's `manifest.json` as the pack uses it: data vintages (inputs with files, SHA-256
//! and row counts), the extract date, deprivation index, seed, tool version, which tables are
//! restricted, and the run's config (parsed with `crate::config::Config` for indicator
//! polarity, units, the SII repetitions and the disclosure rule).
//!
//! The manifest is written by `pipeline::run` (its content is listed in `docs/tables.md`);
//! this file only reads it, tolerating fields a newer or older run may lack.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ReportError;
use crate::charts::style::Unit;
use crate::config::Config;
use crate::pipeline::measure::IndicatorSpec;

/// The parts of `manifest.json` the pack shows or needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The run id.
    #[serde(default)]
    pub run_id: String,
    /// The tool that wrote the run.
    #[serde(default)]
    pub tool: Tool,
    /// When the run started (RFC 3339).
    #[serde(default)]
    pub started_at: Option<String>,
    /// When it finished.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The config file and its text.
    #[serde(default)]
    pub config: ConfigRecord,
    /// The run's seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The extract date (`2023-02-01`).
    #[serde(default)]
    pub extract_date: Option<String>,
    /// `iod2019` or `iod2025`.
    #[serde(default)]
    pub deprivation_index: Option<String>,
    /// Registered people in the run.
    #[serde(default)]
    pub population: Option<f64>,
    /// Every input file.
    #[serde(default)]
    pub inputs: Vec<InputRecord>,
    /// Every table written.
    #[serde(default)]
    pub outputs: Vec<OutputRecord>,
    /// Warnings raised by the run.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The patient outcomes' periods and the one the run measured (runs with patient
    /// outcomes).
    #[serde(default)]
    pub outcome_periods: Option<OutcomePeriodsRecord>,
}

/// The periods of a run's patient outcomes (`pipeline::partition::OutcomePeriods`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutcomePeriodsRecord {
    /// The period measured (`None`: the rows had no period).
    #[serde(default)]
    pub used: Option<String>,
    /// Rows of the other periods, not used.
    #[serde(default)]
    pub rows_not_used: u64,
}

/// The tool's name and version.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tool {
    /// `healthgap`.
    #[serde(default)]
    pub name: String,
    /// The version.
    #[serde(default)]
    pub version: String,
}

/// The run's config file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigRecord {
    /// Where it was.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Its SHA-256.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Its text.
    #[serde(default)]
    pub text: Option<String>,
}

/// One input file of the run.
#[derive(Debug, Clone, Deserialize)]
pub struct InputRecord {
    /// The input kind (`iod2019`, `footprints.icb`, …).
    pub input: String,
    /// The file.
    pub file: PathBuf,
    /// Its SHA-256 at the time of the run.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Rows read.
    #[serde(default)]
    pub rows_read: Option<u64>,
    /// Rows accepted.
    #[serde(default)]
    pub rows_accepted: Option<u64>,
    /// Rows refused.
    #[serde(default)]
    pub rows_rejected: Option<u64>,
}

/// One table of the run.
#[derive(Debug, Clone, Deserialize)]
pub struct OutputRecord {
    /// The table name.
    pub table: String,
    /// Rows written.
    #[serde(default)]
    pub rows: Option<u64>,
    /// Patient-level or input values: never for publication.
    #[serde(default)]
    pub restricted: bool,
}

impl Manifest {
    /// Read `manifest.json`.
    ///
    /// # Errors
    /// [`ReportError::Manifest`] naming the file.
    pub fn read(path: &Path) -> Result<Manifest, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|e| ReportError::Manifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| ReportError::Manifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Whether the manifest marks a table restricted.
    pub fn is_restricted(&self, table: &str) -> bool {
        self.outputs
            .iter()
            .any(|o| o.table == table && o.restricted)
    }

    /// The first input of a kind (`iod2019`, `lsoa_centroids`, `footprints.icb`).
    pub fn input(&self, kind: &str) -> Option<&InputRecord> {
        self.inputs.iter().find(|i| i.input == kind)
    }

    /// The run's config, parsed; `None` (with the reason) when the manifest has no text or it
    /// no longer parses.
    pub fn run_config(&self) -> Result<Config, String> {
        let text = self
            .config
            .text
            .as_deref()
            .ok_or("the manifest records no config text")?;
        let path = self
            .config
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("healthgap.toml"));
        Config::from_toml(text, &path).map_err(|e| e.to_string())
    }

    /// The deprivation index in words: "IMD 2019".
    pub fn index_label(&self) -> String {
        match self.deprivation_index.as_deref() {
            Some("iod2019") => "IMD 2019".into(),
            Some("iod2025") => "IMD 2025".into(),
            Some(other) => other.to_string(),
            None => "IMD".into(),
        }
    }
}

/// What the pack needs to know about an indicator: its spec (polarity, multiplier, unit) and
/// whether it comes from practice-level published figures (its deciles are the practices'
/// deprivation deciles, not the patients').
#[derive(Debug, Clone)]
pub struct Indicator {
    /// The spec.
    pub spec: IndicatorSpec,
    /// From `[[practice_indicators]]`.
    pub practice_level: bool,
}

/// The run's indicators, from its config.
pub fn indicators(config: &Config) -> Vec<Indicator> {
    config
        .indicators
        .iter()
        .map(|spec| Indicator {
            spec: spec.clone(),
            practice_level: false,
        })
        .chain(config.practice_indicators.iter().map(|p| Indicator {
            spec: p.as_indicator(),
            practice_level: true,
        }))
        .collect()
}

/// Longest short name of an indicator on a chart axis, in characters.
const MEASURE_CHARACTERS: usize = 46;

impl Indicator {
    /// The indicator's id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The chart unit of its values.
    pub fn unit(&self) -> Unit {
        use crate::pipeline::measure::IndicatorType;
        let multiplier = self.spec.multiplier();
        match (self.spec.kind, self.spec.unit.as_deref()) {
            (_, Some(label)) if label != "%" => Unit::Other {
                label: label.to_string(),
                decimals: 1,
            },
            (IndicatorType::Proportion, _) if multiplier == 100.0 => Unit::Percent,
            (IndicatorType::Proportion, _) => Unit::Other {
                label: self.spec.unit(),
                decimals: 3,
            },
            (IndicatorType::Rate | IndicatorType::Dsr, _) => Unit::Rate { per: multiplier },
        }
    }

    /// A short name for axis titles and headlines: the name up to its first ", ", " per " or
    /// " (" (the rest is the definition, which subtitles carry), cut at a word if still long.
    ///
    /// # Examples
    /// ```
    /// # use healthgap::report::manifest::Indicator;
    /// # use healthgap::pipeline::measure::{IndicatorSpec, IndicatorType, Polarity};
    /// let spec = IndicatorSpec { id: "ae".into(), name: "A&E attendances per 1,000 registered patients".into(),
    ///     kind: IndicatorType::Rate, numerator: "x".into(), denominator: None, multiplier: Some(1000.0),
    ///     polarity: Polarity::LowIsGood, unit: None };
    /// assert_eq!(Indicator { spec, practice_level: false }.measure(), "A&E attendances");
    /// ```
    pub fn measure(&self) -> String {
        let name = self.spec.name.trim();
        let cut = [", ", " per ", " ("]
            .iter()
            .filter_map(|sep| name.find(sep))
            .min()
            .unwrap_or(name.len());
        let short = name.get(..cut).unwrap_or(name).trim();
        if short.chars().count() <= MEASURE_CHARACTERS {
            return short.to_string();
        }
        let mut out = String::new();
        for word in short.split_whitespace() {
            if out.chars().count() + word.chars().count() + 1 > MEASURE_CHARACTERS - 1 {
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        out.push('\u{2026}');
        out
    }

    /// A value with its unit: "12.3%", "101 per 1,000".
    pub fn format(&self, value: f64) -> String {
        self.unit().format(value)
    }

    /// A value with its 95% limits: "12.3% (11.0 to 13.7)".
    pub fn format_with_limits(&self, value: f64, limits: Option<(f64, f64)>) -> String {
        let unit = self.unit();
        match limits {
            Some((lo, hi)) => format!(
                "{} ({} to {})",
                unit.format(value),
                unit.format_bare(lo),
                unit.format_bare(hi)
            ),
            None => unit.format(value),
        }
    }

    /// A difference in the indicator's unit, signed: "+9.3 percentage points".
    pub fn format_difference(&self, difference: f64) -> String {
        let unit = self.unit();
        format!(
            "{} {}",
            crate::charts::style::format_signed(difference, unit.decimals(difference)),
            unit.difference_suffix()
        )
    }
}
