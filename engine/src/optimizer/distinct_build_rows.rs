//! A hash join that only asks whether a build row exists hashes the build side's distinct
//! rows.
//!
//! A right semi, right anti or right mark join (`x IN (SELECT y …)`, `NOT EXISTS …` with the
//! subquery hashed) keeps or drops each probe row by whether some build row matches it; which
//! build rows match, and how many, changes nothing. DataFusion 55's hash join still walks
//! every build row of the probed key: a key with many duplicates makes each probe row
//! compare against all of them. `l_shipdate NOT IN (SELECT o_orderdate FROM orders)` at
//! TPC-H SF 1 meets 600 orders per date for each of 6 M lineitems (19 to 25 s, where DuckDB
//! takes 0.1 s), and `l_shipinstruct IN (SELECT l_shipinstruct FROM lineitem)` 1.5 M
//! lineitems per instruction (38 s at SF 0.1).
//!
//! [`DistinctBuildRows`] puts a partial aggregate grouping by every column of the build side
//! below such a join: it keeps one row of each distinct row in each partition. Whether that
//! pays is decided by the rows themselves, at run time: DataFusion's partial aggregate looks
//! at its first rows (`datafusion.execution.skip_partial_aggregation_probe_rows_threshold`,
//! 100,000) and, when they are mostly distinct (more than
//! `skip_partial_aggregation_probe_ratio_threshold` of them, 80 %), passes every row on
//! unchanged from then on, which costs one hash per row of those first rows and nothing
//! after. Rows that are not distinct are not dropped where the join's output needs them:
//! only the joins whose output holds probe rows alone are changed, and NULL keys survive
//! the grouping (a NOT IN that must see a NULL still sees one).

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::logical_expr::JoinType;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::joins::HashJoinExec;

#[derive(Debug, Default)]
pub(crate) struct DistinctBuildRows;

impl PhysicalOptimizerRule for DistinctBuildRows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let existence_only = matches!(
                join.join_type(),
                JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark
            );
            if !existence_only || join.null_aware || already_distinct(join.left()) {
                return Ok(Transformed::no(node));
            }
            let build = Arc::clone(join.left());
            let schema = build.schema();
            let keys: Vec<(Arc<dyn PhysicalExpr>, String)> = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    (
                        Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>,
                        f.name().clone(),
                    )
                })
                .collect();
            let distinct: Arc<dyn ExecutionPlan> = Arc::new(AggregateExec::try_new(
                AggregateMode::Partial,
                PhysicalGroupBy::new_single(keys),
                vec![],
                vec![],
                build,
                Arc::clone(&schema),
            )?);
            // The join reads the build side's columns by position and type.
            let same_columns = distinct.schema().fields().len() == schema.fields().len()
                && distinct
                    .schema()
                    .fields()
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.data_type() == b.data_type());
            if !same_columns {
                return Ok(Transformed::no(node));
            }
            let right = Arc::clone(join.right());
            Ok(Transformed::yes(replace_children_if_necessary(
                node,
                vec![distinct, right],
            )?))
        })
        .data()
    }

    fn name(&self) -> &str {
        "distinct_build_rows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan` already yields distinct rows per partition from an aggregate of its own.
fn already_distinct(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.downcast_ref::<AggregateExec>()
        .is_some_and(|a| a.aggr_expr().is_empty())
}

#[cfg(test)]
mod tests {
    use crate::test_support::{physical_plan, pretty, scratch_session, shown};

    /// IN, NOT IN, EXISTS and NOT EXISTS over a build side with many duplicate keys hash its
    /// distinct rows, with the answers of the plan without the rule, NULLs included.
    #[tokio::test]
    async fn existence_joins_hash_distinct_build_rows() {
        let (_dir, session) = scratch_session().await;
        session
            .sql(
                "CREATE TABLE processed.facts AS SELECT value AS id, value % 50 AS d, value % 3 AS f FROM generate_series(1, 20000);
                 CREATE TABLE processed.probe AS SELECT value % 101 - 20 AS k FROM generate_series(1, 202000);
                 CREATE TABLE processed.dims AS SELECT CASE WHEN value = 7 THEN NULL ELSE value END AS d FROM generate_series(0, 40)",
            )
            .await
            .expect("tables");
        let queries = [
            "SELECT count(*) AS n FROM processed.probe WHERE k IN (SELECT d FROM processed.facts)",
            "SELECT count(*) AS n FROM processed.probe WHERE k NOT IN (SELECT d FROM processed.facts)",
            "SELECT count(*) AS n FROM processed.probe p WHERE EXISTS (SELECT 1 FROM processed.facts f WHERE f.d = p.k AND f.f = 1)",
            "SELECT count(*) AS n FROM processed.probe p WHERE NOT EXISTS (SELECT 1 FROM processed.facts f WHERE f.d = p.k AND f.id > p.k * 400)",
            "SELECT count(*) AS n FROM processed.dims WHERE d NOT IN (SELECT d FROM processed.facts WHERE f = 2)",
            "SELECT count(*) AS n FROM processed.probe WHERE k NOT IN (SELECT d FROM processed.dims)",
            "SELECT count(*) AS n FROM processed.probe WHERE k IN (SELECT d FROM processed.facts) OR k < -10",
        ];
        let mut with = vec![];
        for query in queries {
            with.push(pretty(&session.sql(query).await.expect(query)));
        }
        let plan = shown(&physical_plan(&session, queries[0]).await);
        assert!(
            plan.contains("AggregateExec: mode=Partial, gby=[d@0 as d]"),
            "{plan}"
        );
        session
            .sql("SET strata.optimizer.distinct_build_rows = false")
            .await
            .expect("switch");
        let plan = shown(&physical_plan(&session, queries[0]).await);
        assert!(!plan.contains("gby=[d@0 as d]"), "{plan}");
        for (query, answer) in queries.iter().zip(&with) {
            let without = pretty(&session.sql(query).await.expect(query));
            assert_eq!(answer, &without, "{query}");
        }
        // 50 of the 101 keys -20..80, each 2,000 times, are among the 50 dates.
        assert!(with[0].contains("| 100000 |"), "{}", with[0]);
    }
}
