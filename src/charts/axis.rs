//! Scales and axes: linear maps from data to device pixels, "nice" numeric axes with their tick
//! labels, the grid and axis titles every x–y chart draws, and clipping lines to a plot. Text,
//! markers and the frame are in `layout.rs`.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::ChartError;
use super::layout::{Canvas, Rect, Weight};
use super::style::{self, GRID, INK, MUTED, text_size};

/// A linear map from data values to device pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Linear {
    pub min: f64,
    pub max: f64,
    /// Pixel at `min`.
    pub from: f64,
    /// Pixel at `max`.
    pub to: f64,
}

impl Linear {
    pub fn new(min: f64, max: f64, from: i32, to: i32) -> Self {
        Linear {
            min,
            max,
            from: f64::from(from),
            to: f64::from(to),
        }
    }

    /// The pixel of a value (values outside the range extrapolate).
    pub fn px(&self, v: f64) -> i32 {
        let span = self.max - self.min;
        let t = if span.abs() > 0.0 {
            (v - self.min) / span
        } else {
            0.5
        };
        // A saturating cast: a value far off the plot lands on the canvas edge, never panics.
        (self.from + t * (self.to - self.from)).round() as i32
    }
}

/// A plot rectangle with its x and y scales.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plot {
    pub rect: Rect,
    pub x: Linear,
    pub y: Linear,
}

impl Plot {
    pub fn new(rect: Rect, (x_min, x_max): (f64, f64), (y_min, y_max): (f64, f64)) -> Self {
        Plot {
            rect,
            x: Linear::new(x_min, x_max, rect.x0, rect.x1),
            y: Linear::new(y_min, y_max, rect.y1, rect.y0),
        }
    }

    /// The device pixel of a data point.
    pub fn at(&self, x: f64, y: f64) -> (i32, i32) {
        (self.x.px(x), self.y.px(y))
    }
}

/// A numeric axis: its range, ticks and how a tick prints.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    pub min: f64,
    pub max: f64,
    pub ticks: Vec<f64>,
    pub labels: Vec<String>,
}

impl Axis {
    /// A nice axis covering `[lo, hi]` with about `target` ticks, labelled by `format(value,
    /// decimals)`.
    pub fn nice(lo: f64, hi: f64, target: usize, format: &dyn Fn(f64, usize) -> String) -> Self {
        // Rounding out to whole ticks can waste much of the plot (0–32 becoming 0–40): try a
        // few more ticks until the axis is at most a quarter longer than the data.
        let span = hi - lo;
        let mut chosen = style::nice_span(lo, hi, target);
        for more in target + 1..=target + 3 {
            if span.is_nan() || span <= 0.0 || chosen.1 - chosen.0 <= 1.25 * span {
                break;
            }
            chosen = style::nice_span(lo, hi, more);
        }
        let (min, max, step) = chosen;
        // Ticks from min to max by step, snapped so labels print cleanly.
        let count = ((max - min) / step).round().clamp(0.0, 1000.0) as usize;
        let ticks: Vec<f64> = (0..=count)
            .map(|i| ((min + step * i as f64) / step).round() * step)
            .collect();
        let decimals = style::step_decimals(step);
        let labels = ticks.iter().map(|t| format(*t, decimals)).collect();
        Axis {
            min,
            max,
            ticks,
            labels,
        }
    }

    /// An axis over exactly `[lo, hi]` with nice ticks inside it (for a denominator axis that
    /// should end at the data, not at the next round number).
    pub fn tight(lo: f64, hi: f64, target: usize, format: &dyn Fn(f64, usize) -> String) -> Self {
        let (min, max) = if hi > lo {
            (lo, hi)
        } else {
            style::nice_range(lo, hi, target)
        };
        let mut axis = Axis::nice(min, max, target, format);
        let keep: Vec<bool> = axis.ticks.iter().map(|t| *t >= min && *t <= max).collect();
        let mut flags = keep.iter();
        axis.ticks
            .retain(|_| flags.next().copied().unwrap_or(false));
        let mut flags = keep.iter();
        axis.labels
            .retain(|_| flags.next().copied().unwrap_or(false));
        axis.min = min;
        axis.max = max;
        axis
    }

    /// The widest tick label, in device pixels.
    pub fn label_width<DB: DrawingBackend>(
        &self,
        canvas: &Canvas<'_, DB>,
    ) -> Result<i32, ChartError> {
        let style = canvas.font(text_size::TICK, Weight::Normal, MUTED);
        let mut widest = 0;
        for label in &self.labels {
            widest = widest.max(canvas.text_width(label, &style)?);
        }
        Ok(widest)
    }
}

/// The space a y axis needs left of the plot: its rotated title, a gap and the widest tick label.
pub(crate) fn y_axis_width<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    axis: &Axis,
) -> Result<i32, ChartError> {
    Ok(canvas.line_height(text_size::BODY)
        + canvas.px(8.0)
        + axis.label_width(canvas)?
        + canvas.px(8.0))
}

/// The space an x axis with one row of tick labels and a title needs below the plot.
pub(crate) fn x_axis_height<DB: DrawingBackend>(canvas: &Canvas<'_, DB>, tick_rows: usize) -> i32 {
    canvas.px(6.0)
        + canvas.line_height(text_size::TICK) * tick_rows as i32
        + canvas.px(6.0)
        + canvas.line_height(text_size::BODY)
}

/// Horizontal grid lines and tick labels of a y axis, and its title read upwards at `title_x`.
pub(crate) fn draw_y_axis<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
    axis: &Axis,
    title: &str,
    title_x: i32,
) -> Result<(), ChartError> {
    let tick_style = canvas.font(text_size::TICK, Weight::Normal, MUTED);
    for (tick, label) in axis.ticks.iter().zip(&axis.labels) {
        let y = plot.y.px(*tick);
        canvas.path(&[(plot.rect.x0, y), (plot.rect.x1, y)], GRID, 1.0)?;
        canvas.text(
            label,
            (plot.rect.x0 - canvas.px(6.0), y),
            &tick_style,
            HPos::Right,
            VPos::Center,
        )?;
    }
    let title_style = canvas.font(text_size::BODY, Weight::Normal, INK);
    let mid = (plot.rect.y0 + plot.rect.y1) / 2;
    canvas.text_vertical(title, (title_x, mid), &title_style)
}

/// Vertical grid lines and tick labels of a numeric x axis, and its title centred below.
pub(crate) fn draw_x_axis<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
    axis: &Axis,
    title: &str,
) -> Result<(), ChartError> {
    let tick_style = canvas.font(text_size::TICK, Weight::Normal, MUTED);
    let y = plot.rect.y1 + canvas.px(6.0);
    for (tick, label) in axis.ticks.iter().zip(&axis.labels) {
        let x = plot.x.px(*tick);
        canvas.path(&[(x, plot.rect.y0), (x, plot.rect.y1)], GRID, 1.0)?;
        canvas.text(label, (x, y), &tick_style, HPos::Center, VPos::Top)?;
    }
    draw_x_title(canvas, plot, title, 1)
}

/// An x axis title centred under the plot, below `tick_rows` rows of tick labels.
pub(crate) fn draw_x_title<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
    title: &str,
    tick_rows: usize,
) -> Result<(), ChartError> {
    let title_style = canvas.font(text_size::BODY, Weight::Normal, INK);
    let y = plot.rect.y1 + canvas.px(12.0) + canvas.line_height(text_size::TICK) * tick_rows as i32;
    canvas.text(
        title,
        ((plot.rect.x0 + plot.rect.x1) / 2, y),
        &title_style,
        HPos::Center,
        VPos::Top,
    )
}

/// The plot's frame: left and bottom axis lines.
pub(crate) fn draw_axis_lines<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
) -> Result<(), ChartError> {
    let r = plot.rect;
    canvas.path(
        &[(r.x0, r.y0), (r.x0, r.y1), (r.x1, r.y1)],
        style::AXIS,
        1.0,
    )
}

/// Clip a polyline to a rectangle (Liang–Barsky per segment); returns the visible
/// runs, so a curve leaving the plot is cut at the edge instead of squashed along it.
pub(crate) fn clip_polyline(
    points: &[(f64, f64)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for w in points.windows(2) {
        let ((ax, ay), (bx, by)) = (w[0], w[1]);
        let (dx, dy) = (bx - ax, by - ay);
        let mut t0: f64 = 0.0;
        let mut t1: f64 = 1.0;
        let mut visible = true;
        for (p, q) in [(-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)] {
            if p == 0.0 {
                if q < 0.0 {
                    visible = false;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
        if !visible || t0 > t1 {
            if current.len() > 1 {
                runs.push(std::mem::take(&mut current));
            }
            current.clear();
            continue;
        }
        let start = (ax + t0 * dx, ay + t0 * dy);
        let end = (ax + t1 * dx, ay + t1 * dy);
        if current.last() != Some(&start) {
            if current.len() > 1 {
                runs.push(std::mem::take(&mut current));
            }
            current = vec![start];
        }
        current.push(end);
        if t1 < 1.0 {
            runs.push(std::mem::take(&mut current));
        }
    }
    if current.len() > 1 {
        runs.push(current);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_polyline_cuts_at_the_edges() {
        let runs = clip_polyline(
            &[(0.0, 10.0), (1.0, 5.0), (2.0, 1.0), (3.0, 0.5)],
            (0.0, 3.0),
            (0.0, 6.0),
        );
        assert_eq!(runs.len(), 1);
        let first = runs[0][0];
        assert!((first.1 - 6.0).abs() < 1e-9 && (first.0 - 0.8).abs() < 1e-9);
        assert!(clip_polyline(&[(0.0, 10.0), (1.0, 10.0)], (0.0, 1.0), (0.0, 1.0)).is_empty());
        // Leaving and coming back gives two runs.
        let runs = clip_polyline(
            &[(0.5, 0.5), (0.5, 5.0), (0.8, 0.5)],
            (0.0, 1.0),
            (0.0, 1.0),
        );
        assert_eq!(runs.len(), 2);
    }
}
