//! synth: synthetic registered lists, conditions and outcomes with a known truth.
//!
//! Patient-level extracts are never public, so every demo, test and benchmark of the
//! patient-level path runs on what this module generates (DESIGN §6, issue 4). It is grounded in
//! the real frames of a config (`frames`): real practices with their list sizes, PCN and ICB,
//! real LSOAs with their deprivation; and it plants known deprivation gradients so that tests
//! can check the pipeline recovers them.
//!
//! How a run goes, and where each part lives:
//!
//! 1. `frames` reads the real inputs through the ingest readers of the config.
//! 2. `selection` picks the practices (`--scale`, `--pcn`, `--icb`) and list sizes
//!    (`--patients`).
//! 3. `catchment` locates every LSOA in its ICB (`crate::geometry`) and fits every practice's
//!    catchment so that its population-weighted IMD score is its published one.
//! 4. `simulate` calibrates the models (`model`, `population`, `ethnicity`, `flags`,
//!    `conditions`, `outcomes`) and draws each practice's patients from its own random stream
//!    (`seeding`), practices in parallel.
//! 5. `writer` streams the tables to disk in batches of practices, in practice-code order,
//!    writes the practice × LSOA aggregate file, `truth.json` (`truth`, with the expected
//!    values of `expected`) and a config over it all (`run_config`).
//!
//! # Output (in `--out DIR`)
//!
//! | file | grain | columns |
//! |---|---|---|
//! | `patients` | one row per patient | `patient_id, practice_code, lsoa_code, sex, age, ethnicity`, the flags of `schema::PATIENT_FLAGS` |
//! | `conditions` | patient × condition | `patient_id, condition, diagnosed_on` |
//! | `outcomes` | patient × indicator | `patient_id, indicator, value, period` |
//! | `practice_lsoa` | practice × LSOA × sex | NHS Digital headers: `PUBLICATION, EXTRACT_DATE, PRACTICE_CODE, PRACTICE_NAME, LSOA_CODE, SEX, NUMBER_OF_PATIENTS` |
//! | `truth.json` | the run | seed, arguments, every model, planted effects, expected values, SII/RII |
//! | `healthgap.toml` | the run | a config over these files and the reference data |
//!
//! # Conventions
//!
//! - **Outcome rows.** A binary outcome (`death_12m`, `bp_controlled`, `flu_vaccinated`,
//!   `cervical_screened`, `bowel_screened`, `breast_screened`, `current_smoker`) has a row for
//!   every eligible patient with value 0 or 1. A count outcome (`emergency_admissions`,
//!   `ae_attendances`) has a row for every patient with a count of at least 1; no row means 0.
//!   Codes, kinds and denominators are in `crate::indicators`. The `period` is the 12 months to
//!   the extract date (`2022-02-01/2023-01-31`).
//! - **Deprivation.** Every model uses the national IoD2019 decile of the patient's LSOA 2011
//!   (1 = most deprived); a planted effect is an odds or rate ratio per decile step toward more
//!   deprived (`outcomes`), recorded in `truth.json` with the SII and RII it implies.
//! - **Determinism.** Same seed, arguments and reference data → byte-identical files, on any
//!   number of threads: each practice draws from its own stream, batches are written in
//!   practice-code order, and nothing depends on the clock or the output folder.
//! - **Memory.** Bounded by two batches of about [`BATCH_PATIENTS`] patients (one being drawn,
//!   one being written) plus the catchments of England's practices (a few tens of MB).

pub mod catchment;
pub mod conditions;
pub mod ethnicity;
pub mod expected;
pub mod flags;
pub mod frames;
pub mod model;
pub mod outcomes;
pub mod population;
pub mod run_config;
pub mod seeding;
pub mod selection;
pub mod simulate;
pub mod truth;
pub mod writer;

use std::path::PathBuf;
use std::time::Instant;

use chrono::{Months, NaiveDate};
use rayon::prelude::*;

pub use selection::{Scale, Selection};
pub use writer::OutputFormat;

use crate::config::Config;
use crate::ingest::InputError;
use crate::output::Printer;
use simulate::{Models, PracticeOutput, Simulation};

/// Patients per batch: each batch is drawn in parallel and written as one row group.
pub const BATCH_PATIENTS: u64 = 250_000;

/// Something that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The config does not name an input the generator needs.
    #[error(
        "config {} does not name {}, which the generator needs (see healthgap.toml)",
        config.display(),
        missing.join(", ")
    )]
    MissingInputs {
        /// The config.
        config: PathBuf,
        /// What is missing.
        missing: Vec<String>,
    },
    /// An input cannot be read or has too many rejects.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The arguments pick nothing (unknown PCN or ICB, `--patients 0`).
    #[error("{0}")]
    Selection(String),
    /// The reference data do not fit together.
    #[error("{0}")]
    Data(String),
    /// polars failed.
    #[error("{context}: {}", crate::ingest::short_polars_message(source))]
    Polars {
        /// What was being done.
        context: String,
        /// polars' error.
        source: polars::prelude::PolarsError,
    },
    /// The operating system failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl SynthError {
    pub(crate) fn polars(context: impl Into<String>, source: polars::prelude::PolarsError) -> Self {
        SynthError::Polars {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SynthError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether a person must fix a file, a config or a flag (exit code 2), rather than an
    /// internal or environment failure.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            SynthError::MissingInputs { .. }
                | SynthError::Input(_)
                | SynthError::Selection(_)
                | SynthError::Data(_)
        )
    }
}

/// What to generate, resolved from the command line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settings {
    /// The seed.
    pub seed: u64,
    /// How much of England.
    pub scale: Scale,
    /// Total patients (every list scaled), or real list sizes.
    pub patients: Option<u64>,
    /// The PCN, at PCN scale (else the median PCN).
    pub pcn: Option<String>,
    /// The ICB, at ICB scale (else the median ICB).
    pub icb: Option<String>,
    /// Table format.
    pub format: OutputFormat,
    /// The config naming the reference data, as given.
    pub config: PathBuf,
    /// The output folder (not recorded in `truth.json`: moving a run must not change it).
    #[serde(skip)]
    pub out: PathBuf,
}

/// One file written.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenFile {
    /// The file.
    pub path: PathBuf,
    /// Rows (tables) or `None` (documents).
    pub rows: Option<u64>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// What was generated.
    pub selection: Selection,
    /// Files written, in order.
    pub files: Vec<WrittenFile>,
    /// Notes on the reference data (practices left out).
    pub notes: Vec<String>,
    /// The truth (for a summary of the plant).
    pub truth: truth::Truth,
    /// Seconds spent reading, fitting and generating.
    pub seconds: Timings,
}

/// Wall-clock seconds per step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Reading the reference data.
    pub read: f64,
    /// Catchments and calibration.
    pub model: f64,
    /// Drawing and writing patients.
    pub generate: f64,
}

/// The `period` of outcome rows: the 12 months to the day before the extract date.
pub fn period(extract_date: NaiveDate) -> String {
    let start = extract_date
        .checked_sub_months(Months::new(12))
        .unwrap_or(extract_date);
    let end = extract_date.pred_opt().unwrap_or(extract_date);
    format!("{start}/{end}")
}

/// Generate a run into `settings.out`.
///
/// # Errors
/// [`SynthError`]: missing or unreadable inputs, an empty selection, or a failure to write.
pub fn generate(
    settings: &Settings,
    config: &Config,
    printer: &Printer,
) -> Result<Summary, SynthError> {
    let started = Instant::now();
    let spinner = printer.spinner("reading the reference data");
    let reference = frames::load(config);
    spinner.finish_and_clear();
    let reference = reference?;
    let selection = selection::select(
        &reference,
        settings.scale,
        settings.pcn.as_deref(),
        settings.icb.as_deref(),
        settings.patients,
    )?;
    let read = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let spinner = printer.spinner("fitting catchments");
    let catchments = catchment::build(&reference, settings.seed);
    spinner.finish_and_clear();
    let catchments = catchments?;
    let models = Models::calibrate(&reference, &catchments)?;
    let model_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    std::fs::create_dir_all(&settings.out)
        .map_err(|e| SynthError::io(format!("creating {}", settings.out.display()), e))?;
    let period = period(reference.extract_date);
    let simulation = Simulation {
        reference: &reference,
        catchments: &catchments,
        models: &models,
        seed: settings.seed,
        extract_day: days_since_epoch(reference.extract_date),
    };
    let (mut files, counts) = write_patients(settings, &simulation, &selection, &period, printer)?;
    let (path, rows) =
        writer::write_practice_lsoa(&settings.out, settings.format, &reference, &counts)?;
    files.push(WrittenFile {
        path,
        rows: Some(rows),
    });
    let generate_seconds = started.elapsed().as_secs_f64();

    let truth = truth::truth(&truth::TruthInputs {
        reference: &reference,
        catchments: &catchments,
        models: &models,
        selection: &selection,
        settings,
        period: &period,
    });
    files.push(WrittenFile {
        path: writer::write_truth(&settings.out, &truth)?,
        rows: None,
    });
    files.push(WrittenFile {
        path: run_config::write_config(&settings.out, settings.format, config, settings.seed)?,
        rows: None,
    });
    Ok(Summary {
        selection,
        files,
        notes: reference.dropped.clone(),
        truth,
        seconds: Timings {
            read,
            model: model_seconds,
            generate: generate_seconds,
        },
    })
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((date - epoch).num_days()).unwrap_or(0)
}

/// Each practice's counts by LSOA and sex, for the aggregate file.
type PracticeCounts = Vec<(usize, Vec<writer::LsoaCount>)>;

/// A batch: `(practice, patients, first sequence number)`.
type Batch = Vec<(usize, u32, u64)>;

/// Split the selection into batches of about [`BATCH_PATIENTS`] patients, in order, numbering
/// patients consecutively across the run.
fn batches(selection: &Selection) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut current: Batch = Vec::new();
    let mut in_batch = 0u64;
    let mut sequence = 0u64;
    for &(practice, patients) in &selection.practices {
        current.push((practice, patients, sequence));
        sequence += u64::from(patients);
        in_batch += u64::from(patients);
        if in_batch >= BATCH_PATIENTS {
            batches.push(std::mem::take(&mut current));
            in_batch = 0;
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Draw and write the three patient-level tables; returns the files and each practice's
/// counts by LSOA and sex (for the aggregate file).
fn write_patients(
    settings: &Settings,
    simulation: &Simulation<'_>,
    selection: &Selection,
    period: &str,
    printer: &Printer,
) -> Result<(Vec<WrittenFile>, PracticeCounts), SynthError> {
    let empty = writer::batch_frames(
        &[],
        simulation.reference,
        simulation.models,
        settings.seed,
        period,
    )?;
    let dir = &settings.out;
    let format = settings.format;
    let mut patients =
        writer::TableWriter::create(dir, writer::PATIENTS, format, empty.patients.schema())?;
    let mut conditions =
        writer::TableWriter::create(dir, writer::CONDITIONS, format, empty.conditions.schema())?;
    let mut outcomes =
        writer::TableWriter::create(dir, writer::OUTCOMES, format, empty.outcomes.schema())?;
    let bar = printer.progress(selection.patients, "patients");
    let mut counts = Vec::with_capacity(selection.practices.len());

    // Draw the next batch (practices in parallel) while this thread writes the last one; the
    // channel holds one batch, so at most two are in memory.
    let (sender, receiver) =
        std::sync::mpsc::sync_channel::<Result<Vec<PracticeOutput>, SynthError>>(1);
    let all_batches = batches(selection);
    std::thread::scope(|scope| -> Result<(), SynthError> {
        scope.spawn(move || {
            for batch in all_batches {
                let drawn: Result<Vec<PracticeOutput>, SynthError> = batch
                    .par_iter()
                    .map(|&(practice, n, first)| simulation.practice(practice, n, first))
                    .collect();
                if sender.send(drawn).is_err() {
                    // The writer stopped (an error): stop drawing.
                    break;
                }
            }
        });
        for drawn in receiver {
            let drawn = drawn?;
            let frames = writer::batch_frames(
                &drawn,
                simulation.reference,
                simulation.models,
                settings.seed,
                period,
            )?;
            let height = frames.patients.height() as u64;
            patients.write(frames.patients)?;
            conditions.write(frames.conditions)?;
            outcomes.write(frames.outcomes)?;
            counts.extend(drawn.iter().map(|o| (o.practice, writer::lsoa_counts(o))));
            bar.inc(height);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let mut files = Vec::new();
    for table in [patients, conditions, outcomes] {
        let (path, rows) = table.finish()?;
        files.push(WrittenFile {
            path,
            rows: Some(rows),
        });
    }
    Ok((files, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_the_twelve_months_to_the_extract_date() {
        let date = NaiveDate::from_ymd_opt(2023, 2, 1).expect("date");
        assert_eq!(period(date), "2022-02-01/2023-01-31");
    }
}
