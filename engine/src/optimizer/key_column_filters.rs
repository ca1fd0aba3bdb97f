//! Join filters split per key column, for the scans a join on several columns cannot reach
//! as a whole.
//!
//! A hash join hands its build side's keys to the probe side as one dynamic filter over all
//! its key columns. DataFusion pushes that filter down only as far as one node sees all those
//! columns: past an aggregate that computes one of them, or a join below that brings them in
//! from different sides, it stops and the filter is not evaluated at all. A correlated
//! `cost = (SELECT min(cost) … WHERE item = o.item)` is such a case: it becomes a semi join on
//! `(item, min)` against an aggregate of all offers by item, so the minimum is computed for
//! every item although the outer query keeps a few.
//!
//! Each key column is a filter of its own, though: a probe row whose `item` is not among the
//! build side's `item`s cannot match, whatever its other keys. [`KeyColumnFilters`] gives every
//! such column of an inner or semi hash join on two or more columns (whose keys never match
//! NULL to NULL, and whose whole filter DataFusion placed nowhere below) a [`KeyColumnFilter`],
//! and traces it down the probe side, through column projections, filters, repartitions,
//! sorts, aggregates that group by it and the side of a join that provides it, to the Parquet
//! scan that reads it. There it joins the scan's predicate, where
//! [`crate::optimizer::dynamic_filter_row_pushdown`] evaluates it row by row like any join
//! filter, and statistics pruning uses it too. It does nothing while join dynamic filter
//! pushdown is switched off.
//!
//! It only ever drops probe rows that cannot match, which inner and semi joins leave out of
//! their result anyway. The trace stops at anything where dropping rows would change the rows
//! that remain: limits (of any node), windows, aggregates without that column as a group key
//! or with grouping sets, unions; and at anything it does not know.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{JoinType, NullEquality, Result, ScalarValue};
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::utils::{collect_columns, split_conjunction};
use datafusion::physical_expr_common::physical_expr::{
    snapshot_generation, snapshot_physical_expr,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion_datasource::file::FileSource;

use crate::optimizer::key_lists::{merge_partition_key_lists, per_column_lists};

/// Gives the key columns of multi-column hash joins filters of their own (see the module).
#[derive(Debug, Default)]
pub(crate) struct KeyColumnFilters;

impl PhysicalOptimizerRule for KeyColumnFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.enable_join_dynamic_filter_pushdown
            || !config.optimizer.enable_dynamic_filter_pushdown
        {
            return Ok(plan);
        }
        plan.transform_down(|node| {
            Ok(match split_join_filter(&node)? {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "key_column_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The join with its probe side's scans filtered by key column, or `None` where nothing
/// applies.
fn split_join_filter(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(join) = node.downcast_ref::<HashJoinExec>() else {
        return Ok(None);
    };
    // Keys that match NULL to NULL would be dropped by a key list.
    if join.on.len() < 2
        || join.null_equality == NullEquality::NullEqualsNull
        || !matches!(
            join.join_type,
            JoinType::Inner | JoinType::LeftSemi | JoinType::RightSemi
        )
    {
        return Ok(None);
    }
    let Some(source) = join.dynamic_expressions_produced().into_iter().next() else {
        return Ok(None);
    };
    let Some(id) = source.expression_id() else {
        return Ok(None);
    };
    // Where DataFusion placed the whole filter somewhere below, it is evaluated already.
    if contains_expression(&join.right, id)? {
        return Ok(None);
    }
    let probe_schema = join.right.schema();
    let mut probe = Arc::clone(&join.right);
    let mut split = false;
    for (_, key) in &join.on {
        let Some(column) = key.downcast_ref::<Column>() else {
            continue;
        };
        let key = KeyOf {
            source: Arc::clone(&source),
            source_schema: Arc::clone(&probe_schema),
            key: column.index(),
        };
        if let Some(new) = attach(&probe, column.index(), &key)? {
            probe = new;
            split = true;
        }
    }
    if !split {
        return Ok(None);
    }
    let children = vec![Arc::clone(&join.left), probe];
    replace_children_if_necessary(Arc::clone(node), children).map(Some)
}

/// Whether an expression with this id is used anywhere in `plan`.
fn contains_expression(plan: &Arc<dyn ExecutionPlan>, id: u64) -> Result<bool> {
    let mut found = false;
    plan.apply(|node| {
        node.apply_expressions(&mut |root| {
            root.apply(|expr| {
                if expr.expression_id() == Some(id) {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok(found)
}

/// One key column of a join's dynamic filter.
struct KeyOf {
    /// The join's dynamic filter.
    source: Arc<dyn PhysicalExpr>,
    /// The schema of the join's probe side, which `source` refers to.
    source_schema: SchemaRef,
    /// The key column, by index in `source_schema`.
    key: usize,
}

/// `plan` with a filter on `key` added to the scan that produces its output column `column`,
/// or `None` where the trace stops.
fn attach(
    plan: &Arc<dyn ExecutionPlan>,
    column: usize,
    key: &KeyOf,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    // A limit keeps some rows of many: dropping others would change which.
    if plan.fetch().is_some() {
        return Ok(None);
    }
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>() {
        let field = plan.schema().field(column).name().clone();
        let target = Arc::new(Column::new(&field, column)) as Arc<dyn PhysicalExpr>;
        return Ok(scan_with(exec, KeyColumnFilter::try_new(key, target)?));
    }
    // The input column the output column is, and which child it comes from.
    let (child, input_column) = if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let Some(expr) = p.expr().get(column) else {
            return Ok(None);
        };
        let Some(c) = expr.expr.downcast_ref::<Column>() else {
            return Ok(None);
        };
        (0, c.index())
    } else if let Some(f) = plan.downcast_ref::<FilterExec>() {
        let index = match f.projection() {
            Some(projection) => match projection.get(column) {
                Some(i) => *i,
                None => return Ok(None),
            },
            None => column,
        };
        (0, index)
    } else if plan.downcast_ref::<RepartitionExec>().is_some()
        || plan.downcast_ref::<CoalescePartitionsExec>().is_some()
        || plan.downcast_ref::<SortExec>().is_some()
    {
        (0, column)
    } else if let Some(a) = plan.downcast_ref::<AggregateExec>() {
        // A group key: dropping the input rows of some keys drops those groups, and only
        // those. Grouping sets null keys out, so they are left alone.
        let group = a.group_expr();
        if !group.is_single() || column >= group.expr().len() || a.limit_options().is_some() {
            return Ok(None);
        }
        let Some(c) = group.expr()[column].0.downcast_ref::<Column>() else {
            return Ok(None);
        };
        (0, c.index())
    } else if let Some(j) = plan.downcast_ref::<HashJoinExec>() {
        let index = match &j.projection {
            Some(projection) => match projection.get(column) {
                Some(i) => *i,
                None => return Ok(None),
            },
            None => column,
        };
        let left = j.left.schema().fields().len();
        match j.join_type {
            // Outer joins included: a row dropped on either side only turns the rows it
            // matched into rows with NULL in its columns, or removes them; either way its key
            // could not match above.
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                if index < left {
                    (0, index)
                } else {
                    (1, index - left)
                }
            }
            JoinType::LeftSemi | JoinType::LeftAnti => (0, index),
            JoinType::RightSemi | JoinType::RightAnti => (1, index),
            _ => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    let children = plan.children();
    let Some(input) = children.get(child) else {
        return Ok(None);
    };
    let Some(new_input) = attach(input, input_column, key)? else {
        return Ok(None);
    };
    let mut new_children: Vec<Arc<dyn ExecutionPlan>> =
        children.into_iter().map(Arc::clone).collect();
    new_children[child] = new_input;
    replace_children_if_necessary(Arc::clone(plan), new_children).map(Some)
}

/// A Parquet scan with `filter` added to its predicate.
fn scan_with(
    exec: &DataSourceExec,
    filter: Arc<dyn PhysicalExpr>,
) -> Option<Arc<dyn ExecutionPlan>> {
    let scan = exec.data_source().downcast_ref::<FileScanConfig>()?;
    let parquet = scan.file_source().downcast_ref::<ParquetSource>()?;
    let predicate = match parquet.filter() {
        Some(existing) => Arc::new(BinaryExpr::new(existing, Operator::And, filter)) as _,
        None => filter,
    };
    let mut scan = scan.clone();
    scan.file_source = Arc::new(parquet.with_predicate(predicate));
    Some(Arc::new(exec.clone().with_data_source(Arc::new(scan))))
}

/// The part of a join's dynamic filter about one key column, applied to that column where a
/// scan reads it: the key list (or, where the join publishes none, the bounds) of that column
/// alone. Before the join has seen its build side, it keeps every row.
///
/// Its children are the column it filters and an anchor: the join's filter with all its
/// columns mapped onto that one, which is never evaluated but lets the join see that its
/// filter is used (it fills it in only then) and lets rewrites of the scan's columns reach
/// every column in the tree. The state is read from the join's filter itself.
#[derive(Debug)]
pub(crate) struct KeyColumnFilter {
    /// The join's dynamic filter, over the join's probe-side schema.
    source: Arc<dyn PhysicalExpr>,
    source_schema: SchemaRef,
    /// The key column, by index in `source_schema`.
    key: usize,
    /// The column this filter tests, in the scan's schema (child 0).
    target: Arc<dyn PhysicalExpr>,
    /// The join's filter over `target` only (child 1).
    anchor: Arc<dyn PhysicalExpr>,
    /// The filters made from the source's state, shared by every copy of this filter: a
    /// scan adapts its predicate to each file range it opens (new copies with equal
    /// children), and deriving the filter again for each copy would rebuild its key list for
    /// every range.
    derived: Arc<Mutex<Vec<Derived>>>,
}

/// A filter derived for one target column from the source's state of one generation.
#[derive(Debug)]
struct Derived {
    target: Arc<dyn PhysicalExpr>,
    generation: u64,
    expr: Arc<dyn PhysicalExpr>,
}

/// How many targets' filters the copies of one filter keep (a scan's copies share one).
const DERIVED_KEPT: usize = 8;

impl KeyColumnFilter {
    fn try_new(key: &KeyOf, target: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let columns = key.source.children().len();
        let anchor =
            Arc::clone(&key.source).with_new_children(vec![Arc::clone(&target); columns])?;
        Ok(Arc::new(Self {
            source: Arc::clone(&key.source),
            source_schema: Arc::clone(&key.source_schema),
            key: key.key,
            target,
            anchor,
            derived: Arc::default(),
        }))
    }

    /// The conditions of the source's current state that are about the key column alone,
    /// moved onto the target column.
    fn derive(&self) -> Result<Arc<dyn PhysicalExpr>> {
        let generation = snapshot_generation(&self.source);
        let mut derived = self.derived.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(made) = derived
            .iter()
            .find(|d| d.generation == generation && d.target.as_ref() == self.target.as_ref())
        {
            return Ok(Arc::clone(&made.expr));
        }
        let state = snapshot_physical_expr(Arc::clone(&self.source))?;
        let state = merge_partition_key_lists(&state, &self.source_schema).unwrap_or(state);
        let state = state
            .transform_up(|e| {
                Ok(match per_column_lists(&e, &self.source_schema) {
                    Some(lists) => Transformed::yes(lists),
                    None => Transformed::no(e),
                })
            })
            .data()?;
        let target = &self.target;
        let mut kept = vec![];
        for condition in split_conjunction(&state) {
            let columns = collect_columns(condition);
            if columns.is_empty() || columns.iter().any(|c| c.index() != self.key) {
                continue;
            }
            let moved = Arc::clone(condition)
                .transform(|e| {
                    Ok(match e.downcast_ref::<Column>() {
                        Some(_) => Transformed::yes(Arc::clone(target)),
                        None => Transformed::no(e),
                    })
                })
                .data()?;
            kept.push(moved);
        }
        let expr = kept
            .into_iter()
            .reduce(|a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as _)
            .unwrap_or_else(|| Arc::new(Literal::new(ScalarValue::Boolean(Some(true)))));
        derived.retain(|d| d.target.as_ref() != self.target.as_ref());
        if derived.len() >= DERIVED_KEPT {
            derived.remove(0);
        }
        derived.push(Derived {
            target: Arc::clone(&self.target),
            generation,
            expr: Arc::clone(&expr),
        });
        Ok(expr)
    }
}

impl fmt::Display for KeyColumnFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.derive() {
            Ok(expr) => write!(f, "KeyColumnFilter [ {expr} ]"),
            Err(_) => write!(f, "KeyColumnFilter [ {} ]", self.target),
        }
    }
}

impl PartialEq for KeyColumnFilter {
    fn eq(&self, other: &Self) -> bool {
        self.source.as_ref() == other.source.as_ref()
            && self.key == other.key
            && self.target.as_ref() == other.target.as_ref()
    }
}

impl Eq for KeyColumnFilter {}

impl Hash for KeyColumnFilter {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.source.hash(state);
        self.key.hash(state);
        self.target.hash(state);
    }
}

impl PhysicalExpr for KeyColumnFilter {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _schema: &Schema) -> Result<bool> {
        Ok(true)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        self.derive()?.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.target, &self.anchor]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [target, anchor] = <[_; 2]>::try_from(children).map_err(|c: Vec<_>| {
            datafusion::common::DataFusionError::Internal(format!(
                "a key column filter got {} children",
                c.len()
            ))
        })?;
        Ok(Arc::new(Self {
            source: Arc::clone(&self.source),
            source_schema: Arc::clone(&self.source_schema),
            key: self.key,
            target,
            anchor,
            derived: Arc::clone(&self.derived),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.derive() {
            Ok(expr) => expr.fmt_sql(f),
            Err(_) => f.write_str("true"),
        }
    }

    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        Ok(Some(self.derive()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{physical_plan, pretty, scratch_session, shown};

    /// The Parquet scans of a plan whose predicate holds a key column filter: the first
    /// column each reads, and the filter.
    fn filtered_scans(
        plan: &Arc<dyn ExecutionPlan>,
        out: &mut Vec<(String, Arc<dyn PhysicalExpr>)>,
    ) {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>()
            && let Some(parquet) =
                crate::optimizer::split_switched_scans::parquet_source(scan.file_source())
            && let Some(predicate) = parquet.filter()
        {
            let mut found = None;
            predicate
                .apply(|e| {
                    if e.downcast_ref::<KeyColumnFilter>().is_some() {
                        found = Some(Arc::clone(e));
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
                .expect("walk");
            if let Some(filter) = found {
                out.push((exec.schema().field(0).name().clone(), filter));
            }
        }
        for child in plan.children() {
            filtered_scans(child, out);
        }
    }

    /// Offers of items by sellers, and items by size.
    async fn offers_and_items() -> (tempfile::TempDir, crate::Session) {
        let (dir, session) = scratch_session().await;
        session
            .sql(
                "CREATE TABLE processed.offers AS SELECT value % 5000 AS item, value % 7 AS seller, (value * 37) % 1000 AS cost FROM generate_series(1, 50000);
                 CREATE TABLE processed.items AS SELECT value AS item, value % 50 AS size FROM generate_series(1, 5000)",
            )
            .await
            .expect("tables");
        (dir, session)
    }

    /// The cheapest offers of items of size 3 (a correlated minimum per item): the minimum is a
    /// semi join on (item, cost) against an aggregate of offers by item.
    const CHEAPEST_OFFERS: &str = "SELECT o.item, o.seller, o.cost FROM processed.offers o JOIN processed.items i ON o.item = i.item
                     WHERE i.size = 3 AND o.cost = (SELECT min(cost) FROM processed.offers m WHERE m.item = o.item)
                     ORDER BY 1, 2";

    #[tokio::test]
    async fn a_key_of_a_multi_column_join_filters_the_scan_below_an_aggregate() {
        let (_dir, session) = offers_and_items().await;
        let query = CHEAPEST_OFFERS;
        let plan = physical_plan(&session, query).await;
        let mut scans = vec![];
        filtered_scans(&plan, &mut scans);
        let columns: Vec<_> = scans.iter().map(|(column, _)| column.as_str()).collect();
        assert_eq!(columns, ["item"], "{}", shown(&plan));
        // Same answer as the minimum computed by a window over all offers, where no join
        // filter reaches the scan.
        let expected = session
            .sql(
                "SELECT item, seller, cost FROM (
                   SELECT o.item, o.seller, o.cost, min(o.cost) OVER (PARTITION BY o.item) AS least
                   FROM processed.offers o JOIN processed.items i ON o.item = i.item WHERE i.size = 3)
                 WHERE cost = least ORDER BY 1, 2",
            )
            .await
            .expect("query");
        let answer = session.sql(query).await.expect("query");
        assert!(!expected.is_empty() && expected.iter().map(|b| b.num_rows()).sum::<usize>() > 50);
        assert_eq!(pretty(&answer), pretty(&expected));
    }

    #[tokio::test]
    async fn copies_of_a_key_column_filter_share_the_filter_they_derive() {
        let (_dir, session) = offers_and_items().await;
        let plan = physical_plan(&session, CHEAPEST_OFFERS).await;
        let mut scans = vec![];
        filtered_scans(&plan, &mut scans);
        let (_, filter) = scans.pop().expect("a scan with a key column filter");
        // A scan adapts its predicate to each file it opens: copies with equal children.
        let children = filter.children().into_iter().cloned().collect();
        let copy = Arc::clone(&filter)
            .with_new_children(children)
            .expect("copy");
        let derived = filter.snapshot().expect("snapshot").expect("a filter");
        let again = copy.snapshot().expect("snapshot").expect("a filter");
        assert!(
            Arc::ptr_eq(&derived, &again),
            "the copy derived {again} again"
        );
        // A copy over another column derives its own.
        let moved = Arc::new(Column::new("other", 1)) as Arc<dyn PhysicalExpr>;
        let anchor = Arc::clone(filter.children()[1]);
        let elsewhere = Arc::clone(&filter)
            .with_new_children(vec![moved, anchor])
            .expect("copy");
        let other = elsewhere.snapshot().expect("snapshot").expect("a filter");
        assert!(!Arc::ptr_eq(&derived, &other));
    }
}
