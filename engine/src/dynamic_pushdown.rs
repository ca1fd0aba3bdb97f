//! Row-level evaluation of join dynamic filters in Parquet scans.
//!
//! A hash join hands its build side's keys to the probe side's scan as a dynamic filter. By
//! default DataFusion uses it only to skip files and row groups by their statistics, because
//! `pushdown_filters` (evaluating predicates while decoding, before the other columns are
//! decoded) is off. Turning that on for every scan is slower overall: static predicates that
//! keep most rows cost more as row filters than as a filter after the scan. A scan whose only
//! predicate is a join's dynamic filter is different. It is typically a fact table under an
//! aggregate or join whose keys the other side narrows to a few (TPC-H Q17: 204 parts of
//! 200,000), and decoding only the rows that can match pays. This rule turns row-level
//! evaluation on for exactly those scans.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_datasource::file::FileSource;

/// Evaluates join dynamic filters row by row in Parquet scans that have no other predicate.
#[derive(Debug, Default)]
pub(crate) struct DynamicFilterRowPushdown;

impl PhysicalOptimizerRule for DynamicFilterRowPushdown {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if config.execution.parquet.pushdown_filters {
            // Every scan evaluates its predicates row by row already.
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let Some(parquet) = scan.file_source().downcast_ref::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let Some(filter) = parquet.filter() else {
                return Ok(Transformed::no(node));
            };
            let conjuncts = split_conjunction(&filter);
            let only_dynamic = !conjuncts.is_empty()
                && conjuncts
                    .iter()
                    .all(|c| c.downcast_ref::<DynamicFilterPhysicalExpr>().is_some());
            if !only_dynamic {
                return Ok(Transformed::no(node));
            }
            let mut scan = scan.clone();
            scan.file_source = Arc::new(parquet.clone().with_pushdown_filters(true));
            let exec = exec.clone().with_data_source(Arc::new(scan));
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "dynamic_filter_row_pushdown"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether each Parquet scan of a plan evaluates its predicate row by row, by table.
    fn pushdown_by_table(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<(String, bool)>) {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>()
            && let Some(parquet) = scan.file_source().downcast_ref::<ParquetSource>()
        {
            let file = scan
                .file_groups
                .iter()
                .flat_map(|g| g.files())
                .next()
                .map(|f| f.object_meta.location.to_string())
                .unwrap_or_default();
            let table = if file.contains("/fact/") {
                "fact"
            } else {
                "dim"
            };
            out.push((
                table.to_string(),
                parquet.table_parquet_options().global.pushdown_filters,
            ));
        }
        for child in plan.children() {
            pushdown_by_table(child, out);
        }
    }

    #[tokio::test]
    async fn only_scans_filtered_by_a_join_alone_evaluate_it_row_by_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().join("wh").to_string_lossy().to_string();
        let session = crate::Session::open(&location).await.expect("session");
        session
            .sql(
                "CREATE TABLE processed.fact AS SELECT value % 100 AS k, value AS v FROM generate_series(1, 20000);
                 CREATE TABLE processed.dim AS SELECT value AS k, value % 7 AS g FROM generate_series(1, 100)",
            )
            .await
            .expect("tables");
        let plan = |sql: &'static str| {
            let session = &session;
            async move {
                let df = session.plan_query(sql).await.expect("plan");
                let plan = df.create_physical_plan().await.expect("physical plan");
                let mut found = vec![];
                pushdown_by_table(&plan, &mut found);
                found.sort();
                found
            }
        };
        // The fact scan's only predicate is the join's dynamic filter; the dimension's is
        // its own static filter.
        assert_eq!(
            plan("SELECT sum(v) FROM processed.fact JOIN processed.dim ON fact.k = dim.k WHERE dim.g = 3").await,
            [("dim".to_string(), false), ("fact".to_string(), true)]
        );
        // A static predicate on the fact scan keeps DataFusion's default.
        assert_eq!(
            plan("SELECT sum(v) FROM processed.fact JOIN processed.dim ON fact.k = dim.k WHERE dim.g = 3 AND fact.v > 10").await,
            [("dim".to_string(), false), ("fact".to_string(), false)]
        );
        let answer = session
            .sql("SELECT sum(v) AS s FROM processed.fact JOIN processed.dim ON fact.k = dim.k WHERE dim.g = 3")
            .await
            .expect("query");
        let expected = session
            .sql("SELECT sum(v) AS s FROM processed.fact WHERE k IN (SELECT k FROM processed.dim WHERE g = 3)")
            .await
            .expect("query");
        assert_eq!(
            arrow::util::pretty::pretty_format_batches(&answer)
                .map(|t| t.to_string())
                .ok(),
            arrow::util::pretty::pretty_format_batches(&expected)
                .map(|t| t.to_string())
                .ok()
        );
    }
}
