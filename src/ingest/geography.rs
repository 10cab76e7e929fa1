//! Geography tables: LSOA centroids, the LSOA → local authority lookup, and a standard
//! population (ESP2013). Footprint polygons (GeoJSON) are read by [`super::footprints`].

use super::contract::{
    ColumnSpec, ColumnType, ExtraColumns, HeaderMode, InputContract, LSOA_CODE, ONS_CODE,
};
use crate::schema;

/// LSOA centroids: code, longitude, latitude (WGS84).
pub const LSOA_CENTROIDS: InputContract = InputContract {
    name: "lsoa_centroids",
    description: "LSOA centroids: lsoa_code, longitude, latitude (WGS84)",
    columns: &[
        ColumnSpec::required(
            schema::LSOA_CODE,
            &["lsoa11cd", "lsoa21cd", "LSOA11CD", "LSOA21CD", "code"],
            ColumnType::Code(LSOA_CODE),
        ),
        ColumnSpec::required(
            schema::LONGITUDE,
            &["long", "lon", "lng", "x"],
            ColumnType::Float {
                min: -180.0,
                max: 180.0,
            },
        ),
        ColumnSpec::required(
            schema::LATITUDE,
            &["lat", "y"],
            ColumnType::Float {
                min: -90.0,
                max: 90.0,
            },
        ),
    ],
    one_of: &[],
    unique_key: &[schema::LSOA_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// LSOA → MSOA → local authority → region lookup.
pub const LSOA_LOOKUP: InputContract = InputContract {
    name: "lsoa_lookup",
    description: "LSOA lookup: lsoa_code → msoa_code, lad_code, lad_name, region",
    columns: &[
        ColumnSpec::required(
            schema::LSOA_CODE,
            &["LSOA_CODE", "lsoa11cd", "lsoa21cd"],
            ColumnType::Code(LSOA_CODE),
        ),
        ColumnSpec::optional(
            schema::MSOA_CODE,
            &["MSOA_CODE", "msoa11cd", "msoa21cd"],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::required(
            schema::LAD_CODE,
            &["LAD_CODE", "lad19cd", "lad22cd", "lad24cd"],
            ColumnType::Code(ONS_CODE),
        ),
        ColumnSpec::optional(
            schema::LAD_NAME,
            &["LAD_NAME", "lad19nm", "lad22nm", "lad24nm"],
            ColumnType::Text,
        ),
        ColumnSpec::optional(
            schema::REGION_NAME,
            &["REGION", "rgn19nm", "region"],
            ColumnType::Text,
        ),
    ],
    one_of: &[],
    unique_key: &[schema::LSOA_CODE],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};

/// A standard population by age band (ESP2013: 19 bands 0–4 … 90+, summing to 100,000).
pub const STANDARD_POPULATION: InputContract = InputContract {
    name: "esp2013",
    description: "standard population by age band: age_band, age_from, age_to, standard_population",
    columns: &[
        ColumnSpec::required(schema::AGE_BAND, &["ageband", "Age Band"], ColumnType::Text),
        ColumnSpec::optional(
            schema::AGE_FROM,
            &["start_age", "startage"],
            ColumnType::Int { min: 0, max: 120 },
        ),
        ColumnSpec::optional(
            schema::AGE_TO,
            &["end_age"],
            ColumnType::Int { min: 0, max: 120 },
        ),
        ColumnSpec::required(
            schema::STANDARD_POPULATION,
            &["esp2013_weight", "esp2013", "stdpop", "weight"],
            ColumnType::Float {
                min: 0.0,
                max: 1.0e9,
            },
        ),
    ],
    one_of: &[],
    unique_key: &[schema::AGE_BAND],
    header: HeaderMode::Named,
    extra: ExtraColumns::Drop,
};
