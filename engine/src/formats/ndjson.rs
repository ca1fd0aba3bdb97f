//! Newline-delimited JSON as strata reads it: one file at a time, gzip by file name,
//! numbers and booleans readable into string columns (so a field widened to string holds
//! every value), and malformed lines either reported with their file and line number or
//! skipped and counted, as the table's `skip_malformed` option says.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::json::ReaderBuilder;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use datafusion_datasource::file::FileSource;
use datafusion_datasource::file_compression_type::FileCompressionType;
use datafusion_datasource::file_format::FileFormat;
use datafusion_datasource::file_scan_config::FileScanConfig;
use datafusion_datasource::file_stream::{FileOpenFuture, FileOpener};
use datafusion_datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion_datasource::source::DataSourceExec;
use datafusion_datasource::{PartitionedFile, TableSchema};
use futures::StreamExt;
use object_store::{ObjectMeta, ObjectStore};

use crate::error::Error;
use crate::providers::metrics::ScanCounters;

/// How one JSON table is read.
#[derive(Debug, Clone)]
pub struct JsonReadOptions {
    /// `zone.name`, for error messages.
    pub table: String,
    /// The table's location URL, to show file paths as users know them.
    pub location: String,
    /// Skip (and count) malformed lines instead of failing the query.
    pub skip_malformed: bool,
    pub counters: Arc<ScanCounters>,
}

/// The [`FileFormat`] of strata's JSON tables.
#[derive(Debug)]
pub struct NdjsonFormat {
    options: Arc<JsonReadOptions>,
}

impl NdjsonFormat {
    pub fn new(options: JsonReadOptions) -> Self {
        Self {
            options: Arc::new(options),
        }
    }
}

#[async_trait]
impl FileFormat for NdjsonFormat {
    fn get_ext(&self) -> String {
        ".json".to_string()
    }

    fn get_ext_with_compression(&self, c: &FileCompressionType) -> Result<String> {
        use datafusion::common::GetExt;
        Ok(format!("{}{}", self.get_ext(), c.get_ext()))
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        Some(FileCompressionType::UNCOMPRESSED)
    }

    async fn infer_schema(
        &self,
        _state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        let schema = crate::formats::infer::infer_json_schema(
            &self.options.location,
            store,
            objects,
            crate::formats::infer::DEFAULT_INFER_RECORDS,
            self.options.skip_malformed,
        )
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Arc::new(schema))
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        _object: &ObjectMeta,
    ) -> Result<Statistics> {
        Ok(Statistics::new_unknown(&table_schema))
    }

    async fn create_physical_plan(
        &self,
        _state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(DataSourceExec::from_data_source(conf))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(NdjsonSource::new(table_schema, Arc::clone(&self.options)))
    }
}

/// The [`FileSource`] behind [`NdjsonFormat`].
#[derive(Clone)]
pub struct NdjsonSource {
    table_schema: TableSchema,
    batch_size: Option<usize>,
    metrics: ExecutionPlanMetricsSet,
    projection: SplitProjection,
    options: Arc<JsonReadOptions>,
}

impl NdjsonSource {
    fn new(table_schema: TableSchema, options: Arc<JsonReadOptions>) -> Self {
        Self {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            batch_size: None,
            metrics: ExecutionPlanMetricsSet::new(),
            options,
        }
    }
}

impl FileSource for NdjsonSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        _base_config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let file_schema = self.table_schema.file_schema();
        let projected = Arc::new(file_schema.project(&self.projection.file_indices)?);
        let opener = Arc::new(NdjsonOpener {
            batch_size: self.batch_size.unwrap_or(8192),
            schema: projected,
            store: object_store,
            options: Arc::clone(&self.options),
        });
        ProjectionOpener::try_new(self.projection.clone(), opener, file_schema)
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let mut source = self.clone();
        source.batch_size = Some(batch_size);
        Arc::new(source)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        let mut source = self.clone();
        let merged = self.projection.source.try_merge(projection)?;
        source.projection = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(source)))
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        "json"
    }

    // Files are read whole, one per task: line numbers and skipping need the whole file.
    fn supports_repartitioning(&self) -> bool {
        false
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }
}

struct NdjsonOpener {
    batch_size: usize,
    schema: SchemaRef,
    store: Arc<dyn ObjectStore>,
    options: Arc<JsonReadOptions>,
}

impl fmt::Debug for NdjsonOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NdjsonOpener({})", self.options.table)
    }
}

impl FileOpener for NdjsonOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.store);
        let schema = Arc::clone(&self.schema);
        let batch_size = self.batch_size;
        let options = Arc::clone(&self.options);
        Ok(Box::pin(async move {
            let path = file.object_meta.location.clone();
            let shown = crate::formats::infer::display_path(&options.location, &path);
            let bytes =
                crate::formats::infer::read_object(&store, &path, &shown, &options.table).await?;
            let (batches, skipped) = decode_ndjson(&bytes, &shown, schema, batch_size, &options)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            options.counters.record_skipped(&shown, skipped);
            Ok(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
        }))
    }
}

/// Decodes a whole NDJSON file. The fast path hands every byte to arrow's decoder; only when
/// that fails are lines checked one by one, to name the bad line or to skip it.
/// Returns the batches and the number of lines skipped.
fn decode_ndjson(
    bytes: &[u8],
    path: &str,
    schema: SchemaRef,
    batch_size: usize,
    options: &JsonReadOptions,
) -> std::result::Result<(Vec<RecordBatch>, u64), Error> {
    if let Ok(batches) = decode_all(bytes, Arc::clone(&schema), batch_size) {
        return Ok((batches, 0));
    }
    let mut good = Vec::with_capacity(bytes.len());
    let mut skipped = 0u64;
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let problem = match serde_json::from_slice::<serde_json::Value>(line) {
            Err(e) => Some(format!("malformed JSON: {e}")),
            Ok(serde_json::Value::Object(_)) => {
                decode_all(line, Arc::clone(&schema), 1).err().map(|e| {
                    format!(
                        "a value does not fit the table's schema ({e}); \
                         run REFRESH TABLE {} to infer the schema again",
                        options.table
                    )
                })
            }
            Ok(_) => Some("the line is not a JSON object".to_string()),
        };
        match problem {
            None => {
                good.extend_from_slice(line);
                good.push(b'\n');
            }
            Some(_) if options.skip_malformed => skipped += 1,
            Some(reason) => {
                return Err(Error::BadFile {
                    path: path.to_string(),
                    line: Some(index as u64 + 1),
                    reason: format!(
                        "{reason}. To skip such lines, set OPTIONS ('skip_malformed' 'true') on {}",
                        options.table
                    ),
                });
            }
        }
    }
    let batches = decode_all(&good, schema, batch_size).map_err(|e| Error::BadFile {
        path: path.to_string(),
        line: None,
        reason: e.to_string(),
    })?;
    Ok((batches, skipped))
}

fn decode_all(
    bytes: &[u8],
    schema: SchemaRef,
    batch_size: usize,
) -> std::result::Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    let mut decoder = ReaderBuilder::new(schema)
        .with_batch_size(batch_size)
        .with_coerce_primitive(true)
        .build_decoder()?;
    let mut batches = vec![];
    let mut rest = bytes;
    loop {
        let consumed = decoder.decode(rest)?;
        rest = &rest[consumed..];
        if let Some(batch) = decoder.flush()? {
            batches.push(batch);
        }
        if rest.is_empty() {
            break;
        }
        if consumed == 0 {
            // The decoder wanted more input than a whole line holds: a truncated value.
            return Err(arrow::error::ArrowError::JsonError(
                "truncated JSON value".to_string(),
            ));
        }
    }
    if let Some(batch) = decoder.flush()? {
        batches.push(batch);
    }
    Ok(batches)
}
