//! What queries read: the zones as SQL schemas, listing tables over files, Delta tables,
//! the object stores by bucket (with their request counters), staged writes, and files read
//! by path.

pub mod delta;
pub(crate) mod delta_parquet;
pub(crate) mod fileset;
pub mod metrics;
pub mod paths;
pub(crate) mod schema;
pub(crate) mod staging;
pub mod stores;
pub mod table;
