//! The pack's appendix: methods and data vintages from the run's `manifest.json` (the run, the
//! tool, every input file with its SHA-256 and row counts, the extract date, deprivation index,
//! seed, SII repetitions and the disclosure rule) and plain-language definitions of the terms
//! the pack uses.

use super::document::{Block, Cell, Section, Table};
use super::pack::IcbContext;
use crate::charts::style::format_count;

/// The appendix sections: methods and data, then definitions.
pub fn sections(ctx: &IcbContext) -> Vec<Section> {
    vec![methods(ctx), definitions()]
}

fn count(v: Option<u64>) -> Cell {
    v.map_or(Cell::Missing, |n| Cell::Number(format_count(n as f64)))
}

fn methods(ctx: &IcbContext) -> Section {
    let m = &ctx.manifest;
    let mut section = Section::new("methods", "Appendix: methods and data vintages");
    section.page_break = true;
    let config = ctx.config.as_ref();
    let repetitions = config.map(|c| c.gradient.repetitions);
    let disclosure = config.map(|c| &c.disclosure);
    let not_recorded = || "not recorded".to_string();
    let mut rows: Vec<(String, String)> = vec![
        ("Run".into(), ctx.run_id.clone()),
        (
            "Run started / finished".into(),
            format!(
                "{} / {}",
                m.started_at.clone().unwrap_or_else(not_recorded),
                m.finished_at.clone().unwrap_or_else(not_recorded)
            ),
        ),
        ("Tool".into(), format!("{} {}", m.tool.name, m.tool.version)),
        (
            "Extract date".into(),
            m.extract_date.clone().unwrap_or_else(not_recorded),
        ),
    ];
    if let Some(periods) = &m.outcome_periods {
        rows.push((
            "Patient outcomes".into(),
            match (&periods.used, periods.rows_not_used) {
                (Some(used), 0) => format!("period {used}"),
                (Some(used), other) => format!(
                    "period {used}; {} rows of other periods not used",
                    format_count(other as f64)
                ),
                (None, _) => "no period recorded in the outcomes".into(),
            },
        ));
    }
    rows.extend([
        (
            "Deprivation index".into(),
            format!(
                "{} ({}): national deciles and quintiles of LSOAs, 1 = most deprived",
                m.index_label(),
                m.deprivation_index.clone().unwrap_or_else(not_recorded)
            ),
        ),
        (
            "Seed".into(),
            m.seed.map_or_else(not_recorded, |s| s.to_string()),
        ),
        (
            "SII simulation".into(),
            repetitions.map_or_else(not_recorded, |r| {
                format!(
                    "{} repetitions (95% and 99.8% limits), seeded per area",
                    format_count(r as f64)
                )
            }),
        ),
        (
            "Disclosure control".into(),
            match disclosure {
                Some(d) if d.enabled => format!(
                    "counts from 1 to {} suppressed; other counts rounded to the nearest {}; \
                     values derived from a suppressed count withheld",
                    d.suppress_up_to, d.round_to
                ),
                Some(_) => "disabled in this run's config: restricted use only".into(),
                None => not_recorded(),
            },
        ),
        (
            "Config".into(),
            format!(
                "{} (SHA-256 {})",
                m.config
                    .path
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .map_or_else(not_recorded, |n| n.to_string_lossy().into_owned()),
                m.config.sha256.clone().unwrap_or_else(not_recorded)
            ),
        ),
        (
            "Registered people in the run".into(),
            m.population.map_or_else(not_recorded, format_count),
        ),
    ]);
    section.push(Block::Table(Table {
        caption: None,
        columns: vec!["".into(), "".into()],
        rows: rows
            .into_iter()
            .map(|(k, v)| vec![Cell::Text(k), Cell::Text(v)])
            .collect(),
        highlight_first: false,
    }));

    section.push(Block::Subheading("Inputs".into()));
    let inputs = m
        .inputs
        .iter()
        .map(|i| {
            vec![
                Cell::Text(i.input.clone()),
                Cell::Text(i.file.file_name().map_or_else(
                    || i.file.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )),
                count(i.rows_read),
                count(i.rows_rejected),
                i.sha256.clone().map_or(Cell::Missing, Cell::Code),
            ]
        })
        .collect();
    section.push(Block::Table(Table {
        caption: Some("Every input of the run, as recorded in its manifest".into()),
        columns: vec![
            "Input".into(),
            "File".into(),
            "Rows read".into(),
            "Refused".into(),
            "SHA-256".into(),
        ],
        rows: inputs,
        highlight_first: false,
    }));

    section.push(Block::Subheading("What the pack reads".into()));
    section.paragraph(
        "Only the run's publishable tables: area_deprivation (population and deprivation), \
         segments, indicators (values by footprint and breakdown), inequality (SII, RII, funnel \
         significance) and footprint_weights (which LSOAs belong to the PCN and the ICB), plus \
         the map's reference inputs above. Patient-level and rejected-row tables are never read. \
         A value suppressed in the tables is shown as \"suppressed\" and never recomputed.",
    );
    section.push(Block::Bullets(vec![
        super::document::text(
            "Gradients: the PCN's SII when it has at least 5 populated deciles, else the ICB's; \
             significant gradients first, then the PCN's own before the ICB's, then the \
             steepest relative to the indicator's value (|SII| \u{f7} value). The fitted line \
             is drawn from the published SII through the population-weighted mean of the decile \
             values.",
        ),
        super::document::text(
            "Funnel plots: the ICB's PCNs (every PCN of the run when the ICB has fewer than 3 \
             with a value), 95% and 99.8% control limits around their average \
             (PHEindicatormethods' method: Wilson-based for proportions, Poisson for rates). The \
             published funnel significance compares each PCN with every PCN of the run.",
        ),
        super::document::text(
            "Cohorts: the group against the rest of the PCN (total minus group); gap limits by \
             Newcombe's hybrid score (MOVER) method; ranked by people affected \u{d7} gap.",
        ),
        super::document::text(
            "Trends: the SII of the same indicator and footprint in every run of the output root \
             up to this one.",
        ),
    ]));
    if !m.warnings.is_empty() {
        section.push(Block::Subheading("Warnings raised by the run".into()));
        section.push(Block::Bullets(
            m.warnings
                .iter()
                .map(|w| super::document::text(w.clone()))
                .collect(),
        ));
    }
    section
}

fn definitions() -> Section {
    let mut section = Section::new("definitions", "Appendix: definitions");
    section.push(Block::Definitions(vec![
        (
            "Core20PLUS5".into(),
            "NHS England's approach to reducing healthcare inequalities: the most deprived 20% \
             of the national population (Core20, by the Index of Multiple Deprivation), PLUS \
             groups the ICB identifies as underserved, and five clinical areas (maternity, severe \
             mental illness, chronic respiratory disease, early cancer diagnosis, hypertension \
             case-finding and lipid management)."
                .into(),
        ),
        (
            "Core20".into(),
            "Living in an LSOA among England's most deprived 20% (IMD deciles 1 and 2).".into(),
        ),
        (
            "IMD, deciles and quintiles".into(),
            "The English Index of Multiple Deprivation ranks every LSOA (a neighbourhood of about \
             1,500 people) by deprivation; deciles and quintiles are national tenths and fifths, \
             1 = most deprived. People are placed by the LSOA they live in."
                .into(),
        ),
        (
            "Slope index of inequality (SII)".into(),
            "The absolute gap in an indicator between the least and the most deprived ends of \
             the population, from a regression of the decile values on each decile's \
             population-weighted rank. Negative: the value is higher among the more deprived. \
             Its 95% confidence interval is simulated."
                .into(),
        ),
        (
            "Relative index of inequality (RII)".into(),
            "The same gradient as a ratio: the fitted value at the least deprived end divided by \
             the value at the most deprived end. 1 means no gradient."
                .into(),
        ),
        (
            "Confidence interval (CI)".into(),
            "The range of values compatible with the data at 95% confidence: Wilson for \
             percentages, exact or Byar's for rates, Dobson for age-standardised rates."
                .into(),
        ),
        (
            "Funnel plot and limits".into(),
            "Each PCN's value against its size. The funnel lines are where values would fall by \
             chance alone around the average: 95% (about 1 in 20 PCNs outside by chance) and \
             99.8% (about 1 in 500). A PCN outside the 99.8% limits is very unlikely to differ by \
             chance."
                .into(),
        ),
        (
            "Segments and risk tiers".into(),
            "Population segments group people by health and care needs (Bridges to Health: from \
             healthy to frailty and end of life); risk tiers rank people within the PCN by their \
             Cambridge Multimorbidity Score."
                .into(),
        ),
        (
            "Suppression and rounding".into(),
            "To protect confidentiality, counts from 1 to 7 are not published (shown as \
             \"suppressed\") and other counts are rounded to the nearest 5; values computed from \
             a suppressed count are withheld. Totals of rounded counts may differ slightly."
                .into(),
        ),
        (
            "Candidate underserved cohort".into(),
            "A group of the PCN's people with a worse value of an indicator than the rest of the \
             PCN. Size \u{d7} gap ranks them: people affected times how much worse the group does."
                .into(),
        ),
    ]));
    section
}
