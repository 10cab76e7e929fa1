//! Reliability of the nightly run (issue 10): a run killed at random points, a full disk, an
//! unwritable root, a concurrent run, stale locks, the input drift guard, and reproducibility
//! on a synthetic PCN.
//!
//! Fault tests run the 14-patient fixture (`tests/fixtures/run/`, seconds per run); the
//! reproducibility test runs the synthetic PCN of `synth.rs` with indicators and segments.
//! Hostile input is `hostile.rs`; disclosure properties are `disclosure.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Workdir, data_dir, fixtures};

/// The fixture run's config written into `dir` with absolute data paths and `patients` as its
/// registered list, so a test can change the list.
fn fixture_config(dir: &Workdir, patients: &str) -> PathBuf {
    let list = dir.create("patients.csv", patients);
    let config = std::fs::read_to_string(fixtures().join("run").join("healthgap.toml"))
        .expect("fixture config")
        .replace("\"patients_small.csv\"", &toml_path(&list))
        .replace("\"../../../data/", &format!("\"{}/", data_dir().display()));
    dir.create("healthgap.toml", config)
}

fn toml_path(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

fn fixture_patients() -> String {
    std::fs::read_to_string(fixtures().join("run").join("patients_small.csv")).expect("patients")
}

/// `healthgap --quiet run --config CONFIG --out ROOT --run-id ID EXTRA…`.
fn run_command(config: &Path, root: &Path, run_id: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_healthgap"));
    command
        .args(["--quiet", "run", "--config"])
        .arg(config)
        .arg("--out")
        .arg(root)
        .args(["--run-id", run_id])
        .args(extra);
    command
}

struct Outcome {
    code: i32,
    stderr: String,
}

fn run(config: &Path, root: &Path, run_id: &str, extra: &[&str]) -> Outcome {
    let output = run_command(config, root, run_id, extra)
        .output()
        .expect("run healthgap");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn latest(root: &Path) -> Option<String> {
    std::fs::read_link(root.join("latest"))
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// Names in the root starting with `.` (staging folders, the lock, a half-made `latest`).
fn hidden_entries(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn manifest(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("manifest.json"))
        .unwrap_or_else(|e| panic!("{}: manifest: {e}", run.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: manifest: {e}", run.display()))
}

// --- Input drift ---------------------------------------------------------------------------------

#[test]
fn a_truncated_extract_stops_before_publishing_until_the_drift_is_accepted() {
    let dir = Workdir::new("drift");
    let root = dir.join("out");
    let config = fixture_config(&dir, &fixture_patients());
    let first = run(&config, &root, "r1", &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(manifest(&root.join("r1"))["drift"]["checked"], false);

    // Tonight's extract stops after 10 of the 14 patients.
    let truncated: String = fixture_patients()
        .lines()
        .take(11)
        .map(|line| format!("{line}\n"))
        .collect();
    dir.create("patients.csv", truncated);
    let stopped = run(&config, &root, "r2", &[]);
    assert_eq!(stopped.code, 2, "{}", stopped.stderr);
    for expected in [
        "input drift against the previous run r1",
        "nothing was published",
        "patients: 10 rows read, 14 in the previous run (-28.6%, limit ±10.0%)",
        "--accept-drift",
    ] {
        assert!(
            stopped.stderr.contains(expected),
            "expected {expected:?} in\n{}",
            stopped.stderr
        );
    }
    assert!(!root.join("r2").exists());
    assert_eq!(latest(&root).as_deref(), Some("r1"));
    assert!(
        hidden_entries(&root).is_empty(),
        "{:?}",
        hidden_entries(&root)
    );

    // The operator checks the change is real and lets it through.
    let accepted = run(&config, &root, "r3", &["--accept-drift"]);
    assert_eq!(accepted.code, 0, "{}", accepted.stderr);
    assert!(
        accepted.stderr.contains("input drift accepted with --accept-drift: patients: 10 rows read, 14 in the previous run"),
        "{}",
        accepted.stderr
    );
    assert_eq!(latest(&root).as_deref(), Some("r3"));
    let recorded = manifest(&root.join("r3"));
    assert_eq!(recorded["drift"]["accepted"], true);
    assert_eq!(recorded["drift"]["previous_run"], "r1");
    assert!(
        recorded["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("input drift accepted"))))
    );

    // The next night compares with r3 (10 patients): no drift, no flag needed.
    let next = run(&config, &root, "r4", &[]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    let recorded = manifest(&root.join("r4"));
    assert_eq!(recorded["drift"]["checked"], true);
    assert_eq!(recorded["drift"]["accepted"], false);
}
