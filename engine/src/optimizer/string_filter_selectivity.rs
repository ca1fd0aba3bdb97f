//! Selectivities of filters on string columns, from the columns' distinct counts.
//!
//! DataFusion bounds a filter's rows by interval analysis, which covers numbers and dates
//! only. A filter with a condition on a string column anywhere in it (`name = 'SAUDI
//! ARABIA'`) gets the default selectivity, 20%, for the whole predicate: a filter that keeps
//! one nation of 25 is estimated to keep 5, so the join order cannot see which tables narrow
//! the query most.
//!
//! [`StringFilterSelectivity`] gives such a filter a selectivity worked out per condition:
//! an equality (or `IN` list) on a column whose distinct count is known keeps one value (or
//! the list's) of that many; `<>` and `NOT IN` the rest; `NOT LIKE` all but the default
//! share; conditions interval analysis covers keep what it says. Conditions joined by AND
//! multiply, by OR add up (values of one column without overlap, others less their overlap,
//! taken as independent). The conditions left
//! keep the default share between them, as DataFusion gives a whole predicate it cannot
//! bound. Parquet files strata writes record the distinct counts
//! ([`crate::formats::distinct_counts`]): the benchmark generators', and those of `CREATE
//! TABLE … AS`, INSERT and INSERT OVERWRITE into Parquet tables
//! ([`crate::formats::parquet_sink`]); Delta tables and files written elsewhere have none,
//! and a table has a column's count only when every file has it. A column without one
//! measures nothing, and a filter with no condition that a distinct count measures is left
//! to DataFusion. The result
//! replaces the filter's default selectivity, so DataFusion's statistics, join selection and
//! strata's join order all see it. DataFusion keeps selectivities in whole percent; the
//! least is 1%.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue, Statistics};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, InListExpr, LikeExpr, Literal, NotExpr, TryCastExpr,
};
use datafusion::physical_expr::intervals::utils::check_support;
use datafusion::physical_expr::{AnalysisContext, PhysicalExpr, analyze};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// Sets the default selectivity of filters interval analysis cannot bound.
#[derive(Debug, Default)]
pub(crate) struct StringFilterSelectivity;

impl PhysicalOptimizerRule for StringFilterSelectivity {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let default = f64::from(config.optimizer.default_filter_selectivity.min(100)) / 100.0;
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            if check_support(filter.predicate(), &schema) {
                // DataFusion bounds it itself.
                return Ok(Transformed::no(node));
            }
            let Ok(statistics) =
                StatisticsContext::new().compute(filter.input().as_ref(), &StatisticsArgs::new())
            else {
                return Ok(Transformed::no(node));
            };
            let estimate = Estimate {
                schema: &schema,
                statistics: &statistics,
                default,
            };
            let selectivity = estimate.of(filter.predicate());
            if !selectivity.measured {
                return Ok(Transformed::no(node));
            }
            // The conditions nothing measures keep the default share between them, as
            // DataFusion gives a whole predicate it cannot bound.
            let share = if selectivity.unknown {
                selectivity.share * default
            } else {
                selectivity.share
            };
            if !share.is_finite() {
                return Ok(Transformed::no(node));
            }
            let percent = (share * 100.0).round().clamp(1.0, 100.0) as u8;
            if percent == filter.default_selectivity() {
                return Ok(Transformed::no(node));
            }
            let rebuilt = FilterExecBuilder::from(filter)
                .with_default_selectivity(percent)
                .build()?;
            Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "string_filter_selectivity"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The share of rows a condition keeps, whether a distinct count measured any of it, and
/// whether a part of it could not be estimated (its share then leaves that part out).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Selectivity {
    share: f64,
    measured: bool,
    unknown: bool,
    /// The column this condition keeps some values of (an equality, an `IN` list, or an
    /// OR of them), whose shares add up without overlap.
    values_of: Option<usize>,
}

impl Selectivity {
    const UNKNOWN: Selectivity = Selectivity {
        share: 1.0,
        measured: false,
        unknown: true,
        values_of: None,
    };

    fn known(share: f64) -> Selectivity {
        Selectivity {
            share,
            measured: false,
            unknown: false,
            values_of: None,
        }
    }

    fn measured(share: f64) -> Selectivity {
        Selectivity {
            share,
            measured: true,
            unknown: false,
            values_of: None,
        }
    }

    fn values_of(share: f64, column: usize) -> Selectivity {
        Selectivity {
            values_of: Some(column),
            ..Selectivity::measured(share)
        }
    }
}

struct Estimate<'a> {
    schema: &'a SchemaRef,
    statistics: &'a Statistics,
    default: f64,
}

impl Estimate<'_> {
    fn of(&self, expr: &Arc<dyn PhysicalExpr>) -> Selectivity {
        if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
            match binary.op() {
                Operator::And => {
                    let (l, r) = (self.of(binary.left()), self.of(binary.right()));
                    return Selectivity {
                        share: l.share * r.share,
                        measured: l.measured || r.measured,
                        unknown: l.unknown || r.unknown,
                        values_of: None,
                    };
                }
                Operator::Or => {
                    let (l, r) = (self.of(binary.left()), self.of(binary.right()));
                    if l.unknown || r.unknown {
                        return Selectivity::UNKNOWN;
                    }
                    if let (Some(a), Some(b)) = (l.values_of, r.values_of)
                        && a == b
                    {
                        // Values of one column: no row has two.
                        return Selectivity::values_of((l.share + r.share).min(1.0), a);
                    }
                    return Selectivity {
                        share: l.share + r.share - l.share * r.share,
                        measured: l.measured || r.measured,
                        unknown: false,
                        values_of: None,
                    };
                }
                Operator::Eq | Operator::NotEq => {
                    if let Some((column, values)) = self
                        .column_against_literal(binary.left(), binary.right())
                        .or_else(|| self.column_against_literal(binary.right(), binary.left()))
                    {
                        let share = (1.0 / values).min(1.0);
                        return if *binary.op() == Operator::Eq {
                            Selectivity::values_of(share, column)
                        } else {
                            Selectivity::measured(1.0 - share)
                        };
                    }
                }
                _ => {}
            }
        }
        if let Some(in_list) = expr.downcast_ref::<InListExpr>()
            && let Some(mut listed) = in_list
                .list()
                .iter()
                .map(literal)
                .collect::<Option<Vec<&ScalarValue>>>()
            && let Some((column, values)) = self.distinct_values(in_list.expr())
        {
            listed.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            listed.dedup();
            let share = (listed.len() as f64 / values).min(1.0);
            return if in_list.negated() {
                Selectivity::measured(1.0 - share)
            } else {
                Selectivity::values_of(share, column)
            };
        }
        if let Some(not) = expr.downcast_ref::<NotExpr>() {
            let inner = self.of(not.arg());
            if inner.unknown {
                return Selectivity::UNKNOWN;
            }
            return Selectivity {
                share: 1.0 - inner.share,
                values_of: None,
                ..inner
            };
        }
        // A pattern that rows must not match keeps most of them.
        if let Some(like) = expr.downcast_ref::<LikeExpr>()
            && like.negated()
        {
            return Selectivity::known(1.0 - self.default);
        }
        if check_support(expr, self.schema)
            && let Ok(context) = AnalysisContext::try_from_statistics(
                self.schema,
                &self.statistics.column_statistics,
            )
            && let Ok(analysis) = analyze(expr, context, self.schema)
            && let Some(share) = analysis.selectivity
        {
            return Selectivity::known(share);
        }
        Selectivity::UNKNOWN
    }

    /// The column and its distinct values when `other` is a non-NULL literal.
    fn column_against_literal(
        &self,
        column: &Arc<dyn PhysicalExpr>,
        other: &Arc<dyn PhysicalExpr>,
    ) -> Option<(usize, f64)> {
        literal(other)?;
        self.distinct_values(column)
    }

    /// A column (under casts) and its distinct count, if the statistics know it.
    fn distinct_values(&self, expr: &Arc<dyn PhysicalExpr>) -> Option<(usize, f64)> {
        let mut expr = expr;
        loop {
            if let Some(cast) = expr.downcast_ref::<CastExpr>() {
                expr = cast.expr();
            } else if let Some(cast) = expr.downcast_ref::<TryCastExpr>() {
                expr = cast.expr();
            } else {
                break;
            }
        }
        let column = expr.downcast_ref::<Column>()?;
        let statistics = self.statistics.column_statistics.get(column.index())?;
        match statistics.distinct_count {
            Precision::Exact(n) | Precision::Inexact(n) if n > 0 => {
                Some((column.index(), n as f64))
            }
            _ => None,
        }
    }
}

/// The value of a non-NULL literal.
fn literal(expr: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
    expr.downcast_ref::<Literal>()
        .map(Literal::value)
        .filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::{GenFormat, Generation};
    use crate::test_support::{physical_plan, scratch_session};

    /// The rows the topmost filter of `query`'s plan is estimated to keep.
    async fn filtered_rows(session: &crate::Session, query: &str) -> usize {
        let plan = physical_plan(session, query).await;
        let mut found = None;
        plan.apply(|node| {
            if node.downcast_ref::<FilterExec>().is_some() {
                found = StatisticsContext::new()
                    .compute(node.as_ref(), &StatisticsArgs::new())
                    .ok()
                    .and_then(|s| s.num_rows.get_value().copied());
                return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .expect("walk");
        found.expect("a filter with a row estimate")
    }

    #[tokio::test]
    async fn conditions_on_generated_string_columns_keep_their_share_of_values() {
        let (_dir, session) = scratch_session().await;
        let generation = Generation {
            suite: "tpch",
            sf: 0.01,
            zone: "processed".into(),
            format: GenFormat::Parquet,
            partitioned: false,
        };
        generation
            .run(
                &session,
                crate::datagen::tpch::sources(0.01),
                Arc::new(|_, _| {}),
            )
            .await
            .expect("tpch gen");
        // One nation of 25, where the default would keep 20% (5).
        let one = "SELECT n_nationkey FROM processed.nation WHERE n_name = 'GERMANY'";
        assert_eq!(filtered_rows(&session, one).await, 1);
        // One status of three among 15,000 orders (33%), two of three (67%), the other two.
        let status = "SELECT o_orderkey FROM processed.orders WHERE o_orderstatus = 'F'";
        assert_eq!(filtered_rows(&session, status).await, 4_950);
        let two = "SELECT o_orderkey FROM processed.orders WHERE o_orderstatus IN ('F', 'P')";
        assert_eq!(filtered_rows(&session, two).await, 10_050);
        let not_one = "SELECT o_orderkey FROM processed.orders WHERE o_orderstatus <> 'O'";
        assert_eq!(filtered_rows(&session, not_one).await, 10_050);
        // A third, or one priority of five: 1/3 + 1/5 - 1/15 = 47%.
        let either = "SELECT o_orderkey FROM processed.orders \
                      WHERE o_orderstatus = 'F' OR o_orderpriority = '1-URGENT'";
        assert_eq!(filtered_rows(&session, either).await, 7_050);
        // No distinct count measures LIKE: DataFusion's default stays.
        let like = "SELECT o_orderkey FROM processed.orders WHERE o_comment LIKE '%special%'";
        assert_eq!(filtered_rows(&session, like).await, 3_000);
    }

    /// A table `CREATE TABLE … AS` wrote gives its filters the share of one value; the same
    /// rows in files DataFusion wrote (no distinct counts), or with only some files counted,
    /// keep DataFusion's default share (20%), without an error.
    #[tokio::test]
    async fn written_tables_carry_their_counts_and_others_fall_back() {
        let (dir, session) = scratch_session().await;
        let rows = "SELECT value AS id, 'city_' || CAST(value % 4 AS VARCHAR) AS city \
                    FROM generate_series(1, 20000)";
        session
            .sql(&format!("CREATE TABLE processed.counted AS {rows}"))
            .await
            .expect("create");
        let one = "WHERE city = 'city_1'";
        let query = |table: &str| format!("SELECT id FROM processed.{table} {one}");
        assert_eq!(filtered_rows(&session, &query("counted")).await, 5_000);
        let plain = dir.path().join("plain");
        session
            .plan_query(rows)
            .await
            .expect("plan")
            .write_parquet(
                &format!("{}/", plain.display()),
                datafusion::dataframe::DataFrameWriteOptions::new(),
                None,
            )
            .await
            .expect("DataFusion's write");
        session
            .sql(&format!(
                "CREATE EXTERNAL TABLE processed.plain STORED AS PARQUET LOCATION '{}/'",
                plain.display()
            ))
            .await
            .expect("register");
        assert_eq!(filtered_rows(&session, &query("plain")).await, 4_000);
        // An insert adds a counted file beside the uncounted ones: still no count for the
        // table.
        session
            .sql(&format!("INSERT INTO processed.plain {rows}"))
            .await
            .expect("insert");
        assert_eq!(filtered_rows(&session, &query("plain")).await, 8_000);
        let rows = session
            .sql(&format!("SELECT count(*) AS n FROM processed.plain {one}"))
            .await
            .expect("count");
        assert!(crate::test_support::pretty(&rows).contains("| 10000 |"));
    }
}
