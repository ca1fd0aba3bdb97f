//! strata's Parquet writes: every statement that writes Parquet files (`CREATE TABLE … AS`
//! into a Parquet table, INSERT INTO a strata Parquet table, and the staged writes of INSERT
//! OVERWRITE, CREATE OR REPLACE and audited inserts) writes them with
//! [`crate::formats::distinct_counts::ParquetWriter`], so their column statistics carry
//! the distinct counts strata's filter estimates read, beside the min/max and null counts
//! Parquet always records.
//!
//! Everything else is DataFusion's: [`StrataParquetFormat`] is DataFusion's
//! [`ParquetFormat`] for reading and for every option, and its writer plan is DataFusion's
//! [`DataSinkExec`] with the same [`FileSinkConfig`], whose demultiplexer splits the rows
//! into the same files as DataFusion's own Parquet sink would: hive folders `col=value/`
//! (NULL as `__HIVE_DEFAULT_PARTITION__`) without the partition columns in the files, files
//! named `<write id>_<n>.parquet`, the same number of them. Only the writing of each file
//! differs: batch by batch into row groups of `max_row_group_size` rows, each row group
//! uploaded as it closes (a multipart upload through the object store), with the session's
//! writer properties (compression, statistics, sorting columns, key-value metadata).
//!
//! Writer settings strata's writer does not implement (encryption, content-defined
//! chunking, a byte limit on row groups) leave the write to DataFusion's sink, without
//! distinct counts.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::config::TableParquetOptions;
use datafusion::common::runtime::{JoinSet, SpawnedTask};
use datafusion::common::{DataFusionError, GetExt, Result, Statistics};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::parquet::{ParquetFormat, ParquetFormatFactory};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{LogicalPlanBuilder, SortExpr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, LexRequirement};
use datafusion::physical_plan::metrics::{
    ElapsedComputeFutureExt, ExecutionPlanMetricsSet, MetricBuilder, MetricCategory, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, SendableRecordBatchStream,
    stream::RecordBatchStreamAdapter,
};
use datafusion_datasource::TableSchema;
use datafusion_datasource::display::FileGroupDisplay;
use datafusion_datasource::file::FileSource;
use datafusion_datasource::file_compression_type::FileCompressionType;
use datafusion_datasource::file_format::{
    FileFormat, FileFormatFactory, FileMeta, format_as_file_type,
};
use datafusion_datasource::file_scan_config::FileScanConfig;
use datafusion_datasource::file_sink_config::{FileSink, FileSinkConfig};
use datafusion_datasource::sink::{DataSink, DataSinkExec};
use datafusion_datasource::write::demux::DemuxedStreamReceiver;
use datafusion_datasource::write::get_writer_schema;
use object_store::buffered::BufWriter;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{
    DEFAULT_MAX_ROW_GROUP_ROW_COUNT, WriterProperties, WriterPropertiesBuilder,
};

use crate::formats::distinct_counts::ParquetWriter;
use crate::formats::parquet_errors::{name_file, shown_path, with_named_errors};

/// Runs a query into Parquet files under `path` (a folder URL), in hive folders by
/// `partition_by`, its rows sorted by `sort_by` first: what `DataFrame::write_parquet`
/// does, with strata's writer. Returns the rows written.
pub(crate) async fn write_parquet(
    df: DataFrame,
    path: &str,
    partition_by: Vec<String>,
    sort_by: Vec<SortExpr>,
) -> Result<u64> {
    let (state, plan) = df.into_parts();
    let plan = if sort_by.is_empty() {
        plan
    } else {
        LogicalPlanBuilder::from(plan).sort(sort_by)?.build()?
    };
    let file_type = format_as_file_type(Arc::new(StrataParquetFactory));
    let plan =
        LogicalPlanBuilder::copy_to(plan, path.into(), file_type, HashMap::new(), partition_by)?
            .build()?;
    let batches = DataFrame::new(state, plan).collect().await?;
    Ok(written_count(&batches))
}

/// The `count` a write reports.
fn written_count(batches: &[arrow::array::RecordBatch]) -> u64 {
    use arrow::array::AsArray;
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_primitive_opt::<arrow::datatypes::UInt64Type>())
        .map(|a| a.iter().flatten().sum::<u64>())
        .sum()
}

/// Makes [`StrataParquetFormat`]s with the session's Parquet options and a statement's, as
/// [`ParquetFormatFactory`] makes DataFusion's.
#[derive(Debug, Default)]
pub(crate) struct StrataParquetFactory;

impl FileFormatFactory for StrataParquetFactory {
    fn create(
        &self,
        state: &dyn Session,
        format_options: &HashMap<String, String>,
    ) -> Result<Arc<dyn FileFormat>> {
        let format = ParquetFormatFactory::new().create(state, format_options)?;
        let options = format
            .downcast_ref::<ParquetFormat>()
            .map(|f| f.options().clone())
            .unwrap_or_default();
        Ok(Arc::new(StrataParquetFormat::new(
            ParquetFormat::default().with_options(options),
        )))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(StrataParquetFormat::default())
    }
}

impl GetExt for StrataParquetFactory {
    fn get_ext(&self) -> String {
        ParquetFormatFactory::new().get_ext()
    }
}

/// DataFusion's Parquet format, whose files are written with distinct counts.
#[derive(Debug, Default)]
pub struct StrataParquetFormat {
    inner: ParquetFormat,
}

impl StrataParquetFormat {
    pub fn new(inner: ParquetFormat) -> Self {
        StrataParquetFormat { inner }
    }

    /// Whether strata's writer can honour these options.
    fn writes(options: &TableParquetOptions) -> bool {
        options.crypto.file_encryption.is_none()
            && options.crypto.factory_id.is_none()
            && !options.global.content_defined_chunking.enabled
            && options.global.max_row_group_bytes.is_none()
    }
}

#[async_trait]
impl FileFormat for StrataParquetFormat {
    fn get_ext(&self) -> String {
        self.inner.get_ext()
    }

    fn get_ext_with_compression(&self, compression: &FileCompressionType) -> Result<String> {
        self.inner.get_ext_with_compression(compression)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.inner.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        match self.inner.infer_schema(state, store, objects).await {
            Ok(schema) => Ok(schema),
            Err(e) => {
                // Name the file that failed: read them one by one.
                for object in objects {
                    if let Err(e) = self
                        .inner
                        .infer_schema(state, store, std::slice::from_ref(object))
                        .await
                    {
                        return Err(name_file(&shown_path(store, object.location.as_ref()), e));
                    }
                }
                Err(e)
            }
        }
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        self.inner
            .infer_stats(state, store, table_schema, object)
            .await
            .map_err(|e| name_file(&shown_path(store, object.location.as_ref()), e))
    }

    async fn infer_ordering(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Option<LexOrdering>> {
        self.inner
            .infer_ordering(state, store, table_schema, object)
            .await
            .map_err(|e| name_file(&shown_path(store, object.location.as_ref()), e))
    }

    async fn infer_stats_and_ordering(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<FileMeta> {
        self.inner
            .infer_stats_and_ordering(state, store, table_schema, object)
            .await
            .map_err(|e| name_file(&shown_path(store, object.location.as_ref()), e))
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(with_named_errors(
            self.inner.create_physical_plan(state, conf).await?,
        ))
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        state: &dyn Session,
        conf: FileSinkConfig,
        order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let options = self.inner.options();
        if conf.insert_op != InsertOp::Append || !Self::writes(options) {
            return self
                .inner
                .create_writer_physical_plan(input, state, conf, order_requirements)
                .await;
        }
        // As DataFusion records a write's order: as the files' sorting columns, unless it
        // is not an order of plain columns.
        let sorting_columns = order_requirements.as_ref().and_then(|requirements| {
            let ordering: LexOrdering = requirements.clone().into();
            sorting_columns(&ordering, conf.output_schema(), &get_writer_schema(&conf))
                .filter(|columns| !columns.is_empty())
        });
        let sink = StrataParquetSink {
            config: conf,
            parquet_options: options.clone(),
            sorting_columns,
            metrics: ExecutionPlanMetricsSet::new(),
        };
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(sink),
            order_requirements,
        )))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.inner.file_source(table_schema)
    }
}

/// An order as Parquet sorting columns (indexes into the files' columns); `None` when an
/// entry is not a column of the input. Columns the files do not hold (partition columns)
/// are left out.
fn sorting_columns(
    ordering: &LexOrdering,
    input: &Schema,
    writer: &Schema,
) -> Option<Vec<SortingColumn>> {
    let mut columns = vec![];
    for sort in ordering.iter() {
        let column = sort.expr.downcast_ref::<Column>()?;
        let field = input.fields().get(column.index())?;
        let Some((index, _)) = writer.column_with_name(field.name()) else {
            continue;
        };
        columns.push(SortingColumn {
            column_idx: i32::try_from(index).ok()?,
            descending: sort.options.descending,
            nulls_first: sort.options.nulls_first,
        });
    }
    Some(columns)
}

/// Writes the files DataFusion's demultiplexer hands over, each with a [`ParquetWriter`].
struct StrataParquetSink {
    config: FileSinkConfig,
    parquet_options: TableParquetOptions,
    sorting_columns: Option<Vec<SortingColumn>>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for StrataParquetSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrataParquetSink").finish()
    }
}

impl DisplayAs for StrataParquetSink {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "ParquetSink(distinct_counts=true, file_groups=")?;
                FileGroupDisplay(&self.config.file_group).fmt_as(t, f)?;
                write!(f, ")")
            }
            DisplayFormatType::TreeRender => write!(f, ""),
        }
    }
}

impl StrataParquetSink {
    /// The writer properties of every file: the Parquet options, the Arrow schema unless
    /// the options skip it, and the sorting columns.
    fn writer_properties(&self) -> Result<WriterProperties> {
        let mut options = self.parquet_options.clone();
        if !options.global.skip_arrow_metadata {
            options.arrow_schema(self.config.output_schema());
        }
        let mut builder = WriterPropertiesBuilder::try_from(&options)?;
        if let Some(columns) = &self.sorting_columns {
            builder = builder.set_sorting_columns(Some(columns.clone()));
        }
        Ok(builder.build())
    }
}

#[async_trait]
impl FileSink for StrataParquetSink {
    fn config(&self) -> &FileSinkConfig {
        &self.config
    }

    async fn spawn_writer_tasks_and_join(
        &self,
        context: &Arc<TaskContext>,
        demux_task: SpawnedTask<Result<()>>,
        mut file_stream_rx: DemuxedStreamReceiver,
        object_store: Arc<dyn ObjectStore>,
    ) -> Result<u64> {
        let rows_written = MetricBuilder::new(&self.metrics)
            .with_category(MetricCategory::Rows)
            .global_counter("rows_written");
        let bytes_written = MetricBuilder::new(&self.metrics)
            .with_category(MetricCategory::Bytes)
            .global_counter("bytes_written");
        let elapsed_compute = MetricBuilder::new(&self.metrics).elapsed_compute(0);
        let props = self.writer_properties()?;
        let row_group_rows = props
            .max_row_group_row_count()
            .unwrap_or(DEFAULT_MAX_ROW_GROUP_ROW_COUNT);
        let skip_arrow_metadata = self.parquet_options.global.skip_arrow_metadata;
        let schema = get_writer_schema(&self.config);
        let buffer_size = context
            .session_config()
            .options()
            .execution
            .objectstore_writer_buffer_size;
        let mut files: JoinSet<Result<(usize, usize)>> = JoinSet::new();
        while let Some((path, mut rx)) = file_stream_rx.recv().await {
            let out =
                BufWriter::with_capacity(Arc::clone(&object_store), path.clone(), buffer_size);
            let options = ArrowWriterOptions::new()
                .with_properties(props.clone())
                .with_skip_arrow_metadata(skip_arrow_metadata);
            let mut writer = ParquetWriter::try_new_with_options(
                out,
                Arc::clone(&schema),
                options,
                row_group_rows,
            )?;
            let reservation =
                MemoryConsumer::new(format!("ParquetSink[{path}]")).register(context.memory_pool());
            files.spawn(
                async move {
                    while let Some(batch) = rx.recv().await {
                        let written = match writer.write(&batch).await {
                            Ok(()) => reservation.try_resize(writer.memory_size()),
                            Err(e) => Err(e.into()),
                        };
                        if let Err(e) = written {
                            writer.abort().await;
                            return Err(e);
                        }
                    }
                    let metadata = writer.close().await?;
                    let rows = usize::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
                    let bytes = metadata
                        .row_groups()
                        .iter()
                        .map(|rg| usize::try_from(rg.compressed_size()).unwrap_or(0))
                        .sum();
                    Ok((rows, bytes))
                }
                .with_elapsed_compute(elapsed_compute.clone()),
            );
        }
        while let Some(result) = files.join_next().await {
            match result {
                Ok(written) => {
                    let (rows, bytes) = written?;
                    rows_written.add(rows);
                    bytes_written.add(bytes);
                }
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => return Err(DataFusionError::ExecutionJoin(Box::new(e))),
            }
        }
        demux_task
            .join_unwind()
            .await
            .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
        Ok(rows_written.value() as u64)
    }
}

#[async_trait]
impl DataSink for StrataParquetSink {
    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn schema(&self) -> &SchemaRef {
        self.config.output_schema()
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let data = refuse_null_partition_values(data, &self.config);
        FileSink::write_all(self, data, context).await
    }
}

/// Fails the write at the first NULL in a partition column. DataFusion's demultiplexer
/// names a row's folder after the value in its slot, so a NULL would land in the folder of
/// another value (`p=0`, `p=`) and read back as that value; and a hive partition value is
/// never NULL when DataFusion reads the folders back. Better no write than a wrong one.
fn refuse_null_partition_values(
    data: SendableRecordBatchStream,
    config: &FileSinkConfig,
) -> SendableRecordBatchStream {
    use futures::StreamExt;
    if config.table_partition_cols.is_empty() {
        return data;
    }
    let columns: Vec<String> = config
        .table_partition_cols
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    let folder = config.original_url.clone();
    let schema = data.schema();
    let checked = data.map(move |batch| {
        let batch = batch?;
        for name in &columns {
            if let Some(column) = batch.column_by_name(name)
                && column.null_count() > 0
            {
                return Err(DataFusionError::Execution(format!(
                    "cannot write into {folder}: partition column '{name}' holds NULL, and a \
                     partition folder cannot; COALESCE it to a value, filter the NULLs out, \
                     or partition by another column"
                )));
            }
        }
        Ok(batch)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, checked))
}

/// Reading back the Parquet files a test wrote.
#[cfg(test)]
pub(crate) mod footers {
    use std::collections::BTreeMap;
    use std::path::Path;

    use parquet::basic::Compression;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// One Parquet file: where it is, what its footer says.
    #[derive(Debug, Clone)]
    pub(crate) struct Footer {
        /// The folders between the table's folder and the file (`p=1`), `/`-joined.
        pub folder: String,
        pub name: String,
        pub rows: i64,
        pub columns: Vec<String>,
        /// Per column, its distinct count in each row group.
        pub distinct: BTreeMap<String, Vec<Option<u64>>>,
        pub compression: Vec<Compression>,
        pub row_group_rows: Vec<i64>,
    }

    /// The Parquet files under `dir` (at any depth), in path order.
    pub(crate) fn footers(dir: &Path) -> Vec<Footer> {
        let mut found = vec![];
        collect(dir, dir, &mut found);
        found.sort_by(|a: &Footer, b| (&a.folder, &a.name).cmp(&(&b.folder, &b.name)));
        found
    }

    fn collect(root: &Path, dir: &Path, found: &mut Vec<Footer>) {
        for entry in std::fs::read_dir(dir).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                collect(root, &path, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("open"))
                .expect("footer");
            let metadata = reader.metadata();
            let schema = metadata.file_metadata().schema_descr();
            let columns: Vec<String> = (0..schema.num_columns())
                .map(|i| schema.column(i).name().to_string())
                .collect();
            let mut distinct: BTreeMap<String, Vec<Option<u64>>> = BTreeMap::new();
            for rg in metadata.row_groups() {
                for (name, chunk) in columns.iter().zip(rg.columns()) {
                    distinct
                        .entry(name.clone())
                        .or_default()
                        .push(chunk.statistics().and_then(|s| s.distinct_count_opt()));
                }
            }
            let folder = path
                .parent()
                .expect("parent")
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .to_string();
            found.push(Footer {
                folder,
                name: path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .to_string(),
                rows: metadata.file_metadata().num_rows(),
                columns,
                distinct,
                compression: metadata
                    .row_groups()
                    .iter()
                    .flat_map(|rg| rg.columns().iter().map(|c| c.compression()))
                    .collect(),
                row_group_rows: metadata
                    .row_groups()
                    .iter()
                    .map(|rg| rg.num_rows())
                    .collect(),
            });
        }
    }

    /// The distinct counts of `column` over every row group of every file.
    pub(crate) fn counts(files: &[Footer], column: &str) -> Vec<Option<u64>> {
        files
            .iter()
            .flat_map(|f| f.distinct.get(column).cloned().unwrap_or_default())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::footers::{Footer, counts, footers};
    use crate::session::Output;
    use crate::test_support::{pretty, scratch_session};

    /// 20,000 rows: a key, a city of four values, a partition value of three (and NULL for
    /// every seventh row), an amount.
    const ROWS: &str = "SELECT value AS id, 'city_' || CAST(value % 4 AS VARCHAR) AS city, \
         CASE WHEN value % 7 = 0 THEN NULL ELSE value % 3 END AS p, \
         CAST(value AS DOUBLE) * 1.5 AS amount FROM generate_series(1, 20000)";

    async fn done(session: &crate::Session, sql: &str) -> String {
        match session.execute(sql).await.expect(sql) {
            Output::Done(message) => message,
            Output::Rows(_) => panic!("{sql}: rows, not a message"),
        }
    }

    /// A file's folder, rows, row groups' rows, columns and compression.
    type Shape = (String, i64, Vec<i64>, Vec<String>, String);

    /// What two writes must share: the files' folders, rows, row groups, columns and
    /// compression (not their names, which carry a random write id, nor distinct counts).
    fn shape(files: &[Footer]) -> Vec<Shape> {
        let mut shape: Vec<_> = files
            .iter()
            .map(|f| {
                (
                    f.folder.clone(),
                    f.rows,
                    f.row_group_rows.clone(),
                    f.columns.clone(),
                    format!("{:?}", f.compression),
                )
            })
            .collect();
        shape.sort();
        shape
    }

    /// The same rows, written by DataFusion's own Parquet writer into `folder`.
    async fn datafusion_write(
        session: &crate::Session,
        source: &str,
        folder: &std::path::Path,
        by: &[&str],
    ) {
        let options = datafusion::dataframe::DataFrameWriteOptions::new()
            .with_partition_by(by.iter().map(|s| s.to_string()).collect());
        session
            .plan_query(source)
            .await
            .expect("plan")
            .write_parquet(&format!("{}/", folder.display()), options, None)
            .await
            .expect("DataFusion's write");
    }

    /// `table` holds the 20,000 rows of `source`.
    async fn same_rows(session: &crate::Session, table: &str, source: &str) {
        let written = session
            .sql(&format!(
                "SELECT id, city, p, amount FROM {table} ORDER BY id"
            ))
            .await
            .expect("read back");
        let source = session
            .sql(&format!(
                "SELECT id, city, p, amount FROM ({source}) ORDER BY id"
            ))
            .await
            .expect("source");
        assert_eq!(written.iter().map(|b| b.num_rows()).sum::<usize>(), 20_000);
        // Compared whole, not as a long diff.
        let (written, source) = (pretty(&written), pretty(&source));
        assert!(written == source, "{table} differs from its source");
    }

    #[tokio::test]
    async fn create_table_as_parquet_writes_datafusions_files_with_distinct_counts() {
        let (dir, session) = scratch_session().await;
        // Several row groups per file.
        session
            .sql("SET datafusion.execution.parquet.max_row_group_size = 3000")
            .await
            .expect("set");
        let message = done(&session, &format!("CREATE TABLE processed.t AS {ROWS}")).await;
        assert!(message.ends_with(", 20000 rows written"), "{message}");
        let ours = footers(&dir.path().join("wh/processed/t"));
        datafusion_write(&session, ROWS, &dir.path().join("df"), &[]).await;
        let theirs = footers(&dir.path().join("df"));
        assert!(!ours.is_empty());
        assert_eq!(shape(&ours), shape(&theirs));
        assert!(ours.iter().all(|f| f.row_group_rows.len() > 1), "{ours:?}");
        // DataFusion records no distinct counts; strata does, for the repeating columns.
        assert!(counts(&theirs, "city").iter().all(Option::is_none));
        assert!(
            counts(&ours, "city").iter().all(|c| *c == Some(4)),
            "{ours:?}"
        );
        assert!(counts(&ours, "p").iter().all(|c| *c == Some(3)));
        // The key is unique: no count.
        assert!(counts(&ours, "id").iter().all(Option::is_none));
        same_rows(&session, "processed.t", ROWS).await;
    }

    #[tokio::test]
    async fn partitioned_create_table_as_writes_the_same_folders_with_distinct_counts() {
        let (dir, session) = scratch_session().await;
        let rows = ROWS.replace(
            "CASE WHEN value % 7 = 0 THEN NULL ELSE value % 3 END",
            "value % 3",
        );
        let message = done(
            &session,
            &format!("CREATE TABLE processed.t PARTITIONED BY (p) AS {rows}"),
        )
        .await;
        assert!(message.ends_with(", 20000 rows written"), "{message}");
        let ours = footers(&dir.path().join("wh/processed/t"));
        datafusion_write(&session, &rows, &dir.path().join("df"), &["p"]).await;
        let theirs = footers(&dir.path().join("df"));
        assert_eq!(shape(&ours), shape(&theirs));
        let folders: std::collections::BTreeSet<&str> =
            ours.iter().map(|f| f.folder.as_str()).collect();
        assert_eq!(
            folders,
            ["p=0", "p=1", "p=2"].into_iter().collect(),
            "{folders:?}"
        );
        // The partition column is in the folder names, not in the files.
        assert!(ours.iter().all(|f| f.columns == ["id", "city", "amount"]));
        assert!(
            counts(&ours, "city").iter().all(|c| *c == Some(4)),
            "{ours:?}"
        );
        assert_eq!(ours.iter().map(|f| f.rows).sum::<i64>(), 20_000);
        same_rows(&session, "processed.t", &rows).await;
    }

    #[tokio::test]
    async fn a_null_partition_value_fails_the_write_instead_of_landing_in_another_folder() {
        let (dir, session) = scratch_session().await;
        // DataFusion's own writer files the NULLs under `p=0`, where they read back as 0.
        for (statement, table) in [
            (
                format!("CREATE TABLE processed.t PARTITIONED BY (p) AS {ROWS}"),
                "t",
            ),
            (
                "CREATE TABLE processed.s PARTITIONED BY (p) AS \
                 SELECT * FROM (VALUES (1, 'a'), (2, NULL)) v(id, p)"
                    .to_string(),
                "s",
            ),
        ] {
            let error = session
                .execute(&statement)
                .await
                .expect_err("a NULL partition value")
                .to_string();
            assert!(
                error.contains("partition column 'p' holds NULL")
                    && error.contains(&format!("processed/{table}")),
                "{error}"
            );
            assert!(
                session
                    .sql(&format!("SELECT * FROM processed.{table}"))
                    .await
                    .is_err()
            );
            let folder = dir.path().join("wh/processed").join(table);
            assert!(
                !folder.exists() || footers(&folder).is_empty(),
                "{folder:?}"
            );
        }
    }

    #[tokio::test]
    async fn insert_into_a_parquet_table_writes_distinct_counts() {
        let (dir, session) = scratch_session().await;
        // A partition column takes no NULLs on INSERT.
        let rows = ROWS.replace(
            "CASE WHEN value % 7 = 0 THEN NULL ELSE value % 3 END",
            "value % 3",
        );
        // A partitioned table's columns end with its partition columns.
        for (table, by, columns) in [
            ("flat", "", "id, city, p, amount"),
            ("parted", " PARTITIONED BY (p)", "id, city, amount, p"),
        ] {
            session
                .sql(&format!(
                    "CREATE TABLE processed.{table}{by} AS SELECT {columns} FROM ({rows}) WHERE id <= 1000"
                ))
                .await
                .expect("create");
            let folder = dir.path().join("wh/processed").join(table);
            let before: Vec<String> = footers(&folder).into_iter().map(|f| f.name).collect();
            let inserted = session
                .sql(&format!(
                    "INSERT INTO processed.{table} SELECT {columns} FROM ({rows}) WHERE id > 1000"
                ))
                .await
                .expect("insert");
            assert!(
                pretty(&inserted).contains("| 19000 |"),
                "{}",
                pretty(&inserted)
            );
            let new: Vec<Footer> = footers(&folder)
                .into_iter()
                .filter(|f| !before.contains(&f.name))
                .collect();
            assert!(!new.is_empty());
            assert_eq!(new.iter().map(|f| f.rows).sum::<i64>(), 19_000);
            assert!(
                counts(&new, "city").iter().all(|c| *c == Some(4)),
                "{table}: {new:?}"
            );
            if by.is_empty() {
                assert!(
                    new.iter()
                        .all(|f| f.columns == ["id", "city", "p", "amount"])
                );
            } else {
                assert!(new.iter().all(|f| f.columns == ["id", "city", "amount"]));
            }
            same_rows(&session, &format!("processed.{table}"), &rows).await;
        }
    }
}
