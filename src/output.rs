//! Where messages to people go: results to stdout, progress and logs to stderr.
//!
//! Library code never calls `println!`: it is handed a [`Printer`]. The printer knows whether
//! the user asked for quiet output or JSON log lines (for schedulers), and whether stderr is a
//! terminal (progress bars only then).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

mod pages;

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

    /// The error that ends the command, with the exit code the scheduler will see: `error:
    /// MESSAGE` for people, or in JSON mode `{"level":"error","message":..,"exit_code":..}`
    /// like every other line, so a log shipper parsing the lines does not lose the one that
    /// says why a run failed.
    pub fn error(&self, message: &str, exit_code: u8) {
        match self.log_format {
            LogFormat::Text => self.log("error", message, None),
            LogFormat::Json => self.log(
                "error",
                message,
                Some(serde_json::json!({ "exit_code": exit_code })),
            ),
        }
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
/// `.parquet` (zstd), `.json` (an array of row objects) or `.ndjson`/`.jsonl` (one object a line).
///
/// # Errors
/// If the file cannot be created, the extension is unknown, or the frames do not stack.
pub fn write_table(
    path: &std::path::Path,
    frames: Vec<polars::prelude::DataFrame>,
) -> anyhow::Result<()> {
    use anyhow::Context;

    let mut frames = frames.into_iter();
    let mut df = frames.next().unwrap_or_default();
    for next in frames {
        anyhow::Context::context(df.vstack_mut(&next), "stacking tables")?;
    }
    let format = TableFormat::from_path(path)?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer =
        TableWriter::new(Box::new(std::io::BufWriter::new(file)), format, df.schema())?;
    writer.write_batch(&mut df)?;
    writer.finish()?;
    Ok(())
}

/// A file format for tables written for other programs (the terminal table lives in `query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON array of row objects.
    Json,
    /// Newline-delimited JSON: one row object a line.
    Ndjson,
    /// Parquet (zstd).
    Parquet,
}

impl TableFormat {
    /// The format a file's extension asks for: `.csv`, `.json`, `.ndjson`/`.jsonl`, `.parquet`.
    ///
    /// # Errors
    /// A [`crate::error::UserError`] naming the file when the extension is missing or unknown.
    pub fn from_path(path: &std::path::Path) -> Result<TableFormat, crate::error::UserError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match ext.as_str() {
            "csv" => Ok(TableFormat::Csv),
            "json" => Ok(TableFormat::Json),
            "ndjson" | "jsonl" => Ok(TableFormat::Ndjson),
            "parquet" | "pq" => Ok(TableFormat::Parquet),
            other => Err(crate::error::UserError(format!(
                "{}: unknown output format `.{other}`; use .csv, .parquet, .json or .ndjson",
                path.display()
            ))),
        }
    }
}

/// Rows per Parquet row group: large enough for fast scans, small enough that readers can skip
/// groups by their statistics. Streamed batches are collected up to it: small batches would
/// otherwise each become a tiny row group, which readers handle slowly.
pub const PARQUET_ROW_GROUP_ROWS: usize = 256 * 1024;

/// The compression of every Parquet table a run writes: zstd at level 1. Level 3 (zstd's
/// default) made compression ~14% of writing the patient-level table, for files only a few
/// percent smaller; every reader (DuckDB, R arrow, pandas, Power BI) reads zstd.
pub fn parquet_compression() -> polars::prelude::ParquetCompression {
    polars::prelude::ParquetCompression::Zstd(polars_parquet::write::ZstdLevel::try_new(1).ok())
}

/// Writes a table batch by batch in one [`TableFormat`], so a large result streams to a file
/// or a pipe without being held in memory (Parquet holds up to three row groups: one filling
/// and two being encoded; see `RowGroupEncoder`).
pub struct TableWriter {
    out: SharedOut,
    format: WriterState,
    rows: u64,
    finished: bool,
}

enum WriterState {
    Csv {
        header_written: bool,
        schema: polars::prelude::Schema,
    },
    Json {
        first_row: bool,
    },
    Ndjson,
    Parquet {
        encoder: RowGroupEncoder,
        pending: Vec<polars::prelude::DataFrame>,
        pending_rows: usize,
    },
}

/// Encodes and compresses Parquet row groups on threads of their own ([`PageEncoder`]), and
/// writes them in the order given, so that a streamed plan computes its next batches meanwhile.
/// polars' batched writer compresses a row group's pages one after another while it writes
/// them; in the caller's thread that held up the plan feeding it (the patient parts, the
/// working files).
struct RowGroupEncoder {
    writer: std::sync::Arc<polars::io::parquet::write::BatchedWriter<SharedOut>>,
    pages: std::sync::Arc<PageEncoder>,
    /// Row groups being encoded, oldest first.
    encoding: std::collections::VecDeque<std::thread::JoinHandle<EncodedRowGroup>>,
}

type EncodedRowGroup = polars::prelude::PolarsResult<
    Vec<polars::io::parquet::write::RowGroupIterColumns<'static, polars::prelude::PolarsError>>,
>;

impl RowGroupEncoder {
    /// Row groups encoded at once: two keep both cores busy while the plan waits on neither.
    const AT_ONCE: usize = 2;

    fn new(
        writer: polars::io::parquet::write::BatchedWriter<SharedOut>,
        pages: PageEncoder,
    ) -> Self {
        RowGroupEncoder {
            writer: std::sync::Arc::new(writer),
            pages: std::sync::Arc::new(pages),
            encoding: std::collections::VecDeque::new(),
        }
    }

    /// Start encoding a row group, after writing the oldest ones if enough are under way.
    fn write(&mut self, group: polars::prelude::DataFrame) -> polars::prelude::PolarsResult<()> {
        while self.encoding.len() >= Self::AT_ONCE {
            self.write_oldest()?;
        }
        let pages = std::sync::Arc::clone(&self.pages);
        let thread = std::thread::Builder::new()
            .name("parquet-encoder".into())
            .spawn(move || pages.encode(&group))?;
        self.encoding.push_back(thread);
        Ok(())
    }

    fn write_oldest(&mut self) -> polars::prelude::PolarsResult<()> {
        let Some(thread) = self.encoding.pop_front() else {
            return Ok(());
        };
        let encoded = thread.join().unwrap_or_else(|_| {
            Err(polars::prelude::polars_err!(ComputeError: "encoding a Parquet row group panicked"))
        })?;
        self.writer.write_row_groups(encoded)
    }

    /// Write every row group under way, then the footer.
    fn finish(&mut self) -> polars::prelude::PolarsResult<()> {
        while !self.encoding.is_empty() {
            self.write_oldest()?;
        }
        self.writer.finish().map(|_| ())
    }
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl TableWriter {
    /// A writer of `format` into `out` for tables of `schema` (the header of an empty CSV).
    ///
    /// # Errors
    /// If the Parquet schema cannot be built from `schema`.
    pub fn new(
        out: Box<dyn std::io::Write + Send>,
        format: TableFormat,
        schema: &polars::prelude::Schema,
    ) -> polars::prelude::PolarsResult<TableWriter> {
        use polars::prelude::*;

        let out = SharedOut(std::sync::Arc::new(std::sync::Mutex::new(out)));
        let state = match format {
            TableFormat::Csv => WriterState::Csv {
                header_written: false,
                schema: schema.clone(),
            },
            TableFormat::Json => WriterState::Json { first_row: true },
            TableFormat::Ndjson => WriterState::Ndjson,
            TableFormat::Parquet => {
                let options = ParquetWriteOptions {
                    compression: parquet_compression(),
                    ..Default::default()
                };
                parquet_state(&out, schema, &options)?
            }
        };
        Ok(TableWriter {
            out,
            format: state,
            rows: 0,
            finished: false,
        })
    }

    /// A Parquet writer into `out` with `options` (compression, statistics, key-value
    /// metadata), row groups of [`PARQUET_ROW_GROUP_ROWS`].
    ///
    /// # Errors
    /// If the Parquet schema cannot be built from `schema`.
    pub fn parquet(
        out: Box<dyn std::io::Write + Send>,
        schema: &polars::prelude::Schema,
        options: &polars::prelude::ParquetWriteOptions,
    ) -> polars::prelude::PolarsResult<TableWriter> {
        let out = SharedOut(std::sync::Arc::new(std::sync::Mutex::new(out)));
        let format = parquet_state(&out, schema, options)?;
        Ok(TableWriter {
            out,
            format,
            rows: 0,
            finished: false,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Write one batch (its columns in the writer's schema order).
    ///
    /// # Errors
    /// If writing fails (a broken pipe surfaces as an `std::io::Error` of that kind).
    pub fn write_batch(
        &mut self,
        batch: &mut polars::prelude::DataFrame,
    ) -> polars::prelude::PolarsResult<()> {
        use polars::prelude::*;
        use std::io::Write;

        self.rows += batch.height() as u64;
        // The text writers go row by row over aligned chunks; Parquet takes each column's
        // chunks as they are.
        if !matches!(self.format, WriterState::Parquet { .. }) {
            batch.align_chunks_par();
        }
        match &mut self.format {
            WriterState::Csv {
                header_written,
                schema: _,
            } => {
                CsvWriter::new(&mut self.out)
                    .include_header(!*header_written)
                    .finish(batch)?;
                *header_written = true;
            }
            WriterState::Json { first_row } => {
                let mut lines = Vec::new();
                JsonWriter::new(&mut lines)
                    .with_json_format(JsonFormat::JsonLines)
                    .finish(batch)?;
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let separator: &[u8] = if *first_row { b"[\n" } else { b",\n" };
                    *first_row = false;
                    self.out.write_all(separator)?;
                    self.out.write_all(line)?;
                }
            }
            WriterState::Ndjson => {
                JsonWriter::new(&mut self.out)
                    .with_json_format(JsonFormat::JsonLines)
                    .finish(batch)?;
            }
            WriterState::Parquet {
                encoder,
                pending,
                pending_rows,
            } => {
                *pending_rows += batch.height();
                pending.push(std::mem::take(batch));
                if *pending_rows >= PARQUET_ROW_GROUP_ROWS {
                    write_row_group(encoder, pending)?;
                    *pending_rows = 0;
                }
            }
        }
        Ok(())
    }

    /// Write what is pending (the CSV header of an empty table, the end of a JSON array, the
    /// Parquet footer) and flush. Later calls do nothing.
    ///
    /// # Errors
    /// If writing or flushing fails.
    pub fn finish(&mut self) -> polars::prelude::PolarsResult<u64> {
        use polars::prelude::*;
        use std::io::Write;

        if self.finished {
            return Ok(self.rows);
        }
        self.finished = true;
        match &mut self.format {
            WriterState::Csv {
                header_written: false,
                schema,
            } => {
                let mut empty = DataFrame::empty_with_schema(schema);
                CsvWriter::new(&mut self.out).finish(&mut empty)?;
            }
            WriterState::Csv { .. } | WriterState::Ndjson => {}
            WriterState::Json { first_row } => {
                let end: &[u8] = if *first_row { b"[]\n" } else { b"\n]\n" };
                self.out.write_all(end)?;
            }
            WriterState::Parquet {
                encoder, pending, ..
            } => {
                write_row_group(encoder, pending)?;
                encoder.finish()?;
            }
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

fn parquet_state(
    out: &SharedOut,
    schema: &polars::prelude::Schema,
    options: &polars::prelude::ParquetWriteOptions,
) -> polars::prelude::PolarsResult<WriterState> {
    let (writer, pages) = PageEncoder::writer(out.clone(), schema, options)?;
    Ok(WriterState::Parquet {
        encoder: RowGroupEncoder::new(writer, pages),
        pending: Vec::new(),
        pending_rows: 0,
    })
}

/// How a file's row groups become compressed pages: its Parquet columns as polars lays them
/// out, the encodings polars would choose, and the options' compression, statistics and page
/// size. Text and float columns get their dictionary (or plain pages) from [`pages`].
struct PageEncoder {
    fields: Vec<polars_parquet::write::ParquetType>,
    encodings: Vec<Vec<polars_parquet::write::Encoding>>,
    options: polars_parquet::write::WriteOptions,
}

impl PageEncoder {
    /// polars' batched writer of a file of `schema` into `out`, which writes the row groups
    /// this encodes, then the footer with the options' key-value metadata; and the encoder.
    /// Both from one arrow schema and one set of write options, as `options` says (the one
    /// place a lazy sink's options become an eager writer's).
    fn writer(
        out: SharedOut,
        schema: &polars::prelude::Schema,
        options: &polars::prelude::ParquetWriteOptions,
    ) -> polars::prelude::PolarsResult<(
        polars::io::parquet::write::BatchedWriter<SharedOut>,
        PageEncoder,
    )> {
        use polars::prelude::SchemaExt;
        let arrow_schema = schema.to_arrow(polars::prelude::CompatLevel::newest());
        let encodings: Vec<Vec<polars_parquet::write::Encoding>> =
            polars::io::parquet::write::get_encodings(&arrow_schema)
                .iter()
                .cloned()
                .collect();
        let fields = polars_parquet::write::to_parquet_schema(&arrow_schema)?
            .fields()
            .to_vec();
        let write_options = polars_parquet::write::WriteOptions {
            statistics: options.statistics,
            version: polars_parquet::write::Version::V1,
            compression: options.compression.into(),
            data_page_size: options.data_page_size,
        };
        let file = polars_parquet::write::FileWriter::try_new(out, arrow_schema, write_options)?;
        let writer = polars::io::parquet::write::BatchedWriter::new(
            std::sync::Mutex::new(file),
            encodings.clone().into(),
            write_options,
            false,
            options.key_value_metadata.clone(),
        );
        let pages = PageEncoder {
            fields,
            encodings,
            options: write_options,
        };
        Ok((writer, pages))
    }

    /// Encode and compress `group` as one row group. Its columns may be in chunks (the batches
    /// it was gathered from): they are encoded chunk by chunk rather than copied into one
    /// array first (a quarter of the patient-level table's encoding time at 10M).
    fn encode(&self, group: &polars::prelude::DataFrame) -> EncodedRowGroup {
        use pages::ColumnPages;
        use polars::prelude::{CompatLevel, PolarsResult};
        use polars_parquet::write::{DynIter, DynStreamingIterator, Encoding, Page};
        type Leaves = Vec<DynIter<'static, PolarsResult<Page>>>;
        let to_columns = |array: Box<dyn polars_arrow::array::Array>,
                          field: &polars_parquet::write::ParquetType,
                          encodings: &[Encoding]|
         -> PolarsResult<Leaves> {
            polars_parquet::write::array_to_columns(array, field.clone(), self.options, encodings)
        };
        let mut columns = Vec::new();
        for ((column, field), encodings) in group
            .columns()
            .iter()
            .zip(&self.fields)
            .zip(&self.encodings)
        {
            let series = column.as_materialized_series();
            let chunks: Vec<Box<dyn polars_arrow::array::Array>> = (0..series.n_chunks())
                .map(|chunk| series.to_arrow(chunk, CompatLevel::newest()))
                .collect();
            // polars' own choice, for the column as one array.
            let chosen = |chunks: &[Box<dyn polars_arrow::array::Array>]| -> PolarsResult<Leaves> {
                let array = match chunks {
                    [] => polars_arrow::array::new_empty_array(
                        series.dtype().to_arrow(CompatLevel::newest()),
                    ),
                    [one] => one.clone(),
                    _ => {
                        let arrays: Vec<&dyn polars_arrow::array::Array> =
                            chunks.iter().map(|chunk| chunk.as_ref()).collect();
                        polars_arrow::compute::concatenate::concatenate(&arrays)?
                    }
                };
                to_columns(array, field, encodings)
            };
            // Each chunk's pages, one after another in the column's leaves.
            let mut each_chunk: Vec<Leaves> = Vec::with_capacity(chunks.len());
            match pages::column_pages(&chunks) {
                ColumnPages::Dictionary(dictionary) => {
                    each_chunk.push(
                        match pages::dictionary_pages(&dictionary, field, self.options)? {
                            Some(pages) => vec![DynIter::new(pages.into_iter().map(Ok))],
                            None => {
                                to_columns(dictionary.boxed(), field, &[Encoding::RleDictionary])?
                            }
                        },
                    );
                }
                ColumnPages::Plain => {
                    for chunk in &chunks {
                        each_chunk.push(
                            match pages::plain_text_pages(chunk.as_ref(), field, self.options) {
                                Some(pages) => vec![DynIter::new(pages.into_iter().map(Ok))],
                                None => to_columns(chunk.clone(), field, &[Encoding::Plain])?,
                            },
                        );
                    }
                }
                ColumnPages::Flags => {
                    let flags: Option<Vec<Page>> = chunks
                        .iter()
                        .map(|chunk| pages::flag_page(chunk.as_ref(), field, self.options))
                        .collect();
                    each_chunk.push(match flags {
                        Some(pages) => vec![DynIter::new(pages.into_iter().map(Ok))],
                        None => chosen(&chunks)?,
                    });
                }
                ColumnPages::Chosen => each_chunk.push(chosen(&chunks)?),
            }
            let mut leaves: Vec<Vec<polars_parquet::write::CompressedPage>> = Vec::new();
            for chunk_leaves in each_chunk {
                for (leaf, pages) in chunk_leaves.into_iter().enumerate() {
                    let compressed = pages
                        .map(|page| {
                            pages::compress(page?, self.options.compression)
                                .map_err(polars::prelude::PolarsError::from)
                        })
                        .collect::<PolarsResult<Vec<_>>>()?;
                    match leaves.get_mut(leaf) {
                        Some(pages) => pages.extend(compressed),
                        None => leaves.push(compressed),
                    }
                }
            }
            columns.extend(leaves);
        }
        let columns = DynIter::new(columns.into_iter().map(|pages| {
            Ok(DynStreamingIterator::new(CompressedPages {
                pages: pages.into_iter(),
                current: None,
            }))
        }));
        Ok(vec![columns])
    }
}

/// A column's pages, compressed already, as polars' writer takes them.
struct CompressedPages {
    pages: std::vec::IntoIter<polars_parquet::write::CompressedPage>,
    current: Option<polars_parquet::write::CompressedPage>,
}

impl polars_parquet::write::FallibleStreamingIterator for CompressedPages {
    type Item = polars_parquet::write::CompressedPage;
    type Error = polars::prelude::PolarsError;

    fn advance(&mut self) -> Result<(), Self::Error> {
        self.current = self.pages.next();
        Ok(())
    }

    fn get(&self) -> Option<&Self::Item> {
        self.current.as_ref()
    }
}

fn write_row_group(
    encoder: &mut RowGroupEncoder,
    pending: &mut Vec<polars::prelude::DataFrame>,
) -> polars::prelude::PolarsResult<()> {
    let mut frames = std::mem::take(pending).into_iter();
    let Some(mut group) = frames.next() else {
        return Ok(());
    };
    for frame in frames {
        group.vstack_mut_owned(frame)?;
    }
    encoder.write(group)
}

/// The writer behind a [`TableWriter`], shared so that it can be flushed after polars' Parquet
/// writer (which owns its writer and never gives it back) has written the footer.
#[derive(Clone)]
struct SharedOut(std::sync::Arc<std::sync::Mutex<Box<dyn std::io::Write + Send>>>);

impl std::io::Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .flush()
    }
}

/// A number with thousands separators and no decimals when whole (`100000` → `100,000`).
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let rounded = value.round();
    if (value - rounded).abs() > 1e-9 {
        return value.to_string();
    }
    let digits = format!("{}", rounded.abs() as u64);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if rounded < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn tables_are_written_with_zstd_at_level_1() {
        let level = polars_parquet::write::ZstdLevel::try_new(1).expect("a zstd level");
        assert_eq!(
            parquet_compression(),
            polars::prelude::ParquetCompression::Zstd(Some(level))
        );
    }

    #[test]
    fn parquet_batches_become_row_groups_of_the_set_size_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.parquet");
        let schema = Schema::from_iter([
            Field::new("n".into(), DataType::Int64),
            Field::new("code".into(), DataType::String),
        ]);
        let file = std::fs::File::create(&path).expect("file");
        let mut writer = TableWriter::parquet(
            Box::new(std::io::BufWriter::new(file)),
            &schema,
            &ParquetWriteOptions::default(),
        )
        .expect("writer");
        let batch_rows = 1000i64;
        for b in 0..600 {
            let n: Vec<i64> = (b * batch_rows..(b + 1) * batch_rows).collect();
            let code: Vec<String> = n.iter().map(|i| format!("C{}", i % 37)).collect();
            let mut batch = df!["n" => n, "code" => code].expect("batch");
            writer.write_batch(&mut batch).expect("write");
        }
        assert_eq!(writer.finish().expect("finish"), 600_000);

        let mut reader = ParquetReader::new(std::fs::File::open(&path).expect("open"));
        let groups: Vec<usize> = reader
            .get_metadata()
            .expect("metadata")
            .row_groups
            .iter()
            .map(|g| g.num_rows())
            .collect();
        // Batches are gathered until a group holds at least PARQUET_ROW_GROUP_ROWS.
        assert_eq!(groups, [263_000, 263_000, 74_000]);
        let read = reader.finish().expect("read");
        let n: Vec<i64> = read
            .column("n")
            .expect("n")
            .i64()
            .expect("i64")
            .into_no_null_iter()
            .collect();
        assert_eq!(
            n,
            (0..600_000).collect::<Vec<_>>(),
            "rows in the order given"
        );
    }

    /// Text column `c` of a Parquet file as arrow-rs decodes it.
    fn text_read_by_arrow_rs(path: &std::path::Path, c: usize) -> Vec<Option<String>> {
        read_by_arrow_rs(path)
            .iter()
            .flat_map(|batch| {
                let column =
                    arrow::compute::cast(batch.column(c), &arrow::datatypes::DataType::Utf8)
                        .expect("text");
                column
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .expect("text")
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Text column `name` of a frame, value by value.
    fn text_of(frame: &DataFrame, name: &str) -> Vec<Option<String>> {
        frame
            .column(name)
            .expect("column")
            .str()
            .expect("text")
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    /// `batches` written to `path` with the default options, and read back. Batches smaller
    /// than a row group are written as one (its columns in chunks).
    fn written_and_read(batches: &[DataFrame], path: &std::path::Path) -> DataFrame {
        written_and_read_with(batches, path, &ParquetWriteOptions::default())
    }

    /// [`written_and_read`] with the given options.
    fn written_and_read_with(
        batches: &[DataFrame],
        path: &std::path::Path,
        options: &ParquetWriteOptions,
    ) -> DataFrame {
        let file = std::fs::File::create(path).expect("file");
        let mut writer = TableWriter::parquet(
            Box::new(std::io::BufWriter::new(file)),
            batches[0].schema(),
            options,
        )
        .expect("writer");
        for batch in batches {
            writer.write_batch(&mut batch.clone()).expect("write");
        }
        writer.finish().expect("finish");
        ParquetReader::new(std::fs::File::open(path).expect("open"))
            .finish()
            .expect("read")
    }

    #[test]
    fn text_and_float_columns_read_back_as_written_with_the_pages_they_need() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.parquet");
        let rows = 30_000usize;
        let id: Vec<String> = (0..rows).map(|i| format!("P{i:09}")).collect();
        let practice: Vec<Option<String>> = (0..rows)
            .map(|i| (i % 11 != 0).then(|| format!("A{:05}", (i / 40) % 300)))
            .collect();
        let label: Vec<String> = (0..rows)
            .map(|i| format!("a segment label longer than twelve bytes {}", i % 3))
            .collect();
        let value: Vec<Option<f64>> = (0..rows)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(-0.0),
                _ => Some((i % 50) as f64 / 4.0),
            })
            .collect();
        let frame = df![
            "id" => id, "practice" => practice, "label" => label, "value" => value,
        ]
        .expect("frame");
        // Three batches of one row group.
        let batches = [
            frame.slice(0, 10_000),
            frame.slice(10_000, 7_000),
            frame.slice(17_000, 13_000),
        ];
        let read = written_and_read(&batches, &path);
        // Text stays text (not categorical) for every reader: the file's schema is the table's.
        assert_eq!(read.schema(), frame.schema());
        assert!(read.equals_missing(&frame), "{read}\n{frame}");
        let negative_zero = read
            .column("value")
            .expect("value")
            .f64()
            .expect("f64")
            .get(2);
        assert!(negative_zero.is_some_and(|v| v == 0.0 && v.is_sign_negative()));

        // Ids barely repeat: plain pages. Codes, labels and values repeat: a dictionary.
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let footer =
            SerializedFileReader::new(std::fs::File::open(&path).expect("open")).expect("footer");
        let group = footer.metadata().row_group(0);
        let dictionary: Vec<bool> = (0..4)
            .map(|c| group.column(c).dictionary_page_offset().is_some())
            .collect();
        assert_eq!(dictionary, [false, true, true, true]);
        // Readers skip row groups by their statistics: a dictionary's are its values'.
        use parquet::file::statistics::Statistics;
        let Some(Statistics::ByteArray(practice)) = group.column(1).statistics() else {
            panic!("text statistics");
        };
        let bounds = (practice.min_opt(), practice.max_opt());
        assert_eq!(
            bounds,
            (Some(&"A00000".into()), Some(&"A00299".into())),
            "{practice:?}"
        );
        assert_eq!(practice.null_count_opt(), Some(2728));
    }

    /// The file at `path` as arrow-rs (a second Parquet decoder) reads it.
    fn read_by_arrow_rs(path: &std::path::Path) -> Vec<arrow::array::RecordBatch> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("open"))
            .expect("arrow-rs reader")
            .build()
            .expect("batches")
            .collect::<Result<_, _>>()
            .expect("decoded")
    }

    #[test]
    fn dictionary_keys_read_back_as_written_across_pages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys.parquet");
        // 500,000 rows: two pages of keys in the first row group. Runs of 1 to 20 rows of 300 codes, missing rows
        // inside runs; one value throughout (0 bits a key); 5,000 codes in no order (packed
        // runs longer than one run holds); floats in runs.
        let rows = 500_000usize;
        let run_code = |i: usize| (i / (1 + i % 20)) % 300;
        let runs: Vec<Option<String>> = (0..rows)
            .map(|i| (i % 97 != 0).then(|| format!("E{:08}", run_code(i))))
            .collect();
        let one: Vec<Option<&str>> = (0..rows)
            .map(|i| (i % 1000 != 3).then_some("only"))
            .collect();
        let scattered: Vec<String> = (0..rows as u64)
            .map(|i| {
                format!(
                    "L{:05}",
                    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) % 5000
                )
            })
            .collect();
        let score: Vec<f64> = (0..rows).map(|i| (run_code(i) % 7) as f64 / 2.0).collect();
        // Batches of 100,000 rows, each in buffers of its own: row groups of 300,000 and
        // 200,000 rows.
        let batches: Vec<DataFrame> = (0..rows)
            .step_by(100_000)
            .map(|start| {
                let end = start + 100_000;
                df![
                    "runs" => &runs[start..end],
                    "one" => &one[start..end],
                    "scattered" => &scattered[start..end],
                    "score" => &score[start..end],
                ]
                .expect("batch")
            })
            .collect();
        let frame = df!["runs" => runs, "one" => one, "scattered" => scattered, "score" => score]
            .expect("frame");
        let read = written_and_read(&batches, &path);
        assert!(read.equals_missing(&frame), "{read}\n{frame}");

        for (c, name) in ["runs", "one", "scattered"].iter().enumerate() {
            assert_eq!(
                text_read_by_arrow_rs(&path, c),
                text_of(&frame, name),
                "{name}"
            );
        }

        use parquet::file::reader::{FileReader, SerializedFileReader};
        let footer =
            SerializedFileReader::new(std::fs::File::open(&path).expect("open")).expect("footer");
        let chunk = footer.metadata().row_group(0).column(0);
        assert!(chunk.dictionary_page_offset().is_some(), "a dictionary");
        let pages: Vec<parquet::column::page::Page> = footer
            .get_row_group(0)
            .expect("row group")
            .get_column_page_reader(0)
            .expect("pages")
            .collect::<Result<_, _>>()
            .expect("read");
        let data_pages = pages
            .iter()
            .filter(|page| !matches!(page, parquet::column::page::Page::DictionaryPage { .. }))
            .count();
        assert_eq!(data_pages, 2, "keys split as polars splits them");
    }

    #[test]
    fn ids_written_plain_without_statistics_read_back_as_written() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ids.parquet");
        // Distinct ids (a plain column) of every length from 0 to 30 bytes, so some are inline
        // in their views (up to 12 bytes) and some not, one missing in every 97; and an id
        // column with none missing.
        let rows = 20_000usize;
        let id: Vec<Option<String>> = (0..rows)
            .map(|i| {
                (i % 97 != 5).then(|| {
                    let digits = format!("{i}");
                    let length = i % 31;
                    let mut id = "X".repeat(length.saturating_sub(digits.len()));
                    id.push_str(&digits);
                    id
                })
            })
            .collect();
        let whole: Vec<String> = (0..rows).map(|i| format!("P{:011}", i * 7)).collect();
        let frame = df!["id" => id, "whole" => whole].expect("frame");
        for (page_size, compression) in [
            (None, ParquetCompression::Uncompressed),
            (Some(4096), ParquetCompression::Zstd(None)),
        ] {
            let options = ParquetWriteOptions {
                compression,
                statistics: StatisticsOptions::empty(),
                data_page_size: page_size,
                ..Default::default()
            };
            // Three batches of one row group, the middle one sliced mid-way.
            let batches = [
                frame.slice(0, 7_001),
                frame.slice(7_001, 9_000),
                frame.slice(16_001, rows),
            ];
            let read = written_and_read_with(&batches, &path, &options);
            assert!(read.equals_missing(&frame), "{read}\n{frame}");

            let footer = SerializedFileReader::new(std::fs::File::open(&path).expect("open"))
                .expect("footer");
            let group = footer.metadata().row_group(0);
            for c in 0..2 {
                let chunk = group.column(c);
                assert!(chunk.dictionary_page_offset().is_none(), "plain");
                assert!(chunk.statistics().is_none(), "no statistics");
                let pages = footer
                    .get_row_group(0)
                    .expect("row group")
                    .get_column_page_reader(c)
                    .expect("pages")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("read");
                // At least a page a batch; pages of about 4 KiB when asked.
                let least = if page_size.is_some() { 60 } else { 3 };
                assert!(pages.len() >= least, "{} pages", pages.len());
            }
            // Another reader (arrow-rs) decodes the pages alike.
            assert_eq!(text_read_by_arrow_rs(&path, 0), text_of(&frame, "id"));
        }
    }

    #[test]
    fn lz4_pages_read_back_as_written() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        // The working files' columns: unique ids (plain), ids repeated in runs as a patient's
        // long rows repeat them, small codes, values, and a dictionary column with a missing
        // value; several batches, with pages of about 4 KiB and of the default size.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("lz4.parquet");
        let rows = 25_000usize;
        let frame = df![
            "patient_id" => (0..rows).map(|i| format!("{:016x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect::<Vec<_>>(),
            "long_id" => (0..rows).map(|i| format!("{:016x}", (i / 3) as u64 * 0x2545_f491)).collect::<Vec<_>>(),
            "slot" => (0..rows).map(|i| (i % 12) as u32).collect::<Vec<_>>(),
            "value" => (0..rows).map(|i| (i % 7) as f64 * 0.5).collect::<Vec<_>>(),
            "lsoa_code" => (0..rows).map(|i| (i % 101 != 3).then(|| format!("E0100{:04}", i % 977))).collect::<Vec<_>>(),
        ]
        .expect("frame");
        for page_size in [None, Some(4096)] {
            let options = ParquetWriteOptions {
                compression: ParquetCompression::Lz4Raw,
                statistics: StatisticsOptions::empty(),
                data_page_size: page_size,
                ..Default::default()
            };
            let batches = [frame.slice(0, 9_999), frame.slice(9_999, rows)];
            let read = written_and_read_with(&batches, &path, &options);
            assert!(read.equals_missing(&frame), "{read}\n{frame}");
            let footer = SerializedFileReader::new(std::fs::File::open(&path).expect("open"))
                .expect("footer");
            let group = footer.metadata().row_group(0);
            for c in 0..group.num_columns() {
                assert_eq!(
                    group.column(c).compression(),
                    parquet::basic::Compression::LZ4_RAW
                );
            }
            // The repeated ids compress; the unique ones stay about their size.
            let size = |c: usize| {
                let chunk = group.column(c);
                chunk.compressed_size() as f64 / chunk.uncompressed_size() as f64
            };
            assert!(
                size(1) < 0.8 * size(0),
                "repeated ids {} against unique ids {}",
                size(1),
                size(0)
            );
        }
    }

    #[test]
    fn flag_columns_read_back_as_written_with_their_statistics() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("flags.parquet");
        // 1,003 rows: whole words, then a part word; sliced from row 5, so the bits start
        // mid-byte; and a column with missing values, which polars writes.
        let rows = 1_008usize;
        let mixed: Vec<bool> = (0..rows).map(|i| i % 3 == 0 || i % 7 == 1).collect();
        let yes = vec![true; rows];
        let no = vec![false; rows];
        let missing: Vec<Option<bool>> = (0..rows)
            .map(|i| (i % 5 != 0).then_some(i % 2 == 0))
            .collect();
        let frame = df!["mixed" => mixed, "yes" => yes, "no" => no, "missing" => missing]
            .expect("frame")
            .slice(5, rows - 5);
        // Two batches, one row group: a page of each.
        let read = written_and_read(&[frame.slice(0, 403), frame.slice(403, rows)], &path);
        assert!(read.equals_missing(&frame), "{read}\n{frame}");

        // Another reader (arrow-rs) decodes the pages alike and finds the same statistics.
        let batches = read_by_arrow_rs(&path);
        let decoded: Vec<Vec<Option<bool>>> = (0..4)
            .map(|c| {
                batches
                    .iter()
                    .flat_map(|batch| {
                        let column = batch
                            .column(c)
                            .as_any()
                            .downcast_ref::<arrow::array::BooleanArray>()
                            .expect("yes/no");
                        column.iter().collect::<Vec<_>>()
                    })
                    .collect()
            })
            .collect();
        for (c, name) in ["mixed", "yes", "no", "missing"].iter().enumerate() {
            let expected: Vec<Option<bool>> = frame
                .column(name)
                .expect("column")
                .bool()
                .expect("yes/no")
                .iter()
                .collect();
            assert_eq!(decoded[c], expected, "{name}");
        }
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::file::statistics::Statistics;
        let footer =
            SerializedFileReader::new(std::fs::File::open(&path).expect("open")).expect("footer");
        let group = footer.metadata().row_group(0);
        let bounds: Vec<(Option<bool>, Option<bool>, Option<u64>)> = (0..4)
            .map(|c| match group.column(c).statistics() {
                Some(Statistics::Boolean(stats)) => (
                    stats.min_opt().copied(),
                    stats.max_opt().copied(),
                    stats.null_count_opt(),
                ),
                other => panic!("yes/no statistics, not {other:?}"),
            })
            .collect();
        assert_eq!(
            bounds,
            [
                (Some(false), Some(true), Some(0)),
                (Some(true), Some(true), Some(0)),
                (Some(false), Some(false), Some(0)),
                (Some(false), Some(true), Some(201)),
            ]
        );
    }

    /// A sink that takes a little and then fails, like a full disk.
    struct FailsAfter(usize);

    impl std::io::Write for FailsAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 < buf.len() {
                return Err(std::io::Error::other("no space left"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_parquet_write_is_an_error_not_a_hang() {
        let schema = Schema::from_iter([Field::new("n".into(), DataType::Int64)]);
        let mut writer = TableWriter::parquet(
            Box::new(FailsAfter(4096)),
            &schema,
            &ParquetWriteOptions::default(),
        )
        .expect("writer");
        let mut failed = None;
        for b in 0..50i64 {
            let mut batch =
                df!["n" => (b * 100_000..(b + 1) * 100_000).collect::<Vec<i64>>()].expect("batch");
            if let Err(e) = writer.write_batch(&mut batch) {
                failed = Some(e);
                break;
            }
        }
        let error = failed.or_else(|| writer.finish().err()).expect("an error");
        assert!(error.to_string().contains("no space left"), "{error}");
    }
}
