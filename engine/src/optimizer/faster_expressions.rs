//! Faster forms of single expressions, put where filters, projections and aggregate
//! arguments evaluate them.
//!
//! Each form computes exactly what the expression it replaces computes, with the same result
//! type, and shows in plans as that expression: decimal arithmetic without 128-bit overflow
//! checks where none can overflow ([`crate::optimizer::decimal_arith`]), and `LIKE` patterns of several
//! `%`-separated parts matched by substring search instead of a regular expression
//! ([`crate::optimizer::like_segments`]). One walk over the plan applies them all.

use std::sync::Arc;

use arrow::datatypes::Schema;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::ProjectionExec;

/// The physical rule: see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct FasterExpressions;

impl PhysicalOptimizerRule for FasterExpressions {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
                let schema = projection.input().schema();
                let mut changed = false;
                let exprs = projection
                    .expr()
                    .iter()
                    .map(|p| {
                        let expr = rewrite(&p.expr, &schema)?;
                        changed |= expr.transformed;
                        Ok(ProjectionExpr {
                            expr: expr.data,
                            alias: p.alias.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let exec = ProjectionExec::try_new(exprs, Arc::clone(projection.input()))?;
                return Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>));
            }
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                let schema = filter.input().schema();
                let predicate = rewrite(filter.predicate(), &schema)?;
                if !predicate.transformed {
                    return Ok(Transformed::no(node));
                }
                let exec = FilterExecBuilder::from(filter)
                    .with_predicate(predicate.data)
                    .build()?;
                return Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>));
            }
            if let Some(aggregate) = node.downcast_ref::<AggregateExec>() {
                let schema = aggregate.input_schema();
                let mut changed = false;
                let mut exprs = Vec::with_capacity(aggregate.aggr_expr().len());
                for function in aggregate.aggr_expr() {
                    let all = function.all_expressions();
                    let mut args = Vec::with_capacity(all.args.len());
                    let mut arg_changed = false;
                    for arg in &all.args {
                        let arg = rewrite(arg, &schema)?;
                        arg_changed |= arg.transformed;
                        args.push(arg.data);
                    }
                    let rewritten = if arg_changed {
                        function.with_new_expressions(args, all.order_by_exprs)
                    } else {
                        None
                    };
                    match rewritten {
                        Some(f) => {
                            changed = true;
                            exprs.push(Arc::new(f));
                        }
                        None => exprs.push(Arc::clone(function)),
                    }
                }
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let exec = aggregate.with_new_aggr_exprs(exprs);
                return Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .data()
    }

    fn name(&self) -> &str {
        "faster_expressions"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `expr` with every part that has a faster form replaced by it.
pub(crate) fn rewrite(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        let faster = crate::optimizer::decimal_arith::faster(&e, schema)
            .or_else(|| crate::optimizer::like_segments::faster(&e, schema));
        Ok(match faster {
            Some(f) => Transformed::yes(f),
            None => Transformed::no(e),
        })
    })
}
