//! The result as a table for people: column names and types in the header, the first and last
//! rows of a long result around an ellipsis row, long values cut with `…`, the row count below.
//!
//! [`TableView`] receives the result batch by batch and keeps only the rows it will show, so a
//! large result prints in bounded memory. Files and pipes get CSV/JSON/Parquet from
//! `output::TableWriter` instead.

use std::collections::VecDeque;
use std::io::Write;

use polars::prelude::*;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How a [`TableView`] is laid out.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// Rows shown at most: the first half and the last half of a longer result (0: all).
    pub max_rows: usize,
    /// Widest a value is shown before it is cut with `…` (when there is more than one column).
    pub max_value_width: usize,
    /// The terminal's width, if printing to one: the widest columns are narrowed to fit.
    pub terminal_width: Option<usize>,
    /// Text after the row count (e.g. the run id).
    pub caption: Option<String>,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            max_rows: 20,
            max_value_width: 40,
            terminal_width: None,
            caption: None,
        }
    }
}

/// Narrowest a column is made to fit the terminal.
const MIN_COLUMN_WIDTH: usize = 6;

/// Collects a result for display: every row counted, the first and last rows kept.
#[derive(Debug)]
pub struct TableView {
    schema: SchemaRef,
    head_rows: usize,
    tail_rows: usize,
    head: Vec<Vec<String>>,
    tail: VecDeque<Vec<String>>,
    rows: u64,
}

impl TableView {
    /// A view of a result with `schema`, keeping `max_rows` rows (0: all).
    pub fn new(schema: SchemaRef, max_rows: usize) -> TableView {
        let (head_rows, tail_rows) = if max_rows == 0 {
            (usize::MAX, 0)
        } else {
            (max_rows.div_ceil(2), max_rows / 2)
        };
        TableView {
            schema,
            head_rows,
            tail_rows,
            head: Vec::new(),
            tail: VecDeque::new(),
            rows: 0,
        }
    }

    /// Rows received.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Take in the next batch of the result.
    ///
    /// # Errors
    /// If a value cannot be read from the batch.
    pub fn push(&mut self, batch: &DataFrame) -> PolarsResult<()> {
        let height = batch.height();
        let wanted_head = self.head_rows.saturating_sub(self.head.len()).min(height);
        for row in 0..wanted_head {
            self.head.push(row_cells(batch, row)?);
        }
        // Only the batch's last rows can end up in the tail.
        let tail_start = height.saturating_sub(self.tail_rows).max(wanted_head);
        for row in tail_start..height {
            if self.tail.len() == self.tail_rows {
                self.tail.pop_front();
            }
            self.tail.push_back(row_cells(batch, row)?);
        }
        self.rows += height as u64;
        Ok(())
    }

    /// Print the table.
    ///
    /// # Errors
    /// If writing fails.
    pub fn render(&self, out: &mut dyn Write, options: &ViewOptions) -> std::io::Result<()> {
        let names: Vec<String> = self.schema.iter_names().map(|n| n.to_string()).collect();
        let types: Vec<String> = self.schema.iter_values().map(type_name).collect();
        let numeric: Vec<bool> = self
            .schema
            .iter_values()
            .map(|dtype| dtype.is_primitive_numeric())
            .collect();
        let shown_rows = self.head.len() as u64 + self.tail.len() as u64;
        let elided = self.rows > shown_rows;
        let mut rows: Vec<&Vec<String>> = self.head.iter().collect();
        let ellipsis: Vec<String> = vec!["…".to_string(); names.len()];
        if elided {
            rows.push(&ellipsis);
        }
        rows.extend(self.tail.iter());

        // One column has the line to itself (an EXPLAIN plan, a list of codes): cut it only
        // at the terminal's edge.
        let cap = if names.len() == 1 {
            options
                .terminal_width
                .map_or(usize::MAX, |width| width.saturating_sub(2))
        } else {
            options.max_value_width
        };
        let mut widths: Vec<usize> = (0..names.len())
            .map(|c| {
                rows.iter()
                    .map(|row| row.get(c).map_or(0, |v| v.width()))
                    .chain([names[c].width(), types[c].width()])
                    .max()
                    .unwrap_or(0)
                    .min(cap.max(MIN_COLUMN_WIDTH))
            })
            .collect();
        if let Some(limit) = options.terminal_width {
            fit(&mut widths, limit);
        }

        if !names.is_empty() {
            write_line(out, &names, &widths, &vec![false; names.len()])?;
            write_line(out, &types, &widths, &vec![false; names.len()])?;
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
            writeln!(out, "{}", rule.join("┼"))?;
            for row in &rows {
                write_line(out, row, &widths, &numeric)?;
            }
        }
        let mut footer = format!(
            "{} {} × {} {}",
            thousands(self.rows),
            if self.rows == 1 { "row" } else { "rows" },
            names.len(),
            if names.len() == 1 {
                "column"
            } else {
                "columns"
            },
        );
        if elided {
            footer.push_str(&format!(
                " (first {} and last {} shown; --max-rows N, or --format csv for all)",
                self.head.len(),
                self.tail.len()
            ));
        }
        if let Some(caption) = &options.caption {
            footer.push_str(" · ");
            footer.push_str(caption);
        }
        writeln!(out, "{footer}")
    }
}

/// Narrow the widest columns until the table fits `limit` characters, or every column is at
/// its narrowest (then the terminal wraps: values are never dropped silently).
fn fit(widths: &mut [usize], limit: usize) {
    let total = |widths: &[usize]| {
        widths
            .iter()
            .map(|w| w + 3)
            .sum::<usize>()
            .saturating_sub(1)
    };
    while total(widths) > limit {
        let Some(widest) = widths
            .iter_mut()
            .filter(|w| **w > MIN_COLUMN_WIDTH)
            .max_by_key(|w| **w)
        else {
            return;
        };
        *widest -= 1;
    }
}

fn write_line(
    out: &mut dyn Write,
    cells: &[String],
    widths: &[usize],
    right_align: &[bool],
) -> std::io::Result<()> {
    let parts: Vec<String> = cells
        .iter()
        .zip(widths)
        .zip(right_align)
        .map(|((cell, width), right)| {
            let cell = cut(cell, *width);
            let padding = " ".repeat(width.saturating_sub(cell.width()));
            if *right {
                format!(" {padding}{cell} ")
            } else {
                format!(" {cell}{padding} ")
            }
        })
        .collect();
    writeln!(out, "{}", parts.join("│").trim_end())
}

/// `text` cut to `width` display columns, ending in `…` when cut.
fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        cut.push(c);
        used += w;
    }
    cut.push('…');
    cut
}

fn row_cells(batch: &DataFrame, row: usize) -> PolarsResult<Vec<String>> {
    batch
        .columns()
        .iter()
        .map(|column| column.get(row).map(|value| cell(&value)))
        .collect()
}

/// A value as shown: text as is (control characters escaped), floats to six decimals without
/// trailing zeros, nulls as `null`.
fn cell(value: &AnyValue) -> String {
    if let Some(text) = value.get_str() {
        // Control characters would break the layout; everything else is shown as is.
        return text
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
    }
    match value {
        AnyValue::Null => "null".to_string(),
        AnyValue::Float64(x) => float(*x),
        AnyValue::Float32(x) => float(f64::from(*x)),
        other => other.to_string(),
    }
}

fn float(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let magnitude = x.abs();
    if magnitude != 0.0 && !(1e-4..1e15).contains(&magnitude) {
        return format!("{x:.4e}");
    }
    let fixed = format!("{x:.6}");
    let trimmed = fixed.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_string()
    }
}

/// polars' short type names (`str`, `i64`, `f64`, `date`, `cat`, `list[str]`).
pub fn type_name(dtype: &DataType) -> String {
    dtype.to_string()
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_of(df: &DataFrame, max_rows: usize, batch: usize) -> String {
        let mut view = TableView::new(df.schema().clone(), max_rows);
        let mut offset = 0;
        while offset < df.height() {
            view.push(&df.slice(offset as i64, batch)).expect("push");
            offset += batch;
        }
        let mut out = Vec::new();
        view.render(&mut out, &ViewOptions::default())
            .expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn long_results_show_first_and_last_rows_whatever_the_batches() {
        let df = df!("n" => (1..=100i64).collect::<Vec<_>>()).expect("frame");
        for batch in [1, 7, 100] {
            let text = view_of(&df, 4, batch);
            let values: Vec<&str> = text.lines().skip(3).take(5).map(str::trim).collect();
            assert_eq!(
                values,
                ["1", "2", "…", "99", "100"],
                "batch {batch}\n{text}"
            );
            assert!(
                text.contains("100 rows × 1 column (first 2 and last 2 shown"),
                "{text}"
            );
        }
    }

    #[test]
    fn header_has_names_and_types_and_values_are_cut() {
        let df = df!(
            "code" => ["A81001", &"x".repeat(60)],
            "share" => [0.123456789, 2.0],
        )
        .expect("frame");
        let text = view_of(&df, 20, 10);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with(" code") && lines[0].contains("│ share"),
            "{text}"
        );
        assert!(
            lines[1].starts_with(" str") && lines[1].contains("│ f64"),
            "{text}"
        );
        assert!(lines[3].contains("0.123457"), "{text}");
        assert!(lines[4].contains(&format!("{}…", "x".repeat(39))), "{text}");
        assert!(lines[4].trim_end().ends_with("2.0"), "{text}");
        assert_eq!(lines[5], "2 rows × 2 columns");
    }

    #[test]
    fn fitting_narrows_the_widest_column() {
        let mut widths = vec![40, 10, 8];
        fit(&mut widths, 50);
        assert_eq!(widths.iter().map(|w| w + 3).sum::<usize>() - 1, 50);
        assert_eq!(widths[1..], [10, 8]);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
