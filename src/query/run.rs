//! Run folders: finding a complete run and the tables in it.
//!
//! The run folder contract (DESIGN.md §4): `ROOT/<run_id>/` holds `<table>.parquet` files and
//! `<table>/` folders of hive-partitioned Parquet files (`key=value/` folders become columns),
//! plus `manifest.json` and `charts/`, which are not tables; `ROOT/latest` links to the newest
//! complete run; folders whose names start with `.` (`.tmp-<run_id>`, runs in progress) are
//! never runs. Registering tables and planning queries is `catalog.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::QueryError;

/// The run folder queried when `--run` is not given.
pub const DEFAULT_RUN: &str = "out/latest";

/// The name prefix of the tables of the run given with `--compare`.
pub const COMPARE_PREFIX: &str = "prev_";

/// A complete run folder.
#[derive(Debug, Clone)]
pub struct RunFolder {
    path: PathBuf,
    canonical: PathBuf,
    id: String,
}

impl RunFolder {
    /// Open a run folder: `dir` itself, or `dir/latest` when `dir` is an output root (it has a
    /// `latest`).
    ///
    /// # Errors
    /// [`QueryError::NoRun`] if it does not exist, [`QueryError::Incomplete`] for a run in
    /// progress or hidden folder (name starting with `.`), [`QueryError::RunFolder`] if it
    /// cannot be read.
    pub fn open(dir: &Path) -> Result<RunFolder, QueryError> {
        if !dir.exists() {
            let hint = if dir == Path::new(DEFAULT_RUN) {
                "no runs here yet: `healthgap run --config healthgap.toml` writes out/<run_id> \
                 and out/latest; or pass --run DIR"
                    .to_string()
            } else {
                "pass a run folder (ROOT/<run_id>) or an output root holding `latest`".to_string()
            };
            return Err(QueryError::NoRun {
                path: dir.to_path_buf(),
                hint,
            });
        }
        // A run folder never holds `latest`: a folder that does is an output root.
        let latest = dir.join("latest");
        let path = if latest.exists() {
            latest
        } else {
            dir.to_path_buf()
        };
        let canonical = std::fs::canonicalize(&path).map_err(|source| QueryError::RunFolder {
            path: path.clone(),
            source,
        })?;
        let hidden = |p: &Path| {
            p.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        };
        if hidden(&path) || hidden(&canonical) {
            return Err(QueryError::Incomplete { path });
        }
        if !canonical.is_dir() {
            return Err(QueryError::NoRun {
                path,
                hint: "it is a file; pass the run folder that holds the tables".to_string(),
            });
        }
        let id = canonical
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| canonical.display().to_string());
        Ok(RunFolder {
            path,
            canonical,
            id,
        })
    }

    /// The folder as given (or `ROOT/latest`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run id: the name of the folder `path` resolves to (through `latest`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether two runs are the same folder.
    pub fn is_same(&self, other: &RunFolder) -> bool {
        self.canonical == other.canonical
    }

    /// The run's tables, by name.
    ///
    /// # Errors
    /// If the folder cannot be read, or a name is both a file and a folder.
    pub fn tables(&self) -> Result<Vec<TableSource>, QueryError> {
        discover(&self.path)
    }
}

/// Where one table's data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSource {
    /// The table name (file stem or folder name).
    pub name: String,
    /// The `.parquet` file or the folder of Parquet files.
    pub path: PathBuf,
    /// Whether `path` is a folder (hive-partitioned: `key=value/` folders become columns).
    pub partitioned: bool,
}

impl TableSource {
    /// The Parquet files of the table, sorted (one for a file table). Names starting with `.`
    /// or `_` (`_SUCCESS`, `.crc` files, temporary parts) are skipped.
    ///
    /// # Errors
    /// If the folder cannot be read.
    pub fn files(&self) -> Result<Vec<PathBuf>, QueryError> {
        if !self.partitioned {
            return Ok(vec![self.path.clone()]);
        }
        let mut files = Vec::new();
        collect_parquet(&self.path, &mut files, usize::MAX).map_err(|source| {
            QueryError::RunFolder {
                path: self.path.clone(),
                source,
            }
        })?;
        files.sort();
        Ok(files)
    }

    /// A lazy scan of the table: nothing is read until the plan runs.
    ///
    /// # Errors
    /// If a folder cannot be listed or a path is not valid for polars.
    pub fn scan(&self) -> Result<LazyFrame, QueryError> {
        let table_error = |source| QueryError::Table {
            table: self.name.clone(),
            path: self.path.clone(),
            source,
        };
        // Paths are literal: a run folder's name may contain glob characters.
        let mut args = ScanArgsParquet {
            glob: false,
            ..Default::default()
        };
        let path = |path: &Path| PlRefPath::try_from_path(path).map_err(table_error);
        if !self.partitioned {
            return LazyFrame::scan_parquet(path(&self.path)?, args).map_err(table_error);
        }
        args.hive_options.enabled = Some(true);
        let plain = only_hive_parquet(&self.path).map_err(|source| QueryError::RunFolder {
            path: self.path.clone(),
            source,
        })?;
        if plain {
            // Given the folder, polars reads `key=value` partitions below it only; given a list
            // of files it would also take `key=value` folders above the run for columns.
            return LazyFrame::scan_parquet(path(&self.path)?, args).map_err(table_error);
        }
        // Stray files (`.crc`, `_SUCCESS` with content, other formats) make polars refuse the
        // folder, so the Parquet files are listed here instead; polars then parses every
        // `key=value` folder of their paths, so those above the table are dropped again.
        let files = self
            .files()?
            .iter()
            .map(|file| path(file))
            .collect::<Result<Vec<_>, _>>()?;
        let above: Vec<String> = self
            .path
            .components()
            .filter_map(|part| {
                let part = part.as_os_str().to_string_lossy();
                part.split_once('=').map(|(key, _)| key.to_string())
            })
            .collect();
        let scan = LazyFrame::scan_parquet_files(files.into_iter().collect(), args)
            .map_err(table_error)?;
        Ok(if above.is_empty() {
            scan
        } else {
            scan.drop(by_name(above, false, false))
        })
    }
}

/// Whether every non-empty file under `dir` is a `.parquet` file reached through `key=value`
/// folders, its name not starting with `.` or `_` (polars skips empty files itself).
fn only_hive_parquet(dir: &Path) -> std::io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = std::fs::metadata(entry.path())?;
        if metadata.is_dir() {
            if !name.contains('=') || !only_hive_parquet(&entry.path())? {
                return Ok(false);
            }
        } else if metadata.len() > 0
            && (name.starts_with('.')
                || name.starts_with('_')
                || !name
                    .rsplit_once('.')
                    .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("parquet")))
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The tables in a run folder.
fn discover(dir: &Path) -> Result<Vec<TableSource>, QueryError> {
    let io_error = |source| QueryError::RunFolder {
        path: dir.to_path_buf(),
        source,
    };
    let mut tables: BTreeMap<String, TableSource> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') || file_name.starts_with('_') || file_name == "latest" {
            continue;
        }
        // `metadata` follows symbolic links: a linked table counts as what it links to.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        let table = if metadata.is_file() {
            match file_name.rsplit_once('.') {
                Some((stem, ext)) if ext.eq_ignore_ascii_case("parquet") => TableSource {
                    name: stem.to_string(),
                    path,
                    partitioned: false,
                },
                _ => continue,
            }
        } else if metadata.is_dir() {
            // A folder is a table when it holds Parquet files (`charts/` does not), and is
            // not itself a run (an output root without `latest`).
            let mut found = Vec::new();
            if path.join("manifest.json").exists()
                || collect_parquet(&path, &mut found, 1).is_err()
                || found.is_empty()
            {
                continue;
            }
            TableSource {
                name: file_name,
                path,
                partitioned: true,
            }
        } else {
            continue;
        };
        if let Some(previous) = tables.get(&table.name) {
            return Err(QueryError::DuplicateTable {
                name: table.name.clone(),
                first: previous.path.clone(),
                second: table.path,
            });
        }
        tables.insert(table.name.clone(), table);
    }
    Ok(tables.into_values().collect())
}

/// Collect up to `limit` Parquet files in `dir` and its hive partition folders (`key=value/`),
/// skipping names starting with `.` or `_`. Other folders are not descended into, so that a
/// folder of runs (an output root) is never mistaken for a partitioned table.
fn collect_parquet(dir: &Path, found: &mut Vec<PathBuf>, limit: usize) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        if found.len() >= limit {
            return Ok(());
        }
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        let metadata = std::fs::metadata(&path)?;
        if metadata.is_dir() {
            if name.contains('=') {
                collect_parquet(&path, found, limit)?;
            }
        } else if name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("parquet"))
        {
            found.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parquet(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
        let mut df = df!("a" => [1i64]).expect("frame");
        ParquetWriter::new(std::fs::File::create(path).expect("create"))
            .finish(&mut df)
            .expect("write parquet");
    }

    /// `out/` with one run (`latest`) and a run in progress.
    fn output_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = dir.path().join("out/run-1");
        parquet(&run.join("footprint_weights.parquet"));
        parquet(&run.join("segments/icb_code=QHM/part-0.parquet"));
        std::fs::write(run.join("segments/_SUCCESS"), "").expect("marker");
        parquet(&run.join("charts/not_a_partition/x.parquet"));
        std::fs::write(run.join("charts/gradient.svg"), "<svg/>").expect("chart");
        std::fs::write(run.join("manifest.json"), "{}").expect("manifest");
        std::os::unix::fs::symlink("run-1", dir.path().join("out/latest")).expect("link");
        parquet(&dir.path().join("out/.tmp-run-2/segments.parquet"));
        dir
    }

    #[test]
    fn tables_are_parquet_files_and_hive_folders_only() {
        let dir = output_root();
        let run = RunFolder::open(&dir.path().join("out/run-1")).expect("opens");
        let tables = run.tables().expect("lists");
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["footprint_weights", "segments"]);
        assert_eq!(tables[1].files().expect("files").len(), 1);
    }

    #[test]
    fn an_output_root_means_its_latest_run() {
        let dir = output_root();
        let run = RunFolder::open(&dir.path().join("out")).expect("opens");
        assert_eq!(run.id(), "run-1");
        assert!(run.path().ends_with("out/latest"));
    }

    #[test]
    fn partition_columns_come_from_the_table_folder_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A `key=value` folder above the run must not become a column.
        let table = dir.path().join("year=2025/run/segments");
        parquet(&table.join("icb_code=QHM/part-0.parquet"));
        let source = TableSource {
            name: "segments".into(),
            path: table.clone(),
            partitioned: true,
        };
        let names = |source: &TableSource| {
            let mut scan = source.scan().expect("scans");
            let schema = scan.collect_schema().expect("schema");
            schema
                .iter_names()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&source), ["a", "icb_code"]);
        // With a stray file the files are listed instead, and still read.
        std::fs::write(table.join("icb_code=QHM/.part-0.parquet.crc"), "crc").expect("crc");
        std::fs::write(table.join("_SUCCESS"), "done").expect("marker");
        assert_eq!(names(&source), ["a", "icb_code"]);
        assert_eq!(
            source
                .scan()
                .expect("scans")
                .collect()
                .expect("reads")
                .height(),
            1
        );
    }

    #[test]
    fn a_run_in_progress_is_refused() {
        let dir = output_root();
        let err = RunFolder::open(&dir.path().join("out/.tmp-run-2")).expect_err("refused");
        assert!(matches!(err, QueryError::Incomplete { .. }), "{err}");
    }
}
