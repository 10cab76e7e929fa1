//! How the pipeline runs polars plans over patient-level data.

use polars::prelude::{DataFrame, Engine, LazyFrame, PolarsResult};

/// Run a lazy plan with polars' streaming engine: batches flow through the plan, so the
/// patient-level intermediates (raw text, parsed values, check reasons, joined columns) are
/// never all in memory at once. For plans over patient-level inputs whose result is small.
///
/// # Errors
/// Whatever the plan fails with.
pub fn collect_streaming(plan: LazyFrame) -> PolarsResult<DataFrame> {
    plan.collect_with_engine(Engine::Streaming)
        .map(|result| result.unwrap_single())
}
