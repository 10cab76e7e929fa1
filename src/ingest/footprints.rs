//! Footprint polygons from GeoJSON (ICB boundaries, neighbourhoods, PCN footprints).
//!
//! Each feature becomes a [`Footprint`]: a code, a name, its other properties and a
//! `MultiPolygon`. The code and name properties are named in config or found by the ONS
//! convention (`…CD` / `…NM`). Features without a code or a polygon are rejects, like bad rows.

use std::path::{Path, PathBuf};

use geo::{MultiPolygon, Polygon};
use serde_json::Value;

use super::InputError;
use super::report::{IngestReport, Reject, shown_value};

/// One footprint polygon with its identifying properties.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// The footprint's code (e.g. an ICB's ONS code `E54000050`).
    pub code: String,
    /// Its name, when the file has one.
    pub name: Option<String>,
    /// All properties of the feature, as given.
    pub properties: serde_json::Map<String, Value>,
    /// The area (WGS84 longitude/latitude for the bundled boundaries).
    pub geometry: MultiPolygon<f64>,
}

/// The footprints of one GeoJSON file.
#[derive(Debug, Clone)]
pub struct Footprints {
    /// The file.
    pub path: PathBuf,
    /// The property used as the code.
    pub code_property: String,
    /// The property used as the name, if any.
    pub name_property: Option<String>,
    /// The polygons, in file order.
    pub features: Vec<Footprint>,
    /// Rows (features) read, accepted and rejected.
    pub report: IngestReport,
    /// Features refused, with reasons.
    pub rejects: Vec<Reject>,
}

/// Read a GeoJSON FeatureCollection of (multi)polygons.
///
/// `code_property`/`name_property` name the properties to use; when absent, the first property
/// ending in `CD` (resp. `NM`), as ONS boundary files name them, is used.
///
/// # Errors
/// [`InputError`] when the file cannot be read, is not a GeoJSON FeatureCollection, or no code
/// property can be found.
pub fn read_footprints(
    path: &Path,
    code_property: Option<&str>,
    name_property: Option<&str>,
) -> Result<Footprints, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::io(path, "cannot read the GeoJSON file", e))?;
    let collection: geojson::FeatureCollection = text
        .trim_start_matches('\u{feff}')
        .parse::<geojson::GeoJson>()
        .map_err(|e| InputError::file(path, format!("not valid GeoJSON: {e}")))
        .and_then(|g| {
            geojson::FeatureCollection::try_from(g).map_err(|e| {
                InputError::file(path, format!("expected a GeoJSON FeatureCollection: {e}"))
            })
        })?;
    let first_properties = collection
        .features
        .iter()
        .find_map(|f| f.properties.as_ref())
        .cloned()
        .unwrap_or_default();
    let find_by_suffix = |suffix: &str| {
        first_properties
            .keys()
            .find(|k| k.len() > suffix.len() && k.to_ascii_uppercase().ends_with(suffix))
            .cloned()
    };
    let code_property = match code_property {
        Some(p) => p.to_string(),
        None => find_by_suffix("CD")
            .or_else(|| first_properties.keys().find(|k| k.eq_ignore_ascii_case("code")).cloned())
            .ok_or_else(|| {
                InputError::file(
                    path,
                    format!(
                        "cannot tell which property holds the footprint code (no property ending in CD); set `code_property` in the config; properties found: {}",
                        first_properties.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?,
    };
    let name_property = match name_property {
        Some(p) => Some(p.to_string()),
        None => find_by_suffix("NM").or_else(|| {
            first_properties
                .keys()
                .find(|k| k.eq_ignore_ascii_case("name"))
                .cloned()
        }),
    };
    let file = path.display().to_string();
    let mut features = Vec::new();
    let mut rejects = Vec::new();
    let total = collection.features.len() as u64;
    for (index, feature) in collection.features.into_iter().enumerate() {
        let row = index as u64 + 1;
        let properties = feature.properties.clone().unwrap_or_default();
        let code = properties.get(&code_property).and_then(value_as_code);
        let Some(code) = code else {
            rejects.push(Reject {
                file: file.clone(),
                line: row,
                column: code_property.clone(),
                value: properties
                    .get(&code_property)
                    .map(|v| shown_value(&v.to_string()))
                    .unwrap_or_default(),
                reason: "missing footprint code".into(),
            });
            continue;
        };
        if let Some(problem) = feature
            .geometry
            .as_ref()
            .and_then(|g| bad_position(&g.value))
        {
            rejects.push(Reject {
                file: file.clone(),
                line: row,
                column: "geometry".into(),
                value: shown_value(&code),
                reason: problem.into(),
            });
            continue;
        }
        let geometry = match feature
            .geometry
            .as_ref()
            .map(|g| geo::Geometry::<f64>::try_from(&g.value))
        {
            Some(Ok(geo::Geometry::Polygon(p))) => Some(MultiPolygon(vec![p])),
            Some(Ok(geo::Geometry::MultiPolygon(mp))) => Some(mp),
            _ => None,
        };
        let Some(geometry) = geometry.filter(|mp| {
            !mp.0
                .iter()
                .all(|p: &Polygon<f64>| p.exterior().0.is_empty())
        }) else {
            rejects.push(Reject {
                file: file.clone(),
                line: row,
                column: "geometry".into(),
                value: shown_value(&code),
                reason: "feature has no Polygon or MultiPolygon geometry".into(),
            });
            continue;
        };
        let name = name_property
            .as_ref()
            .and_then(|p| properties.get(p))
            .and_then(|v| v.as_str().map(str::to_string));
        features.push(Footprint {
            code,
            name,
            properties,
            geometry,
        });
    }
    if features.is_empty() {
        return Err(InputError::file(
            path,
            "no usable footprint polygons in the file",
        ));
    }
    let report = IngestReport::from_rejects("footprints", path, total, &rejects, Vec::new());
    Ok(Footprints {
        path: path.to_path_buf(),
        code_property,
        name_property,
        features,
        report,
        rejects,
    })
}

/// Why a geometry's positions cannot be used, if they cannot: the GeoJSON parser accepts a
/// position of any length, and converting one with fewer than two numbers panics (geojson
/// indexes `[0]` and `[1]`).
fn bad_position(value: &geojson::GeometryValue) -> Option<&'static str> {
    use geojson::GeometryValue as G;
    let check = |position: &geojson::Position| {
        let numbers = position.as_slice();
        if numbers.len() < 2 {
            Some("a coordinate has fewer than two numbers (expected [longitude, latitude])")
        } else if !numbers.iter().all(|v| v.is_finite()) {
            Some("a coordinate is not a finite number")
        } else {
            None
        }
    };
    match value {
        G::Point { coordinates } => check(coordinates),
        G::MultiPoint { coordinates } | G::LineString { coordinates } => {
            coordinates.iter().find_map(check)
        }
        G::MultiLineString { coordinates } | G::Polygon { coordinates } => {
            coordinates.iter().flatten().find_map(check)
        }
        G::MultiPolygon { coordinates } => coordinates.iter().flatten().flatten().find_map(check),
        G::GeometryCollection { geometries } => {
            geometries.iter().find_map(|g| bad_position(&g.value))
        }
    }
}

fn value_as_code(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_10_a_one_number_position_is_a_reject_not_a_panic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("short.geojson");
        std::fs::write(
            &path,
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"ICB22CD":"E54000050"},
               "geometry":{"type":"Polygon","coordinates":[[[0.0,50.0],[0.0]]]}},
              {"type":"Feature","properties":{"ICB22CD":"E54000051"},
               "geometry":{"type":"Polygon","coordinates":[[[0,50],[1,50],[1,51],[0,50]]]}}]}"#,
        )
        .expect("write");
        let read = read_footprints(&path, None, None).expect("one usable polygon");
        assert_eq!(read.features.len(), 1);
        assert_eq!(read.rejects.len(), 1);
        assert!(
            read.rejects[0]
                .reason
                .starts_with("a coordinate has fewer than two numbers")
        );
    }
}
