//! strata's SQL engine: a DataFusion session wired to a warehouse's zone catalog.
//!
//! How a statement flows:
//!
//! 1. **text → statement**: [`sql::parse`] reads SQL into [`sql::Statement`]s, DataFusion's
//!    own and strata's (CREATE TABLE … AS, Delta DML, CHECK, OPTIMIZE, SHOW LINEAGE, …).
//!    Front ends (the CLI, the Flight SQL server, pipelines) dispatch on that enum, never on
//!    text.
//! 2. **statement → plan**: [`Session::run`] hands queries and DDL to DataFusion's planner
//!    and strata's statements to their handlers in `statements/`, one file per family.
//! 3. **plan → stream**: DataFusion's physical planner and optimizer, with strata's rules
//!    ([`optimizer::RULES`], each switchable as `strata.optimizer.<rule>`), over the tables
//!    of `providers/` (zones as schemas, listing tables with the formats of `formats/`,
//!    Delta), yield record batches as an [`Output`].
//! 4. **stream → commit**: writes land their data files first; the catalog commit (or the
//!    Delta log commit) comes last and makes them visible, with the SQL that made them.
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

mod arithmetic;
mod array_agg;
pub mod datagen;
mod error;
pub mod failpoint;
pub mod formats;
#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod limits_tests;
pub mod optimizer;
pub mod pipeline;
mod policy;
pub mod providers;
pub mod remote;
mod session;
pub mod sql;
mod statements;
#[cfg(test)]
mod test_support;
pub mod types;

pub use error::{Error, Result};
pub use policy::{PathPolicy, Policy};
pub use providers::metrics::{RequestCounts, ScanCounters, ScanSummary};
pub use session::{CATALOG_NAME, Output, Session};
pub use statements::lineage;
pub use strata_catalog as catalog;
pub use types::{sql_type_name, sql_type_name_of};
