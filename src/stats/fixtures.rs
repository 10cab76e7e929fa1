//! Test support: read the reference vectors in `tests/fixtures/vectors/` with a tiny CSV parser
//! (no polars in `stats`) and compare numbers with the reference's tolerances.

use std::collections::HashMap;

/// A CSV file read into header + rows of text cells.
pub struct Table {
    pub name: String,
    pub rows: Vec<Vec<String>>,
    index: HashMap<String, usize>,
}

/// One row of a [`Table`], with its 1-based data-row number for messages.
pub struct Row<'a> {
    table: &'a Table,
    pub number: usize,
    cells: &'a [String],
}

/// Split one CSV line, honouring double quotes (the SII sheet has commas inside quotes).
fn split_line(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(ch),
        }
    }
    cells.push(cell);
    cells
}

impl Table {
    /// Read `tests/fixtures/vectors/<name>`; panics (test only) if it is missing.
    pub fn read(name: &str) -> Table {
        let path = format!(
            "{}/tests/fixtures/vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("reading fixture {path}: {err}"));
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = split_line(lines.next().unwrap_or_default());
        let rows = lines.map(split_line).collect();
        let index = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), i))
            .collect();
        Table {
            name: name.to_string(),
            rows,
            index,
        }
    }

    /// Iterate over the rows.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().enumerate().map(|(i, cells)| Row {
            table: self,
            number: i + 1,
            cells,
        })
    }

    /// The rows whose column `column` equals `value`.
    pub fn filter<'a>(&'a self, column: &'a str, value: &'a str) -> Vec<Row<'a>> {
        self.rows().filter(|r| r.text(column) == value).collect()
    }

    /// A numeric column over the given rows (empty or "NA" → NaN).
    pub fn column(rows: &[Row<'_>], column: &str) -> Vec<f64> {
        rows.iter().map(|r| r.num(column)).collect()
    }
}

impl Row<'_> {
    /// The text of a cell; panics (test only) on an unknown column.
    pub fn text(&self, column: &str) -> &str {
        let i = *self
            .table
            .index
            .get(column)
            .unwrap_or_else(|| panic!("{}: no column {column}", self.table.name));
        self.cells.get(i).map(String::as_str).unwrap_or("")
    }

    /// A numeric cell: empty or "NA" is NaN.
    pub fn num(&self, column: &str) -> f64 {
        let text = self.text(column).trim();
        if text.is_empty() || text == "NA" {
            return f64::NAN;
        }
        text.parse()
            .unwrap_or_else(|_| panic!("{}: not a number", self.describe()))
    }

    /// "file row N (first cell)" for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{} row {} ({})",
            self.table.name,
            self.number,
            self.cells.first().map(String::as_str).unwrap_or("")
        )
    }
}

/// Assert `actual` is within relative tolerance `tol` of `expected` (absolute when expected is
/// 0); two missing values (NaN) are equal.
pub fn assert_close(actual: f64, expected: f64, tol: f64, what: &str) {
    if expected.is_nan() {
        assert!(actual.is_nan(), "{what}: expected NA, got {actual}");
        return;
    }
    let diff = crate::stats::precision::relative_difference(actual, expected);
    assert!(
        diff <= tol,
        "{what}: got {actual}, expected {expected} (relative difference {diff:e} > {tol:e})"
    );
}

/// `Option` version of [`assert_close`]: `None` stands for NA.
pub fn assert_close_opt(actual: Option<f64>, expected: f64, tol: f64, what: &str) {
    assert_close(actual.unwrap_or(f64::NAN), expected, tol, what);
}
