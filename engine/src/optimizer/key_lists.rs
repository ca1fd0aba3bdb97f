//! Join key lists reshaped for scans: the lists of a hash-partitioned join merged into one,
//! and a multi-column join's list of structs split into one list per column. Used by the
//! rules that hand join filters to scans (`dynamic_filter_row_pushdown`,
//! `key_column_filters`).

use std::sync::Arc;

use arrow::array::Array;

use arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, CaseExpr, InListExpr, Literal};
use datafusion::physical_expr::utils::split_conjunction;

/// `CASE h WHEN 0 THEN bounds0 AND k IN (l0) WHEN 1 THEN bounds1 AND k IN (l1) … ELSE false
/// END` as `k IN (l0 ∪ l1 …)`: what a hash-partitioned join publishes, with the partition
/// routing and the bounds dropped (the lists decide). `None` for any other shape.
pub(crate) fn merge_partition_key_lists(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    let case = expr.downcast_ref::<CaseExpr>()?;
    case.expr()?;
    let always_false = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Literal>()
            .is_some_and(|l| l.value() == &ScalarValue::Boolean(Some(false)))
    };
    if !case.else_expr().is_none_or(always_false) {
        return None;
    }
    let mut key: Option<&Arc<dyn PhysicalExpr>> = None;
    let mut values = vec![];
    for (_, then) in case.when_then_expr() {
        if always_false(then) {
            continue;
        }
        let list = split_conjunction(then)
            .into_iter()
            .find_map(|c| c.downcast_ref::<InListExpr>().filter(|l| !l.negated()))?;
        match key {
            Some(k) if k != list.expr() => return None,
            _ => key = Some(list.expr()),
        }
        values.extend(list.list().iter().cloned());
    }
    let key = Arc::clone(key?);
    InListExpr::try_new(key, values, false, schema)
        .ok()
        .map(|l| Arc::new(l) as Arc<dyn PhysicalExpr>)
}

/// A join on several columns lists its keys as structs, `struct(a, b) IN (…)`, which is
/// slow to test. `a IN (the a's) AND b IN (the b's)` keeps a superset of those rows and
/// tests each column by itself, the second only on the rows the first keeps.
pub(crate) fn per_column_lists(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    let in_list = expr.downcast_ref::<InListExpr>()?;
    if in_list.negated() {
        return None;
    }
    let values = in_list.list();
    let function = in_list.expr().downcast_ref::<ScalarFunctionExpr>()?;
    if function.name() != "struct" {
        return None;
    }
    let columns = function.args();
    let mut lists: Vec<Vec<ScalarValue>> = vec![vec![]; columns.len()];
    for value in values {
        let ScalarValue::Struct(row) = value.downcast_ref::<Literal>()?.value() else {
            return None;
        };
        if row.num_columns() != columns.len() || row.len() != 1 {
            return None;
        }
        for (list, column) in lists.iter_mut().zip(row.columns()) {
            list.push(ScalarValue::try_from_array(column, 0).ok()?);
        }
    }
    let mut conditions = vec![];
    for (column, mut list) in columns.iter().zip(lists) {
        list.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        list.dedup();
        let list = list
            .into_iter()
            .map(|v| Arc::new(Literal::new(v)) as Arc<dyn PhysicalExpr>)
            .collect();
        conditions.push(
            Arc::new(InListExpr::try_new(Arc::clone(column), list, false, schema).ok()?)
                as Arc<dyn PhysicalExpr>,
        );
    }
    conditions
        .into_iter()
        .reduce(|a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as _)
}
