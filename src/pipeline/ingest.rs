//! Stage 1, ingest: read every input the config names, with its reject limit.
//!
//! The readers (contracts, checks, rejects) are in `crate::ingest`; this stage only applies
//! them to a [`Config`] and gathers the results, so `validate` and `run` read inputs the same
//! way.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::Config;
use crate::ingest::{
    Footprints, IngestReport, InputError, InputKind, ReadOptions, Table, read_footprints,
    read_table_into,
};
use crate::output::Printer;
use crate::pipeline::partition::PartSplit;
use polars::prelude::{LazyFrame, PolarsResult, UnionArgs, concat_lf_diagonal};

/// One input that cannot be used, and why.
pub struct InputFailure {
    /// The input's name (`patients`, or `footprints.icb`).
    pub input: String,
    /// The file.
    pub file: PathBuf,
    /// What is wrong.
    pub error: InputError,
    /// The table, when the file could be read but failed its reject limit (its report and
    /// rejects say why).
    pub table: Option<Table>,
}

/// Every input of a config, read and checked.
pub struct Ingested {
    /// Tabular inputs that passed: one table per file (most kinds have one file).
    pub tables: BTreeMap<InputKind, Vec<Table>>,
    /// Footprint polygon files that passed, by footprint kind.
    pub footprints: BTreeMap<String, Footprints>,
    /// Inputs that failed.
    pub failures: Vec<InputFailure>,
}

impl Ingested {
    /// The accepted rows of one input kind (files of the same kind stacked, columns matched by
    /// name), or `None` when the config does not name it.
    pub fn frame(&self, kind: InputKind) -> Option<LazyFrame> {
        let tables = self.tables.get(&kind)?;
        stacked(tables.iter().map(|t| t.frame.clone()).collect())
            .ok()
            .flatten()
    }

    /// Rows accepted from the files of one input kind (0 when the config does not name it).
    pub fn rows_accepted(&self, kind: InputKind) -> u64 {
        self.tables.get(&kind).map_or(0, |tables| {
            tables.iter().map(|t| t.report.rows_accepted).sum()
        })
    }

    /// Every passed table, in config order.
    pub fn all_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values().flatten()
    }

    /// Reports of every input that could be read (passed or not), in config order.
    pub fn reports(&self) -> Vec<&IngestReport> {
        let mut reports: Vec<&IngestReport> = self.all_tables().map(|t| &t.report).collect();
        reports.extend(self.footprints.values().map(|f| &f.report));
        reports.extend(
            self.failures
                .iter()
                .filter_map(|f| f.table.as_ref().map(|t| &t.report)),
        );
        reports
    }
}

/// The files of one input kind as one table: stacked in the order given, columns matched by
/// name (a column one file lacks is null in its rows); `None` for no files. The patient parts
/// stack each part's files the same way.
///
/// # Errors
/// If the files' columns cannot be matched (one name with two types).
pub fn stacked(files: Vec<LazyFrame>) -> PolarsResult<Option<LazyFrame>> {
    match <[LazyFrame; 1]>::try_from(files) {
        Ok([one]) => Ok(Some(one)),
        Err(files) if files.is_empty() => Ok(None),
        Err(many) => concat_lf_diagonal(many, UnionArgs::default()).map(Some),
    }
}

/// The rows of the config's registered list (every patients file), as read before any is
/// refused; 0 when there is none or a file cannot be opened (ingest then says why).
pub fn patient_rows(config: &Config) -> u64 {
    config.inputs.get(&InputKind::Patients).map_or(0, |source| {
        source
            .paths
            .iter()
            .map(|path| {
                crate::ingest::source::count_rows(
                    path,
                    source.format,
                    InputKind::Patients.contract(),
                )
                .unwrap_or(0)
            })
            .sum()
    })
}

/// Read every input of the config. Failures are collected, not returned early, so a user sees
/// every problem at once.
///
/// With `split`, the patient-keyed inputs' accepted rows are also written into their parts as
/// they are checked (`partition::PartSplit`).
pub fn ingest(config: &Config, printer: &Printer, mut split: Option<&mut PartSplit>) -> Ingested {
    let options = ReadOptions {
        format: None,
        extract_date: Some(config.run.extract_date),
    };
    let mut tables = BTreeMap::new();
    let mut footprints = BTreeMap::new();
    let mut failures = Vec::new();
    let kinds: Vec<InputKind> = InputKind::ALL
        .into_iter()
        .filter(|k| config.inputs.contains_key(k))
        .collect();
    for kind in kinds {
        let Some(source) = config.inputs.get(&kind) else {
            continue;
        };
        for path in &source.paths {
            let spinner = printer.spinner(&format!("reading {kind}"));
            let options = ReadOptions {
                format: source.format,
                ..options.clone()
            };
            let accepted = split
                .as_deref_mut()
                .filter(|_| kind.is_patient_keyed())
                .map(|split| split.accepted_rows(kind));
            let result = read_table_into(kind, path, &options, accepted.as_ref());
            spinner.finish_and_clear();
            match result {
                Ok(table) => match table.enforce_reject_limit(config.reject_limit(kind)) {
                    Ok(()) => tables.entry(kind).or_insert_with(Vec::new).push(table),
                    Err(error) => failures.push(InputFailure {
                        input: kind.name().to_string(),
                        file: path.clone(),
                        error,
                        table: Some(table),
                    }),
                },
                Err(error) => failures.push(InputFailure {
                    input: kind.name().to_string(),
                    file: path.clone(),
                    error,
                    table: None,
                }),
            }
        }
    }
    for source in &config.footprints {
        let name = format!("footprints.{}", source.kind);
        match read_footprints(
            &source.path,
            source.code_property.as_deref(),
            source.name_property.as_deref(),
        ) {
            Ok(mut polygons) => {
                polygons.report.input = name;
                footprints.insert(source.kind.clone(), polygons);
            }
            Err(error) => failures.push(InputFailure {
                input: name,
                file: source.path.clone(),
                error,
                table: None,
            }),
        }
    }
    Ingested {
        tables,
        footprints,
        failures,
    }
}
