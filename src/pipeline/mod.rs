//! The pipeline stages, in order: `ingest → enrich → attribute → segment → measure → gradient
//! → publish` (DESIGN §3).
//!
//! Each stage takes and returns typed tables (polars `LazyFrame`s) plus settings; only publish
//! runs the plan. The readers themselves live in `crate::ingest`; this module's `ingest` stage
//! reads every input a config names.

pub mod ingest;
