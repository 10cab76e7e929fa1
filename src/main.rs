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

// mimalloc's option functions (the `mimalloc` crate binds them only with a feature that pulls
// in another crate). `mi_option_t` is a C enum.
unsafe extern "C" {
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (the test below checks it).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// How long mimalloc keeps freed memory before handing it back to the system: never.
///
/// Its default (a second, in mimalloc 3.3) is far shorter than a patient part (8–15 s): the
/// patient stages free and allocate gigabytes part after part, and the kernel zeroed the same
/// pages again each time. At England that was 134 s of system CPU; kept, 43 s, and the run
/// took 7 min 2 s instead of 8 min 10 s with a 10-second delay (benches/RESULTS.md, "Sixth
/// round"). The cost is the peak: the resident size stays near its high-water mark (England
/// 8.4 GiB against 6.3 GiB then; 5.7 GiB once ingest's duplicate check was slimmed; the
/// budget is 10 GiB). `MIMALLOC_PURGE_DELAY=1000` restores
/// mimalloc's default for a machine with less memory.
const PURGE_DELAY_MS: std::ffi::c_long = -1;

/// Set mimalloc's purge delay, unless `MIMALLOC_PURGE_DELAY` in the environment decides.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists (mimalloc's
        // option setters are not thread-safe).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The option number is mimalloc's purge delay: it reads 1000 (ms, the default in
    /// mimalloc 3.3's options.c, and no other option's), and the value set is read back.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: the test's only use of the options.
        let default = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
        let expected = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        assert_eq!(
            default, expected,
            "option {MI_OPTION_PURGE_DELAY} is not the purge delay"
        );
        keep_freed_memory();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: as above.
            assert_eq!(
                unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) },
                PURGE_DELAY_MS
            );
        }
    }
}
