//! Registered lists: the patient-level extract (DESIGN §2.1), NHS Digital practice totals, the
//! practice × LSOA aggregate file (weighted cells), and practice age profiles.

use super::contract::{
    ColumnSpec, ColumnType, ETHNIC_CATEGORY, ExtraColumns, HeaderMode, InputContract, LSOA_CODE,
    ONS_CODE, PRACTICE_CODE, SEX, SEX_AGGREGATE, SUB_ICB_CODE,
};
use crate::schema;

const FLAG: ColumnType = ColumnType::Bool;
const PATIENTS: ColumnType = ColumnType::Int {
    min: 0,
    max: 10_000_000,
};
/// Modelled counts (the House of Commons Library age profile has fractional estimates).
const ESTIMATED_PATIENTS: ColumnType = ColumnType::Float {
    min: 0.0,
    max: 10_000_000.0,
};

/// Patient-level registered list: one row per patient.
///
/// Extra columns are kept as text so segment rules can use local flags; the patient flags of
/// [`schema::PATIENT_FLAGS`] and the condition codes of [`crate::conditions`] are checked as
/// yes/no values by the reader.
pub const PATIENTS_LIST: InputContract = InputContract {
    name: "patients",
    description: "patient-level registered list: patient_id, practice_code, lsoa_code, sex, age or date_of_birth, ethnicity, flags",
    columns: &[
        ColumnSpec::required(
            schema::PATIENT_ID,
            &["patient_pseudo_id", "pseudo_nhs_number", "person_id"],
            ColumnType::Text,
        ),
        ColumnSpec::required(
            schema::PRACTICE_CODE,
            &["practice", "gp_practice_code", "registered_practice_code"],
            ColumnType::Code(PRACTICE_CODE),
        ),
        ColumnSpec::required(
            schema::LSOA_CODE,
            &["lsoa", "lsoa11cd", "lsoa21cd", "lsoa_code_of_residence"],
            ColumnType::Code(LSOA_CODE),
        )
        .allow_empty(),
        ColumnSpec::required(
            schema::SEX,
            &["gender", "person_stated_gender_code"],
            ColumnType::Enum(&SEX),
        ),
        ColumnSpec::optional(
            schema::AGE,
            &["age_years", "age_at_extract"],
            ColumnType::Int { min: 0, max: 120 },
        ),
        ColumnSpec::optional(
            schema::DATE_OF_BIRTH,
            &["dob", "birth_date"],
            ColumnType::Date,
        ),
        ColumnSpec::optional(
            schema::ETHNICITY,
            &[
                "ethnic_category",
                "ethnic_category_code",
                "ethnic_group_code",
            ],
            ColumnType::Enum(&ETHNIC_CATEGORY),
        ),
        ColumnSpec::optional("learning_disability", &["ld"], FLAG),
        ColumnSpec::optional("smi", &["severe_mental_illness"], FLAG),
        ColumnSpec::optional("carer", &[], FLAG),
        ColumnSpec::optional("homeless", &[], FLAG),
        ColumnSpec::optional("care_home", &["care_home_resident"], FLAG),
        ColumnSpec::optional("housebound", &[], FLAG),
        ColumnSpec::optional(
            "eol_register",
            &["end_of_life", "palliative_care_register"],
            FLAG,
        ),
        ColumnSpec::optional("pregnant", &[], FLAG),
        ColumnSpec::optional("autism", &[], FLAG),
        ColumnSpec::optional("veteran", &["armed_forces_veteran"], FLAG),
        ColumnSpec::optional("gypsy_roma_traveller", &["grt"], FLAG),
        ColumnSpec::optional("asylum_seeker", &["refugee_asylum_seeker"], FLAG),
        ColumnSpec::optional("drug_alcohol_dependence", &["substance_misuse"], FLAG),
    ],
    one_of: &[&[schema::AGE, schema::DATE_OF_BIRTH]],
    unique_key: &[schema::PATIENT_ID],
    header: HeaderMode::Named,
    extra: ExtraColumns::KeepAsText,
};

/// NHS Digital "Patients Registered at a GP Practice", practice totals (gp-reg-pat-prac-all).
pub const PRACTICE_TOTALS: InputContract = InputContract {
    name: "practice_totals",
    description: "NHS Digital patients registered at a GP practice: totals per practice (by sex and age where split)",
    columns: &[
        ColumnSpec::required(
            schema::PRACTICE_CODE,
            &["CODE", "PRACTICE_CODE", "ORG_CODE"],
            ColumnType::Code(PRACTICE_CODE),
        ),
        ColumnSpec::optional(schema::EXTRACT_DATE, &["EXTRACT_DATE"], ColumnType::Date),
        ColumnSpec::optional(
            schema::SUB_ICB_CODE,
            &["CCG_CODE", "SUB_ICB_LOCATION_CODE"],
            ColumnType::Code(SUB_ICB_CODE),
        ),
        ColumnSpec::optional(
            schema::SUB_ICB_ONS_CODE,
            &["ONS_CCG_CODE", "ONS_SUB_ICB_LOCATION_CODE"],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::optional(schema::POSTCODE, &["POSTCODE"], ColumnType::Text),
        ColumnSpec::optional(schema::SEX, &["SEX"], ColumnType::Enum(&SEX_AGGREGATE)),
        ColumnSpec::optional(schema::AGE_GROUP, &["AGE"], ColumnType::Text),
        ColumnSpec::required(
            schema::NUMBER_OF_PATIENTS,
            &["NUMBER_OF_PATIENTS"],
            PATIENTS,
        ),
    ],
    one_of: &[],
    unique_key: &[schema::PRACTICE_CODE, schema::SEX, schema::AGE_GROUP],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// NHS Digital practice × LSOA registrations (gp-reg-pat-prac-lsoa): each row is a weighted
/// population cell.
pub const PRACTICE_LSOA: InputContract = InputContract {
    name: "practice_lsoa",
    description: "NHS Digital patients registered at a GP practice by LSOA of residence (weighted cells)",
    columns: &[
        ColumnSpec::required(
            schema::PRACTICE_CODE,
            &["PRACTICE_CODE", "CODE"],
            ColumnType::Code(PRACTICE_CODE),
        ),
        ColumnSpec::optional(schema::PRACTICE_NAME, &["PRACTICE_NAME"], ColumnType::Text),
        ColumnSpec::optional(schema::EXTRACT_DATE, &["EXTRACT_DATE"], ColumnType::Date),
        ColumnSpec::required(
            schema::LSOA_CODE,
            &["LSOA_CODE", "LSOA_CODE_2011", "LSOA_CODE_2021"],
            ColumnType::Code(LSOA_CODE),
        )
        .allow_empty(),
        ColumnSpec::optional(schema::SEX, &["SEX"], ColumnType::Enum(&SEX_AGGREGATE)),
        ColumnSpec::required(
            schema::NUMBER_OF_PATIENTS,
            &["NUMBER_OF_PATIENTS"],
            PATIENTS,
        ),
    ],
    one_of: &[],
    unique_key: &[schema::PRACTICE_CODE, schema::LSOA_CODE, schema::SEX],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// Practice age profile (House of Commons Library, from NHS Digital): totals, 16+ and 65+.
pub const PRACTICE_AGES: InputContract = InputContract {
    name: "practice_ages",
    description: "registered patients per practice by broad age group (total, 16+, 65+)",
    columns: &[
        ColumnSpec::required(
            schema::PRACTICE_CODE,
            &["PRACTICE_CODE"],
            ColumnType::Code(PRACTICE_CODE),
        ),
        ColumnSpec::required(schema::TOTAL_PATIENTS, &["TOTAL"], ESTIMATED_PATIENTS),
        ColumnSpec::optional(schema::PATIENTS_16_PLUS, &["16OV"], ESTIMATED_PATIENTS),
        ColumnSpec::required(schema::PATIENTS_65_PLUS, &["65OV"], ESTIMATED_PATIENTS),
    ],
    one_of: &[],
    unique_key: &[schema::PRACTICE_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};
