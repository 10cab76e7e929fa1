//! A small harness: a fresh temp folder per test, files written into it, the real binary run
//! in it. Paths to the repository's `data/` and to the shared reference folder are here too.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled reference data (`data/`).
pub fn data_dir() -> PathBuf {
    repo().join("data")
}

/// Test fixtures (`tests/fixtures/`).
pub fn fixtures() -> PathBuf {
    repo().join("tests").join("fixtures")
}

/// The hand-checked fixture run's config (`tests/fixtures/run/healthgap.toml`) with absolute
/// paths, to be written anywhere: its reference data from `data/`, and `patients` as its
/// registered list.
pub fn fixture_run_config(patients: &Path) -> String {
    std::fs::read_to_string(fixtures().join("run").join("healthgap.toml"))
        .expect("fixture config")
        .replace(
            "\"patients_small.csv\"",
            &format!("\"{}\"", patients.display()),
        )
        .replace("\"../../../data/", &format!("\"{}/", data_dir().display()))
}

/// The fixture run's own registered list (`tests/fixtures/run/patients_small.csv`).
pub fn fixture_run_patients() -> PathBuf {
    fixtures().join("run").join("patients_small.csv")
}

/// A run folder's `manifest.json`, parsed (a panic naming the folder if it cannot be read).
pub fn run_manifest(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("manifest.json"))
        .unwrap_or_else(|e| panic!("{}: manifest: {e}", run.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: manifest: {e}", run.display()))
}

/// The shared reference folder (`../shared/data`), overridable with `HEALTHGAP_SHARED_DATA`.
/// `None` (and a line saying the test is skipped) when it is not there.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("HEALTHGAP_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("..").join("shared").join("data"));
    if dir.join("README.md").exists() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED {test}: the shared reference data is not at {} (set HEALTHGAP_SHARED_DATA)",
            dir.display()
        );
        None
    }
}

/// A temporary working folder, removed when dropped.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    /// A new empty folder.
    pub fn new(name: &str) -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("healthgap-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        Workdir { dir }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file (creating folders) and return its path.
    pub fn create(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// Copy a fixture from `tests/fixtures/` into the folder under its base name.
    pub fn fixture(&self, relative: &str) -> PathBuf {
        let source = fixtures().join(relative);
        let name = source.file_name().expect("fixture file name").to_owned();
        let target = self.path().join(name);
        std::fs::copy(&source, &target).expect("copy a fixture");
        target
    }

    /// The `healthgap` binary, run in this folder.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_healthgap"));
        cmd.current_dir(self.path());
        cmd
    }

    /// Run `healthgap ARGS…` here.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command().args(args).output().expect("run healthgap");
        Run { output }
    }

    /// Run `healthgap --quiet run --config CONFIG --out ROOT --run-id RUN_ID` here (warnings
    /// and errors still go to standard error).
    pub fn run_pipeline(&self, config: &Path, root: &Path, run_id: &str) -> Run {
        self.run(&[
            "--quiet",
            "run",
            "--config",
            &config.display().to_string(),
            "--out",
            &root.display().to_string(),
            "--run-id",
            run_id,
        ])
    }
}

/// The result of running the binary.
pub struct Run {
    /// Exit status and captured streams.
    pub output: Output,
}

impl Run {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit code (-1 when killed by a signal).
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// Assert the exit code, showing both streams when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Parse CSV text (no quoted commas in numeric tests) into header and rows.
pub fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines().map(split);
    let header = lines.next().unwrap_or_default();
    (header, lines.collect())
}

/// Split one CSV line honouring double quotes.
pub fn split(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(ch),
        }
    }
    cells.push(cell);
    cells
}

/// Every file under `dir` (not following symbolic links), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read folder") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
