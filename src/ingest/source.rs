//! Opening an input file: format detection, the CSV structure pass, header matching.
//!
//! CSV files are read by polars' lazy CSV scanner with every column as text, so that
//! [`super::validate`] can parse each value itself and reject rows with a reason instead of
//! failing the whole file. Before that, one fast pass with the `csv` crate checks the file's
//! structure: records with the wrong number of fields become rejects (polars would otherwise
//! pad or fail), invalid UTF-8 is counted, and the physical line of every record is known even
//! when quoted fields hold newlines.
//!
//! Parquet files are scanned lazily as they are; their typed columns are checked the same way.

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::InputError;
use super::contract::{ExtraColumns, HeaderMode, InputContract, normalise_header};

/// The name of the row-index column added to every scan (0-based record number).
pub const ROW_INDEX: &str = "__row";

/// A file format healthgap reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated text (UTF-8, with or without BOM, CRLF or LF).
    Csv,
    /// Tab-separated text.
    Tsv,
    /// Apache Parquet.
    Parquet,
    /// GeoJSON feature collection.
    Geojson,
}

impl Format {
    /// The format implied by a file's extension, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "tsv" | "tab" => Some(Format::Tsv),
            "parquet" | "pq" => Some(Format::Parquet),
            "geojson" | "json" => Some(Format::Geojson),
            _ => None,
        }
    }
}

/// A record whose shape is wrong before any value is looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct StructuralReject {
    /// 0-based data record number (the same numbering as [`ROW_INDEX`]).
    pub record: u64,
    /// Physical line where the record starts (the header is line 1).
    pub line: u64,
    /// What was wrong.
    pub reason: String,
}

/// Maps 0-based data record numbers to the physical line where each starts.
///
/// Most files have one record per line, so only the records where the offset changes (after a
/// quoted field with a newline) are stored.
#[derive(Debug, Clone, Default)]
pub struct LineMap {
    /// Line of record 0.
    first_line: u64,
    /// `(record, extra lines before it)`, ascending, for records after a multi-line record.
    shifts: Vec<(u64, u64)>,
}

impl LineMap {
    /// One record per line from `first_line` (Parquet: row numbers start at 1).
    pub fn simple(first_line: u64) -> Self {
        LineMap {
            first_line,
            shifts: Vec::new(),
        }
    }

    /// The physical line of a 0-based record.
    pub fn line_of(&self, record: u64) -> u64 {
        let extra = match self.shifts.partition_point(|&(r, _)| r <= record) {
            0 => 0,
            i => self.shifts.get(i - 1).map_or(0, |&(_, extra)| extra),
        };
        self.first_line + record + extra
    }
}

/// An opened input: a lazy scan with canonical column names plus what the structure pass saw.
pub struct RawSource {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// The scan, projected to the contract's columns (renamed to canonical names) plus kept
    /// extra columns and [`ROW_INDEX`]. CSV columns are all text.
    pub frame: LazyFrame,
    /// Canonical names of the contract columns present in the file.
    pub present: Vec<&'static str>,
    /// Extra columns kept as text (normalised header names).
    pub extras: Vec<String>,
    /// The headers found in the file, as written.
    pub headers_found: Vec<String>,
    /// Data records in the file (CSV: counted by the structure pass; Parquet: metadata).
    pub rows: u64,
    /// Record → physical line.
    pub lines: LineMap,
    /// Records with the wrong number of fields.
    pub structural_rejects: Vec<StructuralReject>,
    /// Records containing bytes that are not UTF-8 (read with replacement characters).
    pub invalid_utf8_records: u64,
}

/// Open a file for a contract: detect the format, check the structure, match the headers.
///
/// # Errors
/// [`InputError`] when the file is missing, empty, unreadable, or lacks a required column.
pub fn open(
    path: &Path,
    format: Option<Format>,
    contract: &InputContract,
) -> Result<RawSource, InputError> {
    let format = match format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => {
            return Err(InputError::file(
                path,
                "cannot tell the format from the extension; expected .csv, .tsv or .parquet (or set `format` in the config)",
            ));
        }
    };
    let meta =
        std::fs::metadata(path).map_err(|e| InputError::io(path, "cannot open the file", e))?;
    if meta.is_dir() {
        return Err(InputError::file(path, "is a directory, expected a file"));
    }
    match format {
        Format::Csv | Format::Tsv => open_csv(path, format, contract, CsvEngine::Polars),
        Format::Parquet => open_parquet(path, contract),
        Format::Geojson => Err(InputError::file(
            path,
            format!(
                "{} is a table input; GeoJSON is only read as footprint polygons",
                contract.name
            ),
        )),
    }
}

/// The data records of a file, before it is read: a Parquet footer's row count, or a CSV
/// file's records (its structure pass). For sizing work ahead of the read (the patient parts).
///
/// # Errors
/// As [`open`]: a file that cannot be opened, or a Parquet footer that cannot be read.
pub fn count_rows(
    path: &Path,
    format: Option<Format>,
    contract: &InputContract,
) -> Result<u64, InputError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    match format.or_else(|| Format::from_path(path)) {
        Some(Format::Parquet) => {
            let file =
                File::open(path).map_err(|e| InputError::io(path, "cannot open the file", e))?;
            let reader = SerializedFileReader::new(file)
                .map_err(|e| InputError::file(path, format!("not a readable Parquet file: {e}")))?;
            Ok(u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0))
        }
        _ => open(path, format, contract).map(|raw| raw.rows),
    }
}

/// What the structure pass learns about a CSV file.
struct CsvStructure {
    headers: Vec<String>,
    rows: u64,
    lines: LineMap,
    structural_rejects: Vec<StructuralReject>,
    invalid_utf8_records: u64,
}

/// One pass over the file with the `csv` crate: count records, record lines, find records with
/// the wrong number of fields, count invalid UTF-8. Allocation-free per record.
fn scan_csv_structure(
    path: &Path,
    separator: u8,
    has_header: bool,
) -> Result<CsvStructure, InputError> {
    let file = File::open(path).map_err(|e| InputError::io(path, "cannot open the file", e))?;
    let mut first = [0u8; 3];
    let mut probe = BufReader::new(file);
    let n = read_up_to(&mut probe, &mut first)
        .map_err(|e| InputError::io(path, "cannot read the file", e))?;
    if n == 0 {
        return Err(InputError::file(
            path,
            "the file is empty (expected a header row and data rows)",
        ));
    }
    let file = File::open(path).map_err(|e| InputError::io(path, "cannot open the file", e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(separator)
        .buffer_capacity(1 << 20)
        .from_reader(file);
    let mut record = csv::ByteRecord::new();
    let mut headers = Vec::new();
    let mut expected_fields = None;
    if has_header {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                headers = record
                    .iter()
                    .map(|field| {
                        String::from_utf8_lossy(field)
                            .trim_start_matches('\u{feff}')
                            .trim()
                            .to_string()
                    })
                    .collect();
                expected_fields = Some(record.len());
            }
            Ok(false) => {
                return Err(InputError::file(
                    path,
                    "the file is empty (expected a header row)",
                ));
            }
            Err(e) => {
                return Err(InputError::file(
                    path,
                    format!("cannot read the header row: {e}"),
                ));
            }
        }
    }
    let first_line = if has_header { 2 } else { 1 };
    let mut lines = LineMap::simple(first_line);
    let mut rows = 0u64;
    let mut structural_rejects = Vec::new();
    let mut invalid_utf8_records = 0u64;
    let mut current_extra = 0u64;
    let mut previous_line = first_line - 1;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(InputError::file(
                    path,
                    format!(
                        "cannot read record {} (around line {}): {e}",
                        rows + 1,
                        first_line + rows + current_extra
                    ),
                ));
            }
        }
        let reported = record
            .position()
            .map_or(first_line + rows + current_extra, |p| p.line());
        // Each record starts at least one line after the one before: the csv crate counts
        // '\n' only, so with CR-only line ends it reports one line for many records, and two
        // records on one line would be counted as one reject (and their lines would be wrong).
        let line = reported.max(previous_line + 1);
        previous_line = line;
        let extra = line.saturating_sub(first_line + rows);
        if extra != current_extra {
            lines.shifts.push((rows, extra));
            current_extra = extra;
        }
        let expected = *expected_fields.get_or_insert(record.len());
        if record.len() != expected {
            structural_rejects.push(StructuralReject {
                record: rows,
                line,
                reason: format!("expected {expected} fields, found {}", record.len()),
            });
        }
        if std::str::from_utf8(record.as_slice()).is_err() {
            invalid_utf8_records += 1;
        }
        rows += 1;
    }
    Ok(CsvStructure {
        headers,
        rows,
        lines,
        structural_rejects,
        invalid_utf8_records,
    })
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Which file column (by position) supplies each contract column, and which extras are kept.
struct HeaderMatch {
    /// `(position in file, canonical name)`.
    chosen: Vec<(usize, &'static str)>,
    /// `(position in file, normalised name)` of kept extra columns.
    extras: Vec<(usize, String)>,
}

/// Match file headers to a contract by normalised name and alias.
fn match_headers(
    path: &Path,
    headers: &[String],
    contract: &InputContract,
) -> Result<HeaderMatch, InputError> {
    let mut chosen: Vec<(usize, &'static str)> = Vec::new();
    let mut extras = Vec::new();
    match contract.header {
        HeaderMode::Positional(positions) => {
            for &(position, name) in positions {
                if position < headers.len() {
                    chosen.push((position, name));
                }
            }
        }
        HeaderMode::Named => {
            let mut by_name: BTreeMap<String, &'static str> = BTreeMap::new();
            for spec in contract.columns {
                by_name.insert(normalise_header(spec.name), spec.name);
                for alias in spec.aliases {
                    by_name.insert(normalise_header(alias), spec.name);
                }
            }
            for (position, header) in headers.iter().enumerate() {
                let key = normalise_header(header);
                match by_name.get(&key) {
                    Some(&canonical) => {
                        if let Some(&(earlier, _)) = chosen.iter().find(|(_, c)| *c == canonical) {
                            let earlier_header = headers.get(earlier).map_or("", String::as_str);
                            return Err(InputError::file(
                                path,
                                format!(
                                    "columns \"{earlier_header}\" and \"{header}\" both supply `{canonical}`; keep one of them"
                                ),
                            ));
                        }
                        chosen.push((position, canonical));
                    }
                    None if contract.extra == ExtraColumns::KeepAsText
                        && !key.is_empty()
                        && !extras.iter().any(|(_, k)| *k == key) =>
                    {
                        extras.push((position, key));
                    }
                    None => {}
                }
            }
        }
    }
    let missing: Vec<&str> = contract
        .columns
        .iter()
        .filter(|spec| spec.required && !chosen.iter().any(|(_, c)| *c == spec.name))
        .map(|spec| spec.name)
        .collect();
    let missing_groups: Vec<String> = contract
        .one_of
        .iter()
        .filter(|group| {
            !group
                .iter()
                .any(|name| chosen.iter().any(|(_, c)| c == name))
        })
        .map(|group| group.join(" or "))
        .collect();
    if !missing.is_empty() || !missing_groups.is_empty() {
        let mut wanted: Vec<String> = missing
            .iter()
            .map(|name| describe_column(contract, name))
            .collect();
        wanted.extend(missing_groups);
        let found = if headers.is_empty() {
            "none".to_string()
        } else {
            headers
                .iter()
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let what = match contract.header {
            HeaderMode::Positional(_) => format!(
                "has {} columns per row, too few for a {} file (it has no header row; required: {})",
                headers.len(),
                contract.name,
                wanted.join("; ")
            ),
            HeaderMode::Named => format!(
                "missing required column(s) for a {} file: {}; columns found: {found}",
                contract.name,
                wanted.join("; ")
            ),
        };
        return Err(InputError::MissingColumns {
            path: path.to_path_buf(),
            message: what,
        });
    }
    Ok(HeaderMatch { chosen, extras })
}

/// `name` plus its accepted spellings, for the missing-column message.
fn describe_column(contract: &InputContract, name: &str) -> String {
    match contract.column(name) {
        Some(spec) if !spec.aliases.is_empty() => {
            let shown: Vec<String> = spec
                .aliases
                .iter()
                .take(3)
                .map(|a| format!("\"{a}\""))
                .collect();
            format!("{name} (also accepted: {})", shown.join(", "))
        }
        _ => name.to_string(),
    }
}

/// Which CSV reader builds the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvEngine {
    /// polars' lazy, parallel, streaming scanner: the fast path for well-formed files.
    Polars,
    /// The `csv` crate, record by record, into memory: for files polars cannot parse
    /// (an unterminated quote, say). Bytes that are not UTF-8 are decoded as Latin-1.
    Records,
}

/// Re-open a CSV input with the record-by-record reader, after polars failed on it.
///
/// # Errors
/// As [`open`].
pub fn reopen_csv_by_records(
    path: &Path,
    format: Format,
    contract: &InputContract,
) -> Result<RawSource, InputError> {
    open_csv(path, format, contract, CsvEngine::Records)
}

fn open_csv(
    path: &Path,
    format: Format,
    contract: &InputContract,
    engine: CsvEngine,
) -> Result<RawSource, InputError> {
    let separator = if format == Format::Tsv { b'\t' } else { b',' };
    let has_header = matches!(contract.header, HeaderMode::Named);
    let structure = scan_csv_structure(path, separator, has_header)?;
    let headers = if has_header {
        structure.headers.clone()
    } else {
        // Positional files: name the columns by 1-based position for messages.
        let width = first_record_width(path, separator)?;
        (1..=width).map(|i| format!("column {i}")).collect()
    };
    let matched = match_headers(path, &headers, contract)?;
    let by_records = || -> Result<LazyFrame, InputError> {
        let frame = read_records(path, separator, has_header, headers.len(), &matched)?;
        let column_at = |position: usize| Some(format!("__pos{position}"));
        project(frame.lazy(), &matched, column_at, path)
    };
    let frame = match engine {
        CsvEngine::Polars => {
            let mut frame = LazyCsvReader::new(PlRefPath::new(path.to_string_lossy().as_ref()))
                .with_has_header(has_header)
                .with_separator(separator)
                .with_infer_schema_length(Some(0))
                .with_encoding(CsvEncoding::LossyUtf8)
                .with_truncate_ragged_lines(true)
                .with_missing_is_null(true)
                .with_raise_if_empty(false)
                .with_row_index(Some(RowIndex {
                    name: ROW_INDEX.into(),
                    offset: 0,
                }))
                .finish()
                .map_err(|e| InputError::polars(path, "cannot scan the file", e))?;
            // polars names header-less columns `column_1`…; named files keep (deduplicated)
            // headers, so columns are selected by position in both cases.
            let schema = frame
                .collect_schema()
                .map_err(|e| InputError::polars(path, "cannot read the header", e))?;
            let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
            // Rejects are keyed by the structure pass's record numbers and the values come
            // from polars' rows: the two must split the file the same way. They do not where
            // a bare CR ends a line (the csv crate ends a record there, polars does not), so
            // such files, and any other disagreement, are read record by record instead.
            let polars_rows = frame
                .clone()
                .select([len().alias("n")])
                .collect()
                .ok()
                .and_then(|df| {
                    df.column("n")
                        .ok()?
                        .cast(&DataType::UInt64)
                        .ok()?
                        .u64()
                        .ok()?
                        .get(0)
                });
            let same_header = !has_header || names.len() == headers.len() + 1;
            if same_header && polars_rows == Some(structure.rows) {
                // names[0] is the row index.
                let column_at = |position: usize| names.get(position + 1).cloned();
                project(frame, &matched, column_at, path)?
            } else {
                by_records()?
            }
        }
        CsvEngine::Records => by_records()?,
    };
    Ok(RawSource {
        path: path.to_path_buf(),
        format,
        frame,
        present: matched.chosen.iter().map(|(_, c)| *c).collect(),
        extras: matched.extras.iter().map(|(_, k)| k.clone()).collect(),
        headers_found: headers,
        rows: structure.rows,
        lines: structure.lines,
        structural_rejects: structure.structural_rejects,
        invalid_utf8_records: structure.invalid_utf8_records,
    })
}

/// Read the needed columns record by record into text columns named `__pos<i>`, with the row
/// index. Records of the wrong width are skipped (the structure pass rejects them) but keep
/// their record number, so line numbers stay right.
fn read_records(
    path: &Path,
    separator: u8,
    has_header: bool,
    width: usize,
    matched: &HeaderMatch,
) -> Result<DataFrame, InputError> {
    let file = File::open(path).map_err(|e| InputError::io(path, "cannot open the file", e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(true)
        .delimiter(separator)
        .from_reader(file);
    let positions: Vec<usize> = matched
        .chosen
        .iter()
        .map(|(p, _)| *p)
        .chain(matched.extras.iter().map(|(p, _)| *p))
        .collect();
    let mut rows: Vec<IdxSize> = Vec::new();
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); positions.len()];
    let mut record = csv::ByteRecord::new();
    let mut index: IdxSize = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(InputError::file(
                    path,
                    format!("cannot read record {}: {e}", index + 1),
                ));
            }
        }
        if width == 0 || record.len() == width {
            rows.push(index);
            for (column, &position) in columns.iter_mut().zip(&positions) {
                column.push(record.get(position).map(decode_field));
            }
        }
        index += 1;
    }
    let mut frame_columns = vec![Column::new(ROW_INDEX.into(), rows)];
    for (column, position) in columns.into_iter().zip(&positions) {
        frame_columns.push(Column::new(format!("__pos{position}").into(), column));
    }
    DataFrame::new_infer_height(frame_columns)
        .map_err(|e| InputError::polars(path, "cannot build the table", e))
}

/// A field as text: UTF-8 when it is, else Latin-1 (every byte is a character there), which is
/// what older NHS and ONS extracts use.
fn decode_field(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Width of the first record of a header-less file.
fn first_record_width(path: &Path, separator: u8) -> Result<usize, InputError> {
    let file = File::open(path).map_err(|e| InputError::io(path, "cannot open the file", e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(separator)
        .from_reader(file);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => Ok(record.len()),
        Ok(false) => Err(InputError::file(path, "the file is empty")),
        Err(e) => Err(InputError::file(
            path,
            format!("cannot read the first record: {e}"),
        )),
    }
}

/// Select the matched columns (renamed to canonical names) and the kept extras.
fn project(
    frame: LazyFrame,
    matched: &HeaderMatch,
    column_at: impl Fn(usize) -> Option<String>,
    path: &Path,
) -> Result<LazyFrame, InputError> {
    let mut select = vec![col(ROW_INDEX)];
    for &(position, canonical) in &matched.chosen {
        let source = column_at(position).ok_or_else(|| {
            InputError::file(
                path,
                format!("column {} is beyond the file's width", position + 1),
            )
        })?;
        select.push(col(source.as_str()).alias(canonical));
    }
    for (position, key) in &matched.extras {
        if let Some(source) = column_at(*position) {
            select.push(col(source.as_str()).alias(key.as_str()));
        }
    }
    Ok(frame.select(select))
}

/// Refuse a damaged Parquet file before polars reads it.
///
/// polars trusts a file's structure: it slices the file with the footer's column-chunk offsets
/// unchecked (a cut-off file whose footer still parses reads out of bounds: an abort in a debug
/// build, undefined behaviour in a release one) and sizes buffers from the row and value counts
/// (a flipped byte in a count asks for exabytes and aborts). So every Parquet input is walked
/// first with the `parquet` crate, which checks as it reads: every chunk inside the file, every
/// page header readable, every page's sizes inside its chunk, the values the pages hold equal
/// to the footer's counts, and the file's row count the sum of its row groups'. The walk reads
/// the page headers only: the pages' contents are decoded once, by polars, whose errors on a
/// damaged page (one that does not decompress or decode) name the file, and whose panics
/// `read_table` catches. Decompressing every page here as well doubled the decompression of
/// every Parquet input (7% of ingest's CPU at 10M patients), and the fuzz target of damaged
/// files (`tests/cli/fuzz.rs`) finds no difference.
fn check_parquet_structure(path: &Path) -> Result<(), InputError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let damaged = |what: String| {
        InputError::file(
            path,
            format!("the Parquet file is damaged ({what}); export it again"),
        )
    };
    // A reader of the file, with the file's length.
    let open = || -> Result<(SerializedFileReader<File>, u64), InputError> {
        let file = File::open(path).map_err(|e| InputError::io(path, "cannot open the file", e))?;
        let length = file
            .metadata()
            .map_err(|e| InputError::io(path, "cannot read the file", e))?
            .len();
        let reader = SerializedFileReader::new(file)
            .map_err(|e| InputError::file(path, format!("not a readable Parquet file: {e}")))?;
        Ok((reader, length))
    };
    let (reader, length) = open()?;
    let metadata = reader.metadata();
    // The footer's row count is the file's row count as read (the rows the report says were
    // read), while the rows come from the row groups: a count that disagrees would report
    // rows that never arrive as accepted.
    let footer_rows = metadata.file_metadata().num_rows();
    let group_rows = metadata
        .row_groups()
        .iter()
        .fold(0i64, |rows, group| rows.saturating_add(group.num_rows()));
    if footer_rows != group_rows {
        return Err(damaged(format!(
            "the footer says {footer_rows} rows, its row groups hold {group_rows}"
        )));
    }
    // Row groups are walked in parallel (decompressing an England-sized extract is seconds of
    // CPU); the first damaged group in file order is the one reported. Each thread reads
    // through a file of its own: the reader's handles on one file share its offset.
    let check_group = |reader: &SerializedFileReader<File>, g: usize| -> Result<(), InputError> {
        let group = metadata.row_group(g);
        let row_group = reader
            .get_row_group(g)
            .map_err(|e| damaged(format!("row group {}: {e}", g + 1)))?;
        for (c, column) in group.columns().iter().enumerate() {
            let name = column.column_path().to_string();
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let size = column.compressed_size();
            let inside = start >= 0
                && size >= 0
                && start
                    .checked_add(size)
                    .and_then(|end| u64::try_from(end).ok())
                    .is_some_and(|end| end <= length);
            if !inside {
                return Err(damaged(format!(
                    "column {name} of row group {} lies outside the file's {length} bytes",
                    g + 1
                )));
            }
            let mut pages = row_group
                .get_column_page_reader(c)
                .map_err(|e| damaged(format!("column {name}: {e}")))?;
            let page_error = |e: parquet::errors::ParquetError| {
                damaged(format!("column {name} of row group {}: {e}", g + 1))
            };
            // The parquet crate panics on a data page header without its data page part
            // (`PageMetadata::try_from`): that is damage too.
            let walk = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut values: i64 = 0;
                while let Some(page) = pages.peek_next_page()? {
                    if !page.is_dict {
                        let levels = page.num_levels.unwrap_or(0);
                        values = values.saturating_add(i64::try_from(levels).unwrap_or(i64::MAX));
                    }
                    // Checks that the page's sizes fit in what is left of its column chunk.
                    pages.skip_next_page()?;
                }
                Ok(values)
            }));
            let values = match walk {
                Ok(values) => values.map_err(page_error)?,
                Err(_) => {
                    return Err(damaged(format!(
                        "column {name} of row group {}: a page header is incomplete",
                        g + 1
                    )));
                }
            };
            // A flat column (every input table is flat) holds one value per row.
            let flat = column.column_descr().max_rep_level() == 0;
            if values != column.num_values() || (flat && values != group.num_rows()) {
                return Err(damaged(format!(
                    "column {name} of row group {}: its pages hold {values} values, the footer says {} values in {} rows",
                    g + 1,
                    column.num_values(),
                    group.num_rows()
                )));
            }
        }
        Ok(())
    };
    let checked: Vec<Result<(), InputError>> = (0..metadata.num_row_groups())
        .into_par_iter()
        .map_init(
            || open().ok(),
            |reader, g| match reader {
                Some((reader, _)) => check_group(reader, g),
                // The file opened above: opening it again fails only if it changed since,
                // and this open's error says how.
                None => open().and_then(|(reader, _)| check_group(&reader, g)),
            },
        )
        .collect();
    checked.into_iter().collect()
}

fn open_parquet(path: &Path, contract: &InputContract) -> Result<RawSource, InputError> {
    check_parquet_structure(path)?;
    let args = ScanArgsParquet {
        row_index: Some(RowIndex {
            name: ROW_INDEX.into(),
            offset: 0,
        }),
        ..Default::default()
    };
    let mut frame = LazyFrame::scan_parquet(PlRefPath::new(path.to_string_lossy().as_ref()), args)
        .map_err(|e| InputError::polars(path, "cannot read the Parquet file", e))?;
    let schema = frame
        .collect_schema()
        .map_err(|e| InputError::polars(path, "cannot read the Parquet schema", e))?;
    let names: Vec<String> = schema
        .iter_names()
        .map(|n| n.to_string())
        .filter(|n| n != ROW_INDEX)
        .collect();
    let matched = match_headers(path, &names, contract)?;
    let column_at = |position: usize| names.get(position).cloned();
    let frame = project(frame, &matched, column_at, path)?;
    let rows = frame
        .clone()
        .select([len().alias("n")])
        .collect()
        .and_then(|df| df.column("n")?.u32().map(|c| c.get(0).unwrap_or(0)))
        .map_err(|e| InputError::polars(path, "cannot count the Parquet rows", e))?;
    Ok(RawSource {
        path: path.to_path_buf(),
        format: Format::Parquet,
        frame,
        present: matched.chosen.iter().map(|(_, c)| *c).collect(),
        extras: matched.extras.iter().map(|(_, k)| k.clone()).collect(),
        headers_found: names,
        rows: u64::from(rows),
        lines: LineMap::simple(1),
        structural_rejects: Vec::new(),
        invalid_utf8_records: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_map_shifts_after_multiline_records() {
        let mut map = LineMap::simple(2);
        map.shifts.push((3, 1));
        map.shifts.push((7, 4));
        assert_eq!(map.line_of(0), 2);
        assert_eq!(map.line_of(2), 4);
        assert_eq!(map.line_of(3), 6);
        assert_eq!(map.line_of(6), 9);
        assert_eq!(map.line_of(7), 13);
    }

    /// A file of `groups` row groups of 100 rows each.
    fn parquet_of_groups(path: &Path, groups: usize) {
        let rows = groups * 100;
        let mut frame = df![
            "patient_id" => (0..rows).map(|i| format!("P{i:08}")).collect::<Vec<_>>(),
            "age" => (0..rows).map(|i| (i % 90) as i64).collect::<Vec<_>>(),
        ]
        .expect("frame");
        ParquetWriter::new(File::create(path).expect("create"))
            .with_row_group_size(Some(100))
            .finish(&mut frame)
            .expect("write");
    }

    #[test]
    fn many_row_groups_are_walked_and_the_first_damaged_one_is_named() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use std::io::{Seek, SeekFrom, Write};

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("groups.parquet");
        parquet_of_groups(&path, 64);
        let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("read");
        assert_eq!(reader.metadata().num_row_groups(), 64);
        // A sound file of many groups passes, however its groups are shared among threads.
        for _ in 0..4 {
            check_parquet_structure(&path).expect("a sound file passes");
        }
        // Overwrite the first page header of groups 41 and 52 (0-based 40 and 51).
        let starts: Vec<u64> = [40, 51]
            .iter()
            .map(|&g| {
                let chunk = reader.metadata().row_group(g).column(0);
                let start = chunk
                    .dictionary_page_offset()
                    .unwrap_or_else(|| chunk.data_page_offset());
                u64::try_from(start).expect("offset")
            })
            .collect();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open for writing");
        for start in starts {
            file.seek(SeekFrom::Start(start)).expect("seek");
            file.write_all(&[0xFF; 16]).expect("damage");
        }
        drop(file);
        for _ in 0..4 {
            let message = check_parquet_structure(&path)
                .expect_err("a damaged group is refused")
                .to_string();
            assert!(
                message.contains("damaged") && message.contains("row group 41"),
                "{message}"
            );
        }
    }

    /// A footer whose file-level row count disagrees with its row groups' (a fuzz case: 46
    /// rows said, 4 held) is refused, naming both counts; it was read as 4 rows with 42
    /// counted as read and accepted that never came.
    #[test]
    fn a_footer_row_count_unlike_its_row_groups_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("count.parquet");
        parquet_of_groups(&path, 1);
        let mut bytes = std::fs::read(&path).expect("read");
        let footer_length = u32::from_le_bytes(
            bytes[bytes.len() - 8..bytes.len() - 4]
                .try_into()
                .expect("4"),
        );
        let footer_start = bytes.len() - 8 - footer_length as usize;
        // FileMetaData's num_rows (field 3, an i64, after the schema list): a compact-protocol
        // field header 0x16, then 100 as a zigzag varint (200 = 0xC8 0x01). The row group's
        // own count comes later in the footer.
        let at = footer_start
            + bytes[footer_start..]
                .windows(3)
                .position(|w| w == [0x16, 0xC8, 0x01])
                .expect("the footer's row count");
        bytes[at + 1] = 0xCA; // 101 rows
        std::fs::write(&path, &bytes).expect("write");
        let message = check_parquet_structure(&path)
            .expect_err("the counts disagree")
            .to_string();
        assert!(
            message.contains("damaged")
                && message.contains("101 rows")
                && message.contains("hold 100"),
            "{message}"
        );
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.CSV")), Some(Format::Csv));
        assert_eq!(
            Format::from_path(Path::new("a/b.parquet")),
            Some(Format::Parquet)
        );
        assert_eq!(Format::from_path(Path::new("a/b")), None);
    }
}
