//! Subqueries DataFusion cannot plan as written, rewritten into forms it can.
//!
//! [`PlannableSubqueries`] is an analyzer rule, not one of the switchable [`super::RULES`]:
//! without it these statements fail to plan, so it decides whether a query answers at all.
//! It runs after DataFusion's analyzer rules (types are known) and rewrites three shapes:
//!
//! - A scalar aggregate subquery correlated by a comparison other than `=`
//!   (`(SELECT count(*) FROM region r WHERE r.r_regionkey < n.n_regionkey)`). DataFusion
//!   decorrelates an aggregate subquery only along equalities, and leaves this one to the
//!   physical planner, which refuses it. The rewrite joins the subquery's rows to the distinct
//!   values of the outer columns it reads (its domain, `d`), compares against `d`'s columns
//!   instead, and correlates `d` to the outer row by equality (`IS NOT DISTINCT FROM` would not
//!   decorrelate; a NULL outer value finds no group, which is what the subquery gives it too:
//!   no row matches a comparison with NULL). DataFusion then decorrelates the equality as
//!   usual, including a `count` of no rows being 0. `three_valued_in_subqueries` makes such
//!   counts of IN and EXISTS subqueries in a SELECT list, and has them rewritten too.
//! - An IN subquery whose value is a cast (`x NOT IN (SELECT CAST(k AS INT) …)` correlated on
//!   `k`): a cast is named after what it casts, so the value and the correlated column `k`
//!   share a name and the join DataFusion builds from them is refused. The value gets a name
//!   of its own (in each branch of a UNION ALL too).
//! - An IN or EXISTS subquery in an aggregate's argument or FILTER clause
//!   (`sum(CASE WHEN k IN (SELECT …) THEN 1 ELSE 0 END)`), which DataFusion plans in a
//!   projection or a filter but not there: the argument is computed in a projection below
//!   the aggregate, which keeps its output (the same columns under the same names).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::expr::InSubquery;
use datafusion::logical_expr::logical_plan::{Aggregate, Projection, Subquery};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator};
use datafusion::optimizer::AnalyzerRule;

/// The analyzer rule: see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct PlannableSubqueries;

impl AnalyzerRule for PlannableSubqueries {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(rewrite_node).data()
    }

    fn name(&self) -> &str {
        "plannable_subqueries"
    }
}

/// The name an IN subquery's cast value takes.
const IN_VALUE: &str = "__strata_in_value";

/// `node` with its subqueries in plannable forms.
fn rewrite_node(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let node = match node {
        LogicalPlan::Aggregate(aggregate) => {
            let aggregate = subqueries_below(aggregate)?;
            if aggregate.transformed {
                return Ok(aggregate);
            }
            aggregate.data
        }
        other => other,
    };
    let outer = match &node {
        LogicalPlan::Filter(f) => Some(Arc::clone(&f.input)),
        LogicalPlan::Projection(p) => Some(Arc::clone(&p.input)),
        _ => None,
    };
    node.map_expressions(|expr| {
        expr.transform_up(|e| match e {
            Expr::InSubquery(in_subquery) => Ok(named_in_value(in_subquery)),
            Expr::ScalarSubquery(subquery) => match &outer {
                Some(outer) => over_domain(subquery, outer),
                None => Ok(Transformed::no(Expr::ScalarSubquery(subquery))),
            },
            other => Ok(Transformed::no(other)),
        })
    })
}

/// `expr` with each scalar subquery in it that is correlated by other comparisons than `=`
/// to the rows of `outer` over their domain (see the module documentation). Rules that make
/// such subqueries after the analyzer (`three_valued_in_subqueries`) call it on them.
pub(crate) fn scalar_subqueries_over_domain(
    expr: Expr,
    outer: &Arc<LogicalPlan>,
) -> Result<Transformed<Expr>> {
    expr.transform_up(|e| match e {
        Expr::ScalarSubquery(subquery) => over_domain(subquery, outer),
        other => Ok(Transformed::no(other)),
    })
}

/// Numbers the domains, whose names must differ within a statement.
static DOMAINS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The prefix of the columns that carry aggregates' arguments computed below them.
const AGGREGATE_ARG: &str = "__strata_aggregate_arg_";

/// `aggregate` with each argument and FILTER clause of its aggregate functions that holds an
/// IN or EXISTS subquery computed in a projection below it, where DataFusion plans such
/// subqueries (it does not in an aggregate's arguments); the aggregate itself if none does.
fn subqueries_below(aggregate: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let holds = |e: &Expr| {
        e.exists(|e| Ok(matches!(e, Expr::InSubquery(_) | Expr::Exists(_))))
            .unwrap_or(false)
    };
    if !aggregate.aggr_expr.iter().any(holds) {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    }
    let input_schema = Arc::clone(aggregate.input.schema());
    let mut moved: Vec<Expr> = Vec::new();
    let mut replace = |e: &mut Expr| {
        if !holds(e) {
            return;
        }
        let i = match moved.iter().position(|m| m == e) {
            Some(i) => i,
            None => {
                moved.push(e.clone());
                moved.len() - 1
            }
        };
        *e = Expr::Column(Column::from_name(format!("{AGGREGATE_ARG}{i}")));
    };
    let mut functions = Vec::with_capacity(aggregate.aggr_expr.len());
    for expr in &aggregate.aggr_expr {
        let name = expr.schema_name().to_string();
        let (inner, alias) = match expr {
            Expr::Alias(a) => (a.expr.as_ref().clone(), Some(a.name.clone())),
            e => (e.clone(), None),
        };
        let Expr::AggregateFunction(mut function) = inner else {
            functions.push(expr.clone());
            continue;
        };
        if !holds(&Expr::AggregateFunction(function.clone())) {
            functions.push(expr.clone());
            continue;
        }
        for arg in &mut function.params.args {
            replace(arg);
        }
        if let Some(filter) = function.params.filter.as_mut() {
            replace(filter);
        }
        // Under its old name, so that the plan above finds it.
        functions.push(Expr::AggregateFunction(function).alias(alias.unwrap_or(name)));
    }
    let below: Vec<Expr> = input_schema
        .columns()
        .into_iter()
        .map(Expr::Column)
        .chain(
            moved
                .into_iter()
                .enumerate()
                .map(|(i, e)| e.alias(format!("{AGGREGATE_ARG}{i}"))),
        )
        .collect();
    let below = Projection::try_new(below, aggregate.input)?;
    let computed = Aggregate::try_new(
        Arc::new(LogicalPlan::Projection(below)),
        aggregate.group_expr,
        functions,
    )?;
    let above: Vec<Expr> = aggregate
        .schema
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let above = Projection::try_new_with_schema(
        above,
        Arc::new(LogicalPlan::Aggregate(computed)),
        aggregate.schema,
    )?;
    Ok(Transformed::yes(LogicalPlan::Projection(above)))
}

/// An IN subquery whose value (a projection's one expression, or one in a branch of a UNION
/// ALL) is a cast, with that value aliased.
fn named_in_value(in_subquery: InSubquery) -> Transformed<Expr> {
    let named = match in_subquery.subquery.subquery.as_ref() {
        LogicalPlan::Union(union) if union.inputs.iter().any(|i| cast_value(i).is_some()) => {
            let inputs = union
                .inputs
                .iter()
                .map(|i| match i.as_ref() {
                    LogicalPlan::Projection(p) if p.expr.len() == 1 => {
                        aliased(p).map(|p| Arc::new(LogicalPlan::Projection(p)))
                    }
                    _ => None,
                })
                .collect::<Option<Vec<_>>>();
            inputs.and_then(|inputs| {
                datafusion::logical_expr::logical_plan::Union::try_new_with_loose_types(inputs)
                    .ok()
                    .map(LogicalPlan::Union)
            })
        }
        plan => cast_value(plan)
            .and_then(aliased)
            .map(LogicalPlan::Projection),
    };
    let Some(named) = named else {
        return Transformed::no(Expr::InSubquery(in_subquery));
    };
    let mut in_subquery = in_subquery;
    in_subquery.subquery.subquery = Arc::new(named);
    Transformed::yes(Expr::InSubquery(in_subquery))
}

/// `plan` if it is a projection of one cast (aliased or not: type coercion names the casts
/// it adds to a union's branches after the union's column).
fn cast_value(plan: &LogicalPlan) -> Option<&Projection> {
    let LogicalPlan::Projection(p) = plan else {
        return None;
    };
    let [value] = p.expr.as_slice() else {
        return None;
    };
    let value = match value {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    matches!(value, Expr::Cast(_) | Expr::TryCast(_)).then_some(p)
}

/// A projection of one expression with that expression named [`IN_VALUE`].
fn aliased(projection: &Projection) -> Option<Projection> {
    let value = match &projection.expr[0] {
        Expr::Alias(a) => a.expr.as_ref().clone(),
        e => e.clone(),
    };
    Projection::try_new(vec![value.alias(IN_VALUE)], Arc::clone(&projection.input)).ok()
}

/// A scalar aggregate subquery correlated by other comparisons than `=`, over the domain of
/// the outer columns it reads (see the module documentation); the subquery unchanged if it
/// has another shape, reads columns `outer` does not have, or is correlated by equalities only.
///
/// The shape: a projection or none, an aggregate with no GROUP BY, then filters and
/// projections down to rows that read no outer column. Outer columns may appear in the
/// filters only; each filter compares against the domain instead, each projection passes the
/// domain on, and one filter right below the aggregate correlates the domain to the outer
/// row by equalities, which DataFusion pulls up into the join it builds.
fn over_domain(subquery: Subquery, outer: &Arc<LogicalPlan>) -> Result<Transformed<Expr>> {
    let unchanged = |subquery| Ok(Transformed::no(Expr::ScalarSubquery(subquery)));
    let (projection, aggregate) = match subquery.subquery.as_ref() {
        LogicalPlan::Projection(p) => match p.input.as_ref() {
            LogicalPlan::Aggregate(a) => (Some(p), a),
            _ => return unchanged(subquery),
        },
        LogicalPlan::Aggregate(a) => (None, a),
        _ => return unchanged(subquery),
    };
    if !aggregate.group_expr.is_empty()
        || projection.is_some_and(|p| p.expr.iter().any(Expr::contains_outer))
        || aggregate.aggr_expr.iter().any(Expr::contains_outer)
    {
        return unchanged(subquery);
    }
    // The filters and projections below the aggregate, and whether one of them compares to
    // an outer column otherwise than by `=`.
    let mut chain = Vec::new();
    let mut node = aggregate.input.as_ref();
    let mut not_equality = false;
    let rows = loop {
        match node {
            LogicalPlan::Filter(f) => {
                not_equality |= split_conjunction(&f.predicate)
                    .iter()
                    .any(|c| c.contains_outer() && !is_equality(c));
                chain.push(node);
                node = f.input.as_ref();
            }
            LogicalPlan::Projection(p) if !p.input.all_out_ref_exprs().is_empty() => {
                if p.expr.iter().any(Expr::contains_outer) {
                    return unchanged(subquery);
                }
                chain.push(node);
                node = p.input.as_ref();
            }
            other if other.all_out_ref_exprs().is_empty() => break other,
            _ => return unchanged(subquery),
        }
    };
    if !not_equality {
        return unchanged(subquery);
    }
    // The outer columns it reads, each in `outer`.
    let mut columns: Vec<(Arc<datafusion::arrow::datatypes::Field>, Column)> = Vec::new();
    for node in &chain {
        if let LogicalPlan::Filter(f) = node {
            f.predicate.apply(|e| {
                if let Expr::OuterReferenceColumn(field, column) = e
                    && !columns.iter().any(|(_, c)| c == column)
                {
                    columns.push((Arc::clone(field), column.clone()));
                }
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })?;
        }
    }
    if columns.is_empty() || columns.iter().any(|(_, c)| !outer.schema().has_column(c)) {
        return unchanged(subquery);
    }
    let n = DOMAINS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let alias = format!("__strata_domain_{n}");
    let name = |i: usize| format!("__c{i}");
    let domain = LogicalPlanBuilder::from(Arc::unwrap_or_clone(Arc::clone(outer)))
        .project(
            columns
                .iter()
                .enumerate()
                .map(|(i, (_, c))| Expr::Column(c.clone()).alias(name(i))),
        )?
        .aggregate(
            (0..columns.len()).map(|i| Expr::Column(Column::from_name(name(i)))),
            Vec::<Expr>::new(),
        )?
        .alias(alias.as_str())?
        .build()?;
    let in_domain = |i: usize| Expr::Column(Column::new(Some(alias.as_str()), name(i)));
    // Rebuilt from the bottom: the rows beside the domain, then each filter and projection.
    let mut plan = LogicalPlanBuilder::from(domain)
        .cross_join(rows.clone())?
        .build()?;
    for node in chain.iter().rev() {
        plan = match node {
            LogicalPlan::Filter(f) => {
                let predicate = f
                    .predicate
                    .clone()
                    .transform_up(|e| match e {
                        Expr::OuterReferenceColumn(field, column) => {
                            match columns.iter().position(|(_, c)| *c == column) {
                                Some(i) => Ok(Transformed::yes(in_domain(i))),
                                None => {
                                    Ok(Transformed::no(Expr::OuterReferenceColumn(field, column)))
                                }
                            }
                        }
                        other => Ok(Transformed::no(other)),
                    })?
                    .data;
                LogicalPlanBuilder::from(plan).filter(predicate)?.build()?
            }
            LogicalPlan::Projection(p) => LogicalPlan::Projection(Projection::try_new(
                p.expr
                    .iter()
                    .cloned()
                    .chain((0..columns.len()).map(in_domain))
                    .collect(),
                Arc::new(plan),
            )?),
            _ => plan,
        };
    }
    let correlation = columns.iter().enumerate().map(|(i, (field, column))| {
        Expr::BinaryExpr(BinaryExpr::new(
            Box::new(in_domain(i)),
            Operator::Eq,
            Box::new(Expr::OuterReferenceColumn(
                Arc::clone(field),
                column.clone(),
            )),
        ))
    });
    let Some(correlation) = conjunction(correlation) else {
        return unchanged(subquery);
    };
    let rows = LogicalPlanBuilder::from(plan)
        .filter(correlation)?
        .build()?;
    let aggregated = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(rows),
        aggregate.group_expr.clone(),
        aggregate.aggr_expr.clone(),
    )?);
    let plan = match projection {
        Some(p) => {
            LogicalPlan::Projection(Projection::try_new(p.expr.clone(), Arc::new(aggregated))?)
        }
        None => aggregated,
    };
    Ok(Transformed::yes(Expr::ScalarSubquery(Subquery {
        subquery: Arc::new(plan),
        outer_ref_columns: subquery.outer_ref_columns,
        spans: subquery.spans,
    })))
}

/// Whether `expr` is an equality DataFusion decorrelates.
fn is_equality(expr: &Expr) -> bool {
    matches!(expr, Expr::BinaryExpr(b) if b.op == Operator::Eq)
}
