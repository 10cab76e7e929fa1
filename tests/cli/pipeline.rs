//! The whole pipeline on synthetic data: planted gradients recovered, breakdowns that add up,
//! segments, and disclosure control on everything publishable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use polars::prelude::*;

/// The demo's analysis sections without the (national) practice-level indicator, with a
/// shorter simulation: enough for every check here and quick in a debug build.
pub(crate) fn analysis_sections(disclosure: bool) -> String {
    let sections = healthgap::demo::DEMO_SECTIONS;
    let start = sections
        .find("# --- Indicators from practice-level")
        .expect("practice section");
    let end = sections
        .find("# --- Segments, risk, gradients")
        .expect("segments section");
    let mut text = format!("{}{}", &sections[..start], &sections[end..]);
    text = text.replace("repetitions = 100000", "repetitions = 10000");
    text.push_str(&format!("\n[disclosure]\nenabled = {disclosure}\n"));
    text
}

/// Run the pipeline over the shared 120,000-patient ICB sample, once per process
/// (`patients_per_part`: split the list into parts of at most that many patients).
fn pipeline_run(
    cell: &'static OnceLock<PathBuf>,
    name: &str,
    disclosure: bool,
    patients_per_part: Option<u64>,
) -> &'static Path {
    cell.get_or_init(|| {
        let data = crate::synth::icb_run();
        let mut config =
            std::fs::read_to_string(data.join("healthgap.toml")).expect("synth config");
        if let Some(per_part) = patients_per_part {
            assert!(
                config.contains("[run]\n"),
                "the synth config has a [run] table"
            );
            config = config.replace(
                "[run]\n",
                &format!("[run]\npatients_per_part = {per_part}\n"),
            );
        }
        config.push_str(&analysis_sections(disclosure));
        let config_path = data.join(format!("{name}.toml"));
        std::fs::write(&config_path, config).expect("write config");
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("pipeline")
            .join(name);
        let _ = std::fs::remove_dir_all(&root);
        let output = Command::new(env!("CARGO_BIN_EXE_healthgap"))
            .args(["--quiet", "run", "--config"])
            .arg(&config_path)
            .arg("--out")
            .arg(&root)
            .args(["--run-id", "r1"])
            .output()
            .expect("run healthgap");
        assert!(
            output.status.success(),
            "healthgap run failed\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        root.join("r1")
    })
}

fn unrounded_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    pipeline_run(&RUN, "unrounded", false, None)
}

/// The same run with the registered list split into five parts by patient.
fn split_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    pipeline_run(&RUN, "split", false, Some(25_000))
}

pub(crate) fn published_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    pipeline_run(&RUN, "published", true, None)
}

fn read(path: &Path) -> DataFrame {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .and_then(|lf| lf.collect())
    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn f64_at(df: &DataFrame, column: &str, row: usize) -> f64 {
    df.column(column)
        .and_then(|c| c.cast(&DataType::Float64))
        .expect(column)
        .f64()
        .expect("f64")
        .get(row)
        .unwrap_or(f64::NAN)
}

/// (truth outcome code, pipeline indicator, scale from the truth's unit, age-standardised)
const PLANTED: &[(&str, &str, f64, bool)] = &[
    (
        "emergency_admissions",
        "emergency_admissions",
        1000.0,
        false,
    ),
    ("ae_attendances", "ae_attendances", 1000.0, false),
    ("death_12m", "mortality_dsr", 100_000.0, true),
    ("bp_controlled", "bp_controlled", 100.0, false),
    ("flu_vaccinated", "flu_vaccination_65", 100.0, false),
    ("cervical_screened", "cervical_screening", 100.0, false),
    ("bowel_screened", "bowel_screening", 100.0, false),
    ("breast_screened", "breast_screening", 100.0, false),
    ("current_smoker", "smoking", 100.0, false),
];

/// `table` sorted by its columns other than floating-point ones (which identify its rows).
fn sorted_by_keys(table: DataFrame) -> DataFrame {
    let keys: Vec<PlSmallStr> = table
        .schema()
        .iter()
        .filter(|(_, dtype)| !dtype.is_float())
        .map(|(name, _)| name.clone())
        .collect();
    table
        .sort(keys, SortMultipleOptions::default().with_nulls_last(true))
        .expect("sort")
}

#[test]
fn a_list_split_into_parts_by_patient_gives_the_tables_of_the_whole_list() {
    let whole = unrounded_run();
    let split = split_run();
    let manifest = crate::harness::run_manifest(split);
    assert_eq!(manifest["population"], 120_000);
    let leftovers: Vec<_> = std::fs::read_dir(split)
        .expect("run folder")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "working files left: {leftovers:?}");
    assert_same_tables(
        whole,
        split,
        &[
            "patients_enriched",
            "segments",
            "indicators",
            "inequality",
            "area_deprivation",
            "footprint_weights",
        ],
    );
}

/// Plants long rows that count for nobody in a synthetic CSV run: three condition rows and two
/// outcome rows of ids not on the list, and the first patient's row refused (a practice code
/// that is not one), whose own long rows then count for nobody either. The rows of each long
/// input that count for nobody (conditions, outcomes).
fn plant_unlisted_rows(data: &Path) -> (u64, u64) {
    let patients = data.join("patients.csv");
    let text = std::fs::read_to_string(&patients).expect("patients.csv");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header = crate::harness::split(&lines[0]);
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let mut first = crate::harness::split(&lines[1]);
    let refused_id = first[at("patient_id")].clone();
    first[at("practice_code")] = "not a practice".to_string();
    lines[1] = first.join(",");
    std::fs::write(&patients, lines.join("\n") + "\n").expect("write patients.csv");

    let mut unlisted = Vec::new();
    for (file, planted) in [("conditions.csv", 3), ("outcomes.csv", 2)] {
        let path = data.join(file);
        let text = std::fs::read_to_string(&path).expect(file);
        let mut lines = text.lines();
        let header = crate::harness::split(lines.next().expect("header"));
        let id_at = header
            .iter()
            .position(|h| h == "patient_id")
            .expect("patient_id");
        let rows: Vec<Vec<String>> = lines.map(crate::harness::split).collect();
        let of_refused = rows.iter().filter(|row| row[id_at] == refused_id).count() as u64;
        let mut planted_text = text.clone();
        for (n, row) in rows.iter().take(planted).enumerate() {
            let mut row = row.clone();
            row[id_at] = format!("NOT-ON-THE-LIST-{n}");
            planted_text.push_str(&(row.join(",") + "\n"));
        }
        std::fs::write(&path, planted_text).expect(file);
        unlisted.push(of_refused + planted as u64);
    }
    (unlisted[0], unlisted[1])
}

/// A 3,000-patient PCN-scale synthetic extract written as CSV under `work`/csv (seed `seed`),
/// and its config with the analysis sections.
fn csv_extract(work: &crate::harness::Workdir, seed: &str) -> (PathBuf, String) {
    let data = work.join("csv");
    crate::synth::synth(
        &data,
        &[
            "--scale",
            "pcn",
            "--patients",
            "3000",
            "--seed",
            seed,
            "--format",
            "csv",
        ],
        None,
    );
    let config = std::fs::read_to_string(data.join("healthgap.toml")).expect("synth config");
    assert!(
        config.contains("[run]\n"),
        "the synth config has a [run] table"
    );
    (data, config + &analysis_sections(false))
}

/// `healthgap run` (not quiet: notes and warnings are checked) on `config` with
/// `run_settings` added to its `[run]` table, as run `r1` under `work`/`name`; the run and its
/// folder.
fn run_with_settings(
    work: &crate::harness::Workdir,
    data: &Path,
    config: &str,
    name: &str,
    run_settings: &str,
) -> (crate::harness::Run, PathBuf) {
    let path = data.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        config.replace("[run]\n", &format!("[run]\n{run_settings}")),
    )
    .expect("write config");
    let root = work.join(name);
    let run = work.run(&[
        "run",
        "--config",
        &path.display().to_string(),
        "--out",
        &root.display().to_string(),
        "--run-id",
        "r1",
    ]);
    (run, root.join("r1"))
}

/// A CSV registered list is split as ingest reads it, with its row count from the structure
/// pass: the tables are those of the list in one piece. Long rows of patients not on the list
/// are counted alike either way.
#[test]
fn a_csv_list_split_as_ingest_reads_it_gives_the_tables_of_the_whole_list() {
    let work = crate::harness::Workdir::new("split-csv");
    let (data, config) = csv_extract(&work, "3");
    let unlisted = plant_unlisted_rows(&data);
    let mut runs = Vec::new();
    for (name, extra) in [("whole", ""), ("split", "patients_per_part = 1000\n")] {
        let (run, run_dir) = run_with_settings(&work, &data, &config, name, extra);
        run.expect_code(0);
        let split_note = run
            .stderr()
            .contains("3000 patients: the patient stages run in 3 parts");
        assert_eq!(split_note, name == "split", "{}", run.stderr());
        let warning = format!(
            "rows of patients not on the accepted registered list (not in the patients file, or on a row ingest refused) count for nobody: {} condition rows, {} outcome rows",
            unlisted.0, unlisted.1
        );
        assert!(run.stderr().contains(&warning), "{name}: {}", run.stderr());
        let manifest = crate::harness::run_manifest(&run_dir);
        assert_eq!(
            manifest["unlisted_patient_rows"],
            serde_json::json!({"conditions": unlisted.0, "outcomes": unlisted.1}),
            "{name}"
        );
        runs.push(run_dir);
    }
    assert_same_tables(
        &runs[0],
        &runs[1],
        &["patients_enriched", "segments", "indicators", "inequality"],
    );
}

/// Every table of `whole` has the rows of the same table of `split` (sorted by their keys;
/// floats within 1e-9 relative, as sums taken in another order differ in the last bits).
fn assert_same_tables(whole: &Path, split: &Path, tables: &[&str]) {
    for table in tables {
        let file = format!("{table}.parquet");
        let a = sorted_by_keys(read(&whole.join(&file)));
        let b = sorted_by_keys(read(&split.join(&file)));
        assert_eq!(a.schema(), b.schema(), "{table}: columns");
        assert_eq!(a.height(), b.height(), "{table}: rows");
        for (x, y) in a.columns().iter().zip(b.columns()) {
            if x.dtype().is_float() {
                // Sums taken in another order differ in the last bits only.
                let (x, y) = (x.f64().expect("f64"), y.f64().expect("f64"));
                for (row, (u, v)) in x.iter().zip(y.iter()).enumerate() {
                    let close = match (u, v) {
                        (Some(u), Some(v)) => {
                            (u - v).abs() <= 1e-9 * u.abs().max(1.0) || (u.is_nan() && v.is_nan())
                        }
                        (u, v) => u.is_none() && v.is_none(),
                    };
                    assert!(close, "{table}.{} row {row}: {u:?} vs {v:?}", x.name());
                }
            } else {
                assert!(x.equals_missing(y), "{table}.{}: values differ", x.name());
            }
        }
    }
}

#[test]
fn planted_gradients_are_recovered_within_the_95_percent_limits() {
    let run = unrounded_run();
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::synth::icb_run().join("truth.json")).expect("truth"),
    )
    .expect("json");
    let inequality = read(&run.join("inequality.parquet"))
        .lazy()
        .filter(col("footprint_kind").eq(lit("england")))
        .collect()
        .expect("england rows");
    let ids = inequality
        .column("indicator")
        .expect("ids")
        .str()
        .expect("str")
        .clone();
    let mut inside = 0;
    let mut report = Vec::new();
    for (code, indicator, scale, standardised) in PLANTED {
        let outcome = truth["outcomes"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["indicator"] == *code))
            .unwrap_or_else(|| panic!("{code} in truth.json"));
        // The plant's SII for the generated practices (integrated over the model, not the
        // sample), in the indicator's unit.
        let planted = if *standardised {
            outcome["selection"]["age_standardised"]["sii"].as_f64()
        } else {
            outcome["selection"]["sii"].as_f64()
        }
        .expect("planted sii")
            * scale;
        let row = (0..inequality.height())
            .find(|&i| ids.get(i) == Some(*indicator))
            .unwrap_or_else(|| panic!("{indicator} in the inequality table"));
        let (sii, lower, upper) = (
            f64_at(&inequality, "sii", row),
            f64_at(&inequality, "sii_lower95_0cl", row),
            f64_at(&inequality, "sii_upper95_0cl", row),
        );
        assert!(
            lower < sii && sii < upper,
            "{indicator}: {lower} < {sii} < {upper}"
        );
        // The plant's direction is recovered for every outcome.
        assert_eq!(
            sii.signum(),
            planted.signum(),
            "{indicator}: SII {sii}, planted {planted}"
        );
        let within = lower <= planted && planted <= upper;
        inside += usize::from(within);
        report.push(format!(
            "{indicator}: planted {planted:.3}, estimated {sii:.3} ({lower:.3} to {upper:.3}){}",
            if within { "" } else { "  OUTSIDE" }
        ));
    }
    // At 95% one miss in ten is expected by chance.
    assert!(
        inside + 1 >= PLANTED.len(),
        "planted SII inside the limits for {inside} of {}:\n{}",
        PLANTED.len(),
        report.join("\n")
    );
}

#[test]
fn breakdowns_add_up_to_footprint_totals_and_icbs_to_england() {
    let run = unrounded_run();
    let indicators = read(&run.join("indicators.parquet"));
    let totals = indicators
        .clone()
        .lazy()
        .filter(col("breakdown").eq(lit("all")))
        .select([
            col("indicator"),
            col("footprint_kind"),
            col("footprint_code"),
            col("numerator").alias("total_numerator"),
            col("denominator").alias("total_denominator"),
        ]);
    let by_breakdown = indicators
        .clone()
        .lazy()
        .filter(col("breakdown").neq(lit("all")))
        .group_by([
            col("indicator"),
            col("footprint_kind"),
            col("footprint_code"),
            col("breakdown"),
        ])
        .agg([col("numerator").sum(), col("denominator").sum()])
        .join(
            totals,
            [
                col("indicator"),
                col("footprint_kind"),
                col("footprint_code"),
            ],
            [
                col("indicator"),
                col("footprint_kind"),
                col("footprint_code"),
            ],
            JoinArgs::new(JoinType::Left),
        )
        .collect()
        .expect("sums");
    assert!(by_breakdown.height() > 100);
    for row in 0..by_breakdown.height() {
        for (part, total) in [
            ("numerator", "total_numerator"),
            ("denominator", "total_denominator"),
        ] {
            let (a, b) = (
                f64_at(&by_breakdown, part, row),
                f64_at(&by_breakdown, total, row),
            );
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "row {row}: {part} {a} vs {b}"
            );
        }
    }
    // England is the sum of its ICBs (every generated practice has a parent ICB).
    let levels = indicators
        .lazy()
        .filter(col("breakdown").eq(lit("all")))
        .group_by([col("indicator"), col("footprint_kind")])
        .agg([col("numerator").sum(), col("denominator").sum()])
        .collect()
        .expect("levels");
    let mut sums: HashMap<(String, String), (f64, f64)> = HashMap::new();
    for row in 0..levels.height() {
        let key = |c: &str| {
            levels
                .column(c)
                .expect(c)
                .str()
                .expect("str")
                .get(row)
                .unwrap_or("")
                .to_string()
        };
        sums.insert(
            (key("indicator"), key("footprint_kind")),
            (
                f64_at(&levels, "numerator", row),
                f64_at(&levels, "denominator", row),
            ),
        );
    }
    for ((indicator, kind), (x, n)) in &sums {
        if kind == "england" {
            for level in ["icb", "practice"] {
                let (lx, ln) = sums[&(indicator.clone(), level.to_string())];
                assert!(
                    (x - lx).abs() < 1e-6 && (n - ln).abs() < 1e-6,
                    "{indicator}: England vs {level}"
                );
            }
        }
    }
}

#[test]
fn segments_cover_everyone_once_per_segmentation() {
    let run = unrounded_run();
    let segments = read(&run.join("segments.parquet"));
    let people = segments
        .lazy()
        .filter(col("footprint_kind").eq(lit("england")))
        .group_by([col("segmentation")])
        .agg([
            col("population").sum(),
            col("segment").n_unique().alias("segments"),
        ])
        .sort(["segmentation"], SortMultipleOptions::default())
        .collect()
        .expect("segments");
    let patients = read(&run.join("patients_enriched.parquet")).height() as f64;
    assert_eq!(people.height(), 2, "two segmentations");
    for row in 0..2 {
        assert_eq!(
            f64_at(&people, "population", row),
            patients,
            "every patient in exactly one segment"
        );
    }
    // Bridges to Health: all eight segments are populated in an ICB-sized sample.
    assert_eq!(f64_at(&people, "segments", 0), 8.0);
    assert_eq!(
        f64_at(&people, "segments", 1),
        4.0,
        "Core20PLUS5 cross-cut: four cells"
    );
}

#[test]
fn no_publishable_table_shows_a_count_from_1_to_7_or_a_patient_id() {
    let run = published_run();
    let manifest = crate::harness::run_manifest(run);
    let outputs = manifest["outputs"].as_array().expect("outputs");
    let ids: std::collections::HashSet<String> = read(&run.join("patients_enriched.parquet"))
        .column("patient_id")
        .expect("patient ids")
        .str()
        .expect("str")
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    assert!(ids.len() > 100_000);
    let mut checked = 0;
    for output in outputs {
        let table = output["table"].as_str().expect("table");
        if output["restricted"] == true {
            continue;
        }
        let df = read(&run.join(format!("{table}.parquet")));
        assert!(
            df.column("patient_id").is_err(),
            "{table} has a patient_id column"
        );
        for column in df.columns() {
            if let DataType::String = column.dtype() {
                let text = column.str().expect("str");
                assert!(
                    !text.iter().flatten().any(|v| ids.contains(v)),
                    "{table}.{} holds a patient id",
                    column.name()
                );
            }
        }
        let counts: &[&str] = match table {
            "indicators" | "inequality" => &["numerator", "denominator"],
            "segments" => &["population"],
            "area_deprivation" => &["population", "population_with_imd", "core20_population"],
            _ => &[],
        };
        for name in counts {
            let values = df
                .column(name)
                .expect(name)
                .cast(&DataType::Float64)
                .expect("f64");
            let bad = values
                .f64()
                .expect("f64")
                .iter()
                .flatten()
                .filter(|v| *v > 0.0 && *v < 8.0)
                .count();
            assert_eq!(bad, 0, "{table}.{name} shows {bad} counts from 1 to 7");
            let unrounded = values
                .f64()
                .expect("f64")
                .iter()
                .flatten()
                .filter(|v| (v / 5.0).fract() != 0.0)
                .count();
            assert_eq!(unrounded, 0, "{table}.{name} has counts not rounded to 5");
        }
        checked += 1;
    }
    assert!(checked >= 5, "checked {checked} publishable tables");
    // The manifest: restricted tables are marked so, and it holds no patient id anywhere (it
    // records counts and reasons, never input values).
    for output in outputs {
        let restricted =
            ["patients_enriched", "rejects"].contains(&output["table"].as_str().unwrap_or(""));
        assert_eq!(output["restricted"], restricted, "{output}");
    }
    let mut strings = Vec::new();
    json_strings(&manifest, &mut strings);
    let leaked: Vec<&String> = strings.iter().filter(|s| ids.contains(*s)).collect();
    assert!(
        leaked.is_empty(),
        "the manifest holds patient ids: {leaked:?}"
    );
    let text = manifest.to_string();
    let sample: Vec<&String> = ids.iter().filter(|id| id.len() >= 6).take(2000).collect();
    assert!(
        !sample.iter().any(|id| text.contains(id.as_str())),
        "the manifest quotes a patient id"
    );
    // Values computed from suppressed counts are withheld.
    let indicators = read(&run.join("indicators.parquet"));
    let leaked = indicators
        .lazy()
        .filter(col("suppressed").and(col("value").is_not_null()))
        .collect()
        .expect("leaks");
    assert_eq!(leaked.height(), 0);
}

/// Every string value in a JSON document.
fn json_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
}

#[test]
fn suppression_cannot_be_undone_by_differencing_totals_and_parts() {
    let run = published_run();
    // indicators: within an indicator × footprint × breakdown, the parts of a shown `all` row
    // never have exactly one hidden cell, for the numerator and the denominator alike.
    let indicators = read(&run.join("indicators.parquet"));
    let keys = [
        col("indicator"),
        col("footprint_kind"),
        col("footprint_code"),
    ];
    for count in ["numerator", "denominator"] {
        let totals = indicators
            .clone()
            .lazy()
            .filter(col("breakdown").eq(lit("all")))
            .select([
                col("indicator"),
                col("footprint_kind"),
                col("footprint_code"),
                col(count).is_null().alias("total_hidden"),
            ]);
        let single = indicators
            .clone()
            .lazy()
            .filter(col("breakdown").neq(lit("all")))
            .group_by([
                col("indicator"),
                col("footprint_kind"),
                col("footprint_code"),
                col("breakdown"),
            ])
            .agg([
                col(count).is_null().sum().alias("hidden"),
                len().alias("cells"),
            ])
            .join(
                totals,
                keys.clone(),
                keys.clone(),
                JoinArgs::new(JoinType::Left),
            )
            .filter(
                col("hidden")
                    .eq(lit(1))
                    .and(col("total_hidden").not())
                    .and(col("cells").gt(lit(1))),
            )
            .collect()
            .expect("groups");
        assert_eq!(
            single.height(),
            0,
            "{count}: breakdown groups with one hidden part:\n{single}"
        );
    }
    let suppressed = indicators
        .clone()
        .lazy()
        .filter(col("suppressed"))
        .collect()
        .expect("suppressed")
        .height();
    assert!(suppressed > 0, "the sample has small cells to protect");

    // inequality repeats the quintile 1 and 5 numerators: hidden wherever indicators hides them.
    let inequality = read(&run.join("inequality.parquet"));
    let quintile = |label: &str| {
        indicators
            .clone()
            .lazy()
            .filter(
                col("breakdown")
                    .eq(lit("imd_quintile"))
                    .and(col("breakdown_value").eq(lit(label))),
            )
            .select([
                col("indicator"),
                col("footprint_kind"),
                col("footprint_code"),
                col("suppressed").alias("quintile_suppressed"),
            ])
    };
    for (label, column) in [("1", "q1_numerator"), ("5", "q5_numerator")] {
        let leaks = inequality
            .clone()
            .lazy()
            .join(
                quintile(label),
                keys.clone(),
                keys.clone(),
                JoinArgs::new(JoinType::Inner),
            )
            .filter(col("quintile_suppressed").and(col(column).is_not_null()))
            .collect()
            .expect("join");
        assert_eq!(
            leaks.height(),
            0,
            "{column} shows a hidden quintile:\n{leaks}"
        );
    }

    // area_deprivation: the quintile counts of a row are the parts of its matched population.
    let areas = read(&run.join("area_deprivation.parquet"));
    let hidden_quintiles = (1..=5)
        .map(|q| {
            col(format!("population_imd_q{q}").as_str())
                .is_null()
                .cast(DataType::UInt32)
        })
        .reduce(|a, b| a + b)
        .expect("five quintiles");
    let single = areas
        .lazy()
        .filter(
            hidden_quintiles
                .eq(lit(1u32))
                .and(col("population_with_imd").is_not_null()),
        )
        .collect()
        .expect("rows");
    assert_eq!(
        single.height(),
        0,
        "area rows with one hidden quintile:\n{single}"
    );

    // segments: a cross-table; along every dimension, a line of two or more cells whose true
    // total is not small never has exactly one hidden cell. True totals from the unrounded run
    // (same inputs, same row order).
    let published = read(&run.join("segments.parquet"));
    let truth = read(&unrounded_run().join("segments.parquet"));
    assert_eq!(published.height(), truth.height());
    let dimensions = [
        "segment",
        "risk_tier",
        "imd_quintile",
        "broad_age_band",
        "sex",
    ];
    for key in ["footprint_kind", "footprint_code", "segmentation"]
        .iter()
        .chain(&dimensions)
    {
        assert!(
            published
                .column(key)
                .expect("key")
                .equals_missing(truth.column(key).expect("key")),
            "segments rows align on {key}"
        );
    }
    let mut joined = published.clone();
    joined
        .with_column(
            truth
                .column("population")
                .expect("population")
                .clone()
                .with_name("true_population".into()),
        )
        .expect("true counts");
    for along in dimensions {
        let mut fixed = vec![
            col("footprint_kind"),
            col("footprint_code"),
            col("segmentation"),
        ];
        fixed.extend(dimensions.iter().filter(|d| **d != along).map(|d| col(*d)));
        let single = joined
            .clone()
            .lazy()
            .group_by(fixed)
            .agg([
                col("population").is_null().sum().alias("hidden"),
                len().alias("cells"),
                col("true_population").sum().alias("total"),
            ])
            .filter(
                col("hidden")
                    .eq(lit(1))
                    .and(col("cells").gt(lit(1)))
                    .and(col("total").gt(lit(7))),
            )
            .collect()
            .expect("lines");
        assert_eq!(
            single.height(),
            0,
            "segments lines along {along} with one hidden cell:\n{single}"
        );
    }
}

/// Percentile risk tiers within each footprint `risk.within` names: within it, a patient
/// with a higher score is never in a lower tier (the tier counts' pass attaches that footprint
/// alone to the patients).
#[test]
fn risk_tiers_are_ranked_within_the_footprint_named() {
    let work = crate::harness::Workdir::new("tiers-within");
    let data = work.join("data");
    crate::synth::synth(
        &data,
        &["--scale", "pcn", "--patients", "3000", "--seed", "5"],
        None,
    );
    let config = std::fs::read_to_string(data.join("healthgap.toml")).expect("synth config");
    let config = config + &analysis_sections(false);
    for (within, column) in [
        ("icb", Some("icb_code")),
        ("practice", Some("practice_code")),
        ("england", None),
    ] {
        let path = data.join(format!("{within}.toml"));
        assert!(config.contains("[risk]\ntiers = \"percentile\"\nwithin = \"pcn\"\n"));
        std::fs::write(
            &path,
            config.replace("within = \"pcn\"", &format!("within = \"{within}\"")),
        )
        .expect("write config");
        let root = work.join(within);
        work.run_pipeline(&path, &root, "r1").expect_code(0);
        let patients = read(&root.join("r1").join("patients_enriched.parquet"));
        let footprints: Vec<Option<String>> = match column {
            Some(column) => patients
                .column(column)
                .expect("footprint")
                .str()
                .expect("text")
                .iter()
                .map(|code| code.map(str::to_string))
                .collect(),
            None => vec![None; patients.height()],
        };
        let scores = patients
            .column("cms_score")
            .expect("score")
            .f64()
            .expect("f64");
        let tiers = patients
            .column("risk_tier")
            .expect("tier")
            .str()
            .expect("text");
        let mut by_footprint: HashMap<Option<String>, Vec<(f64, String)>> = HashMap::new();
        for ((footprint, score), tier) in
            footprints.into_iter().zip(scores.iter()).zip(tiers.iter())
        {
            by_footprint
                .entry(footprint)
                .or_default()
                .push((score.expect("a score"), tier.expect("a tier").to_string()));
        }
        for (footprint, mut people) in by_footprint {
            // By descending score, the tiers' labels ("1 very high", "2 high", …) ascend.
            people.sort_by(|a, b| b.0.total_cmp(&a.0));
            for pair in people.windows(2) {
                assert!(
                    pair[0].1 <= pair[1].1,
                    "within {within} {footprint:?}: score {} in {} but {} in {}",
                    pair[0].0,
                    pair[0].1,
                    pair[1].0,
                    pair[1].1
                );
            }
            let distinct: std::collections::HashSet<&str> =
                people.iter().map(|(_, tier)| tier.as_str()).collect();
            assert!(
                people.len() < 200 || distinct.len() > 1,
                "within {within} {footprint:?}: one tier for {} people",
                people.len()
            );
        }
    }
}

/// Patient outcomes of two periods: a run uses the latest, or the one the config names, and
/// never adds one patient's values of two periods together; the rows of the other period are
/// counted and named in a warning.
#[test]
fn outcomes_of_another_period_are_counted_and_never_added_to_the_run_period() {
    let work = crate::harness::Workdir::new("outcome-periods");
    let (data, config) = csv_extract(&work, "5");
    let run = |name: &str, run_settings: &str| {
        run_with_settings(&work, &data, &config, name, run_settings)
    };
    let (one, one_dir) = run("one-period", "");
    one.expect_code(0);
    assert!(!one.stderr().contains("periods"), "{}", one.stderr());

    // Every outcome row again, as an earlier period and with other values.
    let outcomes = data.join("outcomes.csv");
    let text = std::fs::read_to_string(&outcomes).expect("outcomes.csv");
    let mut lines = text.lines();
    let header = crate::harness::split(lines.next().expect("header"));
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let rows: Vec<Vec<String>> = lines.map(crate::harness::split).collect();
    let latest = rows[0][at("period")].clone();
    assert!(
        rows.iter().all(|row| row[at("period")] == latest),
        "one period"
    );
    let mut two_periods = text.clone();
    for row in &rows {
        let mut row = row.clone();
        row[at("period")] = "2001/02".to_string();
        // One more than the run period's value: added together, every value would change.
        let value: f64 = row[at("value")].parse().expect("a numeric value");
        row[at("value")] = (value + 1.0).to_string();
        two_periods.push_str(&(row.join(",") + "\n"));
    }
    std::fs::write(&outcomes, two_periods).expect("write outcomes.csv");

    for (name, settings) in [
        ("latest-whole", String::new()),
        ("latest-split", "patients_per_part = 1000\n".to_string()),
        (
            "named-split",
            format!("patients_per_part = 1000\noutcome_period = \"{latest}\"\n"),
        ),
    ] {
        let (two, two_dir) = run(name, &settings);
        two.expect_code(0);
        let warning = format!(
            "the patient outcomes hold 2 periods (2001/02: {n} rows; {latest}: {n} rows): only {latest} is used, and {n} rows of the others are not",
            n = rows.len()
        );
        assert!(two.stderr().contains(&warning), "{name}: {}", two.stderr());
        let manifest = crate::harness::run_manifest(&two_dir);
        assert_eq!(
            manifest["outcome_periods"]["used"],
            latest.as_str(),
            "{name}"
        );
        assert_eq!(
            manifest["outcome_periods"]["rows_not_used"],
            rows.len(),
            "{name}"
        );
        assert_same_tables(
            &one_dir,
            &two_dir,
            &["patients_enriched", "segments", "indicators", "inequality"],
        );
    }

    // The earlier period, named: its own values, whole or split alike.
    let (earlier, earlier_dir) = run("earlier-whole", "outcome_period = \"2001/02\"\n");
    earlier.expect_code(0);
    let (earlier_split, earlier_split_dir) = run(
        "earlier-split",
        "patients_per_part = 1000\noutcome_period = \"2001/02\"\n",
    );
    earlier_split.expect_code(0);
    assert_same_tables(&earlier_dir, &earlier_split_dir, &["indicators"]);
    let values = |dir: &Path| {
        read(&dir.join("indicators.parquet"))
            .column("value")
            .expect("value")
            .clone()
    };
    assert!(
        !values(&earlier_dir).equals_missing(&values(&one_dir)),
        "the earlier period's values differ"
    );

    // A period the outcomes do not have is the config's mistake.
    let (absent, _) = run("absent", "outcome_period = \"1999/00\"\n");
    absent.expect_code(2);
    assert!(
        absent.stderr().contains(&format!(
            "run.outcome_period = \"1999/00\": the patient outcomes have no rows of that period (their periods: 2001/02, {latest})"
        )),
        "{}",
        absent.stderr()
    );
}
