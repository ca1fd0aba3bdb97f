//! Join key lists tested against a bitmap of the keys' range.
//!
//! A join hands a scan its build side's keys as `key IN (…)` (see
//! [`crate::optimizer::dynamic_filter_row_pushdown`]), and the scan tests every row it
//! decodes against the list. DataFusion tests an integer list longer than a handful of values
//! in a hash set: a hash and a probe per row. Join keys are mostly surrogate keys, dense in a
//! small range, so strata tests them in a bitmap with one bit per value of the range instead:
//! a subtraction, a shift and a load per row, in a bitmap that stays in the cache (a range of
//! ten thousand keys takes 1.2 KiB).
//!
//! [`key_bitmap`] makes one from a list of more than [`MIN_KEYS`] integer or date literals
//! whose range is at most [`MAX_BITS`] wide, and answers as the list does (NULL for a NULL
//! key); [`drop_implied_bounds`] then drops the `key >= min AND key <= max` a join publishes
//! with its list, which the bitmap already tests. Only the expressions scans evaluate row by
//! row are changed: statistics pruning keeps the bounds, and the list when it is short enough
//! to prune by (see `dynamic_filter_row_pushdown::without_long_lists`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrowPrimitiveType, AsArray, BooleanArray, PrimitiveArray, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, InListExpr, Literal};
use datafusion::physical_expr::utils::split_conjunction;

/// The widest key range tested in a bitmap: 8 M values, 1 MiB of bits.
const MAX_BITS: u64 = 1 << 23;

/// Lists this short are left to DataFusion, which compares a few values without hashing.
const MIN_KEYS: usize = 16;

/// `key IN (…)` as a [`KeyBitmap`], when `expr` is a list of integer or date literals over a
/// range of at most [`MAX_BITS`] values; `None` otherwise.
pub(crate) fn key_bitmap(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    let list = expr.downcast_ref::<InListExpr>()?;
    if list.negated() || list.list().len() <= MIN_KEYS {
        return None;
    }
    if !is_key_type(&list.expr().data_type(schema).ok()?) {
        return None;
    }
    let keys = list
        .list()
        .iter()
        .map(|e| e.downcast_ref::<Literal>().and_then(|l| as_i128(l.value())))
        .collect::<Option<Vec<i128>>>()?;
    let (min, max) = (*keys.iter().min()?, *keys.iter().max()?);
    let span = u64::try_from(max - min).ok()?.checked_add(1)?;
    if span > MAX_BITS {
        return None;
    }
    // Values are compared as i64 offsets from `min`, which must be one.
    let min = i64::try_from(min).ok()?;
    let mut words = vec![0u64; span.div_ceil(64) as usize];
    for key in keys {
        let offset = (key - i128::from(min)) as u64;
        words[(offset >> 6) as usize] |= 1 << (offset & 63);
    }
    Some(Arc::new(KeyBitmap {
        key: Arc::clone(list.expr()),
        min,
        max: i64::try_from(max).ok()?,
        words: words.into(),
        keys: list.list().len(),
    }))
}

/// A conjunction with the range conditions its bitmaps already test left out: a join
/// publishes `key >= min AND key <= max AND key IN (…)`, and a bitmap of the list holds no
/// key outside its range. Only bounds that every key of a bitmap on the same column meets are
/// dropped. Returns `expr` itself when nothing is dropped.
pub(crate) fn drop_implied_bounds(expr: Arc<dyn PhysicalExpr>) -> Arc<dyn PhysicalExpr> {
    let conditions = split_conjunction(&expr);
    let bitmaps: Vec<&KeyBitmap> = conditions
        .iter()
        .filter_map(|c| c.downcast_ref::<KeyBitmap>())
        .collect();
    if bitmaps.is_empty() {
        return expr;
    }
    let implied = |c: &Arc<dyn PhysicalExpr>| {
        let Some(binary) = c.downcast_ref::<BinaryExpr>() else {
            return false;
        };
        let Some(bound) = binary
            .right()
            .downcast_ref::<Literal>()
            .and_then(|l| as_i128(l.value()))
        else {
            return false;
        };
        bitmaps.iter().any(|b| {
            let (min, max) = (i128::from(b.min), i128::from(b.max));
            b.key.as_ref() == binary.left().as_ref()
                && match binary.op() {
                    Operator::GtEq => bound <= min,
                    Operator::Gt => bound < min,
                    Operator::LtEq => bound >= max,
                    Operator::Lt => bound > max,
                    _ => false,
                }
        })
    };
    let kept: Vec<Arc<dyn PhysicalExpr>> = conditions
        .iter()
        .filter(|c| !implied(c))
        .map(|c| Arc::clone(c))
        .collect();
    if kept.len() == conditions.len() {
        return expr;
    }
    kept.into_iter()
        .reduce(|a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as _)
        .unwrap_or(expr)
}

fn is_key_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date32
            | DataType::Date64
    )
}

/// A non-NULL integer or date literal as an i128.
pub(crate) fn as_i128(value: &ScalarValue) -> Option<i128> {
    Some(match value {
        ScalarValue::Int8(Some(v)) => i128::from(*v),
        ScalarValue::Int16(Some(v)) => i128::from(*v),
        ScalarValue::Int32(Some(v)) | ScalarValue::Date32(Some(v)) => i128::from(*v),
        ScalarValue::Int64(Some(v)) | ScalarValue::Date64(Some(v)) => i128::from(*v),
        ScalarValue::UInt8(Some(v)) => i128::from(*v),
        ScalarValue::UInt16(Some(v)) => i128::from(*v),
        ScalarValue::UInt32(Some(v)) => i128::from(*v),
        ScalarValue::UInt64(Some(v)) => i128::from(*v),
        _ => return None,
    })
}

/// `key IN (…)` for integer or date keys, tested in a bitmap of the keys' range: bit `k -
/// min` is set for each key `k`. A NULL key gives NULL, as `IN` does.
#[derive(Debug)]
pub(crate) struct KeyBitmap {
    key: Arc<dyn PhysicalExpr>,
    min: i64,
    /// The largest key.
    max: i64,
    words: Arc<[u64]>,
    /// How many keys the list had (for display).
    keys: usize,
}

impl KeyBitmap {
    /// Whether `value` is a key. The offset from `min` wraps for values below it, past every
    /// word of the bitmap; that holds for unsigned 64-bit values above `i64::MAX` as well.
    #[inline]
    fn contains(&self, value: i64) -> bool {
        let offset = value.wrapping_sub(self.min) as u64;
        self.words
            .get((offset >> 6) as usize)
            .is_some_and(|word| (word >> (offset & 63)) & 1 == 1)
    }

    fn probe<T: ArrowPrimitiveType>(
        &self,
        array: &PrimitiveArray<T>,
        as_i64: impl Fn(T::Native) -> i64,
    ) -> BooleanArray {
        let values = array.values();
        let bits = BooleanBuffer::collect_bool(values.len(), |i| self.contains(as_i64(values[i])));
        BooleanArray::new(bits, array.nulls().cloned())
    }
}

impl fmt::Display for KeyBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} IN (BITMAP of {} keys from {})",
            self.key, self.keys, self.min
        )
    }
}

impl PartialEq for KeyBitmap {
    fn eq(&self, other: &Self) -> bool {
        self.key.as_ref() == other.key.as_ref()
            && self.min == other.min
            && self.words == other.words
    }
}

impl Eq for KeyBitmap {}

impl Hash for KeyBitmap {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        self.min.hash(state);
        self.words.hash(state);
    }
}

impl PhysicalExpr for KeyBitmap {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.key.nullable(schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let keys = self.key.evaluate(batch)?.into_array(batch.num_rows())?;
        let result = match keys.data_type() {
            DataType::Int8 => self.probe(keys.as_primitive::<Int8Type>(), i64::from),
            DataType::Int16 => self.probe(keys.as_primitive::<Int16Type>(), i64::from),
            DataType::Int32 => self.probe(keys.as_primitive::<Int32Type>(), i64::from),
            DataType::Int64 => self.probe(keys.as_primitive::<Int64Type>(), |v| v),
            DataType::UInt8 => self.probe(keys.as_primitive::<UInt8Type>(), i64::from),
            DataType::UInt16 => self.probe(keys.as_primitive::<UInt16Type>(), i64::from),
            DataType::UInt32 => self.probe(keys.as_primitive::<UInt32Type>(), i64::from),
            DataType::UInt64 => self.probe(keys.as_primitive::<UInt64Type>(), |v| v as i64),
            DataType::Date32 => self.probe(keys.as_primitive::<Date32Type>(), i64::from),
            DataType::Date64 => self.probe(keys.as_primitive::<Date64Type>(), |v| v),
            // Keys of another type than the list's (a dictionary of integers, say): as i64,
            // where a value that does not fit is NULL.
            other => {
                let keys = arrow::compute::cast(&keys, &DataType::Int64).map_err(|e| {
                    datafusion::common::DataFusionError::Internal(format!(
                        "a key bitmap got {other} keys: {e}"
                    ))
                })?;
                self.probe(keys.as_primitive::<Int64Type>(), |v| v)
            }
        };
        Ok(ColumnarValue::Array(Arc::new(result)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.key]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [key] = <[_; 1]>::try_from(children).map_err(|c| {
            datafusion::common::DataFusionError::Internal(format!(
                "a key bitmap got {} children",
                c.len()
            ))
        })?;
        Ok(Arc::new(Self {
            key,
            min: self.min,
            max: self.max,
            words: Arc::clone(&self.words),
            keys: self.keys,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int32Array, Int64Array, UInt64Array};
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{Column, in_list, lit};

    fn list(values: Vec<ScalarValue>, schema: &Schema) -> Arc<dyn PhysicalExpr> {
        let list = values.into_iter().map(|v| lit(v)).collect();
        in_list(Arc::new(Column::new("k", 0)), list, &false, schema).expect("in list")
    }

    /// The bitmap and DataFusion's list give the same answers, NULLs included.
    fn same_answers(values: Vec<ScalarValue>, column: ArrayRef) {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "k",
            column.data_type().clone(),
            true,
        )]));
        let expr = list(values, &schema);
        let bitmap = key_bitmap(&expr, &schema).expect("a bitmap");
        assert!(bitmap.downcast_ref::<KeyBitmap>().is_some());
        let batch = RecordBatch::try_new(schema, vec![column]).expect("batch");
        let answers = |e: &Arc<dyn PhysicalExpr>| {
            e.evaluate(&batch)
                .and_then(|v| v.into_array(batch.num_rows()))
                .expect("evaluate")
        };
        let (want, got) = (answers(&expr), answers(&bitmap));
        assert_eq!(want.as_boolean(), got.as_boolean());
    }

    #[test]
    fn a_bitmap_answers_as_the_list_does() {
        // Keys spread over a range with gaps, probed below, inside and above it, and NULL.
        let keys: Vec<i64> = (0..400).map(|i| 74 + i * 23).collect();
        let probes: Vec<Option<i64>> = (-100..10_100)
            .map(|v| if v % 97 == 0 { None } else { Some(v) })
            .chain([Some(i64::MIN), Some(i64::MAX)])
            .collect();
        same_answers(
            keys.iter().map(|k| ScalarValue::Int64(Some(*k))).collect(),
            Arc::new(Int64Array::from(probes.clone())),
        );
        same_answers(
            keys.iter()
                .map(|k| ScalarValue::Int32(Some(*k as i32 - 5_000)))
                .collect(),
            Arc::new(Int32Array::from(
                probes
                    .iter()
                    .map(|v| v.map(|v| v.clamp(-100_000, 100_000) as i32 - 5_000))
                    .collect::<Vec<_>>(),
            )),
        );
        // Unsigned keys near the top of the range: values past i64::MAX must not wrap in.
        let top = u64::MAX - 1_000;
        same_answers(
            (0..40).map(|i| ScalarValue::UInt64(Some(i * 7))).collect(),
            Arc::new(UInt64Array::from(vec![
                0,
                7,
                8,
                273,
                280,
                top,
                u64::MAX,
                14,
            ])),
        );
    }

    #[test]
    fn keys_of_another_type_are_compared_as_integers() {
        let schema = Schema::new(vec![Field::new("k", DataType::Int64, true)]);
        let keys = (0..40).map(|i| ScalarValue::Int64(Some(i * 5))).collect();
        let bitmap = key_bitmap(&list(keys, &schema), &schema).expect("bitmap");
        // The same column read as a dictionary of integers.
        let values = Int64Array::from(vec![0, 5, 6, 195, 200]);
        let indices =
            arrow::array::Int32Array::from(vec![Some(0), Some(2), None, Some(3), Some(4), Some(1)]);
        let column = arrow::array::DictionaryArray::new(indices, Arc::new(values));
        let dictionary = Schema::new(vec![Field::new("k", column.data_type().clone(), true)]);
        let batch =
            RecordBatch::try_new(Arc::new(dictionary), vec![Arc::new(column)]).expect("batch");
        let got = bitmap
            .evaluate(&batch)
            .and_then(|v| v.into_array(batch.num_rows()))
            .expect("evaluate");
        let want = BooleanArray::from(vec![
            Some(true),
            Some(false),
            None,
            Some(true),
            Some(false),
            Some(true),
        ]);
        assert_eq!(got.as_boolean(), &want);
    }

    #[test]
    fn wide_short_or_negated_lists_are_left_to_datafusion() {
        let schema = Schema::new(vec![Field::new("k", DataType::Int64, true)]);
        let wide = (0..100)
            .map(|i| ScalarValue::Int64(Some(i * 1_000_000)))
            .collect();
        assert!(key_bitmap(&list(wide, &schema), &schema).is_none());
        let short = (0..3).map(|i| ScalarValue::Int64(Some(i))).collect();
        assert!(key_bitmap(&list(short, &schema), &schema).is_none());
        let values = (0..100).map(|i| lit(ScalarValue::Int64(Some(i)))).collect();
        let negated = in_list(Arc::new(Column::new("k", 0)), values, &true, &schema).expect("list");
        assert!(key_bitmap(&negated, &schema).is_none());
    }

    #[test]
    fn bounds_a_bitmap_tests_are_dropped() {
        let schema = Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]);
        let key: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let other: Arc<dyn PhysicalExpr> = Arc::new(Column::new("v", 1));
        let bound = |column: &Arc<dyn PhysicalExpr>, op, v: i64| {
            Arc::new(BinaryExpr::new(Arc::clone(column), op, lit(v))) as Arc<dyn PhysicalExpr>
        };
        let keys = (0..100).map(|i| ScalarValue::Int64(Some(i * 3))).collect();
        let bitmap = key_bitmap(&list(keys, &schema), &schema).expect("bitmap");
        let and = |a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as Arc<dyn PhysicalExpr>;
        let published = and(
            and(
                and(
                    bound(&key, Operator::GtEq, 0),
                    bound(&key, Operator::LtEq, 297),
                ),
                bitmap,
            ),
            bound(&other, Operator::Gt, 5),
        );
        let kept = drop_implied_bounds(published);
        let conditions = split_conjunction(&kept);
        assert_eq!(conditions.len(), 2, "{kept}");
        assert!(conditions[0].downcast_ref::<KeyBitmap>().is_some());
        assert_eq!(conditions[1].to_string(), "v@1 > 5");
        // A bound some keys fail is a condition of its own: it stays.
        let narrower = and(bound(&key, Operator::GtEq, 100), Arc::clone(conditions[0]));
        let kept = drop_implied_bounds(narrower);
        assert_eq!(split_conjunction(&kept).len(), 2, "{kept}");
    }
}
