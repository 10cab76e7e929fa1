//! Benchmark of the Parquet writer on patient-like columns (issue 9): the encoding of a
//! table's pages (dictionaries, keys, definition levels, flags) and their compression, as
//! `TableWriter` does it for the patient-level table and the working files.
//!
//! - `parquet_write/patient_like_1_2m`: 1.2 million rows in batches of 100,000 (so each row
//!   group is gathered from three batches, as the streaming engine hands them over): sex and
//!   age band (a few short values in no order), a segment label (long text), area codes
//!   (12,000 in no order), practice codes and names (in runs), an area score (10,000 values),
//!   a 0/1 outcome, a count with one row in ten missing, and a yes/no flag. Written with the
//!   run's compression (zstd level 1) to a sink that discards the bytes.
//!
//! Run: `cargo bench --bench parquet_write` (see benches/README.md).

use criterion::{Criterion, criterion_group, criterion_main};
use healthgap::output::{TableWriter, parquet_compression};
use polars::prelude::*;

const ROWS: usize = 1_200_000;
const BATCH_ROWS: usize = 100_000;

const SEGMENTS: [&str; 8] = [
    "Mostly healthy (low risk)",
    "Long-term condition (moderate)",
    "Frailty and dementia",
    "Incurable cancer",
    "Organ failure",
    "Disability",
    "Maternal and infant health",
    "Healthy",
];

/// The batches, each in buffers of its own; values drawn with a fixed xorshift.
fn batches() -> Vec<DataFrame> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..ROWS)
        .step_by(BATCH_ROWS)
        .map(|start| {
            let rows = start..start + BATCH_ROWS;
            let sex: Vec<&str> = rows
                .clone()
                .map(|_| ["F", "M"][(next() % 2) as usize])
                .collect();
            let age_band: Vec<String> = rows
                .clone()
                .map(|_| {
                    let from = next() % 19 * 5;
                    format!("{from}-{}", from + 4)
                })
                .collect();
            let segment: Vec<&str> = rows
                .clone()
                .map(|_| SEGMENTS[(next() % 8) as usize])
                .collect();
            let lsoa_code: Vec<String> = rows
                .clone()
                .map(|_| format!("E0100{:04}", next() % 12_000))
                .collect();
            let practice_code: Vec<String> = rows
                .clone()
                .map(|row| format!("A{:05}", row / 500))
                .collect();
            let practice_name: Vec<String> = rows
                .clone()
                .map(|row| format!("THE SURGERY OF PRACTICE {:05}", row / 500))
                .collect();
            let imd_score: Vec<f64> = rows
                .clone()
                .map(|_| (next() % 10_000) as f64 / 100.0)
                .collect();
            let screened: Vec<f64> = rows.clone().map(|_| (next() % 2) as f64).collect();
            let admissions: Vec<Option<f64>> = rows
                .clone()
                .map(|_| {
                    let count = next() % 10;
                    (count != 0).then_some(count as f64 - 1.0)
                })
                .collect();
            let carer: Vec<bool> = rows.map(|_| next() % 7 == 0).collect();
            df![
                "sex" => sex,
                "age_band" => age_band,
                "segment" => segment,
                "lsoa_code" => lsoa_code,
                "practice_code" => practice_code,
                "practice_name" => practice_name,
                "imd_score" => imd_score,
                "screened" => screened,
                "admissions" => admissions,
                "carer" => carer,
            ]
            .expect("a batch")
        })
        .collect()
}

fn bench_write(c: &mut Criterion) {
    let batches = batches();
    let options = ParquetWriteOptions {
        compression: parquet_compression(),
        ..Default::default()
    };
    c.bench_function("parquet_write/patient_like_1_2m", |b| {
        b.iter(|| {
            let mut writer =
                TableWriter::parquet(Box::new(std::io::sink()), batches[0].schema(), &options)
                    .expect("a writer");
            for batch in &batches {
                writer.write_batch(&mut batch.clone()).expect("written");
            }
            writer.finish().expect("finished")
        })
    });
}

criterion_group! {
    name = benches;
    // No plots: they need a system font the build machines do not have.
    config = Criterion::default().without_plots();
    targets = bench_write
}
criterion_main!(benches);
