//! The pack as a format-neutral document: a title block, sections of paragraphs, lists, tables,
//! figures (SVG charts) and notes. `pack.rs` and the section files build it; `html.rs` and
//! `markdown.rs` render the same document, so the HTML page and its Markdown twin always say
//! the same thing with the same numbers.

/// A piece of running text: plain or bold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// Plain text.
    Text(String),
    /// Emphasised (bold) text.
    Strong(String),
}

/// A paragraph or list item: spans in order.
pub type Inline = Vec<Span>;

/// Plain text as an [`Inline`].
pub fn text(s: impl Into<String>) -> Inline {
    vec![Span::Text(s.into())]
}

/// A table cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Text, left-aligned.
    Text(String),
    /// A formatted number, right-aligned.
    Number(String),
    /// A value withheld by disclosure control: printed "suppressed".
    Suppressed,
    /// No value (not defined, not applicable): printed as an en dash.
    Missing,
    /// A code or hash, in a monospace font.
    Code(String),
    /// A link to another file of the output (relative), e.g. a pack from the index page.
    Link {
        /// The text.
        text: String,
        /// The relative path.
        href: String,
    },
}

impl Cell {
    /// The cell's text.
    pub fn text(&self) -> &str {
        match self {
            Cell::Text(s) | Cell::Number(s) | Cell::Code(s) => s,
            Cell::Link { text, .. } => text,
            Cell::Suppressed => "suppressed",
            Cell::Missing => "\u{2013}",
        }
    }

    /// A number, or "suppressed" when it is missing because it was suppressed.
    pub fn number_or(value: Option<String>, suppressed: bool) -> Cell {
        match value {
            Some(v) => Cell::Number(v),
            None if suppressed => Cell::Suppressed,
            None => Cell::Missing,
        }
    }
}

/// A table: column headings, rows, an optional caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Shown above the table.
    pub caption: Option<String>,
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows of cells (as many as columns).
    pub rows: Vec<Vec<Cell>>,
    /// Emphasise the first row (the area of interest).
    pub highlight_first: bool,
}

/// A chart: its SVG and the words around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// File stem for the SVG written beside the Markdown (`03-gradient-smoking`).
    pub name: String,
    /// A one-line description (alternative text).
    pub alt: String,
    /// The SVG document.
    pub svg: String,
    /// Text under the chart.
    pub caption: Option<String>,
}

/// A block of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph.
    Paragraph(Inline),
    /// A bulleted list.
    Bullets(Vec<Inline>),
    /// A heading inside a section.
    Subheading(String),
    /// A table.
    Table(Table),
    /// A chart.
    Figure(Figure),
    /// Small print: a caveat, a data note.
    Note(String),
    /// Terms and their definitions.
    Definitions(Vec<(String, String)>),
}

/// A numbered section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Anchor id (`profile`, `gradients`).
    pub id: String,
    /// The heading.
    pub title: String,
    /// The content.
    pub blocks: Vec<Block>,
    /// Start on a new page when printed.
    pub page_break: bool,
}

impl Section {
    /// An empty section.
    pub fn new(id: &str, title: impl Into<String>) -> Section {
        Section {
            id: id.to_string(),
            title: title.into(),
            blocks: Vec::new(),
            page_break: false,
        }
    }

    /// Add a block.
    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }

    /// Add a plain paragraph.
    pub fn paragraph(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text(s)));
    }

    /// Add a note.
    pub fn note(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Note(s.into()));
    }

    /// The figures of the section.
    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Figure(f) => Some(f),
            _ => None,
        })
    }
}

/// A whole pack (or index page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The page title: "CROWN PCN: health inequalities evidence pack 2022-23".
    pub title: String,
    /// The line under it.
    pub subtitle: String,
    /// Title-page facts: (label, value).
    pub facts: Vec<(String, String)>,
    /// The sections, in order.
    pub sections: Vec<Section>,
    /// The footer line (source and run).
    pub footer: String,
}

impl Document {
    /// Every figure, in order.
    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.sections.iter().flat_map(Section::figures)
    }
}
