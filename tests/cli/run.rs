//! `healthgap run`: figures on a hand-checkable fixture, atomic publishing, the lock, exit
//! codes, reproducibility.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::harness::{Workdir, fixtures};

fn fixture_config() -> String {
    fixtures()
        .join("run")
        .join("healthgap.toml")
        .display()
        .to_string()
}

fn run_into(dir: &Workdir, root: &Path, run_id: &str, extra: &[&str]) -> crate::harness::Run {
    let root = root.display().to_string();
    let config = fixture_config();
    let mut args = vec![
        "--quiet",
        "run",
        "--config",
        config.as_str(),
        "--out",
        root.as_str(),
        "--run-id",
        run_id,
    ];
    args.extend_from_slice(extra);
    dir.run(&args)
}

fn read(path: &Path) -> DataFrame {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .and_then(|lf| lf.collect())
    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn latest(root: &Path) -> Option<PathBuf> {
    std::fs::read_link(root.join("latest")).ok()
}

fn row(df: &DataFrame, level: &str, code: &str) -> DataFrame {
    let found = df
        .clone()
        .lazy()
        .filter(
            col("area_level")
                .eq(lit(level))
                .and(col("area_code").eq(lit(code))),
        )
        .collect()
        .expect("filter");
    assert_eq!(found.height(), 1, "one {level} row for {code}");
    found
}

fn f64_of(df: &DataFrame, column: &str) -> f64 {
    df.column(column)
        .and_then(|c| c.cast(&DataType::Float64))
        .expect("column")
        .f64()
        .expect("f64")
        .get(0)
        .unwrap_or(f64::NAN)
}

fn str_of(df: &DataFrame, column: &str) -> Option<String> {
    df.column(column)
        .expect("column")
        .str()
        .expect("str")
        .get(0)
        .map(str::to_string)
}

#[test]
fn area_deprivation_matches_a_hand_computation() {
    let dir = Workdir::new("run-hand");
    let root = dir.join("out");
    let run = run_into(&dir, &root, "r1", &[]);
    run.expect_code(0);
    assert_eq!(run.stdout().trim(), root.join("r1").display().to_string());
    let areas = read(&root.join("r1").join("area_deprivation.parquet"));

    // A81001: 4 residents of E01012298 (IMD score 3.062) and 2 of E01033477 (75.941, decile 1).
    let a81001 = row(&areas, "practice", "A81001");
    assert_eq!(f64_of(&a81001, "population"), 6.0);
    assert!((f64_of(&a81001, "imd_score") - (4.0 * 3.062 + 2.0 * 75.941) / 6.0).abs() < 1e-9);
    assert!((f64_of(&a81001, "core20_share") - 2.0 / 6.0).abs() < 1e-12);
    assert_eq!(str_of(&a81001, "parent_code").as_deref(), Some("U89141"));

    // A81002: 3 in E01012187 (18.431), 1 in E01012266 (74.481, decile 1), one with no LSOA and
    // one Welsh resident: neither counts towards the English deprivation figures.
    let a81002 = row(&areas, "practice", "A81002");
    assert_eq!(f64_of(&a81002, "population"), 6.0);
    assert_eq!(f64_of(&a81002, "population_with_imd"), 4.0);
    assert!((f64_of(&a81002, "imd_score") - (3.0 * 18.431 + 74.481) / 4.0).abs() < 1e-9);
    assert!((f64_of(&a81002, "core20_share") - 0.25).abs() < 1e-12);
    assert_eq!(f64_of(&a81002, "population_imd_q3"), 3.0);

    // A84035 is in no PCN at the extract date but still counts for its ICB and England.
    let a84035 = row(&areas, "practice", "A84035");
    assert_eq!(str_of(&a84035, "parent_code"), None);
    let icb = row(&areas, "icb", "QHM");
    assert_eq!(f64_of(&icb, "population"), 14.0);
    let england = row(&areas, "england", "E92000001");
    assert_eq!(f64_of(&england, "population"), 14.0);
    assert_eq!(f64_of(&england, "core20_population"), 3.0);
}

#[test]
fn patients_are_attributed_by_membership_and_lsoas_by_residence() {
    let dir = Workdir::new("run-attribute");
    let root = dir.join("out");
    run_into(&dir, &root, "r1", &[]).expect_code(0);
    let patients = read(&root.join("r1").join("patients_enriched.parquet"));
    assert_eq!(patients.height(), 14);
    let pcn: Vec<Option<&str>> = patients
        .column("pcn_code")
        .expect("pcn")
        .str()
        .expect("str")
        .iter()
        .collect();
    assert_eq!(pcn[0], Some("U89141"));
    assert_eq!(pcn[6], Some("U07032"));
    assert_eq!(
        pcn[12], None,
        "A84035 left no PCN membership current at the extract date"
    );
    let icb = patients
        .column("icb_code")
        .expect("icb")
        .str()
        .expect("str");
    assert!(icb.iter().all(|c| c == Some("QHM")));
    let welsh = patients
        .column("nation")
        .expect("nation")
        .str()
        .expect("str")
        .get(11);
    assert_eq!(welsh, Some("W"));

    let weights = read(&root.join("r1").join("footprint_weights.parquet"));
    let lsoas: Vec<Option<&str>> = weights
        .column("lsoa_code")
        .expect("lsoa")
        .str()
        .expect("str")
        .iter()
        .collect();
    assert_eq!(
        lsoas,
        [
            Some("E01012187"),
            Some("E01012266"),
            Some("E01012298"),
            Some("E01033477"),
            Some("W01000001")
        ],
        "every LSOA with registered residents in a PCN gets a footprint"
    );
    // E01012298: 4 residents at A81001 (Stockton PCN), 2 at A84035 (no PCN): plurality is U89141.
    let pcn: Vec<Option<&str>> = weights
        .column("footprint_code")
        .expect("code")
        .str()
        .expect("str")
        .iter()
        .collect();
    assert_eq!(pcn[2], Some("U89141"));

    let manifest = crate::harness::run_manifest(&root.join("r1"));
    assert_eq!(manifest["population"], 14);
    assert_eq!(manifest["membership"]["practices_without_pcn"], 1);
    assert_eq!(manifest["deprivation_match"]["no_lsoa_code"], 1);
    assert!(
        manifest["inputs"][0]["sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64)
    );
    assert!(manifest["stages"].as_array().is_some_and(|s| !s.is_empty()));
}

#[test]
fn rerunning_gives_byte_identical_tables() {
    let dir = Workdir::new("run-repro");
    let first = dir.join("a");
    let second = dir.join("b");
    run_into(&dir, &first, "same", &[]).expect_code(0);
    run_into(&dir, &second, "same", &[]).expect_code(0);
    for table in [
        "patients_enriched",
        "footprint_weights",
        "area_deprivation",
        "rejects",
    ] {
        let a = std::fs::read(first.join("same").join(format!("{table}.parquet"))).expect("a");
        let b = std::fs::read(second.join("same").join(format!("{table}.parquet"))).expect("b");
        assert!(a == b, "{table} differs between identical runs");
    }
}

#[test]
fn a_run_killed_during_publish_leaves_latest_on_the_previous_run() {
    let dir = Workdir::new("run-abort");
    let root = dir.join("out");
    run_into(&dir, &root, "r1", &[]).expect_code(0);
    assert_eq!(latest(&root), Some(PathBuf::from("r1")));

    // Killed with every table written but not yet renamed: no r2, latest untouched.
    let killed = run_into(&dir, &root, "r2", &["--abort-at", "tables"]);
    assert_ne!(killed.code(), 0);
    assert!(!root.join("r2").exists());
    assert_eq!(latest(&root), Some(PathBuf::from("r1")));
    let staging: Vec<String> = std::fs::read_dir(&root)
        .expect("root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        staging.iter().any(|n| n.starts_with(".tmp-r2")),
        "{staging:?}"
    );
    assert!(
        staging.iter().any(|n| n == ".healthgap.lock"),
        "the killed run's lock is left behind"
    );
    assert_eq!(
        read(&root.join("latest").join("area_deprivation.parquet")).height(),
        7
    );

    // Killed after the rename but before latest switched: r2 exists, latest still r1.
    let killed = run_into(&dir, &root, "r3", &["--abort-at", "rename"]);
    assert_ne!(killed.code(), 0);
    assert!(root.join("r3").join("manifest.json").exists());
    assert_eq!(latest(&root), Some(PathBuf::from("r1")));

    // The next run clears the stale lock and staging folder and publishes.
    let next = dir.run(&[
        "run",
        "--config",
        &fixture_config(),
        "--out",
        &root.display().to_string(),
        "--run-id",
        "r4",
    ]);
    next.expect_code(0);
    assert!(
        next.stderr().contains("cleared a stale lock"),
        "{}",
        next.stderr()
    );
    assert_eq!(latest(&root), Some(PathBuf::from("r4")));
    let left: Vec<String> = std::fs::read_dir(&root)
        .expect("root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        left.is_empty(),
        "staging folders and lock are gone: {left:?}"
    );
}

#[test]
fn a_live_lock_refuses_a_second_run() {
    let dir = Workdir::new("run-lock");
    let root = dir.join("out");
    std::fs::create_dir_all(&root).expect("root");
    // This test process is alive: a lock naming it belongs to a running run.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let lock = serde_json::json!({
        "pid": std::process::id(),
        "host": host.trim(),
        "process_start": null,
        "run_id": "other",
        "started_at": "2026-11-21T02:00:00Z",
    });
    std::fs::write(root.join(".healthgap.lock"), lock.to_string()).expect("lock");
    let run = run_into(&dir, &root, "r1", &[]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("another run is writing to"),
        "{}",
        run.stderr()
    );
    assert!(!root.join("r1").exists());
}

#[test]
fn unwritable_root_and_bad_inputs_are_exit_2_with_nothing_published() {
    let dir = Workdir::new("run-unwritable");
    let file = dir.create("not-a-folder", "x");
    let run = run_into(&dir, &file.join("out"), "r1", &[]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("cannot create the output root"),
        "{}",
        run.stderr()
    );

    let root = dir.join("out");
    let config = dir.create(
        "bad.toml",
        format!(
            "[run]\nextract_date = \"2023-02-01\"\n[inputs.patients]\npath = \"{}\"\n[inputs.iod2019]\npath = \"{}\"\n",
            fixtures().join("ingest").join("patients_bad_rows.csv").display(),
            crate::harness::data_dir().join("iod2019_lsoa11.parquet").display()
        ),
    );
    let run = dir.run(&[
        "run",
        "--config",
        &config.display().to_string(),
        "--out",
        &root.display().to_string(),
    ]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("1 input(s) failed validation; nothing was published"),
        "{}",
        run.stderr()
    );
    assert!(latest(&root).is_none());
}

#[test]
fn json_logs_for_schedulers() {
    let dir = Workdir::new("run-json");
    let root = dir.join("out");
    // `--json` is short for `--log-format json`, and like it may come after the subcommand.
    for (run_id, flags) in [
        ("j1", ["--log-format", "json"].as_slice()),
        ("j2", ["--json"].as_slice()),
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        let config = fixture_config();
        let out = root.display().to_string();
        args.extend(["--config", &config, "--out", &out, "--run-id", run_id]);
        let run = dir.run(&args);
        run.expect_code(0);
        let lines: Vec<serde_json::Value> = run
            .stderr()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{flags:?}: not JSON: {l}: {e}"))
            })
            .collect();
        assert!(lines.iter().any(|l| l["stage"] == "ingest"), "{flags:?}");
        assert!(
            lines.iter().any(|l| l["message"] == "run complete"
                && l["population"] == 14
                && l["population_shape"] == "patients"),
            "{flags:?}"
        );
    }
}

#[test]
fn a_finished_run_says_how_many_registered_people_it_counted() {
    let dir = Workdir::new("run-note");
    let config = fixture_config();
    let out = dir.join("out").display().to_string();
    let run = dir.run(&[
        "run", "--config", &config, "--out", &out, "--run-id", "noted",
    ]);
    run.expect_code(0);
    let stderr = run.stderr();
    assert!(
        stderr.contains("run noted complete: 14 registered people, 0 input rows refused"),
        "{stderr}"
    );
}

#[test]
fn aggregate_cells_take_the_same_path_with_weights() {
    let dir = Workdir::new("run-cells");
    let data = crate::harness::data_dir();
    let cells = dir.create(
        "cells.csv",
        "PRACTICE_CODE,LSOA_CODE,SEX,NUMBER_OF_PATIENTS\nA81001,E01012298,MALE,40\nA81001,E01033477,FEMALE,20\nA81002,E01012187,ALL,30\n",
    );
    let config = dir.create(
        "cells.toml",
        format!(
            "[run]\nextract_date = \"2023-02-01\"\n[inputs.practice_lsoa]\npath = \"{}\"\n[inputs.iod2019]\npath = \"{}\"\n[inputs.epcn_members]\npath = \"{}\"\n[inputs.epraccur]\npath = \"{}\"\n",
            cells.display(),
            data.join("iod2019_lsoa11.parquet").display(),
            data.join("epcn_members_2023-02.parquet").display(),
            data.join("epraccur_2023-02.parquet").display(),
        ),
    );
    let root = dir.join("out");
    dir.run_pipeline(&config, &root, "c1").expect_code(0);
    let areas = read(&root.join("c1").join("area_deprivation.parquet"));
    let a81001 = row(&areas, "practice", "A81001");
    assert_eq!(f64_of(&a81001, "population"), 60.0);
    assert!((f64_of(&a81001, "imd_score") - (40.0 * 3.062 + 20.0 * 75.941) / 60.0).abs() < 1e-9);
    let england = row(&areas, "england", "E92000001");
    assert_eq!(f64_of(&england, "population"), 90.0);
}

#[test]
fn lsoa_centroids_fall_in_exactly_one_icb_and_local_authorities_stay_together() {
    let dir = Workdir::new("run-geometric");
    let data = crate::harness::data_dir();
    let mut config = crate::harness::fixture_run_config(&crate::harness::fixture_run_patients());
    config.push_str(&format!(
        "[inputs.lsoa_centroids]\npath = \"{}\"\n[[footprints]]\nkind = \"icb\"\npath = \"{}\"\n",
        data.join("lsoa11_centroids.parquet").display(),
        data.join("icb22_boundaries.geojson").display()
    ));
    let config = dir.create("geo.toml", config);
    let root = dir.join("out");
    dir.run_pipeline(&config, &root, "g1").expect_code(0);
    let manifest = crate::harness::run_manifest(&root.join("g1"));
    let report = &manifest["geometric"][0];
    // Every English LSOA 2011 centroid is inside exactly one of the 42 ICB polygons; the
    // 1,909 Welsh ones are in none (ICBs cover England only).
    assert_eq!(report["inside_one"], 32_844, "{report}");
    assert_eq!(report["inside_several"], 0, "{report}");
    assert_eq!(report["outside"]["W"], 1_909, "{report}");
    assert!(report["outside"].get("E").is_none(), "{report}");

    let weights = LazyFrame::scan_parquet(
        PlRefPath::new(
            root.join("g1")
                .join("footprint_weights.parquet")
                .to_string_lossy()
                .as_ref(),
        ),
        ScanArgsParquet::default(),
    )
    .expect("weights")
    .filter(col("footprint_kind").eq(lit("icb")));
    assert_eq!(
        weights
            .clone()
            .collect()
            .expect("collect")
            .column("footprint_code")
            .expect("code")
            .n_unique()
            .expect("n"),
        42
    );
    let lookup = LazyFrame::scan_parquet(
        PlRefPath::new(
            data.join("lsoa11_lookup.parquet")
                .to_string_lossy()
                .as_ref(),
        ),
        ScanArgsParquet::default(),
    )
    .expect("lookup")
    .select([
        col("LSOA_CODE").alias("lsoa_code"),
        col("LAD_CODE").alias("lad"),
    ]);
    let by_lad = weights
        .join(
            lookup,
            [col("lsoa_code")],
            [col("lsoa_code")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("lad"), col("footprint_code")])
        .agg([len().alias("n")])
        .group_by([col("lad")])
        .agg([
            col("n").max().alias("in_main_icb"),
            col("n").sum().alias("lsoas"),
        ])
        .collect()
        .expect("by local authority");
    let main: f64 = by_lad
        .column("in_main_icb")
        .expect("m")
        .cast(&DataType::Float64)
        .expect("f")
        .f64()
        .expect("f")
        .sum()
        .unwrap_or(0.0);
    let all: f64 = by_lad
        .column("lsoas")
        .expect("l")
        .cast(&DataType::Float64)
        .expect("f")
        .f64()
        .expect("f")
        .sum()
        .unwrap_or(0.0);
    assert_eq!(all, 32_844.0);
    // 99.47% of LSOAs lie in the ICB holding most of their local authority; the rest belong to
    // the 12 authorities that 2022 ICB boundaries really split (East Suffolk, Waverley, Hart, …).
    assert!(main / all >= 0.99, "{}", main / all);
    let split = by_lad
        .lazy()
        .filter(
            (col("in_main_icb").cast(DataType::Float64) / col("lsoas").cast(DataType::Float64))
                .lt(lit(0.99)),
        )
        .collect()
        .expect("split")
        .height();
    assert!(split <= 12, "{split} local authorities split across ICBs");
}

#[test]
fn disclosure_control_suppresses_small_counts_by_default() {
    let dir = Workdir::new("run-disclosure");
    let config = crate::harness::fixture_run_config(&crate::harness::fixture_run_patients())
        .replace("enabled = false", "enabled = true");
    let config = dir.create("sdc.toml", config);
    let root = dir.join("out");
    dir.run_pipeline(&config, &root, "s1").expect_code(0);
    let areas = read(&root.join("s1").join("area_deprivation.parquet"));
    let a81001 = row(&areas, "practice", "A81001");
    assert!(
        f64_of(&a81001, "population").is_nan(),
        "6 people is suppressed"
    );
    assert!(
        f64_of(&a81001, "imd_score").is_nan(),
        "a score from 6 people is withheld"
    );
    let england = row(&areas, "england", "E92000001");
    assert_eq!(f64_of(&england, "population"), 15.0, "14 rounds to 15");
    let suppressed = a81001
        .column("suppressed")
        .expect("flag")
        .bool()
        .expect("bool")
        .get(0);
    assert_eq!(suppressed, Some(true));
}

/// A `run.outcome_period` in a run without patient outcomes is not used, and the run says so.
#[test]
fn an_outcome_period_without_patient_outcomes_is_named_in_a_warning() {
    let dir = Workdir::new("unused-outcome-period");
    let text = crate::harness::fixture_run_config(&crate::harness::fixture_run_patients())
        .replace("[run]\n", "[run]\noutcome_period = \"2024/25\"\n");
    let config = dir.create("healthgap.toml", text);
    let root = dir.join("out");
    let run = dir.run_pipeline(&config, &root, "r1");
    run.expect_code(0);
    let warning = "run.outcome_period = \"2024/25\" is set, but the run reads no patient outcomes: it is not used";
    assert!(run.stderr().contains(warning), "{}", run.stderr());
    let manifest = crate::harness::run_manifest(&root.join("r1"));
    assert_eq!(manifest["outcome_periods"], serde_json::Value::Null);
    assert!(
        manifest["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str() == Some(warning))),
        "{}",
        manifest["warnings"]
    );
}
