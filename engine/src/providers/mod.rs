//! What queries read: the zones as SQL schemas, listing tables over files, Delta tables,
//! the object stores by bucket (with their request counters) and staged writes.

pub mod delta;
pub(crate) mod fileset;
pub mod metrics;
pub(crate) mod schema;
pub(crate) mod staging;
pub mod stores;
pub mod table;
