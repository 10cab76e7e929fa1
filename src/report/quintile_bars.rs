//! A small chart for the profile section: the share of registered people in each national IMD
//! quintile, one stacked bar per area (the PCN, its ICB, England), in the quintile colours of
//! the other charts. It lives here rather than in `crate::charts` because it is the pack's only
//! use of it; it draws with plotters and the bundled font like the charts do, so it looks the
//! same.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::charts::ChartError;
use crate::charts::style::{self, INK, MUTED, Scale, format_percent, text_size};

/// One bar: an area's people by quintile (1 = most deprived).
#[derive(Debug, Clone, PartialEq)]
pub struct QuintileBar {
    /// The area's name.
    pub label: String,
    /// People in quintiles 1–5.
    pub people: [f64; 5],
}

const WIDTH: u32 = 900;
const MARGIN: i32 = 16;
const BAR: i32 = 26;

fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Greedy word wrap to `width` pixels with the font's real widths.
fn wrap<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    font: &FontDesc<'_>,
    width: i32,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        let fits = area
            .estimate_text_size(&candidate, &TextStyle::from(font.clone()))
            .map(|(w, _)| i32::try_from(w).unwrap_or(i32::MAX) <= width)
            .unwrap_or(true);
        if fits || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Render the bars as an SVG document with a title, subtitle and source line.
///
/// # Errors
/// [`ChartError::NoData`] when no bar has people; [`ChartError::Font`] or
/// [`ChartError::Draw`] from plotters.
pub fn render_svg(
    bars: &[QuintileBar],
    title: &str,
    subtitle: &str,
    source: &str,
) -> Result<String, ChartError> {
    let bars: Vec<&QuintileBar> = bars
        .iter()
        .filter(|b| b.people.iter().all(|p| p.is_finite() && *p >= 0.0))
        .filter(|b| b.people.iter().sum::<f64>() > 0.0)
        .collect();
    if bars.is_empty() {
        return Err(ChartError::NoData {
            chart: "quintile bars",
            reason: "no area has people with a deprivation decile".into(),
        });
    }
    style::register_fonts()?;
    // Sizes in CSS pixels, as the charts write them (plotters shrinks SVG font sizes by 1.24).
    let font = |size: f64, bold: bool| {
        let f = FontDesc::new(
            FontFamily::SansSerif,
            Scale::SVG.font(size),
            FontStyle::Normal,
        );
        if bold { f.style(FontStyle::Bold) } else { f }
    };
    let inner = WIDTH as i32 - 2 * MARGIN;
    // Measure the wrapped text first on a throwaway canvas to size the picture.
    let mut scratch = String::new();
    let (title_lines, subtitle_lines, source_lines) = {
        let probe = SVGBackend::with_string(&mut scratch, (WIDTH, 100)).into_drawing_area();
        (
            wrap(&probe, title, &font(text_size::TITLE, true), inner),
            wrap(&probe, subtitle, &font(text_size::SUBTITLE, false), inner),
            wrap(&probe, source, &font(text_size::SMALL, false), inner),
        )
    };
    let line = |size: f64| (size * 1.35).ceil() as i32;
    let header = title_lines.len() as i32 * line(text_size::TITLE)
        + subtitle_lines.len() as i32 * line(text_size::SUBTITLE)
        + 12;
    let legend = line(text_size::BODY) + 12;
    let row = line(text_size::BODY) + BAR + 14;
    let footer = source_lines.len() as i32 * line(text_size::SMALL) + 8;
    let height = MARGIN + header + legend + row * bars.len() as i32 + footer + MARGIN;
    let height = u32::try_from(height).unwrap_or(400);

    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let text =
            |s: &str, (x, y): (i32, i32), size: f64, bold: bool, colour: RGBColor, h: HPos| {
                let style = font(size, bold).color(&colour).pos(Pos::new(h, VPos::Top));
                root.draw(&Text::new(s.to_string(), (x, y), style))
                    .map_err(draw_error)
            };
        let mut y = MARGIN;
        for l in &title_lines {
            text(l, (MARGIN, y), text_size::TITLE, true, INK, HPos::Left)?;
            y += line(text_size::TITLE);
        }
        for l in &subtitle_lines {
            text(
                l,
                (MARGIN, y),
                text_size::SUBTITLE,
                false,
                MUTED,
                HPos::Left,
            )?;
            y += line(text_size::SUBTITLE);
        }
        y += 12;
        // Legend: swatches and labels placed by their measured widths.
        let width = |s: &str, bold: bool| {
            root.estimate_text_size(s, &TextStyle::from(font(text_size::BODY, bold)))
                .map_or(8 * s.len() as i32, |(w, _)| i32::try_from(w).unwrap_or(0))
        };
        let mut x = MARGIN;
        text(
            "IMD quintile:",
            (x, y),
            text_size::BODY,
            true,
            INK,
            HPos::Left,
        )?;
        x += width("IMD quintile:", true) + 12;
        for q in 1..=5u8 {
            root.draw(&Rectangle::new(
                [(x, y - 1), (x + 13, y + 12)],
                style::quintile_colour(q).filled(),
            ))
            .map_err(draw_error)?;
            let label = match q {
                1 => "1 most deprived".to_string(),
                5 => "5 least deprived".to_string(),
                q => q.to_string(),
            };
            text(&label, (x + 20, y), text_size::BODY, false, INK, HPos::Left)?;
            x += 20 + width(&label, false) + 18;
        }
        y += legend;
        // Bars.
        for bar in &bars {
            let total: f64 = bar.people.iter().sum();
            text(
                &bar.label,
                (MARGIN, y),
                text_size::BODY,
                true,
                INK,
                HPos::Left,
            )?;
            let top = y + line(text_size::BODY) + 2;
            let mut start = 0.0;
            for (i, people) in bar.people.iter().enumerate() {
                let q = u8::try_from(i + 1).unwrap_or(5);
                let share = people / total;
                let x0 = MARGIN + (f64::from(inner) * start).round() as i32;
                let x1 = MARGIN + (f64::from(inner) * (start + share)).round() as i32;
                start += share;
                if x1 <= x0 {
                    continue;
                }
                let fill = style::quintile_colour(q);
                root.draw(&Rectangle::new([(x0, top), (x1, top + BAR)], fill.filled()))
                    .map_err(draw_error)?;
                if x1 - x0 >= 40 {
                    text(
                        &format_percent(share * 100.0, 0),
                        ((x0 + x1) / 2, top + 6),
                        text_size::TICK,
                        false,
                        style::text_on(fill),
                        HPos::Center,
                    )?;
                }
            }
            y += row;
        }
        for l in &source_lines {
            text(l, (MARGIN, y), text_size::SMALL, false, MUTED, HPos::Left)?;
            y += line(text_size::SMALL);
        }
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintile_bars_render_every_label_and_refuse_empty_data() {
        let bars = [
            QuintileBar {
                label: "Riverside PCN".into(),
                people: [300.0, 200.0, 100.0, 50.0, 0.0],
            },
            QuintileBar {
                label: "England & Wales <test>".into(),
                people: [1.0; 5],
            },
        ];
        let svg = render_svg(&bars, "A title", "A subtitle", "Source: test").expect("renders");
        let summary = crate::charts::check::check_svg(&svg).expect("well-formed");
        assert!(summary.has_text("Riverside PCN"));
        assert!(summary.has_text("England & Wales <test>"));
        assert!(summary.has_text("20%"));
        let empty = [QuintileBar {
            label: "x".into(),
            people: [0.0; 5],
        }];
        assert!(render_svg(&empty, "t", "s", "src").is_err());
    }
}
