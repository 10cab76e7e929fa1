//! The funnel plot: every area (PCN) of an ICB or of England as a point against its denominator,
//! the 95% and 99.8% control limits around the average as curves, and the area of interest
//! highlighted and labelled. Points beyond the 99.8% limits are drawn larger, darker and as
//! diamonds, so they stand out in greyscale too.
//!
//! The limits come from `stats::funnel::funnel_limits` as they are ([`FunnelRow`]s: for rates and
//! ratios each limit has its own denominator, which becomes its x); each point's significance
//! from `stats::funnel` too when the caller has it, otherwise from the drawn limits.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axis::{self, Axis, Plot};
use super::layout::{Canvas, Key, LegendEntry, Marker, Rect, Shape, Weight};
use super::style::{self, INK, MUTED, Scale, Unit, text_size};
use super::{Chart, ChartError, ChartText};
use crate::stats::funnel::{FunnelRow, Significance};

/// One area on the funnel.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelPoint {
    /// The area's code (e.g. a PCN's ODS code `U12345`).
    pub code: String,
    /// Its name, used to label the highlighted area.
    pub name: String,
    /// The x value: population, or expected events for ratios.
    pub denominator: f64,
    /// The value in the chart's unit; NaN when suppressed (the point is left out, with a note).
    pub value: f64,
    /// The significance from `stats::funnel`, when known; otherwise read off the drawn limits.
    pub significance: Option<Significance>,
}

/// The data of a funnel plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    /// What is measured, for the y axis title: "Smoking prevalence".
    pub measure: String,
    /// Its unit.
    pub unit: Unit,
    /// The x axis title: "Registered patients aged 15+".
    pub denominator_label: String,
    /// Every area.
    pub points: Vec<FunnelPoint>,
    /// The control limits, as `stats::funnel::funnel_limits` returns them.
    pub limits: Vec<FunnelRow>,
    /// The centre line; `None` takes the rows' baseline (proportions and rates).
    pub baseline: Option<f64>,
    /// What the centre line is: "ICB average", "England".
    pub baseline_label: String,
    /// The code of the area to highlight and label.
    pub highlight: Option<String>,
}

/// Render a funnel plot as SVG.
///
/// # Errors
/// [`ChartError::NoData`] with no drawable point or no finite control limits;
/// [`ChartError::Invalid`] for a zero, negative or missing denominator, or a highlighted code
/// that is not among the points.
pub fn render_svg(data: &Funnel, text: &ChartText) -> Result<String, ChartError> {
    super::svg(data, text)
}

/// Render a funnel plot as a PNG file (twice the SVG's resolution).
///
/// # Errors
/// As [`render_svg`], and [`ChartError::Write`] when the file cannot be written.
pub fn render_png(data: &Funnel, text: &ChartText, path: &Path) -> Result<(), ChartError> {
    super::png(data, text, path, Scale::PNG)
}

/// Where a point falls against the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Band {
    Within,
    Beyond95,
    Beyond998,
    NotAssessed,
}

impl Band {
    fn from_significance(s: Significance) -> Band {
        match s {
            Significance::High001 | Significance::Low001 => Band::Beyond998,
            Significance::High025 | Significance::Low025 => Band::Beyond95,
            Significance::NotSignificant => Band::Within,
            Significance::NotApplicable => Band::NotAssessed,
        }
    }

    fn marker(self) -> Marker {
        match self {
            Band::Within => Marker {
                shape: Shape::Circle,
                radius: 4.5,
                fill: Some(style::NEUTRAL),
                stroke: None,
            },
            Band::Beyond95 => Marker {
                shape: Shape::Circle,
                radius: 4.5,
                fill: Some(style::SECONDARY),
                stroke: Some((style::PRIMARY, 1.0)),
            },
            Band::Beyond998 => Marker {
                shape: Shape::Diamond,
                radius: 5.0,
                fill: Some(style::PRIMARY),
                stroke: Some((INK, 0.75)),
            },
            Band::NotAssessed => Marker {
                shape: Shape::Circle,
                radius: 4.0,
                fill: None,
                stroke: Some((style::NEUTRAL, 1.0)),
            },
        }
    }

    fn phrase(self, above: bool) -> &'static str {
        match (self, above) {
            (Band::Within, _) => "within the 95% limits",
            (Band::Beyond95, true) => "above the 95% limit",
            (Band::Beyond95, false) => "below the 95% limit",
            (Band::Beyond998, true) => "above the 99.8% limit",
            (Band::Beyond998, false) => "below the 99.8% limit",
            (Band::NotAssessed, _) => "not assessed",
        }
    }
}

/// The four limit curves as (x, y) points sorted by x: lower 95%, upper 95%, lower 99.8%, upper
/// 99.8% (the order of [`FunnelRow::limits`]).
fn curves(rows: &[FunnelRow]) -> [Vec<(f64, f64)>; 4] {
    let mut out: [Vec<(f64, f64)>; 4] = Default::default();
    for row in rows {
        for (i, curve) in out.iter_mut().enumerate() {
            let x = row
                .denominators
                .and_then(|d| d.get(i).copied())
                .unwrap_or(row.x);
            let y = row.limits.get(i).copied().unwrap_or(f64::NAN);
            if x.is_finite() && x > 0.0 && y.is_finite() {
                curve.push((x, y));
            }
        }
    }
    for curve in &mut out {
        curve.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// A curve's value at `x` by linear interpolation; `None` outside its range.
fn interpolate(curve: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = curve.partition_point(|(cx, _)| *cx < x);
    match (i.checked_sub(1).and_then(|j| curve.get(j)), curve.get(i)) {
        (_, Some(&(x1, y1))) if x1 == x => Some(y1),
        (Some(&(x0, y0)), Some(&(x1, y1))) => Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0)),
        _ => None,
    }
}

impl Funnel {
    fn invalid(message: String) -> ChartError {
        ChartError::Invalid {
            chart: Self::KIND,
            message,
        }
    }

    fn baseline_value(&self) -> Option<f64> {
        self.baseline
            .or_else(|| self.limits.iter().find_map(|r| r.baseline))
            .filter(|b| b.is_finite())
    }

    fn drawn(&self) -> Vec<&FunnelPoint> {
        self.points.iter().filter(|p| p.value.is_finite()).collect()
    }

    fn band(&self, p: &FunnelPoint, curves: &[Vec<(f64, f64)>; 4]) -> Band {
        if let Some(s) = p.significance {
            return Band::from_significance(s);
        }
        let at = |i: usize| curves.get(i).and_then(|c| interpolate(c, p.denominator));
        match (at(0), at(1), at(2), at(3)) {
            (_, _, Some(lo3), Some(hi3)) if p.value < lo3 || p.value > hi3 => Band::Beyond998,
            (Some(lo2), Some(hi2), _, _) if p.value < lo2 || p.value > hi2 => Band::Beyond95,
            (Some(_), Some(_), _, _) => Band::Within,
            _ => Band::NotAssessed,
        }
    }

    fn highlighted(&self) -> Option<&FunnelPoint> {
        let code = self.highlight.as_deref()?;
        self.points.iter().find(|p| p.code == code)
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "Control limits: 95% (about 2 standard deviations) and 99.8% (about 3) around the {}. \
             An area outside the 99.8% limits is very unlikely to differ by chance alone.",
            self.baseline_label
        )];
        let hidden = self.points.len() - self.drawn().len();
        if hidden > 0 {
            notes.push(format!(
                "{hidden} area{} not shown: value suppressed or missing.",
                if hidden == 1 { "" } else { "s" }
            ));
        }
        if let Some(p) = self.highlighted()
            && !p.value.is_finite()
        {
            notes.push(format!("{} has no value to show.", p.name));
        }
        notes
    }
}

impl Chart for Funnel {
    const KIND: &'static str = "funnel plot";

    fn check(&self) -> Result<(), ChartError> {
        for p in &self.points {
            if !(p.denominator.is_finite() && p.denominator > 0.0) {
                return Err(Self::invalid(format!(
                    "area {} ({}) has denominator {}: it must be a number above zero",
                    p.code, p.name, p.denominator
                )));
            }
            if p.value.is_infinite() {
                return Err(Self::invalid(format!(
                    "area {} ({}) has an infinite value",
                    p.code, p.name
                )));
            }
        }
        if let Some(code) = &self.highlight
            && self.highlighted().is_none()
        {
            return Err(Self::invalid(format!(
                "the highlighted area {code} is not among the points"
            )));
        }
        if self.drawn().is_empty() {
            return Err(ChartError::NoData {
                chart: Self::KIND,
                reason: "no area has a value".into(),
            });
        }
        if curves(&self.limits).iter().all(|c| c.len() < 2) {
            return Err(ChartError::NoData {
                chart: Self::KIND,
                reason: "the control limits are all missing".into(),
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
        let body = canvas.frame(text, &[], &self.notes())?;
        let points = self.drawn();
        let curves = curves(&self.limits);
        let baseline = self.baseline_value();
        let highlight = self.highlighted().filter(|p| p.value.is_finite());

        // Legend.
        let limit_line = |dashed| Key::Line {
            colour: MUTED,
            width: 1.5,
            dashed,
        };
        let mut legend = Vec::new();
        if let Some(b) = baseline {
            legend.push(LegendEntry::new(
                Key::Line {
                    colour: INK,
                    width: 1.5,
                    dashed: false,
                },
                format!("{}: {}", self.baseline_label, self.unit.format(b)),
            ));
        }
        legend.push(LegendEntry::new(limit_line(true), "95% limits"));
        legend.push(LegendEntry::new(limit_line(false), "99.8% limits"));
        let bands: Vec<Band> = points.iter().map(|p| self.band(p, &curves)).collect();
        for (band, label) in [
            (Band::Within, "Within 95% limits"),
            (Band::Beyond95, "Outside 95% limits"),
            (Band::Beyond998, "Outside 99.8% limits"),
            (Band::NotAssessed, "Not assessed"),
        ] {
            // Always list the three main bands, so a board sees that none is outside; list
            // "not assessed" only when it occurs.
            if band != Band::NotAssessed || bands.contains(&band) {
                legend.push(LegendEntry::new(Key::Marker(band.marker()), label));
            }
        }
        let highlight_marker = |band: Band| Marker {
            radius: 6.5,
            fill: Some(style::HIGHLIGHT),
            stroke: Some((INK, 1.25)),
            ..band.marker()
        };
        if let Some(p) = highlight {
            legend.push(LegendEntry::new(
                Key::Marker(highlight_marker(Band::Within)),
                p.name.clone(),
            ));
        }
        let legend_bottom = canvas.legend_rows(&legend, body.x0, body.x1, body.y0)?;

        // Ranges: x from zero to the largest denominator; y over the points, the centre line and
        // the limits where there are points (the funnel's mouth near zero would flatten the rest).
        let x_max = points.iter().map(|p| p.denominator).fold(0.0, f64::max);
        let x_min_point = points
            .iter()
            .map(|p| p.denominator)
            .fold(f64::INFINITY, f64::min);
        let x_axis = Axis::tight(0.0, x_max * 1.04, 6, &|v, d| style::format_number(v, d));
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for v in points.iter().map(|p| p.value).chain(baseline) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        for curve in &curves {
            for (x, y) in curve {
                if *x >= 0.8 * x_min_point && *x <= x_axis.max {
                    lo = lo.min(*y);
                    hi = hi.max(*y);
                }
            }
        }
        let pad = (hi - lo).abs() * 0.04;
        let unit = self.unit.clone();
        let y_axis = Axis::nice(lo - pad, hi + pad, 5, &|v, d| match unit {
            Unit::Percent => style::format_percent(v, d),
            _ => style::format_number(v, d),
        });
        let y_width = axis::y_axis_width(&canvas, &y_axis)?;
        let plot_rect = Rect {
            x0: body.x0 + y_width,
            y0: legend_bottom + canvas.px(10.0),
            x1: body.x1 - canvas.px(12.0),
            y1: body.y1 - axis::x_axis_height(&canvas, 1),
        };
        if plot_rect.height() < canvas.px(60.0) || plot_rect.width() < canvas.px(100.0) {
            return Err(Self::invalid(
                "the title and notes leave no room for the plot".into(),
            ));
        }
        let plot = Plot::new(
            plot_rect,
            (x_axis.min, x_axis.max),
            (y_axis.min, y_axis.max),
        );
        axis::draw_y_axis(
            &canvas,
            &plot,
            &y_axis,
            &self.unit.axis_title(&self.measure),
            body.x0 + canvas.line_height(text_size::BODY) / 2,
        )?;
        axis::draw_x_axis(&canvas, &plot, &x_axis, &self.denominator_label)?;

        // Centre line and limits.
        let x_range = (x_axis.min, x_axis.max);
        let y_range = (y_axis.min, y_axis.max);
        if let Some(b) = baseline {
            canvas.path(&[plot.at(x_axis.min, b), plot.at(x_axis.max, b)], INK, 1.5)?;
        }
        for (i, curve) in curves.iter().enumerate() {
            for run in axis::clip_polyline(curve, x_range, y_range) {
                let px: Vec<(i32, i32)> = run.iter().map(|(x, y)| plot.at(*x, *y)).collect();
                if i < 2 {
                    canvas.dashed(&px, MUTED, 1.5)?;
                } else {
                    canvas.path(&px, MUTED, 1.5)?;
                }
            }
        }

        // Points, least notable first so outliers sit on top.
        let mut order: Vec<usize> = (0..points.len()).collect();
        let rank = |b: Band| match b {
            Band::NotAssessed => 0,
            Band::Within => 1,
            Band::Beyond95 => 2,
            Band::Beyond998 => 3,
        };
        order.sort_by_key(|&i| bands.get(i).map_or(0, |b| rank(*b)));
        for i in order {
            if let (Some(p), Some(band)) = (points.get(i), bands.get(i)) {
                canvas.marker(plot.at(p.denominator, p.value), &band.marker())?;
            }
        }

        // The area of interest, on top, with its name, value and where it falls.
        if let Some(p) = highlight {
            let band = self.band(p, &curves);
            let (x, y) = plot.at(p.denominator, p.value);
            canvas.marker((x, y), &highlight_marker(band))?;
            let above = baseline.is_none_or(|b| p.value > b);
            let label = format!(
                "{}: {} ({})",
                p.name,
                self.unit.format(p.value),
                band.phrase(above)
            );
            let style = canvas.font(text_size::BODY, Weight::Bold, INK);
            let w = canvas.text_width(&label, &style)?;
            let h = canvas.line_height(text_size::BODY);
            let gap = canvas.px(10.0);
            // Right of the point if it fits, else left; above it, away from the crowd near the
            // centre line, unless that leaves the plot.
            let left = if x + gap + w <= plot_rect.x1 {
                x + gap
            } else {
                (x - gap - w).max(plot_rect.x0 + canvas.px(2.0))
            };
            let top = if y - h - canvas.px(4.0) > plot_rect.y0 {
                y - h - canvas.px(4.0)
            } else {
                y + canvas.px(6.0)
            };
            canvas.rect(
                Rect {
                    x0: left - canvas.px(3.0),
                    y0: top,
                    x1: left + w + canvas.px(3.0),
                    y1: top + h,
                },
                Some(style::BACKGROUND),
                Some((style::HIGHLIGHT, 1.0)),
            )?;
            canvas.text(
                &label,
                (left, top + h / 2),
                &style,
                HPos::Left,
                VPos::Center,
            )?;
        }
        axis::draw_axis_lines(&canvas, &plot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::check::{check_svg, png_size};
    use crate::stats::funnel::{FunnelInput, FunnelOptions, FunnelStatistic, funnel_limits};

    fn data() -> Funnel {
        let denominators: Vec<f64> = (0..40).map(|i| 4000.0 + 900.0 * f64::from(i)).collect();
        let numerators: Vec<f64> = denominators
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d * (0.15 + 0.01 * ((i as f64 * 1.7).sin())) + if i == 7 { 300.0 } else { 0.0 }
            })
            .collect();
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
        let limits = funnel_limits(&input, &options).expect("limits");
        Funnel {
            measure: "Smoking prevalence".into(),
            unit: Unit::Percent,
            denominator_label: "Registered patients aged 15+".into(),
            points: numerators
                .iter()
                .zip(&denominators)
                .enumerate()
                .map(|(i, (n, d))| FunnelPoint {
                    code: format!("U{i:05}"),
                    name: format!("PCN {i} & Partners"),
                    denominator: *d,
                    value: n / d * 100.0,
                    significance: None,
                })
                .collect(),
            limits,
            baseline: None,
            baseline_label: "ICB average".into(),
            highlight: Some("U00007".into()),
        }
    }

    fn text() -> ChartText {
        ChartText::new(
            "Smoking across the ICB's PCNs",
            "Source: healthgap run test",
        )
    }

    #[test]
    fn funnel_svg_has_axes_legend_and_highlight() {
        let s = check_svg(&render_svg(&data(), &text()).expect("renders")).expect("xml");
        for t in [
            "Smoking across the ICB's PCNs",
            "Smoking prevalence (%)",
            "Registered patients aged 15+",
            "95% limits",
            "99.8% limits",
            "Within 95% limits",
            "Outside 99.8% limits",
            "PCN 7 & Partners",
        ] {
            assert!(s.has_text(t), "missing {t:?} in {:?}", s.texts);
        }
        assert!(s.has_text_containing("PCN 7 & Partners: "));
        assert!(s.has_text_containing("above the 99.8% limit"));
        assert!(s.has_text_containing("ICB average: "));
    }

    #[test]
    fn funnel_png_size_and_determinism() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        render_png(&data(), &text(), &a).expect("renders");
        render_png(&data(), &text(), &b).expect("renders");
        let (a, b) = (
            std::fs::read(a).expect("read"),
            std::fs::read(b).expect("read"),
        );
        assert_eq!(png_size(&a), Some((1800, 1120)));
        assert_eq!(a, b);
    }

    #[test]
    fn funnel_degenerate_inputs() {
        let mut d = data();
        for row in &mut d.limits {
            row.limits = [f64::NAN; 4];
        }
        assert!(matches!(
            render_svg(&d, &text()),
            Err(ChartError::NoData { .. })
        ));
        let mut d = data();
        d.points.clear();
        d.highlight = None;
        assert!(matches!(
            render_svg(&d, &text()),
            Err(ChartError::NoData { .. })
        ));
        let mut d = data();
        d.points[3].denominator = 0.0;
        assert!(
            render_svg(&d, &text())
                .expect_err("zero")
                .to_string()
                .contains("U00003")
        );
        let mut d = data();
        d.highlight = Some("NOPE".into());
        assert!(
            render_svg(&d, &text())
                .expect_err("code")
                .to_string()
                .contains("NOPE")
        );
        let mut d = data();
        d.points[7].value = f64::NAN;
        let s = check_svg(&render_svg(&d, &text()).expect("suppressed")).expect("xml");
        assert!(s.has_text_containing("1 area not shown"));
        assert!(s.has_text_containing("PCN 7 & Partners has no value"));
        // One area only, all at the same value.
        let mut d = data();
        d.points.truncate(1);
        d.highlight = None;
        check_svg(&render_svg(&d, &text()).expect("one point")).expect("xml");
    }

    #[test]
    fn funnel_uses_given_significance() {
        let mut d = data();
        let curves = curves(&d.limits);
        d.points[0].significance = Some(Significance::High001);
        assert_eq!(d.band(&d.points[0], &curves), Band::Beyond998);
        assert_eq!(d.band(&d.points[7], &curves), Band::Beyond998);
        let baseline = d.baseline_value().expect("baseline");
        d.points[20].value = baseline;
        assert_eq!(d.band(&d.points[20], &curves), Band::Within);
    }

    #[test]
    fn interpolate_inside_only() {
        assert_eq!(interpolate(&[(1.0, 1.0), (3.0, 3.0)], 2.0), Some(2.0));
        assert_eq!(interpolate(&[(1.0, 1.0), (3.0, 3.0)], 4.0), None);
    }
}
