//! The gradients that matter most: which indicators to show, their gradient charts (value by IMD
//! decile with the SII line) and funnel plots (the ICB's PCNs, this PCN highlighted).
//!
//! Choice: each indicator's SII at PCN level when the PCN has at least five populated deciles
//! (the pipeline's minimum for an SII), else the ICB's, with a note. Significant gradients (95%
//! limits excluding 0) come first, then the PCN's own before the ICB's, then the steepest
//! relative to the indicator's own value (|SII| ÷ value, so rates and percentages compare); the
//! top [`SHOWN`] are shown.
//!
//! Numbers come from the run: SII, RII and limits from `inequality`; decile values, limits and
//! people from `indicators`. The fitted line is drawn from the published SII: a population-
//! weighted regression passes through the weighted mean of the values at the mean rank, ½, so
//! its ends are that mean ∓ SII/2. The funnel plots are `funnel.rs`.

use super::document::{Block, Cell, Section, Span, Table};
use super::funnel::{funnel_chart, funnel_phrase, significance_words};
use super::manifest::Indicator;
use super::pack::{self, IcbContext, Pcn};
use super::rows::{IndicatorRow, InequalityRow};
use crate::charts::ChartText;
use crate::charts::gradient::{FitCurve, Gradient, GradientPoint, Reference, SiiFit};
use crate::charts::style::{format_count, format_number};
use crate::pipeline::gradient::MIN_QUANTILES;
use crate::pipeline::measure::Polarity;
use crate::pipeline::practice_outcomes::PRACTICE_DECILE;
use crate::schema;

/// How many gradients the pack shows.
pub const SHOWN: usize = 3;

/// A gradient chosen for the pack.
#[derive(Debug, Clone)]
pub struct Pick<'a> {
    /// The indicator.
    pub indicator: &'a Indicator,
    /// The inequality row shown (the PCN's or the ICB's).
    pub row: &'a InequalityRow,
    /// The PCN's own row (for its overall value and funnel significance).
    pub pcn_row: Option<&'a InequalityRow>,
    /// Whether `row` is the PCN's.
    pub at_pcn: bool,
    /// |SII| ÷ value.
    pub steepness: f64,
}

impl Pick<'_> {
    /// Whether the SII's 95% limits exclude 0.
    pub fn significant(&self) -> bool {
        self.row.sii_significant == Some(true)
    }
}

/// The gradients to show for a PCN, most important first.
pub fn choose<'a>(ctx: &'a IcbContext, pcn: &str) -> Vec<Pick<'a>> {
    let find = |id: &str, kind: &str, code: &str| {
        ctx.data
            .inequality
            .iter()
            .find(|r| r.indicator == id && r.footprint_kind == kind && r.footprint_code == code)
    };
    let icb = ctx.icb.as_ref().map(|i| i.code.as_str()).unwrap_or("");
    let mut picks: Vec<Pick<'a>> = ctx
        .indicators
        .iter()
        .filter_map(|indicator| {
            let pcn_row = find(indicator.id(), "pcn", pcn);
            let usable = |r: &&InequalityRow| {
                r.sii.is_some()
                    && r.value.is_some_and(|v| v.abs() > 0.0)
                    && r.populated_quantiles as usize >= MIN_QUANTILES
            };
            let (row, at_pcn) = match pcn_row.filter(usable) {
                Some(row) => (row, true),
                None => (find(indicator.id(), "icb", icb).filter(usable)?, false),
            };
            let steepness = row.sii.unwrap_or(0.0).abs() / row.value.unwrap_or(1.0).abs();
            Some(Pick {
                indicator,
                row,
                pcn_row,
                at_pcn,
                steepness,
            })
        })
        .collect();
    picks.sort_by(|a, b| {
        b.significant()
            .cmp(&a.significant())
            .then(b.at_pcn.cmp(&a.at_pcn))
            .then(b.steepness.total_cmp(&a.steepness))
    });
    picks.truncate(SHOWN);
    picks
}

/// Where the gradient is higher, in words.
fn direction(sii: f64, significant: bool) -> &'static str {
    if !significant {
        "no clear gradient by deprivation"
    } else if sii < 0.0 {
        "higher among people in more deprived areas"
    } else {
        "lower among people in more deprived areas"
    }
}

/// Whether the gradient disadvantages the more deprived, given the polarity.
fn worse_for_deprived(indicator: &Indicator, sii: f64) -> Option<bool> {
    match indicator.spec.polarity {
        Polarity::LowIsGood => Some(sii < 0.0),
        Polarity::HighIsGood => Some(sii > 0.0),
        Polarity::Neutral => None,
    }
}

/// The footprint a pick describes, in words.
fn scope(ctx: &IcbContext, pick: &Pick<'_>, pcn: &str) -> String {
    if pick.at_pcn {
        pcn.to_string()
    } else {
        ctx.icb_name()
    }
}

/// A key-findings line for the top gradient.
pub fn finding(ctx: &IcbContext, pick: &Pick<'_>) -> Vec<Span> {
    let sii = pick.row.sii.unwrap_or(0.0);
    let unit = pick.indicator.unit();
    let fit = fitted_ends(ctx, pick);
    let mut spans = vec![
        Span::Text("Steepest gradient: ".into()),
        Span::Strong(format!(
            "{} \u{2014} {}",
            pick.indicator.measure(),
            direction(sii, pick.significant())
        )),
    ];
    if let Some((most, least)) = fit {
        spans.push(Span::Text(format!(
            " \u{2014} about {} at the most deprived end against {} at the least deprived",
            unit.format(most),
            unit.format(least)
        )));
    }
    spans.push(Span::Text(format!(
        " (SII {}{}{}).",
        pick.indicator.format_difference(sii),
        pick.row
            .sii_limits
            .map(|(lo, hi)| format!(
                ", 95% CI {} to {}",
                unit.format_bare(lo),
                unit.format_bare(hi)
            ))
            .unwrap_or_default(),
        if pick.at_pcn {
            String::new()
        } else {
            format!("; {} level", ctx.icb_name())
        }
    )));
    spans
}

/// The decile breakdown of an indicator: patients' IMD deciles, or the practices' deprivation
/// deciles for indicators from practice-level figures.
fn decile_breakdown(indicator: &Indicator) -> &'static str {
    if indicator.practice_level {
        PRACTICE_DECILE
    } else {
        schema::IMD_DECILE
    }
}

/// The decile points of a pick, from `indicators`: (decile, value, limits, people, suppressed).
fn decile_rows<'a>(ctx: &'a IcbContext, pick: &Pick<'_>) -> Vec<&'a IndicatorRow> {
    let breakdown = decile_breakdown(pick.indicator);
    let mut rows: Vec<_> = ctx
        .data
        .indicators
        .iter()
        .filter(|r| {
            r.indicator == pick.indicator.id()
                && r.footprint_kind == pick.row.footprint_kind
                && r.footprint_code == pick.row.footprint_code
                && r.breakdown == breakdown
        })
        .filter(|r| {
            r.breakdown_value
                .parse::<u8>()
                .is_ok_and(|d| (1..=10).contains(&d))
        })
        .collect();
    rows.sort_by_key(|r| r.breakdown_value.parse::<u8>().unwrap_or(0));
    rows
}

/// The fitted values at the most and least deprived ends: the population-weighted mean of the
/// decile values ∓ SII/2 (the regression passes through the weighted mean at rank ½).
fn fitted_ends(ctx: &IcbContext, pick: &Pick<'_>) -> Option<(f64, f64)> {
    let sii = pick.row.sii?;
    let rows = decile_rows(ctx, pick);
    let (sum, weight) = rows
        .iter()
        .filter_map(|r| Some((r.value?, r.denominator.filter(|d| *d > 0.0)?)))
        .fold((0.0, 0.0), |(s, w), (v, d)| (s + v * d, w + d));
    (weight > 0.0).then(|| {
        let mean = sum / weight;
        (mean - sii / 2.0, mean + sii / 2.0)
    })
}

/// The gradient chart's data for a pick.
pub fn gradient_chart(ctx: &IcbContext, pick: &Pick<'_>) -> Gradient {
    let points = decile_rows(ctx, pick)
        .into_iter()
        .filter_map(|r| {
            Some(GradientPoint {
                quantile: r.breakdown_value.parse().ok()?,
                value: r.value,
                limits: r.limits,
                population: r.denominator,
            })
        })
        .collect();
    let fit = fitted_ends(ctx, pick).map(|(most, least)| SiiFit {
        most_deprived: most,
        least_deprived: least,
        curve: FitCurve::Straight,
        sii: pick.row.sii.unwrap_or(least - most),
        sii_limits: pick.row.sii_limits,
        rii: pick.row.rii,
        rii_limits: pick.row.rii_limits,
        confidence: 95.0,
    });
    Gradient {
        measure: pick.indicator.measure(),
        unit: pick.indicator.unit(),
        quantiles: 10,
        points,
        fit,
        reference: reference(ctx, pick),
    }
}

/// England's value as a reference line, when the run covers England; else the ICB's on a
/// PCN-level chart when the ICB has other PCNs in the run.
fn reference(ctx: &IcbContext, pick: &Pick<'_>) -> Option<Reference> {
    let value = |kind: &str| {
        ctx.data
            .inequality
            .iter()
            .find(|r| r.indicator == pick.indicator.id() && r.footprint_kind == kind)
            .and_then(|r| r.value)
    };
    if !ctx.england_is_partial() || pick.indicator.practice_level {
        value("england").map(|value| Reference {
            label: "England".into(),
            value,
        })
    } else if pick.at_pcn && ctx.icb_pcns.len() > 1 {
        value("icb").map(|value| Reference {
            label: ctx.icb_name(),
            value,
        })
    } else {
        None
    }
}

/// The gradients section.
pub fn section(ctx: &IcbContext, pcn: &Pcn<'_>) -> Section {
    let mut section = Section::new("gradients", "The gradients that matter most");
    section.page_break = true;
    let name = pcn.name();
    if pcn.picks.is_empty() {
        section.paragraph(
            "No indicator has a slope index of inequality for this PCN or its ICB (an SII needs \
             at least five populated deprivation deciles).",
        );
        return section;
    }
    section.paragraph(format!(
        "The {} indicators below have the steepest gradients across deprivation for {name}, \
         significant ones first, measured as the slope index of inequality (SII) relative to the \
         indicator's own value. Each has a gradient chart (the value in each national IMD decile \
         with the fitted SII line) and a funnel plot comparing {name} with other PCNs.",
        pcn.picks.len()
    ));
    for (i, pick) in pcn.picks.iter().enumerate() {
        let indicator = pick.indicator;
        let measure = indicator.measure();
        let sii = pick.row.sii.unwrap_or(0.0);
        let where_ = scope(ctx, pick, &name);
        section.push(Block::Subheading(format!(
            "{}. {}",
            i + 1,
            indicator.spec.name
        )));
        let mut lines = vec![format!(
            "In {where_}, {}: SII {}{}, RII {}.",
            direction(sii, pick.significant()),
            indicator.format_difference(sii),
            pick.row
                .sii_limits
                .map(|(lo, hi)| format!(
                    " (95% CI {} to {})",
                    indicator.unit().format_bare(lo),
                    indicator.unit().format_bare(hi)
                ))
                .unwrap_or_default(),
            pick.row
                .rii
                .map_or("not estimated".into(), |r| format_number(r, 2)),
        )];
        match worse_for_deprived(indicator, sii) {
            Some(true) if pick.significant() => lines.push(
                "The gradient works against people in more deprived areas (this indicator's \
                 better direction is the other way)."
                    .into(),
            ),
            Some(false) if pick.significant() => {
                lines.push("The gradient favours people in more deprived areas.".into())
            }
            None => {
                lines.push("This indicator has no better direction (a measure of need).".into())
            }
            _ => {}
        }
        if let Some(value) = pick.pcn_row.and_then(|r| r.value) {
            lines.push(format!("{name} overall: {}.", indicator.format(value)));
        }
        section.paragraph(lines.join(" "));
        if !pick.at_pcn {
            let populated = pick.pcn_row.map_or(0, |r| r.populated_quantiles);
            section.note(format!(
                "{name} has {populated} populated deprivation decile{} (an SII needs at least \
                 {MIN_QUANTILES}), so the gradient shown is {}'s.",
                if populated == 1 { "" } else { "s" },
                ctx.icb_name()
            ));
        }
        if pick.row.flag_non_linear {
            section.note(
                "The gradient is not a straight line (significant curvature): the SII summarises \
                 it, but look at the deciles.",
            );
        }
        if pick.row.flag_small_numbers {
            section.note("At least one decile has fewer than 10 events: its value is uncertain.");
        }
        let axis = if indicator.practice_level {
            "the deprivation decile of the patients' practice"
        } else {
            "national IMD decile of residence"
        };
        let text = ChartText::new(
            format!("{measure}: {}", direction(sii, pick.significant())),
            ctx.source(),
        )
        .with_subtitle(format!(
            "{}, {where_}, {}, by {axis}",
            indicator.spec.name, ctx.year
        ));
        let chart = gradient_chart(ctx, pick);
        let slug = format!("gradient-{}", pack::file_stem(indicator.id()));
        section.push(Block::Figure(pack::figure(&chart, &text, &slug, None)));
        section.push(Block::Table(decile_table(ctx, pick)));

        let funnel_text = |title: String, subtitle: String| {
            ChartText::new(title, ctx.source()).with_subtitle(subtitle)
        };
        let published = pick
            .pcn_row
            .and_then(|r| r.funnel_significance.as_deref())
            .map_or_else(
                || "not assessed".to_string(),
                |label| significance_words(indicator, label),
            );
        let slug = format!("funnel-{}", pack::file_stem(indicator.id()));
        match funnel_chart(ctx, pick, pcn.code()) {
            Ok((funnel, scope)) => {
                let phrase = funnel_phrase(&funnel, pcn.code());
                let title = match phrase {
                    Some(p) => format!("{measure}: {name} is {p}"),
                    None => format!("{measure}: {name} among other PCNs"),
                };
                let text = funnel_text(
                    title,
                    format!("{}, {scope}, {}", indicator.spec.name, ctx.year),
                );
                let caption = format!(
                    "Published funnel significance of {name} (against the average of all PCNs in \
                     the run): {published}."
                );
                section.push(Block::Figure(pack::figure(
                    &funnel,
                    &text,
                    &slug,
                    Some(caption),
                )));
            }
            Err(reason) => {
                let text = funnel_text(
                    format!("{measure}: {name} among other PCNs"),
                    format!("{}, {}", indicator.spec.name, ctx.year),
                );
                section.push(Block::Figure(pack::notice(
                    &text,
                    &slug,
                    format!("No funnel plot: {reason}."),
                    None,
                )));
            }
        }
    }
    section
}

/// The decile values behind a gradient chart, deciles across (compact enough to sit under
/// the chart).
fn decile_table(ctx: &IcbContext, pick: &Pick<'_>) -> Table {
    let indicator = pick.indicator;
    let rows = decile_rows(ctx, pick);
    let unit = indicator.unit();
    let row_of = |d: u8| {
        rows.iter()
            .find(|r| r.breakdown_value.parse::<u8>().ok() == Some(d))
    };
    let line = |label: &str, f: &dyn Fn(&IndicatorRow) -> Option<String>| {
        std::iter::once(Cell::Text(label.to_string()))
            .chain((1..=10u8).map(|d| match row_of(d) {
                Some(r) => Cell::number_or(f(r), r.suppressed),
                None => Cell::Missing,
            }))
            .collect::<Vec<Cell>>()
    };
    let people = line("Denominator", &|r| r.denominator.map(format_count));
    let values = line("Value", &|r| r.value.map(|v| unit.format_bare(v)));
    let lower = line("Lower 95% limit", &|r| {
        r.limits.map(|(lo, _)| unit.format_bare(lo))
    });
    let upper = line("Upper 95% limit", &|r| {
        r.limits.map(|(_, hi)| unit.format_bare(hi))
    });
    Table {
        caption: Some(format!(
            "{} ({}) by decile, {} level; decile 1 = most deprived",
            indicator.measure(),
            unit.axis_suffix(),
            if pick.at_pcn { "PCN" } else { "ICB" }
        )),
        columns: std::iter::once("Decile".to_string())
            .chain((1..=10).map(|d: u8| d.to_string()))
            .collect(),
        rows: vec![people, values, lower, upper],
        highlight_first: false,
    }
}
