//! Parquet files that carry the distinct count of their columns.
//!
//! A filter on a string column (`n_name = 'SAUDI ARABIA'`, `p_type = 'ECONOMY ANODIZED
//! STEEL'`) keeps one value of however many the column holds, but Parquet writers leave the
//! `distinct_count` of their column statistics empty, so planners fall back to a default
//! selectivity (DataFusion: 20%). [`ParquetWriter`] counts each column's distinct values per
//! row group while it writes and records them where the count says something a reader can
//! use: for columns whose values repeat (at most one distinct value per
//! [`REPEATS`] rows), and for every column of a file of one row group. DataFusion reads
//! them back as the columns' `distinct_count` (the largest over a file's row groups), and
//! strata's filter estimates ([`crate::optimizer::string_filter_selectivity`]) turn them into selectivities.
//!
//! Counting stops for a column once a row group holds more than [`MAX_COUNTED`] distinct
//! values, so unique columns (keys, comments) cost little. A column whose values cannot be
//! hashed (or a nested one) is written without a count; counting never fails a write.
//!
//! Every Parquet file strata writes goes through it: the benchmark generators
//! ([`crate::datagen`]) directly, and `CREATE TABLE … AS`, INSERT (plain, OVERWRITE and
//! staged) through [`crate::formats::parquet_sink`].

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use object_store::buffered::BufWriter;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, ArrowWriterOptions,
    compute_leaves,
};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::SerializedFileWriter;

/// A row group's count is recorded when it has at most one distinct value per this many rows.
const REPEATS: usize = 8;

/// Counting stops for a column past this many distinct values in a row group.
const MAX_COUNTED: usize = 16 * 1024;

/// Writes one Parquet file in row groups of a fixed number of rows, with distinct counts.
pub(crate) struct ParquetWriter {
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    out: BufWriter,
    row_group_rows: usize,
    /// The open row group's column writers, one per leaf column.
    columns: Vec<ArrowColumnWriter>,
    /// Per top-level column, the hashes of its values in the open row group; `None` for a
    /// nested column, or once past [`MAX_COUNTED`].
    distinct: Vec<Option<HashSet<u64>>>,
    /// Per top-level column, whether every row group so far recorded its count.
    repeating: Vec<bool>,
    rows: usize,
    row_groups: usize,
    hash_state: RandomState,
    hashes: Vec<u64>,
}

impl ParquetWriter {
    pub(crate) fn try_new(
        out: BufWriter,
        schema: SchemaRef,
        props: WriterProperties,
        row_group_rows: usize,
    ) -> Result<Self> {
        let options = ArrowWriterOptions::new().with_properties(props);
        Self::try_new_with_options(out, schema, options, row_group_rows)
    }

    /// As [`ParquetWriter::try_new`], with the Arrow writer's options (whether to embed the
    /// Arrow schema, …).
    pub(crate) fn try_new_with_options(
        out: BufWriter,
        schema: SchemaRef,
        options: ArrowWriterOptions,
        row_group_rows: usize,
    ) -> Result<Self> {
        let (file, factory) =
            ArrowWriter::try_new_with_options(Vec::new(), Arc::clone(&schema), options)?
                .into_serialized_writer()?;
        let columns = schema.fields().len();
        let mut writer = ParquetWriter {
            file,
            factory,
            schema,
            out,
            row_group_rows: row_group_rows.max(1),
            columns: Vec::new(),
            distinct: Vec::new(),
            repeating: vec![true; columns],
            rows: 0,
            row_groups: 0,
            hash_state: RandomState::default(),
            hashes: Vec::new(),
        };
        writer.open_row_group()?;
        Ok(writer)
    }

    fn open_row_group(&mut self) -> Result<()> {
        self.columns = self.factory.create_column_writers(self.row_groups)?;
        self.distinct = self
            .schema
            .fields()
            .iter()
            .map(|f| (!f.data_type().is_nested()).then(HashSet::new))
            .collect();
        self.rows = 0;
        Ok(())
    }

    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (self.row_group_rows - self.rows).min(batch.num_rows() - offset);
            self.write_rows(&batch.slice(offset, take))?;
            offset += take;
            if self.rows == self.row_group_rows {
                self.flush(false).await?;
                self.open_row_group()?;
            }
        }
        Ok(())
    }

    fn write_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut leaves = self.columns.iter_mut();
        for ((field, array), distinct) in self
            .schema
            .fields()
            .iter()
            .zip(batch.columns())
            .zip(&mut self.distinct)
        {
            for leaf in compute_leaves(field, array)? {
                leaves
                    .next()
                    .ok_or_else(|| ParquetError::General("more leaves than columns".into()))?
                    .write(&leaf)?;
            }
            if let Some(seen) = distinct {
                // A type that cannot be hashed goes without a count.
                let counted = count(array, seen, &self.hash_state, &mut self.hashes);
                if counted.is_err() || seen.len() > MAX_COUNTED {
                    *distinct = None;
                }
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Closes the open row group and hands its bytes to the store; `last` when the file
    /// ends with it.
    async fn flush(&mut self, last: bool) -> Result<()> {
        // The count of a file's only row group is its file's; a last row group, often
        // short, keeps counting the columns every row group before it counted.
        let only = last && self.row_groups == 0;
        let counts: Vec<Option<u64>> = self
            .distinct
            .iter()
            .zip(&mut self.repeating)
            .map(|(seen, repeating)| {
                let count = seen
                    .as_ref()
                    .filter(|s| only || s.len() * REPEATS <= self.rows || (last && *repeating))
                    .map(|s| s.len() as u64);
                *repeating &= count.is_some();
                count
            })
            .collect();
        let chunks = std::mem::take(&mut self.columns)
            .into_iter()
            .map(ArrowColumnWriter::close)
            .collect::<Result<Vec<_>>>()?;
        // Chunks are per leaf column; counts per top-level column, and only a column that
        // is not nested (one leaf) has one.
        let descr = self.file.schema_descr();
        let leaf_counts: Vec<Option<u64>> = (0..chunks.len())
            .map(|leaf| {
                counts
                    .get(descr.get_column_root_idx(leaf))
                    .copied()
                    .flatten()
            })
            .collect();
        let mut row_group = self.file.next_row_group()?;
        for (mut chunk, n) in chunks.into_iter().zip(leaf_counts) {
            if let Some(n) = n {
                with_distinct_count(&mut chunk, n)?;
            }
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.row_groups += 1;
        self.send().await
    }

    async fn send(&mut self) -> Result<()> {
        let bytes = std::mem::take(self.file.inner_mut());
        if !bytes.is_empty() {
            self.out
                .put(Bytes::from(bytes))
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))?;
        }
        Ok(())
    }

    /// The memory the open row group holds: its encoded columns and the values counted.
    pub(crate) fn memory_size(&self) -> usize {
        let columns: usize = self
            .columns
            .iter()
            .map(ArrowColumnWriter::memory_size)
            .sum();
        let counted: usize = self
            .distinct
            .iter()
            .flatten()
            .map(|s| s.capacity() * (std::mem::size_of::<u64>() + 1))
            .sum();
        columns + counted + self.hashes.capacity() * std::mem::size_of::<u64>()
    }

    /// Writes the last row group and the footer, completes the upload, and returns the
    /// file's metadata.
    pub(crate) async fn close(mut self) -> Result<ParquetMetaData> {
        if self.rows > 0 {
            self.flush(true).await?;
        }
        let metadata = self.file.finish()?;
        self.send().await?;
        tokio::io::AsyncWriteExt::shutdown(&mut self.out)
            .await
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(metadata)
    }

    /// Drops the upload.
    pub(crate) async fn abort(mut self) {
        let _ = self.out.abort().await;
    }
}

/// Adds the hashes of an array's non-null values to `seen`.
fn count(
    array: &ArrayRef,
    seen: &mut HashSet<u64>,
    state: &RandomState,
    hashes: &mut Vec<u64>,
) -> Result<()> {
    hashes.clear();
    hashes.resize(array.len(), 0);
    create_hashes([array], state, hashes).map_err(|e| ParquetError::External(Box::new(e)))?;
    match array.logical_nulls() {
        Some(nulls) => seen.extend(
            hashes
                .iter()
                .zip(nulls.iter())
                .filter_map(|(&h, valid)| valid.then_some(h)),
        ),
        None => seen.extend(hashes.iter().copied()),
    }
    Ok(())
}

/// Sets the distinct count of a closed column chunk's statistics.
fn with_distinct_count(chunk: &mut ArrowColumnChunk, n: u64) -> Result<()> {
    let metadata = &mut chunk.close_mut().metadata;
    let Some(statistics) = metadata.statistics() else {
        return Ok(());
    };
    let deprecated = statistics.is_min_max_deprecated();
    fn with<T: Clone>(s: &ValueStatistics<T>, n: u64, deprecated: bool) -> ValueStatistics<T> {
        ValueStatistics::new(
            s.min_opt().cloned(),
            s.max_opt().cloned(),
            Some(n),
            s.null_count_opt(),
            deprecated,
        )
        .with_min_is_exact(s.min_is_exact())
        .with_max_is_exact(s.max_is_exact())
        .with_backwards_compatible_min_max(s.is_min_max_backwards_compatible())
    }
    let statistics = match statistics {
        Statistics::Boolean(s) => Statistics::Boolean(with(s, n, deprecated)),
        Statistics::Int32(s) => Statistics::Int32(with(s, n, deprecated)),
        Statistics::Int64(s) => Statistics::Int64(with(s, n, deprecated)),
        Statistics::Int96(s) => Statistics::Int96(with(s, n, deprecated)),
        Statistics::Float(s) => Statistics::Float(with(s, n, deprecated)),
        Statistics::Double(s) => Statistics::Double(with(s, n, deprecated)),
        Statistics::ByteArray(s) => Statistics::ByteArray(with(s, n, deprecated)),
        Statistics::FixedLenByteArray(s) => Statistics::FixedLenByteArray(with(s, n, deprecated)),
    };
    *metadata = metadata
        .clone()
        .into_builder()
        .set_statistics(statistics)
        .build()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// Writes `rows` rows of a key, a flag of three values and a name of five, in row groups
    /// of `group` rows, and returns the file's bytes.
    async fn written(rows: i64, group: usize) -> Bytes {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Int64, false),
            Field::new("flag", DataType::Utf8, true),
            Field::new("name", DataType::Utf8, false),
        ]));
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("t/part-0.parquet");
        let out = BufWriter::new(Arc::clone(&store), path.clone());
        let mut writer =
            ParquetWriter::try_new(out, Arc::clone(&schema), WriterProperties::default(), group)
                .expect("writer");
        // Batches that do not line up with row groups.
        for start in (0..rows).step_by(7) {
            let keys: Vec<i64> = (start..(start + 7).min(rows)).collect();
            let flags: Vec<Option<&str>> = keys
                .iter()
                .map(|k| [Some("A"), Some("F"), None, Some("O")][(*k % 4) as usize])
                .collect();
            let names: Vec<String> = keys.iter().map(|k| format!("n{}", k % 5)).collect();
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(keys)),
                    Arc::new(StringArray::from(flags)),
                    Arc::new(StringArray::from(names)),
                ],
            )
            .expect("batch");
            writer.write(&batch).await.expect("write");
        }
        writer.close().await.expect("close");
        store
            .get(&path)
            .await
            .expect("file")
            .bytes()
            .await
            .expect("bytes")
    }

    fn distinct_counts(bytes: Bytes) -> Vec<Vec<Option<u64>>> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).expect("footer");
        let rows: usize = builder
            .build()
            .expect("reader")
            .map(|b| b.expect("batch").num_rows())
            .sum();
        let metadata = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("footer")
            .metadata()
            .clone();
        assert_eq!(rows as i64, metadata.file_metadata().num_rows());
        metadata
            .row_groups()
            .iter()
            .map(|rg| {
                rg.columns()
                    .iter()
                    .map(|c| c.statistics().and_then(|s| s.distinct_count_opt()))
                    .collect()
            })
            .collect()
    }

    #[tokio::test]
    async fn repeating_columns_carry_their_distinct_counts() {
        let counts = distinct_counts(written(100, 40).await);
        // Row groups of 40, 40 and 20 rows; the key is unique (no count), the flag has three
        // values besides NULL, the name five (in the last row group too, which is too short
        // to show that its values repeat, because the row groups before it did).
        assert_eq!(
            counts,
            vec![
                vec![None, Some(3), Some(5)],
                vec![None, Some(3), Some(5)],
                vec![None, Some(3), Some(5)],
            ]
        );
    }

    /// A nested column has no count; the flat columns around it keep theirs.
    #[tokio::test]
    async fn flat_columns_beside_a_nested_one_keep_their_counts() {
        use arrow::array::{ArrayRef, StructArray};
        let inner = vec![
            Arc::new(Field::new("a", DataType::Int64, false)),
            Arc::new(Field::new("b", DataType::Utf8, false)),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("s", DataType::Struct(inner.clone().into()), false),
            Field::new("flag", DataType::Utf8, false),
        ]));
        let rows: i64 = 200;
        let names: Vec<String> = (0..rows).map(|k| format!("n{}", k % 5)).collect();
        let flags: Vec<&str> = (0..rows).map(|k| ["A", "F"][(k % 2) as usize]).collect();
        let nested = StructArray::from(vec![
            (
                Arc::clone(&inner[0]),
                Arc::new(Int64Array::from((0..rows).collect::<Vec<_>>())) as ArrayRef,
            ),
            (
                Arc::clone(&inner[1]),
                Arc::new(StringArray::from(vec!["x"; rows as usize])) as ArrayRef,
            ),
        ]);
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(names)),
                Arc::new(nested),
                Arc::new(StringArray::from(flags)),
            ],
        )
        .expect("batch");
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("t/nested.parquet");
        let out = BufWriter::new(Arc::clone(&store), path.clone());
        let mut writer =
            ParquetWriter::try_new(out, schema, WriterProperties::default(), 100).expect("writer");
        writer.write(&batch).await.expect("write");
        let metadata = writer.close().await.expect("close");
        assert_eq!(metadata.file_metadata().num_rows(), rows);
        let bytes = store
            .get(&path)
            .await
            .expect("file")
            .bytes()
            .await
            .expect("bytes");
        // Leaves: name, s.a, s.b, flag.
        assert_eq!(
            distinct_counts(bytes),
            vec![
                vec![Some(5), None, None, Some(2)],
                vec![Some(5), None, None, Some(2)],
            ]
        );
    }

    #[tokio::test]
    async fn a_file_of_one_row_group_counts_every_column() {
        let counts = distinct_counts(written(25, 1000).await);
        assert_eq!(counts, vec![vec![Some(25), Some(3), Some(5)]]);
    }
}
