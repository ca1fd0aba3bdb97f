//! A catalog entry as a DataFusion table: a `ListingTable` over the entry's location with the
//! format, partition columns and schema the catalog recorded, wrapped so that raw tables
//! refuse writes and partition filters prune folders whatever their spelling.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableProvider;
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_datasource::file_format::FileFormat;
use strata_catalog::{RAW_ZONE, TableEntry, TableFormat};

use crate::error::Error;
use crate::formats::ndjson::{JsonReadOptions, NdjsonFormat};
use crate::formats::parquet_sink::StrataParquetFormat;
use crate::providers::metrics::ScanCounters;

/// Table option: skip malformed JSON lines (and count them) instead of failing.
pub const OPT_SKIP_MALFORMED: &str = "skip_malformed";
/// Table option: the file name ending the table's data files have.
pub const OPT_FILE_EXTENSION: &str = "file_extension";
/// Table option: records read per file when inferring a JSON schema.
pub const OPT_INFER_RECORDS: &str = "schema_infer_max_records";
/// Table option: the order the rows of each data file are in, as `WITH ORDER` declared it
/// (`l_orderkey ASC NULLS LAST, …`). Scans report it, so DataFusion can aggregate and merge
/// without sorting; inserts sort their rows to keep it.
pub const OPT_SORT_ORDER: &str = "sort_order";

/// One column of a declared file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortColumn {
    pub name: String,
    pub asc: bool,
    pub nulls_first: bool,
}

impl SortColumn {
    /// As a DataFusion sort expression.
    pub fn to_sort(&self) -> datafusion::logical_expr::SortExpr {
        datafusion::logical_expr::ident(&self.name).sort(self.asc, self.nulls_first)
    }
}

impl std::fmt::Display for SortColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} NULLS {}",
            self.name,
            if self.asc { "ASC" } else { "DESC" },
            if self.nulls_first { "FIRST" } else { "LAST" }
        )
    }
}

/// The file order an entry declares (empty when it declares none).
pub fn sort_order(entry: &TableEntry) -> Result<Vec<SortColumn>, Error> {
    let Some(text) = entry.options.get(OPT_SORT_ORDER) else {
        return Ok(vec![]);
    };
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let words: Vec<String> = part
                .split_whitespace()
                .map(|w| w.to_ascii_uppercase())
                .collect();
            let name = part
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            let asc = !words.iter().any(|w| w == "DESC");
            // SQL's default: NULLS LAST for ASC, NULLS FIRST for DESC.
            let nulls_first = match words.iter().position(|w| w == "NULLS") {
                Some(i) => words.get(i + 1).is_some_and(|w| w == "FIRST"),
                None => !asc,
            };
            if name.is_empty() {
                return Err(Error::Unsupported(format!(
                    "{}: option {OPT_SORT_ORDER} '{text}' is not a list of columns",
                    entry.qualified_name()
                )));
            }
            Ok(SortColumn {
                name,
                asc,
                nulls_first,
            })
        })
        .collect()
}

/// Parses an arrow type name as the catalog stores it.
pub fn parse_type(name: &str) -> Result<DataType, Error> {
    name.parse::<DataType>().map_err(|e| {
        Error::Unsupported(format!("unknown column type '{name}' in the catalog: {e}"))
    })
}

/// The file schema recorded in an entry.
pub fn entry_schema(entry: &TableEntry) -> Result<Option<Schema>, Error> {
    entry
        .schema
        .as_ref()
        .map(|v| {
            serde_json::from_value::<Schema>(v.clone()).map_err(|e| {
                Error::Unsupported(format!(
                    "the schema recorded for {} cannot be read ({e}); run REFRESH TABLE {}",
                    entry.qualified_name(),
                    entry.qualified_name()
                ))
            })
        })
        .transpose()
}

/// Whether an option is set to a true value.
pub fn option_flag(entry: &TableEntry, key: &str) -> bool {
    entry
        .options
        .get(key)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

/// The DataFusion file format of an entry.
pub fn file_format(
    entry: &TableEntry,
    counters: &Arc<ScanCounters>,
) -> Result<Arc<dyn FileFormat>, Error> {
    file_format_named(entry, counters, &entry.qualified_name(), false)
}

/// The file format of an entry whose files errors name as `name`; `by_path` for files read
/// by path, whose errors suggest the read's options rather than the table's.
pub(crate) fn file_format_named(
    entry: &TableEntry,
    counters: &Arc<ScanCounters>,
    name: &str,
    by_path: bool,
) -> Result<Arc<dyn FileFormat>, Error> {
    let ext = entry
        .options
        .get(OPT_FILE_EXTENSION)
        .cloned()
        .unwrap_or_default();
    Ok(match entry.format {
        TableFormat::Json => Arc::new(NdjsonFormat::new(JsonReadOptions {
            table: name.to_string(),
            location: entry.location.clone(),
            skip_malformed: option_flag(entry, OPT_SKIP_MALFORMED),
            counters: Arc::clone(counters),
            by_path,
        })),
        TableFormat::Csv => {
            let mut format = CsvFormat::default().with_has_header(
                entry
                    .options
                    .get("has_header")
                    .is_none_or(|v| v.eq_ignore_ascii_case("true")),
            );
            if let Some(d) = entry.options.get("delimiter") {
                let d = match d.as_str() {
                    "\\t" | "tab" => b'\t',
                    other => *other.as_bytes().first().unwrap_or(&b','),
                };
                format = format.with_delimiter(d);
            }
            if ext.ends_with(".gz") {
                format = format.with_file_compression_type(FileCompressionType::GZIP);
            }
            Arc::new(format)
        }
        // Read as DataFusion reads Parquet; inserts write distinct counts.
        TableFormat::Parquet => Arc::new(StrataParquetFormat::new(ParquetFormat::default())),
        TableFormat::Delta => {
            return Err(Error::UnsupportedFormat {
                table: name.to_string(),
                format: entry.format.to_string(),
            });
        }
    })
}

/// The table behind a catalog entry.
#[derive(Debug)]
pub struct StrataTable {
    entry: TableEntry,
    /// How errors name the table: `zone.name`, or for files read by path, the read
    /// (`'data/*.csv'`, `read_csv('…')`).
    name: String,
    /// Files read by path, not a registered table.
    by_path: bool,
    inner: Arc<ListingTable>,
    /// Partition columns that are not strings: their `col = value` filters must not become
    /// listing prefixes, because `month = 3` would list `month=3/` and miss `month=03/`.
    typed_partitions: HashSet<String>,
}

impl StrataTable {
    /// Builds the table from its entry. The entry must carry a schema.
    pub fn try_new(entry: TableEntry, counters: &Arc<ScanCounters>) -> Result<Self, Error> {
        let name = entry.qualified_name();
        Self::build(entry, counters, name, false)
    }

    /// The table of files read by path: `entry` is never committed, and errors name the
    /// files as `label`, the way the query read them.
    pub(crate) fn for_path_read(
        entry: TableEntry,
        counters: &Arc<ScanCounters>,
        label: String,
    ) -> Result<Self, Error> {
        Self::build(entry, counters, label, true)
    }

    fn build(
        entry: TableEntry,
        counters: &Arc<ScanCounters>,
        name: String,
        by_path: bool,
    ) -> Result<Self, Error> {
        let file_schema = entry_schema(&entry)?.ok_or_else(|| {
            Error::Unsupported(format!(
                "{} has no recorded schema; run REFRESH TABLE {}",
                entry.qualified_name(),
                entry.qualified_name()
            ))
        })?;
        let format = file_format_named(&entry, counters, &name, by_path)?;
        let partition_cols = entry
            .partition_columns
            .iter()
            .map(|p| Ok((p.name.clone(), parse_type(&p.data_type)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let typed_partitions = partition_cols
            .iter()
            .filter(|(_, t)| *t != DataType::Utf8)
            .map(|(n, _)| n.clone())
            .collect();
        let ext = entry
            .options
            .get(OPT_FILE_EXTENSION)
            .cloned()
            .unwrap_or_default();
        let order: Vec<_> = sort_order(&entry)?
            .iter()
            .map(SortColumn::to_sort)
            .collect();
        let options = ListingOptions::new(format)
            .with_file_extension(ext)
            .with_table_partition_cols(partition_cols)
            .with_file_sort_order(if order.is_empty() {
                vec![]
            } else {
                vec![order]
            });
        // A table that lists its files is read through a view of exactly those files.
        let urls = if by_path {
            path_read_urls(&entry)?
        } else {
            vec![crate::providers::fileset::listing_url(&entry)?]
        };
        let urls = urls
            .into_iter()
            .map(ListingTableUrl::parse)
            .collect::<Result<Vec<_>>>()?;
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(Arc::new(file_schema));
        let inner = ListingTable::try_new(config)?;
        Ok(Self {
            entry,
            name,
            by_path,
            inner: Arc::new(inner),
            typed_partitions,
        })
    }

    /// The catalog entry this table was built from.
    pub fn entry(&self) -> &TableEntry {
        &self.entry
    }

    /// How errors name the table: `zone.name`, or the path read.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the table is files read by path rather than a registered table.
    pub fn is_path_read(&self) -> bool {
        self.by_path
    }

    fn rewrite_filter(&self, expr: &Expr) -> Result<Expr> {
        if self.typed_partitions.is_empty() {
            return Ok(expr.clone());
        }
        expr.clone()
            .transform(|e| {
                if let Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::Eq,
                    right,
                }) = &e
                {
                    let (col, lit) = match (left.as_ref(), right.as_ref()) {
                        (Expr::Column(c), l @ Expr::Literal(..)) => (c, l),
                        (l @ Expr::Literal(..), Expr::Column(c)) => (c, l),
                        _ => return Ok(Transformed::no(e)),
                    };
                    if self.typed_partitions.contains(&col.name) {
                        let in_list = Expr::Column(col.clone()).in_list(vec![lit.clone()], false);
                        return Ok(Transformed::yes(in_list));
                    }
                }
                Ok(Transformed::no(e))
            })
            .map(|t| t.data)
    }
}

#[async_trait]
impl TableProvider for StrataTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let filters = filters
            .iter()
            .map(|f| self.rewrite_filter(f))
            .collect::<Result<Vec<_>>>()?;
        self.inner.scan(state, projection, &filters, limit).await
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.by_path {
            return Err(DataFusionError::External(Box::new(Error::Unsupported(
                format!(
                    "{} reads files by path and takes no INSERT; write a table with CREATE TABLE … AS, or files with COPY … TO",
                    self.name
                ),
            ))));
        }
        if self.entry.zone == RAW_ZONE {
            return Err(DataFusionError::External(Box::new(Error::ReadOnlyZone {
                table: self.entry.qualified_name(),
                statement: "INSERT".into(),
            })));
        }
        self.inner.insert_into(state, input, insert_op).await
    }
}

/// The URLs a read by path lists. DataFusion reads no files in folders below a table's
/// location other than partition folders; files read by path from several folders that are
/// not partitions (`read_csv(['a/x.csv', 'b/y.csv'])`) are read as one location per folder.
fn path_read_urls(entry: &TableEntry) -> Result<Vec<String>, Error> {
    let files = entry.files.as_deref().unwrap_or_default();
    if !entry.partition_columns.is_empty() || files.iter().all(|f| !f.path.contains('/')) {
        return Ok(vec![crate::providers::fileset::listing_url(entry)?]);
    }
    let mut folders: std::collections::BTreeMap<&str, Vec<strata_catalog::DataFile>> =
        std::collections::BTreeMap::new();
    for file in files {
        let (folder, name) = file.path.rsplit_once('/').unwrap_or(("", &file.path));
        folders
            .entry(folder)
            .or_default()
            .push(strata_catalog::DataFile {
                path: name.to_string(),
                size: file.size,
            });
    }
    folders
        .into_iter()
        .map(|(folder, files)| {
            let mut part = entry.clone();
            if !folder.is_empty() {
                part.location = format!("{}{folder}/", entry.location);
            }
            part.files = Some(files);
            crate::providers::fileset::listing_url(&part)
        })
        .collect()
}

/// A field list for the partition columns of an entry, for DESCRIBE-like output.
pub fn partition_fields(entry: &TableEntry) -> Result<Vec<Field>, Error> {
    entry
        .partition_columns
        .iter()
        .map(|p| Ok(Field::new(&p.name, parse_type(&p.data_type)?, true)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_sort(plan: &Arc<dyn ExecutionPlan>) -> bool {
        plan.name() == "SortExec" || plan.children().into_iter().any(has_sort)
    }

    /// `WITH ORDER` is recorded, read back, reported by scans (no sort above them) and kept
    /// by inserts; a column the table lacks is refused by name.
    #[tokio::test]
    async fn declared_file_order_is_used_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().join("wh").to_string_lossy().to_string();
        let session = crate::Session::open(&location).await.expect("session");
        session
            .sql("CREATE TABLE processed.src AS SELECT value AS id, value % 3 AS g FROM generate_series(1, 500) ORDER BY value DESC")
            .await
            .expect("source table");
        let folder = format!("{location}/processed/src/");
        let err = session
            .sql(&format!(
                "CREATE EXTERNAL TABLE processed.t STORED AS PARQUET WITH ORDER (nope ASC) LOCATION '{folder}'"
            ))
            .await
            .expect_err("unknown column");
        assert!(
            err.to_string()
                .contains("processed.t has no column nope to order by; its columns are id, g"),
            "{err}"
        );
        session
            .sql(&format!(
                "CREATE EXTERNAL TABLE processed.t STORED AS PARQUET WITH ORDER (id DESC) LOCATION '{folder}'"
            ))
            .await
            .expect("ordered table");
        let entry = session
            .catalog()
            .snapshot()
            .table("processed", "t")
            .expect("entry")
            .clone();
        assert_eq!(
            sort_order(&entry).expect("order"),
            [SortColumn {
                name: "id".into(),
                asc: false,
                nulls_first: true
            }]
        );
        let sorted = |sql: &'static str| {
            let session = &session;
            async move {
                let df = session.plan_query(sql).await.expect("plan");
                has_sort(&df.create_physical_plan().await.expect("physical plan"))
            }
        };
        // The scan's files are declared sorted: asking for that order needs no sort.
        assert!(!sorted("SELECT id FROM processed.t ORDER BY id DESC").await);
        // The opposite order still needs one.
        assert!(sorted("SELECT id FROM processed.t ORDER BY id").await);
        // An insert writes its rows in the declared order.
        session
            .sql("INSERT INTO processed.t SELECT value AS id, 0 AS g FROM generate_series(1000, 1100)")
            .await
            .expect("insert");
        let batches = session
            .sql("SELECT count(*) AS n, max(id) AS top FROM processed.t")
            .await
            .expect("count");
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string();
        assert!(text.contains("| 601 | 1100 |"), "{text}");
        let mut files = 0;
        for file in std::fs::read_dir(dir.path().join("wh/processed/src")).expect("folder") {
            let path = file.expect("file").path();
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let file = std::fs::File::open(path).expect("open");
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .expect("parquet")
                    .build()
                    .expect("reader");
            let mut last = i64::MAX;
            for batch in reader {
                let batch = batch.expect("batch");
                let ids = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(
                    batch.column_by_name("id").expect("id").as_ref(),
                );
                for id in ids.values().iter() {
                    assert!(*id <= last, "{id} after {last}");
                    last = *id;
                }
            }
            files += 1;
        }
        assert!(files >= 2, "the insert added a file");
    }
}
