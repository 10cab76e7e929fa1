//! The readers on real files and on malformed fixtures: counts, aliases, reject reasons.

use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use healthgap::ingest::{
    AcceptedRows, InputError, InputKind, ReadOptions, SharedAcceptedRows, Table, read_footprints,
    read_table, read_table_into,
};
use polars::prelude::*;

use crate::harness::{Workdir, data_dir, fixtures, shared_data};

fn options() -> ReadOptions {
    ReadOptions {
        format: None,
        extract_date: chrono::NaiveDate::from_ymd_opt(2023, 2, 1),
    }
}

/// Read an input. A patient-keyed one is read a second time handing its accepted rows on as
/// they are checked (as a split run does), and both reads must agree: the same rejects and
/// report, and the rows handed on are the accepted plan's.
fn read(kind: InputKind, path: &Path) -> Table {
    let table = read_table(kind, path, &options())
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if kind.is_patient_keyed() {
        let collected = Arc::new(Mutex::new(Collected::default()));
        let shared: SharedAcceptedRows = collected.clone();
        let streamed = read_table_into(kind, path, &options(), Some(&shared))
            .unwrap_or_else(|e| panic!("streaming {}: {e}", path.display()));
        assert_eq!(streamed.rejects, table.rejects, "{}", path.display());
        assert_eq!(streamed.report, table.report, "{}", path.display());
        let collected = collected.lock().expect("collected");
        assert!(collected.finished, "{}", path.display());
        let columns = collected.columns.clone().expect("begun");
        let mut rows = DataFrame::empty_with_schema(&columns);
        for batch in &collected.batches {
            rows.vstack_mut(batch).expect("same columns in every batch");
        }
        let accepted = collect(&table);
        assert_eq!(**accepted.schema(), columns, "{}", path.display());
        assert!(
            rows.equals_missing(&accepted),
            "{}: handed on {rows} accepted {accepted}",
            path.display()
        );
    }
    table
}

/// What `read_table_into` hands on.
#[derive(Default)]
struct Collected {
    columns: Option<Schema>,
    batches: Vec<DataFrame>,
    finished: bool,
}

impl AcceptedRows for Collected {
    fn begin(&mut self, columns: &Schema) -> PolarsResult<()> {
        self.columns = Some(columns.clone());
        self.batches.clear();
        self.finished = false;
        Ok(())
    }

    fn write(&mut self, rows: DataFrame) -> PolarsResult<()> {
        assert!(!self.finished, "rows after finish");
        self.batches.push(rows);
        Ok(())
    }

    fn finish(&mut self) -> PolarsResult<()> {
        self.finished = true;
        Ok(())
    }
}

fn collect(table: &Table) -> DataFrame {
    table
        .frame
        .clone()
        .collect()
        .expect("collect accepted rows")
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join("ingest").join(name)
}

fn reasons(table: &Table) -> Vec<(u64, String, String)> {
    table
        .rejects
        .iter()
        .map(|r| (r.line, r.column.clone(), r.reason.clone()))
        .collect()
}

fn i64s(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name)
        .expect("column")
        .cast(&DataType::Int64)
        .expect("cast")
        .i64()
        .expect("i64")
        .iter()
        .collect()
}

fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .expect("column")
        .str()
        .expect("str")
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

// --- Real files (bundled copies in data/, published headers) ----------------------------------

#[test]
fn iod2019_has_32844_lsoas_and_keeps_its_26_tied_rank_pairs() {
    let table = read(
        InputKind::Iod2019,
        &data_dir().join("iod2019_lsoa11.parquet"),
    );
    assert_eq!(table.report.rows_read, 32_844);
    assert_eq!(table.report.rows_rejected, 0);
    let df = collect(&table);
    assert_eq!(df.height(), 32_844);
    let ranks = i64s(&df, "imd_rank");
    let mut counts = std::collections::HashMap::new();
    for rank in ranks.iter().flatten() {
        *counts.entry(*rank).or_insert(0u32) += 1;
    }
    let tied_pairs = counts.values().filter(|&&n| n == 2).count();
    assert_eq!(tied_pairs, 26, "the official ranks have 26 tied pairs");
    assert!(counts.values().all(|&n| n <= 2));
    // Official decile = ceil(rank / 3,284.4) on every row.
    let deciles = i64s(&df, "imd_decile");
    for (rank, decile) in ranks.iter().zip(&deciles) {
        let (Some(rank), Some(decile)) = (rank, decile) else {
            panic!("missing rank or decile")
        };
        assert_eq!(
            *decile,
            (*rank as f64 / 3_284.4).ceil() as i64,
            "rank {rank}"
        );
    }
    let nation = strs(&df, "nation");
    assert!(nation.iter().all(|n| n.as_deref() == Some("E")));
}

#[test]
fn iod2025_has_33755_lsoas() {
    let table = read(
        InputKind::Iod2025,
        &data_dir().join("iod2025_lsoa21.parquet"),
    );
    assert_eq!(table.report.rows_read, 33_755);
    assert_eq!(collect(&table).height(), 33_755);
    let vintage = collect(&table)
        .column("lsoa_vintage")
        .expect("vintage")
        .i32()
        .expect("i32")
        .get(0);
    assert_eq!(vintage, Some(2021));
}

#[test]
fn wimd2019_is_welsh_and_ranked_within_wales() {
    let table = read(
        InputKind::Wimd2019,
        &data_dir().join("wimd2019_lsoa11.parquet"),
    );
    let df = collect(&table);
    assert_eq!(df.height(), 1_909);
    assert!(
        strs(&df, "lsoa_code")
            .iter()
            .all(|c| c.as_deref().is_some_and(|c| c.starts_with("W01")))
    );
    assert_eq!(i64s(&df, "imd_rank").iter().flatten().max(), Some(&1_909));
}

#[test]
fn epcn_current_memberships_give_6391_practices_in_1264_pcns() {
    let table = read(
        InputKind::EpcnMembers,
        &data_dir().join("epcn_members_2023-02.parquet"),
    );
    let current = table
        .frame
        .clone()
        .filter(col("membership_end").is_null())
        .select([
            col("practice_code").n_unique().alias("practices"),
            col("pcn_code").n_unique().alias("pcns"),
        ])
        .collect()
        .expect("collect");
    assert_eq!(i64s(&current, "practices"), [Some(6_391)]);
    assert_eq!(i64s(&current, "pcns"), [Some(1_264)]);
    let starts = table
        .frame
        .clone()
        .select([col("membership_start").min()])
        .collect()
        .expect("collect");
    assert_eq!(
        starts.column("membership_start").expect("col").dtype(),
        &DataType::Date
    );
}

#[test]
fn practice_map_has_6527_practices_and_unallocated_is_empty() {
    let table = read(
        InputKind::PracticeMap,
        &data_dir().join("practice_map_2022-01.parquet"),
    );
    let df = collect(&table);
    assert_eq!(df.height(), 6_527);
    let no_pcn = strs(&df, "pcn_code").iter().filter(|c| c.is_none()).count();
    assert_eq!(no_pcn, 68, "practices marked U (unallocated) have no PCN");
    assert_eq!(
        df.column("icb_code")
            .expect("icb")
            .n_unique()
            .expect("n_unique"),
        42
    );
}

#[test]
fn practice_totals_sum_to_60606345() {
    let table = read(
        InputKind::PracticeTotals,
        &data_dir().join("practice_totals_2021-01.parquet"),
    );
    let total = table
        .frame
        .clone()
        .select([col("number_of_patients").sum()])
        .collect()
        .expect("collect");
    assert_eq!(i64s(&total, "number_of_patients"), [Some(60_606_345)]);
}

#[test]
fn epraccur_has_no_header_and_is_read_by_position() {
    let table = read(
        InputKind::Epraccur,
        &data_dir().join("epraccur_2023-02.parquet"),
    );
    let df = collect(&table);
    assert_eq!(df.height(), 15_536);
    let active_gp = table
        .frame
        .clone()
        .filter(
            col("status")
                .eq(lit("A"))
                .and(col("prescribing_setting").eq(lit(4i64))),
        )
        .collect()
        .expect("collect")
        .height();
    assert_eq!(active_gp, 6_859);
    // The same positions in the published CSV shape.
    let head = read(InputKind::Epraccur, &fixture("epraccur_head.csv"));
    let df = collect(&head);
    assert_eq!(strs(&df, "practice_code")[0].as_deref(), Some("A81001"));
    assert_eq!(strs(&df, "icb_code")[0].as_deref(), Some("QHM"));
    assert_eq!(strs(&df, "sub_icb_code")[0].as_deref(), Some("16C"));
    assert_eq!(strs(&df, "status")[2].as_deref(), Some("C"));
}

#[test]
fn icb_boundaries_have_42_polygons_with_ons_codes() {
    let footprints =
        read_footprints(&data_dir().join("icb22_boundaries.geojson"), None, None).expect("geojson");
    assert_eq!(footprints.features.len(), 42);
    assert_eq!(footprints.code_property, "ICB22CD");
    assert!(
        footprints
            .features
            .iter()
            .all(|f| f.code.starts_with("E54"))
    );
    assert!(footprints.features.iter().all(|f| f.name.is_some()));
}

#[test]
fn fingertips_export_fills_a_missing_indicator_id_from_its_name() {
    let table = read(
        InputKind::PracticeOutcomes,
        &fixture("fingertips_91547_head.csv"),
    );
    assert_eq!(table.report.rows_rejected, 0);
    let df = collect(&table);
    assert!(
        strs(&df, "indicator")
            .iter()
            .all(|i| i.as_deref() == Some("91547"))
    );
    assert_eq!(
        df.column("numerator").expect("count").dtype(),
        &DataType::Float64
    );
}

#[test]
fn iod2019_file1_shape_bom_and_quoted_thousands() {
    let table = read(InputKind::Iod2019, &fixture("iod2019_file1_head.csv"));
    assert_eq!(table.report.rows_rejected, 0, "{:?}", reasons(&table));
    let df = collect(&table);
    assert_eq!(i64s(&df, "imd_rank")[0], Some(29_199));
    assert_eq!(strs(&df, "lsoa_code")[0].as_deref(), Some("E01000001"));
}

#[test]
fn official_iod2019_file1_reads_whole_when_shared_data_is_present() {
    let Some(shared) = shared_data("official_iod2019_file1_reads_whole") else {
        return;
    };
    let table = read(
        InputKind::Iod2019,
        &shared.join("iod2019/File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv"),
    );
    assert_eq!(table.report.rows_read, 32_844);
    assert_eq!(table.report.rows_rejected, 0);
    let csv_ranks = i64s(&collect(&table), "imd_rank");
    let bundled = read(
        InputKind::Iod2019,
        &data_dir().join("iod2019_lsoa11.parquet"),
    );
    assert_eq!(
        csv_ranks,
        i64s(&collect(&bundled), "imd_rank"),
        "File 1 and File 7 agree"
    );
}

#[test]
fn every_shared_csv_reads_as_published_when_present() {
    let Some(shared) = shared_data("every_shared_csv_reads_as_published") else {
        return;
    };
    let cases = [
        (
            InputKind::Iod2019,
            "iod2019/IoD2019_File7_subset.csv",
            32_844,
        ),
        (
            InputKind::Iod2025,
            "iod2025/humaniverse_imd2025_england_lsoa21.csv",
            33_755,
        ),
        (
            InputKind::Wimd2019,
            "wimd2019/humaniverse_imd2019_wales_lsoa11.csv",
            1_909,
        ),
        (
            InputKind::EpcnMembers,
            "pcn/ePCN_2023-02_PCN_Core_Partner_Details.csv",
            7_455,
        ),
        (
            InputKind::EpcnPcns,
            "pcn/ePCN_2023-02_PCNDetails.csv",
            1_329,
        ),
        (
            InputKind::PracticeMap,
            "pcn/gp-reg-pat-prac-map_2022-01.csv",
            6_527,
        ),
        (
            InputKind::Epraccur,
            "pcn/blackwellrd_epraccur_2023-02.csv",
            15_536,
        ),
        (
            InputKind::PracticeTotals,
            "gp_registrations/gp-reg-pat-prac-all_2021-01.csv",
            6_658,
        ),
        (
            InputKind::LsoaCentroids,
            "geography/lsoa11_centroids_bsc_v4_lonlat.csv",
            34_753,
        ),
        (
            InputKind::PracticeOutcomes,
            "outcomes/fingertips_91547_smoking_qof_practices.csv",
            12_645,
        ),
        (
            InputKind::PracticeOutcomes,
            "outcomes/heec_fingertips_93553_practice_imd_raw.csv",
            23_080,
        ),
        (InputKind::Esp2013, "reference/esp2013_19bands.csv", 19),
    ];
    for (kind, file, rows) in cases {
        let table = read(kind, &shared.join(file));
        assert_eq!(table.report.rows_read, rows, "{file}");
        assert_eq!(
            table.report.rows_rejected,
            0,
            "{file}: {:?}",
            reasons(&table)
        );
    }
}

#[test]
fn esp2013_band_limits_come_from_the_labels() {
    let table = read(InputKind::Esp2013, &data_dir().join("esp2013.csv"));
    let df = collect(&table);
    assert_eq!(df.height(), 19);
    let total: f64 = df
        .column("standard_population")
        .expect("w")
        .f64()
        .expect("f64")
        .sum()
        .unwrap_or(0.0);
    assert!((total - 100_000.0).abs() < 1e-9);
    assert_eq!(i64s(&df, "age_to").last().copied().flatten(), Some(120));
}

// --- Malformed fixtures ------------------------------------------------------------------------

#[test]
fn patients_bom_crlf_codes_normalised() {
    let table = read(InputKind::Patients, &fixture("patients_ok_bom_crlf.csv"));
    assert!(table.rejects.is_empty(), "{:?}", reasons(&table));
    let df = collect(&table);
    assert_eq!(
        strs(&df, "practice_code")[1].as_deref(),
        Some("A81002"),
        "trimmed and upper-cased"
    );
    assert_eq!(strs(&df, "lsoa_code")[1].as_deref(), Some("E01012346"));
    assert_eq!(strs(&df, "lsoa_code")[2], None, "no fixed abode is allowed");
    let carer = df
        .column("carer")
        .expect("carer")
        .bool()
        .expect("bool")
        .get(1);
    assert_eq!(carer, Some(true));
}

#[test]
fn patients_bad_rows_are_rejected_with_line_column_value_and_reason() {
    let table = read(InputKind::Patients, &fixture("patients_bad_rows.csv"));
    let got = reasons(&table);
    let expect = [
        (3, "practice_code", "not a valid practice code"),
        (4, "lsoa_code", "not a valid LSOA code"),
        (5, "sex", "unknown sex code"),
        (6, "age", "above the maximum of 120"),
        (7, "age", "negative count"),
        (8, "age", "not a whole number"),
        (9, "patient_id", "duplicate patient_id"),
        (10, "patient_id", "duplicate patient_id"),
        (11, "sex", "missing value"),
        (12, "ethnicity", "unknown ethnic category code"),
        (13, "age", "not a whole number"),
    ];
    for (line, column, reason) in expect {
        assert!(
            got.iter()
                .any(|(l, c, r)| *l == line && c == column && r.starts_with(reason)),
            "expected line {line} {column}: {reason}; got {got:#?}"
        );
    }
    assert_eq!(table.report.rows_read, 12);
    assert_eq!(table.report.rows_rejected, 11);
    assert_eq!(table.report.rows_accepted, 1);
    assert_eq!(collect(&table).height(), 1);
    let value = table
        .rejects
        .iter()
        .find(|r| r.line == 6)
        .map(|r| r.value.clone());
    assert_eq!(value.as_deref(), Some("130"));
    let limit = table
        .enforce_reject_limit(0.01)
        .expect_err("too many rejects");
    let message = limit.to_string();
    assert!(
        message.contains("11 of 12 rows refused") && message.contains("patients_bad_rows.csv"),
        "{message}"
    );
}

#[test]
fn missing_required_column_names_file_required_and_found() {
    let err = read_table(
        InputKind::Patients,
        &fixture("patients_missing_column.csv"),
        &options(),
    )
    .err()
    .expect("missing sex column");
    assert!(matches!(err, InputError::MissingColumns { .. }));
    let message = err.to_string();
    assert!(message.contains("patients_missing_column.csv"), "{message}");
    assert!(message.contains("sex"), "{message}");
    assert!(
        message.contains("columns found: \"patient_id\""),
        "{message}"
    );
}

#[test]
fn age_comes_from_date_of_birth_at_the_extract_date() {
    let table = read(InputKind::Patients, &fixture("patients_dob.csv"));
    let df = collect(&table);
    assert_eq!(i64s(&df, "age"), [Some(33), Some(32), Some(23)]);
    let got = reasons(&table);
    assert!(
        got.iter().any(|(l, c, r)| *l == 4
            && c == "date_of_birth"
            && r.contains("after the extract date")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|(l, c, r)| *l == 6 && c == "date_of_birth" && r.starts_with("not a date")),
        "{got:?}"
    );
}

#[test]
fn empty_file_is_an_error_and_header_only_is_zero_rows() {
    let err = read_table(InputKind::Patients, &fixture("empty.csv"), &options())
        .err()
        .expect("empty");
    assert!(err.to_string().contains("empty"), "{err}");
    let table = read(InputKind::Patients, &fixture("header_only.csv"));
    assert_eq!(table.report.rows_read, 0);
    assert!(
        table
            .report
            .warnings
            .iter()
            .any(|w| w.contains("no data rows"))
    );
}

#[test]
fn ragged_rows_are_rejected_not_padded() {
    let table = read(InputKind::Patients, &fixture("ragged.csv"));
    let got = reasons(&table);
    assert!(
        got.contains(&(3, "(row)".into(), "expected 5 fields, found 7".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(4, "(row)".into(), "expected 5 fields, found 3".into())),
        "{got:?}"
    );
    let ids = strs(&collect(&table), "patient_id");
    assert_eq!(ids, [Some("P1".into()), Some("P4".into())]);
}

#[test]
fn stray_quotes_do_not_panic_and_bad_codes_are_rejected() {
    let table = read(InputKind::Patients, &fixture("stray_quotes.csv"));
    assert!(table.report.rows_rejected >= 1, "{:?}", reasons(&table));
    assert!(
        reasons(&table)
            .iter()
            .any(|(l, c, _)| *l == 3 && c == "practice_code")
    );
}

#[test]
fn lines_count_physical_lines_after_embedded_newlines() {
    let table = read(InputKind::Patients, &fixture("embedded_newline.csv"));
    let got = reasons(&table);
    assert_eq!(
        got,
        [(7, "age".to_string(), "above the maximum of 120".to_string())]
    );
}

#[test]
fn latin1_bytes_are_read_with_a_warning() {
    let table = read(InputKind::PracticeTotals, &fixture("latin1.csv"));
    assert_eq!(table.report.rows_accepted, 2);
    assert!(
        table
            .report
            .warnings
            .iter()
            .any(|w| w.contains("not UTF-8")),
        "{:?}",
        table.report.warnings
    );
}

#[test]
fn conditions_accept_codes_and_aliases_and_refuse_unknown_ones() {
    let table = read(InputKind::Conditions, &fixture("conditions_mixed.csv"));
    let got = reasons(&table);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 5);
    assert!(got[0].2.starts_with("unknown condition code"));
    let codes = strs(&collect(&table), "condition");
    assert_eq!(
        codes,
        [
            "hypertension",
            "hypertension",
            "anxiety_depression",
            "diabetes"
        ]
        .map(|c| Some(c.to_string()))
    );
}

#[test]
fn practice_lsoa_cells_with_published_headers() {
    let table = read(InputKind::PracticeLsoa, &fixture("practice_lsoa.csv"));
    let got = reasons(&table);
    assert!(
        got.iter()
            .any(|(l, c, r)| *l == 4 && c == "number_of_patients" && r == "negative count"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|(l, c, r)| *l == 5 && c == "number_of_patients" && r == "missing value"),
        "{got:?}"
    );
    let df = collect(&table);
    assert_eq!(i64s(&df, "number_of_patients"), [Some(1_204), Some(1_187)]);
    assert_eq!(
        strs(&df, "sex"),
        [Some("M".to_string()), Some("F".to_string())]
    );
}

#[test]
fn parquet_with_typed_columns_is_checked_like_csv() {
    let dir = Workdir::new("typed-parquet");
    let path = dir.join("patients.parquet");
    let mut df = df![
        "patient_id" => ["A", "B", "C"],
        "practice_code" => ["A81001", "A81001", "bad"],
        "lsoa_code" => ["E01012345", "E01012345", "E01012345"],
        "sex" => ["F", "M", "F"],
        "age" => [30i64, 200, 40],
        "diabetes" => [true, false, true],
    ]
    .expect("frame");
    ParquetWriter::new(std::fs::File::create(&path).expect("create"))
        .finish(&mut df)
        .expect("write");
    let table = read(InputKind::Patients, &path);
    let got = reasons(&table);
    assert_eq!(
        got,
        [
            (2, "age".to_string(), "above the maximum of 120".to_string()),
            (3, "practice_code".to_string(), "not a valid practice code (expected an ODS practice code: a letter and 5 digits, e.g. A81001)".to_string()),
        ]
    );
    let accepted = collect(&table);
    assert_eq!(accepted.height(), 1);
    assert_eq!(
        accepted.column("diabetes").expect("wide condition").dtype(),
        &DataType::Boolean
    );
}

#[test]
fn every_reader_survives_every_malformed_fixture() {
    let malformed = [
        "empty.csv",
        "header_only.csv",
        "ragged.csv",
        "stray_quotes.csv",
        "embedded_newline.csv",
        "latin1.csv",
        "patients_bad_rows.csv",
        "patients_missing_column.csv",
        "conditions_mixed.csv",
        "epraccur_head.csv",
    ];
    for kind in InputKind::ALL {
        for name in malformed {
            // Any outcome but a panic is acceptable here; errors must name the file.
            match read_table(kind, &fixture(name), &options()) {
                Ok(table) => {
                    let _ = table
                        .frame
                        .clone()
                        .collect()
                        .expect("accepted rows collect");
                }
                Err(e) => assert!(e.to_string().contains(name), "{kind} on {name}: {e}"),
            }
        }
    }
}
