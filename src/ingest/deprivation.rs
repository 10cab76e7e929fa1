//! Deprivation indices: English IoD2019 (LSOA 2011), IoD2025 (LSOA 2021), Welsh WIMD 2019.
//!
//! All three read into one shape (`lsoa_code, imd_score, imd_rank, imd_decile`, plus what the
//! file has), and the reader adds `nation`, `deprivation_index` and `lsoa_vintage` so that
//! enrich can refuse to pool English and Welsh ranks. IoD2019 is read from the official File 7
//! headers or File 1's shape (BOM, quoted ranks with thousands separators, no score).

use super::contract::{
    ColumnSpec, ColumnType, ExtraColumns, HeaderMode, InputContract, LSOA_CODE_ENGLAND,
    LSOA_CODE_WALES, ONS_CODE,
};
use crate::schema;

const SCORE: ColumnType = ColumnType::Float {
    min: 0.0,
    max: 100.0,
};
const DECILE: ColumnType = ColumnType::Int { min: 1, max: 10 };
const RATE: ColumnType = ColumnType::Float { min: 0.0, max: 1.0 };
const COUNT: ColumnType = ColumnType::Int {
    min: 0,
    max: 100_000,
};

/// English Indices of Deprivation 2019, LSOA 2011 (32,844 LSOAs).
pub const IOD2019: InputContract = InputContract {
    name: "iod2019",
    description: "English Indices of Deprivation 2019 by LSOA 2011 (File 7, or File 1's rank and decile)",
    columns: &[
        ColumnSpec::required(
            schema::LSOA_CODE,
            &["LSOA code (2011)", "lsoa11cd", "lsoa11_code", "LSOA11CD"],
            ColumnType::Code(LSOA_CODE_ENGLAND),
        ),
        ColumnSpec::optional(
            schema::LSOA_NAME,
            &["LSOA name (2011)", "lsoa11nm"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::LAD_CODE,
            &["Local Authority District code (2019)", "lad19cd"],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::optional(
            schema::LAD_NAME,
            &["Local Authority District name (2019)", "lad19nm"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::IMD_SCORE,
            &[
                "Index of Multiple Deprivation (IMD) Score",
                "IMD_score",
                "imd19_score",
                "IMDScore",
            ],
            SCORE,
        ),
        ColumnSpec::required(
            schema::IMD_RANK,
            &[
                "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)",
                "Index of Multiple Deprivation (IMD) Rank",
                "IMD_rank",
                "IMDRank",
            ],
            ColumnType::Int {
                min: 1,
                max: 32_844,
            },
        ),
        ColumnSpec::required(
            schema::IMD_DECILE,
            &[
                "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)",
                "Index of Multiple Deprivation (IMD) Decile",
                "IMD_decile",
                "IMDDecil",
            ],
            DECILE,
        ),
        ColumnSpec::optional(
            schema::INCOME_SCORE,
            &["Income Score (rate)", "Income_score"],
            RATE,
        ),
        ColumnSpec::optional(
            schema::EMPLOYMENT_SCORE,
            &["Employment Score (rate)", "Employment_score"],
            RATE,
        ),
        ColumnSpec::optional(
            schema::POPULATION,
            &["Total population: mid 2015 (excluding prisoners)"],
            COUNT,
        ),
        ColumnSpec::optional(
            schema::POPULATION_0_15,
            &["Dependent Children aged 0-15: mid 2015 (excluding prisoners)"],
            COUNT,
        ),
        ColumnSpec::optional(
            schema::POPULATION_16_59,
            &["Population aged 16-59: mid 2015 (excluding prisoners)"],
            COUNT,
        ),
        ColumnSpec::optional(
            schema::POPULATION_60_PLUS,
            &["Older population aged 60 and over: mid 2015 (excluding prisoners)"],
            COUNT,
        ),
        ColumnSpec::optional(
            schema::POPULATION_WORKING_AGE,
            &[
                "Working age population 18-59/64: for use with Employment Deprivation Domain (excluding prisoners)",
            ],
            COUNT,
        ),
    ],
    one_of: &[],
    unique_key: &[schema::LSOA_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// English Indices of Deprivation 2025, LSOA 2021 (33,755 LSOAs).
pub const IOD2025: InputContract = InputContract {
    name: "iod2025",
    description: "English Indices of Deprivation 2025 by LSOA 2021",
    columns: &[
        ColumnSpec::required(
            schema::LSOA_CODE,
            &["lsoa21_code", "LSOA code (2021)", "lsoa21cd", "LSOA21CD"],
            ColumnType::Code(LSOA_CODE_ENGLAND),
        ),
        ColumnSpec::optional(
            schema::LSOA_NAME,
            &["LSOA name (2021)", "lsoa21nm"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::LAD_CODE,
            &["Local Authority District code (2024)", "lad24cd"],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::optional(
            schema::IMD_SCORE,
            &["IMD_score", "Index of Multiple Deprivation (IMD) Score"],
            SCORE,
        ),
        ColumnSpec::required(
            schema::IMD_RANK,
            &[
                "IMD_rank",
                "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)",
                "Index of Multiple Deprivation (IMD) Rank",
            ],
            ColumnType::Int {
                min: 1,
                max: 33_755,
            },
        ),
        ColumnSpec::required(
            schema::IMD_DECILE,
            &[
                "IMD_decile",
                "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)",
                "Index of Multiple Deprivation (IMD) Decile",
            ],
            DECILE,
        ),
        ColumnSpec::optional(
            schema::INCOME_SCORE,
            &["Income_score", "Income Score (rate)"],
            RATE,
        ),
        ColumnSpec::optional(
            schema::EMPLOYMENT_SCORE,
            &["Employment_score", "Employment Score (rate)"],
            RATE,
        ),
    ],
    one_of: &[],
    unique_key: &[schema::LSOA_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// Welsh Index of Multiple Deprivation 2019, LSOA 2011 (1,909 LSOAs); ranks are within Wales.
pub const WIMD2019: InputContract = InputContract {
    name: "wimd2019",
    description: "Welsh Index of Multiple Deprivation 2019 by LSOA 2011 (ranked within Wales)",
    columns: &[
        ColumnSpec::required(
            schema::LSOA_CODE,
            &["lsoa11_code", "LSOA code", "lsoa11cd", "LSOA11CD"],
            ColumnType::Code(LSOA_CODE_WALES),
        ),
        ColumnSpec::optional(
            schema::LSOA_NAME,
            &["LSOA name", "lsoa11nm"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::IMD_SCORE,
            &["IMD_score", "WIMD 2019 score", "WIMD_2019_score"],
            SCORE,
        ),
        ColumnSpec::required(
            schema::IMD_RANK,
            &[
                "IMD_rank",
                "WIMD 2019",
                "WIMD 2019 overall rank",
                "WIMD_2019_rank",
            ],
            ColumnType::Int { min: 1, max: 1_909 },
        ),
        ColumnSpec::required(
            schema::IMD_DECILE,
            &["IMD_decile", "WIMD 2019 overall decile", "WIMD_2019_decile"],
            DECILE,
        ),
        ColumnSpec::optional(schema::INCOME_SCORE, &["Income_score"], SCORE),
        ColumnSpec::optional(schema::EMPLOYMENT_SCORE, &["Employment_score"], SCORE),
    ],
    one_of: &[],
    unique_key: &[schema::LSOA_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};
