//! The one integration-test binary: runs the real `healthgap` binary in temp dirs.
//! One module per subcommand or concern.

mod bundle;
mod charts;
mod fuzz;
mod harness;
mod hostile;
mod ingest;
mod measure;
mod pipeline;
mod query;
mod reliability;
mod report;
mod run;
mod saved_queries;
mod stats;
mod synth;
mod validate;
