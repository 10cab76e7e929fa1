//! `healthgap synth`: generate a synthetic registered list, conditions and outcomes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::error::UserError;
use crate::output::Printer;
use crate::synth::{OutputFormat, Scale, Settings, generate};

/// Generate a synthetic patient-level registered list, conditions and outcomes with planted
/// deprivation gradients.
///
/// Grounded in the real reference data the config names: real practices at their list sizes,
/// with their PCN and ICB; real LSOAs with their deprivation; each practice's catchment drawn
/// from LSOAs of its own ICB so that its population-weighted IMD score is its published one.
/// Outcomes carry known odds or rate ratios per IMD decile, recorded with the SII and RII they
/// imply in DIR/truth.json. Writes DIR/patients, conditions, outcomes and practice_lsoa (the
/// NHS Digital aggregate layout) as Parquet or CSV, truth.json, and DIR/healthgap.toml, a
/// config over it all. The same seed and arguments give byte-identical files.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  healthgap synth --scale pcn --seed 1 --out synth/pcn
  healthgap synth --scale pcn --pcn U89141 --seed 1 --out synth/stockton
  healthgap synth --scale icb --icb QHM --patients 100000 --seed 7 --out synth/ne
  healthgap synth --patients 1000000 --seed 42 --out synth/1m --format csv
  healthgap synth --scale england --seed 42 --out /data/synth/england
  healthgap validate --config synth/pcn/healthgap.toml")]
pub struct SynthArgs {
    /// Total patients: every selected list is scaled to add up to N (with no --scale, N
    /// patients across all of England)
    #[arg(long, value_name = "N")]
    pub patients: Option<u64>,

    /// How much of England: one PCN (about 30–50k patients), one ICB (1–3 million at real list
    /// sizes) or all practices (about 59 million)
    #[arg(long, value_enum)]
    pub scale: Option<Scale>,

    /// The PCN at --scale pcn (e.g. U89141); default: the PCN with the median list total
    #[arg(long, value_name = "CODE")]
    pub pcn: Option<String>,

    /// The ICB at --scale icb, by ODS (QHM) or ONS (E54000050) code; default: the ICB with
    /// the median list total
    #[arg(long, value_name = "CODE")]
    pub icb: Option<String>,

    /// Seed of every random draw: same seed and arguments, same files
    #[arg(long, value_name = "S")]
    pub seed: u64,

    /// Folder to write into (created if missing; files of a previous run are replaced)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Format of the tables
    #[arg(long, value_enum, default_value_t = OutputFormat::Parquet)]
    pub format: OutputFormat,

    /// The config naming the reference data (practices, networks, deprivation, geography)
    #[arg(long, short, value_name = "FILE", default_value = "healthgap.toml")]
    pub config: PathBuf,
}

impl SynthArgs {
    /// The run's settings: the scale implied by --pcn or --icb when not given, checked flags.
    ///
    /// # Errors
    /// A [`UserError`] for flags that contradict each other.
    pub fn settings(&self) -> Result<Settings, UserError> {
        let scale = match (self.scale, &self.pcn, &self.icb) {
            (Some(scale), _, _) => scale,
            (None, Some(_), _) => Scale::Pcn,
            (None, None, Some(_)) => Scale::Icb,
            (None, None, None) if self.patients.is_some() => Scale::England,
            (None, None, None) => {
                return Err(UserError(
                    "say how much to generate: --patients N, or --scale pcn|icb|england".into(),
                ));
            }
        };
        if self.pcn.is_some() && scale != Scale::Pcn {
            return Err(UserError(format!(
                "--pcn picks the PCN at --scale pcn, but --scale is {}",
                scale_name(scale)
            )));
        }
        if self.icb.is_some() && scale != Scale::Icb {
            return Err(UserError(format!(
                "--icb picks the ICB at --scale icb, but --scale is {}",
                scale_name(scale)
            )));
        }
        Ok(Settings {
            seed: self.seed,
            scale,
            patients: self.patients,
            pcn: self.pcn.clone(),
            icb: self.icb.clone(),
            format: self.format,
            config: self.config.clone(),
            out: self.out.clone(),
        })
    }
}

fn scale_name(scale: Scale) -> &'static str {
    match scale {
        Scale::Pcn => "pcn",
        Scale::Icb => "icb",
        Scale::England => "england",
    }
}

/// Run `healthgap synth`.
pub fn run(args: SynthArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    let config = Config::load(&settings.config)?;
    let summary = generate(&settings, &config, printer)?;
    for note in &summary.notes {
        printer.note(format!("note: {note}"));
    }
    let selection = &summary.selection;
    let place = match (&selection.pcn, &selection.icb) {
        (Some(pcn), Some(icb)) => format!("PCN {pcn} (ICB {icb})"),
        (None, Some(icb)) => format!("ICB {icb}"),
        _ => "England".to_string(),
    };
    printer.result(format!(
        "{} patients of {} practices in {place}, seed {}, in {:.1} s (read {:.1} s, model {:.1} s, generate {:.1} s)",
        selection.patients,
        selection.practices.len(),
        settings.seed,
        summary.seconds.read + summary.seconds.model + summary.seconds.generate,
        summary.seconds.read,
        summary.seconds.model,
        summary.seconds.generate,
    ))
    .context("writing the summary")?;
    for file in &summary.files {
        let line = match file.rows {
            Some(rows) => format!("  {:>12} rows  {}", rows, file.path.display()),
            None => format!("  {:>12}       {}", "", file.path.display()),
        };
        printer.result(line).context("writing the summary")?;
    }
    Ok(ExitCode::SUCCESS)
}
