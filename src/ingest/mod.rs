//! ingest: read every input kind with a declared schema, header aliases and rejects.
//!
//! Owns the data contract of DESIGN §2: one [`InputContract`] per [`InputKind`] (in
//! `deprivation`, `networks`, `registered`, `outcomes`, `geography`), the shared CSV/Parquet
//! plumbing ([`source`]), the value checks ([`validate`]) and the rejects ([`report`]).
//! Footprint polygons come from [`footprints`]. It does not join or derive anything beyond
//! normalising codes: that is `crate::pipeline`'s enrich stage.
//!
//! Reading an input gives a [`Table`]: a lazy plan of the accepted rows with canonical, typed
//! columns, the rejects (file, line, column, value, reason) and a report. The plan is not run
//! here except to find the rejects.

pub mod contract;
pub mod deprivation;
pub mod footprints;
pub mod geography;
pub mod networks;
pub mod outcomes;
pub mod registered;
pub mod report;
pub mod source;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use polars::prelude::*;

pub use contract::InputContract;
pub use footprints::{Footprint, Footprints, read_footprints};
pub use report::{IngestReport, ReasonCount, Reject, rejects_frame};
pub use source::Format;

use crate::schema;
use validate::{ColumnPlan, DuplicateKeys, Reason, RowCheck};

/// An input that cannot be used as given. The message names the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A problem with the file as a whole.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        message: String,
    },
    /// The file lacks columns the contract requires.
    #[error("{}: {message}", path.display())]
    MissingColumns {
        /// The file.
        path: PathBuf,
        /// Which columns are required and which were found.
        message: String,
    },
    /// The file could not be opened or read.
    #[error("{}: {context}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// polars could not read the file.
    #[error("{}: {context}: {}", path.display(), short_polars_message(source))]
    Polars {
        /// The file.
        path: PathBuf,
        /// What was being done.
        context: String,
        /// polars' error.
        source: PolarsError,
    },
    /// More rows were refused than the configured limit allows.
    #[error(
        "{}: {rejected} of {read} rows refused ({rate:.2}%), above the limit of {limit:.2}%; most common: {top}",
        path.display(),
        rate = rate * 100.0,
        limit = limit * 100.0
    )]
    TooManyRejects {
        /// The file.
        path: PathBuf,
        /// Rows refused.
        rejected: u64,
        /// Rows read.
        read: u64,
        /// Share refused.
        rate: f64,
        /// Share allowed.
        limit: f64,
        /// The most common reasons, in words.
        top: String,
    },
}

impl InputError {
    pub(crate) fn file(path: &Path, message: impl Into<String>) -> Self {
        InputError::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &Path, context: &str, source: std::io::Error) -> Self {
        InputError::Io {
            path: path.to_path_buf(),
            context: context.to_string(),
            source,
        }
    }

    pub(crate) fn polars(path: &Path, context: &str, source: PolarsError) -> Self {
        InputError::Polars {
            path: path.to_path_buf(),
            context: context.to_string(),
            source,
        }
    }
}

/// The first line of a polars error: its message without the query plan it appends.
pub fn short_polars_message(error: &PolarsError) -> String {
    let text = error.to_string();
    let first = text.split("\n\n").next().unwrap_or(&text);
    // polars quotes the offending field, which can be megabytes long (a line cut short).
    report::shown_value(first.lines().next().unwrap_or(first).trim())
}

/// Every tabular input kind of the data contract (DESIGN §2). Footprint polygons (GeoJSON) are
/// read separately by [`read_footprints`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Patient-level registered list.
    Patients,
    /// Patient conditions (long).
    Conditions,
    /// Patient outcomes (long).
    Outcomes,
    /// NHS Digital practice × LSOA registrations (weighted cells).
    PracticeLsoa,
    /// NHS Digital practice totals.
    PracticeTotals,
    /// Practice age profile (total, 16+, 65+).
    PracticeAges,
    /// Practice-level outcomes (Fingertips shape).
    PracticeOutcomes,
    /// English IoD2019 (LSOA 2011).
    Iod2019,
    /// English IoD2025 (LSOA 2021).
    Iod2025,
    /// Welsh WIMD 2019 (LSOA 2011).
    Wimd2019,
    /// ePCN practice → PCN memberships.
    EpcnMembers,
    /// ePCN PCN details.
    EpcnPcns,
    /// NHS Digital practice map.
    PracticeMap,
    /// ODS epraccur (no header).
    Epraccur,
    /// ICB ODS ↔ ONS codes and names.
    IcbCodes,
    /// LSOA centroids.
    LsoaCentroids,
    /// LSOA → local authority lookup.
    LsoaLookup,
    /// Standard population (ESP2013).
    Esp2013,
}

impl InputKind {
    /// Every tabular input kind, in the order `validate` reports them.
    pub const ALL: [InputKind; 18] = [
        InputKind::Iod2019,
        InputKind::Iod2025,
        InputKind::Wimd2019,
        InputKind::EpcnMembers,
        InputKind::EpcnPcns,
        InputKind::PracticeMap,
        InputKind::Epraccur,
        InputKind::IcbCodes,
        InputKind::PracticeTotals,
        InputKind::PracticeAges,
        InputKind::PracticeLsoa,
        InputKind::Patients,
        InputKind::Conditions,
        InputKind::Outcomes,
        InputKind::PracticeOutcomes,
        InputKind::LsoaCentroids,
        InputKind::LsoaLookup,
        InputKind::Esp2013,
    ];

    /// The declared schema of this kind.
    pub fn contract(self) -> &'static InputContract {
        match self {
            InputKind::Patients => &registered::PATIENTS_LIST,
            InputKind::Conditions => &outcomes::CONDITIONS_LONG,
            InputKind::Outcomes => &outcomes::PATIENT_OUTCOMES,
            InputKind::PracticeLsoa => &registered::PRACTICE_LSOA,
            InputKind::PracticeTotals => &registered::PRACTICE_TOTALS,
            InputKind::PracticeAges => &registered::PRACTICE_AGES,
            InputKind::PracticeOutcomes => &outcomes::PRACTICE_OUTCOMES,
            InputKind::Iod2019 => &deprivation::IOD2019,
            InputKind::Iod2025 => &deprivation::IOD2025,
            InputKind::Wimd2019 => &deprivation::WIMD2019,
            InputKind::EpcnMembers => &networks::EPCN_MEMBERS,
            InputKind::EpcnPcns => &networks::EPCN_PCNS,
            InputKind::PracticeMap => &networks::PRACTICE_MAP,
            InputKind::Epraccur => &networks::EPRACCUR,
            InputKind::IcbCodes => &networks::ICB_CODES,
            InputKind::LsoaCentroids => &geography::LSOA_CENTROIDS,
            InputKind::LsoaLookup => &geography::LSOA_LOOKUP,
            InputKind::Esp2013 => &geography::STANDARD_POPULATION,
        }
    }

    /// The name used in config and messages (`iod2019`, `patients`, …).
    pub fn name(self) -> &'static str {
        self.contract().name
    }

    /// Whether rows are one patient's (or one patient's condition or outcome): the inputs
    /// that grow with the registered list, whose derived columns are computed row by row.
    pub fn is_patient_keyed(self) -> bool {
        matches!(
            self,
            InputKind::Patients | InputKind::Conditions | InputKind::Outcomes
        )
    }
}

impl std::fmt::Display for InputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to read one input.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The file format, when the extension does not tell.
    pub format: Option<Format>,
    /// The extract date: ages are computed at it from dates of birth, and later dates of birth
    /// are refused.
    pub extract_date: Option<chrono::NaiveDate>,
}

/// One input, read and checked: the accepted rows (lazy), the rejects and a report.
pub struct Table {
    /// What kind of input it is.
    pub kind: InputKind,
    /// The file.
    pub path: PathBuf,
    /// Accepted rows with canonical, typed columns. Lazy: nothing of it has run yet.
    pub frame: LazyFrame,
    /// Refused values.
    pub rejects: Vec<Reject>,
    /// Counts.
    pub report: IngestReport,
}

impl Table {
    /// Refuse the input when more than `limit` (a share, e.g. 0.01) of its rows were rejected.
    ///
    /// # Errors
    /// [`InputError::TooManyRejects`] naming the file, the counts and the commonest reasons.
    pub fn enforce_reject_limit(&self, limit: f64) -> Result<(), InputError> {
        let rate = self.report.reject_rate();
        if rate <= limit {
            return Ok(());
        }
        let top = self
            .report
            .reasons
            .iter()
            .take(3)
            .map(|r| format!("{} × {}: {}", r.count, r.column, r.reason))
            .collect::<Vec<_>>()
            .join("; ");
        Err(InputError::TooManyRejects {
            path: self.path.clone(),
            rejected: self.report.rows_rejected,
            read: self.report.rows_read,
            rate,
            limit,
            top,
        })
    }

    /// The rejects as a table with the published `rejects` schema.
    ///
    /// # Errors
    /// If polars cannot build the frame.
    pub fn rejects_frame(&self) -> PolarsResult<DataFrame> {
        rejects_frame(self.kind.name(), &self.rejects)
    }
}

/// Read one tabular input: open it, check every value, collect the rejects, and return the
/// lazy plan of accepted rows.
///
/// # Errors
/// [`InputError`] when the file cannot be read or lacks required columns. Bad rows are not
/// errors: they are in [`Table::rejects`]; call [`Table::enforce_reject_limit`] to refuse an
/// input with too many.
pub fn read_table(
    kind: InputKind,
    path: &Path,
    options: &ReadOptions,
) -> Result<Table, InputError> {
    read_table_into(kind, path, options, None)
}

/// Where an input's accepted rows go as the rejects pass checks them, so that a large input
/// is read and checked once: the pipeline splits the patient-keyed inputs into parts this way
/// (`pipeline::partition`).
pub trait AcceptedRows: Send {
    /// Start, or start again: the rows will have these columns (the accepted plan's,
    /// [`Table::frame`]). Called before the first batch, and again when a CSV file is read
    /// again record by record; rows written before that are to be discarded.
    ///
    /// # Errors
    /// If the destination cannot be made ready.
    fn begin(&mut self, columns: &Schema) -> PolarsResult<()>;
    /// The next batch of accepted rows, in file order.
    ///
    /// # Errors
    /// If the rows cannot be written.
    fn write(&mut self, rows: DataFrame) -> PolarsResult<()>;
    /// Every row has been written.
    ///
    /// # Errors
    /// If the destination cannot be completed.
    fn finish(&mut self) -> PolarsResult<()>;
}

/// An [`AcceptedRows`] shared with the streaming pass.
pub type SharedAcceptedRows = Arc<Mutex<dyn AcceptedRows>>;

/// [`read_table`], and hand every accepted row to `accepted` in the same pass as the checks.
///
/// Only for inputs whose derived columns are computed row by row (the patient-keyed inputs:
/// patients, conditions, outcomes): the rows are derived batch by batch.
///
/// # Errors
/// As [`read_table`], and when `accepted` fails (the error names the file).
pub fn read_table_into(
    kind: InputKind,
    path: &Path,
    options: &ReadOptions,
    accepted: Option<&SharedAcceptedRows>,
) -> Result<Table, InputError> {
    if accepted.is_some() && !kind.is_patient_keyed() {
        return Err(InputError::file(
            path,
            format!("internal: {kind} rows cannot be derived batch by batch"),
        ));
    }
    // polars panics on some damaged files (a Parquet page or embedded schema that does not
    // decode). Reading checks every value, so the whole file is decoded here: a panic becomes
    // an error naming the file, not a crash of the nightly run.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_table_unguarded(kind, path, options, accepted)
    }));
    read.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "no message".to_string());
        Err(InputError::file(
            path,
            format!(
                "cannot be read: the reader failed on it ({message}); the file may be damaged: export it again"
            ),
        ))
    })
}

fn read_table_unguarded(
    kind: InputKind,
    path: &Path,
    options: &ReadOptions,
    accepted: Option<&SharedAcceptedRows>,
) -> Result<Table, InputError> {
    let contract = kind.contract();
    let raw = source::open(path, options.format, contract)?;
    let format = raw.format;
    match check_source(kind, raw, options, accepted) {
        // polars' fast CSV scanner gives up on some malformed files (an unterminated quote):
        // read those record by record instead, so their bad rows become rejects.
        Err(InputError::Polars { .. }) if matches!(format, Format::Csv | Format::Tsv) => {
            let raw = source::reopen_csv_by_records(path, format, contract)?;
            check_source(kind, raw, options, accepted)
        }
        other => other,
    }
}

/// Check every value of an opened source and collect the rejects.
fn check_source(
    kind: InputKind,
    mut raw: source::RawSource,
    options: &ReadOptions,
    accepted: Option<&SharedAcceptedRows>,
) -> Result<Table, InputError> {
    let contract = kind.contract();
    let path = raw.path.clone();
    let path = path.as_path();
    let file_schema = raw
        .frame
        .collect_schema()
        .map_err(|e| InputError::polars(path, "cannot read the columns", e))?;

    let mut plans: Vec<ColumnPlan> = contract
        .columns
        .iter()
        .filter(|spec| raw.present.contains(&spec.name))
        .map(ColumnPlan::from_spec)
        .collect();
    let mut text_extras = Vec::new();
    let mut frame = raw.frame.clone();
    let mut file_schema = (*file_schema).clone();
    for extra in &raw.extras {
        // A wide condition column on a patient list is a yes/no flag under its canonical code.
        match (kind, crate::conditions::lookup(extra)) {
            (InputKind::Patients, Some(condition))
                if !plans.iter().any(|p| p.name == condition.code) =>
            {
                if condition.code != extra.as_str() {
                    frame = frame.rename([extra.as_str()], [condition.code], true);
                    // The renamed column keeps its stored type under the new name.
                    if let Some(dtype) = file_schema.get(extra.as_str()).cloned() {
                        file_schema.with_column(condition.code.into(), dtype);
                    }
                }
                plans.push(ColumnPlan {
                    name: condition.code.to_string(),
                    ty: contract::ColumnType::Bool,
                    nullable: true,
                });
            }
            _ => text_extras.push(extra.clone()),
        }
    }
    raw.frame = frame;

    let check_with = |duplicates: DuplicateKeys| -> Result<validate::Checked, InputError> {
        validate::check(
            raw.frame.clone(),
            raw.rows,
            &plans,
            &text_extras,
            contract.unique_key,
            &file_schema,
            row_checks(kind, &raw.present, options)?,
            duplicates,
        )
        .map_err(|e| InputError::polars(path, "cannot check for duplicate keys", e))
    };
    // The pass that hands rows on hashes the keys as it goes, instead of a pass of their own.
    let mut checked = check_with(match accepted {
        None => DuplicateKeys::Find,
        Some(_) => DuplicateKeys::Known(Vec::new()),
    })?;

    let structural: Vec<u64> = raw.structural_rejects.iter().map(|r| r.record).collect();
    let structural_ok = if structural.is_empty() {
        lit(true)
    } else {
        let rows = Series::new(
            "structural".into(),
            structural.iter().map(|&r| r as IdxSize).collect::<Vec<_>>(),
        );
        col(source::ROW_INDEX)
            .is_in(lit(rows).implode(false), false)
            .not()
    };

    let (mut rejects, mut refused_rows) = match accepted {
        None => collect_rejects(&checked, structural_ok, &raw, &text_extras)?,
        Some(accepted) => {
            let (found, key_hashes) = stream_accepted(
                kind,
                &checked,
                structural_ok.clone(),
                &raw,
                options,
                accepted,
            )?;
            // No hashes when the key is not checked, and then no rows.
            let duplicated =
                validate::rows_of_repeated_keys(&checked.parsed, &checked.unique_key, key_hashes)
                    .map_err(|e| InputError::polars(path, "cannot check for duplicate keys", e))?;
            if duplicated.is_empty() {
                found
            } else {
                // Rows share a key (rare in an extract): check again with them known; the rows
                // handed on start over.
                checked = check_with(DuplicateKeys::Known(duplicated))?;
                stream_accepted(kind, &checked, structural_ok, &raw, options, accepted)?.0
            }
        }
    };
    refused_rows.extend(structural.iter().map(|&r| r as IdxSize));
    let file_label = path.display().to_string();
    rejects.extend(raw.structural_rejects.iter().map(|s| Reject {
        file: file_label.clone(),
        line: s.line,
        column: "(row)".into(),
        value: String::new(),
        reason: s.reason.clone(),
    }));
    rejects.sort_by(|a, b| a.line.cmp(&b.line).then_with(|| a.column.cmp(&b.column)));

    let mut warnings = Vec::new();
    if raw.invalid_utf8_records > 0 {
        warnings.push(format!(
            "{} rows contain bytes that are not UTF-8 (e.g. Latin-1); they were read with replacement characters (\u{fffd})",
            raw.invalid_utf8_records
        ));
    }
    if raw.rows == 0 {
        warnings.push("the file has a header but no data rows".to_string());
    }
    let report = IngestReport::from_rejects(kind.name(), path, raw.rows, &rejects, warnings);

    // The accepted rows: parsed values minus every refused row, so the checks do not run
    // twice over a large input.
    let parsed = checked.parsed.clone();
    let parsed = if refused_rows.is_empty() {
        parsed
    } else {
        refused_rows.sort_unstable();
        refused_rows.dedup();
        let refused = Series::new("refused".into(), refused_rows);
        parsed.filter(
            col(source::ROW_INDEX)
                .is_in(lit(refused).implode(false), false)
                .not(),
        )
    };
    let accepted = parsed.select(
        checked
            .outputs
            .iter()
            .map(|c| col(c.as_str()))
            .collect::<Vec<_>>(),
    );
    let frame = derive(kind, accepted, &raw.present, options)
        .map_err(|e| InputError::polars(path, "cannot derive columns", e))?;
    Ok(Table {
        kind,
        path: path.to_path_buf(),
        frame,
        rejects,
        report,
    })
}

/// An input's rejects, and the row numbers they refuse.
type Refused = (Vec<Reject>, Vec<IdxSize>);

/// The column holding check `i`'s case ([`Reason::case`]) in the rejects pass.
fn case_column(i: usize) -> String {
    format!("{}{i}", validate::CASE_PREFIX)
}

/// What the rejects are built from, for each row some check refuses: its row number, each
/// check's case and the raw values shown.
fn reject_columns(checked: &validate::Checked) -> Vec<String> {
    let mut columns = vec![source::ROW_INDEX.to_string()];
    for (i, check) in checked.checks.iter().enumerate() {
        columns.push(case_column(i));
        if let Some(raw_col) = check.raw.as_ref().filter(|r| !columns.contains(r)) {
            columns.push(raw_col.clone());
        }
    }
    columns
}

/// Each check's case, as [`case_column`]s.
fn case_columns(checked: &validate::Checked) -> Vec<Expr> {
    checked
        .checks
        .iter()
        .enumerate()
        .map(|(i, check)| check.reason.case().alias(case_column(i)))
        .collect()
}

/// Run the checks and turn every reason into a [`Reject`] with its physical line.
fn collect_rejects(
    checked: &validate::Checked,
    structural_ok: Expr,
    raw: &source::RawSource,
    text_extras: &[String],
) -> Result<Refused, InputError> {
    let path = raw.path.as_path();
    // The rows some check refuses are found from the checks' conditions; their cases are
    // found for those rows only.
    let mut keep: Vec<Expr> = reject_columns(checked)
        .iter()
        .map(|c| col(c.as_str()))
        .collect();
    // Unchecked text columns are read too (only their lengths are kept), so that a field
    // polars cannot parse (an unterminated quote at the end of the file) fails here, where
    // the record-by-record reader takes over, and not later when the pipeline reads them.
    for (i, extra) in text_extras.iter().enumerate() {
        keep.push(
            col(format!("{}{extra}", validate::RAW_PREFIX))
                .cast(DataType::String)
                .str()
                .len_bytes()
                .alias(format!("__parsed{i}")),
        );
    }
    let bad = crate::lazy::collect_streaming(
        checked
            .parsed
            .clone()
            .filter(structural_ok.and(checked.refused()))
            .with_columns(case_columns(checked))
            .select(keep),
    )
    .map_err(|e| InputError::polars(path, "cannot check the rows", e))?;
    rejects_of(&bad, checked, raw)
}

/// The rejects pass that also hands every accepted row, derived, to `accepted`: each row's
/// cases are kept (a small integer a check), the refused rows' reject columns are set aside
/// and the rest go on, batch by batch, so the input is read and checked once. Also the hash
/// of every present unique key (`validate::key_hashes_of`; none when the key is not checked).
fn stream_accepted(
    kind: InputKind,
    checked: &validate::Checked,
    structural_ok: Expr,
    raw: &source::RawSource,
    options: &ReadOptions,
    accepted: &SharedAcceptedRows,
) -> Result<(Refused, validate::KeyHashes), InputError> {
    const REFUSED: &str = "__refused";
    const EXCLUDED: &str = "__excluded";
    let path = raw.path.as_path();
    let refused_by_a_check = checked
        .checks
        .iter()
        .enumerate()
        .map(|(i, check)| col(case_column(i)).lt(lit(check.reason.cases() as u32)))
        .reduce(|a, b| a.or(b))
        .unwrap_or_else(|| lit(false));
    let flagged = checked
        .parsed
        .clone()
        .with_columns(case_columns(checked))
        .with_columns([
            structural_ok
                .clone()
                .and(refused_by_a_check.clone())
                .alias(REFUSED),
            structural_ok.not().or(refused_by_a_check).alias(EXCLUDED),
        ]);
    let mut accepted_plan = derive(
        kind,
        checked.parsed.clone().select(
            checked
                .outputs
                .iter()
                .map(|c| col(c.as_str()))
                .collect::<Vec<_>>(),
        ),
        &raw.present,
        options,
    )
    .map_err(|e| InputError::polars(path, "cannot derive columns", e))?;
    let columns = accepted_plan
        .collect_schema()
        .map_err(|e| InputError::polars(path, "cannot derive columns", e))?;
    let reject_names = reject_columns(checked);
    let accepted_names: Vec<PlSmallStr> = columns.iter_names().cloned().collect();
    // The derived columns are computed on every row, after the cases: they may replace a
    // parsed column that a reason reads (age from the date of birth). Only the columns used
    // below are kept, so that nothing else is computed (the text of typed Parquet columns).
    let mut kept: Vec<Expr> = vec![col(REFUSED), col(EXCLUDED)];
    for name in &reject_names {
        kept.push(col(name.as_str()));
    }
    for name in accepted_names
        .iter()
        .map(PlSmallStr::as_str)
        .chain(checked.unique_key.iter().map(String::as_str))
    {
        if !reject_names.iter().any(|r| r == name) && !kept.contains(&col(name)) {
            kept.push(col(name));
        }
    }
    let plan = derive(kind, flagged, &raw.present, options)
        .map_err(|e| InputError::polars(path, "cannot derive columns", e))?
        .select(kept);
    accepted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .begin(&columns)
        .map_err(|e| InputError::polars(path, "cannot start writing the accepted rows", e))?;

    // The refused rows' reject columns, set aside batch by batch, and one key hash a row (as
    // the duplicate check's own pass keeps them).
    let key_hashes = validate::KeyHashes::with_capacity(if checked.unique_key.is_empty() {
        0
    } else {
        usize::try_from(raw.rows).unwrap_or(0)
    });
    let unique_key = checked.unique_key.clone();
    let to = Arc::clone(accepted);
    let (set_aside, key_hashes) = crate::lazy::fold_batches(
        plan,
        (Vec::<DataFrame>::new(), key_hashes),
        move |(set_aside, key_hashes), batch| {
            if !unique_key.is_empty() {
                key_hashes.extend(&validate::key_hashes_of(&batch, &unique_key)?);
            }
            let refused = batch.column(REFUSED)?.bool()?;
            if refused.any() {
                set_aside.push(
                    batch
                        .filter(refused)?
                        .select(reject_names.iter().cloned())?,
                );
            }
            let excluded = batch.column(EXCLUDED)?.bool()?;
            let rows = if excluded.any() {
                batch.filter(&!excluded)?
            } else {
                batch
            };
            let rows = rows.select(accepted_names.iter().cloned())?;
            to.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write(rows)
        },
    )
    .map_err(|e| InputError::polars(path, "cannot check the rows", e))?;
    accepted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .finish()
        .map_err(|e| InputError::polars(path, "cannot finish writing the accepted rows", e))?;

    let bad = match set_aside.split_first() {
        None => DataFrame::empty(),
        Some((first, rest)) => {
            let mut bad = first.clone();
            for rows in rest {
                bad.vstack_mut(rows)
                    .map_err(|e| InputError::polars(path, "cannot gather the rejects", e))?;
            }
            bad
        }
    };
    Ok((rejects_of(&bad, checked, raw)?, key_hashes))
}

/// The rejects of the refused rows' [`reject_columns`] (none when `bad` has no columns),
/// and the refused row numbers.
fn rejects_of(
    bad: &DataFrame,
    checked: &validate::Checked,
    raw: &source::RawSource,
) -> Result<Refused, InputError> {
    let path = raw.path.as_path();
    if bad.height() == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let rows = bad
        .column(source::ROW_INDEX)
        .and_then(|c| c.cast(&DataType::UInt64))
        .map_err(|e| InputError::polars(path, "cannot read row numbers", e))?;
    let rows = rows
        .u64()
        .map_err(|e| InputError::polars(path, "cannot read row numbers", e))?
        .clone();
    let file = path.display().to_string();
    let mut rejects = Vec::new();
    let refused: Vec<IdxSize> = rows.iter().flatten().map(|r| r as IdxSize).collect();
    for (i, check) in checked.checks.iter().enumerate() {
        let cases = bad
            .column(case_column(i).as_str())
            .and_then(|c| c.u32().cloned())
            .map_err(|e| InputError::polars(path, "cannot read reasons", e))?;
        let values = match &check.raw {
            Some(raw_col) => Some(
                bad.column(raw_col.as_str())
                    .and_then(|c| c.cast(&DataType::String))
                    .and_then(|c| c.str().cloned())
                    .map_err(|e| InputError::polars(path, "cannot read values", e))?,
            ),
            None => None,
        };
        for (i, case) in cases.iter().enumerate() {
            let Some(why) = case.and_then(|case| check.reason.text_of(case)) else {
                continue;
            };
            let record = rows.get(i).unwrap_or(0);
            let value = report::shown_value(values.as_ref().and_then(|v| v.get(i)).unwrap_or(""));
            rejects.push(Reject {
                file: file.clone(),
                line: raw.lines.line_of(record),
                column: check.column.clone(),
                value,
                reason: why.to_string(),
            });
        }
    }
    Ok((rejects, refused))
}

/// Checks that involve more than one column, by kind.
fn row_checks(
    kind: InputKind,
    present: &[&str],
    options: &ReadOptions,
) -> Result<Vec<RowCheck>, InputError> {
    let has = |c: &str| present.contains(&c);
    let mut checks = Vec::new();
    if kind == InputKind::PracticeOutcomes {
        let name_missing = if has(schema::INDICATOR_NAME) {
            col(schema::INDICATOR_NAME).is_null()
        } else {
            lit(true)
        };
        checks.push(RowCheck {
            column: schema::INDICATOR.to_string(),
            reason: Reason::default().when(
                col(schema::INDICATOR).is_null().and(name_missing),
                "missing value: neither indicator ID nor indicator name is given",
            ),
        });
    }
    if kind == InputKind::Patients {
        let age_missing = if has(schema::AGE) {
            col(schema::AGE).is_null()
        } else {
            lit(true)
        };
        let dob_missing = if has(schema::DATE_OF_BIRTH) {
            col(schema::DATE_OF_BIRTH).is_null()
        } else {
            lit(true)
        };
        checks.push(RowCheck {
            column: if has(schema::AGE) {
                schema::AGE
            } else {
                schema::DATE_OF_BIRTH
            }
            .to_string(),
            reason: Reason::default().when(
                age_missing.and(dob_missing),
                "missing value: neither age nor date of birth is given",
            ),
        });
        if let (true, Some(extract)) = (has(schema::DATE_OF_BIRTH), options.extract_date) {
            checks.push(RowCheck {
                column: schema::DATE_OF_BIRTH.to_string(),
                reason: Reason::default()
                    .when(
                        col(schema::DATE_OF_BIRTH).gt(lit(extract)),
                        format!("date of birth after the extract date ({extract})"),
                    )
                    .when(
                        age_from_dob(extract).gt(lit(120)),
                        "age above 120 at the extract date",
                    ),
            });
        }
    }
    Ok(checks)
}

/// Whole years between a date of birth and the extract date.
fn age_from_dob(extract: chrono::NaiveDate) -> Expr {
    use chrono::Datelike;
    let dob = col(schema::DATE_OF_BIRTH);
    let years = lit(extract.year()) - dob.clone().dt().year();
    let before_birthday = dob
        .clone()
        .dt()
        .month()
        .cast(DataType::Int32)
        .gt(lit(extract.month() as i32))
        .or(dob
            .clone()
            .dt()
            .month()
            .cast(DataType::Int32)
            .eq(lit(extract.month() as i32))
            .and(
                dob.dt()
                    .day()
                    .cast(DataType::Int32)
                    .gt(lit(extract.day() as i32)),
            ));
    (years - when(before_birthday).then(lit(1)).otherwise(lit(0))).cast(DataType::Int64)
}

/// Columns each kind adds or normalises after the checks.
fn derive(
    kind: InputKind,
    frame: LazyFrame,
    present: &[&str],
    options: &ReadOptions,
) -> PolarsResult<LazyFrame> {
    let has = |c: &str| present.contains(&c);
    Ok(match kind {
        InputKind::Iod2019 => with_index_labels(frame, "E", "IoD2019", 2011),
        InputKind::Iod2025 => with_index_labels(frame, "E", "IoD2025", 2021),
        InputKind::Wimd2019 => with_index_labels(frame, "W", "WIMD2019", 2011),
        InputKind::Patients => {
            // Age at the extract date from the date of birth where age is not given.
            match (
                has(schema::AGE),
                has(schema::DATE_OF_BIRTH),
                options.extract_date,
            ) {
                (true, true, Some(extract)) => frame.with_column(
                    coalesce(&[col(schema::AGE), age_from_dob(extract)]).alias(schema::AGE),
                ),
                (false, true, Some(extract)) => {
                    frame.with_column(age_from_dob(extract).alias(schema::AGE))
                }
                _ => frame,
            }
        }
        InputKind::PracticeMap if has(schema::PCN_CODE) => {
            // NHS Digital marks practices outside any PCN with the placeholder "U".
            frame.with_column(
                when(col(schema::PCN_CODE).eq(lit("U")))
                    .then(lit(NULL).cast(DataType::String))
                    .otherwise(col(schema::PCN_CODE))
                    .alias(schema::PCN_CODE),
            )
        }
        InputKind::PracticeOutcomes if has(schema::INDICATOR_NAME) => {
            // Later periods of a Fingertips export may leave the ID empty: take it from rows of
            // the same indicator name, else use the name.
            frame.with_column(
                coalesce(&[
                    col(schema::INDICATOR),
                    col(schema::INDICATOR)
                        .drop_nulls()
                        .first()
                        .over([col(schema::INDICATOR_NAME)])?,
                    col(schema::INDICATOR_NAME),
                ])
                .alias(schema::INDICATOR),
            )
        }
        InputKind::Esp2013 => {
            // Band limits from labels such as "0-4", "85-89", "90+" where not given.
            let label = col(schema::AGE_BAND);
            let from = label
                .clone()
                .str()
                .extract(lit(r"^(\d+)"), 1)
                .cast(DataType::Int64);
            let to = when(label.clone().str().contains(lit(r"\+$"), false))
                .then(lit(120i64))
                .otherwise(
                    label
                        .str()
                        .extract(lit(r"-(\d+)$"), 1)
                        .cast(DataType::Int64),
                );
            let from = if has(schema::AGE_FROM) {
                coalesce(&[col(schema::AGE_FROM), from])
            } else {
                from
            };
            let to = if has(schema::AGE_TO) {
                coalesce(&[col(schema::AGE_TO), to])
            } else {
                to
            };
            frame.with_columns([from.alias(schema::AGE_FROM), to.alias(schema::AGE_TO)])
        }
        _ => frame,
    })
}

fn with_index_labels(frame: LazyFrame, nation: &str, index: &str, vintage: i32) -> LazyFrame {
    frame.with_columns([
        lit(nation).alias(schema::NATION),
        lit(index).alias(schema::DEPRIVATION_INDEX),
        lit(vintage).alias(schema::LSOA_VINTAGE),
    ])
}
