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

pub mod datagen;
mod error;
pub mod formats;
pub mod optimizer;
pub mod pipeline;
pub mod providers;
mod session;
pub mod sql;
mod statements;
#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
pub use providers::metrics::{RequestCounts, ScanCounters, ScanSummary};
pub use session::{CATALOG_NAME, Output, Session};
pub use statements::lineage;
pub use strata_catalog as catalog;
