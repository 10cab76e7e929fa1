//! `healthgap demo`: generate (or reuse) ICB-scale synthetic data, write a complete config, run
//! the whole pipeline and summarise what it found.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use polars::prelude::{
    DataFrame, DataType, LazyFrame, PlRefPath, PolarsResult, ScanArgsParquet, SortMultipleOptions,
    col, lit,
};

use crate::config::Config;
use crate::output::Printer;
use crate::pipeline::{self, RunSettings};
use crate::synth::{OutputFormat, Scale, Settings};

/// Run the whole pipeline end to end on bundled and generated data.
///
/// Generates a synthetic patient-level registered list for one ICB (real practices, PCNs and
/// LSOAs; planted deprivation gradients recorded in truth.json), or reuses it when it is
/// already there, writes a complete example config beside it (`demo.toml`: every input, a
/// dozen indicators, both segmentations), runs the pipeline into ROOT, and prints where the
/// outputs are with a short summary: population, Core20 share and the three steepest
/// gradients. It then writes the evidence pack of the ICB's largest PCN (as `healthgap report`
/// does) to ROOT/reports/<run_id>/ and prints its path. Everything it needs is in the
/// repository; nothing is downloaded.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  healthgap demo\n  healthgap demo --scale pcn              # one PCN, a minute on a laptop\n  healthgap demo --icb QHM --out /tmp/hg  # a chosen ICB\n  healthgap query --run out/latest --tables"
)]
pub struct DemoArgs {
    /// Output root: runs go to ROOT/<run_id> with ROOT/latest, data to ROOT/demo-data
    #[arg(long, value_name = "ROOT", default_value = "out")]
    pub out: PathBuf,

    /// How much to generate: one ICB (default) or one PCN (quick)
    #[arg(long, value_enum, default_value_t = DemoScale::Icb)]
    pub scale: DemoScale,

    /// The ICB (ODS or ONS code); default: the ICB with the median list size
    #[arg(long, value_name = "CODE")]
    pub icb: Option<String>,

    /// Scale the generated lists to N patients in all (default: real list sizes)
    #[arg(long, value_name = "N")]
    pub patients: Option<u64>,

    /// Seed of the synthetic data and of the SII simulation
    #[arg(long, value_name = "S", default_value_t = 2024)]
    pub seed: u64,

    /// The config naming the bundled reference data
    #[arg(long, short, value_name = "FILE", default_value = "healthgap.toml")]
    pub config: PathBuf,

    /// Generate the data again even if it is already there
    #[arg(long)]
    pub fresh: bool,
}

/// The demo's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoScale {
    /// One Integrated Care Board (1–3 million patients at real list sizes).
    Icb,
    /// One Primary Care Network (30–50 thousand patients).
    Pcn,
}

/// Run `healthgap demo`.
pub fn run(args: DemoArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let reference = Config::load(&args.config)?;
    let label = match (args.scale, &args.icb) {
        (DemoScale::Pcn, _) => "pcn".to_string(),
        (DemoScale::Icb, Some(code)) => format!("icb-{}", code.to_ascii_lowercase()),
        (DemoScale::Icb, None) => "icb".to_string(),
    };
    let label = match args.patients {
        Some(n) => format!("{label}-{n}"),
        None => label,
    };
    let data_dir = args
        .out
        .join("demo-data")
        .join(format!("{label}-seed-{}", args.seed));
    let settings = Settings {
        seed: args.seed,
        scale: match args.scale {
            DemoScale::Icb => Scale::Icb,
            DemoScale::Pcn => Scale::Pcn,
        },
        patients: args.patients,
        pcn: None,
        icb: args.icb.clone(),
        format: OutputFormat::Parquet,
        config: args.config.clone(),
        out: data_dir.clone(),
    };
    let synth_config = data_dir.join("healthgap.toml");
    if args.fresh || !synth_config.exists() || !data_dir.join("truth.json").exists() {
        printer.note(format!(
            "generating synthetic data in {}",
            data_dir.display()
        ));
        crate::synth::generate(&settings, &reference, printer)?;
    } else {
        printer.note(format!("reusing synthetic data in {}", data_dir.display()));
    }

    // The demo config: the one synth wrote (generated tables + reference data), with this
    // demo's output root and seed, plus the indicator, segmentation and gradient sections.
    let text = std::fs::read_to_string(&synth_config)
        .with_context(|| format!("reading {}", synth_config.display()))?;
    let mut table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", synth_config.display()))?;
    let output_root = absolute(&args.out)?;
    if let Some(toml::Value::Table(run)) = table.get_mut("run") {
        run.insert(
            "output_root".into(),
            toml::Value::String(output_root.display().to_string()),
        );
        run.insert(
            "seed".into(),
            toml::Value::Integer(i64::try_from(args.seed).unwrap_or(i64::MAX)),
        );
    }
    let mut text = format!(
        "# Written by `healthgap demo`: the synthetic data of this folder, the bundled reference\n# data, and the demo's indicators and segmentations.\n\n{}",
        toml::to_string(&table).context("writing the demo config")?
    );
    text.push_str(crate::demo::demo_sections());
    let demo_config = data_dir.join("demo.toml");
    std::fs::write(&demo_config, &text)
        .with_context(|| format!("writing {}", demo_config.display()))?;
    let mut config = Config::load(&demo_config)?;
    // A demo regenerates its inputs at will (another seed, scale or ICB): their change since
    // the last demo run is intended, not a broken extract.
    config.drift.enabled = false;

    let run_settings = RunSettings {
        output_root: output_root.clone(),
        run_id: pipeline::default_run_id(),
        abort_at: None,
        accept_drift: false,
    };
    let summary = pipeline::run(&config, &run_settings, printer)?;

    printer.result(format!("run folder   {}", summary.run_dir.display()))?;
    printer.result(format!("config       {}", demo_config.display()))?;
    printer.result(format!(
        "data         {} (truth.json: the planted gradients)",
        data_dir.display()
    ))?;
    for line in summary_lines(&summary.run_dir).context("summarising the run")? {
        printer.result(line)?;
    }
    if let Some(pcn) = largest_pcn(&summary.run_dir).context("finding the largest PCN")? {
        let settings = crate::report::Settings {
            run: summary.run_dir.clone(),
            target: crate::report::Target::Pcn(pcn),
            year: None,
            out: Some(output_root.join("reports").join(&summary.run_id)),
        };
        let written = crate::report::write(&settings, printer)
            .context("writing the evidence pack of the largest PCN")?;
        for pack in &written.packs {
            printer.result(format!(
                "pack         {} ({}, {})",
                pack.html.display(),
                pack.name,
                pack.pcn
            ))?;
        }
    }
    printer.result(format!(
        "next         healthgap query --run {} --tables",
        output_root.join(crate::pipeline::publish::LATEST).display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))
}

fn scan(path: &Path) -> PolarsResult<LazyFrame> {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
}

/// The largest PCN of the run's largest ICB (by registered population), if any.
fn largest_pcn(run_dir: &Path) -> anyhow::Result<Option<String>> {
    use crate::schema;
    let areas = scan(&run_dir.join("area_deprivation.parquet"))?
        .filter(col(schema::AREA_LEVEL).neq(lit("practice")))
        .collect()?;
    let column = |name: &str| -> anyhow::Result<Vec<Option<String>>> {
        Ok(areas
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let (level, code, parent) = (
        column(schema::AREA_LEVEL)?,
        column(schema::AREA_CODE)?,
        column(schema::PARENT_AREA_CODE)?,
    );
    let population: Vec<f64> = areas
        .column(schema::POPULATION)?
        .cast(&DataType::Float64)?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(0.0))
        .collect();
    let rows: Vec<(&str, &str, Option<&str>, f64)> = (0..areas.height())
        .filter_map(|i| {
            Some((
                level.get(i)?.as_deref()?,
                code.get(i)?.as_deref()?,
                parent.get(i)?.as_deref(),
                population.get(i).copied()?,
            ))
        })
        .collect();
    let largest = |candidates: Vec<&(&str, &str, Option<&str>, f64)>| {
        candidates
            .into_iter()
            .max_by(|a, b| a.3.total_cmp(&b.3).then(b.1.cmp(a.1)))
            .map(|r| r.1.to_string())
    };
    let icb = largest(rows.iter().filter(|r| r.0 == "icb").collect());
    Ok(largest(
        rows.iter()
            .filter(|r| r.0 == "pcn" && (icb.is_none() || r.2 == icb.as_deref()))
            .collect(),
    ))
}

/// Population, Core20 share and the three steepest gradients of the run's ICB (or England).
fn summary_lines(run_dir: &Path) -> anyhow::Result<Vec<String>> {
    use crate::schema;
    let mut lines = Vec::new();
    let areas = scan(&run_dir.join("area_deprivation.parquet"))?
        .filter(col(schema::AREA_LEVEL).eq(lit("icb")))
        .sort(
            [schema::POPULATION],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .limit(1)
        .collect()?;
    let text = |df: &DataFrame, c: &str| {
        df.column(c)
            .ok()
            .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)))
    };
    let number = |df: &DataFrame, c: &str| {
        df.column(c)
            .ok()
            .and_then(|c| c.cast(&DataType::Float64).ok())
            .and_then(|c| c.f64().ok().and_then(|s| s.get(0)))
    };
    let icb = text(&areas, schema::AREA_CODE);
    if let Some(icb) = &icb {
        lines.push(format!(
            "footprint    {} ({})",
            text(&areas, schema::AREA_NAME).unwrap_or_default(),
            icb
        ));
        lines.push(format!(
            "population   {} registered people; Core20 (most deprived 20% nationally): {}",
            number(&areas, schema::POPULATION)
                .map_or("suppressed".into(), crate::output::thousands),
            number(&areas, schema::CORE20_SHARE)
                .map_or("suppressed".into(), |s| format!("{:.1}%", 100.0 * s)),
        ));
    }
    let inequality = run_dir.join("inequality.parquet");
    if inequality.exists() {
        let (level, code) = match &icb {
            Some(code) => ("icb", code.clone()),
            None => ("england", schema::ENGLAND_CODE.to_string()),
        };
        // Steepness: the SII relative to the footprint's own value, so rates and percentages
        // compare.
        let steepest = scan(&inequality)?
            .filter(
                col(schema::FOOTPRINT_KIND)
                    .eq(lit(level))
                    .and(col(schema::FOOTPRINT_CODE).eq(lit(code)))
                    .and(col("sii").is_not_null()),
            )
            .with_column((col("sii") / col(schema::VALUE)).abs().alias("steepness"))
            .sort(
                ["steepness"],
                SortMultipleOptions::default()
                    .with_order_descending(true)
                    .with_nulls_last(true),
            )
            .limit(3)
            .collect()?;
        let names = steepest.column(schema::INDICATOR_NAME)?.str()?.clone();
        let sii = steepest.column("sii")?.f64()?.clone();
        let lower = steepest.column("sii_lower95_0cl")?.f64()?.clone();
        let upper = steepest.column("sii_upper95_0cl")?.f64()?.clone();
        let rii = steepest.column("rii")?.f64()?.clone();
        lines.push("steepest gradients across IMD deciles (SII: least minus most deprived, 95% limits; RII: least ÷ most):".into());
        for i in 0..steepest.height() {
            lines.push(format!(
                "  {}. {}: SII {:.2} ({:.2} to {:.2}), RII {:.2}",
                i + 1,
                names.get(i).unwrap_or(""),
                sii.get(i).unwrap_or(f64::NAN),
                lower.get(i).unwrap_or(f64::NAN),
                upper.get(i).unwrap_or(f64::NAN),
                rii.get(i).unwrap_or(f64::NAN),
            ));
        }
    }
    Ok(lines)
}
