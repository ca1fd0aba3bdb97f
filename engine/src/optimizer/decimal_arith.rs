//! Decimal `+`, `-` and `*` without 128-bit overflow checks where none can
//! overflow.
//!
//! Arrow computes `Decimal128` arithmetic with checked 128-bit operations:
//! each `a * b` is a call into a software routine that multiplies two 128-bit
//! numbers and reports overflow. Money columns (`Decimal(15, 2)` and the like)
//! hold values that fit in 64 bits, and the product or sum of two 64-bit
//! values always fits in 128 bits: one widening machine multiply, no check.
//!
//! The rule in [`crate::optimizer::faster_expressions`] replaces such binary
//! expressions in projections, filters and aggregate arguments with
//! [`DecimalArith`] ([`faster`]), where both sides are `Decimal128` of
//! non-negative scale, a `+` or `-` rescales a side by at most 10^18, and the
//! planned result type is the one Arrow's rules give for those inputs; any
//! other expression is left as it is.
//! For each batch, [`DecimalArith`] checks that both inputs fit in 64 bits and
//! then computes the result directly; otherwise (and for two constants) it hands
//! the batch to Arrow's kernel, so the answer, its type and its errors are
//! Arrow's in every case.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::kernels::numeric;
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr_common::datum::apply;

/// `expr`, a decimal `+`, `-` or `*`, as a [`DecimalArith`] where that computes what Arrow
/// computes; `None` otherwise.
pub(crate) fn faster(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    // A checked expression (see `arithmetic`) keeps its check in the faster form.
    let (binary, checked) = match expr.downcast_ref::<BinaryExpr>() {
        Some(binary) => (binary, false),
        None => (crate::arithmetic::checked_decimal(expr)?, true),
    };
    let op = DecimalOp::of(binary.op())?;
    let (Ok(l), Ok(r), Ok(out)) = (
        binary.left().data_type(schema),
        binary.right().data_type(schema),
        binary.data_type(schema),
    ) else {
        return None;
    };
    let shape = Shape::of(op, &l, &r)?;
    // The rule only takes over where it computes what Arrow computes:
    // the same result type, so the same values.
    if out != DataType::Decimal128(shape.precision, shape.scale) {
        return None;
    }
    Some(Arc::new(DecimalArith {
        op,
        left: Arc::clone(binary.left()),
        right: Arc::clone(binary.right()),
        shape,
        checked,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DecimalOp {
    Add,
    Sub,
    Mul,
}

impl DecimalOp {
    fn of(op: &Operator) -> Option<Self> {
        match op {
            Operator::Plus => Some(Self::Add),
            Operator::Minus => Some(Self::Sub),
            Operator::Multiply => Some(Self::Mul),
            _ => None,
        }
    }

    fn operator(self) -> Operator {
        match self {
            Self::Add => Operator::Plus,
            Self::Sub => Operator::Minus,
            Self::Mul => Operator::Multiply,
        }
    }
}

/// The result type of one operation and the factors that bring both sides
/// to the result's scale (for `+` and `-`), following Arrow's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    precision: u8,
    scale: i8,
    left_factor: i64,
    right_factor: i64,
}

impl Shape {
    fn of(op: DecimalOp, l: &DataType, r: &DataType) -> Option<Self> {
        let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) = (l, r) else {
            return None;
        };
        let (p1, s1, p2, s2) = (*p1, *s1, *p2, *s2);
        if s1 < 0 || s2 < 0 {
            return None;
        }
        match op {
            DecimalOp::Add | DecimalOp::Sub => {
                let scale = s1.max(s2);
                let whole = (p1 as i8 - s1).max(p2 as i8 - s2);
                let precision = (scale.saturating_add(whole) as u8)
                    .saturating_add(1)
                    .min(38);
                // Each factor must itself fit in 64 bits with room to spare,
                // so that a 64-bit value times it stays far below 2^127.
                let factor = |diff: i8| (diff <= 18).then(|| 10i64.pow(diff as u32));
                Some(Self {
                    precision,
                    scale,
                    left_factor: factor(scale - s1)?,
                    right_factor: factor(scale - s2)?,
                })
            }
            DecimalOp::Mul => {
                let scale = s1.checked_add(s2).filter(|s| *s <= 38)?;
                Some(Self {
                    precision: p1.saturating_add(p2 + 1).min(38),
                    scale,
                    left_factor: 1,
                    right_factor: 1,
                })
            }
        }
    }
}

/// `left op right` over `Decimal128` values: see the module documentation.
#[derive(Debug)]
pub(crate) struct DecimalArith {
    op: DecimalOp,
    left: Arc<dyn PhysicalExpr>,
    right: Arc<dyn PhysicalExpr>,
    shape: Shape,
    /// Whether a result of more than 38 digits is an error. Only Arrow's kernel can give
    /// one: the direct computation on 64-bit inputs stays below 10^38.
    checked: bool,
}

impl PartialEq for DecimalArith {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op
            && *self.left == *other.left
            && *self.right == *other.right
            && self.shape == other.shape
            && self.checked == other.checked
    }
}

impl Eq for DecimalArith {}

impl Hash for DecimalArith {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.op.hash(state);
        self.left.hash(state);
        self.right.hash(state);
        self.shape.hash(state);
        self.checked.hash(state);
    }
}

impl fmt::Display for DecimalArith {
    // Shown as the expression it replaces, so plans read the same: a child of lower
    // precedence is put in parentheses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precedence = self.op.operator().precedence();
        let write_child = |f: &mut fmt::Formatter<'_>, child: &Arc<dyn PhysicalExpr>| {
            let op = child
                .downcast_ref::<BinaryExpr>()
                .map(|b| *b.op())
                .or_else(|| {
                    child
                        .downcast_ref::<DecimalArith>()
                        .map(|d| d.op.operator())
                });
            match op {
                Some(op) if op.precedence() == 0 || op.precedence() < precedence => {
                    write!(f, "({child})")
                }
                _ => write!(f, "{child}"),
            }
        };
        write_child(f, &self.left)?;
        write!(f, " {} ", self.op.operator())?;
        write_child(f, &self.right)
    }
}

/// One side of an operation: a column of values or a single value.
enum Side<'a> {
    Values(&'a Decimal128Array),
    One(i128),
}

fn fits_in_64_bits(values: &[i128]) -> bool {
    // No early exit: the loop stays branch-free and vectorizes.
    values
        .iter()
        .fold(true, |fits, v| fits & (*v as i64 as i128 == *v))
}

impl<'a> Side<'a> {
    fn of(v: &'a ColumnarValue) -> Option<Self> {
        match v {
            ColumnarValue::Array(a) => a.as_primitive_opt().map(Side::Values),
            ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), _, _)) => Some(Side::One(*v)),
            ColumnarValue::Scalar(_) => None,
        }
    }

    fn fits(&self) -> bool {
        match self {
            Side::Values(a) => fits_in_64_bits(a.values()),
            Side::One(v) => fits_in_64_bits(&[*v]),
        }
    }
}

impl DecimalArith {
    /// The result computed without overflow checks, or `None` where a value
    /// does not fit in 64 bits (Arrow's kernel then decides).
    fn fast(&self, l: &ColumnarValue, r: &ColumnarValue) -> Option<ArrayRef> {
        let (l, r) = (Side::of(l)?, Side::of(r)?);
        if !l.fits() || !r.fits() {
            return None;
        }
        // Both sides fit in 64 bits and the factors are at most 10^18, so
        // every product below is one widening multiply that cannot overflow,
        // and every sum of two of them stays below 2^125. Each case is its own
        // loop: with the operation and the factors known outside it, the loop
        // is a multiply or an add per value.
        let (lf, rf) = (self.shape.left_factor, self.shape.right_factor);
        let (values, nulls) = match (self.op, lf, rf) {
            (DecimalOp::Mul, _, _) => combine(&l, &r, |a, b| i128::from(a) * i128::from(b)),
            (DecimalOp::Add, 1, 1) => combine(&l, &r, |a, b| i128::from(a) + i128::from(b)),
            (DecimalOp::Sub, 1, 1) => combine(&l, &r, |a, b| i128::from(a) - i128::from(b)),
            (DecimalOp::Add, lf, rf) => combine(&l, &r, |a, b| {
                i128::from(a) * i128::from(lf) + i128::from(b) * i128::from(rf)
            }),
            (DecimalOp::Sub, lf, rf) => combine(&l, &r, |a, b| {
                i128::from(a) * i128::from(lf) - i128::from(b) * i128::from(rf)
            }),
        }?;
        Decimal128Array::new(ScalarBuffer::from(values), nulls)
            .with_precision_and_scale(self.shape.precision, self.shape.scale)
            .ok()
            .map(|a| Arc::new(a) as ArrayRef)
    }
}

/// `f` over the two sides' values (each known to fit in 64 bits), with the nulls of both;
/// `None` for two single values, which Arrow's kernel computes.
fn combine(
    l: &Side<'_>,
    r: &Side<'_>,
    f: impl Fn(i64, i64) -> i128,
) -> Option<(Vec<i128>, Option<NullBuffer>)> {
    let narrow = |v: &i128| *v as i64;
    Some(match (l, r) {
        (Side::Values(a), Side::Values(b)) => (
            a.values()
                .iter()
                .zip(b.values().iter())
                .map(|(x, y)| f(narrow(x), narrow(y)))
                .collect(),
            NullBuffer::union(a.nulls(), b.nulls()),
        ),
        (Side::Values(a), Side::One(y)) => {
            let y = narrow(y);
            (
                a.values().iter().map(|x| f(narrow(x), y)).collect(),
                a.nulls().cloned(),
            )
        }
        (Side::One(x), Side::Values(b)) => {
            let x = narrow(x);
            (
                b.values().iter().map(|y| f(x, narrow(y))).collect(),
                b.nulls().cloned(),
            )
        }
        (Side::One(_), Side::One(_)) => return None,
    })
}

impl PhysicalExpr for DecimalArith {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Decimal128(self.shape.precision, self.shape.scale))
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        Ok(self.left.nullable(schema)? || self.right.nullable(schema)?)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let l = self.left.evaluate(batch)?;
        let r = self.right.evaluate(batch)?;
        if let Some(array) = self.fast(&l, &r) {
            return Ok(ColumnarValue::Array(array));
        }
        let result = match self.op {
            DecimalOp::Add => apply(&l, &r, numeric::add_wrapping),
            DecimalOp::Sub => apply(&l, &r, numeric::sub_wrapping),
            DecimalOp::Mul => apply(&l, &r, numeric::mul_wrapping),
        }?;
        if self.checked {
            crate::arithmetic::within_38_digits(&result, self)?;
        }
        Ok(result)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.left, &self.right]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [left, right]: [Arc<dyn PhysicalExpr>; 2] =
            children.try_into().map_err(|c: Vec<_>| {
                datafusion::common::DataFusionError::Internal(format!(
                    "decimal arithmetic takes 2 children, got {}",
                    c.len()
                ))
            })?;
        Ok(Arc::new(Self {
            op: self.op,
            left,
            right,
            shape: self.shape,
            checked: self.checked,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        BinaryExpr::new(
            Arc::clone(&self.left),
            self.op.operator(),
            Arc::clone(&self.right),
        )
        .fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{col, lit};

    fn decimals(values: &[Option<i128>], p: u8, s: i8) -> ArrayRef {
        Arc::new(
            Decimal128Array::from(values.to_vec())
                .with_precision_and_scale(p, s)
                .expect("decimal type"),
        )
    }

    /// Evaluates `a op b` through the rule's expression and through
    /// DataFusion's own, over the same batch.
    fn both(
        a: ArrayRef,
        op: Operator,
        b: Arc<dyn PhysicalExpr>,
        extra: Option<ArrayRef>,
    ) -> (Result<ArrayRef>, Result<ArrayRef>, bool) {
        let mut fields = vec![Field::new("a", a.data_type().clone(), true)];
        let mut columns = vec![a];
        if let Some(x) = extra {
            fields.push(Field::new("b", x.data_type().clone(), true));
            columns.push(x);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch");
        let plain: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(col("a", &schema).expect("a"), op, b));
        let fast = crate::optimizer::faster_expressions::rewrite(&plain, &schema).expect("rewrite");
        let rewritten = fast.transformed;
        let eval = |e: &Arc<dyn PhysicalExpr>| {
            e.evaluate(&batch)
                .and_then(|v| v.into_array(batch.num_rows()))
        };
        (eval(&fast.data), eval(&plain), rewritten)
    }

    #[test]
    fn money_arithmetic_matches_arrow() {
        let price = decimals(
            &[Some(10_495_050), None, Some(-3), Some(0), Some(90_000_001)],
            15,
            2,
        );
        let discount = decimals(&[Some(4), Some(10), None, Some(0), Some(7)], 15, 2);
        let schema_b = Some(Arc::clone(&discount));
        for op in [Operator::Multiply, Operator::Plus, Operator::Minus] {
            let b = col(
                "b",
                &Schema::new(vec![
                    Field::new("a", price.data_type().clone(), true),
                    Field::new("b", discount.data_type().clone(), true),
                ]),
            )
            .expect("b");
            let (fast, plain, rewritten) = both(Arc::clone(&price), op, b, schema_b.clone());
            assert!(rewritten, "{op} was not taken over");
            let (fast, plain) = (fast.expect("fast"), plain.expect("plain"));
            assert_eq!(fast.data_type(), plain.data_type(), "{op}");
            assert_eq!(fast.as_ref(), plain.as_ref(), "{op}");
        }
    }

    #[test]
    fn constants_of_another_scale_match_arrow() {
        // `1 - discount`: the constant is Decimal(20, 0), scaled up by 100.
        let discount = decimals(&[Some(4), Some(10), None, Some(-99)], 15, 2);
        let one = lit(ScalarValue::Decimal128(Some(1), 20, 0));
        for op in [Operator::Minus, Operator::Plus, Operator::Multiply] {
            let (fast, plain, rewritten) = both(Arc::clone(&discount), op, Arc::clone(&one), None);
            assert!(rewritten);
            let (fast, plain) = (fast.expect("fast"), plain.expect("plain"));
            assert_eq!(fast.data_type(), plain.data_type(), "{op}");
            assert_eq!(fast.as_ref(), plain.as_ref(), "{op}");
        }
    }

    #[test]
    fn wide_values_fall_back_to_arrow_and_its_overflow_error() {
        let big = decimals(&[Some(1), Some(i128::MAX / 3)], 38, 0);
        let three = lit(ScalarValue::Decimal128(Some(3), 38, 0));
        let (fast, plain, rewritten) = both(
            Arc::clone(&big),
            Operator::Multiply,
            Arc::clone(&three),
            None,
        );
        assert!(rewritten);
        assert_eq!(fast.expect("fast").as_ref(), plain.expect("plain").as_ref());
        let four = lit(ScalarValue::Decimal128(Some(4), 38, 0));
        let (fast, plain, _) = both(big, Operator::Multiply, four, None);
        assert!(plain.is_err(), "arrow's kernel reports the overflow");
        assert!(fast.is_err(), "and so does the rule's expression");
    }

    #[test]
    fn plans_show_the_expression_it_replaces() {
        let schema = Schema::new(vec![
            Field::new("price", DataType::Decimal128(15, 2), true),
            Field::new("discount", DataType::Decimal128(15, 2), true),
        ]);
        let c = |n: &str| col(n, &schema).expect("column");
        let one = lit(ScalarValue::Decimal128(Some(1), 20, 0));
        let inner: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(one, Operator::Minus, c("discount")));
        let plain: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(c("price"), Operator::Multiply, inner));
        let fast = crate::optimizer::faster_expressions::rewrite(&plain, &schema).expect("rewrite");
        assert!(fast.data.downcast_ref::<DecimalArith>().is_some());
        assert_eq!(fast.data.to_string(), plain.to_string());
        assert_eq!(fast.data.to_string(), "price@0 * (1 - discount@1)");
    }

    #[test]
    fn other_types_are_left_alone() {
        let ints: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1, 2]));
        let (_, _, rewritten) = both(ints, Operator::Multiply, lit(2i64), None);
        assert!(!rewritten);
        let d = decimals(&[Some(1)], 10, 2);
        let (_, _, rewritten) = both(
            d,
            Operator::Divide,
            lit(ScalarValue::Decimal128(Some(2), 10, 2)),
            None,
        );
        assert!(!rewritten);
    }
}
