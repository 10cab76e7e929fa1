//! The tables a query can name, and planning a query over them.
//!
//! Laziness: only the tables a query names are registered in polars' SQL context, each as a
//! Parquet scan, so a query over one table reads that table's footers and the columns it
//! needs, and never opens the others (an unreadable table elsewhere in the run does not
//! matter). polars' errors are turned here into messages that name the closest tables and
//! columns. Finding runs and their tables is `run.rs`.

use std::collections::BTreeMap;

use polars::prelude::*;
use polars::sql::SQLContext;

use super::run::{COMPARE_PREFIX, RunFolder, TableSource};
use super::saved::PreparedQuery;
use super::{QueryError, closest, names_list};

/// What `--tables` shows for one table.
#[derive(Debug)]
pub struct TableDescription<'a> {
    /// The table.
    pub source: &'a TableSource,
    /// Its columns and types, or why it cannot be read.
    pub schema: Result<SchemaRef, QueryError>,
    /// Its row count (from Parquet footers), or why it cannot be read.
    pub rows: Result<u64, QueryError>,
    /// Number of Parquet files.
    pub files: usize,
}

/// A query planned over a catalog: the lazy result and its schema.
pub struct Planned {
    /// The lazy result; nothing has been read but the footers of the tables it names.
    pub frame: LazyFrame,
    /// The result's columns and types.
    pub schema: SchemaRef,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A LazyFrame has no Debug; its schema says what the plan returns.
        f.debug_struct("Planned")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// The tables a query can name: one or two runs' tables, by registered name.
#[derive(Debug, Default)]
pub struct Catalog {
    tables: BTreeMap<String, TableSource>,
    compared: bool,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Add a run's tables, their names prefixed with `prefix` ("" for the run queried,
    /// [`COMPARE_PREFIX`] for the run compared with).
    ///
    /// # Errors
    /// If the run has no tables or cannot be read.
    pub fn add_run(&mut self, run: &RunFolder, prefix: &str) -> Result<(), QueryError> {
        let tables = run.tables()?;
        if tables.is_empty() {
            return Err(QueryError::NoTables {
                path: run.path().to_path_buf(),
            });
        }
        if prefix == COMPARE_PREFIX {
            self.compared = true;
        }
        for mut table in tables {
            table.name = format!("{prefix}{}", table.name);
            self.tables.insert(table.name.clone(), table);
        }
        Ok(())
    }

    /// Registered table names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// A table by registered name.
    pub fn get(&self, name: &str) -> Option<&TableSource> {
        self.tables.get(name)
    }

    /// Every table with its schema and row count, for `--tables`. A table that cannot be read
    /// is described with its error rather than failing the listing.
    pub fn describe(&self) -> Vec<TableDescription<'_>> {
        self.tables
            .values()
            .map(|source| {
                let schema = source.scan().and_then(|mut lf| {
                    lf.collect_schema().map_err(|err| QueryError::Table {
                        table: source.name.clone(),
                        path: source.path.clone(),
                        source: err,
                    })
                });
                // A count over a Parquet scan is answered from the footers.
                let rows = source.scan().and_then(|lf| {
                    lf.select([len()])
                        .collect()
                        .and_then(|df| {
                            df.column("len")?
                                .get(0)?
                                .extract::<u64>()
                                .ok_or_else(|| polars_err!(ComputeError: "no row count"))
                        })
                        .map_err(|err| QueryError::Table {
                            table: source.name.clone(),
                            path: source.path.clone(),
                            source: err,
                        })
                });
                TableDescription {
                    source,
                    files: source.files().map(|f| f.len()).unwrap_or(0),
                    schema,
                    rows,
                }
            })
            .collect()
    }

    /// Plan a prepared query: register the tables it names, let polars build the plan, and
    /// resolve its schema (so unknown columns are reported before any data is read).
    ///
    /// # Errors
    /// [`QueryError::UnknownTable`] and [`QueryError::UnknownColumn`] with the closest names,
    /// [`QueryError::Table`] for a named table that cannot be read, [`QueryError::Invalid`]
    /// for anything else polars refuses.
    pub fn plan(&self, query: &PreparedQuery) -> Result<Planned, QueryError> {
        let mut context = SQLContext::new();
        for name in &query.tables {
            let Some(source) = self.tables.get(name) else {
                return Err(self.unknown_table(name));
            };
            let mut scan = source.scan()?;
            // Read the footers now so that an unreadable table is named in the error.
            scan.collect_schema().map_err(|err| QueryError::Table {
                table: name.clone(),
                path: source.path.clone(),
                source: err,
            })?;
            context.register(name, scan);
        }
        let mut frame = context
            .execute(&query.sql)
            .map_err(|err| self.explain(err, &query.tables))?;
        let schema = frame
            .collect_schema()
            .map_err(|err| self.explain(err, &query.tables))?;
        Ok(Planned { frame, schema })
    }

    fn unknown_table(&self, name: &str) -> QueryError {
        let names: Vec<&str> = self.names().collect();
        let mut hint = match closest(name, names.iter().copied()).as_slice() {
            [] => String::new(),
            [one] => format!("; did you mean `{one}`?"),
            several => format!(
                "; did you mean {}?",
                several
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        };
        if name.starts_with(COMPARE_PREFIX) && !self.compared {
            hint.push_str(&format!(
                " ({COMPARE_PREFIX} tables exist with --compare DIR, the run to compare with)"
            ));
        }
        hint.push_str(&format!(" (tables: {})", names_list(&names)));
        QueryError::UnknownTable {
            name: name.to_string(),
            hint,
        }
    }

    /// Turn a polars error into one an analyst can act on. polars reports unknown columns
    /// and relations in its message text only, so the names are read from there (the unit
    /// tests pin the wording of the polars version in use).
    fn explain(&self, err: PolarsError, tables: &[String]) -> QueryError {
        let message = err.to_string();
        if let Some(name) = quoted_after(&message, "unable to find column \"", '"')
            .or_else(|| quoted_after(&message, "no column named '", '\''))
        {
            return self.unknown_column(name, tables, &message);
        }
        if let Some(name) = quoted_after(&message, "relation '", '\'') {
            return self.unknown_table(name);
        }
        QueryError::Invalid {
            message: clean_message(&message),
        }
    }

    /// A column polars could not find: misspelt (the closest names), or a column of a table
    /// the query reads that is out of scope where it is used (after GROUP BY, or outside the
    /// CTE or subquery that dropped it), which a list of close names would only confuse.
    fn unknown_column(&self, name: &str, tables: &[String], message: &str) -> QueryError {
        let schemas: Vec<(&str, SchemaRef)> = tables
            .iter()
            .filter_map(|table| {
                let mut scan = self.tables.get(table)?.scan().ok()?;
                Some((table.as_str(), scan.collect_schema().ok()?))
            })
            .collect();
        let candidates: Vec<String> = schemas
            .iter()
            .flat_map(|(_, schema)| schema.iter_names().map(|n| n.to_string()))
            .collect();
        let suggestions = closest(name, candidates.iter().map(String::as_str));
        let owner = |column: &str| {
            schemas
                .iter()
                .filter(|(_, schema)| schema.contains(column))
                .map(|(table, _)| *table)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let owners = owner(name);
        if !owners.is_empty() {
            return QueryError::ColumnOutOfScope {
                name: name.to_string(),
                tables: owners,
                available: valid_columns(message).unwrap_or_else(|| "none".to_string()),
            };
        }
        let hint = if suggestions.is_empty() {
            schemas
                .iter()
                .map(|(table, schema)| {
                    let columns: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
                    format!("; columns of {table}: {}", names_list(&columns))
                })
                .collect::<String>()
        } else {
            format!(
                "; did you mean {}?",
                suggestions
                    .iter()
                    .map(|c| format!("`{c}` ({})", owner(c)))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        };
        QueryError::UnknownColumn {
            name: name.to_string(),
            hint,
        }
    }
}

/// The text between `prefix` and the next `end` in `message`.
fn quoted_after<'a>(message: &'a str, prefix: &str, end: char) -> Option<&'a str> {
    let start = message.find(prefix)? + prefix.len();
    let rest = &message[start..];
    rest.find(end).map(|stop| &rest[..stop])
}

/// The columns polars lists as valid where it failed (`valid columns: ["a", "b"]`), as
/// `a, b`.
fn valid_columns(message: &str) -> Option<String> {
    let list = quoted_after(message, "valid columns: [", ']')?;
    let names: Vec<&str> = list
        .split(", ")
        .map(|name| name.trim_matches('"'))
        .filter(|name| !name.is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// polars appends the plan it was resolving; an analyst needs the first paragraph.
pub(super) fn clean_message(message: &str) -> String {
    message
        .split("\n\nResolved plan until failure")
        .next()
        .unwrap_or(message)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::SavedQuery;
    use std::path::Path;

    fn write(path: &Path, mut df: DataFrame) {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
        let file = std::fs::File::create(path).expect("create");
        ParquetWriter::new(file)
            .finish(&mut df)
            .expect("write parquet");
    }

    fn run_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = dir.path().join("run-1");
        write(
            &run.join("footprint_weights.parquet"),
            df!("lsoa_code" => ["E01000001", "E01000002"], "weight" => [1.0, 0.5]).expect("frame"),
        );
        write(
            &run.join("segments/icb_code=QHM/part-0.parquet"),
            df!("segment" => ["a", "b"], "patients" => [10i64, 20]).expect("frame"),
        );
        std::fs::write(run.join("segments/_SUCCESS"), "").expect("marker");
        std::fs::write(run.join("rejects.parquet"), "not parquet").expect("corrupt table");
        std::fs::create_dir_all(run.join("charts")).expect("charts");
        std::fs::write(run.join("charts/gradient.svg"), "<svg/>").expect("chart");
        std::fs::write(run.join("manifest.json"), "{}").expect("manifest");
        std::fs::create_dir_all(dir.path().join(".tmp-run-2")).expect("in progress");
        dir
    }

    fn plan(catalog: &Catalog, sql: &str) -> Result<Planned, QueryError> {
        catalog.plan(&SavedQuery::inline(sql).prepare(&[])?)
    }

    #[test]
    fn hive_partitions_become_columns_and_stray_files_are_skipped() {
        let dir = run_folder();
        let mut catalog = Catalog::new();
        catalog
            .add_run(
                &RunFolder::open(&dir.path().join("run-1")).expect("opens"),
                "",
            )
            .expect("adds");
        let planned = plan(
            &catalog,
            "SELECT icb_code, sum(patients) AS n FROM segments GROUP BY 1",
        )
        .expect("plans");
        let df = planned.frame.collect().expect("runs");
        assert_eq!(df.height(), 1);
        assert_eq!(
            df.column("n")
                .expect("n")
                .get(0)
                .expect("row")
                .extract::<i64>(),
            Some(30)
        );
    }

    #[test]
    fn a_corrupt_table_elsewhere_does_not_matter_but_names_itself_when_used() {
        let dir = run_folder();
        let mut catalog = Catalog::new();
        catalog
            .add_run(
                &RunFolder::open(&dir.path().join("run-1")).expect("opens"),
                "",
            )
            .expect("adds");
        let planned = plan(&catalog, "SELECT weight FROM footprint_weights").expect("plans");
        assert_eq!(planned.frame.collect().expect("runs").height(), 2);
        let err = plan(&catalog, "SELECT * FROM rejects").expect_err("corrupt");
        assert!(err.to_string().starts_with("table `rejects`"), "{err}");
    }

    #[test]
    fn polars_wording_for_unknown_columns_is_recognised() {
        let dir = run_folder();
        let mut catalog = Catalog::new();
        catalog
            .add_run(
                &RunFolder::open(&dir.path().join("run-1")).expect("opens"),
                "",
            )
            .expect("adds");
        for sql in [
            "SELECT wieght FROM footprint_weights",
            "SELECT f.wieght FROM footprint_weights f",
            "SELECT lsoa_code FROM footprint_weights WHERE wieght > 0",
        ] {
            let err = plan(&catalog, sql).expect_err("unknown column");
            assert_eq!(
                err.to_string(),
                "unknown column `wieght`; did you mean `weight` (footprint_weights)?",
                "{sql}"
            );
        }
    }

    #[test]
    fn issue_8_a_column_out_of_scope_is_not_called_unknown() {
        // A saved query ordered grouped rows by `sum(population)`: polars cannot see
        // `population` after the GROUP BY and the message said "unknown column
        // `population`; did you mean `population`?".
        let dir = run_folder();
        let mut catalog = Catalog::new();
        catalog
            .add_run(
                &RunFolder::open(&dir.path().join("run-1")).expect("opens"),
                "",
            )
            .expect("adds");
        for sql in [
            "SELECT lsoa_code FROM footprint_weights GROUP BY lsoa_code ORDER BY sum(weight)",
            "WITH codes AS (SELECT lsoa_code FROM footprint_weights) SELECT weight FROM codes",
        ] {
            let err = plan(&catalog, sql).expect_err("out of scope");
            assert_eq!(
                err.to_string(),
                "column `weight` (footprint_weights) is not available where the query uses it \
                 (the columns there: lsoa_code): after GROUP BY only the grouped columns and \
                 aggregates are (select an aggregate under a name and use the name, e.g. in \
                 ORDER BY), and a CTE or subquery passes on only the columns it selects",
                "{sql}"
            );
        }
    }

    #[test]
    fn unknown_table_suggests_and_mentions_compare() {
        let dir = run_folder();
        let mut catalog = Catalog::new();
        catalog
            .add_run(
                &RunFolder::open(&dir.path().join("run-1")).expect("opens"),
                "",
            )
            .expect("adds");
        let err = plan(&catalog, "SELECT * FROM prev_segments").expect_err("unknown");
        let message = err.to_string();
        assert!(
            message.starts_with("unknown table `prev_segments`; did you mean `segments`?"),
            "{message}"
        );
        assert!(message.contains("--compare DIR"), "{message}");
    }
}
