//! How the pipeline runs polars plans over patient-level data.

use std::sync::{Arc, Mutex, PoisonError};

use polars::prelude::{DataFrame, Engine, LazyFrame, PlanCallback, PolarsResult};

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

/// Run a lazy plan with the streaming engine and hand each batch of its result, in order, to
/// `each`: for results too large to hold (a patient-level table written out, or split).
///
/// # Errors
/// Whatever the plan or `each` fails with (the first error stops the plan).
pub fn for_each_batch(
    plan: LazyFrame,
    each: impl FnMut(DataFrame) -> PolarsResult<()> + Send + 'static,
) -> PolarsResult<()> {
    let each = Arc::new(Mutex::new(each));
    let callback = PlanCallback::new(move |batch: DataFrame| {
        let mut each = each.lock().unwrap_or_else(PoisonError::into_inner);
        (*each)(batch).map(|()| false)
    });
    plan.sink_batches(callback, true, None)?
        .collect_with_engine(Engine::Streaming)?;
    Ok(())
}

/// The fixed-seed hasher for keys (duplicate checks at ingest, patient parts): the same text
/// hashes alike in every file and every run.
pub fn key_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x6865_616c_7468_6761)
}
