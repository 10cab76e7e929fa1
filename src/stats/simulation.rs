//! The SII Monte Carlo engine: per-area random streams, the fixed regression design, the
//! simulation kernels and order statistics. [`super::sii`] owns the method (validation, point
//! estimates, how limits are assembled); this file owns making it fast and reproducible.
//!
//! Speed comes from the structure of the problem:
//! - The design X (√a, b·√a) is fixed per area, so the fitted coefficients of a repetition are
//!   β* = M·y* with M = (XᵀX)⁻¹Xᵀ·diag(√a), a 2×Q matrix computed once.
//! - When the draws are not back-transformed (value type "other", or `transform = TRUE`),
//!   β* = Mμ + M·diag(σ)·z is an exact linear map of Q independent normals, so (β₁*, β₂*) is
//!   bivariate normal with covariance M·diag(σ²)·Mᵀ: two normal draws per repetition give it
//!   exactly (same distribution as the reference's Q draws, a fifth of the work for deciles).
//! - Otherwise each repetition needs Q draws and a back-transform (exp or logistic); they are
//!   made in blocks laid out quantile-major, so the transform and the two dot products run as
//!   vector loops with no allocation per repetition; the same loop is also compiled for AVX2
//!   and AVX-512 and chosen at run time. Its multiply-adds are fused (`mul_add`): a third fewer
//!   vector operations, the gradient 6.0 → 4.2 s at 1M (benches/RESULTS.md, thirty-fifth
//!   round). A fused multiply-add is rounded once, exactly, in every build (the AVX builds'
//!   instruction, the C library's `fmaf` in the portable one), so every variant still gives
//!   bit-identical results. The portable build runs only on CPUs without AVX2 and FMA.
//! - That kernel works in single precision (f32): twice the lanes of a vector, a cheaper
//!   division and a shorter `exp` ([`fast_exp_f32`]). A repetition's coefficients are then
//!   within about 2e-5 of their spread over the repetitions of the double-precision values;
//!   the Monte Carlo error of a 95% limit from 100,000 repetitions is about 0.0085 of that
//!   spread, four hundred times more. The point estimates are computed in double precision,
//!   outside the simulation, and the coefficients are returned as f64.
//!
//! - Normal draws for the non-linear kernel come from a bank of [`BANK_LEN`] standard normals
//!   made once per process (a fixed Xoshiro256++ stream through rand_distr's ziggurat, stored
//!   as f32): an area reads a contiguous window of it from a random offset its own stream
//!   draws, wrapping round.
//!   Within an area the draws are as independent as fresh ones (a window never wraps onto
//!   itself: areas needing more than the bank draw fresh normals); across areas windows may
//!   overlap, which correlates Monte Carlo errors of different areas but biases none. Drawing
//!   the normals was half the time of a national batch.
//!
//! Reproducibility: each area draws from its own Xoshiro256++ stream (rand's portable
//! generator) seeded from (seed, stream id) through SplitMix64, so an area's limits depend only
//! on the seed and its stream id, never on thread count or on the other areas in a batch.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// Repetitions simulated together in one block of the non-linear kernel: big enough for vector
/// loops, small enough that the block (Q × 256 floats) stays in L1/L2 cache.
const BLOCK: usize = 256;

/// Standard normals in the shared bank (32 MiB of f32): at least the Q × R draws of a decile
/// area at the default 100,000 repetitions, eight times over.
pub(crate) const BANK_LEN: usize = 1 << 23;

/// One standard normal draw, rounded to the kernel's precision.
fn standard_normal(rng: &mut Xoshiro256PlusPlus) -> f32 {
    let z: f64 = rng.sample(StandardNormal);
    z as f32
}

/// The shared bank of standard normals, made on first use (deterministic: a fixed stream).
fn normal_bank() -> &'static [f32] {
    static BANK: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    BANK.get_or_init(|| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5111_0000_0000_0001);
        (0..BANK_LEN).map(|_| standard_normal(&mut rng)).collect()
    })
}

/// The back-transform applied to each simulated value before the regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackTransform {
    /// No back-transform: the kernel is linear in the draws.
    Identity,
    /// exp(y), for rates simulated on the log scale.
    Exp,
    /// e^y / (1 + e^y), for proportions simulated on the logit scale.
    Logistic,
}

/// The fixed regression of one area: β = M·y for any response y per row.
#[derive(Debug, Clone)]
pub(crate) struct Design {
    /// First row of M: the intercept (value at relative rank 0).
    pub m1: Vec<f64>,
    /// Second row of M: the slope across relative rank 0 → 1.
    pub m2: Vec<f64>,
}

impl Design {
    /// Weighted least squares of y on (1, b) with weights a: the reference regresses √a·y on
    /// (√a, b√a) without an intercept, whose normal equations are these.
    pub fn new(shares: &[f64], ranks: &[f64]) -> Design {
        let s0: f64 = shares.iter().sum();
        let s1: f64 = shares.iter().zip(ranks).map(|(a, b)| a * b).sum();
        let s2: f64 = shares.iter().zip(ranks).map(|(a, b)| a * b * b).sum();
        let det = s0 * s2 - s1 * s1;
        let m1 = shares
            .iter()
            .zip(ranks)
            .map(|(a, b)| (s2 * a - s1 * a * b) / det)
            .collect();
        let m2 = shares
            .iter()
            .zip(ranks)
            .map(|(a, b)| (s0 * a * b - s1 * a) / det)
            .collect();
        Design { m1, m2 }
    }

    /// (β₁, β₂) = (intercept, slope) for a response y.
    pub fn fit(&self, y: &[f64]) -> (f64, f64) {
        let b1 = self.m1.iter().zip(y).map(|(m, v)| m * v).sum();
        let b2 = self.m2.iter().zip(y).map(|(m, v)| m * v).sum();
        (b1, b2)
    }
}

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator for one area: seed and stream id are mixed into a 64-bit key that seeds
/// Xoshiro256++ through SplitMix64 (rand's `seed_from_u64`).
pub(crate) fn area_rng(seed: u64, stream: u64) -> Xoshiro256PlusPlus {
    let key = mix64(seed ^ mix64(stream.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    Xoshiro256PlusPlus::seed_from_u64(key)
}

/// A stream id from a text key (e.g. an area code plus indicator id): FNV-1a, stable across
/// platforms and releases, so a run keyed this way gives each area the same limits whatever
/// else is in the batch.
pub(crate) fn stream_for_key(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// exp(x) in single precision to within a few units in the last place, written with plain
/// arithmetic and fused multiply-adds so that the compiler vectorises it (the C library's
/// `exp` is a scalar call).
/// Range reduction x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 Taylor polynomial for e^r
/// (truncation below 6e-9 relative, under half an f32 unit) and 2^n from the exponent bits.
/// Arguments are clamped to [−87, 87]: 2^n stays a normal number, and so does the logistic's
/// 1/(1 + e^87). A draw of −∞ (a decile with no events has an infinite SE on the logit scale)
/// gave 1/(1 + e^88), a subnormal, and the CPU's slow path for every operation on it made
/// sparse areas' simulations several times slower. NaN stays NaN.
///
/// The kernel back-transforms every draw through it (18 of a national run's 20 indicators
/// are proportions); its double-precision forerunner, with a table of 2^(j/16) to halve the
/// polynomial, was a fifth of the SII stage (benches/RESULTS.md, eleventh round).
#[inline(always)]
pub(crate) fn fast_exp_f32(x: f32) -> f32 {
    // ln2 in two parts (Cody and Waite): the high part has 9 significant bits, so n times it
    // is exact for every n here (|n| ≤ 127).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to an integer n and leaves 2²² + n in the low mantissa bits.
    const ROUNDER: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.0, 87.0);
    let shifted = clamped.mul_add(std::f32::consts::LOG2_E, ROUNDER);
    let n = shifted - ROUNDER;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, clamped));
    let mut p: f32 = 1.0 / 5_040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p.mul_add(r, c);
    }
    // n + 127 (1..=254 after the clamp) in the exponent field builds 2^n.
    let biased = shifted
        .to_bits()
        .wrapping_sub(ROUNDER.to_bits())
        .wrapping_add(127);
    p * f32::from_bits(biased << 23)
}

/// One area's simulation inputs, on the transformed scale.
pub(crate) struct Simulation<'a> {
    pub design: &'a Design,
    /// Mean of each row's draws (the transformed value).
    pub mean: &'a [f64],
    /// Standard deviation of each row's draws (the SE on the transformed scale).
    pub sd: &'a [f64],
    pub back: BackTransform,
}

/// Fill `intercepts` and `slopes` with β₁*, β₂* for `intercepts.len()` repetitions.
pub(crate) fn simulate(
    sim: &Simulation<'_>,
    rng: &mut Xoshiro256PlusPlus,
    intercepts: &mut [f64],
    slopes: &mut [f64],
) {
    match sim.back {
        BackTransform::Identity => simulate_linear(sim, rng, intercepts, slopes),
        _ => simulate_blocked(sim, rng, intercepts, slopes),
    }
}

/// Linear case: draw (β₁*, β₂*) from their exact bivariate normal distribution.
fn simulate_linear(
    sim: &Simulation<'_>,
    rng: &mut Xoshiro256PlusPlus,
    intercepts: &mut [f64],
    slopes: &mut [f64],
) {
    let Design { m1, m2 } = sim.design;
    let (mu1, mu2) = sim.design.fit(sim.mean);
    let (mut v11, mut v12, mut v22) = (0.0, 0.0, 0.0);
    for ((a, b), s) in m1.iter().zip(m2).zip(sim.sd) {
        let s2 = s * s;
        v11 += a * a * s2;
        v12 += a * b * s2;
        v22 += b * b * s2;
    }
    // Cholesky factor of the 2×2 covariance; a zero variance (all SEs zero) gives point masses.
    let l11 = v11.sqrt();
    let l21 = if l11 > 0.0 { v12 / l11 } else { 0.0 };
    let l22 = (v22 - l21 * l21).max(0.0).sqrt();
    for (b1, b2) in intercepts.iter_mut().zip(slopes.iter_mut()) {
        let z1: f64 = rng.sample(StandardNormal);
        let z2: f64 = rng.sample(StandardNormal);
        *b1 = mu1 + l11 * z1;
        *b2 = mu2 + l21 * z1 + l22 * z2;
    }
}

/// Non-linear case: Q draws per repetition, back-transformed, in blocks of [`BLOCK`].
fn simulate_blocked(
    sim: &Simulation<'_>,
    rng: &mut Xoshiro256PlusPlus,
    intercepts: &mut [f64],
    slopes: &mut [f64],
) {
    let q = sim.mean.len();
    let mut draws = vec![0.0_f32; q * BLOCK];
    // From the bank when the area's draws fit in it without reuse, else fresh.
    let needed = q * intercepts.len();
    let bank = (needed <= BANK_LEN).then(normal_bank);
    let mut next = rng.random_range(0..BANK_LEN);
    let window = q * BLOCK;
    for (b1, b2) in intercepts.chunks_mut(BLOCK).zip(slopes.chunks_mut(BLOCK)) {
        let reps = b1.len();
        // A full block that does not wrap reads the bank in place: q rows of BLOCK draws.
        if let Some(bank) = bank.filter(|_| reps == BLOCK && next + window <= BANK_LEN) {
            regress_block(sim, &bank[next..next + window], b1, b2);
            next = (next + window) % BANK_LEN;
            continue;
        }
        // Quantile-major: row k holds this block's draws for quantile k.
        for row in draws.chunks_exact_mut(BLOCK) {
            let row = &mut row[..reps];
            match bank {
                Some(bank) => {
                    // Contiguous copies, split where the window wraps round the bank's end.
                    let first = (BANK_LEN - next).min(reps);
                    row[..first].copy_from_slice(&bank[next..next + first]);
                    row[first..].copy_from_slice(&bank[..reps - first]);
                    next = (next + reps) % BANK_LEN;
                }
                None => {
                    for z in row.iter_mut() {
                        *z = standard_normal(rng);
                    }
                }
            }
        }
        regress_block(sim, &draws, b1, b2);
    }
}

/// Each repetition's SII* and RII* from its simulated coefficients, in place, for draws that
/// were back-transformed: the slope times `multiplier`, and (when `rii`) the intercept replaced
/// by (β₁ + β₂)/β₁, or its reciprocal when the multiplier is negative (the RII is read from
/// the unscaled slope). Built for AVX-512 and AVX2 too and chosen at run time: compiled for the
/// baseline, the divisions went two to an instruction and were a tenth of the gradient's
/// samples. Each operation is rounded alone in every build, so all give the same bits.
pub(crate) fn indices_of_draws(
    intercepts: &mut [f64],
    slopes: &mut [f64],
    multiplier: f64,
    rii: bool,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above), the only requirement of
            // calling a function compiled with `target_feature(enable = "avx512f")`.
            unsafe { indices_of_draws_avx512(intercepts, slopes, multiplier, rii) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of
            // calling a function compiled with `target_feature(enable = "avx2")`.
            unsafe { indices_of_draws_avx2(intercepts, slopes, multiplier, rii) };
            return;
        }
    }
    indices_of_draws_portable(intercepts, slopes, multiplier, rii);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn indices_of_draws_avx512(intercepts: &mut [f64], slopes: &mut [f64], multiplier: f64, rii: bool) {
    indices_of_draws_portable(intercepts, slopes, multiplier, rii);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn indices_of_draws_avx2(intercepts: &mut [f64], slopes: &mut [f64], multiplier: f64, rii: bool) {
    indices_of_draws_portable(intercepts, slopes, multiplier, rii);
}

#[inline(always)]
fn indices_of_draws_portable(
    intercepts: &mut [f64],
    slopes: &mut [f64],
    multiplier: f64,
    rii: bool,
) {
    // One loop for each sign, so that no loop has a branch to vectorise around.
    if rii && multiplier < 0.0 {
        for (i, s) in intercepts.iter_mut().zip(slopes.iter()) {
            *i = 1.0 / ((*i + s) / *i);
        }
    } else if rii {
        for (i, s) in intercepts.iter_mut().zip(slopes.iter()) {
            *i = (*i + s) / *i;
        }
    }
    for s in slopes.iter_mut() {
        *s *= multiplier;
    }
}

/// Transform one block of draws and accumulate the two dot products, choosing the AVX-512 or
/// AVX2 build of the same loop (each with FMA) when the CPU has it.
fn regress_block(sim: &Simulation<'_>, draws: &[f32], b1: &mut [f64], b2: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if std::arch::is_x86_feature_detected!("avx512f") && fma {
            // SAFETY: the CPU supports AVX-512F and FMA (checked just above), the only
            // requirement of calling a function compiled with
            // `target_feature(enable = "avx512f,fma")`.
            unsafe { regress_block_avx512(sim, draws, b1, b2) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && fma {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above), the only requirement
            // of calling a function compiled with `target_feature(enable = "avx2,fma")`.
            unsafe { regress_block_avx2(sim, draws, b1, b2) };
            return;
        }
    }
    regress_block_portable(sim, draws, b1, b2);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn regress_block_avx512(sim: &Simulation<'_>, draws: &[f32], b1: &mut [f64], b2: &mut [f64]) {
    regress_block_portable(sim, draws, b1, b2);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn regress_block_avx2(sim: &Simulation<'_>, draws: &[f32], b1: &mut [f64], b2: &mut [f64]) {
    regress_block_portable(sim, draws, b1, b2);
}

#[inline(always)]
fn regress_block_portable(sim: &Simulation<'_>, draws: &[f32], b1: &mut [f64], b2: &mut [f64]) {
    // One monomorphised loop per back-transform, so the inner loop has no branch to vectorise
    // around.
    match sim.back {
        BackTransform::Identity => accumulate(sim, draws, b1, b2, |y| y),
        BackTransform::Exp => accumulate(sim, draws, b1, b2, fast_exp_f32),
        BackTransform::Logistic => {
            accumulate(sim, draws, b1, b2, |y| 1.0 / (1.0 + fast_exp_f32(-y)))
        }
    }
}

/// One block's (β₁*, β₂*) in single precision (see the module's notes), returned as f64.
#[inline(always)]
fn accumulate(
    sim: &Simulation<'_>,
    draws: &[f32],
    b1: &mut [f64],
    b2: &mut [f64],
    back: impl Fn(f32) -> f32,
) {
    let reps = b1.len().min(BLOCK);
    let (mut sum1, mut sum2) = ([0.0_f32; BLOCK], [0.0_f32; BLOCK]);
    let (sum1, sum2) = (&mut sum1[..reps], &mut sum2[..reps]);
    for ((((row, &mean), &sd), &m1), &m2) in draws
        .chunks_exact(BLOCK)
        .zip(sim.mean)
        .zip(sim.sd)
        .zip(&sim.design.m1)
        .zip(&sim.design.m2)
    {
        let (mean, sd, m1, m2) = (mean as f32, sd as f32, m1 as f32, m2 as f32);
        for ((&z, o1), o2) in row.iter().zip(sum1.iter_mut()).zip(sum2.iter_mut()) {
            let v = back(sd.mul_add(z, mean));
            *o1 = m1.mul_add(v, *o1);
            *o2 = m2.mul_add(v, *o2);
        }
    }
    for (out, sum) in b1.iter_mut().zip(sum1.iter()) {
        *out = f64::from(*sum);
    }
    for (out, sum) in b2.iter_mut().zip(sum2.iter()) {
        *out = f64::from(*sum);
    }
}

/// R's `round` (IEC 60559: halves to even) for the order-statistic positions.
pub(crate) fn round_half_even(x: f64) -> f64 {
    let rounded = x.round();
    if (x - x.trunc()).abs() == 0.5 && rounded % 2.0 != 0.0 {
        rounded - x.signum()
    } else {
        rounded
    }
}

/// The 1-based positions the reference reads from the sorted simulations for a two-sided level
/// with upper probability `cv`: round(R·(1−cv)) and round(R·cv), half to even, kept within
/// 1..=R (R itself would index past a position of 0; we take the smallest value instead).
pub(crate) fn order_positions(repetitions: usize, cv: f64) -> (usize, usize) {
    let r = repetitions as f64;
    let clamp = |p: f64| (p.max(1.0).min(r)) as usize;
    (
        clamp(round_half_even(r * (1.0 - cv))),
        clamp(round_half_even(r * cv)),
    )
}

/// The values at the given 1-based order positions of `values` (in `f64::total_cmp` order), in
/// the order asked. `values` may be permuted.
///
/// Confidence limits read positions in the two tails (100 and 2,500 of 100,000 and their
/// mirror images): those are found in the tails alone ([`tail_order_statistics`]); anything
/// else by selection over the whole slice.
pub(crate) fn order_statistics(values: &mut [f64], positions: &[usize]) -> Vec<f64> {
    tail_order_statistics(values, positions).unwrap_or_else(|| {
        // Selected as keys (`total_cmp`'s order as integers), in the thread's reused side.
        TAIL_SIDES.with_borrow_mut(|(keys, _)| {
            keys.clear();
            keys.extend(values.iter().map(|&value| total_order_key(value)));
            selected_statistics(keys, positions)
                .into_iter()
                .map(|key| key.map_or(f64::NAN, value_of_order_key))
                .collect()
        })
    })
}

/// Order statistics of positions within the outer tenth at either end, from one pass that keeps
/// only the values beyond two thresholds taken from a sample (and counts those equal to them),
/// then selections among those few. Exact: every kept low value is below the low bound and
/// every other value at or above it, so the k-th smallest overall is the k-th smallest kept
/// when at least k were kept, else the bound itself when k is within the values equal to it
/// (likewise at the top). `None` when the positions are not all in the tails, the slice is
/// small, or a threshold kept too few values; the caller then selects over the whole slice.
fn tail_order_statistics(values: &[f64], positions: &[usize]) -> Option<Vec<f64>> {
    let n = values.len();
    if n < 4096 || positions.iter().any(|&p| p < 1 || p > n) {
        return None;
    }
    // How many of the smallest and of the largest values the positions reach into.
    let low_need = positions.iter().filter(|&&p| p <= n / 2).max().copied();
    let high_need = positions
        .iter()
        .filter(|&&p| p > n / 2)
        .map(|&p| n - p + 1)
        .max();
    if low_need.max(high_need).unwrap_or(0) > n / 10 {
        return None;
    }
    // Thresholds from an evenly spaced sample, with a margin of half as many values again (and
    // a few) so that a threshold rarely keeps too few.
    let mut sample: Vec<i64> = values
        .iter()
        .step_by(n / 1024)
        .map(|&value| total_order_key(value))
        .collect();
    let (len, last) = (sample.len(), sample.len() - 1);
    let sample_index = |need: usize| {
        let share = need as f64 / n as f64;
        ((share * 1.5 * len as f64).ceil() as usize + 4).min(last)
    };
    // Compared as integers in `total_cmp`'s order (NaNs included: simulations of sparse areas
    // give many). Values equal to a bound are counted, not kept: a sparse area's NaNs are one
    // key at an end, at 1M patients 42% of all simulations, and keeping and selecting among
    // them was a quarter of the gradient's CPU there (benches/RESULTS.md, thirty-fourth
    // round). Each side answers from its own keys and count, so the bounds may be equal.
    // The two bounds are selected, not sorted for: the high one first, and the low one among
    // the sample before it, which is at most the high one.
    let high_index = high_need.map(|need| last - sample_index(need));
    let high_key = high_index.map_or(i64::MAX, |index| *sample.select_nth_unstable(index).1);
    let low_key = match low_need.map(sample_index) {
        Some(index) if index >= high_index.unwrap_or(len) => return None,
        Some(index) => {
            *sample[..high_index.unwrap_or(len)]
                .select_nth_unstable(index)
                .1
        }
        None => i64::MIN,
    };
    // Most values are between the bounds. The sides are the thread's, reused from call to call
    // (an area searches for its limits once or twice, 27,000 areas a national run): each can hold
    // every value and a chunk of eight more, so no store needs a check and no call zeroes or
    // grows them (sparse areas keep many NaNs, and a side grown chunk by chunk was copied).
    TAIL_SIDES.with_borrow_mut(|(low_side, high_side)| {
        for side in [&mut *low_side, &mut *high_side] {
            if side.len() < n + 8 {
                side.resize(n + 8, 0);
            }
        }
        let mut tails = Tails {
            low: low_side,
            high: high_side,
            low_len: 0,
            high_len: 0,
            low_ties: 0,
            high_ties: 0,
            low_key,
            high_key,
        };
        tails.keep(values);
        let Tails {
            low_len,
            high_len,
            low_ties,
            high_ties,
            ..
        } = tails;
        if low_len + low_ties < low_need.unwrap_or(0)
            || high_len + high_ties < high_need.unwrap_or(0)
        {
            return None;
        }
        let (low, high) = (&mut low_side[..low_len], &mut high_side[..high_len]);
        // Positions among the kept values: as they are at the bottom, shifted at the top; 0
        // (none) for the other side's and for those at a bound.
        let skipped = n - high.len();
        let low_positions: Vec<usize> = positions
            .iter()
            .map(|&p| if p <= low_len { p } else { 0 })
            .collect();
        let high_positions: Vec<usize> = positions
            .iter()
            .map(|&p| p.saturating_sub(skipped))
            .collect();
        // Selected among the keys, in their integer order (`total_cmp`'s on the values).
        let from_low = selected_statistics(low, &low_positions);
        let from_high = selected_statistics(high, &high_positions);
        Some(
            positions
                .iter()
                .zip(from_low.into_iter().zip(from_high))
                .map(|(&p, (low, high))| {
                    let key = match p {
                        p if p <= low_len => low,
                        p if p <= n / 2 => Some(low_key),
                        p if p > skipped => high,
                        _ => Some(high_key),
                    };
                    key.map_or(f64::NAN, value_of_order_key)
                })
                .collect(),
        )
    })
}

thread_local! {
    /// The two sides [`tail_order_statistics`] keeps a slice's tails in, reused.
    static TAIL_SIDES: std::cell::RefCell<(Vec<i64>, Vec<i64>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The keys ([`total_order_key`]) of a slice's values below a low key and above a high key,
/// kept in slice order (the first `low_len` of `low` and `high_len` of `high`), and how many
/// equal each key.
struct Tails<'a> {
    low: &'a mut [i64],
    high: &'a mut [i64],
    low_len: usize,
    high_len: usize,
    low_ties: usize,
    high_ties: usize,
    low_key: i64,
    high_key: i64,
}

impl Tails<'_> {
    /// Keep the values of `chunk` that belong to either side. Each side must have room for
    /// the whole chunk past its length (else the portable loop panics on the index).
    fn keep(&mut self, chunk: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            let room = |side: &[i64], len: usize| side.len() >= len + chunk.len();
            if room(self.low, self.low_len) && room(self.high, self.high_len) {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above), and both sides
                    // have room for the whole chunk past their lengths (also checked), which
                    // is what the function's stores need.
                    unsafe { self.keep_avx512(chunk) };
                    return;
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above, with AVX2.
                    unsafe { self.keep_avx2(chunk) };
                    return;
                }
            }
        }
        self.keep_portable(chunk);
    }

    /// Each value is written to the next free slot of both sides, and a side's length moves
    /// on only when the value belongs to it: no branch depends on the values (a branch on
    /// each chunk of eight, kept or not, was mispredicted about half the time).
    fn keep_portable(&mut self, chunk: &[f64]) {
        for &value in chunk {
            let key = total_order_key(value);
            self.low[self.low_len] = key;
            self.low_len += usize::from(key < self.low_key);
            self.low_ties += usize::from(key == self.low_key);
            self.high[self.high_len] = key;
            self.high_len += usize::from(key > self.high_key);
            self.high_ties += usize::from(key == self.high_key);
        }
    }

    /// Eight values at a time: their keys compared at once, and those kept packed to the front
    /// of a register (`vpcompressq`) that is stored whole at the side's length; the lanes past
    /// the kept ones are overwritten by the next store. The portable loop, a value at a time,
    /// was a fifth of an SII's time (two scans of 100,000 simulations each).
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and each side must have room for `chunk.len()` values
    /// past its length (a store of eight lanes starts at most at the length plus the values
    /// before it in the chunk).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn keep_avx512(&mut self, chunk: &[f64]) {
        use std::arch::x86_64::{
            _mm512_castpd_si512, _mm512_cmpeq_epi64_mask, _mm512_cmpgt_epi64_mask,
            _mm512_cmplt_epi64_mask, _mm512_loadu_pd, _mm512_maskz_compress_epi64,
            _mm512_set1_epi64, _mm512_srai_epi64, _mm512_srli_epi64, _mm512_storeu_epi64,
            _mm512_xor_si512,
        };
        let low_keys = _mm512_set1_epi64(self.low_key);
        let high_keys = _mm512_set1_epi64(self.high_key);
        let mut eights = chunk.chunks_exact(8);
        for eight in &mut eights {
            // SAFETY: `eight` holds eight f64s.
            let values = unsafe { _mm512_loadu_pd(eight.as_ptr()) };
            // `total_order_key` on each lane.
            let bits = _mm512_castpd_si512(values);
            let keys =
                _mm512_xor_si512(bits, _mm512_srli_epi64::<1>(_mm512_srai_epi64::<63>(bits)));
            let is_low = _mm512_cmplt_epi64_mask(keys, low_keys);
            let is_high = _mm512_cmpgt_epi64_mask(keys, high_keys);
            self.low_ties += _mm512_cmpeq_epi64_mask(keys, low_keys).count_ones() as usize;
            self.high_ties += _mm512_cmpeq_epi64_mask(keys, high_keys).count_ones() as usize;
            // SAFETY: each side has room for the chunk past the length it had when the chunk
            // began, and has grown by at most the values before these eight, so the eight
            // lanes stored at its length are inside it.
            unsafe {
                _mm512_storeu_epi64(
                    self.low.as_mut_ptr().add(self.low_len),
                    _mm512_maskz_compress_epi64(is_low, keys),
                );
                _mm512_storeu_epi64(
                    self.high.as_mut_ptr().add(self.high_len),
                    _mm512_maskz_compress_epi64(is_high, keys),
                );
            }
            self.low_len += is_low.count_ones() as usize;
            self.high_len += is_high.count_ones() as usize;
        }
        self.keep_portable(eights.remainder());
    }

    /// [`Self::keep_avx512`] for CPUs with AVX2 only: four values at a time, the kept ones
    /// packed by a permutation looked up from the comparison's four bits.
    ///
    /// # Safety
    /// The CPU must support AVX2, and each side must have room for `chunk.len()` values past
    /// its length.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn keep_avx2(&mut self, chunk: &[f64]) {
        use std::arch::x86_64::{
            __m256i, _mm256_castpd_si256, _mm256_castsi256_pd, _mm256_cmpeq_epi64,
            _mm256_cmpgt_epi64, _mm256_loadu_pd, _mm256_loadu_si256, _mm256_movemask_pd,
            _mm256_permutevar8x32_epi32, _mm256_set1_epi64x, _mm256_setzero_si256,
            _mm256_srli_epi64, _mm256_storeu_si256, _mm256_xor_si256,
        };
        let low_keys = _mm256_set1_epi64x(self.low_key);
        let high_keys = _mm256_set1_epi64x(self.high_key);
        let mut fours = chunk.chunks_exact(4);
        for four in &mut fours {
            // SAFETY: `four` holds four f64s.
            let values = unsafe { _mm256_castpd_si256(_mm256_loadu_pd(four.as_ptr())) };
            // `total_order_key` on each lane; AVX2 has no 64-bit arithmetic shift, so the sign
            // is spread by comparing with zero.
            let sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), values);
            let keys = _mm256_xor_si256(values, _mm256_srli_epi64::<1>(sign));
            let mask = |lanes: __m256i| _mm256_movemask_pd(_mm256_castsi256_pd(lanes));
            let is_low = mask(_mm256_cmpgt_epi64(low_keys, keys));
            let is_high = mask(_mm256_cmpgt_epi64(keys, high_keys));
            self.low_ties += mask(_mm256_cmpeq_epi64(keys, low_keys)).count_ones() as usize;
            self.high_ties += mask(_mm256_cmpeq_epi64(keys, high_keys)).count_ones() as usize;
            let packed = |mask: i32| {
                let order = &COMPRESS_FOUR[mask as usize & 0xF];
                // SAFETY: `order` holds eight i32s, the 32 bytes loaded.
                let order = unsafe { _mm256_loadu_si256(order.as_ptr().cast::<__m256i>()) };
                _mm256_permutevar8x32_epi32(keys, order)
            };
            // SAFETY: as in `keep_avx512`, the four lanes stored at a side's length are inside
            // it.
            unsafe {
                _mm256_storeu_si256(
                    self.low.as_mut_ptr().add(self.low_len).cast::<__m256i>(),
                    packed(is_low),
                );
                _mm256_storeu_si256(
                    self.high.as_mut_ptr().add(self.high_len).cast::<__m256i>(),
                    packed(is_high),
                );
            }
            self.low_len += is_low.count_ones() as usize;
            self.high_len += is_high.count_ones() as usize;
        }
        self.keep_portable(fours.remainder());
    }
}

/// For each set of kept lanes of four 64-bit keys (a 4-bit mask), the 32-bit lanes that pack them to
/// the front, in order (a key is two 32-bit lanes); the rest repeat lane 0.
#[cfg(target_arch = "x86_64")]
const COMPRESS_FOUR: [[i32; 8]; 16] = {
    let mut table = [[0; 8]; 16];
    let mut mask: usize = 0;
    while mask < 16 {
        let (mut lane, mut out): (i32, usize) = (0, 0);
        while lane < 4 {
            if mask & (1 << lane) != 0 {
                table[mask][2 * out] = 2 * lane;
                table[mask][2 * out + 1] = 2 * lane + 1;
                out += 1;
            }
            lane += 1;
        }
        mask += 1;
    }
    table
};

/// `x` as an integer that orders like `f64::total_cmp` (the same mapping it uses).
fn total_order_key(x: f64) -> i64 {
    flip_negatives(x.to_bits() as i64)
}

/// The value whose [`total_order_key`] is `key`.
fn value_of_order_key(key: i64) -> f64 {
    f64::from_bits(flip_negatives(key) as u64)
}

/// The bits of a negative flipped but its sign: `total_cmp`'s mapping, its own inverse (the
/// sign bit it reads is kept).
fn flip_negatives(bits: i64) -> i64 {
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// The keys at the given 1-based order positions, in the order asked, using O(n) selections
/// (each on a shrinking prefix) instead of a full sort; positions outside 1..=n give `None`.
/// `keys` is permuted.
fn selected_statistics(keys: &mut [i64], positions: &[usize]) -> Vec<Option<i64>> {
    let mut wanted: Vec<(usize, usize)> = positions
        .iter()
        .enumerate()
        .filter(|&(_, &p)| p >= 1 && p <= keys.len())
        .map(|(i, &p)| (p - 1, i))
        .collect();
    wanted.sort_unstable_by_key(|w| std::cmp::Reverse(w.0));
    let mut out = vec![None; positions.len()];
    let mut end = keys.len();
    for (index, slot) in wanted {
        let (_, key, _) = keys[..end].select_nth_unstable(index);
        if let Some(out_slot) = out.get_mut(slot) {
            *out_slot = Some(*key);
        }
        // Everything at or after `index` is ≥ the key found, so later (smaller) positions
        // lie in the prefix before it.
        end = index + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::linearity::relative_rank;

    #[test]
    fn fast_exp_f32_matches_std_exp() {
        // Relative error against the double-precision exp, in f32 units (2^-23).
        let mut worst: f64 = 0.0;
        let mut check = |x: f32| {
            let exact = f64::from(x).exp();
            let error = ((f64::from(fast_exp_f32(x)) - exact) / exact).abs();
            worst = worst.max(error / f64::from(f32::EPSILON));
        };
        for i in 0..200_001 {
            check(-87.0 + 174.0 * i as f32 / 200_000.0);
        }
        for i in 0..100_001 {
            check(-3.0 + 6.0 * i as f32 / 100_000.0);
        }
        // The ends of the clamped range.
        for x in [-87.0, -86.99, 86.99, 87.0] {
            check(x);
        }
        assert!(worst < 2.0, "worst relative error {worst} f32 units");
        assert!(fast_exp_f32(f32::NAN).is_nan());
        assert_eq!(fast_exp_f32(-1000.0), fast_exp_f32(-87.0));
        // A draw of −∞ gives a normal logistic (not a subnormal, slow in every later step).
        let logistic = |y: f32| 1.0 / (1.0 + fast_exp_f32(-y));
        assert!(logistic(f32::NEG_INFINITY).is_normal());
        assert!(logistic(-1000.0).is_normal());
    }

    #[test]
    fn round_half_even_like_r() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(2499.9999999999995), 2500.0);
        assert_eq!(round_half_even(2.6), 3.0);
    }

    #[test]
    fn order_positions_match_the_reference_table() {
        let cases = [
            (100_000, 0.95, (2500, 97500)),
            (100_000, 0.998, (100, 99900)),
            (100_000, 0.99, (500, 99500)),
            (100_000, 0.98, (1000, 99000)),
            (10_000, 0.95, (250, 9750)),
        ];
        for (reps, level, expected) in cases {
            let cv = level + (1.0 - level) / 2.0;
            assert_eq!(order_positions(reps, cv), expected, "{reps} at {level}");
        }
    }

    #[test]
    fn tail_order_statistics_agree_with_sorting() {
        let mut rng = area_rng(3, 4);
        let positions = [2500, 97_500, 100, 99_900];
        let normals: Vec<f64> = (0..100_000).map(|_| rng.sample(StandardNormal)).collect();
        // Heavy ties (a few distinct values), a skewed tail, and NaN and infinities at the ends.
        let ties: Vec<f64> = normals.iter().map(|z| (z * 2.0).round()).collect();
        // Three values: a sixth of the slice ties at each bound, more than a side first holds.
        let coarse: Vec<f64> = normals.iter().map(|z| (z * 0.5).round()).collect();
        let skewed: Vec<f64> = normals.iter().map(|z| (z * 3.0).exp()).collect();
        let mut odd = normals.clone();
        odd[10] = f64::NAN;
        odd[20] = f64::INFINITY;
        odd[30] = f64::NEG_INFINITY;
        odd[40] = -0.0;
        // Simulations of sparse areas: many NaNs, of both signs (they sort at both ends).
        let nans: Vec<f64> = normals
            .iter()
            .enumerate()
            .map(|(i, &z)| match i % 7 {
                0 | 3 => f64::NAN,
                5 => -f64::NAN,
                _ => z,
            })
            .collect();
        // Nearly all NaN (the NaN arithmetic gives on x86, negative): both bounds would be NaN.
        let sparse: Vec<f64> = normals
            .iter()
            .enumerate()
            .map(|(i, &z)| if i % 100 == 0 { z } else { -f64::NAN })
            .collect();
        let constant = vec![1.5; 100_000];
        for (name, values) in [
            ("normals", normals),
            ("ties", ties),
            ("coarse", coarse),
            ("skewed", skewed),
            ("odd", odd),
            ("nans", nans),
            ("sparse", sparse),
            ("constant", constant),
        ] {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let expected: Vec<u64> = positions.iter().map(|&p| sorted[p - 1].to_bits()).collect();
            let got: Vec<u64> = order_statistics(&mut values.clone(), &positions)
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert_eq!(got, expected, "{name}");
            // Ties at the bounds are counted, so even a slice of one value is answered from
            // its tails.
            assert!(
                tail_order_statistics(&values, &positions).is_some(),
                "{name}"
            );
        }
        // Positions in the middle are selected over the whole slice, with the same result.
        let values: Vec<f64> = (0..10_000)
            .map(|i| f64::from((i * 7919) % 10_000))
            .collect();
        assert_eq!(tail_order_statistics(&values, &[5000]), None);
        assert_eq!(
            order_statistics(&mut values.clone(), &[5000, 1]),
            [4999.0, 0.0]
        );
    }

    #[test]
    fn tails_kept_by_the_vector_loops_are_those_kept_one_at_a_time() {
        let mut rng = area_rng(3, 4);
        // Normals with NaNs of both signs, infinities, zeros of both signs and ties at the keys.
        // (The sides here hold every value, so no chunk can overflow them.)
        let specials = [
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.5,
            -1.5,
        ];
        let values: Vec<f64> = (0..5_003)
            .map(|i| {
                if i % 13 == 0 {
                    specials[(i / 13) % specials.len()]
                } else {
                    rng.sample(StandardNormal)
                }
            })
            .collect();
        // The keys each side keeps when `values` go through `keep` in chunks of lengths that
        // are and are not multiples of eight.
        let kept = |low_key, high_key, keep: &dyn Fn(&mut Tails<'_>, &[f64])| {
            let (mut low, mut high) = (vec![0; values.len() + 8], vec![0; values.len() + 8]);
            let mut tails = Tails {
                low: &mut low,
                high: &mut high,
                low_len: 0,
                high_len: 0,
                low_ties: 0,
                high_ties: 0,
                low_key,
                high_key,
            };
            for chunk in values.chunks(1_000) {
                keep(&mut tails, chunk);
            }
            let Tails {
                low_len,
                high_len,
                low_ties,
                high_ties,
                ..
            } = tails;
            low.truncate(low_len);
            high.truncate(high_len);
            (low, high, low_ties, high_ties)
        };
        for (low, high) in [(-1.5, 1.5), (-0.0, 0.0), (f64::NEG_INFINITY, f64::NAN)] {
            let (low_key, high_key) = (total_order_key(low), total_order_key(high));
            let dispatched = kept(low_key, high_key, &|tails, chunk| tails.keep(chunk));
            let portable = kept(low_key, high_key, &|tails, chunk| {
                tails.keep_portable(chunk)
            });
            assert_eq!(dispatched, portable, "{low} {high}");
            // Each side holds the keys of its values, in slice order.
            let side = |keep: &dyn Fn(i64) -> bool| -> Vec<i64> {
                values
                    .iter()
                    .map(|&v| total_order_key(v))
                    .filter(|&key| keep(key))
                    .collect()
            };
            let expected = (
                side(&|key| key < low_key),
                side(&|key| key > high_key),
                side(&|key| key == low_key).len(),
                side(&|key| key == high_key).len(),
            );
            assert_eq!(portable, expected, "{low} {high}");
            // Every pair of bounds has values at them (the specials), and values beyond them
            // but for NaN, the largest key.
            assert!(portable.2 > 0 && portable.3 > 0, "{low} {high}");
            assert!(!portable.0.is_empty() && (!portable.1.is_empty() || high.is_nan()));
            // The AVX2 loop too, where the CPU has it (the dispatch above prefers AVX-512).
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, and each side holds every value plus eight.
                let avx2 = kept(low_key, high_key, &|tails, chunk| unsafe {
                    tails.keep_avx2(chunk)
                });
                assert_eq!(avx2, portable, "AVX2 {low} {high}");
            }
        }
    }

    #[test]
    fn order_statistics_agree_with_sorting() {
        let mut rng = area_rng(1, 2);
        let values: Vec<f64> = (0..1000).map(|_| rng.sample(StandardNormal)).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let positions = [25, 975, 1, 1000, 500, 25];
        let mut work = values.clone();
        let got = order_statistics(&mut work, &positions);
        for (p, v) in positions.iter().zip(got) {
            assert_eq!(Some(&v), sorted.get(p - 1), "position {p}");
        }
    }

    #[test]
    fn streams_differ_and_repeat() {
        let draw = |seed, stream| {
            let mut rng = area_rng(seed, stream);
            rng.sample::<f64, _>(StandardNormal)
        };
        assert_eq!(draw(1, 1), draw(1, 1));
        assert_ne!(draw(1, 1), draw(1, 2));
        assert_ne!(draw(1, 1), draw(2, 1));
        assert_ne!(stream_for_key("E38000001"), stream_for_key("E38000002"));
    }

    /// The intercepts and slopes of one block of draws through a kernel variant.
    fn one_block(
        kernel: fn(&Simulation<'_>, &[f32], &mut [f64], &mut [f64]),
        (design, mean, sd): (&Design, &[f64], &[f64]),
        back: BackTransform,
        draws: &[f32],
    ) -> (Vec<f64>, Vec<f64>) {
        let sim = Simulation {
            design,
            mean,
            sd,
            back,
        };
        let (mut b1, mut b2) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
        kernel(&sim, draws, &mut b1, &mut b2);
        (b1, b2)
    }

    #[test]
    fn vector_variants_are_bit_identical() {
        let design = Design::new(&[0.2; 5], &[0.1, 0.3, 0.5, 0.7, 0.9]);
        let mean = [5.0, 5.1, 5.3, 5.2, 5.6];
        let sd = [0.1; 5];
        let mut rng = area_rng(5, 5);
        let draws: Vec<f32> = (0..5 * BLOCK).map(|_| standard_normal(&mut rng)).collect();
        let area = (&design, mean.as_slice(), sd.as_slice());
        type Build = fn(&Simulation<'_>, &[f32], &mut [f64], &mut [f64]);
        let mut builds: Vec<(&str, Build)> = vec![("dispatched", regress_block)];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            builds.push(("avx2", |sim, draws, b1, b2| unsafe {
                regress_block_avx2(sim, draws, b1, b2)
            }));
        }
        for back in [BackTransform::Exp, BackTransform::Logistic] {
            let portable = one_block(regress_block_portable, area, back, &draws);
            for (name, build) in &builds {
                assert_eq!(
                    portable,
                    one_block(*build, area, back, &draws),
                    "{name} {back:?}"
                );
            }
        }
    }

    #[test]
    fn indices_of_draws_are_the_ratios_and_products_in_every_build() {
        let mut rng = area_rng(8, 9);
        // Odd length (a vector loop's remainder), zero and tiny intercepts, infinities, NaNs.
        let mut intercepts: Vec<f64> = (0..1003)
            .map(|_| 2.0 + standard_normal(&mut rng) as f64)
            .collect();
        let slopes: Vec<f64> = (0..1003)
            .map(|_| standard_normal(&mut rng) as f64)
            .collect();
        for (i, special) in [0.0, -0.0, 1e-300, f64::INFINITY, f64::NAN, -f64::NAN]
            .into_iter()
            .enumerate()
        {
            intercepts[7 * i + 1] = special;
        }
        for (multiplier, rii) in [(100.0, true), (-1000.0, true), (-1.0, false), (2.5, false)] {
            let expected_rii: Vec<u64> = intercepts
                .iter()
                .zip(&slopes)
                .map(|(&i, &s)| {
                    let ratio = (i + s) / i;
                    let rii_draw = if !rii {
                        i
                    } else if multiplier < 0.0 {
                        1.0 / ratio
                    } else {
                        ratio
                    };
                    rii_draw.to_bits()
                })
                .collect();
            let expected_sii: Vec<u64> =
                slopes.iter().map(|s| (s * multiplier).to_bits()).collect();
            type Build = fn(&mut [f64], &mut [f64], f64, bool);
            let mut builds: Vec<(&str, Build)> = vec![
                ("portable", indices_of_draws_portable),
                ("dispatched", indices_of_draws),
            ];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                builds.push(("avx2", |i, s, m, r| unsafe {
                    indices_of_draws_avx2(i, s, m, r)
                }));
            }
            for (name, build) in builds {
                let (mut i, mut s) = (intercepts.clone(), slopes.clone());
                build(&mut i, &mut s, multiplier, rii);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&i), expected_rii, "{name} {multiplier} {rii}");
                assert_eq!(bits(&s), expected_sii, "{name} {multiplier} {rii}");
            }
        }
    }

    #[test]
    fn single_precision_kernel_is_double_precision_to_a_ten_thousandth_of_the_spread() {
        // The same draws through the kernel and through a double-precision loop: each
        // repetition's intercept and slope agree to within 1e-4 of their spread over the
        // repetitions (2e-5 at worst here). The Monte Carlo error of a 95% limit from 100,000
        // repetitions is about 0.0085 of that spread.
        let shares = [0.08, 0.09, 0.1, 0.11, 0.12, 0.1, 0.1, 0.1, 0.1, 0.1];
        let design = Design::new(&shares, &relative_rank(&shares));
        let logit = |p: f64| (p / (1.0 - p)).ln();
        let mean: Vec<f64> = (0..10).map(|k| logit(0.2 - 0.01 * f64::from(k))).collect();
        let sd: Vec<f64> = (0..10).map(|k| 0.02 + 0.005 * f64::from(k)).collect();
        let mut rng = area_rng(11, 3);
        let draws: Vec<f32> = (0..10 * BLOCK).map(|_| standard_normal(&mut rng)).collect();
        for back in [BackTransform::Exp, BackTransform::Logistic] {
            let (b1, b2) = one_block(regress_block, (&design, &mean, &sd), back, &draws);
            let (mut e1, mut e2) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
            for (k, row) in draws.chunks_exact(BLOCK).enumerate() {
                for (rep, &z) in row.iter().enumerate() {
                    let y = mean[k] + sd[k] * f64::from(z);
                    let v = match back {
                        BackTransform::Exp => y.exp(),
                        _ => 1.0 / (1.0 + (-y).exp()),
                    };
                    e1[rep] += design.m1[k] * v;
                    e2[rep] += design.m2[k] * v;
                }
            }
            let spread = |v: &[f64]| {
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
            };
            let (s1, s2) = (spread(&e1), spread(&e2));
            for rep in 0..BLOCK {
                assert!(
                    (b1[rep] - e1[rep]).abs() < 1e-4 * s1,
                    "{back:?} intercept {rep}"
                );
                assert!(
                    (b2[rep] - e2[rep]).abs() < 1e-4 * s2,
                    "{back:?} slope {rep}"
                );
            }
        }
    }

    #[test]
    fn linear_and_blocked_kernels_agree_in_distribution() {
        // Same inputs, identity transform: the exact bivariate draw and the Q-draw kernel must
        // give the same slope quantiles to Monte Carlo precision.
        let shares = [0.1, 0.15, 0.2, 0.25, 0.3];
        let design = Design::new(&shares, &relative_rank(&shares));
        let mean = [1.0, 2.0, 2.5, 3.0, 4.0];
        let sd = [0.3, 0.2, 0.25, 0.1, 0.4];
        let reps = 200_000;
        let (mut b1, mut b2) = (vec![0.0; reps], vec![0.0; reps]);
        let sim = Simulation {
            design: &design,
            mean: &mean,
            sd: &sd,
            back: BackTransform::Identity,
        };
        simulate_linear(&sim, &mut area_rng(3, 0), &mut b1, &mut b2);
        let linear = order_statistics(&mut b2, &[5000, 195_000]);
        simulate_blocked(&sim, &mut area_rng(3, 1), &mut b1, &mut b2);
        let blocked = order_statistics(&mut b2, &[5000, 195_000]);
        for (a, b) in linear.iter().zip(&blocked) {
            assert!(
                (a - b).abs() < 0.02 * a.abs().max(1.0),
                "{linear:?} vs {blocked:?}"
            );
        }
    }
}
