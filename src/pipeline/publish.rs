//! Stage 7, publish: the run folder, written so that a failure never damages the last good run.
//!
//! Owns the output root's life cycle:
//! - a **lock** (`ROOT/.healthgap.lock`, an `flock` on the file plus the holder's pid, host and
//!   process start time in it) so two runs never write one root at once; a lock left by a
//!   killed run is detected (its `flock` is gone and so is its process) and cleared;
//! - a **staging folder** `ROOT/.tmp-<run_id>-<pid>` where every table is written;
//! - the **commit**: the manifest is written last, files and folder are synced, the staging
//!   folder is renamed to `ROOT/<run_id>`, and `ROOT/latest` is switched to it by renaming a
//!   fresh symlink over the old one. Until the rename nothing a reader sees has changed; a
//!   folder whose name starts with `.` is never a run.
//!
//! Tables are Parquet (zstd, with statistics) carrying key-value metadata: run id, tool version,
//! input hashes. What goes into each table is decided by the other stages.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polars::io::utils::file::{Writable, WritableTrait};
use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::output::TableWriter;

/// Name of the lock file in the output root.
pub const LOCK_FILE: &str = ".healthgap.lock";
/// Name of the symlink to the newest complete run.
pub const LATEST: &str = "latest";
/// Prefix of staging folders (never a run).
pub const STAGING_PREFIX: &str = ".tmp-";
/// Rows per Parquet row group (see [`crate::output::PARQUET_ROW_GROUP_ROWS`]).
pub const ROW_GROUP_ROWS: usize = crate::output::PARQUET_ROW_GROUP_ROWS;

/// A failure to write the run folder.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The file system refused (unwritable root, full disk, …): a person must act.
    #[error("{}: {context}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another run holds the output root.
    #[error("{0}")]
    Locked(String),
    /// A run with this id already exists.
    #[error("run {run_id} already exists in {}; choose another --run-id", root.display())]
    RunExists {
        /// The output root.
        root: PathBuf,
        /// The id asked for.
        run_id: String,
    },
    /// polars failed to compute or write a table (an internal failure).
    #[error("writing table {table}")]
    Table {
        /// The table.
        table: String,
        /// polars' error.
        source: PolarsError,
    },
}

impl PublishError {
    /// Whether a person must act (exit code 2) rather than the tool having failed (1).
    pub fn is_user_facing(&self) -> bool {
        match self {
            PublishError::Io { .. } | PublishError::Locked(_) | PublishError::RunExists { .. } => {
                true
            }
            PublishError::Table { source, .. } => matches!(source, PolarsError::IO { .. }),
        }
    }

    fn io(path: &Path, context: &str, source: std::io::Error) -> Self {
        PublishError::Io {
            path: path.to_path_buf(),
            context: context.to_string(),
            source,
        }
    }
}

/// What the lock file records about the run holding it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LockInfo {
    pid: u32,
    host: String,
    /// Process start time (clock ticks since boot, from `/proc/<pid>/stat`), so a reused pid
    /// is not mistaken for the run that left the lock.
    process_start: Option<u64>,
    run_id: String,
    started_at: String,
}

/// The lock on an output root; released (the file removed) when dropped.
///
/// Held two ways: an exclusive `flock` on the open lock file, which the kernel releases when the
/// process ends however it ends (so two healthgap runs can never both hold it, and a killed run
/// never blocks the next one), and the file's contents, which name the run for people and for
/// runs that cannot see the `flock` (another host on a shared file system).
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// The open lock file: closing it releases the `flock`, so it lives as long as the lock.
    _file: File,
    /// A note when a stale lock from a killed run was cleared on the way in.
    pub cleared_stale: Option<String>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while the flock is still held (the file closes after this body), so a run
        // that opened the old file in between sees it is gone and retries on a fresh one.
        // Nothing useful can be done if removal fails; the next run will find the lock stale.
        let _ = fs::remove_file(&self.path);
    }
}

fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// The start time of a process, if it is running (Linux `/proc`). A zombie (killed, not yet
/// reaped by its parent) still has a `/proc` entry but is not running.
fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last
    // ')', with the state (field 3) first and the start time (field 22) twenty fields on.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether `file` (open) is the file now at `path`: a lock taken on a file that another run
/// removed in the meantime locks nothing.
fn is_file_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Take the lock on `root` (creating the folder), clearing a stale lock left by a dead run.
///
/// A lock is live when another process holds the file's `flock`, or (for a holder that cannot
/// hold one: another host, an older healthgap) when the process it names is still running with
/// the start time it recorded, so a reused pid is not mistaken for the run that left the lock.
///
/// # Errors
/// [`PublishError::Locked`] when a live run holds it; [`PublishError::Io`] when the root cannot
/// be created or written.
pub fn acquire_lock(root: &Path, run_id: &str) -> Result<RunLock, PublishError> {
    fs::create_dir_all(root)
        .map_err(|e| PublishError::io(root, "cannot create the output root", e))?;
    let path = root.join(LOCK_FILE);
    let pid = std::process::id();
    let info = LockInfo {
        pid,
        host: host_name(),
        process_start: process_start(pid),
        run_id: run_id.to_string(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    for _attempt in 0..3 {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| PublishError::io(&path, "cannot create the lock file", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                return Err(PublishError::Locked(live_lock_message(
                    root,
                    holder.as_ref(),
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(PublishError::io(&path, "cannot lock the lock file", e));
            }
        }
        if !is_file_at(&file, &path) {
            // The run holding it finished and removed it between our open and lock: try again
            // on the file now at the path.
            continue;
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let cleared_stale = if text.trim().is_empty() {
            // Created by a run that died before writing it (or just now, by us).
            None
        } else {
            match serde_json::from_str::<LockInfo>(&text) {
                Ok(holder) if holder.host != info.host => {
                    return Err(PublishError::Locked(format!(
                        "{} is locked by run {} (pid {} on host {}, started {}); it cannot be checked from this host: remove {} once that run has ended",
                        root.display(),
                        holder.run_id,
                        holder.pid,
                        holder.host,
                        holder.started_at,
                        path.display()
                    )));
                }
                // A running process that does not hold the flock (an older healthgap): live.
                Ok(holder)
                    if process_start(holder.pid).is_some()
                        && (holder.process_start.is_none()
                            || process_start(holder.pid) == holder.process_start) =>
                {
                    return Err(PublishError::Locked(live_lock_message(root, Some(&holder))));
                }
                Ok(holder) => Some(format!(
                    "cleared a stale lock left by run {} (pid {}, started {}), which is no longer running",
                    holder.run_id, holder.pid, holder.started_at
                )),
                Err(_) => {
                    Some("cleared an unreadable lock file left by an earlier run".to_string())
                }
            }
        };
        let text = serde_json::to_string(&info).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| file.seek(std::io::SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(|e| PublishError::io(&path, "cannot write the lock file", e))?;
        return Ok(RunLock {
            path,
            _file: file,
            cleared_stale,
        });
    }
    Err(PublishError::Locked(format!(
        "could not take the lock on {}: other runs took and released it while this one tried",
        root.display()
    )))
}

/// What the lock file says about its holder, if it can be read.
fn read_holder(file: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn live_lock_message(root: &Path, holder: Option<&LockInfo>) -> String {
    match holder {
        Some(holder) => format!(
            "another run is writing to {}: run {} (pid {}, started {}); wait for it to finish",
            root.display(),
            holder.run_id,
            holder.pid,
            holder.started_at
        ),
        // The holder has the flock but has not written its details yet: it has just started.
        None => format!(
            "another run is writing to {} (it has just started); wait for it to finish",
            root.display()
        ),
    }
}

/// A table written to the run folder, for the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableRecord {
    /// Table name (file stem).
    pub table: String,
    /// File name inside the run folder.
    pub file: String,
    /// Rows.
    pub rows: u64,
    /// Whether the table is restricted (patient level, never for publication).
    pub restricted: bool,
}

/// A run being written: tables go to the staging folder until [`StagingRun::commit`].
#[derive(Debug)]
pub struct StagingRun {
    root: PathBuf,
    run_id: String,
    dir: PathBuf,
    metadata: Vec<(String, String)>,
    tables: Vec<TableRecord>,
    committed: bool,
}

impl Drop for StagingRun {
    fn drop(&mut self) {
        // A run that returns with an error leaves nothing half-written behind (a killed one
        // cannot clean up; the next run removes its folder).
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl StagingRun {
    /// Start a run under `root` (the caller holds the lock): remove staging folders of earlier
    /// runs that died, refuse an existing run id, create this run's staging folder.
    ///
    /// # Errors
    /// [`PublishError`] when the root cannot be written or the run id exists.
    pub fn begin(root: &Path, run_id: &str, _lock: &RunLock) -> Result<Self, PublishError> {
        if root.join(run_id).exists() {
            return Err(PublishError::RunExists {
                root: root.to_path_buf(),
                run_id: run_id.to_string(),
            });
        }
        let entries = fs::read_dir(root)
            .map_err(|e| PublishError::io(root, "cannot list the output root", e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(STAGING_PREFIX) || name.starts_with(".latest-") {
                // Holding the lock, any staging folder belongs to a run that died.
                let path = entry.path();
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(|e| {
                    PublishError::io(&path, "cannot remove a dead run's staging folder", e)
                })?;
            }
        }
        let dir = root.join(format!("{STAGING_PREFIX}{run_id}-{}", std::process::id()));
        fs::create_dir(&dir)
            .map_err(|e| PublishError::io(&dir, "cannot create the staging folder", e))?;
        Ok(StagingRun {
            root: root.to_path_buf(),
            run_id: run_id.to_string(),
            dir,
            metadata: Vec::new(),
            tables: Vec::new(),
            committed: false,
        })
    }

    /// The staging folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path a table is written to.
    pub fn table_path(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.parquet"))
    }

    /// Tables written so far.
    pub fn tables(&self) -> &[TableRecord] {
        &self.tables
    }

    fn write_options(&self, table: &str) -> ParquetWriteOptions {
        let mut metadata = self.metadata.clone();
        metadata.push(("healthgap.table".to_string(), table.to_string()));
        ParquetWriteOptions {
            compression: crate::output::parquet_compression(),
            statistics: StatisticsOptions::full(),
            row_group_size: Some(ROW_GROUP_ROWS),
            key_value_metadata: Some(KeyValueMetadata::from_static(metadata)),
            ..Default::default()
        }
    }

    /// Write an in-memory table.
    ///
    /// # Errors
    /// [`PublishError`] when the file cannot be written.
    pub fn write_frame(
        &mut self,
        table: &str,
        frame: &DataFrame,
        restricted: bool,
    ) -> Result<(), PublishError> {
        let path = self.table_path(table);
        let file = RecordingFile::create(&path)?;
        let failure = file.failure();
        let options = self.write_options(table);
        // Through a TableWriter, row group by row group: it compresses groups in parallel,
        // where polars' own `finish` compresses every page of the table one after another.
        // The groups are sliced from the frame's chunks as they are (a group's pages are
        // encoded from its chunks), not from a copy of the whole frame in one chunk.
        let write = || -> PolarsResult<u64> {
            let mut writer = TableWriter::parquet(
                Box::new(std::io::BufWriter::new(file)),
                frame.schema(),
                &options,
            )?;
            for offset in (0..frame.height()).step_by(ROW_GROUP_ROWS) {
                let mut group = frame.slice(offset as i64, ROW_GROUP_ROWS);
                writer.write_batch(&mut group)?;
            }
            writer.finish()
        };
        let rows = write().map_err(|source| self.table_error(table, &path, source, &failure))?;
        self.record(table, rows, restricted);
        Ok(())
    }

    /// Stream a lazy plan into a table with the streaming engine (bounded memory), then count
    /// its rows from the file's metadata.
    ///
    /// # Errors
    /// [`PublishError`] when the plan fails or the file cannot be written.
    pub fn sink(
        &mut self,
        table: &str,
        plan: LazyFrame,
        restricted: bool,
    ) -> Result<u64, PublishError> {
        let path = self.table_path(table);
        let options = self.write_options(table);
        let file = RecordingFile::create(&path)?;
        let failure = file.failure();
        let writable = Writable::Dyn(Box::new(file));
        let target = SinkDestination::File {
            target: SinkTarget::Dyn(SpecialEq::new(Arc::new(Mutex::new(Some(writable))))),
        };
        let args = UnifiedSinkArgs {
            maintain_order: true,
            ..Default::default()
        };
        plan.sink(target, FileWriteFormat::Parquet(Arc::new(options)), args)
            .and_then(|sink| sink.collect_with_engine(Engine::Streaming))
            .map_err(|source| self.table_error(table, &path, source, &failure))?;
        let rows = LazyFrame::scan_parquet(
            PlRefPath::new(path.to_string_lossy().as_ref()),
            ScanArgsParquet::default(),
        )
        .and_then(|lf| lf.select([len()]).collect())
        .and_then(|df| {
            Ok(df
                .column("len")?
                .cast(&DataType::UInt64)?
                .u64()?
                .get(0)
                .unwrap_or(0))
        })
        .map_err(|source| self.table_error(table, &path, source, &failure))?;
        self.record(table, rows, restricted);
        Ok(rows)
    }

    /// Write a table from plans run one after another (the parts of a split patient list),
    /// each streamed batch by batch into one file: memory holds one part's plan and one row
    /// group, not the table. The plans must give the same columns.
    ///
    /// # Errors
    /// [`PublishError`] when a plan fails or the file cannot be written.
    pub fn sink_parts(
        &mut self,
        table: &str,
        plans: impl IntoIterator<Item = PolarsResult<LazyFrame>>,
        restricted: bool,
    ) -> Result<u64, PublishError> {
        let path = self.table_path(table);
        let options = self.write_options(table);
        let file = RecordingFile::create(&path)?;
        let failure = file.failure();
        let run = || -> PolarsResult<u64> {
            let mut plans = plans.into_iter();
            let Some(first) = plans.next() else {
                polars_bail!(ComputeError: "internal: no plan for table {table}");
            };
            let mut first = first?;
            let mut writer = TableWriter::parquet(
                Box::new(std::io::BufWriter::new(file)),
                first.collect_schema()?.as_ref(),
                &options,
            )?;
            for plan in std::iter::once(Ok(first)).chain(plans) {
                writer = crate::lazy::fold_batches(plan?, writer, |writer, mut batch| {
                    writer.write_batch(&mut batch)
                })?;
            }
            writer.finish()
        };
        let rows = run().map_err(|source| self.table_error(table, &path, source, &failure))?;
        self.record(table, rows, restricted);
        Ok(rows)
    }

    /// Note a written table for the manifest.
    fn record(&mut self, table: &str, rows: u64, restricted: bool) {
        self.tables.push(TableRecord {
            table: table.to_string(),
            file: format!("{table}.parquet"),
            rows,
            restricted,
        });
    }

    /// The key-value metadata every table written from now on carries (run id, version,
    /// inputs' hashes): known once the inputs are read, after the run began.
    pub fn set_metadata(&mut self, metadata: Vec<(String, String)>) {
        self.metadata = metadata;
    }

    /// A working folder inside the staging folder (removed with it if the run fails; the
    /// caller removes it before commit).
    pub fn work_dir(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".work-{name}"))
    }

    /// Drop a table written only as a working copy (e.g. the patient-level table when the
    /// config does not publish it).
    ///
    /// # Errors
    /// [`PublishError::Io`] when the file cannot be removed.
    pub fn discard(&mut self, table: &str) -> Result<(), PublishError> {
        let path = self.table_path(table);
        fs::remove_file(&path)
            .map_err(|e| PublishError::io(&path, "cannot remove a working table", e))?;
        self.tables.retain(|t| t.table != table);
        Ok(())
    }

    fn table_error(
        &self,
        table: &str,
        path: &Path,
        source: PolarsError,
        failure: &WriteFailure,
    ) -> PublishError {
        // The operating system's own error, when a write failed: the Parquet writer reports a
        // failed write of its footer as a malformed file, which would read as a bug (exit 1)
        // rather than a full disk a person must clear (exit 2).
        if let Some(error) = failure.take() {
            return PublishError::Io {
                path: path.to_path_buf(),
                context: format!("cannot write table {table}"),
                source: error,
            };
        }
        match source {
            // Disk full, permission denied: the environment, not the tool.
            PolarsError::IO { error, .. } => PublishError::Io {
                path: path.to_path_buf(),
                context: format!("cannot write table {table}"),
                source: std::io::Error::new(error.kind(), error.to_string()),
            },
            source => PublishError::Table {
                table: table.to_string(),
                source,
            },
        }
    }

    /// Write the manifest, sync everything, rename the staging folder to `ROOT/<run_id>` and
    /// point `ROOT/latest` at it. Returns the run folder.
    ///
    /// `after_rename` runs between the rename and the switch of `latest` (tests use it to stop
    /// a run there).
    ///
    /// # Errors
    /// [`PublishError::Io`] when any step fails; the previous run and `latest` are untouched
    /// unless the final `latest` rename succeeded.
    pub fn commit(
        mut self,
        manifest: &serde_json::Value,
        after_rename: impl FnOnce(),
    ) -> Result<PathBuf, PublishError> {
        let manifest_path = self.dir.join("manifest.json");
        let text = serde_json::to_string_pretty(manifest).unwrap_or_else(|_| "{}".to_string());
        write_synced(&manifest_path, text.as_bytes())?;
        for entry in fs::read_dir(&self.dir)
            .map_err(|e| PublishError::io(&self.dir, "cannot list the staging folder", e))?
            .flatten()
        {
            let path = entry.path();
            if path.is_file() {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| PublishError::io(&path, "cannot sync a table to disk", e))?;
            }
        }
        sync_dir(&self.dir)?;
        let final_dir = self.root.join(&self.run_id);
        fs::rename(&self.dir, &final_dir).map_err(|e| {
            PublishError::io(&final_dir, "cannot move the finished run into place", e)
        })?;
        self.committed = true;
        sync_dir(&self.root)?;
        after_rename();
        point_latest(&self.root, &self.run_id)?;
        Ok(final_dir)
    }
}

/// The first error the operating system gave while a table was written, shared between the
/// file (inside polars' writer) and the code that reports the failure.
#[derive(Debug, Clone, Default)]
struct WriteFailure(Arc<Mutex<Option<std::io::Error>>>);

impl WriteFailure {
    fn record(&self, error: &std::io::Error) {
        if let Ok(mut slot) = self.0.lock()
            && slot.is_none()
        {
            // io::Error is not Clone: keep the OS error number (its message comes with it).
            *slot = Some(match error.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(error.kind(), error.to_string()),
            });
        }
    }

    fn take(&self) -> Option<std::io::Error> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// A table file that records the first failed write, sync or close (see [`WriteFailure`]).
struct RecordingFile {
    file: File,
    failure: WriteFailure,
}

impl RecordingFile {
    fn create(path: &Path) -> Result<Self, PublishError> {
        let file = File::create(path)
            .map_err(|e| PublishError::io(path, "cannot create the table file", e))?;
        Ok(RecordingFile {
            file,
            failure: WriteFailure::default(),
        })
    }

    fn failure(&self) -> WriteFailure {
        self.failure.clone()
    }

    fn check<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(error) = &result {
            self.failure.record(error);
        }
        result
    }
}

impl Write for RecordingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.file.write(buf);
        self.check(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.file.flush();
        self.check(result)
    }
}

impl WritableTrait for RecordingFile {
    fn close(&mut self) -> std::io::Result<()> {
        // The file closes when dropped; commit syncs every table before the rename.
        Ok(())
    }

    fn sync_all(&self) -> std::io::Result<()> {
        self.check(self.file.sync_all())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.check(self.file.sync_data())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    let mut file = File::create(path).map_err(|e| PublishError::io(path, "cannot create", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| PublishError::io(path, "cannot write", e))
}

fn sync_dir(dir: &Path) -> Result<(), PublishError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PublishError::io(dir, "cannot sync the folder", e))
}

/// Switch `ROOT/latest` to `run_id` atomically: a new symlink under a temporary name, renamed
/// over the old one.
fn point_latest(root: &Path, run_id: &str) -> Result<(), PublishError> {
    let temporary = root.join(format!(".latest-{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    std::os::unix::fs::symlink(run_id, &temporary)
        .map_err(|e| PublishError::io(&temporary, "cannot create the latest link", e))?;
    let latest = root.join(LATEST);
    fs::rename(&temporary, &latest)
        .map_err(|e| PublishError::io(&latest, "cannot switch the latest link", e))?;
    sync_dir(root)
}

/// The run folder `ROOT/latest` points at, if any.
pub fn latest_run(root: &Path) -> Option<PathBuf> {
    let target = fs::read_link(root.join(LATEST)).ok()?;
    let dir = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    dir.is_dir().then_some(dir)
}

/// SHA-256 of a file, as lowercase hex.
///
/// # Errors
/// If the file cannot be read.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of bytes, as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_start_is_readable() {
        assert!(process_start(std::process::id()).is_some());
    }

    #[test]
    fn a_zombie_is_not_running() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        assert!(process_start(child.id()).is_some());
        child.kill().expect("kill");
        // Killed but not reaped: /proc still lists it, as state Z. Bounded wait for the kernel
        // to finish the kill.
        let mut gone = false;
        for _ in 0..200 {
            if process_start(child.id()).is_none() {
                gone = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.wait();
        assert!(gone, "a killed, unreaped process counts as not running");
    }

    #[test]
    fn a_second_lock_on_one_root_is_refused_until_the_first_is_released() {
        let root = tempfile::tempdir().expect("temp dir");
        let first = acquire_lock(root.path(), "r1").expect("first lock");
        assert!(first.cleared_stale.is_none());
        let err = acquire_lock(root.path(), "r2").expect_err("held");
        assert!(
            err.to_string().contains("another run is writing to") && err.to_string().contains("r1"),
            "{err}"
        );
        drop(first);
        assert!(!root.path().join(LOCK_FILE).exists());
        let second = acquire_lock(root.path(), "r2").expect("free again");
        assert!(second.cleared_stale.is_none());
    }

    #[test]
    fn a_lock_naming_a_reused_pid_is_stale() {
        let root = tempfile::tempdir().expect("temp dir");
        // This process is alive, but it did not start at clock tick 1: the pid was reused.
        let lock = serde_json::json!({
            "pid": std::process::id(),
            "host": host_name(),
            "process_start": 1,
            "run_id": "old",
            "started_at": "2026-11-21T02:00:00Z",
        });
        fs::write(root.path().join(LOCK_FILE), lock.to_string()).expect("lock");
        let taken = acquire_lock(root.path(), "new").expect("stale lock cleared");
        assert!(
            taken
                .cleared_stale
                .as_deref()
                .is_some_and(|n| n.contains("run old")),
            "{:?}",
            taken.cleared_stale
        );
    }

    #[test]
    fn sha256_of_known_bytes() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
