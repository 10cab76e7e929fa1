//! Reading inputs.

/// An input that cannot be used as given.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);
