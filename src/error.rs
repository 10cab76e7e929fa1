//! Error kinds shared across stages and their mapping to exit codes.
//!
//! A scheduler acts on the exit code: 0 success, 2 bad input or configuration (a human must fix
//! a file), 1 internal failure (a bug or an environment fault worth retrying).
//! Library modules keep their own `thiserror` enums; this module only classifies them.

use std::process::ExitCode;

/// Exit code for a run that succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code for an internal failure: a bug, or the environment (disk, permissions) failed.
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code for bad input or configuration: a person must fix a file or a flag.
pub const EXIT_BAD_INPUT: u8 = 2;

/// An error caused by the user's input or configuration (exit code 2), as opposed to an
/// internal failure (exit code 1). Wrap any message in it to classify it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Whether the error chain contains an error that a user must fix (input, config, usage).
pub fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<UserError>()
            || cause.is::<crate::ingest::InputError>()
            || cause.is::<crate::config::ConfigError>()
            || cause.is::<crate::pipeline::drift::DriftError>()
            || cause
                .downcast_ref::<crate::synth::SynthError>()
                .is_some_and(|e| e.is_user_error())
            || cause
                .downcast_ref::<crate::pipeline::publish::PublishError>()
                .is_some_and(|e| e.is_user_facing())
            || cause.is::<crate::stats::StatsError>()
            || cause
                .downcast_ref::<crate::query::QueryError>()
                .is_some_and(crate::query::QueryError::is_user_error)
    })
}

/// Whether the error is a broken pipe (e.g. `healthgap query ... | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit status a scheduler should see for this error.
pub fn exit_status_for(err: &anyhow::Error) -> u8 {
    if is_user_error(err) {
        EXIT_BAD_INPUT
    } else {
        EXIT_INTERNAL
    }
}

/// The exit code a scheduler should see for this error.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(exit_status_for(err))
}
