//! `SHOW ZONES`: the zones of the warehouse, their roots and how many tables each holds.

use std::sync::Arc;

use arrow::array::{StringArray, UInt64Array};

use crate::session::{Output, Session, table_output};

pub(crate) fn zones(session: &Session) -> Output {
    let snapshot = session.catalog().snapshot();
    let names = snapshot.zone_names();
    let roots: Vec<String> = names
        .iter()
        .map(|z| {
            snapshot
                .zones
                .get(z)
                .map(|e| strata_catalog::mask_credentials(&e.root))
                .unwrap_or_default()
        })
        .collect();
    let counts: Vec<u64> = names
        .iter()
        .map(|z| snapshot.table_names(z).len() as u64)
        .collect();
    table_output(vec![
        ("zone", Arc::new(StringArray::from(names))),
        ("root", Arc::new(StringArray::from(roots))),
        ("tables", Arc::new(UInt64Array::from(counts))),
    ])
}
