//! Ethnicity: NHS ethnic category codes by region, density, deprivation and age.
//!
//! A patient is not White British with probability
//! logistic(e_region + 0.8·urban + 0.35·deprivation − 0.3·(age − 40)/10), where urban and
//! deprivation are the LSOA's standardised log density and IMD score, and each region's
//! intercept makes its residents' share not White British its Census 2021 share (9% in the
//! North East to 63% in London; 26.5% for England when the LSOA lookup, which gives regions, is
//! not configured); the other categories follow their Census 2021 shares in England; 6% are `Z`
//! (not stated), as in GP records.
//!
//! Owns the category list, the Census shares and the calibrated per-LSOA log odds. The
//! density proxy comes from `super::catchment::Geography`.

use rand::RngExt;

use super::frames::Lsoa;
use super::model::logistic;
use super::seeding::Stream;

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
/// Share of each region's residents not White British (Census 2021, rounded), by the region
/// names of the LSOA lookup.
pub const NOT_WHITE_BRITISH_BY_REGION: [(&str, f64); 9] = [
    ("North East", 0.094),
    ("North West", 0.179),
    ("Yorkshire and The Humber", 0.174),
    ("East Midlands", 0.194),
    ("West Midlands", 0.255),
    ("East of England", 0.214),
    ("London", 0.632),
    ("South East", 0.211),
    ("South West", 0.132),
];
/// Share of patients with ethnicity not stated in the GP record.
pub const NOT_STATED: f64 = 0.06;
const ETHNICITY_URBAN: f64 = 0.8;
const ETHNICITY_DEPRIVATION: f64 = 0.35;
const ETHNICITY_AGE_PER_DECADE: f64 = -0.3;

/// The ethnicity model: a log-odds offset per LSOA, and the category mix.
#[derive(Debug, Clone)]
pub struct EthnicityModel {
    /// Log odds of not being White British at age 40, per LSOA (same order as the LSOAs).
    offsets: Vec<f64>,
    cumulative_other: [f64; 15],
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
        let base: Vec<f64> = (0..lsoas.len())
            .map(|i| {
                ETHNICITY_URBAN * urban.get(i).copied().unwrap_or(0.0)
                    + ETHNICITY_DEPRIVATION * deprivation.get(i).copied().unwrap_or(0.0)
            })
            .collect();
        // One intercept per region with a known share; LSOAs of other or unknown regions share
        // an intercept calibrated on England.
        let region_of = |lsoa: &Lsoa| {
            lsoa.region.as_deref().and_then(|name| {
                NOT_WHITE_BRITISH_BY_REGION
                    .iter()
                    .position(|(r, _)| r.eq_ignore_ascii_case(name.trim()))
            })
        };
        let groups: Vec<Option<usize>> = lsoas.iter().map(region_of).collect();
        let england = calibrate_share(&base, &weights, NOT_WHITE_BRITISH, |_| true);
        let regional: Vec<f64> = NOT_WHITE_BRITISH_BY_REGION
            .iter()
            .enumerate()
            .map(|(r, (_, share))| {
                calibrate_share(&base, &weights, *share, |i| groups[i] == Some(r))
            })
            .collect();
        let offsets = base
            .iter()
            .zip(&groups)
            .map(|(b, group)| {
                b + group
                    .and_then(|r| regional.get(r).copied())
                    .unwrap_or(england)
            })
            .collect();
        let total: f64 = OTHER_ETHNIC_SHARES.iter().sum();
        let mut cumulative_other = [0.0; 15];
        let mut running = 0.0;
        for (c, share) in cumulative_other.iter_mut().zip(OTHER_ETHNIC_SHARES) {
            running += share / total;
            *c = running;
        }
        EthnicityModel {
            offsets,
            cumulative_other,
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

/// The intercept e at which the weighted mean of logistic(e + base) over the LSOAs `in_group`
/// is `share` (bisection: the mean is increasing in e).
fn calibrate_share(
    base: &[f64],
    weights: &[f64],
    share: f64,
    in_group: impl Fn(usize) -> bool,
) -> f64 {
    let members: Vec<usize> = (0..base.len()).filter(|&i| in_group(i)).collect();
    let total: f64 = members.iter().map(|&i| weights[i]).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let share_at = |e: f64| {
        members
            .iter()
            .map(|&i| weights[i] * logistic(e + base[i]))
            .sum::<f64>()
            / total
    };
    let (mut low, mut high) = (-15.0, 15.0);
    for _ in 0..50 {
        let mid = 0.5 * (low + high);
        if share_at(mid) < share {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_shares_reach_england_s() {
        // Census 2021: population-weighted mean of the regional shares is close to England's.
        let populations = [2.65, 7.42, 5.48, 4.88, 5.95, 6.34, 8.80, 9.28, 5.70];
        let total: f64 = populations.iter().sum();
        let mean: f64 = NOT_WHITE_BRITISH_BY_REGION
            .iter()
            .zip(populations)
            .map(|((_, share), p)| share * p)
            .sum::<f64>()
            / total;
        assert!((mean - NOT_WHITE_BRITISH).abs() < 0.01, "{mean}");
    }
}
