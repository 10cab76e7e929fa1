//! The population and deprivation profile: the PCN's registered population, population-weighted
//! IMD score, Core20 share and people by IMD quintile against its ICB and England, and the same
//! for each of its practices (all from `area_deprivation`). Suppressed figures print as
//! "suppressed".

use super::document::{Block, Cell, Figure, Section, Table};
use super::pack::{self, IcbContext, Pcn};
use super::quintile_bars::{self, QuintileBar};
use super::rows::Area;
use crate::charts::ChartText;
use crate::charts::style::{format_count, format_number, format_percent};

/// A share (0–1) as a percentage with one decimal: "7.6%".
pub fn share(value: f64) -> String {
    format_percent(value * 100.0, 1)
}

/// The profile section.
pub fn section(ctx: &IcbContext, pcn: &Pcn<'_>) -> Section {
    let mut section = Section::new("profile", "Population and deprivation");
    let area = pcn.area;
    let name = pcn.name();
    let mut columns = vec![(name.clone(), Some(area))];
    if let Some(icb) = &ctx.icb {
        columns.push((ctx.icb_name(), Some(icb)));
    }
    if let Some(england) = &ctx.england {
        let label = if ctx.england_is_partial() {
            "All practices in this run".to_string()
        } else {
            "England".to_string()
        };
        columns.push((label, Some(england)));
    }

    let mut text = format!(
        "{name} has {} registered patients",
        area.population
            .map_or("a suppressed number of".into(), format_count)
    );
    if let Some(s) = area.core20_share {
        text.push_str(&format!(
            "; {} of them live in Core20 neighbourhoods, the most deprived 20% of areas in \
             England (about a fifth of England's population lives in them by definition)",
            share(s)
        ));
    }
    if let Some(score) = area.imd_score {
        text.push_str(&format!(
            ". Their population-weighted IMD score is {}",
            format_number(score, 1)
        ));
        if let Some(decile) = area.deprivation_decile {
            text.push_str(&format!(
                ", in decile {decile} of PCNs in the run (1 = most deprived)"
            ));
        }
    }
    text.push('.');
    section.paragraph(text);

    let bars: Vec<QuintileBar> = columns
        .iter()
        .filter_map(|(label, area)| {
            let area = (*area)?;
            let people: Option<Vec<f64>> = area.quintiles.iter().copied().collect();
            let people = people?;
            Some(QuintileBar {
                label: label.clone(),
                people: std::array::from_fn(|q| people.get(q).copied().unwrap_or(0.0)),
            })
        })
        .collect();
    let title = format!("How deprived are the neighbourhoods {name}'s patients live in?");
    let subtitle = format!(
        "Registered people by national {} quintile of their home LSOA: {name}, {} and {}",
        ctx.manifest.index_label(),
        ctx.icb_name(),
        columns.last().map_or("England".to_string(), |(l, _)| {
            // Mid-sentence: "all practices in this run", but "England" keeps its capital.
            if l == "England" {
                l.clone()
            } else {
                l.to_lowercase()
            }
        })
    );
    let figure = match quintile_bars::render_svg(&bars, &title, &subtitle, &ctx.source()) {
        Ok(svg) => Figure {
            name: "profile".into(),
            alt: title,
            svg,
            caption: None,
        },
        Err(e) => pack::notice(
            &ChartText::new(title, ctx.source()),
            "profile",
            format!("No chart: {e}."),
            None,
        ),
    };
    section.push(Block::Figure(figure));

    let header: Vec<String> = std::iter::once("".to_string())
        .chain(columns.iter().map(|(label, _)| label.clone()))
        .collect();
    let row = |label: &str, f: &dyn Fn(&Area) -> Cell| -> Vec<Cell> {
        std::iter::once(Cell::Text(label.to_string()))
            .chain(columns.iter().map(|(_, a)| a.map_or(Cell::Missing, f)))
            .collect()
    };
    let count = |v: Option<f64>, a: &Area| Cell::number_or(v.map(format_count), a.suppressed);
    let mut rows = vec![
        row("Registered population", &|a| count(a.population, a)),
        row(
            "Population-weighted IMD score (higher = more deprived)",
            &|a| Cell::number_or(a.imd_score.map(|s| format_number(s, 1)), a.suppressed),
        ),
        row("People in Core20 neighbourhoods", &|a| {
            count(a.core20_population, a)
        }),
        row("Core20 share", &|a| {
            Cell::number_or(a.core20_share.map(share), a.suppressed)
        }),
    ];
    for q in 0..5 {
        let label = match q {
            0 => "IMD quintile 1 (most deprived)".to_string(),
            4 => "IMD quintile 5 (least deprived)".to_string(),
            q => format!("IMD quintile {}", q + 1),
        };
        rows.push(row(&label, &|a| quintile_cell(a, q)));
    }
    section.push(Block::Table(Table {
        caption: Some(format!(
            "Registered population by national {} quintile of the LSOA they live in",
            ctx.manifest.index_label()
        )),
        columns: header,
        rows,
        highlight_first: false,
    }));
    section.note(
        "Shares are of the people whose home LSOA has a deprivation score (English LSOAs); \
         counts are rounded to the nearest 5 and counts of 1 to 7 suppressed.",
    );

    let mut practices: Vec<&Area> = ctx
        .data
        .areas
        .iter()
        .filter(|a| a.level == "practice" && a.parent.as_deref() == Some(pcn.code()))
        .collect();
    practices.sort_by(|a, b| {
        b.core20_share
            .unwrap_or(-1.0)
            .total_cmp(&a.core20_share.unwrap_or(-1.0))
    });
    if !practices.is_empty() {
        section.push(Block::Subheading("Member practices".into()));
        let rows = practices
            .iter()
            .map(|p| {
                let label = match &p.name {
                    Some(n) if !n.trim().is_empty() => format!("{n} ({})", p.code),
                    _ => p.code.clone(),
                };
                vec![
                    Cell::Text(label),
                    count(p.population, p),
                    Cell::number_or(p.imd_score.map(|s| format_number(s, 1)), p.suppressed),
                    Cell::number_or(p.core20_share.map(share), p.suppressed),
                    Cell::number_or(p.deprivation_decile.map(|d| d.to_string()), p.suppressed),
                ]
            })
            .collect();
        section.push(Block::Table(Table {
            caption: Some("Practices, most Core20 patients first".into()),
            columns: vec![
                "Practice".into(),
                "Registered".into(),
                "IMD score".into(),
                "Core20 share".into(),
                "Decile among practices".into(),
            ],
            rows,
            highlight_first: false,
        }));
    }
    section
}

/// People in one IMD quintile: "3,245 (7.6%)".
fn quintile_cell(area: &Area, q: usize) -> Cell {
    let people = area.quintiles.get(q).copied().flatten();
    let total = area.population_with_imd.filter(|t| *t > 0.0);
    match (people, total) {
        (Some(p), Some(t)) => Cell::Number(format!("{} ({})", format_count(p), share(p / t))),
        (Some(p), None) => Cell::Number(format_count(p)),
        (None, _) => Cell::number_or(None, area.suppressed),
    }
}
