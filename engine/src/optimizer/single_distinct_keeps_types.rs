//! An aggregate with one `count(DISTINCT …)` keeps its output types when DataFusion splits it
//! in two.
//!
//! DataFusion's `single_distinct_aggregation_to_group_by` computes `count(DISTINCT b),
//! sum(c) … GROUP BY a` as an aggregate grouped by `a, b` below one grouped by `a`, with
//! `sum(c)` becoming `sum(sum(c))`. A sum of `Decimal(p, s)` is a `Decimal(p + 10, s)`, so the
//! outer sum of a `Decimal(15, 2)` column is a `Decimal(35, 2)` where the plan above it was
//! typed for `Decimal(25, 2)`: a HAVING that compares the sum fails with "Invalid comparison
//! operation: Decimal128(35, 2) > Decimal128(25, 2)".
//!
//! [`SingleDistinctKeepsTypes`] runs right before DataFusion's rule and does its work: it
//! hands each aggregate to DataFusion's rule and casts every output column whose type the
//! split changed back to the type it had. The cast cannot lose a digit: the outer sum adds up
//! the same values the one sum would have. DataFusion's rule then finds nothing left to split.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, Projection, cast};
use datafusion::optimizer::single_distinct_to_groupby::SingleDistinctToGroupBy;
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub(crate) struct SingleDistinctKeepsTypes {
    split: SingleDistinctToGroupBy,
}

impl OptimizerRule for SingleDistinctKeepsTypes {
    fn name(&self) -> &str {
        "single_distinct_keeps_types"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        self.split.apply_order()
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if !super::enabled(&config.options(), self.name())
            || !matches!(plan, LogicalPlan::Aggregate(_))
        {
            return Ok(Transformed::no(plan));
        }
        let before = Arc::clone(plan.schema());
        let split = self.split.rewrite(plan, config)?;
        if !split.transformed {
            return Ok(split);
        }
        let after = Arc::clone(split.data.schema());
        let same = before.fields().len() == after.fields().len()
            && before
                .fields()
                .iter()
                .zip(after.fields().iter())
                .all(|(b, a)| b.data_type() == a.data_type());
        if same {
            return Ok(split);
        }
        let exprs = before
            .iter()
            .zip(after.iter())
            .map(|((qualifier, field), (after_qualifier, after_field))| {
                let column =
                    Expr::Column(Column::new(after_qualifier.cloned(), after_field.name()));
                let expr = if after_field.data_type() == field.data_type() {
                    column
                } else {
                    cast(column, field.data_type().clone())
                };
                expr.alias_qualified(qualifier.cloned(), field.name())
            })
            .collect();
        let projection = Projection::try_new(exprs, Arc::new(split.data))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{pretty, scratch_session};

    /// The HAVING over a decimal sum beside count(DISTINCT …) compares the sum at its own
    /// type: with the rule the plan casts the split's wider sum back; without it, execution
    /// fails on the mismatched decimals.
    #[tokio::test]
    async fn decimal_sum_beside_count_distinct_keeps_its_type() {
        let (_dir, session) = scratch_session().await;
        session
            .sql("CREATE TABLE processed.t STORED AS PARQUET AS SELECT value % 3 AS g, value % 7 AS d, CAST(value AS DECIMAL(15, 2)) AS m FROM generate_series(1, 100)")
            .await
            .expect("table");
        let query = "SELECT g, count(DISTINCT d) AS n, sum(m) AS s FROM processed.t GROUP BY g HAVING sum(m) > 1000 ORDER BY g";
        let plan = session
            .plan_query(query)
            .await
            .expect("plan")
            .into_optimized_plan()
            .expect("optimized")
            .display_indent()
            .to_string();
        assert!(plan.contains("AS Decimal128(25, 2)"), "{plan}");
        let answer = pretty(&session.sql(query).await.expect("query"));
        // Sums of 1..100 by value % 3: 1683, 1717, 1650.
        assert!(answer.contains("| 0 | 7 | 1683.00 |"), "{answer}");
        assert!(answer.contains("| 1 | 7 | 1717.00 |"), "{answer}");
        session
            .sql("SET strata.optimizer.single_distinct_keeps_types = false")
            .await
            .expect("switch");
        let failed = session
            .sql(query)
            .await
            .expect_err("DataFusion's plan fails");
        assert!(failed.to_string().contains("Decimal128(35, 2)"), "{failed}");
    }
}
