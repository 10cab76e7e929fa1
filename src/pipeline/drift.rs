//! The input drift guard: stop a run whose inputs changed too much since the last good run.
//!
//! A nightly job fed a truncated or half-exported extract would otherwise publish figures for a
//! fraction of the population as if nothing had happened. After ingest, before any table is
//! written, [`check`] compares every input's rows read and reject rate with the same input in
//! the previous run (`ROOT/latest/manifest.json`, `inputs[].rows_read` / `rows_rejected`,
//! summed over the files of one input). A change beyond the `[drift]` bounds stops the run
//! (exit 2, nothing published, `latest` untouched) unless the operator accepts it with
//! `healthgap run --accept-drift`; an accepted change is a warning and is recorded in the
//! manifest.
//!
//! Inputs present in only one of the two runs (a config change) are listed, not compared. The
//! first run on a root has nothing to compare with. Reading the inputs is `crate::ingest`'s job;
//! the manifest is written by [`super::run`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::publish;

/// `[drift]`: how much an input may change between consecutive runs on one output root.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// Check drift at all (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Largest change in an input's rows read, as a share of the previous run's (default 0.10:
    /// ±10%).
    #[serde(default = "default_max_row_change")]
    pub max_row_change: f64,
    /// Largest rise in an input's reject rate (rejected ÷ read), in absolute terms (default
    /// 0.005: half a percentage point).
    #[serde(default = "default_max_reject_rate_increase")]
    pub max_reject_rate_increase: f64,
    /// Bounds for single inputs, by input name (`[drift.inputs.patients]`,
    /// `[drift.inputs."footprints.icb"]`), overriding the two above.
    #[serde(default)]
    pub inputs: BTreeMap<String, DriftBounds>,
}

/// Per-input overrides of the `[drift]` bounds.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DriftBounds {
    /// Overrides `drift.max_row_change` for this input.
    #[serde(default)]
    pub max_row_change: Option<f64>,
    /// Overrides `drift.max_reject_rate_increase` for this input.
    #[serde(default)]
    pub max_reject_rate_increase: Option<f64>,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            enabled: true,
            max_row_change: default_max_row_change(),
            max_reject_rate_increase: default_max_reject_rate_increase(),
            inputs: BTreeMap::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_max_row_change() -> f64 {
    0.10
}

fn default_max_reject_rate_increase() -> f64 {
    0.005
}

impl DriftConfig {
    /// Check the bounds are usable; `inputs` are the names of the run's inputs.
    ///
    /// # Errors
    /// `(key, message)` for the first bad key.
    pub fn check(&self, inputs: &[String]) -> Result<(), (String, String)> {
        let row_ok = |v: f64| v.is_finite() && v >= 0.0;
        let rate_ok = |v: f64| (0.0..=1.0).contains(&v);
        if !row_ok(self.max_row_change) {
            return Err((
                "drift.max_row_change".into(),
                format!(
                    "must be a share of at least 0 (0.10 = ±10%), found {}",
                    self.max_row_change
                ),
            ));
        }
        if !rate_ok(self.max_reject_rate_increase) {
            return Err((
                "drift.max_reject_rate_increase".into(),
                format!(
                    "must be a share between 0 and 1 (0.005 = half a percentage point), found {}",
                    self.max_reject_rate_increase
                ),
            ));
        }
        for (input, bounds) in &self.inputs {
            if !inputs.contains(input) {
                return Err((
                    format!("drift.inputs.{input}"),
                    format!(
                        "names no input of this config (inputs: {})",
                        inputs.join(", ")
                    ),
                ));
            }
            if let Some(v) = bounds.max_row_change.filter(|v| !row_ok(*v)) {
                return Err((
                    format!("drift.inputs.{input}.max_row_change"),
                    format!("must be a share of at least 0, found {v}"),
                ));
            }
            if let Some(v) = bounds.max_reject_rate_increase.filter(|v| !rate_ok(*v)) {
                return Err((
                    format!("drift.inputs.{input}.max_reject_rate_increase"),
                    format!("must be a share between 0 and 1, found {v}"),
                ));
            }
        }
        Ok(())
    }

    fn row_limit(&self, input: &str) -> f64 {
        self.inputs
            .get(input)
            .and_then(|b| b.max_row_change)
            .unwrap_or(self.max_row_change)
    }

    fn reject_limit(&self, input: &str) -> f64 {
        self.inputs
            .get(input)
            .and_then(|b| b.max_reject_rate_increase)
            .unwrap_or(self.max_reject_rate_increase)
    }
}

/// Rows read and refused for one input (summed over its files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct InputCounts {
    /// Data rows read.
    pub rows_read: u64,
    /// Rows refused.
    pub rows_rejected: u64,
}

impl InputCounts {
    /// Rejected ÷ read (0 for an empty input).
    pub fn reject_rate(&self) -> f64 {
        if self.rows_read == 0 {
            0.0
        } else {
            self.rows_rejected as f64 / self.rows_read as f64
        }
    }
}

/// Counts by input name, from `(input, rows_read, rows_rejected)` of each file.
pub fn counts_by_input<'a>(
    files: impl IntoIterator<Item = (&'a str, u64, u64)>,
) -> BTreeMap<String, InputCounts> {
    let mut counts: BTreeMap<String, InputCounts> = BTreeMap::new();
    for (input, read, rejected) in files {
        let entry = counts.entry(input.to_string()).or_default();
        entry.rows_read += read;
        entry.rows_rejected += rejected;
    }
    counts
}

/// Counts by input name from a run's manifest (`inputs[]`). Entries without counts (none are
/// written without them) are skipped.
pub fn counts_from_manifest(manifest: &serde_json::Value) -> BTreeMap<String, InputCounts> {
    let files = manifest["inputs"]
        .as_array()
        .map(|inputs| inputs.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            Some((
                i["input"].as_str()?,
                i["rows_read"].as_u64()?,
                i["rows_rejected"].as_u64()?,
            ))
        });
    counts_by_input(files)
}

/// One input compared with the previous run.
#[derive(Debug, Clone, Serialize)]
pub struct InputDrift {
    /// The input's name.
    pub input: String,
    /// Its counts in the previous run.
    pub previous: InputCounts,
    /// Its counts now.
    pub current: InputCounts,
    /// (now − before) ÷ before; `None` when the previous run read no rows.
    pub row_change: Option<f64>,
    /// The bound on `row_change` (either way).
    pub max_row_change: f64,
    /// Reject rate now minus before.
    pub reject_rate_increase: f64,
    /// The bound on `reject_rate_increase`.
    pub max_reject_rate_increase: f64,
    /// Whether either bound is exceeded.
    pub exceeded: bool,
}

impl InputDrift {
    /// One line for people: what changed and the bound it broke.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let rows = match self.row_change {
            Some(change) => format!(
                "{} rows read, {} in the previous run ({:+.1}%, limit ±{:.1}%)",
                self.current.rows_read,
                self.previous.rows_read,
                change * 100.0,
                self.max_row_change * 100.0
            ),
            None => format!(
                "{} rows read, none in the previous run",
                self.current.rows_read
            ),
        };
        parts.push(rows);
        parts.push(format!(
            "reject rate {:.2}% ({} rows), {:.2}% in the previous run ({} rows; rise limit {:.2} points)",
            self.current.reject_rate() * 100.0,
            self.current.rows_rejected,
            self.previous.reject_rate() * 100.0,
            self.previous.rows_rejected,
            self.max_reject_rate_increase * 100.0
        ));
        format!("{}: {}", self.input, parts.join("; "))
    }
}

/// Compare the inputs present in both runs, in name order.
pub fn compare(
    config: &DriftConfig,
    previous: &BTreeMap<String, InputCounts>,
    current: &BTreeMap<String, InputCounts>,
) -> Vec<InputDrift> {
    current
        .iter()
        .filter_map(|(input, now)| {
            let before = previous.get(input)?;
            let row_change = (before.rows_read > 0).then(|| {
                (now.rows_read as f64 - before.rows_read as f64) / before.rows_read as f64
            });
            let reject_rate_increase = now.reject_rate() - before.reject_rate();
            let max_row_change = config.row_limit(input);
            let max_reject_rate_increase = config.reject_limit(input);
            // A tolerance for the float division, so a change exactly at the bound passes.
            let slack = 1e-12;
            let exceeded = row_change.is_some_and(|c| c.abs() > max_row_change + slack)
                || reject_rate_increase > max_reject_rate_increase + slack;
            Some(InputDrift {
                input: input.clone(),
                previous: *before,
                current: *now,
                row_change,
                max_row_change,
                reject_rate_increase,
                max_reject_rate_increase,
                exceeded,
            })
        })
        .collect()
}

/// What the guard found, for the manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    /// Whether the check ran (off in the config, or no previous run: false).
    pub checked: bool,
    /// The previous run's id (the folder `latest` points at).
    pub previous_run: Option<String>,
    /// Every input present in both runs.
    pub inputs: Vec<InputDrift>,
    /// Inputs of this run that the previous run did not have.
    pub new_inputs: Vec<String>,
    /// Inputs of the previous run that this run does not have.
    pub dropped_inputs: Vec<String>,
    /// Whether a change beyond the bounds was let through with `--accept-drift`.
    pub accepted: bool,
}

impl DriftReport {
    /// The inputs beyond their bounds.
    pub fn exceeded(&self) -> impl Iterator<Item = &InputDrift> {
        self.inputs.iter().filter(|d| d.exceeded)
    }
}

/// Why the guard stopped a run.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// Inputs changed beyond the bounds.
    #[error(
        "input drift against the previous run {run} ({}); nothing was published:\n{}\nif the change is expected (a new extract, a boundary change), rerun with --accept-drift, or widen [drift] in the config",
        dir.display(),
        lines.join("\n")
    )]
    Exceeded {
        /// The previous run's id.
        run: String,
        /// Its folder.
        dir: PathBuf,
        /// One line per input beyond its bounds.
        lines: Vec<String>,
    },
    /// The previous run's manifest cannot be read, so the guard cannot protect this run.
    #[error(
        "cannot check input drift: the previous run's manifest {} cannot be read ({message}); point `latest` at a complete run, or rerun with --accept-drift",
        path.display()
    )]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Check this run's input counts against the run `ROOT/latest` points at.
///
/// With `accept`, changes beyond the bounds are reported (`accepted = true`) instead of
/// refused.
///
/// # Errors
/// [`DriftError::Exceeded`] naming every input beyond its bounds with its previous and new
/// counts; [`DriftError::Manifest`] when the previous run's manifest is unreadable (and
/// `accept` is not given).
pub fn check(
    config: &DriftConfig,
    root: &Path,
    current: &BTreeMap<String, InputCounts>,
    accept: bool,
) -> Result<DriftReport, DriftError> {
    let Some(previous_dir) = config.enabled.then(|| publish::latest_run(root)).flatten() else {
        return Ok(DriftReport::default());
    };
    let run = previous_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = previous_dir.join("manifest.json");
    let manifest = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
        });
    let manifest = match manifest {
        Ok(manifest) => manifest,
        Err(_) if accept => {
            return Ok(DriftReport {
                previous_run: Some(run),
                accepted: true,
                ..Default::default()
            });
        }
        Err(message) => return Err(DriftError::Manifest { path, message }),
    };
    let previous = counts_from_manifest(&manifest);
    let report = DriftReport {
        checked: true,
        previous_run: Some(run.clone()),
        inputs: compare(config, &previous, current),
        new_inputs: current
            .keys()
            .filter(|k| !previous.contains_key(*k))
            .cloned()
            .collect(),
        dropped_inputs: previous
            .keys()
            .filter(|k| !current.contains_key(*k))
            .cloned()
            .collect(),
        accepted: false,
    };
    let lines: Vec<String> = report
        .exceeded()
        .map(|d| format!("  {}", d.describe()))
        .collect();
    if lines.is_empty() {
        Ok(report)
    } else if accept {
        Ok(DriftReport {
            accepted: true,
            ..report
        })
    } else {
        Err(DriftError::Exceeded {
            run,
            dir: previous_dir,
            lines,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(entries: &[(&str, u64, u64)]) -> BTreeMap<String, InputCounts> {
        counts_by_input(entries.iter().copied())
    }

    #[test]
    fn a_truncated_input_exceeds_the_row_bound() {
        let config = DriftConfig::default();
        let drift = compare(
            &config,
            &counts(&[("patients", 1000, 0), ("iod2019", 32_844, 0)]),
            &counts(&[("patients", 850, 0), ("iod2019", 32_844, 0)]),
        );
        let patients = drift.iter().find(|d| d.input == "patients").expect("row");
        assert!(patients.exceeded);
        assert!((patients.row_change.unwrap_or(0.0) + 0.15).abs() < 1e-12);
        assert!(
            patients
                .describe()
                .starts_with("patients: 850 rows read, 1000 in the previous run (-15.0%")
        );
        assert!(!drift.iter().any(|d| d.input == "iod2019" && d.exceeded));
    }

    #[test]
    fn a_change_at_the_bound_passes_and_overrides_apply() {
        let mut config = DriftConfig::default();
        let before = counts(&[("patients", 1000, 0), ("outcomes", 100, 0)]);
        let now = counts(&[("patients", 1100, 0), ("outcomes", 150, 0)]);
        let drift = compare(&config, &before, &now);
        assert!(!drift[1].exceeded, "+10% is within ±10%");
        assert!(drift[0].exceeded, "outcomes +50%");
        config.inputs.insert(
            "outcomes".into(),
            DriftBounds {
                max_row_change: Some(0.5),
                max_reject_rate_increase: None,
            },
        );
        assert!(!compare(&config, &before, &now)[0].exceeded);
    }

    #[test]
    fn a_rise_in_rejects_exceeds_the_reject_bound() {
        let config = DriftConfig::default();
        let drift = compare(
            &config,
            &counts(&[("patients", 1000, 1)]),
            &counts(&[("patients", 1000, 7)]),
        );
        assert!(drift[0].exceeded, "0.1% to 0.7% is a rise of 0.6 points");
        let drift = compare(
            &config,
            &counts(&[("patients", 1000, 1)]),
            &counts(&[("patients", 1000, 5)]),
        );
        assert!(!drift[0].exceeded, "a rise of 0.4 points");
    }

    #[test]
    fn files_of_one_input_are_summed_and_inputs_in_one_run_only_are_not_compared() {
        let manifest = serde_json::json!({"inputs": [
            {"input": "practice_outcomes", "rows_read": 10, "rows_rejected": 1},
            {"input": "practice_outcomes", "rows_read": 20, "rows_rejected": 0},
            {"input": "iod2019", "rows_read": 5, "rows_rejected": 0},
        ]});
        let previous = counts_from_manifest(&manifest);
        assert_eq!(
            previous["practice_outcomes"],
            InputCounts {
                rows_read: 30,
                rows_rejected: 1
            }
        );
        let drift = compare(
            &DriftConfig::default(),
            &previous,
            &counts(&[("practice_outcomes", 30, 1), ("patients", 3, 0)]),
        );
        assert_eq!(drift.len(), 1);
        assert!(!drift[0].exceeded);
    }

    #[test]
    fn bounds_are_checked_and_overrides_must_name_an_input() {
        let inputs = vec!["patients".to_string()];
        let mut config = DriftConfig {
            max_row_change: -0.1,
            ..Default::default()
        };
        assert_eq!(
            config.check(&inputs).expect_err("negative").0,
            "drift.max_row_change"
        );
        config.max_row_change = 0.1;
        config
            .inputs
            .insert("patiens".into(), DriftBounds::default());
        let (key, message) = config.check(&inputs).expect_err("typo");
        assert_eq!(key, "drift.inputs.patiens");
        assert!(message.contains("patients"), "{message}");
    }
}
