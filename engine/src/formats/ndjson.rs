//! Newline-delimited JSON as strata reads it: one file at a time, streamed in blocks of whole
//! lines (so a file of any size is read in bounded memory), gzip by file name,
//! numbers and booleans readable into string columns (so a field widened to string holds
//! every value), and malformed lines either reported with their file and line number or
//! skipped and counted, as the table's `skip_malformed` option says.

use std::collections::VecDeque;
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
use crate::formats::infer::{LINE_BLOCK_BYTES, LineReader};
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
    /// Read by path (`read_json('…')`) rather than as a registered table: `table` is how the
    /// query named the files, and the remedies are the read's options, not the table's.
    pub by_path: bool,
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
    pub(crate) fn new(table_schema: TableSchema, options: Arc<JsonReadOptions>) -> Self {
        Self {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            batch_size: None,
            metrics: ExecutionPlanMetricsSet::new(),
            options,
        }
    }

    /// How the files are read.
    pub(crate) fn options(&self) -> &JsonReadOptions {
        &self.options
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

    // Files are streamed from their start, one per task: line numbers count from there.
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
            let reader = LineReader::open(&store, &path, &shown, &options.table).await?;
            let state = StreamState {
                reader,
                ready: VecDeque::new(),
                skipped: 0,
                finished: false,
                shown,
                schema,
                batch_size,
                options,
            };
            Ok(futures::stream::try_unfold(state, StreamState::next).boxed())
        }))
    }
}

/// One file being decoded: a block of lines at a time, so that memory holds a block and its
/// batches, never the whole file.
struct StreamState {
    reader: LineReader,
    ready: VecDeque<RecordBatch>,
    skipped: u64,
    finished: bool,
    shown: String,
    schema: SchemaRef,
    batch_size: usize,
    options: Arc<JsonReadOptions>,
}

impl StreamState {
    async fn next(mut self) -> Result<Option<(RecordBatch, Self)>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Ok(Some((batch, self)));
            }
            if self.finished {
                return Ok(None);
            }
            match self.reader.next_lines(LINE_BLOCK_BYTES).await? {
                Some((first_line, block)) => {
                    let (batches, skipped) = decode_ndjson(
                        &block,
                        first_line,
                        &self.shown,
                        Arc::clone(&self.schema),
                        self.batch_size,
                        &self.options,
                    )
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    self.skipped += skipped;
                    self.ready.extend(batches);
                }
                None => {
                    self.finished = true;
                    self.options
                        .counters
                        .record_skipped(&self.shown, self.skipped);
                }
            }
        }
    }
}

/// Decodes a block of whole lines of an NDJSON file, whose first line is line `first_line`
/// of the file. The fast path hands every byte to arrow's decoder; only when that fails are
/// lines checked one by one, to name the bad line or to skip it.
/// Returns the batches and the number of lines skipped.
fn decode_ndjson(
    bytes: &[u8],
    first_line: u64,
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
                    if options.by_path {
                        format!(
                            "a value does not fit the schema inferred from the first records of {} ({e}); \
                             read it with a larger sample_size",
                            options.table
                        )
                    } else {
                        format!(
                            "a value does not fit the table's schema ({e}); \
                             run REFRESH TABLE {} to infer the schema again",
                            options.table
                        )
                    }
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
                    line: Some(first_line + index as u64),
                    reason: if options.by_path {
                        format!(
                            "{reason}. To skip such lines, read with ignore_errors = true: {}",
                            options.table
                        )
                    } else {
                        format!(
                            "{reason}. To skip such lines, set OPTIONS ('skip_malformed' 'true') on {}",
                            options.table
                        )
                    },
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::TryStreamExt;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    use super::*;

    /// Lines enough for several blocks of [`LINE_BLOCK_BYTES`]: about 110 bytes each.
    const LINES: usize = 3 * LINE_BLOCK_BYTES / 110;

    fn line(i: usize) -> String {
        format!(r#"{{"id": {i}, "pad": "{:0>80}"}}"#, i)
    }

    fn options(skip_malformed: bool) -> Arc<JsonReadOptions> {
        Arc::new(JsonReadOptions {
            table: "raw.events".into(),
            by_path: false,
            location: "file:///data/events/".into(),
            skip_malformed,
            counters: Arc::new(ScanCounters::default()),
        })
    }

    /// Reads `bytes` stored as `name` through the opener, as a query would.
    async fn read(
        name: &str,
        bytes: Vec<u8>,
        options: Arc<JsonReadOptions>,
    ) -> Result<Vec<RecordBatch>> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let size = bytes.len() as u64;
        store
            .put(&Path::from(name), PutPayload::from(bytes))
            .await
            .expect("put");
        let opener = NdjsonOpener {
            batch_size: 8192,
            schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
            store,
            options,
        };
        let stream = opener.open(PartitionedFile::new(name, size))?.await?;
        stream.try_collect().await
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                let ids = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("int64");
                ids.values().to_vec()
            })
            .collect()
    }

    fn file_with(bad: Option<(usize, &str)>) -> Vec<u8> {
        let mut text = String::new();
        for i in 1..=LINES {
            match bad {
                Some((at, bad_line)) if at == i => text.push_str(bad_line),
                _ => text.push_str(&line(i)),
            }
            text.push('\n');
        }
        text.into_bytes()
    }

    /// A file of several blocks reads whole and in order, each line once, whether or not
    /// it ends with a line end.
    #[tokio::test]
    async fn a_file_of_many_blocks_reads_every_line_once() {
        let bytes = file_with(None);
        assert!(bytes.len() > 2 * LINE_BLOCK_BYTES);
        let batches = read("events.json", bytes.clone(), options(false))
            .await
            .expect("read");
        assert_eq!(ids(&batches), (1..=LINES as i64).collect::<Vec<_>>());
        let mut unterminated = bytes;
        unterminated.pop();
        let batches = read("events.json", unterminated, options(false))
            .await
            .expect("read");
        assert_eq!(ids(&batches).len(), LINES);
    }

    /// A bad line in a later block is named by its line number in the file.
    #[tokio::test]
    async fn errors_name_the_line_in_the_file_not_in_the_block() {
        let at = LINES - 7;
        let err = read(
            "events.json",
            file_with(Some((at, r#"{"id": 1,"#))),
            options(false),
        )
        .await
        .expect_err("a malformed line");
        let text = err.to_string();
        assert!(
            text.contains(&format!("at line {at}:")) && text.contains("/events.json"),
            "{text}"
        );
        let err = read(
            "events.json",
            file_with(Some((at, "[1, 2]"))),
            options(false),
        )
        .await
        .expect_err("not an object");
        assert!(err.to_string().contains(&format!("at line {at}:")), "{err}");
    }

    /// Skipped lines are counted once for the file, over all its blocks.
    #[tokio::test]
    async fn skipped_lines_are_counted_across_blocks() {
        let mut text = String::from_utf8(file_with(Some((5, "not json")))).expect("utf8");
        text.push_str("{\"id\": \"many\"}\n");
        let opts = options(true);
        let batches = read("events.json", text.into_bytes(), Arc::clone(&opts))
            .await
            .expect("read");
        assert_eq!(ids(&batches).len(), LINES - 1);
        assert_eq!(
            opts.counters.skipped_by_file(),
            vec![("/events.json".to_string(), 2)]
        );
    }

    /// Gzipped files are gunzipped as they stream, with line numbers kept.
    #[tokio::test]
    async fn gzip_streams_with_line_numbers() {
        let at = LINES - 1;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&file_with(Some((at, "{oops")))).expect("gzip");
        let bytes = gz.finish().expect("gzip");
        let err = read("events.json.gz", bytes, options(false))
            .await
            .expect_err("a malformed line");
        assert!(err.to_string().contains(&format!("at line {at}:")), "{err}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&file_with(None)).expect("gzip");
        let batches = read("events.json.gz", gz.finish().expect("gzip"), options(false))
            .await
            .expect("read");
        assert_eq!(ids(&batches).len(), LINES);
    }

    /// A line nested 100,000 levels deep is no crash: a query skips the fields it does not
    /// read, and schema inference (which reads every field) names the line.
    #[tokio::test]
    async fn deeply_nested_lines_do_not_crash() {
        let deep = format!(
            r#"{{"id": 2, "x": {}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let text = format!("{}\n{deep}\n{}\n", line(1), line(3));
        let batches = read("events.json", text.clone().into_bytes(), options(false))
            .await
            .expect("the deep field is not read");
        assert_eq!(ids(&batches), vec![1, 2, 3]);

        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("events.json");
        store
            .put(&path, PutPayload::from(text.into_bytes()))
            .await
            .expect("put");
        let meta = store.head(&path).await.expect("head");
        let err = crate::formats::infer::infer_json_schema(
            "file:///data/events/",
            &store,
            &[meta],
            1000,
            false,
        )
        .await
        .expect_err("too deep to infer");
        assert!(err.to_string().contains("at line 2:"), "{err}");
    }
}
