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

type Batches =
    Box<dyn Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>> + Send>;

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
/// (replacing earlier ones of the same name). With `partitioned`, `lineitem` and `orders` are
/// written into `year=YYYY/` folders by the year of their ship and order dates. `progress` is called with the table and the
/// rows written so far. Returns the rows of each table.
pub async fn generate(
    session: &Session,
    sf: f64,
    zone: &str,
    partitioned: bool,
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
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "tpch gen writes to local zones; {zone} is at {root}"
            ))
        })?;
    let mut written = vec![];
    for table in TABLES {
        let dir = root_dir.join(table);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::Unsupported(format!("cannot clear {}: {e}", dir.display())))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Unsupported(format!("cannot create {}: {e}", dir.display())))?;
        let name = table.to_string();
        let target = dir.clone();
        let report = Arc::clone(&progress);
        let partition_by = if partitioned {
            year_column(table)
        } else {
            None
        };
        let rows = tokio::task::spawn_blocking(move || -> Result<u64> {
            let Some(source) = batches(&name, sf) else {
                return Ok(0);
            };
            let mut writers = Writers::new(target);
            let mut rows = 0u64;
            for batch in source {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                match partition_by {
                    None => writers.write(None, &batch)?,
                    Some(column) => {
                        let years = batch_years(&batch, column)?;
                        for (year, part) in years {
                            writers.write(Some(year), &part)?;
                        }
                    }
                }
                report(&name, rows);
            }
            writers.close()?;
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

/// The date column whose year partitions a table, for the tables worth partitioning.
fn year_column(table: &str) -> Option<&'static str> {
    match table {
        "lineitem" => Some("l_shipdate"),
        "orders" => Some("o_orderdate"),
        _ => None,
    }
}

/// Splits a batch by the year of a date column.
fn batch_years(batch: &RecordBatch, column: &str) -> Result<Vec<(i32, RecordBatch)>> {
    use arrow::array::AsArray;
    use arrow::compute::kernels::cmp::eq;
    use arrow::datatypes::Int32Type;
    let dates = batch
        .column_by_name(column)
        .ok_or_else(|| Error::Unsupported(format!("no column {column}")))?;
    let years = arrow::compute::kernels::temporal::date_part(
        dates.as_ref(),
        arrow::compute::kernels::temporal::DatePart::Year,
    )?;
    let years = years.as_primitive::<Int32Type>();
    let mut distinct: Vec<i32> = years.iter().flatten().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut out = vec![];
    for year in distinct {
        let mask = eq(years, &arrow::array::Int32Array::new_scalar(year))?;
        out.push((year, arrow::compute::filter_record_batch(batch, &mask)?));
    }
    Ok(out)
}

/// One Parquet writer per partition folder (or one for the whole table).
struct Writers {
    dir: std::path::PathBuf,
    open: std::collections::BTreeMap<Option<i32>, ArrowWriter<std::fs::File>>,
}

impl Writers {
    fn new(dir: std::path::PathBuf) -> Self {
        Self {
            dir,
            open: std::collections::BTreeMap::new(),
        }
    }

    fn write(&mut self, year: Option<i32>, batch: &RecordBatch) -> Result<()> {
        if !self.open.contains_key(&year) {
            let folder = match year {
                Some(y) => self.dir.join(format!("year={y}")),
                None => self.dir.clone(),
            };
            std::fs::create_dir_all(&folder).map_err(|e| {
                Error::Unsupported(format!("cannot create {}: {e}", folder.display()))
            })?;
            let path = folder.join("part-0.parquet");
            let file = std::fs::File::create(&path)
                .map_err(|e| Error::Unsupported(format!("cannot write {}: {e}", path.display())))?;
            // Small row groups keep memory flat whatever the scale factor.
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_max_row_group_row_count(Some(128 * 1024))
                .build();
            let writer =
                ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet_error)?;
            self.open.insert(year, writer);
        }
        if let Some(writer) = self.open.get_mut(&year) {
            writer.write(batch).map_err(parquet_error)?;
        }
        Ok(())
    }

    fn close(self) -> Result<()> {
        for (_, writer) in self.open {
            writer.close().map_err(parquet_error)?;
        }
        Ok(())
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> Error {
    Error::Unsupported(format!("writing Parquet: {e}"))
}
