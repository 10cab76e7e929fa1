//! Pure statistics: no polars, no I/O, no printing.

/// An error from a statistical method: the reference method's condition in plain words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct StatsError(pub String);
