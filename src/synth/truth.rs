//! `truth.json`: what the generator planted, and what it implies, from the model itself.
//!
//! Owns the document that records a run beside its data: the seed and arguments, the model of
//! every outcome, condition and flag, the planted deprivation effect per outcome, and the
//! expected values with their SII and RII for England and for the run's selection. The
//! expected values themselves (over the generator's registered population, not the sample) are
//! computed in `super::expected`.

use serde::Serialize;

use super::Settings;
use super::catchment::{
    ANCHOR_SCORE_SD, CANDIDATES, CANDIDATES_PER_RANK, CatchmentModel, MAX_TILT, NEIGHBOUR_RANK,
    PATIENTS_PER_NEIGHBOUR, ROUNDS,
};
use super::expected::{Gradient, gradient, registered_population};
use super::flags::{FLAGS, FlagModel, FlagSource};
use super::frames::Reference;
use super::model::{Effects, Link, Model};
use super::selection::Selection;
use super::simulate::Models;
use crate::geometry::LocationSummary;
use crate::indicators::IndicatorKind;

/// The whole document.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// What wrote it.
    pub generator: &'static str,
    /// healthgap's version.
    pub version: &'static str,
    /// The seed.
    pub seed: u64,
    /// The arguments, as resolved.
    pub arguments: Settings,
    /// The extract date (ages and memberships are at it; outcomes cover the 12 months to it).
    pub extract_date: String,
    /// The `period` written on outcome rows.
    pub period: String,
    /// What was generated.
    pub selection: SelectionTruth,
    /// How to read the models and values below.
    pub conventions: Conventions,
    /// One entry per outcome indicator.
    pub outcomes: Vec<OutcomeTruth>,
    /// One entry per condition code.
    pub conditions: Vec<AttributeTruth>,
    /// One entry per patient flag.
    pub flags: Vec<AttributeTruth>,
    /// The catchment model and how well it meets the published practice scores.
    pub catchment: CatchmentTruth,
    /// Notes on the reference data (practices left out, and why).
    pub reference_notes: Vec<String>,
}

/// What was generated.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionTruth {
    /// `pcn`, `icb` or `england`.
    pub scale: super::selection::Scale,
    /// The PCN, at PCN scale.
    pub pcn: Option<String>,
    /// The ICB (ODS code).
    pub icb: Option<String>,
    /// Practices generated.
    pub practices: usize,
    /// Patients generated.
    pub patients: u64,
    /// Patients at the practices' real list sizes.
    pub listed: u64,
}

/// How to read the document.
#[derive(Debug, Clone, Serialize)]
pub struct Conventions {
    /// The model form.
    pub model_form: &'static str,
    /// The deprivation variable.
    pub deprivation: &'static str,
    /// The latent score.
    pub latent: &'static str,
    /// How intercepts were set.
    pub calibration: &'static str,
    /// Rows of binary outcomes.
    pub binary_rows: &'static str,
    /// Rows of count outcomes.
    pub count_rows: &'static str,
    /// The populations the expected values are over.
    pub expected_values: &'static str,
    /// The age-standardised values.
    pub age_standardised: &'static str,
    /// The SII/RII method and sign.
    pub sii: &'static str,
}

/// A model's coefficients.
#[derive(Debug, Clone, Serialize)]
pub struct Coefficients {
    /// `logit` or `log`.
    pub link: Link,
    /// α.
    pub intercept: f64,
    /// The slopes.
    #[serde(flatten)]
    pub effects: Effects,
    /// Who it applies to, in words.
    pub eligible: String,
}

impl Coefficients {
    fn of(model: &Model, eligible: String) -> Self {
        Coefficients {
            link: model.link,
            intercept: model.intercept,
            effects: model.effects,
            eligible,
        }
    }
}

/// The planted deprivation effect of an outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PlantedEffect {
    /// "odds ratio" or "rate ratio", per IMD decile step toward more deprived.
    pub measure: String,
    /// The ratio per step.
    pub ratio_per_decile: f64,
    /// Its logarithm (the model coefficient).
    pub log_ratio_per_decile: f64,
    /// Decile 1 against decile 10 at the same age, sex and latent score: ratio⁹.
    pub ratio_decile_1_vs_10: f64,
}

/// One outcome.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeTruth {
    /// Indicator code.
    pub indicator: &'static str,
    /// In words.
    pub name: &'static str,
    /// `binary` or `count`.
    pub kind: IndicatorKind,
    /// The denominator, in words.
    pub eligible: &'static str,
    /// The calibration target (England's residents, among the eligible).
    pub target: f64,
    /// The model.
    pub model: Coefficients,
    /// The planted effect.
    pub planted_effect: PlantedEffect,
    /// Expected values over England's registered population (every practice at its real list
    /// size).
    pub england: Gradient,
    /// Expected values over the generated selection (its practices at their generated sizes).
    pub selection: Gradient,
}

/// One condition or flag.
#[derive(Debug, Clone, Serialize)]
pub struct AttributeTruth {
    /// Code.
    pub code: &'static str,
    /// The calibration target (prevalence among the eligible in England's residents), or
    /// `null` for a flag that mirrors a condition.
    pub target: Option<f64>,
    /// The model, or `null` for a flag that mirrors a condition.
    pub model: Option<Coefficients>,
    /// The condition a flag mirrors.
    pub same_as_condition: Option<&'static str>,
    /// Expected prevalence among the eligible in England's registered population.
    pub england_prevalence: Option<f64>,
}

/// The catchment model.
#[derive(Debug, Clone, Serialize)]
pub struct CatchmentTruth {
    /// In words.
    pub model: &'static str,
    /// Candidate LSOAs per practice: this many times the neighbour rank …
    pub candidates_per_rank: usize,
    /// … within these bounds.
    pub candidates: (usize, usize),
    /// Spread of the anchor's closeness to the published score (IMD points).
    pub anchor_score_sd: f64,
    /// Patients per neighbour for the distance scale, and its bounds.
    pub patients_per_neighbour: f64,
    /// Bounds of the neighbour rank.
    pub neighbour_rank: (usize, usize),
    /// Rounds of the fit.
    pub rounds: usize,
    /// Largest tilt per IMD point.
    pub max_tilt: f64,
    /// How the English LSOA 2011 centroids fell among the ICB boundaries.
    pub lsoas_in_icbs: LocationSummary,
    /// Centroids outside every boundary joined to the nearest ICB within 5 km.
    pub lsoas_joined_nearest: usize,
    /// Centroids without an ICB (not used).
    pub lsoas_unlocated: usize,
    /// Practices (England) with a published score.
    pub practices_with_published_score: usize,
    /// Pearson correlation, over those practices, of the model's expected practice score
    /// (population-weighted IMD of its catchment) with the published one.
    pub england_score_correlation: Option<f64>,
    /// The same over the selection's practices.
    pub selection_score_correlation: Option<f64>,
    /// Largest absolute difference between expected and published score (England).
    pub england_max_score_gap: Option<f64>,
    /// Practices (England) whose expected score is more than 1 IMD point from the published
    /// one: their ICB's LSOAs cannot reach it (e.g. most of their patients live in another ICB).
    pub england_practices_off_by_over_1: usize,
}

const MODEL_FORM: &str = "η = intercept + age_slope·t + age_curvature·t² + female·[woman] + deprivation·(10 − decile) + latent·u, with t = (age − 50)/10; logit link: P = 1/(1 + e^−η); log link: rate per person-year = e^η, counts drawn as Poisson";
const DEPRIVATION: &str = "decile = national IoD2019 IMD decile of the patient's LSOA 2011 (1 = most deprived); the deprivation coefficient is a log odds (logit) or log rate (log) ratio per decile step toward more deprived";
const LATENT: &str = "u ~ Normal(0, 1), drawn once per patient and shared by every condition, flag and outcome (loading `latent`): it makes conditions cluster and ties admissions and deaths to multimorbidity";
const CALIBRATION: &str = "each intercept is solved so that England's residents (IoD2019 mid-2015 LSOA denominators by decile, spread over single years of age and sex by England's profile) have the target value among the eligible, integrating over u";
const BINARY_ROWS: &str = "binary outcomes: one row per eligible patient, value 0 or 1";
const COUNT_ROWS: &str = "count outcomes: one row per patient with a count of at least 1; a patient without a row counted 0";
const EXPECTED_VALUES: &str = "england: every practice at its real list size, its catchment and its age model; selection: the generated practices at their generated sizes; both integrate the model over age, sex and u (not the sample)";
const AGE_STANDARDISED: &str = "age_standardised: direct standardisation of the same expected values to ESP2013 (19 five-year bands, 90+ open; weights summing to 100,000) over the bands with eligible people, in the same unit as the crude value (a proportion, or events per person-year); its SII and RII weight deciles by eligible people";
const SII: &str = "weighted least squares of the decile values on the relative rank (cumulative midpoint of eligible population shares, decile 1 = most deprived first), as PHEindicatormethods phe_sii's point estimate with no transform and multiplier 1: sii = fitted value at the least deprived end minus at the most deprived end; rii = their ratio (least / most); null with fewer than five populated deciles (the reference's minimum)";
const CATCHMENT_MODEL: &str = "anchor LSOA drawn ∝ population × closeness of its IMD score to the practice's published score; candidates = nearest LSOAs of the practice's ICB with distance decay exp(−d/λ); iterative proportional fitting over the ICB's practices: each practice's population-weighted IMD score equals its published score (exponential tilt), each LSOA's registrations approach its share of the ICB's residents (see src/synth/catchment.rs)";

fn correlation(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    if pairs.len() < 3 {
        return None;
    }
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pairs.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let syy: f64 = pairs.iter().map(|(_, y)| (y - my).powi(2)).sum();
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Everything `truth.json` needs.
pub struct TruthInputs<'a> {
    /// The real frames.
    pub reference: &'a Reference,
    /// The catchments.
    pub catchments: &'a CatchmentModel,
    /// The models.
    pub models: &'a Models,
    /// What was generated.
    pub selection: &'a Selection,
    /// The arguments.
    pub settings: &'a Settings,
    /// The `period` of outcome rows.
    pub period: &'a str,
}

/// Compute the truth.
pub fn truth(inputs: &TruthInputs<'_>) -> Truth {
    let TruthInputs {
        reference,
        catchments,
        models,
        selection,
        settings,
        period,
    } = inputs;
    let england_practices: Vec<(usize, f64)> = reference
        .practices
        .iter()
        .enumerate()
        .map(|(i, p)| (i, f64::from(p.list_size)))
        .collect();
    let selected: Vec<(usize, f64)> = selection
        .practices
        .iter()
        .map(|&(i, n)| (i, f64::from(n)))
        .collect();
    let england = registered_population(reference, catchments, models, &england_practices);
    let generated = registered_population(reference, catchments, models, &selected);

    let outcomes = models
        .outcomes
        .iter()
        .map(|outcome| {
            let within = outcome
                .condition
                .and_then(|c| models.conditions.get(c))
                .map(|c| &c.model);
            let ratio = outcome.spec.ratio_per_decile;
            OutcomeTruth {
                indicator: outcome.indicator.code,
                name: outcome.indicator.name,
                kind: outcome.indicator.kind,
                eligible: outcome.indicator.eligible,
                target: outcome.spec.target,
                model: Coefficients::of(&outcome.model, outcome.indicator.eligible.to_string()),
                planted_effect: PlantedEffect {
                    measure: format!(
                        "{} per IMD decile step toward more deprived",
                        outcome.ratio_name()
                    ),
                    ratio_per_decile: ratio,
                    log_ratio_per_decile: ratio.ln(),
                    ratio_decile_1_vs_10: ratio.powi(9),
                },
                england: gradient(&england, &outcome.model, within),
                selection: gradient(&generated, &outcome.model, within),
            }
        })
        .collect();

    let conditions = models
        .conditions
        .iter()
        .map(|c| AttributeTruth {
            code: c.spec.code,
            target: Some(c.spec.prevalence),
            model: Some(Coefficients::of(&c.model, c.model.eligibility.describe())),
            same_as_condition: None,
            england_prevalence: Some(england.expect(&c.model, None).overall()),
        })
        .collect();
    let flags = models
        .flags
        .iter()
        .map(|(name, flag)| match flag {
            FlagModel::Drawn(model) => AttributeTruth {
                code: name,
                target: FLAGS.iter().find(|(n, _)| n == name).and_then(
                    |(_, source)| match source {
                        FlagSource::Model { prevalence, .. } => Some(*prevalence),
                        FlagSource::Condition(_) => None,
                    },
                ),
                model: Some(Coefficients::of(model, model.eligibility.describe())),
                same_as_condition: None,
                england_prevalence: Some(england.expect(model, None).overall()),
            },
            FlagModel::Condition(index) => AttributeTruth {
                code: name,
                target: None,
                model: None,
                same_as_condition: crate::conditions::CONDITIONS.get(*index).map(|c| c.code),
                england_prevalence: models
                    .conditions
                    .get(*index)
                    .map(|c| england.expect(&c.model, None).overall()),
            },
        })
        .collect();

    let score_pairs = |practices: &mut dyn Iterator<Item = usize>| -> Vec<(f64, f64)> {
        practices
            .filter_map(|i| {
                let published = reference.practices.get(i)?.published_score?;
                Some((catchments.catchments.get(i)?.expected_score, published))
            })
            .collect()
    };
    let england_pairs = score_pairs(&mut (0..reference.practices.len()));
    let selection_pairs = score_pairs(&mut selection.practices.iter().map(|p| p.0));
    let geography = &catchments.geography;
    let catchment = CatchmentTruth {
        model: CATCHMENT_MODEL,
        candidates_per_rank: CANDIDATES_PER_RANK,
        candidates: CANDIDATES,
        anchor_score_sd: ANCHOR_SCORE_SD,
        patients_per_neighbour: PATIENTS_PER_NEIGHBOUR,
        neighbour_rank: NEIGHBOUR_RANK,
        rounds: ROUNDS,
        max_tilt: MAX_TILT,
        lsoas_in_icbs: geography.located,
        lsoas_joined_nearest: geography.joined_nearest,
        lsoas_unlocated: geography.unlocated,
        practices_with_published_score: england_pairs.len(),
        england_score_correlation: correlation(&england_pairs),
        selection_score_correlation: correlation(&selection_pairs),
        england_max_score_gap: england_pairs
            .iter()
            .map(|(e, p)| (e - p).abs())
            .max_by(f64::total_cmp),
        england_practices_off_by_over_1: england_pairs
            .iter()
            .filter(|(e, p)| (e - p).abs() > 1.0)
            .count(),
    };

    Truth {
        generator: "healthgap synth",
        version: env!("CARGO_PKG_VERSION"),
        seed: settings.seed,
        arguments: (*settings).clone(),
        extract_date: reference.extract_date.to_string(),
        period: period.to_string(),
        selection: SelectionTruth {
            scale: selection.scale,
            pcn: selection.pcn.clone(),
            icb: selection.icb.clone(),
            practices: selection.practices.len(),
            patients: selection.patients,
            listed: selection.listed,
        },
        conventions: Conventions {
            model_form: MODEL_FORM,
            deprivation: DEPRIVATION,
            latent: LATENT,
            calibration: CALIBRATION,
            binary_rows: BINARY_ROWS,
            count_rows: COUNT_ROWS,
            expected_values: EXPECTED_VALUES,
            age_standardised: AGE_STANDARDISED,
            sii: SII,
        },
        outcomes,
        conditions,
        flags,
        catchment,
        reference_notes: reference.dropped.clone(),
    }
}
