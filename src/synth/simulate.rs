//! Drawing one practice's patients: residence, age, sex, ethnicity, flags, conditions,
//! outcomes.
//!
//! Owns the per-patient simulation and the compact in-memory form of a practice's output
//! (indexes and small integers; `super::writer` turns it into tables). The models it draws from
//! are calibrated once per run into [`Models`]. Every draw comes from the practice's own stream
//! (`super::seeding`), in a fixed order per patient, so a practice's patients are the same
//! whichever practices are generated with it and however many threads run.

use rand::RngExt;
use rand_distr::StandardNormal;

use super::SynthError;
use super::catchment::{Catchment, CatchmentModel};
use super::conditions::{ConditionModel, condition_models};
use super::ethnicity::EthnicityModel;
use super::flags::{FlagModel, flag_models};
use super::frames::Reference;
use super::model::{Population, Subject};
use super::outcomes::{OutcomeModel, outcome_models};
use super::population::{
    AgeProfile, BandSampler, PRACTICE_BANDS, band_probabilities, practice_band_shares,
    reference_population, resident_band_shares,
};
use super::seeding::{Purpose, Stream, stream};
use crate::indicators::IndicatorKind;

/// Every calibrated model a run draws from.
#[derive(Debug, Clone)]
pub struct Models {
    /// England's single-year age–sex profile.
    pub profile: AgeProfile,
    /// England's residents by decile, age and sex: what intercepts are calibrated on.
    pub reference: Population,
    /// (age, sex) within the practice bands.
    pub bands: BandSampler,
    /// Each practice's age-band shares (published or filled in).
    pub practice_bands: Vec<[f64; 3]>,
    /// Ethnicity.
    pub ethnicity: EthnicityModel,
    /// Flags, in `schema::PATIENT_FLAGS` order.
    pub flags: Vec<(&'static str, FlagModel)>,
    /// Conditions, in `crate::conditions::CONDITIONS` order.
    pub conditions: Vec<ConditionModel>,
    /// Outcomes, in `super::outcomes::OUTCOME_SPECS` order.
    pub outcomes: Vec<OutcomeModel>,
}

impl Models {
    /// Calibrate every model on England's residents.
    ///
    /// # Errors
    /// [`SynthError::Data`] when a target cannot be reached on the reference population.
    pub fn calibrate(
        reference: &Reference,
        catchments: &CatchmentModel,
    ) -> Result<Self, SynthError> {
        let profile = AgeProfile::england();
        let residents = reference_population(&reference.lsoas, &profile);
        let conditions = condition_models(&residents).map_err(SynthError::Data)?;
        let outcomes = outcome_models(&residents, &conditions).map_err(SynthError::Data)?;
        let flags = flag_models(&residents).map_err(SynthError::Data)?;
        Ok(Models {
            bands: profile.sampler(&PRACTICE_BANDS),
            practice_bands: practice_band_shares(
                &reference.practices,
                reference.icbs.len(),
                &profile,
            ),
            ethnicity: EthnicityModel::new(&reference.lsoas, &catchments.geography.neighbours),
            profile,
            reference: residents,
            flags,
            conditions,
            outcomes,
        })
    }
}

/// One condition of one patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionRow {
    /// The patient (index within the practice's output).
    pub patient: u32,
    /// Index into `crate::conditions::CONDITIONS`.
    pub condition: u8,
    /// Date of diagnosis, days since 1970-01-01.
    pub diagnosed_on: i32,
}

/// One outcome of one patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeRow {
    /// The patient (index within the practice's output).
    pub patient: u32,
    /// Index into [`Models::outcomes`].
    pub outcome: u8,
    /// 0/1 for a binary outcome; the count (≥ 1) for a count.
    pub value: u16,
}

/// One practice's generated patients, in compact form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PracticeOutput {
    /// Index into `Reference::practices`.
    pub practice: usize,
    /// Sequence number of the first patient in the run (patient ids derive from it).
    pub first_sequence: u64,
    /// LSOA of residence (index into `Reference::lsoas`).
    pub lsoa: Vec<u32>,
    /// Age in whole years at the extract date.
    pub age: Vec<u8>,
    /// Female (else male).
    pub female: Vec<bool>,
    /// Index into `super::ethnicity::ETHNIC_CODES`.
    pub ethnicity: Vec<u8>,
    /// Bit i set = flag i of `schema::PATIENT_FLAGS`.
    pub flags: Vec<u16>,
    /// Conditions, by patient.
    pub conditions: Vec<ConditionRow>,
    /// Outcome rows, by patient (binary: every eligible patient; count: counts ≥ 1).
    pub outcomes: Vec<OutcomeRow>,
}

impl PracticeOutput {
    /// Number of patients.
    pub fn len(&self) -> usize {
        self.age.len()
    }

    /// Whether there are no patients.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty()
    }
}

/// Everything a practice's draws need that is fixed for the run.
pub struct Simulation<'a> {
    /// The real frames.
    pub reference: &'a Reference,
    /// The catchments.
    pub catchments: &'a CatchmentModel,
    /// The calibrated models.
    pub models: &'a Models,
    /// The run's seed.
    pub seed: u64,
    /// The extract date, days since 1970-01-01.
    pub extract_day: i32,
}

/// Days in a year, for ages and diagnosis dates.
const DAYS_PER_YEAR: f64 = 365.25;

impl Simulation<'_> {
    /// Draw `patients` patients of practice `practice`.
    ///
    /// # Errors
    /// [`SynthError::Data`] when the practice has no catchment.
    pub fn practice(
        &self,
        practice: usize,
        patients: u32,
        first_sequence: u64,
    ) -> Result<PracticeOutput, SynthError> {
        let code = self
            .reference
            .practices
            .get(practice)
            .map(|p| p.code.as_str())
            .ok_or_else(|| SynthError::Data(format!("no practice at index {practice}")))?;
        let catchment: &Catchment = self
            .catchments
            .catchments
            .get(practice)
            .ok_or_else(|| SynthError::Data(format!("practice {code} has no catchment")))?;
        let practice_bands = self
            .models
            .practice_bands
            .get(practice)
            .copied()
            .unwrap_or([0.2, 0.6, 0.2]);
        let cumulative = catchment.cumulative();
        let band_cumulative = band_cumulative(self.reference, catchment, &practice_bands);

        let n = patients as usize;
        let mut out = PracticeOutput {
            practice,
            first_sequence,
            lsoa: Vec::with_capacity(n),
            age: Vec::with_capacity(n),
            female: Vec::with_capacity(n),
            ethnicity: Vec::with_capacity(n),
            flags: Vec::with_capacity(n),
            conditions: Vec::with_capacity(n * 3),
            outcomes: Vec::with_capacity(n * 3),
        };
        let mut rng = stream(self.seed, code, Purpose::Patients);
        let total = cumulative.last().copied().unwrap_or(1.0);
        for patient in 0..patients {
            let target = rng.random::<f64>() * total;
            let slot = cumulative
                .partition_point(|&c| c <= target)
                .min(catchment.lsoas.len().saturating_sub(1));
            let lsoa = catchment.lsoas.get(slot).copied().unwrap_or(0);
            let bands = band_cumulative.get(slot).copied().unwrap_or([1.0; 3]);
            let u = rng.random::<f64>();
            let band = bands.iter().position(|&c| u < c).unwrap_or(2);
            let (age, female) = self.models.bands.draw(band, &mut rng);
            let latent: f64 = rng.sample(StandardNormal);
            let decile = self
                .reference
                .lsoas
                .get(lsoa as usize)
                .map_or(5, |l| l.imd_decile);
            let subject = Subject {
                age,
                female,
                decile,
                latent,
            };
            let ethnicity = self.models.ethnicity.draw(lsoa as usize, age, &mut rng);
            let has = self.draw_conditions(&subject, patient, &mut rng, &mut out.conditions);
            let flags = self.draw_flags(&subject, has, &mut rng);
            self.draw_outcomes(&subject, has, patient, &mut rng, &mut out.outcomes);
            out.lsoa.push(lsoa);
            out.age.push(age);
            out.female.push(female);
            out.ethnicity.push(ethnicity);
            out.flags.push(flags);
        }
        Ok(out)
    }

    /// Draw every condition; returns the set as bits (condition i = bit i).
    fn draw_conditions(
        &self,
        subject: &Subject,
        patient: u32,
        rng: &mut Stream,
        rows: &mut Vec<ConditionRow>,
    ) -> u64 {
        let mut has = 0u64;
        for (index, condition) in self.models.conditions.iter().enumerate() {
            let model = &condition.model;
            if !model.eligibility.admits(subject.age, subject.female) {
                continue;
            }
            if rng.random::<f64>() >= model.mean(subject) {
                continue;
            }
            has |= 1 << index;
            let years_since_eligible =
                f64::from(subject.age.saturating_sub(model.eligibility.min_age));
            let window = match condition.spec.within_years {
                Some(years) => years_since_eligible.min(f64::from(years)),
                None => years_since_eligible,
            };
            let days_ago = (rng.random::<f64>() * window * DAYS_PER_YEAR).floor();
            rows.push(ConditionRow {
                patient,
                // The vocabulary has fewer than 64 codes (checked in `conditions`' tests).
                condition: index as u8,
                diagnosed_on: self.extract_day - days_ago as i32,
            });
        }
        has
    }

    fn draw_flags(&self, subject: &Subject, has: u64, rng: &mut Stream) -> u16 {
        let mut flags = 0u16;
        for (bit, (_, flag)) in self.models.flags.iter().enumerate() {
            let set = match flag {
                FlagModel::Condition(index) => has & (1 << index) != 0,
                FlagModel::Drawn(model) => {
                    model.eligibility.admits(subject.age, subject.female)
                        && rng.random::<f64>() < model.mean(subject)
                }
            };
            if set {
                flags |= 1 << bit;
            }
        }
        flags
    }

    fn draw_outcomes(
        &self,
        subject: &Subject,
        has: u64,
        patient: u32,
        rng: &mut Stream,
        rows: &mut Vec<OutcomeRow>,
    ) {
        for (index, outcome) in self.models.outcomes.iter().enumerate() {
            if !outcome
                .model
                .eligibility
                .admits(subject.age, subject.female)
            {
                continue;
            }
            if outcome.condition.is_some_and(|c| has & (1 << c) == 0) {
                continue;
            }
            let mean = outcome.model.mean(subject);
            let value = match outcome.indicator.kind {
                IndicatorKind::Binary => u16::from(rng.random::<f64>() < mean),
                IndicatorKind::Count => poisson(mean, rng),
            };
            if value > 0 || outcome.indicator.kind == IndicatorKind::Binary {
                rows.push(OutcomeRow {
                    patient,
                    // Fewer than 256 outcomes.
                    outcome: index as u8,
                    value,
                });
            }
        }
    }
}

/// For each catchment LSOA, the probabilities of the three practice age bands for a patient
/// of this practice living there (see `super::population::band_probabilities`).
pub fn catchment_band_probabilities(
    reference: &Reference,
    catchment: &Catchment,
    practice_bands: &[f64; 3],
) -> Vec<[f64; 3]> {
    let lsoa_shares: Vec<[f64; 3]> = catchment
        .lsoas
        .iter()
        .map(|&l| {
            reference
                .lsoas
                .get(l as usize)
                .map_or([1.0 / 3.0; 3], resident_band_shares)
        })
        .collect();
    let mut mean = [0.0; 3];
    for (shares, weight) in lsoa_shares.iter().zip(&catchment.shares) {
        for band in 0..3 {
            mean[band] += weight * shares[band];
        }
    }
    lsoa_shares
        .iter()
        .map(|shares| band_probabilities(practice_bands, shares, &mean))
        .collect()
}

/// The same, cumulative, for drawing.
fn band_cumulative(
    reference: &Reference,
    catchment: &Catchment,
    practice_bands: &[f64; 3],
) -> Vec<[f64; 3]> {
    catchment_band_probabilities(reference, catchment, practice_bands)
        .into_iter()
        .map(|p| [p[0], p[0] + p[1], 1.0])
        .collect()
}

/// A Poisson draw by inversion (the rates here are small; capped at 1,000).
fn poisson(mean: f64, rng: &mut Stream) -> u16 {
    if mean <= 0.0 {
        return 0;
    }
    let u = rng.random::<f64>();
    let mut probability = (-mean).exp();
    let mut cumulative = probability;
    let mut k: u16 = 0;
    while u > cumulative && k < 1000 {
        k += 1;
        probability *= mean / f64::from(k);
        cumulative += probability;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_practice_follows_the_row_conventions() {
        let reference = crate::synth::frames::toy_reference();
        let catchments = crate::synth::catchment::build(&reference, 3).expect("fit");
        let models = Models::calibrate(&reference, &catchments).expect("calibrate");
        let simulation = Simulation {
            reference: &reference,
            catchments: &catchments,
            models: &models,
            seed: 3,
            extract_day: 19_389,
        };
        let out = simulation.practice(1, 3000, 0).expect("practice");
        assert_eq!(out.len(), 3000);
        assert_eq!(simulation.practice(1, 3000, 0).expect("again"), out);
        let catchment = &catchments.catchments[1];
        assert!(out.lsoa.iter().all(|l| catchment.lsoas.contains(l)));
        let outcome = |code: &str| {
            models
                .outcomes
                .iter()
                .position(|o| o.indicator.code == code)
                .expect("outcome") as u8
        };
        let rows = |index: u8| out.outcomes.iter().filter(move |r| r.outcome == index);
        // Binary: a row (0 or 1) per eligible patient; count: rows only for counts ≥ 1.
        assert_eq!(rows(outcome("death_12m")).count(), 3000);
        assert!(rows(outcome("emergency_admissions")).all(|r| r.value >= 1));
        let adults = out.age.iter().filter(|&&a| a >= 15).count();
        assert_eq!(rows(outcome("current_smoker")).count(), adults);
        // bp_controlled only for patients with hypertension.
        let hypertension = crate::conditions::CONDITIONS
            .iter()
            .position(|c| c.code == "hypertension")
            .expect("code") as u8;
        let with_hypertension = out
            .conditions
            .iter()
            .filter(|c| c.condition == hypertension)
            .count();
        assert_eq!(rows(outcome("bp_controlled")).count(), with_hypertension);
        // smi is the condition schizophrenia_bipolar.
        let smi_bit = crate::schema::PATIENT_FLAGS
            .iter()
            .position(|f| *f == "smi")
            .expect("flag");
        let scz = crate::conditions::CONDITIONS
            .iter()
            .position(|c| c.code == "schizophrenia_bipolar")
            .expect("code") as u8;
        for patient in 0..3000u32 {
            let flag = out.flags[patient as usize] & (1 << smi_bit) != 0;
            let condition = out
                .conditions
                .iter()
                .any(|c| c.patient == patient && c.condition == scz);
            assert_eq!(flag, condition, "patient {patient}");
        }
        assert!(out.conditions.iter().all(|c| c.diagnosed_on <= 19_389));
    }

    #[test]
    fn poisson_draws_have_the_right_mean() {
        let mut rng = Stream::seed_from_u64(1);
        let n = 200_000;
        let total: u64 = (0..n).map(|_| u64::from(poisson(0.4, &mut rng))).sum();
        let mean = total as f64 / f64::from(n);
        // SE = sqrt(0.4 / n) ≈ 0.0014
        assert!((mean - 0.4).abs() < 0.006, "{mean}");
        assert_eq!(poisson(0.0, &mut rng), 0);
    }
}
