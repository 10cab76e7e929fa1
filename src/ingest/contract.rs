//! The declared shape of an input: its columns, their aliases, types and checks.
//!
//! A contract is plain data (`const`s in the reader modules), so the whole data contract of
//! DESIGN §2 can be read in one place per input kind. [`super::validate`] turns a contract into
//! polars expressions; [`super::source`] matches file headers against it.

/// What a column holds, and so how its text is parsed and checked.
#[derive(Debug, Clone, Copy)]
pub enum ColumnType {
    /// Free text, trimmed (names, addresses). Never rejected.
    Text,
    /// An identifier: trimmed, upper-cased, and matched against a pattern.
    Code(CodePattern),
    /// A whole number (thousands separators allowed) within `[min, max]`.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A real number (thousands separators allowed) within `[min, max]`.
    Float {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// A calendar date in one of the formats NHS and ONS files use.
    Date,
    /// A yes/no flag (`1/0`, `Y/N`, `true/false`, `yes/no`).
    Bool,
    /// One of a fixed set of codes, after mapping synonyms (e.g. sex `1` → `M`).
    Enum(&'static EnumDomain),
    /// A code from a vocabulary kept as data elsewhere (e.g. [`crate::conditions`]).
    Vocabulary(&'static Vocabulary),
}

/// A vocabulary of codes defined in data, with the spellings that map onto each code.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary {
    /// What the value is, in the reason text: "condition code".
    pub what: &'static str,
    /// What was expected, in words.
    pub expected: &'static str,
    /// `(accepted spelling upper-cased, canonical code)`.
    pub spellings: fn() -> Vec<(String, &'static str)>,
}

/// A pattern that codes of one kind must match, and how to describe it to a person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodePattern {
    /// What the code is, in the reason text: "LSOA code".
    pub what: &'static str,
    /// The regular expression (anchored) that a valid, upper-cased code matches.
    pub regex: &'static str,
    /// What was expected, in words: "E01 or W01 followed by 6 digits".
    pub expected: &'static str,
}

/// The allowed values of an enumerated column, with the synonyms mapped onto them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnumDomain {
    /// What the value is, in the reason text: "sex code".
    pub what: &'static str,
    /// `(accepted spelling, canonical value)`; matched after trimming and upper-casing.
    pub mapping: &'static [(&'static str, &'static str)],
    /// The canonical values, in words, for the reason text.
    pub expected: &'static str,
}

/// One column of an input contract.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// The canonical name (snake_case, in the field's words); also accepted as a header.
    pub name: &'static str,
    /// Other header spellings, official publication headers included. Matching ignores case
    /// and punctuation (see [`normalise_header`]).
    pub aliases: &'static [&'static str],
    /// What the column holds.
    pub ty: ColumnType,
    /// The column must be present in the file.
    pub required: bool,
    /// A present column may have empty cells (otherwise an empty cell rejects the row).
    pub nullable: bool,
}

impl ColumnSpec {
    /// A required column that must be filled in every row.
    pub const fn required(
        name: &'static str,
        aliases: &'static [&'static str],
        ty: ColumnType,
    ) -> Self {
        ColumnSpec {
            name,
            aliases,
            ty,
            required: true,
            nullable: false,
        }
    }

    /// An optional column whose cells may be empty.
    pub const fn optional(
        name: &'static str,
        aliases: &'static [&'static str],
        ty: ColumnType,
    ) -> Self {
        ColumnSpec {
            name,
            aliases,
            ty,
            required: false,
            nullable: true,
        }
    }

    /// The same column, but a present column may have empty cells.
    pub const fn allow_empty(mut self) -> Self {
        self.nullable = true;
        self
    }
}

/// How the header row of a file relates to the contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeaderMode {
    /// The first row names the columns; they are matched against names and aliases.
    Named,
    /// The file has no header row (e.g. ODS `epraccur`): columns are taken by position
    /// (0-based), and other positions are ignored.
    Positional(&'static [(usize, &'static str)]),
}

/// What happens to columns the contract does not name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExtraColumns {
    /// Ignored (publication files carry many columns the pipeline does not use).
    Drop,
    /// Kept as trimmed text under their normalised header name (e.g. local flags on a patient
    /// list, so segment rules can refer to them).
    KeepAsText,
}

/// The declared schema of one input kind.
#[derive(Debug, Clone, Copy)]
pub struct InputContract {
    /// The input kind's name as used in config and messages: `iod2019`, `patients`.
    pub name: &'static str,
    /// What the input is, for `--help` and messages.
    pub description: &'static str,
    /// The columns the pipeline uses.
    pub columns: &'static [ColumnSpec],
    /// Groups of columns of which at least one must be present (e.g. `age` or `date_of_birth`).
    pub one_of: &'static [&'static [&'static str]],
    /// Columns whose combined value must be unique across the file (rows sharing it are
    /// all rejected: none of them can be trusted).
    pub unique_key: &'static [&'static str],
    /// How headers are read.
    pub header: HeaderMode,
    /// What happens to unnamed columns.
    pub extra: ExtraColumns,
}

impl InputContract {
    /// The spec of a column by canonical name.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Normalise a header for matching: drop a BOM, lower-case, and turn every run of
/// non-alphanumeric characters into one `_` (trimmed at both ends).
///
/// So `"LSOA code (2011)"`, `"lsoa_code_2011"` and `"LSOA CODE 2011"` all match.
pub fn normalise_header(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let mut pending_sep = false;
    for ch in header.trim_start_matches('\u{feff}').chars() {
        if ch == '%' {
            // "65OV%" (a share) must not match "65OV" (a count).
            out.push_str(if out.is_empty() { "pct" } else { "_pct" });
            pending_sep = true;
        } else if ch.is_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.extend(ch.to_lowercase());
        } else {
            pending_sep = true;
        }
    }
    out
}

/// Values that publications use for "no value" (suppressed, not available, not applicable).
/// They are read as empty cells, never as data and never as a reject.
pub const MISSING_MARKERS: &[&str] = &["NA", "N/A", "NULL", "*", "..", ".", "-", ":", "X", "C"];

// ---------------------------------------------------------------------------------------------
// Shared patterns and domains used by several readers.

/// An LSOA code of England (`E01`) or Wales (`W01`), 2011 or 2021 vintage.
pub const LSOA_CODE: CodePattern = CodePattern {
    what: "LSOA code",
    regex: r"^[EW]01[0-9]{6}$",
    expected: "E01 or W01 followed by 6 digits",
};

/// An English LSOA code.
pub const LSOA_CODE_ENGLAND: CodePattern = CodePattern {
    what: "English LSOA code",
    regex: r"^E01[0-9]{6}$",
    expected: "E01 followed by 6 digits",
};

/// A Welsh LSOA code.
pub const LSOA_CODE_WALES: CodePattern = CodePattern {
    what: "Welsh LSOA code",
    regex: r"^W01[0-9]{6}$",
    expected: "W01 followed by 6 digits",
};

/// An ODS GP practice code: a letter and five digits (`A81001`).
pub const PRACTICE_CODE: CodePattern = CodePattern {
    what: "practice code",
    regex: r"^[A-Z][0-9]{5}$",
    expected: "an ODS practice code: a letter and 5 digits, e.g. A81001",
};

/// Any ODS organisation code (prescribing cost centres include non-GP settings).
pub const ODS_CODE: CodePattern = CodePattern {
    what: "ODS code",
    regex: r"^[A-Z0-9]{3,8}$",
    expected: "3 to 8 letters or digits",
};

/// A PCN code (`U` and five digits).
pub const PCN_CODE: CodePattern = CodePattern {
    what: "PCN code",
    regex: r"^U[0-9]{5}$",
    expected: "U followed by 5 digits, e.g. U89141",
};

/// A PCN code, or NHS Digital's placeholder `U` for a practice outside any PCN.
pub const PCN_CODE_OR_UNALLOCATED: CodePattern = CodePattern {
    what: "PCN code",
    regex: r"^U([0-9]{5})?$",
    expected: "U followed by 5 digits, or U alone for unallocated practices",
};

/// An area code in a Fingertips export: an ODS code (practice, PCN) or an ONS code.
pub const AREA_CODE: CodePattern = CodePattern {
    what: "area code",
    regex: r"^[A-Z0-9]{3,9}$",
    expected: "an ODS or ONS code of 3 to 9 letters or digits",
};

/// A sub-ICB location (former CCG) ODS code: `16C`, `00L`, or a 5-character code.
pub const SUB_ICB_CODE: CodePattern = CodePattern {
    what: "sub-ICB location code",
    regex: r"^[0-9A-Z]{3}([0-9A-Z]{2})?$",
    expected: "3 or 5 letters or digits, e.g. 16C",
};

/// An ICB (or former STP) ODS code: `Q` and two characters (`QHM`).
pub const ICB_ODS_CODE: CodePattern = CodePattern {
    what: "ICB code",
    regex: r"^Q[0-9A-Z]{2}$",
    expected: "Q followed by 2 letters or digits, e.g. QHM",
};

/// An ONS statistical code (`E54000050`).
pub const ONS_CODE: CodePattern = CodePattern {
    what: "ONS code",
    regex: r"^[EWSNK][0-9]{8}$",
    expected: "a letter and 8 digits, e.g. E54000050",
};

/// Sex as NHS extracts code it, mapped to M/F/I/U (and ALL for aggregate publications).
pub const SEX: EnumDomain = EnumDomain {
    what: "sex code",
    mapping: &[
        ("M", "M"),
        ("MALE", "M"),
        ("1", "M"),
        ("F", "F"),
        ("FEMALE", "F"),
        ("2", "F"),
        ("I", "I"),
        ("INDETERMINATE", "I"),
        ("9", "I"),
        ("U", "U"),
        ("UNKNOWN", "U"),
        ("NOT KNOWN", "U"),
        ("0", "U"),
    ],
    expected: "M, F, I or U (or 1, 2, 9, 0)",
};

/// Sex in NHS Digital's aggregate publications: MALE, FEMALE, or ALL (persons).
pub const SEX_AGGREGATE: EnumDomain = EnumDomain {
    what: "sex",
    mapping: &[
        ("M", "M"),
        ("MALE", "M"),
        ("F", "F"),
        ("FEMALE", "F"),
        ("ALL", "ALL"),
        ("PERSONS", "ALL"),
        ("P", "ALL"),
    ],
    expected: "MALE, FEMALE or ALL",
};

/// NHS ethnic category codes (Data Dictionary, 2001 census categories), `Z` = not stated,
/// `99` = not known.
pub const ETHNIC_CATEGORY: EnumDomain = EnumDomain {
    what: "ethnic category code",
    mapping: &[
        ("A", "A"),
        ("B", "B"),
        ("C", "C"),
        ("D", "D"),
        ("E", "E"),
        ("F", "F"),
        ("G", "G"),
        ("H", "H"),
        ("J", "J"),
        ("K", "K"),
        ("L", "L"),
        ("M", "M"),
        ("N", "N"),
        ("P", "P"),
        ("R", "R"),
        ("S", "S"),
        ("Z", "Z"),
        ("99", "99"),
    ],
    expected: "an NHS ethnic category code A-H, J-N, P, R, S, Z or 99",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_header_official_shapes() {
        assert_eq!(normalise_header("LSOA code (2011)"), "lsoa_code_2011");
        assert_eq!(
            normalise_header("\u{feff}LSOA code (2011)"),
            "lsoa_code_2011"
        );
        assert_eq!(normalise_header("  PRACTICE_CODE "), "practice_code");
        assert_eq!(
            normalise_header("Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)"),
            "index_of_multiple_deprivation_imd_rank_where_1_is_most_deprived"
        );
        assert_eq!(
            normalise_header("Lower CI 95.0 limit"),
            "lower_ci_95_0_limit"
        );
        assert_eq!(normalise_header("65OV%"), "65ov_pct");
        assert_eq!(normalise_header("65OV"), "65ov");
    }
}
