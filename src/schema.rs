//! Every column name the pipeline uses, in one place, in the field's words.
//!
//! Stages refer to these constants rather than to string literals, so a newcomer can follow a
//! column from the input contract (`crate::ingest`) to the published tables. The input contracts
//! use them as canonical names; official publication headers are aliases of them.

// --- Areas and organisations -------------------------------------------------------------
/// Lower-layer Super Output Area code (2011 or 2021 vintage), `E01…`/`W01…`.
pub const LSOA_CODE: &str = "lsoa_code";
/// LSOA name.
pub const LSOA_NAME: &str = "lsoa_name";
/// Local authority district code.
pub const LAD_CODE: &str = "lad_code";
/// Local authority district name.
pub const LAD_NAME: &str = "lad_name";
/// MSOA code.
pub const MSOA_CODE: &str = "msoa_code";
/// Region name.
pub const REGION_NAME: &str = "region_name";
/// ODS code of a GP practice.
pub const PRACTICE_CODE: &str = "practice_code";
/// Practice name.
pub const PRACTICE_NAME: &str = "practice_name";
/// Practice postcode.
pub const POSTCODE: &str = "postcode";
/// Primary Care Network code (`U…`).
pub const PCN_CODE: &str = "pcn_code";
/// PCN name.
pub const PCN_NAME: &str = "pcn_name";
/// Sub-ICB location (former CCG) ODS code.
pub const SUB_ICB_CODE: &str = "sub_icb_code";
/// Sub-ICB location name.
pub const SUB_ICB_NAME: &str = "sub_icb_name";
/// Sub-ICB location ONS code (`E38…`).
pub const SUB_ICB_ONS_CODE: &str = "sub_icb_ons_code";
/// Integrated Care Board ODS code (`Q…`).
pub const ICB_CODE: &str = "icb_code";
/// ICB ONS code (`E54…`).
pub const ICB_ONS_CODE: &str = "icb_ons_code";
/// ICB name.
pub const ICB_NAME: &str = "icb_name";
/// NHS England region ODS code (`Y…`).
pub const REGION_CODE: &str = "region_code";
/// NHS England region ONS code (`E40…`).
pub const REGION_ONS_CODE: &str = "region_ons_code";
/// The sub-ICB location the PCN belongs to (ePCN).
pub const PCN_SUB_ICB_CODE: &str = "pcn_sub_icb_code";
/// Start of a practice's membership of a PCN.
pub const MEMBERSHIP_START: &str = "membership_start";
/// End of a practice's membership of a PCN (empty while current).
pub const MEMBERSHIP_END: &str = "membership_end";
/// Date an organisation opened.
pub const OPEN_DATE: &str = "open_date";
/// Date an organisation closed.
pub const CLOSE_DATE: &str = "close_date";
/// ODS organisation status (`A` active, `C` closed, `D` dormant, `P` proposed).
pub const STATUS: &str = "status";
/// ODS prescribing setting (`4` = GP practice).
pub const PRESCRIBING_SETTING: &str = "prescribing_setting";

// --- Deprivation ---------------------------------------------------------------------------
/// Index of Multiple Deprivation score (higher = more deprived).
pub const IMD_SCORE: &str = "imd_score";
/// IMD rank within the nation (1 = most deprived).
pub const IMD_RANK: &str = "imd_rank";
/// IMD decile within the nation (1 = most deprived 10%).
pub const IMD_DECILE: &str = "imd_decile";
/// IMD quintile within the nation (1 = most deprived 20%).
pub const IMD_QUINTILE: &str = "imd_quintile";
/// In NHS England's Core20: the most deprived 20% of England's LSOAs (IMD quintile 1).
pub const CORE20: &str = "core20";
/// Income domain score (rate).
pub const INCOME_SCORE: &str = "income_score";
/// Employment domain score (rate).
pub const EMPLOYMENT_SCORE: &str = "employment_score";
/// `E` (England) or `W` (Wales): ranks are only comparable within a nation.
pub const NATION: &str = "nation";
/// Which index a deprivation row comes from: `IoD2019`, `IoD2025`, `WIMD2019`.
pub const DEPRIVATION_INDEX: &str = "deprivation_index";
/// Census vintage of an LSOA code: 2011 or 2021.
pub const LSOA_VINTAGE: &str = "lsoa_vintage";
/// Resident population (mid-2015 for IoD2019).
pub const POPULATION: &str = "population";
/// Population aged 0–15.
pub const POPULATION_0_15: &str = "population_0_15";
/// Population aged 16–59.
pub const POPULATION_16_59: &str = "population_16_59";
/// Population aged 60 and over.
pub const POPULATION_60_PLUS: &str = "population_60_plus";
/// Working-age population (18–59/64).
pub const POPULATION_WORKING_AGE: &str = "population_working_age";

// --- Registered lists ----------------------------------------------------------------------
/// Pseudonymised patient identifier, unique in an extract.
pub const PATIENT_ID: &str = "patient_id";
/// Sex: `M`, `F`, `I` (indeterminate), `U` (unknown); `ALL` in aggregate publications.
pub const SEX: &str = "sex";
/// Age in whole years at the extract date.
pub const AGE: &str = "age";
/// Date of birth.
pub const DATE_OF_BIRTH: &str = "date_of_birth";
/// NHS ethnic category code (A–S, Z not stated, 99 not known).
pub const ETHNICITY: &str = "ethnicity";
/// Number of registered patients in an aggregate cell.
pub const NUMBER_OF_PATIENTS: &str = "number_of_patients";
/// Age group label in aggregate publications (`ALL`, `0-4`, …).
pub const AGE_GROUP: &str = "age_group";
/// Extract date of a publication.
pub const EXTRACT_DATE: &str = "extract_date";
/// Broad age band (`0-17`, `18-44`, `45-64`, `65-74`, `75-84`, `85+`).
pub const BROAD_AGE_BAND: &str = "broad_age_band";
/// Life-course stage (`start well (0-17)`, `live well (18-64)`, `age well (65+)`).
pub const LIFE_STAGE: &str = "life_stage";
/// High-level ethnic group (five groups and "Not stated").
pub const ETHNIC_GROUP: &str = "ethnic_group";
/// Weight of a population row: 1 for a patient, `number_of_patients` for an aggregate cell.
pub const WEIGHT: &str = "weight";

/// Optional patient flags used by PLUS groups and segments (DESIGN §2.1).
pub const PATIENT_FLAGS: &[&str] = &[
    "learning_disability",
    "smi",
    "carer",
    "homeless",
    "care_home",
    "housebound",
    "eol_register",
    "pregnant",
    "autism",
    "veteran",
    "gypsy_roma_traveller",
    "asylum_seeker",
    "drug_alcohol_dependence",
];

// --- Conditions and outcomes ---------------------------------------------------------------
/// Condition code from the vocabulary in [`crate::conditions`].
pub const CONDITION: &str = "condition";
/// Date a condition was diagnosed.
pub const DIAGNOSED_ON: &str = "diagnosed_on";
/// Indicator code (patient outcomes) or Fingertips indicator ID.
pub const INDICATOR: &str = "indicator";
/// Indicator name.
pub const INDICATOR_NAME: &str = "indicator_name";
/// A measured value.
pub const VALUE: &str = "value";
/// Reporting period (`2022/23`, `2023`).
pub const PERIOD: &str = "period";
/// Area code in a Fingertips export (a practice code for practice-level data).
pub const AREA_CODE: &str = "area_code";
/// Area name in a Fingertips export.
pub const AREA_NAME: &str = "area_name";
/// Area type in a Fingertips export (`GPs`, `PCNs`, …).
pub const AREA_TYPE: &str = "area_type";
/// Parent area code in a Fingertips export.
pub const PARENT_CODE: &str = "parent_code";
/// Fingertips sex label (`Persons`, `Male`, `Female`).
pub const SEX_LABEL: &str = "sex_label";
/// Fingertips age label (`15+ yrs`).
pub const AGE_LABEL: &str = "age_label";
/// Fingertips breakdown type (`County & UA deprivation deciles`, empty for the whole area).
pub const CATEGORY_TYPE: &str = "category_type";
/// Fingertips breakdown category within its type.
pub const CATEGORY: &str = "category";
/// Numerator: count of events or people with the outcome.
pub const NUMERATOR: &str = "numerator";
/// Denominator: people eligible or population at risk.
pub const DENOMINATOR: &str = "denominator";
/// Lower 95% confidence limit.
pub const LOWER_CL_95: &str = "lower95_0cl";
/// Upper 95% confidence limit.
pub const UPPER_CL_95: &str = "upper95_0cl";
/// Lower 99.8% confidence limit.
pub const LOWER_CL_998: &str = "lower99_8cl";
/// Upper 99.8% confidence limit.
pub const UPPER_CL_998: &str = "upper99_8cl";
/// Fingertips value note (why a value is missing or caveated).
pub const VALUE_NOTE: &str = "value_note";
/// Whether the area is current (Fingertips `IsAreaCurrent`).
pub const AREA_IS_CURRENT: &str = "area_is_current";

// --- Geography -----------------------------------------------------------------------------
/// Longitude (WGS84 degrees).
pub const LONGITUDE: &str = "longitude";
/// Latitude (WGS84 degrees).
pub const LATITUDE: &str = "latitude";
/// Age band label: the ESP2013 bands `0-4`, …, `85-89`, `90+` (in the standard population
/// input and on every population row).
pub const AGE_BAND: &str = "age_band";
/// First year of an age band.
pub const AGE_FROM: &str = "age_from";
/// Last year of an age band (inclusive; 120 for the open band).
pub const AGE_TO: &str = "age_to";
/// Weight of an age band in a standard population (ESP2013 sums to 100,000).
pub const STANDARD_POPULATION: &str = "standard_population";

// --- Practice age profile (House of Commons Library) ----------------------------------------
/// All registered patients.
pub const TOTAL_PATIENTS: &str = "total_patients";
/// Patients aged 16 and over.
pub const PATIENTS_16_PLUS: &str = "patients_16_plus";
/// Patients aged 65 and over.
pub const PATIENTS_65_PLUS: &str = "patients_65_plus";

// --- Footprints and areas ------------------------------------------------------------------
/// What a footprint is: `practice`, `pcn`, `sub_icb`, `icb`, `england`, or a polygon kind.
pub const FOOTPRINT_KIND: &str = "footprint_kind";
/// The footprint's code (ODS for practices, PCNs and ICBs by membership; the polygon's code for
/// geometric footprints).
pub const FOOTPRINT_CODE: &str = "footprint_code";
/// How an LSOA was attributed: `registered_plurality`, `registered_share`, `geometric`.
pub const METHOD: &str = "method";
/// Registered residents behind an attribution.
pub const REGISTERED: &str = "registered";
/// A share (0–1).
pub const SHARE: &str = "share";
/// Level of an area row: `practice`, `pcn`, `icb`, `england`.
pub const AREA_LEVEL: &str = "area_level";
/// The code of the area one level up (a practice's PCN, a PCN's ICB).
pub const PARENT_AREA_CODE: &str = "parent_code";
/// Population with a deprivation match (the denominator of shares by deprivation).
pub const POPULATION_WITH_IMD: &str = "population_with_imd";
/// People living in Core20 LSOAs.
pub const CORE20_POPULATION: &str = "core20_population";
/// Core20 people as a share of the population with a deprivation match.
pub const CORE20_SHARE: &str = "core20_share";
/// Area deprivation decile among areas of its level, population-weighted (1 = most deprived).
pub const DEPRIVATION_DECILE: &str = "deprivation_decile";
/// Code used for England as a whole (ONS country code).
pub const ENGLAND_CODE: &str = "E92000001";

// --- Rejects -------------------------------------------------------------------------------
/// Input kind a reject came from.
pub const REJECT_INPUT: &str = "input";
/// File a reject came from.
pub const REJECT_FILE: &str = "file";
/// Line of the file (CSV; the header is line 1) or 1-based row (Parquet).
pub const REJECT_LINE: &str = "line";
/// Column the reject is about.
pub const REJECT_COLUMN: &str = "column";
/// The value as written.
pub const REJECT_VALUE: &str = "value";
/// Why the row was refused.
pub const REJECT_REASON: &str = "reason";
