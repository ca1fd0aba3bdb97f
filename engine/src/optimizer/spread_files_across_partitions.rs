//! Every partition of a scan that join filters may prune reads a share of every file.
//!
//! DataFusion spreads a scan's files over its partitions as contiguous byte ranges of the
//! file list: with two partitions and a fact table in seven `year=` folders, the first
//! partition reads the first three and a half years and the second the rest. A join's dynamic
//! filter then prunes whole files while the query runs: a filter on one early year leaves
//! the second partition nothing to do.
//!
//! [`SpreadFilesAcrossPartitions`] runs after DataFusion's rules, once scans are final. For a
//! Parquet scan of several files in two or more partitions whose predicate holds the dynamic
//! filter of a join with a filtered build side, on a column whose value ranges, by the files'
//! statistics, lie apart from file to file ([`files_apart`]: dates in `year=` folders), it
//! gives each partition one byte range of every file (a row group is read by the range its
//! start falls in, so every row is read once), whole files under [`SPLIT_MIN_BYTES`] going
//! round the partitions in turn. Scans with an output order, hash-partitioned scans and scans
//! whose ranges do not cover their files are left as they are.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, DynamicFilterPhysicalExpr};
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use datafusion_datasource::file::FileSource;

/// Files smaller than this are read whole by one partition: split, each would be opened by
/// every partition for little to read.
const SPLIT_MIN_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct SpreadFilesAcrossPartitions;

impl PhysicalOptimizerRule for SpreadFilesAcrossPartitions {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let narrowed = narrowing_filters(&plan)?;
        if narrowed.is_empty() {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            match spread(exec, &narrowed)? {
                Some(spread) => Ok(Transformed::yes(spread)),
                None => Ok(Transformed::no(node)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "spread_files_across_partitions"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The ids of the dynamic filters of joins whose build side is filtered: only those can
/// select a part of the files. A join with a whole, unfiltered dimension publishes every key
/// and prunes no file.
fn narrowing_filters(plan: &Arc<dyn ExecutionPlan>) -> Result<HashSet<u64>> {
    let mut ids = HashSet::new();
    plan.apply(|node| {
        if let Some(join) = node.downcast_ref::<HashJoinExec>() {
            let mut filtered = false;
            join.left().apply(|below| {
                filtered |= below.downcast_ref::<FilterExec>().is_some()
                    || below
                        .downcast_ref::<DataSourceExec>()
                        .and_then(|e| e.data_source().downcast_ref::<FileScanConfig>())
                        .and_then(|s| {
                            crate::optimizer::split_switched_scans::parquet_source(s.file_source())
                        })
                        .and_then(|p| p.filter())
                        .is_some_and(|predicate| {
                            // Join filters from elsewhere do not narrow the build side by
                            // themselves.
                            split_conjunction(&predicate)
                                .into_iter()
                                .any(|condition| !holds_join_filter(condition))
                        });
                Ok(if filtered {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })?;
            if filtered {
                ids.extend(
                    join.dynamic_expressions_produced()
                        .into_iter()
                        .filter_map(|e| e.expression_id()),
                );
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(ids)
}

/// Whether an expression holds a join's dynamic filter.
fn holds_join_filter(expr: &Arc<dyn PhysicalExpr>) -> bool {
    let mut found = false;
    let _ = expr.apply(|e| {
        found |= e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some();
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

fn spread(
    exec: &DataSourceExec,
    narrowed: &HashSet<u64>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>() else {
        return Ok(None);
    };
    let partitions = scan.file_groups.len();
    if partitions < 2
        || !scan.output_ordering.is_empty()
        || !matches!(
            exec.properties().output_partitioning(),
            Partitioning::UnknownPartitioning(_)
        )
    {
        return Ok(None);
    }
    let Some(parquet) = crate::optimizer::split_switched_scans::parquet_source(scan.file_source())
    else {
        return Ok(None);
    };
    let Some(predicate) = parquet.filter() else {
        return Ok(None);
    };
    // The columns the join filters test.
    let mut keys: Vec<String> = Vec::new();
    predicate.apply(|e| {
        if let Some(filter) = e.downcast_ref::<DynamicFilterPhysicalExpr>()
            && e.expression_id().is_some_and(|id| narrowed.contains(&id))
        {
            for child in filter.children() {
                if let Some(column) = child.downcast_ref::<Column>() {
                    keys.push(column.name().to_string());
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let all_files: Vec<&PartitionedFile> =
        scan.file_groups.iter().flat_map(|g| g.files()).collect();
    if !keys.iter().any(|k| files_apart(&all_files, scan, k)) {
        return Ok(None);
    }
    // The files in their order, with the bytes their ranges cover.
    let mut files: Vec<(PartitionedFile, u64)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for file in all_files {
        let size = file.object_meta.size;
        let covered = match &file.range {
            None => size,
            Some(r) if r.start >= 0 && r.end >= r.start => (r.end - r.start) as u64,
            Some(_) => return Ok(None),
        };
        let key = file.object_meta.location.to_string();
        match at.get(&key) {
            Some(&i) => files[i].1 += covered,
            None => {
                at.insert(key, files.len());
                files.push((file.clone(), covered));
            }
        }
    }
    if files.len() < 2
        || files
            .iter()
            .any(|(f, covered)| *covered != f.object_meta.size)
    {
        return Ok(None);
    }
    let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); partitions];
    let mut next = 0;
    for (file, _) in files {
        let size = file.object_meta.size;
        if size < SPLIT_MIN_BYTES {
            let mut whole = file;
            whole.range = None;
            groups[next % partitions].push(whole);
            next += 1;
            continue;
        }
        let Ok(size) = i64::try_from(size) else {
            return Ok(None);
        };
        let parts = partitions as i64;
        for (p, group) in groups.iter_mut().enumerate() {
            let p = p as i64;
            let (start, end) = (size * p / parts, size * (p + 1) / parts);
            if end > start {
                group.push(file.clone().with_range(start, end));
            }
        }
    }
    let mut scan = scan.clone();
    scan.file_groups = groups.into_iter().map(FileGroup::new).collect();
    Ok(Some(Arc::new(
        exec.clone().with_data_source(Arc::new(scan)),
    )))
}

/// Whether the files' value ranges of `column` lie apart, by their statistics: then a join
/// filter on it, narrow enough, prunes whole files. Where every file spans the column's
/// range (keys of a dimension in a fact table), it prunes none, and the scan keeps its
/// contiguous ranges, which open fewer files per partition.
fn files_apart(files: &[&PartitionedFile], scan: &FileScanConfig, column: &str) -> bool {
    let Ok(index) = scan.file_schema().index_of(column) else {
        return false;
    };
    let mut ranges = Vec::new();
    for file in files {
        let Some(stats) = file
            .statistics
            .as_ref()
            .and_then(|s| s.column_statistics.get(index))
        else {
            return false;
        };
        match (stats.min_value.get_value(), stats.max_value.get_value()) {
            (Some(min), Some(max)) if !min.is_null() && !max.is_null() => {
                ranges.push((min.clone(), max.clone()))
            }
            _ => return false,
        }
    }
    // Apart: no file spans more than half of the values of all files (a year of seven);
    // for values without a distance (strings), no two files' ranges overlap.
    let (Some(lowest), Some(highest)) = (
        ranges
            .iter()
            .map(|r| &r.0)
            .min_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal)),
        ranges
            .iter()
            .map(|r| &r.1)
            .max_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal)),
    ) else {
        return false;
    };
    if let Some(all) = lowest.distance(highest) {
        return ranges.len() >= 2
            && ranges.iter().all(|(min, max)| {
                min.distance(max)
                    .is_some_and(|d| d.saturating_mul(2) <= all)
            });
    }
    ranges.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    ranges.len() >= 2
        && ranges
            .windows(2)
            .all(|w| w[0].1.partial_cmp(&w[1].0) == Some(Ordering::Less))
}

#[cfg(test)]
mod tests {
    use crate::test_support::{physical_plan, pretty, scratch_session, shown};

    #[tokio::test]
    async fn files_whose_keys_lie_apart_are_dealt_to_every_partition() {
        let (_dir, session) = scratch_session().await;
        session
            .context()
            .sql("SET datafusion.execution.target_partitions = 2")
            .await
            .expect("set");
        session
            .sql(
                "CREATE TABLE processed.facts STORED AS parquet PARTITIONED BY (yr) AS SELECT value AS id, value AS day, value / 1000 AS yr FROM generate_series(0, 3999) ORDER BY value % 7;
                 CREATE TABLE processed.days STORED AS parquet AS SELECT value AS day, value / 100 AS month FROM generate_series(0, 3999) ORDER BY value % 7",
            )
            .await
            .expect("tables");
        // The days of month 10 lie in the folder yr=1 alone: the join filter prunes the other
        // three files while the query runs. Listed in order, yr=0 and yr=1 would both go to
        // the first partition and leave the second idle.
        let query = "SELECT count(*) AS n, sum(f.id) AS total FROM processed.facts f JOIN processed.days d ON f.day = d.day
                     WHERE d.month = 10";
        let shown = shown(&physical_plan(&session, query).await);
        let scan = shown
            .lines()
            .find(|l| l.contains("DataSourceExec") && l.contains("yr=1"))
            .expect("the facts scan");
        let groups = &scan[scan.find("[[").expect("groups")..];
        let first = &groups[..groups.find("], [").expect("two groups")];
        assert!(
            first.contains("yr=0") && first.contains("yr=2") && !first.contains("yr=1"),
            "{shown}"
        );
        let batches = session.sql(query).await.expect("query");
        let text = pretty(&batches);
        // Days 1000 to 1099: 100 rows whose ids sum to 100 × 1049.5.
        assert!(text.contains("| 100 | 104950 |"), "{text}");
    }
}
