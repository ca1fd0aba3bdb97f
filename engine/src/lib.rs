//! strata's SQL engine: a DataFusion session wired to a warehouse's zone catalog.
//!
//! Zones (`raw`, `processed`, `curated`) are SQL schemas; their tables are the catalog's
//! entries, read by DataFusion's listing tables with strata's own NDJSON reader. The
//! statements DataFusion does not run itself (SHOW ZONES, USE, REFRESH, the catalog side of
//! CREATE EXTERNAL TABLE and DROP TABLE) run here too, so the REPL, scripts and servers share
//! one implementation.
//!
//! ```no_run
//! # async fn demo() -> strata_engine::Result<()> {
//! let session = strata_engine::Session::open("/tmp/my-warehouse").await?;
//! session
//!     .sql("CREATE EXTERNAL TABLE raw.sales STORED AS JSON LOCATION '/data/sales/'")
//!     .await?;
//! let batches = session
//!     .sql("SELECT year, month, sum(amount) FROM raw.sales GROUP BY 1, 2")
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod check;
mod conjunction;
mod ctas;
mod cte;
pub mod datagen;
mod decimal_arith;
pub mod delta;
mod distinct_counts;
mod dml;
mod dynamic_pushdown;
mod error;
mod fast_exprs;
mod filter_order;
mod filter_selectivity;
pub mod infer;
mod join_maps;
mod join_order;
mod join_sides;
mod key_bitmap;
mod key_filters;
mod like_segments;
pub mod lineage;
mod maintenance;
pub mod metrics;
mod ndjson;
mod not_null_keys;
mod overwrite;
pub mod pipeline;
mod register;
mod row_filter_switch;
mod schema;
mod session;
pub mod split;
mod spread_files;
pub mod ssb;
mod staging;
pub mod stores;
pub mod table;
#[cfg(test)]
mod test_support;
pub mod tpch;

pub use error::{Error, Result};
pub use metrics::{RequestCounts, ScanCounters, ScanSummary};
pub use session::{CATALOG_NAME, Output, Session};
pub use strata_catalog as catalog;
