//! Window functions' integer arithmetic, computed below the window where it is checked.
//!
//! [`super::CheckedArithmetic`] gives a window function new, checked expressions only where
//! DataFusion lets it: aggregates over a moving frame. Aggregates over a whole partition
//! (`sum(v * 2) OVER ()`) and ranking and value functions (`rank() OVER (PARTITION BY v * 2)`,
//! `lag(v * 2)`) take no new expressions, so their arithmetic would wrap. [`WindowArithmetic`]
//! moves every argument, PARTITION BY key, ORDER BY key and FILTER clause of a window
//! function that holds integer or decimal arithmetic on a column into a projection below the
//! window, where the physical rule checks it like any other projection's, and keeps the
//! window's output as it was (the same columns under the same names) with a projection above.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::logical_plan::{Projection, Window};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// The analyzer rule: see the module documentation. It runs after DataFusion's analyzer
/// rules, once types are known.
#[derive(Debug, Default)]
pub(crate) struct WindowArithmetic;

impl AnalyzerRule for WindowArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Window(window) => computed_below(window),
            other => Ok(Transformed::no(other)),
        })
        .data()
    }

    fn name(&self) -> &str {
        "window_arithmetic"
    }
}

/// The prefix of the columns that carry moved expressions from the projection below a window
/// to it. The projection above drops them.
const PREFIX: &str = "__strata_window_arg_";

/// `window` over a projection that computes its expressions' arithmetic, under a projection
/// that keeps its output; the window itself if none of its expressions holds any.
fn computed_below(window: Window) -> Result<Transformed<LogicalPlan>> {
    let input_schema = Arc::clone(window.input.schema());
    let mut moved: Vec<(Expr, String)> = Vec::new();
    let mut exprs = Vec::with_capacity(window.window_expr.len());
    let mut changed = false;
    for expr in &window.window_expr {
        let name = expr.schema_name().to_string();
        let (inner, alias) = match expr {
            Expr::Alias(a) => (a.expr.as_ref().clone(), Some(a.name.clone())),
            e => (e.clone(), None),
        };
        let Expr::WindowFunction(mut function) = inner else {
            exprs.push(expr.clone());
            continue;
        };
        let mut replaced = false;
        let mut replace = |e: &mut Expr| -> Result<()> {
            if !holds_arithmetic(e, &input_schema)? {
                return Ok(());
            }
            let column = match moved.iter().position(|(m, _)| m == e) {
                Some(i) => moved[i].1.clone(),
                None => {
                    let column = format!("{PREFIX}{}", moved.len());
                    moved.push((e.clone(), column.clone()));
                    column
                }
            };
            *e = Expr::Column(Column::from_name(column));
            replaced = true;
            Ok(())
        };
        let params = &mut function.params;
        for arg in &mut params.args {
            replace(arg)?;
        }
        for key in &mut params.partition_by {
            replace(key)?;
        }
        for sort in &mut params.order_by {
            replace(&mut sort.expr)?;
        }
        if let Some(filter) = params.filter.as_mut() {
            replace(filter)?;
        }
        if !replaced {
            exprs.push(expr.clone());
            continue;
        }
        changed = true;
        // Under its old name, so that the plan above finds it.
        exprs.push(Expr::WindowFunction(function).alias(alias.unwrap_or(name)));
    }
    if !changed {
        return Ok(Transformed::no(LogicalPlan::Window(window)));
    }
    let below: Vec<Expr> = input_schema
        .columns()
        .into_iter()
        .map(Expr::Column)
        .chain(moved.into_iter().map(|(e, name)| e.alias(name)))
        .collect();
    let below = Projection::try_new(below, window.input)?;
    let computed = Window::try_new(exprs, Arc::new(LogicalPlan::Projection(below)))?;
    let above: Vec<Expr> = window
        .schema
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let above = Projection::try_new_with_schema(
        above,
        Arc::new(LogicalPlan::Window(computed)),
        window.schema,
    )?;
    Ok(Transformed::yes(LogicalPlan::Projection(above)))
}

/// Whether `expr` reads a column and holds an integer or decimal `+`, `-`, `*` or unary `-`,
/// which the physical rule checks. Constant arithmetic stays (functions such as `lag` need
/// constant offsets, and constants are checked when the statement is planned).
fn holds_arithmetic(expr: &Expr, schema: &DFSchema) -> Result<bool> {
    if matches!(expr, Expr::Column(_)) {
        return Ok(false);
    }
    let mut column = false;
    let mut arithmetic = false;
    expr.apply(|e| {
        match e {
            Expr::Column(_) => column = true,
            Expr::BinaryExpr(b)
                if matches!(b.op, Operator::Plus | Operator::Minus | Operator::Multiply) =>
            {
                arithmetic |= checked_type(e, schema);
            }
            Expr::Negative(_) => arithmetic |= checked_type(e, schema),
            // A subquery's columns are its own.
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => {
                return Ok(TreeNodeRecursion::Jump);
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(column && arithmetic)
}

/// Whether `expr`'s type is one whose arithmetic the physical rule checks.
fn checked_type(expr: &Expr, schema: &DFSchema) -> bool {
    expr.get_type(schema)
        .is_ok_and(|t| t.is_integer() || matches!(t, arrow::datatypes::DataType::Decimal128(38, _)))
}
