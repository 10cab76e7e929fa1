//! Bounded fuzzing of every reader (issue 10): generated CSV bytes for each input kind, damaged
//! Parquet files, and generated GeoJSON for the footprint reader.
//!
//! Each case must end, within a generous limit that only catches a hang, in either a table
//! whose accepted rows collect (as many as the report says were accepted) or an `InputError`
//! naming the file; never a panic. The generators mix what published files really hold (the
//! contract's headers and aliases, codes, dates, counts, suppression markers) with what breaks
//! parsers (quotes, separators, CR/LF, BOMs, invalid UTF-8, very long fields, cut-off records).
//!
//! Cases: 32 per CSV reader, 128 damaged Parquet files and 256 GeoJSON files by default (the
//! suite runs in well under a minute in a debug build); `PROPTEST_CASES=N` scales them all.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use healthgap::ingest::{InputKind, ReadOptions, read_footprints, read_table};
use polars::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Long enough that only a hang trips it: a case normally takes milliseconds.
const HANG: Duration = Duration::from_secs(120);

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

fn runner(scale: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases() * scale,
        // Failures are reported with their input; nothing is written into the source tree.
        failure_persistence: None,
        ..Config::default()
    })
}

/// Run `work` on its own thread: `Err` with the panic message, or when it does not answer
/// within [`HANG`] (the thread is then left behind and the test fails).
fn guarded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(AssertUnwindSafe(work));
        let _ = sender.send(result);
    });
    match receiver.recv_timeout(HANG) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("no answer within {HANG:?}: a hang")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the reader's thread died".into()),
    }
}

fn options() -> ReadOptions {
    ReadOptions {
        format: None,
        extract_date: chrono::NaiveDate::from_ymd_opt(2023, 2, 1),
    }
}

/// How a read ended: a table (the values were checked), or an error naming the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Table,
    Error,
}

/// What every read must satisfy, as a message when it does not.
fn check_read(kind: InputKind, path: PathBuf) -> Result<Ended, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    guarded(move || match read_table(kind, &path, &options()) {
        Ok(table) => {
            let accepted = table
                .frame
                .clone()
                .collect()
                .map_err(|e| format!("accepted rows do not collect: {e}"))?;
            let report = &table.report;
            if accepted.height() as u64 != report.rows_accepted
                || report.rows_accepted + report.rows_rejected != report.rows_read
            {
                return Err(format!(
                    "rows lost: {} read, {} accepted, {} rejected, {} collected",
                    report.rows_read,
                    report.rows_accepted,
                    report.rows_rejected,
                    accepted.height()
                ));
            }
            table
                .rejects_frame()
                .map_err(|e| format!("rejects do not form a table: {e}"))?;
            Ok(Ended::Table)
        }
        Err(e) if e.to_string().contains(&name) => Ok(Ended::Error),
        Err(e) => Err(format!("error does not name the file: {e}")),
    })?
}

/// Run a reader's cases and say how many got as far as a table (so a generator that only
/// produces unreadable headers shows).
fn fuzz(
    label: &str,
    scale: u32,
    strategy: impl Strategy<Value = Bytes>,
    read: impl Fn(&Bytes) -> Result<Ended, String>,
) {
    let tables = std::cell::Cell::new(0u32);
    let total = std::cell::Cell::new(0u32);
    runner(scale)
        .run(&strategy, |bytes| {
            let ended = read(&bytes).map_err(TestCaseError::fail)?;
            total.set(total.get() + 1);
            tables.set(tables.get() + u32::from(ended == Ended::Table));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    eprintln!(
        "{label}: {} of {} cases read as a table, the rest refused with an error",
        tables.get(),
        total.get()
    );
}

/// Generated file bytes, shown as (lossy) text when a case fails.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.0);
        if text.len() > 2000 {
            write!(
                f,
                "{} bytes: {:?}…",
                self.0.len(),
                &text[..text.floor_char_boundary(2000)]
            )
        } else {
            write!(f, "{text:?}")
        }
    }
}

// --- CSV -----------------------------------------------------------------------------------------

/// One cell, as bytes: real values, published markers and parser-breakers.
fn field() -> impl Strategy<Value = Vec<u8>> {
    let text = |values: &'static [&'static str]| {
        prop::sample::select(values).prop_map(|v| v.as_bytes().to_vec())
    };
    prop_oneof![
        6 => text(&[
            "", " ", "E01012298", "E01033477", "W01000001", "E01035000", "e01012298 ", "A81001",
            "a81002", "A84035", "U89141", "QHM", "E54000050", "E92000001", "Y00001", "M", "F",
            "1", "2", "9", "0", "I", "U", "MALE", "FEMALE", "ALL", "A", "Z", "H", "34", "0",
            "120", "121", "-1", "3.5", "1e3", "2023-02-01", "20230201", "01/02/2023",
            "31/02/2023", "2099-12-31", "01JAN2021", "Y", "N", "TRUE", "yes", "diabetes",
            "hypertension", "93553", "2021/22", "Persons", "GP", "England", "0-4", "90+",
            "Active", "C",
        ]),
        2 => text(&["NA", "N/A", "*", "..", ".", "-", ":", "x", "NULL", "null"]),
        2 => text(&[
            "1,234", "\"1,234\"", "\"1,204,000.5\"", "1,2", "99999999999999999999", "1e308",
            "-1e308", "1e400", "NaN", "inf", "-0", "0x1F", "9007199254740993", "+5", "٣",
        ]),
        2 => text(&[
            "\"quoted\"", "\"with, comma\"", "\"with \"\"quotes\"\"\"", "\"line\nbreak\"",
            "\"cr\rlf\r\n\"", "a\"b", "\"unterminated", "\"\"", "\"a\"b", "'single'",
        ]),
        1 => Just(vec![0xEF, 0xBB, 0xBF]),
        1 => prop::collection::vec(any::<u8>(), 0..24),
        1 => Just("Hôpital Sainte-Thérèse".as_bytes().to_vec()),
        1 => Just(b"Caf\xe9 St Mary\x92s".to_vec()),
        1 => Just(vec![0xFF, 0xFE, 0x00, 0x41]),
        1 => (1usize..70_000).prop_map(|n| vec![b'x'; n]),
    ]
}

/// The contract's headers, mostly every required column (by its name or an alias) and some
/// optional ones in random order; sometimes junk; for header-less kinds, mostly none. With the
/// number of fields a row should have.
fn header(kind: InputKind) -> impl Strategy<Value = (Option<Vec<Vec<u8>>>, usize)> {
    let contract = kind.contract();
    let spellings = |name: &str| -> Vec<Vec<u8>> {
        let mut names = vec![name.as_bytes().to_vec()];
        if let Some(column) = contract.column(name) {
            names.extend(column.aliases.iter().map(|a| a.as_bytes().to_vec()));
        }
        names
    };
    let mut required: Vec<&str> = contract
        .columns
        .iter()
        .filter(|c| c.required)
        .map(|c| c.name)
        .collect();
    required.extend(
        contract
            .one_of
            .iter()
            .filter_map(|group| group.first().copied()),
    );
    let optional: Vec<Vec<Vec<u8>>> = contract
        .columns
        .iter()
        .filter(|c| !required.contains(&c.name))
        .map(|c| spellings(c.name))
        .collect();
    let required: Vec<Vec<Vec<u8>>> = required.iter().map(|n| spellings(n)).collect();
    let optional_count = optional.len();
    let named = (
        required
            .into_iter()
            .map(prop::sample::select)
            .collect::<Vec<_>>(),
        prop::sample::subsequence(optional, 0..=optional_count).prop_flat_map(|columns| {
            columns
                .into_iter()
                .map(prop::sample::select)
                .collect::<Vec<_>>()
        }),
    )
        .prop_map(|(mut required, optional)| {
            required.extend(optional);
            required
        })
        .prop_shuffle()
        .prop_map(|names| {
            let width = names.len();
            (Some(names), width)
        });
    let junk = prop::collection::vec(field(), 0..8).prop_map(|names| {
        let width = names.len();
        (Some(names), width)
    });
    match contract.header {
        healthgap::ingest::contract::HeaderMode::Positional(positions) => {
            let width = positions.iter().map(|(p, _)| p + 1).max().unwrap_or(1);
            prop_oneof![4 => Just((None, width)), 1 => junk].boxed()
        }
        healthgap::ingest::contract::HeaderMode::Named => {
            prop_oneof![5 => named, 1 => junk].boxed()
        }
    }
}

/// A whole CSV file: optional BOM, a header, rows of fields (mostly as many as the header has),
/// a separator and line ending per file (mixed endings inside come from the fields), maybe cut
/// off anywhere.
fn csv_file(kind: InputKind) -> impl Strategy<Value = Bytes> {
    (
        any::<bool>(),
        prop::sample::select(vec![b',', b',', b',', b'\t', b';']),
        prop::sample::select(vec!["\n", "\n", "\r\n", "\r"]),
        header(kind).prop_flat_map(|(header, width)| {
            let row = prop_oneof![
                4 => prop::collection::vec(field(), width..=width),
                1 => prop::collection::vec(field(), 0..width + 3),
            ];
            (Just(header), prop::collection::vec(row, 0..10))
        }),
        prop::option::weighted(0.2, any::<prop::sample::Index>()),
    )
        .prop_map(|(bom, separator, eol, (header, rows), cut)| {
            let mut bytes = Vec::new();
            if bom {
                bytes.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
            }
            for record in header.iter().chain(&rows) {
                bytes.extend_from_slice(&record.join(&separator));
                bytes.extend_from_slice(eol.as_bytes());
            }
            if let Some(cut) = cut
                && !bytes.is_empty()
            {
                bytes.truncate(cut.index(bytes.len()));
            }
            Bytes(bytes)
        })
}

fn fuzz_csv(kind: InputKind) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("fuzz_{}.csv", kind.name()));
    fuzz(kind.name(), 1, csv_file(kind), |bytes| {
        std::fs::write(&path, &bytes.0).expect("write case");
        check_read(kind, path.clone())
    });
}

macro_rules! fuzz_csv_readers {
    ($($test:ident => $kind:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                fuzz_csv(InputKind::$kind);
            }
        )*

        /// Every kind has its fuzz target (a new kind without one fails here).
        #[test]
        fn every_input_kind_is_fuzzed() {
            let fuzzed = [$(InputKind::$kind),*];
            for kind in InputKind::ALL {
                assert!(fuzzed.contains(&kind), "no fuzz target for {kind}");
            }
        }
    };
}

fuzz_csv_readers! {
    csv_patients => Patients,
    csv_conditions => Conditions,
    csv_outcomes => Outcomes,
    csv_practice_lsoa => PracticeLsoa,
    csv_practice_totals => PracticeTotals,
    csv_practice_ages => PracticeAges,
    csv_practice_outcomes => PracticeOutcomes,
    csv_iod2019 => Iod2019,
    csv_iod2025 => Iod2025,
    csv_wimd2019 => Wimd2019,
    csv_epcn_members => EpcnMembers,
    csv_epcn_pcns => EpcnPcns,
    csv_practice_map => PracticeMap,
    csv_epraccur => Epraccur,
    csv_icb_codes => IcbCodes,
    csv_lsoa_centroids => LsoaCentroids,
    csv_lsoa_lookup => LsoaLookup,
    csv_esp2013 => Esp2013,
}

// --- Parquet -------------------------------------------------------------------------------------

/// A small, valid patients Parquet file to damage.
fn parquet_bytes() -> Vec<u8> {
    let mut frame = df![
        "patient_id" => ["P1", "P2", "P3", "P4"],
        "practice_code" => ["A81001", "A81001", "A81002", "bad"],
        "lsoa_code" => [Some("E01012298"), None, Some("E01012187"), Some("E01012187")],
        "sex" => ["F", "M", "F", "X"],
        "age" => [34i64, 67, 8, 200],
        "diabetes" => [true, false, true, false],
    ]
    .expect("frame");
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(&mut frame)
        .expect("write parquet");
    bytes
}

#[test]
fn damaged_parquet_files() {
    let original = parquet_bytes();
    let len = original.len();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fuzz_patients.parquet");
    let damaged = (
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    )
        .prop_map(move |(cut, flips)| {
            let mut bytes = original.clone();
            for (at, byte) in flips {
                bytes[at.index(len)] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(len));
            }
            Bytes(bytes)
        });
    fuzz("parquet", 4, damaged, |bytes| {
        std::fs::write(&path, &bytes.0).expect("write case");
        check_read(InputKind::Patients, path.clone())
    });
}

// --- GeoJSON -------------------------------------------------------------------------------------

fn coordinate() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        100 => (-3.0f64..2.0, 50.0f64..56.0).prop_map(|(x, y)| serde_json::json!([x, y])),
        1 => prop::sample::select(vec![
            serde_json::json!([1e300, -1e300]),
            serde_json::json!([0.0]),
            serde_json::json!([]),
            serde_json::json!(["a", "b"]),
            serde_json::json!([1.0, 2.0, 3.0, 4.0]),
            serde_json::json!(null),
        ]),
    ]
}

fn ring() -> impl Strategy<Value = serde_json::Value> {
    let valid = (-3.0f64..2.0, 50.0f64..56.0, 0.01f64..1.0).prop_map(|(x, y, d)| {
        serde_json::json!([[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]])
    });
    let any_ring = (prop::collection::vec(coordinate(), 0..7), any::<bool>()).prop_map(
        |(mut points, close)| {
            if close && let Some(first) = points.first().cloned() {
                points.push(first);
            }
            serde_json::Value::Array(points)
        },
    );
    prop_oneof![8 => valid, 1 => any_ring]
}

fn geometry() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        40 => prop::collection::vec(ring(), 0..3)
            .prop_map(|rings| serde_json::json!({"type": "Polygon", "coordinates": rings})),
        20 => prop::collection::vec(prop::collection::vec(ring(), 0..3), 0..3)
            .prop_map(|polygons| serde_json::json!({"type": "MultiPolygon", "coordinates": polygons})),
        1 => coordinate().prop_map(|c| serde_json::json!({"type": "Point", "coordinates": c})),
        1 => ring().prop_map(|c| serde_json::json!({"type": "LineString", "coordinates": c})),
        1 => Just(serde_json::json!({"type": "GeometryCollection", "geometries": []})),
        1 => Just(serde_json::json!(null)),
        1 => Just(serde_json::json!({"type": "Polygon"})),
        1 => Just(serde_json::json!({"type": "Hexagon", "coordinates": [[0, 0]]})),
    ]
}

fn property_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        4 => prop::sample::select(vec!["E54000050", "QHM", "", " ", "Ünïcode ICB", "E54000050"])
            .prop_map(|s| serde_json::json!(s)),
        1 => any::<i64>().prop_map(|n| serde_json::json!(n)),
        1 => Just(serde_json::json!(null)),
        1 => Just(serde_json::json!(true)),
        1 => Just(serde_json::json!({"nested": [1, 2]})),
    ]
}

fn feature() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::collection::btree_map(
            prop::sample::select(vec![
                "ICB22CD", "ICB22CD", "ICB22NM", "code", "name", "OBJECTID", "x",
            ]),
            property_value(),
            1..5,
        ),
        geometry(),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(properties, geometry, has_properties)| {
            let mut feature = serde_json::json!({"type": "Feature", "geometry": geometry});
            if has_properties {
                feature["properties"] = serde_json::json!(properties);
            }
            feature
        })
}

fn geojson_file() -> impl Strategy<Value = Bytes> {
    (
        prop::collection::vec(feature(), 0..8),
        prop_oneof![
            6 => Just("FeatureCollection"),
            1 => Just("Feature"),
            1 => Just("Topology"),
        ],
        any::<bool>(),
        prop::option::weighted(0.15, any::<prop::sample::Index>()),
        prop::option::weighted(0.15, (any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|(features, kind, bom, cut, flip)| {
            let document = serde_json::json!({"type": kind, "features": features});
            let mut bytes = Vec::new();
            if bom {
                bytes.extend_from_slice("\u{feff}".as_bytes());
            }
            bytes.extend_from_slice(document.to_string().as_bytes());
            let len = bytes.len();
            if let Some((at, byte)) = flip {
                bytes[at.index(len)] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(len));
            }
            Bytes(bytes)
        })
}

fn check_footprints(path: PathBuf, code_property: Option<&'static str>) -> Result<Ended, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    guarded(move || match read_footprints(&path, code_property, None) {
        Ok(read) => {
            let total = read.report.rows_read;
            if read.features.len() as u64 + read.rejects.len() as u64 != total {
                return Err(format!(
                    "{} features + {} rejects != {total} read",
                    read.features.len(),
                    read.rejects.len()
                ));
            }
            Ok(Ended::Table)
        }
        Err(e) if e.to_string().contains(&name) => Ok(Ended::Error),
        Err(e) => Err(format!("error does not name the file: {e}")),
    })?
}

#[test]
fn geojson_footprints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fuzz_footprints.geojson");
    fuzz("geojson", 8, geojson_file(), |bytes| {
        std::fs::write(&path, &bytes.0).expect("write case");
        // Every other case names the code property, as a config may.
        let code = (bytes.0.len() % 2 == 0).then_some("ICB22CD");
        check_footprints(path.clone(), code)
    });
}

/// The reader given a path that is a folder, missing, or unreadable bytes with each extension.
#[test]
fn paths_that_are_not_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("folder.csv");
    std::fs::create_dir(&folder).expect("folder");
    let missing = dir.path().join("missing.csv");
    let no_extension = dir.path().join("noextension");
    std::fs::write(&no_extension, "a,b\n1,2\n").expect("write");
    for path in [&folder, &missing, &no_extension] {
        for kind in InputKind::ALL {
            check_read(kind, path.to_path_buf()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
        check_footprints(path.to_path_buf(), None).unwrap_or_else(|e| panic!("footprints: {e}"));
    }
}
