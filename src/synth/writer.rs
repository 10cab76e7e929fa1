//! Writing a run: the patient, condition and outcome tables in chunks, the practice × LSOA
//! aggregate file and `truth.json` (the config beside them is `super::run_config`).
//!
//! Owns the output files and their columns. Each table is written batch by batch (polars'
//! batched Parquet writer: one row group per batch of practices, zstd; or CSV with one header),
//! to `NAME.tmp` first and renamed when complete, so memory stays bounded by a batch and a
//! failed run leaves no file that looks finished. Column names are the `schema` constants, so
//! the files read back through the ingest contracts (`patients`, `conditions`, `outcomes`,
//! `practice_lsoa`) with no alias needed; the aggregate file carries NHS Digital's published
//! headers instead, as the real file does.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::SynthError;
use super::ethnicity::ETHNIC_CODES;
use super::frames::Reference;
use super::seeding::patient_id;
use super::simulate::{Models, PracticeOutput};
use crate::schema;

/// The patient table's file stem.
pub const PATIENTS: &str = "patients";
/// The conditions table's file stem.
pub const CONDITIONS: &str = "conditions";
/// The outcomes table's file stem.
pub const OUTCOMES: &str = "outcomes";
/// The practice × LSOA aggregate file's stem.
pub const PRACTICE_LSOA: &str = "practice_lsoa";
/// The truth document.
pub const TRUTH_FILE: &str = "truth.json";
/// The config written beside the data.
pub const CONFIG_FILE: &str = "healthgap.toml";
/// `PUBLICATION` value of the aggregate file, as NHS Digital publishes it.
pub const PUBLICATION: &str = "GP_PRAC_PAT_LIST";

/// The file format of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Apache Parquet, zstd-compressed, one row group per batch.
    Parquet,
    /// Comma-separated text with a header row.
    Csv,
}

impl OutputFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Csv => "csv",
        }
    }

    /// `DIR/STEM.EXT`.
    pub fn path(self, dir: &Path, stem: &str) -> PathBuf {
        dir.join(format!("{stem}.{}", self.extension()))
    }
}

enum Sink {
    // Boxed: the Parquet writer is several times the size of the CSV one.
    Parquet(Box<polars::io::parquet::write::BatchedWriter<File>>),
    Csv(polars::io::csv::write::BatchedWriter<File>),
}

/// One table being written batch by batch.
pub struct TableWriter {
    path: PathBuf,
    temporary: PathBuf,
    sink: Sink,
    rows: u64,
}

impl TableWriter {
    /// Create `DIR/STEM.EXT.tmp` for a table of this schema.
    ///
    /// # Errors
    /// [`SynthError::Io`] or [`SynthError::Polars`] naming the file.
    pub fn create(
        dir: &Path,
        stem: &str,
        format: OutputFormat,
        schema: &Schema,
    ) -> Result<Self, SynthError> {
        let path = format.path(dir, stem);
        let temporary = path.with_extension(format!("{}.tmp", format.extension()));
        let file = File::create(&temporary)
            .map_err(|e| SynthError::io(format!("creating {}", temporary.display()), e))?;
        let context = || format!("starting {}", path.display());
        let sink = match format {
            OutputFormat::Parquet => Sink::Parquet(Box::new(
                ParquetWriter::new(file)
                    .with_compression(ParquetCompression::Zstd(None))
                    .with_statistics(StatisticsOptions::default())
                    .batched(schema)
                    .map_err(|e| SynthError::polars(context(), e))?,
            )),
            OutputFormat::Csv => Sink::Csv(
                CsvWriter::new(file)
                    .include_header(true)
                    .batched(schema)
                    .map_err(|e| SynthError::polars(context(), e))?,
            ),
        };
        Ok(TableWriter {
            path,
            temporary,
            sink,
            rows: 0,
        })
    }

    /// Append a batch (one row group in Parquet).
    ///
    /// # Errors
    /// [`SynthError::Polars`] naming the file.
    pub fn write(&mut self, mut frame: DataFrame) -> Result<(), SynthError> {
        if frame.height() == 0 {
            return Ok(());
        }
        // The batched writers need one chunk per column.
        frame.rechunk_mut_par();
        let result = match &mut self.sink {
            Sink::Parquet(writer) => writer.write_batch(&frame),
            Sink::Csv(writer) => writer.write_batch(&frame),
        };
        result.map_err(|e| SynthError::polars(format!("writing {}", self.path.display()), e))?;
        self.rows += frame.height() as u64;
        Ok(())
    }

    /// Finish the file and give it its final name; returns the rows written.
    ///
    /// # Errors
    /// [`SynthError::Polars`] or [`SynthError::Io`] naming the file.
    pub fn finish(self) -> Result<(PathBuf, u64), SynthError> {
        let context = || format!("finishing {}", self.path.display());
        match self.sink {
            Sink::Parquet(writer) => {
                writer
                    .finish()
                    .map_err(|e| SynthError::polars(context(), e))?;
            }
            Sink::Csv(mut writer) => writer
                .finish()
                .map_err(|e| SynthError::polars(context(), e))?,
        }
        std::fs::rename(&self.temporary, &self.path).map_err(|e| {
            SynthError::io(
                format!(
                    "renaming {} to {}",
                    self.temporary.display(),
                    self.path.display()
                ),
                e,
            )
        })?;
        Ok((self.path, self.rows))
    }
}

/// Patient ids of every patient of a batch, per practice.
fn batch_ids(outputs: &[PracticeOutput], seed: u64) -> Vec<Vec<[u8; 16]>> {
    outputs
        .iter()
        .map(|o| {
            (0..o.len() as u64)
                .map(|i| patient_id(seed, o.first_sequence + i))
                .collect()
        })
        .collect()
}

/// An id as text (the ids are ASCII hex digits).
fn id_text(id: &[u8; 16]) -> &str {
    std::str::from_utf8(id).unwrap_or_default()
}

/// The three patient-level tables of a batch of practices.
pub struct BatchFrames {
    /// `patients`.
    pub patients: DataFrame,
    /// `conditions`.
    pub conditions: DataFrame,
    /// `outcomes`.
    pub outcomes: DataFrame,
}

/// Build the tables of a batch (or empty tables with the right columns, for an empty batch).
///
/// # Errors
/// [`SynthError::Polars`] if polars cannot assemble a frame.
pub fn batch_frames(
    outputs: &[PracticeOutput],
    reference: &Reference,
    models: &Models,
    seed: u64,
    period: &str,
) -> Result<BatchFrames, SynthError> {
    let ids = batch_ids(outputs, seed);
    let patients = patients_frame(outputs, &ids, reference)
        .map_err(|e| SynthError::polars("building the patients table", e))?;
    let conditions = conditions_frame(outputs, &ids)
        .map_err(|e| SynthError::polars("building the conditions table", e))?;
    let outcomes = outcomes_frame(outputs, &ids, models, period)
        .map_err(|e| SynthError::polars("building the outcomes table", e))?;
    Ok(BatchFrames {
        patients,
        conditions,
        outcomes,
    })
}

fn text_column<'a>(name: &str, values: impl Iterator<Item = &'a str>) -> Column {
    StringChunked::from_iter_values(name.into(), values).into_column()
}

fn patients_frame(
    outputs: &[PracticeOutput],
    ids: &[Vec<[u8; 16]>],
    reference: &Reference,
) -> PolarsResult<DataFrame> {
    let height: usize = outputs.iter().map(PracticeOutput::len).sum();
    let lsoa_code = |l: &u32| {
        reference
            .lsoas
            .get(*l as usize)
            .map_or("", |l| l.code.as_str())
    };
    let mut columns = vec![
        text_column(schema::PATIENT_ID, ids.iter().flatten().map(id_text)),
        text_column(
            schema::PRACTICE_CODE,
            outputs.iter().flat_map(|o| {
                let code = reference
                    .practices
                    .get(o.practice)
                    .map_or("", |p| p.code.as_str());
                std::iter::repeat_n(code, o.len())
            }),
        ),
        text_column(
            schema::LSOA_CODE,
            outputs.iter().flat_map(|o| o.lsoa.iter().map(lsoa_code)),
        ),
        text_column(
            schema::SEX,
            outputs
                .iter()
                .flat_map(|o| o.female.iter().map(|&f| if f { "F" } else { "M" })),
        ),
        Column::new(
            schema::AGE.into(),
            outputs
                .iter()
                .flat_map(|o| o.age.iter().map(|&a| i32::from(a)))
                .collect::<Vec<i32>>(),
        ),
        text_column(
            schema::ETHNICITY,
            outputs.iter().flat_map(|o| {
                o.ethnicity
                    .iter()
                    .map(|&e| ETHNIC_CODES.get(usize::from(e)).copied().unwrap_or("Z"))
            }),
        ),
    ];
    for (bit, name) in schema::PATIENT_FLAGS.iter().enumerate() {
        columns.push(Column::new(
            (*name).into(),
            outputs
                .iter()
                .flat_map(|o| o.flags.iter().map(move |f| f & (1 << bit) != 0))
                .collect::<Vec<bool>>(),
        ));
    }
    DataFrame::new(height, columns)
}

fn conditions_frame(outputs: &[PracticeOutput], ids: &[Vec<[u8; 16]>]) -> PolarsResult<DataFrame> {
    let height: usize = outputs.iter().map(|o| o.conditions.len()).sum();
    let rows = || {
        outputs
            .iter()
            .zip(ids)
            .flat_map(|(o, ids)| o.conditions.iter().map(move |r| (r, ids)))
    };
    let days: Vec<i32> = rows().map(|(r, _)| r.diagnosed_on).collect();
    let columns = vec![
        text_column(
            schema::PATIENT_ID,
            rows().map(|(r, ids)| ids.get(r.patient as usize).map_or("", id_text)),
        ),
        text_column(
            schema::CONDITION,
            rows().map(|(r, _)| {
                crate::conditions::CONDITIONS
                    .get(usize::from(r.condition))
                    .map_or("", |c| c.code)
            }),
        ),
        Int32Chunked::from_vec(schema::DIAGNOSED_ON.into(), days)
            .into_date()
            .into_series()
            .into_column(),
    ];
    DataFrame::new(height, columns)
}

fn outcomes_frame(
    outputs: &[PracticeOutput],
    ids: &[Vec<[u8; 16]>],
    models: &Models,
    period: &str,
) -> PolarsResult<DataFrame> {
    let height: usize = outputs.iter().map(|o| o.outcomes.len()).sum();
    let rows = || {
        outputs
            .iter()
            .zip(ids)
            .flat_map(|(o, ids)| o.outcomes.iter().map(move |r| (r, ids)))
    };
    let columns = vec![
        text_column(
            schema::PATIENT_ID,
            rows().map(|(r, ids)| ids.get(r.patient as usize).map_or("", id_text)),
        ),
        text_column(
            schema::INDICATOR,
            rows().map(|(r, _)| {
                models
                    .outcomes
                    .get(usize::from(r.outcome))
                    .map_or("", |o| o.indicator.code)
            }),
        ),
        Column::new(
            schema::VALUE.into(),
            rows()
                .map(|(r, _)| f64::from(r.value))
                .collect::<Vec<f64>>(),
        ),
        text_column(schema::PERIOD, std::iter::repeat_n(period, height)),
    ];
    DataFrame::new(height, columns)
}

/// Registered patients of one practice in one LSOA, by sex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LsoaCount {
    /// LSOA index.
    pub lsoa: u32,
    /// Men.
    pub male: u32,
    /// Women.
    pub female: u32,
}

/// A practice's patients counted by LSOA and sex (LSOA order), for the aggregate file.
pub fn lsoa_counts(output: &PracticeOutput) -> Vec<LsoaCount> {
    let mut pairs: Vec<(u32, bool)> = output
        .lsoa
        .iter()
        .copied()
        .zip(output.female.iter().copied())
        .collect();
    pairs.sort_unstable();
    let mut counts: Vec<LsoaCount> = Vec::new();
    for (lsoa, female) in pairs {
        if counts.last().is_none_or(|c| c.lsoa != lsoa) {
            counts.push(LsoaCount {
                lsoa,
                male: 0,
                female: 0,
            });
        }
        if let Some(last) = counts.last_mut() {
            if female {
                last.female += 1;
            } else {
                last.male += 1;
            }
        }
    }
    counts
}

/// Write the NHS Digital practice × LSOA file (`gp-reg-pat-prac-lsoa` shape: PUBLICATION,
/// EXTRACT_DATE, PRACTICE_CODE, PRACTICE_NAME, LSOA_CODE, SEX, NUMBER_OF_PATIENTS; SEX as MALE
/// or FEMALE; cells with no patient left out), the exact aggregate of the patient table.
///
/// # Errors
/// [`SynthError::Polars`] or [`SynthError::Io`] naming the file.
pub fn write_practice_lsoa(
    dir: &Path,
    format: OutputFormat,
    reference: &Reference,
    counts: &[(usize, Vec<LsoaCount>)],
) -> Result<(PathBuf, u64), SynthError> {
    let extract = reference
        .extract_date
        .format("%d%b%Y")
        .to_string()
        .to_uppercase();
    let mut practice_code = Vec::new();
    let mut practice_name = Vec::new();
    let mut lsoa_code = Vec::new();
    let mut sex = Vec::new();
    let mut patients: Vec<i64> = Vec::new();
    for (practice, cells) in counts {
        let Some(practice) = reference.practices.get(*practice) else {
            continue;
        };
        for cell in cells {
            let code = reference
                .lsoas
                .get(cell.lsoa as usize)
                .map_or("", |l| l.code.as_str());
            for (label, n) in [("MALE", cell.male), ("FEMALE", cell.female)] {
                if n > 0 {
                    practice_code.push(practice.code.as_str());
                    practice_name.push(practice.name.as_str());
                    lsoa_code.push(code);
                    sex.push(label);
                    patients.push(i64::from(n));
                }
            }
        }
    }
    let height = patients.len();
    let frame = DataFrame::new(
        height,
        vec![
            text_column("PUBLICATION", std::iter::repeat_n(PUBLICATION, height)),
            text_column(
                "EXTRACT_DATE",
                std::iter::repeat_n(extract.as_str(), height),
            ),
            text_column("PRACTICE_CODE", practice_code.into_iter()),
            text_column("PRACTICE_NAME", practice_name.into_iter()),
            text_column("LSOA_CODE", lsoa_code.into_iter()),
            text_column("SEX", sex.into_iter()),
            Column::new("NUMBER_OF_PATIENTS".into(), patients),
        ],
    )
    .map_err(|e| SynthError::polars("building the practice × LSOA table", e))?;
    let mut writer = TableWriter::create(dir, PRACTICE_LSOA, format, frame.schema())?;
    writer.write(frame)?;
    writer.finish()
}

/// Write `truth.json`.
///
/// # Errors
/// [`SynthError::Io`] naming the file.
pub fn write_truth(dir: &Path, truth: &super::truth::Truth) -> Result<PathBuf, SynthError> {
    let path = dir.join(TRUTH_FILE);
    let text = serde_json::to_string_pretty(truth)
        .map_err(|e| SynthError::Data(format!("cannot serialise the truth: {e}")))?;
    write_text(&path, &(text + "\n"))?;
    Ok(path)
}

pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), SynthError> {
    let mut file = File::create(path)
        .map_err(|e| SynthError::io(format!("creating {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| SynthError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsoa_counts_group_by_lsoa_and_sex() {
        let output = PracticeOutput {
            lsoa: vec![5, 2, 5, 5],
            female: vec![true, false, false, true],
            age: vec![1, 2, 3, 4],
            ..PracticeOutput::default()
        };
        assert_eq!(
            lsoa_counts(&output),
            vec![
                LsoaCount {
                    lsoa: 2,
                    male: 1,
                    female: 0
                },
                LsoaCount {
                    lsoa: 5,
                    male: 1,
                    female: 2
                },
            ]
        );
    }
}
