//! strata's catalog: the zones of a warehouse and the tables registered in them, kept in the
//! warehouse itself as a log of numbered JSON commits (see `docs/catalog-format.md`).
//!
//! No query engine lives here: the catalog knows names, formats, locations and schemas as
//! data, and leaves reading the tables to `strata-engine`.
//!
//! ```no_run
//! # async fn demo() -> strata_catalog::Result<()> {
//! use strata_catalog::{Action, Catalog, TableEntry, TableFormat, Warehouse};
//!
//! let catalog = Catalog::open(Warehouse::open("/tmp/my-warehouse")?).await?;
//! let location = catalog.snapshot().zone("raw")?.root.clone() + "sales/";
//! let entry = TableEntry::new("raw", "sales", TableFormat::Json, &location);
//! catalog
//!     .commit("CREATE EXTERNAL TABLE raw.sales", |_state| {
//!         Ok(vec![Action::PutTable(Box::new(entry.clone()))])
//!     })
//!     .await?;
//! assert!(catalog.snapshot().table("raw", "sales").is_ok());
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod log;
mod model;
mod storage;
mod warehouse;

pub use config::{CONFIG_ENV, CONFIG_FILE_NAME, CacheOptions, Config, parse_size};
pub use error::{Error, Result};
pub use log::{CATALOG_DIR, CHECKPOINT_INTERVAL, Catalog, Commit, FORMAT_VERSION};
pub use model::{
    Action, CatalogState, DEFAULT_ZONE, DEFAULT_ZONES, DataFile, Materialized, PartitionColumn,
    RAW_ZONE, SourceTable, TableEntry, TableFormat, ZoneEntry, validate_name,
};
pub use storage::{S3Options, Secret, explain_storage_error, mask_credentials};
pub use warehouse::{Warehouse, resolve_url};
