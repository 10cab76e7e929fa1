//! Statistical disclosure control for the tables meant for publication.
//!
//! Owns the policy applied by publish to every publishable table (everything but the
//! restricted `patients_enriched` and `rejects`): a count from 1 to `suppress_up_to` (default
//! 7) is suppressed (null, with a `suppressed` flag), other counts are rounded to the nearest
//! `round_to` (default 5), and values derived from a suppressed count (a rate, a share, limits,
//! a gap) are withheld. Values are computed from the true counts before rounding, as official
//! statistics are. Zero is not disclosive and is kept.
//!
//! **Secondary (complementary) suppression.** Where published cells add up to a total that is
//! published too (or can be derived from other tables), one suppressed cell in a group would be
//! the total minus the others. [`DisclosureConfig::complementary`] suppresses the next smallest
//! cell of every such group, and repeats until no group has exactly one suppressed cell
//! (unless its total is itself suppressed). [`Additivity`] says how a table's rows group:
//! `indicators` by breakdown within a footprint (the parts of its `all` row), `segments` as a
//! cross-table (each line along one dimension adds up to a margin). Rounding to 5 blurs a
//! difference but does not hide a small one, so it is no substitute. Groups across the
//! footprint hierarchy (practices within a PCN, ICBs within England) are not protected here.
//!
//! The decisions are pure functions over plain vectors ([`DisclosureConfig::complementary`]),
//! applied to polars tables by [`DisclosureConfig::protect_additive`]; `pipeline::run` applies
//! them to every publishable table before publish writes it.

use std::collections::{HashSet, VecDeque};

use polars::prelude::*;
use rayon::prelude::*;
use serde::Deserialize;

use crate::schema;

/// `[disclosure]`: statistical disclosure control of publishable tables.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureConfig {
    /// Apply it (default true). Turning it off is for restricted, internal runs only.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Counts from 1 to this are suppressed (default 7).
    #[serde(default = "default_suppress_up_to")]
    pub suppress_up_to: f64,
    /// Other counts are rounded to the nearest multiple of this (default 5; 1 = no rounding).
    #[serde(default = "default_round_to")]
    pub round_to: f64,
}

impl Default for DisclosureConfig {
    fn default() -> Self {
        DisclosureConfig {
            enabled: true,
            suppress_up_to: default_suppress_up_to(),
            round_to: default_round_to(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_suppress_up_to() -> f64 {
    7.0
}

fn default_round_to() -> f64 {
    5.0
}

/// Column flagging rows with a suppressed count.
pub const SUPPRESSED: &str = "suppressed";

/// How the rows of a table add up, for complementary suppression.
#[derive(Debug, Clone, Copy)]
pub enum Additivity<'a> {
    /// Rows sharing the `keys` and one value of `breakdown` are the parts of the row with the
    /// same `keys` whose `breakdown` is `total` (the `indicators` table: the breakdown rows of
    /// an indicator in a footprint sum to its `all` row). A group without a total row is taken
    /// to add up to the sum of its parts.
    Breakdowns {
        /// Columns identifying the whole (indicator, footprint kind and code).
        keys: &'a [&'a str],
        /// The column naming the breakdown.
        breakdown: &'a str,
        /// The breakdown value of the total row.
        total: &'a str,
    },
    /// A cross-table within the `keys`: cells that differ in one of the `dimensions` only add up
    /// to a margin (not published in the table, but derivable from others: a footprint's
    /// population by IMD quintile is in `area_deprivation`), so each cell is in one group per
    /// dimension (the `segments` table).
    CrossTable {
        /// Columns identifying one table (footprint, segmentation).
        keys: &'a [&'a str],
        /// The cross-classifying columns.
        dimensions: &'a [&'a str],
    },
}

/// Cells of a table that add up to a total: indices into the count vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The cells (row indices).
    pub cells: Vec<usize>,
    /// Their total as published or derivable (its true value, before rounding).
    pub total: f64,
}

impl DisclosureConfig {
    /// Whether a true count is disclosive (from 1 to `suppress_up_to`); zero is not.
    pub fn is_small(&self, count: f64) -> bool {
        count > 0.0 && count <= self.suppress_up_to
    }

    /// Which cells to suppress: every small count (primary), plus complementary cells so that
    /// no group whose total is shown has exactly one suppressed cell. A group of one cell (the
    /// cell is its total) cannot be protected by suppression within it; its cell is protected,
    /// if at all, by the other groups it belongs to.
    ///
    /// A group with a single suppressed cell gets its smallest other positive cell suppressed
    /// (a zero only when no positive cell is left; ties go to the first row), and every group
    /// that cell belongs to is checked again, until nothing changes. Each round suppresses one
    /// more cell, so this ends. `counts` are the true counts (`NaN` for a missing one, which is
    /// never chosen).
    pub fn complementary(&self, counts: &[f64], groups: &[Group]) -> Vec<bool> {
        let mut suppressed: Vec<bool> = counts.iter().map(|&c| self.is_small(c)).collect();
        let member_of = Memberships::of(counts.len(), groups);
        // A cell alone in one of its groups equals that group's total: hiding it there hides
        // nothing, so such cells are chosen as complements last.
        let alone: Vec<bool> = (0..counts.len())
            .map(|cell| {
                member_of
                    .groups(cell)
                    .iter()
                    .any(|&g| groups[g].cells.len() == 1)
            })
            .collect();
        let mut queue: VecDeque<usize> = (0..groups.len()).collect();
        let mut queued = vec![true; groups.len()];
        while let Some(g) = queue.pop_front() {
            queued[g] = false;
            let Some(group) = groups.get(g) else { continue };
            // A suppressed total protects its parts: there is nothing to subtract from.
            if self.is_small(group.total) {
                continue;
            }
            let hidden = group
                .cells
                .iter()
                .filter(|&&i| suppressed.get(i).copied().unwrap_or(false))
                .count();
            if hidden != 1 {
                continue;
            }
            let candidate = group
                .cells
                .iter()
                .copied()
                .filter(|&i| {
                    !suppressed.get(i).copied().unwrap_or(true)
                        && counts.get(i).is_some_and(|c| c.is_finite())
                })
                .min_by(|&a, &b| {
                    let (x, y) = (counts[a], counts[b]);
                    // Cells that can be hidden in every group first, then positive cells (a zero
                    // hides little), then the smallest, then the first row, so the choice is
                    // deterministic.
                    alone[a]
                        .cmp(&alone[b])
                        .then((x <= 0.0).cmp(&(y <= 0.0)))
                        .then(x.total_cmp(&y))
                        .then(a.cmp(&b))
                });
            if let Some(cell) = candidate {
                suppressed[cell] = true;
                for &other in member_of.groups(cell) {
                    if !queued[other] {
                        queued[other] = true;
                        queue.push_back(other);
                    }
                }
            }
        }
        suppressed
    }

    /// Whether a count must be suppressed.
    fn small(&self, count: Expr) -> Expr {
        count
            .clone()
            .gt(lit(0.0))
            .and(count.lt_eq(lit(self.suppress_up_to)))
    }

    /// A count as published: null when `suppressed`, else rounded.
    fn publish(&self, count: Expr, suppressed: Expr) -> Expr {
        let rounded = if self.round_to > 1.0 {
            (count.clone() / lit(self.round_to)).round(0, RoundMode::HalfAwayFromZero)
                * lit(self.round_to)
        } else {
            count.clone()
        };
        when(suppressed)
            .then(lit(NULL).cast(DataType::Float64))
            .otherwise(rounded.cast(DataType::Float64))
    }

    /// Protect a table: `counts` are suppressed or rounded; `derived` columns are withheld on
    /// rows where any of the `sources` counts is suppressed. Adds a `suppressed` flag.
    ///
    /// # Errors
    /// If a named column is missing.
    pub fn protect(
        &self,
        table: DataFrame,
        counts: &[&str],
        derived: &[(&str, &[&str])],
    ) -> PolarsResult<DataFrame> {
        self.protect_masked(table, counts, derived, &[])
    }

    /// [`protect`](Self::protect) plus complementary suppression of every count column within
    /// the groups `additivity` describes (each column on its own: a numerator can be undone by
    /// differencing whether or not its denominator is shown).
    ///
    /// # Errors
    /// If a named column is missing or not numeric.
    pub fn protect_additive(
        &self,
        table: DataFrame,
        counts: &[&str],
        derived: &[(&str, &[&str])],
        additivity: Additivity<'_>,
    ) -> PolarsResult<DataFrame> {
        if !self.enabled {
            return Ok(table);
        }
        let layout = GroupLayout::of(&table, additivity)?;
        // Each column on its own, side by side.
        let masks = counts
            .par_iter()
            .map(|&count| {
                let values = true_counts(&table, count)?;
                let groups = layout.groups(&values);
                Ok((count.to_string(), self.complementary(&values, &groups)))
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        self.protect_masked(table, counts, derived, &masks)
    }

    /// [`protect`](Self::protect) where `masks` add cells to suppress (one flag per row) on top
    /// of the small counts: complementary suppression, or cells repeated from a table protected
    /// that way.
    ///
    /// # Errors
    /// If a named column is missing or a mask has the wrong length.
    pub fn protect_masked(
        &self,
        table: DataFrame,
        counts: &[&str],
        derived: &[(&str, &[&str])],
        masks: &[(String, Vec<bool>)],
    ) -> PolarsResult<DataFrame> {
        if !self.enabled {
            return Ok(table);
        }
        let mask_name = |count: &str| format!("__suppress_{count}");
        let mut table = table;
        for (count, mask) in masks {
            table.with_column(Column::new(mask_name(count).into(), mask.as_slice()))?;
        }
        let suppressed = |count: &str| {
            let small = self.small(col(count).cast(DataType::Float64));
            if masks.iter().any(|(c, _)| c == count) {
                small.fill_null(lit(false)).or(col(mask_name(count)))
            } else {
                small.fill_null(lit(false))
            }
        };
        let any_suppressed = counts
            .iter()
            .map(|c| suppressed(c))
            .reduce(|a, b| a.or(b))
            .unwrap_or_else(|| lit(false));
        let mut withheld: Vec<Expr> = Vec::new();
        for (column, sources) in derived {
            let hidden = sources
                .iter()
                .map(|c| suppressed(c))
                .reduce(|a, b| a.or(b))
                .unwrap_or_else(|| lit(false));
            withheld.push(
                when(hidden)
                    .then(lit(NULL).cast(table.column(column)?.dtype().clone()))
                    .otherwise(col(*column))
                    .alias(*column),
            );
        }
        let rounded: Vec<Expr> = counts
            .iter()
            .map(|c| self.publish(col(*c), suppressed(c)).alias(*c))
            .collect();
        let drop: Vec<String> = masks.iter().map(|(c, _)| mask_name(c)).collect();
        table
            .lazy()
            .with_column(any_suppressed.alias(SUPPRESSED))
            .with_columns(withheld)
            .with_columns(rounded)
            .drop(by_name(drop, true, false))
            .collect()
    }
}

impl DisclosureConfig {
    /// Complementary suppression within each row of a table whose `parts` columns add up to
    /// its `total` column (`area_deprivation`: the people in IMD quintiles 1 to 5 are the
    /// people with a deprivation match). One mask per part column, for
    /// [`protect_masked`](Self::protect_masked); all false when disclosure control is off.
    ///
    /// # Errors
    /// If a column is missing or not numeric.
    pub fn row_part_masks(
        &self,
        table: &DataFrame,
        parts: &[&str],
        total: &str,
    ) -> PolarsResult<Vec<(String, Vec<bool>)>> {
        let height = table.height();
        if !self.enabled {
            return Ok(parts
                .iter()
                .map(|p| (p.to_string(), vec![false; height]))
                .collect());
        }
        let columns: Vec<Vec<f64>> = parts
            .iter()
            .map(|p| true_counts(table, p))
            .collect::<Result<_, _>>()?;
        let totals = true_counts(table, total)?;
        // Cell (row, part) is at row × parts + part.
        let width = parts.len();
        let mut counts = vec![f64::NAN; height * width];
        for (j, column) in columns.iter().enumerate() {
            for (row, &value) in column.iter().enumerate() {
                counts[row * width + j] = value;
            }
        }
        let groups: Vec<Group> = (0..height)
            .map(|row| Group {
                cells: (row * width..(row + 1) * width).collect(),
                total: totals
                    .get(row)
                    .copied()
                    .filter(|t| t.is_finite())
                    .unwrap_or(0.0),
            })
            .collect();
        let hidden = self.complementary(&counts, &groups);
        Ok(parts
            .iter()
            .enumerate()
            .map(|(j, p)| {
                (
                    p.to_string(),
                    (0..height).map(|row| hidden[row * width + j]).collect(),
                )
            })
            .collect())
    }
}

/// A count column as true values, `NaN` where missing.
fn true_counts(table: &DataFrame, count: &str) -> PolarsResult<Vec<f64>> {
    super::f64_values(table, count, f64::NAN)
}

/// Which rows form each group of a table (the same for every count column), and where each
/// group's total comes from.
struct GroupLayout {
    /// The cells of each group.
    cells: Vec<Vec<usize>>,
    /// The row holding each group's published total, if the table has one.
    total_rows: Vec<Option<usize>>,
}

impl GroupLayout {
    fn of(table: &DataFrame, additivity: Additivity<'_>) -> PolarsResult<GroupLayout> {
        match additivity {
            Additivity::Breakdowns {
                keys,
                breakdown,
                total,
            } => GroupLayout::of_breakdowns(table, keys, breakdown, total),
            Additivity::CrossTable { keys, dimensions } => {
                // A line: the keys and every dimension but `along` fixed. The lines along each
                // dimension are found side by side.
                let lines: Vec<Vec<Vec<usize>>> = (0..dimensions.len())
                    .into_par_iter()
                    .map(|along| {
                        let by: Vec<&str> = keys
                            .iter()
                            .chain(
                                dimensions
                                    .iter()
                                    .enumerate()
                                    .filter(|(d, _)| *d != along)
                                    .map(|(_, c)| c),
                            )
                            .copied()
                            .collect();
                        row_groups(table, &by)
                    })
                    .collect::<PolarsResult<_>>()?;
                let cells: Vec<Vec<usize>> = lines.into_iter().flatten().collect();
                Ok(GroupLayout {
                    total_rows: vec![None; cells.len()],
                    cells,
                })
            }
        }
    }

    /// The parts of each whole (rows sharing the `keys`): its rows of one `breakdown` value,
    /// other than `total`, whose row is the whole's total. The same layout as grouping by the
    /// keys and the breakdown, but a part lies within one whole, so each whole's parts are
    /// found among its own runs of rows by their breakdown value: grouping the runs by all the
    /// keys again was half of the layout's time at 8 million indicator rows, and a map of
    /// every (whole, breakdown) pair 60% (benches/RESULTS.md, thirty-fifth round).
    fn of_breakdowns(
        table: &DataFrame,
        keys: &[&str],
        breakdown: &str,
        total: &str,
    ) -> PolarsResult<GroupLayout> {
        if table.height() == 0 {
            return Ok(GroupLayout {
                cells: Vec::new(),
                total_rows: Vec::new(),
            });
        }
        let key_changed = changed_rows(table, keys)?;
        let key_runs = Runs::of(&key_changed);
        let part_runs = Runs::of(&(&key_changed | &changed_rows(table, &[breakdown])?));
        let breakdowns = table
            .column(breakdown)?
            .filter(&part_runs.is_start)?
            .cast(&DataType::String)?;
        let breakdowns: Vec<Option<&str>> = breakdowns.str()?.iter().collect();
        // The part runs of each key run: part runs split key runs, never cross them.
        let mut part_runs_of_key_run = Vec::with_capacity(key_runs.starts.len() + 1);
        let mut part_run = 0;
        for &start in &key_runs.starts {
            while part_runs.starts[part_run] < start {
                part_run += 1;
            }
            part_runs_of_key_run.push(part_run);
        }
        part_runs_of_key_run.push(part_runs.starts.len());
        // Each part run's part, whole by whole: a whole has a part per breakdown, a few, so
        // they are found by a search of the whole's own.
        let mut part_of_run = vec![usize::MAX; part_runs.starts.len()];
        let (mut first_runs, mut total_rows) = (Vec::new(), Vec::new());
        for whole in grouped_runs(table, keys, &key_runs)? {
            let mut parts_here: Vec<(Option<&str>, usize)> = Vec::new();
            let mut total_row = None;
            for key_run in whole {
                for run in part_runs_of_key_run[key_run]..part_runs_of_key_run[key_run + 1] {
                    let value = breakdowns[run];
                    if value == Some(total) {
                        // Total rows are totals, not parts: the whole's first one is its total.
                        total_row.get_or_insert(part_runs.starts[run]);
                        continue;
                    }
                    part_of_run[run] = match parts_here.iter().find(|(v, _)| *v == value) {
                        Some(&(_, part)) => part,
                        None => {
                            parts_here.push((value, first_runs.len()));
                            first_runs.push(run);
                            first_runs.len() - 1
                        }
                    };
                }
            }
            total_rows.resize(first_runs.len(), total_row);
        }
        // Each part's rows, in table order.
        let mut cells: Vec<Vec<usize>> = vec![Vec::new(); first_runs.len()];
        for (run, &part) in part_of_run.iter().enumerate() {
            if let Some(cells) = cells.get_mut(part) {
                cells.extend(part_runs.rows(run));
            }
        }
        // Parts in order of first appearance, as for any other grouping.
        if !first_runs.is_sorted() {
            let mut order: Vec<usize> = (0..first_runs.len()).collect();
            order.sort_unstable_by_key(|&part| first_runs[part]);
            cells = order
                .iter()
                .map(|&part| std::mem::take(&mut cells[part]))
                .collect();
            total_rows = order.iter().map(|&part| total_rows[part]).collect();
        }
        Ok(GroupLayout { cells, total_rows })
    }

    /// The groups with their totals for one count column.
    fn groups(&self, counts: &[f64]) -> Vec<Group> {
        let value = |row: usize| {
            counts
                .get(row)
                .copied()
                .filter(|c| c.is_finite())
                .unwrap_or(0.0)
        };
        self.cells
            .iter()
            .zip(&self.total_rows)
            .map(|(cells, total_row)| Group {
                cells: cells.clone(),
                total: match total_row {
                    Some(row) => value(*row),
                    None => cells.iter().map(|&row| value(row)).sum(),
                },
            })
            .collect()
    }
}

/// The rows of `table` sharing values of `by` (missing values form a group), groups in order
/// of first appearance and rows in table order, so that choices made group by group are the
/// same in every run.
///
/// Rows are first taken in runs of equal `by` values, by comparing each row with the one
/// before, and only each run's first row is hashed: tables sorted by their keys (`indicators`,
/// `segments`) have a run per group or nearly, and at 8 million indicator rows hashing every
/// row was half of their protection's time.
fn row_groups(table: &DataFrame, by: &[&str]) -> PolarsResult<Vec<Vec<usize>>> {
    if table.height() == 0 {
        return Ok(Vec::new());
    }
    let runs = Runs::of(&changed_rows(table, by)?);
    Ok(grouped_runs(table, by, &runs)?
        .into_iter()
        .map(|group| group.into_iter().flat_map(|run| runs.rows(run)).collect())
        .collect())
}

/// Whether each row but the first differs from the one before in any of `by` (a table of at
/// least one row), compared as two slices of the same columns (no copy).
fn changed_rows(table: &DataFrame, by: &[&str]) -> PolarsResult<BooleanChunked> {
    let height = table.height();
    let mut changed = BooleanChunked::full(PlSmallStr::EMPTY, false, height - 1);
    for name in by {
        let column = table.column(name)?.as_materialized_series();
        changed = &changed
            | &column
                .slice(1, height - 1)
                .not_equal_missing(&column.slice(0, height - 1))?;
    }
    Ok(changed)
}

/// Runs of consecutive rows with equal values.
struct Runs {
    /// Whether each row begins a run.
    is_start: BooleanChunked,
    /// The first row of each run.
    starts: Vec<usize>,
    height: usize,
}

impl Runs {
    /// The runs [`changed_rows`] marks.
    fn of(changed: &BooleanChunked) -> Runs {
        let is_start: BooleanChunked = std::iter::once(true)
            .chain(changed.iter().map(|c| c.unwrap_or(true)))
            .collect_ca(PlSmallStr::EMPTY);
        let starts = is_start
            .iter()
            .enumerate()
            .filter_map(|(row, start)| (start == Some(true)).then_some(row))
            .collect();
        Runs {
            is_start,
            starts,
            height: changed.len() + 1,
        }
    }

    /// The rows of run `run`.
    fn rows(&self, run: usize) -> std::ops::Range<usize> {
        let start = self.starts.get(run).copied().unwrap_or(self.height);
        let end = self.starts.get(run + 1).copied().unwrap_or(self.height);
        start..end
    }
}

/// The runs of `table` sharing values of `by`, by hashing each run's first row: groups in order
/// of first appearance, runs in table order.
fn grouped_runs(table: &DataFrame, by: &[&str], runs: &Runs) -> PolarsResult<Vec<Vec<usize>>> {
    let first_rows = table.select(by.iter().copied())?.filter(&runs.is_start)?;
    let grouped = first_rows.group_by_stable(by.iter().copied())?;
    Ok(grouped
        .get_groups()
        .iter()
        .map(|group| match group {
            GroupsIndicator::Idx((_, rows)) => rows.iter().map(|&r| r as usize).collect(),
            GroupsIndicator::Slice([first, len]) => {
                (first as usize..(first + len) as usize).collect()
            }
        })
        .collect())
}

/// The groups each cell lies in, in group order: one flat list with each cell's slice of it
/// (a cell lies in one group per line through it), rather than a list per cell, which at 8
/// million indicator rows was 8 million allocations.
struct Memberships {
    /// Where each cell's groups begin in `groups`; the last entry is the end.
    first: Vec<usize>,
    groups: Vec<usize>,
}

impl Memberships {
    fn of(cells: usize, groups: &[Group]) -> Memberships {
        let mut first = vec![0usize; cells + 1];
        for group in groups {
            for &cell in &group.cells {
                if let Some(count) = first.get_mut(cell + 1) {
                    *count += 1;
                }
            }
        }
        for cell in 0..cells {
            first[cell + 1] += first[cell];
        }
        // Each cell's next free place in `members` (a cell outside the table has none).
        let mut next = first[..cells].to_vec();
        let mut members = vec![0usize; first[cells]];
        for (g, group) in groups.iter().enumerate() {
            for &cell in &group.cells {
                if let Some(slot) = next.get_mut(cell) {
                    members[*slot] = g;
                    *slot += 1;
                }
            }
        }
        Memberships {
            first,
            groups: members,
        }
    }

    /// The groups `cell` lies in (none for a cell outside the table).
    fn groups(&self, cell: usize) -> &[usize] {
        match (self.first.get(cell), self.first.get(cell + 1)) {
            (Some(&start), Some(&end)) => &self.groups[start..end],
            _ => &[],
        }
    }
}

/// Cells of `table` that repeat rows of a protected table: one mask per `(column, breakdown
/// value)`, true where the protected row with the same `keys`, the breakdown `breakdown_of`
/// gives for the row's first key, and that value is suppressed. The `inequality` table repeats
/// the quintile 1 and 5 numerators of `indicators`; a cell suppressed there only as a
/// complement must be suppressed here too, or the complement is undone.
///
/// # Errors
/// If a key column is missing or not text.
pub fn repeated_cells<'a>(
    table: &DataFrame,
    protected: &DataFrame,
    keys: &[&str],
    breakdown_of: impl Fn(&str) -> Option<&'a str>,
    cells: &[(&str, &str)],
) -> PolarsResult<Vec<(String, Vec<bool>)>> {
    let Ok(flags) = protected.column(SUPPRESSED) else {
        // Disclosure control is off: nothing is suppressed.
        return Ok(cells
            .iter()
            .map(|(c, _)| (c.to_string(), vec![false; table.height()]))
            .collect());
    };
    let flags = flags.bool()?;
    let text = |frame: &DataFrame, name: &str| -> PolarsResult<StringChunked> {
        Ok(frame.column(name)?.cast(&DataType::String)?.str()?.clone())
    };
    let protected_keys: Vec<StringChunked> = keys
        .iter()
        .map(|k| text(protected, k))
        .collect::<Result<_, _>>()?;
    let breakdowns = text(protected, crate::pipeline::measure::BREAKDOWN)?;
    let values = text(protected, crate::pipeline::measure::BREAKDOWN_VALUE)?;
    let table_keys: Vec<StringChunked> = keys
        .iter()
        .map(|k| text(table, k))
        .collect::<Result<_, _>>()?;
    // Keys of borrowed texts held inline: no allocation a row (a suppressed row's key was six,
    // and keying them was most of this one-thread step after the SII batch).
    type CellKey<'t> = smallvec::SmallVec<[&'t str; 6]>;
    let mut hidden: HashSet<CellKey<'_>, foldhash::fast::FixedState> = HashSet::default();
    // The flags read in order (a table's rows come in blocks, a chunk each: a lookup by row
    // number searches the chunks).
    for (row, flag) in flags.iter().enumerate() {
        if flag != Some(true) {
            continue;
        }
        // Only the cells' breakdown values are ever looked up: most suppressed rows of a
        // national table are of other values, and keying them was most of this step.
        let value = values.get(row).unwrap_or_default();
        if !cells.iter().any(|(_, wanted)| *wanted == value) {
            continue;
        }
        // Nor any breakdown but the one the row's indicator's cells are read from.
        let breakdown = breakdowns.get(row).unwrap_or_default();
        let mut key: CellKey<'_> = protected_keys
            .iter()
            .map(|k| k.get(row).unwrap_or_default())
            .collect();
        if key.first().and_then(|id| breakdown_of(id)) != Some(breakdown) {
            continue;
        }
        key.push(breakdown);
        key.push(value);
        hidden.insert(key);
    }
    let mut masks = Vec::new();
    for (column, value) in cells {
        let mask = (0..table.height())
            .map(|row| {
                let mut key: CellKey<'_> = table_keys
                    .iter()
                    .map(|k| k.get(row).unwrap_or_default())
                    .collect();
                let Some(breakdown) = key.first().and_then(|id| breakdown_of(id)) else {
                    return false;
                };
                key.push(breakdown);
                key.push(value);
                hidden.contains(&key)
            })
            .collect();
        masks.push((column.to_string(), mask));
    }
    Ok(masks)
}

/// Counts and derived values of the `indicators` and `inequality` tables.
pub const INDICATOR_VALUES: &[&str] = &[
    schema::VALUE,
    schema::LOWER_CL_95,
    schema::UPPER_CL_95,
    schema::LOWER_CL_998,
    schema::UPPER_CL_998,
];

/// How `indicators` rows add up: the breakdown rows of an indicator in a footprint are the
/// parts of its `all` row.
pub const INDICATOR_ADDITIVITY: Additivity<'static> = Additivity::Breakdowns {
    keys: &[
        schema::INDICATOR,
        schema::FOOTPRINT_KIND,
        schema::FOOTPRINT_CODE,
    ],
    breakdown: crate::pipeline::measure::BREAKDOWN,
    total: crate::pipeline::measure::ALL,
};

/// How `segments` cells add up: within a footprint and segmentation, a cross-table of segment,
/// risk tier, IMD quintile, age band and sex.
pub const SEGMENT_ADDITIVITY: Additivity<'static> = Additivity::CrossTable {
    keys: &[
        schema::FOOTPRINT_KIND,
        schema::FOOTPRINT_CODE,
        crate::pipeline::segment::SEGMENTATION,
    ],
    dimensions: &[
        crate::pipeline::segment::SEGMENT,
        crate::pipeline::segment::RISK_TIER,
        schema::IMD_QUINTILE,
        schema::BROAD_AGE_BAND,
        schema::SEX,
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_are_suppressed_and_values_withheld() {
        let table = df![
            "numerator" => [0.0, 3.0, 8.0, 12.0, 123.0],
            "denominator" => [50.0, 50.0, 50.0, 7.0, 1000.0],
            "value" => [0.0, 6.0, 16.0, 171.4, 12.3],
        ]
        .expect("frame");
        let out = DisclosureConfig::default()
            .protect(
                table,
                &["numerator", "denominator"],
                &[("value", &["numerator", "denominator"])],
            )
            .expect("protect");
        let num: Vec<Option<f64>> = out
            .column("numerator")
            .expect("n")
            .f64()
            .expect("f")
            .iter()
            .collect();
        assert_eq!(num, [Some(0.0), None, Some(10.0), Some(10.0), Some(125.0)]);
        let den: Vec<Option<f64>> = out
            .column("denominator")
            .expect("d")
            .f64()
            .expect("f")
            .iter()
            .collect();
        assert_eq!(
            den,
            [Some(50.0), Some(50.0), Some(50.0), None, Some(1000.0)]
        );
        let value: Vec<Option<f64>> = out
            .column("value")
            .expect("v")
            .f64()
            .expect("f")
            .iter()
            .collect();
        assert_eq!(value, [Some(0.0), None, Some(16.0), None, Some(12.3)]);
        let flag: Vec<Option<bool>> = out
            .column(SUPPRESSED)
            .expect("s")
            .bool()
            .expect("b")
            .iter()
            .collect();
        assert_eq!(
            flag,
            [
                Some(false),
                Some(true),
                Some(false),
                Some(true),
                Some(false)
            ]
        );
    }

    fn group(counts: &[f64], from: usize) -> Group {
        Group {
            cells: (from..from + counts.len()).collect(),
            total: counts.iter().sum(),
        }
    }

    #[test]
    fn one_suppressed_part_gets_the_next_smallest_as_complement() {
        let counts = [3.0, 50.0, 10.0, 0.0, 20.0];
        let hidden = DisclosureConfig::default().complementary(&counts, &[group(&counts, 0)]);
        assert_eq!(hidden, [true, false, true, false, false]);
    }

    #[test]
    fn two_suppressed_parts_need_no_complement() {
        let counts = [3.0, 5.0, 10.0, 20.0];
        let hidden = DisclosureConfig::default().complementary(&counts, &[group(&counts, 0)]);
        assert_eq!(hidden, [true, true, false, false]);
    }

    #[test]
    fn a_suppressed_total_protects_its_only_part() {
        let counts = [5.0, 0.0, 0.0];
        let hidden = DisclosureConfig::default().complementary(&counts, &[group(&counts, 0)]);
        assert_eq!(hidden, [true, false, false]);
    }

    #[test]
    fn a_complement_chosen_in_one_line_is_checked_in_the_lines_it_crosses() {
        // A 2 × 3 table: rows are one dimension's lines, columns the other's.
        //   3  40  50
        //  30  45  60
        // Row 1 hides 3 and (complement) 40; column 2 then has 40 alone: 45 joins it; row 2
        // then has 45 alone: 30 joins (smallest); column 1 has 3 and 30: done.
        let counts = [3.0, 40.0, 50.0, 30.0, 45.0, 60.0];
        let line = |cells: Vec<usize>| Group {
            total: cells.iter().map(|&i| counts[i]).sum(),
            cells,
        };
        let groups = vec![
            line(vec![0, 1, 2]),
            line(vec![3, 4, 5]),
            line(vec![0, 3]),
            line(vec![1, 4]),
            line(vec![2, 5]),
        ];
        let hidden = DisclosureConfig::default().complementary(&counts, &groups);
        assert_eq!(hidden, [true, true, false, true, true, false]);
    }

    #[test]
    fn indicator_breakdowns_get_complements_and_their_values_are_withheld() {
        let table = df![
            "indicator" => ["a", "a", "a", "a", "a"],
            "footprint_kind" => ["pcn"; 5],
            "footprint_code" => ["U1"; 5],
            "breakdown" => ["all", "sex", "sex", "core20", "core20"],
            "breakdown_value" => ["all", "F", "M", "Core20", "Other"],
            "numerator" => [33.0, 3.0, 30.0, 12.0, 21.0],
            "denominator" => [200.0, 90.0, 110.0, 60.0, 140.0],
            "value" => [16.5, 3.3, 27.3, 20.0, 15.0],
        ]
        .expect("frame");
        let out = DisclosureConfig::default()
            .protect_additive(
                table,
                &["numerator", "denominator"],
                &[("value", &["numerator", "denominator"])],
                INDICATOR_ADDITIVITY,
            )
            .expect("protect");
        let num: Vec<Option<f64>> = out
            .column("numerator")
            .expect("n")
            .f64()
            .expect("f")
            .iter()
            .collect();
        // F = 3 is primary; M = 33 − 3 would give it away, so M is hidden too; core20 is safe.
        assert_eq!(num, [Some(35.0), None, None, Some(10.0), Some(20.0)]);
        let value: Vec<Option<f64>> = out
            .column("value")
            .expect("v")
            .f64()
            .expect("f")
            .iter()
            .collect();
        assert_eq!(value, [Some(16.5), None, None, Some(20.0), Some(15.0)]);
        let den: Vec<Option<f64>> = out
            .column("denominator")
            .expect("d")
            .f64()
            .expect("f")
            .iter()
            .collect();
        assert!(
            den.iter().all(Option::is_some),
            "denominators are not small"
        );
    }

    #[test]
    fn quintile_columns_of_a_row_get_a_complement() {
        let table = df![
            "population_with_imd" => [143.0, 200.0],
            "q1" => [3.0, 40.0],
            "q2" => [50.0, 40.0],
            "q3" => [40.0, 40.0],
            "q4" => [30.0, 40.0],
            "q5" => [20.0, 40.0],
        ]
        .expect("frame");
        let masks = DisclosureConfig::default()
            .row_part_masks(
                &table,
                &["q1", "q2", "q3", "q4", "q5"],
                "population_with_imd",
            )
            .expect("masks");
        let hidden: Vec<(String, Vec<bool>)> = masks;
        assert_eq!(hidden[0].1, [true, false], "q1 = 3 is primary");
        assert_eq!(hidden[4].1, [true, false], "q5 = 20 is its complement");
        assert!(hidden[1..4].iter().all(|(_, m)| m == &[false, false]));
    }

    #[test]
    fn repeated_quintile_cells_follow_the_protected_indicators() {
        let protected = df![
            "indicator" => ["a", "a", "a"],
            "footprint_kind" => ["pcn"; 3],
            "footprint_code" => ["U1"; 3],
            "breakdown" => ["imd_quintile", "imd_quintile", "imd_quintile"],
            "breakdown_value" => ["1", "2", "5"],
            SUPPRESSED => [true, true, false],
        ]
        .expect("frame");
        let inequality = df![
            "indicator" => ["a", "b"],
            "footprint_kind" => ["pcn", "pcn"],
            "footprint_code" => ["U1", "U1"],
        ]
        .expect("frame");
        let masks = repeated_cells(
            &inequality,
            &protected,
            &["indicator", "footprint_kind", "footprint_code"],
            |_| Some("imd_quintile"),
            &[("q1_numerator", "1"), ("q5_numerator", "5")],
        )
        .expect("masks");
        assert_eq!(masks[0], ("q1_numerator".to_string(), vec![true, false]));
        assert_eq!(masks[1], ("q5_numerator".to_string(), vec![false, false]));
    }

    #[test]
    fn breakdown_parts_found_within_wholes_are_those_hashing_every_key_finds() {
        let (keys, breakdown, total) = (["indicator", "area"], "breakdown", "all");
        // The layout as found by hashing keys and breakdown together: every group but the
        // total rows', with the first total row of its whole.
        let hashed = |table: &DataFrame| {
            let is_total: Vec<bool> = table
                .column(breakdown)
                .and_then(|c| c.str().cloned())
                .expect("text")
                .iter()
                .map(|b| b == Some(total))
                .collect();
            let mut total_of_row = vec![None; table.height()];
            for whole in row_groups(table, &keys).expect("wholes") {
                let total_row = whole.iter().copied().find(|&r| is_total[r]);
                for row in whole {
                    total_of_row[row] = total_row;
                }
            }
            let by = ["indicator", "area", breakdown];
            let (mut cells, mut total_rows) = (Vec::new(), Vec::new());
            for part in row_groups(table, &by).expect("parts") {
                if !is_total[part[0]] {
                    total_rows.push(total_of_row[part[0]]);
                    cells.push(part);
                }
            }
            (cells, total_rows)
        };
        let tables = [
            // Sorted, one whole without a total row and one whose total comes last.
            df![
                "indicator" => ["x", "x", "x", "x", "x", "y", "y", "y"],
                "area" => ["A", "A", "A", "B", "B", "A", "A", "A"],
                "breakdown" => ["all", "sex", "sex", "sex", "age", "sex", "age", "all"],
            ],
            // Wholes and parts coming back after others, a second total row, and missing keys
            // and breakdowns.
            df![
                "indicator" => [Some("x"), Some("x"), Some("y"), Some("x"), None, Some("x"), None, Some("x")],
                "area" => [Some("A"), Some("A"), Some("A"), Some("A"), Some("B"), Some("A"), Some("B"), Some("A")],
                "breakdown" => [Some("sex"), Some("age"), Some("sex"), Some("sex"), None, Some("all"), None, Some("all")],
            ],
            // A whole's second part first seen after another whole's first part.
            df![
                "indicator" => ["x", "x", "x", "x", "x"],
                "area" => ["A", "B", "A", "B", "A"],
                "breakdown" => ["sex", "sex", "age", "all", "sex"],
            ],
        ];
        for table in tables {
            let table = table.expect("frame");
            let layout =
                GroupLayout::of_breakdowns(&table, &keys, breakdown, total).expect("layout");
            let (cells, total_rows) = hashed(&table);
            assert!(cells.iter().any(|c| c.len() > 1));
            assert_eq!(layout.cells, cells);
            assert_eq!(layout.total_rows, total_rows);
        }
    }

    #[test]
    fn groups_found_from_runs_are_the_groups_hashing_every_row_finds() {
        let by = ["area", "breakdown"];
        let tables = [
            // Sorted by the keys, with missing values in the first row and inside a run.
            df![
                "area" => [None, None, Some("A"), Some("A"), Some("A"), Some("B"), Some("B")],
                "breakdown" => [Some("all"), Some("all"), Some("all"), None, None, Some("all"), Some("sex")],
            ],
            // A combination that comes back after another, in runs of one and of two.
            df![
                "area" => ["A", "A", "B", "A", "B", "B", "A"],
                "breakdown" => ["all", "all", "all", "all", "all", "all", "all"],
            ],
            // A missing key coming back; one column differing is enough to end a run.
            df![
                "area" => [None, Some("A"), None, Some("A"), Some("A")],
                "breakdown" => [Some("all"), Some("all"), Some("all"), Some("all"), Some("sex")],
            ],
        ];
        let expected: [&[&[usize]]; 3] = [
            &[&[0, 1], &[2], &[3, 4], &[5], &[6]],
            &[&[0, 1, 3, 6], &[2, 4, 5]],
            &[&[0, 2], &[1, 3], &[4]],
        ];
        for (table, expected) in tables.into_iter().zip(expected) {
            let table = table.expect("frame");
            let groups = row_groups(&table, &by).expect("groups");
            assert_eq!(groups, expected);
            // Hashing every row: each row a run of its own.
            let every_row = BooleanChunked::full(PlSmallStr::EMPTY, true, table.height() - 1);
            let hashed = grouped_runs(&table, &by, &Runs::of(&every_row)).expect("hashed");
            assert_eq!(groups, hashed);
        }
        let empty = DataFrame::empty_with_schema(&Schema::from_iter([
            Field::new("area".into(), DataType::String),
            Field::new("breakdown".into(), DataType::String),
        ]));
        assert!(row_groups(&empty, &by).expect("groups").is_empty());
    }

    #[test]
    fn each_cell_lists_its_groups_in_group_order() {
        let group = |cells: &[usize]| Group {
            cells: cells.to_vec(),
            total: 0.0,
        };
        // Cell 4 is in no group; cell 9 is outside a table of 5 cells.
        let groups = [
            group(&[0, 1]),
            group(&[2, 0, 9]),
            group(&[1, 0]),
            group(&[3]),
        ];
        let members = Memberships::of(5, &groups);
        let listed: Vec<&[usize]> = (0..6).map(|cell| members.groups(cell)).collect();
        assert_eq!(listed, [&[0, 1, 2][..], &[0, 2], &[1], &[3], &[], &[]]);
    }

    #[test]
    fn disabled_leaves_the_table_alone() {
        let table = df!["n" => [3.0]].expect("frame");
        let config = DisclosureConfig {
            enabled: false,
            ..Default::default()
        };
        let out = config.protect(table.clone(), &["n"], &[]).expect("protect");
        assert!(out.equals(&table));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Counts as published data has them: many small, some zero, some large.
        fn count() -> impl Strategy<Value = f64> {
            prop_oneof![
                3 => 0u32..=9,
                2 => 0u32..=40,
                1 => 0u32..=5000,
            ]
            .prop_map(f64::from)
        }

        fn assert_protected(config: &DisclosureConfig, counts: &[f64], groups: &[Group]) {
            let hidden = config.complementary(counts, groups);
            for (i, &c) in counts.iter().enumerate() {
                if config.is_small(c) {
                    assert!(hidden[i], "primary cell {i} ({c}) is shown");
                }
            }
            for group in groups {
                // A suppressed total hides its parts; a one-cell group has nothing to pair with.
                if config.is_small(group.total) || group.cells.len() < 2 {
                    continue;
                }
                let n = group.cells.iter().filter(|&&i| hidden[i]).count();
                assert_ne!(n, 1, "group {group:?} has one suppressed cell: {hidden:?}");
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn no_breakdown_group_keeps_a_single_suppressed_cell(
                groups in prop::collection::vec(prop::collection::vec(count(), 1..12), 1..8)
            ) {
                let config = DisclosureConfig::default();
                let mut counts = Vec::new();
                let mut built = Vec::new();
                for parts in &groups {
                    built.push(group(parts, counts.len()));
                    counts.extend_from_slice(parts);
                }
                assert_protected(&config, &counts, &built);
            }

            #[test]
            fn no_line_of_a_cross_table_keeps_a_single_suppressed_cell(
                shape in (1usize..5, 1usize..5, 1usize..4),
                seed in prop::collection::vec(count(), 64),
            ) {
                let (a, b, c) = shape;
                let at = |i: usize, j: usize, k: usize| (i * b + j) * c + k;
                let counts: Vec<f64> = (0..a * b * c).map(|n| seed[n % seed.len()]).collect();
                let mut groups = Vec::new();
                let line = |cells: Vec<usize>| Group {
                    total: cells.iter().map(|&n| counts[n]).sum(),
                    cells,
                };
                for j in 0..b { for k in 0..c { groups.push(line((0..a).map(|i| at(i, j, k)).collect())); } }
                for i in 0..a { for k in 0..c { groups.push(line((0..b).map(|j| at(i, j, k)).collect())); } }
                for i in 0..a { for j in 0..b { groups.push(line((0..c).map(|k| at(i, j, k)).collect())); } }
                assert_protected(&DisclosureConfig::default(), &counts, &groups);
            }

            #[test]
            fn a_protected_indicators_table_shows_no_small_count_and_no_single_hidden_part(
                footprints in prop::collection::vec(
                    prop::collection::vec((count(), count()), 1..8), 1..5),
            ) {
                // Each footprint: one breakdown with these parts, and the `all` row their sum.
                let mut id = Vec::new();
                let mut code = Vec::new();
                let mut breakdown = Vec::new();
                let mut value = Vec::new();
                let mut num = Vec::new();
                let mut den = Vec::new();
                for (f, parts) in footprints.iter().enumerate() {
                    let total: (f64, f64) = parts.iter().fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.0 + p.1));
                    let rows = std::iter::once(("all".to_string(), total))
                        .chain(parts.iter().enumerate().map(|(i, p)| (i.to_string(), (p.0, p.0 + p.1))));
                    for (label, (x, n)) in rows {
                        id.push("i");
                        code.push(format!("F{f}"));
                        breakdown.push(if label == "all" { "all" } else { "sex" });
                        value.push(label);
                        num.push(x);
                        den.push(n);
                    }
                }
                let rate: Vec<Option<f64>> = num.iter().zip(&den).map(|(x, n)| (*n > 0.0).then(|| x / n)).collect();
                let height = id.len();
                let table = df![
                    "indicator" => id,
                    "footprint_kind" => vec!["pcn"; height],
                    "footprint_code" => code.clone(),
                    "breakdown" => breakdown.clone(),
                    "breakdown_value" => value,
                    "numerator" => num.clone(),
                    "denominator" => den.clone(),
                    "value" => rate,
                ].expect("frame");
                let config = DisclosureConfig::default();
                let out = config.protect_additive(
                    table,
                    &["numerator", "denominator"],
                    &[("value", &["numerator", "denominator"])],
                    INDICATOR_ADDITIVITY,
                ).expect("protect");
                let shown = |name: &str| -> Vec<Option<f64>> {
                    out.column(name).expect("column").f64().expect("f64").iter().collect()
                };
                let (pub_num, pub_den, pub_value) = (shown("numerator"), shown("denominator"), shown("value"));
                for (truth, published) in [(&num, &pub_num), (&den, &pub_den)] {
                    for (row, (t, p)) in truth.iter().zip(published).enumerate() {
                        if config.is_small(*t) {
                            prop_assert!(p.is_none(), "row {row}: small count {t} shown as {p:?}");
                        }
                        if let Some(p) = p {
                            prop_assert!(!(*p > 0.0 && *p < 8.0), "row {row}: {p} published");
                            prop_assert_eq!(p % 5.0, 0.0);
                        }
                    }
                    // Per footprint: the parts of a shown total never have one hidden cell.
                    for f in 0..footprints.len() {
                        let rows: Vec<usize> = (0..code.len()).filter(|&r| code[r] == format!("F{f}")).collect();
                        let total_row = rows.iter().copied().find(|&r| breakdown[r] == "all").expect("all");
                        if config.is_small(truth[total_row]) {
                            continue;
                        }
                        let hidden = rows.iter().filter(|&&r| breakdown[r] != "all" && published[r].is_none()).count();
                        prop_assert_ne!(hidden, 1, "footprint F{}: one hidden part", f);
                    }
                }
                for row in 0..pub_value.len() {
                    if pub_num[row].is_none() || pub_den[row].is_none() {
                        prop_assert!(pub_value[row].is_none(), "row {row}: a value derived from a hidden count is shown");
                    }
                }
            }
        }
    }
}
