//! Point-in-polygon: which footprint (ICB, PCN footprint, neighbourhood) contains a point.
//!
//! Owns [`FootprintIndex`], an R-tree over the parts of a set of footprint polygons with a fast
//! exact test per part, used wherever a point (an LSOA centroid, a practice) is attributed to a
//! footprint by geometry: the synthetic generator (`crate::synth`, LSOA → ICB) and the
//! pipeline's geometric attribution. Reading the polygons is `crate::ingest::footprints`; what a
//! caller does with points that fall in no footprint or in several (report them, fall back to
//! the nearest within a distance) is the caller's policy, so the index reports all three cases.
//!
//! Coordinates are WGS84 longitude/latitude degrees, as in the bundled ONS boundaries. Each
//! footprint's edges go into an interval tree on latitude (geo's `IntervalTreeMultiPolygon`,
//! a winding-number test with robust predicates), so a point query costs O(log n + k) rather
//! than O(n) per polygon of n vertices, and it needs no validity precondition (geo's monotone
//! subdivision does, and checking validity costs minutes on the ICB boundaries). Rings are
//! oriented first (exteriors anticlockwise, holes clockwise) because the winding number only
//! treats holes as holes when they wind the other way, and not every GeoJSON file follows RFC
//! 7946. A point exactly on a boundary is in neither footprint (geo's `Contains`): callers find
//! it with [`FootprintIndex::nearest`] at distance 0. Overlapping polygons give
//! [`Location::Several`].

use geo::indexed::IntervalTreeMultiPolygon;
use geo::orient::Direction;
use geo::{BoundingRect, Contains, Coord, MultiPolygon, Orient};
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

use crate::ingest::Footprints;

/// Kilometres per degree of latitude (mean, WGS84); a degree of longitude is this times the
/// cosine of the latitude. Good to well under 1% over England, which is all distances here need.
pub const KM_PER_DEGREE: f64 = 111.2;

/// Where a point falls among the footprints of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In no footprint.
    Outside,
    /// In exactly one footprint (its index in the index's footprint order).
    Inside(usize),
    /// In more than one footprint (overlapping polygons): their indexes, ascending.
    Several(Vec<usize>),
}

impl Location {
    /// The footprint to attribute the point to: the only one, or the first (lowest index) of
    /// several, or `None` outside every footprint.
    pub fn footprint(&self) -> Option<usize> {
        match self {
            Location::Outside => None,
            Location::Inside(index) => Some(*index),
            Location::Several(indexes) => indexes.first().copied(),
        }
    }
}

/// How many points of a batch fell in one, several or no footprint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LocationSummary {
    /// Points in exactly one footprint.
    pub inside_one: usize,
    /// Points in more than one footprint.
    pub inside_several: usize,
    /// Points in none.
    pub outside: usize,
}

impl LocationSummary {
    /// Count the locations of a batch.
    pub fn of(locations: &[Location]) -> Self {
        let mut summary = LocationSummary::default();
        for location in locations {
            match location {
                Location::Outside => summary.outside += 1,
                Location::Inside(_) => summary.inside_one += 1,
                Location::Several(_) => summary.inside_several += 1,
            }
        }
        summary
    }
}

/// An R-tree over the polygons of a set of footprints, with an edge index per footprint, for
/// point-in-polygon queries.
pub struct FootprintIndex {
    codes: Vec<String>,
    /// Each footprint's polygons (oriented), kept for distances to points outside them all.
    shapes: Vec<MultiPolygon<f64>>,
    /// Each footprint's edges, for the exact test.
    edges: Vec<IntervalTreeMultiPolygon<f64>>,
    /// Bounding boxes of every polygon; the data is the footprint's index.
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
}

impl std::fmt::Debug for FootprintIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FootprintIndex")
            .field("codes", &self.codes)
            .field("polygons", &self.tree.size())
            .finish()
    }
}

impl FootprintIndex {
    /// Index the footprints of a GeoJSON file, in file order (index `i` is
    /// `footprints.features[i]`).
    pub fn new(footprints: &Footprints) -> Self {
        Self::from_shapes(
            footprints
                .features
                .iter()
                .map(|f| (f.code.clone(), f.geometry.clone())),
        )
    }

    /// Index `(code, polygons)` pairs, in the given order.
    pub fn from_shapes(shapes: impl IntoIterator<Item = (String, MultiPolygon<f64>)>) -> Self {
        let (codes, shapes): (Vec<String>, Vec<MultiPolygon<f64>>) = shapes
            .into_iter()
            .map(|(code, shape)| (code, shape.orient(Direction::Default)))
            .unzip();
        let edges = shapes
            .par_iter()
            .map(IntervalTreeMultiPolygon::new)
            .collect();
        let boxes = shapes
            .iter()
            .enumerate()
            .flat_map(|(footprint, shape)| {
                shape.0.iter().filter_map(move |polygon| {
                    let rect = polygon.bounding_rect()?;
                    Some(GeomWithData::new(
                        Rectangle::from_corners(
                            [rect.min().x, rect.min().y],
                            [rect.max().x, rect.max().y],
                        ),
                        footprint,
                    ))
                })
            })
            .collect();
        FootprintIndex {
            codes,
            shapes,
            edges,
            tree: RTree::bulk_load(boxes),
        }
    }

    /// Number of footprints.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether the index has no footprints.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The code of footprint `index` (e.g. an ICB's ONS code).
    pub fn code(&self, index: usize) -> Option<&str> {
        self.codes.get(index).map(String::as_str)
    }

    /// The codes of every footprint, in index order.
    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    /// Where the point (longitude, latitude) falls.
    pub fn locate(&self, longitude: f64, latitude: f64) -> Location {
        let point = Coord {
            x: longitude,
            y: latitude,
        };
        let mut candidates: Vec<usize> = self
            .tree
            .locate_all_at_point(&[longitude, latitude])
            .map(|candidate| candidate.data)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let found: Vec<usize> = candidates
            .into_iter()
            .filter(|&footprint| {
                self.edges
                    .get(footprint)
                    .is_some_and(|edges| edges.contains(&point))
            })
            .collect();
        match found.as_slice() {
            [] => Location::Outside,
            [one] => Location::Inside(*one),
            _ => Location::Several(found),
        }
    }

    /// [`Self::locate`] for many points (longitude, latitude), in parallel; the result is in
    /// the points' order.
    pub fn locate_all(&self, points: &[[f64; 2]]) -> Vec<Location> {
        points
            .par_iter()
            .map(|[longitude, latitude]| self.locate(*longitude, *latitude))
            .collect()
    }

    /// The footprint to attribute a point to: the one containing it (the first of several),
    /// else the nearest within `max_km` kilometres (a point on a boundary, or a coastal
    /// centroid just outside a clipped boundary), else `None`.
    pub fn attribute(&self, longitude: f64, latitude: f64, max_km: f64) -> Option<usize> {
        self.locate(longitude, latitude)
            .footprint()
            .or_else(|| self.nearest(longitude, latitude, max_km).map(|(i, _)| i))
    }

    /// The footprint nearest to a point that is in none, if one lies within `max_km`
    /// kilometres, with the distance in km. For centroids of coastal areas that fall just
    /// outside generalised (clipped) boundaries. Distances use a local equirectangular
    /// projection at the point's latitude: accurate to well under 1% at these distances.
    pub fn nearest(&self, longitude: f64, latitude: f64, max_km: f64) -> Option<(usize, f64)> {
        let km_x = KM_PER_DEGREE * latitude.to_radians().cos();
        if km_x <= 0.0 {
            return None;
        }
        let reach_x = max_km / km_x;
        let reach_y = max_km / KM_PER_DEGREE;
        let envelope = rstar::AABB::from_corners(
            [longitude - reach_x, latitude - reach_y],
            [longitude + reach_x, latitude + reach_y],
        );
        let mut candidates: Vec<usize> = self
            .tree
            .locate_in_envelope_intersecting(&envelope)
            .map(|c| c.data)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let project = |c: &Coord<f64>| ((c.x - longitude) * km_x, (c.y - latitude) * KM_PER_DEGREE);
        let mut best: Option<(usize, f64)> = None;
        for footprint in candidates {
            let Some(shape) = self.shapes.get(footprint) else {
                continue;
            };
            let rings = shape
                .0
                .iter()
                .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()));
            for ring in rings {
                for line in ring.lines() {
                    let distance = distance_to_segment(project(&line.start), project(&line.end));
                    if distance <= max_km && best.is_none_or(|(_, d)| distance < d) {
                        best = Some((footprint, distance));
                    }
                }
            }
        }
        best
    }
}

/// Distance from the origin to the segment a–b (planar, in the units of the coordinates).
fn distance_to_segment(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length_squared = dx * dx + dy * dy;
    let t = if length_squared > 0.0 {
        (-(a.0 * dx + a.1 * dy) / length_squared).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (x, y) = (a.0 + t * dx, a.1 + t * dy);
    (x * x + y * y).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    /// geo's plain test, without the index: the reference the index is checked against.
    fn polygon_contains(shape: &MultiPolygon<f64>, longitude: f64, latitude: f64) -> bool {
        shape.contains(&Coord {
            x: longitude,
            y: latitude,
        })
    }

    fn square(x0: f64, y0: f64, size: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![polygon![
            (x: x0, y: y0),
            (x: x0 + size, y: y0),
            (x: x0 + size, y: y0 + size),
            (x: x0, y: y0 + size),
            (x: x0, y: y0),
        ]])
    }

    fn two_squares() -> FootprintIndex {
        FootprintIndex::from_shapes([
            ("A".to_string(), square(0.0, 50.0, 1.0)),
            ("B".to_string(), square(1.0, 50.0, 1.0)),
        ])
    }

    #[test]
    fn locate_inside_outside_and_on_a_shared_edge() {
        let index = two_squares();
        assert_eq!(index.locate(0.5, 50.5), Location::Inside(0));
        assert_eq!(index.locate(1.5, 50.5), Location::Inside(1));
        assert_eq!(index.locate(3.0, 50.5), Location::Outside);
        // On the shared edge: in neither, and at distance 0 from both (the first is nearest).
        assert_eq!(index.locate(1.0, 50.5), Location::Outside);
        assert_eq!(index.nearest(1.0, 50.5, 1.0), Some((0, 0.0)));
        assert_eq!(index.code(1), Some("B"));
    }

    #[test]
    fn locate_all_keeps_the_order_of_the_points() {
        let index = two_squares();
        let points = [[1.5, 50.5], [0.5, 50.5], [9.0, 9.0]];
        let located = index.locate_all(&points);
        assert_eq!(
            located,
            vec![Location::Inside(1), Location::Inside(0), Location::Outside]
        );
        let summary = LocationSummary::of(&located);
        assert_eq!((summary.inside_one, summary.outside), (2, 1));
    }

    #[test]
    fn overlapping_footprints_are_several() {
        let index = FootprintIndex::from_shapes([
            ("A".to_string(), square(0.0, 50.0, 2.0)),
            ("B".to_string(), square(1.0, 50.0, 2.0)),
        ]);
        assert_eq!(index.locate(1.5, 50.5), Location::Several(vec![0, 1]));
        assert_eq!(index.locate(1.5, 50.5).footprint(), Some(0));
    }

    #[test]
    fn a_hole_is_outside_whichever_way_its_ring_winds() {
        let with_hole = MultiPolygon(vec![polygon![
            exterior: [(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0), (x: 0.0, y: 4.0), (x: 0.0, y: 0.0)],
            interiors: [[(x: 1.0, y: 1.0), (x: 2.0, y: 1.0), (x: 2.0, y: 2.0), (x: 1.0, y: 2.0), (x: 1.0, y: 1.0)]],
        ]]);
        // The `polygon!` macro winds both rings the same way, as some GeoJSON files do.
        let index = FootprintIndex::from_shapes([("H".to_string(), with_hole)]);
        assert_eq!(index.locate(1.5, 1.5), Location::Outside);
        assert_eq!(index.locate(3.0, 3.0), Location::Inside(0));
    }

    #[test]
    fn nearest_finds_a_footprint_within_reach_only() {
        let index = two_squares();
        // 0.01 degrees of latitude south of square A: about 1.1 km.
        let (footprint, km) = index.nearest(0.5, 49.99, 5.0).expect("within 5 km");
        assert_eq!(footprint, 0);
        assert!((km - 1.112).abs() < 0.01, "{km}");
        assert_eq!(index.nearest(0.5, 49.0, 5.0), None);
    }

    #[test]
    fn every_english_lsoa_centroid_is_in_one_icb() {
        use crate::ingest::{InputKind, ReadOptions, read_footprints, read_table};
        use polars::prelude::*;

        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        let footprints = read_footprints(&data.join("icb22_boundaries.geojson"), None, None)
            .expect("bundled ICB boundaries");
        let index = FootprintIndex::new(&footprints);
        assert_eq!(index.len(), 42);
        let centroids = read_table(
            InputKind::LsoaCentroids,
            &data.join("lsoa11_centroids.parquet"),
            &ReadOptions::default(),
        )
        .expect("bundled centroids")
        .frame
        .filter(col(crate::schema::LSOA_CODE).str().starts_with(lit("E")))
        .collect()
        .expect("centroids frame");
        let longitude = centroids
            .column(crate::schema::LONGITUDE)
            .and_then(|c| c.f64().cloned())
            .expect("longitude");
        let latitude = centroids
            .column(crate::schema::LATITUDE)
            .and_then(|c| c.f64().cloned())
            .expect("latitude");
        let points: Vec<[f64; 2]> = longitude
            .iter()
            .zip(latitude.iter())
            .filter_map(|(x, y)| Some([x?, y?]))
            .collect();
        assert_eq!(points.len(), 32_844);
        let located = index.locate_all(&points);
        let summary = LocationSummary::of(&located);
        eprintln!("English LSOA 2011 centroids in the 42 ICBs: {summary:?}");
        // Checked against geo's plain polygon test on a sample.
        for (point, location) in points.iter().zip(&located).step_by(331) {
            let plain: Vec<usize> = (0..index.len())
                .filter(|&i| polygon_contains(&index.shapes[i], point[0], point[1]))
                .collect();
            if let Location::Inside(i) = location {
                assert_eq!(plain, vec![*i], "{point:?}");
            }
        }
        // Measured on the bundled files: all 32,844 in exactly one ICB, none in several or in
        // none. A new boundary vintage that breaks this shows up here first.
        assert_eq!(
            summary,
            LocationSummary {
                inside_one: 32_844,
                inside_several: 0,
                outside: 0
            }
        );
    }
}
