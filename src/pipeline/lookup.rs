//! Finding rows by a text key without a join: the row of each key in an index of a column.
//!
//! Two uses. The long inputs find each row's patient in an index of a part's ids
//! (`segment::long`). And a part's patients find their small lookups' rows (an LSOA's
//! deprivation, a practice's PCN and ICB) by [`left_lookup`]: polars' left join gathers every
//! column of both sides into a new frame, so two joins copied a part's ~100 patient columns
//! twice; here only the lookup's few columns are gathered, and the patients' columns are kept.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use polars::prelude::*;
use rayon::prelude::*;

/// The row of each key of a text column.
pub(crate) struct KeyIndex {
    /// The indexed keys, in one chunk.
    keys: StringChunked,
    /// Rows, found by the hash of their key, in tables by the hash's [`partition`].
    rows: Vec<HashTable<u32>>,
    /// Whether a key is on more than one row (the first row is the one found).
    repeated: bool,
    hasher: foldhash::fast::FixedState,
}

/// The tables of a [`KeyIndex`]: built in parallel, one per partition.
const PARTITIONS: usize = 16;

/// The table of a key's `hash`: bits the table itself does not use (it finds a bucket by the
/// low bits and tells entries apart by the top seven), so that within a table they still vary.
fn partition(hash: u64) -> usize {
    ((hash >> 40) as usize) % PARTITIONS
}

impl KeyIndex {
    /// Index `keys`. A key on several rows is found at its first. Null keys are not indexed:
    /// they match nothing, as in a join.
    ///
    /// # Errors
    /// If there are `u32::MAX` keys or more.
    pub(crate) fn new(keys: &StringChunked) -> PolarsResult<Self> {
        polars_ensure!(
            keys.len() < u32::MAX as usize,
            ComputeError: "{} rows to index; at most {} are supported",
            keys.len(), u32::MAX - 1
        );
        let keys = keys.rechunk().into_owned();
        let hasher = crate::lazy::key_hasher();
        let (rows, repeated) = {
            let array = keys.downcast_as_array();
            // Blocks of rows are hashed and split by partition in parallel. Then each
            // partition's table is built in parallel too, its rows inserted in row order (so a
            // repeated key is found at its first row): one table's inserts took a core alone
            // while the other was idle (3.8% of the patient stages' CPU at England scale).
            // Each row is split with its hash, so a partition's table reads only its own rows:
            // reading every row's hash at a stride of the partitions took most of the build
            // (4M ids, 0.26 → 0.09 s; benches/RESULTS.md, twenty-sixth round).
            const BLOCK: usize = 1 << 16;
            let blocks: Vec<Vec<Vec<(u32, u64)>>> = (0..array.len().div_ceil(BLOCK))
                .into_par_iter()
                .map(|block| {
                    let rows = block * BLOCK..array.len().min((block + 1) * BLOCK);
                    // Room for a few more than an even share: the hashes spread rows evenly.
                    let share = rows.len() / PARTITIONS + rows.len() / (4 * PARTITIONS) + 16;
                    let mut by_partition: Vec<Vec<(u32, u64)>> =
                        (0..PARTITIONS).map(|_| Vec::with_capacity(share)).collect();
                    for row in rows {
                        if let Some(key) = array.get(row) {
                            let hash = hasher.hash_one(key);
                            by_partition[partition(hash)].push((row as u32, hash));
                        }
                    }
                    by_partition
                })
                .collect();
            let tables: Vec<(HashTable<u32>, bool)> = (0..PARTITIONS)
                .into_par_iter()
                .map(|partition| {
                    let rows = blocks.iter().map(|block| block[partition].len()).sum();
                    let mut table = HashTable::with_capacity(rows);
                    let mut repeated = false;
                    // In row order: the blocks in order, each block's rows in order.
                    for &(row, hash) in blocks.iter().flat_map(|block| &block[partition]) {
                        let key = || array.value(row as usize);
                        let entry = table.entry(
                            hash,
                            |&r: &u32| same_key(array.value(r as usize), key()),
                            |&r: &u32| hasher.hash_one(array.value(r as usize)),
                        );
                        match entry {
                            Entry::Vacant(slot) => {
                                slot.insert(row);
                            }
                            Entry::Occupied(_) => repeated = true,
                        }
                    }
                    (table, repeated)
                })
                .collect();
            let repeated = tables.iter().any(|(_, repeated)| *repeated);
            (
                tables
                    .into_iter()
                    .map(|(table, _)| table)
                    .collect::<Vec<_>>(),
                repeated,
            )
        };
        Ok(KeyIndex {
            keys,
            rows,
            repeated,
            hasher,
        })
    }

    /// The row of `key` (`None` when it is not indexed).
    pub(crate) fn row_of(&self, key: &str) -> Option<u32> {
        let array = self.keys.downcast_as_array();
        let hash = self.hasher.hash_one(key);
        self.rows[partition(hash)]
            .find(hash, |&r| same_key(array.value(r as usize), key))
            .copied()
    }

    /// How many rows were indexed.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The row of each of `wanted` (`None` for keys not indexed, and null keys), looked up in
    /// parallel.
    ///
    /// Long inputs come patient by patient (an outcome row per code, the conditions of one
    /// patient together), so a key is often the one just before it: its row is reused
    /// without hashing or touching the index, which is most of the cost (a cache miss in the
    /// table and another in the keys). And extracts usually list the long rows in the
    /// registered list's order, so a new key is often on one of the few rows after the last
    /// one found: those are compared first (unique keys only: a repeated key is found at its
    /// first row).
    pub(crate) fn rows_of(&self, wanted: &StringChunked) -> Vec<Option<u32>> {
        const CHUNK: usize = 4096;
        /// Rows after the last one found that are compared before hashing: patients without
        /// long rows in between are skipped.
        const AHEAD: usize = 4;
        use polars_arrow::array::Array as _;
        let array = self.keys.downcast_as_array();
        // Read in place, each block of rows on its own core: collecting the keys first was a
        // pass over the batch on one core.
        let wanted = wanted.rechunk();
        let wanted = wanted.downcast_as_array();
        let mut rows = vec![None; wanted.len()];
        let ahead = if self.repeated { 0 } else { AHEAD };
        rows.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(block, rows)| {
                let mut previous: Option<(&str, Option<u32>)> = None;
                let mut last_row: Option<usize> = None;
                for (at, row) in (block * CHUNK..).zip(rows.iter_mut()) {
                    if !wanted.is_valid(at) {
                        continue;
                    }
                    let key = wanted.value(at);
                    *row = match previous {
                        Some((last, found)) if same_key(last, key) => found,
                        _ => {
                            let next = last_row.and_then(|last| {
                                (last + 1..array.len().min(last + 1 + ahead))
                                    .find(|&r| array.is_valid(r) && same_key(array.value(r), key))
                            });
                            let found = match next {
                                Some(r) => Some(r as u32),
                                None => self.row_of(key),
                            };
                            previous = Some((key, found));
                            if let Some(found) = found {
                                last_row = Some(found as usize);
                            }
                            found
                        }
                    };
                }
            });
        rows
    }
}

/// Whether two keys are the same text. Ids and codes of 8 to 32 bytes are compared as two
/// fixed-size loads each, which overlap, rather than by a call to `memcmp`: a long row's id is
/// compared with the last row's and with the index's next ids, and those calls were 6% of the
/// patient stages' CPU at England scale (benches/RESULTS.md, twenty-ninth round). Different
/// ids nearly always differ in their first eight bytes.
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let length = a.len();
    if length != b.len() {
        return false;
    }
    let word = |text: &[u8], at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&text[at..at + 8]);
        u64::from_ne_bytes(bytes)
    };
    let wide = |text: &[u8], at: usize| {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&text[at..at + 16]);
        u128::from_ne_bytes(bytes)
    };
    match length {
        8..=16 => word(a, 0) == word(b, 0) && word(a, length - 8) == word(b, length - 8),
        17..=32 => wide(a, 0) == wide(b, 0) && wide(a, length - 16) == wide(b, length - 16),
        _ => a == b,
    }
}

/// `frame` left-joined to `table` on the text column `key` (in both): `frame`'s columns as
/// they are, then `table`'s other columns at the row of each key (null where the key is null
/// or not in `table`). The result is polars' left join with the left order kept; a `table`
/// with a repeated key, or a column name in both, goes to that join (a repeated key gives a
/// row per match there).
///
/// # Errors
/// If `key` is missing or not text in either frame, or the fallback join fails.
pub(crate) fn left_lookup(
    frame: DataFrame,
    key: &str,
    table: &DataFrame,
) -> PolarsResult<DataFrame> {
    let index = KeyIndex::new(table.column(key)?.str()?)?;
    let clash = table
        .get_column_names()
        .into_iter()
        .any(|name| name.as_str() != key && frame.schema().contains(name));
    if index.repeated || clash {
        return left_join(frame, key, table);
    }
    // Each distinct key of a chunk is looked up once (a part's patients live in a few
    // thousand LSOAs and come practice by practice), not every row's text hashed: the LSOA
    // lookup of 3.3M patients 0.13–0.15 s → 0.09–0.12 s, most of it now the gathers below.
    let rows =
        crate::pipeline::key_codes::text_codes(frame.column(key)?, |text| index.row_of(text))?;
    let found = table.drop(key)?.take(&rows)?;
    let mut frame = frame;
    frame.hstack_mut(found.columns())?;
    Ok(frame)
}

/// polars' left join on `key`, left order kept: what [`left_lookup`] gives.
fn left_join(frame: DataFrame, key: &str, table: &DataFrame) -> PolarsResult<DataFrame> {
    frame
        .lazy()
        .join(
            table.clone().lazy(),
            [col(key)],
            [col(key)],
            JoinArgs {
                maintain_order: MaintainOrderJoin::Left,
                ..JoinArgs::new(JoinType::Left)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(frame: &DataFrame, key: &str, table: &DataFrame) -> DataFrame {
        left_join(frame.clone(), key, table).expect("join")
    }

    /// `same_key` is text equality at every length its loads cover and either side of them,
    /// whichever byte differs.
    #[test]
    fn same_key_is_equality_of_text() {
        for length in 0..40usize {
            let key: String = (0..length)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            assert!(same_key(&key, &key.clone()), "{key}");
            for at in 0..length {
                let mut other = key.clone().into_bytes();
                other[at] = b'0';
                let other = String::from_utf8(other).expect("text");
                assert!(!same_key(&key, &other), "{key} against {other}");
            }
            let longer = format!("{key}a");
            assert!(
                !same_key(&key, &longer) && !same_key(&longer, &key),
                "{key}"
            );
        }
    }

    #[test]
    fn rows_found_in_runs_are_the_rows_of_their_keys() {
        let keys: StringChunked = ["p0", "p1", "p2", "p3"].into_iter().collect();
        let index = KeyIndex::new(&keys).expect("index");
        // Runs of one key (reused), a key after a null or an unknown key, runs across the
        // parallel chunks, and keys out of the list's order.
        let pattern = [
            Some("p1"),
            Some("p1"),
            None,
            Some("p1"),
            Some("p9"),
            Some("p9"),
            Some("p1"),
            Some("p3"),
            Some("p0"),
            Some("p0"),
            Some("p2"),
        ];
        let wanted: Vec<Option<&str>> = pattern.iter().copied().cycle().take(9000).collect();
        let expected: Vec<Option<u32>> = wanted
            .iter()
            .map(|key| key.and_then(|k| (0..4).find(|&r| format!("p{r}") == k)))
            .collect();
        let wanted: StringChunked = wanted.into_iter().collect();
        assert_eq!(index.rows_of(&wanted), expected);
    }

    #[test]
    fn every_partition_finds_each_key_at_its_first_row() {
        // Enough keys for every partition's table and for three blocks of rows hashed apart,
        // each of the first 60,000 on one or two later rows too, in the same block or later.
        let keys: StringChunked = (0..150_000).map(|i| format!("k{}", i % 60_000)).collect();
        let index = KeyIndex::new(&keys).expect("index");
        assert!(index.repeated);
        assert!(index.rows.iter().all(|table| !table.is_empty()));
        // Looked up in no order (no runs, nothing found by looking ahead), and one unknown.
        let wanted: Vec<String> = (0..60_000)
            .map(|i| format!("k{}", (i * 7_919) % 60_000))
            .chain(["k60000".to_string()])
            .collect();
        let expected: Vec<Option<u32>> = (0..60_000)
            .map(|i| Some((i * 7_919) % 60_000))
            .chain([None])
            .collect();
        let wanted: StringChunked = wanted.iter().map(|k| Some(k.as_str())).collect();
        assert_eq!(index.rows_of(&wanted), expected);
    }

    #[test]
    fn rows_found_by_looking_ahead_are_the_rows_of_their_keys() {
        // Long rows in the list's order with gaps (patients without rows), a null key among
        // the indexed ones, a jump back, and a list with a repeated key (found at its first
        // row, so never by looking ahead).
        let unique: StringChunked = (0..40).map(|i| (i != 7).then(|| format!("p{i}"))).collect();
        let repeated: StringChunked = ["a", "b", "c", "b", "d"].into_iter().collect();
        let cases: [(&StringChunked, Vec<Option<&str>>); 2] = [
            (
                &unique,
                vec![
                    Some("p0"),
                    Some("p1"),
                    Some("p1"),
                    Some("p3"),
                    Some("p6"),
                    Some("p8"),
                    Some("p13"),
                    Some("p2"),
                    Some("p3"),
                    Some("p7"),
                    Some("p39"),
                    None,
                    Some("p38"),
                    Some("p39"),
                ],
            ),
            (
                &repeated,
                vec![
                    Some("a"),
                    Some("b"),
                    Some("c"),
                    Some("b"),
                    Some("d"),
                    Some("b"),
                ],
            ),
        ];
        for (keys, wanted) in cases {
            let index = KeyIndex::new(keys).expect("index");
            let expected: Vec<Option<u32>> = wanted
                .iter()
                .map(|key| {
                    key.and_then(|k| keys.iter().position(|v| v == Some(k)))
                        .map(|r| r as u32)
                })
                .collect();
            let wanted: StringChunked = wanted.into_iter().collect();
            assert_eq!(index.rows_of(&wanted), expected);
        }
    }

    #[test]
    fn a_lookup_is_the_left_join() {
        let patients = df![
            "patient_id" => ["a", "b", "c", "d", "e", "f"],
            "lsoa_code" => [Some("E1"), Some("E2"), None, Some("E9"), Some("E1"), Some("")],
            "age" => [1i64, 2, 3, 4, 5, 6],
        ]
        .expect("patients");
        let deprivation = df![
            "lsoa_code" => ["E2", "E1", "E3", ""],
            "imd_decile" => [Some(2i64), Some(1), Some(3), None],
            "core20" => [false, true, false, true],
            "nation" => ["E", "E", "E", "W"],
        ]
        .expect("lookup");
        let ours = left_lookup(patients.clone(), "lsoa_code", &deprivation).expect("lookup");
        let theirs = join(&patients, "lsoa_code", &deprivation);
        assert!(ours.equals_missing(&theirs), "{ours}\n{theirs}");
        assert_eq!(
            ours.column("imd_decile")
                .expect("decile")
                .i64()
                .expect("int")
                .iter()
                .collect::<Vec<_>>(),
            [Some(1), Some(2), None, None, Some(1), None]
        );
    }

    #[test]
    fn a_lookup_of_many_chunks_and_long_keys_is_the_left_join() {
        // Keys past a view's twelve inline bytes, in runs and out of order, the same texts
        // in three chunks (different views of equal keys), nulls and unknown keys.
        let code = |v: usize| format!("E0100{v:04}-a-longer-key");
        let key = |i: usize| code((i * 37) % 50 / 3);
        let chunk = |offset: usize| {
            let keys: Vec<Option<String>> = (offset..offset + 400)
                .map(|i| match i % 23 {
                    0 => None,
                    1 => Some(format!("unknown {i}")),
                    _ => Some(key(i / 4)),
                })
                .collect();
            let ages: Vec<i64> = (offset as i64..offset as i64 + 400).collect();
            df!["lsoa_code" => keys, "age" => ages].expect("chunk")
        };
        let mut patients = chunk(0);
        patients.vstack_mut(&chunk(400)).expect("stacked");
        patients.vstack_mut(&chunk(800)).expect("stacked");
        assert_eq!(patients.first_col_n_chunks(), 3);
        // Unique keys (a repeated one would go to the join), a few of the patients' missing.
        let known: Vec<usize> = (0..17).rev().filter(|v| v % 5 != 2).collect();
        let deprivation = df![
            "lsoa_code" => known.iter().map(|&v| code(v)).collect::<Vec<_>>(),
            "imd_decile" => known.iter().map(|&v| v as i64 % 10 + 1).collect::<Vec<_>>(),
            "nation" => known.iter().map(|&v| if v % 4 == 0 { "W" } else { "E" }).collect::<Vec<_>>(),
        ]
        .expect("lookup");
        let index = KeyIndex::new(
            deprivation
                .column("lsoa_code")
                .expect("key")
                .str()
                .expect("text"),
        )
        .expect("index");
        assert!(!index.repeated, "the lookup itself, not the join");
        let ours = left_lookup(patients.clone(), "lsoa_code", &deprivation).expect("lookup");
        let theirs = join(&patients, "lsoa_code", &deprivation);
        assert!(ours.equals_missing(&theirs), "{ours}\n{theirs}");
        let found = ours.column("imd_decile").expect("decile").null_count();
        assert!(found < ours.height() / 2, "most keys are found");
    }

    #[test]
    fn repeated_keys_and_clashing_names_go_to_the_join() {
        let frame = df!["k" => ["x", "y"], "v" => [1i64, 2]].expect("frame");
        let repeated = df!["k" => ["x", "x", "y"], "w" => [1i64, 2, 3]].expect("table");
        let ours = left_lookup(frame.clone(), "k", &repeated).expect("lookup");
        assert_eq!(ours.height(), 3, "a row per match, as the join gives");
        assert!(ours.equals_missing(&join(&frame, "k", &repeated)));
        let clash = df!["k" => ["x"], "v" => [9i64]].expect("table");
        let ours = left_lookup(frame.clone(), "k", &clash).expect("lookup");
        assert!(ours.equals_missing(&join(&frame, "k", &clash)));
        assert!(ours.schema().contains("v_right"));
    }

    #[test]
    fn an_empty_frame_keeps_its_columns_and_gains_the_lookups() {
        let frame = df!["k" => Vec::<String>::new()].expect("frame");
        let table = df!["k" => ["x"], "w" => [1i64]].expect("table");
        let ours = left_lookup(frame.clone(), "k", &table).expect("lookup");
        assert!(ours.equals_missing(&join(&frame, "k", &table)));
    }
}
