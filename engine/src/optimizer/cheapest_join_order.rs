//! The inner joins of a query run in the order estimated cheapest, not in the order of the
//! FROM list.
//!
//! DataFusion joins the tables of a comma join in the order they are listed, taking next the
//! first table that shares a condition with those joined so far. A query that lists a fact
//! table before the small, filtered dimension that narrows it joins every fact row first,
//! where joining the filtered dimension first would leave a fraction of them.
//!
//! [`CheapestJoinOrder`] runs before DataFusion's join selection, while join reordering is
//! on. It takes each group of inner hash joins on column equalities (all in one partition
//! mode, none NULL-aware or matching NULL to NULL, with column-only projections between them)
//! apart into its inputs and key conditions, and for groups of 3 to [`MAX_INPUTS`] inputs
//! finds the cheapest tree by dynamic programming over the connected subsets. A tree's cost is
//! the sum of the estimated rows of its joins and of their smaller inputs, which are hashed;
//! a join's rows are estimated from its inputs' rows and its keys' distinct values (see
//! [`Estimates::join_rows`]). Key columns equal through a chain of conditions form one class:
//! `c_nationkey = s_nationkey AND s_nationkey = n_nationkey` lets `customer` join `nation`
//! directly, with the implied condition.
//!
//! The new tree replaces the old one only when the old one is estimated [`MIN_GAIN`] times as
//! costly. A projection on top gives back the group's columns in their order and under their
//! names, and join filters (conditions on both sides that are not key equalities) go to the
//! first join that has all their columns, so the group yields the same rows. A group with a
//! join filter on one input's columns, without estimates, or whose tree cannot be built is
//! left as planned.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{JoinSide, JoinType, NullEquality, Result};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::utils::{ColumnIndex, JoinFilter};
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// The most inputs a group may have to be reordered: the search visits every split of every
/// subset, 3^n of them (59,049 at 10).
const MAX_INPUTS: usize = 10;

/// How many times the estimated cost of the listed order must exceed the cheapest order's for
/// the group to be reordered: estimates are rough, so a plan moves only on clear evidence, and
/// orders estimated close keep the query's.
const MIN_GAIN: f64 = 1.5;

/// A column of a group's input: (input, column).
type ColRef = (usize, usize);

#[derive(Debug, Default)]
pub(crate) struct CheapestJoinOrder;

impl PhysicalOptimizerRule for CheapestJoinOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.join_reordering {
            return Ok(plan);
        }
        rewrite(plan)
    }

    fn name(&self) -> &str {
        "cheapest_join_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn rewrite(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(group) = join_group(&plan, None)
        && (3..=MAX_INPUTS).contains(&group.inputs.len())
    {
        let classes = classes(&group);
        if !equates_columns_of_one_input(&classes)
            && let Some(order) = cheapest(&group, &classes)
        {
            let inputs = group
                .inputs
                .iter()
                .map(|input| rewrite(Arc::clone(input)))
                .collect::<Result<Vec<_>>>()?;
            // A tree that cannot be built leaves the group as planned: the order is an
            // optimization, never a reason for a query to fail.
            match build_group(&group, &classes, &order, &inputs, &plan) {
                Ok(reordered) => return Ok(reordered),
                Err(e) => tracing::warn!("join order left as planned: {e}"),
            }
        }
    }
    let children = plan
        .children()
        .into_iter()
        .map(|c| rewrite(Arc::clone(c)))
        .collect::<Result<Vec<_>>>()?;
    replace_children_if_necessary(plan, children)
}

/// A join tree over a group's inputs.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Input(usize),
    Join(Box<Shape>, Box<Shape>),
}

impl Shape {
    fn shifted(self, by: usize) -> Shape {
        match self {
            Shape::Input(i) => Shape::Input(i + by),
            Shape::Join(l, r) => Shape::Join(Box::new(l.shifted(by)), Box::new(r.shifted(by))),
        }
    }

    fn mask(&self) -> u32 {
        match self {
            Shape::Input(i) => 1 << i,
            Shape::Join(l, r) => l.mask() | r.mask(),
        }
    }
}

/// A join filter of the group, over the columns of its intermediate batch.
#[derive(Debug, Clone)]
struct Filter {
    expression: Arc<dyn PhysicalExpr>,
    fields: Vec<Arc<Field>>,
    columns: Vec<ColRef>,
}

impl Filter {
    fn mask(&self) -> u32 {
        self.columns.iter().fold(0, |m, &(i, _)| m | 1 << i)
    }
}

/// A group of inner hash joins taken apart.
#[derive(Debug)]
struct Group {
    inputs: Vec<Arc<dyn ExecutionPlan>>,
    /// The group's output columns, in order.
    columns: Vec<ColRef>,
    /// The key equalities of its joins.
    conditions: Vec<(ColRef, ColRef)>,
    filters: Vec<Filter>,
    shape: Shape,
    /// How its joins meet their inputs: `Auto` or `CollectLeft`.
    mode: PartitionMode,
}

fn single(plan: &Arc<dyn ExecutionPlan>, mode: PartitionMode) -> Group {
    Group {
        inputs: vec![Arc::clone(plan)],
        columns: (0..plan.schema().fields().len()).map(|c| (0, c)).collect(),
        conditions: vec![],
        filters: vec![],
        shape: Shape::Input(0),
        mode,
    }
}

fn flatten(plan: &Arc<dyn ExecutionPlan>, mode: PartitionMode) -> Group {
    join_group(plan, Some(mode)).unwrap_or_else(|| single(plan, mode))
}

/// The group of inner hash joins rooted at `plan`, if `plan` is one (or a projection of
/// columns over one).
fn join_group(plan: &Arc<dyn ExecutionPlan>, mode: Option<PartitionMode>) -> Option<Group> {
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        let indices = projection
            .expr()
            .iter()
            .map(|e| e.expr.downcast_ref::<Column>().map(Column::index))
            .collect::<Option<Vec<_>>>()?;
        let mut group = join_group(projection.input(), mode)?;
        group.columns = indices.iter().map(|&i| group.columns[i]).collect();
        return Some(group);
    }
    let join = plan.downcast_ref::<HashJoinExec>()?;
    if *join.join_type() != JoinType::Inner
        // Before join selection, joins are `Auto` where the session repartitions them and
        // `CollectLeft` where it runs on one partition; a group keeps to one of the two.
        || !matches!(join.partition_mode(), PartitionMode::Auto | PartitionMode::CollectLeft)
        || mode.is_some_and(|m| m != *join.partition_mode())
        || join.null_equality() != NullEquality::NullEqualsNothing
        || join.null_aware
    {
        return None;
    }
    let mode = *join.partition_mode();
    let left = flatten(join.left(), mode);
    let right = flatten(join.right(), mode);
    let offset = left.inputs.len();
    let shift = |(i, c): ColRef| (i + offset, c);
    let right_columns: Vec<ColRef> = right.columns.iter().map(|&c| shift(c)).collect();
    let mut conditions = left.conditions;
    conditions.extend(right.conditions.iter().map(|&(a, b)| (shift(a), shift(b))));
    for (l, r) in join.on() {
        let l = l.downcast_ref::<Column>()?;
        let r = r.downcast_ref::<Column>()?;
        conditions.push((
            *left.columns.get(l.index())?,
            *right_columns.get(r.index())?,
        ));
    }
    let mut filters = left.filters;
    filters.extend(right.filters.into_iter().map(|f| Filter {
        columns: f.columns.iter().map(|&c| shift(c)).collect(),
        ..f
    }));
    if let Some(filter) = join.filter() {
        let columns = filter
            .column_indices()
            .iter()
            .map(|ci| match ci.side {
                JoinSide::Left => left.columns.get(ci.index).copied(),
                JoinSide::Right => right_columns.get(ci.index).copied(),
                JoinSide::None => None,
            })
            .collect::<Option<Vec<_>>>()?;
        filters.push(Filter {
            expression: Arc::clone(filter.expression()),
            fields: filter.schema().fields().iter().cloned().collect(),
            columns,
        });
    }
    let mut columns = left.columns;
    columns.extend(right_columns);
    if let Some(projection) = join.projection.as_deref() {
        columns = projection
            .iter()
            .map(|&i| columns.get(i).copied())
            .collect::<Option<Vec<_>>>()?;
    }
    let mut inputs = left.inputs;
    inputs.extend(right.inputs);
    Some(Group {
        inputs,
        columns,
        conditions,
        filters,
        shape: Shape::Join(Box::new(left.shape), Box::new(right.shape.shifted(offset))),
        mode,
    })
}

/// Row estimates for every subset of a group's inputs.
struct Estimates {
    /// Per class, its columns with their estimated distinct values, here and before their
    /// inputs' filters.
    classes: Vec<Vec<(ColRef, f64, f64)>>,
    rows: Vec<f64>,
    /// Each input's rows before its filters.
    unfiltered_rows: Vec<f64>,
}

impl Estimates {
    fn new(group: &Group, classes: &[Vec<ColRef>]) -> Option<Estimates> {
        let statistics_of = |plan: &dyn ExecutionPlan| {
            StatisticsContext::new()
                .compute(plan, &StatisticsArgs::new())
                .ok()
        };
        let statistics = group
            .inputs
            .iter()
            .map(|input| statistics_of(input.as_ref()))
            .collect::<Option<Vec<_>>>()?;
        let rows = statistics
            .iter()
            .map(|s| s.num_rows.get_value().map(|&n| (n as f64).max(1.0)))
            .collect::<Option<Vec<_>>>()?;
        // Distinct values of an input's column, and of the same column before the input's
        // filters.
        let distinct = |(input, index): ColRef| -> (f64, f64) {
            let plan = &group.inputs[input];
            let data_type = plan.schema().field(index).data_type().clone();
            let ndv = |stats: &datafusion::common::Statistics, at: usize| {
                let rows = stats
                    .num_rows
                    .get_value()
                    .map_or(f64::INFINITY, |&n| n as f64);
                let ndv = stats
                    .column_statistics
                    .get(at)
                    .and_then(|c| distinct_values(c, &data_type))
                    .unwrap_or(rows);
                ndv.min(rows).max(1.0)
            };
            let here = ndv(&statistics[input], index);
            let (base, at) = unfiltered(plan, index);
            let before = statistics_of(base.as_ref()).map_or(here, |s| ndv(&s, at));
            (here, before.max(here))
        };
        let classes = classes
            .iter()
            .map(|class| {
                let columns: Vec<_> = class.iter().map(|&c| (c, distinct(c))).collect();
                // Equal columns share their values: a foreign key has no more distinct values
                // than the key it refers to, however wide its value range.
                let domain = columns
                    .iter()
                    .map(|&(_, (_, before))| before)
                    .fold(f64::INFINITY, f64::min);
                columns
                    .into_iter()
                    .map(|(c, (here, before))| (c, here.min(domain), before))
                    .collect::<Vec<_>>()
            })
            .collect();
        let unfiltered_rows = group
            .inputs
            .iter()
            .zip(&rows)
            .map(|(input, &here)| {
                statistics_of(unfiltered(input, 0).0.as_ref())
                    .and_then(|s| s.num_rows.get_value().map(|&n| n as f64))
                    .map_or(here, |n| n.max(here))
            })
            .collect();
        Some(Estimates {
            classes,
            rows,
            unfiltered_rows,
        })
    }

    /// The rows of the join of two sets of inputs, of `rows_a` and `rows_b` rows: the product
    /// of their rows over the larger of the two sides' distinct keys. A side's distinct keys
    /// are, per key class joining the two, the fewest distinct values of its columns of that
    /// class, multiplied over the classes; never more than the side's rows, nor than the rows
    /// of any input holding columns of all those classes before its filters: a foreign key on
    /// (part, supplier) refers to the rows of the table of those pairs, not to every pair of a
    /// part and a supplier. A column's distinct values are its [`distinct_values`], at most its
    /// input's rows and the fewest any column of its class had before its input's filters.
    fn join_rows(&self, a: u32, b: u32, rows_a: f64, rows_b: f64) -> f64 {
        let fewest = |mask: u32, class: &[(ColRef, f64, f64)]| {
            class
                .iter()
                .filter(|((input, _), _, _)| mask & (1 << input) != 0)
                .map(|&(_, ndv, _)| ndv)
                .fold(f64::INFINITY, f64::min)
        };
        let spanning: Vec<&Vec<(ColRef, f64, f64)>> = self
            .classes
            .iter()
            .filter(|class| fewest(a, class).is_finite() && fewest(b, class).is_finite())
            .collect();
        let keys_a: f64 = spanning.iter().map(|class| fewest(a, class)).product();
        let keys_b: f64 = spanning.iter().map(|class| fewest(b, class)).product();
        let mut domain = f64::INFINITY;
        for input in (0..self.rows.len()).filter(|i| (a | b) & (1 << i) != 0) {
            let mut product = 1.0;
            for class in &spanning {
                let before = class
                    .iter()
                    .filter(|((i, _), _, _)| *i == input)
                    .map(|&(_, _, before)| before)
                    .fold(f64::INFINITY, f64::min);
                product *= before;
            }
            // Only an input with columns in every class bounds the keys.
            if product.is_finite() {
                domain = domain.min(product.min(self.unfiltered_rows[input]));
            }
        }
        let keys = (keys_a.min(rows_a).min(domain))
            .max(keys_b.min(rows_b).min(domain))
            .max(1.0);
        (rows_a * rows_b / keys).max(1.0)
    }

    /// Whether a key class has columns in both sets of inputs.
    fn connected(&self, a: u32, b: u32) -> bool {
        self.classes.iter().any(|class| {
            class.iter().any(|&((i, _), _, _)| a & (1 << i) != 0)
                && class.iter().any(|&((i, _), _, _)| b & (1 << i) != 0)
        })
    }
}

/// The plan under an input's filters and column projections, and where column `index` of
/// the input is in it.
fn unfiltered(plan: &Arc<dyn ExecutionPlan>, index: usize) -> (Arc<dyn ExecutionPlan>, usize) {
    if let Some(filter) = plan.downcast_ref::<FilterExec>()
        && filter.projection().is_none()
    {
        return unfiltered(filter.input(), index);
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>()
        && let Some(column) = projection
            .expr()
            .get(index)
            .and_then(|e| e.expr.downcast_ref::<Column>())
    {
        return unfiltered(projection.input(), column.index());
    }
    (Arc::clone(plan), index)
}

/// Distinct values of a column: its distinct count, else the width of its range for integers
/// and dates.
fn distinct_values(
    stats: &datafusion::common::ColumnStatistics,
    data_type: &DataType,
) -> Option<f64> {
    if let Some(&n) = stats.distinct_count.get_value() {
        return Some(n as f64);
    }
    if !(data_type.is_integer() || matches!(data_type, DataType::Date32 | DataType::Date64)) {
        return None;
    }
    let (min, max) = (stats.min_value.get_value()?, stats.max_value.get_value()?);
    min.distance(max).map(|d| d as f64 + 1.0)
}

/// The cheapest tree over the group's inputs, if it is clearly cheaper than the listed one.
fn cheapest(group: &Group, classes: &[Vec<ColRef>]) -> Option<Shape> {
    // A filter on one input's columns has no join to go to.
    if group.filters.iter().any(|f| f.mask().count_ones() < 2) {
        return None;
    }
    let estimates = Estimates::new(group, classes)?;
    let n = group.inputs.len();
    let full = (1u32 << n) - 1;
    // Per subset of the inputs: the cheapest tree's cost, its split, and its rows (estimated
    // from that split).
    let mut cost = vec![f64::INFINITY; full as usize + 1];
    let mut split = vec![0u32; full as usize + 1];
    let mut rows = vec![0.0; full as usize + 1];
    for i in 0..n {
        cost[1 << i] = 0.0;
        rows[1 << i] = estimates.rows[i];
    }
    for mask in 1..=full {
        if mask.count_ones() < 2 {
            continue;
        }
        // Every split of `mask` into two non-empty halves, each once.
        let mut a = (mask - 1) & mask;
        while a > 0 {
            let b = mask ^ a;
            if a < b
                && cost[a as usize].is_finite()
                && cost[b as usize].is_finite()
                && estimates.connected(a, b)
            {
                let (ra, rb) = (rows[a as usize], rows[b as usize]);
                let out = estimates.join_rows(a, b, ra, rb);
                // The rows a join yields and the rows it hashes.
                let c = cost[a as usize] + cost[b as usize] + out + ra.min(rb);
                if c < cost[mask as usize] {
                    cost[mask as usize] = c;
                    split[mask as usize] = a;
                    rows[mask as usize] = out;
                }
            }
            a = (a - 1) & mask;
        }
    }
    if !cost[full as usize].is_finite() {
        return None;
    }
    /// The listed tree's cost and rows.
    fn listed_cost(shape: &Shape, estimates: &Estimates) -> (f64, f64) {
        match shape {
            Shape::Input(i) => (0.0, estimates.rows[*i]),
            Shape::Join(l, r) => {
                let (cl, rl) = listed_cost(l, estimates);
                let (cr, rr) = listed_cost(r, estimates);
                let out = estimates.join_rows(l.mask(), r.mask(), rl, rr);
                (cl + cr + out + rl.min(rr), out)
            }
        }
    }
    let (listed, _) = listed_cost(&group.shape, &estimates);
    if listed < cost[full as usize] * MIN_GAIN {
        return None;
    }
    fn tree(mask: u32, split: &[u32], rows: &[f64]) -> Shape {
        if mask.count_ones() == 1 {
            return Shape::Input(mask.trailing_zeros() as usize);
        }
        let a = split[mask as usize];
        let b = mask ^ a;
        // The smaller side first: DataFusion hashes the left input.
        let (l, r) = if rows[a as usize] <= rows[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        Shape::Join(
            Box::new(tree(l, split, rows)),
            Box::new(tree(r, split, rows)),
        )
    }
    let shape = tree(full, &split, &rows);
    (shape != group.shape).then_some(shape)
}

/// Builds the joins of `shape` over `inputs`, under a projection that gives back the columns
/// of `original`.
fn build_group(
    group: &Group,
    classes: &[Vec<ColRef>],
    shape: &Shape,
    inputs: &[Arc<dyn ExecutionPlan>],
    original: &Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let (plan, columns) = build(group, classes, shape, inputs)?;
    let schema = original.schema();
    if columns == group.columns
        && plan
            .schema()
            .fields()
            .iter()
            .zip(schema.fields())
            .all(|(a, b)| a.name() == b.name())
    {
        return Ok(plan);
    }
    let exprs = group
        .columns
        .iter()
        .zip(schema.fields())
        .map(|(c, field)| {
            let at = columns
                .iter()
                .position(|x| x == c)
                .ok_or_else(|| internal("a group's output column was not kept"))?;
            Ok((
                Arc::new(Column::new(field.name(), at)) as Arc<dyn PhysicalExpr>,
                field.name().clone(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

fn internal(message: &str) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Internal(format!("join order: {message}"))
}

/// The classes of equal key columns, as lists of columns.
fn classes(group: &Group) -> Vec<Vec<ColRef>> {
    let mut classes: Vec<Vec<ColRef>> = Vec::new();
    for &(a, b) in &group.conditions {
        let ia = classes.iter().position(|c| c.contains(&a));
        let ib = classes.iter().position(|c| c.contains(&b));
        match (ia, ib) {
            (None, None) => classes.push(vec![a, b]),
            (Some(i), None) => classes[i].push(b),
            (None, Some(j)) => classes[j].push(a),
            (Some(i), Some(j)) if i != j => {
                let moved = std::mem::take(&mut classes[j]);
                classes[i].extend(moved);
                classes.remove(j);
            }
            _ => {}
        }
    }
    classes
}

/// Whether the conditions make two columns of one input equal, as `ps_partkey = p_partkey
/// AND p_partkey = s_suppkey AND s_suppkey = ps_suppkey` makes `ps_partkey = ps_suppkey`.
/// A new tree joins on one pair of columns per class, taking the columns of a class on each
/// side as equal already; that holds for columns equated by the joins below, not for two
/// columns of one input, whose equality no join would check. Such groups keep their order.
fn equates_columns_of_one_input(classes: &[Vec<ColRef>]) -> bool {
    classes.iter().any(|class| {
        class
            .iter()
            .enumerate()
            .any(|(i, &(input, _))| class[i + 1..].iter().any(|&(other, _)| other == input))
    })
}

fn in_mask(mask: u32, (input, _): ColRef) -> bool {
    mask & (1 << input) != 0
}

fn build(
    group: &Group,
    classes: &[Vec<ColRef>],
    shape: &Shape,
    inputs: &[Arc<dyn ExecutionPlan>],
) -> Result<(Arc<dyn ExecutionPlan>, Vec<ColRef>)> {
    let (l, r) = match shape {
        Shape::Input(i) => {
            let plan = Arc::clone(&inputs[*i]);
            let columns = (0..plan.schema().fields().len()).map(|c| (*i, c)).collect();
            return Ok((plan, columns));
        }
        Shape::Join(l, r) => (l, r),
    };
    let (lmask, rmask) = (l.mask(), r.mask());
    let mask = lmask | rmask;
    let (left, left_columns) = build(group, classes, l, inputs)?;
    let (right, right_columns) = build(group, classes, r, inputs)?;
    let position = |columns: &[ColRef], c: ColRef| columns.iter().position(|&x| x == c);
    let key = |plan: &Arc<dyn ExecutionPlan>, at: usize| -> Arc<dyn PhysicalExpr> {
        Arc::new(Column::new(plan.schema().field(at).name(), at))
    };
    let mut on = Vec::new();
    for class in classes {
        let mut found = false;
        for &(a, b) in &group.conditions {
            let (a, b) = if in_mask(lmask, a) && in_mask(rmask, b) {
                (a, b)
            } else if in_mask(lmask, b) && in_mask(rmask, a) {
                (b, a)
            } else {
                continue;
            };
            if !class.contains(&a) {
                continue;
            }
            if let (Some(i), Some(j)) = (position(&left_columns, a), position(&right_columns, b)) {
                // The columns of a class on either side are equal already: one pair will do.
                on.push((key(&left, i), key(&right, j)));
                found = true;
                break;
            }
        }
        if found {
            continue;
        }
        // No listed condition of this class crosses: the implied one does.
        let i = class.iter().find_map(|&c| position(&left_columns, c));
        let j = class.iter().find_map(|&c| position(&right_columns, c));
        if let (Some(i), Some(j)) = (i, j) {
            on.push((key(&left, i), key(&right, j)));
        }
    }
    if on.is_empty() {
        return Err(internal("two sides with no key in common"));
    }
    // The filters whose columns meet here first.
    let mut filter: Option<JoinFilter> = None;
    for f in &group.filters {
        let m = f.mask();
        if m & !mask != 0 || m & !lmask == 0 || m & !rmask == 0 {
            continue;
        }
        let mut column_indices = Vec::new();
        for &c in &f.columns {
            column_indices.push(if let Some(i) = position(&left_columns, c) {
                ColumnIndex {
                    index: i,
                    side: JoinSide::Left,
                }
            } else {
                ColumnIndex {
                    index: position(&right_columns, c)
                        .ok_or_else(|| internal("a filter's column was not kept"))?,
                    side: JoinSide::Right,
                }
            });
        }
        filter = Some(match filter {
            None => JoinFilter::new(
                Arc::clone(&f.expression),
                column_indices,
                Arc::new(Schema::new(f.fields.clone())),
            ),
            Some(before) => {
                let offset = before.column_indices().len();
                let shifted = Arc::clone(&f.expression)
                    .transform(|e| {
                        Ok(match e.downcast_ref::<Column>() {
                            Some(c) => Transformed::yes(Arc::new(Column::new(
                                c.name(),
                                c.index() + offset,
                            )) as _),
                            None => Transformed::no(e),
                        })
                    })?
                    .data;
                let mut indices = before.column_indices().to_vec();
                indices.extend(column_indices);
                let mut fields: Vec<Arc<Field>> =
                    before.schema().fields().iter().cloned().collect();
                fields.extend(f.fields.iter().cloned());
                JoinFilter::new(
                    Arc::new(BinaryExpr::new(
                        Arc::clone(before.expression()),
                        Operator::And,
                        shifted,
                    )),
                    indices,
                    Arc::new(Schema::new(fields)),
                )
            }
        });
    }
    // Keep the columns needed above: the group's output, keys and filter columns that reach
    // outside this join.
    let needed = |c: ColRef| {
        group.columns.contains(&c)
            || classes
                .iter()
                .any(|class| class.contains(&c) && class.iter().any(|&x| !in_mask(mask, x)))
            || group
                .filters
                .iter()
                .any(|f| f.columns.contains(&c) && f.mask() & !mask != 0)
    };
    let mut columns = left_columns;
    columns.extend(right_columns);
    let projection: Vec<usize> = (0..columns.len()).filter(|&i| needed(columns[i])).collect();
    let (projection, columns) = if projection.len() == columns.len() {
        (None, columns)
    } else {
        let kept = projection.iter().map(|&i| columns[i]).collect();
        (Some(projection), kept)
    };
    let join = HashJoinExec::try_new(
        left,
        right,
        on,
        filter,
        &JoinType::Inner,
        projection,
        group.mode,
        NullEquality::NullEqualsNothing,
        false,
    )?;
    Ok((Arc::new(join), columns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{physical_plan, pretty, scratch_session, shown};
    use datafusion::datasource::source::DataSourceExec;

    /// The tables (by the first letter of their column names) under each hash join, lowest
    /// joins first.
    fn joined_tables(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<String>) -> String {
        let mut below = String::new();
        if plan.downcast_ref::<DataSourceExec>().is_some() {
            below.extend(
                plan.schema()
                    .fields()
                    .iter()
                    .filter_map(|f| f.name().chars().next()),
            );
            below.truncate(1);
        }
        for child in plan.children() {
            below.push_str(&joined_tables(child, out));
        }
        if plan.downcast_ref::<HashJoinExec>().is_some() {
            let mut tables: Vec<char> = below.chars().collect();
            tables.sort_unstable();
            out.push(tables.into_iter().collect());
        }
        below
    }

    /// The tables under each hash join of `query`'s plan, lowest joins first.
    async fn join_order(session: &crate::Session, query: &str) -> Vec<String> {
        let plan = physical_plan(session, query).await;
        let mut joins = vec![];
        joined_tables(&plan, &mut joins);
        assert_eq!(joins.len(), 2, "{}", shown(&plan));
        joins
    }

    #[test]
    fn a_two_column_foreign_key_meets_as_many_rows_as_it_refers_to() {
        // partsupp (800,000 rows: 200,000 parts × 4 suppliers of 10,000) and lineitem
        // (6 M rows) on (partkey, suppkey): every lineitem row meets one partsupp row.
        let estimates = Estimates {
            classes: vec![
                vec![
                    ((0, 0), 200_000.0, 200_000.0),
                    ((1, 0), 200_000.0, 200_000.0),
                ],
                vec![((0, 1), 10_000.0, 10_000.0), ((1, 1), 10_000.0, 10_000.0)],
            ],
            rows: vec![800_000.0, 6_000_000.0],
            unfiltered_rows: vec![800_000.0, 6_000_000.0],
        };
        assert_eq!(
            estimates.join_rows(1, 2, 800_000.0, 6_000_000.0),
            6_000_000.0
        );
        // A fifth of partsupp's rows (one part in five) meets a fifth of lineitem's.
        assert_eq!(
            estimates.join_rows(1, 2, 160_000.0, 6_000_000.0),
            1_200_000.0
        );
        // One key column alone: the containment of the fewer values in the more.
        let one = Estimates {
            classes: vec![vec![
                ((0, 0), 200_000.0, 200_000.0),
                ((1, 0), 200_000.0, 200_000.0),
            ]],
            ..estimates
        };
        assert_eq!(one.join_rows(1, 2, 800_000.0, 6_000_000.0), 24_000_000.0);
    }

    #[tokio::test]
    async fn a_many_to_many_join_listed_first_runs_after_the_narrowing_one() {
        let (_dir, session) = scratch_session().await;
        session
            .sql(
                "CREATE TABLE processed.big AS SELECT value AS a_id, value % 20 AS a_grp FROM generate_series(1, 2000);
                 CREATE TABLE processed.other AS SELECT value AS b_id, value % 20 AS b_grp, value AS b_ref FROM generate_series(1, 2000);
                 CREATE TABLE processed.tiny AS SELECT value AS c_ref FROM generate_series(1, 10)",
            )
            .await
            .expect("tables");
        // Listed as written, `big` meets `other` on a column of 20 values first: 200,000
        // rows. `other` meeting the 10 rows of `tiny` on a unique column first leaves 10.
        // The last condition is a join filter over `big` and `tiny`, which must move along.
        let query = "SELECT c_ref, count(*) AS n, min(a_id) AS first, max(b_id) AS b
                     FROM processed.big, processed.other, processed.tiny
                     WHERE a_grp = b_grp AND b_ref = c_ref AND a_id + c_ref > 5
                     GROUP BY c_ref ORDER BY c_ref";
        assert_eq!(join_order(&session, query).await, ["bc", "abc"]);
        // On one partition the planner collects every build side; the order is the same.
        session
            .context()
            .sql("SET datafusion.execution.target_partitions = 1")
            .await
            .expect("set");
        assert_eq!(join_order(&session, query).await, ["bc", "abc"]);
        // Row r of `tiny` meets row r of `other` and the 100 rows of `big` with id ≡ r
        // (mod 20); for r = 1 and 2 the filter drops the first of them.
        let expected = (1..=10)
            .map(|r| {
                let n = if r <= 2 { 99 } else { 100 };
                let first = if r <= 2 { r + 20 } else { r };
                format!("| {r:<5} | {n:<3} | {first:<5} | {r:<2} |")
            })
            .collect::<Vec<_>>();
        let text = pretty(&session.sql(query).await.expect("query"));
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| ") && !l.contains("ref"))
            .collect();
        assert_eq!(lines, expected, "{text}");
    }

    #[tokio::test]
    async fn conditions_that_equate_two_columns_of_one_input_keep_the_order() {
        let (_dir, session) = scratch_session().await;
        session
            .sql(
                "CREATE TABLE processed.x AS SELECT value % 200 + 1 AS x_a, (value % 200 + 1) % 10 + 1 AS x_b FROM generate_series(1, 8000);
                 CREATE TABLE processed.y AS SELECT value AS y_a FROM generate_series(1, 200);
                 CREATE TABLE processed.z AS SELECT value AS z_b FROM generate_series(1, 10)",
            )
            .await
            .expect("tables");
        // x_a = y_a, y_a = z_b and z_b = x_b make x_a = x_b, which no row of x has: no row,
        // as DuckDB answers. A tree joining y to z on y_a = z_b and then x on one pair of
        // the class would count the 400 rows where x_a = y_a = z_b, whatever x_b is.
        let query = "SELECT count(*) AS n FROM processed.x, processed.y, processed.z
                     WHERE x_a = y_a AND x_b = z_b AND y_a = z_b";
        let text = pretty(&session.sql(query).await.expect("query"));
        assert!(text.contains("| 0 |"), "{text}");
    }
}
