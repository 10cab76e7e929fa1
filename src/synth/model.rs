//! The one model form behind every drawn attribute (flags, conditions, outcomes), its
//! calibration, and its expected value over a population.
//!
//! Each attribute is a generalised linear model in the same terms:
//!
//! ```text
//! η = α + s·t + q·t² + f·female + d·(10 − decile) + λ·u,     t = (age − 50) / 10
//! ```
//!
//! with a logit link (binary attributes: P = 1 / (1 + e^−η)) or a log link (counts: a Poisson
//! rate e^η per person-year). `decile` is the national IoD2019 decile of the patient's LSOA
//! (1 = most deprived), so `d` is the log odds (or log rate) ratio **per decile step toward more
//! deprived**, the planted deprivation effect. `u ~ N(0, 1)` is a latent "health" score drawn
//! once per patient and shared by every attribute with loading λ, which makes conditions cluster
//! (multimorbidity) and ties admissions and deaths to them. The intercept α is not set by hand:
//! [`calibrate`] solves for it so that a reference population has a target prevalence or rate
//! (see `super::population::reference_population`), which keeps the documented targets true
//! whatever the slopes. Expectations over u use 9-point Gauss–Hermite quadrature.
//!
//! The parameter tables live with what they describe: `super::conditions`,
//! `super::population` (flags), `super::outcomes`.

use serde::Serialize;

/// Gauss–Hermite nodes and weights for an expectation over u ~ N(0, 1): `(u, weight)`, weights
/// summing to 1 (the 9-point physicists' rule rescaled by √2 and 1/√π). Exact for polynomials
/// up to degree 17; for the smooth logistic and exponential functions here, error ≪ 1e-6.
pub const LATENT_QUADRATURE: [(f64, f64); 9] = {
    const X: [f64; 5] = [
        0.0,
        0.723_551_018_752_837_6,
        1.468_553_289_216_668,
        2.266_580_584_531_843,
        3.190_993_201_781_528,
    ];
    const W: [f64; 5] = [
        0.720_235_215_606_051,
        0.432_651_559_002_555_8,
        0.088_474_527_394_376_57,
        0.004_943_624_275_536_947,
        0.000_039_606_977_263_264_6,
    ];
    const SQRT_2: f64 = std::f64::consts::SQRT_2;
    // 1/√π
    const INV_SQRT_PI: f64 = 0.564_189_583_547_756_3;
    [
        (-X[4] * SQRT_2, W[4] * INV_SQRT_PI),
        (-X[3] * SQRT_2, W[3] * INV_SQRT_PI),
        (-X[2] * SQRT_2, W[2] * INV_SQRT_PI),
        (-X[1] * SQRT_2, W[1] * INV_SQRT_PI),
        (X[0], W[0] * INV_SQRT_PI),
        (X[1] * SQRT_2, W[1] * INV_SQRT_PI),
        (X[2] * SQRT_2, W[2] * INV_SQRT_PI),
        (X[3] * SQRT_2, W[3] * INV_SQRT_PI),
        (X[4] * SQRT_2, W[4] * INV_SQRT_PI),
    ]
};

/// Number of IMD deciles.
pub const DECILES: usize = 10;

/// Which sexes an attribute applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sexes {
    /// Everyone.
    Both,
    /// Women only.
    Female,
    /// Men only.
    Male,
}

/// Who an attribute applies to (who has a row for a binary outcome, who can have a
/// condition): an age range in whole years and the sexes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Eligibility {
    /// Youngest eligible age.
    pub min_age: u8,
    /// Oldest eligible age.
    pub max_age: u8,
    /// Eligible sexes.
    pub sexes: Sexes,
}

impl Eligibility {
    /// Everyone aged `min_age` to `max_age`.
    pub const fn ages(min_age: u8, max_age: u8) -> Self {
        Eligibility {
            min_age,
            max_age,
            sexes: Sexes::Both,
        }
    }

    /// Everyone aged `min_age` and over.
    pub const fn from_age(min_age: u8) -> Self {
        Self::ages(min_age, u8::MAX)
    }

    /// Women aged `min_age` to `max_age`.
    pub const fn women(min_age: u8, max_age: u8) -> Self {
        Eligibility {
            min_age,
            max_age,
            sexes: Sexes::Female,
        }
    }

    /// Whether a person of this age and sex is eligible.
    pub fn admits(&self, age: u8, female: bool) -> bool {
        age >= self.min_age
            && age <= self.max_age
            && match self.sexes {
                Sexes::Both => true,
                Sexes::Female => female,
                Sexes::Male => !female,
            }
    }

    /// In words: "women aged 25–64", "aged 65+", "everyone".
    pub fn describe(&self) -> String {
        let who = match self.sexes {
            Sexes::Both => "",
            Sexes::Female => "women ",
            Sexes::Male => "men ",
        };
        match (self.min_age, self.max_age) {
            (0, u8::MAX) if who.is_empty() => "everyone".to_string(),
            (0, u8::MAX) => who.trim_end().to_string(),
            (min, u8::MAX) => format!("{who}aged {min}+"),
            (min, max) => format!("{who}aged {min}–{max}"),
        }
    }
}

/// How the linear predictor maps to the mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// Probability = logistic(η) (binary attributes).
    Logit,
    /// Rate per person-year = exp(η) (counts, drawn as Poisson).
    Log,
}

/// The slopes of the model form (everything but the intercept).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Effects {
    /// `s`: per decade of age from 50.
    pub age_slope: f64,
    /// `q`: per squared decade of age from 50 (negative for a mid-life peak).
    pub age_curvature: f64,
    /// `f`: women against men.
    pub female: f64,
    /// `d`: per IMD decile step toward more deprived (the planted deprivation effect).
    pub deprivation: f64,
    /// `λ`: loading on the latent health score u.
    pub latent: f64,
}

/// What a model sees of a person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Subject {
    /// Age in whole years.
    pub age: u8,
    /// Female (else male).
    pub female: bool,
    /// IMD decile of residence (1 = most deprived).
    pub decile: u8,
    /// Latent health score u.
    pub latent: f64,
}

impl Subject {
    /// Steps from the least deprived decile: `10 − decile` (0 for decile 10, 9 for decile 1).
    pub fn deprivation_steps(&self) -> f64 {
        f64::from(DECILES as u8 - self.decile.clamp(1, DECILES as u8))
    }
}

/// A calibrated model: link, intercept, slopes and who it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Model {
    /// The link.
    pub link: Link,
    /// `α`, calibrated.
    pub intercept: f64,
    /// The slopes.
    pub effects: Effects,
    /// Who it applies to.
    pub eligibility: Eligibility,
}

/// The logistic function, stable for large |x|.
pub fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Model {
    /// η for a subject.
    pub fn linear_predictor(&self, subject: &Subject) -> f64 {
        linear_predictor(self.intercept, &self.effects, subject)
    }

    /// The probability (logit link) or rate (log link) for a subject; 0 when not eligible.
    pub fn mean(&self, subject: &Subject) -> f64 {
        if !self.eligibility.admits(subject.age, subject.female) {
            return 0.0;
        }
        apply_link(self.link, self.linear_predictor(subject))
    }
}

fn linear_predictor(intercept: f64, effects: &Effects, subject: &Subject) -> f64 {
    let t = (f64::from(subject.age) - 50.0) / 10.0;
    intercept
        + effects.age_slope * t
        + effects.age_curvature * t * t
        + effects.female * if subject.female { 1.0 } else { 0.0 }
        + effects.deprivation * subject.deprivation_steps()
        + effects.latent * subject.latent
}

fn apply_link(link: Link, eta: f64) -> f64 {
    match link {
        Link::Logit => logistic(eta),
        // Capped so that a mis-specified table cannot overflow a Poisson draw.
        Link::Log => eta.min(5.0).exp(),
    }
}

/// One cell of a population: people of one decile, age and sex, with a weight (a count or a
/// share).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// IMD decile (1 = most deprived).
    pub decile: u8,
    /// Age in whole years.
    pub age: u8,
    /// Female (else male).
    pub female: bool,
    /// How many people (or what share).
    pub weight: f64,
}

/// A population by IMD decile, single year of age and sex.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Population {
    /// The cells; weights need not sum to anything in particular.
    pub cells: Vec<Cell>,
}

/// Expected counts by decile: the eligible population and the expected events (people with
/// the attribute, or events for a count).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Expectation {
    /// Eligible people per decile (index 0 = decile 1).
    pub eligible: [f64; DECILES],
    /// Expected events per decile.
    pub events: [f64; DECILES],
}

impl Expectation {
    /// Events over eligible people, all deciles together.
    pub fn overall(&self) -> f64 {
        let eligible: f64 = self.eligible.iter().sum();
        if eligible > 0.0 {
            self.events.iter().sum::<f64>() / eligible
        } else {
            f64::NAN
        }
    }

    /// Events over eligible people in each decile (`NaN` for an empty decile).
    pub fn by_decile(&self) -> [f64; DECILES] {
        let mut values = [f64::NAN; DECILES];
        for (value, (events, eligible)) in values
            .iter_mut()
            .zip(self.events.iter().zip(&self.eligible))
        {
            if *eligible > 0.0 {
                *value = events / eligible;
            }
        }
        values
    }
}

impl Population {
    /// The expected eligible population and events of `model` in each decile, integrating over
    /// the latent score. With `within`, eligibility also requires having the attribute of
    /// `within` (e.g. blood pressure control among people with hypertension), jointly in u.
    pub fn expect(&self, model: &Model, within: Option<&Model>) -> Expectation {
        let mut expectation = Expectation::default();
        for cell in &self.cells {
            if !model.eligibility.admits(cell.age, cell.female) {
                continue;
            }
            let (eligible, events) = cell_expectation(cell, model.intercept, model, within);
            let index = usize::from(cell.decile.clamp(1, DECILES as u8) - 1);
            expectation.eligible[index] += cell.weight * eligible;
            expectation.events[index] += cell.weight * events;
        }
        expectation
    }
}

/// (share eligible, expected events per person) in one cell, with the given intercept.
fn cell_expectation(
    cell: &Cell,
    intercept: f64,
    model: &Model,
    within: Option<&Model>,
) -> (f64, f64) {
    let mut eligible = 0.0;
    let mut events = 0.0;
    for (u, weight) in LATENT_QUADRATURE {
        let subject = Subject {
            age: cell.age,
            female: cell.female,
            decile: cell.decile,
            latent: u,
        };
        let gate = within.map_or(1.0, |w| w.mean(&subject));
        let mean = apply_link(
            model.link,
            linear_predictor(intercept, &model.effects, &subject),
        );
        eligible += weight * gate;
        events += weight * gate * mean;
    }
    (eligible, events)
}

/// The intercept that gives `target` (a prevalence, or a rate per person-year) among the
/// eligible people of `population`, solved by Newton's method on the intercept (the mean is
/// increasing in it), to a relative error below 1e-9.
///
/// Returns `None` when the population has nobody eligible or the target is not attainable
/// (a prevalence outside (0, 1), a rate ≤ 0).
pub fn calibrate(
    link: Link,
    effects: Effects,
    eligibility: Eligibility,
    target: f64,
    population: &Population,
    within: Option<&Model>,
) -> Option<f64> {
    let attainable = match link {
        Link::Logit => target > 0.0 && target < 1.0,
        Link::Log => target > 0.0,
    };
    if !attainable {
        return None;
    }
    let cells: Vec<&Cell> = population
        .cells
        .iter()
        .filter(|c| c.weight > 0.0 && eligibility.admits(c.age, c.female))
        .collect();
    let mut intercept = match link {
        Link::Logit => (target / (1.0 - target)).ln(),
        Link::Log => target.ln(),
    };
    for _ in 0..100 {
        // mean(α) and its derivative: d/dα of logistic is p(1 − p), of exp is the rate itself.
        let (mut eligible, mut events, mut slope) = (0.0, 0.0, 0.0);
        for cell in &cells {
            for (u, weight) in LATENT_QUADRATURE {
                let subject = Subject {
                    age: cell.age,
                    female: cell.female,
                    decile: cell.decile,
                    latent: u,
                };
                let gate = within.map_or(1.0, |w| w.mean(&subject));
                let mean = apply_link(link, linear_predictor(intercept, &effects, &subject));
                let derivative = match link {
                    Link::Logit => mean * (1.0 - mean),
                    Link::Log => mean,
                };
                let w = cell.weight * weight * gate;
                eligible += w;
                events += w * mean;
                slope += w * derivative;
            }
        }
        if eligible <= 0.0 || slope <= 0.0 {
            return None;
        }
        let error = events / eligible - target;
        if (error / target).abs() < 1e-9 {
            return Some(intercept);
        }
        // Damped so that a far start cannot jump past where the logistic is flat.
        intercept -= (error / (slope / eligible)).clamp(-3.0, 3.0);
    }
    Some(intercept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat_population() -> Population {
        let mut cells = Vec::new();
        for decile in 1..=10 {
            for age in [10u8, 40, 70] {
                for female in [false, true] {
                    cells.push(Cell {
                        decile,
                        age,
                        female,
                        weight: 1.0,
                    });
                }
            }
        }
        Population { cells }
    }

    #[test]
    fn quadrature_integrates_normal_moments() {
        let total: f64 = LATENT_QUADRATURE.iter().map(|(_, w)| w).sum();
        let variance: f64 = LATENT_QUADRATURE.iter().map(|(u, w)| w * u * u).sum();
        let lognormal: f64 = LATENT_QUADRATURE
            .iter()
            .map(|(u, w)| w * (0.8 * u).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((variance - 1.0).abs() < 1e-12);
        // E[e^{λu}] = e^{λ²/2}
        assert!((lognormal - (0.32f64).exp()).abs() < 1e-9);
    }

    #[test]
    fn calibrate_hits_a_prevalence_and_a_rate() {
        let population = flat_population();
        let effects = Effects {
            age_slope: 0.7,
            age_curvature: -0.05,
            female: 0.2,
            deprivation: 0.08,
            latent: 0.9,
        };
        for (link, target) in [(Link::Logit, 0.13), (Link::Log, 0.4)] {
            let eligibility = Eligibility::from_age(15);
            let intercept = calibrate(link, effects, eligibility, target, &population, None)
                .expect("attainable");
            let model = Model {
                link,
                intercept,
                effects,
                eligibility,
            };
            let achieved = population.expect(&model, None).overall();
            assert!((achieved - target).abs() < 1e-8, "{link:?}: {achieved}");
        }
    }

    #[test]
    fn calibrate_refuses_impossible_targets() {
        let population = flat_population();
        let effects = Effects {
            age_slope: 0.0,
            age_curvature: 0.0,
            female: 0.0,
            deprivation: 0.0,
            latent: 0.0,
        };
        let all = Eligibility::from_age(0);
        assert_eq!(
            calibrate(Link::Logit, effects, all, 1.2, &population, None),
            None
        );
        assert_eq!(
            calibrate(
                Link::Log,
                effects,
                Eligibility::ages(101, 110),
                0.1,
                &population,
                None
            ),
            None
        );
    }

    #[test]
    fn deprivation_effect_is_per_decile_step() {
        let model = Model {
            link: Link::Log,
            intercept: 0.0,
            effects: Effects {
                age_slope: 0.0,
                age_curvature: 0.0,
                female: 0.0,
                deprivation: 0.1,
                latent: 0.0,
            },
            eligibility: Eligibility::from_age(0),
        };
        let at = |decile| {
            model.mean(&Subject {
                age: 50,
                female: false,
                decile,
                latent: 0.0,
            })
        };
        assert!((at(1) / at(10) - (0.9f64).exp()).abs() < 1e-12);
        assert!((at(4) / at(5) - (0.1f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn eligibility_in_words() {
        assert_eq!(Eligibility::women(25, 64).describe(), "women aged 25–64");
        assert_eq!(Eligibility::from_age(65).describe(), "aged 65+");
        assert_eq!(Eligibility::from_age(0).describe(), "everyone");
        assert!(!Eligibility::women(25, 64).admits(30, false));
    }
}
