//! The command line: global flags, the subcommand enum, dispatch.
//!
//! Each subcommand lives in its own file with a clap `Args` struct (its doc comments are the
//! `--help`) and a `run(args, &Printer) -> anyhow::Result<ExitCode>` function. Code below `cli/`
//! never sees raw flag strings.

// The `Args` doc comments are `--help` text, written for a terminal: `[drift]` names a config
// table and `<PCN>` a placeholder, not a rustdoc link or an HTML tag.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::{LogFormat, Printer};

pub mod demo;
pub mod query;
pub mod report;
pub mod run;
pub mod stats;
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

    /// Log lines as JSON: the same as `--log-format json`
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The format of log lines (`--json` wins over `--log-format`).
    pub fn log_format(&self) -> LogFormat {
        if self.json {
            LogFormat::Json
        } else {
            self.log_format
        }
    }
}

/// The subcommands. Their help text is the doc comment of each `Args` struct (first line:
/// the summary in this list; the rest: `--help`), so variants carry no doc comment of their own.
#[derive(Debug, Subcommand)]
#[allow(missing_docs)]
pub enum Command {
    Demo(demo::DemoArgs),
    Run(run::RunArgs),
    Stats(Box<stats::StatsArgs>),
    Validate(validate::ValidateArgs),
    Query(query::QueryArgs),
    Report(report::ReportArgs),
    Synth(synth::SynthArgs),
}

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let printer = Printer::new(cli.quiet, cli.log_format());
    match cli.command {
        Command::Demo(args) => demo::run(args, &printer),
        Command::Run(args) => run::run(args, &printer),
        Command::Stats(args) => stats::run(*args, &printer),
        Command::Validate(args) => validate::run(args, &printer),
        Command::Query(args) => query::run(args, &printer),
        Command::Report(args) => report::run(args, &printer),
        Command::Synth(args) => synth::run(args, &printer),
    }
}
