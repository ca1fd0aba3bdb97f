//! A filter's conditions evaluated one after the other, each on the rows still in.
//!
//! DataFusion evaluates `a AND b AND c` as nested binary expressions. Once the conditions so
//! far keep at most a fifth of a batch's rows, the next one is evaluated on those rows
//! alone, but the way there is costly: every column of the batch is copied to the rows
//! still in, whether the condition reads it or not, and the condition's answers are put back
//! in place one row at a time through a builder, with an array slice made per run of
//! selected rows. For a filter of a few cheap comparisons over many rows, that bookkeeping
//! can cost more than the comparisons themselves.
//!
//! [`ConjunctionsOnRowsLeft`] makes the predicate of every filter of several conditions a
//! [`Conjunction`], which keeps the rows still in as a bitmap. A condition is evaluated on the
//! whole batch and its answer ANDed in while many rows are still in; once at most
//! [`EVALUATE_ON_ROWS_LEFT_UP_TO`] of them are, only the columns it reads are copied to those
//! rows, and its answers are scattered back by walking the bitmap's set bits. It stops as
//! soon as no row is left. A filter keeps a row only where its predicate is true, so an
//! unknown (NULL) answer counts as false here; the expression is used only as a filter's
//! whole predicate, where that is what NULL means. A condition runs on the whole batch only
//! where DataFusion's `AND` would run it there too (DataFusion also does so whenever an
//! earlier condition answered NULL somewhere), so a condition guarded by an earlier one
//! (`x <> 0 AND 10 / x > 2`) fails in no case where it would not fail without this
//! expression. Filters of one condition are left as they are.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::buffer::{BooleanBuffer, MutableBuffer};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Schema};
use arrow::util::bit_util;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_expr::utils::{collect_columns, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// Evaluates the predicate of every filter with several conditions as a [`Conjunction`].
///
/// It runs after DataFusion's physical rules and after strata's rules that read filters'
/// conditions: the filter's statistics and the properties its conditions give its output (a
/// column compared with a constant is constant) have been used by then, and an opaque
/// predicate would hide them from rules that run after it.
#[derive(Debug, Default)]
pub(crate) struct ConjunctionsOnRowsLeft;

impl PhysicalOptimizerRule for ConjunctionsOnRowsLeft {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(predicate) = Conjunction::of(filter.predicate()) else {
                return Ok(Transformed::no(node));
            };
            let exec = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "conjunctions_on_rows_left"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Up to this share of a batch's rows still in, a condition is evaluated on those rows
/// alone; above it, on the whole batch. DataFusion's own threshold, computed as it does.
const EVALUATE_ON_ROWS_LEFT_UP_TO: f32 = 0.2;

/// `c1 AND c2 AND …` as a filter evaluates it: see the module documentation.
#[derive(Debug)]
pub(crate) struct Conjunction {
    conditions: Vec<Arc<dyn PhysicalExpr>>,
    /// Per condition: the batch columns it reads, and the condition rewritten to read them
    /// from a batch of just those columns, in that order. `None` for a condition that reads
    /// no column, which is always evaluated on the whole batch.
    narrowed: Vec<Option<Narrowed>>,
}

#[derive(Debug)]
struct Narrowed {
    columns: Vec<usize>,
    condition: Arc<dyn PhysicalExpr>,
}

impl Conjunction {
    /// The predicate as a conjunction, or `None` when it has a single condition.
    pub(crate) fn of(predicate: &Arc<dyn PhysicalExpr>) -> Option<Arc<dyn PhysicalExpr>> {
        if predicate.downcast_ref::<Conjunction>().is_some() {
            return None;
        }
        let conditions: Vec<_> = split_conjunction(predicate).into_iter().cloned().collect();
        if conditions.len() < 2 {
            return None;
        }
        Self::new(conditions)
            .ok()
            .map(|c| Arc::new(c) as Arc<dyn PhysicalExpr>)
    }

    /// The conjunction of these conditions, as a plan that travelled to an executor
    /// carries them.
    pub(crate) fn from_conditions(
        conditions: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self::new(conditions)?))
    }

    fn new(conditions: Vec<Arc<dyn PhysicalExpr>>) -> Result<Self> {
        let narrowed = conditions.iter().map(narrow).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conditions,
            narrowed,
        })
    }
}

/// `condition` reading only its own columns, renumbered from 0 in the order of the batch.
fn narrow(condition: &Arc<dyn PhysicalExpr>) -> Result<Option<Narrowed>> {
    let mut columns: Vec<usize> = collect_columns(condition)
        .iter()
        .map(Column::index)
        .collect();
    if columns.is_empty() {
        return Ok(None);
    }
    columns.sort_unstable();
    columns.dedup();
    let condition = Arc::clone(condition)
        .transform_up(|e| {
            let Some(column) = e.downcast_ref::<Column>() else {
                return Ok(Transformed::no(e));
            };
            let at = columns
                .binary_search(&column.index())
                .expect("collected above");
            Ok(Transformed::yes(
                Arc::new(Column::new(column.name(), at)) as Arc<dyn PhysicalExpr>
            ))
        })
        .data()?;
    Ok(Some(Narrowed { columns, condition }))
}

/// The rows where `result` is true (not false, not NULL).
fn true_rows(result: &BooleanArray) -> BooleanBuffer {
    match result.nulls() {
        None => result.values().clone(),
        Some(nulls) => result.values() & nulls.inner(),
    }
}

/// The bitmap over all rows of a batch that has `kept`'s answers at the set bits of
/// `selected` (one answer per set bit, in order) and false elsewhere.
fn scatter(selected: &BooleanBuffer, kept: &BooleanBuffer) -> BooleanBuffer {
    let mut bits = MutableBuffer::from_len_zeroed(bit_util::ceil(selected.len(), 8));
    let out = bits.as_slice_mut();
    for (answer, row) in selected.set_indices().enumerate() {
        if kept.value(answer) {
            bit_util::set_bit(out, row);
        }
    }
    BooleanBuffer::new(bits.into(), 0, selected.len())
}

impl PhysicalExpr for Conjunction {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _schema: &Schema) -> Result<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let rows = batch.num_rows();
        // `None` while every row is still in.
        let mut selected: Option<BooleanBuffer> = None;
        let mut left = rows;
        for (condition, narrowed) in self.conditions.iter().zip(&self.narrowed) {
            if left == 0 {
                break;
            }
            let on_rows_left = match (&selected, narrowed) {
                (Some(selected), Some(narrowed))
                    if left as f32 / rows as f32 <= EVALUATE_ON_ROWS_LEFT_UP_TO =>
                {
                    Some((selected, narrowed))
                }
                _ => None,
            };
            let next = if let Some((current, narrowed)) = on_rows_left {
                let mask = BooleanArray::new(current.clone(), None);
                let columns = filter_record_batch(&batch.project(&narrowed.columns)?, &mask)?;
                let answers = narrowed.condition.evaluate(&columns)?.into_array(left)?;
                scatter(current, &true_rows(answers.as_boolean()))
            } else {
                let kept = match condition.evaluate(batch)? {
                    ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => continue,
                    ColumnarValue::Scalar(_) => BooleanBuffer::new_unset(rows),
                    ColumnarValue::Array(answers) => true_rows(answers.as_boolean()),
                };
                match &selected {
                    None => kept,
                    Some(current) => current & &kept,
                }
            };
            left = next.count_set_bits();
            selected = Some(next);
        }
        let selected = selected.unwrap_or_else(|| BooleanBuffer::new_set(rows));
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            selected, None,
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.conditions.iter().collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self::new(children)?))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, condition) in self.conditions.iter().enumerate() {
            if i > 0 {
                write!(f, " AND ")?;
            }
            if binds_looser_than_and(condition) {
                write!(f, "(")?;
                condition.fmt_sql(f)?;
                write!(f, ")")?;
            } else {
                condition.fmt_sql(f)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Conjunction {
    // Shown as the conditions it evaluates, so plans read as they would without it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, condition) in self.conditions.iter().enumerate() {
            if i > 0 {
                write!(f, " AND ")?;
            }
            if binds_looser_than_and(condition) {
                write!(f, "({condition})")?;
            } else {
                write!(f, "{condition}")?;
            }
        }
        Ok(())
    }
}

/// A condition that needs parentheses among `AND`s: an `OR`, as `BinaryExpr` shows it.
fn binds_looser_than_and(condition: &Arc<dyn PhysicalExpr>) -> bool {
    condition
        .downcast_ref::<BinaryExpr>()
        .is_some_and(|b| b.op().precedence() < Operator::And.precedence())
}

impl PartialEq for Conjunction {
    fn eq(&self, other: &Self) -> bool {
        self.conditions.len() == other.conditions.len()
            && self
                .conditions
                .iter()
                .zip(&other.conditions)
                .all(|(a, b)| **a == **b)
    }
}

impl Eq for Conjunction {}

impl Hash for Conjunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for condition in &self.conditions {
            condition.hash(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{binary, col, lit};
    use datafusion::physical_expr::utils::conjunction;

    fn batch() -> RecordBatch {
        let n = 10_000i64;
        let a: ArrayRef = Arc::new(Int64Array::from_iter(
            (0..n).map(|i| (i % 7 != 3).then_some(i % 100)),
        ));
        let b: ArrayRef = Arc::new(Int64Array::from_iter(
            (0..n).map(|i| (i % 11 != 5).then_some((i * 7919) % 1000)),
        ));
        let s: ArrayRef = Arc::new(StringArray::from_iter(
            (0..n).map(|i| (i % 13 != 0).then(|| format!("v{}", i % 4))),
        ));
        let c: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 50)));
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("c", DataType::Int64, false),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![a, b, s, c]).expect("test value")
    }

    fn cmp(
        column: &str,
        op: Operator,
        value: ScalarValue,
        batch: &RecordBatch,
    ) -> Arc<dyn PhysicalExpr> {
        let schema = batch.schema();
        binary(
            col(column, &schema).expect("test value"),
            op,
            lit(value),
            &schema,
        )
        .expect("test value")
    }

    /// The rows DataFusion's own `AND` keeps (NULL as not kept).
    fn expected(conditions: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> Vec<bool> {
        let predicate = conjunction(conditions.iter().cloned());
        let result = predicate
            .evaluate(batch)
            .expect("test value")
            .into_array(batch.num_rows())
            .expect("test value");
        let result = result.as_boolean();
        (0..result.len())
            .map(|i| result.is_valid(i) && result.value(i))
            .collect()
    }

    fn actual(conditions: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> Vec<bool> {
        let predicate =
            Conjunction::of(&conjunction(conditions.iter().cloned())).expect("test value");
        let result = predicate
            .evaluate(batch)
            .expect("test value")
            .into_array(batch.num_rows())
            .expect("test value");
        let result = result.as_boolean();
        assert_eq!(result.null_count(), 0);
        result.iter().map(|v| v.expect("test value")).collect()
    }

    #[test]
    fn keeps_what_and_keeps() {
        let batch = batch();
        let int = |v| ScalarValue::Int64(Some(v));
        let text = |v: &str| ScalarValue::Utf8(Some(v.into()));
        let cases: Vec<Vec<Arc<dyn PhysicalExpr>>> = vec![
            // Few rows left after the first condition: the others run on those rows alone.
            vec![
                cmp("a", Operator::Lt, int(5), &batch),
                cmp("s", Operator::Eq, text("v1"), &batch),
                cmp("b", Operator::GtEq, int(300), &batch),
            ],
            // Many rows left: each condition runs on the whole batch.
            vec![
                cmp("a", Operator::Lt, int(90), &batch),
                cmp("b", Operator::Lt, int(900), &batch),
                cmp("s", Operator::NotEq, text("v2"), &batch),
            ],
            // From many to few to none.
            vec![
                cmp("b", Operator::Lt, int(500), &batch),
                cmp("a", Operator::Eq, int(42), &batch),
                cmp("a", Operator::Eq, int(43), &batch),
                cmp("s", Operator::Eq, text("v0"), &batch),
            ],
            // A condition without columns.
            vec![
                cmp("a", Operator::Lt, int(10), &batch),
                lit(ScalarValue::Boolean(Some(true))),
                cmp("b", Operator::Gt, int(10), &batch),
            ],
            vec![
                cmp("a", Operator::Lt, int(10), &batch),
                lit(ScalarValue::Boolean(None)),
            ],
        ];
        for (i, conditions) in cases.iter().enumerate() {
            let want = expected(conditions, &batch);
            assert_eq!(actual(conditions, &batch), want, "case {i}");
            // The first two cases keep some rows, so they compare real answers.
            assert!(i >= 2 || want.iter().any(|k| *k), "case {i} keeps no row");
        }
    }

    #[test]
    fn a_guarded_condition_only_sees_the_rows_left() {
        // `b / (c - 7) < 0` fails where c = 7. `c < 5` keeps a tenth of the rows, so the
        // division runs on those alone, as in DataFusion's `AND`; `c < 20` keeps two fifths,
        // so both run it on the whole batch and both fail.
        let batch = batch();
        let schema = batch.schema();
        let int = |v| ScalarValue::Int64(Some(v));
        let guarded = |guard: i64| {
            let divisor = binary(
                col("c", &schema).expect("test value"),
                Operator::Minus,
                lit(int(7)),
                &schema,
            )
            .expect("test value");
            let ratio = binary(
                col("b", &schema).expect("test value"),
                Operator::Divide,
                divisor,
                &schema,
            )
            .expect("test value");
            vec![
                cmp("c", Operator::Lt, int(guard), &batch),
                binary(ratio, Operator::Lt, lit(int(0)), &schema).expect("test value"),
            ]
        };
        let conditions = guarded(5);
        let want = expected(&conditions, &batch);
        assert!(want.iter().any(|k| *k));
        assert_eq!(actual(&conditions, &batch), want);
        let conditions = guarded(20);
        let plain = conjunction(conditions.iter().cloned());
        assert!(plain.evaluate(&batch).is_err());
        let wrapped = Conjunction::of(&plain).expect("test value");
        let error = wrapped.evaluate(&batch).expect_err("an error").to_string();
        assert!(error.contains("Divide by zero"), "{error}");
    }

    #[test]
    fn shows_and_rebuilds_as_its_conditions() {
        let batch = batch();
        let int = |v| ScalarValue::Int64(Some(v));
        let plain = conjunction([
            cmp("a", Operator::Lt, int(5), &batch),
            cmp("b", Operator::Gt, int(1), &batch),
        ]);
        let wrapped = Conjunction::of(&plain).expect("test value");
        assert_eq!(wrapped.to_string(), plain.to_string());
        let either = binary(
            cmp("a", Operator::Lt, int(5), &batch),
            Operator::Or,
            cmp("a", Operator::Gt, int(50), &batch),
            &batch.schema(),
        )
        .expect("test value");
        let with_or = conjunction([either, cmp("b", Operator::Gt, int(1), &batch)]);
        assert_eq!(
            Conjunction::of(&with_or).expect("test value").to_string(),
            with_or.to_string()
        );
        assert!(with_or.to_string().starts_with('('), "{with_or}");
        assert!(Conjunction::of(&wrapped).is_none());
        let rebuilt = Arc::clone(&wrapped)
            .with_new_children(wrapped.children().into_iter().cloned().collect())
            .expect("test value");
        assert_eq!(&rebuilt, &wrapped);
    }
}
