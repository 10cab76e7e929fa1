//! One PCN's evidence pack: the ICB-wide context every pack of an ICB shares (read once), the
//! title block and key findings, the sections in order, and writing the HTML page, the Markdown
//! twin and its SVG files.
//!
//! The sections are built by their own files (`profile.rs`, `segments.rs`, `gradients.rs`,
//! `cohorts.rs`, `trend.rs`, `appendix.rs`); the renderers are `html.rs` and `markdown.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cohorts::{self, Cohort};
use super::document::{Block, Document, Figure, Section, Span};
use super::gather::{IcbData, RunTables};
use super::geography::{self, IcbGeography};
use super::gradients::{self, Pick};
use super::manifest::{self, Indicator, Manifest};
use super::rows::Area;
use super::trend::History;
use super::{PackFiles, ReportError, Year, index};
use crate::charts::{Chart, ChartText, Notice};
use crate::config::Config;

/// What every pack of one ICB shares: read once, used by each PCN's pack (in parallel).
#[derive(Debug)]
pub struct IcbContext {
    /// The run id.
    pub run_id: String,
    /// The run's manifest.
    pub manifest: Manifest,
    /// The run's config, when its text still parses.
    pub config: Option<Config>,
    /// The run's indicators (from the config).
    pub indicators: Vec<Indicator>,
    /// The ICB's rows of the run's tables.
    pub data: IcbData,
    /// The ICB's `area_deprivation` row.
    pub icb: Option<Area>,
    /// England's row.
    pub england: Option<Area>,
    /// Every PCN of the ICB in the run.
    pub icb_pcns: Vec<String>,
    /// How many ICBs the run covers.
    pub icbs_in_run: usize,
    /// PCN names by code (every PCN of the run).
    pub pcn_names: BTreeMap<String, String>,
    /// The map's inputs, or why there is no map.
    pub geography: Result<IcbGeography, String>,
    /// Earlier runs in the same output root.
    pub history: History,
    /// The reporting year.
    pub year: Year,
    /// Problems worth telling the user (inputs moved since the run, config unreadable).
    pub warnings: Vec<String>,
    /// Funnel plots, computed once per indicator for all the ICB's packs.
    pub funnels: super::funnel::FunnelCache,
}

impl IcbContext {
    /// Read what the packs of `pcns` (of ICB `icb`) need.
    ///
    /// # Errors
    /// If a table cannot be read.
    pub fn load(
        run: &RunTables,
        footprints: &[Area],
        icb: Option<&str>,
        pcns: &[String],
        year: Option<Year>,
    ) -> Result<IcbContext, ReportError> {
        let manifest = run.manifest.clone();
        let mut warnings = Vec::new();
        let config = match manifest.run_config() {
            Ok(config) => Some(config),
            Err(e) => {
                warnings.push(format!(
                    "the run's config cannot be read ({e}): indicator polarity is unknown, so no \
                     cohorts are ranked"
                ));
                None
            }
        };
        let indicators = config
            .as_ref()
            .map(manifest::indicators)
            .unwrap_or_default();
        let icb_area = icb.and_then(|code| {
            footprints
                .iter()
                .find(|a| a.level == "icb" && a.code == code)
                .cloned()
        });
        let polygon = geography::polygon_code(&manifest, icb, icb_area.as_ref());
        let data = IcbData::load(run, icb, pcns, polygon.as_deref())?;
        let geography = IcbGeography::load(
            &manifest,
            config.as_ref(),
            polygon.as_deref(),
            &data.weights,
        );
        if let Ok(g) = &geography {
            warnings.extend(g.warnings.iter().cloned());
        }
        let history = History::load(run, icb, pcns)?;
        let extract = manifest
            .extract_date
            .as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let year = year
            .or_else(|| extract.map(Year::containing))
            .unwrap_or(Year { start: 2000 });
        let mut icb_pcns: Vec<String> = footprints
            .iter()
            .filter(|a| a.level == "pcn" && a.parent.as_deref() == icb)
            .map(|a| a.code.clone())
            .collect();
        icb_pcns.sort();
        Ok(IcbContext {
            run_id: run.id().to_string(),
            england: footprints.iter().find(|a| a.level == "england").cloned(),
            icbs_in_run: footprints.iter().filter(|a| a.level == "icb").count(),
            pcn_names: footprints
                .iter()
                .filter(|a| a.level == "pcn")
                .map(|a| (a.code.clone(), a.label()))
                .collect(),
            manifest,
            config,
            indicators,
            data,
            icb: icb_area,
            icb_pcns,
            geography,
            history,
            year,
            warnings,
            funnels: Default::default(),
        })
    }

    /// The ICB's name, shortened ("NHS Bedfordshire, Luton and Milton Keynes ICB").
    pub fn icb_name(&self) -> String {
        self.icb
            .as_ref()
            .map_or_else(|| "the ICB".to_string(), |icb| short_icb(&icb.label()))
    }

    /// The source line under every chart.
    pub fn source(&self) -> String {
        format!(
            "Source: healthgap {} run {} (extract {}); deprivation: {} (MHCLG), national deciles, \
             1 = most deprived. Counts rounded to 5; small counts suppressed.",
            self.manifest.tool.version,
            self.run_id,
            self.manifest
                .extract_date
                .as_deref()
                .unwrap_or("date not recorded"),
            self.manifest.index_label()
        )
    }

    /// An indicator of the run by id.
    pub fn indicator(&self, id: &str) -> Option<&Indicator> {
        self.indicators.iter().find(|i| i.id() == id)
    }

    /// A PCN's name.
    pub fn pcn_name(&self, code: &str) -> String {
        self.pcn_names
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_string())
    }

    /// Whether the run covers only this ICB's practices (so its "England" is the ICB).
    pub fn england_is_partial(&self) -> bool {
        self.icbs_in_run <= 1
    }
}

/// "NHS X Integrated Care Board" → "NHS X ICB".
pub fn short_icb(name: &str) -> String {
    name.replace(" Integrated Care Board", " ICB")
}

/// The PCN with this code (any case), or a user error naming the closest codes.
///
/// # Errors
/// [`ReportError::User`] for an unknown code.
pub fn find_pcn<'a>(footprints: &'a [Area], code: &str) -> Result<&'a Area, ReportError> {
    let pcns: Vec<&Area> = footprints.iter().filter(|a| a.level == "pcn").collect();
    if let Some(pcn) = pcns
        .iter()
        .find(|a| a.code.eq_ignore_ascii_case(code.trim()))
    {
        return Ok(pcn);
    }
    Err(ReportError::User(unknown(
        "PCN",
        code,
        &pcns,
        "SELECT area_code, area_name FROM area_deprivation WHERE area_level = 'pcn'",
    )))
}

/// The ICB with this ODS code, or ONS code (through the run's `icb_codes` input); a user error
/// naming the closest codes.
///
/// # Errors
/// [`ReportError::User`] for an unknown code.
pub fn find_icb(footprints: &[Area], run: &RunTables, code: &str) -> Result<String, ReportError> {
    let icbs: Vec<&Area> = footprints.iter().filter(|a| a.level == "icb").collect();
    let wanted = code.trim();
    if let Some(icb) = icbs.iter().find(|a| a.code.eq_ignore_ascii_case(wanted)) {
        return Ok(icb.code.clone());
    }
    if let Some(ods) = geography::ods_for_ons(&run.manifest, wanted)
        && icbs.iter().any(|a| a.code == ods)
    {
        return Ok(ods);
    }
    Err(ReportError::User(unknown(
        "ICB",
        code,
        &icbs,
        "SELECT area_code, area_name FROM area_deprivation WHERE area_level = 'icb'",
    )))
}

fn unknown(what: &str, code: &str, areas: &[&Area], sql: &str) -> String {
    let codes: Vec<&str> = areas.iter().map(|a| a.code.as_str()).collect();
    let mut near = crate::query::closest(code.trim(), codes.iter().copied());
    // A name typed instead of a code.
    let lower = code.trim().to_lowercase();
    if near.is_empty() && lower.len() >= 3 {
        near = areas
            .iter()
            .filter(|a| a.label().to_lowercase().contains(&lower))
            .map(|a| a.code.as_str())
            .take(3)
            .collect();
    }
    let name_of = |c: &str| {
        areas
            .iter()
            .find(|a| a.code == c)
            .map_or(String::new(), |a| format!(" ({})", a.label()))
    };
    if near.is_empty() {
        let mut sample: Vec<&str> = codes.clone();
        sample.sort_unstable();
        sample.truncate(5);
        format!(
            "unknown {what} `{code}`: the run has {} {what}s, e.g. {}; list them with \
             healthgap query \"{sql}\"",
            codes.len(),
            sample.join(", ")
        )
    } else {
        let list: Vec<String> = near.iter().map(|c| format!("{c}{}", name_of(c))).collect();
        format!("unknown {what} `{code}`; closest: {}", list.join(", "))
    }
}

/// Render a chart into a figure; a chart with nothing to draw (or that fails) becomes a titled
/// placeholder saying why, so the pack keeps its shape.
pub fn figure<C: Chart>(
    chart: &C,
    text: &ChartText,
    name: &str,
    caption: Option<String>,
) -> Figure {
    let svg = chart.render_svg(text).or_else(|e| {
        Notice {
            message: format!("This chart could not be drawn: {e}."),
        }
        .render_svg(text)
    });
    Figure {
        name: name.to_string(),
        alt: text.title.clone(),
        svg: svg.unwrap_or_default(),
        caption,
    }
}

/// A placeholder figure with a message.
pub fn notice(text: &ChartText, name: &str, message: String, caption: Option<String>) -> Figure {
    figure(&Notice { message }, text, name, caption)
}

/// The PCN whose pack is being built, and what was worked out for it.
#[derive(Debug)]
pub struct Pcn<'a> {
    /// Its `area_deprivation` row.
    pub area: &'a Area,
    /// The gradients that matter most.
    pub picks: Vec<Pick<'a>>,
    /// Candidate underserved cohorts, ranked.
    pub cohorts: Vec<Cohort>,
}

impl Pcn<'_> {
    /// Its ODS code.
    pub fn code(&self) -> &str {
        &self.area.code
    }

    /// Its name.
    pub fn name(&self) -> String {
        self.area.label()
    }
}

/// Build one PCN's document and its headline figures for the index.
///
/// # Errors
/// If the PCN is not in the ICB's data (a bug: the caller found it).
pub fn build(ctx: &IcbContext, code: &str) -> Result<(Document, index::Headline), ReportError> {
    let area = ctx
        .data
        .area("pcn", code)
        .ok_or_else(|| ReportError::User(format!("PCN {code} has no area_deprivation row")))?;
    let pcn = Pcn {
        area,
        picks: gradients::choose(ctx, code),
        cohorts: cohorts::find(ctx, code),
    };
    let mut sections = vec![
        key_findings(ctx, &pcn),
        super::profile::section(ctx, &pcn),
        super::segments::section(ctx, &pcn),
        gradients::section(ctx, &pcn),
        cohorts::section(ctx, &pcn),
        geography::section(ctx, &pcn),
        super::trend::section(ctx, &pcn),
    ];
    sections.extend(super::appendix::sections(ctx));
    // Number the charts in reading order: their SVG files sort the same way.
    let mut n = 0;
    for section in &mut sections {
        for block in &mut section.blocks {
            if let Block::Figure(f) = block {
                n += 1;
                f.name = format!("{n:02}-{}", f.name);
            }
        }
    }
    let facts = title_facts(ctx, &pcn);
    let headline = index::headline(&pcn);
    let document = Document {
        title: format!("{}: health inequalities evidence pack", pcn.name()),
        subtitle: format!(
            "{} \u{b7} {} \u{b7} {}",
            pcn.code(),
            ctx.icb_name(),
            ctx.year
        ),
        facts,
        sections,
        footer: format!(
            "Generated by healthgap {} from run {}. Figures are published counts (rounded to 5, \
             small numbers suppressed); see the appendix for methods and data vintages.",
            ctx.manifest.tool.version, ctx.run_id
        ),
    };
    Ok((document, headline))
}

fn title_facts(ctx: &IcbContext, pcn: &Pcn<'_>) -> Vec<(String, String)> {
    let run_date = ctx
        .manifest
        .finished_at
        .as_deref()
        .or(ctx.manifest.started_at.as_deref())
        .map(|t| t.replace('T', " ").replace('Z', " UTC"))
        .unwrap_or_else(|| "not recorded".into());
    let mut facts = vec![
        (
            "PCN".to_string(),
            format!("{} ({})", pcn.name(), pcn.code()),
        ),
        (
            "ICB".to_string(),
            ctx.icb.as_ref().map_or("not recorded".into(), |icb| {
                format!("{} ({})", icb.label(), icb.code)
            }),
        ),
        ("Reporting year".to_string(), ctx.year.to_string()),
        (
            "Data extract".to_string(),
            ctx.manifest
                .extract_date
                .clone()
                .unwrap_or_else(|| "not recorded".into()),
        ),
        (
            "Run".to_string(),
            format!("{} (finished {run_date})", ctx.run_id),
        ),
        (
            "Deprivation index".to_string(),
            format!(
                "{} (national deciles, 1 = most deprived)",
                ctx.manifest.index_label()
            ),
        ),
    ];
    facts.push((
        "Registered population".to_string(),
        pcn.area
            .population
            .map_or("suppressed".into(), crate::charts::style::format_count),
    ));
    facts
}

/// The page's opening: a handful of sentences a board member reads first.
fn key_findings(ctx: &IcbContext, pcn: &Pcn<'_>) -> Section {
    use crate::charts::style::format_percent;
    let mut section = Section::new("summary", "Key findings");
    let mut items: Vec<Vec<Span>> = Vec::new();
    let name = pcn.name();
    if let Some(share) = pcn.area.core20_share {
        let mut line = vec![
            Span::Text(format!("{name}: ")),
            Span::Strong(format!(
                "{} of registered people live in Core20 neighbourhoods",
                format_percent(share * 100.0, 1)
            )),
            Span::Text(" (England's most deprived 20% of areas".into()),
        ];
        let icb = ctx.icb.as_ref().and_then(|i| i.core20_share);
        match icb {
            Some(icb) if !ctx.england_is_partial() || ctx.icb_pcns.len() > 1 => {
                line.push(Span::Text(format!(
                    "; {} across {}).",
                    format_percent(icb * 100.0, 1),
                    ctx.icb_name()
                )));
            }
            _ => line.push(Span::Text(").".into())),
        }
        items.push(line);
    } else {
        items.push(vec![Span::Text(format!(
            "{name}: the Core20 share is suppressed (small numbers)."
        ))]);
    }
    if let Some(pick) = pcn.picks.first() {
        items.push(gradients::finding(ctx, pick));
    }
    if let Some(cohort) = pcn.cohorts.first() {
        items.push(cohorts::finding(cohort));
    }
    let outliers: Vec<String> = pcn
        .picks
        .iter()
        .filter_map(|p| {
            let label = p.pcn_row?.funnel_significance.as_deref()?;
            (label.starts_with("High") || label.starts_with("Low")).then(|| {
                format!(
                    "{}: {}",
                    p.indicator.measure(),
                    super::funnel::significance_words(p.indicator, label)
                )
            })
        })
        .collect();
    if !outliers.is_empty() {
        items.push(vec![
            Span::Text("Compared with the average of the run's PCNs: ".into()),
            Span::Strong(outliers.join("; ")),
            Span::Text(".".into()),
        ]);
    }
    section.push(Block::Bullets(items));
    if ctx.england_is_partial() {
        section.note(
            "This run holds the registered lists of one ICB's practices only: its \"England\" \
             figures are the run's practices, not all of England (indicators from national \
             practice-level publications cover every practice).",
        );
    }
    section
}

/// Build, render and write one PCN's pack.
///
/// # Errors
/// If a file cannot be written.
pub fn write_pack(ctx: &IcbContext, code: &str, out: &Path) -> Result<PackFiles, ReportError> {
    let (document, headline) = build(ctx, code)?;
    let folder = out.join(file_stem(code));
    let stem = format!("{}-evidence-pack", file_stem(code));
    let html = folder.join(format!("{stem}.html"));
    let markdown = folder.join(format!("{stem}.md"));
    super::write_file(&html, super::html::render(&document).as_bytes())?;
    super::write_file(&markdown, super::markdown::render(&document).as_bytes())?;
    let mut charts = Vec::new();
    for figure in document.figures() {
        let path = folder
            .join(super::markdown::CHART_FOLDER)
            .join(format!("{}.svg", figure.name));
        super::write_file(&path, figure.svg.as_bytes())?;
        charts.push(path);
    }
    let area = ctx.data.area("pcn", code);
    Ok(PackFiles {
        pcn: code.to_string(),
        name: area.map_or_else(|| code.to_string(), Area::label),
        html,
        markdown,
        charts,
        headline,
    })
}

/// A code as a file name: letters, digits, `-` and `_` kept, anything else `_`.
pub fn file_stem(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Paths relative to the output folder, for links.
pub fn relative(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}
