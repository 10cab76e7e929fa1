//! Rebuilds the bundled reference data in `data/` from the shared public files.
//!
//! Not part of the normal test run (`#[ignore]`): run it when the shared data changes with
//! `cargo test --test cli -- --ignored bundle_reference_data`. Each CSV is stored as Parquet
//! (zstd) with its **published headers and text exactly as published** (every column as text),
//! so the readers' header aliases and value parsing are exercised on the bundled copies too.

use std::path::Path;

use polars::prelude::*;

use crate::harness::{data_dir, shared_data};

/// (source under shared/data, bundled name, has a header row)
const BUNDLE: &[(&str, &str, bool)] = &[
    (
        "iod2019/IoD2019_File7_subset.csv",
        "iod2019_lsoa11.parquet",
        true,
    ),
    (
        "iod2025/humaniverse_imd2025_england_lsoa21.csv",
        "iod2025_lsoa21.parquet",
        true,
    ),
    (
        "wimd2019/humaniverse_imd2019_wales_lsoa11.csv",
        "wimd2019_lsoa11.parquet",
        true,
    ),
    (
        "pcn/ePCN_2023-02_PCN_Core_Partner_Details.csv",
        "epcn_members_2023-02.parquet",
        true,
    ),
    (
        "pcn/ePCN_2023-02_PCNDetails.csv",
        "epcn_pcns_2023-02.parquet",
        true,
    ),
    (
        "pcn/gp-reg-pat-prac-map_2022-01.csv",
        "practice_map_2022-01.parquet",
        true,
    ),
    (
        "pcn/blackwellrd_epraccur_2023-02.csv",
        "epraccur_2023-02.parquet",
        false,
    ),
    (
        "gp_registrations/gp-reg-pat-prac-all_2021-01.csv",
        "practice_totals_2021-01.parquet",
        true,
    ),
    (
        "gp_registrations/hoc_gp-by-age_2020-04.csv",
        "practice_ages_2020-04.parquet",
        true,
    ),
    (
        "geography/lsoa11_centroids_bsc_v4_lonlat.csv",
        "lsoa11_centroids.parquet",
        true,
    ),
    (
        "geography/hoc_lsoa11_geog_lookup.csv",
        "lsoa11_lookup.parquet",
        true,
    ),
    (
        "outcomes/heec_fingertips_93553_practice_imd_raw.csv",
        "practice_imd_93553.parquet",
        true,
    ),
    (
        "outcomes/fingertips_91547_smoking_qof_practices.csv",
        "practice_smoking_91547.parquet",
        true,
    ),
];

/// Files copied as they are.
const COPY: &[(&str, &str)] = &[
    (
        "geography/icb22_boundaries_wgs84.geojson",
        "icb22_boundaries.geojson",
    ),
    ("reference/esp2013_19bands.csv", "esp2013.csv"),
];

fn to_parquet(source: &Path, target: &Path, has_header: bool) {
    let mut df = CsvReadOptions::default()
        .with_has_header(has_header)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(source.to_path_buf()))
        .expect("open csv")
        .finish()
        .expect("read csv");
    // Strip a UTF-8 BOM from the first header, as the CSV reader of healthgap does.
    let first = df.get_column_names()[0].to_string();
    if let Some(stripped) = first.strip_prefix('\u{feff}') {
        df.rename(&first, stripped.into()).expect("rename");
    }
    let file = std::fs::File::create(target).expect("create parquet");
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::full())
        .finish(&mut df)
        .expect("write parquet");
    eprintln!(
        "{} -> {} ({} rows)",
        source.display(),
        target.display(),
        df.height()
    );
}

#[test]
#[ignore = "rebuilds data/ from ../shared/data; run explicitly"]
fn bundle_reference_data() {
    let Some(shared) = shared_data("bundle_reference_data") else {
        panic!("the shared data is needed to rebuild data/");
    };
    let out = data_dir();
    std::fs::create_dir_all(&out).expect("data dir");
    for (source, target, header) in BUNDLE {
        to_parquet(&shared.join(source), &out.join(target), *header);
    }
    for (source, target) in COPY {
        std::fs::copy(shared.join(source), out.join(target)).expect("copy");
    }
}
