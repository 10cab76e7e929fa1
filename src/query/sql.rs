//! Reading a query before polars runs it: syntax errors with their position, the read-only
//! rule, the tables it names and its `:name` placeholders.
//!
//! polars-sql parses with `sqlparser` too, but keeps its AST to itself, so the query is parsed
//! here once more with the same dialect and options (the same crate version: no extra build).
//! Parsing the text as written (placeholders included) means a syntax error points at the line
//! the analyst wrote, not at a rewritten one. Binding values is in `saved.rs`; running in
//! `catalog.rs`.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Query, Select, SetExpr, Statement, TableFactor, Value, ValueWithSpan, Visit, Visitor,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError, ParserOptions};
use sqlparser::tokenizer::Location;

use super::QueryError;

/// A query that parsed, is one read-only statement, and knows its tables and placeholders.
#[derive(Debug, Clone)]
pub struct ParsedQuery {
    text: String,
    tables: Vec<String>,
    placeholders: Vec<Placeholder>,
}

/// One `:name` placeholder in a query's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The name, without the colon.
    pub name: String,
    /// Byte range of `:name` in the text.
    pub range: std::ops::Range<usize>,
}

impl ParsedQuery {
    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Tables the query reads, in order of first mention (CTE names and table functions such
    /// as `read_parquet(..)` excluded).
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Every placeholder occurrence, in text order.
    pub fn placeholders(&self) -> &[Placeholder] {
        &self.placeholders
    }

    /// The distinct placeholder names, in order of first use.
    pub fn placeholder_names(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.placeholders
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| seen.insert(*name))
            .collect()
    }
}

/// A syntax error with its position in the query text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The parser's message, without its position suffix.
    pub message: String,
    /// 1-based line and column (in characters), when the parser gave one or the error is at
    /// the end of the text.
    pub position: Option<(usize, usize)>,
    /// The offending line of the query.
    pub line_text: Option<String>,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.position, &self.line_text) {
            (Some((line, column)), Some(text)) => {
                write!(
                    f,
                    "syntax error at line {line}, column {column}: {}",
                    self.message
                )?;
                let number = line.to_string();
                // Tabs become one space so the caret lines up with the column the parser counts.
                let shown: String = text
                    .chars()
                    .map(|c| if c == '\t' { ' ' } else { c })
                    .collect();
                write!(f, "\n  {number} | {shown}")?;
                write!(
                    f,
                    "\n  {} | {}^",
                    " ".repeat(number.len()),
                    " ".repeat(column.saturating_sub(1))
                )
            }
            _ => write!(f, "syntax error: {}", self.message),
        }
    }
}

/// Parse `text` as one read-only query.
///
/// Accepted: a query (`SELECT`, `WITH … SELECT`, `VALUES`, set operations) and `EXPLAIN` of
/// one. Refused before anything runs: every other statement (`CREATE`, `DROP`, `INSERT`,
/// `UPDATE`, `DELETE`, `COPY`, `TRUNCATE`, `ALTER`, `SET`, …), statements nested in a query
/// (`WITH d AS (DELETE …)`), `SELECT … INTO`, and more than one statement.
///
/// # Errors
/// [`QueryError::Syntax`], [`QueryError::ReadOnly`], [`QueryError::MultipleStatements`],
/// [`QueryError::Empty`], or [`QueryError::BadParameter`] for a placeholder other than
/// `:name` (`?`, `$1`, `@x`).
pub fn parse(text: &str) -> Result<ParsedQuery, QueryError> {
    let statements = Parser::new(&GenericDialect)
        // The options polars-sql parses with, so that what passes here also parses there.
        .with_options(ParserOptions {
            trailing_commas: true,
            ..Default::default()
        })
        .try_with_sql(text)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|err| QueryError::Syntax(syntax_error(text, err)))?;

    // A write anywhere is the more important message, so it is checked before the count.
    for statement in &statements {
        read_only_query(statement)?;
    }
    let statement = match statements.as_slice() {
        [] => return Err(QueryError::Empty),
        [one] => one,
        many => {
            return Err(QueryError::MultipleStatements { count: many.len() });
        }
    };

    let mut collector = Collector::default();
    if let ControlFlow::Break(err) = statement.visit(&mut collector) {
        return Err(err);
    }
    let placeholders = collector
        .placeholders
        .into_iter()
        .map(|(name, start, end)| {
            Ok(Placeholder {
                name,
                range: byte_offset(text, start).ok_or_else(|| bad_span(text, start))?
                    ..byte_offset(text, end).ok_or_else(|| bad_span(text, end))?,
            })
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let tables = collector
        .tables
        .into_iter()
        .filter(|t| !collector.ctes.contains(t))
        .fold(Vec::new(), |mut tables, table| {
            if !tables.contains(&table) {
                tables.push(table);
            }
            tables
        });
    Ok(ParsedQuery {
        text: text.to_string(),
        tables,
        placeholders,
    })
}

/// The statement, or the statement an `EXPLAIN` wraps, must be a query.
fn read_only_query(statement: &Statement) -> Result<&Query, QueryError> {
    match statement {
        Statement::Query(query) => Ok(query),
        Statement::Explain { statement, .. } => match statement.as_ref() {
            Statement::Query(query) => Ok(query),
            other => Err(refused(other)),
        },
        other => Err(refused(other)),
    }
}

fn refused(statement: &Statement) -> QueryError {
    QueryError::ReadOnly {
        kind: statement_kind(statement),
    }
}

/// `INSERT`, `CREATE TABLE`, … from the statement's variant name (`CreateTable`): sqlparser has
/// no name accessor, and its variants are named after the SQL keywords.
fn statement_kind(statement: &Statement) -> String {
    let debug = format!("{statement:?}");
    let variant: String = debug
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let mut kind = String::new();
    for (i, c) in variant.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            kind.push(' ');
        }
        kind.push(c.to_ascii_uppercase());
    }
    kind
}

/// Walks the statement once: tables, CTE names, placeholders, and anything that writes.
#[derive(Default)]
struct Collector {
    tables: Vec<String>,
    ctes: BTreeSet<String>,
    /// (name, start, end) in parser locations.
    placeholders: Vec<(String, Location, Location)>,
    depth: usize,
}

impl Visitor for Collector {
    type Break = QueryError;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<QueryError> {
        // The top statement (a query or EXPLAIN of one) was checked already; any statement
        // inside it (`WITH d AS (DELETE … RETURNING *)`, `SetExpr::Insert`) is a write.
        self.depth += 1;
        if self.depth > 1 && !matches!(statement, Statement::Query(_)) {
            return ControlFlow::Break(refused(statement));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _statement: &Statement) -> ControlFlow<QueryError> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<QueryError> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.clone());
            }
        }
        if let SetExpr::Insert(statement)
        | SetExpr::Update(statement)
        | SetExpr::Delete(statement)
        | SetExpr::Merge(statement) = query.body.as_ref()
        {
            return ControlFlow::Break(refused(statement));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<QueryError> {
        if select.into.is_some() {
            return ControlFlow::Break(QueryError::ReadOnly {
                kind: "SELECT … INTO".to_string(),
            });
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<QueryError> {
        // A table with arguments is a table function (`read_parquet('…')`), not a run table.
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            // polars looks tables up by the first part of the name only.
            if let Some(ident) = name.0.first().and_then(|part| part.as_ident()) {
                self.tables.push(ident.value.clone());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<QueryError> {
        if let Value::Placeholder(text) = &value.value {
            match text.strip_prefix(':').filter(|name| is_identifier(name)) {
                Some(name) => {
                    self.placeholders
                        .push((name.to_string(), value.span.start, value.span.end))
                }
                None => {
                    return ControlFlow::Break(QueryError::BadParameter(format!(
                        "placeholder `{text}` is not supported: name parameters like \
                         `:pcn_code` (a colon and a name of letters, digits and `_`)"
                    )));
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// A parameter or placeholder name: a letter or `_`, then letters, digits or `_`.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The byte offset of a parser location (1-based line, 1-based column in characters; lines
/// end at `\n`, as the tokenizer counts them).
fn byte_offset(text: &str, location: Location) -> Option<usize> {
    let line_index = usize::try_from(location.line).ok()?.checked_sub(1)?;
    let column_index = usize::try_from(location.column).ok()?.checked_sub(1)?;
    let mut line_start = 0;
    for (i, line) in text.split('\n').enumerate() {
        if i == line_index {
            return line
                .char_indices()
                .map(|(offset, _)| offset)
                .chain(std::iter::once(line.len()))
                .nth(column_index)
                .map(|offset| line_start + offset);
        }
        line_start += line.len() + 1;
    }
    None
}

fn bad_span(text: &str, location: Location) -> QueryError {
    // Only reachable if the parser's locations stopped matching its input.
    QueryError::Invalid {
        message: format!(
            "internal: placeholder position {location} is outside the query ({} bytes)",
            text.len()
        ),
    }
}

/// A [`SyntaxError`] from sqlparser's message, which ends in `at Line: L, Column: C` when it
/// knows the position; an error at the end of the text (`found: EOF`) points after its last
/// character.
fn syntax_error(text: &str, err: ParserError) -> SyntaxError {
    let raw = match err {
        ParserError::TokenizerError(message) | ParserError::ParserError(message) => message,
        ParserError::RecursionLimitExceeded => "the query nests too deeply".to_string(),
    };
    let (message, position) = match raw.rsplit_once(" at Line: ") {
        Some((message, tail)) => {
            let position = tail.split_once(", Column: ").and_then(|(line, column)| {
                Some((line.trim().parse().ok()?, column.trim().parse().ok()?))
            });
            (message.to_string(), position)
        }
        None => (raw.clone(), None),
    };
    let position = position.or_else(|| raw.ends_with("found: EOF").then(|| end_of(text)));
    let line_text = position.and_then(|(line, _)| {
        text.split('\n')
            .nth(line.checked_sub(1)?)
            .map(|l| l.trim_end_matches('\r').to_string())
    });
    SyntaxError {
        message,
        position,
        line_text,
    }
}

/// Line and column just after the last non-blank character of `text`.
fn end_of(text: &str) -> (usize, usize) {
    let trimmed = text.trim_end();
    let line = trimmed.split('\n').count().max(1);
    let column = trimmed
        .split('\n')
        .next_back()
        .unwrap_or("")
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(sql: &str) -> String {
        match parse(sql) {
            Err(QueryError::ReadOnly { kind }) => kind,
            other => panic!("expected a read-only refusal for {sql}, got {other:?}"),
        }
    }

    #[test]
    fn select_lists_tables_without_ctes_or_table_functions() {
        let parsed = parse(
            "WITH w AS (SELECT * FROM footprint_weights) \
             SELECT * FROM w JOIN segments s ON true \
             JOIN (SELECT * FROM indicators) i ON true, read_parquet('x.parquet')",
        )
        .expect("parses");
        assert_eq!(
            parsed.tables(),
            ["footprint_weights", "segments", "indicators"]
        );
    }

    #[test]
    fn placeholders_have_their_byte_ranges() {
        let text = "SELECT 'a:b', x::int\nFROM t WHERE é = :pcn_code AND y IN (:year, :pcn_code)";
        let parsed = parse(text).expect("parses");
        let found: Vec<&str> = parsed
            .placeholders()
            .iter()
            .map(|p| &text[p.range.clone()])
            .collect();
        assert_eq!(found, [":pcn_code", ":year", ":pcn_code"]);
        assert_eq!(parsed.placeholder_names(), ["pcn_code", "year"]);
    }

    #[test]
    fn write_statements_are_refused_by_kind() {
        assert_eq!(refusal("CREATE TABLE x AS SELECT 1"), "CREATE TABLE");
        assert_eq!(refusal("DROP TABLE segments"), "DROP");
        assert_eq!(refusal("INSERT INTO segments VALUES (1)"), "INSERT");
        assert_eq!(refusal("UPDATE segments SET a = 1"), "UPDATE");
        assert_eq!(refusal("DELETE FROM segments"), "DELETE");
        assert_eq!(refusal("TRUNCATE segments"), "TRUNCATE");
        assert_eq!(
            refusal("ALTER TABLE segments ADD COLUMN b INT"),
            "ALTER TABLE"
        );
        assert_eq!(refusal("COPY segments TO 'x.csv'"), "COPY");
        assert_eq!(refusal("EXPLAIN DELETE FROM segments"), "DELETE");
        assert_eq!(refusal("SELECT * INTO copy FROM segments"), "SELECT … INTO");
        assert_eq!(refusal("SELECT 1; DROP TABLE segments"), "DROP");
    }

    #[test]
    fn explain_of_a_query_is_allowed() {
        let parsed = parse("EXPLAIN SELECT * FROM segments").expect("parses");
        assert_eq!(parsed.tables(), ["segments"]);
    }

    #[test]
    fn two_statements_are_refused_and_a_trailing_semicolon_is_not() {
        assert!(matches!(
            parse("SELECT 1; SELECT 2"),
            Err(QueryError::MultipleStatements { count: 2 })
        ));
        assert!(parse("SELECT 1;\n").is_ok());
        assert!(matches!(parse("-- nothing\n"), Err(QueryError::Empty)));
    }

    #[test]
    fn syntax_error_has_line_column_and_caret() {
        let Err(QueryError::Syntax(err)) = parse("SELECT a\nFROM t WHERE a = = 1") else {
            panic!("expected a syntax error");
        };
        assert_eq!(err.position, Some((2, 18)));
        assert_eq!(
            err.to_string(),
            "syntax error at line 2, column 18: Expected: an expression, found: =\n  \
             2 | FROM t WHERE a = = 1\n    |                  ^"
        );
    }

    #[test]
    fn syntax_error_at_the_end_points_after_the_last_character() {
        let Err(QueryError::Syntax(err)) = parse("SELECT * FROM t WHERE a >\n\n") else {
            panic!("expected a syntax error");
        };
        assert_eq!(err.position, Some((1, 26)));
    }

    #[test]
    fn positional_placeholders_are_refused() {
        assert!(matches!(
            parse("SELECT * FROM t WHERE a = ?"),
            Err(QueryError::BadParameter(_))
        ));
        assert!(matches!(
            parse("SELECT * FROM t WHERE a = $1"),
            Err(QueryError::BadParameter(_))
        ));
    }
}
