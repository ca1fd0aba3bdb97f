//! A query that fails while decoding a file (a Parquet page that does not decompress, a
//! column chunk cut short, a CSV line that does not parse) gets an error naming the file:
//! DataFusion reports only what went wrong, so on that error the files of the Parquet and
//! CSV tables the query read are read once more, one by one, until the damaged one is found.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use strata_catalog::TableFormat;
use url::Url;

use crate::error::Error;
use crate::providers::stores::url_path;
use crate::providers::table::StrataTable;
use crate::session::Session;

/// At most this many files are read again to find a damaged one.
const MAX_FILES_CHECKED: usize = 10_000;

/// A table a query reads: `zone.name`, its location, the store holding it and how its files
/// are read.
#[derive(Clone)]
pub(crate) struct ParquetTable {
    name: String,
    location: Url,
    store: Arc<dyn ObjectStore>,
    /// For a CSV table: its file schema, whether files have a header, the delimiter.
    csv: Option<(SchemaRef, bool, u8)>,
}

/// The Parquet tables a plan reads.
pub(crate) fn parquet_tables(session: &Session, plan: &LogicalPlan) -> Vec<ParquetTable> {
    let mut tables: Vec<ParquetTable> = Vec::new();
    let snapshot = session.catalog().snapshot();
    let _ = plan.apply_with_subqueries(|node| {
        let LogicalPlan::TableScan(scan) = node else {
            return Ok(TreeNodeRecursion::Continue);
        };
        // Files read by path: their entry is the provider's, and only its files are checked.
        let by_path = datafusion::datasource::source_as_provider(&scan.source)
            .ok()
            .and_then(|p| {
                let table = p.downcast_ref::<StrataTable>()?;
                let url = crate::providers::fileset::listing_url(table.entry()).ok()?;
                table
                    .is_path_read()
                    .then(|| (table.entry().clone(), table.name().to_string(), url))
            });
        let registered = || {
            let (zone, name) = session.resolve(&scan.table_name).ok()?;
            let entry = snapshot.table(&zone, &name).ok()?.clone();
            let name = entry.qualified_name();
            let location = entry.location.clone();
            Some((entry, name, location))
        };
        if let Some((entry, table_name, location)) = by_path.or_else(registered)
            && matches!(entry.format, TableFormat::Parquet | TableFormat::Csv)
            && let Ok(location) = Url::parse(&location)
            && let Ok(store) = session.store_for(&location)
            && !tables.iter().any(|t| t.name == table_name)
        {
            let entry = &entry;
            let csv = match entry.format {
                TableFormat::Csv => {
                    let Ok(Some(schema)) = crate::providers::table::entry_schema(entry) else {
                        return Ok(TreeNodeRecursion::Continue);
                    };
                    let header = entry
                        .options
                        .get("has_header")
                        .is_none_or(|v| v.eq_ignore_ascii_case("true"));
                    let delimiter = match entry.options.get("delimiter").map(String::as_str) {
                        Some("\\t" | "tab") => b'\t',
                        Some(d) => *d.as_bytes().first().unwrap_or(&b','),
                        None => b',',
                    };
                    Some((Arc::new(schema), header, delimiter))
                }
                _ => None,
            };
            tables.push(ParquetTable {
                name: table_name,
                location,
                store,
                csv,
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    tables
}

/// The stream with Parquet decoding errors replaced by one naming the damaged file.
pub(crate) fn name_damaged_files(
    tables: Vec<ParquetTable>,
    stream: SendableRecordBatchStream,
) -> SendableRecordBatchStream {
    if tables.is_empty() {
        return stream;
    }
    let schema = stream.schema();
    let stream = stream.then(move |item| {
        let tables = tables.clone();
        async move {
            match item {
                Err(e) if crate::error::is_decode_error(&e) => Err(explain(&tables, e).await),
                other => other,
            }
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// An error that ended a query before its rows streamed (as a cluster reports a task's
/// error once the query has run), with a decoding error replaced by one naming the file.
pub(crate) async fn name_damaged_file(tables: &[ParquetTable], e: Error) -> Error {
    match e {
        Error::DataFusion(e) if !tables.is_empty() && crate::error::is_decode_error(&e) => {
            Error::DataFusion(explain(tables, e).await)
        }
        other => other,
    }
}

async fn explain(tables: &[ParquetTable], e: DataFusionError) -> DataFusionError {
    let detail = match &e {
        DataFusionError::External(inner) => inner
            .downcast_ref::<crate::error::RemoteError>()
            .and_then(|r| r.undecodable().map(str::to_string)),
        _ => None,
    }
    .unwrap_or_else(|| e.to_string());
    let detail = detail.trim_start_matches("Parquet error: ").to_string();
    for table in tables {
        if let Some(path) = damaged_file(table).await {
            let reason = if table.csv.is_some() {
                format!(
                    "a line of table {} does not parse ({detail}); fix or remove that line, or the file",
                    table.name
                )
            } else {
                format!(
                    "a Parquet file of table {} is damaged and cannot be decoded ({detail}); remove or replace it",
                    table.name
                )
            };
            return DataFusionError::External(Box::new(Error::BadFile {
                path,
                line: None,
                reason,
            }));
        }
    }
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    DataFusionError::External(Box::new(Error::Unsupported(format!(
        "a file of {} cannot be decoded ({detail}); a file may have been damaged or replaced while the query ran",
        names.join(", ")
    ))))
}

/// The first file under `location` that does not read whole, if any.
async fn damaged_file(table: &ParquetTable) -> Option<String> {
    let store = &table.store;
    let prefix = url_path(&table.location).ok()?;
    let files: Vec<_> = store
        .list(Some(&prefix))
        .try_filter(|meta| {
            let name = meta.location.filename().unwrap_or_default();
            futures::future::ready(!name.starts_with('_') && !name.starts_with('.'))
        })
        .take(MAX_FILES_CHECKED)
        .try_collect()
        .await
        .ok()?;
    for meta in files {
        let Ok(bytes) = store.get(&meta.location).await else {
            continue;
        };
        let Ok(bytes) = bytes.bytes().await else {
            continue;
        };
        let whole = || -> Result<(), Box<dyn std::error::Error>> {
            match &table.csv {
                Some((schema, header, delimiter)) => {
                    if meta.location.as_ref().ends_with(".gz") {
                        return Ok(());
                    }
                    let reader = arrow::csv::ReaderBuilder::new(Arc::clone(schema))
                        .with_header(*header)
                        .with_delimiter(*delimiter)
                        .build(std::io::Cursor::new(bytes))?;
                    for batch in reader {
                        batch?;
                    }
                }
                None => {
                    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                        batch?;
                    }
                }
            }
            Ok(())
        };
        if whole().is_err() {
            return Some(crate::formats::parquet_errors::shown_path(
                store.as_ref(),
                meta.location.as_ref(),
            ));
        }
    }
    None
}
