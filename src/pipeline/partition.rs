//! Patient parts: the patient-keyed inputs (registered list, conditions, outcomes) split by a
//! fixed hash of `patient_id`, so that the patient stages (enrich, attribute, segment) run one
//! part at a time and their memory is bounded by a part, not by the national list.
//!
//! Every row of one patient lands in the same part in every input, so a part's joins see all
//! of its patients' rows. What needs the whole list (the risk-tier percentiles) is counted
//! over every part first (`segment::risk::score_counts` add up). A list of up to
//! `run.patients_per_part` patients is one part and is not split (no working files).
//! docs/scaling.md has the measurements behind the default.

use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use polars::prelude::{
    Column, LazyFrame, ParquetCompression, ParquetWriteOptions, PlRefPath, PolarsResult,
    ScanArgsParquet, StatisticsOptions,
};

use crate::ingest::InputKind;
use crate::output::TableWriter;
use crate::schema;

/// Patients per part unless `run.patients_per_part` says otherwise: the enrich stage holds
/// about 0.5 GiB per million patients (benches/RESULTS.md), so a part of 4 million keeps it
/// near 2 GiB.
pub const DEFAULT_PATIENTS_PER_PART: u64 = 4_000_000;

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

/// The working file of input `kind`, part `part`.
fn part_file(dir: &Path, kind: InputKind, part: u32) -> PathBuf {
    dir.join(format!("{kind}-{part}.parquet"))
}

/// The patient-keyed inputs of a run, whole or split into parts.
pub enum PatientInputs {
    /// One part: the inputs as ingested.
    Whole(Vec<(InputKind, LazyFrame)>),
    /// Several parts, written under a working folder that is removed when this is dropped.
    Split {
        /// The working folder (`<input>-<part>.parquet`).
        dir: PathBuf,
        /// How many parts.
        parts: u32,
        /// The inputs, in the order they were given.
        inputs: Vec<InputKind>,
    },
}

impl Drop for PatientInputs {
    fn drop(&mut self) {
        if let PatientInputs::Split { dir, .. } = self {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl PatientInputs {
    /// Split each input (a frame with a `patient_id` column) into `parts` files under `dir`
    /// in one streamed pass; with one part, keep the inputs as they are.
    ///
    /// The working files are Parquet with LZ4 and no statistics: written once and read once,
    /// speed matters more than size.
    ///
    /// # Errors
    /// If an input fails to read or a part cannot be written (the error names the file).
    pub fn split(
        dir: &Path,
        parts: u32,
        inputs: Vec<(InputKind, LazyFrame)>,
    ) -> anyhow::Result<Self> {
        if parts <= 1 {
            return Ok(PatientInputs::Whole(inputs));
        }
        fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the working folder", dir.display()))?;
        // From here the folder is removed on any error, by drop.
        let split = PatientInputs::Split {
            dir: dir.to_path_buf(),
            parts,
            inputs: inputs.iter().map(|(kind, _)| *kind).collect(),
        };
        let options = ParquetWriteOptions {
            compression: ParquetCompression::Lz4Raw,
            statistics: StatisticsOptions::empty(),
            ..Default::default()
        };
        for (kind, mut frame) in inputs {
            let frame_schema = frame
                .collect_schema()
                .with_context(|| format!("reading the columns of {kind}"))?;
            let mut writers = Vec::with_capacity(parts as usize);
            for part in 0..parts {
                let path = part_file(dir, kind, part);
                let file = File::create(&path)
                    .with_context(|| format!("{}: cannot create a working file", path.display()))?;
                writers.push(TableWriter::parquet(
                    Box::new(BufWriter::new(file)),
                    &frame_schema,
                    &options,
                )?);
            }
            let writers = Arc::new(Mutex::new(writers));
            let in_plan = Arc::clone(&writers);
            crate::lazy::for_each_batch(frame, move |batch| {
                let ids = part_ids(batch.column(schema::PATIENT_ID)?, parts)?;
                let mut batch = batch;
                batch.with_column(ids)?;
                let mut writers = in_plan.lock().unwrap_or_else(PoisonError::into_inner);
                for piece in batch.partition_by_stable([PART], true)? {
                    let part = piece.column(PART)?.u32()?.get(0).unwrap_or(0) as usize;
                    let mut piece = piece.drop(PART)?;
                    if let Some(writer) = writers.get_mut(part) {
                        writer.write_batch(&mut piece)?;
                    }
                }
                Ok(())
            })
            .with_context(|| format!("splitting {kind} into {parts} parts by patient"))?;
            let mut writers = writers.lock().unwrap_or_else(PoisonError::into_inner);
            for writer in writers.iter_mut() {
                writer
                    .finish()
                    .with_context(|| format!("finishing the parts of {kind}"))?;
            }
        }
        Ok(split)
    }

    /// How many parts.
    pub fn parts(&self) -> u32 {
        match self {
            PatientInputs::Whole(_) => 1,
            PatientInputs::Split { parts, .. } => *parts,
        }
    }

    /// Input `kind` of part `part` (`None` when the run has no such input).
    ///
    /// # Errors
    /// If a part's file cannot be scanned.
    pub fn get(&self, kind: InputKind, part: u32) -> PolarsResult<Option<LazyFrame>> {
        match self {
            PatientInputs::Whole(inputs) => Ok(inputs
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, frame)| frame.clone())),
            PatientInputs::Split { dir, inputs, .. } => {
                if !inputs.contains(&kind) {
                    return Ok(None);
                }
                let path = part_file(dir, kind, part);
                LazyFrame::scan_parquet(
                    PlRefPath::new(path.to_string_lossy().as_ref()),
                    ScanArgsParquet::default(),
                )
                .map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{DataFrame, IntoLazy, df};

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

    #[test]
    fn every_row_of_a_patient_lands_in_the_same_part_of_every_input() {
        let dir = tempfile::tempdir().expect("temp dir");
        let patient_ids: Vec<String> = (0..5000).map(|i| format!("P{i:05}")).collect();
        let patients = df![
            schema::PATIENT_ID => &patient_ids,
            schema::AGE => (0..5000i64).map(|i| i % 90).collect::<Vec<_>>(),
        ]
        .expect("patients");
        // Three outcome rows per patient, in another order than the patients.
        let outcome_ids: Vec<String> = (0..15000)
            .map(|i| patient_ids[(i * 7) % 5000].clone())
            .collect();
        let outcomes = df![
            schema::PATIENT_ID => &outcome_ids,
            schema::VALUE => (0..15000).map(f64::from).collect::<Vec<_>>(),
        ]
        .expect("outcomes");
        let inputs = vec![
            (InputKind::Patients, patients.clone().lazy()),
            (InputKind::Outcomes, outcomes.clone().lazy()),
        ];
        let work = dir.path().join("parts");
        let split = PatientInputs::split(&work, 4, inputs).expect("split");
        assert_eq!(split.parts(), 4);
        let mut all_patients = Vec::new();
        let mut outcome_rows = 0;
        for part in 0..4 {
            let p = split
                .get(InputKind::Patients, part)
                .expect("scan")
                .expect("patients")
                .collect()
                .expect("read");
            let o = split
                .get(InputKind::Outcomes, part)
                .expect("scan")
                .expect("outcomes")
                .collect()
                .expect("read");
            assert_eq!(p.schema(), patients.schema(), "columns and types kept");
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
            outcome_rows += o.height();
            all_patients.extend(ids(&p));
        }
        all_patients.sort();
        assert_eq!(all_patients, patient_ids, "every patient once");
        assert_eq!(outcome_rows, 15000, "every outcome row once");
        assert!(split.get(InputKind::Conditions, 0).expect("none").is_none());
        drop(split);
        assert!(!work.exists(), "the working folder goes with the parts");
    }

    #[test]
    fn one_part_keeps_the_inputs_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path().join("parts");
        let patients = df![schema::PATIENT_ID => ["A", "B"]].expect("frame");
        let whole = PatientInputs::split(
            &work,
            1,
            vec![(InputKind::Patients, patients.clone().lazy())],
        )
        .expect("whole");
        assert_eq!(whole.parts(), 1);
        let got = whole
            .get(InputKind::Patients, 0)
            .expect("frame")
            .expect("patients")
            .collect()
            .expect("read");
        assert!(got.equals(&patients));
        assert!(!work.exists());
    }
}
