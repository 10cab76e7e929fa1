//! The segment chart: how a population divides into segments (e.g. Bridges to Health's eight)
//! and risk tiers, and how each segment's people spread over the IMD quintiles.
//!
//! One panel per grouping (segments, risk tiers, as passed in), one horizontal bar per row,
//! stacked to 100% by quintile with the quintile colours of the other charts, percentages written
//! in the pieces that have room, and the row's count and share of the panel at the right end. An
//! "All" row at the top of each panel is the comparison: a segment whose bar is darker than "All"
//! holds more people from deprived areas. The segment rules and risk tiers are in
//! `pipeline::segment`; this file only draws counts.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::layout::{Canvas, Key, LegendEntry, Rect, Weight};
use super::style::{self, INK, MUTED, Scale, text_size};
use super::{Chart, ChartError, ChartText};

/// The number of IMD quintiles.
pub const QUINTILES: usize = 5;

/// One bar: a segment or risk tier and its people by IMD quintile.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    /// The segment's name: "Frailty and dementia".
    pub label: String,
    /// People in IMD quintiles 1 (most deprived) to 5.
    pub counts: [f64; QUINTILES],
    /// People whose quintile is not known (no LSOA, or outside England).
    pub unknown: f64,
}

impl SegmentRow {
    fn total(&self) -> f64 {
        self.counts.iter().sum::<f64>() + self.unknown
    }
}

/// A group of bars with a heading: "Bridges to Health segment", "Risk tier".
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPanel {
    /// The heading.
    pub title: String,
    /// The rows, in the order to draw them.
    pub rows: Vec<SegmentRow>,
}

/// The data of a segment chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Segments {
    /// What is counted, for the axis and the totals: "registered patients".
    pub population: String,
    /// The panels, top to bottom.
    pub panels: Vec<SegmentPanel>,
}

/// Render a segment chart as SVG. Its height grows with the number of rows.
///
/// # Errors
/// [`ChartError::NoData`] when there are no rows or nobody is counted; [`ChartError::Invalid`]
/// for a negative or non-finite count.
pub fn render_svg(data: &Segments, text: &ChartText) -> Result<String, ChartError> {
    super::svg(data, text)
}

/// Render a segment chart as a PNG file (twice the SVG's resolution).
///
/// # Errors
/// As [`render_svg`], and [`ChartError::Write`] when the file cannot be written.
pub fn render_png(data: &Segments, text: &ChartText, path: &Path) -> Result<(), ChartError> {
    super::png(data, text, path, Scale::PNG)
}

/// Height of one bar row and of a panel heading, in CSS pixels.
const ROW: f64 = 27.0;
const HEADING: f64 = 30.0;

impl Segments {
    fn invalid(message: String) -> ChartError {
        ChartError::Invalid {
            chart: Self::KIND,
            message,
        }
    }

    fn has_unknown(&self) -> bool {
        self.panels
            .iter()
            .flat_map(|p| &p.rows)
            .any(|r| r.unknown > 0.0)
    }

    fn notes(&self) -> Vec<String> {
        vec![format!(
            "Each bar is 100% of the row's {}; the number at its end is how many people that is \
             and their share of the panel. Shares too small to label are left unwritten.",
            self.population
        )]
    }

    /// Each panel's "All" row: the sum of its rows.
    fn all_row(panel: &SegmentPanel) -> SegmentRow {
        let mut counts = [0.0; QUINTILES];
        let mut unknown = 0.0;
        for row in &panel.rows {
            for (sum, c) in counts.iter_mut().zip(&row.counts) {
                *sum += c;
            }
            unknown += row.unknown;
        }
        SegmentRow {
            label: "All".into(),
            counts,
            unknown,
        }
    }
}

impl Chart for Segments {
    const KIND: &'static str = "segment chart";

    fn size(&self, text: &ChartText) -> (u32, u32) {
        let panels = self.panels.len() as f64;
        let rows: usize = self.panels.iter().map(|p| p.rows.len() + 1).sum();
        // Legend, panel headings with the rule under "All", rows, the share axis, gaps.
        let body = text_size::BODY * 1.7
            + 6.0
            + (HEADING + 4.0) * panels
            + ROW * rows as f64
            + 4.0
            + 6.0
            + text_size::TICK * 1.35
            + 4.0
            + text_size::BODY * 1.35
            + 8.0;
        // The title block and footer as they will wrap; a generous guess if measuring fails.
        let chrome = super::measure(|canvas| canvas.frame_chrome(text, &[], &self.notes()))
            .map_or(220.0, f64::from);
        (
            style::WIDTH,
            ((chrome + body).ceil() as u32).max(style::HEIGHT),
        )
    }

    fn check(&self) -> Result<(), ChartError> {
        for panel in &self.panels {
            for row in &panel.rows {
                if row
                    .counts
                    .iter()
                    .chain(std::iter::once(&row.unknown))
                    .any(|c| !(c.is_finite() && *c >= 0.0))
                {
                    return Err(Self::invalid(format!(
                        "{} / {}: counts must be zero or more, got {:?} and {} unknown",
                        panel.title, row.label, row.counts, row.unknown
                    )));
                }
            }
        }
        let total: f64 = self
            .panels
            .iter()
            .flat_map(|p| &p.rows)
            .map(SegmentRow::total)
            .sum();
        if total <= 0.0 {
            return Err(ChartError::NoData {
                chart: Self::KIND,
                reason: if self.panels.iter().all(|p| p.rows.is_empty()) {
                    "no segments".into()
                } else {
                    "every segment has zero people".into()
                },
            });
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        text: &ChartText,
        s: Scale,
    ) -> Result<(), ChartError> {
        let canvas = Canvas::new(root, s);
        let notes = self.notes();
        let body = canvas.frame(text, &[], &notes)?;

        let mut legend: Vec<LegendEntry> = (1..=QUINTILES as u8)
            .map(|q| {
                let label = match q {
                    1 => "1 most deprived".to_string(),
                    5 => "5 least deprived".to_string(),
                    q => q.to_string(),
                };
                LegendEntry::new(
                    Key::Swatch {
                        fill: style::quintile_colour(q),
                        stroke: None,
                    },
                    label,
                )
            })
            .collect();
        if self.has_unknown() {
            legend.push(LegendEntry::new(
                Key::Swatch {
                    fill: style::GRID,
                    stroke: None,
                },
                "Not known",
            ));
        }
        let legend_title = canvas.font(text_size::BODY, Weight::Bold, INK);
        let title = "IMD quintile:";
        let title_w = canvas.text_width(title, &legend_title)?;
        let row_h = canvas.px(text_size::BODY * 1.7);
        canvas.text(
            title,
            (body.x0, body.y0 + row_h / 2),
            &legend_title,
            HPos::Left,
            VPos::Center,
        )?;
        let legend_bottom = canvas.legend_rows(
            &legend,
            body.x0 + title_w + canvas.px(10.0),
            body.x1,
            body.y0,
        )?;

        // Columns: labels | bar | total.
        let label_style = canvas.font(text_size::BODY, Weight::Normal, INK);
        let all_style = canvas.font(text_size::BODY, Weight::Bold, INK);
        let total_style = canvas.font(text_size::TICK, Weight::Normal, MUTED);
        let mut label_w = 0;
        let mut total_w = 0;
        let panel_rows: Vec<(SegmentRow, f64)> = self
            .panels
            .iter()
            .map(|p| {
                let all = Self::all_row(p);
                let total = all.total();
                (all, total)
            })
            .collect();
        for (panel, (all, panel_total)) in self.panels.iter().zip(&panel_rows) {
            for row in std::iter::once(all).chain(&panel.rows) {
                label_w = label_w.max(canvas.text_width(&row.label, &label_style)?);
                let t = total_text(row.total(), *panel_total);
                total_w = total_w.max(canvas.text_width(&t, &total_style)?);
            }
        }
        let label_w = label_w.min(body.width() * 2 / 5);
        let bar_x0 = body.x0 + label_w + canvas.px(10.0);
        let bar_x1 = body.x1 - total_w - canvas.px(10.0);
        if bar_x1 - bar_x0 < canvas.px(150.0) {
            return Err(Self::invalid(
                "the segment names leave no room for the bars".into(),
            ));
        }
        let bar = |share: f64| bar_x0 + ((bar_x1 - bar_x0) as f64 * share).round() as i32;

        let row_height = canvas.px(ROW);
        let bar_half = canvas.px(ROW * 0.36);
        let heading_style = canvas.font(text_size::BODY, Weight::Bold, INK);
        let piece_style = |fill| canvas.font(text_size::TICK, Weight::Normal, style::text_on(fill));
        let mut y = legend_bottom + canvas.px(6.0);
        for (panel, (all, panel_total)) in self.panels.iter().zip(&panel_rows) {
            canvas.text(
                &panel.title,
                (body.x0, y + canvas.px(HEADING) / 2 + canvas.px(2.0)),
                &heading_style,
                HPos::Left,
                VPos::Center,
            )?;
            y += canvas.px(HEADING);
            for (i, row) in std::iter::once(all).chain(&panel.rows).enumerate() {
                let mid = y + row_height / 2;
                let style = if i == 0 { &all_style } else { &label_style };
                // Labels wider than the column are cut with an ellipsis: rows are one line high.
                let label = if canvas.text_width(&row.label, style)? > label_w {
                    ellipsis(&canvas, &row.label, style, label_w)?
                } else {
                    row.label.clone()
                };
                canvas.text(
                    &label,
                    (bar_x0 - canvas.px(10.0), mid),
                    style,
                    HPos::Right,
                    VPos::Center,
                )?;
                let total = row.total();
                if total <= 0.0 {
                    canvas.rect(
                        Rect {
                            x0: bar_x0,
                            y0: mid - bar_half,
                            x1: bar_x1,
                            y1: mid + bar_half,
                        },
                        None,
                        Some((style::GRID, 1.0)),
                    )?;
                    canvas.text(
                        "no people",
                        (bar_x0 + canvas.px(6.0), mid),
                        &total_style,
                        HPos::Left,
                        VPos::Center,
                    )?;
                } else {
                    let mut start = 0.0;
                    let pieces = row
                        .counts
                        .iter()
                        .enumerate()
                        .map(|(q, c)| (style::quintile_colour(q as u8 + 1), *c))
                        .chain(std::iter::once((style::GRID, row.unknown)));
                    for (fill, count) in pieces {
                        if count <= 0.0 {
                            continue;
                        }
                        let share = count / total;
                        let (x0, x1) = (bar(start), bar(start + share));
                        start += share;
                        canvas.rect(
                            Rect {
                                x0,
                                y0: mid - bar_half,
                                x1,
                                y1: mid + bar_half,
                            },
                            Some(fill),
                            None,
                        )?;
                        let pct = style::format_percent(share * 100.0, 0);
                        let piece_font = piece_style(fill);
                        if share >= 0.04
                            && canvas.text_width(&pct, &piece_font)? + canvas.px(6.0) <= x1 - x0
                        {
                            canvas.text(
                                &pct,
                                ((x0 + x1) / 2, mid),
                                &piece_font,
                                HPos::Center,
                                VPos::Center,
                            )?;
                        }
                    }
                }
                canvas.text(
                    &total_text(total, *panel_total),
                    (bar_x1 + canvas.px(8.0), mid),
                    &total_style,
                    HPos::Left,
                    VPos::Center,
                )?;
                if i == 0 {
                    // A rule under "All" separates the comparison row from the rows.
                    let rule = y + row_height + canvas.px(1.0);
                    canvas.path(&[(body.x0, rule), (body.x1, rule)], style::GRID, 1.0)?;
                    y += canvas.px(4.0);
                }
                y += row_height;
            }
        }

        // Share axis under the bars.
        let tick_style = canvas.font(text_size::TICK, Weight::Normal, MUTED);
        let axis_y = y + canvas.px(4.0);
        for pct in [0, 25, 50, 75, 100] {
            let x = bar(f64::from(pct) / 100.0);
            canvas.path(
                &[(x, axis_y), (x, axis_y + canvas.px(4.0))],
                style::AXIS,
                1.0,
            )?;
            canvas.text(
                &format!("{pct}%"),
                (x, axis_y + canvas.px(6.0)),
                &tick_style,
                HPos::Center,
                VPos::Top,
            )?;
        }
        canvas.path(&[(bar_x0, axis_y), (bar_x1, axis_y)], style::AXIS, 1.0)?;
        let title_style = canvas.font(text_size::BODY, Weight::Normal, INK);
        canvas.text(
            &format!("Share of the row's {} by IMD quintile", self.population),
            (
                (bar_x0 + bar_x1) / 2,
                axis_y + canvas.px(6.0) + canvas.line_height(text_size::TICK) + canvas.px(4.0),
            ),
            &title_style,
            HPos::Center,
            VPos::Top,
        )
    }
}

/// "12,345 (23%)": a row's people and their share of the panel.
fn total_text(total: f64, panel_total: f64) -> String {
    if panel_total > 0.0 {
        let share = total / panel_total * 100.0;
        // Small rows keep a decimal, so a real 0.4% does not print as "0%".
        let decimals = if share > 0.0 && share < 1.0 { 1 } else { 0 };
        format!(
            "{} ({})",
            style::format_count(total),
            style::format_percent(share, decimals)
        )
    } else {
        style::format_count(total)
    }
}

/// `text` cut to fit `width` with "…".
fn ellipsis<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    text: &str,
    style: &TextStyle,
    width: i32,
) -> Result<String, ChartError> {
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let candidate: String = chars
            .iter()
            .take(keep)
            .collect::<String>()
            .trim_end()
            .to_string()
            + "…";
        if canvas.text_width(&candidate, style)? <= width {
            return Ok(candidate);
        }
    }
    Ok("…".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::check::{check_svg, png_size};

    pub(crate) fn bridges() -> Segments {
        let segment = |label: &str, total: f64, tilt: f64| SegmentRow {
            label: label.into(),
            counts: [0.3 + tilt, 0.25, 0.2, 0.15, 0.1 - tilt].map(|s| (s * total).round()),
            unknown: (total * 0.01).round(),
        };
        Segments {
            population: "registered patients".into(),
            panels: vec![
                SegmentPanel {
                    title: "Bridges to Health segment".into(),
                    rows: vec![
                        segment("Healthy", 31000.0, -0.05),
                        segment("Maternal & infant health", 2100.0, 0.0),
                        segment("Acutely ill, curable", 1500.0, 0.0),
                        segment("Chronic conditions, normal function", 9800.0, 0.03),
                        segment("Stable but serious disability", 1200.0, 0.06),
                        segment("Short period of decline before dying", 90.0, 0.02),
                        segment("Limited reserve & exacerbations", 900.0, 0.08),
                        segment("Frailty & dementia", 700.0, 0.04),
                    ],
                },
                SegmentPanel {
                    title: "Risk tier <within PCN>".into(),
                    rows: vec![
                        segment("Top 0.5%", 240.0, 0.09),
                        segment("Next 4.5%", 2100.0, 0.06),
                        segment("Next 15%", 7100.0, 0.03),
                        segment("Rest", 38000.0, -0.01),
                    ],
                },
            ],
        }
    }

    fn text() -> ChartText {
        ChartText::new("Who is in each segment", "Source: healthgap run test")
    }

    #[test]
    fn segments_svg_has_rows_legend_and_totals() {
        let svg = render_svg(&bridges(), &text()).expect("renders");
        let s = check_svg(&svg).expect("xml");
        for t in [
            "Who is in each segment",
            "Bridges to Health segment",
            "Risk tier <within PCN>",
            "Healthy",
            "Maternal & infant health",
            "All",
            "1 most deprived",
            "5 least deprived",
            "Not known",
            "Share of the row's registered patients by IMD quintile",
            "100%",
        ] {
            assert!(s.has_text(t), "missing {t:?} in {:?}", s.texts);
        }
        assert!(s.has_text_containing("31,310 ("));
        assert!(
            s.size.1 > 560,
            "the canvas grows with the rows: {:?}",
            s.size
        );
    }

    #[test]
    fn segments_png_size_and_determinism() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        render_png(&bridges(), &text(), &a).expect("renders");
        render_png(&bridges(), &text(), &b).expect("renders");
        let (a, b) = (
            std::fs::read(a).expect("read"),
            std::fs::read(b).expect("read"),
        );
        let (w, h) = bridges().size(&text());
        assert_eq!(png_size(&a), Some((w * 2, h * 2)));
        assert_eq!(a, b);
    }

    #[test]
    fn segments_degenerate_inputs() {
        let empty = Segments {
            population: "people".into(),
            panels: vec![],
        };
        assert!(matches!(
            render_svg(&empty, &text()),
            Err(ChartError::NoData { .. })
        ));
        let mut zero = bridges();
        for p in &mut zero.panels {
            for r in &mut p.rows {
                r.counts = [0.0; 5];
                r.unknown = 0.0;
            }
        }
        assert!(
            render_svg(&zero, &text())
                .expect_err("zero")
                .to_string()
                .contains("zero people")
        );
        let mut bad = bridges();
        bad.panels[0].rows[1].counts[2] = -1.0;
        assert!(
            render_svg(&bad, &text())
                .expect_err("negative")
                .to_string()
                .contains("Maternal & infant health")
        );
        let mut one_empty = bridges();
        one_empty.panels[0].rows[5].counts = [0.0; 5];
        one_empty.panels[0].rows[5].unknown = 0.0;
        let s = check_svg(&render_svg(&one_empty, &text()).expect("renders")).expect("xml");
        assert!(s.has_text("no people"));
    }

    #[test]
    fn long_labels_are_shortened() {
        let mut d = bridges();
        d.panels[0].rows[0].label =
            "A segment name far too long to fit in the label column of this chart at all, really"
                .into();
        let s = check_svg(&render_svg(&d, &text()).expect("renders")).expect("xml");
        assert!(s.has_text_containing("A segment name far too long"));
        assert!(s.has_text_containing("…"));
    }
}
