//! The map of the pack: the ICB's polygons, its LSOAs shaded by national IMD decile with Core20
//! highlighted, and the LSOAs where the PCN's registered patients live marked.
//!
//! Read once per ICB and shared by its PCNs' packs: the polygons come from the run's footprint
//! input (`footprints.<kind>` in the manifest, read with `crate::ingest::read_footprints`), the
//! centroids and deciles from the run's `lsoa_centroids` and deprivation inputs (read with
//! `crate::ingest::read_table`), which LSOAs are the ICB's and the PCN's from the run's
//! `footprint_weights` table. Inputs that have moved or changed since the run are reported, not
//! fatal: the map becomes a placeholder saying why. Drawing is `crate::charts::map`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;

use super::document::{Block, Section};
use super::manifest::Manifest;
use super::pack::{self, IcbContext, Pcn};
use super::rows::{Area, LsoaWeight, numbers, strings};
use crate::charts::ChartText;
use crate::charts::map::{LsoaPoint, Map, MapZoom};
use crate::config::Config;
use crate::ingest::{Footprint, InputKind, ReadOptions, read_footprints, read_table};
use crate::schema;

/// One LSOA's place and deprivation.
#[derive(Debug, Clone, PartialEq)]
struct Lsoa {
    longitude: f64,
    latitude: f64,
    decile: Option<u8>,
}

/// What the maps of one ICB's PCNs share.
#[derive(Debug)]
pub struct IcbGeography {
    /// Every polygon of the footprint file (neighbours give the map context).
    pub areas: Vec<Footprint>,
    /// The ICB's polygon code.
    pub focus: Option<String>,
    /// The ICB's LSOAs (geometric attribution), sorted.
    icb_lsoas: Vec<String>,
    /// Centroid and decile of every LSOA the maps may draw.
    lsoas: BTreeMap<String, Lsoa>,
    /// "IMD 2019".
    pub index_label: String,
    /// Inputs that changed since the run.
    pub warnings: Vec<String>,
}

/// The ICB's code in the footprint polygons (ONS `E54…`): from the run's `icb_codes` input,
/// else the polygon whose name is the ICB's.
pub fn polygon_code(manifest: &Manifest, icb: Option<&str>, area: Option<&Area>) -> Option<String> {
    let icb = icb?;
    if let Some(codes) = icb_codes(manifest)
        && let Some((_, ons)) = codes.iter().find(|(ods, _)| ods == icb)
    {
        return Some(ons.clone());
    }
    // Without the lookup, match names against the polygons.
    let name = area?.name.clone()?;
    let (path, code_property, name_property) = footprint_input(manifest, None)?;
    let footprints =
        read_footprints(&path, code_property.as_deref(), name_property.as_deref()).ok()?;
    footprints
        .features
        .iter()
        .find(|f| {
            f.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&name))
        })
        .map(|f| f.code.clone())
}

/// The ODS code of an ICB given its ONS code, through the run's `icb_codes` input.
pub fn ods_for_ons(manifest: &Manifest, ons: &str) -> Option<String> {
    icb_codes(manifest)?
        .into_iter()
        .find(|(_, o)| o.eq_ignore_ascii_case(ons))
        .map(|(ods, _)| ods)
}

/// (ODS, ONS) pairs of the run's `icb_codes` input.
fn icb_codes(manifest: &Manifest) -> Option<Vec<(String, String)>> {
    let input = manifest.input(InputKind::IcbCodes.name())?;
    let table = read_table(InputKind::IcbCodes, &input.file, &ReadOptions::default()).ok()?;
    let df = table
        .frame
        .select([col(schema::ICB_CODE), col(schema::ICB_ONS_CODE)])
        .collect()
        .ok()?;
    let ods = strings("icb_codes", &df, schema::ICB_CODE).ok()?;
    let ons = strings("icb_codes", &df, schema::ICB_ONS_CODE).ok()?;
    Some(
        ods.into_iter()
            .zip(ons)
            .filter_map(|(a, b)| Some((a?, b?)))
            .collect(),
    )
}

/// The footprint polygon input: path, code property and name property. Prefers the `icb`
/// kind; the properties come from the config's `[[footprints]]` when it parses.
fn footprint_input(
    manifest: &Manifest,
    config: Option<&Config>,
) -> Option<(std::path::PathBuf, Option<String>, Option<String>)> {
    let record = manifest.input("footprints.icb").or_else(|| {
        manifest
            .inputs
            .iter()
            .find(|i| i.input.starts_with("footprints."))
    })?;
    let kind = record.input.trim_start_matches("footprints.");
    let source = config.and_then(|c| c.footprints.iter().find(|f| f.kind == kind));
    Some((
        record.file.clone(),
        source.and_then(|s| s.code_property.clone()),
        source.and_then(|s| s.name_property.clone()),
    ))
}

impl IcbGeography {
    /// Read the ICB's polygons, centroids and deciles for the LSOAs in `weights` (the ICB's and
    /// its PCNs').
    ///
    /// # Errors
    /// Why there can be no map (an input missing from the manifest or unreadable), in words.
    pub fn load(
        manifest: &Manifest,
        config: Option<&Config>,
        polygon: Option<&str>,
        weights: &[LsoaWeight],
    ) -> Result<IcbGeography, String> {
        let mut warnings = Vec::new();
        let (path, code_property, name_property) = footprint_input(manifest, config)
            .ok_or("the run has no footprint polygons ([[footprints]] in its config)")?;
        let centroids = manifest
            .input(InputKind::LsoaCentroids.name())
            .ok_or("the run has no LSOA centroids input")?;
        let index = manifest.deprivation_index.as_deref().unwrap_or("iod2019");
        let kind = match index {
            "iod2025" => InputKind::Iod2025,
            _ => InputKind::Iod2019,
        };
        let deprivation = manifest.input(kind.name());
        for file in [
            Some(&path),
            Some(&centroids.file),
            deprivation.map(|d| &d.file),
        ]
        .into_iter()
        .flatten()
        {
            check_hash(manifest, file, &mut warnings);
        }
        if deprivation.is_none() {
            warnings.push(format!(
                "the run's deprivation input ({index}) is not in its manifest: the map shows \
                 LSOAs without deciles"
            ));
        }
        let wanted: Vec<String> = weights
            .iter()
            .map(|w| w.lsoa.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let wanted = || lit(Series::new("lsoas".into(), wanted.clone())).implode(false);
        // The three reads check every value of their file (slow in a debug build): in parallel.
        let (footprints, (centroids, deciles)) = rayon::join(
            || {
                read_footprints(&path, code_property.as_deref(), name_property.as_deref())
                    .map_err(|e| format!("the footprint polygons cannot be read: {e}"))
            },
            || {
                rayon::join(
                    || {
                        read_columns(
                            InputKind::LsoaCentroids,
                            &centroids.file,
                            wanted(),
                            &[schema::LONGITUDE, schema::LATITUDE],
                        )
                    },
                    || match deprivation {
                        Some(input) => {
                            read_columns(kind, &input.file, wanted(), &[schema::IMD_DECILE])
                        }
                        None => Ok(BTreeMap::new()),
                    },
                )
            },
        );
        let footprints = footprints?;
        let centroids = centroids?;
        let deciles = deciles?;
        let icb_lsoas: BTreeSet<String> = weights
            .iter()
            .filter(|w| w.footprint_kind != "pcn" && Some(w.footprint_code.as_str()) == polygon)
            .map(|w| w.lsoa.clone())
            .collect();
        let mut lsoas = BTreeMap::new();
        for (code, values) in centroids {
            let (Some(&Some(longitude)), Some(&Some(latitude))) = (values.first(), values.get(1))
            else {
                continue;
            };
            if !(longitude.is_finite() && latitude.is_finite()) {
                continue;
            }
            let decile = deciles
                .get(&code)
                .and_then(|v| v.first().copied().flatten())
                .filter(|d| (1.0..=10.0).contains(d))
                .map(|d| d as u8);
            lsoas.insert(
                code,
                Lsoa {
                    longitude,
                    latitude,
                    decile,
                },
            );
        }
        let focus = polygon
            .filter(|p| footprints.features.iter().any(|f| f.code == *p))
            .map(str::to_string);
        let areas = near(footprints.features, focus.as_deref(), &lsoas);
        Ok(IcbGeography {
            areas,
            focus,
            icb_lsoas: icb_lsoas.into_iter().collect(),
            lsoas,
            index_label: manifest.index_label(),
            warnings,
        })
    }

    /// The points of a PCN's map: the ICB's LSOAs and the PCN's (some may lie in neighbouring
    /// ICBs), the PCN's marked.
    pub fn points(&self, registered: &BTreeSet<&str>) -> Vec<LsoaPoint> {
        let mut codes: BTreeSet<&str> = self.icb_lsoas.iter().map(String::as_str).collect();
        codes.extend(registered.iter().copied());
        codes
            .into_iter()
            .filter_map(|code| {
                let lsoa = self.lsoas.get(code)?;
                Some(LsoaPoint {
                    code: code.to_string(),
                    longitude: lsoa.longitude,
                    latitude: lsoa.latitude,
                    decile: lsoa.decile,
                    // Core20 is England's most deprived fifth of LSOAs: IMD deciles 1 and 2.
                    core20: lsoa.decile.is_some_and(|d| d <= 2) && code.starts_with('E'),
                    registered: registered.contains(code),
                })
            })
            .collect()
    }
}

/// The polygons a map of the ICB can show: those whose bounding box comes within half the ICB's
/// size of the ICB or of any LSOA drawn. The map skips the rest anyway, but only after
/// simplifying them; dropping them once here saves that for every PCN's two maps.
fn near(
    features: Vec<Footprint>,
    focus: Option<&str>,
    lsoas: &BTreeMap<String, Lsoa>,
) -> Vec<Footprint> {
    use geo::BoundingRect;
    let mut boxes: Vec<geo::Rect<f64>> = features
        .iter()
        .filter(|f| Some(f.code.as_str()) == focus)
        .filter_map(|f| f.geometry.bounding_rect())
        .collect();
    if boxes.is_empty() {
        return features;
    }
    for lsoa in lsoas.values() {
        let c = geo::coord! { x: lsoa.longitude, y: lsoa.latitude };
        boxes.push(geo::Rect::new(c, c));
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for b in &boxes {
        x0 = x0.min(b.min().x);
        y0 = y0.min(b.min().y);
        x1 = x1.max(b.max().x);
        y1 = y1.max(b.max().y);
    }
    let (dx, dy) = ((x1 - x0) / 2.0, (y1 - y0) / 2.0);
    let (x0, y0, x1, y1) = (x0 - dx, y0 - dy, x1 + dx, y1 + dy);
    features
        .into_iter()
        .filter(|f| {
            f.geometry.bounding_rect().is_some_and(|b| {
                b.max().x >= x0 && b.min().x <= x1 && b.max().y >= y0 && b.min().y <= y1
            })
        })
        .collect()
}

/// Numeric columns of the rows of `codes` in a reference input, by LSOA code.
fn read_columns(
    kind: InputKind,
    path: &Path,
    codes: Expr,
    columns: &[&str],
) -> Result<BTreeMap<String, Vec<Option<f64>>>, String> {
    let fail = |e: String| format!("{} ({}) cannot be read: {e}", kind.name(), path.display());
    let table = read_table(kind, path, &ReadOptions::default()).map_err(|e| fail(e.to_string()))?;
    let df = table
        .frame
        .filter(col(schema::LSOA_CODE).is_in(codes, false))
        .select(
            std::iter::once(col(schema::LSOA_CODE))
                .chain(columns.iter().map(|c| col(*c)))
                .collect::<Vec<_>>(),
        )
        .collect()
        .map_err(|e| fail(e.to_string()))?;
    let lsoas = strings(kind.name(), &df, schema::LSOA_CODE).map_err(|e| fail(e.to_string()))?;
    let values = columns
        .iter()
        .map(|c| numbers(kind.name(), &df, c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    Ok(lsoas
        .into_iter()
        .enumerate()
        .filter_map(|(i, code)| {
            Some((
                code?,
                values.iter().map(|v| v.get(i).copied().flatten()).collect(),
            ))
        })
        .collect())
}

/// Warn when a file is gone or its SHA-256 differs from the manifest's.
fn check_hash(manifest: &Manifest, path: &Path, warnings: &mut Vec<String>) {
    let recorded = manifest
        .inputs
        .iter()
        .find(|i| i.file == path)
        .and_then(|i| i.sha256.clone());
    match crate::pipeline::publish::sha256_file(path) {
        Ok(hash) if recorded.as_deref().is_some_and(|r| r != hash) => warnings.push(format!(
            "{} has changed since the run (SHA-256 differs from the manifest): the map uses \
             the current file",
            path.display()
        )),
        Ok(_) => {}
        Err(_) => warnings.push(format!("{} is no longer readable", path.display())),
    }
}

/// The "where the PCN's patients live" section: the ICB map and a close-up.
pub fn section(ctx: &IcbContext, pcn: &Pcn<'_>) -> Section {
    let mut section = Section::new("map", "Where the PCN's patients live");
    let name = pcn.name();
    let registered: BTreeSet<&str> = ctx
        .data
        .weights
        .iter()
        .filter(|w| w.footprint_kind == "pcn" && w.footprint_code == pcn.code())
        .map(|w| w.lsoa.as_str())
        .collect();
    let icb = ctx.icb_name();
    let source = ctx.source()
        + " Boundaries: ONS; LSOA centroids: ONS (contains OS data \u{a9} Crown copyright and database right).";
    let geography = match &ctx.geography {
        Ok(g) => g,
        Err(reason) => {
            let text = ChartText::new(format!("LSOAs of {icb} by deprivation"), source);
            section.push(Block::Figure(pack::notice(
                &text,
                "map-icb",
                format!("No map: {reason}."),
                None,
            )));
            return section;
        }
    };
    let points = geography.points(&registered);
    let marked: Vec<&LsoaPoint> = points.iter().filter(|p| p.registered).collect();
    let core20 = marked.iter().filter(|p| p.core20).count();
    let method = ctx
        .data
        .weights
        .iter()
        .find(|w| w.footprint_kind == "pcn" && w.footprint_code == pcn.code())
        .map(|w| w.method.as_str());
    let attributed = match method {
        Some("registered_plurality") => {
            "the neighbourhoods (LSOAs) where more of the registered residents are its patients \
             than any other PCN's"
        }
        Some("registered_share") => {
            "the neighbourhoods (LSOAs) where its patients are at least the configured share of \
             the registered residents"
        }
        _ => "the neighbourhoods (LSOAs) attributed to it from where its patients live",
    };
    section.paragraph(format!(
        "{name}'s footprint is {attributed}: {} LSOAs, {core20} of them in the Core20 (England's \
         most deprived 20%). The maps shade every LSOA of {icb} by its national {} decile \
         (darker = more deprived); rings mark Core20 LSOAs and squares the PCN's.",
        marked.len(),
        geography.index_label
    ));
    if registered.len() > marked.len() {
        section.note(format!(
            "{} of the PCN's LSOAs have no centroid in the run's inputs and are not drawn.",
            registered.len() - marked.len()
        ));
    }
    let map = Map {
        areas: &geography.areas,
        focus: geography.focus.clone(),
        lsoas: &points,
        registered_label: name.clone(),
        index_label: geography.index_label.clone(),
        zoom: MapZoom::Focus,
    };
    let text = ChartText::new(
        format!("Deprivation across {icb}, and where {name}'s patients live"),
        source.clone(),
    )
    .with_subtitle(format!(
        "LSOAs of {icb} by {} decile; squares: {name}'s footprint (where its patients live)",
        geography.index_label
    ));
    section.push(Block::Figure(pack::figure(&map, &text, "map-icb", None)));
    let close = Map {
        zoom: MapZoom::Registered,
        ..map.clone()
    };
    let text = ChartText::new(
        format!(
            "{core20} of the {} neighbourhoods where {name}'s patients live are in the Core20",
            marked.len()
        ),
        source,
    )
    .with_subtitle(format!(
        "Close-up of {name}'s LSOAs by {} decile",
        geography.index_label
    ));
    section.push(Block::Figure(pack::figure(&close, &text, "map-pcn", None)));
    section
}
