//! The one integration-test binary: runs the real `healthgap` binary in temp dirs.
//! One module per subcommand or concern.

mod bundle;
mod charts;
mod harness;
mod ingest;
mod measure;
mod pipeline;
mod query;
mod report;
mod run;
mod stats;
mod synth;
mod validate;
