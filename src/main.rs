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
    // Linux's process controls (from the C library).
    #[cfg(target_os = "linux")]
    fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
}

/// `PR_SET_THP_DISABLE` in linux/prctl.h.
#[cfg(target_os = "linux")]
const PR_SET_THP_DISABLE: std::ffi::c_int = 41;

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

/// `mi_option_allow_thp` in mimalloc 3's `mi_option_t` (the test below checks it).
const MI_OPTION_ALLOW_THP: std::ffi::c_int = 43;

/// Whether mimalloc asks for transparent huge pages: no.
///
/// With them, the kernel zeroed 2 MiB pages for a sixth of the patient stages' CPU, though
/// mimalloc never handed memory back (its statistics: no purges). At 10M, without them,
/// system CPU fell from 17.1 to 4.2 s and the run from 72.6 to 64.4 s; at England the run
/// took the same time within its noise, with less system CPU (benches/RESULTS.md,
/// thirteenth round). On a later host they cost 10M 5–7 s and saved England 4–6 s
/// (twenty-ninth round): a default should not depend on the list's size, so they stay off.
/// `MIMALLOC_ALLOW_THP=1` asks for them again.
///
/// mimalloc reads the option when it starts, before `main`, and then turns huge pages off
/// for the process (`PR_SET_THP_DISABLE`); set later, the option alone changes nothing for
/// the memory it has already mapped, so [`tune_allocator`] does the same.
const ALLOW_THP: std::ffi::c_long = 0;

/// Set mimalloc's purge delay and turn huge pages off, unless the environment decides
/// (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ALLOW_THP`).
fn tune_allocator() {
    // SAFETY (both setters): called first thing in `main`, before any other thread exists
    // (mimalloc's option setters are not thread-safe).
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        unsafe { mi_option_set(MI_OPTION_ALLOW_THP, ALLOW_THP) };
        // What mimalloc does at its start when the option is already 0.
        #[cfg(target_os = "linux")]
        {
            // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments and changes only
            // the kernel's page policy for this process; a failure (an old kernel) is harmless.
            let (on, unused): (std::ffi::c_ulong, std::ffi::c_ulong) = (1, 0);
            let _ = unsafe { prctl(PR_SET_THP_DISABLE, on, unused, unused, unused) };
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
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

    /// The option numbers are mimalloc's purge delay and huge-page switch, and the values set
    /// are read back. The purge delay reads 1000 (ms, its default in mimalloc 3.3's options.c
    /// and no other option's). `allow_thp` (default 1) sits between two options with defaults
    /// no other has: 32 pages (`page_cross_thread_max_reclaim`) and 2 GiB in KiB
    /// (`arena_max_object_size`); the enum has no gaps.
    #[test]
    fn the_options_set_are_the_purge_delay_and_huge_pages() {
        let get = |option| {
            // SAFETY: the options are read and set only by this test in this process.
            unsafe { mi_option_get(option) }
        };
        let default_of = |variable: &str, default| {
            std::env::var(variable)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        assert_eq!(
            get(MI_OPTION_PURGE_DELAY),
            default_of("MIMALLOC_PURGE_DELAY", 1000),
            "option {MI_OPTION_PURGE_DELAY} is not the purge delay"
        );
        assert_eq!(
            (
                get(MI_OPTION_ALLOW_THP - 1),
                get(MI_OPTION_ALLOW_THP),
                get(MI_OPTION_ALLOW_THP + 2)
            ),
            (32, default_of("MIMALLOC_ALLOW_THP", 1), 2 * 1024 * 1024),
            "option {MI_OPTION_ALLOW_THP} is not allow_thp"
        );
        tune_allocator();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(MI_OPTION_PURGE_DELAY), PURGE_DELAY_MS);
        }
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            assert_eq!(get(MI_OPTION_ALLOW_THP), ALLOW_THP);
        }
    }
}
