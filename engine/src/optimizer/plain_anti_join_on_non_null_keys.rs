//! `NOT IN` subqueries on keys the files prove free of NULLs become plain anti joins.
//!
//! `x NOT IN (SELECT y …)` keeps no row when `y` yields a NULL, and no row whose `x` is NULL
//! unless the subquery yields no rows at all, so DataFusion plans a NULL-aware anti join
//! unless both columns are declared NOT NULL. strata declares every column of a table over
//! files nullable (a file written later may hold NULLs where the first did not), so every
//! `NOT IN` became NULL-aware. Such a join cannot swap its sides: it hashes all of the outer
//! query's rows in one table, however few rows the subquery has to probe it with, and emits
//! the survivors from one partition, so whatever is above it runs on one thread.
//!
//! [`PlainAntiJoinOnNonNullKeys`] runs before DataFusion's join selection. For a NULL-aware
//! anti join on one pair of key columns that come, through column projections, filters,
//! repartitions, sorts, the group keys of aggregates (`NOT IN (SELECT DISTINCT k …)`) and
//! inner, semi and anti joins, from file columns of scans in which
//! every file the scan reads records exactly zero NULLs ([`no_nulls`]), it drops the NULL
//! awareness: with no NULLs on either side, `NOT IN` and `NOT EXISTS` agree. Join selection
//! may then hash the smaller side. Anything it cannot prove (computed keys, outer joins,
//! partition values, files without statistics) leaves the join NULL-aware.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::JoinType;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;

#[derive(Debug, Default)]
pub(crate) struct PlainAntiJoinOnNonNullKeys;

impl PhysicalOptimizerRule for PlainAntiJoinOnNonNullKeys {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if !join.null_aware || join.on().len() != 1 {
                return Ok(Transformed::no(node));
            }
            let (left_key, right_key) = &join.on()[0];
            let (Some(left), Some(right)) = (
                left_key.downcast_ref::<Column>(),
                right_key.downcast_ref::<Column>(),
            ) else {
                return Ok(Transformed::no(node));
            };
            if !no_nulls(join.left(), left.index()) || !no_nulls(join.right(), right.index()) {
                return Ok(Transformed::no(node));
            }
            let plain = join.builder().with_null_aware(false).build()?;
            Ok(Transformed::yes(Arc::new(plain) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "plain_anti_join_on_non_null_keys"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether output column `index` of `plan` provably holds no NULL: it is a file column passed
/// up unchanged from a scan whose every file records zero NULLs in it, through operators
/// that add no NULLs (group keys of aggregates among them). Anything else (computed
/// columns, outer joins, aggregate values, grouping sets, partition values, files without
/// statistics) is not proven.
fn no_nulls(plan: &Arc<dyn ExecutionPlan>, index: usize) -> bool {
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>() {
        return scan_has_no_nulls(exec, index);
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        return projection
            .expr()
            .get(index)
            .and_then(|p| p.expr.downcast_ref::<Column>())
            .is_some_and(|c| no_nulls(projection.input(), c.index()));
    }
    if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        let index = match filter.projection() {
            Some(projection) => match projection.get(index) {
                Some(i) => *i,
                None => return false,
            },
            None => index,
        };
        return no_nulls(filter.input(), index);
    }
    if plan.downcast_ref::<RepartitionExec>().is_some()
        || plan.downcast_ref::<CoalescePartitionsExec>().is_some()
        || plan.downcast_ref::<SortExec>().is_some()
    {
        return plan
            .children()
            .first()
            .is_some_and(|child| no_nulls(child, index));
    }
    if let Some(aggregate) = plan.downcast_ref::<AggregateExec>() {
        // A group key passed up unchanged, with no grouping sets that set it to NULL: its
        // values are its input's.
        let group_by = aggregate.group_expr();
        if !group_by.is_single() {
            return false;
        }
        return group_by
            .expr()
            .get(index)
            .and_then(|(expr, _)| expr.downcast_ref::<Column>())
            .is_some_and(|c| no_nulls(aggregate.input(), c.index()));
    }
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        let index = match &join.projection {
            Some(projection) => match projection.get(index) {
                Some(i) => *i,
                None => return false,
            },
            None => index,
        };
        let left_width = join.left().schema().fields().len();
        return match join.join_type() {
            // Columns of either side, never padded with NULLs.
            JoinType::Inner if index < left_width => no_nulls(join.left(), index),
            JoinType::Inner => no_nulls(join.right(), index - left_width),
            // Only the left side's columns.
            JoinType::LeftSemi | JoinType::LeftAnti => no_nulls(join.left(), index),
            JoinType::RightSemi | JoinType::RightAnti => no_nulls(join.right(), index),
            _ => false,
        };
    }
    false
}

/// Whether output column `index` of a file scan is a file column every file of the scan
/// records zero NULLs in.
fn scan_has_no_nulls(exec: &DataSourceExec, index: usize) -> bool {
    let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>() else {
        return false;
    };
    let name = {
        let Some(projection) = scan.file_source().projection() else {
            return false;
        };
        let Some(column) = projection
            .iter()
            .nth(index)
            .and_then(|p| p.expr.downcast_ref::<Column>())
        else {
            return false;
        };
        column.name().to_string()
    };
    // Partition values are not file columns (and may be NULL).
    let Ok(column) = scan.file_schema().index_of(&name) else {
        return false;
    };
    let mut files = scan.file_groups.iter().flat_map(|g| g.iter()).peekable();
    if files.peek().is_none() {
        return false;
    }
    files.all(|file| {
        file.statistics
            .as_ref()
            .and_then(|s| s.column_statistics.get(column))
            .is_some_and(|c| c.null_count == Precision::Exact(0))
    })
}

#[cfg(test)]
mod tests {
    use crate::test_support::{physical_plan, pretty, scratch_session, shown};

    /// `NOT IN` over keys without NULLs is planned as a plain anti join that hashes the small
    /// side; with a NULL on either side it stays NULL-aware, and the answers follow SQL's rules.
    #[tokio::test]
    async fn not_in_on_keys_without_nulls_is_a_plain_anti_join() {
        let (_dir, session) = scratch_session().await;
        session
            .sql(
                "CREATE TABLE processed.big AS SELECT value AS k, value % 7 AS g FROM generate_series(1, 50000);
                 CREATE TABLE processed.few AS SELECT value * 1000 AS k FROM generate_series(1, 4);
                 CREATE TABLE processed.few_null AS SELECT CASE WHEN value = 1 THEN NULL ELSE value * 1000 END AS k FROM generate_series(1, 4);
                 CREATE TABLE processed.big_null AS SELECT CASE WHEN value = 1 THEN NULL ELSE value END AS k FROM generate_series(1, 50000)",
            )
            .await
            .expect("tables");
        let query =
            "SELECT count(*) AS n FROM processed.big WHERE k NOT IN (SELECT k FROM processed.few)";
        let plan = shown(&physical_plan(&session, query).await);
        assert!(!plan.contains("null_aware"), "{plan}");
        assert!(
            plan.contains("RightAnti"),
            "the four keys are hashed: {plan}"
        );
        let answer = pretty(&session.sql(query).await.expect("query"));
        assert!(answer.contains("| 49996 |"), "{answer}");
        // A NULL among the subquery's keys: no row is kept.
        let query = "SELECT count(*) AS n FROM processed.big WHERE k NOT IN (SELECT k FROM processed.few_null)";
        let plan = shown(&physical_plan(&session, query).await);
        assert!(plan.contains("null_aware"), "{plan}");
        let answer = pretty(&session.sql(query).await.expect("query"));
        assert!(answer.contains("| 0 |"), "{answer}");
        // A NULL among the outer keys: that row is not kept either.
        let query = "SELECT count(*) AS n FROM processed.big_null WHERE k NOT IN (SELECT k FROM processed.few)";
        let plan = shown(&physical_plan(&session, query).await);
        assert!(plan.contains("null_aware"), "{plan}");
        let answer = pretty(&session.sql(query).await.expect("query"));
        assert!(answer.contains("| 49995 |"), "{answer}");
        // Keys passed up through DISTINCT and GROUP BY are still proven; a grouping set may add
        // NULLs.
        for (query, expected) in [
            (
                "SELECT count(*) AS n FROM processed.big WHERE k NOT IN (SELECT DISTINCT k FROM processed.few)",
                "| 49996 |",
            ),
            (
                "SELECT count(*) AS n FROM processed.big WHERE k NOT IN (SELECT k FROM processed.big WHERE g = 2 GROUP BY k)",
                "| 42857 |",
            ),
        ] {
            let plan = shown(&physical_plan(&session, query).await);
            assert!(!plan.contains("null_aware"), "{plan}");
            let answer = pretty(&session.sql(query).await.expect("query"));
            assert!(answer.contains(expected), "{answer}");
        }
        let query = "SELECT count(*) AS n FROM processed.big WHERE k NOT IN (SELECT k FROM processed.few GROUP BY ROLLUP (k))";
        let plan = shown(&physical_plan(&session, query).await);
        assert!(plan.contains("null_aware"), "{plan}");
        let answer = pretty(&session.sql(query).await.expect("query"));
        assert!(answer.contains("| 0 |"), "{answer}");
        // Keys passed up through a filter and an inner join are still proven.
        let query = "SELECT count(*) AS n FROM processed.big b JOIN processed.big c ON b.k = c.k WHERE c.g = 3 AND b.k NOT IN (SELECT k FROM processed.few)";
        let plan = shown(&physical_plan(&session, query).await);
        assert!(!plan.contains("null_aware"), "{plan}");
        let answer = pretty(&session.sql(query).await.expect("query"));
        let expected = pretty(
            &session
                .sql("SELECT count(*) AS n FROM processed.big WHERE g = 3 AND k NOT IN (1000, 2000, 3000, 4000)")
                .await
                .expect("query"),
        );
        assert_eq!(answer, expected);
    }
}
