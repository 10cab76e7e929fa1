//! Patient parts: the patient-keyed inputs (registered list, conditions, outcomes) split by a
//! fixed hash of `patient_id`, so that the patient stages (enrich, attribute, segment) run one
//! part at a time and their memory is bounded by a part, not by the national list.
//!
//! Every row of one patient lands in the same part in every input, so a part's joins see all
//! of its patients' rows. What needs the whole list (the risk-tier percentiles) is counted
//! over every part first (`segment::risk::score_counts` add up). A list of up to
//! `run.patients_per_part` patients is one part and is not split (no working files).
//! docs/scaling.md has the measurements behind the default.
//!
//! The parts are written while ingest checks the inputs ([`PartSplit`] is where ingest hands
//! the accepted rows), so a national extract is read and checked once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::Context;
use polars::prelude::{
    Column, DataFrame, Expr, IntoColumn, LazyFrame, ParquetCompression, ParquetWriteOptions,
    PlRefPath, PlSmallStr, PolarsResult, ScanArgsParquet, Schema, StatisticsOptions, UInt32Chunked,
    col, lit,
};

use crate::ingest::{AcceptedRows, InputKind, SharedAcceptedRows};
use crate::output::TableWriter;
use crate::pipeline::{enrich, segment};
use crate::schema;

/// Patients per part unless `run.patients_per_part` says otherwise: the enrich stage holds
/// about 0.5 GiB per million patients (benches/RESULTS.md), so a part of 4 million keeps it
/// near 2 GiB.
pub const DEFAULT_PATIENTS_PER_PART: u64 = 4_000_000;

/// Parts worked on at once by [`each_part`].
const PARTS_AT_ONCE: usize = 2;

/// `work` done for every part, `PARTS_AT_ONCE` parts at a time, the results in part order.
///
/// One part's risk scores left a core idle a quarter of the time (reading the part's files,
/// putting its ids into an index and hashing their order each run on one thread, between
/// polars' parallel steps); two parts side by side fill it (England's 15 parts: 15.3 →
/// 12.0–12.5 s, benches/RESULTS.md). Memory holds what two parts' work holds. If a part fails,
/// no part is started after it, and the error of the first part that failed is returned.
///
/// # Errors
/// The first failing part's error.
pub fn each_part<T: Send>(
    parts: u32,
    work: impl Fn(u32) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let next = AtomicU32::new(0);
    let failed = AtomicBool::new(false);
    let done: Mutex<Vec<(u32, anyhow::Result<T>)>> = Mutex::new(Vec::new());
    let worker = || {
        while !failed.load(Ordering::Relaxed) {
            let part = next.fetch_add(1, Ordering::Relaxed);
            if part >= parts {
                break;
            }
            let result = work(part);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((part, result));
        }
    };
    let workers = PARTS_AT_ONCE.min(parts as usize).max(1);
    std::thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(worker);
        }
        worker();
    });
    let mut done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
    done.sort_by_key(|(part, _)| *part);
    done.into_iter().map(|(_, result)| result).collect()
}

/// Column holding a row's part while a batch is split.
const PART: &str = "__part";

/// How many parts a list of `patients` is split into, at most `per_part` patients each.
pub fn part_count(patients: u64, per_part: u64) -> u32 {
    let parts = patients.div_ceil(per_part.max(1)).max(1);
    u32::try_from(parts).unwrap_or(u32::MAX)
}

/// The part of each patient id (null ids go with the empty id).
fn part_ids(patient_ids: &Column, parts: u32) -> PolarsResult<Column> {
    let hasher = crate::lazy::key_hasher();
    let ids: Vec<u32> = patient_ids
        .str()?
        .iter()
        .map(|id| {
            let hash = hasher.hash_one(id.unwrap_or_default());
            // Parts are few: the remainder of a 64-bit hash spreads ids evenly.
            (hash % u64::from(parts)) as u32
        })
        .collect();
    Ok(Column::new(PART.into(), ids))
}

/// The working file of part `part` of the `file`th file of input `kind`.
fn part_file(dir: &Path, kind: InputKind, file: usize, part: u32) -> PathBuf {
    dir.join(format!("{kind}-{file}-{part}.parquet"))
}

/// The columns of input `kind` that the patient stages read ([`patient_input`]): a part keeps
/// only these (the long inputs' codes coded: [`PartFiles::coded`]).
fn part_columns(kind: InputKind, columns: &Schema) -> Vec<PlSmallStr> {
    let needed: &[&str] = match kind {
        InputKind::Conditions => &[schema::PATIENT_ID, schema::CONDITION],
        InputKind::Outcomes => &[
            schema::PATIENT_ID,
            schema::INDICATOR,
            schema::VALUE,
            schema::PERIOD,
        ],
        _ => return columns.iter_names().cloned().collect(),
    };
    needed
        .iter()
        .filter(|name| columns.contains(name))
        .map(|name| PlSmallStr::from(*name))
        .collect()
}

/// The accepted rows of input `kind` as the patient stages read them: the registered list
/// with its weight (`enrich::patient_population`), the conditions and outcomes narrowed to
/// their patient and coded value (`segment::long::coded_conditions`, `coded_outcomes` with
/// the run's `outcome_codes`), the outcomes of the run's `period` only (`None`: every row).
/// `coded`: the long inputs' rows are coded already (a part's working files), their outcome
/// slots are the run's and rows of another period are left out ([`PatientInputs::get`]).
fn patient_input(
    kind: InputKind,
    rows: LazyFrame,
    outcomes: (&[String], Option<&str>),
    coded: bool,
) -> LazyFrame {
    let (outcome_codes, period) = outcomes;
    match kind {
        InputKind::Patients => enrich::patient_population(rows),
        InputKind::Conditions | InputKind::Outcomes if coded => rows,
        InputKind::Conditions => segment::long::coded_conditions(rows),
        InputKind::Outcomes => {
            let rows = match period {
                Some(period) => rows.filter(col(schema::PERIOD).eq(lit(period))),
                None => rows,
            };
            segment::long::coded_outcomes(rows, outcome_codes)
        }
        _ => rows,
    }
}

/// `slots` (outcome slots in one file's codes, [`PartFiles::outcome_codes`]) as slots in the
/// run's codes: `run_slots[slot]` for each.
fn run_outcome_slots(slots: Expr, run_slots: Arc<[u32]>) -> Expr {
    slots.map_with_fmt_str(
        move |column: Column| {
            let slots = column.u32()?;
            let mapped: UInt32Chunked = slots
                .iter()
                .map(|slot| slot.and_then(|slot| run_slots.get(slot as usize).copied()))
                .collect();
            Ok(mapped.with_name(column.name().clone()).into_column())
        },
        |_, field| Ok(field.clone()),
        "run_outcome_slots",
    )
}

/// The parts' working folder (`<input>-<file>-<part>.parquet`), removed when dropped: by the
/// [`PartSplit`] if ingest fails, else by the [`PatientInputs`] it became.
pub struct WorkingFolder(PathBuf);

impl Drop for WorkingFolder {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Where ingest writes the patient-keyed inputs' accepted rows, part by part, when the
/// registered list is longer than a part. Become [`PatientInputs`] once ingest is done.
pub struct PartSplit {
    /// One writer per file ingest has read, in order. Before the folder: fields are dropped
    /// in order, and a writer dropped waits for its thread to stop writing into the folder.
    files: Vec<(InputKind, Arc<Mutex<PartWriter>>)>,
    folder: WorkingFolder,
    parts: u32,
}

impl PartSplit {
    /// The split of a registered list of `patients` rows (the patients files' rows, before
    /// any is refused) into parts of at most `per_part`, or `None` when they fit in one.
    ///
    /// # Errors
    /// If the working folder cannot be created.
    pub fn new(dir: &Path, patients: u64, per_part: u64) -> anyhow::Result<Option<Self>> {
        let parts = part_count(patients, per_part);
        if parts <= 1 {
            return Ok(None);
        }
        fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the working folder", dir.display()))?;
        Ok(Some(PartSplit {
            folder: WorkingFolder(dir.to_path_buf()),
            parts,
            files: Vec::new(),
        }))
    }

    /// How many parts.
    pub fn parts(&self) -> u32 {
        self.parts
    }

    /// Where ingest hands the accepted rows of the next file of input `kind`.
    pub fn accepted_rows(&mut self, kind: InputKind) -> SharedAcceptedRows {
        let file = self.files.iter().filter(|(k, _)| *k == kind).count();
        let writer = Arc::new(Mutex::new(PartWriter {
            dir: self.folder.0.clone(),
            kind,
            file,
            parts: self.parts,
            writing: None,
            outcome_codes: Vec::new(),
            outcome_periods: FilePeriods::default(),
        }));
        self.files.push((kind, Arc::clone(&writer) as _));
        writer
    }

    /// The parts written, as the patient stages read them.
    pub fn into_inputs(self) -> PatientInputs {
        let mut files: Vec<(InputKind, usize)> = Vec::new();
        let mut file_codes: Vec<Vec<String>> = Vec::new();
        let mut file_periods: Vec<Vec<String>> = Vec::new();
        let mut periods = OutcomePeriodRows::new();
        for (kind, writer) in &self.files {
            let mut writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
            if *kind == InputKind::Outcomes {
                file_codes.push(std::mem::take(&mut writer.outcome_codes));
                let coded = std::mem::take(&mut writer.outcome_periods);
                for (period, rows) in coded.periods.texts.iter().zip(&coded.rows) {
                    *periods.entry(Some(period.clone())).or_default() += rows;
                }
                if coded.without > 0 {
                    *periods.entry(None).or_default() += coded.without;
                }
                file_periods.push(coded.periods.texts);
            }
            match files.iter_mut().find(|(k, _)| k == kind) {
                Some((_, count)) => *count += 1,
                None => files.push((*kind, 1)),
            }
        }
        let outcome_codes: Vec<String> = file_codes
            .iter()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let run_slots = file_codes
            .iter()
            .map(|codes| {
                codes
                    .iter()
                    .map(|code| {
                        // Every file's codes are among the run's.
                        outcome_codes.binary_search(code).unwrap_or_default() as u32
                    })
                    .collect()
            })
            .collect();
        PatientInputs::Split {
            folder: self.folder,
            parts: self.parts,
            files,
            outcomes: Outcomes {
                codes: outcome_codes,
                periods,
                period: None,
            },
            run_slots,
            file_periods,
        }
    }
}

/// The part files of one input file: its accepted rows' [`part_columns`], each row in its
/// patient's part.
///
/// The working files are Parquet with LZ4 and no statistics: written once and read once,
/// speed matters more than size. They are written on a thread of their own ([`Writing`]):
/// ingest hands over the batches one at a time, and splitting a batch by part and writing it
/// was most of that hand-over (35 of ingest's 43 s at England; benches/RESULTS.md,
/// twenty-sixth round), while the streaming engine waited to check the next batches.
struct PartWriter {
    dir: PathBuf,
    kind: InputKind,
    file: usize,
    parts: u32,
    /// The thread writing the files, from `begin` to `finish`.
    writing: Option<Writing>,
    /// The outcome codes seen (outcomes only), once the file is finished: see
    /// [`PartFiles::outcome_codes`].
    outcome_codes: Vec<String>,
    /// The periods of the outcome rows (outcomes only), once the file is finished.
    outcome_periods: FilePeriods,
}

/// The thread writing an input file's parts: the batches it has still to write, and what it
/// gives back when they are written.
struct Writing {
    batches: SyncSender<DataFrame>,
    thread: JoinHandle<PolarsResult<PartFiles>>,
}

/// The open working files of one input file, and what coding its rows has found.
struct PartFiles {
    kind: InputKind,
    parts: u32,
    columns: Vec<PlSmallStr>,
    writers: Vec<TableWriter>,
    /// The outcome codes seen (outcomes only): an outcome row's slot in the working files is
    /// its code's place here, the same in every part. Read back, the slots are mapped to the
    /// run's codes ([`PatientInputs::get`]).
    outcome_codes: FirstSeen,
    /// The outcome rows' periods (outcomes only).
    outcome_periods: FilePeriods,
}

/// Texts coded in the order first seen: a text's code is its place in `texts`.
#[derive(Debug, Default)]
struct FirstSeen {
    texts: Vec<String>,
    /// The code of each of `texts`.
    codes: HashMap<String, u32, foldhash::fast::FixedState>,
}

impl FirstSeen {
    /// The code of `text`, learnt if new.
    fn code(&mut self, text: &str) -> u32 {
        let texts = &mut self.texts;
        *self.codes.entry(text.to_string()).or_insert_with(|| {
            texts.push(text.to_string());
            texts.len() as u32 - 1
        })
    }
}

/// The periods of one outcomes file's rows: a row's period code in the working files
/// ([`segment::long::OUTCOME_PERIOD`]) is its period's code here. The rows of each are counted
/// as they are coded, so the run's period is chosen, and the rows of the others counted,
/// without reading the rows again.
#[derive(Debug, Default)]
struct FilePeriods {
    periods: FirstSeen,
    /// Rows of each period, by code.
    rows: Vec<u64>,
    /// Rows without a period.
    without: u64,
}

impl FilePeriods {
    /// Count a batch's rows by their period codes.
    fn count(&mut self, codes: &UInt32Chunked) {
        use polars_arrow::array::Array as _;
        self.rows.resize(self.periods.texts.len(), 0);
        for array in codes.downcast_iter() {
            if array.null_count() == 0 {
                // Every row has a period (a file with a `period` column, filled).
                for &code in array.values().iter() {
                    self.rows[code as usize] += 1;
                }
            } else {
                for code in array.iter() {
                    match code {
                        Some(&code) => self.rows[code as usize] += 1,
                        None => self.without += 1,
                    }
                }
            }
        }
    }
}

impl PartFiles {
    /// A batch of accepted rows as the parts hold them: [`part_columns`], with the long
    /// inputs' codes coded (conditions by their bit, outcomes by their slot in
    /// `outcome_codes`). Coded here, each distinct code of a batch is looked up once, and the
    /// working files hold a small integer a row, not a text that each part decodes and looks
    /// up again.
    fn coded(&mut self, rows: &DataFrame) -> PolarsResult<DataFrame> {
        let rows = rows.select(self.columns.iter().cloned())?;
        match self.kind {
            InputKind::Conditions => segment::long::coded_condition_rows(&rows),
            InputKind::Outcomes => {
                let (codes, periods) = (&mut self.outcome_codes, &mut self.outcome_periods);
                let coded = segment::long::coded_outcome_rows(
                    &rows,
                    |code| Some(codes.code(code)),
                    |period| Some(periods.periods.code(period)),
                )?;
                periods.count(coded.column(segment::long::OUTCOME_PERIOD)?.u32()?);
                Ok(coded)
            }
            _ => Ok(rows),
        }
    }

    /// Each row of a batch written to its patient's part.
    fn write(&mut self, rows: &DataFrame) -> PolarsResult<()> {
        let mut rows = self.coded(rows)?;
        let ids = part_ids(rows.column(schema::PATIENT_ID)?, self.parts)?;
        rows.with_column(ids)?;
        for piece in rows.partition_by_stable([PART], true)? {
            let part = piece.column(PART)?.u32()?.get(0).unwrap_or(0) as usize;
            let mut piece = piece.drop(PART)?;
            if let Some(writer) = self.writers.get_mut(part) {
                writer.write_batch(&mut piece)?;
            }
        }
        Ok(())
    }

    /// Every batch has come: the files' last row groups and footers.
    fn finish(&mut self) -> PolarsResult<()> {
        for writer in &mut self.writers {
            writer.finish()?;
        }
        Ok(())
    }
}

impl PartWriter {
    /// Waits for the writing thread to write what it was given and stop: its files, or its
    /// first error.
    fn stop_writing(&mut self) -> PolarsResult<PartFiles> {
        let Some(Writing { batches, thread }) = self.writing.take() else {
            polars::prelude::polars_bail!(ComputeError: "internal: no working files are being written");
        };
        // No more batches: the thread finishes the files once it has written those it has.
        drop(batches);
        thread.join().unwrap_or_else(|_| {
            polars::prelude::polars_bail!(ComputeError: "internal: the thread writing the working files panicked")
        })
    }
}

impl Drop for PartWriter {
    /// A file dropped before `finish` (ingest failed) waits for its thread, so that nothing
    /// writes into the working folder as it is removed.
    fn drop(&mut self) {
        if self.writing.is_some() {
            let _ = self.stop_writing();
        }
    }
}

impl AcceptedRows for PartWriter {
    fn begin(&mut self, columns: &Schema) -> PolarsResult<()> {
        // Started again (a CSV file read again): what was written is discarded.
        if self.writing.is_some() {
            let _ = self.stop_writing();
        }
        self.outcome_codes.clear();
        self.outcome_periods = FilePeriods::default();
        let mut files = PartFiles {
            kind: self.kind,
            parts: self.parts,
            columns: part_columns(self.kind, columns),
            writers: Vec::new(),
            outcome_codes: FirstSeen::default(),
            outcome_periods: FilePeriods::default(),
        };
        let kept = files
            .coded(&DataFrame::empty_with_schema(columns))?
            .schema()
            .clone();
        let options = ParquetWriteOptions {
            compression: ParquetCompression::Lz4Raw,
            statistics: StatisticsOptions::empty(),
            ..Default::default()
        };
        for part in 0..self.parts {
            // Created again when ingest starts over: what was written is discarded.
            let path = part_file(&self.dir, self.kind, self.file, part);
            let file = File::create(&path).map_err(|e| {
                polars::prelude::polars_err!(ComputeError: "{}: cannot create a working file: {e}", path.display())
            })?;
            files.writers.push(TableWriter::parquet(
                Box::new(BufWriter::new(file)),
                &kept,
                &options,
            )?);
        }
        // One batch waits while the thread writes another: the checks go on meanwhile, and
        // at most two batches are held.
        let (batches, to_write) = sync_channel::<DataFrame>(1);
        let thread = std::thread::Builder::new()
            .name("healthgap-working-files".into())
            .spawn(move || {
                for rows in to_write {
                    // An error stops the thread: the next batch handed over finds it.
                    files.write(&rows)?;
                }
                files.finish()?;
                Ok(files)
            })
            .map_err(|e| {
                polars::prelude::polars_err!(ComputeError: "cannot start writing the working files: {e}")
            })?;
        self.writing = Some(Writing { batches, thread });
        Ok(())
    }

    fn write(&mut self, rows: DataFrame) -> PolarsResult<()> {
        let Some(writing) = &self.writing else {
            polars::prelude::polars_bail!(ComputeError: "internal: rows handed over before the working files were begun");
        };
        if writing.batches.send(rows).is_err() {
            // The thread has stopped, on an error: that is this batch's.
            return match self.stop_writing() {
                Err(error) => Err(error),
                Ok(_) => Err(polars::prelude::polars_err!(
                    ComputeError: "internal: the working files' thread stopped early"
                )),
            };
        }
        Ok(())
    }

    fn finish(&mut self) -> PolarsResult<()> {
        let files = self.stop_writing()?;
        self.outcome_codes = files.outcome_codes.texts;
        self.outcome_periods = files.outcome_periods;
        Ok(())
    }
}

/// Rows of each period of the patient outcomes (`None`: rows without one), in period order.
pub type OutcomePeriodRows = BTreeMap<Option<String>, u64>;

/// What a run's patient outcomes hold (their codes and periods) and the period it uses.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Every outcome code, sorted.
    codes: Vec<String>,
    /// Rows of each period.
    periods: OutcomePeriodRows,
    /// The period whose rows are read, once chosen ([`PatientInputs::choose_outcome_period`]);
    /// `None`: every row (every row is of the period used, or none has a period).
    period: Option<String>,
}

/// The periods of a run's patient outcomes and the one it uses, for the manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutcomePeriods {
    /// The period used: the config's `run.outcome_period`, else the latest (`None`: the rows
    /// have no period, and all are used).
    pub used: Option<String>,
    /// Rows of each period, in period order.
    pub periods: Vec<PeriodRows>,
    /// Rows of the other periods (and without one, when a period is used): not read.
    pub rows_not_used: u64,
}

impl OutcomePeriods {
    /// The warning for the run, when rows of other periods are not used.
    pub fn warning(&self) -> Option<String> {
        let used = self.used.as_deref()?;
        if self.rows_not_used == 0 {
            return None;
        }
        let rows = |n: u64| format!("{n} row{}", if n == 1 { "" } else { "s" });
        let periods: Vec<String> = self
            .periods
            .iter()
            .map(|PeriodRows { period, rows: n }| {
                format!("{}: {}", period.as_deref().unwrap_or("none"), rows(*n))
            })
            .collect();
        Some(format!(
            "the patient outcomes hold {} periods ({}): only {used} is used, and {} of the others {} not (run.outcome_period chooses the period; the latest is the default)",
            self.periods.len(),
            periods.join("; "),
            rows(self.rows_not_used),
            if self.rows_not_used == 1 { "is" } else { "are" }
        ))
    }
}

/// The rows of one period of the patient outcomes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PeriodRows {
    /// The period (`null`: rows without one).
    pub period: Option<String>,
    /// Its rows.
    pub rows: u64,
}

/// The patient-keyed inputs of a run, whole or split into parts.
pub enum PatientInputs {
    /// One part: the inputs as ingested (accepted rows).
    Whole {
        /// The accepted rows of each input.
        inputs: Vec<(InputKind, LazyFrame)>,
        /// The outcomes' codes and periods.
        outcomes: Outcomes,
    },
    /// Several parts, written by ingest under a working folder that is removed when this is
    /// dropped.
    Split {
        /// The working folder.
        folder: WorkingFolder,
        /// How many parts.
        parts: u32,
        /// The inputs, in the order they were read, with how many files each had.
        files: Vec<(InputKind, usize)>,
        /// The outcomes' codes and periods.
        outcomes: Outcomes,
        /// For each outcomes file, the run's slot (in `outcomes.codes`) of each slot its
        /// working files hold.
        run_slots: Vec<Arc<[u32]>>,
        /// For each outcomes file, the periods its working files' period codes stand for.
        file_periods: Vec<Vec<String>>,
    },
}

impl PatientInputs {
    /// The inputs in one part: each kind's accepted rows (`None` when the run has no such
    /// input), and the outcome codes and periods found in them.
    ///
    /// # Errors
    /// If the outcome codes cannot be read.
    pub fn whole(inputs: Vec<(InputKind, LazyFrame)>) -> anyhow::Result<Self> {
        let mut outcomes = Outcomes::default();
        if let Some((_, rows)) = inputs.iter().find(|(k, _)| *k == InputKind::Outcomes) {
            let mut rows = rows.clone();
            let period = if rows.collect_schema()?.contains(schema::PERIOD) {
                col(schema::PERIOD)
            } else {
                polars::prelude::lit(polars::prelude::NULL).cast(polars::prelude::DataType::String)
            };
            let found = crate::lazy::collect_streaming(
                rows.group_by([col(schema::INDICATOR), period.alias(schema::PERIOD)])
                    .agg([polars::prelude::len().alias("rows")]),
            )
            .context("listing outcome indicators and periods")?;
            let mut read = || -> PolarsResult<()> {
                let codes = found.column(schema::INDICATOR)?.str()?;
                let periods = found.column(schema::PERIOD)?.str()?;
                let rows = found
                    .column("rows")?
                    .cast(&polars::prelude::DataType::UInt64)?;
                for ((code, period), rows) in
                    codes.iter().zip(periods.iter()).zip(rows.u64()?.iter())
                {
                    if let Some(code) = code {
                        outcomes.codes.push(code.to_string());
                    }
                    *outcomes
                        .periods
                        .entry(period.map(str::to_string))
                        .or_default() += rows.unwrap_or(0);
                }
                Ok(())
            };
            read().context("listing outcome indicators and periods")?;
            outcomes.codes.sort();
            outcomes.codes.dedup();
        }
        Ok(PatientInputs::Whole { inputs, outcomes })
    }

    /// How many parts.
    pub fn parts(&self) -> u32 {
        match self {
            PatientInputs::Whole { .. } => 1,
            PatientInputs::Split { parts, .. } => *parts,
        }
    }

    fn outcomes(&self) -> &Outcomes {
        match self {
            PatientInputs::Whole { outcomes, .. } | PatientInputs::Split { outcomes, .. } => {
                outcomes
            }
        }
    }

    fn outcomes_mut(&mut self) -> &mut Outcomes {
        match self {
            PatientInputs::Whole { outcomes, .. } | PatientInputs::Split { outcomes, .. } => {
                outcomes
            }
        }
    }

    /// Every outcome code in the outcomes input, sorted: every part has a column for each,
    /// and the outcome rows are coded by their slot in it.
    pub fn outcome_codes(&self) -> &[String] {
        &self.outcomes().codes
    }

    /// Choose the period of the patient outcomes the run reads: `wanted` (the config's
    /// `run.outcome_period`), else the latest period (periods such as `2025/26` sort as
    /// text). Rows of other periods, and rows without one, are then not read; rows that have
    /// no period at all are all read.
    ///
    /// # Errors
    /// If `wanted` is not among the outcomes' periods (a message for the user).
    pub fn choose_outcome_period(
        &mut self,
        wanted: Option<&str>,
    ) -> Result<OutcomePeriods, String> {
        let outcomes = self.outcomes_mut();
        let latest = outcomes.periods.keys().flatten().next_back().cloned();
        let used = match wanted {
            Some(wanted) if outcomes.periods.contains_key(&Some(wanted.to_string())) => {
                Some(wanted.to_string())
            }
            Some(wanted) => {
                let present: Vec<&str> = outcomes
                    .periods
                    .keys()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                return Err(format!(
                    "run.outcome_period = \"{wanted}\": the patient outcomes have no rows of that period (their periods: {})",
                    if present.is_empty() {
                        "none".to_string()
                    } else {
                        present.join(", ")
                    }
                ));
            }
            None => latest,
        };
        let rows_not_used = match &used {
            Some(used) => outcomes
                .periods
                .iter()
                .filter(|(period, _)| period.as_deref() != Some(used.as_str()))
                .map(|(_, rows)| rows)
                .sum(),
            None => 0,
        };
        // Rows all of the used period are read as they are, without a filter.
        outcomes.period = used.clone().filter(|_| rows_not_used > 0);
        Ok(OutcomePeriods {
            used,
            periods: outcomes
                .periods
                .iter()
                .map(|(period, rows)| PeriodRows {
                    period: period.clone(),
                    rows: *rows,
                })
                .collect(),
            rows_not_used,
        })
    }

    /// Input `kind` of part `part` as the patient stages read it (`patient_input`); `None`
    /// when the run has no such input.
    ///
    /// # Errors
    /// If a part's file cannot be scanned.
    pub fn get(&self, kind: InputKind, part: u32) -> PolarsResult<Option<LazyFrame>> {
        let period = self.outcomes().period.as_deref();
        let rows = match self {
            PatientInputs::Whole { inputs, .. } => inputs
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, frame)| frame.clone()),
            PatientInputs::Split {
                folder,
                files,
                run_slots,
                file_periods,
                ..
            } => {
                let Some(&(_, count)) = files.iter().find(|(k, _)| *k == kind) else {
                    return Ok(None);
                };
                let scans = (0..count)
                    .map(|file| {
                        let path = part_file(&folder.0, kind, file, part);
                        let mut scan = LazyFrame::scan_parquet(
                            PlRefPath::new(path.to_string_lossy().as_ref()),
                            ScanArgsParquet::default(),
                        )?;
                        if kind != InputKind::Outcomes {
                            return Ok(scan);
                        }
                        // The run's period only, by its code in this file (none: no rows).
                        if let Some(period) = period {
                            let code = file_periods
                                .get(file)
                                .and_then(|periods| periods.iter().position(|p| p == period));
                            scan = scan.filter(match code {
                                Some(code) => {
                                    col(segment::long::OUTCOME_PERIOD).eq(lit(code as u32))
                                }
                                None => lit(false),
                            });
                        }
                        // Slots already the run's (one file, say) are read as they are.
                        if let Some(slots) = run_slots.get(file) {
                            let same = slots.iter().enumerate().all(|(at, &s)| at == s as usize);
                            if !same {
                                let slot = segment::long::OUTCOME_SLOT;
                                scan = scan.with_column(
                                    run_outcome_slots(col(slot), Arc::clone(slots)).alias(slot),
                                );
                            }
                        }
                        Ok(scan)
                    })
                    .collect::<PolarsResult<Vec<_>>>()?;
                crate::pipeline::ingest::stacked(scans)?
            }
        };
        let coded = matches!(self, PatientInputs::Split { .. });
        Ok(rows.map(|rows| patient_input(kind, rows, (self.outcome_codes(), period), coded)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{DataType, IntoLazy, df, lit};

    use crate::conditions::CONDITIONS;

    #[test]
    fn each_part_gives_results_in_part_order() {
        let squares = each_part(7, |part| {
            // Later parts finish first, whichever worker takes them.
            std::thread::sleep(std::time::Duration::from_millis(u64::from(7 - part)));
            Ok(part * part)
        })
        .expect("no part fails");
        assert_eq!(squares, vec![0, 1, 4, 9, 16, 25, 36]);
        assert_eq!(each_part(0, Ok).expect("no parts"), Vec::<u32>::new());
    }

    #[test]
    fn each_part_returns_the_first_failing_parts_error() {
        let result = each_part(9, |part| {
            if part == 3 || part == 5 {
                std::thread::sleep(std::time::Duration::from_millis(u64::from(9 - part)));
                anyhow::bail!("part {part} failed");
            }
            Ok(part)
        });
        let error = result.expect_err("two parts fail");
        assert_eq!(error.to_string(), "part 3 failed");
    }

    #[test]
    fn part_counts() {
        assert_eq!(part_count(0, 4_000_000), 1);
        assert_eq!(part_count(4_000_000, 4_000_000), 1);
        assert_eq!(part_count(4_000_001, 4_000_000), 2);
        assert_eq!(part_count(59_291_070, 4_000_000), 15);
    }

    fn ids(frame: &DataFrame) -> Vec<String> {
        let mut ids: Vec<String> = frame
            .column(schema::PATIENT_ID)
            .expect("ids")
            .str()
            .expect("text")
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Hand `rows` to `accepted` as ingest does, in batches of `batch` rows.
    fn hand_over(accepted: &SharedAcceptedRows, rows: &DataFrame, batch: usize) {
        let mut accepted = accepted.lock().expect("writer");
        accepted.begin(rows.schema()).expect("begin");
        let mut offset = 0;
        while offset < rows.height() {
            accepted
                .write(rows.slice(offset as i64, batch))
                .expect("write");
            offset += batch;
        }
        accepted.finish().expect("finish");
    }

    fn read(inputs: &PatientInputs, kind: InputKind, part: u32) -> DataFrame {
        inputs
            .get(kind, part)
            .expect("scan")
            .expect("input")
            .collect()
            .expect("read")
    }

    #[test]
    fn every_row_of_a_patient_lands_in_the_same_part_of_every_input() {
        let dir = tempfile::tempdir().expect("temp dir");
        let patient_ids: Vec<String> = (0..5000).map(|i| format!("P{i:05}")).collect();
        let patients = df![
            schema::PATIENT_ID => &patient_ids,
            schema::AGE => (0..5000i64).map(|i| i % 90).collect::<Vec<_>>(),
        ]
        .expect("patients");
        // Three outcome rows per patient, in another order than the patients, in two files.
        let outcome_ids: Vec<String> = (0..15000)
            .map(|i| patient_ids[(i * 7) % 5000].clone())
            .collect();
        let codes = ["bp_controlled", "smoker", "flu"];
        let outcomes = df![
            schema::PATIENT_ID => &outcome_ids,
            schema::INDICATOR => (0..15000).map(|i| codes[i % 3]).collect::<Vec<_>>(),
            schema::VALUE => (0..15000).map(f64::from).collect::<Vec<_>>(),
            "unused" => (0..15000).map(|i| i % 2 == 0).collect::<Vec<_>>(),
        ]
        .expect("outcomes");
        let work = dir.path().join("parts");
        let mut split = PartSplit::new(&work, 5000, 1250)
            .expect("split")
            .expect("4 parts");
        assert_eq!(split.parts(), 4);
        hand_over(&split.accepted_rows(InputKind::Patients), &patients, 700);
        // The files see the codes first in different orders (bp_controlled, smoker, flu; then
        // smoker, flu, bp_controlled), neither of them sorted.
        hand_over(
            &split.accepted_rows(InputKind::Outcomes),
            &outcomes.slice(0, 9001),
            1000,
        );
        hand_over(
            &split.accepted_rows(InputKind::Outcomes),
            &outcomes.slice(9001, 5999),
            4096,
        );
        // Two condition rows per patient, one of them a code outside the vocabulary.
        let condition_codes = [CONDITIONS[3].code, "not_a_condition", CONDITIONS[0].code];
        let conditions = df![
            schema::PATIENT_ID => (0..10000).map(|i| patient_ids[i / 2].clone()).collect::<Vec<_>>(),
            schema::CONDITION => (0..10000).map(|i| condition_codes[i % 3]).collect::<Vec<_>>(),
        ]
        .expect("conditions");
        hand_over(
            &split.accepted_rows(InputKind::Conditions),
            &conditions,
            3000,
        );
        // The working files hold the codes coded: a byte a condition, a slot an outcome.
        let held = |kind: InputKind| {
            LazyFrame::scan_parquet(
                PlRefPath::new(part_file(&work, kind, 0, 1).to_string_lossy().as_ref()),
                ScanArgsParquet::default(),
            )
            .and_then(|mut scan| scan.collect_schema())
            .expect("a working file")
        };
        assert_eq!(
            held(InputKind::Conditions).get(segment::long::CONDITION_BIT),
            Some(&DataType::UInt8)
        );
        assert_eq!(
            held(InputKind::Outcomes).get(segment::long::OUTCOME_SLOT),
            Some(&DataType::UInt32)
        );
        assert!(!held(InputKind::Outcomes).contains(schema::INDICATOR));
        let inputs = split.into_inputs();
        assert_eq!(inputs.parts(), 4);
        assert_eq!(
            inputs.outcome_codes(),
            ["bp_controlled", "flu", "smoker"],
            "every code of both files, sorted"
        );
        let mut all_patients = Vec::new();
        let mut outcome_rows = 0;
        let mut condition_rows = 0;
        let mut values = 0.0;
        for part in 0..4 {
            let p = read(&inputs, InputKind::Patients, part);
            let o = read(&inputs, InputKind::Outcomes, part);
            let population = enrich::patient_population(patients.clone().lazy())
                .collect_schema()
                .expect("columns");
            assert_eq!(**p.schema(), *population, "as the patient stages read them");
            // Roughly a quarter each (5000 ids over 4 parts).
            assert!(
                (1000..1500).contains(&p.height()),
                "part {part}: {}",
                p.height()
            );
            let mut in_part = ids(&o);
            in_part.dedup();
            assert_eq!(
                in_part,
                ids(&p),
                "part {part}: outcomes of its patients only"
            );
            // Coded by slot in the sorted codes: row i has code i % 3.
            let coded = o
                .lazy()
                .select([
                    col(segment::long::OUTCOME_SLOT),
                    col(schema::VALUE).cast(DataType::Int64).alias("row"),
                ])
                .collect()
                .expect("slots");
            for (slot, row) in coded[segment::long::OUTCOME_SLOT]
                .u32()
                .expect("slot")
                .iter()
                .zip(coded["row"].i64().expect("row").iter())
            {
                let row = row.expect("row");
                let code = codes[(row % 3) as usize];
                assert_eq!(
                    slot.map(|s| inputs.outcome_codes()[s as usize].as_str()),
                    Some(code)
                );
                values += row as f64;
            }
            outcome_rows += coded.height();
            // Each patient's two conditions: the code of row i is i % 3, its patient i / 2.
            let c = read(&inputs, InputKind::Conditions, part);
            let expected = segment::long::coded_conditions(
                conditions.clone().lazy().filter(
                    col(schema::PATIENT_ID).is_in(
                        lit(p
                            .column(schema::PATIENT_ID)
                            .expect("ids")
                            .as_materialized_series()
                            .clone())
                        .implode(false),
                        false,
                    ),
                ),
            )
            .collect()
            .expect("coded as a whole list is");
            assert!(c.equals_missing(&expected), "part {part}: {c} {expected}");
            condition_rows += c.height();
            all_patients.extend(ids(&p));
        }
        all_patients.sort();
        assert_eq!(all_patients, patient_ids, "every patient once");
        assert_eq!(
            outcome_rows, 15000,
            "every outcome row once, from both files"
        );
        assert_eq!(values, (0..15000).map(f64::from).sum::<f64>());
        assert_eq!(condition_rows, 10000, "every condition row once");
        assert!(
            inputs
                .get(InputKind::PracticeLsoa, 0)
                .expect("none")
                .is_none(),
            "an input the split was not given"
        );
        drop(inputs);
        assert!(!work.exists(), "the working folder goes with the parts");
    }

    /// Outcome rows of two periods in two files (each file coding the periods in its own
    /// order, one with rows without a period): the run reads the rows of one period, whole or
    /// split alike, and counts the others.
    #[test]
    fn only_the_run_periods_outcome_rows_are_read() {
        let outcomes = |periods: &[Option<&str>]| {
            let n = periods.len();
            df![
                schema::PATIENT_ID => (0..n).map(|i| format!("P{}", i % 10)).collect::<Vec<_>>(),
                schema::INDICATOR => vec!["smoker"; n],
                schema::VALUE => vec![1.0; n],
                schema::PERIOD => periods,
            ]
            .expect("outcomes")
        };
        let (old, new) = (Some("2023/24"), Some("2024/25"));
        let files = [
            outcomes(&[new, old, new, new, old, new]),
            outcomes(&[old, None, old, old]),
        ];
        let rows_read = |inputs: &PatientInputs| -> usize {
            (0..inputs.parts())
                .map(|part| read(inputs, InputKind::Outcomes, part).height())
                .sum()
        };
        let dir = tempfile::tempdir().expect("temp dir");
        for shape in ["whole", "split"] {
            let make = || match shape {
                "whole" => PatientInputs::whole(vec![(
                    InputKind::Outcomes,
                    crate::pipeline::ingest::stacked(
                        files.iter().map(|f| f.clone().lazy()).collect(),
                    )
                    .expect("stacked")
                    .expect("rows"),
                )])
                .expect("whole"),
                _ => {
                    let work = dir.path().join("parts");
                    let mut split = PartSplit::new(&work, 10, 5).expect("split").expect("2");
                    for file in &files {
                        hand_over(&split.accepted_rows(InputKind::Outcomes), file, 3);
                    }
                    split.into_inputs()
                }
            };
            let mut inputs = make();
            let latest = inputs.choose_outcome_period(None).expect("latest");
            assert_eq!(latest.used.as_deref(), new, "{shape}");
            let by_period: Vec<(Option<&str>, u64)> = latest
                .periods
                .iter()
                .map(|p| (p.period.as_deref(), p.rows))
                .collect();
            assert_eq!(by_period, [(None, 1), (old, 5), (new, 4)], "{shape}");
            assert_eq!(latest.rows_not_used, 6, "{shape}");
            assert_eq!(rows_read(&inputs), 4, "{shape}");
            assert!(
                latest
                    .warning()
                    .is_some_and(|w| w.contains("only 2024/25 is used"))
            );

            let mut inputs = make();
            let named = inputs.choose_outcome_period(old).expect("named");
            assert_eq!((named.used.as_deref(), named.rows_not_used), (old, 5));
            assert_eq!(rows_read(&inputs), 5, "{shape}");

            let mut inputs = make();
            let absent = inputs.choose_outcome_period(Some("1999/00"));
            assert!(
                absent.is_err_and(|e| e.contains("their periods: 2023/24, 2024/25")),
                "{shape}"
            );
        }
    }

    /// A split of a 10-row list into two parts, under `dir`/parts.
    fn split_in_two(dir: &tempfile::TempDir) -> (PathBuf, PartSplit) {
        let work = dir.path().join("parts");
        let split = PartSplit::new(&work, 10, 5)
            .expect("split")
            .expect("2 parts");
        (work, split)
    }

    #[test]
    fn starting_a_file_again_discards_what_was_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, mut split) = split_in_two(&dir);
        let first = df![schema::PATIENT_ID => ["A", "B", "C"]].expect("frame");
        let again = df![schema::PATIENT_ID => ["A", "D"]].expect("frame");
        let accepted = split.accepted_rows(InputKind::Patients);
        accepted
            .lock()
            .expect("writer")
            .begin(first.schema())
            .expect("begin");
        accepted
            .lock()
            .expect("writer")
            .write(first.clone())
            .expect("write");
        // Ingest starts over (a CSV file read again record by record).
        hand_over(&accepted, &again, 10);
        let inputs = split.into_inputs();
        let mut read_back: Vec<String> = (0..2)
            .flat_map(|part| ids(&read(&inputs, InputKind::Patients, part)))
            .collect();
        read_back.sort();
        assert_eq!(read_back, ["A", "D"]);
    }

    #[test]
    fn a_batch_the_writing_thread_cannot_write_fails_the_file() {
        // The rows are written on a thread of their own: a batch it fails on (here one
        // without the patient id) must fail the file, at a later batch or at the end, with
        // the thread's error, and a split dropped then must still remove its parts.
        let dir = tempfile::tempdir().expect("temp dir");
        let (work, mut split) = split_in_two(&dir);
        let good =
            df![schema::PATIENT_ID => ["A", "B", "C"], schema::AGE => [1i64, 2, 3]].expect("frame");
        let shared = split.accepted_rows(InputKind::Patients);
        let mut accepted = shared.lock().expect("writer");
        accepted.begin(good.schema()).expect("begin");
        let without_ids = good.drop(schema::PATIENT_ID).expect("frame");
        let mut outcome = accepted.write(without_ids);
        for _ in 0..3 {
            if outcome.is_err() {
                break;
            }
            outcome = accepted.write(good.clone());
        }
        let error = outcome
            .and_then(|()| accepted.finish())
            .expect_err("the file fails");
        assert!(
            error.to_string().contains(schema::PATIENT_ID),
            "the thread's own error: {error}"
        );
        drop(accepted);
        drop(shared);
        drop(split);
        assert!(!work.exists(), "a failed ingest leaves no working files");
    }

    #[test]
    fn a_split_dropped_before_ingest_is_done_removes_its_parts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (work, mut split) = split_in_two(&dir);
        hand_over(
            &split.accepted_rows(InputKind::Patients),
            &df![schema::PATIENT_ID => ["A", "B", "C"]].expect("frame"),
            2,
        );
        assert!(work.join("patients-0-0.parquet").exists());
        drop(split);
        assert!(!work.exists(), "a failed ingest leaves no working files");
    }

    #[test]
    fn one_part_keeps_the_inputs_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path().join("parts");
        assert!(
            PartSplit::new(&work, 4, 4).expect("no split").is_none(),
            "a list of one part is not split"
        );
        assert!(!work.exists());
        let patients = df![schema::PATIENT_ID => ["A", "B"]].expect("frame");
        let whole = PatientInputs::whole(vec![(InputKind::Patients, patients.clone().lazy())])
            .expect("whole");
        assert_eq!(whole.parts(), 1);
        assert!(whole.outcome_codes().is_empty());
        let got = read(&whole, InputKind::Patients, 0);
        let expected = enrich::patient_population(patients.lazy())
            .collect()
            .expect("population");
        assert!(got.equals_missing(&expected));
    }
}
