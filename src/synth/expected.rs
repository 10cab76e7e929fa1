//! Expected values the models imply, by IMD decile, and the gradients across deciles.
//!
//! **The population** is the generator's own registered population: every practice (England;
//! or the selected ones at their generated sizes) × the LSOAs of its catchment × the three age
//! bands of the age model, with single years and sexes by England's profile within each band.
//! For each outcome and decile, the expected eligible people and events integrate the model over
//! that population and over the latent score (Gauss–Hermite, `super::model`), crude and
//! directly age-standardised to ESP2013.
//!
//! **The gradient** is the weighted least-squares point estimate of PHEindicatormethods'
//! `phe_sii` over the ten decile values (quantile 1 = most deprived, weights = eligible
//! population shares, no transform, multiplier 1): SII = value at the least deprived end minus
//! value at the most deprived end of the fitted line, RII = their ratio (least / most
//! deprived). So an outcome that is worse in deprived areas has a negative SII and an RII below
//! 1, and the reverse for screening and vaccination. It is computed by the statistics module
//! (`crate::stats::sii`), point estimate only, and needs at least five populated deciles.

use serde::Serialize;

use super::catchment::CatchmentModel;
use super::frames::Reference;
use super::model::{DECILES, Expectation, Link, Model, Population};
use super::population::{PRACTICE_BANDS, spread_bands};
use super::simulate::{Models, catchment_band_probabilities};
use crate::stats::sii::{
    MIN_REPETITIONS, QUANTILE_RANGE, SiiArea, SiiOptions, SiiSpread, SiiValues, ValueType, sii,
};

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
    /// The same, directly age-standardised to ESP2013.
    pub age_standardised: Standardised,
}

/// Expected values directly age-standardised to the European Standard Population 2013 (the
/// 19 five-year bands, 90+ open), over the bands with eligible people.
#[derive(Debug, Clone, Serialize)]
pub struct Standardised {
    /// All deciles together.
    pub value: f64,
    /// By decile (index 0 = decile 1; `NaN` → `null` for an empty decile).
    pub by_decile: Vec<Option<f64>>,
    /// SII of the standardised decile values (weights: eligible people per decile).
    pub sii: Option<f64>,
    /// RII of the same.
    pub rii: Option<f64>,
}

/// ESP2013: `(first age, last age, weight)`; the weights sum to 100,000.
pub const ESP2013: [(u8, u8, f64); 19] = [
    (0, 4, 5000.0),
    (5, 9, 5500.0),
    (10, 14, 5500.0),
    (15, 19, 5500.0),
    (20, 24, 6000.0),
    (25, 29, 6000.0),
    (30, 34, 6500.0),
    (35, 39, 7000.0),
    (40, 44, 7000.0),
    (45, 49, 7000.0),
    (50, 54, 7000.0),
    (55, 59, 6500.0),
    (60, 64, 6000.0),
    (65, 69, 5500.0),
    (70, 74, 5000.0),
    (75, 79, 4000.0),
    (80, 84, 2500.0),
    (85, 89, 1500.0),
    (90, u8::MAX, 1000.0),
];

/// Directly standardised values: each decile's band rates weighted by ESP2013, over the bands
/// where the population has eligible people (so a denominator of women 25–64 is standardised
/// over the bands 25–29 … 60–64).
fn standardise(
    bands: &[Expectation],
    population: &Expectation,
    value_type: ValueType,
) -> Standardised {
    let mut by_decile = Vec::with_capacity(DECILES);
    let mut values = [f64::NAN; DECILES];
    let rate_of = |events: f64, eligible: f64| (eligible > 0.0).then(|| events / eligible);
    // Bands with anyone eligible anywhere: the same set for every decile.
    let used: Vec<usize> = (0..ESP2013.len())
        .filter(|&b| {
            bands
                .get(b)
                .is_some_and(|e| e.eligible.iter().sum::<f64>() > 0.0)
        })
        .collect();
    let total_weight: f64 = used.iter().map(|&b| ESP2013[b].2).sum();
    for (decile, value) in values.iter_mut().enumerate() {
        let mut sum = 0.0;
        let mut complete = total_weight > 0.0;
        for &b in &used {
            match rate_of(bands[b].events[decile], bands[b].eligible[decile]) {
                Some(rate) => sum += ESP2013[b].2 * rate,
                None => complete = false,
            }
        }
        if complete {
            *value = sum / total_weight;
        }
        by_decile.push(value.is_finite().then_some(*value));
    }
    let mut overall = 0.0;
    for &b in &used {
        let events: f64 = bands[b].events.iter().sum();
        let eligible: f64 = bands[b].eligible.iter().sum();
        overall += ESP2013[b].2 * rate_of(events, eligible).unwrap_or(0.0);
    }
    let (sii, rii) = match sii_point_estimate(&values, &population.eligible, value_type) {
        Some((sii, rii)) => (Some(sii), Some(rii)),
        None => (None, None),
    };
    Standardised {
        value: if total_weight > 0.0 {
            overall / total_weight
        } else {
            f64::NAN
        },
        by_decile,
        sii,
        rii,
    }
}

/// The expectation of a model in each ESP2013 band of a population.
fn by_esp_band(population: &Population, model: &Model, within: Option<&Model>) -> Vec<Expectation> {
    ESP2013
        .iter()
        .map(|&(from, to, _)| {
            Population {
                cells: population
                    .cells
                    .iter()
                    .filter(|c| c.age >= from && c.age <= to)
                    .copied()
                    .collect(),
            }
            .expect(model, within)
        })
        .collect()
}

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

/// The SII and RII point estimates over decile values (index 0 = decile 1, the most deprived),
/// weighted by population, by the statistics module's `phe_sii` (`crate::stats::sii`: no
/// transform, multiplier 1). Only its point estimate is wanted, so the spread is zero and the
/// simulation runs the fewest repetitions the reference allows. `None` with fewer than five
/// populated deciles (the reference's minimum number of quantiles) or values it refuses.
pub fn sii_point_estimate(
    values: &[f64],
    populations: &[f64],
    value_type: ValueType,
) -> Option<(f64, f64)> {
    let mut quantiles = Vec::new();
    let mut kept_values = Vec::new();
    let mut kept_populations = Vec::new();
    for (index, (value, population)) in values.iter().zip(populations).enumerate() {
        if value.is_finite() && *population > 0.0 {
            quantiles.push(index as f64 + 1.0);
            kept_values.push(*value);
            kept_populations.push(*population);
        }
    }
    if !QUANTILE_RANGE.contains(&quantiles.len()) {
        return None;
    }
    let no_spread = vec![0.0; quantiles.len()];
    let area = SiiArea {
        quantile: &quantiles,
        population: &kept_populations,
        values: SiiValues::Value(&kept_values),
        spread: SiiSpread::StandardError(&no_spread),
    };
    let options = SiiOptions {
        repetitions: MIN_REPETITIONS,
        rii: true,
        ..SiiOptions::new(value_type)
    };
    let result = sii(&area, &options, 0, 0).ok()?;
    Some((result.sii, result.rii?))
}

pub fn gradient(population: &Population, model: &Model, within: Option<&Model>) -> Gradient {
    let value_type = match model.link {
        Link::Logit => ValueType::Proportion,
        Link::Log => ValueType::Rate,
    };
    let expectation = population.expect(model, within);
    let age_standardised = standardise(
        &by_esp_band(population, model, within),
        &expectation,
        value_type,
    );
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
    let (sii, rii) = match sii_point_estimate(&values, &expectation.eligible, value_type) {
        Some((sii, rii)) => (Some(sii), Some(rii)),
        None => (None, None),
    };
    Gradient {
        value: expectation.overall(),
        eligible,
        by_decile,
        sii,
        rii,
        age_standardised,
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
        let (sii, rii) =
            sii_point_estimate(&values, &[1.0; 10], ValueType::Other).expect("ten deciles");
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
        let (sii, rii) =
            sii_point_estimate(&values, &populations, ValueType::Other).expect("ten deciles");
        assert!((sii - 6.934616473668819).abs() < 1e-6, "{sii}");
        assert!((rii - 1.0888180804446217).abs() < 1e-6, "{rii}");
    }

    #[test]
    fn age_standardised_values_remove_age_structure() {
        use super::super::model::{Cell, Effects, Eligibility, Link};
        // Decile 1 young, decile 10 old; rates depend on age only.
        let mut cells = Vec::new();
        for (decile, young, old) in [(1u8, 900.0, 100.0), (10, 300.0, 700.0)] {
            cells.push(Cell {
                decile,
                age: 30,
                female: false,
                weight: young,
            });
            cells.push(Cell {
                decile,
                age: 80,
                female: false,
                weight: old,
            });
        }
        let population = Population { cells };
        let model = Model {
            link: Link::Log,
            intercept: (0.1f64).ln(),
            effects: Effects {
                age_slope: 0.5,
                age_curvature: 0.0,
                female: 0.0,
                deprivation: 0.0,
                latent: 0.0,
            },
            eligibility: Eligibility::from_age(0),
        };
        let truth = gradient(&population, &model, None);
        let crude_1 = truth.by_decile[0].value;
        let crude_10 = truth.by_decile[9].value;
        assert!(crude_10 > 1.5 * crude_1, "{crude_1} {crude_10}");
        let standardised = &truth.age_standardised.by_decile;
        let (s1, s10) = (
            standardised[0].unwrap_or(f64::NAN),
            standardised[9].unwrap_or(f64::NAN),
        );
        assert!((s1 - s10).abs() < 1e-12, "{s1} {s10}");
    }

    #[test]
    fn sii_needs_five_quantiles() {
        let four = [1.0, 2.0, 3.0, 4.0, f64::NAN];
        assert_eq!(sii_point_estimate(&four, &[5.0; 5], ValueType::Other), None);
        let five = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!(sii_point_estimate(&five, &[5.0; 5], ValueType::Other).is_some());
    }
}
