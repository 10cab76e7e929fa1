//! The pack's Markdown twin: the same document as the HTML page, with each chart an image
//! reference to its SVG file in `charts/` beside the Markdown (`![title](charts/NN-name.svg)`),
//! so it reads on GitHub, in a wiki or in any Markdown viewer, and diffs well between years.
//! Tables are pipe tables; suppressed values read "suppressed".

use super::document::{Block, Cell, Document, Inline, Section, Span, Table};

/// The folder, beside the Markdown file, holding its charts.
pub const CHART_FOLDER: &str = "charts";

/// Escape characters that Markdown would read as formatting.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Render a document as Markdown.
pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    out.push_str(&format!("# {}\n\n", escape(&doc.title)));
    out.push_str(&format!("_{}_\n\n", escape(&doc.subtitle)));
    for (label, value) in &doc.facts {
        out.push_str(&format!("- **{}:** {}\n", escape(label), escape(value)));
    }
    out.push_str("\n## Contents\n\n");
    for (i, section) in doc.sections.iter().enumerate() {
        out.push_str(&format!(
            "{}. [{}](#{})\n",
            i + 1,
            escape(&section.title),
            anchor(&format!("{} {}", i + 1, section.title))
        ));
    }
    out.push('\n');
    for (i, section) in doc.sections.iter().enumerate() {
        render_section(&mut out, i + 1, section);
    }
    out.push_str("---\n\n");
    out.push_str(&format!("_{}_\n", escape(&doc.footer)));
    out
}

/// GitHub's anchor for a heading: lowercase, spaces to hyphens, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn render_section(out: &mut String, number: usize, section: &Section) {
    out.push_str(&format!("## {number} {}\n\n", escape(&section.title)));
    for block in &section.blocks {
        match block {
            Block::Paragraph(inline) => out.push_str(&format!("{}\n\n", inline_md(inline))),
            Block::Bullets(items) => {
                for item in items {
                    out.push_str(&format!("- {}\n", inline_md(item)));
                }
                out.push('\n');
            }
            Block::Subheading(text) => out.push_str(&format!("### {}\n\n", escape(text))),
            Block::Table(table) => render_table(out, table),
            Block::Figure(figure) => {
                out.push_str(&format!(
                    "![{}]({CHART_FOLDER}/{}.svg)\n\n",
                    escape(&figure.alt),
                    figure.name
                ));
                if let Some(caption) = &figure.caption {
                    out.push_str(&format!("_{}_\n\n", escape(caption)));
                }
            }
            Block::Note(text) => out.push_str(&format!("> {}\n\n", escape(text))),
            Block::Definitions(items) => {
                for (term, definition) in items {
                    out.push_str(&format!("**{}.** {}\n\n", escape(term), escape(definition)));
                }
            }
        }
    }
}

fn inline_md(inline: &Inline) -> String {
    inline
        .iter()
        .map(|span| match span {
            Span::Text(t) => escape(t),
            Span::Strong(t) => format!("**{}**", escape(t)),
        })
        .collect()
}

fn render_table(out: &mut String, table: &Table) {
    if let Some(caption) = &table.caption {
        out.push_str(&format!("_{}_\n\n", escape(caption)));
    }
    let columns = table.columns.len().max(1);
    let header: Vec<String> = table
        .columns
        .iter()
        .map(|c| if c.is_empty() { " ".into() } else { escape(c) })
        .collect();
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    // Right-align a column whose cells are numbers.
    let align: Vec<&str> = (0..columns)
        .map(|i| {
            let numeric = table
                .rows
                .iter()
                .any(|r| matches!(r.get(i), Some(Cell::Number(_))));
            if numeric { "---:" } else { "---" }
        })
        .collect();
    out.push_str(&format!("| {} |\n", align.join(" | ")));
    for (i, row) in table.rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| {
                let text = match cell {
                    Cell::Code(t) => format!("`{t}`"),
                    Cell::Link { text, href } => format!("[{}]({href})", escape(text)),
                    Cell::Suppressed => "_suppressed_".into(),
                    other => escape(other.text()),
                };
                if i == 0 && table.highlight_first {
                    format!("**{text}**")
                } else {
                    text
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(
            anchor("3 The gradients that matter most"),
            "3-the-gradients-that-matter-most"
        );
        assert_eq!(
            anchor("7 Is the gap closing? SII across runs"),
            "7-is-the-gap-closing-sii-across-runs"
        );
    }

    #[test]
    fn table_cells_are_escaped_and_suppressed_reads_suppressed() {
        let mut out = String::new();
        render_table(
            &mut out,
            &Table {
                caption: None,
                columns: vec!["a|b".into(), "n".into()],
                rows: vec![vec![Cell::Text("x|y".into()), Cell::Suppressed]],
                highlight_first: false,
            },
        );
        assert!(out.contains("a\\|b"));
        assert!(out.contains("| x\\|y | _suppressed_ |"));
    }
}
