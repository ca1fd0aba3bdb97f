//! TPC-H data generation into a zone: the eight tables from the tpchgen crates, streamed
//! batch by batch into Parquet files (memory does not grow with the scale factor) and
//! registered as tables.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

use crate::error::{Error, Result};
use crate::session::Session;

/// The TPC-H tables, smallest first.
pub const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

/// Called with a table's name and the rows written so far.
pub type Progress = Arc<dyn Fn(&str, u64) + Send + Sync>;

type Batches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>> + Send>;

fn batches(table: &str, sf: f64) -> Option<Batches> {
    Some(match table {
        "region" => Box::new(RegionArrow::new(RegionGenerator::new(sf, 1, 1))),
        "nation" => Box::new(NationArrow::new(NationGenerator::new(sf, 1, 1))),
        "supplier" => Box::new(SupplierArrow::new(SupplierGenerator::new(sf, 1, 1))),
        "customer" => Box::new(CustomerArrow::new(CustomerGenerator::new(sf, 1, 1))),
        "part" => Box::new(PartArrow::new(PartGenerator::new(sf, 1, 1))),
        "partsupp" => Box::new(PartSuppArrow::new(PartSuppGenerator::new(sf, 1, 1))),
        "orders" => Box::new(OrderArrow::new(OrderGenerator::new(sf, 1, 1))),
        "lineitem" => Box::new(LineItemArrow::new(LineItemGenerator::new(sf, 1, 1))),
        _ => return None,
    })
}

/// Generates the TPC-H tables at scale factor `sf` into `zone` as Parquet and registers them
/// (replacing earlier ones of the same name). `progress` is called with the table and the
/// rows written so far. Returns the rows of each table.
pub async fn generate(
    session: &Session,
    sf: f64,
    zone: &str,
    progress: Progress,
) -> Result<Vec<(String, u64)>> {
    if !(0.001..=1000.0).contains(&sf) {
        return Err(Error::Unsupported(format!(
            "scale factor {sf} is out of range; use 0.01 to 100"
        )));
    }
    if zone == strata_catalog::RAW_ZONE {
        return Err(Error::ReadOnlyZone {
            table: format!("{zone}.lineitem"),
            statement: "tpch gen".into(),
        });
    }
    let root = session.catalog().snapshot().zone(zone)?.root.clone();
    let root_dir = url::Url::parse(&root)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| Error::Unsupported(format!("tpch gen writes to local zones; {zone} is at {root}")))?;
    let mut written = vec![];
    for table in TABLES {
        let dir = root_dir.join(table);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::Unsupported(format!("cannot clear {}: {e}", dir.display())))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Unsupported(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("part-0.parquet");
        let name = table.to_string();
        let report = Arc::clone(&progress);
        let rows = tokio::task::spawn_blocking(move || -> Result<u64> {
            let Some(mut source) = batches(&name, sf) else {
                return Ok(0);
            };
            let Some(first) = source.next().transpose()? else {
                return Ok(0);
            };
            let file = std::fs::File::create(&path)
                .map_err(|e| Error::Unsupported(format!("cannot write {}: {e}", path.display())))?;
            // Small row groups keep memory flat whatever the scale factor.
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_max_row_group_row_count(Some(128 * 1024))
                .build();
            let parquet_err = |e: parquet::errors::ParquetError| {
                Error::Unsupported(format!("writing {}: {e}", path.display()))
            };
            let mut writer = ArrowWriter::try_new(file, first.schema(), Some(props)).map_err(parquet_err)?;
            let mut rows = 0u64;
            for batch in std::iter::once(Ok(first)).chain(source) {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch).map_err(parquet_err)?;
                report(&name, rows);
            }
            writer.close().map_err(parquet_err)?;
            Ok(rows)
        })
        .await
        .map_err(|e| Error::Unsupported(format!("generating {table}: {e}")))??;
        session
            .sql(&format!(
                "CREATE OR REPLACE EXTERNAL TABLE {zone}.{table} STORED AS PARQUET LOCATION '{}'",
                dir.display()
            ))
            .await?;
        written.push((table.to_string(), rows));
    }
    Ok(written)
}
