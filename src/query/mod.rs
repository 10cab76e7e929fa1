//! SQL over a run's tables (`healthgap query`).
//!
//! Owns: finding a complete run folder and its tables ([`run`]), registering them lazily by
//! name and planning queries over them ([`catalog`]), reading a query before it runs — syntax errors with their position, the
//! read-only rule, its tables and `:name` placeholders ([`sql`]) — saved queries, their header
//! comment and parameter binding ([`saved`]), turning polars' errors into messages that name
//! the closest tables and columns, and streaming the result batch by batch to a terminal table
//! ([`display`]) or a file writer.
//!
//! Doesn't own: the tables' schemas (the publish stage and `schema.rs`), file formats
//! (`output::TableWriter`), or flags (`cli/query.rs`). Saved queries live in `queries/`
//! (format in `queries/README.md`).

pub mod catalog;
pub mod display;
pub mod run;
pub mod saved;
pub mod sql;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use polars::prelude::*;

pub use catalog::{Catalog, Planned, TableDescription};
pub use display::{TableView, ViewOptions};
pub use run::{COMPARE_PREFIX, DEFAULT_RUN, RunFolder, TableSource};
pub use saved::{Documented, Parameter, PreparedQuery, QueryHeader, SavedQuery};
pub use sql::{ParsedQuery, SyntaxError};

use crate::output::TableWriter;

/// Everything that can go wrong between a query's text and its last row.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The run folder does not exist.
    #[error("no run folder at {}: {hint}", path.display())]
    NoRun {
        /// The folder looked for.
        path: PathBuf,
        /// What to do instead.
        hint: String,
    },
    /// A run in progress or a hidden folder.
    #[error(
        "{} is a run in progress or a hidden folder (its name starts with `.`): query a \
         complete run, e.g. ROOT/latest",
        path.display()
    )]
    Incomplete {
        /// The folder.
        path: PathBuf,
    },
    /// A run folder without tables.
    #[error(
        "no tables in {}: a run folder holds <table>.parquet files or <table>/ folders of \
         Parquet files (pass --run ROOT/<run_id>, or an output root holding `latest`)",
        path.display()
    )]
    NoTables {
        /// The folder.
        path: PathBuf,
    },
    /// Two tables with one name (`x.parquet` and `x/`).
    #[error("table `{name}` is both {} and {}", first.display(), second.display())]
    DuplicateTable {
        /// The name.
        name: String,
        /// One source.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A run folder or partition folder could not be read.
    #[error("reading run folder {}", path.display())]
    RunFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A query file could not be read.
    #[error("reading query file {}", path.display())]
    QueryFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No saved query of that name.
    #[error("no saved query `{name}` in {}{hint}", dir.display())]
    UnknownSavedQuery {
        /// The name asked for.
        name: String,
        /// The folder searched.
        dir: PathBuf,
        /// Closest names and the saved queries there.
        hint: String,
    },
    /// The SQL does not parse.
    #[error("{0}")]
    Syntax(SyntaxError),
    /// A statement that is not a query.
    #[error(
        "queries are read-only: {kind} statements are refused; only SELECT (or WITH … SELECT) \
         queries run"
    )]
    ReadOnly {
        /// `INSERT`, `CREATE TABLE`, `SELECT … INTO`, …
        kind: String,
    },
    /// More than one statement.
    #[error("one statement per query, found {count} (separated by `;`)")]
    MultipleStatements {
        /// How many.
        count: usize,
    },
    /// Nothing but comments or whitespace.
    #[error("the query is empty")]
    Empty,
    /// A malformed `--param` or placeholder.
    #[error("{0}")]
    BadParameter(String),
    /// A placeholder without a value.
    #[error("missing parameter `{name}`: pass --param {name}=VALUE{hint}")]
    MissingParameter {
        /// The placeholder.
        name: String,
        /// The query's parameters.
        hint: String,
    },
    /// A value for a placeholder the query does not have.
    #[error("unknown parameter `{name}`{hint}")]
    UnknownParameter {
        /// The name given.
        name: String,
        /// Closest name and the query's parameters.
        hint: String,
    },
    /// A table that is not in the run(s).
    #[error("unknown table `{name}`{hint}")]
    UnknownTable {
        /// The name in the query.
        name: String,
        /// Closest names and the tables there are.
        hint: String,
    },
    /// A column that is not in the tables the query reads.
    #[error("unknown column `{name}`{hint}")]
    UnknownColumn {
        /// The name in the query.
        name: String,
        /// Closest columns, with their tables.
        hint: String,
    },
    /// A column of a table the query reads, used where it is out of scope.
    #[error(
        "column `{name}` ({tables}) is not available where the query uses it (the columns \
         there: {available}): after GROUP BY only the grouped columns and aggregates are \
         (select an aggregate under a name and use the name, e.g. in ORDER BY), and a CTE or \
         subquery passes on only the columns it selects"
    )]
    ColumnOutOfScope {
        /// The name in the query.
        name: String,
        /// The tables that have it.
        tables: String,
        /// The columns polars could see there.
        available: String,
    },
    /// A table the query reads cannot be read.
    #[error("table `{table}` ({})", path.display())]
    Table {
        /// The table.
        table: String,
        /// Its file or folder.
        path: PathBuf,
        /// polars' reason.
        #[source]
        source: PolarsError,
    },
    /// polars refused the query (a type mismatch, an unsupported function, …).
    #[error("{message}")]
    Invalid {
        /// polars' message, without the plan it appends.
        message: String,
    },
    /// The query failed while it ran.
    #[error("running the query: {message}")]
    Execution {
        /// polars' message, without the plan it appends.
        message: String,
        /// Whether polars failed to read or write a file (the environment, not the query).
        io: bool,
    },
    /// The result could not be written.
    #[error("writing the result")]
    Output {
        /// Why (a broken pipe is not a failure: see `error::is_broken_pipe`).
        #[source]
        source: std::io::Error,
    },
}

impl QueryError {
    /// Whether an analyst can fix this (a query, a flag, a run folder path: exit code 2), as
    /// opposed to the environment failing (a write error, exit code 1).
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            QueryError::Output { .. } | QueryError::Execution { io: true, .. }
        )
    }

    fn from_execution(err: PolarsError) -> QueryError {
        if let Some(io) = io_error(&err) {
            return QueryError::Output { source: io };
        }
        QueryError::Execution {
            io: matches!(err, PolarsError::IO { .. }),
            message: catalog::clean_message(&err.to_string()),
        }
    }
}

/// The `std::io::Error` a polars write error wraps, if it is a broken pipe (which must reach
/// `main` as an `io::Error` to exit quietly).
fn io_error(err: &PolarsError) -> Option<std::io::Error> {
    match err {
        PolarsError::IO { error, .. } if error.kind() == std::io::ErrorKind::BrokenPipe => {
            Some(std::io::Error::new(error.kind(), error.to_string()))
        }
        PolarsError::Context { error, .. } => io_error(error),
        _ => None,
    }
}

/// Receives a query's result, batch by batch, in order.
pub trait ResultSink: Send {
    /// The next batch.
    ///
    /// # Errors
    /// If it cannot be written; the query stops.
    fn write_batch(&mut self, batch: DataFrame) -> Result<(), QueryError>;

    /// After the last batch.
    ///
    /// # Errors
    /// If what is pending cannot be written.
    fn finish(&mut self) -> Result<(), QueryError>;
}

impl ResultSink for TableView {
    fn write_batch(&mut self, batch: DataFrame) -> Result<(), QueryError> {
        self.push(&batch).map_err(QueryError::from_execution)
    }

    fn finish(&mut self) -> Result<(), QueryError> {
        Ok(())
    }
}

impl ResultSink for TableWriter {
    fn write_batch(&mut self, mut batch: DataFrame) -> Result<(), QueryError> {
        TableWriter::write_batch(self, &mut batch).map_err(write_error)
    }

    fn finish(&mut self) -> Result<(), QueryError> {
        TableWriter::finish(self).map(|_| ()).map_err(write_error)
    }
}

fn write_error(err: PolarsError) -> QueryError {
    let source = match &err {
        PolarsError::IO { error, .. } => std::io::Error::new(error.kind(), error.to_string()),
        other => std::io::Error::other(other.to_string()),
    };
    QueryError::Output { source }
}

struct Streaming<S> {
    sink: Option<S>,
    error: Option<QueryError>,
}

/// Run a planned query with polars' streaming engine, handing each batch of the result to
/// `sink` in order, and return the sink when the last batch is written. Memory holds one batch
/// at a time (plus what the sink keeps), whatever the result's size.
///
/// # Errors
/// [`QueryError::Execution`] if the query fails while running, or the sink's error (a broken
/// pipe stops the query at once).
pub fn stream<S: ResultSink + 'static>(result: LazyFrame, sink: S) -> Result<S, QueryError> {
    let shared = Arc::new(Mutex::new(Streaming {
        sink: Some(sink),
        error: None,
    }));
    let in_callback = Arc::clone(&shared);
    let callback = PlanCallback::new(move |batch: DataFrame| {
        let mut state = in_callback.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *state;
        let (Some(sink), None) = (state.sink.as_mut(), state.error.as_ref()) else {
            return Ok(true);
        };
        match sink.write_batch(batch) {
            Ok(()) => Ok(false),
            // Stop the query: the error is reported once it returns.
            Err(err) => {
                state.error = Some(err);
                Ok(true)
            }
        }
    });
    let ran = result
        .sink_batches(callback, true, None)
        .and_then(|plan| plan.collect_with_engine(Engine::Streaming));
    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(err) = state.error.take() {
        return Err(err);
    }
    ran.map_err(QueryError::from_execution)?;
    let mut sink = state.sink.take().ok_or_else(|| QueryError::Invalid {
        message: "internal: the result sink was lost".to_string(),
    })?;
    sink.finish()?;
    Ok(sink)
}

/// Up to three of `candidates` closest to `name`: equal ignoring case first, then by edit
/// distance (at most a third of the name's length, at least 2), then names containing it.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = name.to_lowercase();
    let allowed = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let distance = strsim::damerau_levenshtein(&wanted, &lower);
            if distance <= allowed {
                Some((distance, candidate))
            } else if wanted.len() >= 3 && (lower.contains(&wanted) || wanted.contains(&lower)) {
                Some((allowed + 1, candidate))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Names for a message: comma-separated, at most 30 then "… (N more)".
pub fn names_list<S: AsRef<str>>(names: &[S]) -> String {
    const SHOWN: usize = 30;
    let mut list = names
        .iter()
        .take(SHOWN)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(", … ({} more)", names.len() - SHOWN));
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_prefers_case_then_distance_then_containment() {
        let names = [
            "footprint_weights",
            "segments",
            "inequality",
            "indicators",
            "prev_segments",
        ];
        assert_eq!(closest("Segments", names), ["segments", "prev_segments"]);
        assert_eq!(closest("footprint_weight", names), ["footprint_weights"]);
        assert_eq!(closest("weights", names), ["footprint_weights"]);
        assert_eq!(closest("indicator", names), ["indicators"]);
        assert!(closest("zzz", names).is_empty());
    }

    #[test]
    fn streaming_keeps_order_and_counts_rows() {
        let df = df!("n" => (0..10_000i64).collect::<Vec<_>>()).expect("frame");
        let view = stream(
            df.lazy().sort(
                ["n"],
                SortMultipleOptions::default().with_order_descending(true),
            ),
            TableView::new(
                Arc::new(Schema::from_iter([Field::new("n".into(), DataType::Int64)])),
                2,
            ),
        )
        .expect("streams");
        assert_eq!(view.rows(), 10_000);
        let mut out = Vec::new();
        view.render(&mut out, &ViewOptions::default())
            .expect("renders");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("9999") && text.lines().nth(5).is_some_and(|l| l.trim() == "0"),
            "{text}"
        );
    }

    #[test]
    fn broken_pipe_reaches_the_caller_as_an_io_error() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let df = df!("n" => [1i64, 2]).expect("frame");
        let writer = TableWriter::new(
            Box::new(Closed),
            crate::output::TableFormat::Csv,
            df.schema(),
        )
        .expect("writer");
        let err = stream(df.lazy(), writer).expect_err("pipe closed");
        let err = anyhow::Error::new(err);
        assert!(crate::error::is_broken_pipe(&err), "{err:#}");
    }
}
