//! The funnel plot of a chosen gradient's indicator: every PCN of the ICB (or of the run, when
//! the ICB has fewer than three with a value) against its denominator, with the 95% and 99.8%
//! control limits from `crate::stats::funnel` and each PCN's place on the plot; and the
//! published funnel significance (the `inequality` table's, against every PCN of the run) in
//! words. The gradient chart beside it is `gradients.rs`; drawing is `crate::charts::funnel`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::gradients::Pick;
use super::manifest::Indicator;
use super::pack::IcbContext;
use super::rows::InequalityRow;
use crate::charts::funnel::{Funnel, FunnelPoint};
use crate::charts::style::format_count;
use crate::pipeline::measure::{IndicatorType, Polarity};
use crate::stats::funnel::{
    FunnelInput, FunnelOptions, FunnelStatistic, RateType, Significance, assign_significance,
    funnel_limits, funnel_points,
};

/// Fewest PCNs for a funnel plot of an ICB; with fewer, England's PCNs are plotted.
const MIN_FUNNEL_AREAS: usize = 3;

/// Funnel plots by indicator id, computed once per ICB and shared by its PCNs' packs (only the
/// highlighted point differs).
pub type FunnelCache = Mutex<BTreeMap<String, Result<(Funnel, String), String>>>;

/// A funnel plot of a pick: the ICB's PCNs (or every PCN of the run when the ICB has fewer than
/// three with a value), the PCN highlighted, and the scope in words; `Err` says why there is
/// none.
pub fn funnel_chart(
    ctx: &IcbContext,
    pick: &Pick<'_>,
    pcn: &str,
) -> Result<(Funnel, String), String> {
    let id = pick.indicator.id();
    let cached = ctx.funnels.lock().ok().and_then(|m| m.get(id).cloned());
    let base = match cached {
        Some(base) => base,
        None => {
            let base = compute(ctx, pick.indicator);
            if let Ok(mut cache) = ctx.funnels.lock() {
                cache.insert(id.to_string(), base.clone());
            }
            base
        }
    };
    let (mut funnel, scope) = base?;
    funnel.highlight = funnel
        .points
        .iter()
        .any(|p| p.code == pcn)
        .then(|| pcn.to_string());
    Ok((funnel, scope))
}

/// The funnel of an indicator over the ICB's PCNs, nothing highlighted.
fn compute(ctx: &IcbContext, indicator: &Indicator) -> Result<(Funnel, String), String> {
    let usable = |r: &&InequalityRow| {
        r.indicator == indicator.id()
            && r.footprint_kind == "pcn"
            && r.numerator.is_some()
            && r.denominator.is_some_and(|d| d > 0.0)
            && r.value.is_some()
    };
    let icb_rows: Vec<&InequalityRow> = ctx
        .data
        .inequality
        .iter()
        .filter(usable)
        .filter(|r| ctx.icb_pcns.contains(&r.footprint_code))
        .collect();
    let (rows, scope, baseline_label) = if icb_rows.len() >= MIN_FUNNEL_AREAS {
        let n = icb_rows.len();
        (
            icb_rows,
            format!("the {n} PCNs of {}", ctx.icb_name()),
            "ICB average",
        )
    } else {
        let all: Vec<&InequalityRow> = ctx.data.inequality.iter().filter(usable).collect();
        if all.len() < MIN_FUNNEL_AREAS {
            return Err(format!(
                "a funnel plot compares PCNs, and this run has a value of this indicator for \
                 {} PCN{} only",
                all.len(),
                if all.len() == 1 { "" } else { "s" }
            ));
        }
        let n = all.len();
        (
            all,
            format!(
                "all {} PCNs in the run ({} has fewer than {MIN_FUNNEL_AREAS} in it)",
                format_count(n as f64),
                ctx.icb_name()
            ),
            "average of the PCNs shown",
        )
    };
    let numerator: Vec<f64> = rows
        .iter()
        .map(|r| r.numerator.unwrap_or(f64::NAN))
        .collect();
    let denominator: Vec<f64> = rows
        .iter()
        .map(|r| r.denominator.unwrap_or(f64::NAN))
        .collect();
    let rate: Vec<f64> = rows.iter().map(|r| r.value.unwrap_or(f64::NAN)).collect();
    let statistic = match indicator.spec.kind {
        IndicatorType::Proportion => FunnelStatistic::Proportion,
        IndicatorType::Rate => FunnelStatistic::Rate(RateType::Crude),
        IndicatorType::Dsr => FunnelStatistic::Rate(RateType::Dsr),
    };
    let input = FunnelInput {
        numerator: &numerator,
        denominator: Some(&denominator),
        rate: matches!(statistic, FunnelStatistic::Rate(_)).then_some(rate.as_slice()),
    };
    let options = FunnelOptions {
        statistic,
        multiplier: indicator.spec.multiplier(),
        years_of_data: 1.0,
    };
    let limits = funnel_limits(&input, &options).map_err(|e| format!("no funnel limits: {e}"))?;
    let significance =
        assign_significance(&input, &options).map_err(|e| format!("no funnel limits: {e}"))?;
    // Rates sit at their (derived) population; DSRs from under 10 events are not plotted.
    let positions: Vec<(f64, f64)> = match statistic {
        FunnelStatistic::Rate(_) => funnel_points(&input, &options)
            .map_err(|e| format!("no funnel points: {e}"))?
            .iter()
            .zip(&rate)
            .map(|(p, r)| {
                (
                    p.denominator_derived.unwrap_or(f64::NAN),
                    p.rate_chart.map_or(f64::NAN, |_| *r),
                )
            })
            .collect(),
        _ => denominator
            .iter()
            .copied()
            .zip(rate.iter().copied())
            .collect(),
    };
    let points: Vec<FunnelPoint> = rows
        .iter()
        .zip(positions)
        .zip(significance)
        .filter(|((_, (x, _)), _)| x.is_finite() && *x > 0.0)
        .map(|((r, (x, value)), s)| FunnelPoint {
            code: r.footprint_code.clone(),
            name: ctx.pcn_name(&r.footprint_code),
            denominator: x,
            value,
            significance: Some(s),
        })
        .collect();
    let denominator_label = match indicator.spec.kind {
        IndicatorType::Proportion => "People eligible (denominator)",
        IndicatorType::Rate => "Registered people (denominator)",
        IndicatorType::Dsr => "Population (derived from events and rate)",
    };
    Ok((
        Funnel {
            measure: indicator.measure(),
            unit: indicator.unit(),
            denominator_label: denominator_label.into(),
            points,
            limits,
            baseline: None,
            baseline_label: baseline_label.into(),
            highlight: None,
        },
        scope,
    ))
}

/// A published funnel significance label in words, with whether it is better or worse:
/// "above the 99.8% limit (worse) — High (0.001)".
pub fn significance_words(indicator: &Indicator, label: &str) -> String {
    let (place, high) = match label {
        "High (0.001)" => ("above the 99.8% limit", Some(true)),
        "High (0.025)" => ("above the 95% limit", Some(true)),
        "Low (0.001)" => ("below the 99.8% limit", Some(false)),
        "Low (0.025)" => ("below the 95% limit", Some(false)),
        "Not significant" => ("within the 95% limits", None),
        _ => return label.to_string(),
    };
    let judgement = match (high, indicator.spec.polarity) {
        (Some(h), Polarity::LowIsGood) => {
            if h {
                " (worse)"
            } else {
                " (better)"
            }
        }
        (Some(h), Polarity::HighIsGood) => {
            if h {
                " (better)"
            } else {
                " (worse)"
            }
        }
        _ => "",
    };
    format!("{place}{judgement}")
}

/// The PCN's place on a funnel in words.
pub fn funnel_phrase(funnel: &Funnel, pcn: &str) -> Option<&'static str> {
    let point = funnel.points.iter().find(|p| p.code == pcn)?;
    Some(match point.significance? {
        Significance::High001 => "above the 99.8% limit",
        Significance::High025 => "above the 95% limit",
        Significance::Low001 => "below the 99.8% limit",
        Significance::Low025 => "below the 95% limit",
        Significance::NotSignificant => "within the 95% limits",
        Significance::NotApplicable => "not assessed (fewer than 10 events)",
    })
}
