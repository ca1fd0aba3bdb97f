//! Integer arithmetic that never wraps: an overflow is an error naming the expression.
//!
//! DataFusion computes integer `+`, `-`, `*` and unary `-` with wrapping kernels, folds
//! constant expressions with the same kernels, and sums integers with wrapping adds, so
//! `9223372036854775807 + 1` is `-9223372036854775808`. DuckDB and PostgreSQL raise an
//! error instead, and so does strata, in four places:
//!
//! - [`CheckedArithmetic`], a physical rule that runs before DataFusion's, gives every
//!   integer `+`, `-`, `*` and unary `-` in projections, filters, sorts, window functions,
//!   joins' filters and aggregates (arguments, FILTER clauses and GROUP BY keys) Arrow's checked kernels ([`Checked`]),
//!   and checks that decimal `+`, `-` and `*` of precision 38 give at most 38 digits (Arrow
//!   fails only past 128 bits, and DataFusion gives such results precision 38 whatever their
//!   inputs, so `10^37 * 20` came out as a number ten times too small). Rules after it move
//!   the checked expressions where they move expressions (into scans, for example);
//! - [`ConstantOverflow`], an analyzer rule that runs before DataFusion folds constants,
//!   evaluates each constant integer expression with the checked kernels first, so an
//!   overflow is an error when the statement is planned rather than a wrapped literal;
//! - [`window::WindowArithmetic`], an analyzer rule, moves the arithmetic of window functions
//!   that DataFusion cannot give new expressions into a projection below the window (below);
//! - [`sum`]'s `sum`, registered in place of DataFusion's, adds integers exactly in 128 bits
//!   and fails when the total does not fit the result type (`BIGINT` for signed, `BIGINT
//!   UNSIGNED` for unsigned inputs), and checks decimal sums of precision 38 against it.
//!
//! None of them is one of the switchable [`crate::optimizer::RULES`]: they decide what an
//! answer is, not how fast it comes, and switching an optimizer rule off must never make an
//! answer wrong. Division already fails on `MIN / -1` and casts already fail on values out
//! of range in DataFusion; `abs` of the minimum fails too.
//!
//! Join keys are computed below joins, in projections, and a join's filter (the conditions in
//! ON besides equal keys) is checked in place. Window functions that DataFusion cannot give
//! new expressions (aggregates over a whole partition, `sum(v * 2) OVER ()`, and ranking and
//! value functions, `rank() OVER (PARTITION BY v * 2)`) get their arithmetic computed in a
//! projection below the window by [`window::WindowArithmetic`], where [`CheckedArithmetic`]
//! checks it.
//!
//! The cost: a checked add or multiply is a compare and a branch per value next to the
//! operation; an exact sum adds the high and low halves of each value in two 64-bit lanes
//! (still vectorized) and keeps a 128-bit total per group; a precision-38 decimal result is
//! compared against 10^38 once per value, and the faster decimal form of
//! [`crate::optimizer::decimal_arith`] keeps its speed (it needs the check only when it
//! falls back to Arrow). Decimal sums below precision 38, float sums and the kernels of every
//! other type are DataFusion's own.

pub(crate) mod sum;
pub(crate) mod window;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::compute::kernels::numeric;
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Expr, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, NegativeExpr};
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_expr::window::WindowExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, PhysicalGroupBy};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{
    HashJoinExec, NestedLoopJoinExec, NestedLoopJoinExecBuilder, SortMergeJoinExec,
};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};

/// The physical rule: see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct CheckedArithmetic;

impl PhysicalOptimizerRule for CheckedArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(checked_node).data()
    }

    fn name(&self) -> &str {
        "checked_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` with every integer operation in its expressions checked.
fn checked_node(node: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
    if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
        let schema = projection.input().schema();
        let mut changed = false;
        let exprs = projection
            .expr()
            .iter()
            .map(|p| {
                let expr = checked(&p.expr, &schema)?;
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
        return Ok(Transformed::yes(Arc::new(exec)));
    }
    if let Some(filter) = node.downcast_ref::<FilterExec>() {
        let schema = filter.input().schema();
        let predicate = checked(filter.predicate(), &schema)?;
        if !predicate.transformed {
            return Ok(Transformed::no(node));
        }
        let exec = FilterExecBuilder::from(filter)
            .with_predicate(predicate.data)
            .build()?;
        return Ok(Transformed::yes(Arc::new(exec)));
    }
    if let Some(sort) = node.downcast_ref::<SortExec>() {
        let schema = sort.input().schema();
        let mut changed = false;
        let mut exprs = Vec::with_capacity(sort.expr().len());
        for e in sort.expr().iter() {
            let expr = checked(&e.expr, &schema)?;
            changed |= expr.transformed;
            let mut e = e.clone();
            e.expr = expr.data;
            exprs.push(e);
        }
        if !changed {
            return Ok(Transformed::no(node));
        }
        let Some(ordering) = datafusion::physical_expr::LexOrdering::new(exprs) else {
            return Ok(Transformed::no(node));
        };
        let exec = SortExec::new(ordering, Arc::clone(sort.input()))
            .with_preserve_partitioning(sort.preserve_partitioning())
            .with_fetch(sort.fetch());
        return Ok(Transformed::yes(Arc::new(exec)));
    }
    if let Some(window) = node.downcast_ref::<WindowAggExec>() {
        let Some(exprs) = checked_windows(window.window_expr(), &window.input().schema())? else {
            return Ok(Transformed::no(node));
        };
        let can_repartition = !window.partition_keys().is_empty();
        let exec = WindowAggExec::try_new(exprs, Arc::clone(window.input()), can_repartition)?;
        return Ok(Transformed::yes(Arc::new(exec)));
    }
    if let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() {
        let Some(exprs) = checked_windows(window.window_expr(), &window.input().schema())? else {
            return Ok(Transformed::no(node));
        };
        let can_repartition = !window.partition_keys().is_empty();
        let exec = BoundedWindowAggExec::try_new(
            exprs,
            Arc::clone(window.input()),
            window.input_order_mode.clone(),
            can_repartition,
        )?;
        return Ok(Transformed::yes(Arc::new(exec)));
    }
    if let Some(join) = node.downcast_ref::<HashJoinExec>() {
        let Some(filter) = checked_join_filter(join.filter())? else {
            return Ok(Transformed::no(node));
        };
        let exec = join.builder().with_filter(Some(filter)).build_exec()?;
        return Ok(Transformed::yes(exec));
    }
    if let Some(join) = node.downcast_ref::<NestedLoopJoinExec>() {
        let Some(filter) = checked_join_filter(join.filter())? else {
            return Ok(Transformed::no(node));
        };
        let exec = NestedLoopJoinExecBuilder::from(join)
            .with_filter(Some(filter))
            .build()?;
        return Ok(Transformed::yes(Arc::new(exec)));
    }
    if let Some(join) = node.downcast_ref::<SortMergeJoinExec>() {
        let Some(filter) = checked_join_filter(join.filter().as_ref())? else {
            return Ok(Transformed::no(node));
        };
        let exec = SortMergeJoinExec::try_new(
            Arc::clone(join.left()),
            Arc::clone(join.right()),
            join.on().to_vec(),
            Some(filter),
            join.join_type(),
            join.sort_options().to_vec(),
            join.null_equality(),
        )?;
        return Ok(Transformed::yes(Arc::new(exec)));
    }
    if let Some(aggregate) = node.downcast_ref::<AggregateExec>() {
        return checked_aggregate(aggregate).map(|exec| match exec {
            Some(exec) => Transformed::yes(exec),
            None => Transformed::no(node),
        });
    }
    Ok(Transformed::no(node))
}

/// Window functions with their arguments, PARTITION BY and ORDER BY keys checked; `None`
/// if none of them holds integer arithmetic (or a function cannot take new expressions).
fn checked_windows(
    exprs: &[Arc<dyn WindowExpr>],
    schema: &Schema,
) -> Result<Option<Vec<Arc<dyn WindowExpr>>>> {
    let mut changed = false;
    let mut out = Vec::with_capacity(exprs.len());
    for expr in exprs {
        let all = expr.all_expressions();
        let mut any = false;
        let mut each = |list: Vec<Arc<dyn PhysicalExpr>>| -> Result<Vec<Arc<dyn PhysicalExpr>>> {
            list.iter()
                .map(|e| {
                    let e = checked(e, schema)?;
                    any |= e.transformed;
                    Ok(e.data)
                })
                .collect()
        };
        let args = each(all.args)?;
        let partition_by = each(all.partition_by_exprs)?;
        let order_by = each(all.order_by_exprs)?;
        match any
            .then(|| expr.with_new_expressions(args, partition_by, order_by))
            .flatten()
        {
            Some(e) => {
                changed = true;
                out.push(e);
            }
            None => out.push(Arc::clone(expr)),
        }
    }
    Ok(changed.then_some(out))
}

/// A join's filter (the conditions in ON other than equalities of keys) checked; `None` if
/// there is none or it holds no integer arithmetic.
fn checked_join_filter(filter: Option<&JoinFilter>) -> Result<Option<JoinFilter>> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    let expr = checked(filter.expression(), filter.schema())?;
    if !expr.transformed {
        return Ok(None);
    }
    Ok(Some(JoinFilter::new(
        expr.data,
        filter.column_indices().to_vec(),
        Arc::clone(filter.schema()),
    )))
}

/// An aggregate with its arguments, FILTER clauses and GROUP BY keys checked; `None` if
/// none of them holds integer arithmetic.
fn checked_aggregate(aggregate: &AggregateExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let schema = aggregate.input_schema();
    let mut changed = false;
    let mut functions: Vec<Arc<AggregateFunctionExpr>> =
        Vec::with_capacity(aggregate.aggr_expr().len());
    for function in aggregate.aggr_expr() {
        let all = function.all_expressions();
        let mut args = Vec::with_capacity(all.args.len());
        let mut arg_changed = false;
        for arg in &all.args {
            let arg = checked(arg, &schema)?;
            arg_changed |= arg.transformed;
            args.push(arg.data);
        }
        match arg_changed
            .then(|| function.with_new_expressions(args, all.order_by_exprs))
            .flatten()
        {
            Some(f) => {
                changed = true;
                functions.push(Arc::new(f));
            }
            None => functions.push(Arc::clone(function)),
        }
    }
    let mut filters = Vec::with_capacity(aggregate.filter_expr().len());
    for filter in aggregate.filter_expr() {
        filters.push(match filter {
            Some(f) => {
                let f = checked(f, &schema)?;
                changed |= f.transformed;
                Some(f.data)
            }
            None => None,
        });
    }
    let group_by = aggregate.group_expr();
    let mut group_changed = false;
    let mut keys = Vec::with_capacity(group_by.expr().len());
    for (expr, name) in group_by.expr() {
        let expr = checked(expr, &schema)?;
        group_changed |= expr.transformed;
        keys.push((expr.data, name.clone()));
    }
    if !changed && !group_changed {
        return Ok(None);
    }
    let group_by = if group_changed {
        PhysicalGroupBy::new(
            keys,
            group_by.null_expr().to_vec(),
            group_by.groups().to_vec(),
            group_by.has_grouping_set(),
        )
    } else {
        group_by.clone()
    };
    let exec = AggregateExec::try_new(
        *aggregate.mode(),
        group_by,
        functions,
        filters,
        Arc::clone(aggregate.input()),
        schema,
    )?
    .with_limit_options(aggregate.limit_options());
    Ok(Some(Arc::new(exec)))
}

/// `expr` with every integer `+`, `-`, `*` and unary `-` in it checked for overflow.
pub(crate) fn checked(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        let integer = |e: &Arc<dyn PhysicalExpr>| e.data_type(schema).is_ok_and(|t| t.is_integer());
        if let Some(binary) = e.downcast_ref::<BinaryExpr>()
            && matches!(
                binary.op(),
                Operator::Plus | Operator::Minus | Operator::Multiply
            )
            && integer(binary.left())
            && integer(binary.right())
        {
            let inner = BinaryExpr::new(
                Arc::clone(binary.left()),
                *binary.op(),
                Arc::clone(binary.right()),
            )
            .with_fail_on_overflow(true);
            return Ok(Transformed::yes(Arc::new(Checked {
                inner: Arc::new(inner),
            }) as Arc<dyn PhysicalExpr>));
        }
        if let Some(binary) = e.downcast_ref::<BinaryExpr>()
            && matches!(
                binary.op(),
                Operator::Plus | Operator::Minus | Operator::Multiply
            )
            && matches!(e.data_type(schema), Ok(DataType::Decimal128(38, _)))
        {
            return Ok(Transformed::yes(
                Arc::new(Checked { inner: e }) as Arc<dyn PhysicalExpr>
            ));
        }
        if e.downcast_ref::<NegativeExpr>().is_some()
            && e.data_type(schema).is_ok_and(|t| t.is_signed_integer())
        {
            return Ok(Transformed::yes(
                Arc::new(Checked { inner: e }) as Arc<dyn PhysicalExpr>
            ));
        }
        Ok(Transformed::no(e))
    })
}

/// An integer `+`, `-`, `*` (a [`BinaryExpr`] with overflow checks) or unary `-` whose
/// overflow is an error naming it. Shown in plans as the expression it checks.
#[derive(Debug)]
pub(crate) struct Checked {
    inner: Arc<dyn PhysicalExpr>,
}

impl PartialEq for Checked {
    fn eq(&self, other: &Self) -> bool {
        *self.inner == *other.inner
    }
}

impl Eq for Checked {}

impl Hash for Checked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl fmt::Display for Checked {
    // Shown as the expression it checks. A parent `BinaryExpr` puts a child in parentheses
    // only if it sees a `BinaryExpr` of lower precedence, so a checked `+` or `-` puts
    // itself in them: `(v + 1) * 2` must not read `v + 1 * 2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.downcast_ref::<BinaryExpr>() {
            Some(b) if matches!(b.op(), Operator::Plus | Operator::Minus) => {
                write!(f, "({})", self.inner)
            }
            _ => self.inner.fmt(f),
        }
    }
}

impl Checked {
    /// `inner`, checked: a [`BinaryExpr`] (failing on integer overflow) or a [`NegativeExpr`].
    pub(crate) fn new(inner: Arc<dyn PhysicalExpr>) -> Self {
        Self { inner }
    }

    /// The expression checked.
    pub(crate) fn inner(&self) -> &Arc<dyn PhysicalExpr> {
        &self.inner
    }

    /// An overflow error of Arrow's as one naming this expression and its type.
    fn named(&self, error: DataFusionError, schema: &Schema) -> DataFusionError {
        let DataFusionError::ArrowError(arrow, _) = &error else {
            return error;
        };
        let ArrowError::ArithmeticOverflow(detail) = arrow.as_ref() else {
            return error;
        };
        let shown = without_column_indexes(&self.inner.to_string());
        let ty = match self.inner.data_type(schema) {
            Ok(ty) => ty,
            Err(_) => return error,
        };
        if !ty.is_integer() {
            // A decimal past 128 bits: Arrow's message says where.
            return overflow(format!("decimal overflow in {shown} ({ty}): {detail}"));
        }
        let detail = detail
            .strip_prefix("Overflow happened on: ")
            .unwrap_or(detail);
        overflow(format!(
            "integer overflow in {shown} ({ty}): {detail}; cast to DECIMAL(38, 0) for wider results"
        ))
    }
}

/// The decimal `+`, `-` or `*` of precision 38 that `expr` checks, if it is one: the
/// faster form of [`crate::optimizer::decimal_arith`] takes its place with the same check.
pub(crate) fn checked_decimal(expr: &Arc<dyn PhysicalExpr>) -> Option<&BinaryExpr> {
    let checked = expr.downcast_ref::<Checked>()?;
    let binary = checked.inner.downcast_ref::<BinaryExpr>()?;
    Some(binary)
}

/// An error naming `expr` if `result`, of type `Decimal128(38, _)`, holds a value of more
/// than 38 digits: Arrow's decimal kernels fail only past 128 bits, and a decimal of
/// precision 38 holds 38 digits at most (DataFusion gives `+`, `-` and `*` of wide
/// decimals precision 38 whatever their inputs). Results of other types pass.
pub(crate) fn within_38_digits(result: &ColumnarValue, expr: &dyn fmt::Display) -> Result<()> {
    const MAX: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;
    if !matches!(result.data_type(), DataType::Decimal128(38, _)) {
        return Ok(());
    }
    let array = match result {
        ColumnarValue::Array(a) => Arc::clone(a),
        ColumnarValue::Scalar(s) => s.to_array()?,
    };
    let values = array.as_primitive::<arrow::datatypes::Decimal128Type>();
    // Branch-free over all slots first; nulls' slots are looked at only if one is out.
    let out = values
        .values()
        .iter()
        .fold(false, |out, v| out | !(-MAX..=MAX).contains(v));
    if !out {
        return Ok(());
    }
    for value in values.iter().flatten() {
        if !(-MAX..=MAX).contains(&value) {
            let shown = without_column_indexes(&expr.to_string());
            return Err(overflow(format!(
                "decimal overflow in {shown} ({}): the result {value} has more than 38 digits; cast to DOUBLE for wider results",
                array.data_type()
            )));
        }
    }
    Ok(())
}

/// A physical expression as SQL shows it: `v@0 * 2` as `v * 2`.
fn without_column_indexes(shown: &str) -> String {
    let mut out = String::with_capacity(shown.len());
    let mut chars = shown.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '@' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl PhysicalExpr for Checked {
    fn data_type(&self, schema: &Schema) -> Result<DataType> {
        self.inner.data_type(schema)
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.inner.nullable(schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let result = match self.inner.downcast_ref::<NegativeExpr>() {
            Some(negative) => match negative.arg().evaluate(batch)? {
                ColumnarValue::Array(values) => numeric::neg(values.as_ref())
                    .map(ColumnarValue::Array)
                    .map_err(DataFusionError::from),
                ColumnarValue::Scalar(value) => value
                    .to_array()
                    .and_then(|a| numeric::neg(a.as_ref()).map_err(DataFusionError::from))
                    .and_then(|a| ScalarValue::try_from_array(&a, 0))
                    .map(ColumnarValue::Scalar),
            },
            None => self.inner.evaluate(batch),
        };
        let result = result.map_err(|e| self.named(e, batch.schema_ref()))?;
        within_38_digits(&result, &self.inner.to_string())?;
        Ok(result)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.inner.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self {
            inner: Arc::clone(&self.inner).with_new_children(children)?,
        }))
    }

    fn evaluate_bounds(
        &self,
        children: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<datafusion::logical_expr::interval_arithmetic::Interval> {
        self.inner.evaluate_bounds(children)
    }

    fn propagate_constraints(
        &self,
        interval: &datafusion::logical_expr::interval_arithmetic::Interval,
        children: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<Option<Vec<datafusion::logical_expr::interval_arithmetic::Interval>>> {
        self.inner.propagate_constraints(interval, children)
    }

    fn get_properties(
        &self,
        children: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<datafusion::logical_expr::sort_properties::ExprProperties> {
        self.inner.get_properties(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}

/// The analyzer rule: see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct ConstantOverflow;

impl AnalyzerRule for ConstantOverflow {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.apply_with_subqueries(|node| {
            for expr in node.expressions() {
                check_constants(&expr)?;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "constant_overflow"
    }
}

/// Evaluates, with overflow checks, each largest part of `expr` that is arithmetic on
/// constants only: an overflow there is an error now, where DataFusion would fold it into a
/// wrapped literal. One walk finds the parts, so a long chain costs linear time.
fn check_constants(expr: &Expr) -> Result<()> {
    let mut finder = ConstantParts::default();
    expr.visit(&mut finder)?;
    finder
        .found
        .extend(finder.frames.pop().map(|f| f.parts).unwrap_or_default());
    for part in finder.found {
        let empty = DFSchema::empty();
        let props = datafusion::execution::context::ExecutionProps::new();
        let Ok(physical) = datafusion::physical_expr::create_physical_expr(
            part,
            &empty,
            &props,
            &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(
            ),
        ) else {
            continue;
        };
        let schema = Schema::empty();
        let physical = checked(&physical, &schema)?.data;
        let batch = RecordBatch::try_new_with_options(
            Arc::new(schema),
            vec![],
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        if let Err(error) = physical.evaluate(&batch)
            && is_overflow(&error)
        {
            return Err(error);
        }
    }
    Ok(())
}

/// The largest parts of an expression that are arithmetic on constants (literals, casts and
/// arithmetic only), found in one walk.
#[derive(Default)]
struct ConstantParts<'n> {
    /// One per node on the path from the root: whether its subtree is constant so far, and
    /// the largest constant arithmetic parts below it.
    frames: Vec<Frame<'n>>,
    /// Parts whose parent is not constant.
    found: Vec<&'n Expr>,
}

#[derive(Default)]
struct Frame<'n> {
    constant: bool,
    parts: Vec<&'n Expr>,
}

impl<'n> datafusion::common::tree_node::TreeNodeVisitor<'n> for ConstantParts<'n> {
    type Node = Expr;

    fn f_down(&mut self, node: &'n Expr) -> Result<TreeNodeRecursion> {
        let constant = matches!(
            node,
            Expr::Literal(..)
                | Expr::Cast(_)
                | Expr::TryCast(_)
                | Expr::Alias(_)
                | Expr::Negative(_)
                | Expr::BinaryExpr(_)
        );
        if !constant {
            // No ancestor is constant either; stop at the first one already marked.
            for frame in self.frames.iter_mut().rev() {
                if !frame.constant {
                    break;
                }
                frame.constant = false;
            }
        }
        self.frames.push(Frame {
            constant,
            parts: Vec::new(),
        });
        Ok(TreeNodeRecursion::Continue)
    }

    fn f_up(&mut self, node: &'n Expr) -> Result<TreeNodeRecursion> {
        let Some(frame) = self.frames.pop() else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let arithmetic = match node {
            Expr::BinaryExpr(b) => {
                matches!(b.op, Operator::Plus | Operator::Minus | Operator::Multiply)
            }
            Expr::Negative(_) => true,
            _ => false,
        };
        let parts = if frame.constant && arithmetic {
            vec![node]
        } else {
            frame.parts
        };
        match self.frames.last_mut() {
            Some(parent) if frame.constant => parent.parts.extend(parts),
            Some(_) => self.found.extend(parts),
            None => self.frames.push(Frame {
                constant: frame.constant,
                parts,
            }),
        }
        Ok(TreeNodeRecursion::Continue)
    }
}

/// An overflow strata reports: its message names the expression and says what to do.
#[derive(Debug)]
pub(crate) struct Overflow(String);

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Overflow {}

/// The error for an overflow, with this message.
pub(crate) fn overflow(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(Overflow(message)))
}

/// Whether `error` is an overflow strata reports.
pub(crate) fn is_overflow(error: &DataFusionError) -> bool {
    overflow_message(error).is_some()
}

/// The message of the overflow `error` holds, however DataFusion wrapped it (in the context
/// of the rule or the operator that met it).
pub(crate) fn overflow_message(error: &DataFusionError) -> Option<String> {
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(o) = current.downcast_ref::<Overflow>() {
            return Some(o.0.clone());
        }
        current = current.source()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, Decimal128Array, Float64Array, Int32Array, Int64Array};
    use arrow::buffer::NullBuffer;
    use arrow::datatypes::Field;
    use datafusion::logical_expr::{col as logical_col, lit as logical_lit};
    use datafusion::physical_expr::expressions::{col, lit};

    fn batch(values: ArrayRef) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "a",
            values.data_type().clone(),
            true,
        )]));
        RecordBatch::try_new(schema, vec![values]).expect("batch")
    }

    fn times(batch: &RecordBatch, factor: ScalarValue) -> Transformed<Arc<dyn PhysicalExpr>> {
        let schema = batch.schema();
        let expr: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            col("a", &schema).expect("a"),
            Operator::Multiply,
            lit(factor),
        ));
        checked(&expr, &schema).expect("checked")
    }

    #[test]
    fn an_integer_product_that_overflows_is_an_error_naming_it() {
        let b = batch(Arc::new(Int64Array::from(vec![
            Some(1),
            None,
            Some(i64::MAX),
        ])));
        let expr = times(&b, ScalarValue::Int64(Some(2)));
        assert!(expr.transformed);
        // Shown as the expression it checks.
        assert_eq!(expr.data.to_string(), "a@0 * 2");
        let error = expr.data.evaluate(&b).expect_err("overflow");
        assert!(is_overflow(&error));
        assert_eq!(
            overflow_message(&error).expect("message"),
            "integer overflow in a * 2 (Int64): 9223372036854775807 * 2; cast to DECIMAL(38, 0) for wider results"
        );
    }

    #[test]
    fn values_that_fit_and_null_slots_are_no_overflow() {
        // The null's slot holds a value that would overflow; a null is no value.
        let values = Int64Array::new(
            vec![3, i64::MAX].into(),
            Some(NullBuffer::from(vec![true, false])),
        );
        let b = batch(Arc::new(values));
        let expr = times(&b, ScalarValue::Int64(Some(2)));
        let out = expr.data.evaluate(&b).expect("no overflow");
        let out = out.into_array(2).expect("array");
        let out = out.as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(out.value(0), 6);
        assert!(out.is_null(1));
    }

    #[test]
    fn int32_overflows_at_its_own_width() {
        let b = batch(Arc::new(Int32Array::from(vec![2])));
        let expr = times(&b, ScalarValue::Int32(Some(i32::MAX)));
        let error = expr.data.evaluate(&b).expect_err("overflow");
        assert!(
            overflow_message(&error)
                .expect("message")
                .contains("(Int32): 2 * 2147483647")
        );
    }

    #[test]
    fn floats_and_narrow_decimals_are_left_alone() {
        let b = batch(Arc::new(Float64Array::from(vec![1.0])));
        assert!(!times(&b, ScalarValue::Float64(Some(2.0))).transformed);
        let d = Decimal128Array::from(vec![5])
            .with_precision_and_scale(10, 0)
            .expect("decimal");
        let b = batch(Arc::new(d));
        assert!(!times(&b, ScalarValue::Decimal128(Some(2), 10, 0)).transformed);
    }

    #[test]
    fn negating_the_minimum_is_an_error() {
        let b = batch(Arc::new(Int64Array::from(vec![i64::MIN])));
        let schema = b.schema();
        let expr: Arc<dyn PhysicalExpr> =
            Arc::new(NegativeExpr::new(col("a", &schema).expect("a")));
        let expr = checked(&expr, &schema).expect("checked");
        assert!(expr.transformed);
        let error = expr.data.evaluate(&b).expect_err("overflow");
        assert!(
            overflow_message(&error)
                .expect("message")
                .starts_with("integer overflow in (- a) (Int64)")
        );
        let b = batch(Arc::new(Int64Array::from(vec![-5])));
        let out = expr
            .data
            .evaluate(&b)
            .expect("fits")
            .into_array(1)
            .expect("array");
        assert_eq!(
            out.as_primitive::<arrow::datatypes::Int64Type>().value(0),
            5
        );
    }

    #[test]
    fn a_wide_decimal_past_38_digits_is_an_error() {
        let big = 60_000_000_000_000_000_000_000_000_000_000_000_000i128;
        let d = Decimal128Array::from(vec![Some(big), Some(1)])
            .with_precision_and_scale(38, 0)
            .expect("decimal");
        let b = batch(Arc::new(d));
        let schema = b.schema();
        let expr: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            col("a", &schema).expect("a"),
            Operator::Plus,
            col("a", &schema).expect("a"),
        ));
        let expr = checked(&expr, &schema).expect("checked");
        assert!(expr.transformed);
        assert_eq!(expr.data.to_string(), "(a@0 + a@0)");
        let error = expr.data.evaluate(&b).expect_err("past 38 digits");
        assert!(overflow_message(&error).expect("message").contains(
            "the result 120000000000000000000000000000000000000 has more than 38 digits"
        ));
    }

    #[test]
    fn constant_overflow_is_found_before_folding() {
        let max = || logical_lit(i64::MAX);
        let error = check_constants(&(max() + logical_lit(1i64))).expect_err("overflow");
        assert!(
            overflow_message(&error)
                .expect("message")
                .starts_with("integer overflow in 9223372036854775807 + 1 (Int64)")
        );
        check_constants(&(logical_lit(1i64) + logical_lit(2i64))).expect("fits");
        // Not constant: left to the query, which checks it.
        check_constants(&(logical_col("a") + max())).expect("not constant");
        // Floats do not overflow.
        check_constants(&(logical_lit(f64::MAX) * logical_lit(2.0))).expect("float");
        // Found inside a function and below a column's arithmetic.
        let inner = logical_col("a") * (max() * logical_lit(2i64));
        let error = check_constants(&inner).expect_err("overflow");
        assert!(
            overflow_message(&error)
                .expect("message")
                .contains("9223372036854775807 * 2")
        );
        // A long chain over a column, in one walk: no part of it is constant.
        let mut chain = logical_col("a");
        for _ in 0..5000 {
            chain = chain + logical_lit(1i64);
        }
        check_constants(&chain).expect("not constant");
        let mut finder = ConstantParts::default();
        chain.visit(&mut finder).expect("walk");
        assert!(finder.found.is_empty());
    }

    #[test]
    fn column_indexes_are_dropped_from_names() {
        assert_eq!(without_column_indexes("v@0 * x@12 + 3"), "v * x + 3");
        assert_eq!(without_column_indexes("a@b"), "a@b");
    }
}
