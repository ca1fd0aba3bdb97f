//! Row-level join filters chosen range by range.
//!
//! [`DynamicFilterRowPushdown`](crate::optimizer::dynamic_filter_row_pushdown) has a Parquet
//! scan evaluate its join filters row by row, and each join filter switches itself off once
//! it keeps too many rows. But arrow-rs fixes a reader's row filter when the file is opened:
//! with every join filter off, the reader still decodes the filter's columns first, runs a
//! filter that lets every row through, and only then decodes the other columns. A table
//! stored as one large file is read as one byte range per partition, so a filter that
//! switches off in its first row group still shapes how the whole table is decoded.
//!
//! [`SwitchedParquetSource`] holds the scan twice, with and without the row filter, and
//! chooses at each file range it opens: the row filter while one of its join filters is
//! still on, the plain reader once all are off. The answer is the same either way: the joins
//! whose filters they are drop every row the filters would have. [`SplitSwitchedScans`],
//! which runs after every rule that lays out a scan's files, cuts the first file range of
//! each of such scans' partitions in two: a first piece of an eighth ([`FIRST_PIECE_SHARE`]),
//! at least [`MIN_PIECE_BYTES`], on which the join filters are judged, and the rest, opened
//! after it with the reader the judgement chose, like every later range. Where the scan's
//! partitions share one queue of ranges (DataFusion's default), the first pieces go to the
//! front of it. Two pieces rather than many, because each range opened costs its own pruning
//! and reader set-up, which a scan whose filters stay on pays for every piece.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::DisplayFormatType;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_datasource::TableSchema;
use datafusion_datasource::file::FileSource;
use datafusion_datasource::file_stream::FileOpener;
use datafusion_datasource::morsel::{MorselPlanner, Morselizer};
use object_store::ObjectStore;

/// Whether a scan's row filter still has a join filter switched on.
pub(crate) trait RowFilterState: Send + Sync + fmt::Debug {
    fn any_on(&self) -> bool;
}

/// A Parquet scan that evaluates its join filters row by row only while one of them is on,
/// choosing anew at each file range it opens.
#[derive(Debug, Clone)]
pub(crate) struct SwitchedParquetSource {
    /// The scan with its row filter (`pushdown_filters` on).
    filtered: ParquetSource,
    /// The same scan without it: its predicate still prunes files and row groups.
    plain: ParquetSource,
    state: Arc<dyn RowFilterState>,
    /// The first pieces of the cut file ranges (path and start), read before the rest where
    /// the scan's partitions share one queue of ranges.
    first_pieces: Arc<HashSet<PieceKey>>,
}

impl SwitchedParquetSource {
    /// `filtered` and `plain` must be the same scan but for `pushdown_filters`; they share
    /// their metrics.
    pub(crate) fn new(
        filtered: ParquetSource,
        plain: ParquetSource,
        state: Arc<dyn RowFilterState>,
    ) -> Self {
        Self {
            filtered,
            plain,
            state,
            first_pieces: Arc::default(),
        }
    }

    /// The scan as it reads while its row filter is on.
    pub(crate) fn filtered(&self) -> &ParquetSource {
        &self.filtered
    }
}

/// The Parquet source of a scan, seen through a [`SwitchedParquetSource`].
pub(crate) fn parquet_source(source: &Arc<dyn FileSource>) -> Option<&ParquetSource> {
    source.downcast_ref::<ParquetSource>().or_else(|| {
        source
            .downcast_ref::<SwitchedParquetSource>()
            .map(SwitchedParquetSource::filtered)
    })
}

impl FileSource for SwitchedParquetSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        self.filtered
            .create_file_opener(object_store, base_config, partition)
    }

    fn create_morselizer(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Box<dyn Morselizer>> {
        Ok(Box::new(SwitchedMorselizer {
            filtered: self.filtered.create_morselizer(
                Arc::clone(&object_store),
                base_config,
                partition,
            )?,
            plain: self
                .plain
                .create_morselizer(object_store, base_config, partition)?,
            state: Arc::clone(&self.state),
        }))
    }

    fn table_schema(&self) -> &TableSchema {
        self.filtered.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let (Some(filtered), Some(plain)) = (
            self.filtered
                .with_batch_size(batch_size)
                .downcast_ref::<ParquetSource>()
                .cloned(),
            self.plain
                .with_batch_size(batch_size)
                .downcast_ref::<ParquetSource>()
                .cloned(),
        ) else {
            // ParquetSource returns itself; if that ever changes, read with the row filter.
            return self.filtered.with_batch_size(batch_size);
        };
        Arc::new(Self {
            filtered,
            plain,
            state: Arc::clone(&self.state),
            first_pieces: Arc::clone(&self.first_pieces),
        })
    }

    fn filter(&self) -> Option<Arc<dyn PhysicalExpr>> {
        self.filtered.filter()
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        self.filtered.projection()
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        self.filtered.metrics()
    }

    fn file_type(&self) -> &str {
        self.filtered.file_type()
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.filtered.fmt_extra(t, f)
    }

    fn supports_repartitioning(&self) -> bool {
        self.filtered.supports_repartitioning()
    }

    /// Where the partitions share one queue of file ranges, every range's first piece comes
    /// first: the join filters are judged on them before any range's rest is opened.
    fn reorder_files(&self, files: Vec<PartitionedFile>) -> Vec<PartitionedFile> {
        let files = self.filtered.reorder_files(files);
        if self.first_pieces.is_empty() {
            return files;
        }
        let (mut first, rest): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|f| self.first_pieces.contains(&piece_key(f)));
        first.extend(rest);
        first
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.filtered.apply_expressions(f)
    }
}

/// Plans each file range with the row filter or without it, by the join filters' state at
/// the time.
#[derive(Debug)]
struct SwitchedMorselizer {
    filtered: Box<dyn Morselizer>,
    plain: Box<dyn Morselizer>,
    state: Arc<dyn RowFilterState>,
}

impl Morselizer for SwitchedMorselizer {
    fn plan_file(&self, file: PartitionedFile) -> Result<Box<dyn MorselPlanner>> {
        if self.state.any_on() {
            self.filtered.plan_file(file)
        } else {
            self.plain.plan_file(file)
        }
    }
}

/// The first piece of a file range takes one part in this many of it…
const FIRST_PIECE_SHARE: u64 = 8;

/// …but at least this many bytes, so that the join filters have rows to be judged on before
/// the rest is opened. Ranges under twice this size are not cut.
const MIN_PIECE_BYTES: u64 = 4 * 1024 * 1024;

/// Cuts the file ranges of switched scans in two (see the module's documentation). It runs
/// after every rule that lays out a scan's files.
#[derive(Debug)]
pub(crate) struct SplitSwitchedScans {
    min_piece_bytes: u64,
}

impl Default for SplitSwitchedScans {
    fn default() -> Self {
        Self {
            min_piece_bytes: MIN_PIECE_BYTES,
        }
    }
}

impl PhysicalOptimizerRule for SplitSwitchedScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            if scan
                .file_source()
                .downcast_ref::<SwitchedParquetSource>()
                .is_none()
            {
                return Ok(Transformed::no(node));
            }
            let Some((groups, first_pieces)) =
                split_groups(&scan.file_groups, self.min_piece_bytes)
            else {
                return Ok(Transformed::no(node));
            };
            let mut scan = scan.clone();
            if let Some(switched) = scan.file_source().downcast_ref::<SwitchedParquetSource>() {
                let mut switched = switched.clone();
                switched.first_pieces = Arc::new(first_pieces);
                scan.file_source = Arc::new(switched);
            }
            scan.file_groups = groups;
            Ok(Transformed::yes(
                Arc::new(exec.clone().with_data_source(Arc::new(scan))) as Arc<dyn ExecutionPlan>,
            ))
        })
        .data()
    }

    fn name(&self) -> &str {
        "split_switched_scans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Identifies a piece of a file: its path and where it starts.
type PieceKey = (String, i64);

fn piece_key(file: &PartitionedFile) -> PieceKey {
    (
        file.object_meta.location.to_string(),
        file.range.as_ref().map_or(0, |r| r.start),
    )
}

/// The groups with the first file range of each cut in two, if it has at least twice
/// `min_piece` bytes: a first piece of an eighth of it, at least `min_piece` bytes, and the
/// rest; and the first pieces' keys. `None` if nothing is cut. Only a group's first range is
/// cut: the join filters are judged on it, and every later range (a table of several files
/// is read as many) is opened after that anyway. A row group is read by the range its first
/// page lies in, so every row is still read once.
fn split_groups(
    groups: &[FileGroup],
    min_piece: u64,
) -> Option<(Vec<FileGroup>, HashSet<PieceKey>)> {
    let mut first_pieces = HashSet::new();
    let groups = groups
        .iter()
        .map(|group| {
            let mut files = Vec::with_capacity(group.len() + 1);
            for (i, file) in group.iter().enumerate() {
                let (start, end) = match &file.range {
                    Some(r) => (r.start, r.end),
                    None => (0, i64::try_from(file.object_meta.size).unwrap_or(i64::MAX)),
                };
                let len = u64::try_from(end.saturating_sub(start)).unwrap_or(0);
                if i > 0 || min_piece == 0 || len < 2 * min_piece {
                    files.push(file.clone());
                    continue;
                }
                let first = (len / FIRST_PIECE_SHARE).max(min_piece);
                let cut = start.saturating_add(i64::try_from(first).unwrap_or(i64::MAX));
                let head = file.clone().with_range(start, cut);
                first_pieces.insert(piece_key(&head));
                files.push(head);
                files.push(file.clone().with_range(cut, end));
            }
            let split = FileGroup::new(files);
            // The same rows, so the group's statistics still hold.
            match group.file_statistics(None) {
                Some(statistics) => split.with_statistics(Arc::new(statistics.clone())),
                None => split,
            }
        })
        .collect();
    (!first_pieces.is_empty()).then_some((groups, first_pieces))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::collect;
    use object_store::ObjectMeta;
    use object_store::path::Path;

    fn file(size: u64) -> PartitionedFile {
        PartitionedFile::from(ObjectMeta {
            location: Path::from("t/part-0.parquet"),
            last_modified: chrono::Utc::now(),
            size,
            e_tag: None,
            version: None,
        })
    }

    /// The byte ranges of each group, in order.
    fn ranges(groups: &[FileGroup]) -> Vec<Vec<(i64, i64)>> {
        groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|f| f.range.as_ref().map_or((-1, -1), |r| (r.start, r.end)))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn large_ranges_are_cut_in_two_and_first_pieces_go_first() {
        // A file read whole: a first piece of an eighth, at least 10 bytes, and the rest.
        let groups = vec![FileGroup::new(vec![file(35)])];
        let (cut, first) = split_groups(&groups, 10).expect("cut");
        assert_eq!(ranges(&cut), [vec![(0, 10), (10, 35)]]);
        let (cut, _) = split_groups(&[FileGroup::new(vec![file(1_000)])], 10).expect("cut");
        assert_eq!(ranges(&cut), [vec![(0, 125), (125, 1_000)]]);
        assert!(first.contains(&("t/part-0.parquet".to_string(), 0)));
        // Two partitions' halves of one file: each cut within its own half.
        let groups = vec![
            FileGroup::new(vec![file(100).with_range(0, 50)]),
            FileGroup::new(vec![file(100).with_range(50, 100)]),
        ];
        let (cut, first) = split_groups(&groups, 20).expect("cut");
        assert_eq!(
            ranges(&cut),
            [vec![(0, 20), (20, 50)], vec![(50, 70), (70, 100)]]
        );
        // A shared queue takes both first pieces before either rest.
        let mut source = SwitchedParquetSource::new(
            ParquetSource::new(Arc::new(Schema::empty())),
            ParquetSource::new(Arc::new(Schema::empty())),
            Arc::new(AlwaysOn),
        );
        source.first_pieces = Arc::new(first);
        let queue = source.reorder_files(cut.iter().flat_map(|g| g.iter().cloned()).collect());
        let starts: Vec<i64> = queue
            .iter()
            .map(|f| f.range.as_ref().map_or(-1, |r| r.start))
            .collect();
        assert_eq!(starts, [0, 50, 20, 70]);
        // Ranges under twice the smallest piece stay as they are, and so do ranges after a
        // group's first.
        let groups = vec![FileGroup::new(vec![file(39), file(100)])];
        assert!(split_groups(&groups, 20).is_none());
    }

    #[derive(Debug)]
    struct AlwaysOn;

    impl RowFilterState for AlwaysOn {
        fn any_on(&self) -> bool {
            true
        }
    }

    /// Rows the fact scan's row filter evaluated, and rows the scan yielded.
    fn fact_scan_rows(plan: &Arc<dyn ExecutionPlan>) -> Option<(usize, usize)> {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && exec
                .data_source()
                .downcast_ref::<FileScanConfig>()
                .is_some_and(|s| {
                    s.file_source()
                        .downcast_ref::<SwitchedParquetSource>()
                        .is_some()
                })
        {
            let metrics = exec.metrics()?;
            let evaluated = ["pushdown_rows_pruned", "pushdown_rows_matched"]
                .iter()
                .filter_map(|name| metrics.sum_by_name(name))
                .map(|v| v.as_usize())
                .sum();
            return Some((evaluated, metrics.output_rows()?));
        }
        plan.children().into_iter().find_map(fact_scan_rows)
    }

    /// A join filter that keeps every row switches itself off, and the file ranges opened
    /// after that are read without the row filter; one that keeps few rows filters them all.
    #[tokio::test]
    async fn ranges_opened_after_the_join_filter_is_off_skip_the_row_filter() {
        let (dir, session) = crate::test_support::scratch_session().await;
        // One partition reads the pieces one after the other, on any machine.
        session
            .sql("SET datafusion.execution.target_partitions = 1")
            .await
            .expect("set");
        // 600,000 rows in row groups of 10,000, keys 0 to 99.
        let folder = dir.path().join("fact");
        std::fs::create_dir_all(&folder).expect("folder");
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(10_000))
            .build();
        let out = std::fs::File::create(folder.join("part-0.parquet")).expect("file");
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(out, Arc::clone(&schema), Some(props))
                .expect("writer");
        for chunk in 0..60i64 {
            let v = Int64Array::from_iter_values(chunk * 10_000..(chunk + 1) * 10_000);
            let k = Int64Array::from_iter_values(v.values().iter().map(|v| v % 100));
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(k), Arc::new(v)])
                .expect("batch");
            writer.write(&batch).expect("write");
        }
        writer.close().expect("close");
        // A first piece of two fifths of the file: 240,000 rows, enough to judge the filter.
        let size = std::fs::metadata(folder.join("part-0.parquet"))
            .expect("size")
            .len();
        session
            .sql(&format!(
                "CREATE EXTERNAL TABLE processed.fact STORED AS PARQUET LOCATION '{}';
                 CREATE TABLE processed.dim AS SELECT value AS k, value * 7 % 100 AS g FROM generate_series(0, 99)",
                folder.display()
            ))
            .await
            .expect("tables");
        let run = |sql: &'static str| {
            let session = &session;
            async move {
                let df = session.plan_query(sql).await.expect("plan");
                let task = df.task_ctx();
                let plan = df.create_physical_plan().await.expect("physical plan");
                let plan = SplitSwitchedScans {
                    min_piece_bytes: size * 2 / 5,
                }
                .optimize(plan, &ConfigOptions::default())
                .expect("split");
                let ranges = crate::test_support::shown(&plan)
                    .matches("part-0.parquet:")
                    .count();
                assert_eq!(ranges, 2, "{}", crate::test_support::shown(&plan));
                let batches = collect(Arc::clone(&plan), Arc::new(task))
                    .await
                    .expect("run");
                let (evaluated, yielded) = fact_scan_rows(&plan).expect("a switched fact scan");
                (crate::test_support::pretty(&batches), evaluated, yielded)
            }
        };
        let expected = |sql: &'static str| {
            let session = &session;
            async move { crate::test_support::pretty(&session.sql(sql).await.expect("query")) }
        };
        // Every key joins: the filter is judged after 100,000 rows and switched off; the
        // rest of the file is read without the row filter.
        let (answer, evaluated, yielded) =
            run("SELECT count(*) AS n, sum(v) AS s FROM processed.fact JOIN processed.dim ON fact.k = dim.k").await;
        assert_eq!(
            answer,
            expected("SELECT count(*) AS n, sum(v) AS s FROM processed.fact").await
        );
        assert!(answer.contains("600000"), "{answer}");
        assert_eq!(yielded, 600_000);
        assert!(
            (100_000..400_000).contains(&evaluated),
            "the row filter saw {evaluated} rows"
        );
        // One key of 100 joins: the filter stays on for the rest too.
        let (answer, evaluated, yielded) =
            run("SELECT count(*) AS n, sum(v) AS s FROM processed.fact JOIN processed.dim ON fact.k = dim.k WHERE dim.g = 49").await;
        assert_eq!(
            answer,
            expected("SELECT count(*) AS n, sum(v) AS s FROM processed.fact WHERE k = 7").await
        );
        assert!(answer.contains("6000"), "{answer}");
        assert_eq!(evaluated, 600_000);
        assert_eq!(yielded, 6_000);
    }
}
