//! `healthgap report` and the pack `healthgap demo` writes: files, self-containment, every
//! section and chart, numbers against the run's tables, suppressed values, user errors, and the
//! page rendered in headless Chromium (skipped, saying so, when Chromium is not installed).
//!
//! One PCN-scale demo run per test process (about a minute and a half in a debug build) serves
//! every test here; `--all` runs on the pipeline tests' published ICB sample.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use polars::prelude::*;

use crate::harness::Workdir;

/// The sections every pack has, by anchor id.
const SECTIONS: &[&str] = &[
    "summary",
    "profile",
    "segments",
    "gradients",
    "cohorts",
    "map",
    "trend",
    "methods",
    "definitions",
];

/// The demo: its run folder, the pack it wrote and the PCN.
struct Demo {
    run: PathBuf,
    pack: PathBuf,
    pcn: String,
}

/// `healthgap demo --scale pcn`, once per process.
fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("report")
            .join("demo");
        let _ = std::fs::remove_dir_all(&root);
        let output = Command::new(env!("CARGO_BIN_EXE_healthgap"))
            .args(["demo", "--scale", "pcn", "--out"])
            .arg(&root)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run healthgap demo");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "healthgap demo failed\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|rest| rest.trim().to_string())
                .unwrap_or_else(|| panic!("demo prints `{name}`:\n{stdout}"))
        };
        let run = PathBuf::from(field("run folder"));
        // "pack         PATH (NAME, CODE)"
        let pack_line = field("pack");
        let (path, rest) = pack_line
            .split_once(" (")
            .unwrap_or_else(|| panic!("pack line: {pack_line}"));
        let pcn = rest
            .trim_end_matches(')')
            .rsplit(", ")
            .next()
            .expect("PCN code")
            .to_string();
        Demo {
            run,
            pack: PathBuf::from(path),
            pcn,
        }
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn table(run: &Path, name: &str) -> DataFrame {
    LazyFrame::scan_parquet(
        PlRefPath::new(
            run.join(format!("{name}.parquet"))
                .to_string_lossy()
                .as_ref(),
        ),
        ScanArgsParquet::default(),
    )
    .and_then(|lf| lf.collect())
    .unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// The `area_deprivation` row of an area: (population, Core20 share).
fn area(run: &Path, code: &str) -> (f64, f64) {
    let df = table(run, "area_deprivation")
        .lazy()
        .filter(col("area_code").eq(lit(code.to_string())))
        .collect()
        .expect("filter");
    let at = |c: &str| {
        df.column(c)
            .and_then(|c| c.cast(&DataType::Float64))
            .expect(c)
            .f64()
            .expect("f64")
            .get(0)
            .unwrap_or(f64::NAN)
    };
    (at("population"), at("core20_share"))
}

/// "42,785": a whole number with thousands separators, as the pack prints it.
fn thousands(v: f64) -> String {
    healthgap::charts::style::format_count(v)
}

/// The `<figure class="chart">` blocks of a page.
fn figures(html: &str) -> Vec<&str> {
    html.split("<figure class=\"chart\"")
        .skip(1)
        .map(|rest| rest.split("</figure>").next().unwrap_or(""))
        .collect()
}

/// Check a pack page is self-contained and complete; return its number of charts.
fn check_page(html: &str) -> usize {
    for forbidden in ["http://", "https://", "src=\"", "<link", "@import", "url("] {
        assert!(
            !html.contains(forbidden),
            "the page must not refer to anything outside it, found `{forbidden}`"
        );
    }
    for id in SECTIONS {
        assert!(
            html.contains(&format!("<section id=\"{id}\"")),
            "section `{id}` missing"
        );
    }
    let charts = figures(html);
    assert!(charts.len() >= 9, "{} charts", charts.len());
    for figure in &charts {
        assert!(figure.contains("<svg "), "a figure without an inline SVG");
        assert!(figure.contains("</svg>"), "an unterminated SVG");
        assert!(
            !figure.contains("could not be drawn"),
            "a chart failed: {}",
            &figure[..figure.len().min(300)]
        );
    }
    charts.len()
}

#[test]
fn demo_writes_the_pack_of_its_largest_pcn_and_prints_its_path() {
    let demo = demo();
    assert!(demo.pack.is_file(), "{}", demo.pack.display());
    // ROOT/reports/<run_id>/<PCN>/<PCN>-evidence-pack.html, beside (not inside) the run.
    let run_id = demo.run.file_name().expect("run id");
    assert!(
        demo.pack.starts_with(
            demo.run
                .parent()
                .expect("root")
                .join("reports")
                .join(run_id)
        )
    );
    assert!(!demo.pack.starts_with(&demo.run));
    let markdown = demo.pack.with_extension("md");
    assert!(markdown.is_file());
    let charts = check_page(&read(&demo.pack));
    let svgs = std::fs::read_dir(demo.pack.parent().expect("folder").join("charts"))
        .expect("charts folder")
        .count();
    assert_eq!(svgs, charts, "one SVG file per chart of the page");
}

#[test]
fn report_writes_a_self_contained_page_and_a_markdown_twin_whose_numbers_match_the_tables() {
    let demo = demo();
    let dir = Workdir::new("report-pack");
    let run = dir.run(&[
        "report",
        "--pcn",
        &demo.pcn.to_lowercase(),
        "--run",
        &demo.run.display().to_string(),
        "--year",
        "2023-24",
    ]);
    run.expect_code(0);
    let folder = dir
        .join("reports")
        .join(demo.run.file_name().expect("id").to_string_lossy().as_ref())
        .join(&demo.pcn);
    let html_path = folder.join(format!("{}-evidence-pack.html", demo.pcn));
    assert_eq!(
        run.stdout().trim(),
        format!(
            "reports/{}/{}/{}-evidence-pack.html",
            demo.run.file_name().expect("id").to_string_lossy(),
            demo.pcn,
            demo.pcn
        )
    );
    let html = read(&html_path);
    let charts = check_page(&html);
    assert!(html.contains("2023-24"), "the --year is shown");

    // The Markdown twin: every chart an image beside it, the same sections.
    let markdown = read(&folder.join(format!("{}-evidence-pack.md", demo.pcn)));
    let images: Vec<&str> = markdown
        .lines()
        .filter_map(|l| l.strip_prefix("![")?.split_once("](")?.1.strip_suffix(')'))
        .collect();
    assert_eq!(images.len(), charts, "one image per chart");
    for image in &images {
        assert!(
            image.starts_with("charts/") && image.ends_with(".svg"),
            "{image}"
        );
        let svg = read(&folder.join(image));
        healthgap::charts::check::check_svg(&svg)
            .unwrap_or_else(|e| panic!("{image} is not well-formed: {e}"));
    }
    for heading in [
        "Key findings",
        "Population and deprivation",
        "Candidate underserved cohorts",
        "Appendix: methods and data vintages",
    ] {
        assert!(markdown.contains(heading), "{heading}");
    }
    // The period of the patient outcomes measured, as the run's manifest records it.
    let manifest = crate::harness::run_manifest(&demo.run);
    let period = manifest["outcome_periods"]["used"]
        .as_str()
        .expect("the demo's outcomes have a period");
    assert!(
        markdown.contains(&format!("| Patient outcomes | period {period} |")),
        "the outcome period in the appendix"
    );

    // Numbers against the tables: population and Core20 share of the PCN.
    let (population, core20) = area(&demo.run, &demo.pcn);
    let share = format!("{:.1}%", core20 * 100.0);
    for text in [&html, &markdown] {
        assert!(
            text.contains(&thousands(population)),
            "population {population}"
        );
        assert!(text.contains(&share), "Core20 share {share}");
    }
    assert!(html.contains(&format!("<td class=\"number\">{share}</td>")));

    // The first gradient's SII is the inequality table's, for the PCN.
    let gradients = html
        .split("<section id=\"gradients\"")
        .nth(1)
        .expect("gradients section");
    let heading = gradients
        .split("<h3>")
        .nth(1)
        .and_then(|h| h.split("</h3>").next())
        .expect("a gradient heading");
    let name = heading
        .split_once(". ")
        .expect("numbered")
        .1
        .replace("&amp;", "&");
    let sii = table(&demo.run, "inequality")
        .lazy()
        .filter(
            col("indicator_name")
                .eq(lit(name.clone()))
                .and(col("footprint_code").eq(lit(demo.pcn.clone()))),
        )
        .collect()
        .expect("filter")
        .column("sii")
        .expect("sii")
        .f64()
        .expect("f64")
        .get(0)
        .expect("an SII");
    let printed =
        healthgap::charts::style::format_signed(sii, if sii.abs() < 100.0 { 1 } else { 0 });
    assert!(
        gradients.contains(&format!("SII {printed}")),
        "SII {printed} of {name}"
    );

    // The methods appendix quotes the manifest: inputs with their SHA-256.
    let manifest = crate::harness::run_manifest(&demo.run);
    // (The page lets a SHA-256 wrap between groups of 16 characters.)
    let unbroken = html.replace("<wbr>", "");
    for input in manifest["inputs"].as_array().expect("inputs") {
        let sha = input["sha256"].as_str().expect("sha256");
        assert!(unbroken.contains(sha), "input {} SHA-256", input["input"]);
        assert!(
            markdown.contains(&format!("`{sha}`")),
            "input {} SHA-256",
            input["input"]
        );
    }
    assert!(html.contains(manifest["run_id"].as_str().expect("run id")));
    // Restricted tables are never shown or read.
    assert!(!html.contains("patient_id"));
}

#[test]
fn unknown_pcn_is_exit_2_with_the_closest_codes() {
    let demo = demo();
    let dir = Workdir::new("report-unknown");
    let mut wrong = demo.pcn.clone();
    wrong.pop();
    let run = dir.run(&[
        "report",
        "--pcn",
        &wrong,
        "--run",
        &demo.run.display().to_string(),
    ]);
    run.expect_code(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("unknown PCN `{wrong}`")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("closest: {}", demo.pcn)),
        "{stderr}"
    );
    assert!(!dir.join("reports").exists(), "nothing written");

    // No run there, a year that is not YYYY-YY, --all without --icb: exit 2 too.
    dir.run(&[
        "report",
        "--pcn",
        &demo.pcn,
        "--run",
        &demo.run.display().to_string(),
        "--year",
        "2023-25",
    ])
    .expect_code(2);
    dir.run(&["report", "--pcn", &demo.pcn, "--run", "no-such-run"])
        .expect_code(2);
    dir.run(&["report", "--all", "--run", &demo.run.display().to_string()])
        .expect_code(2);
    // The run folder is never written to.
    let inside = demo.run.join("pack");
    dir.run(&[
        "report",
        "--pcn",
        &demo.pcn,
        "--run",
        &demo.run.display().to_string(),
        "--out",
        &inside.display().to_string(),
    ])
    .expect_code(2);
    assert!(!inside.exists());
}

#[test]
fn suppressed_values_are_shown_as_suppressed_never_recomputed() {
    let demo = demo();
    let dir = Workdir::new("report-suppressed");
    // A copy of the run whose PCN row has its Core20 figures suppressed.
    let run = dir.join("out").join("r1");
    std::fs::create_dir_all(&run).expect("run folder");
    for entry in std::fs::read_dir(&demo.run).expect("run") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, run.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let is_pcn = col("area_code").eq(lit(demo.pcn.clone()));
    let mut areas = table(&demo.run, "area_deprivation")
        .lazy()
        .with_columns([
            when(is_pcn.clone())
                .then(lit(NULL).cast(DataType::Float64))
                .otherwise(col("core20_population"))
                .alias("core20_population"),
            when(is_pcn.clone())
                .then(lit(NULL).cast(DataType::Float64))
                .otherwise(col("core20_share"))
                .alias("core20_share"),
            when(is_pcn)
                .then(lit(true))
                .otherwise(col("suppressed"))
                .alias("suppressed"),
        ])
        .collect()
        .expect("suppress");
    let file = std::fs::File::create(run.join("area_deprivation.parquet")).expect("create");
    ParquetWriter::new(file).finish(&mut areas).expect("write");

    let out = dir.run(&[
        "report", "--pcn", &demo.pcn, "--run", "out/r1", "--out", "packs",
    ]);
    out.expect_code(0);
    let folder = dir.join("packs").join(&demo.pcn);
    let html = read(&folder.join(format!("{}-evidence-pack.html", demo.pcn)));
    let markdown = read(&folder.join(format!("{}-evidence-pack.md", demo.pcn)));
    let profile = html
        .split("<section id=\"profile\"")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("profile");
    let row = profile
        .split("<tr>")
        .find(|r| r.contains("<td>Core20 share</td>"))
        .expect("Core20 share row");
    assert!(
        row.contains("<td class=\"suppressed\">suppressed</td>"),
        "the PCN's Core20 share reads suppressed: {row}"
    );
    let (_, core20) = area(&demo.run, &demo.pcn);
    let original = format!("{:.1}%", core20 * 100.0);
    let pcn_cell = row.split("</td>").nth(1).expect("PCN cell");
    assert!(!pcn_cell.contains(&original), "not recomputed: {pcn_cell}");
    assert!(html.contains("the Core20 share is suppressed"));
    assert!(
        markdown.contains("| Core20 share | _suppressed_ |"),
        "{markdown}"
    );
}

#[test]
fn all_writes_a_pack_per_pcn_of_the_icb_and_an_index() {
    let run = crate::pipeline::published_run();
    let dir = Workdir::new("report-all");
    let icb = "QWO";
    let started = Instant::now();
    let out = dir.run(&[
        "report",
        "--all",
        "--icb",
        icb,
        "--run",
        &run.display().to_string(),
        "--out",
        "packs",
    ]);
    out.expect_code(0);
    let took = started.elapsed();
    let areas = table(run, "area_deprivation")
        .lazy()
        .filter(
            col("area_level")
                .eq(lit("pcn"))
                .and(col("parent_code").eq(lit(icb))),
        )
        .collect()
        .expect("filter");
    let pcns: Vec<String> = areas
        .column("area_code")
        .expect("codes")
        .str()
        .expect("str")
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    assert!(pcns.len() > 3, "{pcns:?}");
    let index = read(&dir.join("packs").join("index.html"));
    let index_md = read(&dir.join("packs").join("index.md"));
    for pcn in &pcns {
        let page = dir
            .join("packs")
            .join(pcn)
            .join(format!("{pcn}-evidence-pack.html"));
        let html = read(&page);
        check_page(&html);
        // An ICB with several PCNs: a real funnel of its PCNs, the PCN highlighted.
        assert!(
            html.contains(" PCNs of "),
            "{pcn}: a funnel of the ICB's PCNs"
        );
        assert!(
            index.contains(&format!("href=\"{pcn}/{pcn}-evidence-pack.html\"")),
            "{pcn}"
        );
        assert!(
            index_md.contains(&format!("]({pcn}/{pcn}-evidence-pack.md)")),
            "{pcn}"
        );
    }
    assert_eq!(
        out.stdout().lines().count(),
        pcns.len() + 1,
        "a line per pack and the index"
    );
    eprintln!(
        "report --all: {} PCNs of {icb} in {:.1} s (debug build)",
        pcns.len(),
        took.as_secs_f64()
    );
}

/// Run a command, killing it after `limit`. Its output is read while it runs (a dumped DOM is
/// bigger than a pipe's buffer).
fn run_with_limit(mut command: Command, limit: Duration) -> std::process::Output {
    use std::io::Read;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn chromium(profile: &Path) -> Command {
    let mut command = Command::new("chromium");
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1000,1400",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

#[test]
fn the_pack_renders_in_headless_chromium_with_every_chart() {
    let found = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "SKIPPED the_pack_renders_in_headless_chromium_with_every_chart: `chromium` is not \
             installed (apt-get install chromium; .ci/run installs it)"
        );
        return;
    }
    let demo = demo();
    let source = read(&demo.pack);
    let expected = figures(&source).len();
    let dir = Workdir::new("report-chromium");
    let url = format!("file://{}", demo.pack.display());

    let mut dump = chromium(&dir.join("profile-dom"));
    dump.arg("--dump-dom").arg(&url);
    let output = run_with_limit(dump, Duration::from_secs(120));
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "chromium failed:\n{log}");
    // The inline script ran: it counted the charts the browser parsed as SVG.
    assert!(
        dom.contains(&format!("data-charts-rendered=\"{expected}\"")),
        "the page's script did not count {expected} charts"
    );
    assert!(dom.contains(&format!("rendered {expected} charts")));
    for id in SECTIONS {
        assert!(
            dom.contains(&format!("<section id=\"{id}\"")),
            "section {id}"
        );
    }
    let parsed = figures(&dom);
    assert_eq!(parsed.len(), expected);
    for figure in parsed {
        assert!(
            figure.contains("<svg ") && figure.contains("</svg>"),
            "chart lost in the DOM"
        );
    }
    for bad in [
        "Uncaught",
        "SyntaxError",
        "ReferenceError",
        "TypeError",
        "net::ERR",
    ] {
        assert!(!log.contains(bad), "browser error `{bad}`:\n{log}");
    }

    let png = dir.join("pack.png");
    let mut shot = chromium(&dir.join("profile-shot"));
    shot.arg(format!("--screenshot={}", png.display()))
        .arg(&url);
    let output = run_with_limit(shot, Duration::from_secs(120));
    assert!(output.status.success(), "screenshot failed");
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(
        healthgap::charts::check::png_size(&bytes),
        Some((1000, 1400)),
        "a screenshot of the window"
    );
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files_under(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    crate::harness::files_under(dir)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read file");
            (path.strip_prefix(dir).expect("under").to_path_buf(), bytes)
        })
        .collect()
}

/// Issue 10: the same run gives byte-identical packs, chart files included (no clock, no
/// output path, no hash-map order in what is written).
#[test]
fn the_same_run_gives_identical_pack_and_chart_files() {
    let demo = demo();
    let dir = Workdir::new("report-reproducible");
    for out in ["first", "second"] {
        dir.run(&[
            "report",
            "--pcn",
            &demo.pcn,
            "--run",
            &demo.run.display().to_string(),
            "--out",
            out,
        ])
        .expect_code(0);
    }
    let first = files_under(&dir.join("first"));
    let second = files_under(&dir.join("second"));
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>(),
        "the same files"
    );
    let charts = first
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .count();
    assert!(charts >= 5, "chart files written: {charts}");
    for (path, bytes) in &first {
        assert!(
            bytes == &second[path],
            "{} differs between two reports of the same run",
            path.display()
        );
    }
}
