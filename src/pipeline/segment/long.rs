//! The long patient inputs (`conditions`, `outcomes`) turned wide: one column per code, in the
//! row order of a list of patients.
//!
//! Why not polars' pivot (`group_by` on `patient_id`, then a join back to the patients): as
//! expressions, a pivot makes a column per code for every long row (47 comparisons per
//! condition row, one per outcome code per outcome row), reduces each, and hashes every id twice
//! (once to group, once to join); at England scale that is most of the enrich stage. Here each
//! long row's patient is found once in an index of the list's ids, and its value goes straight
//! into its code's slot. Memory holds the index, one slot per patient × code, and one batch.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use polars::prelude::*;
use polars_arrow::array::BooleanArray;
use polars_arrow::array::PrimitiveArray;
use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use polars_arrow::datatypes::ArrowDataType;
use rayon::prelude::*;

use crate::conditions::CONDITIONS;
use crate::pipeline::key_codes;
use crate::pipeline::lookup::KeyIndex;
use crate::schema;

/// Prefix of the column holding a condition from the long table (`__cond_<code>`).
pub const CONDITION_PREFIX: &str = "__cond_";
/// Column of a coded condition row: its code's bit in the vocabulary (`UInt8`, bit `i` is
/// `CONDITIONS[i]`; null for a code outside it). See [`coded_conditions`].
pub const CONDITION_BIT: &str = "__condition_bit";
/// Column of a coded outcome row: its code's slot in the run's outcome codes (`UInt32`; null
/// for another code). See [`coded_outcomes`].
pub const OUTCOME_SLOT: &str = "__outcome_slot";
/// Column of a coded outcome row's period: its place among the periods its file's rows were
/// coded with (`UInt32`; null for a row without one). See [`coded_outcome_rows`].
pub const OUTCOME_PERIOD: &str = "__outcome_period";
/// Prefix of the column holding an outcome from the long table (`__outcome_<code>`).
pub const OUTCOME_PREFIX: &str = "__outcome_";

/// Long rows whose patient is not on the list they are read against: not on the registered
/// list, or on a row ingest refused. They add to no patient, so they are counted (over every
/// part, as the parts are read; of the outcomes, the rows of the run's period) for the run's
/// manifest and a warning: not rejects, as their file and line are no longer known here, but
/// not dropped without a word either.
#[derive(Debug, Default, serde::Serialize)]
pub struct UnlistedRows {
    conditions: AtomicU64,
    outcomes: AtomicU64,
}

impl UnlistedRows {
    /// Condition rows counted.
    pub fn conditions(&self) -> u64 {
        self.conditions.load(Ordering::Relaxed)
    }

    /// Outcome rows counted.
    pub fn outcomes(&self) -> u64 {
        self.outcomes.load(Ordering::Relaxed)
    }

    /// The warning for the run, when any row was counted.
    pub fn warning(&self) -> Option<String> {
        let counted: Vec<String> = [
            ("condition", self.conditions()),
            ("outcome", self.outcomes()),
        ]
        .into_iter()
        .filter(|(_, rows)| *rows > 0)
        .map(|(input, rows)| format!("{rows} {input} row{}", if rows == 1 { "" } else { "s" }))
        .collect();
        (!counted.is_empty()).then(|| {
            format!(
                "rows of patients not on the accepted registered list (not in the patients file, or on a row ingest refused) count for nobody: {}",
                counted.join(", ")
            )
        })
    }
}

// A patient's conditions are one bit each of a `u64`.
const _: () = assert!(CONDITIONS.len() <= 64);

/// The conditions input of [`with_long_inputs`]: the long table, or the masks a first pass
/// over the same list already found ([`ConditionMasks::of`]), so a part's conditions are read
/// once when the tier counts need them before the part is enriched.
pub enum Conditions<'a> {
    /// The long table (`patient_id`, `condition`).
    Rows(Box<LazyFrame>),
    /// Masks found for the same patients, in the same order.
    Masks(&'a ConditionMasks),
}

/// Each patient's conditions as one bit per vocabulary code (bit `i`: `CONDITIONS[i]`), in
/// the row order of a list, with a fingerprint of that order.
pub struct ConditionMasks {
    masks: Vec<u64>,
    order: u64,
}

impl ConditionMasks {
    /// The masks of `patients` (a frame with `patient_id`) from the long table `conditions`,
    /// whose rows of patients not in `patients` are counted in `unlisted`.
    ///
    /// # Errors
    /// If the table fails to read, or lacks `patient_id` or `condition`.
    pub fn of(
        patients: &DataFrame,
        conditions: LazyFrame,
        unlisted: &UnlistedRows,
    ) -> PolarsResult<Self> {
        let ids = patients.column(schema::PATIENT_ID)?.str()?;
        let index = Arc::new(KeyIndex::new(ids)?);
        Ok(ConditionMasks {
            masks: condition_masks(&index, conditions, unlisted)?,
            order: order_fingerprint(ids),
        })
    }
}

/// A hash of a list's ids in their order: masks kept from one read of a part are only used on
/// a read with the same patients in the same order.
///
/// Blocks of ids are hashed on all cores and their hashes then folded in block order: hashed
/// in one pass, a part's ids took one core (1% of the patient stages' samples at England
/// scale, twice a part).
fn order_fingerprint(ids: &StringChunked) -> u64 {
    const BLOCK: usize = 1 << 16;
    let hasher = crate::lazy::key_hasher();
    let fold = |order: u64, hash: u64| {
        order
            .rotate_left(5)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(hash)
    };
    let ids = ids.rechunk();
    let ids = ids.downcast_as_array();
    let blocks: Vec<u64> = (0..ids.len().div_ceil(BLOCK))
        .into_par_iter()
        .map(|block| {
            let rows = block * BLOCK..ids.len().min((block + 1) * BLOCK);
            rows.fold(block as u64, |order, row| {
                fold(order, hasher.hash_one(ids.get(row)))
            })
        })
        .collect();
    blocks.into_iter().fold(ids.len() as u64, fold)
}

/// The long conditions (`patient_id`, `condition`) as the pivot reads them: `patient_id` and
/// each code's bit ([`CONDITION_BIT`]).
///
/// A list split into parts has its conditions coded where ingest writes them
/// ([`coded_condition_rows`]): the parts' working files then hold a byte a row, not a text.
pub fn coded_conditions(conditions: LazyFrame) -> LazyFrame {
    conditions.select([
        col(schema::PATIENT_ID),
        coded(col(schema::CONDITION), "condition_bit", condition_bit)
            .cast(DataType::UInt8)
            .alias(CONDITION_BIT),
    ])
}

/// A batch of long conditions coded as [`coded_conditions`] codes them.
///
/// # Errors
/// If the batch lacks `patient_id` or a text `condition`.
pub fn coded_condition_rows(rows: &DataFrame) -> PolarsResult<DataFrame> {
    let bits = key_codes::text_codes(rows.column(schema::CONDITION)?, condition_bit)?
        .with_name(CONDITION_BIT.into())
        .into_column()
        .cast(&DataType::UInt8)?;
    DataFrame::new(
        rows.height(),
        vec![rows.column(schema::PATIENT_ID)?.clone(), bits],
    )
}

/// A condition code's bit in the vocabulary (`CONDITIONS`), if it is in it.
fn condition_bit(code: &str) -> Option<u32> {
    CONDITIONS
        .iter()
        .position(|condition| condition.code == code)
        .map(|bit| bit as u32)
}

/// The long outcomes (`patient_id`, `indicator`, `value`) as the pivot reads them:
/// `patient_id`, each code's slot in `codes` ([`OUTCOME_SLOT`]) and `value` as a float.
///
/// A list split into parts has its outcomes coded where ingest writes them
/// ([`coded_outcome_rows`]), by slots that are mapped to `codes` when the parts are read.
pub fn coded_outcomes(outcomes: LazyFrame, codes: &[String]) -> LazyFrame {
    let slot_of: HashMap<String, u32, foldhash::fast::FixedState> = codes
        .iter()
        .enumerate()
        .map(|(slot, code)| (code.clone(), slot as u32))
        .collect();
    outcomes.select([
        col(schema::PATIENT_ID),
        coded(col(schema::INDICATOR), "outcome_slot", move |code| {
            slot_of.get(code).copied()
        })
        .alias(OUTCOME_SLOT),
        col(schema::VALUE).cast(DataType::Float64),
    ])
}

/// A batch of long outcomes coded as [`coded_outcomes`] codes them, by the slots `slot_of`
/// gives (a writer that learns the codes as it goes), and with each row's period coded by
/// `period_of` ([`OUTCOME_PERIOD`]; null when the batch has no `period`): a run uses one
/// period, chosen once every row has been coded.
///
/// # Errors
/// If the batch lacks `patient_id`, a text `indicator` or a numeric `value`, or has a `period`
/// that is not text.
pub fn coded_outcome_rows(
    rows: &DataFrame,
    slot_of: impl FnMut(&str) -> Option<u32>,
    period_of: impl FnMut(&str) -> Option<u32>,
) -> PolarsResult<DataFrame> {
    let slots = key_codes::text_codes(rows.column(schema::INDICATOR)?, slot_of)?
        .with_name(OUTCOME_SLOT.into())
        .into_column();
    let periods = match rows.column(schema::PERIOD) {
        Ok(periods) => key_codes::text_codes(periods, period_of)?,
        Err(_) => UInt32Chunked::full_null(PlSmallStr::EMPTY, rows.height()),
    }
    .with_name(OUTCOME_PERIOD.into())
    .into_column();
    DataFrame::new(
        rows.height(),
        vec![
            rows.column(schema::PATIENT_ID)?.clone(),
            slots,
            rows.column(schema::VALUE)?.cast(&DataType::Float64)?,
            periods,
        ],
    )
}

/// The code of each text value of `text` (`UInt32`; null for null text and text `code_of`
/// does not know), by [`key_codes::text_codes`].
fn coded<F>(text: Expr, name: &'static str, code_of: F) -> Expr
where
    F: Fn(&str) -> Option<u32> + Send + Sync + 'static,
{
    text.map_with_fmt_str(
        move |column: Column| Ok(key_codes::text_codes(&column, &code_of)?.into_column()),
        |_, field| Ok(Field::new(field.name().clone(), DataType::UInt32)),
        name,
    )
}

/// `patients` with the long inputs added as columns: `__cond_<code>` (yes/no) for every code of
/// the vocabulary when `conditions` is given, and `__outcome_<code>` (the sum of the patient's
/// values of the code; null when the patient has no row with a value) for each outcome code.
///
/// `conditions` are coded by [`coded_conditions`] (codes outside the vocabulary are ignored);
/// `outcomes` are coded by [`coded_outcomes`] with the codes to make columns for, given here
/// too (rows of other codes are ignored). Long rows of patients not in `patients` add to no
/// patient, as in a left join, and are counted in `unlisted` (rows of kept masks were counted
/// when the masks were found). An empty `patients` reads neither table, so counts nothing.
///
/// # Errors
/// If a long table fails to read, or lacks those columns; if masks were found for another list
/// or order (an internal error).
pub fn with_long_inputs(
    mut patients: DataFrame,
    conditions: Option<Conditions<'_>>,
    outcomes: Option<(LazyFrame, &[String])>,
    unlisted: &UnlistedRows,
) -> PolarsResult<DataFrame> {
    let ids = patients.column(schema::PATIENT_ID)?.str()?.clone();
    // The list's ids are indexed only to read a long table: kept masks need no index (the
    // tier counts' pass has just built one for them).
    let mut index: Option<Arc<KeyIndex>> = None;
    let mut indexed = || -> PolarsResult<Arc<KeyIndex>> {
        match &index {
            Some(built) => Ok(Arc::clone(built)),
            None => {
                let built = Arc::new(KeyIndex::new(&ids)?);
                index = Some(Arc::clone(&built));
                Ok(built)
            }
        }
    };
    let mut columns = Vec::new();
    match conditions {
        Some(Conditions::Rows(conditions)) => {
            columns.extend(condition_columns(&condition_masks(
                &indexed()?,
                *conditions,
                unlisted,
            )?));
        }
        Some(Conditions::Masks(kept)) => {
            polars_ensure!(
                kept.masks.len() == ids.len() && kept.order == order_fingerprint(&ids),
                ComputeError: "internal: condition masks of another list or order of patients"
            );
            columns.extend(condition_columns(&kept.masks));
        }
        None => {}
    }
    if let Some((outcomes, codes)) = outcomes {
        columns.extend(outcome_columns(&indexed()?, outcomes, codes, unlisted)?);
    }
    patients.hstack_mut(&columns)?;
    Ok(patients)
}

/// Each indexed patient's conditions as a mask: bit `i` set when they have a row of
/// `CONDITIONS[i]`. Rows of patients not indexed are counted in `unlisted`.
fn condition_masks(
    index: &Arc<KeyIndex>,
    conditions: LazyFrame,
    unlisted: &UnlistedRows,
) -> PolarsResult<Vec<u64>> {
    let masks = vec![0u64; index.len()];
    if index.len() == 0 {
        return Ok(masks);
    }
    let index = Arc::clone(index);
    let (masks, not_indexed) = crate::lazy::fold_batches(
        conditions.select([col(schema::PATIENT_ID), col(CONDITION_BIT)]),
        (masks, 0u64),
        move |(masks, not_indexed), batch| {
            let rows = index.rows_of(batch.column(schema::PATIENT_ID)?.str()?);
            let bits = batch.column(CONDITION_BIT)?.u8()?;
            for (row, bit) in rows.into_iter().zip(bits.iter()) {
                match (row, bit) {
                    (Some(row), Some(bit)) => masks[row as usize] |= 1u64 << bit,
                    (None, _) => *not_indexed += 1,
                    (Some(_), None) => {}
                }
            }
            Ok(())
        },
    )?;
    unlisted
        .conditions
        .fetch_add(not_indexed, Ordering::Relaxed);
    Ok(masks)
}

/// One yes/no column per vocabulary code: whether the patient's mask has it.
fn condition_columns(masks: &[u64]) -> Vec<Column> {
    CONDITIONS
        .par_iter()
        .enumerate()
        .map(|(bit, condition)| {
            let name = format!("{CONDITION_PREFIX}{}", condition.code);
            BooleanChunked::with_chunk(name.into(), flags_of(masks, 1u64 << bit)).into_column()
        })
        .collect()
}

/// Whether each mask has `bit`, as a Boolean array built eight patients to a byte (a bit at a
/// time, 47 columns of a part's list cost more than reading its conditions).
fn flags_of(masks: &[u64], bit: u64) -> BooleanArray {
    let bytes: Vec<u8> = masks
        .chunks(8)
        .map(|eight| {
            // Arrow bitmaps are least significant bit first: the first patient is bit 0.
            eight
                .iter()
                .rev()
                .fold(0u8, |byte, mask| (byte << 1) | u8::from(mask & bit != 0))
        })
        .collect();
    BooleanArray::new(
        ArrowDataType::Boolean,
        Bitmap::from_u8_vec(bytes, masks.len()),
        None,
    )
}

/// One column per outcome code: the sum of the patient's non-null values of it, null when
/// there are none. Rows of patients not indexed are counted in `unlisted`.
fn outcome_columns(
    index: &Arc<KeyIndex>,
    outcomes: LazyFrame,
    codes: &[String],
    unlisted: &UnlistedRows,
) -> PolarsResult<Vec<Column>> {
    let (patients, width) = (index.len(), codes.len());
    // Each code's column is made in place: the patients' sums, and whether any value was seen
    // (the column's validity), handed to polars as they are. Summing into one block and then
    // collecting each code's run as optional values made every column twice.
    let mut columns: (Vec<Vec<f64>>, Vec<MutableBitmap>) = (
        (0..width).map(|_| vec![0.0f64; patients]).collect(),
        (0..width)
            .map(|_| MutableBitmap::from_len_zeroed(patients))
            .collect(),
    );
    if patients > 0 && width > 0 {
        let index = Arc::clone(index);
        let not_indexed;
        (columns, not_indexed) = crate::lazy::fold_batches(
            outcomes.select([
                col(schema::PATIENT_ID),
                col(OUTCOME_SLOT),
                col(schema::VALUE),
            ]),
            (columns, 0u64),
            move |((sums, seen), not_indexed), batch| {
                let rows = index.rows_of(batch.column(schema::PATIENT_ID)?.str()?);
                let slots = batch.column(OUTCOME_SLOT)?.u32()?;
                let values = batch.column(schema::VALUE)?.f64()?;
                for ((row, slot), value) in rows.into_iter().zip(slots.iter()).zip(values.iter()) {
                    let Some(row) = row else {
                        *not_indexed += 1;
                        continue;
                    };
                    let (Some(slot), Some(value)) = (slot, value) else {
                        continue;
                    };
                    // A slot is below `width` unless the rows were coded with other codes.
                    if let (Some(sums), Some(seen)) =
                        (sums.get_mut(slot as usize), seen.get_mut(slot as usize))
                    {
                        sums[row as usize] += value;
                        seen.set(row as usize, true);
                    }
                }
                Ok(())
            },
        )?;
        unlisted.outcomes.fetch_add(not_indexed, Ordering::Relaxed);
    }
    let (sums, seen) = columns;
    Ok(codes
        .iter()
        .zip(sums)
        .zip(seen)
        .map(|((code, sums), seen)| {
            let seen = Bitmap::from(seen);
            let validity = (seen.unset_bits() > 0).then_some(seen);
            let values = PrimitiveArray::new(ArrowDataType::Float64, sums.into(), validity);
            Float64Chunked::with_chunk(format!("{OUTCOME_PREFIX}{code}").into(), values)
                .into_column()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patients(ids: &[Option<&str>]) -> PolarsResult<DataFrame> {
        df!(schema::PATIENT_ID => ids, "age" => vec![40i64; ids.len()])
    }

    fn bools(frame: &DataFrame, name: &str) -> PolarsResult<Vec<Option<bool>>> {
        Ok(frame.column(name)?.bool()?.iter().collect())
    }

    fn floats(frame: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
        Ok(frame.column(name)?.f64()?.iter().collect())
    }

    #[test]
    fn conditions_land_on_their_patients_row() -> PolarsResult<()> {
        let list = patients(&[Some("p3"), Some("p1"), None, Some("p2")])?;
        let conditions = df!(
            schema::PATIENT_ID => [Some("p1"), Some("p3"), Some("p1"), Some("p9"), None, Some("p2")],
            schema::CONDITION => [Some("asthma"), Some("asthma"), Some("copd"), Some("asthma"), Some("copd"), Some("not_a_code")],
        )?;
        let unlisted = UnlistedRows::default();
        let wide = with_long_inputs(
            list,
            Some(Conditions::Rows(Box::new(coded_conditions(
                conditions.lazy(),
            )))),
            None,
            &unlisted,
        )?;
        // p9 is not on the list and the null id matches nothing: both are counted. An unknown
        // code sets nothing.
        assert_eq!((unlisted.conditions(), unlisted.outcomes()), (2, 0));
        assert_eq!(
            bools(&wide, "__cond_asthma")?,
            [Some(true), Some(true), Some(false), Some(false)]
        );
        assert_eq!(
            bools(&wide, "__cond_copd")?,
            [Some(false), Some(true), Some(false), Some(false)]
        );
        assert_eq!(wide.width(), 2 + CONDITIONS.len());
        assert_eq!(wide.column("age")?.len(), 4);
        Ok(())
    }

    #[test]
    fn long_rows_are_coded_by_bit_and_slot_and_unknown_codes_by_null() -> PolarsResult<()> {
        let bit = |code: &str| {
            CONDITIONS
                .iter()
                .position(|c| c.code == code)
                .map(|b| b as u8)
        };
        let (asthma, copd) = (bit("asthma"), bit("copd"));
        let conditions = df!(
            schema::PATIENT_ID => ["a", "a", "b", "b", "c", "c"],
            schema::CONDITION => [Some("asthma"), Some("asthma"), None, Some("copd"), Some("not_a_code"), Some("asthma")],
        )?;
        let coded = coded_conditions(conditions.lazy()).collect()?;
        assert_eq!(
            coded.get_column_names(),
            [schema::PATIENT_ID, CONDITION_BIT]
        );
        let bits: Vec<Option<u8>> = coded.column(CONDITION_BIT)?.u8()?.iter().collect();
        assert_eq!(bits, [asthma, asthma, None, copd, None, asthma]);

        let outcomes = df!(
            schema::PATIENT_ID => ["a", "a", "b", "b", "c"],
            schema::INDICATOR => [Some("smoker"), Some("smoker"), Some("admits"), None, Some("other")],
            schema::VALUE => [Some(1i64), Some(2), None, Some(4), Some(5)],
        )?;
        let codes = ["admits".to_string(), "smoker".to_string()];
        let coded = coded_outcomes(outcomes.lazy(), &codes).collect()?;
        let slots: Vec<Option<u32>> = coded.column(OUTCOME_SLOT)?.u32()?.iter().collect();
        assert_eq!(slots, [Some(1), Some(1), Some(0), None, None]);
        assert_eq!(
            floats(&coded, schema::VALUE)?,
            [Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)]
        );
        Ok(())
    }

    #[test]
    fn outcomes_are_summed_per_patient_and_code() -> PolarsResult<()> {
        let list = patients(&[Some("a"), Some("b"), Some("c")])?;
        let outcomes = df!(
            schema::PATIENT_ID => ["b", "a", "b", "c", "a", "z"],
            schema::INDICATOR => ["admits", "admits", "admits", "smoker", "other", "admits"],
            schema::VALUE => [Some(1.0), Some(2.0), Some(3.5), None, Some(7.0), Some(1.0)],
        )?;
        let codes = ["admits".to_string(), "smoker".to_string()];
        let unlisted = UnlistedRows::default();
        let wide = with_long_inputs(
            list,
            None,
            Some((coded_outcomes(outcomes.lazy(), &codes), &codes)),
            &unlisted,
        )?;
        // z is not on the list.
        assert_eq!((unlisted.conditions(), unlisted.outcomes()), (0, 1));
        assert_eq!(
            floats(&wide, "__outcome_admits")?,
            [Some(2.0), Some(4.5), None]
        );
        // c's only smoker row has no value: no value, as for a patient with no row.
        assert_eq!(floats(&wide, "__outcome_smoker")?, [None, None, None]);
        assert!(wide.column("__outcome_other").is_err());
        Ok(())
    }

    #[test]
    fn matches_a_pivot_by_group_by_and_join() -> PolarsResult<()> {
        // 2,000 patients in shuffled order, and long rows in another order with repeats.
        let ids: Vec<String> = (0..2000)
            .map(|i| format!("patient-{:06}", (i * 7919) % 2000))
            .collect();
        let list = df!(schema::PATIENT_ID => &ids)?;
        let long_ids: Vec<String> = (0..9000)
            .map(|i| format!("patient-{:06}", (i * 31) % 2100))
            .collect();
        let codes: Vec<&str> = (0..9000).map(|i| CONDITIONS[i % 5].code).collect();
        let values: Vec<f64> = (0..9000).map(|i| (i % 13) as f64 * 0.25).collect();
        let conditions = df!(schema::PATIENT_ID => &long_ids, schema::CONDITION => &codes)?;
        let outcomes = df!(
            schema::PATIENT_ID => &long_ids,
            schema::INDICATOR => &codes,
            schema::VALUE => &values,
        )?;
        let outcome_codes: Vec<String> =
            CONDITIONS[..5].iter().map(|c| c.code.to_string()).collect();
        let unlisted = UnlistedRows::default();
        let wide = with_long_inputs(
            list.clone(),
            Some(Conditions::Rows(Box::new(coded_conditions(
                conditions.clone().lazy(),
            )))),
            Some((
                coded_outcomes(outcomes.clone().lazy(), &outcome_codes),
                &outcome_codes,
            )),
            &unlisted,
        )?;
        // Long ids 2,000 to 2,099 are not on the list.
        let not_listed = long_ids.iter().filter(|id| !ids.contains(id)).count() as u64;
        assert!(not_listed > 0);
        assert_eq!(
            (unlisted.conditions(), unlisted.outcomes()),
            (not_listed, not_listed)
        );

        let args = JoinArgs {
            maintain_order: MaintainOrderJoin::Left,
            ..JoinArgs::new(JoinType::Left)
        };
        for code in &outcome_codes {
            let by_patient = outcomes
                .clone()
                .lazy()
                .filter(col(schema::INDICATOR).eq(lit(code.as_str())))
                .group_by([col(schema::PATIENT_ID)])
                .agg([col(schema::VALUE).sum().alias("sum"), len().alias("rows")]);
            let expected = list
                .clone()
                .lazy()
                .join(
                    by_patient,
                    [col(schema::PATIENT_ID)],
                    [col(schema::PATIENT_ID)],
                    args.clone(),
                )
                .collect()?;
            assert_eq!(
                floats(&wide, &format!("{OUTCOME_PREFIX}{code}"))?,
                floats(&expected, "sum")?,
                "{code}"
            );
            let has: Vec<Option<bool>> = expected
                .column("rows")?
                .u32()?
                .iter()
                .map(|rows| Some(rows.is_some()))
                .collect();
            assert_eq!(
                bools(&wide, &format!("{CONDITION_PREFIX}{code}"))?,
                has,
                "{code}"
            );
        }
        Ok(())
    }

    #[test]
    fn kept_masks_give_the_columns_the_rows_give_and_only_for_their_list() -> PolarsResult<()> {
        let ids: Vec<String> = (0..3000)
            .map(|i| format!("patient-{:06}", (i * 7919) % 3000))
            .collect();
        let list = df!(schema::PATIENT_ID => &ids, "age" => vec![40i64; ids.len()])?;
        let long_ids: Vec<String> = (0..7000)
            .map(|i| format!("patient-{:06}", (i * 31) % 3100))
            .collect();
        let codes: Vec<&str> = (0..7000)
            .map(|i| CONDITIONS[(i * 13) % CONDITIONS.len()].code)
            .collect();
        let conditions = df!(schema::PATIENT_ID => &long_ids, schema::CONDITION => &codes)?;
        let read_rows = UnlistedRows::default();
        let from_rows = with_long_inputs(
            list.clone(),
            Some(Conditions::Rows(Box::new(coded_conditions(
                conditions.clone().lazy(),
            )))),
            None,
            &read_rows,
        )?;
        // The tier pass reads fewer columns of the same list: its masks serve the full list.
        let narrow = list.select([schema::PATIENT_ID])?;
        let read_masks = UnlistedRows::default();
        let kept = ConditionMasks::of(&narrow, coded_conditions(conditions.lazy()), &read_masks)?;
        let from_masks = with_long_inputs(
            list.clone(),
            Some(Conditions::Masks(&kept)),
            None,
            &read_masks,
        )?;
        assert!(from_masks.equals_missing(&from_rows));
        // Rows of ids 3,000 to 3,099, counted once: kept masks are not counted again.
        assert!(read_rows.conditions() > 0);
        assert_eq!(read_masks.conditions(), read_rows.conditions());
        assert!(
            from_rows
                .column(&format!("{CONDITION_PREFIX}{}", CONDITIONS[0].code))?
                .bool()?
                .any(),
            "some flags are set"
        );
        // The same patients in another order, or another list, are refused.
        let reversed = list.reverse();
        let refused = with_long_inputs(reversed, Some(Conditions::Masks(&kept)), None, &read_masks);
        assert!(refused.is_err());
        let shorter = list.slice(0, 2999);
        assert!(
            with_long_inputs(shorter, Some(Conditions::Masks(&kept)), None, &read_masks).is_err()
        );
        Ok(())
    }

    /// A list's fingerprint is its ids in their order, whatever its chunks: over more than one
    /// block of ids, two ids swapped between blocks, or within one, change it.
    #[test]
    fn the_order_fingerprint_is_of_the_ids_in_their_order() {
        let ids: Vec<String> = (0..150_000).map(|i| format!("p{i}")).collect();
        let list: StringChunked = ids.iter().map(String::as_str).collect();
        let fingerprint = order_fingerprint(&list);
        let mut chunked = list.slice(0, 70_000);
        chunked.append(&list.slice(70_000, 80_000)).expect("append");
        assert_eq!(chunked.chunks().len(), 2);
        assert_eq!(
            order_fingerprint(&chunked),
            fingerprint,
            "the same ids in two chunks"
        );
        for (a, b) in [(10, 140_000), (100, 101)] {
            let mut swapped = ids.clone();
            swapped.swap(a, b);
            let swapped: StringChunked = swapped.iter().map(String::as_str).collect();
            assert_ne!(
                order_fingerprint(&swapped),
                fingerprint,
                "rows {a} and {b} swapped"
            );
        }
        assert_ne!(
            order_fingerprint(&list.slice(0, 149_999)),
            fingerprint,
            "one id fewer"
        );
    }
}
