//! Indicators and gradients on real practice-level figures (QOF smoking, Fingertips 91547):
//! sums across footprints, Wilson limits, practice deprivation deciles.

use std::collections::HashMap;
use std::path::Path;

use healthgap::config::Config;
use healthgap::ingest::{InputKind, ReadOptions, read_table};
use healthgap::output::Printer;
use healthgap::stats::Confidence;
use polars::prelude::*;

use crate::harness::{Workdir, data_dir, repo};

fn read(path: &Path) -> DataFrame {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .and_then(|lf| lf.collect())
    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The example config, unrounded (disclosure off) and with a short simulation.
fn example_config(dir: &Workdir) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(repo().join("healthgap.toml")).expect("example config");
    text = text.replace("\"data/", &format!("\"{}/", data_dir().display()));
    text.push_str("\n[disclosure]\nenabled = false\n\n[gradient]\nrepetitions = 1000\n");
    dir.create("healthgap.toml", text)
}

/// The example config, run once.
fn example_run(dir: &Workdir) -> std::path::PathBuf {
    let config = example_config(dir);
    let root = dir.join("out");
    dir.run_pipeline(&config, &root, "m1").expect_code(0);
    root.join("m1")
}

fn sums_by(rows: &DataFrame, key: &str) -> HashMap<String, (f64, f64)> {
    let keys = rows.column(key).expect("key").str().expect("str").clone();
    let num = rows
        .column("numerator")
        .expect("n")
        .f64()
        .expect("f")
        .clone();
    let den = rows
        .column("denominator")
        .expect("d")
        .f64()
        .expect("f")
        .clone();
    let mut out: HashMap<String, (f64, f64)> = HashMap::new();
    for i in 0..rows.height() {
        if let Some(k) = keys.get(i) {
            let e = out.entry(k.to_string()).or_default();
            e.0 += num.get(i).unwrap_or(0.0);
            e.1 += den.get(i).unwrap_or(0.0);
        }
    }
    out
}

#[test]
fn practice_figures_sum_to_pcns_icbs_and_england_with_wilson_limits() {
    let dir = Workdir::new("measure-practice");
    let run = example_run(&dir);
    let indicators = read(&run.join("indicators.parquet"));
    let all = |kind: &str| {
        indicators
            .clone()
            .lazy()
            .filter(
                col("breakdown")
                    .eq(lit("all"))
                    .and(col("footprint_kind").eq(lit(kind))),
            )
            .collect()
            .expect("filter")
    };
    let practices = all("practice");
    assert_eq!(
        practices.height(),
        6_378,
        "every practice with 2022/23 figures"
    );

    // Each practice's PCN as at the extract date, and its parent ICB, from the readers.
    let options = ReadOptions {
        format: None,
        extract_date: chrono::NaiveDate::from_ymd_opt(2023, 2, 1),
    };
    let members = read_table(
        InputKind::EpcnMembers,
        &data_dir().join("epcn_members_2023-02.parquet"),
        &options,
    )
    .expect("epcn")
    .frame
    .filter(col("membership_end").is_null())
    .select([col("practice_code"), col("pcn_code")]);
    let parents = read_table(
        InputKind::Epraccur,
        &data_dir().join("epraccur_2023-02.parquet"),
        &options,
    )
    .expect("epraccur")
    .frame
    .select([col("practice_code"), col("icb_code")]);
    let joined = practices
        .clone()
        .lazy()
        .join(
            members,
            [col("footprint_code")],
            [col("practice_code")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            parents,
            [col("footprint_code")],
            [col("practice_code")],
            JoinArgs::new(JoinType::Left),
        )
        .collect()
        .expect("join");
    let icb_missing = joined.column("icb_code").expect("icb").null_count();
    assert_eq!(
        icb_missing, 0,
        "every practice in the file is attributed to an ICB"
    );

    for (kind, key) in [("pcn", "pcn_code"), ("icb", "icb_code")] {
        let expected = sums_by(&joined, key);
        let got = all(kind);
        assert_eq!(got.height(), expected.len(), "{kind}");
        let codes = got
            .column("footprint_code")
            .expect("code")
            .str()
            .expect("str")
            .clone();
        let num = got
            .column("numerator")
            .expect("n")
            .f64()
            .expect("f")
            .clone();
        let den = got
            .column("denominator")
            .expect("d")
            .f64()
            .expect("f")
            .clone();
        for i in 0..got.height() {
            let code = codes.get(i).expect("code");
            let (x, n) = expected[code];
            assert_eq!(num.get(i), Some(x), "{kind} {code} numerator");
            assert_eq!(den.get(i), Some(n), "{kind} {code} denominator");
        }
    }
    let england = all("england");
    let practice_total = sums_by(
        &practices
            .clone()
            .lazy()
            .with_column(lit("E").alias("k"))
            .collect()
            .expect("k"),
        "k",
    )["E"];
    assert_eq!(
        england
            .column("numerator")
            .expect("n")
            .f64()
            .expect("f")
            .get(0),
        Some(practice_total.0)
    );
    assert_eq!(
        england
            .column("denominator")
            .expect("d")
            .f64()
            .expect("f")
            .get(0),
        Some(practice_total.1)
    );
    let icb_total = sums_by(
        &all("icb")
            .lazy()
            .with_column(lit("E").alias("k"))
            .collect()
            .expect("k"),
        "k",
    )["E"];
    assert_eq!(icb_total, practice_total, "England is the sum of its ICBs");

    // Limits are Wilson's, as the reference computes them, on every row.
    let levels = [
        Confidence::new(0.95).expect("95"),
        Confidence::new(0.998).expect("99.8"),
    ];
    for table in [&england, &all("icb")] {
        for i in 0..table.height() {
            let x = table
                .column("numerator")
                .expect("n")
                .f64()
                .expect("f")
                .get(i)
                .expect("x");
            let n = table
                .column("denominator")
                .expect("d")
                .f64()
                .expect("f")
                .get(i)
                .expect("n");
            let want = healthgap::stats::proportion::proportion(x, n, &levels, 100.0)
                .expect("wilson")
                .expect("estimate");
            let got = |c: &str| {
                table
                    .column(c)
                    .expect(c)
                    .f64()
                    .expect("f")
                    .get(i)
                    .expect("value")
            };
            assert!((got("value") - want.value).abs() < 1e-9);
            assert!((got("lower95_0cl") - want.limits[0].lower).abs() < 1e-9);
            assert!((got("upper99_8cl") - want.limits[1].upper).abs() < 1e-9);
        }
    }

    // The smoking gradient is steep and significant nationally (higher in deprived practices).
    let inequality = read(&run.join("inequality.parquet"));
    let national = inequality
        .lazy()
        .filter(col("footprint_kind").eq(lit("england")))
        .collect()
        .expect("england");
    let sii = national
        .column("sii")
        .expect("sii")
        .f64()
        .expect("f")
        .get(0)
        .expect("sii");
    let upper = national
        .column("sii_upper95_0cl")
        .expect("u")
        .f64()
        .expect("f")
        .get(0)
        .expect("u");
    assert!(sii < -10.0 && upper < 0.0, "SII {sii}, upper {upper}");
}

#[test]
fn practice_deprivation_deciles_hold_a_tenth_of_registered_people_each() {
    let mut text = std::fs::read_to_string(repo().join("healthgap.toml")).expect("example config");
    text = text.replace("\"data/", &format!("\"{}/", data_dir().display()));
    let config = Config::from_toml(&text, &repo().join("healthgap.toml")).expect("config");
    let ingested = healthgap::pipeline::ingest::ingest(&config, &Printer::silent(), None);
    let deciles = healthgap::pipeline::practice_outcomes::practice_deciles(
        &ingested,
        &config.practice_deprivation,
    )
    .expect("deciles");
    let totals = deciles
        .lazy()
        .group_by([col("practice_deprivation_decile")])
        .agg([col("population").sum()])
        .collect()
        .expect("totals");
    let population: Vec<f64> = totals
        .column("population")
        .expect("p")
        .f64()
        .expect("f")
        .iter()
        .flatten()
        .collect();
    let total: f64 = population.iter().sum();
    assert_eq!(population.len(), 10);
    for share in population.iter().map(|p| p / total) {
        assert!(
            (0.09..=0.11).contains(&share),
            "a decile holds {share:.3} of registered people"
        );
    }
}

#[test]
fn a_practice_level_run_says_so_when_it_completes() {
    let dir = Workdir::new("measure-practice-level-note");
    let config = example_config(&dir).display().to_string();
    let out = dir.join("out").display().to_string();
    let run = dir.run(&["run", "--config", &config, "--out", &out, "--run-id", "p1"]);
    run.expect_code(0);
    let stderr = run.stderr();
    // No registered list: the run is not "0 registered people".
    assert!(
        stderr
            .contains("run p1 complete: practice-level (no registered list), 0 input rows refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("registered people,"), "{stderr}");
}
