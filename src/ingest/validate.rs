//! Turning a contract into checks: parse every value, give each bad one a reason.
//!
//! For every contract column present in the file this module builds the parsed, typed value
//! (a polars expression) and a [`Reason`]: the cases, each a condition and a text, that refuse
//! a value. A row that any case refuses is rejected; the accepted plan keeps the parsed columns
//! only. The plan stays lazy: the rejects pass (`collect_rejects` or `stream_accepted` in the
//! parent module) runs it, and the pipeline's own pass may run it again.

use std::sync::Arc;

use polars::prelude::*;
use rayon::iter::{IntoParallelIterator, ParallelIterator};

use super::contract::{ColumnSpec, ColumnType, MISSING_MARKERS};
use super::source::ROW_INDEX;
use crate::pipeline::key_codes::text_codes;

/// Prefix of the columns that carry the raw text of a contract column.
pub const RAW_PREFIX: &str = "__raw_";
/// Prefix of the rejects pass's columns that carry a check's case ([`Reason::case`]).
pub const CASE_PREFIX: &str = "__case_";

/// Why a value is refused: the text of the first case whose condition holds.
///
/// Kept as cases, not as one text expression, so that the rows to refuse are found from the
/// conditions alone and the texts are built only for those rows: a text column for every
/// row, nearly all null, was a third of checking a large extract.
#[derive(Clone, Default)]
pub struct Reason {
    cases: Vec<(Expr, String)>,
}

impl Reason {
    /// Refuse with `text` when `condition` holds (and no earlier case did).
    pub fn when(mut self, condition: Expr, text: impl Into<String>) -> Self {
        self.cases.push((condition, text.into()));
        self
    }

    /// These cases, then `later`'s.
    fn then_also(mut self, later: Reason) -> Self {
        self.cases.extend(later.cases);
        self
    }

    /// How many cases: [`Reason::case`] gives this when none holds.
    pub fn cases(&self) -> usize {
        self.cases.len()
    }

    /// Whether any case holds (a null condition does not).
    pub fn applies(&self) -> Expr {
        self.cases
            .iter()
            .map(|(condition, _)| condition.clone().fill_null(lit(false)))
            .reduce(|a, b| a.or(b))
            .unwrap_or_else(|| lit(false))
    }

    /// The index (`UInt32`) of the first case that holds, or the number of cases when none
    /// does: [`Reason::text_of`] gives its text. A small integer a row, not a text: the
    /// rejects pass keeps it for every row it reads.
    pub fn case(&self) -> Expr {
        crate::lazy::first_case(self.cases.iter().map(|(condition, _)| condition.clone()))
    }

    /// The text of case `case` ([`Reason::case`]), or `None` when no case held.
    pub fn text_of(&self, case: u32) -> Option<&str> {
        let case = usize::try_from(case).ok()?;
        self.cases.get(case).map(|(_, text)| text.as_str())
    }
}

/// A row check beyond a single column's type: `column` names what the reject is about.
pub struct RowCheck {
    /// The column the reason refers to (shown in the rejects table).
    pub column: String,
    /// Why the row is refused. Evaluated on parsed columns.
    pub reason: Reason,
}

/// One way a row can be refused, as the rejects table shows it.
pub struct Check {
    /// The column shown in rejects.
    pub column: String,
    /// Why.
    pub reason: Reason,
    /// The raw column whose value is shown, if any.
    pub raw: Option<String>,
}

/// How the duplicate-key check finds the rows to refuse.
pub enum DuplicateKeys {
    /// A pass of its own over the key columns, before the checks (`duplicated_rows`).
    Find,
    /// These rows (sorted), found by the caller: none yet, when the rejects pass hashes the
    /// keys itself ([`key_hashes_of`]) and checks again only if a hash repeats.
    Known(Vec<IdxSize>),
}

/// The checked plan of one input.
pub struct Checked {
    /// Row index, raw text and parsed values: the checks' conditions and texts are evaluated
    /// on it, and the accepted rows are these minus the rows the rejects pass refused, so the
    /// checks (regular expressions, duplicate keys) run once.
    pub parsed: LazyFrame,
    /// Every check, in the order the rejects table lists a row's reasons.
    pub checks: Vec<Check>,
    /// Names of the output (parsed) columns, in contract order, then extras.
    pub outputs: Vec<String>,
    /// The unique key's columns when the file has them all (the duplicate check runs), else
    /// empty.
    pub unique_key: Vec<String>,
}

impl Checked {
    /// A predicate true for rows that some check refuses.
    pub fn refused(&self) -> Expr {
        self.checks
            .iter()
            .map(|check| check.reason.applies())
            .reduce(|a, b| a.or(b))
            .unwrap_or_else(|| lit(false))
    }
}

/// One column to parse and check: a contract column present in the file, or a typed extra
/// column found at run time (e.g. a wide condition flag on a patient list).
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// Canonical name (the output column).
    pub name: String,
    /// What it holds.
    pub ty: ColumnType,
    /// Whether an empty cell is allowed.
    pub nullable: bool,
}

impl ColumnPlan {
    /// The plan of a contract column.
    pub fn from_spec(spec: &ColumnSpec) -> Self {
        ColumnPlan {
            name: spec.name.to_string(),
            ty: spec.ty,
            nullable: spec.nullable,
        }
    }
}

/// Build the checked plan: raw columns, parsed columns, and the checks' reasons.
///
/// `columns` are parsed and checked; `text_extras` are kept as trimmed text; rows sharing a
/// `unique_key` are all rejected; `row_checks` run after parsing (they see the parsed columns
/// by canonical name). `rows` is the file's row count, to size the duplicate check's memory
/// (a wrong count costs time, not correctness). `duplicates` says how the rows sharing a key
/// are found.
#[allow(clippy::too_many_arguments)]
pub fn check(
    frame: LazyFrame,
    rows: u64,
    columns: &[ColumnPlan],
    text_extras: &[String],
    unique_key: &[&str],
    schema: &Schema,
    row_checks: Vec<RowCheck>,
    duplicates: DuplicateKeys,
) -> PolarsResult<Checked> {
    let mut raw_cols = vec![col(ROW_INDEX)];
    let mut text_cols = Vec::new();
    let mut missing_cols = Vec::new();
    let mut parsed_cols = Vec::new();
    let mut checks = Vec::new();
    let mut outputs = Vec::new();

    for plan in columns {
        let raw_name = format!("{RAW_PREFIX}{}", plan.name);
        raw_cols.push(col(plan.name.as_str()).alias(raw_name.as_str()));
        let source_dtype = schema
            .get(plan.name.as_str())
            .cloned()
            .unwrap_or(DataType::String);
        let parse = parse_column(plan, &raw_name, &source_dtype);
        text_cols.push(parse.text);
        missing_cols.push(parse.missing);
        parsed_cols.push(parse.parsed.alias(plan.name.as_str()));
        checks.push(Check {
            column: plan.name.clone(),
            reason: parse.reason,
            raw: Some(raw_name),
        });
        outputs.push(plan.name.clone());
    }
    for extra in text_extras {
        let raw_name = format!("{RAW_PREFIX}{extra}");
        raw_cols.push(col(extra.as_str()).alias(raw_name.as_str()));
        let trimmed = as_text(&raw_name, schema.get(extra.as_str()));
        parsed_cols.push(
            when(trimmed.clone().eq(lit("")))
                .then(lit(NULL).cast(DataType::String))
                .otherwise(trimmed)
                .alias(extra.as_str()),
        );
        outputs.push(extra.clone());
    }

    let parsed = with_canonical_values(
        frame
            .select(raw_cols)
            .with_columns(text_cols)
            .with_columns(missing_cols),
        columns,
    )
    .with_columns(parsed_cols);

    // Duplicate keys: every row sharing the key is rejected, and the reason says so. The rows
    // are found before the checks run (see [`duplicated_rows`]) and marked by row number.
    let key_present_in_file = unique_key
        .iter()
        .all(|k| columns.iter().any(|c| c.name == *k));
    let checks_key = !unique_key.is_empty() && key_present_in_file;
    if checks_key {
        let key_name = unique_key.join(", ");
        let raw = unique_key.first().map(|k| format!("{RAW_PREFIX}{k}"));
        let duplicated = match duplicates {
            DuplicateKeys::Find => duplicated_rows(&parsed, unique_key, rows)?,
            DuplicateKeys::Known(rows) => rows,
        };
        let reason = if duplicated.is_empty() {
            Reason::default()
        } else {
            let rows = Series::new("duplicated".into(), duplicated);
            Reason::default().when(
                col(ROW_INDEX).is_in(lit(rows).implode(false), false),
                format!("duplicate {key_name}: the same value is on more than one row"),
            )
        };
        checks.push(Check {
            column: key_name,
            reason,
            raw,
        });
    }

    for check in row_checks {
        let raw = columns
            .iter()
            .any(|c| c.name == check.column)
            .then(|| format!("{RAW_PREFIX}{}", check.column));
        checks.push(Check {
            column: check.column,
            reason: check.reason,
            raw,
        });
    }
    Ok(Checked {
        parsed,
        checks,
        outputs,
        unique_key: if checks_key {
            unique_key.iter().map(|k| k.to_string()).collect()
        } else {
            Vec::new()
        },
    })
}

/// The rows whose key (every part present) is also on another row, by row number, sorted.
///
/// `is_duplicated` over the whole key needs every key of the file in memory at once (a 30M-row
/// outcomes extract took 11 GiB and 14 s that way). Instead the key columns are streamed batch
/// by batch into one 64-bit hash per row; the hashes are sorted to find any that repeat, and
/// only the rows with a repeated hash are found (a second pass, hashing again) and compared
/// exactly: 8 bytes per row, and exact. A file without duplicates (the usual case) stops after
/// the sort.
fn duplicated_rows(
    parsed: &LazyFrame,
    unique_key: &[&str],
    rows: u64,
) -> PolarsResult<Vec<IdxSize>> {
    let keys = key_columns(parsed, unique_key);

    // First pass: the hashes alone, 8 bytes a row.
    let names: Vec<String> = unique_key.iter().map(|k| k.to_string()).collect();
    let hashes = crate::lazy::fold_batches(
        keys,
        KeyHashes::with_capacity(usize::try_from(rows).unwrap_or(0)),
        move |all: &mut KeyHashes, batch| {
            all.extend(&key_hashes(&batch, &names)?);
            Ok(())
        },
    )?;
    rows_of_repeated_keys(parsed, unique_key, hashes)
}

/// Every present key's hash of a file, kept in buckets by the hash's top bits as the batches
/// come, so that finding the hashes that repeat sorts each bucket alone (a few MiB, in cache)
/// in parallel, not the file's hashes at once: sorting 182M outcome rows' hashes (1.4 GiB) was
/// 6–10% of ingest's CPU at England scale. (Moving the hashes into buckets in place afterwards
/// was far slower: each move went to another bucket's page.)
pub struct KeyHashes {
    buckets: Vec<Vec<u64>>,
}

/// [`KeyHashes`]' buckets: 256, by the top 8 bits of a hash.
const HASH_BUCKET_BITS: u32 = 8;

impl KeyHashes {
    /// Room for `rows` hashes: each bucket takes its even share and a little more, so that
    /// buckets seldom grow (a bucket that grows copies itself, and a vector grown by doubling
    /// took twice the memory). The kernel zeroes the pages as they are first written.
    pub fn with_capacity(rows: usize) -> Self {
        let buckets = 1usize << HASH_BUCKET_BITS;
        let share = rows.div_ceil(buckets);
        let share = share + share / 16 + usize::from(rows > 0) * 64;
        KeyHashes {
            buckets: (0..buckets).map(|_| Vec::with_capacity(share)).collect(),
        }
    }

    /// Adds the hashes of a batch.
    pub fn extend(&mut self, hashes: &[u64]) {
        for &hash in hashes {
            // The top bits pick the bucket; `buckets` has one for each value they take.
            if let Some(bucket) = self
                .buckets
                .get_mut((hash >> (64 - HASH_BUCKET_BITS)) as usize)
            {
                bucket.push(hash);
            }
        }
    }

    /// The hashes found more than once. Each bucket is split again by the next
    /// [`SUB_BUCKET_BITS`] of its hashes, and each part's repeats found with a small table
    /// (in cache, as the part is; [`repeats_in_bucket`]): sorting each bucket to find them
    /// (ipnsort) took 2.5 times as long, 1.1–1.3 s for 182M hashes on two threads against
    /// 0.45 s.
    fn repeated(self) -> std::collections::HashSet<u64> {
        self.buckets
            .into_par_iter()
            .flat_map_iter(|bucket| repeats_in_bucket(&bucket))
            .collect()
    }
}

/// A bucket's parts: by the [`SUB_BUCKET_BITS`] after the bucket's own. 256 parts of the
/// 711,000 hashes a bucket holds for 182M outcome rows are 2,800 hashes each, whose table
/// (8,192 slots, 64 KiB) stays in a core's second-level cache.
const SUB_BUCKET_BITS: u32 = 8;

/// The hashes of one [`KeyHashes`] bucket found more than once (a hash there n times is
/// given n − 1 times).
fn repeats_in_bucket(bucket: &[u64]) -> Vec<u64> {
    let shift = 64 - HASH_BUCKET_BITS - SUB_BUCKET_BITS;
    let part_of = |hash: u64| ((hash >> shift) & ((1 << SUB_BUCKET_BITS) - 1)) as usize;
    // The hashes laid out part by part (a counting sort by part).
    let mut starts = [0usize; (1 << SUB_BUCKET_BITS) + 1];
    for &hash in bucket {
        starts[part_of(hash) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts;
    let mut by_part = vec![0u64; bucket.len()];
    for &hash in bucket {
        let part = part_of(hash);
        by_part[next[part]] = hash;
        next[part] += 1;
    }
    // Each part's hashes into an open-addressing table by their low bits (independent of the
    // bits that chose the bucket and the part), probing linearly: a slot holding the hash
    // already is a repeat. 0 marks an empty slot, so the hash 0 is counted aside.
    let mut repeats = Vec::new();
    let mut table: Vec<u64> = Vec::new();
    let mut zeros = 0usize;
    for range in starts.windows(2) {
        let part = &by_part[range[0]..range[1]];
        let slots = (2 * part.len()).next_power_of_two().max(16);
        table.clear();
        table.resize(slots, 0);
        let mask = slots - 1;
        for &hash in part {
            if hash == 0 {
                zeros += 1;
                continue;
            }
            let mut slot = hash as usize & mask;
            loop {
                match table[slot] {
                    0 => {
                        table[slot] = hash;
                        break;
                    }
                    held if held == hash => {
                        repeats.push(hash);
                        break;
                    }
                    _ => slot = (slot + 1) & mask,
                }
            }
        }
    }
    repeats.extend(std::iter::repeat_n(0, zeros.saturating_sub(1)));
    repeats
}

/// The row number and key columns of the rows whose key is present (every part not null).
fn key_columns(parsed: &LazyFrame, unique_key: &[&str]) -> LazyFrame {
    let present = unique_key
        .iter()
        .map(|k| col(*k).is_not_null())
        .reduce(|a, b| a.and(b))
        .unwrap_or_else(|| lit(true));
    let mut columns = vec![col(ROW_INDEX)];
    columns.extend(unique_key.iter().map(|k| col(*k)));
    parsed.clone().filter(present).select(columns)
}

/// The hash of each present key of a batch with the parsed key columns (rows whose key has a
/// null part are skipped), as `duplicated_rows`' first pass makes them: the rejects pass
/// that hands rows on makes them as it goes, then calls [`rows_of_repeated_keys`].
///
/// # Errors
/// If a key column is missing.
pub fn key_hashes_of(batch: &DataFrame, unique_key: &[String]) -> PolarsResult<Vec<u64>> {
    let mut present: Option<BooleanChunked> = None;
    for name in unique_key {
        let not_null = batch.column(name)?.is_not_null();
        present = Some(match present {
            None => not_null,
            Some(both) => both & not_null,
        });
    }
    match present {
        Some(present) if present.any() && !present.all() => {
            key_hashes(&batch.filter(&present)?, unique_key)
        }
        Some(present) if !present.any() => Ok(Vec::new()),
        _ => key_hashes(batch, unique_key),
    }
}

/// The rows (sorted) whose key is also on another row, given every present key's hash
/// (`hashes`): the usual file has no hash twice and stops after the buckets' sorts; otherwise
/// the rows with a repeated hash are found (a pass over the key columns) and compared exactly.
///
/// # Errors
/// If the key columns cannot be read.
pub fn rows_of_repeated_keys<K: AsRef<str>>(
    parsed: &LazyFrame,
    unique_key: &[K],
    hashes: KeyHashes,
) -> PolarsResult<Vec<IdxSize>> {
    let unique_key: Vec<&str> = unique_key.iter().map(AsRef::as_ref).collect();
    let unique_key = unique_key.as_slice();
    let keys = key_columns(parsed, unique_key);
    let names: Vec<String> = unique_key.iter().map(|k| k.to_string()).collect();
    let repeated = hashes.repeated();
    if repeated.is_empty() {
        return Ok(Vec::new());
    }
    // Second pass, only when a hash repeats: the rows that carry one.
    let candidates = crate::lazy::fold_batches(
        keys.clone(),
        Vec::new(),
        move |found: &mut Vec<IdxSize>, batch| {
            let hashes = key_hashes(&batch, &names)?;
            let rows = batch.column(ROW_INDEX)?.idx()?;
            found.extend(
                hashes
                    .iter()
                    .zip(rows.into_no_null_iter())
                    .filter(|(hash, _)| repeated.contains(hash))
                    .map(|(_, row)| row),
            );
            Ok(())
        },
    )?;
    let key = if let [single] = unique_key {
        col(*single)
    } else {
        as_struct(unique_key.iter().map(|k| col(*k)).collect())
    };
    let candidates = Series::new("candidates".into(), candidates);
    let exact = keys
        .filter(col(ROW_INDEX).is_in(lit(candidates).implode(false), false))
        .filter(key.is_duplicated())
        .select([col(ROW_INDEX)])
        .collect()?;
    let mut rows: Vec<IdxSize> = exact
        .column(ROW_INDEX)?
        .idx()?
        .into_no_null_iter()
        .collect();
    rows.sort_unstable();
    Ok(rows)
}

/// The hash of the key of every row of a batch of key columns.
fn key_hashes(batch: &DataFrame, key: &[String]) -> PolarsResult<Vec<u64>> {
    use std::hash::BuildHasher;
    let state = crate::lazy::key_hasher();
    let mut hashes = vec![0u64; batch.height()];
    for name in key {
        let text = batch.column(name)?.cast(&DataType::String)?;
        for (hash, value) in hashes.iter_mut().zip(text.str()?.iter()) {
            *hash = state.hash_one((*hash, value.unwrap_or_default()));
        }
    }
    Ok(hashes)
}

/// The raw column as trimmed text, whatever its stored type.
fn as_text(raw_name: &str, dtype: Option<&DataType>) -> Expr {
    let raw = col(raw_name);
    let text = match dtype {
        Some(DataType::String) | None => raw,
        Some(_) => raw.cast(DataType::String),
    };
    trimmed(text)
}

/// Text without leading and trailing whitespace, as `str().strip_chars(lit(NULL))`.
fn trimmed(text: Expr) -> Expr {
    unless_already(text, "trimmed", is_trimmed, |values| {
        values.strip_chars(&Column::full_null("".into(), 1, &DataType::Null))
    })
}

/// Whether `value` neither starts nor ends with whitespace. Both end bytes are looked at
/// first: an ASCII byte above the space is not whitespace, and that settles nearly every
/// value; decoding the end characters of every value (`starts_with(char::is_whitespace)`)
/// was 6% of ingest's CPU at England scale (benches/RESULTS.md, thirty-fourth round).
fn is_trimmed(value: &str) -> bool {
    let not_space = |byte: u8| byte > b' ' && byte.is_ascii();
    match value.as_bytes() {
        [] => true,
        [first, .., last] | [first @ last] if not_space(*first) && not_space(*last) => true,
        _ => !value.starts_with(char::is_whitespace) && !value.ends_with(char::is_whitespace),
    }
}

/// Whether `to_uppercase` leaves `value` as it is, judged cheaply: ASCII without lower case.
/// (Other text may be upper case already; it is upper-cased anyway.)
fn is_upper_ascii(value: &str) -> bool {
    !value
        .bytes()
        .any(|b| b.is_ascii_lowercase() || !b.is_ascii())
}

/// Upper-cased text, as `str().to_uppercase()`.
fn upper_cased(text: Expr) -> Expr {
    unless_already(text, "upper_cased", is_upper_ascii, |values| {
        Ok(values.to_uppercase())
    })
}

/// `convert` applied to a text column, except that a chunk whose every value is `already`
/// done is passed on as it is.
///
/// Extracts nearly always arrive trimmed and with upper-case codes, and polars' `strip_chars`
/// and `to_uppercase` build a new array of every value (the latter short codes a character at
/// a time through Unicode's tables): 28% of the split into parts at 10M. A scan of the values
/// costs far less than a copy. `already` must be true only of values `convert` leaves as they
/// are; it is a type of its own (not a `fn` pointer) so that the scan calls it inline.
fn unless_already(
    text: Expr,
    name: &'static str,
    already: impl Fn(&str) -> bool + Copy + Send + Sync + 'static,
    convert: fn(&StringChunked) -> PolarsResult<StringChunked>,
) -> Expr {
    text.map_with_fmt_str(
        move |column: Column| {
            let values = column.str()?;
            let done = values
                .downcast_iter()
                .all(|chunk| chunk.values_iter().all(already));
            if done {
                return Ok(column);
            }
            Ok(convert(values)?.into_column())
        },
        |_, field| Ok(field.clone()),
        name,
    )
}

/// Remove thousands separators, but only where they group digits in threes (`"29,199"`,
/// `"1,204,000.5"`): a stray comma (`"1,2"`) is left, so the value is refused, not misread.
fn without_thousands_separators(text: Expr) -> Expr {
    when(
        text.clone()
            .str()
            .contains(lit(r"^-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?$"), true),
    )
    .then(text.clone().str().replace_all(lit(","), lit(""), true))
    .otherwise(text)
}

/// Whether a trimmed text value is empty or a published "no value" marker.
fn is_missing_text(text: Expr) -> Expr {
    let markers = Series::new("markers".into(), MISSING_MARKERS);
    text.clone()
        .is_null()
        .or(text.clone().eq(lit("")))
        .or(upper_cased(text).is_in(lit(markers).implode(false), false))
}

fn null_of(dtype: DataType) -> Expr {
    lit(NULL).cast(dtype)
}

/// The expressions that parse and check one column, in three steps so that each intermediate
/// is computed once: trimmed text and "is missing", then the parsed value, then the reason
/// (which refers to the parsed column by name).
struct ColumnParse {
    /// `__t_<name>`: the raw value as trimmed text.
    text: Expr,
    /// `__m_<name>`: whether the cell is empty (or a "no value" marker, for numbers).
    missing: Expr,
    /// `<name>`: the typed value (null when missing or invalid).
    parsed: Expr,
    /// Why a value is refused.
    reason: Reason,
}

/// The parsed value and the reject reason of one column.
fn parse_column(spec: &ColumnPlan, raw_name: &str, source_dtype: &DataType) -> ColumnParse {
    let raw = col(raw_name);
    let typed_source = !matches!(source_dtype, DataType::String);
    let text_name = format!("__t_{}", spec.name);
    let missing_name = format!("__m_{}", spec.name);
    let text_def = as_text(raw_name, Some(source_dtype)).alias(text_name.as_str());
    let text = col(text_name.as_str());
    // Publications' "no value" markers (`*`, `..`, `NA`) stand for numbers, dates and flags;
    // in codes and text the same letters can be real values (ODS status `C` = closed).
    let missing_def = match spec.ty {
        ColumnType::Text
        | ColumnType::Code(_)
        | ColumnType::Enum(_)
        | ColumnType::Vocabulary(_) => text.clone().is_null().or(text.clone().eq(lit(""))),
        _ if typed_source => raw.clone().is_null(),
        _ => is_missing_text(text.clone()),
    }
    .alias(missing_name.as_str());
    let missing = col(missing_name.as_str());
    let present = missing.clone().not();
    let value = col(spec.name.as_str());
    let (parsed, invalid) = match spec.ty {
        ColumnType::Text => (
            when(missing.clone())
                .then(null_of(DataType::String))
                .otherwise(text.clone()),
            Reason::default(),
        ),
        ColumnType::Code(pattern) => {
            let parsed = when(missing.clone())
                .then(null_of(DataType::String))
                .otherwise(upper_cased(text.clone()));
            let reason = Reason::default().when(
                present
                    .clone()
                    .and(value.clone().str().contains(lit(pattern.regex), true).not()),
                format!(
                    "not a valid {} (expected {})",
                    pattern.what, pattern.expected
                ),
            );
            (parsed, reason)
        }
        ColumnType::Int { min, max } => {
            let parsed = if typed_source && source_dtype.is_primitive_numeric() {
                let as_float = raw.clone().cast(DataType::Float64);
                when(as_float.clone().eq(as_float.floor()))
                    .then(raw.clone().cast(DataType::Int64))
                    .otherwise(null_of(DataType::Int64))
            } else {
                let cleaned = without_thousands_separators(text.clone());
                let as_float = cleaned.clone().cast(DataType::Float64);
                let integral_float = as_float
                    .clone()
                    .eq(as_float.clone().floor())
                    .and(as_float.clone().abs().lt(lit(9.0e15)));
                when(missing.clone())
                    .then(null_of(DataType::Int64))
                    .otherwise(coalesce(&[
                        cleaned.cast(DataType::Int64),
                        when(integral_float)
                            .then(as_float.cast(DataType::Int64))
                            .otherwise(null_of(DataType::Int64)),
                    ]))
            };
            let below = if min == 0 {
                "negative count".to_string()
            } else {
                format!("below the minimum of {min}")
            };
            let reason = Reason::default()
                .when(
                    present.clone().and(value.clone().is_null()),
                    "not a whole number",
                )
                .when(value.clone().lt(lit(min)), below)
                .when(
                    value.clone().gt(lit(max)),
                    format!("above the maximum of {max}"),
                );
            (parsed, reason)
        }
        ColumnType::Float { min, max } => {
            let parsed = if typed_source && source_dtype.is_primitive_numeric() {
                raw.clone().cast(DataType::Float64)
            } else {
                when(missing.clone())
                    .then(null_of(DataType::Float64))
                    .otherwise(without_thousands_separators(text.clone()).cast(DataType::Float64))
            };
            let below = if min == 0.0 {
                "negative value".to_string()
            } else {
                format!("below the minimum of {min}")
            };
            let reason = Reason::default()
                .when(
                    present
                        .clone()
                        .and(value.clone().is_null().or(value.clone().is_finite().not())),
                    "not a number",
                )
                .when(value.clone().lt(lit(min)), below)
                .when(
                    value.clone().gt(lit(max)),
                    format!("above the maximum of {max}"),
                );
            (parsed, reason)
        }
        ColumnType::Date => {
            let parsed = if matches!(source_dtype, DataType::Date) {
                raw.clone()
            } else if matches!(source_dtype, DataType::Datetime(_, _)) {
                raw.clone().cast(DataType::Date)
            } else {
                let formats = [
                    "%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%d%b%Y", "%d-%b-%Y", "%d %b %Y",
                ];
                let attempts: Vec<Expr> = formats
                    .iter()
                    .map(|f| {
                        text.clone().str().to_date(StrptimeOptions {
                            format: Some((*f).into()),
                            strict: false,
                            exact: true,
                            cache: true,
                        })
                    })
                    .collect();
                when(missing.clone())
                    .then(null_of(DataType::Date))
                    .otherwise(coalesce(&attempts))
            };
            let reason = Reason::default().when(
                present.clone().and(value.clone().is_null()),
                "not a date (expected YYYY-MM-DD, YYYYMMDD, DD/MM/YYYY or 01JAN2021)",
            );
            (parsed, reason)
        }
        ColumnType::Bool => {
            let parsed = if matches!(source_dtype, DataType::Boolean) {
                raw.clone()
            } else {
                let upper = upper_cased(text.clone());
                let truthy = Series::new("t".into(), ["1", "Y", "YES", "TRUE", "T", "1.0"]);
                let falsy = Series::new("f".into(), ["0", "N", "NO", "FALSE", "F", "0.0"]);
                when(upper.clone().is_in(lit(truthy).implode(false), false))
                    .then(lit(true))
                    .when(upper.is_in(lit(falsy).implode(false), false))
                    .then(lit(false))
                    .otherwise(null_of(DataType::Boolean))
            };
            let reason = Reason::default().when(
                present.clone().and(value.clone().is_null()),
                "not a yes/no value (expected 1/0, Y/N or TRUE/FALSE)",
            );
            (parsed, reason)
        }
        ColumnType::Vocabulary(vocabulary) => {
            let parsed = when(missing.clone())
                .then(null_of(DataType::String))
                .otherwise(col(looked_up(&spec.name)));
            let reason = Reason::default().when(
                present.clone().and(value.clone().is_null()),
                format!(
                    "unknown {} (expected {})",
                    vocabulary.what, vocabulary.expected
                ),
            );
            (parsed, reason)
        }
        ColumnType::Enum(domain) => {
            let parsed = when(missing.clone())
                .then(null_of(DataType::String))
                .otherwise(col(looked_up(&spec.name)));
            let reason = Reason::default().when(
                present.clone().and(value.clone().is_null()),
                format!("unknown {} (expected {})", domain.what, domain.expected),
            );
            (parsed, reason)
        }
    };
    let reason = if spec.nullable {
        invalid
    } else {
        Reason::default()
            .when(missing, "missing value")
            .then_also(invalid)
    };
    ColumnParse {
        text: text_def,
        missing: missing_def,
        parsed,
        reason,
    }
}

/// The column holding a spelling-checked column's canonical value (null: not a known spelling).
fn looked_up(name: &str) -> String {
    format!("__canonical_{name}")
}

/// The accepted spellings of an enumerated or vocabulary column, upper-cased, with their
/// canonical values; `None` for other column types. The first canonical value of a repeated
/// spelling wins.
fn spellings(ty: ColumnType) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = match ty {
        ColumnType::Enum(domain) => domain
            .mapping
            .iter()
            .map(|(spelling, canonical)| (spelling.to_string(), canonical.to_string()))
            .collect(),
        ColumnType::Vocabulary(vocabulary) => (vocabulary.spellings)()
            .into_iter()
            .map(|(spelling, canonical)| (spelling, canonical.to_string()))
            .collect(),
        _ => return None,
    };
    let mut unique: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (spelling, canonical) in pairs {
        if !unique.iter().any(|(s, _)| *s == spelling) {
            unique.push((spelling, canonical));
        }
    }
    Some(unique)
}

/// Look up the canonical value of every enumerated or vocabulary column: the upper-cased text
/// found in a small table of spellings, one hash probe per value (a chain of comparisons costs
/// one per spelling, and the condition vocabulary has over a hundred).
///
/// A column function, not a join: a left join on the spellings gathered every column of the
/// file once per looked-up column (a quarter of reading an England-sized registered list),
/// and polars' `replace_strict` makes the streaming engine hold the whole file.
fn with_canonical_values(frame: LazyFrame, columns: &[ColumnPlan]) -> LazyFrame {
    let lookups: Vec<Expr> = columns
        .iter()
        .filter_map(|plan| {
            let pairs = spellings(plan.ty)?;
            Some(
                canonical_of(col(format!("__t_{}", plan.name)), pairs).alias(looked_up(&plan.name)),
            )
        })
        .collect();
    if lookups.is_empty() {
        frame
    } else {
        frame.with_columns(lookups)
    }
}

/// The canonical value of each text value's upper-cased spelling in `pairs` (spelling,
/// canonical), or null when it is not one of them.
///
/// Each value is looked up without copying it (ASCII is upper-cased into one reused buffer)
/// and the result is gathered by index from the few canonical values, so no text is copied
/// per row: every row of the registered list (sex, ethnicity) and of the conditions (their
/// codes) passes through this twice a run, in the rejects pass and in the split into parts.
fn canonical_of(text: Expr, pairs: Vec<(String, String)>) -> Expr {
    let mut canonical: Vec<String> = Vec::new();
    let mut slot_of: std::collections::HashMap<String, IdxSize, foldhash::fast::FixedState> =
        std::collections::HashMap::default();
    for (spelling, value) in pairs {
        let slot = match canonical.iter().position(|c| *c == value) {
            Some(slot) => slot,
            None => {
                canonical.push(value);
                canonical.len() - 1
            }
        };
        slot_of.insert(spelling, IdxSize::try_from(slot).unwrap_or(IdxSize::MAX));
    }
    let canonical = Series::new("canonical".into(), canonical);
    let slot_of = Arc::new(slot_of);
    text.map_with_fmt_str(
        move |column: Column| {
            let mut upper = String::new();
            // Each distinct text of a batch is looked up once (by its view): the rows of a
            // code column repeat a few dozen codes.
            let slots = text_codes(&column, |value| {
                // Codes nearly always arrive upper-cased: look them up as they are.
                let key = if is_upper_ascii(value) {
                    value
                } else if value.is_ascii() {
                    upper.clear();
                    upper.push_str(value);
                    upper.make_ascii_uppercase();
                    upper.as_str()
                } else {
                    upper = value.to_uppercase();
                    upper.as_str()
                };
                slot_of.get(key).copied()
            })?;
            Ok(canonical
                .take(&slots)?
                .with_name(column.name().clone())
                .into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::String)),
        "canonical",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicates(frame: DataFrame, key: &[&str]) -> Vec<IdxSize> {
        let frame = frame.lazy().with_row_index(ROW_INDEX, None);
        let rows = frame.clone().collect().expect("rows").height() as u64;
        let found = duplicated_rows(&frame, key, rows).expect("duplicates");
        // The row count only sizes memory: a wrong one finds the same rows.
        for wrong in [0, 1, rows * 3] {
            assert_eq!(
                duplicated_rows(&frame, key, wrong).expect("duplicates"),
                found
            );
        }
        found
    }

    /// `is_trimmed` by its end bytes is `str::trim` leaving the value as it is (the
    /// whitespace `strip_chars` removes), for ASCII and other ends of each kind.
    #[test]
    fn a_value_is_trimmed_when_trim_leaves_it() {
        let values = [
            "",
            "a",
            "ab",
            " ",
            "\t",
            "a ",
            " a",
            "a\n",
            "\x0b",
            "a\x1f",
            "\x1fa",
            "\x7f",
            "é",
            "éa",
            "aé",
            "\u{a0}a",
            "a\u{a0}",
            "a\u{3000}",
            "\u{85}",
            "x\u{2028}",
            "\u{2009}x",
            "日本",
        ];
        for value in values {
            assert_eq!(is_trimmed(value), value.trim() == value, "{value:?}");
        }
    }

    /// `trimmed` and `upper_cased` give polars' own results, whether a chunk takes the
    /// pass-through (already clean) or the conversion.
    #[test]
    fn trim_and_upper_case_match_polars() {
        let chunks: [&[Option<&str>]; 4] = [
            &[Some("E01000001"), Some("Y12345"), None, Some("")],
            &[Some(" e01000002"), Some("y1\t"), None],
            &[Some("straße"), Some("\u{a0}NBSP\u{a0}"), Some("ÉCOLE")],
            &[Some("ABC"), Some("abc"), Some("A B")],
        ];
        for values in chunks {
            let frame = df!["t" => values].expect("frame").lazy();
            let ours = frame
                .clone()
                .select([
                    trimmed(col("t")).alias("trim"),
                    upper_cased(col("t")).alias("upper"),
                ])
                .collect()
                .expect("ours");
            let polars = frame
                .select([
                    col("t").str().strip_chars(lit(NULL)).alias("trim"),
                    col("t").str().to_uppercase().alias("upper"),
                ])
                .collect()
                .expect("polars");
            assert!(
                ours.equals_missing(&polars),
                "{values:?}: {ours} vs {polars}"
            );
        }
    }

    #[test]
    fn a_reason_applies_when_a_case_holds_and_its_text_is_the_first_that_does() {
        let frame = df!["v" => [Some(-1i64), Some(5), Some(200), None]].expect("frame");
        let reason = Reason::default()
            .when(col("v").lt(lit(0)), "negative")
            .when(col("v").gt(lit(100)), "too big")
            .when(col("v").gt(lit(-10)), "anything above -10");
        let got = frame
            .lazy()
            .select([
                reason.applies().alias("applies"),
                reason.case().alias("case"),
                Reason::default().applies().alias("none_applies"),
                Reason::default().case().alias("none_case"),
            ])
            .collect()
            .expect("evaluated");
        let applies: Vec<Option<bool>> = got["applies"].bool().expect("bool").iter().collect();
        // A null value holds no case: not refused, no text (not a null predicate either).
        assert_eq!(applies, [Some(true), Some(true), Some(true), Some(false)]);
        let text: Vec<Option<&str>> = got["case"]
            .u32()
            .expect("case")
            .iter()
            .map(|case| reason.text_of(case.expect("never null")))
            .collect();
        assert_eq!(
            text,
            [
                Some("negative"),
                Some("anything above -10"),
                Some("too big"),
                None
            ]
        );
        let none: Vec<Option<bool>> = got["none_applies"].bool().expect("bool").iter().collect();
        assert_eq!(none, [Some(false); 4]);
        let none_case: Vec<Option<u32>> = got["none_case"].u32().expect("case").iter().collect();
        assert_eq!(none_case, [Some(0); 4], "no cases: index 0 is none");
        assert_eq!(Reason::default().text_of(0), None);
    }

    #[test]
    fn canonical_values_are_the_upper_cased_spellings_looked_up() {
        let pairs = vec![
            ("F".to_string(), "F".to_string()),
            ("FEMALE".to_string(), "F".to_string()),
            ("STRASSE".to_string(), "S".to_string()),
        ];
        let values = [
            Some("F"),
            Some("female"),
            Some("Female"),
            Some("FEMALE"),
            Some("straße"),
            Some("x"),
            Some(""),
            None,
        ];
        let frame = df!["t" => values].expect("frame");
        let got = frame
            .lazy()
            .select([canonical_of(col("t"), pairs)])
            .collect()
            .expect("looked up");
        let got: Vec<Option<&str>> = got
            .column("t")
            .expect("column")
            .str()
            .expect("text")
            .iter()
            .collect();
        assert_eq!(
            got,
            [
                Some("F"),
                Some("F"),
                Some("F"),
                Some("F"),
                Some("S"),
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn every_row_of_a_repeated_key_and_no_other() {
        let frame = df![
            "patient_id" => ["a", "b", "a", "c", "b", "d"],
        ]
        .expect("frame");
        assert_eq!(duplicates(frame, &["patient_id"]), [0, 1, 2, 4]);
    }

    #[test]
    fn composite_keys_compare_whole_parts_and_skip_missing_parts() {
        // ("ab", "c") and ("a", "bc") join to the same text but are different keys; rows with
        // a missing part are not duplicates of each other; a repeated whole key is.
        let frame = df![
            "patient_id" => [Some("ab"), Some("a"), Some("x"), Some("x"), None, None, Some("ab")],
            "indicator" => [Some("c"), Some("bc"), None, None, Some("y"), Some("y"), Some("c")],
        ]
        .expect("frame");
        assert_eq!(duplicates(frame, &["patient_id", "indicator"]), [0, 6]);
    }

    #[test]
    fn key_hashes_find_every_repeated_hash_in_every_bucket() {
        use std::collections::{HashMap, HashSet};
        // Hashes over every bucket (top bits), some twice or three times, in the same batch
        // or in later ones, more than a bucket's share in one bucket, and a file of no rows.
        let hash = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut all: Vec<u64> = (0..20_000).map(hash).collect();
        all.extend((0..20_000).step_by(7).map(hash));
        all.extend((0..20_000).step_by(301).map(hash));
        all.extend((0..3_000u64).map(|i| (0xAB << 56) | i));
        all.extend([0xAB << 56, u64::MAX, u64::MAX, 0]);
        // The hash 0 (an empty slot's mark) again, and hashes of one bucket and part whose
        // low bits agree, so that they probe past each other, some of them repeated.
        all.extend([0, 0xCD << 56, 0]);
        all.extend((0..600u64).map(|i| (0xCD << 56) | (i << 24)));
        all.extend((0..600u64).step_by(13).map(|i| (0xCD << 56) | (i << 24)));
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for h in &all {
            *counts.entry(*h).or_default() += 1;
        }
        let expected: HashSet<u64> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(h, _)| h)
            .collect();
        let mut hashes = KeyHashes::with_capacity(20_000);
        for batch in all.chunks(4_096) {
            hashes.extend(batch);
        }
        assert_eq!(hashes.repeated(), expected);
        assert!(KeyHashes::with_capacity(0).repeated().is_empty());
    }

    #[test]
    fn a_file_without_repeats_has_no_duplicates() {
        let ids: Vec<String> = (0..50_000).map(|i| format!("P{i:08}")).collect();
        let frame = df!["patient_id" => ids].expect("frame");
        assert!(duplicates(frame, &["patient_id"]).is_empty());
    }
}
