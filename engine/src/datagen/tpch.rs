//! TPC-H data for a zone: the eight tables from the tpchgen crates, as
//! [`crate::datagen`] sources that it streams batch by batch into Parquet, NDJSON or Delta
//! (memory does not grow with the scale factor) and registers.
//!
//! ```no_run
//! # async fn demo(session: &strata_engine::Session) -> strata_engine::Result<()> {
//! use strata_engine::datagen::{GenFormat, Generation};
//! let generation = Generation {
//!     suite: "tpch",
//!     sf: 0.1,
//!     zone: "processed".into(),
//!     format: GenFormat::Parquet,
//!     partitioned: true,
//! };
//! generation
//!     .run(session, strata_engine::datagen::tpch::sources(0.1), std::sync::Arc::new(|_, _| {}))
//!     .await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

use crate::datagen::{Batches, Source};

/// The TPC-H tables, smallest first.
pub const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

/// The TPC-H tables at scale factor `sf`, `lineitem` and `orders` partitionable by the
/// year of their ship and order dates.
pub fn sources(sf: f64) -> Vec<Source> {
    TABLES
        .iter()
        .map(|table| {
            let (schema, year_of): (SchemaRef, _) = match *table {
                "region" => (RegionArrow::schema_ref(), None),
                "nation" => (NationArrow::schema_ref(), None),
                "supplier" => (SupplierArrow::schema_ref(), None),
                "customer" => (CustomerArrow::schema_ref(), None),
                "part" => (PartArrow::schema_ref(), None),
                "partsupp" => (PartSuppArrow::schema_ref(), None),
                "orders" => (OrderArrow::schema_ref(), Some("o_orderdate")),
                _ => (LineItemArrow::schema_ref(), Some("l_shipdate")),
            };
            let name: &'static str = table;
            Source {
                name,
                schema,
                batches: Arc::new(move || batches(name, sf)),
                year_of,
            }
        })
        .collect()
}

fn batches(table: &str, sf: f64) -> Batches {
    match table {
        "region" => Box::new(RegionArrow::new(RegionGenerator::new(sf, 1, 1))),
        "nation" => Box::new(NationArrow::new(NationGenerator::new(sf, 1, 1))),
        "supplier" => Box::new(SupplierArrow::new(SupplierGenerator::new(sf, 1, 1))),
        "customer" => Box::new(CustomerArrow::new(CustomerGenerator::new(sf, 1, 1))),
        "part" => Box::new(PartArrow::new(PartGenerator::new(sf, 1, 1))),
        "partsupp" => Box::new(PartSuppArrow::new(PartSuppGenerator::new(sf, 1, 1))),
        "orders" => Box::new(OrderArrow::new(OrderGenerator::new(sf, 1, 1))),
        _ => Box::new(LineItemArrow::new(LineItemGenerator::new(sf, 1, 1))),
    }
}
