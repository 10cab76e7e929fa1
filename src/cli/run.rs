//! `healthgap run`: the nightly job.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::error::UserError;
use crate::output::{LogFormat, Printer};
use crate::pipeline::{self, AbortPoint, RunSettings};

/// Run the pipeline on the inputs of a config and publish a run folder.
///
/// Reads and checks every input, joins deprivation by LSOA, attributes every patient to their
/// practice's PCN (as at the extract date) and ICB, derives LSOA footprints, and writes the
/// tables (`patients_enriched`, `footprint_weights`, `area_deprivation`, `rejects`) with a
/// `manifest.json` into `ROOT/<run_id>/`. The folder is written under a temporary name and
/// renamed when complete; `ROOT/latest` then points at it. A failed or interrupted run leaves
/// the previous run and `latest` untouched. A lock stops two runs on one root at once. A run
/// whose inputs' row counts or reject rates moved beyond the `[drift]` bounds since the previous
/// run stops before writing anything (a truncated extract), unless `--accept-drift` is given.
///
/// Exit codes: 0 success; 2 bad input or configuration, input drift, or the root is locked,
/// unwritable or full (a person must act); 1 internal failure.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  healthgap run --config healthgap.toml\n  healthgap run --config healthgap.toml --out /data/healthgap --run-id 2026-11-21\n  healthgap --quiet --log-format json run --config /etc/healthgap.toml   # cron / systemd"
)]
pub struct RunArgs {
    /// The run configuration (TOML)
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,

    /// Output root (default: `run.output_root` from the config)
    #[arg(long, value_name = "ROOT")]
    pub out: Option<PathBuf>,

    /// Run id, the run folder's name (default: the UTC time, e.g. 20261121T023000Z)
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// Publish even if input row counts or reject rates changed beyond the [drift] bounds since
    /// the previous run (check the change is expected first: a new extract, a boundary change)
    #[arg(long)]
    pub accept_drift: bool,

    /// Stop abruptly at a point of publishing (for tests of atomic publishing)
    #[arg(long, hide = true, value_enum)]
    pub abort_at: Option<AbortPoint>,
}

/// Run `healthgap run`.
pub fn run(args: RunArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let run_id = args.run_id.unwrap_or_else(pipeline::default_run_id);
    if !pipeline::valid_run_id(&run_id) {
        return Err(UserError(format!(
            "--run-id {run_id:?}: use letters, digits, '-', '_' or '.', not starting with '.' and not 'latest'"
        ))
        .into());
    }
    let settings = RunSettings {
        output_root: args.out.unwrap_or_else(|| config.run.output_root.clone()),
        run_id,
        abort_at: args.abort_at,
        accept_drift: args.accept_drift,
    };
    let summary = pipeline::run(&config, &settings, printer)?;
    match printer.log_format() {
        LogFormat::Json => printer.event(
            "info",
            "run complete",
            serde_json::to_value(&summary).unwrap_or_default(),
        ),
        LogFormat::Text => {
            // A practice-level run has no registered list: saying "0 registered people"
            // there would read as an empty list.
            let population = match summary.population_shape {
                Some(_) => format!("{} registered people", summary.population),
                None => "practice-level (no registered list)".to_string(),
            };
            printer.note(format!(
                "run {} complete: {population}, {} input rows refused, {} warnings",
                summary.run_id,
                summary.rejected_rows,
                summary.warnings.len()
            ));
        }
    }
    printer.result(summary.run_dir.display().to_string())?;
    Ok(ExitCode::SUCCESS)
}
