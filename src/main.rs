//! The `healthgap` binary: parse, dispatch, print the error chain, map it to an exit code.

use std::process::ExitCode;

use clap::Parser;
use healthgap::cli::{Cli, run};
use healthgap::error::exit_code_for;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if healthgap::error::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            exit_code_for(&err)
        }
    }
}
