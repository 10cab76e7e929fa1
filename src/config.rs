//! The run configuration (one TOML file, DESIGN §5): types, loading and validation.
//!
//! Paths in the file are relative to the file's own folder, so a config and its data can move
//! together. Unknown keys are errors (a typo must not silently change a nightly run). Every key
//! is documented in the README's configuration section; `healthgap.toml` at the top of the
//! repository is a complete example.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ingest::{Format, InputKind};

/// A configuration that cannot be used: the message names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The TOML is malformed or a key is unknown or of the wrong type.
    #[error("config {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser reported (with line and column).
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config {}: `{key}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key, dotted (`validation.max_reject_rate`).
        key: String,
        /// What was expected.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run-wide settings.
    pub run: RunConfig,
    /// Input validation policy.
    #[serde(default)]
    pub validation: ValidationConfig,
    /// Tabular inputs by kind (`[inputs.iod2019]`, `[inputs.patients]`, …).
    #[serde(default)]
    pub inputs: BTreeMap<InputKind, InputSource>,
    /// Footprint polygons (`[[footprints]]`), e.g. ICB boundaries.
    #[serde(default)]
    pub footprints: Vec<FootprintSource>,
    /// How LSOAs are attributed to footprints.
    #[serde(default)]
    pub attribute: AttributeConfig,
    /// Which tables a run writes.
    #[serde(default)]
    pub outputs: OutputsConfig,
    /// Segmentations (`[[segmentations]]`); default: Bridges to Health and Core20PLUS5.
    #[serde(default = "crate::pipeline::segment::default_segmentations")]
    pub segmentations: Vec<crate::pipeline::segment::SegmentationConfig>,
    /// Risk tiers (`[risk]`).
    #[serde(default)]
    pub risk: crate::pipeline::segment::RiskConfig,
    /// Indicators over patient-level data (`[[indicators]]`).
    #[serde(default)]
    pub indicators: Vec<crate::pipeline::measure::IndicatorSpec>,
    /// Indicators from practice-level published figures (`[[practice_indicators]]`).
    #[serde(default)]
    pub practice_indicators: Vec<crate::pipeline::practice_outcomes::PracticeIndicatorSpec>,
    /// Where practice deprivation scores come from (`[practice_deprivation]`).
    #[serde(default)]
    pub practice_deprivation: crate::pipeline::practice_outcomes::PracticeDeprivationConfig,
    /// Levels and breakdowns of the `indicators` table (`[measure]`).
    #[serde(default)]
    pub measure: crate::pipeline::measure::MeasureConfig,
    /// Gradient estimation (`[gradient]`).
    #[serde(default)]
    pub gradient: crate::pipeline::gradient::GradientConfig,
    /// Statistical disclosure control of publishable tables (`[disclosure]`).
    #[serde(default)]
    pub disclosure: crate::pipeline::disclosure::DisclosureConfig,
    /// The input drift guard against the previous run (`[drift]`).
    #[serde(default)]
    pub drift: crate::pipeline::drift::DriftConfig,
    /// The folder the config file is in; relative paths were resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The config file itself.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[run]`: what the run is about.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The date the registered-list extract was taken (`YYYY-MM-DD`): ages are computed at it
    /// and network membership is taken as at it.
    pub extract_date: chrono::NaiveDate,
    /// Which English deprivation index enrich joins: `iod2019` (LSOA 2011) or `iod2025`
    /// (LSOA 2021). Welsh LSOAs use `wimd2019` when it is given.
    #[serde(default = "default_deprivation")]
    pub deprivation: InputKind,
    /// Where run folders are written (`ROOT/<run_id>/`, `ROOT/latest`).
    #[serde(default = "default_output_root")]
    pub output_root: PathBuf,
    /// Seed for every simulation (SII confidence limits), so runs are reproducible.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Largest registered list (patients) the patient stages handle in one piece; a larger
    /// list is split by patient into parts of at most this many, run one after another, so
    /// memory stays bounded (docs/scaling.md).
    #[serde(default = "default_patients_per_part")]
    pub patients_per_part: u64,
    /// The period of the patient outcomes a run measures (their `period` column, e.g.
    /// `2025/26`); unset, the latest period in the outcomes. Rows of other periods are counted
    /// and not used: one patient's values of two periods are never added together.
    #[serde(default)]
    pub outcome_period: Option<String>,
}

fn default_patients_per_part() -> u64 {
    crate::pipeline::partition::DEFAULT_PATIENTS_PER_PART
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(path) => vec![path],
        OneOrMany::Many(paths) => paths,
    })
}

fn default_deprivation() -> InputKind {
    InputKind::Iod2019
}

fn default_output_root() -> PathBuf {
    PathBuf::from("out")
}

fn default_seed() -> u64 {
    20_240_401
}

/// `[attribute]`: how LSOAs get footprints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    /// `plurality` (each LSOA to the PCN with the largest share of its registered residents) or
    /// `share` (to every PCN, weighted by share).
    #[serde(default)]
    pub residence_method: crate::pipeline::attribute::ResidenceMethod,
    /// With `plurality`, an LSOA whose largest PCN share is below this gets no PCN footprint.
    #[serde(default)]
    pub min_share: f64,
    /// Geometric attribution: a centroid in no polygon goes to the nearest one within this
    /// many kilometres (a centroid on a boundary, or a coastal one outside generalised
    /// boundaries); 0 (the default) turns this off.
    #[serde(default = "default_nearest_km")]
    pub nearest_km: f64,
}

fn default_nearest_km() -> f64 {
    // Off by default: every English LSOA 2011 centroid lies inside one of the ICB boundaries,
    // and a distance fallback would pull Welsh border LSOAs into English ICBs.
    0.0
}

impl Default for AttributeConfig {
    fn default() -> Self {
        AttributeConfig {
            residence_method: crate::pipeline::attribute::ResidenceMethod::Plurality,
            min_share: 0.0,
            nearest_km: default_nearest_km(),
        }
    }
}

/// `[outputs]`: which tables a run writes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsConfig {
    /// Write `patients_enriched`, the patient-level table (restricted: never for publication).
    #[serde(default = "default_true")]
    pub patients_enriched: bool,
}

impl Default for OutputsConfig {
    fn default() -> Self {
        OutputsConfig {
            patients_enriched: true,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `[validation]`: how strict ingest is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    /// Largest share of an input's rows that may be rejected before the run fails
    /// (default 0.01, i.e. 1%). Per-input `max_reject_rate` overrides it.
    #[serde(default = "default_max_reject_rate")]
    pub max_reject_rate: f64,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            max_reject_rate: default_max_reject_rate(),
        }
    }
}

fn default_max_reject_rate() -> f64 {
    0.01
}

/// One tabular input: a file, or several files of the same kind (e.g. one Fingertips export
/// per indicator), read with the same contract and stacked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSource {
    /// The file (CSV, TSV or Parquet) or a list of files, relative to the config file:
    /// `path = "x.csv"` or `path = ["a.csv", "b.csv"]`.
    #[serde(rename = "path", deserialize_with = "one_or_many")]
    pub paths: Vec<PathBuf>,
    /// The format, when the extension does not tell (`csv`, `tsv`, `parquet`).
    #[serde(default)]
    pub format: Option<Format>,
    /// Overrides `validation.max_reject_rate` for this input.
    #[serde(default)]
    pub max_reject_rate: Option<f64>,
}

/// One GeoJSON file of footprint polygons.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FootprintSource {
    /// What the polygons are: `icb`, `pcn`, `neighbourhood`, … (the `footprint_kind` of the
    /// attribution they produce).
    pub kind: String,
    /// The GeoJSON file, relative to the config file.
    pub path: PathBuf,
    /// Property holding each footprint's code (default: the first property ending in `CD`).
    #[serde(default)]
    pub code_property: Option<String>,
    /// Property holding each footprint's name (default: the first property ending in `NM`).
    #[serde(default)]
    pub name_property: Option<String>,
}

impl Config {
    /// Read, parse and check a config file; resolve relative paths against its folder.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key at fault.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parse a config from text as if it were read from `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key at fault.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        config.path = path.to_path_buf();
        config.run.output_root = resolve(&base_dir, &config.run.output_root);
        for source in config.inputs.values_mut() {
            for path in &mut source.paths {
                *path = resolve(&base_dir, path);
            }
        }
        for footprint in &mut config.footprints {
            footprint.path = resolve(&base_dir, &footprint.path);
        }
        config.base_dir = base_dir;
        config.check()?;
        Ok(config)
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let rate_ok = |r: f64| (0.0..=1.0).contains(&r);
        if !rate_ok(self.validation.max_reject_rate) {
            return Err(self.invalid(
                "validation.max_reject_rate",
                format!(
                    "must be a share between 0 and 1 (0.01 = 1%), found {}",
                    self.validation.max_reject_rate
                ),
            ));
        }
        for (kind, source) in &self.inputs {
            if source.paths.is_empty() {
                return Err(self.invalid(format!("inputs.{kind}.path"), "names no file"));
            }
            if let Some(rate) = source.max_reject_rate.filter(|r| !rate_ok(*r)) {
                return Err(self.invalid(
                    format!("inputs.{kind}.max_reject_rate"),
                    format!("must be a share between 0 and 1, found {rate}"),
                ));
            }
            if source.format == Some(Format::Geojson) {
                return Err(self.invalid(
                    format!("inputs.{kind}.format"),
                    "GeoJSON files are footprints: list them under [[footprints]]",
                ));
            }
        }
        if !matches!(
            self.run.deprivation,
            InputKind::Iod2019 | InputKind::Iod2025
        ) {
            return Err(self.invalid(
                "run.deprivation",
                format!("must be iod2019 or iod2025, found {}", self.run.deprivation),
            ));
        }
        if self.run.patients_per_part == 0 {
            return Err(self.invalid(
                "run.patients_per_part",
                "must be at least 1 (the largest list handled in one piece; default 4000000)",
            ));
        }
        if !(0.0..=1.0).contains(&self.attribute.min_share) {
            return Err(self.invalid(
                "attribute.min_share",
                format!(
                    "must be a share between 0 and 1, found {}",
                    self.attribute.min_share
                ),
            ));
        }
        self.measure
            .check()
            .map_err(|e| self.invalid("measure", e.0))?;
        if self.gradient.repetitions < 1000 {
            return Err(self.invalid(
                "gradient.repetitions",
                format!(
                    "must be at least 1000 (the reference's minimum), found {}",
                    self.gradient.repetitions
                ),
            ));
        }
        if self.disclosure.round_to < 1.0 || self.disclosure.suppress_up_to < 0.0 {
            return Err(self.invalid(
                "disclosure",
                "round_to must be at least 1 and suppress_up_to at least 0",
            ));
        }
        if self.risk.tiers == crate::pipeline::segment::risk::TierMethod::Cutoffs
            && (self.risk.cutoffs.len() != 3 || self.risk.cutoffs.windows(2).any(|w| w[0] > w[1]))
        {
            return Err(self.invalid(
                "risk.cutoffs",
                "with tiers = \"cutoffs\", give three ascending score thresholds (moderate, high, very high)",
            ));
        }
        let mut ids: Vec<&str> = self
            .indicators
            .iter()
            .map(|i| i.id.as_str())
            .chain(self.practice_indicators.iter().map(|i| i.id.as_str()))
            .collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(self.invalid(
                "indicators",
                format!("indicator id `{}` is declared twice", pair[0]),
            ));
        }
        self.drift
            .check(&self.input_names())
            .map_err(|(key, message)| self.invalid(key, message))?;
        let mut kinds: Vec<&str> = self.footprints.iter().map(|f| f.kind.as_str()).collect();
        kinds.sort_unstable();
        if let Some(pair) = kinds.windows(2).find(|w| w[0] == w[1]) {
            return Err(self.invalid(
                "footprints",
                format!("footprint kind `{}` is listed twice", pair[0]),
            ));
        }
        Ok(())
    }

    /// The names inputs go by in reports, manifests and `[drift.inputs]`: each `[inputs.KIND]`
    /// as `KIND`, each footprint file as `footprints.KIND`.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs
            .keys()
            .map(|k| k.name().to_string())
            .chain(
                self.footprints
                    .iter()
                    .map(|f| format!("footprints.{}", f.kind)),
            )
            .collect()
    }

    /// The reject limit for one input.
    pub fn reject_limit(&self, kind: InputKind) -> f64 {
        self.inputs
            .get(&kind)
            .and_then(|s| s.max_reject_rate)
            .unwrap_or(self.validation.max_reject_rate)
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("conf/healthgap.toml"))
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let config = parse(
            r#"
            [run]
            extract_date = "2023-02-01"
            [inputs.iod2019]
            path = "data/iod.parquet"
            [inputs.practice_outcomes]
            path = ["a.csv", "b.parquet"]
            [[footprints]]
            kind = "icb"
            path = "/abs/icb.geojson"
            "#,
        )
        .expect("valid config");
        assert_eq!(
            config.inputs[&InputKind::Iod2019].paths,
            [Path::new("conf/data/iod.parquet")]
        );
        assert_eq!(config.inputs[&InputKind::PracticeOutcomes].paths.len(), 2);
        assert_eq!(config.footprints[0].path, Path::new("/abs/icb.geojson"));
        assert_eq!(config.run.output_root, Path::new("conf/out"));
        assert!((config.reject_limit(InputKind::Iod2019) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn unknown_input_kind_is_an_error_naming_it() {
        let err = parse(
            r#"
            [run]
            extract_date = "2023-02-01"
            [inputs.iod2091]
            path = "x.csv"
            "#,
        )
        .expect_err("unknown kind");
        let message = err.to_string();
        assert!(message.contains("iod2091"), "{message}");
    }

    #[test]
    fn reject_rate_out_of_range_names_the_key() {
        let err = parse(
            r#"
            [run]
            extract_date = "2023-02-01"
            [validation]
            max_reject_rate = 5
            "#,
        )
        .expect_err("bad rate");
        assert!(
            err.to_string().contains("validation.max_reject_rate"),
            "{err}"
        );
    }

    #[test]
    fn drift_bounds_default_on_and_overrides_must_name_an_input() {
        let config = parse("[run]\nextract_date = \"2023-02-01\"\n").expect("valid");
        assert!(config.drift.enabled);
        assert!((config.drift.max_row_change - 0.10).abs() < 1e-12);
        assert!((config.drift.max_reject_rate_increase - 0.005).abs() < 1e-12);
        let err = parse(
            r#"
            [run]
            extract_date = "2023-02-01"
            [inputs.patients]
            path = "p.csv"
            [drift.inputs.patient]
            max_row_change = 0.5
            "#,
        )
        .expect_err("no such input");
        assert!(err.to_string().contains("drift.inputs.patient"), "{err}");
        let config = parse(
            r#"
            [run]
            extract_date = "2023-02-01"
            [inputs.patients]
            path = "p.csv"
            [[footprints]]
            kind = "icb"
            path = "icb.geojson"
            [drift]
            max_reject_rate_increase = 0.01
            [drift.inputs.patients]
            max_row_change = 0.5
            [drift.inputs."footprints.icb"]
            max_row_change = 0
            "#,
        )
        .expect("valid overrides");
        assert_eq!(config.drift.inputs.len(), 2);
    }

    #[test]
    fn bad_extract_date_is_a_parse_error() {
        let err = parse("[run]\nextract_date = \"01/02/2023\"\n").expect_err("bad date");
        assert!(err.to_string().contains("extract_date"), "{err}");
    }
}
