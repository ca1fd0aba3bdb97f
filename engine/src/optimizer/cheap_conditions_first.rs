//! Cheap filter conditions first.
//!
//! DataFusion evaluates the conditions of a filter (`a AND b AND c`) in the order the query
//! wrote them, and once the conditions so far keep few rows, evaluates the next ones on those
//! rows alone. So the order matters: a string `IN` list written before a date range that keeps
//! one row in seven compares strings on every row, where the other order compares them on the
//! seventh that is left.
//!
//! [`CheapConditionsFirst`] moves to the front of every filter the conditions that compare a
//! fixed-width column (a number, date, time, timestamp or boolean) with a constant or test it
//! for NULL, then those comparing two such columns, then such a column `IN` a list of
//! constants ([`rank`]); every other condition follows, in the query's order, and conditions
//! of one rank keep theirs. Such comparisons never fail, so no condition that guarded another
//! one (`x <> 0 AND 1 / x > 2`) is overtaken by a condition that can fail, and the filter
//! keeps the same rows. Filters of one condition, or already in this order, are left as they
//! are.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, Literal,
};
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// Orders the conditions of every filter cheapest first.
#[derive(Debug, Default)]
pub(crate) struct CheapConditionsFirst;

impl PhysicalOptimizerRule for CheapConditionsFirst {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let Some(ordered) = cheapest_first(filter.predicate(), &schema) else {
                return Ok(Transformed::no(node));
            };
            let exec = FilterExecBuilder::from(filter)
                .with_predicate(ordered)
                .build()?;
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "cheap_conditions_first"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The conditions of `predicate` reordered, or `None` when the order stays.
fn cheapest_first(
    predicate: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    let conditions = split_conjunction(predicate);
    if conditions.len() < 2 {
        return None;
    }
    let mut ranked: Vec<(u8, usize, &Arc<dyn PhysicalExpr>)> = conditions
        .iter()
        .enumerate()
        .map(|(i, c)| (rank(c, schema), i, *c))
        .collect();
    ranked.sort_by_key(|(rank, i, _)| (*rank, *i));
    if ranked.iter().enumerate().all(|(at, (_, i, _))| at == *i) {
        return None;
    }
    Some(conjunction(
        ranked.into_iter().map(|(_, _, c)| Arc::clone(c)),
    ))
}

/// 0: a number or date column against a constant (or IS NULL, IS NOT NULL); 1: two such columns;
/// 2: such a column IN a list of constants; 3: anything else, which keeps its place.
fn rank(condition: &Arc<dyn PhysicalExpr>, schema: &Schema) -> u8 {
    const OTHER: u8 = 3;
    let simple_column = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>()
            .and_then(|c| schema.fields().get(c.index()))
            .is_some_and(|f| is_fixed_width(f.data_type()))
    };
    let constant = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Literal>().is_some();
    if let Some(b) = condition.downcast_ref::<BinaryExpr>() {
        let comparison = matches!(
            b.op(),
            Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
        );
        if !comparison {
            return OTHER;
        }
        let (l, r) = (b.left(), b.right());
        return match (simple_column(l), simple_column(r)) {
            (true, true) => 1,
            (true, false) if constant(r) => 0,
            (false, true) if constant(l) => 0,
            _ => OTHER,
        };
    }
    if let Some(n) = condition.downcast_ref::<IsNullExpr>() {
        return if simple_column(n.arg()) { 0 } else { OTHER };
    }
    if let Some(n) = condition.downcast_ref::<IsNotNullExpr>() {
        return if simple_column(n.arg()) { 0 } else { OTHER };
    }
    if let Some(list) = condition.downcast_ref::<InListExpr>()
        && simple_column(list.expr())
        && list.list().iter().all(constant)
    {
        return 2;
    }
    OTHER
}

/// Numbers, dates and times: compared without touching variable-length data.
fn is_fixed_width(t: &DataType) -> bool {
    t.is_numeric()
        || matches!(
            t,
            DataType::Boolean
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Time32(_)
                | DataType::Time64(_)
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{col, in_list, lit};

    #[test]
    fn date_ranges_go_before_string_conditions() {
        let schema = Schema::new(vec![
            Field::new("mode", DataType::Utf8, true),
            Field::new("shipped", DataType::Date32, true),
            Field::new("committed", DataType::Date32, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let c = |name: &str| col(name, &schema).expect("column");
        let cmp = |l, op, r| Arc::new(BinaryExpr::new(l, op, r)) as Arc<dyn PhysicalExpr>;
        let modes =
            in_list(c("mode"), vec![lit("MAIL"), lit("SHIP")], &false, &schema).expect("in list");
        let guarded = cmp(
            cmp(lit(1i64), Operator::Divide, c("n")),
            Operator::Gt,
            lit(0i64),
        );
        let predicate = conjunction([
            Arc::clone(&modes),
            cmp(c("n"), Operator::NotEq, lit(0i64)),
            Arc::clone(&guarded),
            cmp(c("shipped"), Operator::Lt, c("committed")),
            cmp(
                c("shipped"),
                Operator::GtEq,
                lit(datafusion::common::ScalarValue::Date32(Some(8766))),
            ),
        ]);
        let ordered = cheapest_first(&predicate, &schema).expect("reordered");
        let text: Vec<String> = split_conjunction(&ordered)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "n@3 != 0",
                "shipped@1 >= 1994-01-01",
                "shipped@1 < committed@2",
                "mode@0 IN (SET) ([MAIL, SHIP])",
                "1 / n@3 > 0",
            ]
        );
        // Already in order: left as it is.
        assert!(cheapest_first(&ordered, &schema).is_none());
    }
}
