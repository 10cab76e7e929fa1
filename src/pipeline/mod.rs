//! The pipeline stages, in order: `ingest → enrich → attribute → segment → measure → gradient
//! → publish` (DESIGN §3), and [`run`], which drives them for `healthgap run`.
//!
//! Each stage takes and returns polars `LazyFrame`s plus settings; the plan runs when publish
//! writes a table. The patient-level table is streamed to the run folder once and the
//! aggregate tables are computed from that file, so the big join runs once and memory stays
//! bounded. The readers live in `crate::ingest`; the statistics in `crate::stats`.

pub mod attribute;
pub mod disclosure;
pub mod drift;
pub mod enrich;
pub mod gradient;
pub mod ingest;
pub(crate) mod key_codes;
pub(crate) mod lookup;
pub mod measure;
pub mod partition;
pub mod practice_outcomes;
pub mod publish;
pub mod segment;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use polars::prelude::{Expr, IntoLazy, LazyFrame, PlRefPath, ScanArgsParquet, col, lit};
use rayon::iter::{IntoParallelIterator, ParallelIterator};

use crate::config::Config;
use crate::error::UserError;
use crate::ingest::{InputKind, rejects_frame};
use crate::output::Printer;
use crate::schema;
use publish::{StagingRun, acquire_lock, sha256_bytes, sha256_file};

/// Names of the tables a run writes.
pub mod tables {
    /// One row per patient (or population cell), enriched and attributed. Restricted.
    pub const PATIENTS_ENRICHED: &str = "patients_enriched";
    /// LSOA × footprint attributions.
    pub const FOOTPRINT_WEIGHTS: &str = "footprint_weights";
    /// Practice, PCN, ICB and England deprivation profiles.
    pub const AREA_DEPRIVATION: &str = "area_deprivation";
    /// Input rows refused, with file, line, column, value and reason. Restricted (values are
    /// copied from the inputs).
    pub const REJECTS: &str = "rejects";
    /// People by footprint × segment × risk tier × IMD quintile × age band × sex.
    pub const SEGMENTS: &str = "segments";
    /// Indicator × footprint × breakdown: numerator, denominator, value, limits.
    pub const INDICATORS: &str = "indicators";
    /// Indicator × footprint: SII, RII, gaps, funnel significance, flags.
    pub const INEQUALITY: &str = "inequality";
}

/// A point where a run can be told to stop abruptly (tests of atomic publishing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AbortPoint {
    /// After the tables are written to the staging folder.
    Tables,
    /// After the run folder is renamed into place, before `latest` is switched.
    Rename,
}

/// Settings for one run, from flags and config.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Where run folders go.
    pub output_root: PathBuf,
    /// The run's id (folder name).
    pub run_id: String,
    /// Stop the process abruptly at this point (tests only).
    pub abort_at: Option<AbortPoint>,
    /// Publish even when inputs drifted beyond the `[drift]` bounds (`--accept-drift`).
    pub accept_drift: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The run id.
    pub run_id: String,
    /// Registered population (weighted); 0 in a practice-level run.
    pub population: i64,
    /// The registered list's shape; `None` in a practice-level run (no registered list).
    pub population_shape: Option<enrich::PopulationShape>,
    /// Rows refused across inputs.
    pub rejected_rows: u64,
    /// Warnings raised.
    pub warnings: Vec<String>,
}

/// Time spent in one stage, for the manifest.
#[derive(Debug, Clone, serde::Serialize)]
struct StageTiming {
    stage: &'static str,
    seconds: f64,
}

struct Stages<'a> {
    printer: &'a Printer,
    timings: Vec<StageTiming>,
}

impl Stages<'_> {
    fn run<T>(
        &mut self,
        stage: &'static str,
        work: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let spinner = self.printer.spinner(stage);
        let started = Instant::now();
        let result = work();
        spinner.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        self.timings.push(StageTiming { stage, seconds });
        self.printer.event(
            "info",
            &format!("{stage}: {seconds:.2} s"),
            serde_json::json!({"stage": stage, "seconds": seconds}),
        );
        result
    }
}

/// Run the pipeline for a config and publish the run folder atomically.
///
/// # Errors
/// Input and config problems (exit 2) name the file; internal failures (exit 1) say what was
/// being done. On any error the previous run and `latest` are untouched.
pub fn run(
    config: &Config,
    settings: &RunSettings,
    printer: &Printer,
) -> anyhow::Result<RunSummary> {
    let started_at = chrono::Utc::now();
    let lock = acquire_lock(&settings.output_root, &settings.run_id)?;
    if let Some(note) = &lock.cleared_stale {
        printer.warn(note);
    }
    let mut stages = Stages {
        printer,
        timings: Vec::new(),
    };
    let mut warnings: Vec<String> = Vec::new();

    // The staging folder holds the patient parts, which ingest writes as it checks the
    // patient-keyed inputs; nothing is published before the checks below pass.
    let mut staging = StagingRun::begin(&settings.output_root, &settings.run_id, &lock)?;
    let patients = ingest::patient_rows(config);
    let mut split = partition::PartSplit::new(
        &staging.work_dir("patient-parts"),
        patients,
        config.run.patients_per_part,
    )?;
    if let Some(split) = &split {
        printer.note(format!(
            "{patients} patients: the patient stages run in {} parts (run.patients_per_part = {})",
            split.parts(),
            config.run.patients_per_part
        ));
    }
    let ingested = stages.run("ingest", || {
        Ok(ingest::ingest(config, printer, split.as_mut()))
    })?;
    if !ingested.failures.is_empty() {
        let list: Vec<String> = ingested
            .failures
            .iter()
            .map(|f| format!("  {}", f.error))
            .collect();
        return Err(UserError(format!(
            "{} input(s) failed validation; nothing was published:\n{}",
            ingested.failures.len(),
            list.join("\n")
        ))
        .into());
    }
    for report in ingested.reports() {
        for warning in &report.warnings {
            warnings.push(format!(
                "{} ({}): {warning}",
                report.input,
                report.file.display()
            ));
        }
    }

    // Before anything is written: a truncated or broken extract must not replace a good run.
    let current = drift::counts_by_input(
        ingested
            .all_tables()
            .map(|t| &t.report)
            .chain(ingested.footprints.values().map(|f| &f.report))
            .map(|r| (r.input.as_str(), r.rows_read, r.rows_rejected)),
    );
    let drift = drift::check(
        &config.drift,
        &settings.output_root,
        &current,
        settings.accept_drift,
    )?;
    if drift.accepted {
        let changes: Vec<String> = drift.exceeded().map(|d| d.describe()).collect();
        let warning = if changes.is_empty() {
            "input drift not checked: the previous run's manifest cannot be read (--accept-drift)"
                .to_string()
        } else {
            format!(
                "input drift accepted with --accept-drift: {}",
                changes.join("; ")
            )
        };
        printer.warn(&warning);
        warnings.push(warning);
    }

    // Input fingerprints for the manifest and every table's metadata (hashed in parallel:
    // at national scale the extracts are gigabytes).
    let inputs: Vec<_> = ingested
        .all_tables()
        .map(|t| (t.report.input.clone(), t.path.clone(), Some(&t.report)))
        .chain(
            ingested
                .footprints
                .values()
                .map(|f| (f.report.input.clone(), f.path.clone(), Some(&f.report))),
        )
        .collect();
    let inputs: Vec<serde_json::Value> = inputs
        .into_par_iter()
        .map(|(input, path, report)| {
            let sha256 = sha256_file(&path).ok();
            serde_json::json!({
                "input": input,
                "file": path,
                "sha256": sha256,
                "rows_read": report.map(|r| r.rows_read),
                "rows_accepted": report.map(|r| r.rows_accepted),
                "rows_rejected": report.map(|r| r.rows_rejected),
                "reasons": report.map(|r| &r.reasons),
            })
        })
        .collect();
    let config_text = std::fs::read(&config.path).unwrap_or_default();
    let input_hashes: Vec<serde_json::Value> = inputs
        .iter()
        .map(|i| serde_json::json!({"input": i["input"], "sha256": i["sha256"]}))
        .collect();
    let metadata = vec![
        ("healthgap.run_id".to_string(), settings.run_id.clone()),
        (
            "healthgap.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "healthgap.config_sha256".to_string(),
            sha256_bytes(&config_text),
        ),
        ("healthgap.seed".to_string(), config.run.seed.to_string()),
        (
            "healthgap.inputs".to_string(),
            serde_json::Value::Array(input_hashes).to_string(),
        ),
    ];
    staging.set_metadata(metadata);

    let practices = stages.run("attribute: membership", || {
        attribute::practice_footprints(&ingested, config.run.extract_date)?
            .collect()
            .context("attributing practices to PCNs and ICBs")
    })?;
    let population = match enrich::population(&ingested) {
        Ok(population) => Some(population),
        // A run over practice-level figures alone needs no registered list.
        Err(_) if !config.practice_indicators.is_empty() => {
            let note =
                "no registered list in the config: a practice-level run (practice indicators only)"
                    .to_string();
            printer.note(&note);
            warnings.push(note);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let population = match population {
        Some(population) => Some(population_stages(
            &ingested,
            config,
            population,
            split,
            &practices,
            &mut staging,
            &mut stages,
            printer,
            &mut warnings,
        )?),
        None => None,
    };
    let indicators = stages.run("measure", || {
        let esp = measure::esp2013_weights(ingested.frame(InputKind::Esp2013))?;
        let mut rows = match &population {
            Some(run) => measure::indicators_table(
                &run.base,
                &practices.clone().lazy(),
                &run.prepared,
                &config.measure,
                &esp,
            )
            .context("measuring indicators")?,
            None => measure::indicators_table(
                &polars::prelude::DataFrame::empty().lazy(),
                &practices.clone().lazy(),
                &[],
                &config.measure,
                &esp,
            )?,
        };
        if !config.practice_indicators.is_empty() {
            let deciles =
                practice_outcomes::practice_deciles(&ingested, &config.practice_deprivation)?;
            let practice_rows = practice_outcomes::practice_indicator_rows(
                &ingested,
                &config.practice_indicators,
                &practices.clone().lazy(),
                &deciles,
                &config.measure.levels,
            )?;
            rows.append(practice_rows);
        }
        rows.into_frame().context("stacking the indicators")
    })?;
    if indicators.height() > 0 {
        let practice_specs: Vec<measure::IndicatorSpec> = config
            .practice_indicators
            .iter()
            .map(|p| p.as_indicator())
            .collect();
        let prepared: &[measure::PreparedIndicator] =
            population.as_ref().map_or(&[], |p| p.prepared.as_slice());
        let gradient_specs: Vec<gradient::GradientSpec<'_>> = prepared
            .iter()
            .map(|p| gradient::GradientSpec {
                spec: &p.spec,
                deciles: schema::IMD_DECILE,
                quintiles: schema::IMD_QUINTILE,
            })
            .chain(practice_specs.iter().map(|spec| gradient::GradientSpec {
                spec,
                deciles: practice_outcomes::PRACTICE_DECILE,
                quintiles: practice_outcomes::PRACTICE_QUINTILE,
            }))
            .collect();
        // Indicators first: the inequality table repeats their quintile numerators, which must
        // stay hidden wherever complementary suppression hid them here.
        let published = stages.run("publish indicators", || {
            let derived: Vec<(&str, &[&str])> = disclosure::INDICATOR_VALUES
                .iter()
                .map(|v| (*v, [schema::NUMERATOR, schema::DENOMINATOR].as_slice()))
                .collect();
            let table = config.disclosure.protect_additive(
                indicators.clone(),
                &[schema::NUMERATOR, schema::DENOMINATOR],
                &derived,
                disclosure::INDICATOR_ADDITIVITY,
            )?;
            staging.write_frame(tables::INDICATORS, &table, false)?;
            Ok(table)
        })?;
        stages.run("gradient", || {
            let table = gradient::inequality_table(
                &indicators,
                &gradient_specs,
                &config.gradient,
                config.run.seed,
            )
            .context("estimating inequality gradients")?;
            let quintiles_of = |id: &str| {
                gradient_specs
                    .iter()
                    .find(|g| g.spec.id == id)
                    .map(|g| g.quintiles)
            };
            let repeated = disclosure::repeated_cells(
                &table,
                &published,
                &[
                    schema::INDICATOR,
                    schema::FOOTPRINT_KIND,
                    schema::FOOTPRINT_CODE,
                ],
                quintiles_of,
                &[("q1_numerator", "1"), ("q5_numerator", "5")],
            )
            .context("carrying suppression from indicators to inequality")?;
            let table = config.disclosure.protect_masked(
                table,
                &[
                    schema::NUMERATOR,
                    schema::DENOMINATOR,
                    "q1_numerator",
                    "q5_numerator",
                ],
                &[
                    (schema::VALUE, &[schema::NUMERATOR, schema::DENOMINATOR]),
                    ("q1_value", &["q1_numerator"]),
                    ("q5_value", &["q5_numerator"]),
                    ("gap_absolute", &["q1_numerator", "q5_numerator"]),
                    ("gap_relative", &["q1_numerator", "q5_numerator"]),
                ],
                &repeated,
            )?;
            staging.write_frame(tables::INEQUALITY, &table, false)?;
            Ok(())
        })?;
    }
    let rejected_rows: u64 = ingested.all_tables().map(|t| t.report.rows_rejected).sum();
    stages.run("rejects", || {
        let mut frames = Vec::new();
        for table in ingested.all_tables() {
            frames.push(table.rejects_frame()?);
        }
        for footprints in ingested.footprints.values() {
            frames.push(rejects_frame(
                &footprints.report.input,
                &footprints.rejects,
            )?);
        }
        let rejects = match frames.into_iter().reduce(|mut a, b| {
            // Frames share the published schema; stacking cannot fail.
            let _ = a.vstack_mut(&b);
            a
        }) {
            Some(frame) => frame,
            None => rejects_frame("", &[])?,
        };
        staging.write_frame(tables::REJECTS, &rejects, true)?;
        Ok(())
    })?;
    if !config.outputs.patients_enriched {
        staging.discard(tables::PATIENTS_ENRICHED)?;
    }
    if settings.abort_at == Some(AbortPoint::Tables) {
        std::process::abort();
    }

    let population_total = population.as_ref().map_or(0, |p| p.matched.population);
    let manifest = serde_json::json!({
        "run_id": settings.run_id,
        "tool": {"name": "healthgap", "version": env!("CARGO_PKG_VERSION")},
        "started_at": started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "finished_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "config": {"path": config.path, "sha256": sha256_bytes(&config_text), "text": String::from_utf8_lossy(&config_text)},
        "seed": config.run.seed,
        "extract_date": config.run.extract_date.to_string(),
        "deprivation_index": config.run.deprivation.name(),
        "population_shape": population.as_ref().map(|p| p.shape),
        "population": population_total,
        "inputs": inputs,
        "outputs": staging.tables(),
        "stages": stages.timings,
        "rejects": {"rows": rejected_rows},
        "deprivation_match": population.as_ref().map(|p| &p.matched),
        "membership": population.as_ref().map(|p| &p.membership),
        "unlisted_patient_rows": population.as_ref().and_then(|p| p.unlisted.as_ref()),
        "outcome_periods": population.as_ref().and_then(|p| p.periods.as_ref()),
        "geometric": population.as_ref().map(|p| &p.geometric),
        "drift": drift,
        "warnings": warnings,
    });
    let abort_at = settings.abort_at;
    let run_dir = staging.commit(&manifest, || {
        if abort_at == Some(AbortPoint::Rename) {
            std::process::abort();
        }
    })?;
    drop(lock);
    Ok(RunSummary {
        run_dir,
        run_id: settings.run_id.clone(),
        population: population_total,
        population_shape: population.as_ref().map(|p| p.shape),
        rejected_rows,
        warnings,
    })
}

/// What the population stages leave for the rest of the run.
struct PopulationRun {
    /// The enriched, attributed, segmented population as written (a scan of the file).
    base: LazyFrame,
    /// Indicators over patient columns, checked.
    prepared: Vec<measure::PreparedIndicator>,
    /// The deprivation join's report.
    matched: enrich::DeprivationMatch,
    /// The membership attribution's report.
    membership: attribute::MembershipReport,
    /// Geometric attribution reports.
    geometric: Vec<attribute::GeometricReport>,
    /// Patients or weighted cells.
    shape: enrich::PopulationShape,
    /// Long rows of patients not on the list (patient-level lists only).
    unlisted: Option<segment::long::UnlistedRows>,
    /// The patient outcomes' periods and the one used (patient-level outcomes only).
    periods: Option<partition::OutcomePeriods>,
}

/// Enrich, attribute and segment the registered population; write `patients_enriched`,
/// `footprint_weights`, `area_deprivation` and `segments`.
#[allow(clippy::too_many_arguments)]
fn population_stages(
    ingested: &ingest::Ingested,
    config: &Config,
    population: (LazyFrame, enrich::PopulationShape),
    split: Option<partition::PartSplit>,
    practices: &polars::prelude::DataFrame,
    staging: &mut StagingRun,
    stages: &mut Stages<'_>,
    printer: &Printer,
    warnings: &mut Vec<String>,
) -> anyhow::Result<PopulationRun> {
    let index = config.run.deprivation;
    let (population, shape) = population;
    let deprivation = enrich::deprivation_lookup(ingested, index)?;
    let (segmentations, prepared, unlisted, periods) =
        stages.run("enrich, attribute and segment", || {
            if shape != enrich::PopulationShape::Patients {
                let enriched = enrich::enrich(population, deprivation);
                let attributed = attribute::attach_membership(enriched, practices.clone().lazy());
                staging.sink(tables::PATIENTS_ENRICHED, attributed, true)?;
                return Ok((Vec::new(), Vec::new(), None, None));
            }
            let mut inputs = match split {
                Some(split) => split.into_inputs(),
                None => partition::PatientInputs::whole(
                    InputKind::ALL
                        .into_iter()
                        .filter(|kind| kind.is_patient_keyed())
                        .filter_map(|kind| ingested.frame(kind).map(|rows| (kind, rows)))
                        .collect(),
                )?,
            };
            let periods = ingested
                .tables
                .contains_key(&InputKind::Outcomes)
                .then(|| inputs.choose_outcome_period(config.run.outcome_period.as_deref()))
                .transpose()
                .map_err(UserError)?;
            let plan = PatientPlan::new(deprivation, practices)?;
            let (segmentations, prepared) = segment_parts(&plan, &inputs, config, staging)?;
            Ok((segmentations, prepared, Some(plan.unlisted), periods))
        })?;
    let unused_period = match (&periods, &config.run.outcome_period) {
        (None, Some(period)) => Some(format!(
            "run.outcome_period = \"{period}\" is set, but the run reads no patient outcomes: it is not used"
        )),
        _ => None,
    };
    let data_warnings = [
        unused_period,
        periods
            .as_ref()
            .and_then(partition::OutcomePeriods::warning),
        unlisted
            .as_ref()
            .and_then(segment::long::UnlistedRows::warning),
    ];
    for warning in data_warnings.into_iter().flatten() {
        printer.warn(&warning);
        warnings.push(warning);
    }
    let base = LazyFrame::scan_parquet(
        PlRefPath::new(
            staging
                .table_path(tables::PATIENTS_ENRICHED)
                .to_string_lossy()
                .as_ref(),
        ),
        ScanArgsParquet::default(),
    )
    .context("reading back the enriched population")?;

    let (matched, membership) = stages.run("checks", || {
        let matched = enrich::deprivation_match(&base, ingested, index)
            .context("checking the deprivation join")?;
        let membership = attribute::MembershipReport::from_population(&base)
            .context("checking the membership attribution")?;
        Ok((matched, membership))
    })?;
    if let Some(warning) = matched.warning(index) {
        printer.warn(&warning);
        warnings.push(warning);
    }
    for warning in membership.warnings() {
        printer.warn(&warning);
        warnings.push(warning);
    }

    let geometric = stages.run("footprints", || {
        let mut weights = crate::lazy::collect_streaming(attribute::residence_footprints(
            base.clone(),
            config.attribute.residence_method,
            config.attribute.min_share,
        ))
        .context("deriving residence footprints")?;
        let mut reports = Vec::new();
        if !ingested.footprints.is_empty() {
            match ingested.frame(InputKind::LsoaCentroids) {
                Some(centroids) => {
                    let centroids = centroids.collect().context("reading LSOA centroids")?;
                    for (kind, polygons) in &ingested.footprints {
                        let (frame, report) = attribute::geometric_footprints(
                            &centroids,
                            kind,
                            polygons,
                            config.attribute.nearest_km,
                        )
                        .with_context(|| {
                            format!("attributing LSOA centroids to {kind} polygons")
                        })?;
                        weights
                            .vstack_mut(&frame)
                            .context("stacking footprint weights")?;
                        reports.push(report);
                    }
                }
                None => reports.push(attribute::GeometricReport {
                    footprint_kind: "(none)".into(),
                    ..Default::default()
                }),
            }
        }
        staging.write_frame(tables::FOOTPRINT_WEIGHTS, &weights, false)?;
        Ok(reports)
    })?;
    for report in &geometric {
        if report.footprint_kind == "(none)" {
            let warning = "footprint polygons are configured but [inputs.lsoa_centroids] is not: no geometric attribution".to_string();
            printer.warn(&warning);
            warnings.push(warning);
        } else if let Some(warning) = report.warning() {
            printer.warn(&warning);
            warnings.push(warning);
        }
    }
    stages.run("area deprivation", || {
        let areas =
            attribute::area_deprivation(base.clone()).context("computing area deprivation")?;
        // The quintile counts of a row add up to its matched population; Core20 (the most
        // deprived fifth nationally) is quintile 1 again, so it is hidden with it.
        let quintiles = attribute::IMD_QUINTILE_POPULATIONS;
        let mut masks =
            config
                .disclosure
                .row_part_masks(&areas, &quintiles, schema::POPULATION_WITH_IMD)?;
        if let Some((_, q1)) = masks.first() {
            masks.push((schema::CORE20_POPULATION.to_string(), q1.clone()));
        }
        let areas = config.disclosure.protect_masked(
            areas,
            &[
                schema::POPULATION,
                schema::POPULATION_WITH_IMD,
                schema::CORE20_POPULATION,
            ]
            .into_iter()
            .chain(quintiles)
            .collect::<Vec<_>>(),
            &[
                (schema::IMD_SCORE, &[schema::POPULATION_WITH_IMD]),
                (
                    schema::CORE20_SHARE,
                    &[schema::CORE20_POPULATION, schema::POPULATION_WITH_IMD],
                ),
                (schema::DEPRIVATION_DECILE, &[schema::POPULATION_WITH_IMD]),
            ],
            &masks,
        )?;
        staging.write_frame(tables::AREA_DEPRIVATION, &areas, false)?;
        Ok(())
    })?;
    if !segmentations.is_empty() {
        stages.run("segments", || {
            let table = segment::segments_table(base.clone(), &segmentations)
                .context("counting segments")?;
            let table = config.disclosure.protect_additive(
                table,
                &[schema::POPULATION],
                &[],
                disclosure::SEGMENT_ADDITIVITY,
            )?;
            staging.write_frame(tables::SEGMENTS, &table, false)?;
            Ok(())
        })?;
    }
    Ok(PopulationRun {
        base,
        prepared,
        matched,
        membership,
        geometric,
        shape,
        unlisted,
        periods,
    })
}

/// Enrich, attribute and segment a patient-level list, part by part, into `patients_enriched`.
/// Rules and indicator expressions are checked against the columns before any part is written;
/// the risk-tier percentiles are counted over every part first. Returns the segmentations'
/// names and the checked indicators.
fn segment_parts(
    plan: &PatientPlan,
    inputs: &partition::PatientInputs,
    config: &Config,
    staging: &mut StagingRun,
) -> anyhow::Result<(Vec<String>, Vec<measure::PreparedIndicator>)> {
    let parts = inputs.parts();
    let schema = plan
        .features_schema(inputs)
        .context("reading the patient columns")?;
    let segmenter = Segmenter::new(config, &schema)?;
    // The tier counts read each part's conditions first; their masks are kept for the
    // part's features (8 bytes a patient), so the conditions are read once.
    let mut kept: Vec<Option<segment::long::ConditionMasks>> = Vec::new();
    let shares = match config.risk.tiers {
        segment::risk::TierMethod::Percentile => {
            let scored = partition::each_part(parts, |part| {
                let (scores, masks) = plan
                    .scores(inputs, part, segmenter.within)
                    .context("building patient risk scores")?;
                Ok((
                    segment::risk::score_counts(scores, segmenter.within)?,
                    masks,
                ))
            })?;
            let (counts, masks): (Vec<_>, Vec<_>) = scored.into_iter().unzip();
            kept = masks;
            Some(segment::risk::tier_shares(counts).context("counting risk scores by footprint")?)
        }
        segment::risk::TierMethod::Cutoffs => None,
    };
    let mut kept = kept.into_iter();
    staging.sink_parts(
        tables::PATIENTS_ENRICHED,
        (0..parts).map(|part| {
            let masks = kept.next().flatten();
            Ok(segmenter.segmented(
                plan.features(inputs, part, masks.as_ref())?,
                shares.as_ref(),
            ))
        }),
        true,
    )?;
    Ok((segmenter.names, segmenter.prepared))
}

/// Enrich, attribute and the features of one part of a patient-level list.
struct PatientPlan {
    /// The deprivation lookup's columns (`enrich::deprivation_columns`), one row per LSOA.
    deprivation: polars::prelude::DataFrame,
    practices: polars::prelude::DataFrame,
    /// Long rows of patients not on the list, counted as the parts are read.
    unlisted: segment::long::UnlistedRows,
}

impl PatientPlan {
    fn new(deprivation: LazyFrame, practices: &polars::prelude::DataFrame) -> anyhow::Result<Self> {
        let deprivation = enrich::deprivation_columns(deprivation)
            .collect()
            .context("reading the deprivation lookup")?;
        Ok(PatientPlan {
            deprivation,
            practices: practices.clone(),
            unlisted: segment::long::UnlistedRows::default(),
        })
    }

    /// The enriched, attributed patients of `part` with their features (conditions and
    /// outcomes wide, flags, risk scores). The part's patients are read into memory (a part is
    /// at most `run.patients_per_part` patients) and the long inputs are pivoted onto them.
    fn features(
        &self,
        inputs: &partition::PatientInputs,
        part: u32,
        kept: Option<&segment::long::ConditionMasks>,
    ) -> polars::prelude::PolarsResult<LazyFrame> {
        let patients = crate::lazy::collect_streaming(Self::patients(inputs, part)?)?;
        self.features_of(patients, inputs, part, kept)
    }

    /// The columns [`Self::features`] gives (no data is read).
    fn features_schema(
        &self,
        inputs: &partition::PatientInputs,
    ) -> polars::prelude::PolarsResult<polars::prelude::SchemaRef> {
        let columns = Self::patients(inputs, 0)?.collect_schema()?;
        let none = polars::prelude::DataFrame::empty_with_schema(&columns);
        self.features_of(none, inputs, 0, None)?.collect_schema()
    }

    fn features_of(
        &self,
        patients: polars::prelude::DataFrame,
        inputs: &partition::PatientInputs,
        part: u32,
        kept: Option<&segment::long::ConditionMasks>,
    ) -> polars::prelude::PolarsResult<LazyFrame> {
        let conditions = match kept {
            Some(masks) => Some(segment::long::Conditions::Masks(masks)),
            None => inputs
                .get(InputKind::Conditions, part)?
                .map(|rows| segment::long::Conditions::Rows(Box::new(rows))),
        };
        let outcomes = inputs.get(InputKind::Outcomes, part)?;
        let patients = segment::long::with_long_inputs(
            patients,
            conditions,
            outcomes.map(|frame| (frame, inputs.outcome_codes())),
            &self.unlisted,
        )?;
        let enriched = enrich::enrich_part(patients, &self.deprivation)?;
        let attributed = attribute::attach_membership_part(enriched, &self.practices)?;
        segment::features(attributed.lazy())
    }

    /// The patients of `part` with what the risk-tier counts need (the footprint `within` and
    /// the risk scores): only the columns the scores read, and no deprivation, outcomes or other
    /// practice columns. Also the part's condition masks, for [`Self::features`] to use instead
    /// of reading the conditions again.
    fn scores(
        &self,
        inputs: &partition::PatientInputs,
        part: u32,
        within: &str,
    ) -> polars::prelude::PolarsResult<(LazyFrame, Option<segment::long::ConditionMasks>)> {
        let mut patients = Self::patients(inputs, part)?;
        let present = patients.collect_schema()?;
        let needed = [schema::PATIENT_ID, schema::PRACTICE_CODE, schema::AGE]
            .into_iter()
            .chain(crate::conditions::CONDITIONS.iter().map(|c| c.code))
            .filter(|name| present.contains(name))
            .map(col)
            .collect::<Vec<_>>();
        let patients = crate::lazy::collect_streaming(patients.select(needed))?;
        let kept = inputs
            .get(InputKind::Conditions, part)?
            .map(|conditions| {
                segment::long::ConditionMasks::of(&patients, conditions, &self.unlisted)
            })
            .transpose()?;
        let patients = segment::long::with_long_inputs(
            patients,
            kept.as_ref().map(segment::long::Conditions::Masks),
            None,
            &self.unlisted,
        )?;
        // The practices' code and the footprint alone: gathering their six other texts for
        // every patient was most of the ~0.1 s of the practices' lookup a part.
        let mut footprint = vec![schema::PRACTICE_CODE];
        if within != schema::PRACTICE_CODE && self.practices.schema().contains(within) {
            footprint.push(within);
        }
        let practices = self.practices.select(footprint)?;
        let scores =
            segment::features(attribute::attach_membership_part(patients, &practices)?.lazy())?;
        Ok((scores, kept))
    }

    fn patients(
        inputs: &partition::PatientInputs,
        part: u32,
    ) -> polars::prelude::PolarsResult<LazyFrame> {
        match inputs.get(InputKind::Patients, part)? {
            Some(patients) => Ok(patients),
            None => polars::prelude::polars_bail!(ComputeError: "internal: no registered list"),
        }
    }
}

/// Segments and risk tiers over the features, checked against their columns.
struct Segmenter {
    /// The segmentations' names.
    names: Vec<String>,
    /// One column per segmentation.
    columns: Vec<Expr>,
    /// The primary segment (the first segmentation's).
    primary: Expr,
    /// The risk tier, over the columns `segment::risk` adds.
    tier: Expr,
    method: segment::risk::TierMethod,
    /// The footprint of the tier percentiles (a code column, or `england`).
    within: &'static str,
    /// The indicators, checked against the segmented columns.
    prepared: Vec<measure::PreparedIndicator>,
}

impl Segmenter {
    /// Parse and check the segmentation rules, the risk settings and the indicators against
    /// the features' columns (no data is read).
    fn new(config: &Config, features: &polars::prelude::Schema) -> anyhow::Result<Self> {
        let mut names = Vec::new();
        let mut columns = Vec::new();
        for segmentation in &config.segmentations {
            let prepared = segment::prepare(segmentation, features)?;
            columns.push(prepared.expr.alias(segment::segment_column(&prepared.name)));
            names.push(prepared.name);
        }
        let within = match config.risk.within.as_str() {
            "england" => "england",
            "icb" => schema::ICB_CODE,
            "practice" => schema::PRACTICE_CODE,
            "pcn" => schema::PCN_CODE,
            other => {
                return Err(UserError(format!(
                    "risk.within: unknown footprint `{other}` (expected pcn, icb, practice or england)"
                ))
                .into());
            }
        };
        let primary = names
            .first()
            .map_or(lit("Unsegmented"), |n| col(segment::segment_column(n)));
        let mut segmenter = Segmenter {
            names,
            columns,
            primary,
            tier: segment::risk::tier(config.risk.tiers, &config.risk.cutoffs),
            method: config.risk.tiers,
            within,
            prepared: Vec::new(),
        };
        let probe = polars::prelude::DataFrame::empty_with_schema(features).lazy();
        let schema = segmenter
            .with_segments(probe, lit(segment::risk::TIERS[0]))
            .collect_schema()
            .context("reading the segmented patient columns")?;
        segmenter.prepared = measure::prepare(&config.indicators, &schema)?;
        Ok(segmenter)
    }

    fn with_segments(&self, patients: LazyFrame, tier: Expr) -> LazyFrame {
        patients
            .with_columns(self.columns.clone())
            .with_columns([tier.alias(segment::RISK_TIER)])
            .with_column(self.primary.clone().alias(segment::SEGMENT))
    }

    /// The features with segments and risk tier (`shares`: the percentile shares counted over
    /// the whole list; `None` for cut-off tiers).
    fn segmented(
        &self,
        features: LazyFrame,
        shares: Option<&segment::risk::TierShares>,
    ) -> LazyFrame {
        let with_inputs = segment::risk::with_tier_shares(features, shares, self.within);
        segment::risk::without_tier_inputs(
            self.with_segments(with_inputs, self.tier.clone()),
            self.method,
        )
    }
}

/// The set bits of a yes/no column, missing as no: for the loops that read flags by row.
///
/// # Errors
/// If the column is not yes/no.
pub(crate) fn flag_bits(
    column: &polars::prelude::Column,
) -> polars::prelude::PolarsResult<polars_arrow::bitmap::Bitmap> {
    let flags = column.bool()?.rechunk();
    let Some(array) = flags.downcast_iter().next() else {
        return Ok(polars_arrow::bitmap::Bitmap::new_zeroed(0));
    };
    Ok(match array.validity() {
        Some(valid) if valid.unset_bits() > 0 => array.values() & valid,
        _ => array.values().clone(),
    })
}

/// A numeric column as plain `f64`s (cast as needed), `missing` where null: for the loops
/// that hand columns to the statistics or to disclosure control.
///
/// # Errors
/// If the column is missing or not numeric.
pub(crate) fn f64_values(
    frame: &polars::prelude::DataFrame,
    name: &str,
    missing: f64,
) -> polars::prelude::PolarsResult<Vec<f64>> {
    Ok(frame
        .column(name)?
        .cast(&polars::prelude::DataType::Float64)?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(missing))
        .collect())
}

/// A default run id: the UTC time, to the second (`20260201T023000Z`).
pub fn default_run_id() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

/// Whether `name` can be a run id (a folder name that is not hidden and not `latest`).
pub fn valid_run_id(name: &str) -> bool {
    !name.is_empty()
        && name != publish::LATEST
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Column names of the patient-level table that identify patients (never published).
pub const IDENTIFYING_COLUMNS: &[&str] = &[schema::PATIENT_ID];
