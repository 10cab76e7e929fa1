//! healthgap: health-inequality evidence for Primary Care Networks.
//!
//! The crate mirrors the pipeline in `DESIGN.md`:
//! `ingest → enrich → attribute → segment → measure → gradient → publish`.
//!
//! - [`ingest`] reads every input kind with a declared schema, header aliases and rejects.
//! - [`stats`] holds the pure statistics (no polars, no I/O), checked against the national
//!   reference methods (PHEindicatormethods).
//! - [`query`] runs read-only SQL over a run folder's Parquet tables.
//! - [`cli`] is thin: it turns flags into settings and calls the library.
//!
//! Dependencies point one way: `cli` → `pipeline`/`ingest` → `stats`.

#![deny(clippy::unwrap_used)]

pub mod charts;
pub mod cli;
pub mod conditions;
pub mod config;
pub mod demo;
pub mod error;
pub mod geometry;
pub mod indicators;
pub mod ingest;
pub mod lazy;
pub mod output;
pub mod pipeline;
pub mod query;
pub mod report;
pub mod schema;
pub mod stats;
pub mod synth;
