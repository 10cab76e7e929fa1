//! The command line: global flags, the subcommand enum, dispatch.
//!
//! Each subcommand lives in its own file with a clap `Args` struct (its doc comments are the
//! `--help`) and a `run(args, &Printer) -> anyhow::Result<ExitCode>` function. Code below `cli/`
//! never sees raw flag strings.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::{LogFormat, Printer};

pub mod synth;
pub mod validate;

/// healthgap: where health inequalities are in a PCN's population, and whether they are closing.
///
/// Joins registered-list extracts with deprivation indices and outcome data, attributes patients
/// to network footprints (practice, PCN, ICB), and writes risk-stratified population segments,
/// indicators and inequality gradients (SII/RII) as Parquet, charts and an evidence pack.
#[derive(Debug, Parser)]
#[command(
    name = "healthgap",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Print only results and warnings: no notes, no progress bars (for scripts and schedulers)
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Format of log lines on stderr: `text` for people, `json` for schedulers and log shippers
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every input named in a config and report rejects, without running the pipeline
    Validate(validate::ValidateArgs),
    /// Generate a synthetic registered list, conditions and outcomes with planted gradients
    Synth(synth::SynthArgs),
}

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let printer = Printer::new(cli.quiet, cli.log_format);
    match cli.command {
        Command::Validate(args) => validate::run(args, &printer),
        Command::Synth(args) => synth::run(args, &printer),
    }
}
