//! The one integration-test binary: runs the real `healthgap` binary in temp dirs.

mod common;
mod stats;
