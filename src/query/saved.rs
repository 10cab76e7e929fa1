//! Saved queries (`queries/NAME.sql`): the header comment that documents them, and binding
//! `--param KEY=VALUE` to their `:name` placeholders.
//!
//! The header is the comment block at the top of the file (see `queries/README.md`):
//!
//! ```sql
//! -- Rejected input rows by reason, for one input.
//! --
//! -- Parameters:
//! --   :input   the input kind, e.g. patients
//! -- Columns:
//! --   column   the input column refused
//! --   rows     rejected rows
//! SELECT column, reason, count(*) AS rows FROM rejects WHERE input = :input GROUP BY 1, 2
//! ```
//!
//! Values are bound by replacing each placeholder the parser found (never text inside strings
//! or comments) with a SQL literal: a number when the value is written as a plain decimal,
//! otherwise a string with its quotes doubled, so no value can change the query's shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::sql::{ParsedQuery, is_identifier, parse};
use super::{QueryError, closest, names_list};

/// A query to run: text, where it came from, and its documented header.
#[derive(Debug, Clone)]
pub struct SavedQuery {
    /// The saved query's name (file stem), if it came from a file.
    pub name: Option<String>,
    /// The file it was read from.
    pub path: Option<PathBuf>,
    /// The SQL text.
    pub text: String,
    /// What the header comment documents.
    pub header: QueryHeader,
}

/// The documentation in a query's header comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryHeader {
    /// The first line: what the query answers.
    pub title: String,
    /// The other description lines, joined with newlines.
    pub description: String,
    /// `Parameters:` entries (names without the colon).
    pub parameters: Vec<Documented>,
    /// `Columns:` entries.
    pub columns: Vec<Documented>,
}

/// A documented name in a header: a parameter or a returned column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Documented {
    /// The name.
    pub name: String,
    /// What it means.
    pub description: String,
}

impl Documented {
    /// The example value a parameter's description gives after `e.g.` (the test suite and
    /// `--list` use it), if any.
    pub fn example(&self) -> Option<&str> {
        let (_, example) = self.description.rsplit_once("e.g. ")?;
        let example = example
            .split([' ', ')', ',', ';'])
            .next()
            .unwrap_or("")
            .trim_end_matches('.');
        (!example.is_empty()).then_some(example)
    }
}

/// A `--param KEY=VALUE` pair, checked: KEY is a placeholder name (a leading `:` is dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// The placeholder name, without the colon.
    pub name: String,
    /// The value as given.
    pub value: String,
}

impl std::str::FromStr for Parameter {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Parameter, QueryError> {
        let Some((name, value)) = text.split_once('=') else {
            return Err(QueryError::BadParameter(format!(
                "parameter `{text}` has no value: write KEY=VALUE, e.g. pcn_code=U12345"
            )));
        };
        let name = name.trim().trim_start_matches(':');
        if !is_identifier(name) {
            return Err(QueryError::BadParameter(format!(
                "parameter name `{name}` is not a name: letters, digits and `_`, not starting \
                 with a digit"
            )));
        }
        Ok(Parameter {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

/// A query whose parameters are bound: the SQL polars runs and the tables it reads.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    /// The SQL with every placeholder replaced by a literal.
    pub sql: String,
    /// Tables the query reads (see [`ParsedQuery::tables`]).
    pub tables: Vec<String>,
}

impl SavedQuery {
    /// A query given as text on the command line.
    pub fn inline(text: &str) -> SavedQuery {
        SavedQuery {
            name: None,
            path: None,
            text: text.to_string(),
            header: QueryHeader::parse(text),
        }
    }

    /// Read a query file.
    ///
    /// # Errors
    /// [`QueryError::QueryFile`] if it cannot be read.
    pub fn load(path: &Path) -> Result<SavedQuery, QueryError> {
        let text = std::fs::read_to_string(path).map_err(|source| QueryError::QueryFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SavedQuery {
            name: path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned()),
            path: Some(path.to_path_buf()),
            header: QueryHeader::parse(&text),
            text,
        })
    }

    /// The saved query `dir/NAME.sql` (`NAME` may end in `.sql`).
    ///
    /// # Errors
    /// [`QueryError::UnknownSavedQuery`] naming the closest saved queries in `dir`.
    pub fn find(dir: &Path, name: &str) -> Result<SavedQuery, QueryError> {
        let name = name.strip_suffix(".sql").unwrap_or(name);
        let path = dir.join(format!("{name}.sql"));
        if path.is_file() {
            return SavedQuery::load(&path);
        }
        let available = saved_query_paths(dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
            .collect::<Vec<_>>();
        let hint = if !dir.is_dir() {
            " (no such folder; run from the repository root or pass --queries-dir DIR)".to_string()
        } else if available.is_empty() {
            " (the folder has no .sql files)".to_string()
        } else {
            let suggestions = closest(name, available.iter().map(String::as_str));
            match suggestions.first() {
                Some(best) => format!(
                    "; did you mean `{best}`? (saved queries: {})",
                    names_list(&available)
                ),
                None => format!("; saved queries: {}", names_list(&available)),
            }
        };
        Err(QueryError::UnknownSavedQuery {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            hint,
        })
    }

    /// Every saved query in `dir` (`*.sql`, sorted by name).
    ///
    /// # Errors
    /// If the folder or a file cannot be read.
    pub fn list(dir: &Path) -> Result<Vec<SavedQuery>, QueryError> {
        saved_query_paths(dir)
            .map_err(|source| QueryError::QueryFile {
                path: dir.to_path_buf(),
                source,
            })?
            .iter()
            .map(|path| SavedQuery::load(path))
            .collect()
    }

    /// Parse the query and bind `parameters` to its placeholders.
    ///
    /// # Errors
    /// Everything [`parse`] refuses; [`QueryError::MissingParameter`] for a placeholder
    /// without a value and [`QueryError::UnknownParameter`] for a value without a
    /// placeholder, both listing the query's parameters with their descriptions.
    pub fn prepare(&self, parameters: &[Parameter]) -> Result<PreparedQuery, QueryError> {
        let parsed = parse(&self.text)?;
        let used = parsed.placeholder_names();
        let mut values = BTreeMap::new();
        for parameter in parameters {
            if !used.contains(&parameter.name.as_str()) {
                let suggestion = closest(&parameter.name, used.iter().copied())
                    .first()
                    .map(|best| format!("; did you mean `{best}`?"))
                    .unwrap_or_default();
                return Err(QueryError::UnknownParameter {
                    name: parameter.name.clone(),
                    hint: format!("{suggestion}{}", self.parameter_list(&used)),
                });
            }
            values.insert(parameter.name.as_str(), parameter.value.as_str());
        }
        if let Some(missing) = used.iter().find(|name| !values.contains_key(*name)) {
            return Err(QueryError::MissingParameter {
                name: (*missing).to_string(),
                hint: self.parameter_list(&used),
            });
        }
        Ok(PreparedQuery {
            sql: bind(&parsed, &values),
            tables: parsed.tables().to_vec(),
        })
    }

    /// Problems with the header against the text: placeholders the header does not document,
    /// documented parameters the query does not use. Empty when they agree (the test suite
    /// checks every saved query with this).
    ///
    /// # Errors
    /// If the query does not parse or is not read-only.
    pub fn header_problems(&self) -> Result<Vec<String>, QueryError> {
        let parsed = parse(&self.text)?;
        let used = parsed.placeholder_names();
        let mut problems = Vec::new();
        if self.header.title.is_empty() {
            problems.push("no header comment saying what the query answers".to_string());
        }
        for name in &used {
            if !self.header.parameters.iter().any(|p| p.name == *name) {
                problems.push(format!(
                    "placeholder `:{name}` is not documented under `Parameters:`"
                ));
            }
        }
        for parameter in &self.header.parameters {
            if !used.contains(&parameter.name.as_str()) {
                problems.push(format!(
                    "documented parameter `:{}` is not used by the query",
                    parameter.name
                ));
            }
        }
        Ok(problems)
    }

    /// "; this query takes: …" with each parameter's description from the header.
    fn parameter_list(&self, used: &[&str]) -> String {
        if used.is_empty() {
            return "; this query takes no parameters".to_string();
        }
        let lines: Vec<String> = used
            .iter()
            .map(
                |name| match self.header.parameters.iter().find(|p| p.name == *name) {
                    Some(documented) => format!("\n  :{name}  {}", documented.description),
                    None => format!("\n  :{name}"),
                },
            )
            .collect();
        format!("; this query takes:{}", lines.concat())
    }
}

/// The query text with every placeholder replaced by its value as a SQL literal.
fn bind(parsed: &ParsedQuery, values: &BTreeMap<&str, &str>) -> String {
    let text = parsed.text();
    let mut bound = String::with_capacity(text.len());
    let mut copied = 0;
    for placeholder in parsed.placeholders() {
        bound.push_str(&text[copied..placeholder.range.start]);
        if let Some(value) = values.get(placeholder.name.as_str()) {
            bound.push_str(&literal(value));
        }
        copied = placeholder.range.end;
    }
    bound.push_str(&text[copied..]);
    bound
}

/// A value as a SQL literal: a plain decimal (`42`, `-1.5`; no leading zeros, so codes such as
/// `007` stay text) is a number, anything else a string with `'` doubled. Negative numbers
/// are parenthesised so that `a -:n` cannot become the comment `a --1`.
pub fn literal(value: &str) -> String {
    if is_plain_number(value) {
        if value.starts_with('-') {
            format!("({value})")
        } else {
            value.to_string()
        }
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

fn is_plain_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let whole_ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (whole == "0" || !whole.starts_with('0'));
    let fraction_ok =
        fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    whole_ok && fraction_ok
}

fn saved_query_paths(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

impl QueryHeader {
    /// Read the header: the `--` comment lines before the first line of SQL.
    pub fn parse(text: &str) -> QueryHeader {
        #[derive(PartialEq)]
        enum Section {
            Description,
            Parameters,
            Columns,
        }
        let mut header = QueryHeader::default();
        let mut description = Vec::new();
        let mut section = Section::Description;
        // Indentation of the current section's entries: deeper lines continue an entry.
        let mut entry_indent: Option<usize> = None;

        let comment_lines = text
            .lines()
            .map(str::trim)
            .skip_while(|line| line.is_empty())
            .take_while(|line| line.starts_with("--"));
        for line in comment_lines {
            let body = line.trim_start_matches('-');
            let body = body.strip_prefix(' ').unwrap_or(body).trim_end();
            let heading = body.trim().to_ascii_lowercase();
            if heading == "parameters:" || heading == "params:" {
                section = Section::Parameters;
                entry_indent = None;
                continue;
            }
            if heading == "columns:" {
                section = Section::Columns;
                entry_indent = None;
                continue;
            }
            if section == Section::Description {
                description.push(body.trim().to_string());
                continue;
            }
            if body.trim().is_empty() {
                entry_indent = None;
                continue;
            }
            let indent = body.len() - body.trim_start().len();
            let entries = match section {
                Section::Parameters => &mut header.parameters,
                _ => &mut header.columns,
            };
            let continues = entry_indent.is_some_and(|first| indent > first);
            match (continues, entries.last_mut()) {
                (true, Some(last)) => {
                    last.description.push(' ');
                    last.description.push_str(body.trim());
                }
                _ => {
                    entry_indent = Some(indent);
                    let entry = body.trim();
                    let (name, rest) = entry.split_once(char::is_whitespace).unwrap_or((entry, ""));
                    entries.push(Documented {
                        name: name.trim_start_matches(':').to_string(),
                        description: rest.trim().to_string(),
                    });
                }
            }
        }
        while description.last().is_some_and(String::is_empty) {
            description.pop();
        }
        let mut lines = description.into_iter().skip_while(String::is_empty);
        header.title = lines.next().unwrap_or_default();
        header.description = lines
            .skip_while(String::is_empty)
            .collect::<Vec<_>>()
            .join("\n");
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "\
-- Rejected rows by reason for one input.
--
-- Counts the rows the ingest stage refused.
--
-- Parameters:
--   :input   the input kind, e.g. patients
--   :min     the fewest rows to show,
--            e.g. 1
-- Columns:
--   reason   why the rows were refused
--   rows     rejected rows
SELECT reason, count(*) AS rows FROM rejects
WHERE input = :input GROUP BY reason HAVING count(*) >= :min
";

    fn params(pairs: &[&str]) -> Vec<Parameter> {
        pairs
            .iter()
            .map(|p| p.parse().expect("a KEY=VALUE pair"))
            .collect()
    }

    #[test]
    fn header_documents_title_parameters_and_columns() {
        let header = QueryHeader::parse(SAVED);
        assert_eq!(header.title, "Rejected rows by reason for one input.");
        assert_eq!(
            header.description,
            "Counts the rows the ingest stage refused."
        );
        let names: Vec<&str> = header.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["input", "min"]);
        assert_eq!(
            header.parameters[1].description,
            "the fewest rows to show, e.g. 1"
        );
        assert_eq!(header.parameters[0].example(), Some("patients"));
        assert_eq!(header.parameters[1].example(), Some("1"));
        assert_eq!(header.columns.len(), 2);
        assert_eq!(header.columns[1].name, "rows");
    }

    #[test]
    fn values_bind_as_numbers_or_escaped_strings() {
        let query = SavedQuery::inline(SAVED);
        let prepared = query
            .prepare(&params(&["input=o'brien", "min=5"]))
            .expect("binds");
        assert!(
            prepared
                .sql
                .contains("WHERE input = 'o''brien' GROUP BY reason HAVING count(*) >= 5"),
            "{}",
            prepared.sql
        );
        assert_eq!(prepared.tables, ["rejects"]);
    }

    #[test]
    fn literals() {
        assert_eq!(literal("42"), "42");
        assert_eq!(literal("0.25"), "0.25");
        assert_eq!(literal("-1"), "(-1)");
        assert_eq!(literal("007"), "'007'");
        assert_eq!(literal("1e5"), "'1e5'");
        assert_eq!(literal("E01000001"), "'E01000001'");
        assert_eq!(literal("'; DROP TABLE x; --"), "'''; DROP TABLE x; --'");
        assert_eq!(literal(""), "''");
    }

    #[test]
    fn placeholder_text_inside_strings_and_comments_is_left_alone() {
        let query = SavedQuery::inline("SELECT ':a' AS s -- :a\nFROM t WHERE x = :a");
        let prepared = query.prepare(&params(&["a=1"])).expect("binds");
        assert_eq!(prepared.sql, "SELECT ':a' AS s -- :a\nFROM t WHERE x = 1");
    }

    #[test]
    fn missing_parameter_names_it_and_lists_the_documented_ones() {
        let err = SavedQuery::inline(SAVED)
            .prepare(&params(&["input=patients"]))
            .expect_err("min is missing");
        let message = err.to_string();
        assert!(message.starts_with("missing parameter `min`"), "{message}");
        assert!(
            message.contains(":input  the input kind, e.g. patients"),
            "{message}"
        );
    }

    #[test]
    fn unknown_parameter_suggests_the_closest() {
        let err = SavedQuery::inline(SAVED)
            .prepare(&params(&["inpt=patients", "min=1"]))
            .expect_err("inpt is unknown");
        let message = err.to_string();
        assert!(
            message.starts_with("unknown parameter `inpt`; did you mean `input`?"),
            "{message}"
        );
    }

    #[test]
    fn parameter_pairs_are_checked() {
        assert!("pcn_code".parse::<Parameter>().is_err());
        assert!("1x=2".parse::<Parameter>().is_err());
        let p: Parameter = ":pcn_code=U1=2".parse().expect("valid");
        assert_eq!((p.name.as_str(), p.value.as_str()), ("pcn_code", "U1=2"));
    }

    #[test]
    fn header_problems_find_undocumented_and_unused_parameters() {
        let query = SavedQuery::inline(
            "-- A question.\n-- Parameters:\n--   :unused  nothing\nSELECT * FROM t WHERE a = :b",
        );
        let problems = query.header_problems().expect("parses");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            SavedQuery::inline(SAVED)
                .header_problems()
                .expect("parses")
                .is_empty()
        );
    }
}
