//! `healthgap validate`: read every input of a config and report what would be refused.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::error::EXIT_BAD_INPUT;
use crate::ingest::{IngestReport, InputKind, rejects_frame};
use crate::output::Printer;
use crate::pipeline::ingest::ingest;
use crate::pipeline::partition::PatientInputs;

/// Check every input named in a config without running the pipeline.
///
/// Reads each input, checks every value against its declared schema and prints, per input,
/// the rows read, accepted and rejected, with the reasons, and the period of the patient
/// outcomes a run would measure. Exit code 0 when every input passes, 2 when any input is
/// missing a required column, cannot be read, or has more rejects than
/// `validation.max_reject_rate` allows, or when `run.outcome_period` names a period the
/// outcomes lack.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  healthgap validate --config healthgap.toml\n  healthgap validate --config healthgap.toml --rejects rejects.csv\n  healthgap validate --config healthgap.toml --format json | jq '.inputs[].rows_rejected'"
)]
pub struct ValidateArgs {
    /// The run configuration (TOML) naming the inputs
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,

    /// Also write every rejected value (input, file, line, column, value, reason) to this file
    /// (.csv or .parquet)
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// Output format of the summary on stdout
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

/// How `validate` prints its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// A table for people.
    Text,
    /// One JSON document for scripts.
    Json,
}

/// Run `healthgap validate`.
pub fn run(args: ValidateArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let ingested = ingest(&config, printer, None);

    if let Some(path) = &args.rejects {
        let mut frames = Vec::new();
        for table in ingested
            .all_tables()
            .chain(ingested.failures.iter().filter_map(|f| f.table.as_ref()))
        {
            frames.push(table.rejects_frame()?);
        }
        for footprints in ingested.footprints.values() {
            frames.push(rejects_frame(
                &footprints.report.input,
                &footprints.rejects,
            )?);
        }
        crate::output::write_table(path, frames)
            .with_context(|| format!("writing rejects to {}", path.display()))?;
    }

    // The period a run would measure, as the run chooses it (a config error when the outcomes
    // lack the period named).
    let periods = match ingested.frame(InputKind::Outcomes) {
        Some(outcomes) => Some(
            PatientInputs::whole(vec![(InputKind::Outcomes, outcomes)])?
                .choose_outcome_period(config.run.outcome_period.as_deref()),
        ),
        None => None,
    };
    let passed = ingested.all_tables().count() + ingested.footprints.len();
    let failed = ingested.failures.len();
    let period_failed = matches!(periods, Some(Err(_)));
    match args.format {
        SummaryFormat::Json => {
            let inputs: Vec<serde_json::Value> = ingested
                .all_tables()
                .map(|t| summary_json(&t.report, None))
                .chain(
                    ingested
                        .footprints
                        .values()
                        .map(|f| summary_json(&f.report, None)),
                )
                .chain(ingested.failures.iter().map(|f| match &f.table {
                    Some(table) => summary_json(&table.report, Some(f.error.to_string())),
                    None => serde_json::json!({
                        "input": f.input, "file": f.file, "ok": false, "error": f.error.to_string()
                    }),
                }))
                .collect();
            printer.result(serde_json::to_string_pretty(&serde_json::json!({
                "config": config.path,
                "passed": passed,
                "failed": failed,
                "inputs": inputs,
                "outcome_periods": match &periods {
                    Some(Ok(periods)) => serde_json::to_value(periods)?,
                    Some(Err(error)) => serde_json::json!({"ok": false, "error": error}),
                    None => serde_json::Value::Null,
                },
            }))?)?;
        }
        SummaryFormat::Text => {
            printer.result(format!(
                "{:<22} {:>12} {:>12} {:>10}  {}",
                "input", "rows read", "accepted", "rejected", "file"
            ))?;
            for report in ingested
                .all_tables()
                .map(|t| &t.report)
                .chain(ingested.footprints.values().map(|f| &f.report))
            {
                print_report(printer, report, None)?;
            }
            for failure in &ingested.failures {
                match &failure.table {
                    Some(table) => {
                        print_report(printer, &table.report, Some(&failure.error.to_string()))?
                    }
                    None => {
                        printer.result(format!(
                            "{:<22} FAILED  {}",
                            failure.input,
                            failure.file.display()
                        ))?;
                        printer.result(format!("    {}", failure.error))?;
                    }
                }
            }
            match &periods {
                Some(Ok(periods)) => {
                    printer.result(format!(
                        "patient outcomes: period {} measured",
                        periods.used.as_deref().unwrap_or("(none recorded)")
                    ))?;
                    if let Some(warning) = periods.warning() {
                        printer.result(format!("    warning: {warning}"))?;
                    }
                }
                Some(Err(error)) => printer.result(format!("patient outcomes: FAILED  {error}"))?,
                None => {}
            }
            printer.result(if failed == 0 && period_failed {
                format!("all {passed} inputs pass, but run.outcome_period does not (above)")
            } else if failed == 0 {
                format!("all {passed} inputs pass")
            } else {
                format!("{failed} of {} inputs fail", passed + failed)
            })?;
        }
    }
    Ok(if failed == 0 && !period_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

fn print_report(
    printer: &Printer,
    report: &IngestReport,
    failure: Option<&str>,
) -> anyhow::Result<()> {
    printer.result(format!(
        "{:<22} {:>12} {:>12} {:>10}  {}",
        report.input,
        report.rows_read,
        report.rows_accepted,
        report.rows_rejected,
        report.file.display()
    ))?;
    for reason in report.reasons.iter().take(10) {
        printer.result(format!(
            "    {:>8} × {}: {}",
            reason.count, reason.column, reason.reason
        ))?;
    }
    if report.reasons.len() > 10 {
        printer.result(format!(
            "    … and {} more reasons (see --rejects)",
            report.reasons.len() - 10
        ))?;
    }
    for warning in &report.warnings {
        printer.result(format!("    warning: {warning}"))?;
    }
    if let Some(failure) = failure {
        printer.result(format!("    FAILED: {failure}"))?;
    }
    Ok(())
}

fn summary_json(report: &IngestReport, error: Option<String>) -> serde_json::Value {
    serde_json::json!({
        "input": report.input,
        "file": report.file,
        "ok": error.is_none(),
        "rows_read": report.rows_read,
        "rows_accepted": report.rows_accepted,
        "rows_rejected": report.rows_rejected,
        "reasons": report.reasons,
        "warnings": report.warnings,
        "error": error,
    })
}
