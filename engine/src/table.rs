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
use crate::metrics::ScanCounters;
use crate::ndjson::{JsonReadOptions, NdjsonFormat};

/// Table option: skip malformed JSON lines (and count them) instead of failing.
pub const OPT_SKIP_MALFORMED: &str = "skip_malformed";
/// Table option: the file name ending the table's data files have.
pub const OPT_FILE_EXTENSION: &str = "file_extension";
/// Table option: records read per file when inferring a JSON schema.
pub const OPT_INFER_RECORDS: &str = "schema_infer_max_records";

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
    let ext = entry
        .options
        .get(OPT_FILE_EXTENSION)
        .cloned()
        .unwrap_or_default();
    Ok(match entry.format {
        TableFormat::Json => Arc::new(NdjsonFormat::new(JsonReadOptions {
            table: entry.qualified_name(),
            location: entry.location.clone(),
            skip_malformed: option_flag(entry, OPT_SKIP_MALFORMED),
            counters: Arc::clone(counters),
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
        TableFormat::Parquet => Arc::new(ParquetFormat::default()),
        TableFormat::Delta => {
            return Err(Error::UnsupportedFormat {
                table: entry.qualified_name(),
                format: entry.format.to_string(),
            });
        }
    })
}

/// The table behind a catalog entry.
#[derive(Debug)]
pub struct StrataTable {
    entry: TableEntry,
    inner: Arc<ListingTable>,
    /// Partition columns that are not strings: their `col = value` filters must not become
    /// listing prefixes, because `month = 3` would list `month=3/` and miss `month=03/`.
    typed_partitions: HashSet<String>,
}

impl StrataTable {
    /// Builds the table from its entry. The entry must carry a schema.
    pub fn try_new(entry: TableEntry, counters: &Arc<ScanCounters>) -> Result<Self, Error> {
        let file_schema = entry_schema(&entry)?.ok_or_else(|| {
            Error::Unsupported(format!(
                "{} has no recorded schema; run REFRESH TABLE {}",
                entry.qualified_name(),
                entry.qualified_name()
            ))
        })?;
        let format = file_format(&entry, counters)?;
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
        let options = ListingOptions::new(format)
            .with_file_extension(ext)
            .with_table_partition_cols(partition_cols);
        let url = ListingTableUrl::parse(&entry.location)?;
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(Arc::new(file_schema));
        let inner = ListingTable::try_new(config)?;
        Ok(Self {
            entry,
            inner: Arc::new(inner),
            typed_partitions,
        })
    }

    /// The catalog entry this table was built from.
    pub fn entry(&self) -> &TableEntry {
        &self.entry
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
        if self.entry.zone == RAW_ZONE {
            return Err(DataFusionError::External(Box::new(Error::ReadOnlyZone {
                table: self.entry.qualified_name(),
                statement: "INSERT".into(),
            })));
        }
        self.inner.insert_into(state, input, insert_op).await
    }
}

/// A field list for the partition columns of an entry, for DESCRIBE-like output.
pub fn partition_fields(entry: &TableEntry) -> Result<Vec<Field>, Error> {
    entry
        .partition_columns
        .iter()
        .map(|p| Ok(Field::new(&p.name, parse_type(&p.data_type)?, true)))
        .collect()
}
