//! The Parquet pages of a row group, encoded here rather than by polars' writer.
//!
//! polars decides whether a text or float column gets a dictionary by estimating its distinct
//! values (a HyperLogLog of every value), and then builds the dictionary by hashing every
//! value's bytes again. Over the patient-level tables and the working files that was a sixth
//! of a national run's CPU (benches/RESULTS.md). Here the dictionary is built in one pass from
//! the values' bits: a text value of up to 12 bytes is its 16-byte view, a float its 64 bits.
//!
//! The pages are of the kinds polars writes (a dictionary page and keys, or plain pages), and
//! every reader decodes them alike; the file's schema is the table's, so text stays text. One
//! difference: polars estimated float columns too but then wrote them plain (it does not cast
//! floats to a dictionary), where a float column whose values repeat (area scores, 0/1
//! outcomes, rounded limits) now gets a dictionary, and its file is smaller.
//!
//! A yes/no column without missing values is written as its bits, copied ([`flag_page`]). A
//! dictionary column's keys are encoded here too ([`dictionary_pages`]).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use polars::prelude::PolarsResult;
use polars_arrow::array::{
    Array, BooleanArray, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray,
    View,
};
use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_arrow::types::NativeType;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::parquet::compression::{Compression, CompressionOptions};
use polars_parquet::parquet::encoding::uleb128;
use polars_parquet::parquet::error::{ParquetError, ParquetResult};
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::parquet::page::{
    CompressedDataPage, CompressedDictPage, CompressedPage, DataPage, DataPageHeader,
    DataPageHeaderV1,
};
use polars_parquet::parquet::schema::Repetition;
use polars_parquet::parquet::schema::types::PrimitiveType;
use polars_parquet::parquet::statistics::{BooleanStatistics, ParquetStatistics};
use polars_parquet::write::{
    Encoding, Page, ParquetType, Version, WriteOptions, array_to_columns, write_def_levels,
};

/// LZ4's acceleration for LZ4 pages (the working files): 8 skips ahead faster where a page
/// does not repeat itself. On a sample of the working files' patient ids it compressed 2.6×
/// as fast as LZ4's default (1) where the ids are unique (to 1.03 of their size instead of
/// 1.17) and 1.5× as fast where a patient's long rows repeat them (2.86× smaller instead of
/// 2.95×); LZ4 compression was a tenth of ingest's CPU.
const LZ4_ACCELERATION: i32 = 8;

/// `page` compressed with `compression`: polars' own compression, except that LZ4 pages are
/// compressed with [`LZ4_ACCELERATION`] (any LZ4 block decodes alike).
///
/// # Errors
/// If the compressor fails.
pub(crate) fn compress(
    page: Page,
    compression: CompressionOptions,
) -> ParquetResult<CompressedPage> {
    if compression != CompressionOptions::Lz4Raw {
        return polars_parquet::write::compress(page, Vec::new(), compression);
    }
    let lz4 = |input: &[u8], output: &mut Vec<u8>| -> ParquetResult<()> {
        let start = output.len();
        output.resize(start + lz4::block::compress_bound(input.len())?, 0);
        let written = lz4::block::compress_to_buffer(
            input,
            Some(lz4::block::CompressionMode::FAST(LZ4_ACCELERATION)),
            false,
            &mut output[start..],
        )?;
        output.truncate(start + written);
        Ok(())
    };
    match page {
        Page::Data(page) => {
            let buffer = page.buffer();
            // A V2 page's levels stay as they are, as polars writes them.
            let levels = match page.header() {
                DataPageHeader::V1(_) => 0,
                DataPageHeader::V2(header) => {
                    (header.repetition_levels_byte_length + header.definition_levels_byte_length)
                        as usize
                }
            };
            let mut compressed = buffer[..levels].to_vec();
            lz4(&buffer[levels..], &mut compressed)?;
            let rows = page.num_rows().ok_or_else(|| {
                ParquetError::OutOfSpec(
                    "internal: a data page to write without its row count".into(),
                )
            })?;
            Ok(CompressedPage::Data(CompressedDataPage::new(
                page.header().clone(),
                CowBuffer::Owned(compressed),
                Compression::Lz4Raw,
                buffer.len(),
                page.descriptor.clone(),
                rows,
            )))
        }
        Page::Dict(page) => {
            let mut compressed = Vec::new();
            lz4(&page.buffer, &mut compressed)?;
            Ok(CompressedPage::Dict(CompressedDictPage::new(
                CowBuffer::Owned(compressed),
                Compression::Lz4Raw,
                page.buffer.len(),
                page.num_values,
                page.is_sorted,
            )))
        }
    }
}

/// How one column of a row group is written.
pub(crate) enum ColumnPages {
    /// A dictionary page and pages of keys: the values repeat.
    Dictionary(DictionaryArray<u32>),
    /// Plain pages: most values are distinct (ids), so a dictionary would not pay.
    Plain,
    /// A yes/no column without missing values: one plain page of its bits as they are
    /// ([`flag_page`]).
    Flags,
    /// polars' own choice: integers, dates and flags with missing values, whose dictionaries
    /// it finds cheaply (from their range), and columns this module does not handle (nested,
    /// empty, all missing).
    Chosen,
}

/// A dictionary is not worth it when more than this share of the values are distinct: polars'
/// own threshold, so a text column's pages are of the kind they were.
const MAX_DISTINCT_SHARE: f64 = 0.75;

/// A column whose first [`SAMPLE_ROWS`] rows hold more than [`SAMPLE_DISTINCT`] values is
/// written plain from there, rather than after a whole row group's hashing: an id. Nearly all
/// distinct, because a column of a few tens of thousands of values in no order (area codes)
/// looks mostly distinct that early too (33,000 codes in random order: ~89%), and is worth a
/// dictionary over a whole row group.
const SAMPLE_ROWS: usize = 8192;
const SAMPLE_DISTINCT: usize = SAMPLE_ROWS * 98 / 100;

/// A column whose values come in runs and never come back within the sample (the patient id
/// of rows listed patient by patient) is written plain when the sample holds more than this
/// many values: a dictionary would save only each run's repeats, at the cost of a hash table
/// entry for every value.
const SAMPLE_IN_RUNS: usize = SAMPLE_ROWS / 8;

/// Whether `distinct` values among `rows` are few enough for a dictionary.
fn repeats_enough(distinct: usize, rows: usize) -> bool {
    rows <= 128 || (distinct as f64) <= MAX_DISTINCT_SHARE * rows as f64
}

/// How a column of a row group is written. Its rows are the `chunks` (arrays of one type) one
/// after another: the batches the row group was gathered from, not copied into one array.
pub(crate) fn column_pages(chunks: &[Box<dyn Array>]) -> ColumnPages {
    let rows: usize = chunks.iter().map(|chunk| chunk.len()).sum();
    let missing: usize = chunks.iter().map(|chunk| chunk.null_count()).sum();
    let Some(first) = chunks.first() else {
        return ColumnPages::Chosen;
    };
    if rows == 0 || missing == rows {
        return ColumnPages::Chosen;
    }
    match first.dtype() {
        ArrowDataType::Utf8View => match downcast_all::<Utf8ViewArray>(chunks) {
            Some(text) => text_pages(&text),
            None => ColumnPages::Chosen,
        },
        ArrowDataType::Boolean if missing == 0 => ColumnPages::Flags,
        ArrowDataType::Float64 => number_pages::<f64, u64>(chunks, f64::to_bits),
        ArrowDataType::Float32 => number_pages::<f32, u32>(chunks, f32::to_bits),
        _ => ColumnPages::Chosen,
    }
}

/// The one plain page of a yes/no column without missing values (version 1 pages, as the
/// writer's options say), or `None` when the column is not one: it is nested or has missing
/// values, or its bits would make more than one page of `options.data_page_size`.
///
/// A plain yes/no page is the values' bits, first value in the lowest bit, which is how arrow
/// holds them: they are copied a word at a time. polars' writer packs them one value at a time
/// from an iterator (the patient-level table's 55 flags: 3.6% of the patient stages' CPU at
/// England scale). The page's statistics are those polars would write.
pub(crate) fn flag_page(
    array: &dyn Array,
    field: &ParquetType,
    options: WriteOptions,
) -> Option<Page> {
    let ParquetType::PrimitiveType(type_) = field else {
        return None;
    };
    let flags = array.as_any().downcast_ref::<BooleanArray>()?;
    let rows = flags.len();
    let bytes = rows.div_ceil(8);
    if flags.null_count() > 0
        || options.version != Version::V1
        || options.data_page_size.is_some_and(|size| bytes > size)
    {
        return None;
    }
    let optional = type_.field_info.repetition == Repetition::Optional;
    let mut buffer = Vec::with_capacity(bytes + 16);
    // No validity: an optional column's definition levels are one run of "present".
    append_page_levels(&mut buffer, optional, None, rows).ok()?;
    let values = flags.values();
    append_bits(&mut buffer, values);
    let statistics = options.has_statistics().then(|| {
        let yes = rows - values.unset_bits();
        let no = values.unset_bits();
        let wanted = options.statistics;
        BooleanStatistics {
            null_count: wanted.null_count.then_some(0),
            distinct_count: wanted
                .distinct_count
                .then_some(i64::from(yes > 0) + i64::from(no > 0)),
            max_value: (wanted.max_value && rows > 0).then_some(yes > 0),
            min_value: (wanted.min_value && rows > 0).then_some(no == 0),
        }
        .serialize()
    });
    data_page(type_, rows, buffer, Encoding::Plain, statistics)
}

/// Appends the bits of `bits`, first bit lowest, copied a word at a time. The last byte's bits
/// past them are zeros, as polars writes them (the bitmap's last word holds whatever follows
/// them in its buffer).
fn append_bits(out: &mut Vec<u8>, bits: &Bitmap) {
    let chunks = bits.chunks::<u64>();
    let remainder = chunks.remainder();
    for word in chunks {
        out.extend_from_slice(&word.to_le_bytes());
    }
    let tail = bits.len() % 64;
    if tail > 0 {
        let remainder = remainder & ((1u64 << tail) - 1);
        out.extend_from_slice(&remainder.to_le_bytes()[..tail.div_ceil(8)]);
    }
}

/// Appends the definition levels of a page of an optional column that is not nested, as a
/// version 1 page holds them (their length first): a level is a row's validity bit, so they
/// are the bits copied, in packed runs. polars' writer runs them one at a time through its
/// hybrid encoder.
fn append_definition_levels(out: &mut Vec<u8>, validity: &Bitmap) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    for from in (0..validity.len()).step_by(MAX_PACKED) {
        let rows = MAX_PACKED.min(validity.len() - from);
        write_uleb128(out, ((rows.div_ceil(8) as u64) << 1) | 1);
        append_bits(out, &validity.clone().sliced(from, rows));
    }
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

/// Appends a version 1 page's definition levels for `rows` rows of a column that is not
/// nested: the validity's bits when the column is optional and some rows are missing, else
/// polars' levels of a page without missing rows (none for a required column).
fn append_page_levels(
    out: &mut Vec<u8>,
    optional: bool,
    validity: Option<&Bitmap>,
    rows: usize,
) -> PolarsResult<()> {
    match validity {
        Some(validity) if optional && validity.unset_bits() > 0 => {
            append_definition_levels(out, validity);
            Ok(())
        }
        _ => write_def_levels(out, optional, None, rows, Version::V1),
    }
}

/// A version 1 data page of `rows` values of a column that is not nested, laid out as polars
/// lays out its own, or `None` when `rows` is beyond a page header's count.
fn data_page(
    type_: &PrimitiveType,
    rows: usize,
    buffer: Vec<u8>,
    encoding: Encoding,
    statistics: Option<ParquetStatistics>,
) -> Option<Page> {
    let header = DataPageHeader::V1(DataPageHeaderV1 {
        num_values: i32::try_from(rows).ok()?,
        encoding: encoding.into(),
        definition_level_encoding: Encoding::Rle.into(),
        repetition_level_encoding: Encoding::Rle.into(),
        statistics,
    });
    let descriptor = Descriptor {
        primitive_type: type_.clone(),
        max_def_level: 0,
        max_rep_level: 0,
    };
    Some(Page::Data(DataPage::new(
        header,
        CowBuffer::Owned(buffer),
        descriptor,
        rows,
    )))
}

/// Rows ahead whose long value [`plain_text_pages`] asks the processor to load early.
///
/// A working file's patient ids were gathered from many batches into each part (a view
/// array's `take` moves the views, not the bytes), so a part's next id is in another cache
/// line, often far from the last: the copies waited on memory, and the more parts, the less
/// the processor's own prefetching found (benches/RESULTS.md, twenty-sixth round).
const PREFETCH_AHEAD: usize = 16;

/// Ask the processor to load the bytes of `view`'s value, if it is not inline. A hint: it
/// never faults and changes no result.
#[inline]
fn prefetch_value(text: &Utf8ViewArray, view: &View) {
    if view.length <= View::MAX_INLINE_SIZE {
        return;
    }
    let Some(buffer) = text.data_buffers().get(view.buffer_idx as usize) else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    {
        let address = buffer.as_ptr().wrapping_add(view.offset as usize);
        // SAFETY: a prefetch is a hint that reads nothing the program sees and cannot fault,
        // whatever the address; SSE, which it needs, is part of x86-64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                address.cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = buffer;
}

/// `to.copy_from_slice(from)` for texts of 8 to 32 bytes (ids, codes) as two fixed-size
/// copies that overlap, not a call to `memcpy` sized at run time; others as that.
#[inline]
fn copy_text(to: &mut [u8], from: &[u8]) {
    let length = from.len();
    assert_eq!(to.len(), length, "copy_text: lengths differ");
    match length {
        8..=16 => {
            to[..8].copy_from_slice(&from[..8]);
            to[length - 8..].copy_from_slice(&from[length - 8..]);
        }
        17..=32 => {
            to[..16].copy_from_slice(&from[..16]);
            to[length - 16..].copy_from_slice(&from[length - 16..]);
        }
        _ => to.copy_from_slice(from),
    }
}

/// The plain pages of a text column's chunk (one row group's batch of it), or `None` when the
/// column is nested, the options ask for version 2 pages or for statistics, or the chunk is
/// not text: polars' writer then writes it.
///
/// A plain text value is its length (4 bytes, little-endian) and its bytes, which is how a
/// short value's view begins: a value of up to 12 bytes is written as its whole 16-byte view,
/// one store, and the next value written over the view's tail. polars' writer copies each value
/// with a call to `memmove` (the patient ids of the working files: 3–5% of ingest's CPU at
/// England scale).
pub(crate) fn plain_text_pages(
    chunk: &dyn Array,
    field: &ParquetType,
    options: WriteOptions,
) -> Option<Vec<Page>> {
    let ParquetType::PrimitiveType(type_) = field else {
        return None;
    };
    let text = chunk.as_any().downcast_ref::<Utf8ViewArray>()?;
    if options.version != Version::V1 || options.has_statistics() {
        return None;
    }
    let optional = type_.field_info.repetition == Repetition::Optional;
    let rows = text.len();
    // polars counts a text row's bytes without their lengths.
    let bytes_per_row = if rows == 0 {
        0
    } else {
        (text.total_bytes_len() as f64 / rows as f64) as usize
    };
    let rows_per_page = rows_per_page(options, bytes_per_row);
    let views = text.views();
    let mut pages = Vec::new();
    for start in (0..rows).step_by(rows_per_page) {
        let page_rows = rows_per_page.min(rows - start);
        let validity = text
            .validity()
            .map(|validity| validity.clone().sliced(start, page_rows))
            .filter(|validity| validity.unset_bits() > 0);
        if validity.is_some() && !optional {
            return None;
        }
        let page_views = &views[start..start + page_rows];
        let value_bytes: usize = page_views.iter().map(|view| 4 + view.length as usize).sum();
        let mut buffer = Vec::with_capacity(value_bytes + 64);
        append_page_levels(&mut buffer, optional, validity.as_ref(), page_rows).ok()?;
        let mut at = buffer.len();
        // Room for the last value's whole view past the page's bytes; cut off at the end.
        buffer.resize(at + value_bytes + 16, 0);
        for (row, view) in page_views.iter().enumerate() {
            if let Some(ahead) = page_views.get(row + PREFETCH_AHEAD) {
                prefetch_value(text, ahead);
            }
            if validity
                .as_ref()
                .is_some_and(|validity| !validity.get_bit(row))
            {
                continue;
            }
            let length = view.length as usize;
            if length <= View::MAX_INLINE_SIZE as usize {
                buffer[at..at + 16].copy_from_slice(&view.as_u128().to_le_bytes());
            } else {
                buffer[at..at + 4].copy_from_slice(&view.length.to_le_bytes());
                copy_text(
                    &mut buffer[at + 4..at + 4 + length],
                    text.value(start + row).as_bytes(),
                );
            }
            at += 4 + length;
        }
        buffer.truncate(at);
        pages.push(data_page(type_, page_rows, buffer, Encoding::Plain, None)?);
    }
    Some(pages)
}

/// polars' data page size when the options set none (`row_slice_ranges` in polars-parquet),
/// and the most it allows.
const DEFAULT_PAGE_BYTES: usize = 1024 * 1024;
const MAX_PAGE_BYTES: usize = (1 << 31) - (1 << 25);

/// The rows of a data page where polars splits a column (`row_slice_ranges` in
/// polars-parquet): the page size over (its estimate of the bytes a row + 1), at least one.
fn rows_per_page(options: WriteOptions, bytes_per_row: usize) -> usize {
    let page_bytes = options
        .data_page_size
        .unwrap_or(DEFAULT_PAGE_BYTES)
        .min(MAX_PAGE_BYTES);
    (page_bytes / (bytes_per_row + 1)).max(1)
}

/// The pages of a dictionary column (one row group of it): the dictionary page, then pages of
/// keys. `None` when the column is nested or the options ask for version 2 pages: polars'
/// writer then writes it.
///
/// polars encodes the keys one at a time through a chain of iterators (2.4% of a national
/// run's CPU); here a page's keys are read as a slice ([`rle_bit_packed`]). The dictionary
/// page and the column's statistics depend on the values alone, so they are polars' own,
/// taken from its pages of the values each listed once. The pages are split where polars
/// splits them.
pub(crate) fn dictionary_pages(
    dictionary: &DictionaryArray<u32>,
    field: &ParquetType,
    options: WriteOptions,
) -> PolarsResult<Option<Vec<Page>>> {
    let ParquetType::PrimitiveType(type_) = field else {
        return Ok(None);
    };
    if options.version != Version::V1 || dictionary.values().null_count() > 0 {
        return Ok(None);
    }
    let values = dictionary.values();
    let distinct = u32::try_from(values.len()).ok();
    let Some(distinct) = distinct.filter(|&distinct| distinct > 0) else {
        return Ok(None);
    };
    let each_once = PrimitiveArray::new(ArrowDataType::UInt32, (0..distinct).collect(), None);
    let listed = DictionaryArray::try_new(dictionary.dtype().clone(), each_once, values.clone())?;
    let mut leaves = array_to_columns(
        listed.boxed(),
        field.clone(),
        options,
        &[Encoding::RleDictionary],
    )?;
    let (Some(mut leaf), true) = (leaves.pop(), leaves.is_empty()) else {
        return Ok(None);
    };
    let (Some(Page::Dict(values_page)), Some(Page::Data(listed_keys))) =
        (leaf.next().transpose()?, leaf.next().transpose()?)
    else {
        return Ok(None);
    };
    let DataPageHeader::V1(listed_header) = listed_keys.header() else {
        return Ok(None);
    };
    let mut statistics = listed_header.statistics.clone();
    if let Some(statistics) = &mut statistics {
        statistics.null_count = Some(dictionary.null_count() as i64);
    }

    let optional = type_.field_info.repetition == Repetition::Optional;
    let keys = dictionary.keys();
    let rows = keys.len();
    // A key is 4 bytes a row.
    let rows_per_page = rows_per_page(options, 4);
    let mut pages = vec![Page::Dict(values_page)];
    let mut present: Vec<u32> = Vec::new();
    for start in (0..rows).step_by(rows_per_page) {
        let page_rows = rows_per_page.min(rows - start);
        let validity = keys
            .validity()
            .map(|validity| validity.clone().sliced(start, page_rows));
        let mut page_keys = &keys.values()[start..start + page_rows];
        // A missing row has a definition level and no key.
        if let Some(validity) = validity.as_ref().filter(|v| v.unset_bits() > 0) {
            present.clear();
            present.extend(
                page_keys
                    .iter()
                    .zip(validity.iter())
                    .filter_map(|(&key, valid)| valid.then_some(key)),
            );
            page_keys = &present;
        }
        let mut buffer = Vec::with_capacity(page_rows + 64);
        append_page_levels(&mut buffer, optional, validity.as_ref(), page_rows)?;
        let bit_width = 32 - page_keys.iter().max().map_or(0, |max| max.leading_zeros());
        buffer.push(bit_width as u8);
        rle_bit_packed(&mut buffer, page_keys, bit_width);
        let Some(page) = data_page(
            type_,
            page_rows,
            buffer,
            Encoding::RleDictionary,
            statistics.clone(),
        ) else {
            return Ok(None);
        };
        pages.push(page);
    }
    Ok(Some(pages))
}

/// The most values one packed run holds: as many as polars writes, which every reader of its
/// files takes.
const MAX_PACKED: usize = 8192;

/// Appends `values` in Parquet's hybrid encoding (run-length and bit-packed) at `bit_width`
/// bits a value: the values are taken in groups of eight, and a group of one value begins a
/// run, written once with its count; the groups between runs are packed. (A run of 8 to 14
/// values that no group lies within is packed: runs are found a group at a time.)
fn rle_bit_packed(out: &mut Vec<u8>, values: &[u32], bit_width: u32) {
    let mut packed_from = 0;
    let mut at = 0;
    while at + 8 <= values.len() {
        let first = values[at];
        let differ = values[at..at + 8]
            .iter()
            .fold(0, |differ, &value| differ | (value ^ first));
        if differ != 0 {
            at += 8;
            continue;
        }
        let run = 8 + values[at + 8..]
            .iter()
            .take_while(|&&value| value == first)
            .count();
        bit_packed(out, &values[packed_from..at], bit_width);
        write_uleb128(out, (run as u64) << 1);
        let value_bytes = bit_width.div_ceil(8) as usize;
        out.extend_from_slice(&first.to_le_bytes()[..value_bytes]);
        at += run;
        packed_from = at;
    }
    bit_packed(out, &values[packed_from..], bit_width);
}

/// Appends `values` as packed runs of `bit_width` bits a value, first value in the lowest
/// bits; a last group of fewer than eight is padded with zeros (readers know the count).
fn bit_packed(out: &mut Vec<u8>, values: &[u32], bit_width: u32) {
    for run in values.chunks(MAX_PACKED) {
        let groups = run.len().div_ceil(8);
        write_uleb128(out, ((groups as u64) << 1) | 1);
        let start = out.len();
        let bytes = groups * bit_width as usize;
        // Room for a whole last word: the bytes past the run are cut off at the end.
        out.resize(start + bytes + 8, 0);
        let packed = &mut out[start..];
        if bit_width <= 8 {
            // Eight values make `bit_width` bytes of one word (none at 0 bits).
            let width = bit_width as usize;
            for (group, at) in run.chunks(8).zip((0..).map(|group| group * width)) {
                let word = group
                    .iter()
                    .zip((0..).map(|value| value * bit_width))
                    .fold(0u64, |word, (&value, shift)| {
                        word | (u64::from(value) << shift)
                    });
                packed[at..at + 8].copy_from_slice(&word.to_le_bytes());
            }
            out.truncate(start + bytes);
            continue;
        }
        let mut at = 0;
        let mut word = 0u64;
        let mut bits = 0;
        for &value in run {
            word |= u64::from(value) << bits;
            bits += bit_width;
            if bits >= 32 {
                packed[at..at + 4].copy_from_slice(&(word as u32).to_le_bytes());
                at += 4;
                word >>= 32;
                bits -= 32;
            }
        }
        packed[at..at + 8].copy_from_slice(&word.to_le_bytes());
        out.truncate(start + bytes);
    }
}

fn write_uleb128(out: &mut Vec<u8>, value: u64) {
    let mut bytes = [0u8; 10];
    let used = uleb128::encode(value, &mut bytes);
    out.extend_from_slice(&bytes[..used]);
}

/// Each row's dictionary key, and the first row of each distinct value, in the order first
/// seen (polars' order too). Rows are counted across the column's chunks.
struct Keys {
    keys: Vec<u32>,
    first_rows: Vec<u32>,
}

/// Values remembered by a cheap summary of their bits ([`KeyFinder::recent`]): a column of a
/// few values (sex, a label) finds each there without hashing it or probing the table, and so
/// does a column of a few thousand that come in clusters (a practice's patients' areas and
/// their scores: 4,800 LSOAs in a row group of the patient-level table, 15 → 9.6 ns a row).
/// 1,024 entries of at most 32 bytes stay in the first-level cache.
const RECENT_BITS: u32 = 10;

/// Spreads a value's summary over the bits that pick its place among the recent values
/// (Fibonacci hashing: the top bits of the product).
const SPOT_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// Finds the dictionary keys of a column's rows, chunk after chunk.
struct KeyFinder<Id> {
    /// The column's rows, in all its chunks.
    rows: usize,
    keys: Vec<u32>,
    first_rows: Vec<u32>,
    table: HashTable<(Id, u32)>,
    /// The last value found at each place its summary picks ([`RECENT_BITS`]), with its key.
    /// Compared by value, not bits: a long text is its place in the buffers, and equal texts
    /// stored apart (each row's copy, as a Parquet file is read) share a summary, their
    /// length and first bytes.
    recent: Box<[Option<(Id, u32)>; 1 << RECENT_BITS]>,
    /// The last value and its key: tables are often sorted or grouped (a practice's
    /// patients), and a run of one value is looked up once.
    last: Option<(Id, u32)>,
    /// Whether rows are checked against [`KeyFinder::last`] first: unless the sample's rows
    /// mostly repeat the row before, that check is a branch the processor mispredicts (a
    /// column of two values in no order took 8.3 ns a row with it, 5.0 without).
    follow_runs: bool,
    /// Rows whose value was the row before's.
    in_runs: usize,
    /// Values found again after their run ended.
    returned: usize,
}

impl<Id: Copy + Eq> KeyFinder<Id> {
    fn new(rows: usize) -> Self {
        KeyFinder {
            rows,
            keys: Vec::with_capacity(rows),
            first_rows: Vec::new(),
            table: HashTable::new(),
            recent: Box::new([None; 1 << RECENT_BITS]),
            last: None,
            follow_runs: true,
            in_runs: 0,
            returned: 0,
        }
    }

    /// Adds the keys of the next chunk, of `len` rows: `id(row)` is what identifies a row's
    /// value (its bits), `spot` is a cheap summary of an id that equal values share (where
    /// [`KeyFinder::recent`] looks), `hash` hashes an id and `same` says whether two ids are
    /// the same value; missing rows (`validity`) get key 0. `false` when too many values are
    /// distinct for a dictionary.
    fn add(
        &mut self,
        len: usize,
        validity: Option<&Bitmap>,
        id: impl Fn(usize) -> Id,
        spot: impl Fn(Id) -> u64,
        hash: impl Fn(Id) -> u64,
        same: impl Fn(Id, Id) -> bool,
    ) -> bool {
        let first = self.keys.len();
        let mut keys = std::mem::take(&mut self.keys);
        // Missing rows keep key 0.
        keys.resize(first + len, 0);
        let validity = validity.filter(|valid| valid.unset_bits() > 0);
        let mut from = 0;
        while from < len {
            let at = first + from;
            if at == SAMPLE_ROWS && !self.sample_allows_dictionary(&hash) {
                self.keys = keys;
                return false;
            }
            // The rows up to the end of the sample, then the rest.
            let to = if at < SAMPLE_ROWS {
                len.min(SAMPLE_ROWS - first)
            } else {
                len
            };
            let rows = &mut keys[first + from..first + to];
            if self.follow_runs {
                self.keys_of::<true>(rows, from, first, validity, &id, &spot, &hash, &same);
            } else {
                self.keys_of::<false>(rows, from, first, validity, &id, &spot, &hash, &same);
            }
            from = to;
        }
        self.keys = keys;
        true
    }

    /// The keys of `rows`, rows `from..` of the chunk (of `first..` across the chunks).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn keys_of<const FOLLOW_RUNS: bool>(
        &mut self,
        rows: &mut [u32],
        from: usize,
        first: usize,
        validity: Option<&Bitmap>,
        id: impl Fn(usize) -> Id,
        spot: impl Fn(Id) -> u64,
        hash: impl Fn(Id) -> u64,
        same: impl Fn(Id, Id) -> bool,
    ) {
        match validity {
            None => {
                for (key, row) in rows.iter_mut().zip(from..) {
                    *key = self.key_of::<FOLLOW_RUNS>(id(row), first + row, &spot, &hash, &same);
                }
            }
            Some(valid) => {
                for (key, row) in rows.iter_mut().zip(from..) {
                    if valid.get_bit(row) {
                        *key =
                            self.key_of::<FOLLOW_RUNS>(id(row), first + row, &spot, &hash, &same);
                    }
                }
            }
        }
    }

    /// Whether the values of the first [`SAMPLE_ROWS`] rows leave a dictionary worth
    /// finding; if so, the table is given room for as many values as they suggest (growing
    /// it rehashes it).
    fn sample_allows_dictionary(&mut self, hash: impl Fn(Id) -> u64) -> bool {
        let distinct = self.first_rows.len();
        if distinct > SAMPLE_DISTINCT || (self.returned == 0 && distinct > SAMPLE_IN_RUNS) {
            return false;
        }
        // Runs are followed where three rows in four continue one.
        self.follow_runs = self.in_runs * 4 >= SAMPLE_ROWS * 3;
        let expected = self.rows / SAMPLE_ROWS * distinct;
        self.table
            .reserve(expected.saturating_sub(self.table.len()), |&(known, _)| {
                hash(known)
            });
        true
    }

    /// The key of `value`, on row `at` (counted across the chunks): the last row's, one
    /// remembered in [`KeyFinder::recent`], one found in the table, or a new one.
    #[inline(always)]
    fn key_of<const FOLLOW_RUNS: bool>(
        &mut self,
        value: Id,
        at: usize,
        spot: impl Fn(Id) -> u64,
        hash: impl Fn(Id) -> u64,
        same: impl Fn(Id, Id) -> bool,
    ) -> u32 {
        if FOLLOW_RUNS
            && let Some((last, key)) = self.last
            && last == value
        {
            self.in_runs += 1;
            return key;
        }
        let slot = (spot(value).wrapping_mul(SPOT_MULTIPLIER) >> (64 - RECENT_BITS)) as usize;
        let key = match self.recent[slot] {
            Some((known, key)) if same(known, value) => {
                self.returned += 1;
                key
            }
            _ => {
                let next = self.first_rows.len() as u32;
                let (_, key) = *self
                    .table
                    .entry(
                        hash(value),
                        |&(known, _)| same(known, value),
                        |&(known, _)| hash(known),
                    )
                    .or_insert((value, next))
                    .get();
                if key == next {
                    self.first_rows.push(at as u32);
                } else {
                    self.returned += 1;
                }
                self.recent[slot] = Some((value, key));
                key
            }
        };
        if FOLLOW_RUNS {
            self.last = Some((value, key));
        }
        key
    }

    /// The keys, or `None` when too many values are distinct for a dictionary.
    fn finish(self) -> Option<Keys> {
        repeats_enough(self.first_rows.len(), self.rows).then_some(Keys {
            keys: self.keys,
            first_rows: self.first_rows,
        })
    }
}

/// `row` of a column (counted across its chunks) as its chunk and its row there; `starts`
/// holds each chunk's first row.
fn chunk_row(starts: &[usize], row: u32) -> (usize, usize) {
    let row = row as usize;
    let chunk = starts.partition_point(|&start| start <= row) - 1;
    (chunk, row - starts[chunk])
}

/// Each chunk's first row.
fn chunk_starts(lens: impl Iterator<Item = usize>) -> Vec<usize> {
    lens.scan(0, |rows, len| {
        let start = *rows;
        *rows += len;
        Some(start)
    })
    .collect()
}

/// The dictionary array of `keys` over `values`, missing where the chunks' validities say.
fn dictionary<'a>(
    keys: Vec<u32>,
    validities: impl Iterator<Item = (usize, Option<&'a Bitmap>)> + Clone,
    values: Box<dyn Array>,
) -> Option<DictionaryArray<u32>> {
    let validity = validities
        .clone()
        .any(|(_, validity)| validity.is_some_and(|v| v.unset_bits() > 0))
        .then(|| {
            let mut joined = MutableBitmap::with_capacity(keys.len());
            for (len, validity) in validities {
                match validity {
                    Some(validity) => joined.extend_from_bitmap(validity),
                    None => joined.extend_constant(len, true),
                }
            }
            Bitmap::from(joined)
        });
    let dtype =
        ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity);
    DictionaryArray::try_new(dtype, keys, values).ok()
}

/// The bits that identify an inline text value (up to 12 bytes): its length and bytes, without
/// whatever lies past them in the view.
fn inline_bits(view: View) -> u128 {
    let kept = 32 + 8 * view.length.min(View::MAX_INLINE_SIZE);
    let bits = view.as_u128();
    if kept >= 128 {
        bits
    } else {
        bits & ((1u128 << kept) - 1)
    }
}

fn text_pages(chunks: &[&Utf8ViewArray]) -> ColumnPages {
    // A long value is identified by its view, with the chunks' buffers numbered one after
    // another so that a view names one place among all of them; an inline value by its bits.
    // Two long views that point to different places hold the same value when their bytes are
    // equal.
    let mut first_buffers = Vec::with_capacity(chunks.len());
    let mut buffers: Vec<&[u8]> = Vec::new();
    for chunk in chunks {
        first_buffers.push(buffers.len() as u32);
        buffers.extend(chunk.data_buffers().iter().map(|buffer| buffer.as_slice()));
    }
    let hasher = crate::lazy::key_hasher();
    let bytes = |view: View| {
        let start = view.offset as usize;
        &buffers[view.buffer_idx as usize][start..start + view.length as usize]
    };
    let as_view = View::from;
    let hash = |id: u128| {
        let view = as_view(id);
        if view.is_inline() {
            hasher.hash_one(id)
        } else {
            hasher.hash_one(bytes(view))
        }
    };
    let same = |a: u128, b: u128| {
        if a == b {
            return true;
        }
        let (x, y) = (as_view(a), as_view(b));
        !x.is_inline() && x.length == y.length && x.prefix == y.prefix && bytes(x) == bytes(y)
    };
    // An inline value's summary is its bits folded; a long one's, its length and first four
    // bytes (the view's low half), which its copies share wherever they are stored.
    let spot = |id: u128| {
        let (low, high) = (id as u64, (id >> 64) as u64);
        if as_view(id).is_inline() {
            low ^ high.rotate_left(29)
        } else {
            low
        }
    };
    let mut finder = KeyFinder::new(chunks.iter().map(|chunk| chunk.len()).sum());
    for (chunk, &first_buffer) in chunks.iter().zip(&first_buffers) {
        let views = chunk.views();
        let id = |row: usize| {
            let view = views[row];
            if view.is_inline() {
                inline_bits(view)
            } else {
                View {
                    buffer_idx: view.buffer_idx + first_buffer,
                    ..view
                }
                .as_u128()
            }
        };
        if !finder.add(chunk.len(), chunk.validity(), id, spot, hash, same) {
            return ColumnPages::Plain;
        }
    }
    let Some(Keys { keys, first_rows }) = finder.finish() else {
        return ColumnPages::Plain;
    };
    let starts = chunk_starts(chunks.iter().map(|chunk| chunk.len()));
    let mut values = MutableBinaryViewArray::<str>::with_capacity(first_rows.len());
    for &row in &first_rows {
        let (chunk, row) = chunk_row(&starts, row);
        // SAFETY: a first row is a row of its chunk.
        values.push_value(unsafe { chunks[chunk].value_unchecked(row) });
    }
    let values: Utf8ViewArray = values.freeze();
    let validities = chunks.iter().map(|chunk| (chunk.len(), chunk.validity()));
    match dictionary(keys, validities, values.boxed()) {
        Some(dictionary) => ColumnPages::Dictionary(dictionary),
        None => ColumnPages::Chosen,
    }
}

/// A float column's pages: values are the same when their bits are (so `-0.0` and `0.0`, and
/// distinct NaNs, keep their own entries, as written).
fn number_pages<T: NativeType, B: Copy + Eq + std::hash::Hash + Into<u64>>(
    chunks: &[Box<dyn Array>],
    bits: impl Fn(T) -> B,
) -> ColumnPages {
    let Some(chunks) = downcast_all::<PrimitiveArray<T>>(chunks) else {
        return ColumnPages::Chosen;
    };
    let hasher = crate::lazy::key_hasher();
    let hash = |id: B| hasher.hash_one(id);
    let spot = |id: B| -> u64 { id.into() };
    let same = |a: B, b: B| a == b;
    let mut finder = KeyFinder::new(chunks.iter().map(|chunk| chunk.len()).sum());
    for chunk in &chunks {
        let values = chunk.values();
        let id = |row: usize| bits(values[row]);
        if !finder.add(chunk.len(), chunk.validity(), id, &spot, hash, same) {
            return ColumnPages::Plain;
        }
    }
    let Some(Keys { keys, first_rows }) = finder.finish() else {
        return ColumnPages::Plain;
    };
    let starts = chunk_starts(chunks.iter().map(|chunk| chunk.len()));
    let distinct: Vec<T> = first_rows
        .iter()
        .map(|&row| {
            let (chunk, row) = chunk_row(&starts, row);
            chunks[chunk].values()[row]
        })
        .collect();
    let distinct = PrimitiveArray::new(chunks[0].dtype().clone(), distinct.into(), None);
    let validities = chunks.iter().map(|chunk| (chunk.len(), chunk.validity()));
    match dictionary(keys, validities, distinct.boxed()) {
        Some(dictionary) => ColumnPages::Dictionary(dictionary),
        None => ColumnPages::Chosen,
    }
}

/// Every chunk as an `A`, or `None` when one is not.
fn downcast_all<A: 'static>(chunks: &[Box<dyn Array>]) -> Option<Vec<&A>> {
    chunks
        .iter()
        .map(|chunk| chunk.as_any().downcast_ref::<A>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a column of one chunk is written.
    fn pages_of(array: &dyn Array) -> ColumnPages {
        column_pages(&[array.to_boxed()])
    }

    fn text(values: &[Option<&str>]) -> Utf8ViewArray {
        let mut array = MutableBinaryViewArray::<str>::new();
        for value in values {
            array.push(*value);
        }
        array.freeze()
    }

    /// The values a dictionary column holds, row by row.
    fn decoded(dictionary: &DictionaryArray<u32>) -> Vec<Option<String>> {
        let values = dictionary
            .values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()
            .expect("text values");
        (0..dictionary.len())
            .map(|row| {
                let keys = dictionary.keys();
                keys.is_valid(row)
                    .then(|| values.value(keys.value(row) as usize).to_string())
            })
            .collect()
    }

    #[test]
    fn repeated_text_gets_a_dictionary_in_the_order_first_seen() {
        let long = "a practice name longer than twelve bytes";
        let rows = [
            Some("E38000001"),
            Some("E38000001"),
            None,
            Some(long),
            Some("Y"),
            Some(long),
            Some("E38000002"),
            Some("Y"),
            Some(""),
            Some("E38000001"),
        ];
        let ColumnPages::Dictionary(dictionary) = pages_of(&text(&rows)) else {
            panic!("a dictionary");
        };
        let values = dictionary
            .values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()
            .expect("text");
        let distinct: Vec<&str> = values.values_iter().collect();
        assert_eq!(distinct, ["E38000001", long, "Y", "E38000002", ""]);
        let expected: Vec<Option<String>> = rows.iter().map(|r| r.map(str::to_string)).collect();
        assert_eq!(decoded(&dictionary), expected);
    }

    #[test]
    fn equal_long_text_in_different_buffers_is_one_entry() {
        // Two arrays' buffers: the same long value at different places.
        let long = "a value of more than twelve bytes";
        let first = text(&[Some(long), Some("x")]);
        let second = text(&[Some("y"), Some(long)]);
        let both = polars_arrow::compute::concatenate::concatenate(&[&first, &second])
            .expect("concatenated");
        // Only four rows: a dictionary is worth it at any share. The same whether the arrays
        // are concatenated or the column's chunks.
        for pages in [
            pages_of(both.as_ref()),
            column_pages(&[first.boxed(), second.boxed()]),
        ] {
            let ColumnPages::Dictionary(dictionary) = pages else {
                panic!("a dictionary");
            };
            assert_eq!(dictionary.values().len(), 3, "{:?}", decoded(&dictionary));
        }
    }

    #[test]
    fn long_texts_of_one_length_and_first_bytes_stay_apart() {
        // Each row's copy stored apart, as a Parquet file is read: equal values are found
        // again by their bytes, and values whose length and first four bytes agree (the
        // summary that picks their place among the recent values) are not mistaken for each
        // other however they alternate.
        let names = [
            "Other White background",
            "Other Black background",
            "Other Asian background",
        ];
        let rows: Vec<Option<&str>> = (0..3000)
            .map(|i| Some(names[(i * 7 + i / 5) % 3]))
            .collect();
        let ColumnPages::Dictionary(dictionary) = pages_of(&text(&rows)) else {
            panic!("a dictionary");
        };
        assert_eq!(dictionary.values().len(), 3);
        let expected: Vec<Option<String>> = rows.iter().map(|r| r.map(str::to_string)).collect();
        assert_eq!(decoded(&dictionary), expected);
    }

    #[test]
    fn a_column_in_chunks_gets_the_keys_of_the_column_in_one() {
        // Chunks of their own buffers, whose long values sit at the same place in each (the
        // same buffer number and offset in different chunks are different values), with
        // missing rows in some chunks only.
        let label = |i: usize| format!("a label longer than twelve bytes {}", i % 5);
        let chunk = |from: usize, to: usize, gaps: bool| {
            let values: Vec<Option<String>> = (from..to)
                .map(|i| (!gaps || i % 7 != 0).then(|| label(i * 3 + from)))
                .collect();
            text(&values.iter().map(|v| v.as_deref()).collect::<Vec<_>>())
        };
        let chunks = [
            chunk(0, 9000, false),
            chunk(9000, 9500, true),
            chunk(9500, 20_000, false),
        ];
        let joined = polars_arrow::compute::concatenate::concatenate(
            &chunks.iter().map(|c| c as &dyn Array).collect::<Vec<_>>(),
        )
        .expect("concatenated");
        let boxed: Vec<Box<dyn Array>> = chunks.iter().map(|c| c.clone().boxed()).collect();
        let (ColumnPages::Dictionary(in_chunks), ColumnPages::Dictionary(in_one)) =
            (column_pages(&boxed), pages_of(joined.as_ref()))
        else {
            panic!("dictionaries");
        };
        assert_eq!(in_chunks.values().len(), 5);
        assert_eq!(decoded(&in_chunks), decoded(&in_one));
        assert_eq!(in_chunks.keys(), in_one.keys());

        let numbers = |from: usize, to: usize| {
            PrimitiveArray::<f64>::from_iter(
                (from..to).map(|i| (i % 9 != 0).then_some((i % 4) as f64)),
            )
        };
        let (ColumnPages::Dictionary(in_chunks), ColumnPages::Dictionary(in_one)) = (
            column_pages(&[numbers(0, 5000).boxed(), numbers(5000, 12_000).boxed()]),
            pages_of(&numbers(0, 12_000)),
        ) else {
            panic!("dictionaries");
        };
        assert_eq!(in_chunks.keys(), in_one.keys());
        assert_eq!(in_chunks.values().len(), 4);
    }

    #[test]
    fn inline_text_is_compared_by_its_bytes_not_what_follows_them() {
        // A view whose unused bytes are not zero (as a sliced or rewritten view may be) must
        // match the same value's clean view.
        let clean = View::new_inline(b"ab");
        let mut dirty = clean;
        dirty.offset = 0xdead_beef;
        assert_eq!(inline_bits(clean), inline_bits(dirty));
        assert_ne!(inline_bits(clean), inline_bits(View::new_inline(b"abc")));
        assert_ne!(
            inline_bits(View::new_inline(b"a")),
            inline_bits(View::new_inline(b"a\0"))
        );
    }

    fn text_of(values: impl Iterator<Item = String>) -> Utf8ViewArray {
        let values: Vec<String> = values.collect();
        text(&values.iter().map(|v| Some(v.as_str())).collect::<Vec<_>>())
    }

    #[test]
    fn ids_are_written_plain_and_codes_with_a_dictionary() {
        // Distinct from the first rows: given up after the sample.
        let ids = text_of((0..20_000).map(|i| format!("P{i:09}")));
        assert!(matches!(pages_of(&ids), ColumnPages::Plain));
        // 15,000 codes in no order: mostly distinct early on, but they repeat over the rows.
        let scattered = text_of((0..20_000u64).map(|i| {
            let mixed = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            format!("E{:08}", mixed % 15_000)
        }));
        let ColumnPages::Dictionary(codes) = pages_of(&scattered) else {
            panic!("a dictionary of codes");
        };
        let distinct: std::collections::HashSet<&str> = scattered.values_iter().collect();
        assert_eq!(codes.values().len(), distinct.len(), "each code once");
        // Repeated in the sample, then distinct: more than three quarters distinct in all.
        let late = text_of((0..40_000).map(|i| {
            if i < SAMPLE_ROWS {
                format!("C{}", i % 100)
            } else {
                format!("C{i}")
            }
        }));
        assert!(matches!(pages_of(&late), ColumnPages::Plain));
        // Patients' rows listed patient by patient: each id in one run, never again.
        let in_runs = text_of((0..30_000).map(|i| format!("P{:09}", i / 3)));
        assert!(matches!(pages_of(&in_runs), ColumnPages::Plain));
        // The same ids, two lists one after the other: they come back.
        let back = text_of((0..30_000).map(|i| format!("P{:09}", (i % 6_000) / 3)));
        assert!(matches!(pages_of(&back), ColumnPages::Dictionary(_)));
        // A practice's patients together: few values, in runs, a dictionary.
        let grouped = text_of((0..30_000).map(|i| format!("A{:05}", i / 1500)));
        assert!(matches!(pages_of(&grouped), ColumnPages::Dictionary(_)));
    }

    #[test]
    fn each_value_of_many_gets_one_entry_whenever_it_comes_back() {
        // A practice's patients together, the practices again after all of them: every later
        // row must find its value's first entry, not add another.
        let practices = text_of((0..262_144).map(|i| format!("A{:05}", (i / 40) % 6405)));
        let ColumnPages::Dictionary(dictionary) = pages_of(&practices) else {
            panic!("a dictionary");
        };
        assert_eq!(dictionary.values().len(), 6405);
        let expected: Vec<Option<String>> = practices
            .values_iter()
            .map(|v| Some(v.to_string()))
            .collect();
        assert_eq!(decoded(&dictionary), expected);
    }

    #[test]
    fn keys_are_the_same_whether_or_not_runs_are_followed() {
        // Two values in no order through the sample (runs not followed), then runs, a new
        // value and missing rows; and the same column in runs first (followed), then in no
        // order. Every row must decode to its value either way.
        let scattered = |i: usize| if (i * 7919) % 13 < 6 { "F" } else { "M" };
        let rows: Vec<Option<String>> = (0..40_000)
            .map(|i| match i {
                _ if i < SAMPLE_ROWS => Some(scattered(i).to_string()),
                _ if i % 997 == 0 => None,
                _ if i % 5_000 < 50 => Some("a value only seen after the sample".to_string()),
                _ => Some(["F", "M"][(i / 100) % 2].to_string()),
            })
            .collect();
        let in_runs_first: Vec<Option<String>> = (0..40_000)
            .map(|i| match i {
                _ if i < SAMPLE_ROWS => Some(["F", "M"][(i / 100) % 2].to_string()),
                _ if i % 997 == 0 => None,
                _ => Some(scattered(i).to_string()),
            })
            .collect();
        for rows in [rows, in_runs_first] {
            let column = text(&rows.iter().map(Option::as_deref).collect::<Vec<_>>());
            let ColumnPages::Dictionary(dictionary) = pages_of(&column) else {
                panic!("a dictionary");
            };
            assert_eq!(decoded(&dictionary), rows);
        }
    }

    #[test]
    fn floats_are_the_same_when_their_bits_are() {
        let values = PrimitiveArray::<f64>::from(vec![
            Some(1.5),
            Some(-0.0),
            Some(0.0),
            None,
            Some(1.5),
            Some(f64::NAN),
            Some(f64::NAN),
        ]);
        let ColumnPages::Dictionary(dictionary) = pages_of(&values) else {
            panic!("a dictionary");
        };
        let distinct = dictionary
            .values()
            .as_any()
            .downcast_ref::<PrimitiveArray<f64>>()
            .expect("floats");
        let bits: Vec<u64> = distinct.values_iter().map(|v| v.to_bits()).collect();
        let expected: Vec<u64> = [1.5, -0.0, 0.0, f64::NAN]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(bits, expected);
        let keys: Vec<Option<u32>> = dictionary.keys().iter().map(|k| k.copied()).collect();
        assert_eq!(
            keys,
            [Some(0), Some(1), Some(2), None, Some(0), Some(3), Some(3)]
        );
    }

    /// `values` encoded at `bit_width`, and decoded again by polars' reader.
    fn encoded_and_decoded(values: &[u32], bit_width: u32) -> (Vec<u8>, Vec<u32>) {
        let mut encoded = Vec::new();
        rle_bit_packed(&mut encoded, values, bit_width);
        let decoder = polars_parquet::parquet::encoding::hybrid_rle::HybridRleDecoder::new(
            &encoded,
            bit_width,
            values.len(),
        );
        (encoded.clone(), decoder.collect().expect("decoded"))
    }

    #[test]
    fn keys_are_counted_in_long_runs_and_packed_between_them() {
        // A run of ten 5s at 3 bits: its count (10 << 1) and the value in a byte.
        assert_eq!(encoded_and_decoded(&[5; 10], 3).0, [20, 5]);
        // Three values at 2 bits: one group (1 << 1 | 1), first value lowest, zeros after.
        assert_eq!(encoded_and_decoded(&[1, 2, 3], 2).0, [3, 0b11_10_01, 0]);
        // Three values, then thirteen 4s: five 4s fill the first group, eight are counted.
        let mut values = vec![1, 2, 3];
        values.extend([4; 13]);
        let (encoded, decoded) = encoded_and_decoded(&values, 3);
        assert_eq!(decoded, values);
        assert_eq!(encoded[0], 3, "one packed group");
        assert_eq!(&encoded[4..], [8 << 1, 4], "then a run of eight 4s");
        // A run too short to count once it has filled the group stays packed.
        let mut values = vec![1, 2, 3];
        values.extend([4; 12]);
        let (encoded, decoded) = encoded_and_decoded(&values, 3);
        assert_eq!(decoded, values);
        assert_eq!(encoded[0], (2 << 1) | 1, "two packed groups, no run");
    }

    #[test]
    fn keys_decode_as_written_at_every_bit_width() {
        // Runs of 1 to 20 values; the longest stretch without a long run is longer than one
        // packed run holds.
        let mut mixed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            mixed ^= mixed << 13;
            mixed ^= mixed >> 7;
            mixed ^= mixed << 17;
            mixed
        };
        for bit_width in 0..=32u32 {
            let most = if bit_width == 32 {
                u32::MAX
            } else {
                (1u32 << bit_width) - 1
            };
            let mut values = Vec::new();
            while values.len() < 30_000 {
                let value = (next() as u32) & most;
                let run = if values.len() < 10_000 {
                    1
                } else {
                    1 + (next() % 20) as usize
                };
                values.extend(std::iter::repeat_n(value, run));
            }
            values.push(most);
            let (_, decoded) = encoded_and_decoded(&values, bit_width);
            assert_eq!(decoded, values, "{bit_width} bits");
        }
    }

    #[test]
    fn integers_and_missing_columns_are_left_to_polars() {
        let numbers = PrimitiveArray::<i64>::from(vec![Some(1), Some(1)]);
        assert!(matches!(pages_of(&numbers), ColumnPages::Chosen));
        let missing = text(&[None, None]);
        assert!(matches!(pages_of(&missing), ColumnPages::Chosen));
    }

    /// Every length, across the fixed-size copies' bounds, is copied whole.
    #[test]
    fn copy_text_copies_every_byte_at_every_length() {
        let from: Vec<u8> = (1..=40).collect();
        for length in 0..=40 {
            let mut to = vec![0u8; length];
            copy_text(&mut to, &from[..length]);
            assert_eq!(to, &from[..length], "length {length}");
        }
    }

    /// The plain pages of a text chunk are the pages polars' writer makes, split alike and byte
    /// for byte, for values inline in their views and not, with and without missing values;
    /// with statistics asked for, polars writes them.
    #[test]
    fn plain_text_pages_hold_the_bytes_polars_writes() {
        use polars_arrow::datatypes::Field;
        use polars_parquet::write::{StatisticsOptions, to_parquet_type};
        let long = "an id of more than twelve bytes";
        let rows: Vec<Option<&str>> = vec![
            Some("P1"),
            Some(""),
            None,
            Some("exactly12byt"),
            Some("thirteen byte"),
            Some(long),
            Some("P2"),
            None,
        ];
        let complete: Vec<Option<&str>> = rows.iter().copied().flatten().map(Some).collect();
        let cases = [
            (&rows, true, None),
            (&complete, true, None),
            (&complete, false, None),
            // Pages of a few rows each, split where polars splits them.
            (&rows, true, Some(24)),
            (&complete, false, Some(40)),
        ];
        for (values, nullable, data_page_size) in cases {
            // Sliced, so that the chunk's views start past its buffers' first bytes.
            let mut padded = vec![Some("ahead")];
            padded.extend(values.iter().copied());
            let chunk = text(&padded).sliced(1, values.len());
            let field =
                to_parquet_type(&Field::new("id".into(), ArrowDataType::Utf8View, nullable))
                    .expect("type");
            let options = WriteOptions {
                statistics: StatisticsOptions::empty(),
                compression: polars_parquet::write::CompressionOptions::Uncompressed,
                version: Version::V1,
                data_page_size,
            };
            let ours = plain_text_pages(&chunk, &field, options).expect("our pages");
            let mut leaves =
                array_to_columns(chunk.to_boxed(), field.clone(), options, &[Encoding::Plain])
                    .expect("polars' pages");
            let theirs: Vec<Page> = leaves
                .pop()
                .expect("a leaf")
                .collect::<PolarsResult<_>>()
                .expect("pages");
            let buffers = |pages: &[Page]| -> Vec<(Vec<u8>, usize)> {
                pages
                    .iter()
                    .map(|page| match page {
                        Page::Data(page) => (page.buffer().to_vec(), page.num_values()),
                        Page::Dict(_) => panic!("no dictionary"),
                    })
                    .collect()
            };
            assert_eq!(
                buffers(&ours),
                buffers(&theirs),
                "nullable {nullable}, pages of {data_page_size:?} bytes"
            );
            if data_page_size.is_some() {
                assert!(ours.len() > 1, "{} pages", ours.len());
            }

            let with_statistics = WriteOptions {
                statistics: StatisticsOptions::full(),
                ..options
            };
            assert!(plain_text_pages(&chunk, &field, with_statistics).is_none());
        }
    }

    #[test]
    fn flags_are_copied_unless_some_are_missing() {
        let flags = BooleanArray::from(vec![Some(true), Some(false)]);
        assert!(matches!(pages_of(&flags), ColumnPages::Flags));
        let missing = BooleanArray::from(vec![Some(true), None]);
        assert!(matches!(pages_of(&missing), ColumnPages::Chosen));
    }
}
