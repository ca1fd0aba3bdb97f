//! `x IN (SELECT y …)` and `x NOT IN (SELECT y …)` follow SQL's three-valued logic wherever
//! they stand, and correlated ones plan.
//!
//! `x IN S` is TRUE when some `y` of S equals `x`; otherwise it is FALSE when S is empty, and
//! NULL when `x` is NULL or S holds a NULL; otherwise FALSE. `NOT IN` is its negation. Where
//! NULL and FALSE both drop a row (a conjunct of WHERE or HAVING) only TRUE matters; under
//! NOT, inside OR and in the SELECT list NULL must stay NULL.
//!
//! DataFusion plans these as joins and gets some of them wrong: a NOT IN at the top of a
//! filter is a NULL-aware anti join only when a *column* of `x = y` is nullable (so `CASE …
//! END NOT IN …` over NOT NULL columns loses its NULLs), a NULL-aware anti join applies the
//! subquery's NULLs to every outer row even when a correlation picks other rows, and fails
//! outright with more than one key; inside OR or NOT it is a mark join, which knows TRUE and
//! FALSE only; in the SELECT list it does not plan at all, nor does a correlated IN whose
//! subquery casts its column.
//!
//! [`ThreeValuedInSubqueries`] runs before DataFusion decorrelates subqueries and leaves the
//! cases DataFusion plans right as they are (an uncorrelated IN at the top of a filter, and
//! an uncorrelated NOT IN there whose NULL-awareness DataFusion decides right, which stays a
//! hash anti join). It rewrites the others into EXISTS and scalar subqueries,
//! which DataFusion decorrelates into plain joins:
//!
//! - a correlated `x IN S` at the top of a filter: `EXISTS (S' WHERE y = x)`, a semi join;
//! - a correlated `x NOT IN S` at the top of a filter with NULLs possible: `NOT EXISTS (S'
//!   WHERE y = x OR y IS NULL OR x IS NULL)`, an anti join on the correlation's keys;
//! - an uncorrelated `x NOT IN S` at the top of a filter that DataFusion would plan as a
//!   plain anti join although `x` can be NULL: `NOT EXISTS (S' WHERE y = x) AND (state = 0
//!   OR (x IS NOT NULL AND state = 1))`, where `state` is one scalar subquery over S'
//!   (0: no rows, 1: rows without NULLs, 2: rows with a NULL);
//! - anywhere else where a NULL is possible or the subquery is correlated, and always in a
//!   SELECT list: `CASE WHEN (count of S' WHERE y = x) > 0 THEN TRUE WHEN state = 0 THEN
//!   FALSE WHEN state = 2 OR x IS NULL THEN NULL ELSE FALSE END`, negated for NOT IN; in a
//!   filter, `EXISTS (S' WHERE y = x)` for the count, and for a correlated S' `NOT EXISTS
//!   (S')` and `EXISTS (S' WHERE y IS NULL)` for the state, which DataFusion decorrelates
//!   whatever the correlation (a scalar subquery only on equalities).
//!
//! A correlated subquery over a UNION, which DataFusion cannot decorrelate, is first split
//! into one IN per branch ([`union_branches`]).
//!
//! Here S' is the subquery with its one column named [`VALUE`], so that a cast of the column
//! and the columns a correlation adds never share a name.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result, ScalarValue, Spans};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::expr::{Exists, InSubquery};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::{conjunction, disjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    Distinct, Expr, ExprSchemable, Filter, LogicalPlan, LogicalPlanBuilder, Projection, Subquery,
    Union, case, col, lit, when,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// The name of the subquery's one column in the subqueries this rule builds.
pub(crate) const VALUE: &str = "__strata_in_value";

#[derive(Debug, Default)]
pub(crate) struct ThreeValuedInSubqueries;

impl OptimizerRule for ThreeValuedInSubqueries {
    fn name(&self) -> &str {
        "three_valued_in_subqueries"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if !super::enabled(&config.options(), self.name()) {
            return Ok(Transformed::no(plan));
        }
        plan.transform_up_with_subqueries(rewrite_node)
    }
}

fn rewrite_node(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    match plan {
        LogicalPlan::Filter(filter) if has_in_subquery(&filter.predicate) => {
            let schema = Arc::clone(filter.input.schema());
            let mut changed = false;
            let mut conjuncts = vec![];
            for conjunct in split_conjunction_owned(filter.predicate.clone()) {
                let new = top_level(conjunct, &schema)?;
                changed |= new.transformed;
                conjuncts.push(new.data);
            }
            if !changed {
                return Ok(Transformed::no(LogicalPlan::Filter(filter)));
            }
            let predicate = conjunction(conjuncts).unwrap_or_else(|| lit(true));
            let filter = Filter::try_new(predicate, Arc::clone(&filter.input))?;
            Ok(Transformed::yes(LogicalPlan::Filter(filter)))
        }
        LogicalPlan::Projection(projection)
            if projection
                .expr
                .iter()
                .any(|e| has_in_subquery(e) || has_exists(e)) =>
        {
            let schema = Arc::clone(projection.input.schema());
            let names = NamePreserver::new_for_projection();
            let mut exprs = vec![];
            for expr in &projection.expr {
                let saved = names.save(expr);
                // DataFusion plans no IN or EXISTS subquery in a SELECT list: rewrite every one.
                let new = nested(expr.clone(), &schema, true)?;
                let new = exists_as_count(new.data)?;
                // Counts correlated by < or <> DataFusion does not decorrelate.
                let new = super::plannable_subqueries::scalar_subqueries_over_domain(
                    new.data,
                    &projection.input,
                )?;
                exprs.push(saved.restore(new.data));
            }
            let projection = Projection::try_new(exprs, Arc::clone(&projection.input))?;
            Ok(Transformed::yes(LogicalPlan::Projection(projection)))
        }
        plan => Ok(Transformed::no(plan)),
    }
}

fn has_exists(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::Exists(_))))
        .unwrap_or(false)
}

/// `EXISTS (S)` in a SELECT list as `coalesce((SELECT count(*) FROM S), 0) > 0` (`= 0` for
/// NOT EXISTS): DataFusion decorrelates scalar subqueries there, not EXISTS. EXISTS is never
/// NULL, nor is the coalesced count.
fn exists_as_count(expr: Expr) -> Result<Transformed<Expr>> {
    expr.transform_up(|e| {
        let Expr::Exists(Exists { subquery, negated }) = e else {
            return Ok(Transformed::no(e));
        };
        let rows = LogicalPlanBuilder::from(subquery.subquery.as_ref().clone())
            .aggregate(
                Vec::<Expr>::new(),
                vec![count(lit(1i64)).alias("__strata_rows")],
            )?
            .build()?;
        let rows = datafusion::functions::expr_fn::coalesce(vec![
            Expr::ScalarSubquery(Subquery {
                subquery: Arc::new(rows),
                outer_ref_columns: subquery.outer_ref_columns.clone(),
                spans: Spans::new(),
            }),
            lit(0i64),
        ]);
        Ok(Transformed::yes(if negated {
            rows.eq(lit(0i64))
        } else {
            rows.gt(lit(0i64))
        }))
    })
}

fn has_in_subquery(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::InSubquery(_))))
        .unwrap_or(false)
}

/// One conjunct of a filter, where NULL and FALSE both drop the row.
fn top_level(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let (in_subquery, negated) = match &expr {
        Expr::InSubquery(in_subquery) => (in_subquery, in_subquery.negated),
        Expr::Not(inner) => match inner.as_ref() {
            Expr::InSubquery(in_subquery) => (in_subquery, !in_subquery.negated),
            _ => return nested(expr, schema, false),
        },
        _ => return nested(expr, schema, false),
    };
    if contains_subquery(&in_subquery.expr) {
        return Ok(Transformed::no(expr));
    }
    if let Some(branches) = union_branches(in_subquery, negated)? {
        // NOT IN over a union: NOT IN each branch, each a conjunct of its own.
        if negated {
            let mut conjuncts = vec![];
            for branch in branches {
                conjuncts.push(top_level(branch, schema)?.data);
            }
            return Ok(Transformed::yes(
                conjunction(conjuncts).unwrap_or_else(|| lit(true)),
            ));
        }
        let either = disjunction(branches).unwrap_or_else(|| lit(false));
        return Ok(Transformed::yes(nested(either, schema, false)?.data));
    }
    let shape = Shape::of(in_subquery, schema)?;
    if !negated {
        // A semi join is right whatever the NULLs: only a match keeps the row.
        if !shape.correlated {
            return Ok(Transformed::no(expr));
        }
        let matches = shape.subquery_where(col(VALUE).eq(shape.outer_x.clone()))?;
        return Ok(Transformed::yes(Expr::Exists(Exists::new(matches, false))));
    }
    if !shape.x_nullable && !shape.y_nullable {
        // No NULLs: DataFusion's plain anti join is right.
        return Ok(Transformed::no(expr));
    }
    if !shape.correlated {
        // DataFusion makes the anti join NULL-aware when a column of `x = y` is nullable;
        // that is right unless `x` is nullable by its expression alone.
        if shape.x_columns_nullable || shape.y_nullable {
            return Ok(Transformed::no(expr));
        }
        let no_match = Expr::Exists(Exists::new(
            shape.subquery_where(col(VALUE).eq(shape.outer_x.clone()))?,
            true,
        ));
        let kept = case(shape.state()?)
            .when(lit(0i64), lit(true))
            .when(lit(1i64), shape.x.clone().is_not_null())
            .otherwise(lit(false))?;
        return Ok(Transformed::yes(no_match.and(kept)));
    }
    // Correlated: no row of this outer row's S' may equal x, be NULL, or meet a NULL x.
    let mut spoils = col(VALUE).eq(shape.outer_x.clone());
    if shape.y_nullable {
        spoils = spoils.or(col(VALUE).is_null());
    }
    if shape.x_nullable {
        spoils = spoils.or(shape.outer_x.clone().is_null());
    }
    let spoilers = shape.subquery_where(spoils)?;
    Ok(Transformed::yes(Expr::Exists(Exists::new(spoilers, true))))
}

/// IN subqueries inside an expression, where NULL and FALSE differ. With `always`, every one
/// is rewritten; otherwise those DataFusion's mark join gets right (uncorrelated, no NULLs)
/// are left.
fn nested(expr: Expr, schema: &DFSchema, always: bool) -> Result<Transformed<Expr>> {
    expr.transform_up(|e| {
        let Expr::InSubquery(in_subquery) = &e else {
            return Ok(Transformed::no(e));
        };
        if contains_subquery(&in_subquery.expr) {
            return Ok(Transformed::no(e));
        }
        if let Some(branches) = union_branches(in_subquery, in_subquery.negated)? {
            let combined = if in_subquery.negated {
                conjunction(branches).unwrap_or_else(|| lit(true))
            } else {
                disjunction(branches).unwrap_or_else(|| lit(false))
            };
            return Ok(Transformed::yes(nested(combined, schema, always)?.data));
        }
        let shape = Shape::of(in_subquery, schema)?;
        // DataFusion's mark join for an IN over a UNION inside OR fails to plan ("Projections
        // require unique expression names"), NULLs or not.
        let over_union = union_of(in_subquery).is_some();
        if !always && !shape.correlated && !shape.x_nullable && !shape.y_nullable && !over_union {
            return Ok(Transformed::no(e));
        }
        // In a filter DataFusion decorrelates EXISTS whatever the correlation; in a SELECT list
        // it decorrelates scalar subqueries only.
        let in3 = if always {
            shape.three_valued()?
        } else {
            shape.three_valued_in_filter()?
        };
        Ok(Transformed::yes(if in_subquery.negated {
            Expr::Not(Box::new(in3))
        } else {
            in3
        }))
    })
}

/// A correlated `x IN (A UNION [ALL] B …)`, which DataFusion cannot decorrelate, as `x IN A`,
/// `x IN B`, … (`x NOT IN A`, … when `negated`): IN over a union is the OR of IN over its
/// branches in three-valued logic too (TRUE on a match in any, NULL where no branch matches
/// and one yields NULL, FALSE otherwise), and NOT IN the AND of NOT IN.
fn union_branches(in_subquery: &InSubquery, negated: bool) -> Result<Option<Vec<Expr>>> {
    if in_subquery.subquery.outer_ref_columns.is_empty() {
        return Ok(None);
    }
    let Some((union, cast)) = union_of(in_subquery) else {
        return Ok(None);
    };
    let mut branches = vec![];
    for input in &union.inputs {
        // The branch's value named VALUE: an alias the branch gave it may be the name of a
        // column its correlation needs, which DataFusion's decorrelation adds beside it. With
        // the cast type coercion put above the union, if any.
        let (value, base) = match input.as_ref() {
            LogicalPlan::Projection(projection) if projection.expr.len() == 1 => (
                unalias(&projection.expr[0]).clone(),
                Arc::clone(&projection.input),
            ),
            _ => (
                Expr::Column(Column::from(input.schema().qualified_field(0))),
                Arc::clone(input),
            ),
        };
        let value = match cast {
            Some(cast) => {
                cast.clone()
                    .transform(|e| match e {
                        Expr::Column(_) => Ok(Transformed::yes(value.clone())),
                        other => Ok(Transformed::no(other)),
                    })?
                    .data
            }
            None => value,
        };
        let branch = Arc::new(LogicalPlan::Projection(Projection::try_new(
            vec![value.alias(VALUE)],
            base,
        )?));
        branches.push(Expr::InSubquery(InSubquery::new(
            in_subquery.expr.clone(),
            Subquery {
                outer_ref_columns: branch.all_out_ref_exprs(),
                subquery: branch,
                spans: Spans::new(),
            },
            negated,
        )));
    }
    Ok(Some(branches))
}

/// The UNION the subquery of `in_subquery` reads, under the DISTINCT of a UNION without ALL
/// (as written or as the grouping DataFusion has made of it): duplicates change no IN. With
/// it, the cast of its one column that type coercion put above it, if any.
fn union_of(in_subquery: &InSubquery) -> Option<(&Union, Option<&Expr>)> {
    let mut plan = in_subquery.subquery.subquery.as_ref();
    let mut cast = None;
    loop {
        plan = match plan {
            LogicalPlan::Distinct(Distinct::All(input)) => input.as_ref(),
            LogicalPlan::Aggregate(aggregate)
                if aggregate.aggr_expr.is_empty()
                    && aggregate.group_expr.len() == 1
                    && matches!(aggregate.group_expr[0], Expr::Column(_)) =>
            {
                aggregate.input.as_ref()
            }
            LogicalPlan::Projection(projection)
                if cast.is_none()
                    && projection.expr.len() == 1
                    && is_cast_of_column(&projection.expr[0]) =>
            {
                cast = Some(&projection.expr[0]);
                projection.input.as_ref()
            }
            _ => break,
        };
    }
    match plan {
        LogicalPlan::Union(union) => Some((union, cast.map(unalias))),
        _ => None,
    }
}

/// `expr` without the aliases around it.
fn unalias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unalias(&alias.expr),
        other => other,
    }
}

/// Whether `expr` is a cast of one column (under aliases).
fn is_cast_of_column(expr: &Expr) -> bool {
    match unalias(expr) {
        Expr::Cast(cast) => matches!(unalias(&cast.expr), Expr::Column(_)),
        Expr::TryCast(cast) => matches!(unalias(&cast.expr), Expr::Column(_)),
        _ => false,
    }
}

fn contains_subquery(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::InSubquery(_) | Expr::Exists(_) | Expr::ScalarSubquery(_)
        ))
    })
    .unwrap_or(false)
}

/// What the rewrites need of one `x IN (subquery)`.
struct Shape {
    /// `x` over the outer query's columns.
    x: Expr,
    /// `x` with its columns as outer references, for use inside a subquery.
    outer_x: Expr,
    /// The subquery, with its one column named [`VALUE`].
    valued: LogicalPlan,
    /// The outer references of the subquery and of `x`.
    outer_refs: Vec<Expr>,
    correlated: bool,
    x_nullable: bool,
    /// Whether DataFusion sees a nullable column in `x`.
    x_columns_nullable: bool,
    y_nullable: bool,
}

impl Shape {
    fn of(in_subquery: &InSubquery, schema: &DFSchema) -> Result<Self> {
        let x = in_subquery.expr.as_ref().clone();
        let subquery = &in_subquery.subquery;
        let mut outer_refs = subquery.outer_ref_columns.clone();
        let mut x_columns_nullable = false;
        let outer_x = x
            .clone()
            .transform_up(|e| match e {
                Expr::Column(column) => {
                    let (_, field) = schema.qualified_field_from_column(&column)?;
                    x_columns_nullable |= field.is_nullable();
                    let outer = Expr::OuterReferenceColumn(Arc::clone(field), column);
                    if !outer_refs.contains(&outer) {
                        outer_refs.push(outer.clone());
                    }
                    Ok(Transformed::yes(outer))
                }
                // A column of a query further out stays what it is.
                e @ Expr::OuterReferenceColumn(..) => {
                    if !outer_refs.contains(&e) {
                        outer_refs.push(e.clone());
                    }
                    Ok(Transformed::no(e))
                }
                e => Ok(Transformed::no(e)),
            })?
            .data;
        let y_nullable = subquery
            .subquery
            .schema()
            .fields()
            .first()
            .is_none_or(|f| f.is_nullable());
        Ok(Self {
            x_nullable: x.nullable(schema)?,
            x,
            outer_x,
            valued: valued(&subquery.subquery)?,
            correlated: !subquery.outer_ref_columns.is_empty(),
            outer_refs,
            x_columns_nullable,
            y_nullable,
        })
    }

    fn subquery(&self, plan: LogicalPlan) -> Subquery {
        Subquery {
            subquery: Arc::new(plan),
            outer_ref_columns: self.outer_refs.clone(),
            spans: Spans::new(),
        }
    }

    /// The subquery's rows that meet `predicate`.
    fn subquery_where(&self, predicate: Expr) -> Result<Subquery> {
        let plan = LogicalPlanBuilder::from(self.valued.clone())
            .filter(predicate)?
            .build()?;
        Ok(self.subquery(plan))
    }

    /// The scalar subquery 0 when the subquery has no rows, 2 when it yields a NULL, else 1.
    fn state(&self) -> Result<Expr> {
        let plan = LogicalPlanBuilder::from(self.valued.clone())
            .aggregate(
                Vec::<Expr>::new(),
                vec![
                    count(lit(1i64)).alias("__strata_rows"),
                    count(col(VALUE)).alias("__strata_values"),
                ],
            )?
            .project(vec![
                when(col("__strata_rows").eq(lit(0i64)), lit(0i64))
                    .when(col("__strata_values").lt(col("__strata_rows")), lit(2i64))
                    .otherwise(lit(1i64))?
                    .alias("__strata_state"),
            ])?
            .build()?;
        // A correlated subquery over no rows yields no row, hence NULL: no rows.
        Ok(Expr::ScalarFunction(
            datafusion::logical_expr::expr::ScalarFunction::new_udf(
                datafusion::functions::core::coalesce(),
                vec![Expr::ScalarSubquery(self.subquery(plan)), lit(0i64)],
            ),
        ))
    }

    /// `x IN (subquery)` as an expression of three values.
    fn three_valued(&self) -> Result<Expr> {
        let matches = LogicalPlanBuilder::from(self.valued.clone())
            .filter(col(VALUE).eq(self.outer_x.clone()))?
            .aggregate(
                Vec::<Expr>::new(),
                vec![count(lit(1i64)).alias("__strata_matches")],
            )?
            .build()?;
        let matches = Expr::ScalarSubquery(self.subquery(matches));
        let null = || lit(ScalarValue::Boolean(None));
        let no_match = case(self.state()?)
            .when(lit(0i64), lit(false))
            .when(lit(2i64), null())
            .otherwise(when(self.x.clone().is_null(), null()).otherwise(lit(false))?)?;
        when(matches.gt(lit(0i64)), lit(true)).otherwise(no_match)
    }
}

impl Shape {
    /// `x IN (subquery)` as an expression of three values, for a filter: EXISTS subqueries,
    /// which DataFusion turns into mark joins whatever the correlation, and for an
    /// uncorrelated subquery the one-row `state`.
    fn three_valued_in_filter(&self) -> Result<Expr> {
        let exists = |predicate: Option<Expr>| -> Result<Expr> {
            let subquery = match predicate {
                Some(predicate) => self.subquery_where(predicate)?,
                None => self.subquery(self.valued.clone()),
            };
            Ok(Expr::Exists(Exists::new(subquery, false)))
        };
        let null = || lit(ScalarValue::Boolean(None));
        let x_null = when(self.x.clone().is_null(), null()).otherwise(lit(false))?;
        let no_match = if self.correlated {
            let any_null = if self.y_nullable {
                exists(Some(col(VALUE).is_null()))?
            } else {
                lit(false)
            };
            when(Expr::Not(Box::new(exists(None)?)), lit(false))
                .when(any_null, null())
                .otherwise(x_null)?
        } else {
            case(self.state()?)
                .when(lit(0i64), lit(false))
                .when(lit(2i64), null())
                .otherwise(x_null)?
        };
        when(
            exists(Some(col(VALUE).eq(self.outer_x.clone())))?,
            lit(true),
        )
        .otherwise(no_match)
    }
}

/// The subquery with its one column named [`VALUE`].
fn valued(plan: &LogicalPlan) -> Result<LogicalPlan> {
    if let LogicalPlan::Projection(projection) = plan
        && projection.expr.len() == 1
    {
        let expr = match projection.expr[0].clone() {
            Expr::Alias(alias) => *alias.expr,
            expr => expr,
        };
        return Ok(LogicalPlan::Projection(Projection::try_new(
            vec![expr.alias(VALUE)],
            Arc::clone(&projection.input),
        )?));
    }
    let (qualifier, field) = plan.schema().qualified_field(0);
    LogicalPlanBuilder::from(plan.clone())
        .project(vec![
            Expr::Column(Column::new(qualifier.cloned(), field.name())).alias(VALUE),
        ])?
        .build()
}

#[cfg(test)]
mod tests {
    use crate::test_support::{physical_plan, pretty, scratch_session, shown};

    async fn logical(session: &crate::Session, query: &str) -> String {
        session
            .plan_query(query)
            .await
            .expect("plan")
            .into_optimized_plan()
            .expect("optimized")
            .display_indent()
            .to_string()
    }

    async fn rows(session: &crate::Session, query: &str) -> String {
        pretty(&session.sql(query).await.expect("query"))
    }

    async fn switch(session: &crate::Session, on: bool) {
        session
            .sql(&format!(
                "SET strata.optimizer.three_valued_in_subqueries = {on}"
            ))
            .await
            .expect("switch");
    }

    async fn tables() -> (tempfile::TempDir, crate::Session) {
        let (dir, session) = scratch_session().await;
        session
            .sql(
                "CREATE TABLE processed.pairs STORED AS PARQUET AS SELECT * FROM (VALUES (1, 10), (2, NULL), (NULL, 30), (4, 40)) t(a, b);
                 CREATE TABLE processed.keys STORED AS PARQUET AS SELECT * FROM (VALUES (1), (NULL), (5)) t(c);
                 CREATE TABLE curated.nums STORED AS DELTA AS SELECT value AS k FROM generate_series(1, 6);
                 CREATE TABLE curated.few STORED AS DELTA AS SELECT value AS c FROM generate_series(2, 3)",
            )
            .await
            .expect("tables");
        (dir, session)
    }

    /// NOT IN inside OR: DataFusion's mark join makes `a NOT IN (1, NULL, 5)` TRUE for 2 and
    /// 4; the rule plans EXISTS and the subquery's state, and NULL stays NULL.
    #[tokio::test]
    async fn not_in_inside_or_is_three_valued() {
        let (_dir, session) = tables().await;
        let query = "SELECT a FROM processed.pairs WHERE a NOT IN (SELECT c FROM processed.keys) OR b > 20 ORDER BY a";
        let before = logical(&session, query).await;
        assert!(before.contains("__strata_in_value"), "{before}");
        assert!(before.contains("LeftMark"), "{before}");
        let answer = rows(&session, query).await;
        assert!(
            answer.contains("| 4 |") && !answer.contains("| 2 |"),
            "{answer}"
        );
        switch(&session, false).await;
        let after = logical(&session, query).await;
        assert!(!after.contains("__strata_in_value"), "{after}");
        // DataFusion's own answer keeps 2, for which NOT IN is NULL.
        let answer = rows(&session, query).await;
        assert!(answer.contains("| 2 |"), "{answer}");
    }

    /// A NOT IN at the top of a filter whose NULL-awareness DataFusion decides right stays
    /// its hash anti join; one whose outer expression is NULL only by its form (CASE over NOT
    /// NULL columns) gets an anti join on the key and the subquery's state.
    #[tokio::test]
    async fn top_level_not_in_keeps_its_hash_anti_join() {
        let (_dir, session) = tables().await;
        let query = "SELECT count(*) AS n FROM processed.pairs WHERE a NOT IN (SELECT c FROM processed.keys WHERE c IS NOT NULL)";
        let plan = logical(&session, query).await;
        assert!(!plan.contains("__strata_in_value"), "{plan}");
        let physical = shown(&physical_plan(&session, query).await);
        assert!(physical.contains("HashJoinExec"), "{physical}");
        assert!(!physical.contains("NestedLoopJoinExec"), "{physical}");
        // 1 is in {1, 5}; NULL NOT IN a non-empty set is NULL.
        assert!(rows(&session, query).await.contains("| 2 |"));

        let query = "SELECT k FROM curated.nums WHERE (CASE WHEN k > 4 THEN k END) NOT IN (SELECT c FROM curated.few) ORDER BY k";
        let plan = logical(&session, query).await;
        assert!(plan.contains("__strata_in_value"), "{plan}");
        // The anti join is hashed; only the one-row state is joined by a nested loop.
        let physical = shown(&physical_plan(&session, query).await);
        assert!(
            physical
                .lines()
                .any(|l| l.contains("HashJoinExec") && l.contains("Anti")),
            "{physical}"
        );
        let answer = rows(&session, query).await;
        assert_eq!(answer.matches("\n|").count(), 3, "5 and 6: {answer}");
        switch(&session, false).await;
        let answer = rows(&session, query).await;
        assert_eq!(
            answer.matches("\n|").count(),
            7,
            "DataFusion's six rows: {answer}"
        );
    }

    /// A correlated NOT IN with NULLs plans as one anti join hashed on the correlation's key,
    /// where DataFusion fails ("null_aware anti join only supports single column join key").
    #[tokio::test]
    async fn correlated_not_in_plans_as_an_anti_join() {
        let (_dir, session) = tables().await;
        let query = "SELECT a FROM processed.pairs WHERE a NOT IN (SELECT b FROM processed.pairs p2 WHERE p2.a = pairs.a) ORDER BY a";
        let plan = logical(&session, query).await;
        assert!(plan.contains("LeftAnti"), "{plan}");
        let physical = shown(&physical_plan(&session, query).await);
        assert!(physical.contains("HashJoinExec"), "{physical}");
        let answer = rows(&session, query).await;
        // 1 (10 is not 1), 4 (40 is not 4) and NULL (its set is empty); 2's set is {NULL}.
        assert_eq!(answer.matches("\n|").count(), 4, "{answer}");
        assert!(!answer.contains("| 2 "), "{answer}");
        switch(&session, false).await;
        let failed = session.sql(query).await.expect_err("DataFusion plans none");
        assert!(failed.to_string().contains("null_aware"), "{failed}");
    }

    /// IN in a SELECT list plans, with NULL where SQL says NULL.
    #[tokio::test]
    async fn in_in_select_list_plans() {
        let (_dir, session) = tables().await;
        let query =
            "SELECT a, a IN (SELECT c FROM processed.keys) AS x FROM processed.pairs ORDER BY a";
        let answer = rows(&session, query).await;
        assert!(answer.contains("| 1 | true |"), "{answer}");
        assert!(answer.contains("| 2 |      |"), "{answer}");
        switch(&session, false).await;
        assert!(session.sql(query).await.is_err());
    }
}
