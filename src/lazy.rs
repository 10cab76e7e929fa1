//! How the pipeline runs polars plans over patient-level data.

use std::sync::{Arc, Mutex, PoisonError};

use polars::prelude::{
    DataFrame, Engine, Expr, LazyFrame, NamedFrom, PlanCallback, PolarsResult, Scalar, Series, lit,
    polars_err, when,
};

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

/// Run a lazy plan with the streaming engine and fold each batch of its result, in order, into
/// `state` with `add`: a streamed pass that adds the patients up into something small (sums by
/// key), given back when the plan is done.
///
/// # Errors
/// Whatever the plan or `add` fails with (the first error stops the plan).
pub fn fold_batches<S: Send + 'static>(
    plan: LazyFrame,
    state: S,
    mut add: impl FnMut(&mut S, DataFrame) -> PolarsResult<()> + Send + 'static,
) -> PolarsResult<S> {
    let state = Arc::new(Mutex::new(state));
    let in_plan = Arc::clone(&state);
    for_each_batch(plan, move |batch| {
        add(
            &mut in_plan.lock().unwrap_or_else(PoisonError::into_inner),
            batch,
        )
    })?;
    // The plan, and the callback's share of the state with it, are gone by now.
    Arc::into_inner(state)
        .map(|state| state.into_inner().unwrap_or_else(PoisonError::into_inner))
        .ok_or_else(|| polars_err!(ComputeError: "internal: a folded plan's state still in use"))
}

/// The fixed-seed hasher for keys (duplicate checks at ingest, patient parts): the same text
/// hashes alike in every file and every run.
pub fn key_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x6865_616c_7468_6761)
}

/// The label of the first case whose condition holds, else `otherwise` (null when `None`); a
/// null condition does not hold. This is what a chain of `when(condition).then(lit(label))`
/// gives, but the chain picks a small integer and the text is gathered once: each step of a
/// chain over text builds a whole text column, so a segmentation of eight rules built eight a
/// patient (4M rows: ~1 s as a chain, ~0.1 s this way; benches/RESULTS.md).
pub fn first_label<'a>(
    cases: impl IntoIterator<Item = (Expr, &'a str)>,
    otherwise: Option<&'a str>,
) -> Expr {
    let (conditions, mut labels): (Vec<Expr>, Vec<Option<&str>>) = cases
        .into_iter()
        .map(|(condition, label)| (condition, Some(label)))
        .unzip();
    // Conditions that read no column (`TRUE`) give one index, not one a row: its label is then
    // a scalar, which polars spreads over the rows as it does a chain's.
    let per_row = conditions
        .iter()
        .any(|condition| !condition.clone().meta().root_names().is_empty());
    let index = first_case(conditions);
    labels.push(otherwise);
    let label = lit(Series::new("label".into(), labels)).gather(index, false);
    if per_row { label } else { label.first() }
}

/// The index (`UInt32`) of the first condition that holds, or the number of conditions when
/// none does (a null condition does not hold): what [`first_label`] gathers labels by, and
/// what the ingest checks record instead of a reason's text for every row.
pub fn first_case(conditions: impl IntoIterator<Item = Expr>) -> Expr {
    let conditions: Vec<Expr> = conditions.into_iter().collect();
    // Typed literals: `lit` of an integer is polars' "dynamic" integer, which makes the chain
    // `Int32`, and casting that to `UInt32` checked every value of every check (5% of ingest's
    // samples at 10M).
    let index_of = |i: usize| lit(Scalar::from(u32::try_from(i).unwrap_or(u32::MAX)));
    let none = index_of(conditions.len());
    conditions
        .into_iter()
        .enumerate()
        .rev()
        .fold(none, |rest, (i, condition)| {
            when(condition).then(index_of(i)).otherwise(rest)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{DataType, IntoLazy, NULL, col, df};

    /// The chain that [`first_label`] stands for.
    fn chain(cases: &[(Expr, &str)], otherwise: Option<&str>) -> Expr {
        let last = match otherwise {
            Some(label) => lit(label),
            None => lit(NULL).cast(DataType::String),
        };
        cases.iter().rev().fold(last, |rest, (condition, label)| {
            when(condition.clone()).then(lit(*label)).otherwise(rest)
        })
    }

    #[test]
    fn fold_batches_gives_back_the_state_of_every_batch_and_stops_at_an_error() {
        // Several chunks, so the plan hands over more than one batch.
        let mut frame = df!["x" => (1..=1000i64).collect::<Vec<_>>()].expect("frame");
        for start in [1001i64, 2001] {
            frame
                .vstack_mut(&df!["x" => (start..start + 1000).collect::<Vec<_>>()].expect("frame"))
                .expect("stacked");
        }
        let (sum, rows) = fold_batches(
            frame.clone().lazy(),
            (0i64, 0usize),
            |(sum, rows), batch| {
                *sum += batch.column("x")?.i64()?.into_no_null_iter().sum::<i64>();
                *rows += batch.height();
                Ok(())
            },
        )
        .expect("folded");
        assert_eq!((sum, rows), (3000 * 3001 / 2, 3000));
        let failed = fold_batches(frame.lazy(), 0usize, |_, batch| {
            batch.column("no such column").map(|_| ())
        });
        assert!(failed.is_err());
    }

    #[test]
    fn first_label_is_the_first_case_that_holds_as_a_chain_gives() {
        let frame = df![
            "x" => [Some(1i64), Some(5), Some(12), None, Some(30), Some(7)],
            "flag" => [Some(true), None, Some(false), Some(true), Some(false), Some(false)],
        ]
        .expect("frame");
        let cases = [
            (col("x").lt(lit(3i64)), "under three"),
            (col("flag"), "flagged, a label longer than twelve bytes"),
            (col("x").lt(lit(10i64)), "under ten"),
            (col("x").lt(lit(2i64)), "never reached"),
        ];
        for otherwise in [Some("rest"), None] {
            let got = frame
                .clone()
                .lazy()
                .with_columns([
                    first_label(cases.iter().cloned(), otherwise).alias("label"),
                    chain(&cases, otherwise).alias("chained"),
                ])
                .collect()
                .expect("labels");
            let labels: Vec<Option<&str>> = got["label"].str().expect("text").iter().collect();
            let rest = otherwise;
            assert_eq!(
                labels,
                [
                    Some("under three"),
                    Some("under ten"),
                    rest,
                    Some("flagged, a label longer than twelve bytes"),
                    rest,
                    Some("under ten"),
                ],
                "null x and a null flag do not hold"
            );
            assert_eq!(
                got["label"],
                got["chained"].clone().with_name("label".into())
            );
        }
    }

    #[test]
    fn first_case_is_a_uint32_index_chosen_without_a_cast_a_row() {
        let frame = df![
            "x" => [Some(1i64), Some(5), None, Some(30)],
        ]
        .expect("frame");
        let plan =
            frame.lazy().select([
                first_case([col("x").lt(lit(3i64)), col("x").lt(lit(10i64))]).alias("case"),
            ]);
        // A cast of every row's index would double the checks' cost at ingest.
        let explained = plan.explain(true).expect("plan");
        assert!(!explained.contains("cast"), "{explained}");
        let got = plan.collect().expect("cases");
        assert_eq!(got["case"].dtype(), &DataType::UInt32);
        let cases: Vec<Option<u32>> = got["case"].u32().expect("u32").iter().collect();
        assert_eq!(
            cases,
            [Some(0), Some(1), Some(2), Some(2)],
            "null does not hold"
        );
    }

    #[test]
    fn first_label_without_a_column_is_one_label_for_every_row() {
        let frame = df!["x" => [1i64, 2, 3]].expect("frame");
        let got = frame
            .lazy()
            .with_columns([
                first_label([(lit(false), "no"), (lit(true), "yes")], None).alias("label")
            ])
            .collect()
            .expect("labels");
        let labels: Vec<Option<&str>> = got["label"].str().expect("text").iter().collect();
        assert_eq!(labels, [Some("yes"); 3]);
    }
}
