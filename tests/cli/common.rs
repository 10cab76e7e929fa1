//! A small harness shared by the subcommand test modules: a temp working directory, files in
//! it, and the real binary run there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh temporary directory in which to run `healthgap`.
pub struct Workdir {
    dir: tempfile::TempDir,
}

/// What a run produced.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
}

impl Workdir {
    /// A new empty directory; `name` only labels it.
    pub fn new(name: &str) -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("healthgap-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        Workdir { dir }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `contents` to `file` in the directory.
    pub fn create(&self, file: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// Copy a fixture from `tests/fixtures/` into the directory under its base name.
    pub fn fixture(&self, relative: &str) -> PathBuf {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(relative);
        let name = source.file_name().expect("fixture file name").to_owned();
        let target = self.dir.path().join(name);
        std::fs::copy(&source, &target).expect("copy a fixture");
        target
    }

    /// Run `healthgap` with `args` in the directory.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_healthgap"))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run healthgap");
        Run { output }
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
