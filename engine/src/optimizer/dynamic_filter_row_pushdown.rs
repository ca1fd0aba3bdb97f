//! Row-level evaluation of join dynamic filters in Parquet scans.
//!
//! A hash join hands its build side's keys to the probe side's scan as a dynamic filter. With
//! `pushdown_filters` off (DataFusion's default), the scan uses it only to skip files and row
//! groups by their statistics. Turning that option on for every scan would make row filters of
//! static predicates that keep most rows too, which cost more than a filter after the scan. A
//! scan filtered by a join is different: it is typically a fact table whose keys the other
//! side narrows to a few (a dimension filtered down to a few hundred keys of many thousands),
//! and decoding only the rows that can match pays.
//!
//! [`DynamicFilterRowPushdown`] turns row-level evaluation on for the Parquet scans whose
//! predicate holds a join filter, through [`JoinFilterRows`]: it evaluates only the join
//! filters (the query's own conditions stay in the filter above the scan), each in a cheaper
//! form, and lets every row through once a join filter has seen [`JUDGE_AFTER_ROWS`] rows and
//! kept more than [`MAX_KEPT_SHARE`] of them ([`MAX_KEPT_SHARE_BUILD`] in a scan that feeds
//! the build side of a hash join). A row a join filter would drop cannot match, so its join
//! drops it anyway: the answer does not depend on when a filter switches off. It does nothing when the session's
//! `pushdown_filters` is on, and leaves scans that evaluate their predicate row by row
//! already as they are.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
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
use datafusion::physical_plan::joins::{HashJoinExec, HashTableLookupExpr};
use datafusion_datasource::file::FileSource;

use crate::optimizer::key_lists::{merge_partition_key_lists, per_column_lists};
use crate::optimizer::split_switched_scans::RowFilterState;

/// Evaluates join dynamic filters row by row in the Parquet scans they filter.
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
        rewrite(plan, false)
    }

    fn name(&self) -> &str {
        "dynamic_filter_row_pushdown"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Rewrites the scans under `plan`; `in_build` says whether `plan` feeds the build side of a
/// hash join.
fn rewrite(plan: Arc<dyn ExecutionPlan>, in_build: bool) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>() {
        let max_kept_share = if in_build {
            MAX_KEPT_SHARE_BUILD
        } else {
            MAX_KEPT_SHARE
        };
        return Ok(scan(exec, max_kept_share).unwrap_or(plan));
    }
    let build_child = plan.downcast_ref::<HashJoinExec>().map(|_| 0);
    let children = plan.children();
    let mut changed = false;
    let mut rewritten = Vec::with_capacity(children.len());
    for (i, child) in children.into_iter().enumerate() {
        let new = rewrite(Arc::clone(child), in_build || build_child == Some(i))?;
        changed |= !Arc::ptr_eq(&new, child);
        rewritten.push(new);
    }
    if changed {
        datafusion::physical_plan::execution_plan::replace_children_if_necessary(plan, rewritten)
    } else {
        Ok(plan)
    }
}

/// The scan with its join filters evaluated row by row, or `None` where that does not apply.
fn scan(exec: &DataSourceExec, max_kept_share: f64) -> Option<Arc<dyn ExecutionPlan>> {
    let scan = exec.data_source().downcast_ref::<FileScanConfig>()?;
    let parquet = scan.file_source().downcast_ref::<ParquetSource>()?;
    // A scan that already evaluates its predicate row by row (Delta's, for the conditions it
    // reports as exact) may be the only place its conditions are applied: it is left as it
    // is. The others use their predicate to skip files and row groups only, with the
    // conditions applied above them.
    if parquet.table_parquet_options().global.pushdown_filters {
        return None;
    }
    let filter = parquet.filter()?;
    let conjuncts = split_conjunction(&filter);
    let is_dynamic = |c: &Arc<dyn PhysicalExpr>| {
        c.downcast_ref::<DynamicFilterPhysicalExpr>().is_some()
            || c.downcast_ref::<crate::optimizer::key_column_filters::KeyColumnFilter>()
                .is_some()
    };
    if !conjuncts.iter().any(|c| is_dynamic(c)) {
        return None;
    }
    // One row-level predicate for the whole scan (see `JoinFilterRows`): the join filters are
    // evaluated, each watched for how many rows it keeps; the query's own conditions are left
    // to the filter above the scan.
    let dynamic = conjuncts.iter().map(|c| is_dynamic(c)).collect();
    let (watched, state) = JoinFilterRows::wrap(
        conjuncts.into_iter().cloned().collect(),
        dynamic,
        max_kept_share,
    );
    // Each file range is read with the row filter while a join filter is on, without it
    // once all are off (see `row_filter_switch`).
    let filtered = parquet
        .with_predicate(Arc::clone(&watched))
        .with_pushdown_filters(true);
    let mut scan = scan.clone();
    scan.file_source = Arc::new(
        crate::optimizer::split_switched_scans::SwitchedParquetSource::new(
            filtered,
            parquet.with_predicate(watched),
            state,
        ),
    );
    Some(Arc::new(exec.clone().with_data_source(Arc::new(scan))))
}

/// Rows a join filter must have seen, over all the scan's partitions and files, before it may
/// be judged: a share taken over a few batches says little about the rest.
const JUDGE_AFTER_ROWS: u64 = 100_000;

/// A join filter that keeps more than this share of the rows it sees is switched off: past
/// it, evaluating row by row costs more than decoding the rows it drops. Switching off only
/// lets through rows that cannot match, which the join drops, so a share set too low or too
/// high costs time, never a wrong answer.
const MAX_KEPT_SHARE: f64 = 0.02;

/// The same for a scan that feeds the build side of a hash join, where the filter is a key
/// list (the customers of two nations of many, say). Every row it lets through is hashed and
/// shapes the filters that join hands on in turn, so a filter there pays at a larger share.
/// A filter that looks keys up in its join's hash table is still held to [`MAX_KEPT_SHARE`].
const MAX_KEPT_SHARE_BUILD: f64 = 0.15;

/// How much of what a scan read a join filter kept; shared by the scan's partitions and
/// files.
#[derive(Debug)]
struct Kept {
    seen: AtomicU64,
    kept: AtomicU64,
    off: AtomicBool,
    max_share: f64,
    /// Whether the filter looks keys up in its join's hash table (too many keys for a
    /// list): a lookup costs a hash a row, so it is held to [`MAX_KEPT_SHARE`] even in a
    /// scan that feeds a build side.
    lookup: AtomicBool,
}

impl Kept {
    fn new(max_share: f64) -> Self {
        Self {
            seen: AtomicU64::new(0),
            kept: AtomicU64::new(0),
            off: AtomicBool::new(false),
            max_share,
            lookup: AtomicBool::new(false),
        }
    }

    fn count(&self, seen: usize, kept: usize) {
        let seen = self.seen.fetch_add(seen as u64, Ordering::Relaxed) + seen as u64;
        let kept = self.kept.fetch_add(kept as u64, Ordering::Relaxed) + kept as u64;
        let max_share = if self.lookup.load(Ordering::Relaxed) {
            self.max_share.min(MAX_KEPT_SHARE)
        } else {
            self.max_share
        };
        if seen >= JUDGE_AFTER_ROWS && kept as f64 > max_share * seen as f64 {
            self.off.store(true, Ordering::Relaxed);
        }
    }
}

/// What a scan's join filters have kept: while one of them is still on, its file ranges are
/// read with the row filter.
#[derive(Debug)]
struct JoinFiltersKept(Vec<Arc<Kept>>);

impl RowFilterState for JoinFiltersKept {
    fn any_on(&self) -> bool {
        self.0.iter().any(|kept| !kept.off.load(Ordering::Relaxed))
    }
}

/// A scan's predicate as the scan evaluates it row by row: the join filters among its
/// conditions, one after the other, each on the rows the ones before kept.
///
/// - The query's own conditions are not evaluated here: the filter above the scan does that,
///   and most of them keep too many rows to be worth it.
/// - A join filter is evaluated in a cheaper form: a hash-partitioned join publishes
///   `CASE hash(key) % n WHEN 0 THEN key IN (…) … END`, one key list per partition, and a key
///   can only be in the list of its own partition; so the lists are merged into one
///   `key IN (…)`, one lookup a row instead of a hash, a routing and a lookup.
/// - Each join filter counts the rows it keeps and, once it has seen enough, lets every row
///   through if it keeps too many: the join drops them anyway, and a filter that keeps most
///   rows only makes the decoding slower.
///
/// So it keeps a superset of what the predicate keeps, which is all a scan's predicate
/// promises when a filter sits above it or the join re-checks. For everything else
/// (statistics pruning, file pruning, EXPLAIN) it is the predicate: the conditions are its
/// children and it snapshots to their conjunction, with key lists too long to prune by left
/// out (see [`without_long_lists`]).
#[derive(Debug)]
struct JoinFilterRows {
    conditions: Vec<Arc<dyn PhysicalExpr>>,
    /// Which conditions are joins' dynamic filters.
    dynamic: Vec<bool>,
    kept: Vec<Arc<Kept>>,
    /// The row expressions made from the join filters' current state (`None` for the
    /// query's own conditions), and that state's generation.
    current: Mutex<Option<RowExprs>>,
    /// The same, shared by every copy of this predicate: a scan adapts its predicate to each
    /// file range it opens (new copies with the same conditions), and the row expressions
    /// (key bitmaps among them) are made once for all of them, not again for every range.
    made: Arc<Mutex<Vec<MadeRowExprs>>>,
}

type RowExprs = (u64, Vec<Option<Arc<dyn PhysicalExpr>>>);

/// Row expressions made for a copy's conditions and batch schema.
struct MadeRowExprs {
    conditions: Vec<Arc<dyn PhysicalExpr>>,
    schema: arrow::datatypes::SchemaRef,
    exprs: RowExprs,
}

impl fmt::Debug for MadeRowExprs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MadeRowExprs")
            .field("generation", &self.exprs.0)
            .finish_non_exhaustive()
    }
}

/// Copies of a predicate whose row expressions are kept at a time: one per kind of file
/// range (ranges whose partition values or constant columns differ adapt it differently).
const MADE_KEPT: usize = 8;

impl JoinFilterRows {
    /// The scan predicate, and the state of its join filters for choosing a reader.
    fn wrap(
        conditions: Vec<Arc<dyn PhysicalExpr>>,
        dynamic: Vec<bool>,
        max_kept_share: f64,
    ) -> (Arc<dyn PhysicalExpr>, Arc<dyn RowFilterState>) {
        let kept: Vec<Arc<Kept>> = conditions
            .iter()
            .map(|_| Arc::new(Kept::new(max_kept_share)))
            .collect();
        let state = JoinFiltersKept(
            kept.iter()
                .zip(&dynamic)
                .filter(|(_, dynamic)| **dynamic)
                .map(|(kept, _)| Arc::clone(kept))
                .collect(),
        );
        let predicate = Arc::new(Self {
            conditions,
            dynamic,
            kept,
            current: Mutex::new(None),
            made: Arc::default(),
        });
        (predicate, Arc::new(state))
    }

    /// The expressions to evaluate for the join filters' current state.
    fn row_exprs(
        &self,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Vec<Option<Arc<dyn PhysicalExpr>>>> {
        let generation = self
            .conditions
            .iter()
            .map(datafusion::physical_expr_common::physical_expr::snapshot_generation)
            .fold(0u64, u64::wrapping_add);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((made_at, exprs)) = current.as_ref()
            && *made_at == generation
        {
            return Ok(exprs.clone());
        }
        // Made already by another copy for the same conditions (the join filters compare by
        // identity) and the same batch schema?
        {
            let made = self.made.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = made.iter().find(|m| {
                m.exprs.0 == generation && m.schema == *schema && m.conditions == self.conditions
            }) {
                *current = Some(found.exprs.clone());
                return Ok(found.exprs.1.clone());
            }
        }
        let exprs = self
            .conditions
            .iter()
            .zip(&self.dynamic)
            .zip(&self.kept)
            .map(|((condition, dynamic), kept)| {
                if !dynamic {
                    return Ok(None);
                }
                let snapshot =
                    datafusion::physical_expr_common::physical_expr::snapshot_physical_expr(
                        Arc::clone(condition),
                    )?;
                let merged = merge_partition_key_lists(&snapshot, schema).unwrap_or(snapshot);
                let row_expr = merged
                    .transform_up(|e| {
                        Ok(match per_column_lists(&e, schema) {
                            Some(lists) => Transformed::yes(lists),
                            None => Transformed::no(e),
                        })
                    })
                    .data()?;
                // Dense integer key lists are tested in a bitmap, which also tests the
                // bounds published with them.
                let row_expr = row_expr
                    .transform_up(|e| {
                        Ok(match crate::optimizer::key_bitmap::key_bitmap(&e, schema) {
                            Some(bitmap) => Transformed::yes(bitmap),
                            None => Transformed::no(e),
                        })
                    })
                    .data()?;
                let row_expr = crate::optimizer::key_bitmap::drop_implied_bounds(row_expr);
                let lookup =
                    row_expr.exists(|e| Ok(e.downcast_ref::<HashTableLookupExpr>().is_some()))?;
                kept.lookup.store(lookup, Ordering::Relaxed);
                Ok(Some(row_expr))
            })
            .collect::<Result<Vec<_>>>()?;
        *current = Some((generation, exprs.clone()));
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.retain(|m| m.exprs.0 == generation);
        if made.len() >= MADE_KEPT {
            made.remove(0);
        }
        made.push(MadeRowExprs {
            conditions: self.conditions.clone(),
            schema: Arc::clone(schema),
            exprs: (generation, exprs.clone()),
        });
        Ok(exprs)
    }
}

/// A filter result with its NULLs (unknown) as false: the row is not kept.
fn nulls_as_false(result: BooleanArray) -> BooleanArray {
    if result.null_count() == 0 {
        result
    } else {
        arrow::compute::prep_null_mask_filter(&result)
    }
}

impl fmt::Display for JoinFilterRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, condition) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            condition.fmt(f)?;
        }
        Ok(())
    }
}

impl PartialEq for JoinFilterRows {
    fn eq(&self, other: &Self) -> bool {
        self.conditions == other.conditions && self.dynamic == other.dynamic
    }
}

impl Eq for JoinFilterRows {}

impl Hash for JoinFilterRows {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.conditions.hash(state);
        self.dynamic.hash(state);
    }
}

impl PhysicalExpr for JoinFilterRows {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _schema: &Schema) -> Result<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let rows = batch.num_rows();
        let mut selection: Option<BooleanArray> = None;
        for (expr, kept) in self.row_exprs(&batch.schema())?.iter().zip(&self.kept) {
            let Some(expr) = expr else { continue };
            if kept.off.load(Ordering::Relaxed) {
                continue;
            }
            let (result, seen) = match &selection {
                None => (expr.evaluate(batch)?, rows),
                Some(s) => (expr.evaluate_selection(batch, s)?, s.true_count()),
            };
            let result = result.into_array(rows)?;
            let result = result.as_boolean_opt().ok_or_else(|| {
                datafusion::common::DataFusionError::Internal(format!(
                    "a join filter gave {} values",
                    result.data_type()
                ))
            })?;
            let result = match &selection {
                None => nulls_as_false(result.clone()),
                Some(s) => nulls_as_false(arrow::compute::and(s, result)?),
            };
            let passed = result.true_count();
            kept.count(seen, passed);
            selection = Some(result);
            if passed == 0 {
                break;
            }
        }
        Ok(match selection {
            Some(s) => ColumnarValue::Array(Arc::new(s)),
            None => ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))),
        })
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.conditions.iter().collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        if children.len() != self.conditions.len() {
            return Err(datafusion::common::DataFusionError::Internal(format!(
                "a scan predicate of {} conditions got {} children",
                self.conditions.len(),
                children.len()
            )));
        }
        Ok(Arc::new(Self {
            conditions: children,
            dynamic: self.dynamic.clone(),
            kept: self.kept.clone(),
            current: Mutex::new(None),
            made: Arc::clone(&self.made),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, condition) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            condition.fmt_sql(f)?;
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        // The children are snapshotted first: this is their conjunction, with long key lists
        // left out (see `without_long_lists`).
        Ok(Some(
            self.conditions
                .iter()
                .map(without_long_lists)
                .reduce(|a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as _)
                .unwrap_or_else(|| Arc::new(Literal::new(ScalarValue::Boolean(Some(true))))),
        ))
    }
}

/// Key lists longer than this are left out of the predicate statistics pruning reads.
const PRUNING_MAX_KEYS: usize = 150;

/// A join filter as statistics pruning sees it, with key lists of more than
/// [`PRUNING_MAX_KEYS`] keys taken as `true`, so it keeps a superset of the rows.
///
/// DataFusion builds a pruning predicate from a scan's predicate whenever it opens a file
/// and each time the join filters change, and simplifies it: it rebuilds every list it meets,
/// value by value, and collects each list's values as guarantees. For a list of thousands of
/// keys that costs more than pruning can gain from it: min/max pruning ignores lists of more
/// than 20 values anyway, and the range the join publishes with its list stays. DataFusion's
/// own joins publish lists of at most 150 keys (a lookup in their hash table beyond), which
/// gives no guarantees either.
fn without_long_lists(expr: &Arc<dyn PhysicalExpr>) -> Arc<dyn PhysicalExpr> {
    if let Some(list) = expr.downcast_ref::<InListExpr>() {
        if !list.negated() && list.list().len() > PRUNING_MAX_KEYS {
            return Arc::new(Literal::new(ScalarValue::Boolean(Some(true))));
        }
        return Arc::clone(expr);
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>()
        && matches!(binary.op(), Operator::And | Operator::Or)
    {
        let (left, right) = (
            without_long_lists(binary.left()),
            without_long_lists(binary.right()),
        );
        if Arc::ptr_eq(&left, binary.left()) && Arc::ptr_eq(&right, binary.right()) {
            return Arc::clone(expr);
        }
        return Arc::new(BinaryExpr::new(left, *binary.op(), right));
    }
    // A hash-partitioned join's `CASE hash % n WHEN i THEN list_i … END`: the lists are
    // results, not conditions.
    if let Some(case) = expr.downcast_ref::<CaseExpr>() {
        let when_then: Vec<_> = case
            .when_then_expr()
            .iter()
            .map(|(when, then)| (Arc::clone(when), without_long_lists(then)))
            .collect();
        let changed = when_then
            .iter()
            .zip(case.when_then_expr())
            .any(|((_, new), (_, old))| !Arc::ptr_eq(new, old));
        if changed
            && let Ok(rebuilt) =
                CaseExpr::try_new(case.expr().cloned(), when_then, case.else_expr().cloned())
        {
            return Arc::new(rebuilt);
        }
    }
    Arc::clone(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_pruning_sees_no_long_key_lists() {
        use datafusion::physical_expr::expressions::{Column, in_list, lit};
        let schema = Schema::new(vec![arrow::datatypes::Field::new(
            "k",
            DataType::Int64,
            true,
        )]);
        let key: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let list = |n: i64| {
            let values = (0..n)
                .map(|v| lit(ScalarValue::Int64(Some(v * 2))))
                .collect();
            in_list(Arc::clone(&key), values, &false, &schema).expect("list")
        };
        let bound = Arc::new(BinaryExpr::new(Arc::clone(&key), Operator::GtEq, lit(0i64)))
            as Arc<dyn PhysicalExpr>;
        let and = |a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as Arc<dyn PhysicalExpr>;
        // A long list goes, its bound and a short list stay.
        let (filter, _) = JoinFilterRows::wrap(
            vec![and(Arc::clone(&bound), list(1_000)), list(3)],
            vec![true, true],
            MAX_KEPT_SHARE,
        );
        let snapshot = filter.snapshot().expect("snapshot").expect("an expression");
        let text = snapshot.to_string();
        assert!(text.contains("k@0 >= 0 AND true"), "{text}");
        assert!(text.contains("IN (SET) ([0, 2, 4])"), "{text}");
        // A hash-partitioned join's per-partition lists are results of a CASE: they go too.
        let case: Arc<dyn PhysicalExpr> = Arc::new(
            CaseExpr::try_new(
                Some(Arc::clone(&key)),
                vec![(lit(0i64), list(1_000)), (lit(1i64), list(2))],
                Some(lit(false)),
            )
            .expect("case"),
        );
        let text = without_long_lists(&case).to_string();
        assert!(text.contains("WHEN 0 THEN true"), "{text}");
        assert!(text.contains("WHEN 1 THEN k@0 IN (SET) ([0, 2])"), "{text}");
    }

    /// Whether each Parquet scan of a plan evaluates its predicate row by row, by table.
    fn pushdown_by_table(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<(String, bool)>) {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>()
            && let Some(parquet) =
                crate::optimizer::split_switched_scans::parquet_source(scan.file_source())
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
    async fn scans_filtered_by_a_join_evaluate_it_row_by_row() {
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
        // With a static predicate too, the fact scan still evaluates the join's filter row by
        // row (its own predicate along with it).
        assert_eq!(
            plan("SELECT sum(v) FROM processed.fact JOIN processed.dim ON fact.k = dim.k WHERE dim.g = 3 AND fact.v > 10").await,
            [("dim".to_string(), false), ("fact".to_string(), true)]
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
            JoinFilterRows::wrap(
                vec![Arc::new(DynamicFilterPhysicalExpr::new(
                    vec![Arc::clone(&k)],
                    inner,
                ))],
                vec![true],
                MAX_KEPT_SHARE,
            )
            .0
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

    /// In a scan feeding a build side, a key list keeping 10% stays on; a hash-table lookup
    /// keeping as many switches off.
    #[test]
    fn lookups_feeding_a_build_side_switch_off_past_the_probe_share() {
        let list = Kept::new(MAX_KEPT_SHARE_BUILD);
        let lookup = Kept::new(MAX_KEPT_SHARE_BUILD);
        lookup.lookup.store(true, Ordering::Relaxed);
        for kept in [&list, &lookup] {
            for _ in 0..20 {
                kept.count(8192, 819);
            }
        }
        assert!(!list.off.load(Ordering::Relaxed));
        assert!(lookup.off.load(Ordering::Relaxed));
    }

    /// A join on two columns publishes `struct(a, b) IN (…)`; it is tested column by column,
    /// keeping every row the struct test keeps.
    #[test]
    fn struct_key_lists_are_tested_column_by_column() {
        use datafusion::physical_expr::expressions::col;
        let schema = Arc::new(Schema::new(vec![
            arrow::datatypes::Field::new("a", DataType::Int64, false),
            arrow::datatypes::Field::new("b", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(arrow::array::Int64Array::from(vec![1, 1, 2, 2, 3])),
                Arc::new(arrow::array::Int64Array::from(vec![10, 20, 10, 20, 10])),
            ],
        )
        .expect("batch");
        let a = col("a", &schema).expect("a");
        let b = col("b", &schema).expect("b");
        let fields = arrow::datatypes::Fields::from(vec![
            arrow::datatypes::Field::new("c0", DataType::Int64, false),
            arrow::datatypes::Field::new("c1", DataType::Int64, false),
        ]);
        let key: Arc<dyn PhysicalExpr> =
            Arc::new(datafusion::physical_expr::ScalarFunctionExpr::new(
                "struct",
                datafusion::functions::core::r#struct(),
                vec![Arc::clone(&a), Arc::clone(&b)],
                Arc::new(arrow::datatypes::Field::new(
                    "struct",
                    DataType::Struct(fields.clone()),
                    true,
                )),
                Arc::new(ConfigOptions::default()),
            ));
        // The build side's keys: (1, 10) and (2, 20).
        let keys = arrow::array::StructArray::new(
            fields,
            vec![
                Arc::new(arrow::array::Int64Array::from(vec![1, 2])),
                Arc::new(arrow::array::Int64Array::from(vec![10, 20])),
            ],
            None,
        );
        let exact: Arc<dyn PhysicalExpr> = Arc::new(
            InListExpr::try_new_from_array(key, Arc::new(keys), false, &schema)
                .expect("struct in list"),
        );
        let lists = per_column_lists(&exact, &schema).expect("per column");
        assert_eq!(
            lists.to_string(),
            "a@0 IN (SET) ([1, 2]) AND b@1 IN (SET) ([10, 20])"
        );
        let exact_rows = bools(exact.evaluate(&batch).expect("exact"), 5);
        let rows = bools(lists.evaluate(&batch).expect("lists"), 5);
        assert_eq!(exact_rows, [true, false, false, true, false]);
        assert_eq!(rows, [true, true, true, true, false]);
    }
}
