//! `healthgap query`: read-only SQL over a run's tables, printed or written.
//!
//! Thin: flags become the query's settings, and the work is in [`crate::query`].

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::error::UserError;
use crate::output::{Printer, TableFormat, TableWriter};
use crate::query::display::{thousands, type_name};
use crate::query::{
    COMPARE_PREFIX, Catalog, DEFAULT_RUN, Parameter, Planned, QueryError, RunFolder, SavedQuery,
    TableView, ViewOptions, stream,
};

/// Ask a run's tables a question in SQL (read-only).
///
/// Every table of the run folder — `<table>.parquet` files and `<table>/` folders of
/// (hive-partitioned) Parquet files — is a SQL table of the same name, read lazily: a query
/// reads only the tables and columns it names. With `--compare DIR` the other run's tables are
/// there too as `prev_<table>`, for year-on-year questions in one query.
///
/// The query is SQL text, a file ending in `.sql`, or a saved query (`--name NAME` runs
/// `queries/NAME.sql`). Saved queries take parameters as `:name` placeholders, given with
/// `--param name=VALUE` (a plain decimal is bound as a number, anything else as a string).
/// Only queries run: `SELECT`, `WITH … SELECT` and `EXPLAIN`; anything that would write or
/// delete is refused before it runs.
///
/// The result prints as a table (names, types, first and last rows, row count), or is written
/// as CSV, JSON, NDJSON or Parquet: to stdout with `--format`, to a file with `--out` (the
/// extension picks the format).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  healthgap query --tables
  healthgap query \"SELECT footprint_kind, count(*) AS n FROM footprint_weights GROUP BY 1\"
  healthgap query queries/rejects_by_reason.sql --param input=patients
  healthgap query --name rejects_by_reason -p input=patients --out rejects.csv
  healthgap query --run out/2025-06-01 --compare out/2024-06-01 \\
    \"SELECT indicator, footprint_code, i.sii, p.sii AS sii_last_year
     FROM inequality i JOIN prev_inequality p USING (indicator, footprint_code)\"
  healthgap query \"SELECT * FROM segments\" --format csv | head")]
pub struct QueryArgs {
    /// SQL text, or a file whose name ends in .sql
    #[arg(
        value_name = "SQL|FILE.sql",
        required_unless_present_any = ["name", "tables", "list"],
        conflicts_with = "name"
    )]
    pub query: Option<String>,

    /// Run the saved query NAME (the file NAME.sql in --queries-dir)
    #[arg(long, short = 'n', value_name = "NAME")]
    pub name: Option<String>,

    /// The run folder: a folder of tables, or an output root whose `latest` is used
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN)]
    pub run: PathBuf,

    /// A second run folder whose tables are named prev_<table> (e.g. last year's run)
    #[arg(long, value_name = "DIR")]
    pub compare: Option<PathBuf>,

    /// A value for the query's placeholder :KEY (repeat for each parameter)
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,

    /// Output format [default: table on stdout; with --out, the file's extension]
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<OutputFormat>,

    /// Write the result to FILE (.csv, .json, .ndjson, .parquet) instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// List the run's tables (and with --compare the prev_ ones) with columns and types
    #[arg(long, conflicts_with_all = ["query", "name", "params", "explain", "list"])]
    pub tables: bool,

    /// List the saved queries in --queries-dir with what they answer and their parameters
    #[arg(long, conflicts_with_all = ["query", "name", "params", "explain"])]
    pub list: bool,

    /// The folder of saved queries, for --name and --list (relative to the current folder)
    #[arg(long, value_name = "DIR", default_value = "queries")]
    pub queries_dir: PathBuf,

    /// Rows a table shows at most: the first and the last half of a longer result (0: all)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_rows: usize,

    /// Print the optimised plan (tables and columns read, filters pushed into the scans)
    /// instead of running the query
    #[arg(long)]
    pub explain: bool,
}

/// How the result is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people (the default on stdout).
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of row objects.
    Json,
    /// One JSON object a line.
    Ndjson,
    /// Parquet (zstd); to a file or a redirected stdout.
    Parquet,
}

impl OutputFormat {
    /// The file format, or `None` for the table for people.
    fn file_format(self) -> Option<TableFormat> {
        match self {
            OutputFormat::Table => None,
            OutputFormat::Csv => Some(TableFormat::Csv),
            OutputFormat::Json => Some(TableFormat::Json),
            OutputFormat::Ndjson => Some(TableFormat::Ndjson),
            OutputFormat::Parquet => Some(TableFormat::Parquet),
        }
    }
}

/// Where the query comes from.
#[derive(Debug)]
enum Source {
    Text(String),
    File(PathBuf),
    Saved { dir: PathBuf, name: String },
}

/// The flags, checked and typed.
#[derive(Debug)]
struct Settings {
    source: Option<Source>,
    parameters: Vec<Parameter>,
    format: OutputFormat,
    out: Option<PathBuf>,
}

impl Settings {
    fn from_args(args: &QueryArgs) -> anyhow::Result<Settings> {
        let source = match (&args.query, &args.name) {
            (Some(query), _) if query.trim_end().ends_with(".sql") => {
                Some(Source::File(PathBuf::from(query.trim_end())))
            }
            (Some(query), _) => Some(Source::Text(query.clone())),
            (None, Some(name)) => Some(Source::Saved {
                dir: args.queries_dir.clone(),
                name: name.clone(),
            }),
            (None, None) => None,
        };
        let parameters = args
            .params
            .iter()
            .map(|p| p.parse::<Parameter>())
            .collect::<Result<Vec<_>, _>>()?;
        let format = match (args.format, &args.out) {
            (Some(format), _) => format,
            (None, Some(out)) => match TableFormat::from_path(out)? {
                TableFormat::Csv => OutputFormat::Csv,
                TableFormat::Json => OutputFormat::Json,
                TableFormat::Ndjson => OutputFormat::Ndjson,
                TableFormat::Parquet => OutputFormat::Parquet,
            },
            (None, None) => OutputFormat::Table,
        };
        if format == OutputFormat::Parquet && args.out.is_none() && std::io::stdout().is_terminal()
        {
            anyhow::bail!(UserError(
                "Parquet is binary: write it with --out FILE.parquet or redirect stdout".into()
            ));
        }
        Ok(Settings {
            source,
            parameters,
            format,
            out: args.out.clone(),
        })
    }
}

/// Run `healthgap query`.
pub fn run(args: QueryArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_args(&args)?;
    if args.list {
        return list_saved_queries(&args.queries_dir, printer);
    }

    let run = RunFolder::open(&args.run)?;
    let mut catalog = Catalog::new();
    catalog.add_run(&run, "")?;
    let mut caption = format!("run {}", run.id());
    if let Some(dir) = &args.compare {
        let previous = RunFolder::open(dir)?;
        if previous.is_same(&run) {
            printer.warn(format!(
                "--compare names the same run as --run ({}): prev_ tables equal the others",
                run.id()
            ));
        }
        catalog.add_run(&previous, COMPARE_PREFIX)?;
        caption.push_str(&format!(", compared with {}", previous.id()));
    }

    if args.tables {
        return list_tables(&catalog, &run, &settings, printer);
    }

    let query = match &settings.source {
        Some(Source::Text(text)) => SavedQuery::inline(text),
        Some(Source::File(path)) => SavedQuery::load(path)?,
        Some(Source::Saved { dir, name }) => SavedQuery::find(dir, name)?,
        None => anyhow::bail!(UserError(
            "no query: give SQL, a .sql file, --name NAME, --tables or --list".into()
        )),
    };
    let prepared = query.prepare(&settings.parameters)?;
    let planned = catalog.plan(&prepared)?;

    if args.explain {
        let plan = planned
            .frame
            .explain(true)
            .map_err(|err| QueryError::Invalid {
                message: err.to_string(),
            })?;
        printer.result(plan)?;
        return Ok(ExitCode::SUCCESS);
    }

    let target = settings.out.as_deref();
    let rows = match target {
        None => write_result(planned, &settings, &args, caption, None)?,
        // A device or pipe (`--out /dev/null`) is written as is: renaming over it would
        // replace it.
        Some(path) if path.exists() && !path.is_file() => {
            write_result(planned, &settings, &args, caption, Some(path))?
        }
        Some(path) => {
            // Written beside the target and renamed when complete, so a failed query never
            // leaves a partial file under the name asked for.
            let partial = partial_path(path);
            match write_result(planned, &settings, &args, caption, Some(&partial)) {
                Ok(rows) => {
                    std::fs::rename(&partial, path).with_context(|| {
                        format!("renaming {} to {}", partial.display(), path.display())
                    })?;
                    rows
                }
                Err(err) => {
                    // The partial file may not exist yet; the query's error is what matters.
                    let _ = std::fs::remove_file(&partial);
                    return Err(err);
                }
            }
        }
    };
    if let Some(path) = target {
        printer.note(format!(
            "wrote {} {} to {}",
            thousands(rows),
            if rows == 1 { "row" } else { "rows" },
            path.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Run the planned query into the output and return the rows written.
fn write_result(
    planned: Planned,
    settings: &Settings,
    args: &QueryArgs,
    caption: String,
    file: Option<&Path>,
) -> anyhow::Result<u64> {
    match settings.format.file_format() {
        None => {
            let view = stream(planned.frame, TableView::new(planned.schema, args.max_rows))?;
            let options = ViewOptions {
                max_rows: args.max_rows,
                terminal_width: terminal_width(file),
                caption: Some(caption),
                ..ViewOptions::default()
            };
            let mut out = open_output(file)?;
            view.render(&mut out, &options)
                .and_then(|()| out.flush())
                .map_err(|source| QueryError::Output { source })?;
            Ok(view.rows())
        }
        Some(format) => {
            let writer = TableWriter::new(open_output(file)?, format, &planned.schema)
                .context("preparing the output")?;
            Ok(stream(planned.frame, writer)?.rows())
        }
    }
}

/// `dir/.name.partial` for `dir/name`.
fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

/// stdout (buffered), or a file.
fn open_output(file: Option<&Path>) -> anyhow::Result<Box<dyn Write + Send>> {
    Ok(match file {
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|err| UserError(format!("cannot create {}: {err}", path.display())))?;
            Box::new(std::io::BufWriter::new(file))
        }
    })
}

/// The terminal's width when the table goes to a terminal, so wide tables are fitted to it.
fn terminal_width(target: Option<&Path>) -> Option<usize> {
    if target.is_some() || !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size().map(|(width, _)| usize::from(width.0))
}

/// `--tables`: a listing for people, or a (table, column, type) table for programs.
fn list_tables(
    catalog: &Catalog,
    run: &RunFolder,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    use polars::prelude::*;

    let descriptions = catalog.describe();
    if let Some(format) = settings.format.file_format() {
        for description in &descriptions {
            if let Err(err) = &description.schema {
                printer.warn(format!("left out: {}", chain(err)));
            }
        }
        let (mut tables, mut columns, mut types, mut rows) = (vec![], vec![], vec![], vec![]);
        for description in &descriptions {
            let Ok(schema) = &description.schema else {
                continue;
            };
            for (name, dtype) in schema.iter() {
                tables.push(description.source.name.clone());
                columns.push(name.to_string());
                types.push(type_name(dtype));
                rows.push(description.rows.as_ref().ok().copied());
            }
        }
        let mut frame = df!(
            "table" => tables, "column" => columns, "type" => types, "rows" => rows,
        )?;
        let mut writer = TableWriter::new(
            open_output(settings.out.as_deref())?,
            format,
            frame.schema(),
        )?;
        writer.write_batch(&mut frame)?;
        writer.finish()?;
        return Ok(ExitCode::SUCCESS);
    }

    let mut out = open_output(settings.out.as_deref())?;
    writeln!(out, "run {} ({})", run.id(), run.path().display())?;
    for description in &descriptions {
        let source = description.source;
        let location = if source.partitioned {
            format!(
                "{}/ ({} files)",
                source.path.display(),
                thousands(description.files as u64)
            )
        } else {
            source.path.display().to_string()
        };
        let rows = match &description.rows {
            Ok(rows) => format!("{} rows", thousands(*rows)),
            Err(_) => "unreadable".to_string(),
        };
        writeln!(out, "\n{}  · {rows} · {location}", source.name)?;
        match &description.schema {
            Ok(schema) => {
                let width = schema.iter_names().map(|n| n.len()).max().unwrap_or(0);
                for (name, dtype) in schema.iter() {
                    writeln!(out, "  {:<width$}  {}", name.as_str(), type_name(dtype))?;
                }
            }
            Err(err) => writeln!(out, "  unreadable: {}", chain(err))?,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// An error and its causes on one line, as `main` prints them.
fn chain(err: &QueryError) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// `--list`: the saved queries with their titles and parameters.
fn list_saved_queries(dir: &Path, printer: &Printer) -> anyhow::Result<ExitCode> {
    let queries = SavedQuery::list(dir)
        .with_context(|| format!("listing saved queries (--queries-dir {})", dir.display()))?;
    if queries.is_empty() {
        printer.result(format!("no saved queries in {}", dir.display()))?;
    }
    for query in queries {
        printer.result(format!(
            "{}  {}",
            query.name.as_deref().unwrap_or("?"),
            query.header.title
        ))?;
        for parameter in &query.header.parameters {
            printer.result(format!(
                "    :{}  {}",
                parameter.name, parameter.description
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
