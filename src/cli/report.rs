//! `healthgap report`: the annual evidence pack of a PCN (or of every PCN of an ICB). The work
//! is `crate::report`; this file turns flags into `report::Settings` and prints what was written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::UserError;
use crate::output::Printer;
use crate::report::{self, Settings, Target, Year};

/// Write a PCN's health inequalities evidence pack from a run.
///
/// The pack is one self-contained HTML page (charts inline as SVG, styles inline, nothing
/// fetched: it opens offline, can be emailed as one file and prints on A4) and a Markdown twin
/// whose charts are SVG files in `charts/` beside it. It holds: the population and deprivation
/// profile against the ICB and England (registered people, IMD score, Core20 share, people by
/// IMD quintile, member practices); segments and risk tiers by deprivation; the gradients that
/// matter most (gradient charts with the SII line and funnel plots of the ICB's PCNs); candidate
/// underserved cohorts ranked by size × gap with their limits; a map of the ICB with the PCN's
/// neighbourhoods; the SII trend over earlier runs of the same output root; and an appendix of
/// methods, data vintages (every input with its SHA-256) and definitions.
///
/// It reads only the run's publishable tables (never patient-level or rejected rows) and prints
/// suppressed values as "suppressed". Files go to OUT/<PCN>/<PCN>-evidence-pack.{html,md}; with
/// --all, one pack per PCN of the ICB plus OUT/index.html and OUT/index.md. The run folder itself
/// is never written to.
///
/// Exit codes: 0 written; 2 an unknown PCN or ICB (the closest codes are named), no run, or a
/// bad flag; 1 an internal failure.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  healthgap report --pcn U35004\n  healthgap report --pcn U35004 --run out/20260201T023000Z --year 2025-26\n  healthgap report --all --icb QHG --out /srv/packs/2025-26\n  scripts/screenshot-report.sh out/latest U35004 pack.png   # a full-page PNG to look at"
)]
pub struct ReportArgs {
    /// The PCN (ODS code, e.g. U35004)
    #[arg(
        long,
        value_name = "CODE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub pcn: Option<String>,

    /// Write a pack for every PCN of the ICB given with --icb, and an index page
    #[arg(long, requires = "icb")]
    pub all: bool,

    /// The ICB for --all (ODS code such as QHG, or ONS code such as E54000024)
    #[arg(long, value_name = "CODE", requires = "all")]
    pub icb: Option<String>,

    /// The run: a run folder, or an output root holding `latest`
    #[arg(long, value_name = "DIR", default_value = crate::query::run::DEFAULT_RUN)]
    pub run: PathBuf,

    /// The reporting year shown in the pack, YYYY-YY (default: the financial year of the
    /// run's extract date)
    #[arg(long, value_name = "YYYY-YY")]
    pub year: Option<String>,

    /// Output folder (default: reports/<run_id> in the current folder)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Run `healthgap report`.
pub fn run(args: ReportArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let year = args
        .year
        .as_deref()
        .map(Year::parse)
        .transpose()
        .map_err(UserError)?;
    let target = match (args.pcn, args.icb) {
        (Some(pcn), _) => Target::Pcn(pcn),
        (None, Some(icb)) => Target::AllOfIcb(icb),
        (None, None) => {
            return Err(UserError("give --pcn CODE, or --all --icb CODE".into()).into());
        }
    };
    let settings = Settings {
        run: args.run,
        target,
        year,
        out: args.out,
    };
    let written = report::write(&settings, printer).map_err(|e| {
        if e.is_user_error() {
            anyhow::Error::new(UserError(format!("{:#}", anyhow::Error::new(e))))
        } else {
            anyhow::Error::new(e)
        }
    })?;
    for pack in &written.packs {
        printer.result(pack.html.display().to_string())?;
    }
    if let Some((html, _)) = &written.index {
        printer.result(html.display().to_string())?;
    }
    printer.note(format!(
        "{} pack{} of run {} in {} (Markdown and charts beside each page); read the run in {:.1} s, \
         wrote the packs in {:.1} s",
        written.packs.len(),
        if written.packs.len() == 1 { "" } else { "s" },
        written.run_id,
        written.out.display(),
        written.gather_time.as_secs_f64(),
        written.render_time.as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}
