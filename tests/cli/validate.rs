//! `healthgap validate`: the example config passes; bad inputs give exit 2 with reasons.

use crate::harness::{Workdir, fixtures, repo};

fn config_for(dir: &Workdir, inputs: &str, extra: &str) -> String {
    let text = format!("[run]\nextract_date = \"2023-02-01\"\n{extra}\n{inputs}");
    dir.create("healthgap.toml", text).display().to_string()
}

#[test]
fn example_config_passes_on_bundled_data() {
    let dir = Workdir::new("validate-example");
    let config = repo().join("healthgap.toml");
    let run = dir.run(&["validate", "--config", &config.display().to_string()]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("all 16 inputs pass"), "{out}");
    assert!(out.contains("iod2019") && out.contains("32844"), "{out}");
}

#[test]
fn bad_rows_above_the_limit_fail_with_exit_2_and_reasons() {
    let dir = Workdir::new("validate-bad");
    let patients = fixtures().join("ingest").join("patients_bad_rows.csv");
    let config = config_for(
        &dir,
        &format!("[inputs.patients]\npath = \"{}\"\n", patients.display()),
        "",
    );
    let rejects = dir.join("rejects.csv");
    let run = dir.run(&[
        "validate",
        "--config",
        &config,
        "--rejects",
        &rejects.display().to_string(),
    ]);
    run.expect_code(2);
    let out = run.stdout();
    assert!(out.contains("11 of 12 rows refused"), "{out}");
    assert!(out.contains("unknown sex code"), "{out}");
    assert!(out.contains("1 of 1 inputs fail"), "{out}");
    let written = std::fs::read_to_string(&rejects).expect("rejects file");
    assert!(
        written.starts_with("input,file,line,column,value,reason"),
        "{written}"
    );
    assert!(
        written.contains("patients,") && written.contains(",6,age,130,above the maximum of 120"),
        "{written}"
    );
}

#[test]
fn a_generous_limit_lets_the_same_input_pass() {
    let dir = Workdir::new("validate-limit");
    let patients = fixtures().join("ingest").join("patients_bad_rows.csv");
    let config = config_for(
        &dir,
        &format!(
            "[inputs.patients]\npath = \"{}\"\nmax_reject_rate = 0.95\n",
            patients.display()
        ),
        "",
    );
    let run = dir.run(&["validate", "--config", &config, "--format", "json"]);
    run.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json summary");
    assert_eq!(json["failed"], 0);
    assert_eq!(json["inputs"][0]["rows_rejected"], 11);
    assert_eq!(json["inputs"][0]["rows_accepted"], 1);
}

#[test]
fn missing_column_fails_naming_file_and_columns() {
    let dir = Workdir::new("validate-missing");
    let patients = fixtures()
        .join("ingest")
        .join("patients_missing_column.csv");
    let config = config_for(
        &dir,
        &format!("[inputs.patients]\npath = \"{}\"\n", patients.display()),
        "",
    );
    let run = dir.run(&["validate", "--config", &config]);
    run.expect_code(2);
    let out = run.stdout();
    assert!(
        out.contains("missing required column(s) for a patients file: sex"),
        "{out}"
    );
    assert!(
        out.contains("columns found: \"patient_id\", \"practice_code\", \"lsoa_code\", \"age\""),
        "{out}"
    );
}

#[test]
fn unreadable_file_and_bad_config_are_exit_2() {
    let dir = Workdir::new("validate-config");
    let config = config_for(&dir, "[inputs.patients]\npath = \"nowhere.csv\"\n", "");
    let run = dir.run(&["validate", "--config", &config]);
    run.expect_code(2);
    assert!(run.stdout().contains("nowhere.csv"), "{}", run.stdout());

    let config = dir.create(
        "typo.toml",
        "[run]\nextract_date = \"2023-02-01\"\n[inputs.patient]\npath = \"x.csv\"\n",
    );
    let run = dir.run(&["validate", "--config", &config.display().to_string()]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("unknown variant `patient`"),
        "{}",
        run.stderr()
    );

    let run = dir.run(&["validate", "--config", "does-not-exist.toml"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("cannot read config does-not-exist.toml"),
        "{}",
        run.stderr()
    );
}

#[test]
fn help_explains_exit_codes() {
    let dir = Workdir::new("validate-help");
    let run = dir.run(&["validate", "--help"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("Exit code 0 when every input passes"),
        "{}",
        run.stdout()
    );
}

/// `validate` names the period of the patient outcomes a run would measure, warns about the
/// rows of other periods, and refuses a `run.outcome_period` the outcomes lack (exit 2).
#[test]
fn the_outcome_period_a_run_would_measure_is_reported() {
    let dir = Workdir::new("validate-periods");
    let outcomes = dir.create(
        "outcomes.csv",
        "patient_id,indicator,value,period\nP1,smoker,1,2023/24\nP1,smoker,0,2024/25\nP2,smoker,1,2024/25\n",
    );
    let inputs = format!("[inputs.outcomes]\npath = \"{}\"\n", outcomes.display());
    let latest = config_for(&dir, &inputs, "");
    let run = dir.run(&["validate", "--config", &latest]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("patient outcomes: period 2024/25 measured"),
        "{out}"
    );
    assert!(
        out.contains("the patient outcomes hold 2 periods (2023/24: 1 row; 2024/25: 2 rows): only 2024/25 is used, and 1 row of the others is not"),
        "{out}"
    );
    assert!(out.contains("all 1 inputs pass"), "{out}");

    let json = dir.run(&["validate", "--config", &latest, "--format", "json"]);
    json.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout()).expect("json summary");
    assert_eq!(json["outcome_periods"]["used"], "2024/25");
    assert_eq!(json["outcome_periods"]["rows_not_used"], 1);

    let absent = config_for(&dir, &inputs, "outcome_period = \"2022/23\"");
    let run = dir.run(&["validate", "--config", &absent]);
    run.expect_code(2);
    let out = run.stdout();
    assert!(
        out.contains("run.outcome_period = \"2022/23\": the patient outcomes have no rows of that period (their periods: 2023/24, 2024/25)"),
        "{out}"
    );
    assert!(
        out.contains("all 1 inputs pass, but run.outcome_period does not"),
        "{out}"
    );
}
