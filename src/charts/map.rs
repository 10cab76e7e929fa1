//! The footprint map: ICB (or other footprint) polygons with the area of interest emphasised,
//! LSOA centroids as dots shaded by IMD decile, Core20 LSOAs with a vermillion rim, and the LSOAs
//! where the PCN's registered patients live drawn as larger squares on top. A legend column, a
//! scale bar and a north arrow sit to the right of the map, where they cover no data.
//!
//! Two framings ([`MapZoom`]): the focus area (the ICB, with a dashed box round the PCN's LSOAs)
//! or a close-up of the PCN's LSOAs. Projection: equirectangular with longitude scaled by
//! cos(latitude) at the view's centre, true to a few percent over an ICB (England is not
//! squashed). Polygons are projected to pixels, simplified to half a pixel (Douglas–Peucker, so
//! SVGs stay small), filled clipped to the frame and outlined clipped as lines. Footprints are
//! read by `ingest::read_footprints`; which LSOAs are the PCN's is the caller's choice (e.g. from
//! `footprint_weights`).

use std::path::Path;

use geo::{BoundingRect, Contains, Coord, LineString, MultiPolygon, Point, Rect as GeoRect};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::layout::{Canvas, Key, LegendEntry, Marker, Rect, Shape, Weight};
use super::projection::{Projection, area_px, project_ring, ring_fill, ring_outline, scale_km};
use super::style::{self, INK, MUTED, Scale, text_size};
use super::{Chart, ChartError, ChartText};
use crate::ingest::Footprint;

/// One LSOA on the map.
#[derive(Debug, Clone, PartialEq)]
pub struct LsoaPoint {
    /// The LSOA code.
    pub code: String,
    /// Centroid longitude (WGS84).
    pub longitude: f64,
    /// Centroid latitude (WGS84).
    pub latitude: f64,
    /// National IMD decile, 1 = most deprived; `None` when unknown (drawn hollow).
    pub decile: Option<u8>,
    /// In the Core20 (the most deprived 20% of LSOAs nationally).
    pub core20: bool,
    /// Home to the PCN's registered patients (marked as a square).
    pub registered: bool,
}

/// The data of a map.
#[derive(Debug, Clone)]
pub struct Map<'a> {
    /// Footprint polygons to draw (e.g. every ICB: those outside the view are skipped).
    pub areas: &'a [Footprint],
    /// The code of the area to emphasise and frame (the PCN's ICB).
    pub focus: Option<String>,
    /// The LSOAs to draw.
    pub lsoas: &'a [LsoaPoint],
    /// Whose registered patients the squares show: "Riverside PCN".
    pub registered_label: String,
    /// The deprivation index, for the legend: "IMD 2019".
    pub index_label: String,
    /// What the map frames.
    pub zoom: MapZoom,
}

/// What a map frames. A PCN is a small part of an ICB: the report can show both, the ICB for
/// context (the PCN's area boxed) and a close-up of where its patients live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MapZoom {
    /// The focus area (the ICB), or every LSOA when there is no focus.
    #[default]
    Focus,
    /// The LSOAs where the PCN's registered patients live (the focus view if there are none).
    Registered,
}

/// Render a map as SVG.
///
/// # Errors
/// [`ChartError::NoData`] with neither areas nor LSOAs; [`ChartError::Invalid`] for a focus code
/// that is not among the areas, an LSOA with coordinates outside longitude/latitude ranges or a
/// decile outside 1–10.
pub fn render_svg(data: &Map<'_>, text: &ChartText) -> Result<String, ChartError> {
    super::svg(data, text)
}

/// Render a map as a PNG file (twice the SVG's resolution).
///
/// # Errors
/// As [`render_svg`], and [`ChartError::Write`] when the file cannot be written.
pub fn render_png(data: &Map<'_>, text: &ChartText, path: &Path) -> Result<(), ChartError> {
    super::png(data, text, path, Scale::PNG)
}

/// Width of the legend column, in CSS pixels.
const LEGEND: f64 = 230.0;
/// Smallest view, in degrees of latitude (a single LSOA still gets a neighbourhood).
const MIN_SPAN: f64 = 0.02;

/// The fill of areas other than the focus, and of the focus.
const OTHER_FILL: RGBColor = RGBColor(236, 236, 236);
const OTHER_EDGE: RGBColor = RGBColor(190, 190, 190);
const FOCUS_FILL: RGBColor = RGBColor(255, 255, 255);

impl Map<'_> {
    fn invalid(message: String) -> ChartError {
        ChartError::Invalid {
            chart: Self::KIND,
            message,
        }
    }

    fn focus_area(&self) -> Option<&Footprint> {
        let code = self.focus.as_deref()?;
        self.areas.iter().find(|a| a.code == code)
    }

    /// An area's name for the legend, with "Integrated Care Board" shortened to "ICB" (the
    /// boundary files spell it out, which takes three legend lines).
    fn area_name(area: &Footprint) -> String {
        area.name.as_deref().map_or_else(
            || area.code.clone(),
            |n| n.replace("Integrated Care Board", "ICB"),
        )
    }

    /// The bounding box of some LSOAs.
    fn points_box<'p>(points: impl Iterator<Item = &'p LsoaPoint>) -> Option<GeoRect<f64>> {
        let mut coords = points.map(|p| Coord {
            x: p.longitude,
            y: p.latitude,
        });
        let first = coords.next()?;
        Some(coords.fold(GeoRect::new(first, first), |r, c| {
            GeoRect::new(
                Coord {
                    x: r.min().x.min(c.x),
                    y: r.min().y.min(c.y),
                },
                Coord {
                    x: r.max().x.max(c.x),
                    y: r.max().y.max(c.y),
                },
            )
        }))
    }

    /// The box of the registered LSOAs (the PCN's area), if any.
    fn registered_box(&self) -> Option<GeoRect<f64>> {
        Self::points_box(self.lsoas.iter().filter(|p| p.registered))
    }

    /// The view: for [`MapZoom::Registered`] the PCN's LSOAs padded by 15%; otherwise the focus
    /// area's box, else the points', else every area's, padded by 4%.
    fn view(&self) -> Option<GeoRect<f64>> {
        let areas_box = || {
            let all: MultiPolygon<f64> = self
                .areas
                .iter()
                .flat_map(|a| a.geometry.0.iter().cloned())
                .collect();
            all.bounding_rect()
        };
        let registered = self
            .registered_box()
            .filter(|_| self.zoom == MapZoom::Registered);
        let pad = if registered.is_some() { 0.15 } else { 0.04 };
        let base = registered
            .or_else(|| self.focus_area().and_then(|a| a.geometry.bounding_rect()))
            .or_else(|| Self::points_box(self.lsoas.iter()))
            .or_else(areas_box)?;
        let pad_x = (base.width() * pad).max(MIN_SPAN / 2.0);
        let pad_y = (base.height() * pad).max(MIN_SPAN / 2.0);
        Some(GeoRect::new(
            Coord {
                x: base.min().x - pad_x,
                y: base.min().y - pad_y,
            },
            Coord {
                x: base.max().x + pad_x,
                y: base.max().y + pad_y,
            },
        ))
    }

    /// Marker sizes grow in a close-up, where LSOAs are further apart on the page.
    fn marker_scale(&self) -> f64 {
        if self.zoom == MapZoom::Registered && self.registered_box().is_some() {
            1.6
        } else {
            1.0
        }
    }

    /// The legend and the three LSOA marks: dot, the PCN's square, the Core20 halo (a
    /// vermillion disc drawn under a dot, so a dense cluster keeps its colours).
    fn legend(&self, focus_drawn: bool, others_drawn: bool) -> (Vec<LegendEntry>, [Marker; 3]) {
        let k = self.marker_scale();
        let dot = Marker {
            shape: Shape::Circle,
            radius: 2.4 * k,
            fill: Some(style::decile_colour(4)),
            stroke: None,
        };
        let square = Marker {
            shape: Shape::Square,
            radius: 4.2 * k,
            fill: Some(style::decile_colour(4)),
            stroke: Some((INK, 1.0)),
        };
        let halo = Marker {
            shape: Shape::Circle,
            radius: dot.radius + 1.8,
            fill: Some(style::HIGHLIGHT),
            stroke: None,
        };
        let legend_dot = Marker { radius: 2.4, ..dot };
        let core20_dot = Marker {
            fill: Some(style::decile_colour(1)),
            ..legend_dot
        };
        let mut entries = vec![
            LegendEntry::new(Key::Marker(legend_dot), "LSOA (centroid)"),
            LegendEntry::new(
                Key::Marker(Marker {
                    radius: 4.2,
                    ..square
                }),
                format!(
                    "LSOA where {}'s registered patients live",
                    self.registered_label
                ),
            ),
            LegendEntry::new(
                Key::Stack(vec![
                    Marker {
                        radius: legend_dot.radius + 1.8,
                        ..halo
                    },
                    core20_dot,
                ]),
                "Core20 (vermillion rim): most deprived 20% of LSOAs in England",
            ),
        ];
        if let Some(focus) = self.focus_area().filter(|_| focus_drawn) {
            entries.push(LegendEntry::new(
                Key::Line {
                    colour: INK,
                    width: 2.0,
                    dashed: false,
                },
                Self::area_name(focus),
            ));
        }
        if self.zoom == MapZoom::Focus && self.registered_box().is_some() {
            entries.push(LegendEntry::new(
                Key::Line {
                    colour: INK,
                    width: 1.25,
                    dashed: true,
                },
                format!("{}'s area", self.registered_label),
            ));
        }
        if others_drawn {
            entries.push(LegendEntry::new(
                Key::Swatch {
                    fill: OTHER_FILL,
                    stroke: Some(OTHER_EDGE),
                },
                if self.focus_area().is_some() {
                    "Neighbouring areas (their LSOAs paler)"
                } else {
                    "Areas"
                },
            ));
        }
        (entries, [dot, square, halo])
    }
}

impl Chart for Map<'_> {
    const KIND: &'static str = "map";

    fn check(&self) -> Result<(), ChartError> {
        if let Some(code) = &self.focus
            && self.focus_area().is_none()
        {
            return Err(Self::invalid(format!(
                "the focus area {code} is not among the areas"
            )));
        }
        for area in self.areas {
            let bad = area
                .geometry
                .iter()
                .flat_map(|polygon| std::iter::once(polygon.exterior()).chain(polygon.interiors()))
                .flat_map(|ring| ring.coords())
                .any(|c| !(c.x.is_finite() && c.y.is_finite()));
            if bad {
                return Err(Self::invalid(format!(
                    "area {} has a coordinate that is not a finite number",
                    area.code
                )));
            }
        }
        for p in self.lsoas {
            if !((-180.0..=180.0).contains(&p.longitude) && (-90.0..=90.0).contains(&p.latitude)) {
                return Err(Self::invalid(format!(
                    "LSOA {} has coordinates ({}, {}) outside longitude/latitude ranges",
                    p.code, p.longitude, p.latitude
                )));
            }
            if p.decile.is_some_and(|d| !(1..=10).contains(&d)) {
                return Err(Self::invalid(format!(
                    "LSOA {} has decile {:?}: expected 1 to 10",
                    p.code, p.decile
                )));
            }
        }
        if self.view().is_none() {
            return Err(ChartError::NoData {
                chart: Self::KIND,
                reason: "no areas and no LSOAs".into(),
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
        let Some(view) = self.view() else {
            return Err(ChartError::NoData {
                chart: Self::KIND,
                reason: "no areas and no LSOAs".into(),
            });
        };
        let in_view = |p: &LsoaPoint| {
            (view.min().x..=view.max().x).contains(&p.longitude)
                && (view.min().y..=view.max().y).contains(&p.latitude)
        };
        let registered = self.lsoas.iter().filter(|p| p.registered).count();
        let registered_out = self
            .lsoas
            .iter()
            .filter(|p| p.registered && !in_view(p))
            .count();
        let mut notes = vec![format!(
            "Dots are LSOA centroids coloured by national {} decile; the map is north up, with \
             longitude scaled by the cosine of the latitude.",
            self.index_label
        )];
        if registered == 0 {
            notes.push(format!(
                "No LSOA is marked as home to {}'s patients.",
                self.registered_label
            ));
        } else if registered_out > 0 {
            notes.push(format!(
                "{registered_out} of the {registered} LSOAs where {}'s patients live lie outside this view.",
                self.registered_label
            ));
        }
        let body = canvas.frame(text, &[], &notes)?;

        // Map frame on the left, legend column on the right.
        let legend_w = canvas.px(LEGEND);
        let available = Rect {
            x0: body.x0,
            y0: body.y0,
            x1: body.x1 - legend_w - canvas.px(16.0),
            y1: body.y1,
        };
        let frame = available;
        if frame.width() < canvas.px(120.0) || frame.height() < canvas.px(120.0) {
            return Err(Self::invalid(
                "the title and notes leave no room for the map".into(),
            ));
        }
        let mut projection = Projection::fit(view, frame);
        // Put the map at the left edge, so the legend sits right next to it.
        let (left, _) = projection.xy(view.min().x, view.max().y);
        projection.cx -= left - f64::from(frame.x0);
        // Shrink the frame to the map's own aspect, so the legend sits next to the map.
        let (left, top) = projection.xy(view.min().x, view.max().y);
        let (right, bottom) = projection.xy(view.max().x, view.min().y);
        let frame = Rect {
            x0: (left.floor() as i32).max(frame.x0),
            y0: (top.floor() as i32).max(frame.y0),
            x1: (right.ceil() as i32).min(frame.x1),
            y1: (bottom.ceil() as i32).min(frame.y1),
        };

        // Areas: others first, then the focus on top.
        canvas.rect(frame, Some(style::tint(OTHER_FILL, 0.5)), None)?;
        let focus_code = self.focus.as_deref();
        let visible = |a: &&Footprint| {
            a.geometry.bounding_rect().is_some_and(|b| {
                b.max().x >= view.min().x
                    && b.min().x <= view.max().x
                    && b.max().y >= view.min().y
                    && b.min().y <= view.max().y
            })
        };
        let others: Vec<&Footprint> = self
            .areas
            .iter()
            .filter(|a| Some(a.code.as_str()) != focus_code)
            .filter(visible)
            .collect();
        // What was drawn decides the legend: a close-up inside the ICB shows neither its
        // boundary nor its neighbours.
        let (mut focus_drawn, mut others_drawn) = (false, false);
        for (area, fill, edge, width) in others
            .iter()
            .map(|a| (*a, OTHER_FILL, OTHER_EDGE, 0.75))
            .chain(self.focus_area().map(|a| (a, FOCUS_FILL, INK, 2.0)))
        {
            let is_focus = Some(area.code.as_str()) == focus_code;
            let mut outlines = Vec::new();
            for polygon in &area.geometry {
                let exterior = project_ring(polygon.exterior(), &projection, s);
                let filled = ring_fill(&exterior, frame);
                if !is_focus && area_px(&filled) >= 1.0 {
                    others_drawn = true;
                }
                canvas.polygon(&filled, fill, 1.0)?;
                outlines.extend(ring_outline(&exterior, frame));
                // Holes are outlined, not cut out: plotters fills simple polygons only, and a
                // hole is another area drawn in its own colour.
                for hole in polygon.interiors() {
                    outlines.extend(ring_outline(&project_ring(hole, &projection, s), frame));
                }
            }
            for run in outlines {
                if is_focus && run.len() > 1 {
                    focus_drawn = true;
                }
                canvas.path(&run, edge, width)?;
            }
        }

        // LSOAs: Core20 halos under everything, then dots, then the PCN's squares on top (with
        // their own halo), so the PCN's places are never hidden by a dense city.
        let (_, [dot, square, halo]) = self.legend(false, false);
        // Which LSOAs lie in the focus area, tested against its outline as drawn (projected and
        // simplified to half a pixel): exact to the pixel, and a tenth of the work of the full
        // boundary, which matters when the report draws a map for every PCN.
        let focus_shape: Option<MultiPolygon<f64>> = self.focus_area().map(|a| {
            a.geometry
                .iter()
                .map(|polygon| {
                    let ring = |r: &LineString<f64>| -> LineString<f64> {
                        project_ring(r, &projection, s)
                            .into_iter()
                            .map(|(x, y)| Coord { x, y })
                            .collect()
                    };
                    geo::Polygon::new(
                        ring(polygon.exterior()),
                        polygon.interiors().iter().map(ring).collect(),
                    )
                })
                .collect()
        });
        let focus_box = focus_shape.as_ref().and_then(|g| g.bounding_rect());
        let inside_focus = |(x, y): (f64, f64)| match (&focus_shape, focus_box) {
            (Some(g), Some(b)) => {
                b.min().x <= x
                    && x <= b.max().x
                    && b.min().y <= y
                    && y <= b.max().y
                    && g.contains(&Point::new(x, y))
            }
            _ => true,
        };
        // Marks that would cross the frame are left out rather than cut in half.
        let margin = canvas.px(square.radius + 2.0);
        let shown: Vec<(&LsoaPoint, (i32, i32), bool)> = self
            .lsoas
            .iter()
            .filter(|p| in_view(p))
            .map(|p| {
                let (x, y) = projection.xy(p.longitude, p.latitude);
                (
                    p,
                    (x.round() as i32, y.round() as i32),
                    inside_focus((x, y)),
                )
            })
            .filter(|(_, (x, y), _)| {
                (frame.x0 + margin..=frame.x1 - margin).contains(x)
                    && (frame.y0 + margin..=frame.y1 - margin).contains(y)
            })
            .collect();
        let colour = |p: &LsoaPoint| p.decile.map(style::decile_colour);
        // Halos only inside the focus area: neighbours are context.
        for (_, at, _) in shown
            .iter()
            .filter(|(p, _, inside)| p.core20 && *inside && !p.registered)
        {
            canvas.marker(*at, &halo)?;
        }
        for (p, at, inside) in shown.iter().filter(|(p, _, _)| !p.registered) {
            let fill = colour(p).map(|c| if *inside { c } else { style::tint(c, 0.6) });
            let m = Marker {
                fill,
                stroke: if fill.is_none() {
                    Some((MUTED, 0.75))
                } else {
                    None
                },
                ..dot
            };
            canvas.marker(*at, &m)?;
        }
        for (p, at, _) in shown.iter().filter(|(p, _, _)| p.registered) {
            if p.core20 {
                let m = Marker {
                    shape: Shape::Square,
                    radius: square.radius + 2.0,
                    ..halo
                };
                canvas.marker(*at, &m)?;
            }
            let m = Marker {
                fill: colour(p).or(Some(style::BACKGROUND)),
                ..square
            };
            canvas.marker(*at, &m)?;
        }

        // In the ICB view, a dashed box shows where the PCN's patients live.
        if self.zoom == MapZoom::Focus
            && let Some(b) = self.registered_box()
        {
            let pad = canvas.px(8.0);
            let (x0, y0) = projection.xy(b.min().x, b.max().y);
            let (x1, y1) = projection.xy(b.max().x, b.min().y);
            let r = Rect {
                x0: (x0.round() as i32 - pad).max(frame.x0),
                y0: (y0.round() as i32 - pad).max(frame.y0),
                x1: (x1.round() as i32 + pad).min(frame.x1),
                y1: (y1.round() as i32 + pad).min(frame.y1),
            };
            canvas.dashed(
                &[
                    (r.x0, r.y0),
                    (r.x1, r.y0),
                    (r.x1, r.y1),
                    (r.x0, r.y1),
                    (r.x0, r.y0),
                ],
                INK,
                1.25,
            )?;
            let style = canvas.font(text_size::TICK, Weight::Bold, INK);
            let w = canvas.text_width(&self.registered_label, &style)?;
            let h = canvas.line_height(text_size::TICK);
            // The name above the box, or below it at the top of the map.
            let top = if r.y0 - h - canvas.px(2.0) > frame.y0 {
                r.y0 - h - canvas.px(2.0)
            } else {
                r.y1 + canvas.px(2.0)
            };
            let left = r.x0.clamp(
                frame.x0 + canvas.px(2.0),
                (frame.x1 - w - canvas.px(4.0)).max(frame.x0),
            );
            canvas.rect(
                Rect {
                    x0: left - canvas.px(2.0),
                    y0: top,
                    x1: left + w + canvas.px(2.0),
                    y1: top + h,
                },
                Some(style::BACKGROUND),
                None,
            )?;
            canvas.text(
                &self.registered_label,
                (left, top + h / 2),
                &style,
                HPos::Left,
                VPos::Center,
            )?;
        }
        canvas.rect(frame, None, Some((style::AXIS, 1.0)))?;

        // Legend column next to the map: the decile ramp, then the marks.
        let lx = (frame.x1 + canvas.px(24.0)).min(body.x1 - legend_w);
        let mut y = frame.y0;
        let heading = canvas.font(text_size::BODY, Weight::Bold, INK);
        canvas.text(
            &format!("{} decile", self.index_label),
            (lx, y),
            &heading,
            HPos::Left,
            VPos::Top,
        )?;
        y += canvas.line_height(text_size::BODY) + canvas.px(4.0);
        let cell = (legend_w - canvas.px(4.0)) / 10;
        let cell_h = canvas.px(14.0);
        let tick = canvas.font(text_size::TICK, Weight::Normal, MUTED);
        for d in 1..=10u8 {
            let x = lx + cell * i32::from(d - 1);
            let fill = style::decile_colour(d);
            canvas.rect(
                Rect {
                    x0: x,
                    y0: y,
                    x1: x + cell,
                    y1: y + cell_h,
                },
                Some(fill),
                None,
            )?;
            if d == 1 || d == 10 {
                canvas.text(
                    &d.to_string(),
                    (x + cell / 2, y + cell_h / 2),
                    &canvas.font(text_size::TICK, Weight::Normal, style::text_on(fill)),
                    HPos::Center,
                    VPos::Center,
                )?;
            }
        }
        y += cell_h + canvas.px(3.0);
        canvas.text("most deprived", (lx, y), &tick, HPos::Left, VPos::Top)?;
        canvas.text(
            "least deprived",
            (lx + cell * 10, y),
            &tick,
            HPos::Right,
            VPos::Top,
        )?;
        y += canvas.line_height(text_size::TICK) + canvas.px(14.0);
        let (entries, _) = self.legend(focus_drawn, others_drawn);
        y = canvas.legend_column(&entries, lx, y, legend_w)?;

        // Scale bar and north arrow under the legend, where they cover no data.
        let small = canvas.font(text_size::TICK, Weight::Normal, INK);
        let max_bar = f64::from(legend_w - canvas.px(60.0));
        let km = scale_km(max_bar / projection.px_per_km());
        let bar = (km * projection.px_per_km()).round() as i32;
        let by = y + canvas.px(22.0);
        canvas.path(
            &[
                (lx, by - canvas.px(5.0)),
                (lx, by),
                (lx + bar, by),
                (lx + bar, by - canvas.px(5.0)),
            ],
            INK,
            1.5,
        )?;
        let label = format!(
            "{} km",
            style::format_number(km, if km < 1.0 { 1 } else { 0 })
        );
        canvas.text(
            &label,
            (lx + bar + canvas.px(8.0), by),
            &small,
            HPos::Left,
            VPos::Center,
        )?;
        let nx = lx + legend_w - canvas.px(20.0);
        let ny = by - canvas.px(24.0);
        canvas.polygon(
            &[
                (nx, ny),
                (nx - canvas.px(6.0), ny + canvas.px(11.0)),
                (nx + canvas.px(6.0), ny + canvas.px(11.0)),
            ],
            INK,
            1.0,
        )?;
        canvas.path(
            &[(nx, ny + canvas.px(10.0)), (nx, ny + canvas.px(20.0))],
            INK,
            2.0,
        )?;
        canvas.text(
            "N",
            (nx, ny + canvas.px(22.0)),
            &canvas.font(text_size::BODY, Weight::Bold, INK),
            HPos::Center,
            VPos::Top,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::check::{check_svg, png_size};
    use geo::polygon;

    fn areas() -> Vec<Footprint> {
        let square = |code: &str, name: &str, x: f64| Footprint {
            code: code.into(),
            name: Some(name.into()),
            properties: serde_json::Map::new(),
            geometry: MultiPolygon(vec![polygon![
                (x: x, y: 53.0), (x: x + 0.5, y: 53.0), (x: x + 0.5, y: 53.3), (x: x, y: 53.3), (x: x, y: 53.0)
            ]]),
        };
        vec![
            square("E54000001", "NHS Test & <Example> ICB", -1.5),
            square("E54000002", "NHS Next Door ICB", -1.0),
        ]
    }

    fn lsoas() -> Vec<LsoaPoint> {
        (0..200)
            .map(|i| {
                let f = f64::from(i);
                LsoaPoint {
                    code: format!("E0100{i:04}"),
                    longitude: -1.48 + (f * 0.37).fract() * 0.9,
                    latitude: 53.02 + (f * 0.61).fract() * 0.26,
                    decile: Some((i % 10) as u8 + 1),
                    core20: i % 10 < 2,
                    registered: i % 7 == 0,
                }
            })
            .collect()
    }

    fn text() -> ChartText {
        ChartText::new(
            "Where Riverside PCN's patients live",
            "Source: test; contains OS data © Crown copyright",
        )
    }

    #[test]
    fn map_svg_has_legend_and_names() {
        let areas = areas();
        let points = lsoas();
        let data = Map {
            areas: &areas,
            focus: Some("E54000001".into()),
            lsoas: &points,
            registered_label: "Riverside PCN".into(),
            index_label: "IMD 2019".into(),
            zoom: MapZoom::Focus,
        };
        let svg = render_svg(&data, &text()).expect("renders");
        let s = check_svg(&svg).expect("xml");
        for t in [
            "Where Riverside PCN's patients live",
            "IMD 2019 decile",
            "most deprived",
            "least deprived",
            "N",
            "NHS Test & <Example> ICB",
        ] {
            assert!(s.has_text(t), "missing {t:?} in {:?}", s.texts);
        }
        assert!(s.has_text_containing("registered patients live"));
        assert!(s.has_text_containing("Core20"));
        assert!(s.has_text_containing("Neighbouring areas"));
        assert!(s.has_text_containing(" km"));
        assert!(
            s.has_text_containing("lie outside this view"),
            "points east of the focus are outside"
        );
    }

    #[test]
    fn map_png_size_and_determinism() {
        let areas = areas();
        let points = lsoas();
        let data = Map {
            areas: &areas,
            focus: Some("E54000001".into()),
            lsoas: &points,
            registered_label: "Riverside PCN".into(),
            index_label: "IMD 2019".into(),
            zoom: MapZoom::Focus,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        render_png(&data, &text(), &a).expect("renders");
        render_png(&data, &text(), &b).expect("renders");
        let (a, b) = (
            std::fs::read(a).expect("read"),
            std::fs::read(b).expect("read"),
        );
        assert_eq!(png_size(&a), Some((1800, 1120)));
        assert_eq!(a, b);
    }

    #[test]
    fn map_degenerate_inputs() {
        let none = Map {
            areas: &[],
            focus: None,
            lsoas: &[],
            registered_label: "X".into(),
            index_label: "IMD 2019".into(),
            zoom: MapZoom::Focus,
        };
        assert!(matches!(
            render_svg(&none, &text()),
            Err(ChartError::NoData { .. })
        ));
        let areas = areas();
        let bad_focus = Map {
            areas: &areas,
            focus: Some("E54999999".into()),
            ..none.clone()
        };
        assert!(
            render_svg(&bad_focus, &text())
                .expect_err("focus")
                .to_string()
                .contains("E54999999")
        );
        let one = [LsoaPoint {
            code: "E01000001".into(),
            longitude: -1.2,
            latitude: 53.1,
            decile: None,
            core20: false,
            registered: true,
        }];
        let single = Map {
            lsoas: &one,
            ..none.clone()
        };
        check_svg(&render_svg(&single, &text()).expect("one point")).expect("xml");
        let wrong = [LsoaPoint {
            decile: Some(11),
            ..one[0].clone()
        }];
        let wrong_decile = Map {
            lsoas: &wrong,
            ..none
        };
        assert!(
            render_svg(&wrong_decile, &text())
                .expect_err("decile")
                .to_string()
                .contains("decile")
        );
    }
}
