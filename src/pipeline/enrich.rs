//! Stage 2, enrich: one population table, joined to deprivation, with bands and groups.
//!
//! Owns: turning either registered-list shape (patients, or NHS Digital practice × LSOA cells)
//! into one `population` table with a `weight` (1 per patient, `number_of_patients` per cell),
//! so every later stage has one code path; the deprivation join by LSOA (England's chosen
//! index and Wales's WIMD, each ranked within its own nation); national decile, quintile and
//! `core20`; age bands and ethnic groups; the report of LSOA codes with no deprivation match.
//! Network footprints are the next stage (`attribute`).

use polars::prelude::*;

use crate::error::UserError;
use crate::ingest::InputKind;
use crate::pipeline::ingest::Ingested;
use crate::pipeline::key_codes;
use crate::schema;

/// The shape of the registered list a run was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PopulationShape {
    /// One row per patient (weight 1).
    Patients,
    /// One row per practice × LSOA (× sex) cell (weight = number of patients).
    Cells,
}

/// The columns every population row has, whatever the shape (absent values are null).
pub const POPULATION_COLUMNS: &[&str] = &[
    schema::PATIENT_ID,
    schema::PRACTICE_CODE,
    schema::LSOA_CODE,
    schema::SEX,
    schema::AGE,
    schema::ETHNICITY,
    schema::WEIGHT,
];

/// The registered population as one table with a `weight` column.
///
/// Patient-level lists win when both shapes are configured. Patient flags, wide condition
/// columns and local extra columns are kept as they are.
///
/// # Errors
/// [`UserError`] when the config names no registered list.
pub fn population(ingested: &Ingested) -> Result<(LazyFrame, PopulationShape), UserError> {
    if let Some(patients) = ingested.frame(InputKind::Patients) {
        return Ok((patient_population(patients), PopulationShape::Patients));
    }
    if let Some(cells) = ingested.frame(InputKind::PracticeLsoa) {
        let mut frame = cells.with_column(col(schema::NUMBER_OF_PATIENTS).alias(schema::WEIGHT));
        frame = with_missing_columns(
            frame,
            &[schema::PATIENT_ID, schema::ETHNICITY, schema::SEX],
            DataType::String,
        );
        frame = with_missing_columns(frame, &[schema::AGE], DataType::Int64);
        let frame = frame.select(
            POPULATION_COLUMNS
                .iter()
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        );
        return Ok((frame, PopulationShape::Cells));
    }
    Err(UserError(
        "the config names no registered list: add [inputs.patients] (patient level) or [inputs.practice_lsoa] (NHS Digital practice × LSOA file)".into(),
    ))
}

/// A patient-level list's accepted rows as population rows: each patient weighs 1.
pub fn patient_population(patients: LazyFrame) -> LazyFrame {
    let frame = patients.with_column(lit(1i64).alias(schema::WEIGHT));
    with_missing_columns(frame, &[schema::ETHNICITY], DataType::String)
}

/// Add columns the frame lacks, as nulls of `dtype` (the frame's schema is checked lazily).
fn with_missing_columns(mut frame: LazyFrame, columns: &[&str], dtype: DataType) -> LazyFrame {
    let present: Vec<String> = frame
        .collect_schema()
        .map(|s| s.iter_names().map(|n| n.to_string()).collect())
        .unwrap_or_default();
    let missing: Vec<Expr> = columns
        .iter()
        .filter(|c| !present.iter().any(|p| p == *c))
        .map(|c| lit(NULL).cast(dtype.clone()).alias(*c))
        .collect();
    if missing.is_empty() {
        frame
    } else {
        frame.with_columns(missing)
    }
}

/// The deprivation lookup: England's chosen index stacked with WIMD where given, one row per
/// LSOA, with quintile and Core20 added. Ranks, deciles and quintiles stay within each nation.
///
/// # Errors
/// [`UserError`] when the chosen English index is not among the inputs.
pub fn deprivation_lookup(ingested: &Ingested, index: InputKind) -> Result<LazyFrame, UserError> {
    let columns = [
        schema::LSOA_CODE,
        schema::IMD_SCORE,
        schema::IMD_RANK,
        schema::IMD_DECILE,
        schema::NATION,
        schema::DEPRIVATION_INDEX,
        schema::LSOA_VINTAGE,
    ];
    let select = |frame: LazyFrame| {
        with_missing_columns(frame, &[schema::IMD_SCORE], DataType::Float64)
            .select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>())
    };
    let england = ingested.frame(index).ok_or_else(|| {
        UserError(format!(
            "run.deprivation is {index} but [inputs.{index}] is not in the config"
        ))
    })?;
    let mut frames = vec![select(england)];
    if let Some(wales) = ingested.frame(InputKind::Wimd2019) {
        frames.push(select(wales));
    }
    let stacked = concat(frames, UnionArgs::default())
        .map_err(|e| UserError(format!("cannot stack the deprivation indices: {e}")))?;
    Ok(stacked.with_columns([
        // Quintile from the nation's own decile: deciles 1–2 are quintile 1, and so on.
        ((col(schema::IMD_DECILE) + lit(1i64)) / lit(2i64))
            .cast(DataType::Int64)
            .alias(schema::IMD_QUINTILE),
        // Core20: the most deprived 20% of England's LSOAs (NHS England's Core20PLUS5).
        // Welsh LSOAs are not part of Core20, which is an English definition.
        col(schema::NATION)
            .eq(lit("E"))
            .and(col(schema::IMD_DECILE).lt_eq(lit(2i64)))
            .alias(schema::CORE20),
    ]))
}

/// The deprivation lookup's columns that enrich adds to the population, by LSOA.
const DEPRIVATION_COLUMNS: [&str; 7] = [
    schema::LSOA_CODE,
    schema::IMD_SCORE,
    schema::IMD_RANK,
    schema::IMD_DECILE,
    schema::IMD_QUINTILE,
    schema::CORE20,
    schema::NATION,
];

/// Join deprivation to the population and add age bands and ethnic groups.
pub fn enrich(population: LazyFrame, deprivation: LazyFrame) -> LazyFrame {
    let args = JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    };
    population
        .join(
            deprivation_columns(deprivation),
            [col(schema::LSOA_CODE)],
            [col(schema::LSOA_CODE)],
            args,
        )
        .with_columns(derived_columns())
}

/// [`enrich`] for a part of the registered list held in memory: the same columns, with
/// `deprivation` (from [`deprivation_columns`], collected) looked up by LSOA instead of
/// joined, so the patients' columns are not copied.
///
/// # Errors
/// If a key column is missing or not text.
pub fn enrich_part(patients: DataFrame, deprivation: &DataFrame) -> PolarsResult<DataFrame> {
    let found = crate::pipeline::lookup::left_lookup(patients, schema::LSOA_CODE, deprivation)?;
    found.lazy().with_columns(derived_columns()).collect()
}

/// The columns of a deprivation lookup (from [`deprivation_lookup`]) that [`enrich`] adds.
pub fn deprivation_columns(deprivation: LazyFrame) -> LazyFrame {
    deprivation.select(DEPRIVATION_COLUMNS.map(col))
}

/// Age bands and ethnic groups, from `age` and `ethnicity`.
fn derived_columns() -> [Expr; 4] {
    [
        age_band(col(schema::AGE)).alias(schema::AGE_BAND),
        broad_age_band(col(schema::AGE)).alias(schema::BROAD_AGE_BAND),
        life_stage(col(schema::AGE)).alias(schema::LIFE_STAGE),
        ethnic_group(col(schema::ETHNICITY)).alias(schema::ETHNIC_GROUP),
    ]
}

/// The 19 age bands of the European Standard Population 2013 (`0-4` … `85-89`, `90+`).
pub const ESP2013_BANDS: [&str; 19] = [
    "0-4", "5-9", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54",
    "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+",
];

/// Age → ESP2013 band label (null when age is unknown, as in aggregate cells).
///
/// The label is picked by the band's index from the 19 labels, in one pass; a chain of 19
/// `when`s built a full text column per band.
pub fn age_band(age: Expr) -> Expr {
    let index = (age / lit(5i64)).clip(lit(0i64), lit(18i64));
    lit(Series::new("age_band".into(), ESP2013_BANDS)).gather(index, false)
}

/// Broad age bands used in population health management: `0-17`, `18-44`, `45-64`, `65-74`,
/// `75-84`, `85+`.
pub fn broad_age_band(age: Expr) -> Expr {
    crate::lazy::first_label(
        [
            (age.clone().lt(lit(18i64)), "0-17"),
            (age.clone().lt(lit(45i64)), "18-44"),
            (age.clone().lt(lit(65i64)), "45-64"),
            (age.clone().lt(lit(75i64)), "65-74"),
            (age.clone().lt(lit(85i64)), "75-84"),
            (age.is_not_null(), "85+"),
        ],
        None,
    )
}

/// Life-course stage (NHS England's "start well, live well, age well"): `0-17`, `18-64`, `65+`.
pub fn life_stage(age: Expr) -> Expr {
    crate::lazy::first_label(
        [
            (age.clone().lt(lit(18i64)), "start well (0-17)"),
            (age.clone().lt(lit(65i64)), "live well (18-64)"),
            (age.is_not_null(), "age well (65+)"),
        ],
        None,
    )
}

/// The five high-level ethnic groups, by the NHS ethnic category codes in each.
const ETHNIC_GROUPS: [(&[&str], &str); 5] = [
    (&["A", "B", "C"], "White"),
    (&["D", "E", "F", "G"], "Mixed"),
    (&["H", "J", "K", "L"], "Asian or Asian British"),
    (&["M", "N", "P"], "Black or Black British"),
    (&["R", "S"], "Other ethnic group"),
];

/// What [`ethnic_group`] calls a missing code, or one of no group (`Z`, `99`).
const NOT_STATED: &str = "Not stated";

/// NHS ethnic category code → the five high-level groups plus "Not stated".
///
/// Each distinct code of a chunk is looked up once (`key_codes::text_codes`) and the label
/// gathered by its group's index: five `is_in`s over the text took ~0.15 s for 3.3M patients,
/// on one core, in the middle of each part's enrichment.
pub fn ethnic_group(code: Expr) -> Expr {
    code.map_with_fmt_str(
        |column: Column| {
            let text = column.cast(&DataType::String)?;
            let groups = key_codes::text_codes(&text, |code| {
                ETHNIC_GROUPS
                    .iter()
                    .position(|(codes, _)| codes.contains(&code))
                    .map(|group| group as u32)
            })?
            .fill_null_with_values(ETHNIC_GROUPS.len() as u32)?;
            let labels = Series::new(
                column.name().clone(),
                ETHNIC_GROUPS
                    .map(|(_, label)| label)
                    .into_iter()
                    .chain([NOT_STATED])
                    .collect::<Vec<_>>(),
            );
            Ok(labels.take(&groups)?.into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::String)),
        "ethnic_group",
    )
}

/// What the deprivation join could not match.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DeprivationMatch {
    /// Registered population (weighted) in the run.
    pub population: i64,
    /// Of which with no LSOA code at all.
    pub no_lsoa_code: i64,
    /// Of which with an LSOA code the deprivation lookup does not have.
    pub unmatched: i64,
    /// Distinct unmatched LSOA codes.
    pub unmatched_codes: i64,
    /// Of the unmatched codes, how many belong to the other English LSOA vintage (e.g. 2011
    /// codes in a run joined to IoD2025), when the other index is in the config.
    pub other_vintage_codes: Option<i64>,
}

impl DeprivationMatch {
    /// A warning for people, or `None` when everything matched.
    pub fn warning(&self, index: InputKind) -> Option<String> {
        if self.unmatched == 0 && self.no_lsoa_code == 0 {
            return None;
        }
        let mut message = format!(
            "{} of {} registered people have no deprivation match ({} with no LSOA code; {} with {} LSOA codes not in {index})",
            self.unmatched + self.no_lsoa_code,
            self.population,
            self.no_lsoa_code,
            self.unmatched,
            self.unmatched_codes,
        );
        if let Some(other) = self.other_vintage_codes.filter(|n| *n > 0) {
            let (theirs, fix) = match index {
                InputKind::Iod2025 => (
                    "2011",
                    "set run.deprivation = \"iod2019\", or map the codes to LSOA 2021",
                ),
                _ => (
                    "2021",
                    "set run.deprivation = \"iod2025\", or map the codes to LSOA 2011",
                ),
            };
            message.push_str(&format!(
                "; {other} of those codes are LSOA {theirs} codes: the extract looks {theirs}-coded ({fix})"
            ));
        }
        Some(message)
    }
}

/// Count what the deprivation join missed, by vintage when the other English index is known.
///
/// # Errors
/// If the plan fails to run.
pub fn deprivation_match(
    enriched: &LazyFrame,
    ingested: &Ingested,
    index: InputKind,
) -> PolarsResult<DeprivationMatch> {
    let totals = crate::lazy::collect_streaming(
        enriched.clone().select([
            col(schema::WEIGHT).sum().alias("population"),
            col(schema::WEIGHT)
                .filter(col(schema::LSOA_CODE).is_null())
                .sum()
                .alias("no_lsoa_code"),
            col(schema::WEIGHT)
                .filter(
                    col(schema::LSOA_CODE)
                        .is_not_null()
                        .and(col(schema::IMD_DECILE).is_null()),
                )
                .sum()
                .alias("unmatched"),
        ]),
    )?;
    let get = |name: &str| -> PolarsResult<i64> {
        Ok(totals
            .column(name)?
            .cast(&DataType::Int64)?
            .i64()?
            .get(0)
            .unwrap_or(0))
    };
    let unmatched_codes = crate::lazy::collect_streaming(
        enriched
            .clone()
            .filter(
                col(schema::LSOA_CODE)
                    .is_not_null()
                    .and(col(schema::IMD_DECILE).is_null()),
            )
            .select([col(schema::LSOA_CODE)])
            .unique(None, UniqueKeepStrategy::Any),
    )?;
    let other = match index {
        InputKind::Iod2025 => ingested.frame(InputKind::Iod2019),
        _ => ingested.frame(InputKind::Iod2025),
    };
    let n_codes = unmatched_codes.height() as i64;
    let other_vintage_codes = match other {
        Some(other) if n_codes > 0 => {
            let hits = unmatched_codes
                .lazy()
                .join(
                    other.select([col(schema::LSOA_CODE)]),
                    [col(schema::LSOA_CODE)],
                    [col(schema::LSOA_CODE)],
                    JoinArgs::new(JoinType::Inner),
                )
                .select([len()])
                .collect()?;
            Some(
                hits.column("len")?
                    .cast(&DataType::Int64)?
                    .i64()?
                    .get(0)
                    .unwrap_or(0),
            )
        }
        _ => None,
    };
    Ok(DeprivationMatch {
        population: get("population")?,
        no_lsoa_code: get("no_lsoa_code")?,
        unmatched: get("unmatched")?,
        unmatched_codes: n_codes,
        other_vintage_codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bands(ages: &[Option<i64>], f: fn(Expr) -> Expr) -> Vec<Option<String>> {
        let df = df!["age" => ages].expect("frame");
        let out = df
            .lazy()
            .select([f(col("age")).alias("band")])
            .collect()
            .expect("collect");
        out.column("band")
            .expect("band")
            .str()
            .expect("str")
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[test]
    fn esp2013_bands_cover_0_to_120() {
        let got = bands(
            &[
                Some(0),
                Some(4),
                Some(5),
                Some(89),
                Some(90),
                Some(120),
                None,
            ],
            age_band,
        );
        let want = [
            Some("0-4"),
            Some("0-4"),
            Some("5-9"),
            Some("85-89"),
            Some("90+"),
            Some("90+"),
            None,
        ];
        assert_eq!(got, want.map(|w| w.map(str::to_string)));
    }

    /// A part looked up in memory gets what the streamed join gives, row for row.
    #[test]
    fn enrich_part_is_enrich() {
        let n = 50_000;
        let lsoas = ["E01000001", "E01000002", "W01000003", "E09999999"];
        let patients = df![
            schema::PATIENT_ID => (0..n).map(|i| format!("P{i}")).collect::<Vec<_>>(),
            schema::LSOA_CODE => (0..n).map(|i| (i % 5 != 4).then(|| lsoas[i % 4])).collect::<Vec<_>>(),
            schema::AGE => (0..n).map(|i| (i % 7 != 0).then_some((i % 111) as i64)).collect::<Vec<_>>(),
            schema::ETHNICITY => (0..n).map(|i| ["A", "D", "Z"][i % 3]).collect::<Vec<_>>(),
        ]
        .expect("patients");
        let deprivation = df![
            schema::LSOA_CODE => ["E01000001", "E01000002", "W01000003"],
            schema::IMD_SCORE => [40.5, 3.2, 20.0],
            schema::IMD_RANK => [10i64, 30000, 900],
            schema::IMD_DECILE => [1i64, 10, 3],
            schema::IMD_QUINTILE => [1i64, 5, 2],
            schema::CORE20 => [true, false, false],
            schema::NATION => ["E", "E", "W"],
            "lsoa_name" => ["a", "b", "c"],
        ]
        .expect("deprivation");
        let streamed = crate::lazy::collect_streaming(enrich(
            patients.clone().lazy(),
            deprivation.clone().lazy(),
        ))
        .expect("streamed");
        let lookup = deprivation_columns(deprivation.lazy())
            .collect()
            .expect("lookup");
        let part = enrich_part(patients, &lookup).expect("part");
        assert!(part.equals_missing(&streamed), "{part}\n{streamed}");
        assert_eq!(
            part.column(schema::AGE_BAND).expect("band").null_count(),
            n / 7 + 1
        );
    }

    #[test]
    fn life_stage_and_broad_bands() {
        assert_eq!(
            bands(&[Some(17), Some(18), Some(64), Some(65)], life_stage),
            [
                "start well (0-17)",
                "live well (18-64)",
                "live well (18-64)",
                "age well (65+)"
            ]
            .map(|s| Some(s.to_string()))
        );
        assert_eq!(
            bands(&[Some(44), Some(45), Some(84), Some(85)], broad_age_band),
            ["18-44", "45-64", "75-84", "85+"].map(|s| Some(s.to_string()))
        );
    }

    #[test]
    fn ethnic_groups_follow_the_nhs_categories() {
        let df =
            df!["e" => [Some("A"), Some("D"), Some("L"), Some("N"), Some("S"), Some("Z"), None]]
                .expect("frame");
        let out = df
            .lazy()
            .select([ethnic_group(col("e")).alias("g")])
            .collect()
            .expect("collect");
        let got: Vec<Option<&str>> = out
            .column("g")
            .expect("g")
            .str()
            .expect("str")
            .iter()
            .collect();
        assert_eq!(
            got,
            [
                Some("White"),
                Some("Mixed"),
                Some("Asian or Asian British"),
                Some("Black or Black British"),
                Some("Other ethnic group"),
                Some("Not stated"),
                Some("Not stated")
            ]
        );
    }

    #[test]
    fn ethnic_groups_are_the_nhs_categories_in_every_chunk_and_for_any_text() {
        // What `ethnic_group` stands for: the first group whose codes hold the text exactly.
        let expected = |code: Option<&str>| {
            ETHNIC_GROUPS
                .iter()
                .find(|(codes, _)| code.is_some_and(|code| codes.contains(&code)))
                .map_or(NOT_STATED, |(_, label)| label)
        };
        let texts = [
            "A",
            "a",
            " A",
            "B",
            "Z",
            "99",
            "",
            "S",
            "K",
            "M",
            "G",
            "A longer text than a view",
        ];
        let chunk = |shift: usize| {
            let codes: Vec<Option<&str>> = (0..300)
                .map(|i| (i % 13 != 5).then(|| texts[(i / 3 + shift) % texts.len()]))
                .collect();
            df!["e" => codes].expect("chunk")
        };
        let mut frame = chunk(0);
        frame.vstack_mut(&chunk(5)).expect("stacked");
        assert_eq!(frame.first_col_n_chunks(), 2);
        let out = frame
            .clone()
            .lazy()
            .select([ethnic_group(col("e")).alias("g")])
            .collect()
            .expect("collect");
        let got: Vec<Option<&str>> = out["g"].str().expect("str").iter().collect();
        let want: Vec<Option<&str>> = frame["e"]
            .str()
            .expect("str")
            .iter()
            .map(|code| Some(expected(code)))
            .collect();
        assert_eq!(got, want);
        // A column of nulls only (no code for anyone) is "Not stated" throughout.
        let nulls = df!["e" => [None::<&str>, None]]
            .expect("frame")
            .lazy()
            .select([ethnic_group(col("e").cast(DataType::Null)).alias("g")])
            .collect()
            .expect("collect");
        assert_eq!(
            nulls["g"].str().expect("str").iter().collect::<Vec<_>>(),
            [Some(NOT_STATED), Some(NOT_STATED)]
        );
    }
}
