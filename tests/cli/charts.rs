//! The chart gallery: every chart kind drawn from realistic, fabricated indicator numbers on real
//! geography (an ICB's boundary, its LSOA centroids and their IMD 2019 deciles from `data/`), fed
//! through the real statistics (Wilson limits, the SII, funnel limits), as the report will feed
//! them. Written to `reports/gallery/` for people to look at:
//!
//!     cargo test --test cli -- --ignored chart_gallery --nocapture
//!
//! It also prints how long drawing one PCN's charts takes. The per-chart checks (well-formed SVG,
//! PNG size, degenerate data, determinism) are unit tests in `src/charts/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use healthgap::charts::check::{check_svg, png_size};
use healthgap::charts::funnel::{Funnel, FunnelPoint};
use healthgap::charts::gradient::{Gradient, GradientPoint, Reference, SiiFit};
use healthgap::charts::map::{LsoaPoint, Map, MapZoom};
use healthgap::charts::segments::{SegmentPanel, SegmentRow, Segments};
use healthgap::charts::style::{PNG_SCALE, Unit};
use healthgap::charts::trend::{Trend, TrendPoint};
use healthgap::charts::{Chart, ChartText};
use healthgap::geometry::{FootprintIndex, KM_PER_DEGREE};
use healthgap::ingest::{Footprint, InputKind, ReadOptions, read_footprints, read_table};
use healthgap::stats::Confidence;
use healthgap::stats::funnel::{
    FunnelInput, FunnelOptions, FunnelStatistic, assign_significance, funnel_limits,
};
use healthgap::stats::proportion::wilson_limits;
use healthgap::stats::rate::crude_rate;
use healthgap::stats::sii::{SiiArea, SiiOptions, SiiSpread, SiiValues, ValueType, sii};
use polars::prelude::*;

use crate::harness::{data_dir, repo};

/// NHS Nottingham and Nottinghamshire ICB: a city, its suburbs and rural districts, so every
/// decile is present.
const ICB: &str = "E54000060";
/// The fictional PCN: the LSOAs within this distance of a point east of Nottingham city centre.
const PCN: &str = "Riverside PCN";
const PCN_CENTRE: (f64, f64) = (-1.125, 52.962);
const PCN_RADIUS_KM: f64 = 2.4;
/// The PCN's registered patients aged 15+ per LSOA (an LSOA has about 1,500 residents; the
/// PCN's practices hold about half of those near them).
const ADULTS_PER_LSOA: f64 = 650.0;

const SOURCE: &str = "Source: healthgap chart gallery. Illustrative: indicator values are \
    fabricated; geography and deprivation are real (IMD 2019, MHCLG; ONS ICB boundaries July 2022 \
    and LSOA 2011 centroids; contains OS data \u{a9} Crown copyright and database right).";

/// The ICB's geography: its polygons and LSOAs with deciles.
struct Geography {
    areas: Vec<Footprint>,
    icb_name: String,
    /// Every LSOA within the ICB's bounding box (neighbours' LSOAs give the map context).
    lsoas: Vec<LsoaPoint>,
}

fn column_f64(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name)
        .expect("column")
        .cast(&DataType::Float64)
        .expect("cast")
        .f64()
        .expect("f64")
        .iter()
        .collect()
}

fn column_str(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .expect("column")
        .str()
        .expect("str")
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn distance_km((lon0, lat0): (f64, f64), (lon1, lat1): (f64, f64)) -> f64 {
    let dx = (lon1 - lon0) * lat0.to_radians().cos();
    let dy = lat1 - lat0;
    (dx * dx + dy * dy).sqrt() * KM_PER_DEGREE
}

fn read_geography() -> Geography {
    let data = data_dir();
    let footprints = read_footprints(&data.join("icb22_boundaries.geojson"), None, None)
        .expect("ICB boundaries");
    let index = FootprintIndex::new(&footprints);
    let icb = footprints
        .features
        .iter()
        .find(|f| f.code == ICB)
        .expect("the ICB is in the boundaries");
    let icb_name = icb.name.clone().unwrap_or_else(|| ICB.into());
    let bbox = geo::BoundingRect::bounding_rect(&icb.geometry).expect("ICB box");

    let options = ReadOptions::default();
    let centroids = read_table(
        InputKind::LsoaCentroids,
        &data.join("lsoa11_centroids.parquet"),
        &options,
    )
    .expect("centroids")
    .frame
    .collect()
    .expect("collect centroids");
    let iod = read_table(
        InputKind::Iod2019,
        &data.join("iod2019_lsoa11.parquet"),
        &options,
    )
    .expect("IoD 2019")
    .frame
    .collect()
    .expect("collect IoD");
    let deciles: HashMap<String, u8> = column_str(&iod, "lsoa_code")
        .into_iter()
        .zip(column_f64(&iod, "imd_decile"))
        .filter_map(|(c, d)| Some((c?, d? as u8)))
        .collect();

    let codes = column_str(&centroids, "lsoa_code");
    let lons = column_f64(&centroids, "longitude");
    let lats = column_f64(&centroids, "latitude");
    let mut lsoas = Vec::new();
    for ((code, lon), lat) in codes.into_iter().zip(lons).zip(lats) {
        let (Some(code), Some(lon), Some(lat)) = (code, lon, lat) else {
            continue;
        };
        if !(bbox.min().x..=bbox.max().x).contains(&lon)
            || !(bbox.min().y..=bbox.max().y).contains(&lat)
        {
            continue;
        }
        let Some(&decile) = deciles.get(&code) else {
            continue; // Welsh LSOAs have no IMD 2019 decile.
        };
        let in_icb = index
            .locate(lon, lat)
            .footprint()
            .and_then(|i| index.code(i))
            == Some(ICB);
        lsoas.push(LsoaPoint {
            code,
            longitude: lon,
            latitude: lat,
            decile: Some(decile),
            core20: decile <= 2,
            registered: in_icb && distance_km(PCN_CENTRE, (lon, lat)) <= PCN_RADIUS_KM,
        });
    }
    Geography {
        areas: footprints.features,
        icb_name,
        lsoas,
    }
}

/// The PCN's adults by decile (index 0 = decile 1).
fn decile_adults(geo: &Geography) -> [f64; 10] {
    let mut adults = [0.0; 10];
    for p in geo.lsoas.iter().filter(|p| p.registered) {
        if let Some(slot) = p.decile.and_then(|d| adults.get_mut(usize::from(d) - 1)) {
            *slot += ADULTS_PER_LSOA;
        }
    }
    adults
}

/// Smoking: a steep fabricated gradient, 29% in decile 1 to 8% in decile 10, through Wilson
/// limits and the SII as the pipeline computes them.
fn smoking_gradient(adults: &[f64; 10]) -> (Gradient, SiiFit) {
    let level = Confidence::new(0.95).expect("95%");
    let mut points = Vec::new();
    let (mut quantile, mut population, mut value, mut lower, mut upper) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, &n) in adults.iter().enumerate() {
        let decile = i as u8 + 1;
        if n <= 0.0 {
            continue;
        }
        let p = 0.29 - 0.0235 * i as f64 + 0.006 * ((i as f64) * 2.1).sin();
        let x = (p * n).round();
        let limits = wilson_limits(x, n, level).expect("Wilson limits");
        points.push(GradientPoint {
            quantile: decile,
            value: Some(x / n * 100.0),
            limits: Some((limits.lower * 100.0, limits.upper * 100.0)),
            population: Some(n),
        });
        quantile.push(f64::from(decile));
        population.push(n);
        value.push(x / n);
        lower.push(limits.lower);
        upper.push(limits.upper);
    }
    let area = SiiArea {
        quantile: &quantile,
        population: &population,
        values: SiiValues::Value(&value),
        spread: SiiSpread::Limits {
            lower: &lower,
            upper: &upper,
        },
    };
    let mut options = SiiOptions::new(ValueType::Proportion);
    options.multiplier = 100.0;
    options.rii = true;
    options.repetitions = 10_000;
    let result = sii(&area, &options, 2024, 0).expect("SII");
    let fit = SiiFit::from_result(&result, &options);
    let gradient = Gradient {
        measure: "Smoking prevalence".into(),
        unit: Unit::Percent,
        quantiles: 10,
        points,
        fit: Some(fit.clone()),
        reference: Some(Reference {
            label: "England".into(),
            value: 14.7,
        }),
    };
    (gradient, fit)
}

/// Emergency admissions by quintile: a rate per 100,000 with Byar's limits and the SII on the
/// log scale.
fn admissions_gradient(adults: &[f64; 10]) -> Gradient {
    let level = Confidence::new(0.95).expect("95%");
    let mut points = Vec::new();
    let (mut quantile, mut population, mut value, mut lower, mut upper) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for q in 1..=5u8 {
        let i = usize::from(q - 1) * 2;
        let n = adults[i] + adults[i + 1];
        if n <= 0.0 {
            continue;
        }
        let rate = 15_500.0 * 0.86f64.powi(i32::from(q) - 1);
        let events = (rate / 100_000.0 * n).round();
        let estimate = crude_rate(events, n, &[level], 100_000.0)
            .expect("rate")
            .estimate
            .expect("estimate");
        let limits = estimate.limits.first().expect("95% limits");
        points.push(GradientPoint {
            quantile: q,
            value: Some(estimate.value),
            limits: Some((limits.lower, limits.upper)),
            population: Some(n),
        });
        quantile.push(f64::from(q));
        population.push(n);
        value.push(estimate.value);
        lower.push(limits.lower);
        upper.push(limits.upper);
    }
    let area = SiiArea {
        quantile: &quantile,
        population: &population,
        values: SiiValues::Value(&value),
        spread: SiiSpread::Limits {
            lower: &lower,
            upper: &upper,
        },
    };
    let mut options = SiiOptions::new(ValueType::Rate);
    options.transform = true;
    options.rii = true;
    options.repetitions = 10_000;
    let result = sii(&area, &options, 2024, 1).expect("SII");
    Gradient {
        measure: "Emergency admissions".into(),
        unit: Unit::Rate { per: 100_000.0 },
        quantiles: 5,
        points,
        fit: Some(SiiFit::from_result(&result, &options)),
        reference: Some(Reference {
            label: "England".into(),
            value: 11_200.0,
        }),
    }
}

/// 40 PCNs of the ICB: adults 6,000–45,000, smoking around 15% with the spread real PCNs show,
/// Riverside among them with the prevalence of its decile mix.
fn smoking_funnel(adults: &[f64; 10], gradient: &Gradient) -> Funnel {
    let riverside_n: f64 = adults.iter().sum();
    let riverside_x: f64 = gradient
        .points
        .iter()
        .filter_map(|p| Some(p.value? / 100.0 * p.population?))
        .sum::<f64>()
        .round();
    let mut names = vec![PCN.to_string()];
    let mut numerators = vec![riverside_x];
    let mut denominators = vec![riverside_n];
    for i in 1..40 {
        let f = f64::from(i);
        let n = (6_000.0 + (f * 0.618).fract() * 39_000.0).round();
        // Deprivation varies between PCNs: prevalence about 14–17%, plus a little noise.
        let p = 0.155 + 0.016 * ((f * 1.37).sin()) * ((f * 0.29).cos()) + 0.002 * (f * 5.1).sin();
        names.push(format!("Neighbour PCN {i:02}"));
        numerators.push((p * n).round());
        denominators.push(n);
    }
    let input = FunnelInput {
        numerator: &numerators,
        denominator: Some(&denominators),
        rate: None,
    };
    let options = FunnelOptions {
        statistic: FunnelStatistic::Proportion,
        multiplier: 100.0,
        years_of_data: 1.0,
    };
    let limits = funnel_limits(&input, &options).expect("funnel limits");
    let significance = assign_significance(&input, &options).expect("significance");
    let points = names
        .into_iter()
        .zip(&numerators)
        .zip(&denominators)
        .zip(significance)
        .enumerate()
        .map(|(i, (((name, x), n), s))| FunnelPoint {
            code: format!("U{:05}", 10_000 + i),
            name,
            denominator: *n,
            value: x / n * 100.0,
            significance: Some(s),
        })
        .collect();
    Funnel {
        measure: "Smoking prevalence".into(),
        unit: Unit::Percent,
        denominator_label: "Registered patients aged 15+".into(),
        points,
        limits,
        baseline: None,
        baseline_label: "ICB average".into(),
        highlight: Some("U10000".into()),
    }
}

/// Bridges to Health segments and risk tiers, split by the PCN's own quintile mix, tilted towards
/// deprivation for the sicker segments as in published segmentations.
fn segments(adults: &[f64; 10]) -> Segments {
    let registered = adults.iter().sum::<f64>() * 1.22; // all ages
    let quintiles: [f64; 5] = std::array::from_fn(|q| adults[2 * q] + adults[2 * q + 1]);
    let total: f64 = quintiles.iter().sum();
    let row = |label: &str, share: f64, tilt: f64| {
        // tilt > 0 moves people towards quintile 1.
        let weights: [f64; 5] =
            std::array::from_fn(|q| quintiles[q] / total * (1.0 + tilt * (2.0 - q as f64)));
        let sum: f64 = weights.iter().sum();
        let people = registered * share;
        SegmentRow {
            label: label.into(),
            counts: weights.map(|w| (w / sum * people * 0.99).round()),
            unknown: (people * 0.01).round(),
        }
    };
    Segments {
        population: "registered patients".into(),
        panels: vec![
            SegmentPanel {
                title: "Bridges to Health segment".into(),
                rows: vec![
                    row("Healthy", 0.62, -0.12),
                    row("Maternal and infant health", 0.035, 0.05),
                    row("Acutely ill, curable", 0.03, 0.0),
                    row("Chronic conditions, normal function", 0.22, 0.1),
                    row("Stable but serious disability", 0.04, 0.25),
                    row("Short period of decline before dying", 0.004, 0.1),
                    row("Limited reserve, serious exacerbations", 0.03, 0.3),
                    row("Frailty, dementia", 0.021, 0.15),
                ],
            },
            SegmentPanel {
                title: "Risk tier (Cambridge Multimorbidity Score, within the PCN)".into(),
                rows: vec![
                    row("Top 0.5%", 0.005, 0.35),
                    row("Next 4.5%", 0.045, 0.25),
                    row("Next 15%", 0.15, 0.12),
                    row("Rest", 0.80, -0.05),
                ],
            },
        ],
    }
}

fn trend(latest: &SiiFit, runs: usize) -> Trend {
    let years = ["2021-22", "2022-23", "2023-24", "2024-25"];
    let start = years.len() - runs.min(years.len());
    let points = years
        .iter()
        .enumerate()
        .skip(start)
        .map(|(i, label)| {
            // Earlier runs were steeper; the latest is this gallery's SII.
            let back = (years.len() - 1 - i) as f64;
            let shift = 1.6 * back + 0.4 * (back * 2.0).sin();
            let (lo, hi) = latest.sii_limits.unwrap_or((latest.sii, latest.sii));
            TrendPoint {
                label: (*label).to_string(),
                sii: latest.sii - shift,
                limits: Some((lo - shift - 0.3 * back, hi - shift + 0.2 * back)),
            }
        })
        .collect();
    Trend {
        measure: "Smoking prevalence".into(),
        unit: Unit::Percent,
        points,
    }
}

/// Render the SVG, the PNG at the default scale (`NAME@2x.png`, not committed: the picture a
/// report gets) and at 1× (`NAME.png`, committed: small), check them, and return the time the
/// SVG and the default PNG took.
fn render(chart: &impl Chart, text: &ChartText, dir: &Path, name: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let svg = chart.render_svg(text).expect("SVG");
    let svg_took = started.elapsed();
    let png = dir.join(format!("{name}@2x.png"));
    let started = Instant::now();
    chart.render_png(text, &png).expect("PNG");
    let png_took = started.elapsed();
    let thumbnail = dir.join(format!("{name}.png"));
    chart
        .render_png_scaled(text, &thumbnail, 1.0)
        .expect("1x PNG");

    let summary = check_svg(&svg).unwrap_or_else(|e| panic!("{name}.svg is not well-formed: {e}"));
    // A long title wraps into several text lines.
    assert!(
        summary.texts.join(" ").contains(&text.title),
        "{name}: title"
    );
    let scale = |v: u32, by: f64| (f64::from(v) * by).round() as u32;
    for (path, by) in [(&png, PNG_SCALE), (&thumbnail, 1.0)] {
        let bytes = std::fs::read(path).expect("read PNG");
        let size = png_size(&bytes).expect("a PNG");
        let expected = (scale(summary.size.0, by), scale(summary.size.1, by));
        assert_eq!(size, expected, "{}: PNG size", path.display());
    }
    std::fs::write(dir.join(format!("{name}.svg")), svg).expect("write SVG");
    (svg_took, png_took)
}

fn gallery_dir() -> PathBuf {
    let dir = repo().join("reports").join("gallery");
    std::fs::create_dir_all(&dir).expect("create reports/gallery");
    dir
}

#[test]
#[ignore = "writes reports/gallery/; run with --ignored chart_gallery"]
fn chart_gallery() {
    let geo = read_geography();
    let adults = decile_adults(&geo);
    assert!(
        adults.iter().filter(|n| **n > 0.0).count() >= 8,
        "the PCN spans most deciles: {adults:?}"
    );
    let (smoking, fit) = smoking_gradient(&adults);
    let admissions = admissions_gradient(&adults);
    let funnel = smoking_funnel(&adults, &smoking);
    let segments = segments(&adults);
    let map = Map {
        areas: &geo.areas,
        focus: Some(ICB.into()),
        lsoas: &geo.lsoas,
        registered_label: PCN.into(),
        index_label: "IMD 2019".into(),
        zoom: MapZoom::Focus,
    };
    let trend4 = trend(&fit, 4);
    let trend1 = trend(&fit, 1);
    let short_icb = geo.icb_name.replace(" Integrated Care Board", " ICB");

    let dir = gallery_dir();
    let text =
        |title: &str, subtitle: String| ChartText::new(title, SOURCE).with_subtitle(subtitle);
    let mut timings = Vec::new();
    timings.push((
        "gradient (deciles)",
        render(
            &smoking,
            &text(
                "Smoking is three times as common in the most deprived areas",
                format!("Smoking prevalence, registered patients aged 15+, {PCN}, 2024-25, by IMD 2019 decile of residence"),
            ),
            &dir,
            "gradient-deciles",
        ),
    ));
    timings.push((
        "gradient (quintiles, rate)",
        render(
            &admissions,
            &text(
                "Emergency admissions are highest in the most deprived areas",
                format!("Emergency admissions per 100,000 registered patients aged 15+, {PCN}, 2024-25, by IMD 2019 quintile"),
            ),
            &dir,
            "gradient-quintiles",
        ),
    ));
    timings.push((
        "funnel",
        render(
            &funnel,
            &text(
                &format!("{PCN} has one of the highest smoking rates in the ICB"),
                format!("Smoking prevalence, registered patients aged 15+, the 40 PCNs of {short_icb}, 2024-25"),
            ),
            &dir,
            "funnel",
        ),
    ));
    timings.push((
        "segments",
        render(
            &segments,
            &text(
                "People with serious illness are more often from deprived areas",
                format!("Registered patients of {PCN} by Bridges to Health segment and risk tier, split by IMD 2019 quintile, 2024-25"),
            ),
            &dir,
            "segments",
        ),
    ));
    timings.push((
        "map (ICB)",
        render(
            &map,
            &text(
                &format!("{PCN} serves some of the most deprived neighbourhoods in the ICB"),
                format!("LSOAs of {short_icb} by IMD 2019 decile"),
            ),
            &dir,
            "map-icb",
        ),
    ));
    let close_up = Map {
        zoom: MapZoom::Registered,
        ..map.clone()
    };
    let registered: Vec<&LsoaPoint> = geo.lsoas.iter().filter(|p| p.registered).collect();
    let core20 = registered.iter().filter(|p| p.core20).count();
    render(
        &close_up,
        &text(
            &format!(
                "{core20} of the {} neighbourhoods where {PCN}'s patients live are in England's most deprived 20%",
                registered.len()
            ),
            format!(
                "LSOAs around {PCN} by IMD 2019 decile; the squares mark where its registered patients live"
            ),
        ),
        &dir,
        "map-pcn",
    );
    timings.push((
        "trend",
        render(
            &trend4,
            &text(
                "The smoking gap has narrowed over four years",
                format!("Slope index of inequality in smoking prevalence, {PCN}, by run"),
            ),
            &dir,
            "trend",
        ),
    ));
    render(
        &trend1,
        &text(
            "The smoking gap: first measurement",
            format!("Slope index of inequality in smoking prevalence, {PCN}, by run"),
        ),
        &dir,
        "trend-one-run",
    );

    let svg: Duration = timings.iter().map(|(_, (t, _))| *t).sum();
    let png: Duration = timings.iter().map(|(_, (_, t))| *t).sum();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!("chart gallery written to {}", dir.display());
    println!("  {:<28} {:>8} {:>8}", "chart", "SVG ms", "PNG 2x ms");
    for (name, (s, p)) in &timings {
        println!("  {name:<28} {:>8.0} {:>8.0}", ms(s), ms(p));
    }
    println!(
        "  {:<28} {:>8.0} {:>8.0}   one PCN's six charts",
        "total",
        ms(&svg),
        ms(&png)
    );
}
