//! Grouping patients by key columns through dense codes, kept across the batches of a
//! streamed pass.
//!
//! A streamed grouping over patients (measure's practice sums, the segments table's people)
//! turns each batch's key columns into small integers once ([`KeyCodes`]), then groups rows by
//! integers ([`sum_by_keys`]): polars' `group_by` on several text keys encodes every row's
//! keys into bytes and compares those (the segments table at 10M: 60% of its time in row
//! encoding, `memcmp` and `memmove`).

use std::collections::HashMap;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use polars::prelude::*;
use polars_arrow::array::{Array, PrimitiveArray, Utf8ViewArray};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::ArrowDataType;
use rayon::prelude::*;

type Codes<K> = HashMap<K, u32, RandomState>;

/// Numbers below this are coded through a table ([`KeyCodes::number_code`]).
const SMALL_NUMBERS: usize = 256;

/// No code yet, in a table of codes.
const NO_CODE: u32 = u32::MAX;

/// One value of a key column.
enum KeyValue {
    Null,
    Number(i64),
    Text(Box<str>),
}

/// Dense codes (0, 1, 2, … in order of first sight) for the values of one key column, kept
/// across batches, and the values back from their codes.
pub(crate) struct KeyCodes {
    name: String,
    dtype: DataType,
    numbers: Codes<i64>,
    /// The codes of the numbers `0..SMALL_NUMBERS` (deciles, quintiles, yes/no), by number,
    /// [`NO_CODE`] where none yet: found by one load, not a hash.
    small: [u32; SMALL_NUMBERS],
    texts: Codes<Box<str>>,
    null: Option<u32>,
    values: Vec<KeyValue>,
}

impl KeyCodes {
    pub(crate) fn new(name: &str, dtype: &DataType) -> Self {
        KeyCodes {
            name: name.to_string(),
            dtype: dtype.clone(),
            numbers: Codes::default(),
            small: [NO_CODE; SMALL_NUMBERS],
            texts: Codes::default(),
            null: None,
            values: Vec::new(),
        }
    }

    /// The key column's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// How many values have a code so far: the codes are `0..len`.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Integers and yes/no are coded by number, everything else by its text.
    fn by_number(&self) -> bool {
        self.dtype.is_integer() || self.dtype == DataType::Boolean
    }

    fn code_of(&mut self, value: KeyValue) -> u32 {
        let code = self.values.len() as u32;
        match &value {
            KeyValue::Null => self.null = Some(code),
            KeyValue::Number(n) => {
                self.numbers.insert(*n, code);
            }
            KeyValue::Text(t) => {
                self.texts.insert(t.clone(), code);
            }
        }
        self.values.push(value);
        code
    }

    fn null_code(&mut self) -> u32 {
        match self.null {
            Some(code) => code,
            None => self.code_of(KeyValue::Null),
        }
    }

    fn number_code(&mut self, number: i64) -> u32 {
        if let Ok(small) = usize::try_from(number)
            && small < SMALL_NUMBERS
        {
            return match self.small[small] {
                NO_CODE => {
                    let code = self.code_of(KeyValue::Number(number));
                    self.small[small] = code;
                    code
                }
                code => code,
            };
        }
        match self.numbers.get(&number).copied() {
            Some(code) => code,
            None => self.code_of(KeyValue::Number(number)),
        }
    }

    fn text_code(&mut self, text: &str) -> u32 {
        match self.texts.get(text).copied() {
            Some(code) => code,
            None => self.code_of(KeyValue::Text(text.into())),
        }
    }

    /// The code of each value of `column`, in row order.
    ///
    /// # Errors
    /// If the column cannot be cast to the key's type (numbers or text).
    pub(crate) fn codes(&mut self, column: &Column) -> PolarsResult<Vec<u32>> {
        if self.by_number() {
            // Each array's values and validity read directly: through polars' iterator of
            // options, with a hash a change of value, the numbers' codes were a third of
            // the coding in measure at England.
            let mut codes = Vec::with_capacity(column.len());
            if column.dtype() == &DataType::Boolean {
                for array in column.bool()?.downcast_iter() {
                    let flags = array.values().iter().map(i64::from);
                    self.extend_number_codes(flags, array.validity(), &mut codes);
                }
            } else {
                let numbers = column.cast(&DataType::Int64)?;
                for array in numbers.i64()?.downcast_iter() {
                    let values = array.values().iter().copied();
                    self.extend_number_codes(values, array.validity(), &mut codes);
                }
            }
            Ok(codes)
        } else {
            let texts = column.cast(&DataType::String)?;
            let mut codes = Vec::with_capacity(texts.len());
            for array in texts.str()?.downcast_iter() {
                self.extend_text_codes(array, &mut codes);
            }
            Ok(codes)
        }
    }

    /// The codes of one array's `numbers`, missing where `validity` says, appended to `codes`.
    fn extend_number_codes(
        &mut self,
        numbers: impl Iterator<Item = i64>,
        validity: Option<&Bitmap>,
        codes: &mut Vec<u32>,
    ) {
        let missing = validity.filter(|bits| bits.unset_bits() > 0);
        for (row, number) in numbers.enumerate() {
            codes.push(match missing {
                Some(valid) if !valid.get_bit(row) => self.null_code(),
                _ => self.number_code(number),
            });
        }
    }

    /// The codes of one array of texts, appended to `codes` (see [`extend_codes_by_view`]).
    fn extend_text_codes(&mut self, array: &Utf8ViewArray, codes: &mut Vec<u32>) {
        extend_codes_by_view(array, codes, |text| match text {
            None => self.null_code(),
            Some(text) => self.text_code(text),
        });
    }

    /// Whether `code` is the code of a missing value.
    pub(crate) fn is_null(&self, code: u32) -> bool {
        self.null == Some(code)
    }

    /// The rank of each code's value in the order polars sorts the column by (numbers by
    /// value, texts by their bytes), missing values last: rows sorted by ranks are rows
    /// sorted by values.
    pub(crate) fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.values.len() as u32).collect();
        order.sort_by(|&a, &b| {
            match (&self.values[a as usize], &self.values[b as usize]) {
                (KeyValue::Null, KeyValue::Null) => std::cmp::Ordering::Equal,
                (KeyValue::Null, _) => std::cmp::Ordering::Greater,
                (_, KeyValue::Null) => std::cmp::Ordering::Less,
                (KeyValue::Number(a), KeyValue::Number(b)) => a.cmp(b),
                (KeyValue::Text(a), KeyValue::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
                // A column is coded by number or by text, never both.
                (KeyValue::Number(_), KeyValue::Text(_)) => std::cmp::Ordering::Less,
                (KeyValue::Text(_), KeyValue::Number(_)) => std::cmp::Ordering::Greater,
            }
        });
        invert(&order)
    }

    /// The values in code order, as a column of the key column's own type.
    ///
    /// # Errors
    /// If the values cannot be cast back to the key column's type (an internal error).
    pub(crate) fn values(&self) -> PolarsResult<Series> {
        let name = PlSmallStr::from(self.name.as_str());
        let series = if self.by_number() {
            let numbers: Vec<Option<i64>> = self
                .values
                .iter()
                .map(|v| match v {
                    KeyValue::Number(n) => Some(*n),
                    _ => None,
                })
                .collect();
            Series::new(name, numbers)
        } else {
            let texts: Vec<Option<&str>> = self
                .values
                .iter()
                .map(|v| match v {
                    KeyValue::Text(t) => Some(&**t),
                    _ => None,
                })
                .collect();
            Series::new(name, texts)
        };
        series.cast(&self.dtype)
    }

    /// The values of `codes` (each below the number of values coded), as a column of the key
    /// column's own type.
    ///
    /// # Errors
    /// If the values cannot be made (an internal error).
    pub(crate) fn take(&self, codes: Vec<u32>) -> PolarsResult<Series> {
        self.values()?
            .take(&IdxCa::from_vec(PlSmallStr::EMPTY, codes))
    }
}

/// The codes of each of `keys`' columns in `batch`, the columns side by side.
///
/// # Errors
/// If a key column is missing or cannot be cast to its key's type.
pub(crate) fn batch_codes(keys: &mut [KeyCodes], batch: &DataFrame) -> PolarsResult<Vec<Vec<u32>>> {
    keys.par_iter_mut()
        .map(|key| key.codes(batch.column(key.name())?))
        .collect()
}

/// The code of each row of a text array, appended to `codes`: `code_of` gives a row's code
/// from its text (`None` for a missing row).
///
/// Rows are looked up by their 16-byte view, and `code_of` is asked only the first time a
/// view is seen in the array: within one array, equal views are equal texts (a short text is
/// inside its view; a long one's view points at its bytes), and texts read from a Parquet
/// dictionary page, or gathered from a few values, share their views, so a batch of millions
/// of rows asks for a few dozen texts. Equal texts with different views are asked for again,
/// so `code_of` must give a text the same code each time. A row with the view of the row
/// before it takes that row's code without a lookup: long rows come in runs.
pub(crate) fn extend_codes_by_view(
    array: &Utf8ViewArray,
    codes: &mut Vec<u32>,
    mut code_of: impl FnMut(Option<&str>) -> u32,
) {
    let mut by_view: Codes<u128> = Codes::default();
    // The last views seen, by a few bits of their hash, before the map: a column of a few
    // values in no order (sex, age band, ethnic group) finds nearly every row here, by a
    // multiply and a load (the map's hash and probe were most of the text keys' coding).
    let mut recent = [(EMPTY_VIEW, 0u32); RECENT_VIEWS];
    let mut missing: Option<u32> = None;
    let mut last: Option<(u128, u32)> = None;
    let validity = array.validity().filter(|bits| bits.unset_bits() > 0);
    let buffers = array.data_buffers();
    codes.reserve(array.len());
    for (row, view) in array.views().iter().enumerate() {
        if validity.is_some_and(|bits| !bits.get_bit(row)) {
            codes.push(*missing.get_or_insert_with(|| code_of(None)));
            continue;
        }
        let key = view.as_u128();
        let code = match last {
            Some((previous, code)) if previous == key => code,
            _ => {
                let slot = &mut recent[recent_slot(key)];
                let code = if slot.0 == key {
                    slot.1
                } else {
                    let code = *by_view.entry(key).or_insert_with(|| {
                        // SAFETY: the view is one of the array's, so it is valid for the
                        // array's buffers, and its bytes are UTF-8 (a text array's).
                        code_of(Some(unsafe {
                            std::str::from_utf8_unchecked(view.get_slice_unchecked(buffers))
                        }))
                    });
                    *slot = (key, code);
                    code
                };
                last = Some((key, code));
                code
            }
        };
        codes.push(code);
    }
}

/// How many recent views [`extend_codes_by_view`] keeps, by the top bits of a hash.
const RECENT_VIEWS: usize = 64;

/// No view: a length of `u32::MAX` bytes, which no view in an array has.
const EMPTY_VIEW: u128 = u128::MAX;

/// Where a view is kept among the recent views: the top bits of a multiply of its halves.
fn recent_slot(view: u128) -> usize {
    let mixed = (view as u64 ^ (view >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> (64 - RECENT_VIEWS.trailing_zeros())) as usize
}

/// `codes` as a `UInt32` column, null where a code is `missing` (a value no real code takes).
pub(crate) fn codes_column(name: PlSmallStr, codes: Vec<u32>, missing: u32) -> UInt32Chunked {
    let validity: Option<Bitmap> = codes
        .contains(&missing)
        .then(|| codes.iter().map(|&code| code != missing).collect());
    let codes = PrimitiveArray::new(ArrowDataType::UInt32, codes.into(), validity);
    UInt32Chunked::with_chunk(name, codes)
}

/// The code of each value of a text column (`UInt32`; null for null text and text `code_of`
/// does not know), asked once per distinct view of each chunk ([`extend_codes_by_view`]): a
/// column of a few dozen codes (long rows' conditions, ethnic categories) or one whose rows
/// come in runs (a practice's patients) asks for a handful a chunk.
///
/// # Errors
/// If the column is not text.
pub(crate) fn text_codes(
    column: &Column,
    mut code_of: impl FnMut(&str) -> Option<u32>,
) -> PolarsResult<UInt32Chunked> {
    const NONE: u32 = u32::MAX;
    let values = column.str()?;
    let mut codes = Vec::with_capacity(values.len());
    for array in values.downcast_iter() {
        extend_codes_by_view(array, &mut codes, |value| {
            value.and_then(&mut code_of).unwrap_or(NONE)
        });
    }
    Ok(codes_column(column.name().clone(), codes, NONE))
}

/// The inverse of a permutation of `0..n`: where each index stands in it. The ranks of values
/// from their order (the codes sorted by value), and the order back from the ranks.
pub(crate) fn invert(permutation: &[u32]) -> Vec<u32> {
    let mut inverse = vec![0u32; permutation.len()];
    for (at, &index) in permutation.iter().enumerate() {
        inverse[index as usize] = at as u32;
    }
    inverse
}

/// The sum of the integer column `value` by the values of the `keys` columns, over `plan`
/// streamed batch by batch: what `group_by(keys).agg([col(value).sum()])` gives, by codes,
/// with missing values added as 0. Groups come in an order fixed by the rows (the same rows
/// give the same order, on any number of threads), not of first sight. Memory holds a batch
/// and the groups.
///
/// # Errors
/// If there are no keys, a column is missing or of the wrong type, or the plan fails.
pub(crate) fn sum_by_keys(
    mut plan: LazyFrame,
    keys: &[&str],
    value: &str,
) -> PolarsResult<CodedSums> {
    polars_ensure!(!keys.is_empty(), InvalidOperation: "sums by keys need at least one key");
    let schema = plan.collect_schema()?;
    let sums = SumsByKeys {
        keys: keys
            .iter()
            .map(|name| Ok(KeyCodes::new(name, schema.try_get(name)?)))
            .collect::<PolarsResult<_>>()?,
        value: value.to_string(),
        shards: (0..SHARDS).map(|_| GroupSums::new(keys.len())).collect(),
    };
    let columns: Vec<Expr> = keys.iter().chain([&value]).map(|name| col(*name)).collect();
    let sums =
        crate::lazy::fold_batches(plan.select(columns), sums, |sums, batch| sums.add(&batch))?;
    Ok(sums.finish())
}

/// Groups are split into this many shards by their hash, each with its own table, so that
/// the threads add rows into groups side by side (a fixed number, so that the groups' order
/// does not depend on the machine's). At England scale there are millions of groups and
/// each row's lookup misses the processor's cache: one thread adding them all took 11 s.
const SHARDS: usize = 8;

/// The hash of a row's key codes. Codes are small integers: each is mixed in by a multiply,
/// and the whole by splitmix64's finaliser, so that the low bits (the bucket), the top seven
/// (hashbrown's tag) and those picking the shard and the hot slot all vary. A general hasher
/// took 5% of the segments stage hashing the ten codes as bytes.
fn hash_codes(codes: &[u32]) -> u64 {
    let mut hash = 0u64;
    for &code in codes {
        hash = (hash.rotate_left(23) ^ u64::from(code)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94D0_49BB_1331_11EB);
    hash ^ (hash >> 31)
}

/// The shard of a hash: bits that neither the table's buckets (the low bits) nor its tags and
/// the hot slots (the top bits) use.
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

/// Row `row` of `codes` laid out `width` codes a row (groups' key codes, hot slots' and a
/// batch's rows).
fn row_of(codes: &[u32], row: usize, width: usize) -> &[u32] {
    &codes[row * width..(row + 1) * width]
}

/// Whether two rows of key codes (of the same width) are equal, compared without branching:
/// slices' `==` calls `memcmp`, which took a tenth of the segments stage for ten codes.
fn same_codes(a: &[u32], b: &[u32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |differ, (x, y)| differ | (x ^ y)) == 0
}

/// Sums being added up by [`sum_by_keys`].
struct SumsByKeys {
    keys: Vec<KeyCodes>,
    value: String,
    /// The groups, by [`shard_of`] their hash.
    shards: Vec<GroupSums>,
}

/// The groups of one shard and their sums.
struct GroupSums {
    width: usize,
    /// Each group's key codes, `width` a group.
    group_codes: Vec<u32>,
    /// Groups, found by the hash of their key codes.
    groups: HashTable<u32>,
    /// Each group's sum.
    sums: Vec<i64>,
    /// Sums of recently seen groups, added into `sums` when their slot is wanted.
    hot: HotGroups,
}

/// A small cache of groups' sums, found by the hash of their key codes: patients come
/// practice by practice, so the groups of a stretch of rows are few and their sums stay in
/// cache. Each row looked up in the table of all groups (millions at England scale) missed
/// the processor's cache.
struct HotGroups {
    width: usize,
    /// Each slot's key codes, `width` a slot, and their hash.
    codes: Vec<u32>,
    hashes: Vec<u64>,
    sums: Vec<i64>,
    used: Vec<bool>,
}

impl HotGroups {
    /// Slots a shard: 2,048 of ten codes, a hash and a sum take 120 KiB, so that a thread's
    /// share of the shards stays inside a core's L2 cache.
    const SLOT_BITS: u32 = 11;

    fn new(width: usize) -> Self {
        let slots = 1 << Self::SLOT_BITS;
        HotGroups {
            width,
            codes: vec![0; slots * width],
            hashes: vec![0; slots],
            sums: vec![0; slots],
            used: vec![false; slots],
        }
    }

    fn slot_of(hash: u64) -> usize {
        (hash >> (64 - Self::SLOT_BITS)) as usize
    }

    fn codes(&self, slot: usize) -> &[u32] {
        row_of(&self.codes, slot, self.width)
    }

    fn hold(&mut self, slot: usize, row: &[u32], hash: u64, value: i64) {
        self.codes[slot * self.width..(slot + 1) * self.width].copy_from_slice(row);
        self.hashes[slot] = hash;
        self.sums[slot] = value;
        self.used[slot] = true;
    }
}

impl SumsByKeys {
    fn add(&mut self, batch: &DataFrame) -> PolarsResult<()> {
        let codes = batch_codes(&mut self.keys, batch)?;
        let values: Vec<i64> = batch
            .column(&self.value)?
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|value| value.unwrap_or(0))
            .collect();
        // Each row's codes side by side, and their hash, made once for the shards to read.
        let width = self.keys.len();
        let mut rows = vec![0u32; values.len() * width];
        for (k, column) in codes.iter().enumerate() {
            for (row, &code) in rows.chunks_exact_mut(width).zip(column) {
                row[k] = code;
            }
        }
        let hashes: Vec<u64> = rows.par_chunks_exact(width).map(hash_codes).collect();
        let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); SHARDS];
        for (r, &hash) in hashes.iter().enumerate() {
            by_shard[shard_of(hash)].push(r as u32);
        }
        self.shards
            .par_iter_mut()
            .zip(by_shard)
            .for_each(|(shard, shard_rows)| {
                for r in shard_rows {
                    let r = r as usize;
                    shard.add(row_of(&rows, r, width), hashes[r], values[r]);
                }
            });
        Ok(())
    }

    fn finish(self) -> CodedSums {
        let mut group_codes = Vec::new();
        let mut sums = Vec::new();
        for mut shard in self.shards {
            shard.flush_all();
            group_codes.append(&mut shard.group_codes);
            sums.append(&mut shard.sums);
        }
        CodedSums {
            keys: self.keys,
            group_codes,
            sums,
        }
    }
}

impl GroupSums {
    fn new(width: usize) -> Self {
        GroupSums {
            width,
            group_codes: Vec::new(),
            groups: HashTable::new(),
            sums: Vec::new(),
            hot: HotGroups::new(width),
        }
    }

    /// Add a row's value to its group's sum, through the hot slots.
    fn add(&mut self, row: &[u32], hash: u64, value: i64) {
        let slot = HotGroups::slot_of(hash);
        if self.hot.used[slot] {
            if self.hot.hashes[slot] == hash && same_codes(self.hot.codes(slot), row) {
                self.hot.sums[slot] += value;
                return;
            }
            self.flush(slot);
        }
        self.hot.hold(slot, row, hash, value);
    }

    /// Add a hot slot's sum into its group's, and free the slot.
    fn flush(&mut self, slot: usize) {
        let width = self.width;
        let hash = self.hot.hashes[slot];
        let row = self.hot.codes(slot);
        let group_codes = &mut self.group_codes;
        let entry = self.groups.entry(
            hash,
            |&group| same_codes(row_of(group_codes, group as usize, width), row),
            |&group| hash_codes(row_of(group_codes, group as usize, width)),
        );
        let group = match entry {
            Entry::Occupied(found) => *found.get() as usize,
            Entry::Vacant(empty) => {
                let group = self.sums.len();
                group_codes.extend_from_slice(row);
                self.sums.push(0);
                empty.insert(group as u32);
                group
            }
        };
        self.sums[group] += self.hot.sums[slot];
        self.hot.used[slot] = false;
    }

    fn flush_all(&mut self) {
        for slot in 0..self.hot.used.len() {
            if self.hot.used[slot] {
                self.flush(slot);
            }
        }
    }
}

/// Sums by the codes of key columns ([`sum_by_keys`]): each group's key codes and sum, and the
/// key columns' values back from their codes.
pub(crate) struct CodedSums {
    keys: Vec<KeyCodes>,
    group_codes: Vec<u32>,
    sums: Vec<i64>,
}

impl CodedSums {
    /// The key columns' codes, in the order of the keys given.
    pub(crate) fn key(&self, k: usize) -> &KeyCodes {
        &self.keys[k]
    }

    /// Each group's key codes (one a key, in the order of the keys given) and sum.
    pub(crate) fn groups(&self) -> impl Iterator<Item = (&[u32], i64)> {
        self.group_codes
            .chunks_exact(self.keys.len())
            .zip(self.sums.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    use super::*;

    /// The code of `value` in order of first sight: its place among the values `seen`, which
    /// it joins if new.
    fn first_sight<T: PartialEq>(seen: &mut Vec<T>, value: T) -> u32 {
        match seen.iter().position(|s| *s == value) {
            Some(code) => code as u32,
            None => {
                seen.push(value);
                (seen.len() - 1) as u32
            }
        }
    }

    /// The codes polars' own values give, one lookup a row by text.
    fn codes_by_text(texts: &StringChunked) -> Vec<u32> {
        let mut seen: Vec<Option<String>> = Vec::new();
        texts
            .iter()
            .map(|text| first_sight(&mut seen, text.map(str::to_string)))
            .collect()
    }

    #[test]
    fn texts_are_coded_by_value_whatever_their_views() {
        // Long texts (over 12 bytes, so their views point into buffers) and short ones, in
        // several chunks, each with its own buffers. A chunk built row by row copies each long
        // text to its own place, so equal texts have different views even within a chunk.
        // "F" and "M" are different texts of one length in one chunk.
        let long = "Core20 and one PLUS group (most deprived)";
        let first = StringChunked::new(
            "segment".into(),
            [
                Some(long),
                Some("F"),
                None,
                Some(long),
                Some("short"),
                Some(long),
                Some("M"),
            ],
        );
        let mut second = StringChunked::new("segment".into(), [Some("short"), None, Some(long)]);
        second
            .append(&StringChunked::new(
                "segment".into(),
                [Some(long), Some("other text of some length")],
            ))
            .expect("same type");
        let mut texts = first.clone();
        texts.append(&second).expect("same type");
        assert!(texts.chunks().len() >= 3, "the test needs several chunks");

        let mut key = KeyCodes::new("segment", &DataType::String);
        let codes = key
            .codes(&texts.clone().into_series().into_column())
            .expect("coded");
        assert_eq!(codes, codes_by_text(&texts));
        // Kept across batches: the first batch again gets the same codes.
        let again = key
            .codes(&first.clone().into_series().into_column())
            .expect("coded");
        assert_eq!(again, codes[..first.len()].to_vec());
        // And back to values.
        let values = key.take(codes).expect("values");
        assert!(values.equals_missing(&texts.clone().into_series()));
        // Ranks sort codes as polars sorts the values, missing last.
        let ranks = key.ranks();
        let by_rank = key.take((0..ranks.len() as u32).collect()).expect("values");
        let mut order: Vec<u32> = (0..ranks.len() as u32).collect();
        order.sort_by_key(|&code| ranks[code as usize]);
        let ranked = by_rank
            .take(&IdxCa::from_vec(PlSmallStr::EMPTY, order))
            .expect("in rank order");
        let sorted = by_rank
            .sort(SortOptions::default().with_nulls_last(true))
            .expect("sorted");
        assert!(ranked.equals_missing(&sorted));
        assert!(key.is_null(codes_by_text(&texts)[2]));
    }

    #[test]
    fn rows_ask_for_their_code_once_per_distinct_view() {
        // A column gathered from a few values shares their views, as the texts of a Parquet
        // dictionary page do: 1,000 rows ask for the three texts and the missing value once.
        let values = StringChunked::new(
            "code".into(),
            [
                Some("asthma"),
                Some("chronic obstructive pulmonary disease"),
                None,
                Some("ckd"),
            ],
        );
        let rows: Vec<IdxSize> = (0..1000).map(|i| (i * 7 + i / 3) % 4).collect();
        let gathered = values
            .take(&IdxCa::from_vec(PlSmallStr::EMPTY, rows.clone()))
            .expect("gathered")
            .rechunk()
            .into_owned();
        let mut asked: Vec<Option<String>> = Vec::new();
        let mut codes = Vec::new();
        let missing = u32::MAX;
        for array in gathered.downcast_iter() {
            extend_codes_by_view(array, &mut codes, |text| {
                asked.push(text.map(str::to_string));
                text.map_or(missing, |text| text.len() as u32)
            });
        }
        assert_eq!(asked.len(), 4, "{asked:?}");
        let expected: Vec<Option<u32>> = rows
            .iter()
            .map(|&row| values.get(row as usize).map(|text| text.len() as u32))
            .collect();
        let column = codes_column("code".into(), codes, missing);
        assert_eq!(column.iter().collect::<Vec<_>>(), expected);
        assert_eq!(
            column.null_count(),
            rows.iter().filter(|&&r| r == 2).count()
        );
        // Without a missing code the column has no validity at all.
        let whole = codes_column("code".into(), vec![1, 2, 3], missing);
        assert!(
            whole
                .downcast_iter()
                .all(|array| array.validity().is_none())
        );
    }

    #[test]
    fn numbers_are_coded_and_given_back_in_their_type() {
        let deciles = Series::new(
            "imd_decile".into(),
            [Some(3i32), Some(3), None, Some(10), Some(3)],
        );
        let mut key = KeyCodes::new("imd_decile", deciles.dtype());
        let codes = key.codes(&deciles.clone().into_column()).expect("coded");
        assert_eq!(codes, [0, 0, 1, 2, 0]);
        let values = key.take(codes).expect("values");
        assert_eq!(values.dtype(), &DataType::Int32);
        assert!(values.equals_missing(&deciles));
        // 3, missing, 10 ranked by value with the missing last.
        assert_eq!(key.ranks(), [0, 2, 1]);
        assert!(key.is_null(1) && !key.is_null(0));
    }

    /// Many texts in no order, more than the recent views hold: each row still gets its
    /// text's code, each distinct view is asked for once, and a text's code stays the same
    /// in later batches.
    #[test]
    fn texts_of_many_values_in_no_order_get_their_codes() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        // 300 values, short (inline) and long (in buffers), and missing.
        let values: Vec<Option<String>> = (0..300)
            .map(|i| match i % 3 {
                0 => Some(format!("s{i}")),
                1 => Some(format!("a longer text of value number {i}")),
                _ if i == 2 => None,
                _ => Some(format!("t{i}")),
            })
            .collect();
        let values = StringChunked::new("value".into(), values);
        let mut key = KeyCodes::new("value", &DataType::String);
        let mut seen: Vec<Option<String>> = Vec::new();
        for batch in 0..3 {
            let rows: Vec<IdxSize> = (0..20_000).map(|_| rng.random_range(0..300)).collect();
            let gathered = values
                .take(&IdxCa::from_vec(PlSmallStr::EMPTY, rows))
                .expect("gathered");
            let mut asked = 0;
            let mut codes = Vec::new();
            for array in gathered.downcast_iter() {
                extend_codes_by_view(array, &mut codes, |_| {
                    asked += 1;
                    0
                });
            }
            assert_eq!(asked, 300, "batch {batch}");
            let codes = key.codes(&gathered.clone().into_column()).expect("coded");
            // The codes of first sight over all batches so far.
            let expected: Vec<u32> = gathered
                .iter()
                .map(|text| first_sight(&mut seen, text.map(str::to_string)))
                .collect();
            assert_eq!(codes, expected, "batch {batch}");
        }
    }

    /// Numbers small and large, negative, missing and yes/no, in several chunks and batches:
    /// the codes of first sight of each value.
    #[test]
    fn numbers_of_every_size_get_their_codes() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let pool: Vec<Option<i64>> = vec![
            Some(0),
            Some(1),
            Some(10),
            Some(255),
            Some(256),
            Some(-1),
            Some(i64::MIN),
            Some(i64::MAX),
            Some(1_000_000),
            None,
        ];
        let mut numbers = KeyCodes::new("n", &DataType::Int64);
        let mut flags = KeyCodes::new("f", &DataType::Boolean);
        let (mut seen_numbers, mut seen_flags) = (Vec::new(), Vec::new());
        for batch in 0..3 {
            let picks: Vec<Option<i64>> = (0..1000)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect();
            let mut column = Int64Chunked::new("n".into(), &picks[..400]);
            column
                .append(&Int64Chunked::new("n".into(), &picks[400..]))
                .expect("same type");
            assert!(column.chunks().len() >= 2, "the test needs several chunks");
            let codes = numbers
                .codes(&column.into_series().into_column())
                .expect("coded");
            let expected: Vec<u32> = picks
                .iter()
                .map(|&value| first_sight(&mut seen_numbers, value))
                .collect();
            assert_eq!(codes, expected, "batch {batch}");

            let picked_flags: Vec<Option<bool>> = picks
                .iter()
                .map(|value| value.map(|n| n % 2 == 0))
                .collect();
            let flag_column = BooleanChunked::new("f".into(), &picked_flags);
            let codes = flags
                .codes(&flag_column.into_series().into_column())
                .expect("coded");
            let expected: Vec<u32> = picked_flags
                .iter()
                .map(|&flag| first_sight(&mut seen_flags, flag.map(i64::from)))
                .collect();
            assert_eq!(codes, expected, "batch {batch}");
        }
        let values = numbers.values().expect("values");
        let expected = Series::new("n".into(), seen_numbers);
        assert!(values.equals_missing(&expected));
    }

    /// Rows of small codes that differ in any one place, or only in their order, get
    /// different hashes, spread evenly over the shards, the hot slots and the low bits, for
    /// every width up to ten.
    #[test]
    fn the_hashes_of_rows_of_codes_differ_and_spread() {
        for width in 1..=10usize {
            // Rows counting up in base 6 in their first seven codes (the rest 0), and one row
            // against its reversal.
            let rows: Vec<Vec<u32>> = (0..6u32.pow(width.min(7) as u32))
                .map(|n| {
                    (0..width)
                        .map(|place| (n / 6u32.pow(place.min(7) as u32)) % 6)
                        .collect()
                })
                .collect();
            let hashes: std::collections::HashSet<u64> =
                rows.iter().map(|row| hash_codes(row)).collect();
            assert_eq!(hashes.len(), rows.len(), "width {width}");
            let reversed: Vec<u32> = (0..width as u32).collect();
            let mut backwards = reversed.clone();
            backwards.reverse();
            if width > 1 {
                assert_ne!(
                    hash_codes(&reversed),
                    hash_codes(&backwards),
                    "width {width}"
                );
            }
            if rows.len() < 4_096 {
                continue;
            }
            let even = |buckets: usize, of: &dyn Fn(u64) -> usize| {
                let mut counts = vec![0usize; buckets];
                for &hash in &hashes {
                    counts[of(hash)] += 1;
                }
                let share = hashes.len() / buckets;
                counts
                    .iter()
                    .all(|&c| c > share * 3 / 4 && c < share * 5 / 4)
            };
            assert!(even(SHARDS, &shard_of), "shards, width {width}");
            assert!(
                even(16, &|h| HotGroups::slot_of(h) % 16),
                "hot slots, width {width}"
            );
            assert!(even(16, &|h| (h % 16) as usize), "low bits, width {width}");
        }
    }

    #[test]
    fn sums_without_keys_are_an_error_not_an_empty_table() {
        let frame = df!["weight" => [1i32, 2, 3]].expect("a frame");
        assert!(sum_by_keys(frame.lazy(), &[], "weight").is_err());
    }

    #[test]
    fn sums_by_coded_keys_are_polars_group_by_sums() {
        // Rows from a small generator: text keys long and short with missing values, a
        // number key with missing values, and weights with missing values, in several chunks.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut next = |n: u64| rng.random_range(0..n);
        let segments = [
            Some("Living with frailty and two long-term conditions"),
            Some("Healthy"),
            None,
            Some("Core20 and one PLUS group (most deprived)"),
        ];
        let sexes = [Some("F"), Some("M"), None];
        let mut frame: Option<DataFrame> = None;
        // More groups than a shard has hot slots, so that slots are taken over and flushed.
        for _ in 0..4 {
            let rows = 10_000;
            let chunk = df![
                "pcn_code" => (0..rows).map(|_| format!("U{:05}", next(2_000))).collect::<Vec<_>>(),
                "segment" => (0..rows).map(|_| segments[next(4) as usize]).collect::<Vec<_>>(),
                "imd_quintile" => (0..rows).map(|_| Some(next(6) as i64).filter(|q| *q > 0)).collect::<Vec<_>>(),
                "sex" => (0..rows).map(|_| sexes[next(3) as usize]).collect::<Vec<_>>(),
                "weight" => (0..rows).map(|_| Some(next(3) as i32).filter(|w| *w > 0)).collect::<Vec<_>>(),
            ]
            .expect("a frame");
            match frame.as_mut() {
                Some(frame) => {
                    frame.vstack_mut(&chunk).expect("same columns");
                }
                None => frame = Some(chunk),
            }
        }
        let frame = frame.expect("rows");
        let keys = ["pcn_code", "segment", "imd_quintile", "sex"];
        let sorted = |frame: DataFrame| {
            frame
                .lazy()
                .sort(keys, SortMultipleOptions::default().with_nulls_last(true))
                .collect()
                .expect("sorted")
        };
        let sums = sum_by_keys(frame.clone().lazy(), &keys, "weight").expect("summed");
        let mut columns = Vec::new();
        for (k, name) in keys.iter().enumerate() {
            let codes = sums.groups().map(|(codes, _)| codes[k]).collect();
            let values = sums.key(k).take(codes).expect("values");
            columns.push(values.with_name((*name).into()).into_column());
        }
        let totals: Vec<i64> = sums.groups().map(|(_, sum)| sum).collect();
        columns.push(Column::new("weight".into(), totals));
        let coded = DataFrame::new(sums.groups().count(), columns).expect("a frame");
        let grouped = frame
            .lazy()
            .group_by(keys.map(col))
            .agg([col("weight").sum().cast(DataType::Int64)])
            .collect()
            .expect("grouped");
        assert_eq!(coded.height(), grouped.height());
        assert!(
            coded.height() > SHARDS << HotGroups::SLOT_BITS,
            "the test needs more groups than hot slots"
        );
        assert_eq!(sorted(coded), sorted(grouped));
    }
}
