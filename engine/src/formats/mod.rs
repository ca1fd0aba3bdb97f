//! File formats: strata's NDJSON reader, schema inference over raw files, and the Parquet
//! writer that records distinct counts.

pub(crate) mod distinct_counts;
pub mod infer;
pub(crate) mod ndjson;
