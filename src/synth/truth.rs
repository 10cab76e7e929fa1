//! `truth.json`: what the generator planted, and what it implies, from the model itself.
//!
//! Owns the expected values the models imply (not the sample's), for England and for the run's
//! selection, and the document that records them beside the data: the seed and arguments, the
//! model of every outcome, condition and flag, the planted deprivation effect per outcome, and
//! the SII and RII of each outcome across IMD deciles.
//!
//! **The population the truth is computed on** is the generator's own registered population:
//! every practice (England; or the selected ones at their generated sizes) × the LSOAs of its
//! catchment × the three age bands of the age model, with single years and sexes by England's
//! profile within each band. For each outcome and decile, the expected eligible people and
//! events integrate the model over that population and over the latent score (Gauss–Hermite,
//! `super::model`). The SII and RII are the weighted least-squares point estimates of
//! PHEindicatormethods' `phe_sii` over the ten decile values (quantile 1 = most deprived,
//! weights = eligible population shares, no transform, multiplier 1): SII = value at the least
//! deprived end minus value at the most deprived end of the fitted line, RII = their ratio
//! (least / most deprived). So an outcome that is worse in deprived areas has a negative SII and
//! an RII below 1 for counts and "bad" events, and the reverse for screening and vaccination.

use serde::Serialize;

use super::Settings;
use super::catchment::{
    ANCHOR_SCORE_SD, CANDIDATES, CANDIDATES_PER_RANK, CatchmentModel, MAX_TILT, NEIGHBOUR_RANK,
    PATIENTS_PER_NEIGHBOUR, ROUNDS,
};
use super::frames::Reference;
use super::model::{DECILES, Effects, Expectation, Link, Model, Population};
use super::population::{FlagModel, PRACTICE_BANDS, spread_bands};
use super::selection::Selection;
use super::simulate::{Models, catchment_band_probabilities};
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

/// One decile's expected value.
#[derive(Debug, Clone, Serialize)]
pub struct DecileValue {
    /// IMD decile (1 = most deprived).
    pub decile: u8,
    /// Expected eligible people.
    pub eligible: f64,
    /// Share of all eligible people.
    pub population_share: f64,
    /// Expected value: a proportion (binary) or events per person-year (count).
    pub value: f64,
}

/// Expected values across deciles, and the gradient they imply.
#[derive(Debug, Clone, Serialize)]
pub struct Gradient {
    /// Expected value over all eligible people.
    pub value: f64,
    /// Expected eligible people.
    pub eligible: f64,
    /// By decile.
    pub by_decile: Vec<DecileValue>,
    /// Slope index of inequality (least minus most deprived end), `null` with fewer than two
    /// populated deciles.
    pub sii: Option<f64>,
    /// Relative index of inequality (least / most deprived end).
    pub rii: Option<f64>,
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
}

const MODEL_FORM: &str = "η = intercept + age_slope·t + age_curvature·t² + female·[woman] + deprivation·(10 − decile) + latent·u, with t = (age − 50)/10; logit link: P = 1/(1 + e^−η); log link: rate per person-year = e^η, counts drawn as Poisson";
const DEPRIVATION: &str = "decile = national IoD2019 IMD decile of the patient's LSOA 2011 (1 = most deprived); the deprivation coefficient is a log odds (logit) or log rate (log) ratio per decile step toward more deprived";
const LATENT: &str = "u ~ Normal(0, 1), drawn once per patient and shared by every condition, flag and outcome (loading `latent`): it makes conditions cluster and ties admissions and deaths to multimorbidity";
const CALIBRATION: &str = "each intercept is solved so that England's residents (IoD2019 mid-2015 LSOA denominators by decile, spread over single years of age and sex by England's profile) have the target value among the eligible, integrating over u";
const BINARY_ROWS: &str = "binary outcomes: one row per eligible patient, value 0 or 1";
const COUNT_ROWS: &str = "count outcomes: one row per patient with a count of at least 1; a patient without a row counted 0";
const EXPECTED_VALUES: &str = "england: every practice at its real list size, its catchment and its age model; selection: the generated practices at their generated sizes; both integrate the model over age, sex and u (not the sample)";
const SII: &str = "weighted least squares of the decile values on the relative rank (cumulative midpoint of eligible population shares, decile 1 = most deprived first), as PHEindicatormethods phe_sii's point estimate with no transform and multiplier 1: sii = fitted value at the least deprived end minus at the most deprived end; rii = their ratio (least / most)";
const CATCHMENT_MODEL: &str = "anchor LSOA drawn ∝ population × closeness of its IMD score to the practice's published score; candidates = nearest LSOAs of the practice's ICB with distance decay exp(−d/λ); iterative proportional fitting over the ICB's practices: each practice's population-weighted IMD score equals its published score (exponential tilt), each LSOA's registrations approach its share of the ICB's residents (see src/synth/catchment.rs)";

/// The population of a set of practices with given list sizes, by decile, age and sex, as
/// the generator's catchment and age models imply it.
pub fn registered_population(
    reference: &Reference,
    catchments: &CatchmentModel,
    models: &Models,
    practices: &[(usize, f64)],
) -> Population {
    let mut by_decile = [[0.0f64; 3]; DECILES];
    for &(practice, list_size) in practices {
        let (Some(catchment), Some(bands)) = (
            catchments.catchments.get(practice),
            models.practice_bands.get(practice),
        ) else {
            continue;
        };
        let probabilities = catchment_band_probabilities(reference, catchment, bands);
        for ((lsoa, share), band_probabilities) in catchment
            .lsoas
            .iter()
            .zip(&catchment.shares)
            .zip(probabilities)
        {
            let Some(decile) = reference.lsoas.get(*lsoa as usize).map(|l| l.imd_decile) else {
                continue;
            };
            let row = &mut by_decile[usize::from(decile.clamp(1, 10) - 1)];
            for band in 0..3 {
                row[band] += list_size * share * band_probabilities[band];
            }
        }
    }
    let mut cells = Vec::new();
    for (index, counts) in by_decile.iter().enumerate() {
        // index < 10
        spread_bands(
            &models.profile,
            &PRACTICE_BANDS,
            index as u8 + 1,
            counts,
            &mut cells,
        );
    }
    Population { cells }
}

/// The SII and RII point estimates over quantile values ordered from most to least deprived,
/// weighted by population: weighted least squares of value on relative rank (PHEindicatormethods
/// `phe_sii`, no transform, multiplier 1). `None` with fewer than two populated quantiles.
///
/// TODO(merge): use crate::stats::sii when the statistics module is on main.
pub fn sii_point_estimate(values: &[f64], populations: &[f64]) -> Option<(f64, f64)> {
    let rows: Vec<(f64, f64)> = values
        .iter()
        .zip(populations)
        .filter(|(v, p)| v.is_finite() && **p > 0.0)
        .map(|(v, p)| (*v, *p))
        .collect();
    if rows.len() < 2 {
        return None;
    }
    let total: f64 = rows.iter().map(|r| r.1).sum();
    let mut cumulative = 0.0;
    let points: Vec<(f64, f64, f64)> = rows
        .iter()
        .map(|(value, population)| {
            let share = population / total;
            let rank = cumulative + share / 2.0;
            cumulative += share;
            (share, rank, *value)
        })
        .collect();
    let mean_rank: f64 = points.iter().map(|(a, b, _)| a * b).sum();
    let mean_value: f64 = points.iter().map(|(a, _, v)| a * v).sum();
    let sxy: f64 = points
        .iter()
        .map(|(a, b, v)| a * (b - mean_rank) * (v - mean_value))
        .sum();
    let sxx: f64 = points
        .iter()
        .map(|(a, b, _)| a * (b - mean_rank).powi(2))
        .sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = mean_value - slope * mean_rank;
    Some((slope, (intercept + slope) / intercept))
}

fn gradient(expectation: &Expectation) -> Gradient {
    let values = expectation.by_decile();
    let eligible: f64 = expectation.eligible.iter().sum();
    let by_decile = (0..DECILES)
        .map(|i| DecileValue {
            // i < 10
            decile: i as u8 + 1,
            eligible: expectation.eligible[i],
            population_share: if eligible > 0.0 {
                expectation.eligible[i] / eligible
            } else {
                0.0
            },
            value: values[i],
        })
        .collect();
    let (sii, rii) = match sii_point_estimate(&values, &expectation.eligible) {
        Some((sii, rii)) => (Some(sii), Some(rii)),
        None => (None, None),
    };
    Gradient {
        value: expectation.overall(),
        eligible,
        by_decile,
        sii,
        rii,
    }
}

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
                england: gradient(&england.expect(&outcome.model, within)),
                selection: gradient(&generated.expect(&outcome.model, within)),
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
                target: super::population::FLAGS
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, source)| match source {
                        super::population::FlagSource::Model { prevalence, .. } => {
                            Some(*prevalence)
                        }
                        super::population::FlagSource::Condition(_) => None,
                    }),
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
            sii: SII,
        },
        outcomes,
        conditions,
        flags,
        catchment,
        reference_notes: reference.dropped.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sii_of_a_straight_line_is_its_slope() {
        // Equal populations: ranks 0.05, 0.15, …, 0.95; value = 10 + 20·rank.
        let values: Vec<f64> = (0..10)
            .map(|i| 10.0 + 20.0 * (0.05 + 0.1 * f64::from(i)))
            .collect();
        let (sii, rii) = sii_point_estimate(&values, &[1.0; 10]).expect("ten deciles");
        assert!((sii - 20.0).abs() < 1e-9, "{sii}");
        assert!((rii - 30.0 / 10.0).abs() < 1e-9, "{rii}");
    }

    #[test]
    fn sii_matches_the_reference_point_estimate() {
        // PHEindicatormethods test data, area1 (sii_input.csv records 1–10): sii 6.9346, rii 1.0888.
        let values = [
            75.9334590103081,
            78.3442382727843,
            83.8360631041654,
            83.6375399664931,
            80.4655031529559,
            81.1156759857022,
            81.6930835718562,
            84.1900062060987,
            80.5955641081472,
            86.2894349578624,
        ];
        let populations = [
            7291.0, 7997.0, 6105.0, 7666.0, 5790.0, 6934.0, 5918.0, 5974.0, 7147.0, 7534.0,
        ];
        let (sii, rii) = sii_point_estimate(&values, &populations).expect("ten deciles");
        assert!((sii - 6.934616473668819).abs() < 1e-6, "{sii}");
        assert!((rii - 1.0888180804446217).abs() < 1e-6, "{rii}");
    }

    #[test]
    fn sii_needs_two_quantiles() {
        assert_eq!(sii_point_estimate(&[1.0], &[5.0]), None);
        assert_eq!(sii_point_estimate(&[1.0, f64::NAN], &[5.0, 5.0]), None);
    }
}
