//! Who the patients are: age and sex, ethnicity and the PLUS-group flags.
//!
//! Owns the national age–sex profile, the age model (each practice's real age profile, tilted
//! toward the age structure of each LSOA it draws from), the ethnicity model, the flag models
//! and the reference population that calibrates every intercept (`super::model::calibrate`).
//! Where patients live is `super::catchment`; conditions and outcomes are `super::conditions`
//! and `super::outcomes`.
//!
//! **Age and sex.** A patient's broad age band (0–15, 16–64, 65+) is drawn from the practice's
//! published shares (House of Commons Library, April 2020) multiplied by how much younger or
//! older the patient's LSOA is than the practice's catchment on average (IoD2019 mid-2015
//! residents aged 0–15 and 60+), so younger patients come from the younger (more deprived,
//! more urban) parts of a catchment while the practice keeps its real profile. Within the band,
//! age and sex follow England's single-year profile. Practices without a published profile
//! take their ICB's list-weighted mean. Only `M` and `F` are generated (the aggregate
//! publication has no other sex).
//!
//! **Ethnicity** (NHS ethnic category): not White British with probability
//! logistic(e₀ + 0.8·urban + 0.35·deprivation + 1.3·London − 0.3·(age − 40)/10), where urban
//! and deprivation are the LSOA's standardised log density and IMD score, and e₀ makes 26.5%
//! of England's residents not White British (Census 2021); the other categories follow their
//! Census 2021 shares; 6% are `Z` (not stated), as in GP records.
//!
//! **Flags** follow the model form of `super::model` with the prevalences below (among the
//! eligible, in England's resident population); `smi` and `housebound` are the conditions
//! `schizophrenia_bipolar` and `housebound`, so flag and condition never disagree.

use rand::RngExt;

use super::frames::{Lsoa, Practice};
use super::model::{Cell, Effects, Eligibility, Link, Model, Population, calibrate, logistic};
use super::seeding::Stream;

/// Oldest age generated.
pub const MAX_AGE: u8 = 104;

/// England's population by five-year band (0–4 … 85–89, 90+), thousands, males then females:
/// ONS mid-2020 estimates, rounded. Single years share a band equally; 90+ is spread over
/// 90–104 with a decline of a quarter per year.
const MALES_BY_BAND: [f64; 19] = [
    1680.0, 1800.0, 1730.0, 1580.0, 1760.0, 1930.0, 1930.0, 1840.0, 1710.0, 1810.0, 1900.0, 1810.0,
    1540.0, 1370.0, 1370.0, 970.0, 640.0, 360.0, 170.0,
];
const FEMALES_BY_BAND: [f64; 19] = [
    1600.0, 1710.0, 1640.0, 1500.0, 1680.0, 1910.0, 1940.0, 1860.0, 1730.0, 1850.0, 1950.0, 1860.0,
    1600.0, 1440.0, 1480.0, 1100.0, 800.0, 520.0, 340.0,
];

/// The broad age bands of the practice profiles: 0–15, 16–64, 65+.
pub const PRACTICE_BANDS: [(u8, u8); 3] = [(0, 15), (16, 64), (65, MAX_AGE)];
/// The broad age bands of the IoD2019 resident denominators: 0–15, 16–59, 60+.
pub const RESIDENT_BANDS: [(u8, u8); 3] = [(0, 15), (16, 59), (60, MAX_AGE)];

/// England's population by single year of age and sex (relative weights).
#[derive(Debug, Clone, PartialEq)]
pub struct AgeProfile {
    /// `weights[age] = (male, female)`.
    weights: Vec<(f64, f64)>,
}

impl AgeProfile {
    /// England's profile: ONS mid-2020 estimates by five-year band, rounded.
    pub fn england() -> Self {
        let mut weights = Vec::with_capacity(usize::from(MAX_AGE) + 1);
        for age in 0..=MAX_AGE {
            let band = usize::from(age / 5).min(18);
            let share = if band < 18 {
                0.2
            } else {
                // 90+: geometric decline from 90, normalised over 90..=MAX_AGE.
                let k = f64::from(age - 90);
                let total: f64 = (0..=(MAX_AGE - 90)).map(|j| 0.75f64.powi(j.into())).sum();
                0.75f64.powf(k) / total
            };
            weights.push((MALES_BY_BAND[band] * share, FEMALES_BY_BAND[band] * share));
        }
        AgeProfile { weights }
    }

    /// `(age, female, share)` within the ages `from..=to`, shares summing to 1.
    pub fn within(&self, from: u8, to: u8) -> Vec<(u8, bool, f64)> {
        let mut cells = Vec::new();
        for (age, (male, female)) in self.weights.iter().enumerate() {
            let Ok(age) = u8::try_from(age) else { break };
            if age >= from && age <= to {
                cells.push((age, false, *male));
                cells.push((age, true, *female));
            }
        }
        let total: f64 = cells.iter().map(|c| c.2).sum();
        for cell in &mut cells {
            cell.2 /= total;
        }
        cells
    }

    /// A sampler of (age, sex) within each of the given bands.
    pub fn sampler(&self, bands: &[(u8, u8); 3]) -> BandSampler {
        let bands = bands.map(|(from, to)| {
            let cells = self.within(from, to);
            let mut cumulative = Vec::with_capacity(cells.len());
            let mut running = 0.0;
            for (_, _, share) in &cells {
                running += share;
                cumulative.push(running);
            }
            (
                cells.into_iter().map(|(a, f, _)| (a, f)).collect(),
                cumulative,
            )
        });
        BandSampler { bands }
    }
}

/// The (age, female) cells of one band and their cumulative shares.
type BandCells = (Vec<(u8, bool)>, Vec<f64>);

/// Draws (age, sex) within a broad age band from the national profile.
#[derive(Debug, Clone)]
pub struct BandSampler {
    bands: [BandCells; 3],
}

impl BandSampler {
    /// An (age, female) in band `band` (0, 1 or 2).
    pub fn draw(&self, band: usize, rng: &mut Stream) -> (u8, bool) {
        let (cells, cumulative) = &self.bands[band.min(2)];
        let target = rng.random::<f64>() * cumulative.last().copied().unwrap_or(1.0);
        let index = cumulative.partition_point(|&c| c <= target);
        cells
            .get(index.min(cells.len().saturating_sub(1)))
            .copied()
            .unwrap_or((40, false))
    }
}

/// An LSOA's residents in the three resident bands (0–15, 16–59, 60+), as shares.
pub fn resident_band_shares(lsoa: &Lsoa) -> [f64; 3] {
    let young = lsoa.population_0_15.max(0.0);
    let old = lsoa.population_60_plus.max(0.0);
    let middle = (lsoa.population - young - old).max(0.0);
    let total = young + middle + old;
    if total > 0.0 {
        [young / total, middle / total, old / total]
    } else {
        [1.0 / 3.0; 3]
    }
}

/// A practice's list in the three practice bands (0–15, 16–64, 65+) from its published
/// shares, when both are published and consistent.
pub fn published_band_shares(practice: &Practice) -> Option<[f64; 3]> {
    let over_16 = practice.share_16_plus?;
    let over_65 = practice.share_65_plus?;
    (over_65 <= over_16 && over_16 <= 1.0).then_some([1.0 - over_16, over_16 - over_65, over_65])
}

/// Every practice's shares in the practice bands: published, else the list-weighted mean of
/// the published shares of its ICB, else England's profile.
pub fn practice_band_shares(
    practices: &[Practice],
    icbs: usize,
    profile: &AgeProfile,
) -> Vec<[f64; 3]> {
    let mut sums = vec![([0.0; 3], 0.0); icbs];
    for practice in practices {
        if let (Some(shares), Some(sum)) =
            (published_band_shares(practice), sums.get_mut(practice.icb))
        {
            let weight = f64::from(practice.list_size);
            for (total, share) in sum.0.iter_mut().zip(shares) {
                *total += share * weight;
            }
            sum.1 += weight;
        }
    }
    let national = PRACTICE_BANDS.map(|(from, to)| {
        profile
            .within(0, MAX_AGE)
            .iter()
            .filter(|(age, _, _)| *age >= from && *age <= to)
            .map(|c| c.2)
            .sum::<f64>()
    });
    practices
        .iter()
        .map(|practice| {
            published_band_shares(practice).unwrap_or_else(|| match sums.get(practice.icb) {
                Some((sum, weight)) if *weight > 0.0 => sum.map(|s| s / weight),
                _ => national,
            })
        })
        .collect()
}

/// Age-band probabilities of a patient of a practice living in an LSOA: the practice's shares
/// tilted by the LSOA's resident shares relative to the practice catchment's mean resident
/// shares (resident bands stand in for the practice bands they overlap).
pub fn band_probabilities(
    practice_shares: &[f64; 3],
    lsoa_shares: &[f64; 3],
    catchment_shares: &[f64; 3],
) -> [f64; 3] {
    let mut probabilities = [0.0; 3];
    for band in 0..3 {
        let tilt = if catchment_shares[band] > 0.0 {
            lsoa_shares[band] / catchment_shares[band]
        } else {
            1.0
        };
        probabilities[band] = practice_shares[band] * tilt;
    }
    let total: f64 = probabilities.iter().sum();
    if total > 0.0 {
        probabilities.map(|p| p / total)
    } else {
        *practice_shares
    }
}

/// Spread population counts in broad bands over single years and sexes by the national
/// profile, into cells of one decile.
pub fn spread_bands(
    profile: &AgeProfile,
    bands: &[(u8, u8); 3],
    decile: u8,
    counts: &[f64; 3],
    cells: &mut Vec<Cell>,
) {
    for (band, count) in bands.iter().zip(counts) {
        if *count <= 0.0 {
            continue;
        }
        for (age, female, share) in profile.within(band.0, band.1) {
            cells.push(Cell {
                decile,
                age,
                female,
                weight: count * share,
            });
        }
    }
}

/// England's residents by IMD decile, single year of age and sex: the IoD2019 mid-2015
/// denominators of every LSOA in three bands, spread over single years by the national
/// profile. Every intercept is calibrated on it, so targets mean "in England's population".
pub fn reference_population(lsoas: &[Lsoa], profile: &AgeProfile) -> Population {
    let mut by_decile = [[0.0; 3]; 10];
    for lsoa in lsoas {
        let shares = resident_band_shares(lsoa);
        let row = &mut by_decile[usize::from(lsoa.imd_decile.clamp(1, 10) - 1)];
        for band in 0..3 {
            row[band] += shares[band] * lsoa.population;
        }
    }
    let mut cells = Vec::new();
    for (index, counts) in by_decile.iter().enumerate() {
        // index < 10
        spread_bands(
            profile,
            &RESIDENT_BANDS,
            index as u8 + 1,
            counts,
            &mut cells,
        );
    }
    Population { cells }
}

// --- Ethnicity -------------------------------------------------------------------------------

/// NHS ethnic category codes generated, in this order: White British first, then the other
/// categories, then `Z` (not stated).
pub const ETHNIC_CODES: [&str; 17] = [
    "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z",
];
/// Census 2021 England shares (%) of the categories other than White British (B … S).
const OTHER_ETHNIC_SHARES: [f64; 15] = [
    0.9, 6.4, 0.9, 0.4, 0.8, 0.7, 3.3, 2.8, 1.1, 1.7, 1.1, 2.6, 0.5, 0.8, 2.2,
];
/// Share of England's residents not White British (Census 2021).
pub const NOT_WHITE_BRITISH: f64 = 0.265;
/// Share of patients with ethnicity not stated in the GP record.
pub const NOT_STATED: f64 = 0.06;
const ETHNICITY_URBAN: f64 = 0.8;
const ETHNICITY_DEPRIVATION: f64 = 0.35;
const ETHNICITY_LONDON: f64 = 1.3;
const ETHNICITY_AGE_PER_DECADE: f64 = -0.3;

/// The ethnicity model: a log-odds offset per LSOA, and the category mix.
#[derive(Debug, Clone)]
pub struct EthnicityModel {
    /// Log odds of not being White British at age 40, per LSOA (same order as the LSOAs).
    offsets: Vec<f64>,
    cumulative_other: [f64; 15],
    /// The calibrated e₀.
    pub intercept: f64,
}

impl EthnicityModel {
    /// Build and calibrate the model. `neighbours` is each LSOA's count of LSOA centroids
    /// nearby (a density proxy: large in cities).
    pub fn new(lsoas: &[Lsoa], neighbours: &[f64]) -> Self {
        let urban: Vec<f64> = neighbours.iter().map(|n| n.max(1.0).ln()).collect();
        let scores: Vec<f64> = lsoas.iter().map(|l| l.imd_score).collect();
        let weights: Vec<f64> = lsoas.iter().map(|l| l.population).collect();
        let urban = standardise(&urban, &weights);
        let deprivation = standardise(&scores, &weights);
        let base: Vec<f64> = lsoas
            .iter()
            .enumerate()
            .map(|(i, l)| {
                ETHNICITY_URBAN * urban.get(i).copied().unwrap_or(0.0)
                    + ETHNICITY_DEPRIVATION * deprivation.get(i).copied().unwrap_or(0.0)
                    + if l.london { ETHNICITY_LONDON } else { 0.0 }
            })
            .collect();
        let share_at = |intercept: f64| {
            let total: f64 = weights.iter().sum();
            base.iter()
                .zip(&weights)
                .map(|(b, w)| w * logistic(intercept + b))
                .sum::<f64>()
                / total
        };
        // Bisection: the share is increasing in e₀.
        let (mut low, mut high) = (-10.0, 10.0);
        for _ in 0..60 {
            let mid = 0.5 * (low + high);
            if share_at(mid) < NOT_WHITE_BRITISH {
                low = mid;
            } else {
                high = mid;
            }
        }
        let intercept = 0.5 * (low + high);
        let total: f64 = OTHER_ETHNIC_SHARES.iter().sum();
        let mut cumulative_other = [0.0; 15];
        let mut running = 0.0;
        for (c, share) in cumulative_other.iter_mut().zip(OTHER_ETHNIC_SHARES) {
            running += share / total;
            *c = running;
        }
        EthnicityModel {
            offsets: base.iter().map(|b| b + intercept).collect(),
            cumulative_other,
            intercept,
        }
    }

    /// Probability that a resident of an LSOA of this age is not White British.
    pub fn not_white_british(&self, lsoa: usize, age: u8) -> f64 {
        let age_term = ETHNICITY_AGE_PER_DECADE * (f64::from(age) - 40.0) / 10.0;
        logistic(self.offsets.get(lsoa).copied().unwrap_or(0.0) + age_term)
    }

    /// An index into [`ETHNIC_CODES`].
    pub fn draw(&self, lsoa: usize, age: u8, rng: &mut Stream) -> u8 {
        if rng.random::<f64>() < NOT_STATED {
            return 16;
        }
        if rng.random::<f64>() >= self.not_white_british(lsoa, age) {
            return 0;
        }
        let target = rng.random::<f64>();
        let index = self.cumulative_other.partition_point(|&c| c <= target);
        // 1 + (0..=14)
        1 + index.min(14) as u8
    }
}

/// Weighted z-scores.
fn standardise(values: &[f64], weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return vec![0.0; values.len()];
    }
    let mean = values.iter().zip(weights).map(|(v, w)| v * w).sum::<f64>() / total;
    let variance = values
        .iter()
        .zip(weights)
        .map(|(v, w)| w * (v - mean).powi(2))
        .sum::<f64>()
        / total;
    let sd = variance.sqrt().max(1e-12);
    values.iter().map(|v| (v - mean) / sd).collect()
}

// --- Flags -----------------------------------------------------------------------------------

/// Where a flag's value comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlagSource {
    /// Drawn from its own model: prevalence among the eligible in England's population.
    Model {
        /// Who can have the flag.
        eligibility: Eligibility,
        /// Prevalence among the eligible.
        prevalence: f64,
        /// Slopes of the model form.
        effects: Effects,
    },
    /// The same as having this condition (a code of `crate::conditions`).
    Condition(&'static str),
}

const fn effects(
    age_slope: f64,
    age_curvature: f64,
    female: f64,
    deprivation: f64,
    latent: f64,
) -> Effects {
    Effects {
        age_slope,
        age_curvature,
        female,
        deprivation,
        latent,
    }
}

/// The flag models, in the order of [`crate::schema::PATIENT_FLAGS`]. Prevalences: QOF
/// registers (learning disability 0.55%, palliative care 0.45%), recorded carers, care home
/// residents (3% of people 65+, most of them 80+), pregnancies (≈4.5% of women 15–44 at any
/// time, peaking at 31), recorded autism (1%), veterans (3.5% of adults, mostly older men),
/// and small groups (homeless, Gypsy/Roma/Traveller, asylum seekers) concentrated in deprived
/// areas.
pub const FLAGS: [(&str, FlagSource); 13] = [
    (
        "learning_disability",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.0055,
            effects: effects(-0.1, -0.02, -0.4, 0.05, 0.3),
        },
    ),
    ("smi", FlagSource::Condition("schizophrenia_bipolar")),
    (
        "carer",
        FlagSource::Model {
            eligibility: Eligibility::from_age(16),
            prevalence: 0.05,
            effects: effects(0.2, -0.2, 0.4, 0.02, 0.0),
        },
    ),
    (
        "homeless",
        FlagSource::Model {
            eligibility: Eligibility::ages(16, 79),
            prevalence: 0.0025,
            effects: effects(-0.2, -0.15, -0.8, 0.2, 0.5),
        },
    ),
    (
        "care_home",
        FlagSource::Model {
            eligibility: Eligibility::from_age(65),
            prevalence: 0.03,
            effects: effects(1.4, 0.0, 0.3, 0.03, 0.9),
        },
    ),
    ("housebound", FlagSource::Condition("housebound")),
    (
        "eol_register",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.0045,
            effects: effects(1.0, 0.0, 0.0, 0.02, 1.2),
        },
    ),
    (
        "pregnant",
        FlagSource::Model {
            eligibility: Eligibility::women(15, 44),
            prevalence: 0.045,
            effects: effects(-5.7, -1.5, 0.0, 0.02, -0.2),
        },
    ),
    (
        "autism",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.01,
            effects: effects(-0.6, 0.0, -1.2, 0.03, 0.2),
        },
    ),
    (
        "veteran",
        FlagSource::Model {
            eligibility: Eligibility::from_age(18),
            prevalence: 0.035,
            effects: effects(0.8, -0.05, -2.8, 0.03, 0.0),
        },
    ),
    (
        "gypsy_roma_traveller",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.001,
            effects: effects(-0.2, 0.0, 0.0, 0.15, 0.2),
        },
    ),
    (
        "asylum_seeker",
        FlagSource::Model {
            eligibility: Eligibility::from_age(0),
            prevalence: 0.0012,
            effects: effects(-0.4, -0.2, -0.7, 0.2, 0.0),
        },
    ),
    (
        "drug_alcohol_dependence",
        FlagSource::Model {
            eligibility: Eligibility::from_age(16),
            prevalence: 0.01,
            effects: effects(-0.1, -0.2, -0.8, 0.15, 0.6),
        },
    ),
];

/// A flag ready to draw: its calibrated model, or the condition it mirrors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlagModel {
    /// Drawn from this model.
    Drawn(Model),
    /// Set when the patient has the condition at this index of `crate::conditions::CONDITIONS`.
    Condition(usize),
}

/// Calibrate the flag models on the reference population.
///
/// # Errors
/// The name of a flag whose prevalence cannot be reached, or whose condition is not in the
/// vocabulary.
pub fn flag_models(reference: &Population) -> Result<Vec<(&'static str, FlagModel)>, String> {
    FLAGS
        .iter()
        .map(|(name, source)| match source {
            FlagSource::Model {
                eligibility,
                prevalence,
                effects,
            } => calibrate(
                Link::Logit,
                *effects,
                *eligibility,
                *prevalence,
                reference,
                None,
            )
            .map(|intercept| {
                (
                    *name,
                    FlagModel::Drawn(Model {
                        link: Link::Logit,
                        intercept,
                        effects: *effects,
                        eligibility: *eligibility,
                    }),
                )
            })
            .ok_or_else(|| format!("flag {name}: prevalence {prevalence} cannot be reached")),
            FlagSource::Condition(code) => crate::conditions::CONDITIONS
                .iter()
                .position(|c| c.code == *code)
                .map(|index| (*name, FlagModel::Condition(index)))
                .ok_or_else(|| format!("flag {name}: condition {code} is not in the vocabulary")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn england_profile_has_realistic_broad_bands() {
        let profile = AgeProfile::england();
        let share = |from, to| -> f64 {
            profile
                .within(0, MAX_AGE)
                .iter()
                .filter(|(a, _, _)| *a >= from && *a <= to)
                .map(|c| c.2)
                .sum()
        };
        let children = share(0, 15);
        let older = share(65, MAX_AGE);
        assert!((0.18..0.20).contains(&children), "{children}");
        assert!((0.18..0.20).contains(&older), "{older}");
        let women_90_plus: f64 = profile
            .within(90, MAX_AGE)
            .iter()
            .filter(|c| c.1)
            .map(|c| c.2)
            .sum();
        assert!(women_90_plus > 0.6, "{women_90_plus}");
    }

    #[test]
    fn flags_follow_the_schema_order() {
        let names: Vec<&str> = FLAGS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, crate::schema::PATIENT_FLAGS);
    }

    #[test]
    fn band_probabilities_tilt_toward_the_lsoa() {
        let practice = [0.2, 0.6, 0.2];
        let mean = [0.2, 0.6, 0.2];
        assert_eq!(band_probabilities(&practice, &mean, &mean), practice);
        let young_lsoa = [0.3, 0.6, 0.1];
        let p = band_probabilities(&practice, &young_lsoa, &mean);
        assert!(p[0] > 0.2 && p[2] < 0.2, "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
