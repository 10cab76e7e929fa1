//! The practice sums rolled up to every footprint level (England, ICB, PCN, practice) by their
//! integer codes, in the published key order, before any text column is made.
//!
//! Why not polars: the sums by practice × breakdown value × ESP2013 age band are millions of
//! rows with four text keys (6,400 practices × ~60 values × 20 bands); a join to the practices,
//! a `group_by` per level and a `group_by` into lists per footprint × value (for the DSRs) took
//! about 2 s of measure at any size (its fixed cost, benches/RESULTS.md). Here a practice's
//! code picks its footprint at each level from a table, a value's code its label, an age
//! band's code its ESP2013 band, and each practice slot is added into its footprint's row.
//!
//! Sums are added in slot order (the order the practice sums first saw each practice × value
//! × age), so a run gives the same totals every time.

use std::collections::HashMap;

use polars::prelude::*;
use rayon::prelude::*;

use super::sums::{Grouping, PRACTICE_KEY, PracticeSums};
use super::{
    ALL, BREAKDOWN, BREAKDOWN_UNKNOWN_RANK, BREAKDOWN_VALUE, LEVELS, breakdown_label,
    breakdowns_in_order, value_order,
};
use super::{den_column, num_column};
use crate::pipeline::enrich::ESP2013_BANDS;
use crate::schema;

/// The rolled-up sums of the flat indicators and of the DSRs.
pub(super) struct RolledUp {
    /// One row per footprint × breakdown value, in the published key order: `footprint_kind,
    /// footprint_code, breakdown, breakdown_value`, and `__num{i}`, `__den{i}` of each flat
    /// indicator `i`.
    pub(super) flat: DataFrame,
    /// The DSRs' sums by ESP2013 band, when there are DSRs.
    pub(super) by_band: Option<BandSums>,
}

/// The DSRs' numerators and denominators by ESP2013 band, one row per footprint × breakdown
/// value in the published key order. Rows of people whose age band is not one of the 19 (age
/// unknown) make their footprint × value's row but add to no band.
pub(super) struct BandSums {
    /// `footprint_kind, footprint_code, breakdown, breakdown_value` of each row.
    pub(super) keys: DataFrame,
    /// The DSR indicators, as indices into the run's indicators.
    indicators: Vec<usize>,
    /// Row by row, band by band: the numerator and denominator of each of `indicators`.
    sums: Vec<f64>,
}

impl BandSums {
    /// The DSR indicators, as indices into the run's indicators, in the order of their sums.
    pub(super) fn indicators(&self) -> &[usize] {
        &self.indicators
    }

    /// The numerator (`denominator` false) or denominator of the `j`th of
    /// [`BandSums::indicators`] in each ESP2013 band of `row`.
    pub(super) fn bands(&self, j: usize, row: usize, denominator: bool) -> [f64; 19] {
        let width = 2 * self.indicators.len();
        let term = 2 * j + usize::from(denominator);
        std::array::from_fn(|band| self.sums[(row * ESP2013_BANDS.len() + band) * width + term])
    }
}

/// Code meaning "no row yet" in a level's table of rows.
const NO_ROW: u32 = u32::MAX;

/// One footprint level: each practice code's footprint there, and the footprints' codes.
struct Level {
    kind: &'static str,
    /// By practice code: the footprint's place in `codes` (`None`: no footprint at this level,
    /// e.g. a practice in no PCN, or a missing practice code below England).
    footprint_of: Vec<Option<u32>>,
    /// The footprints' codes, sorted (their published order).
    codes: Vec<String>,
}

/// A key column's labels: each code's label's place among the distinct labels, which are
/// listed in the published value order (numbers by value, then texts).
#[derive(Clone)]
struct Labels {
    of_code: Vec<u32>,
    texts: Vec<String>,
}

/// The levels asked for, in the published order (England first), from the practice codes
/// coded by the sums (`practice_codes`, by code) and `practices` (practice, PCN and ICB codes).
fn levels(
    practice_codes: &Series,
    practices: &DataFrame,
    wanted: &[String],
) -> PolarsResult<Vec<Level>> {
    let practice_codes = practice_codes.cast(&DataType::String)?;
    let practice_codes = practice_codes.str()?;
    // Each practice's PCN and ICB; a practice listed twice is read at its first row, as the
    // patients are attributed (`attribute::attach_membership_part`).
    let mut footprints: HashMap<&str, [Option<&str>; 2]> = HashMap::new();
    let (codes, pcns, icbs) = (
        practices.column(schema::PRACTICE_CODE)?.str()?,
        practices.column(schema::PCN_CODE)?.str()?,
        practices.column(schema::ICB_CODE)?.str()?,
    );
    for ((code, pcn), icb) in codes.iter().zip(pcns.iter()).zip(icbs.iter()) {
        if let Some(code) = code {
            footprints.entry(code).or_insert([pcn, icb]);
        }
    }
    let mut kinds: Vec<&'static str> = wanted
        .iter()
        .map(|level| {
            LEVELS
                .iter()
                .copied()
                .find(|known| known == level)
                .unwrap_or("practice")
        })
        .collect();
    kinds.sort_by_key(|kind| LEVELS.iter().position(|known| known == kind));
    Ok(kinds
        .into_iter()
        .map(|kind| {
            let footprint = |practice: Option<&str>| -> Option<String> {
                match kind {
                    "england" => Some(schema::ENGLAND_CODE.to_string()),
                    "icb" => footprints.get(practice?)?[1].map(str::to_string),
                    "pcn" => footprints.get(practice?)?[0].map(str::to_string),
                    _ => practice.map(str::to_string),
                }
            };
            let texts: Vec<Option<String>> = practice_codes.iter().map(footprint).collect();
            let mut codes: Vec<String> = texts.iter().flatten().cloned().collect();
            codes.sort_unstable();
            codes.dedup();
            let footprint_of = texts
                .iter()
                .map(|text| {
                    text.as_ref()
                        .map(|text| codes.binary_search(text).unwrap_or_default() as u32)
                })
                .collect();
            Level {
                kind,
                footprint_of,
                codes,
            }
        })
        .collect())
}

/// The labels of a key column's values (by code), as the published `breakdown_value`s:
/// [`breakdown_label`], distinct, in the published value order.
fn labels(name: &str, values: Series) -> PolarsResult<Labels> {
    let values = values.with_name(BREAKDOWN_VALUE.into());
    let labelled = DataFrame::new(values.len(), vec![values.into_column()])?
        .lazy()
        .select([breakdown_label(name).alias(BREAKDOWN_VALUE)])
        .collect()?;
    let label_of_code = texts(&labelled)?;
    // The distinct labels in the order the table publishes values in.
    let mut distinct = label_of_code.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let distinct = Series::new(BREAKDOWN_VALUE.into(), distinct);
    let texts = texts(
        &DataFrame::new(distinct.len(), vec![distinct.into_column()])?
            .lazy()
            .sort_by_exprs(
                value_order(),
                SortMultipleOptions::default().with_nulls_last(true),
            )
            .collect()?,
    )?;
    let place: HashMap<&str, u32> = texts
        .iter()
        .enumerate()
        .map(|(at, text)| (text.as_str(), at as u32))
        .collect();
    let of_code = label_of_code
        .iter()
        .map(|label| place.get(label.as_str()).copied().unwrap_or_default())
        .collect();
    Ok(Labels { of_code, texts })
}

/// The `breakdown_value` column of `frame` as texts (a missing one as "").
fn texts(frame: &DataFrame) -> PolarsResult<Vec<String>> {
    Ok(frame
        .column(BREAKDOWN_VALUE)?
        .str()?
        .iter()
        .map(|label| label.unwrap_or_default().to_string())
        .collect())
}

/// The terms of a rolled-up row of `grouping`'s indicators: a numerator and a denominator
/// each, in each ESP2013 band when the rows are `by_band`. [`rows_of`] lays its rows out so
/// and [`rolled`] reads them so.
fn row_width(grouping: &Grouping, by_band: bool) -> usize {
    2 * grouping.indicators.len() * if by_band { ESP2013_BANDS.len() } else { 1 }
}

/// The rows of one level × grouping: their keys and sums (by band, for a grouping by age).
struct Rows {
    /// (footprint, grouping, label) of each row: the published order, by rank.
    keys: Vec<(u32, u32, u32)>,
    sums: Vec<f64>,
}

/// A grouping's slots added into the rows of `level`: a slot's practice picks its footprint,
/// its value code its label; `bands` (for a grouping by age) its age code's ESP2013 band, a
/// row's sums then being its bands' sums. `rank` is the grouping's place in the published
/// breakdown order.
fn rows_of(
    level: &Level,
    grouping: &Grouping,
    rank: u32,
    values: Option<&Labels>,
    bands: Option<&[Option<usize>]>,
) -> Rows {
    let width = 2 * grouping.indicators.len();
    let slot_width = grouping.width();
    let labels = values.map_or(1, |labels| labels.texts.len());
    let row_width = row_width(grouping, bands.is_some());
    let mut row_of = vec![NO_ROW; level.codes.len() * labels];
    // At most a row a cell or a slot, whichever is fewer: reserved, not grown by doubling
    // (pages of the reserve that no row reaches are never touched).
    let most = row_of.len().min(grouping.slot_keys.len());
    let mut rows = Rows {
        keys: Vec::with_capacity(most),
        sums: Vec::with_capacity(most * row_width),
    };
    for (slot, key) in grouping.slot_keys.iter().enumerate() {
        let Some(footprint) = level
            .footprint_of
            .get(key.practice as usize)
            .copied()
            .flatten()
        else {
            continue;
        };
        let label = values.map_or(0, |labels| labels.of_code[key.value as usize]);
        let cell = footprint as usize * labels + label as usize;
        if row_of[cell] == NO_ROW {
            row_of[cell] = rows.keys.len() as u32;
            rows.keys.push((footprint, rank, label));
            rows.sums.resize(rows.sums.len() + row_width, 0.0);
        }
        let offset = match bands {
            None => 0,
            Some(bands) => match bands[key.age as usize] {
                Some(band) => band * width,
                // Age unknown: the row is there, its bands are not added to.
                None => continue,
            },
        };
        let row = row_of[cell] as usize * row_width + offset;
        let sums = &grouping.sums[slot * slot_width..slot * slot_width + width];
        for (sum, term) in rows.sums[row..row + width].iter_mut().zip(sums) {
            *sum += term;
        }
    }
    rows
}

/// Where rows of one breakdown come from: a grouping's slots, each under its value's label, or
/// (for `all`) each under one label, "All".
struct Source<'a> {
    grouping: &'a Grouping,
    breakdown: &'a str,
    values: Option<&'a Labels>,
}

/// The breakdowns of a grouping, each with the labels of the grouping's value codes: a
/// breakdown's own labels, or for breakdowns summed jointly each one's label of each tuple's
/// code in it; `None` for `all`.
fn grouping_labels(
    sums: &PracticeSums,
    grouping: &Grouping,
    labels: &[Option<Labels>],
) -> Vec<Option<Labels>> {
    match grouping.keys.value {
        None => vec![None],
        Some(k) if k < sums.keys.len() => vec![labels[k].clone()],
        Some(k) => {
            let joint = &sums.joint[k - sums.keys.len()];
            joint
                .columns
                .iter()
                .enumerate()
                .map(|(p, &column)| {
                    labels[column].as_ref().map(|of_column| Labels {
                        of_code: (0..joint.len())
                            .map(|code| of_column.of_code[joint.column_code(code, p) as usize])
                            .collect(),
                        texts: of_column.texts.clone(),
                    })
                })
                .collect()
        }
    }
}

/// The sources of a pass's groupings (all with the same indicators, by age or not; each with
/// its breakdowns' labels, [`grouping_labels`]): a breakdown's from its grouping, and the
/// `all` rows from the grouping with the fewest slots when no grouping is `all` (see
/// `PracticeSums::new`).
fn sources<'a>(groupings: &[(&'a Grouping, &'a [Option<Labels>])]) -> Vec<Source<'a>> {
    let mut sources: Vec<Source<'a>> = groupings
        .iter()
        .flat_map(|&(grouping, labels)| {
            grouping
                .breakdowns
                .iter()
                .zip(labels)
                .map(move |(breakdown, values)| Source {
                    grouping,
                    breakdown: breakdown.as_str(),
                    values: values.as_ref(),
                })
        })
        .collect();
    if !sources.iter().any(|source| source.breakdown == ALL)
        && let Some(&(smallest, _)) = groupings.iter().min_by_key(|(g, _)| g.slot_keys.len())
    {
        sources.push(Source {
            grouping: smallest,
            breakdown: ALL,
            values: None,
        });
    }
    sources
}

/// Rolled-up rows' sums where they were added (a block per level and source), and each
/// published row's place among them: gathered once into the layout a consumer reads, not
/// copied into rows first (at a few hundred MB at any list size, that copy and the strided
/// pass over it that made the columns were a fifth of measure's time: benches/RESULTS.md,
/// thirty-fifth round).
struct RolledSums {
    blocks: Vec<Rows>,
    /// (block, row) of each published row.
    place: Vec<(u32, u32)>,
    /// Terms a row.
    row_width: usize,
}

impl RolledSums {
    /// The sums of the row at `place`.
    fn row(&self, &(block, row): &(u32, u32)) -> &[f64] {
        let start = row as usize * self.row_width;
        &self.blocks[block as usize].sums[start..start + self.row_width]
    }

    /// The sums row by row (`row_width` terms each).
    fn row_major(&self) -> Vec<f64> {
        let mut sums = Vec::with_capacity(self.place.len() * self.row_width);
        for place in &self.place {
            sums.extend_from_slice(self.row(place));
        }
        sums
    }

    /// Each term's column, gathered row by row: each thread takes a share of the columns
    /// and reads its part of every row.
    fn columns(&self) -> Vec<Vec<f64>> {
        let mut columns: Vec<Vec<f64>> = (0..self.row_width)
            .map(|_| Vec::with_capacity(self.place.len()))
            .collect();
        let share = self
            .row_width
            .div_ceil(rayon::current_num_threads().max(1))
            .max(1);
        columns
            .par_chunks_mut(share)
            .enumerate()
            .for_each(|(chunk, columns)| {
                let first = chunk * share;
                for place in &self.place {
                    for (column, &term) in columns.iter_mut().zip(&self.row(place)[first..]) {
                        column.push(term);
                    }
                }
            });
        columns
    }
}

/// The rows of `sources` at every level, in the published key order: their key columns and
/// their sums ([`RolledSums`]).
fn rolled(
    sources: &[Source<'_>],
    levels: &[Level],
    bands: Option<&[Option<usize>]>,
) -> PolarsResult<(DataFrame, RolledSums)> {
    // Breakdowns in the published order (`all` first), stably.
    let mut order: Vec<usize> = (0..sources.len()).collect();
    let breakdown_rank = |breakdown: &str| {
        breakdowns_in_order()
            .position(|known| known == breakdown)
            .unwrap_or(BREAKDOWN_UNKNOWN_RANK)
    };
    order.sort_by_key(|&g| breakdown_rank(sources[g].breakdown));
    let mut rank = vec![0u32; sources.len()];
    for (at, &g) in order.iter().enumerate() {
        rank[g] = at as u32;
    }
    let blocks: Vec<Vec<Rows>> = levels
        .par_iter()
        .map(|level| {
            sources
                .par_iter()
                .enumerate()
                .map(|(g, source)| rows_of(level, source.grouping, rank[g], source.values, bands))
                .collect()
        })
        .collect();
    let row_width = sources
        .first()
        .map_or(0, |source| row_width(source.grouping, bands.is_some()));
    let height: usize = blocks.iter().flatten().map(|rows| rows.keys.len()).sum();
    let (mut kinds, mut footprints, mut breakdowns, mut values) = (
        Vec::with_capacity(height),
        Vec::with_capacity(height),
        Vec::with_capacity(height),
        Vec::with_capacity(height),
    );
    let mut place = Vec::with_capacity(height);
    for (l, (level, blocks)) in levels.iter().zip(&blocks).enumerate() {
        // This level's rows, footprint by footprint, then by breakdown and value.
        let mut at: Vec<(u32, u32, u32, usize, usize)> = blocks
            .iter()
            .enumerate()
            .flat_map(|(g, rows)| {
                rows.keys
                    .iter()
                    .enumerate()
                    .map(move |(row, &(footprint, rank, label))| (footprint, rank, label, g, row))
            })
            .collect();
        at.sort_unstable();
        for (footprint, _, label, g, row) in at {
            let source = &sources[g];
            kinds.push(level.kind);
            footprints.push(level.codes[footprint as usize].as_str());
            breakdowns.push(source.breakdown);
            values.push(match source.values {
                Some(labels) => labels.texts[label as usize].as_str(),
                None => "All",
            });
            place.push(((l * sources.len() + g) as u32, row as u32));
        }
    }
    let keys = DataFrame::new(
        height,
        vec![
            Column::new(schema::FOOTPRINT_KIND.into(), kinds),
            Column::new(schema::FOOTPRINT_CODE.into(), footprints),
            Column::new(BREAKDOWN.into(), breakdowns),
            Column::new(BREAKDOWN_VALUE.into(), values),
        ],
    )?;
    let sums = RolledSums {
        blocks: blocks.into_iter().flatten().collect(),
        place,
        row_width,
    };
    Ok((keys, sums))
}

impl PracticeSums {
    /// The sums rolled up to each of `levels` (`practices`: practice, PCN and ICB codes), in
    /// the published key order: the flat indicators' as columns, the DSRs' by ESP2013 band.
    ///
    /// # Errors
    /// If `practices` lacks a code column, or a label cannot be made (an internal error).
    pub(super) fn roll_up(
        self,
        practices: &DataFrame,
        levels: &[String],
    ) -> PolarsResult<RolledUp> {
        let levels = self::levels(&self.keys[PRACTICE_KEY].values()?, practices, levels)?;
        let labels = self
            .keys
            .iter()
            .enumerate()
            .map(|(k, key)| {
                (k != PRACTICE_KEY)
                    .then(|| labels(key.name(), key.values()?))
                    .transpose()
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        let breakdown_labels: Vec<Vec<Option<Labels>>> = self
            .groupings
            .iter()
            .map(|grouping| grouping_labels(&self, grouping, &labels))
            .collect();
        let (by_age, flat): (Vec<_>, Vec<_>) = self
            .groupings
            .iter()
            .zip(breakdown_labels.iter().map(Vec::as_slice))
            .partition(|(grouping, _)| grouping.keys.age.is_some());
        let (keys, sums) = rolled(&sources(&flat), &levels, None)?;
        let indicators = flat
            .first()
            .map(|(g, _)| g.indicators.clone())
            .unwrap_or_default();
        let mut columns = keys.columns().to_vec();
        let mut terms = sums.columns().into_iter();
        for &i in &indicators {
            let (num, den) = (terms.next(), terms.next());
            columns.push(Column::new(num_column(i).into(), num.unwrap_or_default()));
            columns.push(Column::new(den_column(i).into(), den.unwrap_or_default()));
        }
        let height = columns.first().map_or(0, Column::len);
        let flat_frame = DataFrame::new(height, columns)?;
        let by_band = match by_age.first() {
            None => None,
            Some(&(first, _)) => {
                let age = first.keys.age.unwrap_or_default();
                // Each age code's ESP2013 band (`None`: not one of the 19, e.g. unknown).
                let bands: Vec<Option<usize>> = labels[age]
                    .as_ref()
                    .map(|labels| {
                        labels
                            .of_code
                            .iter()
                            .map(|&label| {
                                let text = labels.texts[label as usize].as_str();
                                ESP2013_BANDS.iter().position(|band| *band == text)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let (keys, sums) = rolled(&sources(&by_age), &levels, Some(&bands))?;
                Some(BandSums {
                    keys,
                    indicators: first.indicators.clone(),
                    sums: sums.row_major(),
                })
            }
        };
        Ok(RolledUp {
            flat: flat_frame,
            by_band,
        })
    }
}
