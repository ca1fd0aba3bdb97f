//! `array_agg` whose memory is counted at what it holds, so a memory limit bounds it.
//!
//! DataFusion's `array_agg` keeps the arrays it is given and reports their size with
//! `get_slice_memory_size`, which counts a string view column (`Utf8View`, which strata's
//! scans produce) at its 16-byte views only, never at the strings they point to. An
//! `array_agg` of 32-character strings held three times what it reported: under a 512 MiB
//! limit it grew past 2 GB before anything spilled, and then failed.
//!
//! strata's `array_agg` is DataFusion's over strings and binaries stored with offsets
//! (`LargeUtf8`, `LargeBinary`): each batch's values are copied once into arrays of their
//! own, whose reported size is the memory they hold, and the result is cast back to the
//! type DataFusion's gives (a list of the argument's type), so answers and types are the
//! same. Every other argument type is left to DataFusion's accumulators as they are. The
//! session registers it only under a memory limit: without one nothing is counted.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{can_cast_types, cast};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::functions_aggregate::array_agg::ArrayAgg;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator,
    ReversedUDAF, Signature,
};

/// strata's `array_agg`, to register in place of DataFusion's.
pub(crate) fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(CountedArrayAgg {
        inner: AggregateUDF::new_from_impl(ArrayAgg::default()),
    })
}

/// DataFusion's `array_agg` (or the variant its optimizer chose, e.g. for ordered input),
/// holding view columns as offset columns.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct CountedArrayAgg {
    inner: AggregateUDF,
}

/// The type values of `input` are held as, where it is not `input` itself: views (also
/// inside structs and lists) as offset strings and binaries, where arrow can cast them there
/// and back.
fn held_type(input: &DataType) -> Option<DataType> {
    let held = without_views(input);
    (held != *input && can_cast_types(input, &held) && can_cast_types(&held, input)).then_some(held)
}

/// `data_type` with every view type in it replaced by its offset type.
fn without_views(data_type: &DataType) -> DataType {
    let field = |f: &FieldRef| -> FieldRef {
        Arc::new(
            f.as_ref()
                .clone()
                .with_data_type(without_views(f.data_type())),
        )
    };
    match data_type {
        DataType::Utf8View => DataType::LargeUtf8,
        DataType::BinaryView => DataType::LargeBinary,
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
        other => other.clone(),
    }
}

/// `fields` with the first (the aggregated value) held as `held`.
fn held_fields(fields: &[FieldRef], held: &DataType) -> Vec<FieldRef> {
    let mut fields = fields.to_vec();
    if let Some(first) = fields.first_mut() {
        *first = Arc::new(first.as_ref().clone().with_data_type(held.clone()));
    }
    fields
}

impl AggregateUDFImpl for CountedArrayAgg {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(held) = args
            .expr_fields
            .first()
            .and_then(|f| held_type(f.data_type()))
        else {
            return self.inner.accumulator(args);
        };
        let result = args.return_type().clone();
        let fields = held_fields(args.expr_fields, &held);
        let inner = self.inner.accumulator(AccumulatorArgs {
            expr_fields: &fields,
            ..args
        })?;
        Ok(Box::new(HeldAccumulator {
            inner,
            held,
            result,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let Some(held) = args
            .input_fields
            .first()
            .and_then(|f| held_type(f.data_type()))
        else {
            return self.inner.state_fields(args);
        };
        let fields = held_fields(args.input_fields, &held);
        self.inner.state_fields(StateFieldsArgs {
            input_fields: &fields,
            ..args
        })
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let Some(held) = args
            .expr_fields
            .first()
            .and_then(|f| held_type(f.data_type()))
        else {
            return self.inner.create_groups_accumulator(args);
        };
        let result = args.return_type().clone();
        let fields = held_fields(args.expr_fields, &held);
        let inner = self.inner.create_groups_accumulator(AccumulatorArgs {
            expr_fields: &fields,
            ..args
        })?;
        Ok(Box::new(HeldGroupsAccumulator {
            inner,
            held,
            result,
        }))
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        Ok(self
            .inner
            .clone()
            .with_beneficial_ordering(beneficial_ordering)?
            .map(|inner| Arc::new(Self { inner }) as _))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        match self.inner.reverse_udf() {
            ReversedUDAF::Reversed(inner) => {
                ReversedUDAF::Reversed(Arc::new(AggregateUDF::new_from_impl(Self {
                    inner: inner.as_ref().clone(),
                })))
            }
            other => other,
        }
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner.supports_null_handling_clause()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// `values` with its first column (the aggregated value) cast to `held`.
fn hold(values: &[ArrayRef], held: &DataType) -> Result<Vec<ArrayRef>> {
    let mut values = values.to_vec();
    if let Some(first) = values.first_mut()
        && first.data_type() != held
    {
        *first = cast(first.as_ref(), held)?;
    }
    Ok(values)
}

/// `states` with each list that is a slice of a larger one rebuilt over the values it
/// uses, so an accumulator keeping the list's values keeps (and counts) only those.
fn own_lists(states: &[ArrayRef]) -> Vec<ArrayRef> {
    states
        .iter()
        .map(|state| match state.data_type() {
            DataType::List(_) => {
                let list = state.as_list::<i32>();
                let offsets = list.offsets();
                let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
                if first == 0 && last as usize == list.values().len() {
                    return Arc::clone(state);
                }
                let (field, _, values, nulls) = list.clone().into_parts();
                let values = values.slice(first as usize, (last - first) as usize);
                let offsets = OffsetBuffer::new(offsets.iter().map(|o| o - first).collect());
                Arc::new(ListArray::new(field, offsets, values, nulls)) as ArrayRef
            }
            _ => Arc::clone(state),
        })
        .collect()
}

/// A list array of `held` values cast to `result`.
fn give(list: &ArrayRef, result: &DataType) -> Result<ArrayRef> {
    if list.data_type() == result {
        return Ok(Arc::clone(list));
    }
    Ok(cast(list.as_ref(), result)?)
}

/// One group's `array_agg`, holding its values as `held`.
#[derive(Debug)]
struct HeldAccumulator {
    inner: Box<dyn Accumulator>,
    held: DataType,
    result: DataType,
}

impl Accumulator for HeldAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(&hold(values, &self.held)?)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = self.inner.evaluate()?;
        let list = give(&value.to_array()?, &self.result)?;
        ScalarValue::try_from_array(&list, 0)
    }

    fn size(&self) -> usize {
        self.inner.size() + size_of::<Self>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(&own_lists(states))
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(&hold(values, &self.held)?)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

/// `array_agg` per group, holding its values as `held`.
struct HeldGroupsAccumulator {
    inner: Box<dyn GroupsAccumulator>,
    held: DataType,
    result: DataType,
}

impl GroupsAccumulator for HeldGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner.update_batch(
            &hold(values, &self.held)?,
            group_indices,
            opt_filter,
            total_num_groups,
        )
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        give(&self.inner.evaluate(emit_to)?, &self.result)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.inner.state(emit_to)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner
            .merge_batch(&own_lists(values), group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        self.inner
            .convert_to_state(&hold(values, &self.held)?, opt_filter)
    }

    fn size(&self) -> usize {
        self.inner.size() + size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringViewArray;
    use arrow::datatypes::Field;

    /// The reported size of a group's values counts their strings, which DataFusion's
    /// accumulator over views leaves out.
    #[test]
    fn the_size_of_held_strings_counts_their_bytes() {
        let strings: Vec<String> = (0..10_000).map(|i| format!("{i:0>32}")).collect();
        let views: ArrayRef = Arc::new(StringViewArray::from_iter_values(strings.iter()));
        let field: FieldRef = Arc::new(Field::new("s", DataType::Utf8View, true));
        let schema = arrow::datatypes::Schema::new(vec![field.as_ref().clone()]);
        let expr = datafusion::physical_expr::expressions::col("s", &schema).expect("column");
        let return_field: FieldRef = Arc::new(Field::new(
            "a",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8View, true))),
            true,
        ));
        let args = |_: ()| AccumulatorArgs {
            return_field: Arc::clone(&return_field),
            schema: &schema,
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: "array_agg(s)",
            is_distinct: false,
            exprs: std::slice::from_ref(&expr),
            expr_fields: std::slice::from_ref(&field),
        };
        let theirs = AggregateUDF::new_from_impl(ArrayAgg::default());
        let ours = udaf();
        let mut reported = vec![];
        for udaf in [&theirs, &ours] {
            let mut single = udaf.accumulator(args(())).expect("accumulator");
            single
                .update_batch(std::slice::from_ref(&views))
                .expect("update");
            let mut grouped = udaf
                .create_groups_accumulator(args(()))
                .expect("groups accumulator");
            let groups: Vec<usize> = (0..10_000).map(|i| i % 10).collect();
            grouped
                .update_batch(std::slice::from_ref(&views), &groups, None, 10)
                .expect("update");
            reported.push((single.size(), grouped.size()));
            // Same answers, of the same type.
            let value = single.evaluate().expect("evaluate");
            assert_eq!(value.data_type(), *return_field.data_type());
            let list = grouped.evaluate(EmitTo::All).expect("evaluate");
            assert_eq!(list.data_type(), return_field.data_type());
            assert_eq!(list.as_list::<i32>().value(3).len(), 1_000);
        }
        let strings_bytes = 10_000 * 32;
        let ((their_single, their_grouped), (our_single, our_grouped)) = (reported[0], reported[1]);
        assert!(their_single < strings_bytes, "{their_single}");
        assert!(their_grouped < strings_bytes, "{their_grouped}");
        assert!(our_single > strings_bytes, "{our_single}");
        assert!(our_grouped > strings_bytes, "{our_grouped}");
    }

    /// A state list sliced out of a larger one is merged over the values it uses.
    #[test]
    fn sliced_state_lists_keep_only_their_values() {
        let values: ArrayRef = Arc::new(arrow::array::LargeStringArray::from_iter_values(
            (0..100).map(|i| format!("v{i}")),
        ));
        let field = Arc::new(Field::new_list_field(DataType::LargeUtf8, true));
        let list: ArrayRef = Arc::new(ListArray::new(
            field,
            OffsetBuffer::from_lengths(vec![10; 10]),
            values,
            None,
        ));
        let slice = list.slice(3, 2);
        let owned = own_lists(std::slice::from_ref(&slice));
        let owned = owned[0].as_list::<i32>();
        assert_eq!(owned.values().len(), 20);
        assert_eq!(owned.value(0).as_string::<i64>().value(0), "v30");
        assert_eq!(owned.value(1).as_string::<i64>().value(9), "v49");
    }
}
