//! Network membership: ePCN (practice → PCN, dated), PCN details, the NHS Digital practice map,
//! and ODS `epraccur` (practice → ICB and sub-ICB, no header row).

use super::contract::{
    ColumnSpec, ColumnType, ExtraColumns, HeaderMode, ICB_ODS_CODE, InputContract, ODS_CODE,
    ONS_CODE, PCN_CODE, PCN_CODE_OR_UNALLOCATED, PRACTICE_CODE, SUB_ICB_CODE,
};
use crate::schema;

/// ePCN "PCN Core Partner Details": one row per practice membership of a PCN, with dates.
pub const EPCN_MEMBERS: InputContract = InputContract {
    name: "epcn_members",
    description: "NHS Digital ePCN core partner details: practice → PCN membership with start and end dates",
    columns: &[
        ColumnSpec::required(
            schema::PRACTICE_CODE,
            &[
                "Partner Organisation Code",
                "PRACTICE_CODE",
                "Practice Code",
            ],
            ColumnType::Code(PRACTICE_CODE),
        ),
        ColumnSpec::optional(
            schema::PRACTICE_NAME,
            &["Partner Name", "PRACTICE_NAME"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::SUB_ICB_CODE,
            &[
                "Practice Parent Sub ICB Loc Code",
                "Practice Parent CCG Code",
            ],
            ColumnType::Code(SUB_ICB_CODE),
        ),
        ColumnSpec::optional(
            schema::SUB_ICB_NAME,
            &[
                "Practice Parent Sub ICB Loc Name",
                "Practice Parent CCG Name",
            ],
            ColumnType::Text,
        ),
        ColumnSpec::required(
            schema::PCN_CODE,
            &["PCN Code", "PCN_CODE"],
            ColumnType::Code(PCN_CODE),
        ),
        ColumnSpec::optional(
            schema::PCN_NAME,
            &["PCN Name", "PCN_NAME"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::PCN_SUB_ICB_CODE,
            &["PCN Parent Sub ICB Loc Code", "PCN Parent CCG Code"],
            ColumnType::Code(SUB_ICB_CODE),
        ),
        ColumnSpec::required(
            schema::MEMBERSHIP_START,
            &["Practice to PCN Relationship Start Date", "Start Date"],
            ColumnType::Date,
        ),
        ColumnSpec::required(
            schema::MEMBERSHIP_END,
            &["Practice to PCN Relationship End Date", "End Date"],
            ColumnType::Date,
        )
        .allow_empty(),
    ],
    one_of: &[],
    unique_key: &[
        schema::PRACTICE_CODE,
        schema::PCN_CODE,
        schema::MEMBERSHIP_START,
    ],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// ePCN "PCN Details": one row per PCN with open and close dates.
pub const EPCN_PCNS: InputContract = InputContract {
    name: "epcn_pcns",
    description: "NHS Digital ePCN PCN details: PCNs with sub-ICB location and open/close dates",
    columns: &[
        ColumnSpec::required(
            schema::PCN_CODE,
            &["PCN Code", "PCN_CODE"],
            ColumnType::Code(PCN_CODE),
        ),
        ColumnSpec::required(
            schema::PCN_NAME,
            &["PCN Name", "PCN_NAME"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::SUB_ICB_CODE,
            &[
                "Current Sub ICB Loc Code",
                "Current CCG Code",
                "Sub ICB Location Code",
            ],
            ColumnType::Code(SUB_ICB_CODE),
        ),
        ColumnSpec::optional(
            schema::SUB_ICB_NAME,
            &["Sub ICB Location", "CCG Name"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(schema::OPEN_DATE, &["Open Date"], ColumnType::Date),
        ColumnSpec::optional(schema::CLOSE_DATE, &["Close Date"], ColumnType::Date),
        ColumnSpec::optional(schema::POSTCODE, &["Postcode"], ColumnType::Text),
    ],
    one_of: &[],
    unique_key: &[schema::PCN_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// NHS Digital "practice map" (gp-reg-pat-prac-map): practice → PCN → sub-ICB → ICB → region.
pub const PRACTICE_MAP: InputContract = InputContract {
    name: "practice_map",
    description: "NHS Digital practice map: practice → PCN → sub-ICB (CCG) → ICB (STP) → region",
    columns: &[
        ColumnSpec::required(
            schema::PRACTICE_CODE,
            &["PRACTICE_CODE"],
            ColumnType::Code(PRACTICE_CODE),
        ),
        ColumnSpec::optional(schema::PRACTICE_NAME, &["PRACTICE_NAME"], ColumnType::Text),
        ColumnSpec::optional(schema::POSTCODE, &["PRACTICE_POSTCODE"], ColumnType::Text),
        ColumnSpec::optional(schema::EXTRACT_DATE, &["EXTRACT_DATE"], ColumnType::Date),
        // Practices outside any PCN carry the placeholder `U`; the reader turns it into empty.
        ColumnSpec::optional(
            schema::PCN_CODE,
            &["PCN_CODE"],
            ColumnType::Code(PCN_CODE_OR_UNALLOCATED),
        ),
        ColumnSpec::optional(schema::PCN_NAME, &["PCN_NAME"], ColumnType::Text),
        ColumnSpec::optional(
            schema::SUB_ICB_ONS_CODE,
            &[
                "ONS_CCG_CODE",
                "ONS_SUB_ICB_LOCATION_CODE",
                "SUB_ICB_LOCATION_ONS_CODE",
            ],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::optional(
            schema::SUB_ICB_CODE,
            &["CCG_CODE", "SUB_ICB_LOCATION_CODE", "SUB_ICB_LOC_CODE"],
            ColumnType::Code(SUB_ICB_CODE),
        ),
        ColumnSpec::optional(
            schema::SUB_ICB_NAME,
            &["CCG_NAME", "SUB_ICB_LOCATION_NAME"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::ICB_ONS_CODE,
            &["ONS_STP_CODE", "ONS_ICB_CODE"],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::optional(
            schema::ICB_CODE,
            &["STP_CODE", "ICB_CODE"],
            ColumnType::Code(ICB_ODS_CODE),
        ),
        ColumnSpec::optional(
            schema::ICB_NAME,
            &["STP_NAME", "ICB_NAME"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::REGION_ONS_CODE,
            &["ONS_COMM_REGION_CODE", "ONS_REGION_CODE"],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::optional(
            schema::REGION_CODE,
            &["COMM_REGION_CODE", "REGION_CODE"],
            ColumnType::Code(ODS_CODE),
        ),
        ColumnSpec::optional(
            schema::REGION_NAME,
            &["COMM_REGION_NAME", "REGION_NAME"],
            ColumnType::Text,
        ),
    ],
    one_of: &[],
    unique_key: &[schema::PRACTICE_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// ODS `epraccur`: every prescribing cost centre, **no header row**. Positions (1-based) per
/// the ODS specification: 1 organisation code, 2 name, 3 national grouping (region), 4 high
/// level health geography (ICB), 10 postcode, 11 open date, 12 close date, 13 status,
/// 15 commissioner (sub-ICB), 26 prescribing setting (4 = GP practice).
pub const EPRACCUR: InputContract = InputContract {
    name: "epraccur",
    description: "ODS epraccur: prescribing cost centres with parent ICB and sub-ICB (no header row)",
    columns: &[
        ColumnSpec::required(schema::PRACTICE_CODE, &[], ColumnType::Code(ODS_CODE)),
        ColumnSpec::optional(schema::PRACTICE_NAME, &[], ColumnType::Text),
        ColumnSpec::optional(schema::REGION_CODE, &[], ColumnType::Code(ODS_CODE)),
        ColumnSpec::required(schema::ICB_CODE, &[], ColumnType::Code(ODS_CODE)).allow_empty(),
        ColumnSpec::optional(schema::POSTCODE, &[], ColumnType::Text),
        ColumnSpec::optional(schema::OPEN_DATE, &[], ColumnType::Date),
        ColumnSpec::optional(schema::CLOSE_DATE, &[], ColumnType::Date),
        ColumnSpec::required(
            schema::STATUS,
            &[],
            ColumnType::Enum(&super::contract::EnumDomain {
                what: "ODS status",
                mapping: &[("A", "A"), ("C", "C"), ("D", "D"), ("P", "P")],
                expected: "A, C, D or P",
            }),
        ),
        ColumnSpec::required(schema::SUB_ICB_CODE, &[], ColumnType::Code(ODS_CODE)).allow_empty(),
        ColumnSpec::required(
            schema::PRESCRIBING_SETTING,
            &[],
            ColumnType::Int { min: 0, max: 99 },
        ),
    ],
    one_of: &[],
    unique_key: &[schema::PRACTICE_CODE],
    header: HeaderMode::Positional(&[
        (0, schema::PRACTICE_CODE),
        (1, schema::PRACTICE_NAME),
        (2, schema::REGION_CODE),
        (3, schema::ICB_CODE),
        (9, schema::POSTCODE),
        (10, schema::OPEN_DATE),
        (11, schema::CLOSE_DATE),
        (12, schema::STATUS),
        (14, schema::SUB_ICB_CODE),
        (25, schema::PRESCRIBING_SETTING),
    ]),
    extra: ExtraColumns::Drop,
};

/// ICB codes: the ODS code practices carry (`QHM`), the ONS code boundaries carry
/// (`E54000050`), and the name.
pub const ICB_CODES: InputContract = InputContract {
    name: "icb_codes",
    description: "ICB lookup: ODS code (Q..) ↔ ONS code (E54..) and name",
    columns: &[
        ColumnSpec::required(
            schema::ICB_CODE,
            &["ICB22CDH", "ICB23CDH", "ICB24CDH", "ods_code"],
            ColumnType::Code(ICB_ODS_CODE),
        ),
        ColumnSpec::required(
            schema::ICB_ONS_CODE,
            &["ICB22CD", "ICB23CD", "ICB24CD", "ons_code"],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::optional(
            schema::ICB_NAME,
            &["ICB22NM", "ICB23NM", "ICB24NM", "name"],
            ColumnType::Text,
        ),
    ],
    one_of: &[],
    unique_key: &[schema::ICB_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};
