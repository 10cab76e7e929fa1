//! How old the patients are, and of which sex; and England's population by age, sex and
//! deprivation, on which every intercept is calibrated.
//!
//! Owns the national age–sex profile, the age model (each practice's real age profile, tilted
//! toward the age structure of each LSOA it draws from) and the reference population
//! (`super::model::calibrate`). Where patients live is `super::catchment`; ethnicity is
//! `super::ethnicity`, the PLUS-group flags `super::flags`; conditions and outcomes are
//! `super::conditions` and `super::outcomes`.
//!
//! **Age and sex.** A patient's broad age band (0–15, 16–64, 65+) is drawn from the practice's
//! published shares (House of Commons Library, April 2020) multiplied by how much younger or
//! older the patient's LSOA is than the practice's catchment on average (IoD2019 mid-2015
//! residents aged 0–15 and 60+), so younger patients come from the younger (more deprived,
//! more urban) parts of a catchment while the practice keeps its real profile. Within the band,
//! age and sex follow England's single-year profile. Practices without a published profile
//! take their ICB's list-weighted mean. Only `M` and `F` are generated (the aggregate
//! publication has no other sex).

use rand::RngExt;

use super::frames::{Lsoa, Practice};
use super::model::{Cell, Population};
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
