//! `healthgap stats`: the reference vectors through the real binary, grouping, column names and
//! exit code 2 for bad input.

use crate::harness::{Workdir, parse_csv, split};

fn column<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let index = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    row[index].as_str()
}

fn close(actual: &str, expected: &str, what: &str) {
    if expected.is_empty() {
        assert!(actual.is_empty(), "{what}: expected empty, got {actual}");
        return;
    }
    let (a, e): (f64, f64) = (
        actual.parse().expect("a number"),
        expected.parse().expect("a number"),
    );
    let diff = if e == 0.0 {
        (a - e).abs()
    } else {
        ((a - e) / e).abs()
    };
    assert!(diff <= 1e-9, "{what}: got {a}, expected {e}");
}

#[test]
fn stats_rate_reproduces_the_rate_vectors() {
    let dir = Workdir::new("stats-rate");
    dir.fixture("vectors/rate_input_expected.csv");
    let run = dir.run(&[
        "stats",
        "rate",
        "rate_input_expected.csv",
        "--x",
        "Numerator",
        "--n",
        "Denominator",
        "--confidence",
        "0.95,0.998",
        "--multiplier",
        "100000",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let (header, rows) = parse_csv(&run.stdout());
    let expected =
        std::fs::read_to_string(dir.path().join("rate_input_expected.csv")).expect("fixture");
    let (exp_header, exp_rows) = parse_csv(&expected);
    // Rows 9-20 of the sheet are the multiplier-100000 rows.
    for (row, exp) in rows.iter().zip(&exp_rows).skip(8) {
        for name in ["lower95_0cl", "upper95_0cl", "lower99_8cl", "upper99_8cl"] {
            // The input sheet carries its own expected columns; ours are the last ones.
            let ours = header
                .iter()
                .rposition(|h| h == name)
                .map(|i| row[i].as_str())
                .unwrap_or_default();
            close(
                ours,
                column(&exp_header, exp, name),
                &format!("{} {name}", exp[0]),
            );
        }
    }
    assert_eq!(rows.len(), 20);
}

#[test]
fn stats_proportion_group_by_sums_and_names_columns() {
    let dir = Workdir::new("stats-proportion");
    dir.fixture("vectors/proportion_input_expected.csv");
    dir.fixture("vectors/proportion_grouped_expected.csv");
    let run = dir.run(&[
        "stats",
        "proportion",
        "proportion_input_expected.csv",
        "--x",
        "Numerator",
        "--n",
        "Denominator",
        "--group-by",
        "Area",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let (header, rows) = parse_csv(&run.stdout());
    assert_eq!(
        header,
        [
            "Area",
            "Numerator",
            "Denominator",
            "value",
            "lowercl",
            "uppercl",
            "confidence",
            "statistic",
            "method"
        ]
    );
    let expected = std::fs::read_to_string(dir.path().join("proportion_grouped_expected.csv"))
        .expect("fixture");
    let (exp_header, exp_rows) = parse_csv(&expected);
    assert_eq!(rows.len(), exp_rows.len());
    for (row, exp) in rows.iter().zip(&exp_rows) {
        assert_eq!(row[0], exp[0]);
        for name in ["value", "lowercl", "uppercl"] {
            close(
                column(&header, row, name),
                column(&exp_header, exp, name),
                &format!("{} {name}", exp[0]),
            );
        }
    }
}

#[test]
fn stats_dsr_and_isr_match_the_vectors() {
    let dir = Workdir::new("stats-dsr");
    dir.fixture("vectors/sysdata/test_multiarea_esp.csv");
    dir.fixture("vectors/isr_input_multiarea_ownref.csv");
    let run = dir.run(&[
        "stats",
        "dsr",
        "test_multiarea_esp.csv",
        "--x",
        "count",
        "--n",
        "pop",
        "--stdpop",
        "esp2013",
        "--group-by",
        "area",
        "--confidence",
        "95,0.998",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let (header, rows) = parse_csv(&run.stdout());
    assert_eq!(&header[..4], ["area", "total_count", "total_pop", "value"]);
    close(
        column(&header, &rows[0], "value"),
        "10430.247991469423",
        "dsr big",
    );
    close(
        column(&header, &rows[1], "upper99_8cl"),
        "1530.0328948244762",
        "dsr small",
    );
    assert_eq!(column(&header, &rows[2], "value"), "", "tiny is suppressed");

    let run = dir.run(&[
        "stats",
        "isratio",
        "isr_input_multiarea_ownref.csv",
        "--x",
        "count",
        "--n",
        "pop",
        "--x-ref",
        "refcount",
        "--n-ref",
        "refpop",
        "--group-by",
        "area",
        "--multiplier",
        "100",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let (header, rows) = parse_csv(&run.stdout());
    close(
        column(&header, &rows[0], "value"),
        "107.07232939020275",
        "isratio big",
    );
    close(
        column(&header, &rows[2], "lowercl"),
        "0.4923380825095776",
        "isratio tiny",
    );
}

fn sii_rows(first: usize, last: usize) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vectors/sii_input.csv"
    ))
    .expect("fixture");
    let mut lines = text.lines();
    let mut out = String::from(lines.next().unwrap_or_default());
    out.push('\n');
    for line in lines.skip(first - 1).take(last - first + 1) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn stats_sii_columns_and_values() {
    let dir = Workdir::new("stats-sii");
    dir.create("sii.csv", sii_rows(1, 20));
    let args = [
        "stats",
        "sii",
        "sii.csv",
        "--group-by",
        "Area",
        "--quantile",
        "Quantile",
        "--population",
        "Population",
        "--value",
        "Value",
        "--se",
        "StandardError",
        "--rii",
        "--confidence",
        "95,99.8",
        "--intercept",
        "--seed",
        "3",
    ];
    let run = dir.run(&args);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let (header, rows) = parse_csv(&run.stdout());
    assert_eq!(
        header,
        [
            "Area",
            "sii",
            "rii",
            "sii_lower95_0cl",
            "sii_upper95_0cl",
            "sii_lower99_8cl",
            "sii_upper99_8cl",
            "rii_lower95_0cl",
            "rii_upper95_0cl",
            "rii_lower99_8cl",
            "rii_upper99_8cl",
            "intercept"
        ]
    );
    assert_eq!(rows.len(), 2);
    close(
        column(&header, &rows[0], "sii"),
        "6.934616473668819",
        "area1 sii",
    );
    close(
        column(&header, &rows[1], "rii"),
        "1.180885620848795",
        "area2 rii",
    );
    close(
        column(&header, &rows[0], "intercept"),
        "78.07663078231671",
        "area1 intercept",
    );
    let lower: f64 = column(&header, &rows[0], "sii_lower95_0cl")
        .parse()
        .expect("number");
    assert!(
        (lower - 3.127594617650817).abs() / 3.127594617650817 < 0.05,
        "lower {lower}"
    );
    // Same seed, same output.
    assert_eq!(dir.run(&args).stdout(), run.stdout());
}

#[test]
fn stats_sii_drops_incomplete_groups_with_a_warning() {
    let dir = Workdir::new("stats-sii-drop");
    let text = sii_rows(1, 20);
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 16)
        .map(|(_, l)| l)
        .collect();
    dir.create("sii.csv", &(kept.join("\n") + "\n"));
    let run = dir.run(&[
        "stats",
        "sii",
        "sii.csv",
        "--group-by",
        "Area",
        "--quantile",
        "Quantile",
        "--population",
        "Population",
        "--value",
        "Value",
        "--se",
        "StandardError",
        "--repetitions",
        "1000",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stderr().contains("some records have been removed"),
        "{}",
        run.stderr()
    );
    assert_eq!(parse_csv(&run.stdout()).1.len(), 1);
}

#[test]
fn stats_bad_input_exits_2_naming_group_and_column() {
    let dir = Workdir::new("stats-errors");
    dir.create("rates.csv", "pcn,deaths,pop\nA,3,100\nB,-1,100\n");
    let run = dir.run(&[
        "stats",
        "rate",
        "rates.csv",
        "--x",
        "deaths",
        "--n",
        "pop",
        "--group-by",
        "pcn",
    ]);
    assert_eq!(run.code(), 2);
    let stderr = run.stderr();
    assert!(stderr.contains("group pcn=B"), "{stderr}");
    assert!(stderr.contains("column \"deaths\""), "{stderr}");
    assert!(
        stderr.contains("numerators must be greater than or equal to zero"),
        "{stderr}"
    );

    let run = dir.run(&["stats", "rate", "rates.csv", "--x", "events", "--n", "pop"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("column \"events\" not found"),
        "{}",
        run.stderr()
    );

    let run = dir.run(&[
        "stats",
        "rate",
        "rates.csv",
        "--x",
        "deaths",
        "--n",
        "pop",
        "--confidence",
        "0.8",
    ]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr()
            .contains("confidence level must be between 90 and 100"),
        "{}",
        run.stderr()
    );

    dir.create("sii.csv", sii_rows(151, 160));
    let run = dir.run(&[
        "stats",
        "sii",
        "sii.csv",
        "--group-by",
        "Area",
        "--quantile",
        "Quantile",
        "--population",
        "Population",
        "--value",
        "Value",
        "--se",
        "StandardError",
    ]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("group Area=area1, column \"Population\": some groups have a zero, negative or missing population"), "{}", run.stderr());
}

#[test]
fn stats_quantile_and_funnel_run_on_the_vectors() {
    let dir = Workdir::new("stats-quantile");
    dir.fixture("vectors/funnel_ratio_input_significance.csv");
    let run = dir.run(&[
        "stats",
        "funnel",
        "funnel_ratio_input_significance.csv",
        "--statistic",
        "ratio",
        "--x",
        "obs",
        "--n",
        "expected",
        "--significance",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for line in run.stdout().lines().skip(1) {
        let cells = split(line);
        assert_eq!(cells[2], cells[3], "{line}");
    }
    let run = dir.run(&[
        "stats",
        "funnel",
        "funnel_ratio_input_significance.csv",
        "--statistic",
        "ratio",
        "--x",
        "obs",
        "--n",
        "expected",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.stdout().lines().count(), 101);

    dir.create(
        "areas.csv",
        "area,score,pop\nA,40,300\nB,10,100\nC,30,100\nD,20,100\n",
    );
    let run = dir.run(&[
        "stats",
        "quantile",
        "areas.csv",
        "--value",
        "score",
        "--population",
        "pop",
        "--nquantiles",
        "2",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let quantiles: Vec<String> = run
        .stdout()
        .lines()
        .skip(1)
        .map(|l| split(l)[3].clone())
        .collect();
    assert_eq!(quantiles, ["1", "2", "2", "2"]);
}
