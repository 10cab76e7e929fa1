//! The real frames the generator is grounded in, read through the ingest readers of a config.
//!
//! Owns turning the published inputs into the generator's plain records: active GP practices
//! with their list sizes, PCN (ePCN at the extract date), ICB (ODS `epraccur`), published
//! deprivation score (Fingertips 93553, 2019) and age profile; English LSOAs 2011 with their
//! IoD2019 deprivation, resident age structure and centroid; the 42 ICBs with their boundary
//! polygons. The joins are polars lazy plans over the readers' canonical columns; the result is
//! collected once and crosses into `Vec`s here, because the simulation downstream is per-patient
//! plain Rust. Everything is sorted by code, so the records come out in the same order on every
//! run. The catchment model is `super::catchment`; reading and checking files is
//! `crate::ingest`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

mod icbs;

use super::SynthError;
use crate::config::Config;
use crate::ingest::{Footprints, InputKind, ReadOptions, read_footprints, read_table};
use crate::schema;

/// Fingertips indicator 93553, "Deprivation score (IMD)" per GP practice.
pub const PRACTICE_IMD_INDICATOR: &str = "93553";
/// The period of 93553 that uses IMD 2019, the index the LSOAs carry.
pub const PRACTICE_IMD_PERIOD: &str = "2019";
/// The footprint kind of the ICB boundaries in the config.
pub const ICB_FOOTPRINT_KIND: &str = "icb";
/// The ODS prescribing setting of a GP practice in `epraccur`.
const GP_PRACTICE_SETTING: i64 = 4;

/// One active GP practice.
#[derive(Debug, Clone, PartialEq)]
pub struct Practice {
    /// ODS practice code.
    pub code: String,
    /// Practice name (ODS).
    pub name: String,
    /// Registered patients (NHS Digital practice totals).
    pub list_size: u32,
    /// Index of the practice's ICB in [`Reference::icbs`].
    pub icb: usize,
    /// PCN at the extract date (ePCN), if the practice is in one.
    pub pcn_code: Option<String>,
    /// PCN name.
    pub pcn_name: Option<String>,
    /// Published deprivation score (Fingertips 93553, IMD 2019), if published.
    pub published_score: Option<f64>,
    /// Share of the list aged 16 and over (House of Commons Library profile), if known.
    pub share_16_plus: Option<f64>,
    /// Share of the list aged 65 and over, if known.
    pub share_65_plus: Option<f64>,
}

/// One English LSOA (2011) with its deprivation, residents and centroid.
#[derive(Debug, Clone, PartialEq)]
pub struct Lsoa {
    /// ONS LSOA 2011 code.
    pub code: String,
    /// IoD2019 IMD score (higher = more deprived).
    pub imd_score: f64,
    /// IoD2019 national decile (1 = most deprived 10%).
    pub imd_decile: u8,
    /// Residents, mid-2015 (IoD2019 denominators).
    pub population: f64,
    /// Residents aged 0–15.
    pub population_0_15: f64,
    /// Residents aged 60 and over.
    pub population_60_plus: f64,
    /// Centroid longitude (WGS84).
    pub longitude: f64,
    /// Centroid latitude (WGS84).
    pub latitude: f64,
    /// Region name (from the LSOA lookup; `None` when no lookup is configured).
    pub region: Option<String>,
}

/// One Integrated Care Board.
#[derive(Debug, Clone, PartialEq)]
pub struct Icb {
    /// ODS code (`QHM`).
    pub ods_code: String,
    /// ONS code of its 2022 boundary (`E54000050`).
    pub ons_code: String,
    /// Name as in the boundary file.
    pub name: String,
}

/// Everything the generator takes from the real frames.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Active GP practices with a list size and a known ICB, by code.
    pub practices: Vec<Practice>,
    /// English LSOAs 2011 with deprivation and a centroid, by code.
    pub lsoas: Vec<Lsoa>,
    /// ICBs with a boundary, by ODS code.
    pub icbs: Vec<Icb>,
    /// The ICB boundaries.
    pub footprints: Footprints,
    /// The extract date of the config.
    pub extract_date: NaiveDate,
    /// Practices dropped, and why (for the run summary and `truth.json`).
    pub dropped: Vec<String>,
}

/// Which inputs the generator reads, and whether each is required.
pub const INPUTS: &[(InputKind, bool)] = &[
    (InputKind::PracticeTotals, true),
    (InputKind::Epraccur, true),
    (InputKind::EpcnMembers, true),
    (InputKind::PracticeMap, true),
    (InputKind::PracticeOutcomes, true),
    (InputKind::Iod2019, true),
    (InputKind::LsoaCentroids, true),
    (InputKind::PracticeAges, false),
    (InputKind::LsoaLookup, false),
    (InputKind::IcbCodes, false),
];

/// Read the real frames named by the config and build the generator's records.
///
/// # Errors
/// [`SynthError::MissingInputs`] when the config lacks a required input or the ICB footprints;
/// [`SynthError::Input`] when a file cannot be read or has too many rejects;
/// [`SynthError::Data`] when the frames do not fit together (an ICB without a boundary).
pub fn load(config: &Config) -> Result<Reference, SynthError> {
    let mut missing: Vec<String> = INPUTS
        .iter()
        .filter(|(kind, required)| *required && !config.inputs.contains_key(kind))
        .map(|(kind, _)| format!("inputs.{kind}"))
        .collect();
    let icb_source = config
        .footprints
        .iter()
        .find(|f| f.kind == ICB_FOOTPRINT_KIND);
    if icb_source.is_none() {
        missing.push(format!("[[footprints]] kind = \"{ICB_FOOTPRINT_KIND}\""));
    }
    let Some(icb_source) = icb_source.filter(|_| missing.is_empty()) else {
        return Err(SynthError::MissingInputs {
            config: config.path.clone(),
            missing,
        });
    };
    let footprints = read_footprints(
        &icb_source.path,
        icb_source.code_property.as_deref(),
        icb_source.name_property.as_deref(),
    )?;
    let extract_date = config.run.extract_date;
    let frames = Frames::read(config)?;

    let icbs = icbs::icbs(&frames, &footprints)?;
    let (practices, dropped) = practices(&frames, &icbs, extract_date)?;
    let lsoas = lsoas(&frames)?;
    Ok(Reference {
        practices,
        lsoas,
        icbs,
        footprints,
        extract_date,
        dropped,
    })
}

/// The accepted rows of each input kind the generator reads.
struct Frames {
    by_kind: BTreeMap<InputKind, LazyFrame>,
    paths: BTreeMap<InputKind, Vec<PathBuf>>,
}

impl Frames {
    fn read(config: &Config) -> Result<Frames, SynthError> {
        // The inputs are independent: read them in parallel, then report the first failure
        // in the order of INPUTS, so the same error shows on every run.
        let read: Vec<Result<Option<(InputKind, LazyFrame)>, SynthError>> = INPUTS
            .par_iter()
            .map(|(kind, _)| read_kind(config, *kind))
            .collect();
        let read: Vec<Option<(InputKind, LazyFrame)>> =
            read.into_iter().collect::<Result<_, _>>()?;
        let mut by_kind = BTreeMap::new();
        let mut paths = BTreeMap::new();
        for (kind, frame) in read.into_iter().flatten() {
            by_kind.insert(kind, frame);
            if let Some(source) = config.inputs.get(&kind) {
                paths.insert(kind, source.paths.clone());
            }
        }
        Ok(Frames { by_kind, paths })
    }

    fn get(&self, kind: InputKind) -> Option<LazyFrame> {
        self.by_kind.get(&kind).cloned()
    }

    fn required(&self, kind: InputKind) -> Result<LazyFrame, SynthError> {
        self.get(kind)
            .ok_or_else(|| SynthError::Data(format!("input {kind} was not read")))
    }

    fn label(&self, kind: InputKind) -> String {
        let files: Vec<String> = self
            .paths
            .get(&kind)
            .map(|p| p.iter().map(|p| p.display().to_string()).collect())
            .unwrap_or_default();
        format!("{kind} ({})", files.join(", "))
    }
}

/// Read one input kind of the config (its files stacked), enforce its reject limit, and
/// collect it once: the joins use some inputs twice, and each use of a lazy plan would parse
/// and check the file again. `None` when the config does not name it.
fn read_kind(
    config: &Config,
    kind: InputKind,
) -> Result<Option<(InputKind, LazyFrame)>, SynthError> {
    let Some(source) = config.inputs.get(&kind) else {
        return Ok(None);
    };
    let options = ReadOptions {
        format: source.format,
        extract_date: Some(config.run.extract_date),
    };
    let mut frames = Vec::new();
    for path in &source.paths {
        let table = read_table(kind, path, &options)?;
        table.enforce_reject_limit(config.reject_limit(kind))?;
        frames.push(table.frame);
    }
    let frame = if frames.len() == 1 {
        frames.remove(0)
    } else {
        concat_lf_diagonal(frames, UnionArgs::default())
            .map_err(|e| SynthError::polars(format!("stacking the {kind} files"), e))?
    };
    let frame = frame
        .collect()
        .map_err(|e| SynthError::polars(format!("reading {kind}"), e))?
        .lazy();
    Ok(Some((kind, frame)))
}

/// Active GP practices with a list size, joined to their ICB, PCN, published score and age
/// profile; and the practices dropped, with the reason.
fn practices(
    frames: &Frames,
    icbs: &[Icb],
    extract_date: NaiveDate,
) -> Result<(Vec<Practice>, Vec<String>), SynthError> {
    let totals = frames.required(InputKind::PracticeTotals)?;
    let totals_schema = totals
        .clone()
        .collect_schema()
        .map_err(|e| SynthError::polars(frames.label(InputKind::PracticeTotals), e))?;
    // Publications split by sex and age carry an ALL/ALL row per practice: the total.
    let mut is_total = lit(true);
    for column in [schema::SEX, schema::AGE_GROUP] {
        if totals_schema.contains(column) {
            is_total = is_total.and(
                col(column)
                    .is_null()
                    .or(col(column).str().to_uppercase().eq(lit("ALL"))),
            );
        }
    }
    let totals = totals
        .filter(is_total)
        .group_by([col(schema::PRACTICE_CODE)])
        .agg([col(schema::NUMBER_OF_PATIENTS).sum().alias(LIST_SIZE)]);

    let active = frames
        .required(InputKind::Epraccur)?
        .filter(
            col(schema::STATUS)
                .eq(lit("A"))
                .and(col(schema::PRESCRIBING_SETTING).eq(lit(GP_PRACTICE_SETTING))),
        )
        .select([
            col(schema::PRACTICE_CODE),
            col(schema::PRACTICE_NAME),
            col(schema::ICB_CODE),
        ]);

    let current = col(schema::MEMBERSHIP_START).lt_eq(lit(extract_date)).and(
        col(schema::MEMBERSHIP_END)
            .is_null()
            .or(col(schema::MEMBERSHIP_END).gt(lit(extract_date))),
    );
    // A practice has one current PCN; should the file list two, the latest start wins.
    let members = frames
        .required(InputKind::EpcnMembers)?
        .filter(current)
        .sort(
            [
                schema::PRACTICE_CODE,
                schema::MEMBERSHIP_START,
                schema::PCN_CODE,
            ],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .group_by_stable([col(schema::PRACTICE_CODE)])
        .agg([col(schema::PCN_CODE).first(), col(schema::PCN_NAME).first()]);

    let scores = frames
        .required(InputKind::PracticeOutcomes)?
        .filter(
            col(schema::INDICATOR)
                .eq(lit(PRACTICE_IMD_INDICATOR))
                .and(col(schema::PERIOD).eq(lit(PRACTICE_IMD_PERIOD)))
                .and(col(schema::VALUE).is_not_null()),
        )
        .group_by([col(schema::AREA_CODE)])
        .agg([col(schema::VALUE).first().alias(PUBLISHED_SCORE)])
        .rename([schema::AREA_CODE], [schema::PRACTICE_CODE], true);

    let mut plan = totals
        .join(
            active,
            [col(schema::PRACTICE_CODE)],
            [col(schema::PRACTICE_CODE)],
            JoinArgs::new(JoinType::Left),
        )
        .left_join(
            members,
            col(schema::PRACTICE_CODE),
            col(schema::PRACTICE_CODE),
        )
        .left_join(
            scores,
            col(schema::PRACTICE_CODE),
            col(schema::PRACTICE_CODE),
        );
    plan = match frames.get(InputKind::PracticeAges) {
        Some(ages) => {
            let ages_schema = ages
                .clone()
                .collect_schema()
                .map_err(|e| SynthError::polars(frames.label(InputKind::PracticeAges), e))?;
            let share_16 = if ages_schema.contains(schema::PATIENTS_16_PLUS) {
                col(schema::PATIENTS_16_PLUS) / col(schema::TOTAL_PATIENTS)
            } else {
                lit(NULL).cast(DataType::Float64)
            };
            let ages = ages
                .filter(col(schema::TOTAL_PATIENTS).gt(lit(0.0)))
                .select([
                    col(schema::PRACTICE_CODE),
                    share_16.alias(SHARE_16_PLUS),
                    (col(schema::PATIENTS_65_PLUS) / col(schema::TOTAL_PATIENTS))
                        .alias(SHARE_65_PLUS),
                ]);
            plan.left_join(ages, col(schema::PRACTICE_CODE), col(schema::PRACTICE_CODE))
        }
        None => plan.with_columns([
            lit(NULL).cast(DataType::Float64).alias(SHARE_16_PLUS),
            lit(NULL).cast(DataType::Float64).alias(SHARE_65_PLUS),
        ]),
    };
    let table = plan
        .sort([schema::PRACTICE_CODE], SortMultipleOptions::default())
        .collect()
        .map_err(|e| SynthError::polars("joining practices to their ICB, PCN and scores", e))?;

    let codes = strings(&table, schema::PRACTICE_CODE)?;
    let names = strings(&table, schema::PRACTICE_NAME)?;
    let list_sizes = floats(&table, LIST_SIZE)?;
    let icb_codes = strings(&table, schema::ICB_CODE)?;
    let pcn_codes = strings(&table, schema::PCN_CODE)?;
    let pcn_names = strings(&table, schema::PCN_NAME)?;
    let published = floats(&table, PUBLISHED_SCORE)?;
    let share_16 = floats(&table, SHARE_16_PLUS)?;
    let share_65 = floats(&table, SHARE_65_PLUS)?;
    let icb_index: BTreeMap<&str, usize> = icbs
        .iter()
        .enumerate()
        .map(|(i, icb)| (icb.ods_code.as_str(), i))
        .collect();

    let mut practices = Vec::new();
    let mut inactive = 0usize;
    let mut no_icb = Vec::new();
    for i in 0..table.height() {
        let (Some(code), Some(list_size)) = (codes[i].clone(), list_sizes[i]) else {
            continue;
        };
        let Some(icb_code) = icb_codes[i].as_deref() else {
            // Not an active GP practice in epraccur at the extract date: closed or dormant
            // since the list sizes were published.
            inactive += 1;
            continue;
        };
        let Some(&icb) = icb_index.get(icb_code) else {
            no_icb.push(format!("{code} ({icb_code})"));
            continue;
        };
        let share = |v: Option<f64>| v.filter(|s| (0.0..=1.0).contains(s));
        if list_size < 1.0 {
            continue;
        }
        practices.push(Practice {
            name: names[i].clone().unwrap_or_else(|| code.clone()),
            code,
            // A list size is a count well below u32::MAX (the reader caps it at 10 million).
            list_size: list_size.round().clamp(0.0, f64::from(u32::MAX)) as u32,
            icb,
            pcn_code: pcn_codes[i].clone(),
            pcn_name: pcn_names[i].clone(),
            published_score: published[i].filter(|s| s.is_finite()),
            share_16_plus: share(share_16[i]),
            share_65_plus: share(share_65[i]),
        });
    }
    let mut dropped = Vec::new();
    if inactive > 0 {
        dropped.push(format!(
            "{inactive} practices with a list size are not active GP practices in epraccur at {extract_date} (closed or dormant)"
        ));
    }
    if !no_icb.is_empty() {
        dropped.push(format!(
            "{} practices have an ICB with no boundary: {}",
            no_icb.len(),
            no_icb.join(", ")
        ));
    }
    if practices.is_empty() {
        return Err(SynthError::Data(format!(
            "no practice of {} is an active GP practice with a known ICB in {}",
            frames.label(InputKind::PracticeTotals),
            frames.label(InputKind::Epraccur)
        )));
    }
    Ok((practices, dropped))
}

/// English LSOAs with IoD2019 deprivation joined to their centroids (and region).
fn lsoas(frames: &Frames) -> Result<Vec<Lsoa>, SynthError> {
    let iod = frames.required(InputKind::Iod2019)?;
    let iod_schema = iod
        .clone()
        .collect_schema()
        .map_err(|e| SynthError::polars(frames.label(InputKind::Iod2019), e))?;
    let needed = [
        schema::IMD_SCORE,
        schema::POPULATION,
        schema::POPULATION_0_15,
        schema::POPULATION_60_PLUS,
    ];
    let absent: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|c| !iod_schema.contains(c))
        .collect();
    if !absent.is_empty() {
        return Err(SynthError::Data(format!(
            "{} lacks {}: the generator needs IoD2019 File 7 (scores and population denominators)",
            frames.label(InputKind::Iod2019),
            absent.join(", ")
        )));
    }
    let centroids = frames.required(InputKind::LsoaCentroids)?.select([
        col(schema::LSOA_CODE),
        col(schema::LONGITUDE),
        col(schema::LATITUDE),
    ]);
    let mut plan = iod
        .select([
            col(schema::LSOA_CODE),
            col(schema::IMD_SCORE),
            col(schema::IMD_DECILE),
            col(schema::POPULATION),
            col(schema::POPULATION_0_15),
            col(schema::POPULATION_60_PLUS),
        ])
        .inner_join(centroids, col(schema::LSOA_CODE), col(schema::LSOA_CODE));
    plan = match frames.get(InputKind::LsoaLookup) {
        Some(lookup) => plan.left_join(
            lookup.select([col(schema::LSOA_CODE), col(schema::REGION_NAME)]),
            col(schema::LSOA_CODE),
            col(schema::LSOA_CODE),
        ),
        None => plan.with_column(lit(NULL).cast(DataType::String).alias(schema::REGION_NAME)),
    };
    let table = plan
        .filter(
            col(schema::IMD_SCORE)
                .is_not_null()
                .and(col(schema::POPULATION).gt(lit(0))),
        )
        .sort([schema::LSOA_CODE], SortMultipleOptions::default())
        .collect()
        .map_err(|e| SynthError::polars("joining LSOA deprivation to centroids", e))?;
    let codes = strings(&table, schema::LSOA_CODE)?;
    let scores = floats(&table, schema::IMD_SCORE)?;
    let deciles = floats(&table, schema::IMD_DECILE)?;
    let population = floats(&table, schema::POPULATION)?;
    let young = floats(&table, schema::POPULATION_0_15)?;
    let old = floats(&table, schema::POPULATION_60_PLUS)?;
    let longitude = floats(&table, schema::LONGITUDE)?;
    let latitude = floats(&table, schema::LATITUDE)?;
    let regions = strings(&table, schema::REGION_NAME)?;
    let mut lsoas = Vec::with_capacity(table.height());
    for i in 0..table.height() {
        let (Some(code), Some(score), Some(decile), Some(population), Some(lon), Some(lat)) = (
            codes[i].clone(),
            scores[i],
            deciles[i],
            population[i],
            longitude[i],
            latitude[i],
        ) else {
            continue;
        };
        lsoas.push(Lsoa {
            code,
            imd_score: score,
            // The reader checked 1..=10.
            imd_decile: decile.clamp(1.0, 10.0) as u8,
            population,
            population_0_15: young[i].unwrap_or(0.0),
            population_60_plus: old[i].unwrap_or(0.0),
            longitude: lon,
            latitude: lat,
            region: regions[i].clone(),
        });
    }
    if lsoas.is_empty() {
        return Err(SynthError::Data(format!(
            "no LSOA of {} has a centroid in {}",
            frames.label(InputKind::Iod2019),
            frames.label(InputKind::LsoaCentroids)
        )));
    }
    Ok(lsoas)
}

// Working column names of the joins above (not part of any published schema).
const LIST_SIZE: &str = "list_size";
const PUBLISHED_SCORE: &str = "published_score";
const SHARE_16_PLUS: &str = "share_16_plus";
const SHARE_65_PLUS: &str = "share_65_plus";
const PRACTICES: &str = "practices";

/// A text column as `Option<String>`s.
fn strings(frame: &DataFrame, name: &str) -> Result<Vec<Option<String>>, SynthError> {
    let column = frame
        .column(name)
        .and_then(|c| c.cast(&DataType::String))
        .map_err(|e| SynthError::polars(format!("reading column {name}"), e))?;
    let values = column
        .str()
        .map_err(|e| SynthError::polars(format!("reading column {name}"), e))?;
    Ok(values.iter().map(|v| v.map(str::to_string)).collect())
}

/// A numeric column as `Option<f64>`s.
fn floats(frame: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, SynthError> {
    let column = frame
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(|e| SynthError::polars(format!("reading column {name}"), e))?;
    let values = column
        .f64()
        .map_err(|e| SynthError::polars(format!("reading column {name}"), e))?;
    Ok(values.iter().collect())
}

/// A small made-up reference for unit tests: two square ICBs side by side, each a 10 × 10 grid
/// of LSOAs whose IMD score rises from west (5) to east (50), and four practices per ICB with
/// published scores 10, 20, 35 and none.
#[cfg(test)]
pub(crate) fn toy_reference() -> Reference {
    use crate::ingest::{Footprint, IngestReport};
    use geo::polygon;

    let square = |x0: f64| {
        geo::MultiPolygon(vec![polygon![
            (x: x0, y: 52.0), (x: x0 + 0.5, y: 52.0), (x: x0 + 0.5, y: 52.5), (x: x0, y: 52.5),
            (x: x0, y: 52.0),
        ]])
    };
    let footprints = Footprints {
        path: PathBuf::from("toy.geojson"),
        code_property: "ICB22CD".into(),
        name_property: None,
        features: [("E54000001", -1.0), ("E54000002", -0.5)]
            .iter()
            .map(|(code, x0)| Footprint {
                code: (*code).into(),
                name: Some(format!("NHS Toy {code} Integrated Care Board")),
                properties: serde_json::Map::new(),
                geometry: square(*x0),
            })
            .collect(),
        report: IngestReport::from_rejects("icb", std::path::Path::new("toy"), 2, &[], vec![]),
        rejects: Vec::new(),
    };
    let mut lsoas = Vec::new();
    for icb in 0..2 {
        for i in 0..10 {
            for j in 0..10 {
                let n = lsoas.len();
                let score = 5.0 + 5.0 * f64::from(i);
                lsoas.push(Lsoa {
                    code: format!("E01{n:06}"),
                    imd_score: score,
                    imd_decile: (10 - i) as u8,
                    population: 1500.0,
                    population_0_15: 300.0 + 10.0 * f64::from(i),
                    population_60_plus: 350.0 - 10.0 * f64::from(i),
                    longitude: -1.0 + 0.5 * f64::from(icb) + 0.025 + 0.05 * f64::from(i),
                    latitude: 52.025 + 0.05 * f64::from(j),
                    region: Some("North West".into()),
                });
            }
        }
    }
    let icbs = vec![
        Icb {
            ods_code: "QAA".into(),
            ons_code: "E54000001".into(),
            name: "NHS Toy 1".into(),
        },
        Icb {
            ods_code: "QBB".into(),
            ons_code: "E54000002".into(),
            name: "NHS Toy 2".into(),
        },
    ];
    let mut practices = Vec::new();
    for icb in 0..2 {
        for (k, score) in [Some(10.0), Some(20.0), Some(35.0), None]
            .into_iter()
            .enumerate()
        {
            practices.push(Practice {
                code: format!("A{icb}{k:04}"),
                name: format!("Toy practice {icb}{k}"),
                list_size: 6000 + 2000 * k as u32,
                icb,
                pcn_code: Some(format!("U0000{icb}")),
                pcn_name: None,
                published_score: score,
                share_16_plus: Some(0.8),
                share_65_plus: Some(0.18),
            });
        }
    }
    Reference {
        practices,
        lsoas,
        icbs,
        footprints,
        extract_date: NaiveDate::from_ymd_opt(2023, 2, 1).unwrap_or_default(),
        dropped: Vec::new(),
    }
}
