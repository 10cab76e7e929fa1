//! Map geometry in device pixels: the equirectangular projection (longitude scaled by the cosine
//! of the latitude), rings projected and simplified to half a pixel, clipped to the map frame as
//! fills (Sutherland–Hodgman) and as outlines, and a nice scale-bar length. The map itself is in
//! `map.rs`.

use geo::{Coord, LineString, Rect as GeoRect, Simplify};

use super::axis::clip_polyline;
use super::layout::Rect;
use super::style::Scale;

/// How far from the canvas, in pixels, a projected point may be.
const FAR: f64 = 1e7;

/// Equirectangular projection of a lon/lat box into a pixel rectangle, centred, aspect kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Projection {
    pub lon0: f64,
    pub lat0: f64,
    pub cos: f64,
    /// Pixels per degree of latitude.
    pub k: f64,
    pub cx: f64,
    pub cy: f64,
}

impl Projection {
    pub fn fit(view: GeoRect<f64>, r: Rect) -> Self {
        let lat0 = (view.min().y + view.max().y) / 2.0;
        let lon0 = (view.min().x + view.max().x) / 2.0;
        let cos = lat0.to_radians().cos().max(0.05);
        let width = (view.width() * cos).max(1e-9);
        let height = view.height().max(1e-9);
        let k = (f64::from(r.width()) / width).min(f64::from(r.height()) / height);
        Projection {
            lon0,
            lat0,
            cos,
            k,
            cx: f64::from(r.x0 + r.x1) / 2.0,
            cy: f64::from(r.y0 + r.y1) / 2.0,
        }
    }

    pub fn xy(&self, lon: f64, lat: f64) -> (f64, f64) {
        (
            self.cx + (lon - self.lon0) * self.cos * self.k,
            self.cy - (lat - self.lat0) * self.k,
        )
    }

    /// Pixels per kilometre.
    pub fn px_per_km(&self) -> f64 {
        self.k / crate::geometry::KM_PER_DEGREE
    }
}

/// Clip a polygon ring (pixels) to a rectangle (Sutherland–Hodgman). Filling the result is
/// exact; its outline runs along the frame where the ring was cut.
pub(crate) fn clip_ring(ring: &[(f64, f64)], r: Rect) -> Vec<(f64, f64)> {
    // Each frame edge as (axis, bound, keep the side above the bound).
    let edges = [
        (0, f64::from(r.x0), true),
        (0, f64::from(r.x1), false),
        (1, f64::from(r.y0), true),
        (1, f64::from(r.y1), false),
    ];
    let coordinate = |p: (f64, f64), axis: usize| if axis == 0 { p.0 } else { p.1 };
    let mut out: Vec<(f64, f64)> = ring.to_vec();
    for (axis, bound, above) in edges {
        let inside = |p: (f64, f64)| {
            let v = coordinate(p, axis);
            if above { v >= bound } else { v <= bound }
        };
        // Where segment a→b crosses the edge.
        let cross = |a: (f64, f64), b: (f64, f64)| {
            let t = (bound - coordinate(a, axis)) / (coordinate(b, axis) - coordinate(a, axis));
            (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
        };
        let input = std::mem::take(&mut out);
        let Some(&last) = input.last() else {
            return out;
        };
        let mut prev = last;
        for &p in &input {
            match (inside(p), inside(prev)) {
                (true, true) => out.push(p),
                (true, false) => {
                    out.push(cross(prev, p));
                    out.push(p);
                }
                (false, true) => out.push(cross(prev, p)),
                (false, false) => {}
            }
            prev = p;
        }
    }
    out
}

/// A ring projected to pixels and simplified to half a pixel (Douglas–Peucker).
pub(crate) fn project_ring(ring: &LineString<f64>, p: &Projection, s: Scale) -> Vec<(f64, f64)> {
    let projected: LineString<f64> = ring
        .coords()
        .map(|c| {
            let (x, y) = p.xy(c.x, c.y);
            // Simplification squares distances: absurdly far points (real boundaries stay within
            // about 10⁵ pixels of a close-up) are pulled in so that never overflows.
            Coord {
                x: x.clamp(-FAR, FAR),
                y: y.clamp(-FAR, FAR),
            }
        })
        // A non-finite point (which `Map::check` refuses anyway) is dropped, not passed on.
        .filter(|c| c.x.is_finite() && c.y.is_finite())
        .collect();
    projected
        .simplify(s.f(0.5))
        .coords()
        .map(|c| (c.x, c.y))
        .collect()
}

/// Round to device pixels, dropping repeats.
pub(crate) fn round_points(points: &[(f64, f64)]) -> Vec<(i32, i32)> {
    let mut out: Vec<(i32, i32)> = Vec::with_capacity(points.len());
    for (x, y) in points {
        let q = (x.round() as i32, y.round() as i32);
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    out
}

/// A projected ring's fill, clipped to the frame.
pub(crate) fn ring_fill(ring: &[(f64, f64)], frame: Rect) -> Vec<(i32, i32)> {
    round_points(&clip_ring(ring, frame))
}

/// A projected ring's outline, clipped to the frame as a line (so no outline is drawn along
/// the frame where the ring was cut).
pub(crate) fn ring_outline(ring: &[(f64, f64)], frame: Rect) -> Vec<Vec<(i32, i32)>> {
    let mut closed = ring.to_vec();
    if let Some(first) = ring.first().copied() {
        closed.push(first);
    }
    let x = (f64::from(frame.x0), f64::from(frame.x1));
    let y = (f64::from(frame.y0), f64::from(frame.y1));
    clip_polyline(&closed, x, y)
        .iter()
        .map(|run| round_points(run))
        .collect()
}

/// A pixel polygon's area (shoelace), to tell a real piece from a sliver clipping leaves along
/// the frame.
pub(crate) fn area_px(points: &[(i32, i32)]) -> f64 {
    let twice: i64 = points
        .iter()
        .zip(points.iter().cycle().skip(1))
        .map(|(a, b)| i64::from(a.0) * i64::from(b.1) - i64::from(b.0) * i64::from(a.1))
        .sum();
    (twice as f64 / 2.0).abs()
}

/// A "nice" scale-bar length in km near `target`.
pub(crate) fn scale_km(target: f64) -> f64 {
    [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]
        .into_iter()
        .rev()
        .find(|km| *km <= target)
        .unwrap_or(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_ring_keeps_inside_and_cuts_outside() {
        let r = Rect {
            x0: 0,
            y0: 0,
            x1: 10,
            y1: 10,
        };
        let inside = vec![(1.0, 1.0), (5.0, 1.0), (5.0, 5.0)];
        assert_eq!(clip_ring(&inside, r), inside);
        let across = vec![(-5.0, 5.0), (5.0, 5.0), (5.0, 8.0), (-5.0, 8.0)];
        let clipped = clip_ring(&across, r);
        assert!(
            clipped
                .iter()
                .all(|(x, y)| (0.0..=10.0).contains(x) && (0.0..=10.0).contains(y))
        );
        assert!(clip_ring(&[(20.0, 20.0), (30.0, 20.0), (30.0, 30.0)], r).is_empty());
    }

    #[test]
    fn projection_keeps_aspect() {
        let view = GeoRect::new(Coord { x: -2.0, y: 52.0 }, Coord { x: -1.0, y: 53.0 });
        let p = Projection::fit(
            view,
            Rect {
                x0: 0,
                y0: 0,
                x1: 1000,
                y1: 1000,
            },
        );
        let (x0, _) = p.xy(-2.0, 52.5);
        let (x1, _) = p.xy(-1.0, 52.5);
        let (_, y0) = p.xy(-1.5, 52.0);
        let (_, y1) = p.xy(-1.5, 53.0);
        // A degree of longitude at 52.5°N is about 0.61 of a degree of latitude.
        assert!(((x1 - x0) / (y0 - y1) - 52.5f64.to_radians().cos()).abs() < 1e-9);
        assert_eq!(scale_km(13.0), 10.0);
        assert_eq!(scale_km(0.1), 0.5);
    }
}
