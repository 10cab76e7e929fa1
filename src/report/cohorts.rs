//! Candidate underserved cohorts: groups of the PCN's people (Core20, IMD quintile 2, ethnic
//! groups, and — for care-quality indicators — segments and risk tiers) whose value of an
//! indicator is worse than the rest of the PCN's, ranked by size × gap.
//!
//! For each percentage indicator with a direction (polarity `high_is_good` or `low_is_good`,
//! from the run's config) and each group in the PCN's `indicators` breakdowns:
//!
//! - the **rest of the PCN** is the PCN's `all` row minus the group (published, rounded counts),
//!   with Wilson limits as the pipeline's;
//! - the **gap** is how much worse the group is, in percentage points, with 95% limits from
//!   Newcombe's hybrid score (MOVER) method (`crate::stats::difference`);
//! - the **size** is the people affected: those not meeting a high-is-good indicator
//!   (denominator − numerator, e.g. hypertensives whose blood pressure is not at target), or
//!   with a low-is-good outcome (numerator, e.g. smokers);
//! - the **rank** is by size × gap (the gap as a fraction), cohorts whose gap's limits exclude
//!   zero first.
//!
//! Left out, and said so in the pack: suppressed groups (never recomputed), groups with fewer
//! than [`MIN_AFFECTED`] people affected, groups holding most of the PCN (the "rest" would be
//! the cohort), the largest segment and risk tier (the baseline of need: Healthy, low risk), IMD quintile 1 (the same people as Core20), sex and age bands (eligibility and
//! age drive those), and rates: a rate's size is events, not people, and a crude rate compared
//! across groups mostly measures their ages (a directly standardised rate of "the rest" cannot be
//! derived from published figures). Rates appear in the gradients instead.

use super::document::{Block, Cell, Section, Span, Table};
use super::manifest::Indicator;
use super::pack::{IcbContext, Pcn};
use super::rows::IndicatorRow;
use crate::charts::style::{Unit, format_count};
use crate::pipeline::measure::{IndicatorType, Polarity};
use crate::stats::difference::difference_limits;
use crate::stats::proportion::wilson_limits;
use crate::stats::{Confidence, Limits};

/// Fewest people affected for a cohort to be listed.
pub const MIN_AFFECTED: f64 = 10.0;

/// Most cohorts listed.
pub const LISTED: usize = 10;

/// A group holding more than this share of the PCN's eligible people is not a cohort.
const MAX_SHARE: f64 = 0.5;

/// One candidate cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    /// The indicator's id.
    pub indicator: String,
    /// Its name.
    pub indicator_name: String,
    /// Its short name.
    pub measure: String,
    /// The breakdown (`core20`).
    pub breakdown: String,
    /// The group's value of it (`Core20`).
    pub group: String,
    /// Who, in words: "People living in Core20 neighbourhoods".
    pub who: String,
    /// The group's numerator and denominator (published).
    pub numerator: f64,
    /// The group's denominator.
    pub denominator: f64,
    /// The group's value and limits.
    pub value: f64,
    /// Its 95% limits.
    pub limits: Option<(f64, f64)>,
    /// The rest of the PCN's value and limits.
    pub rest_value: f64,
    /// Its 95% limits.
    pub rest_limits: (f64, f64),
    /// How much worse the group is (positive), in the indicator's unit.
    pub gap: f64,
    /// Its 95% limits (same orientation: positive = worse).
    pub gap_limits: (f64, f64),
    /// People (or events) affected.
    pub affected: f64,
    /// Whether the indicator is one to meet (higher is better): `affected` are those who do
    /// not; otherwise they are those with the outcome.
    pub high_is_good: bool,
    /// People the gap accounts for: denominator × gap (as a fraction).
    pub excess: f64,
    /// The ranking score: affected × gap (as a fraction).
    pub score: f64,
    /// Whether the gap's limits exclude zero.
    pub significant: bool,
    /// The indicator's unit.
    pub unit: Unit,
}

/// Whether a breakdown value is a cohort worth comparing, for an indicator of this polarity.
fn eligible(breakdown: &str, value: &str, polarity: Polarity) -> bool {
    match breakdown {
        "core20" => value == "Core20",
        // Quintile 1 is the Core20 (deciles 1 and 2): the next fifth is the one to add.
        "imd_quintile" => value == "2",
        "ethnic_group" => !matches!(value, "Not stated" | "Unknown"),
        // Segments and risk tiers differ in need by definition: only for care-quality
        // indicators (higher is better) is a worse value a sign of being underserved.
        "segment" | "risk_tier" => polarity == Polarity::HighIsGood && value != "Unknown",
        _ => false,
    }
}

/// A group in a few words, for table rows.
fn short_who(breakdown: &str, value: &str) -> String {
    match (breakdown, value) {
        ("core20", _) => "Core20".into(),
        ("imd_quintile", q) => format!("IMD quintile {q}"),
        ("ethnic_group", g) => g.to_string(),
        ("segment", s) => format!("Segment {s}"),
        ("risk_tier", t) => format!("Risk tier {t}"),
        (b, v) => format!("{b}: {v}"),
    }
}

/// A group in words.
fn who(breakdown: &str, value: &str) -> String {
    match (breakdown, value) {
        ("core20", _) => "People living in Core20 neighbourhoods".into(),
        ("imd_quintile", q) => format!("People living in IMD quintile {q}"),
        ("ethnic_group", g) => format!("Ethnic group: {g}"),
        ("segment", s) => format!("Segment {s}"),
        ("risk_tier", t) => format!("Risk tier {t}"),
        (b, v) => format!("{b}: {v}"),
    }
}

/// The rest of the PCN: (value, Wilson limits) from the PCN total minus the group, in the
/// indicator's unit; `None` when the counts do not allow it.
fn rest(indicator: &Indicator, numerator: f64, denominator: f64) -> Option<(f64, Limits)> {
    let level = Confidence::new(0.95).ok()?;
    let multiplier = indicator.spec.multiplier();
    if !(denominator > 0.0 && numerator >= 0.0) {
        return None;
    }
    let numerator = numerator.min(denominator);
    let limits = wilson_limits(numerator, denominator, level).ok()?;
    Some((
        numerator / denominator * multiplier,
        Limits {
            lower: limits.lower * multiplier,
            upper: limits.upper * multiplier,
        },
    ))
}

/// One group's cohort, when it is worse than the rest of the PCN.
fn cohort(indicator: &Indicator, all: &IndicatorRow, group: &IndicatorRow) -> Option<Cohort> {
    let polarity = indicator.spec.polarity;
    let (n, d, v) = (group.numerator?, group.denominator?, group.value?);
    let rest_n = all.numerator? - n;
    let rest_d = all.denominator? - d;
    if d > MAX_SHARE * all.denominator? {
        return None;
    }
    let (rest_value, rest_limits) = rest(indicator, rest_n.max(0.0), rest_d)?;
    let (lo, hi) = group.limits?;
    let gap = difference_limits(
        v,
        Limits {
            lower: lo.min(v),
            upper: hi.max(v),
        },
        rest_value,
        rest_limits,
    )
    .ok()?;
    let difference = v - rest_value;
    // Orient so that positive is worse for the group.
    let (gap_value, gap_limits) = match polarity {
        Polarity::LowIsGood => (difference, (gap.lower, gap.upper)),
        Polarity::HighIsGood => (-difference, (-gap.upper, -gap.lower)),
        Polarity::Neutral => return None,
    };
    if gap_value <= 0.0 {
        return None;
    }
    let multiplier = indicator.spec.multiplier();
    let high_is_good = polarity == Polarity::HighIsGood;
    let affected = if high_is_good { (d - n).max(0.0) } else { n };
    if affected < MIN_AFFECTED {
        return None;
    }
    let per = gap_value / multiplier;
    Some(Cohort {
        indicator: indicator.id().to_string(),
        indicator_name: indicator.spec.name.clone(),
        measure: indicator.measure(),
        breakdown: group.breakdown.clone(),
        group: group.breakdown_value.clone(),
        who: who(&group.breakdown, &group.breakdown_value),
        numerator: n,
        denominator: d,
        value: v,
        limits: group.limits,
        rest_value,
        rest_limits: (rest_limits.lower, rest_limits.upper),
        gap: gap_value,
        gap_limits,
        affected,
        high_is_good,
        excess: d * per,
        score: affected * per,
        significant: gap_limits.0 > 0.0,
        unit: indicator.unit(),
    })
}

/// The PCN's candidate cohorts, ranked (at most [`LISTED`]).
pub fn find(ctx: &IcbContext, pcn: &str) -> Vec<Cohort> {
    let mut found = Vec::new();
    for indicator in &ctx.indicators {
        if indicator.practice_level
            || indicator.spec.kind != IndicatorType::Proportion
            || indicator.spec.polarity == Polarity::Neutral
        {
            continue;
        }
        let rows: Vec<&IndicatorRow> = ctx
            .data
            .indicators
            .iter()
            .filter(|r| {
                r.indicator == indicator.id()
                    && r.footprint_kind == "pcn"
                    && r.footprint_code == pcn
            })
            .collect();
        let Some(all) = rows.iter().find(|r| r.breakdown == "all") else {
            continue;
        };
        // The largest segment and risk tier are the baseline of need (Healthy, low risk), not
        // a cohort.
        let largest = |breakdown: &str| {
            rows.iter()
                .filter(|r| r.breakdown == breakdown)
                .max_by(|a, b| {
                    a.denominator
                        .unwrap_or(0.0)
                        .total_cmp(&b.denominator.unwrap_or(0.0))
                })
                .map(|r| r.breakdown_value.clone())
        };
        let baseline = [largest("segment"), largest("risk_tier")];
        for group in &rows {
            let is_baseline = matches!(group.breakdown.as_str(), "segment" | "risk_tier")
                && baseline.contains(&Some(group.breakdown_value.clone()));
            if !is_baseline
                && eligible(
                    &group.breakdown,
                    &group.breakdown_value,
                    indicator.spec.polarity,
                )
                && let Some(c) = cohort(indicator, all, group)
            {
                found.push(c);
            }
        }
    }
    found.sort_by(|a, b| {
        b.significant
            .cmp(&a.significant)
            .then(b.score.total_cmp(&a.score))
    });
    found.truncate(LISTED);
    found
}

/// A modelled count for text: "about 40"; "under 10" for small ones.
fn about(n: f64) -> String {
    if n < 10.0 {
        "under 10".into()
    } else {
        format!("about {}", format_count(n))
    }
}

impl Cohort {
    /// "175 of the 420 eligible people do not meet it" / "245 of the 1,200 have it".
    fn affected_text(&self) -> String {
        format!(
            "{} of the {} eligible people {}",
            format_count(self.affected),
            format_count(self.denominator),
            if self.high_is_good {
                "do not meet it"
            } else {
                "have it"
            }
        )
    }

    /// What closing the gap would mean: "about 40 more people would meet it".
    fn closing_text(&self) -> String {
        format!(
            "{} {} people would {}",
            about(self.excess),
            if self.high_is_good { "more" } else { "fewer" },
            if self.high_is_good {
                "meet it"
            } else {
                "have it"
            }
        )
    }

    /// "58.0% (53.2 to 62.6)".
    fn value_text(&self) -> String {
        let u = &self.unit;
        match self.limits {
            Some((lo, hi)) => format!(
                "{} ({} to {})",
                u.format(self.value),
                u.format_bare(lo),
                u.format_bare(hi)
            ),
            None => u.format(self.value),
        }
    }
}

/// A key-findings line for the top cohort.
pub fn finding(c: &Cohort) -> Vec<Span> {
    vec![
        Span::Text("Largest candidate underserved cohort: ".into()),
        Span::Strong(format!("{} \u{2014} {}", c.who, c.indicator_name)),
        Span::Text(format!(
            ": {} against {} for the rest of the PCN ({}). If they did as well as the rest, {}.",
            c.unit.format(c.value),
            c.unit.format(c.rest_value),
            c.affected_text(),
            c.closing_text(),
        )),
    ]
}

/// The cohorts section.
pub fn section(ctx: &IcbContext, pcn: &Pcn<'_>) -> Section {
    let mut section = Section::new("cohorts", "Candidate underserved cohorts");
    section.page_break = true;
    let name = pcn.name();
    section.paragraph(format!(
        "Groups of {name}'s people whose value of an indicator is worse than for the rest of the \
         PCN, ranked by size \u{d7} gap: the people affected (for example hypertensives whose \
         blood pressure is not at target) times how much worse the group does. Gaps whose 95% \
         confidence interval excludes zero come first. These are candidates to look into, not \
         conclusions: a gap can reflect need, age, recording or eligibility as well as service."
    ));
    if ctx.config.is_none() {
        section.note(
            "The run's config could not be read, so the indicators' better direction is unknown \
             and no cohorts are ranked.",
        );
        return section;
    }
    if pcn.cohorts.is_empty() {
        section.paragraph(format!(
            "No group of {name}'s people does worse than the rest of the PCN on a percentage \
             indicator with at least {MIN_AFFECTED} people affected."
        ));
    } else {
        let mut items = Vec::new();
        for c in pcn.cohorts.iter().take(3) {
            items.push(vec![
                Span::Strong(format!("{} \u{2014} {}. ", c.who, c.indicator_name)),
                Span::Text(format!(
                    "{} against {} for the rest of the PCN; {}. If this group did as well as \
                     the rest, {}.",
                    c.unit.format(c.value),
                    c.unit.format(c.rest_value),
                    c.affected_text(),
                    c.closing_text(),
                )),
            ]);
        }
        section.push(Block::Bullets(items));
        let rows = pcn
            .cohorts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let u = &c.unit;
                vec![
                    Cell::Number((i + 1).to_string()),
                    Cell::Text(format!(
                        "{} \u{2014} {}",
                        short_who(&c.breakdown, &c.group),
                        c.measure
                    )),
                    Cell::Number(format!(
                        "{} of {}",
                        format_count(c.affected),
                        format_count(c.denominator)
                    )),
                    Cell::Number(c.value_text()),
                    Cell::Number(format!(
                        "{} ({} to {})",
                        u.format(c.rest_value),
                        u.format_bare(c.rest_limits.0),
                        u.format_bare(c.rest_limits.1)
                    )),
                    Cell::Number(format!(
                        "{} ({} to {})",
                        u.format_bare(c.gap),
                        u.format_bare(c.gap_limits.0),
                        u.format_bare(c.gap_limits.1)
                    )),
                    Cell::Number(if c.excess < 10.0 {
                        "under 10".into()
                    } else {
                        format_count(c.excess)
                    }),
                ]
            })
            .collect();
        section.push(Block::Table(Table {
            caption: Some(format!(
                "Ranked by size \u{d7} gap. Affected: eligible people not meeting the indicator \
                 (or, where lower is better, with it). Gap: how many percentage points worse \
                 than the rest of {name}. Gap in people: how many more would meet it (or fewer \
                 have it) at the rest's rate."
            )),
            columns: vec![
                "#".into(),
                "Cohort \u{2014} indicator".into(),
                "Affected".into(),
                "Cohort (95% CI)".into(),
                "Rest of PCN (95% CI)".into(),
                "Gap, points (95% CI)".into(),
                "Gap in people".into(),
            ],
            rows,
            highlight_first: false,
        }));
        if let Some(first) = pcn.cohorts.iter().position(|c| !c.significant) {
            section.note(format!(
                "From row {} on, the gap's 95% confidence interval includes zero: the difference \
                 may be chance.",
                first + 1
            ));
        }
    }
    section.note(format!(
        "Compared: people in Core20 neighbourhoods and in IMD quintile 2, ethnic groups, and (for \
         indicators where higher is better) segments and risk tiers, each against the rest of \
         the PCN. Not compared: groups with suppressed counts, groups with fewer than \
         {MIN_AFFECTED} people affected, groups holding most of the PCN, the largest segment and \
         risk tier (the baseline of need), sex and age bands, \
         indicators without a better direction, and rates (see the gradients). The rest of the \
         PCN is its total minus the group, from published counts rounded to 5; the gap's \
         interval is Newcombe's hybrid score (MOVER) method."
    ));
    section
}
