//! Row-level evaluation of join dynamic filters in Parquet scans.
//!
//! A hash join hands its build side's keys to the probe side's scan as a dynamic filter. By
//! default DataFusion uses it only to skip files and row groups by their statistics, because
//! `pushdown_filters` (evaluating predicates while decoding, before the other columns are
//! decoded) is off. Turning that on for every scan is slower overall: static predicates that
//! keep most rows cost more as row filters than as a filter after the scan. A scan whose only
//! predicate is a join's dynamic filter is different. It is typically a fact table under an
//! aggregate or join whose keys the other side narrows to a few (TPC-H Q17: 204 parts of
//! 200,000), and decoding only the rows that can match pays. This rule turns row-level
//! evaluation on for exactly those scans, through [`JoinFilterRows`]: it evaluates a cheaper
//! form of the filter, and lets every row through once it sees the filter keep more than a
//! few percent of them (TPC-H Q05, Q09, Q11), where row-level evaluation would cost more
//! than it saves.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, CaseExpr, InListExpr, Literal};

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_datasource::file::FileSource;

/// Evaluates join dynamic filters row by row in Parquet scans that have no other predicate.
#[derive(Debug, Default)]
pub(crate) struct DynamicFilterRowPushdown;

impl PhysicalOptimizerRule for DynamicFilterRowPushdown {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if config.execution.parquet.pushdown_filters {
            // Every scan evaluates its predicates row by row already.
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let Some(parquet) = scan.file_source().downcast_ref::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let Some(filter) = parquet.filter() else {
                return Ok(Transformed::no(node));
            };
            let conjuncts = split_conjunction(&filter);
            let only_dynamic = !conjuncts.is_empty()
                && conjuncts
                    .iter()
                    .all(|c| c.downcast_ref::<DynamicFilterPhysicalExpr>().is_some());
            if !only_dynamic {
                return Ok(Transformed::no(node));
            }
            // Each join filter is watched for how many rows it keeps (see `JoinFilterRows`).
            let watched = conjuncts
                .iter()
                .map(|c| JoinFilterRows::wrap(Arc::clone(c)))
                .reduce(|a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as _)
                .expect("at least one conjunct");
            let mut scan = scan.clone();
            scan.file_source =
                Arc::new(parquet.with_predicate(watched).with_pushdown_filters(true));
            let exec = exec.clone().with_data_source(Arc::new(scan));
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "dynamic_filter_row_pushdown"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Rows a join filter must have seen before it may be judged.
const JUDGE_AFTER_ROWS: u64 = 100_000;

/// A join filter that keeps more than this share of the rows it sees is switched off: past
/// it, evaluating row by row costs more than decoding the rows it drops. Measured on TPC-H
/// SF 1: 2% and 5% perform alike, 10% is slower, never switching off is 10% slower.
const MAX_KEPT_SHARE: f64 = 0.02;

/// How much of what a scan read its join filter kept; shared by the scan's partitions and
/// files.
#[derive(Debug, Default)]
struct Kept {
    seen: AtomicU64,
    kept: AtomicU64,
    off: AtomicBool,
}

/// A join's dynamic filter as a Parquet scan evaluates it row by row.
///
/// - It evaluates a cheaper equivalent of the filter: a hash-partitioned join publishes
///   `CASE hash(key) % n WHEN 0 THEN key IN (…) … END`, one key list per partition, and a
///   key can only be in the list of its own partition; so the lists are merged into one
///   `key IN (…)`, one hash lookup a row instead of a hash, a routing and a lookup.
/// - It counts the rows it keeps and, once it has seen enough, lets every row through if it
///   keeps too many: the join drops them anyway, and a filter that keeps most rows only
///   makes the decoding slower.
///
/// Both make it keep a superset of what the filter keeps, which is all a join filter
/// promises. For everything else (statistics pruning, file pruning, EXPLAIN) it is the
/// dynamic filter: it is its only child and snapshots to it.
#[derive(Debug)]
struct JoinFilterRows {
    filter: Arc<dyn PhysicalExpr>,
    kept: Arc<Kept>,
    /// The row expression made from the filter's current state, and that state's generation.
    current: Mutex<Option<(u64, Arc<dyn PhysicalExpr>)>>,
}

impl JoinFilterRows {
    fn wrap(filter: Arc<dyn PhysicalExpr>) -> Arc<dyn PhysicalExpr> {
        Arc::new(Self {
            filter,
            kept: Arc::default(),
            current: Mutex::new(None),
        })
    }

    /// The expression to evaluate for the filter's current state.
    fn row_expr(&self, schema: &Schema) -> Result<Arc<dyn PhysicalExpr>> {
        let generation =
            datafusion::physical_expr_common::physical_expr::snapshot_generation(&self.filter);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((made_at, expr)) = current.as_ref()
            && *made_at == generation
        {
            return Ok(Arc::clone(expr));
        }
        let snapshot = datafusion::physical_expr_common::physical_expr::snapshot_physical_expr(
            Arc::clone(&self.filter),
        )?;
        let expr = merge_partition_key_lists(&snapshot, schema).unwrap_or(snapshot);
        *current = Some((generation, Arc::clone(&expr)));
        Ok(expr)
    }

    fn count(&self, seen: usize, kept: usize) {
        let seen = self.kept.seen.fetch_add(seen as u64, Ordering::Relaxed) + seen as u64;
        let kept = self.kept.kept.fetch_add(kept as u64, Ordering::Relaxed) + kept as u64;
        if seen >= JUDGE_AFTER_ROWS && kept as f64 > MAX_KEPT_SHARE * seen as f64 {
            self.kept.off.store(true, Ordering::Relaxed);
        }
    }
}

/// `CASE h WHEN 0 THEN bounds0 AND k IN (l0) WHEN 1 THEN bounds1 AND k IN (l1) … ELSE false
/// END` as `k IN (l0 ∪ l1 …)`: what a hash-partitioned join publishes, with the partition
/// routing and the bounds dropped (the lists decide). `None` for any other shape.
fn merge_partition_key_lists(
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

impl fmt::Display for JoinFilterRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.filter.fmt(f)
    }
}

impl PartialEq for JoinFilterRows {
    fn eq(&self, other: &Self) -> bool {
        self.filter.eq(&other.filter)
    }
}

impl Eq for JoinFilterRows {}

impl Hash for JoinFilterRows {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.filter.hash(state);
    }
}

impl PhysicalExpr for JoinFilterRows {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.filter.nullable(schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if self.kept.off.load(Ordering::Relaxed) {
            return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))));
        }
        let result = self.row_expr(&batch.schema())?.evaluate(batch)?;
        let rows = batch.num_rows();
        let kept = match &result {
            ColumnarValue::Array(a) => a.as_boolean_opt().map_or(rows, |b| b.true_count()),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => rows,
            ColumnarValue::Scalar(_) => 0,
        };
        self.count(rows, kept);
        Ok(result)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.filter]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [filter] = <[_; 1]>::try_from(children).map_err(|c| {
            datafusion::common::DataFusionError::Internal(format!(
                "a join filter has one child, not {}",
                c.len()
            ))
        })?;
        Ok(Arc::new(Self {
            filter,
            kept: Arc::clone(&self.kept),
            current: Mutex::new(None),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.filter.fmt_sql(f)
    }

    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        // Children are snapshotted first: this is the filter's current expression.
        Ok(Some(Arc::clone(&self.filter)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether each Parquet scan of a plan evaluates its predicate row by row, by table.
    fn pushdown_by_table(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<(String, bool)>) {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>()
            && let Some(parquet) = scan.file_source().downcast_ref::<ParquetSource>()
        {
            let file = scan
                .file_groups
                .iter()
                .flat_map(|g| g.files())
                .next()
                .map(|f| f.object_meta.location.to_string())
                .unwrap_or_default();
            let table = if file.contains("/fact/") {
                "fact"
            } else {
                "dim"
            };
            out.push((
                table.to_string(),
                parquet.table_parquet_options().global.pushdown_filters,
            ));
        }
        for child in plan.children() {
            pushdown_by_table(child, out);
        }
    }

    #[tokio::test]
    async fn only_scans_filtered_by_a_join_alone_evaluate_it_row_by_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().join("wh").to_string_lossy().to_string();
        let session = crate::Session::open(&location).await.expect("session");
        session
            .sql(
                "CREATE TABLE processed.fact AS SELECT value % 100 AS k, value AS v FROM generate_series(1, 20000);
                 CREATE TABLE processed.dim AS SELECT value AS k, value % 7 AS g FROM generate_series(1, 100)",
            )
            .await
            .expect("tables");
        let plan = |sql: &'static str| {
            let session = &session;
            async move {
                let df = session.plan_query(sql).await.expect("plan");
                let plan = df.create_physical_plan().await.expect("physical plan");
                let mut found = vec![];
                pushdown_by_table(&plan, &mut found);
                found.sort();
                found
            }
        };
        // The fact scan's only predicate is the join's dynamic filter; the dimension's is
        // its own static filter.
        assert_eq!(
            plan("SELECT sum(v) FROM processed.fact JOIN processed.dim ON fact.k = dim.k WHERE dim.g = 3").await,
            [("dim".to_string(), false), ("fact".to_string(), true)]
        );
        // A static predicate on the fact scan keeps DataFusion's default.
        assert_eq!(
            plan("SELECT sum(v) FROM processed.fact JOIN processed.dim ON fact.k = dim.k WHERE dim.g = 3 AND fact.v > 10").await,
            [("dim".to_string(), false), ("fact".to_string(), false)]
        );
        let answer = session
            .sql("SELECT sum(v) AS s FROM processed.fact JOIN processed.dim ON fact.k = dim.k WHERE dim.g = 3")
            .await
            .expect("query");
        let expected = session
            .sql("SELECT sum(v) AS s FROM processed.fact WHERE k IN (SELECT k FROM processed.dim WHERE g = 3)")
            .await
            .expect("query");
        assert_eq!(
            arrow::util::pretty::pretty_format_batches(&answer)
                .map(|t| t.to_string())
                .ok(),
            arrow::util::pretty::pretty_format_batches(&expected)
                .map(|t| t.to_string())
                .ok()
        );
    }

    fn keys(values: impl IntoIterator<Item = i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
            "k",
            DataType::Int64,
            false,
        )]));
        let column = arrow::array::Int64Array::from_iter_values(values);
        RecordBatch::try_new(schema, vec![Arc::new(column)]).expect("batch")
    }

    fn bools(value: ColumnarValue, rows: usize) -> Vec<bool> {
        let array = value.into_array(rows).expect("array");
        array.as_boolean().iter().map(|b| b == Some(true)).collect()
    }

    /// A hash-partitioned join's `CASE … WHEN i THEN bounds AND k IN (list i)` becomes one
    /// `k IN (…)` keeping the same rows.
    #[test]
    fn partition_key_lists_merge_into_one() {
        use datafusion::physical_expr::expressions::{col, in_list, lit};
        let batch = keys(1..=6);
        let schema = batch.schema();
        let k = col("k", &schema).expect("k");
        let list = |values: &[i64]| {
            in_list(
                Arc::clone(&k),
                values.iter().map(|v| lit(*v)).collect(),
                &false,
                &schema,
            )
            .expect("in list")
        };
        let bound = Arc::new(BinaryExpr::new(Arc::clone(&k), Operator::GtEq, lit(2i64)));
        let route = Arc::new(BinaryExpr::new(Arc::clone(&k), Operator::Modulo, lit(2i64)));
        let case: Arc<dyn PhysicalExpr> = Arc::new(
            CaseExpr::try_new(
                Some(route),
                vec![
                    (
                        lit(0i64),
                        Arc::new(BinaryExpr::new(bound, Operator::And, list(&[2, 4]))) as _,
                    ),
                    (lit(1i64), list(&[1, 3])),
                ],
                Some(lit(false)),
            )
            .expect("case"),
        );
        let merged = merge_partition_key_lists(&case, &schema).expect("merged");
        let merged_list = merged.downcast_ref::<InListExpr>().expect("one IN list");
        assert_eq!(merged_list.list().len(), 4);
        let expected = bools(case.evaluate(&batch).expect("case"), 6);
        assert_eq!(expected, [true, true, true, true, false, false]);
        assert_eq!(bools(merged.evaluate(&batch).expect("merged"), 6), expected);
        // Anything else is left as it is.
        assert!(merge_partition_key_lists(&list(&[1]), &schema).is_none());
    }

    /// A filter that keeps most rows lets every row through once it has been judged; a
    /// selective one keeps filtering.
    #[test]
    fn join_filters_keeping_most_rows_switch_off() {
        use datafusion::physical_expr::expressions::{DynamicFilterPhysicalExpr, col, lit};
        let batch = keys(0..8192);
        let schema = batch.schema();
        let k = col("k", &schema).expect("k");
        let filter = |inner: Arc<dyn PhysicalExpr>| {
            JoinFilterRows::wrap(Arc::new(DynamicFilterPhysicalExpr::new(
                vec![Arc::clone(&k)],
                inner,
            )))
        };
        let loose = filter(Arc::new(BinaryExpr::new(
            Arc::clone(&k),
            Operator::GtEq,
            lit(1i64),
        )));
        let tight = filter(Arc::new(BinaryExpr::new(
            Arc::clone(&k),
            Operator::Lt,
            lit(10i64),
        )));
        let first = bools(loose.evaluate(&batch).expect("loose"), 8192);
        assert!(!first[0] && first[1], "evaluated before it is judged");
        for _ in 0..20 {
            loose.evaluate(&batch).expect("loose");
            tight.evaluate(&batch).expect("tight");
        }
        assert!(matches!(
            loose.evaluate(&batch).expect("loose"),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))
        ));
        let kept = bools(tight.evaluate(&batch).expect("tight"), 8192);
        assert_eq!(kept.iter().filter(|b| **b).count(), 10);
        // Statistics pruning sees the dynamic filter itself.
        let snapshot = datafusion::physical_expr_common::physical_expr::snapshot_physical_expr(
            Arc::clone(&tight),
        )
        .expect("snapshot");
        assert_eq!(snapshot.to_string(), "k@0 < 10");
    }
}
