//! `healthgap query`: SQL over a fabricated output root with two runs, a hive-partitioned table,
//! a corrupt table, a run in progress and a `latest` link.
//!
//! The tables are small stand-ins with the names of DESIGN.md §4 (their real schemas are built
//! elsewhere); `rejects` has the real `schema::REJECT_*` columns so the example saved query runs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use polars::prelude::*;

use crate::harness::{Run, Workdir, repo};

fn write_parquet(path: &Path, mut frame: DataFrame) {
    std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("create folders");
    let file = std::fs::File::create(path).expect("create parquet file");
    ParquetWriter::new(file)
        .finish(&mut frame)
        .expect("write parquet");
}

/// One run folder `out/<run_id>`; `scale` changes the SII so two runs differ.
fn fabricate_run(dir: &Workdir, run_id: &str, scale: f64) -> PathBuf {
    let run = dir.join(&format!("out/{run_id}"));
    write_parquet(
        &run.join("footprint_weights.parquet"),
        df!(
            "lsoa_code" => ["E01000001", "E01000002", "E01000003", "E01000004"],
            "footprint_kind" => ["pcn", "pcn", "pcn", "icb"],
            "footprint_code" => ["U11111", "U11111", "U22222", "QHM"],
            "weight" => [1.0, 0.5, 0.5, 1.0],
            "method" => ["plurality", "proportional", "proportional", "membership"],
        )
        .expect("frame"),
    );
    write_parquet(
        &run.join("inequality.parquet"),
        df!(
            "indicator" => ["smoking", "obesity", "smoking"],
            "footprint_code" => ["U11111", "U11111", "U22222"],
            "sii" => [3.0 * scale, -scale, 2.0],
        )
        .expect("frame"),
    );
    for (icb, ages) in [("QHM", [40i64, 71, 12]), ("QWE", [5, 88, 33])] {
        write_parquet(
            &run.join(format!("patients_enriched/icb_code={icb}/part-0.parquet")),
            df!(
                "patient_id" => [format!("{icb}-1"), format!("{icb}-2"), format!("{icb}-3")],
                "age" => ages,
                "imd_quintile" => [1i64, 3, 5],
            )
            .expect("frame"),
        );
    }
    write_parquet(
        &run.join("rejects.parquet"),
        df!(
            "input" => ["patients", "patients", "patients", "conditions"],
            "file" => ["patients.csv", "patients.csv", "more.csv", "conditions.csv"],
            "line" => [2u64, 3, 9, 4],
            "column" => ["age", "age", "sex", "condition"],
            "value" => ["130", "150", "Q", "XYZ"],
            "reason" => [
                "above the maximum of 120",
                "above the maximum of 120",
                "unknown sex code",
                "unknown condition",
            ],
        )
        .expect("frame"),
    );
    dir.create(&format!("out/{run_id}/manifest.json"), "{}");
    dir.create(&format!("out/{run_id}/charts/gradient.svg"), "<svg/>");
    run
}

/// `out/` with runs 2024-06-01 and 2025-06-01 (`latest`), a corrupt `area_deprivation` table
/// in the latest run, and a run in progress.
fn output_root(name: &str) -> Workdir {
    let dir = Workdir::new(name);
    fabricate_run(&dir, "2024-06-01", 1.0);
    let latest = fabricate_run(&dir, "2025-06-01", 1.5);
    dir.create(
        "out/2025-06-01/area_deprivation.parquet",
        "this is not a Parquet file",
    );
    std::os::unix::fs::symlink("2025-06-01", dir.join("out/latest")).expect("latest link");
    write_parquet(
        &dir.join("out/.tmp-2026-06-01/segments.parquet"),
        df!("segment" => ["a"]).expect("frame"),
    );
    assert!(latest.is_dir());
    dir
}

fn query(dir: &Workdir, args: &[&str]) -> Run {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    dir.run(&all)
}

/// The lines of a terminal table's body (after names, types and the rule), trimmed.
fn body(out: &str) -> Vec<String> {
    out.lines()
        .skip(3)
        .take_while(|line| !line.contains(" × "))
        .map(|line| line.split('│').map(str::trim).collect::<Vec<_>>().join("|"))
        .collect()
}

#[test]
fn query_over_latest_prints_names_types_rows_and_run() {
    let dir = output_root("query-table");
    let run = query(
        &dir,
        &[
            "SELECT footprint_code, sum(weight) AS weight FROM footprint_weights \
           WHERE footprint_kind = 'pcn' GROUP BY footprint_code ORDER BY footprint_code",
        ],
    );
    run.expect_code(0);
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], " footprint_code │ weight", "{out}");
    assert_eq!(lines[1], " str            │ f64", "{out}");
    assert_eq!(body(&out), ["U11111|1.5", "U22222|0.5"], "{out}");
    assert_eq!(lines[5], "2 rows × 2 columns · run 2025-06-01", "{out}");
}

#[test]
fn a_partitioned_folder_is_one_table_with_its_partition_column() {
    let dir = output_root("query-hive");
    let run = query(
        &dir,
        &[
            "SELECT icb_code, count(*) AS patients, max(age) AS oldest FROM patients_enriched \
           GROUP BY icb_code ORDER BY icb_code",
        ],
    );
    run.expect_code(0);
    assert_eq!(
        body(&run.stdout()),
        ["QHM|3|71", "QWE|3|88"],
        "{}",
        run.stdout()
    );

    // A filter on the partition column reads only that partition's files.
    let run = query(
        &dir,
        &[
            "SELECT count(*) FROM patients_enriched WHERE icb_code = 'QWE'",
            "--explain",
        ],
    );
    run.expect_code(0);
    let plan = run.stdout();
    assert!(plan.contains("icb_code=QWE/part-0.parquet"), "{plan}");
    assert!(!plan.contains("icb_code=QHM"), "{plan}");
}

#[test]
fn long_results_show_the_first_and_last_rows() {
    let dir = output_root("query-long");
    let run = query(
        &dir,
        &[
            "SELECT patient_id FROM patients_enriched ORDER BY patient_id",
            "--max-rows",
            "2",
        ],
    );
    run.expect_code(0);
    let out = run.stdout();
    assert_eq!(body(&out), ["QHM-1", "…", "QWE-3"], "{out}");
    assert!(
        out.contains("6 rows × 1 column (first 1 and last 1 shown"),
        "{out}"
    );
}

#[test]
fn a_corrupt_table_does_not_stop_a_query_over_another() {
    let dir = output_root("query-lazy");
    let run = query(&dir, &["SELECT count(*) AS n FROM footprint_weights"]);
    run.expect_code(0);
    assert_eq!(body(&run.stdout()), ["4"]);

    // Only the named table's file is in the plan, with only the column the query needs.
    let run = query(&dir, &["SELECT weight FROM footprint_weights", "--explain"]);
    run.expect_code(0);
    let plan = run.stdout();
    assert!(plan.contains("footprint_weights.parquet"), "{plan}");
    assert!(plan.contains("PROJECT 1/5 COLUMNS"), "{plan}");
    assert!(!plan.contains("area_deprivation"), "{plan}");

    // The corrupt table names itself when it is queried.
    let run = query(&dir, &["SELECT * FROM area_deprivation"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("error: table `area_deprivation` (out/latest/area_deprivation.parquet): "),
        "{}",
        run.stderr()
    );
}

#[test]
fn csv_json_and_ndjson_go_to_stdout() {
    let dir = output_root("query-stdout");
    let sql = "SELECT footprint_code, weight FROM footprint_weights ORDER BY lsoa_code LIMIT 2";

    let run = query(&dir, &[sql, "--format", "csv"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout(),
        "footprint_code,weight\nU11111,1.0\nU11111,0.5\n"
    );

    let run = query(&dir, &[sql, "--format", "json"]);
    run.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).expect("a JSON array");
    assert_eq!(json[1]["weight"], 0.5);
    assert_eq!(json.as_array().map(Vec::len), Some(2));

    let run = query(&dir, &[sql, "--format", "ndjson"]);
    run.expect_code(0);
    let lines: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object a line"))
        .collect();
    assert_eq!(lines[0]["footprint_code"], "U11111");

    // An empty result still has its header.
    let run = query(
        &dir,
        &[
            "SELECT lsoa_code FROM footprint_weights WHERE weight > 9",
            "-f",
            "csv",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.stdout(), "lsoa_code\n");
    let run = query(
        &dir,
        &[
            "SELECT lsoa_code FROM footprint_weights WHERE weight > 9",
            "-f",
            "json",
        ],
    );
    assert_eq!(run.stdout().trim(), "[]");
}

#[test]
fn out_writes_the_format_its_extension_names() {
    let dir = output_root("query-out");
    let sql = "SELECT indicator, sii FROM inequality ORDER BY indicator, sii";
    for name in [
        "result.csv",
        "result.json",
        "result.ndjson",
        "result.parquet",
    ] {
        let run = query(&dir, &[sql, "--out", name]);
        run.expect_code(0);
        assert_eq!(run.stdout(), "", "{name}: nothing on stdout");
        assert!(
            run.stderr().contains(&format!("wrote 3 rows to {name}")),
            "{}",
            run.stderr()
        );
    }
    let csv = std::fs::read_to_string(dir.join("result.csv")).expect("csv");
    assert_eq!(
        csv,
        "indicator,sii\nobesity,-1.5\nsmoking,2.0\nsmoking,4.5\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).expect("json"))
            .expect("valid JSON");
    assert_eq!(json[2]["sii"], 4.5);
    let parquet =
        ParquetReader::new(std::fs::File::open(dir.join("result.parquet")).expect("open"))
            .finish()
            .expect("valid Parquet");
    assert_eq!(parquet.shape(), (3, 2));

    // --format wins over the extension; an unknown extension is refused.
    let run = query(&dir, &[sql, "--out", "result.txt", "--format", "csv"]);
    run.expect_code(0);
    assert!(
        std::fs::read_to_string(dir.join("result.txt"))
            .expect("txt")
            .starts_with("indicator,sii\n")
    );
    let run = query(&dir, &[sql, "--out", "result.xlsx"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("unknown output format `.xlsx`"),
        "{}",
        run.stderr()
    );

    // A device is written to, not replaced.
    let run = query(&dir, &[sql, "--out", "/dev/null", "--format", "csv"]);
    run.expect_code(0);
    assert!(std::fs::metadata("/dev/null").is_ok_and(|m| !m.is_file()));

    // A query that fails while running leaves no file behind, partial or not.
    let run = query(
        &dir,
        &[
            "SELECT CAST(method AS INT) AS m FROM footprint_weights",
            "--out",
            "failed.csv",
        ],
    );
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("error: running the query: conversion from `str` to `i32` failed"),
        "{}",
        run.stderr()
    );
    assert!(!dir.join("failed.csv").exists() && !dir.join(".failed.csv.partial").exists());
}

#[test]
fn tables_lists_columns_types_and_unreadable_tables() {
    let dir = output_root("query-tables");
    let run = query(&dir, &["--tables"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.starts_with("run 2025-06-01 (out/latest)"), "{out}");
    assert!(out.contains("\nfootprint_weights  · 4 rows · "), "{out}");
    assert!(out.contains("  weight          f64\n"), "{out}");
    assert!(
        out.contains("\npatients_enriched  · 6 rows · out/latest/patients_enriched/ (2 files)"),
        "{out}"
    );
    assert!(out.contains("  icb_code      str\n"), "{out}");
    assert!(out.contains("\narea_deprivation  · unreadable"), "{out}");
    assert!(
        !out.contains("manifest") && !out.contains("charts"),
        "{out}"
    );

    let run = query(
        &dir,
        &["--tables", "--compare", "out/2024-06-01", "--format", "csv"],
    );
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.starts_with("table,column,type,rows\n"), "{out}");
    assert!(out.contains("\nfootprint_weights,weight,f64,4\n"), "{out}");
    assert!(out.contains("\nprev_inequality,sii,f64,3\n"), "{out}");
    assert!(
        run.stderr().contains("left out: table `area_deprivation`"),
        "{}",
        run.stderr()
    );
}

#[test]
fn compare_exposes_the_other_run_as_prev_tables() {
    let dir = output_root("query-compare");
    let run = query(
        &dir,
        &[
            "--run",
            "out",
            "--compare",
            "out/2024-06-01",
            "SELECT i.indicator, i.sii, p.sii AS sii_before, i.sii - p.sii AS change \
             FROM inequality i JOIN prev_inequality p USING (indicator, footprint_code) \
             WHERE footprint_code = 'U11111' ORDER BY indicator",
        ],
    );
    run.expect_code(0);
    let out = run.stdout();
    assert_eq!(
        body(&out),
        ["obesity|-1.5|-1.0|-0.5", "smoking|4.5|3.0|1.5"],
        "{out}"
    );
    assert!(
        out.contains("run 2025-06-01, compared with 2024-06-01"),
        "{out}"
    );

    // Without --compare, prev_ tables say how to get them.
    let run = query(&dir, &["SELECT * FROM prev_inequality"]);
    run.expect_code(2);
    assert!(run.stderr().contains("--compare DIR"), "{}", run.stderr());
}

#[test]
fn parameters_bind_numbers_and_quoted_strings() {
    let dir = output_root("query-params");
    let sql = "SELECT patient_id FROM patients_enriched \
               WHERE icb_code = :icb AND age > :min_age ORDER BY patient_id";
    let run = query(
        &dir,
        &[sql, "--param", "icb=QWE", "-p", "min_age=10", "-f", "csv"],
    );
    run.expect_code(0);
    assert_eq!(run.stdout(), "patient_id\nQWE-2\nQWE-3\n");

    // A quote in a value stays inside the string literal.
    let run = query(
        &dir,
        &[
            "SELECT :name AS name, length(:name) AS n",
            "-p",
            "name=O'Brien'; DROP TABLE x; --",
            "-f",
            "csv",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.stdout(), "name,n\nO'Brien'; DROP TABLE x; --,26\n");
}

#[test]
fn a_missing_parameter_is_named_with_the_query_parameters() {
    let dir = output_root("query-missing-param");
    let run = query(
        &dir,
        &[&repo()
            .join("queries/rejects_by_reason.sql")
            .display()
            .to_string()],
    );
    run.expect_code(2);
    let err = run.stderr();
    assert!(
        err.contains("error: missing parameter `input`: pass --param input=VALUE; this query takes:\n  :input  the input kind"),
        "{err}"
    );
}

#[test]
fn an_unknown_parameter_is_refused() {
    let dir = output_root("query-unknown-param");
    let run = query(
        &dir,
        &[
            "SELECT * FROM rejects WHERE input = :input",
            "-p",
            "input=patients",
            "-p",
            "inptu=x",
        ],
    );
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("error: unknown parameter `inptu`; did you mean `input`?"),
        "{}",
        run.stderr()
    );
    let run = query(&dir, &["SELECT 1", "-p", "input"]);
    run.expect_code(2);
    assert!(run.stderr().contains("write KEY=VALUE"), "{}", run.stderr());
}

#[test]
fn saved_queries_run_by_name_or_file() {
    let dir = output_root("query-saved");
    let queries = repo().join("queries").display().to_string();
    let by_name = query(
        &dir,
        &[
            "--queries-dir",
            &queries,
            "--name",
            "rejects_by_reason",
            "-p",
            "input=patients",
            "-f",
            "csv",
        ],
    );
    by_name.expect_code(0);
    assert_eq!(
        by_name.stdout(),
        "column,reason,rows,files,example\n\
         age,above the maximum of 120,2,1,130\n\
         sex,unknown sex code,1,1,Q\n"
    );
    let file = repo().join("queries/rejects_by_reason.sql");
    let by_file = query(
        &dir,
        &[
            &file.display().to_string(),
            "-p",
            "input=patients",
            "-f",
            "csv",
        ],
    );
    by_file.expect_code(0);
    assert_eq!(by_file.stdout(), by_name.stdout());

    let run = query(
        &dir,
        &["--queries-dir", &queries, "--name", "rejects_by_reasons"],
    );
    run.expect_code(2);
    assert!(
        run.stderr().contains("did you mean `rejects_by_reason`?"),
        "{}",
        run.stderr()
    );

    let run = query(&dir, &["--queries-dir", &queries, "--list"]);
    run.expect_code(0);
    assert!(
        run.stdout()
            .lines()
            .any(|line| line.starts_with("rejects_by_reason  Rejected input rows")),
        "{}",
        run.stdout()
    );
}

/// `saved_queries.rs` runs every saved query on a demo run with these examples.
#[test]
fn every_saved_query_parses_is_read_only_and_documents_its_parameters() {
    let queries = healthgap::query::SavedQuery::list(&repo().join("queries")).expect("queries/");
    assert!(!queries.is_empty());
    for saved in queries {
        let problems = saved
            .header_problems()
            .unwrap_or_else(|err| panic!("{:?}: {err}", saved.path));
        assert!(problems.is_empty(), "{:?}: {problems:?}", saved.path);
        assert!(
            !saved.header.columns.is_empty(),
            "{:?}: no Columns:",
            saved.path
        );
        for parameter in &saved.header.parameters {
            assert!(
                parameter.example().is_some(),
                "{:?}: parameter `{}` has no `e.g. VALUE`",
                saved.path,
                parameter.name
            );
        }
    }
}

#[test]
fn writes_are_refused_before_anything_runs() {
    let dir = output_root("query-read-only");
    let before = files_under(&dir.join("out"));
    for (sql, kind) in [
        ("CREATE TABLE copy AS SELECT * FROM rejects", "CREATE TABLE"),
        ("CREATE VIEW v AS SELECT * FROM rejects", "CREATE VIEW"),
        ("DROP TABLE rejects", "DROP"),
        (
            "INSERT INTO rejects VALUES ('a','b',1,'c','d','e')",
            "INSERT",
        ),
        ("UPDATE rejects SET reason = 'x'", "UPDATE"),
        ("DELETE FROM rejects", "DELETE"),
        ("COPY rejects TO '/tmp/rejects.csv'", "COPY"),
        ("TRUNCATE rejects", "TRUNCATE"),
        ("ALTER TABLE rejects RENAME TO gone", "ALTER TABLE"),
        ("SELECT * INTO copy FROM rejects", "SELECT … INTO"),
        ("SELECT 1; DELETE FROM rejects", "DELETE"),
    ] {
        let run = query(&dir, &[sql]);
        run.expect_code(2);
        assert_eq!(
            run.stderr(),
            format!(
                "error: queries are read-only: {kind} statements are refused; only SELECT \
                 (or WITH … SELECT) queries run\n"
            ),
            "{sql}"
        );
    }
    let run = query(&dir, &["SELECT 1; SELECT 2"]);
    run.expect_code(2);
    assert_eq!(
        run.stderr(),
        "error: one statement per query, found 2 (separated by `;`)\n"
    );
    assert_eq!(files_under(&dir.join("out")), before);
}

/// Every file under `dir` with its size.
fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    crate::harness::files_under(dir)
        .into_iter()
        .map(|path| {
            let size = std::fs::symlink_metadata(&path).expect("metadata").len();
            (path, size)
        })
        .collect()
}

#[test]
fn unknown_table_names_the_closest_tables() {
    let dir = output_root("query-unknown-table");
    let run = query(&dir, &["SELECT * FROM footprint_weight"]);
    run.expect_code(2);
    assert_eq!(
        run.stderr(),
        "error: unknown table `footprint_weight`; did you mean `footprint_weights`? (tables: \
         area_deprivation, footprint_weights, inequality, patients_enriched, rejects)\n"
    );
}

#[test]
fn unknown_column_names_the_closest_columns_of_the_tables_queried() {
    let dir = output_root("query-unknown-column");
    let run = query(
        &dir,
        &["SELECT i.sii FROM inequality i JOIN footprint_weights f \
           ON i.footprint_code = f.footprint_cod"],
    );
    run.expect_code(2);
    assert!(
        run.stderr().starts_with(
            "error: unknown column `footprint_cod`; did you mean `footprint_code` \
             (inequality, footprint_weights)"
        ),
        "{}",
        run.stderr()
    );
    let run = query(&dir, &["SELECT imd_quintle FROM patients_enriched"]);
    run.expect_code(2);
    assert_eq!(
        run.stderr(),
        "error: unknown column `imd_quintle`; did you mean `imd_quintile` (patients_enriched)?\n"
    );
}

#[test]
fn a_syntax_error_shows_line_column_and_a_caret() {
    let dir = output_root("query-syntax");
    let run = query(
        &dir,
        &["SELECT lsoa_code\nFROM footprint_weights\nWHERE weight > > 1"],
    );
    run.expect_code(2);
    assert_eq!(
        run.stderr(),
        "error: syntax error at line 3, column 16: Expected: an expression, found: >\n  \
         3 | WHERE weight > > 1\n    |                ^\n"
    );
}

#[test]
fn runs_in_progress_and_missing_runs_are_refused() {
    let dir = output_root("query-runs");
    let run = query(
        &dir,
        &["--run", "out/.tmp-2026-06-01", "SELECT * FROM segments"],
    );
    run.expect_code(2);
    assert!(
        run.stderr().contains("is a run in progress"),
        "{}",
        run.stderr()
    );

    let empty = Workdir::new("query-no-runs");
    let run = query(&empty, &["SELECT 1"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .starts_with("error: no run folder at out/latest: no runs here yet"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_closed_pipe_ends_the_query_quietly() {
    let dir = output_root("query-pipe");
    // 6^5 = 7,776 rows: far more than a pipe buffer holds once the reader has gone.
    let sql = "SELECT a.patient_id, b.patient_id AS b, c.patient_id AS c FROM patients_enriched a \
               CROSS JOIN patients_enriched b CROSS JOIN patients_enriched c \
               CROSS JOIN patients_enriched d CROSS JOIN patients_enriched e";
    for format in ["csv", "table"] {
        let mut child = dir
            .command()
            .args(["query", sql, "--format", format, "--max-rows", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 16];
        stdout.read_exact(&mut first).expect("some output");
        drop(stdout);
        let output = child.wait_with_output().expect("wait");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
