//! A Delta table read as plain Parquet: the data files of one snapshot in DataFusion's own
//! Parquet scan, with the snapshot's partition values as partition columns and the row
//! counts of its file statistics.
//!
//! deltalake's scan node cannot travel to a cluster's executors (it has no codec), but
//! DataFusion's Parquet scan can: sessions that run on a cluster read Delta tables through
//! this scan instead. It reads the same files of the same version, so time travel reads the
//! same rows. What a plain scan cannot honour is refused with an error naming the table
//! rather than answered wrongly: deletion vectors (rows a file still holds but the table
//! deleted) and column mapping (columns whose names in the files are not their names in the
//! table).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::pruning::PrunableStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, expr_rewriter::unnormalize_col};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion_datasource::TableSchema;
use datafusion_datasource::file_groups::FileGroup;
use datafusion_datasource::file_scan_config::FileScanConfigBuilder;
use deltalake::DeltaTable;
use object_store::ObjectMeta;
use object_store::path::Path;

use crate::error::Error;

/// Plans a scan of `table`'s current snapshot as plain Parquet, with `schema` (the schema
/// deltalake's provider gives the table, which queries were planned against). The caller
/// has asked [`cannot_read_plainly`] first. Of the
/// query's `filters`, those the provider took as exact (`exact`: DataFusion applies no filter
/// of its own for them) are applied here, above the scan; DataFusion keeps its own filter
/// for the others. All of them prune files and row groups once pushed into the scan.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn scan(
    table: &DeltaTable,
    name: &str,
    schema: &SchemaRef,
    state: &dyn Session,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    exact: &[Expr],
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let refuse = |why: String| DataFusionError::External(Box::new(Error::Unsupported(why)));
    let snapshot = table
        .snapshot()
        .map_err(|e| refuse(format!("{name} cannot be read as a Delta table: {e}")))?;
    let partition_columns: Vec<String> = snapshot.metadata().partition_columns().to_vec();
    let layout = Layout::new(schema, &partition_columns);

    let root = table.table_url();
    let store_url = store_url(root)?;
    let root_path = Path::from_url_path(root.path())
        .map_err(|e| refuse(format!("{name} has a location strata cannot read: {e}")))?;
    let mut files = vec![];
    for file in snapshot.log_data().iter() {
        let relative = file.object_store_path();
        let location = Path::from_iter(root_path.parts().chain(relative.parts()));
        let size = u64::try_from(file.size()).unwrap_or_default();
        let meta = ObjectMeta {
            location,
            last_modified: file.modification_datetime().unwrap_or_default(),
            size,
            e_tag: None,
            version: None,
        };
        let values = file.partition_values_map();
        let partition_values = layout
            .partition_fields
            .iter()
            .map(|field| partition_value(values.get(field.name()).cloned().flatten(), field))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| {
                refuse(format!(
                    "{name}: the partition values of '{}' cannot be read: {e}",
                    file.path()
                ))
            })?;
        let mut partitioned =
            PartitionedFile::new_from_meta(meta).with_partition_values(partition_values.clone());
        if let Some(n) = file.num_records() {
            let mut stats = Statistics::new_unknown(&layout.table_schema);
            stats.num_rows = Precision::Exact(n);
            stats.total_byte_size = Precision::Inexact(usize::try_from(size).unwrap_or(usize::MAX));
            if let Some(json) = file.stats() {
                column_statistics(&json, &layout.file_schema, &mut stats);
            }
            // A partition column holds one value in the whole file.
            let file_columns = layout.file_schema.fields().len();
            for (column, value) in stats.column_statistics[file_columns..]
                .iter_mut()
                .zip(partition_values)
                .filter(|(_, value)| !matches!(value, ScalarValue::Dictionary(..)))
            {
                if value.is_null() {
                    column.null_count = Precision::Exact(n);
                } else {
                    column.null_count = Precision::Exact(0);
                    column.min_value = Precision::Exact(value.clone());
                    column.max_value = Precision::Exact(value);
                }
            }
            partitioned = partitioned.with_statistics(Arc::new(stats));
        }
        files.push(partitioned);
    }
    let files = prune_files(files, filters, &layout, state);
    let bytes = files.iter().fold(0usize, |sum, file| {
        sum.saturating_add(usize::try_from(file.object_meta.size).unwrap_or(usize::MAX))
    });
    let file_statistics: Option<Vec<Arc<Statistics>>> =
        files.iter().map(|file| file.statistics.clone()).collect();

    // The columns the scan reads: those asked for, and those the exact filters name.
    let asked: Vec<usize> = match projection {
        Some(p) => p.clone(),
        None => (0..schema.fields().len()).collect(),
    };
    if files.is_empty() {
        // No file can hold a row: one empty partition, as a listing table without files
        // plans (a scan of no file groups has no partitions, which operators above that
        // need some cannot be planned over).
        return Ok(Arc::new(EmptyExec::new(Arc::new(schema.project(&asked)?))));
    }
    let exact: Vec<Expr> = exact.iter().cloned().map(unnormalize_col).collect();
    let mut read = asked.clone();
    let mut seen: HashSet<usize> = read.iter().copied().collect();
    for filter in &exact {
        for column in filter.column_refs() {
            let index = schema.index_of(&column.name)?;
            if seen.insert(index) {
                read.push(index);
            }
        }
    }

    let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
    let source = format.file_source(
        TableSchema::builder(Arc::clone(&layout.file_schema))
            .with_table_partition_cols(layout.partition_fields.clone())
            .build(),
    );
    // The table's statistics are its files' together (for the join order and the sizes the
    // planner estimates), when every file has them.
    let mut statistics = match &file_statistics {
        Some(all) if !all.is_empty() => {
            Statistics::try_merge_iter(all.iter().map(|s| s.as_ref()), &layout.table_schema)?
        }
        Some(_) => {
            let mut none = Statistics::new_unknown(&layout.table_schema);
            none.num_rows = Precision::Exact(0);
            none
        }
        None => Statistics::new_unknown(&layout.table_schema),
    };
    statistics.total_byte_size = Precision::Inexact(bytes);
    let config = FileScanConfigBuilder::new(store_url, source)
        .with_file_groups(groups(
            files,
            state.config_options().execution.target_partitions,
        ))
        .with_statistics(statistics)
        .with_limit(if filters.is_empty() { limit } else { None })
        .with_projection_indices(Some(read.iter().map(|&i| layout.table_index[i]).collect()))?
        .build();
    let mut plan = format.create_physical_plan(state, config).await?;
    let Some(predicate) = conjunction(exact) else {
        return Ok(plan);
    };
    let read_schema = Arc::new(schema.project(&read)?);
    let df_schema = DFSchema::try_from(Arc::clone(&read_schema))?;
    let predicate = state.create_physical_expr(predicate, &df_schema)?;
    plan = Arc::new(FilterExec::try_new(predicate, plan)?);
    if read.len() == asked.len() {
        return Ok(plan);
    }
    // Drop the columns only the filters needed.
    let columns = asked
        .iter()
        .enumerate()
        .map(|(at, &index)| {
            let name = schema.field(index).name().clone();
            (
                Arc::new(Column::new(&name, at))
                    as Arc<dyn datafusion::physical_plan::PhysicalExpr>,
                name,
            )
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(columns, plan)?))
}

/// The files the query's filters may need: those whose partition values and log bounds rule
/// the filters out are left out of the scan, as deltalake's scan leaves them out, so they
/// are neither opened nor counted. Files without statistics, and filters that cannot be
/// evaluated on statistics, keep every file.
fn prune_files(
    files: Vec<PartitionedFile>,
    filters: &[Expr],
    layout: &Layout,
    state: &dyn Session,
) -> Vec<PartitionedFile> {
    let Some(predicate) = conjunction(filters.iter().cloned().map(unnormalize_col)) else {
        return files;
    };
    let schema = Arc::new(layout.table_schema.clone());
    let predicate = DFSchema::try_from(Arc::clone(&schema))
        .and_then(|df_schema| state.create_physical_expr(predicate, &df_schema));
    // None when the filters cannot be evaluated on statistics or rule nothing out.
    let Some(pruning) = predicate.ok().and_then(|predicate| {
        PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(&schema))
            .build(predicate)
    }) else {
        return files;
    };
    let statistics = files
        .iter()
        .map(|file| {
            file.statistics
                .clone()
                .unwrap_or_else(|| Arc::new(Statistics::new_unknown(&schema)))
        })
        .collect();
    match pruning.prune(&PrunableStatistics::new(statistics, schema)) {
        Ok(keep) => files
            .into_iter()
            .zip(keep)
            .filter_map(|(file, keep)| keep.then_some(file))
            .collect(),
        Err(_) => files,
    }
}

/// Why `table` cannot be read as plain Parquet (on a cluster, where deltalake's scan cannot
/// go), if it cannot: column mapping, deletion vectors, or a snapshot that cannot be read.
pub(crate) fn cannot_read_plainly(table: &DeltaTable, name: &str) -> Option<String> {
    let snapshot = match table.snapshot() {
        Ok(snapshot) => snapshot,
        Err(e) => {
            return Some(format!(
                "{name} cannot be read as a Delta table on a cluster: {e}"
            ));
        }
    };
    if let Some(mode) = snapshot
        .table_config()
        .column_mapping_mode
        .and_then(|m| serde_json::to_value(m).ok())
        .and_then(|m| m.as_str().map(str::to_string))
        .filter(|m| m != "none")
    {
        return Some(format!(
            "{name} uses Delta column mapping (mode '{mode}'): its files name columns differently from the table, which a cluster's Parquet scan cannot follow yet; query it without --cluster"
        ));
    }
    snapshot
        .log_data()
        .iter()
        .find(|file| file.deletion_vector_descriptor().is_some())
        .map(|file| {
            format!(
                "{name} has deletion vectors (rows its files still hold but the table deleted, such as in '{}'), which a cluster's Parquet scan cannot apply yet; query it without --cluster, or rewrite its files with OPTIMIZE so that they hold only live rows",
                file.path()
            )
        })
}

/// Where each of the table's columns sits in a file scan, which reads the files' columns
/// first and then the partition columns.
struct Layout {
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    /// The file scan's schema: file columns, then partition columns.
    table_schema: Schema,
    /// For each column of the table, its index in the file scan's schema.
    table_index: Vec<usize>,
}

impl Layout {
    fn new(schema: &SchemaRef, partition_columns: &[String]) -> Self {
        let (partition, file): (Vec<_>, Vec<_>) = schema
            .fields()
            .iter()
            .enumerate()
            .partition(|(_, f)| partition_columns.contains(f.name()));
        let table_index = {
            let mut index = vec![0; schema.fields().len()];
            for (at, (i, _)) in file.iter().chain(partition.iter()).enumerate() {
                index[*i] = at;
            }
            index
        };
        let file_fields: Vec<FieldRef> = file.iter().map(|(_, f)| Arc::clone(f)).collect();
        let partition_fields: Vec<FieldRef> =
            partition.iter().map(|(_, f)| Arc::clone(f)).collect();
        let table_schema = Schema::new(
            file_fields
                .iter()
                .chain(partition_fields.iter())
                .cloned()
                .collect::<Vec<_>>(),
        );
        Self {
            file_schema: Arc::new(Schema::new(file_fields)),
            partition_fields,
            table_schema,
            table_index,
        }
    }
}

/// The column statistics of a file's entry in the Delta log (`stats`, JSON): the minimum,
/// maximum and null count of each top-level column, which let the scan skip the file without
/// opening it when a filter (or a join's dynamic filter) rules out its range. DataFusion
/// prunes with exact statistics only, so only values that are exact are kept: those of
/// integers, dates, booleans, and decimals written within their scale. Writers cut strings
/// to a prefix and timestamps to milliseconds, and NaN sorts apart from other floats: their
/// bounds are left out.
fn column_statistics(json: &str, file_schema: &Schema, stats: &mut Statistics) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    let of = |key: &str, column: &str| value.get(key).and_then(|m| m.get(column));
    for (field, column) in file_schema
        .fields()
        .iter()
        .zip(stats.column_statistics.iter_mut())
    {
        let name = field.name();
        if let Some(n) = of("nullCount", name)
            .and_then(|n| n.as_u64())
            .and_then(|n| usize::try_from(n).ok())
        {
            column.null_count = Precision::Exact(n);
        }
        if let Some(min) = of("minValues", name).and_then(|v| stat_value(v, field.data_type())) {
            column.min_value = Precision::Exact(min);
        }
        if let Some(max) = of("maxValues", name).and_then(|v| stat_value(v, field.data_type())) {
            column.max_value = Precision::Exact(max);
        }
    }
}

/// A minimum or maximum of the Delta log as a value of its column, where it is exact.
fn stat_value(value: &serde_json::Value, data_type: &DataType) -> Option<ScalarValue> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    match data_type {
        integer if integer.is_integer() => {}
        DataType::Boolean | DataType::Date32 | DataType::Date64 => {}
        DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale) => {
            // Only values the column's scale holds exactly, so that no rounding moves them.
            let digits = text
                .split_once('.')
                .map_or(0, |(_, fraction)| fraction.trim_end_matches('0').len());
            if *scale < 0 || text.contains(['e', 'E']) || digits > *scale as usize {
                return None;
            }
        }
        _ => return None,
    }
    ScalarValue::try_from_string(text, data_type).ok()
}

/// A partition value as Delta writes it (text, or none for NULL) as a value of its column.
fn partition_value(text: Option<String>, field: &Field) -> Result<ScalarValue> {
    let (value_type, key_type) = match field.data_type() {
        DataType::Dictionary(key, value) => (value.as_ref(), Some(key.as_ref())),
        other => (other, None),
    };
    // Delta writes NULL as no value, or as an empty string.
    let value = match text.filter(|t| !t.is_empty()) {
        None => ScalarValue::try_from(value_type)?,
        Some(text) => ScalarValue::try_from_string(text, value_type)?,
    };
    Ok(match key_type {
        Some(key) => ScalarValue::Dictionary(Box::new(key.clone()), Box::new(value)),
        None => value,
    })
}

/// The object store URL of a table's location: its scheme and bucket.
fn store_url(root: &url::Url) -> Result<ObjectStoreUrl> {
    let authority = &root[url::Position::BeforeHost..url::Position::AfterPort];
    ObjectStoreUrl::parse(format!("{}://{authority}", root.scheme()))
}

/// The files spread over at most `partitions` groups of about equal bytes.
fn groups(mut files: Vec<PartitionedFile>, partitions: usize) -> Vec<FileGroup> {
    let count = partitions.max(1).min(files.len());
    if count == 0 {
        return vec![];
    }
    files.sort_by(|a, b| {
        b.object_meta
            .size
            .cmp(&a.object_meta.size)
            .then_with(|| a.object_meta.location.cmp(&b.object_meta.location))
    });
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = (0..count).map(|_| (0, vec![])).collect();
    for file in files {
        // The group with the fewest bytes so far takes the next biggest file.
        if let Some(group) = groups.iter_mut().min_by_key(|(bytes, _)| *bytes) {
            group.0 += file.object_meta.size;
            group.1.push(file);
        }
    }
    groups
        .into_iter()
        .map(|(_, files)| FileGroup::new(files))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_statistics_bound_the_columns_only_where_they_are_sure() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("price", DataType::Decimal128(12, 2), true),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("day", DataType::Date32, true),
            Field::new("ratio", DataType::Float64, true),
        ]);
        let mut stats = Statistics::new_unknown(&schema);
        column_statistics(
            r#"{"numRecords":3,"minValues":{"id":-4,"price":1.5,"name":"apple","at":"2024-01-01T00:00:00.000Z","day":"2024-02-29","ratio":0.5},
                "maxValues":{"id":90,"price":2.125,"name":"pear","at":"2024-01-02T00:00:00.000Z","day":"2024-03-01","ratio":1.5},
                "nullCount":{"id":0,"price":1,"name":2}}"#,
            &schema,
            &mut stats,
        );
        let [id, price, name, at, day, ratio] = &stats.column_statistics[..] else {
            panic!("six columns");
        };
        assert_eq!(id.min_value, Precision::Exact(ScalarValue::Int64(Some(-4))));
        assert_eq!(id.max_value, Precision::Exact(ScalarValue::Int64(Some(90))));
        assert_eq!(id.null_count, Precision::Exact(0));
        assert_eq!(
            price.min_value,
            Precision::Exact(ScalarValue::Decimal128(Some(150), 12, 2))
        );
        // 2.125 does not fit a scale of 2: rounded, it could bound the column wrongly.
        assert_eq!(price.max_value, Precision::Absent);
        // A string may be cut to a prefix.
        assert_eq!(
            (&name.min_value, &name.max_value),
            (&Precision::Absent, &Precision::Absent)
        );
        assert_eq!(name.null_count, Precision::Exact(2));
        assert_eq!(
            (&at.min_value, &at.max_value),
            (&Precision::Absent, &Precision::Absent)
        );
        assert_eq!(
            day.max_value,
            Precision::Exact(ScalarValue::Date32(Some(19783)))
        );
        assert_eq!(ratio.min_value, Precision::Absent);
        // Statistics that are not JSON leave the file's columns unknown.
        let mut unknown = Statistics::new_unknown(&schema);
        column_statistics("{not json", &schema, &mut unknown);
        assert_eq!(unknown, Statistics::new_unknown(&schema));
    }

    #[test]
    fn partition_columns_go_after_file_columns_in_the_scan() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("month", DataType::Int32, true),
            Field::new("b", DataType::Utf8View, true),
        ]));
        let layout = Layout::new(&schema, &["month".to_string()]);
        assert_eq!(layout.table_index, vec![0, 2, 1]);
        assert_eq!(layout.file_schema.fields().len(), 2);
        assert_eq!(layout.partition_fields[0].name(), "month");
    }

    #[test]
    fn partition_values_take_their_column_types() -> Result<()> {
        let int = Field::new("m", DataType::Int32, true);
        assert_eq!(
            partition_value(Some("3".into()), &int)?,
            ScalarValue::Int32(Some(3))
        );
        assert_eq!(partition_value(None, &int)?, ScalarValue::Int32(None));
        assert_eq!(
            partition_value(Some(String::new()), &int)?,
            ScalarValue::Int32(None)
        );
        let dict = Field::new(
            "s",
            DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8)),
            true,
        );
        assert_eq!(
            partition_value(Some("x".into()), &dict)?,
            ScalarValue::Dictionary(
                Box::new(DataType::UInt16),
                Box::new(ScalarValue::Utf8(Some("x".into())))
            )
        );
        Ok(())
    }

    /// A Delta table whose log is `actions` (one commit), at a new folder.
    async fn table_with_log(actions: &[serde_json::Value]) -> (tempfile::TempDir, DeltaTable) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("_delta_log");
        std::fs::create_dir_all(&log).expect("log folder");
        let lines: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
        std::fs::write(log.join("00000000000000000000.json"), lines.join("\n")).expect("commit");
        let url = url::Url::from_directory_path(dir.path()).expect("url");
        let table = deltalake::DeltaTableBuilder::from_url(url)
            .expect("builder")
            .load()
            .await
            .expect("the table loads");
        (dir, table)
    }

    fn metadata(configuration: serde_json::Value, field: serde_json::Value) -> serde_json::Value {
        let schema = serde_json::json!({"type": "struct", "fields": [field]});
        serde_json::json!({"metaData": {
            "id": "a7f1c1e0-0000-4000-8000-000000000001",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema.to_string(),
            "partitionColumns": [],
            "configuration": configuration,
            "createdTime": 1_700_000_000_000_i64,
        }})
    }

    async fn plan(table: &DeltaTable) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let state = datafusion::prelude::SessionContext::new().state();
        // As the provider does on a cluster: refused when a plain scan cannot read it.
        if let Some(why) = cannot_read_plainly(table, "curated.t") {
            return Err(DataFusionError::External(Box::new(Error::Unsupported(why))));
        }
        scan(table, "curated.t", &schema, &state, None, &[], &[], None).await
    }

    /// Deletion vectors would leave deleted rows in a plain scan: the scan is refused.
    #[tokio::test]
    async fn deletion_vectors_are_refused_not_read() {
        let (_dir, table) = table_with_log(&[
            serde_json::json!({"protocol": {
                "minReaderVersion": 3, "minWriterVersion": 7,
                "readerFeatures": ["deletionVectors"], "writerFeatures": ["deletionVectors"],
            }}),
            metadata(
                serde_json::json!({"delta.enableDeletionVectors": "true"}),
                serde_json::json!({"name": "a", "type": "long", "nullable": true, "metadata": {}}),
            ),
            serde_json::json!({"add": {
                "path": "part-0.parquet", "partitionValues": {}, "size": 100,
                "modificationTime": 1_700_000_000_000_i64, "dataChange": true,
                "stats": "{\"numRecords\":3}",
                "deletionVector": {
                    "storageType": "u", "pathOrInlineDv": "ab^-aqEH.-t@S}K{vb[*k^",
                    "offset": 1, "sizeInBytes": 36, "cardinality": 1,
                },
            }}),
        ])
        .await;
        let err = plan(&table).await.expect_err("refused").to_string();
        assert!(
            err.contains("curated.t has deletion vectors") && err.contains("without --cluster"),
            "{err}"
        );
    }

    /// Column mapping names columns differently in the files: the scan is refused.
    #[tokio::test]
    async fn column_mapping_is_refused_not_read() {
        let (_dir, table) = table_with_log(&[
            serde_json::json!({"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}}),
            metadata(
                serde_json::json!({
                    "delta.columnMapping.mode": "name",
                    "delta.columnMapping.maxColumnId": "1",
                }),
                serde_json::json!({"name": "a", "type": "long", "nullable": true, "metadata": {
                    "delta.columnMapping.id": 1,
                    "delta.columnMapping.physicalName": "col-5f1c",
                }}),
            ),
        ])
        .await;
        let err = plan(&table).await.expect_err("refused").to_string();
        assert!(
            err.contains("curated.t uses Delta column mapping (mode 'name')"),
            "{err}"
        );
    }

    /// A table without either is a Parquet scan of its files, with their row counts.
    #[tokio::test]
    async fn a_plain_table_is_a_parquet_scan_of_its_files() -> Result<()> {
        let (dir, table) = table_with_log(&[
            serde_json::json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
            metadata(
                serde_json::json!({}),
                serde_json::json!({"name": "a", "type": "long", "nullable": true, "metadata": {}}),
            ),
            serde_json::json!({"add": {
                "path": "part-0.parquet", "partitionValues": {}, "size": 100,
                "modificationTime": 1_700_000_000_000_i64, "dataChange": true,
                "stats": "{\"numRecords\":3}",
            }}),
        ])
        .await;
        let plan = plan(&table).await?;
        let scan = plan
            .downcast_ref::<datafusion::datasource::source::DataSourceExec>()
            .and_then(|d| {
                d.data_source()
                    .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()
            })
            .expect("a file scan");
        assert_eq!(scan.file_source().file_type(), "parquet");
        let files: Vec<_> = scan.file_groups.iter().flat_map(|g| g.files()).collect();
        assert_eq!(files.len(), 1);
        let expected = format!(
            "{}/part-0.parquet",
            dir.path().to_string_lossy().trim_start_matches('/')
        );
        assert_eq!(files[0].object_meta.location.as_ref(), expected);
        assert_eq!(scan.statistics().num_rows, Precision::Exact(3));
        let file_rows = files[0].statistics.as_ref().map(|s| s.num_rows);
        assert_eq!(file_rows, Some(Precision::Exact(3)));
        Ok(())
    }

    #[test]
    fn files_spread_over_groups_by_bytes() {
        let files = (1..=5u64)
            .map(|n| PartitionedFile::new(format!("f{n}"), n * 10))
            .collect();
        let spread = groups(files, 2);
        let bytes: Vec<u64> = spread
            .iter()
            .map(|g| g.files().iter().map(|f| f.object_meta.size).sum())
            .collect();
        assert_eq!(bytes, vec![80, 70]);
        assert!(groups(vec![], 4).is_empty());
    }
}
