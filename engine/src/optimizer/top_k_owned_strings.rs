//! Under a memory limit, a top-K sort (`ORDER BY … LIMIT k`) over string views holds about
//! k rows, not the pages its best rows were read from.
//!
//! DataFusion 55's `TopK` keeps the batches its best rows come from and, from time to time,
//! gathers those rows into one batch. With string views (`Utf8View`, which strata's scans
//! produce) gathering copies the 16-byte views only: the gathered batch still points into
//! every buffer one of its rows came from, and `TopK` counts (and holds) all of them. `ORDER
//! BY s DESC LIMIT 10` over 300,000 rows of 32-character strings failed under 6 MiB, each
//! sort holding 3 MB for ten rows; a top-K sort cannot spill, so what it holds must fit.
//!
//! [`TopKOwnedStrings`] gives such a sort its input with each view column cast to plain
//! strings (`Utf8`, `Binary`, by [`StringsExec`]), whose gathering copies the strings
//! themselves, sorts by the keys cast back to views (which point into those strings, nothing
//! copied), and casts the sort's output back ([`ViewsExec`]), so the plan's types and
//! order are unchanged. It acts when the session has a memory limit (without one nothing is
//! counted) and when every sort key is a column. It runs before DataFusion's filter pushdown:
//! the dynamic filter the sort hands down names its keys as views, which `StringsExec` passes
//! on as the scan's own view columns, so the scan still skips the row groups and rows that
//! cannot make the top k, and only those that can are copied.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{
    CardinalityEffect, ChildrenPropertiesMode, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter_pushdown::{
    ChildFilterDescription, ChildPushdownResult, FilterDescription, FilterPushdownPhase,
    FilterPushdownPropagation,
};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

use super::StrataOptions;

#[derive(Debug, Default)]
pub(crate) struct TopKOwnedStrings;

/// The type a view type is held as in a top-K sort.
pub(super) fn owned(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Utf8View => Some(DataType::Utf8),
        DataType::BinaryView => Some(DataType::Binary),
        _ => None,
    }
}

impl PhysicalOptimizerRule for TopKOwnedStrings {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !StrataOptions::memory_limited(config) {
            return Ok(plan);
        }
        plan.transform_up(|plan| {
            let Some(sort) = plan.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(plan));
            };
            let input = Arc::clone(sort.input());
            let schema = input.schema();
            let has_views = schema
                .fields()
                .iter()
                .any(|f| owned(f.data_type()).is_some());
            let by_columns = sort
                .expr()
                .iter()
                .all(|e| e.expr.downcast_ref::<Column>().is_some());
            if sort.fetch().is_none() || !has_views || !by_columns {
                return Ok(Transformed::no(plan));
            }
            let strings: Arc<dyn ExecutionPlan> = Arc::new(StringsExec::new(input));
            // Keys that were views are compared as views, over the strings.
            let keys = sort.expr().iter().map(|key| {
                let Some(column) = key.expr.downcast_ref::<Column>() else {
                    return key.clone();
                };
                let data_type = schema.field(column.index()).data_type();
                if owned(data_type).is_none() {
                    return key.clone();
                }
                let as_view: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(
                    Arc::new(column.clone()),
                    data_type.clone(),
                    None,
                ));
                PhysicalSortExpr::new(as_view, key.options)
            });
            let Some(keys) = LexOrdering::new(keys) else {
                return Ok(Transformed::no(plan));
            };
            let sorted = SortExec::new(keys, strings)
                .with_preserve_partitioning(sort.preserve_partitioning())
                .with_fetch(sort.fetch());
            let views = ViewsExec::new(Arc::new(sorted), schema, sort.expr().clone())?;
            Ok(Transformed::yes(Arc::new(views) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "top_k_owned_strings"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Its input's batches with each view column cast to plain strings (or binaries), which
/// own their bytes. Filters pushed through it that compare such a column cast back to views
/// reach the input as comparisons of its own view column.
#[derive(Debug, Clone)]
pub struct StringsExec {
    input: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl StringsExec {
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let from = input.schema();
        let schema = Arc::new(Schema::new_with_metadata(
            from.fields()
                .iter()
                .map(|f| match owned(f.data_type()) {
                    Some(to) => Arc::new(Field::clone(f).with_data_type(to)),
                    None => Arc::clone(f),
                })
                .collect::<Vec<_>>(),
            from.metadata().clone(),
        ));
        let of = input.properties();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            of.partitioning.clone(),
            of.emission_type,
            of.boundedness,
        ));
        Self {
            input,
            schema,
            properties,
        }
    }

    /// Whether column `index` is a view column cast to strings here.
    fn casts(&self, index: usize) -> bool {
        self.input
            .schema()
            .fields()
            .get(index)
            .is_some_and(|f| owned(f.data_type()).is_some())
    }

    /// `filter` over the input's columns: each of this node's string columns cast back to
    /// views becomes the input's view column. `None` when the filter uses a string column
    /// otherwise.
    fn to_input(&self, filter: &Arc<dyn PhysicalExpr>) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        let input = self.input.schema();
        let mut other_use = false;
        let rewritten = Arc::clone(filter).transform_down(|expr| {
            if let Some(cast) = expr.downcast_ref::<CastExpr>()
                && let Some(column) = cast.expr().downcast_ref::<Column>()
                && self.casts(column.index())
                && input.field(column.index()).data_type() == cast.cast_type()
            {
                let column: Arc<dyn PhysicalExpr> = Arc::new(column.clone());
                return Ok(Transformed::new(column, true, TreeNodeRecursion::Jump));
            }
            if let Some(column) = expr.downcast_ref::<Column>()
                && self.casts(column.index())
            {
                other_use = true;
            }
            Ok(Transformed::no(expr))
        })?;
        Ok((!other_use).then_some(rewritten.data))
    }
}

impl DisplayAs for StringsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StringsExec: string views as strings of their own")
    }
}

impl ExecutionPlan for StringsExec {
    fn name(&self) -> &str {
        "StringsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("StringsExec has one child, got {}", children.len());
        }
        Ok(Arc::new(Self::new(children.swap_remove(0))))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        // All or none: each filter either reaches the input as its own columns, or none is
        // pushed.
        let mut rewritten = Vec::with_capacity(parent_filters.len());
        for filter in &parent_filters {
            match self.to_input(filter)? {
                Some(filter) => rewritten.push(filter),
                None => {
                    return Ok(FilterDescription::all_unsupported(
                        &parent_filters,
                        &self.children(),
                    ));
                }
            }
        }
        Ok(FilterDescription::new()
            .with_child(ChildFilterDescription::from_child(&rewritten, &self.input)?))
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        Ok(cast_stream(input, Arc::clone(&self.schema)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }
}

/// `input` with each column cast to the type `schema` gives it.
fn cast_stream(input: SendableRecordBatchStream, schema: SchemaRef) -> SendableRecordBatchStream {
    let to = Arc::clone(&schema);
    let cast_batches = input.map(move |batch| {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .zip(to.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(Arc::clone(c))
                } else {
                    cast(c.as_ref(), f.data_type())
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&to), columns)?)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, cast_batches))
}

/// The sorted batches with the string columns cast back to views (the types of `schema`),
/// in the order of the sort keys `ordering` (columns) and in the same partitions.
#[derive(Debug, Clone)]
pub struct ViewsExec {
    input: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    ordering: LexOrdering,
    properties: Arc<PlanProperties>,
}

impl ViewsExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        schema: SchemaRef,
        ordering: LexOrdering,
    ) -> Result<Self> {
        if input.schema().fields().len() != schema.fields().len() {
            return internal_err!(
                "ViewsExec casts {} columns to {}",
                input.schema().fields().len(),
                schema.fields().len()
            );
        }
        let of = input.properties();
        let eq = EquivalenceProperties::new_with_orderings(
            Arc::clone(&schema),
            [ordering.iter().cloned()],
        );
        let properties = Arc::new(PlanProperties::new(
            eq,
            of.partitioning.clone(),
            of.emission_type,
            of.boundedness,
        ));
        Ok(Self {
            input,
            schema,
            ordering,
            properties,
        })
    }
}

impl DisplayAs for ViewsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewsExec: strings back to string views")
    }
}

impl ExecutionPlan for ViewsExec {
    fn name(&self) -> &str {
        "ViewsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("ViewsExec has one child, got {}", children.len());
        }
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            Arc::clone(&self.schema),
            self.ordering.clone(),
        )?))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        Ok(cast_stream(input, Arc::clone(&self.schema)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }
}
