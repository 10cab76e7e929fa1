//! Every column name the pipeline uses, in one place, in the field's words.
//!
//! Stages refer to these constants rather than to string literals, so a newcomer can follow a
//! column from the input contract to the published tables.
