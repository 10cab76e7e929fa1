//! The pack as one self-contained HTML page: inline CSS, charts as inline SVG, no external
//! resource of any kind (no fonts, scripts, images or links off the page), so it opens offline,
//! can be emailed as one file and prints on A4 (each major section on a new page, charts never
//! split). A few lines of inline script count the charts once the page has loaded and write the
//! count into a hidden marker element (`#render-check`), which the headless-browser test reads.
//!
//! Text is escaped here; the chart SVGs come from `crate::charts`, which escapes its own text.

use super::document::{Block, Cell, Document, Figure, Inline, Section, Span, Table};

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's style sheet. Chart text is set in DejaVu Sans (or the nearest wide sans) because
/// the charts measure their text with it.
pub const STYLE: &str = r#"
:root { --ink: #1a1a1a; --muted: #555; --rule: #d9d9d9; --band: #f3f6f9; --accent: #0072b2; --highlight: #d55e00; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 980px; padding: 28px 32px 48px; color: var(--ink); background: #fff;
  font: 15px/1.5 "Segoe UI", "Helvetica Neue", Arial, "DejaVu Sans", "Liberation Sans", sans-serif; }
header.cover { border-top: 6px solid var(--accent); padding: 20px 0 8px; }
.kicker { margin: 0; color: var(--accent); font-weight: 600; letter-spacing: .04em; text-transform: uppercase; font-size: 13px; }
h1 { font-size: 30px; line-height: 1.2; margin: 6px 0 4px; }
.subtitle { margin: 0 0 16px; color: var(--muted); font-size: 16px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; padding: 14px 18px;
  background: var(--band); border-radius: 6px; font-size: 14px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-weight: 600; }
nav.toc { margin: 22px 0 8px; font-size: 14px; }
nav.toc h2 { font-size: 15px; margin: 0 0 4px; border: 0; padding: 0; }
nav.toc ol { margin: 0; padding-left: 22px; columns: 2; column-gap: 32px; }
nav.toc a { color: var(--accent); text-decoration: none; }
section { margin-top: 34px; }
h2 { font-size: 22px; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--ink); }
h2 .number { color: var(--accent); margin-right: 8px; }
h3 { font-size: 17px; margin: 26px 0 8px; }
p { margin: 0 0 12px; max-width: 78ch; }
ul { margin: 0 0 14px; padding-left: 22px; max-width: 80ch; }
li { margin-bottom: 6px; }
section#summary ul { background: var(--band); border-left: 4px solid var(--accent); padding: 12px 16px 6px 34px; max-width: none; }
p.note { color: var(--muted); font-size: 13px; }
figure.chart { margin: 18px 0 20px; }
figure.chart svg { display: block; width: 100%; height: auto; max-width: 900px; border: 1px solid #eee; }
figure.chart svg text { font-family: "DejaVu Sans", "Bitstream Vera Sans", Verdana, sans-serif; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; max-width: 900px; }
table { border-collapse: collapse; margin: 6px 0 16px; font-size: 13px; width: 100%; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: 13px; padding-bottom: 4px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; text-align: left; }
th { background: var(--band); font-weight: 600; }
th.number { text-align: right; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.suppressed { text-align: right; color: var(--muted); font-style: italic; }
td.missing { text-align: right; color: var(--muted); }
td code { font: 10.5px/1.3 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
table.wide { font-size: 12px; }
table.wide td, table.wide th { padding: 4px 5px; }
tr.highlight td { font-weight: 600; }
dl.definitions dt { font-weight: 600; margin-top: 10px; }
dl.definitions dd { margin: 2px 0 0 0; max-width: 80ch; }
footer { margin-top: 40px; padding-top: 10px; border-top: 1px solid var(--rule); color: var(--muted); font-size: 12px; }
#render-check { display: none; }
@media print {
  @page { size: A4; margin: 14mm 12mm 16mm; }
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  header.cover { padding-top: 0; }
  nav.toc a { color: var(--ink); }
  section.page-break { break-before: page; }
  section { margin-top: 18px; }
  figure.chart, table, dl.facts, tr { break-inside: avoid; }
  figure.chart svg { border: 0; }
  h2, h3, caption { break-after: avoid; }
  p.note, figcaption { font-size: 9pt; }
  td code { font-size: 6.5pt; }
  table.wide { font-size: 8.5pt; }
}
"#;

/// The inline script: counts the charts and writes the count into the marker element.
///
/// It also records the page's height (`data-page-height`), which `scripts/screenshot-report.sh`
/// uses to size a full-page screenshot.
const CHECK_SCRIPT: &str = "(function () {\n  var charts = document.querySelectorAll('figure.chart svg').length;\n  var marker = document.getElementById('render-check');\n  var root = document.documentElement;\n  root.setAttribute('data-charts-rendered', String(charts));\n  root.setAttribute('data-page-height', String(Math.ceil(root.scrollHeight)));\n  if (marker) { marker.textContent = 'rendered ' + charts + ' charts'; }\n})();";

/// Render a document as a self-contained HTML page.
pub fn render(doc: &Document) -> String {
    let mut out = String::with_capacity(512 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n", escape(&doc.title)));
    out.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    out.push_str("<header class=\"cover\">\n");
    out.push_str("<p class=\"kicker\">Health inequalities evidence pack</p>\n");
    out.push_str(&format!("<h1>{}</h1>\n", escape(&doc.title)));
    out.push_str(&format!(
        "<p class=\"subtitle\">{}</p>\n",
        escape(&doc.subtitle)
    ));
    if !doc.facts.is_empty() {
        out.push_str("<dl class=\"facts\">\n");
        for (label, value) in &doc.facts {
            out.push_str(&format!(
                "<dt>{}</dt><dd>{}</dd>\n",
                escape(label),
                escape(value)
            ));
        }
        out.push_str("</dl>\n");
    }
    out.push_str("</header>\n");
    out.push_str("<nav class=\"toc\"><h2>Contents</h2><ol>\n");
    for section in &doc.sections {
        out.push_str(&format!(
            "<li><a href=\"#{}\">{}</a></li>\n",
            escape(&section.id),
            escape(&section.title)
        ));
    }
    out.push_str("</ol></nav>\n<main>\n");
    for (i, section) in doc.sections.iter().enumerate() {
        render_section(&mut out, i + 1, section);
    }
    out.push_str("</main>\n");
    out.push_str(&format!("<footer>{}</footer>\n", escape(&doc.footer)));
    out.push_str("<p id=\"render-check\">not rendered</p>\n");
    out.push_str(&format!("<script>\n{CHECK_SCRIPT}\n</script>\n"));
    out.push_str("</body>\n</html>\n");
    out
}

fn render_section(out: &mut String, number: usize, section: &Section) {
    let class = if section.page_break {
        " class=\"page-break\""
    } else {
        ""
    };
    out.push_str(&format!(
        "<section id=\"{}\"{class}>\n<h2><span class=\"number\">{number}</span>{}</h2>\n",
        escape(&section.id),
        escape(&section.title)
    ));
    for block in &section.blocks {
        match block {
            Block::Paragraph(inline) => {
                out.push_str(&format!("<p>{}</p>\n", inline_html(inline)));
            }
            Block::Bullets(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", inline_html(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Subheading(text) => out.push_str(&format!("<h3>{}</h3>\n", escape(text))),
            Block::Table(table) => render_table(out, table),
            Block::Figure(figure) => render_figure(out, figure),
            Block::Note(text) => out.push_str(&format!("<p class=\"note\">{}</p>\n", escape(text))),
            Block::Definitions(items) => {
                out.push_str("<dl class=\"definitions\">\n");
                for (term, definition) in items {
                    out.push_str(&format!(
                        "<dt>{}</dt><dd>{}</dd>\n",
                        escape(term),
                        escape(definition)
                    ));
                }
                out.push_str("</dl>\n");
            }
        }
    }
    out.push_str("</section>\n");
}

/// A long code (a SHA-256) that may wrap only between groups of 16 characters.
fn breakable(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(16)
        .map(|c| escape(&c.iter().collect::<String>()))
        .collect::<Vec<_>>()
        .join("<wbr>")
}

fn inline_html(inline: &Inline) -> String {
    inline
        .iter()
        .map(|span| match span {
            Span::Text(t) => escape(t),
            Span::Strong(t) => format!("<strong>{}</strong>", escape(t)),
        })
        .collect()
}

fn render_table(out: &mut String, table: &Table) {
    // Many columns: a smaller type so the table fits the page.
    if table.columns.len() >= 7 {
        out.push_str("<table class=\"wide\">\n");
    } else {
        out.push_str("<table>\n");
    }
    if let Some(caption) = &table.caption {
        out.push_str(&format!("<caption>{}</caption>\n", escape(caption)));
    }
    if table.columns.iter().any(|c| !c.is_empty()) {
        out.push_str("<thead><tr>");
        for (i, column) in table.columns.iter().enumerate() {
            // Headings of number columns sit over their (right-aligned) numbers.
            let numeric = table
                .rows
                .iter()
                .any(|r| matches!(r.get(i), Some(Cell::Number(_))));
            let class = if numeric { " class=\"number\"" } else { "" };
            out.push_str(&format!("<th scope=\"col\"{class}>{}</th>", escape(column)));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for (i, row) in table.rows.iter().enumerate() {
        if i == 0 && table.highlight_first {
            out.push_str("<tr class=\"highlight\">");
        } else {
            out.push_str("<tr>");
        }
        for cell in row {
            let (class, content) = match cell {
                Cell::Text(t) => ("", escape(t)),
                Cell::Number(t) => (" class=\"number\"", escape(t)),
                Cell::Suppressed => (" class=\"suppressed\"", "suppressed".to_string()),
                Cell::Missing => (" class=\"missing\"", "\u{2013}".to_string()),
                Cell::Code(t) => ("", format!("<code>{}</code>", breakable(t))),
                Cell::Link { text, href } => (
                    "",
                    format!("<a href=\"{}\">{}</a>", escape(href), escape(text)),
                ),
            };
            out.push_str(&format!("<td{class}>{content}</td>"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// An SVG ready to inline: namespace attributes dropped (HTML parsers put `<svg>` in the SVG
/// namespace themselves, and the page must name no external address) and a label for screen
/// readers added.
pub fn inline_svg(svg: &str, label: &str) -> String {
    let svg = svg.trim_start();
    let Some(end) = svg.find('>') else {
        return String::new();
    };
    let (open, rest) = svg.split_at(end);
    let attributes: Vec<&str> = split_attributes(open.trim_start_matches("<svg"))
        .into_iter()
        .filter(|a| !a.starts_with("xmlns"))
        .collect();
    format!(
        "<svg {} role=\"img\" aria-label=\"{}\"{}",
        attributes.join(" "),
        escape(label),
        rest
    )
}

/// Attributes of a tag as `name="value"` strings (values never contain quotes: plotters
/// escapes them).
fn split_attributes(tag: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in tag.char_indices() {
        match (c, quoted, start) {
            ('"', _, _) => {
                quoted = !quoted;
                if !quoted && let Some(s) = start {
                    out.push(tag.get(s..=i).unwrap_or_default());
                    start = None;
                }
            }
            (c, false, None) if !c.is_whitespace() => start = Some(i),
            _ => {}
        }
    }
    out
}

fn render_figure(out: &mut String, figure: &Figure) {
    out.push_str(&format!(
        "<figure class=\"chart\" id=\"{}\">\n{}\n",
        escape(&figure.name),
        inline_svg(&figure.svg, &figure.alt)
    ));
    if let Some(caption) = &figure.caption {
        out.push_str(&format!("<figcaption>{}</figcaption>\n", escape(caption)));
    }
    out.push_str("</figure>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_svg_drops_the_namespace_and_adds_a_label() {
        let svg = "<svg width=\"900\" height=\"560\" viewBox=\"0 0 900 560\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect/></svg>";
        let inlined = inline_svg(svg, "A & B");
        assert!(!inlined.contains("http"), "{inlined}");
        assert!(inlined.starts_with("<svg width=\"900\" height=\"560\" viewBox=\"0 0 900 560\" role=\"img\" aria-label=\"A &amp; B\">"), "{inlined}");
        assert!(inlined.ends_with("<rect/></svg>"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
