//! The SII trend: one indicator's slope index of inequality in successive runs, with its
//! confidence limits as a band (or bars when there is a single run) and a zero line (no
//! inequality). The caption states the latest value and the first one for comparison.
//!
//! The caller chooses the runs (x labels in order: run dates or years); one run draws a single
//! point and says the trend builds up with later runs.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axis::{self, Axis, Plot};
use super::layout::{Canvas, Key, LegendEntry, Marker, Rect, Shape, Weight};
use super::style::{self, INK, MUTED, PRIMARY, REFERENCE, Scale, Unit, text_size};
use super::{Chart, ChartError, ChartText};

/// One run's SII.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The x label: the run's date or period ("2024-25").
    pub label: String,
    /// The SII (least minus most deprived) in the unit's difference; NaN when the run had none.
    pub sii: f64,
    /// Its 95% confidence limits.
    pub limits: Option<(f64, f64)>,
}

/// The data of an SII trend chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// The indicator: "Smoking prevalence".
    pub measure: String,
    /// The indicator's unit (the SII is a difference in it).
    pub unit: Unit,
    /// Runs, oldest first.
    pub points: Vec<TrendPoint>,
}

/// Render an SII trend as SVG.
///
/// # Errors
/// [`ChartError::NoData`] when no run has an SII; [`ChartError::Invalid`] for limits the wrong
/// way round or an infinite value.
pub fn render_svg(data: &Trend, text: &ChartText) -> Result<String, ChartError> {
    super::svg(data, text)
}

/// Render an SII trend as a PNG file (twice the SVG's resolution).
///
/// # Errors
/// As [`render_svg`], and [`ChartError::Write`] when the file cannot be written.
pub fn render_png(data: &Trend, text: &ChartText, path: &Path) -> Result<(), ChartError> {
    super::png(data, text, path, Scale::PNG)
}

impl Trend {
    fn invalid(message: String) -> ChartError {
        ChartError::Invalid {
            chart: Self::KIND,
            message,
        }
    }

    /// (slot index from 0, point) of the runs with an SII.
    fn drawn(&self) -> Vec<(usize, &TrendPoint)> {
        self.points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.sii.is_finite())
            .collect()
    }

    fn limits_text(&self, p: &TrendPoint) -> String {
        let d = self.unit.decimals(p.sii);
        p.limits
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(a, b)| {
                format!(
                    " (95% CI {} to {})",
                    style::format_number(a, d),
                    style::format_number(b, d)
                )
            })
            .unwrap_or_default()
    }

    fn captions(&self) -> Vec<String> {
        let drawn = self.drawn();
        let suffix = self.unit.difference_suffix();
        let mut captions = Vec::new();
        if let Some((_, last)) = drawn.last() {
            captions.push(format!(
                "Latest run ({}): SII {} {}{}",
                last.label,
                style::format_signed(last.sii, self.unit.decimals(last.sii)),
                suffix,
                self.limits_text(last)
            ));
        }
        if drawn.len() > 1
            && let Some((_, first)) = drawn.first()
        {
            captions.push(format!(
                "First run shown ({}): SII {} {}{}",
                first.label,
                style::format_signed(first.sii, self.unit.decimals(first.sii)),
                suffix,
                self.limits_text(first)
            ));
        }
        captions
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = vec![
            "SII: the modelled difference between the least and the most deprived ends of the \
             population; further from zero means a steeper gap."
                .to_string(),
        ];
        let missing: Vec<&str> = self
            .points
            .iter()
            .filter(|p| !p.sii.is_finite())
            .map(|p| p.label.as_str())
            .collect();
        if !missing.is_empty() {
            notes.push(format!("No SII for {}.", missing.join(", ")));
        }
        notes
    }
}

impl Chart for Trend {
    const KIND: &'static str = "SII trend";

    fn check(&self) -> Result<(), ChartError> {
        for p in &self.points {
            if p.sii.is_infinite() {
                return Err(Self::invalid(format!(
                    "run {}: the SII is infinite",
                    p.label
                )));
            }
            if let Some((a, b)) = p.limits
                && a.is_finite()
                && b.is_finite()
                && a > b
            {
                return Err(Self::invalid(format!(
                    "run {}: lower limit {a} is above upper limit {b}",
                    p.label
                )));
            }
        }
        if self.drawn().is_empty() {
            return Err(ChartError::NoData {
                chart: Self::KIND,
                reason: "no run has an SII".into(),
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
        let body = canvas.frame(text, &self.captions(), &self.notes())?;
        let drawn = self.drawn();
        let n = self.points.len();

        let point_marker = Marker {
            shape: Shape::Circle,
            radius: 5.0,
            fill: Some(PRIMARY),
            stroke: Some((style::BACKGROUND, 1.0)),
        };
        let with_limits: Vec<(usize, f64, f64)> = drawn
            .iter()
            .filter_map(|(i, p)| {
                p.limits
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .map(|(a, b)| (*i, a, b))
            })
            .collect();
        let band = with_limits.len() >= 2;
        let band_fill = style::tint(PRIMARY, 0.8);
        let mut legend = vec![LegendEntry::new(Key::Marker(point_marker), "SII")];
        if band {
            legend.push(LegendEntry::new(
                Key::Swatch {
                    fill: band_fill,
                    stroke: None,
                },
                "95% confidence interval",
            ));
        } else if !with_limits.is_empty() {
            legend.push(LegendEntry::new(
                Key::ErrorBar {
                    colour: MUTED,
                    marker: point_marker,
                },
                "SII with 95% confidence interval",
            ));
            legend.remove(0);
        }
        legend.push(LegendEntry::new(
            Key::Line {
                colour: REFERENCE,
                width: 1.5,
                dashed: true,
            },
            "No inequality (SII = 0)",
        ));
        let legend_bottom = canvas.legend_rows(&legend, body.x0, body.x1, body.y0)?;

        // The y range always holds zero, so the distance from "no inequality" is visible.
        let mut lo: f64 = 0.0;
        let mut hi: f64 = 0.0;
        for (_, p) in &drawn {
            lo = lo.min(p.sii);
            hi = hi.max(p.sii);
        }
        for (_, a, b) in &with_limits {
            lo = lo.min(*a);
            hi = hi.max(*b);
        }
        // A little room beyond the data, so zero is not drawn on the plot's edge, and no more:
        // rounding the range out to whole ticks would waste a band of the plot.
        let pad = ((hi - lo) * 0.06).max(f64::EPSILON);
        let axis = Axis::tight(lo - pad, hi + pad, 5, &|v, d| style::format_number(v, d));
        let y_width = axis::y_axis_width(&canvas, &axis)?;
        let plot_rect = Rect {
            x0: body.x0 + y_width,
            y0: legend_bottom + canvas.px(10.0),
            x1: body.x1 - canvas.px(8.0),
            y1: body.y1 - axis::x_axis_height(&canvas, 1),
        };
        if plot_rect.height() < canvas.px(60.0) || plot_rect.width() < canvas.px(100.0) {
            return Err(Self::invalid(
                "the title and notes leave no room for the plot".into(),
            ));
        }
        // One slot per run; a single run sits in the middle.
        let plot = Plot::new(plot_rect, (-0.5, n as f64 - 0.5), (axis.min, axis.max));
        axis::draw_y_axis(
            &canvas,
            &plot,
            &axis,
            &format!("SII, {} ({})", self.measure, self.unit.difference_suffix()),
            body.x0 + canvas.line_height(text_size::BODY) / 2,
        )?;

        // X labels, thinned out when they would collide.
        let tick_style = canvas.font(text_size::TICK, Weight::Normal, MUTED);
        let slot = f64::from(plot_rect.width()) / n.max(1) as f64;
        let mut widest = 0;
        for p in &self.points {
            widest = widest.max(canvas.text_width(&p.label, &tick_style)?);
        }
        let every = ((f64::from(widest + canvas.px(12.0)) / slot).ceil() as usize).max(1);
        for (i, p) in self.points.iter().enumerate() {
            let x = plot.x.px(i as f64);
            canvas.path(
                &[(x, plot_rect.y1), (x, plot_rect.y1 + canvas.px(4.0))],
                style::AXIS,
                1.0,
            )?;
            let last = i + 1 == n;
            // Keep the latest run's label; drop the one before it if they would collide.
            let shown = if last {
                true
            } else {
                i % every == 0 && (n - 1 - i) >= every
            };
            if shown {
                canvas.text(
                    &p.label,
                    (x, plot_rect.y1 + canvas.px(6.0)),
                    &tick_style,
                    HPos::Center,
                    VPos::Top,
                )?;
            }
        }
        axis::draw_x_title(&canvas, &plot, "Run", 1)?;

        // Band, zero line, line and points.
        if band {
            let mut polygon: Vec<(i32, i32)> = with_limits
                .iter()
                .map(|(i, _, b)| plot.at(*i as f64, *b))
                .collect();
            polygon.extend(
                with_limits
                    .iter()
                    .rev()
                    .map(|(i, a, _)| plot.at(*i as f64, *a)),
            );
            canvas.polygon(&polygon, band_fill, 1.0)?;
        }
        let zero = plot.y.px(0.0);
        canvas.dashed(
            &[(plot_rect.x0, zero), (plot_rect.x1, zero)],
            REFERENCE,
            1.5,
        )?;
        let line: Vec<(i32, i32)> = drawn
            .iter()
            .map(|(i, p)| plot.at(*i as f64, p.sii))
            .collect();
        canvas.path(&line, PRIMARY, 2.5)?;
        if !band {
            let cap = canvas.px(5.0);
            for (i, a, b) in &with_limits {
                let x = plot.x.px(*i as f64);
                let (ya, yb) = (plot.y.px(*a), plot.y.px(*b));
                canvas.path(&[(x, ya), (x, yb)], MUTED, 1.5)?;
                canvas.path(&[(x - cap, ya), (x + cap, ya)], MUTED, 1.5)?;
                canvas.path(&[(x - cap, yb), (x + cap, yb)], MUTED, 1.5)?;
            }
        }
        let label_style = canvas.font(text_size::TICK, Weight::Normal, INK);
        for (i, p) in &drawn {
            let (x, y) = plot.at(*i as f64, p.sii);
            canvas.marker((x, y), &point_marker)?;
        }
        // Value labels above the first and latest points (all of them when there are few),
        // placed above the interval so they never cover the band.
        let labelled: Vec<&(usize, &TrendPoint)> = if drawn.len() <= 6 {
            drawn.iter().collect()
        } else {
            drawn.first().into_iter().chain(drawn.last()).collect()
        };
        for (i, p) in labelled {
            let x = plot.x.px(*i as f64);
            let top = p
                .limits
                .map(|(_, b)| b)
                .filter(|b| b.is_finite())
                .map_or(p.sii, |b| b.max(p.sii));
            let y = plot.y.px(top) - canvas.px(if band { 6.0 } else { 12.0 });
            let label = style::format_signed(p.sii, self.unit.decimals(p.sii));
            let w = canvas.text_width(&label, &label_style)?;
            let h = canvas.line_height(text_size::TICK);
            let left = (x - w / 2).clamp(
                plot_rect.x0 + canvas.px(2.0),
                plot_rect.x1 - w - canvas.px(2.0),
            );
            canvas.rect(
                Rect {
                    x0: left - canvas.px(2.0),
                    y0: y - h,
                    x1: left + w + canvas.px(2.0),
                    y1: y,
                },
                Some(style::BACKGROUND),
                None,
            )?;
            canvas.text(
                &label,
                (left, y - h / 2),
                &label_style,
                HPos::Left,
                VPos::Center,
            )?;
        }
        if drawn.len() == 1 {
            // In the left half (the single point sits in the middle, clear of it), in whichever
            // vertical quarter keeps clear of the zero line.
            let style = canvas.font(text_size::BODY, Weight::Normal, MUTED);
            let width = plot_rect.width() / 2 - canvas.px(40.0);
            let lines = canvas.wrap(ONE_RUN, &style, width)?;
            let height = canvas.line_height(text_size::BODY) * lines.len() as i32;
            let clear = |top: i32| {
                let avoid = canvas.px(8.0);
                !(top - avoid..=top + height + avoid).contains(&zero)
            };
            let quarter = plot_rect.height() / 4;
            let candidates = [
                plot_rect.y0 + quarter - height / 2,
                plot_rect.y1 - quarter - height / 2,
                plot_rect.y0 + 2 * quarter - height / 2,
            ];
            let top = candidates
                .iter()
                .copied()
                .find(|t| clear(*t))
                .unwrap_or(candidates[1]);
            // No box behind it: a box would cut the grid lines it crosses.
            let left = plot_rect.x0 + canvas.px(12.0);
            canvas.lines(&lines, left, top, &style, text_size::BODY)?;
        }
        axis::draw_axis_lines(&canvas, &plot)
    }
}

/// Said in the plot when there is a single run.
const ONE_RUN: &str = "Only one run so far: the trend builds up as later runs are added.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::check::{check_svg, png_size};

    fn data(runs: usize) -> Trend {
        Trend {
            measure: "Smoking prevalence".into(),
            unit: Unit::Percent,
            points: (0..runs)
                .map(|i| {
                    let sii = -14.0 + 1.1 * i as f64;
                    TrendPoint {
                        label: format!("{}-{:02}", 2019 + i, 20 + i),
                        sii,
                        limits: Some((sii - 2.4, sii + 2.2)),
                    }
                })
                .collect(),
        }
    }

    fn text() -> ChartText {
        ChartText::new(
            "The smoking gap is narrowing",
            "Source: healthgap runs 2019-20 to 2024-25",
        )
    }

    #[test]
    fn trend_svg_has_axes_legend_and_caption() {
        let s = check_svg(&render_svg(&data(6), &text()).expect("renders")).expect("xml");
        for t in [
            "The smoking gap is narrowing",
            "SII, Smoking prevalence (percentage points)",
            "Run",
            "SII",
            "95% confidence interval",
            "No inequality (SII = 0)",
            "2019-20",
            "2024-25",
        ] {
            assert!(s.has_text(t), "missing {t:?} in {:?}", s.texts);
        }
        assert!(s.has_text_containing("Latest run (2024-25): SII \u{2212}8.5 percentage points (95% CI \u{2212}10.9 to \u{2212}6.3)"));
        assert!(s.has_text_containing("First run shown (2019-20)"));
    }

    #[test]
    fn trend_single_run_says_so() {
        let s = check_svg(&render_svg(&data(1), &text()).expect("renders")).expect("xml");
        assert!(s.has_text_containing("Only one run so far"));
        assert!(s.has_text_containing("are added."));
        assert!(s.has_text("SII with 95% confidence interval"));
    }

    #[test]
    fn trend_many_runs_thin_labels() {
        let s = check_svg(&render_svg(&data(40), &text()).expect("renders")).expect("xml");
        assert!(s.has_text("2058-59"), "the latest label stays");
        assert!(!s.has_text("2020-21"), "labels are thinned");
    }

    #[test]
    fn trend_degenerate_inputs() {
        let mut d = data(3);
        for p in &mut d.points {
            p.sii = f64::NAN;
        }
        assert!(matches!(
            render_svg(&d, &text()),
            Err(ChartError::NoData { .. })
        ));
        assert!(matches!(
            render_svg(&data(0), &text()),
            Err(ChartError::NoData { .. })
        ));
        let mut d = data(3);
        d.points[1].limits = Some((2.0, 1.0));
        assert!(
            render_svg(&d, &text())
                .expect_err("limits")
                .to_string()
                .contains("run 2020-21")
        );
        let mut d = data(3);
        d.points[1].sii = f64::NAN;
        let s = check_svg(&render_svg(&d, &text()).expect("gap")).expect("xml");
        assert!(s.has_text_containing("No SII for 2020-21"));
        let mut d = data(3);
        for p in &mut d.points {
            p.sii = 0.0;
            p.limits = None;
        }
        check_svg(&render_svg(&d, &text()).expect("flat zero")).expect("xml");
    }

    #[test]
    fn trend_png_size_and_determinism() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        render_png(&data(5), &text(), &a).expect("renders");
        render_png(&data(5), &text(), &b).expect("renders");
        let (a, b) = (
            std::fs::read(a).expect("read"),
            std::fs::read(b).expect("read"),
        );
        assert_eq!(png_size(&a), Some((1800, 1120)));
        assert_eq!(a, b);
    }
}
