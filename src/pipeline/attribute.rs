//! Stage 3, attribute: network footprints for every practice, patient and LSOA.
//!
//! Owns:
//! - *membership*: practice → PCN as at the extract date from the dated ePCN rows; practice →
//!   sub-ICB → ICB from the practice's own parent organisation in ODS `epraccur`, so practices
//!   outside any PCN still count for their ICB, as NHS publications count them;
//! - *residence footprints*: each LSOA to the PCN holding the largest share of its registered
//!   residents (or proportional shares), as rows of the `footprint_weights` table;
//! - *geometric footprints*: LSOA centroids in footprint polygons ([`crate::geometry`]);
//! - *area deprivation*: population-weighted IMD score, Core20 share and quintile mix for each
//!   practice, PCN, ICB and England, and practice and PCN deprivation deciles.
//!
//! The deprivation join itself is `enrich`; statistics (the weighted deciles) are `crate::stats`.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::UserError;
use crate::ingest::InputKind;
use crate::pipeline::ingest::Ingested;
use crate::pipeline::key_codes::{KeyCodes, batch_codes};
use crate::schema;
use crate::stats::quantile::{DeprivationOrder, population_weighted_quantiles};

/// How LSOAs get a PCN footprint from where registered patients live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidenceMethod {
    /// Each LSOA to the one PCN with the largest share of its registered residents (ties to the
    /// lower PCN code); weight 1.
    #[default]
    Plurality,
    /// Each LSOA to every PCN with registered residents there, weighted by their share.
    Share,
}

impl ResidenceMethod {
    /// The `method` value written to `footprint_weights`.
    pub fn label(self) -> &'static str {
        match self {
            ResidenceMethod::Plurality => "registered_plurality",
            ResidenceMethod::Share => "registered_share",
        }
    }
}

/// Columns of the practice footprint table, in order.
pub const PRACTICE_FOOTPRINT_COLUMNS: &[&str] = &[
    schema::PRACTICE_CODE,
    schema::PRACTICE_NAME,
    schema::PCN_CODE,
    schema::PCN_NAME,
    schema::SUB_ICB_CODE,
    schema::ICB_CODE,
    schema::ICB_ONS_CODE,
    schema::ICB_NAME,
];

/// Every practice's PCN (as at the extract date) and ICB.
///
/// PCN: the ePCN membership whose start is on or before the extract date and whose end is
/// empty or on or after it; when a practice has several (a move recorded with overlapping
/// dates), the latest start wins. ICB and sub-ICB: the practice's parent in `epraccur`; when a
/// practice is not there, the NHS Digital practice map is used.
///
/// # Errors
/// [`UserError`] when the config has neither `epcn_members` nor `practice_map`, or neither
/// `epraccur` nor `practice_map`.
pub fn practice_footprints(
    ingested: &Ingested,
    extract_date: NaiveDate,
) -> Result<LazyFrame, UserError> {
    let pcn = match (
        ingested.frame(InputKind::EpcnMembers),
        ingested.frame(InputKind::PracticeMap),
    ) {
        (Some(members), _) => members
            .filter(
                col(schema::MEMBERSHIP_START).lt_eq(lit(extract_date)).and(
                    col(schema::MEMBERSHIP_END)
                        .is_null()
                        .or(col(schema::MEMBERSHIP_END).gt_eq(lit(extract_date))),
                ),
            )
            .sort_by_exprs(
                [
                    col(schema::PRACTICE_CODE),
                    col(schema::MEMBERSHIP_START),
                    col(schema::PCN_CODE),
                ],
                SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
            )
            .unique_stable(
                Some(cols([schema::PRACTICE_CODE])),
                UniqueKeepStrategy::First,
            )
            .select([
                col(schema::PRACTICE_CODE),
                col(schema::PCN_CODE),
                col(schema::PCN_NAME),
            ]),
        (None, Some(map)) => map.filter(col(schema::PCN_CODE).is_not_null()).select([
            col(schema::PRACTICE_CODE),
            col(schema::PCN_CODE),
            col(schema::PCN_NAME),
        ]),
        (None, None) => {
            return Err(UserError(
                "attributing practices to PCNs needs [inputs.epcn_members] (or [inputs.practice_map])".into(),
            ));
        }
    };
    let parent_columns = || {
        [
            col(schema::PRACTICE_CODE),
            col(schema::PRACTICE_NAME),
            col(schema::SUB_ICB_CODE),
            col(schema::ICB_CODE),
        ]
    };
    let parents = match (
        ingested.frame(InputKind::Epraccur),
        ingested.frame(InputKind::PracticeMap),
    ) {
        (Some(epraccur), map) => {
            let primary = epraccur.select(parent_columns());
            match map {
                // Practices absent from epraccur fall back to the practice map's parents.
                Some(map) => {
                    let fallback = map.select(parent_columns()).join(
                        primary.clone().select([col(schema::PRACTICE_CODE)]),
                        [col(schema::PRACTICE_CODE)],
                        [col(schema::PRACTICE_CODE)],
                        JoinArgs::new(JoinType::Anti),
                    );
                    concat([primary, fallback], UnionArgs::default())
                        .map_err(|e| UserError(format!("cannot combine practice parents: {e}")))?
                }
                None => primary,
            }
        }
        (None, Some(map)) => map.select(parent_columns()),
        (None, None) => {
            return Err(UserError(
                "attributing practices to ICBs needs [inputs.epraccur] (or [inputs.practice_map])"
                    .into(),
            ));
        }
    };
    let icb_names = match ingested.frame(InputKind::IcbCodes) {
        Some(codes) => codes.select([
            col(schema::ICB_CODE),
            col(schema::ICB_ONS_CODE),
            col(schema::ICB_NAME),
        ]),
        None => DataFrame::new(
            0,
            vec![
                Column::new_empty(schema::ICB_CODE.into(), &DataType::String),
                Column::new_empty(schema::ICB_ONS_CODE.into(), &DataType::String),
                Column::new_empty(schema::ICB_NAME.into(), &DataType::String),
            ],
        )
        .map_err(|e| UserError(format!("cannot build the ICB lookup: {e}")))?
        .lazy(),
    };
    let practices = concat(
        [
            parents.clone().select([col(schema::PRACTICE_CODE)]),
            pcn.clone().select([col(schema::PRACTICE_CODE)]),
        ],
        UnionArgs::default(),
    )
    .map_err(|e| UserError(format!("cannot list practices: {e}")))?
    .unique(None, UniqueKeepStrategy::Any);
    let left = JoinArgs::new(JoinType::Left);
    Ok(practices
        .join(
            pcn,
            [col(schema::PRACTICE_CODE)],
            [col(schema::PRACTICE_CODE)],
            left.clone(),
        )
        .join(
            parents,
            [col(schema::PRACTICE_CODE)],
            [col(schema::PRACTICE_CODE)],
            left.clone(),
        )
        .join(
            icb_names,
            [col(schema::ICB_CODE)],
            [col(schema::ICB_CODE)],
            left,
        )
        .select(
            PRACTICE_FOOTPRINT_COLUMNS
                .iter()
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        )
        .sort([schema::PRACTICE_CODE], SortMultipleOptions::default()))
}

/// Attach each population row's membership footprints (its practice's PCN and ICB).
pub fn attach_membership(population: LazyFrame, practices: LazyFrame) -> LazyFrame {
    let args = JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    };
    population.join(
        practices,
        [col(schema::PRACTICE_CODE)],
        [col(schema::PRACTICE_CODE)],
        args,
    )
}

/// [`attach_membership`] for a part of the registered list held in memory: each practice's
/// row of `practices` looked up, not joined, so the patients' columns are not copied.
///
/// # Errors
/// If `practice_code` is missing or not text.
pub fn attach_membership_part(
    patients: DataFrame,
    practices: &DataFrame,
) -> PolarsResult<DataFrame> {
    crate::pipeline::lookup::left_lookup(patients, schema::PRACTICE_CODE, practices)
}

/// Who the membership attribution could not place.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MembershipReport {
    /// Practices in the registered list.
    pub practices: i64,
    /// Practices with no PCN at the extract date (they still count for their ICB).
    pub practices_without_pcn: i64,
    /// Registered people at those practices.
    pub population_without_pcn: i64,
    /// Practices with no ICB (not in `epraccur` nor the practice map).
    pub practices_without_icb: i64,
    /// Registered people at those practices.
    pub population_without_icb: i64,
}

impl MembershipReport {
    /// Count from an attributed population.
    ///
    /// # Errors
    /// If the plan fails to run.
    pub fn from_population(attributed: &LazyFrame) -> PolarsResult<MembershipReport> {
        let by_practice = crate::lazy::collect_streaming(
            attributed
                .clone()
                .group_by([col(schema::PRACTICE_CODE)])
                .agg([
                    col(schema::WEIGHT).sum().alias("population"),
                    col(schema::PCN_CODE).first().alias("pcn"),
                    col(schema::ICB_CODE).first().alias("icb"),
                ])
                .select([
                    len().alias("practices"),
                    col("pcn").is_null().sum().alias("practices_without_pcn"),
                    col("population")
                        .filter(col("pcn").is_null())
                        .sum()
                        .alias("population_without_pcn"),
                    col("icb").is_null().sum().alias("practices_without_icb"),
                    col("population")
                        .filter(col("icb").is_null())
                        .sum()
                        .alias("population_without_icb"),
                ]),
        )?;
        let get = |name: &str| -> PolarsResult<i64> {
            Ok(by_practice
                .column(name)?
                .cast(&DataType::Int64)?
                .i64()?
                .get(0)
                .unwrap_or(0))
        };
        Ok(MembershipReport {
            practices: get("practices")?,
            practices_without_pcn: get("practices_without_pcn")?,
            population_without_pcn: get("population_without_pcn")?,
            practices_without_icb: get("practices_without_icb")?,
            population_without_icb: get("population_without_icb")?,
        })
    }

    /// Warnings for people (empty when everyone is placed).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.practices_without_pcn > 0 {
            out.push(format!(
                "{} of {} practices ({} registered people) are in no PCN at the extract date; they count for their ICB and England only",
                self.practices_without_pcn, self.practices, self.population_without_pcn
            ));
        }
        if self.practices_without_icb > 0 {
            out.push(format!(
                "{} practices ({} registered people) have no parent ICB in epraccur or the practice map; they count for England only",
                self.practices_without_icb, self.population_without_icb
            ));
        }
        out
    }
}

/// Columns of the `footprint_weights` table, in order.
pub const FOOTPRINT_WEIGHT_COLUMNS: &[&str] = &[
    schema::LSOA_CODE,
    schema::FOOTPRINT_KIND,
    schema::FOOTPRINT_CODE,
    schema::WEIGHT,
    schema::METHOD,
    schema::REGISTERED,
    schema::SHARE,
];

/// Each LSOA's PCN footprint from where registered patients live.
///
/// Registered residents are counted per LSOA × PCN (weighted rows). With
/// [`ResidenceMethod::Plurality`] each LSOA goes to the PCN with the largest count (ties to the
/// lower PCN code, so runs are reproducible), provided its share reaches `min_share`; with
/// [`ResidenceMethod::Share`] to every PCN, weighted by share. Rows are sorted by LSOA and PCN.
pub fn residence_footprints(
    attributed: LazyFrame,
    method: ResidenceMethod,
    min_share: f64,
) -> LazyFrame {
    let counts = attributed
        .filter(
            col(schema::LSOA_CODE)
                .is_not_null()
                .and(col(schema::PCN_CODE).is_not_null()),
        )
        .group_by([col(schema::LSOA_CODE), col(schema::PCN_CODE)])
        .agg([col(schema::WEIGHT)
            .sum()
            .cast(DataType::Int64)
            .alias(schema::REGISTERED)])
        .with_column(
            (col(schema::REGISTERED).cast(DataType::Float64)
                / col(schema::REGISTERED)
                    .sum()
                    .over([col(schema::LSOA_CODE)])
                    .unwrap_or_else(|_| lit(NULL))
                    .cast(DataType::Float64))
            .alias(schema::SHARE),
        );
    let chosen = match method {
        ResidenceMethod::Plurality => counts
            .sort_by_exprs(
                [
                    col(schema::LSOA_CODE),
                    col(schema::REGISTERED),
                    col(schema::PCN_CODE),
                ],
                SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
            )
            .unique_stable(Some(cols([schema::LSOA_CODE])), UniqueKeepStrategy::First)
            .filter(col(schema::SHARE).gt_eq(lit(min_share)))
            .with_column(lit(1.0f64).alias(schema::WEIGHT)),
        ResidenceMethod::Share => counts.with_column(col(schema::SHARE).alias(schema::WEIGHT)),
    };
    chosen
        .with_columns([
            lit("pcn").alias(schema::FOOTPRINT_KIND),
            col(schema::PCN_CODE).alias(schema::FOOTPRINT_CODE),
            lit(method.label()).alias(schema::METHOD),
        ])
        .select(
            FOOTPRINT_WEIGHT_COLUMNS
                .iter()
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        )
        .sort(
            [schema::LSOA_CODE, schema::FOOTPRINT_CODE],
            SortMultipleOptions::default(),
        )
}

/// The `area_deprivation` table's people in each national IMD quintile (1 = most deprived).
pub const IMD_QUINTILE_POPULATIONS: [&str; 5] = [
    "population_imd_q1",
    "population_imd_q2",
    "population_imd_q3",
    "population_imd_q4",
    "population_imd_q5",
];

/// Columns of the `area_deprivation` table, in order.
pub const AREA_DEPRIVATION_COLUMNS: &[&str] = &[
    schema::AREA_LEVEL,
    schema::AREA_CODE,
    schema::AREA_NAME,
    schema::PARENT_AREA_CODE,
    schema::POPULATION,
    schema::POPULATION_WITH_IMD,
    schema::IMD_SCORE,
    schema::CORE20_POPULATION,
    schema::CORE20_SHARE,
    IMD_QUINTILE_POPULATIONS[0],
    IMD_QUINTILE_POPULATIONS[1],
    IMD_QUINTILE_POPULATIONS[2],
    IMD_QUINTILE_POPULATIONS[3],
    IMD_QUINTILE_POPULATIONS[4],
    schema::DEPRIVATION_DECILE,
];

/// Working columns of [`area_deprivation`]: the population with an IMD score, and the sum of
/// their scores weighted by population (the mean's numerator), in millionths of a point.
const SCORED_POPULATION: &str = "__scored_population";
const WEIGHTED_SCORE: &str = "__weighted_score";
/// English IMD scores (2019 and 2025, the only ones averaged here) are published to three
/// decimals: summed as whole millionths, the weighted sum is exact, so it is the same in every
/// run whatever order the streaming engine adds batches in (a floating-point sum is not).
const SCORE_UNITS: f64 = 1_000_000.0;

/// What [`area_deprivation`] counts for each practice, in this order: its registered people;
/// those in England (`nation` E, whose LSOA has an English deprivation match); those with an
/// IMD score, and their scores summed in [`SCORE_UNITS`]; Core20 people; and the English
/// people of each IMD quintile. Every count is of weighted people.
const COUNTED: [&str; 10] = [
    schema::POPULATION,
    schema::POPULATION_WITH_IMD,
    SCORED_POPULATION,
    WEIGHTED_SCORE,
    schema::CORE20_POPULATION,
    IMD_QUINTILE_POPULATIONS[0],
    IMD_QUINTILE_POPULATIONS[1],
    IMD_QUINTILE_POPULATIONS[2],
    IMD_QUINTILE_POPULATIONS[3],
    IMD_QUINTILE_POPULATIONS[4],
];

/// The key columns of a practice's counts: the practice and its footprints.
const PRACTICE_KEYS: [&str; 5] = [
    schema::PRACTICE_CODE,
    schema::PCN_CODE,
    schema::PCN_NAME,
    schema::ICB_CODE,
    schema::ICB_NAME,
];

/// The people of [`COUNTED`] summed by practice and footprints ([`PRACTICE_KEYS`]), batch
/// by batch. A row's counts are added by a loop over the batch's columns: as ten polars
/// `when`/`then` columns and a group-by of five text keys, the pass took 2.3 s at England.
struct PracticeCounts {
    keys: Vec<KeyCodes>,
    /// Each group's key codes, and where it is in `groups`.
    group_of: std::collections::HashMap<[u32; 5], u32, foldhash::fast::RandomState>,
    groups: Vec<[u32; 5]>,
    /// Each group's counts, in the order of [`COUNTED`].
    counts: Vec<[i64; 10]>,
}

/// Working columns of [`PracticeCounts`]: whether a row is in England, is Core20, its IMD
/// quintile (0 when none), score and weight.
const IN_ENGLAND: &str = "__in_england";
const IS_CORE20: &str = "__is_core20";
const QUINTILE: &str = "__quintile";
const SCORE: &str = "__score";
const WEIGHT: &str = "__weight";

impl PracticeCounts {
    /// The counts of every practice of `attributed`, as a frame of the keys and the counts.
    fn of(attributed: LazyFrame) -> PolarsResult<DataFrame> {
        let schema = attributed.clone().collect_schema()?;
        let counts = PracticeCounts {
            keys: PRACTICE_KEYS
                .iter()
                .map(|name| Ok(KeyCodes::new(name, schema.try_get(name)?)))
                .collect::<PolarsResult<_>>()?,
            group_of: Default::default(),
            groups: Vec::new(),
            counts: Vec::new(),
        };
        let columns: Vec<Expr> = PRACTICE_KEYS
            .iter()
            .map(|name| col(*name))
            .chain([
                col(schema::NATION)
                    .eq(lit("E"))
                    .fill_null(lit(false))
                    .alias(IN_ENGLAND),
                col(schema::CORE20)
                    .eq(lit(true))
                    .fill_null(lit(false))
                    .alias(IS_CORE20),
                col(schema::IMD_QUINTILE)
                    .cast(DataType::Int64)
                    .fill_null(lit(0i64))
                    .alias(QUINTILE),
                col(schema::IMD_SCORE).cast(DataType::Float64).alias(SCORE),
                col(schema::WEIGHT).cast(DataType::Int64).alias(WEIGHT),
            ])
            .collect();
        let counts =
            crate::lazy::fold_batches(attributed.select(columns), counts, |counts, batch| {
                counts.add(&batch)
            })?;
        counts.into_frame()
    }

    fn add(&mut self, batch: &DataFrame) -> PolarsResult<()> {
        let codes = batch_codes(&mut self.keys, batch)?;
        let in_england = crate::pipeline::flag_bits(batch.column(IN_ENGLAND)?)?;
        let is_core20 = crate::pipeline::flag_bits(batch.column(IS_CORE20)?)?;
        let quintiles = batch.column(QUINTILE)?.i64()?.rechunk();
        let scores = batch.column(SCORE)?.f64()?.rechunk();
        let weights = batch.column(WEIGHT)?.i64()?.rechunk();
        let (Some(quintiles), Some(scores), Some(weights)) = (
            quintiles.downcast_iter().next(),
            scores.downcast_iter().next(),
            weights.downcast_iter().next(),
        ) else {
            return Ok(());
        };
        let (scored, weighed) = (scores.validity(), weights.validity());
        let mut last: Option<([u32; 5], usize)> = None;
        for (row, ((&quintile, &score), &weight)) in quintiles
            .values()
            .iter()
            .zip(scores.values().iter())
            .zip(weights.values().iter())
            .enumerate()
        {
            // A missing weight counts no one (polars' sums skip it).
            if weighed.is_some_and(|valid| !valid.get_bit(row)) {
                continue;
            }
            let key = [
                codes[0][row],
                codes[1][row],
                codes[2][row],
                codes[3][row],
                codes[4][row],
            ];
            let group = match last {
                Some((previous, group)) if previous == key => group,
                _ => {
                    let next = self.groups.len() as u32;
                    let group = *self.group_of.entry(key).or_insert(next) as usize;
                    if group == self.groups.len() {
                        self.groups.push(key);
                        self.counts.push([0; 10]);
                    }
                    last = Some((key, group));
                    group
                }
            };
            let counts = &mut self.counts[group];
            counts[0] += weight;
            if in_england.get_bit(row) {
                counts[1] += weight;
                if scored.is_none_or(|valid| valid.get_bit(row)) {
                    counts[2] += weight;
                    // In whole millionths, as the scores are published to three decimals.
                    counts[3] += (score * SCORE_UNITS).round_ties_even() as i64 * weight;
                }
                if let Ok(quintile @ 1..=5) = usize::try_from(quintile) {
                    counts[4 + quintile] += weight;
                }
            }
            if is_core20.get_bit(row) {
                counts[4] += weight;
            }
        }
        Ok(())
    }

    /// The groups' key columns and counts.
    fn into_frame(self) -> PolarsResult<DataFrame> {
        let mut columns = Vec::with_capacity(PRACTICE_KEYS.len() + COUNTED.len());
        for (k, key) in self.keys.iter().enumerate() {
            let codes = self.groups.iter().map(|group| group[k]).collect();
            columns.push(key.take(codes)?.into_column());
        }
        for (c, name) in COUNTED.iter().enumerate() {
            let counts: Vec<i64> = self.counts.iter().map(|counts| counts[c]).collect();
            columns.push(Column::new((*name).into(), counts));
        }
        DataFrame::new(self.groups.len(), columns)
    }
}

/// Population-weighted deprivation of every practice, PCN and ICB and of England.
///
/// For each area: registered population; population with an English deprivation match; the
/// population-weighted mean IMD score of its residents' LSOAs (as Fingertips computes practice
/// scores); Core20 people and their share of the matched population; population by national
/// IMD quintile. Practices and PCNs also get a deprivation decile among areas of their level,
/// population-weighted (each decile holds about a tenth of registered people; 1 = most
/// deprived), computed by [`crate::stats`] in [`with_deprivation_deciles`].
///
/// # Errors
/// If the plan fails to run.
pub fn area_deprivation(attributed: LazyFrame) -> PolarsResult<DataFrame> {
    // People counted by practice (with its PCN and ICB) in one streamed pass: the areas are
    // sums of their practices', so PCNs, ICBs and England are rolled up from that small table
    // instead of re-reading the patients.
    let by_practice = PracticeCounts::of(attributed)?.lazy();
    let metrics = || {
        let mut aggs: Vec<Expr> = COUNTED
            .iter()
            .filter(|name| **name != SCORED_POPULATION && **name != WEIGHTED_SCORE)
            .map(|name| col(*name).sum())
            .collect();
        aggs.push(
            (col(WEIGHTED_SCORE).sum().cast(DataType::Float64)
                / lit(SCORE_UNITS)
                / col(SCORED_POPULATION).sum().cast(DataType::Float64))
            .alias(schema::IMD_SCORE),
        );
        aggs
    };
    let level = |name: &str, code: &str, area_name: Option<&str>, parent: Option<&str>| {
        let mut keys = vec![col(code)];
        if let Some(n) = area_name {
            keys.push(col(n));
        }
        if let Some(p) = parent {
            keys.push(col(p));
        }
        by_practice
            .clone()
            .filter(col(code).is_not_null())
            .group_by(keys)
            .agg(metrics())
            .with_columns([
                lit(name.to_string()).alias(schema::AREA_LEVEL),
                col(code).alias(schema::AREA_CODE),
                area_name
                    .map_or(lit(NULL).cast(DataType::String), col)
                    .alias(schema::AREA_NAME),
                parent
                    .map_or(lit(NULL).cast(DataType::String), col)
                    .alias(schema::PARENT_AREA_CODE),
            ])
    };
    let england = by_practice.clone().select(metrics()).with_columns([
        lit("england").alias(schema::AREA_LEVEL),
        lit(schema::ENGLAND_CODE).alias(schema::AREA_CODE),
        lit("England").alias(schema::AREA_NAME),
        lit(NULL)
            .cast(DataType::String)
            .alias(schema::PARENT_AREA_CODE),
    ]);
    // A practice's PCN and a PCN's ICB are their parents; a PCN whose practices sit in two ICBs
    // appears once per ICB (rare; ePCN records each PCN's own sub-ICB).
    let practices = level(
        "practice",
        schema::PRACTICE_CODE,
        None,
        Some(schema::PCN_CODE),
    );
    let pcns = level(
        "pcn",
        schema::PCN_CODE,
        Some(schema::PCN_NAME),
        Some(schema::ICB_CODE),
    );
    let icbs = level("icb", schema::ICB_CODE, Some(schema::ICB_NAME), None);
    let select = |lf: LazyFrame| {
        lf.with_columns([
            (col(schema::CORE20_POPULATION).cast(DataType::Float64)
                / col(schema::POPULATION_WITH_IMD).cast(DataType::Float64))
            .alias(schema::CORE20_SHARE),
            lit(NULL)
                .cast(DataType::Int64)
                .alias(schema::DEPRIVATION_DECILE),
        ])
        .select(
            AREA_DEPRIVATION_COLUMNS
                .iter()
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        )
    };
    let all = concat(
        [
            select(england),
            select(icbs),
            select(pcns),
            select(practices),
        ],
        UnionArgs::default(),
    )?;
    let mut table = all.collect()?;
    with_deprivation_deciles(&mut table)?;
    let level_order = col(schema::AREA_LEVEL).replace_strict(
        lit(Series::new(
            "from".into(),
            ["england", "icb", "pcn", "practice"],
        )),
        lit(Series::new("to".into(), [0i32, 1, 2, 3])),
        None,
        Some(DataType::Int32),
    );
    table
        .lazy()
        .sort_by_exprs(
            [
                level_order,
                col(schema::AREA_CODE),
                col(schema::PARENT_AREA_CODE),
            ],
            SortMultipleOptions::default().with_nulls_last(true),
        )
        .collect()
}

/// Fill `deprivation_decile` for practices and PCNs: population-weighted deciles of the
/// area IMD score among all areas of the level (1 = most deprived). Areas without a score get
/// none.
///
/// # Errors
/// If a column is missing or mistyped (an internal error).
pub fn with_deprivation_deciles(table: &mut DataFrame) -> PolarsResult<()> {
    let levels = table.column(schema::AREA_LEVEL)?.str()?.clone();
    let scores = table.column(schema::IMD_SCORE)?.f64()?.clone();
    let populations = table
        .column(schema::POPULATION_WITH_IMD)?
        .cast(&DataType::Float64)?;
    let populations = populations.f64()?.clone();
    let mut deciles: Vec<Option<i64>> = vec![None; table.height()];
    for level in ["practice", "pcn"] {
        // Crossing into plain slices for the statistics, per level (a few thousand rows).
        let rows: Vec<usize> = (0..table.height())
            .filter(|&i| levels.get(i) == Some(level) && scores.get(i).is_some())
            .collect();
        let level_scores: Vec<f64> = rows
            .iter()
            .map(|&i| scores.get(i).unwrap_or(f64::NAN))
            .collect();
        let level_pops: Vec<f64> = rows
            .iter()
            .map(|&i| populations.get(i).unwrap_or(0.0))
            .collect();
        if rows.is_empty() || level_pops.iter().sum::<f64>() <= 0.0 {
            continue;
        }
        let assigned = population_weighted_quantiles(
            &level_scores,
            &level_pops,
            10,
            DeprivationOrder::HigherIsMoreDeprived,
        )
        .map_err(|e| polars_err!(ComputeError: "deprivation deciles for {level}s: {e}"))?;
        for (&row, decile) in rows.iter().zip(assigned) {
            if let Some(slot) = deciles.get_mut(row) {
                *slot = Some(i64::from(decile));
            }
        }
    }
    table.with_column(Column::new(schema::DEPRIVATION_DECILE.into(), deciles))?;
    Ok(())
}

/// How the LSOA centroids fell in one kind of footprint polygon.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GeometricReport {
    /// The footprint kind (`icb`, …).
    pub footprint_kind: String,
    /// Centroids inside exactly one polygon.
    pub inside_one: usize,
    /// Centroids inside several (overlapping) polygons: attributed to the first.
    pub inside_several: usize,
    /// Centroids in none but within `max_km` of one (on a boundary, or a coastal centroid
    /// outside a generalised boundary): attributed to the nearest.
    pub nearest: usize,
    /// Centroids in none and not near one, by nation (`E`, `W`): not attributed.
    pub outside: std::collections::BTreeMap<String, usize>,
}

impl GeometricReport {
    /// A warning when English LSOAs were left out (Welsh ones are expected to be outside
    /// English footprints).
    pub fn warning(&self) -> Option<String> {
        let english = self.outside.get("E").copied().unwrap_or(0);
        (english > 0 || self.inside_several > 0).then(|| {
            format!(
                "{english} English LSOA centroids fall in no {} polygon and {} fall in several",
                self.footprint_kind, self.inside_several
            )
        })
    }
}

/// Attribute LSOAs to the polygons of one footprint kind by their centroids.
///
/// A centroid inside one polygon goes to it (`method = geometric`); inside several, to the
/// first in file order (counted); inside none, to the nearest within `max_km` kilometres
/// (`method = geometric_nearest`), else to none (counted by nation).
///
/// # Errors
/// If the centroid table lacks its columns (an internal error).
pub fn geometric_footprints(
    centroids: &DataFrame,
    kind: &str,
    footprints: &crate::ingest::Footprints,
    max_km: f64,
) -> PolarsResult<(DataFrame, GeometricReport)> {
    let index = crate::geometry::FootprintIndex::new(footprints);
    let codes = centroids.column(schema::LSOA_CODE)?.str()?.clone();
    let longitudes = centroids.column(schema::LONGITUDE)?.f64()?.clone();
    let latitudes = centroids.column(schema::LATITUDE)?.f64()?.clone();
    // Crossing into plain Rust for the geometry: the R-tree works on coordinate pairs.
    let points: Vec<[f64; 2]> = longitudes
        .iter()
        .zip(latitudes.iter())
        .map(|(x, y)| [x.unwrap_or(f64::NAN), y.unwrap_or(f64::NAN)])
        .collect();
    let locations = index.locate_all(&points);
    let mut report = GeometricReport {
        footprint_kind: kind.to_string(),
        ..Default::default()
    };
    let mut lsoa = Vec::new();
    let mut footprint = Vec::new();
    let mut method = Vec::new();
    for (i, location) in locations.iter().enumerate() {
        let Some(code) = codes.get(i) else { continue };
        let chosen = match location {
            crate::geometry::Location::Inside(f) => {
                report.inside_one += 1;
                Some((*f, "geometric"))
            }
            crate::geometry::Location::Several(fs) => {
                report.inside_several += 1;
                fs.first().map(|f| (*f, "geometric"))
            }
            crate::geometry::Location::Outside => {
                let [x, y] = points.get(i).copied().unwrap_or([f64::NAN, f64::NAN]);
                match index.nearest(x, y, max_km) {
                    Some((f, _)) => {
                        report.nearest += 1;
                        Some((f, "geometric_nearest"))
                    }
                    None => {
                        let nation = code.get(..1).unwrap_or("?").to_string();
                        *report.outside.entry(nation).or_default() += 1;
                        None
                    }
                }
            }
        };
        if let Some((f, how)) = chosen {
            lsoa.push(code.to_string());
            footprint.push(index.code(f).unwrap_or_default().to_string());
            method.push(how);
        }
    }
    let n = lsoa.len();
    let frame = DataFrame::new(
        n,
        vec![
            Column::new(schema::LSOA_CODE.into(), lsoa),
            Column::new(schema::FOOTPRINT_KIND.into(), vec![kind; n]),
            Column::new(schema::FOOTPRINT_CODE.into(), footprint),
            Column::new(schema::WEIGHT.into(), vec![1.0f64; n]),
            Column::new(schema::METHOD.into(), method),
            Column::new(schema::REGISTERED.into(), vec![None::<i64>; n]),
            Column::new(schema::SHARE.into(), vec![None::<f64>; n]),
        ],
    )?;
    let frame = frame
        .lazy()
        .sort([schema::LSOA_CODE], SortMultipleOptions::default())
        .collect()?;
    Ok((frame, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The practice counts as polars computes them: a weighted `when`/`then` column a count,
    /// summed by a group-by of the five keys.
    fn counted_by_polars(attributed: LazyFrame) -> DataFrame {
        let england = col(schema::NATION).eq(lit("E"));
        let weight = || col(schema::WEIGHT).cast(DataType::Int64);
        let weight_if = |condition: Expr| {
            when(condition.fill_null(lit(false)))
                .then(weight())
                .otherwise(lit(0i64))
        };
        let scored = england.clone().and(col(schema::IMD_SCORE).is_not_null());
        let mut counts = vec![
            weight(),
            weight_if(england.clone()),
            weight_if(scored.clone()),
            when(scored)
                .then(
                    (col(schema::IMD_SCORE) * lit(SCORE_UNITS))
                        .round(0, RoundMode::HalfToEven)
                        .cast(DataType::Int64)
                        * weight(),
                )
                .otherwise(lit(0i64)),
            weight_if(col(schema::CORE20).eq(lit(true))),
        ];
        for q in 1..=5i64 {
            counts.push(weight_if(
                england.clone().and(col(schema::IMD_QUINTILE).eq(lit(q))),
            ));
        }
        attributed
            .select(
                PRACTICE_KEYS
                    .iter()
                    .map(|k| col(*k))
                    .chain(
                        counts
                            .into_iter()
                            .zip(COUNTED)
                            .map(|(e, name)| e.alias(name)),
                    )
                    .collect::<Vec<_>>(),
            )
            .group_by(PRACTICE_KEYS.map(col))
            .agg(COUNTED.map(|name| col(name).sum()))
            .collect()
            .expect("counted")
    }

    fn sorted(frame: DataFrame) -> DataFrame {
        frame
            .sort(
                PRACTICE_KEYS,
                SortMultipleOptions::default().with_nulls_last(true),
            )
            .expect("sorted")
    }

    /// Every count, over patients with missing weights, scores, quintiles and Core20 flags,
    /// outside England, in practices without a PCN, and one practice in two PCNs, read in
    /// batches: the counts polars' `when`/`then` and group-by give.
    #[test]
    fn practice_counts_are_polars_counts() {
        let rows = 3000;
        let practice = |r: usize| ["A1", "B2", "C3", "D4"][(r / 7) % 4];
        let pcn = |r: usize| match practice(r) {
            "A1" => Some("P1"),
            "B2" if r.is_multiple_of(5) => Some("P9"),
            "B2" => Some("P1"),
            "C3" => None,
            _ => Some("P2"),
        };
        let patients = df![
            schema::PRACTICE_CODE => (0..rows).map(practice).collect::<Vec<_>>(),
            schema::PCN_CODE => (0..rows).map(pcn).collect::<Vec<_>>(),
            schema::PCN_NAME => (0..rows).map(|r| pcn(r).map(|p| format!("{p} network of practices"))).collect::<Vec<_>>(),
            schema::ICB_CODE => (0..rows).map(|r| if practice(r) == "D4" { "I2" } else { "I1" }).collect::<Vec<_>>(),
            schema::ICB_NAME => (0..rows).map(|r| if practice(r) == "D4" { "Second ICB" } else { "First ICB" }).collect::<Vec<_>>(),
            schema::NATION => (0..rows).map(|r| match r % 11 { 0 => None, 1 => Some("W"), _ => Some("E") }).collect::<Vec<_>>(),
            schema::IMD_SCORE => (0..rows).map(|r| (r % 13 != 0).then_some((r % 97) as f64 * 0.7131 + 0.0005)).collect::<Vec<_>>(),
            schema::IMD_QUINTILE => (0..rows).map(|r| (r % 17 != 0).then_some((r % 5) as i32 + 1)).collect::<Vec<_>>(),
            schema::CORE20 => (0..rows).map(|r| match r % 9 { 0 => None, 1 | 2 => Some(true), _ => Some(false) }).collect::<Vec<_>>(),
            schema::WEIGHT => (0..rows).map(|r| (r % 19 != 0).then_some((r % 4) as i32 + 1)).collect::<Vec<_>>(),
        ]
        .expect("patients");
        // Batches of several sizes, as a streamed plan hands them over.
        let mut batched = patients.slice(0, 1000);
        for (offset, len) in [(1000, 1), (1001, 1499), (2500, 500)] {
            batched
                .vstack_mut(&patients.slice(offset, len))
                .expect("stacked");
        }
        let counted = PracticeCounts::of(batched.lazy()).expect("counted");
        let expected = counted_by_polars(patients.lazy());
        assert!(expected.height() >= 5, "{expected}");
        assert_eq!(sorted(counted), sorted(expected));
    }
}
