//! File formats: strata's NDJSON reader, schema inference over raw files, and the Parquet
//! writer that records distinct counts, with the format and sink every Parquet write of a
//! statement goes through.

pub(crate) mod distinct_counts;
pub mod infer;
pub(crate) mod ndjson;
pub(crate) mod parquet_errors;
pub(crate) mod parquet_sink;
