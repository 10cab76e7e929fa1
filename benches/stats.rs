//! Benchmarks of the SII simulation, the hot spot of a national run (issue 3).
//!
//! - `sii/rate_deciles_100k`: one 10-quantile rate SII (value type 1, no transform: every draw
//!   is back-transformed), 100,000 repetitions, one thread. Target ≤ 5 ms.
//! - `sii/rate_deciles_100k_transform`: the same with `transform = TRUE` (the linear kernel).
//! - `sii/national_batch`: 1,250 PCNs × 20 indicators × 10 deciles = 25,000 SIIs through
//!   `sii_batch` on all cores. Target ≤ 30 s on 2 cores. Criterion needs at least 10 samples
//!   (minutes), so set `HEALTHGAP_BENCH_BATCH_ONCE=1` to time one batch instead.
//!
//! Run: `cargo bench --bench stats` (see benches/README.md).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use healthgap::stats::sii::{SiiArea, SiiOptions, SiiSpread, SiiValues, ValueType, sii, sii_batch};

const DECILES: usize = 10;
const PCNS: usize = 1250;
const INDICATORS: usize = 20;

/// One area's columns: quantile, population, value, lower and upper 95% limits.
type AreaColumns = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// A rate gradient across deciles with 95% limits, varied by `area` so areas differ.
fn rate_area(area: usize) -> AreaColumns {
    let quantile: Vec<f64> = (1..=DECILES).map(|q| q as f64).collect();
    let population: Vec<f64> = (0..DECILES)
        .map(|q| 4000.0 + 300.0 * ((q + area) % 7) as f64)
        .collect();
    let value: Vec<f64> = (0..DECILES)
        .map(|q| 900.0 - 45.0 * q as f64 + (area % 13) as f64)
        .collect();
    let lower = value.iter().map(|v| v * 0.9).collect();
    let upper = value.iter().map(|v| v * 1.1).collect();
    (quantile, population, value, lower, upper)
}

/// The same shape for proportions (values between 0 and 1).
fn proportion_area(area: usize) -> AreaColumns {
    let (quantile, population, value, _, _) = rate_area(area);
    let value: Vec<f64> = value.iter().map(|v| v / 2000.0).collect();
    let lower = value.iter().map(|v| v * 0.9).collect();
    let upper = value.iter().map(|v| v * 1.1).collect();
    (quantile, population, value, lower, upper)
}

fn options(value_type: ValueType, transform: bool) -> SiiOptions {
    let mut options = SiiOptions::new(value_type);
    options.transform = transform;
    options.rii = true;
    options
}

fn bench_single(c: &mut Criterion) {
    let (q, p, v, lo, hi) = rate_area(0);
    let area = SiiArea {
        quantile: &q,
        population: &p,
        values: SiiValues::Value(&v),
        spread: SiiSpread::Limits {
            lower: &lo,
            upper: &hi,
        },
    };
    let mut group = c.benchmark_group("sii");
    group.sample_size(30);
    for (name, transform) in [
        ("rate_deciles_100k", false),
        ("rate_deciles_100k_transform", true),
    ] {
        let opts = options(ValueType::Rate, transform);
        group.bench_function(name, |b| b.iter(|| sii(black_box(&area), &opts, 1, 0)));
    }
    group.finish();
}

/// The national batch: per indicator, one `sii_batch` over the 1,250 PCNs. The indicator mix
/// follows the reference's defaults: 8 rates and 6 proportions without transform (every draw
/// back-transformed), 6 on their own scale or transformed (the linear kernel).
fn national_batch() -> usize {
    let rates: Vec<_> = (0..PCNS).map(rate_area).collect();
    let proportions: Vec<_> = (0..PCNS).map(proportion_area).collect();
    let mut done = 0;
    for indicator in 0..INDICATORS {
        let (data, opts) = match indicator {
            0..=7 => (&rates, options(ValueType::Rate, false)),
            8..=13 => (&proportions, options(ValueType::Proportion, false)),
            14..=16 => (&rates, options(ValueType::Rate, true)),
            _ => (&rates, options(ValueType::Other, false)),
        };
        let areas: Vec<SiiArea<'_>> = data
            .iter()
            .map(|(q, p, v, lo, hi)| SiiArea {
                quantile: q,
                population: p,
                values: SiiValues::Value(v),
                spread: SiiSpread::Limits {
                    lower: lo,
                    upper: hi,
                },
            })
            .collect();
        done += sii_batch(&areas, &opts, indicator as u64)
            .iter()
            .filter(|r| r.is_ok())
            .count();
    }
    done
}

fn bench_batch(c: &mut Criterion) {
    if std::env::var_os("HEALTHGAP_BENCH_BATCH_ONCE").is_some() {
        let start = Instant::now();
        let done = national_batch();
        println!(
            "sii/national_batch once: {done} SIIs in {:.2?} on {} threads",
            start.elapsed(),
            rayon::current_num_threads()
        );
        return;
    }
    let mut group = c.benchmark_group("sii");
    group.sample_size(10);
    group.bench_function("national_batch", |b| b.iter(national_batch));
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: they need a system font the build machines do not have.
    config = Criterion::default().without_plots();
    targets = bench_single, bench_batch
}
criterion_main!(benches);
