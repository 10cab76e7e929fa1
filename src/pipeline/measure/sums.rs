//! Practice sums: every indicator's weighted numerator and denominator summed by practice ×
//! breakdown value (× ESP2013 age band, for DSRs), in one streamed pass over the patients.
//!
//! Why not polars' `group_by`: the stage needs one grouping per breakdown of the same rows, and
//! the same again by age band for DSRs (twelve with the default breakdowns, some of which are
//! [`SUMMED_JOINTLY`]: the `all` rows are summed from one of them). As one streaming plan, polars' engine queues the rows for
//! whichever grouping is slowest (12 GiB at England scale); as separate plans it reads the
//! patients once per grouping, or hashes the practice code of every row once per grouping. Here each batch's key columns are turned into small
//! dense codes once, and every grouping adds the batch's terms into its own table of sums, the
//! groupings in parallel. Memory holds one batch and the sums.
//!
//! Within a grouping, sums are added in row order of batches taken in order, so a run gives the
//! same totals every time.

use std::borrow::Cow;

use polars::prelude::*;
use rayon::prelude::*;

use polars_arrow::bitmap::Bitmap;

use super::{ALL, WEIGHT_TERM, eligible_column, events_column};
use crate::pipeline::flag_bits;
use crate::pipeline::key_codes::{KeyCodes, batch_codes};
use crate::pipeline::segment::{RISK_TIER, SEGMENT};
use crate::schema;

/// The code columns of a grouping: indices into a batch's codes, which are the key columns'
/// ([`PracticeSums::keys`]) and then the joint ones' ([`PracticeSums::joint`]).
#[derive(Clone, Copy)]
pub(super) struct GroupingKeys {
    /// The breakdown's column, or the joint column of the breakdowns summed jointly; `None`
    /// for `all`.
    pub(super) value: Option<usize>,
    /// The age band's column, for DSRs.
    pub(super) age: Option<usize>,
}

/// Breakdowns summed jointly in the flat indicators' pass: one grouping whose value is the
/// tuple of their values, from which each breakdown's rows are rolled up (`roll_up`), rather
/// than one grouping each.
///
/// Adding a patient's terms into a grouping's sums is most of measure's work (in the
/// thirtieth round's profile at England, a quarter of its samples and a tenth more finding
/// the slots), and it is done once a grouping. The values of each set are few and restricted
/// upstream: the IMD's deciles and quintiles and Core20 are the area's, and so go together
/// (ten tuples over the patients), and sex has four codes; a segmentation has its few segments
/// and four tiers (23 tuples at 1M). So a practice has a few dozen tuples against thousands of
/// patients, and the default eight flat groupings are four: measure took 7.9–8.1 s at England
/// against 8.2–10.4 s in alternated runs (benches/RESULTS.md, thirty-first round). Ethnic group and age band stay
/// alone, and so does every breakdown of the DSRs' pass by age band: their rows are eight
/// terms, one vector, so finding a row's slot is most of their cost, and a tuple × age band
/// would spread their slot tables wide (tried: no gain).
const SUMMED_JOINTLY: [&[&str]; 2] = [
    &[
        schema::IMD_DECILE,
        schema::IMD_QUINTILE,
        schema::CORE20,
        schema::SEX,
    ],
    &[SEGMENT, RISK_TIER],
];

/// The most entries a [`JointCodes`] index may have (64 MiB of codes): far more than the
/// sets of [`SUMMED_JOINTLY`] can need, with their values restricted upstream.
const JOINT_INDEX_LIMIT: usize = 1 << 24;

/// The codes of the tuples of several key columns' codes (breakdowns [`SUMMED_JOINTLY`]): each
/// tuple gets the next code the first time it is seen, as a key column's values do.
pub(super) struct JointCodes {
    /// The key columns, as indices into [`PracticeSums::keys`].
    pub(super) columns: Vec<usize>,
    /// Each joint code's tuple: one code of each of `columns`, in order.
    tuples: Vec<u32>,
    /// How many codes of each column `index` has room for.
    room: Vec<usize>,
    /// By a tuple's number (its codes as the digits of a number whose radices are `room`):
    /// its joint code, or [`SlotTable::EMPTY`].
    index: Vec<u32>,
}

impl JointCodes {
    fn new(columns: Vec<usize>) -> Self {
        let room = vec![0; columns.len()];
        JointCodes {
            columns,
            tuples: Vec::new(),
            room,
            index: Vec::new(),
        }
    }

    /// How many tuples have a code.
    pub(super) fn len(&self) -> usize {
        self.tuples.len() / self.columns.len()
    }

    /// The code of the `p`th column in the tuple of joint `code`.
    pub(super) fn column_code(&self, code: usize, p: usize) -> u32 {
        self.tuples[code * self.columns.len() + p]
    }

    /// Make room in the index for `counts` codes of each key column (indexed as
    /// [`PracticeSums::keys`]): room for twice as many, so that the index is laid out again
    /// only a few times, in the first batches.
    fn reserve(&mut self, counts: &[usize]) -> PolarsResult<()> {
        if self
            .columns
            .iter()
            .zip(&self.room)
            .all(|(&k, &room)| counts[k] <= room)
        {
            return Ok(());
        }
        let room: Vec<usize> = self
            .columns
            .iter()
            .map(|&k| (2 * counts[k]).max(4))
            .collect();
        let entries = room
            .iter()
            .try_fold(1usize, |entries, &room| entries.checked_mul(room))
            .filter(|&entries| entries <= JOINT_INDEX_LIMIT)
            .ok_or_else(|| {
                polars_err!(ComputeError: "internal: too many values to sum jointly ({} codes of the columns)", counts.iter().map(ToString::to_string).collect::<Vec<_>>().join(" × "))
            })?;
        self.room = room;
        self.index = vec![SlotTable::EMPTY; entries];
        for (code, tuple) in self.tuples.chunks_exact(self.columns.len()).enumerate() {
            let number = tuple
                .iter()
                .zip(&self.room)
                .fold(0, |number, (&c, &room)| number * room + c as usize);
            self.index[number] = code as u32;
        }
        Ok(())
    }

    /// The joint code of each row of a batch, from its key columns' codes (`codes`, indexed as
    /// [`PracticeSums::keys`]; `counts`: how many codes each has so far).
    ///
    /// # Errors
    /// If the tuples could number more than [`JOINT_INDEX_LIMIT`].
    fn codes(&mut self, codes: &[Vec<u32>], counts: &[usize]) -> PolarsResult<Vec<u32>> {
        self.reserve(counts)?;
        // Each row's number, one column at a time (a loop the compiler vectorises).
        let mut numbers = codes[self.columns[0]].clone();
        for (&k, &room) in self.columns.iter().zip(&self.room).skip(1) {
            for (number, &code) in numbers.iter_mut().zip(&codes[k]) {
                *number = *number * room as u32 + code;
            }
        }
        let JointCodes {
            columns,
            tuples,
            room,
            index,
        } = self;
        for number in &mut numbers {
            let entry = &mut index[*number as usize];
            if *entry == SlotTable::EMPTY {
                *entry = (tuples.len() / columns.len()) as u32;
                // The tuple's codes are the number's digits, last column lowest.
                let at = tuples.len();
                let mut rest = *number as usize;
                tuples.resize(at + columns.len(), 0);
                for p in (0..columns.len()).rev() {
                    tuples[at + p] = (rest % room[p]) as u32;
                    rest /= room[p];
                }
            }
            *number = *entry;
        }
        Ok(numbers)
    }
}

/// The practice, value and age codes of a slot.
#[derive(Clone, Copy)]
pub(super) struct SlotKey {
    pub(super) practice: u32,
    pub(super) value: u32,
    pub(super) age: u32,
}

/// The slot of each (practice, value, age) code triple. The codes are small and dense (a few
/// thousand practices, tens of values and bands), so the table is one flat array by practice,
/// then value, then age, and a slot is found by arithmetic and one load: a grouping looks one
/// up for nearly every row, as the age band changes from row to row. (As nested vectors, with
/// the key compared to the last row's first, the lookups were a fifth of measure's samples at
/// England.)
#[derive(Default)]
struct SlotTable {
    /// Value codes, and age codes, a practice has room for.
    values: usize,
    ages: usize,
    /// By practice code, then value code, then age code; [`SlotTable::EMPTY`] where none yet.
    slots: Vec<u32>,
}

impl SlotTable {
    const EMPTY: u32 = u32::MAX;

    /// Room for every code below `practices`, `values` and `ages`. A practice's room grows
    /// (the table laid out again) only when a key column has a value not seen before, which
    /// happens in the first batches.
    fn reserve(&mut self, practices: usize, values: usize, ages: usize) {
        if values > self.values || ages > self.ages {
            let old = SlotTable {
                values: self.values,
                ages: self.ages,
                slots: std::mem::take(&mut self.slots),
            };
            let old_practices = old.slots.len().checked_div(old.values * old.ages);
            self.values = values.max(old.values);
            self.ages = ages.max(old.ages);
            let room = practices.max(old_practices.unwrap_or(0)) * self.values * self.ages;
            self.slots = vec![Self::EMPTY; room];
            for (cell, &slot) in old.slots.iter().enumerate() {
                if slot != Self::EMPTY {
                    let (practice, rest) = (
                        cell / (old.values * old.ages),
                        cell % (old.values * old.ages),
                    );
                    let at = self.cell(
                        practice as u32,
                        (rest / old.ages) as u32,
                        (rest % old.ages) as u32,
                    );
                    self.slots[at] = slot;
                }
            }
        }
        let room = practices * self.values * self.ages;
        if self.slots.len() < room {
            self.slots.resize(room, Self::EMPTY);
        }
    }

    /// Where the slot of a code triple is in [`SlotTable::slots`]; the codes must have room
    /// ([`SlotTable::reserve`]).
    #[inline]
    fn cell(&self, practice: u32, value: u32, age: u32) -> usize {
        (practice as usize * self.values + value as usize) * self.ages + age as usize
    }
}

/// One indicator's columns in a batch, before they are weighted.
struct IndicatorColumns<'a> {
    /// The rows whose terms count: eligible, with a weight.
    counted: Bitmap,
    events: Events<'a>,
}

/// A person's events: a flag (a proportion's numerator), or a count.
enum Events<'a> {
    Flags(Bitmap),
    Counts(Cow<'a, [f64]>),
}

impl<'a> IndicatorColumns<'a> {
    /// The i-th indicator's columns of `batch` ([`eligible_column`], [`events_column`]);
    /// `weighed`: the rows with a weight, when some have none.
    fn of(batch: &'a DataFrame, i: usize, weighed: Option<&Bitmap>) -> PolarsResult<Self> {
        let eligible = flag_bits(batch.column(&eligible_column(i))?)?;
        let counted = match weighed {
            Some(weighed) => &eligible & weighed,
            None => eligible,
        };
        let name = events_column(i);
        let events = if batch.column(&name)?.dtype() == &DataType::Boolean {
            Events::Flags(flag_bits(batch.column(&name)?)?)
        } else {
            Events::Counts(term_values(batch, &name)?)
        };
        Ok(IndicatorColumns { counted, events })
    }
}

/// The rows of `batch` with a weight ([`WEIGHT_TERM`]), when some have none.
fn weighed_rows(batch: &DataFrame) -> PolarsResult<Option<Bitmap>> {
    let weights = batch.column(WEIGHT_TERM)?;
    if weights.null_count() == 0 {
        return Ok(None);
    }
    let weights = weights.f64()?.rechunk();
    Ok(weights
        .downcast_iter()
        .next()
        .and_then(|array| array.validity().cloned()))
}

/// The values of one float column of a batch, missing as 0: the column's own memory when it is
/// one chunk of floats with none missing (as the plan computes them), else a filled copy.
fn term_values<'a>(batch: &'a DataFrame, name: &str) -> PolarsResult<Cow<'a, [f64]>> {
    let column = batch.column(name)?;
    if let Ok(values) = column.f64()
        && let Ok(slice) = values.cont_slice()
    {
        return Ok(Cow::Borrowed(slice));
    }
    crate::pipeline::f64_values(batch, name, 0.0).map(Cow::Owned)
}

/// Rows a block of [`PracticeSums::add`]: every grouping adds a block's terms while they are
/// in cache (2,048 rows × 40 terms × 8 bytes at most here, well inside a core's L2).
const BLOCK: usize = 2048;

/// A row's terms are padded to a multiple of this many, so that a row is added to its sums in
/// whole vector registers (8 doubles: one AVX-512 register, two AVX2 ones), with no odd terms
/// left over.
const LANES: usize = 8;

/// The padded width of a row of `indicators` terms: each one's numerator and denominator.
fn row_width(indicators: usize) -> usize {
    (2 * indicators).next_multiple_of(LANES)
}

/// The terms of `indicators` for `rows`, row by row into `out`: each row's numerator and
/// denominator of each indicator in order, padded to [`row_width`], so a grouping adds a
/// row's terms to its sums as one contiguous run. A counted row's denominator is its weight
/// and its numerator weight × events (the weight where a flag is set); a row not counted has
/// 0 for both.
///
/// Each of a dozen groupings read the terms column by column before (two columns per
/// indicator, forty streams a row), which was most of the measure stage at England. The rows
/// are laid out eight at a time by the AVX-512 build when the CPU has it ([`row_major_avx512`]),
/// and the rest one at a time ([`row_major_rows`]); both write the same terms.
fn row_major(
    columns: &[IndicatorColumns<'_>],
    weights: &[f64],
    indicators: &[usize],
    rows: std::ops::Range<usize>,
    out: &mut Vec<f64>,
) {
    let width = row_width(indicators.len());
    // Not cleared first: every term is written below, and the padding, zero when the vector
    // grows, is never written by the row-by-row loop. (Cleared and zeroed again, it was a
    // memset of every block.)
    out.resize(rows.len() * width, 0.0);
    if width == 0 {
        return;
    }
    // The rows the AVX-512 build lays out; the row-by-row loop does the rest.
    #[cfg(target_arch = "x86_64")]
    let laid_out = if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above), the only requirement of
        // calling a function compiled with `target_feature(enable = "avx512f")`.
        unsafe { row_major_avx512(columns, weights, indicators, rows.clone(), out) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let laid_out = 0;
    row_major_rows(
        columns,
        weights,
        indicators,
        rows.start + laid_out..rows.end,
        &mut out[laid_out * width..],
    );
}

/// The bits of a bitmap's bytes and its offset into them, read by index ([`bit`], [`bits8`]):
/// as iterators zipped with the rows, the row-by-row loop took 1.6 times as long, and through
/// `Bitmap::get_bit` (its length checked, its bytes found again each call) 1.3 to 1.6 times.
fn bit_slice(bitmap: &Bitmap) -> (&[u8], usize) {
    let (bytes, offset, _) = bitmap.as_slice();
    (bytes, offset)
}

/// Row `row`'s bit.
#[inline(always)]
fn bit((bytes, offset): (&[u8], usize), row: usize) -> bool {
    let at = offset + row;
    bytes[at >> 3] & (1 << (at & 7)) != 0
}

/// The bits of rows `row..row + 8`, row `row`'s lowest: a mask of eight lanes.
#[inline(always)]
fn bits8((bytes, offset): (&[u8], usize), row: usize) -> u8 {
    let at = offset + row;
    let (byte, shift) = (at >> 3, at & 7);
    // The next byte holds the rest when the rows start inside a byte (and exists then).
    let next = if shift == 0 { 0 } else { bytes[byte + 1] };
    (u16::from_le_bytes([bytes[byte], next]) >> shift) as u8
}

/// [`row_major`]'s terms one row at a time, into `out` (`rows.len()` rows of [`row_width`]).
fn row_major_rows(
    columns: &[IndicatorColumns<'_>],
    weights: &[f64],
    indicators: &[usize],
    rows: std::ops::Range<usize>,
    out: &mut [f64],
) {
    let width = row_width(indicators.len());
    let weights = &weights[rows.clone()];
    for (j, &i) in indicators.iter().enumerate() {
        let IndicatorColumns { counted, events } = &columns[i];
        let counted = bit_slice(counted);
        let rows_out = out.chunks_exact_mut(width).zip(weights).zip(rows.clone());
        match events {
            Events::Flags(flags) => {
                let flags = bit_slice(flags);
                for ((row, &weight), r) in rows_out {
                    let counted = bit(counted, r);
                    let flagged = counted & bit(flags, r);
                    row[2 * j] = if flagged { weight } else { 0.0 };
                    row[2 * j + 1] = if counted { weight } else { 0.0 };
                }
            }
            Events::Counts(counts) => {
                for ((row, &weight), r) in rows_out {
                    let counted = bit(counted, r);
                    row[2 * j] = if counted { weight * counts[r] } else { 0.0 };
                    row[2 * j + 1] = if counted { weight } else { 0.0 };
                }
            }
        }
    }
}

/// [`row_major`]'s terms eight rows at a time, for as many whole eights as `rows` holds;
/// returns how many rows it laid out (the first of `rows`). Each eight rows' terms are made
/// as vectors of eight rows, a term at a time (the flags as masks: a lane is the weight or
/// 0, a count's the weight × the count, multiplied as the row-by-row loop multiplies it), and
/// turned to eight rows of terms eight terms at a time (an 8 × 8 transpose), so each row is
/// written whole, in order, padding (zeros) too.
///
/// The row-by-row loop writes each term of a block's 2,048 rows before the next, a row's
/// width apart: a quarter of measure's samples at England. Timed alone over a million rows of
/// 20 indicators, it took 20–23 ns a row, this 9–10 ns (benches/RESULTS.md, thirty-second
/// round).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn row_major_avx512(
    columns: &[IndicatorColumns<'_>],
    weights: &[f64],
    indicators: &[usize],
    rows: std::ops::Range<usize>,
    out: &mut [f64],
) -> usize {
    use std::arch::x86_64::{
        __m512d, _mm512_loadu_epi64, _mm512_loadu_pd, _mm512_maskz_mov_pd, _mm512_maskz_mul_pd,
        _mm512_permutex2var_pd, _mm512_setzero_pd, _mm512_shuffle_f64x2, _mm512_storeu_pd,
        _mm512_unpackhi_pd, _mm512_unpacklo_pd,
    };
    let width = row_width(indicators.len());
    let eights = rows.len() / LANES;
    // Each indicator's bytes and offsets, found once rather than every eight rows.
    enum Read<'b> {
        Flags((&'b [u8], usize)),
        Counts(&'b [f64]),
    }
    let read: Vec<((&[u8], usize), Read<'_>)> = indicators
        .iter()
        .map(|&i| {
            let IndicatorColumns { counted, events } = &columns[i];
            let events = match events {
                Events::Flags(flags) => Read::Flags(bit_slice(flags)),
                Events::Counts(counts) => Read::Counts(counts),
            };
            (bit_slice(counted), events)
        })
        .collect();
    // The lanes the second step of the transpose takes from its two vectors (0–7 from the
    // first, 8–15 from the second): the rows of the lower or the upper pair of each 128 bits.
    const LOWER: [i64; 8] = [0, 1, 8, 9, 4, 5, 12, 13];
    const UPPER: [i64; 8] = [2, 3, 10, 11, 6, 7, 14, 15];
    // SAFETY: each is eight 64-bit integers, an unaligned load.
    let (lower, upper) = unsafe {
        (
            _mm512_loadu_epi64(LOWER.as_ptr()),
            _mm512_loadu_epi64(UPPER.as_ptr()),
        )
    };
    // An indicator's numerator and denominator for the eight rows from `$r` (zeros for
    // padding: `None`). A macro, not a closure: the closure was not inlined, a call each two
    // terms.
    macro_rules! terms {
        ($indicator:expr, $r:expr, $weight:expr) => {
            match $indicator {
                None => (_mm512_setzero_pd(), _mm512_setzero_pd()),
                Some((counted, events)) => {
                    let counted = bits8(*counted, $r);
                    let numerator = match events {
                        Read::Flags(flags) => {
                            _mm512_maskz_mov_pd(counted & bits8(*flags, $r), $weight)
                        }
                        Read::Counts(counts) => {
                            let count_lanes = &counts[$r..$r + LANES];
                            // SAFETY: eight doubles, an unaligned load.
                            let count = unsafe { _mm512_loadu_pd(count_lanes.as_ptr()) };
                            _mm512_maskz_mul_pd(counted, $weight, count)
                        }
                    };
                    (numerator, _mm512_maskz_mov_pd(counted, $weight))
                }
            }
        };
    }
    for eight in 0..eights {
        let r = rows.start + eight * LANES;
        let weight_lanes = &weights[r..r + LANES];
        // SAFETY: eight doubles, an unaligned load.
        let weight = unsafe { _mm512_loadu_pd(weight_lanes.as_ptr()) };
        let out_rows = &mut out[eight * LANES * width..(eight + 1) * LANES * width];
        for chunk in 0..width / LANES {
            // Terms 8 × chunk .. 8 × chunk + 8, each a vector of the eight rows: the
            // numerator and denominator of four indicators, or padding. Named, not an array
            // indexed in a loop, so that they stay in registers.
            let first = chunk * LANES / 2;
            let ((t0, t1), (t2, t3), (t4, t5), (t6, t7)) = (
                terms!(read.get(first), r, weight),
                terms!(read.get(first + 1), r, weight),
                terms!(read.get(first + 2), r, weight),
                terms!(read.get(first + 3), r, weight),
            );
            // Pairs of terms, rows 0 2 4 6 (lo) and 1 3 5 7 (hi).
            let (u0, u1) = (_mm512_unpacklo_pd(t0, t1), _mm512_unpackhi_pd(t0, t1));
            let (u2, u3) = (_mm512_unpacklo_pd(t2, t3), _mm512_unpackhi_pd(t2, t3));
            let (u4, u5) = (_mm512_unpacklo_pd(t4, t5), _mm512_unpackhi_pd(t4, t5));
            let (u6, u7) = (_mm512_unpacklo_pd(t6, t7), _mm512_unpackhi_pd(t6, t7));
            // Fours of terms: rows 0|4, 2|6, 1|5, 3|7 of terms 0–3, then of terms 4–7.
            let v0 = _mm512_permutex2var_pd(u0, lower, u2);
            let v1 = _mm512_permutex2var_pd(u0, upper, u2);
            let v2 = _mm512_permutex2var_pd(u1, lower, u3);
            let v3 = _mm512_permutex2var_pd(u1, upper, u3);
            let v4 = _mm512_permutex2var_pd(u4, lower, u6);
            let v5 = _mm512_permutex2var_pd(u4, upper, u6);
            let v6 = _mm512_permutex2var_pd(u5, lower, u7);
            let v7 = _mm512_permutex2var_pd(u5, upper, u7);
            // Rows: the lower halves (0x44) or the upper halves (0xEE) of a pair of fours.
            let row_terms: [__m512d; LANES] = [
                _mm512_shuffle_f64x2::<0x44>(v0, v4),
                _mm512_shuffle_f64x2::<0x44>(v2, v6),
                _mm512_shuffle_f64x2::<0x44>(v1, v5),
                _mm512_shuffle_f64x2::<0x44>(v3, v7),
                _mm512_shuffle_f64x2::<0xEE>(v0, v4),
                _mm512_shuffle_f64x2::<0xEE>(v2, v6),
                _mm512_shuffle_f64x2::<0xEE>(v1, v5),
                _mm512_shuffle_f64x2::<0xEE>(v3, v7),
            ];
            for (k, terms) in row_terms.into_iter().enumerate() {
                let at = k * width + chunk * LANES;
                let to = &mut out_rows[at..at + LANES];
                // SAFETY: eight doubles, an unaligned store.
                unsafe { _mm512_storeu_pd(to.as_mut_ptr(), terms) };
            }
        }
    }
    eights * LANES
}

/// Add each row of `row_terms` (rows of `width` terms, a multiple of [`LANES`]) to the sums of
/// its slot, choosing the AVX-512 or AVX2 build of the same loop when the CPU has it. The
/// terms are added one by one in row order whichever build runs, so the sums are the same.
/// A width of 0 (no indicators) adds nothing, and the builds are called only otherwise.
fn add_rows(sums: &mut [f64], slots: &[u32], row_terms: &[f64], width: usize) {
    if width == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above), the only requirement of
            // calling a function compiled with `target_feature(enable = "avx512f")`.
            unsafe { add_rows_avx512(sums, slots, row_terms, width) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of
            // calling a function compiled with `target_feature(enable = "avx2")`.
            unsafe { add_rows_avx2(sums, slots, row_terms, width) };
            return;
        }
    }
    add_rows_portable(sums, slots, row_terms, width);
}

// The vector builds use the instructions by name: left to the compiler, the lanes were added
// two chunks at a time, and a row's odd chunk (every DSR grouping's only one) one term at a
// time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn add_rows_avx512(sums: &mut [f64], slots: &[u32], row_terms: &[f64], width: usize) {
    use std::arch::x86_64::{_mm512_add_pd, _mm512_loadu_pd, _mm512_storeu_pd};
    for (&slot, terms) in slots.iter().zip(row_terms.chunks_exact(width)) {
        let slot = slot as usize;
        let sums = &mut sums[slot * width..(slot + 1) * width];
        for (sums, terms) in sums.chunks_exact_mut(LANES).zip(terms.chunks_exact(LANES)) {
            // SAFETY: each chunk is LANES = 8 doubles, one 512-bit vector; the loads and the
            // store are unaligned ones.
            unsafe {
                let sum = _mm512_add_pd(
                    _mm512_loadu_pd(sums.as_ptr()),
                    _mm512_loadu_pd(terms.as_ptr()),
                );
                _mm512_storeu_pd(sums.as_mut_ptr(), sum);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_rows_avx2(sums: &mut [f64], slots: &[u32], row_terms: &[f64], width: usize) {
    use std::arch::x86_64::{_mm256_add_pd, _mm256_loadu_pd, _mm256_storeu_pd};
    for (&slot, terms) in slots.iter().zip(row_terms.chunks_exact(width)) {
        let slot = slot as usize;
        let sums = &mut sums[slot * width..(slot + 1) * width];
        for (sums, terms) in sums.chunks_exact_mut(4).zip(terms.chunks_exact(4)) {
            // SAFETY: each chunk is 4 doubles, one 256-bit vector (LANES is a multiple of 4);
            // the loads and the store are unaligned ones.
            unsafe {
                let sum = _mm256_add_pd(
                    _mm256_loadu_pd(sums.as_ptr()),
                    _mm256_loadu_pd(terms.as_ptr()),
                );
                _mm256_storeu_pd(sums.as_mut_ptr(), sum);
            }
        }
    }
}

fn add_rows_portable(sums: &mut [f64], slots: &[u32], row_terms: &[f64], width: usize) {
    for (&slot, terms) in slots.iter().zip(row_terms.chunks_exact(width)) {
        let slot = slot as usize;
        let sums = &mut sums[slot * width..(slot + 1) * width];
        for (sum, term) in sums.iter_mut().zip(terms) {
            *sum += term;
        }
    }
}

/// Sums of some indicators' terms by practice × one breakdown's value, or the tuple of the
/// values of breakdowns [`SUMMED_JOINTLY`] (× age band).
pub(super) struct Grouping {
    /// The breakdowns its value stands for: one, or those summed jointly (in the order of
    /// their joint column's tuples); `all` when there are no breakdowns.
    pub(super) breakdowns: Vec<String>,
    pub(super) keys: GroupingKeys,
    /// The indicators summed, as indices into the run's indicators.
    pub(super) indicators: Vec<usize>,
    slots: SlotTable,
    /// Practice, value and age codes of each slot.
    pub(super) slot_keys: Vec<SlotKey>,
    /// Slot by slot: numerator and denominator of each of `indicators`, padded to
    /// [`Grouping::width`].
    pub(super) sums: Vec<f64>,
    /// The slots of a block's rows (kept to reuse its memory).
    block_slots: Vec<u32>,
}

impl Grouping {
    /// The terms a slot of [`Grouping::sums`] holds: [`row_width`] of its indicators.
    pub(super) fn width(&self) -> usize {
        row_width(self.indicators.len())
    }

    /// Make room in the slot table for every code the key columns have so far (`codes`: how
    /// many each column has).
    fn reserve(&mut self, codes: &[usize]) {
        let count = |key: Option<usize>| key.map_or(1, |k| codes[k]);
        self.slots.reserve(
            codes[PRACTICE_KEY],
            count(self.keys.value),
            count(self.keys.age),
        );
    }

    /// Add the batch's `rows`: the batch's key codes (with room in the slot table:
    /// [`Grouping::reserve`]), and the terms of this grouping's indicators for those rows, row
    /// by row ([`row_major`] of `self.indicators`).
    fn add(&mut self, codes: &[Vec<u32>], rows: std::ops::Range<usize>, row_terms: &[f64]) {
        let width = row_width(self.indicators.len());
        // A grouping without a value or an age column has code 0 for it in every row: read
        // from zeros, the loop below is the same for every grouping, with no branch a row.
        static ZEROS: [u32; BLOCK] = [0; BLOCK];
        let column = |key: Option<usize>| match key {
            Some(k) => &codes[k][rows.clone()],
            None => &ZEROS[..rows.len()],
        };
        let practices = &codes[PRACTICE_KEY][rows.clone()];
        let (values, ages) = (column(self.keys.value), column(self.keys.age));
        let Grouping {
            slots,
            slot_keys,
            sums,
            block_slots,
            ..
        } = self;
        block_slots.clear();
        for ((&practice, &value), &age) in practices.iter().zip(values).zip(ages) {
            let cell = slots.cell(practice, value, age);
            let mut slot = slots.slots[cell];
            if slot == SlotTable::EMPTY {
                slot = slot_keys.len() as u32;
                slots.slots[cell] = slot;
                slot_keys.push(SlotKey {
                    practice,
                    value,
                    age,
                });
                sums.resize(sums.len() + width, 0.0);
            }
            block_slots.push(slot);
        }
        add_rows(sums, block_slots, row_terms, width);
    }
}

/// Where the practice code is among the key columns.
pub(super) const PRACTICE_KEY: usize = 0;

/// Practice sums being added up, batch by batch.
pub(super) struct PracticeSums {
    /// Key columns: the practice first, then the age band (when there are DSRs) and the
    /// breakdowns, each once.
    pub(super) keys: Vec<KeyCodes>,
    /// The joint columns of the breakdowns summed jointly: a batch's codes of the `j`th are
    /// column `keys.len() + j` of its codes ([`GroupingKeys`]).
    pub(super) joint: Vec<JointCodes>,
    indicators: usize,
    pub(super) groupings: Vec<Grouping>,
}

impl PracticeSums {
    /// Sums of the `flat` indicators by practice × breakdown value, and of the `dsr` ones by
    /// age band too, over batches with the columns `terms` (practice, age band, breakdowns,
    /// `__num{i}` and `__den{i}` of all `indicators`).
    ///
    /// # Errors
    /// If a key column is missing from `terms`.
    pub(super) fn new(
        terms: &Schema,
        indicators: usize,
        flat: &[usize],
        dsr: &[usize],
        breakdowns: &[String],
    ) -> PolarsResult<Self> {
        let mut keys: Vec<KeyCodes> = Vec::new();
        let mut key = |name: &str| -> PolarsResult<usize> {
            if let Some(k) = keys.iter().position(|k| k.name() == name) {
                return Ok(k);
            }
            let dtype = terms.try_get(name)?;
            keys.push(KeyCodes::new(name, dtype));
            Ok(keys.len() - 1)
        };
        key(schema::PRACTICE_CODE)?;
        let age = if dsr.is_empty() {
            None
        } else {
            Some(key(schema::AGE_BAND)?)
        };
        // Each grouping's breakdowns, in the order first asked for: a set summed jointly
        // where two or more of it are asked for, else one breakdown. An `all` grouping only
        // when there is no breakdown: otherwise the `all` rows are a grouping's summed over
        // its values, as every row has one value of each (`PracticeSums::roll_up`), and the
        // rows are added once less.
        let mut sets: Vec<Vec<&str>> = Vec::new();
        for breakdown in breakdowns {
            if sets.iter().flatten().any(|placed| placed == breakdown) {
                continue;
            }
            let jointly = SUMMED_JOINTLY
                .iter()
                .find(|set| set.contains(&breakdown.as_str()))
                .map_or(&[][..], |set| &set[..]);
            let set: Vec<&str> = breakdowns
                .iter()
                .map(String::as_str)
                .filter(|asked| asked == breakdown || jointly.contains(asked))
                .collect();
            sets.push(set);
        }
        // The DSRs' groupings, by age band too, each of one breakdown ([`SUMMED_JOINTLY`]).
        let mut alone: Vec<Vec<&str>> = breakdowns.iter().map(|b| vec![b.as_str()]).collect();
        for sets in [&mut sets, &mut alone] {
            if sets.is_empty() {
                sets.push(vec![ALL]);
            }
        }
        // Every key column first, so that the joint columns' numbers, past them, are known.
        let mut columns_of = |set: &[&str]| -> PolarsResult<Vec<usize>> {
            set.iter()
                .filter(|&&breakdown| breakdown != ALL)
                .map(|breakdown| key(breakdown))
                .collect()
        };
        let (sets_columns, alone_columns) = (
            sets.iter()
                .map(|set| columns_of(set))
                .collect::<PolarsResult<Vec<_>>>()?,
            alone
                .iter()
                .map(|set| columns_of(set))
                .collect::<PolarsResult<Vec<_>>>()?,
        );
        let key_columns = keys.len();
        let mut joint = Vec::new();
        let mut values_of = |columns: Vec<Vec<usize>>| -> Vec<Option<usize>> {
            columns
                .into_iter()
                .map(|columns| match columns[..] {
                    [] => None,
                    [column] => Some(column),
                    _ => {
                        joint.push(JointCodes::new(columns));
                        Some(key_columns + joint.len() - 1)
                    }
                })
                .collect()
        };
        let (sets_values, alone_values) = (values_of(sets_columns), values_of(alone_columns));
        let mut groupings = Vec::new();
        // Groupings by age band only for DSRs (`age` is there when they are).
        let mut passes = vec![(flat, None, &sets, sets_values)];
        if age.is_some() {
            passes.push((dsr, age, &alone, alone_values));
        }
        for (wanted, age, sets, values) in passes {
            for (set, &value) in sets.iter().zip(&values) {
                groupings.push(Grouping {
                    breakdowns: set.iter().map(ToString::to_string).collect(),
                    keys: GroupingKeys { value, age },
                    indicators: wanted.to_vec(),
                    slots: SlotTable::default(),
                    slot_keys: Vec::new(),
                    sums: Vec::new(),
                    block_slots: Vec::with_capacity(BLOCK),
                });
            }
        }
        Ok(PracticeSums {
            keys,
            joint,
            indicators,
            groupings,
        })
    }

    /// Add one batch.
    ///
    /// # Errors
    /// If a column is missing or of the wrong type.
    pub(super) fn add(&mut self, batch: &DataFrame) -> PolarsResult<()> {
        let mut codes = batch_codes(&mut self.keys, batch)?;
        let mut counts: Vec<usize> = self.keys.iter().map(KeyCodes::len).collect();
        let joint_codes = self
            .joint
            .par_iter_mut()
            .map(|joint| joint.codes(&codes, &counts))
            .collect::<PolarsResult<Vec<_>>>()?;
        codes.extend(joint_codes);
        counts.extend(self.joint.iter().map(JointCodes::len));
        for grouping in &mut self.groupings {
            grouping.reserve(&counts);
        }
        let weighed = weighed_rows(batch)?;
        let weights = term_values(batch, WEIGHT_TERM)?;
        let columns = (0..self.indicators)
            .into_par_iter()
            .map(|i| IndicatorColumns::of(batch, i, weighed.as_ref()))
            .collect::<PolarsResult<Vec<_>>>()?;
        // Groupings share their indicator lists (the flat ones, the DSRs): each list's terms
        // are laid out row by row once a block, for all its groupings. Block by block, so that
        // the dozen groupings read a block from cache, not the whole batch from memory.
        let mut lists: Vec<Vec<usize>> = Vec::new();
        let list_of: Vec<usize> = self
            .groupings
            .iter()
            .map(|grouping| {
                let list = &grouping.indicators;
                lists.iter().position(|l| l == list).unwrap_or_else(|| {
                    lists.push(list.clone());
                    lists.len() - 1
                })
            })
            .collect();
        let height = batch.height();
        let blocks: Vec<std::ops::Range<usize>> = (0..height)
            .step_by(BLOCK)
            .map(|start| start..(start + BLOCK).min(height))
            .collect();
        let lay_out = |rows: &std::ops::Range<usize>, out: &mut Vec<Vec<f64>>| {
            for (list, out) in lists.iter().zip(out) {
                row_major(&columns, &weights, list, rows.clone(), out);
            }
        };
        // The next block is laid out while the groupings add this one: laid out between
        // them, on one thread, it left the other core idle (the sums at 10M used 1.6 cores
        // of 2, 1.7 since).
        let mut block_terms: Vec<Vec<f64>> = vec![Vec::new(); lists.len()];
        let mut next_terms: Vec<Vec<f64>> = vec![Vec::new(); lists.len()];
        if let Some(first) = blocks.first() {
            lay_out(first, &mut block_terms);
        }
        for (k, rows) in blocks.iter().enumerate() {
            let groupings = &mut self.groupings;
            let this_block = &block_terms;
            rayon::join(
                || {
                    groupings
                        .par_iter_mut()
                        .zip(&list_of)
                        .for_each(|(grouping, &list)| {
                            grouping.add(&codes, rows.clone(), &this_block[list]);
                        });
                },
                || {
                    if let Some(next) = blocks.get(k + 1) {
                        lay_out(next, &mut next_terms);
                    }
                },
            );
            std::mem::swap(&mut block_terms, &mut next_terms);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::enrich::ESP2013_BANDS;
    use crate::pipeline::measure::{
        BREAKDOWN, BREAKDOWN_VALUE, breakdown_label, den_column, num_column,
    };

    /// Ten people in three practices, with missing values in every key column.
    fn patients() -> DataFrame {
        df![
            schema::PRACTICE_CODE => ["A1", "A1", "A1", "B2", "B2", "B2", "B2", "C3", "C3", "A1"],
            schema::IMD_DECILE => [Some(1i32), Some(1), None, Some(10), Some(1), Some(10), None, Some(5), Some(5), Some(1)],
            schema::CORE20 => [Some(true), Some(true), None, Some(false), Some(true), Some(false), None, Some(false), Some(false), Some(true)],
            schema::SEX => [Some("F"), Some("M"), Some("F"), None, Some("F"), Some("M"), Some("M"), Some("F"), Some("F"), Some("M")],
            schema::AGE_BAND => [Some("0-4"), Some("0-4"), Some("85-89"), Some("0-4"), None, Some("5-9"), Some("5-9"), Some("0-4"), Some("0-4"), Some("85-89")],
            WEIGHT_TERM => [1.0; 10],
            "__eligible0" => [true, true, true, true, false, true, true, true, true, true],
            "__events0" => [true, false, true, true, false, false, true, true, false, true],
            "__eligible1" => [true; 10],
            "__events1" => [3.0, 0.0, 2.0, 0.0, 1.0, 0.0, 4.0, 0.0, 0.0, 7.0],
        ]
        .expect("a valid frame")
    }

    /// Each indicator's numerator and denominator terms of `patients`, as polars computes
    /// them: `when` eligible `then` weight × events (the weight) `otherwise` 0, missing as 0.
    fn with_terms(patients: &DataFrame) -> DataFrame {
        let weight = col(WEIGHT_TERM);
        let terms: Vec<Expr> = (0..2)
            .flat_map(|i| {
                let eligible = col(eligible_column(i).as_str()).fill_null(lit(false));
                let events = col(events_column(i).as_str())
                    .cast(DataType::Float64)
                    .fill_null(lit(0.0));
                [
                    when(eligible.clone())
                        .then(weight.clone() * events)
                        .otherwise(lit(0.0))
                        .fill_null(lit(0.0))
                        .alias(num_column(i)),
                    when(eligible)
                        .then(weight.clone())
                        .otherwise(lit(0.0))
                        .fill_null(lit(0.0))
                        .alias(den_column(i)),
                ]
            })
            .collect();
        patients
            .clone()
            .lazy()
            .with_columns(terms)
            .collect()
            .expect("terms")
    }

    fn breakdowns() -> Vec<String> {
        [
            schema::IMD_DECILE,
            schema::CORE20,
            schema::SEX,
            schema::AGE_BAND,
        ]
        .map(String::from)
        .to_vec()
    }

    /// The same sums from polars' `group_by` over the whole list at once.
    fn grouped(patients: &DataFrame, indicator: usize, by_age: bool) -> DataFrame {
        let sums = [
            col(num_column(indicator)).sum(),
            col(den_column(indicator)).sum(),
        ];
        let mut frames = Vec::new();
        for breakdown in std::iter::once(ALL.to_string()).chain(breakdowns()) {
            let (value, label) = if breakdown == ALL {
                (lit(true), lit("All"))
            } else {
                (col(breakdown.as_str()), breakdown_label(&breakdown))
            };
            let mut keys = vec![col(schema::PRACTICE_CODE), value.alias(BREAKDOWN_VALUE)];
            if by_age {
                keys.push(
                    col(schema::AGE_BAND)
                        .fill_null(lit(super::super::UNKNOWN))
                        .alias(schema::AGE_BAND),
                );
            }
            frames.push(
                with_terms(patients)
                    .lazy()
                    .group_by(keys)
                    .agg(sums.clone())
                    .with_columns([
                        label.alias(BREAKDOWN_VALUE),
                        lit(breakdown.clone()).alias(BREAKDOWN),
                    ]),
            );
        }
        sorted(
            concat(frames, UnionArgs::default())
                .and_then(LazyFrame::collect)
                .expect("sums"),
        )
    }

    fn sorted(frame: DataFrame) -> DataFrame {
        let mut keys = vec![schema::PRACTICE_CODE, BREAKDOWN, BREAKDOWN_VALUE];
        if frame.column(schema::AGE_BAND).is_ok() {
            keys.push(schema::AGE_BAND);
        }
        let mut columns: Vec<&str> = keys.clone();
        columns.extend(
            frame
                .get_column_names()
                .into_iter()
                .map(|c| c.as_str())
                .filter(|c| c.starts_with("__num") || c.starts_with("__den")),
        );
        frame
            .select(columns)
            .and_then(|f| f.sort(keys, SortMultipleOptions::default()))
            .expect("sorted")
    }

    /// The practices of [`patients`]: A1 and B2 in one PCN and ICB, C3 in no PCN.
    fn practices() -> DataFrame {
        df![
            schema::PRACTICE_CODE => ["A1", "B2", "C3"],
            schema::PCN_CODE => [Some("P1"), Some("P1"), None],
            schema::ICB_CODE => ["I1", "I1", "I2"],
        ]
        .expect("a valid frame")
    }

    /// The sums of the patients added in batches of `sizes` (indicator 0 flat, 1 a DSR),
    /// rolled up to `levels`.
    fn rolled_up(
        patients: &DataFrame,
        sizes: &[usize],
        levels: &[&str],
    ) -> super::super::roll_up::RolledUp {
        rolled_up_by(patients, sizes, levels, &breakdowns())
    }

    /// [`rolled_up`] with the given breakdowns.
    fn rolled_up_by(
        patients: &DataFrame,
        sizes: &[usize],
        levels: &[&str],
        breakdowns: &[String],
    ) -> super::super::roll_up::RolledUp {
        let mut sums =
            PracticeSums::new(patients.schema(), 2, &[0], &[1], breakdowns).expect("keys");
        let mut offset = 0;
        for &size in sizes {
            sums.add(&patients.slice(offset as i64, size))
                .expect("a batch");
            offset += size;
        }
        assert_eq!(offset, patients.height());
        let levels: Vec<String> = levels.iter().map(|l| l.to_string()).collect();
        sums.roll_up(&practices(), &levels).expect("sums")
    }

    /// The practice level of the sums as [`grouped`] gives them: the flat sums, and the DSR's
    /// sums by age band (bands with a sum other than 0; the age bands of the ESP2013 only).
    fn summed_in_batches(patients: &DataFrame, sizes: &[usize]) -> (DataFrame, DataFrame) {
        let rolled = rolled_up(patients, sizes, &["practice"]);
        let flat = rolled
            .flat
            .clone()
            .lazy()
            .select([
                col(schema::FOOTPRINT_CODE).alias(schema::PRACTICE_CODE),
                col(BREAKDOWN),
                col(BREAKDOWN_VALUE),
                col("__num0"),
                col("__den0"),
            ])
            .collect()
            .expect("practice sums");
        let by_band = rolled.by_band.expect("a DSR was asked for");
        let keys = &by_band.keys;
        let text = |name: &str| -> Vec<String> {
            keys.column(name)
                .and_then(|c| c.str().cloned())
                .expect("keys")
                .iter()
                .map(|v| v.unwrap_or_default().to_string())
                .collect()
        };
        let (codes, breakdowns, values) = (
            text(schema::FOOTPRINT_CODE),
            text(BREAKDOWN),
            text(BREAKDOWN_VALUE),
        );
        let mut long: [Vec<String>; 4] = Default::default();
        let (mut nums, mut dens) = (Vec::new(), Vec::new());
        for row in 0..keys.height() {
            let (x, n) = (by_band.bands(0, row, false), by_band.bands(0, row, true));
            for (band, label) in ESP2013_BANDS.iter().enumerate() {
                if x[band] != 0.0 || n[band] != 0.0 {
                    long[0].push(codes[row].clone());
                    long[1].push(breakdowns[row].clone());
                    long[2].push(values[row].clone());
                    long[3].push(label.to_string());
                    nums.push(x[band]);
                    dens.push(n[band]);
                }
            }
        }
        let [codes, breakdowns, values, bands] = long;
        let by_age = df![
            schema::PRACTICE_CODE => codes,
            BREAKDOWN => breakdowns,
            BREAKDOWN_VALUE => values,
            schema::AGE_BAND => bands,
            "__num1" => nums,
            "__den1" => dens,
        ]
        .expect("sums by band");
        (flat, by_age)
    }

    /// The sums of `patients` added in batches of `sizes` are [`grouped`]'s and
    /// [`grouped_by_band`]'s.
    fn assert_sums_are_grouped(patients: &DataFrame, sizes: &[usize]) {
        let (flat, by_age) = summed_in_batches(patients, sizes);
        assert_eq!(
            sorted(flat),
            grouped(patients, 0, false),
            "batches {sizes:?}"
        );
        assert_eq!(
            sorted(by_age),
            grouped_by_band(patients),
            "batches {sizes:?}"
        );
    }

    /// [`grouped`] by age band as [`summed_in_batches`] gives it: the ESP2013 bands' rows with
    /// a sum other than 0.
    fn grouped_by_band(patients: &DataFrame) -> DataFrame {
        let bands = Series::new("bands".into(), ESP2013_BANDS.to_vec());
        sorted(
            grouped(patients, 1, true)
                .lazy()
                .filter(
                    col(schema::AGE_BAND)
                        .is_in(lit(bands).implode(false), false)
                        .and(col("__num1").neq(lit(0.0)).or(col("__den1").neq(lit(0.0)))),
                )
                .collect()
                .expect("filtered"),
        )
    }

    #[test]
    fn slots_keep_their_codes_when_the_table_grows() {
        let mut table = SlotTable::default();
        table.reserve(2, 1, 3);
        let first = [(0, 0, 0), (1, 0, 2), (0, 0, 1)];
        for (slot, &(p, v, a)) in first.iter().enumerate() {
            let cell = table.cell(p, v, a);
            assert_eq!(table.slots[cell], SlotTable::EMPTY);
            table.slots[cell] = slot as u32;
        }
        // More practices, values and bands: each slot stays at its codes, the rest are empty.
        table.reserve(4, 3, 5);
        assert_eq!(table.slots.len(), 4 * 3 * 5);
        for p in 0..4 {
            for v in 0..3 {
                for a in 0..5 {
                    let want = first
                        .iter()
                        .position(|&key| key == (p, v, a))
                        .map_or(SlotTable::EMPTY, |slot| slot as u32);
                    assert_eq!(table.slots[table.cell(p, v, a)], want, "{p} {v} {a}");
                }
            }
        }
        // Fewer codes than it has room for: nothing moves.
        let before = table.slots.clone();
        table.reserve(1, 1, 1);
        assert_eq!(table.slots, before);
    }

    #[test]
    fn tuples_keep_their_joint_codes_of_first_sight_as_columns_grow() {
        // Three key columns; the joint one is of columns 2 and 0, in that order.
        let mut joint = JointCodes::new(vec![2, 0]);
        let batch = |columns: [&[u32]; 3]| columns.map(<[u32]>::to_vec).to_vec();
        let first = batch([&[0, 1, 0, 1], &[], &[0, 0, 1, 0]]);
        assert_eq!(
            joint.codes(&first, &[2, 0, 2]).expect("codes"),
            [0, 1, 2, 1]
        );
        // New codes in both columns, past the room the index had: the index is laid out
        // again, and the tuples seen before keep their codes.
        let second = batch([&[9, 1, 0, 0, 9], &[], &[30, 0, 0, 1, 30]]);
        assert_eq!(
            joint.codes(&second, &[10, 0, 31]).expect("codes"),
            [3, 1, 0, 2, 3]
        );
        assert_eq!(joint.len(), 4);
        let tuples: Vec<(u32, u32)> = (0..joint.len())
            .map(|code| (joint.column_code(code, 0), joint.column_code(code, 1)))
            .collect();
        assert_eq!(tuples, [(0, 0), (0, 1), (1, 0), (30, 9)]);
        // More codes than an index may hold is an error, not an allocation of that size.
        assert!(joint.codes(&second, &[1 << 13, 0, 1 << 13]).is_err());
    }

    #[test]
    fn breakdowns_summed_jointly_share_a_grouping_in_the_flat_pass_only() {
        let patients = patients();
        let sums =
            PracticeSums::new(patients.schema(), 2, &[0], &[1], &breakdowns()).expect("keys");
        let plan: Vec<(Vec<String>, bool)> = sums
            .groupings
            .iter()
            .map(|g| (g.breakdowns.clone(), g.keys.age.is_some()))
            .collect();
        let names = |names: &[&str]| names.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            plan,
            [
                (
                    names(&[schema::IMD_DECILE, schema::CORE20, schema::SEX]),
                    false
                ),
                (names(&[schema::AGE_BAND]), false),
                (names(&[schema::IMD_DECILE]), true),
                (names(&[schema::CORE20]), true),
                (names(&[schema::SEX]), true),
                (names(&[schema::AGE_BAND]), true),
            ]
        );
        assert_eq!(sums.joint.len(), 1);
    }

    #[test]
    fn rows_are_added_alike_by_every_build() {
        assert_eq!(row_width(3), LANES);
        // Runs of one to five rows of a slot, a slot coming back after others.
        let slots: Vec<u32> = (0..1000u32)
            .flat_map(|run| std::iter::repeat_n(run * 7 % 13, (run % 5 + 1) as usize))
            .collect();
        let rows = slots.len();
        for width in [row_width(3), row_width(9)] {
            let row_terms: Vec<f64> = (0..rows * width).map(|i| (i as f64).sqrt()).collect();
            // A plain sum, term by term in row order.
            let mut plain = vec![0.5; 13 * width];
            for (r, &slot) in slots.iter().enumerate() {
                for t in 0..width {
                    plain[slot as usize * width + t] += row_terms[r * width + t];
                }
            }
            let mut portable = vec![0.5; 13 * width];
            add_rows_portable(&mut portable, &slots, &row_terms, width);
            assert_eq!(portable, plain, "width {width}");
            let mut dispatched = vec![0.5; 13 * width];
            add_rows(&mut dispatched, &slots, &row_terms, width);
            assert_eq!(dispatched, plain, "width {width}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut avx2 = vec![0.5; 13 * width];
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { add_rows_avx2(&mut avx2, &slots, &row_terms, width) };
                assert_eq!(avx2, plain, "width {width}");
            }
        }
    }

    /// Weights and three indicators' columns over `rows` rows, for laying out terms: a flag, a
    /// count, and a count that is NaN in rows not counted (they give 0). The bitmaps start
    /// inside a byte, as a slice of a batch's column does.
    fn columns_to_lay_out(rows: usize) -> (Vec<f64>, Vec<IndicatorColumns<'static>>) {
        let bitmap = |set: &dyn Fn(usize) -> bool| -> Bitmap {
            Bitmap::from_iter((0..rows + 3).map(|r| r >= 3 && set(r - 3))).sliced(3, rows)
        };
        let weights: Vec<f64> = (0..rows).map(|r| 0.5 + (r % 5) as f64).collect();
        let counts = |i: usize| -> Vec<f64> {
            (0..rows)
                .map(|r| {
                    if r % 11 == 0 {
                        f64::NAN
                    } else {
                        (r * 10 + i) as f64
                    }
                })
                .collect()
        };
        let columns = vec![
            IndicatorColumns {
                counted: bitmap(&|r| r % 3 != 0),
                events: Events::Flags(bitmap(&|r| r % 2 == 0)),
            },
            IndicatorColumns {
                counted: bitmap(&|r| r % 11 != 0),
                events: Events::Counts(Cow::Owned(counts(1))),
            },
            IndicatorColumns {
                counted: bitmap(&|r| r % 11 != 0 && r % 4 != 1),
                events: Events::Counts(Cow::Owned(counts(2))),
            },
        ];
        (weights, columns)
    }

    #[test]
    fn terms_laid_out_row_by_row_for_a_range_and_a_subset() {
        let rows = 2500;
        let (weights, columns) = columns_to_lay_out(rows);
        let expected = |i: usize, row: usize| -> (f64, f64) {
            let IndicatorColumns { counted, events } = &columns[i];
            if !counted.get_bit(row) {
                return (0.0, 0.0);
            }
            let weight = weights[row];
            match events {
                Events::Flags(flags) => (if flags.get_bit(row) { weight } else { 0.0 }, weight),
                Events::Counts(counts) => (weight * counts[row], weight),
            }
        };
        let mut got = vec![-1.0; 7];
        // Ranges whose first row is not a multiple of eight, and shorter than eight rows.
        for range in [0..rows, 2048..rows, 5..rows, 3..20, 7..8, 9..9] {
            for indicators in [&[0, 1, 2][..], &[2, 0], &[1], &[]] {
                row_major(&columns, &weights, indicators, range.clone(), &mut got);
                let width = row_width(indicators.len());
                assert_eq!(got.len(), range.len() * width);
                for (k, row) in range.clone().enumerate() {
                    for (j, &i) in indicators.iter().enumerate() {
                        let laid_out = (got[k * width + 2 * j], got[k * width + 2 * j + 1]);
                        assert_eq!(laid_out, expected(i, row), "{indicators:?} row {row}");
                    }
                }
            }
        }
    }

    /// The AVX-512 build lays out the same terms as the row-by-row loop, bit for bit, and
    /// zeros as padding; nine indicators make two chunks of eight terms, the second part
    /// padding.
    #[test]
    fn terms_laid_out_eight_rows_at_a_time_are_those_laid_out_row_by_row() {
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!(
                    "skipped: this CPU has no AVX-512F, so row_major uses the row-by-row loop alone"
                );
                return;
            }
            let rows = 100;
            let (weights, columns) = columns_to_lay_out(rows);
            let bits = |got: &[f64]| got.iter().map(|term| term.to_bits()).collect::<Vec<_>>();
            for range in [0..rows, 5..rows, 13..21, 2..9] {
                for indicators in [&[0, 1, 2, 0, 1, 2, 2, 1, 0][..], &[1, 0], &[2]] {
                    let width = row_width(indicators.len());
                    let mut by_rows = vec![0.0; range.len() * width];
                    row_major_rows(&columns, &weights, indicators, range.clone(), &mut by_rows);
                    let mut by_eights = vec![-1.0; range.len() * width];
                    // SAFETY: the CPU has AVX-512F (checked above).
                    let laid_out = unsafe {
                        row_major_avx512(
                            &columns,
                            &weights,
                            indicators,
                            range.clone(),
                            &mut by_eights,
                        )
                    };
                    assert_eq!(laid_out, range.len() / 8 * 8);
                    let eights = laid_out * width;
                    assert_eq!(
                        bits(&by_eights[..eights]),
                        bits(&by_rows[..eights]),
                        "{indicators:?} rows {range:?}"
                    );
                    // The rest is left for the row-by-row loop.
                    assert!(by_eights[eights..].iter().all(|&term| term == -1.0));
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        eprintln!("skipped: AVX-512 is an x86-64 build");
    }

    /// The terms are what polars' `when`/`then` gives ([`with_terms`]) for weights other than
    /// 1, missing weights, missing flags and counts, and counts that are NaN where a person
    /// is not eligible or has no weight (both give 0, not NaN).
    #[test]
    fn terms_are_weighed_as_polars_weighs_them() {
        let mut patients = patients();
        let weights = [
            Some(2.0),
            Some(0.5),
            None,
            Some(3.0),
            Some(1.0),
            None,
            Some(4.0),
            Some(1.0),
            Some(2.5),
            Some(1.0),
        ];
        let flags = [
            Some(true),
            None,
            Some(true),
            Some(true),
            Some(false),
            None,
            Some(true),
            Some(true),
            Some(false),
            Some(true),
        ];
        let eligible = [
            Some(true),
            Some(true),
            Some(true),
            None,
            Some(false),
            Some(true),
            Some(false),
            Some(true),
            Some(true),
            Some(true),
        ];
        let counts = [
            Some(3.0),
            None,
            Some(2.0),
            Some(0.0),
            Some(1.0),
            Some(f64::NAN),
            Some(f64::NAN),
            Some(0.0),
            None,
            Some(7.0),
        ];
        for column in [
            Column::new(WEIGHT_TERM.into(), weights),
            Column::new("__events0".into(), flags),
            Column::new("__eligible1".into(), eligible),
            Column::new("__events1".into(), counts),
        ] {
            patients.with_column(column).expect("replaced");
        }
        for sizes in [&[10][..], &[3, 7]] {
            assert_sums_are_grouped(&patients, sizes);
        }
    }

    #[test]
    fn batches_give_the_sums_of_a_group_by_over_the_whole_list() {
        let patients = patients();
        for sizes in [&[10][..], &[3, 3, 4], &[1, 0, 9]] {
            assert_sums_are_grouped(&patients, sizes);
        }
    }

    #[test]
    fn batches_of_several_blocks_give_the_sums_of_a_group_by() {
        // 5,000 rows (the ten people 500 times, each copy's terms scaled by its number), so
        // batches span blocks and a block ends inside a run of equal keys.
        let base = patients();
        let mut many = base.clone();
        for copy in 1..500 {
            let mut scaled = base.clone();
            for name in [WEIGHT_TERM, "__events1"] {
                let column = scaled.column(name).expect("terms").clone();
                let column =
                    (column.as_materialized_series() * f64::from(copy + 1)).with_name(name.into());
                scaled.with_column(column.into()).expect("replaced");
            }
            many.vstack_mut(&scaled).expect("stacked");
        }
        // Every seventh count of the second indicator missing (counted as 0), and the frame
        // in several chunks: both take the filled copy.
        let with_gaps: Vec<Option<f64>> = many
            .column("__events1")
            .and_then(|c| c.f64().cloned())
            .expect("terms")
            .iter()
            .enumerate()
            .map(|(row, value)| value.filter(|_| row % 7 != 0))
            .collect();
        many.with_column(Column::new("__events1".into(), with_gaps))
            .expect("replaced");
        for sizes in [&[5000][..], &[2049, 2951], &[1, 4095, 904]] {
            assert_sums_are_grouped(&many, sizes);
        }
    }

    #[test]
    fn values_with_one_label_are_one_row() {
        // Person 3 (practice B2) has no sex and person 4 (B2) has the text "Unknown": both are
        // labelled "Unknown", and B2 has one such row, with both people's sums.
        let mut patients = patients();
        let sex = patients
            .column(schema::SEX)
            .expect("sex")
            .str()
            .expect("text")
            .clone();
        let sex: Vec<Option<&str>> = sex
            .iter()
            .enumerate()
            .map(|(row, value)| if row == 4 { Some("Unknown") } else { value })
            .collect();
        patients
            .with_column(Column::new(schema::SEX.into(), sex))
            .expect("replaced");
        let (flat, by_age) = summed_in_batches(&patients, &[10]);
        assert_eq!(
            sums_of(&flat, "B2", schema::SEX, super::super::UNKNOWN),
            [(Some(1.0), Some(1.0))]
        );
        // No key has two rows, with or without age bands.
        for (frame, keys) in [
            (
                flat,
                vec![schema::PRACTICE_CODE, BREAKDOWN, BREAKDOWN_VALUE],
            ),
            (
                by_age,
                vec![
                    schema::PRACTICE_CODE,
                    BREAKDOWN,
                    BREAKDOWN_VALUE,
                    schema::AGE_BAND,
                ],
            ),
        ] {
            let keys = frame.select(keys).expect("keys");
            assert!(!keys.is_duplicated().expect("checked").any(), "{keys}");
        }
    }

    /// The first indicator's numerator and denominator in each of `flat`'s rows for a
    /// practice and a breakdown value.
    fn sums_of(
        flat: &DataFrame,
        practice: &str,
        breakdown: &str,
        value: &str,
    ) -> Vec<(Option<f64>, Option<f64>)> {
        let rows = flat
            .clone()
            .lazy()
            .filter(
                col(schema::PRACTICE_CODE)
                    .eq(lit(practice))
                    .and(col(BREAKDOWN).eq(lit(breakdown)))
                    .and(col(BREAKDOWN_VALUE).eq(lit(value))),
            )
            .collect()
            .expect("rows");
        let values = |name: &str| -> Vec<Option<f64>> {
            rows.column(name)
                .and_then(|c| c.f64().cloned())
                .expect("sums")
                .iter()
                .collect()
        };
        values("__num0").into_iter().zip(values("__den0")).collect()
    }

    #[test]
    fn keys_keep_their_labels_and_missing_values_are_unknown() {
        let (flat, _) = summed_in_batches(&patients(), &[4, 6]);
        let cell = |breakdown: &str, value: &str| sums_of(&flat, "A1", breakdown, value);
        // A1: people 0, 1, 2 and 9; person 2 has no decile and no Core20 flag.
        assert_eq!(cell(schema::CORE20, "Core20"), [(Some(2.0), Some(3.0))]);
        assert_eq!(cell(schema::CORE20, "Unknown"), [(Some(1.0), Some(1.0))]);
        assert_eq!(cell(schema::IMD_DECILE, "1"), [(Some(2.0), Some(3.0))]);
        assert_eq!(cell(schema::SEX, "F"), [(Some(2.0), Some(2.0))]);
        assert_eq!(cell(ALL, "All"), [(Some(3.0), Some(4.0))]);
    }

    #[test]
    fn no_dsr_no_sums_by_age_and_no_rows_gives_empty_tables_with_the_columns() {
        let patients = patients();
        let sums =
            PracticeSums::new(patients.schema(), 2, &[0, 1], &[], &breakdowns()).expect("keys");
        let levels = super::super::LEVELS.map(String::from);
        let rolled = sums.roll_up(&practices(), &levels).expect("sums");
        assert!(rolled.by_band.is_none());
        let flat = rolled.flat;
        assert_eq!(flat.height(), 0);
        assert_eq!(
            flat.get_column_names(),
            [
                schema::FOOTPRINT_KIND,
                schema::FOOTPRINT_CODE,
                BREAKDOWN,
                BREAKDOWN_VALUE,
                "__num0",
                "__den0",
                "__num1",
                "__den1"
            ]
        );
        for key in super::super::KEYS {
            assert_eq!(flat.column(key).expect("a key").dtype(), &DataType::String);
        }
    }

    #[test]
    fn every_level_is_the_sum_of_its_practices_in_the_published_order() {
        let patients = patients();
        // Levels asked for in another order: they come out England first.
        let rolled = rolled_up(&patients, &[4, 6], &["practice", "pcn", "england", "icb"]);
        // The practice level, rolled up by polars: a join to the practices and a sum by level.
        let (practice_level, _) = summed_in_batches(&patients, &[10]);
        let footprints = practice_level.clone().lazy().join(
            practices().lazy(),
            [col(schema::PRACTICE_CODE)],
            [col(schema::PRACTICE_CODE)],
            JoinArgs::new(JoinType::Left),
        );
        let mut levels = Vec::new();
        for (kind, code) in [
            ("england", lit(schema::ENGLAND_CODE)),
            ("icb", col(schema::ICB_CODE)),
            ("pcn", col(schema::PCN_CODE)),
            ("practice", col(schema::PRACTICE_CODE)),
        ] {
            levels.push(
                footprints
                    .clone()
                    .with_column(code.alias(schema::FOOTPRINT_CODE))
                    .filter(col(schema::FOOTPRINT_CODE).is_not_null())
                    .group_by([
                        col(schema::FOOTPRINT_CODE),
                        col(BREAKDOWN),
                        col(BREAKDOWN_VALUE),
                    ])
                    .agg([col("__num0").sum(), col("__den0").sum()])
                    .with_column(lit(kind).alias(schema::FOOTPRINT_KIND)),
            );
        }
        let by_polars =
            super::super::in_key_order(concat(levels, UnionArgs::default()).expect("levels"))
                .and_then(|f| f.select(rolled.flat.get_column_names_owned()))
                .expect("sorted");
        assert_eq!(rolled.flat, by_polars);
        // C3 is in no PCN: the PCN level has P1 alone, with A1's and B2's people.
        let pcns = rolled
            .flat
            .clone()
            .lazy()
            .filter(col(schema::FOOTPRINT_KIND).eq(lit("pcn")))
            .select([col(schema::FOOTPRINT_CODE).unique()])
            .collect()
            .expect("pcns");
        assert_eq!(pcns.column(schema::FOOTPRINT_CODE).expect("codes").len(), 1);
        // The DSR's rows have the same keys as the flat rows: every footprint × value, in the
        // same order (its rows are the same people's).
        let by_band = rolled.by_band.expect("a DSR");
        // Indicator 1 is the DSR: the first (and only) of the band sums.
        assert_eq!(by_band.indicators(), [1]);
        assert_eq!(
            by_band.keys,
            rolled.flat.select(super::super::KEYS).expect("keys")
        );
        // England's bands add up to England's people, over every band of the ESP2013.
        let all = (0..by_band.keys.height())
            .find(|&row| {
                by_band
                    .keys
                    .column(schema::FOOTPRINT_KIND)
                    .and_then(|c| c.str().cloned())
                    .expect("kinds")
                    .get(row)
                    == Some("england")
                    && by_band
                        .keys
                        .column(BREAKDOWN)
                        .and_then(|c| c.str().cloned())
                        .expect("breakdowns")
                        .get(row)
                        == Some(ALL)
            })
            .expect("England's row");
        // Person 4 has no age band: the nine others are in the bands.
        assert_eq!(by_band.bands(0, all, true).iter().sum::<f64>(), 9.0);
        assert_eq!(by_band.bands(0, all, false).iter().sum::<f64>(), 17.0 - 1.0);
    }

    #[test]
    fn all_rows_summed_from_a_breakdown_are_those_of_no_breakdown() {
        // With no breakdown the `all` rows are a grouping of their own; with breakdowns they
        // are summed from one of them: the same rows either way, by age band too.
        let patients = patients();
        let levels = super::super::LEVELS;
        let alone = rolled_up_by(&patients, &[10], &levels, &[]);
        let summed = rolled_up_by(&patients, &[3, 7], &levels, &breakdowns());
        let all_rows = |frame: &DataFrame| {
            frame
                .clone()
                .lazy()
                .filter(col(BREAKDOWN).eq(lit(ALL)))
                .collect()
                .expect("the all rows")
        };
        assert_eq!(all_rows(&alone.flat), alone.flat);
        assert_eq!(all_rows(&summed.flat), alone.flat);
        let (alone, summed) = (
            alone.by_band.expect("a DSR"),
            summed.by_band.expect("a DSR"),
        );
        let breakdown_of = summed
            .keys
            .column(BREAKDOWN)
            .and_then(|c| c.str().cloned())
            .expect("breakdowns");
        let rows: Vec<usize> = (0..summed.keys.height())
            .filter(|&row| breakdown_of.get(row) == Some(ALL))
            .collect();
        assert_eq!(rows.len(), alone.keys.height());
        for (row, &at) in rows.iter().enumerate() {
            for denominator in [false, true] {
                assert_eq!(
                    summed.bands(0, at, denominator),
                    alone.bands(0, row, denominator)
                );
            }
        }
    }
}
