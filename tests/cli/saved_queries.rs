//! Every saved query in `queries/` on real run folders (issue 8): each returns rows with the
//! columns its header documents, and a query over one table runs when another table of the
//! run folder is unreadable.
//!
//! One output root per test process, made on first use: `healthgap demo --scale pcn` (the
//! previous run), then a second `healthgap run` of the demo's config a "year" later (the
//! latest run) whose patient list has lost every tenth patient and carries a few invalid
//! values, so that `--compare` queries see real changes and `rejects` has rows. The header's
//! `e.g.` values are the ones the demo's PCN (U35004 in ICB QHG) answers to.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use healthgap::query::{COMPARE_PREFIX, Parameter, SavedQuery};
use polars::prelude::*;

use crate::harness::{Workdir, parse_csv, repo};

/// The two runs of the shared output root.
struct DemoRuns {
    /// The demo run: `--compare` for queries over `prev_*` tables.
    previous: PathBuf,
    /// The second run, `latest`: the run every saved query is run on.
    latest: PathBuf,
}

fn healthgap(args: &[&str], root: &Path) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_healthgap"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("run healthgap");
    assert!(
        output.status.success(),
        "healthgap {args:?} (root {}) failed\n--- stdout\n{}\n--- stderr\n{}",
        root.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn demo_runs() -> &'static DemoRuns {
    static RUNS: OnceLock<DemoRuns> = OnceLock::new();
    RUNS.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("saved-queries");
        let _ = std::fs::remove_dir_all(&root);
        let root_text = root.display().to_string();
        healthgap(
            &["--quiet", "demo", "--scale", "pcn", "--out", &root_text],
            &root,
        );
        let previous = std::fs::canonicalize(root.join("latest")).expect("the demo run");

        // The demo's data folder (demo-data/pcn-seed-2024) holds its config and inputs.
        let data = std::fs::read_dir(root.join("demo-data"))
            .expect("demo-data")
            .map(|entry| entry.expect("entry").path())
            .find(|path| path.join("demo.toml").is_file())
            .expect("a demo data folder with demo.toml");
        write_next_year_patients(
            &data.join("patients.parquet"),
            &data.join("patients_next.parquet"),
        );
        let config = std::fs::read_to_string(data.join("demo.toml")).expect("demo.toml");
        assert!(config.contains("path = \"patients.parquet\""), "{config}");
        // Fewer simulation repetitions: the SII's point estimates do not depend on them.
        let config = config
            .replace(
                "path = \"patients.parquet\"",
                "path = \"patients_next.parquet\"",
            )
            .replace("repetitions = 100000", "repetitions = 10000");
        let next_config = data.join("next.toml");
        std::fs::write(&next_config, config).expect("write next.toml");
        healthgap(
            &[
                "--quiet",
                "run",
                "--config",
                &next_config.display().to_string(),
                "--out",
                &root_text,
                "--run-id",
                "next-year",
            ],
            &root,
        );
        DemoRuns {
            previous,
            latest: root.join("next-year"),
        }
    })
}

/// The demo's patient list without every tenth patient, with an impossible age and an
/// unknown sex code in 1 row of 1,000 each (rejected: 0.2% of rows, within the demo's 1%).
fn write_next_year_patients(from: &Path, to: &Path) {
    let patients = LazyFrame::scan_parquet(
        PlRefPath::new(from.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .expect("scan patients")
    .with_row_index("row", None)
    .filter((col("row") % lit(10)).neq(lit(9)))
    .with_columns([
        when((col("row") % lit(1000)).eq(lit(1)))
            .then(lit(130).cast(DataType::Int32))
            .otherwise(col("age"))
            .alias("age"),
        when((col("row") % lit(1000)).eq(lit(2)))
            .then(lit("Q"))
            .otherwise(col("sex"))
            .alias("sex"),
    ])
    .drop(cols(["row"]));
    let mut frame = patients.collect().expect("next year's patients");
    let file = std::fs::File::create(to).expect("create patients_next.parquet");
    ParquetWriter::new(file)
        .finish(&mut frame)
        .expect("write patients_next.parquet");
}

/// `--param` pairs from the `e.g.` examples of a query's header.
fn example_parameters(saved: &SavedQuery) -> Vec<(String, String)> {
    saved
        .header
        .parameters
        .iter()
        .map(|parameter| {
            let example = parameter.example().unwrap_or_else(|| {
                panic!(
                    "{:?}: parameter `{}` has no `e.g. VALUE`",
                    saved.path, parameter.name
                )
            });
            (parameter.name.clone(), example.to_string())
        })
        .collect()
}

/// Whether the query reads a `prev_*` table (and so needs `--compare`).
fn compares(saved: &SavedQuery, parameters: &[(String, String)]) -> bool {
    let parameters: Vec<Parameter> = parameters
        .iter()
        .map(|(name, value)| Parameter {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    saved
        .prepare(&parameters)
        .expect("binds its examples")
        .tables
        .iter()
        .any(|table| table.starts_with(COMPARE_PREFIX))
}

/// `healthgap query --run RUN --name NAME -p …` as CSV: the exit status, stdout and stderr.
fn run_saved(
    name: &str,
    run: &Path,
    parameters: &[(String, String)],
    compare: Option<&Path>,
) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_healthgap"));
    command
        .args(["query", "--run"])
        .arg(run)
        .arg("--queries-dir")
        .arg(repo().join("queries"))
        .args(["--name", name, "--format", "csv"]);
    if let Some(previous) = compare {
        command.arg("--compare").arg(previous);
    }
    for (key, value) in parameters {
        command.arg("--param").arg(format!("{key}={value}"));
    }
    let output = command.output().expect("run healthgap query");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn saved_queries() -> Vec<SavedQuery> {
    SavedQuery::list(&repo().join("queries")).expect("queries/")
}

fn saved_query(name: &str) -> SavedQuery {
    SavedQuery::find(&repo().join("queries"), name).expect("a saved query")
}

#[test]
fn every_saved_query_returns_rows_with_its_documented_columns_on_the_demo_run() {
    let runs = demo_runs();
    let queries = saved_queries();
    assert!(queries.len() >= 10, "{} saved queries", queries.len());
    let mut problems = Vec::new();
    for saved in &queries {
        let name = saved.name.clone().expect("a file name");
        let parameters = example_parameters(saved);
        let compare = compares(saved, &parameters).then_some(runs.previous.as_path());
        let (ok, stdout, stderr) = run_saved(&name, &runs.latest, &parameters, compare);
        if !ok {
            problems.push(format!("{name}: failed: {stderr}"));
            continue;
        }
        let (header, rows) = parse_csv(&stdout);
        let documented: Vec<&str> = saved
            .header
            .columns
            .iter()
            .map(|column| column.name.as_str())
            .collect();
        if header != documented {
            problems.push(format!(
                "{name}: returns columns {header:?}, the header documents {documented:?}"
            ));
        }
        if rows.is_empty() {
            problems.push(format!("{name}: no rows with {parameters:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Issue 8's check: a query over one table reads only that table's file. The latest demo run
/// folder is copied and its restricted patient-level table cut to half its length (a file
/// left half-written); saved queries over `inequality`, `indicators` and `area_deprivation`
/// return what they return on the intact folder, and one over `patients_enriched` names it.
#[test]
fn saved_queries_over_other_tables_run_when_patients_enriched_is_unreadable() {
    let runs = demo_runs();
    let dir = Workdir::new("saved-queries-corrupt");
    let copy = dir.join("run");
    std::fs::create_dir_all(&copy).expect("run copy");
    for entry in std::fs::read_dir(&runs.latest).expect("latest run") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, copy.join(path.file_name().expect("a name"))).expect("copy");
        }
    }
    let patients = copy.join("patients_enriched.parquet");
    let length = std::fs::metadata(&patients)
        .expect("patients_enriched")
        .len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&patients)
        .and_then(|file| file.set_len(length / 2))
        .expect("cut patients_enriched.parquet");

    for name in ["steepest_gradients_in_icb", "pcn_against_icb_and_england"] {
        let saved = saved_query(name);
        let parameters = example_parameters(&saved);
        let intact = run_saved(name, &runs.latest, &parameters, None);
        let cut = run_saved(name, &copy, &parameters, None);
        assert!(intact.0 && cut.0, "{name}: {}{}", intact.2, cut.2);
        assert!(intact.1.lines().count() > 1, "{name}: {}", intact.1);
        assert_eq!(cut.1, intact.1, "{name}");
    }

    let saved = saved_query("lsoas_of_pcn");
    let (ok, _, stderr) = run_saved("lsoas_of_pcn", &copy, &example_parameters(&saved), None);
    assert!(!ok);
    assert!(
        stderr.starts_with("error: table `patients_enriched` ("),
        "{stderr}"
    );
}
