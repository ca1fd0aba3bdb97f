//! Integration tests of the catalog log on a real local folder.

mod concurrency;
mod log;
mod portable;

use strata_catalog::{Action, TableEntry, TableFormat};

pub fn put(zone: &str, name: &str) -> Action {
    let location = format!("file:///data/{zone}/{name}/");
    Action::PutTable(Box::new(TableEntry::new(
        zone,
        name,
        TableFormat::Json,
        &location,
    )))
}
