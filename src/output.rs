//! Where messages to people go: results to stdout, progress and logs to stderr.
//!
//! Library code never calls `println!`: it is handed a [`Printer`]. The printer knows whether
//! the user asked for quiet output or JSON log lines (for schedulers), and whether stderr is a
//! terminal (progress bars only then).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`{"level":..,"message":..,...}`), for schedulers and log shippers.
    Json,
}

/// Passed to every command: prints results, notes, warnings and progress consistently.
#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
    log_format: LogFormat,
    progress: bool,
}

impl Printer {
    /// A printer for the given global flags; progress bars only when stderr is a terminal.
    pub fn new(quiet: bool, log_format: LogFormat) -> Self {
        let progress = !quiet && log_format == LogFormat::Text && std::io::stderr().is_terminal();
        Printer {
            quiet,
            log_format,
            progress,
        }
    }

    /// A printer that prints nothing but results (tests, library callers).
    pub fn silent() -> Self {
        Printer {
            quiet: true,
            log_format: LogFormat::Text,
            progress: false,
        }
    }

    /// Whether notes are suppressed.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// The log format in force.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// A result line on stdout (always printed: it is what the user asked for).
    pub fn result(&self, line: impl AsRef<str>) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", line.as_ref())
    }

    /// An informational note on stderr (suppressed by `--quiet`).
    pub fn note(&self, message: impl AsRef<str>) {
        if !self.quiet {
            self.log("info", message.as_ref(), None);
        }
    }

    /// A warning on stderr: printed even with `--quiet`, because it needs a person's attention.
    pub fn warn(&self, message: impl AsRef<str>) {
        self.log("warn", message.as_ref(), None);
    }

    /// A structured event: a message plus fields (JSON mode prints the fields as keys).
    pub fn event(&self, level: &str, message: &str, fields: serde_json::Value) {
        if self.quiet && level == "info" {
            return;
        }
        self.log(level, message, Some(fields));
    }

    fn log(&self, level: &str, message: &str, fields: Option<serde_json::Value>) {
        let mut err = std::io::stderr().lock();
        // Logging must never fail a run: a closed stderr is ignored.
        let _ = match self.log_format {
            LogFormat::Text => match level {
                "info" => writeln!(err, "{message}"),
                other => writeln!(err, "{other}: {message}"),
            },
            LogFormat::Json => {
                let mut object = serde_json::Map::new();
                object.insert("level".into(), level.into());
                object.insert("message".into(), message.into());
                if let Some(serde_json::Value::Object(extra)) = fields {
                    object.extend(extra);
                }
                writeln!(err, "{}", serde_json::Value::Object(object))
            }
        };
    }

    /// A progress bar over `total` units, or a hidden one when progress is not shown.
    pub fn progress(&self, total: u64, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {human_pos}/{human_len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_string());
        bar
    }

    /// A spinner for work of unknown length (a stage), or a hidden one.
    pub fn spinner(&self, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// Write frames (stacked vertically) to a file whose extension picks the format: `.csv`,
/// `.parquet` (zstd) or `.json` (an array of row objects).
///
/// # Errors
/// If the file cannot be created, the extension is unknown, or the frames do not stack.
pub fn write_table(
    path: &std::path::Path,
    frames: Vec<polars::prelude::DataFrame>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use polars::prelude::*;

    let mut frames = frames.into_iter();
    let mut df = frames.next().unwrap_or_default();
    for next in frames {
        anyhow::Context::context(df.vstack_mut(&next), "stacking tables")?;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    match ext.as_str() {
        "csv" => CsvWriter::new(file).finish(&mut df)?,
        "parquet" => {
            ParquetWriter::new(file)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(&mut df)?;
        }
        "json" => JsonWriter::new(file)
            .with_json_format(JsonFormat::Json)
            .finish(&mut df)?,
        other => anyhow::bail!(crate::error::UserError(format!(
            "{}: unknown output format `.{other}`; use .csv, .parquet or .json",
            path.display()
        ))),
    }
    Ok(())
}
