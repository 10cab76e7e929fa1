//! The `healthgap` binary: parse, dispatch, print the error chain, map it to an exit code.

use std::process::ExitCode;

use clap::Parser;
use healthgap::cli::{Cli, run};
use healthgap::error::exit_status_for;
use healthgap::output::Printer;

// polars allocates and frees large buffers from many threads; mimalloc is faster at that and
// returns memory sooner than glibc malloc (benches/RESULTS.md, "National scale").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.quiet, cli.log_format());
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if healthgap::error::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let status = exit_status_for(&err);
            printer.error(&format!("{err:#}"), status);
            ExitCode::from(status)
        }
    }
}
