//! The gradient chart: an indicator's value in each IMD decile (or quintile) with its confidence
//! interval, the fitted line the slope index of inequality comes from, and SII and RII with their
//! limits in the caption. An optional reference (usually England's value) is a dashed line.
//!
//! The SII itself is computed in `stats::sii`; this file only draws what it is given. The x axis
//! is categorical (one slot per quantile, 1 = most deprived on the left); the fitted line runs
//! over relative rank 0 → 1, placed so that each quantile's population midpoint sits on its slot
//! (with equal populations the line is straight; with unequal ones it bends at the slots, so the
//! fitted value above each point is the one the regression gives that quantile).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axis::{self, Axis, Plot};
use super::layout::{self, Canvas, Key, LegendEntry, Marker, Rect, Shape, Weight};
use super::style::{self, INK, MUTED, REFERENCE, Scale, Unit, text_size};
use super::{Chart, ChartError, ChartText};
use crate::stats::Limits;
use crate::stats::sii::{SiiOptions, SiiResult, ValueType};

/// One quantile's value.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientPoint {
    /// The quantile, 1 = most deprived.
    pub quantile: u8,
    /// The value in the chart's unit; `None` (or NaN) when it is missing or suppressed.
    pub value: Option<f64>,
    /// Lower and upper confidence limits (95%), if known.
    pub limits: Option<(f64, f64)>,
    /// The quantile's population (the regression's weight), if known. When every point has one,
    /// the fitted line is placed by population rank; otherwise quantiles are taken as equal.
    pub population: Option<f64>,
}

/// How the fitted values run between the two ends: the regression's scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FitCurve {
    /// A straight line (the SII without transformation).
    Straight,
    /// Straight on the log scale (rates with `transform`).
    Log,
    /// Straight on the logit scale (proportions with `transform`); values are per `per` (100 for
    /// percentages).
    Logit {
        /// What a proportion of 1 is in the chart's unit.
        per: f64,
    },
}

/// The SII regression: its fitted values at the two ends, and the indices with their limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SiiFit {
    /// Fitted value at relative rank 0 (most deprived end).
    pub most_deprived: f64,
    /// Fitted value at relative rank 1 (least deprived end).
    pub least_deprived: f64,
    /// The scale the regression is straight on.
    pub curve: FitCurve,
    /// The SII, least minus most deprived (the reference's sign with a positive multiplier).
    pub sii: f64,
    /// Its confidence limits.
    pub sii_limits: Option<(f64, f64)>,
    /// The RII, if computed.
    pub rii: Option<f64>,
    /// Its confidence limits.
    pub rii_limits: Option<(f64, f64)>,
    /// The confidence level of the limits in percent (95).
    pub confidence: f64,
}

impl SiiFit {
    /// A straight fit from the intercept (fitted value at the most deprived end, as
    /// `stats::sii::SiiResult::intercept`) and the SII.
    ///
    /// # Examples
    /// ```
    /// use healthgap::charts::gradient::SiiFit;
    /// let fit = SiiFit::from_intercept(30.0, -20.0);
    /// assert_eq!(fit.least_deprived, 10.0);
    /// ```
    pub fn from_intercept(intercept: f64, sii: f64) -> Self {
        SiiFit {
            most_deprived: intercept,
            least_deprived: intercept + sii,
            curve: FitCurve::Straight,
            sii,
            sii_limits: None,
            rii: None,
            rii_limits: None,
            confidence: 95.0,
        }
    }

    /// The fit from `stats::sii::sii`'s result and the options it ran with, in the chart's
    /// unit (values × |multiplier|). Takes the first confidence level's limits. The reference
    /// reports the intercept unscaled without `transform` and scaled with it, and a negative
    /// multiplier flips the SII's sign and inverts the RII; this undoes both, so the fit always
    /// reads least minus most deprived (and RII least over most deprived).
    ///
    /// # Examples
    /// ```
    /// use healthgap::charts::gradient::SiiFit;
    /// use healthgap::stats::sii::{sii, SiiArea, SiiOptions, SiiSpread, SiiValues, ValueType};
    /// let area = SiiArea { quantile: &[1.0, 2.0, 3.0, 4.0, 5.0], population: &[100.0; 5],
    ///     values: SiiValues::Value(&[0.30, 0.25, 0.20, 0.15, 0.10]),
    ///     spread: SiiSpread::StandardError(&[0.01; 5]) };
    /// let mut options = SiiOptions::new(ValueType::Other);
    /// options.multiplier = 100.0;
    /// options.repetitions = 1000;
    /// let fit = SiiFit::from_result(&sii(&area, &options, 1, 0)?, &options);
    /// assert!((fit.most_deprived - 32.5).abs() < 1e-9 && (fit.least_deprived - 7.5).abs() < 1e-9);
    /// assert!((fit.sii + 25.0).abs() < 1e-9);
    /// # Ok::<(), healthgap::stats::StatsError>(())
    /// ```
    pub fn from_result(result: &SiiResult, options: &SiiOptions) -> Self {
        let m = options.multiplier;
        let flipped = m < 0.0;
        let most = if options.transform {
            result.intercept
        } else {
            result.intercept * m.abs()
        };
        let sii = if flipped { -result.sii } else { result.sii };
        let first = |limits: &[Limits]| limits.first().map(|l| (l.lower, l.upper));
        let sii_limits =
            first(&result.sii_limits).map(|(a, b)| if flipped { (-b, -a) } else { (a, b) });
        let invert = |r: f64| if flipped { 1.0 / r } else { r };
        let rii_limits = first(&result.rii_limits)
            .map(|(a, b)| if flipped { (1.0 / b, 1.0 / a) } else { (a, b) });
        let curve = match (options.transform, options.value_type) {
            (true, ValueType::Rate) => FitCurve::Log,
            (true, ValueType::Proportion) => FitCurve::Logit { per: m.abs() },
            _ => FitCurve::Straight,
        };
        SiiFit {
            most_deprived: most,
            least_deprived: most + sii,
            curve,
            sii,
            sii_limits,
            rii: result.rii.map(invert),
            rii_limits,
            confidence: options
                .confidence
                .first()
                .map_or(95.0, |c| c.value() * 100.0),
        }
    }

    /// The fitted value at relative rank `r` (0 = most deprived).
    fn at(&self, r: f64) -> f64 {
        let (a, b) = (self.most_deprived, self.least_deprived);
        let straight = a + (b - a) * r;
        match self.curve {
            FitCurve::Straight => straight,
            FitCurve::Log if a > 0.0 && b > 0.0 => (a.ln() + (b.ln() - a.ln()) * r).exp(),
            FitCurve::Logit { per } if per > 0.0 => {
                let (p, q) = (a / per, b / per);
                if p > 0.0 && p < 1.0 && q > 0.0 && q < 1.0 {
                    let logit = |x: f64| (x / (1.0 - x)).ln();
                    let z = logit(p) + (logit(q) - logit(p)) * r;
                    per / (1.0 + (-z).exp())
                } else {
                    straight
                }
            }
            _ => straight,
        }
    }
}

/// A horizontal reference line, e.g. England's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The legend label, e.g. "England".
    pub label: String,
    /// The value.
    pub value: f64,
}

/// The data of a gradient chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradient {
    /// What is measured, for the y axis title: "Smoking prevalence".
    pub measure: String,
    /// Its unit.
    pub unit: Unit,
    /// How many quantiles the deprivation scale has: 10 (deciles) or 5 (quintiles).
    pub quantiles: u8,
    /// One point per quantile with data (in any order).
    pub points: Vec<GradientPoint>,
    /// The SII regression, when it was computed.
    pub fit: Option<SiiFit>,
    /// A reference line (England).
    pub reference: Option<Reference>,
}

/// Render a gradient chart as SVG.
///
/// # Errors
/// [`ChartError::NoData`] when no quantile has a value; [`ChartError::Invalid`] for a quantile
/// outside 1–`quantiles` or repeated, limits the wrong way round, or a fit or reference that is
/// not a finite number.
pub fn render_svg(data: &Gradient, text: &ChartText) -> Result<String, ChartError> {
    super::svg(data, text)
}

/// Render a gradient chart as a PNG file (twice the SVG's resolution).
///
/// # Errors
/// As [`render_svg`], and [`ChartError::Write`] when the file cannot be written.
pub fn render_png(data: &Gradient, text: &ChartText, path: &Path) -> Result<(), ChartError> {
    super::png(data, text, path, Scale::PNG)
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

impl Gradient {
    fn quantile_name(&self) -> &'static str {
        match self.quantiles {
            10 => "decile",
            5 => "quintile",
            _ => "quantile",
        }
    }

    fn invalid(message: String) -> ChartError {
        ChartError::Invalid {
            chart: Self::KIND,
            message,
        }
    }

    /// The points with a value, sorted by quantile.
    fn drawn(&self) -> Vec<(&GradientPoint, f64)> {
        let mut points: Vec<_> = self
            .points
            .iter()
            .filter_map(|p| finite(p.value).map(|v| (p, v)))
            .collect();
        points.sort_by_key(|(p, _)| p.quantile);
        points
    }

    /// Knots mapping relative rank to x slot: (rank, x). Rank 0 is the left edge of slot 1 and
    /// rank 1 the right edge of the last slot; each point's population midpoint is its slot.
    fn rank_knots(&self) -> Vec<(f64, f64)> {
        let n = f64::from(self.quantiles);
        let edge = vec![(0.0, 0.5), (1.0, n + 0.5)];
        let mut points: Vec<&GradientPoint> = self.points.iter().collect();
        points.sort_by_key(|p| p.quantile);
        let populations: Option<Vec<f64>> = points
            .iter()
            .map(|p| finite(p.population).filter(|v| *v > 0.0))
            .collect();
        let Some(populations) = populations.filter(|p| !p.is_empty()) else {
            return edge;
        };
        let total: f64 = populations.iter().sum();
        let mut knots = vec![(0.0, 0.5)];
        let mut cumulative = 0.0;
        for (p, pop) in points.iter().zip(&populations) {
            let mid = (cumulative + pop / 2.0) / total;
            cumulative += pop;
            knots.push((mid, f64::from(p.quantile)));
        }
        knots.push((1.0, n + 0.5));
        knots
    }

    /// Each quantile's share of the people (percent), when every point has a population.
    fn population_shares(&self) -> Option<Vec<(u8, f64)>> {
        let populations: Option<Vec<(u8, f64)>> = self
            .points
            .iter()
            .map(|p| {
                finite(p.population)
                    .filter(|v| *v >= 0.0)
                    .map(|v| (p.quantile, v))
            })
            .collect();
        let populations = populations?;
        let total: f64 = populations.iter().map(|(_, v)| v).sum();
        (total > 0.0).then(|| {
            populations
                .into_iter()
                .map(|(q, v)| (q, v / total * 100.0))
                .collect()
        })
    }

    /// Rows of labels under the x axis: numbers, shares (when known), end names.
    fn tick_rows(&self) -> usize {
        if self.population_shares().is_some() {
            3
        } else {
            2
        }
    }

    fn captions(&self) -> Vec<String> {
        let Some(fit) = &self.fit else {
            return Vec::new();
        };
        let level = format!("{}% CI", style::format_number(fit.confidence, 0));
        let d = self.unit.decimals(fit.sii);
        let limits = |l: Option<(f64, f64)>, decimals: usize| {
            l.map(|(lo, hi)| {
                format!(
                    " ({level} {} to {})",
                    style::format_number(lo, decimals),
                    style::format_number(hi, decimals)
                )
            })
            .unwrap_or_default()
        };
        let mut captions = vec![format!(
            "Slope index of inequality (SII, least minus most deprived): {} {}{}",
            style::format_signed(fit.sii, d),
            self.unit.difference_suffix(),
            limits(fit.sii_limits, d)
        )];
        if let Some(rii) = fit.rii.filter(|r| r.is_finite()) {
            captions.push(format!(
                "Relative index of inequality (RII, least over most deprived): {}{}",
                style::format_number(rii, 2),
                limits(fit.rii_limits, 2)
            ));
        }
        captions
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.fit.is_some() {
            notes.push(format!(
                "The fitted line is the population-weighted regression across deprivation rank \
                 that gives the SII: the modelled difference between the least and the most \
                 deprived ends; {}s with more people pull it harder. The RII is the ratio of the \
                 two ends.",
                self.quantile_name()
            ));
        }
        let missing: Vec<String> = (1..=self.quantiles)
            .filter(|q| {
                !self
                    .points
                    .iter()
                    .any(|p| p.quantile == *q && finite(p.value).is_some())
            })
            .map(|q| q.to_string())
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "No value shown for {} {} (no people, or numbers too small to publish).",
                self.quantile_name(),
                missing.join(", ")
            ));
        }
        notes
    }
}

impl Chart for Gradient {
    const KIND: &'static str = "gradient chart";

    fn check(&self) -> Result<(), ChartError> {
        if !(2..=100).contains(&self.quantiles) {
            return Err(Self::invalid(format!(
                "{} quantiles: expected 5 (quintiles), 10 (deciles) or another number from 2 to 100",
                self.quantiles
            )));
        }
        let mut seen = vec![false; usize::from(self.quantiles) + 1];
        for p in &self.points {
            let slot = seen
                .get_mut(usize::from(p.quantile))
                .filter(|_| p.quantile >= 1);
            match slot {
                None => {
                    return Err(Self::invalid(format!(
                        "{} {} is outside 1 to {}",
                        self.quantile_name(),
                        p.quantile,
                        self.quantiles
                    )));
                }
                Some(true) => {
                    return Err(Self::invalid(format!(
                        "{} {} appears twice",
                        self.quantile_name(),
                        p.quantile
                    )));
                }
                Some(s) => *s = true,
            }
            if let Some((lo, hi)) = p.limits
                && !(lo.is_nan() || hi.is_nan() || lo <= hi)
            {
                return Err(Self::invalid(format!(
                    "{} {}: lower limit {lo} is above upper limit {hi}",
                    self.quantile_name(),
                    p.quantile
                )));
            }
            if p.value.is_some_and(f64::is_infinite) {
                return Err(Self::invalid(format!(
                    "{} {}: the value is infinite",
                    self.quantile_name(),
                    p.quantile
                )));
            }
        }
        if self.drawn().is_empty() {
            return Err(ChartError::NoData {
                chart: Self::KIND,
                reason: format!("no {} has a value", self.quantile_name()),
            });
        }
        if let Some(fit) = &self.fit
            && !(fit.most_deprived.is_finite()
                && fit.least_deprived.is_finite()
                && fit.sii.is_finite())
        {
            return Err(Self::invalid(
                "the SII fit is not a finite number (pass no fit when the SII is missing)".into(),
            ));
        }
        if let Some(r) = &self.reference
            && !r.value.is_finite()
        {
            return Err(Self::invalid(format!(
                "the {} value is not a number",
                r.label
            )));
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
        let points = self.drawn();
        let n = self.quantiles;

        // Legend.
        let point_marker = Marker {
            shape: Shape::Circle,
            radius: 5.5,
            fill: Some(style::decile_colour(3)),
            stroke: Some((INK, 1.0)),
        };
        let mut legend = vec![LegendEntry::new(
            Key::ErrorBar {
                colour: MUTED,
                marker: point_marker,
            },
            format!(
                "Value with 95% confidence interval (colour: {})",
                self.quantile_name()
            ),
        )];
        if self.fit.is_some() {
            legend.push(LegendEntry::new(
                Key::Line {
                    colour: style::HIGHLIGHT,
                    width: 2.5,
                    dashed: false,
                },
                "Fitted line (SII)",
            ));
        }
        if let Some(r) = &self.reference {
            legend.push(LegendEntry::new(
                Key::Line {
                    colour: REFERENCE,
                    width: 1.5,
                    dashed: true,
                },
                format!("{}: {}", r.label, self.unit.format(r.value)),
            ));
        }
        let legend_bottom = canvas.legend_rows(&legend, body.x0, body.x1, body.y0)?;

        // The y range covers values, limits, the fitted ends and the reference.
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut include = |v: f64| {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        };
        for (p, v) in &points {
            include(*v);
            if let Some((a, b)) = p.limits {
                include(a);
                include(b);
            }
        }
        if let Some(fit) = &self.fit {
            include(fit.most_deprived);
            include(fit.least_deprived);
        }
        if let Some(r) = &self.reference {
            include(r.value);
        }
        // Start at zero when that costs little room: readers assume it.
        if lo > 0.0 && lo < 0.5 * hi {
            lo = 0.0;
        }
        let unit = self.unit.clone();
        let axis = Axis::nice(lo, hi, 5, &|v, d| match unit {
            Unit::Percent => style::format_percent(v, d),
            _ => style::format_number(v, d),
        });
        let y_width = axis::y_axis_width(&canvas, &axis)?;
        let plot_rect = Rect {
            x0: body.x0 + y_width,
            y0: legend_bottom + canvas.px(10.0),
            x1: body.x1 - canvas.px(8.0),
            y1: body.y1 - axis::x_axis_height(&canvas, self.tick_rows()),
        };
        if plot_rect.height() < canvas.px(60.0) || plot_rect.width() < canvas.px(100.0) {
            return Err(Self::invalid(
                "the title and notes leave no room for the plot".into(),
            ));
        }
        let plot = Plot::new(plot_rect, (0.5, f64::from(n) + 0.5), (axis.min, axis.max));
        axis::draw_y_axis(
            &canvas,
            &plot,
            &axis,
            &self.unit.axis_title(&self.measure),
            body.x0 + canvas.line_height(text_size::BODY) / 2,
        )?;

        // X axis: a slot per quantile, each quantile's share of the people under it (when known:
        // it explains wide intervals and how hard each point pulls the fitted line), the ends
        // named.
        let tick_style = canvas.font(text_size::TICK, Weight::Normal, MUTED);
        let end_style = canvas.font(text_size::TICK, Weight::Bold, INK);
        let tick_y = plot_rect.y1 + canvas.px(6.0);
        let row = canvas.line_height(text_size::TICK);
        let shares = self.population_shares();
        let end_row = tick_y + row * if shares.is_some() { 2 } else { 1 };
        for q in 1..=n {
            let x = plot.x.px(f64::from(q));
            canvas.path(
                &[(x, plot_rect.y1), (x, plot_rect.y1 + canvas.px(4.0))],
                style::AXIS,
                1.0,
            )?;
            canvas.text(
                &q.to_string(),
                (x, tick_y),
                &tick_style,
                HPos::Center,
                VPos::Top,
            )?;
        }
        if let Some(shares) = &shares {
            let share_style = canvas.font(text_size::SMALL, Weight::Normal, MUTED);
            for (q, share) in shares {
                let x = plot.x.px(f64::from(*q));
                let decimals = usize::from(*share > 0.0 && *share < 1.0);
                let label = format!("({})", style::format_percent(*share, decimals));
                canvas.text(
                    &label,
                    (x, tick_y + row),
                    &share_style,
                    HPos::Center,
                    VPos::Top,
                )?;
            }
            // Right-aligned to the plot's edge, but never off the page.
            let label = "% of people";
            let w = canvas.text_width(label, &share_style)?;
            let left = (plot_rect.x0 - canvas.px(6.0) - w).max(body.x0);
            canvas.text(
                label,
                (left, tick_y + row),
                &share_style,
                HPos::Left,
                VPos::Top,
            )?;
        }
        for (q, label) in [(1, "most deprived"), (n, "least deprived")] {
            let x = plot.x.px(f64::from(q));
            let w = canvas.text_width(label, &end_style)?;
            // Keep the end labels under the plot, even when a slot is narrower than the label.
            let left = (x - w / 2).clamp(plot_rect.x0 - canvas.px(4.0), plot_rect.x1 - w);
            canvas.text(label, (left, end_row), &end_style, HPos::Left, VPos::Top)?;
        }
        axis::draw_x_title(
            &canvas,
            &plot,
            &format!("IMD {} (1 = most deprived)", self.quantile_name()),
            self.tick_rows(),
        )?;

        // Reference line.
        if let Some(r) = &self.reference {
            let y = plot.y.px(r.value);
            canvas.dashed(&[(plot_rect.x0, y), (plot_rect.x1, y)], REFERENCE, 1.5)?;
        }

        // Fitted line, sampled along rank and mapped onto the slots.
        if let Some(fit) = &self.fit {
            let knots = self.rank_knots();
            let mut line = Vec::new();
            for w in knots.windows(2) {
                let ((r0, x0), (r1, x1)) = (w[0], w[1]);
                let steps = 8;
                for i in 0..steps {
                    let t = f64::from(i) / f64::from(steps);
                    let r = r0 + (r1 - r0) * t;
                    line.push(plot.at(x0 + (x1 - x0) * t, fit.at(r)));
                }
            }
            line.push(plot.at(f64::from(n) + 0.5, fit.at(1.0)));
            canvas.path(&line, style::HIGHLIGHT, 2.5)?;
        }

        // Points with their intervals and value labels.
        let label_style = canvas.font(text_size::TICK, Weight::Normal, INK);
        let cap = canvas.px(4.0);
        for (p, v) in &points {
            let (x, y) = plot.at(f64::from(p.quantile), *v);
            if let Some((a, b)) = p.limits.filter(|(a, b)| a.is_finite() && b.is_finite()) {
                let (ya, yb) = (plot.y.px(a), plot.y.px(b));
                canvas.path(&[(x, ya), (x, yb)], MUTED, 1.5)?;
                canvas.path(&[(x - cap, ya), (x + cap, ya)], MUTED, 1.5)?;
                canvas.path(&[(x - cap, yb), (x + cap, yb)], MUTED, 1.5)?;
            }
            let marker = Marker {
                fill: Some(style::quantile_colour(p.quantile, n)),
                ..point_marker
            };
            canvas.marker((x, y), &marker)?;
        }
        for (p, v) in &points {
            let (x, y) = plot.at(f64::from(p.quantile), *v);
            let label = self.unit.format_bare(*v);
            let w = canvas.text_width(&label, &label_style)?;
            let h = canvas.line_height(text_size::TICK);
            let left = x + canvas.px(9.0);
            // A white box behind the label keeps it readable over the fitted line.
            canvas
                .root
                .draw(&Rectangle::new(
                    [
                        (left - canvas.px(2.0), y - h / 2),
                        (left + w + canvas.px(2.0), y + h / 2),
                    ],
                    style::BACKGROUND.mix(0.85).filled(),
                ))
                .map_err(layout::draw_error)?;
            canvas.text(&label, (left, y), &label_style, HPos::Left, VPos::Center)?;
        }
        axis::draw_axis_lines(&canvas, &plot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::check::{check_svg, png_size};

    fn smoking() -> Gradient {
        let values = [27.1, 24.0, 21.2, 18.9, 16.5, 14.8, 13.0, 11.9, 10.1, 8.7];
        Gradient {
            measure: "Smoking prevalence".into(),
            unit: Unit::Percent,
            quantiles: 10,
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| GradientPoint {
                    quantile: i as u8 + 1,
                    value: Some(*v),
                    limits: Some((v - 1.5, v + 1.6)),
                    population: Some(1000.0 + 100.0 * i as f64),
                })
                .collect(),
            fit: Some(SiiFit {
                sii_limits: Some((-22.0, -18.5)),
                rii: Some(0.3),
                rii_limits: Some((0.25, 0.36)),
                ..SiiFit::from_intercept(28.5, -20.3)
            }),
            reference: Some(Reference {
                label: "England".into(),
                value: 14.7,
            }),
        }
    }

    fn text() -> ChartText {
        ChartText::new(
            "Smoking & deprivation <PCN>",
            "Source: healthgap run test; IMD 2019 (MHCLG)",
        )
    }

    #[test]
    fn gradient_svg_has_title_axes_legend_and_caption() {
        let svg = render_svg(&smoking(), &text()).expect("renders");
        let s = check_svg(&svg).expect("well-formed");
        assert_eq!(s.size, (900, 560));
        for t in [
            "Smoking & deprivation <PCN>",
            "Smoking prevalence (%)",
            "IMD decile (1 = most deprived)",
            "most deprived",
            "least deprived",
            "Fitted line (SII)",
            "England: 14.7%",
            "% of people",
            "(8%)",
        ] {
            assert!(s.has_text(t), "missing {t:?} in {:?}", s.texts);
        }
        assert!(s.has_text_containing(
            "\u{2212}20.3 percentage points (95% CI \u{2212}22.0 to \u{2212}18.5)"
        ));
        assert!(s.has_text_containing("RII"));
        assert!(s.has_text_containing("Source: healthgap run test"));
    }

    #[test]
    fn gradient_png_has_double_size_and_is_deterministic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        render_png(&smoking(), &text(), &a).expect("renders");
        render_png(&smoking(), &text(), &b).expect("renders");
        let (a, b) = (
            std::fs::read(a).expect("read"),
            std::fs::read(b).expect("read"),
        );
        assert_eq!(png_size(&a), Some((1800, 1120)));
        assert_eq!(a, b);
        assert_eq!(
            render_svg(&smoking(), &text()).expect("svg"),
            render_svg(&smoking(), &text()).expect("svg")
        );
    }

    #[test]
    fn gradient_without_values_is_no_data() {
        let mut data = smoking();
        for p in &mut data.points {
            p.value = None;
        }
        let error = render_svg(&data, &text()).expect_err("no data");
        assert!(matches!(error, ChartError::NoData { .. }), "{error}");
        data.points.clear();
        assert!(matches!(
            render_svg(&data, &text()),
            Err(ChartError::NoData { .. })
        ));
    }

    #[test]
    fn gradient_refuses_bad_quantiles_and_limits() {
        let mut data = smoking();
        data.points[0].quantile = 11;
        assert!(
            render_svg(&data, &text())
                .expect_err("11")
                .to_string()
                .contains("decile 11 is outside 1 to 10")
        );
        let mut data = smoking();
        data.points[1].quantile = 1;
        assert!(
            render_svg(&data, &text())
                .expect_err("twice")
                .to_string()
                .contains("appears twice")
        );
        let mut data = smoking();
        data.points[2].limits = Some((5.0, 1.0));
        assert!(
            render_svg(&data, &text())
                .expect_err("limits")
                .to_string()
                .contains("above upper")
        );
        let mut data = smoking();
        data.fit = Some(SiiFit::from_intercept(f64::NAN, 1.0));
        assert!(
            render_svg(&data, &text())
                .expect_err("fit")
                .to_string()
                .contains("not a finite")
        );
    }

    #[test]
    fn gradient_draws_one_point_and_flat_values() {
        let mut data = smoking();
        data.points.truncate(1);
        data.fit = None;
        data.reference = None;
        let s = check_svg(&render_svg(&data, &text()).expect("one point")).expect("xml");
        assert!(s.has_text_containing("No value shown for decile 2, 3"));
        let mut data = smoking();
        for p in &mut data.points {
            p.value = Some(10.0);
            p.limits = None;
        }
        data.fit = None;
        data.reference = None;
        check_svg(&render_svg(&data, &text()).expect("flat")).expect("xml");
    }

    #[test]
    fn gradient_quintiles_and_rates() {
        let data = Gradient {
            measure: "Emergency admissions".into(),
            unit: Unit::Rate { per: 100_000.0 },
            quantiles: 5,
            points: (1..=5)
                .map(|q| GradientPoint {
                    quantile: q,
                    value: Some(2000.0 - 250.0 * f64::from(q)),
                    limits: None,
                    population: None,
                })
                .collect(),
            fit: Some(SiiFit {
                curve: FitCurve::Log,
                ..SiiFit::from_intercept(1900.0, -1100.0)
            }),
            reference: None,
        };
        let s = check_svg(&render_svg(&data, &text()).expect("renders")).expect("xml");
        assert!(s.has_text("Emergency admissions (per 100,000)"));
        assert!(s.has_text("IMD quintile (1 = most deprived)"));
        assert!(s.has_text("1,750"));
    }

    #[test]
    fn fit_curves_meet_their_ends() {
        for curve in [
            FitCurve::Straight,
            FitCurve::Log,
            FitCurve::Logit { per: 100.0 },
        ] {
            let fit = SiiFit {
                curve,
                ..SiiFit::from_intercept(30.0, -20.0)
            };
            assert!((fit.at(0.0) - 30.0).abs() < 1e-9);
            assert!((fit.at(1.0) - 10.0).abs() < 1e-9);
        }
    }

    #[test]
    fn rank_knots_follow_populations() {
        let data = smoking();
        let knots = data.rank_knots();
        assert_eq!(knots.first(), Some(&(0.0, 0.5)));
        assert_eq!(knots.last(), Some(&(1.0, 10.5)));
        assert_eq!(knots.len(), 12);
        let mut equal = smoking();
        for p in &mut equal.points {
            p.population = None;
        }
        assert_eq!(equal.rank_knots().len(), 2);
    }
}
