//! Where each practice's patients live: LSOA → ICB, and each practice's catchment.
//!
//! Owns the geography of the generator (every LSOA centroid located in an ICB boundary with
//! [`crate::geometry::FootprintIndex`], positions in km, a density proxy) and the catchment
//! model: for every practice, the share of its list living in each LSOA of its own ICB.
//!
//! **The catchment model.** Practices have postcodes but no coordinates here, so each practice
//! is given an *anchor*: an LSOA of its ICB drawn with probability ∝ population ×
//! exp(−(score − published score)² / (2·4²)), i.e. somewhere whose deprivation resembles the
//! practice's published score (Fingertips 93553, IMD 2019). Its candidates are the 5k LSOAs of
//! the ICB nearest the anchor (50 to 250), with a distance decay exp(−d/λ), λ the distance to
//! the k-th nearest (k = list size / 500, between 8 and 60: bigger lists reach further; dense
//! cities give small λ, rural areas large). Two sets of constraints are then fitted by iterative
//! proportional fitting over all practices of the ICB together (10 rounds):
//!
//! - each practice's population-weighted IMD score equals its published score, by an
//!   exponential tilt exp(θ·score) of its row (θ solved by Newton's method, |θ| ≤ 0.5 per IMD
//!   point; practices without a published score are not tilted);
//! - each LSOA's registered patients (summed over practices) approach its share of the ICB's
//!   residents (IoD2019 mid-2015), by a damped column factor, so that no LSOA is empty or
//!   crowded because several anchors fell near it.
//!
//! The row constraint is applied last, so published scores are met exactly (in expectation)
//! unless the candidates cannot reach them. The anchors depend only on (seed, practice), and
//! the fit on the ICB's practices at their real list sizes, so a practice has the same catchment
//! whatever scale or number of patients is asked for.

use std::collections::BTreeMap;

use rand::RngExt;
use rayon::prelude::*;

use super::SynthError;
use super::frames::Reference;
use super::seeding::{Purpose, stream};
use crate::geometry::{FootprintIndex, KM_PER_DEGREE, LocationSummary};

/// Candidate LSOAs per practice: this many times the neighbour rank of its distance scale
/// (beyond five scales the decay is below 1%) …
pub const CANDIDATES_PER_RANK: usize = 5;
/// … within these bounds.
pub const CANDIDATES: (usize, usize) = (50, 250);
/// Spread (IMD points) of the anchor's closeness to the published score.
pub const ANCHOR_SCORE_SD: f64 = 4.0;
/// Patients per neighbour for the distance scale: λ is the distance to the
/// (list size / this)-th nearest candidate.
pub const PATIENTS_PER_NEIGHBOUR: f64 = 500.0;
/// Bounds of that neighbour rank.
pub const NEIGHBOUR_RANK: (usize, usize) = (8, 60);
/// Smallest distance scale (km).
pub const MIN_DISTANCE_SCALE_KM: f64 = 0.5;
/// Rounds of the fit.
pub const ROUNDS: usize = 10;
/// Largest tilt per IMD point.
pub const MAX_TILT: f64 = 0.5;
/// Newton steps of a practice's tilt per round of the fit (warm-started, so a few suffice
/// while the columns still move).
const STEPS_PER_ROUND: usize = 3;
/// Newton steps in the final pass, which must meet the published scores.
const FINAL_STEPS: usize = 60;
/// How far outside every boundary an LSOA centroid may be and still join the nearest ICB (km).
pub const NEAREST_ICB_KM: f64 = 5.0;
/// Cell size of the density proxy (km).
pub const DENSITY_CELL_KM: f64 = 1.0;
/// Latitude of the fixed equirectangular projection (the middle of England).
const PROJECTION_LATITUDE: f64 = 52.5;

/// The generator's geography: LSOA → ICB, positions, density.
#[derive(Debug, Clone)]
pub struct Geography {
    /// Each LSOA's ICB (index into `Reference::icbs`), when located.
    pub lsoa_icb: Vec<Option<usize>>,
    /// Each ICB's LSOAs (indexes into `Reference::lsoas`, ascending).
    pub icb_lsoas: Vec<Vec<usize>>,
    /// Each LSOA's centroid in km (equirectangular at 52.5°N).
    pub position_km: Vec<[f64; 2]>,
    /// LSOA centroids (itself included) in the 3 km × 3 km block around each LSOA: a density
    /// proxy, in the hundreds in inner cities and 1–3 in the country.
    pub neighbours: Vec<f64>,
    /// How the centroids fell among the ICB boundaries.
    pub located: LocationSummary,
    /// Centroids outside every boundary joined to the nearest ICB within 5 km.
    pub joined_nearest: usize,
    /// Centroids left without an ICB.
    pub unlocated: usize,
}

impl Geography {
    /// Locate every LSOA and measure distances.
    pub fn new(reference: &Reference) -> Self {
        let index = FootprintIndex::new(&reference.footprints);
        // Footprint index → ICB index.
        let icb_of_footprint: Vec<Option<usize>> = index
            .codes()
            .iter()
            .map(|code| reference.icbs.iter().position(|icb| &icb.ons_code == code))
            .collect();
        let points: Vec<[f64; 2]> = reference
            .lsoas
            .iter()
            .map(|l| [l.longitude, l.latitude])
            .collect();
        let locations = index.locate_all(&points);
        let located = LocationSummary::of(&locations);
        let mut joined_nearest = 0;
        let mut unlocated = 0;
        let lsoa_icb: Vec<Option<usize>> = locations
            .iter()
            .zip(&points)
            .map(|(location, point)| {
                let footprint = location.footprint().or_else(|| {
                    let nearest = index.nearest(point[0], point[1], NEAREST_ICB_KM);
                    if nearest.is_some() {
                        joined_nearest += 1;
                    }
                    nearest.map(|(f, _)| f)
                });
                let icb = footprint.and_then(|f| icb_of_footprint.get(f).copied().flatten());
                if icb.is_none() {
                    unlocated += 1;
                }
                icb
            })
            .collect();
        let mut icb_lsoas = vec![Vec::new(); reference.icbs.len()];
        for (lsoa, icb) in lsoa_icb.iter().enumerate() {
            if let Some(list) = icb.and_then(|i| icb_lsoas.get_mut(i)) {
                list.push(lsoa);
            }
        }
        let km_x = KM_PER_DEGREE * PROJECTION_LATITUDE.to_radians().cos();
        let position_km: Vec<[f64; 2]> = points
            .iter()
            .map(|[lon, lat]| [lon * km_x, lat * KM_PER_DEGREE])
            .collect();
        // Density: centroids in the 3 km × 3 km block of 1 km cells around each one (a map of
        // cell counts, looked up nine times per LSOA: cheaper than nearest-neighbour queries).
        let cell = |p: &[f64; 2]| {
            (
                (p[0] / DENSITY_CELL_KM).floor() as i64,
                (p[1] / DENSITY_CELL_KM).floor() as i64,
            )
        };
        let mut counts: BTreeMap<(i64, i64), u32> = BTreeMap::new();
        for p in &position_km {
            *counts.entry(cell(p)).or_default() += 1;
        }
        let neighbours = position_km
            .iter()
            .map(|p| {
                let (x, y) = cell(p);
                let mut n = 0u32;
                for dx in -1..=1 {
                    for dy in -1..=1 {
                        n += counts.get(&(x + dx, y + dy)).copied().unwrap_or(0);
                    }
                }
                f64::from(n)
            })
            .collect();
        Geography {
            lsoa_icb,
            icb_lsoas,
            position_km,
            neighbours,
            located,
            joined_nearest,
            unlocated,
        }
    }
}

fn distance(a: &[f64; 2], b: &[f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// One practice's catchment: LSOAs and the share of the list living in each.
#[derive(Debug, Clone, PartialEq)]
pub struct Catchment {
    /// The anchor LSOA (index into `Reference::lsoas`).
    pub anchor: usize,
    /// LSOAs (indexes into `Reference::lsoas`, ascending).
    pub lsoas: Vec<u32>,
    /// Share of the list in each, summing to 1.
    pub shares: Vec<f64>,
    /// Population-weighted IMD score of the catchment (the model's expected practice score).
    pub expected_score: f64,
    /// The fitted tilt θ (per IMD point).
    pub tilt: f64,
    /// The distance scale λ (km).
    pub distance_scale_km: f64,
}

/// Every practice's catchment, with the geography it was built on.
#[derive(Debug, Clone)]
pub struct CatchmentModel {
    /// LSOA → ICB, positions, density.
    pub geography: Geography,
    /// One catchment per practice, in `Reference::practices` order.
    pub catchments: Vec<Catchment>,
}

/// Build every practice's catchment (all of England: the truth needs the national population,
/// and an ICB's fit involves all its practices).
///
/// # Errors
/// [`SynthError::Data`] when a practice's ICB has no LSOA.
pub fn build(reference: &Reference, seed: u64) -> Result<CatchmentModel, SynthError> {
    let geography = Geography::new(reference);
    let by_icb: Vec<Vec<(usize, Catchment)>> = (0..reference.icbs.len())
        .into_par_iter()
        .map(|icb| fit_icb(reference, &geography, icb, seed))
        .collect::<Result<_, _>>()?;
    let mut slots: Vec<Option<Catchment>> = vec![None; reference.practices.len()];
    for (practice, catchment) in by_icb.into_iter().flatten() {
        if let Some(slot) = slots.get_mut(practice) {
            *slot = Some(catchment);
        }
    }
    let catchments = slots
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            c.ok_or_else(|| {
                SynthError::Data(format!(
                    "practice {} has no catchment",
                    reference.practices.get(i).map_or("?", |p| p.code.as_str())
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(CatchmentModel {
        geography,
        catchments,
    })
}

/// A practice's candidates during the fit: local LSOA indexes and distance weights.
struct Row {
    practice: usize,
    anchor: usize,
    list_size: f64,
    target: Option<f64>,
    local: Vec<usize>,
    decay: Vec<f64>,
    /// Each candidate's IMD score minus the target (empty without a target).
    centred: Vec<f64>,
    scale_km: f64,
    tilt: f64,
}

/// Fit the catchments of one ICB's practices.
fn fit_icb(
    reference: &Reference,
    geography: &Geography,
    icb: usize,
    seed: u64,
) -> Result<Vec<(usize, Catchment)>, SynthError> {
    let practices: Vec<usize> = reference
        .practices
        .iter()
        .enumerate()
        .filter(|(_, p)| p.icb == icb)
        .map(|(i, _)| i)
        .collect();
    if practices.is_empty() {
        return Ok(Vec::new());
    }
    let lsoas = geography.icb_lsoas.get(icb).map_or(&[][..], Vec::as_slice);
    let icb_code = reference.icbs.get(icb).map_or("?", |i| i.ods_code.as_str());
    if lsoas.is_empty() {
        return Err(SynthError::Data(format!(
            "ICB {icb_code} has {} practices but no LSOA centroid falls in its boundary",
            practices.len()
        )));
    }
    let score: Vec<f64> = lsoas
        .iter()
        .map(|&l| reference.lsoas[l].imd_score)
        .collect();
    let population: Vec<f64> = lsoas
        .iter()
        .map(|&l| reference.lsoas[l].population)
        .collect();
    let position: Vec<[f64; 2]> = lsoas.iter().map(|&l| geography.position_km[l]).collect();

    let mut rows: Vec<Row> = practices
        .iter()
        .map(|&p| {
            let practice = &reference.practices[p];
            let mut rng = stream(seed, &practice.code, Purpose::Catchment);
            let target = practice.published_score;
            let closeness: Vec<f64> = score
                .iter()
                .zip(&population)
                .map(|(s, pop)| match target {
                    Some(t) => pop * (-(s - t).powi(2) / (2.0 * ANCHOR_SCORE_SD.powi(2))).exp(),
                    None => *pop,
                })
                .collect();
            let anchor = weighted_index(&closeness, rng.random::<f64>());
            let mut order: Vec<(f64, usize)> = position
                .iter()
                .enumerate()
                .map(|(i, pos)| (distance(pos, &position[anchor]), i))
                .collect();
            // The nearest candidates, then the rank-th nearest of them; selection rather than
            // a full sort (the ICB may have a few thousand LSOAs). Ties go to the lower index.
            let nearer =
                |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            let rank = ((f64::from(practice.list_size) / PATIENTS_PER_NEIGHBOUR) as usize)
                .clamp(NEIGHBOUR_RANK.0, NEIGHBOUR_RANK.1);
            let candidates = (CANDIDATES_PER_RANK * rank).clamp(CANDIDATES.0, CANDIDATES.1);
            if order.len() > candidates {
                order.select_nth_unstable_by(candidates - 1, nearer);
                order.truncate(candidates);
            }
            let rank = rank.min(order.len().saturating_sub(1));
            let scale_km = if order.is_empty() {
                MIN_DISTANCE_SCALE_KM
            } else {
                order.select_nth_unstable_by(rank, nearer).1.0
            }
            .max(MIN_DISTANCE_SCALE_KM);
            Row {
                practice: p,
                anchor,
                list_size: f64::from(practice.list_size),
                target,
                decay: order.iter().map(|(d, _)| (-d / scale_km).exp()).collect(),
                centred: match target {
                    Some(t) => order.iter().map(|(_, i)| score[*i] - t).collect(),
                    None => Vec::new(),
                },
                local: order.into_iter().map(|(_, i)| i).collect(),
                scale_km,
                tilt: 0.0,
            }
        })
        .collect();

    let listed: f64 = rows.iter().map(|r| r.list_size).sum();
    let residents: f64 = population.iter().sum();
    let wanted: Vec<f64> = population
        .iter()
        .map(|p| p * listed / residents.max(1.0))
        .collect();
    let mut column = vec![1.0f64; lsoas.len()];
    for _ in 0..ROUNDS {
        let mut registered = vec![0.0f64; lsoas.len()];
        for row in &mut rows {
            let shares = row_shares(row, &column, STEPS_PER_ROUND);
            for (&l, share) in row.local.iter().zip(shares) {
                registered[l] += row.list_size * share;
            }
        }
        for ((factor, got), want) in column.iter_mut().zip(&registered).zip(&wanted) {
            if *got > 0.0 {
                // Damped (square root) so that rows and columns settle together.
                *factor = (*factor * (want / got).sqrt()).clamp(1e-3, 1e3);
            }
        }
    }
    Ok(rows
        .iter_mut()
        .map(|row| {
            let shares = row_shares(row, &column, FINAL_STEPS);
            let expected_score = row
                .local
                .iter()
                .zip(&shares)
                .map(|(&l, s)| s * score[l])
                .sum();
            let mut pairs: Vec<(u32, f64)> = row
                .local
                .iter()
                // LSOA indexes fit in u32 (England has 32,844).
                .map(|&l| lsoas[l] as u32)
                .zip(shares)
                .collect();
            pairs.sort_by_key(|p| p.0);
            (
                row.practice,
                Catchment {
                    anchor: lsoas[row.anchor],
                    lsoas: pairs.iter().map(|p| p.0).collect(),
                    shares: pairs.iter().map(|p| p.1).collect(),
                    expected_score,
                    tilt: row.tilt,
                    distance_scale_km: row.scale_km,
                },
            )
        })
        .collect())
}

/// A row's shares under the current column factors, re-fitting its tilt so that its mean
/// score meets the target (warm-started from the last tilt, at most `steps` Newton steps).
/// Written as index loops: this is the hot loop of the fit, and it runs unoptimised in tests.
fn row_shares(row: &mut Row, column: &[f64], steps: usize) -> Vec<f64> {
    let n = row.local.len();
    let mut weights = vec![0.0f64; n];
    for i in 0..n {
        weights[i] = row.decay[i] * column[row.local[i]];
    }
    if row.target.is_none() {
        return normalise(weights);
    }
    let centred = &row.centred;
    let mut tilt = row.tilt;
    let mut tilted = vec![0.0f64; n];
    let mut tilted_at = f64::NAN;
    for _ in 0..steps {
        let (mut m0, mut m1, mut m2) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let s = centred[i];
            let w = weights[i] * (tilt * s).exp();
            tilted[i] = w;
            m0 += w;
            m1 += w * s;
            m2 += w * s * s;
        }
        tilted_at = tilt;
        if m0 <= 0.0 {
            break;
        }
        let mean = m1 / m0;
        if mean.abs() < 1e-6 {
            break;
        }
        let variance = (m2 / m0 - mean * mean).max(1e-9);
        // Newton on the log-partition (the mean is increasing in the tilt), bounded steps.
        let next = (tilt - (mean / variance).clamp(-0.1, 0.1)).clamp(-MAX_TILT, MAX_TILT);
        if next == tilt {
            break;
        }
        tilt = next;
    }
    if tilted_at != tilt {
        for i in 0..n {
            tilted[i] = weights[i] * (tilt * centred[i]).exp();
        }
    }
    row.tilt = tilt;
    normalise(tilted)
}

fn normalise(mut values: Vec<f64>) -> Vec<f64> {
    let total: f64 = values.iter().sum();
    if total > 0.0 && total.is_finite() {
        for v in &mut values {
            *v /= total;
        }
    } else {
        let n = values.len().max(1) as f64;
        values.iter_mut().for_each(|v| *v = 1.0 / n);
    }
    values
}

/// The index whose cumulative weight first exceeds `u` × total (u uniform in [0, 1)).
pub fn weighted_index(weights: &[f64], u: f64) -> usize {
    let total: f64 = weights.iter().sum();
    let target = u * total;
    let mut running = 0.0;
    for (i, w) in weights.iter().enumerate() {
        running += w;
        if running > target {
            return i;
        }
    }
    weights.len().saturating_sub(1)
}

impl Catchment {
    /// Cumulative shares, for drawing an LSOA by binary search.
    pub fn cumulative(&self) -> Vec<f64> {
        let mut running = 0.0;
        self.shares
            .iter()
            .map(|s| {
                running += s;
                running
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_index_picks_by_cumulative_weight() {
        let w = [1.0, 0.0, 3.0];
        assert_eq!(weighted_index(&w, 0.0), 0);
        assert_eq!(weighted_index(&w, 0.24), 0);
        assert_eq!(weighted_index(&w, 0.26), 2);
        assert_eq!(weighted_index(&w, 0.999), 2);
    }

    #[test]
    fn catchments_meet_published_scores_within_their_icb() {
        let reference = crate::synth::frames::toy_reference();
        let model = build(&reference, 7).expect("fit");
        assert_eq!(model.geography.located.inside_one, 200);
        assert_eq!(model.geography.icb_lsoas[0].len(), 100);
        let mut registered = vec![0.0; reference.lsoas.len()];
        for (practice, catchment) in reference.practices.iter().zip(&model.catchments) {
            assert!((catchment.shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            for (&lsoa, share) in catchment.lsoas.iter().zip(&catchment.shares) {
                assert_eq!(model.geography.lsoa_icb[lsoa as usize], Some(practice.icb));
                registered[lsoa as usize] += f64::from(practice.list_size) * share;
            }
            if let Some(published) = practice.published_score {
                assert!(
                    (catchment.expected_score - published).abs() < 1e-3,
                    "{}: {} vs {published}",
                    practice.code,
                    catchment.expected_score
                );
            }
        }
        // Every LSOA gets patients; none gets many times its share of residents.
        let per_lsoa = (6000.0 + 8000.0 + 10000.0 + 12000.0) / 100.0;
        assert!(registered.iter().all(|&r| r > 0.0));
        let crowded = registered.iter().filter(|&&r| r > 3.0 * per_lsoa).count();
        assert!(crowded <= 5, "{crowded} LSOAs above 3× their share");
        // The same seed gives the same catchments.
        assert_eq!(
            build(&reference, 7).expect("fit").catchments,
            model.catchments
        );
    }

    #[test]
    fn tilt_meets_the_target_mean() {
        let mut row = Row {
            practice: 0,
            anchor: 0,
            list_size: 1000.0,
            target: Some(30.0),
            local: vec![0, 1, 2, 3],
            decay: vec![1.0, 0.8, 0.5, 0.2],
            centred: vec![-20.0, -10.0, 10.0, 30.0],
            scale_km: 1.0,
            tilt: 0.0,
        };
        let score = [10.0, 20.0, 40.0, 60.0];
        let shares = row_shares(&mut row, &[1.0; 4], 60);
        let mean: f64 = shares.iter().zip(&score).map(|(s, x)| s * x).sum();
        assert!((mean - 30.0).abs() < 1e-4, "{mean}");
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // An unreachable target saturates the tilt instead of failing.
        row.target = Some(90.0);
        row.centred = score.iter().map(|s| s - 90.0).collect();
        let shares = row_shares(&mut row, &[1.0; 4], 60);
        assert!((row.tilt - MAX_TILT).abs() < 1e-12);
        assert!(shares[3] > 0.99);
    }
}
