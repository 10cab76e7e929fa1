//! Charts for the evidence pack (DESIGN §4, issue 7): plain data in, an SVG string or a PNG
//! file out. No polars and no run folders here: the report reads the run tables and fills these
//! structs.
//!
//! One file per chart kind, each with its data struct and `render_svg` / `render_png`:
//!
//! | file | chart | data |
//! |---|---|---|
//! | `gradient.rs` | value by IMD decile/quintile with limits, fitted SII line, SII/RII caption | [`gradient::Gradient`] |
//! | `funnel.rs` | areas against their denominator, 95% and 99.8% limits, one area highlighted | [`funnel::Funnel`] |
//! | `segments.rs` | population by segment and risk tier, split by IMD quintile | [`segments::Segments`] |
//! | `map.rs` | footprint polygons, LSOAs by decile, Core20 and the PCN's LSOAs marked | [`map::Map`] |
//! | `trend.rs` | SII with limits across runs | [`trend::Trend`] |
//!
//! Every data struct implements [`Chart`], so the report can also treat them alike
//! (`chart.render_svg(&text)`, `chart.render_png(&text, path)`). The words around a chart (title,
//! subtitle, source line) are a [`ChartText`]; a chart with nothing to draw returns
//! [`ChartError::NoData`], and [`Notice`] draws a titled placeholder for such a slot.
//!
//! Shared look (palette, font, sizes, number formats) is in `style.rs`; the title block, source
//! line and legends in `layout.rs`; scales and axes in `axis.rs`; map projection and polygon
//! clipping in `projection.rs`; `check.rs` has structural checks of the output for tests. Every
//! chart is drawn by one backend-generic function, so the SVG and the PNG (at
//! [`style::PNG_SCALE`] times the resolution) are the same picture. Text passed in (titles,
//! names) may contain any characters: the SVG backend escapes it.
//!
//! ```
//! use healthgap::charts::{ChartText, trend};
//! let data = trend::Trend {
//!     measure: "Smoking prevalence".into(),
//!     unit: healthgap::charts::style::Unit::Percent,
//!     points: vec![trend::TrendPoint { label: "2023-24".into(), sii: -9.5, limits: Some((-12.0, -7.1)) }],
//! };
//! let text = ChartText::new("Smoking: the gap across deprivation", "Source: healthgap run 2024-06-01");
//! let svg = trend::render_svg(&data, &text)?;
//! assert!(svg.starts_with("<svg"));
//! # Ok::<(), healthgap::charts::ChartError>(())
//! ```

mod axis;
pub mod check;
pub mod funnel;
pub mod gradient;
mod layout;
pub mod map;
mod projection;
pub mod segments;
pub mod style;
pub mod trend;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use self::style::Scale;

/// The words around a chart, chosen by the caller: title, optional subtitle, and the source line
/// printed at the bottom ("Source: healthgap run 2024-06-01T02:00; IMD 2019 (MHCLG); …").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChartText {
    /// The headline, e.g. "Smoking is three times as common in the most deprived areas".
    pub title: String,
    /// A second line: the indicator's definition, period and population.
    pub subtitle: Option<String>,
    /// The source line.
    pub source: String,
}

impl ChartText {
    /// A title and a source line.
    pub fn new(title: impl Into<String>, source: impl Into<String>) -> Self {
        ChartText {
            title: title.into(),
            subtitle: None,
            source: source.into(),
        }
    }

    /// Add a subtitle.
    pub fn with_subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = Some(subtitle.into());
        self
    }
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The data has nothing to draw (no points, all values missing).
    #[error("{chart}: nothing to draw: {reason}")]
    NoData {
        /// The chart kind.
        chart: &'static str,
        /// What was missing.
        reason: String,
    },
    /// The data is inconsistent (a decile of 11, a negative denominator, limits the wrong way round).
    #[error("{chart}: {message}")]
    Invalid {
        /// The chart kind.
        chart: &'static str,
        /// What is wrong, naming the item.
        message: String,
    },
    /// The bundled font could not be loaded.
    #[error("cannot load the chart font: {0}")]
    Font(String),
    /// plotters failed while drawing.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// The PNG could not be written.
    #[error("cannot write the chart {}: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A chart kind: checks its data and draws itself on any plotters backend. Implemented by each
/// chart's data struct, so the report can treat charts alike (`chart.render_svg(&text)`); the
/// modules' free `render_svg` / `render_png` functions call these.
pub trait Chart {
    /// The chart kind, for messages ("gradient chart").
    const KIND: &'static str;

    /// Refuse data that cannot be drawn, with a message naming the problem.
    ///
    /// # Errors
    /// [`ChartError::NoData`] or [`ChartError::Invalid`].
    fn check(&self) -> Result<(), ChartError>;

    /// The canvas size in CSS pixels (the SVG's size). Most charts use the standard size; one
    /// whose content grows (the segment chart's rows) measures its text to fit.
    fn size(&self, text: &ChartText) -> (u32, u32) {
        let _ = text;
        (style::WIDTH, style::HEIGHT)
    }

    /// Draw on `root` at scale `s` (device pixels per CSS pixel). Called after
    /// [`Chart::check`] succeeded and the font is registered.
    ///
    /// # Errors
    /// [`ChartError::Draw`] when plotters fails.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        text: &ChartText,
        s: Scale,
    ) -> Result<(), ChartError>;

    /// Render as an SVG document of [`Chart::size`].
    ///
    /// # Errors
    /// The data errors of [`Chart::check`]; [`ChartError::Font`] or [`ChartError::Draw`].
    fn render_svg(&self, text: &ChartText) -> Result<String, ChartError>
    where
        Self: Sized,
    {
        svg(self, text)
    }

    /// Render as a PNG file at [`style::PNG_SCALE`] times the SVG's size.
    ///
    /// # Errors
    /// As [`Chart::render_svg`], and [`ChartError::Write`] when the path does not end in `.png`
    /// or cannot be written.
    fn render_png(&self, text: &ChartText, path: &Path) -> Result<(), ChartError>
    where
        Self: Sized,
    {
        png(self, text, path, Scale::PNG)
    }

    /// Render as a PNG file at `scale` device pixels per CSS pixel (1 for the SVG's size: a
    /// quarter of the default's pixels, for thumbnails and the committed gallery).
    ///
    /// # Errors
    /// As [`Chart::render_png`], and [`ChartError::Invalid`] for a scale outside 0.25–8.
    fn render_png_scaled(&self, text: &ChartText, path: &Path, scale: f64) -> Result<(), ChartError>
    where
        Self: Sized,
    {
        if !(0.25..=8.0).contains(&scale) {
            return Err(ChartError::Invalid {
                chart: Self::KIND,
                message: format!("PNG scale {scale} is outside 0.25 to 8"),
            });
        }
        png(self, text, path, Scale::raster(scale))
    }
}

/// Measure text with the bundled font on a throwaway canvas of the standard size (for charts
/// whose size depends on their text).
pub(crate) fn measure<T>(
    f: impl FnOnce(&layout::Canvas<'_, SVGBackend<'_>>) -> Result<T, ChartError>,
) -> Result<T, ChartError> {
    style::register_fonts()?;
    let mut sink = String::new();
    let root =
        SVGBackend::with_string(&mut sink, (style::WIDTH, style::HEIGHT)).into_drawing_area();
    f(&layout::Canvas::new(&root, Scale::SVG))
}

/// Render a chart as an SVG document.
pub(crate) fn svg<C: Chart>(chart: &C, text: &ChartText) -> Result<String, ChartError> {
    style::register_fonts()?;
    chart.check()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, Scale::SVG.canvas(chart.size(text)))
            .into_drawing_area();
        chart.draw(&root, text, Scale::SVG)?;
        root.present().map_err(layout::draw_error)?;
    }
    Ok(out)
}

/// Render a chart as a PNG file at scale `s`.
pub(crate) fn png<C: Chart>(
    chart: &C,
    text: &ChartText,
    path: &Path,
    s: Scale,
) -> Result<(), ChartError> {
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(ChartError::Write {
            path: path.to_path_buf(),
            message: "the file name must end in .png".into(),
        });
    }
    style::register_fonts()?;
    chart.check()?;
    let root = BitMapBackend::new(path, s.canvas(chart.size(text))).into_drawing_area();
    chart.draw(&root, text, s)?;
    root.present().map_err(|e| ChartError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A placeholder with the chart's title and source and a message in the middle, for a pack that
/// must show a chart slot even when there is nothing to draw (e.g. "no earlier runs").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The message, e.g. "No decile has enough people to show a value".
    pub message: String,
}

impl Chart for Notice {
    const KIND: &'static str = "notice";

    fn check(&self) -> Result<(), ChartError> {
        Ok(())
    }

    fn size(&self, _text: &ChartText) -> (u32, u32) {
        (style::WIDTH, style::HEIGHT / 2)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        text: &ChartText,
        s: Scale,
    ) -> Result<(), ChartError> {
        let canvas = layout::Canvas::new(root, s);
        let body = canvas.frame(text, &[], &[])?;
        canvas.rect(body, Some(style::tint(style::GRID, 0.6)), None)?;
        canvas.message(&self.message, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_renders_escaped_text() {
        let text = ChartText::new("Smoking & <vaping>", "Source: test");
        let svg = Notice {
            message: "No data for A & B".into(),
        }
        .render_svg(&text)
        .expect("notice renders");
        let summary = check::check_svg(&svg).expect("well-formed");
        assert!(summary.has_text("Smoking & <vaping>"));
        assert!(summary.has_text("No data for A & B"));
    }

    #[test]
    fn png_path_must_end_in_png() {
        let text = ChartText::new("t", "s");
        let error = Notice {
            message: "m".into(),
        }
        .render_png(&text, Path::new("chart.svg"))
        .expect_err("refused");
        assert!(error.to_string().contains(".png"));
    }

    /// Render with both backends; an error is fine, a panic or a malformed SVG is not, and the
    /// SVG must be the same twice.
    fn survives<C: Chart>(chart: &C, what: &str) {
        let text = ChartText::new(
            "A title long enough to wrap onto a second line when the chart is narrow & <odd>",
            "Source: test",
        );
        let first = chart.render_svg(&text);
        if let Ok(svg) = &first {
            check::check_svg(svg).unwrap_or_else(|e| panic!("{what}: malformed SVG: {e}"));
            assert_eq!(
                chart.render_svg(&text).ok().as_ref(),
                Some(svg),
                "{what}: not deterministic"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let png = chart.render_png_scaled(&text, &dir.path().join("x.png"), 0.5);
        assert_eq!(first.is_ok(), png.is_ok(), "{what}: SVG and PNG disagree");
    }

    #[test]
    fn extreme_inputs_never_panic() {
        use crate::ingest::Footprint;
        let odd = [f64::NAN, f64::INFINITY, -1e300, 0.0, 1e300, 1e-300];
        for &v in &odd {
            for &w in &odd {
                let point = gradient::GradientPoint {
                    quantile: 1,
                    value: Some(v),
                    limits: Some((v, w)),
                    population: Some(w),
                };
                let data = gradient::Gradient {
                    measure: "m".into(),
                    unit: style::Unit::Rate { per: 100_000.0 },
                    quantiles: 10,
                    points: vec![
                        point.clone(),
                        gradient::GradientPoint {
                            quantile: 10,
                            ..point
                        },
                    ],
                    fit: Some(gradient::SiiFit::from_intercept(v, w)),
                    reference: Some(gradient::Reference {
                        label: "E".into(),
                        value: w,
                    }),
                };
                survives(&data, &format!("gradient {v} {w}"));

                let funnel = funnel::Funnel {
                    measure: "m".into(),
                    unit: style::Unit::Percent,
                    denominator_label: "d".into(),
                    points: vec![funnel::FunnelPoint {
                        code: "A".into(),
                        name: "A & B".into(),
                        denominator: w,
                        value: v,
                        significance: None,
                    }],
                    limits: vec![crate::stats::funnel::FunnelRow {
                        x: w,
                        limits: [v, w, v, w],
                        denominators: None,
                        baseline: Some(v),
                    }],
                    baseline: None,
                    baseline_label: "average".into(),
                    highlight: Some("A".into()),
                };
                survives(&funnel, &format!("funnel {v} {w}"));

                let trend = trend::Trend {
                    measure: "m".into(),
                    unit: style::Unit::Percent,
                    points: vec![
                        trend::TrendPoint {
                            label: "a".into(),
                            sii: v,
                            limits: Some((v, w)),
                        },
                        trend::TrendPoint {
                            label: "b".into(),
                            sii: w,
                            limits: None,
                        },
                    ],
                };
                survives(&trend, &format!("trend {v} {w}"));

                let segments = segments::Segments {
                    population: "people".into(),
                    panels: vec![segments::SegmentPanel {
                        title: "p".into(),
                        rows: vec![segments::SegmentRow {
                            label: "r".into(),
                            counts: [v, w, 0.0, 1.0, v],
                            unknown: w,
                        }],
                    }],
                };
                survives(&segments, &format!("segments {v} {w}"));

                let areas = [Footprint {
                    code: "E1".into(),
                    name: None,
                    properties: serde_json::Map::new(),
                    geometry: geo::MultiPolygon(vec![geo::Polygon::new(
                        geo::LineString::from(vec![(v, w), (w, v), (0.0, 0.0), (v, w)]),
                        vec![],
                    )]),
                }];
                let lsoas = [map::LsoaPoint {
                    code: "L".into(),
                    longitude: v.clamp(-180.0, 180.0),
                    latitude: w.clamp(-90.0, 90.0),
                    decile: Some(1),
                    core20: true,
                    registered: true,
                }];
                let map = map::Map {
                    areas: &areas,
                    focus: Some("E1".into()),
                    lsoas: &lsoas,
                    registered_label: "P".into(),
                    index_label: "IMD".into(),
                    zoom: map::MapZoom::Registered,
                };
                survives(&map, &format!("map {v} {w}"));
            }
        }
    }
}
