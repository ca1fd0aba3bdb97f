//! `sum` that never wraps: integers are added exactly in 128 bits, and a total that does not
//! fit the result type is an error naming the sum.
//!
//! The result types stay DataFusion's: `BIGINT` for signed integers, `BIGINT UNSIGNED` for
//! unsigned ones, `DECIMAL(min(38, p + 10), s)` for decimals. DuckDB widens integer sums to
//! `HUGEINT`; strata keeps the type its tables and clients already hold and asks for a cast
//! to `DECIMAL(38, 0)` where the total needs more, which then sums exactly. Decimal sums of
//! precision 38, whose totals DataFusion lets wrap past 38 digits, fail the same way.
//! Every other sum (floats, decimals below 38 digits, durations, intervals) is DataFusion's.
//!
//! Since the total is exact, only the total is checked: `9223372036854775807 + 1 - 1`
//! sums to `9223372036854775807` in any order, as in DuckDB.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int64Array, PrimitiveArray,
    UInt64Array,
};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, Expr, GroupsAccumulator,
    Operator, ReversedUDAF, SetMonotonicity, Signature, StatisticsArgs,
};

/// The largest value of 38 decimal digits.
const MAX_38_DIGITS: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// strata's `sum`, to register in place of DataFusion's.
pub(crate) fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(CheckedSum::default())
}

/// The aggregate: DataFusion's `Sum`, with exact accumulators where it would wrap.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct CheckedSum {
    inner: Sum,
}

/// The sums this module computes, by result type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Of signed integers, as `Int64`.
    Signed,
    /// Of unsigned integers, as `UInt64`.
    Unsigned,
    /// Of decimals, as `Decimal128(38, scale)`.
    Decimal(i8),
}

impl Kind {
    fn of(result: &DataType) -> Option<Self> {
        match result {
            DataType::Int64 => Some(Self::Signed),
            DataType::UInt64 => Some(Self::Unsigned),
            DataType::Decimal128(38, scale) => Some(Self::Decimal(*scale)),
            _ => None,
        }
    }

    /// The type of a partial total between the stages of an aggregate.
    fn state_type(self) -> DataType {
        match self {
            Self::Signed | Self::Unsigned => DataType::Decimal128(38, 0),
            Self::Decimal(scale) => DataType::Decimal128(38, scale),
        }
    }

    fn result_type(self) -> DataType {
        match self {
            Self::Signed => DataType::Int64,
            Self::Unsigned => DataType::UInt64,
            Self::Decimal(scale) => DataType::Decimal128(38, scale),
        }
    }

    fn fits(self, total: i128) -> bool {
        match self {
            Self::Signed => i64::try_from(total).is_ok(),
            Self::Unsigned => u64::try_from(total).is_ok(),
            Self::Decimal(_) => (-MAX_38_DIGITS..=MAX_38_DIGITS).contains(&total),
        }
    }

    /// The error for a total that does not fit (`None`: not even in 128 bits).
    fn overflow(self, name: &str, total: Option<i128>) -> DataFusionError {
        let ty = self.result_type();
        match (self, total) {
            (Self::Signed | Self::Unsigned, Some(total)) => super::overflow(format!(
                "integer overflow in {name} ({ty}): the total {total} does not fit; cast the argument to DECIMAL(38, 0) for wider results"
            )),
            (Self::Signed | Self::Unsigned, None) => super::overflow(format!(
                "integer overflow in {name} ({ty}): the total does not fit; cast the argument to DECIMAL(38, 0) for wider results"
            )),
            (Self::Decimal(scale), Some(total)) => super::overflow(format!(
                "decimal overflow in {name} ({ty}): the total {} has more than 38 digits",
                decimal_text(total, scale)
            )),
            (Self::Decimal(_), None) => super::overflow(format!(
                "decimal overflow in {name} ({ty}): the total has more than 38 digits"
            )),
        }
    }

    /// The exact sum of the valid values of `values`, an array of the input type.
    fn sum(self, values: &dyn Array, name: &str) -> Result<Option<i128>> {
        if values.null_count() == values.len() {
            return Ok(None);
        }
        Ok(Some(match self {
            Self::Signed => sum_i64(values.as_primitive::<Int64Type>()),
            Self::Unsigned => sum_u64(values.as_primitive::<UInt64Type>()),
            Self::Decimal(_) => {
                let values = values.as_primitive::<Decimal128Type>();
                let mut total = 0i128;
                for v in values.iter().flatten() {
                    total = total
                        .checked_add(v)
                        .ok_or_else(|| self.overflow(name, None))?;
                }
                total
            }
        }))
    }

    /// The values of `values` (of the input type) as 128-bit numbers.
    fn values(self, values: &dyn Array) -> Vec<i128> {
        match self {
            Self::Signed => values
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .map(|v| i128::from(*v))
                .collect(),
            Self::Unsigned => values
                .as_primitive::<UInt64Type>()
                .values()
                .iter()
                .map(|v| i128::from(*v))
                .collect(),
            Self::Decimal(_) => values.as_primitive::<Decimal128Type>().values().to_vec(),
        }
    }

    /// Totals as an array of the result type, or the error for the first that does not fit.
    fn results(self, totals: Vec<i128>, nulls: Option<NullBuffer>, name: &str) -> Result<ArrayRef> {
        for (i, total) in totals.iter().enumerate() {
            if nulls.as_ref().is_none_or(|n| n.is_valid(i)) && !self.fits(*total) {
                return Err(self.overflow(name, Some(*total)));
            }
        }
        Ok(match self {
            Self::Signed => Arc::new(Int64Array::new(
                totals.iter().map(|t| *t as i64).collect(),
                nulls,
            )),
            Self::Unsigned => Arc::new(UInt64Array::new(
                totals.iter().map(|t| *t as u64).collect(),
                nulls,
            )),
            Self::Decimal(scale) => Arc::new(
                Decimal128Array::new(ScalarBuffer::from(totals), nulls)
                    .with_precision_and_scale(38, scale)?,
            ),
        })
    }

    fn result(self, total: Option<i128>, name: &str) -> Result<ScalarValue> {
        let array = self.results(
            vec![total.unwrap_or(0)],
            Some(NullBuffer::from(vec![total.is_some()])),
            name,
        )?;
        ScalarValue::try_from_array(&array, 0)
    }

    fn state(self, total: Option<i128>) -> ScalarValue {
        match self.state_type() {
            DataType::Decimal128(p, s) => ScalarValue::Decimal128(total, p, s),
            _ => unreachable!("partial totals are decimals"),
        }
    }
}

/// A decimal's digits with its point, however many digits it has.
fn decimal_text(value: i128, scale: i8) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    if scale <= 0 {
        return format!(
            "{sign}{digits}{}",
            "0".repeat(scale.unsigned_abs() as usize)
        );
    }
    let scale = scale as usize;
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

/// The exact sum of the valid values, vectorized: each value splits into its high 32 bits
/// (signed) and its low 32 bits (unsigned), whose sums over fewer than 2^31 values fit in 64
/// bits.
fn sum_i64(values: &PrimitiveArray<Int64Type>) -> i128 {
    split_sum(values.values(), values.nulls(), |v| {
        (v >> 32, (v as u64 & 0xFFFF_FFFF) as i64)
    })
}

fn sum_u64(values: &PrimitiveArray<UInt64Type>) -> i128 {
    split_sum(values.values(), values.nulls(), |v| {
        ((v >> 32) as i64, (v & 0xFFFF_FFFF) as i64)
    })
}

fn split_sum<T: Copy + Default>(
    values: &[T],
    nulls: Option<&NullBuffer>,
    split: impl Fn(T) -> (i64, i64),
) -> i128 {
    const CHUNK: usize = 1 << 30;
    let mut total = 0i128;
    match nulls {
        None => {
            for chunk in values.chunks(CHUNK) {
                let (mut high, mut low) = (0i64, 0i64);
                for v in chunk {
                    let (h, l) = split(*v);
                    high += h;
                    low += l;
                }
                total += (i128::from(high) << 32) + i128::from(low);
            }
        }
        Some(nulls) => {
            let (mut high, mut low) = (0i64, 0i64);
            for (i, v) in values.iter().enumerate() {
                // Branch-free: a null's slot adds zero.
                let keep = -i64::from(nulls.is_valid(i));
                let (h, l) = split(*v);
                high += h & keep;
                low += l & keep;
                if i % CHUNK == CHUNK - 1 {
                    total += (i128::from(high) << 32) + i128::from(low);
                    (high, low) = (0, 0);
                }
            }
            total += (i128::from(high) << 32) + i128::from(low);
        }
    }
    total
}

impl AggregateUDFImpl for CheckedSum {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match Kind::of(args.return_field.data_type()) {
            Some(kind) if args.is_distinct => Ok(Box::new(DistinctSum {
                kind,
                name: args.name.to_string(),
                seen: HashSet::new(),
            })),
            Some(kind) => Ok(Box::new(ExactSum {
                kind,
                name: args.name.to_string(),
                total: None,
                count: 0,
            })),
            None => self.inner.accumulator(args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        match Kind::of(args.return_type()) {
            Some(kind) if !args.is_distinct => Ok(vec![Arc::new(Field::new(
                format_state_name(args.name, "sum"),
                kind.state_type(),
                true,
            ))]),
            _ => self.inner.state_fields(args),
        }
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match Kind::of(args.return_field.data_type()) {
            Some(kind) => Ok(Box::new(ExactGroups {
                kind,
                name: args.name.to_string(),
                totals: Vec::new(),
                seen: Vec::new(),
            })),
            None => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match Kind::of(args.return_field.data_type()) {
            Some(kind) if !args.is_distinct => Ok(Box::new(ExactSum {
                kind,
                name: args.name.to_string(),
                total: None,
                count: 0,
            })),
            _ => self.inner.create_sliding_accumulator(args),
        }
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.reverse_expr()
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }

    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.inner
            .simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }

    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.inner.value_from_stats(statistics_args)
    }
}

/// One exact total; also the sliding total of window frames.
#[derive(Debug)]
struct ExactSum {
    kind: Kind,
    name: String,
    total: Option<i128>,
    /// Values in the total, for window frames that retract them.
    count: u64,
}

impl ExactSum {
    fn add(&mut self, sum: Option<i128>) -> Result<()> {
        if let Some(sum) = sum {
            let total = self.total.unwrap_or(0);
            self.total = Some(
                total
                    .checked_add(sum)
                    .ok_or_else(|| self.kind.overflow(&self.name, None))?,
            );
        }
        Ok(())
    }
}

impl Accumulator for ExactSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let sum = self.kind.sum(values[0].as_ref(), &self.name)?;
        self.count += (values[0].len() - values[0].null_count()) as u64;
        self.add(sum)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let states = states[0].as_primitive::<Decimal128Type>();
        for total in states.iter().flatten() {
            self.count += 1;
            self.add(Some(total))?;
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if let Some(sum) = self.kind.sum(values[0].as_ref(), &self.name)? {
            let total = self.total.unwrap_or(0);
            self.total = Some(
                total
                    .checked_sub(sum)
                    .ok_or_else(|| self.kind.overflow(&self.name, None))?,
            );
        }
        self.count -= (values[0].len() - values[0].null_count()) as u64;
        if self.count == 0 {
            self.total = None;
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.kind.state(self.total)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.kind.result(self.total, &self.name)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.name.capacity()
    }
}

/// `sum(DISTINCT …)`: the distinct values, summed exactly at the end. Its partial state is
/// DataFusion's, a list of the values in the result type.
#[derive(Debug)]
struct DistinctSum {
    kind: Kind,
    name: String,
    seen: HashSet<i128>,
}

impl DistinctSum {
    fn insert(&mut self, values: &dyn Array) {
        let all = self.kind.values(values);
        for (i, v) in all.into_iter().enumerate() {
            if values.is_valid(i) {
                self.seen.insert(v);
            }
        }
    }
}

impl Accumulator for DistinctSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.insert(values[0].as_ref());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            self.insert(list.as_ref());
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<i128> = self.seen.iter().copied().collect();
        // The values themselves always fit the result type.
        let array = self.kind.results(values, None, &self.name)?;
        Ok(vec![ScalarValue::List(Arc::new(
            SingleRowListArrayBuilder::new(array).build_list_array(),
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.seen.is_empty() {
            return self.kind.result(None, &self.name);
        }
        let mut total = 0i128;
        for v in &self.seen {
            total = total
                .checked_add(*v)
                .ok_or_else(|| self.kind.overflow(&self.name, None))?;
        }
        self.kind.result(Some(total), &self.name)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.seen.capacity() * size_of::<i128>() + self.name.capacity()
    }
}

/// Exact totals per group.
#[derive(Debug)]
struct ExactGroups {
    kind: Kind,
    name: String,
    totals: Vec<i128>,
    seen: Vec<bool>,
}

impl ExactGroups {
    /// Adds `values[row]` (128-bit numbers) to the total of `groups[row]`, for the rows
    /// valid in `nulls` and kept by `filter`.
    fn add(
        &mut self,
        values: impl Iterator<Item = i128>,
        groups: &[usize],
        nulls: Option<&NullBuffer>,
        filter: Option<&BooleanArray>,
        checked: bool,
    ) -> Result<()> {
        for (row, (value, &group)) in values.zip(groups).enumerate() {
            if nulls.is_some_and(|n| n.is_null(row))
                || filter.is_some_and(|f| !f.is_valid(row) || !f.value(row))
            {
                continue;
            }
            let total = &mut self.totals[group];
            if checked {
                *total = total
                    .checked_add(value)
                    .ok_or_else(|| self.kind.overflow(&self.name, None))?;
            } else {
                // 64-bit values: 2^63 of them would be needed to leave 128 bits.
                *total += value;
            }
            self.seen[group] = true;
        }
        Ok(())
    }

    fn nulls(seen: &[bool]) -> Option<NullBuffer> {
        if seen.iter().all(|s| *s) {
            None
        } else {
            Some(NullBuffer::from(seen.to_vec()))
        }
    }
}

impl GroupsAccumulator for ExactGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.totals.resize(total_num_groups, 0);
        self.seen.resize(total_num_groups, false);
        let values = values[0].as_ref();
        let nulls = values.logical_nulls();
        match self.kind {
            Kind::Signed => {
                let v = values.as_primitive::<Int64Type>().values();
                self.add(
                    v.iter().map(|v| i128::from(*v)),
                    group_indices,
                    nulls.as_ref(),
                    opt_filter,
                    false,
                )
            }
            Kind::Unsigned => {
                let v = values.as_primitive::<UInt64Type>().values();
                self.add(
                    v.iter().map(|v| i128::from(*v)),
                    group_indices,
                    nulls.as_ref(),
                    opt_filter,
                    false,
                )
            }
            Kind::Decimal(_) => {
                let v = values.as_primitive::<Decimal128Type>().values();
                self.add(
                    v.iter().copied(),
                    group_indices,
                    nulls.as_ref(),
                    opt_filter,
                    true,
                )
            }
        }
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.totals.resize(total_num_groups, 0);
        self.seen.resize(total_num_groups, false);
        let states = values[0].as_primitive::<Decimal128Type>();
        self.add(
            states.values().iter().copied(),
            group_indices,
            states.nulls(),
            None,
            true,
        )
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let totals = emit_to.take_needed(&mut self.totals);
        let seen = emit_to.take_needed(&mut self.seen);
        self.kind.results(totals, Self::nulls(&seen), &self.name)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let totals = emit_to.take_needed(&mut self.totals);
        let seen = emit_to.take_needed(&mut self.seen);
        let DataType::Decimal128(p, s) = self.kind.state_type() else {
            unreachable!("partial totals are decimals")
        };
        Ok(vec![Arc::new(
            Decimal128Array::new(ScalarBuffer::from(totals), Self::nulls(&seen))
                .with_precision_and_scale(p, s)?,
        )])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = values[0].as_ref();
        let mut nulls = values.logical_nulls();
        if let Some(filter) = opt_filter {
            let keep = match filter.nulls() {
                Some(n) => n.inner() & filter.values(),
                None => filter.values().clone(),
            };
            nulls = NullBuffer::union(nulls.as_ref(), Some(&NullBuffer::from(keep)));
        }
        let DataType::Decimal128(p, s) = self.kind.state_type() else {
            unreachable!("partial totals are decimals")
        };
        Ok(vec![Arc::new(
            Decimal128Array::new(ScalarBuffer::from(self.kind.values(values)), nulls)
                .with_precision_and_scale(p, s)?,
        )])
    }

    fn size(&self) -> usize {
        self.totals.capacity() * size_of::<i128>() + self.seen.capacity() + self.name.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(values: &[Option<i64>]) -> i128 {
        values.iter().flatten().map(|v| i128::from(*v)).sum()
    }

    #[test]
    fn split_sums_are_exact_at_the_edges() {
        let cases: Vec<Vec<Option<i64>>> = vec![
            vec![Some(i64::MAX), Some(i64::MAX), Some(i64::MAX)],
            vec![Some(i64::MIN), Some(i64::MIN), Some(-1)],
            vec![Some(i64::MAX), Some(i64::MIN), Some(1), Some(-1), Some(0)],
            vec![Some(i64::MAX), None, Some(i64::MIN), None],
            (0..5000)
                .map(|i: i64| (i % 7 != 0).then(|| i.wrapping_mul(0x9E37_79B9_7F4A_7C15u64 as i64)))
                .collect(),
        ];
        for values in cases {
            let array = Int64Array::from(values.clone());
            assert_eq!(sum_i64(&array), naive(&values), "{values:?}");
        }
        let unsigned = UInt64Array::from(vec![Some(u64::MAX), None, Some(u64::MAX), Some(7)]);
        assert_eq!(sum_u64(&unsigned), 2 * i128::from(u64::MAX) + 7);
    }

    #[test]
    fn a_sum_fails_only_when_its_total_does_not_fit() {
        let mut acc = ExactSum {
            kind: Kind::Signed,
            name: "sum(v)".into(),
            total: None,
            count: 0,
        };
        let values: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 1]));
        acc.update_batch(&[values]).expect("update");
        let error = acc.evaluate().expect_err("overflow");
        assert_eq!(
            super::super::overflow_message(&error).expect("message"),
            "integer overflow in sum(v) (Int64): the total 9223372036854775808 does not fit; cast the argument to DECIMAL(38, 0) for wider results"
        );
        // Back in range: the exact total fits.
        let values: ArrayRef = Arc::new(Int64Array::from(vec![-1]));
        acc.update_batch(&[values]).expect("update");
        assert_eq!(
            acc.evaluate().expect("fits"),
            ScalarValue::Int64(Some(i64::MAX))
        );
        // A partial total moves between stages as a decimal.
        assert_eq!(
            acc.state().expect("state"),
            vec![ScalarValue::Decimal128(Some(i128::from(i64::MAX)), 38, 0)]
        );
    }

    #[test]
    fn group_totals_are_exact_and_null_for_groups_without_values() {
        let mut acc = ExactGroups {
            kind: Kind::Signed,
            name: "sum(v)".into(),
            totals: Vec::new(),
            seen: Vec::new(),
        };
        let values: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(i64::MAX),
            Some(1),
            None,
            Some(5),
        ]));
        acc.update_batch(&[values], &[0, 0, 2, 1], None, 3)
            .expect("update");
        // Group 0 is past BIGINT now; its partial total still moves on exactly.
        let state = acc.state(EmitTo::All).expect("state");
        let mut merged = ExactGroups {
            kind: Kind::Signed,
            name: "sum(v)".into(),
            totals: Vec::new(),
            seen: Vec::new(),
        };
        merged.merge_batch(&state, &[0, 1, 2], 3).expect("merge");
        let minus: ArrayRef = Arc::new(Int64Array::from(vec![-1]));
        merged
            .update_batch(&[minus], &[0], None, 3)
            .expect("update");
        let out = merged.evaluate(EmitTo::All).expect("fits again");
        let out = out.as_primitive::<Int64Type>();
        assert_eq!(out.value(0), i64::MAX);
        assert_eq!(out.value(1), 5);
        assert!(out.is_null(2));

        let values: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 1]));
        acc.update_batch(&[values], &[0, 0], None, 1)
            .expect("update");
        assert!(acc.evaluate(EmitTo::All).is_err());
    }

    #[test]
    fn rows_filtered_out_add_nothing() {
        let acc = ExactGroups {
            kind: Kind::Signed,
            name: "sum(v)".into(),
            totals: Vec::new(),
            seen: Vec::new(),
        };
        let values: ArrayRef = Arc::new(Int64Array::from(vec![Some(4), Some(5), None]));
        let filter = BooleanArray::from(vec![Some(true), Some(false), Some(true)]);
        let state = acc
            .convert_to_state(&[values], Some(&filter))
            .expect("state");
        let state = state[0].as_primitive::<Decimal128Type>();
        assert_eq!(state.value(0), 4);
        assert!(state.is_null(1));
        assert!(state.is_null(2));
    }

    #[test]
    fn decimal_totals_are_shown_with_their_point() {
        assert_eq!(decimal_text(-25, 2), "-0.25");
        assert_eq!(decimal_text(12345, 2), "123.45");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(decimal_text(7, -2), "700");
    }
}
