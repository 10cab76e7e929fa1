//! Drawing primitives every chart shares, in CSS pixels on a plotters drawing area: text (measured
//! and wrapped with the bundled font), lines, markers, the title block and source line that frame
//! each chart, and legends. Axes and scales are in `axis.rs`.
//!
//! Charts draw on the root area in absolute device pixels (plotters is used as a canvas, not for
//! its chart builder) so that every label's place is computed here and nothing depends on
//! plotters' automatic layout. Colours and sizes come from `style.rs`.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, FontTransform};

use super::style::{BACKGROUND, INK, MARGIN, MUTED, Scale, text_size};
use super::{ChartError, ChartText};

/// A rectangle in device pixels (x0, y0 top left; x1, y1 bottom right, exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    pub fn width(&self) -> i32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> i32 {
        self.y1 - self.y0
    }
}

/// Turn any plotters error into a [`ChartError::Draw`].
pub(crate) fn draw_error<E: std::fmt::Display>(error: E) -> ChartError {
    ChartError::Draw(error.to_string())
}

/// Text weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Normal,
    Bold,
}

/// A marker's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Circle,
    Square,
    Diamond,
}

/// A point marker: shape, radius (CSS pixels), fill and outline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Marker {
    pub shape: Shape,
    pub radius: f64,
    pub fill: Option<RGBColor>,
    pub stroke: Option<(RGBColor, f64)>,
}

/// What a legend entry shows before its label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Key {
    /// A line, solid or dashed.
    Line {
        colour: RGBColor,
        width: f64,
        dashed: bool,
    },
    /// A marker.
    Marker(Marker),
    /// A marker with a vertical error bar through it.
    ErrorBar { colour: RGBColor, marker: Marker },
    /// Markers drawn on top of each other (e.g. a halo under a dot).
    Stack(Vec<Marker>),
    /// A filled box (a bar's colour or a band).
    Swatch {
        fill: RGBColor,
        stroke: Option<RGBColor>,
    },
}

/// One legend entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LegendEntry {
    pub key: Key,
    pub label: String,
}

impl LegendEntry {
    pub fn new(key: Key, label: impl Into<String>) -> Self {
        LegendEntry {
            key,
            label: label.into(),
        }
    }
}

/// The frame's text, wrapped to the page.
struct FrameLines {
    title: Vec<String>,
    subtitle: Vec<String>,
    captions: Vec<Vec<String>>,
    footer: Vec<String>,
}

/// Width of a legend key, in CSS pixels.
const KEY_WIDTH: f64 = 26.0;
/// Gap between a key and its label, and between entries.
const KEY_GAP: f64 = 6.0;
const ENTRY_GAP: f64 = 18.0;
/// Line spacing as a multiple of the font size.
const LEADING: f64 = 1.35;

/// The root drawing area and the scale: every chart draws through this.
pub(crate) struct Canvas<'a, DB: DrawingBackend> {
    pub root: &'a DrawingArea<DB, Shift>,
    pub s: Scale,
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB> {
    pub fn new(root: &'a DrawingArea<DB, Shift>, s: Scale) -> Self {
        Canvas { root, s }
    }

    /// The whole canvas.
    pub fn bounds(&self) -> Rect {
        let (w, h) = self.root.dim_in_pixel();
        Rect {
            x0: 0,
            y0: 0,
            x1: w as i32,
            y1: h as i32,
        }
    }

    /// A device-pixel length from CSS pixels.
    pub fn px(&self, css: f64) -> i32 {
        self.s.px(css)
    }

    /// A text style: size in CSS pixels, weight, colour, anchor.
    pub fn font(&self, size: f64, weight: Weight, colour: RGBColor) -> TextStyle<'static> {
        let style = match weight {
            Weight::Normal => FontStyle::Normal,
            Weight::Bold => FontStyle::Bold,
        };
        TextStyle {
            font: FontDesc::new(FontFamily::SansSerif, self.s.font(size), style),
            color: colour.to_backend_color(),
            pos: Pos::new(HPos::Left, VPos::Top),
        }
    }

    /// The height of one line of text of `size`, in device pixels.
    pub fn line_height(&self, size: f64) -> i32 {
        self.px(size * LEADING)
    }

    /// The width of `text` in device pixels.
    pub fn text_width(&self, text: &str, style: &TextStyle) -> Result<i32, ChartError> {
        if text.is_empty() {
            return Ok(0);
        }
        let (w, _) = self
            .root
            .estimate_text_size(text, style)
            .map_err(draw_error)?;
        Ok(w as i32)
    }

    /// Split `text` into lines no wider than `width` device pixels, at spaces. A single word wider
    /// than the line stays whole (it is never cut).
    pub fn wrap(
        &self,
        text: &str,
        style: &TextStyle,
        width: i32,
    ) -> Result<Vec<String>, ChartError> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if !line.is_empty() && self.text_width(&candidate, style)? > width {
                    lines.push(std::mem::take(&mut line));
                    line = word.to_string();
                } else {
                    line = candidate;
                }
            }
            lines.push(line);
        }
        Ok(lines)
    }

    /// Draw text with its anchor at `(x, y)`.
    pub fn text(
        &self,
        text: &str,
        (x, y): (i32, i32),
        style: &TextStyle,
        h: HPos,
        v: VPos,
    ) -> Result<(), ChartError> {
        if text.is_empty() {
            return Ok(());
        }
        let y = y + self.s.raster_text_shift(style.font.get_size());
        self.root
            .draw_text(text, &style.pos(Pos::new(h, v)), (x, y))
            .map_err(draw_error)
    }

    /// Draw text turned a quarter anticlockwise (reading upwards), centred on `(x, y)`.
    pub fn text_vertical(
        &self,
        text: &str,
        (x, y): (i32, i32),
        style: &TextStyle,
    ) -> Result<(), ChartError> {
        // Turned text's "down" is to the right.
        let x = x + self.s.raster_text_shift(style.font.get_size());
        let style = style
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top));
        self.root
            .draw_text(text, &style, (x, y))
            .map_err(draw_error)
    }

    /// Draw wrapped lines from `top` and return the y below them.
    pub fn lines(
        &self,
        lines: &[String],
        x: i32,
        top: i32,
        style: &TextStyle,
        size: f64,
    ) -> Result<i32, ChartError> {
        let mut y = top;
        for line in lines {
            self.text(line, (x, y), style, HPos::Left, VPos::Top)?;
            y += self.line_height(size);
        }
        Ok(y)
    }

    /// A polyline.
    pub fn path(
        &self,
        points: &[(i32, i32)],
        colour: RGBColor,
        width: f64,
    ) -> Result<(), ChartError> {
        if points.len() < 2 {
            return Ok(());
        }
        let stroke = self.s.stroke(width);
        let runs = if self.s.raster && stroke > 1 {
            split_at_sharp_turns(points)
        } else {
            vec![points.to_vec()]
        };
        for run in runs {
            self.root
                .draw(&PathElement::new(run, colour.stroke_width(stroke)))
                .map_err(draw_error)?;
        }
        Ok(())
    }

    /// A dashed polyline.
    pub fn dashed(
        &self,
        points: &[(i32, i32)],
        colour: RGBColor,
        width: f64,
    ) -> Result<(), ChartError> {
        if points.len() < 2 {
            return Ok(());
        }
        self.root
            .draw(&DashedPathElement::new(
                points.to_vec(),
                self.px(6.0),
                self.px(4.0),
                colour.stroke_width(self.s.stroke(width)),
            ))
            .map_err(draw_error)
    }

    /// A filled and/or outlined rectangle.
    pub fn rect(
        &self,
        r: Rect,
        fill: Option<RGBColor>,
        stroke: Option<(RGBColor, f64)>,
    ) -> Result<(), ChartError> {
        if let Some(fill) = fill {
            self.root
                .draw(&Rectangle::new([(r.x0, r.y0), (r.x1, r.y1)], fill.filled()))
                .map_err(draw_error)?;
        }
        if let Some((colour, width)) = stroke {
            self.root
                .draw(&Rectangle::new(
                    [(r.x0, r.y0), (r.x1, r.y1)],
                    colour.stroke_width(self.s.stroke(width)),
                ))
                .map_err(draw_error)?;
        }
        Ok(())
    }

    /// A filled polygon (device pixels).
    pub fn polygon(
        &self,
        points: &[(i32, i32)],
        fill: RGBColor,
        opacity: f64,
    ) -> Result<(), ChartError> {
        if points.len() < 3 {
            return Ok(());
        }
        self.root
            .draw(&Polygon::new(points.to_vec(), fill.mix(opacity).filled()))
            .map_err(draw_error)
    }

    /// A marker centred on `(x, y)`.
    pub fn marker(&self, (x, y): (i32, i32), m: &Marker) -> Result<(), ChartError> {
        let r = self.s.f(m.radius).max(1.0);
        let ri = r.round() as i32;
        let outline = |points: Vec<(i32, i32)>| -> Result<(), ChartError> {
            if let Some(fill) = m.fill {
                self.root
                    .draw(&Polygon::new(points.clone(), fill.filled()))
                    .map_err(draw_error)?;
            }
            if let Some((colour, width)) = m.stroke {
                let mut closed = points;
                if let Some(first) = closed.first().copied() {
                    closed.push(first);
                }
                self.root
                    .draw(&PathElement::new(
                        closed,
                        colour.stroke_width(self.s.stroke(width)),
                    ))
                    .map_err(draw_error)?;
            }
            Ok(())
        };
        match m.shape {
            Shape::Circle => {
                if let Some(fill) = m.fill {
                    self.root
                        .draw(&Circle::new((x, y), ri, fill.filled()))
                        .map_err(draw_error)?;
                }
                if let Some((colour, width)) = m.stroke {
                    self.root
                        .draw(&Circle::new(
                            (x, y),
                            ri,
                            colour.stroke_width(self.s.stroke(width)),
                        ))
                        .map_err(draw_error)?;
                }
                Ok(())
            }
            Shape::Square => {
                let h = (r * 0.9).round() as i32;
                outline(vec![
                    (x - h, y - h),
                    (x + h, y - h),
                    (x + h, y + h),
                    (x - h, y + h),
                ])
            }
            Shape::Diamond => {
                let h = (r * 1.25).round() as i32;
                outline(vec![(x, y - h), (x + h, y), (x, y + h), (x - h, y)])
            }
        }
    }

    /// The legend key for an entry, drawn in a box of [`KEY_WIDTH`] starting at `x`, centred on
    /// `y`.
    fn key(&self, key: &Key, x: i32, y: i32) -> Result<(), ChartError> {
        let w = self.px(KEY_WIDTH);
        let mid = x + w / 2;
        match key {
            Key::Line {
                colour,
                width,
                dashed,
            } => {
                let points = [(x, y), (x + w, y)];
                if *dashed {
                    self.dashed(&points, *colour, *width)
                } else {
                    self.path(&points, *colour, *width)
                }
            }
            Key::Marker(m) => self.marker((mid, y), m),
            Key::Stack(markers) => {
                for m in markers {
                    self.marker((mid, y), m)?;
                }
                Ok(())
            }
            Key::ErrorBar { colour, marker } => {
                let h = self.px(7.0);
                self.path(&[(mid, y - h), (mid, y + h)], *colour, 1.5)?;
                self.path(
                    &[(mid - self.px(3.0), y - h), (mid + self.px(3.0), y - h)],
                    *colour,
                    1.5,
                )?;
                self.path(
                    &[(mid - self.px(3.0), y + h), (mid + self.px(3.0), y + h)],
                    *colour,
                    1.5,
                )?;
                self.marker((mid, y), marker)
            }
            Key::Swatch { fill, stroke } => {
                let h = self.px(6.0);
                let r = Rect {
                    x0: x + self.px(4.0),
                    y0: y - h,
                    x1: x + w - self.px(4.0),
                    y1: y + h,
                };
                self.rect(r, Some(*fill), stroke.map(|c| (c, 1.0)))
            }
        }
    }

    /// The width of one legend entry, in device pixels.
    fn entry_width(&self, entry: &LegendEntry, style: &TextStyle) -> Result<i32, ChartError> {
        Ok(self.px(KEY_WIDTH + KEY_GAP) + self.text_width(&entry.label, style)?)
    }

    /// Lay legend entries out left to right from `x0`, wrapping before `x1`. Returns each row's
    /// entries with their x positions.
    fn legend_layout(
        &self,
        entries: &[LegendEntry],
        x0: i32,
        x1: i32,
    ) -> Result<Vec<Vec<(i32, usize)>>, ChartError> {
        let style = self.font(text_size::BODY, Weight::Normal, INK);
        let mut rows: Vec<Vec<(i32, usize)>> = vec![Vec::new()];
        let mut x = x0;
        for (i, entry) in entries.iter().enumerate() {
            let w = self.entry_width(entry, &style)?;
            let row_has_entries = rows.last().is_some_and(|r| !r.is_empty());
            if row_has_entries && x + w > x1 {
                rows.push(Vec::new());
                x = x0;
            }
            if let Some(row) = rows.last_mut() {
                row.push((x, i));
            }
            x += w + self.px(ENTRY_GAP);
        }
        Ok(rows)
    }

    /// Draw a legend in rows from `(x0, top)`, wrapping before `x1`; returns the y below it.
    pub fn legend_rows(
        &self,
        entries: &[LegendEntry],
        x0: i32,
        x1: i32,
        top: i32,
    ) -> Result<i32, ChartError> {
        if entries.is_empty() {
            return Ok(top);
        }
        let style = self.font(text_size::BODY, Weight::Normal, INK);
        let row_height = self.px(text_size::BODY * 1.7);
        let mut y = top;
        for row in self.legend_layout(entries, x0, x1)? {
            let mid = y + row_height / 2;
            for (x, i) in row {
                if let Some(entry) = entries.get(i) {
                    self.key(&entry.key, x, mid)?;
                    self.text(
                        &entry.label,
                        (x + self.px(KEY_WIDTH + KEY_GAP), mid),
                        &style,
                        HPos::Left,
                        VPos::Center,
                    )?;
                }
            }
            y += row_height;
        }
        Ok(y)
    }

    /// Draw a legend as a column from `(x, top)`, wrapping labels to `width`; returns the y below.
    pub fn legend_column(
        &self,
        entries: &[LegendEntry],
        x: i32,
        top: i32,
        width: i32,
    ) -> Result<i32, ChartError> {
        let style = self.font(text_size::BODY, Weight::Normal, INK);
        let text_x = x + self.px(KEY_WIDTH + KEY_GAP);
        let line = self.line_height(text_size::BODY);
        let mut y = top;
        for entry in entries {
            let lines = self.wrap(&entry.label, &style, x + width - text_x)?;
            let first_mid = y + line / 2;
            self.key(&entry.key, x, first_mid)?;
            for (i, l) in lines.iter().enumerate() {
                self.text(
                    l,
                    (text_x, first_mid + i as i32 * line),
                    &style,
                    HPos::Left,
                    VPos::Center,
                )?;
            }
            y += line * lines.len() as i32 + self.px(6.0);
        }
        Ok(y)
    }

    /// The frame's wrapped lines for the page width.
    fn frame_lines(
        &self,
        text: &ChartText,
        captions: &[String],
        notes: &[String],
    ) -> Result<FrameLines, ChartError> {
        let width = self.bounds().width() - 2 * self.px(MARGIN);
        let title = self.wrap(
            &text.title,
            &self.font(text_size::TITLE, Weight::Bold, INK),
            width,
        )?;
        let sub_style = self.font(text_size::SUBTITLE, Weight::Normal, MUTED);
        let subtitle = match text.subtitle.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(subtitle) => self.wrap(subtitle, &sub_style, width)?,
            None => Vec::new(),
        };
        let caption_style = self.font(text_size::SUBTITLE, Weight::Normal, INK);
        let mut caption_lines = Vec::new();
        for caption in captions {
            caption_lines.push(self.wrap(caption, &caption_style, width)?);
        }
        let small = self.font(text_size::SMALL, Weight::Normal, MUTED);
        let mut footer: Vec<String> = Vec::new();
        for note in notes {
            footer.extend(self.wrap(note, &small, width)?);
        }
        if !text.source.trim().is_empty() {
            footer.extend(self.wrap(&text.source, &small, width)?);
        }
        Ok(FrameLines {
            title,
            subtitle,
            captions: caption_lines,
            footer,
        })
    }

    /// Heights of the frame's header (margin, title block, gap) and footer (gap, notes and
    /// source, margin), in device pixels.
    fn frame_heights(&self, lines: &FrameLines) -> (i32, i32) {
        let m = self.px(MARGIN);
        let mut header = m + lines.title.len() as i32 * self.line_height(text_size::TITLE);
        if !lines.subtitle.is_empty() {
            header +=
                self.px(2.0) + lines.subtitle.len() as i32 * self.line_height(text_size::SUBTITLE);
        }
        for caption in &lines.captions {
            header += self.px(2.0) + caption.len() as i32 * self.line_height(text_size::SUBTITLE);
        }
        let footer = lines.footer.len() as i32 * self.line_height(text_size::SMALL);
        (header + self.px(8.0), footer + m + self.px(8.0))
    }

    /// The height the frame takes from the page (header plus footer), in device pixels: for
    /// charts whose canvas grows with their content.
    pub fn frame_chrome(
        &self,
        text: &ChartText,
        captions: &[String],
        notes: &[String],
    ) -> Result<i32, ChartError> {
        let (header, footer) = self.frame_heights(&self.frame_lines(text, captions, notes)?);
        Ok(header + footer)
    }

    /// The frame of every chart: white page, title, subtitle and chart-specific caption lines at
    /// the top; notes and the source line at the bottom, all wrapped to the width. Returns the
    /// rectangle left for the chart between them.
    pub fn frame(
        &self,
        text: &ChartText,
        captions: &[String],
        notes: &[String],
    ) -> Result<Rect, ChartError> {
        self.root.fill(&BACKGROUND).map_err(draw_error)?;
        let page = self.bounds();
        let m = self.px(MARGIN);
        let x = page.x0 + m;
        let lines = self.frame_lines(text, captions, notes)?;
        let (header, footer) = self.frame_heights(&lines);

        let title_style = self.font(text_size::TITLE, Weight::Bold, INK);
        let mut y = self.lines(&lines.title, x, page.y0 + m, &title_style, text_size::TITLE)?;
        let sub_style = self.font(text_size::SUBTITLE, Weight::Normal, MUTED);
        if !lines.subtitle.is_empty() {
            y = self.lines(
                &lines.subtitle,
                x,
                y + self.px(2.0),
                &sub_style,
                text_size::SUBTITLE,
            )?;
        }
        let caption_style = self.font(text_size::SUBTITLE, Weight::Normal, INK);
        for caption in &lines.captions {
            y = self.lines(
                caption,
                x,
                y + self.px(2.0),
                &caption_style,
                text_size::SUBTITLE,
            )?;
        }
        let small = self.font(text_size::SMALL, Weight::Normal, MUTED);
        let footer_top = page.y1 - footer + self.px(8.0);
        self.lines(&lines.footer, x, footer_top, &small, text_size::SMALL)?;

        Ok(Rect {
            x0: x,
            y0: page.y0 + header,
            x1: page.x1 - m,
            y1: page.y1 - footer,
        })
    }

    /// A "no data" message centred in `r`, for charts whose data cannot be drawn.
    pub fn message(&self, message: &str, r: Rect) -> Result<(), ChartError> {
        let style = self.font(text_size::SUBTITLE, Weight::Normal, MUTED);
        let lines = self.wrap(message, &style, r.width() - self.px(40.0))?;
        let line = self.line_height(text_size::SUBTITLE);
        let top = r.y0 + (r.height() - line * lines.len() as i32) / 2;
        let cx = r.x0 + r.width() / 2;
        for (i, l) in lines.iter().enumerate() {
            self.text(
                l,
                (cx, top + i as i32 * line),
                &style,
                HPos::Center,
                VPos::Top,
            )?;
        }
        Ok(())
    }
}

/// Split a polyline where it turns back sharply (more than 120°). plotters' bitmap backend joins
/// wide lines with unlimited mitres, so a hairpin (an estuary on a coastline) becomes a long
/// spike; drawn as separate runs the hairpin has no join. Repeated points are dropped.
fn split_at_sharp_turns(points: &[(i32, i32)]) -> Vec<Vec<(i32, i32)>> {
    let mut deduped: Vec<(i32, i32)> = Vec::with_capacity(points.len());
    for p in points {
        if deduped.last() != Some(p) {
            deduped.push(*p);
        }
    }
    let mut runs = Vec::new();
    let mut run: Vec<(i32, i32)> = Vec::new();
    for (i, &p) in deduped.iter().enumerate() {
        run.push(p);
        if let (Some(&a), Some(&c)) = (
            i.checked_sub(1).and_then(|j| deduped.get(j)),
            deduped.get(i + 1),
        ) {
            let (ux, uy) = (f64::from(p.0 - a.0), f64::from(p.1 - a.1));
            let (vx, vy) = (f64::from(c.0 - p.0), f64::from(c.1 - p.1));
            let cos =
                (ux * vx + uy * vy) / ((ux * ux + uy * uy).sqrt() * (vx * vx + vy * vy).sqrt());
            if cos < -0.5 {
                runs.push(std::mem::replace(&mut run, vec![p]));
            }
        }
    }
    if run.len() > 1 {
        runs.push(run);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hairpins_are_split() {
        let runs = split_at_sharp_turns(&[(0, 0), (10, 0), (10, 0), (0, 1), (0, 5)]);
        assert_eq!(
            runs,
            vec![vec![(0, 0), (10, 0)], vec![(10, 0), (0, 1), (0, 5)]]
        );
        assert_eq!(split_at_sharp_turns(&[(0, 0), (5, 0), (5, 5)]).len(), 1);
    }
}
