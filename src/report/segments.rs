//! The segments section: the PCN's registered population by segment (each segmentation of the
//! run, e.g. Bridges to Health and Core20PLUS5) and by risk tier, each split by IMD quintile,
//! from the `segments` table. Cells suppressed by disclosure control are left out and said so:
//! the bars are of published counts only. Drawing is `crate::charts::segments`.

use std::collections::BTreeMap;

use super::document::{Block, Cell, Section, Table};
use super::pack::{self, IcbContext, Pcn};
use super::profile::share;
use super::rows::SegmentCell;
use crate::charts::ChartText;
use crate::charts::segments::{QUINTILES, SegmentPanel, SegmentRow, Segments};
use crate::charts::style::format_count;

/// A segmentation's name as a panel heading.
fn heading(segmentation: &str) -> String {
    match segmentation {
        "bridges_to_health" => "Bridges to Health segment".into(),
        "core20plus5" => "Core20PLUS5 group".into(),
        other => {
            let words = other.replace('_', " ");
            let mut chars = words.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// Rows of one grouping (label → counts by quintile and unknown), and the labels every one of
/// whose cells is suppressed (they get no bar).
fn rows<'a>(
    cells: impl Iterator<Item = &'a SegmentCell>,
    label: impl Fn(&SegmentCell) -> &str,
) -> (Vec<SegmentRow>, Vec<String>) {
    let mut by: BTreeMap<String, SegmentRow> = BTreeMap::new();
    let mut seen: Vec<String> = Vec::new();
    for cell in cells {
        if !seen.iter().any(|s| s == label(cell)) {
            seen.push(label(cell).to_string());
        }
        let Some(people) = cell.population else {
            continue;
        };
        let row = by
            .entry(label(cell).to_string())
            .or_insert_with(|| SegmentRow {
                label: label(cell).to_string(),
                counts: [0.0; QUINTILES],
                unknown: 0.0,
            });
        match cell
            .imd_quintile
            .and_then(|q| row.counts.get_mut(usize::from(q).saturating_sub(1)))
        {
            Some(slot) => *slot += people,
            None => row.unknown += people,
        }
    }
    let mut hidden: Vec<String> = seen.into_iter().filter(|l| !by.contains_key(l)).collect();
    hidden.sort();
    let mut rows: Vec<SegmentRow> = by.into_values().collect();
    // Catch-all groups ("Neither") read best last.
    rows.sort_by_key(|r| matches!(r.label.as_str(), "Neither" | "None" | "Other"));
    (rows, hidden)
}

/// The segments section.
pub fn section(ctx: &IcbContext, pcn: &Pcn<'_>) -> Section {
    let mut section = Section::new("segments", "Population segments");
    let cells: Vec<&SegmentCell> = ctx
        .data
        .segments
        .iter()
        .filter(|c| c.pcn == pcn.code())
        .collect();
    let name = pcn.name();
    let mut order: Vec<String> = ctx
        .config
        .as_ref()
        .map(|c| c.segmentations.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    for cell in &cells {
        if !order.contains(&cell.segmentation) {
            order.push(cell.segmentation.clone());
        }
    }
    order.retain(|s| cells.iter().any(|c| &c.segmentation == s));
    let text = ChartText::new(
        format!("{name}: who is in each segment, by deprivation"),
        ctx.source(),
    )
    .with_subtitle(format!(
        "Registered patients of {name} by segment and risk tier, split by national IMD quintile of \
         residence, {}",
        ctx.year
    ));
    let Some(first) = order.first() else {
        section.push(Block::Figure(pack::notice(
            &text,
            "segments",
            "The run has no segments table (no segmentation in its config).".into(),
            None,
        )));
        return section;
    };
    let of = |s: &str| -> Vec<&SegmentCell> {
        cells
            .iter()
            .copied()
            .filter(|c| c.segmentation == s)
            .collect()
    };
    let mut panels = Vec::new();
    let mut hidden: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |title: String, (rows, gone): (Vec<SegmentRow>, Vec<String>)| {
        if !gone.is_empty() {
            hidden.push((title.clone(), gone));
        }
        panels.push(SegmentPanel { title, rows });
    };
    add(heading(first), rows(of(first).into_iter(), |c| &c.segment));
    add(
        "Risk tier (within the PCN)".into(),
        rows(of(first).into_iter(), |c| &c.risk_tier),
    );
    for other in order.iter().skip(1) {
        add(heading(other), rows(of(other).into_iter(), |c| &c.segment));
    }
    section.paragraph(
        "Each bar is one segment's people split by the deprivation of where they live. A bar \
         darker than \"All\" means the segment holds more people from deprived areas than the \
         PCN as a whole.",
    );
    let segments = Segments {
        population: "registered patients".into(),
        panels: panels.clone(),
    };
    let suppressed = cells.iter().any(|c| c.suppressed);
    let caption = suppressed.then(|| {
        let mut text = "Cells of 1 to 7 people are suppressed by disclosure control and not \
                        counted in the bars; other counts are rounded to the nearest 5."
            .to_string();
        for (panel, labels) in &hidden {
            text.push_str(&format!(
                " Not shown ({panel}), every cell suppressed: {}.",
                labels.join("; ")
            ));
        }
        text
    });
    section.push(Block::Figure(pack::figure(
        &segments, &text, "segments", caption,
    )));

    // The first panel as a table, for readers of the Markdown and for screen readers.
    let total: f64 = panels
        .first()
        .map(|p| {
            p.rows
                .iter()
                .map(|r| r.counts.iter().sum::<f64>() + r.unknown)
                .sum()
        })
        .unwrap_or(0.0);
    if let Some(panel) = panels.first() {
        let rows = panel
            .rows
            .iter()
            .map(|r| {
                let people = r.counts.iter().sum::<f64>() + r.unknown;
                let known: f64 = r.counts.iter().sum();
                let first = r.counts.first().copied().unwrap_or(0.0);
                vec![
                    Cell::Text(r.label.clone()),
                    Cell::Number(format_count(people)),
                    Cell::Number(if total > 0.0 {
                        share(people / total)
                    } else {
                        "\u{2013}".into()
                    }),
                    Cell::Number(if known > 0.0 {
                        share(first / known)
                    } else {
                        "\u{2013}".into()
                    }),
                ]
            })
            .collect();
        section.push(Block::Table(Table {
            caption: Some(format!("{} (published counts)", panel.title)),
            columns: vec![
                "Segment".into(),
                "People".into(),
                "Share of PCN".into(),
                "Living in IMD quintile 1".into(),
            ],
            rows,
            highlight_first: false,
        }));
    }
    let first_hidden = hidden
        .iter()
        .find(|(panel, _)| Some(panel) == panels.first().map(|p| &p.title))
        .map(|(_, labels)| labels.clone())
        .unwrap_or_default();
    for label in &first_hidden {
        if let Some(Block::Table(table)) = section.blocks.last_mut() {
            table.rows.push(vec![
                Cell::Text(label.clone()),
                Cell::Suppressed,
                Cell::Suppressed,
                Cell::Suppressed,
            ]);
        }
    }
    section
}
