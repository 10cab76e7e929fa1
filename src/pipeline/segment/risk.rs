//! Risk scores and risk tiers.
//!
//! - Cambridge Multimorbidity Score (general outcome): the sum of the published weights of the
//!   patient's conditions among the 20 of [`crate::conditions`]; `cms_conditions` counts them.
//! - Electronic Frailty Index: distinct deficits present ÷ 36, for patients aged 65+ (the
//!   population it was developed in); categories fit (≤ 0.12), mild (≤ 0.24), moderate
//!   (≤ 0.36), severe. Only meaningful when the extract records deficits, which the run notes.
//! - Risk tiers: the classic pyramid by the score's percentile within a footprint (top 0.5%,
//!   next 4.5%, next 15%, the rest) or fixed cut-offs. A score of zero is always the lowest
//!   tier, so a footprint where few people have any condition does not lift healthy people.

use std::collections::HashMap;
use std::sync::Arc;

use polars::prelude::*;
use serde::Deserialize;

use crate::conditions::{CONDITIONS, EFI_DEFICITS};
use crate::schema;

/// Cambridge Multimorbidity Score (general outcome weights).
pub const CMS_SCORE: &str = "cms_score";
/// Number of the 20 CMS conditions present.
pub const CMS_CONDITIONS: &str = "cms_conditions";
/// Electronic Frailty Index (0–1), aged 65+ only.
pub const EFI: &str = "efi";
/// eFI category: `fit`, `mild`, `moderate`, `severe` (65+ only).
pub const EFI_CATEGORY: &str = "efi_category";

/// The risk tier labels, highest risk first (sorting the labels sorts the tiers).
pub const TIERS: [&str; 4] = [
    "1 very high (top 0.5%)",
    "2 high (next 4.5%)",
    "3 moderate (next 15%)",
    "4 low (rest)",
];

/// Cumulative shares at which the pyramid's tiers end.
pub const PYRAMID: [f64; 3] = [0.005, 0.05, 0.20];

/// How tiers are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TierMethod {
    /// By percentile of the score within a footprint.
    #[default]
    Percentile,
    /// By fixed score thresholds.
    Cutoffs,
}

/// Default footprint for percentile tiers.
pub fn default_within() -> String {
    "pcn".to_string()
}

/// Add the CMS score and count and the eFI with its category.
///
/// The score, count and deficits are added up row by row from the conditions' bits, each in
/// one pass (`sum_where_yes`): as expressions, each of the 20 weights and 36 deficits cast a
/// whole column to numbers and added it to another (7% of the patient stages' CPU at 10M,
/// computed twice a part). The sums are the expressions' to the bit: each row adds its
/// conditions' weights in the same order, from 0.
pub fn with_scores(patients: LazyFrame) -> LazyFrame {
    let weighted: Vec<(Expr, f64)> = CONDITIONS
        .iter()
        .filter_map(|c| c.cms_weight.map(|w| (col(c.code), w)))
        .collect();
    let counted: Vec<(Expr, u32)> = weighted.iter().map(|(flag, _)| (flag.clone(), 1)).collect();
    let cms = sum_where_yes::<Float64Type>(weighted);
    let count = sum_where_yes::<UInt32Type>(counted).cast(DataType::Int32);
    // A deficit is present when any condition evidencing it is.
    let mut deficits: Vec<(&str, Vec<&str>)> = Vec::new();
    for condition in CONDITIONS {
        if let Some(deficit) = condition.efi_deficit {
            match deficits.iter_mut().find(|(d, _)| *d == deficit) {
                Some((_, codes)) => codes.push(condition.code),
                None => deficits.push((deficit, vec![condition.code])),
            }
        }
    }
    let deficit_present: Vec<Expr> = deficits
        .iter()
        .map(|(_, codes)| {
            codes
                .iter()
                .map(|c| col(*c))
                .reduce(|a, b| a.or(b))
                .unwrap_or_else(|| lit(false))
        })
        .collect();
    let efi = when(col(schema::AGE).gt_eq(lit(65i64)))
        .then(
            sum_where_yes::<UInt32Type>(deficit_present.into_iter().map(|d| (d, 1)).collect())
                .cast(DataType::Float64)
                / lit(EFI_DEFICITS as f64),
        )
        .otherwise(lit(NULL).cast(DataType::Float64));
    patients
        .with_columns([
            cms.alias(CMS_SCORE),
            count.alias(CMS_CONDITIONS),
            efi.alias(EFI),
        ])
        .with_column(
            crate::lazy::first_label(
                [
                    (col(EFI).lt_eq(lit(0.12)), "fit"),
                    (col(EFI).lt_eq(lit(0.24)), "mild"),
                    (col(EFI).lt_eq(lit(0.36)), "moderate"),
                    (col(EFI).is_not_null(), "severe"),
                ],
                None,
            )
            .alias(EFI_CATEGORY),
        )
}

/// The sum on each row of the `amounts` of the yes/no `flags` that are yes there (missing
/// counts as no), added in the flags' order from 0: a weighted score, or a count with amounts
/// of 1.
fn sum_where_yes<N: PolarsNumericType>(flags: Vec<(Expr, N::Native)>) -> Expr {
    let (flags, amounts): (Vec<Expr>, Vec<N::Native>) = flags.into_iter().unzip();
    if flags.is_empty() {
        return lit(0u32).cast(N::get_static_dtype());
    }
    map_multiple(
        move |columns: &mut [Column]| {
            let rows = columns.first().map_or(0, Column::len);
            let mut sums = vec![N::Native::default(); rows];
            for (column, &amount) in columns.iter().zip(&amounts) {
                for_each_yes(column, |row| sums[row] += amount)?;
            }
            Ok(ChunkedArray::<N>::from_vec("sum".into(), sums).into_column())
        },
        &flags,
        |_, _| Ok(Field::new("sum".into(), N::get_static_dtype())),
    )
}

/// Calls `each` with every row where a yes/no column is yes (missing counts as no), going
/// by the set bits: conditions are rare, and a column of one value is one check.
///
/// # Errors
/// If the column is not yes/no.
fn for_each_yes(column: &Column, mut each: impl FnMut(usize)) -> PolarsResult<()> {
    if let Some(scalar) = column.as_scalar_column() {
        polars_ensure!(
            matches!(scalar.dtype(), DataType::Boolean | DataType::Null),
            SchemaMismatch: "{}: expected yes/no, found {}", column.name(), scalar.dtype()
        );
        if scalar.scalar().value() == &AnyValue::Boolean(true) {
            (0..column.len()).for_each(each);
        }
        return Ok(());
    }
    let mut offset = 0;
    for array in column.bool()?.downcast_iter() {
        let yes = match array.validity() {
            Some(valid) => array.values() & valid,
            None => array.values().clone(),
        };
        yes.true_idx_iter().for_each(|row| each(offset + row));
        offset += array.len();
    }
    Ok(())
}

/// Column holding the share of the footprint's people ranked strictly above the patient (by
/// descending score), for percentile tiers.
const SHARE_ABOVE: &str = "__share_above";
/// Column holding the footprint that percentile tiers are taken within.
const TIER_FOOTPRINT: &str = "__tier_footprint";

fn with_tier_footprint(patients: LazyFrame, within: &str) -> LazyFrame {
    let footprint = if within == "england" {
        lit(schema::ENGLAND_CODE)
    } else {
        col(within)
    };
    patients.with_column(footprint.alias(TIER_FOOTPRINT))
}

/// People by footprint × score (`within`: a footprint code column, or `england`), counted with
/// the streaming engine. The counts of parts of a list add up to the list's.
///
/// # Errors
/// If the plan fails.
pub fn score_counts(patients: LazyFrame, within: &str) -> PolarsResult<DataFrame> {
    crate::lazy::collect_streaming(
        with_tier_footprint(patients, within)
            .group_by([col(TIER_FOOTPRINT), col(CMS_SCORE)])
            .agg([len().cast(DataType::UInt64).alias("people")]),
    )
}

/// The share of each footprint's people ranked strictly above each score, from the
/// [`score_counts`] of every part of the list: the same numbers as a rank over a window of
/// every patient, from a table of a few thousand rows.
///
/// # Errors
/// If the counts do not have the columns [`score_counts`] gives.
pub fn tier_shares(counts: Vec<DataFrame>) -> PolarsResult<TierShares> {
    let parts: Vec<LazyFrame> = counts.into_iter().map(IntoLazy::lazy).collect();
    let table = concat(parts, UnionArgs::default())?
        .group_by([col(TIER_FOOTPRINT), col(CMS_SCORE)])
        .agg([col("people").sum()])
        .sort(
            [TIER_FOOTPRINT, CMS_SCORE],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, true])
                .with_nulls_last(true),
        )
        .with_column(
            ((col("people").cum_sum(false) - col("people")).cast(DataType::Float64)
                / col("people").sum().cast(DataType::Float64))
            .over([col(TIER_FOOTPRINT)])?
            .alias(SHARE_ABOVE),
        )
        .select([
            col(TIER_FOOTPRINT).cast(DataType::String),
            col(CMS_SCORE).cast(DataType::Float64),
            col(SHARE_ABOVE),
            col("people"),
        ])
        .collect()?;
    let footprints = table.column(TIER_FOOTPRINT)?.str()?;
    let scores = table.column(CMS_SCORE)?.f64()?;
    let shares = table.column(SHARE_ABOVE)?.f64()?;
    let people = table.column("people")?.u64()?;
    // Each footprint's shares, and the people with its most common score so far.
    let mut by_footprint: HashMap<Option<String>, (FootprintShares, u64)> = HashMap::new();
    let rows = footprints.iter().zip(scores.iter()).zip(shares.iter());
    for (((footprint, score), share), people) in rows.zip(people.iter()) {
        let (entry, most) = by_footprint
            .entry(footprint.map(str::to_string))
            .or_default();
        match score {
            Some(score) => {
                entry.scores.push((score, share));
                let people = people.unwrap_or(0);
                if people > *most {
                    *most = people;
                    entry.common = Some((score, share));
                }
            }
            None => entry.null_score = share,
        }
    }
    let by_footprint = by_footprint
        .into_iter()
        .map(|(footprint, (mut entry, _))| {
            // Sorted by descending score: ascending for the binary search.
            entry.scores.reverse();
            (footprint, entry)
        })
        .collect();
    Ok(TierShares {
        by_footprint: Arc::new(by_footprint),
    })
}

/// The share of people ranked strictly above each score of each footprint ([`tier_shares`]).
#[derive(Debug, Clone)]
pub struct TierShares {
    /// By footprint code (`None`: patients whose practice has no footprint of that kind, one
    /// footprint of their own, as in a window).
    by_footprint: Arc<HashMap<Option<String>, FootprintShares>>,
}

/// One footprint's scores and shares.
#[derive(Debug, Clone, Default)]
struct FootprintShares {
    /// (score, share ranked above), by ascending score.
    scores: Vec<(f64, Option<f64>)>,
    /// The share above a missing score.
    null_score: Option<f64>,
    /// The score most of the footprint's people have, and its share, looked at before the
    /// search: about half of a list has no condition the score counts (a score of 0), and
    /// the search among a footprint's hundreds of scores cost 2.6% of the patient stages' CPU
    /// at England scale (benches/RESULTS.md, thirty-third round).
    common: Option<(f64, Option<f64>)>,
}

impl FootprintShares {
    /// The share above `score` (`None` when the counts did not see it).
    fn share(&self, score: Option<f64>) -> Option<f64> {
        match score {
            None => self.null_score,
            Some(score) => {
                if let Some((common, share)) = self.common
                    && common.total_cmp(&score).is_eq()
                {
                    return share;
                }
                let at = self
                    .scores
                    .binary_search_by(|(s, _)| s.total_cmp(&score))
                    .ok()?;
                self.scores.get(at).and_then(|(_, share)| *share)
            }
        }
    }
}

/// Add each patient's share of people ranked above (from [`tier_shares`]); `None` (cut-off
/// tiers) leaves the patients as they are.
///
/// Looked up per patient (the footprint once per run of equal codes; the score compared with
/// the footprint's most common one, else found by a binary search among its scores): a join on
/// footprint and score gave the same numbers but copied every patient column, about a tenth of
/// writing a part.
pub fn with_tier_shares(
    patients: LazyFrame,
    shares: Option<&TierShares>,
    within: &str,
) -> LazyFrame {
    let Some(shares) = shares else {
        return patients;
    };
    let shares = shares.clone();
    // Across England every patient is in the one footprint: no column to read.
    let mut inputs = vec![col(CMS_SCORE).cast(DataType::Float64)];
    if within != "england" {
        inputs.push(col(within).cast(DataType::String));
    }
    let share = map_multiple(
        move |columns: &mut [Column]| {
            let (scores, footprints) = match columns {
                [scores] => (scores.f64()?, None),
                [scores, footprints] => (scores.f64()?, Some(footprints.str()?)),
                _ => polars_bail!(ComputeError: "tier shares: expected a score and a footprint"),
            };
            let footprints: Box<dyn Iterator<Item = Option<&str>> + '_> = match footprints {
                Some(codes) => Box::new(codes.iter()),
                None => Box::new(std::iter::repeat(Some(schema::ENGLAND_CODE))),
            };
            // Footprints by run of equal codes (patients come practice by practice).
            let mut last: Option<(Option<&str>, Option<&FootprintShares>)> = None;
            let values: Float64Chunked = footprints
                .zip(scores.iter())
                .map(|(footprint, score)| {
                    let entry = match last {
                        Some((previous, entry)) if previous == footprint => entry,
                        _ => {
                            let entry = shares.by_footprint.get(&footprint.map(str::to_string));
                            last = Some((footprint, entry));
                            entry
                        }
                    };
                    entry.and_then(|e| e.share(score))
                })
                .collect();
            Ok(values.into_column())
        },
        inputs,
        |_, _| Ok(Field::new(SHARE_ABOVE.into(), DataType::Float64)),
    );
    patients.with_column(share.alias(SHARE_ABOVE))
}

/// The risk tier of each patient (the caller aliases it [`crate::pipeline::segment::RISK_TIER`]).
///
/// Percentile: rank the score within the footprint (highest first; tied scores share the
/// better rank), take the share of people ranked above, and cut at 0.5%, 5% and 20%; it reads
/// the column [`with_tier_shares`] adds ([`score_counts`] of every part of the list, then
/// [`tier_shares`]). Cut-offs: the thresholds for moderate, high and very high.
pub fn tier(method: TierMethod, cutoffs: &[f64]) -> Expr {
    let score = col(CMS_SCORE);
    let label = |i: usize| TIERS.get(i).copied().unwrap_or("4 low (rest)");
    match method {
        TierMethod::Percentile => {
            let share = col(SHARE_ABOVE);
            crate::lazy::first_label(
                [
                    (score.lt_eq(lit(0.0)), label(3)),
                    (share.clone().lt(lit(PYRAMID[0])), label(0)),
                    (share.clone().lt(lit(PYRAMID[1])), label(1)),
                    (share.lt(lit(PYRAMID[2])), label(2)),
                ],
                Some(label(3)),
            )
        }
        TierMethod::Cutoffs => {
            let cut = |i: usize| cutoffs.get(i).copied().unwrap_or(f64::INFINITY);
            crate::lazy::first_label(
                [
                    (score.clone().gt_eq(lit(cut(2))), label(0)),
                    (score.clone().gt_eq(lit(cut(1))), label(1)),
                    (score.gt_eq(lit(cut(0))), label(2)),
                ],
                Some(label(3)),
            )
        }
    }
}

/// Drop the helper columns [`with_tier_shares`] added (none for cut-offs), once the tier is set.
pub fn without_tier_inputs(patients: LazyFrame, method: TierMethod) -> LazyFrame {
    match method {
        TierMethod::Percentile => patients.drop(cols([SHARE_ABOVE])),
        TierMethod::Cutoffs => patients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(scores: &[f64], pcn: &[&str]) -> LazyFrame {
        df![CMS_SCORE => scores, "pcn_code" => pcn]
            .expect("frame")
            .lazy()
    }

    /// Tiers the way the pipeline sets them: inputs, tier, helper columns dropped.
    fn tiers(df: LazyFrame, method: TierMethod, within: &str, cutoffs: &[f64]) -> Vec<String> {
        let shares = match method {
            TierMethod::Percentile => Some(
                tier_shares(vec![score_counts(df.clone(), within).expect("counts")])
                    .expect("shares"),
            ),
            TierMethod::Cutoffs => None,
        };
        let with_tier = with_tier_shares(df, shares.as_ref(), within)
            .with_column(tier(method, cutoffs).alias("t"));
        without_tier_inputs(with_tier, method)
            .select([col("t")])
            .collect()
            .expect("collect")
            .column("t")
            .expect("t")
            .str()
            .expect("str")
            .iter()
            .map(|v| {
                v.unwrap_or("")
                    .chars()
                    .next()
                    .map(String::from)
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The most common score, looked up first, has the share the search finds; so do the
    /// others, and a score the counts did not see has none.
    #[test]
    fn the_most_common_score_has_the_share_the_search_finds() -> PolarsResult<()> {
        // In U1 most people score 2.0 (not the lowest score); in U2, 0.0.
        let counts = df![
            TIER_FOOTPRINT => ["U1", "U1", "U1", "U1", "U2", "U2"],
            CMS_SCORE => [0.0, 1.5, 2.0, 7.0, 0.0, 3.0],
            "people" => [10u64, 5, 40, 1, 30, 3],
        ]?;
        let shares = tier_shares(vec![counts])?;
        for (footprint, most) in [("U1", 2.0), ("U2", 0.0)] {
            let entry = &shares.by_footprint[&Some(footprint.to_string())];
            assert_eq!(entry.common.map(|(score, _)| score), Some(most));
            let searched = FootprintShares {
                common: None,
                ..entry.clone()
            };
            for score in [0.0, 1.5, 2.0, 3.0, 7.0, 2.5] {
                assert_eq!(entry.share(Some(score)), searched.share(Some(score)));
            }
            assert_eq!(entry.share(Some(2.5)), None);
        }
        // U1's people above a score of 2.0: the one at 7.0, of 56.
        let u1 = &shares.by_footprint[&Some("U1".to_string())];
        assert_eq!(u1.share(Some(2.0)), Some(1.0 / 56.0));
        Ok(())
    }

    #[test]
    fn pyramid_within_each_pcn() {
        // 200 people in one PCN with distinct positive scores: 1 very high (0.5%), 9 high,
        // 30 moderate, 160 low.
        let scores: Vec<f64> = (1..=200).map(f64::from).collect();
        let pcn = vec!["U1"; 200];
        let got = tiers(
            frame(&scores, &pcn),
            TierMethod::Percentile,
            "pcn_code",
            &[],
        );
        let count = |t: &str| got.iter().filter(|g| *g == t).count();
        assert_eq!(
            (count("1"), count("2"), count("3"), count("4")),
            (1, 9, 30, 160)
        );
        assert_eq!(
            got.last().map(String::as_str),
            Some("1"),
            "the highest score is top tier"
        );
    }

    #[test]
    fn pyramid_within_each_pcn_of_many_and_among_patients_without_one() {
        // Three footprints interleaved (one of them people whose practice has no PCN), each
        // with 200 distinct positive scores: each has its own pyramid, as a window would give.
        let mut scores = Vec::new();
        let mut pcn: Vec<Option<&str>> = Vec::new();
        for score in 1..=200 {
            for footprint in [Some("U1"), Some("U2"), None] {
                scores.push(f64::from(score) + if footprint == Some("U2") { 0.5 } else { 0.0 });
                pcn.push(footprint);
            }
        }
        let df = df![CMS_SCORE => scores, "pcn_code" => pcn]
            .expect("frame")
            .lazy();
        let got = tiers(df, TierMethod::Percentile, "pcn_code", &[]);
        for offset in 0..3 {
            let count = |t: &str| {
                got.iter()
                    .skip(offset)
                    .step_by(3)
                    .filter(|g| *g == t)
                    .count()
            };
            assert_eq!(
                (count("1"), count("2"), count("3"), count("4")),
                (1, 9, 30, 160),
                "footprint {offset}"
            );
        }
        // Across England the same people form one pyramid of 600.
        let df = df![CMS_SCORE => (1..=600).map(f64::from).collect::<Vec<_>>()]
            .expect("frame")
            .lazy();
        let got = tiers(df, TierMethod::Percentile, "england", &[]);
        let count = |t: &str| got.iter().filter(|g| *g == t).count();
        assert_eq!((count("1"), count("2"), count("3")), (3, 27, 90));
    }

    #[test]
    fn counts_of_parts_give_the_tiers_of_the_whole_list() {
        // 400 people in two PCNs, split into two parts that each hold some of both PCNs: the
        // shares from both parts' counts tier each part as the whole list is tiered.
        let scores: Vec<f64> = (0..400).map(|i| f64::from((i * 37) % 101)).collect();
        let pcn: Vec<&str> = (0..400)
            .map(|i| if i % 3 == 0 { "U1" } else { "U2" })
            .collect();
        let whole = tiers(
            frame(&scores, &pcn),
            TierMethod::Percentile,
            "pcn_code",
            &[],
        );
        let (first, second) = (
            frame(&scores[..150], &pcn[..150]),
            frame(&scores[150..], &pcn[150..]),
        );
        let counts = vec![
            score_counts(first.clone(), "pcn_code").expect("counts"),
            score_counts(second.clone(), "pcn_code").expect("counts"),
        ];
        let shares = tier_shares(counts).expect("shares");
        let mut split = Vec::new();
        for part in [first, second] {
            let tiered = with_tier_shares(part, Some(&shares), "pcn_code")
                .with_column(tier(TierMethod::Percentile, &[]).alias("t"))
                .collect()
                .expect("collect");
            for value in tiered.column("t").expect("t").str().expect("str").iter() {
                split.push(value.unwrap_or("").chars().take(1).collect::<String>());
            }
        }
        assert_eq!(split, whole);
        // And not what either part would give alone.
        let alone = tiers(
            frame(&scores[..150], &pcn[..150]),
            TierMethod::Percentile,
            "pcn_code",
            &[],
        );
        assert_ne!(alone, whole[..150]);
    }

    #[test]
    fn zero_scores_are_always_low_and_ties_share_a_tier() {
        let scores = [0.0, 0.0, 0.0, 2.0, 2.0];
        let pcn = ["U1"; 5];
        let got = tiers(
            frame(&scores, &pcn),
            TierMethod::Percentile,
            "pcn_code",
            &[],
        );
        assert_eq!(got, ["4", "4", "4", "1", "1"]);
    }

    #[test]
    fn cutoffs() {
        let got = tiers(
            frame(&[0.0, 0.5, 1.5, 3.0], &["U1"; 4]),
            TierMethod::Cutoffs,
            "pcn_code",
            &[0.5, 1.5, 3.0],
        );
        assert_eq!(got, ["4", "3", "2", "1"]);
    }

    #[test]
    fn cms_and_efi_scores() {
        let mut columns: Vec<Column> = CONDITIONS
            .iter()
            .map(|c| {
                Column::new(
                    c.code.into(),
                    [c.code == "dementia" || c.code == "hypertension"],
                )
            })
            .collect();
        columns.push(Column::new(schema::AGE.into(), [70i64]));
        let df = DataFrame::new(1, columns).expect("frame");
        let out = with_scores(df.lazy()).collect().expect("collect");
        let cms = out
            .column(CMS_SCORE)
            .expect("cms")
            .f64()
            .expect("f64")
            .get(0);
        assert!((cms.unwrap_or(0.0) - (2.50 + 0.08)).abs() < 1e-12);
        let efi = out.column(EFI).expect("efi").f64().expect("f64").get(0);
        assert!((efi.unwrap_or(0.0) - 2.0 / 36.0).abs() < 1e-12);
        assert_eq!(
            out.column(EFI_CATEGORY)
                .expect("cat")
                .str()
                .expect("str")
                .get(0),
            Some("fit")
        );
    }
}
