//! `healthgap synth`: determinism, validation of every generated row, realism of practice
//! deprivation, and the planted gradients.
//!
//! Two runs are shared by several tests (generated once per test process into
//! `CARGO_TARGET_TMPDIR`, because each run reads the reference data and fits England's
//! catchments, seconds in a debug build): one PCN at real list sizes, and West Yorkshire ICB
//! scaled down to 120,000 patients. Everything runs on the bundled `data/` alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use healthgap::ingest::{InputKind, ReadOptions, read_table};
use healthgap::schema;
use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::harness::{Workdir, repo};

/// The example config over the bundled reference data.
fn config() -> String {
    repo().join("healthgap.toml").display().to_string()
}

const PCN_ARGS: &[&str] = &["--scale", "pcn", "--seed", "11"];
const ICB_ARGS: &[&str] = &[
    "--scale",
    "icb",
    "--icb",
    "QWO",
    "--patients",
    "120000",
    "--seed",
    "5",
];

/// Run `healthgap synth ARGS --config … --out DIR`, asserting success.
pub(crate) fn synth(dir: &Path, args: &[&str], threads: Option<&str>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_healthgap"));
    command
        .arg("synth")
        .args(args)
        .args(["--config", &config(), "--out"])
        .arg(dir);
    if let Some(threads) = threads {
        command.env("RAYON_NUM_THREADS", threads);
    }
    let output = command.output().expect("run healthgap synth");
    assert!(
        output.status.success(),
        "healthgap synth {args:?} failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A run shared by the tests of this process, generated on first use.
fn shared_run(cell: &'static OnceLock<PathBuf>, name: &str, args: &[&str]) -> &'static Path {
    cell.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("synth")
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        synth(&dir, args, None);
        dir
    })
}

pub(crate) fn pcn_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    shared_run(&RUN, "pcn-seed-11", PCN_ARGS)
}

pub(crate) fn icb_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    shared_run(&RUN, "qwo-120k-seed-5", ICB_ARGS)
}

/// SHA-256 of every file of a run, by name.
fn hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("run folder") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read file");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        out.insert(name, format!("{:x}", Sha256::digest(&bytes)));
    }
    out
}

fn truth(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("truth.json")).expect("truth.json");
    serde_json::from_str(&text).expect("truth.json is JSON")
}

/// A generated or bundled table read through its ingest reader: every row must pass.
fn read_checked(kind: InputKind, path: &Path) -> DataFrame {
    let table = read_table(kind, path, &ReadOptions::default()).expect("readable");
    assert_eq!(table.report.rows_rejected, 0, "{:?}", table.report.reasons);
    table.frame.collect().expect("collect")
}

fn scan(path: &Path) -> LazyFrame {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.display().to_string()),
        ScanArgsParquet::default(),
    )
    .expect("scan parquet")
}

/// IMD score and decile of every English LSOA (bundled IoD2019).
fn deprivation() -> LazyFrame {
    read_checked(
        InputKind::Iod2019,
        &repo().join("data").join("iod2019_lsoa11.parquet"),
    )
    .lazy()
    .select([
        col(schema::LSOA_CODE),
        col(schema::IMD_SCORE),
        col(schema::IMD_DECILE),
    ])
}

fn f64_column(frame: &DataFrame, name: &str) -> Vec<f64> {
    frame
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .expect("numeric column")
        .f64()
        .expect("f64")
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

#[test]
fn synth_is_deterministic_for_a_seed_whatever_the_threads() {
    let first = hashes(pcn_run());
    let again = Workdir::new("synth-again");
    synth(&again.join("run"), PCN_ARGS, Some("1"));
    let second = hashes(&again.join("run"));
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        [
            "conditions.parquet",
            "healthgap.toml",
            "outcomes.parquet",
            "patients.parquet",
            "practice_lsoa.parquet",
            "truth.json"
        ]
    );
    assert_eq!(first, second, "same seed and arguments, one thread vs all");

    let other = Workdir::new("synth-other-seed");
    synth(
        &other.join("run"),
        &["--scale", "pcn", "--seed", "12"],
        None,
    );
    let third = hashes(&other.join("run"));
    for file in [
        "patients.parquet",
        "conditions.parquet",
        "outcomes.parquet",
        "truth.json",
    ] {
        assert_ne!(
            first[file], third[file],
            "{file} did not change with the seed"
        );
    }
}

#[test]
fn synth_rows_all_pass_validation() {
    let dir = pcn_run();
    let run = Workdir::new("synth-validate").run(&[
        "validate",
        "--config",
        &dir.join("healthgap.toml").display().to_string(),
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(summary["failed"], 0, "{summary:#}");
    let inputs = summary["inputs"].as_array().expect("inputs");
    for generated in ["patients", "conditions", "outcomes", "practice_lsoa"] {
        let input = inputs
            .iter()
            .find(|i| i["input"] == generated)
            .unwrap_or_else(|| panic!("{generated} not validated: {summary:#}"));
        assert_eq!(input["rows_rejected"], 0, "{input:#}");
        assert!(input["rows_read"].as_u64().unwrap_or(0) > 0, "{input:#}");
    }
    let patients = inputs
        .iter()
        .find(|i| i["input"] == "patients")
        .and_then(|i| i["rows_read"].as_u64());
    assert_eq!(
        patients,
        truth(dir)["selection"]["patients"].as_u64(),
        "patients in the file vs truth.json"
    );
}

#[test]
fn synth_aggregate_file_is_the_patient_list_counted() {
    let dir = pcn_run();
    let cells = read_checked(InputKind::PracticeLsoa, &dir.join("practice_lsoa.parquet"))
        .lazy()
        .group_by([col(schema::PRACTICE_CODE), col(schema::SEX)])
        .agg([col(schema::NUMBER_OF_PATIENTS).sum().cast(DataType::Int64)])
        .sort(
            [schema::PRACTICE_CODE, schema::SEX],
            SortMultipleOptions::default(),
        )
        .collect()
        .expect("aggregate");
    let patients = scan(&dir.join("patients.parquet"))
        .group_by([col(schema::PRACTICE_CODE), col(schema::SEX)])
        .agg([len()
            .cast(DataType::Int64)
            .alias(schema::NUMBER_OF_PATIENTS)])
        .sort(
            [schema::PRACTICE_CODE, schema::SEX],
            SortMultipleOptions::default(),
        )
        .collect()
        .expect("patients");
    assert!(cells.height() >= 2, "{cells}");
    assert!(
        cells.equals(&patients),
        "aggregate {cells}\npatients {patients}"
    );
}

#[test]
fn synth_practice_deprivation_matches_published_scores() {
    let dir = icb_run();
    let generated = scan(&dir.join("patients.parquet"))
        .select([col(schema::PRACTICE_CODE), col(schema::LSOA_CODE)])
        .join(
            deprivation(),
            [col(schema::LSOA_CODE)],
            [col(schema::LSOA_CODE)],
            JoinArgs::new(JoinType::Left),
        )
        .group_by([col(schema::PRACTICE_CODE)])
        .agg([
            col(schema::IMD_SCORE).mean().alias("generated"),
            col(schema::IMD_SCORE).null_count().alias("unmatched"),
        ]);
    let published = read_checked(
        InputKind::PracticeOutcomes,
        &repo().join("data").join("practice_imd_93553.parquet"),
    )
    .lazy()
    .filter(col(schema::PERIOD).eq(lit("2019")))
    .select([
        col(schema::AREA_CODE).alias(schema::PRACTICE_CODE),
        col(schema::VALUE).alias("published"),
    ]);
    let pairs = generated
        .inner_join(
            published,
            col(schema::PRACTICE_CODE),
            col(schema::PRACTICE_CODE),
        )
        .collect()
        .expect("join");
    assert!(pairs.height() > 200, "{pairs}");
    assert!(f64_column(&pairs, "unmatched").iter().all(|&n| n == 0.0));
    let x = f64_column(&pairs, "generated");
    let y = f64_column(&pairs, "published");
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    let r = sxy / (sxx * syy).sqrt();
    eprintln!(
        "practice population-weighted IMD vs Fingertips 93553 (2019), {} practices of QWO at 120k patients: r = {r:.4}",
        pairs.height()
    );
    assert!(r >= 0.9, "correlation {r}");
}

#[test]
fn synth_planted_gradients_show_in_the_raw_data() {
    let dir = icb_run();
    let truth = truth(dir);
    let patients = scan(&dir.join("patients.parquet"))
        .select([col(schema::PATIENT_ID), col(schema::LSOA_CODE)])
        .join(
            deprivation(),
            [col(schema::LSOA_CODE)],
            [col(schema::LSOA_CODE)],
            JoinArgs::new(JoinType::Left),
        )
        .select([col(schema::PATIENT_ID), col(schema::IMD_DECILE)]);
    let outcomes = scan(&dir.join("outcomes.parquet"));
    for outcome in truth["outcomes"].as_array().expect("outcomes") {
        let indicator = outcome["indicator"].as_str().expect("code");
        let binary = outcome["kind"] == "binary";
        let by_decile = &outcome["selection"]["by_decile"];
        let rows = outcomes
            .clone()
            .filter(col(schema::INDICATOR).eq(lit(indicator)))
            .select([col(schema::PATIENT_ID), col(schema::VALUE)]);
        // Binary: the rows are the denominator. Count: every patient is, absent rows are 0.
        let observed = if binary {
            rows.join(
                patients.clone(),
                [col(schema::PATIENT_ID)],
                [col(schema::PATIENT_ID)],
                JoinArgs::new(JoinType::Inner),
            )
        } else {
            patients
                .clone()
                .join(
                    rows,
                    [col(schema::PATIENT_ID)],
                    [col(schema::PATIENT_ID)],
                    JoinArgs::new(JoinType::Left),
                )
                .with_column(col(schema::VALUE).fill_null(lit(0.0)))
        }
        .group_by([col(schema::IMD_DECILE)])
        .agg([
            len().cast(DataType::Float64).alias("n"),
            col(schema::VALUE).mean().alias("mean"),
            col(schema::VALUE).var(1).alias("variance"),
        ])
        .sort([schema::IMD_DECILE], SortMultipleOptions::default())
        .collect()
        .expect("decile rates");
        let deciles = f64_column(&observed, schema::IMD_DECILE);
        let n = f64_column(&observed, "n");
        let mean = f64_column(&observed, "mean");
        let variance = f64_column(&observed, "variance");
        let mut seen = BTreeMap::new();
        for decile in [1.0, 10.0] {
            let i = deciles
                .iter()
                .position(|&d| d == decile)
                .unwrap_or_else(|| panic!("{indicator}: nobody in decile {decile}"));
            let expected = by_decile[decile as usize - 1]["value"]
                .as_f64()
                .expect("expected value");
            let se = (variance[i] / n[i]).sqrt();
            eprintln!(
                "{indicator:>20} decile {decile:>2}: observed {:.4} (n {}), planted {expected:.4}, SE {se:.4}",
                mean[i], n[i]
            );
            assert!(
                (mean[i] - expected).abs() <= 4.0 * se,
                "{indicator}, decile {decile}: observed {} vs planted {expected} (SE {se})",
                mean[i]
            );
            seen.insert(decile as u8, (mean[i], se));
        }
        // The plant's direction is visible: decile 1 vs 10 differ in the planted direction by
        // more than their sampling error.
        let ((d1, se1), (d10, se10)) = (seen[&1], seen[&10]);
        let worse_when_deprived = outcome["planted_effect"]["ratio_per_decile"]
            .as_f64()
            .expect("ratio")
            > 1.0;
        let gap = if worse_when_deprived {
            d1 - d10
        } else {
            d10 - d1
        };
        if indicator != "death_12m" {
            // Deaths are rarer in deprived deciles' younger populations despite the plant:
            // their crude gap is within noise at this size, and truth.json says so.
            assert!(
                gap > 3.0 * (se1 * se1 + se10 * se10).sqrt(),
                "{indicator}: decile 1 {d1} vs decile 10 {d10}"
            );
        }
    }
}

#[test]
fn synth_truth_records_the_plant_and_its_gradient() {
    let truth = truth(pcn_run());
    assert_eq!(truth["seed"], 11);
    assert_eq!(truth["arguments"]["scale"], "pcn");
    assert_eq!(truth["generator"], "healthgap synth");
    let outcomes = truth["outcomes"].as_array().expect("outcomes");
    let codes: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o["indicator"].as_str())
        .collect();
    let expected: Vec<&str> = healthgap::indicators::INDICATORS
        .iter()
        .map(|i| i.code)
        .collect();
    assert_eq!(codes, expected);
    let sii = |code: &str| -> f64 {
        outcomes
            .iter()
            .find(|o| o["indicator"] == code)
            .and_then(|o| o["england"]["sii"].as_f64())
            .unwrap_or(f64::NAN)
    };
    // Worse in deprived areas: negative SII (least minus most deprived); screening: positive.
    assert!(sii("current_smoker") < -0.1, "{}", sii("current_smoker"));
    assert!(sii("emergency_admissions") < 0.0);
    assert!(sii("bowel_screened") > 0.1);
    let smoker = outcomes
        .iter()
        .find(|o| o["indicator"] == "current_smoker")
        .expect("smoker");
    let ratio = smoker["planted_effect"]["ratio_per_decile"]
        .as_f64()
        .expect("ratio");
    assert!(
        (smoker["planted_effect"]["ratio_decile_1_vs_10"]
            .as_f64()
            .unwrap_or(0.0)
            - ratio.powi(9))
        .abs()
            < 1e-9
    );
    let england = smoker["england"]["value"].as_f64().expect("value");
    assert!((england - 0.13).abs() < 0.01, "{england}");
    assert_eq!(truth["conditions"].as_array().map(Vec::len), Some(47));
    assert_eq!(truth["catchment"]["lsoas_in_icbs"]["inside_one"], 32_844);
    // Every active practice's ICB has a boundary (no note says otherwise).
    let notes = truth["reference_notes"].as_array().expect("notes");
    assert!(
        notes
            .iter()
            .all(|n| !n.as_str().unwrap_or("").contains("no boundary")),
        "{notes:?}"
    );
}

#[test]
fn synth_writes_csv_that_validates() {
    let work = Workdir::new("synth-csv");
    let out = work.join("csv");
    synth(
        &out,
        &[
            "--scale",
            "pcn",
            "--patients",
            "2000",
            "--seed",
            "3",
            "--format",
            "csv",
        ],
        None,
    );
    for file in [
        "patients.csv",
        "conditions.csv",
        "outcomes.csv",
        "practice_lsoa.csv",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let header = std::fs::read_to_string(out.join("practice_lsoa.csv")).expect("csv");
    assert!(
        header.starts_with(
            "PUBLICATION,EXTRACT_DATE,PRACTICE_CODE,PRACTICE_NAME,LSOA_CODE,SEX,NUMBER_OF_PATIENTS\n"
        ),
        "{}",
        header.lines().next().unwrap_or_default()
    );
    let run = work.run(&[
        "validate",
        "--config",
        &out.join("healthgap.toml").display().to_string(),
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    let patients = summary["inputs"]
        .as_array()
        .and_then(|inputs| inputs.iter().find(|i| i["input"] == "patients"))
        .expect("patients validated");
    assert_eq!(patients["rows_read"], 2000, "{patients:#}");
    assert_eq!(patients["rows_rejected"], 0, "{patients:#}");
}

#[test]
fn synth_unknown_pcn_is_an_error_naming_it() {
    let work = Workdir::new("synth-unknown-pcn");
    let run = work.run(&[
        "synth",
        "--scale",
        "pcn",
        "--pcn",
        "U00000",
        "--seed",
        "1",
        "--out",
        "x",
        "--config",
        &config(),
    ]);
    run.expect_code(2);
    assert!(run.stderr().contains("PCN U00000"), "{}", run.stderr());
}

#[test]
fn synth_contradictory_flags_are_an_error() {
    let work = Workdir::new("synth-flags");
    let run = work.run(&[
        "synth", "--scale", "pcn", "--icb", "QWO", "--seed", "1", "--out", "x",
    ]);
    run.expect_code(2);
    assert!(run.stderr().contains("--icb"), "{}", run.stderr());
    let run = work.run(&["synth", "--seed", "1", "--out", "x"]);
    run.expect_code(2);
    assert!(run.stderr().contains("--patients"), "{}", run.stderr());
}

#[test]
fn synth_help_shows_examples() {
    let run = Workdir::new("synth-help").run(&["synth", "--help"]);
    run.expect_code(0);
    assert!(run.stdout().contains("Examples:"), "{}", run.stdout());
    assert!(run.stdout().contains("--scale"), "{}", run.stdout());
}
