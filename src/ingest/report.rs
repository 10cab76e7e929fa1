//! Rejects and the per-input report: what was read, what was refused and why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::schema;

/// One refused value: which file, which line, which column, what it held, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reject {
    /// The file, as named in the config.
    pub file: String,
    /// Line in the file (CSV; the header is line 1) or 1-based row (Parquet, GeoJSON feature).
    pub line: u64,
    /// The column the problem is in (canonical name).
    pub column: String,
    /// The value as written (empty for a missing value), cut to [`SHOWN_VALUE_CHARS`]
    /// characters.
    pub value: String,
    /// What was expected.
    pub reason: String,
}

/// The longest value a reject or message shows: a field can be megabytes long (a line cut
/// short), and a reject only has to let a person find it.
pub const SHOWN_VALUE_CHARS: usize = 200;

/// A value as a reject or a message shows it: whole, or its first [`SHOWN_VALUE_CHARS`]
/// characters and how long it was.
pub fn shown_value(value: &str) -> String {
    match value.char_indices().nth(SHOWN_VALUE_CHARS) {
        None => value.to_string(),
        Some((end, _)) => format!(
            "{}… ({} bytes in all)",
            value.get(..end).unwrap_or_default(),
            value.len()
        ),
    }
}

/// How many rows were refused for one reason in one column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReasonCount {
    /// The column.
    pub column: String,
    /// The reason.
    pub reason: String,
    /// Rows refused for it.
    pub count: u64,
}

/// What reading one input found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IngestReport {
    /// Input kind (`patients`, `iod2019`, …).
    pub input: String,
    /// The file.
    pub file: PathBuf,
    /// Data rows in the file.
    pub rows_read: u64,
    /// Rows refused (a row with several problems counts once).
    pub rows_rejected: u64,
    /// Rows passed on to the pipeline.
    pub rows_accepted: u64,
    /// Refusals by column and reason, most frequent first.
    pub reasons: Vec<ReasonCount>,
    /// Problems that did not refuse rows but need a person's attention.
    pub warnings: Vec<String>,
}

impl IngestReport {
    /// Build a report from the rejects found among `rows_read` rows.
    pub fn from_rejects(
        input: &str,
        file: &Path,
        rows_read: u64,
        rejects: &[Reject],
        warnings: Vec<String>,
    ) -> Self {
        let rejected_lines: BTreeSet<u64> = rejects.iter().map(|r| r.line).collect();
        let rows_rejected = rejected_lines.len() as u64;
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for reject in rejects {
            *counts
                .entry((reject.column.clone(), reject.reason.clone()))
                .or_default() += 1;
        }
        let mut reasons: Vec<ReasonCount> = counts
            .into_iter()
            .map(|((column, reason), count)| ReasonCount {
                column,
                reason,
                count,
            })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.column.cmp(&b.column)));
        IngestReport {
            input: input.to_string(),
            file: file.to_path_buf(),
            rows_read,
            rows_rejected,
            rows_accepted: rows_read.saturating_sub(rows_rejected),
            reasons,
            warnings,
        }
    }

    /// Share of rows refused (0 for an empty file).
    pub fn reject_rate(&self) -> f64 {
        if self.rows_read == 0 {
            0.0
        } else {
            self.rows_rejected as f64 / self.rows_read as f64
        }
    }
}

/// The rejects of one input as a table with the published `rejects` schema
/// (`input, file, line, column, value, reason`).
///
/// # Errors
/// Only if polars cannot build the frame (it always can for these column types).
pub fn rejects_frame(input: &str, rejects: &[Reject]) -> PolarsResult<DataFrame> {
    let n = rejects.len();
    DataFrame::new(
        n,
        vec![
            Column::new(schema::REJECT_INPUT.into(), vec![input; n]),
            Column::new(
                schema::REJECT_FILE.into(),
                rejects.iter().map(|r| r.file.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                schema::REJECT_LINE.into(),
                rejects.iter().map(|r| r.line).collect::<Vec<_>>(),
            ),
            Column::new(
                schema::REJECT_COLUMN.into(),
                rejects
                    .iter()
                    .map(|r| r.column.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                schema::REJECT_VALUE.into(),
                rejects.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                schema::REJECT_REASON.into(),
                rejects
                    .iter()
                    .map(|r| r.reason.as_str())
                    .collect::<Vec<_>>(),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_for_showing() {
        assert_eq!(shown_value("E01012298"), "E01012298");
        let long = "é".repeat(300);
        let shown = shown_value(&long);
        assert!(shown.starts_with(&"é".repeat(200)));
        assert!(shown.ends_with("… (600 bytes in all)"), "{shown}");
    }

    fn reject(line: u64, column: &str, reason: &str) -> Reject {
        Reject {
            file: "f.csv".into(),
            line,
            column: column.into(),
            value: "x".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn report_counts_rows_once_and_reasons_by_frequency() {
        let rejects = vec![
            reject(2, "age", "above the maximum of 120"),
            reject(2, "sex", "unknown sex code"),
            reject(5, "sex", "unknown sex code"),
        ];
        let report =
            IngestReport::from_rejects("patients", Path::new("f.csv"), 10, &rejects, vec![]);
        assert_eq!(report.rows_rejected, 2);
        assert_eq!(report.rows_accepted, 8);
        assert_eq!(report.reasons[0].reason, "unknown sex code");
        assert_eq!(report.reasons[0].count, 2);
        assert!((report.reject_rate() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn rejects_frame_has_the_published_columns() {
        let df = rejects_frame("patients", &[reject(3, "age", "negative count")]).expect("frame");
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            ["input", "file", "line", "column", "value", "reason"]
        );
        assert_eq!(df.height(), 1);
    }
}
