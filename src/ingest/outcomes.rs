//! Conditions, patient outcomes, and practice-level outcomes in the Fingertips export shape.

use super::contract::{
    AREA_CODE, ColumnSpec, ColumnType, ExtraColumns, HeaderMode, InputContract, Vocabulary,
};
use crate::schema;

/// The condition vocabulary of [`crate::conditions`], as an ingest check.
pub const CONDITION_CODES: Vocabulary = Vocabulary {
    what: "condition code",
    expected: "a code of the healthgap condition vocabulary, e.g. hypertension or HYP; see `healthgap validate --help`",
    spellings: crate::conditions::spellings,
};

/// Conditions, long: one row per patient × condition.
///
/// The condition code is checked against [`crate::conditions`] by the reader (the vocabulary
/// is data, not a pattern).
pub const CONDITIONS_LONG: InputContract = InputContract {
    name: "conditions",
    description: "patient conditions, long: patient_id, condition (Cambridge Multimorbidity Score and eFI vocabulary), diagnosed_on",
    columns: &[
        ColumnSpec::required(
            schema::PATIENT_ID,
            &["patient_pseudo_id", "person_id"],
            ColumnType::Text,
        ),
        ColumnSpec::required(
            schema::CONDITION,
            &["condition_code", "cond"],
            ColumnType::Vocabulary(&CONDITION_CODES),
        ),
        ColumnSpec::optional(
            schema::DIAGNOSED_ON,
            &["diagnosis_date", "date"],
            ColumnType::Date,
        ),
    ],
    one_of: &[],
    // A condition recorded twice is still one condition: the segment stage counts distinct
    // codes, so repeats are not refused.
    unique_key: &[],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// Patient outcomes, long: one row per patient × indicator (× period).
pub const PATIENT_OUTCOMES: InputContract = InputContract {
    name: "outcomes",
    description: "patient outcomes, long: patient_id, indicator, value, period",
    columns: &[
        ColumnSpec::required(
            schema::PATIENT_ID,
            &["patient_pseudo_id", "person_id"],
            ColumnType::Text,
        ),
        ColumnSpec::required(
            schema::INDICATOR,
            &["indicator_code", "outcome"],
            ColumnType::Text,
        ),
        ColumnSpec::required(
            schema::VALUE,
            &["outcome_value"],
            ColumnType::Float {
                min: -1.0e12,
                max: 1.0e12,
            },
        ),
        ColumnSpec::optional(schema::PERIOD, &["time_period"], ColumnType::Text),
    ],
    one_of: &[],
    unique_key: &[schema::PATIENT_ID, schema::INDICATOR, schema::PERIOD],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

const COUNT: ColumnType = ColumnType::Float {
    min: 0.0,
    max: 1.0e12,
};
const REAL: ColumnType = ColumnType::Float {
    min: -1.0e12,
    max: 1.0e12,
};

/// Practice-level outcomes: the Fingertips export shape (`Indicator ID, Area Code, Area Type,
/// Time period, Value, Count, Denominator, …`), the Fingertips API shape (`IndicatorID,
/// AreaCode, Year, Value`), or a QOF-style table (`practice_code, indicator, numerator,
/// denominator, period`).
pub const PRACTICE_OUTCOMES: InputContract = InputContract {
    name: "practice_outcomes",
    description: "practice-level outcomes in the Fingertips export shape (indicator, area, period, value, count, denominator)",
    columns: &[
        // Fingertips exports sometimes leave the ID empty on later periods; the reader fills it
        // from rows with the same indicator name.
        ColumnSpec::required(
            schema::INDICATOR,
            &["Indicator ID", "IndicatorID", "indicator_id"],
            ColumnType::Text,
        )
        .allow_empty(),
        ColumnSpec::optional(
            schema::INDICATOR_NAME,
            &["Indicator Name", "IndicatorName"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::PARENT_CODE,
            &["Parent Code", "ParentCode"],
            ColumnType::Code(AREA_CODE),
        ),
        ColumnSpec::required(
            schema::AREA_CODE,
            &["Area Code", "AreaCode", "practice_code", "PRACTICE_CODE"],
            ColumnType::Code(AREA_CODE),
        ),
        ColumnSpec::optional(
            schema::AREA_NAME,
            &["Area Name", "AreaName"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::AREA_TYPE,
            &["Area Type", "AreaType"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(schema::SEX_LABEL, &["Sex"], ColumnType::Text),
        ColumnSpec::optional(schema::AGE_LABEL, &["Age"], ColumnType::Text),
        ColumnSpec::optional(
            schema::CATEGORY_TYPE,
            &["Category Type", "CategoryType"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(schema::CATEGORY, &["Category"], ColumnType::Text),
        ColumnSpec::required(
            schema::PERIOD,
            &["Time period", "Year", "TimePeriod", "time_period"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(schema::VALUE, &["Value"], REAL),
        ColumnSpec::optional(
            schema::LOWER_CL_95,
            &["Lower CI 95.0 limit", "LowerCI95.0limit"],
            REAL,
        ),
        ColumnSpec::optional(
            schema::UPPER_CL_95,
            &["Upper CI 95.0 limit", "UpperCI95.0limit"],
            REAL,
        ),
        ColumnSpec::optional(
            schema::LOWER_CL_998,
            &["Lower CI 99.8 limit", "LowerCI99.8limit"],
            REAL,
        ),
        ColumnSpec::optional(
            schema::UPPER_CL_998,
            &["Upper CI 99.8 limit", "UpperCI99.8limit"],
            REAL,
        ),
        ColumnSpec::optional(schema::NUMERATOR, &["Count"], COUNT),
        ColumnSpec::optional(schema::DENOMINATOR, &["Denominator"], COUNT),
        ColumnSpec::optional(
            schema::VALUE_NOTE,
            &["Value note", "ValueNote"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::AREA_IS_CURRENT,
            &["IsAreaCurrent"],
            ColumnType::Bool,
        ),
    ],
    one_of: &[&[schema::VALUE, schema::NUMERATOR]],
    unique_key: &[
        schema::INDICATOR,
        schema::AREA_CODE,
        schema::PERIOD,
        schema::SEX_LABEL,
        schema::AGE_LABEL,
        schema::CATEGORY,
    ],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};
